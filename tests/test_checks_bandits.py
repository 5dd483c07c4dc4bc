"""Exercise-honesty tests for notebook 01: each check rejects plausible wrong answers."""

import math

import numpy as np
import pytest

from rlcourse import bandits
from tests.honesty import assert_verdict, honesty_cases


def _mean_over_n_plus_1(q, n, reward):
    return q + (np.asarray(reward) - q) / (np.asarray(n) + 1)


def _forgot_minus_q(q, n, reward):
    return q + np.asarray(reward) / np.asarray(n)


def _halfway(q, n, reward):
    return (np.asarray(q) + np.asarray(reward)) / 2


def _eps_explores_only_non_greedy(q, epsilon):
    q = np.asarray(q, float)
    k = q.shape[-1]
    greedy = q == q.max(axis=-1, keepdims=True)
    return np.where(greedy, 1 - epsilon, epsilon / (k - 1))


def _eps_greedy_arm_misses_share(q, epsilon):
    q = np.asarray(q, float)
    k = q.shape[-1]
    greedy = q == q.max(axis=-1, keepdims=True)
    return np.where(greedy, 1 - epsilon, epsilon / k)


def _eps_first_index_on_ties(q, epsilon):
    q = np.asarray(q, float)
    k = q.shape[-1]
    onehot = np.eye(k)[np.argmax(q, axis=-1)]
    return epsilon / k + (1 - epsilon) * onehot


def _eps_k_from_first_axis(q, epsilon):
    """Reads K as q.shape[0]: right for one run, wrong for a batch of runs."""
    q = np.asarray(q, float)
    greedy = q == q.max(axis=-1, keepdims=True)
    return epsilon / q.shape[0] + (1 - epsilon) * greedy / greedy.sum(axis=-1, keepdims=True)


def _eps_max_over_first_axis(q, epsilon):
    """Takes the max over axis 0 (across runs) instead of over the arms."""
    q = np.asarray(q, float)
    greedy = q == q.max(axis=0)
    return epsilon / q.shape[-1] + (1 - epsilon) * greedy / greedy.sum(axis=-1, keepdims=True)


def _eps_sum_without_keepdims(q, epsilon):
    """Counts the ties with sum(axis=-1) but no keepdims: broadcasts wrongly for a batch."""
    q = np.asarray(q, float)
    greedy = q == q.max(axis=-1, keepdims=True)
    return epsilon / q.shape[-1] + (1 - epsilon) * greedy / greedy.sum(axis=-1)


def _ucb_no_sqrt(q, counts, t, c):
    counts = np.asarray(counts, float)
    with np.errstate(divide="ignore"):
        bonus = c * math.log(t) / np.where(counts > 0, counts, 0.0)
    return np.where(counts > 0, q + bonus, np.inf)


def _ucb_linear_t(q, counts, t, c):
    counts = np.asarray(counts, float)
    safe = np.where(counts > 0, counts, 1.0)
    return np.where(counts > 0, q + c * np.sqrt(t / safe), np.inf)


def _ucb_n_plus_1(q, counts, t, c):
    return np.asarray(q) + c * np.sqrt(math.log(t) / (np.asarray(counts, float) + 1))


def _ucb_no_special_case(q, counts, t, c):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(q) + c * np.sqrt(math.log(t) / np.asarray(counts, float))


def _grad_flipped_sign(h, action, reward, baseline, step_size):
    h = np.asarray(h, float)
    onehot = np.eye(h.shape[1])[action]
    adv = (np.asarray(reward) - np.asarray(baseline))[:, None]
    return h + step_size * adv * (bandits.softmax(h) - onehot)


def _grad_no_baseline(h, action, reward, baseline, step_size):
    h = np.asarray(h, float)
    onehot = np.eye(h.shape[1])[action]
    return h + step_size * np.asarray(reward)[:, None] * (onehot - bandits.softmax(h))


def _grad_only_chosen_arm(h, action, reward, baseline, step_size):
    h = np.asarray(h, float).copy()
    rows = np.arange(h.shape[0])
    pi = bandits.softmax(h)
    h[rows, action] += step_size * (reward - baseline) * (1 - pi[rows, action])
    return h


def _beta_swapped(alpha, beta, action, reward):
    a, b = np.array(alpha, float), np.array(beta, float)
    rows = np.arange(a.shape[0])
    a[rows, action] += 1 - np.asarray(reward)
    b[rows, action] += np.asarray(reward)
    return a, b


def _beta_counts_pulls(alpha, beta, action, reward):
    a, b = np.array(alpha, float), np.array(beta, float)
    rows = np.arange(a.shape[0])
    a[rows, action] += np.asarray(reward)
    b[rows, action] += 1
    return a, b


def _beta_updates_every_arm(alpha, beta, action, reward):
    r = np.asarray(reward, float)[:, None]
    return np.asarray(alpha) + r, np.asarray(beta) + 1 - r


def _beta_in_place(alpha, beta, action, reward):
    """Right numbers, but updates the caller's arrays in place (and returns them)."""
    rows = np.arange(alpha.shape[0])
    alpha[rows, action] += np.asarray(reward)
    beta[rows, action] += 1 - np.asarray(reward)
    return alpha, beta


def _beta_returns_stacked(alpha, beta, action, reward):
    """Right numbers, returned as one dict instead of the pair (alpha, beta)."""
    a, b = bandits.beta_posterior_update(alpha, beta, action, reward)
    return {"alpha": a, "beta": b}


def _beta_returns_only_alpha(alpha, beta, action, reward):
    """Forgets to return beta."""
    return bandits.beta_posterior_update(alpha, beta, action, reward)[0]


WRONG_ANSWERS = {
    "bandits.incremental_mean": {
        "divides-by-n-plus-1": _mean_over_n_plus_1,
        "forgets-minus-q": _forgot_minus_q,
        "halfway-average": _halfway,
    },
    "bandits.epsilon_greedy_probs": {
        "explores-only-non-greedy-arms": _eps_explores_only_non_greedy,
        "greedy-arm-misses-its-eps-over-K": _eps_greedy_arm_misses_share,
        "first-index-wins-ties": _eps_first_index_on_ties,
        "K-from-first-axis": _eps_k_from_first_axis,
        "max-over-first-axis": _eps_max_over_first_axis,
        "sum-without-keepdims": _eps_sum_without_keepdims,
    },
    "bandits.ucb_scores": {
        "no-sqrt": _ucb_no_sqrt,
        "t-instead-of-ln-t": _ucb_linear_t,
        "counts-plus-1": _ucb_n_plus_1,
        "no-untried-special-case": _ucb_no_special_case,
    },
    "bandits.gradient_bandit_update": {
        "flipped-sign": _grad_flipped_sign,
        "ignores-baseline": _grad_no_baseline,
        "only-chosen-arm": _grad_only_chosen_arm,
    },
    "bandits.beta_posterior_update": {
        "success-failure-swapped": _beta_swapped,
        "beta-counts-pulls": _beta_counts_pulls,
        "updates-every-arm": _beta_updates_every_arm,
        "updates-inputs-in-place": _beta_in_place,
        "returns-a-dict": _beta_returns_stacked,
        "returns-only-alpha": _beta_returns_only_alpha,
    },
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_exercise_of_the_notebook_has_wrong_answers():
    from rlcourse import exercises

    exercises.get("bandits.incremental_mean")  # loads all checks
    mine = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "01_bandits"}
    assert mine == set(WRONG_ANSWERS)


@pytest.mark.parametrize("candidate,words", [
    (_beta_in_place, "changed the alpha/beta arrays it was given"),
    (_beta_returns_stacked, "expected a tuple or list of 2 items, got a dict"),
    (_beta_returns_only_alpha, "expected a tuple or list of 2 items, got a ndarray"),
    (lambda alpha, beta, action, reward: None, "got a NoneType"),
])
def test_beta_posterior_failures_say_what_was_expected(candidate, words):
    from rlcourse import exercises

    result = exercises.evaluate("bandits.beta_posterior_update", candidate)
    assert result.status == "failed" and words in result.message, result
