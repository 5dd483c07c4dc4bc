"""SAC's formulas against brute force, autograd and finite differences; a tiny real run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rlcourse import continuous, sac, wider

D = torch.float64


def _batch(b=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    r = torch.randn(b, generator=gen, dtype=D)
    q1, q2 = torch.randn(b, generator=gen, dtype=D), torch.randn(b, generator=gen, dtype=D)
    logp = torch.randn(b, generator=gen, dtype=D)
    term = torch.tensor([False, True] * (b // 2))
    return r, q1, q2, logp, term


def test_sac_target_brute_force():
    r, q1, q2, logp, term = _batch()
    got = sac.sac_target(r, q1, q2, logp, term, 0.9, 0.3)
    for i in range(len(r)):
        soft = min(float(q1[i]), float(q2[i])) - 0.3 * float(logp[i])
        expected = float(r[i]) + (0.0 if term[i] else 0.9 * soft)
        assert float(got[i]) == pytest.approx(expected)
    # alpha = 0 is TD3's clipped double-Q target
    torch.testing.assert_close(sac.sac_target(r, q1, q2, logp, term, 0.9, 0.0),
                               wider.td3_target(r, q1, q2, term, 0.9))


def test_sac_target_bad_input():
    r, q1, q2, logp, term = _batch()
    with pytest.raises(ValueError, match="gamma"):
        sac.sac_target(r, q1, q2, logp, term, 1.5, 0.2)
    with pytest.raises(ValueError, match="alpha"):
        sac.sac_target(r, q1, q2, logp, term, 0.9, -0.1)
    with pytest.raises(ValueError, match="next_logp"):
        sac.sac_target(r, q1, q2, logp[:3], term, 0.9, 0.1)


def test_critic_loss_gradient_and_constant_targets():
    r, q1, q2, _, _ = _batch()
    q1, q2, y = q1.requires_grad_(True), q2.requires_grad_(True), r.clone().requires_grad_(True)
    sac.critic_loss(q1, q2, y).backward()
    b = len(r)
    torch.testing.assert_close(q1.grad, (q1 - r).detach() / b)
    torch.testing.assert_close(q2.grad, (q2 - r).detach() / b)
    assert y.grad is None  # semi-gradient: no gradient into the target


def _q_fn(a):
    """Two smooth stand-in critics of a squashed action [B, d] -> ([B], [B])."""
    return -((a - 0.3) ** 2).sum(-1), -((a + 0.2) ** 2).sum(-1) + 0.05


def _actor_brute(mean, log_std, eps, alpha):
    total = 0.0
    for m, s, e in zip(mean, log_std, eps):
        u = m + s.exp() * e
        a = torch.tanh(u)
        logp = float(torch.distributions.Normal(m, s.exp()).log_prob(u).sum()
                     - torch.log(1 - a ** 2).sum())
        q1, q2 = _q_fn(a[None])
        total += alpha * logp - min(float(q1), float(q2))
    return total / len(mean)


def test_actor_loss_value_and_gradient():
    gen = torch.Generator().manual_seed(1)
    mean = torch.randn(5, 2, generator=gen, dtype=D)
    log_std = 0.3 * torch.randn(5, 2, generator=gen, dtype=D)
    eps = torch.randn(5, 2, generator=gen, dtype=D)
    loss = sac.actor_loss(mean, log_std, eps, _q_fn, 0.2)
    assert float(loss) == pytest.approx(_actor_brute(mean, log_std, eps, 0.2))
    m = mean.clone().requires_grad_(True)
    sac.actor_loss(m, log_std, eps, _q_fn, 0.2).backward()
    h = 1e-6
    for idx in [(0, 0), (2, 1), (4, 0)]:  # central finite differences through the sample
        plus, minus = mean.clone(), mean.clone()
        plus[idx] += h
        minus[idx] -= h
        fd = (_actor_brute(plus, log_std, eps, 0.2) - _actor_brute(minus, log_std, eps, 0.2))
        assert float(m.grad[idx]) == pytest.approx(fd / (2 * h), rel=1e-5, abs=1e-8)


def test_temperature_loss_gradient():
    log_alpha = torch.tensor(math.log(0.5), dtype=D, requires_grad=True)
    logp = torch.tensor([0.2, -1.0, 0.5], dtype=D, requires_grad=True)
    sac.temperature_loss(log_alpha, logp, -1.0).backward()
    assert float(log_alpha.grad) == pytest.approx(-float((logp.detach() - 1.0).mean()))
    assert logp.grad is None  # the policy is not trained by this loss
    # the entropy -mean(logp) = 0.1 is above the target -1: the gradient is positive, so a
    # descent step lowers alpha
    assert float(log_alpha.grad) > 0


def test_polyak_update():
    torch.manual_seed(0)
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.clone() for p in target.parameters()]
    sac.polyak_update(target, online, 0.1)
    for t, b, o in zip(target.parameters(), before, online.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    sac.polyak_update(target, online, 1.0)
    for t, o in zip(target.parameters(), online.parameters()):
        torch.testing.assert_close(t, o)
    for tau in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="tau"):
            sac.polyak_update(target, online, tau)


def test_replay_buffer_float_actions():
    buf = sac.ReplayBuffer(10, obs_dim=3, act_dim=2)
    obs = np.ones((2, 3), np.float32)
    buf.add(obs, np.array([[0.5, -0.5], [0.1, 0.2]]), np.array([1.0, 2.0]), obs,
            np.array([False, False]), np.array([True, False]), valid=np.array([True, False]))
    assert len(buf) == 1
    batch = buf.sample(1, np.random.default_rng(0))  # DQN's buffer refuses more than it holds
    assert batch["actions"].shape == (1, 2) and np.allclose(batch["actions"], [0.5, -0.5])
    assert batch["actions"].dtype == torch.float32  # float actions are not cast to DQN's int64
    assert batch["truncated"].all() and not batch["terminated"].any()


def test_config_errors():
    with pytest.raises(ValueError, match="gamma"):
        sac.make_config(gamma=1.5)
    with pytest.raises(ValueError, match="gamma"):
        sac.make_config(gamma=-0.1)
    with pytest.raises(ValueError, match="tau"):
        sac.make_config(tau=0.0)
    with pytest.raises(ValueError, match="tau"):
        sac.make_config(tau=1.2)
    with pytest.raises(TypeError, match="unknown SAC"):
        sac.make_config(tua=0.1)
    assert sac.make_config(hidden=[32, 32]).hidden == (32, 32)


def test_train_rejects_discrete_actions():
    with pytest.raises(TypeError, match="Box"):
        sac.train("CartPole-v1", 0, progress=False, total_steps=10)


def test_tiny_run_bootstraps_through_truncation():
    """Pendulum only truncates: the targets must never see terminated = True."""
    seen = []

    def spy_target(r, q1, q2, logp, term, gamma, alpha):
        seen.append(bool(term.any()))
        return sac.sac_target(r, q1, q2, logp, term, gamma, alpha)

    r = sac.train("Pendulum-v1", 0, progress=False, total_steps=410, learning_starts=370,
                  batch_size=32, hidden=(16, 16), log_every=200, target_fn=spy_target)
    assert len(seen) == 41 and not any(seen)  # one update per step from step 370 on
    assert len(r.episode_returns) == 2  # 200 steps, one autoreset step, 200 steps
    assert r.history["episode_end_step"] == [200, 401]
    assert all(math.isfinite(x) for x in r.history["critic_loss"][1:] + r.history["alpha"])
    a = r.act(torch.zeros(4, 3))
    assert a.shape == (4, 1) and a.abs().max() <= 2.0


def test_actor_step_leaves_critics_untouched():
    """One update: only the critic optimiser moves the critics (no gradients leak)."""
    r = sac.train("Pendulum-v1", 1, progress=False, total_steps=40, learning_starts=39,
                  batch_size=8, hidden=(8, 8), log_every=20)
    assert r.total_steps == 40
    actor = continuous.SquashedGaussianActor(3, 1, (8, 8))
    critic = sac.TwinQ(3, 1, (8, 8))
    obs = torch.randn(8, 3)
    mean, log_std = actor(obs)
    critic.requires_grad_(False)
    sac.actor_loss(mean, log_std, torch.randn(8, 1), lambda a: critic(obs, a), 0.1).backward()
    assert all(p.grad is None for p in critic.parameters())
    assert all(p.grad is not None for p in actor.parameters())
