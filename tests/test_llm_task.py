"""The arithmetic task: splits, the safe verifier, partial credit and the demonstrations."""

import numpy as np
import pytest

from rlcourse.llm import task
from rlcourse.llm.task import END, Problem


def test_all_problems_and_prompt_format():
    problems = task.all_problems()
    assert len(problems) == 90 * 90
    assert {len(p.prompt) for p in problems} == {6}
    assert Problem(47, 35).prompt == "47+35=" and Problem(47, 35).answer == "82"
    with pytest.raises(ValueError, match="low <= high"):
        task.all_problems(50, 10)


def test_split_is_deterministic_disjoint_and_complete():
    train, held = task.split_problems(seed=3, n_heldout=200)
    train2, held2 = task.split_problems(seed=3, n_heldout=200)
    assert train == train2 and held == held2
    assert len(held) == 200 and not set(train) & set(held)
    assert set(train) | set(held) == set(task.all_problems())
    _, held_other = task.split_problems(seed=4, n_heldout=200)
    assert held_other != held
    with pytest.raises(ValueError, match="leaves no training"):
        task.split_problems(n_heldout=8100)


@pytest.mark.parametrize("response, expected", [
    ("82", 82), ("82" + END, 82), ("0", 0), ("12345678", 12345678),
])
def test_verifier_accepts_canonical_numbers(response, expected):
    assert task.parse_answer(response) == expected


@pytest.mark.parametrize("response", [
    "", END, "082", "-82", "+82", " 82", "82 ", "8_2", "8e1", "0x52", "82.0", "1e9",
    "\u0668\u0662",  # Arabic-Indic digits that int() would accept
    "\uff18\uff12",  # full-width digits
    "__import__('os').system('echo hacked')", "eval('82')", "82" + END + END,
    "123456789", "9" * 10**6, None, 82, b"82", ["8", "2"],
])
def test_verifier_rejects_garbage_and_malicious_input(response):
    assert task.parse_answer(response) is None
    if isinstance(response, str):
        assert task.gold_reward(Problem(47, 35), response) == 0.0


def test_verifier_never_evaluates(monkeypatch):
    import builtins

    def boom(*args, **kwargs):
        raise AssertionError("the verifier must not evaluate text")

    monkeypatch.setattr(builtins, "eval", boom)
    monkeypatch.setattr(builtins, "exec", boom)
    assert task.parse_answer("82") == 82
    assert task.parse_answer("__import__('os')") is None


@pytest.mark.parametrize("response, expected", [
    ("82", 1.0),             # exact
    ("72", 0.2 + 0.2 + 0.3),  # forgot the carry: length right, one of two digits right
    ("28", 0.2 + 0.2),         # right digits in the wrong places earn nothing for the digits
    ("2", 0.2 + 0.6 * 1 / 2),  # too short: ones digit right out of 2
    ("182", 0.2 + 0.6 * 2 / 3),  # an extra digit: length wrong, 2 of 3 positions right
    ("99", 0.4),
    ("abc", 0.0),
])
def test_gold_reward_partial_credit(response, expected):
    assert task.gold_reward(Problem(47, 35), response) == pytest.approx(expected)
    assert task.gold_reward("47+35=", response) == pytest.approx(expected)


def test_gold_reward_range_and_exact_match_agree():
    rng = np.random.default_rng(0)
    problems = task.all_problems()
    for _ in range(300):
        pr = problems[rng.integers(len(problems))]
        resp = str(int(rng.integers(0, 300)))
        r = task.gold_reward(pr, resp)
        assert 0.0 <= r <= 1.0
        assert (r == 1.0) == task.exact_match(pr, resp)


def test_longer_answers_never_earn_more_gold():
    pr = Problem(47, 35)
    assert task.gold_reward(pr, "82") > task.gold_reward(pr, "882")
    assert task.gold_reward(pr, "72") > task.gold_reward(pr, "1172")


def test_parse_prompt():
    assert task.parse_prompt("47+35=") == Problem(47, 35)
    for bad in ["47+35", "47-35=", "4 7+35=", "47+35=82", "a+b=", "\u0664\u0667+35="]:
        with pytest.raises(ValueError, match="not an addition prompt"):
            task.parse_prompt(bad)
    with pytest.raises(ValueError, match="more than"):
        task.parse_prompt("1" * 100 + "+1=")
    with pytest.raises(TypeError):
        task.parse_prompt(47)


def test_carry_and_forgotten_answer():
    assert Problem(47, 35).carry and not Problem(41, 35).carry
    assert task.forgotten_carry_answer(Problem(47, 35)) == "72"
    assert task.forgotten_carry_answer(Problem(58, 67)) == "115"
    assert task.forgotten_carry_answer(Problem(41, 35)) == "76"
    # ones digits (0..9)^2: 45 of 100 pairs carry
    assert task.carry_fraction(task.all_problems()) == pytest.approx(0.45)
    with pytest.raises(ValueError):
        task.carry_fraction([])


def test_demonstrations_forget_with_the_given_probability():
    rng = np.random.default_rng(1)
    pr = Problem(47, 35)
    answers = task.demonstrations([pr] * 4000, 0.85, rng)
    forgot = np.mean([a == "72" for a in answers])
    assert abs(forgot - 0.85) < 0.02
    assert set(answers) == {"72", "82"}
    assert set(task.demonstrations([Problem(41, 35)] * 100, 0.85, rng)) == {"76"}
    assert set(task.demonstrations([pr] * 50, 0.0, rng)) == {"82"}
    assert set(task.demonstrations([pr] * 50, 1.0, rng)) == {"72"}
    with pytest.raises(ValueError, match="p_forget"):
        task.demonstration(pr, 1.5, rng)
