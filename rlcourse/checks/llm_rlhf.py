"""Checks for notebook 11 (RLHF with PPO)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from rlcourse.exercises import call_with, expect_close, expect_true, register
from rlcourse.llm import rlhf

NB = "11_rlhf_ppo"


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _padded():
    """Three responses of 3, 1 and 4 tokens padded to 4 columns, with junk in the padding."""
    mask = _t([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    logp = _t([[-0.5, -1.0, -0.2, -3.0], [-0.1, -2.0, -2.0, -2.0], [-0.3, -0.4, -0.9, -0.6]])
    ref = _t([[-0.7, -0.8, -0.2, -1.0], [-0.6, -1.0, -1.0, -1.0], [-0.3, -0.9, -0.4, -0.6]])
    score = _t([1.0, -0.5, 2.0])
    return score, logp, ref, mask


def _register(name: str, reference: Callable, hint: str):
    return register(name, notebook=NB, reference=reference, hint=hint)


@_register("llm_rlhf.per_token_rewards", rlhf.per_token_rewards,
           "Every real response token pays -beta times its own log-ratio log pi_old - log "
           "pi_ref (positive when the policy likes the token more than the reference does). "
           "The sequence score is paid once, on the last token the mask keeps, not on the last "
           "column. Padding earns nothing.")
def _(fn: Callable) -> None:
    score, logp, ref, mask = _padded()
    got = call_with(fn, "three padded responses, beta = 0.5", score, logp, ref, mask, 0.5)
    want = [[-0.5 * 0.2, -0.5 * -0.2, 1.0, 0.0], [-0.5 * 0.5 - 0.5, 0.0, 0.0, 0.0],
            [0.0, -0.5 * 0.5, -0.5 * -0.5, 2.0]]
    expect_close(got, want, "rewards [3, 4] for 3-, 1- and 4-token responses with beta = 0.5 "
                 "(logp - ref_logp = [[0.2, -0.2, 0, .], [0.5, ...], [0, 0.5, -0.5, 0]], "
                 "scores [1, -0.5, 2])")
    g = torch.Generator().manual_seed(1)
    lp, rp = -torch.rand(4, 5, generator=g).double(), -torch.rand(4, 5, generator=g).double()
    m = _t([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    s = _t([0.3, -1.0, 0.0, 2.5])
    sums = call_with(fn, "a random padded batch, beta = 0.2", s, lp, rp, m, 0.2).sum(1)
    expect_close(sums, s - 0.2 * ((lp - rp) * m).sum(1),
                 "row sums on a random padded batch (T-12: sum_t r_t = score - beta * "
                 "(log pi_old(y|x) - log pi_ref(y|x)))")


def _gae_loop(rewards, values, mask, gamma, lam):
    """Plain per-row GAE over the unpadded tokens (independent of rlcourse.advantages)."""
    out = torch.zeros_like(rewards)
    for b in range(rewards.shape[0]):
        n = int(mask[b].sum())
        running = 0.0
        for t in reversed(range(n)):
            nxt = float(values[b, t + 1]) if t + 1 < n else 0.0
            running = float(rewards[b, t]) + gamma * nxt - float(values[b, t]) \
                + gamma * lam * running
            out[b, t] = running
    return out


@_register("llm_rlhf.token_gae", rlhf.token_gae,
           "Hand rlcourse.advantages.gae [B, T] tensors: the next value is the value one "
           "column to the right, and each row's last real token is both terminated and done, "
           "so nothing after it is bootstrapped. Zero the padding of the values first, and of "
           "what you return. The critic's targets are the advantages plus the values.")
def _(fn: Callable) -> None:
    score, logp, ref, mask = _padded()
    rewards = rlhf.per_token_rewards(score, logp, ref, mask, 0.5)
    values = _t([[0.2, 0.4, 0.6, 9.0], [0.1, -7.0, 5.0, 3.0], [0.5, 0.5, 1.0, 1.5]])
    for gamma, lam in ((1.0, 0.95), (0.9, 0.5)):
        out = call_with(fn, f"gamma = {gamma}, lam = {lam}", rewards, values, mask, gamma, lam)
        expect_true(isinstance(out, (tuple, list)) and len(out) == 2,
                    "token_gae must return (advantages, returns)")
        adv, ret = out
        want = _gae_loop(rewards, values, mask, gamma, lam)
        expect_close(adv, want, f"advantages with gamma = {gamma}, lam = {lam} (values in the "
                     "padding are junk: 9, -7, 5, 3 must not leak in)", atol=1e-5)
        expect_close(ret, (want + values) * mask, f"returns with gamma = {gamma}, "
                     f"lam = {lam} (advantages + values on real tokens, 0 on padding)",
                     atol=1e-5)


@functools.lru_cache(maxsize=1)
def _tiny_world():
    """(policy, ref, critic, tokenizer): tiny GPTs with different seeds (no training)."""
    from rlcourse.llm import model as lm

    tok = lm.build_tokenizer()
    cfg = lm.ModelConfig(n_embd=16, n_layer=1, n_head=2)
    policy = lm.build_model(tok, cfg, seed=0).eval()
    ref = rlhf.frozen_copy(lm.build_model(tok, cfg, seed=1))
    critic = rlhf.make_critic(policy)
    torch.nn.init.normal_(critic.head.weight, std=0.5, generator=torch.Generator().manual_seed(2))
    return policy, ref, critic.eval(), tok


def _length_reward(prompts, responses) -> torch.Tensor:
    return torch.tensor([0.1 * len(r) - 0.2 for r in responses])


@_register("llm_rlhf.make_experience", rlhf.make_experience,
           "Sample from the policy being trained (not the reference), with the generator you "
           "are given; then, without gradients, score the responses, get the policy's and the "
           "reference's log-probs and the critic's values on the response tokens, and build "
           "the per-token rewards and GAE with the functions above, using cfg.beta, "
           "cfg.gamma and cfg.lam.")
def _(fn: Callable) -> None:
    policy, ref, critic, tok = _tiny_world()
    prompts = ["12+35=", "47+38=", "99+99=", "10+10=", "55+55=", "31+69="]
    cfg = rlhf.Config(beta=0.3, max_new_tokens=4, lam=0.9)
    want = rlhf.make_experience(policy, ref, critic, _length_reward, tok, prompts, cfg,
                                torch.Generator().manual_seed(5))
    got = call_with(fn, "tiny models, 6 prompts, generator seed 5", policy, ref, critic,
                    _length_reward, tok, prompts, cfg, torch.Generator().manual_seed(5))
    expect_true(isinstance(got, rlhf.Experience), f"expected an rlhf.Experience, got a "
                f"{type(got).__name__}")
    expect_true(tuple(got.sequences.shape) == tuple(want.sequences.shape)
                and bool(torch.equal(got.sequences, want.sequences)),
                "sequences differ from responses sampled from the policy with the generator "
                "you were given (call rlhf.sample(policy, ...) once, with that generator)")
    expect_close(got.action_mask, want.action_mask, "Experience.action_mask")
    expect_close(got.score, want.score, "Experience.score (the reward function's scores)")
    m = want.action_mask
    for name in ("logp", "ref_logp", "values", "rewards", "advantages", "returns"):
        expect_close(getattr(got, name) * m, getattr(want, name) * m,
                     f"Experience.{name} on the response tokens (beta = 0.3, lam = 0.9)",
                     atol=1e-5)
    expect_true(not got.logp.requires_grad and not got.values.requires_grad,
                "the experience must carry no gradients (compute it under torch.no_grad())")
