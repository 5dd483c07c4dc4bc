# %% [markdown]
# # 11 · RLHF with PPO
#
# Notebook 09 trained a small GPT to add and then fine-tuned it (SFT) on demonstrations that
# often forget the carry; notebook 10 trained a reward model (RM) on preference pairs. Here we
# close the loop: the SFT model becomes a **policy**, the RM (or, as a control, the gold reward
# computed by code) scores what it writes, and PPO from notebook 07 improves it while a KL
# penalty keeps it near the SFT model. It is the InstructGPT recipe, small enough to run on a
# laptop CPU, with one advantage over the real thing: we can always ask the *gold* reward
# whether the proxy is being gamed.
#
# **Learning goals.** After this notebook you can
# 1. write the KL-regularised RLHF objective in its correct form, with responses sampled from
#    the policy, and show with a sign test what the inverted form does;
# 2. name the four models of RLHF-PPO, say which are trained and which frozen, and measure
#    what each costs in memory;
# 3. implement `make_experience`, the per-token reward (−β·KL on every token, the score on the
#    last real one) and masked token-level GAE with Part II's `gae`;
# 4. compare the k1, k2 and k3 KL estimators with the exact KL of the next-token
#    distributions, and control β adaptively;
# 5. read a β sweep as a reward–KL frontier, recognise reward hacking (the Goodhart curve), and
#    diagnose broken runs from their logged reward, KL, entropy, length and clip fraction.
#
# **Notation.** $x$ is a prompt, $y = (y_1,\dots,y_T)$ a response, $\pi_\theta$ the policy,
# $\pi_\text{ref}$ the frozen SFT model, $r(x, y)$ the reward model's score. Objectives are
# maximised; code minimises `loss = -objective`. KL is in nats, written with its direction:
# $D_\mathrm{KL}(P\,\|\,Q) = \mathbb E_{y\sim P}[\log P(y) - \log Q(y)]$.

# %%
import inspect
import json
import time
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import rlcourse
import rlcourse.results
from rlcourse import advantages, ppo
from rlcourse.exercises import check
from rlcourse.llm import rlhf, sft, task
from rlcourse.llm.reward_model import load_reward_model

session = rlcourse.setup(seed=0)
cpu_start = time.process_time()

# %% [markdown]
# ## 1. The objective, and a sign test
#
# RLHF maximises the reward model's score while staying close to the reference model:
# $$J(\theta) = \mathbb E_{x\sim\mathcal D,\; y\sim\pi_\theta(\cdot\mid x)}\big[r(x,y)\big]
#   - \beta\,\mathbb E_{x\sim\mathcal D}\Big[D_\mathrm{KL}\big(\pi_\theta(\cdot\mid x)\,\|\,
#   \pi_\text{ref}(\cdot\mid x)\big)\Big].$$
# The KL is an expectation under the policy, $D_\mathrm{KL}(\pi_\theta\|\pi_\text{ref}) =
# \mathbb E_{y\sim\pi_\theta}\big[\log\pi_\theta(y\mid x) - \log\pi_\text{ref}(y\mid x)\big]$,
# so both terms are averages over the *same* samples $y\sim\pi_\theta$ and merge into one
# per-sample objective:
# $$J(\theta) = \mathbb E_{x,\;y\sim\pi_\theta}\Big[\,r(x,y) - \beta\log
#   \frac{\pi_\theta(y\mid x)}{\pi_\text{ref}(y\mid x)}\Big].$$
# Two details carry the whole meaning. The log-ratio has the **policy on top**: a response the
# policy likes more than the reference did costs reward. And $y$ is drawn from the **policy**,
# not from the SFT model: the policy is what we evaluate and improve.
#
# The direction matters too. SFT and pretraining minimise the forward KL
# $D_\mathrm{KL}(p_\text{data}\|\pi_\theta)$ (maximum likelihood, mass-covering). The RLHF penalty
# is the reverse direction in $\pi_\theta$, $D_\mathrm{KL}(\pi_\theta\|\pi_\text{ref})$: it is
# computed on the policy's own samples and punishes putting mass where the reference has little
# (notebook 07, Section 2).
#
# A sign test on a toy "language model" with six possible responses, where every expectation
# is exact: we run gradient ascent from $\pi_\text{ref}$ on three objectives, the correct one,
# the one with the log-ratio inverted ($\log\pi_\text{ref}/\pi_\theta$) and the one whose
# samples come from $\pi_\text{ref}$ instead of $\pi_\theta$, each started a small random step
# away from $\pi_\text{ref}$ (as a policy is after its first update). The correct objective has a known
# maximiser, $\pi^*(y)\propto\pi_\text{ref}(y)\,e^{r(y)/\beta}$ (notebook 12 derives it), so the
# test has a target.

# %%
ref_logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -0.5, -1.0], dtype=torch.float64)
ref_logp = torch.log_softmax(ref_logits, 0)
toy_reward = torch.tensor([0.0, 0.2, 1.0, 0.1, 0.0, 0.3], dtype=torch.float64)
BETA_TOY = 0.5


def toy_objective(kind: str, logits: torch.Tensor) -> torch.Tensor:
    """The three objectives, as exact expectations over the six responses."""
    logp = torch.log_softmax(logits, 0)
    if kind == "correct":      # y ~ pi, r - beta log(pi / ref)
        return (logp.exp() * rlhf.rlhf_objective(toy_reward, logp, ref_logp, BETA_TOY)).sum()
    if kind == "inverted":     # y ~ pi, r - beta log(ref / pi)
        return (logp.exp() * rlhf.rlhf_objective(toy_reward, ref_logp, logp, BETA_TOY)).sum()
    return (ref_logp.exp() * rlhf.rlhf_objective(toy_reward, logp, ref_logp, BETA_TOY)).sum()


def ascend(kind: str, steps: int = 400, lr: float = 1.0) -> tuple[torch.Tensor, list[float]]:
    """Gradient ascent from a policy a small step away from the reference."""
    logits = (ref_logits + 0.1 * start_noise).requires_grad_(True)
    opt = torch.optim.SGD([logits], lr=lr)
    kls = []
    for _ in range(steps):
        opt.zero_grad()
        (-toy_objective(kind, logits)).backward()
        opt.step()
        kls.append(float(ppo.categorical_kl(logits.detach(), ref_logits)))
    return logits.detach(), kls


start_noise = torch.randn(6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
gibbs = torch.log_softmax(ref_logp + toy_reward / BETA_TOY, 0)
toy = {kind: ascend(kind) for kind in ("correct", "inverted", "sampled from ref")}
for kind, (logits, kls) in toy.items():
    p = torch.softmax(logits, 0)
    print(f"{kind:>17}: KL(pi || ref) = {kls[-1]:6.3f}, E_pi[r] = {float(p @ toy_reward):.3f}, "
          f"KL(pi || pi*) = {float(ppo.categorical_kl(logits, gibbs)):.4f}")
kl_correct, kl_inverted = toy["correct"][1][-1], toy["inverted"][1][-1]
assert float(ppo.categorical_kl(toy["correct"][0], gibbs)) < 1e-4  # reaches pi*
assert kl_inverted > 5 * kl_correct and toy["inverted"][1][-1] > toy["inverted"][1][100]
reward_ref = float(ref_logp.exp() @ toy_reward)
reward_wrong = float(torch.softmax(toy["sampled from ref"][0], 0) @ toy_reward)
assert reward_wrong < reward_ref < float(torch.softmax(toy["correct"][0], 0) @ toy_reward)

# %% [markdown]
# The correct objective converges to $\pi^*$ and stops at a moderate KL. The inverted one
# *pays* the policy for every nat it moves away, so its KL keeps growing: the penalty has
# become a bonus. The third one is subtler: with $y\sim\pi_\text{ref}$ the reward term
# $\mathbb E_{y\sim\pi_\text{ref}}[r]$ does not depend on $\theta$ at all, so its gradient is
# exactly zero and the reward is *never optimised*; what is left,
# $-\beta\,\mathbb E_{\pi_\text{ref}}[\log\pi_\theta/\pi_\text{ref}] =
# +\beta D_\mathrm{KL}(\pi_\text{ref}\|\pi_\theta)$, again pushes the policy away. Below, the
# gradient of each part at a random policy.

# %%
probe = (ref_logits + torch.randn(6, dtype=torch.float64)).requires_grad_(True)
reward_part = (ref_logp.exp() * toy_reward).sum() + 0 * probe.sum()
g_reward = torch.autograd.grad(reward_part, probe)[0]
probe_logp = torch.log_softmax(probe, 0)
g_pi = torch.autograd.grad((probe_logp.exp() * toy_reward).sum(), probe)[0]
print(f"|grad of E_ref[r]| = {float(g_reward.norm()):.2e}, |grad of E_pi[r]| = "
      f"{float(g_pi.norm()):.3f}")
assert float(g_reward.norm()) == 0.0 and float(g_pi.norm()) > 0.01

fig, ax = plt.subplots(figsize=(6, 3.2))
for kind, (_, kls) in toy.items():
    ax.plot(kls, label=kind)
ax.set(xlabel="gradient step", ylabel="KL(pi || ref) [nats]", yscale="log",
       title="Sign test on six responses")
ax.legend()
plt.show()

# %% [markdown]
# ## 2. Four models: who is trained, who is frozen, what they cost
#
# | model | role | trained? | runs during the rollout | runs during the update |
# |---|---|---|---|---|
# | actor $\pi_\theta$ | writes the responses; the policy being improved | yes | generation + log-probs | forward + backward |
# | critic $V_\psi$ | predicts, for every prefix, the return still to come; used only for advantages | yes | values | forward + backward |
# | reward model $r_\phi$ | scores a complete response (notebook 10) | frozen | one score per response | – |
# | reference $\pi_\text{ref}$ | the SFT model, anchor of the KL penalty | frozen | log-probs | – |
#
# The critic and the RM look alike (a transformer with a scalar head) but answer different
# questions: the RM scores a *finished* response and was trained beforehand on preferences;
# the critic estimates, at *each token*, the expected sum of the rewards still to come under the
# current policy, and is trained alongside it. Here the critic starts from a copy of the SFT
# model's transformer with a zero-initialised value head, the RM is the cached one of
# notebook 10, and the reference is a frozen copy of the SFT model. We load them all and
# measure their memory after one real PPO update (which materialises gradients and Adam's two
# moment tensors per trained parameter).

# %%
policy, tokenizer, _ = sft.sft_model(seed=0)
rm = load_reward_model(seed=0)
ref = rlhf.frozen_copy(policy)
critic = rlhf.make_critic(policy)
train_set, held_out = task.split_problems(0, 500)
train_prompts = [p.prompt for p in train_set]
cfg = rlhf.Config()
print(f"RM: held-out pair accuracy {rm.info.get('pair_accuracy', float('nan')):.3f}, "
      f"on SFT samples {rm.info.get('onpolicy_accuracy', float('nan')):.3f}")

# %% [markdown]
# ## 3. The rollout: `make_experience`
#
# One PPO iteration has two phases. The **rollout** (`make_experience`) samples one response
# per prompt from the current policy and, without gradients, computes everything the update
# needs: the policy's log-probs of the sampled tokens (these become $\log\pi_{\theta_\text{old}}$),
# the reference's log-probs, the critic's values, the RM's score, the per-token rewards, and the
# advantages and returns. The **update** then runs a few epochs of minibatch PPO on that fixed
# batch. (An *episode* is one generated response; a rollout holds a batch of them.)
#
# The tensors are `[B, R]`: B responses, R response-token columns. Column k holds the token
# $y_k$, its log-probabilities, and the value of the state *before* it, the prompt plus
# $y_{<k}$. The `action_mask` is 1 on real response tokens, up to and including the end marker,
# and 0 on padding after it (responses end at different lengths).
#
# ### Exercise 1: the per-token reward
# The RM scores a whole response, but PPO needs a reward per action (per token). RLHF-PPO puts
# the KL penalty on every token and the score on the last one:
# $$r_k = -\beta\,\big(\log\pi_{\theta_\text{old}}(y_k\mid x, y_{<k}) - \log\pi_\text{ref}(y_k\mid
#   x, y_{<k})\big) + \mathbb 1[k = \text{last real token}]\; r_\phi(x, y).$$
# Summed over a response this is $r_\phi(x,y) - \beta\log\frac{\pi_{\theta_\text{old}}(y\mid x)}
# {\pi_\text{ref}(y\mid x)}$, the per-sample objective of Section 1 (the KL term is the k1
# estimate of Section 6). "Last real token" means the last one the mask keeps, not the last
# column: a response that ends early is followed by padding.

# %%
def per_token_rewards(score, logp, ref_logp, mask, beta):
    """Per-token rewards [B, R].

    score: [B] sequence scores; logp, ref_logp: [B, R] log-probs of the sampled tokens under
    the old policy and the reference; mask: [B, R], 1 on real response tokens (each row has
    at least one); beta: the KL coefficient. Padding columns get 0.
    """
    ### BEGIN SOLUTION
    m = mask.to(logp.dtype)
    rewards = -beta * (logp - ref_logp) * m
    last = rlhf.last_token_index(mask)
    rewards[torch.arange(len(score)), last] += score.to(logp.dtype)
    return rewards
    ### END SOLUTION


per_token_rewards = check("llm_rlhf.per_token_rewards", per_token_rewards)

# %% [markdown]
# ### Exercise 2: masked token-level GAE
# This is notebook 06's GAE, unchanged, on tokens: a response is an episode of R steps, the
# last real token is terminal (after the end marker nothing more is said and no value is
# bootstrapped), RLHF usually takes $\gamma = 1$ and $\lambda = 0.95$, and the critic's targets
# are the returns $\hat A_k + V_k$. Call `advantages.gae(rewards, values, next_values,
# terminated, dones, gamma, lam)` from Part II; your job is the masks and the alignment.

# %%
def token_gae(rewards, values, mask, gamma=1.0, lam=0.95):
    """(advantages, returns), both [B, R], from rewards, values and mask [B, R].

    values[:, k] is V of the state before token k; the last real token of each row is
    terminal; padding (mask 0) holds arbitrary numbers on input and must be 0 on output.
    """
    ### BEGIN SOLUTION
    m = mask.to(rewards.dtype)
    end = torch.zeros_like(m)
    end[torch.arange(m.shape[0]), rlhf.last_token_index(mask)] = 1.0
    v = values * m
    next_v = torch.cat([v[:, 1:], torch.zeros_like(v[:, :1])], dim=1)
    adv = advantages.gae(rewards * m, v, next_v, end.bool(), end.bool(), gamma, lam) * m
    return adv, (adv + v) * m
    ### END SOLUTION


token_gae = check("llm_rlhf.token_gae", token_gae)

# %% [markdown]
# ### Exercise 3: `make_experience`
# Put the rollout together. Useful pieces of `rlhf`: `sample(policy, tokenizer, prompts, cfg,
# generator)` returns a `Generation` (`sequences`, `attention_mask`, `response_start`,
# `responses`); `response_action_mask(attention_mask, start)`,
# `response_logprobs(model, sequences, attention_mask, start)` and
# `response_values(critic, sequences, attention_mask, start)` return `[B, R]` tensors;
# `reward_fn(prompts, responses)` returns the scores `[B]`. The training loop below calls
# *your* function at every update.

# %%
def make_experience(policy, ref, critic, reward_fn, tokenizer, prompts, cfg, generator):
    """One rollout as an rlhf.Experience.

    Samples one response per prompt (with ``generator``) and returns, without gradients:
    prompts, responses, sequences [B, T], attention_mask [B, T], response_start, and the [B, R]
    action_mask, logp (old policy), ref_logp, values, rewards, advantages, returns, plus the
    scores [B]; cfg.beta, cfg.gamma and cfg.lam set the reward and GAE.
    """
    ### BEGIN SOLUTION
    with torch.no_grad():
        gen = rlhf.sample(policy, tokenizer, prompts, cfg, generator)
        seq, attn, start = gen.sequences, gen.attention_mask, gen.response_start
        mask = rlhf.response_action_mask(attn, start)
        logp = rlhf.response_logprobs(policy, seq, attn, start)
        ref_logp = rlhf.response_logprobs(ref, seq, attn, start)
        values = rlhf.response_values(critic, seq, attn, start) * mask
        score = torch.as_tensor(reward_fn(list(prompts), gen.responses), dtype=torch.float32)
        rewards = per_token_rewards(score, logp, ref_logp, mask, cfg.beta)
        adv, returns = token_gae(rewards, values, mask, cfg.gamma, cfg.lam)
    return rlhf.Experience(list(prompts), gen.responses, seq, attn, start, mask, logp,
                           ref_logp, values, score, rewards, adv, returns)
    ### END SOLUTION


make_experience = check("llm_rlhf.make_experience", make_experience)

# %% [markdown]
# One rollout with your function, from the SFT model and the learned RM. Look at a few
# responses, their scores, and the rewards per token: small KL terms on every token (zero on
# the first rollout, where the policy *is* the reference), the score on the last real one.

# %%
generator = torch.Generator().manual_seed(0)
prompts = [train_prompts[i] for i in np.random.default_rng(0).integers(0, len(train_prompts),
                                                                         cfg.n_prompts)]
exp = make_experience(policy, ref, critic, rm.score, tokenizer, prompts, cfg, generator)
for i in range(4):
    print(f"{exp.prompts[i]}{exp.responses[i]:<5} score {float(exp.score[i]):+.2f}  gold "
          f"{task.gold_reward(exp.prompts[i], exp.responses[i]):.2f}  rewards "
          f"{np.round(exp.rewards[i].numpy(), 2) + 0.0}")  # + 0.0 prints -0 as 0
print(f"shapes: sequences {tuple(exp.sequences.shape)}, per-token {tuple(exp.rewards.shape)}")
assert torch.allclose(exp.rewards.sum(1), exp.score - cfg.beta * (
    (exp.logp - exp.ref_logp) * exp.action_mask).sum(1), atol=1e-5)

# %% [markdown]
# ## 4. The update: Part II's clipped losses on tokens
#
# The update is notebook 07's PPO with tokens for actions. For each minibatch it recomputes the
# policy's log-probs and the critic's values on the stored sequences and calls the same two
# functions that trained CartPole: `ppo.clipped_surrogate` (ratio
# $\pi_\theta/\pi_{\theta_\text{old}}$ per token, clipped at $1\pm\epsilon$, averaged over the
# response mask) and `ppo.clipped_value_loss` (notebook 07, Section 7). Advantages are
# normalised over the batch's real tokens with `advantages.normalize` (notebook 06). The actor
# and the critic have separate losses and optimisers; the reference and the RM get no
# gradient. Here is the loss function the loop uses:

# %%
print(inspect.getsource(rlhf.ppo_losses))
opt_policy = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
opt_critic = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr)
stats = rlhf.ppo_update(policy, critic, exp, cfg, opt_policy, opt_critic, generator)
print({k: round(v, 4) for k, v in stats.items()})


def grad_bytes(model) -> int:
    return sum(p.grad.numel() * p.grad.element_size() for p in model.parameters()
               if p.grad is not None)


memory = {  # name: (model, optimiser or None)
    "actor": (policy, opt_policy), "critic": (critic, opt_critic),
    "reward model": (rm.model, None), "reference": (ref, None)}
print(f"{'model':>13} {'params':>9} {'weights MB':>11} {'grads MB':>9} {'Adam MB':>8}")
total = {}
for name, (model, opt) in memory.items():
    row = (rlhf.parameter_bytes(model), grad_bytes(model),
           rlhf.optimizer_bytes(opt) if opt else 0)
    total[name] = sum(row)
    n = sum(p.numel() for p in model.parameters())
    print(f"{name:>13} {n:>9,} {row[0] / 1e6:>11.2f} {row[1] / 1e6:>9.2f} {row[2] / 1e6:>8.2f}")
ppo_total = sum(total.values())
trained_share = (total["actor"] + total["critic"]) / ppo_total
print(f"total {ppo_total / 1e6:.2f} MB; the two trained models hold {trained_share:.0%} of it. "
      f"Without the critic (GRPO): {(ppo_total - total['critic']) / ppo_total:.0%} of PPO's.")
assert grad_bytes(ref) == 0 and grad_bytes(rm.model) == 0
assert rlhf.optimizer_bytes(opt_policy) == 2 * rlhf.parameter_bytes(policy)

# %% [markdown]
# A trained model costs four times its weights in float32 (weights, gradients, two Adam
# moments); a frozen one costs its weights (plus activations, not counted here). So dropping
# the critic (GRPO, notebook 13) saves more than a quarter of PPO's model memory, and DPO
# (notebook 12), with one trained and one frozen model, saves more still. These are the
# proportions of weight memory only; activations and the generation cache change them at
# scale.

# %% [markdown]
# ## 5. Training: PPO with the gold reward and with the learned reward model
#
# `rlhf.train` repeats rollout and update, starting from the cached SFT model, and calls your
# `make_experience` at every update. It logs, per update, the reward (`proxy_reward`: what
# the optimiser sees), the gold reward of the same samples, the sampled KL to the reference
# (nats per response), the policy's entropy, the response length and PPO's clip fraction; every
# few updates, and at the end, it measures greedy **gold accuracy** on the 500 held-out
# prompts. First a thread count: this GPT is big enough that two threads can beat one, but on
# a busy machine they can also be much slower, so we time a small rollout and update with each
# and keep the faster.

# %%
def time_one_update(threads: int, n_prompts: int = 16) -> float:
    """Seconds of one small rollout and one PPO epoch on it with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    p, c = rlhf.frozen_copy(policy).requires_grad_(True), rlhf.make_critic(policy)
    ops = torch.optim.Adam(p.parameters(), lr=1e-5), torch.optim.Adam(c.parameters(), lr=1e-5)
    small = replace(cfg, epochs=1, minibatch=n_prompts)
    t0 = time.perf_counter()
    e = make_experience(p, ref, c, rlhf.gold_reward_fn, tokenizer, prompts[:n_prompts], small,
                        torch.Generator().manual_seed(0))
    rlhf.ppo_update(p, c, e, small, *ops, torch.Generator().manual_seed(0))
    return time.perf_counter() - t0


time_one_update(1)  # warm-up: the first call pays for allocations
timings = {n: time_one_update(n) for n in (1, 2)}
threads = min(timings, key=timings.get)
torch.set_num_threads(threads)
print(f"a small rollout + update: {timings[1]:.2f} s on 1 thread, {timings[2]:.2f} s on 2; "
      f"using {threads}")

# %% [markdown]
# One more setting differs between the two runs: β. It is measured in *reward units per nat*,
# so it must follow the reward's scale. Compare the spread of the two rewards over answers
# sampled from the SFT model:

# %%
spread_prompts = [p.prompt for p in held_out[:200] for _ in range(4)]
spread_gen = rlhf.sample(policy, tokenizer, spread_prompts, cfg, torch.Generator().manual_seed(3))
rm_spread = float(rm.score(spread_prompts, spread_gen.responses).std())
gold_spread = float(rlhf.gold_reward_fn(spread_prompts, spread_gen.responses).std())
print(f"std of the reward over SFT samples: learned RM {rm_spread:.2f}, gold {gold_spread:.2f} "
      f"(ratio {rm_spread / gold_spread:.1f}); beta: gold {cfg.beta}, RM {rlhf.RM_BETA}")
assert rm_spread > 2 * gold_spread

# %% [markdown]
# The RM's scores spread several times wider than the gold reward's, so the same β would be a
# much weaker leash. `rlhf.train` uses `Config.beta` with the gold reward and `rlhf.RM_BETA`
# with the RM (Section 8 shows what the smaller β does with the RM).

# %%
N_LIVE = 15
live = {}
for name, reward in (("gold", "gold"), ("rm", "rm")):
    live[name] = rlhf.train(0, reward=reward, experience_fn=make_experience, updates=N_LIVE,
                            eval_every=5)
    f, s0 = live[name].final, live[name].start
    print(f"PPO with the {name} reward: gold accuracy {s0['gold_accuracy']:.3f} -> "
          f"{f['gold_accuracy']:.3f} (carry problems {f['accuracy_carry']:.3f}), KL "
          f"{f['kl_to_ref']:.2f} nats, {f['cpu_seconds']:.1f} CPU-s")
gold_gain = live["gold"].final["gold_accuracy"] - live["gold"].start["gold_accuracy"]
rm_gain = live["rm"].final["gold_accuracy"] - live["rm"].start["gold_accuracy"]
kl_policy = live["gold"].policy
assert gold_gain >= 0.2 and live["gold"].final["kl_to_ref"] <= 1.5
assert live["rm"].final["kl_to_ref"] <= 1.5 and rm_gain <= gold_gain - 0.1

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
for name, res in live.items():
    h = res.history
    axes[0].plot(h["eval_update"], h["gold_accuracy"], marker="o", label=f"{name} reward")
    axes[1].plot(h["kl_to_ref"], label=name)
    axes[2].plot(h["proxy_reward"], label=f"{name}: proxy")
    axes[2].plot(h["gold_reward"], ls="--", label=f"{name}: gold")
axes[0].set(xlabel="update", ylabel="greedy gold accuracy (held out)")
axes[1].set(xlabel="update", ylabel="sampled KL(pi || ref) [nats]")
axes[2].set(xlabel="update", ylabel="mean reward of the samples")
for ax in axes:
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# With the gold reward as an oracle RM, a few CPU seconds of PPO teach the model the carry
# that the SFT demonstrations kept forgetting, while the KL to the SFT model stays near a nat
# per response. With the learned RM, gold accuracy moves by the amount printed above, and
# always by less: the proxy is only as good as the RM is on the *policy's own* samples (its
# on-policy accuracy, printed in Section 2), and the RM knows the carry only partly. How
# partly varies from one training run of the RM to another (notebook 10 showed the carry
# arriving late), so on your machine this run may gain a lot, little, or even lose accuracy;
# the stored runs of Section 8 and the lab table in the README give the spread over seeds.
# The gap between the two curves is the cost of the proxy.

# %% [markdown]
# ## 6. Estimating the KL: k1, k2, k3 against the exact value
#
# The per-token reward uses the simplest estimate of the KL, one log-ratio per sampled token.
# With $\rho = \pi_\text{ref}(y_k\mid\cdot)/\pi_\theta(y_k\mid\cdot)$ and $y_k\sim\pi_\theta$
# (notebook 07, Section 2):
# $$k_1 = -\log\rho,\qquad k_2 = \tfrac12(\log\rho)^2,\qquad k_3 = (\rho - 1) - \log\rho.$$
# Because $\mathbb E_{\pi_\theta}[\rho] = \sum_y \pi_\theta(y)\,\pi_\text{ref}(y)/\pi_\theta(y) = 1$,
# $k_3$ has the same mean as $k_1$, the KL, but is never negative ($\log\rho\le\rho-1$);
# $k_2$ is biased but has low variance when the two models are close. A language model gives
# us more than samples: at every position we have the *full* next-token distributions of both
# models, so the exact per-position KL $\sum_v \pi_\theta(v)\log\frac{\pi_\theta(v)}
# {\pi_\text{ref}(v)}$ is one sum over the vocabulary. We compare the three
# estimators with it on responses sampled from the trained policy.

# %%
def kl_estimators(model, reference, n_prompts=256, seed=1):
    """Per-token k1, k2, k3 and the exact KL on responses sampled from ``model``."""
    batch = [p.prompt for p in held_out[:n_prompts]]
    gen = rlhf.sample(model, tokenizer, batch, cfg, torch.Generator().manual_seed(seed))
    s, a, st = gen.sequences, gen.attention_mask, gen.response_start
    with torch.no_grad():
        logits = rlhf.response_logits(model, s, a, st)
        ref_logits = rlhf.response_logits(reference, s, a, st)
    tokens = s[:, st:].unsqueeze(-1)
    log_rho = (torch.log_softmax(ref_logits, -1).gather(-1, tokens)
               - torch.log_softmax(logits, -1).gather(-1, tokens)).squeeze(-1)
    mask = rlhf.response_action_mask(a, st).bool()
    out = {"k1": ppo.kl_k1(log_rho), "k2": ppo.kl_k2(log_rho), "k3": ppo.kl_k3(log_rho),
           "exact": ppo.categorical_kl(logits, ref_logits)}
    return {k: v[mask] for k, v in out.items()}


est = kl_estimators(kl_policy, ref)
n_tok = len(est["exact"])
print(f"{n_tok} response tokens; per-token KL(pi || ref):")
for k, v in est.items():
    print(f"  {k:>5}: mean {float(v.mean()):.4f}  std {float(v.std()):.4f}  "
          f"min {float(v.min()):+.4f}  negative {float((v < 0).float().mean()):.0%}")
se = {k: float(est[k].std()) / n_tok ** 0.5 for k in ("k1", "k3")}
exact_mean = float(est["exact"].mean())
assert abs(float(est["k1"].mean()) - exact_mean) < 4 * se["k1"]
assert abs(float(est["k3"].mean()) - exact_mean) < 4 * se["k3"]
assert float(est["k3"].min()) >= 0 and float(est["k1"].min()) < 0
t08 = ppo.kl_k3(torch.log(torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)))
print(f"k3 at rho = 0.5, 1, 2: {np.round(t08.tolist(), 6)}")
assert torch.allclose(t08, torch.tensor([0.193147, 0.0, 0.306853], dtype=torch.float64),
                      atol=1e-6)

# %% [markdown]
# k1 and k3 both average to the exact KL (within their standard errors), k1 is negative on
# many tokens, k3 never. The exact value, available for free in a language model, has the
# lowest spread of all, since it averages over the whole vocabulary instead of one sampled
# token; the training loop reports it as `kl_to_ref` at evaluation time. k3's curve
# $\rho - 1 - \log\rho$ has its minimum, 0, at $\rho = 1$ and rises on *both* sides, so a small
# k3 means a ratio near 1, not a small ratio:

# %%
rho = torch.logspace(-1.5, 1.5, 200, dtype=torch.float64)
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(rho, ppo.kl_k3(rho.log()), label="k3 = rho - 1 - log rho")
ax.plot(rho, ppo.kl_k1(rho.log()), label="k1 = -log rho", ls="--")
ax.axhline(0, color="grey", lw=0.5)
ax.set(xscale="log", xlabel="rho = pi_ref / pi", ylabel="estimate", title="k1 and k3 per sample")
ax.legend()
plt.show()

# %% [markdown]
# ## 7. Adaptive β
#
# A fixed β fixes the *price* of a nat of KL, not the KL itself, and the right price changes as
# the policy improves. PPO-penalty's controller (notebook 07, Section 6) targets a KL instead:
# after each rollout, if the measured KL is above 1.5× the target, double β; below target/1.5,
# halve it. (Ziegler et al. use a smoother proportional rule; the idea is the same.) Here the
# controller watches the sampled KL per response against a target of `KL_TARGET` nats.

# %%
KL_TARGET = 0.3
adaptive = rlhf.train(0, reward="gold", experience_fn=make_experience, updates=N_LIVE,
                      eval_every=0, kl_target=KL_TARGET)
fixed_kl = np.mean(live["gold"].history["kl_to_ref"][-5:])
adaptive_kl = np.mean(adaptive.history["kl_to_ref"][-5:])
print(f"last 5 updates: KL {fixed_kl:.2f} nats with fixed beta {cfg.beta}, {adaptive_kl:.2f} with "
      f"the controller (target {KL_TARGET}); beta went {cfg.beta} -> "
      f"{adaptive.final['beta']:.3f}; gold accuracy {adaptive.final['gold_accuracy']:.3f}")
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(adaptive.history["kl_to_ref"], label="KL, adaptive beta")
ax.plot(live["gold"].history["kl_to_ref"], label="KL, fixed beta", ls="--")
ax.axhline(KL_TARGET, color="grey", lw=0.8, label="target")
ax2 = ax.twinx()
ax2.plot(adaptive.history["beta"], color="C3", label="beta")
ax2.set(ylabel="beta", yscale="log")
ax.set(xlabel="update", ylabel="KL(pi || ref) [nats]")
ax.legend(fontsize=8, loc="upper left")
plt.show()
assert max(adaptive.history["beta"]) > cfg.beta and adaptive_kl < fixed_kl

# %% [markdown]
# ## 8. Longer runs, stored: the reward–KL frontier, the Goodhart curve, a debugging lab
#
# The next experiments need several runs of a minute or more each, too long for this
# notebook, so they are stored in `results/lab/rlhf_experiments.json` and read here. Every run
# uses the same code and starts from the same SFT model; regenerate them with
# `python -m rlcourse.llm.rlhf goodhart debugging beta_sweep course_rm` (about 18 CPU
# minutes).
#
# They use a **length-biased reward model**: the RM of notebook 10 trained on labels from an
# annotator that adds `length_bias` to the perceived reward per extra character (notebook 10,
# Section 8). Such an RM is a proxy with a known flaw: it likes long answers, which the gold
# reward does not. (It is a short run of 250 steps: the length bias is learned at once.) A
# fourth experiment, `course_rm`, runs longer against the course RM itself.

# %%
stored = json.loads(Path(rlcourse.__file__).resolve().parents[1].joinpath(
    "results", "lab", "rlhf_experiments.json").read_text())
print({name: len(runs) for name, runs in stored.items()}, "runs;",
      f"length bias {stored['goodhart'][0]['setting']['rm_overrides']['length_bias']}")

# %% [markdown]
# ### The β sweep: a reward–KL frontier
# Each run trains with a different β and ends at some KL from the reference. Plotting the
# proxy reward and the gold reward of the final policy against that KL traces the frontier:
# a small β buys proxy reward with a lot of KL, a large β keeps the policy near the SFT model.

# %%
sweep = sorted(stored["beta_sweep"], key=lambda r: r["setting"]["beta"])
betas = [r["setting"]["beta"] for r in sweep]
kls = [r["final"]["kl_to_ref"] for r in sweep]
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot(kls, [r["final"]["proxy_reward"] for r in sweep], marker="o", label="proxy (biased RM)")
ax2 = ax.twinx()
ax2.plot(kls, [r["final"]["gold_reward"] for r in sweep], marker="s", color="C1",
         label="gold reward")
for b, x, r in zip(betas, kls, sweep):
    ax.annotate(f"beta={b:g}", (x, r["final"]["proxy_reward"]), fontsize=8)
ax.set(xlabel="final KL(pi || ref) [nats per response]", ylabel="proxy reward (greedy)")
ax2.set(ylabel="gold reward (greedy)")
fig.legend(fontsize=8, loc="lower right")
plt.show()
for b, r in zip(betas, sweep):
    print(f"beta {b:<5g} KL {r['final']['kl_to_ref']:6.2f}  proxy {r['final']['proxy_reward']:+.3f}"
          f"  gold {r['final']['gold_reward']:.3f}  accuracy {r['final']['gold_accuracy']:.3f}"
          f"  length {r['final']['response_length']:.2f}")
assert kls[0] > kls[-1] and sweep[0]["final"]["proxy_reward"] > sweep[-1]["final"]["proxy_reward"]
assert sweep[0]["final"]["gold_reward"] < sweep[-1]["final"]["gold_reward"]

# %% [markdown]
# Read the two curves together. Along the frontier, a smaller β buys more *proxy* reward with
# more KL, which is what β is for. But with a flawed proxy the gold reward runs the other way:
# every nat spent climbing this RM is spent on its length bias, so the runs that look best to
# the RM are the worst by the gold reward. β does not make the RM right; it limits how far the
# policy can go to exploit it (V-16).

# %% [markdown]
# ### β = 0: the Goodhart curve
# With no KL penalty nothing holds the policy near the SFT model, and it optimises the proxy
# for what it is. Two seeds, the proxy reward and the gold reward of the sampled responses per
# update, and their length:

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.3))
goodhart = []
for run in stored["goodhart"]:
    h, seed = run["history"], run["setting"]["seed"]
    axes[0].plot(h["proxy_reward"], label=f"proxy, seed {seed}")
    axes[0].plot(h["gold_reward"], ls="--", label=f"gold, seed {seed}")
    axes[1].plot(h["response_length"], label=f"seed {seed}")
    first, last = slice(0, 5), slice(-5, None)
    row = {k: (np.mean(h[k][first]), np.mean(h[k][last]))
           for k in ("proxy_reward", "gold_reward", "response_length", "kl_to_ref")}
    goodhart.append(row)
    print(f"seed {seed}: " + ", ".join(f"{k} {a:.2f} -> {b:.2f}" for k, (a, b) in row.items())
          + f"; greedy gold accuracy {run['start']['gold_accuracy']:.3f} -> "
          f"{run['final']['gold_accuracy']:.3f}")
axes[0].set(xlabel="update", ylabel="mean reward of the samples", title="beta = 0")
axes[1].set(xlabel="update", ylabel="response length [characters]")
for ax in axes:
    ax.legend(fontsize=8)
plt.show()
for row in goodhart:
    assert row["proxy_reward"][1] > row["proxy_reward"][0]
    assert row["gold_reward"][1] < row["gold_reward"][0]
    assert row["response_length"][1] > row["response_length"][0]

# %% [markdown]
# On both seeds the proxy reward climbs while the gold reward falls, the KL runs to many nats
# and the answers get longer (by how much varies between seeds; see the printout): the policy
# has found where the RM is wrong and spends its effort there. This is Goodhart's
# law ("when a measure becomes a target, it ceases to be a good measure") in its RLHF form,
# reward over-optimisation. Defences: the KL penalty (the β sweep above), an RM trained on the
# policy's own samples and retrained as the policy moves, ensembles of RMs, length penalties,
# early stopping on the KL, and, where possible, verifiable rewards such as our gold one.

# %% [markdown]
# ### The course RM over 40 updates, and the price of a small β
# Section 5 ran 15 updates against the course RM. Two stored runs of 40 updates, with
# β = `RM_BETA` and with the gold reward's β = 0.05, measure greedy held-out gold accuracy
# every 5 updates:

# %%
course = {run["setting"]["beta"]: run for run in stored["course_rm"]}
fig, ax = plt.subplots(figsize=(6.5, 3.4))
for b, run in sorted(course.items()):
    h = run["history"]
    ax.plot(h["eval_update"], h["gold_accuracy"], marker="o", label=f"course RM, beta={b:g}")
    print(f"beta {b:<4g}: gold accuracy {h['gold_accuracy'][0]:.3f} -> "
          f"{run['final']['gold_accuracy']:.3f} (range over the run "
          f"{min(h['gold_accuracy'][1:]):.3f}-{max(h['gold_accuracy'][1:]):.3f}; carry problems "
          f"{run['final']['accuracy_carry']:.3f}); final KL {run['final']['kl_to_ref']:.2f} nats")
ax.axhline(course[rlhf.RM_BETA]["start"]["gold_accuracy"], color="grey", ls=":",
           label="SFT model")
ax.set(xlabel="update", ylabel="greedy gold accuracy (held out)")
ax.legend(fontsize=8)
plt.show()
low, high = course[0.05], course[rlhf.RM_BETA]
assert high["final"]["gold_accuracy"] >= high["start"]["gold_accuracy"] + 0.1
assert high["final"]["kl_to_ref"] <= 1.0 < low["final"]["kl_to_ref"]
assert low["final"]["gold_accuracy"] < high["final"]["gold_accuracy"] - 0.05

# %% [markdown]
# With β = `RM_BETA` the gain holds to the last update with the KL well under a nat. With
# β = 0.05 the policy moves further from the reference yet gains less, and its accuracy
# swings from one evaluation to the next: the extra KL is spent where the RM's scores no
# longer mean much, on answers unlike the ones it was trained on. Against a proxy, β is what
# keeps the policy where the proxy is still informative; the oracle run of Section 5 shows how
# far a correct reward would go.

# %% [markdown]
# ### A debugging lab
# Five runs with the gold reward: a healthy one, then four with a deliberate bug. For each, the
# logged metrics (first five and last five updates) and the final held-out accuracy. Before
# reading the answers below the table, try to name each run's symptom.
#
# | run | the bug |
# |---|---|
# | lr x30 | the actor's learning rate is 30 times the default |
# | beta = 0 | no KL penalty |
# | reference = policy | the "reference" is the live policy, so the KL is measured against itself |
# | advantages not masked | normalisation and the policy loss include the padding after the end marker |

# %%
debug = {run["setting"]["label"]: run for run in stored["debugging"]}
keys = ("proxy_reward", "kl_to_ref", "entropy", "response_length", "clip_fraction")
print(f"{'run':>22} " + " ".join(f"{k:>17}" for k in keys) + "  accuracy  true KL")
for label, run in debug.items():
    h = run["history"]
    cells = [f"{np.mean(h[k][:5]):7.3f}->{np.mean(h[k][-5:]):7.3f}" for k in keys]
    print(f"{label:>22} " + " ".join(f"{c:>17}" for c in cells)
          + f"  {run['final']['gold_accuracy']:8.3f}  {run['final']['kl_to_ref']:7.2f}")

# %% [markdown]
# **Answers.**
# * *lr x30* collapses at once: the clip fraction of the first updates is far above the healthy
#   run's, the entropy falls to zero, the policy ends up writing an empty answer, and both
#   rewards drop to zero while the KL jumps to many nats. A too-large step is visible in the clip
#   fraction and the KL first, in the reward after.
# * *β = 0* drifts further from the reference: its sampled KL is higher than the healthy run's.
#   With the *gold* reward that costs nothing, even helps: there is nothing to hack in a
#   verifiable reward. The same setting with a flawed RM is the Goodhart curve above, so the
#   symptom to watch is the KL, before the damage shows.
# * *reference = policy* logs a KL of exactly 0 on every update, yet its final KL to the real
#   SFT model (the last column) is as large as the β = 0 run's; in fact its whole history is
#   identical to β = 0, because a KL penalty against yourself is zero. A KL that reads exactly
#   0 is a bug, not a success.
# * *advantages not masked* looks healthy in every logged metric. The bug is real but quiet: it
#   lets padding enter the advantage normalisation and the policy loss. Its effect shows
#   directly on one rollout (next cell), not on the dashboard, which is why masks deserve unit
#   tests against the unpadded computation (Exercise 2).

# %%
h = {label: run["history"] for label, run in debug.items()}
early, late = slice(0, 5), slice(-5, None)
assert np.mean(h["lr x30"]["clip_fraction"][early]) > 2 * np.mean(h["healthy"]["clip_fraction"][early])
assert np.mean(h["lr x30"]["entropy"][late]) < 0.1 * np.mean(h["healthy"]["entropy"][late])
assert debug["lr x30"]["final"]["gold_accuracy"] < debug["healthy"]["start"]["gold_accuracy"]
assert np.mean(h["beta = 0"]["kl_to_ref"]) > np.mean(h["healthy"]["kl_to_ref"])
assert all(k == 0 for k in h["reference = policy"]["kl_to_ref"])
assert debug["reference = policy"]["final"]["kl_to_ref"] > 0.3
assert np.allclose(h["reference = policy"]["proxy_reward"], h["beta = 0"]["proxy_reward"])

pad_share = 1 - float(exp.action_mask.mean())
masked_adv = advantages.normalize(exp.advantages, exp.action_mask)
unmasked_adv = advantages.normalize(exp.advantages)
real = exp.action_mask.bool()
shift = float((masked_adv - unmasked_adv)[real].abs().mean())
pad_weight = float(unmasked_adv[~real].abs().mean())
print(f"on the rollout of Section 3: {pad_share:.0%} of the [B, R] entries are padding; "
      f"without the mask they get advantages of mean size {pad_weight:.2f} (they should get "
      f"none), and the real tokens' advantages move by {shift:.2f} on average")
assert pad_share > 0.1 and pad_weight > 0.1

# %% [markdown]
# ## Common misconceptions
#
# * "The RLHF objective is $\mathbb E[r - \beta\log(\pi_\text{ref}/\pi_\theta)]$, a form of
#   $D_\mathrm{KL}(\pi_\theta\|\pi_\text{ref})$." With the ratio inverted the penalty becomes a
#   bonus for moving away; the sign test of Section 1 shows the KL growing without limit. The
#   per-sample penalty is $-\beta\log(\pi_\theta/\pi_\text{ref})$, policy on top. <!-- E-15 -->
# * "Responses for the RLHF objective are sampled from the SFT model." They are sampled from
#   the policy being trained. With samples from $\pi_\text{SFT}$ the reward term does not depend
#   on $\theta$ at all (its gradient is exactly zero, Section 1), and what remains pushes the
#   policy away from the reference. <!-- E-16 -->
# * "The per-token KL rewards are tiny and meaningless; only the last token's score matters."
#   They *are* the KL regulariser: their sum is $-\beta\log\frac{\pi_{\theta_\text{old}}(y\mid x)}
#   {\pi_\text{ref}(y\mid x)}$ (Exercise 1), they tell the critic and GAE which tokens drifted,
#   and removing them (β = 0, Section 8) lets the policy drift and game the RM. <!-- E-41 -->
# * "RLHF uses the forward, mass-covering KL because it favours diversity." Maximum likelihood
#   (pretraining, SFT) minimises the forward $D_\mathrm{KL}(p_\text{data}\|\pi_\theta)$. The RLHF
#   penalty is $D_\mathrm{KL}(\pi_\theta\|\pi_\text{ref})$, estimated on the policy's own
#   samples: the reverse direction in $\pi_\theta$, which is mode-seeking. <!-- E-44 -->
# * "k3 is small when the ratio $\pi_\text{ref}/\pi_\theta$ is small." $k_3 = \rho - 1 -
#   \log\rho$ is 0 only at $\rho = 1$ and grows on both sides (Section 6's plot); minimising it
#   pulls the ratio towards 1, i.e. the two models towards agreement. <!-- E-55 -->
# * "β = 0 is fine if the reward model is good." Every learned RM is wrong somewhere off the
#   SFT distribution, and an optimiser with no leash finds where (Section 8).

# %% [markdown]
# ## What to remember
#
# * Objective: $\max_\theta \mathbb E_{x,\,y\sim\pi_\theta}[r(x,y) - \beta\log\frac{\pi_\theta(y\mid
#   x)}{\pi_\text{ref}(y\mid x)}]$: samples from the policy, policy on top of the ratio.
# * Four models: actor and critic trained (four copies of their weights' worth of memory each
#   with Adam), reward model and reference frozen (one each).
# * `make_experience` = sample from the policy, then without gradients: old log-probs, reference
#   log-probs, values, scores, per-token rewards, GAE.
# * Per-token reward: −β·(log-ratio) on each token, the score on the last real one; GAE with
#   γ = 1, λ = 0.95 over the response mask; Part II's clipped losses, averaged over the mask.
# * KL: k1 (unbiased, signed), k2 (biased, low variance), k3 (unbiased, ≥ 0); with a language
#   model the exact per-position KL is one sum over the vocabulary.
# * β sets the trade-off between reward and drift; adaptive β targets a KL; β = 0 with a flawed
#   RM gives the Goodhart curve. Always log reward, gold or held-out checks, KL, entropy, length
#   and clip fraction.
# * β is in reward units per nat: scale it with the spread of the reward (Section 5 measures
#   the gold reward's and the RM's, and `rlhf.train` picks β for each).

# %% [markdown]
# ## Further reading
#
# * Ziegler et al., *Fine-Tuning Language Models from Human Preferences* (2019): the per-token
#   KL reward and the adaptive KL controller.
# * Stiennon et al., *Learning to Summarize from Human Feedback* (2020), and Ouyang et al.,
#   *Training Language Models to Follow Instructions with Human Feedback* (InstructGPT, 2022).
# * Gao, Schulman and Hilton, *Scaling Laws for Reward Model Overoptimization* (2022): the
#   Goodhart curve measured against a gold RM.
# * Huang et al., *The N+ Implementation Details of RLHF with PPO* (2024).
# * John Schulman, *Approximating KL Divergence* (blog post, 2020): k1, k2, k3.

# %% [markdown]
# ## Interview questions
#
# 1. Write the RLHF objective. Why is there a KL term, and what happens with β = 0?
#
# <details><summary>Answer</summary>
#
# $\max_\theta\mathbb E_{x,\,y\sim\pi_\theta}[r(x,y)] - \beta\,\mathbb E_x[D_\mathrm{KL}(\pi_\theta\|
# \pi_\text{ref})]$, per sample $r - \beta\log(\pi_\theta/\pi_\text{ref})$. The RM is accurate only
# near the data it was trained on; the KL keeps the policy there, and keeps the fluency the SFT
# model had. With β = 0 the policy drifts until it finds the RM's errors: the proxy reward
# rises while the true quality falls (reward hacking).
# </details>
#
# 2. Name the four models of RLHF-PPO. Which are trained? Why does PPO need both a critic and a
#    reward model?
#
# <details><summary>Answer</summary>
#
# Actor (trained), critic (trained), reward model (frozen), reference (frozen). The RM scores a
# finished response, once; the critic predicts, for every prefix, the return still to come
# under the current policy, which GAE needs to give each token an advantage. They answer
# different questions and the critic must track the changing policy.
# </details>
#
# 3. What is the difference between a rollout, `make_experience` and an episode?
#
# <details><summary>Answer</summary>
#
# An episode is one prompt and one generated response. The rollout is the generation of a batch
# of episodes by the current policy. `make_experience` is the whole data-collection step: the
# rollout plus the forward passes that give old log-probs, reference log-probs, values and
# scores, and the per-token rewards and advantages computed from them.
# </details>
#
# 4. Why put the KL into the per-token reward (PPO) rather than into the loss (GRPO)?
#
# <details><summary>Answer</summary>
#
# In the reward, the KL is part of the return, so GAE and the critic assign it to the tokens
# that caused it and its effect on later tokens is credited properly; it uses the k1 estimate
# on the old policy's samples. In the loss (GRPO) it is a separate differentiable regulariser,
# usually k3 per token, which keeps the advantages pure reward and needs no critic. Both
# regularise towards the reference.
# </details>
#
# 5. Which KL estimator would you log, and which would you put in a loss?
#
# <details><summary>Answer</summary>
#
# For logging, the exact per-position KL when you have both models' logits (cheap for a
# language model), else k3 (unbiased, never negative). k1 is unbiased but noisy and often
# negative per token; k2 is biased. In a loss, k3 is a common choice (GRPO); note that the
# gradient of an estimator is not automatically an unbiased estimate of the KL's gradient.
# </details>
#
# 6. Your RLHF run's reward climbs but samples get worse. How do you debug it?
#
# <details><summary>Answer</summary>
#
# Look at the samples and an independent metric (a held-out gold check, a second RM, human
# spot checks). Check the KL to the reference (growing fast: β too small or the reference is
# wrong; exactly zero: the reference is the policy), the response length (growing: length
# hacking), the entropy (collapsing: learning rate too high or β too small) and the clip
# fraction (high: steps too large). Then fix the RM or the leash: more β or adaptive β, early
# stopping on KL, on-policy RM data, length penalties.
# </details>
#
# 7. Can the reference model be updated during training?
#
# <details><summary>Answer</summary>
#
# Some methods do, e.g. an exponential moving average of the policy or a periodic reset of the
# reference to the current policy. That lets the policy move further over a long run, at the
# cost of the anchor that protects against reward hacking: the KL then measures the drift per
# stage, not the total drift from the SFT model.
# </details>

# %%
rlcourse.results.record(
    "11_rlhf_ppo",
    title="RLHF with PPO",
    topics="KL-regularised objective and sign test, four models and memory, make_experience, "
           "per-token KL reward, token GAE, k1/k2/k3 vs exact KL, adaptive beta, beta sweep, "
           "Goodhart curve, debugging lab",
    headline=(f"PPO with the gold reward: gold accuracy {live['gold'].start['gold_accuracy']:.2f} "
              f"-> {live['gold'].final['gold_accuracy']:.2f} in {N_LIVE} updates, KL "
              f"{live['gold'].final['kl_to_ref']:.2f} nats; with the learned RM "
              f"{live['rm'].final['gold_accuracy']:.2f}; beta = 0 with a length-biased RM: proxy "
              f"up, gold down, longer answers on {len(goodhart)} of {len(goodhart)} seeds"),
    metrics={"gold_gain": gold_gain, "rm_gain": rm_gain,
             "gold_kl": live["gold"].final["kl_to_ref"], "rm_kl": live["rm"].final["kl_to_ref"],
             "adaptive_kl": float(adaptive_kl), "fixed_kl": float(fixed_kl)},
)
print(f"total time {session.elapsed():.1f} s, CPU {time.process_time() - cpu_start:.1f} s")
