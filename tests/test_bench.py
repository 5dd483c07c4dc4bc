"""The benchmark CLI's report, on a stand-in algorithm and on a real PPO run."""

from __future__ import annotations

import json
import sys
import types

import pytest
import torch

from rlcourse import bench, deeprl

KEYS = {"algo", "env", "seeds", "median_steps_to_solve", "median_seconds_to_solve",
        "solved_fraction"}
SEED_KEYS = {"seed", "solved", "steps_to_solve", "seconds_to_solve", "eval_mean_return"}


def _fake_train(env_id, seed, *, device="cpu", progress=True):
    """Seeds 0 and 1 'solve' with a hand-written controller; seed 2 never does."""
    good = seed < 2

    def act(obs: torch.Tensor) -> torch.Tensor:
        if good:
            return (obs[:, 2] + obs[:, 3] > 0).long()
        return torch.zeros(len(obs), dtype=torch.long)

    return deeprl.TrainResult("fake", env_id, seed, good, 1000 * (seed + 1) if good else None,
                              0.5 * (seed + 1) if good else None, 5000, 3.0, act)


@pytest.fixture
def fake_algo(monkeypatch):
    module = types.ModuleType("fake_algo")
    module.train = _fake_train
    monkeypatch.setitem(sys.modules, "fake_algo", module)
    monkeypatch.setitem(bench.ALGOS, "ppo", "fake_algo")


def test_json_report(fake_algo, capsys):
    assert bench.main(["ppo", "--env", "CartPole-v1", "--seeds", "3", "--json",
                       "--eval-episodes", "10"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == KEYS and all(set(r) == SEED_KEYS for r in report["seeds"])
    assert [r["solved"] for r in report["seeds"]] == [True, True, False]
    assert report["median_steps_to_solve"] == 2000  # median of 1000, 2000, inf
    assert report["solved_fraction"] == pytest.approx(2 / 3)
    assert report["seeds"][0]["eval_mean_return"] > 400 > report["seeds"][2]["eval_mean_return"]


def test_table_report_and_unsolved_median(fake_algo, capsys):
    bench.main(["ppo", "--seeds", "1", "--first-seed", "2", "--eval-episodes", "5"])
    out = capsys.readouterr().out
    assert "median steps to solve: -" in out and "solved 0% of seeds" in out


def test_bad_arguments(fake_algo):
    with pytest.raises(SystemExit):
        bench.main(["sarsa"])
    with pytest.raises(SystemExit):
        bench.main(["ppo", "--seeds", "0"])
    with pytest.raises(ValueError, match="unknown environment"):
        bench.main(["ppo", "--env", "NoSuchEnv-v0", "--seeds", "1"])
    with pytest.raises(ValueError, match="reward_threshold"):
        bench.main(["ppo", "--env", "Blackjack-v1", "--seeds", "1"])


def _fake_box_train(env_id, seed, *, device="cpu", progress=True, **overrides):
    """A stand-in for a Box-action algorithm: zero torque, with a recorded curve."""
    _fake_box_train.calls.append(overrides)
    result = deeprl.TrainResult("fake", env_id, seed, False, None, None, 600, 1.0,
                                lambda obs: torch.zeros(len(obs), 1),
                                episode_returns=[-1000.0, -800.0, -600.0],
                                history={"episode_end_step": [200, 400, 600]})
    return result


def test_continuous_env_target_overrides_and_curve(monkeypatch, capsys):
    """Pendulum-v1 runs against the course target; per-env overrides reach train; curves."""
    _fake_box_train.calls = []
    module = types.ModuleType("fake_box")
    module.train = _fake_box_train
    monkeypatch.setitem(sys.modules, "fake_box", module)
    monkeypatch.setitem(bench.ALGOS, "sac", "fake_box")
    monkeypatch.setitem(bench.ENV_OVERRIDES, ("sac", "Pendulum-v1"), {"tau": 0.5})
    assert bench.main(["sac", "--env", "Pendulum-v1", "--seeds", "1", "--json",
                       "--eval-episodes", "2", "--curve-every", "250"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert _fake_box_train.calls == [{"tau": 0.5}]
    row = report["seeds"][0]
    assert row["curve"] == {"step": [250, 500], "running_mean": [-1000.0, -900.0]}
    assert row["eval_mean_return"] < -100  # zero torque never swings the pendulum up


def test_sac_and_the_pendulum_target_are_registered():
    assert bench.ALGOS["sac"] == "rlcourse.sac"
    assert bench.ENV_OVERRIDES[("ppo", "Pendulum-v1")]["gamma"] == 0.9
