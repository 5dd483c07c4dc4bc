"""Honesty tests for the checks of notebook 09: blanks and plausible wrong answers must fail."""

import pytest
import torch

from rlcourse.llm.logprobs import position_ids
from tests.honesty import assert_verdict, honesty_cases

# ---- response_logprob ----------------------------------------------------------------------


def lp_unshifted(logits, ids, mask):
    """Scores the token at t with the logits at t (no shift: the model 'sees' the answer)."""
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, :-1, None]).squeeze(-1)
    return (logp * mask).sum(-1)


def lp_shift_backwards(logits, ids, mask):
    """Shifts the wrong way: logits at t + 1 score the token at t."""
    logp = torch.log_softmax(logits[:, 1:], -1).gather(-1, ids[:, :-1, None]).squeeze(-1)
    return (logp * mask).sum(-1)


def lp_raw_logits(logits, ids, mask):
    """Gathers raw logits as if they were log-probabilities (E-39's confusion in code)."""
    picked = logits[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (picked * mask).sum(-1)


def lp_no_mask(logits, ids, mask):
    """Counts the prompt tokens too."""
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return logp.sum(-1)


def lp_mean(logits, ids, mask):
    """Averages over the response tokens instead of summing (a per-token score)."""
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (logp * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)


def lp_probability(logits, ids, mask):
    """Returns the probability of the response instead of its log."""
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (logp * mask).sum(-1).exp()


# ---- next_token_distribution --------------------------------------------------------------


def _topk_mask(x, top_k):
    kth = torch.topk(x, min(top_k, x.shape[-1]), dim=-1).values[..., -1:]
    return x.masked_fill(x < kth, float("-inf"))


def dist_times_temperature(logits, temperature=1.0, top_k=None):
    """Multiplies by the temperature (so T > 1 sharpens)."""
    x = logits * temperature
    return torch.softmax(x if top_k is None else _topk_mask(x, top_k), -1)


def dist_topk_not_renormalised(logits, temperature=1.0, top_k=None):
    """Zeroes the probabilities outside the top k after the softmax, without renormalising."""
    p = torch.softmax(logits / temperature, -1)
    if top_k is None:
        return p
    kth = torch.topk(p, top_k, dim=-1).values[..., -1:]
    return p.masked_fill(p < kth, 0.0)


def dist_topk_off_by_one(logits, temperature=1.0, top_k=None):
    """Keeps k + 1 tokens."""
    x = logits / temperature
    return torch.softmax(x if top_k is None else _topk_mask(x, top_k + 1), -1)


def dist_ignores_temperature(logits, temperature=1.0, top_k=None):
    """Forgets the temperature."""
    return torch.softmax(logits if top_k is None else _topk_mask(logits, top_k), -1)


def dist_power_unnormalised(logits, temperature=1.0, top_k=None):
    """Applies the temperature to probabilities (p ** (1 / T)) and does not renormalise."""
    x = logits if top_k is None else _topk_mask(logits, top_k)
    return torch.softmax(x, -1) ** (1.0 / temperature)


# ---- sft_step -----------------------------------------------------------------------------


def _nll(model, batch, mask, shift=True):
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                   position_ids=position_ids(batch.attention_mask)).logits
    if shift:
        logits, labels = logits[:, :-1], batch.input_ids[:, 1:]
    else:
        logits, labels = logits[:, 1:], batch.input_ids[:, 1:]
    logp = torch.log_softmax(logits, -1).gather(-1, labels[..., None]).squeeze(-1)
    return -(logp * mask).sum() / mask.sum()


def _step(model, loss, optimizer, max_grad_norm, zero=True, clip=True, step=True):
    if zero:
        optimizer.zero_grad()
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    if step:
        optimizer.step()
    return float(loss.detach())


def step_no_zero_grad(model, batch, optimizer, max_grad_norm=1.0):
    """Forgets to clear the previous gradients."""
    loss = _nll(model, batch, batch.response_mask)
    return _step(model, loss, optimizer, max_grad_norm, zero=False)


def step_prompt_tokens(model, batch, optimizer, max_grad_norm=1.0):
    """Trains on the prompt tokens too (the unmasked loss)."""
    loss = _nll(model, batch, batch.all_mask)
    return _step(model, loss, optimizer, max_grad_norm)


def step_unshifted(model, batch, optimizer, max_grad_norm=1.0):
    """Labels not shifted against the logits: the logits at t + 1 score the token at t + 1."""
    loss = _nll(model, batch, batch.response_mask, shift=False)
    return _step(model, loss, optimizer, max_grad_norm)


def step_no_clip(model, batch, optimizer, max_grad_norm=1.0):
    """Never clips the gradient norm."""
    loss = _nll(model, batch, batch.response_mask)
    return _step(model, loss, optimizer, max_grad_norm, clip=False)


def step_no_optimizer_step(model, batch, optimizer, max_grad_norm=1.0):
    """Computes gradients but never updates the parameters."""
    loss = _nll(model, batch, batch.response_mask)
    return _step(model, loss, optimizer, max_grad_norm, step=False)


def step_loss_after(model, batch, optimizer, max_grad_norm=1.0):
    """Returns the loss recomputed after the update."""
    loss = _nll(model, batch, batch.response_mask)
    _step(model, loss, optimizer, max_grad_norm)
    with torch.no_grad():
        return float(_nll(model, batch, batch.response_mask))


def step_sum_not_mean(model, batch, optimizer, max_grad_norm=1.0):
    """Sums the token losses instead of averaging them."""
    loss = _nll(model, batch, batch.response_mask) * batch.response_mask.sum()
    return _step(model, loss, optimizer, max_grad_norm)


WRONG_ANSWERS = {
    "llm_policies.response_logprob": {
        "unshifted": lp_unshifted, "shift-backwards": lp_shift_backwards,
        "raw-logits": lp_raw_logits, "no-mask": lp_no_mask, "mean": lp_mean,
        "probability": lp_probability},
    "llm_policies.next_token_distribution": {
        "times-temperature": dist_times_temperature,
        "topk-not-renormalised": dist_topk_not_renormalised,
        "topk-off-by-one": dist_topk_off_by_one, "no-temperature": dist_ignores_temperature,
        "power-unnormalised": dist_power_unnormalised},
    "llm_policies.sft_step": {
        "no-zero-grad": step_no_zero_grad, "prompt-tokens": step_prompt_tokens,
        "unshifted": step_unshifted, "no-clip": step_no_clip,
        "no-optimizer-step": step_no_optimizer_step, "loss-after-step": step_loss_after,
        "sum-not-mean": step_sum_not_mean},
}


@pytest.mark.parametrize(("name", "candidate", "expected"), honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_distribution_check_needs_any_leading_shape():
    """A function that only handles [B, V] (softmax over dim 1) fails on a single row [V]."""

    def rows_only(logits, temperature=1.0, top_k=None):
        x = logits / temperature
        if top_k is not None:
            kth = torch.topk(x, top_k, dim=1).values[:, -1:]
            x = x.masked_fill(x < kth, float("-inf"))
        return torch.softmax(x, dim=1)

    assert_verdict("llm_policies.next_token_distribution", rows_only, "failed")
