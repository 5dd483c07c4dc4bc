"""Honesty tests for the checks of notebook 13: blanks and plausible wrong answers must fail."""

import pytest
import torch

from rlcourse import advantages, ppo
from rlcourse.llm import grpo, rlhf
from tests.honesty import assert_verdict, honesty_cases

# ---- group_advantages ------------------------------------------------------------------------


def adv_sample_std(rewards, eps=1e-6):
    """Uses the sample std (ddof = 1): T-04 gives +-0.866 instead of +-1."""
    return grpo.group_advantages(rewards, ddof=1, eps=eps)


def adv_whole_batch(rewards, eps=1e-6):
    """Normalises over the whole batch instead of within each group."""
    return (rewards - rewards.mean()) / (rewards.std(correction=0) + eps)


def adv_nan_on_equal(rewards, eps=1e-6):
    """No guard for all-equal groups: 0 / 0 = NaN when eps = 0."""
    mean = rewards.mean(1, keepdim=True)
    return (rewards - mean) / (rewards.std(1, correction=0, keepdim=True) + eps)


def adv_no_std(rewards, eps=1e-6):
    """Centres but does not scale (Dr. GRPO's advantage, not GRPO's)."""
    return grpo.group_advantages(rewards, scale="none")


# ---- grpo_loss -------------------------------------------------------------------------------


def loss_sequence_ratio(logp, logp_old, ref_logp, adv, mask, clip_eps=0.2, beta=0.04):
    """E-21/E-53: one sequence-level ratio per response, clipped once."""
    m = mask.to(logp.dtype)
    ratio = grpo.sequence_ratio(logp, logp_old, mask)
    surr = ppo.clipped_objective(ratio, adv, clip_eps)
    kl = advantages.aggregate_token_loss(ppo.kl_k3(ref_logp - logp), m, "seq_mean")
    return -(surr.mean() - beta * kl)


def loss_kl_wrong_direction(logp, logp_old, ref_logp, adv, mask, clip_eps=0.2, beta=0.04):
    """k3 with the ratio pi/pi_ref instead of pi_ref/pi."""
    ratio = ppo.ratio_from_logps(logp, logp_old.detach())
    surr = ppo.clipped_objective(ratio, adv[:, None].expand_as(logp), clip_eps)
    kl = ppo.kl_k3(logp - ref_logp)
    return advantages.aggregate_token_loss(-(surr - beta * kl), mask, "seq_mean")


def loss_token_mean(logp, logp_old, ref_logp, adv, mask, clip_eps=0.2, beta=0.04):
    """DAPO's token-level mean instead of GRPO's per-response mean."""
    return grpo.grpo_token_loss(logp, logp_old, ref_logp, adv, mask, clip_eps, None, beta,
                                "token_mean")[0]


def loss_no_min(logp, logp_old, ref_logp, adv, mask, clip_eps=0.2, beta=0.04):
    """Only the clipped term, without PPO's pessimistic min."""
    ratio = ppo.ratio_from_logps(logp, logp_old.detach())
    surr = ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv[:, None]
    kl = ppo.kl_k3(ref_logp - logp)
    return advantages.aggregate_token_loss(-(surr - beta * kl), mask, "seq_mean")


def loss_kl_added(logp, logp_old, ref_logp, adv, mask, clip_eps=0.2, beta=0.04):
    """Adds the KL to the objective (a bonus for drifting) instead of subtracting it."""
    return grpo.grpo_token_loss(logp, logp_old, ref_logp, adv, mask, clip_eps, None, 0.0)[0] \
        - beta * advantages.aggregate_token_loss(ppo.kl_k3(ref_logp - logp), mask, "seq_mean")


# ---- grpo_group_update -----------------------------------------------------------------------


def _update(policy, ref, tokenizer, prompts, cfg, opt, generator, reward_fn, *,
            adv_fn=None, old_with_grad=False, kl_sign=1.0, sample_from=None):
    group = [p for p in prompts for _ in range(cfg.group_size)]
    gen = rlhf.sample(sample_from or policy, tokenizer, group, cfg, generator)
    seq, attn, start = gen.sequences, gen.attention_mask, gen.response_start
    rewards = torch.as_tensor(reward_fn(group, gen.responses), dtype=torch.float32)
    adv = (adv_fn or grpo.group_advantages)(rewards.view(len(prompts), -1)).flatten()
    mask = rlhf.response_action_mask(attn, start)
    logp_old = rlhf.response_logprobs(policy, seq, attn, start)
    if not old_with_grad:
        logp_old = logp_old.detach()
    with torch.no_grad():
        ref_logp = rlhf.response_logprobs(ref, seq, attn, start)
    logp = rlhf.response_logprobs(policy, seq, attn, start)
    ratio = torch.exp(logp - logp_old)
    surr = ppo.clipped_objective(ratio, adv[:, None].expand_as(logp), cfg.clip_eps)
    kl = ppo.kl_k3(kl_sign * (ref_logp - logp))
    loss = advantages.aggregate_token_loss(-(surr - cfg.beta * kl), mask, "seq_mean")
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
    opt.step()
    return {"reward": float(rewards.mean()),
            "kl": float(advantages.masked_mean(ppo.kl_k3(ref_logp - logp.detach()), mask))}


def update_batch_normalised(*args):
    """Normalises the advantages across all groups of the batch."""
    return _update(*args, adv_fn=lambda r: grpo.reinforce_pp_advantages(r, eps=1e-6))


def update_old_logp_with_grad(*args):
    """Old log-probs keep their gradient: the ratio is exp(0) with zero gradient."""
    return _update(*args, old_with_grad=True)


def update_kl_sign(*args):
    """k3 of log(pi / pi_ref) instead of log(pi_ref / pi)."""
    return _update(*args, kl_sign=-1.0)


def update_sampled_from_reference(policy, ref, *rest):
    """Samples the group from the frozen reference instead of the policy."""
    return _update(policy, ref, *rest, sample_from=ref)


# ---- rloo ------------------------------------------------------------------------------------


def rloo_includes_self(rewards):
    """Baseline = the mean of the whole group, the sample included."""
    return rewards - rewards.mean(1, keepdim=True)


def rloo_divides_by_g(rewards):
    """Sum of the others divided by G instead of G - 1."""
    g = rewards.shape[1]
    return rewards - (rewards.sum(1, keepdim=True) - rewards) / g


WRONG_ANSWERS = {
    "llm_grpo.group_advantages": {
        "sample-std": adv_sample_std,
        "whole-batch": adv_whole_batch,
        "nan-on-equal-group": adv_nan_on_equal,
        "no-std": adv_no_std,
    },
    "llm_grpo.grpo_loss": {
        "sequence-ratio": loss_sequence_ratio,
        "kl-wrong-direction": loss_kl_wrong_direction,
        "token-mean": loss_token_mean,
        "no-min": loss_no_min,
        "kl-added": loss_kl_added,
    },
    "llm_grpo.grpo_group_update": {
        "batch-normalised": update_batch_normalised,
        "old-logp-with-grad": update_old_logp_with_grad,
        "kl-sign": update_kl_sign,
        "sampled-from-reference": update_sampled_from_reference,
    },
    "llm_grpo.rloo_advantages": {
        "includes-self": rloo_includes_self,
        "divides-by-g": rloo_divides_by_g,
    },
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_verdicts(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_the_honest_update_helper_passes():
    """The helper the wrong updates are built from passes when nothing is broken."""
    assert_verdict("llm_grpo.grpo_group_update", _update, "passed")
