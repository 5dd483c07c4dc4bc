"""A2C (notebook 06): n-step returns vs brute force, the loss vs autograd, rollouts, training."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from rlcourse import actor_critic as ac
from rlcourse import deeprl
from rlcourse.advantages import gae, td_errors
from tests.test_advantages import _random_batch


def _batch(seed: int, B: int = 5, T: int = 11):
    """Random [B, T] data with terminations and truncations; values consistent in time."""
    return _random_batch(seed, B, T)


def _n_step_brute(r, nv, term, done, gamma, n):
    B, T = r.shape
    out = np.zeros((B, T))
    for b in range(B):
        for t in range(T):
            m = 1
            while m < n and t + m - 1 < T - 1 and not done[b, t + m - 1]:
                m += 1
            end = t + m - 1
            g = sum(gamma ** k * float(r[b, t + k]) for k in range(m))
            out[b, t] = g + (0.0 if term[b, end] else gamma ** m * float(nv[b, end]))
    return out


# ---- n-step returns ----------------------------------------------------------------------

@pytest.mark.parametrize("gamma,n", [(0.9, 1), (0.9, 2), (0.97, 4), (1.0, 7), (0.5, 30)])
def test_n_step_returns_match_brute_force(gamma, n):
    r, _, nv, term, done = _batch(0)
    got = ac.n_step_returns(r, nv, term, done, gamma, n)
    np.testing.assert_allclose(got.numpy(), _n_step_brute(r, nv, term, done, gamma, n),
                               atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_n_step_advantage_is_a_discounted_sum_of_td_errors(n):
    """Telescoping: G_t^(n) - V(s_t) = sum_{k<m} gamma^k delta_{t+k} (C-048)."""
    gamma = 0.9
    r, v, nv, term, done = _batch(1)
    delta = td_errors(r, v, nv, term, gamma).numpy()
    G = ac.n_step_returns(r, nv, term, done, gamma, n).numpy()
    B, T = r.shape
    for b in range(B):
        for t in range(T):
            acc = 0.0
            for k in range(n):
                acc += gamma ** k * delta[b, t + k]
                if done[b, t + k] or t + k == T - 1:
                    break
            assert G[b, t] - float(v[b, t]) == pytest.approx(acc, abs=1e-12)


def test_n_step_limits_are_td0_and_the_lambda_one_return():
    r, v, nv, term, done = _batch(2)
    td_target = r + 0.95 * (~term).double() * nv
    torch.testing.assert_close(ac.n_step_returns(r, nv, term, done, 0.95, 1), td_target)
    full = ac.n_step_returns(r, nv, term, done, 0.95, r.shape[1])
    torch.testing.assert_close(full, gae(r, v, nv, term, done, 0.95, 1.0) + v)


def test_n_step_return_by_hand():
    r = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    nv = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    no = torch.zeros(1, 4, dtype=torch.bool)
    torch.testing.assert_close(ac.n_step_returns(r, nv, no, no, 0.5, 2),
                               torch.tensor([[7.0, 11.0, 15.0, 24.0]]))


# ---- the A2C loss ------------------------------------------------------------------------

def _loss_data(seed=0, shape=(3, 4), n_actions=3):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, n_actions, generator=g, dtype=torch.float64).requires_grad_()
    actions = torch.randint(0, n_actions, shape, generator=g)
    adv = torch.randn(*shape, generator=g, dtype=torch.float64)
    values = torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()
    returns = torch.randn(*shape, generator=g, dtype=torch.float64)
    mask = (torch.rand(*shape, generator=g) < 0.8).double()
    return logits, actions, adv, values, returns, mask


def test_a2c_loss_gradients_match_the_analytic_formulas():
    logits, actions, adv, values, returns, mask = _loss_data()
    loss, parts = ac.a2c_loss(logits, actions, adv, values, returns, mask, 0.7, 0.05)
    loss.backward()
    p = torch.softmax(logits.detach(), -1)
    logp = p.log()
    onehot = torch.nn.functional.one_hot(actions, 3).double()
    M = mask.sum()
    H = -(p * logp).sum(-1)
    g_policy = -(mask * adv)[..., None] * (onehot - p) / M
    g_entropy = -mask[..., None] * p * (logp + H[..., None]) / M
    torch.testing.assert_close(logits.grad, g_policy - 0.05 * g_entropy)
    torch.testing.assert_close(values.grad, 0.7 * mask * (values.detach() - returns) / M)
    assert parts["entropy"] == pytest.approx(float((mask * H).sum() / M))
    v = values.detach()
    assert parts["value_loss"] == pytest.approx(float(0.5 * (mask * (v - returns) ** 2).sum() / M))


def test_a2c_loss_passes_gradcheck():
    logits, actions, adv, values, returns, mask = _loss_data(1, shape=(2, 3))
    f = lambda z, v: ac.a2c_loss(z, actions, adv, v, returns, mask, 0.5, 0.01)[0]
    assert torch.autograd.gradcheck(f, (logits, values))


def test_policy_gradient_of_the_loss_is_the_gradient_of_the_expected_return():
    """Weighting every action by pi(a) (the mask is a weight) gives the exact expectation:
    -grad(policy_loss) = grad sum_a pi(a) Q(a), with or without the baseline V."""
    z = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64, requires_grad=True)
    Q = torch.tensor([1.0, 3.0, -2.0], dtype=torch.float64)
    (p_exact := torch.softmax(z, -1) @ Q).backward()
    true_grad = z.grad.clone()
    pi = torch.softmax(z.detach(), -1)
    for baseline in (0.0, float(pi @ Q)):
        logits = z.detach().expand(3, 3).clone().requires_grad_()
        loss, _ = ac.a2c_loss(logits, torch.arange(3), Q - baseline, torch.zeros(3),
                              torch.zeros(3), pi, 0.0, 0.0)
        loss.backward()
        torch.testing.assert_close(-logits.grad.sum(0), true_grad)
    assert float(p_exact.detach()) == pytest.approx(float(pi @ Q))


def test_a2c_loss_treats_advantages_and_returns_as_constants():
    logits, actions, _, values, returns, mask = _loss_data(2)
    loss, _ = ac.a2c_loss(logits, actions, returns - values, values, values + 1.0, mask, 1.0)
    loss.backward()
    torch.testing.assert_close(values.grad, -mask / mask.sum())


def test_entropy_of_a_uniform_policy_is_log_n():
    _, parts = ac.a2c_loss(torch.zeros(5, 4), torch.zeros(5, dtype=torch.long), torch.zeros(5),
                           torch.zeros(5), torch.zeros(5))
    assert parts["entropy"] == pytest.approx(np.log(4))
    assert parts["policy_loss"] == 0 and parts["value_loss"] == 0


# ---- networks, config ----------------------------------------------------------------------

@pytest.mark.parametrize("shared", [False, True])
def test_actor_critic_shapes_and_greedy_policy(shared):
    net = ac.ActorCritic(4, 3, hidden=16, shared=shared)
    logits, values = net(torch.zeros(2, 5, 4))
    assert logits.shape == (2, 5, 3) and values.shape == (2, 5)
    torch.testing.assert_close(net.logits(torch.ones(7, 4)), net(torch.ones(7, 4))[0])
    policy = ac.A2CPolicy(net)
    obs = torch.randn(6, 4)
    assert torch.equal(policy(obs), net(obs)[0].argmax(-1))
    assert policy.value(obs).shape == (6,) and not policy.value(obs).requires_grad
    assert float(net.logits(obs).detach().abs().max()) < 0.5  # small head: near-uniform start


def test_make_config_overrides():
    cfg = ac.make_config(n_steps=5, lam=1.0, optimizer="rmsprop")
    assert (cfg.n_steps, cfg.lam, cfg.optimizer, cfg.num_envs) == (5, 1.0, "rmsprop", 16)


# ---- rollouts: next-step autoreset, truncation vs termination ----------------------------

def _collect(bootstrap_on_truncation: bool, max_episode_steps: int = 5, n_steps: int = 12):
    cfg = ac.make_config(num_envs=3, n_steps=n_steps,
                         bootstrap_on_truncation=bootstrap_on_truncation)
    envs = deeprl.make_vec_env("CartPole-v1", 3, seed=0, max_episode_steps=max_episode_steps)
    obs, _ = envs.reset(seed=0)
    torch.manual_seed(0)
    prog = ac._Progress(deeprl.EpisodeTracker(3, 475.0), deeprl.StepMask(3), obs,
                        time.perf_counter())
    net = ac.ActorCritic(4, 2, hidden=8)
    return ac.collect(envs, net, prog, cfg, "cpu"), prog


def test_rollout_masks_truncation_and_autoreset_steps():
    ro, prog = _collect(True)
    assert ro.obs.shape == (12, 3, 4) and ro.actions.shape == ro.rewards.shape == (12, 3)
    assert prog.steps == 36
    # CartPole cannot fall within 5 steps: every episode is truncated at step 5
    assert not ro.terminated.any()
    assert torch.equal(ro.valid[:, 0], torch.tensor([True] * 5 + [False] + [True] * 5 +
                                                    [False]))
    assert torch.equal(ro.dones[:, 0], torch.tensor(([False] * 4 + [True, True]) * 2))
    assert (ro.rewards[~ro.valid] == 0).all() and (ro.rewards[ro.valid] == 1).all()
    assert prog.tracker.returns == [5.0] * 6 and prog.history["episode_end_step"] == \
        [15] * 3 + [33] * 3
    wrong, _ = _collect(False)
    assert torch.equal(wrong.terminated, wrong.dones & wrong.valid)


def test_update_uses_the_given_advantage_and_loss_functions():
    ro, _ = _collect(True, max_episode_steps=500, n_steps=4)
    net = ac.ActorCritic(4, 2, hidden=8)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    seen = {}

    def spy_gae(*args):
        seen["gae"] = args[0].shape
        return gae(*args)

    def spy_loss(*args):
        seen["loss"] = args[0].shape
        return ac.a2c_loss(*args)

    before = [p.detach().clone() for p in net.parameters()]
    parts = ac.update(net, opt, ro, ac.make_config(), spy_gae, spy_loss)
    assert seen == {"gae": (3, 4), "loss": (3, 4, 2)}  # [N, T] layout of rlcourse.advantages
    assert set(parts) == {"policy_loss", "value_loss", "entropy"}
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


def _constant_obs_rollout(T=20, N=2, episode=5):
    """Every observation identical, reward 1 per step, every episode truncated after 5 steps."""
    t = torch.arange(T)
    dones = ((t + 1) % episode == 0)[:, None].expand(T, N).clone()
    return ac.Rollout(obs=torch.ones(T, N, 4), actions=torch.zeros(T, N, dtype=torch.long),
                      rewards=torch.ones(T, N), terminated=torch.zeros(T, N, dtype=torch.bool),
                      dones=dones, valid=torch.ones(T, N, dtype=torch.bool),
                      last_obs=torch.ones(N, 4))


def test_fit_critic_bootstraps_truncations_and_not_terminations():
    """A critic that cannot see the time: with truncation bootstrapped its value is the
    infinite-horizon 1/(1-gamma) = 10; treating truncation as termination drags it down to
    about the mean 5-step return."""
    ro = _constant_obs_rollout()
    one = torch.ones(1, 4)
    right = ac.fit_critic(ro, ro.terminated, 0.9, 0.95, hidden=16, iterations=60)
    wrong = ac.fit_critic(ro, ro.dones, 0.9, 0.95, hidden=16, iterations=60)
    assert float(right(one).detach()) == pytest.approx(10.0, abs=0.3)
    mean_5_step_return = np.mean([(1 - 0.9 ** (5 - t)) / 0.1 for t in range(5)])  # 2.63
    assert float(wrong(one).detach()) == pytest.approx(mean_5_step_return, abs=0.3)
    with pytest.raises(ValueError, match="terminated has shape"):
        ac.fit_critic(ro, ro.dones[:, :1], 0.9, 0.95)


def test_rollout_and_time_in_episode():
    net = ac.ActorCritic(4, 2, hidden=8)
    ro = ac.rollout(ac.A2CPolicy(net), "CartPole-v1", num_envs=4, n_steps=60, seed=0)
    assert ro.obs.shape == (60, 4, 4) and bool(ro.terminated.any())
    t = ac.time_in_episode(ro)
    assert t[0].tolist() == [0] * 4
    ends = ro.dones.nonzero()
    for i, n in ends.tolist():
        if i + 1 < 60:
            assert t[i + 1, n] == 0
    assert torch.equal(t[1:][~ro.dones[:-1]], t[:-1][~ro.dones[:-1]] + 1)


# ---- training ------------------------------------------------------------------------------

def test_train_learns_cartpole_within_a_small_budget():
    res = ac.train(seed=0, progress=False, total_steps=30_000, stop_when_solved=False)
    first, last = np.mean(res.episode_returns[:20]), np.mean(res.episode_returns[-20:])
    assert first < 40 and last > 200, (first, last)
    assert res.total_steps == 30_208 and res.total_steps % 256 == 0  # 16 envs x 16 steps
    assert len(res.history["episode_end_step"]) == len(res.episode_returns)
    assert len(res.history["update_step"]) == res.total_steps // 256


def test_train_solves_cartpole_with_the_defaults():
    res = ac.train(seed=0, progress=False)
    assert res.solved and res.steps_to_solve <= 200_000
    assert res.total_steps - 256 < res.steps_to_solve <= res.total_steps  # stopped once solved
    assert deeprl.evaluate("CartPole-v1", res.act, episodes=10, seed=3).mean() >= 450


def test_train_is_reproducible():
    a = ac.train(seed=3, progress=False, total_steps=3_000)
    b = ac.train(seed=3, progress=False, total_steps=3_000)
    assert a.episode_returns == b.episode_returns and a.history == b.history


def test_train_variants_run():
    for kw in ({"shared": True, "optimizer": "rmsprop"}, {"bootstrap_on_truncation": False}):
        res = ac.train(seed=1, progress=False, total_steps=1_000, num_envs=4, n_steps=5, **kw)
        assert res.total_steps == 1_000 and res.algo == "A2C" and res.history["update_step"]


def test_env_without_a_reward_threshold_is_never_solved(monkeypatch):
    def no_threshold(env_id):
        raise ValueError(f"{env_id} has no reward_threshold")

    monkeypatch.setattr(deeprl, "reward_threshold", no_threshold)
    res = ac.train(seed=0, progress=False, total_steps=512)
    assert not res.solved and res.total_steps == 512


def test_stop_when_solved(monkeypatch):
    monkeypatch.setattr(deeprl, "reward_threshold", lambda env_id: 15.0)  # easy target
    res = ac.train(seed=0, progress=False, total_steps=50_000)
    assert res.solved and res.total_steps < 50_000
    assert res.steps_to_solve <= res.total_steps and res.seconds_to_solve <= res.seconds


def test_learning_curve():
    res = deeprl.TrainResult("A2C", "CartPole-v1", 0, False, None, None, 100, 1.0,
                             act=lambda o: o, episode_returns=[10.0, 20.0, 30.0, 60.0],
                             history={"episode_end_step": [5, 8, 8, 20]})
    curve = ac.learning_curve(res, np.array([1, 5, 8, 19, 20, 50]), window=2)
    np.testing.assert_allclose(curve, [np.nan, 10, 25, 25, 45, 45])
    res.history["episode_end_step"] = [1]
    with pytest.raises(ValueError, match="episode ends"):
        ac.learning_curve(res, np.array([1]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_train_on_cuda():  # pragma: no cover
    res = ac.train(seed=0, progress=False, total_steps=2_000, device="cuda")
    assert deeprl.evaluate("CartPole-v1", res.act, episodes=5, device="cuda").shape == (5,)


# ---- bad inputs ----------------------------------------------------------------------------

def test_bad_inputs():
    r = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"\[batch, time\]"):
        ac.n_step_returns(r[0], r[0], r[0].bool(), r[0].bool(), 0.9, 2)
    with pytest.raises(ValueError, match="next_values has shape"):
        ac.n_step_returns(r, r[:, :2], r.bool(), r.bool(), 0.9, 2)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        ac.n_step_returns(r, r, r.bool(), r.bool(), 0.9, 0)
    with pytest.raises(ValueError, match="gamma"):
        ac.n_step_returns(r, r, r.bool(), r.bool(), 1.1, 2)
    with pytest.raises(ValueError, match="values has shape"):
        ac.a2c_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3), r, torch.zeros(3), r)
    with pytest.raises(TypeError, match="unknown A2C hyperparameter"):
        ac.train(progress=False, learning_rate=1e-3)
    with pytest.raises(ValueError, match="lam"):
        ac.make_config(lam=1.5)
    with pytest.raises(ValueError, match="optimizer"):
        ac.make_config(optimizer="sgd")
    with pytest.raises(ValueError, match="n_steps"):
        ac.make_config(n_steps=0)
    with pytest.raises(TypeError, match="A2C needs a Discrete space, got Box"):
        ac.train("Pendulum-v1", progress=False)
    with pytest.raises(ValueError, match="unknown environment"):
        ac.train("CartPol-v1", progress=False)


# ---- the update_fn hook of train -------------------------------------------------------------

def test_train_with_the_package_update_as_hook_is_the_same_run():
    kw = dict(seed=1, progress=False, total_steps=3000, stop_when_solved=False)
    calls = []

    def update_fn(net, optimizer, ro, cfg):
        calls.append(1)
        return ac.update(net, optimizer, ro, cfg)

    a, b = ac.train(**kw), ac.train(**kw, update_fn=update_fn)
    assert len(calls) == len(b.history["update_step"]) > 5
    assert a.episode_returns == b.episode_returns and a.history == b.history
    for p, q in zip(a.act.net.parameters(), b.act.net.parameters()):
        assert torch.equal(p, q)


def test_train_update_hook_rejects_bad_inputs():
    with pytest.raises(TypeError, match="update_fn must be a function"):
        ac.train(progress=False, update_fn=3)
    with pytest.raises(ValueError, match="not both"):
        ac.train(progress=False, update_fn=ac.update, gae_fn=lambda *a: None)
    with pytest.raises(ValueError, match="must return a dict with the keys"):
        ac.train(progress=False, total_steps=600, update_fn=lambda *a: [0.0, 0.0, 0.0])
