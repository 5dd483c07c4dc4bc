"""Critic-free policy gradients for LMs: GRPO, DAPO, Dr. GRPO, RLOO, REINFORCE++ (notebook 13).

The pipeline has three steps, each a small pure function here:

1. **Group sampling.** For each of B prompts, sample G responses from pi_old and score them:
   ``rewards`` [B, G] (one scalar per response, e.g. a verifier's 0/1).
2. **Advantage.** Each response is compared with the *other responses to the same prompt*:
   GRPO uses (r_i - mean_group) / (std_group + eps), Dr. GRPO drops the std, RLOO subtracts the
   mean of the other G - 1. GRPO never compares one group with another, and it is not a
   descendant of DPO (seed error E-22): it is PPO's clipped policy gradient with a baseline
   taken from the group instead of a learned critic. REINFORCE++ instead normalises over the
   whole batch. The advantage [B, G] is flattened to [B*G] and shared by every token of o_i.
3. **Token-level objective.** Rows are the B*G responses, columns their tokens:
   ``logp``, ``logp_old``, ``ref_logp``, ``mask`` [B*G, T]. Per token,
   min(rho A, clip(rho, 1-eps, 1+eps_high) A) - beta * k3, with the *token* ratio
   rho_{i,t} = pi(o_{i,t}|.) / pi_old(o_{i,t}|.) (a sequence-level ratio, seed errors E-21 and
   E-53, is a different and much wilder quantity), then averaged with a mode from
   :func:`rlcourse.advantages.aggregate_token_loss` (GRPO: 1/|o_i| per response, DAPO: per
   token, Dr. GRPO: a fixed constant).

DAPO adds :func:`informative_groups` (dynamic sampling) and :func:`overlong_penalty`.
:func:`train` runs GRPO on the lab task from the cached SFT model (:func:`grpo_update` is one
update).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import torch

from rlcourse import ppo
from rlcourse.advantages import aggregate_token_loss, discounted_returns, masked_mean, normalize
from rlcourse.llm.logprobs import last_token_index
from rlcourse.validation import check_in_range, check_positive_int

Tensor = torch.Tensor


def _check_rewards(rewards: Tensor, min_group: int = 2) -> Tensor:
    """Validate a [B, G] tensor of finite rewards with G >= ``min_group``; return it as float."""
    if not isinstance(rewards, Tensor):
        raise TypeError(f"rewards must be a torch.Tensor, got {type(rewards).__name__}")
    if rewards.ndim != 2:
        raise ValueError(f"rewards must have shape [prompts, group], got {tuple(rewards.shape)}")
    if rewards.shape[0] < 1:
        raise ValueError("rewards is empty: need at least one prompt group")
    if rewards.shape[1] < min_group:
        raise ValueError(f"group size must be >= {min_group} (a baseline from the group needs "
                         f"other samples), got G={rewards.shape[1]}")
    if not rewards.is_floating_point():
        rewards = rewards.to(torch.get_default_dtype())
    if not bool(torch.isfinite(rewards).all()):
        raise ValueError("rewards contains NaN or infinite values")
    return rewards


def informative_groups(rewards: Tensor) -> Tensor:
    """Bool [B]: the group's rewards are not all equal (DAPO's dynamic-sampling filter).

    An all-correct or all-wrong group has zero group-relative advantage, so it adds no policy
    gradient (only the KL term); DAPO drops it and samples more prompts.
    """
    rewards = _check_rewards(rewards)
    return (rewards != rewards[:, :1]).any(dim=1)


def group_advantages(rewards: Tensor, scale: str = "std", ddof: int = 0,
                     eps: float = 1e-6) -> Tensor:
    """GRPO's group-relative advantage [B, G] -> [B, G].

    ``scale="std"``: (r_i - mean) / (std + eps), std over the group with ``ddof`` 0 (population)
    or 1 (sample); ``scale="none"``: r_i - mean (Dr. GRPO). A group whose rewards are all equal
    gets exactly 0 (never NaN, even with eps = 0).
    """
    rewards = _check_rewards(rewards)
    if scale not in ("std", "none"):
        raise ValueError(f"unknown scale {scale!r}; choose 'std' or 'none'")
    if ddof not in (0, 1) or isinstance(ddof, bool):
        raise ValueError(f"ddof must be 0 (population std) or 1 (sample std), got {ddof!r}")
    eps = check_in_range(eps, "eps", 0.0, float("inf"), high_open=True)
    informative = informative_groups(rewards)[:, None]
    centred = torch.where(informative, rewards - rewards.mean(1, keepdim=True), 0.0)
    if scale == "none":
        return centred
    std = rewards.std(dim=1, correction=ddof, keepdim=True)
    return torch.where(informative, centred / (std + eps), 0.0)


def rloo_advantages(rewards: Tensor) -> Tensor:
    """RLOO: A_i = r_i - mean_{j != i} r_j  ( = G/(G-1) * (r_i - mean) ). [B, G] -> [B, G].

    The baseline excludes r_i, so it does not depend on the sample it scores: the gradient
    estimate stays unbiased (the plain group mean shrinks it by (G-1)/G).
    """
    rewards = _check_rewards(rewards)
    G = rewards.shape[1]
    others_mean = (rewards.sum(1, keepdim=True) - rewards) / (G - 1)
    return rewards - others_mean


def reinforce_pp_advantages(rewards: Tensor, eps: float = 1e-8) -> Tensor:
    """REINFORCE++ sequence advantages: (r - batch mean) / (batch std + eps), any shape.

    No per-prompt baseline: mean and (population) std are taken over *all* entries of the
    batch ([N] or [B, G] alike), so responses are compared with the whole batch, not a group.
    This is the outcome-reward part only; :func:`reinforce_pp_token_advantages` adds the
    per-token KL penalty of the paper. Needs at least 2 entries.
    """
    if not isinstance(rewards, Tensor):
        raise TypeError(f"rewards must be a torch.Tensor, got {type(rewards).__name__}")
    if rewards.numel() < 2:
        raise ValueError(f"need at least 2 rewards to normalise a batch, got {rewards.numel()}")
    rewards = _check_rewards(rewards.reshape(1, -1)).reshape(rewards.shape)
    check_in_range(eps, "eps", 0.0, float("inf"), high_open=True)
    return normalize(rewards, eps=eps)


def reinforce_pp_token_advantages(rewards: Tensor, logp_old: Tensor, ref_logp: Tensor,
                                  mask: Tensor, beta: float, eps: float = 1e-8) -> Tensor:
    """REINFORCE++ token advantages [N, T]: reward-to-go (gamma = 1) then a global z-score.

    Token reward r_t = 1[t is the last real token] * r - beta * (logp_old_t - ref_logp_t), so
    A_t = r - beta * sum_{s >= t} KL_s before normalising; the mean and std are taken over
    every real token of the batch; padding gets 0. ``rewards`` [N]; the rest [N, T].
    """
    if rewards.ndim != 1 or logp_old.ndim != 2 or rewards.shape[0] != logp_old.shape[0]:
        raise ValueError(f"need rewards [N] and logp_old [N, T]; got {tuple(rewards.shape)} and "
                         f"{tuple(logp_old.shape)}")
    if ref_logp.shape != logp_old.shape or mask.shape != logp_old.shape:
        raise ValueError(f"ref_logp {tuple(ref_logp.shape)} and mask {tuple(mask.shape)} must "
                         f"match logp_old {tuple(logp_old.shape)}")
    beta = check_in_range(beta, "beta", 0.0, float("inf"), high_open=True)
    rewards = _check_rewards(rewards[:, None], min_group=1)[:, 0]
    m = mask.to(logp_old.dtype)
    token_r = -beta * (logp_old - ref_logp).detach() * m
    last = last_token_index(mask)
    token_r[torch.arange(len(last)), last] += rewards.to(token_r.dtype)
    to_go = discounted_returns(token_r, torch.zeros_like(m), 1.0)
    return normalize(to_go, m, eps=eps)


def overlong_penalty(lengths: Tensor, max_len: int, cache_len: int) -> Tensor:
    """DAPO's soft overlong punishment per response: [N] lengths -> [N] penalties in [-1, 0].

    0 for |y| <= max_len - cache_len, then ((max_len - cache_len) - |y|) / cache_len, falling
    linearly to -1 at |y| = max_len, and -1 beyond. Added to the task reward.
    """
    if isinstance(max_len, bool) or isinstance(cache_len, bool) or not (
            isinstance(max_len, int) and isinstance(cache_len, int)):
        raise TypeError(f"max_len and cache_len must be ints, got {max_len!r}, {cache_len!r}")
    if not 0 < cache_len <= max_len:
        raise ValueError(f"need 0 < cache_len <= max_len, got cache_len={cache_len}, "
                         f"max_len={max_len}")
    lengths = torch.as_tensor(lengths, dtype=torch.float64)
    if bool((lengths < 0).any()) or not bool(torch.isfinite(lengths).all()):
        raise ValueError("lengths must be finite and >= 0")
    free = max_len - cache_len
    soft = (free - lengths) / cache_len
    return torch.where(lengths <= free, 0.0, torch.where(lengths <= max_len, soft, -1.0))


def sequence_ratio(logp: Tensor, logp_old: Tensor, mask: Tensor) -> Tensor:
    """exp(sum_t mask * (logp - logp_old)) per row: [N, T] -> [N]. The seeds' sequence ratio.

    Shown only to contrast with GRPO's token ratios (E-21/E-53): it is the *product* of the
    token ratios, so it explodes or vanishes with length and clips very differently.
    """
    if not (logp.shape == logp_old.shape == mask.shape) or logp.ndim != 2:
        raise ValueError(f"logp {tuple(logp.shape)}, logp_old {tuple(logp_old.shape)} and mask "
                         f"{tuple(mask.shape)} must be equal [N, T] shapes")
    return ((logp - logp_old) * mask.to(logp.dtype)).sum(1).exp()


def _check_token_inputs(logp: Tensor, logp_old: Tensor, ref_logp: Tensor, adv: Tensor,
                        mask: Tensor) -> None:
    """Raise unless logp, logp_old, ref_logp, mask are equal [N, T] and adv is [N]."""
    if logp.ndim != 2:
        raise ValueError(f"logp must have shape [responses, tokens], got {tuple(logp.shape)}")
    for name, t in (("logp_old", logp_old), ("ref_logp", ref_logp), ("mask", mask)):
        if t.shape != logp.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but logp has "
                             f"{tuple(logp.shape)}")
    if adv.shape != logp.shape[:1]:
        raise ValueError(f"adv must have one entry per response, shape ({logp.shape[0]},), got "
                         f"{tuple(adv.shape)}")
    if not bool(torch.isfinite(adv).all()):
        raise ValueError("adv contains NaN or infinite values")


def grpo_token_loss(logp: Tensor, logp_old: Tensor, ref_logp: Tensor, adv: Tensor, mask: Tensor,
                    clip_eps: float = 0.2, clip_eps_high: float | None = None,
                    beta: float = 0.04, mode: str = "seq_mean", constant: float | None = None
                    ) -> tuple[Tensor, dict[str, float]]:
    """GRPO's token-level loss (to minimise) and statistics; [N, T] inputs, ``adv`` [N].

    Per token: -( min(rho A_i, clip(rho, 1-eps, 1+eps_high) A_i) - beta * k3 ), with
    rho = exp(logp - logp_old) and k3 = ppo.kl_k3(ref_logp - logp) = pi_ref/pi - 1 - log(pi_ref/pi),
    the k3 estimate of KL(pi_theta || pi_ref) from tokens sampled from pi_theta (>= 0, 0 when the
    two agree). Aggregated by ``mode`` ("seq_mean": GRPO, "token_mean": DAPO, "seq_sum_norm":
    Dr. GRPO with ``constant``). ``logp_old`` and ``ref_logp`` are treated as constants.
    """
    _check_token_inputs(logp, logp_old, ref_logp, adv, mask)
    beta = check_in_range(beta, "beta", 0.0, float("inf"), high_open=True)
    logp_old, ref_logp = logp_old.detach(), ref_logp.detach()
    adv_tok = adv.detach().to(logp.dtype)[:, None].expand_as(logp)
    ratio = ppo.ratio_from_logps(logp, logp_old)
    surrogate = ppo.clipped_objective(ratio, adv_tok, clip_eps, clip_eps_high)
    kl = ppo.kl_k3(ref_logp - logp)
    loss = aggregate_token_loss(-(surrogate - beta * kl), mask, mode, constant)
    with torch.no_grad():
        low = 1 - clip_eps
        high = 1 + (clip_eps if clip_eps_high is None else clip_eps_high)
        clipped = ((ratio < low) | (ratio > high)).to(logp.dtype)
        stats = {"policy_loss": float(aggregate_token_loss(-surrogate, mask, mode, constant)),
                 "kl": float(masked_mean(kl, mask)),
                 "clip_fraction": float(masked_mean(clipped, mask)),
                 "ratio_mean": float(masked_mean(ratio, mask))}
    return loss, stats


def grpo_loss(logp: Tensor, logp_old: Tensor, ref_logp: Tensor, adv: Tensor, mask: Tensor,
              clip_eps: float = 0.2, beta: float = 0.04) -> Tensor:
    """DeepSeekMath's GRPO loss only (scalar): :func:`grpo_token_loss` with the symmetric clip
    and the per-response mean ("seq_mean"). [N, T] inputs, ``adv`` [N] (notebook 13)."""
    return grpo_token_loss(logp, logp_old, ref_logp, adv, mask, clip_eps, None, beta)[0]


# ---- training on the lab task -------------------------------------------------------------------

@dataclass(frozen=True)
class GRPOConfig:
    """Course defaults for GRPO from the cached SFT model with the gold (verifiable) reward."""

    updates: int = 40
    n_prompts: int = 16            # B prompts per update
    group_size: int = 8            # G responses per prompt
    epochs: int = 1                # optimiser steps per batch of groups (1: ratio = 1)
    lr: float = 1e-4
    beta: float = 0.04             # k3 KL toward the reference, per token
    clip_eps: float = 0.2
    clip_eps_high: float | None = None
    scale: str = "std"             # "none" = Dr. GRPO
    mode: str = "seq_mean"         # token-loss aggregation; seq_sum_norm divides by max_new_tokens
    temperature: float = 1.0
    max_new_tokens: int = 6
    max_grad_norm: float = 1.0
    eval_every: int = 10
    n_eval: int = 500

    def __post_init__(self) -> None:
        for name in ("updates", "n_prompts", "epochs", "max_new_tokens", "n_eval"):
            check_positive_int(getattr(self, name), name)
        if isinstance(self.group_size, bool) or int(self.group_size) < 2:
            raise ValueError(f"group size must be >= 2, got {self.group_size!r}")
        check_in_range(self.lr, "lr", 0.0, 1.0, low_open=True)
        check_in_range(self.beta, "beta", 0.0, 100.0)
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every}")


def grpo_update(policy, ref, tokenizer, prompts: Sequence[str], cfg: GRPOConfig, opt,
                generator: torch.Generator, reward_fn) -> dict[str, float]:
    """One GRPO update: G samples per prompt from the policy, rewards [B, G], group
    advantages, then ``cfg.epochs`` optimiser steps on :func:`grpo_token_loss`. Returns the
    mean reward, the share of informative groups, the response length, the tokens, the mean
    next-token entropy of the sampling policy on its responses (nats) and the last epoch's
    loss statistics."""
    from rlcourse.llm import rlhf

    group = [p for p in prompts for _ in range(cfg.group_size)]
    gen = rlhf.sample(policy, tokenizer, group, cfg, generator)
    seq, attn, start = gen.sequences, gen.attention_mask, gen.response_start
    rewards = torch.as_tensor(reward_fn(group, gen.responses), dtype=torch.float32)
    adv = group_advantages(rewards.view(len(prompts), cfg.group_size), cfg.scale).flatten()
    mask = rlhf.response_action_mask(attn, start)
    with torch.no_grad():
        logp_old = rlhf.response_logprobs(policy, seq, attn, start)
        ref_logp = rlhf.response_logprobs(ref, seq, attn, start)
        entropy = masked_mean(ppo.categorical_entropy(
            rlhf.response_logits(policy, seq, attn, start).float()), mask)
    for _ in range(cfg.epochs):
        logp = rlhf.response_logprobs(policy, seq, attn, start)
        loss, stats = grpo_token_loss(logp, logp_old, ref_logp, adv, mask, cfg.clip_eps,
                                      cfg.clip_eps_high, cfg.beta, cfg.mode,
                                      float(cfg.max_new_tokens)
                                      if cfg.mode == "seq_sum_norm" else None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
        opt.step()
    informative = informative_groups(rewards.view(len(prompts), cfg.group_size)).float()
    return {"reward": float(rewards.mean()), "informative_groups": float(informative.mean()),
            "entropy": float(entropy),
            "response_length": float(np.mean([len(r) for r in gen.responses])),
            "tokens": float(attn.sum()), **stats}


@dataclass
class GRPOResult:
    """``history``: per update the entries of :func:`grpo_update` plus ``eval_update`` and
    ``gold_accuracy``; ``start``/``final`` as in :class:`rlcourse.llm.rlhf.RLHFResult`."""

    config: GRPOConfig
    history: dict[str, list[float]]
    start: dict[str, float]
    final: dict[str, float]
    policy: object = field(repr=False)


def train(seed: int = 0, *, progress: bool = True, sft_cfg=None, root=None, reward_fn=None,
          update_fn=None, **overrides) -> GRPOResult:
    """GRPO from the cached SFT model of ``seed`` with the gold reward (or ``reward_fn``),
    :class:`GRPOConfig` changed by ``overrides``. ``update_fn`` (default :func:`grpo_update`,
    same signature) performs each update, e.g. a notebook's own implementation."""
    from tqdm.auto import tqdm

    from rlcourse.llm import rlhf, task
    from rlcourse.llm.sft import SFTConfig, sft_model

    cfg = replace(GRPOConfig(), **overrides)
    sft_cfg = sft_cfg or SFTConfig()
    reward_fn = reward_fn or rlhf.gold_reward_fn
    policy, tok, _ = sft_model(sft_cfg, seed, root=root, progress=progress)
    ref = rlhf.frozen_copy(policy)
    train_set, held = task.split_problems(sft_cfg.split_seed, sft_cfg.n_heldout)
    prompts = [p.prompt for p in train_set]
    evaluate = partial(rlhf.evaluate_policy, ref=ref, tokenizer=tok, problems=held[:cfg.n_eval],
                       reward_fn=reward_fn, cfg=rlhf.Config(), seed=seed)
    start = evaluate(policy)
    hist: dict = {"eval_update": [0], "gold_accuracy": [start["gold_accuracy"]]}
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    rng, gen = np.random.default_rng([seed, 13]), torch.Generator().manual_seed(seed)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    bar = tqdm(range(cfg.updates), desc=f"GRPO seed {seed}", disable=not progress, leave=False,
               mininterval=1.0)
    for u in bar:
        batch = [prompts[i] for i in rng.integers(0, len(prompts), size=cfg.n_prompts)]
        row = (update_fn or grpo_update)(policy, ref, tok, batch, cfg, opt, gen, reward_fn)
        for k, v in row.items():
            hist.setdefault(k, []).append(v)
        if cfg.eval_every and (u + 1) % cfg.eval_every == 0 and u + 1 < cfg.updates:
            hist["eval_update"].append(u + 1)
            hist["gold_accuracy"].append(evaluate(policy)["gold_accuracy"])
        bar.set_postfix(reward=f"{row['reward']:.3f}", kl=f"{row['kl']:.3f}")
    bar.close()
    seconds, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    final = evaluate(policy)
    final.update(seconds=seconds, cpu_seconds=cpu, **rlhf.memory_held(policy, ref))
    hist["eval_update"].append(cfg.updates)
    hist["gold_accuracy"].append(final["gold_accuracy"])
    return GRPOResult(cfg, hist, start, final, policy)


# ---- the group-size sweep (notebook 13 reads its JSON) ------------------------------------------

SWEEP_SAMPLES_PER_UPDATE = 128  # B * G, fixed so that every group size gets the same compute


def group_size_sweep(group_sizes: Sequence[int] = (2, 4, 8, 16), seeds: Sequence[int] = (0, 1, 2),
                     progress: bool = True, **overrides) -> list[dict]:
    """GRPO runs with B * G = :data:`SWEEP_SAMPLES_PER_UPDATE` samples per update for each G.

    One row per (G, seed): the gold accuracy at each evaluation with the samples drawn so far,
    the start and final metrics and the CPU seconds of training.
    """
    rows = []
    for g in group_sizes:
        g = int(g)
        if g < 2 or SWEEP_SAMPLES_PER_UPDATE % g:
            raise ValueError(f"group size must be >= 2 and divide {SWEEP_SAMPLES_PER_UPDATE}, "
                             f"got {g}")
        for seed in seeds:
            res = train(int(seed), progress=progress, group_size=g,
                        n_prompts=SWEEP_SAMPLES_PER_UPDATE // g, **overrides)
            h = res.history
            rows.append({"group_size": g, "n_prompts": res.config.n_prompts, "seed": int(seed),
                         "samples": [u * SWEEP_SAMPLES_PER_UPDATE for u in h["eval_update"]],
                         "gold_accuracy": h["gold_accuracy"],
                         "informative_groups": float(np.mean(h["informative_groups"])),
                         "start": res.start, "final": res.final})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rlcourse.llm.grpo --sweep-out FILE [--group-sizes ...] [--seeds ...]``:
    run the group-size sweep and write it as JSON."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--sweep-out", default="results/lab/grpo_group_sweep.json")
    parser.add_argument("--group-sizes", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the lab bench: 1 thread is faster on the busy 2-core machine
    try:
        rows = group_size_sweep(args.group_sizes, args.seeds, progress=not args.no_progress)
    finally:
        torch.set_num_threads(threads)
    out = Path(args.sweep_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"samples_per_update": SWEEP_SAMPLES_PER_UPDATE,
                               "updates": GRPOConfig().updates, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
