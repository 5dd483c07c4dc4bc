"""Honesty of notebook 17's checks: each fails on the blank and on plausible mistakes."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from rlcourse import continuous
from tests.honesty import assert_verdict, honesty_cases

LOG_2PI = math.log(2 * math.pi)
lp = continuous.gaussian_log_prob


def _squashed_with(log_det):
    return lambda u, m, s: lp(u, m, s) - log_det(u)


def _actor_with(body):
    """An actor loss built from ``body(u, mean, log_std, q1, q2, alpha) -> per-sample``."""
    def fn(mean, log_std, eps, q_fn, alpha):
        u = mean + log_std.exp() * eps
        q1, q2 = q_fn(torch.tanh(u))
        return body(u, mean, log_std, q1, q2, alpha).mean()
    return fn


def _not_reparameterised(mean, log_std, eps, q_fn, alpha):
    u = mean + log_std.exp() * eps
    q1, q2 = q_fn(torch.tanh(u.detach()))  # the critics see a constant action
    return (alpha * continuous.squashed_log_prob(u, mean, log_std)
            - torch.minimum(q1, q2)).mean()


def _temperature_no_detach(log_alpha, logp, target):
    return -(log_alpha * (logp + target)).mean()


sq = continuous.squashed_log_prob
WRONG_ANSWERS = {
    "continuous.gaussian_log_prob": {
        "log-std used as the std": lambda a, m, s: (
            -0.5 * ((a - m) / s) ** 2 - torch.log(s.abs() + 1e-12) - 0.5 * LOG_2PI).sum(-1),
        "std used as the log-std": lambda a, m, s: (
            -0.5 * ((a - m) / s.exp()) ** 2 - s.exp() - 0.5 * LOG_2PI).sum(-1),
        "no -log sigma term": lambda a, m, s: (
            -0.5 * ((a - m) / s.exp()) ** 2 - 0.5 * LOG_2PI).sum(-1),
        "no normalising constant": lambda a, m, s: (
            -0.5 * ((a - m) / s.exp()) ** 2 - s).sum(-1),
        "variance instead of std in z": lambda a, m, s: (
            -0.5 * ((a - m) / (2 * s).exp()) ** 2 - s - 0.5 * LOG_2PI).sum(-1),
        "mean over dimensions": lambda a, m, s: (
            -0.5 * ((a - m) / s.exp()) ** 2 - s - 0.5 * LOG_2PI).mean(-1),
        "not summed": lambda a, m, s: -0.5 * ((a - m) / s.exp()) ** 2 - s - 0.5 * LOG_2PI,
        "sign flipped": lambda a, m, s: -continuous.gaussian_log_prob(a, m, s),
    },
    "continuous.gaussian_entropy": {
        "std instead of log-std": lambda m, s: (
            0.5 + 0.5 * LOG_2PI + s.exp().expand_as(m)).sum(-1),
        "no 0.5 constant": lambda m, s: (0.5 * LOG_2PI + s.expand_as(m)).sum(-1),
        "mean over dimensions": lambda m, s: (0.5 + 0.5 * LOG_2PI + s.expand_as(m)).mean(-1),
        "not broadcast to the batch": lambda m, s: (0.5 + 0.5 * LOG_2PI + s).sum(-1),
        "negative log-prob at the mean": lambda m, s: (0.5 * LOG_2PI + s.expand_as(m)).sum(-1),
    },
    "continuous.squashed_log_prob": {
        "missing log-det term": lambda u, m, s: lp(u, m, s),
        "log-det with the wrong sign": lambda u, m, s: lp(u, m, s) + continuous.tanh_log_det(u),
        "log(1 - u^2) instead of log(1 - tanh(u)^2)": _squashed_with(
            lambda u: torch.log((1 - u ** 2).abs() + 1e-6).sum(-1)),
        "naive log(1 - tanh(u)^2)": _squashed_with(
            lambda u: torch.log(1 - torch.tanh(u) ** 2).sum(-1)),
        "log(1 - tanh(u)^2 + 1e-6)": _squashed_with(
            lambda u: torch.log(1 - torch.tanh(u) ** 2 + 1e-6).sum(-1)),
        "log-det not summed": lambda u, m, s: lp(u, m, s)[..., None] - 2 * (
            math.log(2) - u - F.softplus(-2 * u)),
        "density of tanh(mean) instead of the sample": lambda u, m, s: sq(m, m, s),
    },
    "continuous.sac_target": {
        "max instead of min": lambda r, q1, q2, lp_, t, g, a: (
            r + g * (~t) * (torch.maximum(q1, q2) - a * lp_)),
        "bootstraps through termination": lambda r, q1, q2, lp_, t, g, a: (
            r + g * (torch.minimum(q1, q2) - a * lp_)),
        "no entropy term": lambda r, q1, q2, lp_, t, g, a: r + g * (~t) * torch.minimum(q1, q2),
        "entropy term with the wrong sign": lambda r, q1, q2, lp_, t, g, a: (
            r + g * (~t) * (torch.minimum(q1, q2) + a * lp_)),
        "alpha outside the bracket": lambda r, q1, q2, lp_, t, g, a: (
            r + g * (~t) * a * (torch.minimum(q1, q2) - lp_)),
        "entropy term not discounted": lambda r, q1, q2, lp_, t, g, a: (
            r + g * (~t) * torch.minimum(q1, q2) - a * lp_),
        "mean of the twins": lambda r, q1, q2, lp_, t, g, a: (
            r + g * (~t) * (0.5 * (q1 + q2) - a * lp_)),
    },
    "continuous.actor_loss": {
        "not reparameterised (action detached)": _not_reparameterised,
        "max over the twins": _actor_with(
            lambda u, m, s, q1, q2, a: a * sq(u, m, s) - torch.maximum(q1, q2)),
        "Q1 only": _actor_with(lambda u, m, s, q1, q2, a: a * sq(u, m, s) - q1),
        "sign flipped": _actor_with(
            lambda u, m, s, q1, q2, a: torch.minimum(q1, q2) - a * sq(u, m, s)),
        "missing log-det (Gaussian log-prob of u)": _actor_with(
            lambda u, m, s, q1, q2, a: a * lp(u, m, s) - torch.minimum(q1, q2)),
        "alpha outside the bracket": _actor_with(
            lambda u, m, s, q1, q2, a: a * (sq(u, m, s) - torch.minimum(q1, q2))),
        "log-prob detached": _actor_with(
            lambda u, m, s, q1, q2, a: a * sq(u, m, s).detach() - torch.minimum(q1, q2)),
    },
    "continuous.temperature_loss": {
        "sign flipped": lambda la, lp_, t: (la * (lp_.detach() + t)).mean(),
        "log pi not detached": _temperature_no_detach,
        "target entropy subtracted": lambda la, lp_, t: -(la * (lp_.detach() - t)).mean(),
        "alpha instead of log alpha": lambda la, lp_, t: -(la.exp() * (lp_.detach() + t)).mean(),
    },
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)
