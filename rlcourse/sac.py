"""Soft actor-critic (notebook 17): twin critics, a squashed Gaussian actor, auto temperature.

SAC maximises the return plus alpha times the policy's entropy. Per gradient step, on a replay
minibatch (B transitions, action dimension d):

* critics: y = r + gamma (1 - terminated) [min_i Q'_i(s', a') - alpha log pi(a'|s')] with
  a' ~ pi(.|s') and Q'_i the Polyak-averaged target critics; both critics regress on y.
* actor: minimise E[alpha log pi(a|s) - min_i Q_i(s, a)] with a = tanh(mu + sigma eps), the
  reparameterised sample, so the gradient flows through the action into the critics.
* temperature: minimise -log(alpha) (log pi(a|s) + target_entropy), target_entropy = -d;
  alpha grows when the policy's entropy falls below the target and shrinks above it.

Termination vs truncation: terminated transitions do not bootstrap, truncated ones do (the
final observation is a real state). Pendulum-v1 only truncates (after 200 steps).
Actions are stored and fed to the critics in the squashed space (-1, 1)^d; they are rescaled
to the env's bounds only when sent to the env.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from rlcourse import continuous, deeprl, dqn, wider
from rlcourse.validation import check_in_range, check_positive_int

Tensor = torch.Tensor


# ---- the formulas ---------------------------------------------------------------------------

def sac_target(rewards: Tensor, q1_next: Tensor, q2_next: Tensor, next_logp: Tensor,
               terminated: Tensor, gamma: float, alpha: float) -> Tensor:
    """y = r + gamma (1 - terminated) (min(Q1', Q2') - alpha log pi(a'|s')). All shapes [B].

    The soft target is TD3's clipped double-Q target (:func:`rlcourse.wider.td3_target`) applied
    to the soft values Q'_i - alpha log pi; min(Q1 - c, Q2 - c) = min(Q1, Q2) - c.
    """
    alpha = check_in_range(alpha, "alpha", 0.0, math.inf)
    if next_logp.shape != q1_next.shape:
        raise ValueError(f"next_logp {tuple(next_logp.shape)} must match q1_next "
                         f"{tuple(q1_next.shape)}")
    entropy_bonus = alpha * next_logp
    return wider.td3_target(rewards, q1_next - entropy_bonus, q2_next - entropy_bonus,
                            terminated, gamma)


def critic_loss(q1: Tensor, q2: Tensor, targets: Tensor) -> Tensor:
    """0.5 mean (Q1 - y)^2 + 0.5 mean (Q2 - y)^2; the targets are constants. Shapes [B]."""
    y = targets.detach()
    return 0.5 * ((q1 - y) ** 2).mean() + 0.5 * ((q2 - y) ** 2).mean()


def actor_loss(mean: Tensor, log_std: Tensor, eps: Tensor, q_fn: Callable[[Tensor], tuple],
               alpha: float) -> Tensor:
    """mean_b [alpha log pi(a_b|s_b) - min(Q1, Q2)(s_b, a_b)], a = tanh(mean + exp(log_std) eps).

    ``mean``, ``log_std`` and the standard-normal noise ``eps`` are [B, d]; ``q_fn(a)`` maps
    squashed actions [B, d] to the twin critics' values (q1 [B], q2 [B]) at the batch's
    states. The action is the reparameterised sample, so the loss's gradient reaches ``mean``
    and ``log_std`` through the critics as well as through log pi.
    """
    u = mean + log_std.exp() * eps
    q1, q2 = q_fn(torch.tanh(u))
    logp = continuous.squashed_log_prob(u, mean, log_std)
    return (alpha * logp - torch.minimum(q1, q2)).mean()


def temperature_loss(log_alpha: Tensor, logp: Tensor, target_entropy: float) -> Tensor:
    """-mean( log_alpha * (log pi(a|s) + target_entropy) ), with log pi treated as a constant.

    ``log_alpha`` is a scalar parameter, ``logp`` [B]. Its gradient, -mean(logp + H_target),
    is negative (alpha grows) when the entropy -mean(logp) is below the target.
    """
    return -(log_alpha * (logp.detach() + target_entropy)).mean()


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """theta_target <- (1 - tau) theta_target + tau theta_online, in place (tau in (0, 1])."""
    tau = check_in_range(tau, "tau", 0.0, 1.0, low_open=True)
    t_params, o_params = list(target.parameters()), list(online.parameters())
    if len(t_params) != len(o_params):
        raise ValueError("target and online networks must have the same parameters")
    for t, o in zip(t_params, o_params):
        t.lerp_(o, tau)


# ---- buffer and networks --------------------------------------------------------------------

class ReplayBuffer(dqn.ReplayBuffer):
    """DQN's ring buffer with float actions [capacity, act_dim] (squashed, in (-1, 1))."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int):
        super().__init__(capacity, obs_dim)
        self.actions = np.zeros((self.capacity, check_positive_int(act_dim, "act_dim")),
                                dtype=np.float32)


class TwinQ(nn.Module):
    """Two independent critics Q1, Q2 on (obs [N, obs_dim], action [N, d]) -> ([N], [N])."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (64, 64)):
        super().__init__()
        self.q1 = deeprl.mlp([obs_dim + act_dim, *hidden, 1], nn.ReLU)
        self.q2 = deeprl.mlp([obs_dim + act_dim, *hidden, 1], nn.ReLU)

    def forward(self, obs: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([obs, act], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


@dataclass(frozen=True)
class Config:
    """SAC's course defaults, tuned on Pendulum-v1 (bench: results/bench/sac-Pendulum-v1.json).

    One env, one gradient step per env step once ``learning_starts`` uniformly random steps
    have filled the buffer. Like the other algorithms, training stops once solved (running
    mean of the last 20 episodes >= the target), else after ``total_steps``. ``alpha_init``
    is the starting temperature; with ``autotune=True`` it is learned towards
    ``target_entropy`` (None: -action_dim).
    """

    num_envs: int = 1
    total_steps: int = 20_000
    buffer_size: int = 100_000
    batch_size: int = 128
    lr: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.01
    hidden: tuple[int, ...] = (64, 64)
    learning_starts: int = 1_000
    grad_steps: int = 1
    alpha_init: float = 0.2
    autotune: bool = True
    target_entropy: float | None = None
    stop_when_solved: bool = True
    log_every: int = 1_000

    def __post_init__(self) -> None:
        for name in ("num_envs", "total_steps", "buffer_size", "batch_size", "grad_steps",
                     "log_every"):
            check_positive_int(getattr(self, name), name)
        dqn.check_replay_config(self)
        check_in_range(self.tau, "tau", 0.0, 1.0, low_open=True)
        check_in_range(self.alpha_init, "alpha_init", 0.0, math.inf, low_open=True)


def make_config(**overrides) -> Config:
    """:class:`Config` with ``overrides``; unknown names are a ``TypeError`` listing the known."""
    return deeprl.config_with(Config(), "SAC", overrides)


# ---- training -------------------------------------------------------------------------------

@dataclass
class _Run:
    """Everything :func:`train` carries between collect and update steps."""

    cfg: Config
    actor: continuous.SquashedGaussianActor
    critic: TwinQ
    critic_target: TwinQ
    log_alpha: Tensor
    opts: dict[str, torch.optim.Optimizer]
    buffer: ReplayBuffer
    tracker: deeprl.EpisodeTracker
    step_mask: deeprl.StepMask
    rng: np.random.Generator
    generator: torch.Generator
    obs: np.ndarray
    low: np.ndarray
    high: np.ndarray
    target_entropy: float
    device: str
    started: float
    fns: dict[str, Callable]
    steps: int = 0
    steps_to_solve: int | None = None
    seconds_to_solve: float | None = None
    history: dict[str, list[float]] = field(default_factory=lambda: {
        "episode_end_step": [], "log_step": [], "running_mean": [], "alpha": [],
        "critic_loss": [], "actor_loss": [], "entropy": []})
    _sums: dict[str, float] = field(default_factory=dict)


def _collect(envs, run: _Run) -> None:
    """One vector step: uniform actions before ``learning_starts``, then samples of pi."""
    n = run.cfg.num_envs
    if run.steps < run.cfg.learning_starts:
        squashed = run.rng.uniform(-1.0, 1.0, size=(n, len(run.low))).astype(np.float32)
    else:
        with torch.no_grad():
            obs_t = torch.as_tensor(run.obs, dtype=torch.float32, device=run.device)
            squashed = run.actor.sample(obs_t, run.generator)[0].cpu().numpy()
    env_action = run.low + 0.5 * (squashed + 1.0) * (run.high - run.low)
    dqn.record_step(run, envs, env_action, squashed, n)


def _opt_step(opt: torch.optim.Optimizer, loss: Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _update(run: _Run) -> None:
    """One SAC gradient step: critics, then actor, then temperature, then Polyak averaging."""
    cfg, fns = run.cfg, run.fns
    b = {k: torch.as_tensor(v, device=run.device)
         for k, v in run.buffer.sample(cfg.batch_size, run.rng).items()}
    alpha = float(run.log_alpha.detach().exp())
    with torch.no_grad():
        a_next, logp_next = run.actor.sample(b["next_obs"], run.generator)
        q1_t, q2_t = run.critic_target(b["next_obs"], a_next)
        y = fns["target"](b["rewards"], q1_t, q2_t, logp_next, b["terminated"], cfg.gamma, alpha)
    lc = critic_loss(*run.critic(b["obs"], b["actions"]), y)
    _opt_step(run.opts["critic"], lc)
    mean, log_std = run.actor(b["obs"])
    eps = torch.randn(mean.shape, generator=run.generator, device=mean.device)
    run.critic.requires_grad_(False)  # the actor's step must not leave gradients in the critics
    la = fns["actor_loss"](mean, log_std, eps, lambda a: run.critic(b["obs"], a), alpha)
    _opt_step(run.opts["actor"], la)
    run.critic.requires_grad_(True)
    with torch.no_grad():
        logp = continuous.squashed_log_prob(mean + log_std.exp() * eps, mean, log_std)
    if cfg.autotune:
        _opt_step(run.opts["alpha"], fns["temperature_loss"](run.log_alpha, logp,
                                                             run.target_entropy))
    polyak_update(run.critic_target, run.critic, cfg.tau)
    for key, val in (("critic_loss", lc), ("actor_loss", la), ("entropy", -logp.mean())):
        run._sums[key] = run._sums.get(key, 0.0) + float(val.detach())
    run._sums["n"] = run._sums.get("n", 0) + 1


def _log(run: _Run) -> None:
    h, s = run.history, run._sums
    h["log_step"].append(run.steps)
    h["running_mean"].append(run.tracker.running_mean)
    h["alpha"].append(float(run.log_alpha.detach().exp()))
    for key in ("critic_loss", "actor_loss", "entropy"):
        h[key].append(s[key] / s["n"] if s.get("n") else float("nan"))
    run._sums = {}


def _make_run(env_id: str, seed: int, envs, cfg: Config, device: str,
              fns: dict[str, Callable]) -> _Run:
    """Networks, optimisers, buffer and bookkeeping for a fresh run."""
    obs_dim, act_dim, low, high = continuous.check_box_env("SAC", envs)
    actor = continuous.SquashedGaussianActor(obs_dim, act_dim, cfg.hidden).to(device)
    critic = TwinQ(obs_dim, act_dim, cfg.hidden).to(device)
    critic_target = copy.deepcopy(critic).requires_grad_(False)
    log_alpha = torch.tensor(math.log(cfg.alpha_init), device=device, requires_grad=True)
    opts = {"actor": dqn._adam(actor, cfg.lr), "critic": dqn._adam(critic, cfg.lr),
            "alpha": torch.optim.Adam([log_alpha], lr=cfg.lr)}
    obs, _ = envs.reset(seed=seed)
    target_entropy = -float(act_dim) if cfg.target_entropy is None else cfg.target_entropy
    return _Run(cfg, actor, critic, critic_target, log_alpha, opts,
                ReplayBuffer(cfg.buffer_size, obs_dim, act_dim),
                deeprl.EpisodeTracker(cfg.num_envs, continuous.reward_target(env_id)),
                deeprl.StepMask(cfg.num_envs), np.random.default_rng(seed),
                torch.Generator(device=device).manual_seed(seed), obs, low, high,
                target_entropy, device, time.perf_counter(), fns)


def train(env_id: str = "Pendulum-v1", seed: int = 0, *, device: str = "cpu",
          progress: bool = True, target_fn: Callable = sac_target,
          actor_loss_fn: Callable = actor_loss, temperature_loss_fn: Callable = temperature_loss,
          **overrides) -> deeprl.TrainResult:
    """Train SAC on a Box-action env; ``overrides`` change fields of :class:`Config`.

    ``target_fn``, ``actor_loss_fn`` and ``temperature_loss_fn`` have the signatures of
    :func:`sac_target`, :func:`actor_loss` and :func:`temperature_loss`, so a notebook can plug
    in its own. Stops at ``total_steps`` env steps (or once solved with ``stop_when_solved``);
    "solved" uses :func:`rlcourse.continuous.reward_target`. ``history`` holds
    ``episode_end_step`` per episode and, every ``log_every`` env steps, ``log_step``,
    ``running_mean``, ``alpha`` and the mean ``critic_loss``, ``actor_loss`` and ``entropy``
    (of the squashed policy, -mean log pi) over the interval's updates.
    """
    from tqdm.auto import tqdm

    from rlcourse.core import seed_everything

    cfg = make_config(**overrides)
    seed_everything(seed)
    envs = deeprl.make_vec_env(env_id, cfg.num_envs, seed)
    run = _make_run(env_id, seed, envs, cfg, device, {
        "target": target_fn, "actor_loss": actor_loss_fn,
        "temperature_loss": temperature_loss_fn})
    bar = tqdm(total=cfg.total_steps, desc=f"SAC {env_id} seed {seed}", disable=not progress,
               leave=False)
    while run.steps < cfg.total_steps:
        before = run.steps
        _collect(envs, run)
        if run.steps >= cfg.learning_starts:
            for _ in range(cfg.grad_steps * cfg.num_envs):
                _update(run)
        if run.steps // cfg.log_every > before // cfg.log_every:
            _log(run)
            bar.set_postfix(mean_return=f"{run.tracker.running_mean:.1f}")
        bar.update(run.steps - before)
        if cfg.stop_when_solved and run.steps_to_solve is not None:
            break
    bar.close()
    envs.close()
    return deeprl.TrainResult(
        algo="sac", env_id=env_id, seed=seed, solved=run.steps_to_solve is not None,
        steps_to_solve=run.steps_to_solve, seconds_to_solve=run.seconds_to_solve,
        total_steps=run.steps, seconds=time.perf_counter() - run.started,
        act=continuous.ScaledPolicy(run.actor.greedy, run.low, run.high),
        episode_returns=list(run.tracker.returns), history=run.history)
