"""Honesty of notebook 08's checks."""

from __future__ import annotations

import math

import pytest
import torch

from tests.honesty import assert_verdict, honesty_cases

WRONG_ANSWERS = {
    "wider.soft_state_value": {
        "entropy sign flipped": lambda q, lp, a: (lp.exp() * (q + a * lp)).sum(-1),
        "unweighted mean": lambda q, lp, a: (q - a * lp).mean(-1),
        "sums over dim 1": lambda q, lp, a: (lp.exp() * (q - a * lp)).sum(dim=1),
        "sums over every axis but the first": lambda q, lp, a: (
            (lp.exp() * (q - a * lp)).flatten(1).sum(1) if q.ndim > 1
            else (lp.exp() * (q - a * lp)).sum()),
    },
    "wider.td3_target": {
        "max instead of min": lambda r, q1, q2, t, g: r + g * (~t) * torch.maximum(q1, q2),
        "no terminal mask": lambda r, q1, q2, t, g: r + g * torch.minimum(q1, q2),
    },
    "wider.uct_score": {
        "no square root": lambda v, n, p, c=1.4: (
            math.inf if n == 0 else v / n + c * math.log(p) / n),
        "visits swapped": lambda v, n, p, c=1.4: (
            math.inf if n == 0 else v / n + c * math.sqrt(math.log(n) / p)),
    },
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)
