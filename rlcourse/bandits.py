"""Multi-armed bandits (notebook 01): value estimates, exploration rules and a batched testbed.

Everything is vectorised over independent *runs*: a batch of ``R`` bandit problems with ``K``
arms each is played in lock-step, so arrays have shape ``[R, K]`` (one row per run) and the
chosen actions and rewards of one step have shape ``[R]``. Random functions take an explicit
``rng: np.random.Generator``; nothing touches global random state.

Layout: pure formulas first (estimates, action probabilities, scores, posteriors), then the
samplers that turn them into actions, then the agents (state + ``select``/``update``), then the
experiment loops :func:`run_testbed` and :func:`run_linucb`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rlcourse.validation import as_float_array, check_in_range, check_positive_int

# ---- value estimates ---------------------------------------------------------------------------


def incremental_mean(q: np.ndarray | float, n: np.ndarray | int,
                     reward: np.ndarray | float) -> np.ndarray:
    """Sample mean after the ``n``-th reward: ``Q_n = Q_{n-1} + (R_n - Q_{n-1}) / n``.

    ``q`` is the mean of the first ``n - 1`` rewards, ``n >= 1`` counts the new reward too.
    All arguments broadcast (e.g. ``[R]`` each); returns an array of the broadcast shape.
    """
    n_arr = np.asarray(n, dtype=float)
    if np.any(n_arr < 1):
        raise ValueError(f"n counts the new reward and must be >= 1, got min {n_arr.min():g}")
    q_arr = np.asarray(q, dtype=float)
    return q_arr + (np.asarray(reward, dtype=float) - q_arr) / n_arr


def constant_step_update(q: np.ndarray | float, reward: np.ndarray | float,
                         step_size: float) -> np.ndarray:
    """Exponential recency-weighted average: ``Q <- Q + alpha (R - Q)``, ``alpha`` in (0, 1]."""
    alpha = check_in_range(step_size, "step_size", 0.0, 1.0, low_open=True)
    q_arr = np.asarray(q, dtype=float)
    return q_arr + alpha * (np.asarray(reward, dtype=float) - q_arr)


# ---- action probabilities and scores -----------------------------------------------------------


def epsilon_greedy_probs(q: np.ndarray, epsilon: float) -> np.ndarray:
    """Action probabilities of epsilon-greedy; ``q`` [..., K] -> probabilities [..., K].

    Each arm gets ``epsilon / K`` (uniform exploration includes the greedy arm) and the greedy
    arm gets the remaining ``1 - epsilon`` on top; tied greedy arms share it equally.
    """
    eps = check_in_range(epsilon, "epsilon", 0.0, 1.0)
    q = as_float_array(q, "q")
    if q.ndim == 0 or q.shape[-1] == 0:
        raise ValueError(f"q must have at least one arm on its last axis, got shape {q.shape}")
    is_max = q == q.max(axis=-1, keepdims=True)
    greedy = is_max / is_max.sum(axis=-1, keepdims=True)
    return eps / q.shape[-1] + (1.0 - eps) * greedy


def ucb_scores(q: np.ndarray, counts: np.ndarray, t: int, c: float) -> np.ndarray:
    """UCB1 scores ``Q(a) + c sqrt(ln t / N(a))``; arms with ``N(a) = 0`` score ``+inf``.

    Shapes: ``q`` and ``counts`` [..., K] -> [..., K]. ``t >= 1`` is the current step.
    """
    q = as_float_array(q, "q")
    counts = as_float_array(counts, "counts")
    if q.shape != counts.shape:
        raise ValueError(f"q and counts must have the same shape, got {q.shape} and {counts.shape}")
    if t < 1:
        raise ValueError(f"t must be >= 1, got {t!r}")
    c = check_in_range(c, "c", 0.0, math.inf)
    tried = counts > 0
    bonus = c * np.sqrt(math.log(t) / np.where(tried, counts, 1.0))
    return np.where(tried, q + bonus, np.inf)


def softmax(h: np.ndarray) -> np.ndarray:
    """Numerically stable softmax along the last axis; [..., K] -> [..., K]."""
    h = np.asarray(h, dtype=float)
    z = np.exp(h - h.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def boltzmann_probs(q: np.ndarray, tau: float) -> np.ndarray:
    """Boltzmann (softmax) exploration ``pi(a) ~ exp(Q(a) / tau)``; [..., K] -> [..., K]."""
    tau = check_in_range(tau, "tau", 0.0, math.inf, low_open=True)
    return softmax(as_float_array(q, "q") / tau)


def gradient_bandit_update(h: np.ndarray, action: np.ndarray, reward: np.ndarray,
                           baseline: np.ndarray | float, step_size: float) -> np.ndarray:
    """One gradient-bandit step ``H(a) += alpha (R - b) (1[a = A] - pi(a))`` for every arm ``a``.

    Shapes: ``h`` [R, K], ``action`` [R] (ints), ``reward`` and ``baseline`` [R] (or scalars);
    ``pi = softmax(h)`` are the probabilities the actions were drawn from. Returns new [R, K].
    """
    h = as_float_array(h, "h", ndim=2)
    runs, k = h.shape
    action = _check_actions(action, runs, k)
    advantage = np.broadcast_to(np.asarray(reward, float) - np.asarray(baseline, float), (runs,))
    onehot = np.zeros_like(h)
    onehot[np.arange(runs), action] = 1.0
    return h + step_size * advantage[:, None] * (onehot - softmax(h))


def beta_posterior_update(alpha: np.ndarray, beta: np.ndarray, action: np.ndarray,
                          reward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beta-Bernoulli posterior after one pull per run: ``alpha += r``, ``beta += 1 - r``.

    Only the pulled arm of each run changes. Shapes: ``alpha``, ``beta`` [R, K]; ``action`` [R];
    ``reward`` [R] in [0, 1]. Returns new arrays (the inputs are not modified).
    """
    alpha = as_float_array(alpha, "alpha", ndim=2).copy()
    beta = as_float_array(beta, "beta", ndim=2).copy()
    runs, k = alpha.shape
    action = _check_actions(action, runs, k)
    reward = np.broadcast_to(as_float_array(reward, "reward"), (runs,))
    if np.any((reward < 0) | (reward > 1)):
        raise ValueError("Bernoulli rewards must lie in [0, 1]")
    rows = np.arange(runs)
    alpha[rows, action] += reward
    beta[rows, action] += 1.0 - reward
    return alpha, beta


def gaussian_posterior(counts: np.ndarray, reward_sums: np.ndarray, prior_mean: float = 0.0,
                       prior_var: float = 1.0, noise_var: float = 1.0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Posterior (mean, variance) of an arm mean: prior N(m0, s0^2), rewards N(mu, noise_var).

    Precision adds up: ``1/v = 1/s0^2 + n/noise_var``; ``mean = v (m0/s0^2 + sum/noise_var)``.
    Shapes: ``counts``, ``reward_sums`` [..., K] -> two arrays [..., K].
    """
    precision = 1.0 / prior_var + np.asarray(counts, float) / noise_var
    var = 1.0 / precision
    return var * (prior_mean / prior_var + np.asarray(reward_sums, float) / noise_var), var


def beta_pdf(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """Density of Beta(a, b) at ``x`` in (0, 1); any shape -> same shape."""
    if a <= 0 or b <= 0:
        raise ValueError(f"Beta parameters must be > 0, got a={a!r}, b={b!r}")
    x = np.asarray(x, dtype=float)
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    return np.exp(log_norm + (a - 1) * np.log(x) + (b - 1) * np.log1p(-x))


def expected_max_normal(k: int, n_grid: int = 20001) -> float:
    """``E[max of k iid N(0, 1)]`` by numerical integration of ``x k phi(x) Phi(x)^(k-1)``."""
    k = check_positive_int(k, "k")
    x = np.linspace(-10.0, 10.0, n_grid)
    pdf = np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    integrand = x * k * pdf * cdf ** (k - 1)
    return float(np.sum((integrand[1:] + integrand[:-1]) / 2) * (x[1] - x[0]))


def _check_actions(action: np.ndarray, runs: int, k: int) -> np.ndarray:
    action = np.asarray(action)
    if action.shape != (runs,) or not np.issubdtype(action.dtype, np.integer):
        raise ValueError(f"action must be {runs} integers (one per run), got {action.dtype} "
                         f"array of shape {action.shape}")
    if np.any((action < 0) | (action >= k)):
        raise ValueError(f"actions must lie in 0..{k - 1}")
    return action


# ---- samplers --------------------------------------------------------------------------------


def sample_categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of ``probs`` [R, K] (rows sum to 1) -> int actions [R]."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 2:
        raise ValueError(f"probs must have shape [R, K], got {probs.shape}")
    cdf = np.cumsum(np.ascontiguousarray(probs.T), axis=0)  # [K, R]: fast short-axis sums
    u = rng.random(cdf.shape[1]) * cdf[-1]
    return np.minimum((u >= cdf).sum(axis=0), cdf.shape[0] - 1)


def argmax_random_tiebreak(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Index of the largest entry of each row of ``values`` [R, K], ties broken uniformly -> [R]."""
    is_max = values == values.max(axis=-1, keepdims=True)
    return np.argmax(np.where(is_max, rng.random(values.shape), -1.0), axis=-1)


# ---- environments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BanditProblem:
    """A batch of independent K-armed bandits, one row of ``means`` [R, K] per run.

    ``kind='gaussian'``: reward ~ N(mean, noise_std^2). ``kind='bernoulli'``: reward ~
    Bernoulli(mean). Non-stationary variants: ``walk_std > 0`` adds N(0, walk_std^2) to every
    mean after each step; ``change_every > 0`` redraws all means (N(0, 1) for Gaussian, U(0, 1)
    for Bernoulli arms) after every ``change_every`` steps.
    """

    means: np.ndarray
    kind: str = "gaussian"
    noise_std: float = 1.0
    walk_std: float = 0.0
    change_every: int = 0

    def __post_init__(self) -> None:
        means = as_float_array(self.means, "means", ndim=2)
        if self.kind not in ("gaussian", "bernoulli"):
            raise ValueError(f"kind must be 'gaussian' or 'bernoulli', got {self.kind!r}")
        if self.kind == "bernoulli" and (np.any(means < 0) or np.any(means > 1)):
            raise ValueError("Bernoulli arm means must lie in [0, 1]")
        if self.kind == "bernoulli" and self.walk_std > 0:
            raise ValueError("a random walk is only supported for Gaussian arms")
        if self.change_every < 0 or self.walk_std < 0 or self.noise_std < 0:
            raise ValueError("noise_std, walk_std and change_every must be >= 0")
        object.__setattr__(self, "means", means)

    @property
    def n_runs(self) -> int:
        return self.means.shape[0]

    @property
    def n_arms(self) -> int:
        return self.means.shape[1]

    def pull(self, means: np.ndarray, actions: np.ndarray, rng: np.random.Generator
             ) -> np.ndarray:
        """Rewards [R] for one action per run, given the current ``means`` [R, K]."""
        mu = means[np.arange(means.shape[0]), actions]
        if self.kind == "bernoulli":
            return (rng.random(mu.shape) < mu).astype(float)
        return mu + self.noise_std * rng.standard_normal(mu.shape)

    def advance(self, means: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        """The means for step ``t + 1`` after step ``t`` (unchanged if stationary)."""
        if self.walk_std > 0:
            means = means + self.walk_std * rng.standard_normal(means.shape)
        if self.change_every and t % self.change_every == 0:
            shape = means.shape
            means = rng.random(shape) if self.kind == "bernoulli" else rng.standard_normal(shape)
        return means


def gaussian_testbed(n_runs: int, n_arms: int, rng: np.random.Generator, mean: float = 0.0,
                     **kwargs) -> BanditProblem:
    """The Sutton & Barto testbed: ``q*(a) ~ N(mean, 1)`` per run and arm, rewards N(q*(a), 1)."""
    shape = (check_positive_int(n_runs, "n_runs"), check_positive_int(n_arms, "n_arms"))
    return BanditProblem(mean + rng.standard_normal(shape), "gaussian", **kwargs)


def bernoulli_bandit(probs: np.ndarray, n_runs: int, **kwargs) -> BanditProblem:
    """The same Bernoulli arms ``probs`` [K] repeated for ``n_runs`` runs."""
    probs = as_float_array(probs, "probs", ndim=1)
    return BanditProblem(np.tile(probs, (check_positive_int(n_runs, "n_runs"), 1)), "bernoulli",
                         **kwargs)


# ---- agents ------------------------------------------------------------------------------------


class _SampleAverages:
    """Shared state of value-based agents: estimates ``q`` [R, K] and pull counts ``n`` [R, K]."""

    def __init__(self, step_size: float | None, initial: float,
                 update_fn: Callable[..., np.ndarray] | None) -> None:
        if step_size is not None:
            check_in_range(step_size, "step_size", 0.0, 1.0, low_open=True)
        self.step_size = step_size
        self.initial = float(initial)
        self.update_fn = update_fn or incremental_mean

    def reset(self, n_runs: int, n_arms: int) -> None:
        self.q = np.full((n_runs, n_arms), self.initial)
        self.n = np.zeros((n_runs, n_arms))

    def update(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        rows = np.arange(self.q.shape[0])
        self.n[rows, actions] += 1
        old = self.q[rows, actions]
        if self.step_size is None:
            self.q[rows, actions] = self.update_fn(old, self.n[rows, actions], rewards)
        else:
            self.q[rows, actions] = constant_step_update(old, rewards, self.step_size)


class EpsilonGreedy(_SampleAverages):
    """Epsilon-greedy on sample averages (or constant ``step_size``).

    ``epsilon`` is a number or a schedule ``t -> epsilon_t`` (t = 1, 2, ...). ``probs_fn`` and
    ``update_fn`` default to :func:`epsilon_greedy_probs` and :func:`incremental_mean`.
    """

    def __init__(self, epsilon: float | Callable[[int], float] = 0.1,
                 step_size: float | None = None, initial: float = 0.0,
                 probs_fn: Callable[..., np.ndarray] | None = None,
                 update_fn: Callable[..., np.ndarray] | None = None) -> None:
        super().__init__(step_size, initial, update_fn)
        if not callable(epsilon):
            check_in_range(epsilon, "epsilon", 0.0, 1.0)
        self.epsilon = epsilon
        self.probs_fn = probs_fn or epsilon_greedy_probs

    def select(self, t: int, rng: np.random.Generator) -> np.ndarray:
        eps = self.epsilon(t) if callable(self.epsilon) else self.epsilon
        return sample_categorical(self.probs_fn(self.q, eps), rng)


class Boltzmann(_SampleAverages):
    """Softmax exploration on the value estimates with temperature ``tau``."""

    def __init__(self, tau: float = 0.2, step_size: float | None = None,
                 initial: float = 0.0) -> None:
        super().__init__(step_size, initial, None)
        self.tau = check_in_range(tau, "tau", 0.0, math.inf, low_open=True)

    def select(self, t: int, rng: np.random.Generator) -> np.ndarray:
        return sample_categorical(boltzmann_probs(self.q, self.tau), rng)


class UCB(_SampleAverages):
    """UCB1 with exploration constant ``c``; untried arms first (random order)."""

    def __init__(self, c: float = 2.0, step_size: float | None = None,
                 score_fn: Callable[..., np.ndarray] | None = None) -> None:
        super().__init__(step_size, 0.0, None)
        self.c = check_in_range(c, "c", 0.0, math.inf)
        self.score_fn = score_fn or ucb_scores

    def select(self, t: int, rng: np.random.Generator) -> np.ndarray:
        return argmax_random_tiebreak(self.score_fn(self.q, self.n, t, self.c), rng)


class ThompsonBeta:
    """Beta-Bernoulli Thompson sampling with prior Beta(a0, b0) on every arm.

    ``discount < 1`` shrinks the evidence towards the prior before every update (discounted
    TS); ``window`` keeps only the last ``window`` observations of each run (sliding-window TS).
    """

    def __init__(self, prior: tuple[float, float] = (1.0, 1.0), discount: float = 1.0,
                 window: int | None = None,
                 update_fn: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        if min(prior) <= 0:
            raise ValueError(f"Beta prior parameters must be > 0, got {prior}")
        self.prior = (float(prior[0]), float(prior[1]))
        self.discount = check_in_range(discount, "discount", 0.0, 1.0, low_open=True)
        self.window = None if window is None else check_positive_int(window, "window")
        self.update_fn = update_fn or beta_posterior_update

    def reset(self, n_runs: int, n_arms: int) -> None:
        self.alpha = np.full((n_runs, n_arms), self.prior[0])
        self.beta = np.full((n_runs, n_arms), self.prior[1])
        if self.window is not None:
            self._hist_a = np.zeros((n_runs, self.window), dtype=int)
            self._hist_r = np.zeros((n_runs, self.window))
            self._t = 0

    def select(self, t: int, rng: np.random.Generator) -> np.ndarray:
        return np.argmax(rng.beta(self.alpha, self.beta), axis=-1)

    def update(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        if self.discount < 1.0:
            self.alpha = self.prior[0] + self.discount * (self.alpha - self.prior[0])
            self.beta = self.prior[1] + self.discount * (self.beta - self.prior[1])
        if self.window is not None:
            slot, rows = self._t % self.window, np.arange(self.alpha.shape[0])
            if self._t >= self.window:  # forget the observation that leaves the window
                old_a, old_r = self._hist_a[:, slot], self._hist_r[:, slot]
                self.alpha[rows, old_a] -= old_r
                self.beta[rows, old_a] -= 1.0 - old_r
            self._hist_a[:, slot], self._hist_r[:, slot] = actions, rewards
            self._t += 1
        self.alpha, self.beta = self.update_fn(self.alpha, self.beta, actions, rewards)


class ThompsonGaussian:
    """Gaussian Thompson sampling: prior N(m0, s0^2) per arm, known reward noise variance."""

    def __init__(self, prior_mean: float = 0.0, prior_var: float = 1.0,
                 noise_var: float = 1.0) -> None:
        self.prior_mean = float(prior_mean)
        self.prior_var = check_in_range(prior_var, "prior_var", 0.0, math.inf, low_open=True)
        self.noise_var = check_in_range(noise_var, "noise_var", 0.0, math.inf, low_open=True)

    def reset(self, n_runs: int, n_arms: int) -> None:
        self.n = np.zeros((n_runs, n_arms))
        self.sums = np.zeros((n_runs, n_arms))

    def select(self, t: int, rng: np.random.Generator) -> np.ndarray:
        mean, var = gaussian_posterior(self.n, self.sums, self.prior_mean, self.prior_var,
                                       self.noise_var)
        return np.argmax(mean + np.sqrt(var) * rng.standard_normal(mean.shape), axis=-1)

    def update(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        rows = np.arange(self.n.shape[0])
        self.n[rows, actions] += 1
        self.sums[rows, actions] += rewards


class GradientBandit:
    """Gradient bandit: softmax over preferences ``h``, updated by :func:`gradient_bandit_update`.

    With ``baseline=True`` the baseline is the mean of the rewards *before* the current step
    (the first reward is its own baseline); with ``baseline=False`` it is 0.
    """

    def __init__(self, step_size: float = 0.1, baseline: bool = True,
                 update_fn: Callable[..., np.ndarray] | None = None) -> None:
        self.step_size = check_in_range(step_size, "step_size", 0.0, math.inf, low_open=True)
        self.use_baseline = bool(baseline)
        self.update_fn = update_fn or gradient_bandit_update

    def reset(self, n_runs: int, n_arms: int) -> None:
        self.h = np.zeros((n_runs, n_arms))
        self.mean_reward = np.zeros(n_runs)
        self.t = 0

    def select(self, t: int, rng: np.random.Generator) -> np.ndarray:
        return sample_categorical(softmax(self.h), rng)

    def update(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        self.t += 1
        if self.use_baseline:
            baseline = rewards if self.t == 1 else self.mean_reward
        else:
            baseline = np.zeros_like(rewards)
        self.h = self.update_fn(self.h, actions, rewards, baseline, self.step_size)
        self.mean_reward = self.mean_reward + (rewards - self.mean_reward) / self.t


# ---- experiment loops --------------------------------------------------------------------------


@dataclass(frozen=True)
class TestbedResult:
    """Per-step outcomes of :func:`run_testbed`, all [R, T].

    ``actions``: chosen arms; ``rewards``: sampled rewards; ``regret``: pseudo-regret
    ``max_a mu_t(a) - mu_t(A_t)``; ``optimal``: whether the chosen arm had the highest current
    mean; ``best``: ``max_a mu_t(a)`` (a read-only broadcast view for stationary problems).
    """

    __test__ = False  # not a pytest class

    actions: np.ndarray
    rewards: np.ndarray
    regret: np.ndarray
    optimal: np.ndarray
    best: np.ndarray

    def cumulative_regret(self) -> np.ndarray:
        """Cumulative pseudo-regret per run, [R, T]."""
        return np.cumsum(self.regret, axis=1)


def run_testbed(problem: BanditProblem, agent, n_steps: int, rng: np.random.Generator,
                progress: bool = False) -> TestbedResult:
    """Play ``agent`` on all runs of ``problem`` for ``n_steps`` steps.

    ``agent`` has ``reset(n_runs, n_arms)``, ``select(t, rng) -> actions [R]`` and
    ``update(actions, rewards)``. Returns a :class:`TestbedResult` with arrays [R, T].
    """
    n_steps = check_positive_int(n_steps, "n_steps")
    runs, k = problem.n_runs, problem.n_arms
    agent.reset(runs, k)
    means = problem.means.copy()
    stationary = problem.walk_std == 0 and problem.change_every == 0
    actions = np.zeros((runs, n_steps), dtype=np.min_scalar_type(k - 1))
    rewards = np.zeros((runs, n_steps))
    chosen = None if stationary else np.zeros((runs, n_steps))
    best = None if stationary else np.zeros((runs, n_steps))
    steps = range(1, n_steps + 1)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=type(agent).__name__, leave=False)
    for t in steps:
        a = np.asarray(agent.select(t, rng))
        r = problem.pull(means, a, rng)
        agent.update(a, r)
        actions[:, t - 1], rewards[:, t - 1] = a, r
        if not stationary:
            chosen[:, t - 1] = means[np.arange(runs), a]
            best[:, t - 1] = means.max(axis=1)
            means = problem.advance(means, t, rng)
    if stationary:
        chosen = np.take_along_axis(means, actions.astype(np.intp), axis=1)
        best = np.broadcast_to(means.max(axis=1, keepdims=True), (runs, n_steps))
    return TestbedResult(actions, rewards, best - chosen, chosen == best, best)


def decaying_epsilon(t: int, scale: float = 20.0, minimum: float = 0.01) -> float:
    """Schedule ``epsilon_t = max(minimum, min(1, scale / t))`` for steps ``t = 1, 2, ...``."""
    return max(minimum, min(1.0, scale / t))


# ---- contextual bandits: LinUCB -------------------------------------------------------------


def sherman_morrison(a_inv: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``(A + x x^T)^-1`` from ``A^-1``; shapes ``a_inv`` [..., d, d], ``x`` [..., d]."""
    ax = np.einsum("...ij,...j->...i", a_inv, x)
    denom = 1.0 + np.einsum("...i,...i->...", x, ax)
    return a_inv - np.einsum("...i,...j->...ij", ax, ax) / denom[..., None, None]


def linucb_scores(a_inv: np.ndarray, b: np.ndarray, x: np.ndarray, c: float) -> np.ndarray:
    """Disjoint LinUCB scores ``theta_a . x + c sqrt(x^T A_a^-1 x)`` with ``theta_a = A_a^-1 b_a``.

    Shapes: ``a_inv`` [R, K, d, d], ``b`` [R, K, d], ``x`` [R, d] -> [R, K].
    """
    theta = np.einsum("rkij,rkj->rki", a_inv, b)
    width = np.einsum("ri,rkij,rj->rk", x, a_inv, x)
    return np.einsum("rki,ri->rk", theta, x) + c * np.sqrt(np.maximum(width, 0.0))


def run_linucb(n_runs: int, n_arms: int, dim: int, n_steps: int, rng: np.random.Generator,
               c: float = 1.0, noise_std: float = 0.5) -> dict[str, np.ndarray]:
    """LinUCB vs context-blind UCB1 on a linear contextual bandit; returns regret [R, T] each.

    Each run draws arm weights ``theta_a ~ N(0, I/d)``; at every step a context
    ``x = (1, z)`` with ``z ~ N(0, I_{d-1})`` arrives (the constant 1 makes some arms better on
    average) and arm ``a`` pays ``theta_a . x + N(0, noise_std^2)``.
    """
    runs, k, d = (check_positive_int(v, n) for v, n in
                  ((n_runs, "n_runs"), (n_arms, "n_arms"), (dim, "dim")))
    n_steps = check_positive_int(n_steps, "n_steps")
    theta = rng.standard_normal((runs, k, d)) / math.sqrt(d)
    a_inv = np.tile(np.eye(d), (runs, k, 1, 1))
    b = np.zeros((runs, k, d))
    blind = UCB(c=c)
    blind.reset(runs, k)
    rows = np.arange(runs)
    regret = {"LinUCB": np.zeros((runs, n_steps)), "UCB1 (ignores x)": np.zeros((runs, n_steps))}
    for t in range(1, n_steps + 1):
        x = np.concatenate([np.ones((runs, 1)), rng.standard_normal((runs, d - 1))], axis=1)
        mu = np.einsum("rkd,rd->rk", theta, x)
        for name, a in (("LinUCB", argmax_random_tiebreak(linucb_scores(a_inv, b, x, c), rng)),
                        ("UCB1 (ignores x)", blind.select(t, rng))):
            r = mu[rows, a] + noise_std * rng.standard_normal(runs)
            regret[name][:, t - 1] = mu.max(axis=1) - mu[rows, a]
            if name == "LinUCB":
                a_inv[rows, a] = sherman_morrison(a_inv[rows, a], x)
                b[rows, a] += r[:, None] * x
            else:
                blind.update(a, r)
    return regret
