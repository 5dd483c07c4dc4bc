"""Checks for the exercises of notebook 01 (multi-armed bandits)."""

from __future__ import annotations

import math

import numpy as np

from rlcourse import bandits
from rlcourse.exercises import call_with, expect_close, expect_true, expect_type, register

NB = "01_bandits"


@register("bandits.incremental_mean", notebook=NB, reference=bandits.incremental_mean,
          hint="Move the estimate a fraction 1/n of the way towards the new reward; n already "
               "counts the new reward, so the first reward (n = 1) replaces the estimate.")
def _(fn):
    expect_close(fn(0.0, 1, 4.0), 4.0, "q=0, n=1 (first reward), reward=4")
    expect_close(fn(2.0, 4, 6.0), 3.0, "q=2, n=4, reward=6")
    expect_close(fn(np.array([1.0, 2.0, 3.0]), np.array([1, 2, 10]), np.array([5.0, 0.0, 3.0])),
                 [5.0, 1.0, 3.0], "arrays q=[1, 2, 3], n=[1, 2, 10], reward=[5, 0, 3]")
    rewards = [3.0, -1.0, 4.0, 1.0, 5.0]
    q = 0.0
    for i, r in enumerate(rewards, start=1):
        q = fn(q, i, r)
    expect_close(q, np.mean(rewards), f"feeding the rewards {rewards} one by one (n = 1..5) "
                 "should give their sample mean")


@register("bandits.epsilon_greedy_probs", notebook=NB, reference=bandits.epsilon_greedy_probs,
          hint="Every arm gets epsilon/K from the uniform exploration draw (the greedy arm "
               "included); the greedy arm also gets 1 - epsilon. Tied greedy arms split that "
               "1 - epsilon equally. The arms are the last axis; any leading axes are "
               "independent runs.")
def _(fn):
    expect_close(fn(np.array([0.5, 2.0, -1.0, 1.0]), 0.1), [0.025, 0.925, 0.025, 0.025],
                 "q=[0.5, 2, -1, 1], epsilon=0.1 (W-06: P(greedy) = 1 - eps + eps/|A|)")
    expect_close(fn(np.array([3.0, 1.0, 2.0]), 0.0), [1.0, 0.0, 0.0], "q=[3, 1, 2], epsilon=0")
    expect_close(fn(np.array([3.0, 1.0, 2.0]), 1.0), [1 / 3, 1 / 3, 1 / 3],
                 "q=[3, 1, 2], epsilon=1")
    expect_close(fn(np.array([1.0, 3.0, 3.0]), 0.3), [0.1, 0.45, 0.45],
                 "q=[1, 3, 3] (two greedy arms tie), epsilon=0.3")
    batch = np.array([[0.0, 1.0], [2.0, -2.0]])
    expect_close(fn(batch, 0.2), [[0.1, 0.9], [0.9, 0.1]],
                 "a batch q=[[0, 1], [2, -2]] (one row per run), epsilon=0.2")
    # 3 runs x 4 arms: K is the last axis, the max is taken per row, ties differ per row
    batch = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [0.0, -1.0, 5.0, 1.0]])
    what = ("a batch of 3 runs x 4 arms q=[[1, 3, 3, 0], [2, 2, 2, 2], [0, -1, 5, 1]] "
            "(two-way and four-way ties), epsilon=0.2")
    expect_close(call_with(fn, what, batch, 0.2), [[0.05, 0.45, 0.45, 0.05],
                                                   [0.25, 0.25, 0.25, 0.25],
                                                   [0.05, 0.05, 0.85, 0.05]], what)
    what = "a single arm q=[-7], epsilon=0.3"
    expect_close(call_with(fn, what, np.array([-7.0]), 0.3), [1.0], what)
    what = "a batch of 3 runs with a single arm each, q=[[4], [-1], [0]], epsilon=0.5"
    expect_close(call_with(fn, what, np.array([[4.0], [-1.0], [0.0]]), 0.5),
                 [[1.0], [1.0], [1.0]], what)


@register("bandits.ucb_scores", notebook=NB, reference=bandits.ucb_scores,
          hint="The score is the estimate plus an exploration bonus c * sqrt(ln(t) / N(a)) that "
               "shrinks as an arm is pulled more. An untried arm (N(a) = 0) must score +inf, "
               "and you must get there without dividing by zero.")
def _(fn):
    q, n = np.array([1.0, 0.5, 0.2]), np.array([10.0, 2.0, 5.0])
    want = q + 2.0 * np.sqrt(math.log(12) / n)
    expect_close(fn(q, n, 12, 2.0), want, "q=[1, 0.5, 0.2], counts=[10, 2, 5], t=12, c=2")
    expect_close(fn(q, n, 12, 0.0), q, "c=0 (no exploration bonus)")
    expect_close(fn(np.array([1.0, 0.5, 0.0]), np.array([10.0, 2.0, 0.0]), 12, 2.0),
                 [want[0], want[1], np.inf], "counts=[10, 2, 0]: the untried arm scores +inf")
    expect_close(fn(np.array([0.3, 0.0]), np.array([1.0, 0.0]), 1, 1.0), [0.3, np.inf],
                 "t=1, counts=[1, 0]: ln(1) = 0, and the untried arm still scores +inf")
    qb, nb = np.array([[0.0, 1.0], [2.0, 2.0]]), np.array([[4.0, 1.0], [3.0, 7.0]])
    expect_close(fn(qb, nb, 8, 0.5), qb + 0.5 * np.sqrt(math.log(8) / nb),
                 "a batch q=[[0, 1], [2, 2]], counts=[[4, 1], [3, 7]], t=8, c=0.5")


@register("bandits.gradient_bandit_update", notebook=NB,
          reference=bandits.gradient_bandit_update,
          hint="Every arm's preference moves, not only the pulled one's: the pulled arm towards "
               "the sign of (reward - baseline) in proportion to 1 minus its probability, the "
               "others the opposite way in proportion to their probability. Use the softmax "
               "probabilities from before the update; rows are independent runs.")
def _(fn):
    got = fn(np.zeros((1, 3)), np.array([0]), np.array([1.0]), np.array([0.0]), 0.3)
    expect_close(got, [[0.2, -0.1, -0.1]],
                 "h=[[0, 0, 0]], action=[0], reward=[1], baseline=[0], step_size=0.3")
    h = np.array([[0.5, -0.5, 0.0]])
    pi = bandits.softmax(h)
    want = h + 0.5 * (1.0 - 3.0) * (np.array([[0.0, 1.0, 0.0]]) - pi)
    expect_close(fn(h.copy(), np.array([1]), np.array([1.0]), np.array([3.0]), 0.5), want,
                 "h=[[0.5, -0.5, 0]], action=[1], reward=[1], baseline=[3] (reward below "
                 "baseline), step_size=0.5")
    hb = np.array([[0.0, 1.0], [2.0, 0.0]])
    pib = bandits.softmax(hb)
    onehot = np.array([[1.0, 0.0], [1.0, 0.0]])
    adv = np.array([[2.0 - 0.5], [-1.0 - 0.0]])
    expect_close(fn(hb.copy(), np.array([0, 0]), np.array([2.0, -1.0]), np.array([0.5, 0.0]),
                    0.1), hb + 0.1 * adv * (onehot - pib),
                 "a batch of 2 runs: h=[[0, 1], [2, 0]], action=[0, 0], reward=[2, -1], "
                 "baseline=[0.5, 0], step_size=0.1")


@register("bandits.beta_posterior_update", notebook=NB,
          reference=bandits.beta_posterior_update,
          hint="Only the arm each run pulled changes: a reward of 1 counts as one success "
               "(alpha), a reward of 0 as one failure (beta). Return new arrays (alpha, beta) and "
               "leave the ones you were given untouched.")
def _(fn):
    a, b = _beta_call(fn, np.ones((2, 3)), np.ones((2, 3)), np.array([2, 0]),
                      np.array([1.0, 0.0]), "action=[2, 0], reward=[1, 0] from Beta(1, 1)")
    expect_close(a, [[1, 1, 2], [1, 1, 1]], "alpha after action=[2, 0], reward=[1, 0] "
                 "from a Beta(1, 1) prior")
    expect_close(b, [[1, 1, 1], [2, 1, 1]], "beta after action=[2, 0], reward=[1, 0] "
                 "from a Beta(1, 1) prior")
    alpha0, beta0 = np.array([[3.0, 1.0, 2.0]]), np.array([[1.0, 4.0, 2.0]])
    a, b = _beta_call(fn, alpha0, beta0, np.array([1]), np.array([0.0]),
                      "alpha=[[3, 1, 2]], beta=[[1, 4, 2]], action=[1], reward=[0]")
    expect_close(a, alpha0, "alpha after a failure (reward 0) on arm 1 (should not change)")
    expect_close(b, [[1.0, 5.0, 2.0]], "beta after a failure (reward 0) on arm 1")
    alpha, beta = np.ones((1, 2)), np.ones((1, 2))
    for arm, r in [(0, 1.0), (0, 1.0), (1, 0.0), (0, 0.0)]:
        alpha, beta = _beta_call(fn, alpha, beta, np.array([arm]), np.array([r]),
                                 f"a sequence of pulls, here arm {arm} with reward {r:g}")
    expect_true(np.allclose(alpha, [[3, 1]]) and np.allclose(beta, [[2, 2]]),
                "after rewards 1, 1, 0 on arm 0 and 0 on arm 1 from Beta(1, 1): expected "
                f"alpha=[[3, 1]], beta=[[2, 2]], got alpha={np.round(alpha, 4).tolist()}, "
                f"beta={np.round(beta, 4).tolist()}")


def _beta_call(fn, alpha, beta, action, reward, what):
    """Call ``fn`` on copies, check it returned a pair and left its inputs unchanged."""
    alpha_in, beta_in = np.array(alpha, dtype=float), np.array(beta, dtype=float)
    out = call_with(fn, what, alpha_in, beta_in, action.copy(), reward.copy())
    expect_type(out, (tuple, list), f"{what}: the result (new_alpha, new_beta)", length=2)
    expect_true(np.array_equal(alpha_in, alpha) and np.array_equal(beta_in, beta),
                f"{what}: your function changed the alpha/beta arrays it was given (now alpha="
                f"{np.round(alpha_in, 4).tolist()}, beta={np.round(beta_in, 4).tolist()}); the "
                "caller still needs the prior, so copy before you update")
    return out
