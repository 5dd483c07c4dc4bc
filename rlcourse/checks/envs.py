"""Checks for notebook 00 (orientation: the agent-environment loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from rlcourse import envs
from rlcourse.exercises import CheckFailure, expect_close, expect_true, register

NB = "00_orientation"
# Shortest way out of the default GridWorld: right x3, down, right, down, down (7 steps).
EXIT_ACTIONS = np.array([1, 1, 1, 2, 0, 2, 0, 0, 1, 2, 1, 1, 2, 0, 2, 0, 1, 1, 1, 0])
_FIELDS = ("observations", "actions", "rewards", "terminated", "truncated", "final_observation")


class _WatchedPolicy:
    """Wraps a policy: records what it was shown and stops a loop that never ends."""

    def __init__(self, policy: Callable[[Any], Any], limit: int, what: str):
        self.policy, self.limit, self.what, self.seen = policy, limit, what, []

    def __call__(self, obs: Any) -> Any:
        self.seen.append(np.array(obs, copy=True))
        if len(self.seen) > self.limit:
            raise CheckFailure(f"{self.what}: the policy was called more than {self.limit} times"
                               " in one episode: does your loop stop when `truncated` is True?")
        return self.policy(obs)


def _run(fn: Callable, env: gym.Env, policy: Callable, seed: int | None, limit: int, what: str):
    watched = _WatchedPolicy(policy, limit, what)
    traj = fn(env, watched, seed=seed)
    missing = [f for f in _FIELDS if not hasattr(traj, f)]
    expect_true(not missing, f"{what}: run_episode must return envs.Trajectory(...); the result "
                             f"({type(traj).__name__}) has no {', '.join(missing)}")
    expect_true(len(watched.seen) == len(traj.rewards),
                f"{what}: the policy was called {len(watched.seen)} times but the trajectory has "
                f"{len(traj.rewards)} rewards; store one reward per action, including the last")
    return traj, np.asarray(watched.seen)


def _same_as_reference(fn: Callable, make_env: Callable[[], gym.Env], policy: Callable,
                       seed: int, what: str) -> None:
    expected = envs.run_episode(make_env(), policy, seed=seed)
    got, seen = _run(fn, make_env(), policy, seed, 10 * len(expected) + 10, what)
    expect_close(len(got.rewards), len(expected), f"{what}: episode length")
    expect_close(got.observations, expected.observations, f"{what}: observations", atol=1e-6)
    expect_close(got.observations, seen, f"{what}: observations must be what the policy saw")
    expect_close(got.actions, expected.actions, f"{what}: actions")
    expect_close(got.rewards, expected.rewards, f"{what}: rewards")
    expect_close(got.terminated, expected.terminated, f"{what}: terminated flags")
    expect_close(got.truncated, expected.truncated, f"{what}: truncated flags")
    expect_close(got.final_observation, expected.final_observation, f"{what}: final_observation")


@register("envs.run_episode", notebook=NB, reference=envs.run_episode,
          hint="reset(seed=seed) once; then repeat: a = policy(obs), step(a), store (obs, a, "
               "reward, terminated, truncated), obs = next obs, until terminated OR truncated.")
def _(fn):
    exit_policy = envs.policy_from_table(EXIT_ACTIONS)
    env = gym.make("rlcourse/GridWorld-v0")
    traj, _ = _run(fn, env, exit_policy, 0, 50, "GridWorld, shortest path to the exit")
    expect_close(traj.observations, [0, 1, 2, 3, 8, 9, 14],
                 "GridWorld exit path: observations (the state *before* each action)")
    expect_close(traj.actions, [1, 1, 1, 2, 1, 2, 2], "GridWorld exit path: actions")
    expect_close(traj.rewards, [0, 0, 0, 0, 0, 0, 10],
                 "GridWorld exit path: rewards (rewards[t] follows actions[t])")
    expect_close(traj.terminated, [0, 0, 0, 0, 0, 0, 1], "GridWorld exit path: terminated")
    expect_close(traj.truncated, np.zeros(7), "GridWorld exit path: truncated")
    expect_close(traj.final_observation, 19, "GridWorld exit path: final_observation")

    short = gym.make("rlcourse/GridWorld-v0", max_episode_steps=4)
    traj, _ = _run(fn, short, lambda s: 0, 0, 40, "GridWorld with max_episode_steps=4, "
                   "always 'up'")
    expect_close(traj.rewards, [-5, -5, -5, -5], "time limit 4, always 'up': rewards")
    expect_close(traj.terminated, np.zeros(4), "time limit 4, always 'up': terminated")
    expect_close(traj.truncated, [0, 0, 0, 1], "time limit 4, always 'up': truncated")

    _same_as_reference(fn, lambda: gym.make("rlcourse/GridWorld-v0", slip=0.5), exit_policy,
                       7, "slippery GridWorld (slip=0.5), seed=7")
    _same_as_reference(fn, lambda: gym.make("rlcourse/GridWorld-v0", slip=0.5), exit_policy,
                       8, "slippery GridWorld (slip=0.5), seed=8")
    _same_as_reference(fn, lambda: gym.make("CartPole-v1"), lambda o: int(o[2] + o[3] > 0),
                       3, "CartPole-v1, seed=3, push towards the fall")


@register("envs.episode_return", notebook=NB, reference=envs.episode_return,
          hint="The return starts at the first reward: each later reward is discounted once "
               "more than the one before it, and the first one not at all.")
def _(fn):
    cases = [([1.0, 2.0, 3.0], 1.0, 6.0), ([1.0, 2.0, 3.0], 0.5, 2.75),
             ([0.0, 0.0, 10.0], 0.9, 8.1), ([5.0], 0.0, 5.0), ([-5.0, 0.0, 10.0], 0.0, -5.0),
             ([], 0.9, 0.0), (np.array([2.0, -1.0, 4.0, 1.0]), 0.5, 2.625)]
    for rewards, gamma, expected in cases:
        got = fn(rewards, gamma)
        expect_close(got, expected, f"episode_return({np.round(rewards, 3).tolist()}, "
                                    f"gamma={gamma})")
    expect_close(fn([1.0, 1.0, 1.0, 1.0]), 4.0, "episode_return([1, 1, 1, 1]) with the default "
                                                 "gamma=1")


@register("envs.one_step_targets", notebook=NB, reference=envs.one_step_targets,
          hint="For each flag, ask whether rewards would have followed s_{t+1}: if the task "
               "really ended there, its future value is zero; if only a time limit stopped "
               "the episode, the future still counts.")
def _(fn):
    cases = [
        ("termination at the end", [1.0, 0.0, 2.0], [5.0, 6.0, 7.0], [0, 0, 1], [0, 0, 0], 0.9,
         [5.5, 5.4, 2.0]),
        ("truncation at the end", [1.0, 1.0], [3.0, 4.0], [0, 0], [0, 1], 0.5, [2.5, 3.0]),
        ("terminated and truncated in the same step", [-5.0], [8.0], [1], [1], 0.9, [-5.0]),
        ("a batch of steps from several episodes", [1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0],
         [0, 1, 0, 0], [0, 0, 1, 0], 0.5, [6.0, 2.0, 18.0, 24.0]),
        ("gamma = 0", [1.0, 2.0], [100.0, 100.0], [0, 0], [0, 1], 0.0, [1.0, 2.0]),
    ]
    for what, r, v, term, trunc, gamma, expected in cases:
        got = fn(np.array(r), np.array(v), np.array(term, bool), np.array(trunc, bool), gamma)
        expect_close(got, expected, f"{what}: rewards={r}, next_values={v}, terminated={term}, "
                                    f"truncated={trunc}, gamma={gamma}")
