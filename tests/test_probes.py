"""Probe environments: valid gymnasium envs whose stated answers match brute-force returns."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlcourse import probes

GAMMA = 0.9


@pytest.mark.parametrize("name", list(probes.PROBES))
def test_probes_are_valid_gymnasium_envs(name):
    env = probes.make_probe(name)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (1,) and obs.dtype == np.float32 and env.observation_space.contains(obs)


def _rollout(env, first_action: int, seed: int, gamma: float) -> tuple[float, float, int]:
    """(first observation, discounted return, length) of one episode that takes
    ``first_action`` first and action 0 afterwards; it must end by termination."""
    obs, _ = env.reset(seed=seed)
    first, ret, t, action = float(obs[0]), 0.0, 0, first_action
    while True:
        obs, r, terminated, truncated, _ = env.step(action)
        ret += gamma ** t * r
        t += 1
        assert not truncated, "probes end by termination only"
        if terminated:
            return first, ret, t
        action = 0


@pytest.mark.parametrize("name", list(probes.PROBES))
def test_true_q_matches_monte_carlo_returns(name):
    env = probes.make_probe(name)
    seen = {}
    for a in range(env.action_space.n):
        for seed in range(60):
            first, ret, length = _rollout(env, a, seed, GAMMA)
            assert length <= 2
            seen.setdefault((first, a), []).append(ret)
    assert {obs for obs, _ in seen} == set(env.observations()) - ({1.0} if name == "two_step"
                                                                   else set())
    for (obs, a), rets in seen.items():
        assert np.allclose(rets, rets[0]), "rewards are deterministic given obs and action"
        assert rets[0] == pytest.approx(env.true_q(obs, GAMMA)[a])
    for obs in env.observations():
        assert env.true_value(obs, GAMMA) == pytest.approx(max(env.true_q(obs, GAMMA)))


def test_two_step_discount_second_state_and_gamma():
    env = probes.TwoStepDiscount()
    obs, _ = env.reset(seed=0)
    obs, r, terminated, _, _ = env.step(0)
    assert float(obs[0]) == 1.0 and r == 0.0 and not terminated
    _, r, terminated, _, _ = env.step(0)
    assert r == 1.0 and terminated
    assert env.true_value(0.0, 0.5) == 0.5 and env.true_value(1.0, 0.5) == 1.0
    assert env.true_value(0.0, 1.0) == 1.0  # undiscounted: the first state is worth 1 too


def test_the_last_probe_needs_the_observation_to_pick_the_action():
    oa = probes.ObservationActionReward()
    assert np.argmax(oa.true_q(-1.0)) != np.argmax(oa.true_q(1.0))
    assert probes.ActionReward().true_q(0.0).tolist() == [1.0, -1.0]


def test_random_observations_depend_on_the_seed():
    env = probes.ObservationReward()
    firsts = {float(env.reset(seed=s)[0][0]) for s in range(20)}
    assert firsts == {-1.0, 1.0}
    again = [float(env.reset(seed=3)[0][0]) for _ in range(2)]
    assert again[0] == again[1]


def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match="unknown probe 'cartpole'; choose from constant"):
        probes.make_probe("cartpole")
    env = probes.make_probe("action")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="takes actions in Discrete\\(2\\), got 2"):
        env.step(2)
    with pytest.raises(ValueError, match="never shows observation 0.5"):
        env.true_q(0.5)
    with pytest.raises(ValueError, match="gamma must lie in"):
        probes.make_probe("two_step").true_value(0.0, 1.5)


def test_probe_ids_make_vector_envs_with_thresholds():
    """Each id builds a vector env; its threshold is the optimal undiscounted expected return,
    measured by playing the optimal actions from true_q on fresh episodes."""
    from rlcourse import deeprl, probes

    for name, env_id in probes.PROBE_IDS.items():
        envs = deeprl.make_vec_env(env_id, 4, seed=0)
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (4, 1)
        envs.close()
        env, total = probes.make_probe(name), 0.0
        for ep in range(200):
            o, _ = env.reset(seed=ep)
            done = False
            while not done:
                a = int(np.argmax(env.true_q(float(o[0]), gamma=1.0)))
                o, r, term, trunc, _ = env.step(a)
                total += r
                done = term or trunc
        assert abs(total / 200 - deeprl.reward_threshold(env_id)) < 0.15, name
    probes.register_probes()  # a second call is harmless
