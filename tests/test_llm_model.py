"""The character tokenizer, the GPT-2 builder, generation and loading real checkpoints."""

import pytest
import torch

from rlcourse.llm import model as lm
from rlcourse.llm.task import END

TINY = lm.ModelConfig(n_embd=16, n_layer=1, n_head=2, n_positions=16)


@pytest.fixture(scope="module")
def tok():
    return lm.build_tokenizer()


@pytest.fixture(scope="module")
def tiny(tok):
    return lm.build_model(tok, TINY, seed=0)


def test_tokenizer_is_character_level_with_specials(tok):
    assert len(tok) == 3 + len(lm.CHARS)
    assert (tok.pad_token_id, tok.eos_token_id) == (0, 1)
    ids = tok("47+35=82" + END)["input_ids"]
    assert len(ids) == 9 and ids[-1] == tok.eos_token_id
    assert tok.convert_ids_to_tokens(ids[:6]) == list("47+35=")
    assert tok.decode(ids, skip_special_tokens=True) == "47+35=82"
    assert lm.is_char_tokenizer(tok)


def test_unknown_characters_are_named(tok):
    with pytest.raises(ValueError, match=r"\['a', 'x'\]"):
        lm.check_text(tok, ["12+a=", "x"])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        lm.encode_prompts(tok, ["12 + 3="])
    with pytest.raises(TypeError):
        lm.check_text(tok, "12+3=")
    lm.check_text(tok, ["12+3=4" + END])  # the end marker is a known token


def test_prompts_longer_than_the_context_are_rejected(tok, tiny):
    ids, mask = lm.encode_prompts(tok, ["12+3=", "47+35="])
    assert ids.shape == (2, 6) and mask[0].tolist() == [0, 1, 1, 1, 1, 1]  # left padding
    assert tok.padding_side == "right"  # the tokenizer's own setting is left as it was
    with pytest.raises(ValueError, match="more than the context of 16"):
        lm.encode_prompts(tok, ["1" * 17])
    with pytest.raises(ValueError, match="more than the context of 16 - 5 new tokens = 11"):
        lm.generate(tiny, tok, ["12+3=" + "1" * 7], max_new_tokens=5)
    with pytest.raises(ValueError, match="empty"):
        lm.encode_prompts(tok, [])


def test_model_size_and_config(tok):
    model = lm.build_model(tok, seed=0)  # the course default
    assert 0.7e6 < lm.count_parameters(model) < 0.9e6
    assert model.config.vocab_size == len(tok) and lm.context_length(model) == 16
    with pytest.raises(ValueError, match="divisible"):
        lm.ModelConfig(n_embd=10, n_head=4)
    a, b = lm.build_model(tok, TINY, seed=3), lm.build_model(tok, TINY, seed=3)
    assert torch.equal(a.transformer.wte.weight, b.transformer.wte.weight)


def test_generate_greedy_and_sampled(tok, tiny):
    prompts = ["47+35=", "10+10="]
    g1 = lm.generate(tiny, tok, prompts, max_new_tokens=4)
    g2 = lm.generate(tiny, tok, prompts, max_new_tokens=4)
    assert torch.equal(g1.sequences, g2.sequences)
    assert g1.response_start == 6 and g1.sequences.shape[1] <= 10
    assert g1.attention_mask.shape == g1.sequences.shape
    torch.manual_seed(0)
    s1 = lm.generate(tiny, tok, prompts * 8, 4, do_sample=True, temperature=2.0, top_k=5)
    torch.manual_seed(0)
    s2 = lm.generate(tiny, tok, prompts * 8, 4, do_sample=True, temperature=2.0, top_k=5)
    assert torch.equal(s1.sequences, s2.sequences)
    assert len(set(s1.responses)) > 1  # an untrained model at T=2 does not repeat itself
    tiny.train()
    lm.generate(tiny, tok, prompts, 2)
    assert tiny.training  # generate restores the mode it found
    tiny.eval()
    lm.generate(tiny, tok, prompts, 2)
    assert not tiny.training


def test_response_attention_and_decoding(tok):
    eos, pad = tok.eos_token_id, tok.pad_token_id
    d = {c: tok.convert_tokens_to_ids(c) for c in "0123456789+="}
    prompt = [d["1"], d["+"], d["2"], d["="]]
    seqs = torch.tensor([prompt + [d["3"], eos, pad, pad], prompt + [d["1"], d["2"], d["3"],
                                                                     d["4"]]])
    mask = lm.response_attention(seqs, torch.ones(2, 4, dtype=torch.long), eos)
    assert mask.tolist() == [[1] * 6 + [0, 0], [1] * 8]
    texts, ended = lm.decode_responses(tok, seqs, 4)
    assert texts == ["3", "1234"] and ended == [True, False]


def test_check_compatible_catches_mismatches(tok, tiny):
    lm.check_compatible(tiny, tok)
    small = lm.build_tokenizer(chars="0123456789+=-*")
    with pytest.raises(ValueError, match="embedding has only 15 rows"):
        lm.check_compatible(tiny, small)
    other = lm.build_model(tok, TINY)
    other.config.eos_token_id = 5
    with pytest.raises(ValueError, match="eos_token_id differs"):
        lm.check_compatible(other, tok)


def test_load_pretrained_from_a_folder_and_a_search_dir(tok, tiny, tmp_path):
    folder = tmp_path / "tiny-gpt"
    tiny.save_pretrained(folder)
    tok.save_pretrained(folder)
    assert (folder / "model.safetensors").exists()
    for args in [(str(folder),), ("tiny-gpt", [tmp_path])]:
        model, tokenizer = lm.load_pretrained(*args)
        assert torch.equal(model.transformer.wte.weight, tiny.transformer.wte.weight)
        assert tokenizer("47+35=")["input_ids"] == tok("47+35=")["input_ids"]
        g = lm.generate(model, tokenizer, ["47+35="], 3)
        assert g.responses == lm.generate(tiny, tok, ["47+35="], 3).responses


def test_load_pretrained_unknown_name_lists_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(lm.CheckpointNotFoundError) as info:
        lm.load_pretrained("no-such-model-xyz", search_dirs=[tmp_path])
    msg = str(info.value)
    assert "no-such-model-xyz" in msg and str(tmp_path / "no-such-model-xyz") in msg
    assert "hub name 'no-such-model-xyz'" in msg and "HF_HUB_OFFLINE" in msg


def test_load_pretrained_corrupt_folder_is_reported(tok, tiny, tmp_path):
    folder = tmp_path / "broken"
    tiny.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "config.json").write_text("{ not json")
    with pytest.raises(lm.CheckpointNotFoundError, match=f"folder {folder}"):
        lm.load_pretrained(folder)


def test_load_pretrained_rejects_a_mismatched_tokenizer(tok, tiny, tmp_path):
    folder = tmp_path / "mismatch"
    tiny.save_pretrained(folder)
    lm.build_tokenizer(chars="0123456789+=-*/").save_pretrained(folder)
    with pytest.raises(ValueError, match="not made for each other"):
        lm.load_pretrained(folder)
