"""Checks for notebook 04 (DQN): epsilon schedule, TD target, Double-DQN target, Huber loss."""

from __future__ import annotations

from collections.abc import Callable

import torch

from rlcourse import dqn
from rlcourse.exercises import expect_close, expect_true, register

NB = "04_dqn"


def _t(x, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(x, dtype=dtype)


@register("dqn.epsilon_schedule", notebook=NB, reference=dqn.epsilon_schedule,
          hint="eps = start + (end - start) * min(step / decay_steps, 1): exactly `start` at "
               "step 0, exactly `end` at step decay_steps, and constant after that.")
def _(fn: Callable) -> None:
    cases = [((0, 1.0, 0.05, 100), 1.0), ((50, 1.0, 0.05, 100), 0.525),
             ((100, 1.0, 0.05, 100), 0.05), ((250, 1.0, 0.05, 100), 0.05),
             ((1, 1.0, 0.0, 4), 0.75), ((3, 0.5, 0.1, 4), 0.2), ((10**6, 0.5, 0.1, 4), 0.1),
             ((2, 0.2, 0.2, 10), 0.2)]
    for (step, start, end, decay), expected in cases:
        got = fn(step, start, end, decay)
        expect_close(got, expected, f"epsilon_schedule(step={step}, start={start}, end={end}, "
                                    f"decay_steps={decay})")


def _td_batch():
    rewards = _t([1.0, 1.0, 0.5, -2.0, 0.0])
    next_q = _t([[1.0, 3.0, 2.0], [5.0, 4.0, 0.0], [-1.0, -2.0, -0.5],
                 [2.0, 2.0, 7.0], [0.0, 10.0, 1.0]])
    terminated = _t([False, True, False, False, True], torch.bool)
    truncated = _t([False, False, True, False, True], torch.bool)
    return rewards, next_q, terminated, truncated


@register("dqn.td_target", notebook=NB, reference=dqn.td_target,
          hint="y = r + gamma * (1 - terminated) * max over actions of next_q (dim=1). Only "
               "`terminated` stops the bootstrap; a truncated (time-limit) step still "
               "bootstraps. Gamma multiplies the next value only.")
def _(fn: Callable) -> None:
    r, nq, te, tr = _td_batch()
    # row 0: plain step; row 1: terminated; row 2: truncated only (must bootstrap);
    # row 3: plain step with a negative reward; row 4: terminated and truncated together
    cases = [(0.9, [3.7, 1.0, 0.05, 4.3, 0.0]), (0.0, [1.0, 1.0, 0.5, -2.0, 0.0]),
             (1.0, [4.0, 1.0, 0.0, 5.0, 0.0])]
    for gamma, expected in cases:
        got = fn(r.clone(), nq.clone(), te.clone(), tr.clone(), gamma)
        expect_close(got, expected, f"td_target(rewards={r.tolist()}, next_q={nq.tolist()}, "
                                    f"terminated={te.tolist()}, truncated={tr.tolist()}, "
                                    f"gamma={gamma})", atol=1e-5)
    one = fn(_t([2.0]), _t([[0.0, -1.0]]), _t([False], torch.bool), _t([True], torch.bool), 0.5)
    expect_close(one, [2.0], "a single truncated transition with next_q=[[0, -1]], r=2, "
                             "gamma=0.5 (the max is 0, not -1)", atol=1e-6)


@register("dqn.double_dqn_target", notebook=NB, reference=dqn.double_dqn_target,
          hint="Pick a* = argmax of next_q_online (dim=1), then read next_q_target at a*: "
               "y = r + gamma * (1 - terminated) * next_q_target[i, a*_i]. Use "
               "`gather` or indexing, not the max of either table.")
def _(fn: Callable) -> None:
    r = _t([1.0, 0.0, 2.0, 1.0])
    online = _t([[1.0, 2.0, 0.0], [3.0, 0.0, 1.0], [0.0, 0.0, 5.0], [4.0, 1.0, 0.0]])
    target = _t([[6.0, 1.0, 0.0], [2.0, 8.0, 1.0], [9.0, 0.0, 3.0], [4.0, 9.0, 9.0]])
    te = _t([False, False, False, True], torch.bool)
    # online argmax: [1, 0, 2, 0]; target at those actions: [1, 2, 3, (terminal)]
    for gamma, expected in [(0.5, [1.5, 1.0, 3.5, 1.0]), (1.0, [2.0, 2.0, 5.0, 1.0])]:
        got = fn(r.clone(), online.clone(), target.clone(), te.clone(), gamma)
        expect_close(got, expected, f"double_dqn_target(rewards={r.tolist()}, next_q_online="
                                    f"{online.tolist()}, next_q_target={target.tolist()}, "
                                    f"terminated={te.tolist()}, gamma={gamma})", atol=1e-5)


@register("dqn.dqn_loss", notebook=NB, reference=dqn.dqn_loss,
          hint="Take Q(s, a) with q_values.gather(1, actions[:, None]).squeeze(1) and the "
               "error e = Q(s, a) - targets.detach(). Squared: mean of 0.5 e^2. Huber: 0.5 e^2 "
               "where |e| <= 1 and |e| - 0.5 elsewhere, then the mean over the batch.")
def _(fn: Callable) -> None:
    q = _t([[1.0, 2.0], [0.0, -1.0], [3.0, 3.5], [0.2, 0.4]])
    a = _t([0, 1, 1, 0], torch.long)
    y = _t([1.5, 2.0, 0.5, 0.2])
    what = f"dqn_loss(q_values={q.tolist()}, actions={a.tolist()}, targets={y.tolist()}, huber="
    # errors Q(s,a) - y: [-0.5, -3.0, 3.0, 0.0] -> squared/2 [0.125, 4.5, 4.5, 0], Huber
    # [0.125, 2.5, 2.5, 0.0]
    expect_close(fn(q.clone(), a.clone(), y.clone(), False), 2.28125, what + "False)")
    expect_close(fn(q.clone(), a.clone(), y.clone(), True), 1.28125, what + "True)")
    small = fn(_t([[0.3, 0.0]]), _t([0], torch.long), _t([0.1]), True)
    expect_close(small, 0.02, "huber=True with a single error of 0.2 (inside the quadratic "
                              "zone: 0.5 * 0.2^2)")
    for huber, expected_grad in [(False, [[-0.125, 0.0], [0.0, -0.75], [0.0, 0.75], [0.0, 0.0]]),
                                 (True, [[-0.125, 0.0], [0.0, -0.25], [0.0, 0.25], [0.0, 0.0]])]:
        qg = q.clone().requires_grad_(True)
        yg = y.clone().requires_grad_(True)
        loss = fn(qg, a, yg, huber)
        expect_true(isinstance(loss, torch.Tensor) and loss.ndim == 0,
                    f"the loss must be a scalar torch tensor, got {type(loss).__name__} "
                    f"{tuple(getattr(loss, 'shape', ()))}")
        expect_true(loss.requires_grad, "the loss carries no gradient: keep the computation in "
                                        "torch (no .item(), no numpy)")
        loss.backward()
        expect_close(qg.grad, expected_grad, f"gradient of the loss (huber={huber}) with "
                                             "respect to q_values (only the taken actions get "
                                             "one)")
        expect_true(yg.grad is None or float(yg.grad.abs().sum()) == 0.0,
                    "a gradient flowed into the targets: DQN is a semi-gradient method, so use "
                    "targets.detach() (the target is a fixed label)")
