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
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_notebook_exercise_is_covered():
    from rlcourse import exercises

    exercises.get("mdp.discounted_returns")  # loads every check module
    mine = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "02_mdp_dp"}
    assert mine == set(WRONG_ANSWERS)
