"""PPO's losses: the W-01 worked example, autograd identities and KL estimators."""

from __future__ import annotations

import math

import pytest
import torch

from rlcourse.ppo import clipped_surrogate, clipped_value_loss, kl_k1, kl_k2, kl_k3

OLD = torch.tensor([0.20, 0.50, 0.30])
NEW = torch.tensor([0.25, 0.55, 0.20])
ADV = torch.tensor([1.3, 0.0, -0.5])


def test_w01_clipped_terms_and_loss():
    logp = NEW.log()
    loss, stats = clipped_surrogate(logp, OLD.log(), ADV, 0.2)
    ratio = NEW / OLD
    per_step = torch.minimum(ratio * ADV, ratio.clamp(0.8, 1.2) * ADV)
    torch.testing.assert_close(per_step, torch.tensor([1.56, 0.0, -0.4]))
    assert float(loss) == pytest.approx(-1.16 / 3, abs=1e-6)  # mean reduction: -0.38667
    assert stats["clip_fraction"] == pytest.approx(2 / 3)


def test_w01_every_step_has_zero_gradient():
    logits = torch.stack([NEW, 1 - NEW], dim=1).log().requires_grad_(True)
    logp = torch.log_softmax(logits, dim=1)[:, 0]
    loss, _ = clipped_surrogate(logp, OLD.log(), ADV, 0.2)
    loss.backward()
    assert torch.count_nonzero(logits.grad) == 0


def test_surrogate_gradient_at_old_policy_equals_policy_gradient():
    torch.manual_seed(0)
    logits = torch.randn(6, 4, requires_grad=True)
    actions = torch.randint(0, 4, (6,))
    adv = torch.randn(6)
    logp = torch.log_softmax(logits, 1).gather(1, actions[:, None]).squeeze(1)
    loss, _ = clipped_surrogate(logp, logp.detach(), adv, 0.2)
    (g_ppo,) = torch.autograd.grad(loss, logits, retain_graph=True)
    (g_pg,) = torch.autograd.grad(-(logp * adv).mean(), logits)
    torch.testing.assert_close(g_ppo, g_pg)


def test_mask_excludes_padding():
    logp = torch.tensor([[0.0, -1.0], [-0.5, 0.0]])
    adv = torch.tensor([[1.0, 50.0], [2.0, -7.0]])
    mask = torch.tensor([[1, 0], [1, 0]])
    loss, _ = clipped_surrogate(logp, logp, adv, mask=mask)
    assert float(loss) == pytest.approx(-1.5)


def test_value_loss_plain_and_clipped():
    v, old, target = torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([3.0])
    assert float(clipped_value_loss(v, old, target)) == pytest.approx(0.5)
    # clipped prediction is 0.2, error 2.8^2; the pessimistic max picks it
    assert float(clipped_value_loss(v, old, target, clip_eps=0.2)) == pytest.approx(0.5 * 2.8**2)


def test_kl_estimators_against_the_exact_kl():
    q = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    p = torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=torch.float64)
    exact = float((q * (q / p).log()).sum())  # KL(q || p)
    log_ratio = (p / q).log()
    assert float((q * kl_k1(log_ratio)).sum()) == pytest.approx(exact, rel=1e-12)
    assert float((q * kl_k3(log_ratio)).sum()) == pytest.approx(exact, rel=1e-12)
    assert float((q * kl_k2(log_ratio)).sum()) != pytest.approx(exact, rel=1e-3)  # biased
    assert bool((kl_k3(log_ratio) >= 0).all()) and bool((kl_k1(log_ratio) < 0).any())
    # T-08: k3 at ratio pi_ref/pi_theta = 0.5, 1, 2
    vals = kl_k3(torch.tensor([0.5, 1.0, 2.0]).log())
    torch.testing.assert_close(vals, torch.tensor([0.193147, 0.0, 0.306853]), atol=1e-6, rtol=0)


def test_w03_kl_of_a_policy_flip():
    a, b = torch.tensor([0.9, 0.1]), torch.tensor([0.1, 0.9])
    assert float((a * (a / b).log()).sum()) == pytest.approx(0.8 * math.log(9), rel=1e-6)


def test_bad_inputs():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="clip_eps"):
        clipped_surrogate(x, x, x, clip_eps=0.0)
    with pytest.raises(ValueError, match="same shape"):
        clipped_surrogate(x, x, torch.zeros(4))
