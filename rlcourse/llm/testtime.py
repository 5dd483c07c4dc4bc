"""Test-time compute: best-of-N, majority vote, and a toy of outcome vs process reward models
(notebook 14).

Shapes: P prompts, N samples per prompt. ``scores`` [P, N] are what a selector sees (a reward
model's score, or the verifier's 0/1), ``correct`` [P, N] says whether each sample is right
(the gold verifier), ``answers`` is a P-list of N-lists of parsed answers (``None`` where the
parser rejected the response), ``targets`` [P] the right answers.

* :func:`best_of_n` picks, per prompt, the highest-scoring of the first ``n`` samples (the
  first one on ties) and returns the share of prompts whose pick is right. With the verifier as
  the score this is the oracle "pass@n" selection; :func:`oracle_accuracy` gives its unbiased
  estimate from all N samples (:func:`rlcourse.llm.sampling.pass_at_k`).
* :func:`majority_vote` returns the most frequent parsed answer (ties: the one sampled first;
  ``None`` if nothing parsed). It needs no verifier and no reward model, only a way to read the
  answer, and it converges to the model's *mode*: if that is wrong, more samples do not help.
* :func:`accuracy_vs_n` averages the selectors over random orders of the N samples.
* :func:`best_of_n_generate` samples with a model and returns the selected responses.

The ORM/PRM part is a numpy toy, not a language model: a solution is K steps, each right with
probability ``p_step`` while no earlier step was wrong; a wrong step makes the answer wrong. An
outcome reward model (ORM) sees one noisy label per solution, a process reward model (PRM) one
noisy label per step ("can this prefix still reach the right answer?", as in Math-Shepherd's
Monte Carlo labels). :func:`prm_beam_search` spends the same number of generated steps as
best-of-N but prunes wrong prefixes early. Lightman et al. (2023) report the real result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from rlcourse.llm import sampling
from rlcourse.validation import check_in_range, check_positive_int

Answer = int | None


def _pn(name: str, x, ndim: int = 2) -> np.ndarray:
    """``x`` as a float array with ``ndim`` dimensions and at least one sample per row."""
    arr = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=float)
    if arr.ndim != ndim or arr.shape[-1] == 0:
        raise ValueError(f"{name} must be {ndim}-D with at least one column, got shape "
                         f"{arr.shape}")
    return arr


def _check_n(n: int, available: int) -> int:
    n = check_positive_int(n, "n")
    if n > available:
        raise ValueError(f"n = {n} is larger than the {available} samples per prompt")
    return n


# ---- selection ---------------------------------------------------------------------------------

def best_of_n(scores, correct, n: int) -> float:
    """Accuracy of picking the highest score among the first ``n`` samples of each prompt.

    scores, correct: [P, N] (correct is 0/1). Ties go to the earliest sample. Returns the share
    of the P prompts whose picked sample is correct.
    """
    s, c = _pn("scores", scores), _pn("correct", correct)
    if s.shape != c.shape:
        raise ValueError(f"scores {s.shape} and correct {c.shape} must have the same shape")
    n = _check_n(n, s.shape[1])
    pick = s[:, :n].argmax(1)
    return float(c[np.arange(len(c)), pick].mean())


def oracle_accuracy(correct, n: int) -> float:
    """Unbiased estimate of best-of-n with a perfect verifier (pass@n), from all N samples of
    each prompt: the mean over prompts of 1 - C(N - c, n) / C(N, n). correct: [P, N] 0/1."""
    c = _pn("correct", correct)
    n = _check_n(n, c.shape[1])
    counts = c.sum(1).round().astype(int)
    return float(np.mean([sampling.pass_at_k(c.shape[1], int(k), n) for k in counts]))


def majority_vote(answers: Sequence[Sequence[Answer]]) -> list[Answer]:
    """The most frequent non-None answer of each prompt's list (ties: the answer whose first
    occurrence comes earliest; None when no answer parsed). P lists in, P answers out."""
    if isinstance(answers, (str, bytes)) or not isinstance(answers, Sequence):
        raise TypeError(f"answers must be a list of lists, got {type(answers).__name__}")
    out: list[Answer] = []
    for row in answers:
        counts: dict[int, int] = {}
        for a in row:
            if a is not None:
                counts[a] = counts.get(a, 0) + 1  # dicts keep first-occurrence order
        out.append(max(counts, key=counts.get) if counts else None)
    return out


def majority_accuracy(answers: Sequence[Sequence[Answer]], targets: Sequence[int],
                      n: int) -> float:
    """Share of prompts whose majority vote over the first ``n`` answers equals the target."""
    if len(answers) != len(targets):
        raise ValueError(f"{len(answers)} answer lists but {len(targets)} targets")
    n = _check_n(n, min(len(row) for row in answers))
    votes = majority_vote([list(row[:n]) for row in answers])
    return float(np.mean([v is not None and v == t for v, t in zip(votes, targets)]))


def accuracy_vs_n(scores, correct, answers: Sequence[Sequence[Answer]], targets: Sequence[int],
                  ns: Sequence[int], n_orders: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Accuracy against n for three selectors: ``oracle`` (verifier, unbiased pass@n),
    ``reward_model`` (best-of-n by ``scores``) and ``majority`` (vote), the last two averaged
    over ``n_orders`` random orders of the N samples. Each entry is an array [len(ns)]."""
    s, c = _pn("scores", scores), _pn("correct", correct)
    if len(answers) != len(s) or any(len(row) != s.shape[1] for row in answers):
        raise ValueError(f"answers must be {s.shape[0]} lists of {s.shape[1]} answers")
    rng = np.random.default_rng(seed)
    rm, mv = np.zeros(len(ns)), np.zeros(len(ns))
    for _ in range(check_positive_int(n_orders, "n_orders")):
        order = rng.permutation(s.shape[1])
        shuffled = [[row[j] for j in order] for row in answers]
        for i, n in enumerate(ns):
            rm[i] += best_of_n(s[:, order], c[:, order], n) / n_orders
            mv[i] += majority_accuracy(shuffled, targets, n) / n_orders
    return {"n": np.asarray(ns), "oracle": np.array([oracle_accuracy(c, n) for n in ns]),
            "reward_model": rm, "majority": mv}


@torch.no_grad()
def best_of_n_generate(policy, tokenizer, prompts: Sequence[str], n: int,
                       score_fn: Callable[[Sequence[str], Sequence[str]], torch.Tensor],
                       generator: torch.Generator, max_new_tokens: int = 6,
                       temperature: float = 1.0) -> list[str]:
    """For each prompt, sample ``n`` responses (``sampling.sample_responses`` with
    ``generator``), score them all in one call of ``score_fn(prompts, responses) -> [P*n]``,
    and return the highest-scoring response per prompt (the first on ties)."""
    n = check_positive_int(n, "n")
    samples = sampling.sample_responses(policy, tokenizer, list(prompts), n_samples=n,
                                        max_new_tokens=max_new_tokens, temperature=temperature,
                                        generator=generator)
    flat_p = [p for p in prompts for _ in range(n)]
    flat_r = [r for row in samples for r in row]
    scores = torch.as_tensor(score_fn(flat_p, flat_r), dtype=torch.float64).reshape(len(prompts), n)
    pick = scores.argmax(1).tolist()
    return [row[j] for row, j in zip(samples, pick)]


# ---- ORM vs PRM: a numpy toy of multi-step solutions -------------------------------------------

def sample_steps(rng: np.random.Generator, p_step, shape: tuple[int, ...], n_steps: int
                 ) -> np.ndarray:
    """Prefix labels [*shape, K] (bool): step k is True while steps 0..k were all right.

    ``p_step`` (a float or an array broadcastable to ``shape``, e.g. [P, 1]) is the chance that a
    step is right; after the first wrong step every later label is False (no recovery).
    """
    p = np.asarray(p_step, dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p_step must lie in [0, 1]")
    ok = rng.random((*shape, check_positive_int(n_steps, "n_steps"))) < p[..., None]
    return np.cumprod(ok, axis=-1).astype(bool)


def orm_best_of_n(labels: np.ndarray, noise: float, rng: np.random.Generator) -> float:
    """Best-of-N with an outcome RM: score = final label + noise * N(0, 1), one label per
    solution. labels: [P, N, K]. Returns the share of prompts whose pick is right."""
    check_in_range(noise, "noise", 0.0, float("inf"))
    outcome = labels[..., -1].astype(float)
    pick = (outcome + noise * rng.standard_normal(outcome.shape)).argmax(1)
    return float(outcome[np.arange(len(outcome)), pick].mean())


def prm_beam_search(rng: np.random.Generator, p_step, n_problems: int, n_steps: int,
                    width: int, expand: int, noise: float) -> float:
    """Step-level beam search guided by a noisy PRM; returns the share of problems solved.

    Each of ``width`` beams proposes ``expand`` next steps (width * expand steps generated per
    step, as many as best-of-N with N = width * expand); each candidate prefix is scored by the
    minimum over its steps of (label + noise * N(0, 1)) and the best ``width`` survive.
    """
    width, expand = check_positive_int(width, "width"), check_positive_int(expand, "expand")
    check_in_range(noise, "noise", 0.0, float("inf"))
    p = np.broadcast_to(np.asarray(p_step, dtype=float), (n_problems,))[:, None]
    alive = np.ones((n_problems, width), bool)     # the prefix is still right
    score = np.full((n_problems, width), np.inf)   # min PRM score along the prefix
    for _ in range(check_positive_int(n_steps, "n_steps")):
        ok = rng.random((n_problems, width, expand)) < p[..., None]
        child_alive = (alive[..., None] & ok).reshape(n_problems, -1)
        step_score = child_alive + noise * rng.standard_normal(child_alive.shape)
        child_score = np.minimum(np.repeat(score, expand, axis=1), step_score)
        keep = np.argsort(-child_score, axis=1, kind="stable")[:, :width]
        alive = np.take_along_axis(child_alive, keep, 1)
        score = np.take_along_axis(child_score, keep, 1)
    return float(alive[np.arange(n_problems), score.argmax(1)].mean())


def mc_step_labels(rng: np.random.Generator, labels: np.ndarray, p_step: float,
                   rollouts: int) -> np.ndarray:
    """Math-Shepherd-style Monte Carlo step labels [.., K]: for each prefix, the share of
    ``rollouts`` completions from it that reach a right answer (a prefix that is already wrong
    never does; a right one after step k succeeds with probability p_step ** (K - 1 - k))."""
    k = labels.shape[-1]
    p_finish = np.asarray(p_step, dtype=float) ** (k - 1 - np.arange(k))
    hits = rng.binomial(check_positive_int(rollouts, "rollouts"), labels * p_finish)
    return hits / rollouts


# ---- stored sweep: best-of-N with reward models of different quality ---------------------------

SWEEP_NS = (1, 2, 4, 8, 16, 32)


def selection_curves(seed: int = 0, rm_overrides: dict | None = None, n_prompts: int = 200,
                     n_samples: int = 32, ns: Sequence[int] = SWEEP_NS, n_orders: int = 20
                     ) -> dict:
    """Accuracy against N of the three selectors (:func:`accuracy_vs_n`) for the cached SFT
    model of ``seed`` and its cached RM (``rm_overrides`` as in
    :func:`rlcourse.llm.reward_model.load_reward_model`), on the first ``n_prompts`` held-out
    prompts with ``n_samples`` samples each at temperature 1; plus the RM's own figures."""
    from rlcourse.llm import reward_model, sft, task

    sft_cfg = sft.SFTConfig()
    policy, tok, _ = sft.sft_model(sft_cfg, seed, progress=False)
    rm = reward_model.load_reward_model(seed, sft=sft_cfg, **(rm_overrides or {}))
    _, held = task.split_problems(sft_cfg.split_seed, sft_cfg.n_heldout)
    problems = held[:check_positive_int(n_prompts, "n_prompts")]
    prompts = [p.prompt for p in problems]
    samples = sampling.sample_responses(policy, tok, prompts, n_samples=n_samples,
                                        max_new_tokens=6, temperature=1.0,
                                        generator=torch.Generator().manual_seed(seed))
    scores = rm.score([p for p in prompts for _ in range(n_samples)],
                      [r for row in samples for r in row]).reshape(len(prompts), n_samples)
    answers = [[task.parse_answer(r) for r in row] for row in samples]
    targets = [p.a + p.b for p in problems]
    correct = np.array([[a == t for a in row] for row, t in zip(answers, targets)], float)
    curves = accuracy_vs_n(scores.numpy(), correct, answers, targets, ns, n_orders, seed)
    return {"seed": int(seed), "overrides": dict(rm_overrides or {}),
            "rm_pair_accuracy": rm.info.get("pair_accuracy"),
            "rm_onpolicy_accuracy": rm.info.get("onpolicy_accuracy"),
            "rm_carry_accuracy": reward_model.carry_accuracy(rm, held),
            **{k: [float(x) for x in v] for k, v in curves.items()}}


def rm_sweep(progress: bool = True) -> dict:
    """:func:`selection_curves` for every RM recipe of notebook 10 (seed 0) and the course RM of
    seeds 1 and 2 (each with its own SFT model); all are cached by the lab and notebook 10."""
    from rlcourse.llm.reward_model import RECIPES

    runs = [("seed 0, " + name, 0, overrides) for name, overrides in RECIPES.items()]
    runs += [(f"seed {s}, course default", s, {}) for s in (1, 2)]
    out = []
    for label, seed, overrides in runs:
        row = {"label": label, **selection_curves(seed, overrides)}
        if progress:
            print(f"{label:55s} RM on-policy {row['rm_onpolicy_accuracy']:.3f}: best-of-N by "
                  "the RM " + " ".join(f"{a:.3f}" for a in row["reward_model"]))
        out.append(row)
    return {"ns": list(SWEEP_NS), "n_prompts": 200, "n_samples": 32, "runs": out}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rlcourse.llm.testtime [--out FILE]``: store :func:`rm_sweep` as JSON
    (default results/lab/testtime_rm.json)."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", default="results/lab/testtime_rm.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = rm_sweep()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
