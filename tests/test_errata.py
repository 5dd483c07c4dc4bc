"""ERRATA.md names, for every error of the study notes, the one notebook that corrects it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "notebooks" / "src"
ROW = re.compile(r"^\|\s*(E-\d\d(?:,\s*E-\d\d)*)\s*\|.*\|\s*([^|]+?)\s*\|$")
TAG = re.compile(r"<!--\s*(E-\d\d)\s*-->")


def errata_rows() -> list[tuple[list[str], str]]:
    """(ids, where) for every table row of ERRATA.md."""
    rows = []
    for line in (ROOT / "ERRATA.md").read_text(encoding="utf-8").splitlines():
        m = ROW.match(line.strip())
        if m:
            rows.append(([i.strip() for i in m.group(1).split(",")], m.group(2)))
    return rows


def tags_by_notebook() -> dict[str, list[str]]:
    """E-ids tagged in each notebook source, in order of appearance (repeats kept)."""
    return {p.stem: TAG.findall(p.read_text(encoding="utf-8")) for p in SOURCES.glob("*.py")}


def test_every_seed_error_has_exactly_one_row():
    ids = [i for row_ids, _ in errata_rows() for i in row_ids]
    gaps = {"E-12", "E-13", "E-48"}  # gaps in the notes, not errors; ERRATA.md says so in prose
    assert len(ids) == len(set(ids)), "an E-id appears in two rows"
    assert set(ids) | gaps == {f"E-{k:02d}" for k in range(1, 58)}


def test_each_correction_is_tagged_in_its_notebook_and_nowhere_else():
    tags = tags_by_notebook()
    checked = 0
    for ids, where in errata_rows():
        nb = re.fullmatch(r"\d\d_[a-z0-9_]+", where)
        for e in ids:
            holders = sorted(n for n, found in tags.items() if e in found)
            if nb is None or where not in tags:  # "see below", or a Part III notebook to come
                assert holders in ([], [where]), f"{e} is tagged in {holders}"
                continue
            assert holders == [where], f"{e}: ERRATA.md says {where}, tags are in {holders}"
            assert tags[where].count(e) == 1, f"{e} is tagged twice in {where}"
            checked += 1
    assert checked >= 20


@pytest.mark.parametrize("src", sorted(SOURCES.glob("0*.py")), ids=lambda p: p.stem)
def test_notebooks_keep_corrections_in_one_block(src):
    """Corrections live in the 'Common misconceptions' block, not in boxes in the lesson."""
    text = src.read_text(encoding="utf-8")
    assert "If you have seen" not in text
    for e in TAG.findall(text):
        block = text.split("## Common misconceptions", 1)
        assert len(block) == 2 and e in block[1].split("## What to remember", 1)[0], (
            f"{src.stem}: {e} is tagged outside its Common misconceptions block")
