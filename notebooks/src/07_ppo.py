# %% [markdown]
# # 07 · Trust regions and PPO
#
# The policy gradient of notebook 05 and the actor-critic of notebook 06 take **one** gradient
# step per batch of experience, and the size of that step is a learning rate in *parameter*
# space. Nothing ties it to how much the *policy* changes: the same step can do nothing in one
# place and flip the agent's behaviour in another, and a policy that collapses collects bad data
# from then on. Trust-region methods measure the step where it matters, in the space of action
# distributions, with the KL divergence. TRPO does it exactly (and expensively); PPO does it
# approximately with a clipped objective, which lets it reuse every batch for several epochs.
# PPO is also the algorithm that Part III uses to fine-tune a language model.
#
# **Learning goals.** After this notebook you can
# 1. explain why a fixed learning rate gives an uncontrolled step in policy space, and compute
#    the KL of a "90 % left → 90 % right" flip;
# 2. compute a categorical KL, name its direction in SFT, RLHF and TRPO, show forward KL is
#    mass-covering and reverse KL mode-seeking, and use the k1/k2/k3 sample estimators;
# 3. derive the importance-weighted surrogate with the correct ratio
#    $\pi_\theta(a\mid s)/\pi_{\theta_\text{old}}(a\mid s)$, check with autograd that its gradient at
#    $\theta_\text{old}$ is the policy gradient, and say what approximation it makes;
# 4. state TRPO's constrained problem and its natural-gradient solution;
# 5. analyse PPO's clipped objective case by case (all six (A, r) cases, with gradients),
#    reproduce a worked example, and tell ratio clipping apart from gradient-norm clipping;
# 6. implement PPO-penalty's adaptive β and the full PPO loss with value and entropy terms;
# 7. build PPO's update in stages (minibatch indexer, minibatch loss, full update), debug an
#    update on probe environments and read its training diagnostics (explained variance,
#    clip fraction, KL, entropy, gradient norm);
# 8. train PPO on CartPole-v1 and Acrobot-v1, compare it *fairly* with vanilla PG across
#    learning rates (same critic, same budget), say what PPO buys and what it does not,
#    measure which implementation tricks matter, and compare DQN, REINFORCE, A2C and PPO on
#    one plot, in env steps and in CPU seconds.
#
# **Notation.** Objectives $J$ and $L$ are *maximised*; code *minimises* `loss = -objective`.
# The probability ratio is $r_t(\theta)=\pi_\theta(a_t\mid s_t)/\pi_{\theta_\text{old}}(a_t\mid s_t)$
# and $\hat A_t$ an advantage estimate (GAE from notebook 06). Every KL is written with its
# direction, $D_\mathrm{KL}(P\,\|\,Q)=\mathbb E_{x\sim P}[\log P(x)-\log Q(x)]$: the expectation is
# under the *first* argument. KL is measured in nats (natural log).

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

import rlcourse
import rlcourse.results
from torch import nn

from rlcourse import actor_critic, compare, deeprl, pg, ppo, ppo_probes, ppo_sweep
from rlcourse.advantages import normalize
from rlcourse.exercises import check, show_source

session = rlcourse.setup(seed=0)
DEVICE = session.device
f64 = torch.float64

# %% [markdown]
# ## 1. A small step in parameters, a big step in behaviour
#
# Vanilla policy gradient updates $\theta \leftarrow \theta + \alpha\,\nabla_\theta J(\theta)$.
# The learning rate $\alpha$ bounds the step in *parameter* space, but the agent's behaviour
# is the distribution $\pi_\theta(\cdot\mid s)$, and the map from parameters to distributions
# is very uneven. Take two actions with logits $(z, 0)$, so $\pi(\text{left}) = \sigma(z)$.
# "90 % left" is $z=\ln 9$ and "90 % right" is $z=-\ln 9$: a change of $2\ln 9=\ln 81\approx4.39$
# in a single parameter turns the policy around. How far apart are the two policies? The
# **KL divergence** between categorical distributions is
# $$D_\mathrm{KL}(P\,\|\,Q)=\sum_a P(a)\,\log\frac{P(a)}{Q(a)} .$$
#
# ### Exercise 1: the KL between two categorical policies
# Complete `categorical_kl(logits_p, logits_q)`: both arguments are **logits** of shape
# `[..., A]` (unnormalised, so apply `log_softmax` first); return $D_\mathrm{KL}(p\,\|\,q)$ per
# row, shape `[...]`.

# %%
def categorical_kl(logits_p, logits_q):
    """KL(p || q) = sum_a p(a) (log p(a) - log q(a)); logits [..., A] -> [...]."""
    ### BEGIN SOLUTION
    log_p = torch.log_softmax(logits_p, dim=-1)
    log_q = torch.log_softmax(logits_q, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)
    ### END SOLUTION


categorical_kl = check("ppo.categorical_kl", categorical_kl)

# %% [markdown]
# The policy flip, and how much a *fixed* parameter step of size 1 changes the policy depending
# on where it starts:

# %%
z = torch.tensor(math.log(9), dtype=f64)
left90, right90 = torch.stack([z, torch.zeros((), dtype=f64)]), torch.stack([-z, torch.zeros((), dtype=f64)])
kl_flip = float(categorical_kl(left90, right90))
print(f"90/10 -> 10/90: logit change ln 81 = {math.log(81):.2f}, "
      f"KL = {kl_flip:.4f} nats (0.8 ln 9 = {0.8 * math.log(9):.4f})")
assert abs(kl_flip - 0.8 * math.log(9)) < 1e-9

starts = torch.linspace(-8, 8, 161, dtype=f64)
before = torch.stack([starts, torch.zeros_like(starts)], dim=1)
kl_unit_step = categorical_kl(before, before + torch.tensor([1.0, 0.0], dtype=f64))
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.semilogy(torch.sigmoid(starts).numpy(), kl_unit_step.numpy())
ax.set_xlabel(r"$\pi(\mathrm{left})$ before the step")
ax.set_ylabel(r"KL(before $\|$ after), nats")
ax.set_title("The same parameter step (+1 on one logit) from different starting points")
plt.show()
ratio_range = float(kl_unit_step.max() / kl_unit_step.min())
print(f"the same step changes the policy by {float(kl_unit_step.min()):.1e} to "
      f"{float(kl_unit_step.max()):.1e} nats: a factor {ratio_range:.0f}")
assert ratio_range > 100

# %% [markdown]
# A step that is harmless near a confident policy is large near a uniform one, and in a network
# every parameter moves the logits of *every* state at once. A policy that jumps to a bad,
# confident behaviour then collects bad data, so unlike supervised learning the next batch
# cannot correct it: the training run **collapses**. Section 9 measures this on CartPole. The
# cure is to bound the step in distribution space: keep
# $D_\mathrm{KL}(\pi_{\theta_\text{old}}\,\|\,\pi_\theta)$ small on the states we visit.
#
# ## 2. KL divergence: properties, direction, estimators
#
# * **Non-negative** (Gibbs' inequality): $D_\mathrm{KL}(P\|Q)\ge 0$, with equality iff $P=Q$.
#   (By Jensen, $-D_\mathrm{KL}=\mathbb E_P[\log Q/P]\le\log\mathbb E_P[Q/P]=\log 1=0$.)
# * **Cross-entropy minus entropy:** $D_\mathrm{KL}(P\|Q)=H(P,Q)-H(P)$ with
#   $H(P,Q)=-\sum_a P(a)\log Q(a)$. Minimising a cross-entropy loss over $Q$ is minimising
#   $D_\mathrm{KL}(P\|Q)$, because $H(P)$ does not depend on $Q$.
# * **Not symmetric**, so not a distance: the direction is part of the definition.
#
# All three, checked on random distributions (the entropy helper is `ppo.categorical_entropy`):

# %%
lp, lq = torch.randn(1000, 5, dtype=f64), 2 * torch.randn(1000, 5, dtype=f64)
kl_pq, kl_qp = categorical_kl(lp, lq), categorical_kl(lq, lp)
cross_entropy = -(lp.softmax(-1) * lq.log_softmax(-1)).sum(-1)
print(f"min KL over 1000 random pairs: {float(kl_pq.min()):.2e} (>= 0); KL(p||p) = "
      f"{float(categorical_kl(lp, lp).abs().max()):.1e}")
print(f"max |KL - (H(P,Q) - H(P))| = "
      f"{float((kl_pq - (cross_entropy - ppo.categorical_entropy(lp))).abs().max()):.1e}")
print(f"mean KL(p||q) = {float(kl_pq.mean()):.3f} vs mean KL(q||p) = {float(kl_qp.mean()):.3f}")
assert float(kl_pq.min()) >= 0 and torch.allclose(kl_pq, cross_entropy - ppo.categorical_entropy(lp))
assert float((kl_pq - kl_qp).abs().max()) > 0.1

# %% [markdown]
# ### Forward vs reverse KL: covering vs seeking
#
# Fit a single Gaussian $q$ to a bimodal target $p$ (two bumps at ±2) by minimising each
# direction (on a fine grid, by gradient descent: `ppo.fit_gaussian_kl`).
#
# * **Forward** $D_\mathrm{KL}(p\,\|\,q)=\mathbb E_p[\log p-\log q]$ averages over $p$: wherever $p$
#   has mass and $q$ has none, $-\log q$ explodes. $q$ must **cover** all of $p$'s mass, and the
#   optimum matches $p$'s mean and variance (moment matching), landing *between* the modes.
# * **Reverse** $D_\mathrm{KL}(q\,\|\,p)=\mathbb E_q[\log q-\log p]$ averages over $q$: $q$ is
#   punished for putting mass where $p$ has none, but not for missing a mode. $q$ **seeks one
#   mode** and fits it tightly; which one depends on the start.

# %%
xs = torch.linspace(-10, 10, 801, dtype=f64)
log_target = torch.logsumexp(torch.stack([-0.5 * ((xs + 2) / 0.6) ** 2,
                                          -0.5 * ((xs - 2) / 0.6) ** 2]), 0).log_softmax(0)
p_target = log_target.exp()
fits = {"forward KL(p||q)": ppo.fit_gaussian_kl(xs, log_target, "forward", steps=300, lr=0.1),
        "reverse KL(q||p), start +1": ppo.fit_gaussian_kl(xs, log_target, "reverse", mu0=1.0,
                                                          sigma0=0.5, steps=300, lr=0.1),
        "reverse KL(q||p), start -1": ppo.fit_gaussian_kl(xs, log_target, "reverse", mu0=-1.0,
                                                          sigma0=0.5, steps=300, lr=0.1)}
dx = float(xs[1] - xs[0])
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.fill_between(xs.numpy(), (p_target / dx).numpy(), alpha=0.3, color="gray", label="target p")
for (label, (mu, sigma)), style in zip(fits.items(), ["-", "--", ":"]):
    dens = torch.exp(-0.5 * ((xs - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    ax.plot(xs.numpy(), dens.numpy(), style, label=f"{label}: mu={mu:+.2f}, sigma={sigma:.2f}")
ax.set_xlim(-6, 6)
ax.set_xlabel("x")
ax.set_ylabel("density")
ax.legend(fontsize=8)
plt.show()
mean_p = float((p_target * xs).sum())
std_p = float((p_target * (xs - mean_p) ** 2).sum().sqrt())
(mu_f, sig_f), (mu_r1, sig_r1), (mu_r2, sig_r2) = fits.values()
print(f"target: mean {mean_p:+.3f}, std {std_p:.3f}; forward fit {mu_f:+.3f}, {sig_f:.3f}")
assert abs(mu_f - mean_p) < 1e-3 and abs(sig_f - std_p) < 1e-2  # moment matching
assert abs(mu_r1 - 2) < 0.1 and abs(mu_r2 + 2) < 0.1 and max(sig_r1, sig_r2) < 0.7  # one mode

# %% [markdown]
# **Which direction is used where** (the trained model is $\pi_\theta$):
#
# | where | divergence | direction w.r.t. $\pi_\theta$ | samples from |
# |---|---|---|---|
# | maximum likelihood, SFT (cross-entropy on data) | $D_\mathrm{KL}(p_\text{data}\,\|\,\pi_\theta)$ | forward: mass-covering | the data |
# | TRPO's constraint, PPO-penalty (this notebook) | $D_\mathrm{KL}(\pi_{\theta_\text{old}}\,\|\,\pi_\theta)$ | forward, anchored at the old policy | $\pi_{\theta_\text{old}}$ (the rollout) |
# | RLHF / GRPO penalty (Part III) | $D_\mathrm{KL}(\pi_\theta\,\|\,\pi_\text{ref})$ | reverse: mode-seeking | $\pi_\theta$ (or $\pi_{\theta_\text{old}}$) |
#
# So the covering direction belongs to pre-training and SFT; the RLHF penalty is mode-seeking in
# $\pi_\theta$ and lets the tuned model drop some of the reference's behaviours (Part III).
#
# ### Estimating a KL from samples
#
# With many actions (a language model has ~50 000 tokens per step) the exact sum is expensive,
# so implementations estimate $D_\mathrm{KL}(q\|p)$ from samples $x\sim q$ using the log-ratio
# $\log r = \log p(x) - \log q(x)$:
#
# | estimator | formula | unbiased? | sign |
# |---|---|---|---|
# | k1 | $-\log r$ | yes | can be negative |
# | k2 | $\tfrac12(\log r)^2$ | no (good when $p\approx q$) | $\ge 0$ |
# | k3 | $(r-1)-\log r$ | yes ($\mathbb E_q[r-1]=0$) | $\ge 0$, since $\log r\le r-1$ |
#
# In PPO the samples come from $\pi_{\theta_\text{old}}$ and $\log r=\log\pi_\theta-\log\pi_{\theta_\text{old}}$,
# so k3 estimates $D_\mathrm{KL}(\pi_{\theta_\text{old}}\|\pi_\theta)$ (the `approx_kl` that PPO
# implementations log).
#
# ### Exercise 2: the k3 estimator
# Complete `kl_k3(log_ratio)`: elementwise $(r-1)-\log r$ with $r=e^{\text{log\_ratio}}$
# (`torch.expm1` computes $e^x-1$ accurately for small $x$).

# %%
def kl_k3(log_ratio):
    """k3 = (r - 1) - log r for r = exp(log_ratio); elementwise, same shape."""
    ### BEGIN SOLUTION
    return torch.expm1(log_ratio) - log_ratio
    ### END SOLUTION


kl_k3 = check("ppo.kl_k3", kl_k3)

# %%
q_logits = torch.tensor([1.0, 0.5, 0.0, -0.5], dtype=f64)
p_logits = q_logits + torch.tensor([0.4, -0.3, 0.2, -0.1], dtype=f64)
exact = float(categorical_kl(q_logits, p_logits))
gen = torch.Generator().manual_seed(0)
x = torch.multinomial(q_logits.softmax(0), 400 * 1000, replacement=True, generator=gen)
log_r = (p_logits.log_softmax(0) - q_logits.log_softmax(0))[x].reshape(1000, 400)
print(f"exact KL(q || p) = {exact:.5f}; 1000 estimates from 400 samples each:")
rows = {"k1": ppo.kl_k1(log_r), "k2": ppo.kl_k2(log_r), "k3": kl_k3(log_r)}
for name, vals in rows.items():
    est = vals.mean(1)
    print(f"  {name}: mean {float(est.mean()):.5f}  std of an estimate {float(est.std()):.5f}  "
          f"share of negative samples {float((vals < 0).double().mean()):.2f}")
se = {k: float(v.mean(1).std()) / math.sqrt(1000) for k, v in rows.items()}
assert abs(float(rows["k1"].mean()) - exact) < 4 * se["k1"]
assert abs(float(rows["k3"].mean()) - exact) < 4 * se["k3"]
assert float(rows["k3"].min()) >= 0 and float(rows["k1"].min()) < 0
assert float(rows["k3"].mean(1).std()) < float(rows["k1"].mean(1).std())

# %% [markdown]
# k3 is unbiased like k1, never negative, and here it has a much smaller spread.
#
# ## 3. Reusing old samples: the importance-weighted surrogate
#
# We want to improve $J(\theta)$ using a batch collected by $\pi_{\theta_\text{old}}$. Write the
# discounted state distribution of a policy as $d^\pi(s)=(1-\gamma)\sum_t\gamma^t\Pr(s_t=s)$.
# The **performance difference lemma** is an exact identity:
# $$J(\pi)-J(\pi_\text{old})=\frac{1}{1-\gamma}\;\mathbb E_{s\sim d^{\pi}}\,\mathbb E_{a\sim\pi(\cdot\mid s)}
#   \big[A^{\pi_\text{old}}(s,a)\big].$$
# The inner expectation over the *new* policy's actions can be rewritten with an importance
# weight over actions, $\mathbb E_{a\sim\pi}[A]=\mathbb E_{a\sim\pi_\text{old}}\big[\tfrac{\pi(a\mid s)}{\pi_\text{old}(a\mid s)}A\big]$.
# The outer one needs states from the *new* policy, which we do not have, so we replace
# $d^{\pi}$ by $d^{\pi_\text{old}}$. That gives the **surrogate**
# $$L_{\theta_\text{old}}(\theta)=\mathbb E_{s\sim d^{\pi_\text{old}},\,a\sim\pi_{\theta_\text{old}}}
#   \Big[\frac{\pi_\theta(a\mid s)}{\pi_{\theta_\text{old}}(a\mid s)}\,A^{\pi_{\theta_\text{old}}}(s,a)\Big]
#   \quad(\text{up to the factor }1/(1-\gamma)).$$
#
# Three things to keep straight in this formula. The probability of a visited pair factors as
# $\Pr_\theta(s_t,a_t)=d_\theta(s_t)\,\pi_\theta(a_t\mid s_t)$ (state first, then the action given the
# state), so the ratio is one of **action probabilities given the state**. The policy in the
# denominator, and the one whose advantage $A^{\pi_{\theta_\text{old}}}$ we use, is the **old
# (behaviour) policy** that collected the batch; its advantages come from the critic (GAE), and
# it is *not* the frozen reference model $\pi_\text{ref}$ of RLHF (Section 12). And dropping the
# state ratio $d_{\theta}(s)/d_{\theta_\text{old}}(s)$ is an **approximation**, good only while the
# two policies stay close. That is why the step must be kept small.
#
# We can see both facts exactly on a small random MDP (5 states, 3 actions, fairly
# deterministic transitions, start in state 0, $\gamma=0.9$), where `ppo.tabular_values` and
# `ppo.state_visitation` solve the linear equations. We move the logits of every state along the
# (normalised) policy gradient by a growing step $t$ and compare the true improvement with the
# surrogate's prediction, and with the lemma (the same formula with $d^{\pi}$ instead of
# $d^{\pi_\text{old}}$):

# %%
g_mdp = torch.Generator().manual_seed(1)
P_mdp = (3 * torch.randn(5, 3, 5, generator=g_mdp, dtype=f64)).softmax(-1)
R_mdp = torch.randn(5, 3, generator=g_mdp, dtype=f64)
rho0 = torch.tensor([1.0, 0, 0, 0, 0], dtype=f64)
theta_old = torch.randn(5, 3, generator=g_mdp, dtype=f64)
pi_old = theta_old.softmax(-1)


def J_exact(theta):
    return (rho0 * ppo.tabular_values(P_mdp, R_mdp, 0.9, theta.softmax(-1))[0]).sum()


th = theta_old.clone().requires_grad_(True)
(g_true,) = torch.autograd.grad(J_exact(th), th)  # the exact policy gradient (in the logits)
direction = g_true / g_true.norm()
d_old = ppo.state_visitation(P_mdp, 0.9, pi_old, rho0)
steps_t = np.geomspace(0.01, 20, 25)
true_gain, surrogate, lemma, kl_mean = [], [], [], []
for t in steps_t:
    theta = theta_old + t * direction
    true_gain.append(float(J_exact(theta) - J_exact(theta_old)))
    surrogate.append(float(ppo.surrogate_gain(P_mdp, R_mdp, 0.9, rho0, pi_old, theta.softmax(-1))))
    lemma.append(float(ppo.surrogate_gain(P_mdp, R_mdp, 0.9, rho0, pi_old, theta.softmax(-1),
                                          exact=True)))
    kl_mean.append(float((d_old * categorical_kl(theta_old, theta)).sum()))
true_gain, surrogate, kl_mean = map(np.array, (true_gain, surrogate, kl_mean))
err = np.abs(surrogate - true_gain)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].plot(steps_t, true_gain, label=r"true $J(\pi)-J(\pi_\mathrm{old})$")
axes[0].plot(steps_t, surrogate, "--", label=r"surrogate (states from $d^{\pi_\mathrm{old}}$)")
axes[0].plot(steps_t, lemma, ":", lw=3, label=r"same with $d^{\pi}$ (the lemma)")
axes[0].set_xlabel("step t along the policy gradient")
axes[0].set_ylabel("improvement")
axes[0].legend(fontsize=8)
axes[1].loglog(kl_mean, err, "o-", label="|surrogate - true|")
axes[1].loglog(kl_mean, err[0] * kl_mean / kl_mean[0], ":", color="gray", label="proportional to KL")
axes[1].set_xlabel(r"mean KL($\pi_\mathrm{old}\,\|\,\pi$) over $d^{\pi_\mathrm{old}}$")
axes[1].set_ylabel("error of the surrogate")
axes[1].legend(fontsize=8)
plt.show()
slope = np.polyfit(np.log(kl_mean[:8]), np.log(err[:8]), 1)[0]
print(f"lemma: max error {np.abs(np.array(lemma) - true_gain).max():.1e}; surrogate: error "
      f"{err[0]:.1e} at KL {kl_mean[0]:.1e}, {err[-1]:.2f} at KL {kl_mean[-1]:.1f} (true gain "
      f"{true_gain[-1]:.2f}); log-log slope of error vs KL at small steps {slope:.2f}")
assert np.allclose(lemma, true_gain, atol=1e-9)
assert 0.8 < slope < 1.2 and err[0] < 0.01 * abs(true_gain[0])

# %% [markdown]
# With the new policy's own state distribution the formula is exact. With the old one it is
# accurate near $\pi_\text{old}$, and its error grows in proportion to the KL between the
# policies (second order in the step), until for large steps it predicts gains that do not
# exist. The surrogate is exact to **first order**: at $\theta=\theta_\text{old}$ the
# ratio is 1 and $\nabla_\theta\frac{\pi_\theta}{\pi_{\theta_\text{old}}}=\nabla_\theta\log\pi_\theta$, so
# $$\nabla_\theta L_{\theta_\text{old}}(\theta)\big|_{\theta=\theta_\text{old}}
#   =\mathbb E\big[\nabla_\theta\log\pi_\theta(a\mid s)\,A(s,a)\big]=\nabla_\theta J(\theta_\text{old}).$$
# Two autograd checks. First exactly, on the MDP above (the policy gradient theorem); then on a
# sampled batch with a small policy network, where the gradient of PPO's loss at
# $\theta_\text{old}$ must equal the REINFORCE gradient $-\nabla\,\mathrm{mean}(\log\pi\,A)$:

# %%
th = theta_old.clone().requires_grad_(True)
(g_surrogate,) = torch.autograd.grad(
    ppo.surrogate_gain(P_mdp, R_mdp, 0.9, rho0, pi_old, th.softmax(-1)), th)
print(f"exact MDP: max |grad surrogate - grad J| = {float((g_surrogate - g_true).abs().max()):.1e}")
assert torch.allclose(g_surrogate, g_true, atol=1e-10)

torch.manual_seed(0)
policy = deeprl.mlp([4, 32, 2])
states, actions, advantages = torch.randn(256, 4), torch.randint(0, 2, (256,)), torch.randn(256)


def log_probs(net):
    return torch.log_softmax(net(states), -1).gather(1, actions[:, None])[:, 0]


logp_old = log_probs(policy).detach()
surrogate_loss, _ = ppo.clipped_surrogate(log_probs(policy), logp_old, advantages, 0.2)
g_ppo = torch.autograd.grad(surrogate_loss, list(policy.parameters()))
g_reinforce = torch.autograd.grad(-(log_probs(policy) * advantages).mean(), list(policy.parameters()))
gap = max(float((a - b).abs().max()) for a, b in zip(g_ppo, g_reinforce))
print(f"policy net at theta_old: max |grad PPO loss - grad REINFORCE loss| = {gap:.1e}")
assert gap < 1e-6

# %% [markdown]
# So a single step on the surrogate *is* a vanilla policy-gradient step. What the surrogate adds
# is that we can keep optimising it on the same batch; the question is how far we can trust it.
#
# ## 4. TRPO: a trust region in distribution space
#
# TRPO (Schulman et al., 2015) maximises the surrogate subject to a bound on the average KL:
# $$\max_\theta\; L_{\theta_\text{old}}(\theta)\quad\text{s.t.}\quad
#   \mathbb E_{s\sim d^{\pi_\text{old}}}\big[D_\mathrm{KL}(\pi_{\theta_\text{old}}(\cdot\mid s)\,\|\,\pi_\theta(\cdot\mid s))\big]\le\delta .$$
# Near $\theta_\text{old}$ the objective is linear, $L\approx g^\top\Delta$, and the KL is quadratic,
# $D_\mathrm{KL}\approx\tfrac12\Delta^\top F\Delta$, where $F=\mathbb E[\nabla\log\pi\,\nabla\log\pi^\top]$ is
# the **Fisher information matrix** (the Hessian of the KL at $\theta_\text{old}$). The solution
# of the quadratic problem is the **natural gradient** step
# $$\Delta=\sqrt{\frac{2\delta}{g^\top F^{-1}g}}\;F^{-1}g .$$
# For a network, $F$ has (parameters)² entries, so TRPO never forms it: it solves $F x=g$ with
# **conjugate gradient** using Fisher-vector products (a double backward pass), then runs a
# **backtracking line search** that shrinks the step until the *actual* KL is below $\delta$ and
# the surrogate improved. That second-order machinery is what makes TRPO hard to implement and
# hard to combine with shared actor-critic networks, minibatches or large models.
#
# A tiny illustration: a 3-armed bandit with rewards (1, 0, 0.5), a softmax policy started
# confidently on the worst arm. Vanilla gradient ascent with a fixed learning rate against
# natural-gradient steps of $\delta=0.05$ with TRPO's line search (halve until the KL fits):

# %%
arm_rewards = torch.tensor([1.0, 0.0, 0.5], dtype=f64)


def bandit_gradient(theta):
    theta = theta.clone().requires_grad_(True)
    return torch.autograd.grad((theta.softmax(-1) * arm_rewards).sum(), theta)[0]


def trpo_step(theta, delta=0.05):
    step = ppo.natural_gradient_step(theta, bandit_gradient(theta), delta)
    while float(categorical_kl(theta, theta + step)) > delta:  # backtracking line search
        step = step / 2
    return step


traces = {}
for name, step_fn in [("vanilla PG, lr = 1", lambda th: 1.0 * bandit_gradient(th)),
                      ("vanilla PG, lr = 10", lambda th: 10.0 * bandit_gradient(th)),
                      ("natural gradient + line search, delta = 0.05", trpo_step)]:
    theta = torch.tensor([0.0, 4.0, 0.0], dtype=f64)
    values, kls = [float((theta.softmax(-1) * arm_rewards).sum())], []
    for _ in range(50):
        step = step_fn(theta)
        kls.append(float(categorical_kl(theta, theta + step)))
        theta = theta + step
        values.append(float((theta.softmax(-1) * arm_rewards).sum()))
    traces[name] = (values, kls)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for name, (values, kls) in traces.items():
    axes[0].plot(values, label=name)
    axes[1].semilogy(np.maximum(kls, 1e-8), label=name)
axes[0].set_xlabel("update")
axes[0].set_ylabel("expected reward")
axes[1].set_xlabel("update")
axes[1].set_ylabel("KL(old || new) of the step")
axes[1].axhline(0.05, color="gray", ls=":")
axes[1].set_ylim(1e-6, 3)
axes[0].legend(fontsize=8)
plt.show()
first = lambda v: next(i for i, x in enumerate(v) if x > 0.95)
for name, (values, kls) in traces.items():
    print(f"{name:46s}: reaches 0.95 after {first(values):2d} updates, largest step KL "
          f"{max(kls):.3f}")
(v_slow, kl_slow), (v_fast, kl_fast), (v_nat, kl_nat) = traces.values()
assert max(kl_nat) <= 0.05 + 1e-12 and max(kl_slow) <= 0.05 and max(kl_fast) > 0.5
assert first(v_nat) < first(v_slow) / 2

# %% [markdown]
# With a learning rate small enough that no step exceeds the KL budget, vanilla gradient
# ascent crawls off the plateau (the gradient of a saturated softmax is tiny). With a rate
# large enough to be fast, one step moves the policy by more than a nat: harmless on this
# exact, noise-free bandit, but with sampled gradients such a jump can land on a bad confident
# policy. The natural gradient makes every step the same size in KL, small or large gradient. (For a softmax bandit, $F^{-1}g$ is, up to a constant shift, the
# advantage vector $r_a - J$: the natural gradient undoes the softmax's squashing.)
#
# ## 5. PPO-clip: the six cases
#
# PPO (Schulman et al., 2017) keeps the surrogate and the first-order optimiser (Adam), and
# removes the incentive to move the ratio far from 1:
# $$L^\text{CLIP}(\theta)=\mathbb E_t\Big[\min\big(r_t(\theta)\hat A_t,\;
#   \operatorname{clip}(r_t(\theta),1-\epsilon,1+\epsilon)\,\hat A_t\big)\Big],\qquad \epsilon\approx0.1\text{–}0.2 .$$
#
# ### Exercise 3: the clipped objective
# Complete `clipped_objective(ratio, adv, clip_eps)`: the per-sample
# $\min(r\hat A,\operatorname{clip}(r,1-\epsilon,1+\epsilon)\hat A)$, elementwise, same shape. It must
# stay differentiable in `ratio`.

# %%
def clipped_objective(ratio, adv, clip_eps=0.2):
    """min(r A, clip(r, 1 - eps, 1 + eps) A), elementwise (to be maximised)."""
    ### BEGIN SOLUTION
    clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps)
    return torch.minimum(ratio * adv, clipped * adv)
    ### END SOLUTION


clipped_objective = check("ppo.clipped_objective", clipped_objective)

# %% [markdown]
# Now every combination of the advantage's sign with a ratio below, inside and above
# $[1-\epsilon,1+\epsilon]$, with the gradient $\partial L/\partial r$ from autograd:

# %%
eps = 0.2
print(f"{'A':>3} {'r':>5} {'r*A':>6} {'clip(r)*A':>10} {'L_clip':>7} {'active term':>12} {'dL/dr':>6}")
six = []
for A in (1.0, -1.0):
    for r_val in (0.5, 1.0, 1.5):
        r_t = torch.tensor(r_val, dtype=f64, requires_grad=True)
        L = clipped_objective(r_t, torch.tensor(A, dtype=f64), eps)
        (dL,) = torch.autograd.grad(L, r_t)
        unclipped, clipped_term = r_val * A, min(max(r_val, 1 - eps), 1 + eps) * A
        active = "clipped" if clipped_term < unclipped else "unclipped"
        six.append((A, r_val, float(dL)))
        print(f"{A:+3.0f} {r_val:5.1f} {unclipped:+6.2f} {clipped_term:+10.2f} {float(L.detach()):+7.2f} "
              f"{active:>12} {float(dL):+6.1f}")
zero_grad = {(A, r_val) for A, r_val, d in six if d == 0}
assert zero_grad == {(1.0, 1.5), (-1.0, 0.5)}  # exactly where the clipped term is the minimum

# %%
r_grid = torch.linspace(0.0, 2.0, 401, dtype=f64)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, A in zip(axes, (1.0, -1.0)):
    adv_grid = torch.full_like(r_grid, A)
    ax.plot(r_grid, (r_grid * A).numpy(), ":", color="gray", label=r"unclipped $rA$")
    ax.plot(r_grid, clipped_objective(r_grid, adv_grid, eps).numpy(), lw=2.5, label=r"$L^{CLIP}$")
    flat = ppo.clip_branch_active(r_grid, adv_grid, eps).numpy()
    ax.fill_between(r_grid.numpy(), -2, 2, where=flat, color="tab:red", alpha=0.12,
                    label="zero gradient")
    for edge in (1 - eps, 1 + eps):
        ax.axvline(edge, color="gray", lw=0.8)
    ax.set_title(f"A = {A:+.0f}")
    ax.set_xlabel(r"ratio $r=\pi_\theta/\pi_{\theta_\mathrm{old}}$")
    ax.set_ylim(-2, 2)
axes[0].set_ylabel("objective (maximised)")
axes[0].legend(fontsize=8)
plt.show()

# %% [markdown]
# Reading the table and the plot:
#
# * **A > 0, r > 1+ε:** the action was good and its probability has already grown by more
#   than ε; the clipped term is the minimum, it is constant in $r$, **gradient 0**. No reward
#   for pushing further.
# * **A < 0, r < 1−ε:** the action was bad and is already ε less likely; same, **gradient 0**.
# * **Inside the range** (both signs): plain surrogate, gradient $\hat A$.
# * **A > 0, r < 1−ε** and **A < 0, r > 1+ε:** the policy has moved the *wrong* way. Here the
#   unclipped $r\hat A$ is the smaller term, so it stays active and its gradient pulls the ratio
#   back. The min makes $L^\text{CLIP}$ a **pessimistic** (lower) bound on the surrogate: clipping
#   can only remove an incentive to move further, never hide a loss.
#
# So the clip is a statement about six cases, not two: it removes the incentive to go further
# in the helpful direction and keeps the full penalty in the harmful one. It acts on the
# probability **ratio** inside the objective and switches off the gradient of individual samples
# that have moved far enough. That is a different tool from gradient-*norm* clipping
# (`clip_grad_norm_`, a separate PPO trick, Section 10), which rescales the whole gradient vector
# and never zeroes a sample's contribution; the cell after the worked example shows both.
#
# ### A worked example (three steps, ε = 0.2)
#
# One trajectory with $\gamma=0.9$: rewards (1, 2, 0), values $V(s_t)$ = (1.5, 2.0, 0.5),
# $\pi_\text{old}(a_t\mid s_t)$ = (0.20, 0.50, 0.30), $\pi_\theta(a_t\mid s_t)$ = (0.25, 0.55, 0.20).
# Monte-Carlo returns $G_t$ = (2.8, 2.0, 0) (one-sample estimates of $Q(s_t,a_t)$), so
# $\hat A_t=G_t-V(s_t)$ = (1.3, 0, −0.5).

# %%
pi_old_w = torch.tensor([0.20, 0.50, 0.30], dtype=f64)
pi_new_w = torch.tensor([0.25, 0.55, 0.20], dtype=f64)
G_w = torch.tensor([1 + 0.9 * 2 + 0.81 * 0, 2 + 0.9 * 0, 0.0], dtype=f64)
A_w = G_w - torch.tensor([1.5, 2.0, 0.5], dtype=f64)
# The policy as 2-way logits per step (chosen action vs the rest), so autograd can reach it.
logits_w = torch.stack([pi_new_w, 1 - pi_new_w], dim=1).log().requires_grad_(True)
logp_w = torch.log_softmax(logits_w, dim=1)[:, 0]
ratio_w = ppo.ratio_from_logps(logp_w, pi_old_w.log())
terms_w = clipped_objective(ratio_w, A_w, 0.2)
loss_w = -terms_w.mean()  # mean reduction over the three steps
(grad_w,) = torch.autograd.grad(loss_w, logits_w)
print("advantages     ", np.round(A_w.numpy(), 4))
print("ratios         ", np.round(ratio_w.detach().numpy(), 4))
print("clipped ratios ", np.round(ratio_w.detach().clamp(0.8, 1.2).numpy(), 4))
print("min terms      ", np.round(terms_w.detach().numpy(), 4))
print(f"loss (mean reduction) = {float(loss_w):.5f};  with sum reduction it would be "
      f"{float(-terms_w.sum()):.2f}")
print(f"gradient of the loss w.r.t. the logits: {float(grad_w.abs().max()):.1f} everywhere")
assert torch.allclose(terms_w.detach(), torch.tensor([1.56, 0.0, -0.4], dtype=f64))
assert abs(float(loss_w) + 0.386667) < 1e-5 and torch.count_nonzero(grad_w) == 0
loss_pkg, stats_w = ppo.clipped_surrogate(logp_w.detach(), pi_old_w.log(), A_w, 0.2)
assert abs(float(loss_pkg) - float(loss_w)) < 1e-12

# %% [markdown]
# Step 3's unclipped term is $\tfrac23\times(-0.5)=-\tfrac13$ (not −0.3335: that comes from
# rounding the ratio to 0.667), and the clipped term −0.4 is the smaller. All three steps have
# **zero gradient**: step 1 has A > 0 with r = 1.25 > 1.2, step 3 has A < 0 with
# r = 0.667 < 0.8 (both past the clip in the helpful direction), and step 2 has A = 0. On this
# batch the new policy has already moved as far as PPO allows. The choice of reduction matters
# for the loss's scale (and so for the learning rate): we average over steps (−0.38667), a sum
# would give −1.16.
#
# For contrast, gradient-norm clipping of the *unclipped* surrogate keeps every gradient alive
# and only shrinks its length:

# %%
logits_c = logits_w.detach().clone().requires_grad_(True)
unclipped_loss = -(ppo.ratio_from_logps(torch.log_softmax(logits_c, 1)[:, 0], pi_old_w.log()) * A_w).mean()
unclipped_loss.backward()
norm_before = float(logits_c.grad.norm())
torch.nn.utils.clip_grad_norm_([logits_c], max_norm=0.1)
print(f"unclipped surrogate: gradient norm {norm_before:.3f}; after clip_grad_norm_(0.1): "
      f"{float(logits_c.grad.norm()):.3f}, non-zero entries {int(torch.count_nonzero(logits_c.grad))} of 6")
assert int(torch.count_nonzero(logits_c.grad)) == 4  # steps 1 and 3 keep their gradient

# %% [markdown]
# ## 6. PPO-penalty: a KL penalty with an adaptive coefficient
#
# The other PPO variant keeps the surrogate unclipped and subtracts a KL penalty:
# $$L^\text{KLPEN}(\theta)=\mathbb E_t\big[r_t(\theta)\hat A_t\big]-\beta\;
#   \mathbb E_s\big[D_\mathrm{KL}(\pi_{\theta_\text{old}}(\cdot\mid s)\,\|\,\pi_\theta(\cdot\mid s))\big].$$
# A fixed β is hard to choose (the right value changes during training), so β adapts after
# each update to hit a target KL $d_\text{targ}$: if the measured $d > 1.5\,d_\text{targ}$ the
# step was too large, so **double** β; if $d < d_\text{targ}/1.5$, **halve** it; otherwise keep it.
#
# ### Exercise 4: the adaptive β rule
# Complete `adaptive_kl_beta(beta, kl, target)` (factor 2, tolerance 1.5 as above).

# %%
def adaptive_kl_beta(beta, kl, target, factor=2.0, tolerance=1.5):
    """New beta after an update whose KL(pi_old || pi) was ``kl``."""
    ### BEGIN SOLUTION
    if kl > tolerance * target:
        return beta * factor
    if kl < target / tolerance:
        return beta / factor
    return beta
    ### END SOLUTION


adaptive_kl_beta = check("ppo.adaptive_kl_beta", adaptive_kl_beta)

# %% [markdown]
# `ppo.train(objective="kl_penalty")` uses the exact KL over CartPole's two actions in the loss
# and this rule between updates (target 0.01, β starts at 1). β and the measured KL per update:

# %%
t0 = time.process_time()
pen = ppo.train("CartPole-v1", seed=0, device=DEVICE, objective="kl_penalty", kl_target=0.01,
                total_steps=60_000)
pen_cpu = time.process_time() - t0
h = pen.history
betas_replayed = [h["beta"][0]]
for kl_u in h["kl"][:-1]:
    betas_replayed.append(adaptive_kl_beta(betas_replayed[-1], kl_u, 0.01))
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].semilogy(h["step"], h["kl"], label="KL(old || new) after the update")
axes[0].axhspan(0.01 / 1.5, 0.015, color="tab:green", alpha=0.15, label="target band")
axes[0].set_xlabel("env steps")
axes[0].set_ylabel("KL, nats")
axes[0].legend(fontsize=8)
axes[1].semilogy(h["step"], h["beta"])
axes[1].set_xlabel("env steps")
axes[1].set_ylabel(r"$\beta$ used in the update")
plt.show()
in_band = np.mean([0.01 / 3 <= k <= 0.03 for k in h["kl"]])
print(f"PPO-penalty: solved after {pen.steps_to_solve:,} steps ({pen_cpu:.1f} s CPU); beta "
      f"ranged {min(h['beta']):.3g}..{max(h['beta']):.3g}; {in_band:.0%} of updates within a "
      f"factor 3 of the target KL")
assert pen.solved and betas_replayed == h["beta"]  # your rule reproduces the training trace
assert max(h["beta"]) / min(h["beta"]) >= 4 and in_band >= 0.4

# %% [markdown]
# β moves by factors of 2 to keep the KL near the target: a *soft* constraint whose strength
# is tuned on the fly. Computing the KL was never the obstacle: for a categorical policy it is
# a cheap sum (the training run above used the exact one), and from samples k3 is one line.
# PPO-clip became the default because it needs no controller: one hyperparameter ε that rarely
# needs tuning, and no β schedule.
#
# ## 7. The full PPO loss
#
# With a critic $V_\phi$ and an entropy bonus $S[\pi_\theta]=\mathbb E_s[H(\pi_\theta(\cdot\mid s))]$,
# PPO maximises
# $$L(\theta,\phi)=L^\text{CLIP}(\theta)-c_1L^\text{VF}(\phi)+c_2\,S[\pi_\theta],\qquad
#   L^\text{VF}=\tfrac12\,\mathbb E_t\big[(V_\phi(s_t)-\hat R_t)^2\big],$$
# with value targets $\hat R_t=\hat A_t+V_{\phi_\text{old}}(s_t)$ (notebook 06). Optionally the value
# loss is **clipped** like the ratio: the larger of the errors of $V_\phi$ and of
# $V_\text{old}+\operatorname{clip}(V_\phi-V_\text{old},-\epsilon_v,\epsilon_v)$ (`ppo.clipped_value_loss`).
# Unlike the ratio, a value is measured in **return units**, so $\epsilon_v$ is too: the common
# $\epsilon_v=0.2$ lets a CartPole value, which is of order 100 (Section 10 computes it), move
# only 0.2 towards its target, within one update, before that sample's gradient is switched off. The defaults leave value clipping off (`vf_clip=None`); Section 10 measures it.
# Code minimises `loss = -L`, and every sign flips.
#
# ### Exercise 5: the total loss
# Complete `ppo_loss(policy_loss, value_loss, entropy, vf_coef, ent_coef)`, the scalar that the
# optimiser minimises so that $L(\theta,\phi)$ above is maximised. Its inputs are scalar tensors:
# `policy_loss` is already a *loss* (what `ppo.clipped_surrogate` returns, i.e. the negated
# clipped surrogate), `value_loss` is $L^\text{VF}\ge0$ and `entropy` the mean entropy $S$. Idea:
# write the objective with its coefficients, then decide for each term whether minimising
# should push it down or up.

# %%
def ppo_loss(policy_loss, value_loss, entropy, vf_coef=0.5, ent_coef=0.01):
    """Scalar loss whose minimisation maximises PPO's objective L (see the text above).

    policy_loss: scalar, the clipped surrogate already negated; value_loss: scalar L_VF;
    entropy: scalar mean entropy; vf_coef, ent_coef: the weights c1, c2 >= 0.
    """
    ### BEGIN SOLUTION
    return policy_loss + vf_coef * value_loss - ent_coef * entropy
    ### END SOLUTION


ppo_loss = check("ppo.ppo_loss", ppo_loss)

# %%
entropy_t = torch.tensor(0.6, requires_grad=True)
total = ppo_loss(torch.tensor(-0.2), torch.tensor(1.5), entropy_t, 0.5, 0.01)
total.backward()
print(f"loss = {float(total):.4f}; d loss / d entropy = {float(entropy_t.grad):+.3f} "
      f"(negative: a more random policy lowers the loss)")
assert float(entropy_t.grad) < 0

# %% [markdown]
# ## 8. The PPO algorithm
#
# ```
# for each update:
#     collect T steps in N parallel envs with pi_old (store s, a, log pi_old(a|s), V_old(s), r, done)
#     compute GAE advantages A and value targets R = A + V_old            (notebook 06)
#     for K epochs:
#         for each minibatch (a random split of the N*T steps):
#             loss = -L_clip + c1 * L_vf - c2 * S       (+ grad-norm clip, Adam step)
#     pi_old <- pi                                       (the next rollout uses the new policy)
# ```
#
# `ppo.train` follows this with the course's Part II plumbing: vector environments with
# next-step autoreset, where the extra reset step is marked invalid and left out of every loss;
# truncated episodes bootstrap from $V$ of their final observation while terminated ones do
# not; advantages from `rlcourse.advantages.gae` on the transposed `[envs, time]` batch. Its
# defaults:

# %%
cfg = ppo.Config()
print(", ".join(f"{k}={v}" for k, v in vars(cfg).items()))

# %% [markdown]
# ### Building the update in three stages
#
# Before training, you build `ppo.update` yourself, one stage at a time, each checked on its
# own: (6) which steps go into which minibatch, (7) the loss on one minibatch, (8) the whole
# update. A mistake in an update rarely crashes: the agent usually still learns something, just
# worse, so each stage is compared with the package's version on fixed inputs.
#
# ### Exercise 6: the minibatch indexer
# An update makes `epochs` passes over the batch of `n` valid steps; each pass cuts a **fresh
# random order** of the steps into minibatches, so consecutive (strongly correlated) steps of
# one env do not land in the same minibatch every time, and every step is used exactly once per
# epoch. The contract fixes how the random order is drawn, so your update can reproduce the
# package's bit for bit: for each epoch, one `torch.randperm(n, generator=generator)`, drawn
# only when that epoch starts (write a Python generator with `yield`, so an update that stops
# early draws no more), cut with `.split(size)` into chunks of `size = ceil(n / minibatches)`.

# %%
def minibatch_indices(n, minibatches, epochs, generator):
    """Yield one tuple of index tensors per epoch: a random split of 0..n-1.

    n: number of steps; minibatches: at most this many chunks of ceil(n / minibatches) indices
    (the last one shorter when the split is uneven); epochs: how many tuples to yield;
    generator: a torch.Generator, used for one torch.randperm(n) per epoch and nothing else.
    """
    ### BEGIN SOLUTION
    size = math.ceil(n / min(minibatches, n))
    for _ in range(epochs):
        yield torch.randperm(n, generator=generator).split(size)
    ### END SOLUTION


minibatch_indices = check("ppo.minibatch_indices", minibatch_indices)

# %%
demo = [[c.tolist() for c in chunks]
        for chunks in minibatch_indices(10, 4, 2, torch.Generator().manual_seed(0))]
for e, chunks in enumerate(demo):
    print(f"epoch {e}: {chunks}")
assert all(sorted(sum(chunks, [])) == list(range(10)) for chunks in demo) and demo[0] != demo[1]

# %% [markdown]
# ### Exercise 7: the loss on one minibatch
# Put Sections 5 and 7 together for one minibatch of `B` steps. The inputs are the new
# log-probabilities `logp` of the actions taken (with gradient), the rollout's `logp_old`
# (recorded when the batch was collected, fixed for the whole update), the raw GAE advantages,
# the critic's new `values` (with gradient), the rollout's `v_old`, the value `targets` and the
# per-step `entropy` of the current policy; all `[B]`. Use your `clipped_objective` (Exercise 3)
# and `ppo_loss` (Exercise 5) and `ppo.clipped_value_loss` (its `clip_eps` is `cfg.vf_clip`,
# None by default). When `cfg.norm_adv` is True, normalise the advantages over the minibatch
# with `rlcourse.advantages.normalize` (only if `B > 1`). Also return two diagnostics, computed without
# gradient: `approx_kl`, the mean k3 estimate of $D_\mathrm{KL}(\pi_\text{old}\|\pi_\theta)$
# (Exercise 2), and `clip_fraction`, the share of steps with $|r-1|>\epsilon$.

# %%
def minibatch_loss(logp, logp_old, adv, values, v_old, targets, entropy, cfg):
    """PPO-clip's loss on one minibatch and {"approx_kl": float, "clip_fraction": float}.

    All tensors [B]; cfg: a ppo.Config (clip_eps, vf_clip, vf_coef, ent_coef, norm_adv).
    """
    ### BEGIN SOLUTION
    a = normalize(adv) if cfg.norm_adv and len(adv) > 1 else adv
    ratio = torch.exp(logp - logp_old)
    policy_loss = -clipped_objective(ratio, a, cfg.clip_eps).mean()
    value_loss = ppo.clipped_value_loss(values, v_old, targets, cfg.vf_clip)
    loss = ppo_loss(policy_loss, value_loss, entropy.mean(), cfg.vf_coef, cfg.ent_coef)
    with torch.no_grad():
        stats = {"approx_kl": float(kl_k3(logp - logp_old).mean()),
                 "clip_fraction": float(((ratio - 1).abs() > cfg.clip_eps).float().mean())}
    return loss, stats
    ### END SOLUTION


minibatch_loss = check("ppo.minibatch_loss", minibatch_loss)

# %% [markdown]
# A classic slip is to compute the ratio from the *new* log-probabilities on both sides, e.g.
# `exp(logp - logp.detach())`. It is exactly 1 in value, so the clip never bites, yet its
# gradient is the plain policy gradient: the code runs and even learns a little. The clip
# fraction gives it away:

# %%
g_demo = torch.Generator().manual_seed(1)
logp_old_demo = -torch.rand(64, generator=g_demo) - 0.2
logp_demo = logp_old_demo + 0.3 * torch.randn(64, generator=g_demo)
mb_args = (torch.randn(64, generator=g_demo), torch.zeros(64), torch.zeros(64),
           torch.zeros(64), torch.full((64,), 0.6), cfg)
_, right_stats = minibatch_loss(logp_demo, logp_old_demo, *mb_args)
_, slip_stats = minibatch_loss(logp_demo, logp_demo.detach(), *mb_args)
print(f"clip fraction with the rollout's old log-probs {right_stats['clip_fraction']:.2f}, "
      f"with the new ones on both sides {slip_stats['clip_fraction']:.2f}")
assert right_stats["clip_fraction"] > 0.2 and slip_stats["clip_fraction"] == 0.0

# %% [markdown]
# ### Exercise 8: one full update
# Now the loop of the pseudo-code above. `ppo.flatten_rollout` keeps the valid steps of the
# `[T, N]` rollout and flattens them into a `ppo.Batch` of `[n]` tensors (`obs` is
# `[n, obs_dim]`). For each epoch's minibatches (your `minibatch_indices`): run the agent on
# the minibatch's observations (`logits, values = agent(obs)`), take the log-probability of the
# actions taken (`torch.log_softmax(logits, -1)` gathered at the actions) and the entropy
# (`ppo.categorical_entropy(logits)`), get the loss from your `minibatch_loss`, then
# `opt.zero_grad()`, `loss.backward()`, clip the gradient norm with
# `nn.utils.clip_grad_norm_(agent.parameters(), cfg.max_grad_norm)` (it returns the norm
# *before* clipping: keep it), `opt.step()`. After each epoch, if `cfg.target_kl` is not None
# and `ppo.batch_kl(agent, batch)` exceeds it, stop: the policy has already moved far enough
# for this batch. The old log-probabilities stay the rollout's for the whole update: they
# describe the policy that *collected* the data. The check runs your update and `ppo.update`
# on copies of the same agent, optimiser state and rollout and compares the parameters.

# %%
def ppo_update(agent, opt, ro, adv, targets, cfg, generator, beta=0.0):
    """One PPO-clip update on rollout ro ([T, N] tensors; adv and targets [T, N]).

    agent: ppo.ActorCritic; opt: its optimiser; cfg: ppo.Config; generator: for the
    minibatch orders; beta: unused (PPO-penalty's coefficient). Returns
    ppo.batch_report(agent, batch, cfg) plus "epochs" (epochs run) and "grad_norm" (the mean
    gradient norm before clipping over the steps taken).
    """
    batch = ppo.flatten_rollout(ro, adv, targets)
    norms, epochs = [], 0
    ### BEGIN SOLUTION
    for chunks in minibatch_indices(len(batch.obs), cfg.minibatches, cfg.epochs, generator):
        for mb in chunks:
            logits, values = agent(batch.obs[mb])
            logp = torch.log_softmax(logits, -1).gather(-1, batch.actions[mb, None])[:, 0]
            loss, _ = minibatch_loss(logp, batch.logp_old[mb], batch.adv[mb], values,
                                     batch.v_old[mb], batch.targets[mb],
                                     ppo.categorical_entropy(logits), cfg)
            opt.zero_grad()
            loss.backward()
            norms.append(float(nn.utils.clip_grad_norm_(agent.parameters(), cfg.max_grad_norm)))
            opt.step()
        epochs += 1
        if cfg.target_kl is not None and ppo.batch_kl(agent, batch) > cfg.target_kl:
            break
    ### END SOLUTION
    return {**ppo.batch_report(agent, batch, cfg), "epochs": float(epochs),
            "grad_norm": float(np.mean(norms))}


ppo_update = check("ppo.update", ppo_update)

# %% [markdown]
# The package's version does the same, and also covers PPO-penalty, the unclipped surrogate and
# a critic trained on its own schedule (Sections 6, 9 and 10):

# %%
print(show_source(ppo.update))

# %% [markdown]
# ### Probe environments before CartPole
# A wrong update on CartPole shows up as "learns slowly" or "plateaus", which says nothing
# about *where* the bug is. The five probe environments of `rlcourse.probes` (one-step or
# two-step tasks with exact answers) each test one thing; if probe $k$ fails and probes
# $1..k-1$ pass, the bug is in what probe $k$ adds:
#
# | # | probe | checks | a failure points at |
# |---|---|---|---|
# | 1 | constant reward +1 | $V = 1$ | the value loss, the optimiser |
# | 2 | reward = observation ±1 | $V(s) = s$ | the critic does not see its input |
# | 3 | two steps, reward at the end | $V(0)=\gamma$, $V(1)=1$ | discounting, bootstrapping, terminal mask |
# | 4 | action 0 earns +1, action 1 −1 | $\pi(0) \to 1$ | the policy gradient's sign or weighting |
# | 5 | the right action matches the observation | $\pi(a^*\mid s)\to1$, $V=1$ | policy and critic must both use the input |
#
# `ppo_probes.probe_run` trains PPO (with a small network and 512 env steps) on one probe with
# any update function and compares the critic with the exact values and the policy with the
# right action. Below: your update, then updates with one planted bug each
# (`ppo_probes.PLANTED_BUGS`).

# %%
t0 = time.process_time()
probe_updates = {"your update": ppo_update, **ppo_probes.PLANTED_BUGS}
probe_res = ppo_probes.probe_table(probe_updates, seed=0)
probe_cpu = time.process_time() - t0
names = list(ppo_probes.PROBE_IDS)
print(f"{'update':32s}" + "".join(f"{i + 1:>4d}" for i in range(len(names)))
      + "   (probe number; . passes, X fails)")
for label, row in probe_res.items():
    print(f"{label:32s}" + "".join(f"{'.' if row[p].passed else 'X':>4s}" for p in names))
caught = {label: [i + 1 for i, p in enumerate(names) if not row[p].passed]
          for label, row in probe_res.items()}
worst = max(abs(v - t) for r in probe_res["your update"].values()
            for v, t in zip(r.values, r.true_values))
print(f"\nyour update: largest |V - V*| over the probes {worst:.3f} (tolerance "
      f"{ppo_probes.VALUE_TOL}); {probe_cpu:.1f} s CPU for {len(probe_updates) * len(names)} "
      f"probe runs")
assert caught["your update"] == []
assert caught["value loss left out"][:3] == [1, 2, 3]
assert caught["termination bootstrapped"][0] == 1
assert caught["obs of the wrong step"] == [2, 5]
assert caught["advantage sign flipped"] == [4, 5]
assert caught["ratio from new log-probs only"] == [] and caught["entropy sign flipped"] == []

# %% [markdown]
# Read the table row by row. Leaving the value loss out fails probe 1 already (the critic never
# moves from its initial value). Treating termination as a time limit (bootstrapping from the
# value of the terminal observation) inflates every value and is caught at probe 1 too, where
# the target becomes $1+\gamma V$ instead of 1. Pairing each step with the wrong observation
# passes probes 1, 3 and 4 (their answers do not depend on the observation) and fails 2 and 5,
# exactly the two that need the input. Flipping the advantage's sign is invisible to the
# critic probes and fails both action probes: the policy learns to pick the *wrong* action.
#
# The last two rows pass **every** probe: the ratio taken from the new log-probabilities on
# both sides, and a flipped entropy sign. Probes are one-step problems that a plain policy
# gradient also solves, so a bug that removes the trust region or the exploration bonus only
# shows on a real task, in the training diagnostics. That is the next section.

# %% [markdown]
# Three seeds on CartPole-v1, trained with **your** update (`update_fn=ppo_update`; with the
# package's update the runs are the same, bit for bit). "Solved" is the running mean of the last 20 training episodes
# reaching 475; each run is then judged by a separate greedy evaluation (most probable action)
# over 100 fresh episodes.

# %%
SEEDS = (0, 1, 2)
cart_runs, cart_cpu, cart_eval = [], [], []
for seed in SEEDS:
    t0 = time.process_time()
    cart_runs.append(ppo.train("CartPole-v1", seed=seed, device=DEVICE, update_fn=ppo_update))
    cart_cpu.append(time.process_time() - t0)
    cart_eval.append(float(deeprl.evaluate("CartPole-v1", cart_runs[-1].act, episodes=100,
                                           seed=10_000 + seed, device=DEVICE).mean()))
fig, ax = plt.subplots()
for seed, run in zip(SEEDS, cart_runs):
    ax.plot(run.history["step"], run.history["running_mean"], label=f"seed {seed}")
ax.axhline(475, color="gray", ls=":", label="threshold 475")
ax.set_xlabel("env steps (all sub-envs)")
ax.set_ylabel("mean return of the last 20 episodes")
ax.set_title("PPO on CartPole-v1")
ax.legend()
plt.show()
for seed, run, c, e in zip(SEEDS, cart_runs, cart_cpu, cart_eval):
    print(f"seed {seed}: solved after {run.steps_to_solve:,} steps, {run.seconds_to_solve:.1f} s "
          f"wall ({c:.1f} s CPU); greedy eval over 100 episodes {e:.1f}")
cart_steps = float(np.median([r.steps_to_solve for r in cart_runs]))
cart_secs = float(np.median([r.seconds_to_solve for r in cart_runs]))
assert all(r.solved for r in cart_runs) and cart_steps <= 50_000
assert min(cart_eval) >= 475

# %% [markdown]
# ### Reading the training diagnostics
# A PPO run logs, once per update, five numbers that tell a healthy run from a sick one long
# before the return does (`run.history`):
#
# * **explained variance** of the critic, $1-\mathrm{Var}(\hat R-V)/\mathrm{Var}(\hat R)$ on the
#   rollout before the update (`ppo.explained_variance`): 1 is a perfect critic, 0 no better than
#   a constant, negative worse. It should climb in the first updates. It is relative to the
#   targets' spread, so on CartPole it falls back towards 0 once episodes last hundreds of
#   steps: almost every target in a 64-step rollout is then bootstrapped from $V$ of a similar
#   balanced state, the targets hardly vary, and what is left is noise. A critic that never
#   rises above 0 is the bug; one that rises and then falls as the task saturates is not.
# * **clip fraction**, the share of steps with $|r-1|>\epsilon$ after the update: a few percent
#   to a few tens of percent. Near 1 means each update moves the policy far past the trust
#   region. (In the statistics of your own loss, a clip fraction of exactly 0 on every
#   minibatch means its ratio is always 1, the slip shown after Exercise 7; the history here is
#   measured against the rollout's policy, so there it shows up as a large KL instead.)
# * **approximate KL** (k3) between the policy before and after the update: of order $10^{-2}$
#   nats per update here. Values of order 1 mean the policy jumps.
# * **entropy** of the policy: starts near $\ln 2\approx0.69$ (two actions) and falls as the
#   policy commits. A drop to 0 within a few updates is a collapse: no more exploration.
# * **gradient norm** before clipping: how hard the loss pulls; a norm far above
#   `max_grad_norm` means the clip sets the step size.

# %%
def plot_diagnostics(histories, labels, title):
    """Five panels, one line per run: the diagnostics of a run.history against env steps."""
    keys = [("explained_variance", "explained variance"), ("clip_fraction", "clip fraction"),
            ("approx_kl", "approx. KL (nats)"), ("entropy", "entropy (nats)"),
            ("grad_norm", "gradient norm")]
    fig, axes = plt.subplots(1, 5, figsize=(16, 3))
    for ax, (key, name) in zip(axes, keys):
        for h, label in zip(histories, labels):
            ax.plot(h["step"], h[key], label=label)
        ax.set_title(name)
        ax.set_xlabel("env steps")
    axes[2].set_yscale("log")
    axes[4].axhline(cfg.max_grad_norm, color="gray", ls=":", label="max_grad_norm")
    axes[0].legend(fontsize=8)
    axes[4].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


plot_diagnostics([r.history for r in cart_runs], [f"seed {s}" for s in SEEDS],
                 "PPO on CartPole-v1 (your update)")
diag = {k: np.concatenate([r.history[k] for r in cart_runs])
        for k in ("explained_variance", "clip_fraction", "approx_kl", "entropy", "grad_norm")}
for k, v in diag.items():
    print(f"{k:19s} median {np.median(v):7.3f}   10-90 %: {np.quantile(v, 0.1):7.3f} .. "
          f"{np.quantile(v, 0.9):7.3f}")
clipped_share = float(np.mean(diag["grad_norm"] > cfg.max_grad_norm))
print(f"share of updates whose mean gradient norm exceeds max_grad_norm = {cfg.max_grad_norm}: "
      f"{clipped_share:.0%}")
assert 0.01 < np.median(diag["clip_fraction"]) < 0.3 and np.max(diag["approx_kl"]) < 0.1
ev_peak = [max(r.history["explained_variance"]) for r in cart_runs]
ev_end = [float(np.mean(r.history["explained_variance"][-5:])) for r in cart_runs]
print(f"explained variance, best update of each run: {np.round(ev_peak, 2)}; mean of the last "
      f"5 updates: {np.round(ev_end, 2)}")
assert min(ev_peak) > 0.8 and min(ev_end) < 0.5
assert all(r.history["entropy"][0] > 0.6 > r.history["entropy"][-1] > 0.1 for r in cart_runs)

# %% [markdown]
# Now the bug that passed every probe: the ratio from the new log-probabilities on both sides,
# on CartPole for 10 240 steps (20 updates), against the first 20 updates of seed 0 above.

# %%
bug_run = ppo.train("CartPole-v1", seed=0, device=DEVICE, progress=False,
                    update_fn=ppo_probes.PLANTED_BUGS["ratio from new log-probs only"],
                    stop_when_solved=False, total_steps=10_240)
n_bug = len(bug_run.history["step"])
healthy = {k: v[:n_bug] for k, v in cart_runs[0].history.items()}
plot_diagnostics([healthy, bug_run.history],
                 ["your update (seed 0)", "ratio from new log-probs only"],
                 "a bug the probes miss, seen in the diagnostics")
bug_kl, ok_kl = max(bug_run.history["approx_kl"]), max(healthy["approx_kl"])
bug_ent = min(bug_run.history["entropy"])
print(f"largest KL per update: {bug_kl:.2f} nats with the bug, {ok_kl:.3f} without; the bug's "
      f"entropy falls to {bug_ent:.3f}, and its return after {bug_run.total_steps:,} steps is "
      f"{bug_run.history['running_mean'][-1]:.1f} (healthy: "
      f"{healthy['running_mean'][-1]:.1f})")
assert bug_kl > 10 * ok_kl and bug_ent < 0.05
assert bug_run.history["running_mean"][-1] < 0.5 * healthy["running_mean"][-1]

# %% [markdown]
# Without the ratio, eight epochs of plain policy-gradient steps on one batch push the policy
# as far as they like: the KL of the first updates is orders of magnitude above the healthy
# run's, the entropy collapses to 0 within a few updates, and the agent ends up always pushing
# the same way. Note the explained variance of the buggy run: it climbs towards 1, because a
# deterministic policy is easy to evaluate. A good-looking critic does not mean a good agent;
# read the five panels together.

# %% [markdown]
# ## 9. The step-size problem, measured: vanilla PG vs PPO across learning rates
#
# Vanilla PG is the same code with **one epoch and one minibatch**: one gradient step on the
# policy per batch, which by Section 3 is exactly a policy-gradient step (with the same GAE and
# advantage normalisation). PPO takes 8 epochs × 4 minibatches = 32 Adam steps on each batch.
#
# A comparison is only fair if everything except the policy update is the same, and the
# **critic** is the trap. If `epochs=1, minibatches=1` also applied to the value network, vanilla
# PG's critic would get 1 Adam step per batch against PPO's 32, its advantages would come from a
# worse $V$, and we would be measuring the critic, not the trust region. `ppo.Config` therefore
# gives the critic its own schedule (`critic_epochs`, `critic_minibatches`). We compare three
# variants:
#
# * **vanilla PG, one-step critic**: `epochs=1, minibatches=1` for both networks (confounded);
# * **vanilla PG**: one policy step per batch, the critic fitted with PPO's 8 × 4 schedule;
# * **PPO**: the defaults.
#
# Each run gets 10 240 env steps (20 batches); we record the return at the end (mean of the last
# 20 episodes) and the **largest KL of any single update**. A run with the default settings is
# not repeated: the code and seeds are the same and nothing before a given step depends on the
# budget (the learning rate anneals over the same 200k-step horizon everywhere), so a run
# stopped at 10 240 steps is identical to the first 10 240 steps of a Section 8 run. `at_budget`
# reads those off the training history.

# %%
BUDGET = ppo_sweep.BUDGET
VARIANTS = ppo_sweep.LR_VARIANTS


def at_budget(run):
    """The summary of ppo_sweep.short_run, read off a longer run's history at BUDGET steps."""
    h = run.history
    i = h["step"].index(BUDGET)
    return {"return": h["running_mean"][i], "avg_return": float(np.mean(h["running_mean"][: i + 1])),
            "max_kl": max(h["kl"][: i + 1]), "mean_kl": float(np.mean(h["kl"][: i + 1]))}


def short_run(seed, **overrides):
    return ppo_sweep.short_run(seed, BUDGET, device=DEVICE, **overrides)


for name, kw in VARIANTS.items():
    c = ppo.make_config(**kw)
    print(f"{name:28s}: policy {c.epochs} x {c.minibatches} steps per batch, critic "
          f"{c.critic_schedule[0]} x {c.critic_schedule[1]}")

# %% [markdown]
# A wide sweep (the three variants over learning rates from 3e-4 to 0.1, 10 seeds each) takes a
# few CPU minutes, so it is stored in `results/ppo/lr_sweep.json`, and this notebook reads it.
# Regenerate it with `python -m rlcourse.ppo_sweep lr --seeds 10 > results/ppo/lr_sweep.json`;
# the live experiment further down re-runs part of it with 5 seeds.

# %%
stored = ppo_sweep.load("lr_sweep")
LRS = stored["lrs"]
assert stored["budget"] == BUDGET and len(stored["seeds"]) >= 5
ret = {n: np.array([[r["return"] for r in by_lr] for by_lr in runs])
       for n, runs in stored["runs"].items()}  # [lr, seed]
max_kl = {n: np.array([[r["max_kl"] for r in by_lr] for by_lr in runs])
          for n, runs in stored["runs"].items()}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for name, style in zip(ret, [":", "--", "-"]):
    mean, se = ret[name].mean(1), ret[name].std(1, ddof=1) / math.sqrt(ret[name].shape[1])
    axes[0].errorbar(LRS, mean, yerr=se, fmt="o" + style, capsize=3, label=name)
    axes[1].plot(LRS, np.median(max_kl[name], 1), "o" + style, label=name)
for ax in axes:
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (Adam)")
axes[0].set_ylabel(f"return after {BUDGET:,} steps (mean ± SE)")
axes[1].set_yscale("log")
axes[1].set_ylabel("largest KL of one update, median over seeds")
axes[0].legend(fontsize=8)
plt.show()
print(f"{len(stored['seeds'])} seeds per point; mean return at {BUDGET:,} steps "
      f"[median of the largest KL per update]")
print(f"{'lr':>7} " + " ".join(f"{n:>30s}" for n in ret))
for i, lr in enumerate(LRS):
    print(f"{lr:7.1e} " + " ".join(f"{ret[n][i].mean():21.0f} [{np.median(max_kl[n][i]):6.3f}]"
                                   for n in ret))

# %%
one_step, pg_fair, ppo_ret = (ret[n].mean(1) for n in VARIANTS)
best = {n: (LRS[int(np.argmax(ret[n].mean(1)))], float(ret[n].mean(1).max())) for n in ret}
good_level = 0.5 * max(v for _, v in best.values())
good = {n: [lr for lr, m in zip(LRS, ret[n].mean(1)) if m >= good_level] for n in ret}
for n in ret:
    span = f"{min(good[n]):.0e}..{max(good[n]):.0e}" if good[n] else "none"
    print(f"{n:28s}: best lr {best[n][0]:.0e} -> {best[n][1]:.0f}; mean >= {good_level:.0f} at "
          f"{len(good[n])} of {len(LRS)} rates ({span})")
small = [i for i, lr in enumerate(LRS) if lr <= 1e-2]
print(f"largest KL of any update at lr <= 1e-2: PPO {max_kl['PPO'][small].max():.3f}, vanilla "
      f"PG {max_kl['vanilla PG'][small].max():.3f}; at lr 3e-2 the median is "
      f"{np.median(max_kl['vanilla PG'][-2]):.2f} (PG) and {np.median(max_kl['PPO'][-2]):.2f} (PPO)")
collapsed = {n: int((ret[n][-1] < 50).sum()) for n in ret}  # return < 50 after 20 batches
print(f"at lr {LRS[-1]:.0e}: mean vanilla PG {pg_fair[-1]:.0f}, PPO {ppo_ret[-1]:.0f}; seeds "
      f"below 50: vanilla PG {collapsed['vanilla PG']}, PPO {collapsed['PPO']} of "
      f"{ret['PPO'].shape[1]}; PPO's largest update KL {max_kl['PPO'][-1].max():.0f} nats")
assert best["vanilla PG"][1] > 1.2 * best["vanilla PG, one-step critic"][1]  # the confound
assert len(good["PPO"]) >= len(good["vanilla PG"]) + 2  # PPO: good over a wider range of rates
assert best["PPO"][1] < 1.5 * best["vanilla PG"][1]  # no 1.5x gap between the best rates
assert max_kl["PPO"][small].max() < 0.5 and np.median(max_kl["vanilla PG"][-2]) > 1.0
print(f"best rates: PPO / vanilla PG = {best['PPO'][1] / best['vanilla PG'][1]:.2f}; PPO at its "
      f"default lr {ppo_ret[LRS.index(cfg.lr)]:.0f} vs vanilla PG at its best "
      f"{best['vanilla PG'][1]:.0f}")
assert ppo_ret[LRS.index(cfg.lr)] < best["vanilla PG"][1]
assert ppo_ret[-1] < good_level and min(collapsed.values()) >= 2  # the largest rate breaks both
assert ppo_ret[-1] < pg_fair[-1] and collapsed["PPO"] > collapsed["vanilla PG"]

# %% [markdown]
# What the stored sweep shows (the numbers are printed above, the assertions check them):
#
# * **The critic was a large part of the old story.** With a one-step critic, vanilla PG's best
#   rate reaches far less than with the critic fitted like PPO's. An unfair baseline makes any
#   method look good.
# * **At its best rate, a fairly-trained vanilla PG is in PPO's league.** PPO's best rate still
#   ends higher at this budget, but by less than a factor 1.5 (the ratio is printed above), and
#   PPO at its *default* rate ends lower than vanilla PG at *its* best rate.
# * **What PPO buys is robustness to the learning rate.** PPO learns well over a much wider
#   range of rates: several clipped steps per batch make a small rate effective, so the rate
#   needs little tuning. One step per batch makes vanilla PG slow at small rates and unstable at
#   large ones; it works well only in a narrow window that must be found by tuning.
# * **The KL per update stays bounded** for PPO across that range (right panel), although each
#   PPO update takes 32 steps. Vanilla PG's single step moves the policy by more than a nat in
#   most seeds already at 3e-2.
# * **PPO is not immune.** At the largest rate neither is reliable: vanilla PG's seeds scatter
#   from collapse to good runs, and PPO collapses in most seeds, *worse* than vanilla PG. The
#   clip acts only *after* a ratio has left the range, and a single Adam step at that rate
#   jumps far beyond it, 32 times per batch. PPO is a soft, first-order trust
#   region, not TRPO's enforced one. That is why PPO implementations keep the rate modest,
#   anneal it, and sometimes stop the epochs early once the KL passes a target (`target_kl`).
#
# The live experiment: five seeds at PPO's default rate and at 1e-2, vanilla PG's best rate
# in the sweep, with the confounded variant at 1e-2 for contrast.

# %%
LIVE_SEEDS = range(5)
LIVE = [("vanilla PG, one-step critic", 1e-2), ("vanilla PG", cfg.lr), ("vanilla PG", 1e-2),
        ("PPO", cfg.lr)]
live = {}
with tqdm(total=len(LIVE) * len(LIVE_SEEDS), desc="live LR comparison") as bar:
    for name, lr in LIVE:
        rows = []
        for seed in LIVE_SEEDS:
            if name == "PPO" and lr == cfg.lr and seed < len(cart_runs):  # Section 8's runs
                rows.append(at_budget(cart_runs[seed]))
            else:
                rows.append(short_run(seed, lr=lr, **VARIANTS[name]))
            bar.update()
        live[name, lr] = np.array([[r["return"], r["max_kl"]] for r in rows])  # [seed, 2]
for (name, lr), a in live.items():
    print(f"{name:28s} lr {lr:.1e}: returns {' '.join(f'{x:4.0f}' for x in a[:, 0])} -> mean "
          f"{a[:, 0].mean():4.0f}; largest update KL {a[:, 1].max():.3f}")
pg_best_live = live["vanilla PG", 1e-2][:, 0].mean()
ppo_default_live = live["PPO", cfg.lr][:, 0].mean()
assert pg_best_live > 1.25 * live["vanilla PG, one-step critic", 1e-2][:, 0].mean()
assert ppo_default_live > 1.5 * live["vanilla PG", cfg.lr][:, 0].mean()
assert pg_best_live >= ppo_default_live
assert live["PPO", cfg.lr][:, 1].max() < 0.1

# %% [markdown]
# Five seeds tell the same story: the critic schedule alone changes vanilla PG's result a lot; at
# PPO's default rate vanilla PG barely learns while PPO does, but vanilla PG at its own tuned
# rate does at least as well as PPO's default. PPO's value is that you did not have to find
# that rate, and that its update never moved the policy by more than a small KL.

# %% [markdown]
# ## 10. Which implementation tricks matter?
#
# The PPO paper's algorithm is short; practical implementations add tricks. We switch each one
# off in turn (or on, for value clipping, which the defaults leave off) and train 3 seeds with
# the same 10 240-step budget (the default row is Section 8's runs at that step). Columns: the
# return at the end, the return averaged over training (a less noisy measure of learning
# speed), and the mean KL per update. The "1 epoch" arm changes only the *policy's* epochs; its
# critic keeps the default 8 × 4 schedule, for the reason Section 9 gave. LR annealing is left
# out: after 10k of its 200k-step horizon the rate has fallen by only 5 %, so it cannot show
# here by construction (its job is to let the policy settle late in training).

# %%
ABLATIONS = {
    "no advantage normalisation": dict(norm_adv=False),
    "+ value clipping (0.2)": dict(vf_clip=0.2),
    "no gradient-norm clipping": dict(max_grad_norm=None),
    "1 minibatch (full batch)": dict(minibatches=1),
    "1 epoch (critic 8 x 4)": dict(epochs=1, critic_epochs=cfg.epochs),
    "4 epochs": dict(epochs=4),
    "no ratio clipping": dict(clip_eps=None),
}
ablation = {"default (all tricks)": [at_budget(r) for r in cart_runs]}  # dicts, see at_budget
with tqdm(total=len(ABLATIONS) * len(SEEDS), desc="ablation") as bar:
    for name, kw in ABLATIONS.items():
        ablation[name] = []
        for seed in SEEDS:
            ablation[name].append(short_run(seed, **kw))
            bar.update()
COLUMNS = ("return", "max_kl", "mean_kl", "avg_return")
summary = {name: np.array([[r[c] for c in COLUMNS] for r in rows])
           for name, rows in ablation.items()}  # [seed, 4] in the order of COLUMNS
print(f"{'variant':28s} {'return at 10k, 3 seeds':>24s} {'mean':>5s} {'avg over run':>12s} "
      f"{'mean KL':>8s}")
for name, a in summary.items():
    print(f"{name:28s} {'  '.join(f'{r:6.0f}' for r in a[:, 0]):>24s} {a[:, 0].mean():5.0f} "
          f"{a[:, 3].mean():12.0f} {a[:, 2].mean():8.4f}")
fig, ax = plt.subplots(figsize=(8, 4))
for i, a in enumerate(summary.values()):
    ax.barh(i, a[:, 3].mean(), color="tab:blue" if i == 0 else "tab:gray", alpha=0.6)
    ax.plot(a[:, 3], [i] * len(a), "k.")
ax.set_yticks(range(len(summary)), list(summary))
ax.invert_yaxis()
ax.set_xlabel(f"return averaged over the first {BUDGET:,} steps (bars: mean, dots: seeds)")
plt.show()

# %% [markdown]
# Early return over 10k steps is one metric; the number of env steps until CartPole is solved
# is another, and it needs full runs. Those are stored in `results/ppo/ablation_solve.json`
# (10 seeds per variant, each run capped at 100k steps, with the defaults' learning-rate
# schedule, so the default row is the same runs as the stored `python -m rlcourse.bench ppo`).
# Regenerate it with `python -m rlcourse.ppo_sweep solve --seeds 10 >
# results/ppo/ablation_solve.json` (a few CPU minutes). It adds vanilla PG at lr 1e-2, its best
# rate in Section 9, with PPO's critic schedule.

# %%
solve = ppo_sweep.load("ablation_solve")
med = solve["median_steps_to_solve"]
n_seeds = len(solve["seeds"])
print(f"env steps to solve CartPole-v1, {n_seeds} seeds (cap {solve['max_steps']:,}):")
for name, steps in solve["steps_to_solve"].items():
    done = [v for v in steps if v is not None]
    print(f"  {name:28s} median {'-' if med[name] is None else f'{med[name]:,.0f}':>7s}, "
          f"range {min(done):,}..{max(done):,}, solved {len(done)}/{n_seeds}")
print(f"default (the benchmark's runs): stored benchmark median "
      f"{rlcourse.results.load_bench('ppo', 'CartPole-v1')['median_steps_to_solve']:,.0f}")
critic_cost = med["1 epoch, one-epoch critic"] / med["1 epoch"]
print(f"1 policy epoch: {med['1 epoch'] / med['default']:.2f}x the default's steps with the "
      f"default critic, {critic_cost:.2f}x more again with a one-epoch critic")
v_scale = (1 - cfg.gamma ** 500) / (1 - cfg.gamma)
print(f"a CartPole value 500 steps before the end, gamma {cfg.gamma}: {v_scale:.0f} "
      f"(value clipping's epsilon 0.2 is in these units)")
assert critic_cost > 1.5 and med["default"] < med["1 epoch"]
assert med["4 epochs"] > med["default"]
assert med["vanilla PG, lr 1e-2"] is not None and med["vanilla PG, lr 1e-2"] > med["default"]

# %% [markdown]
# Reading both tables (the assertions check each point):
#
# * **Ratio clipping** is what makes reusing a batch safe. Without it the 32 gradient steps per
#   batch chase the unclipped surrogate far from $\pi_\text{old}$: the mean KL per update grows
#   by more than an order of magnitude and the return suffers.
# * **Epochs and the critic.** With the critic trained as usual, one policy epoch per batch is
#   only somewhat slower to solve than eight. Cut the critic to one epoch as well and it is much
#   slower again: most of what an unfair "1 epoch" arm shows is a worse critic, not less reuse of
#   the batch. Vanilla PG with a tuned rate and PPO's critic solves too, a little more slowly than
#   PPO and with a wider spread over seeds.
# * **The rest are close at 10k steps**, and some (no gradient-norm clipping, no advantage
#   normalisation) even look a little faster early on, yet both are slower to solve. Early speed
#   is not the same as time to solve. Ablations on small budgets and few seeds can rank tricks
#   wrongly; the conclusion depends on the metric.
# * **Value clipping** with the usual $\epsilon_v=0.2$ is measured in return units, while
#   CartPole's values are of the order printed above. Once a value has moved 0.2 from its old
#   estimate towards the target (a fraction of a percent of its scale), the clipped error is
#   the larger one and that sample's gradient is zero for the rest of the update, so the clip
#   mostly slows the critic down. Its row in the 10k-step table is within the seed-to-seed
#   noise of the default: no measurable benefit here. The large studies of PPO's details
#   (Engstrom et al. 2020; Andrychowicz et al. 2021) likewise found that value clipping does not
#   help and can hurt performance.
# * "More than 4 epochs over-fits the batch" does not hold in this setting: with the clip, a
#   modest learning rate and 4 minibatches, 8 epochs solve faster than 4, and their KL per
#   update is barely larger. Over-fitting a batch shows up as a rising KL and clip fraction;
#   watch those when you raise the epochs.

# %%
default = summary["default (all tricks)"]
assert summary["no ratio clipping"][:, 2].mean() > 10 * default[:, 2].mean()
assert summary["no ratio clipping"][:, 0].mean() < default[:, 0].mean()

# %% [markdown]
# ## 11. A second task: Acrobot-v1
#
# Acrobot is a two-link pendulum that must swing its tip above a line; every step costs −1 until
# it succeeds (at most 500 steps), and "solved" means a mean return of at least −100. Same code,
# same defaults:

# %%
t0 = time.process_time()
acro = ppo.train("Acrobot-v1", seed=0, device=DEVICE)
acro_cpu = time.process_time() - t0
acro_eval = float(deeprl.evaluate("Acrobot-v1", acro.act, episodes=100, seed=10_000,
                                  device=DEVICE).mean())
fig, ax = plt.subplots()
ax.plot(acro.history["step"], acro.history["running_mean"])
ax.axhline(-100, color="gray", ls=":", label="threshold -100")
ax.set_xlabel("env steps (all sub-envs)")
ax.set_ylabel("mean return of the last 20 episodes")
ax.set_title("PPO on Acrobot-v1")
ax.legend()
plt.show()
print(f"Acrobot: solved after {acro.steps_to_solve:,} steps ({acro_cpu:.1f} s CPU); greedy "
      f"eval over 100 episodes {acro_eval:.1f}")
assert acro.solved and acro_eval >= -100

# %% [markdown]
# ## 12. Summary: from vanilla PG to PPO
#
# | | REINFORCE | A2C / vanilla actor-critic | TRPO | PPO |
# |---|---|---|---|---|
# | update | 1 gradient step per batch of whole episodes | 1 step per short rollout | 1 constrained natural-gradient step | K epochs of minibatch SGD |
# | advantage | Monte-Carlo return − fitted baseline | critic / GAE | critic / GAE | critic / GAE |
# | data reuse | none | none | none (one step) | several epochs |
# | step control | learning rate only | learning rate only | hard KL constraint + line search | ratio clip (or adaptive KL penalty) |
# | learning-rate sensitivity | the rate sets the policy change directly (Section 9's vanilla PG) | same | low: the step is set in KL | low: good over a wide range of rates; collapses at very large rates (Section 9) |
# | complexity | lowest | low | high: Fisher-vector products, CG, line search | low: a few lines on top of A2C |
# | on CartPole, course defaults (Section 13, 5 seeds) | fewer env steps than A2C, least CPU time per solve, stays solved | most env steps, not every seed solves, does not stay solved | not run | fewest env steps, stays solved |
# | gradient estimate | unbiased for the undiscounted return only with γ = 1 and Monte-Carlo returns (a state baseline keeps it so); γ < 1 makes it biased | biased: bootstrapping on a learned critic, GAE with λ < 1, γ < 1 | as A2C, plus a monotonic-improvement bound for the KL-penalised version | as A2C; the clip is a heuristic with no guarantee |
#
# On the "gradient estimate" row: with γ < 1 the usual estimator $\sum_t \hat A_t\nabla\log\pi(a_t\mid s_t)$
# drops the $\gamma^t$ factor of the discounted policy gradient (Sutton & Barto §13.3), so it is
# not the exact gradient of the discounted objective either; on an episodic benchmark such as
# CartPole, whose score is the undiscounted return, γ and λ are bias–variance knobs
# (notebooks 05 and 06).
#
# How well each one does is a question for data, not for a table. The course's stored
# benchmark (`python -m rlcourse.bench ALGO --seeds 10`, read here from `results/bench/`):

# %%
print(f"{'algorithm':10s} {'solved':>7s} {'median steps':>13s} {'median s':>9s} "
      f"{'greedy eval min / median':>25s}")
bench = {}
for algo in ("reinforce", "a2c", "ppo"):
    b = bench[algo] = rlcourse.results.load_bench(algo, "CartPole-v1")
    evals = [r["eval_mean_return"] for r in b["seeds"]]
    med = b["median_steps_to_solve"]
    print(f"{algo:10s} {sum(r['solved'] for r in b['seeds']):>3d}/{len(b['seeds']):<3d} "
          f"{'-' if med is None else f'{med:,.0f}':>13s} "
          f"{b['median_seconds_to_solve'] or float('nan'):9.1f} "
          f"{min(evals):12.1f} / {float(np.median(evals)):.1f}")
a2c_cfg, pg_cfg = actor_critic.Config(), pg.Config()
print(f"\nper update: A2C {a2c_cfg.num_envs * a2c_cfg.n_steps} env steps, 1 gradient step; "
      f"REINFORCE whole episodes from {pg_cfg.num_envs} envs, 1 policy step + "
      f"{pg_cfg.value_steps} baseline steps (gamma {pg_cfg.gamma}); PPO "
      f"{cfg.num_envs * cfg.rollout_steps} env steps, {cfg.epochs * cfg.minibatches} steps")
assert all(bench[a]["solved_fraction"] > 0 for a in bench)

# %% [markdown]
# Read the rows before ranking the algorithms. In this benchmark each of them solves CartPole
# with the course's tuned defaults on most or all seeds (the solved column; Section 13 asks a
# harder question: does it stay solved?), and plain REINFORCE is not the unstable baseline that
# textbooks often make it. There are three reasons. CartPole is a **short-horizon task with a
# dense reward** (+1 per step, at most 500 steps), so a Monte-Carlo return is not very noisy and
# a fitted value baseline removes much of what noise there is. REINFORCE's batch is **whole
# episodes**, so each of its updates averages over many complete trajectories, and the
# advantages need no critic to be right. A2C, in contrast, makes one small gradient step per
# short rollout (the count printed above), so it needs many updates, and its advantages are only
# as good as its critic. PPO's edge over both comes from taking several safe steps on each
# batch (Sections 9 and 10 measure how much, against a fairly trained baseline).
# On long-horizon, sparse-reward or high-dimensional tasks the picture changes, and the
# published comparisons (Schulman et al. 2017; Andrychowicz et al. 2021) are the place to look.
#
# **Clip vs KL penalty, and π_old vs π_ref.** PPO's clip (and PPO-penalty's KL) anchor each
# update at $\pi_{\theta_\text{old}}$, the policy that collected *this batch*: a trust region per
# update, renewed every rollout. The KL penalty of RLHF anchors at a frozen $\pi_\text{ref}$
# (the SFT model) for the whole run: it keeps the tuned model from drifting away from fluent
# language while it chases the reward model. RLHF's PPO uses **both** (clip towards
# $\pi_{\theta_\text{old}}$ inside the loss, KL towards $\pi_\text{ref}$ in the reward); they solve
# different problems.

# %% [markdown]
# ## 13. One comparison: DQN, REINFORCE, A2C and PPO on CartPole
#
# The course's four deep-RL algorithms, each with its own course defaults, 5 seeds each, run by
# `python -m rlcourse.compare --env CartPole-v1 --seeds 5 --out results/compare/CartPole-v1.json`
# (several CPU minutes, so the notebook reads the stored file). Each run keeps training after it
# first solves, up to its own default budget, so the curves also show whether it *stays*
# solved. For every finished episode the file holds the env steps so far (vector steps × number
# of sub-envs, counted the same way for all four), the return, and the time since the start, as
# wall-clock and as the process's CPU seconds. Torch runs on one thread, so CPU seconds are
# the seconds of one busy core: on an idle machine they equal wall-clock time, and unlike
# wall-clock they are not inflated when other jobs share the machine. We plot CPU seconds.
# Each curve is the mean return of the last 20 episodes; the line is the median over the 5 seeds,
# the band spans the lowest to the highest seed.

# %%
comp = compare.load("CartPole-v1")
threshold = comp["threshold"]
COLORS = {"dqn": "C0", "reinforce": "C1", "a2c": "C2", "ppo": "C3"}
grids = {"steps": np.linspace(0, 200_000, 401), "cpu_seconds": np.geomspace(0.2, 80, 300)}
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, (xkey, grid) in zip(axes, grids.items()):
    for algo in comp["algos"]:
        curves = np.array([compare.curve_on_grid(r[xkey], r["returns"], grid)
                           for r in comp["runs"] if r["algo"] == algo])
        ok = ~np.isnan(curves).any(0)  # where every seed has a value
        ax.plot(grid[ok], np.median(curves[:, ok], 0), color=COLORS[algo], label=algo)
        ax.fill_between(grid[ok], curves[:, ok].min(0), curves[:, ok].max(0),
                        color=COLORS[algo], alpha=0.15)
    ax.axhline(threshold, color="gray", ls=":")
    ax.set_ylabel("mean return of the last 20 episodes")
axes[0].set_xlabel("env steps (all sub-envs)")
axes[1].set_xlabel("CPU seconds (one core), log scale")
axes[1].set_xscale("log")
axes[0].legend()
fig.suptitle(f"CartPole-v1, course defaults, {comp['seeds']} seeds: median and min-max")
fig.tight_layout()
plt.show()

solve_cmp = compare.solve_table(comp)
median_inf = lambda xs: float(np.median([np.inf if x is None else x for x in xs]))
print(f"{'algorithm':10s} {'solved':>7s} {'median steps':>13s} {'median CPU s':>13s} "
      f"{'final return, min / median':>28s}")
for algo, row in solve_cmp.items():
    n_ok = sum(x is not None for x in row["steps"])
    print(f"{algo:10s} {n_ok:>3d}/{len(row['steps']):<3d} {median_inf(row['steps']):>13,.0f} "
          f"{median_inf(row['cpu_seconds']):>13.1f} {min(row['final']):>14.1f} / "
          f"{np.median(row['final']):.1f}")
by_steps = sorted(solve_cmp, key=lambda a: median_inf(solve_cmp[a]["steps"]))
by_cpu = sorted(solve_cmp, key=lambda a: median_inf(solve_cmp[a]["cpu_seconds"]))
print(f"\nfewest env steps to solve: {' < '.join(by_steps)}")
print(f"least CPU time to solve:   {' < '.join(by_cpu)}")
wall_ratio = np.median([r["wall_seconds"][-1] / r["cpu_seconds"][-1] for r in comp["runs"]])
print(f"wall-clock / CPU seconds when the file was made (a shared machine): {wall_ratio:.1f}x")
steps_med = {a: median_inf(solve_cmp[a]["steps"]) for a in solve_cmp}
cpu_med = {a: median_inf(solve_cmp[a]["cpu_seconds"]) for a in solve_cmp}
n_solved = {a: sum(x is not None for x in solve_cmp[a]["steps"]) for a in solve_cmp}
final_med = {a: float(np.median(solve_cmp[a]["final"])) for a in solve_cmp}
assert by_steps[0] == "ppo" and steps_med["reinforce"] < steps_med["a2c"]
assert n_solved["reinforce"] == n_solved["ppo"] == comp["seeds"] > n_solved["a2c"]
assert by_cpu[-1] == "dqn" and cpu_med["dqn"] > 5 * cpu_med["ppo"]
assert cpu_med["reinforce"] < cpu_med["ppo"] and steps_med["dqn"] < steps_med["reinforce"]
assert min(solve_cmp["reinforce"]["final"]) >= threshold <= min(solve_cmp["ppo"]["final"])
assert final_med["a2c"] < threshold and min(solve_cmp["dqn"]["final"]) < threshold
assert by_cpu[0] == "reinforce" and by_steps[-1] == "a2c"  # the Section 12 table's last row

# %% [markdown]
# What the data says, and where it disagrees with the usual story:
#
# * **Env steps.** PPO needs the fewest: several clipped epochs per batch get more out of each
#   sample. DQN comes next, as its replay buffer reuses every transition many times. But the
#   folklore ranking "off-policy beats on-policy in samples" does not hold across the board
#   here: PPO, on-policy, is ahead of DQN.
# * **REINFORCE vs A2C.** The textbook order is "A2C improves on REINFORCE". On CartPole with
#   the course's defaults it is the other way round: REINFORCE with a fitted baseline solves
#   every seed and needs fewer env steps than A2C, which solves only some seeds within its
#   budget. Section 12 gave the reasons: short episodes with a dense reward make Monte-Carlo
#   returns cheap and not very noisy, REINFORCE's batches of whole episodes average over many
#   trajectories, while A2C takes one small step per short rollout and depends on its critic.
# * **CPU time** reverses the step ranking. REINFORCE is the cheapest per solve (one gradient
#   step per batch), PPO pays for its 32 steps per batch, and DQN, with a gradient step every few
#   env steps on replayed minibatches, costs several times PPO's CPU time although it needs
#   fewer env steps than REINFORCE. Which one is "efficient" depends on what is expensive: the
#   simulator (count env steps) or the learner's compute (count seconds).
# * **Staying solved.** After reaching the threshold, REINFORCE and PPO stay at the maximum
#   return on every seed; DQN stays close on most seeds but dips on some; A2C's median run ends
#   well below the threshold: it learns the task and then loses it. The first time a curve
#   crosses the threshold is not the whole story.
#
# These are five seeds of one small task with each method's own tuned defaults, so they rank
# the course's implementations on CartPole, not the algorithms in general. Two more caveats:
# runs depend on the machine's floating-point details, so the same seed can take a different
# path on another computer (the stored `results/bench` files, made elsewhere, do not all match
# these curves seed for seed, which is why every claim uses several seeds); and the seconds are
# CPU seconds of one core, the honest measure on a shared machine.
# %% [markdown]
# ## Common misconceptions
#
# * "The ratio is $P_\theta(s_t\mid a_t)/P_{\theta'}(s_t\mid a_t)$." The pair factors as
#   $d(s_t)\,\pi(a_t\mid s_t)$, so the ratio is $\pi_\theta(a_t\mid s_t)/\pi_{\theta_\text{old}}(a_t\mid s_t)$,
#   the advantage is $A^{\pi_{\theta_\text{old}}}$, and dropping the state-distribution ratio is an
#   approximation that holds only near $\pi_{\theta_\text{old}}$ (Section 3). <!-- E-50 -->
# * "The denominator is the reference model, and it computes the advantages." It is the old
#   (behaviour) policy that collected the batch; the critic computes the values behind the
#   advantages; $\pi_\text{ref}$ is RLHF's frozen anchor, a different role (Sections 3 and 12). <!-- E-38 -->
# * "The clip caps the ratio at 1+ε for good actions and at 1−ε for bad ones", two cases.
#   There are six: when the ratio moved the wrong way (A > 0, r < 1−ε; A < 0, r > 1+ε) the
#   unclipped term stays active and pulls it back (Section 5). <!-- E-35 -->
# * "PPO's clip is gradient clipping." It clips the probability ratio inside the objective and
#   zeroes the gradient of samples past the bound; gradient-norm clipping rescales the whole
#   gradient and is a separate trick (Sections 5 and 10). <!-- E-56 -->
# * "PPO-clip is used because the KL is too hard to compute." The categorical KL is a cheap
#   sum; clip won because it is simpler and needs no β controller (Section 6). <!-- E-52 -->
# * "PPO beats vanilla PG by a wide margin because it reuses each batch." Much of that margin
#   came from giving vanilla PG a one-step critic. With the same critic, vanilla PG at its best
#   rate comes close; PPO's clearer gains are robustness across learning rates and a bounded KL
#   per update (Sections 9 and 10).
#
# ## What to remember
#
# * A learning rate bounds the step in parameters, not in behaviour; measure policy change with
#   $D_\mathrm{KL}(\pi_{\theta_\text{old}}\|\pi_\theta)$ (90/10 → 10/90 is $0.8\ln 9\approx1.76$ nats).
# * Forward KL (SFT) covers modes, reverse KL (RLHF penalty) seeks one; k3 $=(r-1)-\log r$ is
#   an unbiased, non-negative sample estimate.
# * Surrogate: $L(\theta)=\mathbb E_{\pi_\text{old}}[r_t(\theta)\hat A_t]$ with
#   $r_t=\pi_\theta(a_t\mid s_t)/\pi_{\theta_\text{old}}(a_t\mid s_t)$; exact to first order at
#   $\theta_\text{old}$ (its gradient is the policy gradient), error grows with the KL.
# * TRPO: maximise the surrogate s.t. mean KL ≤ δ; natural gradient $F^{-1}g$ by conjugate
#   gradient, then a line search.
# * PPO-clip: $\min(r\hat A,\operatorname{clip}(r,1\pm\epsilon)\hat A)$, a pessimistic bound; zero
#   gradient exactly for A > 0, r > 1+ε and A < 0, r < 1−ε.
# * PPO-penalty: $r\hat A-\beta\,\mathrm{KL}$ with β doubled/halved around a target KL.
# * Full loss to minimise: $-L^\text{CLIP}+c_1L^\text{VF}-c_2S$; value clipping's ε is in return units.
# * A fair PG-vs-PPO comparison gives both the same critic. Then PPO buys robustness to the
#   learning rate and a bounded KL per update, and only a modest gain at each one's best rate;
#   at very large rates it collapses too.
# * Ratio clipping is what makes several epochs on one batch safe; without it the KL per update
#   explodes.
# * π_old (clip anchor, renewed every batch) ≠ π_ref (RLHF's frozen KL anchor).
# * Debug an update on probes first (the first failing probe points at the part), then read
#   the five diagnostics while training: some bugs pass every probe and show only there.
# * Compare algorithms on several seeds, in env steps *and* in compute, and check that a run
#   stays solved: on CartPole the ranking by env steps is not the ranking by CPU time.
#
# ## Further reading
#
# * Sutton & Barto (2018), *Reinforcement Learning: An Introduction*, 2nd ed., Chapter 13: the
#   policy gradient theorem and actor-critic methods that PPO builds on (§13.3 for the γ^t
#   factor).
# * Kakade & Langford (2002), "Approximately optimal approximate reinforcement learning": the
#   performance difference lemma and conservative policy updates, the root of trust regions.
# * Schulman et al. (2015), "Trust region policy optimization": the KL-constrained surrogate,
#   the improvement bound and the conjugate-gradient/line-search implementation.
# * Schulman et al. (2016), "High-dimensional continuous control using generalized advantage
#   estimation": the GAE advantages every PPO implementation uses.
# * Schulman et al. (2017), "Proximal policy optimization algorithms": the clipped and
#   adaptive-KL objectives and the original benchmarks.
# * Engstrom et al. (2020), "Implementation matters in deep policy gradients: a case study on
#   PPO and TRPO": how much of PPO's edge comes from code-level tricks; value clipping included.
# * Andrychowicz et al. (2021), "What matters in on-policy reinforcement learning? A large-scale
#   empirical study": which choices matter across many tasks (value clipping does not help).
# * Huang et al. (2022), "The 37 implementation details of proximal policy optimization" (ICLR
#   blog track): a checklist for reproducing PPO's reference implementation.

# %% [markdown]
# ## Interview questions
#
# 1. Why does a fixed learning rate not give a fixed change of the policy? What is the KL
#    between a 90/10 and a 10/90 policy?
#
# <details><summary>Answer</summary>
#
# The learning rate bounds the step in parameter space, but the map from parameters to
# action distributions is uneven (saturated softmaxes barely move, others flip) and shared
# parameters move every state at once. $D_\mathrm{KL}([0.9,0.1]\|[0.1,0.9])=0.9\ln9+0.1\ln\tfrac19=0.8\ln9\approx1.758$
# nats, reached by changing one logit by $\ln 81\approx4.39$.
# </details>
#
# 2. Which KL does SFT minimise, and which does the RLHF penalty use? Which one is
#    mode-seeking?
#
# <details><summary>Answer</summary>
#
# SFT/maximum likelihood minimises the forward $D_\mathrm{KL}(p_\text{data}\|\pi_\theta)$ (mass-covering:
# the model must put probability wherever the data has some). The RLHF penalty is
# $D_\mathrm{KL}(\pi_\theta\|\pi_\text{ref})$, estimated on samples of $\pi_\theta$; it is reverse KL in
# $\pi_\theta$ and mode-seeking (dropping modes of $\pi_\text{ref}$ costs little). TRPO's
# constraint is $D_\mathrm{KL}(\pi_\text{old}\|\pi_\theta)$.
# </details>
#
# 3. Derive the importance-sampled surrogate. What is approximated?
#
# <details><summary>Answer</summary>
#
# By the performance difference lemma $J(\pi)-J(\pi_\text{old})=\frac1{1-\gamma}\mathbb E_{s\sim d^\pi,a\sim\pi}[A^{\pi_\text{old}}]$.
# Importance-weight the action: $\mathbb E_{a\sim\pi}[A]=\mathbb E_{a\sim\pi_\text{old}}[\frac{\pi(a|s)}{\pi_\text{old}(a|s)}A]$ (exact).
# Then replace $d^\pi$ by $d^{\pi_\text{old}}$ (approximate). The result matches $J$ to first order at
# $\pi_\text{old}$: same value, same gradient, which is the policy gradient. The error grows with
# the distance between the policies, hence a trust region.
# </details>
#
# 4. Is PPO on-policy or off-policy?
#
# <details><summary>Answer</summary>
#
# On-policy: every batch comes from the current policy $\pi_{\theta_\text{old}}$ and is thrown away
# after the update. Within an update it reuses the batch for several epochs, and the ratio
# corrects for the small mismatch this creates; that is a limited, near-policy reuse, not
# learning from arbitrary old data like DQN's replay buffer.
# </details>
#
# 5. Explain PPO's clip. When exactly is a sample's gradient zero?
#
# <details><summary>Answer</summary>
#
# $L^\text{CLIP}=\mathbb E[\min(rA,\operatorname{clip}(r,1\pm\epsilon)A)]$. The gradient is zero when the
# clipped term is the active minimum: A > 0 with r > 1+ε, or A < 0 with r < 1−ε (and when
# A = 0). If the ratio moved the wrong way (A > 0, r < 1−ε or A < 0, r > 1+ε), the unclipped
# term is smaller and keeps its gradient: the min makes the objective a pessimistic bound.
# Inside the range it is the plain surrogate.
# </details>
#
# 6. Is PPO's clip a form of gradient clipping?
#
# <details><summary>Answer</summary>
#
# No. It clips the probability ratio inside the objective, which removes the gradient of
# individual samples whose policy change is already large enough. Gradient-norm clipping
# rescales the whole gradient vector when its norm exceeds a bound; it never zeroes it, and PPO
# uses it as a separate trick.
# </details>
#
# 7. Why is TRPO hard to implement, and what does PPO do instead?
#
# <details><summary>Answer</summary>
#
# TRPO solves a constrained problem with second-order information: the natural gradient
# $F^{-1}g$ via conjugate gradient on Fisher-vector products, a step scaled to the KL budget,
# and a backtracking line search on the real KL and surrogate. That is complex, expensive per
# step, awkward with shared actor-critic networks, and gives one step per batch. PPO uses a
# first-order optimiser on a clipped (or KL-penalised) objective and takes many minibatch
# steps per batch.
# </details>
#
# 8. What does the adaptive β of PPO-penalty do, and why is clip usually preferred?
#
# <details><summary>Answer</summary>
#
# After each update it compares the measured $D_\mathrm{KL}(\pi_\text{old}\|\pi)$ with a target: above
# 1.5× the target it doubles β, below target/1.5 it halves β. It keeps the KL near the target
# on average but lets single updates overshoot, and it adds a hyperparameter and a controller.
# Clip is simpler and robust with one ε. It is not preferred because the KL is hard to
# compute: for categorical policies it is a cheap sum.
# </details>
#
# 9. Name PPO's implementation tricks. Which matter most on CartPole here?
#
# <details><summary>Answer</summary>
#
# Advantage normalisation, value clipping, gradient-norm clipping, learning-rate annealing,
# minibatches, several epochs, entropy bonus, orthogonal initialisation, KL early stopping,
# reward/observation normalisation. In our ablation the ratio clip matters most: without it
# the many steps per batch run away from $\pi_\text{old}$. The others change little over a short
# budget, and the time-to-solve ranking differs from the early-return ranking, so an ablation
# must name its metric. Compare fairly: a "1 epoch" arm must keep the critic's own schedule, or
# it measures a worse critic rather than less batch reuse. Value clipping with the usual
# $\epsilon_v=0.2$ is in return units and barely lets the critic move on CartPole; large studies
# found it does not help and can hurt.
# </details>
#
# 10. Clip towards π_old vs KL towards π_ref: what is the difference?
#
# <details><summary>Answer</summary>
#
# The clip (or PPO-penalty's KL) limits each *update* relative to the policy that collected the
# batch, and is renewed every rollout. A KL penalty towards a frozen $\pi_\text{ref}$ limits the
# *total* drift from the starting model over the whole run (RLHF: stay close to the SFT model).
# RLHF's PPO uses both.
# </details>
#
# 11. How would you compare PPO with vanilla policy gradient fairly, and what does PPO buy?
#
# <details><summary>Answer</summary>
#
# Same network, advantage estimator, critic and env-step budget; change only the policy update
# (one step per batch vs several clipped epochs), sweep the learning rate for both, and use
# several seeds. In particular the critic must get the same training in both arms, or the
# comparison measures the critic. Done that way on CartPole (Section 9), vanilla PG at its best
# rate is close to PPO; PPO's advantage is that it works over a wide range of rates with a
# bounded KL per update, so it needs little tuning. At very large rates it collapses too.
# </details>
#
# 12. Your PPO learns CartPole slowly. How do you find out whether the update is buggy?
#
# <details><summary>Answer</summary>
#
# Run it on probe environments with known answers, in order: constant reward (value loss and
# optimiser), observation-dependent reward (the critic reads its input), two steps (discount,
# terminal mask), action-dependent reward (the policy gradient's sign), observation-and-action
# reward (both together); the first failure localises the bug. Then read the training
# diagnostics: a clip fraction of exactly 0 in the loss's own statistics (its ratio is always
# 1: the old log-probs taken from the current policy), a KL per update of order 1 and an
# entropy collapsing within a few updates (no trust region), an explained variance that never
# rises (a broken critic). Some bugs, like
# the ratio computed from the new log-probabilities on both sides, pass every probe and show
# only in these numbers (Section 8).
# </details>

# %%
rlcourse.results.record(
    "07_ppo",
    title="Trust regions and PPO",
    topics="KL directions and estimators, surrogate, TRPO, PPO-clip six cases, PPO-penalty, "
           "LR sweep, tricks ablation",
    headline=(f"PPO solves CartPole in {cart_steps / 1000:.0f}k steps / {cart_secs:.1f} s (median "
              f"of 3 seeds), greedy eval {min(cart_eval):.0f}; Acrobot {acro_eval:.0f} "
              f"({acro.steps_to_solve / 1000:.0f}k steps); at 10k steps (5 seeds) vanilla PG with "
              f"PPO's critic at lr 1e-2 reaches {pg_best_live:.0f} (one-step critic "
              f"{live['vanilla PG, one-step critic', 1e-2][:, 0].mean():.0f}), PPO at its default "
              f"lr {ppo_default_live:.0f}; PPO good at {len(good['PPO'])} of {len(LRS)} LRs, "
              f"vanilla PG at {len(good['vanilla PG'])} (stored 10-seed sweep)"),
    metrics={"cartpole_median_steps": cart_steps, "cartpole_median_seconds": cart_secs,
             "cartpole_min_eval": min(cart_eval), "acrobot_eval": acro_eval,
             "acrobot_steps": acro.steps_to_solve, "pg_lr_0p01_return_10k": pg_best_live,
             "ppo_default_return_10k": ppo_default_live, "kl_flip": kl_flip,
             "penalty_steps": pen.steps_to_solve, "probe_table_cpu_seconds": probe_cpu},
)
print(f"total time {session.elapsed():.1f} s")
