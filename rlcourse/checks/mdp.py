"""Checks for notebook 02 (MDPs, Bellman equations and dynamic programming)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rlcourse import mdp
from rlcourse.exercises import (
    CheckFailure,
    call_with,
    expect_close,
    expect_true,
    expect_type,
    register,
)

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


def _terminal_first(gamma: float) -> mdp.TabularMDP:
    """The 5x3 random MDP with its states reversed, so that state 0 is the terminal one."""
    m = _random_mdp(gamma, seed=11)
    order = np.arange(m.n_states)[::-1]
    return mdp.TabularMDP(m.P[order][:, :, order], m.R[order], gamma, m.terminal[order])


def _vi_cases() -> list[tuple[mdp.TabularMDP, float, str]]:
    """(model, theta, description) for the value-iteration check; FrozenLake read from gymnasium."""
    import gymnasium as gym

    import rlcourse.envs  # noqa: F401  (registers rlcourse/GridWorld-v0)

    lake = mdp.TabularMDP.from_gymnasium(gym.make("FrozenLake-v1"), gamma=0.99)
    grid = mdp.TabularMDP.from_gymnasium(gym.make("rlcourse/GridWorld-v0", slip=0.2), gamma=0.9)
    return [(_random_mdp(0.9), 1e-8, "5x3 random MDP, gamma=0.9, theta=1e-8"),
            (_terminal_first(0.8), 1e-9, "5x3 random MDP whose state 0 is terminal, gamma=0.8, "
                                         "theta=1e-9"),
            (_toy_mdp(1.0), 1e-10, "3-state toy MDP, gamma=1 (every episode ends), theta=1e-10"),
            (grid, 1e-10, "slippery GridWorld (slip=0.2), gamma=0.9, theta=1e-10"),
            (lake, 1e-10, "FrozenLake 4x4, gamma=0.99, theta=1e-10")]


def _expect_vi_result(out: object, m: mdp.TabularMDP, theta: float, what: str) -> None:
    """One value-iteration answer against V* (linear solve) and the reference's sweep count."""
    expect_type(out, tuple, f"{what}: the result", length=3)
    V, pi, k = out
    pi_opt = mdp.policy_iteration(m)[1]
    V_star = mdp.evaluate_policy(m, pi_opt)
    expect_close(V, V_star, f"{what}: V compared with V* from the exact linear solve "
                            "(policy iteration)", atol=1e-6, rtol=0.0)
    pi = np.asarray(pi, dtype=float)
    expect_true(pi.shape == (m.n_states, m.n_actions) and np.allclose(pi.sum(axis=1), 1.0),
                f"{what}: the policy must be a matrix pi[s, a] of shape "
                f"{(m.n_states, m.n_actions)} with rows that sum to 1, got shape {pi.shape}")
    expect_true(mdp.is_greedy(pi, mdp.q_from_v(m, V_star), atol=1e-6),
                f"{what}: your policy takes an action that is not greedy for Q* in states "
                f"{_not_greedy_states(pi, mdp.q_from_v(m, V_star))}")
    k_ref = mdp.value_iteration(m, theta)[2]
    if not isinstance(k, (int, np.integer)):
        raise CheckFailure(f"{what}: the sweep count must be an int, got {type(k).__name__}")
    if int(k) != k_ref:
        cause = ("count every sweep you compute, the stopping one included"
                 if abs(int(k) - k_ref) == 1 else
                 "stop at the first sweep whose largest change over ALL states, "
                 "max_s |V_new(s) - V(s)|, is below theta, and update all states from the "
                 "old V (no in-place sweep)")
        raise CheckFailure(f"{what}: expected {k_ref} sweeps (the stopping sweep included), "
                           f"got {k}; {cause}")


def _not_greedy_states(pi: np.ndarray, Q: np.ndarray) -> list[int]:
    gap = Q.max(axis=1, keepdims=True) - Q
    return np.flatnonzero(np.any((pi > 0) & (gap > 1e-6), axis=1)).tolist()


@register("mdp.value_iteration", notebook=NB, reference=mdp.value_iteration,
          hint="Start from V = 0. Each sweep: Q = R + gamma * P @ V ([S, A]), V_new = max over "
               "actions (axis 1), 0 at terminal states; count the sweep; stop when "
               "max_s |V_new - V| < theta (the change of every state, not the size of V), else "
               "V = V_new. Return V_new, the one-hot greedy policy of Q = R + gamma * P @ V_new "
               "and the number of sweeps computed, the last one included.")
def _(fn: Callable) -> None:
    chain = mdp.TabularMDP(np.array([[[0.0, 1.0]], [[0.0, 1.0]]]), np.array([[1.0], [0.0]]),
                           0.5, np.array([False, True]))
    out = call_with(fn, "a 2-state chain (reward 1, then terminal), theta=1e-6", chain, 1e-6)
    expect_type(out, tuple, "value_iteration(...)", length=3)
    expect_close(out[0], [1.0, 0.0], "a 2-state chain: one step with reward 1, then the "
                                     "terminal state")
    expect_true(out[2] == 2, "a 2-state chain, theta=1e-6: sweep 1 gives V = [1, 0], sweep 2 "
                             f"changes nothing and stops, so the count is 2; got {out[2]!r}")
    for m, theta, what in _vi_cases():
        _expect_vi_result(call_with(fn, what, m, theta), m, theta, what)
