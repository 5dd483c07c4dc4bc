"""DQN (notebook 04): targets vs brute force, Huber gradients, replay buffer, overestimation toy,
and a short CartPole run that really learns."""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import pytest
import torch

from rlcourse import deeprl, dqn

# ---- epsilon schedule ----------------------------------------------------------------------


def test_epsilon_schedule_is_linear_then_flat():
    eps = [dqn.epsilon_schedule(s, 1.0, 0.05, 1000) for s in range(0, 3001, 250)]
    assert eps[0] == 1.0 and eps[4] == pytest.approx(0.05) and eps[-1] == pytest.approx(0.05)
    assert np.allclose(np.diff(eps[:5]), -0.95 / 4)
    assert dqn.epsilon_schedule(500, 0.2, 0.6, 1000) == pytest.approx(0.4)  # may increase too


# ---- targets -------------------------------------------------------------------------------


def _random_batch(seed: int, b: int = 64, a: int = 3):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(b, generator=g)
    q1, q2 = torch.randn(b, a, generator=g) * 5, torch.randn(b, a, generator=g) * 5
    term = torch.rand(b, generator=g) < 0.3
    trunc = torch.rand(b, generator=g) < 0.3
    return rewards, q1, q2, term, trunc


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.99, 1.0])
def test_td_target_matches_a_python_loop(gamma):
    r, nq, _, te, tr = _random_batch(1)
    got = dqn.td_target(r, nq, te, tr, gamma)
    for i in range(len(r)):
        best = max(float(x) for x in nq[i])
        expected = float(r[i]) + (0.0 if te[i] else gamma * best)
        assert float(got[i]) == pytest.approx(expected, abs=1e-5)


def test_truncation_bootstraps_but_termination_does_not():
    r = torch.ones(3)
    nq = torch.full((3, 2), 50.0)
    y = dqn.td_target(r, nq, torch.tensor([True, False, False]),
                      torch.tensor([False, True, False]), 0.99)
    assert y.tolist() == pytest.approx([1.0, 50.5, 50.5])


@pytest.mark.parametrize("gamma", [0.0, 0.9, 1.0])
def test_double_dqn_target_matches_a_python_loop(gamma):
    r, online, target, te, _ = _random_batch(2)
    got = dqn.double_dqn_target(r, online, target, te, gamma)
    for i in range(len(r)):
        a_star = max(range(online.shape[1]), key=lambda a: float(online[i, a]))
        expected = float(r[i]) + (0.0 if te[i] else gamma * float(target[i, a_star]))
        assert float(got[i]) == pytest.approx(expected, abs=1e-5)


def test_double_target_equals_vanilla_when_both_nets_agree():
    r, q, _, te, tr = _random_batch(3)
    assert torch.allclose(dqn.double_dqn_target(r, q, q, te, 0.9), dqn.td_target(r, q, te, tr, 0.9))
    # and it is never above the vanilla target computed with the same target net
    _, online, target, _, _ = _random_batch(4)
    assert torch.all(dqn.double_dqn_target(r, online, target, te, 0.9)
                     <= dqn.td_target(r, target, te, tr, 0.9) + 1e-6)


# ---- multi-step target ---------------------------------------------------------------------


def _window_batch(seed: int, b: int = 200, n: int = 4, a: int = 3):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(b, n, generator=g, dtype=torch.float64)
    next_q = torch.randn(b, n, a, generator=g, dtype=torch.float64) * 5
    term = torch.rand(b, n, generator=g) < 0.15
    trunc = (torch.rand(b, n, generator=g) < 0.15) & ~term
    return rewards, next_q, term, trunc


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.99, 1.0])
def test_n_step_target_matches_a_python_loop(gamma):
    r, nq, te, tr = _window_batch(5)
    got = dqn.n_step_target(r, nq, te, tr, gamma)
    for i in range(r.shape[0]):
        y, discount = 0.0, 1.0
        for k in range(r.shape[1]):
            y += discount * float(r[i, k])
            discount *= gamma
            if te[i, k]:  # terminal state: nothing to bootstrap
                break
            if tr[i, k] or k == r.shape[1] - 1:  # time limit or window full: bootstrap
                y += discount * float(nq[i, k].max())
                break
        assert float(got[i]) == pytest.approx(y, abs=1e-9)


def test_n_step_target_masks_terminations_but_not_truncations():
    r = torch.ones(3, 3)
    nq = torch.full((3, 3, 2), 10.0)
    te = torch.tensor([[False, True, False], [False, False, False], [False, False, False]])
    tr = torch.tensor([[False, False, False], [False, True, True], [False, False, False]])
    y = dqn.n_step_target(r, nq, te, tr, 0.5)
    # row 0 terminates at k = 1: 1 + 0.5, no bootstrap; row 1 is truncated at k = 1:
    # 1 + 0.5 + 0.25 * 10 (the later flag belongs to the next episode); row 2: full window
    assert y.tolist() == pytest.approx([1.5, 4.0, 1.75 + 0.125 * 10])
    # a termination *after* the window's end must not remove the bootstrap
    te_late = torch.tensor([[False, False, False], [False, False, True], [False] * 3])
    assert dqn.n_step_target(r, nq, te_late, tr, 0.5)[1] == pytest.approx(4.0)


def test_one_step_window_is_the_td_target():
    r, nq, te, tr = _window_batch(6, n=1)
    got = dqn.n_step_target(r, nq, te, tr, 0.9)
    assert torch.allclose(got, dqn.td_target(r[:, 0], nq[:, 0], te[:, 0], tr[:, 0], 0.9))


def test_n_step_target_rejects_bad_shapes():
    r, nq, te, tr = _window_batch(7, b=4, n=3)
    with pytest.raises(ValueError, match=r"\[batch, n, actions\]"):
        dqn.n_step_target(r, nq[:, :, 0], te, tr, 0.9)
    with pytest.raises(ValueError, match=r"terminated has shape \(4, 2\)"):
        dqn.n_step_target(r, nq, te[:, :2], tr, 0.9)
    with pytest.raises(ValueError, match="gamma"):
        dqn.n_step_target(r, nq, te, tr, 1.5)


# ---- loss ----------------------------------------------------------------------------------


def test_huber_loss_value_and_gradient():
    torch.manual_seed(0)
    q = (torch.randn(32, 4) * 3).requires_grad_(True)
    a = torch.randint(0, 4, (32,))
    y = (torch.randn(32) * 3).requires_grad_(True)
    loss = dqn.dqn_loss(q, a, y, huber=True)
    q_sa = q[torch.arange(32), a]
    ref = torch.nn.functional.smooth_l1_loss(q_sa, y.detach(), beta=1.0)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    loss.backward()
    # d/dQ(s,a) of mean Huber = clip(error, -1, 1) / B, and 0 for actions not taken
    expected = torch.zeros_like(q)
    expected[torch.arange(32), a] = (q_sa - y).detach().clamp(-1, 1) / 32
    assert torch.allclose(q.grad, expected, atol=1e-7)
    assert y.grad is None  # semi-gradient: the target is a constant


def test_squared_loss_matches_finite_differences():
    q = torch.tensor([[0.5, 3.0], [2.0, -1.0]], dtype=torch.float64, requires_grad=True)
    a, y = torch.tensor([1, 0]), torch.tensor([0.0, 4.0], dtype=torch.float64)
    loss = dqn.dqn_loss(q, a, y, huber=False)
    assert loss.item() == pytest.approx(0.5 * (9.0 + 4.0) / 2)
    loss.backward()
    h = 1e-6
    for i, j in [(0, 1), (1, 0), (0, 0)]:
        qp, qm = q.detach().clone(), q.detach().clone()
        qp[i, j] += h
        qm[i, j] -= h
        fd = (dqn.dqn_loss(qp, a, y, huber=False) - dqn.dqn_loss(qm, a, y, huber=False)) / (2 * h)
        assert q.grad[i, j].item() == pytest.approx(fd.item(), abs=1e-6)


def test_dueling_combine_is_identifiable():
    v = torch.tensor([[1.0], [-2.0]])
    adv = torch.tensor([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]])
    q = dqn.dueling_combine(v, adv)
    assert torch.allclose(q.mean(dim=1, keepdim=True), v)  # V is the mean of Q over actions
    assert torch.allclose(dqn.dueling_combine(v, adv + 7.0), q)  # shifting A changes nothing
    assert torch.equal(q.argmax(dim=1), adv.argmax(dim=1))
    net = dqn.QNetwork(4, 3, (16, 16), dueling=True)
    assert net(torch.zeros(5, 4)).shape == (5, 3)


# ---- overestimation toy --------------------------------------------------------------------


def test_expected_max_of_standard_normals():
    assert dqn.expected_max_std_normal(1) == pytest.approx(0.0, abs=1e-9)
    assert dqn.expected_max_std_normal(2) == pytest.approx(1 / math.sqrt(math.pi), abs=1e-7)
    assert dqn.expected_max_std_normal(3) == pytest.approx(1.5 / math.sqrt(math.pi), abs=1e-7)
    draws = np.random.default_rng(0).standard_normal((200_000, 10)).max(axis=1)
    assert dqn.expected_max_std_normal(10) == pytest.approx(draws.mean(), abs=0.01)


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_single_and_double_estimators_match_their_closed_forms():
    """Two actions with means m1 > m2 and noise sd s (independent copies A and B).

    Single: E[max(X1, X2)] = m1 Phi(d/t) + m2 Phi(-d/t) + t phi(d/t), d = m1 - m2, t = s sqrt(2)
    (Clark, 1961). Double: E = m1 P(A picks 1) + m2 P(A picks 2), P(A picks 1) = Phi(d/t).
    """
    m1, m2, s = 1.0, 0.5, 1.0
    d, t = m1 - m2, s * math.sqrt(2)
    single_exact = m1 * _Phi(d / t) + m2 * _Phi(-d / t) + t * _phi(d / t)
    double_exact = m1 * _Phi(d / t) + m2 * _Phi(-d / t)
    single, double = dqn.noisy_max_estimates(np.array([m1, m2]), s, 400_000,
                                             np.random.default_rng(1))
    se = 1.5 / math.sqrt(400_000)
    assert single.mean() == pytest.approx(single_exact, abs=4 * se)
    assert double.mean() == pytest.approx(double_exact, abs=4 * se)
    assert single.mean() > m1 > double.mean()  # over- vs under-estimation of max_a q_a


def test_equal_means_single_bias_is_sigma_times_expected_max_and_double_is_unbiased():
    n, s = 8, 2.0
    single, double = dqn.noisy_max_estimates(np.zeros(n), s, 200_000, np.random.default_rng(2))
    assert single.mean() == pytest.approx(s * dqn.expected_max_std_normal(n), abs=0.02)
    assert double.mean() == pytest.approx(0.0, abs=0.02)


# ---- replay buffer -------------------------------------------------------------------------


def _step(values, n=3):
    obs = np.array([[v, v] for v in values], dtype=np.float32)
    return (obs, np.arange(len(values)) % 2, np.array(values, float), obs + 0.5,
            np.zeros(len(values), bool), np.zeros(len(values), bool))


def test_ring_buffer_wraps_and_keeps_the_newest():
    buf = dqn.ReplayBuffer(capacity=5, obs_dim=2)
    buf.add(*_step([1, 2, 3]))
    assert len(buf) == 3 and buf.pos == 3
    buf.add(*_step([4, 5, 6]))
    assert len(buf) == 5 and buf.pos == 1
    assert buf.rewards.tolist() == [6, 2, 3, 4, 5]  # 1 was overwritten by 6
    assert buf.latest(2)["rewards"].tolist() == [5, 6]
    assert buf.latest(99)["rewards"].tolist() == [2, 3, 4, 5, 6]
    batch = buf.sample(5, np.random.default_rng(0))
    assert batch["obs"].shape == (5, 2) and batch["obs"].dtype == torch.float32
    assert batch["actions"].shape == (5,) and batch["actions"].dtype == torch.int64
    assert batch["terminated"].dtype == torch.bool and batch["truncated"].dtype == torch.bool
    assert set(batch["rewards"].tolist()) <= {2.0, 3.0, 4.0, 5.0, 6.0}
    np.testing.assert_allclose(batch["next_obs"], batch["obs"] + 0.5)  # rows stay together


def test_buffer_skips_invalid_rows_and_samples_uniformly():
    buf = dqn.ReplayBuffer(capacity=100, obs_dim=2)
    buf.add(*_step([1, 2, 3, 4]), valid=np.array([True, False, True, False]))
    assert buf.rewards[:len(buf)].tolist() == [1, 3]
    for v in range(10):
        buf.add(*_step([10 + v]))
    rng = np.random.default_rng(0)
    draws = np.concatenate([buf.sample(12, rng)["rewards"].numpy() for _ in range(5_000)])
    counts = np.bincount(draws.astype(int))
    freq = counts[counts > 0] / 60_000
    assert np.allclose(freq, 1 / 12, atol=0.01)


def test_buffer_from_cartpole_holds_no_autoreset_steps():
    """Every real CartPole step earns +1; an autoreset step earns 0 and jumps to a new state."""
    n = 4
    envs = deeprl.make_vec_env("CartPole-v1", n, seed=3)
    obs, _ = envs.reset(seed=3)
    mask, buf = deeprl.StepMask(n), dqn.ReplayBuffer(10_000, 4)
    rng, n_valid = np.random.default_rng(0), 0
    for _ in range(400):
        a = rng.integers(0, 2, n)
        nxt, r, te, tr, _ = envs.step(a)
        valid = mask.step(te, tr)
        buf.add(obs, a, r, nxt, te, tr, valid)
        n_valid += int(valid.sum())
        obs = nxt
    k = len(buf)
    assert k == n_valid < 400 * n
    assert np.all(buf.rewards[:k] == 1.0)
    assert buf.terminated[:k].sum() > 20
    # consecutive CartPole states differ by one Euler step (0.02 s), never by a reset jump
    assert np.abs(buf.next_obs[:k, 0] - buf.obs[:k, 0]).max() < 0.1


# ---- training ------------------------------------------------------------------------------


def test_train_learns_cartpole_with_a_fixed_seed():
    """A small budget (10k env steps, ~2.5k updates) already lifts returns far above random."""
    t0 = time.process_time()
    res = dqn.train("CartPole-v1", seed=0, progress=False, total_steps=10_000)
    assert res.algo == "DQN" and res.total_steps == 10_000 and not res.solved
    first = np.mean(res.episode_returns[:20])
    last = np.mean(res.episode_returns[-10:])
    assert first < 30 and last > 100, (first, last)
    greedy = deeprl.evaluate("CartPole-v1", res.act, episodes=20, seed=5)
    assert greedy.mean() > 100
    curve = dqn.learning_curve(res, np.array([0, 5_000, 10_000]))
    assert np.isnan(curve[0]) and curve[2] > curve[1]
    assert len(res.history["log_step"]) == 10 and res.history["epsilon"][-1] == pytest.approx(0.01)
    assert time.process_time() - t0 < 60


@pytest.mark.parametrize("options", [
    {"double": True, "dueling": True}, {"replay": False}, {"target_network": False},
    {"huber": False, "hidden": [32]}])
def test_train_variants_run(options):
    res = dqn.train("CartPole-v1", seed=1, progress=False, total_steps=600, learning_starts=300,
                    log_every=200, **options)
    assert res.total_steps == 600 and len(res.history["loss"]) == 3
    assert np.isnan(res.history["loss"][0]) and np.isfinite(res.history["loss"][-1])


def test_a_smaller_budget_gives_a_prefix_of_the_longer_run():
    """The notebook's ablation baseline reuses the first steps of longer runs."""
    kw = dict(progress=False, learning_starts=200, log_every=400, stop_when_solved=False)
    short = dqn.train("CartPole-v1", seed=2, total_steps=1_200, **kw)
    long = dqn.train("CartPole-v1", seed=2, total_steps=2_000, **kw)
    n = len(short.episode_returns)
    assert n > 10 and long.episode_returns[:n] == short.episode_returns
    assert long.history["q_mean"][:3] == short.history["q_mean"]


def test_train_is_reproducible_and_uses_plugged_in_functions():
    calls = []

    def my_target(*args):
        calls.append(1)
        return dqn.td_target(*args)

    kw = dict(progress=False, total_steps=400, learning_starts=100, log_every=100)
    a = dqn.train("CartPole-v1", seed=4, target_fn=my_target, **kw)
    b = dqn.train("CartPole-v1", seed=4, **kw)
    assert a.episode_returns == b.episode_returns and a.history["loss"] == b.history["loss"]
    assert len(calls) == 2 * ((400 - 100) // 4 + 1)  # grad_steps = 2 per vector step


def test_training_stops_on_the_step_it_is_solved(monkeypatch):
    """With a threshold random play reaches, training stops as soon as the tracker is solved."""
    monkeypatch.setattr(dqn.deeprl, "reward_threshold", lambda env_id: 15.0)
    res = dqn.train("CartPole-v1", seed=0, progress=False, total_steps=5_000,
                    learning_starts=10**6)
    assert res.solved and res.total_steps == res.steps_to_solve < 5_000
    assert np.mean(res.episode_returns[-deeprl.SOLVE_WINDOW:]) >= 15.0
    ends = np.array(res.history["episode_end_step"])
    before = np.array(res.episode_returns)[ends < res.steps_to_solve]  # one vector step earlier
    assert len(before) < deeprl.SOLVE_WINDOW or before[-deeprl.SOLVE_WINDOW:].mean() < 15.0
    assert 0 < res.seconds_to_solve <= res.seconds


# ---- bad inputs ----------------------------------------------------------------------------


def test_bad_inputs_fail_clearly():
    with pytest.raises(TypeError, match="DQN needs a Discrete space, got Box"):
        dqn.train("Pendulum-v1", progress=False, total_steps=100)
    with pytest.raises(TypeError, match=r"unknown DQN hyperparameter\(s\) \['learning_rate'\]"):
        dqn.train(progress=False, learning_rate=1e-3)
    with pytest.raises(ValueError, match="gamma must lie in"):
        dqn.make_config(gamma=1.5)
    with pytest.raises(ValueError, match="buffer_size"):
        dqn.make_config(buffer_size=2, num_envs=4)
    with pytest.raises(ValueError, match="learning_starts"):
        dqn.make_config(learning_starts=-1)
    with pytest.raises((TypeError, ValueError), match="hidden"):
        dqn.make_config(hidden=())
    r, q, _, te, tr = _random_batch(0, b=4)
    with pytest.raises(ValueError, match=r"expected \[4\]"):
        dqn.td_target(r[:3], q, te, tr, 0.9)
    with pytest.raises(ValueError, match=r"\[batch, actions\]"):
        dqn.td_target(r, q[:, 0], te, tr, 0.9)
    with pytest.raises(ValueError, match="same shape"):
        dqn.double_dqn_target(r, q, q[:, :2], te, 0.9)
    with pytest.raises(ValueError, match="decay_steps"):
        dqn.epsilon_schedule(0, 1.0, 0.1, 0)
    with pytest.raises(ValueError, match="step must be >= 0"):
        dqn.epsilon_schedule(-1)


def test_buffer_rejects_mismatched_shapes():
    buf = dqn.ReplayBuffer(4, obs_dim=2)
    obs, a, r, nxt, te, tr = _step([1, 2])
    with pytest.raises(ValueError, match=r"must both be \[N, 2\]"):
        buf.add(np.zeros((2, 3), np.float32), a, r, np.zeros((2, 3), np.float32), te, tr)
    with pytest.raises(ValueError, match=r"must both be \[N, 2\]"):
        buf.add(obs, a, r, nxt[:1], te, tr)
    with pytest.raises(ValueError, match="same first dimension"):
        buf.add(obs, a[:1], r, nxt, te, tr)
    with pytest.raises(ValueError, match="capacity"):
        buf.add(*_step([1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match="empty"):
        buf.sample(3, np.random.default_rng(0))
    buf.add(obs, a, r, nxt, te, tr)
    with pytest.raises(ValueError, match="larger than the 2 transitions"):
        buf.sample(3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="batch_size"):
        buf.sample(0, np.random.default_rng(0))
    for bad in (0, -3):
        with pytest.raises(ValueError, match="capacity"):
            dqn.ReplayBuffer(bad, obs_dim=2)
    with pytest.raises(ValueError, match="true_q"):
        dqn.noisy_max_estimates(np.zeros((2, 2)), 1.0, 10, np.random.default_rng(0))


def test_learning_curve_rejects_inconsistent_history():
    res = dqn.train("CartPole-v1", seed=0, progress=False, total_steps=200,
                    learning_starts=10**6)
    res.history["episode_end_step"].append(999)
    with pytest.raises(ValueError, match="episode ends"):
        dqn.learning_curve(res, np.array([100]))


# ---- the staged pieces of an update, and the train hooks -----------------------------------


def _filled_buffer(n=40, seed=0):
    gen = np.random.default_rng(seed)
    buf = dqn.ReplayBuffer(64, 3)
    for _ in range(n // 4):
        buf.add(gen.normal(size=(4, 3)).astype(np.float32), gen.integers(0, 2, 4),
                gen.normal(size=4).astype(np.float32), gen.normal(size=(4, 3)).astype(np.float32),
                gen.random(4) < 0.3, gen.random(4) < 0.3)
    return buf


def test_batch_loss_matches_a_hand_computation():
    torch.manual_seed(0)
    q_net, target_net = dqn.QNetwork(3, 2, (8,)), dqn.QNetwork(3, 2, (8,))
    batch = _filled_buffer().sample(16, np.random.default_rng(1))
    loss, q, y = dqn.batch_loss(q_net, target_net, batch, 0.9, huber=False)
    q_hand = q_net(batch["obs"])
    next_max = target_net(batch["next_obs"]).max(dim=1).values.detach()
    y_hand = batch["rewards"] + 0.9 * (~batch["terminated"]).float() * next_max
    q_sa = q_hand[torch.arange(16), batch["actions"]]
    assert torch.allclose(y, y_hand) and not y.requires_grad
    assert torch.allclose(loss, 0.5 * ((q_sa - y_hand) ** 2).mean())
    loss.backward()
    assert all(p.grad is None for p in target_net.parameters())


def test_update_step_is_sgd_on_the_batch_loss_with_clipping_and_a_timed_copy():
    torch.manual_seed(0)
    cfg = dqn.make_config(batch_size=8, grad_steps=2, target_update=8, lr=1e-2,
                          max_grad_norm=0.3)
    q_net = dqn.QNetwork(3, 2, (8,))
    target_net = copy.deepcopy(q_net)
    hand_q, hand_t = copy.deepcopy(q_net), copy.deepcopy(q_net)
    buf, opt = _filled_buffer(), torch.optim.SGD(q_net.parameters(), lr=cfg.lr)
    stats = dqn.update_step(q_net, target_net, opt, buf, np.random.default_rng(3), cfg, 4, 8)
    rng, norms = np.random.default_rng(3), []
    for _ in range(cfg.grad_steps):  # the same two steps by hand: SGD, clipped gradient
        loss, _, _ = dqn.batch_loss(hand_q, hand_t, buf.sample(8, rng), cfg.gamma)
        grads = torch.autograd.grad(loss, list(hand_q.parameters()))
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        norms.append(float(norm))
        scale = min(1.0, cfg.max_grad_norm / (float(norm) + 1e-6))
        with torch.no_grad():
            for p, g in zip(hand_q.parameters(), grads):
                p -= cfg.lr * scale * g
    for a, b in zip(q_net.parameters(), hand_q.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert min(norms) > cfg.max_grad_norm  # clipping was active
    assert stats["grad_norm"] == pytest.approx(np.mean(norms), rel=1e-5)
    # steps 4 -> 8 crosses the multiple 8 of target_update: the target is now the online net
    for a, b in zip(target_net.parameters(), q_net.parameters()):
        assert torch.equal(a, b)
    assert set(stats) == {"loss", "q_mean", "td_error", "grad_norm"}
    assert [dqn.target_sync_due(s, s + 4, 8) for s in (0, 4, 8, 12)] == [False, True, False, True]


def test_train_hooks_left_default_equal_the_explicit_reference_pieces():
    kw = dict(progress=False, total_steps=600, learning_starts=300, log_every=200)
    a = dqn.train("CartPole-v1", seed=5, **kw)
    b = dqn.train("CartPole-v1", seed=5, update_fn=dqn.update_step,
                  buffer_cls=dqn.ReplayBuffer, **kw)
    assert a.episode_returns == b.episode_returns
    for key in ("loss", "q_mean", "td_error", "grad_norm"):
        np.testing.assert_array_equal(a.history[key], b.history[key])
    for key in ("td_error", "grad_norm"):
        assert np.isnan(a.history[key][0]) and np.all(np.isfinite(a.history[key][1:]))


def test_train_uses_the_update_and_buffer_it_is_given():
    calls, sizes = [], []

    class CountingBuffer(dqn.ReplayBuffer):
        def sample(self, batch_size, rng):
            sizes.append(len(self))
            return super().sample(batch_size, rng)

    def my_update(*args):
        calls.append(args[-1])
        return {"loss": 1.0}

    res = dqn.train("CartPole-v1", seed=0, progress=False, total_steps=400, learning_starts=100,
                    log_every=200, update_fn=my_update, buffer_cls=CountingBuffer)
    assert calls[0] >= 100 and calls == sorted(calls) and not sizes
    assert res.history["loss"][-1] == 1.0 and np.isnan(res.history["q_mean"][-1])
    dqn.train("CartPole-v1", seed=0, progress=False, total_steps=400, learning_starts=100,
              buffer_cls=CountingBuffer)
    assert sizes and min(sizes) >= 64  # no minibatch is drawn before the buffer holds one


def test_batch_loss_rejects_a_batch_whose_fields_disagree():
    torch.manual_seed(0)
    q_net = dqn.QNetwork(3, 2, (8,))
    batch = _filled_buffer().sample(8, np.random.default_rng(0))
    batch["rewards"] = batch["rewards"][:5]
    with pytest.raises(ValueError, match=r"rewards has shape \(5,\); expected \[8\]"):
        dqn.batch_loss(q_net, copy.deepcopy(q_net), batch, 0.9)


def test_on_device_wrapper_forwards_the_buffer_and_moves_its_batches():
    """On a GPU, train wraps a plugged-in buffer so a learner's update gets device tensors."""
    buf = _filled_buffer()
    wrapped = dqn._OnDevice(buf, "cpu")
    assert len(wrapped) == len(buf) == 40
    a = wrapped.sample(5, np.random.default_rng(0))
    b = buf.sample(5, np.random.default_rng(0))
    for key in b:
        assert torch.equal(a[key], b[key]) and a[key].device.type == "cpu"
    assert torch.equal(wrapped.latest(3)["rewards"], buf.latest(3)["rewards"])
    gen = np.random.default_rng(1)
    wrapped.add(gen.normal(size=(2, 3)).astype(np.float32), np.zeros(2, int), np.ones(2),
                gen.normal(size=(2, 3)).astype(np.float32), np.zeros(2, bool), np.zeros(2, bool))
    assert len(buf) == 42
