"""Model-free prediction and control with tables (notebook 03).

Formulas are small pure functions that work elementwise on NumPy arrays (scalars included):
TD errors, n-step returns, SARSA and Q-learning targets, importance weights and potential-based
shaping. The experiments are apart: a vectorised n-step TD sweep on the random walk (all runs
and step sizes advance together), first-visit Monte Carlo, and SARSA / Q-learning on any
gymnasium environment with ``Discrete`` observation and action spaces.

Conventions: ``terminated`` is 1 (True) when the next state is terminal, so nothing is
bootstrapped from it; a *truncated* episode (time limit) still bootstraps.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlcourse.mdp import TabularMDP
from rlcourse.validation import (
    as_float_array,
    check_discrete_space,
    check_gamma,
    check_in_range,
    check_positive_int,
)

# ---- the formulas ----------------------------------------------------------------------------


def td_error(reward: Any, value: Any, next_value: Any, terminated: Any, gamma: float) -> Any:
    """delta = r + gamma * (1 - terminated) * V(s') - V(s), elementwise (broadcastable shapes)."""
    gamma = check_gamma(gamma)
    done = np.asarray(terminated, dtype=float)
    return reward + gamma * (1.0 - done) * next_value - value


def n_step_return(rewards: Any, bootstrap: Any, terminated: Any, gamma: float) -> Any:
    """G = sum_{i<k} gamma^i r_i + gamma^k (1 - terminated) * bootstrap.

    ``rewards`` [..., k] holds the k rewards along the last axis; ``bootstrap`` [...] is
    V(s_{t+k}) and ``terminated`` [...] says the episode ended within those k steps.
    """
    gamma = check_gamma(gamma)
    r = np.asarray(rewards, dtype=float)
    if r.ndim == 0:
        raise ValueError("rewards must have at least one axis (the k rewards of the window)")
    k = r.shape[-1]
    discounted = (r * gamma ** np.arange(k)).sum(axis=-1)
    done = np.asarray(terminated, dtype=float)
    return discounted + gamma**k * (1.0 - done) * np.asarray(bootstrap, dtype=float)


def returns_to_go(rewards: Any, gamma: float) -> np.ndarray:
    """Monte-Carlo returns G_t = r_t + gamma G_{t+1} of one episode: [T] -> [T]."""
    gamma = check_gamma(gamma)
    r = as_float_array(rewards, "rewards", ndim=1)
    out = np.zeros_like(r)
    g = 0.0
    for t in range(len(r) - 1, -1, -1):
        g = r[t] + gamma * g
        out[t] = g
    return out


def sarsa_target(reward: float, q_next: Any, next_action: int, terminated: bool, gamma: float
                 ) -> float:
    """r + gamma * (1 - terminated) * Q(s', a') for one transition; a' is the action taken next.

    ``q_next`` [A] is the row Q[s'] of the next state.
    """
    gamma = check_gamma(gamma)
    return float(reward) + (0.0 if terminated else gamma * float(q_next[int(next_action)]))


def q_learning_target(reward: float, q_next: Any, terminated: bool, gamma: float) -> float:
    """r + gamma * (1 - terminated) * max_a' Q(s', a') for one transition; ``q_next`` [A]."""
    gamma = check_gamma(gamma)
    return float(reward) + (0.0 if terminated else gamma * float(np.max(q_next)))


def epsilon_greedy_probs(q: Any, epsilon: float) -> np.ndarray:
    """Action probabilities [..., A] of epsilon-greedy on ``q`` [..., A]; ties share 1-eps."""
    epsilon = check_in_range(epsilon, "epsilon", 0.0, 1.0)
    q = as_float_array(q, "q")
    best = q == q.max(axis=-1, keepdims=True)
    n_a = q.shape[-1]
    return epsilon / n_a + (1.0 - epsilon) * best / best.sum(axis=-1, keepdims=True)


def importance_weights(p: Any, q: Any) -> np.ndarray:
    """w = p / q elementwise, with w = 0 where p = q = 0.

    ``p``, ``q``: target and behaviour probabilities (or densities) of the same points.
    Raises ``ValueError`` where q = 0 < p: q does not cover p there (the support condition).
    """
    p = as_float_array(p, "p")
    q = as_float_array(q, "q")
    if np.any(p < 0) or np.any(q < 0):
        raise ValueError("probabilities p and q must be non-negative")
    if np.any((q == 0) & (p > 0)):
        raise ValueError("q(x) = 0 where p(x) > 0: the behaviour distribution must cover the "
                         "target's support")
    return np.divide(p, q, out=np.zeros(np.broadcast(p, q).shape), where=q > 0)


def effective_sample_size(w: Any, axis: int = -1) -> np.ndarray:
    """Kish's effective sample size (sum w)^2 / sum w^2 along ``axis`` (n for equal weights)."""
    w = as_float_array(w, "w")
    if np.any(w < 0):
        raise ValueError("importance weights must be non-negative")
    return w.sum(axis=axis) ** 2 / (w**2).sum(axis=axis)


def is_estimate(f: Any, w: Any, weighted: bool = False, axis: int = -1) -> np.ndarray:
    """Ordinary IS mean(w f) or, with ``weighted``, self-normalised sum(w f) / sum(w)."""
    f, w = as_float_array(f, "f"), as_float_array(w, "w")
    if weighted:
        return (w * f).sum(axis=axis) / w.sum(axis=axis)
    return (w * f).mean(axis=axis)


def shaped_reward(reward: Any, phi: Any, phi_next: Any, terminated: Any, gamma: float) -> Any:
    """r' = r + gamma * (1 - terminated) * Phi(s') - Phi(s): potential-based shaping."""
    gamma = check_gamma(gamma)
    done = np.asarray(terminated, dtype=float)
    return reward + gamma * (1.0 - done) * phi_next - phi


# ---- shaping on exact MDPs -------------------------------------------------------------------


def shape_mdp(mdp: TabularMDP, phi: Any) -> TabularMDP:
    """The MDP with R'(s,a) = R(s,a) + sum_s' P(s'|s,a) gamma Phi(s') - Phi(s).

    ``phi`` [S]; it is set to 0 on terminal states (the telescoping argument needs that).
    """
    phi = as_float_array(phi, "phi", ndim=1)
    if phi.shape != (mdp.n_states,):
        raise ValueError(f"phi must have shape ({mdp.n_states},), got {phi.shape}")
    phi = np.where(mdp.terminal, 0.0, phi)
    R = shaped_reward(mdp.R, phi[:, None], mdp.P @ phi, False, mdp.gamma)
    R[mdp.terminal] = 0.0
    return TabularMDP(mdp.P, R, mdp.gamma, mdp.terminal)


def add_entry_bonus(mdp: TabularMDP, cell: int, bonus: float) -> TabularMDP:
    """The MDP with ``bonus`` added each time the agent *enters* ``cell`` (not potential-based).

    R'(s,a) = R(s,a) + bonus * P(cell | s, a) for non-terminal s.
    """
    if not 0 <= int(cell) < mdp.n_states:
        raise ValueError(f"cell must be a state index in [0, {mdp.n_states}), got {cell!r}")
    R = mdp.R + float(bonus) * mdp.P[:, :, int(cell)]
    R[mdp.terminal] = 0.0
    return TabularMDP(mdp.P, R, mdp.gamma, mdp.terminal)


def grid_distances(layout: tuple[str, ...] | list[str]) -> np.ndarray:
    """Shortest-path step counts [rows*cols] from each cell to the nearest 'G' (walls: inf)."""
    rows, cols = len(layout), len(layout[0])
    dist = np.full(rows * cols, np.inf)
    todo: deque[int] = deque()
    for i, ch in enumerate("".join(layout)):
        if ch == "G":
            dist[i] = 0.0
            todo.append(i)
    while todo:
        s = todo.popleft()
        r, c = divmod(s, cols)
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nr, nc = r + dr, c + dc
            if 0 <= nr < rows and 0 <= nc < cols and layout[nr][nc] != "#":
                n = nr * cols + nc
                if dist[n] == np.inf:
                    dist[n] = dist[s] + 1
                    todo.append(n)
    return dist


# ---- the random walk -------------------------------------------------------------------------


def random_walk_mdp(n_states: int = 19, gamma: float = 1.0) -> TabularMDP:
    """The random walk as an MDP with one action: states 0 and n+1 terminal, 1..n inner.

    Each step moves left or right with probability 1/2; leaving on the left pays -1, on the
    right +1. Shapes: P [n+2, 1, n+2], R [n+2, 1].
    """
    n = check_positive_int(n_states, "n_states")
    S = n + 2
    P, R = np.zeros((S, 1, S)), np.zeros((S, 1))
    for s in range(1, n + 1):
        P[s, 0, s - 1] = P[s, 0, s + 1] = 0.5
    R[1, 0], R[n, 0] = -0.5, 0.5
    P[0, 0, 0] = P[S - 1, 0, S - 1] = 1.0
    terminal = np.zeros(S, bool)
    terminal[[0, S - 1]] = True
    return TabularMDP(P, R, gamma, terminal)


def random_walk_values(n_states: int = 19) -> np.ndarray:
    """Closed form V(i) = 2i/(n+1) - 1 for the inner states i = 1..n (gamma = 1): [n]."""
    n = check_positive_int(n_states, "n_states")
    return 2.0 * np.arange(1, n + 1) / (n + 1) - 1.0


@dataclass(frozen=True)
class WalkData:
    """Episodes of runs laid end to end: arrays [runs, L], padded after the last episode.

    ``states``/``next_states`` index the MDP (0 and n+1 terminal), ``terminated`` marks the
    last step of each episode, ``episode`` its index and ``valid`` the real (unpadded) steps.
    """

    states: np.ndarray
    next_states: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    episode: np.ndarray
    valid: np.ndarray
    n_states: int
    n_episodes: int

    @property
    def n_runs(self) -> int:
        return self.states.shape[0]


def sample_random_walks(n_states: int, n_episodes: int, n_runs: int, seed: int) -> WalkData:
    """Simulate ``n_runs`` x ``n_episodes`` walks from the centre state, all at once."""
    n = check_positive_int(n_states, "n_states")
    E, R = check_positive_int(n_episodes, "n_episodes"), check_positive_int(n_runs, "n_runs")
    rng = np.random.default_rng(seed)
    pos = np.full(R * E, (n + 1) // 2)
    paths = [pos.copy()]
    while np.any((pos > 0) & (pos <= n)):
        live = (pos > 0) & (pos <= n)
        pos = pos + np.where(live, rng.choice((-1, 1), size=pos.shape), 0)
        paths.append(pos.copy())
    walks = np.stack(paths, axis=1).reshape(R, E, -1)  # [run, episode, time]
    lengths = ((walks > 0) & (walks <= n)).sum(axis=2)  # steps per episode
    L = int(lengths.sum(axis=1).max())
    out = {k: np.zeros((R, L), int) for k in ("states", "next_states", "episode")}
    out["episode"][:] = E
    rew, term, valid = np.zeros((R, L)), np.zeros((R, L), bool), np.zeros((R, L), bool)
    for r in range(R):
        k = 0
        for e in range(E):
            T = lengths[r, e]
            out["states"][r, k:k + T] = walks[r, e, :T]
            out["next_states"][r, k:k + T] = walks[r, e, 1:T + 1]
            out["episode"][r, k:k + T] = e
            rew[r, k + T - 1] = 1.0 if walks[r, e, T] == n + 1 else -1.0
            term[r, k + T - 1] = valid[r, k:k + T] = True
            k += T
    return WalkData(out["states"], out["next_states"], rew, term, out["episode"], valid, n, E)


def _windows(data: WalkData, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each step: the next n rewards of its episode [R, L, n] (zeros after the end),
    whether the episode ends within them [R, L], and the bootstrap state s_{t+n} [R, L]."""
    R, L = data.states.shape
    pad = lambda x, v: np.concatenate([x, np.full((R, n), v, dtype=x.dtype)], axis=1)
    rew, term, nxt = pad(data.rewards, 0.0), pad(data.terminated, True), pad(data.next_states, 0)
    windows = np.zeros((R, L, n))
    ended = np.zeros((R, L), bool)
    for j in range(n):
        windows[:, :, j] = np.where(ended, 0.0, rew[:, j:j + L])
        ended = ended | term[:, j:j + L]
    return windows, ended, nxt[:, n - 1:n - 1 + L]


def nstep_td_sweep(data: WalkData, n: int | None, alphas: Any, gamma: float = 1.0,
                   target_fn: Callable[..., Any] = n_step_return) -> np.ndarray:
    """Online n-step TD prediction on every run and step size at once (V starts at 0).

    ``n=None`` means Monte Carlo (n = infinity). Updates happen in the usual order (one per
    step, the rest flushed at the episode end), which equals applying them one by one along
    each run's stream. Returns the RMS error over inner states after each episode,
    [len(alphas), runs, n_episodes + 1] (index 0: before learning).
    """
    gamma = check_gamma(gamma)
    alphas = as_float_array(alphas, "alphas", ndim=1)
    if n is not None:
        n = check_positive_int(n, "n")
    R, L = data.states.shape
    N = data.n_states
    truth = random_walk_values(N)
    V = np.zeros((len(alphas), R, N + 2))
    err = np.zeros((len(alphas), R, data.n_episodes + 1))
    err[:, :, 0] = np.sqrt(np.mean(truth**2))
    runs = np.arange(R)
    if n is None:
        mc = _episode_returns(data, gamma)
    else:
        windows, ended, boot = _windows(data, n)
    a = alphas[:, None]
    for k in range(L):
        s = data.states[:, k]
        if n is None:
            G = np.broadcast_to(mc[:, k], (len(alphas), R))
        else:
            G = target_fn(windows[:, k], V[:, runs, boot[:, k]], ended[:, k], gamma)
        V[:, runs, s] += a * (G - V[:, runs, s]) * data.valid[:, k]
        done = np.flatnonzero(data.terminated[:, k])
        if done.size:
            diff = V[:, done, 1:N + 1] - truth
            err[:, done, data.episode[done, k] + 1] = np.sqrt(np.mean(diff**2, axis=-1))
    return err


def _episode_returns(data: WalkData, gamma: float) -> np.ndarray:
    """Monte-Carlo return of every step, restarting at each episode boundary: [R, L]."""
    out = np.zeros(data.rewards.shape)
    g = np.zeros(data.n_runs)
    for k in range(data.rewards.shape[1] - 1, -1, -1):
        g = data.rewards[:, k] + gamma * np.where(data.terminated[:, k], 0.0, g)
        out[:, k] = g
    return out


def td0_estimates(data: WalkData, alpha: float | str, gamma: float = 1.0,
                  td_error_fn: Callable[..., Any] = td_error) -> np.ndarray:
    """TD(0) value estimates of every run after each episode: [runs, n_episodes, n+2].

    ``alpha`` is a constant step size or ``"1/n"`` for 1/(number of visits to s).
    """
    gamma = check_gamma(gamma)
    decay = alpha == "1/n"
    if not decay:
        alpha = check_in_range(alpha, "alpha", 0.0, 1.0, low_open=True)
    R, L = data.states.shape
    V = np.zeros((R, data.n_states + 2))
    visits = np.zeros_like(V)
    out = np.zeros((R, data.n_episodes, data.n_states + 2))
    runs = np.arange(R)
    for k in range(L):
        s, s2, ok = data.states[:, k], data.next_states[:, k], data.valid[:, k]
        visits[runs, s] += ok
        step = 1.0 / np.maximum(visits[runs, s], 1.0) if decay else alpha
        delta = td_error_fn(data.rewards[:, k], V[runs, s], V[runs, s2], data.terminated[:, k],
                            gamma)
        V[runs, s] += step * delta * ok
        done = np.flatnonzero(data.terminated[:, k])
        out[done, data.episode[done, k]] = V[done]
    return out


def mc_estimates(data: WalkData, gamma: float = 1.0) -> np.ndarray:
    """First-visit Monte-Carlo (sample-average) estimates of every run after each episode.

    Returns [runs, n_episodes, n+2]; a state not yet visited keeps the estimate 0.
    """
    gamma = check_gamma(gamma)
    G = _episode_returns(data, gamma)
    R, L = data.states.shape
    S = data.n_states + 2
    sums, counts = np.zeros((R, data.n_episodes + 1, S)), np.zeros((R, data.n_episodes + 1, S))
    seen = np.zeros((R, S), bool)
    runs = np.arange(R)
    for k in range(L):
        s, e, ok = data.states[:, k], data.episode[:, k], data.valid[:, k]
        first = ok & ~seen[runs, s]
        sums[runs, e, s] += np.where(first, G[:, k], 0.0)
        counts[runs, e, s] += first
        seen[runs, s] |= first
        seen[data.terminated[:, k]] = False
    sums, counts = sums.cumsum(axis=1)[:, :-1], counts.cumsum(axis=1)[:, :-1]
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)


def first_visit_mc(episodes: list[tuple[Any, Any]], n_states: int, gamma: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """First-visit Monte-Carlo prediction by sample averages.

    ``episodes``: list of (states [T], rewards [T]) where rewards[t] follows states[t].
    Returns (V [n_states], visit counts [n_states]); never-visited states keep V = 0.
    """
    gamma = check_gamma(gamma)
    total, count = np.zeros(n_states), np.zeros(n_states)
    for states, rewards in episodes:
        states = np.asarray(states, dtype=int)
        G = returns_to_go(rewards, gamma)
        if G.shape != states.shape:
            raise ValueError(f"states and rewards differ in length: {states.shape} vs {G.shape}")
        first, idx = np.unique(states, return_index=True)
        total[first] += G[idx]
        count[first] += 1
    return np.divide(total, count, out=np.zeros(n_states), where=count > 0), count


def walk_episodes(data: WalkData, run: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The episodes of one run of ``data`` as (states, rewards) pairs."""
    ok = data.valid[run]
    ep, s, r = data.episode[run, ok], data.states[run, ok], data.rewards[run, ok]
    return [(s[ep == e], r[ep == e]) for e in range(data.n_episodes)]


# ---- control on gymnasium environments -------------------------------------------------------


def latest_env_id(name: str) -> str:
    """The newest registered gymnasium id ``name-vN`` (e.g. 'Taxi' -> 'Taxi-v4' in 1.4)."""
    import gymnasium as gym

    versions = [int(m.group(1)) for k in gym.registry
                if (m := re.fullmatch(rf"{re.escape(name)}-v(\d+)", k))]
    if not versions:
        raise ValueError(f"no gymnasium environment called {name!r} is registered")
    return f"{name}-v{max(versions)}"


def epsilon_greedy(q_row: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """One epsilon-greedy action for the action values ``q_row`` [A].

    The random numbers are drawn in a fixed order, so that two implementations given
    generators in the same state pick the same actions:

    1. ``u = rng.random()``; explore when ``u < epsilon``;
    2. explore: the action is ``rng.integers(A)`` (uniform over all A actions, greedy included);
    3. exploit: ``best`` = the maximisers of ``q_row`` in increasing order, and the action is
       ``best[rng.integers(len(best))]``: ties are broken uniformly at random (with a single
       maximiser ``rng.integers(1)`` draws nothing).
    """
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon!r}")
    if rng.random() < epsilon:
        return int(rng.integers(q_row.shape[0]))
    best = np.flatnonzero(q_row == q_row.max())
    return int(best[rng.integers(best.size)])


def _check_episode_args(env: Any, Q: Any, alpha: float, gamma: float, epsilon: float
                        ) -> tuple[float, float, float]:
    """Validate the arguments shared by the episode functions; returns (alpha, gamma, eps)."""
    n_s = check_discrete_space(env.observation_space, "episode (observations)")
    n_a = check_discrete_space(env.action_space, "episode (actions)")
    if not isinstance(Q, np.ndarray) or Q.shape != (n_s, n_a):
        raise ValueError(f"Q must be a numpy array of shape (S, A) = {(n_s, n_a)}, got "
                         f"{getattr(Q, 'shape', type(Q).__name__)}")
    return (check_in_range(alpha, "alpha", 0.0, 1.0, low_open=True), check_gamma(gamma),
            check_in_range(epsilon, "epsilon", 0.0, 1.0))


def q_learning_episode(env: Any, Q: np.ndarray, alpha: float, gamma: float, epsilon: float,
                       rng: np.random.Generator, *,
                       reward_fn: Callable[..., float] | None = None,
                       target_fn: Callable[..., Any] | None = None) -> tuple[float, int]:
    """Play one episode of Q-learning from ``env.reset()`` and update ``Q`` [S, A] in place.

    Each step: pick ``a = epsilon_greedy(Q[s], epsilon, rng)`` with the Q of that moment
    (after the previous update), step, move Q[s, a] a fraction alpha towards
    ``r + gamma * max_a' Q[s', a']``, with nothing bootstrapped when ``terminated``; a
    *truncated* step (time limit) still bootstraps. The episode ends when either flag is set.
    ``reward_fn(s, a, r, s_next, terminated)`` replaces the reward used for learning (not the
    one returned); ``target_fn`` replaces :func:`q_learning_target` (same signature).
    Returns (undiscounted return of the environment's rewards, number of steps).
    """
    alpha, gamma, epsilon = _check_episode_args(env, Q, alpha, gamma, epsilon)
    target_fn = target_fn or q_learning_target
    s, _ = env.reset()
    total, steps, done = 0.0, 0, False
    while not done:
        a = epsilon_greedy(Q[s], epsilon, rng)
        s2, r, terminated, truncated, _ = env.step(a)
        r_learn = r if reward_fn is None else reward_fn(s, a, r, s2, terminated)
        target = target_fn(r_learn, Q[s2], terminated, gamma)
        Q[s, a] += alpha * (float(target) - Q[s, a])
        total, steps = total + float(r), steps + 1
        s, done = s2, bool(terminated or truncated)
    return total, steps


def sarsa_episode(env: Any, Q: np.ndarray, alpha: float, gamma: float, epsilon: float,
                  rng: np.random.Generator, *, reward_fn: Callable[..., float] | None = None,
                  target_fn: Callable[..., Any] | None = None) -> tuple[float, int]:
    """Play one episode of SARSA from ``env.reset()`` and update ``Q`` [S, A] in place.

    Same contract as :func:`q_learning_episode`, except that the next action a' is drawn
    (epsilon-greedily, before the update) after every step, bootstrapped on through
    ``Q[s', a']`` (:func:`sarsa_target`) and then taken.
    """
    alpha, gamma, epsilon = _check_episode_args(env, Q, alpha, gamma, epsilon)
    target_fn = target_fn or sarsa_target
    s, _ = env.reset()
    a = epsilon_greedy(Q[s], epsilon, rng)
    total, steps, done = 0.0, 0, False
    while not done:
        s2, r, terminated, truncated, _ = env.step(a)
        a2 = epsilon_greedy(Q[s2], epsilon, rng)
        r_learn = r if reward_fn is None else reward_fn(s, a, r, s2, terminated)
        target = target_fn(r_learn, Q[s2], a2, terminated, gamma)
        Q[s, a] += alpha * (float(target) - Q[s, a])
        total, steps = total + float(r), steps + 1
        s, a, done = s2, a2, bool(terminated or truncated)
    return total, steps


class EpisodeLimit(gym.Wrapper):
    """Truncates every episode after ``max_steps`` steps and remembers how the last one ended.

    ``terminated`` says whether the latest step entered a terminal state, so a caller can tell
    a finished episode from a cut one without help from the episode function.
    """

    def __init__(self, env: Any, max_steps: int):
        super().__init__(env)
        self.max_steps = check_positive_int(max_steps, "max_steps")
        self.steps, self.terminated = 0, False

    def reset(self, **kwargs: Any) -> Any:
        self.steps, self.terminated = 0, False
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        obs, r, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        self.terminated = bool(terminated)
        return obs, r, terminated, bool(truncated or self.steps >= self.max_steps), info


@dataclass
class ControlResult:
    """What :func:`td_control` learned: Q [S, A] and per-episode returns, lengths, successes."""

    Q: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray
    terminated: np.ndarray


def td_control(env: Any, method: str, n_episodes: int, *, alpha: float, epsilon: float,
               gamma: float, seed: int, max_steps: int = 1000,
               reward_fn: Callable[..., float] | None = None,
               target_fn: Callable[..., Any] | None = None,
               episode_fn: Callable[..., tuple[float, int]] | None = None) -> ControlResult:
    """SARSA (``method='sarsa'``) or Q-learning (``'q_learning'``) with epsilon-greedy, Q0 = 0.

    Every episode is ``episode_fn(env, Q, alpha, gamma, epsilon, rng)`` (default
    :func:`sarsa_episode` or :func:`q_learning_episode`) on the env wrapped in
    :class:`EpisodeLimit` (a cut at ``max_steps`` is a truncation: it still bootstraps), with
    one ``np.random.default_rng(seed)`` for all episodes. ``reward_fn`` (shaping; the recorded
    returns stay the environment's) and ``target_fn`` go to the default episode functions and
    cannot be combined with ``episode_fn``.
    """
    n_s = check_discrete_space(env.observation_space, "td_control (observations)")
    n_a = check_discrete_space(env.action_space, "td_control (actions)")
    if method not in ("sarsa", "q_learning"):
        raise ValueError(f"method must be 'sarsa' or 'q_learning', got {method!r}")
    n_episodes = check_positive_int(n_episodes, "n_episodes")
    alpha = check_in_range(alpha, "alpha", 0.0, 1.0, low_open=True)
    epsilon, gamma = check_in_range(epsilon, "epsilon", 0.0, 1.0), check_gamma(gamma)
    if episode_fn is None:
        default = sarsa_episode if method == "sarsa" else q_learning_episode
        episode_fn = lambda *args: default(*args, reward_fn=reward_fn, target_fn=target_fn)
    elif reward_fn is not None or target_fn is not None:
        raise ValueError("reward_fn and target_fn apply to the default episode functions; "
                         "with episode_fn, build them into your episode")
    play = EpisodeLimit(env, max_steps)
    rng = np.random.default_rng(seed)
    Q = np.zeros((n_s, n_a))
    res = ControlResult(Q, np.zeros(n_episodes), np.zeros(n_episodes, int),
                        np.zeros(n_episodes, bool))
    play.reset(seed=seed)
    env.action_space.seed(seed)
    for ep in range(n_episodes):
        res.returns[ep], res.lengths[ep] = episode_fn(play, Q, alpha, gamma, epsilon, rng)
        res.terminated[ep] = play.terminated
    return res


def greedy_rollout(env: Any, Q: np.ndarray, seed: int | None = None, max_steps: int = 200
                   ) -> tuple[list[int], float, bool]:
    """Follow argmax Q from a reset; returns (visited states incl. the first, return, reached).

    ``reached`` is True when the episode terminated within ``max_steps``.
    """
    check_discrete_space(env.observation_space, "greedy_rollout (observations)")
    max_steps = check_positive_int(max_steps, "max_steps")
    s, _ = env.reset(seed=seed)
    path, total = [int(s)], 0.0
    for _ in range(max_steps):
        s, r, term, trunc, _ = env.step(int(np.argmax(Q[s])))
        path.append(int(s))
        total += float(r)
        if term or trunc:
            return path, total, bool(term)
    return path, total, False


def evaluate_greedy(env: Any, Q: np.ndarray, n_episodes: int, seed: int,
                    max_steps: int = 200) -> np.ndarray:
    """Returns [n_episodes] of the greedy policy, episode i reset with seed ``seed + i``."""
    n_episodes = check_positive_int(n_episodes, "n_episodes")
    return np.array([greedy_rollout(env, Q, seed + i, max_steps)[1] for i in range(n_episodes)])



def draw_grid_paths(ax: Any, n_rows: int, n_cols: int, paths: dict[str, list[int]], *,
                    blocked: Any = (), labels: dict[int, str] | None = None,
                    max_len: int = 60) -> Any:
    """Draw a grid (``blocked`` cells shaded, ``labels`` {cell: text}) and state paths on it.

    Cells are indexed ``row * n_cols + col``; each path is drawn for at most ``max_len`` steps,
    slightly offset so that overlapping paths stay visible.
    """
    img = np.zeros((n_rows, n_cols))
    for c in np.asarray(blocked, dtype=int).ravel():
        img[divmod(int(c), n_cols)] = 1.0
    ax.imshow(img, cmap="Greys", vmin=0, vmax=1.6)
    for cell, text in (labels or {}).items():
        r, c = divmod(int(cell), n_cols)
        ax.text(c, r, text, ha="center", va="center", fontsize=12, fontweight="bold")
    k = len(paths)
    for i, (name, path) in enumerate(paths.items()):
        rc = np.array([divmod(int(s), n_cols) for s in path[:max_len + 1]], dtype=float)
        off = 0.15 * (i - (k - 1) / 2)
        ax.plot(rc[:, 1] + off, rc[:, 0] + off, "-o", markersize=3, linewidth=2, label=name)
    ax.set_xticks(np.arange(-0.5, n_cols, 1), labels=[])
    ax.set_yticks(np.arange(-0.5, n_rows, 1), labels=[])
    ax.tick_params(length=0)
    ax.grid(True, color="0.7", alpha=1.0)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=max(k, 1), frameon=False)
    return ax


__all__ = [
    "ControlResult", "EpisodeLimit", "WalkData", "add_entry_bonus", "draw_grid_paths",
    "effective_sample_size", "epsilon_greedy", "epsilon_greedy_probs", "evaluate_greedy",
    "first_visit_mc", "greedy_rollout", "grid_distances", "importance_weights", "is_estimate",
    "latest_env_id", "mc_estimates", "n_step_return", "nstep_td_sweep", "q_learning_episode",
    "q_learning_target", "random_walk_mdp", "random_walk_values", "returns_to_go",
    "sample_random_walks", "sarsa_episode", "sarsa_target", "shape_mdp", "shaped_reward",
    "td0_estimates", "td_control", "td_error", "walk_episodes",
]
