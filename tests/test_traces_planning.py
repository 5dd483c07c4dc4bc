"""Tests for rlcourse.traces_planning: every formula of notebook 16 against brute force,
autograd or an independent computation."""

import numpy as np
import pytest
import torch

from rlcourse import advantages, tabular
from rlcourse import traces_planning as tp
from rlcourse.mdp import evaluate_policy, iterative_policy_evaluation

# ---- the random walks ------------------------------------------------------------------------


def test_19_state_walk_values_match_a_linear_solve():
    walk = tabular.random_walk_mdp(19)
    V = evaluate_policy(walk, np.ones((21, 1)))[1:-1]
    assert np.allclose(V, tabular.random_walk_values(19), atol=1e-12)


def test_jump_walk_values_match_iterative_evaluation_and_symmetry():
    P, r = tp.walk_jump_mdp(30, 4)
    assert np.allclose(P.sum(1) + np.abs(r), 1.0)  # every jump lands inside or terminates
    v = tp.walk_jump_values(30, 4)
    assert np.allclose(v, -v[::-1], atol=1e-12)
    S = 32
    P_full, R_full = np.zeros((S, 1, S)), np.zeros((S, 1))
    P_full[1:-1, 0, 1:-1] = P
    R_full[1:-1, 0] = r
    left = np.array([sum(0.5 / 4 for j in range(i - 4, i) if j < 0) for i in range(30)])
    P_full[1:-1, 0, 0], P_full[1:-1, 0, -1] = left, left[::-1]
    P_full[0, 0, 0] = P_full[-1, 0, -1] = 1.0
    term = np.zeros(S, bool)
    term[[0, -1]] = True
    from rlcourse.mdp import TabularMDP
    V = iterative_policy_evaluation(TabularMDP(P_full, R_full, 1.0, term), np.ones((S, 1)))
    V = V[0] if isinstance(V, tuple) else V
    assert np.allclose(np.asarray(V)[1:-1], v, atol=1e-6)


def test_jump_walk_values_match_monte_carlo():
    v = tp.walk_jump_values(20, 5)
    rng = np.random.default_rng(0)
    n, start = 20000, 7
    pos, ret = np.full(n, start), np.zeros(n)
    live = np.ones(n, bool)
    while live.any():
        pos = pos + live * rng.integers(1, 6, n) * rng.choice((-1, 1), n)
        ret[live & (pos < 0)], ret[live & (pos > 19)] = -1.0, 1.0
        live &= (pos >= 0) & (pos <= 19)
    assert abs(ret.mean() - v[start]) < 4 * ret.std() / np.sqrt(n)


# ---- TD(lambda) ------------------------------------------------------------------------------


def _episode(seed=0, n=5):
    rng = np.random.default_rng(seed)
    s, states = (n + 1) // 2, []
    while 0 < s <= n:
        states.append(s)
        s += int(rng.choice((-1, 1)))
    rewards = np.zeros(len(states))
    rewards[-1] = 1.0 if s == n + 1 else -1.0
    return np.array(states), np.append(states[1:], s), rewards


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9, 1.0])
def test_lambda_return_equals_gae_plus_value_and_the_recursion(lam):
    states, _, rewards = _episode(seed=1)
    V = np.random.default_rng(2).normal(size=7)
    V[[0, 6]] = 0.0
    G = tp.lambda_return(rewards, V[states], 0.9, lam)
    T = len(states)
    rec, g = np.zeros(T), 0.0
    for t in range(T - 1, -1, -1):  # G_t = r + gamma ((1 - lam) V(s_{t+1}) + lam G_{t+1})
        nxt = 0.0 if t == T - 1 else V[states[t + 1]]
        g = rewards[t] + (0.0 if t == T - 1 else 0.9 * ((1 - lam) * nxt + lam * g))
        rec[t] = g
    assert np.allclose(G, rec, atol=1e-12)
    as_t = lambda a: torch.tensor(a, dtype=torch.float64)[None]
    term = np.zeros(T)
    term[-1] = 1.0
    next_v = np.append(V[states[1:]], 0.0)
    A = advantages.gae(as_t(rewards), as_t(V[states]), as_t(next_v), as_t(term), as_t(term),
                       0.9, lam)[0].numpy()
    assert np.allclose(G - V[states], A, atol=1e-12)


def test_lambda_return_limits():
    states, _, rewards = _episode(seed=4)
    V = np.linspace(-1, 1, 7)
    G0 = tp.lambda_return(rewards, V[states], 0.8, 0.0)
    td_target = rewards + 0.8 * np.append(V[states[1:]], 0.0)
    assert np.allclose(G0, td_target)
    assert np.allclose(tp.lambda_return(rewards, V[states], 0.8, 1.0),
                       tabular.returns_to_go(rewards, 0.8))


@pytest.mark.parametrize("lam", [0.0, 0.6, 1.0])
def test_offline_trace_updates_equal_the_lambda_return_updates(lam):
    """With w held fixed, sum_t delta_t z_t = sum_t (G^lam_t - v(s_t)) x_t (forward = backward)."""
    states, nexts, rewards = _episode(seed=3, n=7)
    eye, gamma = np.eye(9), 0.95
    w = np.random.default_rng(5).normal(size=9)
    z, total = np.zeros(9), np.zeros(9)
    for t, (s, s2) in enumerate(zip(states, nexts)):
        term = t == len(states) - 1
        w_new, z = tp.td_lambda_step(w, z, eye[s], eye[s2], rewards[t], term, t == 0, 1.0,
                                     gamma, lam)
        total += w_new - w  # alpha = 1: the increment delta_t z_t, w itself is not changed
    G = tp.lambda_return(rewards, w[states], gamma, lam)
    forward = ((G - w[states])[:, None] * eye[states]).sum(0)
    assert np.allclose(total, forward, atol=1e-10)


def test_td_lambda_sweep_with_lambda_0_is_the_td0_sweep():
    data = tabular.sample_random_walks(7, n_episodes=5, n_runs=6, seed=2)
    alphas = np.array([0.1, 0.5])
    ours = tp.td_lambda_sweep(data, 0.0, alphas)
    ref = tabular.nstep_td_sweep(data, 1, alphas)
    assert np.allclose(ours, ref, atol=1e-12)


def test_td_lambda_step_resets_the_trace_and_validates():
    w, z = np.zeros(3), np.ones(3)
    _, z2 = tp.td_lambda_step(w, z, np.eye(3)[0], np.eye(3)[1], 0.0, False, True, 0.1, 0.9, 0.5)
    assert np.allclose(z2, [1, 0, 0])
    _, z3 = tp.td_lambda_step(w, z, np.eye(3)[0], np.eye(3)[1], 0.0, False, False, 0.1, 0.9, 0.5)
    assert np.allclose(z3, [1.45, 0.45, 0.45])
    with pytest.raises(ValueError, match="lam"):
        tp.td_lambda_step(w, z, w, w, 0.0, False, False, 0.1, 0.9, 1.5)
    with pytest.raises(ValueError, match="shape"):
        tp.lambda_return([1.0, 2.0], [0.0], 0.9, 0.5)


def test_episode_starts():
    data = tabular.sample_random_walks(5, n_episodes=3, n_runs=2, seed=0)
    first = tp.episode_starts(data)
    assert (first & data.valid).sum(1).tolist() == [3, 3]


# ---- linear TD(0) ----------------------------------------------------------------------------


def test_semi_gradient_is_autograd_with_the_target_detached():
    rng = np.random.default_rng(0)
    w0, x, x2 = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    r, gamma, alpha, rho = 0.7, 0.9, 0.1, 2.5
    w = torch.tensor(w0, requires_grad=True)
    tx, tx2 = torch.tensor(x), torch.tensor(x2)
    target = r + gamma * (w @ tx2)
    (0.5 * rho * (target.detach() - w @ tx) ** 2).backward()
    semi = w0 - alpha * w.grad.numpy()
    assert np.allclose(tp.linear_td_step(w0, x, x2, r, False, alpha, gamma, rho), semi)
    w.grad = None
    (0.5 * rho * (target - w @ tx) ** 2).backward()  # the full (residual) gradient differs
    full = w0 - alpha * w.grad.numpy()
    assert not np.allclose(semi, full)
    delta = target.item() - w0 @ x
    assert np.allclose(full, w0 + alpha * rho * delta * (x - gamma * x2))


def test_linear_td_with_one_hot_features_is_tabular_td0():
    V, eye = np.array([0.0, 0.3, -0.2, 0.0]), np.eye(4)
    new = tp.linear_td_step(V, eye[1], eye[2], 1.0, False, 0.5, 0.9)
    want = V.copy()
    want[1] += 0.5 * tabular.td_error(1.0, V[1], V[2], False, 0.9)
    assert np.allclose(new, want)
    assert np.allclose(tp.linear_td_step(V, eye[1], eye[2], 1.0, True, 0.5, 0.9)[1], 0.65)


def test_td_fixed_point_zeroes_the_expected_update_and_is_worse_than_the_ve_minimiser():
    P, r = tp.walk_jump_mdp(100, 10)
    mu = tp.on_policy_distribution(P, 49)
    X = tp.aggregation_features(100, 5)
    w = tp.td_fixed_point(X, P, r, mu)
    expected_delta = r + P @ X @ w - X @ w
    assert np.allclose(X.T @ (mu * expected_delta), 0.0, atol=1e-12)
    v = tp.walk_jump_values(100, 10)
    w_mc = tp.ve_minimiser(X, v, mu)
    for g in range(5):  # the VE minimiser is the mu-weighted mean of v in each group
        idx = slice(20 * g, 20 * g + 20)
        assert np.isclose(w_mc[g], np.average(v[idx], weights=mu[idx]))
    ve = lambda u: mu @ (X @ u - v) ** 2
    assert ve(w_mc) < ve(w)


def test_on_policy_distribution_matches_simulated_visits():
    P, _ = tp.walk_jump_mdp(10, 3)
    mu = tp.on_policy_distribution(P, 4)
    rng, counts = np.random.default_rng(0), np.zeros(10)
    for _ in range(4000):
        s = 4
        while 0 <= s < 10:
            counts[s] += 1
            s += int(rng.integers(1, 4)) * int(rng.choice((-1, 1)))
    assert np.abs(counts / counts.sum() - mu).max() < 0.01


def test_jump_walk_td_approaches_the_td_fixed_point():
    W = tp.jump_walk_td(5, 0.05, 6000, 8, seed=0, n_states=100, max_jump=10)
    assert W.shape == (6001, 8, 5)
    P, r = tp.walk_jump_mdp(100, 10)
    mu = tp.on_policy_distribution(P, 49)
    w_td = tp.td_fixed_point(tp.aggregation_features(100, 5), P, r, mu)
    assert np.abs(W[3000:].mean(axis=(0, 1)) - w_td).max() < 0.05


def test_aggregation_features():
    X = tp.aggregation_features(10, 5)
    assert X.shape == (10, 5) and np.all(X.sum(1) == 1) and X[3, 1] == 1
    with pytest.raises(ValueError, match="multiple"):
        tp.aggregation_features(10, 3)


# ---- Baird's counterexample ------------------------------------------------------------------


def test_baird_features():
    X = tp.baird_features()
    want = np.zeros((7, 8))
    for i in range(6):
        want[i, i], want[i, 7] = 2, 1
    want[6, 6], want[6, 7] = 1, 2
    assert np.array_equal(X, want)
    assert np.linalg.matrix_rank(X) == 7  # any value function is representable
    assert np.allclose(X @ tp.BAIRD_W0, [3, 3, 3, 3, 3, 3, 12])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_off_policy_semi_gradient_td_diverges_on_baird(seed):
    W = tp.baird_off_policy_td(1000, seed)
    norms = np.linalg.norm(W, axis=1)
    assert norms[-1] > 10 * norms[0]
    assert norms[-1] > norms[500] > norms[0]


def test_expected_td_diverges_and_on_policy_and_tdc_do_not():
    X = tp.baird_features()
    start = np.linalg.norm(tp.BAIRD_W0)
    assert np.linalg.norm(tp.baird_expected_td(1000)[-1]) > 10 * start
    on = tp.baird_off_policy_td(1000, 0, on_policy=True)
    assert np.linalg.norm(on, axis=1).max() < 1.2 * start
    tdc = tp.baird_tdc(1000, 0)
    assert np.linalg.norm(tdc, axis=1).max() < 1.2 * start
    rms = lambda w: np.sqrt(np.mean((X @ w) ** 2))  # true values are all 0
    assert rms(tdc[-1]) < 0.5 * rms(tdc[0]) and rms(on[-1]) < 0.5 * rms(on[0])


def test_target_network_slows_but_copying_every_step_is_plain_td():
    for seed in (0, 1):
        plain = tp.baird_off_policy_td(1000, seed)
        assert np.allclose(tp.baird_target_network_td(1000, seed, copy_every=1), plain)
        slow = tp.baird_target_network_td(1000, seed, copy_every=100)
        assert np.linalg.norm(slow[-1]) < np.linalg.norm(plain[-1]) / 3


def test_tdc_without_correction_is_semi_gradient_td():
    rng = np.random.default_rng(1)
    w, x, x2 = rng.normal(size=3), rng.normal(size=3), rng.normal(size=3)
    w2, _ = tp.tdc_step(w, np.zeros(3), x, x2, 0.5, False, 0.1, 0.2, 0.9, 3.0)
    assert np.allclose(w2, tp.linear_td_step(w, x, x2, 0.5, False, 0.1, 0.9, 3.0))


# ---- Dyna-Q ----------------------------------------------------------------------------------


def test_dyna_maze_tables():
    tb = tp.grid_tables()
    assert tb.next_state.shape == (54, 4) and tb.start == 18
    walls = [(1, 2), (2, 2), (3, 2), (4, 5), (0, 7), (1, 7), (2, 7)]
    assert all(tp.DYNA_MAZE[r][c] == "#" for r, c in walls)
    assert "".join(tp.DYNA_MAZE).count("#") == 7 and tp.DYNA_MAZE[0][8] == "G"
    assert tb.next_state[18, 2] == 18  # left edge: stay
    assert tb.next_state[10, 3] == 10  # (1, 1) -> wall (1, 2): stay
    assert tb.reward[17, 0] == 1.0 and tb.terminated[17, 0]  # up from (1, 8) enters G
    assert tabular.grid_distances(tp.DYNA_MAZE)[tb.start] == 14
    with pytest.raises(ValueError, match="'S'"):
        tp.grid_tables(("..G",))


def test_dyna_with_no_planning_is_q_learning():
    tb = tp.grid_tables(("S...G",))
    Q1, Q2 = np.zeros((5, 4)), np.zeros((5, 4))
    model = tp.DynaModel.empty(5, 4)
    rng = np.random.default_rng(0)
    for s, a in [(0, 3), (1, 3), (2, 3), (3, 3), (0, 3), (1, 2)]:
        args = (s, a, tb.reward[s, a], tb.next_state[s, a], tb.terminated[s, a])
        tp.dyna_q_step(Q1, model, *args, 0, 0.5, 0.9, rng)
        tp.q_learning_update(Q2, *args, 0.5, 0.9)
    assert np.array_equal(Q1, Q2) and model.seen.sum() == 5


def test_planning_propagates_the_goal_value_backwards():
    tb = tp.grid_tables(("S...G",))
    Q, model = np.zeros((5, 4)), tp.DynaModel.empty(5, 4)
    rng = np.random.default_rng(0)
    for s in range(4):  # walk right once: only the last step is rewarded
        tp.dyna_q_step(Q, model, s, 3, tb.reward[s, 3], tb.next_state[s, 3],
                       tb.terminated[s, 3], 200, 0.5, 0.9, rng)
    assert np.allclose(Q[:4, 3], [0.9**3, 0.9**2, 0.9, 1.0], atol=1e-3)


def test_dyna_q_learns_the_maze_faster_with_planning():
    tb = tp.grid_tables()
    runs = [tp.run_dyna_q(tb, 50, 8, seed=s) for s in range(3)]
    fast = np.array([run.steps for run in runs])
    slow = np.array([tp.run_dyna_q(tb, 0, 8, seed=s).steps for s in range(3)])
    assert fast[:, 3:].mean() < 20 and slow[:, 1].mean() > 5 * fast[:, 1].mean()
    for run in runs:
        path = tp.greedy_path(tb, run.Q)
        assert len(path) - 1 <= 16 and path[-1] == 8  # near-shortest (14), ending in G (0, 8)
        assert run.greedy_steps[-1] == len(path) - 1 and run.greedy_steps.min() >= 14
    assert np.isinf(tp.run_dyna_q(tb, 0, 1, seed=0, max_steps=3).greedy_steps[0])
    with pytest.raises(ValueError, match="n_planning"):
        tp.run_dyna_q(tp.grid_tables(), -1, 3, seed=0)


# ---- clear errors at the API boundary --------------------------------------------------------


def test_bad_arguments_get_clear_errors():
    data = tabular.sample_random_walks(5, n_episodes=2, n_runs=2, seed=0)
    with pytest.raises(ValueError, match="alphas"):
        tp.td_lambda_sweep(data, 0.5, [[0.1]])
    with pytest.raises(ValueError, match="lam"):
        tp.td_lambda_sweep(data, -0.1, [0.1])
    with pytest.raises(ValueError, match="gamma"):
        tp.linear_td_step(np.zeros(2), np.ones(2), np.ones(2), 0.0, False, 0.1, 1.5)
    with pytest.raises(ValueError, match="n_states"):
        tp.DynaModel.empty(0, 4)
    with pytest.raises(ValueError, match="alpha"):
        tp.run_dyna_q(tp.grid_tables(), 5, 2, seed=0, alpha=0.0)
    with pytest.raises(ValueError, match="same length"):
        tp.grid_tables(("S..", "..G."))
    with pytest.raises(ValueError, match="n_steps"):
        tp.baird_off_policy_td(0, seed=0)
    with pytest.raises(ValueError, match="copy_every"):
        tp.baird_target_network_td(10, seed=0, copy_every=0)
    with pytest.raises(ValueError, match="max_jump"):
        tp.walk_jump_mdp(10, 0)
