"""Finite MDPs and dynamic programming (notebook 02).

Conventions: ``P[s, a, s']`` is the transition probability, ``R[s, a]`` the expected reward of
taking ``a`` in ``s``, and a policy is a matrix ``pi[s, a]`` of action probabilities. States
in ``terminal`` are absorbing with zero reward, so their value is 0 for any policy.

Reward index: the theory writes ``r_{t+1}`` for the reward that follows action ``a_t``; code
arrays store it as ``rewards[t]``, so ``G[t] = rewards[t] + gamma * G[t + 1]``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlcourse.validation import (
    as_float_array,
    check_discrete_space,
    check_distribution,
    check_gamma,
    check_in_range,
    check_positive_int,
)

# Row/column offsets of each action, for drawing greedy-policy arrows.
GRIDWORLD_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))  # rlcourse GridWorld: up, right, down, left
FROZENLAKE_MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))  # FrozenLake: left, down, right, up


@dataclass(frozen=True)
class TabularMDP:
    """A validated finite MDP. Shapes: P [S, A, S], R [S, A], terminal [S] (bool)."""

    P: np.ndarray
    R: np.ndarray
    gamma: float
    terminal: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        P = as_float_array(self.P, "P", ndim=3)
        R = as_float_array(self.R, "R", ndim=2)
        n_s, n_a, n_s2 = P.shape
        if n_s != n_s2:
            raise ValueError(f"P must have shape [S, A, S], got {P.shape}")
        if R.shape != (n_s, n_a):
            raise ValueError(f"R must have shape [S, A] = {(n_s, n_a)}, got {R.shape}")
        check_distribution(P, "P[s, a, :]", axis=2)
        term = np.zeros(n_s, bool) if self.terminal is None else np.asarray(self.terminal)
        if term.shape != (n_s,) or term.dtype != bool:
            raise ValueError(f"terminal must be a boolean array of shape ({n_s},), "
                             f"got dtype {term.dtype} and shape {term.shape}")
        for s in np.flatnonzero(term):
            if not np.allclose(P[s, :, s], 1.0) or not np.allclose(R[s], 0.0):
                raise ValueError(f"terminal state {s} must be absorbing with zero reward")
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "terminal", term)
        object.__setattr__(self, "gamma", check_gamma(self.gamma))

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    def with_gamma(self, gamma: float) -> TabularMDP:
        """The same dynamics with another discount factor."""
        return dataclasses.replace(self, gamma=gamma)

    @classmethod
    def from_gymnasium(cls, env: Any, gamma: float) -> TabularMDP:
        """Build the MDP from a toy-text env's table ``env.unwrapped.P[s][a]``.

        Each entry is a list of ``(prob, next_state, reward, terminated)``. States entered with
        ``terminated=True`` become absorbing, zero-reward terminal states. Environments that
        offer ``transition_table()`` (the course GridWorld) are read through it instead.
        """
        n_s = check_discrete_space(env.observation_space, "from_gymnasium")
        n_a = check_discrete_space(env.action_space, "from_gymnasium")
        base = env.unwrapped
        if callable(getattr(base, "transition_table", None)):
            P, R, terminal = base.transition_table()
            return cls(P, R, gamma, np.asarray(terminal, bool))
        table = getattr(base, "P", None)
        if not isinstance(table, dict):
            raise TypeError(f"{base!r} has no transition table `P` (toy-text envs do)")
        P, R = np.zeros((n_s, n_a, n_s)), np.zeros((n_s, n_a))
        terminal = np.zeros(n_s, bool)
        for s in range(n_s):
            for a in range(n_a):
                for prob, nxt, reward, done in table[s][a]:
                    P[s, a, nxt] += prob
                    R[s, a] += prob * reward  # R(s,a) = sum_s' P(s'|s,a) R(s,a,s')
                    terminal[nxt] |= bool(done)
        P[terminal], R[terminal] = 0.0, 0.0
        for s in np.flatnonzero(terminal):
            P[s, :, s] = 1.0
        return cls(P, R, gamma, terminal)


# ---- rewards and returns -----------------------------------------------------------------

def expected_reward(P: Any, R_sas: Any) -> np.ndarray:
    """R(s, a) = sum_s' P(s'|s, a) R(s, a, s'). Shapes: P, R_sas [S, A, S] -> [S, A]."""
    P = as_float_array(P, "P", ndim=3)
    R_sas = as_float_array(R_sas, "R_sas", ndim=3)
    if P.shape != R_sas.shape:
        raise ValueError(f"P and R_sas must have the same shape, got {P.shape} and "
                         f"{R_sas.shape}")
    check_distribution(P, "P[s, a, :]", axis=2)
    return np.einsum("sat,sat->sa", P, R_sas)


def discounted_returns(rewards: Any, gamma: float) -> np.ndarray:
    """G[..., t] = rewards[..., t] + gamma * G[..., t + 1], with G = 0 after the last step.

    ``rewards[..., t]`` is the reward that follows action ``t`` (r_{t+1} in the theory).
    Shapes: [T] or [N, T] (time on the last axis) -> the same shape.
    """
    gamma = check_gamma(gamma)
    r = as_float_array(rewards, "rewards")
    if r.ndim == 0:
        raise ValueError("rewards must have a time axis (shape [..., T]), got a scalar")
    G = np.zeros_like(r)
    running = np.zeros(r.shape[:-1])
    for t in range(r.shape[-1] - 1, -1, -1):
        running = r[..., t] + gamma * running
        G[..., t] = running
    return G


def effective_horizon(gamma: float) -> float:
    """1 / (1 - gamma): the sum of the weights gamma^k (infinite for gamma = 1)."""
    gamma = check_gamma(gamma)
    return float("inf") if gamma == 1.0 else 1.0 / (1.0 - gamma)


# ---- policies and evaluation -------------------------------------------------------------

def check_policy(mdp: TabularMDP, pi: Any) -> np.ndarray:
    """Return ``pi`` as a validated [S, A] matrix of action probabilities."""
    pi = as_float_array(pi, "pi", ndim=2)
    if pi.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"pi must have shape [S, A] = {(mdp.n_states, mdp.n_actions)}, "
                         f"got {pi.shape}")
    check_distribution(pi, "pi[s, :]", axis=1)
    return pi


def uniform_policy(mdp: TabularMDP) -> np.ndarray:
    """The uniformly random policy, [S, A]."""
    return np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)


def policy_matrices(mdp: TabularMDP, pi: Any) -> tuple[np.ndarray, np.ndarray]:
    """P_pi [S, S] with P_pi[s, s'] = sum_a pi(a|s) P(s'|s,a), and R_pi [S]."""
    pi = check_policy(mdp, pi)
    return np.einsum("sa,sat->st", pi, mdp.P), np.einsum("sa,sa->s", pi, mdp.R)


def reaches_terminal(P_pi: np.ndarray, terminal: np.ndarray) -> np.ndarray:
    """Bool [S]: whether a terminal state can be reached from each state under P_pi [S, S]."""
    reach = np.asarray(terminal, bool).copy()
    while True:
        new = reach | (P_pi[:, reach].sum(axis=1) > 0)
        if np.array_equal(new, reach):
            return reach
        reach = new


def evaluate_policy(mdp: TabularMDP, pi: Any) -> np.ndarray:
    """Exact V^pi [S] from the reduced system (I - gamma P_NN) V_N = R_N, via ``solve``.

    N are the non-terminal states: the rows *and* columns of the terminal states are deleted
    (their value is 0), which is what makes gamma = 1 possible at all, since the full matrix
    I - P_pi has a zero row for every absorbing terminal state. With gamma = 1 the reduced
    matrix is regular iff every state reaches a terminal state with probability 1. States that
    can never reach one are fixed at 0 too, provided they collect no reward (e.g. the
    unreachable wall cells of the GridWorld); if they do, the return is an endless sum and a
    ``ValueError`` names them. The test is structural (reachability), because floating-point
    ``solve`` does not always detect a singular matrix.
    """
    P_pi, R_pi = policy_matrices(mdp, pi)
    fixed = mdp.terminal.copy()
    if mdp.gamma == 1.0:
        never = ~reaches_terminal(P_pi, mdp.terminal)
        paid = np.flatnonzero(never & (R_pi != 0.0))
        if paid.size:
            raise ValueError(
                "the reduced system I - P_NN on the non-terminal states is singular: with "
                "gamma = 1 the policy must reach a terminal state, but from states "
                f"{np.flatnonzero(never)[:10].tolist()} it never does "
                "and it keeps collecting reward (use gamma < 1 for continuing tasks)")
        fixed |= never
    live = ~fixed
    A = np.eye(live.sum()) - mdp.gamma * P_pi[np.ix_(live, live)]
    V = np.zeros(mdp.n_states)
    V[live] = np.linalg.solve(A, R_pi[live])
    return V


def q_from_v(mdp: TabularMDP, V: Any) -> np.ndarray:
    """Q [S, A] = R + gamma * sum_s' P(s'|s,a) V(s') (a one-step backup of V [S])."""
    V = as_float_array(V, "V", ndim=1)
    if V.shape != (mdp.n_states,):
        raise ValueError(f"V must have shape ({mdp.n_states},), got {V.shape}")
    return mdp.R + mdp.gamma * mdp.P @ V


def bellman_expectation_backup(mdp: TabularMDP, V: Any, pi: Any) -> np.ndarray:
    """(T^pi V)[s] = R_pi[s] + gamma sum_s' P_pi[s, s'] V[s'], 0 at terminal states. [S]."""
    P_pi, R_pi = policy_matrices(mdp, pi)
    V = as_float_array(V, "V", ndim=1)
    out = R_pi + mdp.gamma * P_pi @ V
    out[mdp.terminal] = 0.0
    return out


def bellman_optimality_backup(mdp: TabularMDP, V: Any) -> np.ndarray:
    """(T* V)[s] = max_a [R(s,a) + gamma sum_s' P(s'|s,a) V(s')], 0 at terminal states. [S]."""
    out = q_from_v(mdp, V).max(axis=1)
    out[mdp.terminal] = 0.0
    return out


def greedy_policy(Q: np.ndarray) -> np.ndarray:
    """Deterministic policy [S, A] (one-hot) picking the first maximiser of each row of Q."""
    Q = as_float_array(Q, "Q", ndim=2)
    pi = np.zeros_like(Q)
    pi[np.arange(Q.shape[0]), Q.argmax(axis=1)] = 1.0
    return pi


def is_greedy(pi: Any, Q: Any, atol: float = 1e-6) -> bool:
    """Whether every action that ``pi`` [S, A] may take is a maximiser of Q [S, A] (to atol)."""
    pi, Q = as_float_array(pi, "pi", ndim=2), as_float_array(Q, "Q", ndim=2)
    if pi.shape != Q.shape:
        raise ValueError(f"pi and Q must have the same shape, got {pi.shape} and {Q.shape}")
    gap = Q.max(axis=1, keepdims=True) - Q
    return bool(np.all((pi <= 0) | (gap <= atol)))


# ---- dynamic programming -----------------------------------------------------------------

def iterative_policy_evaluation(mdp: TabularMDP, pi: Any, tol: float = 1e-10,
                                max_iter: int = 100_000, *,
                                backup: Callable[..., np.ndarray] | None = None
                                ) -> tuple[np.ndarray, int]:
    """Iterate V <- T^pi V from V = 0 until the sup-norm change is below ``tol``.

    ``backup(mdp, V, pi)`` defaults to :func:`bellman_expectation_backup`.
    Returns (V^pi [S], sweeps used).
    """
    backup = backup or bellman_expectation_backup
    pi = check_policy(mdp, pi)
    V = np.zeros(mdp.n_states)
    for k in range(1, check_positive_int(max_iter, "max_iter") + 1):
        V_new = np.asarray(backup(mdp, V, pi), dtype=float)
        if np.max(np.abs(V_new - V)) < tol:
            return V_new, k
        V = V_new
    raise RuntimeError(f"policy evaluation did not converge to tol={tol} in {max_iter} sweeps"
                       " (with gamma = 1 the policy must terminate)")


def value_iteration(mdp: TabularMDP, theta: float = 1e-10, max_iter: int = 100_000, *,
                    backup: Callable[..., np.ndarray] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """Synchronous value iteration from V = 0 with the sup-norm stopping rule.

    Sweep k computes V_k = T* V_{k-1} for all states at once (0 at terminal states) and stops
    at the first k with max_s |V_k(s) - V_{k-1}(s)| < ``theta``. ``backup(mdp, V)`` defaults
    to :func:`bellman_optimality_backup`.
    Returns (V_k [S], the one-hot greedy policy [S, A] for q_from_v(mdp, V_k) with ties to the
    first maximiser, k = the number of sweeps computed, the stopping one included).
    Raises ``RuntimeError`` when ``max_iter`` sweeps do not reach the threshold.
    """
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"value_iteration needs a TabularMDP, got {type(mdp).__name__}")
    theta = check_in_range(theta, "theta", 0.0, float("inf"), low_open=True)
    backup = backup or bellman_optimality_backup
    V = np.zeros(mdp.n_states)
    for k in range(1, check_positive_int(max_iter, "max_iter") + 1):
        V_new = np.asarray(backup(mdp, V), dtype=float)
        V_new[mdp.terminal] = 0.0
        if np.max(np.abs(V_new - V)) < theta:
            return V_new, greedy_policy(q_from_v(mdp, V_new)), k
        V = V_new
    raise RuntimeError(f"value iteration did not converge to theta={theta} in {max_iter} "
                       "sweeps")


def policy_improvement(Q: Any, pi: Any, atol: float = 1e-12) -> np.ndarray:
    """Greedy deterministic policy [S, A] for Q [S, A] that keeps pi's action on ties.

    Keeping the current action unless another is better by more than ``atol`` (relative to
    the scale of Q) stops policy iteration from cycling between equally good actions.
    """
    Q, pi = as_float_array(Q, "Q", ndim=2), as_float_array(pi, "pi", ndim=2)
    rows = np.arange(Q.shape[0])
    current = pi.argmax(axis=1)
    best = Q.argmax(axis=1)
    tie = Q[rows, current] >= Q[rows, best] - atol * (1.0 + np.abs(Q[rows, best]))
    new = np.zeros_like(Q)
    new[rows, np.where(tie, current, best)] = 1.0
    return new


def policy_iteration(mdp: TabularMDP, pi0: Any = None, max_iter: int = 1000, *,
                     evaluate: Callable[..., np.ndarray] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, int]:
    """Evaluate exactly, improve greedily, repeat until the policy is stable.

    ``pi0`` defaults to the policy that is greedy for the immediate reward R.
    ``evaluate(mdp, pi)`` defaults to :func:`evaluate_policy`.
    Returns (V* [S], optimal deterministic policy [S, A], evaluations used).
    """
    evaluate = evaluate or evaluate_policy
    pi = greedy_policy(mdp.R) if pi0 is None else check_policy(mdp, pi0)
    for k in range(1, check_positive_int(max_iter, "max_iter") + 1):
        V = np.asarray(evaluate(mdp, pi), dtype=float)
        new = policy_improvement(q_from_v(mdp, V), pi)
        if np.array_equal(new, pi):
            return V, pi, k
        pi = new
    raise RuntimeError(f"policy iteration did not stabilise in {max_iter} iterations")


def finite_horizon_values(mdp: TabularMDP, pi: Any, horizon: int) -> np.ndarray:
    """Expected discounted reward [S] of following ``pi`` for only ``horizon`` steps.

    That is ``horizon`` Bellman expectation backups starting from V = 0. With gamma = 1 and a
    0/1 goal reward it is the probability of reaching the goal within ``horizon`` steps.
    """
    horizon = check_positive_int(horizon, "horizon")
    pi = check_policy(mdp, pi)
    V = np.zeros(mdp.n_states)
    for _ in range(horizon):
        V = bellman_expectation_backup(mdp, V, pi)
    return V


# ---- sampling: Monte-Carlo evaluation and rollouts in gymnasium ------------------------

def _sample_rows(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``probs`` [N, K] (each row a distribution) -> [N]."""
    u = rng.random((probs.shape[0], 1))
    idx = (np.cumsum(probs, axis=1) < u).sum(axis=1)
    return np.minimum(idx, probs.shape[1] - 1)


def sample_episodes(mdp: TabularMDP, pi: Any, starts: Any, horizon: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate len(starts) episodes of ``horizon`` steps in parallel.

    Rewards are the expected rewards R(s, a), which leaves every expected return unchanged.
    After a terminal state the episode stays there with reward 0.
    Returns states [N, H + 1], actions [N, H] and rewards [N, H] (rewards[:, t] follows
    actions[:, t]).
    """
    pi = check_policy(mdp, pi)
    horizon = check_positive_int(horizon, "horizon")
    s = np.asarray(starts, dtype=int)
    if s.ndim != 1 or np.any((s < 0) | (s >= mdp.n_states)):
        raise ValueError(f"starts must be a 1-D array of states in [0, {mdp.n_states})")
    states = np.zeros((s.size, horizon + 1), int)
    actions = np.zeros((s.size, horizon), int)
    rewards = np.zeros((s.size, horizon))
    states[:, 0] = s
    for t in range(horizon):
        a = _sample_rows(pi[s], rng)
        actions[:, t], rewards[:, t] = a, mdp.R[s, a]
        s = _sample_rows(mdp.P[s, a], rng)
        states[:, t + 1] = s
    return states, actions, rewards


def mc_policy_values(mdp: TabularMDP, pi: Any, n_episodes: int, horizon: int,
                     rng: np.random.Generator,
                     returns_fn: Callable[[np.ndarray, float], np.ndarray] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Monte-Carlo V^pi: mean and standard error [S] of G_0 over episodes from every state.

    The truncation at ``horizon`` biases the mean by at most gamma^H max|R| / (1 - gamma).
    ``returns_fn(rewards, gamma)`` defaults to :func:`discounted_returns`.
    """
    returns_fn = returns_fn or discounted_returns
    n = check_positive_int(n_episodes, "n_episodes")
    starts = np.repeat(np.arange(mdp.n_states), n)
    _, _, rewards = sample_episodes(mdp, pi, starts, horizon, rng)
    G0 = np.asarray(returns_fn(rewards, mdp.gamma))[:, 0].reshape(mdp.n_states, n)
    sem = G0.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.full(mdp.n_states, np.nan)
    return G0.mean(axis=1), sem


def run_policy(env: Any, actions: Any, n_episodes: int, seed: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Play the deterministic policy ``actions`` [S] (one action per state) in a gymnasium env.

    The env is reset with ``seed`` once, then without a seed. Returns per episode the
    undiscounted return, the length and whether it was cut by the time limit (truncated).
    """
    actions = np.asarray(actions, dtype=int)
    n = check_positive_int(n_episodes, "n_episodes")
    n_s = check_discrete_space(env.observation_space, "run_policy")
    if actions.shape != (n_s,):
        raise ValueError(f"actions must have shape ({n_s},), one action per state")
    returns, lengths, cut = np.zeros(n), np.zeros(n, int), np.zeros(n, bool)
    obs, _ = env.reset(seed=seed)
    for i in range(n):
        if i:
            obs, _ = env.reset()
        done = False
        while not done:
            obs, r, terminated, truncated, _ = env.step(int(actions[obs]))
            returns[i] += r
            lengths[i] += 1
            done = terminated or truncated
        cut[i] = truncated and not terminated
    return returns, lengths, cut


# ---- the cost of the matrix solution --------------------------------------------------

def random_stochastic_matrix(n: int, rng: np.random.Generator) -> np.ndarray:
    """A dense random row-stochastic matrix [n, n] (every transition possible)."""
    M = rng.random((check_positive_int(n, "n"), n))
    return M / M.sum(axis=1, keepdims=True)


def time_policy_evaluation(sizes: Sequence[int], rng: np.random.Generator,
                           gamma: float = 0.9, repeats: int = 3, *, method: str = "solve",
                           threads: int = 1) -> np.ndarray:
    """Best-of-``repeats`` seconds to solve (I - gamma P_pi) V = R_pi for each size n.

    ``method`` is 'solve' (LU factorisation, what ``np.linalg.solve`` does) or 'inv' (form the
    inverse, then multiply). The timing runs the same LAPACK routines through torch with a
    fixed number of ``threads`` (default 1): multithreaded BLAS on a busy machine gives
    erratic times, a single thread gives the algorithm's cost. The sizes are timed in turn,
    round after round, so a burst of load inflates one round of every size, not one size.
    """
    import torch

    gamma = check_gamma(gamma)
    repeats = check_positive_int(repeats, "repeats")
    if method not in ("solve", "inv"):
        raise ValueError(f"method must be 'solve' or 'inv', got {method!r}")
    systems = [(torch.from_numpy(np.eye(n) - gamma * random_stochastic_matrix(n, rng)),
                torch.from_numpy(rng.standard_normal((n, 1)))) for n in sizes]
    before = torch.get_num_threads()
    torch.set_num_threads(check_positive_int(threads, "threads"))
    try:
        best = np.full(len(systems), np.inf)
        for _ in range(repeats):
            for i, (A, b) in enumerate(systems):
                t0 = time.perf_counter()
                torch.linalg.solve(A, b) if method == "solve" else torch.linalg.inv(A) @ b
                best[i] = min(best[i], time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return best


def loglog_slope(x: Any, y: Any) -> float:
    """Least-squares slope of log(y) against log(x): the exponent p in y ~ x^p."""
    x, y = as_float_array(x, "x", ndim=1), as_float_array(y, "y", ndim=1)
    if x.shape != y.shape or x.size < 2 or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("x and y must be positive 1-D arrays of the same length >= 2")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


# ---- plotting ---------------------------------------------------------------------------

def plot_value_grid(V: Any, shape: tuple[int, int], pi: Any = None, *,
                    moves: Sequence[tuple[int, int]] = GRIDWORLD_MOVES,
                    blocked: Any = None, ax: Any = None, title: str = "",
                    annotate: bool = True):
    """Heatmap of V [S] on a grid of ``shape`` (rows, cols) with arrows for ``pi`` [S, A].

    ``moves[a]`` is the (row, col) step of action a; ``blocked`` [S] (bool) hides cells
    (walls, holes, terminal cells) from the arrows and greys them out.
    """
    import matplotlib.pyplot as plt

    V = as_float_array(V, "V", ndim=1)
    n_rows, n_cols = shape
    if V.size != n_rows * n_cols:
        raise ValueError(f"V has {V.size} entries but the grid {shape} has {n_rows * n_cols}")
    mask = np.zeros(V.size, bool) if blocked is None else np.asarray(blocked, bool)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * n_cols + 1.5, 1.1 * n_rows))
    grid = np.ma.masked_array(V.reshape(shape), mask.reshape(shape))
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    im = ax.imshow(grid, cmap=cmap)
    ax.figure.colorbar(im, ax=ax, label="value")
    for s in range(V.size):
        r, c = divmod(s, n_cols)
        if annotate:
            ax.text(c, r + 0.3, f"{V[s]:.1f}", ha="center", va="center", fontsize=8, color="w")
        if pi is not None and not mask[s]:
            dr, dc = moves[int(np.argmax(np.asarray(pi)[s]))]
            ax.annotate("", xy=(c + 0.3 * dc, r + 0.3 * dr), xytext=(c, r),
                        arrowprops={"arrowstyle": "->", "color": "white", "lw": 1.5})
    ax.set_xticks(range(n_cols))
    ax.set_yticks(range(n_rows))
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax
