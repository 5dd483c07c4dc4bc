"""Honesty of the notebook-00 checks: each fails on the blank and on plausible wrong answers."""

import numpy as np
import pytest

from rlcourse.envs import Trajectory
from tests.honesty import assert_verdict, honesty_cases


def _loop(env, policy, seed=None, *, stop_on_truncated=True, store_next=False, last_reward=True,
          reseed=True):
    """A run_episode with switchable bugs."""
    obs, _ = env.reset(seed=seed) if reseed else env.reset()
    rows = []
    while True:
        action = policy(obs)
        nxt, reward, term, trunc, _ = env.step(action)
        done = term or (trunc and stop_on_truncated)
        if last_reward or not done:
            rows.append((nxt if store_next else obs, action, reward, term, trunc))
        obs = nxt
        if done:
            break
    cols = list(zip(*rows)) if rows else [[]] * 5
    return Trajectory(*(np.asarray(c) for c in cols), final_observation=obs)


def _drops_last_reward(env, policy, seed=None):
    traj = _loop(env, policy, seed)
    rewards = traj.rewards.copy()
    rewards[-1] = 0.0  # "the terminal step has no reward"
    return Trajectory(traj.observations, traj.actions, rewards, traj.terminated, traj.truncated,
                      traj.final_observation)


WRONG_ANSWERS = {
    "envs.run_episode": {
        "zeroes-the-last-reward": _drops_last_reward,
        "skips-the-last-step": lambda env, policy, seed=None: _loop(env, policy, seed,
                                                                    last_reward=False),
        "loops-past-truncation": lambda env, policy, seed=None: _loop(env, policy, seed,
                                                                      stop_on_truncated=False),
        "stores-next-observation": lambda env, policy, seed=None: _loop(env, policy, seed,
                                                                        store_next=True),
        "ignores-the-seed": lambda env, policy, seed=None: _loop(env, policy, seed, reseed=False),
        "returns-a-dict": lambda env, policy, seed=None: vars(_loop(env, policy, seed)),
    },
    "envs.episode_return": {
        "discount-starts-at-gamma": lambda r, gamma=1.0: float(
            np.sum(gamma ** np.arange(1, len(r) + 1) * np.asarray(r, float))),
        "drops-last-reward": lambda r, gamma=1.0: float(
            np.sum(gamma ** np.arange(len(r) - 1) * np.asarray(r, float)[:-1])),
        "reversed-discount": lambda r, gamma=1.0: float(
            np.sum(gamma ** np.arange(len(r))[::-1] * np.asarray(r, float))),
        "mean-not-sum": lambda r, gamma=1.0: float(
            np.mean(gamma ** np.arange(len(r)) * np.asarray(r, float))) if len(r) else 0.0,
        "ignores-gamma": lambda r, gamma=1.0: float(np.sum(r)),
    },
    "envs.one_step_targets": {
        "masks-truncation-too": lambda r, v, term, trunc, gamma: (
            r + gamma * (1 - (term | trunc)) * v),
        "uses-truncated-not-terminated": lambda r, v, term, trunc, gamma: (
            r + gamma * (1 - trunc) * v),
        "no-mask": lambda r, v, term, trunc, gamma: r + gamma * v,
        "masks-the-reward-too": lambda r, v, term, trunc, gamma: (1 - term) * (r + gamma * v),
        "forgets-gamma": lambda r, v, term, trunc, gamma: r + (1 - term) * v,
    },
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_exercise_of_the_notebook_has_wrong_answers():
    from rlcourse import exercises

    exercises.get("envs.run_episode")  # loads the checks
    mine = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "00_orientation"}
    assert mine == set(WRONG_ANSWERS)


def test_check_messages_name_the_input():
    from rlcourse import exercises

    res = exercises.evaluate("envs.episode_return", WRONG_ANSWERS["envs.episode_return"][
        "discount-starts-at-gamma"])
    assert "episode_return([1.0, 2.0, 3.0], gamma=0.5)" in res.message
    assert "expected 2.75, got 1.375" in res.message
    res = exercises.evaluate("envs.run_episode",
                             WRONG_ANSWERS["envs.run_episode"]["loops-past-truncation"])
    assert "truncated" in res.message
