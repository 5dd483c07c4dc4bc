"""Headline results of notebook runs, and the README table built from them.

Notebooks call :func:`record` at the end. It writes nothing unless $RLCOURSE_RESULTS names a
folder (``make notebooks`` sets it), so a learner's own runs never touch the stored results.
``python -m rlcourse.results --update-readme README.md`` rewrites the README's table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
from pathlib import Path
from typing import Any

from rlcourse.core import current_session
from rlcourse.exercises import is_strict

RESULTS_ENV = "RLCOURSE_RESULTS"
#: The repository's stored benchmark results (``make bench`` writes them).
BENCH_FOLDER = Path(__file__).resolve().parent.parent / "results" / "bench"
TABLE_START = "<!-- notebook-table:start -->"
TABLE_END = "<!-- notebook-table:end -->"
BENCH_START = "<!-- bench-table:start -->"
BENCH_END = "<!-- bench-table:end -->"
#: The lab CLI's stored report (``make lab-bench`` writes it).
LAB_FILE = Path(__file__).resolve().parent.parent / "results" / "lab" / "lab.json"
LAB_START = "<!-- lab-table:start -->"
LAB_END = "<!-- lab-table:end -->"
COMPARE_START = "<!-- lab-compare:start -->"
COMPARE_END = "<!-- lab-compare:end -->"


def record(notebook: str, *, title: str, topics: str, headline: str,
           metrics: dict[str, float] | None = None) -> dict[str, Any] | None:
    """Store a notebook's runtime and headline result; returns the record (None if disabled).

    ``headline`` is a short sentence built from the measured numbers; ``metrics`` holds the
    raw numbers (rounded to 4 significant digits when written).
    """
    if not re.fullmatch(r"\d\d_[a-z0-9_]+", notebook):
        raise ValueError(f"notebook must look like '01_bandits', got {notebook!r}")
    session = current_session()
    entry = {
        "notebook": notebook,
        "variant": "solution" if is_strict() else "learner",
        "title": title,
        "topics": topics,
        "headline": headline,
        "seconds": round(session.elapsed(), 1) if session else None,
        "cpu_seconds": round(session.cpu_elapsed(), 1) if session else None,
        "metrics": {k: float(f"{float(v):.4g}") for k, v in (metrics or {}).items()},
    }
    folder = os.environ.get(RESULTS_ENV)
    if not folder:
        return None
    path = Path(folder) / f"{notebook}.{entry['variant']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return entry


def load(folder: str | Path) -> list[dict[str, Any]]:
    """All records in ``folder``, sorted by notebook then variant."""
    entries = [json.loads(p.read_text(encoding="utf-8")) for p in Path(folder).glob("*.json")]
    return sorted(entries, key=lambda e: (e["notebook"], e["variant"]))


def markdown_table(entries: list[dict[str, Any]]) -> str:
    """The README's notebook table: one row per notebook (learner run, solution runtime)."""
    by_nb: dict[str, dict[str, dict[str, Any]]] = {}
    for e in entries:
        by_nb.setdefault(e["notebook"], {})[e["variant"]] = e
    rows = ["| # | Notebook | Topics | Runtime on 2 cores (learner / solution) | "
            "CPU time (learner / solution) | Headline result |",
            "|---|---|---|---|---|---|"]
    for nb in sorted(by_nb):
        variants = by_nb[nb]
        main = variants.get("solution") or variants["learner"]
        times = " / ".join(_secs(variants.get(v)) for v in ("learner", "solution"))
        cpu = " / ".join(_secs(variants.get(v), "cpu_seconds") for v in ("learner", "solution"))
        link = f"[{main['title']}](notebooks/{nb}.ipynb)"
        rows.append(f"| {nb[:2]} | {link} | {main['topics']} | {times} | {cpu} | "
                    f"{main['headline']} |")
    return "\n".join(rows)


def bench_table(folder: str | Path) -> str:
    """The README's benchmark table from ``python -m rlcourse.bench ... --json`` outputs."""
    rows = ["| Algorithm | Env | Seeds solved | Median env steps to solve | "
            "Median seconds to solve | Greedy eval (100 episodes), min / median |",
            "|---|---|---|---|---|---|"]
    for path in sorted(Path(folder).glob("*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        evals = [s["eval_mean_return"] for s in r["seeds"]]
        n = len(evals)
        solved = sum(s["solved"] for s in r["seeds"])
        steps, secs = r["median_steps_to_solve"], r["median_seconds_to_solve"]
        rows.append(f"| {r['algo']} | {r['env']} | {solved}/{n} | "
                    f"{'-' if steps is None else f'{steps:,.0f}'} | "
                    f"{'-' if secs is None else f'{secs:.1f}'} | "
                    f"{min(evals):.1f} / {statistics.median(evals):.1f} |")
    return "\n".join(rows)


LAB_STAGE_NAMES = {"pretrain": "pretraining", "sft": "SFT", "rm": "reward model",
                   "ppo": "RLHF-PPO, learned RM", "ppo_gold": "PPO, gold reward",
                   "dpo": "DPO", "grpo": "GRPO"}


def _lab_cell(value: Any, fmt: str, scale: float = 1.0) -> str:
    return "-" if value is None else fmt.format(value * scale)


def lab_table(path: str | Path) -> str:
    """The README's lab table from ``python -m rlcourse.llm.lab ... --json`` output: one row
    per stage with the medians over seeds, and each seed's gold accuracy."""
    report = load_lab(path)
    rows = ["| Stage | Wall-clock s (CPU s) | Gold accuracy, median (per seed) | RM accuracy, "
            "gold pairs / SFT samples | Proxy reward | KL to ref (nats) | Response length | "
            "Gain over SFT (points) |",
            "|---|---|---|---|---|---|---|---|"]
    for stage, m in report["median"].items():
        per = [run[stage].get("gold_accuracy") for run in report["per_seed"]]
        acc = _lab_cell(m.get("gold_accuracy"), "{:.1%}")
        if acc != "-":
            acc += " (" + ", ".join(_lab_cell(a, "{:.0%}") for a in per) + ")"
        rm = " / ".join(_lab_cell(m.get(k), "{:.1%}")
                        for k in ("rm_pair_accuracy", "rm_onpolicy_accuracy"))
        name = LAB_STAGE_NAMES.get(stage, stage)
        rm = "-" if rm == "- / -" else rm
        secs = _lab_cell(m.get("seconds"), "{:.0f}")
        if m.get("cpu_seconds") is not None:
            secs += f" ({m['cpu_seconds']:.0f})"
        rows.append(f"| {name} | {secs} | {acc} | {rm}"
                    f" | {_lab_cell(m.get('proxy_reward'), '{:.3f}')}"
                    f" | {_lab_cell(m.get('kl_to_ref'), '{:.2f}')}"
                    f" | {_lab_cell(m.get('response_length'), '{:.2f}')}"
                    f" | {_lab_cell(m.get('gain_over_sft'), '{:+.1f}', 100)} |")
    seeds = ", ".join(map(str, report["seeds"]))
    foot = f"\n\nMedians over seeds {seeds}."
    if report.get("total_seconds") is not None:
        per = ", ".join(f"{t:.0f}" for t in report.get("per_seed_total_seconds", []))
        foot += (f" The whole pipeline, from an empty cache to the last stage: median "
                 f"{report['total_seconds']:.0f} s per seed ({per}), {report.get('threads')} "
                 f"torch thread(s).")
    return "\n".join(rows) + foot


def compare_table(path: str | Path) -> str:
    """The README's head-to-head table from the ``compare`` list of a lab report written with
    ``python -m rlcourse.llm.lab --compare --json`` (see :func:`rlcourse.llm.lab.compare_rows`)."""
    report = load_lab(path)
    if "compare" not in report:
        raise ValueError(f"{path} has no 'compare' list: rerun the lab with --compare --json "
                         "(make lab-bench does)")
    rows = ["| Method | Gold accuracy (std over seeds) | Gain over SFT (points) | KL to ref "
            "(nats) | Training s | Policy samples | Models in memory | Parameter memory (MB) |",
            "|---|---|---|---|---|---|---|---|"]
    for r in report["compare"]:
        acc = _lab_cell(r.get("gold_accuracy"), "{:.1%}")
        if r.get("seed_std") is not None:
            acc += f" (±{r['seed_std']:.1%})"
        samples = _lab_cell(r.get("samples"), "{:,.0f}")
        if r.get("pairs"):
            samples += f" ({r['pairs']:,} pairs)"
        rows.append(f"| {r['method']} | {acc}"
                    f" | {_lab_cell(r.get('gain_over_sft'), '{:+.1f}', 100)}"
                    f" | {_lab_cell(r.get('kl_to_ref'), '{:.2f}')}"
                    f" | {_lab_cell(r.get('seconds'), '{:.0f}')} | {samples}"
                    f" | {_lab_cell(r.get('models_in_memory'), '{:.0f}')}"
                    f" | {_lab_cell(r.get('parameter_bytes'), '{:.1f}', 1e-6)} |")
    seeds = ", ".join(map(str, report["seeds"]))
    return "\n".join(rows) + f"\n\nMedians over seeds {seeds}."


def load_lab(path: str | Path | None = None) -> dict[str, Any]:
    """The stored lab report (``python -m rlcourse.llm.lab ... --json``, written by
    ``make lab-bench``); ``path`` defaults to ``results/lab/lab.json`` of the repository."""
    path = Path(path) if path is not None else LAB_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no stored lab report: {path} is missing. Run `make lab-bench` "
                                "in the repository.")
    return json.loads(path.read_text(encoding="utf-8"))


def load_bench(algo: str, env_id: str, folder: str | Path | None = None) -> dict[str, Any]:
    """The stored ``python -m rlcourse.bench ALGO --env ENV --json`` result for one run.

    Notebooks quote benchmark numbers through this, so their prose follows the last
    ``make bench`` instead of numbers typed in by hand. ``folder`` defaults to ``results/bench``
    of the repository the package was installed from.
    """
    folder = Path(folder) if folder is not None else BENCH_FOLDER
    path = folder / f"{algo}-{env_id}.json"
    if not path.is_file():
        have = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        raise FileNotFoundError(
            f"no stored benchmark for {algo!r} on {env_id!r}: {path} is missing "
            f"(stored: {', '.join(have) or 'none'}). Run `make bench` in the repository.")
    return json.loads(path.read_text(encoding="utf-8"))


def _replace_between(text: str, start: str, end: str, body: str, path: Path) -> str:
    if start not in text or end not in text:
        raise ValueError(f"{path} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def update_readme(readme: str | Path, folder: str | Path,
                  bench_folder: str | Path | None = None,
                  lab_file: str | Path | None = None) -> bool:
    """Replace the tables between the README's markers; returns True if the file changed."""
    path = Path(readme)
    text = path.read_text(encoding="utf-8")
    new = _replace_between(text, TABLE_START, TABLE_END, markdown_table(load(folder)), path)
    if bench_folder is not None:
        new = _replace_between(new, BENCH_START, BENCH_END, bench_table(bench_folder), path)
    if lab_file is not None:
        new = _replace_between(new, LAB_START, LAB_END, lab_table(lab_file), path)
        if COMPARE_START in new:
            new = _replace_between(new, COMPARE_START, COMPARE_END, compare_table(lab_file),
                                   path)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def _secs(entry: dict[str, Any] | None, key: str = "seconds") -> str:
    if not entry or entry.get(key) is None:
        return "n/a"
    return f"{entry[key]:.0f} s"


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: print the table or update the README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results/notebooks", help="folder of records")
    parser.add_argument("--bench", default="results/bench",
                        help="folder of `python -m rlcourse.bench ... --json` outputs")
    parser.add_argument("--lab", default="results/lab/lab.json",
                        help="`python -m rlcourse.llm.lab ... --json` output")
    parser.add_argument("--update-readme", metavar="README", help="rewrite this README's table")
    args = parser.parse_args(argv)
    if args.update_readme:
        bench = args.bench if Path(args.bench).is_dir() else None
        lab = args.lab if Path(args.lab).is_file() else None
        changed = update_readme(args.update_readme, args.results, bench, lab)
        print(f"{args.update_readme}: {'table updated' if changed else 'already up to date'}")
    else:
        print(markdown_table(load(args.results)))


if __name__ == "__main__":
    main()
