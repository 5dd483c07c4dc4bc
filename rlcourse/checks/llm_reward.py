"""Checks for notebook 10 (reward models)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch

from rlcourse.exercises import call_with, expect_close, expect_true, expect_type, register
from rlcourse.llm import reward_model as rmod

NB = "10_reward_models"


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


@register("llm_reward.bradley_terry_loss", notebook=NB, reference=rmod.bradley_terry_loss,
          hint="The model says P(chosen wins) = sigmoid(r_chosen - r_rejected). Maximum "
               "likelihood means minimising the mean negative *log* of that probability; "
               "torch has a numerically stable log-sigmoid.")
def _(fn: Callable) -> None:
    expect_close(fn(_t([0.3, -1.0]), _t([0.3, -1.0])), math.log(2),
                 "equal scores r_chosen = r_rejected = [0.3, -1.0] (T-01: ln 2)", atol=1e-6)
    rw, rl = _t([2.0, -1.0, 0.5]), _t([0.5, 1.0, 0.5])
    exact = float(sum(math.log1p(math.exp(-(w - r))) for w, r in zip(rw, rl)) / 3)
    expect_close(fn(rw, rl), exact, "r_chosen = [2, -1, 0.5], r_rejected = [0.5, 1, 0.5] (the "
                 "mean over the 3 pairs)", atol=1e-6)
    big = torch.tensor([-200.0, 200.0]), torch.zeros(2)  # float32, like a model's scores
    expect_close(fn(*big), 100.0, "float32 margins -200 and +200 (they cost 200 and 0 nats; a "
                 "plain log(sigmoid(.)) gives inf)",
                 atol=1e-4)
    a = _t([0.1, 0.4]).requires_grad_(True)
    fn(a, _t([0.1, 0.4])).backward()
    expect_true(a.grad is not None and torch.allclose(a.grad, _t([-0.25, -0.25])),
                "the gradient with respect to r_chosen at zero margin, 2 pairs, should be "
                f"-(1 - 1/2) / 2 = -0.25 each (raising the chosen score lowers the loss); "
                f"got {None if a.grad is None else a.grad.tolist()}")


@register("llm_reward.last_token_index", notebook=NB, reference=rmod.last_token_index,
          hint="A row's last real token is the rightmost column where the mask is 1. Counting "
               "the ones finds it only when the padding is on the right.")
def _(fn: Callable) -> None:
    cases = [([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], [2, 4], "right padding and a full row"),
             ([[0, 0, 1, 1, 1], [0, 1, 1, 1, 1]], [4, 4], "left padding"),
             ([[1, 0, 0], [1, 1, 0], [1, 1, 1]], [0, 1, 2], "rows of 1, 2 and 3 real tokens"),
             ([[0, 1, 1, 0], [1, 1, 0, 0]], [2, 1], "padding on both sides of row 0")]
    for mask, expected, what in cases:
        got = call_with(fn, f"mask {mask}", torch.tensor(mask))
        expect_type(got, torch.Tensor, f"mask {mask}")
        expect_true(not got.is_floating_point(), f"mask {mask}: return integer indices (usable "
                    f"with gather), got dtype {got.dtype}")
        expect_close(got, expected, f"mask {mask} ({what})", atol=0)


def _pairs_and_model():
    """A tiny RM with a non-zero head and 16 fixed pairs (built fresh for every call)."""
    from rlcourse.llm import model as lm
    from rlcourse.llm import task

    tok = lm.build_tokenizer()
    torch.manual_seed(0)
    rm = rmod.build_reward_model(lm.build_model(tok, lm.ModelConfig(32, 1, 2, 16), seed=0))
    pairs = rmod.synthetic_gold_pairs(task.split_problems(0, 500)[0][:12])[:32]
    return rm, rmod.encode_pairs(tok, pairs)


def _params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _two_steps(step, rm, data, head: torch.Tensor) -> tuple[list, torch.Tensor]:
    """Run ``step`` twice on two different halves of ``data`` with AdamW from one state."""
    torch.nn.init.zeros_(rm.score.weight)
    with torch.no_grad():
        rm.score.weight += head
    opt = torch.optim.AdamW(rm.parameters(), lr=1e-2, weight_decay=0.01)
    rm.train()
    out = [step(rm, opt, *data.rows(torch.arange(0, 16)), 1.0),
           step(rm, opt, *data.rows(torch.arange(16, 32)), 1.0)]
    return out, _params(rm)


@register("llm_reward.rm_train_step", notebook=NB, reference=rmod.rm_train_step,
          hint="Score both batches with batch_scores, take the Bradley-Terry loss of (chosen, "
               "rejected), clear the old gradients, backpropagate, clip the gradient norm, "
               "step the optimiser; return the loss and the pairwise accuracy of those scores.")
def _(fn: Callable) -> None:
    rm, data = _pairs_and_model()
    fresh = copy.deepcopy(rm)
    zero = call_with(fn, "a zero-head RM", fresh, torch.optim.SGD(fresh.parameters(), lr=0.0),
                     *data.rows(torch.arange(16)), 1.0)
    expect_type(zero, (tuple, list), "the return value", length=2)
    expect_close(zero, [math.log(2), 0.5], "(loss, accuracy) of a zero-head RM: every score is "
                 "0, so the loss is ln 2 and every pair is a tie", atol=1e-5)
    head = 0.3 * torch.randn(rm.score.weight.shape, generator=torch.Generator().manual_seed(1))
    want, want_params = _two_steps(rmod.rm_train_step, copy.deepcopy(rm), data, head)
    got, got_params = _two_steps(fn, copy.deepcopy(rm), data, head)
    expect_close([list(x) for x in got], [list(x) for x in want],
                 "(loss, accuracy) of two steps (AdamW, lr 1e-2) on two batches of 16 pairs, "
                 "each measured before its update", atol=1e-4)
    gap = float((got_params - want_params).abs().max())
    expect_true(gap < 1e-4, "after those two steps the parameters differ from the reference's by "
                f"up to {gap:.2e}: check the order zero_grad -> backward -> clip -> step, and "
                "which batch is chosen")
