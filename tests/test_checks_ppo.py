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
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_exercise_of_the_notebook_is_covered():
    from rlcourse import exercises

    exercises.get("ppo.kl_k3")  # loads the registry
    mine = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "07_ppo"}
    assert mine == set(WRONG_ANSWERS)
