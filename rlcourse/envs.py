"""Environments of the course and helpers for the agent-environment loop (notebook 00).

:class:`GridWorld` is the course's canonical gridworld: +10 for reaching the exit, -5 for
bumping into a wall or the edge (the agent then stays put), ``step_reward`` otherwise. It is a
real gymnasium environment, registered as ``rlcourse/GridWorld-v0``, and it can also hand out
its exact transition table for dynamic programming (notebook 02).

The agent-environment loop lives here too. :func:`run_episode` plays one episode and returns a
:class:`Trajectory` of numpy arrays. Index convention: ``rewards[t]`` is the reward that follows
``actions[t]`` taken in ``observations[t]``, i.e. the theory's :math:`r_{t+1}`.
:func:`episode_return`, :func:`one_step_targets` (bootstrap through truncation, never through
termination) and :func:`evaluate_policy_mc` build on it; :func:`policy_from_table`,
:func:`uniform_policy` and :func:`render_policy_arrows` are small helpers for tabular policies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlcourse.validation import (
    as_float_array,
    check_discrete_space,
    check_distribution,
    check_gamma,
    check_in_range,
    check_positive_int,
    check_same_length,
)

DEFAULT_LAYOUT = (
    "S...#",
    ".##..",
    "...#.",
    "#...G",
)
ACTIONS = ("up", "right", "down", "left")  # the same order as gymnasium's CliffWalking
_MOVES = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)])


class GridWorld(gym.Env):
    """A grid maze. Cells: 'S' start, 'G' exit (terminal), '#' wall, '.' free.

    Observations are cell indices ``row * n_cols + col`` (walls included, never visited).
    With ``slip > 0`` a move goes sideways (each perpendicular direction w.p. ``slip/2``).
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, layout: tuple[str, ...] | list[str] = DEFAULT_LAYOUT, *,
                 goal_reward: float = 10.0, wall_reward: float = -5.0,
                 step_reward: float = 0.0, slip: float = 0.0, render_mode: str | None = None):
        if isinstance(layout, str):
            raise TypeError("layout must be a sequence of row strings, e.g. layout.split(), "
                            f"not one string ({layout!r})")
        rows = [str(r) for r in layout]
        if not rows or len({len(r) for r in rows}) != 1:
            raise ValueError("layout must be a non-empty list of equal-length strings")
        text = "".join(rows)
        if set(text) - set("SG#.") or text.count("S") != 1 or text.count("G") < 1:
            raise ValueError("layout may use only 'S', 'G', '#', '.', with one 'S' and a 'G'")
        self.layout = tuple(rows)
        self.n_rows, self.n_cols = len(rows), len(rows[0])
        self.goal_reward, self.wall_reward = float(goal_reward), float(wall_reward)
        self.step_reward = float(step_reward)
        self.slip = check_in_range(slip, "slip", 0.0, 1.0)
        self.render_mode = render_mode
        self.observation_space = spaces.Discrete(self.n_rows * self.n_cols)
        self.action_space = spaces.Discrete(4)
        self.start = text.index("S")
        self.P, self.R, self.terminal = self._build_table()
        self.state = self.start

    # -- dynamics -------------------------------------------------------------------------
    def _move(self, s: int, a: int) -> tuple[int, float]:
        """Deterministic effect of action ``a`` in cell ``s``: (next cell, reward)."""
        r, c = divmod(s, self.n_cols)
        nr, nc = r + _MOVES[a][0], c + _MOVES[a][1]
        if not (0 <= nr < self.n_rows and 0 <= nc < self.n_cols) or self.layout[nr][nc] == "#":
            return s, self.wall_reward
        nxt = nr * self.n_cols + nc
        return nxt, self.goal_reward if self.layout[nr][nc] == "G" else self.step_reward

    def _build_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """P [S, A, S'], expected reward R [S, A], terminal mask [S] (exits, absorbing)."""
        n_s, n_a = self.observation_space.n, 4
        P, R = np.zeros((n_s, n_a, n_s)), np.zeros((n_s, n_a))
        terminal = np.array([ch == "G" for ch in "".join(self.layout)])
        for s in range(n_s):
            if terminal[s] or "".join(self.layout)[s] == "#":
                P[s, :, s] = 1.0  # exits and (unreachable) walls are absorbing, reward 0
                continue
            for a in range(n_a):
                for b, p in ((a, 1 - self.slip), ((a + 1) % 4, self.slip / 2),
                             ((a + 3) % 4, self.slip / 2)):
                    if p > 0:
                        nxt, rew = self._move(s, b)
                        P[s, a, nxt] += p
                        R[s, a] += p * rew
        return P, R, terminal

    def transition_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of (P [S, A, S'], R [S, A], terminal [S]) for dynamic programming."""
        return self.P.copy(), self.R.copy(), self.terminal.copy()

    # -- gymnasium API ------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.state = self.start
        return self.state, {}

    def step(self, action: int):
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}; expected an int in 0..3 {ACTIONS}")
        a = int(action)
        if self.terminal[self.state]:  # after the exit: absorbing with reward 0, as in P and R
            return int(self.state), 0.0, True, False, {}
        b = a
        if self.slip > 0:
            u = self.np_random.random()
            b = a if u >= self.slip else (a + 1) % 4 if u < self.slip / 2 else (a + 3) % 4
        nxt, reward = self._move(self.state, b)
        self.state = int(nxt)
        terminated = bool(self.terminal[nxt])
        return self.state, float(reward), terminated, False, {}

    def render(self) -> str:
        """The grid as text, with 'A' at the agent's cell."""
        cells = list("".join(self.layout))
        cells[self.state] = "A"
        return "\n".join("".join(cells[i:i + self.n_cols])
                         for i in range(0, len(cells), self.n_cols))


gym.register(id="rlcourse/GridWorld-v0", entry_point=GridWorld, max_episode_steps=100)

ARROWS = "\u2191\u2192\u2193\u2190"  # up, right, down, left: the order of ACTIONS


# ---- the agent-environment loop ----------------------------------------------------------------

@dataclass(frozen=True)
class Trajectory:
    """One episode as arrays, all of length T (the number of steps).

    ``observations[t]`` is the observation the policy saw, ``actions[t]`` what it did,
    ``rewards[t]`` the reward that followed (the theory's r_{t+1}), and ``terminated[t]`` /
    ``truncated[t]`` the flags ``step`` returned; only the last step may carry a True flag.
    ``final_observation`` is s_T, the observation after the last step. Shapes: observations
    [T, *obs_shape], actions [T, *act_shape], rewards / terminated / truncated [T].
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_observation: Any = None

    def __post_init__(self) -> None:
        fields = {"observations": np.asarray(self.observations),
                  "actions": np.asarray(self.actions),
                  "rewards": as_float_array(self.rewards, "rewards", ndim=1),
                  "terminated": np.asarray(self.terminated, dtype=bool).reshape(-1),
                  "truncated": np.asarray(self.truncated, dtype=bool).reshape(-1)}
        check_same_length(**fields)
        for flag in ("terminated", "truncated"):
            if np.any(fields[flag][:-1]):
                raise ValueError(f"{flag} is True before the last step "
                                 f"(at t={int(np.argmax(fields[flag]))}); an episode ends there")
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def next_observations(self) -> np.ndarray:
        """[T, *obs_shape]: s_{t+1} for each step (the last one is ``final_observation``)."""
        if self.final_observation is None:
            raise ValueError("this trajectory has no final_observation, so s_T is unknown")
        final = np.asarray(self.final_observation)[None]
        return np.concatenate([self.observations[1:], final.astype(self.observations.dtype)])


def run_episode(env: gym.Env, policy: Callable[[Any], Any], seed: int | None = None,
                max_steps: int = 100_000) -> Trajectory:
    """Play one episode of ``policy`` (observation -> action) in ``env``.

    ``env.reset(seed=seed)`` starts it (pass a seed only for the first episode of an env). The
    loop stops at termination *or* truncation. An action outside ``env.action_space`` raises
    ``ValueError``; more than ``max_steps`` steps (an env without time limit) ``RuntimeError``.
    """
    if not callable(policy):
        raise TypeError(f"policy must be a function observation -> action, got {policy!r}")
    max_steps = check_positive_int(max_steps, "max_steps")
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards, terms, truncs = [], [], [], [], []
    for t in range(max_steps):
        action = policy(obs)
        if not env.action_space.contains(action):
            raise ValueError(f"the policy returned {action!r} at step {t}, which is not in the "
                             f"action space {env.action_space}")
        next_obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(float(reward))
        terms.append(bool(terminated))
        truncs.append(bool(truncated))
        obs = next_obs
        if terminated or truncated:
            return Trajectory(np.asarray(observations), np.asarray(actions), np.asarray(rewards),
                              np.asarray(terms), np.asarray(truncs), final_observation=obs)
    raise RuntimeError(f"no termination or truncation after max_steps={max_steps} steps; wrap "
                       "the env in a TimeLimit (gym.make(..., max_episode_steps=...))")


def episode_return(rewards: Any, gamma: float = 1.0) -> float:
    """G_0 = sum_k gamma^k rewards[k] for one episode's rewards [T] (0.0 for T = 0)."""
    r = as_float_array(rewards, "rewards", ndim=1)
    gamma = check_gamma(gamma)
    return float(np.sum(gamma ** np.arange(len(r)) * r))


def one_step_targets(rewards: Any, next_values: Any, terminated: Any, truncated: Any,
                     gamma: float) -> np.ndarray:
    """TD targets y_t = r_{t+1} + gamma (1 - terminated_t) V(s_{t+1}); all inputs [T] -> [T].

    A terminated step has no future (V of a terminal state is 0). A truncated step was cut by a
    time limit, not by the task, so it still bootstraps from ``next_values``: ``truncated`` is
    only checked for length, it does not change the target.
    """
    r = as_float_array(rewards, "rewards", ndim=1)
    v = as_float_array(next_values, "next_values", ndim=1)
    term = np.asarray(terminated, dtype=bool).reshape(-1)
    trunc = np.asarray(truncated, dtype=bool).reshape(-1)
    check_same_length(rewards=r, next_values=v, terminated=term, truncated=trunc)
    return r + check_gamma(gamma) * (1.0 - term) * v


@dataclass(frozen=True)
class ReturnStats:
    """Monte-Carlo summary: returns [N] and lengths [N] of N episodes, their mean and std."""

    returns: np.ndarray
    lengths: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def std(self) -> float:
        """Sample standard deviation of the returns (0 for one episode)."""
        return float(self.returns.std(ddof=1)) if len(self.returns) > 1 else 0.0

    @property
    def stderr(self) -> float:
        """Standard error of ``mean``."""
        return self.std / np.sqrt(len(self.returns))


def evaluate_policy_mc(env: gym.Env, policy: Callable[[Any], Any], episodes: int,
                       seed: int = 0, gamma: float = 1.0) -> ReturnStats:
    """Returns of ``episodes`` episodes of ``policy`` in ``env`` (seeded once, then continued).

    ``seed`` goes to the first ``reset`` and to ``env.action_space.seed``, so a policy that
    calls ``env.action_space.sample()`` is reproducible too.
    """
    episodes = check_positive_int(episodes, "episodes")
    gamma = check_gamma(gamma)
    env.action_space.seed(seed)
    returns, lengths = np.zeros(episodes), np.zeros(episodes, dtype=int)
    for i in range(episodes):
        traj = run_episode(env, policy, seed=seed if i == 0 else None)
        returns[i], lengths[i] = episode_return(traj.rewards, gamma), len(traj)
    return ReturnStats(returns, lengths)


# ---- tabular policies ------------------------------------------------------------------------

def uniform_policy(env: gym.Env) -> np.ndarray:
    """The uniformly random policy pi[s, a] = 1 / |A| as an [S, A] matrix (Discrete spaces)."""
    n_s = check_discrete_space(env.observation_space, "uniform_policy")
    n_a = check_discrete_space(env.action_space, "uniform_policy")
    return np.full((n_s, n_a), 1.0 / n_a)


def policy_from_table(pi: Any, rng: np.random.Generator | None = None) -> Callable[[Any], int]:
    """A policy function (state -> action) from a table.

    ``pi`` is either [S] integer actions or an [S, A] matrix of action probabilities. One-hot
    rows act deterministically; other rows are sampled, which needs a numpy ``rng``.
    """
    table = np.asarray(pi)
    if table.ndim == 1:
        if not np.issubdtype(table.dtype, np.integer):
            raise TypeError(f"a 1-D policy table must hold integer actions, got {table.dtype}")
        return lambda s: int(table[int(s)])
    probs = as_float_array(table, "pi", ndim=2)
    check_distribution(probs, "pi[s, :]", axis=1)
    greedy, one_hot = probs.argmax(axis=1), np.isclose(probs.max(axis=1), 1.0)
    if not one_hot.all() and rng is None:
        raise ValueError("pi has stochastic rows: pass rng=np.random.default_rng(seed)")

    def policy(s: Any) -> int:
        s = int(s)
        return int(greedy[s]) if one_hot[s] else int(rng.choice(probs.shape[1], p=probs[s]))

    return policy


def render_policy_arrows(env: gym.Env, pi: Any) -> str:
    """The GridWorld as text with the policy's action in each free cell.

    ``pi``: [S] actions or [S, A] probabilities (arrow of the most likely action; '*' where
    several actions tie). Walls are '#', exits 'G'.
    """
    grid = getattr(env, "unwrapped", env)
    if not isinstance(grid, GridWorld):
        raise TypeError(f"render_policy_arrows needs a GridWorld, got {type(grid).__name__}")
    table = np.asarray(pi)
    n_s = grid.observation_space.n
    if table.shape not in ((n_s,), (n_s, 4)):
        raise ValueError(f"pi must have shape ({n_s},) or ({n_s}, 4), got {table.shape}")
    cells = []
    for s, ch in enumerate("".join(grid.layout)):
        if ch in "#G":
            cells.append(ch)
        elif table.ndim == 1:
            cells.append(ARROWS[int(table[s])])
        else:
            best = np.flatnonzero(np.isclose(table[s], table[s].max()))
            cells.append(ARROWS[best[0]] if len(best) == 1 else "*")
    return "\n".join(" ".join(cells[i:i + grid.n_cols]) for i in range(0, n_s, grid.n_cols))
