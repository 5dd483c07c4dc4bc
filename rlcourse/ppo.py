"""Trust regions and PPO (notebook 07): ratios, clipped surrogate, value loss, KL estimates.

All losses are written to be *minimised* (loss = -objective) and average over a mask of real
steps, so they serve both vector-env rollouts and padded language-model batches ([B, T]).

The module has three parts: the loss functions and KL tools (pure, any shape); small exact
problems used to teach the theory (KL fits on a grid, tabular surrogate and performance
difference, the natural gradient of a softmax); and the PPO agent for gymnasium vector envs
(:class:`Config`, :func:`collect_rollout`, :func:`update`, :func:`train`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from tqdm.auto import tqdm

from rlcourse import continuous, deeprl
from rlcourse.advantages import gae, masked_mean, normalize
from rlcourse.validation import check_gamma, check_in_range, check_positive_int

Tensor = torch.Tensor


def clipped_surrogate(logp: Tensor, logp_old: Tensor, adv: Tensor, clip_eps: float = 0.2,
                      mask: Tensor | None = None, clip_eps_high: float | None = None
                      ) -> tuple[Tensor, dict[str, float]]:
    """PPO-clip policy loss  -mean( min(r A, clip(r, 1-eps, 1+eps) A) ),  r = pi/pi_old.

    Shapes: any shape, all equal (e.g. [B, T] with ``mask`` [B, T]). Returns (loss, stats) with
    the fraction of clipped samples and the k3 estimate of KL(pi_old || pi). ``clip_eps_high``
    (DAPO's clip-higher) sets the upper bound to 1 + clip_eps_high; None keeps the symmetric clip.
    """
    low, high = _clip_bounds(clip_eps, clip_eps_high)
    if not (logp.shape == logp_old.shape == adv.shape):
        raise ValueError(f"logp {tuple(logp.shape)}, logp_old {tuple(logp_old.shape)} and "
                         f"adv {tuple(adv.shape)} must have the same shape")
    log_ratio = logp - logp_old
    ratio = log_ratio.exp()
    loss = -masked_mean(clipped_objective(ratio, adv, clip_eps, clip_eps_high), mask)
    with torch.no_grad():
        if clip_eps_high is None:  # symmetric: exactly the historical test
            clipped = ((ratio - 1).abs() > float(clip_eps)).to(adv.dtype)
        else:
            clipped = ((ratio < low) | (ratio > high)).to(adv.dtype)
        stats = {"clip_fraction": float(masked_mean(clipped, mask)),
                 "approx_kl": float(masked_mean(kl_k3(log_ratio), mask))}
    return loss, stats


def _clip_bounds(clip_eps: float, clip_eps_high: float | None) -> tuple[float, float]:
    """(1 - clip_eps, 1 + clip_eps_high), with clip_eps_high = clip_eps when None."""
    eps = check_in_range(clip_eps, "clip_eps", 0.0, 1.0, low_open=True)
    if clip_eps_high is None:
        return 1 - eps, 1 + eps
    high = check_in_range(clip_eps_high, "clip_eps_high", 0.0, float("inf"), low_open=True,
                          high_open=True)
    return 1 - eps, 1 + high


def clipped_objective(ratio: Tensor, adv: Tensor, clip_eps: float = 0.2,
                      clip_eps_high: float | None = None) -> Tensor:
    """Per-sample PPO-clip objective  min(r A, clip(r, 1-eps, 1+eps) A)  (to maximise).

    Elementwise; ``ratio`` and ``adv`` have the same shape. The clip acts on the ratio, never
    on the advantage or the gradient. ``clip_eps_high`` (DAPO's clip-higher, e.g. 0.28 with
    clip_eps = 0.2) decouples the upper bound: clip(r, 1-eps, 1+eps_high); None: symmetric.
    """
    low, high = _clip_bounds(clip_eps, clip_eps_high)
    if ratio.shape != adv.shape:
        raise ValueError(f"ratio {tuple(ratio.shape)} and adv {tuple(adv.shape)} must have the "
                         "same shape")
    return torch.minimum(ratio * adv, ratio.clamp(low, high) * adv)


def clipped_value_loss(values: Tensor, old_values: Tensor, targets: Tensor,
                       clip_eps: float | None = None, mask: Tensor | None = None) -> Tensor:
    """0.5 * mean squared error to ``targets``; with ``clip_eps``, PPO's pessimistic clipped form.

    The clipped form takes the larger of the errors of ``values`` and of
    ``old_values + clip(values - old_values, -eps, eps)``.
    """
    err = (values - targets) ** 2
    if clip_eps is not None:
        moved = old_values + (values - old_values).clamp(-clip_eps, clip_eps)
        err = torch.maximum(err, (moved - targets) ** 2)
    return 0.5 * masked_mean(err, mask)


def kl_k1(log_ratio: Tensor) -> Tensor:
    """k1 = -log r with r = p(x)/q(x), x ~ q: unbiased for KL(q || p), but can be negative."""
    return -log_ratio


def kl_k2(log_ratio: Tensor) -> Tensor:
    """k2 = (log r)^2 / 2: biased, always >= 0, low variance when p and q are close."""
    return 0.5 * log_ratio ** 2


def kl_k3(log_ratio: Tensor) -> Tensor:
    """k3 = (r - 1) - log r, x ~ q: unbiased for KL(q || p) and always >= 0."""
    return torch.expm1(log_ratio) - log_ratio


# ---- more of the math: ratios, the six cases, exact KL, entropy, adaptive beta -------------

def ratio_from_logps(logp: Tensor, logp_old: Tensor) -> Tensor:
    """r = pi(a|s) / pi_old(a|s) = exp(logp - logp_old), elementwise (any equal shapes).

    Taking the difference of logs first avoids dividing two tiny probabilities.
    """
    if logp.shape != logp_old.shape:
        raise ValueError(f"logp {tuple(logp.shape)} and logp_old {tuple(logp_old.shape)} must "
                         "have the same shape")
    return torch.exp(logp - logp_old)


def clip_branch_active(ratio: Tensor, adv: Tensor, clip_eps: float = 0.2) -> Tensor:
    """Bool mask: the clipped term is the (strict) minimum, so the sample has zero gradient.

    That happens for A > 0 with r > 1 + eps and for A < 0 with r < 1 - eps. In the other two
    "outside" cases (A > 0, r < 1 - eps; A < 0, r > 1 + eps) the unclipped term is smaller, so
    it stays active: the pessimistic bound keeps pulling the ratio back.
    """
    eps = check_in_range(clip_eps, "clip_eps", 0.0, 1.0, low_open=True)
    return ((adv > 0) & (ratio > 1 + eps)) | ((adv < 0) & (ratio < 1 - eps))


def categorical_kl(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """Exact KL(p || q) = sum_a p(a) (log p(a) - log q(a)) per row. [..., A] -> [...]."""
    if logits_p.shape != logits_q.shape:
        raise ValueError(f"logits_p {tuple(logits_p.shape)} and logits_q "
                         f"{tuple(logits_q.shape)} must have the same shape")
    logp, logq = torch.log_softmax(logits_p, -1), torch.log_softmax(logits_q, -1)
    return (logp.exp() * (logp - logq)).sum(-1)


def categorical_entropy(logits: Tensor) -> Tensor:
    """H(pi) = -sum_a pi(a) log pi(a) per row. [..., A] -> [...]."""
    logp = torch.log_softmax(logits, -1)
    return -(logp.exp() * logp).sum(-1)


def adaptive_kl_beta(beta: float, kl: float, target: float, factor: float = 2.0,
                     tolerance: float = 1.5) -> float:
    """PPO-penalty's rule: beta * factor if kl > tolerance * target, beta / factor if
    kl < target / tolerance, else unchanged (a too-large step makes the penalty stiffer)."""
    if beta <= 0 or target <= 0 or factor <= 1 or tolerance < 1:
        raise ValueError(f"need beta > 0, target > 0, factor > 1, tolerance >= 1; got "
                         f"beta={beta}, target={target}, factor={factor}, tolerance={tolerance}")
    if kl > tolerance * target:
        return beta * factor
    if kl < target / tolerance:
        return beta / factor
    return beta


def kl_penalty_surrogate(logp: Tensor, logp_old: Tensor, adv: Tensor, kl: Tensor, beta: float,
                         mask: Tensor | None = None) -> Tensor:
    """PPO-penalty loss  -mean( r A - beta * KL(pi_old || pi) )  (to minimise).

    ``kl`` holds a per-sample KL (exact over actions, or an estimator such as k3); same shape
    as ``adv``.
    """
    ratio = ratio_from_logps(logp, logp_old)
    if adv.shape != ratio.shape or kl.shape != ratio.shape:
        raise ValueError(f"adv {tuple(adv.shape)} and kl {tuple(kl.shape)} must match logp "
                         f"{tuple(ratio.shape)}")
    return -masked_mean(ratio * adv - beta * kl, mask)


def ppo_loss(policy_loss: Tensor, value_loss: Tensor, entropy: Tensor, vf_coef: float = 0.5,
             ent_coef: float = 0.01) -> Tensor:
    """The full loss to minimise:  policy_loss + vf_coef * value_loss - ent_coef * entropy.

    This is  -(L^CLIP - c1 L^VF + c2 S)  with ``policy_loss = -L^CLIP``: the entropy *bonus*
    is subtracted from a loss, the value error is added. ``entropy`` is the mean entropy.
    """
    if vf_coef < 0 or ent_coef < 0:
        raise ValueError(f"vf_coef and ent_coef must be >= 0, got {vf_coef}, {ent_coef}")
    return policy_loss + vf_coef * value_loss - ent_coef * entropy



# ---- KL directions, the surrogate's accuracy, the natural gradient (small exact problems) ---

def fit_gaussian_kl(xs: Tensor, log_p: Tensor, direction: str, mu0: float = 0.0,
                    sigma0: float = 1.0, steps: int = 400, lr: float = 0.05
                    ) -> tuple[float, float]:
    """Fit N(mu, sigma^2) to a target on a grid by gradient descent on a KL; returns (mu, sigma).

    ``xs`` [G] is an evenly spaced grid and ``log_p`` [G] the target's log-probabilities on it
    (normalised over the grid). ``direction="forward"`` minimises KL(p || q) (mass-covering,
    what maximum likelihood does), ``"reverse"`` minimises KL(q || p) (mode-seeking).
    """
    if direction not in ("forward", "reverse"):
        raise ValueError(f"direction must be 'forward' or 'reverse', got {direction!r}")
    if xs.shape != log_p.shape or xs.ndim != 1:
        raise ValueError(f"xs {tuple(xs.shape)} and log_p {tuple(log_p.shape)} must be equal "
                         "1-D shapes")
    mu = torch.tensor(float(mu0), dtype=xs.dtype, requires_grad=True)
    log_sigma = torch.tensor(float(np.log(sigma0)), dtype=xs.dtype, requires_grad=True)
    opt = torch.optim.Adam([mu, log_sigma], lr=lr)
    for _ in range(check_positive_int(steps, "steps")):
        log_q = torch.log_softmax(-0.5 * ((xs - mu) / log_sigma.exp()) ** 2, 0)
        first, second = (log_p, log_q) if direction == "forward" else (log_q, log_p)
        kl = (first.exp() * (first - second)).sum()
        opt.zero_grad()
        kl.backward()
        opt.step()
    return float(mu.detach()), float(log_sigma.detach().exp())


def tabular_values(P: Tensor, R: Tensor, gamma: float, pi: Tensor) -> tuple[Tensor, Tensor]:
    """Exact V [S] and Q [S, A] of policy ``pi`` [S, A] in an MDP (P [S, A, S], R [S, A]).

    Solves (I - gamma P_pi) V = r_pi; differentiable in ``pi`` (needs gamma < 1).
    """
    gamma = check_in_range(gamma, "gamma", 0.0, 1.0, high_open=True)
    P_pi = torch.einsum("sa,sat->st", pi, P)
    V = torch.linalg.solve(torch.eye(P.shape[0], dtype=P.dtype) - gamma * P_pi,
                           (pi * R).sum(1))
    return V, R + gamma * P @ V


def state_visitation(P: Tensor, gamma: float, pi: Tensor, rho0: Tensor) -> Tensor:
    """Discounted state distribution d(s) = (1 - gamma) sum_t gamma^t Pr(s_t = s). [S]."""
    gamma = check_in_range(gamma, "gamma", 0.0, 1.0, high_open=True)
    P_pi = torch.einsum("sa,sat->st", pi, P)
    eye = torch.eye(P.shape[0], dtype=P.dtype)
    return (1 - gamma) * torch.linalg.solve((eye - gamma * P_pi).T, rho0)


def surrogate_gain(P: Tensor, R: Tensor, gamma: float, rho0: Tensor, pi_old: Tensor,
                   pi: Tensor, exact: bool = False) -> Tensor:
    """Predicted J(pi) - J(pi_old) = E_{s ~ d, a ~ pi_old}[ pi/pi_old * A_old ] / (1 - gamma).

    With ``exact=False``, d is pi_old's state distribution (the TRPO/PPO surrogate, first-order
    accurate); with ``exact=True`` it is pi's own, which makes it an identity (the performance
    difference lemma).
    """
    V, Q = tabular_values(P, R, gamma, pi_old)
    adv = Q - V[:, None]
    d = state_visitation(P, gamma, pi if exact else pi_old, rho0)
    weighted = pi_old * (pi / pi_old) * adv  # importance weights over actions, written out
    return (d * weighted.sum(1)).sum() / (1 - gamma)


def softmax_fisher(logits: Tensor) -> Tensor:
    """Fisher information of a softmax policy in its logits: diag(p) - p p^T. [A] -> [A, A]."""
    p = torch.softmax(logits, -1)
    return torch.diag(p) - torch.outer(p, p)


def natural_gradient_step(logits: Tensor, grad: Tensor, max_kl: float) -> Tensor:
    """The TRPO step for one softmax: F^+ g scaled so that  0.5 d^T F d = max_kl. [A] -> [A].

    ``F^+`` is the pseudo-inverse (F is singular: adding a constant to all logits changes
    nothing). To second order the step changes the policy by KL = ``max_kl``.
    """
    if max_kl <= 0:
        raise ValueError(f"max_kl must be > 0, got {max_kl}")
    F = softmax_fisher(logits)
    g = grad - grad.mean()  # drop the component along the null direction (1, ..., 1)
    direction = torch.linalg.pinv(F, hermitian=True, rtol=1e-10) @ g
    curvature = direction @ F @ direction
    if float(curvature) <= 1e-20:
        return torch.zeros_like(logits)
    return direction * torch.sqrt(2 * max_kl / curvature)

# ---- the agent and its training loop ------------------------------------------------------

@dataclass(frozen=True)
class Config:
    """PPO's course defaults (tuned on CartPole-v1; they also solve Acrobot-v1).

    Set ``clip_eps=None`` to drop the ratio clip, ``objective="kl_penalty"`` for PPO-penalty,
    ``epochs=1, minibatches=1`` for one plain policy-gradient step per batch (vanilla PG).

    The critic's schedule is its own: ``critic_epochs`` and ``critic_minibatches`` (None: the
    same as the policy's). When it equals the policy's, one joint loss trains both networks
    (PPO as usually written); otherwise the critic is fitted in a separate loop with its own
    steps, so ``epochs=1, minibatches=1`` with the defaults' critic schedule (8 x 4) is a
    vanilla PG whose advantages come from an equally well-trained critic.
    """

    num_envs: int = 8
    rollout_steps: int = 64          # per env, so a batch holds num_envs * rollout_steps steps
    epochs: int = 8
    minibatches: int = 4
    critic_epochs: int | None = None       # None: the same as ``epochs``
    critic_minibatches: int | None = None  # None: the same as ``minibatches``
    lr: float = 2.5e-3
    anneal_lr: bool = True           # linear decay to 0 over ``anneal_steps``
    anneal_steps: int | None = None  # the decay's horizon; None means ``total_steps``
    gamma: float = 0.99
    lam: float = 0.95
    objective: str = "clip"          # "clip" (PPO-clip) or "kl_penalty" (PPO-penalty)
    clip_eps: float | None = 0.2
    kl_target: float = 0.01          # PPO-penalty: target KL(pi_old || pi) per update
    beta_init: float = 1.0           # PPO-penalty: initial KL coefficient
    target_kl: float | None = None   # optional early stop of the epochs (both objectives)
    vf_coef: float = 0.5
    vf_clip: float | None = None     # value clipping (PPO's pessimistic value loss)
    ent_coef: float = 0.0
    max_grad_norm: float | None = 0.5
    norm_adv: bool = True
    hidden: int = 64
    total_steps: int = 200_000
    stop_when_solved: bool = True
    post_solve_steps: int = 0        # keep training this many env steps after solving

    def __post_init__(self) -> None:
        for name in ("num_envs", "rollout_steps", "epochs", "minibatches", "hidden",
                     "total_steps"):
            check_positive_int(getattr(self, name), name)
        for name in ("anneal_steps", "critic_epochs", "critic_minibatches"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        check_gamma(self.gamma)
        check_gamma(self.lam, "lam")
        check_in_range(self.lr, "lr", 0.0, 1.0, low_open=True)
        if self.objective not in ("clip", "kl_penalty"):
            raise ValueError(f"objective must be 'clip' or 'kl_penalty', got {self.objective!r}")
        if self.clip_eps is not None:
            check_in_range(self.clip_eps, "clip_eps", 0.0, 1.0, low_open=True)
        for name in ("kl_target", "beta_init", "vf_coef", "ent_coef", "vf_clip",
                     "max_grad_norm", "target_kl", "post_solve_steps"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        for name in ("minibatches", "critic_minibatches"):
            value = getattr(self, name)
            if value is not None and value > self.num_envs * self.rollout_steps:
                raise ValueError(f"{name}={value} exceeds the batch size "
                                 f"{self.num_envs * self.rollout_steps}")

    @property
    def critic_schedule(self) -> tuple[int, int]:
        """(epochs, minibatches) of the critic's fit on each batch."""
        return (self.epochs if self.critic_epochs is None else self.critic_epochs,
                self.minibatches if self.critic_minibatches is None else self.critic_minibatches)

    @property
    def joint_update(self) -> bool:
        """True when actor and critic share one schedule, hence one loss per minibatch."""
        return self.critic_schedule == (self.epochs, self.minibatches)


def make_config(**overrides) -> Config:
    """:class:`Config` with ``overrides``; unknown names are a ``TypeError`` listing the known."""
    return deeprl.config_with(Config(), "PPO", overrides)


class ActorCritic(nn.Module):
    """Separate policy and value MLPs (two tanh hidden layers each)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()
        self.pi = deeprl.mlp([obs_dim, hidden, hidden, n_actions], out_gain=0.01)
        self.v = deeprl.mlp([obs_dim, hidden, hidden, 1], out_gain=1.0)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """obs [N, obs_dim] -> (logits [N, A], values [N])."""
        return self.pi(obs), self.v(obs).squeeze(-1)

    @torch.no_grad()
    def act_greedy(self, obs: Tensor) -> Tensor:
        """The most probable action for each row of ``obs``: [N, obs_dim] -> [N]."""
        return self.pi(obs).argmax(-1)


@dataclass
class Rollout:
    """One batch from the vector env; tensors are [T, N] (or [T, N, ...]) on the device."""

    obs: Tensor
    actions: Tensor
    logits: Tensor
    logp: Tensor
    values: Tensor
    next_values: Tensor
    rewards: Tensor
    terminated: Tensor
    dones: Tensor
    valid: Tensor


def sample_actions(logits: Tensor, generator: torch.Generator) -> Tensor:
    """Draw one action per row of ``logits`` [N, A] (Gumbel-max trick) -> [N]."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device)
    return (logits - torch.log(-torch.log(u.clamp_min(1e-20)))).argmax(-1)


def advantages_and_targets(ro: Rollout, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """GAE advantages and value targets (A + V), both [T, N], via :mod:`rlcourse.advantages`.

    The rollout is [T, N]; the estimators work on [batch, time], hence the transposes.
    """
    adv = gae(ro.rewards.T, ro.values.T, ro.next_values.T, ro.terminated.T, ro.dones.T,
              gamma, lam).T
    return adv, adv + ro.values


@dataclass
class _Run:
    """Mutable state of one training run between rollouts."""

    envs: gym.vector.VectorEnv
    obs: np.ndarray
    step_mask: deeprl.StepMask
    tracker: deeprl.EpisodeTracker
    started: float
    steps: int = 0
    solved_at: int | None = None
    solved_seconds: float | None = None


@torch.no_grad()
def collect_rollout(agent: ActorCritic, run: _Run, steps: int, generator: torch.Generator,
                    device: str = "cpu") -> Rollout:
    """Run the current policy for ``steps`` vector steps; returns [T, N] tensors on ``device``.

    Autoreset steps (next-step autoreset) get ``valid = False``; the value after the last
    step bootstraps the rollout's end, and a truncated episode bootstraps from its final
    observation (``next_values``) while a terminated one does not (``terminated``).
    """
    n = run.envs.num_envs
    obs_l, logits_l, act_l, val_l = [], [], [], []
    rew, term, trunc, valid = (np.empty((steps, n), dtype=d)
                               for d in (np.float32, bool, bool, bool))
    for t in range(steps):
        obs = torch.as_tensor(run.obs, dtype=torch.float32, device=device)
        logits, v = agent(obs)
        action = sample_actions(logits, generator)
        obs_l.append(obs), logits_l.append(logits), act_l.append(action), val_l.append(v)
        run.obs, rew[t], term[t], trunc[t], _ = run.envs.step(action.cpu().numpy())
        valid[t] = run.step_mask.step(term[t], trunc[t])
        run.tracker.update(rew[t], term[t], trunc[t], valid[t])
        run.steps += n
        if run.solved_at is None and run.tracker.solved:
            run.solved_at, run.solved_seconds = run.steps, time.perf_counter() - run.started
    last_v = agent.v(torch.as_tensor(run.obs, dtype=torch.float32, device=device)).squeeze(-1)
    values, logits, actions = torch.stack(val_l), torch.stack(logits_l), torch.stack(act_l)
    as_t = lambda x: torch.as_tensor(x, device=device)
    term_t, valid_t = as_t(term), as_t(valid)
    return Rollout(obs=torch.stack(obs_l), actions=actions, logits=logits,
                   logp=torch.log_softmax(logits, -1).gather(-1, actions[..., None])[..., 0],
                   values=values, next_values=torch.cat([values[1:], last_v[None]]),
                   rewards=as_t(rew), terminated=term_t, dones=term_t | as_t(trunc) | ~valid_t,
                   valid=valid_t)


def _policy_loss(cfg: Config, logits: Tensor, logp: Tensor, logp_old: Tensor,
                 logits_old: Tensor, adv: Tensor, beta: float) -> Tensor:
    """The policy part of the loss for the configured objective (mean over the minibatch)."""
    ratio = ratio_from_logps(logp, logp_old)
    if cfg.objective == "kl_penalty":
        kl = categorical_kl(logits_old, logits)  # KL(pi_old || pi), exact over actions
        return kl_penalty_surrogate(logp, logp_old, adv, kl, beta)
    if cfg.clip_eps is None:
        return -(ratio * adv).mean()
    return -clipped_objective(ratio, adv, cfg.clip_eps).mean()


@torch.no_grad()
def _batch_stats(agent: ActorCritic, obs: Tensor, act: Tensor, logits_old: Tensor,
                 targets: Tensor, clip_eps: float | None) -> dict[str, float]:
    """KL(pi_old || pi) (exact, and its k3 estimate ``approx_kl``), clip fraction, entropy and
    value error of the updated agent."""
    logits, v = agent(obs)
    logp = torch.log_softmax(logits, -1).gather(-1, act[:, None])[:, 0]
    logp_old = torch.log_softmax(logits_old, -1).gather(-1, act[:, None])[:, 0]
    ratio = ratio_from_logps(logp, logp_old)
    eps = 0.2 if clip_eps is None else clip_eps
    return {"kl": float(categorical_kl(logits_old, logits).mean()),
            "approx_kl": float(kl_k3(logp - logp_old).mean()),
            "clip_fraction": float(((ratio - 1).abs() > eps).float().mean()),
            "entropy": float(categorical_entropy(logits).mean()),
            "value_loss": float(0.5 * ((v - targets) ** 2).mean())}


def _minibatches(n: int, minibatches: int, generator: torch.Generator,
                 device: torch.device) -> tuple[Tensor, ...]:
    """A random split of the indices 0..n-1 into ``minibatches`` parts (fewer if n is small)."""
    size = -(-n // min(minibatches, n))
    return torch.randperm(n, generator=generator, device=device).split(size)


def _step(opt: torch.optim.Optimizer, loss: Tensor, params: list[nn.Parameter],
          max_grad_norm: float | None) -> float:
    """One optimiser step on ``loss``; only ``params`` get gradients (others are skipped).

    Returns the total gradient norm of ``params`` before clipping."""
    opt.zero_grad()
    loss.backward()
    if max_grad_norm is not None:
        norm = nn.utils.clip_grad_norm_(params, max_grad_norm)
    else:
        norm = nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    opt.step()
    return float(norm)


def fit_critic(agent: ActorCritic, opt: torch.optim.Optimizer, obs: Tensor, v_old: Tensor,
               targets: Tensor, cfg: Config, generator: torch.Generator) -> int:
    """The critic's own schedule (``cfg.critic_schedule``) of value-loss steps; returns the count.

    ``obs`` [n, obs_dim], ``v_old`` and ``targets`` [n] (valid steps only). Only the value
    network's parameters receive gradients, so the policy is left unchanged.
    """
    epochs, minibatches = cfg.critic_schedule
    params, steps = list(agent.v.parameters()), 0
    for _ in range(epochs):
        for mb in _minibatches(obs.shape[0], minibatches, generator, obs.device):
            v = agent.v(obs[mb]).squeeze(-1)
            vl = clipped_value_loss(v, v_old[mb], targets[mb], cfg.vf_clip)
            _step(opt, cfg.vf_coef * vl, params, cfg.max_grad_norm)
            steps += 1
    return steps


def update(agent: ActorCritic, opt: torch.optim.Optimizer, ro: Rollout, adv: Tensor,
           targets: Tensor, cfg: Config, generator: torch.Generator, beta: float = 0.0
           ) -> dict[str, float]:
    """``cfg.epochs`` passes of minibatch gradient steps on the valid steps of ``ro``.

    With ``cfg.joint_update`` each step minimises the full PPO loss (policy, value, entropy);
    otherwise the policy steps use the policy and entropy terms only and :func:`fit_critic`
    then runs the critic's own schedule. Returns statistics of the updated policy on the whole
    batch: the exact KL(pi_old || pi), the fraction of ratios outside [1 - eps, 1 + eps], the
    entropy, the value error, the number of policy epochs run (fewer when ``target_kl`` stopped
    the update early), the number of critic steps and the mean gradient norm of the policy
    steps before clipping (``grad_norm``).
    """
    keep = ro.valid.reshape(-1)
    flat = lambda x: x.reshape(-1, *x.shape[2:])[keep]
    obs, act, logp_old, logits_old, v_old, adv, targets = map(
        flat, (ro.obs, ro.actions, ro.logp, ro.logits, ro.values, adv, targets))
    joint, epochs, critic_steps, norms = cfg.joint_update, 0, 0, []
    params = list(agent.parameters() if joint else agent.pi.parameters())
    for _ in range(cfg.epochs):
        for mb in _minibatches(obs.shape[0], cfg.minibatches, generator, obs.device):
            logits, v = agent(obs[mb]) if joint else (agent.pi(obs[mb]), None)
            logp = torch.log_softmax(logits, -1).gather(-1, act[mb, None])[:, 0]
            a = normalize(adv[mb]) if cfg.norm_adv and len(mb) > 1 else adv[mb]
            pl = _policy_loss(cfg, logits, logp, logp_old[mb], logits_old[mb], a, beta)
            ent = categorical_entropy(logits).mean()
            if joint:
                vl = clipped_value_loss(v, v_old[mb], targets[mb], cfg.vf_clip)
                loss = ppo_loss(pl, vl, ent, cfg.vf_coef, cfg.ent_coef)
                critic_steps += 1
            else:
                loss = pl - cfg.ent_coef * ent
            norms.append(_step(opt, loss, params, cfg.max_grad_norm))
        epochs += 1
        if cfg.target_kl is not None:
            with torch.no_grad():
                kl = float(categorical_kl(logits_old, agent.pi(obs)).mean())
            if kl > cfg.target_kl:
                break
    if not joint:
        critic_steps = fit_critic(agent, opt, obs, v_old, targets, cfg, generator)
    stats = _batch_stats(agent, obs, act, logits_old, targets, cfg.clip_eps)
    return {**stats, "epochs": float(epochs), "critic_steps": float(critic_steps),
            "grad_norm": float(np.mean(norms))}


# ---- the update in parts (notebook 07's staged exercises) and the critic's explained variance

def explained_variance(values: Tensor, targets: Tensor) -> float:
    """1 - Var(targets - values) / Var(targets): the share of the targets' variance the critic
    explains. ``values`` and ``targets`` [n]. 1 is perfect, 0 is no better than predicting the
    mean, negative is worse than that; NaN when the targets do not vary (or n < 2)."""
    if values.shape != targets.shape or values.ndim != 1:
        raise ValueError(f"values {tuple(values.shape)} and targets {tuple(targets.shape)} must "
                         "be equal 1-D shapes")
    if targets.numel() < 2:
        return float("nan")
    var = float(targets.double().var(unbiased=False))
    if var == 0.0:
        return float("nan")
    return 1.0 - float((targets.double() - values.double()).var(unbiased=False)) / var


@dataclass
class Batch:
    """The valid steps of a :class:`Rollout`, flattened: ``obs`` [n, obs_dim], the rest [n]
    (``logits_old`` [n, A]). ``adv`` holds the raw GAE advantages, ``targets`` = A + V_old."""

    obs: Tensor
    actions: Tensor
    logp_old: Tensor
    logits_old: Tensor
    v_old: Tensor
    adv: Tensor
    targets: Tensor


def flatten_rollout(ro: Rollout, adv: Tensor, targets: Tensor) -> Batch:
    """Keep the valid steps of ``ro`` (autoreset steps dropped) and flatten [T, N] to [n]."""
    if adv.shape != ro.valid.shape or targets.shape != ro.valid.shape:
        raise ValueError(f"adv {tuple(adv.shape)} and targets {tuple(targets.shape)} must have "
                         f"the rollout's shape {tuple(ro.valid.shape)}")
    keep = ro.valid.reshape(-1)
    flat = lambda x: x.reshape(-1, *x.shape[2:])[keep]
    return Batch(*map(flat, (ro.obs, ro.actions, ro.logp, ro.logits, ro.values, adv, targets)))


def minibatch_indices(n: int, minibatches: int, epochs: int, generator: torch.Generator
                      ) -> Iterator[tuple[Tensor, ...]]:
    """Yield, for each of ``epochs`` epochs, a random split of the indices 0 .. n-1.

    Each epoch draws ONE fresh ``torch.randperm(n, generator=generator)`` (on the generator's
    device), when that epoch is asked for, and splits it into chunks of ceil(n / minibatches)
    indices: at most ``minibatches`` chunks, the last one shorter when the split is uneven.
    :func:`update` uses exactly this split.
    """
    check_positive_int(n, "n")
    check_positive_int(minibatches, "minibatches")
    check_positive_int(epochs, "epochs")
    for _ in range(epochs):
        yield _minibatches(n, minibatches, generator, generator.device)


def minibatch_loss(logp: Tensor, logp_old: Tensor, adv: Tensor, values: Tensor, v_old: Tensor,
                   targets: Tensor, entropy: Tensor, cfg: Config
                   ) -> tuple[Tensor, dict[str, float]]:
    """PPO-clip's loss on one minibatch, as :func:`update` computes it, and two diagnostics.

    All inputs [B]: ``logp`` (current policy, with gradient), ``logp_old`` (the rollout's),
    raw advantages ``adv`` (normalised here over the minibatch when ``cfg.norm_adv``),
    ``values`` (current critic, with gradient), ``v_old``, ``targets`` and the per-sample
    ``entropy`` of the current policy. Returns (loss, {"approx_kl": mean k3, "clip_fraction"}).
    """
    if cfg.objective != "clip":
        raise ValueError(f"minibatch_loss is PPO-clip's loss; cfg.objective is {cfg.objective!r}")
    shapes = {k: tuple(v.shape) for k, v in dict(logp=logp, logp_old=logp_old, adv=adv,
              values=values, v_old=v_old, targets=targets, entropy=entropy).items()}
    if len(set(shapes.values())) != 1 or logp.ndim != 1:
        raise ValueError(f"all inputs must have the same 1-D shape [B], got {shapes}")
    a = normalize(adv) if cfg.norm_adv and len(adv) > 1 else adv
    ratio = ratio_from_logps(logp, logp_old)
    if cfg.clip_eps is None:
        pl = -(ratio * a).mean()
    else:
        pl = -clipped_objective(ratio, a, cfg.clip_eps).mean()
    vl = clipped_value_loss(values, v_old, targets, cfg.vf_clip)
    loss = ppo_loss(pl, vl, entropy.mean(), cfg.vf_coef, cfg.ent_coef)
    with torch.no_grad():
        eps = 0.2 if cfg.clip_eps is None else cfg.clip_eps
        stats = {"approx_kl": float(kl_k3(logp - logp_old).mean()),
                 "clip_fraction": float(((ratio - 1).abs() > eps).float().mean())}
    return loss, stats


def batch_report(agent: ActorCritic, batch: Batch, cfg: Config) -> dict[str, float]:
    """What :func:`update` reports about the updated agent on the whole batch: ``kl`` (exact
    KL(pi_old || pi)), ``approx_kl`` (k3), ``clip_fraction``, ``entropy``, ``value_loss``."""
    return _batch_stats(agent, batch.obs, batch.actions, batch.logits_old, batch.targets,
                        cfg.clip_eps)


def batch_kl(agent: ActorCritic, batch: Batch) -> float:
    """Mean exact KL(pi_old || pi) over the batch: what ``cfg.target_kl`` is compared with."""
    with torch.no_grad():
        return float(categorical_kl(batch.logits_old, agent.pi(batch.obs)).mean())


def _discrete_agent(envs: gym.vector.VectorEnv, cfg: Config, device: str
                    ) -> tuple[ActorCritic, torch.optim.Optimizer]:
    """The categorical actor-critic for ``envs`` and its Adam; a clear error for other spaces."""
    if not isinstance(envs.single_action_space, spaces.Discrete):
        envs.close()
        raise TypeError(f"PPO supports Discrete and Box action spaces, got "
                        f"{type(envs.single_action_space).__name__} ({envs.single_action_space})")
    obs_dim, n_actions = deeprl.check_env_for("PPO", envs)
    agent = ActorCritic(obs_dim, n_actions, cfg.hidden).to(device)
    fused = torch.device(device).type in ("cpu", "cuda")  # one kernel for all parameters
    opt = torch.optim.Adam(agent.parameters(), lr=cfg.lr, eps=1e-5, fused=fused)
    return agent, opt


def train(env_id: str = "CartPole-v1", seed: int = 0, *, device: str = "cpu",
          progress: bool = True, update_fn: Callable[..., dict[str, float]] | None = None,
          **overrides) -> deeprl.TrainResult:
    """Train PPO on ``env_id`` with :class:`Config` defaults updated by ``overrides``.

    Stops at ``total_steps`` env steps (summed over sub-envs), or ``post_solve_steps`` after
    the running mean of the last ``deeprl.SOLVE_WINDOW`` episodes first reaches the env's
    reward threshold (with ``stop_when_solved``). ``history`` has one entry per update: the
    statistics the update returns, plus ``explained_variance`` of the critic on the rollout
    (before the update), ``step``, ``running_mean``, ``beta`` and ``lr``. ``update_fn`` (the
    signature of :func:`update`; None: :func:`update`) lets a notebook train with its own.
    """
    cfg = make_config(**overrides)
    if update_fn is not None and not callable(update_fn):
        raise TypeError(f"update_fn must be callable, got {type(update_fn).__name__}")
    started = time.perf_counter()
    torch.manual_seed(seed)
    envs = deeprl.make_vec_env(env_id, cfg.num_envs, seed)
    if isinstance(envs.single_action_space, spaces.Box):  # continuous actions: Gaussian head
        if update_fn is not None:
            envs.close()
            raise TypeError("update_fn plugs into the discrete-action update; Box action spaces "
                            "train with ppo.update_gaussian")
        return _train_gaussian(env_id, seed, envs, cfg, started, device, progress)
    update_fn = update if update_fn is None else update_fn
    agent, opt = _discrete_agent(envs, cfg, device)
    generator = torch.Generator(device=device).manual_seed(seed)
    obs, _ = envs.reset(seed=seed)
    run = _Run(envs, obs, deeprl.StepMask(cfg.num_envs),
               deeprl.EpisodeTracker(cfg.num_envs, deeprl.env_spec(env_id).reward_threshold),
               started)
    history: dict[str, list[float]] = {}
    _update_loop(agent, opt, run, cfg, generator, device, collect_rollout, update_fn, history,
                 desc=f"PPO {env_id}", progress=progress)
    return _result(env_id, seed, run, agent, history)


def _update_loop(agent: nn.Module, opt: torch.optim.Optimizer, run: _Run, cfg: Config,
                 generator: torch.Generator, device: str, collect: Callable[..., Rollout],
                 update_fn: Callable[..., dict[str, float]], history: dict[str, list[float]],
                 desc: str, progress: bool) -> None:
    """PPO's outer loop, shared by both action types: collect, GAE, update, log, stop.

    Appends to ``history`` one entry per update: the update's statistics, the critic's
    ``explained_variance`` on the rollout (before the update), ``step``, ``running_mean``,
    ``beta`` and ``lr``. Closes the envs at the end.
    """
    beta = cfg.beta_init
    with tqdm(total=cfg.total_steps, disable=not progress, desc=desc) as bar:
        while run.steps < cfg.total_steps:
            if cfg.anneal_lr:
                horizon = cfg.anneal_steps or cfg.total_steps
                opt.param_groups[0]["lr"] = cfg.lr * max(0.0, 1 - run.steps / horizon)
            ro = collect(agent, run, cfg.rollout_steps, generator, device)
            adv, targets = advantages_and_targets(ro, cfg.gamma, cfg.lam)
            ev = explained_variance(ro.values[ro.valid], targets[ro.valid])
            stats = dict(update_fn(agent, opt, ro, adv, targets, cfg, generator, beta))
            stats.update(explained_variance=ev, step=run.steps,
                         running_mean=run.tracker.running_mean, beta=beta,
                         lr=opt.param_groups[0]["lr"])
            for key, val in stats.items():
                history.setdefault(key, []).append(float(val))
            if cfg.objective == "kl_penalty":
                beta = adaptive_kl_beta(beta, stats["kl"], cfg.kl_target)
            bar.update(cfg.num_envs * cfg.rollout_steps)
            bar.set_postfix(mean_return=f"{run.tracker.running_mean:.1f}")
            if (cfg.stop_when_solved and run.solved_at is not None
                    and run.steps >= run.solved_at + cfg.post_solve_steps):
                break
    run.envs.close()


def _result(env_id: str, seed: int, run: _Run, agent: nn.Module,
            history: dict[str, list[float]]) -> deeprl.TrainResult:
    """The :class:`deeprl.TrainResult` of a finished run."""
    return deeprl.TrainResult(
        algo="ppo", env_id=env_id, seed=seed, solved=run.solved_at is not None,
        steps_to_solve=run.solved_at, seconds_to_solve=run.solved_seconds,
        total_steps=run.steps, seconds=time.perf_counter() - run.started,
        act=agent.act_greedy, episode_returns=list(run.tracker.returns), history=history)


# ---- continuous actions (Box): a Gaussian head on the same losses, GAE and schedule ---------
#
# ``train`` sends Box-action envs here. The policy is N(mu(s), diag(sigma^2)) with a learned,
# state-independent log-std (rlcourse.continuous.GaussianPolicy). Samples are unbounded; only
# the copy sent to the env is clipped to the action bounds, and the stored log-probability is
# that of the unclipped sample, so the ratio pi/pi_old compares the same action. In the
# Rollout, ``logits`` holds the distribution's parameters: mean and log-std concatenated on
# the last axis ([T, N, 2d]).

class GaussianActorCritic(nn.Module):
    """A Gaussian policy head and a value MLP (two tanh hidden layers each) for Box actions."""

    def __init__(self, obs_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray,
                 hidden: int = 64):
        super().__init__()
        self.pi = continuous.GaussianPolicy(obs_dim, act_dim, hidden)
        self.v = deeprl.mlp([obs_dim, hidden, hidden, 1], out_gain=1.0)
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """obs [N, obs_dim] -> (mean and log-std concatenated [N, 2d], values [N])."""
        return torch.cat(self.pi(obs), dim=-1), self.v(obs).squeeze(-1)

    @torch.no_grad()
    def act_greedy(self, obs: Tensor) -> Tensor:
        """The mean action, clipped to the env's bounds: [N, obs_dim] -> [N, d]."""
        return torch.clamp(self.pi(obs)[0], self.low, self.high)


def _split(params: Tensor) -> tuple[Tensor, Tensor]:
    """(mean, log_std) from the concatenated Gaussian parameters [..., 2d]."""
    return params.chunk(2, dim=-1)


@torch.no_grad()
def collect_rollout_gaussian(agent: GaussianActorCritic, run: _Run, steps: int,
                             generator: torch.Generator, device: str = "cpu",
                             episode_ends: list[int] | None = None) -> Rollout:
    """:func:`collect_rollout` for a Gaussian policy: ``actions`` [T, N, d] are the unclipped
    samples and ``logp`` [T, N] their log-densities; the env receives them clipped.

    ``episode_ends``, if given, receives the env-step count at which each episode finished.
    """
    n = run.envs.num_envs
    obs_l, par_l, act_l, val_l = [], [], [], []
    rew, term, trunc, valid = (np.empty((steps, n), dtype=d)
                               for d in (np.float32, bool, bool, bool))
    for t in range(steps):
        obs = torch.as_tensor(run.obs, dtype=torch.float32, device=device)
        params, v = agent(obs)
        mean, log_std = _split(params)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        action = mean + log_std.exp() * noise
        obs_l.append(obs), par_l.append(params), act_l.append(action), val_l.append(v)
        sent = torch.clamp(action, agent.low, agent.high).cpu().numpy()
        run.obs, rew[t], term[t], trunc[t], _ = run.envs.step(sent)
        valid[t] = run.step_mask.step(term[t], trunc[t])
        n_done = len(run.tracker.returns)
        run.tracker.update(rew[t], term[t], trunc[t], valid[t])
        run.steps += n
        if episode_ends is not None:
            episode_ends += [run.steps] * (len(run.tracker.returns) - n_done)
        if run.solved_at is None and run.tracker.solved:
            run.solved_at, run.solved_seconds = run.steps, time.perf_counter() - run.started
    last_v = agent.v(torch.as_tensor(run.obs, dtype=torch.float32, device=device)).squeeze(-1)
    values, params, actions = torch.stack(val_l), torch.stack(par_l), torch.stack(act_l)
    as_t = lambda x: torch.as_tensor(x, device=device)
    term_t, valid_t = as_t(term), as_t(valid)
    return Rollout(obs=torch.stack(obs_l), actions=actions, logits=params,
                   logp=continuous.gaussian_log_prob(actions, *_split(params)),
                   values=values, next_values=torch.cat([values[1:], last_v[None]]),
                   rewards=as_t(rew), terminated=term_t, dones=term_t | as_t(trunc) | ~valid_t,
                   valid=valid_t)


def _gaussian_policy_loss(cfg: Config, params: Tensor, logp: Tensor, logp_old: Tensor,
                          params_old: Tensor, adv: Tensor, beta: float) -> Tensor:
    """:func:`_policy_loss` with the exact Gaussian KL(pi_old || pi) for PPO-penalty."""
    ratio = ratio_from_logps(logp, logp_old)
    if cfg.objective == "kl_penalty":
        kl = continuous.gaussian_kl(*_split(params_old), *_split(params))
        return kl_penalty_surrogate(logp, logp_old, adv, kl, beta)
    if cfg.clip_eps is None:
        return -(ratio * adv).mean()
    return -clipped_objective(ratio, adv, cfg.clip_eps).mean()


@torch.no_grad()
def _gaussian_batch_stats(agent: GaussianActorCritic, obs: Tensor, act: Tensor,
                          params_old: Tensor, targets: Tensor, clip_eps: float | None
                          ) -> dict[str, float]:
    """:func:`_batch_stats` for the Gaussian head (exact KL, entropy of the Gaussian)."""
    params, v = agent(obs)
    ratio = ratio_from_logps(continuous.gaussian_log_prob(act, *_split(params)),
                             continuous.gaussian_log_prob(act, *_split(params_old)))
    eps = 0.2 if clip_eps is None else clip_eps
    return {"kl": float(continuous.gaussian_kl(*_split(params_old), *_split(params)).mean()),
            "clip_fraction": float(((ratio - 1).abs() > eps).float().mean()),
            "entropy": float(continuous.gaussian_entropy(*_split(params)).mean()),
            "value_loss": float(0.5 * ((v - targets) ** 2).mean())}


def update_gaussian(agent: GaussianActorCritic, opt: torch.optim.Optimizer, ro: Rollout,
                    adv: Tensor, targets: Tensor, cfg: Config, generator: torch.Generator,
                    beta: float = 0.0) -> dict[str, float]:
    """:func:`update` for the Gaussian head: same schedule, losses and statistics."""
    keep = ro.valid.reshape(-1)
    flat = lambda x: x.reshape(-1, *x.shape[2:])[keep]
    obs, act, logp_old, params_old, v_old, adv, targets = map(
        flat, (ro.obs, ro.actions, ro.logp, ro.logits, ro.values, adv, targets))
    joint, epochs, critic_steps = cfg.joint_update, 0, 0
    params_list = list(agent.parameters() if joint else agent.pi.parameters())
    for _ in range(cfg.epochs):
        for mb in _minibatches(obs.shape[0], cfg.minibatches, generator, obs.device):
            params, v = agent(obs[mb]) if joint else (torch.cat(agent.pi(obs[mb]), -1), None)
            logp = continuous.gaussian_log_prob(act[mb], *_split(params))
            a = normalize(adv[mb]) if cfg.norm_adv and len(mb) > 1 else adv[mb]
            pl = _gaussian_policy_loss(cfg, params, logp, logp_old[mb], params_old[mb], a, beta)
            ent = continuous.gaussian_entropy(*_split(params)).mean()
            if joint:
                vl = clipped_value_loss(v, v_old[mb], targets[mb], cfg.vf_clip)
                loss = ppo_loss(pl, vl, ent, cfg.vf_coef, cfg.ent_coef)
                critic_steps += 1
            else:
                loss = pl - cfg.ent_coef * ent
            _step(opt, loss, params_list, cfg.max_grad_norm)
        epochs += 1
        if cfg.target_kl is not None:
            with torch.no_grad():
                new = torch.cat(agent.pi(obs), -1)
                kl = float(continuous.gaussian_kl(*_split(params_old), *_split(new)).mean())
            if kl > cfg.target_kl:
                break
    if not joint:
        critic_steps = fit_critic(agent, opt, obs, v_old, targets, cfg, generator)
    stats = _gaussian_batch_stats(agent, obs, act, params_old, targets, cfg.clip_eps)
    return {**stats, "epochs": float(epochs), "critic_steps": float(critic_steps)}


def _train_gaussian(env_id: str, seed: int, envs: gym.vector.VectorEnv, cfg: Config,
                    started: float, device: str, progress: bool) -> deeprl.TrainResult:
    """:func:`train`'s loop for Box actions; "solved" uses continuous.reward_target.

    ``history`` has one entry per update, plus ``episode_end_step`` per finished episode.
    """
    obs_dim, act_dim, low, high = continuous.check_box_env("PPO", envs)
    agent = GaussianActorCritic(obs_dim, act_dim, low, high, cfg.hidden).to(device)
    fused = torch.device(device).type in ("cpu", "cuda")
    opt = torch.optim.Adam(agent.parameters(), lr=cfg.lr, eps=1e-5, fused=fused)
    generator = torch.Generator(device=device).manual_seed(seed)
    obs, _ = envs.reset(seed=seed)
    run = _Run(envs, obs, deeprl.StepMask(cfg.num_envs),
               deeprl.EpisodeTracker(cfg.num_envs, continuous.reward_target(env_id)), started)
    history: dict[str, list[float]] = {"episode_end_step": []}
    collect = functools.partial(collect_rollout_gaussian, episode_ends=history["episode_end_step"])
    _update_loop(agent, opt, run, cfg, generator, device, collect, update_gaussian, history,
                 desc=f"PPO {env_id}", progress=progress)
    return _result(env_id, seed, run, agent, history)
