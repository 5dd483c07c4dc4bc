"""Pretraining and SFT: batches and masks, the loss, a memorisation run, evaluation, the cache."""

import numpy as np
import pytest
import torch

from rlcourse.llm import model as lm
from rlcourse.llm import sft, task
from rlcourse.llm.task import Problem

TINY = lm.ModelConfig(n_embd=32, n_layer=1, n_head=2, n_positions=16)


@pytest.fixture(scope="module")
def tok():
    return lm.build_tokenizer()


def test_make_batch_masks(tok):
    b = sft.make_batch(tok, ["47+35=", "1+2="], ["82", "3"])
    assert b.input_ids.shape == (2, 9)
    assert b.attention_mask[1].tolist() == [1] * 6 + [0] * 3  # right padding
    # columns score tokens 1..8: the response is "82<eos>" (tokens 6-8) and "3<eos>" (4-5)
    assert b.response_mask.tolist() == [[0] * 5 + [1] * 3, [0] * 3 + [1] * 2 + [0] * 3]
    assert b.all_mask.tolist() == [[1] * 8, [1] * 5 + [0] * 3]
    assert b.n_tokens == 15


def test_make_batch_errors(tok):
    with pytest.raises(ValueError, match="as many responses"):
        sft.make_batch(tok, ["1+2="], [])
    with pytest.raises(ValueError, match=r"\['a'\]"):
        sft.make_batch(tok, ["1+2="], ["a"])
    with pytest.raises(ValueError, match="more than the context of 16"):
        sft.make_batch(tok, ["1+2="], ["1" * 12])


def test_loss_counts_response_tokens_or_all_tokens(tok):
    from rlcourse.llm.logprobs import model_token_logprobs

    model = lm.build_model(tok, TINY, seed=0)
    b = sft.make_batch(tok, ["47+35=", "1+2="], ["82", "3"])
    with torch.no_grad():
        logp = model_token_logprobs(model, b.input_ids, b.attention_mask)
        resp, full = float(sft.lm_loss(model, b)), float(sft.lm_loss(model, b, True))
    # response tokens: "8", "2", eos of row 0 (columns 5-7) and "3", eos of row 1 (columns 3-4)
    picked = [logp[0, 5], logp[0, 6], logp[0, 7], logp[1, 3], logp[1, 4]]
    assert resp == pytest.approx(-float(sum(picked)) / 5, rel=1e-5)
    everything = [logp[0, t] for t in range(8)] + [logp[1, t] for t in range(5)]
    assert full == pytest.approx(-float(sum(everything)) / 13, rel=1e-5)


def test_lr_schedule():
    assert sft.lr_at(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert sft.lr_at(9, 100, 1.0, 10) == pytest.approx(1.0)
    assert sft.lr_at(10, 100, 1.0, 10) == pytest.approx(1.0)
    assert sft.lr_at(100, 100, 1.0, 10) == pytest.approx(0.1)
    assert 0.1 < sft.lr_at(55, 100, 1.0, 10) < 1.0


def test_sft_on_one_demonstration_makes_it_the_greedy_answer(tok):
    """A behavioural check of the whole loop: loss falls and greedy decoding repeats the demo."""
    model = lm.build_model(tok, TINY, seed=0)
    batch = sft.make_batch(tok, ["47+35="] * 8, ["72"] * 8)  # a wrong demonstration on purpose
    modes = []

    def probe():
        modes.append(model.training)
        return float(lm.generate(model, tok, ["47+35="], 4).responses == ["72"])

    hist = sft.train_lm(model, lambda: batch, 60, 1e-2, include_prompt=False, warmup=5,
                        progress=False, eval_fn=probe, eval_every=25)
    assert hist["loss"][-1] < 0.1 * hist["loss"][0]
    assert hist["eval_step"] == [25, 50, 60] and hist["eval"][-1] == 1.0
    assert modes == [False] * 3
    assert all(s > 0 for s in hist["tokens_per_s"])
    assert lm.generate(model, tok, ["47+35="], 4).responses == ["72"]
    assert not model.training


def test_evaluate_bookkeeping(tok, monkeypatch):
    canned = {"47+35=": "82", "41+35=": "70", "58+67=": "115"}

    def fake_generate(model, tokenizer, prompts, max_new_tokens):
        return lm.Generation(None, None, 6, [canned[p] for p in prompts], [True, False, True])

    monkeypatch.setattr(sft, "generate", fake_generate)
    problems = [Problem(47, 35), Problem(41, 35), Problem(58, 67)]
    out = sft.evaluate(None, tok, problems)
    assert out["accuracy"] == pytest.approx(1 / 3)
    assert out["accuracy_carry"] == pytest.approx(0.5)  # 47+35 right, 58+67 wrong
    assert out["accuracy_no_carry"] == 0.0
    assert out["ended"] == pytest.approx(2 / 3)
    expected = np.mean([1.0, task.gold_reward(Problem(41, 35), "70"), task.gold_reward(
        Problem(58, 67), "115")])
    assert out["gold_reward"] == pytest.approx(expected)
    assert sft.greedy_accuracy(None, tok, problems) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="empty"):
        sft.evaluate(None, tok, [])


def test_config_validation():
    with pytest.raises(ValueError, match="p_forget"):
        sft.SFTConfig(p_forget=2.0)
    with pytest.raises(ValueError, match="sft_steps"):
        sft.SFTConfig(sft_steps=0)
    with pytest.raises(ValueError, match="problems is empty"):
        sft.batch_sampler(lm.build_tokenizer(), [], 4, np.random.default_rng(0))


def test_sft_model_is_cached_and_reloaded(tmp_path):
    cfg = sft.SFTConfig(model=TINY, batch_size=8, pretrain_steps=3, sft_steps=2, warmup=1)
    m1, tok1, e1 = sft.sft_model(cfg, seed=0, root=tmp_path, progress=False)
    m2, _, e2 = sft.sft_model(cfg, seed=0, root=tmp_path, progress=False)
    base, _, e3 = sft.sft_model(cfg, seed=0, stage="base", root=tmp_path, progress=False)
    assert e1.built and not e2.built and not e3.built and e1.path == e2.path == e3.path
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)
    assert not torch.equal(m1.transformer.wte.weight, base.transformer.wte.weight)
    assert sorted(f.name for f in (e1.path / "sft").iterdir() if f.suffix == ".safetensors") == [
        "model.safetensors"]
    _, _, e4 = sft.sft_model(cfg, seed=1, root=tmp_path, progress=False)
    assert e4.built and e4.path != e1.path
    (e1.path / "sft" / "model.safetensors").write_bytes(b"broken")
    _, _, e5 = sft.sft_model(cfg, seed=0, root=tmp_path, progress=False)
    assert e5.built and e5.reason.startswith("corrupt")
    with pytest.raises(ValueError, match="stage"):
        sft.sft_model(cfg, stage="rm", root=tmp_path)
    assert tok1.eos_token_id == 1


def test_pretrain_and_sft_can_track_held_out_accuracy(tok):
    cfg = sft.SFTConfig(model=TINY, batch_size=8, pretrain_steps=3, sft_steps=2, warmup=1)
    train, held = task.split_problems(0, 20)
    model = lm.build_model(tok, TINY, seed=0)
    pre = sft.pretrain(model, tok, train, cfg, 0, progress=False, eval_problems=held,
                       eval_every=2)
    tuned = sft.sft(model, tok, train, cfg, 0, progress=False, eval_problems=held, eval_every=1)
    assert pre["eval_step"] == [2, 3] and tuned["eval_step"] == [1, 2]
    assert tuned["eval"][-1] == sft.greedy_accuracy(model, tok, held)
    assert sft.pretrain(model, tok, train, cfg, 0, progress=False)["eval"] == []
