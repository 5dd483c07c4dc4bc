"""Checks for notebook 14 (head to head, and reasoning at test time)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

from rlcourse.exercises import call_with, expect_close, expect_true, expect_type, register
from rlcourse.llm import testtime

NB = "14_head_to_head"


def _register(name: str, reference: Callable, hint: str):
    return register(name, notebook=NB, reference=reference, hint=hint)


@_register("llm_testtime.majority_vote", testtime.majority_vote,
           "Count only the answers that parsed (skip None). The winner is the most frequent "
           "one; between equally frequent answers take the one that was sampled first. A "
           "prompt with no parsed answer at all gets None.")
def _(fn: Callable) -> None:
    cases = [
        ([[3, 5, 5, None]], [5], "a clear winner with one unparsed answer"),
        ([[None, None, 4]], [4], "two unparsed answers and one number (None is not a vote)"),
        ([[None, None]], [None], "nothing parsed"),
        ([[5, 3, 3, 5]], [5], "a tie between 5 and 3, 5 sampled first"),
        ([[6, 1, 6, 1]], [6], "a tie between 6 and 1, 6 sampled first and 1 sampled last"),
        ([[2, 7, 7, 2, None, None, None]], [2], "a tie between 2 and 7, 2 sampled first, "
         "and three unparsed answers"),
        ([[9], [1, 1, 8], [6, None, 0, 0]], [9, 1, 0], "three prompts with different counts"),
    ]
    for answers, want, what in cases:
        got = call_with(fn, what, answers)
        expect_type(got, list, f"majority_vote({answers})", length=len(want))
        expect_true(list(got) == want, f"majority_vote({answers}) ({what}): expected {want}, "
                    f"got {list(got)}")


@_register("llm_testtime.best_of_n", testtime.best_of_n,
           "Look only at the first n columns. In each row, find the column with the highest "
           "score (np.argmax returns the first on ties) and read whether that sample is "
           "correct; average over the rows. It is selection by the score, not 'is any of them "
           "correct'.")
def _(fn: Callable) -> None:
    scores = np.array([[0.1, 0.9, 0.5, 2.0], [0.7, 0.7, 0.2, 0.0], [-1.0, -2.0, -0.5, -3.0]])
    correct = np.array([[0, 1, 0, 0], [0, 1, 1, 1], [1, 0, 0, 1]])
    for n, want in ((1, 1 / 3), (2, 2 / 3), (3, 1 / 3), (4, 0.0)):
        got = call_with(fn, f"3 prompts x 4 samples, n = {n}", scores, correct, n)
        expect_close(got, want, f"best_of_n(scores, correct, n={n}) with scores {scores.tolist()}"
                     f" and correct {correct.tolist()} (row 2 ties at n >= 2: the first wins)")
    rng = np.random.default_rng(3)
    s, c = rng.normal(size=(50, 8)), rng.random((50, 8)) < 0.4
    want = float(np.mean([c[i, np.argmax(s[i, :5])] for i in range(50)]))
    expect_close(call_with(fn, "random 50 x 8, n = 5", s, c, 5), want,
                 "best_of_n on random scores [50, 8] with n = 5")


@functools.lru_cache(maxsize=1)
def _tiny_world():
    """(policy, tokenizer): a tiny untrained GPT, so its samples vary a lot."""
    from rlcourse.llm import model as lm

    tok = lm.build_tokenizer()
    policy = lm.build_model(tok, lm.ModelConfig(n_embd=16, n_layer=1, n_head=2), seed=0).eval()
    return policy, tok


def _digit_sum_score(prompts, responses) -> torch.Tensor:
    """A deterministic toy score that varies between samples: the sum of the digits written."""
    return torch.tensor([float(sum(int(ch) for ch in r if ch.isdigit())) for r in responses])


@_register("llm_testtime.best_of_n_generate", testtime.best_of_n_generate,
           "Call sampling.sample_responses once with n_samples=n and the generator you were "
           "given (it returns one list of n texts per prompt). Flatten prompts and responses "
           "in the same order (each prompt repeated n times), score them in one call, reshape "
           "the scores to [P, n] and keep each prompt's argmax.")
def _(fn: Callable) -> None:
    policy, tok = _tiny_world()
    prompts = ["12+35=", "47+38=", "99+99=", "5+5="]
    for seed, n in ((5, 6), (11, 3)):
        want = testtime.best_of_n_generate(policy, tok, prompts, n, _digit_sum_score,
                                           torch.Generator().manual_seed(seed))
        got = call_with(fn, f"a tiny GPT, 4 prompts, n = {n}, generator seed {seed}", policy,
                        tok, prompts, n, _digit_sum_score, torch.Generator().manual_seed(seed))
        expect_type(got, list, "best_of_n_generate(...)", length=len(prompts))
        expect_true(list(got) == want, f"with n = {n} and generator seed {seed} (score = sum "
                    f"of the digits written) expected the selected responses {want}, got "
                    f"{list(got)}")
