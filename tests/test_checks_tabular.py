"""Honesty tests for the checks of notebook 03: blanks and plausible wrong answers fail."""

import numpy as np
import pytest

from rlcourse import exercises
from tests.honesty import assert_verdict, honesty_cases


def _disc(rewards, gamma):
    r = np.asarray(rewards, dtype=float)
    return (r * gamma ** np.arange(r.shape[-1])).sum(axis=-1)


def _nstep(power_shift=0, mask=True, discount_rewards=True):
    def fn(rewards, bootstrap, terminated, gamma):
        r = np.asarray(rewards, dtype=float)
        k = r.shape[-1]
        head = _disc(r, gamma) if discount_rewards else r.sum(axis=-1)
        keep = 1.0 - np.asarray(terminated, dtype=float) if mask else 1.0
        return head + gamma ** (k + power_shift) * keep * np.asarray(bootstrap, dtype=float)
    return fn


def _weights_no_zero_case(p, q):
    p, q = np.asarray(p, float), np.asarray(q, float)
    if np.any((q == 0) & (p > 0)):
        raise ValueError("support")
    with np.errstate(invalid="ignore", divide="ignore"):
        return p / q


def _weights_no_support_error(p, q):
    p, q = np.asarray(p, float), np.asarray(q, float)
    return np.divide(p, q, out=np.zeros(p.shape), where=q > 0)


def _weights_first_zero_only(p, q):
    """Checks the support only at q's first zero (q.argmin()), so a later violation slips by."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if q.min() == 0 and p.flat[q.argmin()] > 0:
        raise ValueError("support")
    return np.divide(p, q, out=np.zeros(p.shape), where=q > 0)


def _weights_inverted(p, q):
    p, q = np.asarray(p, float), np.asarray(q, float)
    if np.any((q == 0) & (p > 0)):
        raise ValueError("support")
    return np.divide(q, p, out=np.zeros(p.shape), where=p > 0)


WRONG_ANSWERS = {
    "tabular.td_error": {
        # the seed notes' prose (E-42): gamma multiplies (V(s') - V(s))
        "gamma-on-difference": lambda r, v, v2, t, g: r + g * (1 - np.asarray(t, float)) * (v2 - v),
        "no-terminal-mask": lambda r, v, v2, t, g: r + g * v2 - v,
        "wrong-sign": lambda r, v, v2, t, g: v - (r + g * (1 - np.asarray(t, float)) * v2),
        "no-gamma": lambda r, v, v2, t, g: r + (1 - np.asarray(t, float)) * v2 - v,
    },
    "tabular.n_step_return": {
        "bootstrap-power-k-minus-1": _nstep(power_shift=-1),
        "bootstrap-power-k-plus-1": _nstep(power_shift=1),
        "no-terminal-mask": _nstep(mask=False),
        "undiscounted-rewards": _nstep(discount_rewards=False),
        "first-reward-discounted": lambda r, b, t, g: g * _nstep()(r, b, t, g),
        "len-instead-of-last-axis": lambda r, b, t, g: (
            (np.asarray(r) * g ** np.arange(np.shape(r)[-1])).sum(axis=-1)
            + g ** len(r) * (1 - np.asarray(t, float)) * b),
    },
    "tabular.sarsa_target": {
        "max-instead-of-next-action": lambda r, q, a, t, g: r + (0.0 if t else g * max(q)),
        "no-terminal-mask": lambda r, q, a, t, g: r + g * q[a],
        "first-action": lambda r, q, a, t, g: r + (0.0 if t else g * q[0]),
    },
    "tabular.q_learning_target": {
        "no-terminal-mask": lambda r, q, t, g: r + g * np.max(q),
        "mean-instead-of-max": lambda r, q, t, g: r + (0.0 if t else g * np.mean(q)),
        "max-abs": lambda r, q, t, g: r + (0.0 if t else g * np.max(np.abs(q))),
        "no-gamma": lambda r, q, t, g: r + (0.0 if t else np.max(q)),
    },
    "tabular.importance_weights": {
        "q-over-p": _weights_inverted,
        "nan-where-both-zero": _weights_no_zero_case,
        "no-support-error": _weights_no_support_error,
        "support-checked-at-first-zero-only": _weights_first_zero_only,
    },
    "tabular.shaped_reward": {
        "gamma-on-current-potential": lambda r, p, p2, t, g: r + (1 - np.asarray(t, float)) * p2
        - g * p,
        "sign-flipped": lambda r, p, p2, t, g: r + p - g * (1 - np.asarray(t, float)) * p2,
        "no-terminal-mask": lambda r, p, p2, t, g: r + g * p2 - p,
    },
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_exercise_of_the_notebook_is_covered():
    exercises.get("tabular.td_error")  # loads the registry
    mine = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "03_model_free"}
    assert mine == set(WRONG_ANSWERS)


def test_failure_messages_name_the_input():
    result = exercises.evaluate("tabular.td_error", WRONG_ANSWERS["tabular.td_error"]["no-gamma"])
    assert result.status == "failed"
    assert "gamma=0.9" in result.message and "expected" in result.message
