"""Scoring and sampling responses of the lab policy (notebook 09).

* :func:`response_logprob` is the sequence log-probability of each row's response,
  log pi(y | x) = sum over response tokens of log pi(y_t | x, y_<t): one shift, one ``gather``
  and a mask (built from :mod:`rlcourse.llm.logprobs`).
* :func:`next_token_distribution` turns next-token logits into the distribution a sampler
  draws from: logits divided by the temperature, all but the ``top_k`` largest removed, softmax.
  It is what Hugging Face's temperature and top-k logits warpers do before sampling.
* :func:`sample_responses` is a plain sampling loop (with the KV cache) that draws ``n``
  responses per prompt from any such distribution function, so a learner's own function can
  drive it.
* :func:`pass_at_k` is the unbiased estimate of "at least one of k samples is right" from n
  samples of which c were right (Chen et al., 2021).

Shapes: logits [B, T, V] or [..., V] for a single position; ``input_ids`` [B, T]; per-token
masks [B, T-1] (column t scores token t+1, as in :mod:`rlcourse.llm.logprobs`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from rlcourse.llm.logprobs import position_ids, sequence_logprob, token_logprobs
from rlcourse.llm.model import context_length, decode_responses, encode_prompts
from rlcourse.validation import check_in_range, check_positive_int

Tensor = torch.Tensor
DistributionFn = Callable[..., Tensor]


def response_logprob(logits: Tensor, input_ids: Tensor, mask: Tensor) -> Tensor:
    """log pi(y | x) per row: the masked sum of next-token log-probs, [B, T, V], [B, T],
    [B, T-1] -> [B]. ``mask`` selects the per-token columns to count (1 = response token)."""
    return sequence_logprob(token_logprobs(logits, input_ids), mask)


def next_token_distribution(logits: Tensor, temperature: float = 1.0,
                            top_k: int | None = None) -> Tensor:
    """Sampling probabilities [..., V] from next-token logits [..., V].

    The logits are divided by ``temperature`` (> 0); with ``top_k`` only the k largest logits
    keep probability (ties with the k-th largest are kept, as in Hugging Face's top-k warper);
    then a softmax over the last axis. ``top_k=None`` keeps the whole vocabulary.
    """
    temperature = check_in_range(temperature, "temperature", 0.0, 1e4, low_open=True)
    scaled = logits.float() / temperature
    if top_k is not None:
        k = min(check_positive_int(top_k, "top_k"), scaled.shape[-1])
        kth = torch.topk(scaled, k, dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    return torch.softmax(scaled, dim=-1)


@torch.no_grad()
def sample_responses(model, tokenizer, prompts: Sequence[str], n_samples: int = 1,
                     max_new_tokens: int = 5, temperature: float = 1.0,
                     top_k: int | None = None,
                     distribution: DistributionFn = next_token_distribution,
                     generator: torch.Generator | None = None) -> list[list[str]]:
    """``n_samples`` sampled responses (texts without the end marker) for each prompt.

    One token at a time (reusing the model's key/value cache): turn the last logits into
    probabilities with ``distribution(logits [N, V], temperature, top_k)`` and draw from them
    (with ``generator`` if given). A row that has emitted eos receives padding from then on.
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens")
    ids, mask = encode_prompts(tokenizer, prompts, context_length(model), reserve=max_new_tokens)
    ids, mask = ids.repeat_interleave(n_samples, 0), mask.repeat_interleave(n_samples, 0)
    start, eos, pad = ids.shape[1], tokenizer.eos_token_id, tokenizer.pad_token_id
    done = torch.zeros(ids.shape[0], dtype=torch.bool)
    was_training = model.training
    model.eval()
    past, fresh = None, ids
    for _ in range(max_new_tokens):
        pos = position_ids(mask)[:, -fresh.shape[1]:]
        out = model(input_ids=fresh, attention_mask=mask, position_ids=pos,
                    past_key_values=past, use_cache=True)
        past = out.past_key_values
        probs = distribution(out.logits[:, -1], temperature, top_k)
        nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
        fresh = nxt[:, None]
        ids = torch.cat([ids, fresh], dim=1)
        mask = torch.cat([mask, (~done).to(mask.dtype)[:, None]], dim=1)
        done |= nxt == eos
        if bool(done.all()):
            break
    model.train(was_training)
    texts, _ = decode_responses(tokenizer, ids, start)
    return [texts[i * n_samples:(i + 1) * n_samples] for i in range(len(prompts))]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n samples,
    c of them correct, is correct: 1 - C(n - c, k) / C(n, k) (unbiased for pass@k)."""
    n, k = check_positive_int(n, "n"), check_positive_int(k, "k")
    if isinstance(c, bool) or not 0 <= int(c) <= n:
        raise ValueError(f"need 0 <= c <= n = {n}, got c={c!r}")
    if k > n:
        raise ValueError(f"k={k} is larger than the number of samples n={n}")
    return 1.0 - math.comb(n - int(c), k) / math.comb(n, k)
