"""Tests of rlcourse.llm.testtime against brute force."""

import itertools
from collections import Counter

import numpy as np
import pytest
import torch

from rlcourse.llm import testtime as tt


def test_best_of_n_matches_loop():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 3, (40, 6)).astype(float)  # many ties
    c = rng.random((40, 6)) < 0.5
    for n in range(1, 7):
        want = 0.0
        for i in range(40):
            best = max(range(n), key=lambda j: (s[i, j], -j))  # highest score, first on ties
            want += c[i, best] / 40
        assert tt.best_of_n(s, c, n) == pytest.approx(want)


def test_best_of_n_with_verifier_scores_is_any_correct():
    c = np.random.default_rng(1).random((30, 5)) < 0.3
    for n in range(1, 6):
        assert tt.best_of_n(c.astype(float), c, n) == pytest.approx(c[:, :n].any(1).mean())


def test_oracle_accuracy_is_the_mean_over_subsets():
    c = np.random.default_rng(2).random((6, 5)) < 0.4
    for n in range(1, 6):
        subsets = list(itertools.combinations(range(5), n))
        want = np.mean([[c[i, list(sub)].any() for sub in subsets] for i in range(6)])
        assert tt.oracle_accuracy(c, n) == pytest.approx(want)


def test_majority_vote_brute_force():
    rng = np.random.default_rng(3)
    rows = [[None if rng.random() < 0.2 else int(rng.integers(0, 4)) for _ in range(7)]
            for _ in range(200)] + [[None] * 3, []]
    got = tt.majority_vote(rows)
    for row, vote in zip(rows, got):
        counts = Counter(a for a in row if a is not None)
        if not counts:
            assert vote is None
            continue
        top = max(counts.values())
        first = next(a for a in row if a is not None and counts[a] == top)
        assert vote == first


def test_majority_accuracy_and_accuracy_vs_n():
    answers = [[1, 2, 2], [3, None, 3], [5, 6, 7]]
    assert tt.majority_accuracy(answers, [2, 3, 6], 3) == pytest.approx(2 / 3)
    assert tt.majority_accuracy(answers, [1, 3, 5], 1) == pytest.approx(1.0)
    targets = [2, 3, 9]  # no tie decides the vote at n = N, so the order does not matter there
    c = np.array([[a == t for a in row] for row, t in zip(answers, targets)], float)
    out = tt.accuracy_vs_n(np.zeros((3, 3)), c, answers, targets, [1, 3], n_orders=50)
    assert out["oracle"][-1] == pytest.approx(2 / 3)
    assert out["majority"][-1] == pytest.approx(2 / 3)
    assert out["reward_model"][0] == pytest.approx(c.mean(), abs=0.2)
    assert out["oracle"][0] == pytest.approx(c.mean())


def test_bad_input():
    with pytest.raises(ValueError):
        tt.best_of_n(np.zeros((2, 3)), np.zeros((2, 4)), 1)
    with pytest.raises(ValueError):
        tt.best_of_n(np.zeros((2, 3)), np.zeros((2, 3)), 4)
    with pytest.raises(TypeError):
        tt.best_of_n(np.zeros((2, 3)), np.zeros((2, 3)), 0.5)
    with pytest.raises(ValueError):
        tt.majority_accuracy([[1]], [1, 2], 1)
    with pytest.raises(TypeError):
        tt.majority_vote("123")
    with pytest.raises(ValueError):
        tt.sample_steps(np.random.default_rng(0), 1.5, (2,), 3)


def test_step_toy():
    rng = np.random.default_rng(0)
    labels = tt.sample_steps(rng, 0.8, (20000,), 4)
    assert labels[:, -1].mean() == pytest.approx(0.8 ** 4, abs=0.01)
    assert not np.any(labels[:, 1:] & ~labels[:, :-1])  # no recovery after a wrong step
    mc = tt.mc_step_labels(rng, labels[:2000], 0.8, 400)
    right = labels[:2000]
    assert np.all(mc[~right] == 0)
    assert mc[right[:, 0], 0].mean() == pytest.approx(0.8 ** 3, abs=0.02)
    # noiseless selection and search are perfect when a solution exists
    many = tt.sample_steps(rng, 0.7, (500, 8), 3)
    assert tt.orm_best_of_n(many, 0.0, rng) == pytest.approx(many[..., -1].any(1).mean())
    assert tt.prm_beam_search(rng, 1.0, 50, 5, 2, 2, 0.3) == 1.0
    assert tt.prm_beam_search(rng, 0.0, 50, 5, 2, 2, 0.0) == 0.0


def test_best_of_n_generate_picks_the_argmax():
    from rlcourse.llm import model as lm
    from rlcourse.llm import sampling

    tok = lm.build_tokenizer()
    policy = lm.build_model(tok, lm.ModelConfig(n_embd=16, n_layer=1, n_head=2), seed=0).eval()
    prompts = ["1+2=", "30+4="]

    def score(p, r):
        return torch.tensor([float(len(x)) for x in r])

    got = tt.best_of_n_generate(policy, tok, prompts, 5, score, torch.Generator().manual_seed(1))
    samples = sampling.sample_responses(policy, tok, prompts, n_samples=5, max_new_tokens=6,
                                        generator=torch.Generator().manual_seed(1))
    assert got == [max(row, key=len) for row in samples]


def test_stored_sweep_has_what_notebook_14_reads():
    import json
    from pathlib import Path

    path = Path(tt.__file__).resolve().parents[2] / "results" / "lab" / "testtime_rm.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["ns"] == list(tt.SWEEP_NS)
    for run in data["runs"]:
        assert {"label", "seed", "rm_onpolicy_accuracy", "rm_carry_accuracy"} <= set(run)
        for key in ("oracle", "reward_model", "majority"):
            assert len(run[key]) == len(data["ns"]) and all(0 <= a <= 1 for a in run[key])
        assert np.all(np.diff(run["oracle"]) >= 0)


def test_main_writes_the_sweep(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(tt, "rm_sweep", lambda: {"ns": [1], "runs": []})
    out = tmp_path / "sweep.json"
    assert tt.main(["--out", str(out)]) == 0
    assert json.loads(out.read_text()) == {"ns": [1], "runs": []}
