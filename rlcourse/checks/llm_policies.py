"""Checks for notebook 09 (language models as policies)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from rlcourse.exercises import call_with, expect_close, expect_true, expect_type, register
from rlcourse.llm import model as lm
from rlcourse.llm import sampling, sft

NB = "09_lm_policies"


def _logit_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unnormalised logits [2, 5, 4], token ids [2, 5] and a response mask [2, 4]."""
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(2, 5, 4, generator=gen, dtype=torch.float64) * 2.0 + 3.0
    ids = torch.tensor([[0, 3, 1, 2, 2], [1, 1, 0, 3, 0]])
    mask = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
    return logits, ids, mask


def _brute_force(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """Row by row, token by token: log of softmax(logits at t-1)[token t] where counted."""
    out = []
    for b in range(ids.shape[0]):
        total = 0.0
        for t in range(1, ids.shape[1]):
            if mask[b, t - 1] > 0:
                probs = torch.softmax(logits[b, t - 1], dim=-1)
                total += float(torch.log(probs[ids[b, t]]))
        out.append(total)
    return out


@register("llm_policies.response_logprob", notebook=NB, reference=sampling.response_logprob,
          hint="The logits at position t score the token at position t + 1. Normalise the "
               "logits into log-probabilities, pick the entry of the token that actually came "
               "next, then add up only the columns the mask selects.")
def _(fn: Callable) -> None:
    logits, ids, mask = _logit_case()
    got = call_with(fn, "logits [2, 5, 4], ids [2, 5], mask [2, 4]", logits, ids, mask)
    expect_close(got, _brute_force(logits, ids, mask),
                 "logits [2, 5, 4], ids [[0, 3, 1, 2, 2], [1, 1, 0, 3, 0]], mask [[0, 0, 1, 1], "
                 "[0, 1, 1, 0]] (compared with a loop over tokens)", atol=1e-6)
    ones = torch.ones(2, 4, dtype=torch.float64)
    expect_close(fn(logits, ids, ones), _brute_force(logits, ids, ones),
                 "the same logits and ids with every column counted", atol=1e-6)
    shifted = logits + torch.tensor([5.0, -3.0], dtype=torch.float64)[:, None, None]
    expect_close(fn(shifted, ids, mask), _brute_force(logits, ids, mask),
                 "logits plus a constant per row (log-probabilities must not change)", atol=1e-6)
    expect_close(fn(logits, ids, torch.zeros(2, 4, dtype=torch.float64)), [0.0, 0.0],
                 "an all-zero mask (an empty response has log-probability 0)", atol=1e-9)


def _probs(logits: list[float], temperature: float, keep: list[int]) -> list[float]:
    """Softmax of logits / temperature restricted to the indices ``keep``."""
    x = torch.tensor(logits, dtype=torch.float64) / temperature
    out = torch.full_like(x, float("-inf"))
    out[keep] = x[keep]
    return torch.softmax(out, dim=-1).tolist()


@register("llm_policies.next_token_distribution", notebook=NB,
          reference=sampling.next_token_distribution,
          hint="Temperature divides the logits before the softmax: T < 1 sharpens, T > 1 "
               "flattens. Top-k removes every token whose logit is below the k-th largest "
               "before normalising, so the kept probabilities still sum to 1.")
def _(fn: Callable) -> None:
    row = [2.0, 0.5, -1.0, 1.0, 0.0]
    x = torch.tensor([row], dtype=torch.float64)
    expect_close(fn(x, 1.0, None), [_probs(row, 1.0, [0, 1, 2, 3, 4])],
                 "logits [[2, 0.5, -1, 1, 0]], temperature 1, no top-k", atol=1e-6)
    expect_close(fn(x, 0.5, None), [_probs(row, 0.5, [0, 1, 2, 3, 4])],
                 "the same logits at temperature 0.5", atol=1e-6)
    expect_close(fn(x, 2.0, None), [_probs(row, 2.0, [0, 1, 2, 3, 4])],
                 "the same logits at temperature 2", atol=1e-6)
    expect_close(fn(x, 1.0, 2), [_probs(row, 1.0, [0, 3])],
                 "temperature 1, top_k 2 (only the two largest logits keep probability)",
                 atol=1e-6)
    expect_close(fn(x, 0.5, 3), [_probs(row, 0.5, [0, 1, 3])],
                 "temperature 0.5, top_k 3", atol=1e-6)
    expect_close(fn(x, 3.0, 1), [[1.0, 0.0, 0.0, 0.0, 0.0]],
                 "top_k 1 (greedy, whatever the temperature)", atol=1e-6)
    expect_close(fn(x[0], 2.0, 2), _probs(row, 2.0, [0, 3]),
                 "a single row of logits, shape [5], temperature 2, top_k 2", atol=1e-6)
    batch = torch.tensor([row, [0.0, 0.0, 3.0, -2.0, 1.0]], dtype=torch.float64)
    expect_close(fn(batch, 1.5, 2), [_probs(row, 1.5, [0, 3]),
                                     _probs([0.0, 0.0, 3.0, -2.0, 1.0], 1.5, [2, 4])],
                 "a batch of two rows, temperature 1.5, top_k 2 (top-k is per row)", atol=1e-6)


def _sft_case(tokenizer) -> tuple[torch.nn.Module, sft.Batch]:
    """A tiny GPT (seed 3) and a right-padded batch of four demonstrations."""
    config = lm.ModelConfig(n_embd=16, n_layer=1, n_head=2, n_positions=16)
    model = lm.build_model(tokenizer, config, seed=3)
    batch = sft.make_batch(tokenizer, ["47+35=", "12+13=", "99+99=", "5+7="],
                           ["72", "25", "198", "12"])
    return model, batch


def _junk_gradients(model: torch.nn.Module, seed: int) -> None:
    """Leave stale gradients on every parameter, as a previous step would."""
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen)


def _compare_step(fn: Callable, tokenizer, make_opt: Callable, clip: float, what: str) -> None:
    """Run the reference and ``fn`` from the same start; losses and parameters must match."""
    model, batch = _sft_case(tokenizer)
    mine = copy.deepcopy(model)
    _junk_gradients(model, 1)
    _junk_gradients(mine, 1)
    want = sft.sft_step(model, batch, make_opt(model), clip)
    got = call_with(fn, what, mine, batch, make_opt(mine), clip)
    expect_type(got, (float, int), f"{what}: the returned loss")
    expect_close(got, want, f"{what}: the returned loss (before the step)", atol=1e-5)
    with torch.no_grad():
        worst = max(float((a - b).abs().max()) for a, b in
                    zip(model.parameters(), mine.parameters()))
    expect_true(worst < 1e-5, f"{what}: after your step the parameters differ from the "
                f"reference's by up to {worst:.2e} (stale gradients, the mask, the shift, the "
                "clipping and the optimizer step all matter)")


@register("llm_policies.sft_step", notebook=NB, reference=sft.sft_step,
          hint="Loss: the mean negative log-likelihood of the response tokens only, with the "
               "one-position shift between logits and labels. Then the usual update: clear "
               "the old gradients, backpropagate, clip the global gradient norm, step.")
def _(fn: Callable) -> None:
    tokenizer = lm.build_tokenizer()
    _compare_step(fn, tokenizer, lambda m: torch.optim.SGD(m.parameters(), lr=0.1), 1e6,
                  "one SGD step (lr 0.1, no effective clipping) on 4 demonstrations")
    _compare_step(fn, tokenizer, lambda m: torch.optim.SGD(m.parameters(), lr=0.1), 0.05,
                  "one SGD step with max_grad_norm 0.05")
    _compare_step(fn, tokenizer, lambda m: torch.optim.AdamW(m.parameters(), lr=1e-2), 1.0,
                  "one AdamW step (lr 0.01, max_grad_norm 1)")
