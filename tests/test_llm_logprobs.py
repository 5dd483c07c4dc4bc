"""Per-token log-probs, masks and sequence log-probs against brute-force loops over tokens."""

import math

import pytest
import torch

from rlcourse.llm import logprobs as lp
from rlcourse.llm import model as lm


def _brute_token_logprobs(logits, ids):
    """One softmax per position, written out by hand: log p(ids[b, t+1] | prefix)."""
    B, T, V = logits.shape
    out = torch.zeros(B, T - 1, dtype=torch.float64)
    for b in range(B):
        for t in range(T - 1):
            row = logits[b, t].double()
            z = sum(math.exp(float(row[v])) for v in range(V))
            out[b, t] = float(row[int(ids[b, t + 1])]) - math.log(z)
    return out


def test_token_logprobs_match_brute_force():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 5, generator=g) * 3
    ids = torch.randint(0, 5, (3, 7), generator=g)
    got = lp.token_logprobs(logits, ids)
    assert got.shape == (3, 6)
    torch.testing.assert_close(got.double(), _brute_token_logprobs(logits, ids), atol=1e-5,
                               rtol=0)


def test_no_shift_would_be_wrong():
    """Guard the off-by-one: scoring ids[:, t] with logits[:, t] gives different numbers."""
    g = torch.Generator().manual_seed(1)
    logits, ids = torch.randn(2, 6, 4, generator=g), torch.randint(0, 4, (2, 6), generator=g)
    unshifted = torch.log_softmax(logits, -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)[:, 1:]
    assert not torch.allclose(unshifted, lp.token_logprobs(logits, ids))


def test_response_mask_selects_response_tokens_only():
    attention = torch.tensor([[1, 1, 1, 1, 1, 0, 0],    # prompt of 3, response of 2
                              [0, 1, 1, 1, 1, 1, 1]])   # left-padded prompt of 2, response of 3
    mask = lp.response_mask(attention, torch.tensor([3, 4]))
    assert mask.tolist() == [[0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1]]
    assert lp.response_mask(attention, 3)[1].tolist() == [0, 0, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="response_start"):
        lp.response_mask(attention, 0)
    with pytest.raises(ValueError, match="entries"):
        lp.response_mask(attention, torch.tensor([3, 3, 3]))


def test_sequence_logprob_is_the_log_of_the_product_of_probabilities():
    """log pi(y|x) from the model equals log prod_t pi(y_t | x, y_<t) computed token by token."""
    tok = lm.build_tokenizer()
    model = lm.build_model(tok, lm.ModelConfig(n_embd=16, n_layer=1, n_head=2), seed=0).eval()
    prompts, responses = ["47+35=", "12+3="], ["82", "15"]
    texts = [p + r + tok.eos_token for p, r in zip(prompts, responses)]
    tok.padding_side = "right"
    enc = tok(texts, padding=True, return_tensors="pt")
    ids, att = enc["input_ids"], enc["attention_mask"]
    start = torch.tensor([6, 5])
    with torch.no_grad():
        seq = lp.sequence_logprob(lp.model_token_logprobs(model, ids, att),
                                  lp.response_mask(att, start))
        for b in range(2):
            prob = 1.0
            for t in range(int(start[b]), int(att[b].sum())):  # one forward pass per token
                logits = model(input_ids=ids[b:b + 1, :t]).logits[0, -1]
                prob *= float(torch.softmax(logits.double(), -1)[ids[b, t]])
            assert float(seq[b]) == pytest.approx(math.log(prob), abs=1e-4)


def test_left_padding_does_not_change_log_probs():
    tok = lm.build_tokenizer()
    model = lm.build_model(tok, lm.ModelConfig(n_embd=16, n_layer=1, n_head=2), seed=0).eval()
    short = tok("1+2=3" + tok.eos_token, return_tensors="pt")["input_ids"]
    padded = torch.cat([torch.zeros(1, 2, dtype=torch.long), short], 1)
    att = torch.cat([torch.zeros(1, 2, dtype=torch.long), torch.ones_like(short)], 1)
    with torch.no_grad():
        a = lp.model_token_logprobs(model, short, torch.ones_like(short))
        b = lp.model_token_logprobs(model, padded, att)[:, 2:]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_masked_nll_is_the_mean_over_counted_tokens():
    g = torch.Generator().manual_seed(2)
    logits, ids = torch.randn(2, 5, 3, generator=g), torch.randint(0, 3, (2, 5), generator=g)
    mask = torch.tensor([[0, 1, 1, 0], [0, 0, 1, 0]], dtype=torch.float32)
    token = lp.token_logprobs(logits, ids)
    expected = -(token[0, 1] + token[0, 2] + token[1, 2]) / 3
    assert float(lp.masked_nll(logits, ids, mask)) == pytest.approx(float(expected))
    with pytest.raises(ValueError, match="T-1"):
        lp.masked_nll(logits, ids, torch.ones(2, 5))


def test_entropy_and_shape_errors():
    uniform = torch.zeros(1, 3, 4)
    torch.testing.assert_close(lp.token_entropy(uniform), torch.full((1, 2), math.log(4)))
    with pytest.raises(ValueError, match=r"\[B, T, V\]"):
        lp.token_logprobs(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2"):
        lp.token_logprobs(torch.zeros(2, 1, 4), torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="same shape"):
        lp.sequence_logprob(torch.zeros(2, 3), torch.zeros(2, 4))
