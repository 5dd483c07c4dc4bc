# %% [markdown]
# # 02 · MDPs, Bellman equations and dynamic programming
#
# A bandit (notebook 01) has one state: an action earns a reward and nothing else changes. In
# most problems an action also changes *where you are*, and a good move now may only pay off
# many steps later. Markov decision processes (MDPs) are the model for that, and when the
# model is known, dynamic programming (DP) computes the best policy exactly.
#
# **Learning goals.** After this notebook you can
# 1. write a finite MDP as arrays `P[s, a, s']`, `R[s, a]` and a discount $\gamma$, and
#    validate them;
# 2. compute discounted returns backwards and say what $\gamma$ and the effective horizon
#    $1/(1-\gamma)$ mean;
# 3. define $V^\pi$, $Q^\pi$ and the advantage $A^\pi$, and move between them;
# 4. derive the Bellman expectation equation and solve it exactly with one linear solve
#    (and measure why that costs $O(n^3)$);
# 5. run iterative policy evaluation and policy iteration, write value iteration yourself
#    (sweeps, stopping rule, greedy policy), and explain their convergence with the
#    contraction argument;
# 6. check a DP answer against the real environment (gymnasium's FrozenLake), including the
#    effect of its time limit.
#
# **Notation used throughout the course.** At time $t$ the agent sees $s_t$, takes $a_t$ and
# then receives $r_{t+1}$ and $s_{t+1}$: in the *theory* the reward that follows action $a_t$
# carries the index $t+1$. In *code* the arrays are aligned by step, so `rewards[t]` is the
# reward that follows `actions[t]` (that is, `rewards[t]` $= r_{t+1}$).

# %%
import time

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np

import rlcourse
import rlcourse.envs  # registers rlcourse/GridWorld-v0
import rlcourse.results
from rlcourse import mdp
from rlcourse.exercises import check, show_source

session = rlcourse.setup(seed=0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. A finite MDP
#
# A finite MDP is a tuple $\mathcal M = \langle \mathcal S, \mathcal A, P, R, \gamma\rangle$:
# finite sets of states and actions, transition probabilities
# $P(s' \mid s, a) = \Pr(S_{t+1}=s' \mid S_t=s, A_t=a)$, a reward function and a discount
# $\gamma \in [0, 1]$. The **Markov property** says that the current state and action tell
# you everything the past could about what comes next:
# $$P(s_{t+1} \mid s_t, a_t) = P(s_{t+1} \mid s_0, a_0, \dots, s_t, a_t).$$
#
# Rewards come in two conventions. Some texts write $R(s, a, s')$ (the reward depends on where
# you land), others $R(s, a)$. They agree once you average over the landing state:
# $$R(s, a) = \mathbb E[r_{t+1} \mid s_t=s, a_t=a] = \sum_{s'} P(s' \mid s, a)\, R(s, a, s').$$
# For values and policies only this expectation matters, so `rlcourse.mdp.TabularMDP` stores
# `P` with shape `[S, A, S]`, `R` with shape `[S, A]`, and a boolean mask of **terminal**
# states (absorbing, reward 0, so their value is 0).
#
# Our running example is the course GridWorld from notebook 00: +10 for reaching the exit `G`,
# −5 for bumping into a wall or the edge (the agent stays put), 0 otherwise. With `slip=0.2`
# a move goes sideways with probability 0.1 each way. The environment hands out its exact
# transition table.

# %%
env_slip = gym.make("rlcourse/GridWorld-v0", slip=0.2)
grid = env_slip.unwrapped
P, R, terminal = grid.transition_table()
print("\n".join(grid.layout))
print(f"P: {P.shape} (S, A, S'), R: {R.shape} (S, A), terminal states: {np.flatnonzero(terminal)}")

walls = np.array([ch == "#" for ch in "".join(grid.layout)])
open_cells = ~walls & ~terminal
# Build R(s, a, s') from the rules: -5 if you stay put (a bump), +10 on entering G, else 0.
stays = np.eye(P.shape[0], dtype=bool)[:, None, :]  # [S, 1, S']: s' == s
r_rule = np.where(stays, -5.0, np.where(terminal[None, None, :], 10.0, 0.0))
R_sas = np.broadcast_to(r_rule * open_cells[:, None, None], P.shape)  # walls, exit: reward 0
R_from_sas = mdp.expected_reward(P, R_sas)
print(f"max |R(s,a) - sum_s' P R(s,a,s')| = {np.abs(R_from_sas - R).max():.1e}")
assert np.allclose(R_from_sas, R, atol=1e-12)
assert np.allclose(P.sum(axis=2), 1.0)

gw_slip = mdp.TabularMDP(P, R, gamma=0.9, terminal=terminal)
print(f"a TabularMDP with {gw_slip.n_states} states and {gw_slip.n_actions} actions, "
      f"gamma = {gw_slip.gamma}")

# %% [markdown]
# The class checks its input, so a typo in a hand-made table fails loudly instead of producing
# silently wrong values:

# %%
bad_P = P.copy()
bad_P[0, 1] = [0.5 if s == 1 else 0.0 for s in range(P.shape[0])]  # row sums to 0.5
for label, make in [("row of P sums to 0.5", lambda: mdp.TabularMDP(bad_P, R, 0.9, terminal)),
                    ("gamma = 1.2", lambda: mdp.TabularMDP(P, R, 1.2, terminal)),
                    ("R of shape [A, S]", lambda: mdp.TabularMDP(P, R.T, 0.9, terminal))]:
    try:
        make()
    except ValueError as err:
        print(f"{label:20s} -> ValueError: {err}")
    else:
        raise AssertionError(f"{label}: expected a ValueError")

# %% [markdown]
# ## 2. Returns and discounting
#
# The **return** from time $t$ is the discounted sum of the rewards that come *after* $t$:
# $$G_t = r_{t+1} + \gamma r_{t+2} + \gamma^2 r_{t+3} + \dots
#       = \sum_{k=0}^{T-t-1} \gamma^k\, r_{t+k+1},$$
# which satisfies the recursion $G_t = r_{t+1} + \gamma\, G_{t+1}$ with $G_T = 0$ at the end of
# the episode. The recursion is how we compute it: one backward pass, $O(T)$ work. In code,
# with `rewards[t]` $= r_{t+1}$, it reads `G[t] = rewards[t] + gamma * G[t+1]`.
#
# Note that $G_t$ is a function of its start time: whatever $t$ is, the first reward after $t$
# gets weight $\gamma^0 = 1$, the next one $\gamma$, and so on. Each time step of an episode
# therefore has its own return.
#
# ### Exercise 1: discounted returns
# Complete `discounted_returns(rewards, gamma)`. `rewards` has shape `[T]` or `[N, T]` (a batch
# of episodes, time on the last axis); return an array of the same shape with `G[..., t]`.
# Do not modify `rewards` in place.

# %%
def discounted_returns(rewards, gamma):
    """G[..., t] = rewards[..., t] + gamma * G[..., t + 1]; shapes [T] or [N, T] -> same."""
    ### BEGIN SOLUTION
    rewards = np.asarray(rewards, dtype=float)
    G = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[:-1])
    for t in reversed(range(rewards.shape[-1])):
        running = rewards[..., t] + gamma * running
        G[..., t] = running
    return G
    ### END SOLUTION


discounted_returns = check("mdp.discounted_returns", discounted_returns)

# %% [markdown]
# One episode of the uniformly random policy in the slippery GridWorld, and its returns. The
# recursion holds at every step, and $G_0$ equals the direct weighted sum:

# %%
pi_uniform = mdp.uniform_policy(gw_slip)
states, actions, rewards = mdp.sample_episodes(gw_slip, pi_uniform, [grid.start], 30, rng)
G = discounted_returns(rewards[0], gw_slip.gamma)
print("rewards[:12] =", rewards[0, :12].round(2))
print("G[:12]       =", G[:12].round(2))
assert np.allclose(G[:-1], rewards[0, :-1] + gw_slip.gamma * G[1:])
assert np.isclose(G[0], np.sum(gw_slip.gamma ** np.arange(30) * rewards[0]))

# %% [markdown]
# ### What the discount does
# The weight of a reward $k$ steps ahead is $\gamma^k$. The weights sum to
# $\sum_{k\ge 0}\gamma^k = 1/(1-\gamma)$, the **effective horizon**: $\gamma = 0.9$ looks
# about 10 steps ahead, $\gamma = 0.99$ about 100. Think of money: a reward 50 steps away is
# worth $0.9^{50} \approx 0.005$ of a reward now with $\gamma=0.9$, but still $0.99^{50}
# \approx 0.61$ with $\gamma = 0.99$.

# %%
ks = np.arange(200)
fig, ax = plt.subplots()
for g in (0.5, 0.9, 0.99):
    h = mdp.effective_horizon(g)
    (line,) = ax.plot(ks, g ** ks, label=f"gamma={g}, horizon 1/(1-gamma)={h:.0f}")
    ax.axvline(h, color=line.get_color(), ls=":", lw=1)
ax.set_xlabel("steps ahead k")
ax.set_ylabel("weight gamma^k")
ax.set_title("Discount weights; dotted lines mark the effective horizon")
ax.legend()
plt.show()

w09, w099 = 0.9 ** 50, 0.99 ** 50
print(f"0.9^50 = {w09:.5f}, 0.99^50 = {w099:.4f}; horizons {mdp.effective_horizon(0.9):.0f} "
      f"and {mdp.effective_horizon(0.99):.0f} steps")
assert round(w09, 5) == 0.00515 and round(w099, 4) == 0.6050
assert np.isclose(mdp.effective_horizon(0.9), 10) and np.isclose(mdp.effective_horizon(0.99), 100)

# %% [markdown]
# **Why discount at all?** It keeps infinite sums finite (with $|r| \le r_\max$,
# $|G_t| \le r_\max/(1-\gamma)$), it models uncertainty about the future or a preference
# for reward sooner, and it tunes how far-sighted the agent is. **Which $\gamma$ is allowed?**
# Any $\gamma \in [0, 1]$: $\gamma = 0$ is a purely myopic agent; $\gamma = 1$ is fine only
# when every episode ends (an episodic task), because otherwise the sum need not converge. For
# continuing tasks you need $\gamma < 1$.
#
# In MDP theory, as here, $\gamma$ is part of the *problem*: change it and the optimal policy
# can change. (On episodic benchmarks such as CartPole in Part II, the quantity we report is the
# undiscounted episode return, and a $\gamma < 1$ inside the learning algorithm becomes a knob
# that trades bias for variance; notebooks 05 and 06 come back to this.)
#
# ## 3. Value functions: V, Q and the advantage A
#
# * The **state value** $V^\pi(s) = \mathbb E_\pi[G_t \mid S_t = s]$: how good it is to be in $s$
#   and then follow $\pi$.
# * The **action value** $Q^\pi(s, a) = \mathbb E_\pi[G_t \mid S_t = s, A_t = a]$: how good it
#   is to take $a$ in $s$ and then follow $\pi$.
# * The **advantage** $A^\pi(s, a) = Q^\pi(s, a) - V^\pi(s)$: how much better $a$ is than what
#   $\pi$ does on average in $s$. It is a *relative* measure.
#
# $Q$ is a *value* (an expected return); the advantage is the *difference* $Q - V$.
#
# The three are tied together by two identities. Averaging $Q^\pi$ over the policy's own
# actions gives $V^\pi$, and looking one step ahead from $(s, a)$ gives $Q^\pi$:
# $$V^\pi(s) = \sum_a \pi(a\mid s)\, Q^\pi(s, a), \qquad
#   Q^\pi(s, a) = R(s, a) + \gamma \sum_{s'} P(s' \mid s, a)\, V^\pi(s').$$
# The first implies that the advantage has mean zero under the policy:
# $\mathbb E_{a\sim\pi(\cdot\mid s)}[A^\pi(s, a)] = \sum_a \pi(a\mid s) Q^\pi(s,a) - V^\pi(s) = 0$.
#
# **A backup by hand.** An action that succeeds 80% of the time: from $s_0$ it pays $R = 1$
# and leads to $s_1$ (worth $V = 10$) with probability 0.8 and to $s_2$ (worth $0$) with
# probability 0.2. With $\gamma = 0.9$,
# $$Q(s_0, a) = 1 + 0.9\,(0.8 \cdot 10 + 0.2 \cdot 0) = 8.2 .$$

# %%
hand = mdp.TabularMDP(P=np.array([[[0.0, 0.8, 0.2]], [[0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]]]),
                      R=np.array([[1.0], [1.0], [0.0]]), gamma=0.9)
Q_hand = mdp.q_from_v(hand, np.array([0.0, 10.0, 0.0]))
print(f"Q(s0, a) = 1 + 0.9 * (0.8 * 10 + 0.2 * 0) = {Q_hand[0, 0]:.1f}")
assert np.isclose(Q_hand[0, 0], 8.2)

# %% [markdown]
# ## 4. The Bellman expectation equation and its exact solution
#
# Start from the recursion $G_t = r_{t+1} + \gamma G_{t+1}$ and take the expectation given
# $S_t = s$. The first term averages to $\sum_a \pi(a\mid s) R(s, a)$. For the second, the
# tower property lets us first condition on the next state: by the Markov property
# $\mathbb E_\pi[G_{t+1} \mid S_t = s, A_t = a, S_{t+1} = s'] = V^\pi(s')$. Hence
# $$V^\pi(s) = \sum_a \pi(a\mid s)\Big[R(s, a) + \gamma \sum_{s'} P(s'\mid s, a)\, V^\pi(s')\Big],$$
# and in the same way
# $Q^\pi(s,a) = R(s,a) + \gamma\sum_{s'}P(s'\mid s,a)\sum_{a'}\pi(a'\mid s')\,Q^\pi(s',a')$.
#
# This is one linear equation per state. Average the dynamics and rewards over the policy,
# $$[\mathbf P_\pi]_{ss'} = \sum_a \pi(a\mid s) P(s'\mid s, a), \qquad
#   [\mathbf R_\pi]_s = \sum_a \pi(a\mid s) R(s, a),$$
# and it becomes $\mathbf V = \mathbf R_\pi + \gamma \mathbf P_\pi \mathbf V$, i.e.
# $$(\mathbf I - \gamma \mathbf P_\pi)\,\mathbf V^\pi = \mathbf R_\pi .$$
#
# ### Exercise 2: the policy-averaged matrices
# Return the pair `(P_pi, R_pi)` with shapes `[S, S]` and `[S]`. `model` is a `TabularMDP`;
# useful: `model.P`, `model.R`, `model.gamma`, `model.n_states`, and `np.einsum` (or a broadcasted product summed over the action axis).

# %%
def policy_matrices(model, pi):
    """P_pi[s, s'] = sum_a pi[s, a] P[s, a, s'] ([S, S]) and R_pi[s] = sum_a pi[s, a] R[s, a]."""
    ### BEGIN SOLUTION
    P_pi = np.einsum("sa,sat->st", pi, model.P)
    R_pi = np.einsum("sa,sa->s", pi, model.R)
    return P_pi, R_pi
    ### END SOLUTION


policy_matrices = check("mdp.policy_matrices", policy_matrices)

# %% [markdown]
# ### Terminal states and the reduced system
# A terminal state $s$ has value 0 by definition, so it needs no equation. Split the states into
# the non-terminal set $N$ and the terminal set $T$, and write $\mathbf P_{NN}$ for the rows and
# columns of $\mathbf P_\pi$ that belong to $N$ (and so on). The Bellman equation for the states
# in $N$ reads
# $$\mathbf V_N = \mathbf R_N + \gamma\,\mathbf P_{NN}\mathbf V_N + \gamma\,\mathbf P_{NT}
#   \underbrace{\mathbf V_T}_{=\,0}
#   \quad\Longrightarrow\quad
#   (\mathbf I - \gamma\,\mathbf P_{NN})\,\mathbf V_N = \mathbf R_N ,$$
# the **reduced system**: delete the rows *and* the columns of the terminal states, solve, and set
# $\mathbf V_T = 0$. For $\gamma < 1$ the full system gives the same answer (a terminal row of
# the full system reads $(1-\gamma)V(s) = 0$). For $\gamma = 1$ only the reduced system can work,
# as the end of this section shows.
#
# ### Exercise 3: exact policy evaluation
# Solve the reduced system with `np.linalg.solve` and return the full vector $\mathbf V^\pi$
# (shape `[S]`, zeros at the terminal states). `model.terminal` is a boolean mask of shape `[S]`;
# `np.ix_` selects a sub-matrix from a row mask and a column mask. Do not form the inverse:
# `solve` uses an LU factorisation, which is cheaper (about a third of the flops of `inv`
# followed by a product) and more accurate. The checks include $\gamma = 1$ with policies that
# end every episode with probability 1.

# %%
def evaluate_policy(model, pi):
    """Exact V^pi [S] from (I - gamma P_pi) V = R_pi restricted to the non-terminal states.

    model: a TabularMDP (P [S, A, S], R [S, A], gamma, terminal [S] bool); pi: [S, A].
    Returns V [S] with V[s] = 0 at terminal states. Domain: gamma < 1, or gamma = 1 with a
    policy that reaches a terminal state with probability 1 from every non-terminal state
    (otherwise the reduced system is singular).
    """
    ### BEGIN SOLUTION
    P_pi, R_pi = policy_matrices(model, pi)
    live = ~model.terminal
    A = np.eye(live.sum()) - model.gamma * P_pi[np.ix_(live, live)]
    V = np.zeros(model.n_states)
    V[live] = np.linalg.solve(A, R_pi[live])
    return V
    ### END SOLUTION


evaluate_policy = check("mdp.evaluate_policy", evaluate_policy)

# %% [markdown]
# Now the random policy in the slippery GridWorld. The exact $V^\pi$ satisfies the Bellman
# equation to round-off, and the identities of section 3 hold:

# %%
V_pi = evaluate_policy(gw_slip, pi_uniform)
P_pi, R_pi = policy_matrices(gw_slip, pi_uniform)
residual = np.abs(V_pi - (R_pi + gw_slip.gamma * P_pi @ V_pi)).max()
Q_pi = mdp.q_from_v(gw_slip, V_pi)
A_pi = Q_pi - V_pi[:, None]
print(f"Bellman residual max |V - (R_pi + gamma P_pi V)| = {residual:.1e}")
print(f"max |V - sum_a pi Q| = {np.abs((pi_uniform * Q_pi).sum(1) - V_pi).max():.1e}, "
      f"max |E_pi[A]| = {np.abs((pi_uniform * A_pi).sum(1)).max():.1e}")
s0 = grid.start
print(f"start state: V = {V_pi[s0]:.2f}; Q(s0, up/right/down/left) = {Q_pi[s0].round(2)}; "
      f"A = {A_pi[s0].round(2)}")
assert residual < 1e-10
assert A_pi[s0, 0] < 0 and A_pi[s0, 3] < 0 and A_pi[s0, 1] > 0 and A_pi[s0, 2] > 0
assert np.allclose((pi_uniform * A_pi).sum(axis=1), 0.0, atol=1e-10)

# %% [markdown]
# At the start cell "up" and "left" hit the edge, so their advantage is clearly negative;
# "right" and "down" are better than the random policy's average, so their advantage is
# positive.
#
# ### Monte-Carlo check
# $V^\pi(s)$ is an expectation of returns, so we can also estimate it by brute force: start
# 400 episodes in every state, run them for 100 steps (the truncation changes the value by at
# most $0.9^{100}\cdot 5/(1-0.9) \approx 10^{-3}$), and average $G_0$ computed with **your**
# `discounted_returns`.

# %%
t0 = time.perf_counter()
V_mc, V_sem = mdp.mc_policy_values(gw_slip, pi_uniform, n_episodes=400, horizon=100, rng=rng,
                                   returns_fn=discounted_returns)
visited = open_cells
z = (V_mc[visited] - V_pi[visited]) / V_sem[visited]
print(f"Monte-Carlo with {400 * gw_slip.n_states} episodes in {time.perf_counter() - t0:.1f} s: "
      f"max |z| = {np.abs(z).max():.2f} over {visited.sum()} open cells, "
      f"{np.mean(np.abs(z) < 2):.0%} within 2 standard errors")
assert np.abs(z).max() < 4.0

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
mdp.plot_value_grid(V_pi, (grid.n_rows, grid.n_cols), blocked=walls, ax=axes[0],
                    title="V of the random policy")
axes[1].errorbar(V_pi[visited], V_mc[visited], yerr=2 * V_sem[visited], fmt="o", capsize=3)
lims = [V_pi[visited].min() - 2, V_pi[visited].max() + 2]
axes[1].plot(lims, lims, "k--", lw=1, label="y = x")
axes[1].set_xlabel("exact V (linear solve)")
axes[1].set_ylabel("Monte-Carlo estimate (±2 s.e.)")
axes[1].set_title("Monte-Carlo agrees with the exact solution")
axes[1].legend()
plt.show()

# %% [markdown]
# ### When can the system be solved?
# $\mathbf P_\pi$ is a stochastic matrix, so every eigenvalue has $|\lambda| \le 1$ and those of
# $\gamma\mathbf P_\pi$ have $|\lambda| \le \gamma$. For $\gamma < 1$, 1 is never an eigenvalue of
# $\gamma\mathbf P_\pi$, so $\mathbf I - \gamma\mathbf P_\pi$ is invertible, with
# $(\mathbf I-\gamma\mathbf P_\pi)^{-1} = \sum_k \gamma^k \mathbf P_\pi^k$ (the expected
# discounted number of visits). As $\gamma \to 1$ it becomes ill-conditioned:

# %%
print(f"spectral radius of gamma P_pi: {np.abs(np.linalg.eigvals(0.9 * P_pi)).max():.3f}")
for g in (0.5, 0.9, 0.99, 0.999):
    c = np.linalg.cond(np.eye(gw_slip.n_states) - g * P_pi)
    print(f"gamma = {g:<5}: condition number of I - gamma P_pi = {c:8.1f}  (1/(1-gamma) = "
          f"{1 / (1 - g):6.0f})")

# %% [markdown]
# **At $\gamma = 1$ two matrices must be told apart.**
# * The **full** matrix $\mathbf I - \mathbf P_\pi$ is singular for *every* policy as soon as
#   there is a terminal state: a terminal state is absorbing, so its row of $\mathbf P_\pi$ is
#   the unit vector $e_s$ and its row of $\mathbf I - \mathbf P_\pi$ is zero. That says nothing
#   about whether the policy ends its episodes.
# * The **reduced** matrix $\mathbf I - \mathbf P_{NN}$ (terminal rows and columns removed) is
#   where termination shows. Row $s$ of $\mathbf P_{NN}$ sums to the probability of *not*
#   terminating on the next step, and $[\mathbf P_{NN}^k]_{ss'}$ is the probability of being in
#   $s'$ after $k$ steps without having terminated. If from every non-terminal state the policy
#   reaches a terminal state with probability 1, then $\mathbf P_{NN}^k \to 0$, the spectral
#   radius $\rho(\mathbf P_{NN})$ is below 1 and
#   $(\mathbf I - \mathbf P_{NN})^{-1} = \sum_{k\ge0} \mathbf P_{NN}^k$ exists: its entry
#   $[s, s']$ is the expected number of visits to $s'$ before the episode ends. If instead some
#   set of non-terminal states can hold the agent forever, the rows of that set sum to 1 within
#   the set, $\mathbf P_{NN}$ has the eigenvalue 1, and the reduced matrix is singular.
#
# We check both claims on an open 3x4 grid (no interior walls: the course GridWorld keeps its
# wall cells in the table as absorbing placeholders, which would need removing as well), with
# `slip=0.2` and $\gamma = 1$. The uniformly random policy wanders, but it reaches the exit with
# probability 1. The policy "always up" bumps into the top edge (−5 per bump) and, since a slip
# only moves it sideways, it never comes down again.

# %%
open_grid = rlcourse.envs.GridWorld(("S...", "....", "...G"), slip=0.2)
P_o, R_o, term_o = open_grid.transition_table()
og = mdp.TabularMDP(P_o, R_o, gamma=1.0, terminal=term_o)
live = ~og.terminal  # the non-terminal states N
policies = {"uniform random": mdp.uniform_policy(og),
            "always up": np.eye(4)[np.zeros(og.n_states, int)]}
reduced = {}
for name, pi in policies.items():
    P_pi_o, R_pi_o = policy_matrices(og, pi)
    full = np.eye(og.n_states) - P_pi_o
    reduced[name] = (full[np.ix_(live, live)], R_pi_o[live])  # delete terminal rows + columns
    rho_nn = np.abs(np.linalg.eigvals(P_pi_o[np.ix_(live, live)])).max()
    print(f"{name:14s}: terminal row of I - P_pi = {full[og.terminal][0]}; rank of the full "
          f"matrix {np.linalg.matrix_rank(full)} of {og.n_states}, of the reduced one "
          f"{np.linalg.matrix_rank(reduced[name][0])} of {live.sum()}; rho(P_NN) = {rho_nn:.4f}")
    assert np.linalg.matrix_rank(full) < og.n_states  # singular, whatever the policy
    assert (rho_nn < 1 - 1e-3) == (name == "uniform random")

try:
    np.linalg.solve(np.eye(og.n_states) - policy_matrices(og, policies["uniform random"])[0],
                    policy_matrices(og, policies["uniform random"])[1])
except np.linalg.LinAlgError as err:
    print(f"full system, uniform random policy: np.linalg.solve raises LinAlgError: {err}")
else:
    raise AssertionError("the full system must be singular at gamma = 1")

# %% [markdown]
# For the terminating policy the reduced system has a unique solution. Your `evaluate_policy`
# solves it; we compare the result with two methods that never touch the matrix: iterative
# evaluation (section 5) and Monte Carlo from every state (episodes cut at 300 steps; the
# probability of still running then is at most $\rho(\mathbf P_{NN})^{300}$ up to a constant).

# %%
V_open = evaluate_policy(og, policies["uniform random"])
V_open_it, sweeps_open = mdp.iterative_policy_evaluation(og, policies["uniform random"],
                                                          tol=1e-12)
V_open_mc, sem_open = mdp.mc_policy_values(og, policies["uniform random"], n_episodes=200,
                                           horizon=300, rng=rng, returns_fn=discounted_returns)
z_open = (V_open_mc[live] - V_open[live]) / sem_open[live]
print("V (reduced solve), 3x4 grid:\n", V_open.reshape(3, 4).round(2))
print(f"max |reduced solve - iterative ({sweeps_open} sweeps)| = "
      f"{np.abs(V_open - V_open_it).max():.1e}; Monte Carlo: max |z| = {np.abs(z_open).max():.2f}")
assert np.abs(V_open - V_open_it).max() < 1e-8 and np.abs(z_open).max() < 4.0

A_up, b_up = reduced["always up"]
try:
    V_up = np.linalg.solve(A_up, b_up)
    print(f"always up, reduced system: np.linalg.solve returns without an error, max |V| = "
          f"{np.abs(V_up).max():.1e} (a pivot that should be 0 is a rounding error; these are not values)")
except np.linalg.LinAlgError as err:
    print(f"always up, reduced system: np.linalg.solve raises LinAlgError: {err}")
try:
    mdp.evaluate_policy(og, policies["always up"])
except ValueError as err:
    print(f"rlcourse.mdp.evaluate_policy: ValueError: {err}")
else:
    raise AssertionError("a never-ending policy with gamma = 1 must be rejected")

# %% [markdown]
# Two lessons. First, at $\gamma = 1$ the meaningful statement is about the reduced system:
# it is solvable exactly when the policy terminates with probability 1 (not necessarily within a
# bounded number of steps: the random walk can take arbitrarily long). Second, floating point
# does not always notice a singular matrix: with the slip probabilities the LU factorisation may
# meet a tiny rounding error instead of an exact zero pivot and return huge numbers. The
# reference `rlcourse.mdp.evaluate_policy` therefore checks *structurally*, by a reachability
# search on $\mathbf P_\pi$, whether every state can reach a terminal state before it solves.
#
# ### The cost of the exact solution
# Solving an $n\times n$ dense system by LU factorisation takes about $\tfrac23 n^3$
# floating-point operations (flops). We time it on random dense MDPs (every transition
# possible) and fit the slope of $\log t$ against $\log n$. The timing calls the same LAPACK
# routine as `np.linalg.solve`, through torch pinned to **one thread**: multithreaded BLAS on a
# machine shared with other jobs gives erratic times. Since
# $t = \tfrac23 n^3 / (\text{flop rate})$, the fitted slope is exactly $3$ minus the slope of the
# log flop rate: the time grows like $n^3$ only where the rate is constant.

# %%
sizes = np.array([200, 400, 600, 800, 1200, 1600])
times = mdp.time_policy_evaluation(sizes, rng, repeats=3)
slope = mdp.loglog_slope(sizes, times)
gflops = 2 / 3 * sizes.astype(float) ** 3 / times / 1e9
slope_rate = mdp.loglog_slope(sizes, gflops)
for n, t, r in zip(sizes, times, gflops):
    print(f"n = {n:5d}: {1e3 * t:7.1f} ms  ({r:5.1f} GFLOP/s)")
print(f"measured in this range: time ~ n^{slope:.2f}; flop rate ~ n^{slope_rate:.2f}; "
      f"3 - ({slope_rate:.2f}) = {3 - slope_rate:.2f}")
t_solve, t_inv = (mdp.time_policy_evaluation([800], rng, repeats=3, method=m)[0]
                  for m in ("solve", "inv"))
print(f"n = 800: solve {1e3 * t_solve:.1f} ms, inverse + product {1e3 * t_inv:.1f} ms "
      f"({t_inv / t_solve:.1f}x)")

fig, ax = plt.subplots()
ax.loglog(sizes, times, "o-", label=f"measured (slope {slope:.2f})")
ax.loglog(sizes, times[-1] * (sizes / sizes[-1]) ** 3, "k--", lw=1, label="n^3 reference")
ax.set_xlabel("number of states n")
ax.set_ylabel("seconds per solve")
ax.set_title("Exact policy evaluation: time vs number of states")
ax.legend()
plt.show()
assert slope > 2.0  # more than quadratic: the n^3 flops, not the n^2 data, set the cost

# %% [markdown]
# The printed exponent is what this machine's BLAS gives in this range of $n$, and it is
# usually not 3. The flop count is exactly cubic; what varies is the rate at which one core
# executes those flops. Small systems run below the peak rate (per-call overheads, blocked
# kernels that cannot yet fill the vector units), so a rate that *rises* with $n$ pulls the
# exponent below 3; large systems outgrow the CPU caches, so a rate that *falls* pushes it above
# 3. Larger sizes would cost more than this notebook's time budget, and on a shared machine
# timings also carry noise, so we assert only what holds robustly: the time grows faster than
# $n^2$. The message stands either way: a table of $10^6$ states would need
# $\sim 10^{18}$ flops per solve and $10^{12}$ numbers of memory. Together with the fact that
# $P$ and $R$ are usually *unknown*, that is why the rest of the course learns from samples.
#
# ## 5. Iterative policy evaluation
#
# Instead of solving the system, apply the Bellman equation as an update,
# $\mathbf V_{k+1} = \mathbf R_\pi + \gamma \mathbf P_\pi \mathbf V_k$. Subtracting the fixed
# point gives $\mathbf V_{k+1} - \mathbf V^\pi = \gamma \mathbf P_\pi (\mathbf V_k - \mathbf V^\pi)$,
# and since $\mathbf P_\pi$ averages (it cannot increase the largest entry),
# $$\|\mathbf V_{k+1} - \mathbf V^\pi\|_\infty \le \gamma\, \|\mathbf V_k - \mathbf V^\pi\|_\infty .$$
# The error shrinks at least geometrically: on a log scale it is a line with slope at most
# $\log\gamma$. Each sweep costs $O(|S|^2|A|)$ (less for sparse $P$), instead of $O(|S|^3)$.

# %%
V = np.zeros(gw_slip.n_states)
errors = [np.abs(V - V_pi).max()]
for _ in range(150):
    V = R_pi + gw_slip.gamma * P_pi @ V
    errors.append(np.abs(V - V_pi).max())
errors = np.array(errors)
k = np.arange(len(errors))
fit = slice(30, 130)
slope_pe = np.polyfit(k[fit], np.log(errors[fit]), 1)[0]
rho = np.abs(np.linalg.eigvals(P_pi[np.ix_(open_cells, open_cells)])).max()
print(f"fitted slope of log error: {slope_pe:.4f}; log(gamma) = {np.log(0.9):.4f}; "
      f"log(gamma * rho) = {np.log(0.9 * rho):.4f} with rho = {rho:.3f}")
V_it, sweeps = mdp.iterative_policy_evaluation(gw_slip, pi_uniform, tol=1e-12)
print(f"iterative evaluation to tol 1e-12: {sweeps} sweeps, "
      f"max |V_iter - V_exact| = {np.abs(V_it - V_pi).max():.1e}")

fig, ax = plt.subplots()
ax.semilogy(k, errors, label="||V_k - V_pi||_inf")
ax.semilogy(k, errors[0] * 0.9 ** k, "k--", lw=1, label="bound gamma^k ||V_0 - V_pi||")
ax.set_xlabel("sweep k")
ax.set_ylabel("sup-norm error")
ax.set_title("Iterative policy evaluation converges geometrically")
ax.legend()
plt.show()
assert np.all(errors <= errors[0] * 0.9 ** k + 1e-12)
assert abs(slope_pe - np.log(0.9 * rho)) < 0.01
assert np.abs(V_it - V_pi).max() < 1e-8

# %% [markdown]
# The error follows the bound $\gamma^k$ and falls slightly faster: probability mass that
# reaches the exit leaves the system, so the rate is $\gamma\rho$ where $\rho < 1$ is the
# spectral radius of $\mathbf P_\pi$ on the open cells. The three evaluations (linear solve,
# iteration, Monte Carlo) agree.
#
# ## 6. The Bellman optimality equation and value iteration
#
# An optimal policy picks, in each state, the action with the best one-step look-ahead; there
# is no reason to average over worse actions. So the expectation over $\pi$ in the Bellman
# equation becomes a maximum:
# $$V^*(s) = \max_a \Big[R(s, a) + \gamma\sum_{s'}P(s'\mid s, a)\,V^*(s')\Big], \qquad
#   Q^*(s, a) = R(s, a) + \gamma\sum_{s'}P(s'\mid s, a)\max_{a'} Q^*(s', a'),$$
# and any policy that is greedy with respect to $Q^*$, $\pi^*(s) = \arg\max_a Q^*(s, a)$, is
# optimal. The equation is no longer linear, but the map $T^*V$ on its right-hand side is still
# a **$\gamma$-contraction** in the sup norm: $|\max_a x_a - \max_a y_a| \le \max_a |x_a - y_a|$, so
# $\|T^*V - T^*U\|_\infty \le \gamma \|V - U\|_\infty$. Iterating it from any start converges to
# the unique fixed point $V^*$: that is **value iteration**,
# $V_{k+1}(s) = \max_a \big[R(s, a) + \gamma \sum_{s'} P(s'\mid s,a)\,V_k(s')\big]$.
#
# ### Exercise 4: the optimality backup
# Return $T^*V$ as an array of shape `[S]`: $\max_a [R(s,a) + \gamma \sum_{s'} P(s'|s,a)V(s')]$
# for every state, and 0 for terminal states (`model.terminal`), whatever `V` holds there.

# %%
def bellman_optimality_backup(model, V):
    """(T* V)[s] = max_a [R(s, a) + gamma sum_s' P(s'|s, a) V(s')], 0 at terminal states."""
    ### BEGIN SOLUTION
    Q = model.R + model.gamma * model.P @ V
    V_new = Q.max(axis=1)
    V_new[model.terminal] = 0.0
    return V_new
    ### END SOLUTION


bellman_optimality_backup = check("mdp.bellman_optimality_backup", bellman_optimality_backup)

# %% [markdown]
# **The contraction, measured.** For 2000 random pairs of value functions we compare
# $\|T^*V - T^*U\|_\infty$ with $\|V - U\|_\infty$; the ratio never exceeds $\gamma = 0.9$.

# %%
pairs = rng.normal(0.0, 10.0, size=(2000, 2, gw_slip.n_states))
pairs[:, :, terminal] = 0.0
ratios = np.array([
    np.abs(bellman_optimality_backup(gw_slip, v) - bellman_optimality_backup(gw_slip, u)).max()
    / np.abs(v - u).max() for v, u in pairs])
print(f"max ratio ||T*V - T*U|| / ||V - U|| over {len(ratios)} pairs: {ratios.max():.3f} "
      f"(gamma = {gw_slip.gamma})")
assert ratios.max() <= gw_slip.gamma + 1e-12

# %% [markdown]
# ### Exercise 5: value iteration, with its stopping rule
# Now the whole algorithm. Start from $V_0 = 0$ and sweep: sweep $k$ computes
# $V_k = T^*V_{k-1}$ for *all* states from the old values (a synchronous sweep; your
# `bellman_optimality_backup` does exactly one). When do we stop? We never reach $V^*$ exactly,
# so we stop after the first sweep whose largest change is small:
# $\max_s |V_k(s) - V_{k-1}(s)| < \theta$. The contraction turns that observable quantity into
# a guarantee about the unobservable error: $\|V_k - V^*\|_\infty \le
# \frac{\gamma}{1-\gamma}\|V_k - V_{k-1}\|_\infty$ (add up the geometric series of the
# remaining changes). Note what the rule does *not* look at: the size of $V$, or the change of
# one state only.
#
# **Contract.** `value_iteration(model, theta, max_iter)` returns the triple
# `(V, pi, k)`: `V` is $V_k$ of the stopping sweep (shape `[S]`), `pi` the one-hot greedy policy
# `[S, A]` for $Q = R + \gamma P V_k$ (ties go to the first best action, as `np.argmax` does),
# and `k` the number of sweeps computed, **the stopping sweep included**. If `max_iter`
# sweeps do not get below `theta`, raise a `RuntimeError` (a loop that never ends is the
# typical symptom of a stopping rule that tests the wrong quantity).
#
# **What the check does.** It runs your function on a 2-state chain (where the count must be
# 2), two random MDPs (one whose state 0 is terminal, so a rule that watches state 0 only stops
# at once), a 3-state MDP with $\gamma = 1$, the slippery GridWorld and FrozenLake 4x4. It
# compares `V` with $V^*$ from the exact linear solve of policy iteration (tolerance $10^{-6}$),
# checks that `pi` is greedy for $Q^*$, and that `k` equals the reference's count for the
# same `theta`.

# %%
def value_iteration(model, theta, max_iter=100_000):
    """Synchronous value iteration from V = 0; stop when max_s |V_k(s) - V_{k-1}(s)| < theta.

    model: a TabularMDP (P [S, A, S], R [S, A], gamma, terminal [S] bool); theta > 0.
    Returns (V_k [S], one-hot greedy policy [S, A] for Q = R + gamma P V_k with ties to the
    first best action, k = number of sweeps computed including the stopping one).
    Raises RuntimeError after max_iter sweeps without reaching theta.
    """
    ### BEGIN SOLUTION
    V = np.zeros(model.n_states)
    for k in range(1, max_iter + 1):
        V_new = bellman_optimality_backup(model, V)  # terminal states stay at 0
        if np.max(np.abs(V_new - V)) < theta:
            Q = model.R + model.gamma * model.P @ V_new
            return V_new, np.eye(model.n_actions)[Q.argmax(axis=1)], k
        V = V_new
    raise RuntimeError(f"value iteration did not reach theta={theta} in {max_iter} sweeps")
    ### END SOLUTION


value_iteration = check("mdp.value_iteration", value_iteration)

# %% [markdown]
# The package's version, for comparison (it takes the backup as a parameter so that a notebook
# can plug in its own, and it validates its arguments):

# %%
print(show_source(mdp.value_iteration))

# %% [markdown]
# Your value iteration on the slippery GridWorld, against the exact $V^*$ (from policy
# iteration, section 7). We also replay its sweeps one by one to plot the error after each.

# %%
V_star = mdp.policy_iteration(gw_slip)[0]
V_vi_slip, _, k_vi_slip = value_iteration(gw_slip, 1e-12)
V = np.zeros(gw_slip.n_states)
vi_errors = [np.abs(V - V_star).max()]
for _ in range(k_vi_slip):
    V = bellman_optimality_backup(gw_slip, V)
    vi_errors.append(np.abs(V - V_star).max())
vi_errors = np.array(vi_errors)
kk = np.arange(len(vi_errors))
print(f"value iteration: {k_vi_slip} sweeps, error {vi_errors[-1]:.1e}; the bound gamma^k "
      f"allows {vi_errors[0] * 0.9 ** k_vi_slip:.1e}")
assert np.all(vi_errors <= vi_errors[0] * 0.9 ** kk + 1e-10)
assert np.abs(V_vi_slip - V_star).max() < 1e-10

# The stopping rule's guarantee, measured: a looser theta stops earlier, and the true error
# stays below gamma / (1 - gamma) * (the last sweep's change) < gamma / (1 - gamma) * theta.
g = gw_slip.gamma
for theta in (1e-1, 1e-3, 1e-6):
    V_theta, _, k_theta = value_iteration(gw_slip, theta)
    err_theta = np.abs(V_theta - V_star).max()
    print(f"theta = {theta:.0e}: {k_theta:3d} sweeps, error ||V - V*|| = {err_theta:.1e} "
          f"<= bound gamma/(1-gamma) * theta = {g / (1 - g) * theta:.1e}")
    assert err_theta <= g / (1 - g) * theta and k_theta <= k_vi_slip

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].hist(ratios, bins=40)
axes[0].axvline(gw_slip.gamma, color="k", ls="--", label="gamma")
axes[0].set_xlabel("||T*V - T*U|| / ||V - U||")
axes[0].set_ylabel("number of random pairs")
axes[0].set_title("The optimality backup is a gamma-contraction")
axes[0].legend()
axes[1].semilogy(kk, vi_errors, label="||V_k - V*||_inf")
axes[1].semilogy(kk, vi_errors[0] * 0.9 ** kk, "k--", lw=1, label="gamma^k bound")
axes[1].set_xlabel("iteration k")
axes[1].set_ylabel("sup-norm error")
axes[1].set_title(f"Your value iteration ({k_vi_slip} sweeps to theta 1e-12)")
axes[1].legend()
plt.show()

# %% [markdown]
# The contraction bound is a worst case. Here value iteration converges far faster than
# $\gamma^k$: once the values near the exit are right, the greedy policy leaves the grid in a
# few steps, so little probability mass keeps circulating (the same effect as the factor
# $\rho$ in section 5, but much stronger for a good policy than for a random one).
#
# ## 7. Policy iteration
#
# Policy iteration alternates two steps: **evaluate** the current policy exactly (section 4),
# then **improve** it greedily, $\pi_{k+1}(s) = \arg\max_a Q^{\pi_k}(s, a)$. The *policy
# improvement theorem* guarantees $V^{\pi_{k+1}} \ge V^{\pi_k}$ in every state, and because
# there are finitely many deterministic policies, the loop stops, at a policy that is greedy
# with respect to its own value: it satisfies the Bellman optimality equation. On ties we keep
# the current action, so the loop cannot cycle between equally good policies.
#
# We use the deterministic GridWorld, $\gamma = 0.9$, and write the loop out (with your
# `evaluate_policy`) to watch the values rise.

# %%
gw = mdp.TabularMDP.from_gymnasium(gym.make("rlcourse/GridWorld-v0"), gamma=0.9)
pi_k = mdp.greedy_policy(gw.R)  # start: greedy for the immediate reward
history = []
while True:
    V_k = evaluate_policy(gw, pi_k)
    history.append(V_k)
    new = mdp.policy_improvement(mdp.q_from_v(gw, V_k), pi_k)
    if np.array_equal(new, pi_k):
        break
    pi_k = new
for i, V_k in enumerate(history):
    print(f"policy {i}: V(start) = {V_k[grid.start]:6.3f}, mean V over open cells = "
          f"{V_k[~walls & ~gw.terminal].mean():6.3f}")
assert all(np.all(b >= a - 1e-9) for a, b in zip(history, history[1:]))

V_pi_star, pi_pi, k_pi_gw = mdp.policy_iteration(gw, evaluate=evaluate_policy)
V_vi, pi_vi, k_vi_gw = value_iteration(gw, 1e-10)
Q_star = mdp.q_from_v(gw, V_pi_star)
print(f"GridWorld: policy iteration {k_pi_gw} evaluations, value iteration {k_vi_gw} sweeps; "
      f"max |V_PI - V_VI| = {np.abs(V_pi_star - V_vi).max():.1e}")
print(f"V*(start) = {V_pi_star[grid.start]:.5f} = 10 * 0.9^6 = {10 * 0.9 ** 6:.5f} "
      "(7 moves, the exit reward arrives with the 7th)")
assert np.allclose(V_pi_star, V_vi, atol=1e-8)
assert mdp.is_greedy(pi_vi, Q_star) and mdp.is_greedy(pi_pi, Q_star)
assert np.isclose(V_pi_star[grid.start], 10 * 0.9 ** 6)

mdp.plot_value_grid(V_pi_star, (grid.n_rows, grid.n_cols), pi_pi, blocked=walls | gw.terminal,
                    title="GridWorld: V* and the greedy policy (gamma 0.9)")
plt.show()

# %% [markdown]
# Two shortest routes lead from `S` to `G` (along the top and along the bottom), so some cells
# have tied actions: value iteration and policy iteration may pick different ones, but both
# policies are greedy for the same $Q^*$ and have the same value. That is what "the optimal
# policy is unique up to ties" means.
#
# ## 8. FrozenLake: the DP answer against the real environment
#
# Gymnasium's FrozenLake is a slippery frozen lake: an action goes in the intended direction or
# to one of the two perpendicular directions, each with probability 1/3. Reaching the goal pays
# 1, falling into a hole ends the episode with 0. `TabularMDP.from_gymnasium` reads the
# environment's transition table `env.unwrapped.P` and makes the holes and the goal absorbing
# terminal states. We solve the 4x4 and 8x8 maps with $\gamma = 0.99$.

# %%
lake = {}
for name, kwargs in (("4x4", {}), ("8x8", {"map_name": "8x8"})):
    env = gym.make("FrozenLake-v1", **kwargs)
    m = mdp.TabularMDP.from_gymnasium(env, gamma=0.99)
    t0 = time.perf_counter()
    V_vi, pi_vi, k_vi = value_iteration(m, 1e-10)
    t_vi = time.perf_counter() - t0
    t0 = time.perf_counter()
    V_pi_l, pi_pi, k_pi = mdp.policy_iteration(m, evaluate=evaluate_policy)
    t_pi = time.perf_counter() - t0
    Q_l = mdp.q_from_v(m, V_pi_l)
    assert np.allclose(V_vi, V_pi_l, atol=1e-6)
    assert mdp.is_greedy(pi_vi, Q_l) and mdp.is_greedy(pi_pi, Q_l)
    lake[name] = dict(env=env, mdp=m, V=V_pi_l, pi=pi_pi, k_vi=k_vi, k_pi=k_pi)
    print(f"FrozenLake {name}: {m.n_states} states; V*(start) = {V_pi_l[0]:.3f}; "
          f"value iteration {k_vi} sweeps ({1e3 * t_vi:.1f} ms), policy iteration {k_pi} "
          f"evaluations ({1e3 * t_pi:.1f} ms); max |V_VI - V_PI| = "
          f"{np.abs(V_vi - V_pi_l).max():.1e}")
    assert k_pi < k_vi / 10

# %% [markdown]
# Policy iteration needs far fewer iterations (each one a full linear solve), while value
# iteration needs many cheap sweeps: with $\gamma = 0.99$ the error only shrinks by about 1% per
# sweep at worst.
#
# **Does the policy work in the real environment?** $V^*(\text{start})$ with $\gamma = 0.99$ is
# a *discounted* success, $\mathbb E[\gamma^{T-1}\,\mathbf 1\{\text{goal}\}]$, which is below the
# success probability. To compare with a success rate we evaluate the same policy with
# $\gamma = 1$: with reward 1 at the goal only, $V^\pi(\text{start})$ is then the probability of
# ever reaching the goal. Your `evaluate_policy` can compute it, because in the slippery lake the
# greedy policy ends every episode (in a hole or at the goal) with probability 1, so the reduced
# system is regular: the printout shows $\rho(\mathbf P_{NN}) < 1$. But gymnasium's FrozenLake **stops every episode after 100 steps**
# (`truncated=True`), for the 8x8 map too. The matching DP quantity is the 100-step value:
# 100 Bellman backups from $V = 0$ with $\gamma = 1$, which is the probability of reaching the
# goal *within 100 steps*. We play 1000 episodes of the greedy policy in the real environment.

# %%
t0 = time.perf_counter()
n_play = 1000
for name, d in lake.items():
    m1 = d["mdp"].with_gamma(1.0)
    P_l, _ = policy_matrices(m1, d["pi"])
    rho_l = np.abs(np.linalg.eigvals(P_l[np.ix_(~m1.terminal, ~m1.terminal)])).max()
    assert rho_l < 1 - 1e-6  # the policy terminates with probability 1: gamma = 1 is fine
    d["p_inf"] = evaluate_policy(m1, d["pi"])[0]
    d["p_100"] = mdp.finite_horizon_values(m1, d["pi"], horizon=100)[0]
    returns, lengths, cut = mdp.run_policy(d["env"], d["pi"].argmax(axis=1), n_play, seed=0)
    d["sim"], d["cut"] = returns.mean(), cut.mean()
    d["se"] = np.sqrt(d["p_100"] * (1 - d["p_100"]) / n_play)
    print(f"FrozenLake {name}: rho(P_NN) = {rho_l:.4f}; P(goal, no time limit) = {d['p_inf']:.3f}, P(goal within 100 "
          f"steps) = {d['p_100']:.3f}, simulated success = {d['sim']:.3f} ± {d['se']:.3f} "
          f"({d['cut']:.0%} of episodes cut at 100 steps)")
    assert abs(d["sim"] - d["p_100"]) < 4 * d["se"]
print(f"simulation took {time.perf_counter() - t0:.1f} s")
assert lake["8x8"]["p_inf"] - lake["8x8"]["p_100"] > 0.1
assert lake["8x8"]["sim"] < lake["8x8"]["p_inf"] - 0.1
assert lake["8x8"]["cut"] > 2 * lake["4x4"]["cut"]

fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1, 1.2]})
labels = ["V*(start), gamma 0.99", "P(goal), no limit", "P(goal) in 100 steps", "simulated"]
for i, (name, d) in enumerate(lake.items()):
    vals = [d["V"][0], d["p_inf"], d["p_100"], d["sim"]]
    axes[0].bar(np.arange(4) + 0.4 * i, vals, width=0.4, label=f"FrozenLake {name}",
                yerr=[0, 0, 0, 2 * d["se"]], capsize=3)
axes[0].set_xticks(np.arange(4) + 0.2, labels, rotation=15)
axes[0].set_ylabel("probability / value")
axes[0].set_title("Greedy policy: DP predictions vs the real env")
axes[0].legend()
d8 = lake["8x8"]
desc = "".join(ch.decode() for row in d8["env"].unwrapped.desc for ch in row)
mdp.plot_value_grid(d8["V"], (8, 8), d8["pi"], moves=mdp.FROZENLAKE_MOVES,
                    blocked=d8["mdp"].terminal, ax=axes[1], annotate=False,
                    title="FrozenLake 8x8: V* (gamma 0.99), greedy policy; grey = holes/goal")
plt.show()
print("8x8 map (S start, F frozen, H hole, G goal):")
print("\n".join(desc[i:i + 8] for i in range(0, 64, 8)))

# %% [markdown]
# On 4x4 the time limit costs little; on 8x8 it costs a lot (the fractions of episodes cut are
# printed above): the policy is cautious (it walks along edges so that a slip cannot drop it
# into a hole), so it needs many steps, and many episodes run out of time before reaching the
# goal. The simulation matches the 100-step DP value, not the infinite-horizon one. Note
# also that the time limit makes the real problem non-stationary: the best action can depend
# on how many steps are left, which a policy of the state alone cannot express.
#
# ## 9. Where DP sits among RL methods
#
# | family | examples | needs the model $P, R$? | learns | on/off-policy |
# |---|---|---|---|---|
# | dynamic programming | policy evaluation, value iteration, policy iteration | **yes** | $V$ or $Q$ by full backups | n/a (no samples) |
# | model-based RL | Dyna, MCTS, learned world models | learns/uses one | a model, then plans | either |
# | Monte Carlo | MC prediction and control | no | $V$/$Q$ from complete returns | both (off-policy via importance sampling) |
# | temporal difference | TD(0), SARSA, Q-learning, DQN | no | $V$/$Q$ by bootstrapping | SARSA on, Q-learning/DQN off |
# | policy gradient | REINFORCE, PPO | no | the policy $\pi_\theta$ directly | on-policy (PPO reuses recent data with clipping) |
# | actor-critic | A2C, SAC, TD3 | no | policy **and** value | A2C on; SAC, TD3 off |
#
# Value-based methods derive the policy from a value function (greedy or $\varepsilon$-greedy);
# policy-based ones parametrise the policy; actor-critic does both.
#
# Which family is "more stable" in practice is a question for function approximation; notebook
# 04 takes it up.
#
# ## Common misconceptions
#
# * "$G_t = r_0 + \gamma r_1 + \dots$" (a return that starts at time 0 whatever $t$ is).
#   The return starts at its own time step, $G_t = \sum_{k\ge0}\gamma^k r_{t+k+1}$, so every
#   step of an episode has its own return; computed backwards in section 2. <!-- E-01 -->
# * "$\gamma \in (0, 1]$" or "$\gamma \in [0, 1)$". The full range is $[0, 1]$: $\gamma = 0$ is a
#   myopic agent, and $\gamma = 1$ is allowed when every episode ends; continuing tasks need
#   $\gamma < 1$ (section 2). <!-- E-02 -->
# * "$Q(s, a)$ is the action advantage function". $Q$ is the action-*value* function; the
#   advantage is $A = Q - V$, which averages to zero under the policy (section 3). <!-- E-03 -->
# * "At $\gamma = 1$, $\mathbf I - \mathbf P_\pi$ is singular only for policies that never end".
#   With absorbing terminal states the full matrix is singular for every policy; the statement
#   is true of the reduced system over the non-terminal states (section 4).
#
# ## What to remember
#
# * A finite MDP is $(\mathcal S, \mathcal A, P, R, \gamma)$; here `P[s, a, s']`, `R[s, a]` and
#   a mask of absorbing, zero-reward terminal states. $R(s,a) = \sum_{s'}P(s'|s,a)R(s,a,s')$.
# * $G_t = r_{t+1} + \gamma G_{t+1}$, one backward pass; in code `G[t] = rewards[t] + gamma * G[t+1]`.
# * $\gamma \in [0, 1]$; effective horizon $1/(1-\gamma)$; $\gamma = 1$ only for tasks that end.
# * $V^\pi(s) = \sum_a \pi(a|s) Q^\pi(s,a)$, $Q^\pi(s,a) = R(s,a) + \gamma\sum_{s'}P(s'|s,a)V^\pi(s')$,
#   $A^\pi = Q^\pi - V^\pi$ with $\mathbb E_{a\sim\pi}[A^\pi(s,a)] = 0$.
# * Bellman expectation equation in matrix form: $(\mathbf I - \gamma\mathbf P_\pi)\mathbf V^\pi
#   = \mathbf R_\pi$. Solve it on the non-terminal states, $(\mathbf I - \gamma\mathbf P_{NN})
#   \mathbf V_N = \mathbf R_N$, with `solve`, never `inv`.
# * At $\gamma = 1$ the reduced system is regular iff the policy terminates with probability 1;
#   $(\mathbf I - \mathbf P_{NN})^{-1}$ counts expected visits before the end.
# * An exact solve costs $\tfrac23 n^3$ flops and $n^2$ memory; measured times follow $n^3$ only
#   where the flop rate is constant.
# * The expectation and optimality backups are $\gamma$-contractions in the sup norm: iterative
#   evaluation and value iteration converge at least like $\gamma^k$.
# * $V^*(s) = \max_a [R(s,a) + \gamma\sum_{s'}P(s'|s,a)V^*(s')]$; any policy greedy for $Q^*$ is
#   optimal (unique up to ties).
# * Policy iteration: few exact evaluations; value iteration: many cheap sweeps; same $V^*$.
# * Check a model's answer against the real environment: a time limit changes what "success"
#   means (the 100-step value, not the infinite-horizon one).
#
# ## Further reading
#
# * Sutton & Barto (2018), *Reinforcement Learning: An Introduction*, 2nd ed., chapter 3: finite
#   MDPs, returns, episodic vs continuing tasks, Bellman equations.
# * Sutton & Barto (2018), chapter 4: policy evaluation, policy improvement, policy and value
#   iteration, generalised policy iteration.
# * Bellman (1957), *Dynamic Programming*: the origin of the optimality principle and the
#   recursive equations.
# * Howard (1960), *Dynamic Programming and Markov Processes*: policy iteration.
# * Puterman (1994), *Markov Decision Processes: Discrete Stochastic Dynamic Programming*: the
#   rigorous theory (existence of optimal policies, convergence, the undiscounted case).
#
# ## Interview questions
#
# 1. Why does $G_t$ start with $r_{t+1}$ and why is it computed backwards?
#
# <details><summary>Answer</summary>
#
# $G_t$ is the reward collected *after* time $t$: the first reward following $a_t$ is $r_{t+1}$
# (in code `rewards[t]`), weighted by $\gamma^0$. The recursion $G_t = r_{t+1} + \gamma G_{t+1}$
# turns the $O(T^2)$ double sum into one backward pass.
# </details>
#
# 2. What range may $\gamma$ take, and when is $\gamma = 1$ allowed?
#
# <details><summary>Answer</summary>
#
# $\gamma \in [0, 1]$ (discounting keeps sums finite, expresses a preference for earlier
# reward and sets how far the agent looks ahead). $\gamma = 1$ only when every episode
# terminates; for continuing tasks the undiscounted sum can diverge, so $\gamma < 1$ is needed.
# In matrix terms: at $\gamma = 1$ the full $\mathbf I - \mathbf P_\pi$ is singular for every
# policy once there are absorbing terminal states, and the reduced system over the non-terminal
# states is regular exactly when the policy terminates with probability 1. The effective
# horizon is $1/(1-\gamma)$.
# </details>
#
# 3. What do $V$, $Q$ and $A$ each measure, and why does $\mathbb E_{a\sim\pi}[A^\pi(s,a)] = 0$?
#
# <details><summary>Answer</summary>
#
# $V^\pi(s)$: expected return from $s$ under $\pi$. $Q^\pi(s,a)$: expected return after first
# taking $a$. $A^\pi = Q^\pi - V^\pi$: how much better $a$ is than the policy's average, a
# relative measure. Since $V^\pi(s) = \sum_a \pi(a|s)Q^\pi(s,a)$, the policy-weighted mean of
# $A^\pi$ is zero. A positive advantage means "do this more often than $\pi$ does".
# </details>
#
# 4. Why is $\mathbf V^\pi = (\mathbf I - \gamma\mathbf P_\pi)^{-1}\mathbf R_\pi$ not used in
#    practice, and why use `solve` rather than `inv` when you do use it?
#
# <details><summary>Answer</summary>
#
# It needs the model ($P$, $R$), which is usually unknown, and dense $O(n^3)$ time and $O(n^2)$
# memory, which is hopeless for large or continuous state spaces. `solve` factorises once
# (LU, about $\tfrac23 n^3$ flops) and is more accurate than forming the inverse (about three
# times the work, and the errors of the inverse are amplified by the product).
# </details>
#
# 5. Why does value iteration converge, and how fast?
#
# <details><summary>Answer</summary>
#
# The optimality backup is a $\gamma$-contraction in the sup norm, so by Banach's fixed-point
# theorem it has a unique fixed point $V^*$ and $\|V_k - V^*\|_\infty \le \gamma^k\|V_0 - V^*\|_\infty$.
# With $\gamma = 0.99$ reaching $10^{-10}$ from an error of 1 takes about
# $\ln(10^{-10})/\ln(0.99) \approx 2300$ sweeps in the worst case.
# </details>
#
# 6. Policy iteration vs value iteration: which needs fewer iterations, and which is cheaper?
#
# <details><summary>Answer</summary>
#
# Policy iteration needs few iterations (a handful in section 8) because each evaluates the policy
# exactly, but each costs a linear solve ($O(n^3)$). Value iteration does many cheap
# $O(|S|^2|A|)$ sweeps. Both reach the same $V^*$; their policies agree up to ties. Modified
# policy iteration (a few evaluation sweeps per improvement) sits in between.
# </details>
#
# 7. On FrozenLake 8x8 the DP value (with $\gamma = 1$) says the greedy policy reaches the goal
#    far more often than it does when played in gymnasium. Is the DP wrong?
#
# <details><summary>Answer</summary>
#
# No: the environment truncates episodes at 100 steps, and the cautious optimal policy often
# needs more. The probability of success *within 100 steps* (100 backups with $\gamma = 1$)
# matches the simulation. The discounted $V^*(\text{start})$ with $\gamma = 0.99$ is a third,
# different number (a discounted success).
# </details>

# %%
d8, d4 = lake["8x8"], lake["4x4"]
rlcourse.results.record(
    "02_mdp_dp",
    title="MDPs, Bellman and dynamic programming",
    topics="returns, V/Q/A, Bellman equations, linear solve, policy/value iteration, FrozenLake",
    headline=(f"FrozenLake 8x8: V*(start)={d8['V'][0]:.3f}; PI = VI in {d8['k_pi']} vs "
              f"{d8['k_vi']} iterations; greedy policy succeeds {d8['sim']:.2f} in 100 steps "
              f"(DP {d8['p_100']:.2f}, {d8['p_inf']:.2f} without limit); "
              f"solve() ~ n^{slope:.1f}"),
    metrics={"v_start_8x8": d8["V"][0], "k_pi_8x8": d8["k_pi"], "k_vi_8x8": d8["k_vi"],
             "success_sim_8x8": d8["sim"], "success_dp100_8x8": d8["p_100"],
             "success_inf_8x8": d8["p_inf"], "success_sim_4x4": d4["sim"],
             "solve_loglog_slope": slope, "gridworld_v_start": V_pi_star[grid.start]},
)
print(f"total time {session.elapsed():.1f} s")
