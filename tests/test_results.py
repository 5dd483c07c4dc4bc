"""Notebook result records and the README table built from them."""

from __future__ import annotations

import json

import pytest

import rlcourse
from rlcourse import exercises, results

ARGS = dict(title="Bandits", topics="UCB", headline="1.40 reward", metrics={"r": 1.40123456})


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
    folder = tmp_path / "res"
    monkeypatch.setenv(results.RESULTS_ENV, str(folder))
    rlcourse.setup(seed=0, verbose=False)
    results.record("01_bandits", **ARGS)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results.TABLE_START}\nold\n{results.TABLE_END}\noutro\n")
    assert results.update_readme(readme, folder) is True
    text = readme.read_text()
    assert "| 01 | [Bandits](notebooks/01_bandits.ipynb) | UCB |" in text
    assert "1.40 reward" in text and "old" not in text and text.endswith("outro\n")
    assert results.update_readme(readme, folder) is False
    results.main(["--results", str(folder), "--bench", str(tmp_path / "no-bench"),
                  "--update-readme", str(readme)])
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
    folder = tmp_path / "res"
    monkeypatch.setenv(results.RESULTS_ENV, str(folder))
    rlcourse.setup(seed=0, verbose=False)
    results.record("01_bandits", **ARGS)
    readme = tmp_path / "README.md"
    readme.write_text(f"{results.TABLE_START}\n{results.TABLE_END}\n"
                      f"{results.BENCH_START}\nold\n{results.BENCH_END}\n")
    results.main(["--results", str(folder), "--bench", str(bench), "--update-readme", str(readme)])
    assert "2,000" in readme.read_text() and "old" not in readme.read_text()


def test_load_bench_reads_the_stored_runs(tmp_path):
    stored = results.load_bench("ppo", "CartPole-v1")
    assert stored["algo"] == "ppo" and stored["env"] == "CartPole-v1"
    assert len(stored["seeds"]) >= 5
    (tmp_path / "dqn-CartPole-v1.json").write_text(json.dumps({"algo": "dqn"}))
    assert results.load_bench("dqn", "CartPole-v1", tmp_path) == {"algo": "dqn"}
    with pytest.raises(FileNotFoundError, match="stored: dqn-CartPole-v1"):
        results.load_bench("sac", "Pendulum-v1", tmp_path)
