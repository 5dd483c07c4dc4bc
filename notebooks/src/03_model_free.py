# %% [markdown]
# # 03 · Model-free prediction and control
#
# Dynamic programming (notebook 02) needs the model: every $P(s' \mid s, a)$ and $R(s, a)$.
# Usually nobody gives you that. This notebook learns values and policies from **sampled
# experience** only, with tables (one entry per state or state-action pair).
#
# **Learning goals.** After this notebook you can
# 1. estimate $V^\pi$ from episodes with first-visit Monte Carlo (MC), TD(0) and n-step TD,
#    and say precisely where the bias and the variance of each come from;
# 2. measure the bias-variance trade-off on the random walk, whose exact values are known;
# 3. implement SARSA and Q-learning (the targets, $\varepsilon$-greedy action choice and a whole
#    Q-learning episode), and explain with Cliff Walking why the on-policy one learns the safe
#    path and the off-policy one the risky optimal path;
# 4. tell the behaviour policy from the target policy, on-policy from off-policy, and both
#    from online vs offline;
# 5. derive importance sampling, and measure how its variance and effective sample size
#    degrade as the two distributions move apart;
# 6. prove that potential-based reward shaping keeps the optimal policy, use it to learn
#    faster, and watch a careless bonus get "hacked".
#
# Notation as in notebook 02: in code `rewards[t]` is the reward that follows `actions[t]`
# (the theory's $r_{t+1}$), and `terminated` marks a transition into a terminal state.

# %%
import time

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np

import rlcourse
import rlcourse.results
from rlcourse import tabular
from rlcourse.envs import GridWorld
from rlcourse.exercises import check, show_source
from rlcourse.mdp import (
    TabularMDP,
    evaluate_policy,
    plot_value_grid,
    q_from_v,
    value_iteration,
)
from rlcourse.plotting import plot_curves, seed_band

session = rlcourse.setup(seed=0)

# %% [markdown]
# ## 1. Prediction without a model: the random walk
#
# **Prediction** means estimating $V^\pi$ for a fixed policy. Our test bed is the classic
# **random walk**: $n$ states in a row, numbered $1..n$, with terminal states $0$ and $n+1$ at
# the ends. Every episode starts in the middle and moves left or right with probability 1/2.
# Leaving on the left pays $-1$, on the right $+1$, everything else 0, and $\gamma = 1$. The
# value of state $i$ is then $P(\text{exit right}) - P(\text{exit left})$, and the
# gambler's-ruin argument gives $P(\text{exit right} \mid i) = i/(n+1)$, so
# $$V(i) = \frac{2i}{n+1} - 1 .$$
# We can therefore measure the error of any estimate exactly. First, confirm the closed form
# with the linear solve of notebook 02 (the walk is an MDP with a single action):

# %%
for n in (5, 19):
    walk = tabular.random_walk_mdp(n)
    V_exact = evaluate_policy(walk, np.ones((n + 2, 1)))[1:-1]
    gap = np.abs(V_exact - tabular.random_walk_values(n)).max()
    print(f"{n:2d} states: V = {np.array2string(V_exact[:5], precision=3)} ... "
          f"(max |solve - closed form| = {gap:.1e})")
    assert np.allclose(V_exact, tabular.random_walk_values(n), atol=1e-12)

# %% [markdown]
# ### 1.1 Monte Carlo prediction
# $V^\pi(s) = \mathbb E_\pi[G_t \mid S_t = s]$ is an expectation, so average sampled returns.
# **First-visit MC** takes, in each episode, the return $G_t$ that follows the *first* visit to
# $s$ and averages these returns over episodes:
# $$V(s) \leftarrow \frac{1}{N(s)} \sum_{\text{episodes with } s} G_{t_\text{first}(s)},
# \qquad\text{or incrementally}\qquad V(s) \leftarrow V(s) + \alpha\,\big(G_t - V(s)\big).$$
# Each $G_t$ is an unbiased sample of $V^\pi(s)$, so the average is unbiased; but $G_t$ sums
# every random step until the end of the episode, so it is noisy, and it is only known once
# the episode is over. Here are the first-visit estimates from 1, 10 and 100 episodes of the
# 5-state walk:

# %%
walk5 = tabular.sample_random_walks(5, n_episodes=100, n_runs=300, seed=1)
truth5 = tabular.random_walk_values(5)
episodes = tabular.walk_episodes(walk5, run=0)
for k in (1, 10, 100):
    V_mc, visits = tabular.first_visit_mc(episodes[:k], n_states=7, gamma=1.0)
    print(f"after {k:3d} episodes: V = {np.array2string(V_mc[1:-1], precision=2)}, "
          f"visited in {visits[1:-1].astype(int)} episodes")
print(f"exact:              V = {np.array2string(truth5, precision=2)}")
assert np.abs(V_mc[1:-1] - truth5).max() < 0.35

# %% [markdown]
# ### 1.2 TD(0): learning from one step
# Temporal-difference learning does not wait for the end of the episode. After one step it
# moves $V(s_t)$ towards the **TD target** $r_{t+1} + \gamma V(s_{t+1})$:
# $$V(s_t) \leftarrow V(s_t) + \alpha\,\delta_t, \qquad
#   \delta_t = r_{t+1} + \gamma\, V(s_{t+1}) - V(s_t) .$$
# The DP backup of notebook 02 is $V(s) \leftarrow \mathbb E_\pi[r + \gamma V(s')]$, which needs
# the model; TD(0) replaces the expectation by the *one sample* that just happened. TD(0) is a
# **sampled Bellman expectation backup**. If $s_{t+1}$ is terminal, $V(s_{t+1}) = 0$ by
# definition, so the target is just $r_{t+1}$: the code multiplies by `(1 - terminated)`.
#
# Only the *next* value carries the discount $\gamma$; $V(s_t)$ enters undiscounted.
#
# ### Exercise 1: the TD error
# Complete `td_error`. It must work elementwise on NumPy arrays (the experiment below calls it
# once per time step for 300 independent runs at once), so use arithmetic, not `if`.

# %%
def td_error(reward, value, next_value, terminated, gamma):
    """delta = reward + gamma * (1 - terminated) * next_value - value, elementwise."""
    ### BEGIN SOLUTION
    return reward + gamma * (1.0 - np.asarray(terminated, dtype=float)) * next_value - value
    ### END SOLUTION


td_error = check("tabular.td_error", td_error)

# %% [markdown]
# ### 1.3 Bias and variance, measured across 300 seeds
# We run first-visit MC and TD(0) on 300 independent runs of 100 episodes (all runs advance
# together as arrays), starting from $V = 0$, and split the squared error of the estimates,
# averaged over the 5 states, into
# $$\underbrace{\mathbb E\big[(\hat V - V)^2\big]}_{\text{MSE}} =
#   \underbrace{\big(\mathbb E[\hat V] - V\big)^2}_{\text{bias}^2} +
#   \underbrace{\mathrm{Var}[\hat V]}_{\text{variance}},$$
# where $\mathbb E$ and $\mathrm{Var}$ are taken across the runs. TD(0) is run with a constant
# step $\alpha = 0.1$ and with the decaying step $\alpha = 1/N(s)$.

# %%
t0 = time.perf_counter()
estimates = {
    "first-visit MC": tabular.mc_estimates(walk5),
    "TD(0), alpha=0.1": tabular.td0_estimates(walk5, 0.1, td_error_fn=td_error),
    "TD(0), alpha=1/N(s)": tabular.td0_estimates(walk5, "1/n", td_error_fn=td_error),
}
stats = {}
for name, est in estimates.items():
    inner = est[:, :, 1:-1]  # [runs, episodes, 5 states]
    stats[name] = {
        "bias2": ((inner.mean(axis=0) - truth5) ** 2).mean(axis=-1),
        "var": inner.var(axis=0).mean(axis=-1),
        "rms": np.sqrt(((inner - truth5) ** 2).mean(axis=-1)),  # [runs, episodes]
    }
print(f"{walk5.n_runs} runs x {walk5.n_episodes} episodes in {time.perf_counter() - t0:.2f} s")

fig, axes = plt.subplots(1, 3, figsize=(14, 4))
plot_curves({k: v["rms"] for k, v in stats.items()}, ax=axes[0], xlabel="episodes",
            ylabel="RMS error (mean over runs)", title="Error of the estimate")
for ax, key, label in ((axes[1], "bias2", "bias$^2$"), (axes[2], "var", "variance")):
    for name, s in stats.items():
        ax.plot(np.arange(1, 101), s[key], label=name)
    ax.set_yscale("log")
    ax.set_xlabel("episodes")
    ax.set_ylabel(f"{label} (mean over states)")
    ax.set_title(f"{label} across runs")
axes[1].legend()
plt.tight_layout()
plt.show()

mc, td, td_n = (stats[k] for k in estimates)
for k in (1, 10, 100):
    i = k - 1
    print(f"after {k:3d} episodes: bias^2 MC {mc['bias2'][i]:.4f} vs TD {td['bias2'][i]:.4f}"
          f" | variance MC {mc['var'][i]:.4f} vs TD {td['var'][i]:.4f}"
          f" | TD 1/N: bias^2 {td_n['bias2'][i]:.4f}, variance {td_n['var'][i]:.4f}")
assert mc["var"][9] > 5 * td["var"][9]        # MC: high variance
assert td["bias2"][9] > 10 * mc["bias2"][9]   # TD: biased early, by bootstrapping on V = 0
print(f"constant alpha = 0.1: bias^2 averaged over episodes 81-100 = {td['bias2'][80:].mean():.4f}"
      f" (decaying 1/N(s): {td_n['bias2'][80:].mean():.5f})")
assert td_n["bias2"][99] < 0.002 and td_n["rms"][:, 99].mean() < 0.6 * td_n["rms"][:, 9].mean()

# %% [markdown]
# **Where TD's bias comes from.** The TD target $r_{t+1} + \gamma V(s_{t+1})$ uses the
# *current estimate* $V(s_{t+1})$, not the true $V^\pi(s_{t+1})$. Its expectation is
# $V^\pi(s_t) + \gamma\,\mathbb E\big[V(s_{t+1}) - V^\pi(s_{t+1})\big]$: biased exactly by the
# (discounted) error of the value we bootstrap on. Early on $V = 0$ everywhere, so the bias is
# large; as $V$ improves the bias shrinks, and it vanishes at $V = V^\pi$, the fixed point of
# the expected update. The target is low-variance because it contains one random reward and
# one random next state instead of a whole trajectory. (MC's small bias in the very first
# episodes has a different, trivial cause: states not visited yet keep their initial 0.)
#
# **How large is that bias, and does it last?** It is transient, inherited from the current
# estimate, not built into the method. Tabular TD(0) converges to $V^\pi$ with probability 1
# when every state keeps being visited and the step sizes satisfy $\sum_t \alpha_t = \infty$,
# $\sum_t \alpha_t^2 < \infty$ (e.g. $1/N(s)$, the green curves: its bias$^2$ keeps falling). A
# constant $\alpha$ only brings the estimate into a neighbourhood of $V^\pi$ of size
# $O(\alpha)$: it keeps fluctuating (the orange variance levels off) and keeps a small bias of
# the same order (the orange bias$^2$ levels off at the value printed above: the states visited
# next are correlated with the latest updates). That residue comes from the constant step size
# and shrinks to 0 with $\alpha$. Bias that does *not* go away needs function approximation
# (notebook 04 onwards).
#
# ### 1.4 n-step TD: the dial between TD(0) and Monte Carlo
# The **n-step return** uses $n$ real rewards and then bootstraps:
# $$G_t^{(n)} = r_{t+1} + \gamma r_{t+2} + \dots + \gamma^{n-1} r_{t+n} + \gamma^n V(s_{t+n}),$$
# and the update is $V(s_t) \leftarrow V(s_t) + \alpha\,(G_t^{(n)} - V(s_t))$. With $n = 1$
# this is TD(0). If the episode ends at $T \le t + n$, there is nothing to bootstrap from and
# $G_t^{(n)}$ is the Monte-Carlo return $G_t$: MC is the case $n = \infty$. More sampled
# rewards mean less dependence on the imperfect $V$ (less bias) and more randomness (more
# variance).
#
# ### Exercise 2: the n-step return
# `rewards` holds the $k$ rewards of the window on its **last** axis ($k = n$, or fewer if the
# episode ended); `bootstrap` is $V(s_{t+k})$ and `terminated` says the episode ended inside the
# window. Leading axes must broadcast: the sweep below passes rewards of shape
# `[runs, n]` with `bootstrap` of shape `[step sizes, runs]`.

# %%
def n_step_return(rewards, bootstrap, terminated, gamma):
    """sum_i gamma^i rewards[..., i] + gamma^k (1 - terminated) bootstrap; k = rewards.shape[-1]."""
    ### BEGIN SOLUTION
    rewards = np.asarray(rewards, dtype=float)
    k = rewards.shape[-1]
    head = (rewards * gamma ** np.arange(k)).sum(axis=-1)
    return head + gamma**k * (1.0 - np.asarray(terminated, dtype=float)) * bootstrap
    ### END SOLUTION


n_step_return = check("tabular.n_step_return", n_step_return)

# %% [markdown]
# Two sanity checks on one episode with $\gamma = 0.9$: $n = 1$ gives the TD target, and any
# $n$ that reaches past the end of the episode gives the Monte-Carlo return.

# %%
r_ep = np.array([0.0, 1.0, 0.0, -1.0, 2.0])
V_guess = np.array([0.5, 0.2, -0.3, 0.4, 0.1])  # V(s_0..s_4); s_5 is terminal
g_mc = tabular.returns_to_go(r_ep, 0.9)[0]
g_1 = n_step_return(r_ep[:1], V_guess[1], False, 0.9)
g_all = n_step_return(r_ep, 0.0, True, 0.9)
print(f"G^(1) = {g_1:.3f} (TD target {r_ep[0] + 0.9 * V_guess[1]:.3f}); "
      f"G^(5) = {g_all:.3f} (MC return {g_mc:.3f})")
assert np.isclose(g_1, r_ep[0] + 0.9 * V_guess[1]) and np.isclose(g_all, g_mc)

# %% [markdown]
# **The classic experiment.** The 19-state walk, 10 episodes per run, 100 runs, $V_0 = 0$:
# the RMS error over the 19 states, averaged over the 10 episodes and the runs, for each step
# size $\alpha$ and $n \in \{1, 2, 4, 8, \infty\}$. All runs and all step sizes advance
# together as arrays; the updates happen in exactly the order of the online algorithm.

# %%
t0 = time.perf_counter()
walk19 = tabular.sample_random_walks(19, n_episodes=10, n_runs=100, seed=2)
alphas = np.round(np.concatenate([[0.01, 0.02, 0.03], np.arange(0.05, 1.0001, 0.05)]), 2)
ns = {"n=1 (TD(0))": 1, "n=2": 2, "n=4": 4, "n=8": 8, "n=inf (MC)": None}
sweep = {}
for label, n in ns.items():
    err = tabular.nstep_td_sweep(walk19, n, alphas, gamma=1.0, target_fn=n_step_return)
    sweep[label] = err[:, :, 1:].mean(axis=(1, 2))  # [alphas]
print(f"sweep of {len(ns)} n x {len(alphas)} step sizes x 100 runs: "
      f"{time.perf_counter() - t0:.2f} s")

fig, ax = plt.subplots()
for label, curve in sweep.items():
    ax.plot(alphas, curve, label=label)
ax.set_ylim(0.2, 0.6)
ax.set_xlabel("step size alpha")
ax.set_ylabel("RMS error, first 10 episodes")
ax.set_title("19-state random walk: n-step TD (100 runs)")
ax.legend()
plt.show()

best = {label: (curve.min(), alphas[curve.argmin()]) for label, curve in sweep.items()}
for label, (e, a) in best.items():
    print(f"{label:12s} best RMS {e:.3f} at alpha = {a:.2f}")
assert best["n=4"][0] < best["n=1 (TD(0))"][0] - 0.03
assert best["n=4"][0] < best["n=inf (MC)"][0] - 0.1

# %% [markdown]
# An intermediate $n$ wins: $n = 1$ propagates information one state per update (on 19 states
# that is slow, and the estimates lean on $V_0 = 0$ for long), while MC pays for its unbiased
# targets with high variance and needs a small $\alpha$. Note that the best $\alpha$ shrinks
# as $n$ grows, a direct sign of the growing variance of the target. GAE (notebook on actor-critic
# methods) mixes all n-step returns with weights $(1-\lambda)\lambda^{n-1}$ for the same reason.
#
# ## 2. Control: SARSA and Q-learning
# **Control** means finding a good policy. Generalised policy iteration alternates evaluating
# the current policy and making it greedier. Without a model, we learn action values $Q(s, a)$
# (a greedy step on $V$ would need $P$) and act **$\varepsilon$-greedily**: a random action
# with probability $\varepsilon$, otherwise $\arg\max_a Q(s, a)$ (ties broken at random).
#
# * **SARSA** (from the tuple $s, a, r, s', a'$) bootstraps on the action the agent *will
#   actually take* next:
#   $Q(s_t,a_t) \leftarrow Q(s_t,a_t) + \alpha\,[r_{t+1} + \gamma Q(s_{t+1}, a_{t+1}) - Q(s_t,a_t)]$.
#   It evaluates the $\varepsilon$-greedy policy it follows: **on-policy**.
# * **Q-learning** bootstraps on the best next action, whatever the agent does next:
#   $Q(s,a) \leftarrow Q(s,a) + \alpha\,[r + \gamma \max_{a'} Q(s', a') - Q(s,a)]$.
#   This is a sampled Bellman **optimality** backup, so it learns $Q^*$ (the greedy target
#   policy) from data of the $\varepsilon$-greedy behaviour: **off-policy**. The behaviour
#   policy does not matter as long as it keeps trying every action in every state.
#
# ### Exercises 3 and 4: the two targets
# Both take one transition: `q_next` is the row $Q(s', \cdot)$ of shape `[A]`.

# %%
def sarsa_target(reward, q_next, next_action, terminated, gamma):
    """reward + gamma * (1 - terminated) * q_next[next_action]."""
    ### BEGIN SOLUTION
    return reward + (0.0 if terminated else gamma * q_next[next_action])
    ### END SOLUTION


sarsa_target = check("tabular.sarsa_target", sarsa_target)

# %%
def q_learning_target(reward, q_next, terminated, gamma):
    """reward + gamma * (1 - terminated) * max(q_next)."""
    ### BEGIN SOLUTION
    return reward + (0.0 if terminated else gamma * np.max(q_next))
    ### END SOLUTION


q_learning_target = check("tabular.q_learning_target", q_learning_target)

# %% [markdown]
# ### Exercise 5: epsilon-greedy, with a fixed order of random numbers
# Now the parts that turn a target into an agent. The behaviour policy first: with probability
# $\varepsilon$ a uniformly random action (any of the $A$ actions, the greedy one included),
# otherwise a greedy one. A tie matters more than it seems: with $Q_0 = 0$ *every* action ties
# in every state, and `np.argmax`, which breaks ties towards action 0, would make a fresh agent
# repeat action 0 in every state it has not learned about yet. So ties are broken at random.
#
# **Contract** (the order in which random numbers are drawn is part of it, so that your agent
# and the reference make the same choices from the same generator):
# 1. draw one `rng.random()`; explore when it is below `epsilon`;
# 2. to explore, draw the action with `rng.integers` over all $A$ actions;
# 3. to exploit, list the maximisers of `q_row` in increasing order and pick one with
#    `rng.integers` over the length of that list (with a single maximiser this draws nothing,
#    since `rng.integers(1)` is always 0 and uses no randomness);
# 4. return a Python `int`.
#
# **What the check does.** 60 calls for each of four rows (one, two and four tied maxima) and
# $\varepsilon \in \{0, 0.1, 0.5, 1\}$, with `np.random.default_rng(7)`: your actions must
# be the reference's, call by call, and the generator must be in the same state afterwards.

# %%
def epsilon_greedy(q_row, epsilon, rng):
    """An action (int) for the action values q_row [A]: random with probability epsilon,
    else a maximiser of q_row with ties broken uniformly; random numbers drawn as in the
    contract above (rng.random(), then rng.integers)."""
    ### BEGIN SOLUTION
    if rng.random() < epsilon:
        return int(rng.integers(q_row.shape[0]))
    best = np.flatnonzero(q_row == q_row.max())
    return int(best[rng.integers(best.size)])
    ### END SOLUTION


epsilon_greedy = check("tabular.epsilon_greedy", epsilon_greedy)

# %% [markdown]
# ### Exercise 6: one episode of Q-learning
# The whole algorithm is a loop over episodes around one function that plays an episode and
# learns while it plays. Write that function, `q_learning_episode(env, Q, alpha, gamma,
# epsilon, rng)`:
# * start with `s, _ = env.reset()` (no seed: the caller seeds the environment once);
# * each step: choose `a = epsilon_greedy(Q[s], epsilon, rng)` with the Q of *that moment*
#   (after the previous update), take it with `env.step(a)`, and move `Q[s, a]` a fraction
#   `alpha` towards the Q-learning target (your `q_learning_target` computes it);
# * `terminated` means $s'$ is terminal: nothing is bootstrapped from it, whatever `Q[s']`
#   holds. `truncated` means a time limit cut the episode: $s'$ is an ordinary state whose
#   future was only not played, so the target still bootstraps. The loop ends when either is
#   set;
# * update `Q` (shape `[S, A]`) **in place**, and return `(episode_return, n_steps)`: the
#   undiscounted sum of the rewards and the number of steps.
#
# **What the check does.** (a) It plays episodes with your function and with the reference
# side by side in a deterministic 3x3 maze (−1 per step, −5 per bump, +10 at the exit) from the
# same generator, and compares returns, lengths and the whole Q table after each episode,
# starting from Q = 0 (all ties), from a random Q whose exit row is not 0 (a bootstrap from the
# terminal state shows), and with a time limit of 3 steps (every episode truncated). (b) It
# then runs 300 episodes of uniformly random behaviour ($\varepsilon = 1$) through
# `tabular.td_control(..., episode_fn=your_function)` and compares the learned Q with $Q^*$ from
# value iteration: Q-learning learns the optimal values from data of a policy that never
# tries to be good, the point of being off-policy.

# %%
def q_learning_episode(env, Q, alpha, gamma, epsilon, rng):
    """Play one episode from env.reset() with epsilon-greedy actions, updating Q [S, A] in place
    towards r + gamma * max_a' Q[s', a'] (no bootstrap when terminated; truncated still
    bootstraps). Returns (undiscounted return, number of steps)."""
    ### BEGIN SOLUTION
    s, _ = env.reset()
    total, steps, done = 0.0, 0, False
    while not done:
        a = epsilon_greedy(Q[s], epsilon, rng)
        s2, r, terminated, truncated, _ = env.step(a)
        target = q_learning_target(r, Q[s2], terminated, gamma)
        Q[s, a] += alpha * (target - Q[s, a])
        total, steps = total + r, steps + 1
        s, done = s2, terminated or truncated
    return total, steps
    ### END SOLUTION


q_learning_episode = check("tabular.q_learning_episode", q_learning_episode)

# %% [markdown]
# The package's version, for comparison. It has two optional extras that the shaping
# experiment of section 5 uses (a reward hook and a target hook) and checks its arguments:

# %%
print(show_source(tabular.q_learning_episode))

# %% [markdown]
# **Why the contract separates `terminated` from `truncated`.** Take the 3x3 maze of the check
# with a time limit of 8 steps, and let the agent behave uniformly at random ($\varepsilon = 1$)
# for 500 episodes. Your Q-learning learns $Q^*$ anyway: it is off-policy, and a cut episode
# still bootstraps, so the time limit changes which data arrive, not what is learned. Then the
# same function on the same environment behind a wrapper that reports every time-limit cut as
# a termination: each cut now teaches "the future from here is worth 0", so every state where
# walks run out of time gets targets without their future, and its values drift away from
# $V^*$.

# %%
class TruncationAsTermination(gym.Wrapper):
    """The mistake under test: a time-limit cut reported as the end of the task."""

    def step(self, action):
        s2, r, terminated, truncated, info = self.env.step(action)
        return s2, r, terminated or truncated, truncated, info


MAZE3 = ("S.#", "...", "#.G")
maze3_mdp = TabularMDP.from_gymnasium(GridWorld(MAZE3, step_reward=-1.0), gamma=0.9)
V3_star = value_iteration(maze3_mdp, 1e-12)[0]
Q3 = {}
for label, wrap in (("truncation bootstraps", lambda e: e),
                    ("truncation as termination", TruncationAsTermination)):
    env3 = wrap(gym.wrappers.TimeLimit(GridWorld(MAZE3, step_reward=-1.0), 8))
    Q3[label] = tabular.td_control(env3, "q_learning", 500, alpha=0.5, epsilon=1.0, gamma=0.9,
                                   seed=0, episode_fn=q_learning_episode).Q
err3 = {k: np.abs(Q.max(axis=1) - V3_star).max() for k, Q in Q3.items()}
print(f"max |max_a Q(s, a) - V*(s)| after 500 random episodes with a time limit of 8: "
      f"{err3['truncation bootstraps']:.1e} when truncation bootstraps, "
      f"{err3['truncation as termination']:.2f} when it is treated as termination")
assert err3["truncation bootstraps"] < 1e-2 and err3["truncation as termination"] > 1.0

fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
walls3 = np.array([ch == "#" for ch in "".join(MAZE3)])
for ax, (title, V3) in zip(axes, [("V* (value iteration)", V3_star)]
                           + [(k, Q.max(axis=1)) for k, Q in Q3.items()]):
    plot_value_grid(V3, (3, 3), blocked=walls3 | maze3_mdp.terminal, ax=ax, title=title)
plt.tight_layout()
plt.show()

# %% [markdown]
# From here on, every Q-learning run in this section plays its episodes with **your**
# `q_learning_episode` (passed to `tabular.td_control` as `episode_fn`, which adds the loop
# over episodes, one seeded generator and an optional step limit). SARSA uses the package's
# `tabular.sarsa_episode` with your `sarsa_target`: the same loop, except that the next action
# is drawn before the update, because the target needs it.

# %% [markdown]
# A table needs finitely many states and actions. `tabular.td_control` checks the spaces at
# its entry, so an environment with continuous observations fails with a clear message
# instead of an obscure indexing error:

# %%
try:
    tabular.td_control(gym.make("CartPole-v1"), "q_learning", 1, alpha=0.5, epsilon=0.1,
                       gamma=0.99, seed=0)
except TypeError as err:
    print(f"TypeError: {err}")
else:
    raise AssertionError("CartPole should be rejected by a tabular method")

# %% [markdown]
# ### 2.1 Cliff Walking: the safe path and the optimal path
# gymnasium's Cliff Walking is a 4 x 12 grid: start bottom left, goal bottom right, and the
# cells between them are a cliff. Every step costs $-1$; stepping into the cliff costs $-100$
# and sends the agent back to the start. We run both methods with $\varepsilon = 0.1$,
# $\alpha = 0.25$, $\gamma = 1$, 400 episodes, 6 seeds, and record the **online return**: the
# return of the $\varepsilon$-greedy episodes the agent actually lives through while learning.

# %%
cliff_id = tabular.latest_env_id("CliffWalking")
cliff = gym.make(cliff_id)
CLIFF_SEEDS, CLIFF_EPISODES = range(6), 400
t0 = time.perf_counter()
runs = {}
hooks = {"sarsa": {"target_fn": sarsa_target}, "q_learning": {"episode_fn": q_learning_episode}}
for method, hook in hooks.items():
    runs[method] = [tabular.td_control(cliff, method, CLIFF_EPISODES, alpha=0.25, epsilon=0.1,
                                       gamma=1.0, seed=s, **hook)
                    for s in CLIFF_SEEDS]
print(f"{cliff_id}: 2 methods x {len(CLIFF_SEEDS)} seeds x {CLIFF_EPISODES} episodes in "
      f"{time.perf_counter() - t0:.1f} s")

online = {m: np.array([r.returns for r in rs]) for m, rs in runs.items()}
ax = plot_curves({"SARSA": online["sarsa"], "Q-learning": online["q_learning"]}, smooth=20,
                 xlabel="episode", ylabel="online return (20-episode average)",
                 title=f"{cliff_id}, epsilon = 0.1 (band: 95% CI over {len(CLIFF_SEEDS)} seeds)")
ax.set_ylim(-120, 0)
plt.show()

# %% [markdown]
# Now the greedy path of each learned $Q$ (run without exploration):

# %%
paths = {m: [tabular.greedy_rollout(cliff, r.Q, max_steps=100) for r in rs]
         for m, rs in runs.items()}
cliff_cells = np.arange(37, 47)
fig, ax = plt.subplots(figsize=(9, 3.6))
tabular.draw_grid_paths(ax, 4, 12, {"SARSA (seed 0)": paths["sarsa"][0][0],
                                    "Q-learning (seed 0)": paths["q_learning"][0][0]},
                        blocked=cliff_cells, labels={36: "S", 47: "G"})
ax.set_title("Greedy paths after learning (grey: the cliff)")
plt.show()

steps = {m: [len(p) - 1 for p, _, reached in ps if reached] for m, ps in paths.items()}
edge = set(range(25, 35))  # the row right above the cliff (columns 1..10)
hug = {m: [sum(s in edge for s in p) for p, _, _ in ps] for m, ps in paths.items()}
late = {m: online[m][:, 50:].mean() for m in online}
falls = {m: (online[m][:, 50:] <= -100).mean() for m in online}  # episodes with a fall
spread = {m: online[m][:, 50:].std(axis=1).mean() for m in online}  # sd across episodes
print(f"greedy path lengths  SARSA {steps['sarsa']}  Q-learning {steps['q_learning']}")
print(f"cells next to the cliff on the greedy path  SARSA {hug['sarsa']}  "
      f"Q-learning {hug['q_learning']}")
print(f"online return (episodes 51-{CLIFF_EPISODES}, mean over seeds): SARSA {late['sarsa']:.1f}"
      f", Q-learning {late['q_learning']:.1f}")
print(f"episodes with a fall: SARSA {falls['sarsa']:.0%}, Q-learning {falls['q_learning']:.0%}; "
      f"sd of the online return: SARSA {spread['sarsa']:.0f}, Q-learning {spread['q_learning']:.0f}")
assert len(steps["q_learning"]) == len(CLIFF_SEEDS) and set(steps["q_learning"]) == {13}
assert len(steps["sarsa"]) == len(CLIFF_SEEDS) and min(steps["sarsa"]) >= 15
assert min(hug["q_learning"]) == 10 and max(hug["sarsa"]) == 0
assert late["sarsa"] > late["q_learning"] + 10
assert falls["q_learning"] > 2 * falls["sarsa"] and spread["q_learning"] > 1.5 * spread["sarsa"]

# %% [markdown]
# **Why.** Q-learning's target $\max_{a'} Q(s', a')$ evaluates the *greedy* policy, which
# walks along the cliff edge in 13 steps: that is $Q^*$ and its path is optimal. But the agent
# *behaves* $\varepsilon$-greedily, and on the edge a random step (probability
# $\varepsilon/4$ per step for "down") throws it off the cliff, so its online return is worse
# and far more variable (see the printed fraction of episodes with a fall).
# SARSA's target $Q(s', a')$ includes the exploration the agent really does, so it values the
# edge cells lower and learns the path that is best *for an $\varepsilon$-greedy agent*: a
# detour one or two rows up. With $\varepsilon \to 0$ over time both would converge to the
# optimal path. (With fewer episodes or a larger $\alpha$, SARSA's greedy path sometimes stalls
# in a rarely visited top-row cell whose action values are still nearly tied: those cells are
# visited only by exploration, so their estimates are noisy.)
#
# ### 2.2 Q-learning solves Taxi
# In Taxi the agent picks up a passenger and drops them at one of four places: $-1$ per
# step, $+20$ for a correct drop-off, $-10$ for an illegal pick-up or drop-off, 500 states,
# 6 actions, episodes truncated after 200 steps. Q-learning with $\alpha = 0.5$,
# $\gamma = 0.99$, $\varepsilon = 0.1$ for 2000 episodes; then the greedy policy is evaluated
# on 100 seeded episodes and compared with the optimal policy from value iteration (the
# environment's table, as in notebook 02) on the same 100 start states.
# `tabular.latest_env_id` picks the newest registered version of an environment: Taxi-v4 and
# CliffWalking-v1 in gymnasium 1.4 (Taxi-v3 and CliffWalking-v0 in older releases; the newer
# versions only add or fix optional variants, the default dynamics are the same).

# %%
taxi_id = tabular.latest_env_id("Taxi")
taxi = gym.make(taxi_id)
t0 = time.perf_counter()
taxi_run = tabular.td_control(taxi, "q_learning", 2000, alpha=0.5, epsilon=0.1, gamma=0.99,
                              seed=0, max_steps=200, episode_fn=q_learning_episode)
taxi_greedy = tabular.evaluate_greedy(taxi, taxi_run.Q, n_episodes=100, seed=10_000)
taxi_mdp = TabularMDP.from_gymnasium(taxi, gamma=0.99)
V_taxi, _, _ = value_iteration(taxi_mdp)
taxi_opt = tabular.evaluate_greedy(taxi, q_from_v(taxi_mdp, V_taxi), n_episodes=100,
                                   seed=10_000)
print(f"{taxi_id}: {taxi_run.lengths.sum()} steps of training in "
      f"{time.perf_counter() - t0:.1f} s")

ax = plot_curves({"Q-learning (online, epsilon = 0.1)": taxi_run.returns}, smooth=50,
                 xlabel="episode", ylabel="return (50-episode average)",
                 title=f"{taxi_id}: Q-learning, seed 0")
ax.axhline(taxi_opt.mean(), color="k", ls="--", label="optimal policy (greedy, no exploration)")
ax.set_ylim(-250, 15)
ax.legend()
plt.show()
print(f"greedy Q-learning policy: {taxi_greedy.mean():.2f} average return over 100 episodes "
      f"(optimal {taxi_opt.mean():.2f}); same return as optimal in "
      f"{(taxi_greedy == taxi_opt).mean():.0%} of the episodes")
assert taxi_greedy.mean() >= 7.0
assert taxi_greedy.mean() >= taxi_opt.mean() - 0.5

# %% [markdown]
# ## 3. On-policy vs off-policy, online vs offline
# Two policies play roles in every RL algorithm:
# * the **behaviour policy** $\mu$ generates the data (here: $\varepsilon$-greedy);
# * the **target policy** $\pi$ is the one being evaluated or improved (SARSA: the same
#   $\varepsilon$-greedy policy; Q-learning: the greedy policy).
#
# An algorithm is **on-policy** if $\mu = \pi$ (it learns about the policy that collected
# the data) and **off-policy** if $\mu \ne \pi$. Off-policy learning needs a correction for the
# mismatch: importance sampling (section 4), or a target that does not depend on the
# behaviour's next action, like Q-learning's $\max$. In exchange it can reuse old data (a
# replay buffer) and learn from other agents or humans.
#
# | algorithm | on / off-policy | why |
# |---|---|---|
# | SARSA, A2C / A3C, REINFORCE | on-policy | each update needs fresh samples from the current policy |
# | PPO | on-policy (approximately) | reuses each batch for a few epochs; the importance ratio $\pi_\theta/\pi_{\theta_\text{old}}$ corrects the small drift and clipping keeps it near 1 |
# | Q-learning, DQN | off-policy | max-backup; replay buffer of old $\varepsilon$-greedy data |
# | SAC, TD3, DDPG | off-policy | replay buffer; critics learn $Q$ of the current actor from old data |
#
# A third role appears in language-model alignment (Part III): the **reference model**, a frozen
# copy of the starting model that anchors a KL penalty. It does not collect data, so it is
# neither the behaviour nor the target policy. The standard example of off-policy learning is
# DQN on Atari (notebook 04): it learns from a replay buffer of experience collected by older,
# exploring versions of itself.
#
# **Online vs offline** is a separate axis: can the agent keep interacting to collect new
# data (online), or does it learn from a fixed dataset (offline)?
#
# | | on-policy | off-policy |
# |---|---|---|
# | **online** | SARSA, PPO, GRPO (sample from the current policy, update, repeat) | Q-learning, DQN, SAC (interact, store in a replay buffer, learn from old data) |
# | **offline** | practically empty: a fixed dataset was collected by some other policy, so learning a new policy from it is off-policy by definition (only evaluating the very policy that logged the data is on-policy) | CQL, IQL, Decision Transformer; DPO trains on a fixed preference dataset and is essentially offline |
#
# ## 4. Importance sampling
# Off-policy evaluation asks: what is $\mathbb E_{x\sim p}[f(x)]$ when the samples come from
# another distribution $q$? Multiply and divide by $q$:
# $$\mathbb E_{x\sim p}[f(x)] = \sum_x p(x) f(x) = \sum_x q(x)\,\frac{p(x)}{q(x)}\,f(x)
#   = \mathbb E_{x\sim q}\big[w(x) f(x)\big], \qquad w(x) = \frac{p(x)}{q(x)} .$$
# The step is valid only if $q(x) > 0$ wherever $p(x) f(x) \ne 0$ (**support**): $q$ must be
# able to produce everything $p$ cares about. The **ordinary IS** estimate
# $\frac1N \sum_i w(x_i) f(x_i)$ with $x_i \sim q$ is then unbiased. The **weighted
# (self-normalised)** estimate $\sum_i w_i f(x_i) / \sum_i w_i$ is biased for finite $N$
# (consistent as $N \to \infty$) but usually has much lower variance. In RL, $x$ is an action
# (or a trajectory), $p = \pi$ and $q = \mu$, so $w = \pi(a \mid s)/\mu(a \mid s)$: exactly
# PPO's ratio $\pi_\theta / \pi_{\theta_\text{old}}$.
#
# ### Exercise 7: importance weights
# Return $w = p/q$ elementwise, $0$ where $p = q = 0$, and raise `ValueError` where
# $q = 0 < p$ (the support condition fails).

# %%
def importance_weights(p, q):
    """w = p / q elementwise; 0 where p = q = 0; ValueError where q = 0 < p."""
    ### BEGIN SOLUTION
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if np.any((q == 0) & (p > 0)):
        raise ValueError("q(x) = 0 where p(x) > 0: q does not cover the support of p")
    return np.divide(p, q, out=np.zeros(np.broadcast(p, q).shape), where=q > 0)
    ### END SOLUTION


importance_weights = check("tabular.importance_weights", importance_weights)

# %% [markdown]
# **Experiment.** Target $p = \mathcal N(0, 1)$, behaviour $q = \mathcal N(\mu, 1)$ for shifts
# $\mu$ from 0 to 3; estimate $\mathbb E_p[x^2] = 1$ from $N = 500$ samples of $q$, repeated
# 400 times per shift. For this pair the weights have closed forms:
# $w(x) = e^{-\mu x + \mu^2/2}$, $\mathbb E_q[w^2] = e^{\mu^2}$, so the **effective sample
# size** $\text{ESS} = (\sum_i w_i)^2 / \sum_i w_i^2$ is about $N e^{-\mu^2}$, and the variance
# of one term is $\mathrm{Var}_q[w x^2] = e^{\mu^2}(\mu^4 + 6\mu^2 + 3) - 1$.

# %%
def normal_pdf(x, mean):
    return np.exp(-0.5 * (x - mean) ** 2) / np.sqrt(2 * np.pi)


rng = np.random.default_rng(3)
shifts = np.linspace(0.0, 3.0, 13)
N, REPEATS = 500, 400
ordinary, weighted, ess = (np.zeros((len(shifts), REPEATS)) for _ in range(3))
for i, mu in enumerate(shifts):
    x = rng.normal(mu, 1.0, size=(REPEATS, N))
    w = importance_weights(normal_pdf(x, 0.0), normal_pdf(x, mu))
    ordinary[i] = tabular.is_estimate(x**2, w)
    weighted[i] = tabular.is_estimate(x**2, w, weighted=True)
    ess[i] = tabular.effective_sample_size(w)
theory_var = (np.exp(shifts**2) * (shifts**4 + 6 * shifts**2 + 3) - 1) / N

fig, axes = plt.subplots(1, 3, figsize=(14, 4))
for est, name in ((ordinary, "ordinary IS"), (weighted, "weighted IS")):
    mean, low, high = seed_band(est.T, band="std")
    axes[0].plot(shifts, mean, label=name)
    axes[0].fill_between(shifts, low, high, alpha=0.2)
    axes[1].plot(shifts, est.var(axis=1), "o-", label=name)
axes[0].axhline(1.0, color="k", ls="--", label="truth E_p[x^2] = 1")
axes[0].set_ylim(-0.5, 3)
axes[0].set_title("estimate (mean +- 1 sd over repeats)")
axes[1].plot(shifts, theory_var, "k--", label="theory (ordinary)")
axes[1].set_yscale("log")
axes[1].set_title("variance of the estimate")
axes[2].plot(shifts, ess.mean(axis=1) / N, "o-", label="measured")
axes[2].plot(shifts, np.exp(-shifts**2), "k--", label="exp(-mu^2)")
axes[2].set_yscale("log")
axes[2].set_title("effective sample size / N")
for ax in axes:
    ax.set_xlabel("shift mu between p and q")
    ax.legend()
axes[0].set_ylabel("estimate")
axes[1].set_ylabel("variance")
axes[2].set_ylabel("ESS / N")
plt.tight_layout()
plt.show()

for i in (0, 4, 8, 12):
    print(f"mu = {shifts[i]:.2f}: ordinary {ordinary[i].mean():.3f} +- {ordinary[i].std():.3f}, "
          f"weighted {weighted[i].mean():.3f} +- {weighted[i].std():.3f}, "
          f"ESS {ess[i].mean():6.1f} of {N}, median ordinary {np.median(ordinary[i]):.3f}")
small = shifts <= 1.5
z = (ordinary[small].mean(axis=1) - 1.0) / (ordinary[small].std(axis=1) / np.sqrt(REPEATS))
assert np.all(np.abs(z) < 4)  # unbiased: the average estimate matches 1 within the noise
assert ordinary[8].var() > 30 * ordinary[0].var()
near = shifts <= 1.0
assert np.allclose(ess[near].mean(axis=1) / N, np.exp(-shifts[near] ** 2), rtol=0.15)
assert weighted[8].var() < ordinary[8].var()

# %% [markdown]
# Ordinary IS is unbiased, but as $q$ moves away from $p$ a few samples with huge weights carry
# the estimate: the variance grows like $e^{\mu^2}$ and the ESS collapses. The *mean* of the
# estimates stays near 1 for a while, but the *typical* (median) estimate falls below 1,
# because the rare heavy-weight samples that pull the mean up are usually missing. The same
# effect fools the measured ESS: for large shifts it lies above the theory $N e^{-\mu^2}$ (at
# $\mu = 3$ the theory says $500\,e^{-9} \approx 0.06$, while the measured ESS printed above is
# far larger, and can never fall below 1), because the samples that would reveal how uneven
# the weights really are have not been drawn. A "healthy-looking" sample ESS is no proof of a good estimate when the weights are heavy-tailed.
#
# Importance sampling is also the starting point of PPO (notebook 07), whose ratio
# $\pi_\theta(a_t|s_t)/\pi_{\theta_\text{old}}(a_t|s_t)$ is taken per step, for one action,
# never multiplied along an episode. Its clip is not a variance fix: it keeps each update inside
# a trust region around the old policy, as notebook 07 explains.
#
# ## 5. Potential-based reward shaping
# Sparse rewards make learning slow, so it is tempting to add hints. **Potential-based
# shaping** adds
# $$r'(s, a, s') = r(s, a, s') + \gamma\,\Phi(s') - \Phi(s)$$
# for any function $\Phi$ of the state, with $\Phi(\text{terminal}) = 0$. Along any trajectory
# the extra terms **telescope**:
# $$\sum_{t=0}^{T-1} \gamma^t\big(\gamma\Phi(s_{t+1}) - \Phi(s_t)\big)
#   = \gamma^T \Phi(s_T) - \Phi(s_0) = -\Phi(s_0),$$
# so every return from $s_0$ shifts by the same $-\Phi(s_0)$ whatever the actions are (for
# infinite horizons use $\gamma < 1$ and bounded $\Phi$). Hence $Q'^*(s, a) = Q^*(s, a) -
# \Phi(s)$ and $V'^* = V^* - \Phi$: the ranking of actions in each state, and so the optimal
# policy, is unchanged (Ng, Harada and Russell, 1999). A bonus that is *not* of this form can
# change the optimal policy.
#
# ### Exercise 8: the shaped reward

# %%
def shaped_reward(reward, phi, phi_next, terminated, gamma):
    """reward + gamma * (1 - terminated) * phi_next - phi, elementwise."""
    ### BEGIN SOLUTION
    return reward + gamma * (1.0 - np.asarray(terminated, dtype=float)) * phi_next - phi
    ### END SOLUTION


shaped_reward = check("tabular.shaped_reward", shaped_reward)

# %% [markdown]
# **Proof by computation.** A 7 x 8 maze built with the course GridWorld (+10 at the exit, −5
# for bumping into a wall, $\gamma = 0.99$). The potential is minus the shortest-path distance
# to the exit, $\Phi(s) = -d(s)$. Shaping the exact tables,
# $R'(s, a) = R(s, a) + \sum_{s'} P(s' \mid s, a)\,\gamma\Phi(s') - \Phi(s)$, and solving both
# MDPs by value iteration must give the same greedy actions and $Q'^* = Q^* - \Phi$. A
# careless designer's alternative, "+1 each time the agent enters the checkpoint cell on the
# way", is not potential-based.

# %%
MAZE = ("S.......",
        ".######.",
        "........",
        ".######.",
        "........",
        "#######.",
        "G.......")
GAMMA_MAZE = 0.99
maze = GridWorld(MAZE)
P, R, terminal = maze.transition_table()
maze_mdp = TabularMDP(P, R, GAMMA_MAZE, terminal)
dist = tabular.grid_distances(MAZE)
phi = np.where(np.isfinite(dist), -dist, 0.0)
CHECKPOINT = 35  # row 4, column 3: on one of the two shortest paths

V_star, _, _ = value_iteration(maze_mdp)
Q_star = q_from_v(maze_mdp, V_star)
shaped_mdp = tabular.shape_mdp(maze_mdp, phi)
Q_shaped = q_from_v(shaped_mdp, value_iteration(shaped_mdp)[0])
bonus_mdp = tabular.add_entry_bonus(maze_mdp, CHECKPOINT, 1.0)
Q_bonus = q_from_v(bonus_mdp, value_iteration(bonus_mdp)[0])

free = np.array([c in "S." for c in "".join(MAZE)])
same_shaped = np.array_equal(Q_star[free].argmax(axis=1), Q_shaped[free].argmax(axis=1))
shift_err = np.abs(Q_shaped[free] - (Q_star[free] - phi[free, None])).max()
changed = (Q_star[free].argmax(axis=1) != Q_bonus[free].argmax(axis=1)).sum()
print(f"potential shaping: same greedy action in all {free.sum()} cells: {same_shaped}; "
      f"max |Q'* - (Q* - Phi)| = {shift_err:.1e}")
print(f"checkpoint bonus: greedy action changes in {changed} of {free.sum()} cells")
assert same_shaped and shift_err < 1e-8 and changed >= 10

# %% [markdown]
# Learning: Q-learning ($\alpha = 0.5$, $\varepsilon = 0.1$, $Q_0 = 0$, at most 150 steps per
# episode, 6 seeds, 50 episodes) on the plain reward, the potential-shaped reward and the
# checkpoint bonus. The shaped agents use your `shaped_reward`; every curve shows the
# *environment's* steps per episode.

# %%
shaping_fns = {
    "plain reward": None,
    "potential shaping": lambda s, a, r, s2, term: shaped_reward(r, phi[s], phi[s2], term,
                                                                 GAMMA_MAZE),
    "checkpoint bonus (+1)": lambda s, a, r, s2, term: r + (1.0 if s2 == CHECKPOINT else 0.0),
}
t0 = time.perf_counter()
maze_runs = {name: [tabular.td_control(maze, "q_learning", 50, alpha=0.5, epsilon=0.1,
                                       gamma=GAMMA_MAZE, seed=s, max_steps=150, reward_fn=fn)
                    for s in range(6)]
             for name, fn in shaping_fns.items()}
print(f"3 rewards x 6 seeds x 50 episodes in {time.perf_counter() - t0:.1f} s")

fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
plot_curves({k: np.array([r.lengths for r in v]) for k, v in maze_runs.items()}, ax=axes[0],
            xlabel="episode", ylabel="steps in the episode (150 = never reached the exit)",
            title="Q-learning in the maze (shortest path: 20 steps)")
bonus_path = tabular.greedy_rollout(maze, Q_bonus, max_steps=30)[0]
tabular.draw_grid_paths(
    axes[1], len(MAZE), len(MAZE[0]),
    {"optimal (plain and shaped)": tabular.greedy_rollout(maze, Q_shaped)[0],
     "optimal with the bonus": bonus_path},
    blocked=np.flatnonzero(~free & ~terminal), labels={maze.start: "S", 48: "G", CHECKPOINT: "+1"})
axes[1].set_title("Exact optimal greedy paths (orange ends in a +1 loop)")
plt.tight_layout()
plt.show()

first20 = {k: np.mean([r.lengths[:20].mean() for r in v]) for k, v in maze_runs.items()}
greedy_len = {k: [len(p) - 1 if ok else None
                  for p, _, ok in (tabular.greedy_rollout(maze, r.Q, max_steps=100) for r in v)]
              for k, v in maze_runs.items()}
goal_rate = {k: np.mean([r.terminated[-20:].mean() for r in v]) for k, v in maze_runs.items()}
for k in maze_runs:
    print(f"{k:22s} mean steps, episodes 1-20: {first20[k]:6.1f} | exit reached in the last 20 "
          f"episodes: {goal_rate[k]:4.0%} | greedy path lengths {greedy_len[k]}")
print(f"exact optimal policy with the bonus, from S: {bonus_path[:9]} ... (never exits)")
assert first20["potential shaping"] < 0.5 * first20["plain reward"]
assert greedy_len["potential shaping"] == [20] * 6
assert goal_rate["checkpoint bonus (+1)"] < 0.2 and maze.terminal[bonus_path].sum() == 0

# %% [markdown]
# The potential-shaped agent finds the exit in its first episodes, because moving closer to
# the exit pays about $+1$ right away instead of a reward 20 steps later, and it ends with the
# same optimal 20-step path (the DP computation proves that this is no accident). The bonus
# agent learns what the bonus actually rewards: walk onto the checkpoint, step off, walk back
# on. Its return, $1 + \gamma^2 + \gamma^4 + \dots = 1/(1-\gamma^2) \approx 50$, beats the
# exit's $10\gamma^{19} \approx 8.3$: **reward hacking**, a cheap preview of what can happen
# when a language model is optimised against an imperfect reward model.
#
# Two practical remarks. Shaping changes *learning*, not the optimum, and a bad potential can
# slow learning down: with $\gamma = 0.95$ and this $\Phi = -d$, moving *away* from the exit
# from a cell more than $\gamma/(1-\gamma) = 19$ steps away also earns a positive shaping
# reward. And Q-learning with shaping from $Q_0 = 0$ behaves like unshaped Q-learning started
# from $Q_0(s, a) = \Phi(s)$ (Wiewiora, 2003): shaping is a way to inject a value guess.
#
# ## Common misconceptions
#
# * "TD learning has high bias" (and "GAE is expensive"). TD's bias comes only from bootstrapping
#   on an imperfect $V$; it fades as $V$ improves, and tabular TD(0) converges to $V^\pi$ under
#   the usual step-size conditions (section 1.3). GAE, which mixes n-step returns, costs one
#   backward pass, $O(T)$ (notebook 06). <!-- E-05 -->
# * "Off-policy means learning from data of a reference model". Off-policy means the behaviour
#   policy that collected the data differs from the target policy being learned; the RLHF
#   reference model is a frozen KL anchor that collects nothing (section 3). <!-- E-37 -->
# * "AlphaGo is the example of off-policy data reuse". Its reinforcement-learning stage was
#   policy-gradient self-play, which is on-policy, with tree search at play time; DQN's replay
#   buffer is the standard example (section 3). <!-- E-20 -->
# * "PPO clips the ratio to bound the variance of importance sampling". PPO's ratio is per step
#   and its clip enforces a trust region around the old policy (section 4; notebook 07).
# * "The episode is over when the time limit hits, so the target stops there too". A time-limit
#   cut (`truncated`) stops the *data*, not the task: the next state still has a future, and the
#   target must bootstrap from it. Treating the cut as a termination biases every value near
#   where episodes run out of time (measured after Exercise 6).
#
# ## What to remember
#
# * Prediction estimates $V^\pi$; control improves the policy. Both can learn from samples only.
# * MC target $G_t$: unbiased, high variance, available at the end of the episode.
# * TD(0): $\delta_t = r_{t+1} + \gamma V(s_{t+1}) - V(s_t)$, $V(s_t) \leftarrow V(s_t) +
#   \alpha\delta_t$; the target is biased by the error of $V(s_{t+1})$, low variance, online.
# * Bootstrap only from non-terminal next states: multiply by `(1 - terminated)`; a truncated
#   step (time limit) still bootstraps.
# * n-step returns $G_t^{(n)}$ interpolate between TD(0) ($n = 1$) and MC ($n = \infty$); an
#   intermediate $n$ often wins, and the best $\alpha$ shrinks as $n$ grows.
# * SARSA bootstraps on the next action taken (on-policy); Q-learning on $\max_{a'}Q(s', a')$
#   (off-policy, learns $Q^*$). On Cliff Walking: SARSA the safe path, Q-learning the optimal one.
# * Behaviour vs target policy defines on/off-policy; online vs offline is a separate axis.
# * Importance sampling: $\mathbb E_p[f] = \mathbb E_q[(p/q) f]$ if $q > 0$ where $pf \ne 0$;
#   variance grows fast with the mismatch; ESS $= (\sum w)^2 / \sum w^2$.
# * Potential-based shaping $r + \gamma\Phi(s') - \Phi(s)$ keeps the optimal policy; other
#   bonuses can be hacked.
#
# ## Further reading
#
# * Sutton & Barto (2018), chapter 5: Monte-Carlo prediction and control, and off-policy
#   prediction by (ordinary and weighted) importance sampling.
# * Sutton & Barto (2018), chapter 6: TD(0), SARSA, Q-learning, Cliff Walking, and the random
#   walk example; chapter 7: n-step methods and the n-vs-$\alpha$ experiment.
# * Sutton (1988), "Learning to predict by the methods of temporal differences", Machine
#   Learning: the original TD paper.
# * Watkins & Dayan (1992), "Q-learning", Machine Learning: the convergence proof of Q-learning.
# * Ng, Harada & Russell (1999), "Policy invariance under reward transformations: theory and
#   application to reward shaping", ICML: potential-based shaping and why it is safe.
# * Wiewiora (2003), "Potential-based shaping and Q-value initialization are equivalent", JAIR:
#   shaping as a value initialisation.
# * Levine, Kumar, Tucker & Fu (2020), "Offline reinforcement learning: tutorial, review, and
#   perspectives on open problems": the offline column of the table in section 3.
#
# ## 6. Interview questions
# 1. What is the difference between MC and TD(0) prediction, in one sentence each about the
#    target, the bias, the variance and when the update can happen?
#
# <details><summary>Answer</summary>
#
# MC's target is the full return $G_t$: unbiased, high variance (it sums every random step to
# the end), available only after the episode ends. TD(0)'s target is
# $r_{t+1} + \gamma V(s_{t+1})$: biased by the current error of $V(s_{t+1})$, low variance
# (one random step), available after one step, so it also works for continuing tasks.
# </details>
#
# 2. Is TD(0) biased? Does it converge?
#
# <details><summary>Answer</summary>
#
# Its *target* is biased while $V \ne V^\pi$, because it bootstraps on the estimate; the bias
# vanishes at the fixed point $V = V^\pi$. Tabular TD(0) converges to $V^\pi$ with probability
# 1 under the Robbins-Monro step-size conditions and sufficient exploration; with a constant
# step size it only reaches an $O(\alpha)$ neighbourhood of $V^\pi$ (it keeps fluctuating,
# and a small bias of order $\alpha$ remains).
# </details>
#
# 3. In the random-walk sweep, why does an intermediate $n$ beat both $n = 1$ and MC?
#
# <details><summary>Answer</summary>
#
# $n = 1$ passes information back one state per update and leans on the poor initial $V$;
# MC's targets are unbiased but noisy, which forces a small $\alpha$. An intermediate $n$
# propagates faster than TD(0) with less variance than MC. The best $n$ depends on the task
# and the amount of data.
# </details>
#
# 4. SARSA vs Q-learning on Cliff Walking: which path does each learn, why, and which is
#    on-policy?
#
# <details><summary>Answer</summary>
#
# SARSA bootstraps on the action actually taken, so it evaluates the $\varepsilon$-greedy
# policy it follows (on-policy) and learns a path away from the edge, where exploration is not
# fatal; its online return is higher. Q-learning bootstraps on $\max_{a'}Q$, so it learns
# $Q^*$ (off-policy) and the optimal 13-step path along the edge, but its $\varepsilon$-greedy
# behaviour falls off the cliff from time to time.
# </details>
#
# 5. Why does Q-learning need no importance weights although it is off-policy?
#
# <details><summary>Answer</summary>
#
# Its target $r + \gamma\max_{a'}Q(s', a')$ does not depend on which action the behaviour
# takes next; the only sampled action, $a$, is the one being evaluated in $Q(s, a)$, and
# $Q(s, a)$ is conditioned on it. So one-step Q-learning has nothing to re-weight. Multi-step
# off-policy returns (e.g. n-step Q-learning) do need corrections.
# </details>
#
# 6. Define behaviour and target policy. Classify PPO, A2C, DQN, SAC and TD3, and explain why
#    PPO is only "approximately" on-policy.
#
# <details><summary>Answer</summary>
#
# The behaviour policy generates the data, the target policy is the one being learned or
# evaluated; on-policy iff they coincide. A2C and PPO are on-policy; DQN, SAC and TD3 are
# off-policy. PPO reuses each batch for several epochs, so after the first gradient step the
# data come from $\pi_{\theta_\text{old}}$, not the current $\pi_\theta$; the ratio
# $\pi_\theta/\pi_{\theta_\text{old}}$ corrects this and the clip keeps the two close.
# </details>
#
# 7. Where does offline RL sit in the on/off-policy table, and where does DPO sit?
#
# <details><summary>Answer</summary>
#
# Offline RL learns from a fixed dataset collected by some other policy, so learning a new
# policy from it is off-policy; "offline on-policy" is practically empty. DPO trains on a fixed
# dataset of preference pairs, so it is essentially offline; PPO and GRPO for LLMs are online
# (they sample from the current policy).
# </details>
#
# 8. State the importance-sampling identity and its condition. Why does the variance explode,
#    and what is the effective sample size?
#
# <details><summary>Answer</summary>
#
# $\mathbb E_p[f] = \mathbb E_q[(p/q) f]$, valid when $q > 0$ wherever $p f \ne 0$. The
# variance of one term is $\mathbb E_q[w^2 f^2] - (\mathbb E_p f)^2$, and $\mathbb E_q[w^2]$
# grows quickly with the mismatch (for two unit Gaussians $\mu$ apart it is $e^{\mu^2}$). The
# ESS $(\sum w)^2/\sum w^2$ says how many equally weighted samples the weighted sample is worth;
# it is about $N/\mathbb E_q[w^2]$.
# </details>
#
# 9. Why does potential-based shaping keep the optimal policy, and what goes wrong with a
#    "+1 per visit" bonus?
#
# <details><summary>Answer</summary>
#
# The shaping terms telescope to $-\Phi(s_0)$ on every trajectory, so $Q'^*(s, a) = Q^*(s, a) -
# \Phi(s)$: the same shift for every action in a state, hence the same argmax. A per-visit
# bonus does not telescope: revisiting the cell pays again, so a loop can be worth more than the
# goal and the optimal policy changes (reward hacking).
# </details>

# %%
rlcourse.results.record(
    "03_model_free",
    title="Model-free prediction and control",
    topics="MC, TD(0), n-step TD, SARSA, Q-learning, on/off-policy, importance sampling, "
           "reward shaping",
    headline=(f"Cliff: SARSA {late['sarsa']:.0f} vs Q-learning {late['q_learning']:.0f} online "
              f"return; Taxi greedy return {taxi_greedy.mean():.1f} (optimal "
              f"{taxi_opt.mean():.1f}); random walk best RMS n=4 {best['n=4'][0]:.2f} vs "
              f"TD(0) {best['n=1 (TD(0))'][0]:.2f} vs MC {best['n=inf (MC)'][0]:.2f}"),
    metrics={"cliff_online_sarsa": late["sarsa"], "cliff_online_qlearning": late["q_learning"],
             "taxi_greedy_return": taxi_greedy.mean(), "taxi_optimal_return": taxi_opt.mean(),
             "walk_rms_n1": best["n=1 (TD(0))"][0], "walk_rms_n4": best["n=4"][0],
             "walk_rms_mc": best["n=inf (MC)"][0],
             "is_ess_frac_mu1": ess[4].mean() / N,
             "shaping_steps_first20_plain": first20["plain reward"],
             "shaping_steps_first20_shaped": first20["potential shaping"]},
)
print(f"total time {session.elapsed():.1f} s")
