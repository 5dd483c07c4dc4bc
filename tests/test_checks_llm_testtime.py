"""Honesty tests for the checks of notebook 14: blanks and plausible wrong answers must fail."""

from collections import Counter

import numpy as np
import pytest
import torch

from rlcourse.llm import sampling, testtime
from tests.honesty import assert_verdict, honesty_cases

# ---- majority_vote -------------------------------------------------------------------------


def vote_counts_none(answers):
    """Treats an unparsed answer (None) as a candidate like any other."""
    return [Counter(row).most_common(1)[0][0] if row else None for row in answers]


def vote_smallest_on_ties(answers):
    """Breaks ties by the smallest answer instead of the first sampled."""
    out = []
    for row in answers:
        c = Counter(a for a in row if a is not None)
        out.append(min(a for a, k in c.items() if k == max(c.values())) if c else None)
    return out


def vote_last_on_ties(answers):
    """Breaks ties by the answer sampled last."""
    return testtime.majority_vote([list(reversed(row)) for row in answers])


# ---- best_of_n -----------------------------------------------------------------------------


def bon_any_correct(scores, correct, n):
    """Counts a prompt as solved if any of the first n samples is correct (pass@n, no
    selection)."""
    return float(np.asarray(correct)[:, :n].any(1).mean())


def bon_all_columns(scores, correct, n):
    """Ignores n and selects among all N samples."""
    s, c = np.asarray(scores), np.asarray(correct)
    return float(c[np.arange(len(c)), s.argmax(1)].mean())


def bon_argmin(scores, correct, n):
    """Picks the lowest score."""
    return testtime.best_of_n(-np.asarray(scores), correct, n)


def bon_last_on_ties(scores, correct, n):
    """Breaks score ties by the last sample."""
    s, c = np.asarray(scores)[:, :n], np.asarray(correct)[:, :n]
    pick = n - 1 - s[:, ::-1].argmax(1)
    return float(c[np.arange(len(c)), pick].mean())


# ---- best_of_n_generate --------------------------------------------------------------------


def gen_argmin(policy, tokenizer, prompts, n, score_fn, generator, max_new_tokens=6,
               temperature=1.0):
    """Keeps the lowest-scoring response."""
    return testtime.best_of_n_generate(policy, tokenizer, prompts, n,
                                       lambda p, r: -score_fn(p, r), generator,
                                       max_new_tokens, temperature)


def gen_fresh_generator(policy, tokenizer, prompts, n, score_fn, generator, max_new_tokens=6,
                        temperature=1.0):
    """Ignores the generator it is given."""
    return testtime.best_of_n_generate(policy, tokenizer, prompts, n, score_fn,
                                       torch.Generator().manual_seed(0), max_new_tokens,
                                       temperature)


def gen_wrong_reshape(policy, tokenizer, prompts, n, score_fn, generator, max_new_tokens=6,
                      temperature=1.0):
    """Reshapes the flat scores to [n, P] and transposes: scores land on the wrong samples."""
    samples = sampling.sample_responses(policy, tokenizer, list(prompts), n_samples=n,
                                        max_new_tokens=max_new_tokens, temperature=temperature,
                                        generator=generator)
    flat_p = [p for p in prompts for _ in range(n)]
    scores = score_fn(flat_p, [r for row in samples for r in row]).reshape(n, len(prompts)).T
    return [row[j] for row, j in zip(samples, scores.argmax(1).tolist())]


def gen_first_sample(policy, tokenizer, prompts, n, score_fn, generator, max_new_tokens=6,
                     temperature=1.0):
    """Samples n but returns the first response of each prompt (no selection)."""
    samples = sampling.sample_responses(policy, tokenizer, list(prompts), n_samples=n,
                                        max_new_tokens=max_new_tokens, temperature=temperature,
                                        generator=generator)
    return [row[0] for row in samples]


WRONG_ANSWERS = {
    "llm_testtime.majority_vote": {
        "counts-none": vote_counts_none,
        "smallest-on-ties": vote_smallest_on_ties,
        "last-on-ties": vote_last_on_ties,
    },
    "llm_testtime.best_of_n": {
        "any-correct": bon_any_correct,
        "all-columns": bon_all_columns,
        "argmin": bon_argmin,
        "last-on-ties": bon_last_on_ties,
    },
    "llm_testtime.best_of_n_generate": {
        "argmin": gen_argmin,
        "fresh-generator": gen_fresh_generator,
        "wrong-reshape": gen_wrong_reshape,
        "first-sample": gen_first_sample,
    },
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_verdicts(name, candidate, expected):
    assert_verdict(name, candidate, expected)
