# %% [markdown]
# # 17 · Continuous control: Gaussian policies, PPO and SAC
#
# *Part IV, beyond the study notes.* Read this after notebooks 07 (PPO) and 08 (the wider map).
# Every agent so far chose among a few discrete actions: a softmax over logits, an argmax over
# Q-values. A robot's joint torque, a car's steering angle or a pendulum's motor command is a
# real number, and neither the softmax nor the argmax exists there. This notebook builds the
# two standard answers and runs both on `Pendulum-v1` (swing a pendulum up and hold it upright
# with a bounded torque):
#
# * **PPO with a Gaussian head**: the same clipped surrogate, the same GAE and the same
#   training loop as notebook 07; only the distribution changes.
# * **SAC** (soft actor-critic), the off-policy workhorse of continuous control: twin critics,
#   a tanh-squashed Gaussian actor trained through the reparameterisation trick, and an
#   entropy temperature that tunes itself. Notebook 08 met its formulas on discrete toys;
#   here it becomes a full agent, trained live below with the functions you write.
#
# **Learning goals.** After this notebook you can
# 1. write the log-density and entropy of a diagonal Gaussian policy and say why PPO learns a
#    state-independent log-std;
# 2. derive the change-of-variables correction for a tanh-squashed Gaussian and compute it in a
#    numerically stable form;
# 3. explain how bounds are handled: PPO clips the action it *sends* but keeps the log-prob of
#    the unclipped sample; SAC squashes and rescales;
# 4. write SAC's critic target (twin minimum, entropy term, termination mask), its
#    reparameterised actor loss and its temperature loss, and train SAC with them;
# 5. read a 10-seed benchmark of SAC and PPO on the same task and choose between them.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.nn import functional as F

import rlcourse
import rlcourse.bench
import rlcourse.results
from rlcourse import continuous, deeprl, ppo, sac
from rlcourse.exercises import check, show_source

session = rlcourse.setup(seed=0)
ENV = "Pendulum-v1"
TARGET = continuous.reward_target(ENV)  # the course's target; gymnasium registers none

# %% [markdown]
# ## 0. The task: Pendulum-v1
#
# The observation is $(\cos\theta, \sin\theta, \dot\theta)$, the action a torque in
# $[-2, 2]$, and the reward $-(\theta^2 + 0.1\,\dot\theta^2 + 0.001\,u^2)$ with $\theta$ the
# angle from upright. Episodes always last 200 steps: they are **truncated**, never
# terminated, so every transition bootstraps. Gymnasium registers no reward threshold for it;
# the course calls it solved at the target below (`continuous.COURSE_TARGETS`, with the
# reasoning in its docstring). First, what does a random policy score?

# %%
envs = deeprl.make_vec_env(ENV, 1, seed=0)
print("observation space:", envs.single_observation_space)
print("action space:     ", envs.single_action_space)
envs.close()
rand_gen = torch.Generator().manual_seed(0)
random_returns = deeprl.evaluate(ENV, lambda obs: 4 * torch.rand(len(obs), 1, generator=rand_gen)
                                 - 2, episodes=20, seed=123)
print(f"uniformly random torques: mean return {random_returns.mean():.1f} over 20 episodes; "
      f"the course's target is {TARGET:.0f}")
assert random_returns.mean() < 3 * TARGET  # far from solved

# %% [markdown]
# ## 1. A Gaussian policy
#
# For $d$-dimensional actions the standard choice is a diagonal Gaussian
# $\pi(a|s) = \mathcal N(a;\ \mu_\theta(s),\ \mathrm{diag}(\sigma^2))$. Its log-density is a sum
# over the $d$ independent dimensions:
# $$\log\pi(a|s) = \sum_{i=1}^{d}\Big[-\tfrac12\Big(\frac{a_i-\mu_i}{\sigma_i}\Big)^2
#   - \log\sigma_i - \tfrac12\log 2\pi\Big].$$
# Networks output $\log\sigma$ rather than $\sigma$: it can be any real number, and
# $\sigma = e^{\log\sigma}$ is positive by construction.
#
# ### Exercise 1: the Gaussian log-prob
# `actions` and `mean` have shape `[..., d]`; `log_std` has shape `[..., d]` or just `[d]`
# (broadcast). Return the log-density summed over the last axis, shape `[...]`.

# %%
def gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor,
                      log_std: torch.Tensor) -> torch.Tensor:
    """log N(actions; mean, diag(exp(log_std)^2)), summed over the last axis: [..., d] -> [...]."""
    ### BEGIN SOLUTION
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    ### END SOLUTION


gaussian_log_prob = check("continuous.gaussian_log_prob", gaussian_log_prob)

# %% [markdown]
# The entropy of the Gaussian, $\mathcal H = \sum_i \big(\tfrac12 + \tfrac12\log 2\pi +
# \log\sigma_i\big)$, does not depend on the mean. PPO's entropy bonus and SAC's temperature
# both act on it.
#
# ### Exercise 2: the Gaussian entropy
# Return one entropy per row of `mean` (shape `[...]`); `log_std` is `[..., d]` or `[d]`.

# %%
def gaussian_entropy(mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Entropy of N(mean, diag(exp(log_std)^2)) per row: mean [..., d] -> [...]."""
    ### BEGIN SOLUTION
    return (0.5 + 0.5 * math.log(2 * math.pi) + log_std.expand_as(mean)).sum(-1)
    ### END SOLUTION


gaussian_entropy = check("continuous.gaussian_entropy", gaussian_entropy)

# %% [markdown]
# A quick sanity check of both against sampling: the average of $-\log\pi(a)$ over many
# samples estimates the entropy, and the sample mean of the score $\nabla_\mu\log\pi(a)$ is 0.

# %%
gen = torch.Generator().manual_seed(1)
mu, log_std = torch.tensor([0.5, -1.0]), torch.tensor([-0.3, 0.4])
samples = mu + log_std.exp() * torch.randn(200_000, 2, generator=gen)
mc_entropy = -gaussian_log_prob(samples, mu, log_std).mean()
exact = gaussian_entropy(mu[None], log_std)[0]
print(f"entropy: exact {exact:.4f}, Monte Carlo {mc_entropy:.4f}")
m = mu.clone().requires_grad_(True)
gaussian_log_prob(samples, m, log_std).mean().backward()
print(f"mean score d log pi / d mu over the samples: {m.grad.numpy().round(4)} (expected 0)")
assert abs(float(mc_entropy - exact)) < 0.01 and m.grad.abs().max() < 0.02

# %% [markdown]
# **Where does the log-std come from?** PPO's head (`continuous.GaussianPolicy`) learns one
# log-std vector shared by all states: exploration noise shrinks as training goes on, but the
# network does not have to learn *where* to be uncertain, which keeps the policy gradient's
# variance low and the head simple. SAC's actor outputs a log-std per state, because its
# entropy term needs a state-dependent trade-off between reward and randomness.

# %%
print(show_source(continuous.GaussianPolicy))

# %% [markdown]
# ## 2. Bounded actions: clip or squash?
#
# A Gaussian puts mass on all of $\mathbb R$, but the pendulum's torque lives in $[-2, 2]$.
# Two fixes are standard:
#
# * **Clip when sending (PPO).** Sample $a \sim \mathcal N(\mu, \sigma^2)$, send
#   $\mathrm{clip}(a, -2, 2)$ to the env, and store the *unclipped* $a$ with its Gaussian
#   log-prob. The ratio $\pi_\theta(a|s)/\pi_{\theta_{old}}(a|s)$ then compares two densities of
#   the same sample. (Storing the clipped action would evaluate the Gaussian density at the
#   bound, which is not the probability of what happened: all samples beyond the bound were
#   sent as the bound.) The env sees a clipped action, and the learner treats clipping as part
#   of the environment.
# * **Squash (SAC).** Sample $u \sim \mathcal N(\mu, \sigma^2)$, take $a = \tanh(u) \in (-1, 1)$,
#   then rescale affinely to the bounds. The policy's density must follow the change of
#   variables: for an invertible map $a = f(u)$ applied per dimension,
#   $$\log\pi(a|s) = \log\mathcal N(u;\mu,\sigma^2) - \sum_i \log\Big|\frac{d\tanh(u_i)}{du_i}\Big|
#     = \log\mathcal N(u) - \sum_i \log\big(1-\tanh^2(u_i)\big).$$
#   Near the bounds $1-\tanh^2(u)$ rounds to 0 in float32 (from about $|u| = 9$, measured
#   below), and the log becomes $-\infty$. The identity $1-\tanh^2(u) = 4/(e^{u}+e^{-u})^2$ gives the stable form
#   $$\log\big(1-\tanh^2(u)\big) = 2\big(\log 2 - u - \mathrm{softplus}(-2u)\big).$$
#   (The affine rescaling to $[-2, 2]$ adds a constant $-\sum_i\log\frac{high_i-low_i}{2}$; SAC
#   works in the squashed space $(-1, 1)^d$, so its entropy target $-d$ is stated there.)
#
# ### Exercise 3: the tanh-squashed log-prob
# `u` is the **pre-squash** sample (shape `[..., d]`, as are `mean` and `log_std`); return
# $\log\pi(\tanh(u))$, shape `[...]`. Use your `gaussian_log_prob` and the stable form
# (`F.softplus` is imported).

# %%
def squashed_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor
                      ) -> torch.Tensor:
    """log pi(a) of a = tanh(u), u ~ N(mean, diag(exp(log_std)^2)): [..., d] -> [...]."""
    ### BEGIN SOLUTION
    log_det = (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
    return gaussian_log_prob(u, mean, log_std) - log_det
    ### END SOLUTION


squashed_log_prob = check("continuous.squashed_log_prob", squashed_log_prob)

# %% [markdown]
# Does the corrected density describe the squashed samples? Below, a histogram of
# $a = \tanh(u)$ for a wide Gaussian (most of its mass beyond $|u| = 1$, so the samples pile up
# near $\pm 1$), your density, and the uncorrected Gaussian density read at $u =
# \operatorname{atanh}(a)$.

# %%
mu1, ls1 = torch.tensor([0.5]), torch.tensor([0.4])
u = mu1 + ls1.exp() * torch.randn(400_000, 1, generator=gen)
a = torch.tanh(u)[:, 0]
grid = torch.linspace(-0.999, 0.999, 801)[:, None]
dens = squashed_log_prob(torch.atanh(grid), mu1, ls1).exp()
uncorrected = gaussian_log_prob(torch.atanh(grid), mu1, ls1).exp()
counts, edges = np.histogram(a.numpy(), bins=80, range=(-1, 1), density=True)
centres = torch.as_tensor(0.5 * (edges[1:] + edges[:-1]), dtype=torch.float32)[:, None]
at_centres = squashed_log_prob(torch.atanh(centres), mu1, ls1).exp().numpy()
inner = np.abs(centres[:, 0].numpy()) < 0.95  # away from the edge bins
rel_err = np.abs(counts[inner] - at_centres[inner]) / at_centres[inner]
mass = float((dens[1:] + dens[:-1]).sum() / 2 * (grid[1, 0] - grid[0, 0]))  # trapezoids
inside = float((a.abs() < 0.999).float().mean())  # the samples' share of [-0.999, 0.999]
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.hist(a.numpy(), bins=80, range=(-1, 1), density=True, alpha=0.4, label="samples tanh(u)")
ax.plot(grid[:, 0], dens, label="squashed density (with log-det)")
ax.plot(grid[:, 0], uncorrected, "--", label="Gaussian density at atanh(a) (no log-det)")
ax.set_xlabel("a = tanh(u)")
ax.set_ylim(0, 3)
ax.legend(fontsize=8)
plt.show()
print(f"integral of the density over [-0.999, 0.999]: {mass:.4f}; share of the samples "
      f"there: {inside:.4f}; histogram vs density: median relative error "
      f"{np.median(rel_err):.3f}")
assert abs(mass - inside) < 0.002 and np.median(rel_err) < 0.05

# %% [markdown]
# And the reason for the stable form: in float32, $\tanh(u)$ becomes exactly 1 a little
# before $u = 10$, and the naive log-det is $-\infty$ from there on.

# %%
us = torch.linspace(0, 20, 20_001)
first_zero = float(us[1 - torch.tanh(us) ** 2 == 0][0])
print(f"float32: 1 - tanh(u)^2 == 0 from u = {first_zero:.2f}")
u_big = torch.tensor([12.0])
naive = torch.log(1 - torch.tanh(u_big) ** 2)
stable = 2 * (math.log(2) - u_big - F.softplus(-2 * u_big))
print(f"tanh(12) = {float(torch.tanh(u_big)):.8f}; naive log(1 - tanh^2) = {float(naive)}, "
      f"stable = {float(stable):.3f}")
assert torch.isinf(naive).all() and torch.isfinite(stable).all()

# %% [markdown]
# ## 3. PPO with a Gaussian head
#
# Nothing in PPO's loss cares what the distribution is: the clipped surrogate needs
# $\log\pi_\theta(a|s)$ and $\log\pi_{\theta_{old}}(a|s)$, the entropy bonus needs
# $\mathcal H$, GAE needs values. So `ppo.train` takes Box action spaces unchanged: when the
# env's actions are a Box it swaps the softmax head for `continuous.GaussianPolicy`, samples
# $a = \mu + \sigma\,\varepsilon$, clips only the copy it sends to the env, and stores the
# Gaussian log-prob of the unclipped sample. The exact Gaussian KL (`continuous.gaussian_kl`)
# replaces the categorical one in the statistics. Here is the rollout step:

# %%
print(show_source(ppo.collect_rollout_gaussian))

# %% [markdown]
# PPO's CartPole defaults do not carry over to the pendulum. The benchmark (section 5) uses a
# shorter horizon ($\gamma = 0.9$), larger batches and no gradient-norm clip; they are listed
# in `rlcourse.bench.ENV_OVERRIDES`. Even so, PPO needs tens of thousands of steps here: it
# throws each batch away after a few epochs. We read its 10-seed run from
# `results/bench` below rather than training it live.

# %%
print(rlcourse.bench.ENV_OVERRIDES[("ppo", ENV)])

# %% [markdown]
# ## 4. SAC: soft actor-critic
#
# SAC (Haarnoja et al., 2018) maximises reward plus $\alpha$ times the policy's entropy, and
# learns off-policy from a replay buffer, so every transition is reused many times. One
# gradient step on a minibatch of $B$ transitions has three parts.
#
# **Critics.** Two Q-networks $Q_1, Q_2$ regress on one soft target computed with their
# slowly moving copies $\bar Q_1, \bar Q_2$ and a fresh action $a' \sim \pi(\cdot|s')$:
# $$y = r + \gamma\,(1 - \text{terminated})\,\Big(\min_{i=1,2}\bar Q_i(s', a') -
#   \alpha\log\pi(a'|s')\Big).$$
# The minimum fights the overestimation that notebook 08 measured for TD3; the
# $-\alpha\log\pi$ term is the soft value's entropy bonus. A terminated transition has no
# future. A truncated one does (Pendulum only truncates), so it bootstraps.
#
# ### Exercise 4: the SAC critic target
# All inputs are `[B]` (`terminated` is bool); `gamma` and `alpha` are floats. Return `[B]`.

# %%
def sac_target(rewards: torch.Tensor, q1_next: torch.Tensor, q2_next: torch.Tensor,
               next_logp: torch.Tensor, terminated: torch.Tensor, gamma: float,
               alpha: float) -> torch.Tensor:
    """Soft TD target [B] from the target critics' values and log pi(a'|s') at s'."""
    ### BEGIN SOLUTION
    soft_value = torch.minimum(q1_next, q2_next) - alpha * next_logp
    return rewards + gamma * (1.0 - terminated.float()) * soft_value
    ### END SOLUTION


sac_target = check("continuous.sac_target", sac_target)

# %% [markdown]
# The package writes it as TD3's clipped double-Q target (notebook 08's `wider.td3_target`)
# applied to the soft values, since $\min(Q_1 - c, Q_2 - c) = \min(Q_1, Q_2) - c$:

# %%
print(show_source(sac.sac_target))

# %% [markdown]
# **Actor.** The policy minimises $\mathbb E_{s\sim\mathcal D}\big[\alpha\log\pi(a|s) -
# \min_i Q_i(s, a)\big]$ with $a$ drawn from the current policy. To differentiate through the
# sampling, SAC uses the **reparameterisation trick**: draw the noise
# $\varepsilon\sim\mathcal N(0, I)$ first, then $u = \mu_\theta(s) + \sigma_\theta(s)\,
# \varepsilon$ and $a = \tanh(u)$ are differentiable functions of $\theta$. The gradient flows
# through the critics' slope $\nabla_a Q$ into the policy, a low-variance pathwise gradient
# (DDPG's and TD3's actor update, plus the entropy term). The critics are not trained by this
# loss (the loop freezes them for this step).
#
# ### Exercise 5: the SAC actor loss
# `mean`, `log_std` and the noise `eps` are `[B, d]`. `q_fn(a)` takes squashed actions
# `[B, d]` and returns the two critics' values `(q1, q2)`, each `[B]`, at the batch's
# states. Return the scalar loss. Use your `squashed_log_prob`.

# %%
def actor_loss(mean: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor, q_fn,
               alpha: float) -> torch.Tensor:
    """Scalar SAC actor loss from the policy's outputs [B, d] and standard-normal noise [B, d]."""
    ### BEGIN SOLUTION
    u = mean + log_std.exp() * eps
    q1, q2 = q_fn(torch.tanh(u))
    return (alpha * squashed_log_prob(u, mean, log_std) - torch.minimum(q1, q2)).mean()
    ### END SOLUTION


actor_loss = check("continuous.actor_loss", actor_loss)

# %% [markdown]
# **Temperature.** Choosing $\alpha$ by hand is brittle: the right value depends on the
# reward's scale and changes during training. SAC-v2 (Haarnoja et al., 2018b) treats it as a
# Lagrange multiplier for a constraint on the entropy, $\mathbb E[-\log\pi] \ge \mathcal H_
# {target}$ with $\mathcal H_{target} = -d$ (here $-1$), and learns $\log\alpha$ by minimising
# $$L(\log\alpha) = -\,\mathbb E\big[\log\alpha\,(\log\pi(a|s) + \mathcal H_{target})\big]$$
# with $\log\pi$ held constant. When the policy's entropy falls below the target,
# $\log\pi + \mathcal H_{target} > 0$, the gradient is negative and $\alpha$ grows; above the
# target it shrinks.
#
# ### Exercise 6: the temperature loss
# `log_alpha` is a scalar tensor that requires grad, `logp` is `[B]`. Return the scalar loss;
# it must not send gradients into `logp`.

# %%
def temperature_loss(log_alpha: torch.Tensor, logp: torch.Tensor,
                     target_entropy: float) -> torch.Tensor:
    """Scalar loss whose gradient moves log_alpha towards the entropy target."""
    ### BEGIN SOLUTION
    return -(log_alpha * (logp.detach() + target_entropy)).mean()
    ### END SOLUTION


temperature_loss = check("continuous.temperature_loss", temperature_loss)

# %% [markdown]
# The rest of SAC is bookkeeping you have met before: a replay buffer (DQN's, with float
# actions), uniformly random actions for the first `learning_starts` steps, and target
# critics that follow the online ones by **Polyak averaging**, $\bar\theta \leftarrow
# (1-\tau)\bar\theta + \tau\theta$ after every step, instead of DQN's periodic hard copy.
# One full update:

# %%
print(show_source(sac._update))

# %% [markdown]
# ### Training SAC on the pendulum, with your functions
#
# Your target, actor loss and temperature loss drive the run (`sac.train`'s hooks). The
# defaults (`sac.Config`) are small on purpose: two hidden layers of 64 units, batch 128,
# one gradient step per env step, learning rate $10^{-3}$. By default training stops once the
# last 20 episodes average at least the target (the benchmark does that). Here we train on to
# a fixed 10,000 steps: at the moment the running mean first crosses the target, the greedy
# policy can still fail from a few start angles, and a run driven by your functions (equal to
# the package's up to rounding) should not depend on such an edge.

# %%
cfg = sac.make_config(stop_when_solved=False, total_steps=10_000)
print(cfg)
result = sac.train(ENV, seed=0, target_fn=sac_target, actor_loss_fn=actor_loss,
                   temperature_loss_fn=temperature_loss, stop_when_solved=False,
                   total_steps=cfg.total_steps)
greedy = deeprl.evaluate(ENV, result.act, episodes=20, seed=10_000)
print(f"running mean first reached the target after {result.steps_to_solve} env steps; "
      f"trained {result.total_steps:,} steps ({result.total_steps - cfg.learning_starts:,} "
      f"gradient steps, {result.seconds:.0f} s)")
print(f"greedy policy tanh(mu(s)), 20 new episodes: mean return {greedy.mean():.1f} "
      f"(worst {greedy.min():.1f})")
assert result.solved and result.steps_to_solve <= cfg.total_steps
assert greedy.mean() >= TARGET

# %%
steps = np.arange(1_000, result.total_steps + 1, 250)
curve = deeprl.learning_curve(result, steps)
h = result.history
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.4))
ax1.plot(steps, curve, label="SAC, mean of the last 20 episodes")
ax1.axhline(TARGET, color="k", ls=":", label=f"target {TARGET:.0f}")
ax1.axhline(random_returns.mean(), color="grey", ls="--", label="random policy")
ax1.set_xlabel("env steps")
ax1.set_ylabel("return")
ax1.legend(fontsize=8)
ax2.plot(h["log_step"], h["alpha"], label="temperature alpha")
ax2.plot(h["log_step"], h["entropy"], label="entropy -mean log pi")
ax2.axhline(-1.0, color="k", ls=":", label="entropy target -d")
ax2.set_xlabel("env steps")
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the right panel with the temperature loss in mind: while the entropy sits above its
# target, $\alpha$ falls, so reward counts for more; once the policy concentrates and its
# entropy approaches the target, $\alpha$ levels off.
#
# ## 5. Ten seeds each: SAC and PPO on the pendulum
#
# One seed is an anecdote. `python -m rlcourse.bench sac --env Pendulum-v1 --seeds 10` trains
# ten seeds with the defaults and evaluates each greedy policy on 100 new episodes; the same
# for PPO with its Gaussian head. The stored results:

# %%
bench = {algo: rlcourse.results.load_bench(algo, ENV) for algo in ("sac", "ppo")}
print(f"{'algo':5s} {'solved':>7s} {'median steps':>13s} {'median s':>9s} "
      f"{'greedy eval, min / median':>27s}")
for algo, b in bench.items():
    evals = [r["eval_mean_return"] for r in b["seeds"]]
    med = b["median_steps_to_solve"]
    print(f"{algo:5s} {sum(r['solved'] for r in b['seeds']):>3d}/{len(b['seeds']):<3d} "
          f"{'-' if med is None else f'{med:,.0f}':>13s} "
          f"{b['median_seconds_to_solve'] or float('nan'):9.1f} "
          f"{min(evals):13.1f} / {float(np.median(evals)):.1f}")
sac_rows = bench["sac"]["seeds"]
sac_good = sum(r["eval_mean_return"] >= TARGET and r["steps_to_solve"] is not None
               and r["steps_to_solve"] <= sac.Config().total_steps for r in sac_rows)
print(f"SAC seeds whose greedy policy averages >= {TARGET:.0f} over 100 episodes within "
      f"{sac.Config().total_steps:,} steps: {sac_good}/{len(sac_rows)}")
ppo_good = sum(r["eval_mean_return"] >= TARGET for r in bench["ppo"]["seeds"])
print(f"PPO seeds whose greedy policy (the clipped mean action, evaluated where the run "
      f"stopped, at its first solve) averages >= {TARGET:.0f}: {ppo_good}/{len(bench['ppo']['seeds'])}")
assert sac_good >= 9

# %%
fig, ax = plt.subplots(figsize=(8, 3.4))
for algo, color in (("sac", "C0"), ("ppo", "C1")):
    for i, row in enumerate(bench[algo]["seeds"]):
        c = row["curve"]
        y = [np.nan if v is None else v for v in c["running_mean"]]
        ax.plot(c["step"], y, color=color, alpha=0.5, lw=1,
                label=f"{algo.upper()} (10 seeds)" if i == 0 else None)
ax.axhline(TARGET, color="k", ls=":", label=f"target {TARGET:.0f}")
ax.set_xscale("log")
ax.set_xlabel("env steps (log scale); each run stops once solved")
ax.set_ylabel("mean of the last 20 episodes")
ax.legend(fontsize=8)
plt.show()
ratio = bench["ppo"]["median_steps_to_solve"] / bench["sac"]["median_steps_to_solve"] \
    if bench["ppo"]["median_steps_to_solve"] else float("inf")
print(f"PPO needs {ratio:.1f}x SAC's median env steps to reach the target")
secs = {algo: b["median_seconds_to_solve"] for algo, b in bench.items()}
print(f"but wall-clock medians of the stored runs (one torch thread each): SAC {secs['sac']:.0f} s, "
      f"PPO {secs['ppo']:.0f} s: SAC takes a gradient step on every env step")
assert ratio > 2

# %% [markdown]
# **A MuJoCo task.** The same PPO, with its Gaussian head and its CartPole defaults unchanged,
# also ran on MuJoCo's `InvertedPendulum-v5` (balance a pole on a cart with a continuous force;
# 950 is gymnasium's threshold, 1000 the most an episode can score). MuJoCo is an optional
# extra (`pip install -e ".[mujoco]"`); the stored benchmark needs no MuJoCo to be read:

# %%
mj = rlcourse.results.load_bench("ppo", "InvertedPendulum-v5")
mj_evals = [r["eval_mean_return"] for r in mj["seeds"]]
print(f"PPO on InvertedPendulum-v5: solved {sum(r['solved'] for r in mj['seeds'])}/"
      f"{len(mj['seeds'])} seeds, median {mj['median_steps_to_solve']:,.0f} env steps "
      f"({mj['median_seconds_to_solve']:.0f} s); greedy evaluation {min(mj_evals):.0f} to "
      f"{max(mj_evals):.0f}")
assert mj["solved_fraction"] >= 0.9 and min(mj_evals) >= 950

# %% [markdown]
# ### PPO or SAC?
#
# The plot measures **sample efficiency**: SAC reuses every transition for many gradient steps
# (off-policy, replay), PPO uses each batch for a few epochs and throws it away. When env steps
# are expensive (a real robot, a slow simulator), that settles it: SAC, or TD3. When env steps
# are cheap, the seconds printed above tell the other half of the story.
# PPO wins elsewhere:
#
# * **Wall-clock with cheap, parallel simulation.** Thousands of vectorised envs on a GPU
#   (Isaac Gym, Brax) produce steps faster than SAC can take gradient steps; PPO's large
#   batches use them, SAC's one update per step cannot.
# * **Discrete or mixed action spaces, and language models.** PPO needs only log-probs; SAC's
#   reparameterised actor needs a differentiable action (discrete SAC variants exist but are
#   less robust).
# * **Stability and few moving parts.** No replay buffer, no target networks, no critic of
#   actions; a bad hyperparameter rarely blows up the run.
#
# SAC's own strengths: automatic exploration through the entropy term and a temperature that
# sets itself, strong results on continuous-control benchmarks with one set of defaults, and
# learning from old data (including offline datasets, with the corrections of notebook 08).
#
# ## Interview questions
#
# 1. Why does PPO's Gaussian head usually learn a state-independent log-std, while SAC's actor
#    outputs one per state?
#
# <details><summary>Answer</summary>
#
# In PPO the log-std is exploration noise that should shrink as the policy improves; a single
# learned vector does this with fewer parameters and a lower-variance policy gradient, and
# works as well in practice. In SAC the entropy is part of the objective, and the optimal
# soft policy's spread depends on the state (wide where actions matter little, narrow where
# they matter), so the actor needs a state-dependent log-std.
# </details>
#
# 2. Your PPO agent clips actions to the env's bounds. Which log-prob do you store, and why?
#
# <details><summary>Answer</summary>
#
# The Gaussian log-prob of the unclipped sample. The ratio compares the current and old
# densities of the same sample; the clipped value is not a sample of the Gaussian (all mass
# beyond the bound lands on it), so evaluating the density there is wrong. Clipping becomes part
# of the environment. The alternative is a squashed or Beta policy whose support is the box.
# </details>
#
# 3. Derive the log-density of $a = \tanh(u)$, $u\sim\mathcal N(\mu,\sigma^2)$. What goes
#    wrong numerically, and how do you fix it?
#
# <details><summary>Answer</summary>
#
# Change of variables: $\log\pi(a) = \log\mathcal N(u) - \sum_i\log(1-\tanh^2 u_i)$ (the
# Jacobian of an elementwise map is diagonal). In float32, $1-\tanh^2 u$ rounds to 0 for
# $|u|\gtrsim 9$ and the log is $-\infty$. Use $\log(1-\tanh^2 u) = 2(\log 2 - u -
# \mathrm{softplus}(-2u))$, exact and finite; adding a small epsilon inside the log biases the
# density near the bounds. Keep $u$ from the sample rather than inverting $\tanh$.
# </details>
#
# 4. Write SAC's critic target. Why the minimum of two critics, why the $-\alpha\log\pi$ term,
#    and what happens at a time-limit truncation?
#
# <details><summary>Answer</summary>
#
# $y = r + \gamma(1-\text{terminated})(\min_i\bar Q_i(s',a') - \alpha\log\pi(a'|s'))$ with
# $a'\sim\pi(\cdot|s')$. The minimum counters the overestimation that maximising through a
# noisy critic creates (TD3's clipped double-Q). The entropy term makes it a soft value: the
# agent is paid for future randomness too. A truncation is not a terminal state, so the target
# still bootstraps from the true final observation; only termination drops it.
# </details>
#
# 5. What is the reparameterisation trick, and why does SAC need it where PPO does not?
#
# <details><summary>Answer</summary>
#
# Write the sample as a differentiable function of the parameters and independent noise,
# $a = \tanh(\mu_\theta(s) + \sigma_\theta(s)\varepsilon)$. Then $\nabla_\theta\mathbb E[f(a)]
# = \mathbb E[\nabla_a f\,\nabla_\theta a]$, a pathwise gradient with low variance. SAC's actor
# maximises a learned $Q(s,a)$ that is differentiable in $a$, so it can use it. PPO maximises
# returns from the environment, which are not differentiable in the action, so it uses the
# score-function (likelihood-ratio) gradient $\mathbb E[\nabla_\theta\log\pi\,A]$.
# </details>
#
# 6. How does SAC set its temperature automatically, and what is the target entropy?
#
# <details><summary>Answer</summary>
#
# It treats $\alpha$ as the Lagrange multiplier of a minimum-entropy constraint and does
# gradient descent on $-\log\alpha\,(\log\pi + \mathcal H_{target})$ with the policy fixed:
# $\alpha$ rises when the entropy is below the target and falls above it. The usual target is
# $-\dim(A)$, stated for the squashed actions in $(-1,1)^d$.
# </details>
#
# 7. When would you pick PPO over SAC for a continuous-control task?
#
# <details><summary>Answer</summary>
#
# When simulation is cheap and massively parallel (GPU simulators), so wall-clock rather than
# sample count is the cost; when stability and simplicity matter more than sample efficiency;
# when the action space is discrete or mixed. Pick SAC (or TD3) when env steps are expensive,
# e.g. on hardware, or when you want to reuse logged data.
# </details>
#
# 8. How does TD3 differ from SAC?
#
# <details><summary>Answer</summary>
#
# TD3 has a deterministic actor with added exploration noise, target policy smoothing (noise
# on the target action), delayed actor updates and no entropy term; SAC has a stochastic
# actor, an entropy-regularised objective and an automatic temperature. Both use twin critics
# with the minimum, target networks with Polyak averaging and a replay buffer.
# </details>
#
# ## What to remember
#
# * A diagonal Gaussian head turns any log-prob-based method (REINFORCE, A2C, PPO) into a
#   continuous-control method: $\log\pi$ and $\mathcal H$ are sums over dimensions.
# * Bounds: clip only what you send and store the unclipped sample's log-prob (PPO), or squash
#   with tanh and subtract $\sum_i\log(1-\tanh^2 u_i)$, computed as
#   $2(\log 2 - u - \mathrm{softplus}(-2u))$ (SAC).
# * SAC = twin critics with a soft, clipped double-Q target (no bootstrap after termination,
#   bootstrap after truncation) + a reparameterised actor + an automatically tuned
#   temperature + replay and Polyak-averaged targets.
# * Off-policy SAC needs far fewer env steps than on-policy PPO on the pendulum (measured over
#   10 seeds above); PPO remains the choice for cheap parallel simulation and for LLMs.
#
# ## Further reading
#
# * Haarnoja, Zhou, Abbeel, Levine (2018). *Soft Actor-Critic: Off-Policy Maximum Entropy
#   Deep Reinforcement Learning with a Stochastic Actor.* ICML.
# * Haarnoja et al. (2018). *Soft Actor-Critic Algorithms and Applications.* arXiv:1812.05905
#   (SAC-v2: automatic temperature tuning, no separate value network).
# * Fujimoto, van Hoof, Meger (2018). *Addressing Function Approximation Error in Actor-Critic
#   Methods.* ICML (TD3: clipped double-Q, target smoothing, delayed updates).
# * Schulman, Wolski, Dhariwal, Radford, Klimov (2017). *Proximal Policy Optimization
#   Algorithms.* arXiv:1707.06347.

# %%
rlcourse.results.record(
    "17_continuous_control",
    title="Continuous control: Gaussian policies, PPO and SAC",
    topics="Gaussian policies, tanh squashing and its log-det, action bounds, PPO with a "
           "Gaussian head, SAC (twin critics, reparameterised actor, auto temperature)",
    headline=(f"SAC on Pendulum-v1 (seed 0, your functions): target reached in "
              f"{result.steps_to_solve:,} env steps, greedy return {greedy.mean():.1f} after "
              f"{result.total_steps:,}; "
              f"bench: SAC {sac_good}/{len(sac_rows)} seeds >= {TARGET:.0f}, PPO needs "
              f"{ratio:.1f}x SAC's median steps"),
    metrics={"sac_steps_to_solve": result.steps_to_solve, "sac_greedy_return": greedy.mean(),
             "random_return": random_returns.mean(), "bench_sac_good_seeds": sac_good,
             "ppo_over_sac_steps": ratio},
)
print(f"total time {session.elapsed():.1f} s")
