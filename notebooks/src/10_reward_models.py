# %% [markdown]
# # 10 · Reward models
#
# Reinforcement learning needs a reward, and for free-form answers nobody can write one down.
# What people *can* do cheaply and fairly consistently is compare: "of these two answers, I
# prefer the first". RLHF turns such comparisons into a number with a **reward model** (RM): a
# network $r_\phi(x, y)$ trained so that preferred answers score higher. The policy of notebook
# 11 is then optimised against this learned proxy, and every flaw of the proxy (noisy labels,
# an annotator's taste for long answers, blind spots away from its training data) becomes
# something the policy can exploit.
#
# The lab makes those flaws measurable. Answers to `a+b=` have a **gold reward** computed by
# code (notebook 09), so we always know which answer is really better, while the reward model
# only sees the labels of a synthetic annotator with controlled label noise and length bias.
#
# **Learning goals.** After this notebook you can
# 1. derive the Bradley–Terry model from "strengths", fit strengths to simulated games by
#    maximum likelihood, and explain why they are identified only up to a constant;
# 2. write the reward-model loss $-\log\sigma(r_w-r_l)$, its gradient, and say why it starts
#    at $\ln 2$;
# 3. turn a pretrained causal LM into a scalar-head reward model that reads the **last real
#    token**, and show what goes wrong with left padding;
# 4. train it on preference pairs (synthetic ones and pairs sampled from the SFT model) and
#    measure held-out pairwise accuracy against the gold preference on both kinds;
# 5. measure how label noise caps the accuracy you can observe (V-18) and how a length-biased
#    annotator makes a length-biased reward model (V-17).
#
# **Notation.** A preference pair is $(x, y_w, y_l)$: prompt, chosen ("winner") and rejected
# ("loser") response. $\sigma(z)=1/(1+e^{-z})$. The margin is $\Delta=r(x,y_w)-r(x,y_l)$.
# Losses are minimised; likelihoods are maximised.

# %%
import json
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

import rlcourse
import rlcourse.results
from rlcourse.exercises import check
from rlcourse.llm import annotator as ann
from rlcourse.llm import reward_model as rmod
from rlcourse.llm import sft, task
from rlcourse.llm.model import count_parameters
from rlcourse.llm.sft import Batch

session = rlcourse.setup(seed=0)
cpu_start = time.process_time()

# %% [markdown]
# ## 1. Bradley–Terry: from strengths to a sigmoid
#
# Give each player $i$ a positive strength $s_i=e^{\beta_i}$ and let $i$ beat $j$ with
# probability proportional to its strength:
# $$P(i\succ j)=\frac{e^{\beta_i}}{e^{\beta_i}+e^{\beta_j}}
#   =\frac{1}{1+e^{-(\beta_i-\beta_j)}}=\sigma(\beta_i-\beta_j).$$
# This is the **Bradley–Terry** model (Bradley and Terry, 1952). Two consequences:
#
# * only **differences** of the $\beta$'s matter, so adding the same constant to all of them
#   changes no probability: the strengths are identified only up to a constant (we report
#   them centred to mean 0);
# * the model assumes one scalar quality per item, so preferences are transitive and
#   independent of context.
#
# Given games won by $w_k$ against $l_k$, we **maximise** the likelihood
# $\prod_k\sigma(\beta_{w_k}-\beta_{l_k})$, which is the same as maximising its logarithm,
# which is the same as minimising the negative log-likelihood
# $$\mathrm{NLL}(\beta)=-\sum_k\log\sigma(\beta_{w_k}-\beta_{l_k}),$$
# a convex function of $\beta$. Five players, simulated games, and the maximum-likelihood fit
# (`rmod.fit_bradley_terry`, L-BFGS on the NLL):

# %%
true_strengths = np.array([1.2, 0.6, 0.0, -0.4, -1.4]) + 3.0  # the +3 is invisible to the data
winners, losers = rmod.simulate_games(true_strengths, 5000, np.random.default_rng(0))
fitted = rmod.fit_bradley_terry(winners, losers, len(true_strengths))
centred = true_strengths - true_strengths.mean()
for k, (t, f) in enumerate(zip(centred, fitted)):
    print(f"player {k}: true (centred) {t:+.3f}   fitted {f:+.3f}")
bt_error = float(np.max(np.abs(fitted - centred)))
w_t, l_t = torch.as_tensor(winners), torch.as_tensor(losers)
nll_fit = float(rmod.bt_nll(torch.tensor(fitted), w_t, l_t))
nll_shifted = float(rmod.bt_nll(torch.tensor(fitted) + 10.0, w_t, l_t))
print(f"max error {bt_error:.3f}; NLL at the fit {nll_fit:.2f}, after adding 10 to every "
      f"strength {nll_shifted:.2f}")
assert bt_error < 0.15 and abs(nll_fit - nll_shifted) < 1e-6

# %% [markdown]
# The error shrinks like $1/\sqrt{\text{games}}$, the usual rate of a maximum-likelihood
# estimate:

# %%
game_counts = [100, 300, 1000, 3000, 10000]
errors = []
for n in game_counts:
    runs = []
    for rep in range(20):
        w, l_ = rmod.simulate_games(true_strengths, n, np.random.default_rng([n, rep]))
        runs.append(np.sqrt(np.mean((rmod.fit_bradley_terry(w, l_, 5) - centred) ** 2)))
    errors.append(float(np.mean(runs)))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.loglog(game_counts, errors, "o-", label="RMS error of the fit (20 repeats)")
ax.loglog(game_counts, errors[0] * np.sqrt(game_counts[0] / np.array(game_counts)), "--",
          label=r"$\propto 1/\sqrt{n}$")
ax.set_xlabel("games")
ax.set_ylabel("RMS error of the strengths")
ax.legend()
plt.show()
print("RMS error:", ", ".join(f"{n} games {e:.3f}" for n, e in zip(game_counts, errors)))
assert errors[-1] < errors[0] / 5

# %% [markdown]
# ## 2. The reward-model loss
#
# A reward model replaces the table of strengths by a function of the text: for a pair
# $(x,y_w,y_l)$, $P(y_w\succ y_l\mid x)=\sigma\big(r_\phi(x,y_w)-r_\phi(x,y_l)\big)$. Maximum
# likelihood over a data set of pairs gives the loss
# $$\mathcal L(\phi)=-\frac1N\sum_{k=1}^N\log\sigma\big(r_\phi(x_k,y_{w,k})-r_\phi(x_k,y_{l,k})\big).$$
# Its derivative with respect to the margin is
# $\frac{\partial}{\partial\Delta}\big(-\log\sigma(\Delta)\big)=-(1-\sigma(\Delta))$: pairs the
# model already orders confidently ($\Delta\gg0$) contribute almost nothing, and badly ordered
# ones contribute almost $-1$. At $\Delta=0$ the loss is $-\log\tfrac12=\ln2\approx0.693$.
#
# ### Exercise 1: the Bradley–Terry loss
# Complete `bradley_terry_loss(r_chosen, r_rejected)`: two score tensors of shape `[B]` (same
# shape), returns the scalar mean loss over the B pairs. It must stay finite for very negative
# margins (float32 scores of −200).

# %%
def bradley_terry_loss(r_chosen, r_rejected):
    """Mean Bradley-Terry loss of B pairs: [B], [B] -> scalar tensor."""
    ### BEGIN SOLUTION
    return -torch.nn.functional.logsigmoid(r_chosen - r_rejected).mean()
    ### END SOLUTION


bradley_terry_loss = check("llm_reward.bradley_terry_loss", bradley_terry_loss)

# %% [markdown]
# Three properties, checked: the loss at zero margin (test vector T-01), the analytic
# gradient against autograd, and the sign flip when chosen and rejected are swapped.

# %%
zero = torch.zeros(4, dtype=torch.float64)
loss_at_zero = float(bradley_terry_loss(zero, zero))
print(f"loss at zero margin {loss_at_zero:.6f}, ln 2 = {math.log(2):.6f}")
assert abs(loss_at_zero - math.log(2)) < 1e-12

r_w = torch.randn(8, dtype=torch.float64, requires_grad=True)
r_l = torch.randn(8, dtype=torch.float64)
bradley_terry_loss(r_w, r_l).backward()
analytic, _ = rmod.bradley_terry_grad(r_w.detach(), r_l)
grad_gap = float((r_w.grad - analytic).abs().max())
print(f"max |autograd - (-(1 - sigmoid(margin)) / N)| = {grad_gap:.1e}")
assert grad_gap < 1e-12

a = torch.zeros(3, dtype=torch.float64, requires_grad=True)
bradley_terry_loss(a, zero[:3]).backward()
as_chosen = a.grad.clone()
a.grad = None
bradley_terry_loss(zero[:3], a).backward()
print(f"d loss / d r at zero margin: {float(as_chosen[0]):+.4f} as chosen, "
      f"{float(a.grad[0]):+.4f} as rejected")
assert torch.allclose(as_chosen, -a.grad)

margins = torch.linspace(-6, 6, 121)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(margins, -torch.nn.functional.logsigmoid(margins), label=r"loss $-\log\sigma(\Delta)$")
ax.plot(margins, 1 - torch.sigmoid(margins), "--", label=r"$-\partial L/\partial\Delta = 1-\sigma(\Delta)$")
ax.axhline(math.log(2), color="gray", lw=0.8, ls=":")
ax.set_xlabel(r"margin $\Delta = r_w - r_l$")
ax.legend()
plt.show()

# %% [markdown]
# ## 3. A scalar-head reward model on top of the pretrained base
#
# The RM is the lab's GPT-2 with its language-model head (hidden size → vocabulary) replaced
# by a **scalar head** (hidden size → 1), in `transformers` terms a
# `GPT2ForSequenceClassification` with one label. We start it from the **pretrained base** of
# notebook 09, which already knows arithmetic (the SFT model learned to forget carries, so it
# is a worse start), and initialise the head at zero, so every score starts at 0 and the loss
# at exactly $\ln 2$.
#
# The head is applied to every position, giving one number per token; a response's reward is
# the number at its **last real token** (the end marker), the only position that has seen
# the whole prompt and response through causal attention.

# %%
base, tok, _ = sft.sft_model(stage="base")
sft_policy, _, _ = sft.sft_model(stage="sft")
rm_init = rmod.build_reward_model(base)
print(f"causal LM: {count_parameters(base):,} parameters (LM head tied to the embedding); "
      f"reward model: {count_parameters(rm_init):,}, of which the head "
      f"{rm_init.score.weight.numel()} ({tuple(rm_init.score.weight.shape)})")
print("pad id", tok.pad_token_id, "| eos id", tok.eos_token_id, "| config pad id",
      rm_init.config.pad_token_id)

# %% [markdown]
# ### Exercise 2: where is the last real token?
# Batches are padded to a common length, on the right (`47+35=82<eos><pad>`) or on the left
# (`<pad>47+35=82<eos>`). Complete `last_token_index(attention_mask)`: input `[B, T]` with 1
# on real tokens and 0 on padding; output `[B]` integer column indices of each row's last real
# token. It must work for either padding side.

# %%
def last_token_index(attention_mask):
    """Column of the last real token of each row: [B, T] mask -> [B] int64."""
    ### BEGIN SOLUTION
    cols = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (cols * (attention_mask != 0)).argmax(-1)
    ### END SOLUTION


last_token_index = check("llm_reward.last_token_index", last_token_index)

# %% [markdown]
# The reader used in this notebook applies the backbone with position ids that start at each
# row's first real token (so a left-padded row sees the same positions as an unpadded one),
# the head at every position, and then one index per row:

# %%
def read_scores(model, input_ids, attention_mask, index_fn=last_token_index,
                fix_positions=True):
    """Scores [B] read at index_fn(attention_mask) [B] from per-token head outputs [B, T]."""
    positions = (attention_mask.cumsum(-1) - 1).clamp_min(0) if fix_positions else None
    hidden = model.transformer(input_ids=input_ids, attention_mask=attention_mask,
                               position_ids=positions).last_hidden_state
    per_token = model.score(hidden).squeeze(-1)
    return per_token.gather(1, index_fn(attention_mask).unsqueeze(1)).squeeze(1)


def to_left_padding(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of a right-padded batch moved to the right end (left padding)."""
    shift = batch.attention_mask.shape[1] - batch.attention_mask.sum(-1)
    ids = torch.stack([row.roll(int(s)) for row, s in zip(batch.input_ids, shift)])
    mask = torch.stack([row.roll(int(s)) for row, s in zip(batch.attention_mask, shift)])
    return ids, mask


example = sft.make_batch(tok, ["47+35=", "12+13="], ["82", "2"])
print("right-padded:\n", example.input_ids, "\nlast real token:",
      last_token_index(example.attention_mask).tolist())
print("left-padded:\n", to_left_padding(example)[0], "\nlast real token:",
      last_token_index(to_left_padding(example)[1]).tolist(), "| 'length - 1' would say",
      (example.attention_mask.sum(-1) - 1).tolist())

# %% [markdown]
# ## 4. Preference data from a synthetic annotator
#
# The annotator (`rlcourse.llm.annotator`) sees the gold reward plus a bias per extra
# character, prefers the higher one, and then flips its label with probability `noise`. The
# course RM is trained on two kinds of pairs:
#
# * **synthetic** pairs: the correct answer against one wrong candidate written by code
#   (forgotten carry, wrong last digit, wrong first digit, over-long);
# * **on-policy** pairs: two different answers *sampled from the SFT model* for the same
#   prompt, as InstructGPT did. These are the answers the RM will have to judge in notebook
#   11, including pairs of two wrong answers.

# %%
cfg = rmod.RMConfig()
print(f"course RM config: noise {cfg.noise}, length bias {cfg.length_bias}, "
      f"{cfg.synthetic_per_problem} synthetic pair(s) per training problem, "
      f"{cfg.onpolicy_prompts} prompts x {cfg.onpolicy_samples} SFT samples for on-policy "
      f"pairs, {cfg.steps} steps of {cfg.batch_size} pairs, lr {cfg.lr}")
train_problems, heldout_problems = task.split_problems(cfg.sft.split_seed, cfg.sft.n_heldout)
cpu0 = time.process_time()
pairs = rmod.training_pairs(cfg, sft_policy, tok, train_problems, seed=0)
synthetic_eval, onpolicy_eval = rmod.heldout_pairs(cfg, sft_policy, tok)
data_cpu = time.process_time() - cpu0
n_onpolicy = len(pairs) - cfg.synthetic_per_problem * len(train_problems)
print(f"{len(pairs)} training pairs ({n_onpolicy} on-policy), built in {data_cpu:.1f} CPU-s; "
      f"labels agree with gold on {ann.gold_agreement(pairs):.1%} of pairs with a strict gold "
      f"preference")
for p in pairs[:6]:
    print(f"  {p.prompt:7s} chosen {p.chosen!r:7s} rejected {p.rejected!r:7s} "
          f"gold margin {p.gold_margin:+.1f}")
both_wrong = [p for p in onpolicy_eval if not task.exact_match(p.prompt, p.chosen)]
print(f"held-out: {len(synthetic_eval)} synthetic and {len(onpolicy_eval)} on-policy pairs "
      f"with a strict gold preference; {len(both_wrong) / len(onpolicy_eval):.0%} of the "
      "on-policy ones are two wrong answers")

# %% [markdown]
# ## 5. Training the reward model
#
# ### Exercise 3: one training step
# Complete `rm_train_step(model, optimizer, chosen, rejected, max_grad_norm)`. `chosen` and
# `rejected` are right-padded token batches (`rlcourse.llm.sft.Batch`) of the same B pairs;
# `rmod.batch_scores(model, batch)` returns their scores `[B]` with gradients. Do one optimiser
# update on the Bradley–Terry loss (clip the global gradient norm to `max_grad_norm`) and
# return `(loss, accuracy)`: the loss as a float and the fraction of pairs ordered correctly
# (ties count 1/2), both measured *before* the update. The notebook then trains with it.

# %%
def rm_train_step(model, optimizer, chosen, rejected, max_grad_norm=1.0):
    """One update on B pairs; returns (loss before the update, pairwise accuracy)."""
    ### BEGIN SOLUTION
    r_w, r_l = rmod.batch_scores(model, chosen), rmod.batch_scores(model, rejected)
    loss = bradley_terry_loss(r_w, r_l)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return float(loss.detach()), rmod.pairwise_accuracy(r_w, r_l)
    ### END SOLUTION


rm_train_step = check("llm_reward.rm_train_step", rm_train_step)

# %%
def train_on(pairs, steps, seed=0, desc="RM"):
    """A reward model from the base, trained with rm_train_step on pairs; (RewardModel, hist)."""
    torch.manual_seed(seed)
    model = rmod.build_reward_model(base)
    hist = rmod.train_rm(model, rmod.encode_pairs(tok, pairs), steps, lr=cfg.lr,
                         batch_size=cfg.batch_size, warmup=cfg.warmup,
                         max_grad_norm=cfg.max_grad_norm, seed=seed, step_fn=rm_train_step,
                         desc=desc)
    return rmod.RewardModel(model, tok), hist


LIVE_STEPS = 250  # the course RM trains for cfg.steps; it is cached, and loaded below
cpu0 = time.process_time()
reward_model, hist = train_on(pairs, LIVE_STEPS)
train_cpu = time.process_time() - cpu0
acc = rmod.evaluate_rm(reward_model, synthetic_eval, onpolicy_eval)
print(f"trained in {train_cpu:.1f} CPU-s ({hist['pairs_per_s'][-1]:,.0f} pairs/s); first "
      f"loss {hist['loss'][0]:.4f} (ln 2 = {math.log(2):.4f}), last 20 steps "
      f"{np.mean(hist['loss'][-20:]):.3f}")
print(f"held-out accuracy against gold: synthetic pairs {acc['pair_accuracy']:.1%}, pairs "
      f"sampled from the SFT model {acc['onpolicy_accuracy']:.1%}")
assert abs(hist["loss"][0] - math.log(2)) < 1e-5
assert acc["pair_accuracy"] >= 0.7 and acc["onpolicy_accuracy"] < acc["pair_accuracy"] - 0.1

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
smooth = np.convolve(hist["loss"], np.ones(10) / 10, mode="valid")
axes[0].plot(hist["loss"], alpha=0.3)
axes[0].plot(np.arange(9, len(hist["loss"])), smooth, label="10-step mean")
axes[0].axhline(math.log(2), color="gray", ls=":", label="ln 2")
axes[0].set_xlabel("step")
axes[0].set_ylabel("Bradley–Terry loss")
axes[0].legend()
axes[1].plot(np.convolve(hist["accuracy"], np.ones(10) / 10, mode="valid"))
axes[1].set_xlabel("step")
axes[1].set_ylabel("minibatch pairwise accuracy (10-step mean)")
plt.show()

# %% [markdown]
# The two numbers differ a lot. Where does it go wrong? Split the held-out pairs by the kind of
# mistake in the worse answer:

# %%
def mistake(pair):
    """What is wrong with the rejected (gold-worse) answer of a pair."""
    pr = task.parse_prompt(pair.prompt)
    if len(pair.rejected) != len(pr.answer):
        return "wrong length"
    if pr.carry and pair.rejected == task.forgotten_carry_answer(pr):
        return "forgotten carry"
    return "wrong digit"


def by_mistake(rm):
    """Held-out accuracy of rm per (pair set, kind of mistake), printed and returned."""
    out = {}
    for name, group in (("synthetic", synthetic_eval), ("SFT samples", onpolicy_eval)):
        for kind in ("wrong length", "forgotten carry", "wrong digit"):
            members = [p for p in group if mistake(p) == kind]
            if members:
                out[name, kind] = rmod.gold_accuracy_of(rm, members)
                print(f"{name:11s} | worse answer has a {kind:15s}: {len(members):5d} pairs, "
                      f"accuracy {out[name, kind]:.1%}")
    return out


by_kind = by_mistake(reward_model)
synthetic_kinds = {kind: v for (name, kind), v in by_kind.items() if name == "synthetic"}
print(f"easiest contrast for this RM: {max(synthetic_kinds, key=synthetic_kinds.get)}")
assert max(synthetic_kinds, key=synthetic_kinds.get) == "wrong length"

# %% [markdown]
# The reward model is best on the easiest contrast, a synthetic answer of the wrong length.
# The forgotten carry, exactly the mistake the SFT model makes, is the contrast it learns
# last, and after only 250 steps a run can be anywhere on that climb: the curves in the next
# section start near a coin flip and rise over hundreds of steps, and where a given 250-step
# run stands depends on small things, down to the floating-point rounding of the processor
# (the same code and seed was near a coin flip on the forgotten carry on one machine and
# well above it on another). Read the carry accuracy printed above for what your run learned;
# wherever it is low, the RM is little better than chance on the SFT model's own samples,
# however respectable its accuracy on the synthetic test set looks.
#
# ### Training longer: the course reward model
# The course RM is the same recipe trained for `cfg.steps` steps instead of `LIVE_STEPS`. That
# takes a few minutes, so it is cached (`rmod.load_reward_model`, built once by `make
# notebooks` or on first use) and loaded here. Compare the two on the same held-out pairs, and
# on the one contrast RL needs: the right answer against the forgotten carry, on every
# held-out problem that carries.

# %%
course_rm = rmod.load_reward_model(seed=0)
acc_course = rmod.evaluate_rm(course_rm, synthetic_eval, onpolicy_eval)
carry = {"live": rmod.carry_accuracy(reward_model, heldout_problems),
         "course": rmod.carry_accuracy(course_rm, heldout_problems)}
print(f"{LIVE_STEPS} steps (this notebook): synthetic {acc['pair_accuracy']:.1%}, SFT samples "
      f"{acc['onpolicy_accuracy']:.1%}, right vs forgotten carry {carry['live']:.1%}")
print(f"{course_rm.info['config']['steps']} steps (cached course RM, "
      f"{course_rm.info['seconds']:.0f} CPU-s): synthetic {acc_course['pair_accuracy']:.1%}, SFT "
      f"samples {acc_course['onpolicy_accuracy']:.1%}, right vs forgotten carry "
      f"{carry['course']:.1%}")
by_kind_course = by_mistake(course_rm)
assert carry["course"] > carry["live"] and acc_course["onpolicy_accuracy"] > acc["onpolicy_accuracy"]

# %% [markdown]
# The longer run learns more of the carry, and with it the SFT samples; how much more varies
# from one training run to another (another thread count is enough to change it). When? The
# same recipe was stored with the two accuracies measured every 100 steps (`python -m
# rlcourse.llm.reward_model --curve RECIPE` writes `results/lab/rm_curve.json`), beside a
# recipe with clean labels and a larger learning rate:

# %%
curves = json.loads(Path(rlcourse.__file__).resolve().parents[1].joinpath(
    "results", "lab", "rm_curve.json").read_text())
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for name, c in curves.items():
    axes[0].plot(c["step"], c["carry_accuracy"], marker="o", label=name)
    axes[1].plot(c["step"], c["onpolicy_accuracy"], marker="o", label=name)
    print(f"{name:40s} right vs forgotten carry: first {c['carry_accuracy'][0]:.1%}, min "
          f"{min(c['carry_accuracy']):.1%}, last {c['carry_accuracy'][-1]:.1%} after "
          f"{c['step'][-1]} steps ({c['cpu_seconds'][-1]:.0f} CPU-s)")
axes[0].axhline(0.5, color="grey", ls=":", label="coin flip")
axes[1].axhline(0.85, color="C3", ls="--", label="course target 85 %")
axes[0].set(xlabel="RM training step", ylabel="right vs forgotten carry (held out)")
axes[1].set(xlabel="RM training step", ylabel="accuracy on SFT samples (held out)")
for ax in axes:
    ax.legend(fontsize=7)
plt.show()
course_curve = curves["course default (noise 0.1, 1200 steps)"]
clean_curve = curves["clean labels, 800 steps, lr 1e-3"]
assert course_curve["carry_accuracy"][-1] > max(course_curve["carry_accuracy"][:3]) + 0.1
assert min(clean_curve["carry_accuracy"]) < 0.4 and max(clean_curve["carry_accuracy"]) < 0.6

# %% [markdown]
# With the course's learning rate the carry is learned late: for the first few hundred steps
# the RM is near a coin flip on it, then it climbs. With a three times larger rate and clean
# labels it never does, and for most of the run it is *below* a coin flip: it prefers the
# forgotten carry. That is a shortcut. On every problem without a carry, "the tens digit is
# the sum of the tens digits" is exactly right, and it is easier to compute than the carry, so
# an RM that has learned only that rule scores the forgotten-carry answer higher.
#
# Other recipes were stored too (`python -m rlcourse.llm.reward_model`,
# `results/lab/rm_recipes.json`):

# %%
recipes = json.loads(Path(rlcourse.__file__).resolve().parents[1].joinpath(
    "results", "lab", "rm_recipes.json").read_text())
print(f"{'recipe':40s} {'synthetic':>9s} {'SFT samples':>11s} {'carry':>6s} {'CPU-s':>6s}")
for r in recipes:
    print(f"{r['recipe']:40s} {r['pair_accuracy']:9.1%} {r['onpolicy_accuracy']:11.1%} "
          f"{r['carry_accuracy']:6.1%} {r['cpu_seconds']:6.0f}")
best = max(recipes, key=lambda r: r["onpolicy_accuracy"])
print(f"best on the SFT samples: {best['recipe']} ({best['onpolicy_accuracy']:.1%})")
assert all(r["pair_accuracy"] < 0.9 and r["onpolicy_accuracy"] < 0.85 for r in recipes)

# %% [markdown]
# No recipe reaches 90 % on synthetic pairs or 85 % on the SFT samples, the figures the course
# aimed for, and the best costs minutes of CPU where a verifier costs nothing. Checking the
# carry is a genuinely harder feature than checking the length: the base model computes the
# right tens digit at the `=` position, and the reward model has to learn to carry that to the
# end marker and compare it with the digit written there, from one scalar signal per pair. A
# learned verifier of arithmetic is expensive and imperfect, which is one reason why RL on
# maths and code uses a programmatic checker (a *verifiable reward*, like our gold one)
# wherever one exists. Notebook 11 optimises the course RM with PPO.

# %% [markdown]
# ## 6. The padding pitfall, measured
#
# Read the trained model's scores on the held-out synthetic pairs three ways: right padding,
# left padding with the correct index (and shifted positions), and left padding with the
# tempting `attention_mask.sum(-1) - 1`, which is right only for right padding.

# %%
def accuracy_read(pairs, pad_left, index_fn):
    """Held-out accuracy when every response is read with the given padding and index."""
    scores = []
    for side in ("chosen", "rejected"):
        b = sft.make_batch(tok, [p.prompt for p in pairs], [getattr(p, side) for p in pairs])
        ids, mask = to_left_padding(b) if pad_left else (b.input_ids, b.attention_mask)
        with torch.no_grad():
            scores.append(read_scores(reward_model.model, ids, mask, index_fn))
    return rmod.pairwise_accuracy(*scores)


def length_minus_one(mask):
    return mask.sum(-1) - 1


some_pairs = synthetic_eval[:1200]  # a subset: each reading scores every response again
padding = {"right padding, last real token": accuracy_read(some_pairs, False, last_token_index),
           "left padding, last real token": accuracy_read(some_pairs, True, last_token_index),
           "left padding, length - 1": accuracy_read(some_pairs, True, length_minus_one)}
for name, value in padding.items():
    print(f"{name:32s}: {value:.1%}")
values = list(padding.values())
assert abs(values[0] - rmod.gold_accuracy_of(reward_model, some_pairs)) < 1e-9
assert abs(values[1] - values[0]) < 0.005
assert values[2] < values[0] - 0.05

# %% [markdown]
# `GPT2ForSequenceClassification` itself looks for the rightmost token that is not the pad
# token, which works for both sides, but only if the pad token differs from the end marker:
# a real GPT-2 tokenizer has no pad token, and setting `pad = eos` (a common fix) makes that
# rule skip the end marker. Reading by the attention mask, as here, has no such trap.
#
# ## 7. Label noise caps the accuracy you can measure (V-18)
#
# Human annotators agree with each other only about 65–75 % of the time. If each held-out
# label is flipped with probability $\epsilon$, a scorer that agrees with the gold preference
# on a fraction $a$ of pairs agrees with the noisy labels on
# $$\epsilon + a(1-2\epsilon)\;\le\;1-\epsilon,$$
# so even a perfect reward model cannot *look* better than the annotators' agreement rate.
# Train one short RM per noise level (same pairs, relabelled) and measure both accuracies:

# %%
NOISES = [0.0, 0.2, 0.4]
SWEEP_STEPS = 40
sweep_pairs = pairs[:SWEEP_STEPS * cfg.batch_size]
sweep_eval = synthetic_eval[:2000]  # held-out pairs for the short runs below


def relabel(pairs, annotator, seed):
    """The same response pairs, labelled again by annotator."""
    rng = np.random.default_rng(seed)
    return [ann.label_pair(task.parse_prompt(p.prompt), p.chosen, p.rejected, annotator, rng)
            for p in pairs]


noise_rows = []
for k, eps in enumerate(tqdm(NOISES, desc="noise sweep")):
    rm_eps, _ = train_on(relabel(sweep_pairs, ann.Annotator(noise=eps), k), SWEEP_STEPS,
                         desc=f"noise {eps}")
    gold_acc = rmod.gold_accuracy_of(rm_eps, sweep_eval)
    noisy_acc = rmod.gold_accuracy_of(rm_eps, relabel(sweep_eval, ann.Annotator(noise=eps),
                                                      100 + k))
    noise_rows.append((eps, gold_acc, noisy_acc, rmod.noisy_label_accuracy(gold_acc, eps)))
    print(f"noise {eps:.1f}: accuracy vs gold {gold_acc:.1%}, vs noisy labels {noisy_acc:.1%} "
          f"(predicted {noise_rows[-1][3]:.1%}, ceiling {1 - eps:.0%})")

eps_a, gold_a, noisy_a, pred_a = map(np.array, zip(*noise_rows))
fig, ax = plt.subplots(figsize=(6, 3.8))
ax.plot(eps_a, gold_a, "o-", label="against the gold preference")
ax.plot(eps_a, noisy_a, "s-", label="against noisy held-out labels")
ax.plot(eps_a, 1 - eps_a, "k--", label=r"ceiling $1-\epsilon$ (a perfect RM)")
ax.set_xlabel(r"label noise $\epsilon$ (annotator agreement with gold $= 1-\epsilon$)")
ax.set_ylabel("held-out pairwise accuracy")
ax.legend()
plt.show()
assert np.all(noisy_a <= 1 - eps_a + 0.02) and np.all(np.abs(noisy_a - pred_a) < 0.03)

# %% [markdown]
# ## 8. The reward model learns the annotator's length bias (V-17)
#
# Now let the annotator like length: `length_bias` 0.9 adds 0.9 perceived reward per extra
# character. An over-long answer (the right answer with a digit appended, gold reward 0.2)
# then looks better than the right answer itself. Train on the same response pairs,
# relabelled, and ask both reward models to judge held-out "over-long vs right" pairs:

# %%
LENGTH_BIAS = 0.9
biased_labels = relabel(sweep_pairs, ann.Annotator(noise=cfg.noise, length_bias=LENGTH_BIAS), 7)
fair_labels = relabel(sweep_pairs, ann.Annotator(noise=cfg.noise), 7)
print(f"annotator picks the longer answer in {ann.length_preference(biased_labels):.0%} of "
      f"unequal-length pairs with the bias, {ann.length_preference(fair_labels):.0%} without")
rm_biased, _ = train_on(biased_labels, SWEEP_STEPS, desc="length-biased RM")
rm_fair, _ = train_on(fair_labels, SWEEP_STEPS, desc="unbiased RM")

rng = np.random.default_rng(11)
long_vs_right = []
for pr in heldout_problems:
    right, *_, longer = ann.candidate_responses(pr, rng)
    long_vs_right.append(ann.PreferencePair(pr.prompt, longer, right))
length_rows = {}
for name, model in (("unbiased", rm_fair), ("length-biased", rm_biased)):
    prefers_long = rmod.gold_accuracy_of(model, long_vs_right)
    length_rows[name] = (prefers_long, rmod.gold_accuracy_of(model, sweep_eval))
    print(f"{name:13s} RM: scores the over-long answer above the right one in "
          f"{prefers_long:.0%} of held-out problems; accuracy vs gold {length_rows[name][1]:.1%}")
assert length_rows["length-biased"][0] > 0.8 and length_rows["unbiased"][0] < 0.2

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar(list(length_rows), [v[0] for v in length_rows.values()])
ax.set_ylabel("over-long answer scored above the right one")
plt.show()

# %% [markdown]
# The biased RM ranks a wrong, over-long answer above the right one, which gold never does.
# A policy optimised against it learns to append digits: notebook 11 measures that drift.
#
# ## Common misconceptions
#
# * "The RM loss is $\sigma(r(A)-r(B))$." That is the modelled *probability* that A is
#   preferred; the loss is its negative logarithm, $-\log\sigma(r_w-r_l)$, averaged over pairs
#   (Section 2). Minimising $-\sigma$ instead barely moves badly ordered pairs, whose
#   gradient $\sigma(1-\sigma)$ vanishes. <!-- E-06 -->
# * The model is the **Bradley–Terry** model (Ralph Bradley and Milton Terry, 1952), not a
#   "TellyBerry" model (Section 1). <!-- E-45 -->
# * "We want the likelihood of the data to be smallest." We **maximise** the likelihood, which
#   is the same as minimising the negative log-likelihood; the loss is small when the
#   likelihood is large (Section 1). <!-- E-46 -->
# * "High accuracy against the annotators' labels means a good RM, and a ceiling below 100 %
#   means a weak one." With label noise $\epsilon$ no RM can exceed $1-\epsilon$ against the
#   labels, while its accuracy against the truth can be much higher (Section 7).
# * "An RM that is accurate on its test set will be accurate on what RL shows it." Accuracy
#   depends on the distribution of pairs: the course RM looks fine on synthetic pairs and is
#   near chance on the SFT model's own samples (Section 5).
#
# ## What to remember
#
# * Bradley–Terry: $P(i\succ j)=\sigma(\beta_i-\beta_j)$; strengths are identified up to an
#   additive constant, and the MLE error falls like $1/\sqrt{n}$.
# * RM loss $-\log\sigma(r_w-r_l)$ with gradient $-(1-\sigma(\Delta))$ per pair; it starts at
#   $\ln2$ when all scores are equal.
# * A scalar head on a pretrained LM, read at the last real token: compute that index from the
#   attention mask, never as "length − 1" unless the padding is known to be on the right.
# * Held-out pairwise accuracy against gold is the metric; measure it on the distribution the
#   RM will be used on (here: the SFT model's samples).
# * Label noise $\epsilon$ caps observable accuracy at $1-\epsilon$; an annotator's bias
#   becomes the RM's bias, and RL will find it.
# * Easy features (length) are learned in a few steps, hard ones (the carry) much later, and a
#   shortcut that is right on most data can hold the hard one off. Track the contrast that
#   matters to RL, not only the average accuracy.
#
# ## Further reading
#
# * Bradley & Terry (1952), "Rank analysis of incomplete block designs: I. The method of
#   paired comparisons": the model of Section 1.
# * Hunter (2004), "MM algorithms for generalized Bradley–Terry models": fast, monotone
#   maximum-likelihood fits (the tests use it to cross-check the L-BFGS fit).
# * Christiano et al. (2017), "Deep reinforcement learning from human preferences": reward
#   models trained from pairwise comparisons, then optimised with RL.
# * Stiennon et al. (2020), "Learning to summarize from human feedback", and Ouyang et al.
#   (2022), "Training language models to follow instructions with human feedback"
#   (InstructGPT): the RM recipe of modern RLHF, with labeller agreement figures.
# * Gao, Schulman & Hilton (2023), "Scaling laws for reward model overoptimization": what
#   happens when a policy is optimised hard against a proxy RM.
# * Singhal et al. (2023), "A long way to go: investigating length correlations in RLHF": how
#   much of RLHF's gain is length.

# %% [markdown]
# ## Interview questions
#
# 1. Derive the Bradley–Terry probability from strengths. Why are the strengths identified
#    only up to a constant, and what does that mean for a reward model's scores?
#
# <details><summary>Answer</summary>
#
# With strengths $e^{\beta_i}$, $P(i\succ j)=e^{\beta_i}/(e^{\beta_i}+e^{\beta_j})$; dividing
# by $e^{\beta_i}$ gives $\sigma(\beta_i-\beta_j)$. Only differences enter, so
# $\beta+c$ explains the data equally well. An RM's scores therefore have an arbitrary offset
# (per prompt, even): only differences between responses to the same prompt mean anything,
# which is why RLHF pipelines often normalise RM scores before using them as rewards.
# </details>
#
# 2. What is the RM loss, its gradient with respect to the margin, and its value at
#    initialisation? What would a loss that stays at 0.693 tell you?
#
# <details><summary>Answer</summary>
#
# $L=-\log\sigma(\Delta)$ with $\Delta=r_w-r_l$; $\partial L/\partial\Delta=-(1-\sigma(\Delta))$.
# With equal scores it is $\ln 2\approx0.693$. A loss stuck there means the model gives every
# pair the same margin (zero): for example a head that never receives gradient, scores read
# at a padding position that carries no information, or labels that are pure noise.
# </details>
#
# 3. Why must the reward be read at the last *non-pad* token, and what goes wrong with left
#    padding?
#
# <details><summary>Answer</summary>
#
# In a causal model only the last position has attended to the whole prompt and response, so
# it is the only one that can score the full answer. With right padding the last real token
# sits at "length − 1"; with left padding the real tokens end at the last column, so
# "length − 1" points into the middle of the sequence (or at padding) and the scores become
# nearly meaningless (Section 6 measures the drop). Use the mask to find the rightmost real
# token, and shift position ids for left-padded rows.
# </details>
#
# 4. Why train a reward model at all instead of asking humans during RL?
#
# <details><summary>Answer</summary>
#
# RL needs millions of reward evaluations, interactively, on the policy's current samples;
# humans are slow, expensive and cannot be queried inside a training loop. Comparing two
# answers is easier and more consistent than scoring one, so humans label a fixed set of
# pairs once and the RM generalises from them. The price is a proxy that is wrong off its
# training distribution and can be exploited.
# </details>
#
# 5. Annotators agree 70 % of the time. Your RM scores 69 % on held-out labels. Is it bad?
#
# <details><summary>Answer</summary>
#
# Not necessarily. If disagreement is noise with $\epsilon=0.3$, a perfect RM would score
# $1-\epsilon=0.7$ against those labels, so 69 % corresponds (from
# $\epsilon+a(1-2\epsilon)$) to about 97.5 % agreement with the underlying preference. Judge an
# RM against the agreement ceiling, or against cleaner labels (several annotators per pair).
# </details>
#
# 6. Your RM scores well on its held-out set but near chance on the policy's own samples. Why
#    can that happen, and what would you do?
#
# <details><summary>Answer</summary>
#
# Accuracy is a property of an RM *and* a distribution of pairs. The held-out set may be full
# of easy contrasts (here: wrong length or format), while the policy's samples differ by the
# one thing the RM has not learned (here: the carry). Measure on pairs sampled from the policy
# (InstructGPT's recipe is to train on them too), give the RM more capacity, data or steps
# where it fails, and refresh it as the policy drifts (iterated RLHF).
# </details>
#
# 7. What is the difference between the reward model and the critic in RLHF-PPO?
#
# <details><summary>Answer</summary>
#
# The RM scores a *complete* response, is trained beforehand on preference pairs and is frozen
# during RL. The critic predicts, for every prefix of the response, the expected return still
# to come; it is trained alongside the policy and is used only to compute advantages
# (notebook 11).
# </details>

# %%
cpu_total = time.process_time() - cpu_start
print(f"notebook CPU time {cpu_total:.0f} s, wall {session.elapsed():.0f} s")
rlcourse.results.record(
    "10_reward_models",
    title="Reward models",
    topics="Bradley-Terry MLE, RM loss and gradient, scalar-head RM, last-token reading and "
           "padding, held-out accuracy, label noise (V-18), length bias (V-17)",
    headline=(f"RM of {LIVE_STEPS} steps ({train_cpu:.0f} CPU-s): held-out accuracy vs gold "
              f"{acc['pair_accuracy']:.1%} (synthetic pairs), {acc['onpolicy_accuracy']:.1%} "
              f"(pairs sampled from SFT), forgotten carry {carry['live']:.0%}; cached course RM "
              f"({cfg.steps} steps): {acc_course['pair_accuracy']:.1%}, "
              f"{acc_course['onpolicy_accuracy']:.1%}, carry {carry['course']:.0%}; left padding read at length-1 drops it to "
              f"{values[2]:.0%}; label noise 0.4 caps measured accuracy at {noisy_a[-1]:.0%}; "
              f"length-biased RM prefers over-long to right answers in "
              f"{length_rows['length-biased'][0]:.0%} of pairs"),
    metrics={"rm_pair_accuracy": acc["pair_accuracy"],
             "rm_onpolicy_accuracy": acc["onpolicy_accuracy"], "rm_train_cpu_s": train_cpu,
             "course_rm_pair_accuracy": acc_course["pair_accuracy"],
             "course_rm_onpolicy_accuracy": acc_course["onpolicy_accuracy"],
             "course_rm_carry_accuracy": carry["course"],
             "bt_max_error": bt_error, "left_pad_naive_accuracy": values[2],
             "noisy_accuracy_at_0p4": float(noisy_a[-1]),
             "length_biased_prefers_long": length_rows["length-biased"][0]},
)
