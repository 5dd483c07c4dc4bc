"""Honesty tests for the checks of notebook 02: blanks and plausible wrong answers must fail."""

import numpy as np
import pytest

from rlcourse import mdp
from tests.honesty import assert_verdict, honesty_cases

# ---- discounted_returns ------------------------------------------------------------------


def returns_off_by_one(rewards, gamma):
    """G[t] starts with rewards[t + 1]: the reward of action t is left out."""
    r = np.asarray(rewards, float)
    G = mdp.discounted_returns(r, gamma)
    out = np.zeros_like(G)
    out[..., :-1] = G[..., 1:]
    return out


def returns_forward_cumsum(rewards, gamma):
    """Accumulates forwards (rewards so far) without any discount."""
    return np.cumsum(np.asarray(rewards, float), axis=-1)


def returns_no_gamma_in_recursion(rewards, gamma):
    """G[t] = rewards[t] + G[t + 1]: gamma forgotten in the recursion."""
    r = np.asarray(rewards, float)
    return np.flip(np.cumsum(np.flip(r, -1), axis=-1), -1)


def returns_ignore_start_time(rewards, gamma):
    """E-01: every G_t discounts from time 0 (gamma^k r_k for k >= t) instead of from t."""
    r = np.asarray(rewards, float)
    w = gamma ** np.arange(r.shape[-1])
    return np.flip(np.cumsum(np.flip(r * w, -1), axis=-1), -1)


def returns_discount_first_reward(rewards, gamma):
    """G[t] = gamma * (rewards[t] + G[t + 1]): the first reward is discounted too."""
    return gamma * mdp.discounted_returns(rewards, gamma)


def returns_in_place(rewards, gamma):
    """Right numbers, but overwrites the caller's reward array."""
    r = np.asarray(rewards)
    if r.dtype != float:
        return mdp.discounted_returns(r, gamma)
    for t in range(r.shape[-1] - 2, -1, -1):
        r[..., t] += gamma * r[..., t + 1]
    return r


def returns_1d_only(rewards, gamma):
    """A loop over a flat list: a batch [N, T] is treated as one long episode."""
    r = np.asarray(rewards, float)
    return mdp.discounted_returns(r.ravel(), gamma).reshape(r.shape)


# ---- policy_matrices ---------------------------------------------------------------------


def pm_transposed(m, pi):
    P_pi, R_pi = mdp.policy_matrices(m, pi)
    return P_pi.T, R_pi


def pm_wrong_einsum(m, pi):
    """Reads P[t, a, s] as P(t | s, a): source and next state mixed up."""
    return np.einsum("sa,tas->st", pi, m.P), np.einsum("sa,sa->s", pi, m.R)


def pm_reward_not_weighted(m, pi):
    P_pi, _ = mdp.policy_matrices(m, pi)
    return P_pi, m.R.mean(axis=1)


def pm_first_action_only(m, pi):
    _, R_pi = mdp.policy_matrices(m, pi)
    return m.P[:, 0, :], R_pi


def pm_swapped_outputs(m, pi):
    P_pi, R_pi = mdp.policy_matrices(m, pi)
    return R_pi, P_pi


# ---- evaluate_policy ---------------------------------------------------------------------


def ev_missing_gamma(m, pi):
    P_pi, R_pi = mdp.policy_matrices(m, pi)
    return np.linalg.solve(np.eye(m.n_states) - P_pi, R_pi)


def ev_p_not_averaged(m, pi):
    """Uses the dynamics of action 0 instead of averaging P over the policy."""
    _, R_pi = mdp.policy_matrices(m, pi)
    return np.linalg.solve(np.eye(m.n_states) - m.gamma * m.P[:, 0, :], R_pi)


def ev_transposed(m, pi):
    P_pi, R_pi = mdp.policy_matrices(m, pi)
    return np.linalg.solve(np.eye(m.n_states) - m.gamma * P_pi.T, R_pi)


def ev_wrong_sign(m, pi):
    P_pi, R_pi = mdp.policy_matrices(m, pi)
    return np.linalg.solve(np.eye(m.n_states) + m.gamma * P_pi, R_pi)


def ev_one_backup(m, pi):
    """Only one step of look-ahead: R_pi + gamma P_pi R_pi."""
    P_pi, R_pi = mdp.policy_matrices(m, pi)
    return R_pi + m.gamma * P_pi @ R_pi


def ev_full_system(m, pi):
    """The full S x S system: right for gamma < 1, singular at gamma = 1 (LinAlgError)."""
    P_pi, R_pi = mdp.policy_matrices(m, pi)
    return np.linalg.solve(np.eye(m.n_states) - m.gamma * P_pi, R_pi)


def ev_full_system_lstsq(m, pi):
    """Sidesteps the singular full system with least squares: a wrong solution at gamma = 1."""
    P_pi, R_pi = mdp.policy_matrices(m, pi)
    return np.linalg.lstsq(np.eye(m.n_states) - m.gamma * P_pi, R_pi, rcond=None)[0]


def ev_drop_last_state(m, pi):
    """Assumes the terminal state is the last one and drops only that row and column."""
    P_pi, R_pi = mdp.policy_matrices(m, pi)
    V = np.zeros(m.n_states)
    V[:-1] = np.linalg.solve(np.eye(m.n_states - 1) - m.gamma * P_pi[:-1, :-1], R_pi[:-1])
    return V


def ev_reduced_only(m, pi):
    """Returns V_N of the non-terminal states only (shape [|N|], not [S])."""
    return mdp.evaluate_policy(m, pi)[~m.terminal]


# ---- bellman_optimality_backup -----------------------------------------------------------


def bo_sum_over_actions(m, V):
    out = mdp.q_from_v(m, V).sum(axis=1)
    out[m.terminal] = 0.0
    return out


def bo_mean_over_actions(m, V):
    """The expectation backup of the uniform policy, not the optimality backup."""
    out = mdp.q_from_v(m, V).mean(axis=1)
    out[m.terminal] = 0.0
    return out


def bo_no_terminal_mask(m, V):
    return mdp.q_from_v(m, V).max(axis=1)


def bo_missing_gamma(m, V):
    out = (m.R + m.P @ np.asarray(V, float)).max(axis=1)
    out[m.terminal] = 0.0
    return out


def bo_max_outside_expectation(m, V):
    """max over next states instead of actions: R + gamma max_s' V(s')."""
    out = m.R.max(axis=1) + m.gamma * np.max(V)
    return np.where(m.terminal, 0.0, out)


def bo_max_axis0(m, V):
    """Maximum over states instead of actions."""
    return mdp.q_from_v(m, V).max(axis=0)


# ---- value_iteration ---------------------------------------------------------------------


def _vi(stop, *, gamma=None, axis=1, count_shift=0, one_sweep=False, max_iter=10_000):
    """Value iteration with one planted change; ``stop(V_new, V, theta)`` is the stopping rule."""
    def fn(m, theta, max_iter=max_iter):
        g = m.gamma if gamma is None else gamma
        V = np.zeros(m.n_states)
        for k in range(1, max_iter + 1):
            V_new = (m.R + g * m.P @ V).max(axis=axis)
            V_new = np.where(m.terminal, 0.0, V_new)
            if one_sweep or stop(V_new, V, theta):
                Q = m.R + m.gamma * m.P @ V_new
                return V_new, np.eye(m.n_actions)[Q.argmax(axis=1)], k + count_shift
            V = V_new
        raise RuntimeError("value iteration did not converge")
    return fn


def _sup_change(V_new, V, theta):
    return np.max(np.abs(V_new - V)) < theta


def vi_stop_on_size_of_v(m, theta):
    """Stops when max |V| < theta: the size of V, not its change (never stops)."""
    return _vi(lambda V_new, V, t: np.max(np.abs(V_new)) < t)(m, theta)


def vi_stop_on_first_state(m, theta):
    """Looks only at the change of state 0."""
    return _vi(lambda V_new, V, t: abs(V_new[0] - V[0]) < t)(m, theta)


def vi_stop_on_mean_change(m, theta):
    """Stops when the mean change is small: stops early when a few states still move."""
    return _vi(lambda V_new, V, t: np.mean(np.abs(V_new - V)) < t)(m, theta)


def vi_one_sweep(m, theta):
    return _vi(_sup_change, one_sweep=True)(m, theta)


def vi_no_discount(m, theta):
    return _vi(_sup_change, gamma=1.0)(m, theta)


def vi_max_over_states(m, theta):
    return _vi(_sup_change, axis=0)(m, theta)


def vi_count_from_zero(m, theta):
    """Counts the sweeps before the stopping one only (k - 1)."""
    return _vi(_sup_change, count_shift=-1)(m, theta)


def vi_count_one_extra(m, theta):
    return _vi(_sup_change, count_shift=1)(m, theta)


def vi_policy_from_rewards(m, theta):
    """Right values, but the policy is greedy for the immediate reward R only."""
    V, _, k = mdp.value_iteration(m, theta)
    return V, np.eye(m.n_actions)[m.R.argmax(axis=1)], k


def vi_policy_as_indices(m, theta):
    """Returns the greedy actions [S] instead of the one-hot matrix [S, A]."""
    V, pi, k = mdp.value_iteration(m, theta)
    return V, pi.argmax(axis=1), k


def vi_gauss_seidel(m, theta):
    """Updates V state by state in place (Gauss-Seidel): other V values and sweep counts."""
    V = np.zeros(m.n_states)
    for k in range(1, 10_001):
        change = 0.0
        for s in np.flatnonzero(~m.terminal):
            new = np.max(m.R[s] + m.gamma * m.P[s] @ V)
            change, V[s] = max(change, abs(new - V[s])), new
        if change < theta:
            return V, np.eye(m.n_actions)[(m.R + m.gamma * m.P @ V).argmax(axis=1)], k
    raise RuntimeError("no convergence")


WRONG_ANSWERS = {
    "mdp.discounted_returns": {
        "off-by-one-start": returns_off_by_one,
        "forward-cumsum-no-discount": returns_forward_cumsum,
        "no-gamma-in-recursion": returns_no_gamma_in_recursion,
        "ignores-start-time-E01": returns_ignore_start_time,
        "discounts-first-reward": returns_discount_first_reward,
        "modifies-input": returns_in_place,
        "flattens-batch": returns_1d_only,
    },
    "mdp.policy_matrices": {
        "transposed": pm_transposed,
        "wrong-einsum": pm_wrong_einsum,
        "reward-not-weighted": pm_reward_not_weighted,
        "first-action-only": pm_first_action_only,
        "swapped-outputs": pm_swapped_outputs,
    },
    "mdp.evaluate_policy": {
        "missing-gamma": ev_missing_gamma,
        "P-not-averaged-over-pi": ev_p_not_averaged,
        "transposed-P_pi": ev_transposed,
        "wrong-sign": ev_wrong_sign,
        "one-step-lookahead": ev_one_backup,
        "full-system-singular-at-gamma-1": ev_full_system,
        "full-system-least-squares": ev_full_system_lstsq,
        "drops-last-state-only": ev_drop_last_state,
        "returns-non-terminal-values-only": ev_reduced_only,
    },
    "mdp.bellman_optimality_backup": {
        "sum-instead-of-max": bo_sum_over_actions,
        "mean-instead-of-max": bo_mean_over_actions,
        "no-terminal-mask": bo_no_terminal_mask,
        "missing-gamma": bo_missing_gamma,
        "max-over-next-states": bo_max_outside_expectation,
        "max-over-states-axis": bo_max_axis0,
    },
    "mdp.value_iteration": {
        "stops-on-size-of-V": vi_stop_on_size_of_v,
        "stops-on-first-state-change": vi_stop_on_first_state,
        "stops-on-mean-change": vi_stop_on_mean_change,
        "stops-after-one-sweep": vi_one_sweep,
        "no-discount": vi_no_discount,
        "max-over-states-axis": vi_max_over_states,
        "count-misses-stopping-sweep": vi_count_from_zero,
        "count-one-extra": vi_count_one_extra,
        "policy-greedy-for-R": vi_policy_from_rewards,
        "policy-as-action-indices": vi_policy_as_indices,
        "in-place-gauss-seidel": vi_gauss_seidel,
    },
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_notebook_exercise_is_covered():
    from rlcourse import exercises

    exercises.get("mdp.discounted_returns")  # loads every check module
    mine = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "02_mdp_dp"}
    assert mine == set(WRONG_ANSWERS)
