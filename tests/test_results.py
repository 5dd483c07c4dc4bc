"""Notebook result records and the README table built from them."""

from __future__ import annotations

import json

import pytest

import rlcourse
from rlcourse import exercises, results

ARGS = dict(title="Bandits", topics="UCB", headline="1.40 reward", metrics={"r": 1.40123456})


def _record_one(tmp_path, monkeypatch):
    """Record notebook 01's result into a fresh results folder; returns the folder."""
    folder = tmp_path / "res"
    monkeypatch.setenv(results.RESULTS_ENV, str(folder))
    rlcourse.setup(seed=0, verbose=False)
    results.record("01_bandits", **ARGS)
    return folder


def _refresh_readme(tmp_path, monkeypatch, tail: str, *args: str) -> str:
    """Record one notebook, write a README with the notebook table markers followed by
    ``tail``, run ``python -m rlcourse.results ... --update-readme`` and return the new text."""
    folder = _record_one(tmp_path, monkeypatch)
    readme = tmp_path / "README.md"
    readme.write_text(f"{results.TABLE_START}\n{results.TABLE_END}\n{tail}")
    results.main(["--results", str(folder), *args, "--update-readme", str(readme)])
    return readme.read_text()


def test_record_writes_nothing_without_the_env_var(monkeypatch, tmp_path):
    monkeypatch.delenv(results.RESULTS_ENV, raising=False)
    assert results.record("01_bandits", **ARGS) is None
    assert list(tmp_path.iterdir()) == []


def test_record_writes_one_file_per_variant(monkeypatch, tmp_path):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    rlcourse.setup(seed=0, verbose=False)
    entry = results.record("01_bandits", **ARGS)
    assert entry["variant"] == "learner" and entry["metrics"] == {"r": 1.401}
    exercises.strict_mode()
    try:
        results.record("01_bandits", **ARGS)
    finally:
        exercises.strict_mode(False)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["01_bandits.learner.json", "01_bandits.solution.json"]
    stored = json.loads((tmp_path / "01_bandits.solution.json").read_text())
    assert stored["variant"] == "solution" and stored["seconds"] >= 0


def test_bad_notebook_name():
    with pytest.raises(ValueError, match="01_bandits"):
        results.record("bandits", **ARGS)


def test_readme_table_round_trip(monkeypatch, tmp_path):
    folder = _record_one(tmp_path, monkeypatch)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results.TABLE_START}\nold\n{results.TABLE_END}\noutro\n")
    assert results.update_readme(readme, folder) is True
    text = readme.read_text()
    assert "| 01 | [Bandits](notebooks/01_bandits.ipynb) | UCB |" in text
    assert "1.40 reward" in text and "old" not in text and text.endswith("outro\n")
    assert results.update_readme(readme, folder) is False
    results.main(["--results", str(folder), "--bench", str(tmp_path / "no-bench"),
                  "--lab", str(tmp_path / "no-lab.json"), "--update-readme", str(readme)])
    results.main(["--results", str(folder)])
    (tmp_path / "bad.md").write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        results.update_readme(tmp_path / "bad.md", folder)


def test_bench_table_and_readme(tmp_path, monkeypatch):
    bench = tmp_path / "bench"
    bench.mkdir()
    seeds = [{"seed": i, "solved": i < 2, "steps_to_solve": 1000 * (i + 1) if i < 2 else None,
              "seconds_to_solve": 1.0 if i < 2 else None, "eval_mean_return": 400.0 + 50 * i}
             for i in range(3)]
    report = {"algo": "ppo", "env": "CartPole-v1", "seeds": seeds, "median_steps_to_solve": 2000,
              "median_seconds_to_solve": 1.0, "solved_fraction": 2 / 3}
    (bench / "ppo-CartPole-v1.json").write_text(json.dumps(report))
    table = results.bench_table(bench)
    assert "| ppo | CartPole-v1 | 2/3 | 2,000 | 1.0 | 400.0 / 450.0 |" in table
    text = _refresh_readme(tmp_path, monkeypatch,
                           f"{results.BENCH_START}\nold\n{results.BENCH_END}\n",
                           "--bench", str(bench), "--lab", str(tmp_path / "no-lab.json"))
    assert "2,000" in text and "old" not in text


def test_load_bench_reads_the_stored_runs(tmp_path):
    stored = results.load_bench("ppo", "CartPole-v1")
    assert stored["algo"] == "ppo" and stored["env"] == "CartPole-v1"
    assert len(stored["seeds"]) >= 5
    (tmp_path / "dqn-CartPole-v1.json").write_text(json.dumps({"algo": "dqn"}))
    assert results.load_bench("dqn", "CartPole-v1", tmp_path) == {"algo": "dqn"}
    with pytest.raises(FileNotFoundError, match="stored: dqn-CartPole-v1"):
        results.load_bench("sac", "Pendulum-v1", tmp_path)


LAB_REPORT = {
    "seeds": [0, 1, 2],
    "per_seed": [{"sft": {"seconds": 20.0 + i, "gold_accuracy": a},
                  "rm": {"seconds": 30.0, "rm_pair_accuracy": 0.95, "rm_onpolicy_accuracy": 0.9},
                  "ppo": {"seconds": 100.0, "gold_accuracy": a + 0.2, "kl_to_ref": 0.5,
                          "proxy_reward": 0.25, "response_length": 2.1, "gain_over_sft": 0.2}}
                 for i, a in enumerate([0.55, 0.6, 0.5])],
    "median": {"sft": {"seconds": 21.0, "cpu_seconds": 9.6, "gold_accuracy": 0.55},
               "rm": {"seconds": 30.0, "rm_pair_accuracy": 0.95, "rm_onpolicy_accuracy": 0.9},
               "ppo": {"seconds": 100.0, "gold_accuracy": 0.75, "kl_to_ref": 0.5,
                       "proxy_reward": 0.25, "response_length": 2.1, "gain_over_sft": 0.2}},
}


def test_lab_table_and_readme(tmp_path, monkeypatch):
    path = tmp_path / "lab.json"
    path.write_text(json.dumps(LAB_REPORT))
    lines = results.lab_table(path).splitlines()
    assert lines[0].count("|") == lines[1].count("|") == 9
    assert lines[2] == "| SFT | 21 (10) | 55.0% (55%, 60%, 50%) | - | - | - | - | - |"
    assert lines[3] == "| reward model | 30 | - | 95.0% / 90.0% | - | - | - | - |"
    assert lines[4] == ("| RLHF-PPO, learned RM | 100 | 75.0% (75%, 80%, 70%) | - | 0.250 | "
                        "0.50 | 2.10 | +20.0 |")
    assert lines[-1] == "Medians over seeds 0, 1, 2."
    timed = tmp_path / "timed.json"
    timed.write_text(json.dumps(dict(LAB_REPORT, total_seconds=279.2, threads=2,
                                     per_seed_total_seconds=[267.4, 279.2, 304.4])))
    assert results.lab_table(timed).splitlines()[-1] == (
        "Medians over seeds 0, 1, 2. The whole pipeline, from an empty cache to the last "
        "stage: median 279 s per seed (267, 279, 304), 2 torch thread(s).")
    assert results.load_lab(path) == LAB_REPORT
    with pytest.raises(FileNotFoundError, match="make lab-bench"):
        results.load_lab(tmp_path / "missing.json")
    text = _refresh_readme(tmp_path, monkeypatch,
                           f"{results.LAB_START}\nSTALE\n{results.LAB_END}\nend\n",
                           "--bench", str(tmp_path / "no-bench"), "--lab", str(path))
    assert "95.0% / 90.0%" in text and "STALE" not in text and text.endswith("end\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"{results.TABLE_START}\n{results.TABLE_END}\n")
    with pytest.raises(ValueError, match="lab-table:start"):
        results.update_readme(readme, tmp_path / "res", lab_file=path)


def test_stored_lab_report_matches_the_readme():
    """If `make lab-bench` has stored a report, the README's lab table is generated from it."""
    if not results.LAB_FILE.is_file():
        pytest.skip("no stored lab report yet (make lab-bench)")
    readme = (results.LAB_FILE.parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"{results.LAB_START}\n{results.lab_table(results.LAB_FILE)}\n{results.LAB_END}" \
        in readme


def test_compare_table_from_the_lab_json(tmp_path):
    report = dict(LAB_REPORT, compare=[
        {"method": "RM + PPO", "gold_accuracy": 0.75, "seed_std": 0.05, "gain_over_sft": 0.2,
         "kl_to_ref": 0.5, "seconds": 130.4, "samples": 2560, "pairs": 0,
         "models_in_memory": 4, "parameter_bytes": 12_800_000},
        {"method": "DPO", "gold_accuracy": 0.9, "seed_std": None, "gain_over_sft": None,
         "kl_to_ref": 1.1, "seconds": 20.0, "samples": 0, "pairs": 9600,
         "models_in_memory": 2, "parameter_bytes": 6_400_000}])
    path = tmp_path / "lab.json"
    path.write_text(json.dumps(report))
    lines = results.compare_table(path).splitlines()
    assert lines[0].count("|") == lines[1].count("|") == 9
    assert lines[2] == "| RM + PPO | 75.0% (±5.0%) | +20.0 | 0.50 | 130 | 2,560 | 4 | 12.8 |"
    assert lines[3] == "| DPO | 90.0% | - | 1.10 | 20 | 0 (9,600 pairs) | 2 | 6.4 |"
    readme = tmp_path / "README.md"
    readme.write_text(f"{results.TABLE_START}\n{results.TABLE_END}\n{results.LAB_START}\n"
                      f"{results.LAB_END}\n{results.COMPARE_START}\nSTALE\n"
                      f"{results.COMPARE_END}\n")
    (tmp_path / "res").mkdir()
    assert results.update_readme(readme, tmp_path / "res", lab_file=path)
    assert "STALE" not in readme.read_text() and lines[3] in readme.read_text()
    path.write_text(json.dumps(LAB_REPORT))
    with pytest.raises(ValueError, match="no 'compare' list"):
        results.compare_table(path)


def test_stored_compare_table_matches_the_readme():
    """The README's head-to-head table is generated from the stored lab report."""
    assert "compare" in results.load_lab(), "rerun make lab-bench (it stores --compare)"
    readme = (results.LAB_FILE.parents[2] / "README.md").read_text(encoding="utf-8")
    assert (f"{results.COMPARE_START}\n{results.compare_table(results.LAB_FILE)}\n"
            f"{results.COMPARE_END}") in readme
