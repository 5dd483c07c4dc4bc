"""Tests of rlcourse.envs: the course GridWorld, the episode loop and its helpers."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlcourse import envs, mdp
from rlcourse.envs import GridWorld, Trajectory

EXIT = np.array([1, 1, 1, 2, 0, 2, 0, 0, 1, 2, 1, 1, 2, 0, 2, 0, 1, 1, 1, 0])
UP, RIGHT, DOWN, LEFT = range(4)


def _step_from(env: GridWorld, s: int, a: int):
    env.state = s
    return env.step(a)


# ---- GridWorld dynamics ----------------------------------------------------------------------

def test_gridworld_passes_the_gymnasium_env_checker():
    check_env(GridWorld(), skip_render_check=True)


def test_walls_and_edges_cost_five_and_keep_the_agent_in_place():
    env = GridWorld()
    env.reset(seed=0)
    assert _step_from(env, 0, UP) == (0, -5.0, False, False, {})  # top edge
    assert _step_from(env, 0, LEFT) == (0, -5.0, False, False, {})  # left edge
    assert _step_from(env, 5, RIGHT) == (5, -5.0, False, False, {})  # wall at (1, 1)
    assert _step_from(env, 3, RIGHT) == (3, -5.0, False, False, {})  # wall at (0, 4)
    assert _step_from(env, 0, RIGHT) == (1, 0.0, False, False, {})  # free cell


def test_exit_gives_ten_terminates_and_is_absorbing():
    env = GridWorld(step_reward=-1.0)
    env.reset(seed=0)
    assert _step_from(env, 14, DOWN) == (19, 10.0, True, False, {})
    assert env.step(UP) == (19, 0.0, True, False, {})  # the table says: absorbing, reward 0
    assert _step_from(env, 1, RIGHT)[1] == -1.0
    obs, reward, *_ = _step_from(env, 14, DOWN)
    assert isinstance(obs, int) and isinstance(reward, float)


def test_transition_table_is_a_distribution_and_matches_the_deterministic_moves():
    env = GridWorld()
    P, R, terminal = env.transition_table()
    np.testing.assert_allclose(P.sum(axis=2), 1.0)
    assert terminal.tolist() == [ch == "G" for ch in "".join(env.layout)]
    for s in range(20):
        if "".join(env.layout)[s] in "#G":
            continue
        for a in range(4):
            env.reset(seed=0)
            nxt, reward, *_ = _step_from(env, s, a)
            assert P[s, a, nxt] == 1.0 and R[s, a] == reward
    P[0, 0, 0] = 99.0  # a copy: editing it leaves the env alone
    assert env.transition_table()[0][0, 0, 0] == 1.0


@pytest.mark.parametrize("slip", [0.2, 0.6])
def test_slip_frequencies_match_the_transition_table(slip):
    """Sample many steps from several (s, a) and compare frequencies and mean reward with P, R."""
    env = GridWorld(slip=slip)
    env.reset(seed=123)
    P, R, _ = env.transition_table()
    n = 4000
    for s, a in [(0, RIGHT), (8, DOWN), (11, LEFT), (14, DOWN), (16, UP)]:
        counts, rewards = np.zeros(20), np.zeros(n)
        for i in range(n):
            nxt, rewards[i], *_ = _step_from(env, s, a)
            counts[nxt] += 1
        freq = counts / n
        sd = np.sqrt(P[s, a] * (1 - P[s, a]) / n)
        assert np.all(np.abs(freq - P[s, a]) <= 4 * sd + 1e-12), (s, a, freq, P[s, a])
        assert abs(rewards.mean() - R[s, a]) <= 4 * rewards.std() / np.sqrt(n) + 1e-12


def test_seeded_resets_reproduce_the_same_slips():
    def lengths(seed):
        env = gym.make("rlcourse/GridWorld-v0", slip=0.4)
        return [len(envs.run_episode(env, envs.policy_from_table(EXIT), seed=seed if i == 0
                                     else None)) for i in range(5)]

    assert lengths(3) == lengths(3)
    assert lengths(3) != lengths(4)


def test_registration_adds_a_time_limit_that_truncates():
    env = gym.make("rlcourse/GridWorld-v0")
    assert env.spec.max_episode_steps == 100 and isinstance(env.unwrapped, GridWorld)
    short = gym.make("rlcourse/GridWorld-v0", max_episode_steps=3)
    short.reset(seed=0)
    flags = [short.step(UP)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]


def test_render_marks_the_agent():
    env = GridWorld(render_mode="ansi")
    env.reset(seed=0)
    env.step(RIGHT)
    assert env.render().splitlines()[0] == "SA..#"


@pytest.mark.parametrize("layout,match", [
    (("S..", ".G"), "equal-length"),
    ((), "equal-length"),
    (("S.x", "..G"), "only"),
    (("S.S", "..G"), "only"),
    (("S..", "..."), "only"),
])
def test_invalid_layouts_are_rejected(layout, match):
    with pytest.raises(ValueError, match=match):
        GridWorld(layout)


def test_layout_as_one_string_is_a_type_error():
    with pytest.raises(TypeError, match="sequence of row strings"):
        GridWorld("S..G")


@pytest.mark.parametrize("slip", [-0.1, 1.5])
def test_slip_outside_unit_interval_is_rejected(slip):
    with pytest.raises(ValueError, match="slip must lie in"):
        GridWorld(slip=slip)


@pytest.mark.parametrize("action", [4, -1, 1.0, "up"])
def test_invalid_actions_are_rejected(action):
    env = GridWorld()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action"):
        env.step(action)


# ---- the loop ----------------------------------------------------------------------------------

def test_run_episode_records_the_exit_path_with_the_reward_convention():
    traj = envs.run_episode(gym.make("rlcourse/GridWorld-v0"), envs.policy_from_table(EXIT),
                            seed=0)
    assert traj.observations.tolist() == [0, 1, 2, 3, 8, 9, 14]
    assert traj.actions.tolist() == [1, 1, 1, 2, 1, 2, 2]
    assert traj.rewards.tolist() == [0, 0, 0, 0, 0, 0, 10]  # rewards[t] follows actions[t]
    assert traj.terminated.tolist() == [False] * 6 + [True] and not traj.truncated.any()
    assert traj.final_observation == 19 and len(traj) == 7
    assert traj.next_observations.tolist() == [1, 2, 3, 8, 9, 14, 19]


def test_run_episode_stops_at_truncation_and_handles_box_observations():
    traj = envs.run_episode(gym.make("rlcourse/GridWorld-v0", max_episode_steps=5), lambda s: UP,
                            seed=0)
    assert traj.rewards.tolist() == [-5.0] * 5 and traj.truncated[-1] and not traj.terminated.any()
    cart = envs.run_episode(gym.make("CartPole-v1"), lambda o: 0, seed=0)
    assert cart.observations.shape == (len(cart), 4) and cart.terminated[-1]
    assert cart.next_observations.shape == (len(cart), 4)
    np.testing.assert_array_equal(cart.next_observations[:-1], cart.observations[1:])


def test_run_episode_rejects_bad_policies_and_endless_episodes():
    env = gym.make("rlcourse/GridWorld-v0")
    with pytest.raises(ValueError, match="not in the action space Discrete"):
        envs.run_episode(env, lambda s: 7, seed=0)
    with pytest.raises(ValueError, match="not in the action space"):
        envs.run_episode(gym.make("CartPole-v1"), lambda o: np.array([0.3]), seed=0)
    with pytest.raises(TypeError, match="policy must be a function"):
        envs.run_episode(env, EXIT, seed=0)
    with pytest.raises(RuntimeError, match="TimeLimit"):
        envs.run_episode(GridWorld(), lambda s: UP, seed=0, max_steps=20)


def test_trajectory_validates_lengths_and_flags():
    with pytest.raises(ValueError, match="length mismatch"):
        Trajectory([0, 1], [1], [0.0], [False], [False])
    with pytest.raises(ValueError, match="terminated is True before the last step"):
        Trajectory([0, 1], [1, 1], [0.0, 0.0], [True, False], [False, False])
    with pytest.raises(ValueError, match="truncated is True before the last step"):
        Trajectory([0, 1], [1, 1], [0.0, 0.0], [False, False], [True, False])
    with pytest.raises(ValueError, match="no final_observation"):
        _ = Trajectory([0], [1], [0.0], [True], [False]).next_observations


# ---- returns and targets ------------------------------------------------------------------------

def test_episode_return_matches_a_plain_loop_and_the_recursion():
    rng = np.random.default_rng(0)
    for _ in range(20):
        r = rng.normal(size=rng.integers(1, 30))
        gamma = float(rng.uniform())
        loop, weight = 0.0, 1.0
        for x in r:
            loop += weight * x
            weight *= gamma
        g0 = envs.episode_return(r, gamma)
        assert g0 == pytest.approx(loop)
        # the recursion G_0 = r_1 + gamma G_1 (rewards[0] is the theory's r_1)
        assert g0 == pytest.approx(r[0] + gamma * envs.episode_return(r[1:], gamma))
    assert envs.episode_return([]) == 0.0
    assert envs.episode_return([1.0, 2.0]) == 3.0


@pytest.mark.parametrize("gamma", [-0.1, 1.01])
def test_episode_return_rejects_bad_gamma(gamma):
    with pytest.raises(ValueError, match="gamma must lie in"):
        envs.episode_return([1.0], gamma)


def test_one_step_targets_match_a_loop():
    rng = np.random.default_rng(1)
    r, v = rng.normal(size=50), rng.normal(size=50)
    term, trunc = rng.uniform(size=50) < 0.2, rng.uniform(size=50) < 0.2
    y = envs.one_step_targets(r, v, term, trunc, 0.9)
    expected = [r[t] + (0.0 if term[t] else 0.9 * v[t]) for t in range(50)]
    np.testing.assert_allclose(y, expected)
    with pytest.raises(ValueError, match="length mismatch"):
        envs.one_step_targets(r, v, term, trunc[:3], 0.9)


def test_bootstrapping_through_truncation_gives_the_right_fixed_point():
    """+1 per step forever, cut every L steps by a time limit: V = 1 / (1 - gamma).

    Treating the cut as termination instead gives V = 1 / (1 - gamma (1 - 1/L)).
    """
    gamma, L = 0.9, 5
    r, term = np.ones(L), np.zeros(L, bool)
    trunc = np.arange(L) == L - 1
    v_right = v_wrong = 0.0
    for _ in range(500):
        v_right = envs.one_step_targets(r, np.full(L, v_right), term, trunc, gamma).mean()
        v_wrong = envs.one_step_targets(r, np.full(L, v_wrong), trunc, trunc, gamma).mean()
    assert v_right == pytest.approx(1 / (1 - gamma))
    assert v_wrong == pytest.approx(1 / (1 - gamma * (1 - 1 / L)))


# ---- Monte-Carlo evaluation --------------------------------------------------------------------

def test_mc_evaluation_of_the_exit_policy_matches_value_iteration():
    env = gym.make("rlcourse/GridWorld-v0")
    P, R, terminal = env.unwrapped.transition_table()
    v_star, _, _ = mdp.value_iteration(mdp.TabularMDP(P, R, 0.9, terminal))
    stats = envs.evaluate_policy_mc(env, envs.policy_from_table(EXIT), episodes=3, gamma=0.9)
    np.testing.assert_allclose(stats.returns, v_star[0])
    assert v_star[0] == pytest.approx(10 * 0.9**6) and stats.std == 0.0
    assert stats.lengths.tolist() == [7, 7, 7]


def test_mc_evaluation_matches_the_exact_value_on_a_slippery_grid():
    env = gym.make("rlcourse/GridWorld-v0", slip=0.3)
    P, R, terminal = env.unwrapped.transition_table()
    pi = np.eye(4)[EXIT]
    exact = mdp.evaluate_policy(mdp.TabularMDP(P, R, 0.9, terminal), pi)[0]
    stats = envs.evaluate_policy_mc(env, envs.policy_from_table(pi), episodes=1500, seed=5,
                                    gamma=0.9)
    assert abs(stats.mean - exact) < 4 * stats.stderr


def test_mc_evaluation_is_reproducible_with_a_sampling_policy():
    env = gym.make("rlcourse/GridWorld-v0", max_episode_steps=30)
    sample = lambda s: env.action_space.sample()
    a = envs.evaluate_policy_mc(env, sample, episodes=20, seed=11)
    b = envs.evaluate_policy_mc(env, sample, episodes=20, seed=11)
    np.testing.assert_array_equal(a.returns, b.returns)
    assert envs.evaluate_policy_mc(env, sample, episodes=1).std == 0.0
    with pytest.raises(ValueError, match="episodes must be a positive integer"):
        envs.evaluate_policy_mc(env, sample, episodes=0)


# ---- tabular policies ---------------------------------------------------------------------------

def test_uniform_policy_and_its_discrete_space_requirement():
    pi = envs.uniform_policy(gym.make("rlcourse/GridWorld-v0"))
    assert pi.shape == (20, 4) and np.allclose(pi, 0.25)
    with pytest.raises(TypeError, match="needs a Discrete space, got Box"):
        envs.uniform_policy(gym.make("CartPole-v1"))


def test_policy_from_table_deterministic_and_sampled():
    assert envs.policy_from_table(EXIT)(np.int64(3)) == DOWN
    assert envs.policy_from_table(np.eye(4)[EXIT])(3) == DOWN
    stochastic = np.tile([0.1, 0.2, 0.3, 0.4], (20, 1))
    policy = envs.policy_from_table(stochastic, rng=np.random.default_rng(0))
    freq = np.bincount([policy(0) for _ in range(8000)], minlength=4) / 8000
    np.testing.assert_allclose(freq, stochastic[0], atol=0.02)
    with pytest.raises(ValueError, match="stochastic rows"):
        envs.policy_from_table(stochastic)
    with pytest.raises(TypeError, match="integer actions"):
        envs.policy_from_table(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="sum to 1"):
        envs.policy_from_table(np.full((20, 4), 0.5))


def test_render_policy_arrows():
    env = gym.make("rlcourse/GridWorld-v0")
    text = envs.render_policy_arrows(env, EXIT)
    assert text.splitlines() == ["→ → → ↓ #", "↓ # # → ↓", "→ → ↓ # ↓", "# → → → G"]
    assert envs.render_policy_arrows(env, np.eye(4)[EXIT]) == text
    assert envs.render_policy_arrows(env, envs.uniform_policy(env)).splitlines()[0] == "* * * * #"
    with pytest.raises(TypeError, match="needs a GridWorld"):
        envs.render_policy_arrows(gym.make("CartPole-v1"), EXIT)
    with pytest.raises(ValueError, match="pi must have shape"):
        envs.render_policy_arrows(env, EXIT[:5])
