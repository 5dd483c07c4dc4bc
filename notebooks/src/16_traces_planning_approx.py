# %% [markdown]
# # 16 · Eligibility traces, planning and linear function approximation
#
# *Part IV, beyond the study notes.* This notebook fills in three classic chapters of Sutton &
# Barto that the main path skips. It needs only notebooks 02 and 03 (tables, TD(0), n-step
# returns, Q-learning, importance ratios), so you can take it **after notebook 03 and before
# notebook 04**; it prepares three ideas that Part II uses without deriving them:
#
# * **eligibility traces**: TD($\lambda$) averages all n-step returns at the cost of one
#   update per step. Its $\lambda$ is the $\lambda$ of GAE in notebook 06;
# * **planning**: Dyna-Q learns a model and replays simulated experience from it. DQN's replay
#   buffer (notebook 04) is a close relative;
# * **linear function approximation**: semi-gradient TD, and Baird's counterexample, where
#   function approximation, bootstrapping and off-policy data together make the weights
#   diverge. This is the *deadly triad* that DQN's target network (notebook 04) works around.
#
# **Learning goals.** After this notebook you can
# 1. implement TD($\lambda$) with accumulating eligibility traces and reproduce the book's
#    $\lambda$-versus-$\alpha$ experiment on the 19-state random walk (S&B Figure 12.6);
# 2. prove numerically that the $\lambda$-return error is GAE's sum of discounted TD errors;
# 3. implement the Dyna-Q step (direct update, model learning, planning) and measure what
#    planning buys on the Dyna maze (S&B Figure 8.2);
# 4. implement semi-gradient linear TD(0) with an importance ratio, find its fixed point with
#    state aggregation (S&B Figure 9.2) and watch it diverge on Baird's counterexample
#    (S&B Figure 11.2);
# 5. name the deadly triad, and say what cures it on Baird's example (on-policy data,
#    gradient-TD such as TDC) and what only slows it down (a target network).
#
# Conventions as in notebook 03: `rewards[t]` follows `actions[t]`, and `terminated` marks a
# transition into a terminal state, whose value is 0.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

import rlcourse
import rlcourse.results
from rlcourse import advantages, tabular
from rlcourse import traces_planning as tp
from rlcourse.exercises import check, show_source
from rlcourse.mdp import evaluate_policy
from rlcourse.plotting import plot_curves

session = rlcourse.setup(seed=0)

# %% [markdown]
# ## 1. Eligibility traces: TD($\lambda$)
#
# Notebook 03 showed that an intermediate n-step return beats both TD(0) and Monte Carlo on the
# random walk. The **$\lambda$-return** averages *all* n-step returns with geometric weights:
# $$G_t^\lambda = (1-\lambda)\sum_{n=1}^{T-t-1}\lambda^{n-1}G_t^{(n)} + \lambda^{T-t-1}G_t,$$
# where $G_t^{(n)} = r_{t+1} + \dots + \gamma^{n-1}r_{t+n} + \gamma^n V(s_{t+n})$ and $G_t$ is
# the Monte-Carlo return (the weights sum to 1). $\lambda = 0$ gives the TD(0) target,
# $\lambda = 1$ the Monte-Carlo return. Updating towards $G_t^\lambda$ (the *forward view*)
# has to wait for the end of the episode. The **backward view** gets (almost) the same effect
# online, with one extra vector, the **eligibility trace** $z$, that remembers which states
# were visited recently:
# $$z_t = \gamma\lambda\, z_{t-1} + \nabla_w v(s_t, w), \qquad
#   \delta_t = r_{t+1} + \gamma\, v(s_{t+1}, w) - v(s_t, w), \qquad
#   w \leftarrow w + \alpha\,\delta_t\, z_t .$$
# Each TD error is credited to every earlier state of the episode, in proportion to how
# recently and how often it was visited. $z$ starts at 0 in each episode. For a linear value
# $v(s, w) = w^\top x(s)$ the gradient is the feature vector $x(s_t)$; with **one-hot**
# features $x(s) = e_s$, $w$ *is* the table $V$ and this is tabular TD($\lambda$). Adding
# $x(s_t)$ is the **accumulating** trace; a **replacing** trace would set the visited
# state's entry to 1 instead (S&B chapter 12). Here we use accumulating traces.
#
# ### Exercise 1: one step of TD($\lambda$)
# Complete `td_lambda_step`. It must work on stacks of problems: `w`, `z`, `x`, `x_next` have
# shape `[..., d]` and the sweep below calls it with `[step sizes, runs, 21]` arrays and
# `alpha` of shape `[step sizes, 1]`. `first` says that $s_t$ starts a new episode, so the
# trace left over from the previous episode must be cleared before $x(s_t)$ is added.

# %%
def td_lambda_step(w, z, x, x_next, reward, terminated, first, alpha, gamma, lam):
    """Semi-gradient TD(lambda) with accumulating traces for v(s) = w . x(s).

    w, z, x, x_next: [..., d]; reward, terminated, first: [...]; alpha: scalar or [...].
    Returns the new (w, z) as new arrays (do not modify the inputs).
    """
    ### BEGIN SOLUTION
    keep = 1.0 - np.asarray(first, dtype=float)[..., None]
    z = gamma * lam * keep * z + x
    alive = 1.0 - np.asarray(terminated, dtype=float)
    delta = reward + gamma * alive * (w * x_next).sum(-1) - (w * x).sum(-1)
    return w + (np.asarray(alpha, dtype=float) * delta)[..., None] * z, z
    ### END SOLUTION


td_lambda_step = check("traces_planning.td_lambda_step", td_lambda_step)

# %% [markdown]
# The package's version, to compare with yours:

# %%
print(show_source(tp.td_lambda_step))

# %% [markdown]
# ### 1.1 The 19-state random walk, $\lambda$ against $\alpha$ (S&B Figure 12.6)
# The walk of notebook 03, with 19 states: start in the middle, step left or right with
# probability 1/2, reward $-1$ for leaving on the left and $+1$ on the right, $\gamma = 1$,
# so $V(i) = 2i/20 - 1$. First the closed form against the linear solve of notebook 02:

# %%
walk19 = tabular.random_walk_mdp(19)
V_solve = evaluate_policy(walk19, np.ones((21, 1)))[1:-1]
truth19 = tabular.random_walk_values(19)
print(f"max |linear solve - closed form| = {np.abs(V_solve - truth19).max():.1e}")
assert np.allclose(V_solve, truth19, atol=1e-12)

# %% [markdown]
# Now the book's experiment. For each $\lambda$ and step size $\alpha$ we run online TD($\lambda$)
# (your `td_lambda_step`, one-hot features, $V_0 = 0$) for 10 episodes and measure the RMS
# error over the 19 states at the end of each episode, averaged over the 10 episodes and 100
# runs. All runs and step sizes advance together as arrays. This is **Figure 12.6** (online
# TD($\lambda$) with accumulating traces), not Figure 12.3 (the offline $\lambda$-return
# algorithm, which updates at the end of each episode; the two curves look alike, and 12.6's
# large-$\lambda$ curves blow up sooner at large $\alpha$).

# %%
t0 = time.perf_counter()
walk_data = tabular.sample_random_walks(19, n_episodes=10, n_runs=100, seed=12)
alphas = np.array([0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6,
                   0.7, 0.8, 0.9, 1.0])
lambdas = (0.0, 0.4, 0.8, 0.9, 0.95, 1.0)
sweep = {}
with np.errstate(over="ignore", invalid="ignore"):
    for lam in tqdm(lambdas, desc="lambda"):
        err = tp.td_lambda_sweep(walk_data, lam, alphas, step_fn=td_lambda_step)
        sweep[lam] = err[:, :, 1:].mean(axis=(1, 2))  # [alphas]: mean over runs and episodes
print(f"{len(lambdas)} lambdas x {len(alphas)} step sizes x {walk_data.n_runs} runs in "
      f"{time.perf_counter() - t0:.1f} s")

fig, ax = plt.subplots(figsize=(7, 4.5))
for lam, e in sweep.items():
    ax.plot(alphas, np.minimum(e, 1.0), "-o", markersize=3, label=f"lambda = {lam}")
ax.set_ylim(0.2, 0.6)
ax.set_xscale("log")
ax.set_xlabel("step size alpha (log scale)")
ax.set_ylabel("RMS error, 19 states, first 10 episodes")
ax.set_title("TD(lambda) on the 19-state random walk (cf. S&B Figure 12.6)")
ax.legend()
plt.show()

best = {lam: (float(np.min(e)), float(alphas[np.argmin(e)])) for lam, e in sweep.items()}
for lam, (err_min, a_best) in best.items():
    last = f"{sweep[lam][-1]:.3f}" if sweep[lam][-1] < 10 else "diverged (> 10)"
    print(f"lambda = {lam:4.2f}: best RMS {err_min:.3f} at alpha = {a_best:.2f}; "
          f"at alpha = {alphas[0]:.3f}: {sweep[lam][0]:.3f}; at alpha = {alphas[-1]:.1f}: {last}")
for lam, e in sweep.items():  # the U: the best alpha is inside the range, clearly
    assert e[0] > best[lam][0] + 0.02 and e[-1] > best[lam][0] + 0.02, lam
best_alphas = [best[lam][1] for lam in lambdas]
assert all(a >= b for a, b in zip(best_alphas, best_alphas[1:]))  # the best alpha shrinks
best_mid = min(best[lam][0] for lam in (0.4, 0.8, 0.9))
assert best_mid < best[0.0][0] - 0.05 and best_mid < best[1.0][0] - 0.05

# %% [markdown]
# The picture of notebook 03's n-step sweep, with $\lambda$ in the role of $n$: every curve is
# a U (too small a step learns slowly, too large a step is noisy or diverges), an intermediate
# $\lambda$ has the lowest minimum, and the best $\alpha$ shrinks as $\lambda$ grows, because
# the longer the trace the more states each TD error moves (with $\lambda = 1$ and a large
# $\alpha$ the accumulating trace overshoots and the values explode).
#
# ### 1.2 Forward view = backward view, and the $\lambda$ of GAE
# Two identities tie the trace to the $\lambda$-return. Write $\delta_t = r_{t+1} +
# \gamma V(s_{t+1}) - V(s_t)$ with $V$ **held fixed** during the episode. Then
# $$G_t^\lambda - V(s_t) = \sum_{k \ge 0} (\gamma\lambda)^k\, \delta_{t+k},$$
# because each $G_t^{(n)} - V(s_t)$ telescopes into $\sum_{k<n}\gamma^k\delta_{t+k}$, and the
# weights $(1-\lambda)\lambda^{n-1}$ then sum to $\lambda^k$ for each $\delta_{t+k}$. This is
# **exactly GAE's formula** (notebook 06), $\hat A_t = \sum_k(\gamma\lambda)^k\delta_{t+k}$: the
# advantage that PPO uses is the $\lambda$-return error of the critic, and the critic's target
# $\hat A_t + V(s_t)$ is the $\lambda$-return. And summing the trace updates
# $\delta_t z_t$ over an episode (with $w$ fixed) gives $\sum_t (G_t^\lambda - V(s_t))\,x(s_t)$,
# the offline $\lambda$-return updates: the backward view does the forward view's work.
#
# We check both on one episode of the walk, with $G_t^\lambda$ computed from its *definition*
# (the weighted average of n-step returns) and GAE from `rlcourse.advantages.gae`:

# %%
ep_states, ep_rewards = tabular.walk_episodes(walk_data, run=0)[0]
rng = np.random.default_rng(3)
V_fixed = np.concatenate([[0.0], rng.normal(0.0, 0.5, 19), [0.0]])  # any fixed V, terminals 0
T = len(ep_states)
ep_next = np.append(ep_states[1:], 20 if ep_rewards[-1] > 0 else 0)
term = np.zeros(T)
term[-1] = 1.0
as_row = lambda a: torch.tensor(a, dtype=torch.float64)[None]  # [1, T]: one sequence
eye21 = np.eye(21)
for gamma in (1.0, 0.9):
    for lam in (0.0, 0.5, 0.9, 1.0):
        G_lam = tp.lambda_return(ep_rewards, V_fixed[ep_states], gamma, lam)
        A = advantages.gae(as_row(ep_rewards), as_row(V_fixed[ep_states]),
                           as_row(V_fixed[ep_next]), as_row(term), as_row(term), gamma,
                           lam)[0].numpy()
        z, total = np.zeros(21), np.zeros(21)
        for t in range(T):
            w_new, z = td_lambda_step(V_fixed, z, eye21[ep_states[t]], eye21[ep_next[t]],
                                      ep_rewards[t], term[t], t == 0, 1.0, gamma, lam)
            total += w_new - V_fixed  # alpha = 1 and V kept fixed: the increment delta_t z_t
        forward = np.bincount(ep_states, G_lam - V_fixed[ep_states], minlength=21)
        gap_gae = np.abs(G_lam - V_fixed[ep_states] - A).max()
        gap_view = np.abs(total - forward).max()
        print(f"gamma = {gamma}, lambda = {lam}: max |(G^lam - V) - GAE| = {gap_gae:.1e}, "
              f"max |sum delta z - sum (G^lam - V) x| = {gap_view:.1e}  (T = {T})")
        assert gap_gae < 1e-10 and gap_view < 1e-10

# %% [markdown]
# So "GAE with $\lambda = 0.95$" in PPO means: the actor is pushed by the critic's
# $\lambda$-return errors, and $\lambda$ trades the bias of bootstrapping ($\lambda \to 0$)
# against the variance of Monte-Carlo returns ($\lambda \to 1$), exactly as in the sweep
# above. Online, with $w$ changing during the episode, the two views differ slightly; *true
# online TD($\lambda$)* (S&B section 12.5) removes even that difference.
#
# ## 2. Planning with a learned model: Dyna-Q
#
# A model-free agent uses each real transition once. **Dyna-Q** also stores it in a
# **model** (here a table: for a deterministic world, what followed $(s, a)$ last time) and
# after every real step makes $n$ extra Q-learning updates on transitions *simulated* from the
# model. One real step of Dyna-Q:
# 1. **direct RL**: $Q(s,a) \leftarrow Q(s,a) + \alpha\,[r + \gamma \max_{a'}Q(s', a') -
#    Q(s,a)]$ (no bootstrap if $s'$ is terminal);
# 2. **model learning**: $\text{Model}(s, a) \leftarrow (r, s', \text{terminated})$;
# 3. **planning**, $n$ times: pick a pair $(s, a)$ the agent **has already tried**, ask the
#    model what follows, and make the same Q-learning update.
#
# Planning from a pair never tried would invent a transition; storing the model *after*
# planning would leave the newest transition, often the only rewarded one, out of the plan.
#
# ### Exercise 2: one step of Dyna-Q
# Complete `dyna_q_step`; it updates `Q` and `model` in place. To make runs reproducible (and
# checkable), draw the planning pairs exactly as the docstring says. You may write the
# Q-learning update yourself or call `tp.q_learning_update(Q, s, a, r, s_next, terminated,
# alpha, gamma)` (in place); the exercise is the order of the three stages and the planning
# loop.

# %%
def dyna_q_step(Q, model, s, a, r, s_next, terminated, n_planning, alpha, gamma, rng):
    """One real step of tabular Dyna-Q, in place on Q [S, A] and model (a tp.DynaModel with
    arrays next_state, reward, terminated, seen, each [S, A]).

    1. direct Q-learning update of Q[s, a] (target r alone if terminated);
    2. store (r, s_next, terminated) in the model for (s, a) and set seen[s, a] = True;
    3. pairs = np.flatnonzero(model.seen) (flat index s * A + a);
       picks = rng.integers(len(pairs), size=n_planning); for each pick, in order, a
       Q-learning update of the pair pairs[pick] using the model's r, s_next, terminated.
    """
    ### BEGIN SOLUTION
    tp.q_learning_update(Q, s, a, r, s_next, terminated, alpha, gamma)
    model.next_state[s, a], model.reward[s, a] = s_next, r
    model.terminated[s, a], model.seen[s, a] = terminated, True
    pairs = np.flatnonzero(model.seen)
    for pick in rng.integers(len(pairs), size=n_planning):
        ps, pa = divmod(int(pairs[pick]), Q.shape[1])
        tp.q_learning_update(Q, ps, pa, model.reward[ps, pa], model.next_state[ps, pa],
                             model.terminated[ps, pa], alpha, gamma)
    ### END SOLUTION


dyna_q_step = check("traces_planning.dyna_q_step", dyna_q_step)

# %%
print(show_source(tp.dyna_q_step))

# %% [markdown]
# ### 2.1 The Dyna maze (S&B Figure 8.2)
# A $6\times 9$ grid, start S at row 2, column 0, goal G at (0, 8), seven walls. Actions
# up/down/left/right are deterministic (bumping into a wall or the border leaves the agent in
# place); entering G pays $+1$ and ends the episode, everything else pays 0. $\gamma = 0.95$,
# $\alpha = 0.1$, $\varepsilon = 0.1$ (ties broken at random), $Q_0 = 0$. We run 50 episodes
# with $n = 0$ (plain Q-learning), 5 and 50 planning steps, 20 runs each.

# %%
maze = tp.grid_tables()
shortest = int(tabular.grid_distances(tp.DYNA_MAZE)[maze.start])
print("\n".join(tp.DYNA_MAZE))
print(f"shortest path from S to G: {shortest} steps")

n_runs_dyna, n_eps = 20, 50
dyna_steps, dyna_greedy, dyna_Q = {}, {}, {}
t0 = time.perf_counter()
for n in (0, 5, 50):
    out = [tp.run_dyna_q(maze, n, n_eps, seed=1000 + r, step_fn=dyna_q_step)
           for r in tqdm(range(n_runs_dyna), desc=f"n = {n}", leave=False)]
    dyna_steps[n] = np.array([run.steps for run in out])  # [runs, episodes]
    dyna_greedy[n] = np.array([run.greedy_steps for run in out])  # greedy path after each
    dyna_Q[n] = [run.Q for run in out]
print(f"3 x {n_runs_dyna} runs of {n_eps} episodes in {time.perf_counter() - t0:.1f} s")

fig, axes = plt.subplots(1, 3, figsize=(17, 4.2))
plot_curves({f"n = {n}": s[:, 1:] for n, s in dyna_steps.items()}, ax=axes[0],
            x=np.arange(2, n_eps + 1), xlabel="episode", ylabel="steps per episode",
            title="Dyna-Q, Dyna maze (cf. S&B Fig. 8.2)")
axes[0].axhline(shortest, color="k", linestyle=":", linewidth=1)
axes[0].set_ylim(0, 800)
near = {n: (g <= shortest + 2).mean(axis=0) for n, g in dyna_greedy.items()}  # [episodes]
for n, frac in near.items():
    axes[1].plot(np.arange(1, n_eps + 1), frac, "-o", markersize=3, label=f"n = {n}")
axes[1].set_xlabel("episode")
axes[1].set_ylabel("fraction of runs")
axes[1].set_title(f"greedy path <= {shortest + 2} steps after the episode")
axes[1].legend()
walls = [i for i, ch in enumerate("".join(tp.DYNA_MAZE)) if ch == "#"]
tabular.draw_grid_paths(axes[2], 6, 9, {f"greedy, n = {n}, run 0":
                                        tp.greedy_path(maze, dyna_Q[n][0]) for n in (0, 50)},
                        blocked=walls, labels={maze.start: "S", 8: "G"})
axes[2].set_title("greedy paths after 50 episodes")
plt.show()

mean_steps = {n: s.mean(axis=0) for n, s in dyna_steps.items()}
for n, m in mean_steps.items():
    print(f"n = {n:2d}: episode 1 {m[0]:6.0f} steps, episode 2 {m[1]:6.0f}, episodes 3-10 "
          f"{m[2:10].mean():6.1f}, last 10 {m[-10:].mean():5.1f}")
ratio2 = mean_steps[0][1] / mean_steps[50][1]
print(f"episode 2 takes {ratio2:.0f}x more steps without planning than with n = 50")
assert mean_steps[50][2:10].mean() < 18.0 and mean_steps[50][-10:].mean() < 18.0
assert ratio2 > 5.0 and mean_steps[5][1] < mean_steps[0][1]
assert mean_steps[0][2:10].mean() > 3 * mean_steps[50][2:10].mean()
for n, frac in near.items():
    print(f"n = {n:2d}: greedy path near-optimal after episode 2: {frac[1]:.0%} of runs, after "
          f"episode 10: {frac[9]:.0%}, after episode 50: {frac[-1]:.0%}")
final = dyna_greedy[50][:, -1]
print(f"greedy path after 50 episodes (n = 50): {np.mean(final == shortest):.0%} of runs take "
      f"{shortest} steps, the others {sorted({int(v) for v in final[final > shortest]})}")
assert near[50][1:10].min() >= 0.75 and near[0][9] <= 0.2 and near[5][9] >= 0.75
assert np.isfinite(final).all() and np.median(final) <= shortest + 2

# %% [markdown]
# The first episode is the same random search for every $n$: until G has been reached once,
# all rewards seen are 0 and planning has nothing to propagate. After that, with $n = 50$ the
# model replays the rewarded transition and its predecessors thousands of times, and the
# second episode is already almost straight and the greedy policy is near-optimal in most
# runs (middle panel); plain Q-learning moves the value back one step per visit and needs
# dozens of episodes. The $\varepsilon$-greedy steps keep the average
# above the shortest path. Most greedy paths are 14 or 16 steps long: the planner only
# improves pairs it has tried, and once a good route is found the agent rarely explores the
# other one (Dyna-Q+ adds an exploration bonus for pairs not tried for a long time).
#
# A replay buffer (notebook 04) is the same idea with a *non-parametric* model: it replays
# real transitions instead of the model's predictions; model-based deep RL (MuZero, Dreamer)
# learns a network model and plans or trains inside it.
#
# ## 3. Linear function approximation
#
# A table has one entry per state. With features $x(s) \in \mathbb R^d$ and
# $v(s, w) = w^\top x(s)$, an update at one state moves the value of every state that shares
# features with it: **generalisation**. TD(0) becomes **semi-gradient** TD(0):
# $$w \leftarrow w + \alpha\,\rho\,\delta\, x(s), \qquad \delta = r + \gamma\, w^\top x(s')
#   - w^\top x(s).$$
# It is the gradient step on $\tfrac12(\text{target} - v(s, w))^2$ **with the target held
# constant**, hence "semi": the target depends on $w$ too, and the full-gradient step would
# move along $\delta\,(x(s) - \gamma x(s'))$ (the *residual-gradient* algorithm, a different
# and usually slower method).
# For off-policy data the update is weighted by the importance ratio
# $\rho = \pi(a \mid s)/b(a \mid s)$ of the action taken (notebook 03), so that on average it
# is the update the target policy $\pi$ would make from the behaviour $b$'s states.
#
# ### Exercise 3: semi-gradient linear TD(0) with an importance ratio

# %%
def linear_td_step(w, x, x_next, reward, terminated, alpha, gamma, rho=1.0):
    """Semi-gradient TD(0) step for v(s) = w . x(s), weighted by the importance ratio rho.

    w, x, x_next: [..., d]; reward, terminated, rho: scalars or [...]. Returns the new w.
    """
    ### BEGIN SOLUTION
    alive = 1.0 - np.asarray(terminated, dtype=float)
    delta = reward + gamma * alive * (w * x_next).sum(-1) - (w * x).sum(-1)
    return w + (alpha * np.asarray(rho, dtype=float) * delta)[..., None] * x
    ### END SOLUTION


linear_td_step = check("traces_planning.linear_td_step", linear_td_step)

# %%
print(show_source(tp.linear_td_step))

# %% [markdown]
# ### 3.1 State aggregation on the 1000-state random walk (S&B Figure 9.2, left)
# The walk of S&B Example 9.1: states 1..1000, start at 500, each step jumps to one of the 100
# states on the left or the 100 on the right with equal probability; a jump past an end
# terminates with $-1$ (left) or $+1$ (right), $\gamma = 1$. The true values come from a
# linear solve. **State aggregation** groups the states into 10 blocks of 100 with one
# weight each (one-hot features of the block), so $v$ is a staircase.
#
# Where does semi-gradient TD(0) end up? On-policy, its expected update is
# $\mathbb E[\delta\, x] = b - A w$ with $A = X^\top D (X - \gamma P X)$, $b = X^\top D r$
# and $D = \mathrm{diag}(\mu)$, $\mu$ the fraction of time spent in each state. It converges to
# the **TD fixed point** $w_{TD} = A^{-1} b$, which is *not* the best staircase
# $w_{VE} = \arg\min_w \sum_s \mu(s)(v_\pi(s) - w^\top x(s))^2$ that gradient Monte Carlo finds;
# the book's bound is $\overline{VE}(w_{TD}) \le \frac{1}{1-\gamma}\min_w \overline{VE}(w)$
# for discounted tasks.

# %%
P_jump, r_jump = tp.walk_jump_mdp(1000, 100)
v_jump = tp.walk_jump_values(1000, 100)
mu_jump = tp.on_policy_distribution(P_jump, 499)
X_agg = tp.aggregation_features(1000, 10)
w_td = tp.td_fixed_point(X_agg, P_jump, r_jump, mu_jump)
w_ve = tp.ve_minimiser(X_agg, v_jump, mu_jump)

t0 = time.perf_counter()
n_steps_agg = 50_000
W_agg = tp.jump_walk_td(10, 0.02, n_steps_agg, 10, seed=5, step_fn=linear_td_step)
w_learned = W_agg[n_steps_agg // 2:].mean(axis=0)  # [runs, 10]: average of the late iterates
print(f"10 runs x {n_steps_agg} steps of semi-gradient TD(0) in {time.perf_counter() - t0:.1f} s")

ve = lambda w: float(mu_jump @ (X_agg @ w - v_jump) ** 2)
gap_fixed = np.abs(w_learned.mean(axis=0) - w_td).max()
print(f"RMS value error (mu-weighted): TD fixed point {np.sqrt(ve(w_td)):.3f}, best staircase "
      f"{np.sqrt(ve(w_ve)):.3f}, learned TD weights {np.sqrt(ve(w_learned.mean(0))):.3f}")
print(f"max |learned weights (mean of 10 runs) - TD fixed point| = {gap_fixed:.3f}")
assert gap_fixed < 0.05 and ve(w_td) > 1.5 * ve(w_ve)

fig, ax = plt.subplots(figsize=(7, 4.5))
states = np.arange(1, 1001)
ax.plot(states, v_jump, "k", linewidth=1, label="true value")
ax.step(states, X_agg @ w_ve, where="mid", label="best staircase (gradient MC's limit)")
ax.step(states, X_agg @ w_td, where="mid", label="TD fixed point")
ax.plot(states[50::100], w_learned.mean(0), "o", label="semi-gradient TD(0), learned")
ax.set_xlabel("state")
ax.set_ylabel("value")
ax.set_title("State aggregation on the 1000-state walk (cf. S&B Figure 9.2)")
ax.legend()
plt.show()

# %% [markdown]
# TD's staircase is flatter than the best one at the ends: each block bootstraps from blocks
# nearer the centre, whose aggregated values are pulled towards 0, and the bias propagates.
# This is the price of bootstrapping with an approximator; in exchange TD learns online and
# with less variance.
#
# ### 3.2 Baird's counterexample (S&B Figure 11.2)
# Seven states, eight weights, all rewards 0 (so $v_\pi = 0$, and $w = 0$ represents it
# exactly). The upper six states have $v(s_i) = 2w_i + w_8$, the lower one
# $v(s_7) = w_7 + 2w_8$. The **behaviour** policy takes *dashed* (to one of the upper six,
# uniformly) with probability 6/7 and *solid* (to state 7) with 1/7; the **target** policy
# always takes solid. So $\rho = 7$ after solid and $\rho = 0$ after dashed. $\gamma = 0.99$,
# $\alpha = 0.01$, $w_0 = (1,1,1,1,1,1,10,1)$.

# %%
X_baird = tp.baird_features()
print("features (rows: states 1..7, columns: w_1..w_8):")
print(X_baird.astype(int))
norm0 = np.linalg.norm(tp.BAIRD_W0)
v0 = X_baird @ tp.BAIRD_W0
print(f"initial values v = X w_0 = {v0.round(2)}; the upper states' TD target gamma v(s_7) = "
      f"{0.99 * v0[6]:.2f}")
W_off = tp.baird_off_policy_td(1000, seed=0, step_fn=linear_td_step)
W_dp = tp.baird_expected_td(1000)
W_on = tp.baird_off_policy_td(1000, seed=0, on_policy=True, step_fn=linear_td_step)
W_tdc = tp.baird_tdc(1000, seed=0)
W_tn = tp.baird_target_network_td(1000, seed=0, copy_every=100)
runs = {"off-policy TD(0)": W_off, "expected off-policy TD(0) (DP)": W_dp,
        "on-policy TD(0)": W_on, "TDC (off-policy)": W_tdc,
        "off-policy TD(0), target network": W_tn}

fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for ax, (name, W) in zip(axes[:2], list(runs.items())[:2]):
    for i in range(8):
        ax.plot(W[:, i], label=f"w_{i + 1}")
    ax.set_xlabel("step" if "DP" not in name else "sweep")
    ax.set_title(name)
axes[0].legend(ncol=2, fontsize=8)
for name, W in runs.items():
    axes[2].plot(np.linalg.norm(W, axis=1), label=name)
axes[2].set_yscale("log")
axes[2].set_xlabel("step")
axes[2].set_ylabel("||w||")
axes[2].set_title("weight norm")
axes[2].legend(fontsize=8)
plt.show()

rms_v = lambda W: np.sqrt(np.mean((W[-1] @ X_baird.T) ** 2))  # the error: v_pi = 0
for name, W in runs.items():
    print(f"{name:34s}: ||w|| {norm0:.1f} -> {np.linalg.norm(W[-1]):8.1f}, RMS value error "
          f"{np.sqrt(np.mean((tp.BAIRD_W0 @ X_baird.T) ** 2)):.1f} -> {rms_v(W):8.2f}")
# the expected update is w <- w + alpha * M w with M = X^T D (gamma 1 x_7^T - X), D uniform
M = X_baird.T @ np.diag(np.full(7, 1 / 7)) @ (0.99 * np.outer(np.ones(7), X_baird[6]) - X_baird)
eig_max = np.linalg.eigvals(M).real.max()
print(f"largest real part of an eigenvalue of the expected update matrix: {eig_max:.4f} (> 0: "
      f"the expected iteration is unstable)")
assert eig_max > 0
growth = {s: np.linalg.norm(tp.baird_off_policy_td(1000, seed=s, step_fn=linear_td_step)[-1])
          / norm0 for s in range(5)}
print("off-policy TD(0), ||w_1000|| / ||w_0|| over 5 seeds: "
      + ", ".join(f"{g:.0f}" for g in growth.values()))
assert min(growth.values()) > 10 and np.linalg.norm(W_dp[-1]) > 10 * norm0
assert np.linalg.norm(W_on, axis=1).max() < 1.2 * norm0 and rms_v(W_on) < 0.5 * rms_v(W_on[:1])
assert np.linalg.norm(W_tdc, axis=1).max() < 1.2 * norm0 and rms_v(W_tdc) < 0.5 * rms_v(W_tdc[:1])
assert np.linalg.norm(W_tn[-1]) < np.linalg.norm(W_off[-1]) / 3 and rms_v(W_tn) > rms_v(W_tn[:1])

# %% [markdown]
# Off-policy semi-gradient TD(0) diverges although every value function, including the true
# one, is representable, and the *expected* update diverges too, so this is not noise. Why:
# the updates are made under the behaviour's state distribution (mostly the upper states), but
# the target bootstraps from state 7. An update at an upper state raises $w_8$ (its target
# $\gamma v(s_7)$ starts far above its value, printed above), and that raises $v(s_7)$ *twice* as much as the
# upper state's own value (the feature of $w_8$ is 2 there, 1 here), so the targets run away
# from the predictions; the update at state 7 itself, which would pull $w_8$ back, is made only
# a seventh of the time. Under the on-policy distribution the same
# update is stable (the TD fixed-point theory needs $\mu$ to be the distribution of the policy
# being evaluated), and **TDC**, a *gradient-TD* method that follows the true gradient of the
# projected Bellman error with a second weight vector, keeps the weights bounded off-policy.
# A **target network** (bootstrap from a copy of $w$ refreshed every 100 steps, as in DQN)
# only slows the runaway: the norm grows far less in 1000 steps, but the values still move
# away from the truth instead of towards it.
#
# ### 3.3 The deadly triad
# Instability and divergence appear when three things are combined (S&B section 11.3):
# **function approximation** + **bootstrapping** + **off-policy training**. Any two are safe:
# tables with off-policy bootstrapping (Q-learning), linear on-policy TD, or off-policy Monte
# Carlo (no bootstrapping). Baird's example has all three.
#
# It also qualifies a common claim: value-based methods are not "the more stable family" in
# general; off-policy value learning with function approximation is exactly the combination
# that can diverge, while on-policy policy-gradient methods do not bootstrap off-policy.
#
# DQN (notebook 04) has all three as well: a neural network, the bootstrapped target
# $r + \gamma\max_{a'}Q(s', a')$, and off-policy data from a replay buffer and a greedy target
# policy. Its **target network** freezes the bootstrap target for a while, so each phase is a
# regression onto fixed targets; as on Baird's example this weakens the feedback loop rather
# than removing the triad. Its **"no target network" ablation** in notebook 04 is an
# instance of the triad: there the mean max-Q climbs past $1/(1-\gamma)$, a value no policy
# can earn.
#
# ## What to remember
#
# * TD($\lambda$): $z_t = \gamma\lambda z_{t-1} + \nabla v(s_t)$, $w \mathrel{+}= \alpha\,
#   \delta_t z_t$; reset $z$ at each episode start; one-hot features give tabular TD($\lambda$).
#   $\lambda = 0$ is TD(0), $\lambda = 1$ approaches Monte Carlo.
# * The $\lambda$-return error is $\sum_k (\gamma\lambda)^k \delta_{t+k}$: GAE is the
#   $\lambda$-return of the critic, and its $\lambda$ trades bias for variance in the same way.
# * On the random walk an intermediate $\lambda$ wins, and the best $\alpha$ shrinks as
#   $\lambda$ grows.
# * Dyna-Q = direct RL + model learning + $n$ planning updates from pairs already seen; planning
#   turns one rewarded transition into many value updates, so it needs far fewer real steps.
# * Semi-gradient TD: the target is treated as a constant; on-policy and linear, it converges
#   to the TD fixed point $A^{-1}b$, not to the best fit.
# * Off-policy + bootstrapping + function approximation (the deadly triad) can diverge even when
#   the true values are representable (Baird). Remedies: on-policy data, gradient-TD (TDC),
#   and in deep RL target networks.
#
# ## Further reading
#
# * Sutton & Barto (2018), *Reinforcement Learning: An Introduction*, 2nd ed.: chapter 8
#   (planning and learning, Dyna-Q, the Dyna maze, Dyna-Q+), chapter 9 (on-policy prediction
#   with approximation, state aggregation, the TD fixed point), chapter 11 (off-policy methods
#   with approximation, Baird's counterexample, the deadly triad, gradient-TD and TDC),
#   chapter 12 (eligibility traces, the $\lambda$-return, TD($\lambda$), true online
#   TD($\lambda$)).
# * Baird (1995), "Residual algorithms: reinforcement learning with function approximation",
#   ICML: the counterexample and residual-gradient methods.
# * Schulman, Moritz, Levine, Jordan & Abbeel (2016), "High-dimensional continuous control using
#   generalized advantage estimation", ICLR: GAE, the $\lambda$-return seen as an advantage.
# * Sutton et al. (2009), "Fast gradient-descent methods for temporal-difference learning with
#   linear function approximation", ICML: GTD2 and TDC.
# * Tsitsiklis & Van Roy (1997), "An analysis of temporal-difference learning with function
#   approximation", IEEE TAC: convergence of linear on-policy TD and the fixed-point bound.
#
# ## Interview questions
# 1. What is an eligibility trace, and how do accumulating and replacing traces differ?
#
# <details><summary>Answer</summary>
#
# A vector $z$ with one entry per weight that records how much each weight contributed to
# recent values: it decays by $\gamma\lambda$ every step and adds $\nabla v(s_t)$. Every TD
# error then updates all recently relevant weights at once, $w \mathrel{+}= \alpha\delta z$.
# An accumulating trace adds 1 (for one-hot features) on each visit, so a state visited twice
# gets a trace above 1; a replacing trace resets the visited state's entry to 1. Replacing
# traces behave better with large $\alpha$ and $\lambda$ near 1, where accumulating traces
# overshoot (the blow-up at the right of the sweep).
# </details>
#
# 2. What are the forward and backward views of TD($\lambda$), and when are they equal?
#
# <details><summary>Answer</summary>
#
# The forward view updates each state towards its $\lambda$-return, which needs the future
# (offline, at the episode end). The backward view broadcasts each TD error backwards through
# the trace, online. With the weights held fixed during the episode (offline updating) the
# summed updates are identical, because $G_t^\lambda - V(s_t) = \sum_k(\gamma\lambda)^k
# \delta_{t+k}$ (checked in section 1.2). Online they differ slightly; true online TD($\lambda$)
# matches the online forward view exactly.
# </details>
#
# 3. How is GAE related to TD($\lambda$)?
#
# <details><summary>Answer</summary>
#
# GAE's advantage $\sum_k(\gamma\lambda)^k\delta_{t+k}$ is the $\lambda$-return minus
# $V(s_t)$, with the critic held fixed during the rollout, and the critic's regression target
# $\hat A_t + V(s_t)$ is the $\lambda$-return. $\lambda$ plays the same role as in
# TD($\lambda$): 0 is the one-step TD error (low variance, biased by $V$), 1 is the Monte-Carlo
# advantage (unbiased, high variance). PPO computes it backwards over a finished rollout
# instead of with a trace, which is possible because it updates offline.
# </details>
#
# 4. In the $\lambda$-sweep, why is the best step size smaller for larger $\lambda$?
#
# <details><summary>Answer</summary>
#
# With a long trace each TD error changes many states, with total weight up to
# $1/(1-\gamma\lambda)$ per visit, so the effective step is larger and the targets are
# noisier (closer to Monte Carlo). The product of the step and the trace length has to stay
# moderate; at $\lambda = 1$ with accumulating traces a large $\alpha$ makes the values
# diverge.
# </details>
#
# 5. What does planning buy in Dyna-Q, and how does it relate to experience replay?
#
# <details><summary>Answer</summary>
#
# Each real transition is reused $n$ times through the model, so value information propagates
# backwards along the path in one episode instead of one step per visit: in the Dyna maze the
# second episode is already nearly optimal with $n = 50$. Experience replay does the same with
# stored real transitions (a non-parametric model that can only replay what happened). A
# learned model can generalise and plan from states not stored, but its errors are planned
# through too; when the world changes a stale model misleads the agent (Dyna-Q+ adds an
# exploration bonus for pairs not tried recently).
# </details>
#
# 6. Why is TD with function approximation called "semi-gradient", and what does it converge
#    to?
#
# <details><summary>Answer</summary>
#
# It differentiates the squared error with the bootstrapped target held constant, so its
# direction $\delta x(s)$ is not the gradient of any objective in general (the full gradient
# also has $-\gamma\delta x(s')$). Linear, on-policy, with decreasing steps, it converges to the
# TD fixed point $w_{TD} = A^{-1}b$, where the expected update is 0; its value error is within
# $1/(1-\gamma)$ of the best possible in the discounted case, but not the best.
# </details>
#
# 7. What is the deadly triad? Why does Baird's example diverge although $w = 0$ is exact?
#
# <details><summary>Answer</summary>
#
# Function approximation, bootstrapping and off-policy training together can make the
# iterates diverge; any two are fine. In Baird's example the updates follow the behaviour's
# state distribution while the targets bootstrap from state 7 under the target policy; the
# expected update matrix is then not stable (it has an eigenvalue with positive real part), so
# the weights grow even without noise. Representability does not help: divergence is a
# property of the update, not of the function class.
# </details>
#
# 8. Name remedies for the deadly triad, and say which one DQN uses.
#
# <details><summary>Answer</summary>
#
# Remove one leg: on-policy data, Monte-Carlo or n-step targets with small bootstrapping
# weight, or no generalisation. Or change the algorithm: gradient-TD methods (GTD2, TDC) and
# emphatic TD are convergent off-policy with linear features. DQN uses a target network (and a
# large replay buffer that keeps the data distribution close to on-policy), which slows the
# feedback loop between the target and the weights; notebook 04's ablation without it shows
# the value estimates running away.
# </details>

# %%
best_lam = min((0.4, 0.8, 0.9), key=lambda lam: best[lam][0])
rlcourse.results.record(
    "16_traces_planning_approx",
    title="Eligibility traces, planning and linear function approximation",
    topics="TD(lambda), eligibility traces, lambda-return = GAE, Dyna-Q, semi-gradient TD, "
           "state aggregation, Baird's counterexample, deadly triad, TDC",
    headline=(f"19-state walk: best RMS lambda={best_lam} {best[best_lam][0]:.3f} vs TD(0) "
              f"{best[0.0][0]:.3f} vs lambda=1 {best[1.0][0]:.3f}; Dyna maze episode 2: "
              f"{mean_steps[0][1]:.0f} steps (n=0) vs {mean_steps[50][1]:.0f} (n=50); Baird "
              f"off-policy TD ||w|| x{min(growth.values()):.0f} in 1000 steps"),
    metrics={"walk_rms_lambda0": best[0.0][0], "walk_rms_best_mid": best[best_lam][0],
             "walk_rms_lambda1": best[1.0][0], "dyna_ep2_n0": mean_steps[0][1],
             "dyna_ep2_n5": mean_steps[5][1], "dyna_ep2_n50": mean_steps[50][1],
             "dyna_n50_eps3_10": mean_steps[50][2:10].mean(),
             "agg_rms_td_fixed_point": np.sqrt(ve(w_td)), "agg_rms_best": np.sqrt(ve(w_ve)),
             "baird_norm_growth_min": min(growth.values()),
             "baird_tdc_rms_value": rms_v(W_tdc)},
)
print(f"total time {session.elapsed():.1f} s")
