"""Continuous actions (notebook 17): Gaussian policies, tanh squashing, action bounds.

A policy over actions in R^d is usually a diagonal Gaussian N(mu(s), diag(sigma^2)). Two
variants appear in the course:

* PPO's head: the mean comes from a network, the log-std is one learned vector shared by all
  states (state-independent). Actions are sampled unbounded; only the copy sent to the env is
  clipped to its bounds, and the log-probability is that of the unclipped sample.
* SAC's head: mean and log-std both come from the network; a sample u is squashed with tanh
  into (-1, 1) and then rescaled to the env's bounds. The change of variables a = tanh(u)
  subtracts sum_i log(1 - tanh(u_i)^2) from the Gaussian log-density.

Shapes: ``actions``, ``mean`` and ``log_std`` are [..., d] (``log_std`` may broadcast, e.g.
[d]); log-probabilities and entropies sum over the last axis and are [...].
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from rlcourse import deeprl

Tensor = torch.Tensor

LOG_2PI = math.log(2 * math.pi)

#: Course targets for envs whose gymnasium registration has no ``reward_threshold``.
#: Pendulum-v1 (episodes of 200 steps, reward in [-16.3, 0] per step): a random policy scores
#: about -1200; a policy that swings up and balances from every start averages about -150, the
#: cost of the swing-up itself. -200 is the line the course calls "solved" (our choice, not
#: gymnasium's; notebook 17 measures the random policy and the trained agents against it).
COURSE_TARGETS: dict[str, float] = {"Pendulum-v1": -200.0}


def reward_target(env_id: str) -> float:
    """The env's registered reward threshold, else the course's target in COURSE_TARGETS."""
    threshold = deeprl.env_spec(env_id).reward_threshold
    if threshold is not None:
        return float(threshold)
    if env_id in COURSE_TARGETS:
        return COURSE_TARGETS[env_id]
    raise ValueError(f"{env_id} has no reward_threshold and no course target, so 'solved' is "
                     f"undefined for it (course targets: {sorted(COURSE_TARGETS)})")


# ---- diagonal Gaussian ----------------------------------------------------------------------

def gaussian_log_prob(actions: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """log N(a; mu, diag(sigma^2)) with sigma = exp(log_std), summed over the last axis.

    Per dimension: -0.5 ((a - mu) / sigma)^2 - log sigma - 0.5 log(2 pi). [..., d] -> [...].
    """
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z ** 2 - log_std - 0.5 * LOG_2PI).sum(-1)


def gaussian_entropy(mean: Tensor, log_std: Tensor) -> Tensor:
    """Entropy of the diagonal Gaussian: sum_i (0.5 + 0.5 log(2 pi) + log sigma_i). -> [...].

    It does not depend on the mean; ``mean`` only fixes the batch shape.
    """
    log_std = log_std.expand_as(mean)
    return (0.5 + 0.5 * LOG_2PI + log_std).sum(-1)


def gaussian_kl(mean_p: Tensor, log_std_p: Tensor, mean_q: Tensor, log_std_q: Tensor) -> Tensor:
    """Exact KL(p || q) of two diagonal Gaussians, summed over the last axis. -> [...]."""
    var_ratio = torch.exp(2 * (log_std_p - log_std_q))
    shift = ((mean_p - mean_q) * torch.exp(-log_std_q)) ** 2
    return 0.5 * (var_ratio + shift - 1 - 2 * (log_std_p - log_std_q)).sum(-1)


# ---- tanh squashing and action bounds -------------------------------------------------------

def tanh_log_det(u: Tensor) -> Tensor:
    """sum_i log(d tanh(u_i)/du_i) = sum_i log(1 - tanh(u_i)^2), computed stably. [..., d] -> [...].

    Uses log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), which stays finite where
    1 - tanh(u)^2 rounds to 0 (|u| > ~9 in float32).
    """
    return (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)


def squashed_log_prob(u: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """log pi(a|s) of a = tanh(u), u ~ N(mean, diag(exp(log_std)^2)). [..., d] -> [...].

    Change of variables: log pi(a) = log N(u) - sum_i log(1 - tanh(u_i)^2). Takes the
    pre-squash sample ``u`` (inverting tanh near +-1 is inaccurate).
    """
    return gaussian_log_prob(u, mean, log_std) - tanh_log_det(u)


def scale_action(squashed: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """Map actions in [-1, 1] affinely onto the box [low, high] (each [d]). [..., d] -> [..., d]."""
    return low + 0.5 * (squashed + 1.0) * (high - low)


def unscale_action(action: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """The inverse of :func:`scale_action`: [low, high] -> [-1, 1]."""
    return 2.0 * (action - low) / (high - low) - 1.0


def box_action_space(space: gym.Space, algo: str) -> tuple[int, np.ndarray, np.ndarray]:
    """(action_dim, low [d], high [d]) of a flat, bounded Box; else a clear error."""
    if not isinstance(space, spaces.Box):
        raise TypeError(f"{algo} needs a Box (continuous) action space, got "
                        f"{type(space).__name__} ({space})")
    if len(space.shape) != 1:
        raise ValueError(f"{algo} needs a flat Box action space [d], got shape {space.shape}")
    low, high = space.low.astype(np.float32), space.high.astype(np.float32)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
        raise ValueError(f"{algo} needs finite action bounds with high > low, got {space}")
    return int(space.shape[0]), low, high


def check_box_env(algo: str, envs: gym.vector.VectorEnv) -> tuple[int, int, np.ndarray,
                                                                     np.ndarray]:
    """(obs_dim, action_dim, low, high) for a flat-Box observation, Box-action env."""
    obs = envs.single_observation_space
    if not isinstance(obs, spaces.Box) or len(obs.shape) != 1:
        raise TypeError(f"{algo} needs a flat Box observation space, got {obs}")
    act_dim, low, high = box_action_space(envs.single_action_space, algo)
    return int(obs.shape[0]), act_dim, low, high


# ---- policy networks -------------------------------------------------------------------------

class GaussianPolicy(nn.Module):
    """PPO's Gaussian head: mean MLP [N, obs_dim] -> [N, d] and a state-independent log-std [d].

    ``forward`` returns (mean [N, d], log_std [N, d]) with the shared log-std broadcast.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 64, log_std_init: float = 0.0):
        super().__init__()
        self.mean = deeprl.mlp([obs_dim, hidden, hidden, act_dim], out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mean = self.mean(obs)
        return mean, self.log_std.expand_as(mean)


class SquashedGaussianActor(nn.Module):
    """SAC's actor: a ReLU MLP giving mean and log-std per state, then tanh into (-1, 1).

    The log-std is clamped to [LOG_STD_MIN, LOG_STD_MAX] so exp() stays in a sane range.
    """

    LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (64, 64)):
        super().__init__()
        self.torso = nn.Sequential(deeprl.mlp([obs_dim, *hidden], nn.ReLU), nn.ReLU())
        self.head = deeprl.mlp([hidden[-1], 2 * act_dim], out_gain=0.01)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """obs [N, obs_dim] -> (mean [N, d], log_std [N, d])."""
        mean, log_std = self.head(self.torso(obs)).chunk(2, dim=-1)
        return mean, log_std.clamp(self.LOG_STD_MIN, self.LOG_STD_MAX)

    def sample(self, obs: Tensor, generator: torch.Generator | None = None
               ) -> tuple[Tensor, Tensor]:
        """A reparameterised sample: (a = tanh(mu + sigma eps) [N, d], log pi(a|s) [N]).

        Gradients flow from ``a`` and the log-prob back into the network (eps is the noise).
        """
        mean, log_std = self(obs)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device)
        u = mean + log_std.exp() * eps
        return torch.tanh(u), squashed_log_prob(u, mean, log_std)

    @torch.no_grad()
    def greedy(self, obs: Tensor) -> Tensor:
        """The deterministic action tanh(mu(s)) in (-1, 1): [N, obs_dim] -> [N, d]."""
        return torch.tanh(self(obs)[0])


class ScaledPolicy:
    """Wraps a policy in (-1, 1)^d so it returns env actions in [low, high]: [N, obs] -> [N, d]."""

    def __init__(self, policy, low: np.ndarray, high: np.ndarray):
        self.policy = policy
        self.low = torch.as_tensor(low)
        self.high = torch.as_tensor(high)

    @torch.no_grad()
    def __call__(self, obs: Tensor) -> Tensor:
        a = self.policy(obs)
        return scale_action(a, self.low.to(a.device), self.high.to(a.device))
