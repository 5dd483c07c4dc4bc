"""Checks for notebook 08 (the wider map)."""

from __future__ import annotations

import math

import torch

from rlcourse import wider
from rlcourse.exercises import call_with, expect_close, expect_true, register

NB = "08_wider_map"


@register("wider.soft_state_value", notebook=NB, reference=wider.soft_state_value,
          hint="Weight each action by pi(a|s) and subtract alpha * log pi(a|s) from its Q.")
def _soft_value(fn):
    q = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    logp = torch.log(torch.tensor([[0.2, 0.3, 0.5], [0.5, 0.25, 0.25]]))
    expected = (logp.exp() * (q - 0.5 * logp)).sum(-1)
    expect_close(fn(q, logp, 0.5), expected, "q=[[1,2,3],[0,0,0]], alpha=0.5")
    expect_close(fn(q, logp, 0.0), (logp.exp() * q).sum(-1), "alpha=0 (plain expected Q)")
    # other shapes: the actions are always the last axis
    q1, p1 = torch.tensor([1.0, -1.0]), torch.tensor([0.75, 0.25])
    what = "a single state: q=[1, -1], pi=[0.75, 0.25], alpha=1 (shape [A] -> a scalar)"
    expect_close(call_with(fn, what, q1, p1.log(), 1.0),
                 0.75 * (1 - math.log(0.75)) + 0.25 * (-1 - math.log(0.25)), what)
    gen = torch.Generator().manual_seed(0)
    q3 = torch.randn(2, 3, 4, generator=gen)
    logp3 = torch.log_softmax(torch.randn(2, 3, 4, generator=gen), -1)
    what = "a random batch of shape [2, 3, 4] (4 actions), alpha=0.2: expected shape [2, 3]"
    expect_close(call_with(fn, what, q3, logp3, 0.2), _soft_value_brute(q3, logp3, 0.2), what,
                 atol=1e-5)


def _soft_value_brute(q, logp, alpha):
    """sum_a pi(a) (Q(a) - alpha log pi(a)) by an explicit loop over the last axis."""
    out = torch.zeros(q.shape[:-1])
    for a in range(q.shape[-1]):
        out += logp[..., a].exp() * (q[..., a] - alpha * logp[..., a])
    return out


@register("wider.td3_target", notebook=NB, reference=wider.td3_target,
          hint="Take the smaller of the two target critics, and drop it after termination.")
def _td3(fn):
    r = torch.tensor([1.0, 0.0, 2.0])
    q1, q2 = torch.tensor([5.0, 3.0, 7.0]), torch.tensor([4.0, 6.0, 9.0])
    term = torch.tensor([False, False, True])
    expect_close(fn(r, q1, q2, term, 0.9), [1 + 0.9 * 4, 0.9 * 3, 2.0],
                 "r=[1,0,2], Q1'=[5,3,7], Q2'=[4,6,9], terminated=[F,F,T], gamma=0.9")


@register("wider.uct_score", notebook=NB, reference=wider.uct_score,
          hint="Mean value plus c * sqrt(ln(parent visits) / child visits); unvisited = inf.")
def _uct(fn):
    expect_true(fn(0.0, 0, 10, 1.4) == math.inf, "an unvisited child must score +inf")
    expect_close(fn(3.0, 4, 20, 1.4), 0.75 + 1.4 * math.sqrt(math.log(20) / 4),
                 "value_sum=3, visits=4, parent_visits=20, c=1.4")
    expect_close(fn(1.0, 1, 1, 2.0), 1.0, "parent_visits=1 (ln 1 = 0)")
