"""A synthetic annotator: preference pairs from the gold reward, with label noise and a bias.

Real preference labels are noisy (annotators agree only 65-75 % of the time) and biased (longer
answers look more helpful). The annotator here reproduces both, under control:

    perceived(y) = gold_reward(x, y) + length_bias * (len(y) - len(correct answer))

It prefers the response with the higher perceived score (a fair coin on ties) and then flips
its label with probability ``noise``. So with ``noise = 0`` and ``length_bias = 0`` its labels
are the gold preference; a positive ``length_bias`` makes an over-long answer beat a correct one
once the bias outweighs the gold gap, and a reward model trained on such labels learns that
longer is better, a proxy that RL can exploit (notebooks 10-11).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlcourse.llm import task
from rlcourse.validation import check_in_range, check_positive_int


@dataclass(frozen=True)
class Annotator:
    """``noise``: probability of flipping a label; ``length_bias``: perceived reward per extra
    character of the response."""

    noise: float = 0.0
    length_bias: float = 0.0

    def __post_init__(self) -> None:
        check_in_range(self.noise, "noise", 0.0, 0.5)
        check_in_range(self.length_bias, "length_bias", -1.0, 1.0)


@dataclass(frozen=True)
class PreferencePair:
    """One labelled comparison of two responses to ``prompt`` (texts without the end marker)."""

    prompt: str
    chosen: str
    rejected: str

    @property
    def gold_margin(self) -> float:
        """gold_reward(chosen) - gold_reward(rejected): > 0 when the label agrees with gold."""
        return (task.gold_reward(self.prompt, self.chosen)
                - task.gold_reward(self.prompt, self.rejected))


def perceived_score(problem: task.Problem, response: str, length_bias: float) -> float:
    """What the annotator sees: the gold reward plus ``length_bias`` per character beyond the
    length of the correct answer (negative for shorter answers)."""
    return (task.gold_reward(problem, response)
            + length_bias * (len(response) - len(problem.answer)))


def prefer_first_probability(score_a: float, score_b: float, noise: float) -> float:
    """P(the annotator prefers a over b): 1 - noise if a scores higher, noise if lower, 1/2 on
    a tie."""
    if score_a == score_b:
        return 0.5
    return 1.0 - noise if score_a > score_b else noise


def label_pair(problem: task.Problem, a: str, b: str, annotator: Annotator,
               rng: np.random.Generator) -> PreferencePair:
    """The annotator's label on responses ``a`` and ``b`` as a :class:`PreferencePair`."""
    p = prefer_first_probability(perceived_score(problem, a, annotator.length_bias),
                                 perceived_score(problem, b, annotator.length_bias),
                                 annotator.noise)
    first = rng.random() < p
    return PreferencePair(problem.prompt, a if first else b, b if first else a)


def candidate_responses(problem: task.Problem, rng: np.random.Generator) -> list[str]:
    """Plausible answers of uneven quality: the correct one, the forgotten carry, a wrong last
    digit, a wrong first digit, and an over-long one (the answer with a digit appended)."""
    ans = problem.answer
    last = str((int(ans[-1]) + int(rng.integers(1, 10))) % 10)
    first = str((int(ans[0]) + 1) % 9 + 1)  # never the same digit, never one more
    longer = ans + str(int(rng.integers(0, 10)))
    forgot = task.forgotten_carry_answer(problem) if problem.carry else str(int(ans) + 10)
    return [ans, forgot, ans[:-1] + last, first + ans[1:], longer]


def make_pairs(problems: Sequence[task.Problem], annotator: Annotator, rng: np.random.Generator,
               pairs_per_problem: int = 1) -> list[PreferencePair]:
    """Label ``pairs_per_problem`` random pairs of distinct :func:`candidate_responses` for
    each problem."""
    if len(problems) == 0:
        raise ValueError("problems is empty: no preference data to make")
    pairs_per_problem = check_positive_int(pairs_per_problem, "pairs_per_problem")
    out = []
    for pr in problems:
        cands = list(dict.fromkeys(candidate_responses(pr, rng)))  # distinct, order kept
        for _ in range(pairs_per_problem):
            i, j = rng.choice(len(cands), size=2, replace=False)
            out.append(label_pair(pr, cands[i], cands[j], annotator, rng))
    return out


def pairs_from_samples(problems: Sequence[task.Problem], samples: Sequence[Sequence[str]],
                       annotator: Annotator, rng: np.random.Generator) -> list[PreferencePair]:
    """Label one pair per problem from a model's own samples (``samples[i]`` are responses to
    ``problems[i]``); problems whose samples are all identical give no pair."""
    if len(problems) != len(samples):
        raise ValueError(f"{len(problems)} problems but {len(samples)} sample lists")
    out = []
    for pr, resp in zip(problems, samples):
        distinct = list(dict.fromkeys(resp))
        if len(distinct) >= 2:
            i, j = rng.choice(len(distinct), size=2, replace=False)
            out.append(label_pair(pr, distinct[i], distinct[j], annotator, rng))
    return out


def gold_agreement(pairs: Sequence[PreferencePair]) -> float:
    """Fraction of pairs whose label agrees with the gold reward, among pairs where gold has a
    strict preference. Raises ``ValueError`` if there is no such pair."""
    margins = np.array([p.gold_margin for p in pairs], dtype=float)
    decided = margins[margins != 0]
    if decided.size == 0:
        raise ValueError("no preference pair with a strict gold preference (empty data?)")
    return float(np.mean(decided > 0))


def length_preference(pairs: Sequence[PreferencePair]) -> float:
    """Fraction of pairs of unequal length in which the longer response was chosen."""
    longer = [len(p.chosen) > len(p.rejected) for p in pairs if len(p.chosen) != len(p.rejected)]
    if not longer:
        raise ValueError("no preference pair with responses of different lengths")
    return float(np.mean(longer))
