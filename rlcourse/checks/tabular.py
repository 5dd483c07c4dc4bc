"""Checks for notebook 03 (model-free prediction and control)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rlcourse import tabular
from rlcourse.exercises import CheckFailure, expect_close, register

NB = "03_model_free"


@register("tabular.td_error", notebook=NB, reference=tabular.td_error,
          hint="delta = reward + gamma * (1 - terminated) * next_value - value. gamma multiplies "
               "only V(s'), and nothing is bootstrapped from a terminal next state. Use "
               "arithmetic (no `if`) so that arrays work too.")
def _(fn: Callable) -> None:
    expect_close(fn(1.0, 0.5, 2.0, False, 0.9), 2.3,
                 "td_error(reward=1, value=0.5, next_value=2, terminated=False, gamma=0.9)")
    expect_close(fn(1.0, 0.5, 2.0, True, 0.9), 0.5,
                 "td_error(reward=1, value=0.5, next_value=2, terminated=True, gamma=0.9)")
    expect_close(fn(0.0, 3.0, 3.0, False, 1.0), 0.0,
                 "td_error(reward=0, value=3, next_value=3, terminated=False, gamma=1)")
    r, v, v2 = np.array([0.0, 1.0, -1.0]), np.array([1.0, 2.0, 0.0]), np.array([2.0, 0.0, 3.0])
    term = np.array([False, True, False])
    expect_close(fn(r, v, v2, term, 0.5), [0.0, -1.0, 0.5],
                 "arrays reward=[0, 1, -1], value=[1, 2, 0], next_value=[2, 0, 3], "
                 "terminated=[F, T, F], gamma=0.5")


@register("tabular.n_step_return", notebook=NB, reference=tabular.n_step_return,
          hint="With k = rewards.shape[-1]: sum_i gamma**i * rewards[..., i] (i = 0..k-1) plus "
               "gamma**k * (1 - terminated) * bootstrap. The first reward is not discounted "
               "and the bootstrap value is discounted k times.")
def _(fn: Callable) -> None:
    expect_close(fn(np.array([1.0, 2.0, 3.0]), 10.0, False, 0.5), 4.0,
                 "n_step_return(rewards=[1, 2, 3], bootstrap=10, terminated=False, gamma=0.5)")
    expect_close(fn(np.array([1.0, 2.0, 3.0]), 10.0, True, 0.5), 2.75,
                 "n_step_return(rewards=[1, 2, 3], bootstrap=10, terminated=True, gamma=0.5)")
    expect_close(fn(np.array([2.0]), 4.0, False, 0.9), 5.6,
                 "n_step_return(rewards=[2], bootstrap=4, terminated=False, gamma=0.9) "
                 "(n = 1 is the TD(0) target)")
    rewards = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])  # 3 runs, k = 2 rewards each
    term = np.array([False, True, False])
    expect_close(fn(rewards, np.array([1.0, 2.0, 0.0]), term, 0.9), [1.81, 0.9, 3.8],
                 "a batch: rewards=[[1, 0], [0, 1], [2, 2]] (k = 2 on the last axis), "
                 "bootstrap=[1, 2, 0], terminated=[F, T, F], gamma=0.9")
    boot = np.arange(12.0).reshape(4, 3)  # [4 step sizes, 3 runs], as in the sweep
    want = tabular.n_step_return(rewards, boot, term, 0.9)
    expect_close(fn(rewards, boot, term, 0.9), want,
                 "broadcasting: rewards of shape [3, 2] with bootstrap of shape [4, 3] "
                 "(expected a result of shape [4, 3])")


@register("tabular.sarsa_target", notebook=NB, reference=tabular.sarsa_target,
          hint="Bootstrap from the action the agent actually takes next: reward + gamma * "
               "q_next[next_action], and just the reward when the next state is terminal.")
def _(fn: Callable) -> None:
    q = np.array([1.0, 5.0, 3.0])
    cases = [(-1.0, 2, False, 0.9, 1.7), (-1.0, 2, True, 0.9, -1.0), (0.5, 0, False, 0.5, 1.0),
             (0.0, 1, False, 1.0, 5.0)]
    for reward, a, term, gamma, want in cases:
        expect_close(fn(reward, q.copy(), a, term, gamma), want,
                     f"sarsa_target(reward={reward}, q_next=[1, 5, 3], next_action={a}, "
                     f"terminated={term}, gamma={gamma})")


@register("tabular.q_learning_target", notebook=NB, reference=tabular.q_learning_target,
          hint="Bootstrap from the best next action whatever the agent does next: reward + "
               "gamma * max(q_next), and just the reward when the next state is terminal.")
def _(fn: Callable) -> None:
    cases = [(0.5, [1.0, -2.0, 4.0], False, 0.5, 2.5), (0.5, [1.0, -2.0, 4.0], True, 0.5, 0.5),
             (0.0, [-3.0, -1.0, -2.0], False, 1.0, -1.0), (-1.0, [2.0, 0.0], False, 0.9, 0.8)]
    for reward, q, term, gamma, want in cases:
        expect_close(fn(reward, np.array(q), term, gamma), want,
                     f"q_learning_target(reward={reward}, q_next={q}, terminated={term}, "
                     f"gamma={gamma})")


@register("tabular.importance_weights", notebook=NB, reference=tabular.importance_weights,
          hint="The weight says how much more likely the target policy is to take the action "
               "than the behaviour policy was. An action neither policy takes gets weight 0; "
               "one the target takes but the behaviour never does cannot be reweighted at all.")
def _(fn: Callable) -> None:
    expect_close(fn(np.array([0.5, 0.25, 0.25]), np.array([0.25, 0.5, 0.25])), [2.0, 0.5, 1.0],
                 "importance_weights(p=[0.5, 0.25, 0.25], q=[0.25, 0.5, 0.25])")
    expect_close(fn(np.array([0.0, 0.5, 0.5]), np.array([0.0, 0.25, 0.75])), [0.0, 2.0, 2 / 3],
                 "importance_weights(p=[0, 0.5, 0.5], q=[0, 0.25, 0.75]) (p = q = 0 gives 0)")
    p2, q2 = np.array([[0.1, 0.9], [0.6, 0.4]]), np.array([[0.2, 0.8], [0.3, 0.7]])
    expect_close(fn(p2, q2), p2 / q2, "2-D arrays p=[[0.1, 0.9], [0.6, 0.4]], "
                                      "q=[[0.2, 0.8], [0.3, 0.7]]")
    for p, q in (([0.5, 0.5], [1.0, 0.0]), ([0.0, 0.5, 0.5], [0.0, 0.0, 1.0])):
        _expect_support_error(fn, p, q)


def _expect_support_error(fn: Callable, p: list[float], q: list[float]) -> None:
    try:
        got = fn(np.array(p), np.array(q))
    except ValueError:
        return
    raise CheckFailure(f"importance_weights(p={p}, q={q}): expected a ValueError (q = 0 where "
                       f"p > 0 breaks the support condition), got {got!r}")


@register("tabular.shaped_reward", notebook=NB, reference=tabular.shaped_reward,
          hint="r' = reward + gamma * (1 - terminated) * phi_next - phi: gamma multiplies the "
               "potential of the NEXT state, and a terminal next state has potential 0.")
def _(fn: Callable) -> None:
    expect_close(fn(1.0, -3.0, -2.0, False, 0.9), 2.2,
                 "shaped_reward(reward=1, phi=-3, phi_next=-2, terminated=False, gamma=0.9)")
    expect_close(fn(1.0, -3.0, -2.0, True, 0.9), 4.0,
                 "shaped_reward(reward=1, phi=-3, phi_next=-2, terminated=True, gamma=0.9)")
    expect_close(fn(0.0, 2.0, 2.0, False, 1.0), 0.0,
                 "shaped_reward(reward=0, phi=2, phi_next=2, terminated=False, gamma=1)")
    expect_close(fn(np.array([0.0, 10.0]), np.array([1.0, 4.0]), np.array([2.0, 5.0]),
                    np.array([False, True]), 0.5), [0.0, 6.0],
                 "arrays reward=[0, 10], phi=[1, 4], phi_next=[2, 5], terminated=[F, T], "
                 "gamma=0.5")
