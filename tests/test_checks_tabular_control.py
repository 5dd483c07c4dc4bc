"""Honesty tests for the checks of notebook 15: blanks and plausible wrong answers fail."""

import numpy as np
import pytest

from rlcourse import exercises
from rlcourse import tabular_control as tc
from tests.honesty import assert_verdict, honesty_cases


def _es(expectation):
    """An Expected SARSA target built on a (wrong) expectation of the row q [..., A]."""
    def fn(r, q, t, g, eps):
        q = np.asarray(q, float)
        return r + g * (1 - np.asarray(t, float)) * expectation(q, eps)
    return fn


def _greedy_forgets_eps_share(q, eps):
    n_a = q.shape[-1]
    return (1 - eps) * q.max(-1) + eps / n_a * (q.sum(-1) - q.max(-1))


def _double_q(select, evaluate, coin_mode="coin", mask=True):
    """Double Q variants: select/evaluate name which table ('self', 'other', 'sum') plays it."""
    def fn(q1, q2, s, a, r, s2, term, coin, alpha, gamma):
        coin = np.asarray(coin, bool)
        if coin_mode == "always_q1":
            coin = np.ones_like(coin)
        elif coin_mode == "inverted":
            coin = ~coin
        keep = 1.0 - np.asarray(term, float) if mask else 1.0
        keep = np.broadcast_to(keep, np.shape(r))
        tables = {True: (q1, q2), False: (q2, q1)}
        targets = {}
        for flag, (upd, other) in tables.items():
            pick = {"self": upd, "other": other, "sum": upd + other}
            best = pick[select][s2].argmax(-1)
            value = pick[evaluate][s2, best] if evaluate != "max" else upd[s2].max(-1)
            targets[flag] = r + gamma * keep * value
        for flag, (upd, _) in tables.items():
            rows = coin == flag if coin_mode != "both" else np.ones_like(coin)
            upd[s[rows], a[rows]] += alpha * (targets[flag][rows] - upd[s[rows], a[rows]])
    return fn


def _double_q_returns_copies(q1, q2, s, a, r, s2, term, coin, alpha, gamma):
    q1, q2 = q1.copy(), q2.copy()
    tc.double_q_update(q1, q2, s, a, r, s2, term, coin, alpha, gamma)
    return q1, q2


def _accumulate_fancy(sums, counts, s, a, g):
    sums[s, a] += g
    counts[s, a] += 1


def _accumulate_mean(sums, counts, s, a, g):
    np.add.at(counts, (s, a), 1)
    for si, ai, gi in zip(s, a, g):
        sums[si, ai] += (gi - sums[si, ai]) / counts[si, ai]


def _ordinary_divided_by_ratios(g, rho):
    return tc.weighted_is_estimates(g, rho)


def _ordinary_axis0(g, rho):
    g, rho = np.asarray(g, float), np.asarray(rho, float)
    return np.cumsum(rho * g, axis=0) / np.arange(1, g.shape[-1] + 1)


def _weighted_old_c(v, c, g, w):
    v, c, g, w = (np.asarray(x, float) for x in (v, c, g, w))
    step = np.divide(w, c, out=np.zeros(np.broadcast(w, c).shape), where=c > 0)
    return v + step * (g - v), c + w


def _weighted_nan_at_zero(v, c, g, w):
    v, g, w = (np.asarray(x, float) for x in (v, g, w))
    c = np.asarray(c, float) + w
    with np.errstate(invalid="ignore", divide="ignore"):
        return v + w / c * (g - v), c


def _weighted_no_w(v, c, g, w):
    v, g, w = (np.asarray(x, float) for x in (v, g, w))
    c = np.asarray(c, float) + w
    step = np.divide(1.0, c, out=np.zeros(c.shape), where=c > 0)
    return v + step * (g - v), c


def _weighted_count_not_weight(v, c, g, w):
    v, g, w = (np.asarray(x, float) for x in (v, g, w))
    c = np.asarray(c, float) + 1.0
    return v + w / c * (g - v), c


def _off_policy(order="update_first", stop=True, invert=False, step="w_over_c", c_after=False,
                discount=True):
    def fn(Q, C, s, a, r, pi, b, gamma):
        g, w = 0.0, 1.0
        for t in range(len(s) - 1, -1, -1):
            g = (gamma * g if discount else g) + r[t]
            ratio = b[t] / pi[t] if invert and pi[t] > 0 else (0.0 if invert else pi[t] / b[t])
            if order == "ratio_first":
                w *= ratio
            if not c_after:
                C[s[t], a[t]] += w
            with np.errstate(invalid="ignore", divide="ignore"):
                lr = w / C[s[t], a[t]] if step == "w_over_c" else 1.0 / C[s[t], a[t]]
            Q[s[t], a[t]] += lr * (g - Q[s[t], a[t]])
            if c_after:
                C[s[t], a[t]] += w
            if order == "update_first":
                w *= ratio
            if stop and w == 0.0:
                return
    return fn


WRONG_ANSWERS = {
    "tabular_control.expected_sarsa_target": {
        "greedy-max": _es(lambda q, eps: q.max(-1)),
        "uniform-mean": _es(lambda q, eps: q.mean(-1)),
        "eps-on-greedy": _es(lambda q, eps: eps * q.max(-1) + (1 - eps) * q.mean(-1)),
        "greedy-misses-its-eps-share": _es(_greedy_forgets_eps_share),
        "no-terminal-mask": lambda r, q, t, g, eps: r + g * (
            tc.expected_sarsa_target(0.0, q, False, 1.0, eps)),
        "flattens-the-batch": _es(lambda q, eps: (1 - eps) * q.max() + eps * q.mean()),
    },
    "tabular_control.double_q_update": {
        "same-table-selects-and-evaluates": _double_q("self", "self"),
        "roles-swapped": _double_q("other", "self"),
        "other-table-max": _double_q("other", "other"),
        "sum-selects": _double_q("sum", "other"),
        "coin-ignored-always-q1": _double_q("self", "other", coin_mode="always_q1"),
        "coin-inverted": _double_q("self", "other", coin_mode="inverted"),
        "both-tables-updated": _double_q("self", "other", coin_mode="both"),
        "no-terminal-mask": _double_q("self", "other", mask=False),
        "returns-copies": _double_q_returns_copies,
    },
    "tabular_control.accumulate_returns": {
        "fancy-index-plus-equals": _accumulate_fancy,
        "running-mean-in-sums": _accumulate_mean,
        "counts-forgotten": lambda sums, counts, s, a, g: np.add.at(sums, (s, a), g),
    },
    "tabular_control.ordinary_is_estimates": {
        "divided-by-sum-of-ratios": _ordinary_divided_by_ratios,
        "no-ratios": lambda g, rho: np.cumsum(np.asarray(g, float), -1) / np.arange(
            1, np.shape(g)[-1] + 1),
        "off-by-one-count": lambda g, rho: np.cumsum(np.asarray(rho) * g, -1) / np.maximum(
            np.arange(np.shape(g)[-1]), 1),
        "cumsum-on-axis-0": _ordinary_axis0,
    },
    "tabular_control.weighted_is_update": {
        "old-c-in-the-step": _weighted_old_c,
        "nan-while-c-is-zero": _weighted_nan_at_zero,
        "step-1-over-c": _weighted_no_w,
        "c-counts-episodes": _weighted_count_not_weight,
        "returns-v-only": lambda v, c, g, w: tc.weighted_is_update(v, c, g, w)[0],
    },
    "tabular_control.off_policy_mc_update": {
        "ratio-multiplied-before-the-update": _off_policy(order="ratio_first"),
        "no-stop-when-pi-is-zero": _off_policy(stop=False),
        "b-over-pi": _off_policy(invert=True),
        "step-1-over-c": _off_policy(step="one_over_c"),
        "c-added-after-the-step": _off_policy(c_after=True),
        "undiscounted": _off_policy(discount=False),
    },
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_exercise_of_the_notebook_is_covered():
    exercises.get("tabular_control.double_q_update")  # loads the registry
    mine = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "15_tabular_control"}
    assert mine == set(WRONG_ANSWERS)


def test_double_q_failure_names_the_table_and_the_coin():
    wrong = WRONG_ANSWERS["tabular_control.double_q_update"]["same-table-selects-and-evaluates"]
    result = exercises.evaluate("tabular_control.double_q_update", wrong)
    assert result.status == "failed"
    assert "coin=" in result.message and "should be" in result.message

