"""Part II plumbing: vector envs with next-step autoreset, episode bookkeeping, evaluation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcourse import deeprl


def test_vector_cartpole_uses_the_numpy_implementation_and_is_seeded():
    a = deeprl.make_vec_env("CartPole-v1", 3, seed=5)
    b = deeprl.make_vec_env("CartPole-v1", 3, seed=5)
    assert type(a).__name__ == "CartPoleVectorEnv"
    oa, _ = a.reset(seed=5)
    ob, _ = b.reset(seed=5)
    np.testing.assert_array_equal(oa, ob)
    assert deeprl.check_env_for("PPO", a) == (4, 2)
    assert isinstance(deeprl.make_vec_env("Acrobot-v1", 2, seed=0), gym.vector.SyncVectorEnv)


def test_tracker_matches_single_env_episodes():
    """Autoreset steps are flagged invalid, carry no reward, and episodes are counted once."""
    n, seed = 3, 11
    envs = deeprl.make_vec_env("CartPole-v1", n, seed=seed)
    envs.reset(seed=seed)
    tracker, mask = deeprl.EpisodeTracker(n), deeprl.StepMask(n)
    invalid_rewards = []
    for _ in range(200):
        obs, r, te, tu, _ = envs.step(np.ones(n, dtype=np.int64))  # always push right
        valid = mask.step(te, tu)
        invalid_rewards += list(r[~valid])
        tracker.update(r, te, tu, valid)
    assert invalid_rewards and all(x == 0 for x in invalid_rewards)
    assert tracker.returns == [float(x) for x in tracker.lengths]  # +1 per real step
    # every vector step is either a real transition of some episode or an autoreset step
    assert sum(tracker.lengths) + int(tracker._len.sum()) + len(invalid_rewards) == 200 * n
    # each finished episode is followed by one autoreset step, unless it ended on the last step
    assert len(tracker.returns) == len(invalid_rewards) + int(mask.prev_done.sum())


def test_tracker_solved_needs_a_full_window():
    t = deeprl.EpisodeTracker(1, threshold=1.0, window=2)
    one, no = np.array([True]), np.array([False])
    t.update(np.array([5.0]), one, no, one)
    assert not t.solved and t.running_mean == 5.0
    t.update(np.array([5.0]), one, no, one)
    assert t.solved
    assert np.isnan(deeprl.EpisodeTracker(1).running_mean)


def test_evaluate_a_hand_written_controller():
    def push_towards_pole(obs: torch.Tensor) -> torch.Tensor:
        return (obs[:, 2] + obs[:, 3] > 0).long()

    returns = deeprl.evaluate("CartPole-v1", push_towards_pole, episodes=20, seed=1)
    assert returns.shape == (20,) and returns.mean() > 400
    assert deeprl.evaluate("CartPole-v1", lambda o: torch.zeros(len(o), dtype=torch.long),
                           episodes=5).mean() < 15


def test_mlp_shapes_and_init():
    net = deeprl.mlp([4, 16, 3], out_gain=0.01)
    assert net(torch.zeros(7, 4)).shape == (7, 3)
    assert float(net[-1].weight.abs().max()) < 0.05 and float(net[0].bias.abs().sum()) == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown environment 'CartPol-v1'"):
        deeprl.make_vec_env("CartPol-v1", 2, seed=0)
    with pytest.raises(TypeError, match="DQN needs a Discrete space, got Box"):
        deeprl.check_env_for("DQN", deeprl.make_vec_env("Pendulum-v1", 2, seed=0))
    with pytest.raises(TypeError, match="flat Box observation"):
        deeprl.check_env_for("DQN", deeprl.make_vec_env("FrozenLake-v1", 2, seed=0))
    with pytest.raises(ValueError, match="num_envs"):
        deeprl.make_vec_env("CartPole-v1", 0, seed=0)
    with pytest.raises(ValueError, match="layer widths"):
        deeprl.mlp([4])


def test_config_with_overrides_and_unknown_names():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cfg:
        lr: float = 1e-3
        hidden: tuple[int, ...] = (64, 64)

    cfg = deeprl.config_with(Cfg(), "TOY", {"lr": 0.1, "hidden": [8]})
    assert cfg == Cfg(lr=0.1, hidden=(8,))
    with pytest.raises(TypeError, match=r"unknown TOY hyperparameter\(s\) \['learning_rate'\]"):
        deeprl.config_with(Cfg(), "TOY", {"learning_rate": 0.1})
