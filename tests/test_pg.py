"""Policy gradients: every formula of notebook 05 against autograd, finite differences or brute
force, the always-positive-reward bandit, and REINFORCE on CartPole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlcourse import deeprl, pg
from rlcourse.advantages import discounted_returns

THETA = torch.tensor([[0.3, -0.2], [0.5, 0.0], [-0.4, 0.2]], dtype=torch.float64)


def _exact(theta=THETA):
    """Enumerated trajectories of the toy MDP and their probabilities under theta."""
    mdp = pg.toy_mdp()
    traj = pg.enumerate_trajectories(mdp)
    p = traj.p_env * pg.policy_log_prob(theta, traj).exp()
    return mdp, traj, p


# ---- the math ------------------------------------------------------------------------------

def test_score_function_matches_autograd_and_has_zero_mean():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, dtype=torch.float64, generator=gen)
    actions = torch.randint(0, 4, (6,), generator=gen)
    z = logits.clone().requires_grad_(True)
    torch.log_softmax(z, -1).gather(1, actions[:, None]).sum().backward()
    torch.testing.assert_close(pg.score_function(logits, actions), z.grad)
    # E_{a ~ pi}[grad log pi(a)] = sum_a pi(a) (e_a - pi) = 0, by brute force over actions
    pi = torch.softmax(logits, -1)
    every = torch.stack([pg.score_function(logits, torch.full((6,), a)) for a in range(4)], 1)
    mean = (pi[:, :, None] * every).sum(1)
    assert float(mean.abs().max()) < 1e-15
    # ... and by Monte Carlo
    samples = torch.multinomial(pi[0], 200_000, replacement=True, generator=gen)
    mc = pg.score_function(logits[0].expand(200_000, 4), samples)
    assert float((mc.mean(0).abs() / (mc.std(0) / 200_000 ** 0.5)).max()) < 4.5


def test_reward_to_go_against_the_double_sum_and_padding():
    gen = torch.Generator().manual_seed(1)
    r = torch.randn(3, 7, dtype=torch.float64, generator=gen)
    for gamma in (0.0, 0.5, 0.99, 1.0):
        direct = torch.stack([(r[:, t:] * gamma ** torch.arange(7 - t, dtype=r.dtype)).sum(1)
                              for t in range(7)], 1)
        torch.testing.assert_close(pg.reward_to_go(r, gamma), direct)
    padded = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    torch.testing.assert_close(pg.reward_to_go(padded), torch.tensor([[6.0, 5.0, 3.0],
                                                                      [4.0, 0.0, 0.0]]))
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(pg.total_return(padded, mask),
                               torch.tensor([[6.0, 6.0, 6.0], [4.0, 0.0, 0.0]]))
    torch.testing.assert_close(pg.total_return(padded), torch.tensor([[6.0] * 3, [4.0] * 3]))


def test_reinforce_loss_gradient_is_the_reinforce_estimate():
    """Autograd of the surrogate on sampled toy trajectories = the per-sample score formula."""
    mdp = pg.toy_mdp()
    traj = pg.sample_trajectories(THETA, mdp, 64, torch.Generator().manual_seed(2))
    weights = pg.reward_to_go(traj.rewards)
    th = THETA.clone().requires_grad_(True)
    logp = torch.log_softmax(th, -1)[traj.states, traj.actions]  # [64, 2]
    loss = pg.reinforce_loss(logp, weights, torch.ones_like(weights))
    loss.backward()
    by_formula = pg.per_sample_gradients(THETA, traj, weights).mean(0)
    torch.testing.assert_close(-th.grad, by_formula)
    # padding does not count, and no gradient reaches the weights
    w = torch.tensor([[1.0, 5.0]], requires_grad=True)
    lp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    pg.reinforce_loss(lp, w, torch.tensor([[1.0, 0.0]])).backward()
    assert w.grad is None and lp.grad.tolist() == [[-1.0, 0.0]]
    assert float(pg.reinforce_loss(lp, w).detach()) == pytest.approx(11.0)


def test_bootstrap_on_truncation_matches_discounted_returns_with_bootstrap():
    r = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    truncated, v = torch.tensor([True, True, False]), torch.tensor([10.0, 20.0, 30.0])
    got = pg.reward_to_go(pg.bootstrap_truncated(r, mask, truncated, v, 0.9), 0.9)
    # row 0: a full-length truncated row is exactly discounted_returns with a bootstrap value
    ref = discounted_returns(r[:1], torch.zeros(1, 3), 0.9, bootstrap=v[:1])
    torch.testing.assert_close(got[:1], ref)
    assert float(got[1, 1]) == pytest.approx(1.0 + 0.9 * 20.0)  # padded row: last real step
    torch.testing.assert_close(got[2], pg.reward_to_go(r[2:], 0.9)[0])  # terminated: nothing
    with pytest.raises(ValueError, match="at least one real step"):
        pg.bootstrap_truncated(r, torch.zeros_like(r), truncated, v, 0.9)


# ---- T-15 and the baselines on the toy MDP --------------------------------------------------

def test_t15_exact_gradient_finite_differences_and_score_function():
    mdp, traj, p = _exact()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-12)
    exact = pg.exact_gradient(THETA, mdp)
    fd = pg.finite_difference_gradient(lambda th: pg.exact_objective(th, mdp), THETA)
    torch.testing.assert_close(fd, exact, atol=1e-8, rtol=0)
    # the score-function estimator's expectation, enumerated, is exactly the gradient ...
    full = pg.per_sample_gradients(THETA, traj, pg.total_return(traj.rewards))
    torch.testing.assert_close(pg.gradient_moments(full, p).mean, exact, atol=1e-12, rtol=0)
    # ... and its Monte-Carlo average lies within a few standard errors of it
    sample = pg.sample_trajectories(THETA, mdp, 20_000, torch.Generator().manual_seed(0))
    m = pg.gradient_moments(pg.per_sample_gradients(THETA, sample, pg.total_return(
        sample.rewards)))
    z = ((m.mean - exact) / m.se).abs().max()
    assert float(z) < 4.0
    # the MC variance estimate agrees with the enumerated variance
    exact_var = pg.gradient_moments(full, p).total_variance
    assert m.total_variance == pytest.approx(exact_var, rel=0.05)


def test_state_values_by_enumeration():
    mdp, traj, p = _exact()
    v = pg.state_values(THETA, mdp)
    assert float(v[0]) == pytest.approx(float(pg.exact_objective(THETA, mdp)), abs=1e-12)
    for s in (1, 2):  # V(s) = E[r1 | s1 = s]
        at = traj.states[:, 1] == s
        assert float(v[s]) == pytest.approx(float((p[at] * traj.rewards[at, 1]).sum()
                                                  / p[at].sum()))


def test_baselines_and_reward_to_go_are_unbiased_discounting_is_not():
    mdp, traj, p = _exact()
    exact = pg.exact_gradient(THETA, mdp)
    G, R = pg.reward_to_go(traj.rewards), pg.total_return(traj.rewards)
    V = pg.state_values(THETA, mdp)[traj.states]
    variances = {}
    for name, w in {"full": R, "rtg": G, "rtg-V": G - V, "R-7": R - 7.0,
                    "rtg-random-b": G - torch.tensor([3.0, -1.0, 2.0], dtype=torch.float64)[
                        traj.states]}.items():
        m = pg.gradient_moments(pg.per_sample_gradients(THETA, traj, w), p)
        torch.testing.assert_close(m.mean, exact, atol=1e-12, rtol=0, msg=name)
        variances[name] = m.total_variance
    assert variances["full"] > variances["rtg"] > 5 * variances["rtg-V"]
    disc = pg.gradient_moments(pg.per_sample_gradients(THETA, traj, pg.reward_to_go(
        traj.rewards, 0.5)), p)
    assert float((disc.mean - exact).norm()) > 0.05  # biased for the undiscounted objective


def test_optimal_baseline_minimises_the_exact_variance():
    mdp, traj, p = _exact()
    scores = pg.per_sample_gradients(THETA, traj, torch.ones_like(traj.rewards))
    R = traj.rewards.sum(1)
    c_star = float(pg.optimal_baseline(scores * p.sqrt()[:, None, None], R))  # p-weighted
    var = lambda c: pg.gradient_moments(scores * (R - c)[:, None, None], p).total_variance
    grid = np.linspace(c_star - 2, c_star + 2, 81)
    assert var(c_star) <= min(var(c) for c in grid) + 1e-12
    assert var(2 * c_star) == pytest.approx(var(0.0))  # E-40: a c that is too big is as bad ...
    assert var(2.5 * c_star) > var(0.0)  # ... or worse than no baseline
    # the Monte-Carlo version is close to the exact one
    sample = pg.sample_trajectories(THETA, mdp, 20_000, torch.Generator().manual_seed(1))
    s = pg.per_sample_gradients(THETA, sample, torch.ones_like(sample.rewards))
    assert float(pg.optimal_baseline(s, sample.rewards.sum(1))) == pytest.approx(c_star, abs=0.1)


def test_importance_ratio_uses_policy_probabilities_only():
    """E-50: p_theta(tau) / p_old(tau) = prod_t pi_theta(a_t|s_t) / pi_old(a_t|s_t)."""
    mdp, traj, p_old = _exact()
    theta_new = THETA + torch.tensor([[0.5, -0.1], [0.0, 0.3], [0.2, 0.2]], dtype=torch.float64)
    p_new = traj.p_env * pg.policy_log_prob(theta_new, traj).exp()
    ratio = (pg.policy_log_prob(theta_new, traj) - pg.policy_log_prob(THETA, traj)).exp()
    torch.testing.assert_close(ratio, p_new / p_old)
    j_new = float(pg.exact_objective(theta_new, mdp))
    assert float((p_old * ratio * traj.rewards.sum(1)).sum()) == pytest.approx(j_new)


def test_gradient_moments_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2 samples"):
        pg.gradient_moments(torch.zeros(1, 3))


# ---- the always-positive-reward pathology ---------------------------------------------------

def test_unsampled_arms_lose_probability_without_a_baseline():
    means = torch.tensor([4.0, 5.0, 6.0])
    kw = dict(n_runs=500, n_updates=1, batch_size=2, lr=0.1)
    none = pg.bandit_reinforce(means, **kw, generator=torch.Generator().manual_seed(0))
    # replay the same draws to know which arms were sampled
    probs = torch.full((500, 3), 1 / 3, dtype=torch.float64)
    arms = torch.multinomial(probs, 2, replacement=True,
                             generator=torch.Generator().manual_seed(0))
    unsampled = ~(arms == 2).any(1)
    assert unsampled.sum() > 100
    assert bool((none[1, unsampled, 2] < 1 / 3).all())  # the best arm always loses
    assert torch.allclose(none.sum(-1), torch.ones(2, 500, dtype=torch.float64))


def test_leave_one_out_baseline_fixes_the_bandit():
    means = torch.tensor([4.0, 5.0, 6.0])
    kw = dict(n_runs=1000, n_updates=200, batch_size=2, lr=0.1, noise_std=1.0)
    h_none = pg.bandit_reinforce(means, **kw, generator=torch.Generator().manual_seed(0))
    h_loo = pg.bandit_reinforce(means, **kw, baseline="leave_one_out",
                                generator=torch.Generator().manual_seed(0))
    assert h_none.shape == (201, 1000, 3)
    locked = lambda h: float((h[-1, :, :2] > 0.9).any(-1).double().mean())
    assert locked(h_none) > 0.04 and locked(h_loo) == 0.0
    assert float(h_loo[-1, :, 2].mean()) > float(h_none[-1, :, 2].mean()) + 0.05


# ---- REINFORCE on CartPole -------------------------------------------------------------------

def test_train_solves_cartpole_with_a_fixed_seed():
    result = pg.train("CartPole-v1", seed=0, progress=False)
    assert result.solved and result.algo == "REINFORCE"
    n = pg.episodes_to_solve(result.episode_returns, 475.0)
    assert n is not None and n <= 400
    assert result.steps_to_solve == result.total_steps  # it stopped when solved
    assert np.mean(result.episode_returns[:20]) < 60
    returns = deeprl.evaluate("CartPole-v1", result.act, episodes=20, seed=1)
    assert returns.mean() > 450
    h = result.history
    assert len(h["update_step"]) == len(h["policy_loss"]) == len(h["entropy"]) > 10
    assert h["entropy"][-1] < h["entropy"][0]


def test_train_without_baseline_runs_and_is_reproducible():
    kw = dict(progress=False, baseline="none", normalize_advantages=False, total_steps=3000)
    a, b = pg.train(seed=3, **kw), pg.train(seed=3, **kw)
    assert a.episode_returns == b.episode_returns and not a.solved
    assert a.total_steps >= 3000 and a.history["value_loss"][0] == 0.0


def test_split_episodes_uses_the_kept_steps_only():
    # 2 envs, 6 steps. env 0: episode of 2 steps (terminated), autoreset, episode of 2 steps
    # (truncated), then 1 step of a third episode that is not kept. env 1: one terminated
    # episode of 5 steps, autoreset.
    valid = np.array([[1, 1], [1, 1], [0, 1], [1, 1], [1, 1], [1, 0]], dtype=bool)
    te = np.zeros((6, 2), dtype=bool)
    tu = np.zeros((6, 2), dtype=bool)
    te[1, 0], tu[4, 0], te[4, 1] = True, True, True
    obs = np.arange(24, dtype=np.float32).reshape(6, 2, 2)
    keep = valid.copy()
    keep[5, 0] = False
    ro = {"obs": obs, "actions": np.ones((6, 2), dtype=int), "rewards": np.ones((6, 2)),
          "terminated": te, "truncated": tu, "valid": valid, "keep": keep,
          "next_obs": obs + 100}
    batch = pg._split_episodes(ro, "cpu")
    assert batch.mask.sum(1).tolist() == [2.0, 2.0, 5.0]
    assert batch.truncated.tolist() == [False, True, False]
    assert batch.final_obs[1].tolist() == (obs[4, 0] + 100).tolist()
    tracker = deeprl.EpisodeTracker(2)
    run = pg._Run(tracker, 0.0)
    pg._track(run, ro)
    assert tracker.returns == [2.0, 2.0, 5.0] and run.steps == 10  # discarded step counted


class RandomLengthEnvs:
    """A vector env with next-step autoreset whose episode lengths are i.i.d. draws.

    Lengths are 2 or 40 with probability 1/2 each (mean 21); the observation is the step index
    within the episode, every reward is 1, and episodes end by termination.
    """

    LENGTHS = np.array([2, 40])

    def __init__(self, num_envs: int, seed: int):
        self.num_envs = num_envs
        self.rng = np.random.default_rng(seed)
        self.lengths: list[list[int]] = [[] for _ in range(num_envs)]

    def _start(self, i: int) -> None:
        self.lengths[i].append(int(self.rng.choice(self.LENGTHS)))
        self.t[i] = 0

    def reset(self):
        self.t = np.zeros(self.num_envs, dtype=int)
        self.lengths = [[] for _ in range(self.num_envs)]
        for i in range(self.num_envs):
            self._start(i)
        self.pending = np.zeros(self.num_envs, dtype=bool)
        return self.t[:, None].astype(np.float32), {}

    def step(self, actions):
        assert len(actions) == self.num_envs
        rewards, done = np.ones(self.num_envs), np.zeros(self.num_envs, dtype=bool)
        for i in range(self.num_envs):
            if self.pending[i]:  # the autoreset step: no transition, reward 0
                self._start(i)
                rewards[i] = 0.0
                continue
            self.t[i] += 1
            done[i] = self.t[i] == self.lengths[i][-1]
        self.pending = done.copy()
        return (self.t[:, None].astype(np.float32), rewards, done,
                np.zeros(self.num_envs, dtype=bool), {})


def _old_keep_rule(lengths: list[list[int]]) -> list[int]:
    """The rule pg.train used before: run every env until each has finished one episode, keep
    every episode finished by then (each env's episodes run back to back, one autoreset step
    between them)."""
    ends = [np.cumsum(np.array(ls) + 1) - 1 for ls in lengths]  # the step each episode ends
    stop = max(e[0] for e in ends)
    return [int(length) for ls, e in zip(lengths, ends) for length, end in zip(ls, e)
            if end <= stop]


def test_collect_episodes_keeps_an_unbiased_sample_of_episode_lengths():
    envs = RandomLengthEnvs(8, seed=0)
    act = lambda obs: np.zeros(len(obs), dtype=int)
    true_mean, true_std = 21.0, 19.0
    new, old, n_batches = [], [], 300
    for _ in range(n_batches):
        ro = pg.collect_episodes(envs, act, episodes_per_env=2)
        batch = pg._split_episodes(ro, "cpu")
        kept = batch.mask.sum(1).long().tolist()
        # exactly the first two episodes of every env, in order, whatever the others do
        assert sorted(kept) == sorted(length for ls in envs.lengths for length in ls[:2])
        assert (ro["keep"] <= ro["valid"]).all() and ro["keep"].sum() == sum(kept)
        new += kept
        old += _old_keep_rule(envs.lengths)
    se = true_std / np.sqrt(len(new))
    assert len(new) == n_batches * 16
    assert abs(np.mean(new) - true_mean) < 4 * se  # unbiased: 21 within ~1.4 steps
    assert np.mean(old) < true_mean - 10 * se  # the old rule prefers short episodes
    with pytest.raises(ValueError, match="episodes_per_env"):
        pg.collect_episodes(envs, act, episodes_per_env=0)


def test_episodes_to_solve():
    r = [10.0] * 5 + [500.0] * 20
    assert pg.episodes_to_solve(r, 480.0) == 25
    assert pg.episodes_to_solve(r, 475.0) == 24  # (10 + 19 * 500) / 20 = 475.5
    assert pg.episodes_to_solve(r, 475.0, window=5) == 10
    assert pg.episodes_to_solve(r[:10], 475.0) is None
    assert pg.episodes_to_solve([1.0] * 30, 475.0) is None


# ---- bad input --------------------------------------------------------------------------------

def test_bad_inputs():
    with pytest.raises(TypeError, match="unknown REINFORCE hyperparameter.*'lr_policy'"):
        pg.train(progress=False, lr_policy=0.1)
    with pytest.raises(TypeError, match="REINFORCE needs a Discrete space, got Box"):
        pg.train("Pendulum-v1", progress=False)
    with pytest.raises(ValueError, match="gamma must lie in"):
        pg.make_config(gamma=1.5)
    with pytest.raises(ValueError, match="baseline must be one of"):
        pg.make_config(baseline="mean")
    with pytest.raises(ValueError, match="action must have shape"):
        pg.score_function(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match="torch tensors"):
        pg.score_function(np.zeros(2), torch.tensor(0))
    with pytest.raises(ValueError, match="must both be"):
        pg.reinforce_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="mask has shape"):
        pg.reinforce_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(3, 2))
    with pytest.raises(ValueError, match="shape \\[batch, time\\]"):
        pg.total_return(torch.zeros(3))
    with pytest.raises(ValueError, match="must share N"):
        pg.optimal_baseline(torch.zeros(3, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="sum to 1"):
        pg.TwoStepMDP(np.array([[0.5, 0.4], [0.3, 0.7]]), np.zeros(2), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="r0 must be"):
        pg.TwoStepMDP(np.array([[0.5, 0.5]]), np.zeros(2), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="shape \\[A, S\\]"):
        pg.TwoStepMDP(np.array([0.5, 0.5]), np.zeros(2), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="theta must be a tensor of shape \\(3, 2\\)"):
        pg.exact_objective(torch.zeros(2, 2), pg.toy_mdp())
    with pytest.raises(ValueError, match="weights must have shape"):
        traj = pg.enumerate_trajectories(pg.toy_mdp())
        pg.per_sample_gradients(THETA, traj, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="baseline must be 'none' or 'leave_one_out'"):
        pg.bandit_reinforce(torch.ones(3), 2, 2, 2, 0.1, baseline="mean")
    with pytest.raises(ValueError, match="batch_size >= 2"):
        pg.bandit_reinforce(torch.ones(3), 2, 2, 1, 0.1, baseline="leave_one_out")
    with pytest.raises(ValueError, match="n must be a positive integer"):
        pg.sample_trajectories(THETA, pg.toy_mdp(), 0)


def test_the_deterministic_return_is_piecewise_constant():
    """C-016: along a line in weight space the return of a deterministic policy is a staircase."""
    alphas = np.linspace(-0.1, 0.15, 251)
    w = np.array([0.0, 0.0, 1.0, 0.0]) + alphas[:, None] * np.array([0.0, 0.0, 0.0, 1.0])
    det = pg.linear_policy_returns(w, stochastic=False, start_state=[0.02, 0.01, 0.03, -0.02])
    assert np.all(det == np.round(det)) and 3 <= len(np.unique(det)) <= 30
    assert np.mean(np.diff(det) == 0) > 0.9  # finite differences are 0 almost everywhere
    assert det[0] < 50 and det[-1] == 500
    stoch = pg.linear_policy_returns(np.repeat(w[::50], 16, axis=0), stochastic=True, seed=1)
    assert stoch.shape == (96,) and np.all(stoch >= 1)
    with pytest.raises(ValueError, match="temperature"):
        pg.linear_policy_returns(w, stochastic=True, temperature=0.0)


# ---- pg.update against the closed-form score, and the train hooks ---------------------------

def _linear_setup(truncated=False, **overrides):
    """Linear policy and value (no bias) on a hand-made batch of 3 episodes, plain SGD."""
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([4, 2, 5])
    mask = (torch.arange(5)[None, :] < lengths[:, None]).float()
    obs = torch.randn(3, 5, 3, generator=g, dtype=torch.float64) * mask[..., None]
    actions = torch.randint(0, 2, (3, 5), generator=g) * mask.long()
    rewards = (1.0 + torch.randn(3, 5, generator=g, dtype=torch.float64)) * mask
    trunc = torch.tensor([False, truncated, False])
    batch = pg.EpisodeBatch(obs, actions, rewards, mask.double(), trunc,
                            torch.randn(3, 3, generator=g, dtype=torch.float64))
    policy = torch.nn.Linear(3, 2, bias=False).double()
    value = torch.nn.Linear(3, 1, bias=False).double()
    opts = (torch.optim.SGD(policy.parameters(), lr=0.1),
            torch.optim.SGD(value.parameters(), lr=0.1))
    cfg = pg.make_config(max_grad_norm=1e9, gamma=0.9, **overrides)
    return policy, value, opts, batch, cfg


def _returns_by_hand(batch, value, gamma, bootstrap):
    r = batch.rewards.numpy().copy()
    out = np.zeros_like(r)
    for b in range(r.shape[0]):
        n = int(batch.mask[b].sum())
        g = float(value(batch.final_obs[b]).detach()) if bootstrap and batch.truncated[b] else 0.0
        for t in range(n - 1, -1, -1):
            g = r[b, t] + gamma * g
            out[b, t] = g
    return out


@pytest.mark.parametrize("truncated", [False, True])
def test_update_is_the_reinforce_estimate_built_from_the_softmax_score(truncated):
    """Policy step = lr * (1/B) sum_bt G_bt (onehot - pi) obs^T; value step = the regression."""
    policy, value, opts, batch, cfg = _linear_setup(truncated, baseline="none",
                                                    normalize_advantages=False)
    w0 = policy.weight.detach().clone()
    G = _returns_by_hand(batch, value, 0.9, bootstrap=True)
    stats = pg.update(policy, value, opts, batch, cfg)
    pi = torch.softmax(batch.obs @ w0.T, -1).numpy()
    score = np.eye(2)[batch.actions.numpy()] - pi  # [B, T, A]
    m = batch.mask.numpy()
    grad = np.einsum("bt,bta,bto->ao", m * G, score, batch.obs.numpy()) / 3
    np.testing.assert_allclose(policy.weight.detach().numpy() - w0.numpy(), 0.1 * grad,
                               atol=1e-12)
    assert stats["value_loss"] == 0.0 and set(stats) == set(pg.STATS_KEYS)


def test_update_value_steps_regress_on_the_bootstrapped_returns_without_policy_gradient():
    policy, value, opts, batch, cfg = _linear_setup(True, value_steps=1)
    u0 = value.weight.detach().clone()
    G = _returns_by_hand(batch, value, 0.9, bootstrap=True)
    calls = []
    value.weight.register_hook(lambda g: calls.append(1))
    pg.update(policy, value, opts, batch, cfg)
    assert len(calls) == 1  # only the value step reached V: the baseline is detached
    obs, m = batch.obs.numpy(), batch.mask.numpy()
    err = (obs @ u0.numpy().T)[..., 0] - G  # V(s_t) - G_t
    grad = np.einsum("bt,bto->o", m * err, obs) / m.sum()
    np.testing.assert_allclose(value.weight.detach().numpy()[0] - u0.numpy()[0], -0.1 * grad,
                               atol=1e-12)


def test_train_with_the_package_functions_as_hooks_is_the_same_run():
    kw = dict(seed=2, progress=False, total_steps=2500, stop_when_solved=False)
    calls = []

    def update_fn(policy, value, optimizers, batch, cfg):
        calls.append(1)
        return pg.update(policy, value, optimizers, batch, cfg)

    a = pg.train(**kw)
    b = pg.train(**kw, collect_fn=pg.collect_episodes, update_fn=update_fn)
    assert calls and a.episode_returns == b.episode_returns and a.history == b.history
    for p, q in zip(a.act.net.parameters(), b.act.net.parameters()):
        assert torch.equal(p, q)


def test_train_hooks_reject_bad_inputs():
    with pytest.raises(TypeError, match="collect_fn must be a function"):
        pg.train(progress=False, collect_fn="mine")
    with pytest.raises(ValueError, match="not both"):
        pg.train(progress=False, update_fn=pg.update, loss_fn=lambda *a: 0.0)
    drop_keep = lambda envs, act, k: {key: v for key, v in pg.collect_episodes(
        envs, act, k).items() if key != "keep"}
    with pytest.raises(ValueError, match=r"lacks the keys \['keep'\]"):
        pg.train(progress=False, total_steps=500, collect_fn=drop_keep)
    with pytest.raises(ValueError, match="must return a dict with the keys"):
        pg.train(progress=False, total_steps=500, update_fn=lambda *a: 0.5)


def test_check_rollout_names_the_bad_shape():
    ro = {k: np.zeros((5, 2)) for k in pg.ROLLOUT_KEYS}
    ro["obs"] = ro["next_obs"] = np.zeros((5, 2, 4))
    assert pg.check_rollout(ro, 2)["obs"].shape == (5, 2, 4)
    with pytest.raises(TypeError, match="must be a dict"):
        pg.check_rollout([1, 2], 2)
    with pytest.raises(ValueError, match=r"\[T, num_envs=3\]"):
        pg.check_rollout(ro, 3)
    with pytest.raises(ValueError, match="rollout\\['keep'\\] has shape"):
        pg.check_rollout({**ro, "keep": np.zeros((4, 2))}, 2)
