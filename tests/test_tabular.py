"""Unit tests for rlcourse.tabular: every formula against an independent computation."""

import gymnasium as gym
import matplotlib
import numpy as np
import pytest

from rlcourse import tabular as tb
from rlcourse.envs import GridWorld
from rlcourse.mdp import TabularMDP, evaluate_policy, q_from_v, value_iteration

matplotlib.use("Agg")

MAZE = ("S.......", ".######.", "........", ".######.", "........", "#######.", "G.......")


def _random_mdp(seed=0, n_s=6, n_a=3, gamma=0.9):
    rng = np.random.default_rng(seed)
    P = np.zeros((n_s, n_a, n_s))
    P[:-1] = rng.dirichlet(np.ones(n_s), size=(n_s - 1, n_a))
    P[-1, :, -1] = 1.0
    R = rng.normal(size=(n_s, n_a))
    R[-1] = 0.0
    return TabularMDP(P, R, gamma, np.arange(n_s) == n_s - 1)


# ---- TD error, returns, targets --------------------------------------------------------------

def test_td_error_scalar_array_and_terminal():
    assert tb.td_error(1.0, 0.5, 2.0, False, 0.9) == pytest.approx(2.3)
    assert tb.td_error(1.0, 0.5, 2.0, True, 0.9) == pytest.approx(0.5)
    r, v, v2 = np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([2.0, 3.0])
    np.testing.assert_allclose(tb.td_error(r, v, v2, np.array([False, True]), 0.5), [0.0, -1.0])


def test_returns_to_go_matches_direct_sums():
    r = np.random.default_rng(1).normal(size=9)
    direct = [sum(0.8**k * r[t + k] for k in range(9 - t)) for t in range(9)]
    np.testing.assert_allclose(tb.returns_to_go(r, 0.8), direct)


def test_n_step_return_limits_and_brute_force():
    rng = np.random.default_rng(2)
    r, V = rng.normal(size=6), rng.normal(size=7)  # V[6]: terminal, unused
    g_mc = tb.returns_to_go(r, 0.9)
    for t in range(6):
        for n in range(1, 9):
            k = min(n, 6 - t)
            ended = t + n >= 6
            got = tb.n_step_return(r[t:t + k], V[t + k], ended, 0.9)
            brute = sum(0.9**i * r[t + i] for i in range(k)) + (0 if ended else 0.9**k * V[t + k])
            assert got == pytest.approx(brute)
            if n >= 6 - t:  # n reaches past the end: the Monte-Carlo return
                assert got == pytest.approx(g_mc[t])
        # n = 1 is the TD(0) target
        assert tb.n_step_return(r[t:t + 1], V[t + 1], t == 5, 0.9) == pytest.approx(
            r[t] + (0 if t == 5 else 0.9 * V[t + 1]))


def test_n_step_return_broadcasts_like_the_sweep():
    rewards = np.ones((4, 3))  # [runs, n]
    boot = np.arange(8.0).reshape(2, 4)  # [alphas, runs]
    got = tb.n_step_return(rewards, boot, np.zeros(4, bool), 0.5)
    np.testing.assert_allclose(got, 1.75 + 0.125 * boot)


def test_n_step_return_rejects_scalar_rewards():
    with pytest.raises(ValueError, match="at least one axis"):
        tb.n_step_return(1.0, 0.0, False, 0.9)


def test_sarsa_and_q_learning_targets():
    q = np.array([1.0, 5.0, 3.0])
    assert tb.sarsa_target(-1.0, q, 2, False, 0.9) == pytest.approx(1.7)
    assert tb.sarsa_target(-1.0, q, 2, True, 0.9) == pytest.approx(-1.0)
    assert tb.q_learning_target(-1.0, q, False, 0.9) == pytest.approx(3.5)
    assert tb.q_learning_target(-1.0, q, True, 0.9) == pytest.approx(-1.0)
    # Q-learning's target equals SARSA's target with the greedy next action
    assert tb.q_learning_target(0.3, q, False, 0.7) == tb.sarsa_target(0.3, q, 1, False, 0.7)


def test_gamma_is_validated():
    with pytest.raises(ValueError, match="gamma"):
        tb.td_error(1.0, 0.0, 0.0, False, 1.5)


# ---- epsilon-greedy ---------------------------------------------------------------------------

def test_epsilon_greedy_probs_and_sampler_agree():
    q = np.array([1.0, 3.0, 3.0, 0.0])
    probs = tb.epsilon_greedy_probs(q, 0.2)
    np.testing.assert_allclose(probs, [0.05, 0.45, 0.45, 0.05])
    rng = np.random.default_rng(0)
    draws = np.bincount([tb.epsilon_greedy(q, 0.2, rng) for _ in range(20_000)], minlength=4)
    np.testing.assert_allclose(draws / 20_000, probs, atol=0.015)
    np.testing.assert_allclose(tb.epsilon_greedy_probs(np.zeros((2, 3)), 0.0).sum(axis=1), 1.0)


def test_epsilon_is_validated():
    with pytest.raises(ValueError, match="epsilon"):
        tb.epsilon_greedy_probs(np.zeros(3), 1.5)


# ---- importance sampling ---------------------------------------------------------------------

def test_importance_weights_values_zero_case_and_support():
    np.testing.assert_allclose(tb.importance_weights([0.5, 0.0], [0.25, 0.0]), [2.0, 0.0])
    with pytest.raises(ValueError, match="support"):
        tb.importance_weights([0.5, 0.5], [1.0, 0.0])
    with pytest.raises(ValueError, match="non-negative"):
        tb.importance_weights([-0.1, 1.1], [0.5, 0.5])


def test_is_identity_and_unbiasedness_by_brute_force():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    q = np.array([0.4, 0.3, 0.2, 0.1])
    f = np.array([3.0, -1.0, 2.0, 0.5])
    w = tb.importance_weights(p, q)
    assert np.sum(q * w * f) == pytest.approx(np.sum(p * f))  # the identity, exactly
    # Exact expectation of the ordinary estimator with N = 2 samples: enumerate all pairs.
    exact = sum(q[i] * q[j] * (w[i] * f[i] + w[j] * f[j]) / 2 for i in range(4) for j in range(4))
    assert exact == pytest.approx(np.sum(p * f))
    # The weighted estimator is biased for finite N (with N = 1 it is E_q[f]).
    weighted_n1 = sum(q[i] * tb.is_estimate(f[i:i + 1], w[i:i + 1], weighted=True)
                      for i in range(4))
    assert weighted_n1 == pytest.approx(np.sum(q * f)) and abs(weighted_n1 - np.sum(p * f)) > 0.1
    # Monte Carlo: many ordinary estimates average to the truth.
    rng = np.random.default_rng(0)
    x = rng.choice(4, p=q, size=(20_000, 10))
    est = tb.is_estimate(f[x], w[x])
    assert abs(est.mean() - np.sum(p * f)) < 4 * est.std() / np.sqrt(est.size)


def test_effective_sample_size():
    assert tb.effective_sample_size(np.ones(7)) == pytest.approx(7.0)
    assert tb.effective_sample_size(np.array([0.0, 5.0, 0.0])) == pytest.approx(1.0)
    # Gaussian shift mu: ESS / N -> 1 / E_q[w^2] = exp(-mu^2)
    rng = np.random.default_rng(1)
    x = rng.normal(0.5, 1.0, size=200_000)
    w = np.exp(-0.5 * x * 0.5 * 2 + 0.5**2 / 2)  # p = N(0,1), q = N(0.5,1)
    assert tb.effective_sample_size(w) / x.size == pytest.approx(np.exp(-0.25), rel=0.02)
    with pytest.raises(ValueError, match="non-negative"):
        tb.effective_sample_size(np.array([1.0, -1.0]))


# ---- shaping ---------------------------------------------------------------------------------

def test_shaped_reward_formula_and_telescoping():
    assert tb.shaped_reward(1.0, -3.0, -2.0, False, 0.9) == pytest.approx(2.2)
    assert tb.shaped_reward(1.0, -3.0, -2.0, True, 0.9) == pytest.approx(4.0)
    rng = np.random.default_rng(3)
    phi, states, g = rng.normal(size=10), rng.integers(0, 10, size=8), 0.9
    term = np.zeros(7, bool)
    term[-1] = True
    extra = tb.shaped_reward(0.0, phi[states[:-1]], phi[states[1:]], term, g)
    assert np.sum(g ** np.arange(7) * extra) == pytest.approx(-phi[states[0]])


@pytest.mark.parametrize("which", ["random", "maze"])
def test_shaping_keeps_argmax_and_shifts_q_by_minus_phi(which):
    if which == "random":
        mdp = _random_mdp()
        phi = np.random.default_rng(5).normal(size=mdp.n_states) * 3
    else:
        P, R, term = GridWorld(MAZE).transition_table()
        mdp = TabularMDP(P, R, 0.99, term)
        phi = -np.nan_to_num(tb.grid_distances(MAZE), posinf=0.0)
    shaped = tb.shape_mdp(mdp, phi)
    Q = q_from_v(mdp, value_iteration(mdp)[0])
    Qs = q_from_v(shaped, value_iteration(shaped)[0])
    live = ~mdp.terminal
    phi0 = np.where(mdp.terminal, 0.0, phi)
    np.testing.assert_allclose(Qs[live], Q[live] - phi0[live, None], atol=1e-7)
    assert np.array_equal(Qs[live].argmax(axis=1), Q[live].argmax(axis=1))


def test_entry_bonus_changes_the_optimal_policy_and_validates():
    P, R, term = GridWorld(MAZE).transition_table()
    mdp = TabularMDP(P, R, 0.99, term)
    bonus = tb.add_entry_bonus(mdp, 35, 1.0)
    assert bonus.R[34, 1] == pytest.approx(mdp.R[34, 1] + 1.0)  # moving right into cell 35
    Qb = q_from_v(bonus, value_iteration(bonus)[0])
    path, _, reached = tb.greedy_rollout(GridWorld(MAZE), Qb, max_steps=60)
    assert not reached and path.count(35) > 10
    with pytest.raises(ValueError, match="cell"):
        tb.add_entry_bonus(mdp, 999, 1.0)
    with pytest.raises(ValueError, match="phi"):
        tb.shape_mdp(mdp, np.zeros(3))


def test_grid_distances():
    d = tb.grid_distances(("S.#", "..G"))
    np.testing.assert_array_equal(d, [3, 2, np.inf, 2, 1, 0])


# ---- the random walk -------------------------------------------------------------------------

@pytest.mark.parametrize("n", [5, 19])
def test_random_walk_closed_form_matches_linear_solve(n):
    walk = tb.random_walk_mdp(n)
    V = evaluate_policy(walk, np.ones((n + 2, 1)))
    np.testing.assert_allclose(V[1:-1], tb.random_walk_values(n), atol=1e-12)


def test_td_fixed_point_is_the_exact_value():
    walk = tb.random_walk_mdp(5)
    V = np.zeros(7)
    V[1:-1] = tb.random_walk_values(5)
    # expected TD error under the true model: R + gamma P V - V = 0 at V = V^pi
    expected_delta = q_from_v(walk, V)[:, 0] - V
    np.testing.assert_allclose(expected_delta, 0.0, atol=1e-12)
    # and sampled TD(0) with 1/N(s) step sizes gets there
    data = tb.sample_random_walks(5, n_episodes=400, n_runs=40, seed=0)
    est = tb.td0_estimates(data, "1/n")[:, -1, 1:-1]
    np.testing.assert_allclose(est.mean(axis=0), tb.random_walk_values(5), atol=0.03)
    assert np.sqrt(((est - tb.random_walk_values(5)) ** 2).mean()) < 0.1


def test_constant_alpha_td_bias_scales_with_alpha():
    data = tb.sample_random_walks(5, n_episodes=300, n_runs=300, seed=4)
    truth = tb.random_walk_values(5)
    bias = {a: (tb.td0_estimates(data, a)[:, -150:, 1:-1].mean(axis=(0, 1)) - truth)[[0, 4]]
            for a in (0.2, 0.1)}
    ratio = np.abs(bias[0.2]) / np.abs(bias[0.1])
    assert np.all(np.abs(bias[0.2]) > 0.05) and np.all((ratio > 1.5) & (ratio < 2.7))


def test_sample_random_walks_structure():
    d = tb.sample_random_walks(5, n_episodes=4, n_runs=3, seed=1)
    assert d.n_runs == 3 and d.terminated.sum(axis=1).tolist() == [4, 4, 4]
    ok = d.valid
    assert np.all((d.states[ok] >= 1) & (d.states[ok] <= 5))
    assert np.all(np.abs(d.next_states[ok] - d.states[ok]) == 1)
    ends = d.next_states[d.terminated]
    assert set(ends.tolist()) <= {0, 6}
    np.testing.assert_array_equal(d.rewards[d.terminated], np.where(ends == 6, 1.0, -1.0))
    assert np.all(d.rewards[~d.terminated] == 0)
    # consecutive steps chain within an episode
    same = ok[:, 1:] & ~d.terminated[:, :-1]
    assert np.all(d.states[:, 1:][same] == d.next_states[:, :-1][same])
    with pytest.raises(TypeError, match="n_runs"):
        tb.sample_random_walks(5, 2, 2.5, seed=0)


def _naive_nstep(episodes, n, alpha, n_states, truth):
    """Sutton & Barto's online n-step TD written with plain loops (n=None: constant-alpha MC)."""
    V = np.zeros(n_states + 2)
    errs = []
    for states, rewards in episodes:
        T = len(states)
        nn = T if n is None else n
        S = list(states) + [None]
        for tau in range(T):
            k = min(nn, T - tau)
            G = sum(rewards[tau + i] for i in range(k))
            if tau + nn < T:
                G += V[S[tau + nn]]
            V[S[tau]] += alpha * (G - V[S[tau]])
        errs.append(np.sqrt(np.mean((V[1:-1] - truth) ** 2)))
    return np.array(errs)


@pytest.mark.parametrize("n", [1, 3, None])
def test_vectorised_sweep_equals_plain_loops(n):
    data = tb.sample_random_walks(7, n_episodes=5, n_runs=3, seed=3)
    alphas = np.array([0.1, 0.4])
    err = tb.nstep_td_sweep(data, n, alphas)
    truth = tb.random_walk_values(7)
    assert err.shape == (2, 3, 6)
    np.testing.assert_allclose(err[:, :, 0], np.sqrt(np.mean(truth**2)))
    for r in range(3):
        for i, a in enumerate(alphas):
            want = _naive_nstep(tb.walk_episodes(data, r), n, a, 7, truth)
            np.testing.assert_allclose(err[i, r, 1:], want, atol=1e-12)


def test_long_n_equals_monte_carlo_and_n1_equals_td0():
    data = tb.sample_random_walks(5, n_episodes=6, n_runs=4, seed=5)
    longest = int(np.bincount(data.episode[data.valid]).max())
    np.testing.assert_allclose(tb.nstep_td_sweep(data, longest, [0.1]),
                               tb.nstep_td_sweep(data, None, [0.1]), atol=1e-12)
    td0 = tb.td0_estimates(data, 0.3)[:, :, 1:-1]
    rms = np.sqrt(((td0 - tb.random_walk_values(5)) ** 2).mean(axis=-1))
    np.testing.assert_allclose(tb.nstep_td_sweep(data, 1, [0.3])[0, :, 1:], rms, atol=1e-12)


def test_sweep_with_discounting_uses_episode_returns():
    data = tb.sample_random_walks(5, n_episodes=3, n_runs=2, seed=6)
    G = tb._episode_returns(data, 0.9)
    for r in range(2):
        _, rewards = tb.walk_episodes(data, r)[0]
        np.testing.assert_allclose(G[r, :len(rewards)], tb.returns_to_go(rewards, 0.9))
    assert tb.nstep_td_sweep(data, None, [0.5], gamma=0.9).shape == (1, 2, 4)


def test_mc_estimates_equal_first_visit_mc():
    data = tb.sample_random_walks(5, n_episodes=8, n_runs=3, seed=7)
    est = tb.mc_estimates(data)
    for r in range(3):
        eps = tb.walk_episodes(data, r)
        for e in (0, 3, 7):
            V, _ = tb.first_visit_mc(eps[:e + 1], 7, 1.0)
            np.testing.assert_allclose(est[r, e], V, atol=1e-12)


def test_first_visit_mc_uses_first_visits_only():
    V, n = tb.first_visit_mc([([0, 1, 0], [1.0, 0.0, 2.0])], 2, 1.0)
    np.testing.assert_allclose(V, [3.0, 2.0])
    np.testing.assert_array_equal(n, [1, 1])
    with pytest.raises(ValueError, match="differ in length"):
        tb.first_visit_mc([([0, 1], [1.0])], 2, 1.0)


def test_td0_validates_alpha():
    data = tb.sample_random_walks(5, 1, 1, seed=0)
    with pytest.raises(ValueError, match="alpha"):
        tb.td0_estimates(data, 0.0)


# ---- control ---------------------------------------------------------------------------------

def test_latest_env_id():
    assert tb.latest_env_id("Taxi").startswith("Taxi-v")
    assert tb.latest_env_id("CliffWalking").startswith("CliffWalking-v")
    with pytest.raises(ValueError, match="no gymnasium environment"):
        tb.latest_env_id("NoSuchEnvironment")


def test_tabular_control_rejects_continuous_spaces_and_bad_arguments():
    with pytest.raises(TypeError, match="Discrete"):
        tb.td_control(gym.make("CartPole-v1"), "sarsa", 1, alpha=0.5, epsilon=0.1, gamma=0.9,
                      seed=0)
    with pytest.raises(TypeError, match="Discrete"):
        tb.greedy_rollout(gym.make("CartPole-v1"), np.zeros((2, 2)))
    cliff = gym.make(tb.latest_env_id("CliffWalking"))
    with pytest.raises(ValueError, match="method"):
        tb.td_control(cliff, "expected", 1, alpha=0.5, epsilon=0.1, gamma=0.9, seed=0)
    with pytest.raises(ValueError, match="alpha"):
        tb.td_control(cliff, "sarsa", 1, alpha=0.0, epsilon=0.1, gamma=0.9, seed=0)


def test_cliff_walking_q_learning_finds_the_13_step_path():
    cliff = gym.make(tb.latest_env_id("CliffWalking"))
    res = tb.td_control(cliff, "q_learning", 150, alpha=0.5, epsilon=0.1, gamma=1.0, seed=0)
    path, ret, reached = tb.greedy_rollout(cliff, res.Q, max_steps=50)
    assert reached and len(path) - 1 == 13 and ret == -13
    assert res.returns.shape == (150,) and res.terminated.all()
    again = tb.td_control(cliff, "q_learning", 150, alpha=0.5, epsilon=0.1, gamma=1.0, seed=0)
    np.testing.assert_array_equal(res.Q, again.Q)  # seeded: reproducible


def test_sarsa_reward_fn_and_target_fn_hooks():
    maze = GridWorld(MAZE)
    calls = []

    def target(r, q_next, a_next, term, g):
        calls.append(a_next)
        return tb.sarsa_target(r, q_next, a_next, term, g)

    res = tb.td_control(maze, "sarsa", 3, alpha=0.5, epsilon=0.1, gamma=0.9, seed=1,
                        max_steps=20, reward_fn=lambda s, a, r, s2, t: r + 100.0,
                        target_fn=target)
    assert len(calls) == res.lengths.sum() and res.lengths.max() <= 20
    assert res.Q.max() > 40  # learned from the bonus-laden reward ...
    assert res.returns.max() <= 10  # ... while the recorded returns are the environment's


def test_greedy_rollout_and_evaluation():
    maze = GridWorld(MAZE)
    path, ret, reached = tb.greedy_rollout(maze, np.zeros((56, 4)), max_steps=5)
    assert not reached and len(path) == 6 and ret == -25.0  # "up" from S bumps 5 times
    taxi = gym.make(tb.latest_env_id("Taxi"))
    taxi_mdp = TabularMDP.from_gymnasium(taxi, gamma=0.99)
    Q = q_from_v(taxi_mdp, value_iteration(taxi_mdp)[0])
    a = tb.evaluate_greedy(taxi, Q, 20, seed=5)
    np.testing.assert_array_equal(a, tb.evaluate_greedy(taxi, Q, 20, seed=5))
    assert a.mean() > 5 and a.min() > -20


def test_draw_grid_paths():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    tb.draw_grid_paths(ax, 2, 3, {"a": [0, 1, 2], "b": [3, 4, 5, 2]}, blocked=[4],
                       labels={0: "S"})
    assert len(ax.lines) == 2 and ax.texts[0].get_text() == "S"
    plt.close(fig)


# ---- epsilon-greedy's random-number contract and the episode functions -------------------------

def test_epsilon_greedy_draws_in_the_stated_order():
    """One rng.random(), then rng.integers(A) to explore or rng.integers(#ties) to exploit."""
    q = np.array([2.0, 5.0, 5.0, -1.0])
    rng, twin = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(200):
        got = tb.epsilon_greedy(q, 0.3, rng)
        want = int(twin.integers(4)) if twin.random() < 0.3 else [1, 2][twin.integers(2)]
        assert got == want
    assert rng.random() == twin.random()  # the same amount of randomness was used
    one_best, twin = np.random.default_rng(2), np.random.default_rng(2)
    assert tb.epsilon_greedy(np.array([0.0, 1.0]), 0.0, one_best) == 1
    twin.random()
    assert one_best.random() == twin.random()  # a single maximiser draws nothing more
    with pytest.raises(ValueError, match="epsilon"):
        tb.epsilon_greedy(q, 1.5, rng)


class _Recorder(gym.Wrapper):
    """Records every transition (s, a, r, s', terminated, truncated) of the wrapped env."""

    def __init__(self, env):
        super().__init__(env)
        self.log, self.s = [], None

    def reset(self, **kwargs):
        self.s, info = self.env.reset(**kwargs)
        return self.s, info

    def step(self, a):
        s2, r, term, trunc, info = self.env.step(a)
        self.log.append((self.s, int(a), r, s2, term, trunc))
        self.s = s2
        return s2, r, term, trunc, info


def _replay(Q0, log, alpha, gamma, sarsa=False):
    """The Q table after the logged transitions, updated one by one from the formulas.

    SARSA bootstraps on the next logged action, so its log must end with a terminal step.
    """
    Q = Q0.copy()
    for i, (s, a, r, s2, term, _) in enumerate(log):
        if term:
            boot = 0.0
        elif sarsa:
            boot = Q[s2, log[i + 1][1]]
        else:
            boot = np.max(Q[s2])
        Q[s, a] += alpha * (r + gamma * boot - Q[s, a])
    return Q


@pytest.mark.parametrize("limit", [3, 40])
def test_q_learning_episode_matches_a_replay_of_its_transitions(limit):
    env = _Recorder(gym.wrappers.TimeLimit(GridWorld(("S.#", "...", "#.G"), step_reward=-1.0),
                                           limit))
    Q0 = np.random.default_rng(0).normal(size=(9, 4))  # the exit row is not 0 on purpose
    Q = Q0.copy()
    ret, steps = tb.q_learning_episode(env, Q, 0.5, 0.9, 0.2, np.random.default_rng(1))
    assert steps == len(env.log) and ret == sum(t[2] for t in env.log)
    assert env.log[-1][4 if limit == 40 else 5]  # 40: reaches the exit; 3: cut by the limit
    np.testing.assert_allclose(Q, _replay(Q0, env.log, 0.5, 0.9), atol=1e-12)


def test_sarsa_episode_bootstraps_on_the_next_action_taken():
    env = _Recorder(GridWorld(("S...", "...G"), step_reward=-1.0))
    Q0 = np.random.default_rng(3).normal(size=(8, 4))
    Q = Q0.copy()
    ret, steps = tb.sarsa_episode(env, Q, 0.5, 0.9, 0.3, np.random.default_rng(4))
    assert env.log[-1][4] and steps == len(env.log) and ret == sum(t[2] for t in env.log)
    np.testing.assert_allclose(Q, _replay(Q0, env.log, 0.5, 0.9, sarsa=True), atol=1e-12)


def test_q_learning_from_random_behaviour_reaches_q_star():
    maze = GridWorld(("S.#", "...", "#.G"), step_reward=-1.0)
    model = TabularMDP.from_gymnasium(maze, gamma=0.9)
    Q_star = q_from_v(model, value_iteration(model, 1e-12)[0])
    res = tb.td_control(maze, "q_learning", 300, alpha=0.5, epsilon=1.0, gamma=0.9, seed=0,
                        max_steps=50, episode_fn=tb.q_learning_episode)
    np.testing.assert_allclose(res.Q, Q_star, atol=1e-3)


def test_td_control_episode_fn_hook_and_episode_limit():
    cliff = gym.make(tb.latest_env_id("CliffWalking"))
    calls = []

    def mine(env, Q, alpha, gamma, epsilon, rng):
        calls.append(env)
        return tb.q_learning_episode(env, Q, alpha, gamma, epsilon, rng)

    a = tb.td_control(cliff, "q_learning", 30, alpha=0.5, epsilon=0.1, gamma=1.0, seed=2,
                      max_steps=40, episode_fn=mine)
    b = tb.td_control(cliff, "q_learning", 30, alpha=0.5, epsilon=0.1, gamma=1.0, seed=2,
                      max_steps=40)
    np.testing.assert_array_equal(a.Q, b.Q)  # the default is the same episode function
    assert len(calls) == 30 and isinstance(calls[0], tb.EpisodeLimit)
    assert a.lengths.max() == 40 and not a.terminated[a.lengths == 40].any()
    assert a.terminated[a.lengths < 40].all()
    with pytest.raises(ValueError, match="episode_fn"):
        tb.td_control(cliff, "q_learning", 1, alpha=0.5, epsilon=0.1, gamma=1.0, seed=0,
                      episode_fn=mine, target_fn=tb.q_learning_target)


def test_episode_functions_reject_bad_input():
    maze = GridWorld(("S.", ".G"))
    rng = np.random.default_rng(0)
    for fn in (tb.q_learning_episode, tb.sarsa_episode):
        with pytest.raises(ValueError, match="shape"):
            fn(maze, np.zeros((4, 3)), 0.5, 0.9, 0.1, rng)
        with pytest.raises(ValueError, match="shape"):
            fn(maze, [[0.0] * 4] * 4, 0.5, 0.9, 0.1, rng)
        with pytest.raises(ValueError, match="alpha"):
            fn(maze, np.zeros((4, 4)), 0.0, 0.9, 0.1, rng)
        with pytest.raises(ValueError, match="gamma"):
            fn(maze, np.zeros((4, 4)), 0.5, 1.5, 0.1, rng)
        with pytest.raises(ValueError, match="epsilon"):
            fn(maze, np.zeros((4, 4)), 0.5, 0.9, -0.1, rng)
        with pytest.raises(TypeError, match="Discrete"):
            fn(gym.make("CartPole-v1"), np.zeros((4, 2)), 0.5, 0.9, 0.1, rng)
