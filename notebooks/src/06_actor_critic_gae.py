# %% [markdown]
# # 06 · Actor-critic and GAE
#
# REINFORCE (notebook 05) weights every log-probability by a whole Monte-Carlo return, which
# (with $\gamma = 1$) is an unbiased but noisy estimate of the policy gradient. An
# **actor-critic** method learns a second network, the *critic*
# $V_\phi(s)$, and uses it twice: as a baseline, and to *bootstrap* (to replace the rest of a
# return by an estimate). This notebook builds the estimators that sit between "one TD error"
# and "the whole return" (n-step returns and GAE), gets the episode-end masks right, and
# trains A2C on CartPole.
#
# **Learning goals.** After this notebook you can
# 1. write the policy gradient with the advantage $A^\pi(s,a)$ and explain why the TD error
#    $\delta_t$ is a one-sample estimate of it;
# 2. compute TD errors, n-step returns and GAE on a batch `[B, T]` with terminal and
#    truncation masks, and prove the telescoping identity and the two limits of GAE
#    ($\lambda=0$: TD, $\lambda=1$: Monte Carlo) numerically;
# 3. reproduce the worked example W-01 (returns 2.8 / 2 / 0, GAE for four values of $\lambda$);
# 4. compare the three critic targets (Monte-Carlo return, TD(0) target, $\lambda$-return) by
#    their bias and variance;
# 5. write the A2C loss (actor, critic, entropy) with the right `detach`es and train A2C on
#    vector environments until CartPole is solved;
# 6. explain why a time-limit truncation must be bootstrapped, and measure the bias of a
#    CartPole critic that treats truncation as termination;
# 7. run a $\lambda$ sweep and read it against the bias-variance picture.
#
# **Conventions.** Arrays are aligned by step: `rewards[:, t]` is the reward that follows
# `actions[:, t]` (the theory's $r_{t+1}$; here we write $r_t$ to match the code),
# `values[:, t]` $=V(s_t)$ and `next_values[:, t]` $=V(s_{t+1})$. Everything is a padded
# `[batch, time]` tensor, the layout of `rlcourse.advantages` that Part III reuses for
# language models; a vector-env rollout `[T, N]` is transposed to `[N, T]`.

# %%
import functools
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import rlcourse
import rlcourse.results
from rlcourse import actor_critic, advantages, deeprl
from rlcourse.exercises import check, show_source
from rlcourse.plotting import plot_curves
from tqdm.auto import tqdm

session = rlcourse.setup(seed=0)
cpu_start = time.process_time()

# %% [markdown]
# ## 1. From REINFORCE to actor-critic
#
# Notebook 05 ended with the policy gradient with a baseline $b(s_t)$:
# $$\nabla_\theta J = \mathbb E_\pi\Big[\sum_t \nabla_\theta\log\pi_\theta(a_t\mid s_t)\,
#   \big(G_t - b(s_t)\big)\Big].$$
# The baseline adds no bias because $\mathbb E_{a\sim\pi}[\nabla\log\pi(a\mid s)]\,b(s) = 0$.
# Choose $b(s_t)=V^\pi(s_t)$, and note that $G_t$ is a one-sample estimate of
# $Q^\pi(s_t,a_t)$ (take the expectation over what follows $a_t$). Then the weight is an
# estimate of the **advantage** $A^\pi(s,a) = Q^\pi(s,a) - V^\pi(s)$:
# $$\nabla_\theta J = \mathbb E_\pi\Big[\sum_t \nabla_\theta\log\pi_\theta(a_t\mid s_t)\,
#   A^\pi(s_t,a_t)\Big].$$
# Why $A$ rather than $G$: $A$ says whether $a_t$ was *better than the policy's average* in
# $s_t$. In a state where every action earns a high return, $G_t$ pushes up whatever was
# sampled; $A$ is zero on average there, so only the *relative* quality of actions moves the
# policy, and the variance drops.
#
# **Which objective, and what $\gamma$ does.** The task defines the objective. In MDP theory
# (notebook 02) and in continuing tasks, $\gamma$ is part of the problem: the objective is the
# discounted return $J_\gamma$. On an episodic benchmark such as CartPole the quantity we
# report and care about is the *undiscounted* episode return; a $\gamma < 1$ inside the learner
# (the course uses 0.99) is then a bias-variance knob with an effective horizon of about
# $1/(1-\gamma)$ steps, and every estimator that uses it is biased for the undiscounted
# objective. Even for $J_\gamma$, the usual estimator $\sum_t \hat A_t\,\nabla_\theta\log
# \pi_\theta(a_t\mid s_t)$, with discounted returns or advantages $\hat A_t$, is not its
# gradient: the true gradient of $J_\gamma$ weights step $t$ by an extra factor $\gamma^t$ (Sutton and Barto,
# §13.3; Nota and Thomas, 2020), which practice drops. Dropping it works well, but the update
# is then in general not the gradient of any objective. Only plain Monte-Carlo REINFORCE with
# $\gamma = 1$ (optionally with a state baseline) is an unbiased estimate of the gradient of
# the undiscounted return; discounting, a learned critic (bootstrapping) and GAE with
# $\lambda < 1$ each add bias, in exchange for less variance.
#
# We do not know $A^\pi$. An actor-critic learns $V_\phi\approx V^\pi$ and uses the
# **TD error**
# $$\delta_t = r_t + \gamma\,V(s_{t+1}) - V(s_t).$$
# It compares the one-step target $r_t+\gamma V(s_{t+1})$ with the current estimate
# $V(s_t)$; $\gamma$ discounts only the *next* value, and the current estimate is not
# discounted. If $V = V^\pi$ exactly, $\mathbb E[\delta_t\mid s_t,a_t] = Q^\pi(s_t,a_t) - V^\pi(s_t) =
# A^\pi(s_t,a_t)$: the TD error is an unbiased, low-variance (one reward) sample of the
# advantage. With an imperfect critic it is biased, and the rest of this notebook is about
# trading that bias against variance.
#
# ### Exercise 1: TD errors
# Complete `td_errors` for tensors of shape `[B, T]`. `terminated[:, t]` says that $s_{t+1}$
# is terminal: its value is 0 whatever the critic says about that observation.

# %%
def td_errors(rewards, values, next_values, terminated, gamma):
    """TD errors [B, T] from rewards, V(s_t), V(s_{t+1}), terminated (all [B, T]) and gamma."""
    ### BEGIN SOLUTION
    alive = 1.0 - terminated.to(rewards.dtype)
    return rewards + gamma * alive * next_values - values
    ### END SOLUTION


td_errors = check("actor_critic.td_errors", td_errors)

# %% [markdown]
# **The worked example W-01.** One episode with $\gamma=0.9$: rewards $1, 2, 0$, critic
# values $V(s_1..s_3) = 1.5, 2.0, 0.5$, and the episode terminates after the third step, so
# $V(s_4)=0$. The TD errors are
# $\delta_1 = 1 + 0.9\cdot2.0 - 1.5 = 1.3$, $\delta_2 = 2 + 0.9\cdot0.5 - 2.0 = 0.45$ and
# $\delta_3 = 0 + 0 - 0.5 = -0.5$.

# %%
W01 = dict(rewards=torch.tensor([[1.0, 2.0, 0.0]]), values=torch.tensor([[1.5, 2.0, 0.5]]),
           next_values=torch.tensor([[2.0, 0.5, 0.0]]),
           terminated=torch.tensor([[False, False, True]]))
delta_w01 = td_errors(**W01, gamma=0.9)
print(f"TD errors: {np.round(delta_w01[0].tolist(), 4)}")
assert torch.allclose(delta_w01, torch.tensor([[1.3, 0.45, -0.5]]))

# %% [markdown]
# ## 2. n-step returns
#
# Between one TD error and a whole return there is a family of targets. The **n-step return**
# sums $n$ real rewards and then bootstraps:
# $$G_t^{(n)} = r_t + \gamma r_{t+1} + \dots + \gamma^{n-1} r_{t+n-1} + \gamma^n V(s_{t+n}).$$
# In a rollout the window can be shorter: it stops after $m\le n$ steps when the episode ends
# or the rollout runs out. At a termination nothing is bootstrapped; at a truncation or at the
# rollout's end we bootstrap with $V$ of the state reached. So
# $G_t^{(n)} = \sum_{k<m}\gamma^k r_{t+k} + \gamma^m\,(1-\text{terminated}_{t+m-1})\,
# V(s_{t+m})$, with $V(s_{t+m})$ = `next_values[:, t+m-1]`.
#
# The n-step advantage telescopes into TD errors (add and subtract $\gamma^k V(s_{t+k})$):
# $$G_t^{(n)} - V(s_t) = \sum_{k=0}^{m-1}\gamma^k\,\delta_{t+k}.$$
# Large $n$: more real rewards (less reliance on $V$, less bias, more variance). Small $n$:
# the opposite. $n=1$ is the TD(0) target; $n\ge T$ is the Monte-Carlo return (bootstrapped
# only where the data stops).
#
# ### Exercise 2: n-step returns
# Complete `n_step_returns(rewards, next_values, terminated, dones, gamma, n)` for `[B, T]`
# tensors. `dones[:, t]` marks the last step of an episode for any reason (terminated or
# truncated); it stops the window. A double loop over `t` and `k` is fine.

# %%
def n_step_returns(rewards, next_values, terminated, dones, gamma, n):
    """G_t^(n) for every t, shape [B, T] (see the formula above)."""
    ### BEGIN SOLUTION
    B, T = rewards.shape
    out = torch.zeros_like(rewards)
    zero = torch.zeros_like(rewards[:, 0])
    for t in range(T):
        acc = torch.zeros_like(rewards[:, 0])
        open_ = torch.ones(B, dtype=torch.bool)  # windows that have not stopped yet
        for k in range(min(n, T - t)):
            i = t + k
            acc = acc + torch.where(open_, gamma ** k * rewards[:, i], zero)
            stop = open_ & (dones[:, i] | (k == n - 1) | (i == T - 1))
            boot = torch.where(terminated[:, i], zero, gamma ** (k + 1) * next_values[:, i])
            acc = acc + torch.where(stop, boot, zero)
            open_ = open_ & ~stop
        out[:, t] = acc
    return out
    ### END SOLUTION


n_step_returns = check("actor_critic.n_step_returns", n_step_returns)

# %% [markdown]
# Check the telescoping identity and the two ends of the family on random data with
# terminations and truncations (values are consistent in time: `next_values[:, t]` =
# `values[:, t+1]`).

# %%
def random_batch(seed, B=6, T=40):
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(B, T, generator=g, dtype=torch.float64)
    v = torch.randn(B, T + 1, generator=g, dtype=torch.float64)
    term = torch.rand(B, T, generator=g) < 0.05
    trunc = (torch.rand(B, T, generator=g) < 0.05) & ~term
    return r, v[:, :-1], v[:, 1:], term, term | trunc


r, v, nv, term, done = random_batch(1)
delta = td_errors(r, v, nv, term, 0.9)
worst = 0.0
for n in (1, 3, 8):
    G = n_step_returns(r, nv, term, done, 0.9, n)
    tele = torch.zeros_like(r)  # sum_{k<m} gamma^k delta_{t+k}
    for t in range(r.shape[1]):
        open_ = torch.ones(r.shape[0], dtype=torch.bool)
        for k in range(min(n, r.shape[1] - t)):
            tele[:, t] += torch.where(open_, 0.9 ** k * delta[:, t + k], 0.0)
            open_ &= ~done[:, t + k]
    worst = max(worst, float((G - v - tele).abs().max()))
print(f"max |G^(n) - V - sum gamma^k delta| over n = 1, 3, 8: {worst:.1e}")
td_target = r + 0.9 * torch.where(term, 0.0, nv)
td_target_gap = float((n_step_returns(r, nv, term, done, 0.9, 1) - td_target).abs().max())
print(f"n = 1 vs the TD(0) target r + gamma V(s'):       {td_target_gap:.1e}")
assert worst < 1e-6 and td_target_gap < 1e-6

# %% [markdown]
# ## 3. Generalised advantage estimation (GAE)
#
# Instead of picking one $n$, GAE averages *all* n-step advantages with weights
# $(1-\lambda)\lambda^{n-1}$. Using the telescoped form, the average collapses to a
# discounted sum of TD errors:
# $$\hat A_t^{\text{GAE}(\gamma,\lambda)} = (1-\lambda)\sum_{n\ge1}\lambda^{n-1}
#   \sum_{k<n}\gamma^k\delta_{t+k} = \sum_{l\ge0}(\gamma\lambda)^l\,\delta_{t+l},$$
# which obeys the backward recursion
# $$\hat A_t = \delta_t + \gamma\lambda\,(1-\text{done}_t)\,\hat A_{t+1},
#   \qquad \hat A_T = 0 .$$
# * $\lambda=0$: $\hat A_t=\delta_t$, the TD(0) advantage (low variance, biased by $V$);
# * $\lambda=1$: $\hat A_t=\sum_l\gamma^l\delta_{t+l} = G_t - V(s_t)$, the Monte-Carlo
#   advantage (unbiased for the $\gamma$-discounted advantage, high variance);
# * the critic's target is the **$\lambda$-return** $\hat R_t = \hat A_t + V(s_t)$.
#
# Two masks, two jobs: `terminated` goes into $\delta_t$ (no bootstrap from a terminal state);
# `dones` (terminated *or* truncated) cuts the recursion so that advantages never leak from
# one episode into the next.
#
# **$\gamma$ and $\lambda$ have different jobs.** $\gamma$ fixes *which* return the values
# and advantages refer to (section 1: the objective on a continuing task, a horizon knob on
# CartPole). $\lambda$ only chooses *how to estimate* the advantage for that same $\gamma$,
# trading the critic's bias against the variance of many real rewards; with a perfect critic
# every $\lambda$ gives an unbiased advantage (section 4 measures this). The two meet only as
# the product $\gamma\lambda$ in the recursion. The recursion is also cheap: one backward pass,
# $O(T)$ per sequence, the same cost as computing the returns (measured below).
#
# ### Exercise 3: GAE
# Complete `gae` for `[B, T]` tensors. Use your `td_errors`, then one backward loop.

# %%
def gae(rewards, values, next_values, terminated, dones, gamma, lam):
    """GAE advantages [B, T]; inputs as in td_errors plus dones [B, T], gamma and lam."""
    ### BEGIN SOLUTION
    delta = td_errors(rewards, values, next_values, terminated, gamma)
    keep = 1.0 - dones.to(rewards.dtype)
    adv = torch.zeros_like(delta)
    running = torch.zeros_like(delta[:, 0])
    for t in range(delta.shape[1] - 1, -1, -1):
        running = delta[:, t] + gamma * lam * keep[:, t] * running
        adv[:, t] = running
    return adv
    ### END SOLUTION


gae = check("actor_critic.gae", gae)

# %% [markdown]
# ### W-01 reproduced
# The worked example computes discounted returns $G = (2.8, 2.0, 0.0)$ and Monte-Carlo
# advantages $G - V = (1.3, 0.0, -0.5)$. Each $G_t$ is a *one-sample estimate* of
# $Q^\pi(s_t,a_t)$ (section 1), not $Q^\pi$ itself: another episode from the same state and
# action would give another number. GAE must give the TD errors at $\lambda=0$ and exactly
# these advantages at $\lambda=1$. The example continues into PPO (notebook 07) with the
# probability ratios $\pi_\theta(a_t|s_t)/\pi_\text{old}(a_t|s_t)$ = 0.25/0.20, 0.55/0.50 and
# 0.20/0.30; the last one is exactly 2/3, so the surrogate term ratio $\times\,\hat A$ of
# step 3 is computed from the exact ratio (printed last).

# %%
dones_w01 = W01["terminated"]
G_w01 = advantages.discounted_returns(W01["rewards"], dones_w01, 0.9)
rows = {}
for lam in (0.0, 0.5, 0.95, 1.0):
    rows[lam] = gae(**W01, dones=dones_w01, gamma=0.9, lam=lam)[0]
print(f"returns G        : {np.round(G_w01[0].tolist(), 4)}")
print(f"G - V            : {np.round((G_w01 - W01['values'])[0].tolist(), 4)}")
print(f"{'lambda':>6} | {'A_1':>9} {'A_2':>9} {'A_3':>9} | lambda-return A + V")
for lam, a in rows.items():
    target = a + W01["values"][0]
    print(f"{lam:>6} | {a[0]:9.5f} {a[1]:9.5f} {a[2]:9.5f} | {np.round(target.tolist(), 4)}")

W01_EXPECTED = {0.0: [1.3, 0.45, -0.5], 0.5: [1.40125, 0.225, -0.5],
                0.95: [1.3192375, 0.0225, -0.5], 1.0: [1.3, 0.0, -0.5]}
assert torch.allclose(G_w01, torch.tensor([[2.8, 2.0, 0.0]]))
for lam, expected in W01_EXPECTED.items():
    assert torch.allclose(rows[lam], torch.tensor(expected), atol=1e-6), lam
assert torch.allclose(rows[1.0] + W01["values"][0], torch.tensor([2.8, 2.0, 0.0]))
ratio_3 = 0.20 / 0.30
surrogate_3 = ratio_3 * float(rows[1.0][2])
print(f"step 3: ratio {ratio_3:.6f} x advantage {float(rows[1.0][2]):.1f} = {surrogate_3:.6f} "
      f"(= -1/3; rounding the ratio to 0.667 first gives {0.667 * float(rows[1.0][2]):.4f})")
assert abs(surrogate_3 + 1 / 3) < 1e-6

# %% [markdown]
# The same two limits on a random batch with terminations *and* truncations: $\lambda=0$ is
# the TD error, and $\lambda=1$ plus $V$ is the n-step return with $n \ge T$ (Monte Carlo,
# bootstrapped where an episode was truncated or the rollout ends).

# %%
r, v, nv, term, done = random_batch(2)
gap_td = float((gae(r, v, nv, term, done, 0.97, 0.0) - td_errors(r, v, nv, term, 0.97))
               .abs().max())
gap_mc = float((gae(r, v, nv, term, done, 0.97, 1.0) + v
                - n_step_returns(r, nv, term, done, 0.97, r.shape[1])).abs().max())
print(f"lambda = 0: max |GAE - delta|            = {gap_td:.1e}")
print(f"lambda = 1: max |GAE + V - G^(T)|        = {gap_mc:.1e}")
assert gap_td < 1e-6 and gap_mc < 1e-6

# %% [markdown]
# **GAE costs one backward pass.** Time it against the explicit double sum
# $\sum_l(\gamma\lambda)^l\delta_{t+l}$ written as a $T\times T$ matrix product: the
# recursion grows linearly with $T$, the double sum quadratically.

# %%
def gae_by_matrix(delta, w):
    """sum_{l>=0} w^l delta_{t+l} (no episode ends) as one [T, T] matrix product: O(T^2)."""
    T = delta.shape[1]
    k = torch.arange(T, dtype=delta.dtype)
    weights = torch.triu(w ** (k[None, :] - k[:, None]).clamp_min(0))
    return delta @ weights.T


def best_time(fn, *args, repeats=3):
    """Smallest CPU time of a few calls fn(*args) (robust to other processes on the machine)."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn(*args)
        times.append(time.process_time() - t0)
    return min(times), out


lengths = [250, 500, 1000, 2000, 4000]
t_rec, t_mat = [], []
for T in lengths:
    d = torch.randn(8, T, dtype=torch.float64)
    zeros, no = torch.zeros_like(d), torch.zeros(8, T, dtype=torch.bool)
    # with V = 0 and gamma = 1 the TD errors are d itself
    secs, a_rec = best_time(gae, d, zeros, zeros, no, no, 1.0, 0.95)
    t_rec.append(secs)
    secs, a_mat = best_time(gae_by_matrix, d, 0.95)
    t_mat.append(secs)
    assert torch.allclose(a_rec, a_mat)
slope_rec = np.polyfit(np.log(lengths[1:]), np.log(t_rec[1:]), 1)[0]
slope_mat = np.polyfit(np.log(lengths[1:]), np.log(t_mat[1:]), 1)[0]
print(f"time ~ T^{slope_rec:.2f} (recursion) vs T^{slope_mat:.2f} (double sum); "
      f"T = 4000: {1e3 * t_rec[-1]:.0f} ms vs {1e3 * t_mat[-1]:.0f} ms")
fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.loglog(lengths, t_rec, "o-", label="backward recursion, O(T)")
ax.loglog(lengths, t_mat, "s-", label="explicit double sum, O(T²)")
ax.set_xlabel("sequence length T")
ax.set_ylabel("CPU seconds (8 sequences)")
ax.legend()
plt.show()
assert slope_rec < 1.5

# %% [markdown]
# ## 4. Three critic targets
#
# The critic is trained by regression, $\mathcal L^{V} = \tfrac12\,\mathbb E_t\big[(V_\phi(s_t)
# - \hat R_t)^2\big]$, on one of three targets:
#
# | target | formula | bias | variance |
# |---|---|---|---|
# | Monte-Carlo return | $G_t=\sum_k\gamma^k r_{t+k}$ | none | high: a sum of many random rewards |
# | TD(0) target | $r_t + \gamma V(s_{t+1})$ | inherits the critic's error at $s_{t+1}$ | low: one reward |
# | $\lambda$-return | $\hat A^{\text{GAE}}_t + V(s_t)$ | in between | in between |
#
# The TD target is *bootstrapped*: its label contains the critic's own estimate. That is why
# it has low variance and why it can be learned online from single steps, and also why its
# errors feed back into the labels. (Tabular TD(0) still converges; the bias comes only from
# bootstrapping on an imperfect $V$.)
#
# Measure the trade-off where the truth is known: a 50-step episode whose rewards are
# $1 + \mathcal N(0,1)$, so $V(s_t) = \sum_{k<50-t}\gamma^k$ exactly. Give the critic a fixed
# error per state (standard deviation $c$), draw 2000 episodes, and compute every target with
# your `gae`. Bias$^2$ and variance are averaged over the 50 states.

# %%
T_chain, M, gamma_c = 50, 2000, 0.99
t_c = torch.arange(T_chain, dtype=torch.float64)
V_true = (1 - gamma_c ** (T_chain - t_c)) / (1 - gamma_c)
gen = torch.Generator().manual_seed(0)
rewards_c = 1.0 + torch.randn(M, T_chain, generator=gen, dtype=torch.float64)
end_c = torch.zeros(M, T_chain, dtype=torch.bool)
end_c[:, -1] = True
state_noise = torch.randn(T_chain, generator=gen, dtype=torch.float64)
lams = [0.0, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 1.0]
sweep_c = {}
for c in (0.0, 0.5, 2.0, 8.0):
    V_hat = (V_true + c * state_noise).expand(M, T_chain)
    V_next = torch.cat([V_hat[:, 1:], torch.zeros(M, 1, dtype=torch.float64)], dim=1)
    stats = []
    for lam in lams:
        target = gae(rewards_c, V_hat, V_next, end_c, end_c, gamma_c, lam) + V_hat
        bias2 = float(((target.mean(0) - V_true) ** 2).mean())
        var = float(target.var(0).mean())
        stats.append((bias2, var))
    sweep_c[c] = np.array(stats)

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for c, s in sweep_c.items():
    axes[0].plot(lams, s[:, 0], "o-", label=f"critic error c = {c}")
    axes[1].plot(lams, s.sum(1), "o-", label=f"c = {c}")
axes[0].plot(lams, sweep_c[0.0][:, 1], "k--", label="variance (any c)")
axes[0].set_ylabel("bias² of the target")
axes[1].set_ylabel("mean squared error = bias² + variance")
for ax in axes:
    ax.set_xlabel("λ  (0: TD(0) target, 1: Monte-Carlo return)")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.legend(fontsize=9)
plt.show()

best_lam = {c: lams[int(np.argmin(s.sum(1)))] for c, s in sweep_c.items()}
print("variance of the target:  " + ", ".join(f"λ={l}: {v:.2f}" for l, v in
                                               zip(lams, sweep_c[0.0][:, 1])))
print("MSE-optimal λ by critic error: " + ", ".join(f"c={c}: {l}" for c, l in best_lam.items()))
assert max(sweep_c[0.0][:, 0]) < 0.01  # perfect critic: every λ is unbiased
assert sweep_c[0.0][-1, 1] > 10 * sweep_c[0.0][0, 1]  # MC variance >> TD(0) variance
assert best_lam[0.5] < best_lam[2.0] < best_lam[8.0]

# %% [markdown]
# With a perfect critic ($c=0$) every target is unbiased and the TD(0) target wins on
# variance. The worse the critic, the more real rewards the best target uses: the optimal
# $\lambda$ climbs with the critic's error (printed above). That is the rule of thumb "lower $\lambda$ when
# the critic is accurate, raise it when it is not (or when rewards are sparse, so that the
# critic learns slowly)". $\lambda=0.95$ is a *robust* default because early in training the
# critic is poor; it is not optimal for every problem.
#
# ## 5. The A2C loss
#
# A2C minimises, over the valid steps of a rollout,
# $$\mathcal L = \underbrace{-\,\overline{\hat A_t\,\log\pi_\theta(a_t\mid s_t)}}_{\text{actor}}
#   \;+\; c_V\,\underbrace{\tfrac12\,\overline{\big(V_\phi(s_t)-\hat R_t\big)^2}}_{\text{critic}}
#   \;-\; c_H\,\underbrace{\overline{\mathcal H\big(\pi_\theta(\cdot\mid s_t)\big)}}_{\text{entropy bonus}},$$
# where the bar is the mean over valid steps (`masked_mean`). Three details decide whether it
# works:
# * $\hat A_t$ and $\hat R_t$ are **constants**: they come from the critic, but the actor's
#   term must not send gradient into the critic through $\hat A_t$, and the critic is trained
#   by the semi-gradient of TD learning (no gradient through the bootstrapped target). Both
#   are labels: no gradient may flow back through them.
# * The signs: we want to *increase* $\hat A\log\pi$ and the entropy and *decrease* the
#   value error, all with one loss that the optimiser minimises.
# * The entropy bonus keeps the policy from collapsing onto one action too early. (The course
#   default on CartPole is $c_H = 0$; `actor_critic.train(ent_coef=0.01)` shows the effect.)
#
# ### Exercise 4: the A2C loss
# Complete `a2c_loss`. `logits` has shape `[..., n_actions]`, everything else `[...]` (here
# `[B, T]`), `mask` may be `None`. Return the loss and a dict of its three parts as floats.

# %%
from rlcourse.advantages import masked_mean


def a2c_loss(logits, actions, advantages, values, returns, mask=None, vf_coef=0.5,
             ent_coef=0.0):
    """(loss, {"policy_loss", "value_loss", "entropy"}) of A2C; means over `mask`."""
    ### BEGIN SOLUTION
    log_probs = torch.log_softmax(logits, dim=-1)
    logp = log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    entropy = masked_mean(-(log_probs.exp() * log_probs).sum(-1), mask)
    policy_loss = -masked_mean(logp * advantages.detach(), mask)
    value_loss = 0.5 * masked_mean((values - returns.detach()) ** 2, mask)
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
    parts = {"policy_loss": float(policy_loss.detach()),
             "value_loss": float(value_loss.detach()), "entropy": float(entropy.detach())}
    return loss, parts
    ### END SOLUTION


a2c_loss = check("actor_critic.a2c_loss", a2c_loss)

# %% [markdown]
# ## 6. A2C on CartPole
#
# **A2C** (advantage actor-critic) is the synchronous version of A3C: instead of many
# asynchronous workers it steps `num_envs` environments in lock-step (a vector env) and
# batches the policy calls.
#
# **Episode ends in a vector env.** CartPole-v1 ends in two ways. The pole falls:
# **termination**, a true terminal state with value 0. Or 500 steps pass: **truncation** by a
# time limit that is not part of the problem (the observation does not contain the time, and
# the pole could balance forever). After a truncation the right target still *bootstraps*,
# $r_t + \gamma V(s_{t+1})$, with $s_{t+1}$ the final observation. Gymnasium's vector envs use
# **next-step autoreset**: the step that ends an episode returns the true final observation,
# and the *next* `step` call resets that sub-env and returns the first observation of a new
# episode with reward 0. That extra step is not a transition; `deeprl.StepMask` marks it
# `valid = False`. So a rollout `[T, N]` carries three masks: `terminated` (no bootstrap),
# `dones` (cut the GAE recursion; also set on the autoreset steps) and `valid` (the loss
# averages over it).
#
# One A2C iteration:
#
# 1. **collect** `n_steps` steps in each of the `num_envs` envs with the sampled policy (a
#    rollout `[T, N]`) and its three masks;
# 2. evaluate the critic on the $T+1$ observations, transpose to `[N, T]`, and compute
#    $\hat A$ with GAE and the targets $\hat R = \hat A + V$;
# 3. normalise $\hat A$ over the valid steps, take **one** gradient step on the A2C loss
#    (gradient norm clipped), and throw the rollout away (on-policy).
#
# `actor_critic.train` does exactly that. The actor and critic are separate 2x64 tanh MLPs by
# default (`shared=True` gives one torso with two heads: fewer parameters, but the two losses
# then compete for the same features). The course defaults:

# %%
print(actor_critic.Config())

# %% [markdown]
# ### Exercise 5: one A2C update
# Write steps 2 and 3 of the iteration: `a2c_update(net, optimizer, ro, cfg)` takes one
# gradient step and returns the parts dict of your `a2c_loss`. The inputs:
#
# * `net`: an `actor_critic.ActorCritic`; `net(obs)` returns logits `[..., A]` and values
#   `[...]`;
# * `ro`: an `actor_critic.Rollout` of `[T, N]` tensors: `obs` `[T, N, obs_dim]`, `actions`,
#   `rewards`, `terminated` (no bootstrap), `dones` (cut the recursion: terminated, truncated
#   or an autoreset step), `valid`, and `last_obs` `[N, obs_dim]`, the observation after the
#   last step;
# * `optimizer` (use the one you are given) and `cfg`, an `actor_critic.Config` (`gamma`,
#   `lam`, `normalize_advantages`, `vf_coef`, `ent_coef`, `max_grad_norm`).
#
# The contract, so that the check can compare your step with the package's exactly: one
# forward pass of `net` on all $T+1$ observations (`torch.cat([ro.obs, ro.last_obs[None]])`),
# so that $V(s_{t+1})$ of the last step is $V$(`last_obs`); transpose every `[T, N]` tensor to
# `[N, T]` (`x.transpose(0, 1)`) and use `ro.valid` as the mask; advantages from your `gae`
# with `cfg.gamma` and `cfg.lam`, and the critic's targets $\hat R = \hat A + V(s_t)$ *before*
# normalising; normalise the advantages with `advantages.normalize(adv, mask)` if
# `cfg.normalize_advantages`; your `a2c_loss` with `cfg.vf_coef` and `cfg.ent_coef`; then
# `zero_grad`, `backward`, clip the gradient norm of all of `net`'s parameters at
# `cfg.max_grad_norm`, `step`. Which tensors may carry a gradient is for you to get right
# (section 5). The check runs your update and the package's on copies of the same network,
# optimiser and rollout in eight scenarios (plain SGD so that every scale shows, `vf_coef = 0`,
# an entropy bonus, truncations, stale gradients, clipping, three Adam steps) and says which
# part of the network moved differently.

# %%
def a2c_update(net, optimizer, ro, cfg):
    """One A2C gradient step on the rollout `ro` ([T, N] tensors); returns a2c_loss's parts."""
    ### BEGIN SOLUTION
    logits, values = net(torch.cat([ro.obs, ro.last_obs[None]]))  # [T+1, N, A], [T+1, N]
    bt = lambda x: x.transpose(0, 1)
    mask = bt(ro.valid).float()
    with torch.no_grad():
        v = values.detach()
        adv = gae(bt(ro.rewards), bt(v[:-1]), bt(v[1:]), bt(ro.terminated), bt(ro.dones),
                  cfg.gamma, cfg.lam)
        targets = adv + bt(v[:-1])
        if cfg.normalize_advantages:
            adv = advantages.normalize(adv, mask)
    loss, parts = a2c_loss(bt(logits[:-1]), bt(ro.actions), adv, bt(values[:-1]), targets,
                           mask, cfg.vf_coef, cfg.ent_coef)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
    optimizer.step()
    return parts
    ### END SOLUTION


a2c_update = check("actor_critic.a2c_update", a2c_update)

# %% [markdown]
# The package's version; from here on `actor_critic.train(update_fn=a2c_update)` trains with
# yours (with the default, the package's, the runs are the same bit for bit). If you skipped
# the exercise, `a2c_update` is this function, and the cell below also hands it your `gae` and
# `a2c_loss`, so that your earlier exercises still drive the training.

# %%
print(show_source(actor_critic.update))
if a2c_update is actor_critic.update:
    a2c_update = functools.partial(actor_critic.update, gae_fn=gae, loss_fn=a2c_loss)

# %%
solve_seeds = (0, 1, 2)
runs = {}
cpu_before_a2c = time.process_time()
for seed in tqdm(solve_seeds, desc="A2C seeds"):
    runs[seed] = actor_critic.train(seed=seed, update_fn=a2c_update, progress=False)
cpu_per_step = (time.process_time() - cpu_before_a2c) / sum(r.total_steps for r in runs.values())
for seed, res in runs.items():
    if res.solved:
        print(f"seed {seed}: solved after {res.steps_to_solve:,} env steps "
              f"({res.seconds_to_solve:.1f} s wall-clock)")
    else:
        print(f"seed {seed}: not solved in {res.total_steps:,} env steps (mean of the last 20 "
              f"episodes {np.mean(res.episode_returns[-20:]):.0f})")

# %% [markdown]
# "Solved" is judged during training on the last 20 episodes of the *sampled* policy; confirm
# it with a separate 100-episode evaluation of the *greedy* policy:

# %%
evals = {seed: deeprl.evaluate("CartPole-v1", res.act, episodes=100, seed=1000 + seed)
         for seed, res in runs.items()}
grid = np.linspace(0, max(r.total_steps for r in runs.values()), 200)
curves = {f"seed {s}": actor_critic.learning_curve(r, grid) for s, r in runs.items()}
ax = plot_curves(curves, x=grid, xlabel="environment steps (all sub-envs)",
                 ylabel="mean return of the last 20 episodes",
                 title="A2C on CartPole-v1 (training stops once solved)")
ax.axhline(475, color="k", ls="--", lw=1)
plt.show()
# An unsolved seed counts as infinitely slow, as in the benchmark's medians.
steps_solved = [runs[s].steps_to_solve if runs[s].solved else float("inf") for s in solve_seeds]
solved_seeds = [s for s in solve_seeds if runs[s].solved]
for s in solve_seeds:
    print(f"seed {s}: greedy evaluation {evals[s].mean():.1f} ± {evals[s].std():.1f} "
          f"over 100 episodes")
print(f"solved {len(solved_seeds)} of {len(solve_seeds)} seeds; median steps to solve "
      f"{np.median(steps_solved):,.0f}")
assert len(solved_seeds) >= 2 and np.median(steps_solved) <= 200_000
assert all(evals[s].mean() >= 450 for s in solved_seeds)

# %% [markdown]
# The assert above asks for two of the three seeds, not all three. A2C is the least reliable
# learner of Part II on CartPole: a seed can sit at a mean return of about 300 for a long time,
# and which seed does so changes with the floating-point details of the processor (the same
# code and seeds gave three solves on one machine and two on another). An unsolved seed counts
# as infinitely slow in the median, as in the benchmark.
#
# **Benchmark.** `python -m rlcourse.bench a2c --seeds 10` trains seeds 0-9 with these
# defaults and evaluates each greedy policy over 100 episodes; `make bench` stores the result,
# and the next cell reads it, together with the stored REINFORCE benchmark of notebook 05.

# %%
def bench_summary(algo):
    """One line on a stored CartPole benchmark; returns (line, median steps to solve)."""
    b = rlcourse.results.load_bench(algo, "CartPole-v1")
    steps = [r["steps_to_solve"] for r in b["seeds"] if r["solved"]]
    evals_b = [r["eval_mean_return"] for r in b["seeds"]]
    med = b["median_steps_to_solve"]
    line = (f"{algo:9s}: solved {len(steps)}/{len(b['seeds'])} seeds, median "
            + ("-" if med is None else f"{med / 1000:.1f}k")
            + (f" env steps (fastest {min(steps) / 1000:.0f}k, slowest {max(steps) / 1000:.0f}k)"
               if steps else " env steps")
            + f"; greedy evaluation {min(evals_b):.0f} to {max(evals_b):.0f}")
    return line, med


a2c_line, a2c_median = bench_summary("a2c")
pg_line, pg_median = bench_summary("reinforce")
a2c_cfg = actor_critic.Config()
print(a2c_line)
print(pg_line)
print(f"A2C: one gradient step per {a2c_cfg.num_envs * a2c_cfg.n_steps} env steps; this "
      f"notebook's runs used {1e6 * cpu_per_step:.0f} µs of CPU per env step")
if a2c_median and pg_median:
    print(f"REINFORCE / A2C median steps to solve: {pg_median / a2c_median:.2f}")
    assert 0.25 < pg_median / a2c_median < 4  # the same range, as the text says

# %% [markdown]
# Compare the two medians: plain REINFORCE with a fitted baseline is in the same range as A2C
# on CartPole, which its reputation for high variance would not suggest. Three reasons:
# * A2C takes *one* small gradient step per rollout of `num_envs` $\times$ `n_steps` env steps
#   (printed above) and throws the rollout away; it is not built to squeeze the most out of
#   each sample (PPO, notebook 07, reuses a batch for several epochs).
# * REINFORCE updates on batches of *whole* episodes with a fitted value baseline (notebook
#   05), so its returns contain no critic bias, and the baseline removes much of the variance.
# * CartPole is short-horizon and dense: every step pays +1, an episode lasts at most 500
#   steps, and $\gamma = 0.99$ limits the effective horizon to about 100 steps, so Monte-Carlo
#   returns are far less noisy than on long, sparse tasks, where bootstrapping pays off.
#
# The course's learning rate `lr=3e-3` was chosen for this setup; run a few seeds with
# `actor_critic.train(lr=...)` at other values to see how sensitive A2C is to it.

# %% [markdown]
# ## 7. Termination is not truncation: how much does it matter?
#
# What if we had treated CartPole's time limit as a terminal state? Let the seed-0 agent's
# greedy policy play 16 games side by side for three 500-step episodes each, and
# fit two fresh critics to the *same* data with $\lambda$-returns ($\gamma=0.99$,
# $\lambda=0.95$, your `gae`): one with the right masks, one that treats truncation as
# termination. This policy never drops the pole (its greedy evaluation above scored 500 in
# every episode), so its true value is $V^\pi(s)=\sum_k\gamma^k = 1/(1-\gamma) = 100$ in
# every state.

# %%
# 3 episodes of 500 steps plus the 2 autoreset steps between them
data = actor_critic.rollout(runs[solved_seeds[0]].act, "CartPole-v1", num_envs=16, n_steps=1502, seed=100,
                            greedy=True)
t_in_ep = actor_critic.time_in_episode(data)
ended = data.dones & data.valid
truncated_at = ended & ~data.terminated  # steps whose next observation is a truncated state
print(f"{int(data.valid.sum()):,} transitions, {int(ended.sum())} episode ends: "
      f"{int(data.terminated.sum())} terminations, {int(truncated_at.sum())} truncations")

critics = {
    "truncation bootstrapped (right)": data.terminated,
    "truncation = termination (wrong)": ended,
}
fitted = {name: actor_critic.fit_critic(data, mask, 0.99, 0.95, gae_fn=gae)
          for name, mask in critics.items()}

# %%
next_obs = torch.cat([data.obs[1:], data.last_obs[None]])
summary = {}
fig, ax = plt.subplots()
buckets = np.arange(0, 500, 25)
for name, critic in fitted.items():
    with torch.no_grad():
        V_s = critic(data.obs).squeeze(-1)
        V_final = critic(next_obs[truncated_at]).squeeze(-1)
    by_time = [float(V_s[data.valid & (t_in_ep >= b) & (t_in_ep < b + 25)].mean())
               for b in buckets]
    ax.plot(buckets + 12.5, by_time, "o-", label=name)
    summary[name] = {"all": float(V_s[data.valid].mean()), "final": float(V_final.mean())}
t_axis = np.arange(500)
ax.plot(t_axis, (1 - 0.99 ** (500 - t_axis)) / (1 - 0.99), "k:",
        label="return left before the time limit")
ax.axhline(100, color="k", ls="--", lw=1, label="1/(1-γ) = 100")
ax.set_xlabel("time step within the episode")
ax.set_ylabel("critic V(s), mean over states")
ax.set_ylim(0, 110)
ax.legend(loc="lower left")
plt.show()

right, wrong = summary.values()
bias_final = wrong["final"] - right["final"]
blind_average = float(np.mean((1 - 0.99 ** (500 - t_axis)) / (1 - 0.99)))
for name, s in summary.items():
    print(f"{name:34s}: V over all states {s['all']:6.1f}, at truncated states {s['final']:6.1f}")
print(f"bias at the truncated states: {bias_final:+.1f} ({bias_final / right['final']:+.0%}); "
      f"average of the dotted curve: {blind_average:.1f}")
assert int(data.terminated.sum()) == 0 and int(truncated_at.sum()) == 48
assert right["final"] > 90 and bias_final < -10

# %% [markdown]
# The right critic is close to the true 100 everywhere, including the states where the time
# limit hit. The wrong critic was told that a state at time $t$ is worth only the rewards left
# before the limit, the dotted curve, which falls to 1 at the last step. It cannot see the
# clock, and this policy's states look alike at every time, so it can only fit the *average*
# of the dotted curve (printed above): a systematic under-estimate (its size is the bias
# printed above), spread over the whole state space. In training the damage compounds: every advantage is computed
# against that wrong baseline, and the wrong values are bootstrapped into every other target.

# %% [markdown]
# ## 8. The λ sweep
#
# Which $\lambda$ works best for A2C on CartPole? Train every
# $\lambda\in\{0, 0.5, 0.9, 0.95, 1\}$ with two seeds on a small budget and compare the
# learning curves. In A2C $\lambda$ acts *inside* each rollout of `n_steps` steps: $\lambda=1$
# is the `n_steps`-step return, not a full-episode Monte-Carlo return.

# %%
sweep_lams = (0.0, 0.5, 0.9, 0.95, 1.0)
sweep_seeds = (0, 1)
budget = 50_000
grid_s = np.linspace(0, budget, 100)
sweep = {}
for lam in tqdm(sweep_lams, desc="λ sweep"):
    sweep[lam] = np.stack([
        actor_critic.learning_curve(
            actor_critic.train(seed=s, progress=False, update_fn=a2c_update, lam=lam,
                               total_steps=budget, stop_when_solved=False), grid_s)
        for s in sweep_seeds])
score = {lam: float(np.nanmean(c)) for lam, c in sweep.items()}  # mean over the budget

fig, axes = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [2, 1]})
plot_curves({f"λ = {lam}": c for lam, c in sweep.items()}, axes[0],
            x=grid_s, band="minmax", xlabel="environment steps",
            ylabel="mean return of the last 20 episodes")
axes[1].bar([str(l) for l in sweep_lams], [score[l] for l in sweep_lams])
axes[1].set_xlabel("λ")
axes[1].set_ylabel("average return over the budget")
plt.show()
best_sweep = max(score, key=score.get)
print("average return over training: " + ", ".join(f"λ={l}: {s:.0f}" for l, s in score.items()))
print(f"best λ = {best_sweep}")
assert score[0.95] > score[0.0] and score[0.9] > score[0.0]

# %% [markdown]
# Small $\lambda$ barely learns within this budget: early in training the critic is poor, and
# $\lambda=0$ advantages are built almost entirely from it (section 4: the bias of a TD
# target is the critic's error). From $\lambda=0.9$ up the runs learn quickly, and the
# ranking among 0.9, 0.95 and 1 is not something two seeds can settle (try other
# `sweep_seeds`). Note that with `n_steps = 16`, $\lambda=1$ is a 16-step return, not a
# full-episode Monte-Carlo return, so its variance stays moderate. $\lambda=0.95$ is a safe
# default here, not a proven optimum.

# %% [markdown]
# ## Common misconceptions
#
# * *"$\delta_t = r_t + \gamma\,(V(s_{t+1}) - V(s_t))$."* The discount multiplies only the
#   next value: $\delta_t = r_t + \gamma V(s_{t+1}) - V(s_t)$. The two differ by
#   $(1-\gamma)V(s_t)$, so they disagree whenever $\gamma<1$ and $V(s_t)\ne0$ (section 1,
#   W-01). <!-- E-42 -->
# * *"$\lambda$ is like the discount factor."* $\gamma$ decides which return the values refer
#   to; $\lambda$ only chooses how to estimate the advantage for that $\gamma$, trading critic
#   bias against variance, and every $\lambda$ is unbiased with a perfect critic. They meet
#   only as the product $\gamma\lambda$ (sections 3 and 4). <!-- E-04 -->
# * *"In W-01 the discounted return is $Q(s_t,a_t)$, and $0.667 \times (-0.5) = -0.3335$."*
#   $G_t$ is a one-sample *estimate* of $Q^\pi(s_t,a_t)$, and the step-3 ratio is exactly 2/3,
#   so its surrogate term is exactly $-1/3$ (section 3, W-01 reproduced). <!-- E-43 -->
# * *"Actor-critic with GAE follows the gradient of the return, only with less noise."*
#   A learned critic and $\lambda<1$ add bias, $\gamma<1$ biases the estimate for CartPole's
#   undiscounted return, and dropping the $\gamma^t$ factor means it is not the gradient of
#   the discounted objective either (section 1).
#
# ## What to remember
#
# * Policy gradient with a baseline $V(s_t)$: weight $\nabla\log\pi(a_t|s_t)$ by an advantage
#   estimate; the baseline adds no bias because $\mathbb E_a[\nabla\log\pi(a|s)] = 0$.
# * $\delta_t = r_t + \gamma(1-\text{terminated}_t)V(s_{t+1}) - V(s_t)$ estimates
#   $A^\pi(s_t,a_t)$ without bias only if $V = V^\pi$.
# * n-step return: $m\le n$ real rewards, then $\gamma^m V(s_{t+m})$ unless the window ended in
#   a termination; $G^{(n)}_t - V(s_t) = \sum_{k<m}\gamma^k\delta_{t+k}$.
# * GAE: $\hat A_t = \delta_t + \gamma\lambda(1-\text{done}_t)\hat A_{t+1}$, one backward
#   pass; $\lambda=0$ is TD, $\lambda=1$ is $G_t - V(s_t)$; critic target $\hat R_t = \hat A_t +
#   V(s_t)$.
# * Two masks: `terminated` removes the bootstrap, `dones` cuts the recursion; autoreset steps
#   are invalid and never enter a loss.
# * Truncation is not termination: bootstrap from the final observation; treating it as
#   terminal biased the CartPole critic downwards (section 7).
# * Critic targets: MC return (no bias, high variance), TD(0) (low variance, the critic's
#   bias), $\lambda$-return in between; the worse the critic, the larger the best $\lambda$.
# * A2C loss: actor $-\hat A\log\pi$ + $c_V\cdot\frac12(V-\hat R)^2$ $-$ $c_H\mathcal H$, with
#   $\hat A$ and $\hat R$ detached.
# * $\gamma$: part of the problem in MDP theory and continuing tasks; on episodic benchmarks
#   scored by the undiscounted return, $\gamma<1$ is a bias-variance knob. The usual estimator
#   omits the $\gamma^t$ factor, so it is not the gradient of $J_\gamma$ either.
# * Only Monte-Carlo REINFORCE with $\gamma=1$ (optionally with a baseline) is unbiased for
#   the undiscounted return; critic, $\lambda<1$ and $\gamma<1$ buy lower variance with bias.
#
# ## Further reading
#
# * Sutton & Barto (2018), *Reinforcement Learning: An Introduction*, 2nd ed., §13.3 (the
#   policy-gradient theorem for episodic tasks, with its $\gamma^t$) and §13.5 (actor-critic
#   methods); ch. 7 and 12 for n-step returns and $\lambda$-returns.
# * Mnih et al. (2016), "Asynchronous methods for deep reinforcement learning": A3C, the
#   asynchronous parent of A2C, with n-step advantages and an entropy bonus.
# * Schulman et al. (2016), "High-dimensional continuous control using generalized advantage
#   estimation": GAE, its bias-variance analysis and the roles of $\gamma$ and $\lambda$.
# * Nota & Thomas (2020), "Is the policy gradient a gradient?": why the estimator without
#   $\gamma^t$ is not the gradient of any objective in general.
#
# ## 9. Interview questions
#
# 1. Why does actor-critic use the advantage instead of the return, and why is the TD error
#    an estimate of the advantage?
#
# <details><summary>Answer</summary>
#
# Subtracting $V(s_t)$ is a baseline: it leaves the gradient unbiased
# ($\mathbb E_a[\nabla\log\pi(a|s)]=0$) and removes the part of the return that does not
# depend on the action, so the variance drops. With $V=V^\pi$,
# $\mathbb E[r_t+\gamma V(s_{t+1})\mid s_t,a_t]=Q^\pi(s_t,a_t)$, so
# $\mathbb E[\delta_t\mid s_t,a_t]=A^\pi(s_t,a_t)$: a one-reward, low-variance sample of the
# advantage (biased when $V$ is wrong).
# </details>
#
# 2. Write the TD error and the GAE recursion. What happens at $\lambda=0$ and $\lambda=1$?
#
# <details><summary>Answer</summary>
#
# $\delta_t=r_t+\gamma(1-\text{term}_t)V(s_{t+1})-V(s_t)$ ($\gamma$ on the next value only);
# $\hat A_t=\delta_t+\gamma\lambda(1-\text{done}_t)\hat A_{t+1}$, computed backwards.
# $\lambda=0$: $\hat A_t=\delta_t$ (TD, low variance, biased by $V$). $\lambda=1$:
# $\hat A_t=G_t-V(s_t)$ (Monte Carlo: unbiased for the $\gamma$-discounted advantage, high
# variance). W-01: $\lambda=0$ gives
# $(1.3, 0.45, -0.5)$, $\lambda=1$ gives $(1.3, 0, -0.5)$.
# </details>
#
# 3. How does $\lambda$ affect training, and how is it different from $\gamma$?
#
# <details><summary>Answer</summary>
#
# $\lambda$ trades bias (from the critic) against variance (from many random rewards) in the
# advantage and the critic's target, for a fixed $\gamma$. $\gamma$ decides which return the
# values refer to: on a continuing task (or in MDP theory) it is part of the objective; on an
# episodic benchmark scored by the undiscounted return, such as CartPole, $\gamma<1$ is
# itself a bias-variance (effective-horizon) knob of the learner. Lower $\lambda$ when the critic is accurate, raise it when the critic is
# poor or rewards are sparse; 0.95 is a robust default. On CartPole the sweep above found
# $\lambda=0$ clearly worse than $\lambda\ge0.9$.
# </details>
#
# 4. What is the difference between termination and truncation, and what goes wrong if you
#    treat a time limit as a terminal state?
#
# <details><summary>Answer</summary>
#
# Termination is a real end of the task (value 0 afterwards); truncation is an external cut.
# After a truncation the target must bootstrap with $V$ of the final observation. Treating it
# as terminal tells the critic that states reached late are worth only their last reward;
# since the state does not show the time, the critic under-estimates everywhere (section 7
# measured the bias at CartPole's truncated states). With next-step autoreset you also have to drop
# the reset step, which is not a transition.
# </details>
#
# 5. Why are the advantages and the value targets detached in the A2C loss?
#
# <details><summary>Answer</summary>
#
# They are labels, not functions to optimise. Without `detach` on $\hat A$ the actor's loss
# would change the critic so as to make advantages large where $\log\pi$ is large (nonsense
# gradients). Without `detach` on $\hat R$ the critic would also move its own bootstrapped
# target (the "residual gradient"), which learns slower and to a different solution than TD.
# </details>
#
# 6. Is GAE expensive to compute?
#
# <details><summary>Answer</summary>
#
# No: one backward pass, $O(T)$ per sequence, vectorised over the batch (the same cost as
# discounted returns). Writing the weighted sum of TD errors explicitly would cost $O(T^2)$.
# </details>
#
# 7. What is the difference between A2C and A3C? Why share or not share the actor and critic
#    networks?
#
# <details><summary>Answer</summary>
#
# A3C runs workers asynchronously, each computing gradients on its own copy and applying them
# to shared parameters (stale gradients, lock-free). A2C waits for all environments and takes
# one batched step: deterministic, simpler, and it uses a GPU or vectorised envs better.
# A shared torso saves computation and shares features, but the value loss (large, scale
# depends on returns) and the policy loss compete, so it needs a tuned `vf_coef`; separate
# networks are more robust on small problems.
# </details>
#
# 8. Why is the critic's TD target called "bootstrapped", and what are the three critic
#    targets?
#
# <details><summary>Answer</summary>
#
# Its label contains the critic's own estimate $V(s_{t+1})$. Targets: Monte-Carlo return
# (unbiased, high variance, needs whole episodes), TD(0) target (low variance, biased by $V$,
# online), $\lambda$-return $\hat A^{\text{GAE}}+V$ (in between, tunable by $\lambda$).
# </details>

# %%
cpu_seconds = time.process_time() - cpu_start
rlcourse.results.record(
    "06_actor_critic_gae",
    title="Actor-critic and GAE",
    topics="advantage PG, TD errors, n-step returns, GAE, truncation masks, critic targets, "
           "A2C, λ sweep",
    headline=(f"A2C solves CartPole in {np.median(steps_solved) / 1000:.0f}k steps (median of "
              f"seeds {', '.join(map(str, solve_seeds))}: "
              f"{', '.join(f'{s / 1000:.0f}k' if s < float('inf') else 'unsolved' for s in steps_solved)}"
              f"); λ sweep best "
              f"λ={best_sweep}; truncation-as-termination biases V by {bias_final:+.0f} at "
              f"truncated states; W-01 reproduced"),
    metrics={"median_steps_to_solve": float(np.median(steps_solved)),
             "solved_seeds": float(len(solved_seeds)),
             "greedy_eval_min_solved": float(min(evals[s].mean() for s in solved_seeds)),
             "best_sweep_lambda": best_sweep, "sweep_score_lam0": score[0.0],
             "sweep_score_lam095": score[0.95], "truncation_bias": bias_final,
             "gae_time_slope": slope_rec, "cpu_seconds": cpu_seconds},
)
print(f"total time {session.elapsed():.1f} s wall-clock, {cpu_seconds:.1f} s CPU")
