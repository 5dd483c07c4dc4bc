"""Tests for rlcourse.tabular_control: every formula against brute force, the NumPy blackjack
against gymnasium's env card for card, the DP values against simulation, and the experiments'
headline behaviour on small budgets."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.toy_text import blackjack as gym_bj

from rlcourse import tabular
from rlcourse import tabular_control as tc

# ---- Expected SARSA ----------------------------------------------------------------------------


def _eps_greedy_probs_by_hand(q, eps):
    best = [i for i, v in enumerate(q) if v == max(q)]
    return [eps / len(q) + ((1 - eps) / len(best) if i in best else 0.0) for i in range(len(q))]


@pytest.mark.parametrize("q,eps", [([1.0, 5.0, 3.0], 0.3), ([2.0, 2.0, -1.0, 0.5], 0.1),
                                   ([0.0], 0.5), ([-1.0, -4.0], 1.0), ([3.0, 1.0, 2.0], 0.0)])
def test_expected_sarsa_target_is_the_expectation_over_next_actions(q, eps):
    probs = _eps_greedy_probs_by_hand(q, eps)
    r, gamma = -0.7, 0.9
    by_enumeration = sum(p * (r + gamma * qa) for p, qa in zip(probs, q))
    assert np.isclose(tc.expected_sarsa_target(r, np.array(q), False, gamma, eps), by_enumeration)
    assert np.isclose(tc.expected_sarsa_target(r, np.array(q), True, gamma, eps), r)


def test_expected_sarsa_special_cases_and_batches():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(5, 4))
    r, term = rng.normal(size=5), np.array([0, 1, 0, 0, 1], bool)
    greedy = [tabular.q_learning_target(r[i], q[i], term[i], 0.8) for i in range(5)]
    assert np.allclose(tc.expected_sarsa_target(r, q, term, 0.8, 0.0), greedy)
    assert np.allclose(tc.expected_sarsa_target(r, q, term, 0.8, 1.0),
                       r + 0.8 * (1 - term) * q.mean(axis=1))
    rowwise = [tc.expected_sarsa_target(r[i], q[i], term[i], 0.8, 0.2) for i in range(5)]
    assert np.allclose(tc.expected_sarsa_target(r, q, term, 0.8, 0.2), rowwise)


def test_epsilon_greedy_batch_matches_the_probabilities():
    rng = np.random.default_rng(1)
    q = np.array([0.0, 2.0, 2.0, -1.0])
    acts = tc.epsilon_greedy_batch(np.tile(q, (200_000, 1)), 0.2, rng)
    freq = np.bincount(acts, minlength=4) / len(acts)
    assert np.allclose(freq, _eps_greedy_probs_by_hand(list(q), 0.2), atol=0.005)
    only_two = tc.epsilon_greedy_batch(np.tile([0.0, 0.0, 9.0], (10_000, 1)), 0.5, rng,
                                       n_valid=2)
    assert set(np.unique(only_two)) == {0, 1}


# ---- Double Q-learning -------------------------------------------------------------------------


def _double_q_by_the_paper(q1, q2, s, a, r, s2, term, coin, alpha, gamma):
    """van Hasselt (2010), one transition at a time."""
    for i in range(len(s)):
        upd, other = (q1, q2) if coin[i] else (q2, q1)
        a_star = int(np.argmax(upd[s2[i]]))
        target = r[i] + (0.0 if term[i] else gamma * other[s2[i], a_star])
        upd[s[i], a[i]] += alpha * (target - upd[s[i], a[i]])


def test_double_q_update_matches_the_per_transition_algorithm():
    rng = np.random.default_rng(2)
    for _ in range(20):
        q1, q2 = rng.normal(size=(2, 8, 3))
        pairs = rng.choice(12, size=6, replace=False)  # updated states 0..3
        s, a = pairs // 3, pairs % 3
        r, s2 = rng.normal(size=6), rng.integers(4, 8, 6)  # a batch is simultaneous: next
        # states outside the updated ones make it equal to one-at-a-time updates
        term, coin = rng.random(6) < 0.3, rng.random(6) < 0.5
        want1, want2 = q1.copy(), q2.copy()
        _double_q_by_the_paper(want1, want2, s, a, r, s2, term, coin, 0.3, 0.9)
        tc.double_q_update(q1, q2, s, a, r, s2, term, coin, 0.3, 0.9)
        assert np.allclose(q1, want1) and np.allclose(q2, want2)


def test_double_q_with_equal_tables_is_q_learning():
    rng = np.random.default_rng(3)
    q = rng.normal(size=(6, 4))
    s, a, s2 = np.array([0, 1, 2]), np.array([3, 0, 1]), np.array([4, 5, 0])
    r, term = np.array([1.0, -1.0, 0.5]), np.array([False, True, False])
    q1, q2, ql = q.copy(), q.copy(), q.copy()
    tc.double_q_update(q1, q2, s, a, r, s2, term, np.ones(3, bool), 0.5, 0.9)
    tc.q_learning_update(ql, s, a, r, s2, term, 0.5, 0.9)
    assert np.allclose(q1, ql) and np.array_equal(q2, q)


def test_double_estimator_is_not_optimistic():
    """E[max of noisy estimates] > max of the means; the cross-evaluated estimate is unbiased."""
    rng = np.random.default_rng(4)
    x1, x2 = rng.normal(-0.1, 1.0, (2, 50_000, 10))
    assert x1.max(axis=1).mean() > 1.3
    assert abs(x2[np.arange(50_000), x1.argmax(axis=1)].mean() + 0.1) < 0.03


def test_maximization_bias_experiment():
    q = tc.maximization_bias_runs("q_learning", 2000, 300, seed=0).mean(axis=0)
    d = tc.maximization_bias_runs("double_q", 2000, 300, seed=0).mean(axis=0)
    assert q[9:20].mean() > 0.8 and d[9:20].mean() < 0.55
    assert 0.03 < d[200:].mean() < 0.1 and q[200:].mean() > d[200:].mean() + 0.03
    # when left is truly better (mean +0.1, no noise), both learn it: 95% left
    for method in ("q_learning", "double_q"):
        good = tc.maximization_bias_runs(method, 500, 200, mean=0.1, std=0.0, seed=1)
        assert abs(good[:, 100:].mean() - 0.95) < 0.02


def test_maximization_bias_rejects_bad_input():
    with pytest.raises(ValueError, match="method"):
        tc.maximization_bias_runs("sarsa", 10, 10)
    with pytest.raises(ValueError, match="alpha"):
        tc.maximization_bias_runs("double_q", 10, 10, alpha=0.0)
    with pytest.raises(TypeError, match="n_runs"):
        tc.maximization_bias_runs("double_q", 1.5, 10)


# ---- Cliff Walking -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cliff_table():
    return tc.deterministic_table(gym.make("CliffWalking-v1"))


def test_deterministic_table_matches_stepping_the_env(cliff_table):
    env = gym.make("CliffWalking-v1")
    env.reset(seed=0)
    for s in range(48):
        for a in range(4):
            env.unwrapped.s = s
            s2, r, term, _, _ = env.step(a)
            assert (cliff_table.next_state[s, a], cliff_table.reward[s, a]) == (s2, r)
            assert cliff_table.terminal[s2] == term
    assert cliff_table.start == 36 and np.flatnonzero(cliff_table.terminal).tolist() == [47]


def test_deterministic_table_rejects_stochastic_envs():
    with pytest.raises(ValueError, match="deterministic"):
        tc.deterministic_table(gym.make("FrozenLake-v1"))
    with pytest.raises(TypeError):
        tc.deterministic_table(gym.make("CartPole-v1"))


def test_expected_sarsa_with_greedy_policy_is_q_learning(cliff_table):
    """epsilon = 0: same targets, same random draws, so identical runs."""
    kw = dict(epsilon=0.0, gamma=1.0, seed=3)
    es = tc.td_control_runs(cliff_table, "expected_sarsa", 30, np.full(3, 0.5), **kw)
    ql = tc.td_control_runs(cliff_table, "q_learning", 30, np.full(3, 0.5), **kw)
    assert np.array_equal(es, ql)


def test_cliff_online_ranking(cliff_table):
    res = {m: tc.td_control_runs(cliff_table, m, 300, np.full(10, 0.5), epsilon=0.1, gamma=1.0,
                                 seed=4)[:, 100:].mean()
           for m in ("expected_sarsa", "sarsa", "q_learning")}
    assert res["expected_sarsa"] > res["sarsa"] + 2 > res["q_learning"] + 12
    assert res["expected_sarsa"] > -30  # the safe path costs ~17 steps, plus exploration


def test_td_control_runs_uses_the_target_fn(cliff_table):
    calls = []

    def spy(r, q, t, g, eps):
        calls.append(q.shape)
        return tc.expected_sarsa_target(r, q, t, g, eps)
    tc.td_control_runs(cliff_table, "expected_sarsa", 2, np.full(4, 0.5), epsilon=0.1,
                       gamma=1.0, seed=0, target_fn=spy)
    assert calls and calls[0] == (4, 4)


def test_td_control_runs_rejects_bad_input(cliff_table):
    kw = dict(epsilon=0.1, gamma=1.0, seed=0)
    with pytest.raises(ValueError, match="method"):
        tc.td_control_runs(cliff_table, "td", 5, [0.5], **kw)
    with pytest.raises(ValueError, match="step size"):
        tc.td_control_runs(cliff_table, "sarsa", 5, [0.5, 1.5], **kw)
    with pytest.raises(ValueError, match="epsilon"):
        tc.td_control_runs(cliff_table, "sarsa", 5, [0.5], epsilon=2.0, gamma=1.0, seed=0)


# ---- importance sampling -----------------------------------------------------------------------


def test_ordinary_and_weighted_estimates_by_hand():
    rng = np.random.default_rng(5)
    g = rng.normal(size=(3, 40))
    rho = rng.exponential(size=(3, 40)) * (rng.random((3, 40)) < 0.5)
    for run in range(3):
        for k in range(40):
            num = sum(rho[run, i] * g[run, i] for i in range(k + 1))
            den = sum(rho[run, i] for i in range(k + 1))
            assert np.isclose(tc.ordinary_is_estimates(g, rho)[run, k], num / (k + 1))
            want = num / den if den > 0 else 0.0
            assert np.isclose(tc.weighted_is_estimates(g, rho)[run, k], want)
    assert np.allclose(tc.weighted_is_incremental(g, rho), tc.weighted_is_estimates(g, rho))


def _tiny_problem():
    """Two decisions with two actions each; trajectory returns and both policies' probs."""
    pi = np.array([[0.9, 0.1], [0.2, 0.8]])   # pi(a_t) at decision t (state-independent)
    b = np.array([[0.5, 0.5], [0.7, 0.3]])
    ret = {(0, 0): 1.0, (0, 1): -2.0, (1, 0): 3.0, (1, 1): 0.5}
    return pi, b, ret


def test_importance_sampling_is_unbiased_by_enumeration():
    pi, b, ret = _tiny_problem()
    paths = list(itertools.product((0, 1), repeat=2))
    v_pi = sum(pi[0, a0] * pi[1, a1] * ret[(a0, a1)] for a0, a1 in paths)
    rho = {p: pi[0, p[0]] * pi[1, p[1]] / (b[0, p[0]] * b[1, p[1]]) for p in paths}
    assert np.isclose(sum(b[0, a0] * b[1, a1] * rho[(a0, a1)] * ret[(a0, a1)]
                          for a0, a1 in paths), v_pi)
    assert np.isclose(sum(b[0, a0] * b[1, a1] * rho[(a0, a1)] for a0, a1 in paths), 1.0)
    rng = np.random.default_rng(6)  # and the estimators on samples from b converge to v_pi
    a0, a1 = (rng.random((2, 200_000)) < b[:, 1:2]).astype(int)
    g = np.array([ret[(i, j)] for i, j in zip(a0, a1)])
    w = pi[0, a0] * pi[1, a1] / (b[0, a0] * b[1, a1])
    ordinary = tc.ordinary_is_estimates(g, w)[-1]
    se = (w * g).std() / np.sqrt(len(g))
    assert abs(ordinary - v_pi) < 4 * se
    assert abs(tc.weighted_is_estimates(g, w)[-1] - v_pi) < 0.02


def test_is_estimators_reject_negative_ratios():
    for fn in (tc.ordinary_is_estimates, tc.weighted_is_estimates):
        with pytest.raises(ValueError, match="non-negative"):
            fn([1.0, 2.0], [1.0, -1.0])


def test_example_5_4_ratios_and_ordinary_is_against_the_exact_value():
    rng = np.random.default_rng(7)
    g, rho = tc.example_5_4_episodes(300_000, rng)
    assert set(np.unique(rho)) <= {0.0} | {2.0**k for k in range(1, 22)}
    assert abs(rho.mean() - 1.0) < 0.05  # E_b[rho] = 1
    exact = _example_5_4_exact()
    se = (rho * g).std() / np.sqrt(len(g))
    assert abs((rho * g).mean() - exact) < 4 * se
    assert abs(tc.weighted_is_estimates(g, rho)[-1] - exact) < 0.01


def test_weighted_is_update_leaves_v_alone_while_c_is_zero():
    v, c = tc.weighted_is_update(np.array([0.3, 0.3]), np.zeros(2), np.array([1.0, 1.0]),
                                 np.array([0.0, 2.0]))
    assert np.allclose(v, [0.3, 1.0]) and np.allclose(c, [0.0, 2.0])


# ---- blackjack: the simulator against gymnasium ------------------------------------------------


class _ScriptedRandom:
    """Stands in for the env's np_random: deals the given cards in order."""

    def __init__(self, cards):
        self.cards = list(cards)

    def choice(self, seq):
        if list(seq) == gym_bj.deck:
            return self.cards.pop(0)
        return seq[0]  # suits and face names: only for rendering


def _play_in_gymnasium(cards, actions):
    env = gym_bj.BlackjackEnv(sab=True)
    env._np_random = _ScriptedRandom(cards)
    obs, _ = env.reset()
    seen, t = [obs], 0
    while True:
        obs, r, term, _, _ = env.step(int(actions[t]))
        t += 1
        if term:
            return seen, r
        seen.append(obs)


def _some_card_sequences(n, rng):
    cards = tc.draw_cards(rng, n).astype(int)
    special = [[1, 10, 1, 10], [1, 10, 10, 1], [10, 5, 1, 10], [9, 8, 1, 1], [1, 1, 1, 1],
               [10, 5, 10, 1], [6, 1, 10, 1]]
    for i, head in enumerate(special * 4):  # naturals for one or both, double aces
        cards[n - 1 - i, :4] = head  # at the end: the first rows always hit
    return cards


def test_numpy_blackjack_matches_gymnasium_card_for_card():
    rng = np.random.default_rng(8)
    cards = _some_card_sequences(400, rng)
    actions = (rng.random((400, tc.MAX_DECISIONS)) < 0.6).astype(int)
    actions[:100] = 1  # a quarter always hits until it busts
    ep = tc.simulate_blackjack(cards, lambda t, tot, u, d: actions[:, t])
    for i in range(400):
        seen, reward = _play_in_gymnasium(cards[i], actions[i])
        assert ep.steps[i] == len(seen), i
        mine = [(int(ep.total[i, t]), int(ep.dealer[i]), int(ep.usable[i, t]))
                for t in range(ep.steps[i])]
        assert mine == [tuple(int(x) for x in o) for o in seen], i
        assert ep.reward[i] == reward, (i, cards[i, :8])


def test_add_card_matches_gymnasium_hand_sums():
    rng = np.random.default_rng(9)
    for _ in range(2000):
        hand = list(rng.integers(1, 11, rng.integers(1, 7)))
        total, usable = 0, False
        for card in hand:
            total, usable = tc.add_card(total, usable, card)
        if gym_bj.sum_hand(hand) <= 21:
            assert (int(total), int(usable)) == (gym_bj.sum_hand(hand), gym_bj.usable_ace(hand))
        else:
            assert total > 21


def test_simulate_blackjack_rejects_bad_input():
    with pytest.raises(ValueError, match="cards"):
        tc.simulate_blackjack(np.ones((3, 5), int), lambda *a: np.zeros(3, int))
    cards = tc.draw_cards(np.random.default_rng(0), 3)
    with pytest.raises(ValueError, match="start"):
        tc.simulate_blackjack(cards, lambda *a: np.zeros(3, int), start=(22, False, 3))
    with pytest.raises(ValueError, match="start"):
        tc.simulate_blackjack(cards, lambda *a: np.zeros(3, int), start=(8, True, 3))
    with pytest.raises(ValueError, match="shape"):
        tc.table_policy(np.zeros((10, 10)))


# ---- blackjack: exact values -------------------------------------------------------------------


def _example_5_4_exact():
    pol = np.broadcast_to((np.arange(12, 22) < 20)[None, :, None], (2, 10, 10)).astype(int)
    Q, _ = tc.blackjack_action_values(pol)
    return Q[1, 1, 1, tc.HIT]


def test_exact_value_of_example_5_4_matches_the_book():
    assert abs(_example_5_4_exact() + 0.27726) < 3e-4  # book: 10^8 episodes, se ~ 1e-4


def test_dp_optimal_policy_is_figure_5_2():
    _, policy = tc.blackjack_action_values()
    assert np.array_equal(policy, tc.book_optimal_policy())


def test_book_policy_table_reads_as_the_figure():
    book = tc.book_optimal_policy()
    hard, soft = book[0], book[1]  # [sum 12..21, dealer A..10]; 1 = hit
    assert hard[5:].sum() == 0  # stick on 17+
    assert np.all(hard[1:5, 1:6] == 0) and np.all(hard[1:5, [0, 6, 7, 8, 9]] == 1)  # 13-16
    assert hard[0].tolist() == [1, 1, 1, 0, 0, 0, 1, 1, 1, 1]  # 12: stick vs 4-6 only
    assert soft[7:].sum() == 0 and soft[:6].min() == 1  # soft: stick 19+, hit 17 and below
    assert soft[6].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 1, 1]  # soft 18: hit vs A, 9, 10


def test_dealer_distribution_against_simulation():
    rng = np.random.default_rng(10)
    for show in (1, 6, 10):
        exact = tc.dealer_final_distribution(show)
        assert np.isclose(exact.sum(), 1.0)
        cards = tc.draw_cards(rng, 100_000).astype(int)
        total, _ = tc._dealer_total(np.full(100_000, show), cards[:, 0], cards, np.ones(100_000,
                                                                                      int))
        freq = np.bincount(np.minimum(total, 22) - 17, minlength=6) / 100_000
        assert np.allclose(freq, exact, atol=0.006)


def test_dp_values_against_simulation():
    rng = np.random.default_rng(11)
    Q, policy = tc.blackjack_action_values()
    act = tc.table_policy(policy)
    n = 100_000
    for total, usable, dealer, first in ((13, 0, 2, 1), (18, 1, 10, 1), (16, 0, 7, 0),
                                         (12, 1, 1, 1)):
        ep = tc.simulate_blackjack(
            tc.draw_cards(rng, n),
            lambda t, tot, u, d, first=first: np.full(n, first) if t == 0 else act(t, tot, u, d),
            start=(total, usable, dealer))
        se = ep.reward.std() / np.sqrt(n)
        assert abs(ep.reward.mean() - Q[usable, total - 12, dealer - 1, first]) < 4 * se


# ---- Monte Carlo control -----------------------------------------------------------------------


def test_accumulate_returns_counts_duplicates():
    sums, counts = np.zeros((4, 2)), np.zeros((4, 2), int)
    tc.accumulate_returns(sums, counts, [1, 1, 1, 3], [0, 0, 0, 1], [1.0, -1.0, 1.0, 2.0])
    assert sums[1, 0] == 1.0 and counts[1, 0] == 3 and sums[3, 1] == 2.0 and counts.sum() == 4


def test_state_index_is_a_bijection():
    idx = tc.state_index(*np.meshgrid(np.arange(12, 22), [0, 1], np.arange(1, 11)))
    assert sorted(idx.ravel().tolist()) == list(range(200))


def test_mc_exploring_starts_learns_most_of_figure_5_2():
    res = tc.mc_exploring_starts(300_000, batch_size=10_000, seed=0)
    agree = (res.policy == tc.book_optimal_policy()).mean()
    assert agree >= 0.9
    assert res.counts.sum() > 300_000 and res.counts.min() > 200
    calls = []
    tc.mc_exploring_starts(20_000, batch_size=10_000, seed=0,
                           update_fn=lambda *args: calls.append(len(args[2])))
    assert len(calls) == 2 and min(calls) >= 10_000


def test_a_natural_beats_a_dealers_three_card_21_as_in_gymnasium():
    cards = np.full((2, tc.MAX_CARDS), 10)
    cards[:, :4] = [6, 5, 1, 10]  # dealer 6 + 5, then draws a 10: 21; player holds A + 10
    actions = np.zeros((2, tc.MAX_DECISIONS), int)
    actions[1, 0] = 1  # the second player hits the natural (and then sticks)
    ep = tc.simulate_blackjack(cards, lambda t, tot, u, d: actions[:, t])
    gym_rewards = [_play_in_gymnasium(cards[i], actions[i])[1] for i in range(2)]
    assert ep.reward.tolist() == gym_rewards == [1.0, 0.0]


# ---- off-policy MC prediction of Q -------------------------------------------------------------


def test_off_policy_mc_update_is_the_weighted_average_of_tail_weighted_returns():
    """Brute force: Q(s, a) = sum W G / sum W over all visits; W = product of the later ratios."""
    rng = np.random.default_rng(12)
    n_s, n_a, gamma = 5, 2, 0.8
    Q, C = np.zeros((n_s, n_a)), np.zeros((n_s, n_a))
    num, den = np.zeros((n_s, n_a)), np.zeros((n_s, n_a))
    for _ in range(300):
        T = int(rng.integers(1, 5))
        states = rng.choice(n_s, size=T, replace=False)  # no pair twice in an episode
        actions, rewards = rng.integers(0, n_a, T), rng.normal(size=T)
        pi = np.where(actions == states % 2, 0.9, 0.1) * (rng.random(T) > 0.1)
        b = np.full(T, 0.5)
        tc.off_policy_mc_update(Q, C, states, actions, rewards, pi, b, gamma)
        for t in range(T):
            g = sum(gamma ** (k - t) * rewards[k] for k in range(t, T))
            w = np.prod(pi[t + 1:] / b[t + 1:])
            num[states[t], actions[t]] += w * g
            den[states[t], actions[t]] += w
    seen = den > 0
    assert np.allclose(C, den)
    assert np.allclose(Q[seen], num[seen] / den[seen])
    assert np.all(Q[~seen] == 0)


def test_off_policy_blackjack_q_converges_to_the_exact_values():
    pol = np.broadcast_to((np.arange(12, 22) < 20)[None, :, None], (2, 10, 10)).astype(int)
    exact, _ = tc.blackjack_action_values(pol)
    Q, C, saved = tc.off_policy_blackjack_q(pol, 60_000, seed=1, checkpoints=(3_000, 60_000))
    rms = [np.sqrt(((q - exact) ** 2).mean()) for q in saved]
    assert np.array_equal(saved[-1], Q) and C.min() > 0
    assert rms[1] < 0.1 and rms[0] > 2.5 * rms[1]


def test_off_policy_blackjack_q_rejects_bad_policies():
    with pytest.raises(ValueError, match="policy"):
        tc.off_policy_blackjack_q(np.zeros((10, 10), int), 10)
    with pytest.raises(ValueError, match="policy"):
        tc.off_policy_blackjack_q(np.full((2, 10, 10), 2), 10)
