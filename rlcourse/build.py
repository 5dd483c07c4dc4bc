"""Generate the learner and solution notebooks from one source per notebook.

Sources are jupytext "percent" files, ``notebooks/src/NN_name.py``. Code between the lines
``### BEGIN SOLUTION`` and ``### END SOLUTION`` is the reference answer:

* ``notebooks/NN_name.ipynb`` (learner) replaces it with a blank that raises
  ``NotImplementedError``;
* ``notebooks/solutions/NN_name.ipynb`` keeps it, and switches the exercise checks to strict
  mode so that a wrong solution fails the run.

Cell ids are fixed (``cell-000``, ``cell-001`` ...), so regenerating an unchanged source gives
byte-identical files. ``python -m rlcourse.build --check`` fails if any notebook is stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STRICT_LINE = "rlcourse.exercises.strict_mode()  # solution notebook: a failing check stops the run"
BLANK = ("# YOUR CODE HERE",
         'raise NotImplementedError("Exercise: replace this line with your code")')
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def blank_solutions(source: str) -> str:
    """Replace every solution block of a code cell with an indented blank."""
    out: list[str] = []
    inside = False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError("nested '### BEGIN SOLUTION'")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + b for b in BLANK)
        elif stripped == END:
            if not inside:
                raise ValueError("'### END SOLUTION' without a matching BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("'### BEGIN SOLUTION' without a matching END")
    return "\n".join(out)


def keep_solutions(source: str) -> str:
    """Drop the marker lines and keep the reference code."""
    return "\n".join(l for l in source.splitlines() if l.strip() not in (BEGIN, END))


def build(src: Path, variant: str) -> str:
    """Return the .ipynb text of ``variant`` ('learner' or 'solution') for source ``src``."""
    if variant not in ("learner", "solution"):
        raise ValueError(f"variant must be 'learner' or 'solution', got {variant!r}")
    nb = jupytext.reads(src.read_text(encoding="utf-8"), fmt="py:percent")
    cells = []
    strict_added = False
    for i, cell in enumerate(nb.cells):
        text = cell.source
        if cell.cell_type == "code":
            text = blank_solutions(text) if variant == "learner" else keep_solutions(text)
            if variant == "solution" and not strict_added and "rlcourse.setup(" in text:
                text = f"{text}\n{STRICT_LINE}"
                strict_added = True
            new = nbformat.v4.new_code_cell(text)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(text)
        else:
            new = nbformat.v4.new_raw_cell(text)
        new.id = f"cell-{i:03d}"
        tags = cell.metadata.get("tags")
        if tags:
            new.metadata["tags"] = list(tags)
        cells.append(new)
    if variant == "solution" and _has_exercises(src) and not strict_added:
        raise ValueError(f"{src}: has exercises but no cell calling rlcourse.setup(")
    out = nbformat.v4.new_notebook(cells=cells)
    out.nbformat_minor = 5
    out.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    return nbformat.writes(out) + "\n"


def _has_exercises(src: Path) -> bool:
    return BEGIN in src.read_text(encoding="utf-8")


def targets(root: Path, only: str | None = None) -> dict[Path, str]:
    """Map every generated notebook path under ``root`` to its expected contents."""
    out: dict[Path, str] = {}
    for src in sorted((root / "notebooks" / "src").glob(f"{only or ''}*.py")):
        name = src.stem + ".ipynb"
        out[root / "notebooks" / name] = build(src, "learner")
        if _has_exercises(src) or src.stem[:2].isdigit():
            out[root / "notebooks" / "solutions" / name] = build(src, "solution")
    return out


def stale(root: Path) -> list[Path]:
    """Generated notebooks that are missing or differ from their source."""
    return [p for p, text in targets(root).items()
            if not p.exists() or p.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: build (or with --check, verify) the notebooks."""
    parser = argparse.ArgumentParser(description="Build notebooks from notebooks/src.")
    parser.add_argument("--check", action="store_true", help="fail if any notebook is stale")
    parser.add_argument("--root", default=".", help="repository root")
    parser.add_argument("--only", help="build only notebooks whose name starts with this")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if args.check:
        bad = stale(root)
        for p in bad:
            print(f"stale: {p} (run `make build-notebooks`)")
        return 1 if bad else 0
    for path, text in targets(root, args.only).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["blank_solutions", "build", "keep_solutions", "main", "stale", "targets"]
