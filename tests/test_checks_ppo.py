"""Honesty tests for the checks of notebook 07: blanks and plausible wrong answers must fail."""

import pytest
import torch

from tests.honesty import assert_verdict, honesty_cases

# ---- categorical_kl ------------------------------------------------------------------------


def kl_reversed(logits_p, logits_q):
    """E-44 in code: computes KL(q || p) instead of KL(p || q)."""
    lp, lq = torch.log_softmax(logits_p, -1), torch.log_softmax(logits_q, -1)
    return (lq.exp() * (lq - lp)).sum(-1)


def kl_unweighted(logits_p, logits_q):
    """Forgets the weights p(a): sums the log-ratio over actions."""
    lp, lq = torch.log_softmax(logits_p, -1), torch.log_softmax(logits_q, -1)
    return (lp - lq).sum(-1)


def kl_on_raw_logits(logits_p, logits_q):
    """Treats logits as log-probabilities (no log_softmax)."""
    return (logits_p.exp() * (logits_p - logits_q)).sum(-1)


def kl_symmetrised(logits_p, logits_q):
    """Averages both directions (a Jeffreys-style divergence), which is not KL(p || q)."""
    return 0.5 * (kl_reversed(logits_p, logits_q) + kl_reversed(logits_q, logits_p))


# ---- kl_k3 ---------------------------------------------------------------------------------


def k3_flipped(log_ratio):
    """log r - (r - 1): the sign of k3 flipped, always <= 0."""
    return log_ratio - torch.expm1(log_ratio)


def k3_is_k1(log_ratio):
    """-log r: the unbiased but signed k1."""
    return -log_ratio


def k3_is_k2(log_ratio):
    """(log r)^2 / 2: the biased k2."""
    return 0.5 * log_ratio**2


def k3_plus_log(log_ratio):
    """(r - 1) + log r: the wrong sign on the log term."""
    return torch.expm1(log_ratio) + log_ratio


# ---- clipped_objective ---------------------------------------------------------------------


def clip_max_instead_of_min(ratio, adv, clip_eps=0.2):
    """Optimistic: takes the larger of the two terms."""
    return torch.maximum(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)


def clip_the_advantage(ratio, adv, clip_eps=0.2):
    """Clips the advantage instead of the ratio."""
    return torch.minimum(ratio * adv, ratio * adv.clamp(1 - clip_eps, 1 + clip_eps))


def clip_as_gradient_clipping(ratio, adv, clip_eps=0.2):
    """E-56: 'the clip is gradient clipping', so the value is left as r * A."""
    return ratio * adv


def clip_sign_flipped(ratio, adv, clip_eps=0.2):
    """Returns the loss (negated) where the objective was asked for."""
    return -torch.minimum(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)


def clip_only_the_clipped_term(ratio, adv, clip_eps=0.2):
    """Drops the min: clip(r) * A alone, so A < 0, r > 1 + eps loses its pessimism (E-35)."""
    return ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv


def clip_upper_only(ratio, adv, clip_eps=0.2):
    """Clips only from above."""
    return torch.minimum(ratio * adv, ratio.clamp(max=1 + clip_eps) * adv)


def clip_detached(ratio, adv, clip_eps=0.2):
    """Right values, but computed on detached tensors: no gradient reaches the policy."""
    r = ratio.detach()
    return torch.minimum(r * adv, r.clamp(1 - clip_eps, 1 + clip_eps) * adv).requires_grad_()


# ---- adaptive_kl_beta ----------------------------------------------------------------------


def beta_reversed(beta, kl, target, factor=2.0, tolerance=1.5):
    """Relaxes the penalty when the KL is too large, and vice versa."""
    if kl > tolerance * target:
        return beta / factor
    if kl < target / tolerance:
        return beta * factor
    return beta


def beta_no_band(beta, kl, target, factor=2.0, tolerance=1.5):
    """Compares with the target itself: beta changes on every update."""
    return beta * factor if kl > target else beta / factor


def beta_additive(beta, kl, target, factor=2.0, tolerance=1.5):
    """Adds/subtracts instead of multiplying/dividing."""
    if kl > tolerance * target:
        return beta + factor
    if kl < target / tolerance:
        return max(beta - factor, 0.0)
    return beta


def beta_band_edges_excluded(beta, kl, target, factor=2.0, tolerance=1.5):
    """Uses >= and <=: a KL exactly on the band's edge already changes beta."""
    if kl >= tolerance * target:
        return beta * factor
    if kl <= target / tolerance:
        return beta / factor
    return beta


def beta_fixed_constants(beta, kl, target, factor=2.0, tolerance=1.5):
    """Hard-codes factor 2 and tolerance 1.5, ignoring the arguments."""
    return beta_band_ok(beta, kl, target, 2.0, 1.5)


def beta_band_ok(beta, kl, target, factor, tolerance):
    if kl > tolerance * target:
        return beta * factor
    if kl < target / tolerance:
        return beta / factor
    return beta


# ---- ppo_loss ------------------------------------------------------------------------------


def loss_entropy_sign(policy_loss, value_loss, entropy, vf_coef=0.5, ent_coef=0.01):
    """Adds the entropy to the loss: it is then penalised, not rewarded."""
    return policy_loss + vf_coef * value_loss + ent_coef * entropy


def loss_value_sign(policy_loss, value_loss, entropy, vf_coef=0.5, ent_coef=0.01):
    """Subtracts the value loss (copies the sign of the objective L - c1 L_vf)."""
    return policy_loss - vf_coef * value_loss - ent_coef * entropy


def loss_is_objective(policy_loss, value_loss, entropy, vf_coef=0.5, ent_coef=0.01):
    """Returns the objective L_clip - c1 L_vf + c2 S instead of the loss."""
    return -policy_loss - vf_coef * value_loss + ent_coef * entropy


def loss_coefs_swapped(policy_loss, value_loss, entropy, vf_coef=0.5, ent_coef=0.01):
    """Puts each coefficient on the other term."""
    return policy_loss + ent_coef * value_loss - vf_coef * entropy


# ---- the staged update: minibatch_indices -----------------------------------------------------


def idx_not_shuffled(n, minibatches, epochs, generator):
    """Consecutive steps in every minibatch, the same order every epoch."""
    size = -(-n // min(minibatches, n))
    for _ in range(epochs):
        yield torch.arange(n).split(size)


def idx_same_permutation(n, minibatches, epochs, generator):
    """One permutation for the whole update, reused by every epoch."""
    size = -(-n // min(minibatches, n))
    perm = torch.randperm(n, generator=generator)
    for _ in range(epochs):
        yield perm.split(size)


def idx_drops_remainder(n, minibatches, epochs, generator):
    """Chunks of n // minibatches and only `minibatches` of them: the remainder is dropped."""
    size = n // minibatches
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator)
        yield tuple(perm[i * size:(i + 1) * size] for i in range(minibatches))


def idx_with_replacement(n, minibatches, epochs, generator):
    """Indices drawn with replacement: some steps twice in an epoch, others never."""
    size = -(-n // min(minibatches, n))
    for _ in range(epochs):
        yield torch.randint(0, n, (n,), generator=generator).split(size)


def idx_eager(n, minibatches, epochs, generator):
    """Draws every epoch's permutation up front (an early stop then leaves the generator
    elsewhere than the package's update does)."""
    size = -(-n // min(minibatches, n))
    perms = [torch.randperm(n, generator=generator) for _ in range(epochs)]
    return iter([p.split(size) for p in perms])


# ---- the staged update: minibatch_loss -------------------------------------------------------


def _loss_parts(logp, logp_old, adv, values, v_old, targets, entropy, cfg, *, ratio_old=None,
                pick=torch.minimum, norm=True, ent_sign=1.0, vf=True):
    from rlcourse import ppo
    from rlcourse.advantages import normalize

    a = normalize(adv) if norm and cfg.norm_adv and len(adv) > 1 else adv
    ratio = torch.exp(logp - (logp_old if ratio_old is None else ratio_old))
    pl = -pick(ratio * a, ratio.clamp(1 - cfg.clip_eps, 1 + cfg.clip_eps) * a).mean()
    vl = ppo.clipped_value_loss(values, v_old, targets, cfg.vf_clip)
    loss = pl + (cfg.vf_coef * vl if vf else 0.0) - ent_sign * cfg.ent_coef * entropy.mean()
    with torch.no_grad():
        stats = {"approx_kl": float(ppo.kl_k3(logp - logp_old).mean()),
                 "clip_fraction": float(((ratio - 1).abs() > cfg.clip_eps).double().mean())}
    return loss, stats


def loss_ratio_new_new(*args):
    """exp(logp - logp.detach()): the ratio is always 1, the clip never bites."""
    return _loss_parts(*args, ratio_old=args[0].detach())


def loss_max(*args):
    """max instead of min: the optimistic bound."""
    return _loss_parts(*args, pick=torch.maximum)


def loss_no_norm(*args):
    """Advantages used raw although cfg.norm_adv is True."""
    return _loss_parts(*args, norm=False)


def loss_entropy_flipped(*args):
    """The entropy added to the loss: a penalty, not a bonus."""
    return _loss_parts(*args, ent_sign=-1.0)


def loss_no_value(*args):
    """The value loss left out of the total."""
    return _loss_parts(*args, vf=False)


def loss_kl_is_k1(*args):
    """Right loss, but approx_kl reported as the k1 mean (signed) instead of k3."""
    loss, stats = _loss_parts(*args)
    return loss, {**stats, "approx_kl": float((args[1] - args[0]).detach().mean())}


# ---- the staged update: one full update --------------------------------------------------------


def _update_variant(agent, opt, ro, adv, targets, cfg, generator, *, clip=True, early_stop=True,
                    shuffle=True, stale=False, zero_grad=True):
    from torch import nn

    from rlcourse import ppo

    b = ppo.flatten_rollout(ro, adv, targets)
    n, norms, epochs = len(b.obs), [], 0
    for chunks in ppo.minibatch_indices(n, cfg.minibatches, cfg.epochs, generator):
        if not shuffle:
            chunks = torch.arange(n).split(len(chunks[0]))
        logp_old = b.logp_old
        if stale:  # "old" log-probs recomputed from the current policy each epoch
            with torch.no_grad():
                logp_old = torch.log_softmax(agent.pi(b.obs), -1).gather(
                    -1, b.actions[:, None])[:, 0]
        for mb in chunks:
            logits, v = agent(b.obs[mb])
            logp = torch.log_softmax(logits, -1).gather(-1, b.actions[mb, None])[:, 0]
            loss, _ = ppo.minibatch_loss(logp, logp_old[mb], b.adv[mb], v, b.v_old[mb],
                                         b.targets[mb], ppo.categorical_entropy(logits), cfg)
            if zero_grad:
                opt.zero_grad()
            loss.backward()
            norms.append(float(nn.utils.clip_grad_norm_(
                agent.parameters(), cfg.max_grad_norm if clip else float("inf"))))
            opt.step()
        epochs += 1
        if early_stop and cfg.target_kl is not None and ppo.batch_kl(agent, b) > cfg.target_kl:
            break
    return {**ppo.batch_report(agent, b, cfg), "epochs": float(epochs),
            "grad_norm": sum(norms) / len(norms)}


def update_right(agent, opt, ro, adv, targets, cfg, generator, beta=0.0):
    """The composed update written out (must PASS: see test_update_check_accepts_...)."""
    return _update_variant(agent, opt, ro, adv, targets, cfg, generator)


def update_no_clip(agent, opt, ro, adv, targets, cfg, generator, beta=0.0):
    """No gradient-norm clipping."""
    return _update_variant(agent, opt, ro, adv, targets, cfg, generator, clip=False)


def update_no_early_stop(agent, opt, ro, adv, targets, cfg, generator, beta=0.0):
    """Ignores cfg.target_kl."""
    return _update_variant(agent, opt, ro, adv, targets, cfg, generator, early_stop=False)


def update_not_shuffled(agent, opt, ro, adv, targets, cfg, generator, beta=0.0):
    """Minibatches of consecutive steps (the permutation drawn but not used)."""
    return _update_variant(agent, opt, ro, adv, targets, cfg, generator, shuffle=False)


def update_stale_old_logp(agent, opt, ro, adv, targets, cfg, generator, beta=0.0):
    """The old log-probs recomputed from the current policy at each epoch."""
    return _update_variant(agent, opt, ro, adv, targets, cfg, generator, stale=True)


def update_no_zero_grad(agent, opt, ro, adv, targets, cfg, generator, beta=0.0):
    """Gradients accumulate across minibatches."""
    return _update_variant(agent, opt, ro, adv, targets, cfg, generator, zero_grad=False)


WRONG_ANSWERS = {
    "ppo.categorical_kl": {"reversed": kl_reversed, "unweighted": kl_unweighted,
                           "raw-logits": kl_on_raw_logits, "symmetrised": kl_symmetrised},
    "ppo.kl_k3": {"flipped": k3_flipped, "k1": k3_is_k1, "k2": k3_is_k2,
                  "plus-log": k3_plus_log},
    "ppo.clipped_objective": {"max": clip_max_instead_of_min, "clip-adv": clip_the_advantage,
                              "grad-clip": clip_as_gradient_clipping,
                              "sign": clip_sign_flipped, "no-min": clip_only_the_clipped_term,
                              "upper-only": clip_upper_only, "detached": clip_detached},
    "ppo.adaptive_kl_beta": {"reversed": beta_reversed, "no-band": beta_no_band,
                             "additive": beta_additive,
                             "band-edges-excluded": beta_band_edges_excluded,
                             "fixed-constants": beta_fixed_constants},
    "ppo.ppo_loss": {"entropy-sign": loss_entropy_sign, "value-sign": loss_value_sign,
                     "objective": loss_is_objective, "coefs-swapped": loss_coefs_swapped},
    "ppo.minibatch_indices": {"not-shuffled": idx_not_shuffled,
                              "same-permutation": idx_same_permutation,
                              "drops-remainder": idx_drops_remainder,
                              "with-replacement": idx_with_replacement, "eager": idx_eager},
    "ppo.minibatch_loss": {"ratio-new-new": loss_ratio_new_new, "max": loss_max,
                           "no-adv-norm": loss_no_norm, "entropy-sign": loss_entropy_flipped,
                           "no-value-loss": loss_no_value, "kl-k1": loss_kl_is_k1},
    "ppo.update": {"no-grad-clip": update_no_clip, "no-early-stop": update_no_early_stop,
                   "not-shuffled": update_not_shuffled, "stale-old-logp": update_stale_old_logp,
                   "no-zero-grad": update_no_zero_grad},
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_exercise_of_the_notebook_is_covered():
    from rlcourse import exercises

    exercises.get("ppo.kl_k3")  # loads the registry
    mine = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "07_ppo"}
    assert mine == set(WRONG_ANSWERS)


def test_update_check_accepts_the_update_written_out_and_the_staged_one():
    from rlcourse import exercises, ppo_probes

    assert exercises.evaluate("ppo.update", update_right).passed
    assert exercises.evaluate("ppo.update", ppo_probes.staged_update).passed


def test_update_check_cases_exercise_the_clip_and_the_early_stop():
    """The check's batch must make the clip and the KL stop matter, or it proves nothing."""
    from rlcourse import ppo
    from rlcourse.checks import ppo as checks

    for overrides, seed, _ in checks.UPDATE_CASES:
        cfg = ppo.make_config(**overrides)
        _, stats = checks._run_update(ppo.update, cfg, seed)
        assert stats["grad_norm"] > 2 * cfg.max_grad_norm
        assert stats["epochs"] == (1 if cfg.target_kl else cfg.epochs)


@pytest.mark.parametrize("label,fn,stage", [
    ("ratio-new-new", loss_ratio_new_new, "stage 1, the ratio"),
    ("max", loss_max, "stage 1, the clipped surrogate"),
    ("no-adv-norm", loss_no_norm, "stage 2"),
    ("entropy-sign", loss_entropy_flipped, "stage 3"),
    ("no-value-loss", loss_no_value, "stage 4")])
def test_loss_check_names_the_stage_that_failed(label, fn, stage):
    from rlcourse import exercises

    result = exercises.evaluate("ppo.minibatch_loss", fn)
    assert result.status == "failed" and stage in result.message, result.message


@pytest.mark.parametrize("fn,needle", [(update_no_early_stop, "epochs run"),
                                       (update_no_clip, "stage 1"),
                                       (update_not_shuffled, "parameters differ")])
def test_update_check_says_what_differed(fn, needle):
    from rlcourse import exercises

    result = exercises.evaluate("ppo.update", fn)
    assert result.status == "failed" and needle in result.message, result.message


def test_loss_check_accepts_skipping_terms_whose_weight_is_zero():
    """Leaving out a term whose coefficient is 0 is a legitimate shortcut, not a bug."""
    from rlcourse import exercises

    def skips(logp, logp_old, adv, values, v_old, targets, entropy, cfg):
        return _loss_parts(logp, logp_old, adv, values, v_old, targets, entropy, cfg,
                           vf=cfg.vf_coef != 0)

    assert exercises.evaluate("ppo.minibatch_loss", skips).passed
