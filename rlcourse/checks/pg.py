"""Checks for the exercises of notebook 05 (policy gradients: REINFORCE and baselines)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from rlcourse import pg
from rlcourse.exercises import expect_close, expect_true, register

NB = "05_policy_gradients"


def _t(x, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(x, dtype=dtype)


def _np(x) -> np.ndarray:
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=float)


@register("pg.score_function", notebook=NB, reference=pg.score_function,
          hint="d log softmax(z)[a] / d z_k = 1[k == a] - softmax(z)_k: a one-hot of the action "
               "minus the whole probability vector (every logit, not only the chosen one). Use "
               "torch.softmax (stable for large logits) and "
               "torch.nn.functional.one_hot(action, K).")
def _(fn: Callable) -> None:
    expect_close(fn(_t([0.0, 0.0]), torch.tensor(0)), [0.5, -0.5],
                 "logits=[0, 0], action=0")
    z = [1.0, 2.0, 3.0]
    pi = np.exp(z) / np.exp(z).sum()
    expect_close(fn(_t(z), torch.tensor(2)), np.eye(3)[2] - pi, "logits=[1, 2, 3], action=2",
                 atol=1e-8)
    batch = _t([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    expect_close(fn(batch, torch.tensor([0, 1])),
                 [np.eye(3)[0] - pi, np.eye(3)[1] - 1 / 3],
                 "a batch: logits=[[1, 2, 3], [0, 0, 0]], actions=[0, 1]", atol=1e-8)
    expect_close(fn(_t([1000.0, 0.0, -1000.0]), torch.tensor(1)), [-1.0, 1.0, 0.0],
                 "large logits=[1000, 0, -1000], action=1 (overflow-safe softmax needed)")
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 4, 3, dtype=torch.float64, generator=gen)
    actions = torch.randint(0, 3, (2, 4), generator=gen)
    before = logits.clone()
    got = fn(logits, actions)
    expect_true(torch.equal(logits, before), "your function changed its input logits in place")
    want = np.zeros((2, 4, 3))
    for i in range(2):
        for j in range(4):
            z = logits[i, j].clone().requires_grad_(True)
            torch.log_softmax(z, -1)[actions[i, j]].backward()
            want[i, j] = z.grad.numpy()
    expect_close(got, want, "random logits of shape [2, 4, 3] (compared with autograd)",
                 atol=1e-8)


@register("pg.reward_to_go", notebook=NB, reference=pg.reward_to_go,
          hint="Each row is one episode. Walk backwards along the time axis: G = 0 after the "
               "last step, then G[:, t] = rewards[:, t] + gamma * G[:, t + 1]. G_t starts at "
               "time t (rewards[:, t] is not discounted) and never reaches into another row.")
def _(fn: Callable) -> None:
    cases = [([[1.0, 1.0, 1.0]], 0.5, [[1.75, 1.5, 1.0]]),
             ([[0.0, 0.0, 1.0]], 0.9, [[0.81, 0.9, 1.0]]),
             ([[1.0, 2.0, 3.0, 0.0, 0.0], [4.0, 5.0, 0.0, 0.0, 0.0]], 1.0,
              [[6.0, 5.0, 3.0, 0.0, 0.0], [9.0, 5.0, 0.0, 0.0, 0.0]]),
             ([[3.0, -1.0, 2.0], [1.0, 1.0, 1.0]], 0.0, [[3.0, -1.0, 2.0], [1.0, 1.0, 1.0]]),
             ([[2.0, -1.0, 4.0], [1.0, 0.0, 0.0]], 0.5, [[2.5, 1.0, 4.0], [1.0, 0.0, 0.0]]),
             ([[5.0]], 0.9, [[5.0]])]
    for rewards, gamma, expected in cases:
        r = _t(rewards)
        got = fn(r, gamma)
        expect_true(torch.equal(r, _t(rewards)), "your function changed rewards in place")
        expect_close(got, expected, f"rewards={rewards}, gamma={gamma}")


@register("pg.reinforce_loss", notebook=NB, reference=pg.reinforce_loss,
          hint="loss = -(1/B) * sum over b and t of mask * weights.detach() * logp, with B = "
               "logp.shape[0] the number of episodes (not the number of steps). Minus, because "
               "optimisers minimise; detach, because the weights are constants.")
def _(fn: Callable) -> None:
    one = torch.ones(1, 2, dtype=torch.float64)
    expect_close(fn(_t([[-0.5, -1.0]]), _t([[2.0, 1.0]]), one), 2.0,
                 "logp=[[-0.5, -1]], weights=[[2, 1]], mask=[[1, 1]]")
    logp = _t([[-1.0, -2.0, -3.0], [-0.5, -0.5, -9.0]]).requires_grad_(True)
    weights = _t([[1.0, 2.0, 3.0], [4.0, 4.0, 100.0]]).requires_grad_(True)
    mask = _t([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    what = ("logp=[[-1, -2, -3], [-0.5, -0.5, -9]], weights=[[1, 2, 3], [4, 4, 100]], "
            "mask=[[1, 1, 1], [1, 1, 0]] (the last step of episode 2 is padding)")
    loss = fn(logp, weights, mask)
    expect_true(isinstance(loss, torch.Tensor) and loss.ndim == 0,
                f"{what}: expected a scalar tensor, got {type(loss).__name__} "
                f"{tuple(getattr(loss, 'shape', ()))}")
    expect_close(loss, 9.0, what)
    loss.backward()
    expect_close(logp.grad, -_np(mask * weights) / 2,
                 f"{what}: the gradient with respect to logp (should be -mask * weights / B)")
    expect_true(weights.grad is None or float(weights.grad.abs().max()) == 0.0,
                f"{what}: a gradient flowed into the weights; treat returns/advantages as "
                "constants (weights.detach())")
    lp = _t([[-1.0, -1.0]])
    up = fn(_t([[-0.5, -1.0]]), _t([[1.0, 1.0]]), _t([[1.0, 1.0]]))
    base = fn(lp, _t([[1.0, 1.0]]), _t([[1.0, 1.0]]))
    expect_true(float(up) < float(base),
                "sign test: raising log pi of an action with a positive weight must lower the "
                f"loss; got loss {float(base):.3f} -> {float(up):.3f}")


@register("pg.optimal_baseline", notebook=NB, reference=pg.optimal_baseline,
          hint="c* = sum_n |g_n|^2 R_n / sum_n |g_n|^2, where |g_n|^2 is the squared norm of "
               "sample n's whole score vector (flatten all but the first axis).")
def _(fn: Callable) -> None:
    scores = _t([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    expect_close(fn(scores, _t([1.0, 2.0, 3.0])), 15 / 7,
                 "scores=[[1, 0], [0, 2], [1, 1]], returns=[1, 2, 3]")
    expect_close(fn(_t([[3.0, 4.0], [0.0, 5.0], [-5.0, 0.0]]), _t([1.0, 4.0, 7.0])), 4.0,
                 "scores with equal norms [[3, 4], [0, 5], [-5, 0]], returns=[1, 4, 7] "
                 "(equal weights: the mean return)")
    gen = torch.Generator().manual_seed(3)
    g3 = torch.randn(50, 3, 2, dtype=torch.float64, generator=gen)
    r = 5.0 + torch.randn(50, dtype=torch.float64, generator=gen) * 2
    sq = g3.reshape(50, -1).pow(2).sum(1)
    expect_close(fn(g3, r), float((sq * r).sum() / sq.sum()),
                 "random scores of shape [50, 3, 2] (one 3x2 score matrix per sample)")
    c = float(_np(fn(g3, r)))
    second_moment = lambda b: float(((r - b)[:, None, None] * g3).pow(2).sum())
    expect_true(second_moment(c) <= min(second_moment(c - 0.05), second_moment(c + 0.05)),
                f"your c = {c:.4f} does not minimise sum_n |(R_n - c) g_n|^2 on random data")
