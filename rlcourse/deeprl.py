"""Shared machinery of Part II (deep RL): vector envs, networks, episode bookkeeping, evaluation.

Vector environments follow gymnasium 1.x *next-step* autoreset: when sub-env ``i`` finishes at
step ``t`` (terminated or truncated), the observation returned at ``t`` is the episode's final
observation, and the *next* ``step`` call resets ``i``, ignores its action and returns the first
observation of the new episode with reward 0. That extra step is not a real transition. Rollout
code marks it with ``valid = False`` and leaves it out of every loss (see :class:`StepMask`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from torch import nn

from rlcourse.validation import check_discrete_space, check_positive_int

C = TypeVar("C")


def config_with(defaults: C, algo: str, overrides: dict[str, Any]) -> C:
    """A copy of the dataclass ``defaults`` with ``overrides``; unknown names are a TypeError.

    Tuple-typed fields given as lists (e.g. ``hidden=[64, 64]``) are stored as tuples.
    """
    known = {f.name for f in fields(defaults)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown {algo} hyperparameter(s) {unknown}; known: {sorted(known)}")
    fixed = {k: tuple(v) if isinstance(getattr(defaults, k), tuple) and isinstance(v, list)
             else v for k, v in overrides.items()}
    return replace(defaults, **fixed)


def env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of ``env_id``, with a clear error for unknown ids."""
    try:
        return gym.spec(env_id)
    except gym.error.Error as err:
        raise ValueError(f"unknown environment {env_id!r}: {err}") from None


def make_vec_env(env_id: str, num_envs: int, seed: int, **kwargs) -> gym.vector.VectorEnv:
    """A seeded vector env, using the env's own vectorised implementation when it has one.

    CartPole-v1 ships a numpy-vectorised version (no Python loop over sub-envs); others fall
    back to ``SyncVectorEnv``. Subprocess vector envs are never used: on 2 cores they are slower.
    """
    spec = env_spec(env_id)
    n = check_positive_int(num_envs, "num_envs")
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode=mode, **kwargs)
    autoreset = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if autoreset != AutoresetMode.NEXT_STEP:
        raise ValueError(f"{env_id}: expected next-step autoreset, got {autoreset}")
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    return envs


def check_env_for(algo: str, envs: gym.vector.VectorEnv) -> tuple[int, int]:
    """Return (obs_dim, n_actions) for a flat-Box, Discrete-action env; else a clear error."""
    n_actions = check_discrete_space(envs.single_action_space, algo)
    obs = envs.single_observation_space
    if not isinstance(obs, spaces.Box) or len(obs.shape) != 1:
        raise TypeError(f"{algo} needs a flat Box observation space, got {obs}")
    return int(obs.shape[0]), n_actions


def mlp(sizes: list[int], activation: type[nn.Module] = nn.Tanh, out_gain: float = 1.0
        ) -> nn.Sequential:
    """Fully connected net ``sizes[0] -> ... -> sizes[-1]`` with orthogonal init, zero biases.

    The last layer's gain is ``out_gain`` (small for policy heads keeps the first policy close
    to uniform).
    """
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"sizes must list at least two positive layer widths, got {sizes}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        lin = nn.Linear(a, b)
        nn.init.orthogonal_(lin.weight, gain=out_gain if last else np.sqrt(2))
        nn.init.zeros_(lin.bias)
        layers += [lin] if last else [lin, activation()]
    return nn.Sequential(*layers)


SOLVE_WINDOW = 20
"""Episodes in the running average that decides "solved" during training.

Gymnasium's reward thresholds are often read over 100 episodes; on CartPole-v1 that window alone
costs ~50k steps of near-perfect play, so the course judges training progress on the last 20
finished episodes and confirms every claim with a separate 100-episode greedy evaluation.
"""


@dataclass
class TrainResult:
    """What every Part II ``train`` function returns (the benchmark CLI reads these fields)."""

    algo: str
    env_id: str
    seed: int
    solved: bool
    steps_to_solve: int | None
    seconds_to_solve: float | None
    total_steps: int
    seconds: float
    act: Callable[[torch.Tensor], torch.Tensor]
    episode_returns: list[float] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)


def reward_threshold(env_id: str) -> float:
    """The env's registered reward threshold (e.g. 475 for CartPole-v1, -100 for Acrobot-v1)."""
    threshold = env_spec(env_id).reward_threshold
    if threshold is None:
        raise ValueError(f"{env_id} has no reward_threshold, so 'solved' is undefined for it")
    return float(threshold)


class EpisodeTracker:
    """Per-env returns and lengths from vector steps; a running mean over the last ``window``.

    ``solved``: the mean return of the last ``window`` finished episodes reaches ``threshold``
    (see :data:`SOLVE_WINDOW`).
    """

    def __init__(self, num_envs: int, threshold: float | None = None,
                 window: int = SOLVE_WINDOW):
        self.threshold = threshold
        self.window = check_positive_int(window, "window")
        self._ret = np.zeros(num_envs)
        self._len = np.zeros(num_envs, dtype=int)
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self._recent: deque[float] = deque(maxlen=self.window)

    def update(self, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
               valid: np.ndarray) -> None:
        """Add one vector step (arrays of shape [num_envs])."""
        self._ret += np.where(valid, rewards, 0.0)
        self._len += valid.astype(int)
        done = (terminated | truncated) & valid
        for i in np.flatnonzero(done):
            self.returns.append(float(self._ret[i]))
            self.lengths.append(int(self._len[i]))
            self._recent.append(float(self._ret[i]))
        self._ret[done], self._len[done] = 0.0, 0

    @property
    def running_mean(self) -> float:
        return float(np.mean(self._recent)) if self._recent else float("nan")

    @property
    def solved(self) -> bool:
        return (self.threshold is not None and len(self._recent) == self.window
                and self.running_mean >= self.threshold)


class StepMask:
    """Tracks which vector steps are real transitions under next-step autoreset."""

    def __init__(self, num_envs: int):
        self.prev_done = np.zeros(num_envs, dtype=bool)

    def step(self, terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
        """Return ``valid`` [num_envs] for the step just taken, and remember who finished."""
        valid = ~self.prev_done
        self.prev_done = (terminated | truncated) & valid
        return valid


@torch.no_grad()
def evaluate(env_id: str, act: Callable[[torch.Tensor], torch.Tensor], episodes: int = 100,
             seed: int = 10_000, device: str = "cpu") -> np.ndarray:
    """Returns [episodes] of ``act`` (obs batch [N, obs_dim] -> actions [N]), one episode each.

    Runs ``episodes`` sub-envs side by side, each seeded differently from ``seed``.
    """
    envs = make_vec_env(env_id, episodes, seed)
    obs, _ = envs.reset(seed=seed)
    ret = np.zeros(episodes)
    finished = np.zeros(episodes, dtype=bool)
    while not finished.all():
        a = act(torch.as_tensor(obs, dtype=torch.float32, device=device)).cpu().numpy()
        obs, r, term, trunc, _ = envs.step(a)
        ret += np.where(finished, 0.0, r)
        finished |= term | trunc
    envs.close()
    return ret


def learning_curve(result: TrainResult, steps: np.ndarray,
                   window: int = SOLVE_WINDOW) -> np.ndarray:
    """Mean return of the last ``window`` episodes finished by each of ``steps`` [K] -> [K].

    NaN before the first episode ends; after training stopped, the last value is carried on.
    """
    window = check_positive_int(window, "window")
    ends = np.asarray(result.history["episode_end_step"], dtype=float)
    rets = np.asarray(result.episode_returns, dtype=float)
    if len(ends) != len(rets):
        raise ValueError(f"history has {len(ends)} episode ends but {len(rets)} returns")
    csum = np.concatenate([[0.0], np.cumsum(rets)])
    k = np.searchsorted(ends, np.asarray(steps, dtype=float), side="right")
    lo = np.maximum(k - window, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, (csum[k] - csum[lo]) / np.maximum(k - lo, 1), np.nan)
