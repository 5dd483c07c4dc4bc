# %% [markdown]
# # 12 · DPO and friends
#
# Notebook 11 ran the full RLHF pipeline: a reward model trained on preference pairs, then PPO
# with four models in memory, sampling from the policy at every update. Direct Preference
# Optimization (DPO) reaches the same KL-regularised goal with a supervised-looking loss on the
# preference pairs themselves: no reward model, no critic, no sampling during training. The
# trick is a closed-form solution of the RLHF objective that turns "reward" into "log-ratio of
# two language models". This notebook derives it step by step, checks every step numerically,
# trains DPO on the lab's preference pairs, and then looks at its relatives (IPO, KTO, ORPO),
# at online vs offline training, and at the ways a DPO run silently breaks.
#
# **Learning goals.** After this notebook you can
# 1. prove that $\pi^*\propto\pi_\text{ref}\,e^{r/\beta}$ maximises the KL-regularised objective
#    and check it numerically;
# 2. derive the DPO loss from it (reparameterise the reward, let $Z(x)$ cancel in the
#    Bradley–Terry model), get its sign right and test it (ln 2 at the start, the preferred
#    answer's likelihood must go up);
# 3. implement the DPO loss, the implicit reward, a DPO training step and the IPO loss, and
#    train with them;
# 4. read DPO's training curves, including the likelihood displacement of both responses;
# 5. say what IPO, KTO and ORPO change and show it on toys; compare offline and iterative DPO;
# 6. diagnose a DPO run that is stuck at ln 2 or learns the wrong thing.
#
# **Notation.** $x$ a prompt, $y$ a response, $y_w \succ y_l$ a preference pair (w for the
# chosen, "winning" response, l for the rejected one), $\pi_\theta$ the policy,
# $\pi_\text{ref}$ the frozen SFT model, $\sigma$ the logistic sigmoid, log-probabilities of a
# response are **summed over its tokens**. Objectives are maximised; code minimises losses.

# %%
import copy
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import rlcourse
import rlcourse.results
from rlcourse.exercises import check
from rlcourse.llm import dpo, rlhf, sft, task
from rlcourse.llm import reward_model as rmod

session = rlcourse.setup(seed=0)
cpu_start = time.process_time()

# %% [markdown]
# ## 1. The optimum of the KL-regularised objective
#
# Fix a prompt $x$ and a reward $r(y)$ (we drop $x$ for a moment). RLHF maximises
# $$J(\pi) = \mathbb E_{y\sim\pi}[r(y)] - \beta\,D_\mathrm{KL}(\pi\,\|\,\pi_\text{ref}).$$
# Define $Z = \sum_y \pi_\text{ref}(y)\,e^{r(y)/\beta}$ and the Gibbs distribution
# $\pi^*(y) = \pi_\text{ref}(y)\,e^{r(y)/\beta}/Z$. Then $r(y) = \beta\log\frac{\pi^*(y)}
# {\pi_\text{ref}(y)} + \beta\log Z$, and substituting,
# $$J(\pi) = \mathbb E_{y\sim\pi}\Big[\beta\log\frac{\pi^*(y)}{\pi_\text{ref}(y)} + \beta\log Z
#   - \beta\log\frac{\pi(y)}{\pi_\text{ref}(y)}\Big]
#   = \beta\log Z - \beta\,D_\mathrm{KL}(\pi\,\|\,\pi^*).$$
# $\beta\log Z$ does not depend on $\pi$ and a KL is $\ge 0$ with equality only at
# $\pi = \pi^*$, so $\pi^*$ is the unique maximiser and the optimum is worth $\beta\log Z$. No
# calculus of variations needed. Two limits: as $\beta\to 0$, $\pi^*$ puts all its mass on the
# best response(s) that $\pi_\text{ref}$ can produce; as $\beta\to\infty$, $\pi^*\to\pi_\text{ref}$.
#
# A numerical check on six responses: gradient ascent on $J$ (over the logits of $\pi$, with
# exact expectations, `dpo.kl_regularised_objective`) against the closed form
# (`dpo.kl_regularised_optimum`).

# %%
ref_probs = torch.softmax(torch.tensor([1.5, 1.0, 0.5, 0.0, -0.5, -1.0], dtype=torch.float64), 0)
toy_r = torch.tensor([0.0, 0.3, 1.0, 0.2, -0.5, 0.6], dtype=torch.float64)
BETA = 0.5
closed_form = dpo.kl_regularised_optimum(ref_probs, toy_r, BETA)

logits = torch.log(ref_probs).clone().requires_grad_(True)
opt = torch.optim.SGD([logits], lr=4.0)
gap = []
for _ in range(600):
    pi = torch.softmax(logits, 0)
    objective = dpo.kl_regularised_objective(pi, ref_probs, toy_r, BETA)
    opt.zero_grad()
    (-objective).backward()
    opt.step()
    gap.append(float((torch.softmax(logits.detach(), 0) - closed_form).abs().max()))
learned = torch.softmax(logits.detach(), 0)
log_z = float(torch.log((ref_probs * torch.exp(toy_r / BETA)).sum()))
best = float(dpo.kl_regularised_objective(closed_form, ref_probs, toy_r, BETA))
print("pi_ref     ", np.round(ref_probs.numpy(), 3))
print("ascent     ", np.round(learned.numpy(), 3))
print("closed form", np.round(closed_form.numpy(), 3))
print(f"J(pi*) = {best:.5f}, beta log Z = {BETA * log_z:.5f}, J(pi_ref) = "
      f"{float(dpo.kl_regularised_objective(ref_probs, ref_probs, toy_r, BETA)):.5f}")
print(f"max |pi - pi*| after {len(gap)} steps: {gap[-1]:.1e}")
assert gap[-1] < 1e-6 and abs(best - BETA * log_z) < 1e-10
for b in (0.01, 100.0):
    print(f"beta = {b:>6}: pi* = {np.round(dpo.kl_regularised_optimum(ref_probs, toy_r, b).numpy(), 3)}")
assert float(dpo.kl_regularised_optimum(ref_probs, toy_r, 0.01)[2]) > 0.99
assert torch.allclose(dpo.kl_regularised_optimum(ref_probs, toy_r, 100.0), ref_probs, atol=0.01)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
x = np.arange(6)
for i, (name, p) in enumerate([("pi_ref", ref_probs), ("gradient ascent", learned),
                               ("closed form pi*", closed_form)]):
    axes[0].bar(x + (i - 1) * 0.27, p.numpy(), width=0.27, label=name)
axes[0].set(xlabel="response y", ylabel="probability", title=f"beta = {BETA}")
axes[0].legend(fontsize=8)
axes[1].semilogy(gap)
axes[1].set(xlabel="gradient step", ylabel="max |pi - pi*|", title="ascent converges to pi*")
plt.show()

# %% [markdown]
# ## 2. The reward hidden in a policy, and why $Z(x)$ cancels
#
# Solve the optimum for the reward (take logs of $\pi^* = \pi_\text{ref}e^{r/\beta}/Z$):
# $$r(x,y) = \beta\log\frac{\pi^*(y\mid x)}{\pi_\text{ref}(y\mid x)} + \beta\log Z(x).$$
# The policy sits **on top** of the ratio: responses the optimal policy likes more than the
# reference did are the ones with high reward. Any policy therefore defines a reward up to a
# per-prompt constant, and $Z(x)$, a sum over *all* responses, is what makes this useless as
# it stands: nobody can compute it for a language model.
#
# Preferences rescue us. The Bradley–Terry model of notebook 10 only needs reward
# *differences* between two responses to the same prompt,
# $P(y_w\succ y_l\mid x) = \sigma\big(r(x,y_w) - r(x,y_l)\big)$, and in that difference the
# $\beta\log Z(x)$ of the two responses cancels:
# $$r(x,y_w) - r(x,y_l) = \beta\log\frac{\pi^*(y_w\mid x)}{\pi_\text{ref}(y_w\mid x)}
#   - \beta\log\frac{\pi^*(y_l\mid x)}{\pi_\text{ref}(y_l\mid x)}.$$
# Numerically, on three prompts with six responses each: the round trip $r\to\pi^*\to r$ gives
# back the reward up to one constant per prompt, and adding an arbitrary constant $c(x)$ to
# every reward of a prompt changes neither $\pi^*$ nor any difference of log-ratios.

# %%
gen = torch.Generator().manual_seed(0)
ref3 = torch.softmax(torch.randn(3, 6, generator=gen, dtype=torch.float64), -1)
r3 = torch.randn(3, 6, generator=gen, dtype=torch.float64)
c3 = torch.tensor([[5.0], [-2.0], [40.0]], dtype=torch.float64)   # c(x), one per prompt
pi3 = dpo.kl_regularised_optimum(ref3, r3, BETA)
pi3_shifted = dpo.kl_regularised_optimum(ref3, r3 + c3, BETA)
back = BETA * torch.log(pi3 / ref3)                 # beta log pi*/pi_ref
offset = r3 - back                                  # should be beta log Z(x), constant per row
log_z3 = torch.log((ref3 * torch.exp(r3 / BETA)).sum(-1, keepdim=True))
print("r - beta log(pi*/pi_ref), per prompt:\n", np.round(offset.numpy(), 6))
print("beta log Z(x):", np.round((BETA * log_z3).squeeze(1).numpy(), 6))
diffs = back[:, :1] - back[:, 1:]                   # log-ratio differences y_0 vs each other y
diffs_shifted = BETA * torch.log(pi3_shifted / ref3)
diffs_shifted = diffs_shifted[:, :1] - diffs_shifted[:, 1:]
print(f"max |pi* change| after adding c(x): {float((pi3 - pi3_shifted).abs().max()):.1e}; "
      f"max |change of the differences|: {float((diffs - diffs_shifted).abs().max()):.1e}")
assert torch.allclose(offset, BETA * log_z3.expand_as(offset), atol=1e-10)
assert torch.allclose(pi3, pi3_shifted, atol=1e-12) and torch.allclose(diffs, diffs_shifted,
                                                                        atol=1e-9)
assert torch.allclose(diffs, (r3[:, :1] - r3[:, 1:]), atol=1e-9)

# %% [markdown]
# The last assert is the point: differences of $\beta\log(\pi^*/\pi_\text{ref})$ *are*
# differences of rewards, with no trace of $Z$. Written the other way round,
# $\beta\log(\pi_\text{ref}/\pi^*)$ would be $-r$ plus a constant: every preference reversed.

# %% [markdown]
# ## 3. The DPO loss, and its sign test
#
# The chain is now short. Parameterise the optimal policy by the model we train,
# $\pi^*\to\pi_\theta$; substitute the reward differences into Bradley–Terry; maximise the
# likelihood of the observed preferences. With the *implicit reward*
# $\hat r_\theta(x,y) = \beta\log\frac{\pi_\theta(y\mid x)}{\pi_\text{ref}(y\mid x)}$,
# $$\mathcal L_\text{DPO}(\theta) = -\mathbb E_{(x,y_w,y_l)\sim\mathcal D}\Big[\log\sigma\Big(
#   \beta\log\frac{\pi_\theta(y_w\mid x)}{\pi_\text{ref}(y_w\mid x)}
#   - \beta\log\frac{\pi_\theta(y_l\mid x)}{\pi_\text{ref}(y_l\mid x)}\Big)\Big]
#   = -\mathbb E\big[\log\sigma\big(\hat r_\theta(x,y_w) - \hat r_\theta(x,y_l)\big)\big].$$
# This is notebook 10's reward-model loss with the reward model replaced by a log-ratio of two
# language models: training it fits a reward model whose optimal policy is $\pi_\theta$ itself.
# Two facts to test: at the start, $\pi_\theta = \pi_\text{ref}$, the argument is 0 and the loss is
# $-\log\sigma(0) = \ln 2$ (T-02); and raising $\log\pi_\theta(y_w)$ must *lower* the loss.
#
# ### Exercise 1: the DPO loss
# From summed sequence log-probabilities, one number per response. The reference is frozen: no
# gradient may reach its log-probabilities. Use a numerically stable log-sigmoid
# (`F.logsigmoid`).

# %%
def dpo_loss(pol_chosen, pol_rejected, ref_chosen, ref_rejected, beta):
    """Mean DPO loss over B pairs (a scalar tensor).

    pol_chosen, pol_rejected: [B] log pi_theta(y_w | x) and log pi_theta(y_l | x);
    ref_chosen, ref_rejected: [B] the same under the frozen reference; beta > 0.
    """
    ### BEGIN SOLUTION
    chosen = pol_chosen - ref_chosen.detach()
    rejected = pol_rejected - ref_rejected.detach()
    return -F.logsigmoid(beta * (chosen - rejected)).mean()
    ### END SOLUTION


dpo_loss = check("llm_dpo.dpo_loss", dpo_loss)

# %% [markdown]
# T-03 with your loss: β = 0.1, all log-probs −10 except the policy's chosen one, which we raise
# to −9 and −8. Beside it, the loss as seed 001 writes it, with both ratios inverted
# (reference over policy), which is the same as flipping the sign of the argument. The seed's
# code (S-1) stores all B completions in one tensor and picks the pairs by index;
# `dpo.dpo_loss_indexed` reproduces it and must agree with the paired form.

# %%
def flipped_dpo_loss(pol_chosen, pol_rejected, ref_chosen, ref_rejected, beta):
    """The sign-flipped loss: -log sigmoid(beta log(ref_w/pi_w) - beta log(ref_l/pi_l))."""
    z = beta * ((ref_chosen.detach() - pol_chosen) - (ref_rejected.detach() - pol_rejected))
    return -F.logsigmoid(z).mean()


minus10 = torch.tensor([-10.0], dtype=torch.float64)
t03 = {w: (float(dpo_loss(torch.tensor([w], dtype=torch.float64), minus10, minus10, minus10, 0.1)),
           float(flipped_dpo_loss(torch.tensor([w], dtype=torch.float64), minus10, minus10,
                                  minus10, 0.1)))
       for w in (-10.0, -9.0, -8.0)}
for w, (good, bad) in t03.items():
    print(f"log pi(y_w) = {w:5.1f}: DPO loss {good:.5f}   flipped {bad:.5f}")
assert abs(t03[-10.0][0] - math.log(2)) < 1e-12
assert t03[-10.0][0] > t03[-9.0][0] > t03[-8.0][0] and t03[-10.0][1] < t03[-9.0][1] < t03[-8.0][1]

logps = torch.tensor([-3.0, -5.0, -4.0, -2.5, -6.0, -3.5], dtype=torch.float64)
ref_logps = torch.tensor([-3.2, -4.0, -4.5, -2.0, -5.0, -3.0], dtype=torch.float64)
yw, yl = torch.tensor([0, 2, 4]), torch.tensor([1, 3, 5])
indexed, rewards_all = dpo.dpo_loss_indexed(logps, ref_logps, yw, yl, 0.1)
paired = dpo_loss(logps[yw], logps[yl], ref_logps[yw], ref_logps[yl], 0.1)
print(f"indexed (seed code) {float(indexed):.6f} = paired {float(paired):.6f}; implicit rewards "
      f"of all 6 completions {np.round(rewards_all.numpy(), 3)}")
assert torch.allclose(indexed, paired)

# %% [markdown]
# Now a few gradient steps with each loss on a toy policy: free logits over six responses for
# one prompt, starting at the reference, one pair "response 2 is preferred to response 0".

# %%
def toy_dpo_run(loss_fn, steps: int = 30, lr: float = 0.5) -> list[float]:
    """pi(y_w) after each of ``steps`` SGD steps on one preference pair (y_w = 2, y_l = 0)."""
    theta = torch.log(ref_probs).clone().requires_grad_(True)
    ref_lp = torch.log(ref_probs)
    sgd = torch.optim.SGD([theta], lr=lr)
    out = [float(ref_probs[2])]
    for _ in range(steps):
        lp = torch.log_softmax(theta, 0)
        loss = loss_fn(lp[2:3], lp[0:1], ref_lp[2:3], ref_lp[0:1], 0.5)
        sgd.zero_grad()
        loss.backward()
        sgd.step()
        out.append(float(torch.softmax(theta.detach(), 0)[2]))
    return out


sign_test = {"DPO loss": toy_dpo_run(dpo_loss), "flipped loss": toy_dpo_run(flipped_dpo_loss)}
for name, p in sign_test.items():
    print(f"{name:>12}: pi(y_w) {p[0]:.3f} -> {p[5]:.3f} (5 steps) -> {p[-1]:.3f} (30 steps)")
assert sign_test["DPO loss"][-1] > sign_test["DPO loss"][0] + 0.1
assert sign_test["flipped loss"][-1] < sign_test["flipped loss"][0] - 0.05

fig, ax = plt.subplots(figsize=(6, 3))
for name, p in sign_test.items():
    ax.plot(p, label=name)
ax.set(xlabel="SGD step", ylabel="pi(preferred response)", title="Sign test")
ax.legend()
plt.show()

# %% [markdown]
# Minimising the flipped loss makes the preferred answer *less* likely: it trains the model
# toward the rejected responses. Both losses start at ln 2, so the first logged number cannot
# tell them apart; only a sign test (or the reward accuracy of the next section) can.
#
# ## 4. The implicit reward and the gradient
#
# Differentiate the loss. With $z = \hat r_\theta(x,y_w) - \hat r_\theta(x,y_l)$ and
# $\frac{d}{dz}[-\log\sigma(z)] = -\sigma(-z)$,
# $$\nabla_\theta\mathcal L_\text{DPO} = -\beta\,\mathbb E\Big[\underbrace{\sigma\big(\hat
#   r_\theta(x,y_l) - \hat r_\theta(x,y_w)\big)}_{\text{weight}}\,\big(\nabla_\theta\log
#   \pi_\theta(y_w\mid x) - \nabla_\theta\log\pi_\theta(y_l\mid x)\big)\Big].$$
# Push up the chosen response, push down the rejected one, like a contrastive loss with one
# positive and one negative; and weigh each pair by how wrong the implicit reward model still is
# about it: a pair it already orders by a wide margin gets a weight near 0, a pair it gets wrong
# gets a weight near 1. Without the weight (plain "likelihood up, likelihood down") the
# rejected responses' log-probs can be pushed to $-\infty$ and the model degenerates.
#
# During training we log the implicit rewards of both sides, their margin, and the **reward
# accuracy**: the fraction of pairs whose implicit reward ranks the chosen response above the
# rejected one. At the start every reward is 0 and the accuracy is 0 (ties are not wins).
#
# ### Exercise 2: implicit rewards and reward accuracy

# %%
def reward_accuracy(pol_chosen, pol_rejected, ref_chosen, ref_rejected, beta):
    """(rewards of the chosen [B], rewards of the rejected [B], accuracy as a float).

    Inputs as in dpo_loss. The implicit rewards are diagnostics: no gradients. The accuracy
    is the fraction of pairs whose chosen reward is strictly larger.
    """
    ### BEGIN SOLUTION
    with torch.no_grad():
        r_w = beta * (pol_chosen - ref_chosen)
        r_l = beta * (pol_rejected - ref_rejected)
    return r_w, r_l, float((r_w > r_l).double().mean())
    ### END SOLUTION


reward_accuracy = check("llm_dpo.reward_accuracy", reward_accuracy)

# %% [markdown]
# The gradient formula against autograd, on random log-probs treated as free parameters:

# %%
g = torch.Generator().manual_seed(3)
pw, pl = (-5 * torch.rand(8, generator=g, dtype=torch.float64)).requires_grad_(True), \
    (-5 * torch.rand(8, generator=g, dtype=torch.float64)).requires_grad_(True)
qw, ql = -5 * torch.rand(8, generator=g, dtype=torch.float64), \
    -5 * torch.rand(8, generator=g, dtype=torch.float64)
dpo_loss(pw, pl, qw, ql, 0.3).backward()
r_w, r_l, acc = reward_accuracy(pw, pl, qw, ql, 0.3)
weight = torch.sigmoid(r_l - r_w)
print("weights sigma(r_l - r_w):", np.round(weight.numpy(), 3), f" reward accuracy {acc:.2f}")
assert torch.allclose(pw.grad, -0.3 * weight / 8) and torch.allclose(pl.grad, 0.3 * weight / 8)

# %% [markdown]
# ## 5. DPO on the lab's preference pairs
#
# The data are the pairs the reward model of notebook 10 trained on: for every training problem
# the correct answer against a wrong candidate, plus pairs of the SFT model's own samples, all
# labelled by the simulated annotator (10 % label noise). The reference is a frozen copy of the
# SFT model. DPO needs two models in memory, not four: the policy (trained) and the reference
# (frozen), and the reference's log-probs could even be computed once in advance.

# %%
policy, tokenizer, _ = sft.sft_model(seed=0)
ref = rlhf.frozen_copy(policy)
train_set, held_out = task.split_problems(0, 500)
rm_cfg = rmod.RMConfig()
pairs = rmod.training_pairs(rm_cfg, policy, tokenizer, train_set, seed=0)
data = rmod.encode_pairs(tokenizer, pairs)
print(f"{len(pairs)} pairs, e.g. {pairs[0]}; tensors {tuple(data.chosen.input_ids.shape)}; "
      f"labels agree with the gold reward on "
      f"{np.mean([p.gold_margin > 0 for p in pairs if p.gold_margin != 0]):.1%} of the pairs")

first = data.rows(torch.arange(256))
with torch.no_grad():
    pc, pr = dpo.pair_logprobs(policy, *first)
    rc, rr = dpo.pair_logprobs(ref, *first)
start_loss = float(dpo_loss(pc, pr, rc, rr, 0.1))
print(f"loss of the SFT model against its own copy on 256 pairs: {start_loss:.6f} "
      f"(ln 2 = {math.log(2):.6f})")
assert abs(start_loss - math.log(2)) < 1e-5

# %% [markdown]
# ### Exercise 3: the DPO training step
# One optimiser step on a batch of B pairs: run the reference on both sides (no gradients),
# run the policy on both sides, compute your `dpo_loss`, clear the old gradients, back-propagate,
# clip the gradient norm to `max_grad_norm`, step. `dpo.pair_logprobs(model, chosen, rejected)`
# returns the two `[B]` tensors of summed response log-probs in one forward pass. Return the
# loss *before* the step and the diagnostics the training loop logs. The loop below
# (`dpo.run_dpo`: AdamW, warm-up, cosine decay, random minibatches of 64 pairs) calls your
# function at every step.

# %%
def dpo_step(policy, ref, optimizer, chosen, rejected, beta, max_grad_norm=1.0):
    """One DPO update of ``policy`` on B pairs; returns a dict of floats.

    chosen, rejected: sft.Batch of the same B pairs. Keys: "loss" (before the step),
    "reward_accuracy", "reward_margin" (mean chosen minus rejected implicit reward),
    "logp_chosen", "logp_rejected" (mean policy log-probs of the batch, before the step).
    """
    ### BEGIN SOLUTION
    with torch.no_grad():
        ref_c, ref_r = dpo.pair_logprobs(ref, chosen, rejected)
    pol_c, pol_r = dpo.pair_logprobs(policy, chosen, rejected)
    loss = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
    optimizer.step()
    r_w, r_l, acc = reward_accuracy(pol_c, pol_r, ref_c, ref_r, beta)
    return {"loss": float(loss.detach()), "reward_accuracy": acc,
            "reward_margin": float((r_w - r_l).mean()),
            "logp_chosen": float(pol_c.detach().mean()),
            "logp_rejected": float(pol_r.detach().mean())}
    ### END SOLUTION


dpo_step = check("llm_dpo.dpo_step", dpo_step)

# %% [markdown]
# Training: 150 steps of 64 pairs, β = 0.1 (`dpo.DPOConfig`, the lab's settings). Every 25
# steps we measure the greedy gold accuracy on the 500 held-out problems, and the policy's
# log-probs on a fixed probe: 300 held-out prompts with two of the SFT model's *own* samples
# each, labelled by the annotator.

# %%
probe_pairs, probe_data = dpo.onpolicy_round_pairs(policy, tokenizer, held_out[:300],
                                                   rm_cfg.annotator, seed=7)
probe = probe_data.rows(torch.arange(len(probe_data)))
cfg = dpo.DPOConfig(eval_every=25)
sft_accuracy = sft.greedy_accuracy(policy, tokenizer, held_out)
probe_log = [dpo.evaluate_pairs(policy, ref, *probe, cfg.beta)]
snapshots = {}


def measure() -> float:
    """Held-out gold accuracy; also logs the probe and keeps the policy at step 75."""
    probe_log.append(dpo.evaluate_pairs(policy, ref, *probe, cfg.beta))
    if len(probe_log) == 4:                         # evaluations at 25, 50, 75, ...
        snapshots["step 75"] = copy.deepcopy(policy)
    return sft.greedy_accuracy(policy, tokenizer, held_out)


cpu0 = time.process_time()
hist = dpo.run_dpo(policy, ref, data, cfg, seed=0,
                   step_fn=dpo_step, accuracy=measure)
dpo_cpu = time.process_time() - cpu0
dpo_accuracy = hist["gold_accuracy"][-1]
print(f"{len(probe_pairs)} probe pairs; DPO: {cfg.steps} steps in {dpo_cpu:.1f} CPU-s; gold "
      f"accuracy {sft_accuracy:.3f} -> {dpo_accuracy:.3f}; last 10 steps: loss "
      f"{np.mean(hist['loss'][-10:]):.3f}, reward accuracy {np.mean(hist['reward_accuracy'][-10:]):.2f}")
assert abs(hist["loss"][0] - math.log(2)) < 1e-5
assert dpo_accuracy >= sft_accuracy + 0.20
assert np.mean(hist["loss"][-10:]) < math.log(2) - 0.05

fig, axes = plt.subplots(1, 3, figsize=(14, 3.2))
axes[0].plot(hist["loss"], lw=0.8)
axes[0].axhline(math.log(2), color="grey", ls=":", label="ln 2")
axes[0].set(xlabel="step", ylabel="DPO loss (batch)")
axes[0].legend()
axes[1].plot(hist["reward_accuracy"], lw=0.8, label="reward accuracy")
axes[1].plot(hist["reward_margin"], lw=0.8, label="reward margin")
axes[1].set(xlabel="step")
axes[1].legend()
axes[2].plot([0] + hist["eval_step"], [sft_accuracy] + hist["gold_accuracy"], marker="o")
axes[2].set(xlabel="step", ylabel="greedy gold accuracy (held out)")
plt.show()

# %% [markdown]
# ## 6. Chosen and rejected log-probabilities: both can fall
#
# A rising margin says that the chosen response gains on the rejected one *relative to the
# reference*, not that it gets likelier. Two views of the same run: the batch means logged by
# your step, and the fixed probe of the SFT model's own sample pairs.

# %%
probe_steps = [0] + hist["eval_step"]
chosen_probe = [row["logp_chosen"] for row in probe_log]
rejected_probe = [row["logp_rejected"] for row in probe_log]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
axes[0].plot(hist["logp_chosen"], lw=0.8, label="chosen")
axes[0].plot(hist["logp_rejected"], lw=0.8, label="rejected")
axes[0].set(xlabel="step", ylabel="mean log pi(y|x)", title="training batches (all pairs)")
axes[1].plot(probe_steps, chosen_probe, marker="o", label="chosen")
axes[1].plot(probe_steps, rejected_probe, marker="o", label="rejected")
axes[1].set(xlabel="step", ylabel="mean log pi(y|x)", title="probe: pairs of the SFT model's samples")
for ax in axes:
    ax.legend()
plt.show()
print(f"training batches: chosen {np.mean(hist['logp_chosen'][:5]):.2f} -> "
      f"{np.mean(hist['logp_chosen'][-10:]):.2f}, rejected {np.mean(hist['logp_rejected'][:5]):.2f}"
      f" -> {np.mean(hist['logp_rejected'][-10:]):.2f}")
print(f"probe: chosen {chosen_probe[0]:.2f} -> {chosen_probe[-1]:.2f}, rejected "
      f"{rejected_probe[0]:.2f} -> {rejected_probe[-1]:.2f}, reward accuracy "
      f"{probe_log[0]['reward_accuracy']:.2f} -> {probe_log[-1]['reward_accuracy']:.2f}")
peak = int(np.argmax(chosen_probe))
print(f"probe, chosen log-prob: highest at step {probe_steps[peak]} ({chosen_probe[peak]:.2f}), "
      f"then down to {chosen_probe[-1]:.2f} while the rejected one fell from "
      f"{rejected_probe[peak]:.2f} to {rejected_probe[-1]:.2f}")
assert peak < len(chosen_probe) - 2 and chosen_probe[-1] < chosen_probe[peak] - 0.1
assert rejected_probe[-1] < rejected_probe[peak] - 1.0 and rejected_probe[-1] < rejected_probe[0] - 1.0
assert probe_log[-1]["reward_accuracy"] > 0.6

# %% [markdown]
# Over all training pairs the chosen log-prob rises a little on average: most chosen answers
# are correct sums with a carry, which the SFT model rarely wrote. On the probe, where both
# responses are things the SFT model already says, the chosen log-prob rises for a few dozen
# steps and then **falls while the rejected one keeps falling**, faster, so the margin and the
# reward accuracy still grow. From then on both responses lose probability; the mass goes to
# responses in neither set. This is *likelihood displacement*: the DPO loss constrains only a
# difference of two log-ratios, and nothing in it says the chosen response must become likelier.
# It matters when the chosen responses are what you want the model to say (hence variants that
# add an SFT term on the chosen responses, like ORPO below), and it is one reason to watch
# samples, not only the margin. Section 8 shows it again, stronger.
#
# ## 7. Relatives: IPO, KTO, ORPO
#
# All three change the loss; the toy below makes the differences visible. Eight prompts, four
# possible responses each, a policy with free logits started at a random reference, and
# **deterministic** preferences: response 0 beats response 1 for every prompt, every time. We
# plot the margin $h = \log\frac{\pi_\theta(y_w)}{\pi_\text{ref}(y_w)} -
# \log\frac{\pi_\theta(y_l)}{\pi_\text{ref}(y_l)}$ over 300 Adam steps.
#
# * **IPO** (Azar et al. 2023) replaces $-\log\sigma(\beta h)$ by the square $(h - \frac1{2\tau})^2$.
#   The DPO loss keeps falling as $h\to\infty$; with preferences that are never violated its
#   optimum is an infinite margin, i.e. $\pi_\theta(y_l)\to 0$ whatever β says, so DPO overfits
#   unless stopped early. IPO's optimum is the finite margin $1/(2\tau)$ (`dpo.ipo_loss`).
# * **KTO** (Ethayarajh et al. 2024) needs no pairs: each response carries its own label,
#   desirable or undesirable. It scores $r = \log\frac{\pi_\theta(y)}{\pi_\text{ref}(y)}$
#   against a reference point $z_0$ (an estimate of $D_\mathrm{KL}(\pi_\theta\|\pi_\text{ref})$,
#   without gradient) through a Kahneman–Tversky value function: $\lambda_D\,\sigma(\beta(r - z_0))$
#   for desirable and $\lambda_U\,\sigma(\beta(z_0 - r))$ for undesirable responses, with
#   $\lambda_D \neq \lambda_U$ expressing loss aversion (`dpo.kto_loss`). Here the labels are
#   "response 0 is good", "response 1 is bad", given as an unpaired list.
# * **ORPO** (Hong et al. 2024) drops the reference model: the SFT loss on the chosen response
#   plus λ times $-\log\sigma$ of the log odds ratio, $\text{odds}(y) = p/(1-p)$ with $p$ the
#   length-normalised sequence probability (`dpo.orpo_loss`). One model, one stage.

# %% [markdown]
# ### Exercise 4: the IPO loss
# Same inputs as `dpo_loss`, with τ in place of β. The margin $h$ is the *unscaled* difference
# of the two log-ratios; the loss is the mean squared distance of $h$ from the target. The
# toy below trains with your function.

# %%
def ipo_loss(pol_chosen, pol_rejected, ref_chosen, ref_rejected, tau):
    """Mean IPO loss over B pairs (a scalar tensor); inputs [B] as in dpo_loss, tau > 0."""
    ### BEGIN SOLUTION
    h = (pol_chosen - ref_chosen.detach()) - (pol_rejected - ref_rejected.detach())
    return ((h - 1.0 / (2.0 * tau)) ** 2).mean()
    ### END SOLUTION


ipo_loss = check("llm_dpo.ipo_loss", ipo_loss)


# %%
gen = torch.Generator().manual_seed(1)
fam_ref = torch.log_softmax(torch.randn(8, 4, generator=gen, dtype=torch.float64), -1)
TAU = 0.2                                    # IPO target margin 1 / (2 tau) = 2.5


def family_loss(kind: str, lp: torch.Tensor, beta: float) -> torch.Tensor:
    """Loss of the toy policy's log-probs lp [8, 4] (response 0 preferred to response 1)."""
    w, l, rw, rl = lp[:, 0], lp[:, 1], fam_ref[:, 0], fam_ref[:, 1]
    if kind == "DPO":
        return dpo_loss(w, l, rw, rl, beta)
    if kind == "IPO":
        return ipo_loss(w, l, rw, rl, TAU)
    if kind == "KTO":
        z0 = (lp.exp() * (lp - fam_ref)).sum(-1).mean().clamp(min=0).detach()  # exact KL
        labels = torch.cat([torch.ones(8, dtype=torch.bool), torch.zeros(8, dtype=torch.bool)])
        return dpo.kto_loss(torch.cat([w, l]), torch.cat([rw, rl]), labels, beta, z0)
    return dpo.orpo_loss(-w, w, l, lam=0.5)   # one-token responses: mean log-prob = log-prob


def family_run(kind: str, beta: float = 0.1, steps: int = 300) -> tuple[list[float], float]:
    """(mean margin h per step, final mean KL(pi || pi_ref)) for one loss on the toy."""
    theta = fam_ref.clone().requires_grad_(True)
    adam = torch.optim.Adam([theta], lr=0.05)
    margins = []
    for _ in range(steps):
        lp = torch.log_softmax(theta, -1)
        adam.zero_grad()
        family_loss(kind, lp, beta).backward()
        adam.step()
        lp = torch.log_softmax(theta.detach(), -1)
        margins.append(float(((lp[:, 0] - fam_ref[:, 0]) - (lp[:, 1] - fam_ref[:, 1])).mean()))
    kl = float((lp.exp() * (lp - fam_ref)).sum(-1).mean())
    return margins, kl


family = {kind: family_run(kind) for kind in ("DPO", "IPO", "KTO", "ORPO")}
fig, ax = plt.subplots(figsize=(6.5, 3.4))
for kind, (m, _) in family.items():
    ax.plot(m, label=kind)
ax.axhline(1 / (2 * TAU), color="grey", ls=":", label="IPO target 1/(2 tau)")
ax.set(xlabel="Adam step", ylabel="margin h (nats)", title="Deterministic preferences")
ax.legend(fontsize=8)
plt.show()
for kind, (m, kl) in family.items():
    print(f"{kind:>4}: margin after 100 / 200 / 300 steps {m[99]:5.2f} / {m[199]:5.2f} / "
          f"{m[-1]:5.2f}; KL(pi || pi_ref) {kl:.2f}")
dpo_m, ipo_m = family["DPO"][0], family["IPO"][0]
assert abs(ipo_m[-1] - 1 / (2 * TAU)) < 0.05 and abs(ipo_m[-1] - ipo_m[-100]) < 0.05
assert dpo_m[-1] > 2 / (2 * TAU) and dpo_m[-1] > dpo_m[-100] + 0.5
assert min(family["KTO"][0][-1], family["ORPO"][0][-1]) > 1.0

# %% [markdown]
# IPO settles on its target; DPO's margin is still climbing after 300 steps and would keep
# going, whatever β: β only sets how fast. KTO learns the same ordering from unpaired labels, and
# ORPO from the policy alone. How far DPO drifts in a fixed number of steps does depend on β
# (and on the optimiser and the data), which is why β needs tuning like any other
# hyperparameter:

# %%
beta_sweep = {b: family_run("DPO", beta=b)[1] for b in (0.03, 0.3, 1.0)}
print("DPO on the toy, KL(pi || pi_ref) after 300 steps by beta:",
      {b: round(kl, 2) for b, kl in beta_sweep.items()})
assert max(beta_sweep.values()) > 1.5 * min(beta_sweep.values())

# %% [markdown]
# ## 8. Offline vs iterative DPO
#
# DPO as run above is **offline**: the pairs were collected once, from the SFT model and from
# made-up wrong answers, and the policy never sees what it writes itself. Online RL (PPO, GRPO)
# trains on its own samples. *Iterative* (or online) DPO sits in between: train a round, sample
# fresh responses from the current policy, have the annotator label pairs of them, train the next
# round on those, usually with the reference moved to the previous round's policy. The usual
# claim is that on-policy pairs beat stale ones, because they show the policy its *current*
# mistakes. A small test with an equal budget of 150 steps: round 1 is the first 75 steps of the
# run above (kept at step 75), round 2 is 75 steps on pairs sampled from it (4 samples at
# temperature 1 for 4000 training prompts; a pair wherever two samples differ).

# %%
round1 = snapshots["step 75"]
round1_accuracy = sft.greedy_accuracy(round1, tokenizer, held_out)
round_pairs, round_data = dpo.onpolicy_round_pairs(round1, tokenizer, train_set[:4000],
                                                   rm_cfg.annotator, seed=12)
right = np.array([[task.exact_match(p.prompt, p.chosen), task.exact_match(p.prompt, p.rejected)]
                  for p in round_pairs])
round2 = copy.deepcopy(round1).requires_grad_(True)
ref2 = rlhf.frozen_copy(round1)                   # the reference moves to the last round
round_probe = round_data.rows(torch.arange(min(512, len(round_data))))
before2 = dpo.evaluate_pairs(round2, ref, *round_probe, cfg.beta)
hist2 = dpo.run_dpo(round2, ref2, round_data, dpo.DPOConfig(steps=75, eval_every=0), seed=1,
                    step_fn=dpo_step, accuracy=lambda: sft.greedy_accuracy(round2, tokenizer,
                                                                            held_out))
after2 = dpo.evaluate_pairs(round2, ref, *round_probe, cfg.beta)
iterative_accuracy = hist2["gold_accuracy"][-1]
print(f"round 2 data: {len(round_pairs)} pairs from 4000 prompts; chosen correct "
      f"{right[:, 0].mean():.0%}, rejected correct {right[:, 1].mean():.0%}")
print(f"gold accuracy: SFT {sft_accuracy:.3f}; round 1 (75 steps) {round1_accuracy:.3f}; "
      f"offline, 150 steps {dpo_accuracy:.3f}; iterative, 75 + 75 steps {iterative_accuracy:.3f}")
print(f"on the round-2 pairs: log pi(chosen) {before2['logp_chosen']:.2f} -> "
      f"{after2['logp_chosen']:.2f}, log pi(rejected) {before2['logp_rejected']:.2f} -> "
      f"{after2['logp_rejected']:.2f}; reward accuracy (against the SFT model) "
      f"{before2['reward_accuracy']:.2f} -> {after2['reward_accuracy']:.2f}")
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot([0] + hist["eval_step"], [sft_accuracy] + hist["gold_accuracy"], marker="o",
        label="offline")
ax.plot([75] + [75 + s for s in hist2["eval_step"]], [round1_accuracy] + hist2["gold_accuracy"],
        marker="s", label="iterative: round 2 on its own samples")
ax.set(xlabel="DPO step", ylabel="greedy gold accuracy (held out)")
ax.legend(fontsize=8)
plt.show()
assert dpo_accuracy > iterative_accuracy + 0.03
assert after2["logp_chosen"] < before2["logp_chosen"] - 0.3
assert before2["logp_rejected"] - after2["logp_rejected"] > before2["logp_chosen"] - after2["logp_chosen"]

# %% [markdown]
# On this task the claim does not hold: continuing offline beats the on-policy round, and the
# round-2 pairs explain why. The round-1 policy already answers most problems correctly, so its
# sample pairs are mostly "its usual right answer against an occasional slip". DPO's answer
# to such pairs is Section 6's, much stronger: on the round-2 pairs the rejected log-prob
# plunges and the margin grows, yet the chosen log-prob falls too, by a lot. The chosen
# responses are mostly correct and mostly the greedy answer, so the greedy answer loses
# probability to responses in neither set. The offline pairs keep teaching the carry with explicit correct
# answers. Online preference learning pays off when the offline pairs are far from what the
# policy writes, when the labeller is good, and with enough fresh pairs per round (often mixed
# with the old ones); a single small round with a moved reference, as here, can lose ground.
# How much it loses varies from run to run; measure it rather than assume it.

# %% [markdown]
# ## 9. A debugging lab: when DPO sits at ln 2
#
# DPO has few moving parts, and each of them can be wired wrong without any error message. Five
# short runs (25 steps of 32 pairs from the SFT model), a healthy one and four with a planted
# bug (`dpo.debug_dpo_step`). Each logs what its own code computes (last five steps); then we
# measure every policy the same, correct way on the probe pairs of Section 5 (loss, reward
# accuracy, and `d log pi(y_w)`, the change of the chosen responses' mean log-prob since the
# SFT model), and by its held-out gold accuracy. Before reading the answers, try to name each
# run's symptom from the table.
#
# | run | the bug |
# |---|---|
# | reference = policy | the "reference" is the live policy (no frozen copy was made) |
# | swapped | policy and reference trade places in the loss |
# | averaged | sequence log-probs averaged over the response tokens instead of summed |
# | prompt counted, averaged | averaged over prompt *and* response tokens |

# %%
debug_cfg = dpo.DPOConfig(steps=25, batch_size=32, warmup=5)
debug = {}
for bug in (None, "reference = policy", "swapped", "averaged", "prompt counted, averaged"):
    student = copy.deepcopy(ref).requires_grad_(True)
    log = dpo.run_dpo(student, ref, data, debug_cfg, seed=1, progress=False,
                      step_fn=lambda *a, bug=bug: dpo.debug_dpo_step(*a, bug=bug))
    debug[bug or "healthy"] = {"log": log, "probe": dpo.evaluate_pairs(student, ref, *probe, 0.1),
                               "gold": sft.greedy_accuracy(student, tokenizer, held_out)}
print(f"{'run':>26} | logged: loss  reward acc  margin | measured: loss  reward acc  "
      f"d log pi(y_w)  gold acc")
for name, run in debug.items():
    lg, pb = run["log"], run["probe"]
    print(f"{name:>26} |      {np.mean(lg['loss'][-5:]):.3f}      {np.mean(lg['reward_accuracy'][-5:]):.2f}"
          f"   {np.mean(lg['reward_margin'][-5:]):+.3f} |     {pb['loss']:.3f}        {pb['reward_accuracy']:.2f}"
          f"         {pb['logp_chosen'] - probe_log[0]['logp_chosen']:+.2f}      {run['gold']:.3f}")

# %% [markdown]
# **Answers.**
# * *reference = policy* logs exactly ln 2, a margin of 0 and a reward accuracy of 0 at every
#   step: the implicit reward of anything is $\beta(\log\pi_\theta - \log\pi_\theta) = 0$. Yet the
#   model *does* change (the measured columns): the reference pass runs without gradients, so
#   the loss still pushes chosen up and rejected down, with a constant weight σ(0) = ½ and no
#   anchor at all. A DPO loss that never leaves ln 2 is a bug, not a hard dataset.
# * *swapped* is the sign flip of Section 3 in code. Its loss falls like a healthy run's; only
#   the reward accuracy gives it away, in its own log as in the measurement: far below ½. The
#   chosen responses lose probability and gold accuracy collapses: it learned the rejected
#   answers. Log the reward accuracy, not only the loss.
# * *averaged* divides each sequence log-prob by its length, so the logit, the margin and the
#   distance from ln 2 shrink by roughly the response length: the loss creeps along just under
#   ln 2 and β is effectively β/|y|. Here every response has 2-4 tokens and Adam rescales the
#   small gradients, so it still learns; with responses of very different lengths the average
#   also changes *which* response wins, and that is a different objective, not DPO.
# * *prompt counted, averaged* dilutes the signal further, by the prompt's tokens, which carry
#   no information: the prompt is the same on both sides. **With sums, counting the prompt
#   changes nothing** (next cell): its log-prob appears in $\log\pi(y_w)$ and $\log\pi(y_l)$ and
#   cancels in their difference, like $Z(x)$. It is harmless only by luck; a length-normalised
#   variant or a loss that uses $\log\pi(y_w)$ alone (an SFT term, ORPO) is hurt by it.

# %%
h_ok, h_avg, h_pavg = (debug[k]["log"] for k in ("healthy", "averaged", "prompt counted, averaged"))
assert all(abs(v - math.log(2)) < 1e-6 for v in debug["reference = policy"]["log"]["loss"])
assert max(debug["reference = policy"]["log"]["reward_accuracy"]) == 0.0
assert debug["reference = policy"]["probe"]["reward_margin"] > 0.05
assert np.mean(debug["swapped"]["log"]["loss"][-5:]) < math.log(2) - 0.03
assert debug["swapped"]["probe"]["reward_accuracy"] < 0.4
assert debug["swapped"]["gold"] < sft_accuracy - 0.2
assert np.mean(h_avg["reward_margin"][-10:]) < 0.6 * np.mean(h_ok["reward_margin"][-10:])
assert np.mean(h_pavg["reward_margin"][-10:]) < np.mean(h_avg["reward_margin"][-10:])

batch = data.rows(torch.arange(64))
with torch.no_grad():
    z_resp = dpo.dpo_logits(*dpo.pair_logprobs_as(snapshots["step 75"], *batch),
                            *dpo.pair_logprobs_as(ref, *batch), 0.1)
    z_all = dpo.dpo_logits(*dpo.pair_logprobs_as(snapshots["step 75"], *batch, include_prompt=True),
                           *dpo.pair_logprobs_as(ref, *batch, include_prompt=True), 0.1)
print(f"DPO logits of 64 pairs, response tokens vs prompt + response tokens (summed): max "
      f"difference {float((z_resp - z_all).abs().max()):.1e} (logits up to {float(z_resp.abs().max()):.2f})")
assert torch.allclose(z_resp, z_all, atol=1e-4)

# %% [markdown]
# ## 10. DPO, PPO and SFT side by side
#
# | | SFT | RLHF with PPO (notebook 11) | DPO |
# |---|---|---|---|
# | data | demonstrations $(x, y)$ | prompts, plus a **reward**: an RM trained on pairs, or a rule | preference **pairs** $(x, y_w, y_l)$, used directly |
# | samples from the policy during training | no | yes (online) | no (offline); iterative DPO: between rounds |
# | models in memory | 1 | 4: actor, critic (trained); RM, reference (frozen) | 2: policy (trained), reference (frozen; its log-probs can be precomputed) |
# | loss | cross-entropy | clipped surrogate + value loss, KL in the reward | logistic loss on log-ratio differences |
# | explores beyond its data | no | yes | no |
#
# PPO itself never sees a pair: it maximises a scalar reward, and whether that reward came
# from a reward model fitted to pairs or from a rule (a unit test, an exact-match check like
# our gold reward) makes no difference to it. REINFORCE++ (Hu, 2025) sits between the two
# worlds: PPO's clipped update without a critic, with notebook 11's per-token reward: the
# sequence score on the final action (the end token) and $-\beta$ times the per-token log-ratio
# of the rollout-time policy $\pi_{\theta_\text{old}}$ and the reference everywhere.
#
# "DPO needs half the memory" is a rule of thumb. Measured on our models: with AdamW every
# trained model holds its weights, their gradients and two moment tensors (4 copies), every
# frozen one its weights (activations and sampling buffers come on top and are not counted).

# %%
critic, rm_shape = rlhf.make_critic(policy), rmod.build_reward_model(policy)  # untrained
p_bytes, c_bytes, rm_bytes = (rlhf.parameter_bytes(m) for m in (policy, critic, rm_shape))
memory = {"DPO": 4 * p_bytes + p_bytes, "DPO, reference log-probs precomputed": 4 * p_bytes,
          "PPO": 4 * p_bytes + 4 * c_bytes + rm_bytes + p_bytes}
for name, b in memory.items():
    print(f"{name:>38}: {b / 2**20:6.1f} MiB ({b / memory['PPO']:.2f} of PPO)")
assert 0.4 < memory["DPO"] / memory["PPO"] < 0.6
del critic, rm_shape

# %% [markdown]
# With four equally sized models the ratio is one half because 5 copies replace 10, not by
# any law: a smaller critic or RM, LoRA adapters, offloading the frozen models, or the
# generation buffers of PPO's rollouts move it either way.
#
# **RLAIF and Constitutional AI.** Both DPO and PPO need preference labels; people are slow and
# expensive. RLAIF replaces them by a language model's judgements. Constitutional AI (Bai et
# al. 2022) makes them principled: the model critiques and revises its own answers against a
# short written list of principles (a supervised stage), then an AI labeller picks the better of
# two answers according to the principles, and those AI preferences train a reward model for
# RL (or feed DPO directly). Our simulated annotator is a (very) simple AI labeller. The risk is
# the same as with any proxy, and amplified: the labeller's biases become the policy's, and
# nobody looked at most of the labels.

# %% [markdown]
# ## Common misconceptions
#
# * "The reparameterised reward is $\beta\log\frac{\pi_\text{ref}}{\pi^*} + \beta\log Z$." The
#   optimal policy is on top: $r = \beta\log\frac{\pi^*}{\pi_\text{ref}} + \beta\log Z$, from the
#   logarithm of $\pi^* = \pi_\text{ref}e^{r/\beta}/Z$; the round trip of Section 2 recovers $r$
#   up to $\beta\log Z(x)$ only this way. <!-- E-17 -->
# * "The DPO loss is $-\log\sigma(\beta\log\frac{\pi_\text{ref}(y_w)}{\pi_\theta(y_w)} -
#   \beta\log\frac{\pi_\text{ref}(y_l)}{\pi_\theta(y_l)})$." That is the sign-flipped loss: both
#   start at ln 2, but minimising it lowers the preferred answer's likelihood (Section 3's sign
#   test, T-03; the *swapped* run of Section 9 collapses). The policy is on top in both
#   ratios. <!-- E-18 -->
# * "IPO adds a regulariser to the DPO loss." It replaces the log-sigmoid by a square,
#   $(h - \frac1{2\tau})^2$, whose minimum is a finite margin; DPO's loss has none under
#   deterministic preferences (Section 7). <!-- E-08 -->
# * "DPO is robust to hyperparameters and rarely gets stuck." Its margin grows without limit on
#   deterministic preferences, how far it drifts depends on β (Section 7), and wiring mistakes
#   leave it at ln 2 or training backwards without an error (Section 9). <!-- E-09 -->
# * "KTO models attention allocation and memory retrieval." KTO uses Kahneman and Tversky's
#   prospect-theory value function, a reference point and loss aversion, on unpaired
#   desirable/undesirable labels (Section 7). <!-- E-10 -->
# * "PPO and DPO both depend on pairwise preference data." DPO consumes pairs directly; PPO
#   maximises a reward, which may come from an RM trained on pairs or from a rule
#   (Section 10). <!-- E-23 -->
# * "DPO roughly halves memory." It is a heuristic: 5 copies of the weights against 10 when all
#   four PPO models are the same size (Section 10 measures it); other sizes, adapters or
#   precomputed reference log-probs change the ratio. <!-- E-25 -->
# * "REINFORCE++'s reward fires on the state $s_t = $ EOS." The score is paid on the final
#   action, the end token, and the per-token KL uses the rollout-time policy
#   $\pi_{\theta_\text{old}}$ (Section 10). <!-- E-07 -->
# * "A falling DPO loss means the chosen answers get likelier." The loss sees only a difference
#   of log-ratios; both log-probs can fall (Section 6).

# %% [markdown]
# ## What to remember
#
# * $\max_\pi\mathbb E_\pi[r] - \beta D_\mathrm{KL}(\pi\|\pi_\text{ref})$ is solved by
#   $\pi^*\propto\pi_\text{ref}e^{r/\beta}$, because the objective equals
#   $\beta\log Z - \beta D_\mathrm{KL}(\pi\|\pi^*)$.
# * Reparameterisation: $r = \beta\log\frac{\pi^*}{\pi_\text{ref}} + \beta\log Z(x)$; in a
#   Bradley–Terry difference $Z(x)$ cancels, which is what makes DPO computable.
# * DPO loss: $-\log\sigma\big(\beta[\log\frac{\pi_\theta(y_w)}{\pi_\text{ref}(y_w)} -
#   \log\frac{\pi_\theta(y_l)}{\pi_\text{ref}(y_l)}]\big)$, policy on top, log-probs summed over
#   response tokens, reference detached.
# * Tests: ln 2 at the start; raising $\log\pi_\theta(y_w)$ lowers the loss; reward accuracy
#   starts at 0 and rises.
# * Implicit reward $\beta\log\frac{\pi_\theta}{\pi_\text{ref}}$; the gradient weighs each pair by
#   $\sigma(\hat r_l - \hat r_w)$, how wrong the implicit reward still is.
# * Watch both log-probs: they can fall together (likelihood displacement) while the margin grows.
# * IPO: a squared loss to a finite margin $1/(2\tau)$; KTO: unpaired good/bad labels with a
#   prospect-theory value; ORPO: SFT loss plus an odds-ratio term, no reference model.
# * DPO is offline: 2 models, no sampling; iterative DPO samples between rounds and labels the
#   new pairs, and needs care (a moving reference, enough data per round).
# * A DPO loss stuck at exactly ln 2 means the reference is the policy; a healthy-looking loss
#   with falling reward accuracy means the sign is flipped.

# %% [markdown]
# ## Further reading
#
# * Rafailov et al., *Direct Preference Optimization: Your Language Model is Secretly a Reward
#   Model* (2023): the derivation of Sections 1-4.
# * Azar et al., *A General Theoretical Paradigm to Understand Learning from Human
#   Preferences* (2023): ΨPO and IPO.
# * Ethayarajh et al., *KTO: Model Alignment as Prospect Theoretic Optimization* (2024).
# * Hong, Lee and Thorne, *ORPO: Monolithic Preference Optimization without Reference Model*
#   (2024).
# * Xu et al., *Is DPO Superior to PPO for LLM Alignment? A Comprehensive Study* (2024).
# * Razin et al., *Unintentional Unalignment: Likelihood Displacement in Direct Preference
#   Optimization* (2024).
# * Bai et al., *Constitutional AI: Harmlessness from AI Feedback* (2022).

# %% [markdown]
# ## Interview questions
#
# 1. Derive the DPO loss from the RLHF objective.
#
# <details><summary>Answer</summary>
#
# Write $\mathbb E_\pi[r] - \beta D_\mathrm{KL}(\pi\|\pi_\text{ref}) = \beta\log Z(x) - \beta
# D_\mathrm{KL}(\pi\|\pi^*)$ with $\pi^* = \pi_\text{ref}e^{r/\beta}/Z$, so $\pi^*$ is optimal.
# Invert: $r = \beta\log\frac{\pi^*}{\pi_\text{ref}} + \beta\log Z$. Substitute into Bradley–Terry,
# $P(y_w\succ y_l) = \sigma(r_w - r_l)$: $Z$ cancels. Replace $\pi^*$ by $\pi_\theta$ and maximise
# the log-likelihood of the preferences: $\mathcal L = -\mathbb E\log\sigma(\beta\log
# \frac{\pi_\theta(y_w)}{\pi_\text{ref}(y_w)} - \beta\log\frac{\pi_\theta(y_l)}{\pi_\text{ref}(y_l)})$.
# </details>
#
# 2. What is the DPO loss at the first step, and what would you check if it stayed there?
#
# <details><summary>Answer</summary>
#
# ln 2 ≈ 0.693, because the policy starts equal to the reference and every log-ratio is 0. If
# it stays at exactly ln 2 with a reward margin of exactly 0, the reference is the policy itself
# (no frozen copy, or the same object passed twice). If it hovers just under ln 2, check that
# log-probs are summed (not averaged) over response tokens, that the masks select the response,
# the learning rate and β. If it falls but the chosen answers get worse, the sign is flipped.
# </details>
#
# 3. How does DPO relate to contrastive learning, and what does the weight in its gradient do?
#
# <details><summary>Answer</summary>
#
# The gradient raises $\log\pi_\theta(y_w)$ and lowers $\log\pi_\theta(y_l)$, one positive and one
# negative per prompt, like a contrastive loss. Each pair is weighted by $\sigma(\hat r_l - \hat
# r_w)$: near 1 when the implicit reward model still orders the pair wrongly, near 0 once it
# orders it by a wide margin. That stops the loss from pushing rejected responses to zero
# probability without limit, as unweighted unlikelihood training would.
# </details>
#
# 4. DPO or RLHF with PPO: what would you choose, and why?
#
# <details><summary>Answer</summary>
#
# DPO when you have good preference pairs close to the model's own outputs and want a simple,
# stable, cheap run: 2 models, no sampling, a supervised-style loop. PPO (or GRPO) when the
# reward can be computed (verifiable tasks), when the policy must explore beyond the data, or
# when the pairs come from another model's distribution: an online method trains on its own
# samples. Iterative DPO is a middle road. Check either choice against an independent metric.
# </details>
#
# 5. Your DPO run's reward margin and accuracy rise, but the chosen responses' log-probs fall.
#    Is that a bug?
#
# <details><summary>Answer</summary>
#
# Not necessarily: the loss only constrains the difference of the two log-ratios, so both can
# fall while the rejected one falls faster (likelihood displacement). It becomes a problem when
# probability moves to responses in neither set, for example when chosen and rejected are
# very similar. Remedies: an SFT term on the chosen responses (as ORPO does), a larger β,
# fewer steps, on-policy pairs.
# </details>
#
# 6. Why was IPO proposed, and what does τ do?
#
# <details><summary>Answer</summary>
#
# With deterministic (or near-deterministic) preferences the DPO loss is minimised only at an
# infinite margin, so the policy drives $\pi(y_l)\to 0$ and drifts from the reference however
# large β is, unless stopped early. IPO regresses the margin onto a finite target
# $1/(2\tau)$ with a squared loss; a smaller τ means a larger target margin and a weaker
# regularisation toward the reference.
# </details>
#
# 7. What data does KTO need, and where is the "loss aversion"?
#
# <details><summary>Answer</summary>
#
# Single responses labelled desirable or undesirable, no pairs (thumbs up/down data). Each is
# scored by the log-ratio $r$ against a reference point $z_0\approx D_\mathrm{KL}(\pi_\theta\|
# \pi_\text{ref})$ through a sigmoid value function; separate weights $\lambda_D, \lambda_U$ for
# gains and losses express loss aversion and also rebalance unequal amounts of good and bad
# data.
# </details>
#
# 8. Why does ORPO need no reference model? What is RLAIF?
#
# <details><summary>Answer</summary>
#
# ORPO keeps the model near the data with its SFT term on the chosen responses, instead of a
# KL to a reference, and adds a penalty on the odds ratio of chosen vs rejected; the policy
# alone is needed. RLAIF replaces human preference labels by an AI labeller's; Constitutional
# AI guides the labeller (and a self-critique stage) with written principles. Cheaper labels,
# at the risk of amplifying the labeller's biases.
# </details>

# %%
rlcourse.results.record(
    "12_dpo",
    title="DPO and friends",
    topics="closed-form optimum, reward reparameterisation and Z, DPO loss and sign test, "
           "implicit reward, DPO training step, likelihood displacement, IPO/KTO/ORPO, "
           "offline vs iterative DPO, debugging lab, DPO vs PPO memory",
    headline=(f"DPO on the lab's pairs: gold accuracy {sft_accuracy:.2f} -> {dpo_accuracy:.2f} in "
              f"{cfg.steps} steps ({dpo_cpu:.0f} CPU-s); iterative 75 + 75 steps "
              f"{iterative_accuracy:.2f}; IPO margin {ipo_m[-1]:.2f} (target {1 / (2 * TAU):.2f}) "
              f"while DPO's reaches {dpo_m[-1]:.1f}"),
    metrics={"sft_accuracy": sft_accuracy, "dpo_accuracy": dpo_accuracy,
             "dpo_gain": dpo_accuracy - sft_accuracy, "dpo_cpu_seconds": dpo_cpu,
             "iterative_accuracy": iterative_accuracy, "ipo_margin": ipo_m[-1],
             "dpo_toy_margin": dpo_m[-1], "memory_ratio_dpo_ppo": memory["DPO"] / memory["PPO"]},
)
print(f"total time {session.elapsed():.1f} s, CPU {time.process_time() - cpu_start:.1f} s")
