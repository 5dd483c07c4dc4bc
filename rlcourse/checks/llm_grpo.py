"""Checks for notebook 13 (GRPO and friends)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from rlcourse.exercises import call_with, expect_close, expect_true, register
from rlcourse.llm import grpo

NB = "13_grpo"


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _register(name: str, reference: Callable, hint: str):
    return register(name, notebook=NB, reference=reference, hint=hint)


# ---- exercise 1: group-normalised advantages -------------------------------------------------

@_register("llm_grpo.group_advantages", grpo.group_advantages,
           "Work along the group axis (dim 1) only: subtract each row's mean and divide by that "
           "row's population standard deviation (ddof = 0) plus eps. A row whose rewards are "
           "all equal must come out as zeros, never NaN, even when eps = 0.")
def _(fn: Callable) -> None:
    t04 = _t([[1.0, 0.0, 0.0, 1.0]])
    expect_close(call_with(fn, "T-04 rewards [[1, 0, 0, 1]]", t04), [[1.0, -1.0, -1.0, 1.0]],
                 "advantages of rewards [[1, 0, 0, 1]] (population std 0.5)", atol=1e-4)
    batch = _t([[1.0, 0.0, 0.0, 1.0], [0.2, 0.2, 0.2, 0.2], [3.0, 1.0, 2.0, 2.0]])
    got = call_with(fn, "a [3, 4] batch with an all-equal middle group", batch)
    want = torch.zeros_like(batch)
    for b in (0, 2):
        row = [float(x) for x in batch[b]]
        mean = sum(row) / len(row)
        std = math.sqrt(sum((x - mean) ** 2 for x in row) / len(row))
        want[b] = _t([(x - mean) / (std + 1e-6) for x in row])
    expect_true(bool(torch.isfinite(torch.as_tensor(got)).all()),
                "advantages of a batch with an all-equal group [0.2, 0.2, 0.2, 0.2] contain "
                f"NaN or inf: {got}")
    expect_close(got, want, "advantages of [[1, 0, 0, 1], [0.2, 0.2, 0.2, 0.2], [3, 1, 2, 2]] "
                 "(each group normalised on its own; the all-equal group gives 0)", atol=1e-4)
    zeros = call_with(fn, "an all-equal group with eps = 0", _t([[1.0, 1.0, 1.0]]), eps=0.0)
    expect_true(bool(torch.isfinite(torch.as_tensor(zeros)).all()),
                f"rewards [[1, 1, 1]] with eps = 0 gave {zeros}; expected zeros (no NaN)")
    expect_close(zeros, [[0.0, 0.0, 0.0]], "advantages of rewards [[1, 1, 1]] with eps = 0")


# ---- exercise 2: the token-level GRPO loss ---------------------------------------------------

def _loss_loop(logp, logp_old, ref_logp, adv, mask, clip_eps, beta) -> float:
    """The DeepSeekMath objective term by term (independent of the package)."""
    total, rows = 0.0, 0
    for i in range(logp.shape[0]):
        n = int(mask[i].sum())
        if n == 0:
            continue
        s = 0.0
        for t in range(n):
            rho = math.exp(float(logp[i, t] - logp_old[i, t]))
            a = float(adv[i])
            surr = min(rho * a, min(max(rho, 1 - clip_eps), 1 + clip_eps) * a)
            d = float(ref_logp[i, t] - logp[i, t])
            s += -(surr - beta * (math.exp(d) - d - 1))
        total += s / n
        rows += 1
    return total / rows


def _token_batch():
    """Three responses of 3, 1 and 4 tokens padded to 4 columns (junk in the padding)."""
    mask = _t([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    logp = _t([[-0.4, -1.2, -0.1, -5.0], [-0.2, -3.0, -3.0, -3.0], [-0.9, -0.3, -1.5, -0.7]])
    old = _t([[-0.7, -1.0, -0.1, -1.0], [-0.6, -1.0, -1.0, -1.0], [-0.5, -0.35, -1.2, -0.7]])
    ref = _t([[-0.5, -0.6, -0.3, -2.0], [-0.1, -2.0, -2.0, -2.0], [-1.0, -0.3, -0.4, -0.9]])
    adv = _t([1.0, -0.5, -1.2])
    return logp, old, ref, adv, mask


@_register("llm_grpo.grpo_loss", grpo.grpo_loss,
           "Per token: the ratio exp(logp - logp_old) of that token alone, PPO's pessimistic "
           "min of the unclipped and clipped terms times the response's advantage, minus beta "
           "times k3 = exp(ref_logp - logp) - (ref_logp - logp) - 1. Average over each "
           "response's real tokens, then over the responses, and return the negative.")
def _(fn: Callable) -> None:
    logp, old, ref, adv, mask = _token_batch()
    for clip_eps, beta in ((0.2, 0.1), (0.1, 0.0), (0.3, 0.5)):
        got = call_with(fn, f"three padded responses, clip_eps = {clip_eps}, beta = {beta}",
                        logp, old, ref, adv, mask, clip_eps=clip_eps, beta=beta)
        expect_close(got, _loss_loop(logp, old, ref, adv, mask, clip_eps, beta),
                     f"loss of three responses of 3, 1 and 4 tokens (advantages [1, -0.5, "
                     f"-1.2]), clip_eps = {clip_eps}, beta = {beta}", atol=1e-6)
    leaf = logp.clone().requires_grad_(True)
    loss = call_with(fn, "the same batch, logp requiring grad", leaf, old, ref, adv, mask,
                     clip_eps=0.2, beta=0.1)
    expect_true(isinstance(loss, torch.Tensor) and loss.requires_grad,
                "the loss must be a tensor that carries the gradient of logp")
    (grad,) = torch.autograd.grad(loss, leaf)
    want_leaf = logp.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(grpo.grpo_loss(want_leaf, old, ref, adv, mask, 0.2, 0.1),
                                  want_leaf)
    expect_close(grad, want, "gradient of the loss with respect to logp (clip_eps = 0.2, "
                 "beta = 0.1; padding gets none)", atol=1e-6)


# ---- exercise 3: the GRPO group update --------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _tiny_world():
    """(policy_state, ref, tokenizer): tiny GPTs with different seeds (no training)."""
    from rlcourse.llm import model as lm
    from rlcourse.llm import rlhf

    tok = lm.build_tokenizer()
    cfg = lm.ModelConfig(n_embd=16, n_layer=1, n_head=2)
    policy = lm.build_model(tok, cfg, seed=0).eval()
    ref = rlhf.frozen_copy(lm.build_model(tok, cfg, seed=1))
    return policy, ref, tok


def _length_reward(prompts, responses) -> torch.Tensor:
    return torch.tensor([0.1 * len(r) - 0.2 for r in responses])


def _run_update(fn: Callable, what: str):
    from rlcourse.llm import rlhf

    policy0, ref, tok = _tiny_world()
    policy = rlhf.frozen_copy(policy0).requires_grad_(True)
    cfg = grpo.GRPOConfig(n_prompts=3, group_size=4, max_new_tokens=4, beta=0.5)
    opt = torch.optim.SGD(policy.parameters(), lr=0.5)
    prompts = ["12+35=", "47+38=", "99+99="]
    ref_before = [p.detach().clone() for p in ref.parameters()]
    out = call_with(fn, what, policy, ref, tok, prompts, cfg, opt,
                    torch.Generator().manual_seed(0), _length_reward)
    expect_true(all(torch.equal(a, b) for a, b in zip(ref_before, ref.parameters())),
                "the reference model changed: only the policy may be updated")
    return out, policy


@_register("llm_grpo.grpo_group_update", grpo.grpo_update,
           "Repeat each prompt G = cfg.group_size times, sample once from the policy with the "
           "generator you are given, score, reshape the rewards to [B, G] for the group "
           "advantages, and give each response's advantage to all its tokens. Old and reference "
           "log-probs are constants (no gradient). Then cfg.epochs steps of the token loss, "
           "clipping the gradient norm to cfg.max_grad_norm. Return the mean reward and the "
           "masked mean k3 KL to the reference.")
def _(fn: Callable) -> None:
    want, want_policy = _run_update(grpo.grpo_update, "the reference update")
    got, policy = _run_update(fn, "3 prompts x G = 4 on tiny GPTs, SGD lr = 0.5, beta = 0.5")
    expect_true(isinstance(got, dict) and {"reward", "kl"} <= set(got),
                f"must return a dict with 'reward' and 'kl', got {got!r}")
    expect_close(got["reward"], want["reward"], "mean reward of the 12 samples (same generator "
                 "seed, so the same samples as the reference)", atol=1e-5)
    expect_close(got["kl"], want["kl"], "mean per-token k3 KL to the reference", atol=1e-5)
    moved = [float((a - b).detach().abs().max()) for a, b in zip(policy.parameters(),
                                                       want_policy.parameters())]
    scale = max(float((a - b).detach().abs().max()) for a, b in zip(want_policy.parameters(),
                                                          _tiny_world()[0].parameters()))
    expect_true(max(moved) <= 1e-4 * max(scale, 1e-8) + 1e-7,
                f"after one update the policy's parameters differ from the reference update's "
                f"by up to {max(moved):.2e} (the reference step moved them by up to "
                f"{scale:.2e})")


# ---- exercise 4: RLOO -------------------------------------------------------------------------

@_register("llm_grpo.rloo_advantages", grpo.rloo_advantages,
           "Each sample's baseline is the mean of the other G - 1 rewards in its group, so it "
           "does not contain the sample's own reward.")
def _(fn: Callable) -> None:
    expect_close(call_with(fn, "T-06 rewards [[1, 0, 0, 1]]", _t([[1.0, 0.0, 0.0, 1.0]])),
                 [[2 / 3, -2 / 3, -2 / 3, 2 / 3]], "RLOO advantages of [[1, 0, 0, 1]]")
    r = _t([[0.5, 2.0, -1.0], [4.0, 4.0, 1.0]])
    want = [[float(r[b, i]) - sum(float(r[b, j]) for j in range(3) if j != i) / 2
             for i in range(3)] for b in range(2)]
    expect_close(call_with(fn, "rewards [[0.5, 2, -1], [4, 4, 1]]", r), want,
                 "RLOO advantages of [[0.5, 2, -1], [4, 4, 1]] (per group)")
