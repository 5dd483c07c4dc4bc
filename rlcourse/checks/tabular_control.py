"""Checks for notebook 15 (classic tabular control: MC, Expected SARSA, Double Q-learning)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rlcourse import tabular_control as tc
from rlcourse.exercises import CheckFailure, call_with, expect_close, register

NB = "15_tabular_control"


@register("tabular_control.expected_sarsa_target", notebook=NB,
          reference=tc.expected_sarsa_target,
          hint="Average Q(s', .) under the epsilon-greedy policy: every action gets epsilon / A, "
               "the greedy one(s) share 1 - epsilon on top. Then reward + gamma * (1 - "
               "terminated) * that average, over the last axis so that batches work.")
def _(fn: Callable) -> None:
    q = np.array([1.0, 5.0, 3.0])
    cases = [(-1.0, False, 0.9, 0.3, 2.96), (-1.0, True, 0.9, 0.3, -1.0),
             (0.5, False, 1.0, 0.0, 5.5), (0.0, False, 0.5, 1.0, 1.5), (2.0, False, 1.0, 0.6, 5.8)]
    for reward, term, gamma, eps, want in cases:
        got = call_with(fn, "expected_sarsa_target", reward, q.copy(), term, gamma, eps)
        expect_close(got, want, f"expected_sarsa_target(reward={reward}, q_next=[1, 5, 3], "
                                f"terminated={term}, gamma={gamma}, epsilon={eps})")
    q_batch = np.array([[0.0, -2.0, 4.0, 1.0], [3.0, 3.0, -1.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    r, term = np.array([0.0, 1.0, -1.0]), np.array([False, False, True])
    want = tc.expected_sarsa_target(r, q_batch, term, 0.9, 0.2)
    expect_close(call_with(fn, "a batch", r, q_batch.copy(), term, 0.9, 0.2), want,
                 "a batch: q_next of shape [3, 4] (one row per transition), reward=[0, 1, -1], "
                 "terminated=[F, F, T], gamma=0.9, epsilon=0.2 (expected shape [3])")


def _double_q_case() -> tuple[np.ndarray, np.ndarray, tuple]:
    # Q1 and Q2 disagree about the best next action, so who selects and who evaluates matters
    q1 = np.array([[0.0, 1.0, 2.0], [4.0, 1.0, -2.0], [0.5, 3.0, 1.0], [0.0, 0.0, 0.0],
                   [2.0, -1.0, 0.0]])
    q2 = np.array([[1.0, 0.0, -1.0], [-3.0, 2.0, 5.0], [2.0, 0.0, 1.5], [0.0, 0.0, 0.0],
                   [-1.0, 0.5, 3.0]])
    batch = (np.array([0, 2, 4, 0, 2]), np.array([0, 1, 2, 2, 0]),  # s, a (distinct pairs)
             np.array([1.0, -1.0, 0.5, 2.0, 0.0]), np.array([1, 1, 3, 2, 4]),  # r, s'
             np.array([False, False, True, False, False]),  # terminated
             np.array([True, False, True, False, True]))  # coin: True updates Q1
    return q1, q2, batch


@register("tabular_control.double_q_update", notebook=NB, reference=tc.double_q_update,
          hint="Where coin is True update Q1: a* = argmax_a Q1(s', a) (Q1 selects), target = r + "
               "gamma * (1 - terminated) * Q2(s', a*) (Q2 evaluates); where coin is False swap "
               "the roles and update Q2. Change the arrays in place; leave the other table "
               "untouched for each transition.")
def _(fn: Callable) -> None:
    q1, q2, batch = _double_q_case()
    want1, want2 = q1.copy(), q2.copy()
    tc.double_q_update(want1, want2, *batch, 0.5, 0.9)
    got1, got2 = q1.copy(), q2.copy()
    call_with(fn, "double_q_update", got1, got2, *batch, 0.5, 0.9)
    if np.array_equal(got1, q1) and np.array_equal(got2, q2):
        raise CheckFailure("double_q_update: neither table changed. Update q1 and q2 in place "
                           "(q1[s, a] += ...), do not return new arrays")
    desc = ("double_q_update on 5 transitions (s=[0, 2, 4, 0, 2], a=[0, 1, 2, 2, 0], r=[1, -1, "
            "0.5, 2, 0], s'=[1, 1, 3, 2, 4], terminated=[F, F, T, F, F], coin=[T, F, T, F, T]), "
            "alpha=0.5, gamma=0.9")
    for name, got, want, orig in (("Q1", got1, want1, q1), ("Q2", got2, want2, q2)):
        if not np.allclose(got, want):
            bad = np.argwhere(~np.isclose(got, want))[0]
            which = "coin=True" if name == "Q1" else "coin=False"
            raise CheckFailure(
                f"{desc}: {name}[{bad[0]}, {bad[1]}] should be {want[tuple(bad)]:.4f} (was "
                f"{orig[tuple(bad)]:.4f}), got {got[tuple(bad)]:.4f}. {name} is updated only "
                f"for the transitions with {which}")


@register("tabular_control.accumulate_returns", notebook=NB, reference=tc.accumulate_returns,
          hint="Every visit adds its return to sums[s, a] and 1 to counts[s, a], in place. A "
               "pair can appear several times in one batch: `sums[s, a] += g` with index "
               "arrays applies only one of the duplicates; np.add.at applies them all.")
def _(fn: Callable) -> None:
    sums, counts = np.zeros((3, 2)), np.zeros((3, 2), int)
    sums[2, 1], counts[2, 1] = 5.0, 4
    s, a = np.array([0, 0, 1, 0, 2]), np.array([1, 1, 0, 1, 1])
    g = np.array([1.0, 1.0, -1.0, 0.0, 1.0])
    call_with(fn, "accumulate_returns", sums, counts, s, a, g)
    what = ("accumulate_returns from sums=0 except sums[2, 1]=5, counts=0 except counts[2, 1]=4, "
            "with states=[0, 0, 1, 0, 2], actions=[1, 1, 0, 1, 1], returns=[1, 1, -1, 0, 1] "
            "(pair (0, 1) appears three times)")
    expect_close(counts, [[0, 3], [1, 0], [0, 5]], f"{what}: counts")
    expect_close(sums, [[0.0, 2.0], [-1.0, 0.0], [0.0, 6.0]], f"{what}: sums")


@register("tabular_control.ordinary_is_estimates", notebook=NB,
          reference=tc.ordinary_is_estimates,
          hint="Entry k averages rho_i * G_i over the first k + 1 episodes: divide the running "
               "sum of rho * G by the NUMBER of episodes (dividing by the sum of the ratios is "
               "the weighted estimator). Work along the last axis.")
def _(fn: Callable) -> None:
    g, rho = np.array([1.0, -1.0, 0.0, 1.0]), np.array([2.0, 0.0, 4.0, 1.0])
    expect_close(call_with(fn, "ordinary_is_estimates", g, rho), [2.0, 1.0, 2 / 3, 0.75],
                 "ordinary_is_estimates(returns=[1, -1, 0, 1], ratios=[2, 0, 4, 1])")
    g2 = np.array([[1.0, 1.0, -1.0], [0.0, -1.0, 1.0]])
    rho2 = np.array([[0.0, 4.0, 2.0], [1.0, 1.0, 8.0]])
    expect_close(call_with(fn, "ordinary_is_estimates", g2, rho2),
                 [[0.0, 2.0, 2 / 3], [0.0, -0.5, 7 / 3]],
                 "two runs (rows): returns=[[1, 1, -1], [0, -1, 1]], ratios=[[0, 4, 2], "
                 "[1, 1, 8]], episodes on the last axis")


@register("tabular_control.weighted_is_update", notebook=NB, reference=tc.weighted_is_update,
          hint="First add the new weight, C <- C + W; then V <- V + (W / C) * (G - V) with the "
               "NEW C. Where C is still 0 (all weights so far were 0) leave V as it is: no "
               "division by zero. Return (V, C).")
def _(fn: Callable) -> None:
    cases = [(0.5, 2.0, 1.0, 2.0, 0.75, 4.0), (0.0, 0.0, -1.0, 4.0, -1.0, 4.0),
             (0.3, 5.0, 1.0, 0.0, 0.3, 5.0), (0.0, 0.0, 1.0, 0.0, 0.0, 0.0)]
    for v, c, g, w, want_v, want_c in cases:
        out = call_with(fn, "weighted_is_update", v, c, g, w)
        what = f"weighted_is_update(value={v}, cum_weight={c}, ret={g}, ratio={w})"
        if not isinstance(out, tuple) or len(out) != 2:
            raise CheckFailure(f"{what}: expected a tuple (V, C), got {type(out).__name__}")
        expect_close(out[1], want_c, f"{what}: the new C")
        expect_close(out[0], want_v, f"{what}: the new V")
    v, c = np.array([0.0, 1.0, -0.5]), np.array([0.0, 1.0, 3.0])
    out = call_with(fn, "weighted_is_update", v, c, np.array([1.0, -1.0, 1.0]),
                    np.array([0.0, 3.0, 1.0]))
    expect_close(out[0], [0.0, -0.5, -0.125], "arrays value=[0, 1, -0.5], cum_weight=[0, 1, "
                                              "3], ret=[1, -1, 1], ratio=[0, 3, 1]: the new V")


def _off_policy_cases() -> list[tuple[str, tuple]]:
    ep_all = (np.array([0, 1, 2]), np.array([1, 0, 1]), np.array([0.0, 1.0, 2.0]),
              np.array([1.0, 1.0, 1.0]), np.array([0.5, 0.5, 0.25]), 0.5)
    ep_stop = (np.array([0, 1, 2]), np.array([0, 1, 0]), np.array([1.0, 0.0, -1.0]),
               np.array([1.0, 1.0, 0.0]), np.array([0.5, 0.5, 0.5]), 0.9)
    ep_mid = (np.array([3, 1, 0, 2]), np.array([1, 1, 0, 1]), np.array([0.0, 2.0, 0.0, 1.0]),
              np.array([1.0, 0.0, 1.0, 1.0]), np.array([0.5, 0.5, 0.25, 0.5]), 1.0)
    return [("all three actions agree with pi (pi_probs=[1, 1, 1], b_probs=[0.5, 0.5, 0.25], "
             "states=[0, 1, 2], actions=[1, 0, 1], rewards=[0, 1, 2], gamma=0.5)", ep_all),
            ("pi gives the LAST action probability 0 (pi_probs=[1, 1, 0], states=[0, 1, 2], "
             "actions=[0, 1, 0], rewards=[1, 0, -1], gamma=0.9)", ep_stop),
            ("pi gives the second action probability 0 (pi_probs=[1, 0, 1, 1], states=[3, 1, "
             "0, 2], actions=[1, 1, 0, 1], rewards=[0, 2, 0, 1], gamma=1)", ep_mid)]


@register("tabular_control.off_policy_mc_update", notebook=NB,
          reference=tc.off_policy_mc_update,
          hint="Go backwards with G = 0, W = 1: G <- gamma * G + rewards[t]; C[s, a] += W; "
               "Q[s, a] += W / C[s, a] * (G - Q[s, a]); only THEN W *= pi_probs[t] / "
               "b_probs[t] (the ratio of step t does not weight Q(s_t, a_t) itself); stop as "
               "soon as W == 0.")
def _(fn: Callable) -> None:
    rng = np.random.default_rng(0)
    for what, (s, a, r, pi, b, gamma) in _off_policy_cases():
        q0 = np.round(rng.normal(size=(4, 2)), 2)
        c0 = np.zeros((4, 2))
        c0[0, 1], c0[2, 1] = 2.0, 1.0  # some pairs seen before; (1, 1) and (0, 0) never
        want_q, want_c = q0.copy(), c0.copy()
        tc.off_policy_mc_update(want_q, want_c, s, a, r, pi, b, gamma)
        got_q, got_c = q0.copy(), c0.copy()
        call_with(fn, "off_policy_mc_update", got_q, got_c, s, a, r, pi, b, gamma)
        for name, got, want in (("C", got_c, want_c), ("Q", got_q, want_q)):
            if not np.allclose(got, want, equal_nan=False):
                bad = tuple(np.argwhere(~np.isclose(got, want))[0])
                raise CheckFailure(
                    f"off_policy_mc_update, {what}: {name}[{bad[0]}, {bad[1]}] should be "
                    f"{want[bad]:.4f}, got {got[bad]:.4f} (Q and C are updated in place)")
