"""The lab's task: two-digit addition with a gold reward computed by code (notebooks 09-11).

A prompt is ``"a+b="`` with a, b in 10..99 (always 6 characters), the response is the decimal sum
followed by the end marker, e.g. ``"47+35="`` -> ``"82"`` + ``END``. Because the right answer is
known, every stage of the pipeline can be scored against the truth:

* :func:`parse_answer` is the **verifier**: it accepts only a short string of ASCII digits in
  canonical form and never evaluates anything (no ``eval``/``exec``, bounded length);
* :func:`gold_reward` gives **partial credit** in [0, 1] (well-formed, right length, digits right
  from the right), so a group of sampled answers is rarely all-equal; 1 means exact match;
* :func:`demonstration` writes SFT data with a human-like bug: it forgets the carry from the
  ones into the tens with probability ``p_forget``. With p_forget around 0.85 the SFT model's
  greedy answer is wrong on most carry problems, yet the right digit is still sampled sometimes,
  so RL has something to find.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rlcourse.validation import check_in_range, check_positive_int

END = "<eos>"  # the end-of-response marker (the tokenizer's eos token)
LOW, HIGH = 10, 99  # operand range of the course task
MAX_ANSWER_CHARS = 8  # the verifier rejects longer answers outright
MAX_PROMPT_CHARS = 32
DIGITS = frozenset("0123456789")
_PROMPT = re.compile(r"([0-9]{1,6})\+([0-9]{1,6})=", re.ASCII)
CREDIT_FORMAT, CREDIT_LENGTH, CREDIT_DIGITS = 0.2, 0.2, 0.6  # sum to 1


@dataclass(frozen=True)
class Problem:
    """One addition problem ``a + b``; ``prompt`` and ``answer`` are its text forms."""

    a: int
    b: int

    @property
    def prompt(self) -> str:
        """The prompt text, e.g. ``"47+35="``."""
        return f"{self.a}+{self.b}="

    @property
    def answer(self) -> str:
        """The correct response text without the end marker, e.g. ``"82"``."""
        return str(self.a + self.b)

    @property
    def carry(self) -> bool:
        """True if the ones digits carry into the tens (the step the demonstrator forgets)."""
        return self.a % 10 + self.b % 10 >= 10


def all_problems(low: int = LOW, high: int = HIGH) -> list[Problem]:
    """Every problem with both operands in [low, high], in a fixed order (a, then b)."""
    if isinstance(low, bool) or isinstance(high, bool) or not (0 <= int(low) <= int(high)):
        raise ValueError(f"need 0 <= low <= high, got low={low!r}, high={high!r}")
    if high >= 10**6:
        raise ValueError(f"operands must have at most 6 digits, got high={high}")
    return [Problem(a, b) for a in range(low, high + 1) for b in range(low, high + 1)]


def split_problems(seed: int = 0, n_heldout: int = 500, low: int = LOW,
                   high: int = HIGH) -> tuple[list[Problem], list[Problem]]:
    """(train, held_out): a deterministic random split of :func:`all_problems` by ``seed``.

    The same seed always gives the same split; the two parts are disjoint and cover every problem.
    """
    problems = all_problems(low, high)
    n_heldout = check_positive_int(n_heldout, "n_heldout")
    if n_heldout >= len(problems):
        raise ValueError(f"n_heldout={n_heldout} leaves no training problems "
                         f"({len(problems)} problems in total)")
    order = np.random.default_rng(seed).permutation(len(problems))
    held = sorted(order[:n_heldout].tolist())
    train = sorted(order[n_heldout:].tolist())
    return [problems[i] for i in train], [problems[i] for i in held]


def parse_prompt(prompt: str) -> Problem:
    """The :class:`Problem` of a prompt such as ``"47+35="``; ``ValueError`` for anything else."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"prompt is {len(prompt)} characters, more than {MAX_PROMPT_CHARS}")
    match = _PROMPT.fullmatch(prompt)
    if match is None:
        raise ValueError(f"not an addition prompt of the form 'a+b=': {prompt!r}")
    return Problem(int(match.group(1)), int(match.group(2)))


def clean_response(response: str) -> str | None:
    """The digits of a response, or None if it is not a canonical short number.

    One trailing :data:`END` marker is removed first. What remains must be 1 to
    :data:`MAX_ANSWER_CHARS` ASCII digits without a leading zero (``"0"`` itself is fine).
    Signs, spaces, underscores, exponents and non-ASCII digits are all rejected.
    """
    if not isinstance(response, str) or len(response) > MAX_ANSWER_CHARS + len(END):
        return None
    text = response[: -len(END)] if response.endswith(END) else response
    if not 1 <= len(text) <= MAX_ANSWER_CHARS or not set(text) <= DIGITS:
        return None
    if len(text) > 1 and text[0] == "0":
        return None
    return text


def parse_answer(response: str) -> int | None:
    """The verifier: the integer a response states, or None if it is malformed.

    Safe on any input: it checks the length and the characters before converting, and never
    evaluates the text.
    """
    text = clean_response(response)
    return None if text is None else int(text)


def gold_reward(problem: Problem | str, response: str) -> float:
    """Partial-credit reward in [0, 1] of ``response`` to ``problem`` (a Problem or its prompt).

    0 if the verifier rejects the response; otherwise CREDIT_FORMAT (0.2) for a well-formed
    number, CREDIT_LENGTH (0.2) if it has as many digits as the answer, and CREDIT_DIGITS (0.6)
    times the fraction of digit positions that match, counted from the right over the longer of
    the two. An exact answer scores 1; extra digits never earn credit.
    """
    if isinstance(problem, str):
        problem = parse_prompt(problem)
    text = clean_response(response)
    if text is None:
        return 0.0
    target = problem.answer
    same = sum(x == y for x, y in zip(reversed(text), reversed(target)))
    frac = same / max(len(text), len(target))
    return CREDIT_FORMAT + CREDIT_LENGTH * (len(text) == len(target)) + CREDIT_DIGITS * frac


def exact_match(problem: Problem | str, response: str) -> bool:
    """True if the verifier reads exactly the right sum from ``response``."""
    if isinstance(problem, str):
        problem = parse_prompt(problem)
    return parse_answer(response) == problem.a + problem.b


def forgotten_carry_answer(problem: Problem) -> str:
    """The answer written by someone who drops the carry from the ones into the tens."""
    total = problem.a + problem.b
    return str(total - 10) if problem.carry else str(total)


def demonstration(problem: Problem, p_forget: float, rng: np.random.Generator) -> str:
    """A demonstration response (no end marker): the sum, or with probability ``p_forget`` the
    forgotten-carry answer on problems that carry. Problems without a carry are always right."""
    p = check_in_range(p_forget, "p_forget", 0.0, 1.0)
    if problem.carry and rng.random() < p:
        return forgotten_carry_answer(problem)
    return problem.answer


def demonstrations(problems: list[Problem], p_forget: float,
                   rng: np.random.Generator) -> list[str]:
    """:func:`demonstration` for each problem, in order."""
    return [demonstration(pr, p_forget, rng) for pr in problems]


def carry_fraction(problems: list[Problem]) -> float:
    """Fraction of ``problems`` with a ones carry: the accuracy a carry-forgetter loses."""
    if not problems:
        raise ValueError("problems is empty")
    return sum(p.carry for p in problems) / len(problems)
