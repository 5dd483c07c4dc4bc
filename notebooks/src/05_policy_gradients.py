# %% [markdown]
# # 05 · Policy gradients: REINFORCE and baselines
#
# Value-based methods (notebooks 03-04) learn $Q$ and act greedily on it. Policy-gradient
# methods skip that detour: they write the policy as a differentiable function
# $\pi_\theta(a \mid s)$ and climb the gradient of the expected return with respect to
# $\theta$. The catch is that the return depends on $\theta$ only through *sampled* actions
# and an environment we cannot differentiate. This notebook derives the estimator that gets
# around that, checks it against the exact gradient, and then makes it practical.
#
# **Learning goals.** After this notebook you can
# 1. say why "differentiate the reward with respect to the weights" does not work, and write
#    the objective $J(\theta) = \mathbb E_{\tau \sim p_\theta}[R(\tau)]$ with the factorisation
#    of $p_\theta(\tau)$;
# 2. derive the log-derivative (score-function) trick, see the dynamics drop out, and check the
#    estimate against the exact gradient of a small MDP (autograd and finite differences);
# 3. implement REINFORCE through its surrogate loss, with the right sign, mask and
#    normalisation;
# 4. explain why reward-to-go is unbiased (causality), and what discounting changes: it is
#    biased for the undiscounted return, and without a $\gamma^t$ factor it is not the gradient of
#    the discounted objective either;
# 5. prove that a baseline leaves the gradient unbiased, compute the variance-optimal constant
#    baseline, and show how a bad one *adds* variance;
# 6. see the always-positive-reward pathology on a bandit, collect a batch of whole episodes
#    without favouring short ones, and solve CartPole-v1 with REINFORCE and a learned value
#    baseline.
#
# **Notation.** As in the rest of the course, in the theory the reward after action $a_t$ is
# $r_{t+1}$; in code arrays are aligned by step, so `rewards[t]` is the reward that follows
# `actions[t]`. Objectives $J$ are *maximised*; code *minimises* `loss = -J`.

# %%
import functools

import matplotlib.pyplot as plt
import numpy as np
import torch

import rlcourse
import rlcourse.results
from rlcourse import deeprl, pg
from rlcourse.exercises import check, show_source
from rlcourse.plotting import moving_average

session = rlcourse.setup(seed=0)
gen = torch.Generator().manual_seed(0)

# %% [markdown]
# ## 1. Why not just differentiate the reward?
#
# Picture a walking robot whose network maps sensor readings to motor commands. A natural
# first attempt: run it, compute the reward, "take the gradient of the reward with respect to
# the weights", call `backward()`, step. It fails for two separate reasons.
#
# 1. **The environment is a black box.** `env.step` is a simulator (or the real world) that
#    returns plain numbers. There is no computation graph from the weights to the reward.
# 2. **Actions are discrete samples.** Even with a differentiable simulator, a sampled or
#    argmax-ed action does not change when the weights move a little, until it suddenly flips.
#    The return of a deterministic policy is a *staircase* in the weights: its derivative is
#    zero almost everywhere and undefined at the jumps.

# %%
envs = deeprl.make_vec_env("CartPole-v1", 1, seed=0)
obs, _ = envs.reset(seed=0)
net = deeprl.mlp([4, 16, 2])
logits = net(torch.as_tensor(obs))
action = torch.distributions.Categorical(logits=logits).sample()
obs, reward, terminated, truncated, _ = envs.step(action.numpy())
print(f"logits carry a graph: {logits.grad_fn is not None} | the sampled action carries one: "
      f"{action.grad_fn is not None} | the reward is a plain numpy {type(reward).__name__}: "
      f"{reward}")
envs.close()

# %% [markdown]
# The staircase, measured: a linear CartPole controller pushes right when $w \cdot s > 0$. We
# move $w$ along a line, $w = w_0 + \alpha d$, start every episode from the same state, and
# record the return. Next to it, the *expected* return of a stochastic version (push right with
# probability $\sigma(w \cdot s / 0.05)$), estimated from 32 random episodes per $\alpha$:
# averaging over random actions and start states turns the staircase into a smooth function,
# and a smooth expectation is what the policy gradient differentiates.

# %%
alphas = np.linspace(-0.1, 0.15, 251)
w_line = np.array([0.0, 0.0, 1.0, 0.0]) + alphas[:, None] * np.array([0.0, 0.0, 0.0, 1.0])
det = pg.linear_policy_returns(w_line, stochastic=False, start_state=[0.02, 0.01, 0.03, -0.02])
stoch = pg.linear_policy_returns(np.repeat(w_line, 32, axis=0), stochastic=True,
                                 seed=1).reshape(-1, 32).mean(axis=1)
flat = float(np.mean(np.diff(det) == 0))
print(f"deterministic policy: {len(np.unique(det))} distinct returns over {len(alphas)} values "
      f"of alpha; finite differences are exactly 0 on {flat:.0%} of the steps")
fig, ax = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
ax[0].step(alphas, det, where="mid")
ax[0].set(xlabel=r"$\alpha$", ylabel="return", title="deterministic policy, fixed start")
ax[1].plot(alphas, stoch)
ax[1].set(xlabel=r"$\alpha$", title="stochastic policy, mean of 32 episodes")
plt.show()
assert flat > 0.9 and det[0] < 50 and det[-1] == 500

# %% [markdown]
# ## 2. The objective and the log-derivative trick
#
# A trajectory $\tau = (s_0, a_0, r_1, s_1, a_1, \dots, s_T)$ of the policy $\pi_\theta$ has
# probability
# $$p_\theta(\tau) = \rho_0(s_0)\prod_{t=0}^{T-1} \pi_\theta(a_t \mid s_t)\,
#   P(s_{t+1} \mid s_t, a_t),$$
# and the objective is the expected return
# $J(\theta) = \mathbb E_{\tau \sim p_\theta}[R(\tau)] = \sum_\tau p_\theta(\tau) R(\tau)$.
# The return $R(\tau)$ does not depend on $\theta$; only the probabilities of the
# trajectories do. Using $\nabla_\theta p_\theta = p_\theta \nabla_\theta \log p_\theta$
# (the **log-derivative trick**),
# $$\nabla_\theta J = \sum_\tau p_\theta(\tau)\, \nabla_\theta \log p_\theta(\tau)\, R(\tau)
#   = \mathbb E_{\tau \sim p_\theta}\big[R(\tau)\, \nabla_\theta \log p_\theta(\tau)\big].$$
# Take the log of the product: $\log \rho_0$ and every $\log P(s_{t+1} \mid s_t, a_t)$ are
# constant in $\theta$, so their gradients vanish: **the dynamics drop out**,
# $$\nabla_\theta J = \mathbb E_\tau\Big[R(\tau) \sum_{t=0}^{T-1}
#   \nabla_\theta \log \pi_\theta(a_t \mid s_t)\Big].$$
# We never need $P$ or its gradient, only samples from the environment and the gradient of
# our own policy's log-probabilities. The Monte-Carlo estimate from $N$ episodes is
# $\hat g = \frac1N \sum_n R(\tau^n) \sum_t \nabla_\theta \log \pi_\theta(a^n_t \mid s^n_t)$.
#
# For a softmax policy $\pi(a) = e^{z_a} / \sum_b e^{z_b}$ over logits $z$, the **score**
# $\nabla_z \log \pi(a)$ has a closed form: $\log \pi(a) = z_a - \log \sum_b e^{z_b}$, so
# $$\frac{\partial \log \pi(a)}{\partial z_k} = \mathbb 1[k = a] - \pi(k),
# \qquad \nabla_z \log \pi(a) = \mathrm{onehot}(a) - \pi.$$
#
# ### Exercise 1: the score of a softmax policy
# Complete `score_function(logits, action)`: `logits` has shape `[..., K]`, `action` (integers)
# the shape `logits.shape[:-1]`; return $\mathrm{onehot}(a) - \mathrm{softmax}(z)$ with shape
# `[..., K]`. Use `torch.softmax` (it is stable for large logits).

# %%
def score_function(logits, action):
    """onehot(action) - softmax(logits); shapes [..., K] and [...] -> [..., K]."""
    ### BEGIN SOLUTION
    onehot = torch.nn.functional.one_hot(action.long(), logits.shape[-1]).to(logits.dtype)
    return onehot - torch.softmax(logits, dim=-1)
    ### END SOLUTION


score_function = check("pg.score_function", score_function)

# %% [markdown]
# ### A toy MDP where everything can be computed exactly
# Two decisions: in the start state pick $a_0 \in \{0, 1\}$ (reward $r_0(a_0)$), land in one of
# two middle states with probabilities $P(s_1 \mid a_0)$, pick $a_1$ (reward
# $r_1(s_1, a_1)$), stop. A tabular softmax policy has one row of logits per state:
# $\theta \in \mathbb R^{3 \times 2}$. There are only $2 \cdot 2 \cdot 2 = 8$ trajectories,
# so $J(\theta) = \sum_\tau p_\theta(\tau) R(\tau)$ is an exact, differentiable sum, and
# autograd gives the **exact gradient**. We compare it with central finite differences and
# with the Monte-Carlo score-function estimate from 20,000 sampled episodes, whose per-component
# standard error (SE) says how close it should be.

# %%
mdp = pg.toy_mdp()
theta = torch.tensor([[0.3, -0.2], [0.5, 0.0], [-0.4, 0.2]], dtype=torch.float64)
print(f"P(s1 | a0) = {mdp.p_next.tolist()}, r0 = {mdp.r0.tolist()}, r1 = {mdp.r1.tolist()}")
traj_all = pg.enumerate_trajectories(mdp)
p_all = traj_all.p_env * pg.policy_log_prob(theta, traj_all).exp()  # p_theta(tau), 8 values
J = pg.exact_objective(theta, mdp)
g_exact = pg.exact_gradient(theta, mdp)
g_fd = pg.finite_difference_gradient(lambda th: pg.exact_objective(th, mdp), theta)

n_mc = 20_000
sample = pg.sample_trajectories(theta, mdp, n_mc, gen)
R_sample = sample.rewards.sum(dim=1, keepdim=True).expand(-1, 2)  # R(tau) at both steps
mc = pg.gradient_moments(pg.per_sample_gradients(theta, sample, R_sample, score_function))
z = float(((mc.mean - g_exact) / mc.se).abs().max())
print(f"J(theta) = {float(J):.4f}; sum of p_theta(tau) over the 8 trajectories = "
      f"{float(p_all.sum()):.6f}")
print(f"exact gradient (autograd): {g_exact.flatten().numpy().round(4)}")
print(f"finite differences:        {g_fd.flatten().numpy().round(4)}  "
      f"(max difference {float((g_fd - g_exact).abs().max()):.1e})")
print(f"score function, N={n_mc}: {mc.mean.flatten().numpy().round(4)}  "
      f"(largest deviation {z:.1f} standard errors)")
assert float((g_fd - g_exact).abs().max()) < 1e-8
assert z < 4.0

# %%
labels = [f"θ[{s},{a}]" for s in range(3) for a in range(2)]
x = np.arange(6)
fig, ax = plt.subplots(figsize=(8, 3.8))
ax.bar(x - 0.2, g_exact.flatten().numpy(), 0.4, label="exact (autograd)")
ax.plot(x - 0.2, g_fd.flatten().numpy(), "k_", markersize=18, label="finite differences")
ax.errorbar(x + 0.2, mc.mean.flatten().numpy(), yerr=2 * mc.se.flatten().numpy(), fmt="o",
            color="C1", label=f"score function, N={n_mc} (±2 SE)")
ax.set_xticks(x, labels)
ax.set(ylabel=r"$\partial J / \partial \theta$", title="three routes to the same gradient")
ax.legend()
plt.show()

# %% [markdown]
# Why does each row of the gradient sum to zero? Adding a constant to all logits of a state
# leaves the softmax unchanged, so $J$ cannot change in that direction. The score has the same
# property: $\sum_k (\mathbb 1[k=a] - \pi(k)) = 1 - 1 = 0$.
#
# ## 3. REINFORCE and its surrogate loss
#
# Autograd computes $\nabla_\theta \log \pi_\theta(a_t \mid s_t)$ for us if we hand it a scalar
# whose gradient is the estimate. That scalar is the **surrogate loss**
# $$L(\theta) = -\frac1B \sum_{b=1}^{B} \sum_{t} w_{b,t}\, \log \pi_\theta(a_{b,t} \mid s_{b,t}),$$
# over a batch of $B$ episodes, with weights $w_{b,t}$ ($R(\tau)$ for now) treated as
# **constants** (`weights.detach()`): they are numbers that came out of the environment, not
# functions of $\theta$. Minimising $L$ moves $\theta$ along $\hat g$: raise the log-probability
# of actions in high-return episodes, lower it in low-return ones.
#
# Episodes have different lengths, so a batch is a padded `[B, T]` tensor with a `mask`
# (1 = real step, 0 = padding); padded steps must not contribute. Note the normaliser: the
# per-episode *sum* over time, averaged over the $B$ episodes, which is exactly $\hat g$. (PPO
# and LLM code often average over all real steps instead; that rescales the gradient by the
# mean episode length, which Adam mostly absorbs, but it is a different estimator.)
#
# The loss value itself means little: it is not an error to drive to zero, and it can go up
# while the policy improves (its weights change every batch). Monitor returns, not this loss.
#
# ### Exercise 2: the REINFORCE loss
# Complete `reinforce_loss(logp, weights, mask)`: all three have shape `[B, T]`; return the
# scalar $L$ above. Make sure no gradient flows into `weights`.

# %%
def reinforce_loss(logp, weights, mask):
    """-(1/B) * sum_{b,t} mask * weights * logp, weights held constant; [B, T] -> scalar."""
    ### BEGIN SOLUTION
    return -(mask * weights.detach() * logp).sum() / logp.shape[0]
    ### END SOLUTION


reinforce_loss = check("pg.reinforce_loss", reinforce_loss)

# %% [markdown]
# On 64 sampled toy episodes, minus the autograd gradient of the surrogate equals the
# score-function estimate assembled by hand from Exercise 1:

# %%
batch = pg.sample_trajectories(theta, mdp, 64, gen)
R_batch = batch.rewards.sum(dim=1, keepdim=True).expand(-1, 2)
th = theta.clone().requires_grad_(True)
logp = torch.log_softmax(th, dim=-1)[batch.states, batch.actions]  # [64, 2]
reinforce_loss(logp, R_batch, torch.ones_like(logp)).backward()
by_hand = pg.per_sample_gradients(theta, batch, R_batch, score_function).mean(dim=0)
print(f"max |(-grad of surrogate) - score-function estimate| = "
      f"{float((-th.grad - by_hand).abs().max()):.1e}")
assert torch.allclose(-th.grad, by_hand, atol=1e-12)

# %% [markdown]
# ## 4. Reward-to-go (causality) is not the same thing as discounting
#
# $R(\tau)$ multiplies *every* $\nabla \log \pi(a_t \mid s_t)$, including rewards that came
# *before* $a_t$. Those terms have expectation zero. For $t' < t$ the reward $r_{t'+1}$ is fixed
# once we condition on the history up to $s_t$, and the score of the next action has
# mean zero given $s_t$ (proved in section 5):
# $$\mathbb E\big[r_{t'+1}\, \nabla \log \pi(a_t \mid s_t)\big]
#   = \mathbb E\Big[r_{t'+1}\; \underbrace{\mathbb E_{a_t \sim \pi(\cdot \mid s_t)}
#     [\nabla \log \pi(a_t \mid s_t)]}_{=\,0}\Big] = 0 .$$
# Dropping them gives the **reward-to-go** estimator, still unbiased and with less noise:
# $$\hat g = \frac1N \sum_n \sum_t \hat Q_t^n \nabla \log \pi(a^n_t \mid s^n_t), \qquad
#   \hat Q_t = \sum_{t'=t}^{T-1} r_{t'+1}.$$
# Reward-to-go is exact: an action cannot influence rewards paid before it was taken, so those
# terms are pure noise with mean zero.
#
# **Discounting** is a different step: weighting $\hat Q^\gamma_t = \sum_{t' \ge t}
# \gamma^{t'-t} r_{t'+1}$ with $\gamma < 1$ shrinks the influence of distant rewards. What
# that means depends on the task.
#
# * In MDP theory (notebook 02) and in continuing tasks, $\gamma$ is part of the problem: the
#   objective is $J_\gamma(\theta) = \mathbb E\big[\sum_t \gamma^t r_{t+1}\big]$.
# * On an episodic benchmark such as CartPole, the quantity we report and care about is the
#   *undiscounted* episode return $J$. A $\gamma < 1$ inside the learner is then a
#   bias-variance knob (an effective horizon of about $1/(1-\gamma)$ steps): it lowers the
#   variance, and the estimate is *biased* for $\nabla J$, a bias that no amount of data
#   removes.
#
# There is a second catch. Differentiating $J_\gamma$ with the same log-derivative steps gives
# $$\nabla_\theta J_\gamma = \mathbb E\Big[\sum_t \gamma^t\, \hat Q^\gamma_t\,
#   \nabla_\theta \log \pi_\theta(a_t \mid s_t)\Big]$$
# (Sutton & Barto, section 13.3): a decision taken at time $t$ only affects $J_\gamma$ through
# rewards already discounted by $\gamma^t$. The estimator used in practice,
# $\sum_t \hat Q^\gamma_t \nabla \log \pi(a_t \mid s_t)$, drops that $\gamma^t$. It works well, but
# it is not the gradient of $J_\gamma$, and in general not the gradient of any objective (Nota
# & Thomas, 2020). Only plain Monte-Carlo REINFORCE with $\gamma = 1$, with or without a state
# baseline, is an unbiased estimate of the gradient of the undiscounted return; discounting, a
# learned critic that bootstraps (notebook 06) and GAE with $\lambda < 1$ all add bias. Below
# both reward-to-go and discounting are measured on the toy MDP.
#
# ### Exercise 3: reward-to-go
# Complete `reward_to_go(rewards, gamma)`: `rewards` is a `[B, T]` tensor, one episode per row
# (padded with zeros after its end); return the `[B, T]` tensor with
# $G_{b,t} = \sum_{t' \ge t} \gamma^{t'-t}\,$`rewards[b, t']`. With `gamma = 1` it is the
# plain reward-to-go.

# %%
def reward_to_go(rewards, gamma):
    """G[:, t] = rewards[:, t] + gamma * G[:, t + 1], backwards in time; [B, T] -> [B, T]."""
    ### BEGIN SOLUTION
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, t] + gamma * running
        out[:, t] = running
    return out
    ### END SOLUTION


reward_to_go = check("pg.reward_to_go", reward_to_go)

# %% [markdown]
# First the causality argument, exactly: the contribution of the first reward $r_0(a_0)$ to
# the score of the *second* action has expectation zero, summed over all 8 trajectories.

# %%
step1 = torch.zeros_like(traj_all.rewards)
step1[:, 1] = traj_all.rewards[:, 0]  # weight r_0 on the score of a_1 only
past_term = pg.gradient_moments(pg.per_sample_gradients(theta, traj_all, step1, score_function),
                                p_all).mean
print(f"max |E[r_0 * grad log pi(a_1 | s_1)]| over the 6 parameters = "
      f"{float(past_term.abs().max()):.1e}")
assert float(past_term.abs().max()) < 1e-12

# %% [markdown]
# Now the estimators side by side. For each one we compute the mean and the total variance
# (the trace of the covariance of a one-episode estimate) **exactly**, by enumeration, then
# check them against the exact gradient: the bias, and the mean squared error of an average
# over a batch of 16 episodes, $\text{MSE} = \|\text{bias}\|^2 + \mathrm{tr}\,\mathrm{Cov}/16$,
# which we also measure on 2,000 sampled batches. The last row uses a state-dependent
# baseline, the subject of section 5.

# %%
V_exact = pg.state_values(theta, mdp)  # V(start) = J, V(s1) for the two middle states


def estimator_weights(traj, kind):
    """Per-step weights [M, 2] of each estimator."""
    G = reward_to_go(traj.rewards, 1.0)
    return {"full return R(τ)": traj.rewards.sum(dim=1, keepdim=True).expand(-1, 2),
            "reward-to-go": G,
            "discounted, γ=0.5": reward_to_go(traj.rewards, 0.5),
            "reward-to-go − V(s_t)": G - V_exact[traj.states]}[kind]


kinds = ["full return R(τ)", "reward-to-go", "discounted, γ=0.5", "reward-to-go − V(s_t)"]
mc_batches = pg.sample_trajectories(theta, mdp, 2000 * 16, gen)
table = {}
for kind in kinds:
    exact = pg.gradient_moments(
        pg.per_sample_gradients(theta, traj_all, estimator_weights(traj_all, kind),
                                score_function), p_all)
    per_ep = pg.per_sample_gradients(theta, mc_batches, estimator_weights(mc_batches, kind),
                                     score_function)
    batch_means = per_ep.reshape(2000, 16, -1).mean(dim=1)
    mse_mc = float(((batch_means - g_exact.flatten()) ** 2).sum(dim=1).mean())
    bias2 = float(((exact.mean - g_exact) ** 2).sum())
    table[kind] = dict(var=exact.total_variance, bias=bias2 ** 0.5,
                       mse=bias2 + exact.total_variance / 16, mse_mc=mse_mc)
    print(f"{kind:24s} variance {exact.total_variance:7.3f} | bias {bias2 ** 0.5:.4f} | "
          f"MSE of a 16-episode mean: predicted {table[kind]['mse']:.4f}, measured {mse_mc:.4f}")

var_full, var_rtg = table["full return R(τ)"]["var"], table["reward-to-go"]["var"]
var_v = table["reward-to-go − V(s_t)"]["var"]
print(f"the state baseline V(s_t) divides the variance of reward-to-go by {var_rtg / var_v:.1f}")
assert var_full > var_rtg > table["discounted, γ=0.5"]["var"]
assert table["reward-to-go"]["bias"] < 1e-12 and table["reward-to-go − V(s_t)"]["bias"] < 1e-12
assert table["discounted, γ=0.5"]["bias"] > 0.05
assert var_v < var_rtg / 5
for kind in kinds:
    assert abs(table[kind]["mse_mc"] / table[kind]["mse"] - 1) < 0.15

# %%
fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
short = ["R(τ)", "reward-to-go", "discounted 0.5", "RTG − V(s)"]
ax[0].bar(short, [table[k]["var"] for k in kinds], color=["C0", "C0", "C3", "C2"])
ax[0].set(ylabel="total variance of one-episode estimate", title="variance (exact)")
ax[1].bar(short, [table[k]["mse"] for k in kinds], color=["C0", "C0", "C3", "C2"],
          label="predicted: bias² + var/16")
ax[1].plot(short, [table[k]["mse_mc"] for k in kinds], "ko", label="measured, 2000 batches")
ax[1].set(ylabel="squared error vs exact gradient", title="error of a 16-episode average")
ax[1].legend()
for a in ax:
    a.tick_params(axis="x", labelrotation=15)
plt.show()

# %% [markdown]
# Discounting does cut the variance, but its error does not shrink with more data: with a
# large enough batch the unbiased estimators win. The state-dependent baseline is by far the
# largest reduction here.
#
# The missing $\gamma^t$, exactly: on the toy MDP, autograd through the enumerated
# $J_\gamma = \sum_\tau p_\theta(\tau)\,(r_1 + \gamma r_2)$ gives $\nabla J_\gamma$. The
# expectation of the usual discounted estimator misses it; weighting step $t$ by $\gamma^t$ hits
# it.

# %%
gamma_toy = 0.5
th = theta.clone().requires_grad_(True)
p_th = traj_all.p_env * pg.policy_log_prob(th, traj_all).exp()
discount = gamma_toy ** torch.arange(2, dtype=torch.float64)  # gamma^t for t = 0, 1
g_discounted_J = torch.autograd.grad((p_th * (traj_all.rewards * discount).sum(dim=1)).sum(),
                                     th)[0]
G_gamma = reward_to_go(traj_all.rewards, gamma_toy)
expected = {name: pg.gradient_moments(pg.per_sample_gradients(theta, traj_all, w, score_function),
                                      p_all).mean
            for name, w in (("usual", G_gamma), ("with gamma^t", G_gamma * discount))}
gap = {name: float((m - g_discounted_J).norm()) for name, m in expected.items()}
print(f"|E[usual estimator] - grad J_gamma| = {gap['usual']:.4f}; "
      f"|E[gamma^t-weighted estimator] - grad J_gamma| = {gap['with gamma^t']:.1e}; "
      f"|E[usual estimator] - grad J (undiscounted)| = {table['discounted, γ=0.5']['bias']:.4f}")
assert gap["with gamma^t"] < 1e-12 and gap["usual"] > 0.01

# ## 5. Baselines
#
# **The zero-mean lemma.** For any state $s$,
# $$\mathbb E_{a \sim \pi_\theta(\cdot \mid s)}\big[\nabla_\theta \log \pi_\theta(a \mid s)\big]
#   = \sum_a \pi_\theta(a \mid s) \frac{\nabla_\theta \pi_\theta(a \mid s)}{\pi_\theta(a \mid s)}
#   = \nabla_\theta \sum_a \pi_\theta(a \mid s) = \nabla_\theta 1 = 0.$$
# So for any $b(s_t)$ that does not depend on the action $a_t$,
# $\mathbb E[b(s_t) \nabla \log \pi(a_t \mid s_t)] = \mathbb E\big[b(s_t)\,
# \mathbb E_{a_t}[\nabla \log \pi(a_t \mid s_t)]\big] = 0$: subtracting a **baseline** leaves
# the expected gradient unchanged,
# $$\nabla_\theta J = \mathbb E\Big[\sum_t \big(\hat Q_t - b(s_t)\big)\,
#   \nabla_\theta \log \pi_\theta(a_t \mid s_t)\Big].$$
# It can still change the *variance* a lot, because a sample's gradient is scaled by
# $\hat Q_t - b$ instead of $\hat Q_t$. Checked numerically: the score's mean, exactly over the
# actions and by Monte Carlo.

# %%
logits_check = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0]], dtype=torch.float64)
pi_check = torch.softmax(logits_check, dim=-1)
every_action = torch.stack([score_function(logits_check, torch.full((2,), a))
                            for a in range(3)], dim=1)  # [2 states, 3 actions, 3 logits]
exact_mean = (pi_check[:, :, None] * every_action).sum(dim=1)
draws = torch.multinomial(pi_check, 100_000, replacement=True, generator=gen)  # [2, 100000]
mc_scores = score_function(logits_check[:, None, :].expand(2, 100_000, 3), draws)
mc_z = float((mc_scores.mean(1) / (mc_scores.std(1) / 100_000 ** 0.5)).abs().max())
print(f"max |E[score]| summed exactly over the actions: {float(exact_mean.abs().max()):.1e}; "
      f"Monte Carlo (100,000 draws per state): within {mc_z:.1f} SE of 0")
assert float(exact_mean.abs().max()) < 1e-15 and mc_z < 4.5

# %% [markdown]
# **Which constant is best?** For a constant baseline $c$ the estimator is $(R - c)\, g$ with
# $g = \nabla \log p_\theta(\tau)$. This is a *control variate*: we subtract $c\,Y$ from
# $X = R\,g$ where $Y = g$ has known mean 0. The variance-minimising coefficient is
# $c^* = \mathrm{Cov}(X, Y)/\mathrm{Var}(Y)$, which here (summing over the components of $g$)
# becomes
# $$c^* = \frac{\mathbb E\big[\|g\|^2 R\big]}{\mathbb E\big[\|g\|^2\big]},$$
# a return average weighted by the squared score norm, close to but not equal to
# $\mathbb E[R]$. The variance is a parabola in $c$, so a *bad* $c$ makes things worse: at
# $c = 2c^*$ it is back to the no-baseline variance, and beyond that it is higher.
# Two separate facts, then: a baseline is *allowed* because it leaves the expectation unchanged
# ($\mathbb E[\nabla\log\pi] = 0$), and it *helps* only when $c$ is near $c^*$.
#
# ### Exercise 4: the optimal constant baseline
# Complete `optimal_baseline(scores, returns)`: `scores` has shape `[N, ...]` (one score vector
# $g_n$ per sample, any trailing shape: flatten it), `returns` shape `[N]`; return the scalar
# $c^* = \sum_n \|g_n\|^2 R_n / \sum_n \|g_n\|^2$.

# %%
def optimal_baseline(scores, returns):
    """sum_n |g_n|^2 R_n / sum_n |g_n|^2; scores [N, ...], returns [N] -> scalar."""
    ### BEGIN SOLUTION
    sq = scores.reshape(scores.shape[0], -1).pow(2).sum(dim=1)
    return (sq * returns).sum() / sq.sum()
    ### END SOLUTION


optimal_baseline = check("pg.optimal_baseline", optimal_baseline)

# %%
ones = torch.ones_like(sample.rewards)
scores_mc = pg.per_sample_gradients(theta, sample, ones, score_function)  # g per episode
c_star = float(optimal_baseline(scores_mc, sample.rewards.sum(dim=1)))
scores_all = pg.per_sample_gradients(theta, traj_all, torch.ones_like(traj_all.rewards),
                                     score_function)
R_all = traj_all.rewards.sum(dim=1)


def variance_with(c):
    """Exact total variance of (R - c) g, by enumeration."""
    return pg.gradient_moments(scores_all * (R_all - c)[:, None, None], p_all).total_variance


cs = np.linspace(-1.0, 10.0, 221)
curve = np.array([variance_with(c) for c in cs])
c_best = cs[curve.argmin()]
mean_R = float((p_all * R_all).sum())
print(f"c* from {n_mc} samples = {c_star:.3f}; exact minimiser on the grid = {c_best:.3f}; "
      f"E[R] = {mean_R:.3f}")
print(f"variance: no baseline {variance_with(0):.2f}, c = E[R] {variance_with(mean_R):.3f}, "
      f"c* {variance_with(c_star):.3f}, c = 2c* {variance_with(2 * c_star):.2f}, "
      f"c = 3c* {variance_with(3 * c_star):.2f}")
assert abs(c_star - c_best) < 0.15
assert variance_with(c_star) < variance_with(mean_R) < variance_with(0) / 10
assert variance_with(3 * c_star) > variance_with(0)

fig, ax = plt.subplots(figsize=(7, 3.8))
ax.plot(cs, curve, label="exact variance of (R − c) g")
ax.axhline(variance_with(0), color="gray", ls=":", label="no baseline (c = 0)")
ax.axvline(c_star, color="C2", ls="--", label=f"c* = {c_star:.2f} from optimal_baseline")
ax.axvline(mean_R, color="C1", ls=":", label=f"E[R] = {mean_R:.2f}")
ax.set(xlabel="constant baseline c", ylabel="total variance", yscale="log",
       title="a baseline helps only when it is well chosen")
ax.legend(fontsize=9)
plt.show()

# %% [markdown]
# ### The advantage form
# The best baselines depend on the state. With $b(s_t) = V^\pi(s_t)$ and $\hat Q_t$ a
# one-sample estimate of $Q^\pi(s_t, a_t)$, the weight $\hat Q_t - V^\pi(s_t)$ is an estimate of
# the **advantage** $A^\pi(s_t, a_t) = Q^\pi(s_t, a_t) - V^\pi(s_t)$, and in expectation
# $$\nabla_\theta J = \mathbb E\Big[\sum_t \nabla_\theta \log \pi_\theta(a_t \mid s_t)\,
#   A^\pi(s_t, a_t)\Big].$$
# The sign now says "better or worse than this policy usually does from here", which is what
# the update needs. It is the last row of the variance table above: the exact $V$ divided the
# variance of reward-to-go by the factor printed under the table.
#
# Note what is an estimate and what is a function. $\hat Q_t - V^\pi(s_t)$ is a one-sample
# *estimate* of $A^\pi(s_t, a_t)$, unbiased only because $\hat Q_t$ is the reward-to-go and the
# baseline is $V^\pi(s_t)$; $R(\tau) - b$ also carries the rewards paid before $t$ and is a much
# noisier estimate. And the road from $R(\tau)$ to the advantage form took two steps, each
# proved above: causality (section 4) removes the past rewards, and the zero-mean lemma allows
# the baseline.
#
# ### The always-positive-reward pathology
# Without a baseline, if every reward is positive, every sampled action gets its probability
# pushed *up*. With few samples, an action that happened not to be drawn loses probability even
# if it is the best one: its logit gets $-\pi(k)\sum_n w_n < 0$ from the score's $-\pi$ term.
# Only the *expected* update favours the best action; single updates favour whatever was
# sampled, and a policy can get locked into a bad arm. A 3-armed bandit with mean rewards
# 4, 5, 6 (noise 1), batches of 2 pulls, SGD with learning rate 0.1, 2,000 runs in parallel.
# The baseline is leave-one-out: each sample is compared with the other sample of its batch
# (unbiased, since the other sample does not depend on this action).

# %%
arm_means = torch.tensor([4.0, 5.0, 6.0])
bandit = dict(n_runs=2000, n_updates=200, batch_size=2, lr=0.1, noise_std=1.0,
              score_fn=score_function)
runs = {b: pg.bandit_reinforce(arm_means, baseline=b, **bandit,
                               generator=torch.Generator().manual_seed(1))
        for b in ("none", "leave_one_out")}
# after the first update: how often did the best arm lose probability?
first = {b: float((h[1, :, 2] < h[0, :, 2]).double().mean()) for b, h in runs.items()}
missed = float((1 - 1 / 3) ** 2)  # P(best arm not among 2 uniform draws)
final = {b: float(h[-1, :, 2].mean()) for b, h in runs.items()}
locked = {b: float((h[-1, :, :2] > 0.9).any(dim=-1).double().mean()) for b, h in runs.items()}
print(f"the best arm is missed by both draws of the first batch with probability {missed:.0%}")
for b in runs:
    print(f"{b:14s} P(best) fell after the first update in {first[b]:.0%} of runs | after 200 "
          f"updates: mean P(best) {final[b]:.3f}, runs locked on a worse arm (P > 0.9) "
          f"{locked[b]:.1%}")
assert first["none"] >= missed - 0.03  # every batch that misses the best arm lowers it
assert locked["none"] > 0.03 and locked["leave_one_out"] == 0.0
assert final["leave_one_out"] > final["none"] + 0.05

# %%
fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
for b, h in runs.items():
    ax[0].plot(h[:, :, 2].mean(dim=1).numpy(), label=f"baseline: {b}")
ax[0].set(xlabel="update", ylabel="mean P(best arm) over 2000 runs", title="learning")
ax[0].legend()
bins = np.linspace(0, 1, 21)
for b, h in runs.items():
    ax[1].hist(h[-1, :, 2].numpy(), bins=bins, alpha=0.6, label=f"baseline: {b}")
ax[1].set(xlabel="P(best arm) after 200 updates", ylabel="runs", yscale="log",
          title="where the runs end up")
ax[1].legend()
plt.show()

# %% [markdown]
# ## 6. REINFORCE with a learned baseline on CartPole
#
# In a real environment $V^\pi$ is unknown, so we learn it: a second network $V_\phi(s)$
# regressed on the reward-to-go targets, $\min_\phi \frac12 \mathbb E[(V_\phi(s_t) - \hat Q_t)^2]$.
# `pg.train` puts the pieces together:
#
# 1. reset 8 CartPole copies (a numpy-vectorised env) and run them, with one batched policy
#    call per step, until every copy has finished its first episode; keep exactly that episode
#    from each copy (`pg.collect_episodes`). A copy that finishes early starts another episode
#    while it waits for the slowest; those steps are thrown away but still counted as env
#    steps. (Gymnasium's next-step autoreset also inserts one fake step after each episode end,
#    which the `StepMask` flags and we drop.)
# 2. pad the episodes into `[B, T]` tensors with a mask; compute the reward-to-go with
#    $\gamma = 0.99$ using your `reward_to_go` (for an episode cut by the 500-step time limit,
#    $\gamma V_\phi$ of the final observation is added to the last reward: the episode did not
#    end, so we bootstrap; a terminated episode gets nothing);
# 3. advantages $\hat Q_t - V_\phi(s_t)$, normalised to mean 0 and std 1 over the real steps;
# 4. one Adam step (lr $10^{-2}$, gradient norm clipped at 1) on your `reinforce_loss`, and
#    5 Adam steps on the value loss.
#
# You build step 1 in Exercise 5 and steps 2 to 4 in Exercise 6, and `pg.train` then runs
# your code.
#
# **Step 1: a batch must be a fair sample of episodes.** The estimator is an average over
# episodes drawn from $p_\theta(\tau)$, so the rule that decides which episodes enter the batch
# must not look at their lengths. A tempting rule does: run the copies until each has finished
# one episode, and keep *every* episode finished by then. A copy whose first episode was short
# has time for a second and a third short one before the slowest copy ends, while a long
# episode is kept at most once, so short episodes are over-represented (the *inspection
# paradox*), and so is whatever the policy does in them. Keeping the first $k$ episodes of every
# copy, decided in advance, is fair: each copy's episodes are independent draws from
# $p_\theta$. Simulated with episode lengths drawn from a geometric distribution with mean 22
# (about what a random CartPole policy gives), 8 copies, one autoreset step between episodes:

# %%
rng = np.random.default_rng(0)
lengths = rng.geometric(1 / 22, size=(4000, 8, 200))  # batches, copies, consecutive episodes
ends = np.cumsum(lengths + 1, axis=2) - 1  # the step at which each episode ends
slowest = ends[:, :, 0].max(axis=1)  # the slowest copy's first episode ends here
mean_first = float(lengths[:, :, 0].mean())
mean_all_finished = float(lengths[ends <= slowest[:, None, None]].mean())
print(f"true mean length 22 | first episode of every copy: {mean_first:.1f} | every episode "
      f"finished when the slowest copy's first one ends: {mean_all_finished:.1f}")
assert abs(mean_first - 22) < 0.3 and mean_all_finished < 22 * 0.85

# %% [markdown]
# ### Exercise 5: collect a fair batch (REINFORCE, stage 1 of 2)
# Build step 1 yourself. `collect_episodes(envs, act, episodes_per_env)` gets a seeded vector
# env, a function `act(obs)` (observations `[N, obs_dim]` to sampled actions `[N]`) and the
# number $k$ of episodes each copy must contribute. The contract, which lets the check replay
# your loop step for step against the package's on the same seeds:
#
# * reset once with `envs.reset()` (no seed: the envs are seeded already), then call
#   `act(obs)` exactly once per vector step, on the observations the envs just returned;
# * `valid = mask.step(terminated, truncated)` with a `deeprl.StepMask(N)` (False on the
#   autoreset step after an episode end);
# * `keep`: the valid steps of each copy's first $k$ episodes; a copy has finished an episode
#   on a kept step that terminated or truncated;
# * stop as soon as every copy has finished $k$ episodes, and return a dict of arrays stacked
#   over time, `[T, N]` (`obs`, `next_obs`: `[T, N, obs_dim]`) with the keys `obs`, `actions`,
#   `rewards`, `terminated`, `truncated`, `valid`, `keep` and `next_obs` (the observation
#   returned by the step).

# %%
def collect_episodes(envs, act, episodes_per_env):
    """Dict of [T, N] arrays (obs and next_obs [T, N, obs_dim]); keys as listed above."""
    ### BEGIN SOLUTION
    n = envs.num_envs
    obs, _ = envs.reset()
    mask, finished = deeprl.StepMask(n), np.zeros(n, dtype=int)
    keys = ("obs", "actions", "rewards", "terminated", "truncated", "valid", "keep", "next_obs")
    out = {key: [] for key in keys}
    while (finished < episodes_per_env).any():
        actions = np.asarray(act(obs))
        next_obs, r, te, tu, _ = envs.step(actions)
        valid = mask.step(te, tu)
        keep = valid & (finished < episodes_per_env)
        finished += (te | tu) & keep
        for key, v in zip(keys, (obs, actions, r, te, tu, valid, keep, next_obs)):
            out[key].append(np.asarray(v))
        obs = next_obs
    return {key: np.stack(v) for key, v in out.items()}
    ### END SOLUTION


collect_episodes = check("pg.collect_episodes", collect_episodes)

# %% [markdown]
# Your loop on 8 CartPole copies with uniformly random actions: how many steps each copy
# spent on its kept episode, and how many real steps it took in all while waiting for the
# slowest. The package's version follows; `pg.train` runs yours below.

# %%
demo_envs = deeprl.make_vec_env("CartPole-v1", 8, seed=0)
demo = collect_episodes(demo_envs, lambda o: demo_envs.action_space.sample(), 1)
demo_envs.close()
print(f"{demo['rewards'].shape[0]} vector steps; kept steps per copy: "
      f"{demo['keep'].sum(axis=0).tolist()}; valid steps per copy: "
      f"{demo['valid'].sum(axis=0).tolist()}")
assert (demo["keep"].sum(axis=0) >= 1).all() and demo["keep"].sum() < demo["valid"].sum()

# %%
print(show_source(pg.collect_episodes))

# %% [markdown]
# **Step 3: normalising uses a baseline that contains the sample itself.** Subtracting the batch
# mean of the advantages (or of the returns) is a batch-constant baseline, but unlike the
# leave-one-out baseline of the bandit it includes the sample it is subtracted from, so it
# depends on that sample's action. That makes the estimate slightly biased, by a term of order
# $1/B$. On the bandit the expectation can be enumerated over every batch of arms: with the
# batch mean, the expected update is exactly $(B-1)/B$ times the true gradient (shrunk, same
# direction); with leave-one-out it is exact. Dividing by the batch standard deviation is a
# data-dependent step size that also depends on the sample itself. With $B = 8$ episodes and
# hundreds of steps per batch the effect is small, and `pg.train` accepts it for the stable
# scale of its updates.

# %%
z_bandit = torch.tensor([0.5, 0.0, -0.5], dtype=torch.float64)
pi_bandit = torch.softmax(z_bandit, dim=-1)
mu = arm_means.double()
grad_J = pi_bandit * (mu - (pi_bandit * mu).sum())  # exact gradient of sum_a pi_a mu_a
for B in (2, 4, 8):
    arms = torch.cartesian_prod(*[torch.arange(3)] * B)  # every batch of B arms, [3^B, B]
    p_batch = pi_bandit[arms].prod(dim=1)
    r = mu[arms]  # the noise is independent of the arm, so it averages out exactly
    sc = score_function(z_bandit.expand(*arms.shape, 3), arms)  # [3^B, B, 3]
    for name, b in (("batch mean", r.mean(dim=1, keepdim=True)),
                    ("leave-one-out", (r.sum(dim=1, keepdim=True) - r) / (B - 1))):
        update = (p_batch[:, None] * ((r - b)[..., None] * sc).mean(dim=1)).sum(dim=0)
        ratio = float(update @ grad_J / (grad_J @ grad_J))
        err = float((update - ratio * grad_J).norm())
        print(f"B = {B}, {name:13s}: E[update] = {ratio:.4f} x true gradient (residual {err:.0e})")
        assert err < 1e-12
        assert abs(ratio - ((B - 1) / B if name == "batch mean" else 1.0)) < 1e-12

# %% [markdown]
# ### Exercise 6: one REINFORCE update (stage 2 of 2)
# Now steps 2 to 4 as one function, `reinforce_update(policy, value, optimizers, batch, cfg)`.
# `batch` is a `pg.EpisodeBatch` (your episodes, cut and padded by the package): `obs`
# `[E, L, obs_dim]`, `actions`, `rewards`, `mask` `[E, L]`, `truncated` `[E]` and `final_obs`
# `[E, obs_dim]` (the observation after the last step). `optimizers` is the pair (the
# policy's, the value network's); `cfg` is a `pg.Config`. In this order:
#
# 1. for the truncated episodes, add $\gamma V_\phi$(`final_obs`) to the last real reward
#    (`pg.bootstrap_truncated`; computed without gradient);
# 2. returns: your `reward_to_go` with `cfg.gamma`, times the mask;
# 3. weights: the returns minus $V_\phi(s_t)$ computed **without gradient** if
#    `cfg.baseline == "value"` (else the returns), then `advantages.normalize(weights, mask)`
#    if `cfg.normalize_advantages`;
# 4. the policy step: your `reinforce_loss` on the log-probabilities of the batch's actions
#    (a `torch.distributions.Categorical` of the policy's logits), then `zero_grad`,
#    `backward`, `torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)`
#    (keep the norm it returns) and `step`;
# 5. the value steps (only with the value baseline): `cfg.value_steps` times `zero_grad`,
#    `backward`, `step` on $\frac12$ `masked_mean((V(s_t) - returns)**2, mask)`.
#
# Return a dict of floats for the log: `policy_loss`, `value_loss` (the last value step's, 0
# without a baseline), `entropy` (the policy's, `masked_mean` over the real steps) and
# `grad_norm`. The check applies your update and the package's to copies of the same networks,
# optimisers and batch, in six scenarios (plain SGD so that every scale shows, truncated
# episodes, stale gradients, clipping, three Adam steps), and names the first that differs.

# %%
from rlcourse.advantages import masked_mean, normalize


def reinforce_update(policy, value, optimizers, batch, cfg):
    """One policy step and cfg.value_steps value steps on `batch`; returns a dict of floats."""
    ### BEGIN SOLUTION
    opt_pi, opt_v = optimizers
    rewards = batch.rewards
    if bool(batch.truncated.any()):
        with torch.no_grad():
            v_final = value(batch.final_obs).squeeze(-1)
        rewards = pg.bootstrap_truncated(rewards, batch.mask, batch.truncated, v_final, cfg.gamma)
    returns = reward_to_go(rewards, cfg.gamma) * batch.mask
    weights = returns
    if cfg.baseline == "value":
        with torch.no_grad():
            weights = returns - value(batch.obs).squeeze(-1)
    if cfg.normalize_advantages:
        weights = normalize(weights, batch.mask)
    dist = torch.distributions.Categorical(logits=policy(batch.obs))
    loss_pi = reinforce_loss(dist.log_prob(batch.actions), weights, batch.mask)
    opt_pi.zero_grad()
    loss_pi.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
    opt_pi.step()
    loss_v = torch.zeros(())
    for _ in range(cfg.value_steps if cfg.baseline == "value" else 0):
        loss_v = 0.5 * masked_mean((value(batch.obs).squeeze(-1) - returns) ** 2, batch.mask)
        opt_v.zero_grad()
        loss_v.backward()
        opt_v.step()
    return {"policy_loss": float(loss_pi.detach()), "value_loss": float(loss_v.detach()),
            "entropy": float(masked_mean(dist.entropy().detach(), batch.mask)),
            "grad_norm": float(grad_norm)}
    ### END SOLUTION


reinforce_update = check("pg.reinforce_update", reinforce_update)

# %% [markdown]
# The package's version, which your function now replaces in `pg.train`. (If you skipped the
# exercise, `reinforce_update` is this function, and the cell below also hands it your
# `reward_to_go` and `reinforce_loss`, so that your earlier exercises still drive the training.)

# %%
print(show_source(pg.update))
if reinforce_update is pg.update:
    reinforce_update = functools.partial(pg.update, returns_fn=reward_to_go,
                                         loss_fn=reinforce_loss)

# %% [markdown]
# **γ.** CartPole is episodic, and what we report is the undiscounted return. So
# $\gamma = 0.99$ here is the bias-variance knob of section 4 (an effective horizon of about 100
# steps), not part of the task; with it, and without the $\gamma^t$ factor as is usual, the
# update is knowingly a biased estimate of $\nabla J$. The bootstrap at the time limit uses the
# learned $V_\phi$, another small bias. Training stops when the mean return of the last 20
# episodes reaches 475 ("solved"). Three seeds of `pg.train` running your code
# (`collect_fn=collect_episodes`, `update_fn=reinforce_update`; the package's own versions are
# the defaults, and give the same runs bit for bit), and for comparison three seeds of plain
# REINFORCE (reward-to-go, no baseline, no normalisation) with a budget of 60,000 steps.

# %%
# The networks are tiny, so the CPU is faster than a GPU here; pg.train(device="cuda") runs the
# same code on a GPU.
results = {"value baseline": [], "no baseline": []}
for seed in range(3):
    results["value baseline"].append(pg.train(seed=seed, collect_fn=collect_episodes,
                                              update_fn=reinforce_update))
    results["no baseline"].append(pg.train(seed=seed, collect_fn=collect_episodes,
                                           update_fn=reinforce_update, baseline="none",
                                           normalize_advantages=False, total_steps=60_000))
episodes = {k: [pg.episodes_to_solve(r.episode_returns, 475.0) for r in v]
            for k, v in results.items()}
for k, v in results.items():
    for r, n in zip(v, episodes[k]):
        print(f"{k:14s} seed {r.seed}: " + (f"solved after {n} episodes, {r.steps_to_solve:,} "
              f"steps, {r.seconds_to_solve:.1f} s" if n else
              f"not solved in {r.total_steps:,} steps (last 20 episodes: "
              f"{np.mean(r.episode_returns[-20:]):.0f})"))

# %%
fig, ax = plt.subplots(figsize=(8, 4))
for color, (k, v) in zip(("C2", "C0"), results.items()):
    for i, r in enumerate(v):
        ax.plot(moving_average(np.array(r.episode_returns), 20), color=color, alpha=0.8,
                label=k if i == 0 else None)
ax.axhline(475, color="gray", ls=":", label="solved (mean of 20 ≥ 475)")
ax.set(xlabel="episode", ylabel="return (mean of the last 20)",
       title="REINFORCE on CartPole-v1, 3 seeds each")
ax.legend()
plt.show()

# %% [markdown]
# Every training run stops once solved, so "solved" is judged on sampled actions. The claim
# that matters is that the *greedy* policy is good too: 100 fresh episodes per seed.

# %%
eval_returns = [float(deeprl.evaluate("CartPole-v1", r.act, episodes=100, seed=10_000 + r.seed,
                                      device="cpu").mean())
                for r in results["value baseline"]]
n_solve = episodes["value baseline"]
median_episodes = int(np.median(n_solve))
print(f"value baseline: solved after {n_solve} episodes (median {median_episodes}); greedy "
      f"evaluation over 100 episodes: {[round(x, 1) for x in eval_returns]}")
assert all(n is not None and n <= 400 for n in n_solve)
assert min(eval_returns) >= 400
none_solved = sum(n is not None for n in episodes["no baseline"])
print(f"no baseline: {none_solved} of 3 runs solved within 60,000 steps")
assert none_solved < 3

# %% [markdown]
# **Benchmark.** `python -m rlcourse.bench reinforce --seeds 10` trains the same defaults on
# seeds 0-9 and evaluates each greedy policy on 100 fresh episodes; `make bench` stores the
# result in `results/bench/`, read here:

# %%
bench = rlcourse.results.load_bench("reinforce", "CartPole-v1")
bench_steps = [r["steps_to_solve"] for r in bench["seeds"] if r["solved"]]
print(f"benchmark, seeds 0-{len(bench['seeds']) - 1}: {len(bench_steps)}/{len(bench['seeds'])} "
      f"solved, env steps to solve {min(bench_steps) / 1e3:.1f}k to {max(bench_steps) / 1e3:.1f}k"
      f" (median {bench['median_steps_to_solve'] / 1e3:.1f}k); greedy 100-episode evaluation "
      f"at least {min(r['eval_mean_return'] for r in bench['seeds']):.0f}")

# %% [markdown]
# Those env steps include the steps thrown away while copies wait for the slowest one (step
# 1), so they compare fairly with the other algorithms of the course, which use every step.
# Plain REINFORCE, without a baseline and without normalisation, solved fewer of its three runs
# within its 60,000-step budget (printed above): the learned $V(s)$ and the normalisation make
# the gradient estimate of a batch of 8 episodes quiet enough to be reliable.
#
# ## 7. Looking ahead: reusing samples from an older policy
#
# REINFORCE is on-policy: the expectation is over trajectories of the *current* $\pi_\theta$,
# so each batch is used for one step and thrown away. To reuse samples drawn with an older
# $\pi_{\theta'}$, reweight by the trajectory probability ratio. The dynamics cancel in it, just
# as they dropped out of the gradient:
# $$\frac{p_\theta(\tau)}{p_{\theta'}(\tau)} = \prod_t
#   \frac{\pi_\theta(a_t \mid s_t)}{\pi_{\theta'}(a_t \mid s_t)},\qquad
#   J(\theta) = \mathbb E_{\tau \sim p_{\theta'}}\Big[\frac{p_\theta(\tau)}{p_{\theta'}(\tau)}
#   R(\tau)\Big].$$
# Per step, $P_\theta(s_t, a_t) = \pi_\theta(a_t \mid s_t)\, d_\theta(s_t)$, where $d_\theta$ is
# the policy's state distribution. PPO (notebook 07) keeps the ratio of
# **action probabilities given the state**, $\pi_\theta(a_t \mid s_t)/\pi_{\theta'}(a_t \mid s_t)$,
# weights the advantages of the *old* policy $A^{\theta'}$ (the samples come from $\theta'$), and
# drops $d_\theta(s_t)/d_{\theta'}(s_t)$: an approximation that is good when the policies are close,
# not an identity. (A common way to get this ratio wrong is discussed in notebook 07.)
#
# On the toy MDP, exactly: the ratio of trajectory probabilities equals the product of policy
# ratios, and the reweighted average of $R$ under the old policy is the new policy's $J$.

# %%
theta_new = theta + torch.tensor([[0.5, -0.1], [0.0, 0.3], [0.2, 0.2]], dtype=torch.float64)
p_new = traj_all.p_env * pg.policy_log_prob(theta_new, traj_all).exp()
ratio = (pg.policy_log_prob(theta_new, traj_all) - pg.policy_log_prob(theta, traj_all)).exp()
J_is = float((p_all * ratio * R_all).sum())
J_new = float(pg.exact_objective(theta_new, mdp))
print(f"max |p_new/p_old - prod pi_new/pi_old| = {float((p_new / p_all - ratio).abs().max()):.1e}"
      f"; importance-weighted J = {J_is:.4f}, exact J(theta_new) = {J_new:.4f}")
assert abs(J_is - J_new) < 1e-12

# %% [markdown]
# ## Common misconceptions
#
# * "Reward-to-go works because rewards close to an action matter more", or reward-to-go and
#   discounting taught as one step. Reward-to-go is exact: rewards paid before $a_t$ have zero
#   expected contribution to its score term. Discounting is a separate, biased choice. Both are
#   measured in section 4. <!-- E-47 -->
# * "Subtracting a correlated variable always reduces the variance if $c$ is tuned." Only a
#   suitable $c$ helps: $c^* = \mathrm{Cov}/\mathrm{Var}$ is best, and beyond $2c^*$ the variance
#   is larger than with no baseline. A baseline is allowed at all because
#   $\mathbb E[\nabla \log\pi] = 0$ (section 5). <!-- E-40 -->
# * "$R(\tau^n) - b$ is the advantage function." It is a noisy advantage *estimate*, unbiased for
#   $A^\pi(s_t, a_t)$ only with reward-to-go and $b = V^\pi(s_t)$ (section 5, the advantage
#   form). <!-- E-57 -->
# * "Replace $R(\tau)$ by $A(s_t, a_t)$ to reduce variance", with nothing in between. Two proved
#   steps make it legal: causality (section 4) and the zero-mean baseline lemma (section 5); the
#   result is $\mathbb E_\tau[\sum_t A^\pi(s_t, a_t)\nabla\log\pi(a_t \mid s_t)]$, an expectation
#   over the policy's own trajectories. <!-- E-19 -->
# * "Keep every episode the envs have finished" when filling a batch. That over-represents short
#   episodes; keep a number of episodes per env fixed in advance (section 6, step 1).
#
# ## What to remember
#
# * Objective $J(\theta) = \mathbb E_{\tau\sim p_\theta}[R(\tau)]$; the log-derivative trick gives
#   $\nabla J = \mathbb E[R(\tau)\sum_t \nabla\log\pi_\theta(a_t \mid s_t)]$, and the dynamics drop out.
# * Softmax score: $\nabla_z \log\pi(a) = \mathrm{onehot}(a) - \pi$; its mean under $\pi$ is 0.
# * REINFORCE in code: minimise $-\frac1B\sum_{b,t} w_{b,t}\log\pi(a_{b,t} \mid s_{b,t})$ with the
#   weights detached and padding masked; the loss value is not a performance measure.
# * Reward-to-go $\hat Q_t = \sum_{t'\ge t} r_{t'+1}$ is unbiased (causality) and less noisy.
# * A baseline $b(s_t)$ that does not depend on $a_t$ keeps the estimate unbiased; the best constant
#   is $c^* = \mathbb E[\|g\|^2R]/\mathbb E[\|g\|^2]$, and a bad one adds variance.
# * $\hat Q_t - V(s_t)$ estimates the advantage; a learned $V_\phi$ is regressed on $\hat Q_t$.
# * $\gamma$: part of the problem in continuing tasks; on episodic benchmarks a bias-variance knob,
#   biased for the undiscounted return. The true $\nabla J_\gamma$ has a $\gamma^t$ factor that
#   practice drops.
# * Only Monte-Carlo REINFORCE with $\gamma = 1$ (and a state baseline) is unbiased for $\nabla J$;
#   discounting, bootstrapping critics, GAE with $\lambda<1$ and batch normalisation (an $O(1/B)$
#   term) add bias.
# * A batch must not depend on episode lengths: keep a fixed number of episodes per env.
# * With positive rewards and no baseline, unsampled actions lose probability; small batches can
#   lock in a bad action.
# * REINFORCE is on-policy: one gradient step per batch; reuse needs the ratio
#   $\pi_\theta(a \mid s)/\pi_{\theta'}(a \mid s)$ (notebook 07).
#
# ## Further reading
#
# * Sutton & Barto (2018), *Reinforcement Learning: An Introduction*, 2nd ed., chapter 13: the
#   policy-gradient theorem, REINFORCE with baseline, and (section 13.3) where $\gamma^t$ enters.
# * Williams (1992), "Simple statistical gradient-following algorithms for connectionist
#   reinforcement learning": the original REINFORCE and its baseline.
# * Greensmith, Bartlett & Baxter (2004), "Variance reduction techniques for gradient estimates
#   in reinforcement learning": baselines as control variates and the optimal baseline.
# * Nota & Thomas (2020), "Is the policy gradient a gradient?": why the usual discounted
#   estimator without $\gamma^t$ is not the gradient of any objective in general.
#
# ## Interview questions
#
# 1. Why can't you train a policy by backpropagating the reward through the environment, and
#    what does the score-function estimator need instead?
#
# <details><summary>Answer</summary>
#
# The environment is a black box (a simulator or the real world) with no gradient, and
# discrete sampled actions make the return piecewise constant in the weights (zero gradient
# almost everywhere). The score-function estimator only needs samples of trajectories and
# $\nabla_\theta \log \pi_\theta(a \mid s)$ of our own policy: it differentiates the
# *expected* return, which is smooth, through the probabilities of the trajectories.
# </details>
#
# 2. Why do the environment's dynamics not appear in the policy gradient?
#
# <details><summary>Answer</summary>
#
# $\log p_\theta(\tau) = \log\rho_0(s_0) + \sum_t \log\pi_\theta(a_t \mid s_t) + \sum_t
# \log P(s_{t+1} \mid s_t, a_t)$. Only the policy terms depend on $\theta$, so the gradient of
# the others is zero. The dynamics still shape *which* trajectories are sampled; they just
# need not be known or differentiated. (If the dynamics were known and differentiable, a
# pathwise gradient would be possible and often has lower variance.)
# </details>
#
# 3. Why are policy-based methods natural for continuous or stochastic actions?
#
# <details><summary>Answer</summary>
#
# They output a distribution directly (e.g. a Gaussian's mean and std), sample from it and only
# need $\nabla \log \pi$; there is no $\max_a Q(s, a)$ to solve over a continuous action space
# at every step. They can also represent genuinely stochastic optimal policies (e.g. in
# partially observed or adversarial settings), which a greedy argmax cannot.
# </details>
#
# 4. Reward-to-go and discounting both reduce variance. Are they the same idea?
#
# <details><summary>Answer</summary>
#
# No. Reward-to-go removes rewards received *before* $a_t$ from its weight; those terms have
# expectation zero (causality plus $\mathbb E[\nabla\log\pi] = 0$), so it is unbiased.
# Discounting down-weights *later* rewards; that changes the quantity being estimated, so it
# is biased for the undiscounted objective (section 4 measures the bias on the toy MDP, and it
# does not shrink with more data). It is a bias-variance trade-off, not a correction. And the
# usual discounted estimator, without a $\gamma^t$ factor, is not the gradient of the discounted
# objective either.
# </details>
#
# 5. Why does a baseline not bias the gradient? May it depend on the action?
#
# <details><summary>Answer</summary>
#
# $\mathbb E_{a\sim\pi}[b(s)\nabla\log\pi(a \mid s)] = b(s)\nabla\sum_a\pi(a \mid s) = 0$. The
# argument needs $b$ to be independent of $a_t$ given $s_t$; it may depend on the state and on
# anything in the past. An action-dependent baseline is biased unless its expected
# contribution is added back analytically.
# </details>
#
# 6. Does subtracting a baseline always reduce the variance?
#
# <details><summary>Answer</summary>
#
# No. The variance is a parabola in a constant $c$ with minimum at
# $c^* = \mathbb E[\|g\|^2R]/\mathbb E[\|g\|^2]$ (the control-variate $\mathrm{Cov}/\mathrm{Var}$).
# At $c = 2c^*$ the variance equals the no-baseline variance, and beyond it is larger. In
# practice $c \approx \mathbb E[R]$ or a learned $V(s)$ is close enough.
# </details>
#
# 7. Why use the advantage instead of the return? Is $G_t - b$ the advantage?
#
# <details><summary>Answer</summary>
#
# $A^\pi(s, a) = Q^\pi(s, a) - V^\pi(s)$ measures whether the action was better than the
# policy's average from that state, so it has the right sign and a much smaller magnitude than
# a raw return (lower variance, the same expected gradient). $G_t - b$ is only an *estimate*
# of it: unbiased when $G_t$ is the reward-to-go and $b = V^\pi(s_t)$, and still noisy
# because $G_t$ is a single sample; with a learned $V_\phi$ it is also slightly off.
# </details>
#
# 8. All your rewards are positive (e.g. +1 per step in CartPole). What goes wrong without a
#    baseline?
#
# <details><summary>Answer</summary>
#
# Every sampled action is reinforced, and actions not in the batch lose probability through
# the softmax normalisation, whatever their value. The expected update is still right, but
# with small batches the noise dominates and runs can lock into a bad action (on the bandit
# above, a share of the runs without a baseline and none with the leave-one-out baseline). A
# baseline makes the weights positive for better-than-usual and negative for worse-than-usual
# actions.
# </details>
#
# 9. The REINFORCE loss went up during training. Is the policy getting worse?
#
# <details><summary>Answer</summary>
#
# Not necessarily. The surrogate $-\frac1B\sum w\log\pi$ is not an objective whose value
# tracks performance: its weights change with every batch (and are normalised), and only its
# gradient at the current $\theta$ means something. Monitor episode returns (and entropy).
# </details>
#
# 10. Why can REINFORCE not take many gradient steps on the same batch, and how do you fix it?
#
# <details><summary>Answer</summary>
#
# The gradient formula is an expectation over trajectories of the current policy; after one
# step the batch comes from a different (older) policy, and reusing it without correction is
# biased. Importance weights $\pi_\theta(a_t \mid s_t)/\pi_{\theta_\text{old}}(a_t \mid s_t)$
# correct the action distribution; with the state-distribution ratio dropped this is the
# surrogate of TRPO/PPO, which also keep the new policy close to the old one (notebook 07).
# </details>

# %%
var_ratio = var_rtg / var_v
rlcourse.results.record(
    "05_policy_gradients",
    title="Policy gradients: REINFORCE and baselines",
    topics="log-derivative trick, exact vs MC gradient, reward-to-go, baselines, c*, "
           "positive-reward pathology, REINFORCE on CartPole",
    headline=(f"REINFORCE + value baseline solves CartPole-v1 in {median_episodes} episodes "
              f"(median of seeds 0-2, all <= 400; greedy eval >= {min(eval_returns):.0f}); "
              f"score-function gradient within {z:.1f} SE of exact; V(s) baseline cuts the "
              f"gradient variance {var_ratio:.0f}x; keeping every finished episode would bias "
              f"batch lengths to {mean_all_finished:.1f} vs 22"),
    metrics={"median_episodes_to_solve": median_episodes, "max_episodes_to_solve": max(n_solve),
             "min_greedy_eval": min(eval_returns), "score_z": z,
             "var_full": var_full, "var_rtg": var_rtg, "var_rtg_minus_v": var_v,
             "discount_bias": table["discounted, γ=0.5"]["bias"], "c_star": c_star,
             "bandit_locked_none": locked["none"], "bandit_locked_loo": locked["leave_one_out"],
             "no_baseline_solved_of_3": none_solved,
             "mean_length_first_episode": mean_first,
             "mean_length_all_finished_rule": mean_all_finished},
)
print(f"total time {session.elapsed():.1f} s")
