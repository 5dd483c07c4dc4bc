"""Checks for notebook 02 (MDPs, Bellman equations and dynamic programming)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rlcourse import mdp
from rlcourse.exercises import CheckFailure, expect_close, expect_true, register

NB = "02_mdp_dp"


def _toy_mdp(gamma: float) -> mdp.TabularMDP:
    """3 states x 2 actions; state 2 is terminal."""
    P = np.array([
        [[0.1, 0.6, 0.3], [0.5, 0.5, 0.0]],
        [[0.2, 0.0, 0.8], [0.0, 0.7, 0.3]],
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]],
    ])
    R = np.array([[1.0, 0.0], [-1.0, 2.0], [0.0, 0.0]])
    return mdp.TabularMDP(P, R, gamma, np.array([False, False, True]))


def _random_mdp(gamma: float, seed: int = 7) -> mdp.TabularMDP:
    """5 states x 3 actions (S != A catches swapped axes); state 4 is terminal."""
    rng = np.random.default_rng(seed)
    P = np.zeros((5, 3, 5))
    P[:4] = rng.dirichlet(np.ones(5), size=(4, 3))
    P[4, :, 4] = 1.0
    R = np.zeros((5, 3))
    R[:4] = rng.normal(0.0, 2.0, size=(4, 3))
    return mdp.TabularMDP(P, R, gamma, np.array([False] * 4 + [True]))


def _random_policy(n_s: int, n_a: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(n_a), size=n_s)


def _returns_by_sum(r: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = sum_k gamma^k r_{t+k}, computed directly (not by recursion)."""
    T = r.shape[-1]
    G = np.zeros_like(r, dtype=float)
    for t in range(T):
        G[..., t] = (r[..., t:] * gamma ** np.arange(T - t)).sum(axis=-1)
    return G


@register("mdp.discounted_returns", notebook=NB, reference=mdp.discounted_returns,
          hint="Walk backwards: start from G = 0 after the last step, then "
               "G[t] = rewards[t] + gamma * G[t + 1]. G[t] starts at time t, so rewards[t] "
               "is not discounted.")
def _(fn: Callable) -> None:
    cases = [([1.0, 1.0, 1.0], 0.5, [1.75, 1.5, 1.0]),
             ([0.0, 0.0, 1.0], 0.9, [0.81, 0.9, 1.0]),
             ([1.0, 2.0, 3.0, 4.0], 1.0, [10.0, 9.0, 7.0, 4.0]),
             ([3.0, -1.0, 2.0], 0.0, [3.0, -1.0, 2.0]),
             ([5.0], 0.9, [5.0])]
    for rewards, gamma, expected in cases:
        expect_close(fn(np.array(rewards), gamma), expected,
                     f"discounted_returns({rewards}, gamma={gamma})")
    r = np.random.default_rng(0).normal(size=12)
    expect_close(fn(r.copy(), 0.95), _returns_by_sum(r, 0.95),
                 "12 random rewards with gamma=0.95 (compared with the direct sums)")
    batch = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    expect_close(fn(batch.copy(), 0.5), [[1.5, 1.0, 2.0], [0.5, 1.0, 0.0]],
                 "a batch of 2 episodes, shape [2, 3] (time on the last axis), gamma=0.5")
    before = r.copy()
    fn(r, 0.9)
    expect_true(np.array_equal(r, before), "discounted_returns changed its input array "
                                           "in place; write the returns into a new array")


@register("mdp.policy_matrices", notebook=NB, reference=mdp.policy_matrices,
          hint="Average over the policy's actions: P_pi[s, s'] = sum_a pi[s, a] P[s, a, s'] and "
               "R_pi[s] = sum_a pi[s, a] R[s, a] (e.g. np.einsum('sa,sat->st', pi, P)).")
def _(fn: Callable) -> None:
    for m, what in ((_toy_mdp(0.9), "3-state toy MDP"), (_random_mdp(0.9), "5x3 random MDP")):
        for pi, kind in ((_random_policy(m.n_states, m.n_actions), "a stochastic policy"),
                         (np.eye(m.n_actions)[np.arange(m.n_states) % m.n_actions],
                          "a deterministic policy")):
            P_exp = np.array([[sum(pi[s, a] * m.P[s, a, t] for a in range(m.n_actions))
                               for t in range(m.n_states)] for s in range(m.n_states)])
            R_exp = np.array([pi[s] @ m.R[s] for s in range(m.n_states)])
            out = fn(m, pi)
            expect_true(isinstance(out, tuple) and len(out) == 2,
                        f"{what}: return the pair (P_pi, R_pi), got {type(out).__name__}")
            expect_close(out[0], P_exp, f"{what}, {kind}: P_pi [S, S]")
            expect_close(out[1], R_exp, f"{what}, {kind}: R_pi [S]")


def _terminal_in_middle(gamma: float) -> mdp.TabularMDP:
    """4 states x 2 actions; states 1 and 3 are terminal, so the terminal mask is not a tail."""
    P = np.array([
        [[0.2, 0.3, 0.4, 0.1], [0.0, 0.5, 0.5, 0.0]],
        [[0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]],
        [[0.5, 0.0, 0.25, 0.25], [0.1, 0.6, 0.2, 0.1]],
        [[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]],
    ])
    R = np.array([[1.0, -2.0], [0.0, 0.0], [3.0, 0.5], [0.0, 0.0]])
    return mdp.TabularMDP(P, R, gamma, np.array([False, True, False, True]))


def _iterated_values(m: mdp.TabularMDP, pi: np.ndarray, sweeps: int = 3000) -> np.ndarray:
    """V^pi by fixed-point iteration from V = 0, independent of any linear solve."""
    P_pi = np.einsum("sa,sat->st", pi, m.P)
    R_pi = np.einsum("sa,sa->s", pi, m.R)
    V = np.zeros(m.n_states)
    for _ in range(sweeps):
        V = np.where(m.terminal, 0.0, R_pi + m.gamma * P_pi @ V)
    return V


@register("mdp.evaluate_policy", notebook=NB, reference=mdp.evaluate_policy,
          hint="Build (P_pi, R_pi) with policy_matrices, keep only the rows and columns of the "
               "non-terminal states (a boolean mask and np.ix_), solve (I - gamma P_NN) V_N = R_N "
               "with np.linalg.solve, and put V_N into a zero vector of length S. The full "
               "S x S system is singular at gamma = 1.")
def _(fn: Callable) -> None:
    chain = mdp.TabularMDP(np.array([[[0.0, 1.0]], [[0.0, 1.0]]]), np.array([[1.0], [2.0]]), 0.5)
    expect_close(fn(chain, np.ones((2, 1))), [3.0, 4.0],
                 "2-state chain s0 -> s1 -> s1 ..., rewards 1 then 2 forever, gamma=0.5")
    for m, what in ((_toy_mdp(0.9), "3-state toy MDP, gamma=0.9"),
                    (_random_mdp(0.8), "5x3 random MDP, gamma=0.8"),
                    (_random_mdp(0.0), "5x3 random MDP, gamma=0"),
                    (_toy_mdp(1.0), "3-state toy MDP, gamma=1 (every episode ends)"),
                    (_random_mdp(1.0), "5x3 random MDP, gamma=1 (every episode ends)"),
                    (_terminal_in_middle(1.0), "4-state MDP whose terminal states are 1 and 3, "
                                               "gamma=1")):
        pi = _random_policy(m.n_states, m.n_actions)
        try:
            got = fn(m, pi)
        except np.linalg.LinAlgError as err:
            raise CheckFailure(f"{what}: your function raised LinAlgError ({err}). With "
                               "gamma = 1 the rows of terminal states are zero in the full "
                               "system; solve the reduced system on non-terminal states.") from None
        expect_close(got, _iterated_values(m, pi), f"{what}, a stochastic policy", atol=1e-6)


@register("mdp.bellman_optimality_backup", notebook=NB, reference=mdp.bellman_optimality_backup,
          hint="Q = R + gamma * P @ V has shape [S, A]; take the max over actions (axis 1), "
               "then set terminal states (mdp.terminal) to 0.")
def _(fn: Callable) -> None:
    for m, what in ((_toy_mdp(0.9), "3-state toy MDP, gamma=0.9"),
                    (_random_mdp(0.8), "5x3 random MDP, gamma=0.8")):
        V0 = np.zeros(m.n_states)
        exp0 = np.where(m.terminal, 0.0, m.R.max(axis=1))
        expect_close(fn(m, V0), exp0, f"{what}, V = 0 (answer: max_a R(s, a))")
        V = np.linspace(-2.0, 3.0, m.n_states)  # non-zero at the terminal state on purpose
        Q = np.array([[m.R[s, a] + m.gamma * sum(m.P[s, a, t] * V[t] for t in range(m.n_states))
                       for a in range(m.n_actions)] for s in range(m.n_states)])
        expected = np.where(m.terminal, 0.0, Q.max(axis=1))
        expect_close(fn(m, V.copy()), expected,
                     f"{what}, V = {np.round(V, 2).tolist()} (terminal states must get 0)")
