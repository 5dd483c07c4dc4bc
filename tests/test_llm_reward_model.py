"""The reward model: Bradley-Terry math, reading the last real token, training, the cache."""

import math

import numpy as np
import pytest
import torch

from rlcourse.llm import model as lm
from rlcourse.llm import reward_model as rmod
from rlcourse.llm import sft, task

TINY = lm.ModelConfig(n_embd=32, n_layer=1, n_head=2, n_positions=16)
f64 = torch.float64


@pytest.fixture(scope="module")
def tok():
    return lm.build_tokenizer()


@pytest.fixture(scope="module")
def tiny_rm(tok):
    torch.manual_seed(0)
    rm = rmod.build_reward_model(lm.build_model(tok, TINY, seed=0))
    torch.nn.init.normal_(rm.score.weight, std=0.5)  # a non-trivial head for reading tests
    return rm


# ---- Bradley-Terry loss -----------------------------------------------------------------------

def test_loss_is_ln2_at_zero_margin_and_matches_the_formula():
    r = torch.tensor([0.0, 1.5, -3.0], dtype=f64)
    assert float(rmod.bradley_terry_loss(r, r.clone())) == pytest.approx(math.log(2), abs=1e-12)
    rw, rl = torch.tensor([2.0, -1.0], dtype=f64), torch.tensor([0.5, 1.0], dtype=f64)
    by_hand = np.mean([-math.log(1 / (1 + math.exp(-(2.0 - 0.5)))),
                       -math.log(1 / (1 + math.exp(-(-1.0 - 1.0))))])
    assert float(rmod.bradley_terry_loss(rw, rl)) == pytest.approx(by_hand, rel=1e-12)
    # stable where a naive log(sigmoid) overflows: margin -200 costs 200 nats, margin +200 none
    big = rmod.bradley_terry_loss(torch.tensor([-200.0]), torch.tensor([0.0]))
    assert float(big) == pytest.approx(200.0)
    assert float(rmod.bradley_terry_loss(torch.tensor([200.0]), torch.tensor([0.0]))) < 1e-30


def test_bt_probability_is_the_strength_ratio():
    bi, bj = torch.tensor([0.3, 2.0], dtype=f64), torch.tensor([-1.0, 2.5], dtype=f64)
    ratio = bi.exp() / (bi.exp() + bj.exp())
    assert torch.allclose(rmod.bt_probability(bi, bj), ratio, atol=1e-12)
    assert torch.allclose(rmod.bt_probability(bi + 7.0, bj + 7.0), ratio, atol=1e-12)


def test_gradient_matches_autograd_and_finite_differences():
    gen = torch.Generator().manual_seed(0)
    rw = torch.randn(6, dtype=f64, generator=gen).requires_grad_(True)
    rl = torch.randn(6, dtype=f64, generator=gen).requires_grad_(True)
    rmod.bradley_terry_loss(rw, rl).backward()
    gw, gl = rmod.bradley_terry_grad(rw.detach(), rl.detach())
    assert torch.allclose(rw.grad, gw, atol=1e-12) and torch.allclose(rl.grad, gl, atol=1e-12)
    eps = 1e-6
    for k in range(6):
        up, down = rw.detach().clone(), rw.detach().clone()
        up[k] += eps
        down[k] -= eps
        fd = (rmod.bradley_terry_loss(up, rl.detach())
              - rmod.bradley_terry_loss(down, rl.detach())) / (2 * eps)
        assert float(fd) == pytest.approx(float(gw[k]), abs=1e-8)
    # at zero margin, swapping chosen and rejected flips the sign of every gradient
    a = torch.full((3,), 0.7, dtype=f64, requires_grad=True)
    b = torch.full((3,), 0.7, dtype=f64)
    rmod.bradley_terry_loss(a, b).backward()
    as_chosen = a.grad.clone()
    a.grad = None
    rmod.bradley_terry_loss(b, a).backward()
    assert torch.allclose(as_chosen, torch.full((3,), -0.5 / 3, dtype=f64), atol=1e-12)
    assert torch.allclose(a.grad, -as_chosen, atol=1e-12)


def test_pairwise_accuracy_counts_ties_as_half():
    acc = rmod.pairwise_accuracy(torch.tensor([1.0, 0.0, 2.0, 5.0]),
                                 torch.tensor([0.0, 0.0, 3.0, 1.0]))
    assert acc == pytest.approx((1 + 0.5 + 0 + 1) / 4)


def test_noisy_label_accuracy_matches_a_simulation():
    rng = np.random.default_rng(0)
    n = 200_000
    for gold_acc, noise in ((1.0, 0.2), (0.9, 0.1), (0.7, 0.3), (0.6, 0.0)):
        right = rng.random(n) < gold_acc  # the scorer agrees with gold
        flipped = rng.random(n) < noise  # the label disagrees with gold
        measured = np.mean(right != flipped)
        assert measured == pytest.approx(rmod.noisy_label_accuracy(gold_acc, noise), abs=0.005)
    assert rmod.noisy_label_accuracy(1.0, 0.25) == pytest.approx(0.75)
    assert rmod.noisy_label_accuracy(0.3, 0.5) == pytest.approx(0.5)


def test_pair_score_errors():
    with pytest.raises(ValueError, match="one shape"):
        rmod.bradley_terry_loss(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="non-empty"):
        rmod.pairwise_accuracy(torch.zeros(0), torch.zeros(0))
    with pytest.raises(TypeError):
        rmod.bradley_terry_loss([1.0], [0.0])


# ---- Bradley-Terry MLE ------------------------------------------------------------------------

def _mm_fit(winners, losers, n, iters=2000):
    """Hunter's MM algorithm for Bradley-Terry, an independent route to the same MLE."""
    wins = np.bincount(winners, minlength=n).astype(float)
    games = np.zeros((n, n))
    np.add.at(games, (winners, losers), 1.0)
    games = games + games.T
    p = np.ones(n)
    for _ in range(iters):
        p = wins / (games / (p[:, None] + p[None, :])).sum(1)
        p /= p.sum()
    beta = np.log(p)
    return beta - beta.mean()


def test_mle_recovers_strengths_up_to_a_constant():
    truth = np.array([1.0, 0.5, 0.0, -0.3, -1.2]) + 4.0  # an arbitrary offset: not identifiable
    w, l_ = rmod.simulate_games(truth, 20000, np.random.default_rng(0))
    assert np.all(w != l_)
    fit = rmod.fit_bradley_terry(w, l_, 5)
    assert abs(fit.mean()) < 1e-9
    assert np.max(np.abs(fit - (truth - truth.mean()))) < 0.08
    assert np.allclose(fit, _mm_fit(w, l_, 5), atol=1e-5)
    # at the MLE the gradient of the NLL vanishes, and a constant shift leaves the NLL unchanged
    beta = torch.tensor(fit, requires_grad=True)
    nll = rmod.bt_nll(beta, torch.as_tensor(w), torch.as_tensor(l_))
    nll.backward()
    assert float(beta.grad.abs().max()) < 1e-4
    shifted = rmod.bt_nll(beta.detach() + 3.0, torch.as_tensor(w), torch.as_tensor(l_))
    assert float(shifted) == pytest.approx(float(nll.detach()), rel=1e-12)


def test_simulated_win_rate_follows_the_sigmoid():
    w, _ = rmod.simulate_games([0.0, 1.0], 40000, np.random.default_rng(1))
    assert np.mean(w == 1) == pytest.approx(1 / (1 + math.exp(-1.0)), abs=0.01)


def test_fit_errors():
    with pytest.raises(ValueError, match="won and lost"):
        rmod.fit_bradley_terry([0, 0, 1], [1, 2, 2], 3)  # player 0 never lost
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        rmod.fit_bradley_terry([0, 2], [1, 0], 2)
    with pytest.raises(ValueError, match="at least 2"):
        rmod.simulate_games([1.0], 10, np.random.default_rng(0))


# ---- reading the last real token --------------------------------------------------------------

def _last_by_loop(mask):
    out = []
    for row in mask.tolist():
        last = None
        for t, m in enumerate(row):
            if m:
                last = t
        out.append(last)
    return out


def test_last_token_index_matches_a_loop_for_any_padding():
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    left = right.flip(1)
    for mask in (right, left):
        assert rmod.last_token_index(mask).tolist() == _last_by_loop(mask)
    assert rmod.last_token_index(left).tolist() == [4, 4, 4]
    naive = left.sum(-1) - 1  # the "length - 1" pitfall: right for right padding only
    assert naive.tolist() == _last_by_loop(right) and naive.tolist() != [4, 4, 4]
    values = torch.arange(15.0).reshape(3, 5)
    assert rmod.gather_last(values, right).tolist() == [2.0, 9.0, 10.0]
    with pytest.raises(ValueError, match="no real token"):
        rmod.last_token_index(torch.tensor([[1, 1], [0, 0]]))
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        rmod.last_token_index(torch.ones(3))


def test_scores_agree_with_hf_pooling_and_survive_left_padding(tok, tiny_rm):
    prompts, responses = ["47+35=", "1+2=", "10+10="], ["82", "3", "2000"]
    b = sft.make_batch(tok, prompts, responses)  # right-padded
    with torch.no_grad():
        ours = rmod.sequence_scores(tiny_rm, b.input_ids, b.attention_mask)
        hf = tiny_rm(input_ids=b.input_ids, attention_mask=b.attention_mask).logits.squeeze(-1)
        alone = [float(rmod.sequence_scores(tiny_rm, *(lambda x: (x.input_ids, x.attention_mask))(
            sft.make_batch(tok, [p], [r])))) for p, r in zip(prompts, responses)]
        assert torch.allclose(ours, hf, atol=1e-5)
        assert np.allclose(ours.numpy(), alone, atol=1e-5)
        # left padding: the same rows moved to the right end of the batch
        shift = b.attention_mask.shape[1] - b.attention_mask.sum(-1)
        left_ids = torch.stack([row.roll(int(s)) for row, s in zip(b.input_ids, shift)])
        left_mask = torch.stack([row.roll(int(s)) for row, s in zip(b.attention_mask, shift)])
        assert np.allclose(rmod.sequence_scores(tiny_rm, left_ids, left_mask).numpy(), alone,
                           atol=1e-5)
        hidden = tiny_rm.transformer(input_ids=left_ids, attention_mask=left_mask,
                                     position_ids=torch.clamp(left_mask.cumsum(-1) - 1, min=0)
                                     ).last_hidden_state
        per_token = tiny_rm.score(hidden).squeeze(-1)
        naive = per_token.gather(1, (left_mask.sum(-1) - 1).unsqueeze(1)).squeeze(1)
    assert not np.allclose(naive.numpy(), alone, atol=1e-3)


# ---- model, training step, data ---------------------------------------------------------------

def test_reward_model_starts_at_zero_with_the_base_backbone(tok):
    base = lm.build_model(tok, TINY, seed=1)
    rm = rmod.build_reward_model(base)
    for name, p in base.transformer.state_dict().items():
        assert torch.equal(p, rm.transformer.state_dict()[name])
    wrapped = rmod.RewardModel(rm, tok)
    r = wrapped.score(["47+35=", "1+2="], ["82", "9"])
    assert r.dtype == torch.float32 and r.shape == (2,) and not r.requires_grad
    assert torch.equal(r, torch.zeros(2))
    assert float(rmod.bradley_terry_loss(r[:1], r[1:])) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        wrapped.score(["1+2="], ["x"])
    with pytest.raises(ValueError, match="1 prompts but 2"):
        wrapped.score(["1+2="], ["3", "4"])


def _toy_pairs(n=48):
    """``n`` candidate pairs with a strict gold preference (a learnable labelling)."""
    return rmod.synthetic_gold_pairs(task.split_problems(0, 500)[0][:n])[:n]


def test_training_step_lowers_the_loss_and_learns_the_pairs(tok):
    data = rmod.encode_pairs(tok, _toy_pairs())
    assert len(data) == 48 and data.chosen.input_ids.shape == data.rejected.input_ids.shape
    torch.manual_seed(0)
    rm = rmod.build_reward_model(lm.build_model(tok, TINY, seed=0))
    hist = rmod.train_rm(rm, data, 60, lr=3e-3, batch_size=48, warmup=5, progress=False)
    assert hist["loss"][0] == pytest.approx(math.log(2), abs=1e-6)
    assert np.mean(hist["loss"][-5:]) < 0.5 * math.log(2)
    c, r = data.rows(torch.arange(48))
    with torch.no_grad():
        assert rmod.pairwise_accuracy(rmod.batch_scores(rm, c), rmod.batch_scores(rm, r)) > 0.9
    assert not rm.training


def test_gold_pairs_orient_by_gold_and_drop_ties():
    pr = task.Problem(47, 35)
    pairs = rmod.gold_pairs([pr], [["82", "72", "82", "83", "73"]])
    assert all(p.gold_margin > 0 for p in pairs)
    assert {(p.chosen, p.rejected) for p in pairs} >= {("82", "72"), ("82", "83")}
    assert ("72", "83") not in {(p.chosen, p.rejected) for p in pairs}  # equal gold: dropped
    synth = rmod.synthetic_gold_pairs(task.split_problems(0, 500)[1][:20])
    assert len(synth) > 100 and all(p.gold_margin > 0 for p in synth)


def test_correct_vs_wrong_pairs_always_contain_the_answer():
    import numpy as np_

    from rlcourse.llm import annotator as ann

    problems = task.split_problems(0, 500)[1][:50]
    clean = rmod.correct_vs_wrong_pairs(problems, ann.Annotator(), np_.random.default_rng(0))
    assert [p.chosen for p in clean] == [pr.answer for pr in problems]
    noisy = rmod.correct_vs_wrong_pairs(problems, ann.Annotator(noise=0.5),
                                        np_.random.default_rng(0))
    assert all(pr.answer in (p.chosen, p.rejected) for p, pr in zip(noisy, problems))
    assert any(p.rejected == pr.answer for p, pr in zip(noisy, problems))


def test_config_and_data_errors(tok):
    with pytest.raises(ValueError, match="noise"):
        rmod.RMConfig(noise=0.7)
    with pytest.raises(TypeError, match="RMConfig fields are"):
        rmod._config({"nosie": 0.1})
    with pytest.raises(ValueError, match="empty preference data"):
        rmod.encode_pairs(tok, [])
    with pytest.raises(ValueError, match="no pairs"):
        rmod.gold_accuracy_of(None, [])


# ---- the cached pipeline on a tiny configuration -----------------------------------------------

TINY_SFT = sft.SFTConfig(model=TINY, n_heldout=40, batch_size=16, pretrain_steps=4, sft_steps=2,
                         warmup=2)
TINY_RM = {"sft": TINY_SFT, "steps": 3, "batch_size": 8, "warmup": 1, "onpolicy_prompts": 30,
           "onpolicy_samples": 4, "eval_samples": 2, "synthetic_per_problem": 1}


def test_train_and_cache_reward_model(tmp_path):
    rm = rmod.load_reward_model(0, root=tmp_path, **TINY_RM)
    info = rm.info
    assert info["cache_built"] is True and len(info["loss"]) == 3
    for key in ("seconds", "train_seconds", "sample_seconds", "pair_accuracy",
                "onpolicy_accuracy", "n_pairs", "label_gold_agreement"):
        assert key in info, key
    assert 0.0 <= info["pair_accuracy"] <= 1.0 and info["n_pairs"] > 3000
    assert info["loss"][0] == pytest.approx(math.log(2), abs=1e-6)
    again = rmod.load_reward_model(0, root=tmp_path, **TINY_RM)
    assert again.info["cache_built"] is False
    prompts, responses = ["47+35=", "12+13="], ["82", "25"]
    assert torch.equal(rm.score(prompts, responses), again.score(prompts, responses))
    other = rmod.load_reward_model(0, root=tmp_path, **{**TINY_RM, "noise": 0.2})
    assert other.info["cache_built"] is True
    assert len(list(tmp_path.glob("lab_rm-*"))) == 2


class _Scorer:
    """A stand-in RM: ``rule(prompt, response)`` is its score."""

    def __init__(self, rule):
        self.rule = rule

    def score_pairs(self, pairs):
        return (torch.tensor([self.rule(p.prompt, p.chosen) for p in pairs]),
                torch.tensor([self.rule(p.prompt, p.rejected) for p in pairs]))


def test_carry_accuracy_counts_only_carry_problems():
    problems = [task.Problem(47, 35), task.Problem(19, 19), task.Problem(12, 13)]  # 2 carry
    exact = _Scorer(lambda p, r: float(task.exact_match(p, r)))
    assert rmod.carry_accuracy(exact, problems) == 1.0
    bigger_is_better = _Scorer(lambda p, r: float(r))  # the carried answer is the larger one
    assert rmod.carry_accuracy(bigger_is_better, problems) == 1.0
    smaller_is_better = _Scorer(lambda p, r: -float(r))
    assert rmod.carry_accuracy(smaller_is_better, problems) == 0.0
    by_length = _Scorer(lambda p, r: float(len(r)))  # same length: ties count one half
    assert rmod.carry_accuracy(by_length, problems) == 0.5
    with pytest.raises(ValueError, match="no pairs"):
        rmod.carry_accuracy(exact, [task.Problem(12, 13)])


def test_compare_recipes_trains_each_and_main_stores_them(tmp_path, monkeypatch, capsys):
    from rlcourse.llm import cache

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(rmod, "RECIPES", {"a": dict(TINY_RM), "b": {**TINY_RM, "noise": 0.0}})
    rows = rmod.compare_recipes(0, progress=False)
    assert [r["recipe"] for r in rows] == ["a", "b"]
    assert len(list((tmp_path / "cache").glob("lab_rm-*"))) == 2
    for r in rows:
        assert 0 <= r["carry_accuracy"] <= 1 and r["train_cpu_seconds"] > 0
        assert 0 <= r["pair_accuracy"] <= 1 and 0 <= r["onpolicy_accuracy"] <= 1
    stored = [{**r, "overrides": {}} for r in rows]  # the real recipes are JSON; TINY_SFT is not
    monkeypatch.setattr(rmod, "compare_recipes", lambda seed: stored)
    out = tmp_path / "recipes.json"
    assert rmod.main(["--out", str(out)]) == 0
    import json

    assert json.loads(out.read_text())[1]["recipe"] == "b"
    assert "carry" in capsys.readouterr().out


def test_learning_curve_measures_every_few_steps(tmp_path, monkeypatch):
    curve = rmod.learning_curve(TINY_RM, 0, steps=4, every=2, progress=False, root=tmp_path)
    assert "steps" not in curve["overrides"]  # the recipe's own steps are replaced
    assert curve["step"] == [2, 4] and "sft" not in curve["overrides"]
    for key in ("carry_accuracy", "onpolicy_accuracy"):
        assert len(curve[key]) == 2 and all(0 <= v <= 1 for v in curve[key])
    assert 0 <= curve["cpu_seconds"][0] <= curve["cpu_seconds"][1]
    # the CLI stores one curve per recipe name and keeps the others
    monkeypatch.setattr(rmod, "learning_curve", lambda recipe, seed, steps: {"steps": steps})
    out = tmp_path / "curve.json"
    name = sorted(rmod.RECIPES)[0]
    out.write_text('{"older": 1}')
    assert rmod.main(["--curve", name, "--steps", "7", "--out", str(out)]) == 0
    import json

    assert json.loads(out.read_text()) == {"older": 1, name: {"steps": 7}}
