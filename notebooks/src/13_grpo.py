# %% [markdown]
# # 13 · GRPO and friends
#
# Notebook 11 trained the lab's small GPT with PPO: four models (actor, critic, reward model,
# reference), a learned value function and GAE. GRPO keeps PPO's clipped ratio and a KL leash
# but throws the critic away: it samples a **group** of answers to each prompt and uses the
# other answers in the group as the baseline. With a reward computed by code (a *verifier*), the
# reward model goes too. This notebook builds GRPO from its parts, trains the lab model with it,
# and then walks through the variants that changed one part each: Dr. GRPO, DAPO, RLOO and
# REINFORCE++.
#
# **Learning goals.** After this notebook you can
# 1. compute the group-normalised advantage for a [B, G] batch, with the right standard
#    deviation and no NaN on an all-equal group, and explain why it compares answers *within*
#    a group;
# 2. write GRPO's token-level objective (per-token ratio, clip, k3 KL toward the reference) and
#    the three ways to turn a token loss into one number, with the weight each gives a token;
# 3. build rule-based verifiable rewards on a safe parser;
# 4. implement one GRPO update and train the lab model with it;
# 5. say what Dr. GRPO, each of DAPO's four parts, RLOO and REINFORCE++ change, and show the
#    length bias, the zero-gradient groups and the leave-one-out baseline on toys;
# 6. read a group-size sweep: advantage noise and accuracy against the number of samples.
#
# **Notation.** A prompt $q$; $G$ responses $o_1,\dots,o_G$ sampled from
# $\pi_{\theta_\text{old}}$ (the policy that generated the batch); $|o_i|$ the number of tokens of
# $o_i$; rewards $r_i$; $\pi_\text{ref}$ the frozen SFT model. Objectives are maximised; code
# minimises `loss = -objective`.

# %%
import json
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import rlcourse
import rlcourse.results
from rlcourse import advantages, ppo
from rlcourse.exercises import check
from rlcourse.llm import grpo, rlhf, sft, task

session = rlcourse.setup(seed=0)
cpu_start = time.process_time()

# %% [markdown]
# ## 1. Why drop the critic, and what it costs
#
# PPO for language models (notebook 11) needs a critic $V_\psi$, usually a copy of the policy
# with a scalar head, trained alongside it to give every token a baseline. GRPO (Group Relative
# Policy Optimization, introduced in the DeepSeekMath paper, arXiv:2402.03300, and later used
# to train DeepSeek-R1) replaces it by a Monte Carlo baseline: for each prompt, sample $G$
# answers, score them all, and compare each answer with the others. Everything else stays:
# PPO's clipped ratio, and a KL penalty toward the reference.
#
# | | RLHF with PPO | GRPO |
# |---|---|---|
# | baseline | learned critic $V_\psi$, GAE per token | mean (and std) of the group's rewards |
# | advantage | differs per token | one number per response, shared by its tokens |
# | KL to the reference | inside the per-token reward (k1) | a separate term in the loss (k3) |
# | models | actor, critic, reward model, reference (4) | actor, reward model, reference (3); 2 with a rule-based reward |
# | price | memory and compute for the critic | G samples per prompt, so more generation |
#
# Only the **critic** is removed by the group baseline. The reward model disappears only when the
# reward is computed by rules (a verifier, unit tests), as in this notebook. The group baseline
# also has a weakness the critic does not: it needs variation inside the group. If all $G$
# answers score the same, there is nothing to learn from that prompt (Section 7). In one line:
# GRPO is REINFORCE with a per-prompt group baseline, normalised by the group's spread, plus
# PPO's clip and a KL term.

# %% [markdown]
# ## 2. Group sampling and the group-normalised advantage
#
# For one prompt with rewards $r_1,\dots,r_G$, every token $t$ of response $o_i$ gets
# $$\hat A_{i,t} = \tilde r_i = \frac{r_i - \operatorname{mean}(r_1,\dots,r_G)}
#   {\operatorname{std}(r_1,\dots,r_G) + \epsilon}.$$
# The comparison is between the **answers inside one group**: each answer is scored against its
# siblings for the same prompt. Two prompts' groups are never compared with each other (an
# easy prompt's mediocre answer is not judged against a hard prompt's), and no pair of groups
# is ranked. A batch of $B$ prompts is a [B, G] tensor and the statistics run along the group
# axis. Two conventions matter: the std is the population std (divide by $G$), and a group
# whose rewards are all equal has no signal, so its advantages must be exactly 0, not 0/0.
#
# ### Exercise 1: group advantages
# Implement the advantage for a [B, G] tensor of rewards, vectorised (no Python loop over
# prompts).

# %%
def group_advantages(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """GRPO advantages [B, G] from rewards [B, G]: each row centred by its mean and divided by
    its population std + eps; rows whose rewards are all equal give zeros (never NaN)."""
    ### BEGIN SOLUTION
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, correction=0, keepdim=True)
    informative = (rewards != rewards[:, :1]).any(dim=1, keepdim=True)
    return torch.where(informative, centred / (std + eps), torch.zeros_like(centred))
    ### END SOLUTION


group_advantages = check("llm_grpo.group_advantages", group_advantages)

# %% [markdown]
# The worked values: rewards $[1, 0, 0, 1]$ have mean 0.5 and population std 0.5, so the
# advantages are $\pm 1$; with the sample std (divide by $G-1$) they would be $\pm 0.866$. An
# all-equal group gives zeros.

# %%
t04 = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.2, 0.9, 0.2, 0.5]])
a_pop = group_advantages(t04)
a_sample = grpo.group_advantages(t04, ddof=1)
print("rewards      ", t04.double().numpy().round(3).tolist())
print("population   ", a_pop.double().numpy().round(3).tolist())
print("sample std   ", a_sample[0].double().numpy().round(3).tolist(), "(first group only)")
assert torch.allclose(a_pop[0], torch.tensor([1.0, -1.0, -1.0, 1.0]), atol=1e-4)
assert torch.allclose(a_sample[0].abs(), torch.full((4,), 0.8660), atol=1e-3)
assert torch.equal(a_pop[1], torch.zeros(4)) and bool(torch.isfinite(a_pop).all())
assert torch.allclose(a_pop.sum(1), torch.zeros(3), atol=1e-5)  # each group is centred alone

# %% [markdown]
# Each row sums to zero on its own: within every group, the better-than-average answers are
# pushed up exactly as much as the worse ones are pushed down.

# %% [markdown]
# ## 3. Verifiable rewards with a safe parser
#
# GRPO became popular for reasoning because many reasoning tasks can be checked by code:
# extract the final answer, normalise it, compare it with the known one; run unit tests on
# generated code; check a required output format. For the lab's addition task `task.parse_answer`
# is the verifier. It reads only a short string of ASCII digits in canonical form and never
# evaluates the text (no `eval`), so a policy cannot earn reward with clever strings.

# %%
cases = ["82<eos>", "82", " 82", "082", "8e1", "80+2", "٨٢", "82 ", "", "123456789"]
for response in cases:
    print(f"{response!r:>14} -> parsed {task.parse_answer(response)!s:>5}, gold reward for "
          f"47+35: {task.gold_reward('47+35=', response):.2f}")
assert task.parse_answer("82<eos>") == 82 and task.parse_answer("82") == 82
assert all(task.parse_answer(r) is None for r in cases[2:])

# %% [markdown]
# The lab's gold reward gives partial credit: 0.2 for a well-formed number, 0.2 for the right
# number of digits and 0.6 times the fraction of digits that match from the right, so an exact
# answer scores 1. Partial credit separates more answers than a plain right/wrong reward, so
# fewer groups are all-equal; the exact-match reward (1 or 0) is the other common choice and
# Section 7 uses it. A published recipe such as
# DeepSeek-R1's combines an accuracy reward with a format reward (the reasoning inside
# `<think>` tags), later adding a language-consistency reward; a reward weighted as
# $r = w_\text{acc} r_\text{acc} + w_\text{fmt} r_\text{fmt}$ should not reuse β or γ, which
# already name the KL coefficient and the discount.
#
# A three-level rule reward, e.g. $-1$ (malformed), 0.2 (well-formed but wrong), 1 (right), can
# be read through a softmax as a smoothed target:

# %%
levels = torch.tensor([-1.0, 0.2, 1.0])
soft = torch.softmax(levels, 0)
print("softmax of (-1, 0.2, 1):", soft.double().numpy().round(4).tolist())
assert torch.allclose(soft, torch.tensor([0.0854, 0.2835, 0.6310]), atol=1e-4)

# %% [markdown]
# ## 4. The token-level objective
#
# The DeepSeekMath objective, to maximise, for one prompt $q$ and its group:
# $$\mathcal J(\theta) = \frac1G\sum_{i=1}^G\frac1{|o_i|}\sum_{t=1}^{|o_i|}\Big\{
#   \min\big(\rho_{i,t}\hat A_{i,t},\ \operatorname{clip}(\rho_{i,t}, 1-\epsilon, 1+\epsilon)
#   \hat A_{i,t}\big) - \beta\, k_3^{(i,t)}\Big\},\qquad
#   \rho_{i,t} = \frac{\pi_\theta(o_{i,t}\mid q, o_{i,<t})}{\pi_{\theta_\text{old}}(o_{i,t}\mid q,
#   o_{i,<t})}.$$
# Three things carry the meaning. The ratio is **per token** ($i$ names the response, $t$ the
# token, and both indices appear everywhere). The $\frac1{|o_i|}\sum_t$ averages each response's
# tokens before averaging over responses. And the KL term is the k3 estimate of
# $D_\mathrm{KL}(\pi_\theta\|\pi_\text{ref})$ on each sampled token,
# $k_3 = \frac{\pi_\text{ref}}{\pi_\theta} - \log\frac{\pi_\text{ref}}{\pi_\theta} - 1 \ge 0$,
# added to the loss rather than folded into the reward as PPO does.
#
# A shortened version that circulates uses one ratio per response,
# $\pi_\theta(o_i\mid q)/\pi_{\theta_\text{old}}(o_i\mid q)$, and no per-token average. That is
# a different algorithm: the sequence ratio is the *product* of the token ratios, so for long
# responses it explodes or vanishes and clipping it removes whole responses at once.

# %%
gen_toy = torch.Generator().manual_seed(0)
T_long = 200
drift = 0.03 * torch.randn(4, T_long, generator=gen_toy, dtype=torch.float64)  # small per-token changes
old = -torch.rand(4, T_long, generator=gen_toy, dtype=torch.float64)
full = torch.ones(4, T_long)
tok_ratio = ppo.ratio_from_logps(old + drift, old)
seq_ratio = grpo.sequence_ratio(old + drift, old, full)
print(f"token ratios of 4 responses x {T_long} tokens: min {float(tok_ratio.min()):.3f}, "
      f"max {float(tok_ratio.max()):.3f}; clipped at eps = 0.2: "
      f"{float(((tok_ratio - 1).abs() > 0.2).double().mean()):.1%}")
print("sequence ratios of the same responses:", seq_ratio.double().numpy().round(3).tolist())
assert float((tok_ratio - 1).abs().max()) < 0.2 < float((seq_ratio - 1).abs().max())

# %% [markdown]
# With every token moving by about 3%, no token ratio comes near the clip, yet the sequence
# ratios are far outside $[0.8, 1.2]$: the two objectives clip completely different things.
#
# ### Exercise 2: the GRPO token loss
# Rows are responses, columns tokens: `logp`, `logp_old`, `ref_logp` and `mask` are [N, T]
# (padding where `mask` is 0, with arbitrary values), `adv` is [N]. Return the scalar loss
# $-\mathcal J$ with the per-response mean of the formula above. Use `ppo.ratio_from_logps`,
# `ppo.clipped_objective`, `ppo.kl_k3` and `advantages.aggregate_token_loss` if you like.

# %%
def grpo_loss(logp, logp_old, ref_logp, adv, mask, clip_eps=0.2, beta=0.04):
    """Scalar GRPO loss from [N, T] log-probs (policy with grad; old and reference constant),
    [N] advantages and an [N, T] mask: mean over tokens per response, then over responses."""
    ### BEGIN SOLUTION
    ratio = ppo.ratio_from_logps(logp, logp_old.detach())
    surrogate = ppo.clipped_objective(ratio, adv.detach()[:, None].expand_as(logp), clip_eps)
    kl = ppo.kl_k3(ref_logp.detach() - logp)
    return advantages.aggregate_token_loss(-(surrogate - beta * kl), mask, "seq_mean")
    ### END SOLUTION


grpo_loss = check("llm_grpo.grpo_loss", grpo_loss)

# %% [markdown]
# With one optimiser step per batch the policy *is* the old policy when the gradient is taken,
# so every ratio is 1 and the clip is inactive. The gradient of the policy part is then exactly
# REINFORCE with the group baseline: $-\frac1G\sum_i \frac{\hat A_i}{|o_i|}\sum_t
# \nabla\log\pi_\theta(o_{i,t})$. A check with autograd, on 3 responses of lengths 2, 5 and 3
# (β = 0):

# %%
lengths = torch.tensor([2, 5, 3])
mask3 = (torch.arange(5)[None] < lengths[:, None]).double()
lp = (-torch.rand(3, 5, generator=gen_toy, dtype=torch.float64)).requires_grad_(True)
adv3 = torch.tensor([0.7, -1.2, 0.5], dtype=torch.float64)
(g_lp,) = torch.autograd.grad(grpo_loss(lp, lp.detach(), lp.detach(), adv3, mask3, beta=0.0), lp)
reinforce = -(adv3 / lengths)[:, None] * mask3 / 3
print("d loss / d logp:\n", g_lp.numpy().round(4))
assert torch.allclose(g_lp, reinforce)
zero_group = torch.zeros(3, dtype=torch.float64)  # an all-equal group's advantages
(g_zero,) = torch.autograd.grad(grpo_loss(lp, lp.detach(), lp.detach(), zero_group, mask3,
                                          beta=0.0), lp)
assert float(g_zero.abs().max()) == 0.0

# %% [markdown]
# The last line is DAPO's motivation in one assert: a group with all-equal rewards has zero
# advantage, so its responses contribute **no policy gradient at all** (only the KL term, when
# β > 0, still pulls on them).
#
# ### Three ways to turn a token loss into one number
# The $\frac1{|o_i|}$ decides how much each token weighs. Three choices are in use
# (`advantages.token_weights` gives each token's weight):
# * **per-sequence mean, then mean** (GRPO): $w_{i,t} = \frac1{G\,|o_i|}$;
# * **token mean over the batch** (DAPO): $w_{i,t} = \frac1{\sum_j |o_j|}$, every token equal;
# * **sum divided by a constant** (Dr. GRPO): $w_{i,t} = \frac1{G\,C}$ with a fixed $C$ such as
#   the maximum length, independent of both the response and the batch.
#
# Worked case: two responses of 10 and 100 tokens.

# %%
mask_w = (torch.arange(100)[None] < torch.tensor([[10], [100]])).double()
weights = {"seq_mean (GRPO)": advantages.token_weights(mask_w, "seq_mean"),
           "token_mean (DAPO)": advantages.token_weights(mask_w, "token_mean"),
           "seq_sum_norm, C = 100 (Dr. GRPO)": advantages.token_weights(mask_w, "seq_sum_norm",
                                                                         100.0)}
print(f"{'mode':>34} | per token, short | per token, long | share of the long response")
for name, w in weights.items():
    print(f"{name:>34} | {float(w[0, 0]):16.5f} | {float(w[1, 0]):15.5f} | "
          f"{float(w[1].sum() / w.sum()):.3f}")
w_seq, w_tok = weights["seq_mean (GRPO)"], weights["token_mean (DAPO)"]
assert math.isclose(float(w_seq[0, 0]), 1 / 20) and math.isclose(float(w_seq[1, 0]), 1 / 200)
assert torch.allclose(w_tok[mask_w > 0], torch.full((110,), 1 / 110, dtype=torch.float64))

# %%
fig, ax = plt.subplots(figsize=(6.5, 3))
x = np.arange(3)
for k, (row, label) in enumerate(((0, "a token of the 10-token response"),
                                  (1, "a token of the 100-token response"))):
    ax.bar(x + 0.38 * k, [float(w[row, 0]) for w in weights.values()], 0.38, label=label)
ax.set_xticks(x + 0.19, ["GRPO\nper-sequence mean", "DAPO\ntoken mean", "Dr. GRPO\nsum / C"])
ax.set_ylabel("weight per token")
ax.set_yscale("log")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Under GRPO's per-sequence mean a token of the short answer weighs ten times as much as a token
# of the long one: the long answer's tokens share one response's worth of weight. The token
# mean weighs every token the same (so long answers get more total weight), and the constant
# normaliser does the same without making a token's weight depend on what else is in the batch.
#
# ## 5. The GRPO update, and training the lab model
#
# One update: sample $G$ answers for each of $B$ prompts from the current policy, score them,
# compute the group advantages, compute the old and reference log-probs once without gradients,
# then take `cfg.epochs` optimiser steps on the token loss. Three policies appear and must not be
# confused: $\pi_\theta$ (being trained), $\pi_{\theta_\text{old}}$ (the policy that generated
# this batch; the ratio's denominator, refreshed at every update) and $\pi_\text{ref}$ (the
# frozen SFT model, the KL anchor, fixed for the whole run). DeepSeekMath's *iterative* variant
# resets the reference to the current policy between outer rounds, but within a run the
# reference never moves with the updates.
#
# ### Exercise 3: the GRPO group update
# `prompts` is a list of $B$ prompt strings, `cfg` a `grpo.GRPOConfig` (use `group_size`,
# `epochs`, `clip_eps`, `beta`, `max_grad_norm`, and `max_new_tokens`/`temperature` through
# `rlhf.sample`), `reward_fn(prompts, responses)` returns a tensor of rewards. Use
# `rlhf.sample(policy, tokenizer, prompts, cfg, generator)` (it returns `.sequences`,
# `.attention_mask`, `.response_start`, `.responses`), `rlhf.response_logprobs(model, sequences,
# attention_mask, start)` ([N, R] log-probs of the response tokens),
# `rlhf.response_action_mask(attention_mask, start)` and your two functions above. Return a dict
# with the mean `"reward"` of the samples and `"kl"`, the masked mean per-token k3 toward the
# reference (before the step).

# %%
def grpo_group_update(policy, ref, tokenizer, prompts, cfg, opt, generator, reward_fn):
    """One GRPO update on B prompts x G samples; returns {"reward": ..., "kl": ...}."""
    ### BEGIN SOLUTION
    group = [p for p in prompts for _ in range(cfg.group_size)]
    gen = rlhf.sample(policy, tokenizer, group, cfg, generator)
    seq, attn, start = gen.sequences, gen.attention_mask, gen.response_start
    rewards = torch.as_tensor(reward_fn(group, gen.responses), dtype=torch.float32)
    adv = group_advantages(rewards.view(len(prompts), cfg.group_size)).flatten()
    mask = rlhf.response_action_mask(attn, start)
    with torch.no_grad():
        logp_old = rlhf.response_logprobs(policy, seq, attn, start)
        ref_logp = rlhf.response_logprobs(ref, seq, attn, start)
    for _ in range(cfg.epochs):
        logp = rlhf.response_logprobs(policy, seq, attn, start)
        loss = grpo_loss(logp, logp_old, ref_logp, adv, mask, cfg.clip_eps, cfg.beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
        opt.step()
    kl = advantages.masked_mean(ppo.kl_k3(ref_logp - logp_old), mask)
    return {"reward": float(rewards.mean()), "kl": float(kl)}
    ### END SOLUTION


grpo_group_update = check("llm_grpo.grpo_group_update", grpo_group_update)

# %% [markdown]
# `grpo.train` loads the cached SFT model, makes the frozen reference, and calls your update
# `updates` times on random training prompts, with the gold (partial-credit) reward. The
# defaults: 40 updates of 16 prompts × 8 answers, learning rate 1e-4, β = 0.04, one epoch per
# batch. Every 10 updates it measures greedy gold accuracy on the 500 held-out problems.

# %%
cfg = grpo.GRPOConfig()
run = grpo.train(0, update_fn=grpo_group_update, eval_every=10)
h, start, final = run.history, run.start, run.final
gain = final["gold_accuracy"] - start["gold_accuracy"]
print(f"GRPO, {cfg.updates} updates of {cfg.n_prompts} x {cfg.group_size}: gold accuracy "
      f"{start['gold_accuracy']:.3f} -> {final['gold_accuracy']:.3f} (carry problems "
      f"{start['accuracy_carry']:.3f} -> {final['accuracy_carry']:.3f}), KL to the reference "
      f"{final['kl_to_ref']:.2f} nats, {final['cpu_seconds']:.1f} CPU-s of training")
assert gain >= 0.30 and final["kl_to_ref"] <= 2.0

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
axes[0].plot(h["reward"])
axes[0].set(title="mean reward of the samples", xlabel="update")
axes[1].plot(h["kl"])
axes[1].set(title="per-token k3 KL to the reference", xlabel="update")
axes[2].plot(h["eval_update"], h["gold_accuracy"], "o-")
axes[2].set(title="held-out gold accuracy (greedy)", xlabel="update", ylim=(0, 1))
plt.tight_layout()
plt.show()

# %% [markdown]
# The SFT model almost never carries; GRPO finds the carry because the right digit is still
# *sampled* now and then, and within its group that answer gets a positive advantage. The issue's
# target was a gain of at least 30 points within 60 s of training; the cell above asserts the
# gain and prints the time.
#
# ## 6. Dr. GRPO: the length bias and the difficulty bias
#
# Dr. GRPO ("GRPO done right", Liu et al., 2025) removes two normalisations:
# * the **$1/|o_i|$**: a wrong answer ($\hat A<0$) that is long spreads its penalty over more
#   tokens, so each token is pushed down less, while a short right answer's tokens are pushed up
#   more. The optimiser can lower the loss by making wrong answers longer;
# * the **division by the std**: a prompt on which nearly all answers agree has a small std, so
#   its few differing answers get very large advantages: the easiest and the hardest prompts
#   are over-weighted.
#
# Dr. GRPO uses $\hat A_i = r_i - \operatorname{mean}(r)$ and sums the token losses divided by
# a constant. On the worked rewards $[1,0,0,1]$ its advantages are $\pm 0.5$:

# %%
print("Dr. GRPO advantages of [1, 0, 0, 1]:",
      grpo.group_advantages(t04[:1], scale="none").double().numpy().round(3).tolist())
near_all = torch.tensor([[1.0] * 7 + [0.0], [1.0] * 4 + [0.0] * 4])
last_grpo = grpo.group_advantages(near_all)[:, -1].double().numpy().round(2).tolist()
last_dr = grpo.group_advantages(near_all, scale="none")[:, -1].double().numpy().round(2).tolist()
print("advantage of the wrong answer, 1 of 8 wrong vs 4 of 8 wrong: GRPO", last_grpo,
      "| Dr. GRPO", last_dr)
assert abs(last_grpo[0]) > 2 * abs(last_grpo[1])

# %% [markdown]
# **A toy for the length bias.** A "response" is one token that decides right or wrong, then
# "continue" tokens until a "stop" token (lengths capped at 30). The policy has three
# parameters: the logit of answering right, and one continue-logit for right answers and one for
# wrong answers. Length has no effect on the reward. We train it with `grpo.grpo_token_loss`
# (β = 0, one step per batch): GRPO's advantage and per-sequence mean against Dr. GRPO's
# centred advantage and constant normaliser.

# %%
L_MAX = 30


def length_toy_batch(params: torch.Tensor, n: int, g: torch.Generator):
    """Sample n toy responses; return (logp [n, L_MAX+1] with grad, mask, right [n] bool)."""
    z, theta_right, theta_wrong = params
    with torch.no_grad():
        right = torch.rand(n, generator=g) < torch.sigmoid(z)
        q = torch.where(right, torch.sigmoid(theta_right), torch.sigmoid(theta_wrong))
        u = torch.rand(n, generator=g)
        length = (torch.floor(torch.log(u) / torch.log(q)).clamp(max=L_MAX - 1) + 1).long()
    theta = torch.where(right, theta_right, theta_wrong)[:, None]
    first = torch.where(right, torch.nn.functional.logsigmoid(z),
                        torch.nn.functional.logsigmoid(-z))[:, None]
    cols = torch.arange(L_MAX + 1)[None]
    cont, stop = torch.nn.functional.logsigmoid(theta), torch.nn.functional.logsigmoid(-theta)
    logp = torch.where(cols == 0, first, torch.where(cols < length[:, None], cont, stop))
    return logp, (cols <= length[:, None]).float(), right


def expected_length(theta: torch.Tensor) -> float:
    """Mean number of tokens of a response whose continue-probability is sigmoid(theta)."""
    q = float(torch.sigmoid(theta))
    return 1 + (1 - q ** L_MAX) / (1 - q)


def length_toy(variant: str, steps: int = 150, B: int = 32, G: int = 8, seed: int = 0) -> dict:
    """Train the toy with 'grpo' or 'dr_grpo'; history of accuracy and expected lengths."""
    g = torch.Generator().manual_seed(seed)
    params = torch.tensor([-0.85, 1.4, 1.4], requires_grad=True)
    opt = torch.optim.Adam([params], lr=0.05)
    hist = {"accuracy": [], "length_right": [], "length_wrong": []}
    for _ in range(steps):
        logp, mask, right = length_toy_batch(params, B * G, g)
        if variant == "grpo":
            adv, mode, const = grpo.group_advantages(right.float().view(B, G)), "seq_mean", None
        else:
            adv = grpo.group_advantages(right.float().view(B, G), scale="none")
            mode, const = "seq_sum_norm", float(L_MAX + 1)
        loss, _ = grpo.grpo_token_loss(logp, logp.detach(), logp.detach(), adv.flatten(), mask,
                                       beta=0.0, mode=mode, constant=const)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist["accuracy"].append(float(torch.sigmoid(params[0])))
        hist["length_right"].append(expected_length(params[1].detach()))
        hist["length_wrong"].append(expected_length(params[2].detach()))
    return hist


toy_runs = {v: length_toy(v) for v in ("grpo", "dr_grpo")}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for v, hist in toy_runs.items():
    axes[0].plot(hist["length_wrong"], label=f"{v}: wrong answers")
    axes[0].plot(hist["length_right"], "--", label=f"{v}: right answers")
    axes[1].plot(hist["accuracy"], label=v)
axes[0].set(title="expected response length", xlabel="update")
axes[1].set(title="P(right answer)", xlabel="update")
for ax in axes:
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
for v, hist in toy_runs.items():
    print(f"{v:>8}: P(right) {hist['accuracy'][0]:.2f} -> {hist['accuracy'][-1]:.2f}; length of "
          f"wrong answers {hist['length_wrong'][0]:.1f} -> {hist['length_wrong'][-1]:.1f}, of "
          f"right answers {hist['length_right'][0]:.1f} -> {hist['length_right'][-1]:.1f}")
gr, dr = toy_runs["grpo"], toy_runs["dr_grpo"]
assert gr["length_wrong"][-1] > 3 * gr["length_wrong"][0]
assert gr["length_right"][-1] < 0.6 * gr["length_right"][0]
assert 0.5 < dr["length_wrong"][-1] / dr["length_wrong"][0] < 1.6
assert min(gr["accuracy"][-1], dr["accuracy"][-1]) > 0.8

# %% [markdown]
# Both learn to answer right, but under GRPO's $1/|o_i|$ the wrong answers grow towards the
# length cap and the right ones shrink, although length earns nothing. The reason is exact: for
# a response of $L$ tokens, the per-token average of $\nabla\log\pi$ of the length tokens has a
# negative expectation (the $1/L$ weights short responses' "stop" token more), so a negative
# advantage turns it into a push to continue. Dr. GRPO's constant normaliser leaves a gradient
# whose expectation over lengths is zero, and the lengths only wander. In a real reasoning
# model this is the drift towards long, wrong chains of thought that Dr. GRPO's authors
# reported.
#
# ## 7. DAPO: four changes
#
# DAPO stands for **D**ecoupled Clip and Dynamic s**A**mpling **P**olicy **O**ptimization (Yu et
# al., 2025, ByteDance Seed and Tsinghua AIR). It changes four things in GRPO.
#
# ### (1) Clip-higher
# PPO's clip limits each token's ratio to $[1-\epsilon, 1+\epsilon]$. In probability terms, a
# token with $\pi_{\theta_\text{old}} = 0.01$ and a positive advantage can rise at most to 0.012
# per update, while one at 0.5 can rise to 0.6: the upper bound barely lets unlikely tokens
# (exploration) grow, so the policy's entropy collapses onto what it already preferred. DAPO
# decouples the bounds, $\operatorname{clip}(\rho, 1-\epsilon_\text{low},
# 1+\epsilon_\text{high})$ with $\epsilon_\text{high} = 0.28 > \epsilon_\text{low} = 0.2$. The
# upper bound only acts when $\hat A > 0$ (for $\hat A < 0$ the lower bound does).

# %%
for eps_high in (0.2, 0.28):
    print(f"eps_high = {eps_high}: a token at p_old = 0.01 can reach at most "
          f"{0.01 * (1 + eps_high):.4f} in one update")
ratio_probe = torch.tensor([1.25], requires_grad=True)
grads = {}
for eps_high in (None, 0.28):
    (g_r,) = torch.autograd.grad(ppo.clipped_objective(ratio_probe, torch.tensor([1.0]), 0.2,
                                                       eps_high).sum(), ratio_probe)
    grads[eps_high] = float(g_r)
print(f"gradient of the objective at ratio 1.25 with A > 0: symmetric clip {grads[None]:.1f}, "
      f"eps_high = 0.28: {grads[0.28]:.1f}")
assert grads[None] == 0.0 and grads[0.28] == 1.0
assert math.isclose(0.01 * 1.2, 0.012) and math.isclose(0.01 * 1.28, 0.0128)

# %% [markdown]
# The entropy consequence, as the most each bound allows: a right-but-unlikely token starts at
# probability 0.01, the rest of the mass sits on the policy's favourite. If every update raised
# the rare token by the full clip factor, the entropy of the two-way split would evolve as below.

# %%
n_up = np.arange(41)
fig, ax = plt.subplots(figsize=(6, 3))
for eps_high in (0.2, 0.28):
    p_rare = np.minimum(0.5, 0.01 * (1 + eps_high) ** n_up)
    entropy = -(p_rare * np.log(p_rare) + (1 - p_rare) * np.log(1 - p_rare))
    ax.plot(n_up, entropy, label=f"eps_high = {eps_high}")
ax.set(xlabel="updates", ylabel="entropy (nats)",
       title="fastest possible rise of a token from p = 0.01")
ax.legend()
plt.tight_layout()
plt.show()
steps_needed = {e: math.ceil(math.log(0.5 / 0.01) / math.log(1 + e)) for e in (0.2, 0.28)}
print("updates to bring the rare token from 0.01 to 0.5:", steps_needed)
assert steps_needed[0.28] < 0.8 * steps_needed[0.2]

# %% [markdown]
# This is a bound, not a training run: it shows how the upper clip throttles exactly the
# tokens that would keep the policy exploring. DAPO's paper reports the effect on its
# entropy curves: with the symmetric clip the entropy of the sampled tokens falls quickly, with
# clip-higher it stays up.
#
# **The entropy curves on the lab model.** The clip only binds when the ratio can leave 1, so
# both runs below take 4 optimiser epochs per batch of groups (with one epoch the ratio is
# exactly 1 and the clip never acts). Same seed, same 20 updates; only $\epsilon_\text{high}$
# differs. `entropy` is the mean next-token entropy of the sampling policy on its own responses,
# which the package's `grpo.grpo_update` logs (your update from Exercise 3 does not have to).

# %%
clip_runs = {eh: grpo.train(0, updates=20, epochs=4, clip_eps_high=eh, eval_every=0,
                            n_eval=200)
             for eh in (None, 0.28)}
fig, ax = plt.subplots(figsize=(6, 3))
for eh, r in clip_runs.items():
    ax.plot(r.history["entropy"], label=f"eps_high = {eh or 0.2}")
ax.set(xlabel="update", ylabel="entropy (nats per token)",
       title="GRPO, 4 epochs per batch: symmetric clip vs clip-higher")
ax.legend()
plt.tight_layout()
plt.show()
clip_entropy = {eh: float(np.mean(r.history["entropy"][5:])) for eh, r in clip_runs.items()}
for eh, r in clip_runs.items():
    print(f"eps_high = {eh or 0.2}: mean entropy over updates 6-20 {clip_entropy[eh]:.3f}, "
          f"gold accuracy {r.start['gold_accuracy']:.3f} -> {r.final['gold_accuracy']:.3f}, "
          f"KL {r.final['kl_to_ref']:.2f}")
for r in clip_runs.values():  # both variants still learn the task
    assert r.final["gold_accuracy"] >= r.start["gold_accuracy"] + 0.15

# %% [markdown]
# Read these curves with care. The entropy of this policy is small from the start (its
# answers are two or three digits it is already fairly sure of), and one seed of 20 updates is
# noisy, so the gap between the two curves here is of the order of the update-to-update
# wiggle: on a task this small, clip-higher is not what decides the run. The effect DAPO
# reports appears over thousands of updates on long chains of thought, where many tokens are
# rare and a symmetric clip holds each of them back at every update.
#
# ### (2) Dynamic sampling
# Section 4 showed that an all-equal group gives zero policy gradient. As a policy improves,
# more groups become all-right (and on hard prompts all-wrong), so the effective batch shrinks
# and the gradient gets noisier. DAPO oversamples prompts and keeps only groups with
# $0 < \#\text{right} < G$ until the batch is full. With the exact-match reward (1 or 0), here
# is how the groups split for the SFT model and for the policy just trained, while
# `dynamic_sampling_batch` fills a batch of 32 informative groups:

# %%
def exact_reward(prompts, responses) -> torch.Tensor:
    """1 for an exactly right answer, else 0."""
    return torch.tensor([float(task.exact_match(p, r)) for p, r in zip(prompts, responses)])


def dynamic_sampling_batch(policy, tokenizer, pool, n_groups, cfg, generator, reward_fn,
                           max_rounds: int = 8) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Draw groups for prompts from ``pool`` until ``n_groups`` informative ones are found.

    Returns (kept prompts, their rewards [n_groups, G], every group's rewards [drawn, G])."""
    kept, drawn = [], []
    for _ in range(max_rounds):
        idx = torch.randint(0, len(pool), (2 * n_groups,), generator=generator)
        prompts = [pool[int(i)] for i in idx]
        group = [p for p in prompts for _ in range(cfg.group_size)]
        with torch.no_grad():
            responses = rlhf.sample(policy, tokenizer, group, cfg, generator).responses
        r = reward_fn(group, responses).view(len(prompts), cfg.group_size)
        kept += [(p, row) for p, row, k in zip(prompts, r, grpo.informative_groups(r)) if k]
        drawn.append(r)
        if len(kept) >= n_groups:
            break
    kept = kept[:n_groups]
    return [p for p, _ in kept], torch.stack([row for _, row in kept]), torch.cat(drawn)


sft_policy, tokenizer, _ = sft.sft_model(sft.SFTConfig(), 0)
train_problems, held_out = task.split_problems(sft.SFTConfig().split_seed,
                                               sft.SFTConfig().n_heldout)
pool = [p.prompt for p in train_problems]
shares = {}
for name, model in (("SFT model", sft_policy), ("after GRPO", run.policy)):
    kept, kept_r, all_r = dynamic_sampling_batch(model, tokenizer, pool, 32, cfg,
                                                 torch.Generator().manual_seed(1), exact_reward)
    n_right = all_r.sum(1)
    shares[name] = {"all right": float((n_right == cfg.group_size).float().mean()),
                    "all wrong": float((n_right == 0).float().mean()),
                    "informative": float(grpo.informative_groups(all_r).float().mean())}
    print(f"{name:>10}: drew {len(all_r)} prompts to keep {len(kept)} informative groups; "
          + ", ".join(f"{k} {v:.0%}" for k, v in shares[name].items()))
    assert bool(grpo.informative_groups(kept_r).all()) and len(kept) == 32
assert shares["after GRPO"]["all wrong"] < 0.5 * shares["SFT model"]["all wrong"]
assert shares["after GRPO"]["all right"] > shares["SFT model"]["all right"]

# %% [markdown]
# Training moves groups from all-wrong (the carry problems the SFT model never gets right) to
# all-right; both kinds are dropped. Early on the two trends offset each other, but once the
# policy is good, all-right groups dominate and more and more prompts must be drawn to fill a
# batch with groups that carry a gradient. Filling it keeps the number of useful groups per
# update constant.
#
# ### (3) The token-level loss
# DAPO averages over all tokens of the batch, the "token_mean" row of Section 4's table: a long
# response's tokens are no longer down-weighted, so a long chain of thought with a wrong
# pattern in it is penalised per token as fully as a short one.
#
# ### (4) Overlong reward shaping
# Responses cut at the maximum length are noisy training signal: a correct but unfinished
# reasoning is punished like a wrong one. DAPO either masks truncated samples out of the loss
# (overlong filtering) or adds a soft penalty that starts $L_\text{cache}$ tokens before the
# limit $L_\max$ and falls linearly to $-1$:

# %%
lmax, lcache = 20480, 4096
probe_lengths = torch.tensor([16000, 18432, 21000])
pen = grpo.overlong_penalty(probe_lengths, lmax, lcache)
print("lengths", probe_lengths.tolist(), "-> penalty", pen.double().numpy().round(3).tolist())
assert torch.allclose(pen, torch.tensor([0.0, -0.5, -1.0], dtype=torch.float64))
grid = torch.arange(0, 24000, 100)
fig, ax = plt.subplots(figsize=(6, 2.6))
ax.plot(grid, grpo.overlong_penalty(grid, lmax, lcache))
ax.axvline(lmax - lcache, ls=":", c="gray")
ax.axvline(lmax, ls=":", c="gray")
ax.set(xlabel="response length (tokens)", ylabel="added reward",
       title="DAPO's soft overlong penalty (L_max = 20480, L_cache = 4096)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 8. RLOO and REINFORCE++: other baselines without a critic
#
# **RLOO** (REINFORCE Leave-One-Out, as revisited for RLHF by Ahmadian et al., 2024) treats the
# whole response as one action: generation is a contextual bandit, prompt in, response out, one
# reward. That does not make the reward any less sparse; it removes the need to assign credit
# to individual tokens, and so the need for a critic. Its baseline for sample $i$ is the mean
# of the *other* $G-1$ rewards:
# $$\hat A_i = r_i - \frac1{G-1}\sum_{j\ne i} r_j = \frac{G}{G-1}\big(r_i - \bar r\big).$$
# The baseline must not depend on the sample it scores; if it includes $r_i$, the estimate of
# the gradient shrinks by the factor $(G-1)/G$.
#
# ### Exercise 4: RLOO advantages

# %%
def rloo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """RLOO advantages [B, G] from rewards [B, G] (G >= 2): each reward minus the mean of the
    other rewards of its group."""
    ### BEGIN SOLUTION
    g = rewards.shape[1]
    others = (rewards.sum(dim=1, keepdim=True) - rewards) / (g - 1)
    return rewards - others
    ### END SOLUTION


rloo_advantages = check("llm_grpo.rloo_advantages", rloo_advantages)

# %% [markdown]
# Bias, measured: a three-armed bandit with a softmax policy, rewards drawn with noise around
# arm means, groups of $G = 4$. We average 20,000 group gradient estimates
# $\frac1G\sum_i \hat A_i\nabla\log\pi(a_i)$ and compare them with the exact gradient of the
# expected reward.

# %%
arm_means = torch.tensor([2.0, 1.0, 1.5], dtype=torch.float64)  # all positive, like most rewards
bandit_logits = torch.tensor([0.3, 0.0, -0.2], dtype=torch.float64)
pi = torch.softmax(bandit_logits, 0)
exact_grad = pi * (arm_means - pi @ arm_means)  # d E[r] / d logits for a softmax
G_b, n_groups = 4, 20000
g_b = torch.Generator().manual_seed(0)
arms = torch.multinomial(pi.expand(n_groups, 3), G_b, replacement=True, generator=g_b)
r_b = arm_means[arms] + 0.5 * torch.randn(n_groups, G_b, generator=g_b, dtype=torch.float64)
score = torch.nn.functional.one_hot(arms, 3).double() - pi  # grad log pi(a) wrt the logits
baselines = {"no baseline (plain REINFORCE)": r_b,
             "RLOO (leave one out)": rloo_advantages(r_b),
             "group mean (includes the sample)": r_b - r_b.mean(1, keepdim=True),
             "GRPO (mean and std)": grpo.group_advantages(r_b)}
ratio, spread = {}, {}
for name, adv_b in baselines.items():
    per_group = (adv_b[..., None] * score).mean(1)  # one gradient estimate per group [n, 3]
    ratio[name] = float(per_group.mean(0) @ exact_grad / (exact_grad @ exact_grad))
    spread[name] = float(per_group.var(0).sum())
    print(f"{name:>33}: mean estimate / exact gradient = {ratio[name]:.3f}, variance of one "
          f"group's estimate {spread[name]:.4f}")
ratio_rloo, ratio_mean = ratio["RLOO (leave one out)"], ratio["group mean (includes the sample)"]
assert abs(ratio_rloo - 1) < 0.05 and abs(ratio_mean - (G_b - 1) / G_b) < 0.05
assert abs(ratio["no baseline (plain REINFORCE)"] - 1) < 0.05
assert spread["RLOO (leave one out)"] < 0.7 * spread["no baseline (plain REINFORCE)"]

# %% [markdown]
# Plain REINFORCE and RLOO are both unbiased, but with rewards that are all positive the
# leave-one-out baseline makes each group's estimate much less noisy. Including the sample
# scales the estimate by $(G-1)/G = 0.75$ (and its variance by the square of that, which is
# all of its apparent advantage in variance). A constant factor is harmless for the direction (the learning rate absorbs
# it), which is why GRPO can use the plain group mean; dividing by the std changes more than a
# constant, since it rescales each prompt differently.
#
# **REINFORCE++** (Hu, 2025) goes the other way: no per-prompt baseline at all. The reward of
# each response, minus β times the KL of the tokens after position $t$ (the per-token KL reward
# of notebook 11, summed with γ = 1), is normalised over the **whole batch**, and PPO's clip is
# kept. An all-wrong group then still gets negative advantages, relative to the batch:

# %%
mixed = torch.tensor([[1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
print("rewards      ", mixed.tolist())
print("GRPO         ", grpo.group_advantages(mixed).double().numpy().round(2).tolist())
print("RLOO         ", rloo_advantages(mixed).double().numpy().round(2).tolist())
print("REINFORCE++  ", grpo.reinforce_pp_advantages(mixed).double().numpy().round(2).tolist())
assert bool((grpo.reinforce_pp_advantages(mixed)[1] < 0).all())

# %% [markdown]
# | method | baseline for response $i$ | scale | critic |
# |---|---|---|---|
# | PPO (notebook 11) | learned $V_\psi$ per token, GAE | advantage whitening | yes |
# | GRPO | mean of its group | std of its group | no |
# | Dr. GRPO | mean of its group | none | no |
# | RLOO | mean of the *other* $G-1$ in its group | none | no |
# | REINFORCE++ | mean of the whole batch | std of the whole batch | no |
# | ReMax | reward of the greedy response to the same prompt | none | no |
#
# REINFORCE++'s authors report more stable training, less length hacking with learned reward
# models and more reward per unit of KL than GRPO; those are their measurements on large
# models, not something this notebook reproduces.
#
# ## 9. Group size: advantage noise against compute
#
# A larger group gives a better baseline, and costs proportionally more generation. First, how
# noisy is one answer's advantage? We sample 32 answers to each of 48 training prompts from the
# SFT model once, then, for group sizes 2 to 16, put answer 0 into many random groups drawn from
# the other 31 and measure how much its advantage varies from group to group.

# %%
probe_prompts = pool[:48]
n_pool = 32
with torch.no_grad():
    probe_gen = rlhf.sample(sft_policy, tokenizer, [p for p in probe_prompts for _ in range(n_pool)],
                            cfg, torch.Generator().manual_seed(2))
probe_r = rlhf.gold_reward_fn([p for p in probe_prompts for _ in range(n_pool)],
                              probe_gen.responses).view(len(probe_prompts), n_pool).double()
g_s = torch.Generator().manual_seed(3)
noise = {"GRPO": {}, "Dr. GRPO": {}}
sizes = (2, 4, 8, 16)
for G_s in sizes:
    draws = {"GRPO": [], "Dr. GRPO": []}
    for _ in range(200):
        others = torch.argsort(torch.rand(len(probe_prompts), n_pool - 1, generator=g_s), 1)
        idx = torch.cat([torch.zeros(len(probe_prompts), 1, dtype=torch.long),
                         others[:, :G_s - 1] + 1], 1)
        grp = probe_r.gather(1, idx)
        draws["GRPO"].append(grpo.group_advantages(grp)[:, 0])
        draws["Dr. GRPO"].append(grpo.group_advantages(grp, scale="none")[:, 0])
    for k in draws:
        noise[k][G_s] = float(torch.stack(draws[k]).std(0).mean())
fig, ax = plt.subplots(figsize=(6, 3))
for k in noise:
    print(f"{k:>8}: std of answer 0's advantage across groups:",
          {G_s: round(v, 3) for G_s, v in noise[k].items()})
    ax.plot(sizes, [noise[k][G_s] for G_s in sizes], "o-", label=k)
ax.set_xscale("log", base=2)
ax.xaxis.set_minor_locator(plt.NullLocator())
ax.set_xticks(sizes, [str(G_s) for G_s in sizes])
ax.set(yscale="log", xlabel="group size G (samples per prompt)",
       ylabel="std of one answer's advantage", title="advantage noise on SFT samples")
ax.legend()
plt.tight_layout()
plt.show()
assert noise["Dr. GRPO"][16] < 0.5 * noise["Dr. GRPO"][2]
assert noise["GRPO"][16] < noise["GRPO"][2]

# %% [markdown]
# The centred advantage's noise falls as $G$ grows: the baseline averages more siblings (the
# mean of $G-1$ others has variance $\sigma^2/(G-1)$ for independent samples; here the groups
# are drawn from a pool of 32, which shrinks it further at large $G$). GRPO's std-normalised advantage is noisier at small $G$: with $G = 2$ it can only be
# $\pm 1$ or 0, whatever the size of the difference.
#
# Does a bigger group train better for the same number of samples? That needs several GRPO
# runs, too slow for this notebook, so they are stored. The command
# `python -m rlcourse.llm.grpo --sweep-out results/lab/grpo_group_sweep.json` trains GRPO for 40
# updates with $B \times G = 128$ samples per update for each $G$ in 2, 4, 8, 16 (so $B$ = 64,
# 32, 16, 8 prompts) on seeds 0, 1, 2, and writes the gold accuracy against the samples drawn.

# %%
sweep = json.loads((Path(rlcourse.__file__).resolve().parents[1] / "results" / "lab" /
                    "grpo_group_sweep.json").read_text())
by_g: dict[int, list[dict]] = {}
for row in sweep["runs"]:
    by_g.setdefault(row["group_size"], []).append(row)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
for G_s, rows in sorted(by_g.items()):
    acc = np.median([r["gold_accuracy"] for r in rows], axis=0)
    axes[0].plot(rows[0]["samples"], acc, "o-", label=f"G = {G_s} (B = {rows[0]['n_prompts']})")
    finals = [r["final"]["gold_accuracy"] for r in rows]
    axes[1].scatter([G_s] * len(finals), finals, c="C0")
axes[0].set(xlabel="samples drawn", ylabel="held-out gold accuracy",
            title=f"median over {len(sweep['runs']) // len(by_g)} seeds")
axes[0].legend(fontsize=8)
axes[1].set_xscale("log", base=2)
axes[1].xaxis.set_minor_locator(plt.NullLocator())
axes[1].set(xlabel="group size G", ylabel="final gold accuracy",
            title=f"after {sweep['updates'] * sweep['samples_per_update']} samples, every seed")
axes[1].set_xticks(sorted(by_g), [str(G_s) for G_s in sorted(by_g)])
plt.tight_layout()
plt.show()
final_by_g = {G_s: float(np.median([r["final"]["gold_accuracy"] for r in rows]))
              for G_s, rows in sorted(by_g.items())}
start_acc = float(np.median([r["start"]["gold_accuracy"] for r in sweep["runs"]]))
print(f"SFT gold accuracy {start_acc:.3f}; median final accuracy by G:",
      {G_s: round(v, 3) for G_s, v in final_by_g.items()})
inform_by_g = {G_s: float(np.mean([r["informative_groups"] for r in rows]))
               for G_s, rows in sorted(by_g.items())}
print("fraction of informative groups during training by G:",
      {G_s: round(v, 2) for G_s, v in inform_by_g.items()})
assert all(v >= start_acc + 0.2 for v in final_by_g.values())
assert final_by_g[16] < max(final_by_g.values()) - 0.03
assert list(inform_by_g.values()) == sorted(inform_by_g.values())

# %% [markdown]
# With the budget fixed at 128 samples per update, every group size learns, but the largest
# group, which leaves the fewest prompts per update, ends lowest. A small group is informative
# less often (two answers agree more often than sixteen do), yet many small groups still carry
# signal from many different prompts. On this task the number of distinct prompts per update
# matters more than the quality of each baseline; with a sparser reward (exact match, hard
# problems) small groups would more often be all-wrong and the balance moves towards larger G.
#
# ## 10. Where GRPO came from, and the R1 recipe
#
# GRPO was introduced in DeepSeekMath (a 7B model for mathematics) and became widely known
# through DeepSeek-R1. R1-Zero applied GRPO with rule-based rewards (answer accuracy and a
# format check) directly to the base model. R1 itself went through stages: a small cold-start
# SFT on long reasoning examples, reasoning-oriented RL with GRPO, rejection sampling of the RL
# model's outputs into a new SFT set mixed with general data, a second SFT, and RL for all
# scenarios (reasoning rewards plus preference rewards for helpfulness and harmlessness);
# smaller models were then distilled from R1's outputs. The group comparison itself does not
# supply step-by-step (process) supervision: that needs a process reward model scoring steps,
# which DeepSeekMath tried as a variant.

# %% [markdown]
# ## Common misconceptions
#
# * "RLOO treats the whole sequence as one action, which solves the sparse-reward problem."
#   The reward is exactly as sparse; the change is modelling generation as a contextual bandit,
#   so no per-token credit assignment and no critic are needed (Section 8). <!-- E-11 -->
# * "The official GRPO objective uses the ratio $\pi_\theta(o_i|q)/\pi_{\theta_\text{old}}(o_i|q)$
#   of whole responses." DeepSeekMath's objective is token-level: a ratio per token, averaged
#   with $\frac1{|o_i|}\sum_t$, and a per-token k3 KL; a sequence ratio is a product of token
#   ratios and clips something else entirely (Section 4). <!-- E-21 -->
# * "GRPO upgrades DPO's pairwise comparison to a comparison of groups." GRPO is an online,
#   PPO-style policy gradient, not a descendant of DPO; each answer is compared with the other
#   answers to the same prompt, and groups are never compared with each other (Section 2).
#   <!-- E-22 -->
# * "DeepSeek chose GRPO to train huge code models, and the group comparison suits process
#   supervision." GRPO was introduced for DeepSeekMath, a 7B math model, and later used for
#   R1's reasoning; process supervision comes from a process reward model, not from the group
#   (Section 10). <!-- E-24 -->
# * "GRPO needs neither a reward model nor a critic." The group baseline removes only the
#   critic; the reward model goes only when the reward is computed by rules (Section 1).
#   <!-- E-27 -->
# * "GRPO's objective is $\sum_i \min(r_t(\theta)\hat A_i, \dots)$." Mixing the token index $t$
#   with the response index $i$ hides the structure: the ratio is $\rho_{i,t}$, per token of
#   response $i$, inside $\frac1{|o_i|}\sum_t$ (Section 4). <!-- E-28 -->
# * "The R1 rule reward is $\alpha r_\text{acc} + \beta r_\text{format} + \gamma r_\text{length}$."
#   β and γ already name the KL coefficient and the discount, and a length reward is not part of
#   R1's published reward: accuracy and format (plus language consistency later) (Section 3).
#   <!-- E-29 -->
# * "DAPO means Decoupled Alignment from Preference Optimization." It is Decoupled Clip and
#   Dynamic sAmpling Policy Optimization, an RL method, and clip-higher means decoupled lower
#   and upper bounds, not a bigger range for positive rewards (Section 7). <!-- E-31 -->
# * "GRPO comes from the DeepSeek-R1 paper." It was introduced in DeepSeekMath
#   (arXiv:2402.03300); R1 made it famous (Section 1). <!-- E-34 -->
# * "The reference model is the policy from the previous epoch." The reference is the frozen
#   SFT model; the policy that generated the batch is $\pi_{\theta_\text{old}}$, refreshed every
#   update. Only DeepSeekMath's iterative variant resets the reference, once per outer round
#   (Section 5). <!-- E-49 -->
# * "The original GRPO formula" written with whole-response terms and no per-token average is
#   the same sequence-level simplification; the original is token-level (Section 4).
#   <!-- E-53 -->

# %% [markdown]
# ## What to remember
#
# * GRPO = PPO's clipped token objective + a k3 KL to the reference in the loss, with the
#   critic replaced by the group: $\hat A_i = (r_i - \bar r)/(\operatorname{std}(r) + \epsilon)$
#   for every token of response $i$.
# * The comparison is inside each prompt's group; use the population std; all-equal groups get
#   exactly zero advantage and give no policy gradient.
# * Three policies: $\pi_\theta$ (trained), $\pi_{\theta_\text{old}}$ (generated the batch, ratio
#   denominator), $\pi_\text{ref}$ (frozen SFT, KL anchor).
# * With one epoch per batch the ratio is 1 and GRPO's gradient is REINFORCE with a group
#   baseline, averaged per response.
# * The aggregation decides token weights: per-sequence mean $1/(G|o_i|)$, token mean
#   $1/\sum_j|o_j|$, or a constant.
# * Dr. GRPO drops the std and the $1/|o_i|$: the latter makes wrong answers drift long.
# * DAPO: clip-higher ($\epsilon_\text{high} = 0.28$), dynamic sampling (drop all-equal
#   groups and refill), token-level loss, overlong shaping.
# * RLOO: baseline from the other $G-1$ (unbiased); the plain group mean shrinks the gradient by
#   $(G-1)/G$. REINFORCE++: batch-wide normalisation, no per-prompt baseline.
# * Larger groups give less noisy advantages at proportionally more generation; for a fixed
#   sample budget, more prompts per update compete with better baselines.
# * Verifiable rewards need a parser that cannot be gamed: bounded, canonical, no `eval`.

# %% [markdown]
# ## Further reading
#
# * Shao et al., *DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language
#   Models* (2024, arXiv:2402.03300): introduces GRPO.
# * DeepSeek-AI, *DeepSeek-R1: Incentivizing Reasoning Capability in LLMs via Reinforcement
#   Learning* (2025): R1-Zero, the multi-stage R1 recipe, distillation.
# * Yu et al., *DAPO: An Open-Source LLM Reinforcement Learning System at Scale* (2025):
#   clip-higher, dynamic sampling, token-level loss, overlong shaping.
# * Liu et al., *Understanding R1-Zero-Like Training: A Critical Perspective* (2025): Dr. GRPO;
#   their 7B model trained from Qwen2.5-Math-7B reports 43.3% on AIME 2024 after 27 hours of
#   training (not reproduced here).
# * Ahmadian et al., *Back to Basics: Revisiting REINFORCE Style Optimization for Learning from
#   Human Feedback in LLMs* (2024): RLOO for RLHF.
# * Hu, *REINFORCE++* (2025): batch-normalised REINFORCE with PPO's clip.

# %% [markdown]
# ## Interview questions
#
# 1. Why does GRPO not need a critic, and what does it pay instead?
#
# <details><summary>Answer</summary>
#
# The baseline comes from the other answers to the same prompt: their mean reward estimates
# the prompt's value. The price is G samples per prompt (G = 8 to 64 in practice), so more
# generation; a baseline that is noisy for small G; no signal from prompts whose answers all
# score the same; and one advantage per response, so no per-token credit assignment, which
# suits outcome rewards better than dense ones.
# </details>
#
# 2. Compute the GRPO advantages for rewards [1, 0, 0, 1]. What changes with the sample std, and
#    what happens if all rewards are 1?
#
# <details><summary>Answer</summary>
#
# Mean 0.5, population std 0.5: advantages [1, -1, -1, 1]. With the sample std (0.577) they are
# ±0.866. All rewards 1: every advantage is 0 (the code must not produce 0/0), so the group adds
# no policy gradient, only the KL term.
# </details>
#
# 3. Why keep both the clip and the KL term?
#
# <details><summary>Answer</summary>
#
# They guard different things. The clip limits how far one update moves the policy from the
# policy that generated the batch (a trust region for reusing samples). The KL keeps the whole
# run anchored to the reference model, whatever the number of updates, which protects fluency
# and limits reward hacking.
# </details>
#
# 4. Per-sequence mean, token mean or a constant: how does each weigh the tokens of a 10-token
#    and a 100-token answer?
#
# <details><summary>Answer</summary>
#
# Per-sequence mean (GRPO): 1/20 vs 1/200 per token, each answer gets the same total weight.
# Token mean (DAPO): 1/110 for every token. Constant C: 1/(2C) for every token, independent of
# the batch. The first under-weights long answers' tokens, which lets long wrong answers escape
# their penalty (Dr. GRPO's length bias).
# </details>
#
# 5. What is dynamic sampling, and why is it needed?
#
# <details><summary>Answer</summary>
#
# Groups whose answers are all right or all wrong have zero advantage and give no policy
# gradient. As accuracy rises, more groups are like that, so the effective batch shrinks. DAPO
# keeps sampling prompts and drops such groups until the batch has enough informative ones.
# </details>
#
# 6. What does RLOO's baseline exclude, and why?
#
# <details><summary>Answer</summary>
#
# The sample's own reward: $b_i = \frac1{G-1}\sum_{j\ne i}r_j$. A baseline that contains $r_i$
# is correlated with the action it scores, so $\mathbb E[b\,\nabla\log\pi]\ne 0$; here the
# effect is to scale the gradient by $(G-1)/G$. Excluding it keeps the estimate unbiased; note
# $r_i - b_i = \frac{G}{G-1}(r_i - \bar r)$.
# </details>
#
# 7. Your GRPO run's response length keeps growing while accuracy stalls. What do you check?
#
# <details><summary>Answer</summary>
#
# The loss aggregation (a per-sequence mean under-penalises long wrong answers: use a token
# mean or a constant), truncation (answers cut at the limit: overlong filtering or a soft
# penalty), whether the reward accidentally pays for length, and the fraction of informative
# groups. Log the length of right and wrong answers separately.
# </details>
#
# 8. GRPO's reward suddenly drops after a stretch of steady progress. What could cause it?
#
# <details><summary>Answer</summary>
#
# Too large a step (learning rate, several epochs per batch with a wide clip) collapsing the
# policy's entropy, so the groups stop containing useful variation; a reward that can be gamed
# (a loose parser or format check); groups that are mostly all-right or all-wrong, leaving few
# informative prompts per batch; or drift far from the reference if β is small. Check the
# entropy, the KL, the share of informative groups and a few samples; remedies are a smaller
# step, clip-higher, dynamic sampling, a stricter verifier or a larger β.
# </details>
#
# 9. How do GRPO, Dr. GRPO, RLOO and REINFORCE++ differ?
#
# <details><summary>Answer</summary>
#
# Only in the baseline and the scale of the advantage: group mean and std; group mean only;
# leave-one-out mean; whole-batch mean and std (with the KL in the per-token reward). All keep a
# clipped ratio or plain REINFORCE, and none trains a critic.
# </details>

# %%
rlcourse.results.record(
    "13_grpo",
    title="GRPO and friends",
    topics="group-normalised advantage, token-level GRPO loss with clip and k3 KL, token "
           "weights of three aggregations, verifiable rewards, GRPO update and training, "
           "Dr. GRPO length bias, DAPO's four parts, RLOO bias, REINFORCE++, group-size sweep",
    headline=(f"GRPO with the gold reward: gold accuracy {start['gold_accuracy']:.2f} -> "
              f"{final['gold_accuracy']:.2f} in {cfg.updates} updates "
              f"({final['cpu_seconds']:.0f} CPU-s), KL {final['kl_to_ref']:.2f} nats; toy: wrong "
              f"answers grow {gr['length_wrong'][-1] / gr['length_wrong'][0]:.0f}x longer under "
              f"GRPO's 1/|o|, not under Dr. GRPO"),
    metrics={"gold_gain": gain, "gold_accuracy": final["gold_accuracy"],
             "kl_to_ref": final["kl_to_ref"], "train_cpu_seconds": final["cpu_seconds"],
             "rloo_ratio": ratio_rloo, "mean_baseline_ratio": ratio_mean},
)
print(f"total time {session.elapsed():.1f} s, CPU {time.process_time() - cpu_start:.1f} s")
