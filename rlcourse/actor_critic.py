"""Advantage actor-critic (A2C) on vector environments, and n-step returns (notebook 06).

A2C is the synchronous form of A3C: ``num_envs`` copies of the environment step side by side,
every ``n_steps`` steps the rollout of shape [T, N] (T = n_steps, N = num_envs) is turned into
advantages with GAE (:func:`rlcourse.advantages.gae`), and one gradient step is taken on

    loss = -mean(A_t log pi(a_t|s_t)) + vf_coef * 0.5 mean((V(s_t) - R_t)^2) - ent_coef * mean(H)

with the critic's target R_t = A_t + V(s_t) (the lambda-return). The maths lives in small pure
functions (:func:`n_step_returns`, :func:`a2c_loss`); :func:`train` is the loop around them.

Rollouts follow gymnasium's next-step autoreset (see :mod:`rlcourse.deeprl`): the step after an
episode ends is not a real transition and gets ``valid = False``; termination stops the
bootstrap, truncation (the time limit) does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from rlcourse import deeprl
from rlcourse.advantages import gae, masked_mean, normalize
from rlcourse.validation import check_gamma, check_in_range, check_positive_int

Tensor = torch.Tensor
OPTIMIZERS = ("adam", "rmsprop")


# ---- the maths: n-step returns and the A2C loss -------------------------------------------

def n_step_returns(rewards: Tensor, next_values: Tensor, terminated: Tensor, dones: Tensor,
                   gamma: float, n: int) -> Tensor:
    """n-step returns G_t^(n) = sum_{k<m} gamma^k r_{t+k} + gamma^m V(s_{t+m}). Shapes [B, T].

    m = min(n, steps left in the episode, steps left in the rollout). The bootstrap value
    ``next_values[:, t+m-1]`` = V(s_{t+m}) is dropped when step t+m-1 terminated; a truncated
    episode (``dones`` without ``terminated``) is bootstrapped. ``n = 1`` gives the TD(0) target;
    ``n >= T`` gives the Monte-Carlo return, bootstrapped at truncations and the rollout's end.
    """
    if rewards.ndim != 2:
        raise ValueError(f"rewards must have shape [batch, time], got {tuple(rewards.shape)}")
    for name, x in (("next_values", next_values), ("terminated", terminated), ("dones", dones)):
        if tuple(x.shape) != tuple(rewards.shape):
            raise ValueError(f"{name} has shape {tuple(x.shape)} but rewards has "
                             f"{tuple(rewards.shape)}; all inputs must be [batch, time]")
    gamma = check_gamma(gamma)
    n = check_positive_int(n, "n")
    T = rewards.shape[1]
    boot = (1.0 - terminated.to(rewards.dtype)) * next_values
    cut = dones.to(torch.bool).clone()
    cut[:, -1] = True  # the rollout ends: bootstrap from the last next value

    def ahead(x: Tensor, k: int, fill: float) -> Tensor:
        """x[:, t + k] at position t, padded with ``fill`` past the end."""
        out = torch.full_like(x, fill)
        out[:, : T - k] = x[:, k:]
        return out

    out = torch.zeros_like(rewards)
    alive = torch.ones_like(cut)
    discount = 1.0
    for k in range(min(n, T)):
        r_k, boot_k, cut_k = ahead(rewards, k, 0.0), ahead(boot, k, 0.0), ahead(cut, k, True)
        ends = alive & (cut_k | (k == n - 1))
        weight_r, weight_b = alive.to(rewards.dtype), ends.to(rewards.dtype)
        out = out + discount * (weight_r * r_k + gamma * weight_b * boot_k)
        alive = alive & ~ends
        discount *= gamma
    return out


def a2c_loss(logits: Tensor, actions: Tensor, advantages: Tensor, values: Tensor,
             returns: Tensor, mask: Tensor | None = None, vf_coef: float = 0.5,
             ent_coef: float = 0.0) -> tuple[Tensor, dict[str, float]]:
    """The A2C loss to minimise, and its parts as floats.

    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy, with
    policy_loss = -mean(A log pi(a|s)), value_loss = 0.5 mean((V - R)^2), entropy = mean(H(pi)).
    Advantages and returns are constants (detached): only log pi, V and H carry gradients.
    Shapes: ``logits`` [..., n_actions]; the others [...] (e.g. [B, T]); means over ``mask``.
    """
    batch_shape = tuple(logits.shape[:-1])
    for name, x in (("actions", actions), ("advantages", advantages), ("values", values),
                    ("returns", returns), ("mask", mask)):
        if x is not None and tuple(x.shape) != batch_shape:
            raise ValueError(f"{name} has shape {tuple(x.shape)} but logits {tuple(logits.shape)}"
                             f" need [...] = {batch_shape}")
    log_probs = torch.log_softmax(logits, dim=-1)
    logp = log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    entropy = masked_mean(-(log_probs.exp() * log_probs).sum(-1), mask)
    policy_loss = -masked_mean(logp * advantages.detach(), mask)
    value_loss = 0.5 * masked_mean((values - returns.detach()) ** 2, mask)
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
    parts = {"policy_loss": float(policy_loss.detach()), "value_loss": float(value_loss.detach()),
             "entropy": float(entropy.detach())}
    return loss, parts


# ---- configuration and networks -----------------------------------------------------------

@dataclass(frozen=True)
class Config:
    """Course defaults of A2C (tuned on CartPole-v1: see notebook 06 for the measurements)."""

    num_envs: int = 16
    n_steps: int = 16
    gamma: float = 0.99
    lam: float = 0.95
    lr: float = 3e-3
    optimizer: str = "adam"
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: int = 64
    shared: bool = False
    normalize_advantages: bool = True
    bootstrap_on_truncation: bool = True
    total_steps: int = 200_000
    stop_when_solved: bool = True

    def __post_init__(self) -> None:
        for name in ("num_envs", "n_steps", "hidden", "total_steps"):
            check_positive_int(getattr(self, name), name)
        check_gamma(self.gamma)
        check_gamma(self.lam, "lam")
        check_in_range(self.lr, "lr", 0.0, 1.0, low_open=True)
        for name in ("ent_coef", "vf_coef"):
            check_in_range(getattr(self, name), name, 0.0, np.inf)
        check_in_range(self.max_grad_norm, "max_grad_norm", 0.0, np.inf, low_open=True)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")


def make_config(**overrides) -> Config:
    """:class:`Config` with ``overrides``; unknown names are a ``TypeError`` listing the known."""
    return deeprl.config_with(Config(), "A2C", overrides)


class ActorCritic(nn.Module):
    """Policy logits and state values from observations: [..., obs_dim] -> ([..., A], [...]).

    ``shared=True``: one tanh torso with two linear heads; otherwise two separate 2-layer MLPs.
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64, shared: bool = False):
        super().__init__()
        self.shared = shared
        if shared:
            self.body = nn.Sequential(deeprl.mlp([obs_dim, hidden, hidden], out_gain=np.sqrt(2)),
                                      nn.Tanh())
            self.actor = deeprl.mlp([hidden, n_actions], out_gain=0.01)
            self.critic = deeprl.mlp([hidden, 1], out_gain=1.0)
        else:
            self.body = nn.Identity()
            self.actor = deeprl.mlp([obs_dim, hidden, hidden, n_actions], out_gain=0.01)
            self.critic = deeprl.mlp([obs_dim, hidden, hidden, 1], out_gain=1.0)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(obs)
        return self.actor(h), self.critic(h).squeeze(-1)

    def logits(self, obs: Tensor) -> Tensor:
        """Policy logits only (what acting needs): [..., obs_dim] -> [..., A]."""
        return self.actor(self.body(obs))


class A2CPolicy:
    """A trained agent: calling it is the greedy policy (obs [N, obs_dim] -> actions [N]).

    ``value(obs)`` gives the critic's V(s) [N]; ``net`` is the :class:`ActorCritic`.
    """

    def __init__(self, net: ActorCritic):
        self.net = net

    @torch.no_grad()
    def __call__(self, obs: Tensor) -> Tensor:
        return self.net(obs)[0].argmax(-1)

    @torch.no_grad()
    def value(self, obs: Tensor) -> Tensor:
        return self.net(obs)[1]


# ---- the training loop --------------------------------------------------------------------

@dataclass
class Rollout:
    """One rollout of ``n_steps`` vector steps; tensors are [T, N] (obs [T, N, obs_dim])."""

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    terminated: Tensor
    dones: Tensor
    valid: Tensor
    last_obs: Tensor


@dataclass
class _Progress:
    """Counters shared by the collect and update steps of :func:`train`."""

    tracker: deeprl.EpisodeTracker
    step_mask: deeprl.StepMask
    obs: np.ndarray
    started: float
    steps: int = 0
    steps_to_solve: int | None = None
    seconds_to_solve: float | None = None
    history: dict[str, list[float]] = field(default_factory=lambda: {
        "episode_end_step": [], "update_step": [], "running_mean": [], "policy_loss": [],
        "value_loss": [], "entropy": []})


def collect(envs, net: ActorCritic, prog: _Progress, cfg: Config, device: str,
            greedy: bool = False) -> Rollout:
    """Step the vector env ``cfg.n_steps`` times with the sampled (or greedy) policy."""
    obs, actions, arrays = [], [], []
    for _ in range(cfg.n_steps):
        obs_t = torch.as_tensor(prog.obs, dtype=torch.float32, device=device)
        with torch.no_grad():
            logits = net.logits(obs_t)  # Gumbel-max: argmax(logits + Gumbel noise) ~ pi
            noise = 0.0 if greedy else torch.empty_like(logits).exponential_().log()
            action = (logits - noise).argmax(-1)
        prog.obs, r, term, trunc, _ = envs.step(action.cpu().numpy())
        valid = prog.step_mask.step(term, trunc)
        n_before = len(prog.tracker.returns)
        prog.tracker.update(r, term, trunc, valid)
        prog.steps += cfg.num_envs
        prog.history["episode_end_step"] += [prog.steps] * (len(prog.tracker.returns) - n_before)
        if prog.steps_to_solve is None and prog.tracker.solved:
            prog.steps_to_solve = prog.steps
            prog.seconds_to_solve = time.perf_counter() - prog.started
        ends = term if cfg.bootstrap_on_truncation else term | trunc
        obs.append(obs_t)
        actions.append(action)
        arrays.append(np.stack([r, ends & valid, term | trunc | ~valid, valid]))
    r, ends, dones, valid = torch.as_tensor(np.stack(arrays, axis=1), device=device)  # [4, T, N]
    return Rollout(obs=torch.stack(obs), actions=torch.stack(actions), rewards=r.float(),
                   terminated=ends.bool(), dones=dones.bool(), valid=valid.bool(),
                   last_obs=torch.as_tensor(prog.obs, dtype=torch.float32, device=device))


def update(net: ActorCritic, optimizer: torch.optim.Optimizer, ro: Rollout, cfg: Config,
           gae_fn: Callable = gae, loss_fn: Callable = a2c_loss) -> dict[str, float]:
    """One gradient step of A2C on rollout ``ro``; returns the loss parts (floats).

    In order: one forward pass of ``net`` on the T+1 observations (``ro.obs`` and
    ``ro.last_obs``); transposed to [N, T], advantages ``gae_fn(rewards, V(s_t), V(s_t+1),
    terminated, dones, gamma, lam)`` and the critic's targets advantages + V(s_t), all
    computed without gradient; advantages normalised over the valid steps if
    ``cfg.normalize_advantages``; ``loss_fn`` with mask = ``ro.valid``, ``cfg.vf_coef`` and
    ``cfg.ent_coef``; zero_grad, backward, clip the gradient norm of all parameters at
    ``cfg.max_grad_norm``, one optimizer step.
    """
    logits, values = net(torch.cat([ro.obs, ro.last_obs[None]]))  # [T+1, N, A], [T+1, N]
    bt = lambda x: x.transpose(0, 1)  # [T, N] -> [N, T], the layout of rlcourse.advantages
    mask = bt(ro.valid).float()
    with torch.no_grad():
        v = values.detach()
        adv = gae_fn(bt(ro.rewards), bt(v[:-1]), bt(v[1:]), bt(ro.terminated), bt(ro.dones),
                     cfg.gamma, cfg.lam)
        returns = adv + bt(v[:-1])  # the lambda-return: the critic's target
        if cfg.normalize_advantages:
            adv = normalize(adv, mask)
    loss, parts = loss_fn(bt(logits[:-1]), bt(ro.actions), adv, bt(values[:-1]), returns, mask,
                          cfg.vf_coef, cfg.ent_coef)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
    optimizer.step()
    return parts


def train(env_id: str = "CartPole-v1", seed: int = 0, *, device: str = "cpu",
          progress: bool = True, gae_fn: Callable = gae, loss_fn: Callable = a2c_loss,
          update_fn: Callable | None = None, **overrides) -> deeprl.TrainResult:
    """Train A2C on ``env_id``; ``overrides`` change fields of :class:`Config`.

    ``gae_fn`` and ``loss_fn`` (same signatures as :func:`rlcourse.advantages.gae` and
    :func:`a2c_loss`) let a notebook plug in its own versions; or a whole
    ``update_fn(net, optimizer, ro, cfg) -> parts`` (the signature of :func:`update` without
    its last two arguments: it computes its own advantages and loss). Stops at
    ``total_steps`` env steps (summed over sub-envs), or once solved if ``stop_when_solved``.
    """
    from tqdm.auto import tqdm

    from rlcourse.core import seed_everything

    cfg = make_config(**overrides)
    step = _update_hook(update_fn, gae_fn, loss_fn)
    seed_everything(seed)
    envs = deeprl.make_vec_env(env_id, cfg.num_envs, seed)
    obs_dim, n_actions = deeprl.check_env_for("A2C", envs)
    net = ActorCritic(obs_dim, n_actions, cfg.hidden, cfg.shared).to(device)
    opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.RMSprop
    optimizer = opt_cls(net.parameters(), lr=cfg.lr)
    obs, _ = envs.reset(seed=seed)
    prog = _Progress(deeprl.EpisodeTracker(cfg.num_envs, _threshold(env_id)),
                     deeprl.StepMask(cfg.num_envs), obs, time.perf_counter())
    bar = tqdm(total=cfg.total_steps, desc=f"A2C {env_id} seed {seed}", disable=not progress,
               leave=False)
    while prog.steps < cfg.total_steps:
        before = prog.steps
        ro = collect(envs, net, prog, cfg, device)
        parts = step(net, optimizer, ro, cfg)
        _log(prog, parts)
        bar.update(prog.steps - before)
        if cfg.stop_when_solved and prog.steps_to_solve is not None:
            break
    bar.close()
    envs.close()
    return deeprl.TrainResult(
        algo="A2C", env_id=env_id, seed=seed, solved=prog.steps_to_solve is not None,
        steps_to_solve=prog.steps_to_solve, seconds_to_solve=prog.seconds_to_solve,
        total_steps=prog.steps, seconds=time.perf_counter() - prog.started,
        act=A2CPolicy(net), episode_returns=list(prog.tracker.returns), history=prog.history)


def _update_hook(update_fn: Callable | None, gae_fn: Callable, loss_fn: Callable) -> Callable:
    """The validated update step of :func:`train`: ``update_fn`` or :func:`update`."""
    for name, fn in (("update_fn", update_fn), ("gae_fn", gae_fn), ("loss_fn", loss_fn)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be a function, got {type(fn).__name__}")
    if update_fn is None:
        return lambda net, opt, ro, cfg: update(net, opt, ro, cfg, gae_fn, loss_fn)
    if gae_fn is not gae or loss_fn is not a2c_loss:
        raise ValueError("pass gae_fn/loss_fn or update_fn, not both: your update_fn computes "
                         "the advantages and the loss itself")
    return update_fn


def _threshold(env_id: str) -> float | None:
    """The env's reward threshold, or None (then "solved" never becomes true)."""
    try:
        return deeprl.reward_threshold(env_id)
    except ValueError:
        return None


def _log(prog: _Progress, parts: dict[str, float]) -> None:
    h = prog.history
    h["update_step"].append(prog.steps)
    h["running_mean"].append(prog.tracker.running_mean)
    keys = ("policy_loss", "value_loss", "entropy")
    if not isinstance(parts, dict) or any(k not in parts for k in keys):
        raise ValueError(f"an update must return a dict with the keys {keys}, got "
                         f"{parts if isinstance(parts, dict) else type(parts).__name__}")
    for k in keys:
        h[k].append(float(parts[k]))


# ---- policy evaluation on a fixed rollout (the truncation experiment) --------------------

def rollout(policy: A2CPolicy, env_id: str, num_envs: int, n_steps: int, seed: int,
            device: str = "cpu", greedy: bool = False) -> Rollout:
    """``n_steps`` vector steps of ``policy.net`` (sampled, or greedy), from a fresh reset.

    ``terminated`` marks true terminations only (truncations are in ``dones``).
    """
    cfg = make_config(num_envs=num_envs, n_steps=n_steps)
    envs = deeprl.make_vec_env(env_id, num_envs, seed)
    obs, _ = envs.reset(seed=seed)
    prog = _Progress(deeprl.EpisodeTracker(num_envs), deeprl.StepMask(num_envs), obs,
                     time.perf_counter())
    ro = collect(envs, policy.net, prog, cfg, device, greedy)
    envs.close()
    return ro


def time_in_episode(ro: Rollout) -> Tensor:
    """Steps since the episode began, [T, N] (0 at a reset; the rollout starts at a reset)."""
    t = torch.zeros(ro.rewards.shape, dtype=torch.long, device=ro.rewards.device)
    for i in range(1, t.shape[0]):
        t[i] = torch.where(ro.dones[i - 1], 0, t[i - 1] + 1)
    return t


def fit_critic(ro: Rollout, terminated: Tensor, gamma: float, lam: float, *,
               gae_fn: Callable = gae, hidden: int = 64, iterations: int = 40,
               steps_per_iteration: int = 25, batch_size: int = 1024, lr: float = 3e-3,
               seed: int = 0) -> nn.Module:
    """Fit a fresh critic V(s) to the lambda-returns of a fixed rollout (policy evaluation).

    Each iteration recomputes the targets ``gae_fn(...) + V`` with the current critic, using
    ``terminated`` [T, N] to decide where not to bootstrap, then takes Adam steps on
    0.5 (V(s) - target)^2 over random minibatches of valid steps. Returns the critic
    (obs [..., d] -> [..., 1]).
    """
    if tuple(terminated.shape) != tuple(ro.rewards.shape):
        raise ValueError(f"terminated has shape {tuple(terminated.shape)} but the rollout is "
                         f"{tuple(ro.rewards.shape)}")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    critic = deeprl.mlp([ro.obs.shape[-1], hidden, hidden, 1]).to(ro.obs.device)
    opt = torch.optim.Adam(critic.parameters(), lr=lr)
    obs_all = torch.cat([ro.obs, ro.last_obs[None]])
    bt = lambda x: x.transpose(0, 1)
    idx = torch.nonzero(ro.valid.reshape(-1)).squeeze(-1)
    flat_obs = ro.obs.reshape(-1, ro.obs.shape[-1])
    for _ in range(iterations):
        with torch.no_grad():
            v = critic(obs_all).squeeze(-1)
            adv = gae_fn(bt(ro.rewards), bt(v[:-1]), bt(v[1:]), bt(terminated), bt(ro.dones),
                         gamma, lam)
            targets = bt(adv).reshape(-1) + v[:-1].reshape(-1)
        for _ in range(steps_per_iteration):
            pick = idx[torch.randint(len(idx), (min(batch_size, len(idx)),), generator=gen)]
            loss = 0.5 * ((critic(flat_obs[pick]).squeeze(-1) - targets[pick]) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return critic


# ---- reading results ----------------------------------------------------------------------

learning_curve = deeprl.learning_curve  # shared with dqn; used by notebook 06
