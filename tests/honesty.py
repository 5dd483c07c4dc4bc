"""Shared machinery for the exercise-honesty tests.

Each ``tests/test_checks_<topic>.py`` defines ``WRONG_ANSWERS = {exercise: {label: fn}}`` with
at least one plausible wrong answer per exercise and calls :func:`honesty_cases` to get the
parameters of its test. For every exercise the test proves that the check

* fails on the blank the learner notebook contains (a function raising NotImplementedError),
* fails on every listed wrong answer,
* passes on the reference implementation.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rlcourse import exercises


def blank(*args, **kwargs):
    """What a learner notebook's exercise does before the learner writes anything."""
    raise NotImplementedError("Exercise: replace this line with your code")


def honesty_cases(wrong_answers: dict[str, dict[str, Callable]]) -> list:
    """pytest params (name, candidate, expected status) for blank, wrong answers, reference."""
    params = []
    for name, wrongs in wrong_answers.items():
        params.append(pytest.param(name, blank, "blank", id=f"{name}-blank"))
        params.append(pytest.param(name, None, "passed", id=f"{name}-reference"))
        for label, fn in wrongs.items():
            params.append(pytest.param(name, fn, "failed", id=f"{name}-wrong-{label}"))
    return params


def assert_verdict(name: str, candidate: Callable | None, expected: str) -> None:
    """Evaluate ``candidate`` (None means the reference) and compare with ``expected``."""
    ex = exercises.get(name)
    result = exercises.evaluate(name, ex.reference if candidate is None else candidate)
    assert result.status == expected, f"{name}: expected {expected}, got {result}"
    if expected == "failed":
        assert result.message, "a failing check must say what is wrong"
