"""PPO's update from its parts, and the probe harness with its planted bugs."""

from __future__ import annotations

import copy

import pytest
import torch

from rlcourse import deeprl, ppo, ppo_probes


def _rollout(seed: int = 0):
    """A real CartPole rollout of a fresh agent, with its advantages and targets."""
    torch.manual_seed(seed)
    cfg = ppo.make_config(num_envs=4, rollout_steps=48)
    envs = deeprl.make_vec_env("CartPole-v1", cfg.num_envs, seed)
    obs, _ = envs.reset(seed=seed)
    run = ppo._Run(envs, obs, deeprl.StepMask(cfg.num_envs),
                   deeprl.EpisodeTracker(cfg.num_envs), 0.0)
    agent = ppo.ActorCritic(4, 2, 32)
    ro = ppo.collect_rollout(agent, run, cfg.rollout_steps, torch.Generator().manual_seed(seed))
    envs.close()
    assert not bool(ro.valid.all())  # autoreset steps are present and must be dropped
    return agent, ro, *ppo.advantages_and_targets(ro, cfg.gamma, cfg.lam)


@pytest.mark.parametrize("overrides", [{}, {"target_kl": 1e-4}, {"max_grad_norm": None},
                                       {"vf_clip": 0.2, "norm_adv": False}])
def test_staged_update_is_ppo_update_bit_for_bit(overrides):
    agent, ro, adv, targets = _rollout()
    cfg = ppo.make_config(epochs=3, minibatches=4, **overrides)
    results = []
    for fn in (ppo.update, ppo_probes.staged_update):
        a = copy.deepcopy(agent)
        opt = torch.optim.Adam(a.parameters(), lr=2.5e-3, eps=1e-5)
        stats = fn(a, opt, ro, adv, targets, cfg, torch.Generator().manual_seed(5))
        results.append((a, stats))
    (ref, ref_stats), (mine, stats) = results
    for (name, p), q in zip(ref.named_parameters(), mine.parameters()):
        assert torch.equal(p, q), name
    for key in ("kl", "approx_kl", "clip_fraction", "entropy", "value_loss", "epochs",
                "grad_norm"):
        assert stats[key] == ref_stats[key], key
    if "target_kl" in overrides:
        assert stats["epochs"] < cfg.epochs


def test_staged_update_refuses_a_separate_critic_schedule():
    agent, ro, adv, targets = _rollout()
    cfg = ppo.make_config(critic_epochs=2)
    opt = torch.optim.Adam(agent.parameters())
    with pytest.raises(ValueError, match="one loss"):
        ppo_probes.staged_update(agent, opt, ro, adv, targets, cfg, torch.Generator())


def test_probe_run_passes_the_right_update_and_flags_planted_bugs():
    ok = ppo_probes.probe_run("observation_action")
    assert ok.passed and ok.p_right is not None and min(ok.p_right) >= ppo_probes.POLICY_MIN
    assert ok.true_values == [1.0, 1.0] and ok.observations == [-1.0, 1.0]
    flipped = ppo_probes.probe_run("action", ppo_probes.PLANTED_BUGS["advantage sign flipped"])
    assert not flipped.policy_ok and max(flipped.p_right) < 0.1  # it learns the wrong action
    no_value = ppo_probes.probe_run("constant", ppo_probes.PLANTED_BUGS["value loss left out"])
    assert not no_value.value_ok and no_value.p_right is None
    boot = ppo_probes.probe_run("two_step", ppo_probes.PLANTED_BUGS["termination bootstrapped"])
    assert not boot.value_ok and max(boot.values) > 1.5


def test_probe_run_rejects_unknown_probes_and_table_needs_updates():
    with pytest.raises(ValueError, match="unknown probe"):
        ppo_probes.probe_run("cartpole")
    with pytest.raises(ValueError):
        ppo_probes.probe_table({})
