"""Eligibility traces, planning with a learned model, and linear function approximation
(notebook 16, Sutton & Barto chapters 8, 9, 11 and 12).

* TD(lambda) with accumulating traces, written for a linear value function v(s) = w . x(s);
  with one-hot features it is tabular TD(lambda). A vectorised sweep runs it on the 19-state
  random walk for many runs and step sizes at once (S&B Figure 12.6). The offline lambda-return
  is computed from its definition (a weighted average of n-step returns), to compare with GAE.
* Dyna-Q on the Dyna maze (S&B Figure 8.2): a deterministic tabular model, n planning updates
  per real step.
* Semi-gradient linear TD(0) (with an importance ratio for off-policy data): state aggregation
  on the 1000-state random walk (S&B Figure 9.2) with its exact TD fixed point, and Baird's
  counterexample (S&B Figure 11.2), where off-policy semi-gradient TD diverges; TDC does not.

Conventions as in :mod:`rlcourse.tabular`: ``terminated`` means the next state is terminal, so
nothing is bootstrapped from it; arrays broadcast over leading axes (runs, step sizes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcourse import tabular
from rlcourse.validation import as_float_array, check_gamma, check_in_range, check_positive_int

# ---- TD(lambda) -----------------------------------------------------------------------------


def td_lambda_step(w: Any, z: Any, x: Any, x_next: Any, reward: Any, terminated: Any,
                   first: Any, alpha: Any, gamma: float, lam: float) -> tuple[Any, Any]:
    """One step of semi-gradient TD(lambda), accumulating traces, linear v(s) = w . x(s).

    Shapes: ``w``, ``z``, ``x`` (features of s_t), ``x_next`` (of s_{t+1}) are [..., d];
    ``reward``, ``terminated`` and ``first`` (s_t starts a new episode) are [...]; ``alpha`` is
    a scalar or [...]. Returns the new (w, z), leaving the inputs unchanged:

        z' = gamma * lam * (1 - first) * z + x
        delta = reward + gamma * (1 - terminated) * w . x_next - w . x
        w' = w + alpha * delta * z'
    """
    gamma, lam = check_gamma(gamma), check_gamma(lam, "lam")
    keep = 1.0 - np.asarray(first, dtype=float)[..., None]
    z = gamma * lam * keep * z + x
    alive = 1.0 - np.asarray(terminated, dtype=float)
    delta = reward + gamma * alive * (w * x_next).sum(-1) - (w * x).sum(-1)
    return w + (np.asarray(alpha, dtype=float) * delta)[..., None] * z, z


def episode_starts(data: tabular.WalkData) -> np.ndarray:
    """first[r, k] = True where step k of run r is the first step of an episode: [R, L]."""
    first = np.zeros(data.states.shape, bool)
    first[:, 0] = True
    first[:, 1:] = data.terminated[:, :-1]
    return first


def td_lambda_sweep(data: tabular.WalkData, lam: float, alphas: Any, gamma: float = 1.0,
                    step_fn: Callable[..., Any] = td_lambda_step) -> np.ndarray:
    """Online tabular TD(lambda) (one-hot features) on every run and step size at once.

    V starts at 0. Returns the RMS error over the inner states after each episode,
    [len(alphas), runs, n_episodes + 1] (index 0: before learning); diverged runs give inf.
    """
    gamma, lam = check_gamma(gamma), check_gamma(lam, "lam")
    alphas = as_float_array(alphas, "alphas", ndim=1)
    R, L = data.states.shape
    N = data.n_states
    eye = np.eye(N + 2)
    truth = tabular.random_walk_values(N)
    w = np.zeros((len(alphas), R, N + 2))
    z = np.zeros_like(w)
    err = np.zeros((len(alphas), R, data.n_episodes + 1))
    err[:, :, 0] = np.sqrt(np.mean(truth**2))
    first, a = episode_starts(data), alphas[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(L):
            ok = data.valid[:, k]
            w2, z2 = step_fn(w, z, eye[data.states[:, k]], eye[data.next_states[:, k]],
                             data.rewards[:, k], data.terminated[:, k], first[:, k], a,
                             gamma, lam)
            w = np.where(ok[:, None], w2, w)
            z = np.where(ok[:, None], z2, z)
            done = np.flatnonzero(data.terminated[:, k])
            if done.size:
                e = np.sqrt(np.mean((w[:, done, 1:N + 1] - truth) ** 2, axis=-1))
                err[:, done, data.episode[done, k] + 1] = np.nan_to_num(e, nan=np.inf)
    return err


def lambda_return(rewards: Any, values: Any, gamma: float, lam: float) -> np.ndarray:
    """Offline lambda-return of one episode that terminates after its last step, from the
    definition G^lam_t = (1 - lam) sum_{n=1}^{T-t-1} lam^(n-1) G_t^(n) + lam^(T-t-1) G_t.

    ``rewards`` [T] (rewards[t] follows s_t), ``values`` [T] = V(s_t); V(terminal) = 0.
    G_t^(n) is the n-step return bootstrapped with V(s_{t+n}); G_t the Monte-Carlo return.
    """
    gamma, lam = check_gamma(gamma), check_gamma(lam, "lam")
    r = as_float_array(rewards, "rewards", ndim=1)
    v = as_float_array(values, "values", ndim=1)
    if r.shape != v.shape:
        raise ValueError(f"rewards and values differ in shape: {r.shape} vs {v.shape}")
    T = len(r)
    out = np.zeros(T)
    for t in range(T):
        g_mc = float(tabular.n_step_return(r[t:], 0.0, True, gamma))
        total = lam ** (T - t - 1) * g_mc
        for n in range(1, T - t):
            g_n = float(tabular.n_step_return(r[t:t + n], v[t + n], False, gamma))
            total += (1.0 - lam) * lam ** (n - 1) * g_n
        out[t] = total
    return out


# ---- Dyna-Q ---------------------------------------------------------------------------------

DYNA_MAZE = (  # S&B Figure 8.2: start S, goal G, walls '#'
    ".......#G",
    "..#....#.",
    "S.#....#.",
    "..#......",
    ".....#...",
    ".........",
)
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right


@dataclass(frozen=True)
class GridTables:
    """A deterministic grid world as tables [S, A]: next state, reward, terminated."""

    next_state: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    start: int
    n_cols: int


def grid_tables(layout: tuple[str, ...] = DYNA_MAZE) -> GridTables:
    """Tables of a maze layout ('S' start, 'G' goal, '#' wall); reward +1 on entering G.

    Moving into a wall or off the grid leaves the agent in place (reward 0).
    """
    rows, cols = len(layout), len(layout[0])
    if any(len(row) != cols for row in layout):
        raise ValueError("all rows of the layout must have the same length")
    cells = "".join(layout)
    if cells.count("S") != 1 or cells.count("G") < 1:
        raise ValueError("the layout needs exactly one 'S' and at least one 'G'")
    S = rows * cols
    nxt = np.zeros((S, 4), int)
    for s in range(S):
        r, c = divmod(s, cols)
        for a, (dr, dc) in enumerate(MOVES):
            nr, nc = r + dr, c + dc
            ok = 0 <= nr < rows and 0 <= nc < cols and layout[nr][nc] != "#"
            nxt[s, a] = nr * cols + nc if ok else s
    goal = np.array([ch == "G" for ch in cells])
    return GridTables(nxt, goal[nxt].astype(float), goal[nxt], cells.index("S"), cols)


@dataclass
class DynaModel:
    """A learned deterministic model, arrays [S, A]: what followed each observed (s, a)."""

    next_state: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    seen: np.ndarray

    @classmethod
    def empty(cls, n_states: int, n_actions: int) -> DynaModel:
        shape = (check_positive_int(n_states, "n_states"),
                 check_positive_int(n_actions, "n_actions"))
        return cls(np.zeros(shape, int), np.zeros(shape), np.zeros(shape, bool),
                   np.zeros(shape, bool))

    def copy(self) -> DynaModel:
        return DynaModel(self.next_state.copy(), self.reward.copy(), self.terminated.copy(),
                         self.seen.copy())


def q_learning_update(Q: np.ndarray, s: int, a: int, r: float, s_next: int, terminated: bool,
                      alpha: float, gamma: float) -> None:
    """Q[s, a] += alpha * (r + gamma * (1 - terminated) * max Q[s_next] - Q[s, a]), in place."""
    target = r if terminated else r + gamma * Q[s_next].max()
    Q[s, a] += alpha * (target - Q[s, a])


def dyna_q_step(Q: np.ndarray, model: DynaModel, s: int, a: int, r: float, s_next: int,
                terminated: bool, n_planning: int, alpha: float, gamma: float,
                rng: np.random.Generator) -> None:
    """One real step of tabular Dyna-Q, updating ``Q`` [S, A] and ``model`` in place.

    1. direct RL: Q-learning update of Q[s, a] with the real transition;
    2. model learning: store (r, s_next, terminated) for (s, a) and mark it seen;
    3. planning: ``pairs = np.flatnonzero(model.seen)`` (flat indices s * A + a),
       ``picks = rng.integers(len(pairs), size=n_planning)``; for each pick in order, a
       Q-learning update of that pair with the model's reward, next state and terminated.
    """
    q_learning_update(Q, s, a, r, s_next, terminated, alpha, gamma)
    model.next_state[s, a], model.reward[s, a] = s_next, r
    model.terminated[s, a], model.seen[s, a] = terminated, True
    pairs = np.flatnonzero(model.seen)
    n_a = Q.shape[1]
    for pick in rng.integers(len(pairs), size=n_planning):
        ps, pa = divmod(int(pairs[pick]), n_a)
        q_learning_update(Q, ps, pa, model.reward[ps, pa], model.next_state[ps, pa],
                          model.terminated[ps, pa], alpha, gamma)


@dataclass
class DynaResult:
    """What :func:`run_dyna_q` measured: steps of each episode [E], the length of the greedy
    path from the start after each episode [E] (inf if it does not reach a goal within 200
    moves), and the final Q [S, A]."""

    steps: np.ndarray
    greedy_steps: np.ndarray
    Q: np.ndarray


def run_dyna_q(tables: GridTables, n_planning: int, n_episodes: int, seed: int, *,
               alpha: float = 0.1, gamma: float = 0.95, epsilon: float = 0.1,
               max_steps: int = 100_000, step_fn: Callable[..., Any] = dyna_q_step
               ) -> DynaResult:
    """Dyna-Q with epsilon-greedy (random tie-breaking), Q0 = 0, on a grid's tables.

    One generator (``seed``) drives both the behaviour and the planning draws.
    """
    n_planning = int(n_planning)
    if n_planning < 0:
        raise ValueError(f"n_planning must be >= 0, got {n_planning}")
    n_episodes = check_positive_int(n_episodes, "n_episodes")
    alpha = check_in_range(alpha, "alpha", 0.0, 1.0, low_open=True)
    gamma, epsilon = check_gamma(gamma), check_in_range(epsilon, "epsilon", 0.0, 1.0)
    rng = np.random.default_rng(seed)
    S, A = tables.next_state.shape
    Q, model = np.zeros((S, A)), DynaModel.empty(S, A)
    res = DynaResult(np.zeros(n_episodes, int), np.zeros(n_episodes), Q)
    for ep in range(n_episodes):
        s, done = tables.start, False
        while not done and res.steps[ep] < max_steps:
            a = tabular.epsilon_greedy(Q[s], epsilon, rng)
            s2, r, done = tables.next_state[s, a], tables.reward[s, a], tables.terminated[s, a]
            step_fn(Q, model, s, a, float(r), int(s2), bool(done), n_planning, alpha, gamma,
                    rng)
            s, res.steps[ep] = int(s2), res.steps[ep] + 1
        path = greedy_path(tables, Q)
        res.greedy_steps[ep] = len(path) - 1 if _reaches_goal(tables, path) else np.inf
    return res


def _reaches_goal(tables: GridTables, path: list[int]) -> bool:
    """Whether ``path`` ends in a goal (a state that some move enters with termination)."""
    goals = np.unique(tables.next_state[tables.terminated])
    return len(path) > 1 and path[-1] in goals.tolist()


def greedy_path(tables: GridTables, Q: np.ndarray, max_steps: int = 200) -> list[int]:
    """States visited by argmax Q (first maximiser) from the start, until a terminal state
    or ``max_steps`` moves."""
    s, path = tables.start, [tables.start]
    for _ in range(max_steps):
        a = int(np.argmax(Q[s]))
        path.append(int(tables.next_state[s, a]))
        if tables.terminated[s, a]:
            break
        s = path[-1]
    return path


# ---- linear function approximation ----------------------------------------------------------


def linear_td_step(w: Any, x: Any, x_next: Any, reward: Any, terminated: Any, alpha: float,
                   gamma: float, rho: Any = 1.0) -> np.ndarray:
    """Semi-gradient TD(0) for v(s) = w . x(s), weighted by the importance ratio ``rho``:

        w' = w + alpha * rho * delta * x,  delta = reward + gamma * (1 - terminated) * w . x_next
                                                    - w . x

    Shapes: ``w``, ``x``, ``x_next`` [..., d]; ``reward``, ``terminated``, ``rho`` [...].
    Returns the new w (the input is unchanged). The target is treated as a constant: the
    gradient is x, not x - gamma * x_next.
    """
    gamma = check_gamma(gamma)
    alive = 1.0 - np.asarray(terminated, dtype=float)
    delta = reward + gamma * alive * (w * x_next).sum(-1) - (w * x).sum(-1)
    return w + (alpha * np.asarray(rho, dtype=float) * delta)[..., None] * x


def walk_jump_mdp(n_states: int = 1000, max_jump: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The S&B random walk with jumps (Example 9.1), on the inner states only.

    From state i (1..n) jump to one of the ``max_jump`` states on the left or the right, all
    equally likely; a jump past an end terminates with reward -1 (left) or +1 (right).
    Returns (P_inner [n, n] sub-stochastic, expected reward [n]).
    """
    n, k = check_positive_int(n_states, "n_states"), check_positive_int(max_jump, "max_jump")
    P, r = np.zeros((n, n)), np.zeros(n)
    p = 0.5 / k
    for i in range(n):
        for j in list(range(i - k, i)) + list(range(i + 1, i + k + 1)):
            if 0 <= j < n:
                P[i, j] += p
            else:
                r[i] += p * (-1.0 if j < 0 else 1.0)
    return P, r


def walk_jump_values(n_states: int = 1000, max_jump: int = 100) -> np.ndarray:
    """True values [n] of the jump walk (gamma = 1), by a linear solve (I - P) v = r."""
    P, r = walk_jump_mdp(n_states, max_jump)
    return np.linalg.solve(np.eye(len(r)) - P, r)


def on_policy_distribution(P_inner: np.ndarray, start: int) -> np.ndarray:
    """Fraction of time mu [n] spent in each state of an episodic chain started at ``start``:
    expected visits eta = e_start^T (I - P)^-1, normalised."""
    n = P_inner.shape[0]
    eta = np.linalg.solve((np.eye(n) - P_inner).T, np.eye(n)[start])
    return eta / eta.sum()


def aggregation_features(n_states: int, n_groups: int) -> np.ndarray:
    """One-hot group membership X [n, n_groups]: state i belongs to group i * G // n."""
    n, G = check_positive_int(n_states, "n_states"), check_positive_int(n_groups, "n_groups")
    if n % G:
        raise ValueError(f"n_states ({n}) must be a multiple of n_groups ({G})")
    return np.eye(G)[np.arange(n) * G // n]


def td_fixed_point(X: np.ndarray, P_inner: np.ndarray, r: np.ndarray, mu: np.ndarray,
                   gamma: float = 1.0) -> np.ndarray:
    """Weights where expected semi-gradient TD(0) stops: A w = b with
    A = X^T D (X - gamma P X), b = X^T D r, D = diag(mu). X [n, d] -> w [d]."""
    gamma = check_gamma(gamma)
    D = mu[:, None] * X
    return np.linalg.solve(D.T @ (X - gamma * P_inner @ X), D.T @ r)


def ve_minimiser(X: np.ndarray, v_true: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Weights [d] minimising the mu-weighted value error sum mu (X w - v)^2 (what gradient
    Monte Carlo converges to)."""
    D = mu[:, None] * X
    return np.linalg.solve(D.T @ X, D.T @ v_true)


def jump_walk_td(n_groups: int, alpha: float, n_steps: int, n_runs: int, seed: int, *,
                 n_states: int = 1000, max_jump: int = 100,
                 step_fn: Callable[..., Any] = linear_td_step) -> np.ndarray:
    """Semi-gradient TD(0) with state aggregation on the jump walk, ``n_runs`` runs at once.

    Each run is one stream of episodes from the centre state; w starts at 0. Returns the
    weights after every step, [n_steps + 1, n_runs, n_groups].
    """
    n_steps, R = check_positive_int(n_steps, "n_steps"), check_positive_int(n_runs, "n_runs")
    X = np.vstack([np.zeros(n_groups), aggregation_features(n_states, n_groups),
                   np.zeros(n_groups)])  # rows 0 and n+1: the terminal states
    rng = np.random.default_rng(seed)
    jumps = rng.integers(1, max_jump + 1, size=(n_steps, R)) * rng.choice((-1, 1),
                                                                          size=(n_steps, R))
    centre = n_states // 2
    s = np.full(R, centre)
    w = np.zeros((R, n_groups))
    out = np.zeros((n_steps + 1, R, n_groups))
    for k in range(n_steps):
        s2 = np.clip(s + jumps[k], 0, n_states + 1)
        term = (s2 == 0) | (s2 == n_states + 1)
        reward = np.where(s2 == 0, -1.0, np.where(s2 == n_states + 1, 1.0, 0.0))
        w = step_fn(w, X[s], X[s2], reward, term, alpha, 1.0)
        out[k + 1] = w
        s = np.where(term, centre, s2)
    return out


# ---- Baird's counterexample (S&B Figure 11.2) -----------------------------------------------

BAIRD_W0 = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 10.0, 1.0])


def baird_features() -> np.ndarray:
    """X [7, 8]: v(s_i) = 2 w_i + w_8 for the six upper states, v(s_7) = w_7 + 2 w_8."""
    X = np.zeros((7, 8))
    X[np.arange(6), np.arange(6)] = 2.0
    X[:6, 7] = 1.0
    X[6, 6], X[6, 7] = 1.0, 2.0
    return X


def baird_off_policy_td(n_steps: int, seed: int, *, alpha: float = 0.01, gamma: float = 0.99,
                        on_policy: bool = False, step_fn: Callable[..., Any] = linear_td_step
                        ) -> np.ndarray:
    """Semi-gradient TD(0) on Baird's counterexample; weight history [n_steps + 1, 8].

    The behaviour picks *dashed* (next state uniform among the upper six) with probability 6/7
    and *solid* (next state 7) with 1/7; all rewards are 0. Off-policy (default), the target
    policy is always solid, so rho = 7 for solid and 0 for dashed. With ``on_policy`` the
    behaviour policy evaluates itself (rho = 1). The start state is uniform over the seven.
    """
    n_steps = check_positive_int(n_steps, "n_steps")
    X, rng = baird_features(), np.random.default_rng(seed)
    solid = rng.random(n_steps) < 1.0 / 7.0
    upper = rng.integers(0, 6, size=n_steps)
    s = int(rng.integers(0, 7))
    w = BAIRD_W0.copy()
    out = np.zeros((n_steps + 1, 8))
    out[0] = w
    for k in range(n_steps):
        s2 = 6 if solid[k] else int(upper[k])
        rho = 1.0 if on_policy else (7.0 if solid[k] else 0.0)
        w = step_fn(w, X[s], X[s2], 0.0, False, alpha, gamma, rho)
        out[k + 1], s = w, s2
    return out


def baird_expected_td(n_sweeps: int, *, alpha: float = 0.01, gamma: float = 0.99,
                      mu: Any = None) -> np.ndarray:
    """Expected (synchronous, DP-like) semi-gradient TD(0) for the target policy (always
    solid): w += alpha * sum_s mu(s) (gamma v(s_7) - v(s)) x(s). ``mu`` [7] defaults to the
    behaviour's uniform distribution. Weight history [n_sweeps + 1, 8].
    """
    n_sweeps = check_positive_int(n_sweeps, "n_sweeps")
    X = baird_features()
    mu = np.full(7, 1.0 / 7.0) if mu is None else as_float_array(mu, "mu", ndim=1)
    gamma = check_gamma(gamma)
    w = BAIRD_W0.copy()
    out = np.zeros((n_sweeps + 1, 8))
    out[0] = w
    for k in range(n_sweeps):
        v = X @ w
        w = w + alpha * (mu * (gamma * v[6] - v)) @ X
        out[k + 1] = w
    return out


def baird_target_network_td(n_steps: int, seed: int, *, copy_every: int = 100,
                            alpha: float = 0.01, gamma: float = 0.99) -> np.ndarray:
    """Off-policy semi-gradient TD(0) on Baird's counterexample with a *target network*: the
    bootstrap uses a copy w_target refreshed every ``copy_every`` steps,
    delta = gamma * w_target . x(s') - w . x(s). Same behaviour data as
    :func:`baird_off_policy_td` (same ``seed``); weight history [n_steps + 1, 8]."""
    n_steps = check_positive_int(n_steps, "n_steps")
    copy_every = check_positive_int(copy_every, "copy_every")
    gamma = check_gamma(gamma)
    X, rng = baird_features(), np.random.default_rng(seed)
    solid = rng.random(n_steps) < 1.0 / 7.0
    upper = rng.integers(0, 6, size=n_steps)
    s = int(rng.integers(0, 7))
    w = BAIRD_W0.copy()
    out = np.zeros((n_steps + 1, 8))
    out[0] = w
    for k in range(n_steps):
        if k % copy_every == 0:
            w_target = w.copy()
        s2 = 6 if solid[k] else int(upper[k])
        delta = gamma * w_target @ X[s2] - w @ X[s]
        w = w + alpha * (7.0 if solid[k] else 0.0) * delta * X[s]
        out[k + 1], s = w, s2
    return out


def tdc_step(w: np.ndarray, h: np.ndarray, x: np.ndarray, x_next: np.ndarray, reward: float,
             terminated: bool, alpha: float, beta: float, gamma: float, rho: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """TDC (gradient-corrected TD, S&B section 11.7) for linear v = w . x; returns (w, h):

        delta = reward + gamma * (1 - terminated) * w . x_next - w . x
        w' = w + alpha * rho * (delta * x - gamma * (1 - terminated) * (h . x) * x_next)
        h' = h + beta * rho * (delta - h . x) * x
    """
    gamma = check_gamma(gamma)
    alive = 0.0 if terminated else 1.0
    delta = reward + gamma * alive * w @ x_next - w @ x
    w2 = w + alpha * rho * (delta * x - gamma * alive * (h @ x) * x_next)
    return w2, h + beta * rho * (delta - h @ x) * x


def baird_tdc(n_steps: int, seed: int, *, alpha: float = 0.005, beta: float = 0.05,
              gamma: float = 0.99) -> np.ndarray:
    """TDC on Baird's counterexample with the same behaviour data as
    :func:`baird_off_policy_td` (same ``seed``); weight history [n_steps + 1, 8]."""
    n_steps = check_positive_int(n_steps, "n_steps")
    X, rng = baird_features(), np.random.default_rng(seed)
    solid = rng.random(n_steps) < 1.0 / 7.0
    upper = rng.integers(0, 6, size=n_steps)
    s = int(rng.integers(0, 7))
    w, h = BAIRD_W0.copy(), np.zeros(8)
    out = np.zeros((n_steps + 1, 8))
    out[0] = w
    for k in range(n_steps):
        s2 = 6 if solid[k] else int(upper[k])
        w, h = tdc_step(w, h, X[s], X[s2], 0.0, False, alpha, beta, gamma,
                        7.0 if solid[k] else 0.0)
        out[k + 1], s = w, s2
    return out


__all__ = [
    "BAIRD_W0", "DYNA_MAZE", "DynaModel", "DynaResult", "GridTables", "aggregation_features",
    "baird_expected_td", "baird_features", "baird_off_policy_td", "baird_target_network_td",
    "baird_tdc", "dyna_q_step",
    "episode_starts", "greedy_path", "grid_tables", "jump_walk_td", "lambda_return",
    "linear_td_step", "on_policy_distribution", "q_learning_update", "run_dyna_q", "tdc_step",
    "td_fixed_point", "td_lambda_step", "td_lambda_sweep", "ve_minimiser", "walk_jump_mdp",
    "walk_jump_values",
]
