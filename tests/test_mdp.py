"""Tests for rlcourse.mdp: every formula of notebook 02 against an independent computation."""

import itertools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import rlcourse.envs  # registers rlcourse/GridWorld-v0
from rlcourse import mdp


def random_mdp(n_s=4, n_a=3, gamma=0.9, seed=0, terminal=True):
    """Random dense MDP; the last state is terminal when ``terminal``."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(n_s), size=(n_s, n_a))
    R = rng.normal(size=(n_s, n_a))
    term = np.zeros(n_s, bool)
    if terminal:
        term[-1] = True
        P[-1] = 0.0
        P[-1, :, -1] = 1.0
        R[-1] = 0.0
    return mdp.TabularMDP(P, R, gamma, term)


def random_policy(m, seed=1):
    return np.random.default_rng(seed).dirichlet(np.ones(m.n_actions), size=m.n_states)


def deterministic_policies(m):
    for actions in itertools.product(range(m.n_actions), repeat=m.n_states):
        yield np.eye(m.n_actions)[list(actions)]


@pytest.fixture(scope="module")
def lake4():
    return mdp.TabularMDP.from_gymnasium(gym.make("FrozenLake-v1"), 0.99)


# ---- TabularMDP: construction and validation ---------------------------------------------

def test_valid_mdp_properties():
    m = random_mdp()
    assert (m.n_states, m.n_actions) == (4, 3)
    assert m.terminal.dtype == bool and m.terminal.tolist() == [False, False, False, True]
    assert mdp.TabularMDP(m.P, m.R, 0.5).terminal.sum() == 0
    m2 = m.with_gamma(0.5)
    assert m2.gamma == 0.5 and m.gamma == 0.9 and np.array_equal(m2.P, m.P)


@pytest.mark.parametrize("change,error,match", [
    (lambda P, R: (P * 0.5, R, 0.9), ValueError, "must sum to 1"),
    (lambda P, R: (P[..., :3], R, 0.9), ValueError, r"shape \[S, A, S\]"),
    (lambda P, R: (P[:, 0], R, 0.9), ValueError, "3 dimension"),
    (lambda P, R: (P, R[:, :2], 0.9), ValueError, r"R must have shape \[S, A\]"),
    (lambda P, R: (P, np.where(R > 0, np.nan, R), 0.9), ValueError, "NaN"),
    (lambda P, R: (P, R, 1.5), ValueError, r"gamma must lie in \[0, 1\]"),
    (lambda P, R: (P, R, -0.1), ValueError, r"gamma must lie in \[0, 1\]"),
    (lambda P, R: (P, R, "high"), TypeError, "gamma must be a number"),
    (lambda P, R: (P, R, float("nan")), ValueError, "gamma"),
])
def test_bad_mdp_inputs(change, error, match):
    m = random_mdp(terminal=False)
    with pytest.raises(error, match=match):
        mdp.TabularMDP(*change(m.P.copy(), m.R.copy()))


def test_negative_probabilities_rejected():
    P = np.zeros((2, 1, 2))
    P[0, 0] = [1.5, -0.5]
    P[1, 0] = [0.0, 1.0]
    with pytest.raises(ValueError, match="negative probabilities"):
        mdp.TabularMDP(P, np.zeros((2, 1)), 0.9)


def test_terminal_mask_validation():
    m = random_mdp(terminal=False)
    with pytest.raises(ValueError, match="boolean array"):
        mdp.TabularMDP(m.P, m.R, 0.9, np.array([0, 0, 0, 1]))
    with pytest.raises(ValueError, match="boolean array"):
        mdp.TabularMDP(m.P, m.R, 0.9, np.array([True, False]))
    with pytest.raises(ValueError, match="absorbing with zero reward"):
        mdp.TabularMDP(m.P, m.R, 0.9, np.array([False, False, False, True]))


# ---- from_gymnasium -----------------------------------------------------------------------

def test_from_gymnasium_frozenlake(lake4):
    desc = "".join(ch.decode() for row in gym.make("FrozenLake-v1").unwrapped.desc for ch in row)
    assert lake4.P.shape == (16, 4, 16) and lake4.gamma == 0.99
    assert np.allclose(lake4.P.sum(axis=2), 1.0)
    assert lake4.terminal.tolist() == [c in "HG" for c in desc]
    # From cell 14 the goal (15) lies to the right; slipping makes each direction 1/3.
    assert np.isclose(lake4.R[14, 2], 1 / 3) and np.isclose(lake4.R[14, 1], 1 / 3)
    assert np.isclose(lake4.R[14, 0], 0.0)
    for s in np.flatnonzero(lake4.terminal):
        assert np.all(lake4.P[s, :, s] == 1.0) and np.all(lake4.R[s] == 0.0)


def test_from_gymnasium_matches_env_transitions(lake4):
    """Independent check: the table agrees with sampled steps of the real env."""
    env = gym.make("FrozenLake-v1").unwrapped
    env.reset(seed=0)
    counts = np.zeros(16)
    for _ in range(3000):
        env.s = 6
        nxt, *_ = env.step(1)
        counts[nxt] += 1
    assert np.allclose(counts / 3000, lake4.P[6, 1], atol=0.04)


def test_from_gymnasium_cliffwalking():
    cliff = mdp.TabularMDP.from_gymnasium(gym.make("CliffWalking-v1"), 1.0)
    assert cliff.P.shape == (48, 4, 48)
    assert np.flatnonzero(cliff.terminal).tolist() == [47]
    assert cliff.R[36, 1] == -100 and cliff.P[36, 1, 36] == 1.0  # the cliff sends you back
    assert np.all(cliff.P[47, :, 47] == 1.0) and np.all(cliff.R[47] == 0)
    V, pi, _ = mdp.value_iteration(cliff)
    assert V[36] == pytest.approx(-13.0)  # up, 11 x right, down: the shortest safe path
    assert mdp.evaluate_policy(cliff, pi)[36] == pytest.approx(-13.0)


def test_from_gymnasium_gridworld_uses_transition_table():
    env = gym.make("rlcourse/GridWorld-v0", slip=0.2)
    m = mdp.TabularMDP.from_gymnasium(env, 0.9)
    P, R, term = env.unwrapped.transition_table()
    assert np.array_equal(m.P, P) and np.array_equal(m.R, R) and np.array_equal(m.terminal, term)


def test_from_gymnasium_rejects_continuous_spaces():
    with pytest.raises(TypeError, match="Discrete"):
        mdp.TabularMDP.from_gymnasium(gym.make("CartPole-v1"), 0.9)


class _NoTableEnv(gym.Env):
    observation_space = spaces.Discrete(3)
    action_space = spaces.Discrete(2)


def test_from_gymnasium_needs_a_table():
    with pytest.raises(TypeError, match="no transition table"):
        mdp.TabularMDP.from_gymnasium(_NoTableEnv(), 0.9)


# ---- rewards and returns -------------------------------------------------------------------

def test_expected_reward_matches_loop_and_sampling():
    rng = np.random.default_rng(0)
    m = random_mdp(terminal=False)
    R_sas = rng.normal(size=m.P.shape)
    R = mdp.expected_reward(m.P, R_sas)
    loop = [[sum(m.P[s, a, t] * R_sas[s, a, t] for t in range(4)) for a in range(3)]
            for s in range(4)]
    assert np.allclose(R, loop)
    nxt = rng.choice(4, size=200_000, p=m.P[2, 1])
    assert R_sas[2, 1, nxt].mean() == pytest.approx(R[2, 1], abs=0.02)


def test_expected_reward_bad_inputs():
    m = random_mdp(terminal=False)
    with pytest.raises(ValueError, match="same shape"):
        mdp.expected_reward(m.P, np.zeros((4, 3, 3)))
    with pytest.raises(ValueError, match="sum to 1"):
        mdp.expected_reward(m.P * 2, np.zeros(m.P.shape))


def test_discounted_returns_recursion_and_direct_sum():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(3, 25))
    G = mdp.discounted_returns(r, 0.95)
    assert np.allclose(G[:, :-1], r[:, :-1] + 0.95 * G[:, 1:])
    assert np.allclose(G[:, -1], r[:, -1])
    direct = [[np.sum(0.95 ** np.arange(25 - t) * r[i, t:]) for t in range(25)] for i in range(3)]
    assert np.allclose(G, direct)
    assert np.allclose(mdp.discounted_returns([1, 2, 3, 4], 1.0), [10, 9, 7, 4])
    assert np.allclose(mdp.discounted_returns([3, -1, 2], 0.0), [3, -1, 2])


def test_discounted_returns_bad_inputs():
    with pytest.raises(ValueError, match="gamma"):
        mdp.discounted_returns([1.0, 2.0], 1.01)
    with pytest.raises(ValueError, match="time axis"):
        mdp.discounted_returns(3.0, 0.9)
    with pytest.raises(ValueError, match="NaN"):
        mdp.discounted_returns([1.0, np.nan], 0.9)


def test_effective_horizon():
    assert mdp.effective_horizon(0.9) == pytest.approx(10.0)
    assert mdp.effective_horizon(0.99) == pytest.approx(100.0)
    assert mdp.effective_horizon(1.0) == float("inf")
    assert np.sum(0.9 ** np.arange(2000)) == pytest.approx(mdp.effective_horizon(0.9))
    assert 0.9 ** 50 == pytest.approx(0.00515, abs=5e-6)
    assert 0.99 ** 50 == pytest.approx(0.6050, abs=5e-5)


# ---- policies and evaluation --------------------------------------------------------------

def test_check_policy_and_uniform():
    m = random_mdp()
    u = mdp.uniform_policy(m)
    assert np.allclose(mdp.check_policy(m, u), 1 / 3)
    with pytest.raises(ValueError, match="pi must have shape"):
        mdp.check_policy(m, u[:, :2])
    with pytest.raises(ValueError, match="sum to 1"):
        mdp.check_policy(m, 2 * u)


def test_policy_matrices_against_loops():
    m = random_mdp()
    pi = random_policy(m)
    P_pi, R_pi = mdp.policy_matrices(m, pi)
    for s, t in itertools.product(range(4), range(4)):
        assert P_pi[s, t] == pytest.approx(sum(pi[s, a] * m.P[s, a, t] for a in range(3)))
    assert np.allclose(R_pi, [pi[s] @ m.R[s] for s in range(4)])
    assert np.allclose(P_pi.sum(axis=1), 1.0)


def test_exact_value_satisfies_bellman_equation():
    m = random_mdp(n_s=6, n_a=2, gamma=0.95, terminal=False)
    pi = random_policy(m)
    V = mdp.evaluate_policy(m, pi)
    P_pi, R_pi = mdp.policy_matrices(m, pi)
    assert np.abs(V - (R_pi + m.gamma * P_pi @ V)).max() < 1e-10
    # Neumann series: V = sum_k gamma^k P_pi^k R_pi.
    series, term = np.zeros(6), R_pi.copy()
    for _ in range(1500):
        series += term
        term = m.gamma * P_pi @ term
    assert np.allclose(V, series, atol=1e-9)


def test_matrix_iterative_and_monte_carlo_agree():
    """T-14: three independent evaluations of the same policy."""
    m = random_mdp(n_s=5, n_a=3, gamma=0.8, seed=3)
    pi = random_policy(m)
    V_exact = mdp.evaluate_policy(m, pi)
    V_iter, sweeps = mdp.iterative_policy_evaluation(m, pi, tol=1e-12)
    assert np.abs(V_iter - V_exact).max() < 1e-8 and sweeps > 10
    V_mc, sem = mdp.mc_policy_values(m, pi, n_episodes=1500, horizon=60,
                                     rng=np.random.default_rng(0))
    live = ~m.terminal
    assert np.all(np.abs(V_mc - V_exact)[live] < 4 * sem[live])
    assert np.all(V_mc[m.terminal] == 0)


def test_evaluate_policy_gamma_one():
    gw9 = mdp.TabularMDP.from_gymnasium(gym.make("rlcourse/GridWorld-v0"), 0.9)
    _, pi_opt, _ = mdp.value_iteration(gw9)
    gw = gw9.with_gamma(1.0)
    V = mdp.evaluate_policy(gw, pi_opt)  # the wall cells never reach the exit but pay 0
    open_cells = np.array([c != "#" for c in "".join(rlcourse.envs.DEFAULT_LAYOUT)])
    assert np.allclose(V[open_cells & ~gw.terminal], 10.0) and np.all(V[~open_cells] == 0)
    up = np.eye(4)[np.zeros(20, int)]
    with pytest.raises(ValueError, match="singular"):
        mdp.evaluate_policy(gw, up)


def _reduced(m, pi):
    """(I - P_NN, R_N, P_NN) of the reduced system on the non-terminal states."""
    P_pi, R_pi = mdp.policy_matrices(m, pi)
    live = ~m.terminal
    P_nn = P_pi[np.ix_(live, live)]
    return np.eye(live.sum()) - m.gamma * P_nn, R_pi[live], P_nn


def test_full_system_is_singular_at_gamma_one_for_every_policy():
    """With an absorbing terminal state, I - P_pi has a zero row whatever the policy."""
    m = random_mdp(n_s=4, n_a=3, gamma=1.0, seed=5)
    for pi in deterministic_policies(m):
        P_pi, _ = mdp.policy_matrices(m, pi)
        full = np.eye(4) - P_pi
        assert np.all(full[m.terminal] == 0.0) and np.linalg.matrix_rank(full) == 3
        A, _, _ = _reduced(m, pi)
        assert np.linalg.matrix_rank(A) == 3  # every policy here ends with probability 1


def test_reduced_system_equals_expected_reward_before_termination():
    """V_N = (I - P_NN)^{-1} R_N = sum_k P_NN^k R_N at gamma = 1, and the visit counts."""
    m = random_mdp(n_s=5, n_a=2, gamma=1.0, seed=2)
    pi = random_policy(m)
    A, R_n, P_nn = _reduced(m, pi)
    assert np.abs(np.linalg.eigvals(P_nn)).max() < 1.0
    series, term, visits, step = np.zeros(4), R_n.copy(), np.zeros(4), np.ones(4)
    for _ in range(3000):
        series, visits = series + term, visits + step
        term, step = P_nn @ term, P_nn @ step
    V = mdp.evaluate_policy(m, pi)
    assert V[-1] == 0.0 and np.allclose(V[:-1], series, atol=1e-10)
    V_it, _ = mdp.iterative_policy_evaluation(m, pi, tol=1e-13)
    assert np.allclose(V, V_it, atol=1e-9)
    # (I - P_NN)^{-1} 1 is the expected number of steps before the episode ends.
    assert np.allclose(np.linalg.solve(A, np.ones(4)), visits, atol=1e-10)


def test_reduced_system_matches_simulation_at_gamma_one():
    """Brute force: play episodes to the end and average the undiscounted returns and lengths."""
    m = random_mdp(n_s=4, n_a=2, gamma=1.0, seed=4)
    pi = random_policy(m)
    rng = np.random.default_rng(0)
    starts = np.repeat(np.arange(3), 4000)
    states, _, rewards = mdp.sample_episodes(m, pi, starts, 200, rng)
    assert m.terminal[states[:, -1]].all()  # every episode has ended within 200 steps
    returns = rewards.sum(axis=1).reshape(3, -1)
    lengths = (~m.terminal[states[:, :-1]]).sum(axis=1).reshape(3, -1)
    V = mdp.evaluate_policy(m, pi)
    sem = returns.std(axis=1, ddof=1) / np.sqrt(returns.shape[1])
    assert np.all(np.abs(returns.mean(axis=1) - V[:3]) < 4 * sem)
    A, _, _ = _reduced(m, pi)
    expected_len = np.linalg.solve(A, np.ones(3))
    sem_len = lengths.std(axis=1, ddof=1) / np.sqrt(lengths.shape[1])
    assert np.all(np.abs(lengths.mean(axis=1) - expected_len) < 4 * sem_len)


def test_reduced_system_is_singular_when_the_policy_can_loop_forever():
    """States 0 and 1 can trap the agent (action 1); state 2 leads to the terminal state 3."""
    P = np.zeros((4, 2, 4))
    P[0, 0], P[0, 1] = [0.0, 0.5, 0.5, 0.0], [0.3, 0.7, 0.0, 0.0]
    P[1, 0], P[1, 1] = [0.0, 0.0, 0.4, 0.6], [0.6, 0.4, 0.0, 0.0]
    P[2, :, 3] = 1.0
    P[3, :, 3] = 1.0
    R = np.array([[1.0, -1.0], [2.0, -1.0], [5.0, 5.0], [0.0, 0.0]])
    m = mdp.TabularMDP(P, R, 1.0, np.array([False, False, False, True]))
    loop = np.eye(2)[[1, 1, 0, 0]]
    A, _, P_nn = _reduced(m, loop)
    assert np.isclose(np.abs(np.linalg.eigvals(P_nn)).max(), 1.0)
    assert np.linalg.matrix_rank(A) == 2
    with pytest.raises(ValueError, match="reduced system .* singular"):
        mdp.evaluate_policy(m, loop)
    ends = np.eye(2)[[0, 0, 0, 0]]
    assert np.allclose(mdp.evaluate_policy(m, ends), [1 + 0.5 * 4 + 0.5 * 5, 2 + 0.4 * 5, 5, 0])
    assert np.allclose(mdp.evaluate_policy(m.with_gamma(0.9), loop),
                       mdp.iterative_policy_evaluation(m.with_gamma(0.9), loop, tol=1e-13)[0])


def test_q_from_v_hand_backup_and_identities():
    hand = mdp.TabularMDP(np.array([[[0, 0.8, 0.2]], [[0, 1.0, 0]], [[0, 0, 1.0]]]),
                          np.array([[1.0], [1.0], [0.0]]), 0.9)
    assert mdp.q_from_v(hand, [0.0, 10.0, 0.0])[0, 0] == pytest.approx(8.2)
    m = random_mdp()
    pi = random_policy(m)
    V = mdp.evaluate_policy(m, pi)
    Q = mdp.q_from_v(m, V)
    assert np.allclose((pi * Q).sum(axis=1), V)  # V = sum_a pi Q
    A = Q - V[:, None]
    assert np.allclose((pi * A).sum(axis=1), 0.0, atol=1e-12)  # E_pi[A] = 0
    with pytest.raises(ValueError, match="V must have shape"):
        mdp.q_from_v(m, np.zeros(3))


def test_bellman_expectation_backup_fixed_point():
    m = random_mdp()
    pi = random_policy(m)
    V = mdp.evaluate_policy(m, pi)
    assert np.allclose(mdp.bellman_expectation_backup(m, V, pi), V)
    out = mdp.bellman_expectation_backup(m, np.full(4, 7.0), pi)
    assert out[-1] == 0.0


def test_optimality_backup_is_a_contraction():
    m = random_mdp(n_s=6, n_a=3, gamma=0.7, terminal=False)
    rng = np.random.default_rng(0)
    for _ in range(200):
        V, U = rng.normal(0, 5, size=(2, 6))
        lhs = np.abs(mdp.bellman_optimality_backup(m, V) - mdp.bellman_optimality_backup(m, U))
        assert lhs.max() <= 0.7 * np.abs(V - U).max() + 1e-12


def test_greedy_and_is_greedy():
    Q = np.array([[1.0, 3.0, 3.0], [0.0, -1.0, -2.0]])
    assert np.array_equal(mdp.greedy_policy(Q), [[0, 1, 0], [1, 0, 0]])
    assert mdp.is_greedy([[0, 0, 1], [1, 0, 0]], Q)
    assert mdp.is_greedy([[0, 0.5, 0.5], [1, 0, 0]], Q)
    assert not mdp.is_greedy([[1, 0, 0], [1, 0, 0]], Q)
    with pytest.raises(ValueError, match="same shape"):
        mdp.is_greedy(np.ones((3, 3)) / 3, Q)


def test_policy_improvement_keeps_ties():
    Q = np.array([[2.0, 2.0], [1.0, 5.0]])
    pi = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert np.array_equal(mdp.policy_improvement(Q, pi), [[0, 1], [0, 1]])


# ---- dynamic programming ------------------------------------------------------------------

def test_value_and_policy_iteration_match_brute_force():
    m = random_mdp(n_s=5, n_a=3, gamma=0.9, seed=4)
    values = np.array([mdp.evaluate_policy(m, pi) for pi in deterministic_policies(m)])
    best = values.max(axis=0)
    # an optimal policy is best in every state at once
    assert np.any(np.all(np.isclose(values, best), axis=1))
    V_vi, pi_vi, k_vi = mdp.value_iteration(m)
    V_pi, pi_pi, k_pi = mdp.policy_iteration(m)
    assert np.allclose(V_vi, best, atol=1e-8) and np.allclose(V_pi, best, atol=1e-10)
    assert np.allclose(mdp.evaluate_policy(m, pi_vi), best, atol=1e-8)
    Q = mdp.q_from_v(m, V_pi)
    assert mdp.is_greedy(pi_vi, Q) and mdp.is_greedy(pi_pi, Q)
    assert k_pi < k_vi


def test_policy_iteration_equals_value_iteration_on_frozenlake_8x8():
    m = mdp.TabularMDP.from_gymnasium(gym.make("FrozenLake-v1", map_name="8x8"), 0.99)
    V_vi, pi_vi, k_vi = mdp.value_iteration(m)
    V_pi, pi_pi, k_pi = mdp.policy_iteration(m, pi0=mdp.uniform_policy(m))
    assert np.allclose(V_vi, V_pi, atol=1e-6)
    assert mdp.is_greedy(pi_vi, mdp.q_from_v(m, V_pi))
    assert V_pi[0] == pytest.approx(0.4146, abs=1e-3)
    assert k_pi < 20 < k_vi


def test_gridworld_optimal_value():
    """W-07: 7 moves to the exit, V*(start) = 10 * 0.9^6."""
    gw = mdp.TabularMDP.from_gymnasium(gym.make("rlcourse/GridWorld-v0"), 0.9)
    V, _, _ = mdp.value_iteration(gw)
    assert V[0] == pytest.approx(10 * 0.9 ** 6)


def test_iteration_limits_and_custom_backups():
    m = random_mdp()
    pi = random_policy(m)
    with pytest.raises(RuntimeError, match="did not converge"):
        mdp.value_iteration(m, max_iter=2)
    with pytest.raises(RuntimeError, match="did not converge"):
        mdp.iterative_policy_evaluation(m, pi, max_iter=2)
    with pytest.raises(RuntimeError, match="did not stabilise"):
        mdp.policy_iteration(m, pi0=np.eye(3)[[1, 1, 1, 0]], max_iter=1)
    with pytest.raises(TypeError, match="max_iter"):
        mdp.value_iteration(m, max_iter=1.5)
    calls = []

    def backup(model, V):
        calls.append(1)
        return mdp.bellman_optimality_backup(model, V)

    mdp.value_iteration(m, backup=backup)
    assert len(calls) > 5
    V, _ = mdp.iterative_policy_evaluation(
        m, pi, backup=lambda model, V, p: mdp.bellman_expectation_backup(model, V, p))
    assert np.allclose(V, mdp.evaluate_policy(m, pi))


def test_value_iteration_sweep_count_and_stopping_bound():
    """k sweeps from V = 0 by hand: sweep k is the first whose sup-norm change is < theta, the
    result is V_k, and the error obeys ||V_k - V*|| <= gamma / (1 - gamma) * theta."""
    m = random_mdp(n_s=6, n_a=3, gamma=0.9, seed=4)
    V_star = mdp.evaluate_policy(m, mdp.policy_iteration(m)[1])
    for theta in (1e-2, 1e-5, 1e-9):
        V, pi, k = mdp.value_iteration(m, theta)
        sweeps = [np.zeros(m.n_states)]
        for _ in range(k):
            sweeps.append(mdp.bellman_optimality_backup(m, sweeps[-1]))
        changes = [np.abs(b - a).max() for a, b in zip(sweeps, sweeps[1:])]
        assert np.array_equal(V, sweeps[-1]) and isinstance(k, int)
        assert changes[-1] < theta and all(c >= theta for c in changes[:-1])
        assert np.abs(V - V_star).max() <= m.gamma / (1 - m.gamma) * theta
        assert np.array_equal(pi, mdp.greedy_policy(mdp.q_from_v(m, V)))


def test_value_iteration_bad_input():
    m = random_mdp()
    for theta in (0.0, -1e-3, float("nan")):
        with pytest.raises(ValueError, match="theta"):
            mdp.value_iteration(m, theta)
    with pytest.raises(TypeError, match="theta"):
        mdp.value_iteration(m, "small")
    with pytest.raises(TypeError, match="TabularMDP"):
        mdp.value_iteration((m.P, m.R), 1e-6)
    with pytest.raises(ValueError, match="gamma"):
        mdp.value_iteration(m.with_gamma(1.5), 1e-6)


def test_finite_horizon_values(lake4):
    m = random_mdp()
    pi = random_policy(m)
    P_pi, R_pi = mdp.policy_matrices(m, pi)
    assert np.allclose(mdp.finite_horizon_values(m, pi, 1), np.where(m.terminal, 0, R_pi))
    direct = sum(m.gamma ** t * np.linalg.matrix_power(P_pi, t) @ R_pi for t in range(5))
    assert np.allclose(mdp.finite_horizon_values(m, pi, 5), direct)
    # FrozenLake: P(goal within 20 steps) by DP vs by simulation of the table.
    lake1 = lake4.with_gamma(1.0)
    _, pi_opt, _ = mdp.value_iteration(lake4)
    p20 = mdp.finite_horizon_values(lake1, pi_opt, 20)[0]
    _, _, rewards = mdp.sample_episodes(lake1, pi_opt, np.zeros(4000, int), 20,
                                        np.random.default_rng(1))
    assert rewards.sum(axis=1).mean() == pytest.approx(p20, abs=4 * np.sqrt(0.25 / 4000))
    with pytest.raises(ValueError, match="positive integer"):
        mdp.finite_horizon_values(m, pi, 0)


# ---- sampling ------------------------------------------------------------------------------

def test_sample_episodes_shapes_and_frequencies():
    m = random_mdp()
    pi = random_policy(m)
    rng = np.random.default_rng(0)
    states, actions, rewards = mdp.sample_episodes(m, pi, np.zeros(20000, int), 3, rng)
    assert states.shape == (20000, 4) and actions.shape == rewards.shape == (20000, 3)
    assert np.allclose(np.bincount(actions[:, 0], minlength=3) / 20000, pi[0], atol=0.015)
    first = states[:, 1][actions[:, 0] == 1]
    assert np.allclose(np.bincount(first, minlength=4) / first.size, m.P[0, 1], atol=0.02)
    assert np.allclose(rewards, m.R[states[:, :-1], actions])
    done = states[:, :-1] == 3
    assert np.all(states[:, 1:][done] == 3) and np.all(rewards[done] == 0)


def test_sample_episodes_bad_starts():
    m = random_mdp()
    with pytest.raises(ValueError, match="starts"):
        mdp.sample_episodes(m, mdp.uniform_policy(m), [0, 7], 5, np.random.default_rng(0))


def test_mc_policy_values_single_episode():
    m = random_mdp()
    mean, sem = mdp.mc_policy_values(m, mdp.uniform_policy(m), 1, 10, np.random.default_rng(0))
    assert mean.shape == (4,) and np.all(np.isnan(sem))


def test_run_policy_in_gymnasium():
    env = gym.make("FrozenLake-v1", is_slippery=False)
    path = np.zeros(16, int)
    path[[0, 4, 8, 9, 13, 14]] = [1, 1, 2, 1, 2, 2]  # down, down, right, down, right, right
    returns, lengths, cut = mdp.run_policy(env, path, 3, seed=0)
    assert np.all(returns == 1) and np.all(lengths == 6) and not cut.any()
    stuck = np.zeros(16, int)  # always "left": stays in the corner until the time limit
    returns, lengths, cut = mdp.run_policy(env, stuck, 2, seed=0)
    assert np.all(returns == 0) and np.all(lengths == 100) and cut.all()
    with pytest.raises(ValueError, match="one action per state"):
        mdp.run_policy(env, np.zeros(5, int), 1, seed=0)


# ---- cost of the matrix solution, plotting -------------------------------------------------

def test_timing_helpers():
    rng = np.random.default_rng(0)
    M = mdp.random_stochastic_matrix(50, rng)
    assert M.shape == (50, 50) and np.allclose(M.sum(axis=1), 1.0) and M.min() > 0
    import torch

    before = torch.get_num_threads()
    times = mdp.time_policy_evaluation([20, 40], rng, repeats=2)
    assert times.shape == (2,) and np.all(times > 0)
    assert mdp.time_policy_evaluation([30], rng, repeats=1, method="inv").shape == (1,)
    assert torch.get_num_threads() == before  # the thread setting is restored
    with pytest.raises(ValueError, match="method"):
        mdp.time_policy_evaluation([30], rng, method="lstsq")
    n = np.array([10.0, 20.0, 40.0])
    assert mdp.loglog_slope(n, 2.0 * n ** 3) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="positive"):
        mdp.loglog_slope([1.0, 2.0], [1.0, -1.0])


def test_plot_value_grid():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    V = np.arange(6.0)
    pi = np.eye(4)[[0, 1, 2, 3, 0, 1]]
    ax = mdp.plot_value_grid(V, (2, 3), title="values only")
    assert ax.get_title() == "values only" and len(ax.texts) == 6
    ax2 = mdp.plot_value_grid(V, (2, 3), pi, moves=mdp.FROZENLAKE_MOVES, annotate=False,
                              blocked=[False] * 5 + [True])
    assert len(ax2.texts) == 5  # one arrow per cell that is not blocked
    with pytest.raises(ValueError, match="grid"):
        mdp.plot_value_grid(V, (2, 2))
    plt.close("all")


def test_reaches_terminal():
    P_pi = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert mdp.reaches_terminal(P_pi, np.array([False, False, True])).all()
    P_pi[0] = [1.0, 0.0, 0.0]
    assert mdp.reaches_terminal(P_pi, np.array([False, False, True])).tolist() == [False, True,
                                                                                     True]
