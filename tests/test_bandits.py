"""Unit tests for rlcourse.bandits: every formula against an independent computation."""

import math

import numpy as np
import pytest

from rlcourse import bandits as B

# ---- value estimates ---------------------------------------------------------------------------


def test_incremental_mean_equals_sample_mean():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(50, 3))
    q = np.zeros(3)
    for n, r in enumerate(rewards, start=1):
        q = B.incremental_mean(q, n, r)
        np.testing.assert_allclose(q, rewards[:n].mean(axis=0), atol=1e-12)


def test_incremental_mean_rejects_n_below_one():
    with pytest.raises(ValueError, match="must be >= 1"):
        B.incremental_mean(0.0, 0, 1.0)


def test_constant_step_is_exponential_recency_weighted_average():
    rng = np.random.default_rng(1)
    alpha, q1, rewards = 0.2, 3.0, rng.normal(size=30)
    q = q1
    for r in rewards:
        q = B.constant_step_update(q, r, alpha)
    n = len(rewards)
    weights = alpha * (1 - alpha) ** (n - 1 - np.arange(n))
    closed_form = (1 - alpha) ** n * q1 + np.sum(weights * rewards)
    assert math.isclose(float(q), closed_form, rel_tol=1e-12)
    assert math.isclose(weights.sum() + (1 - alpha) ** n, 1.0)  # weights sum to one


def test_constant_step_rejects_bad_step():
    with pytest.raises(ValueError, match="step_size"):
        B.constant_step_update(0.0, 1.0, 0.0)


# ---- action probabilities ----------------------------------------------------------------------


def test_epsilon_greedy_w06():
    p = B.epsilon_greedy_probs(np.array([0.1, 0.7, 0.3, 0.2]), 0.1)
    np.testing.assert_allclose(p, [0.025, 0.925, 0.025, 0.025])


def test_epsilon_greedy_matches_coin_flip_simulation():
    """Brute force: flip an epsilon coin, explore uniformly or take the (tie-broken) argmax."""
    rng = np.random.default_rng(2)
    q, eps, n = np.array([1.0, 3.0, 3.0, 0.0]), 0.3, 200_000
    explore = rng.random(n) < eps
    greedy = rng.choice(np.flatnonzero(q == q.max()), size=n)
    acts = np.where(explore, rng.integers(0, 4, size=n), greedy)
    freq = np.bincount(acts, minlength=4) / n
    np.testing.assert_allclose(freq, B.epsilon_greedy_probs(q, eps), atol=0.005)


def test_epsilon_greedy_batch_and_limits():
    q = np.array([[0.0, 1.0, 1.0], [5.0, 1.0, 2.0]])
    p = B.epsilon_greedy_probs(q, 0.0)
    np.testing.assert_allclose(p, [[0, 0.5, 0.5], [1, 0, 0]])
    np.testing.assert_allclose(B.epsilon_greedy_probs(q, 1.0), np.full((2, 3), 1 / 3))
    np.testing.assert_allclose(B.epsilon_greedy_probs(q, 0.37).sum(axis=1), 1.0)


@pytest.mark.parametrize("eps", [-0.1, 1.5])
def test_epsilon_greedy_rejects_bad_epsilon(eps):
    with pytest.raises(ValueError, match="epsilon"):
        B.epsilon_greedy_probs(np.zeros(3), eps)


def test_epsilon_greedy_rejects_no_arms():
    with pytest.raises(ValueError, match="at least one arm"):
        B.epsilon_greedy_probs(np.zeros((2, 0)), 0.1)


def test_ucb_scores_formula_and_untried_arms():
    q, n = np.array([1.0, 0.5, 0.0]), np.array([4.0, 1.0, 0.0])
    s = B.ucb_scores(q, n, 9, 1.5)
    assert s[0] == pytest.approx(1.0 + 1.5 * math.sqrt(math.log(9) / 4))
    assert s[1] == pytest.approx(0.5 + 1.5 * math.sqrt(math.log(9)))
    assert s[2] == np.inf
    np.testing.assert_allclose(B.ucb_scores(q[:2], n[:2], 1, 3.0), q[:2])  # ln 1 = 0


def test_ucb_scores_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        B.ucb_scores(np.zeros(3), np.zeros(2), 2, 1.0)
    with pytest.raises(ValueError, match="t must be"):
        B.ucb_scores(np.zeros(2), np.ones(2), 0, 1.0)
    with pytest.raises(ValueError, match="c must lie"):
        B.ucb_scores(np.zeros(2), np.ones(2), 3, -1.0)


def test_softmax_e54_vector_and_stability():
    np.testing.assert_allclose(B.softmax(np.array([-1.0, 0.2, 1.0])), [0.085, 0.284, 0.631],
                               atol=5e-4)
    big = B.softmax(np.array([[1000.0, 1001.0], [0.0, 1.0]]))
    np.testing.assert_allclose(big[0], big[1])
    np.testing.assert_allclose(B.softmax(np.array([2.0, 3.0]) + 7.0), B.softmax([2.0, 3.0]))


def test_boltzmann_temperature_limits():
    q = np.array([1.0, 2.0, 0.5])
    np.testing.assert_allclose(B.boltzmann_probs(q, 1e-3), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(B.boltzmann_probs(q, 1e6), np.full(3, 1 / 3), atol=1e-5)
    with pytest.raises(ValueError, match="tau"):
        B.boltzmann_probs(q, 0.0)


# ---- gradient bandit -------------------------------------------------------------------------


def _expected_update(h, q_star, baseline, step):
    """E over A ~ pi of the gradient-bandit update, by enumerating every action."""
    k = h.shape[0]
    pi = B.softmax(h)
    total = np.zeros(k)
    for a in range(k):
        new = B.gradient_bandit_update(h[None], np.array([a]), np.array([q_star[a]]),
                                       np.array([baseline]), step)[0]
        total += pi[a] * (new - h)
    return total


def test_gradient_bandit_is_stochastic_gradient_ascent():
    """E[update] = step * dE[R]/dH, checked against central finite differences."""
    rng = np.random.default_rng(3)
    h, q_star = rng.normal(size=4), rng.normal(size=4)
    expected_reward = lambda hh: float(B.softmax(hh) @ q_star)
    eps = 1e-6
    fd = np.array([(expected_reward(h + eps * e) - expected_reward(h - eps * e)) / (2 * eps)
                   for e in np.eye(4)])
    for baseline in (0.0, 1.7, -3.0):  # the baseline does not change the expected update
        np.testing.assert_allclose(_expected_update(h, q_star, baseline, 0.1), 0.1 * fd,
                                   atol=1e-8)


def test_gradient_bandit_update_keeps_sum_and_rejects_bad_actions():
    h = np.array([[0.3, -0.2, 0.0]])
    new = B.gradient_bandit_update(h, np.array([2]), np.array([1.0]), np.array([0.2]), 0.5)
    assert new.sum() == pytest.approx(h.sum())  # sum of (1[a=A] - pi(a)) is 0
    assert new[0, 2] > h[0, 2]
    with pytest.raises(ValueError, match="actions must lie"):
        B.gradient_bandit_update(h, np.array([3]), np.array([1.0]), 0.0, 0.1)
    with pytest.raises(ValueError, match="one per run"):
        B.gradient_bandit_update(h, np.array([0.5]), np.array([1.0]), 0.0, 0.1)


# ---- posteriors --------------------------------------------------------------------------------


def test_beta_posterior_matches_grid_bayes():
    """Beta(a0+s, b0+f) has the same mean and variance as prior x likelihood on a grid."""
    rng = np.random.default_rng(4)
    a0, b0 = 2.0, 3.0
    rewards = (rng.random(25) < 0.6).astype(float)
    alpha, beta = np.array([[a0, 1.0]]), np.array([[b0, 1.0]])
    for r in rewards:
        alpha, beta = B.beta_posterior_update(alpha, beta, np.array([0]), np.array([r]))
    p = np.linspace(1e-6, 1 - 1e-6, 200_001)
    s, f = rewards.sum(), len(rewards) - rewards.sum()
    log_post = (a0 - 1 + s) * np.log(p) + (b0 - 1 + f) * np.log1p(-p)
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    mean, var = np.sum(w * p), np.sum(w * p**2) - np.sum(w * p) ** 2
    a, b = alpha[0, 0], beta[0, 0]
    assert mean == pytest.approx(a / (a + b), abs=1e-6)
    assert var == pytest.approx(a * b / ((a + b) ** 2 * (a + b + 1)), rel=1e-4)
    assert (alpha[0, 1], beta[0, 1]) == (1.0, 1.0)


def test_beta_posterior_does_not_modify_inputs_and_checks_rewards():
    alpha, beta = np.ones((1, 2)), np.ones((1, 2))
    B.beta_posterior_update(alpha, beta, np.array([1]), np.array([1.0]))
    assert alpha.sum() == 2 and beta.sum() == 2
    with pytest.raises(ValueError, match="lie in"):
        B.beta_posterior_update(alpha, beta, np.array([1]), np.array([2.0]))


def test_gaussian_posterior_matches_grid_bayes():
    rng = np.random.default_rng(5)
    m0, v0, noise = 0.5, 2.0, 0.7
    x = rng.normal(1.2, math.sqrt(noise), size=8)
    mean, var = B.gaussian_posterior(np.array([len(x)]), np.array([x.sum()]), m0, v0, noise)
    mu = np.linspace(-10, 10, 400_001)
    log_post = -0.5 * (mu - m0) ** 2 / v0 - 0.5 * ((x[:, None] - mu) ** 2).sum(0) / noise
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    assert mean[0] == pytest.approx(np.sum(w * mu), abs=1e-6)
    assert var[0] == pytest.approx(np.sum(w * mu**2) - np.sum(w * mu) ** 2, rel=1e-4)


def test_beta_pdf_integrates_to_one_with_the_right_mean():
    x = np.linspace(1e-7, 1 - 1e-7, 400_001)
    dens = B.beta_pdf(x, 3.0, 5.0)
    dx = x[1] - x[0]
    assert np.sum(dens) * dx == pytest.approx(1.0, abs=1e-5)
    assert np.sum(x * dens) * dx == pytest.approx(3 / 8, abs=1e-5)
    np.testing.assert_allclose(B.beta_pdf(x[::1000], 1.0, 1.0), 1.0)
    with pytest.raises(ValueError, match="> 0"):
        B.beta_pdf(0.5, 0.0, 1.0)


def test_expected_max_normal():
    assert B.expected_max_normal(1) == pytest.approx(0.0, abs=1e-9)
    assert B.expected_max_normal(2) == pytest.approx(1 / math.sqrt(math.pi), abs=1e-9)
    assert B.expected_max_normal(10) == pytest.approx(1.5388, abs=1e-4)
    mc = np.random.default_rng(6).standard_normal((200_000, 10)).max(axis=1).mean()
    assert B.expected_max_normal(10) == pytest.approx(mc, abs=0.01)
    with pytest.raises(ValueError, match="positive integer"):
        B.expected_max_normal(0)


# ---- samplers ----------------------------------------------------------------------------------


def test_sample_categorical_frequencies():
    rng = np.random.default_rng(7)
    probs = np.tile([0.1, 0.0, 0.6, 0.3], (100_000, 1))
    acts = B.sample_categorical(probs, rng)
    np.testing.assert_allclose(np.bincount(acts, minlength=4) / len(acts), probs[0], atol=0.005)
    with pytest.raises(ValueError, match="shape"):
        B.sample_categorical(probs[0], rng)


def test_argmax_random_tiebreak_is_uniform_over_ties():
    rng = np.random.default_rng(8)
    values = np.tile([1.0, 5.0, 2.0, 5.0, 5.0], (30_000, 1))
    acts = B.argmax_random_tiebreak(values, rng)
    freq = np.bincount(acts, minlength=5) / len(acts)
    np.testing.assert_allclose(freq, [0, 1 / 3, 0, 1 / 3, 1 / 3], atol=0.01)
    inf = np.array([[0.0, np.inf, np.inf]] * 10_000)
    assert set(B.argmax_random_tiebreak(inf, rng)) == {1, 2}


# ---- environments ------------------------------------------------------------------------------


def test_problem_validation():
    with pytest.raises(ValueError, match="kind"):
        B.BanditProblem(np.zeros((1, 2)), "poisson")
    with pytest.raises(ValueError, match="lie in"):
        B.BanditProblem(np.array([[0.5, 1.5]]), "bernoulli")
    with pytest.raises(ValueError, match="random walk"):
        B.BanditProblem(np.array([[0.5]]), "bernoulli", walk_std=0.1)
    with pytest.raises(ValueError, match=">= 0"):
        B.BanditProblem(np.zeros((1, 2)), change_every=-1)
    with pytest.raises(ValueError, match="2 dimension"):
        B.BanditProblem(np.zeros(3))
    with pytest.raises(TypeError, match="positive integer"):
        B.gaussian_testbed(2.5, 3, np.random.default_rng(0))


def test_pull_has_the_right_distribution():
    rng = np.random.default_rng(9)
    g = B.gaussian_testbed(50_000, 3, rng, mean=4.0, noise_std=2.0)
    assert g.n_runs == 50_000 and g.n_arms == 3
    assert g.means.mean() == pytest.approx(4.0, abs=0.02)
    r = g.pull(g.means, np.zeros(50_000, dtype=int), rng)
    assert np.std(r - g.means[:, 0]) == pytest.approx(2.0, rel=0.02)
    b = B.bernoulli_bandit([0.2, 0.7], 100_000)
    rb = b.pull(b.means, np.ones(100_000, dtype=int), rng)
    assert set(np.unique(rb)) == {0.0, 1.0}
    assert rb.mean() == pytest.approx(0.7, abs=0.01)


def test_advance_random_walk_and_changes():
    rng = np.random.default_rng(10)
    walk = B.BanditProblem(np.zeros((20_000, 2)), walk_std=0.1)
    m = walk.advance(walk.means, 1, rng)
    assert m.std() == pytest.approx(0.1, rel=0.03)
    sw = B.BanditProblem(np.full((3, 4), 0.5), "bernoulli", change_every=5)
    assert np.array_equal(sw.advance(sw.means, 4, rng), sw.means)
    changed = sw.advance(sw.means, 5, rng)
    assert not np.allclose(changed, 0.5) and changed.min() >= 0 and changed.max() <= 1


# ---- agents and the testbed loop --------------------------------------------------------------


def test_regret_decomposes_over_arms():
    """Cumulative pseudo-regret = sum_a gap_a * N_a(T) (the regret identity)."""
    rng = np.random.default_rng(11)
    prob = B.gaussian_testbed(50, 5, rng)
    res = B.run_testbed(prob, B.EpsilonGreedy(0.1), 200, rng)
    gaps = prob.means.max(axis=1, keepdims=True) - prob.means
    counts = np.stack([(res.actions == a).sum(axis=1) for a in range(5)], axis=1)
    np.testing.assert_allclose(res.cumulative_regret()[:, -1], (gaps * counts).sum(axis=1))
    assert np.array_equal(res.optimal, res.regret == 0)
    np.testing.assert_allclose(res.best[:, 0], prob.means.max(axis=1))
    assert res.rewards.shape == res.actions.shape == (50, 200)


def test_epsilon_one_is_uniform_and_schedules_work():
    rng = np.random.default_rng(12)
    prob = B.gaussian_testbed(500, 4, rng)
    res = B.run_testbed(prob, B.EpsilonGreedy(1.0), 100, rng)
    freq = np.bincount(res.actions.ravel().astype(int), minlength=4) / res.actions.size
    np.testing.assert_allclose(freq, 0.25, atol=0.01)
    assert B.decaying_epsilon(1) == 1.0 and B.decaying_epsilon(40) == 0.5
    assert B.decaying_epsilon(10**6) == 0.01
    res = B.run_testbed(prob, B.EpsilonGreedy(B.decaying_epsilon, step_size=0.1), 300, rng,
                        progress=True)
    assert res.optimal[:, -50:].mean() > 0.5
    with pytest.raises(ValueError, match="epsilon"):
        B.EpsilonGreedy(1.2)
    with pytest.raises(ValueError, match="step_size"):
        B.EpsilonGreedy(0.1, step_size=1.5)


def test_ucb_tries_every_arm_first():
    rng = np.random.default_rng(13)
    prob = B.gaussian_testbed(100, 6, rng)
    res = B.run_testbed(prob, B.UCB(c=1.0), 6, rng)
    assert all(sorted(row) == list(range(6)) for row in res.actions.astype(int))


def test_boltzmann_and_gaussian_ts_learn():
    rng = np.random.default_rng(14)
    prob = B.gaussian_testbed(300, 5, rng)
    for agent in (B.Boltzmann(0.2), B.ThompsonGaussian(), B.GradientBandit(0.1)):
        res = B.run_testbed(prob, agent, 300, rng)
        assert res.optimal[:, -50:].mean() > 0.6, type(agent).__name__
    with pytest.raises(ValueError, match="prior_var"):
        B.ThompsonGaussian(prior_var=0.0)


def test_gradient_bandit_with_baseline_is_shift_invariant():
    prob = B.gaussian_testbed(200, 5, np.random.default_rng(15))
    shifted = B.BanditProblem(prob.means + 4.0)
    runs = {}
    for name, p, base in [("b", prob, True), ("b+4", shifted, True), ("nb", prob, False),
                          ("nb+4", shifted, False)]:
        runs[name] = B.run_testbed(p, B.GradientBandit(0.1, baseline=base), 200,
                                   np.random.default_rng(16))
    assert np.mean(runs["b"].actions == runs["b+4"].actions) > 0.999
    assert np.mean(runs["nb"].actions == runs["nb+4"].actions) < 0.9
    assert runs["b+4"].optimal.mean() > runs["nb+4"].optimal.mean() + 0.1


def test_sliding_window_ts_counts_only_the_window():
    rng = np.random.default_rng(17)
    agent = B.ThompsonBeta(prior=(2.0, 1.0), window=7)
    agent.reset(3, 4)
    acts, rews = [], []
    for t in range(1, 20):
        a = agent.select(t, rng)
        r = (rng.random(3) < 0.5).astype(float)
        agent.update(a, r)
        acts.append(a)
        rews.append(r)
    acts, rews = np.array(acts[-7:]), np.array(rews[-7:])
    for run in range(3):
        for arm in range(4):
            mask = acts[:, run] == arm
            assert agent.alpha[run, arm] == pytest.approx(2.0 + rews[mask, run].sum())
            assert agent.beta[run, arm] == pytest.approx(1.0 + (1 - rews[mask, run]).sum())


def test_discounted_ts_is_a_discounted_count():
    agent = B.ThompsonBeta(discount=0.9)
    agent.reset(1, 2)
    rewards = [1.0, 0.0, 1.0, 1.0]
    for r in rewards:
        agent.update(np.array([0]), np.array([r]))
    w = 0.9 ** np.arange(len(rewards))[::-1]
    assert agent.alpha[0, 0] == pytest.approx(1.0 + np.sum(w * rewards))
    assert agent.beta[0, 0] == pytest.approx(1.0 + np.sum(w * (1 - np.array(rewards))))
    assert agent.alpha[0, 1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="prior"):
        B.ThompsonBeta(prior=(0.0, 1.0))
    with pytest.raises(ValueError, match="discount"):
        B.ThompsonBeta(discount=0.0)


def test_thompson_beats_uniform_on_bernoulli_and_nonstationary_loop():
    rng = np.random.default_rng(18)
    prob = B.bernoulli_bandit([0.2, 0.5, 0.8], 200)
    res = B.run_testbed(prob, B.ThompsonBeta(), 300, rng)
    assert res.optimal[:, -100:].mean() > 0.9
    ns = B.BanditProblem(rng.random((100, 3)), "bernoulli", change_every=50)
    res = B.run_testbed(ns, B.ThompsonBeta(window=30), 150, rng)
    assert res.best.shape == (100, 150)
    assert not np.allclose(res.best[:, 0], res.best[:, 100])  # the means really changed
    assert np.all(res.regret >= 0) and np.array_equal(res.optimal, res.regret == 0)
    with pytest.raises(TypeError, match="positive integer"):
        B.run_testbed(prob, B.ThompsonBeta(), 0.5, rng)


# ---- LinUCB ------------------------------------------------------------------------------------


def test_sherman_morrison_matches_inverse():
    rng = np.random.default_rng(19)
    m = rng.normal(size=(2, 3, 4, 4))
    a = np.eye(4) + np.einsum("...ij,...kj->...ik", m, m)
    x = rng.normal(size=(2, 3, 4))
    want = np.linalg.inv(a + np.einsum("...i,...j->...ij", x, x))
    np.testing.assert_allclose(B.sherman_morrison(np.linalg.inv(a), x), want, atol=1e-10)


def test_linucb_scores_match_a_loop():
    rng = np.random.default_rng(20)
    runs, k, d = 2, 3, 4
    m = rng.normal(size=(runs, k, d, d))
    a_mat = np.eye(d) + np.einsum("rkij,rklj->rkil", m, m)
    b, x = rng.normal(size=(runs, k, d)), rng.normal(size=(runs, d))
    got = B.linucb_scores(np.linalg.inv(a_mat), b, x, 0.7)
    for r in range(runs):
        for a in range(k):
            theta = np.linalg.solve(a_mat[r, a], b[r, a])
            width = x[r] @ np.linalg.solve(a_mat[r, a], x[r])
            assert got[r, a] == pytest.approx(theta @ x[r] + 0.7 * math.sqrt(width))


def test_linucb_beats_context_blind_ucb():
    regret = B.run_linucb(40, 4, 3, 300, np.random.default_rng(21))
    assert set(regret) == {"LinUCB", "UCB1 (ignores x)"}
    assert regret["LinUCB"].shape == (40, 300)
    assert regret["LinUCB"][:, -100:].mean() < 0.5 * regret["UCB1 (ignores x)"][:, -100:].mean()
