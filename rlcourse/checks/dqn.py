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
          hint="A straight line from `start` at step 0 to `end` at step decay_steps, then flat "
               "at `end` for ever after.")
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
          hint="The target is the reward plus the discounted value of the best next action. "
               "Ask which flag means the next state has no future (only that one drops the "
               "bootstrap); a time limit does not end the task. Gamma multiplies the next value "
               "only.")
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
          hint="Two roles, two networks: the online network chooses the next action (its "
               "argmax), the target network says what that action is worth. Not the max of "
               "either table. Terminal steps do not bootstrap.")
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
          hint="Pick each row's Q-value at the action actually taken, and treat the targets as "
               "fixed labels (no gradient through them). Squared: half the squared error. "
               "Huber: quadratic for errors up to 1 in size, linear beyond, joined smoothly at "
               "|e| = 1. Average over the batch.")
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
    # errors around the switch point |e| = 1: 0.9 and 1.2 on either side, 1.5 and 2.5 between
    # the two zones' old test values, so any other threshold gives a different loss
    errors = [0.9, -1.2, 1.5, -2.5]
    zone = [0.5 * e ** 2 if abs(e) <= 1 else abs(e) - 0.5 for e in errors]
    for err, want in zip(errors, zone):
        got = fn(_t([[0.0, err]]), _t([1], torch.long), _t([0.0]), True)
        expect_close(got, want, f"huber=True with a single error of {err} (the quadratic zone "
                                "is |e| <= 1, the linear zone |e| - 0.5 beyond it)")
    expect_close(fn(_t([[e, 0.0] for e in errors]), _t([0] * 4, torch.long), _t([0.0] * 4),
                    True), sum(zone) / 4, f"huber=True on the batch of errors {errors}")
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
