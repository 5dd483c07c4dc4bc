"""Checks for notebook 07 (trust regions and PPO)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from rlcourse import ppo
from rlcourse.exercises import expect_close, expect_true, register

NB = "07_ppo"


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


@register("ppo.categorical_kl", notebook=NB, reference=ppo.categorical_kl,
          hint="Logits are unnormalised: turn them into log-probabilities first. KL(p || q) is "
               "the expectation under p (the first argument) of log p - log q, summed over the "
               "actions on the last axis.")
def _(fn: Callable) -> None:
    flip = fn(_t([0.9, 0.1]).log(), _t([0.1, 0.9]).log())
    expect_close(flip, 0.8 * math.log(9), "KL([0.9, 0.1] || [0.1, 0.9]) (W-03)", atol=1e-6)
    p, q = _t([0.5, 0.3, 0.2]), _t([0.2, 0.2, 0.6])
    exact = float((p * (p / q).log()).sum())
    expect_close(fn(p.log(), q.log()), exact,
                 "KL(p || q) with p = [0.5, 0.3, 0.2], q = [0.2, 0.2, 0.6] (the direction "
                 "matters: KL(q || p) is 0.3600)", atol=1e-6)
    # logits are unnormalised: adding a constant per row must not change anything
    logits_p = torch.stack([p.log() + 3.0, _t([1.0, 1.0, 1.0])])
    logits_q = torch.stack([q.log() - 2.0, _t([0.0, 0.0, 0.0])])
    expect_close(fn(logits_p, logits_q), [exact, 0.0],
                 "a batch [2, 3] of unnormalised logits (row 0: p, q shifted by +3 / -2; "
                 "row 1: two uniform policies)", atol=1e-6)


@register("ppo.kl_k3", notebook=NB, reference=ppo.kl_k3,
          hint="The argument is log r, not r. k3 is the gap between the line r - 1 (the "
               "tangent of log r at r = 1) and log r itself: never negative, and 0 only at "
               "r = 1.")
def _(fn: Callable) -> None:
    log_r = _t([0.5, 1.0, 2.0]).log()
    expect_close(fn(log_r), [0.5 - 1 - math.log(0.5), 0.0, 1 - math.log(2.0)],
                 "k3 at r = [0.5, 1, 2] (T-08)", atol=1e-6)
    big = _t([-3.0, 2.5])
    expect_close(fn(big), big.exp() - 1 - big, "k3 at log r = [-3, 2.5]", atol=1e-6)
    q = _t([0.1, 0.2, 0.3, 0.4])
    p = _t([0.25, 0.25, 0.25, 0.25])
    estimate = float((q * fn((p / q).log())).sum())
    expect_close(estimate, float((q * (q / p).log()).sum()),
                 "E_{x~q}[k3] over q = [0.1, 0.2, 0.3, 0.4], p uniform, should equal "
                 "KL(q || p) exactly (k3 is unbiased)", atol=1e-6)


@register("ppo.clipped_objective", notebook=NB, reference=ppo.clipped_objective,
          hint="Compare the plain surrogate r * A with the one whose ratio is held inside "
               "[1 - eps, 1 + eps], and keep the more pessimistic of the two. It is the ratio "
               "that gets clipped, not the advantage.")
def _(fn: Callable) -> None:
    ratio = _t([0.5, 1.0, 1.5, 0.5, 1.0, 1.5])
    adv = _t([2.0, 2.0, 2.0, -2.0, -2.0, -2.0])
    expect_close(fn(ratio, adv, 0.2), [1.0, 2.0, 2.4, -1.6, -2.0, -3.0],
                 "the six cases: r = [0.5, 1, 1.5] with A = +2, then with A = -2 (eps = 0.2)",
                 atol=1e-6)
    expect_close(fn(_t([1.25, 1.1, 0.6]), _t([1.3, 0.0, -0.5]), 0.2), [1.56, 0.0, -0.4],
                 "the W-01 steps: r = [1.25, 1.1, 0.6], A = [1.3, 0, -0.5], eps = 0.2",
                 atol=1e-6)
    expect_close(fn(_t([1.05, 0.8]), _t([1.0, 3.0]), 0.1), [1.05, 2.4],
                 "eps = 0.1: r = [1.05, 0.8], A = [1, 3]", atol=1e-6)
    r = _t([1.5, 0.5]).requires_grad_(True)
    fn(r, _t([1.0, -1.0]), 0.2).sum().backward()
    expect_true(r.grad is not None and torch.count_nonzero(r.grad) == 0,
                "A > 0 with r = 1.5 and A < 0 with r = 0.5 must have zero gradient with "
                f"respect to r (the clipped branch is active); got {r.grad}")


@register("ppo.adaptive_kl_beta", notebook=NB, reference=ppo.adaptive_kl_beta,
          hint="Too large a KL means the penalty was too weak, so make it stiffer; too small a "
               "KL means it can be relaxed. Change beta by `factor` only when the KL leaves the "
               "band [target / tolerance, tolerance * target]; on the band's edges keep it.")
def _(fn: Callable) -> None:
    cases = [(1.0, 0.05, 0.01, 2.0, "KL five times the target"),
             (1.0, 0.001, 0.01, 0.5, "KL a tenth of the target"),
             (1.0, 0.012, 0.01, 1.0, "KL 1.2 x the target (inside the band)"),
             (0.4, 0.008, 0.01, 0.4, "KL 0.8 x the target (inside the band)"),
             (0.25, 0.016, 0.01, 0.5, "KL 1.6 x the target, beta 0.25"),
             (3.0, 0.006, 0.01, 1.5, "KL 0.6 x the target, beta 3"),
             # the band's edges belong to the band (target 0.375: the edges 0.25 and 0.5625
             # are exact in binary, so kl * 1.5 and target / 1.5 compare without rounding)
             (1.0, 0.5625, 0.375, 1.0, "KL exactly 1.5 x the target (the upper edge)"),
             (1.0, 0.25, 0.375, 1.0, "KL exactly the target / 1.5 (the lower edge)"),
             (1.0, 0.5626, 0.375, 2.0, "KL just above 1.5 x the target"),
             (1.0, 0.2499, 0.375, 0.5, "KL just below the target / 1.5")]
    for beta, kl, target, expected, what in cases:
        expect_close(fn(beta, kl, target), expected,
                     f"{what}: beta={beta}, kl={kl}, target={target}", atol=1e-9)
    for kl, expected in ((0.025, 3.0), (0.018, 1.0), (0.004, 1 / 3)):
        expect_close(fn(1.0, kl, 0.01, factor=3.0, tolerance=2.0), expected,
                     f"factor=3, tolerance=2 (the band is [0.005, 0.02]): beta=1, kl={kl}, "
                     "target=0.01", atol=1e-9)


@register("ppo.ppo_loss", notebook=NB, reference=ppo.ppo_loss,
          hint="Start from what PPO maximises: the clipped surrogate, minus a weighted value "
               "error, plus a weighted entropy bonus. The optimiser minimises, so flip the sign "
               "of that objective, and note that policy_loss is already the surrogate's "
               "negative.")
def _(fn: Callable) -> None:
    expect_close(fn(_t(-0.3), _t(2.0), _t(0.6), 0.5, 0.01), -0.3 + 1.0 - 0.006,
                 "policy_loss=-0.3, value_loss=2, entropy=0.6, vf_coef=0.5, ent_coef=0.01",
                 atol=1e-9)
    expect_close(fn(_t(0.2), _t(0.1), _t(1.2), 1.0, 0.1), 0.2 + 0.1 - 0.12,
                 "policy_loss=0.2, value_loss=0.1, entropy=1.2, vf_coef=1, ent_coef=0.1",
                 atol=1e-9)
    ent = _t(0.5).requires_grad_(True)
    fn(_t(0.0), _t(0.0), ent, 0.5, 0.01).backward()
    slope = "no gradient" if ent.grad is None else f"{float(ent.grad):.4g}"
    expect_true(ent.grad is not None and float(ent.grad) < 0,
                "a higher entropy must lower the loss (the entropy is a bonus); "
                f"d loss / d entropy = {slope}")
