"""Probe environments: tiny tasks whose right answers are known, to localise bugs in a value or
policy learner before it meets CartPole (notebooks 04 and 07).

Each probe isolates one thing a learner must get right. If an agent fails probe k but passes
probes 1 .. k-1, the bug lives in what probe k adds:

====  ================================  ===========================================================
 #    probe                             what a failure points at
====  ================================  ===========================================================
 1    :class:`ConstantReward`           the value loss or the optimiser (V should be 1 everywhere)
 2    :class:`ObservationReward`        the network cannot read its input (V(s) = s)
 3    :class:`TwoStepDiscount`          discounting, bootstrapping or the terminal mask
                                        (V(first) = gamma, V(second) = 1)
 4    :class:`ActionReward`             the policy gradient or the Q-value of each action
                                        (action 0 earns +1, action 1 earns -1)
 5    :class:`ObservationActionReward`  policy and value must both use the input (the right
                                        action is the one that matches the observation)
====  ================================  ===========================================================

Observations are float32 arrays of shape (1,); actions are ``Discrete(1)`` for probes 1-3 and
``Discrete(2)`` for 4-5. Every episode ends by *termination*, never by truncation, so a correct
learner bootstraps nothing past the last step. Each probe exposes the exact answers a learner
should reach: :meth:`ProbeEnv.true_value` (V under the optimal policy, per observation) and
:meth:`ProbeEnv.true_q` (Q per observation and action).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlcourse.validation import check_gamma

OBS_SPACE = spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=np.float32)


class ProbeEnv(gym.Env):
    """Base class: a one-dimensional observation, discrete actions, short terminating episodes.

    Subclasses set ``n_actions`` and implement ``_first_obs`` (the first observation),
    ``_step(action) -> (reward, next observation, terminated)``, ``observations`` and
    ``_q(obs, gamma)`` (the exact Q-values behind :meth:`true_q`).
    """

    metadata: dict[str, Any] = {"render_modes": []}
    n_actions = 1

    def __init__(self) -> None:
        self.observation_space = OBS_SPACE
        self.action_space = spaces.Discrete(self.n_actions)
        self._obs = 0.0
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._obs = float(self._first_obs())
        return np.array([self._obs], dtype=np.float32), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"{type(self).__name__} takes actions in {self.action_space}, "
                             f"got {action!r}")
        reward, next_obs, terminated = self._step(int(action))
        self._t += 1
        self._obs = next_obs
        return (np.array([next_obs], dtype=np.float32), float(reward), terminated, False, {})

    def _first_obs(self) -> float:
        return 0.0

    def _step(self, action: int) -> tuple[float, float, bool]:
        raise NotImplementedError

    def observations(self) -> list[float]:
        """Every observation an episode can show (the rows of the answer tables)."""
        return [0.0]

    def true_q(self, obs: float, gamma: float = 0.99) -> np.ndarray:
        """Q*(obs, a) for every action a: [n_actions]. Raises ``ValueError`` for an observation
        this probe never shows or a gamma outside [0, 1]."""
        gamma = check_gamma(gamma)
        if float(obs) not in self.observations():
            raise ValueError(f"{type(self).__name__} never shows observation {obs!r}; its "
                             f"observations are {self.observations()}")
        return np.asarray(self._q(float(obs), gamma), dtype=float)

    def _q(self, obs: float, gamma: float) -> list[float]:
        raise NotImplementedError

    def true_value(self, obs: float, gamma: float = 0.99) -> float:
        """V*(obs) = max_a Q*(obs, a)."""
        return float(np.max(self.true_q(obs, gamma)))


class ConstantReward(ProbeEnv):
    """Probe 1: one observation (0), one action, reward +1, then the episode ends."""

    def _step(self, action: int) -> tuple[float, float, bool]:
        return 1.0, 0.0, True

    def _q(self, obs: float, gamma: float) -> list[float]:
        return [1.0]


class ObservationReward(ProbeEnv):
    """Probe 2: the observation is -1 or +1 at random; the one-step reward equals it."""

    def _first_obs(self) -> float:
        return float(self.np_random.choice([-1.0, 1.0]))

    def _step(self, action: int) -> tuple[float, float, bool]:
        return self._obs, 0.0, True

    def observations(self) -> list[float]:
        return [-1.0, 1.0]

    def _q(self, obs: float, gamma: float) -> list[float]:
        return [obs]


class TwoStepDiscount(ProbeEnv):
    """Probe 3: observation 0, reward 0; then observation 1, reward +1, and the episode ends.
    V(0) = gamma and V(1) = 1: a learner that ignores gamma, bootstraps through the terminal
    step or skips the second state gets them wrong."""

    def _step(self, action: int) -> tuple[float, float, bool]:
        if self._t == 0:
            return 0.0, 1.0, False
        return 1.0, 1.0, True

    def observations(self) -> list[float]:
        return [0.0, 1.0]

    def _q(self, obs: float, gamma: float) -> list[float]:
        return [gamma if obs == 0.0 else 1.0]


class ActionReward(ProbeEnv):
    """Probe 4: one observation (0), two actions: action 0 earns +1, action 1 earns -1."""

    n_actions = 2

    def _step(self, action: int) -> tuple[float, float, bool]:
        return (1.0 if action == 0 else -1.0), 0.0, True

    def _q(self, obs: float, gamma: float) -> list[float]:
        return [1.0, -1.0]


class ObservationActionReward(ProbeEnv):
    """Probe 5: the observation is -1 or +1 at random; action 0 earns +1 when it is -1 and
    action 1 earns +1 when it is +1; the wrong action earns -1."""

    n_actions = 2

    def _first_obs(self) -> float:
        return float(self.np_random.choice([-1.0, 1.0]))

    def _step(self, action: int) -> tuple[float, float, bool]:
        right = 0 if self._obs < 0 else 1
        return (1.0 if action == right else -1.0), 0.0, True

    def observations(self) -> list[float]:
        return [-1.0, 1.0]

    def _q(self, obs: float, gamma: float) -> list[float]:
        return [1.0, -1.0] if obs < 0 else [-1.0, 1.0]


PROBES: dict[str, type[ProbeEnv]] = {
    "constant": ConstantReward, "observation": ObservationReward,
    "two_step": TwoStepDiscount, "action": ActionReward,
    "observation_action": ObservationActionReward,
}


def make_probe(name: str) -> ProbeEnv:
    """A fresh probe by name (one of :data:`PROBES`); reset it with a seed before use."""
    if name not in PROBES:
        raise ValueError(f"unknown probe {name!r}; choose from {', '.join(PROBES)}")
    return PROBES[name]()


# ---- registered ids, so the Part II ``train`` functions can run on the probes ----------------

#: gymnasium id of each probe, e.g. ``gym.make(PROBE_IDS["two_step"])``. The reward threshold is
#: the best expected return (0 for probe 2, whose return no action can change), so a
#: ``train(..., stop_when_solved=True)`` run on a probe stops once it plays optimally.
PROBE_IDS: dict[str, str] = {name: f"rlcourse/Probe{cls.__name__}-v0"
                             for name, cls in PROBES.items()}
_BEST_RETURN = {"constant": 1.0, "observation": 0.0, "two_step": 1.0, "action": 1.0,
                "observation_action": 1.0}


def register_probes() -> None:
    """Register every probe with gymnasium under :data:`PROBE_IDS` (safe to call twice)."""
    for name, env_id in PROBE_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(id=env_id, entry_point=PROBES[name], max_episode_steps=None,
                     reward_threshold=_BEST_RETURN[name])


register_probes()
