"""Policy gradients (notebook 05): the score function, REINFORCE, reward-to-go and baselines.

Three parts:

* the math as small pure functions on tensors: :func:`score_function`, :func:`reward_to_go`,
  :func:`reinforce_loss`, :func:`optimal_baseline`, :func:`gradient_moments`;
* a two-step toy MDP small enough to enumerate every trajectory, so that the exact policy
  gradient (autograd through the enumerated objective) can be compared with finite differences
  and with Monte-Carlo estimates, and the exact variance of every estimator can be computed;
* REINFORCE with a learned value baseline on gymnasium vector envs (:func:`train`), and the
  three-armed-bandit experiment of the always-positive-reward pathology (:func:`bandit_reinforce`).

Batches of episodes are padded tensors of shape [batch, time] with a mask (1 = real step), the
layout of :mod:`rlcourse.advantages`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from rlcourse import deeprl
from rlcourse.advantages import discounted_returns, masked_mean, normalize
from rlcourse.validation import (
    as_float_array,
    check_distribution,
    check_gamma,
    check_in_range,
    check_positive_int,
)

Tensor = torch.Tensor


# ---- the math ------------------------------------------------------------------------------

def score_function(logits: Tensor, action: Tensor) -> Tensor:
    """Gradient of log softmax(logits)[action] with respect to the logits: onehot(a) - pi.

    Shapes: ``logits`` [..., K], ``action`` [...] (integers in [0, K)) -> [..., K].
    """
    if not isinstance(logits, Tensor) or not isinstance(action, Tensor):
        raise TypeError("logits and action must be torch tensors")
    if logits.ndim < 1 or tuple(action.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"action must have shape logits.shape[:-1] = {tuple(logits.shape[:-1])},"
                         f" got {tuple(action.shape)}")
    onehot = nn.functional.one_hot(action.long(), logits.shape[-1]).to(logits.dtype)
    return onehot - torch.softmax(logits, dim=-1)


def reward_to_go(rewards: Tensor, gamma: float = 1.0) -> Tensor:
    """G_t = sum_{t' >= t} gamma^(t'-t) r_t' for each row (one episode, padded with zeros).

    Shapes: [B, T] -> [B, T]. ``gamma = 1`` is the undiscounted reward-to-go (unbiased for the
    undiscounted objective); ``gamma < 1`` also discounts (a biased variance reduction).
    """
    dones = torch.zeros_like(rewards, dtype=torch.bool)
    return discounted_returns(rewards, dones, gamma)


def total_return(rewards: Tensor, mask: Tensor | None = None) -> Tensor:
    """R(tau) repeated at every step of its episode: [B, T] -> [B, T] (0 where mask is 0)."""
    if rewards.ndim != 2:
        raise ValueError(f"rewards must have shape [batch, time], got {tuple(rewards.shape)}")
    m = torch.ones_like(rewards) if mask is None else mask.to(rewards.dtype)
    return (rewards * m).sum(dim=1, keepdim=True) * m


def reinforce_loss(logp: Tensor, weights: Tensor, mask: Tensor | None = None) -> Tensor:
    """-(1/B) sum_b sum_t mask * weight * log pi(a_t|s_t), with the weights held constant.

    Shapes: ``logp``, ``weights``, ``mask`` [B, T] -> scalar. Its gradient is minus the REINFORCE
    estimate (1/B) sum_b sum_t weight_bt grad log pi(a_bt|s_bt); no gradient flows into
    ``weights`` (they are returns or advantages, not functions of the policy's log-probs).
    """
    if logp.ndim != 2 or tuple(weights.shape) != tuple(logp.shape):
        raise ValueError(f"logp and weights must both be [batch, time], got "
                         f"{tuple(logp.shape)} and {tuple(weights.shape)}")
    m = torch.ones_like(logp) if mask is None else mask.to(logp.dtype)
    if tuple(m.shape) != tuple(logp.shape):
        raise ValueError(f"mask has shape {tuple(m.shape)} but logp has {tuple(logp.shape)}")
    return -(m * weights.detach() * logp).sum() / logp.shape[0]


def optimal_baseline(scores: Tensor, returns: Tensor) -> Tensor:
    """The constant c minimising the total variance of (R - c) g: E[|g|^2 R] / E[|g|^2].

    Shapes: ``scores`` [N, ...] (one score vector g = grad log p(tau) per sample, flattened),
    ``returns`` [N] -> scalar. This is E-40's c* = Cov(X, Y) / Var(Y) with X = R g, Y = g
    (E[g] = 0), summed over the components of g.
    """
    if returns.ndim != 1 or scores.shape[0] != returns.shape[0]:
        raise ValueError(f"scores [N, ...] and returns [N] must share N, got "
                         f"{tuple(scores.shape)} and {tuple(returns.shape)}")
    sq = scores.reshape(scores.shape[0], -1).pow(2).sum(dim=1)
    return (sq * returns).sum() / sq.sum()


def bootstrap_truncated(rewards: Tensor, mask: Tensor, truncated: Tensor, v_final: Tensor,
                        gamma: float) -> Tensor:
    """Rewards with gamma * V(s_T) added to the last real step of every truncated episode.

    Shapes: ``rewards``, ``mask`` [B, T]; ``truncated``, ``v_final`` [B]. An episode cut by a
    time limit did not end: its reward-to-go continues past the cut, and V of the final
    observation stands in for the missing rewards. Terminated episodes get nothing added.
    """
    gamma = check_gamma(gamma)
    lengths = mask.sum(dim=1).long()
    if bool((lengths < 1).any()):
        raise ValueError("every row needs at least one real step (mask all zero)")
    out = rewards.clone()
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    out[rows, lengths - 1] += gamma * v_final.to(out.dtype) * truncated.to(out.dtype)
    return out


class Moments(NamedTuple):
    """Mean [...], standard error of the mean [...] and total variance (trace of covariance)."""

    mean: Tensor
    se: Tensor
    total_variance: float


def gradient_moments(grads: Tensor, probs: Tensor | None = None) -> Moments:
    """Moments of per-sample gradient estimates ``grads`` [N, ...].

    With ``probs`` [N] (exact enumeration: the probability of each row) the moments are exact and
    ``se`` is 0; without, the sample mean, the sample variance (ddof 1) and se = sd / sqrt(N).
    """
    flat = grads.reshape(grads.shape[0], -1)
    if probs is not None:
        p = probs.to(flat.dtype)[:, None]
        mean = (p * flat).sum(0)
        var = (p * (flat - mean) ** 2).sum(0)
        se = torch.zeros_like(mean)
    else:
        if flat.shape[0] < 2:
            raise ValueError("need at least 2 samples to estimate a variance")
        mean, var = flat.mean(0), flat.var(0, unbiased=True)
        se = (var / flat.shape[0]).sqrt()
    shape = grads.shape[1:]
    return Moments(mean.reshape(shape), se.reshape(shape), float(var.sum()))


# ---- a two-step toy MDP, small enough to enumerate ----------------------------------------

@dataclass(frozen=True)
class TwoStepMDP:
    """Start in state 0, pick a0, land in middle state s1 ~ p_next[a0], pick a1, stop.

    ``p_next`` [A, S]: P(s1 | a0); ``r0`` [A]: reward of the first action; ``r1`` [S, A]: reward
    of the second. A tabular softmax policy has parameters theta [1 + S, A]: row 0 for the start
    state, row 1 + s for middle state s.
    """

    p_next: np.ndarray
    r0: np.ndarray
    r1: np.ndarray

    def __post_init__(self) -> None:
        p = np.asarray(self.p_next, dtype=float)
        if p.ndim != 2:
            raise ValueError(f"p_next must have shape [A, S], got {p.shape}")
        check_distribution(p, "p_next", axis=1)
        n_a, n_s = p.shape
        if np.shape(self.r0) != (n_a,) or np.shape(self.r1) != (n_s, n_a):
            raise ValueError(f"with p_next [A={n_a}, S={n_s}], r0 must be [{n_a}] and r1 "
                             f"[{n_s}, {n_a}]; got {np.shape(self.r0)} and {np.shape(self.r1)}")

    @property
    def n_actions(self) -> int:
        return int(np.shape(self.p_next)[0])

    @property
    def theta_shape(self) -> tuple[int, int]:
        return (1 + int(np.shape(self.p_next)[1]), self.n_actions)


def toy_mdp() -> TwoStepMDP:
    """The course's toy MDP: 2 actions, 2 middle states, all rewards positive."""
    return TwoStepMDP(p_next=np.array([[0.8, 0.2], [0.3, 0.7]]),
                      r0=np.array([2.0, 1.0]),
                      r1=np.array([[1.0, 3.0], [4.0, 2.0]]))


class Trajectories(NamedTuple):
    """Trajectories of a :class:`TwoStepMDP`, one per row.

    ``states`` [M, 2] (row of theta: 0, then 1 + s1), ``actions`` [M, 2], ``rewards`` [M, 2]
    (float64) and ``p_env`` [M]: the product of the dynamics probabilities (1 for samples).
    """

    states: Tensor
    actions: Tensor
    rewards: Tensor
    p_env: Tensor


def enumerate_trajectories(mdp: TwoStepMDP) -> Trajectories:
    """All A * S * A trajectories with their dynamics probabilities."""
    n_a, n_s = np.shape(mdp.p_next)
    rows = [(a0, s1, a1) for a0 in range(n_a) for s1 in range(n_s) for a1 in range(n_a)]
    a0, s1, a1 = (torch.tensor(c) for c in zip(*rows))
    return _trajectories(mdp, a0, s1, a1, torch.as_tensor(mdp.p_next, dtype=torch.float64)[a0, s1])


def _trajectories(mdp: TwoStepMDP, a0: Tensor, s1: Tensor, a1: Tensor, p_env: Tensor
                  ) -> Trajectories:
    r0 = torch.as_tensor(mdp.r0, dtype=torch.float64)[a0]
    r1 = torch.as_tensor(mdp.r1, dtype=torch.float64)[s1, a1]
    states = torch.stack([torch.zeros_like(s1), 1 + s1], dim=1)
    return Trajectories(states, torch.stack([a0, a1], dim=1), torch.stack([r0, r1], dim=1), p_env)


def sample_trajectories(theta: Tensor, mdp: TwoStepMDP, n: int,
                        generator: torch.Generator | None = None) -> Trajectories:
    """``n`` trajectories of the softmax policy with parameters ``theta`` [1 + S, A]."""
    n = check_positive_int(n, "n")
    _check_theta(theta, mdp)
    pi = torch.softmax(theta.detach().double(), dim=-1)
    p_next = torch.as_tensor(mdp.p_next, dtype=torch.float64)
    a0 = torch.multinomial(pi[0], n, replacement=True, generator=generator)
    s1 = torch.multinomial(p_next[a0], 1, generator=generator).squeeze(1)
    a1 = torch.multinomial(pi[1 + s1], 1, generator=generator).squeeze(1)
    return _trajectories(mdp, a0, s1, a1, torch.ones(n, dtype=torch.float64))


def _check_theta(theta: Tensor, mdp: TwoStepMDP) -> None:
    if not isinstance(theta, Tensor) or tuple(theta.shape) != mdp.theta_shape:
        got = tuple(theta.shape) if isinstance(theta, Tensor) else type(theta).__name__
        raise ValueError(f"theta must be a tensor of shape {mdp.theta_shape}, got {got}")


def policy_log_prob(theta: Tensor, traj: Trajectories) -> Tensor:
    """sum_t log pi_theta(a_t | s_t) for each trajectory: [M] (differentiable in theta)."""
    logpi = torch.log_softmax(theta, dim=-1)
    return logpi[traj.states, traj.actions].sum(dim=1)


def exact_objective(theta: Tensor, mdp: TwoStepMDP) -> Tensor:
    """J(theta) = sum_tau p_theta(tau) R(tau), by enumerating every trajectory (scalar)."""
    _check_theta(theta, mdp)
    traj = enumerate_trajectories(mdp)
    p = traj.p_env * policy_log_prob(theta.double(), traj).exp()
    return (p * traj.rewards.sum(dim=1)).sum()


def exact_gradient(theta: Tensor, mdp: TwoStepMDP) -> Tensor:
    """grad J(theta) [1 + S, A], by autograd through :func:`exact_objective`."""
    th = theta.detach().double().requires_grad_(True)
    (grad,) = torch.autograd.grad(exact_objective(th, mdp), th)
    return grad


def finite_difference_gradient(f: Callable[[Tensor], Tensor], theta: Tensor, eps: float = 1e-5
                               ) -> Tensor:
    """Central differences (f(theta + eps e_i) - f(theta - eps e_i)) / (2 eps), same shape."""
    th = theta.detach().double()
    grad = torch.zeros_like(th)
    for i in range(th.numel()):
        step = torch.zeros_like(th).reshape(-1)
        step[i] = eps
        step = step.reshape(th.shape)
        grad.reshape(-1)[i] = (float(f(th + step)) - float(f(th - step))) / (2 * eps)
    return grad


def state_values(theta: Tensor, mdp: TwoStepMDP) -> Tensor:
    """Exact V^pi for each row of theta: [1 + S]. V(start) = J(theta); V(s) = sum_a pi r1."""
    _check_theta(theta, mdp)
    pi = torch.softmax(theta.detach().double(), dim=-1)
    v_mid = (pi[1:] * torch.as_tensor(mdp.r1, dtype=torch.float64)).sum(dim=1)
    q0 = torch.as_tensor(mdp.r0, dtype=torch.float64) + torch.as_tensor(
        mdp.p_next, dtype=torch.float64) @ v_mid
    return torch.cat([(pi[0] * q0).sum().reshape(1), v_mid])


def per_sample_gradients(theta: Tensor, traj: Trajectories, weights: Tensor,
                         score_fn: Callable[[Tensor, Tensor], Tensor] = score_function) -> Tensor:
    """sum_t weights[:, t] * grad_theta log pi(a_t | s_t), one estimate per trajectory.

    Shapes: ``theta`` [1 + S, A], ``weights`` [M, 2] -> [M, 1 + S, A]. Uses ``score_fn`` for the
    gradient of log softmax with respect to the row of theta of the visited state.
    """
    if tuple(weights.shape) != tuple(traj.actions.shape):
        raise ValueError(f"weights must have shape {tuple(traj.actions.shape)}, "
                         f"got {tuple(weights.shape)}")
    logits = theta.detach().double()[traj.states]  # [M, 2, A]
    scores = torch.as_tensor(score_fn(logits, traj.actions), dtype=torch.float64)
    out = torch.zeros((traj.states.shape[0], *theta.shape), dtype=torch.float64)
    rows = torch.arange(traj.states.shape[0])
    for t in range(traj.states.shape[1]):
        out[rows, traj.states[:, t]] += weights[:, t, None].double() * scores[:, t]
    return out


# ---- why the reward cannot be differentiated directly (C-016) ------------------------------

def linear_policy_returns(weights: np.ndarray, *, stochastic: bool, seed: int = 0,
                          start_state: np.ndarray | None = None, temperature: float = 0.05,
                          env_id: str = "CartPole-v1") -> np.ndarray:
    """Undiscounted return of one episode per row of ``weights`` [N, obs_dim] -> [N].

    The policy pushes right when obs . w > 0 (``stochastic=False``) or with probability
    sigmoid(obs . w / temperature). ``start_state`` (CartPole only) starts every episode from
    the same state, so the deterministic return is a function of w alone.
    """
    w = as_float_array(weights, "weights", ndim=2)
    temperature = check_in_range(temperature, "temperature", 0.0, np.inf, low_open=True)
    n = w.shape[0]
    envs = deeprl.make_vec_env(env_id, n, seed)
    obs, _ = envs.reset(seed=seed)
    if start_state is not None:
        envs.unwrapped.state = np.repeat(np.asarray(start_state, float)[:, None], n, axis=1)
        obs = envs.unwrapped.state.T.astype(np.float32)
    rng = np.random.default_rng(seed)
    ret, finished = np.zeros(n), np.zeros(n, dtype=bool)
    while not finished.all():
        z = (obs * w).sum(axis=1)
        push = rng.random(n) < 1 / (1 + np.exp(-z / temperature)) if stochastic else z > 0
        obs, r, te, tu, _ = envs.step(push.astype(np.int64))
        ret += np.where(finished, 0.0, r)
        finished |= te | tu
    envs.close()
    return ret


# ---- the always-positive-reward pathology on a 3-armed bandit ----------------------------

def bandit_reinforce(arm_means: Tensor, n_runs: int, n_updates: int, batch_size: int, lr: float,
                     baseline: str = "none", noise_std: float = 0.0,
                     init_logits: Tensor | None = None, generator: torch.Generator | None = None,
                     score_fn: Callable[[Tensor, Tensor], Tensor] = score_function) -> Tensor:
    """REINFORCE with plain SGD on a K-armed bandit, ``n_runs`` independent runs side by side.

    Each update samples ``batch_size`` arms per run, rewards = arm mean + N(0, noise_std^2), and
    moves the logits by lr * mean_n (r_n - b_n) * score_n. ``baseline``: 'none' (b = 0) or
    'leave_one_out' (b_n = mean reward of the other samples of the batch; unbiased).
    Returns the policy's probabilities before every update and at the end: [n_updates+1, R, K].
    """
    if baseline not in ("none", "leave_one_out"):
        raise ValueError(f"baseline must be 'none' or 'leave_one_out', got {baseline!r}")
    n_runs, n_updates = check_positive_int(n_runs, "n_runs"), check_positive_int(n_updates,
                                                                                 "n_updates")
    batch_size = check_positive_int(batch_size, "batch_size")
    if baseline == "leave_one_out" and batch_size < 2:
        raise ValueError("a leave-one-out baseline needs batch_size >= 2")
    means = torch.as_tensor(arm_means, dtype=torch.float64)
    k = means.shape[0]
    logits = (torch.zeros(k, dtype=torch.float64) if init_logits is None
              else torch.as_tensor(init_logits, dtype=torch.float64)).expand(n_runs, k).clone()
    history = torch.empty((n_updates + 1, n_runs, k), dtype=torch.float64)
    for i in range(n_updates):
        history[i] = torch.softmax(logits, dim=-1)
        arms = torch.multinomial(history[i], batch_size, replacement=True, generator=generator)
        noise = torch.randn(arms.shape, dtype=torch.float64, generator=generator)
        r = means[arms] + noise_std * noise
        if baseline == "leave_one_out":
            r = r - (r.sum(dim=1, keepdim=True) - r) / (batch_size - 1)
        scores = score_fn(logits[:, None, :].expand(n_runs, batch_size, k), arms)
        logits = logits + lr * (r[..., None] * scores).mean(dim=1)
    history[n_updates] = torch.softmax(logits, dim=-1)
    return history


# ---- REINFORCE with a learned value baseline on vector envs -------------------------------

BASELINES = ("value", "none")


@dataclass(frozen=True)
class Config:
    """Course defaults of REINFORCE (tuned on CartPole-v1; see notebook 05)."""

    num_envs: int = 8
    episodes_per_env: int = 1
    gamma: float = 0.99
    lr: float = 1e-2
    value_lr: float = 1e-2
    value_steps: int = 5
    hidden: int = 64
    baseline: str = "value"
    normalize_advantages: bool = True
    max_grad_norm: float = 1.0
    total_steps: int = 300_000
    stop_when_solved: bool = True

    def __post_init__(self) -> None:
        for name in ("num_envs", "episodes_per_env", "value_steps", "hidden", "total_steps"):
            check_positive_int(getattr(self, name), name)
        check_gamma(self.gamma)
        check_in_range(self.lr, "lr", 0.0, 1.0, low_open=True)
        check_in_range(self.value_lr, "value_lr", 0.0, 1.0, low_open=True)
        check_in_range(self.max_grad_norm, "max_grad_norm", 0.0, np.inf, low_open=True)
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}")


def make_config(**overrides) -> Config:
    """:class:`Config` with ``overrides``; unknown names are a ``TypeError`` listing the known."""
    return deeprl.config_with(Config(), "REINFORCE", overrides)


class EpisodeBatch(NamedTuple):
    """Whole episodes collected by one policy, padded to the longest: rows are episodes.

    ``obs`` [E, L, obs_dim], ``actions`` [E, L], ``rewards`` [E, L], ``mask`` [E, L] (1 = real
    step), ``truncated`` [E] (the episode hit the time limit), ``final_obs`` [E, obs_dim] (the
    observation after the last step, used to bootstrap truncated episodes).
    """

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    mask: Tensor
    truncated: Tensor
    final_obs: Tensor


class GreedyPolicy:
    """The greedy action of a policy network: obs [N, obs_dim] -> actions [N]."""

    def __init__(self, net: nn.Module):
        self.net = net

    @torch.no_grad()
    def __call__(self, obs: Tensor) -> Tensor:
        return self.net(obs).argmax(dim=-1)


@dataclass
class _Run:
    """Bookkeeping of one training run."""

    tracker: deeprl.EpisodeTracker
    started: float
    steps: int = 0
    steps_to_solve: int | None = None
    seconds_to_solve: float | None = None
    history: dict[str, list[float]] = field(default_factory=lambda: {
        k: [] for k in ("update_step", "running_mean", "episodes", "policy_loss", "value_loss",
                        "entropy", "grad_norm")})


def collect_episodes(envs, act: Callable[[np.ndarray], np.ndarray], episodes_per_env: int = 1
                     ) -> dict[str, np.ndarray]:
    """Run every sub-env from a fresh reset until each has finished ``episodes_per_env`` episodes.

    Each env contributes exactly its first ``episodes_per_env`` complete episodes, whatever the
    other envs do, so the kept episodes are an unbiased sample of the policy's episodes (no
    preference for short ones). Envs that are done wait for the slowest by starting a further
    episode whose steps are discarded (``keep`` False) but still real env steps (``valid``).
    ``act`` maps observations [N, obs_dim] to actions [N]. Returns arrays of shape [T, N]
    (``obs`` and ``next_obs`` [T, N, obs_dim]): obs, actions, rewards, terminated, truncated,
    next_obs, ``valid`` (False on autoreset steps, see :class:`rlcourse.deeprl.StepMask`) and
    ``keep`` (the valid steps of each env's first ``episodes_per_env`` episodes).
    """
    k = check_positive_int(episodes_per_env, "episodes_per_env")
    n = envs.num_envs
    obs, _ = envs.reset()
    mask, finished = deeprl.StepMask(n), np.zeros(n, dtype=int)
    keys = ("obs", "actions", "rewards", "terminated", "truncated", "valid", "keep", "next_obs")
    out: dict[str, list] = {key: [] for key in keys}
    while (finished < k).any():
        actions = np.asarray(act(obs))
        next_obs, r, te, tu, _ = envs.step(actions)
        valid = mask.step(te, tu)
        keep = valid & (finished < k)
        finished += (te | tu) & keep
        for key, v in zip(keys, (obs, actions, r, te, tu, valid, keep, next_obs)):
            out[key].append(np.asarray(v))
        obs = next_obs
    return {key: np.stack(v) for key, v in out.items()}


def _sampler(policy: nn.Module, device: str, gen: torch.Generator
             ) -> Callable[[np.ndarray], np.ndarray]:
    """obs [N, obs_dim] -> actions [N] sampled from the policy's softmax (no gradient)."""
    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = policy(torch.as_tensor(obs, dtype=torch.float32, device=device))
            a = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(1)
        return a.cpu().numpy()
    return act


def _split_episodes(ro: dict[str, np.ndarray], device: str) -> EpisodeBatch:
    """Cut the kept steps of a rollout [T, N] into episodes, padded: an :class:`EpisodeBatch`.

    Uses ``ro["keep"]`` (see :func:`collect_episodes`); each kept episode ends on a kept step
    that is terminated or truncated.
    """
    keep = ro["keep"]
    done = (ro["terminated"] | ro["truncated"]) & keep
    episodes = []
    for i in range(done.shape[1]):
        start = 0
        for end in np.flatnonzero(done[:, i]):
            episodes.append((i, np.flatnonzero(keep[start: end + 1, i]) + start))
            start = end + 1
    if not episodes:
        raise ValueError("the rollout holds no complete kept episode")
    length = max(len(ts) for _, ts in episodes)
    e, obs_dim = len(episodes), ro["obs"].shape[-1]
    obs = np.zeros((e, length, obs_dim), dtype=np.float32)
    actions, rewards, mask = (np.zeros((e, length)) for _ in range(3))
    truncated, final_obs = np.zeros(e, dtype=bool), np.zeros((e, obs_dim), dtype=np.float32)
    for j, (i, ts) in enumerate(episodes):
        n = len(ts)
        obs[j, :n], actions[j, :n] = ro["obs"][ts, i], ro["actions"][ts, i]
        rewards[j, :n], mask[j, :n] = ro["rewards"][ts, i], 1.0
        truncated[j] = bool(ro["truncated"][ts[-1], i]) and not ro["terminated"][ts[-1], i]
        final_obs[j] = ro["next_obs"][ts[-1], i]
    as_t = lambda x, dt=torch.float32: torch.as_tensor(x, dtype=dt, device=device)
    return EpisodeBatch(as_t(obs), as_t(actions, torch.long), as_t(rewards), as_t(mask),
                        as_t(truncated, torch.bool), as_t(final_obs))


def _track(run: _Run, ro: dict[str, np.ndarray]) -> None:
    """Feed the kept episodes to the tracker in time order; note when it first solved.

    Env steps count every valid step, the discarded ones of envs that waited included.
    """
    keep = ro["keep"]
    valid_so_far = run.steps + np.cumsum(ro["valid"].sum(axis=1))
    for t in range(keep.shape[0]):
        run.tracker.update(ro["rewards"][t], ro["terminated"][t], ro["truncated"][t], keep[t])
        if run.steps_to_solve is None and run.tracker.solved:
            run.steps_to_solve = int(valid_so_far[t])
            run.seconds_to_solve = time.perf_counter() - run.started
    run.steps = int(valid_so_far[-1])


STATS_KEYS = ("policy_loss", "value_loss", "entropy", "grad_norm")


def update(policy: nn.Module, value: nn.Module, optimizers: tuple, batch: EpisodeBatch,
           cfg: Config, returns_fn: Callable = reward_to_go,
           loss_fn: Callable = reinforce_loss) -> dict[str, float]:
    """One REINFORCE step for the policy, then ``cfg.value_steps`` regression steps for V.

    ``optimizers`` = (the policy's, the value network's). In order: bootstrap truncated
    episodes with gamma * V(final_obs) (:func:`bootstrap_truncated`); reward-to-go returns
    (``returns_fn``, zero on padding); weights = returns - V(s_t) computed without gradient
    (``cfg.baseline == "value"``), normalised over the real steps if
    ``cfg.normalize_advantages``; ``loss_fn`` (sum over time, mean over episodes); zero_grad,
    backward, clip the policy's gradient norm at ``cfg.max_grad_norm``, step; then
    ``cfg.value_steps`` steps on 0.5 * masked mean (V(s_t) - return_t)^2 (none without a
    value baseline). Returns floats: policy_loss, value_loss (its last step), entropy (masked
    mean) and grad_norm (before clipping).
    """
    opt_pi, opt_v = optimizers
    rewards = batch.rewards
    if bool(batch.truncated.any()):  # bootstrap the time limit, not termination
        with torch.no_grad():
            v_final = value(batch.final_obs).squeeze(-1)
        rewards = bootstrap_truncated(rewards, batch.mask, batch.truncated, v_final, cfg.gamma)
    returns = torch.as_tensor(returns_fn(rewards, cfg.gamma), dtype=rewards.dtype,
                              device=rewards.device) * batch.mask
    adv = returns
    if cfg.baseline == "value":
        with torch.no_grad():
            adv = returns - value(batch.obs).squeeze(-1)
    if cfg.normalize_advantages:
        adv = normalize(adv, batch.mask)
    dist = torch.distributions.Categorical(logits=policy(batch.obs))
    loss_pi = loss_fn(dist.log_prob(batch.actions), adv, batch.mask)
    opt_pi.zero_grad(set_to_none=True)
    loss_pi.backward()
    grad_norm = nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
    opt_pi.step()
    loss_v = torch.zeros(())
    for _ in range(cfg.value_steps if cfg.baseline == "value" else 0):
        loss_v = 0.5 * masked_mean((value(batch.obs).squeeze(-1) - returns) ** 2, batch.mask)
        opt_v.zero_grad(set_to_none=True)
        loss_v.backward()
        opt_v.step()
    return {"policy_loss": float(loss_pi.detach()), "value_loss": float(loss_v.detach()),
            "entropy": float(masked_mean(dist.entropy().detach(), batch.mask)),
            "grad_norm": float(grad_norm)}


ROLLOUT_KEYS = ("obs", "actions", "rewards", "terminated", "truncated", "valid", "keep",
                "next_obs")


def check_rollout(ro: object, num_envs: int) -> dict[str, np.ndarray]:
    """The rollout ``ro`` of :func:`collect_episodes` as numpy arrays, or a clear error.

    It must be a dict with every key of ``ROLLOUT_KEYS``: arrays [T, num_envs] (``obs`` and
    ``next_obs`` [T, num_envs, obs_dim]).
    """
    if not isinstance(ro, dict):
        raise TypeError(f"a rollout must be a dict of arrays, got {type(ro).__name__}")
    missing = [k for k in ROLLOUT_KEYS if k not in ro]
    if missing:
        raise ValueError(f"the rollout lacks the keys {missing}; it needs all of {ROLLOUT_KEYS}")
    out = {k: np.asarray(ro[k]) for k in ROLLOUT_KEYS}
    shape = out["rewards"].shape
    if len(shape) != 2 or shape[1] != num_envs or shape[0] < 1:
        raise ValueError(f"rollout arrays must be [T, num_envs={num_envs}], rewards has {shape}")
    for k, v in out.items():
        if v.shape[:2] != shape or v.ndim != (3 if k in ("obs", "next_obs") else 2):
            raise ValueError(f"rollout[{k!r}] has shape {v.shape}; expected {shape}"
                             + (" + (obs_dim,)" if k in ("obs", "next_obs") else ""))
    return out


def _hooks(collect_fn: Callable, update_fn: Callable | None, returns_fn: Callable,
           loss_fn: Callable) -> tuple[Callable, Callable]:
    """Validated (collect, update) for :func:`train`."""
    for name, fn in (("collect_fn", collect_fn), ("update_fn", update_fn),
                     ("returns_fn", returns_fn), ("loss_fn", loss_fn)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be a function, got {type(fn).__name__}")
    if update_fn is None:
        return collect_fn, lambda *args: update(*args, returns_fn=returns_fn, loss_fn=loss_fn)
    if returns_fn is not reward_to_go or loss_fn is not reinforce_loss:
        raise ValueError("pass returns_fn/loss_fn or update_fn, not both: your update_fn "
                         "computes the returns and the loss itself")
    return collect_fn, update_fn


def train(env_id: str = "CartPole-v1", seed: int = 0, *, device: str = "cpu",
          progress: bool = True, returns_fn: Callable = reward_to_go,
          loss_fn: Callable = reinforce_loss, collect_fn: Callable = collect_episodes,
          update_fn: Callable | None = None, **overrides) -> deeprl.TrainResult:
    """REINFORCE with reward-to-go and (by default) a learned value baseline.

    Each iteration resets the ``num_envs`` envs, keeps the first ``episodes_per_env`` complete
    episodes of every env (:func:`collect_episodes`), and makes one policy-gradient step
    (:func:`update`). A notebook plugs in its own versions: ``returns_fn`` and ``loss_fn``
    (signatures of :func:`reward_to_go` and :func:`reinforce_loss`), or a whole
    ``collect_fn(envs, act, episodes_per_env)`` and ``update_fn(policy, value, optimizers,
    batch, cfg)`` (signatures of :func:`collect_episodes` and :func:`update` without its last
    two arguments; an ``update_fn`` computes its own returns and loss). Stops after
    ``total_steps`` env steps (summed over sub-envs, counting the discarded steps of envs
    waiting for the slowest), or once solved if ``stop_when_solved``.
    """
    from tqdm.auto import tqdm

    from rlcourse.core import seed_everything

    cfg = make_config(**overrides)
    collect, step = _hooks(collect_fn, update_fn, returns_fn, loss_fn)
    seed_everything(seed)
    envs = deeprl.make_vec_env(env_id, cfg.num_envs, seed)
    obs_dim, n_actions = deeprl.check_env_for("REINFORCE", envs)
    policy = deeprl.mlp([obs_dim, cfg.hidden, cfg.hidden, n_actions], out_gain=0.01).to(device)
    value = deeprl.mlp([obs_dim, cfg.hidden, cfg.hidden, 1]).to(device)
    opts = (torch.optim.Adam(policy.parameters(), lr=cfg.lr),
            torch.optim.Adam(value.parameters(), lr=cfg.value_lr))
    gen = torch.Generator(device=device).manual_seed(seed)
    run = _Run(deeprl.EpisodeTracker(cfg.num_envs, deeprl.reward_threshold(env_id)),
               time.perf_counter())
    act = _sampler(policy, device, gen)
    bar = tqdm(total=cfg.total_steps, desc=f"REINFORCE {env_id} seed {seed}",
               disable=not progress, leave=False)
    while run.steps < cfg.total_steps:
        before = run.steps
        ro = check_rollout(collect(envs, act, cfg.episodes_per_env), cfg.num_envs)
        batch = _split_episodes(ro, device)
        _track(run, ro)
        bar.update(run.steps - before)
        if cfg.stop_when_solved and run.steps_to_solve is not None:
            break
        stats = step(policy, value, opts, batch, cfg)
        _log(run, stats)
        bar.set_postfix(mean20=f"{run.tracker.running_mean:.0f}")
    bar.close()
    envs.close()
    return deeprl.TrainResult(
        algo="REINFORCE", env_id=env_id, seed=seed, solved=run.steps_to_solve is not None,
        steps_to_solve=run.steps_to_solve, seconds_to_solve=run.seconds_to_solve,
        total_steps=run.steps, seconds=time.perf_counter() - run.started,
        act=GreedyPolicy(policy), episode_returns=list(run.tracker.returns), history=run.history)


def _log(run: _Run, stats: dict[str, float]) -> None:
    h = run.history
    h["update_step"].append(run.steps)
    h["running_mean"].append(run.tracker.running_mean)
    h["episodes"].append(len(run.tracker.returns))
    if not isinstance(stats, dict) or any(k not in stats for k in STATS_KEYS):
        raise ValueError(f"an update must return a dict with the keys {STATS_KEYS}, got "
                         f"{stats if isinstance(stats, dict) else type(stats).__name__}")
    for k in STATS_KEYS:
        h[k].append(float(stats[k]))


def episodes_to_solve(returns: list[float] | np.ndarray, threshold: float,
                      window: int = deeprl.SOLVE_WINDOW) -> int | None:
    """Number of episodes after which the mean of the last ``window`` first reaches ``threshold``.

    None if it never does. Shapes: ``returns`` [n_episodes] in the order they finished.
    """
    window = check_positive_int(window, "window")
    r = np.asarray(returns, dtype=float)
    if r.shape[0] < window:
        return None
    means = np.convolve(r, np.ones(window) / window, mode="valid")
    hits = np.flatnonzero(means >= threshold)
    return int(hits[0] + window) if hits.size else None
