"""Deep Q-networks (notebook 04): targets, loss, replay buffer, epsilon schedule and training.

The training loop is built from pieces a notebook can replace: :class:`ReplayBuffer`
(``buffer_cls=``), :func:`batch_loss` (the loss on one minibatch) and :func:`update_step` (the
gradient steps and the timed target copy, ``update_fn=``). :func:`run_probe` trains a DQN on
one of the probe environments of :mod:`rlcourse.probes` and compares its Q-table with the
exact one; :func:`planted_bugs` provides broken variants for the notebook's probe demo.

Shapes: a batch of B transitions has ``rewards`` [B], ``actions`` [B] (int64),
``terminated`` / ``truncated`` [B] (bool), and Q-values ``q`` [B, A] for A discrete actions.

Termination vs truncation: a *terminated* step ends in a terminal state whose value is 0, so its
target is just the reward. A *truncated* step (a time limit, e.g. CartPole-v1 at 500 steps) ends
in an ordinary state, so its target still bootstraps from the next state's value. With gymnasium's
next-step autoreset the observation returned at the last step is the true final observation, so
that bootstrap uses the right state.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcourse import deeprl
from rlcourse.validation import check_gamma, check_in_range, check_positive_int

Tensor = torch.Tensor


# ---- the formulas ---------------------------------------------------------------------------

def epsilon_schedule(step: int, start: float = 1.0, end: float = 0.01,
                     decay_steps: int = 5_000) -> float:
    """Linear decay: ``start`` at step 0, ``end`` from step ``decay_steps`` on (env steps)."""
    decay_steps = check_positive_int(decay_steps, "decay_steps")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    frac = min(step / decay_steps, 1.0)
    return float(start + frac * (end - start))


def _check_batch(rewards: Tensor, q: Tensor, *flags: Tensor) -> None:
    if q.ndim != 2:
        raise ValueError(f"Q-values must have shape [batch, actions], got {tuple(q.shape)}")
    for name, t in (("rewards", rewards), *(("flags", f) for f in flags)):
        if tuple(t.shape) != (q.shape[0],):
            raise ValueError(f"{name} has shape {tuple(t.shape)}; expected [{q.shape[0]}] to "
                             f"match Q-values of shape {tuple(q.shape)}")


def td_target(rewards: Tensor, next_q: Tensor, terminated: Tensor, truncated: Tensor,
              gamma: float) -> Tensor:
    """DQN target y = r + gamma * (1 - terminated) * max_a' Q(s', a'). Shapes [B], [B, A] -> [B].

    ``truncated`` is accepted to make the contract explicit and deliberately not used: a
    time-limit truncation does not end the task, so the target still bootstraps.
    """
    gamma = check_gamma(gamma)
    _check_batch(rewards, next_q, terminated, truncated)
    alive = 1.0 - terminated.to(next_q.dtype)
    return rewards.to(next_q.dtype) + gamma * alive * next_q.max(dim=1).values


def double_dqn_target(rewards: Tensor, next_q_online: Tensor, next_q_target: Tensor,
                      terminated: Tensor, gamma: float) -> Tensor:
    """Double DQN: y = r + gamma (1 - term) Q_target(s', argmax_a' Q_online(s', a')). -> [B].

    The online net *chooses* the next action, the target net *evaluates* it.
    """
    gamma = check_gamma(gamma)
    _check_batch(rewards, next_q_online, terminated)
    if next_q_target.shape != next_q_online.shape:
        raise ValueError(f"next_q_target {tuple(next_q_target.shape)} and next_q_online "
                         f"{tuple(next_q_online.shape)} must have the same shape")
    best = next_q_online.argmax(dim=1, keepdim=True)
    value = next_q_target.gather(1, best).squeeze(1)
    return rewards.to(value.dtype) + gamma * (1.0 - terminated.to(value.dtype)) * value


def n_step_target(rewards: Tensor, next_q: Tensor, terminated: Tensor, truncated: Tensor,
                  gamma: float) -> Tensor:
    """Multi-step DQN target from windows of n transitions starting at step t. -> [B].

    Shapes: ``rewards``, ``terminated``, ``truncated`` [B, n]; ``next_q`` [B, n, A]. Index k of
    a window is transition t+k: ``rewards[:, k]`` follows action a_{t+k} and ``next_q[:, k]``
    holds the target net's Q-values of the state s_{t+k+1} it leads to. The window stops after
    m steps at the first episode end (terminated or truncated), else m = n; flags after that
    end are ignored. Then y = sum_{k<m} gamma^k r_{t+k} + gamma^m (1 - terminated_{t+m-1})
    max_a next_q[:, m-1, a]: a termination inside the window removes the bootstrap, a
    truncation still bootstraps from the final observation.
    """
    gamma = check_gamma(gamma)
    if next_q.ndim != 3:
        raise ValueError(f"next_q must have shape [batch, n, actions], got {tuple(next_q.shape)}")
    for name, t in (("rewards", rewards), ("terminated", terminated), ("truncated", truncated)):
        if tuple(t.shape) != tuple(next_q.shape[:2]):
            raise ValueError(f"{name} has shape {tuple(t.shape)}; expected "
                             f"{list(next_q.shape[:2])} to match next_q {tuple(next_q.shape)}")
    b, n = rewards.shape
    ended = terminated.bool() | truncated.bool()
    ended_before = torch.cumsum(ended.long(), dim=1) - ended.long()  # ends strictly before k
    inside = ended_before == 0  # transition k belongs to the window
    m = inside.long().sum(dim=1)  # window length, 1..n
    discounts = gamma ** torch.arange(n, dtype=next_q.dtype)
    rewards_part = (rewards.to(next_q.dtype) * discounts * inside).sum(dim=1)
    last = (m - 1).unsqueeze(1)
    alive = 1.0 - terminated.gather(1, last).squeeze(1).to(next_q.dtype)
    boot = next_q.max(dim=2).values.gather(1, last).squeeze(1)
    return rewards_part + gamma ** m.to(next_q.dtype) * alive * boot


def dqn_loss(q_values: Tensor, actions: Tensor, targets: Tensor, huber: bool = False) -> Tensor:
    """Mean of 0.5 * squared error, or of the Huber loss (delta = 1), between Q(s, a) and y.

    Shapes: ``q_values`` [B, A], ``actions`` [B] int, ``targets`` [B]. The targets are treated
    as constants (semi-gradient): no gradient flows into them.
    """
    _check_batch(targets, q_values, actions)
    q_sa = q_values.gather(1, actions.long().unsqueeze(1)).squeeze(1)
    err = q_sa - targets.detach()
    if huber:
        abs_err = err.abs()
        return torch.where(abs_err <= 1.0, 0.5 * err ** 2, abs_err - 0.5).mean()
    return 0.5 * (err ** 2).mean()


def dueling_combine(value: Tensor, advantages: Tensor) -> Tensor:
    """Dueling head: Q = V + A - mean_a A. Shapes ``value`` [B, 1], ``advantages`` [B, A]."""
    return value + advantages - advantages.mean(dim=1, keepdim=True)


# ---- the overestimation toy -----------------------------------------------------------------

def noisy_max_estimates(true_q: np.ndarray, noise_std: float, n_trials: int,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Single and double estimates of max_a q_a from noisy estimates; returns two [n_trials].

    Each trial draws two independent noisy copies Q^A, Q^B = q + N(0, noise_std^2) of ``true_q``
    [A]. Single estimator: max_a Q^A_a. Double estimator: Q^B at argmax_a Q^A_a.
    """
    q = np.asarray(true_q, dtype=float)
    if q.ndim != 1 or len(q) < 1:
        raise ValueError(f"true_q must be a non-empty 1-d array, got shape {q.shape}")
    noise_std = check_in_range(noise_std, "noise_std", 0.0, np.inf)
    n = check_positive_int(n_trials, "n_trials")
    qa = q + noise_std * rng.standard_normal((n, len(q)))
    qb = q + noise_std * rng.standard_normal((n, len(q)))
    pick = qa.argmax(axis=1)
    return qa.max(axis=1), qb[np.arange(n), pick]


def expected_max_std_normal(n: int) -> float:
    """E[max of n independent N(0, 1)] = int x n phi(x) Phi(x)^(n-1) dx, by quadrature."""
    n = check_positive_int(n, "n")
    from math import erf, sqrt

    x = np.linspace(-10.0, 10.0, 20_001)
    pdf = np.exp(-0.5 * x ** 2) / np.sqrt(2 * np.pi)
    cdf = 0.5 * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))
    integrand = x * n * pdf * cdf ** (n - 1)
    return float(np.sum(0.5 * (integrand[1:] + integrand[:-1]) * np.diff(x)))


# ---- replay buffer --------------------------------------------------------------------------

class ReplayBuffer:
    """A fixed-size ring buffer of transitions in numpy arrays; uniform sampling.

    Stores (obs, action, reward, next_obs, terminated, truncated). Only rows flagged ``valid``
    are added, so next-step autoreset steps never enter the buffer. Rows are written in the
    order they arrive at slot ``pos``, which then moves on by one and wraps around to 0 after
    the last slot: once full, each new row overwrites the oldest one.
    """

    def __init__(self, capacity: int, obs_dim: int):
        self.capacity = check_positive_int(capacity, "capacity")
        self.obs_dim = check_positive_int(obs_dim, "obs_dim")
        self.obs = np.zeros((self.capacity, self.obs_dim), dtype=np.float32)
        self.next_obs = np.zeros_like(self.obs)
        self.actions = np.zeros(self.capacity, dtype=np.int64)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=bool)
        self.truncated = np.zeros(self.capacity, dtype=bool)
        self.pos = 0  # where the next row goes
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
            next_obs: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
            valid: np.ndarray | None = None) -> None:
        """Add a vector step: ``obs``/``next_obs`` [N, obs_dim], the others [N]."""
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim or next_obs.shape != obs.shape:
            raise ValueError(f"obs {obs.shape} and next_obs {next_obs.shape} must both be "
                             f"[N, {self.obs_dim}]")
        keep = np.ones(len(obs), bool) if valid is None else np.asarray(valid, bool)
        rows = (obs, actions, rewards, next_obs, terminated, truncated)
        if any(len(x) != len(obs) for x in (*rows, keep)):
            raise ValueError("all arrays of a vector step need the same first dimension "
                             f"{len(obs)}")
        k = int(keep.sum())
        if k > self.capacity:
            raise ValueError(f"cannot add {k} transitions to a buffer of capacity "
                             f"{self.capacity}")
        idx = (self.pos + np.arange(k)) % self.capacity
        for store, x in zip((self.obs, self.actions, self.rewards, self.next_obs,
                             self.terminated, self.truncated), rows):
            store[idx] = np.asarray(x)[keep]
        self.pos = (self.pos + k) % self.capacity
        self.size = min(self.size + k, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, Tensor]:
        """``batch_size`` transitions drawn uniformly, with replacement, from the filled slots.

        The contract (the notebook's check relies on it): exactly one call
        ``rng.integers(0, len(self), size=batch_size)`` picks the slots, and the batch holds
        those slots' rows in that order, as CPU tensors: ``obs``/``next_obs`` [B, obs_dim]
        float32, ``actions`` [B] int64, ``rewards`` [B] float32, ``terminated``/``truncated``
        [B] bool. The i-th transition ever added lives in slot ``i % capacity``, so the
        slots ``0 .. len(self) - 1`` are exactly the filled ones.
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if batch_size > self.size:
            raise ValueError(f"batch_size {batch_size} is larger than the {self.size} "
                             "transitions the buffer holds; wait until it has at least that many")
        return self._rows(rng.integers(0, self.size, size=batch_size))

    def latest(self, n: int) -> dict[str, Tensor]:
        """The ``n`` most recently added transitions (the no-replay ablation trains on these)."""
        n = min(check_positive_int(n, "n"), self.size)
        return self._rows((self.pos - n + np.arange(n)) % self.capacity)

    def _rows(self, idx: np.ndarray) -> dict[str, Tensor]:
        return {"obs": torch.from_numpy(self.obs[idx]),
                "actions": torch.from_numpy(self.actions[idx]),
                "rewards": torch.from_numpy(self.rewards[idx]),
                "next_obs": torch.from_numpy(self.next_obs[idx]),
                "terminated": torch.from_numpy(self.terminated[idx]),
                "truncated": torch.from_numpy(self.truncated[idx])}


# ---- configuration and network --------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    """Course defaults of DQN, tuned on CartPole-v1 (measurements in notebook 04).

    Step counts are env steps summed over the ``num_envs`` sub-envs. Every vector step adds
    ``num_envs`` transitions and takes ``grad_steps`` gradient steps (0.5 updates per env step
    here). The target network is a *hard* copy of the online net every ``target_update`` env
    steps (here every 50 gradient steps). ``huber=False`` means 0.5 * squared error (CartPole's
    rewards are small and bounded, so large TD errors are rare); ``huber=True`` the Huber loss.
    """

    num_envs: int = 4
    total_steps: int = 100_000
    buffer_size: int = 50_000
    batch_size: int = 64
    lr: float = 1e-3
    gamma: float = 0.99
    hidden: tuple[int, ...] = (128, 128)
    eps_start: float = 1.0
    eps_end: float = 0.01
    eps_decay_steps: int = 5_000
    learning_starts: int = 1_000
    grad_steps: int = 2
    target_update: int = 100
    huber: bool = False
    max_grad_norm: float = 10.0
    double: bool = False
    dueling: bool = False
    replay: bool = True
    target_network: bool = True
    stop_when_solved: bool = True
    log_every: int = 1_000

    def __post_init__(self) -> None:
        for name in ("num_envs", "total_steps", "buffer_size", "batch_size", "eps_decay_steps",
                     "grad_steps", "target_update", "log_every"):
            check_positive_int(getattr(self, name), name)
        check_replay_config(self)
        check_in_range(self.eps_start, "eps_start", 0.0, 1.0)
        check_in_range(self.eps_end, "eps_end", 0.0, 1.0)
        check_in_range(self.max_grad_norm, "max_grad_norm", 0.0, np.inf, low_open=True)


def check_replay_config(cfg: Any) -> None:
    """Checks shared by the replay-based configs (DQN, SAC): ``learning_starts``, ``gamma``,
    ``lr``, ``hidden`` and ``buffer_size`` against ``num_envs``; a clear ``ValueError``."""
    if not isinstance(cfg.learning_starts, int) or cfg.learning_starts < 0:
        raise ValueError(f"learning_starts must be an int >= 0, got {cfg.learning_starts!r}")
    check_gamma(cfg.gamma)
    check_in_range(cfg.lr, "lr", 0.0, 1.0, low_open=True)
    if not cfg.hidden or any(check_positive_int(h, "hidden") < 1 for h in cfg.hidden):
        raise ValueError(f"hidden must list positive layer widths, got {cfg.hidden!r}")
    if cfg.buffer_size < cfg.num_envs:
        raise ValueError(f"buffer_size ({cfg.buffer_size}) must be >= num_envs "
                         f"({cfg.num_envs})")


def make_config(**overrides) -> Config:
    """:class:`Config` with ``overrides``; unknown names are a ``TypeError`` listing the known."""
    return deeprl.config_with(Config(), "DQN", overrides)


class QNetwork(nn.Module):
    """Q-values from observations: [B, obs_dim] -> [B, A]; ReLU MLP, optionally dueling."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...] = (128, 128),
                 dueling: bool = False):
        super().__init__()
        self.dueling = dueling
        if dueling:
            self.torso = nn.Sequential(deeprl.mlp([obs_dim, *hidden], nn.ReLU), nn.ReLU())
            self.value = deeprl.mlp([hidden[-1], 1])
            self.advantage = deeprl.mlp([hidden[-1], n_actions])
        else:
            self.net = deeprl.mlp([obs_dim, *hidden, n_actions], nn.ReLU)

    def forward(self, obs: Tensor) -> Tensor:
        if not self.dueling:
            return self.net(obs)
        h = self.torso(obs)
        return dueling_combine(self.value(h), self.advantage(h))


class GreedyPolicy:
    """The greedy policy argmax_a Q(s, a) of a Q-network: obs batch [N, obs_dim] -> [N]."""

    def __init__(self, q_net: QNetwork):
        self.q_net = q_net

    @torch.no_grad()
    def __call__(self, obs: Tensor) -> Tensor:
        return self.q_net(obs).argmax(dim=1)


# ---- one learning step --------------------------------------------------------------------

def batch_loss(q_net: nn.Module, target_net: nn.Module, batch: dict[str, Tensor], gamma: float,
               huber: bool = False, *, target_fn: Callable = td_target,
               loss_fn: Callable = dqn_loss, double: bool = False,
               double_target_fn: Callable = double_dqn_target
               ) -> tuple[Tensor, Tensor, Tensor]:
    """The DQN loss on one minibatch; returns ``(loss, q_values, targets)``.

    ``batch`` is what :meth:`ReplayBuffer.sample` returns (B transitions). ``q_values`` [B, A]
    are the online net's outputs on ``obs`` (with gradients), ``targets`` [B] are computed
    under ``torch.no_grad()`` from the target net's values of ``next_obs``, masked by
    ``terminated`` only, and ``loss`` is the scalar :func:`dqn_loss`. With ``double`` the
    online net chooses the next action and the target net evaluates it.
    """
    q = q_net(batch["obs"])
    with torch.no_grad():
        next_q = target_net(batch["next_obs"])
        if double:
            next_online = q_net(batch["next_obs"]) if target_net is not q_net else next_q
            y = double_target_fn(batch["rewards"], next_online, next_q, batch["terminated"],
                                 gamma)
        else:
            y = target_fn(batch["rewards"], next_q, batch["terminated"], batch["truncated"],
                          gamma)
    return loss_fn(q, batch["actions"], y, huber), q, y


def target_sync_due(steps_before: int, steps: int, period: int) -> bool:
    """True when a multiple of ``period`` lies in (steps_before, steps]: time to copy theta."""
    return steps // period > steps_before // period


def update_step(q_net: nn.Module, target_net: nn.Module, optimizer: torch.optim.Optimizer,
                buffer: ReplayBuffer, rng: np.random.Generator, cfg: Config,
                steps_before: int, steps: int, *, loss_fn: Callable = batch_loss
                ) -> dict[str, float]:
    """The learning part of one training iteration, after the env counter moved to ``steps``.

    ``cfg.grad_steps`` times: sample ``cfg.batch_size`` transitions with ``buffer.sample(
    cfg.batch_size, rng)`` (without replay: ``buffer.latest(cfg.num_envs)``), compute the loss
    with ``loss_fn`` (signature of :func:`batch_loss`), zero the gradients, backpropagate,
    clip the gradient norm to ``cfg.max_grad_norm`` and take an optimiser step. Then, if a
    multiple of ``cfg.target_update`` env steps lies in (steps_before, steps], copy the online
    weights into ``target_net`` (a hard update). Returns the means over the gradient steps of
    ``loss``, ``q_mean`` (batch mean of max_a Q(s, a)), ``td_error`` (batch mean of
    |Q(s, a) - y|) and ``grad_norm`` (the norm before clipping).
    """
    device = next(q_net.parameters()).device
    sums = {"loss": 0.0, "q_mean": 0.0, "td_error": 0.0, "grad_norm": 0.0}
    for _ in range(cfg.grad_steps):
        batch = (buffer.sample(cfg.batch_size, rng) if cfg.replay
                 else buffer.latest(cfg.num_envs))
        batch = {k: v.to(device) for k, v in batch.items()}
        loss, q, y = loss_fn(q_net, target_net, batch, cfg.gamma, cfg.huber)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(q_net.parameters(), cfg.max_grad_norm)
        optimizer.step()
        q = q.detach()
        q_sa = q.gather(1, batch["actions"].long().unsqueeze(1)).squeeze(1)
        sums["loss"] += float(loss.detach())
        sums["q_mean"] += float(q.max(dim=1).values.mean())
        sums["td_error"] += float((q_sa - y).abs().mean())
        sums["grad_norm"] += float(norm)
    if target_net is not q_net and target_sync_due(steps_before, steps, cfg.target_update):
        target_net.load_state_dict(q_net.state_dict())
    return {k: v / cfg.grad_steps for k, v in sums.items()}


# ---- training -------------------------------------------------------------------------------

#: what ``history`` logs every ``log_every`` env steps, besides ``log_step``
DIAGNOSTICS = ("running_mean", "epsilon", "loss", "q_mean", "td_error", "grad_norm")


@dataclass
class _Run:
    """Everything :func:`train` carries between collect and update steps."""

    cfg: Config
    q_net: QNetwork
    target_net: QNetwork
    optimizer: torch.optim.Optimizer
    buffer: ReplayBuffer
    tracker: deeprl.EpisodeTracker
    step_mask: deeprl.StepMask
    rng: np.random.Generator
    obs: np.ndarray
    started: float
    fns: dict[str, Callable]
    steps: int = 0
    steps_to_solve: int | None = None
    seconds_to_solve: float | None = None
    history: dict[str, list[float]] = field(default_factory=lambda: {
        "episode_end_step": [], "log_step": [], **{k: [] for k in DIAGNOSTICS}})
    _sums: dict[str, float] = field(default_factory=dict)
    _n_logged: int = 0


def _collect(envs, run: _Run) -> None:
    """One vector step with the epsilon-greedy policy; stores the valid transitions."""
    cfg = run.cfg
    eps = run.fns["epsilon"](run.steps, cfg.eps_start, cfg.eps_end, cfg.eps_decay_steps)
    n = cfg.num_envs
    with torch.no_grad():
        obs_t = torch.as_tensor(run.obs, dtype=torch.float32,
                                device=next(run.q_net.parameters()).device)
        actions = run.q_net(obs_t).argmax(dim=1).cpu().numpy()
    explore = run.rng.random(n) < eps
    actions = np.where(explore, run.rng.integers(0, envs.single_action_space.n, n), actions)
    record_step(run, envs, actions, actions, n)


def record_step(run: Any, envs: gym.vector.VectorEnv, env_actions: np.ndarray,
                stored_actions: np.ndarray, n: int) -> None:
    """Step ``envs``, store the valid transitions in ``run.buffer`` and update the episode
    bookkeeping (tracker, ``episode_end_step``, first solve) shared by DQN and SAC.

    ``run`` has ``obs``, ``step_mask``, ``buffer``, ``tracker``, ``steps``, ``history``,
    ``steps_to_solve``, ``seconds_to_solve`` and ``started``; ``n`` is the number of sub-envs.
    """
    next_obs, r, term, trunc, _ = envs.step(env_actions)
    valid = run.step_mask.step(term, trunc)
    run.buffer.add(run.obs, stored_actions, r, next_obs, term, trunc, valid)
    n_before = len(run.tracker.returns)
    run.tracker.update(r, term, trunc, valid)
    run.steps += n
    run.history["episode_end_step"] += [run.steps] * (len(run.tracker.returns) - n_before)
    if run.steps_to_solve is None and run.tracker.solved:
        run.steps_to_solve = run.steps
        run.seconds_to_solve = time.perf_counter() - run.started
    run.obs = next_obs


class _OnDevice:
    """Wraps a buffer so that its minibatches arrive on ``device`` (for a plugged-in update)."""

    def __init__(self, buffer: ReplayBuffer, device: str):
        self.buffer, self.device = buffer, device

    def __len__(self) -> int:
        return len(self.buffer)

    def add(self, *args, **kwargs) -> None:
        self.buffer.add(*args, **kwargs)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, Tensor]:
        return {k: v.to(self.device) for k, v in self.buffer.sample(batch_size, rng).items()}

    def latest(self, n: int) -> dict[str, Tensor]:
        return {k: v.to(self.device) for k, v in self.buffer.latest(n).items()}


def _learn(run: _Run, steps_before: int) -> None:
    """Call the update function once learning has started; accumulate its diagnostics."""
    cfg = run.cfg
    needed = cfg.batch_size if cfg.replay else 1
    if run.steps < cfg.learning_starts or len(run.buffer) < needed:
        return
    target = run.target_net if cfg.target_network else run.q_net
    stats = run.fns["update"](run.q_net, target, run.optimizer, run.buffer, run.rng, cfg,
                              steps_before, run.steps)
    for k, v in (stats or {}).items():
        run._sums[k] = run._sums.get(k, 0.0) + float(v)
    run._n_logged += 1


def _log(run: _Run) -> None:
    h, k = run.history, max(run._n_logged, 1)
    h["log_step"].append(run.steps)
    h["running_mean"].append(run.tracker.running_mean)
    h["epsilon"].append(run.fns["epsilon"](run.steps, run.cfg.eps_start, run.cfg.eps_end,
                                           run.cfg.eps_decay_steps))
    for name in DIAGNOSTICS[2:]:  # NaN before learning starts or if the update omits it
        h[name].append(run._sums[name] / k if name in run._sums else float("nan"))
    run._sums = {}
    run._n_logged = 0


def train(env_id: str = "CartPole-v1", seed: int = 0, *, device: str = "cpu",
          progress: bool = True, target_fn: Callable = td_target,
          double_target_fn: Callable = double_dqn_target, loss_fn: Callable = dqn_loss,
          epsilon_fn: Callable = epsilon_schedule, update_fn: Callable | None = None,
          buffer_cls: Callable[[int, int], ReplayBuffer] = ReplayBuffer,
          **overrides) -> deeprl.TrainResult:
    """Train DQN on ``env_id``; ``overrides`` change fields of :class:`Config`.

    Hooks, so a notebook can plug in its own versions: ``target_fn``, ``double_target_fn``,
    ``loss_fn`` and ``epsilon_fn`` have the signatures of :func:`td_target`,
    :func:`double_dqn_target`, :func:`dqn_loss` and :func:`epsilon_schedule`;
    ``buffer_cls(capacity, obs_dim)`` builds the replay buffer (the interface of
    :class:`ReplayBuffer`); ``update_fn`` replaces :func:`update_step` (same signature; it
    then owns the loss, so ``target_fn``/``loss_fn``/``double`` no longer apply). Stops at
    ``total_steps`` env steps (summed over sub-envs), or once solved if ``stop_when_solved``.
    ``history`` holds ``episode_end_step`` (one entry per episode) and, every ``log_every`` env
    steps, ``log_step`` and :data:`DIAGNOSTICS`: the update's ``loss``, ``q_mean``,
    ``td_error`` and ``grad_norm`` averaged over the interval (NaN before learning starts).
    """
    cfg = make_config(**overrides)
    if update_fn is None:
        update_fn = partial(update_step, loss_fn=partial(
            batch_loss, target_fn=target_fn, loss_fn=loss_fn, double=cfg.double,
            double_target_fn=double_target_fn))
    return _train_loop(env_id, seed, cfg, device, progress,
                       {"epsilon": epsilon_fn, "update": update_fn}, buffer_cls)


def _train_loop(env_id: str, seed: int, cfg: Config, device: str, progress: bool,
                fns: dict[str, Callable], buffer_cls: Callable) -> deeprl.TrainResult:
    from tqdm.auto import tqdm

    from rlcourse.core import seed_everything

    seed_everything(seed)
    envs = deeprl.make_vec_env(env_id, cfg.num_envs, seed)
    obs_dim, n_actions = deeprl.check_env_for("DQN", envs)
    q_net = QNetwork(obs_dim, n_actions, cfg.hidden, cfg.dueling).to(device)
    target_net = copy.deepcopy(q_net).requires_grad_(False)
    obs, _ = envs.reset(seed=seed)
    buffer = buffer_cls(cfg.buffer_size if cfg.replay else cfg.num_envs, obs_dim)
    run = _Run(cfg, q_net, target_net, _adam(q_net, cfg.lr),
               buffer if torch.device(device).type == "cpu" else _OnDevice(buffer, device),
               deeprl.EpisodeTracker(cfg.num_envs, deeprl.reward_threshold(env_id)),
               deeprl.StepMask(cfg.num_envs), np.random.default_rng(seed), obs,
               time.perf_counter(), fns)
    bar = tqdm(total=cfg.total_steps, desc=f"DQN {env_id} seed {seed}", disable=not progress,
               leave=False)
    while run.steps < cfg.total_steps:
        before = run.steps
        _collect(envs, run)
        _learn(run, before)
        if run.steps // cfg.log_every > before // cfg.log_every:
            _log(run)
        bar.update(run.steps - before)
        if cfg.stop_when_solved and run.steps_to_solve is not None:
            break
    bar.close()
    envs.close()
    return deeprl.TrainResult(
        algo="DQN", env_id=env_id, seed=seed, solved=run.steps_to_solve is not None,
        steps_to_solve=run.steps_to_solve, seconds_to_solve=run.seconds_to_solve,
        total_steps=run.steps, seconds=time.perf_counter() - run.started,
        act=GreedyPolicy(q_net), episode_returns=list(run.tracker.returns),
        history=run.history)


# ---- reading results ----------------------------------------------------------------------

learning_curve = deeprl.learning_curve  # shared with actor_critic; used by notebook 04


def _adam(net: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam; the fused kernel (one call for all parameters) where this torch build has it."""
    try:
        return torch.optim.Adam(net.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):  # pragma: no cover - depends on the torch build
        return torch.optim.Adam(net.parameters(), lr=lr)


# ---- probe environments: debug a DQN on tiny tasks with known answers ----------------------

#: Settings of a probe run: a small net, a short run (about 160 gradient steps), gamma = 0.9
#: so that probe 3's Q(first) = gamma is far from Q(second) = 1, a target copy every 10
#: gradient steps, and enough exploration (epsilon >= 0.2) that both actions keep being tried.
PROBE_SETTINGS: dict = {
    "num_envs": 4, "total_steps": 700, "buffer_size": 1_000, "batch_size": 32, "lr": 2e-2,
    "gamma": 0.9, "hidden": (32,), "eps_decay_steps": 200, "eps_end": 0.2,
    "learning_starts": 64, "grad_steps": 1, "target_update": 40, "log_every": 350,
    "stop_when_solved": False}

#: A probe is passed when every learned Q-value is within this distance of the true one.
PROBE_TOLERANCE = 0.1


@dataclass(frozen=True)
class ProbeReport:
    """The Q-values a DQN learned on one probe, next to the exact ones.

    ``q`` and ``true_q`` are [n_obs, n_actions], one row per entry of ``observations``.
    """

    probe: str
    observations: list[float]
    q: np.ndarray
    true_q: np.ndarray

    @property
    def max_error(self) -> float:
        """Largest |learned - true| over every observation and action."""
        return float(np.max(np.abs(self.q - self.true_q)))

    @property
    def passed(self) -> bool:
        """Every learned Q-value within :data:`PROBE_TOLERANCE` of the true one."""
        return self.max_error <= PROBE_TOLERANCE


def run_probe(name: str, seed: int = 0, *, update_fn: Callable | None = None,
              buffer_cls: Callable[[int, int], ReplayBuffer] = ReplayBuffer,
              **overrides) -> ProbeReport:
    """Train DQN (with the given hooks) on probe ``name`` and read off its Q-table.

    Runs :func:`train` on ``probes.PROBE_IDS[name]`` with :data:`PROBE_SETTINGS` updated by
    ``overrides`` (``train``'s other hooks, e.g. ``target_fn``, pass through), then evaluates
    the online net on each observation the probe can show and compares with
    ``probes.make_probe(name).true_q`` at the run's gamma.
    """
    from rlcourse import probes

    if name not in probes.PROBE_IDS:
        raise ValueError(f"unknown probe {name!r}; choose from {', '.join(probes.PROBE_IDS)}")
    settings = {**PROBE_SETTINGS, **overrides}
    res = train(probes.PROBE_IDS[name], seed, progress=False, update_fn=update_fn,
                buffer_cls=buffer_cls, **settings)
    env = probes.make_probe(name)
    obs = env.observations()
    net = res.act.q_net
    with torch.no_grad():
        q = net(torch.tensor(obs, dtype=torch.float32)[:, None].to(
            next(net.parameters()).device)).cpu().numpy().astype(float)
    true = np.stack([env.true_q(o, settings["gamma"]) for o in obs])
    return ProbeReport(name, list(obs), q, true)


class _KeepsGradients:
    """An optimiser whose ``zero_grad`` does nothing (planted bug: gradients accumulate)."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The bug: forget to clear last step's gradients."""

    def step(self) -> None:
        self.optimizer.step()


class _StoresNextObs(ReplayBuffer):
    """A buffer that stores ``next_obs`` where ``obs`` belongs (planted bug)."""

    def add(self, obs, actions, rewards, next_obs, terminated, truncated, valid=None) -> None:
        super().add(next_obs, actions, rewards, next_obs, terminated, truncated, valid)


def planted_bugs() -> dict[str, dict[str, Callable]]:
    """Deliberately wrong DQN variants, as ``train`` hooks, for the probe demo of notebook 04.

    Each value is a dict of keyword arguments for :func:`train` / :func:`run_probe`. The
    bugs: bootstrapping through terminal states, treating truncation as termination, never
    copying the target net, never zeroing gradients, training the Q-value of the greedy
    action instead of the action taken, and a buffer that stores s' in place of s.
    """
    def no_mask(rewards, next_q, terminated, truncated, gamma):
        return rewards + gamma * next_q.max(dim=1).values

    def done_mask(rewards, next_q, terminated, truncated, gamma):
        return td_target(rewards, next_q, terminated | truncated, truncated, gamma)

    def never_synced(q_net, target_net, optimizer, buffer, rng, cfg, steps_before, steps):
        return update_step(q_net, target_net, optimizer, buffer, rng, cfg, steps, steps)

    def no_zero_grad(q_net, target_net, optimizer, *rest):
        return update_step(q_net, target_net, _KeepsGradients(optimizer), *rest)

    def greedy_action_q(q_values, actions, targets, huber=False):
        return dqn_loss(q_values, q_values.argmax(dim=1), targets, huber)

    return {"no terminal mask": {"target_fn": no_mask},
            "truncation = termination": {"target_fn": done_mask},
            "target never synced": {"update_fn": never_synced},
            "no zero_grad": {"update_fn": no_zero_grad},
            "Q of the greedy action": {"loss_fn": greedy_action_q},
            "buffer stores s' as s": {"buffer_cls": _StoresNextObs}}
