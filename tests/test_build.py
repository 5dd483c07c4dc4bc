"""Notebook generation: fresh, deterministic, and honest about blanks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlcourse import build

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks/src").glob("[0-9][0-9]_*.py"))

SRC = '''# %% [markdown]
# # 99 demo

# %%
import rlcourse
session = rlcourse.setup(seed=0)

# %%
def f(x):
    """Double x."""
    y = 1
    ### BEGIN SOLUTION
    y = 2 * x
    ### END SOLUTION
    return y
'''


def test_generated_notebooks_are_fresh():
    assert build.stale(ROOT) == [], "run `make build-notebooks` and commit the result"


def test_every_source_has_a_learner_and_a_solution_notebook():
    names = {p.stem for p in SOURCES}
    assert {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")} == names
    assert {p.stem for p in (ROOT / "notebooks/solutions").glob("*.ipynb")} == names
    assert (ROOT / "notebooks/index.ipynb").exists()


def test_blank_keeps_indentation_and_raises():
    src = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
    out = build.blank_solutions(src)
    assert out.splitlines() == ["def f():", "    # YOUR CODE HERE",
                                '    raise NotImplementedError("Exercise: replace this line '
                                'with your code")']


@pytest.mark.parametrize("bad", ["### BEGIN SOLUTION\nx", "x\n### END SOLUTION",
                                 "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"])
def test_unbalanced_markers_are_rejected(bad):
    with pytest.raises(ValueError, match="SOLUTION"):
        build.blank_solutions(bad)


def test_variants_differ_only_where_they_should(tmp_path):
    src = tmp_path / "99_demo.py"
    src.write_text(SRC)
    learner = json.loads(build.build(src, "learner"))
    solution = json.loads(build.build(src, "solution"))
    ids = [c["id"] for c in learner["cells"]]
    assert ids == ["cell-000", "cell-001", "cell-002"] == [c["id"] for c in solution["cells"]]
    learner_code = "".join(learner["cells"][2]["source"])
    solution_code = "".join(solution["cells"][2]["source"])
    assert "raise NotImplementedError" in learner_code and "2 * x" not in learner_code
    assert "2 * x" in solution_code and "SOLUTION" not in solution_code
    assert build.STRICT_LINE in "".join(solution["cells"][1]["source"])
    assert build.STRICT_LINE not in json.dumps(learner)
    assert build.build(src, "learner") == build.build(src, "learner")  # deterministic
    with pytest.raises(ValueError, match="variant"):
        build.build(src, "teacher")


def test_main_check_reports_stale(tmp_path, capsys):
    (tmp_path / "notebooks/src").mkdir(parents=True)
    (tmp_path / "notebooks/src/99_demo.py").write_text(SRC)
    assert build.main(["--check", "--root", str(tmp_path)]) == 1
    assert "stale" in capsys.readouterr().out
    assert build.main(["--root", str(tmp_path)]) == 0
    assert build.main(["--check", "--root", str(tmp_path)]) == 0


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_learner_notebook_has_one_blank_per_solution_block(src):
    text = src.read_text()
    nb = json.loads((ROOT / "notebooks" / f"{src.stem}.ipynb").read_text())
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    n_blocks = text.count(build.BEGIN)
    assert n_blocks >= 3, f"{src.name}: at least 3 exercises per notebook"
    assert code.count(build.BLANK[1]) == n_blocks


def test_index_links_every_notebook():
    index = (ROOT / "notebooks/src/index.py").read_text(encoding="utf-8")
    missing = [p.stem for p in SOURCES if f"]({p.stem}.ipynb)" not in index]
    assert not missing, f"notebooks/src/index.py does not link {missing}"
