"""Sequence log-probs against a loop over prefixes, the sampling distribution against Hugging
Face's warpers, the sampling loop, pass@k against enumeration, and the SFT step."""

import itertools
import math

import pytest
import torch

from rlcourse.llm import model as lm
from rlcourse.llm import sampling, sft

TINY = lm.ModelConfig(n_embd=32, n_layer=1, n_head=2, n_positions=16)


@pytest.fixture(scope="module")
def tok():
    return lm.build_tokenizer()


@pytest.fixture(scope="module")
def tiny(tok):
    return lm.build_model(tok, TINY, seed=0).eval()


def test_response_logprob_matches_a_loop_over_prefixes(tok, tiny):
    batch = sft.make_batch(tok, ["47+35=", "1+2="], ["82", "3"])
    with torch.no_grad():
        logits = tiny(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        got = sampling.response_logprob(logits, batch.input_ids, batch.response_mask)
        for row, (prompt, answer) in enumerate([("47+35=", "82"), ("1+2=", "3")]):
            ids = tok(prompt + answer + tok.eos_token)["input_ids"]
            total = 0.0  # product of next-token probabilities, each from its own forward pass
            for t in range(len(tok(prompt)["input_ids"]), len(ids)):
                probs = torch.softmax(tiny(torch.tensor([ids[:t]])).logits[0, -1], -1)
                total += math.log(float(probs[ids[t]]))
            assert float(got[row]) == pytest.approx(total, abs=1e-4)


def test_next_token_distribution_matches_hugging_face_warpers():
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper

    logits = torch.randn(4, 16, generator=torch.Generator().manual_seed(0)) * 3
    for temperature, top_k in [(1.0, None), (0.7, None), (1.3, 5), (0.5, 1), (2.0, 16)]:
        scores = TemperatureLogitsWarper(temperature)(None, logits.clone())
        if top_k is not None:
            scores = TopKLogitsWarper(top_k)(None, scores)
        want = torch.softmax(scores, -1)
        got = sampling.next_token_distribution(logits, temperature, top_k)
        assert torch.allclose(got, want, atol=1e-6)
        assert torch.allclose(got.sum(-1), torch.ones(4))


def test_next_token_distribution_limits_and_errors():
    logits = torch.tensor([1.0, 3.0, 2.0])
    cold = sampling.next_token_distribution(logits, 1e-3)
    assert torch.allclose(cold, torch.tensor([0.0, 1.0, 0.0]))
    hot = sampling.next_token_distribution(logits, 1e3)
    assert torch.allclose(hot, torch.full((3,), 1 / 3), atol=1e-2)
    assert torch.allclose(sampling.next_token_distribution(logits, 1.0, 10),
                          torch.softmax(logits, -1))
    with pytest.raises(ValueError, match="temperature"):
        sampling.next_token_distribution(logits, 0.0)
    with pytest.raises(ValueError, match="top_k"):
        sampling.next_token_distribution(logits, 1.0, 0)


def test_sample_responses_greedy_limit_equals_generate(tok, tiny):
    prompts = ["47+35=", "1+2=", "99+98="]  # different lengths: left padding
    greedy = lm.generate(tiny, tok, prompts, max_new_tokens=5).responses
    sampled = sampling.sample_responses(tiny, tok, prompts, n_samples=3, top_k=1)
    assert sampled == [[g] * 3 for g in greedy]


def test_sample_responses_is_seeded_and_follows_the_distribution(tok, tiny):
    gen = torch.Generator().manual_seed(1)
    a = sampling.sample_responses(tiny, tok, ["47+35="], 8, generator=gen)
    b = sampling.sample_responses(tiny, tok, ["47+35="], 8,
                                  generator=torch.Generator().manual_seed(1))
    assert a == b and len(a) == 1 and len(a[0]) == 8
    # the first sampled token's frequencies match the model's next-token distribution
    ids = tok(["47+35="], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        probs = sampling.next_token_distribution(tiny(ids).logits[0, -1], 1.5)
    n = 4000
    out = sampling.sample_responses(tiny, tok, ["47+35="], n, max_new_tokens=1,
                                    temperature=1.5, generator=gen)[0]
    # special tokens (pad, eos, unk) all decode to "": compare them as one outcome
    first = [tok.convert_tokens_to_ids(r) if r else 0 for r in out]
    freq = torch.bincount(torch.tensor(first), minlength=len(tok)).float() / n
    want = torch.cat([probs[:3].sum(0, keepdim=True), probs[3:]])
    got = torch.cat([freq[:3].sum(0, keepdim=True), freq[3:]])
    assert float((got - want).abs().max()) < 4 * math.sqrt(0.25 / n)


def test_pass_at_k_matches_enumeration():
    for n, c, k in [(5, 2, 1), (5, 2, 2), (6, 1, 3), (4, 0, 2), (4, 4, 1), (7, 3, 7)]:
        subsets = list(itertools.combinations([1] * c + [0] * (n - c), k))
        want = sum(any(s) for s in subsets) / len(subsets)
        assert sampling.pass_at_k(n, c, k) == pytest.approx(want)
    assert sampling.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="k=5"):
        sampling.pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="c"):
        sampling.pass_at_k(4, 5, 1)


def test_sft_step_counts_response_tokens_and_learns(tok):
    model = lm.build_model(tok, TINY, seed=1)
    batch = sft.make_batch(tok, ["47+35=", "12+13="], ["82", "25"])
    for p in model.parameters():  # stale gradients must not leak into the step
        p.grad = torch.full_like(p, 100.0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    with torch.no_grad():
        before = float(sft.lm_loss(model, batch))
    first = sft.sft_step(model, batch, opt)
    assert first == pytest.approx(before, rel=1e-5)
    losses = [sft.sft_step(model, batch, opt) for _ in range(60)]
    assert losses[-1] < 0.2 * first
    with pytest.raises(ValueError, match="max_grad_norm"):
        sft.sft_step(model, batch, opt, max_grad_norm=0.0)


def test_sft_step_clips_the_gradient_norm(tok):
    model = lm.build_model(tok, TINY, seed=2)
    twin = lm.build_model(tok, TINY, seed=2)
    batch = sft.make_batch(tok, ["47+35="], ["82"])
    sft.sft_step(model, batch, torch.optim.SGD(model.parameters(), lr=1.0), max_grad_norm=0.01)
    with torch.no_grad():
        moved = torch.cat([(a - b).flatten() for a, b in zip(model.parameters(),
                                                              twin.parameters())])
    assert float(moved.norm()) == pytest.approx(0.01, rel=1e-3)  # SGD moves lr * clipped grad
