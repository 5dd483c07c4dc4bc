"""PPO: the W-01 worked example, the six clip cases, KL tools, TRPO math and the agent."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rlcourse import deeprl, ppo
from rlcourse.ppo import clipped_surrogate, clipped_value_loss, kl_k1, kl_k2, kl_k3

OLD = torch.tensor([0.20, 0.50, 0.30])
NEW = torch.tensor([0.25, 0.55, 0.20])
ADV = torch.tensor([1.3, 0.0, -0.5])


def test_w01_clipped_terms_and_loss():
    logp = NEW.log()
    loss, stats = clipped_surrogate(logp, OLD.log(), ADV, 0.2)
    ratio = NEW / OLD
    per_step = torch.minimum(ratio * ADV, ratio.clamp(0.8, 1.2) * ADV)
    torch.testing.assert_close(per_step, torch.tensor([1.56, 0.0, -0.4]))
    assert float(loss) == pytest.approx(-1.16 / 3, abs=1e-6)  # mean reduction: -0.38667
    assert stats["clip_fraction"] == pytest.approx(2 / 3)


def test_w01_every_step_has_zero_gradient():
    logits = torch.stack([NEW, 1 - NEW], dim=1).log().requires_grad_(True)
    logp = torch.log_softmax(logits, dim=1)[:, 0]
    loss, _ = clipped_surrogate(logp, OLD.log(), ADV, 0.2)
    loss.backward()
    assert torch.count_nonzero(logits.grad) == 0


def test_surrogate_gradient_at_old_policy_equals_policy_gradient():
    torch.manual_seed(0)
    logits = torch.randn(6, 4, requires_grad=True)
    actions = torch.randint(0, 4, (6,))
    adv = torch.randn(6)
    logp = torch.log_softmax(logits, 1).gather(1, actions[:, None]).squeeze(1)
    loss, _ = clipped_surrogate(logp, logp.detach(), adv, 0.2)
    (g_ppo,) = torch.autograd.grad(loss, logits, retain_graph=True)
    (g_pg,) = torch.autograd.grad(-(logp * adv).mean(), logits)
    torch.testing.assert_close(g_ppo, g_pg)


def test_mask_excludes_padding():
    logp = torch.tensor([[0.0, -1.0], [-0.5, 0.0]])
    adv = torch.tensor([[1.0, 50.0], [2.0, -7.0]])
    mask = torch.tensor([[1, 0], [1, 0]])
    loss, _ = clipped_surrogate(logp, logp, adv, mask=mask)
    assert float(loss) == pytest.approx(-1.5)


def test_value_loss_plain_and_clipped():
    v, old, target = torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([3.0])
    assert float(clipped_value_loss(v, old, target)) == pytest.approx(0.5)
    # clipped prediction is 0.2, error 2.8^2; the pessimistic max picks it
    assert float(clipped_value_loss(v, old, target, clip_eps=0.2)) == pytest.approx(0.5 * 2.8**2)


def test_kl_estimators_against_the_exact_kl():
    q = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    p = torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=torch.float64)
    exact = float((q * (q / p).log()).sum())  # KL(q || p)
    log_ratio = (p / q).log()
    assert float((q * kl_k1(log_ratio)).sum()) == pytest.approx(exact, rel=1e-12)
    assert float((q * kl_k3(log_ratio)).sum()) == pytest.approx(exact, rel=1e-12)
    assert float((q * kl_k2(log_ratio)).sum()) != pytest.approx(exact, rel=1e-3)  # biased
    assert bool((kl_k3(log_ratio) >= 0).all()) and bool((kl_k1(log_ratio) < 0).any())
    # T-08: k3 at ratio pi_ref/pi_theta = 0.5, 1, 2
    vals = kl_k3(torch.tensor([0.5, 1.0, 2.0]).log())
    torch.testing.assert_close(vals, torch.tensor([0.193147, 0.0, 0.306853]), atol=1e-6, rtol=0)


def test_w03_kl_of_a_policy_flip():
    a, b = torch.tensor([0.9, 0.1]), torch.tensor([0.1, 0.9])
    assert float((a * (a / b).log()).sum()) == pytest.approx(0.8 * math.log(9), rel=1e-6)


def test_bad_inputs():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="clip_eps"):
        clipped_surrogate(x, x, x, clip_eps=0.0)
    with pytest.raises(ValueError, match="same shape"):
        clipped_surrogate(x, x, torch.zeros(4))


# ---- the six (A, r) cases, ratio, KL, entropy, adaptive beta, full loss ---------------------

SIX_CASES = [  # (A, r, clipped branch active -> zero gradient)
    (1.0, 0.5, False), (1.0, 1.0, False), (1.0, 1.5, True),
    (-1.0, 0.5, True), (-1.0, 1.0, False), (-1.0, 1.5, False),
]


@pytest.mark.parametrize("adv,r,zero_grad", SIX_CASES)
def test_six_cases_gradient_is_zero_exactly_when_the_clipped_branch_is_active(adv, r, zero_grad):
    logp_old = torch.tensor([math.log(0.4)], dtype=torch.float64)
    logp = (logp_old + math.log(r)).requires_grad_(True)
    ratio = ppo.ratio_from_logps(logp, logp_old)
    obj = ppo.clipped_objective(ratio, torch.tensor([adv], dtype=torch.float64), 0.2)
    (grad,) = torch.autograd.grad(obj.sum(), logp)
    assert (float(grad) == 0.0) == zero_grad
    # where the gradient is not zero it is the unclipped one: d(rA)/dlogp = r A
    if not zero_grad:
        assert float(grad) == pytest.approx(r * adv)
    assert bool(ppo.clip_branch_active(ratio.detach(), torch.tensor([adv]), 0.2)) == zero_grad
    # the pessimistic bound: L^CLIP never exceeds the unclipped surrogate
    assert float(obj.detach()) <= r * adv + 1e-12


def test_clipped_objective_is_a_lower_bound_and_matches_brute_force():
    torch.manual_seed(1)
    r, a = torch.rand(200, dtype=torch.float64) * 2, torch.randn(200, dtype=torch.float64)
    got = ppo.clipped_objective(r, a, 0.1)
    brute = [min(ri * ai, min(max(ri, 0.9), 1.1) * ai) for ri, ai in zip(r.tolist(), a.tolist())]
    torch.testing.assert_close(got, torch.tensor(brute, dtype=torch.float64))
    assert bool((got <= r * a + 1e-12).all())
    with pytest.raises(ValueError, match="same shape"):
        ppo.clipped_objective(r, a[:3])


def test_ratio_from_logps_is_the_probability_ratio():
    p = torch.tensor([0.2, 0.5, 1e-30], dtype=torch.float64)
    q = torch.tensor([0.4, 0.5, 1e-31], dtype=torch.float64)
    torch.testing.assert_close(ppo.ratio_from_logps(p.log(), q.log()),
                               torch.tensor([0.5, 1, 10], dtype=torch.float64))
    with pytest.raises(ValueError, match="same shape"):
        ppo.ratio_from_logps(torch.zeros(2), torch.zeros(3))


def test_categorical_kl_gibbs_asymmetry_and_cross_entropy_decomposition():
    torch.manual_seed(2)
    lp, lq = torch.randn(50, 5, dtype=torch.float64), torch.randn(50, 5, dtype=torch.float64)
    kl = ppo.categorical_kl(lp, lq)
    p, q = lp.softmax(-1), lq.softmax(-1)
    cross = -(p * q.log()).sum(-1)
    torch.testing.assert_close(kl, cross - ppo.categorical_entropy(lp))  # H(P, Q) - H(P)
    assert bool((kl >= 0).all()) and float(ppo.categorical_kl(lp, lp).abs().max()) < 1e-12
    assert float((kl - ppo.categorical_kl(lq, lp)).abs().max()) > 1e-2  # not symmetric
    flip = ppo.categorical_kl(torch.tensor([9.0, 1.0]).log(), torch.tensor([1.0, 9.0]).log())
    assert float(flip) == pytest.approx(0.8 * math.log(9), rel=1e-6)  # W-03: logit shift ln 81
    with pytest.raises(ValueError, match="same shape"):
        ppo.categorical_kl(lp, lq[:, :3])


def test_categorical_entropy_limits():
    assert float(ppo.categorical_entropy(torch.zeros(4))) == pytest.approx(math.log(4))
    assert float(ppo.categorical_entropy(torch.tensor([50.0, 0.0, 0.0]))) < 1e-18


def test_adaptive_kl_beta_rule():
    assert ppo.adaptive_kl_beta(1.0, 0.02, 0.01) == 2.0
    assert ppo.adaptive_kl_beta(1.0, 0.005, 0.01) == 0.5
    assert ppo.adaptive_kl_beta(1.0, 0.0149, 0.01) == 1.0
    assert ppo.adaptive_kl_beta(1.0, 0.0067, 0.01) == 1.0
    with pytest.raises(ValueError, match="beta > 0"):
        ppo.adaptive_kl_beta(0.0, 0.02, 0.01)


def test_kl_penalty_surrogate_value_and_gradient_at_the_old_policy():
    torch.manual_seed(3)
    logits = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    actions, adv = torch.randint(0, 3, (8,)), torch.randn(8, dtype=torch.float64)
    logp = torch.log_softmax(logits, 1).gather(1, actions[:, None])[:, 0]
    kl = ppo.categorical_kl(logits.detach(), logits)
    loss = ppo.kl_penalty_surrogate(logp, logp.detach(), adv, kl, beta=3.0)
    assert float(loss.detach()) == pytest.approx(-float(adv.mean()))  # r = 1, KL = 0
    (g,) = torch.autograd.grad(loss, logits, retain_graph=True)  # KL: zero gradient at its min
    (g_pg,) = torch.autograd.grad(-(logp * adv).mean(), logits)
    torch.testing.assert_close(g, g_pg)
    with pytest.raises(ValueError, match="must match"):
        ppo.kl_penalty_surrogate(logp, logp, adv, kl[:3], 1.0)


def test_ppo_loss_signs():
    loss = ppo.ppo_loss(torch.tensor(-0.3), torch.tensor(2.0), torch.tensor(0.6), 0.5, 0.01)
    assert float(loss) == pytest.approx(-0.3 + 1.0 - 0.006)
    ent = torch.tensor(0.5, requires_grad=True)
    ppo.ppo_loss(torch.tensor(0.0), torch.tensor(0.0), ent, 0.5, 0.1).backward()
    assert float(ent.grad) == pytest.approx(-0.1)  # more entropy, lower loss
    with pytest.raises(ValueError, match="vf_coef and ent_coef"):
        ppo.ppo_loss(loss, loss, loss, -1.0, 0.0)


def test_clipped_value_loss_takes_the_pessimistic_error():
    v, old, tgt = torch.tensor([1.0, 0.5]), torch.tensor([0.0, 0.0]), torch.tensor([0.1, 0.3])
    # sample 0: moved 1.0, clipped to 0.2 -> errors 0.81 vs 0.01, keeps 0.81
    # sample 1: moved 0.5, clipped to 0.2 -> errors 0.04 vs 0.01, keeps 0.04
    assert float(clipped_value_loss(v, old, tgt, 0.2)) == pytest.approx(0.5 * (0.81 + 0.04) / 2)


# ---- KL directions, surrogate accuracy, natural gradient --------------------------------------

def _bimodal():
    xs = torch.linspace(-10, 10, 801, dtype=torch.float64)
    log_p = torch.logsumexp(torch.stack([-0.5 * ((xs + 2) / 0.6) ** 2,
                                         -0.5 * ((xs - 2) / 0.6) ** 2]), 0).log_softmax(0)
    return xs, log_p


def test_forward_kl_fit_is_moment_matching_and_reverse_kl_seeks_a_mode():
    xs, log_p = _bimodal()
    p = log_p.exp()
    mean = float((p * xs).sum())
    std = float((p * (xs - mean) ** 2).sum()) ** 0.5
    mu, sigma = ppo.fit_gaussian_kl(xs, log_p, "forward", steps=300, lr=0.1)
    assert mu == pytest.approx(mean, abs=1e-3) and sigma == pytest.approx(std, rel=1e-3)
    mu_r, sigma_r = ppo.fit_gaussian_kl(xs, log_p, "reverse", mu0=1.0, sigma0=0.5, steps=300,
                                        lr=0.1)
    assert mu_r == pytest.approx(2.0, abs=0.05) and sigma_r == pytest.approx(0.6, abs=0.05)
    with pytest.raises(ValueError, match="direction"):
        ppo.fit_gaussian_kl(xs, log_p, "sideways")
    with pytest.raises(ValueError, match="1-D"):
        ppo.fit_gaussian_kl(xs, log_p[:5], "forward")


def _random_mdp(S=4, A=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    P = torch.rand(S, A, S, generator=g, dtype=torch.float64)
    P /= P.sum(-1, keepdim=True)
    R = torch.randn(S, A, generator=g, dtype=torch.float64)
    return P, R, torch.full((S,), 1.0 / S, dtype=torch.float64)


def test_tabular_values_and_visitation_against_rollout_sums():
    P, R, rho = _random_mdp()
    pi = torch.randn(4, 3, dtype=torch.float64).softmax(-1)
    V, Q = ppo.tabular_values(P, R, 0.9, pi)
    P_pi, r_pi = torch.einsum("sa,sat->st", pi, P), (pi * R).sum(1)
    V_sum, d_sum, dist = torch.zeros(4, dtype=torch.float64), torch.zeros_like(rho), rho.clone()
    Pt = torch.eye(4, dtype=torch.float64)
    for t in range(400):  # sum_t gamma^t P_pi^t r_pi and the discounted visitation
        V_sum += 0.9**t * Pt @ r_pi
        d_sum += 0.1 * 0.9**t * dist
        Pt, dist = Pt @ P_pi, dist @ P_pi
    torch.testing.assert_close(V, V_sum)
    torch.testing.assert_close((pi * Q).sum(1), V)
    torch.testing.assert_close(ppo.state_visitation(P, 0.9, pi, rho), d_sum)
    with pytest.raises(ValueError, match="gamma"):
        ppo.tabular_values(P, R, 1.0, pi)


def test_performance_difference_lemma_and_first_order_surrogate():
    P, R, rho = _random_mdp(seed=1)
    logits, direction = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3,
                                                                            dtype=torch.float64)
    pi_old = logits.softmax(-1)
    J = lambda pi: float((rho * ppo.tabular_values(P, R, 0.9, pi)[0]).sum())
    gaps = []
    for t in (0.1, 0.05):
        pi = (logits + t * direction).softmax(-1)
        gain = J(pi) - J(pi_old)
        exact = float(ppo.surrogate_gain(P, R, 0.9, rho, pi_old, pi, exact=True))
        assert exact == pytest.approx(gain, rel=1e-9)  # identity with pi's own d(s)
        gaps.append(abs(float(ppo.surrogate_gain(P, R, 0.9, rho, pi_old, pi)) - gain))
    assert gaps[1] < gaps[0] / 3  # halving the step cuts the error ~4x: second order
    # first order: the surrogate's gradient at pi_old is the policy gradient
    th = logits.clone().requires_grad_(True)
    (g_sur,) = torch.autograd.grad(ppo.surrogate_gain(P, R, 0.9, rho, pi_old, th.softmax(-1)), th)
    th2 = logits.clone().requires_grad_(True)
    (g_true,) = torch.autograd.grad((rho * ppo.tabular_values(P, R, 0.9, th2.softmax(-1))[0]).sum(),
                                    th2)
    torch.testing.assert_close(g_sur, g_true)


def test_fisher_is_the_hessian_of_kl_and_natural_step_has_the_asked_kl():
    logits = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    F = ppo.softmax_fisher(logits)
    hess = torch.autograd.functional.hessian(
        lambda th: ppo.categorical_kl(logits, th), logits.clone())
    torch.testing.assert_close(F, hess)
    p = logits.softmax(-1)
    scores = torch.eye(3, dtype=torch.float64) - p  # grad of log pi(a) for each a
    torch.testing.assert_close(F, (p[:, None, None] * scores[:, :, None] * scores[:, None, :])
                               .sum(0))
    grad = torch.tensor([1.0, -0.3, 0.2], dtype=torch.float64)
    step = ppo.natural_gradient_step(logits, grad, 1e-4)
    assert float(ppo.categorical_kl(logits, logits + step)) == pytest.approx(1e-4, rel=0.05)
    assert float(step @ grad) > 0
    assert float(ppo.natural_gradient_step(logits, torch.ones(3, dtype=torch.float64),
                                           0.1).abs().max()) == 0  # constant shift: no change
    with pytest.raises(ValueError, match="max_kl"):
        ppo.natural_gradient_step(logits, grad, 0.0)


# ---- the agent ------------------------------------------------------------------------------

def test_config_overrides_and_validation():
    assert ppo.make_config(lr=1e-3).lr == 1e-3
    with pytest.raises(TypeError, match="unknown PPO hyperparameter.*learning_rate"):
        ppo.make_config(learning_rate=1e-3)
    with pytest.raises(ValueError, match="gamma"):
        ppo.make_config(gamma=1.5)
    with pytest.raises(ValueError, match="objective"):
        ppo.make_config(objective="trpo")
    with pytest.raises(ValueError, match="clip_eps"):
        ppo.make_config(clip_eps=0.0)
    with pytest.raises(ValueError, match="ent_coef"):
        ppo.make_config(ent_coef=-0.1)
    with pytest.raises(ValueError, match="minibatches"):
        ppo.make_config(num_envs=1, rollout_steps=2, minibatches=4)
    with pytest.raises(TypeError, match="epochs"):
        ppo.make_config(epochs=2.5)


def test_train_rejects_unknown_overrides():
    # Box actions are supported (a Gaussian head); tests/test_continuous.py covers them and
    # the rejection of other action spaces
    with pytest.raises(TypeError, match="unknown PPO hyperparameter"):
        ppo.train("CartPole-v1", progress=False, n_epochs=3)


def test_sample_actions_follow_the_softmax():
    logits = torch.tensor([[0.0, 1.0, 2.0]]).expand(20_000, 3)
    a = ppo.sample_actions(logits, torch.Generator().manual_seed(0))
    freq = torch.bincount(a, minlength=3) / len(a)
    torch.testing.assert_close(freq, logits[0].softmax(0), atol=0.01, rtol=0)


def test_rollout_masks_autoreset_steps_and_bootstraps_truncation():
    torch.manual_seed(0)
    n, steps = 3, 60
    envs = deeprl.make_vec_env("CartPole-v1", n, seed=4, max_episode_steps=7)
    obs, _ = envs.reset(seed=4)
    run = ppo._Run(envs, obs, deeprl.StepMask(n), deeprl.EpisodeTracker(n), 0.0)
    agent = ppo.ActorCritic(4, 2)
    ro = ppo.collect_rollout(agent, run, steps, torch.Generator().manual_seed(0))
    assert ro.obs.shape == (steps, n, 4) and ro.logits.shape == (steps, n, 2)
    assert run.steps == steps * n and not bool(ro.valid.all())
    # every invalid (autoreset) step follows a done step and has zero reward
    prev_done = torch.zeros(n, dtype=torch.bool)
    for t in range(steps):
        torch.testing.assert_close(~ro.valid[t], prev_done)
        prev_done = ro.dones[t] & ro.valid[t]
    assert float(ro.rewards[~ro.valid].abs().sum()) == 0
    # next_values[t] is V of the observation returned at step t (the final one at a done step)
    with torch.no_grad():
        torch.testing.assert_close(ro.next_values[:-1], agent.v(ro.obs[1:]).squeeze(-1))
    adv, targets = ppo.advantages_and_targets(ro, 0.99, 0.95)
    torch.testing.assert_close(targets - ro.values, adv)
    trunc = ro.dones & ~ro.terminated & ro.valid  # time-limit ends bootstrap from V(final obs)
    assert bool(trunc.any())
    delta = ro.rewards + 0.99 * ro.next_values - ro.values
    torch.testing.assert_close(adv[trunc], delta[trunc])


def test_ppo_solves_cartpole_with_a_fixed_seed():
    result = ppo.train("CartPole-v1", seed=0, progress=False, total_steps=50_000)
    assert result.solved and result.steps_to_solve <= 50_000
    assert result.total_steps >= result.steps_to_solve and result.seconds_to_solve > 0
    returns = deeprl.evaluate("CartPole-v1", result.act, episodes=20, seed=123)
    assert returns.mean() >= 475
    h = result.history
    assert len(h["kl"]) == len(h["step"]) and max(h["kl"]) < 0.5


def test_variants_run_and_record_their_statistics():
    """PPO-penalty adapts beta; no clip, no normalisation, value clipping and early stop run."""
    common = dict(progress=False, total_steps=2048, num_envs=4, rollout_steps=64)
    pen = ppo.train("CartPole-v1", 1, objective="kl_penalty", kl_target=1e-4, **common)
    betas = pen.history["beta"]
    assert betas[0] == 1.0 and betas[-1] > betas[0]  # KL far above a tiny target: beta grows
    assert all(0.0 <= c <= 1.0 for c in pen.history["clip_fraction"])  # measured, not used
    raw = ppo.train("CartPole-v1", 1, clip_eps=None, norm_adv=False, vf_clip=0.2,
                    max_grad_norm=None, anneal_lr=False, target_kl=1e-6, **common)
    assert max(raw.history["epochs"]) == 1.0  # stopped after the first epoch each time
    assert not raw.solved and raw.steps_to_solve is None
    a, b = (ppo.train("CartPole-v1", 5, **common).episode_returns for _ in range(2))
    assert a == b  # reproducible from the seed


def test_a_shorter_budget_reproduces_the_start_of_a_longer_run():
    """The notebook reuses long runs for short-budget comparisons; this is why that is exact."""
    common = dict(progress=False, num_envs=4, rollout_steps=32, anneal_steps=20_000)
    short = ppo.train("CartPole-v1", 3, total_steps=512, **common).history
    long = ppo.train("CartPole-v1", 3, total_steps=1024, **common).history
    for key in ("step", "running_mean", "kl", "lr"):
        assert short[key] == long[key][: len(short[key])]


def _batch(seed: int = 0, n: int = 2, steps: int = 16):
    """A small CartPole rollout with its advantages and targets, plus a fresh agent."""
    torch.manual_seed(seed)
    envs = deeprl.make_vec_env("CartPole-v1", n, seed=seed)
    obs, _ = envs.reset(seed=seed)
    run = ppo._Run(envs, obs, deeprl.StepMask(n), deeprl.EpisodeTracker(n), 0.0)
    agent = ppo.ActorCritic(4, 2)
    ro = ppo.collect_rollout(agent, run, steps, torch.Generator().manual_seed(seed))
    adv, targets = ppo.advantages_and_targets(ro, 0.99, 0.95)
    return agent, ro, adv, targets


def _adam_steps(opt: torch.optim.Optimizer, params) -> set[int]:
    return {int(opt.state[p]["step"]) if p in opt.state else 0 for p in params}


@pytest.mark.parametrize("overrides, policy_steps, critic_steps", [
    ({}, 8 * 4, 8 * 4),                                       # PPO: one joint loss
    (dict(epochs=1, minibatches=1), 1, 1),                    # the one-step critic
    (dict(epochs=1, minibatches=1, critic_epochs=8, critic_minibatches=4), 1, 32),
    (dict(epochs=3, minibatches=2, critic_epochs=1, critic_minibatches=1), 6, 1),
])
def test_policy_and_critic_receive_their_own_number_of_adam_steps(overrides, policy_steps,
                                                                   critic_steps):
    agent, ro, adv, targets = _batch()
    cfg = ppo.make_config(num_envs=2, rollout_steps=16, **overrides)
    opt = torch.optim.Adam(agent.parameters(), lr=1e-3)
    stats = ppo.update(agent, opt, ro, adv, targets, cfg, torch.Generator().manual_seed(0))
    assert _adam_steps(opt, agent.pi.parameters()) == {policy_steps}
    assert _adam_steps(opt, agent.v.parameters()) == {critic_steps}
    assert stats["critic_steps"] == critic_steps and stats["epochs"] == cfg.epochs


def test_the_critic_schedule_leaves_the_policy_step_unchanged():
    """With separate schedules the policy update does not depend on how the critic is fitted."""
    after = []
    for critic_epochs in (2, 5):  # both differ from the policy's 1 epoch: separate loops
        agent, ro, adv, targets = _batch(seed=3)
        cfg = ppo.make_config(num_envs=2, rollout_steps=16, epochs=1, minibatches=1,
                              critic_epochs=critic_epochs)
        opt = torch.optim.Adam(agent.parameters(), lr=1e-2)
        before = [p.detach().clone() for p in agent.pi.parameters()]
        ppo.update(agent, opt, ro, adv, targets, cfg, torch.Generator().manual_seed(0))
        after.append(([p.detach().clone() for p in agent.pi.parameters()],
                      [p.detach().clone() for p in agent.v.parameters()]))
    (pi_a, v_a), (pi_b, v_b) = after
    assert any(not torch.equal(a, b) for a, b in zip(before, pi_a))  # the policy did move
    assert all(torch.equal(a, b) for a, b in zip(pi_a, pi_b))
    assert any(not torch.equal(a, b) for a, b in zip(v_a, v_b))


def test_critic_schedule_config():
    cfg = ppo.make_config(epochs=1, minibatches=1)
    assert cfg.critic_schedule == (1, 1) and cfg.joint_update
    cfg = ppo.make_config(epochs=1, minibatches=1, critic_epochs=8, critic_minibatches=4)
    assert cfg.critic_schedule == (8, 4) and not cfg.joint_update
    assert ppo.Config().critic_schedule == (ppo.Config().epochs, ppo.Config().minibatches)
    with pytest.raises(ValueError, match="critic_epochs"):
        ppo.make_config(critic_epochs=0)
    with pytest.raises(ValueError, match="critic_minibatches"):
        ppo.make_config(num_envs=1, rollout_steps=2, minibatches=1, critic_minibatches=4)


def test_sweep_cli_records_every_variant_lr_and_seed(capsys, tmp_path):
    from rlcourse import ppo_sweep

    assert ppo_sweep.main(["lr", "--seeds", "1", "--budget", "512"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["lrs"] == list(ppo_sweep.LRS) and report["seeds"] == [0]
    for name in ppo_sweep.LR_VARIANTS:
        runs = report["runs"][name]
        assert len(runs) == len(ppo_sweep.LRS) and all(len(r) == 1 for r in runs)
        assert set(runs[0][0]) == {"return", "avg_return", "max_kl", "mean_kl"}
    solve = ppo_sweep.solve_ablation(1, max_steps=512, variants={"default": {}})
    assert solve["steps_to_solve"] == {"default": [None]}  # 512 steps cannot solve CartPole
    assert solve["median_steps_to_solve"] == {"default": None}
    assert ppo_sweep._median([1, 3, None]) == 3 and ppo_sweep._median([1, None, None]) is None
    (tmp_path / "x.json").write_text(json.dumps(solve))
    assert ppo_sweep.load("x", tmp_path) == solve
    with pytest.raises(FileNotFoundError, match="python -m rlcourse.ppo_sweep"):
        ppo_sweep.load("missing", tmp_path)


# ---- DAPO clip-higher: an optional, decoupled upper bound (C-113, T-10) ----------------------

def test_clip_eps_high_none_is_the_symmetric_clip_bit_for_bit():
    torch.manual_seed(3)
    logp_old = torch.randn(5, 7, dtype=torch.float64)
    logp = logp_old + 0.4 * torch.randn(5, 7, dtype=torch.float64)
    adv, mask = torch.randn(5, 7, dtype=torch.float64), torch.rand(5, 7) > 0.3
    ratio = (logp - logp_old).exp()
    by_hand = torch.minimum(ratio * adv, ratio.clamp(0.8, 1.2) * adv)
    assert torch.equal(ppo.clipped_objective(ratio, adv, 0.2), by_hand)
    assert torch.equal(ppo.clipped_objective(ratio, adv, 0.2, None), by_hand)
    loss, stats = clipped_surrogate(logp, logp_old, adv, 0.2, mask)
    loss_none, stats_none = clipped_surrogate(logp, logp_old, adv, 0.2, mask, clip_eps_high=None)
    assert torch.equal(loss, loss_none) and stats == stats_none
    assert torch.equal(loss, -(by_hand * mask).sum() / mask.sum())
    frac = float(((ratio - 1).abs() > 0.2)[mask].double().mean())
    assert stats["clip_fraction"] == pytest.approx(frac, abs=1e-12)
    # clip_eps_high equal to clip_eps gives the same numbers
    loss_eq, stats_eq = clipped_surrogate(logp, logp_old, adv, 0.2, mask, clip_eps_high=0.2)
    torch.testing.assert_close(loss_eq, loss, rtol=0, atol=1e-15)
    assert stats_eq["clip_fraction"] == pytest.approx(stats["clip_fraction"])


def _objective_vs_new_prob(p_new: float, clip_eps_high: float | None) -> tuple[float, float]:
    """Objective and its gradient w.r.t. log p_new for one token with p_old = 0.01, A = 1."""
    logp = torch.tensor([math.log(p_new)], dtype=torch.float64, requires_grad=True)
    ratio = ppo.ratio_from_logps(logp, torch.tensor([math.log(0.01)], dtype=torch.float64))
    obj = ppo.clipped_objective(ratio, torch.ones(1, dtype=torch.float64), 0.2, clip_eps_high)
    (grad,) = torch.autograd.grad(obj.sum(), logp)
    return float(obj.detach()), float(grad)


def test_t10_clip_higher_raises_the_cap_on_a_rare_tokens_probability():
    # T-10: pi_old = 0.01, A > 0: the objective stops rewarding growth at 0.012 (eps = 0.2)
    # and at 0.0128 (eps_high = 0.28); the lower bound is untouched.
    for p_cap, high in [(0.012, None), (0.0128, 0.28)]:
        obj_cap, _ = _objective_vs_new_prob(p_cap, high)
        assert obj_cap == pytest.approx(p_cap / 0.01, rel=1e-12)
        assert _objective_vs_new_prob(p_cap * 0.999, high)[1] > 0      # still pushed up
        obj_above, grad_above = _objective_vs_new_prob(p_cap * 1.01, high)
        assert grad_above == 0.0 and obj_above == pytest.approx(obj_cap, rel=1e-12)
    # between the two caps only the decoupled clip still has a gradient
    assert _objective_vs_new_prob(0.0125, None)[1] == 0.0
    assert _objective_vs_new_prob(0.0125, 0.28)[1] == pytest.approx(1.25)
    # for A < 0 the lower bound 1 - eps is the same with or without clip-higher
    r = torch.tensor([0.5, 0.8, 1.1, 1.25, 1.5], dtype=torch.float64)
    a = -torch.ones(5, dtype=torch.float64)
    torch.testing.assert_close(ppo.clipped_objective(r, a, 0.2, 0.28), ppo.clipped_objective(r, a))


def test_clip_higher_brute_force_and_clip_fraction():
    torch.manual_seed(2)
    r, a = torch.rand(300, dtype=torch.float64) * 2, torch.randn(300, dtype=torch.float64)
    got = ppo.clipped_objective(r, a, 0.2, 0.28)
    brute = [min(ri * ai, min(max(ri, 0.8), 1.28) * ai) for ri, ai in zip(r.tolist(), a.tolist())]
    torch.testing.assert_close(got, torch.tensor(brute, dtype=torch.float64))
    _, stats = clipped_surrogate(r.log(), torch.zeros_like(r), a, 0.2, clip_eps_high=0.28)
    expected = sum(ri < 0.8 or ri > 1.28 for ri in r.tolist()) / 300
    assert stats["clip_fraction"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="clip_eps_high"):
        ppo.clipped_objective(r, a, 0.2, 0.0)
    with pytest.raises(ValueError, match="clip_eps_high"):
        clipped_surrogate(r.log(), r.log(), a, 0.2, clip_eps_high=-0.1)


# ---- the update in parts (notebook 07's staged exercises) and the training diagnostics -------


def test_explained_variance_matches_its_definition():
    g = torch.Generator().manual_seed(0)
    targets = torch.randn(50, generator=g, dtype=torch.float64) * 3 + 1
    values = targets + 0.5 * torch.randn(50, generator=g, dtype=torch.float64)
    t, v = targets.numpy(), values.numpy()
    brute = 1 - np.mean((t - v - np.mean(t - v)) ** 2) / np.mean((t - np.mean(t)) ** 2)
    assert ppo.explained_variance(values, targets) == pytest.approx(brute, abs=1e-12)
    assert ppo.explained_variance(targets.clone(), targets) == pytest.approx(1.0)
    assert ppo.explained_variance(torch.full_like(targets, float(targets.mean())),
                                  targets) == pytest.approx(0.0, abs=1e-12)
    assert ppo.explained_variance(-targets, targets) < 0
    assert math.isnan(ppo.explained_variance(torch.zeros(4), torch.ones(4)))
    with pytest.raises(ValueError, match="1-D"):
        ppo.explained_variance(torch.zeros(3), torch.zeros(4))


def test_minibatch_indices_is_the_split_update_uses():
    for n, m in ((10, 4), (33, 4), (3, 8), (64, 1)):
        gen, ref = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        for chunks in ppo.minibatch_indices(n, m, 3, gen):
            expected = ppo._minibatches(n, m, ref, torch.device("cpu"))
            assert len(chunks) == len(expected) <= m
            assert all(torch.equal(a, b) for a, b in zip(chunks, expected))
            assert sorted(torch.cat(chunks).tolist()) == list(range(n))
    for bad in ((0, 4, 1), (10, 0, 1), (10, 4, 0)):
        with pytest.raises(ValueError):
            list(ppo.minibatch_indices(*bad, torch.Generator()))


def test_minibatch_loss_matches_a_per_sample_computation():
    g = torch.Generator().manual_seed(3)
    b = 9
    logp_old = -torch.rand(b, generator=g, dtype=torch.float64) - 0.1
    logp = logp_old + 0.4 * torch.randn(b, generator=g, dtype=torch.float64)
    adv, values, v_old, targets = (torch.randn(b, generator=g, dtype=torch.float64)
                                   for _ in range(4))
    entropy = torch.rand(b, generator=g, dtype=torch.float64)
    for cfg in (ppo.make_config(), ppo.make_config(norm_adv=False, vf_clip=0.1, ent_coef=0.2),
                ppo.make_config(clip_eps=None)):
        loss, stats = ppo.minibatch_loss(logp, logp_old, adv, values, v_old, targets, entropy,
                                         cfg)
        a = adv.numpy()
        if cfg.norm_adv:
            a = (a - a.mean()) / (a.std() + 1e-8)
        pol, val, clipped = [], [], 0
        for i in range(b):
            r = math.exp(float(logp[i] - logp_old[i]))
            eps = cfg.clip_eps
            pol.append(r * a[i] if eps is None else min(r * a[i], min(max(r, 1 - eps), 1 + eps)
                                                        * a[i]))
            clipped += abs(r - 1) > (0.2 if eps is None else eps)
            err = (float(values[i]) - float(targets[i])) ** 2
            if cfg.vf_clip is not None:
                moved = float(v_old[i]) + max(-cfg.vf_clip, min(cfg.vf_clip,
                                                                float(values[i] - v_old[i])))
                err = max(err, (moved - float(targets[i])) ** 2)
            val.append(0.5 * err)
        brute = -np.mean(pol) + cfg.vf_coef * np.mean(val) - cfg.ent_coef * float(entropy.mean())
        assert float(loss) == pytest.approx(brute, abs=1e-10)
        assert stats["clip_fraction"] == pytest.approx(clipped / b)
        lr = (logp - logp_old).numpy()
        assert stats["approx_kl"] == pytest.approx(float(np.mean(np.exp(lr) - 1 - lr)))
    with pytest.raises(ValueError, match="PPO-clip"):
        ppo.minibatch_loss(logp, logp_old, adv, values, v_old, targets, entropy,
                           ppo.make_config(objective="kl_penalty"))
    with pytest.raises(ValueError, match="same 1-D shape"):
        ppo.minibatch_loss(logp, logp_old[:3], adv, values, v_old, targets, entropy,
                           ppo.make_config())


def test_flatten_rollout_rejects_mismatched_shapes():
    ro = ppo.Rollout(*(torch.zeros(2, 3) for _ in range(9)), valid=torch.ones(2, 3, dtype=bool))
    batch = ppo.flatten_rollout(ro, torch.zeros(2, 3), torch.zeros(2, 3))
    assert batch.adv.shape == (6,)
    with pytest.raises(ValueError, match="rollout's shape"):
        ppo.flatten_rollout(ro, torch.zeros(3, 2), torch.zeros(2, 3))


def test_update_reports_the_gradient_norm_before_clipping():
    """The same update with and without the clip: the same first-step norm is reported."""
    runs = [ppo.train("CartPole-v1", 0, progress=False, stop_when_solved=False,
                      total_steps=512, epochs=1, minibatches=1, max_grad_norm=clip)
            for clip in (None, 1e9)]
    assert runs[0].history["grad_norm"] == pytest.approx(runs[1].history["grad_norm"])
    assert runs[0].history["grad_norm"][0] > 0.5


def test_train_with_update_fn_is_the_same_run_and_logs_the_diagnostics():
    from rlcourse import ppo_probes

    kw = dict(progress=False, stop_when_solved=False, total_steps=2048)
    ref = ppo.train("CartPole-v1", 3, **kw)
    mine = ppo.train("CartPole-v1", 3, update_fn=ppo_probes.staged_update, **kw)
    assert ref.episode_returns == mine.episode_returns
    for key in ("explained_variance", "clip_fraction", "approx_kl", "entropy", "grad_norm"):
        assert len(ref.history[key]) == 4 and ref.history[key] == mine.history[key]
    with pytest.raises(TypeError, match="update_fn"):
        ppo.train("CartPole-v1", 0, update_fn="update", **kw)


def test_update_fn_is_refused_for_box_actions():
    with pytest.raises(TypeError, match="update_gaussian"):
        ppo.train("Pendulum-v1", 0, progress=False, total_steps=64, update_fn=ppo.update)
