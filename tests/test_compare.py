"""The comparison CLI: recorded episode ends, curves on a grid, first solve, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlcourse import compare, deeprl


def test_recording_tracker_stamps_episode_ends_with_env_steps():
    t = compare.RecordingTracker(2, threshold=1.0, window=2)
    ones, no = np.ones(2, dtype=bool), np.zeros(2, dtype=bool)
    t.update(np.array([1.0, 1.0]), no, no, ones)
    t.update(np.array([1.0, 2.0]), np.array([True, False]), no, ones)
    t.update(np.array([5.0, 1.0]), no, np.array([False, True]), np.array([False, True]))
    assert [row[:2] for row in t.log] == [(4, 2.0), (6, 4.0)]
    assert t.returns == [2.0, 4.0] and t.solved
    assert all(row[2] >= 0 and row[3] >= 0 for row in t.log)


def test_recording_tracker_is_restored_even_after_an_error():
    original = deeprl.EpisodeTracker
    with pytest.raises(RuntimeError):
        with compare.recording_tracker() as made:
            assert isinstance(deeprl.EpisodeTracker(3), compare.RecordingTracker)
            assert len(made) == 1
            raise RuntimeError("boom")
    assert deeprl.EpisodeTracker is original


def test_curve_on_grid_is_the_running_mean_at_each_x():
    rng = np.random.default_rng(0)
    steps = np.cumsum(rng.integers(1, 30, 60))
    returns = rng.normal(size=60)
    grid = np.linspace(0, steps[-1] + 50, 97)
    got = compare.curve_on_grid(list(steps), list(returns), grid, window=5)
    for x, y in zip(grid, got):
        done = [r for s, r in zip(steps, returns) if s <= x]
        if not done or x > steps[-1]:
            assert np.isnan(y)
        else:
            assert y == pytest.approx(np.mean(done[-5:]))
    with pytest.raises(ValueError, match="non-decreasing"):
        compare.curve_on_grid([3, 1], [0.0, 0.0], grid)
    assert np.isnan(compare.curve_on_grid([], [], grid)).all()


def test_first_reach_matches_a_scan():
    rng = np.random.default_rng(1)
    returns = np.concatenate([rng.uniform(0, 1, 40), rng.uniform(0.8, 1.2, 40)])
    steps = list(range(10, 810, 10))
    got = compare.first_reach(steps, list(returns), 0.9, window=10)
    scan = next(steps[i] for i in range(9, 80) if np.mean(returns[i - 9:i + 1]) >= 0.9)
    assert got == scan
    assert compare.first_reach(steps, list(returns), 5.0, window=10) is None
    assert compare.first_reach([1, 2], [9.0, 9.0], 1.0, window=3) is None
    with pytest.raises(ValueError, match="differ in length"):
        compare.first_reach([1, 2], [1.0], 1.0)


def test_run_curve_records_the_whole_run(tmp_path):
    report = compare.compare("CartPole-v1", 1, ("a2c", "ppo"), total_steps=2048)
    for r in report["runs"]:
        n = len(r["returns"])
        assert n > 10 and len(r["steps"]) == len(r["cpu_seconds"]) == len(r["wall_seconds"]) == n
        assert np.all(np.diff(r["steps"]) >= 0) and r["steps"][-1] <= r["total_steps"]
        assert np.all(np.diff(r["cpu_seconds"]) >= 0)
    table = compare.solve_table(report)
    assert set(table) == {"a2c", "ppo"} and table["ppo"]["steps"] == [None]
    path = tmp_path / "CartPole-v1.json"
    path.write_text(json.dumps(report))
    assert compare.load("CartPole-v1", tmp_path)["algos"] == ["a2c", "ppo"]


def test_clear_errors():
    with pytest.raises(ValueError, match="unknown algo"):
        compare.run_curve("sarsa", "CartPole-v1", 0)
    with pytest.raises(ValueError, match="unknown algos"):
        compare.compare("CartPole-v1", 1, ("dqn", "sarsa"))
    with pytest.raises(ValueError):
        compare.compare("CartPole-v1", 0)
    with pytest.raises(FileNotFoundError, match="python -m rlcourse.compare"):
        compare.load("CartPole-v1", "/nonexistent")
    with pytest.raises(SystemExit):
        compare.main(["--algos", "sarsa"])
    with pytest.raises(SystemExit):
        compare.main(["--seeds", "0"])


def test_stored_comparison_has_every_algorithm_and_seed():
    report = compare.load("CartPole-v1")
    assert report["algos"] == list(compare.DEFAULT_ALGOS) and report["seeds"] >= 5
    assert len(report["runs"]) == len(report["algos"]) * report["seeds"]
    for r in report["runs"]:
        assert len(r["steps"]) == len(r["returns"]) == len(r["cpu_seconds"]) > 20


def test_main_writes_out_file_through_a_temporary(tmp_path):
    from rlcourse import probes

    out = tmp_path / "sub" / "probe.json"
    assert compare.main(["--env", probes.PROBE_IDS["constant"], "--algos", "ppo",
                         "--seeds", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["algos"] == ["ppo"] and len(report["runs"]) == 1
    assert not list(out.parent.glob("*.tmp"))
