"""Per-token and sequence log-probabilities of a causal LM, with masks (notebook 09).

A causal LM reads tokens x_0 .. x_{T-1} and its logits at position t score the *next* token
x_{t+1}. So the log-probability of the token at position t+1 is

    log pi(x_{t+1} | x_{<=t}) = log_softmax(logits[:, t])[x_{t+1}],   t = 0 .. T-2,

which is a shift by one followed by a ``gather``. The sequence log-probability of a response y
to a prompt x is the sum over the response tokens only:

    log pi(y | x) = sum_{t in response} log pi(y_t | x, y_{<t}).

Shapes: ``input_ids`` [B, T], ``logits`` [B, T, V]. Per-token results have T - 1 columns:
column t belongs to the token ``input_ids[:, t + 1]`` (the first token has no prediction), and
masks for them are [B, T - 1] as well.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def _check_ids(logits: Tensor, input_ids: Tensor) -> None:
    if logits.ndim != 3 or input_ids.ndim != 2 or tuple(logits.shape[:2]) != tuple(
            input_ids.shape):
        raise ValueError(f"need logits [B, T, V] and input_ids [B, T]; got {tuple(logits.shape)}"
                         f" and {tuple(input_ids.shape)}")
    if input_ids.shape[1] < 2:
        raise ValueError("need at least 2 tokens per row: the first one is never predicted")


def token_logprobs(logits: Tensor, input_ids: Tensor) -> Tensor:
    """log pi(x_{t+1} | x_{<=t}) for t = 0 .. T-2: [B, T, V] and [B, T] -> [B, T-1]."""
    _check_ids(logits, input_ids)
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    targets = input_ids[:, 1:].long().unsqueeze(-1)
    return logp.gather(-1, targets).squeeze(-1)


def token_entropy(logits: Tensor) -> Tensor:
    """Entropy of the next-token distribution at positions 0 .. T-2: [B, T, V] -> [B, T-1]."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def response_mask(attention_mask: Tensor, response_start: int | Tensor) -> Tensor:
    """Mask [B, T-1] of the per-token columns that score response tokens.

    Column t scores token t+1, which counts if it is real (``attention_mask[:, t+1] == 1``) and
    at or after ``response_start`` (an int, or a [B] tensor of per-row start columns).
    Prompt tokens and padding get 0; the response's end-of-sequence token counts.
    """
    if attention_mask.ndim != 2:
        raise ValueError(f"attention_mask must be [B, T], got {tuple(attention_mask.shape)}")
    B, T = attention_mask.shape
    start = torch.as_tensor(response_start, device=attention_mask.device).reshape(-1, 1)
    if start.shape[0] not in (1, B):
        raise ValueError(f"response_start must be an int or have {B} entries, got "
                         f"{start.shape[0]}")
    if bool((start < 1).any()) or bool((start >= T).any()):
        raise ValueError(f"response_start must lie in [1, {T - 1}], got {response_start}")
    positions = torch.arange(1, T, device=attention_mask.device).unsqueeze(0)  # token index
    return ((positions >= start) & attention_mask[:, 1:].bool()).to(torch.float32)


def sequence_logprob(token_logp: Tensor, mask: Tensor) -> Tensor:
    """Sum of per-token log-probs over ``mask``: [B, T-1] and [B, T-1] -> [B]."""
    if token_logp.shape != mask.shape:
        raise ValueError(f"token_logp {tuple(token_logp.shape)} and mask {tuple(mask.shape)} "
                         "must have the same shape")
    return (token_logp * mask.to(token_logp.dtype)).sum(-1)


def masked_nll(logits: Tensor, input_ids: Tensor, mask: Tensor) -> Tensor:
    """Mean negative log-likelihood over the masked tokens (the SFT loss), a scalar.

    ``mask`` [B, T-1] as from :func:`response_mask`; each counted token has equal weight.
    """
    logp = token_logprobs(logits, input_ids)
    if mask.shape != logp.shape:
        raise ValueError(f"mask must be [B, T-1] = {tuple(logp.shape)}, got {tuple(mask.shape)}")
    m = mask.to(logp.dtype)
    return -(logp * m).sum() / m.sum().clamp_min(1.0)


def position_ids(attention_mask: Tensor) -> Tensor:
    """Positions [B, T] that start at 0 on each row's first real token (left padding safe)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def model_token_logprobs(model, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """Run ``model`` and return :func:`token_logprobs` [B, T-1] (with gradients)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask,
                   position_ids=position_ids(attention_mask)).logits
    return token_logprobs(logits, input_ids)


def last_token_index(mask: Tensor) -> Tensor:
    """Column [B] of the rightmost real (non-zero) entry of each row of ``mask`` [B, T]: the
    last real token, for right and left padding alike. Every row needs a real token."""
    if mask.ndim != 2 or mask.shape[1] == 0:
        raise ValueError(f"mask must be [B, T], got {tuple(mask.shape)}")
    if bool((mask.sum(-1) == 0).any()):
        raise ValueError("a row of the mask has no real token (every row needs at least one)")
    cols = torch.arange(mask.shape[1], device=mask.device)
    return (cols * (mask != 0)).argmax(-1)
