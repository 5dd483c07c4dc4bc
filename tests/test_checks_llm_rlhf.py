"""Honesty tests for the checks of notebook 11: blanks and plausible wrong answers must fail."""

import pytest
import torch

from rlcourse import advantages
from rlcourse.llm import rlhf
from tests.honesty import assert_verdict, honesty_cases

# ---- per_token_rewards ---------------------------------------------------------------------


def rewards_inverted_kl(score, logp, ref_logp, mask, beta):
    """E-15 in code: +beta * log(pi/ref), which pays the policy for moving away."""
    return rlhf.per_token_rewards(score, logp, ref_logp, mask, -beta)


def rewards_score_on_last_column(score, logp, ref_logp, mask, beta):
    """Puts the score on column T-1, which is padding for short responses."""
    r = -beta * (logp - ref_logp) * mask
    r[:, -1] += score
    return r


def rewards_unmasked_kl(score, logp, ref_logp, mask, beta):
    """Charges the KL on padding columns too."""
    r = -beta * (logp - ref_logp)
    r[torch.arange(len(score)), rlhf.last_token_index(mask)] += score
    return r


def rewards_score_everywhere(score, logp, ref_logp, mask, beta):
    """Adds the sequence score to every real token."""
    return (-beta * (logp - ref_logp) + score.unsqueeze(1)) * mask


# ---- token_gae -----------------------------------------------------------------------------


def gae_no_terminal(rewards, values, mask, gamma=1.0, lam=0.95):
    """Never marks the last real token as terminal: bootstraps from the padding's values."""
    m = mask.to(rewards.dtype)
    nxt = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    none = torch.zeros_like(m, dtype=torch.bool)
    adv = advantages.gae(rewards * m, values, nxt, none, none, gamma, lam) * m
    return adv, (adv + values) * m


def gae_returns_are_advantages(rewards, values, mask, gamma=1.0, lam=0.95):
    """Gives the critic the advantages as targets."""
    adv, _ = rlhf.token_gae(rewards, values, mask, gamma, lam)
    return adv, adv


def gae_gamma_lam_swapped(rewards, values, mask, gamma=1.0, lam=0.95):
    """Swaps gamma and lambda."""
    return rlhf.token_gae(rewards, values, mask, lam, gamma)


# ---- make_experience -----------------------------------------------------------------------


def experience_from_reference(policy, ref, critic, reward_fn, tokenizer, prompts, cfg,
                              generator):
    """E-16 in code: samples the responses from the frozen reference (the SFT model)."""
    gen = rlhf.sample(ref, tokenizer, prompts, cfg, generator)
    return _fill(policy, ref, critic, reward_fn, prompts, cfg, gen, cfg.beta)


def _fill(policy, ref, critic, reward_fn, prompts, cfg, gen, beta):
    with torch.no_grad():
        s, a, st = gen.sequences, gen.attention_mask, gen.response_start
        mask = rlhf.response_action_mask(a, st)
        logp = rlhf.response_logprobs(policy, s, a, st)
        ref_logp = rlhf.response_logprobs(ref, s, a, st)
        values = rlhf.response_values(critic, s, a, st) * mask
        score = reward_fn(list(prompts), gen.responses).float()
        rewards = rlhf.per_token_rewards(score, logp, ref_logp, mask, beta)
        adv, ret = rlhf.token_gae(rewards, values, mask, cfg.gamma, cfg.lam)
    return rlhf.Experience(list(prompts), gen.responses, s, a, st, mask, logp, ref_logp,
                           values, score, rewards, adv, ret)


def experience_inverted_kl(policy, ref, critic, reward_fn, tokenizer, prompts, cfg, generator):
    """Right samples, but the KL reward has the wrong sign (E-15)."""
    gen = rlhf.sample(policy, tokenizer, prompts, cfg, generator)
    return _fill(policy, ref, critic, reward_fn, prompts, cfg, gen, -cfg.beta)


def experience_fresh_generator(policy, ref, critic, reward_fn, tokenizer, prompts, cfg,
                               generator):
    """Ignores the generator it is given (samples with a fixed fresh one)."""
    gen = rlhf.sample(policy, tokenizer, prompts, cfg, torch.Generator().manual_seed(0))
    return _fill(policy, ref, critic, reward_fn, prompts, cfg, gen, cfg.beta)


def experience_with_gradients(policy, ref, critic, reward_fn, tokenizer, prompts, cfg,
                              generator):
    """Right numbers, but computed with gradients attached."""
    gen = rlhf.sample(policy, tokenizer, prompts, cfg, generator)
    s, a, st = gen.sequences, gen.attention_mask, gen.response_start
    mask = rlhf.response_action_mask(a, st)
    logp = rlhf.response_logprobs(policy, s, a, st)
    ref_logp = rlhf.response_logprobs(ref, s, a, st)
    values = rlhf.response_values(critic, s, a, st) * mask
    score = reward_fn(list(prompts), gen.responses).float()
    rewards = rlhf.per_token_rewards(score, logp, ref_logp, mask, cfg.beta)
    adv, ret = rlhf.token_gae(rewards, values, mask, cfg.gamma, cfg.lam)
    return rlhf.Experience(list(prompts), gen.responses, s, a, st, mask, logp, ref_logp,
                           values, score, rewards, adv, ret)


WRONG_ANSWERS = {
    "llm_rlhf.per_token_rewards": {
        "inverted-kl": rewards_inverted_kl,
        "score-on-last-column": rewards_score_on_last_column,
        "unmasked-kl": rewards_unmasked_kl,
        "score-everywhere": rewards_score_everywhere,
    },
    "llm_rlhf.token_gae": {
        "no-terminal": gae_no_terminal,
        "returns-are-advantages": gae_returns_are_advantages,
        "gamma-lam-swapped": gae_gamma_lam_swapped,
    },
    "llm_rlhf.make_experience": {
        "sampled-from-reference": experience_from_reference,
        "inverted-kl": experience_inverted_kl,
        "fresh-generator": experience_fresh_generator,
        "with-gradients": experience_with_gradients,
    },
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_verdicts(name, candidate, expected):
    assert_verdict(name, candidate, expected)
