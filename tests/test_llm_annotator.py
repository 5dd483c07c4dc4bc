"""The synthetic annotator: gold labels without noise, measured noise and length bias."""

import numpy as np
import pytest

from rlcourse.llm import annotator as ann
from rlcourse.llm import task
from rlcourse.llm.task import Problem


@pytest.fixture(scope="module")
def problems():
    return task.split_problems(0, 400)[1]


def test_noiseless_unbiased_labels_are_the_gold_preference(problems):
    pairs = ann.make_pairs(problems, ann.Annotator(), np.random.default_rng(0), 3)
    assert len(pairs) == 3 * len(problems)
    assert all(p.chosen != p.rejected for p in pairs)
    assert ann.gold_agreement(pairs) == 1.0


@pytest.mark.parametrize("noise", [0.1, 0.3])
def test_label_noise_is_the_flip_rate(problems, noise):
    pairs = ann.make_pairs(problems * 5, ann.Annotator(noise=noise), np.random.default_rng(1))
    assert ann.gold_agreement(pairs) == pytest.approx(1 - noise, abs=0.03)


def test_length_bias_makes_longer_answers_win(problems):
    rng = np.random.default_rng(2)
    fair = ann.make_pairs(problems * 3, ann.Annotator(), rng)
    biased = ann.make_pairs(problems * 3, ann.Annotator(length_bias=0.9), rng)
    assert ann.length_preference(biased) > 0.9 > ann.length_preference(fair) + 0.3
    assert ann.gold_agreement(biased) < ann.gold_agreement(fair)


def test_perceived_score_and_probability():
    pr = Problem(47, 35)
    assert ann.perceived_score(pr, "82", 0.5) == 1.0
    assert ann.perceived_score(pr, "820", 0.5) == pytest.approx(task.gold_reward(pr, "820") + 0.5)
    assert ann.prefer_first_probability(1.0, 0.5, 0.2) == pytest.approx(0.8)
    assert ann.prefer_first_probability(0.5, 1.0, 0.2) == pytest.approx(0.2)
    assert ann.prefer_first_probability(0.7, 0.7, 0.2) == 0.5


def test_candidates_are_distinct_and_include_the_answer():
    rng = np.random.default_rng(3)
    for pr in task.all_problems():
        cands = ann.candidate_responses(pr, rng)
        assert len(set(cands)) == 5 and cands[0] == pr.answer
        assert all(task.parse_answer(c) is not None for c in cands)
        assert sum(task.exact_match(pr, c) for c in cands) == 1


def test_pairs_from_samples_skip_identical_samples():
    rng = np.random.default_rng(4)
    pairs = ann.pairs_from_samples([Problem(47, 35), Problem(10, 10)],
                                   [["82", "72", "72"], ["20", "20"]], ann.Annotator(), rng)
    assert len(pairs) == 1 and (pairs[0].chosen, pairs[0].rejected) == ("82", "72")
    with pytest.raises(ValueError, match="sample lists"):
        ann.pairs_from_samples([Problem(47, 35)], [], ann.Annotator(), rng)


def test_errors_on_empty_data_and_bad_settings():
    with pytest.raises(ValueError, match="empty"):
        ann.make_pairs([], ann.Annotator(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="strict gold preference"):
        ann.gold_agreement([])
    with pytest.raises(ValueError, match="different lengths"):
        ann.length_preference([ann.PreferencePair("47+35=", "82", "72")])
    with pytest.raises(ValueError, match="noise"):
        ann.Annotator(noise=0.7)
