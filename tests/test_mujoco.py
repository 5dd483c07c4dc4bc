"""The MuJoCo task of the continuous-control benchmark (skipped without the `mujoco` extra)."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("mujoco")

from rlcourse import continuous, ppo, sac  # noqa: E402

ENV = "InvertedPendulum-v5"


def test_inverted_pendulum_uses_its_registered_threshold():
    assert continuous.reward_target(ENV) == 950.0


def test_sac_sees_terminations_on_a_task_that_terminates():
    """Unlike Pendulum-v1, the pole falls: SAC's targets must get terminated = True then."""
    flags = []

    def spy_target(r, q1, q2, logp, term, gamma, alpha):
        flags.append(int(term.sum()))
        return sac.sac_target(r, q1, q2, logp, term, gamma, alpha)

    r = sac.train(ENV, 0, progress=False, total_steps=300, learning_starts=200, batch_size=64,
                  hidden=(16, 16), log_every=100, target_fn=spy_target)
    assert len(flags) == 101 and sum(flags) > 0  # one update per step from step 200 to 300
    assert len(r.episode_returns) >= 5  # random early play drops the pole within ~10 steps
    assert all(math.isfinite(x) for x in r.history["alpha"])
    a = r.act(torch.zeros(3, 4))
    assert a.shape == (3, 1) and a.abs().max() <= 3.0


def test_ppo_gaussian_head_runs_on_mujoco():
    r = ppo.train(ENV, 0, progress=False, total_steps=512, num_envs=2, rollout_steps=128)
    assert r.total_steps >= 512 and len(r.episode_returns) > 0
    assert r.act(torch.zeros(5, 4)).shape == (5, 1)
