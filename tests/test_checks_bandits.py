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
