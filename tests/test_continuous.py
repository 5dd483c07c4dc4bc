"""Gaussian and tanh-squashed policies (notebook 17) and PPO's Box-action path."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from rlcourse import continuous, deeprl, ppo

D = torch.float64


def _params(shape=(5, 3), seed=0):
    gen = torch.Generator().manual_seed(seed)
    mean = torch.randn(*shape, generator=gen, dtype=torch.float64)
    log_std = 0.5 * torch.randn(shape[-1], generator=gen, dtype=torch.float64)
    actions = mean + torch.randn(*shape, generator=gen, dtype=torch.float64)
    return actions, mean, log_std


def test_gaussian_log_prob_matches_torch_normal():
    a, mean, log_std = _params()
    expected = Normal(mean, log_std.exp()).log_prob(a).sum(-1)
    got = continuous.gaussian_log_prob(a, mean, log_std)
    assert got.shape == (5,)
    torch.testing.assert_close(got, expected)


def test_gaussian_density_is_the_derivative_of_the_cdf():
    """1-D: exp(log_prob) equals (Phi(a + h) - Phi(a - h)) / 2h, the CDF's finite difference."""
    mean, log_std = torch.tensor(0.3, dtype=torch.float64), torch.tensor(-0.4, dtype=torch.float64)
    h = 1e-5
    for a in (-1.0, 0.2, 0.9):
        cdf = Normal(mean, log_std.exp()).cdf
        fd = (cdf(torch.tensor(a + h, dtype=torch.float64))
              - cdf(torch.tensor(a - h, dtype=torch.float64))) / (2 * h)
        got = continuous.gaussian_log_prob(torch.tensor([a], dtype=torch.float64),
                                           mean[None], log_std[None]).exp()
        assert float(got) == pytest.approx(float(fd), rel=1e-6)


def test_gaussian_log_prob_gradients_match_the_formula():
    """d/dmu log N = (a - mu) / sigma^2 and d/dlog_sigma log N = z^2 - 1, per dimension."""
    a, mean, log_std = _params()
    mean.requires_grad_(True)
    log_std.requires_grad_(True)
    continuous.gaussian_log_prob(a, mean, log_std).sum().backward()
    var = (2 * log_std).exp()
    torch.testing.assert_close(mean.grad, (a - mean.detach()) / var)
    z2 = (a - mean.detach()) ** 2 / var
    torch.testing.assert_close(log_std.grad, (z2 - 1).sum(0))


def test_gaussian_entropy_matches_torch_and_numerical_integral():
    _, mean, log_std = _params()
    got = continuous.gaussian_entropy(mean, log_std)
    assert got.shape == (5,)
    torch.testing.assert_close(got, Normal(mean, log_std.exp()).entropy().sum(-1))
    # brute force in 1-D: -integral p log p on a fine grid
    x = torch.linspace(-12, 12, 200_001, dtype=torch.float64)[:, None]
    lp = continuous.gaussian_log_prob(x, torch.zeros(1, dtype=torch.float64),
                                      torch.tensor([0.7], dtype=torch.float64))
    numeric = -(lp.exp() * lp).sum() * (x[1, 0] - x[0, 0])
    h = continuous.gaussian_entropy(torch.zeros(1, 1, dtype=torch.float64),
                                    torch.tensor([0.7], dtype=torch.float64))
    assert float(h) == pytest.approx(float(numeric), rel=1e-7)


def test_gaussian_kl_matches_torch():
    _, m1, s1 = _params(seed=1)
    _, m2, s2 = _params(seed=2)
    expected = torch.distributions.kl_divergence(Normal(m1, s1.exp()), Normal(m2, s2.exp()))
    torch.testing.assert_close(continuous.gaussian_kl(m1, s1.expand_as(m1), m2,
                                                      s2.expand_as(m2)), expected.sum(-1))


def test_tanh_log_det_is_stable_and_matches_the_derivative():
    u = torch.linspace(-5, 5, 41, dtype=torch.float64)[:, None]
    naive = torch.log(1 - torch.tanh(u) ** 2).sum(-1)
    torch.testing.assert_close(continuous.tanh_log_det(u), naive)
    v = u.clone().requires_grad_(True)
    torch.tanh(v).sum().backward()  # autograd's d tanh / du
    torch.testing.assert_close(continuous.tanh_log_det(u), v.grad.log().sum(-1))
    big = torch.tensor([[20.0], [-20.0]])  # float32: 1 - tanh(20)^2 rounds to 0
    assert torch.isinf(torch.log(1 - torch.tanh(big) ** 2)).all()
    got = continuous.tanh_log_det(big)
    assert torch.isfinite(got).all()
    assert float(got[0]) == pytest.approx(2 * (math.log(2) - 20), rel=1e-6)


def test_squashed_log_prob_matches_transformed_distribution_and_change_of_variables():
    _, mean, log_std = _params(shape=(4, 2), seed=3)
    gen = torch.Generator().manual_seed(4)
    u = mean + log_std.exp() * torch.randn(mean.shape, generator=gen, dtype=torch.float64)
    dist = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])
    torch.testing.assert_close(continuous.squashed_log_prob(u, mean, log_std),
                               dist.log_prob(torch.tanh(u)).sum(-1))
    # 1-D by finite differences of the squashed CDF: P(tanh(U) <= a) = Phi(atanh(a))
    m, s, h = torch.tensor([0.4], dtype=D), torch.tensor([0.3], dtype=D), 1e-6
    for a in (-0.8, 0.1, 0.95):
        cdf = lambda x: Normal(m, s.exp()).cdf(torch.atanh(torch.tensor([x], dtype=D)))
        density = float((cdf(a + h) - cdf(a - h)) / (2 * h))
        got = continuous.squashed_log_prob(torch.atanh(torch.tensor([[a]], dtype=torch.float64)),
                                           m, s).exp()
        assert float(got) == pytest.approx(density, rel=1e-5)


def test_squashed_density_integrates_to_one():
    a = torch.linspace(-1 + 1e-9, 1 - 1e-9, 400_001, dtype=torch.float64)[:, None]
    lp = continuous.squashed_log_prob(torch.atanh(a), torch.tensor([0.5], dtype=torch.float64),
                                      torch.tensor([-0.2], dtype=torch.float64))
    assert float(lp.exp().sum() * (a[1, 0] - a[0, 0])) == pytest.approx(1.0, abs=1e-4)


def test_scale_and_unscale_actions():
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 10.0])
    sq = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.5]])
    scaled = continuous.scale_action(sq, low, high)
    torch.testing.assert_close(scaled, torch.tensor([[-2.0, 0.0], [2.0, 10.0], [0.0, 7.5]]))
    torch.testing.assert_close(continuous.unscale_action(scaled, low, high), sq)


def test_box_action_space_errors():
    assert continuous.box_action_space(spaces.Box(-2, 2, (1,)), "SAC")[0] == 1
    with pytest.raises(TypeError, match="Box"):
        continuous.box_action_space(spaces.Discrete(3), "SAC")
    with pytest.raises(TypeError, match="Box"):
        continuous.box_action_space(spaces.MultiDiscrete([2, 2]), "PPO")
    with pytest.raises(ValueError, match="finite"):
        continuous.box_action_space(spaces.Box(-np.inf, np.inf, (2,)), "SAC")
    with pytest.raises(ValueError, match="flat"):
        continuous.box_action_space(spaces.Box(-1, 1, (2, 2)), "SAC")


def test_reward_target():
    assert continuous.reward_target("CartPole-v1") == 475.0
    assert continuous.reward_target("Pendulum-v1") == -200.0
    with pytest.raises(ValueError, match="no reward_threshold"):
        continuous.reward_target("Blackjack-v1")


def test_policy_heads():
    pol = continuous.GaussianPolicy(3, 2)
    mean, log_std = pol(torch.randn(4, 3))
    assert mean.shape == log_std.shape == (4, 2)
    assert torch.equal(log_std[0], log_std[3])  # state-independent
    actor = continuous.SquashedGaussianActor(3, 2, (16, 16))
    obs = torch.randn(64, 3)
    gen = torch.Generator().manual_seed(0)
    a, logp = actor.sample(obs, gen)
    assert a.shape == (64, 2) and logp.shape == (64,) and a.abs().max() < 1
    logp.sum().backward()  # the reparameterised sample is differentiable
    assert all(p.grad is not None for p in actor.parameters())
    mean, log_std = actor(obs)
    u = mean + log_std.exp() * torch.randn(mean.shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(actor.sample(obs, torch.Generator().manual_seed(0))[1],
                               continuous.squashed_log_prob(u, mean, log_std))


# ---- PPO on Box actions ------------------------------------------------------------------------

def test_ppo_box_tiny_run():
    r = ppo.train("Pendulum-v1", 0, progress=False, num_envs=2, rollout_steps=100,
                  total_steps=800, epochs=2, minibatches=2)
    assert r.total_steps == 800 and len(r.episode_returns) == 2  # 200 steps + autoreset each
    assert r.history["episode_end_step"] == [400, 400]
    assert all(math.isfinite(x) for x in r.history["kl"] + r.history["entropy"])
    a = r.act(torch.zeros(3, 3))
    assert a.shape == (3, 1) and a.abs().max() <= 2.0
    returns = deeprl.evaluate("Pendulum-v1", r.act, episodes=2, seed=1)
    assert returns.shape == (2,) and np.all(returns < 0)


def test_ppo_box_stores_unclipped_samples_and_their_log_probs():
    envs = deeprl.make_vec_env("Pendulum-v1", 2, 0)
    _, act_dim, low, high = continuous.check_box_env("PPO", envs)
    agent = ppo.GaussianActorCritic(3, act_dim, low, high, 16)
    with torch.no_grad():
        agent.pi.log_std.fill_(1.5)  # sigma ~ 4.5, far wider than the bounds [-2, 2]
    obs, _ = envs.reset(seed=0)
    run = ppo._Run(envs, obs, deeprl.StepMask(2), deeprl.EpisodeTracker(2), 0.0)
    ro = ppo.collect_rollout_gaussian(agent, run, 20, torch.Generator().manual_seed(0))
    assert ro.actions.shape == (20, 2, 1) and ro.actions.abs().max() > 2.0
    mean, log_std = ro.logits.chunk(2, -1)
    torch.testing.assert_close(ro.logp, continuous.gaussian_log_prob(ro.actions, mean, log_std))
    envs.close()


class _MultiBinaryEnv(gym.Env):
    observation_space = spaces.Box(-1, 1, (2,))
    action_space = spaces.MultiBinary(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, True, False, {}


def test_ppo_rejects_unsupported_action_spaces():
    gym.register("rlcourse-test/MultiBinary-v0", entry_point=_MultiBinaryEnv)
    try:
        with pytest.raises(TypeError, match="Discrete and Box"):
            ppo.train("rlcourse-test/MultiBinary-v0", 0, progress=False, total_steps=64)
    finally:
        del gym.registry["rlcourse-test/MultiBinary-v0"]
