"""Notebook 08's formulas against brute force, and MCTS behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlcourse import wider


def test_soft_value_of_the_soft_optimal_policy_is_alpha_logsumexp():
    q = torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64)
    for alpha in (0.1, 0.5, 2.0):
        pi = wider.soft_optimal_policy(q, alpha)
        v = wider.soft_state_value(q, pi.log(), alpha)
        assert float(v) == pytest.approx(alpha * float(torch.logsumexp(q / alpha, 0)), rel=1e-12)


def test_soft_optimal_policy_beats_random_policies():
    rng = np.random.default_rng(0)
    q = torch.tensor([0.3, 1.0, 0.9, -2.0], dtype=torch.float64)
    best = float(wider.soft_state_value(q, wider.soft_optimal_policy(q, 0.4).log(), 0.4))
    for _ in range(500):
        p = torch.tensor(rng.dirichlet(np.ones(4)), dtype=torch.float64)
        assert float(wider.soft_state_value(q, p.log(), 0.4)) <= best + 1e-12


def test_soft_value_matches_expected_q_plus_entropy():
    q = torch.tensor([2.0, 0.0])
    p = torch.tensor([0.75, 0.25])
    entropy = -(p * p.log()).sum()
    assert float(wider.soft_state_value(q, p.log(), 0.3)) == pytest.approx(
        float((p * q).sum() + 0.3 * entropy), rel=1e-6)


def test_td3_target_brute_force():
    r, q1, q2 = torch.randn(50), torch.randn(50), torch.randn(50)
    term = torch.rand(50) < 0.3
    got = wider.td3_target(r, q1, q2, term, 0.95)
    for i in range(50):
        want = float(r[i]) + (0.0 if term[i] else 0.95 * min(float(q1[i]), float(q2[i])))
        assert float(got[i]) == pytest.approx(want, abs=1e-6)


def test_lagrange_multiplier_rises_with_violations_and_stays_non_negative():
    assert wider.lagrange_step(0.0, avg_cost=2.0, limit=1.0, lr=0.5) == 0.5
    assert wider.lagrange_step(0.2, avg_cost=0.0, limit=1.0, lr=0.5) == 0.0


def test_uct_prefers_unvisited_then_balances():
    assert wider.uct_score(0, 0, 5) == math.inf
    assert wider.uct_score(9, 10, 100, c=0.0) == pytest.approx(0.9)
    assert wider.uct_score(1, 2, 100) > wider.uct_score(10, 20, 100)  # less visited, same mean


def test_tic_tac_toe_rules():
    b = (1, 1, 1, -1, -1, 0, 0, 0, 0)
    assert wider.winner(b) == 1 and wider.to_move(b) == -1
    assert wider.winner((1, -1, 1, 1, -1, -1, -1, 1, 1)) == 0
    assert wider.winner((0,) * 9) is None and wider.legal_moves((1,) + (0,) * 8)[0] == 1
    assert wider.play((0,) * 9, 4)[4] == 1


def test_mcts_takes_a_win_and_blocks_a_loss():
    rng = np.random.default_rng(0)
    win_now = (1, 1, 0, -1, -1, 0, 0, 0, 0)  # X to move, 2 wins
    assert wider.mcts_move(win_now, 200, rng) == 2
    block = (1, 0, 0, -1, -1, 0, 1, 0, 0)  # X to move, must take 5 to stop O
    assert wider.mcts_move(block, 300, rng) == 5


def test_mcts_never_loses_to_random_play():
    rng = np.random.default_rng(1)
    results = [wider.play_game(100, None, rng) for _ in range(20)]
    assert results.count(-1) == 0 and results.count(1) >= 17


def test_mcts_uses_the_score_function_it_is_given():
    calls = []

    def counting(value_sum, visits, parent_visits, c):
        calls.append((visits, parent_visits))
        return wider.uct_score(value_sum, visits, parent_visits, c)

    board = (1, 0, 0, -1, -1, 0, 1, 0, 0)
    same = wider.mcts_move(board, 150, np.random.default_rng(3), score=counting)
    assert calls and same == wider.mcts_move(board, 150, np.random.default_rng(3))
    games = [wider.play_game(20, None, np.random.default_rng(s), score=counting) for s in (0, 1)]
    assert games == [wider.play_game(20, None, np.random.default_rng(s)) for s in (0, 1)]
    # a score that ignores values and always prefers the lowest-visit child is a different search
    blind = [wider.play_game(20, None, np.random.default_rng(s), score=lambda v, n, p, c: -n)
             for s in range(30)]
    assert blind.count(1) < sum(wider.play_game(20, None, np.random.default_rng(s)) == 1
                                for s in range(30))


def test_bad_inputs():
    with pytest.raises(ValueError, match="illegal move"):
        wider.play((1,) + (0,) * 8, 0)
    with pytest.raises(ValueError, match="over"):
        wider.mcts_move((1, 1, 1, -1, -1, 0, 0, 0, 0), 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="alpha"):
        wider.soft_optimal_policy(torch.zeros(2), 0.0)
    with pytest.raises(ValueError, match="differ"):
        wider.soft_state_value(torch.zeros(2), torch.zeros(3), 0.1)
    with pytest.raises(ValueError, match="gamma"):
        wider.td3_target(*(torch.zeros(2),) * 3, torch.zeros(2, dtype=torch.bool), 1.2)
    with pytest.raises(ValueError, match="same shape"):
        wider.td3_target(torch.zeros(2), torch.zeros(3), torch.zeros(2),
                         torch.zeros(2, dtype=torch.bool), 0.9)
    with pytest.raises(ValueError, match="lr"):
        wider.lagrange_step(0, 1, 1, lr=0)
    with pytest.raises(TypeError, match="score must be a function"):
        wider.mcts_move((0,) * 9, 10, np.random.default_rng(0), score=1.4)
    with pytest.raises(TypeError, match="n_simulations"):
        wider.mcts_move((0,) * 9, 1.5, np.random.default_rng(0))
