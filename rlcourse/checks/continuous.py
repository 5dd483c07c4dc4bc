"""Checks for notebook 17 (continuous control: Gaussian policies, tanh squashing, SAC)."""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from rlcourse import continuous, sac
from rlcourse.exercises import call_with, expect_close, expect_true, register

NB = "17_continuous_control"


def _gauss_inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    mean = torch.randn(4, 3, generator=gen)
    log_std = torch.tensor([-0.5, 0.0, 0.7])
    actions = mean + 1.3 * torch.randn(4, 3, generator=gen)
    return actions, mean, log_std


@register("continuous.gaussian_log_prob", notebook=NB,
          reference=continuous.gaussian_log_prob,
          hint="Per dimension: -0.5 ((a - mu) / sigma)^2 - log sigma - 0.5 log(2 pi), with "
               "sigma = exp(log_std); then sum over the last axis (independent dimensions).")
def _gaussian_log_prob(fn):
    a, mean, log_std = _gauss_inputs()
    expected = Normal(mean, log_std.exp()).log_prob(a).sum(-1)
    what = ("actions and mean [4, 3], a shared log_std [3] = [-0.5, 0, 0.7] (sigma = "
            "exp(log_std)); expected shape [4]")
    expect_close(call_with(fn, what, a, mean, log_std), expected, what, atol=1e-5)
    what = "log_std of full shape [4, 3] (all 0.3)"
    ls = torch.full((4, 3), 0.3)
    expect_close(call_with(fn, what, a, mean, ls), Normal(mean, ls.exp()).log_prob(a).sum(-1),
                 what, atol=1e-5)
    what = "one action a = [0] at mean [0], log_std [0] (log N(0; 0, 1) = -0.5 log(2 pi))"
    expect_close(call_with(fn, what, torch.zeros(1), torch.zeros(1), torch.zeros(1)),
                 -0.5 * math.log(2 * math.pi), what, atol=1e-6)


@register("continuous.gaussian_entropy", notebook=NB, reference=continuous.gaussian_entropy,
          hint="Each dimension contributes 0.5 + 0.5 log(2 pi) + log sigma; sum them, and "
               "return one entropy per row of mean (it does not depend on the mean's value).")
def _gaussian_entropy(fn):
    _, mean, log_std = _gauss_inputs(1)
    expected = Normal(mean, log_std.exp()).entropy().sum(-1)
    what = "mean [4, 3] (random), shared log_std [3] = [-0.5, 0, 0.7]; expected shape [4]"
    expect_close(call_with(fn, what, mean, log_std), expected, what, atol=1e-5)
    what = "mean [2, 1] = 0, log_std [1] = [log 2]"
    expect_close(call_with(fn, what, torch.zeros(2, 1), torch.tensor([math.log(2.0)])),
                 [0.5 + 0.5 * math.log(2 * math.pi) + math.log(2.0)] * 2, what, atol=1e-5)


@register("continuous.squashed_log_prob", notebook=NB, reference=continuous.squashed_log_prob,
          hint="log pi(tanh(u)) = log N(u; mu, sigma) - sum_i log(1 - tanh(u_i)^2); write "
               "log(1 - tanh(u)^2) as 2 (log 2 - u - softplus(-2u)) so it stays finite.")
def _squashed_log_prob(fn):
    gen = torch.Generator().manual_seed(2)
    mean, log_std = torch.randn(5, 2, generator=gen), 0.4 * torch.randn(5, 2, generator=gen)
    u = mean + log_std.exp() * torch.randn(5, 2, generator=gen)
    dist = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])
    what = ("pre-squash samples u [5, 2] of N(mean, exp(log_std)^2), compared with the density "
            "of a = tanh(u) (torch's TransformedDistribution); expected shape [5]")
    expect_close(call_with(fn, what, u, mean, log_std), dist.log_prob(torch.tanh(u)).sum(-1),
                 what, atol=1e-4, rtol=1e-5)
    big = torch.tensor([[12.0, -12.0]])  # float32: tanh(12) rounds to exactly 1
    mu, ls = torch.tensor([[11.0, -11.5]]), torch.tensor([[0.2, 0.0]])
    what = ("u = [12, -12] (float32, where tanh(u) rounds to +-1 and log(1 - tanh(u)^2) is "
            "-inf; the value must stay finite)")
    got = call_with(fn, what, big, mu, ls)
    expect_true(bool(torch.isfinite(torch.as_tensor(got)).all()),
                f"{what}: got {got}, not a finite number")
    expect_close(got, continuous.squashed_log_prob(big.double(), mu.double(), ls.double()),
                 what, atol=1e-3, rtol=1e-5)


@register("continuous.sac_target", notebook=NB, reference=sac.sac_target,
          hint="y = r + gamma (1 - terminated) (min(Q1', Q2') - alpha log pi(a'|s')): the "
               "smaller twin, the entropy bonus inside the discounted bootstrap, nothing after "
               "termination.")
def _sac_target(fn):
    r = torch.tensor([1.0, 0.0, 2.0, -1.0])
    q1, q2 = torch.tensor([5.0, 3.0, 7.0, 2.0]), torch.tensor([4.0, 6.0, 9.0, 2.5])
    logp = torch.tensor([-1.0, 0.5, -2.0, 0.0])
    term = torch.tensor([False, False, True, False])
    expected = [1 + 0.9 * (4 + 0.2), 0.9 * (3 - 0.1), 2.0, -1 + 0.9 * 2]
    what = ("r=[1,0,2,-1], Q1'=[5,3,7,2], Q2'=[4,6,9,2.5], log pi(a'|s')=[-1,0.5,-2,0], "
            "terminated=[F,F,T,F], gamma=0.9, alpha=0.2")
    expect_close(call_with(fn, what, r, q1, q2, logp, term, 0.9, 0.2), expected, what,
                 atol=1e-5)
    what = "the same batch with alpha=0 (TD3's clipped double-Q target)"
    expect_close(call_with(fn, what, r, q1, q2, logp, term, 0.9, 0.0),
                 [1 + 0.9 * 4, 0.9 * 3, 2.0, -1 + 0.9 * 2], what, atol=1e-5)


def _twin_q(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two smooth stand-in critics of squashed actions [B, d] -> ([B], [B])."""
    return -((a - 0.4) ** 2).sum(-1), 0.3 - ((a + 0.1) ** 2).sum(-1)


@register("continuous.actor_loss", notebook=NB, reference=sac.actor_loss,
          hint="Build u = mean + exp(log_std) * eps with gradients (the reparameterisation), "
               "a = tanh(u), log pi from the squashed density, then mean(alpha log pi - "
               "min(Q1, Q2)) with both critics evaluated at a.")
def _actor_loss(fn):
    gen = torch.Generator().manual_seed(3)
    mean0, log_std0 = torch.randn(6, 2, generator=gen), 0.3 * torch.randn(6, 2, generator=gen)
    eps = torch.randn(6, 2, generator=gen)
    what = ("mean and log_std [6, 2], noise eps [6, 2], alpha=0.2, two quadratic critics "
            "q_fn(a) = (-|a - 0.4|^2, 0.3 - |a + 0.1|^2)")
    grads = []
    for f in (sac.actor_loss, fn):
        mean, log_std = mean0.clone().requires_grad_(True), log_std0.clone().requires_grad_(True)
        loss = call_with(f, what, mean, log_std, eps, _twin_q, 0.2)
        expect_true(isinstance(loss, torch.Tensor) and loss.numel() == 1,
                    f"{what}: expected a scalar tensor, got {loss!r}")
        expect_close(loss, sac.actor_loss(mean0, log_std0, eps, _twin_q, 0.2),
                     f"{what}: the loss value", atol=1e-5)
        expect_true(loss.requires_grad, "your loss carries no gradient: keep the graph from "
                    "mean and log_std to the loss (no torch.no_grad, no .detach())")
        loss.backward()
        grads.append((mean.grad, log_std.grad))
    for i, name in enumerate(("mean", "log_std")):
        ref, got = grads[0][i], grads[1][i]
        expect_true(got is not None, f"no gradient reached {name}")
        expect_close(got, ref, f"the gradient of the loss with respect to {name} (the value "
                     "matched; a wrong gradient usually means the action was detached, so the "
                     "critics' slope does not reach the policy)", atol=1e-5)


@register("continuous.temperature_loss", notebook=NB, reference=sac.temperature_loss,
          hint="-mean(log_alpha * (log pi + target_entropy)), with log pi detached so this "
               "loss trains only the temperature.")
def _temperature_loss(fn):
    log_alpha = torch.tensor(math.log(0.5), requires_grad=True)
    logp = torch.tensor([0.2, -1.0, 0.5], requires_grad=True)
    what = "log_alpha = log 0.5, log pi = [0.2, -1, 0.5], target_entropy = -1"
    loss = call_with(fn, what, log_alpha, logp, -1.0)
    mean_plus_target = (0.2 - 1.0 + 0.5) / 3 - 1.0
    expect_close(loss, -math.log(0.5) * mean_plus_target, what, atol=1e-6)
    expect_true(isinstance(loss, torch.Tensor) and loss.requires_grad,
                f"{what}: the loss must be a tensor with a gradient path to log_alpha")
    loss.backward()
    expect_close(log_alpha.grad, -mean_plus_target,
                 f"{what}: d loss / d log_alpha", atol=1e-6)
    leaked = logp.grad is not None and bool(logp.grad.abs().max() > 0)
    expect_true(not leaked, f"{what}: the loss sent a gradient into log pi; detach it so the "
                "temperature loss does not train the policy")
