"""Checks for notebook 03 (model-free prediction and control)."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from rlcourse import tabular
from rlcourse.exercises import (
    CheckFailure,
    call_with,
    expect_close,
    expect_true,
    expect_type,
    register,
)

NB = "03_model_free"


@register("tabular.td_error", notebook=NB, reference=tabular.td_error,
          hint="delta = reward + gamma * (1 - terminated) * next_value - value. gamma multiplies "
               "only V(s'), and nothing is bootstrapped from a terminal next state. Use "
               "arithmetic (no `if`) so that arrays work too.")
def _(fn: Callable) -> None:
    expect_close(fn(1.0, 0.5, 2.0, False, 0.9), 2.3,
                 "td_error(reward=1, value=0.5, next_value=2, terminated=False, gamma=0.9)")
    expect_close(fn(1.0, 0.5, 2.0, True, 0.9), 0.5,
                 "td_error(reward=1, value=0.5, next_value=2, terminated=True, gamma=0.9)")
    expect_close(fn(0.0, 3.0, 3.0, False, 1.0), 0.0,
                 "td_error(reward=0, value=3, next_value=3, terminated=False, gamma=1)")
    r, v, v2 = np.array([0.0, 1.0, -1.0]), np.array([1.0, 2.0, 0.0]), np.array([2.0, 0.0, 3.0])
    term = np.array([False, True, False])
    expect_close(fn(r, v, v2, term, 0.5), [0.0, -1.0, 0.5],
                 "arrays reward=[0, 1, -1], value=[1, 2, 0], next_value=[2, 0, 3], "
                 "terminated=[F, T, F], gamma=0.5")


@register("tabular.n_step_return", notebook=NB, reference=tabular.n_step_return,
          hint="With k = rewards.shape[-1]: sum_i gamma**i * rewards[..., i] (i = 0..k-1) plus "
               "gamma**k * (1 - terminated) * bootstrap. The first reward is not discounted "
               "and the bootstrap value is discounted k times.")
def _(fn: Callable) -> None:
    expect_close(fn(np.array([1.0, 2.0, 3.0]), 10.0, False, 0.5), 4.0,
                 "n_step_return(rewards=[1, 2, 3], bootstrap=10, terminated=False, gamma=0.5)")
    expect_close(fn(np.array([1.0, 2.0, 3.0]), 10.0, True, 0.5), 2.75,
                 "n_step_return(rewards=[1, 2, 3], bootstrap=10, terminated=True, gamma=0.5)")
    expect_close(fn(np.array([2.0]), 4.0, False, 0.9), 5.6,
                 "n_step_return(rewards=[2], bootstrap=4, terminated=False, gamma=0.9) "
                 "(n = 1 is the TD(0) target)")
    rewards = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])  # 3 runs, k = 2 rewards each
    term = np.array([False, True, False])
    expect_close(fn(rewards, np.array([1.0, 2.0, 0.0]), term, 0.9), [1.81, 0.9, 3.8],
                 "a batch: rewards=[[1, 0], [0, 1], [2, 2]] (k = 2 on the last axis), "
                 "bootstrap=[1, 2, 0], terminated=[F, T, F], gamma=0.9")
    boot = np.arange(12.0).reshape(4, 3)  # [4 step sizes, 3 runs], as in the sweep
    want = tabular.n_step_return(rewards, boot, term, 0.9)
    expect_close(fn(rewards, boot, term, 0.9), want,
                 "broadcasting: rewards of shape [3, 2] with bootstrap of shape [4, 3] "
                 "(expected a result of shape [4, 3])")


@register("tabular.sarsa_target", notebook=NB, reference=tabular.sarsa_target,
          hint="Bootstrap from the action the agent actually takes next: reward + gamma * "
               "q_next[next_action], and just the reward when the next state is terminal.")
def _(fn: Callable) -> None:
    q = np.array([1.0, 5.0, 3.0])
    cases = [(-1.0, 2, False, 0.9, 1.7), (-1.0, 2, True, 0.9, -1.0), (0.5, 0, False, 0.5, 1.0),
             (0.0, 1, False, 1.0, 5.0)]
    for reward, a, term, gamma, want in cases:
        expect_close(fn(reward, q.copy(), a, term, gamma), want,
                     f"sarsa_target(reward={reward}, q_next=[1, 5, 3], next_action={a}, "
                     f"terminated={term}, gamma={gamma})")


@register("tabular.q_learning_target", notebook=NB, reference=tabular.q_learning_target,
          hint="Bootstrap from the best next action whatever the agent does next: reward + "
               "gamma * max(q_next), and just the reward when the next state is terminal.")
def _(fn: Callable) -> None:
    cases = [(0.5, [1.0, -2.0, 4.0], False, 0.5, 2.5), (0.5, [1.0, -2.0, 4.0], True, 0.5, 0.5),
             (0.0, [-3.0, -1.0, -2.0], False, 1.0, -1.0), (-1.0, [2.0, 0.0], False, 0.9, 0.8)]
    for reward, q, term, gamma, want in cases:
        expect_close(fn(reward, np.array(q), term, gamma), want,
                     f"q_learning_target(reward={reward}, q_next={q}, terminated={term}, "
                     f"gamma={gamma})")


@register("tabular.importance_weights", notebook=NB, reference=tabular.importance_weights,
          hint="The weight says how much more likely the target policy is to take the action "
               "than the behaviour policy was. An action neither policy takes gets weight 0; "
               "one the target takes but the behaviour never does cannot be reweighted at all.")
def _(fn: Callable) -> None:
    expect_close(fn(np.array([0.5, 0.25, 0.25]), np.array([0.25, 0.5, 0.25])), [2.0, 0.5, 1.0],
                 "importance_weights(p=[0.5, 0.25, 0.25], q=[0.25, 0.5, 0.25])")
    expect_close(fn(np.array([0.0, 0.5, 0.5]), np.array([0.0, 0.25, 0.75])), [0.0, 2.0, 2 / 3],
                 "importance_weights(p=[0, 0.5, 0.5], q=[0, 0.25, 0.75]) (p = q = 0 gives 0)")
    p2, q2 = np.array([[0.1, 0.9], [0.6, 0.4]]), np.array([[0.2, 0.8], [0.3, 0.7]])
    expect_close(fn(p2, q2), p2 / q2, "2-D arrays p=[[0.1, 0.9], [0.6, 0.4]], "
                                      "q=[[0.2, 0.8], [0.3, 0.7]]")
    for p, q in (([0.5, 0.5], [1.0, 0.0]), ([0.0, 0.5, 0.5], [0.0, 0.0, 1.0])):
        _expect_support_error(fn, p, q)


def _expect_support_error(fn: Callable, p: list[float], q: list[float]) -> None:
    try:
        got = fn(np.array(p), np.array(q))
    except ValueError:
        return
    raise CheckFailure(f"importance_weights(p={p}, q={q}): expected a ValueError (q = 0 where "
                       f"p > 0 breaks the support condition), got {got!r}")


@register("tabular.shaped_reward", notebook=NB, reference=tabular.shaped_reward,
          hint="r' = reward + gamma * (1 - terminated) * phi_next - phi: gamma multiplies the "
               "potential of the NEXT state, and a terminal next state has potential 0.")
def _(fn: Callable) -> None:
    expect_close(fn(1.0, -3.0, -2.0, False, 0.9), 2.2,
                 "shaped_reward(reward=1, phi=-3, phi_next=-2, terminated=False, gamma=0.9)")
    expect_close(fn(1.0, -3.0, -2.0, True, 0.9), 4.0,
                 "shaped_reward(reward=1, phi=-3, phi_next=-2, terminated=True, gamma=0.9)")
    expect_close(fn(0.0, 2.0, 2.0, False, 1.0), 0.0,
                 "shaped_reward(reward=0, phi=2, phi_next=2, terminated=False, gamma=1)")
    expect_close(fn(np.array([0.0, 10.0]), np.array([1.0, 4.0]), np.array([2.0, 5.0]),
                    np.array([False, True]), 0.5), [0.0, 6.0],
                 "arrays reward=[0, 10], phi=[1, 4], phi_next=[2, 5], terminated=[F, T], "
                 "gamma=0.5")


# ---- epsilon-greedy and one Q-learning episode -----------------------------------------------

def _action_stream(fn: Callable, q_row: np.ndarray, epsilon: float, seed: int, n: int
                   ) -> tuple[list[int], float]:
    """``n`` actions from ``fn`` with one generator, then the generator's next random number."""
    rng = np.random.default_rng(seed)
    acts = [fn(q_row, epsilon, rng) for _ in range(n)]
    return acts, float(rng.random())


@register("tabular.epsilon_greedy", notebook=NB, reference=tabular.epsilon_greedy,
          hint="Draw u = rng.random() first. If u < epsilon return int(rng.integers(A)) (any "
               "action, the greedy ones included). Otherwise best = np.flatnonzero(q_row == "
               "q_row.max()) and return int(best[rng.integers(len(best))]): a tie is broken at "
               "random, never always towards the first action.")
def _(fn: Callable) -> None:
    rows = {"[1, 3, 2]": [1.0, 3.0, 2.0], "[0, 0, 0, 0] (all tied)": [0.0, 0.0, 0.0, 0.0],
            "[-1, 5, -2, 5] (two tied)": [-1.0, 5.0, -2.0, 5.0],
            "[2, -4] (two actions)": [2.0, -4.0]}
    for text, row in rows.items():
        for epsilon in (0.0, 0.1, 0.5, 1.0):
            q = np.array(row)
            got, got_next = _action_stream(fn, q, epsilon, 7, 60)
            want, want_next = _action_stream(tabular.epsilon_greedy, q.copy(), epsilon, 7, 60)
            what = f"60 calls with q_row={text}, epsilon={epsilon}, rng=default_rng(7)"
            expect_true(all(isinstance(a, (int, np.integer)) for a in got),
                        f"{what}: return a Python int, got {type(got[0]).__name__}")
            expect_true(np.array_equal(q, row), f"{what}: your function changed q_row")
            if got != want:
                i = next(j for j, (a, b) in enumerate(zip(got, want)) if a != b)
                raise CheckFailure(f"{what}: call {i + 1} returned action {got[i]}, the contract "
                                   f"gives {want[i]} (first 12: expected {want[:12]}, got "
                                   f"{got[:12]})")
            expect_true(got_next == want_next,
                        f"{what}: same actions, but your function drew a different amount of "
                        "random numbers (one rng.random(), then one rng.integers per call)")


# A 3 x 3 maze: start top left, exit bottom right (4 moves), two walls; -1 per step, -5 for a bump.
_LAYOUT = ("S.#", "...", "#.G")


class _StrictEnd(gym.Wrapper):
    """Fails the check when an episode function steps on after the end of an episode."""

    def __init__(self, env: gym.Env, cap: int = 1000):
        super().__init__(env)
        self.cap, self.over, self.n = cap, True, 0

    def reset(self, **kwargs):
        self.over, self.n = False, 0
        return self.env.reset(**kwargs)

    def step(self, action):
        if self.over:
            raise CheckFailure("env.step() was called after the episode had ended (terminated "
                               "or truncated was True) or before env.reset(): reset once at the "
                               "start, and stop the loop as soon as either flag is set")
        self.n += 1
        if self.n > self.cap:
            raise CheckFailure(f"the episode ran past {self.cap} steps in a 3x3 maze")
        out = self.env.step(action)
        self.over = bool(out[2] or out[3])
        return out


def _maze(limit: int) -> gym.Env:
    from rlcourse.envs import GridWorld

    return _StrictEnd(gym.wrappers.TimeLimit(GridWorld(_LAYOUT, step_reward=-1.0), limit))


def _episode_scenarios() -> list[tuple[str, np.ndarray, float, int, int]]:
    """(description, Q0, epsilon, time limit, episodes) for the exact comparison."""
    q_rand = np.random.default_rng(5).normal(0.0, 2.0, size=(9, 4))
    q_rand[[2, 6]] = 0.0  # wall cells are never visited
    return [("Q = 0 everywhere (every greedy choice is a tie), epsilon=0.2, time limit 12",
             np.zeros((9, 4)), 0.2, 12, 3),
            ("random Q (the exit's row too, so a bootstrap from it shows), epsilon=0.1, "
             "time limit 12", q_rand, 0.1, 12, 4),
            ("random Q, epsilon=0.3, time limit 3 (every episode is cut by the time limit, "
             "which must still bootstrap)", q_rand, 0.3, 3, 2)]


def _compare_episodes(fn: Callable, what: str, Q0: np.ndarray, epsilon: float, limit: int,
                      n_episodes: int) -> None:
    """Run ``fn`` and the reference side by side and compare returns, lengths and Q exactly."""
    Q, Q_ref = Q0.copy(), Q0.copy()
    env, env_ref = _maze(limit), _maze(limit)
    rng, rng_ref = np.random.default_rng(3), np.random.default_rng(3)
    for ep in range(1, n_episodes + 1):
        where = f"{what}; alpha=0.5, gamma=0.9, rng=default_rng(3); episode {ep}"
        before = Q.copy()
        out = call_with(fn, where, env, Q, 0.5, 0.9, epsilon, rng)
        want = tabular.q_learning_episode(env_ref, Q_ref, 0.5, 0.9, epsilon, rng_ref)
        expect_type(out, tuple, f"{where}: the result (episode return, number of steps)", 2)
        expect_true(int(out[1]) == want[1] and np.isclose(float(out[0]), want[0]),
                    f"{where}: expected return {want[0]:.1f} over {want[1]} steps, got "
                    f"return {float(out[0]):.1f} over {out[1]} steps")
        diff = np.argwhere(~np.isclose(Q, Q_ref, atol=1e-10, rtol=0.0))
        expect_true(not diff.size or not np.array_equal(Q, before),
                    f"{where}: the Q table passed in did not change; update it in place "
                    "(Q[s, a] += ...), not a copy")
        if diff.size:
            cells = ", ".join(f"Q[{s}, {a}]: expected {Q_ref[s, a]:.4f}, got {Q[s, a]:.4f}"
                              for s, a in diff[:3])
            raise CheckFailure(f"{where}: the Q table (updated in place) differs: {cells}")


@register("tabular.q_learning_episode", notebook=NB, reference=tabular.q_learning_episode,
          hint="s = env.reset()[0]; then each step: a = epsilon_greedy(Q[s], epsilon, rng) "
               "with the current Q, step, target = r when terminated (not when only truncated), "
               "else r + gamma * max(Q[s2]); Q[s, a] += alpha * (target - Q[s, a]); add r to the "
               "return; s = s2; stop when terminated or truncated. Update the Q passed in, "
               "never a copy.")
def _(fn: Callable) -> None:
    for what, Q0, epsilon, limit, n in _episode_scenarios():
        _compare_episodes(fn, what, Q0, epsilon, limit, n)
    from rlcourse.envs import GridWorld
    from rlcourse.mdp import TabularMDP, q_from_v, value_iteration

    maze = GridWorld(_LAYOUT, step_reward=-1.0)
    model = TabularMDP.from_gymnasium(maze, gamma=0.9)
    Q_star = q_from_v(model, value_iteration(model, 1e-12)[0])
    res = tabular.td_control(maze, "q_learning", 300, alpha=0.5, epsilon=1.0, gamma=0.9, seed=0,
                             max_steps=50, episode_fn=fn)
    expect_close(res.Q, Q_star, "learning: 300 episodes of uniformly random behaviour "
                                "(epsilon=1) in the 3x3 maze; Q compared with Q* from value "
                                "iteration", atol=1e-3, rtol=0.0)
