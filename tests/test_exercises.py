"""The exercise machinery, and the course-wide rules every notebook's exercises follow."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from rlcourse import exercises
from rlcourse.exercises import CheckFailure, call_with, expect_close, expect_true, expect_type

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks/src").glob("[0-9][0-9]_*.py"))
CHECK_CALL = re.compile(r'^(\w+) = check\("([\w.]+)", (\w+)\)\s*$', re.M)


def _square(x):
    return x * x


@pytest.fixture
def demo():
    def test(fn):
        expect_close(fn(3), 9, "square of 3")

    exercises.register("demo.square", notebook="99_demo", reference=_square,
                       hint="multiply x by itself")(test)
    yield "demo.square"
    exercises.REGISTRY.pop("demo.square")
    exercises.strict_mode(False)


def test_check_returns_the_learners_function_when_it_passes(demo, capsys):
    mine = lambda x: x ** 2
    assert exercises.check(demo, mine) is mine
    assert "[PASS]" in capsys.readouterr().out


def test_blank_falls_back_to_the_reference_with_a_message(demo, capsys):
    def blank(x):
        raise NotImplementedError

    assert exercises.check(demo, blank) is _square
    out = capsys.readouterr().out
    assert "[SKIP]" in out and "tests.test_exercises._square" in out


def test_wrong_answer_reports_input_expected_and_hint(demo, capsys):
    assert exercises.check(demo, lambda x: 2 * x) is _square
    out = capsys.readouterr().out
    assert "[FAIL]" in out and "square of 3" in out and "expected 9" in out
    assert "got 6" in out and "multiply x by itself" in out


def test_crashing_answer_is_reported_not_raised(demo):
    result = exercises.evaluate(demo, lambda x: x.nope)
    assert result.status == "failed" and "AttributeError" in result.message
    assert exercises.evaluate(demo, 42).status == "failed"


def test_strict_mode_raises_on_blank_and_wrong(demo):
    exercises.strict_mode()
    with pytest.raises(exercises.ExerciseFailed, match="blank"):
        exercises.check(demo, lambda x: (_ for _ in ()).throw(NotImplementedError()))
    with pytest.raises(exercises.ExerciseFailed, match="failed"):
        exercises.check(demo, lambda x: x)
    assert exercises.check(demo, _square) is _square


def test_unknown_exercise_lists_the_known_ones(demo):
    with pytest.raises(KeyError, match="demo.square"):
        exercises.get("demo.sqaure")


def test_registering_twice_is_an_error(demo):
    with pytest.raises(ValueError, match="twice"):
        exercises.register(demo, notebook="99_demo", reference=_square, hint="")(lambda f: None)


def test_expect_helpers():
    with pytest.raises(CheckFailure, match="shape"):
        expect_close([1, 2], [1, 2, 3], "v")
    with pytest.raises(CheckFailure, match="could not read"):
        expect_close("abc", 1.0, "v")
    with pytest.raises(CheckFailure, match="nan|expected"):
        expect_close(float("nan"), 1.0, "v")
    expect_close(1.0 + 1e-9, 1.0, "v")
    with pytest.raises(CheckFailure, match="boom"):
        expect_true(False, "boom")


def test_call_with_names_the_input_of_a_crash_but_lets_blanks_through():
    assert call_with(lambda x, y=1: x + y, "sum", 2, y=3) == 5
    with pytest.raises(CheckFailure, match=r"^a T = 1 rollout: your function raised IndexError"):
        call_with(lambda: [][0], "a T = 1 rollout")
    with pytest.raises(NotImplementedError):
        call_with(lambda: (_ for _ in ()).throw(NotImplementedError()), "blank")
    with pytest.raises(CheckFailure, match="^inner$"):
        call_with(lambda: expect_true(False, "inner"), "outer")


def test_expect_type_names_the_expected_type():
    expect_type((1, 2), tuple, "pair", length=2)
    expect_type([1, 2], (tuple, list), "pair", length=2)
    expect_type({"a": 1}, dict, "parts")
    with pytest.raises(CheckFailure, match="expected a tuple of 2 items, got a float"):
        expect_type(1.5, tuple, "result", length=2)
    with pytest.raises(CheckFailure, match="expected a tuple or list of 2 items, got 3 items"):
        expect_type((1, 2, 3), (tuple, list), "result", length=2)
    with pytest.raises(CheckFailure, match="result: expected a dict, got a NoneType"):
        expect_type(None, dict, "result")


# ---- course-wide rules ------------------------------------------------------------------

def _honesty_tables() -> dict[str, dict]:
    table: dict[str, dict] = {}
    for path in sorted((ROOT / "tests").glob("test_checks_*.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        for name, wrongs in module.WRONG_ANSWERS.items():
            assert name not in table, f"{name} listed in two honesty tests"
            table[name] = wrongs
    return table


def test_every_registered_exercise_has_an_honesty_test_with_a_wrong_answer():
    exercises._load_checks()
    table = _honesty_tables()
    for name in exercises.REGISTRY:
        if name.startswith("demo."):
            continue
        assert name in table, f"{name} has no entry in any tests/test_checks_*.py WRONG_ANSWERS"
        assert len(table[name]) >= 1, f"{name} needs at least one plausible wrong answer"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_notebook_exercises_are_checked_and_registered(src):
    exercises._load_checks()
    text = src.read_text()
    calls = CHECK_CALL.findall(text)
    assert len(calls) >= 3, f"{src.name}: at least 3 checked exercises"
    for target, name, arg in calls:
        assert target == arg, f"{src.name}: `{target} = check(..., {arg})` must rebind {arg}"
        assert name in exercises.REGISTRY, f"{src.name}: unknown exercise {name}"
        assert exercises.REGISTRY[name].notebook == src.stem, f"{name} belongs elsewhere"
    registered = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == src.stem}
    assert registered == {name for _, name, _ in calls}, "registered but unused exercises"
    for cell in text.split("# %%"):
        if "### BEGIN SOLUTION" in cell:
            assert CHECK_CALL.search(cell), "each exercise cell must end with its check"


def test_expect_params_close_names_the_worst_parameter():
    import torch

    from rlcourse.exercises import CheckFailure, expect_params_close

    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    b = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    b.load_state_dict(a.state_dict())
    expect_params_close(a, b, "same")  # identical copies pass
    with torch.no_grad():
        b[2].weight[0, 0] += 0.31
        b[0].bias[1] += 0.01
    with pytest.raises(CheckFailure, match=r"largest difference 0.31 in 2.weight. did you"):
        expect_params_close(a, b, "after your update", hint="did you detach?")
    with torch.no_grad():
        b[2].weight[0, 0] = float("nan")
    with pytest.raises(CheckFailure, match="inf in 2.weight"):
        expect_params_close(a, b, "nan")
    with pytest.raises(CheckFailure, match="parameter names changed"):
        expect_params_close(a, torch.nn.Linear(3, 4), "names")


def test_show_source_names_file_and_line():
    from rlcourse import dqn
    from rlcourse.exercises import show_source

    text = show_source(dqn.td_target)
    assert text.startswith("# rlcourse/dqn.py, line ")
    assert "def td_target(" in text
