# %% [markdown]
# # 15 · Classic tabular control: Monte Carlo, Expected SARSA and Double Q-learning
#
# *Part IV, beyond the study notes.* This notebook can be taken right after notebook 03: it
# uses only tables, NumPy and the vocabulary of notebook 03 (TD targets, SARSA, Q-learning,
# behaviour and target policies, importance sampling). It reproduces four classic results of
# Sutton & Barto (2nd edition, chapters 5 and 6) with fixed seeds and asserted bands, and the
# experiments run on the functions you write.
#
# **Learning goals.** After this notebook you can
# 1. derive the Expected SARSA target, and explain with Cliff Walking why it learns better
#    online than SARSA (and tolerates large step sizes);
# 2. explain the **maximisation bias** of Q-learning ($\mathbb E[\max] \ge \max \mathbb E$),
#    and implement Double Q-learning, stating which table selects and which evaluates;
# 3. run Monte Carlo control with exploring starts on blackjack and compare the learned policy
#    with the optimal one of the book (which we also recompute exactly, by dynamic programming);
# 4. estimate a value off-policy with ordinary and weighted importance sampling, explain from
#    the numbers why the weighted estimator wins early although it is biased, and estimate
#    every action value of a policy off-policy with the book's backward weighted-IS loop.
#
# Conventions as in notebook 03: `terminated` marks a transition into a terminal state (nothing
# is bootstrapped from it), and each experiment runs many independent runs at once as arrays.

# %%
import time

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np

import rlcourse
import rlcourse.results
from rlcourse import tabular_control as tc
from rlcourse.exercises import check, show_source
from rlcourse.plotting import plot_curves

session = rlcourse.setup(seed=0)

# %% [markdown]
# ## 1. Expected SARSA
#
# SARSA's target $r + \gamma Q(s', a')$ depends on the next action $a'$, which the
# $\varepsilon$-greedy behaviour draws at random. That draw adds variance to every update and
# carries no information about $Q$. **Expected SARSA** replaces the sampled $Q(s', a')$ by its
# expectation under the policy $\pi$ being evaluated:
# $$Q(s, a) \leftarrow Q(s, a) + \alpha\Big[r + \gamma \sum_{a'} \pi(a' \mid s')\,Q(s', a')
#   - Q(s, a)\Big].$$
# With $\pi$ the $\varepsilon$-greedy policy on $Q$, every action has probability
# $\varepsilon / |\mathcal A|$ and the greedy action gets $1 - \varepsilon$ on top (tied greedy
# actions share it). Two special cases: $\varepsilon = 0$ gives exactly Q-learning's
# $\max_{a'} Q(s', a')$, and $\varepsilon = 1$ gives the plain average of the row. The target
# costs $O(|\mathcal A|)$ per step instead of $O(1)$, a bargain when there are few actions.
#
# ### Exercise 1: the Expected SARSA target
# `q_next` has shape `[..., A]` (one row $Q(s', \cdot)$ per transition, so the cliff experiment
# can pass all runs at once); `reward` and `terminated` have the leading shape `[...]`.

# %%
def expected_sarsa_target(reward, q_next, terminated, gamma, epsilon):
    """Expected SARSA targets [...] for rows q_next [..., A], reward and terminated [...]."""
    ### BEGIN SOLUTION
    q_next = np.asarray(q_next, dtype=float)
    n_actions = q_next.shape[-1]
    greedy = q_next == q_next.max(axis=-1, keepdims=True)
    probs = epsilon / n_actions + (1 - epsilon) * greedy / greedy.sum(axis=-1, keepdims=True)
    expected = (probs * q_next).sum(axis=-1)
    return reward + gamma * (1 - np.asarray(terminated, dtype=float)) * expected
    ### END SOLUTION


expected_sarsa_target = check("tabular_control.expected_sarsa_target", expected_sarsa_target)

# %% [markdown]
# Expected SARSA's target is the *average* of SARSA's targets over the next action. Check it by
# drawing many next actions $\varepsilon$-greedily and averaging the SARSA targets:

# %%
rng = np.random.default_rng(0)
q_row, eps_demo = np.array([-3.0, 1.0, 0.5, 1.0]), 0.2
draws = tc.epsilon_greedy_batch(np.tile(q_row, (200_000, 1)), eps_demo, rng)
sarsa_targets = -1.0 + 0.9 * q_row[draws]
es = expected_sarsa_target(-1.0, q_row, False, 0.9, eps_demo)
print(f"Expected SARSA target {float(es):.4f}; mean of 200,000 sampled SARSA targets "
      f"{sarsa_targets.mean():.4f} (their standard deviation: {sarsa_targets.std():.3f}, "
      f"Expected SARSA's: 0)")
assert abs(sarsa_targets.mean() - es) < 0.01
print(show_source(tc.expected_sarsa_target))

# %% [markdown]
# ### 1.1 Cliff Walking: online return
# The cliff of notebook 03 (gymnasium's `CliffWalking-v1`: $-1$ per step, $-100$ and back to
# the start for a fall). The environment is deterministic, so we read its table once and step
# 20 runs per method in lockstep with NumPy; the learning rule is exactly the one of notebook
# 03. $\alpha = 0.5$, $\varepsilon = 0.1$, $\gamma = 1$, $Q_0 = 0$, 500 episodes; we record the
# **online return**, what the $\varepsilon$-greedy agent actually collects while it learns.

# %%
cliff = gym.make("CliffWalking-v1")
cliff_table = tc.deterministic_table(cliff)
METHODS = {"Expected SARSA": "expected_sarsa", "SARSA": "sarsa", "Q-learning": "q_learning"}
t0 = time.perf_counter()
online = {name: tc.td_control_runs(cliff_table, m, 500, np.full(20, 0.5), epsilon=0.1,
                                   gamma=1.0, seed=1, target_fn=expected_sarsa_target)
          for name, m in METHODS.items()}
print(f"3 methods x 20 runs x 500 episodes in {time.perf_counter() - t0:.1f} s")
ax = plot_curves(online, smooth=20, xlabel="episode",
                 ylabel="online return (20-episode average)",
                 title="Cliff Walking, alpha = 0.5, epsilon = 0.1 (band: 95% CI, 20 runs)")
ax.set_ylim(-100, 0)
plt.show()

late = {name: r[:, 100:].mean() for name, r in online.items()}
print("online return, episodes 101-500: " + ", ".join(f"{k} {v:.1f}" for k, v in late.items()))
assert late["Expected SARSA"] > late["SARSA"] + 3 > late["Q-learning"] + 13

# %% [markdown]
# Expected SARSA is on-policy like SARSA: it values states under the exploring policy, so the
# falls that exploration causes near the edge are priced into its values. But it does not pay
# for the randomness of $a'$ in its updates, so its estimates are less noisy and it collects
# more reward online; Q-learning values the edge path by its greedy return and keeps falling.
#
# ### 1.2 Interim performance across step sizes (Figure 6.3)
# The book's Figure 6.3 sweeps $\alpha$ and reports the online return averaged over the first
# 100 episodes ("interim performance"). Here 20 runs per step size, all 200 runs of a method
# in one batch.

# %%
alphas = np.round(np.arange(0.1, 1.01, 0.1), 1)
t0 = time.perf_counter()
interim = {name: tc.td_control_runs(cliff_table, m, 100, np.repeat(alphas, 20), epsilon=0.1,
                                    gamma=1.0, seed=2, target_fn=expected_sarsa_target)
           .mean(axis=1).reshape(len(alphas), 20)
           for name, m in METHODS.items()}
print(f"3 methods x {len(alphas)} step sizes x 20 runs x 100 episodes in "
      f"{time.perf_counter() - t0:.1f} s")
fig, ax = plt.subplots()
for name, res in interim.items():
    se = res.std(axis=1, ddof=1) / np.sqrt(res.shape[1])
    ax.errorbar(alphas, res.mean(axis=1), yerr=2 * se, marker="o", capsize=3, label=name)
ax.set_xlabel("step size alpha")
ax.set_ylabel("mean online return, first 100 episodes")
ax.set_title("Cliff Walking: interim performance (bars: 2 standard errors)")
ax.legend()
plt.show()

means = {name: res.mean(axis=1) for name, res in interim.items()}
for i, a in enumerate(alphas):
    print(f"alpha {a:.1f}: " + ", ".join(f"{k} {v[i]:7.1f}" for k, v in means.items()))
assert np.all(means["Expected SARSA"] >= means["SARSA"] - 5)
assert np.all(means["SARSA"] > means["Q-learning"])
big = alphas >= 0.5
assert np.all(means["Expected SARSA"][big] > means["SARSA"][big] + 5)
gain = {k: v[-2:].mean() - v[alphas == 0.5][0] for k, v in means.items()}  # 0.9-1 vs 0.5
print("gain from alpha 0.5 to alpha 0.9-1.0: " + ", ".join(f"{k} {v:+.1f}" for k, v in gain.items()))
assert gain["Expected SARSA"] > 8 and gain["SARSA"] < 5

# %% [markdown]
# All three improve with a larger step size at first (100 episodes are few). SARSA stops
# improving beyond $\alpha \approx 0.5$: a large step copies much of the latest random
# $Q(s', a')$ into the estimate. Expected SARSA keeps improving up to $\alpha \approx 1$: the
# environment is deterministic and its target draws no next action, so the only noise left in
# an update comes from the changing estimates, and large steps are safe. (In the book's
# asymptotic curves, over 100,000 episodes, SARSA degrades clearly at large $\alpha$ while
# Expected SARSA does not.)
#
# ## 2. Maximisation bias and Double Q-learning
#
# Q-learning's target uses $\max_{a'} Q(s', a')$, the maximum of *estimates*. If the estimates
# are noisy but unbiased, the maximum is biased upwards:
# $\mathbb E[\max_a \hat Q(a)] \ge \max_a \mathbb E[\hat Q(a)]$ (the max is convex). The same
# noisy numbers both *choose* the action and *score* it, so an action that looks good by luck
# is picked precisely because of the lucky noise.
#
# The fix of **double estimation**: keep two independent estimates; choose with one,
# $a^* = \arg\max_a \hat Q_1(a)$, and score with the other, $\hat Q_2(a^*)$. Since $\hat Q_2$'s
# noise is independent of the choice, $\mathbb E[\hat Q_2(a^*)] = \mathbb E[Q(a^*)] \le
# \max_a Q(a)$: no more optimism (a slight pessimism instead). Ten actions with true value
# $-0.1$ and one $N(-0.1, 1)$ sample each:

# %%
rng = np.random.default_rng(1)
noisy1, noisy2 = rng.normal(-0.1, 1.0, (2, 100_000, 10))
single = noisy1.max(axis=1)
double = noisy2[np.arange(100_000), noisy1.argmax(axis=1)]
print(f"true max = -0.100; E[max of the estimates] = {single.mean():.3f}; "
      f"E[second estimate at the first's argmax] = {double.mean():.3f}")
assert single.mean() > 1.3 and abs(double.mean() + 0.1) < 0.02

# %% [markdown]
# **Double Q-learning** (van Hasselt, 2010) keeps two tables $Q_1, Q_2$. At each step a fair
# coin decides which table learns. If $Q_1$ learns:
# $$Q_1(s, a) \leftarrow Q_1(s, a) + \alpha\Big[r + \gamma\, Q_2\big(s', \arg\max_{a'}
#   Q_1(s', a')\big) - Q_1(s, a)\Big],$$
# and symmetrically with 1 and 2 swapped. The behaviour is $\varepsilon$-greedy on
# $Q_1 + Q_2$. Each table is updated on half the data; the memory doubles, the compute does
# not. (Double DQN, notebook 04, reuses the idea with the online and target networks.)
#
# ### Exercise 2: the Double Q-learning update
# A batch of transitions, one per run: the tables have shape `[S, A]` (the experiment stacks
# the runs' states into the rows), `s, a, r, s_next, terminated, coin` have shape `[N]` and
# the `(s, a)` pairs are distinct. Update the tables **in place**; `coin[i]` True means
# transition `i` updates $Q_1$.

# %%
def double_q_update(q1, q2, s, a, r, s_next, terminated, coin, alpha, gamma):
    """Update q1, q2 [S, A] in place from N transitions (coin[i]: Q1 learns); returns None."""
    ### BEGIN SOLUTION
    keep = 1.0 - np.asarray(terminated, dtype=float)
    coin = np.asarray(coin, dtype=bool)
    for learner, scorer, rows in ((q1, q2, coin), (q2, q1, ~coin)):
        s_rows, a_rows, next_rows = s[rows], a[rows], s_next[rows]
        chosen = learner[next_rows].argmax(axis=1)
        target = r[rows] + gamma * keep[rows] * scorer[next_rows, chosen]
        learner[s_rows, a_rows] += alpha * (target - learner[s_rows, a_rows])
    ### END SOLUTION


double_q_update = check("tabular_control.double_q_update", double_q_update)
print(show_source(tc.double_q_update))

# %% [markdown]
# ### 2.1 Example 6.7: the maximisation-bias MDP
# From state A, **right** ends the episode with reward 0; **left** leads to B with reward 0.
# From B, each of 10 actions ends the episode with a reward drawn from $N(-0.1, 1)$. Going left
# is a mistake worth $-0.1$ on average, so the optimal policy goes right, and an
# $\varepsilon$-greedy agent ($\varepsilon = 0.1$, 2 actions in A) that has learned it still
# goes left $\varepsilon/2 = 5\%$ of the time. $\alpha = 0.1$, $\gamma = 1$, $Q_0 = 0$, 10,000
# runs, 300 episodes; ties broken at random.

# %%
t0 = time.perf_counter()
left = {"Q-learning": tc.maximization_bias_runs("q_learning", 10_000, 300, seed=3),
        "Double Q-learning": tc.maximization_bias_runs("double_q", 10_000, 300, seed=3,
                                                       update_fn=double_q_update)}
print(f"2 methods x 10,000 runs x 300 episodes in {time.perf_counter() - t0:.1f} s")
frac = {k: v.mean(axis=0) for k, v in left.items()}
fig, ax = plt.subplots()
for name, f in frac.items():
    ax.plot(np.arange(1, 301), 100 * f, label=name)
ax.axhline(5, color="k", linestyle="--", linewidth=1, label="optimal (epsilon-greedy): 5%")
ax.set_xlabel("episode")
ax.set_ylabel("% left actions from A (10,000 runs)")
ax.set_title("Maximisation bias (Example 6.7)")
ax.legend()
plt.show()

early = {k: f[9:20].mean() for k, f in frac.items()}  # episodes 10-20
tail = {k: f[200:].mean() for k, f in frac.items()}   # episodes 201-300
for k in frac:
    print(f"{k:18s} left from A: episodes 10-20 {early[k]:.1%}, peak {frac[k].max():.1%} "
          f"(episode {frac[k].argmax() + 1}), episodes 201-300 {tail[k]:.1%}")
assert early["Q-learning"] > 0.8 and tail["Q-learning"] > tail["Double Q-learning"] + 0.04
assert early["Double Q-learning"] < early["Q-learning"] - 0.3
assert 0.04 < tail["Double Q-learning"] < 0.09

# %% [markdown]
# Q-learning goes left in almost every greedy step at first. Its first update of $Q(A,
# \text{left})$ bootstraps on $\max_b Q(B, b)$, and the unvisited actions of B are still at 0,
# above their true value $-0.1$; then the maximum over 10 noisy estimates stays above
# $-0.1$ for a long time. Only when all of B's estimates have averaged enough rewards does
# the bias fade, and even after 300 episodes it has not. Double Q-learning's value of
# left is scored by the *other* table, whose noise did not choose the action; it never
# prefers left by much, and it approaches the $\varepsilon$-greedy floor of 5% far sooner.
#
# ## 3. Monte Carlo control on blackjack (Example 5.3)
#
# Blackjack as in the book and gymnasium's `Blackjack-v1` with `sab=True`: infinite deck, the
# player sees their sum, whether they hold a **usable ace** (counted as 11 without busting)
# and the dealer's showing card; they hit or stick; the dealer then draws to 17 or more
# (standing on a soft 17); win $+1$, draw 0, loss $-1$. With $\gamma = 1$ and a reward only
# at the end, the return of every step is the final reward: a natural fit for Monte Carlo.
#
# gymnasium's env is plain Python, one card at a time. `rlcourse.tabular_control` has a NumPy
# version of the same rules that plays many episodes at once; the tests replay the same card
# sequences in both and demand identical observations and rewards. The speed difference:

# %%
def stick_on_20(t, total, usable, dealer):
    """Hit below 20, stick on 20 and 21 (the target policy of Example 5.4)."""
    return (np.asarray(total) < 20).astype(int)


bj = gym.make("Blackjack-v1", sab=True)
obs, _ = bj.reset(seed=0)
t0 = time.perf_counter()
gym_returns = []
for _ in range(3000):
    done, ret = False, 0.0
    while not done:
        obs, r, term, trunc, _ = bj.step(int(stick_on_20(0, obs[0], obs[2], obs[1])))
        ret, done = ret + r, term or trunc
    gym_returns.append(ret)
    obs, _ = bj.reset()
gym_time = (time.perf_counter() - t0) / 3000
t0 = time.perf_counter()
np_returns = tc.simulate_blackjack(tc.draw_cards(np.random.default_rng(4), 200_000),
                                   stick_on_20).reward
np_time = (time.perf_counter() - t0) / 200_000
gap = abs(np.mean(gym_returns) - np_returns.mean())
se = np.sqrt(np.var(gym_returns) / 3000 + np_returns.var() / 200_000)
print(f"gymnasium: {1e6 * gym_time:.1f} us per episode, mean return {np.mean(gym_returns):.3f}"
      f" (3,000 episodes); NumPy: {1e6 * np_time:.2f} us per episode, mean return "
      f"{np_returns.mean():.3f} (200,000 episodes); gap = {gap / se:.1f} standard errors")
assert gap < 4 * se and gym_time > 5 * np_time

# %% [markdown]
# ### Monte Carlo control with exploring starts
# Generalised policy iteration with sample averages: play an episode with the current policy,
# add its return to every (state, action) pair it visited, set
# $Q(s, a) = \text{sum of returns} / \text{count}$, make the policy greedy. Nothing forces a
# greedy policy to try the other action, so **exploring starts** supply the exploration: each
# episode starts in a uniformly random state (player sum 12-21, dealer card, usable ace) with a
# uniformly random first action. (A state never repeats within a blackjack episode, so first
# visit and every visit coincide.) We play the episodes in batches of 10,000 with the policy
# fixed inside a batch: each improvement comes up to one batch (1% of the run) later than in
# the one-episode-at-a-time algorithm, and everything else is unchanged.
#
# ### Exercise 3: accumulate the returns
# Add the returns of a batch of visits to `sums[s, a]` and count them in `counts[s, a]`,
# in place. A pair usually appears many times in one batch.

# %%
def accumulate_returns(sums, counts, states, actions, returns):
    """In place: sums[s, a] += each return, counts[s, a] += 1 per visit (duplicates included)."""
    ### BEGIN SOLUTION
    np.add.at(sums, (states, actions), returns)
    np.add.at(counts, (states, actions), 1)
    ### END SOLUTION


accumulate_returns = check("tabular_control.accumulate_returns", accumulate_returns)
print(show_source(tc.accumulate_returns))

# %% [markdown]
# Now 1,000,000 episodes (the NumPy simulator makes this about a second), then the learned
# greedy policy next to Figure 5.2 of the book. The book's figure is stored in the package as a
# table typed from the figure; we also recompute the optimal policy exactly by dynamic
# programming over the same rules (infinite deck: each card value has a known probability,
# and the dealer's final total has a computable distribution for each showing card).

# %%
t0 = time.perf_counter()
mc = tc.mc_exploring_starts(1_000_000, batch_size=10_000, seed=5, update_fn=accumulate_returns,
                            progress=True)
print(f"1,000,000 episodes of MC exploring starts in {time.perf_counter() - t0:.1f} s")
book = tc.book_optimal_policy()
Q_exact, dp_policy = tc.blackjack_action_values()
agree = (mc.policy == book).mean()
print(f"learned policy agrees with Figure 5.2 in {agree:.1%} of the 200 states; "
      f"the exact DP policy agrees with Figure 5.2 in {(dp_policy == book).mean():.0%}")
for u, s, d in np.argwhere(mc.policy != book):
    q, n = Q_exact[u, s, d], mc.counts[u, s, d]
    print(f"  differs at sum {s + 12}, dealer {d + 1}, usable ace {bool(u)}: exact Q(stick) = "
          f"{q[0]:.3f}, Q(hit) = {q[1]:.3f} (gap {abs(q[1] - q[0]):.3f}); {n[0]} and {n[1]} "
          f"returns, standard error of the difference <= {np.sqrt(1 / n[0] + 1 / n[1]):.3f}")
gaps = np.abs(np.diff(Q_exact, axis=-1))[..., 0]
assert np.array_equal(dp_policy, book) and agree >= 0.95
assert np.all(gaps[mc.policy != book] < 0.05)

# %%
fig, axes = plt.subplots(2, 2, figsize=(10, 8), sharex=True, sharey=True)
cmap = plt.matplotlib.colors.ListedColormap(["#4c9be8", "#f28e2b"])
for col, (title, pol) in enumerate((("learned (MC ES, 10^6 episodes)", mc.policy),
                                    ("Sutton & Barto, Figure 5.2", book))):
    for row, u in enumerate((1, 0)):
        ax = axes[row, col]
        ax.imshow(pol[u], origin="lower", cmap=cmap, vmin=0, vmax=1,
                  extent=(0.5, 10.5, 11.5, 21.5), aspect="auto")
        for s, d in np.argwhere(mc.policy[u] != book[u]):
            ax.text(d + 1, s + 12, "x", ha="center", va="center", fontsize=14)
        ax.set_title(f"{title}\n{'usable' if u else 'no usable'} ace")
        ax.set_xticks(range(1, 11), ["A"] + [str(i) for i in range(2, 11)])
        ax.set_yticks(range(12, 22))
        ax.set_xlabel("dealer showing")
        ax.set_ylabel("player sum")
fig.legend(handles=[plt.matplotlib.patches.Patch(color=c, label=lab)
                    for c, lab in (("#4c9be8", "stick"), ("#f28e2b", "hit"))],
           loc="lower center", ncol=2)
plt.tight_layout(rect=(0, 0.04, 1, 1))
plt.show()

# %% [markdown]
# The few disagreements (marked x) sit where sticking and hitting are worth almost the same:
# the exact gaps printed above are a few hundredths at most, of the order of the standard error
# of the difference of two sample averages of $\pm 1$ returns (and the early returns were collected
# under worse policies). Telling those actions apart needs far more episodes, and getting them
# wrong costs just as little.
#
# The usable-ace panel shows why the ace matters: a soft 18 can safely draw against a strong
# dealer card (9, 10, ace), because no single card can bust it.
#
# ## 4. Off-policy prediction: ordinary vs weighted importance sampling (Example 5.4)
#
# Evaluate a **target policy** $\pi$ from episodes of a different **behaviour policy** $b$.
# An episode's return $G$ is reweighted by the probability ratio of its actions,
# $$\rho = \prod_{t=0}^{T-1} \frac{\pi(A_t \mid S_t)}{b(A_t \mid S_t)},$$
# (the dynamics cancel, so only the policies are needed). With $n$ episodes from the same start
# state:
# $$V_\text{ordinary} = \frac{\sum_{i=1}^n \rho_i G_i}{n}, \qquad
#   V_\text{weighted} = \frac{\sum_{i=1}^n \rho_i G_i}{\sum_{i=1}^n \rho_i}.$$
# Ordinary IS is unbiased ($\mathbb E_b[\rho G] = \mathbb E_\pi[G]$) but its variance can be
# huge (here $\rho$ reaches $2^T$). Weighted IS is biased for small $n$ (after one episode it
# is just $G_1$, if $\rho_1 > 0$) but its estimate always lies within the range of the observed
# returns, and the bias vanishes as $n$ grows.
#
# **The book's experiment:** start in the state player sum 13, usable ace, dealer shows 2;
# behaviour: hit or stick with probability 1/2; target: stick only on 20 or 21. A
# deterministic target makes $\rho$ either $0$ (some action disagreed) or $2^T$. The book gives
# $v_\pi = -0.27726$ from 100 million episodes; dynamic programming gives it exactly:

# %%
policy_54 = np.broadcast_to((np.arange(12, 22) < 20)[None, :, None], (2, 10, 10)).astype(int)
Q_54, _ = tc.blackjack_action_values(policy_54)
total, usable, dealer = tc.EXAMPLE_5_4_START
v_true = Q_54[int(usable), total - 12, dealer - 1, tc.HIT]  # the target policy hits on 13
print(f"exact v_pi = {v_true:.5f} (book, from 10^8 sampled episodes: -0.27726)")
assert abs(v_true + 0.27726) < 3e-4

# %% [markdown]
# ### Exercise 4: the ordinary IS estimates
# `returns` and `ratios` have shape `[..., n]` (episodes on the last axis). Return the estimate
# after each episode: entry `k` uses the first `k + 1` episodes.

# %%
def ordinary_is_estimates(returns, ratios):
    """[..., n] -> [..., n]: entry k is the ordinary IS estimate from episodes 0..k."""
    ### BEGIN SOLUTION
    weighted_returns = np.asarray(ratios, dtype=float) * np.asarray(returns, dtype=float)
    n = weighted_returns.shape[-1]
    return np.cumsum(weighted_returns, axis=-1) / np.arange(1, n + 1)
    ### END SOLUTION


ordinary_is_estimates = check("tabular_control.ordinary_is_estimates", ordinary_is_estimates)
print(show_source(tc.ordinary_is_estimates))

# %% [markdown]
# ### Exercise 5: the weighted IS estimate, incrementally
# Storing every return is unnecessary. Keep the running estimate $V$ and the cumulative weight
# $C = \sum_i \rho_i$; a new episode with return $G$ and ratio $W$ does
# $$C \leftarrow C + W, \qquad V \leftarrow V + \frac{W}{C}\,(G - V).$$
# (It is the incremental mean of notebook 01 with weights; the book uses the same update per
# state-action pair in off-policy MC control.) While $C = 0$ there is no estimate yet: keep
# $V$ unchanged. Return the pair `(V, C)`; everything works elementwise on arrays.

# %%
def weighted_is_update(value, cum_weight, ret, ratio):
    """One more episode (return ret, ratio W) -> (new value, new cum_weight), elementwise."""
    ### BEGIN SOLUTION
    cum_weight = np.asarray(cum_weight, dtype=float) + ratio
    value = np.asarray(value, dtype=float)
    safe_c = np.where(cum_weight > 0, cum_weight, 1.0)
    step = np.where(cum_weight > 0, np.asarray(ratio, dtype=float) / safe_c, 0.0)
    return value + step * (ret - value), cum_weight
    ### END SOLUTION


weighted_is_update = check("tabular_control.weighted_is_update", weighted_is_update)
print(show_source(tc.weighted_is_update))

# %% [markdown]
# 100 runs of 10,000 episodes each (as in Figure 5.3); the mean squared error over runs after
# each episode, on log-log axes.

# %%
rng = np.random.default_rng(6)
t0 = time.perf_counter()
episodes = [tc.example_5_4_episodes(10_000, rng) for _ in range(100)]
G = np.array([g for g, _ in episodes])      # [runs, episodes]
rho = np.array([w for _, w in episodes])
V_ord = ordinary_is_estimates(G, rho)
V_w = tc.weighted_is_incremental(G, rho, update_fn=weighted_is_update)
print(f"100 runs x 10,000 episodes in {time.perf_counter() - t0:.1f} s; "
      f"{(rho > 0).mean():.1%} of the episodes have rho > 0 (max rho {rho.max():.0f})")
assert np.allclose(V_w, tc.weighted_is_estimates(G, rho))  # incremental == batch formula
mse = {"ordinary IS": ((V_ord - v_true) ** 2).mean(axis=0),
       "weighted IS": ((V_w - v_true) ** 2).mean(axis=0)}
fig, ax = plt.subplots()
for name, m in mse.items():
    ax.plot(np.arange(1, 10_001), m, label=name)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("episodes (log scale)")
ax.set_ylabel("mean squared error over 100 runs")
ax.set_title("Off-policy estimate of v(13, usable ace, dealer 2) (Figure 5.3)")
ax.legend()
plt.show()

first10 = {k: m[:10].mean() for k, m in mse.items()}
for k, m in mse.items():
    print(f"{k:12s} MSE: episodes 1-10 (mean) {first10[k]:.3f}, after 100 {m[99]:.4f}, "
          f"after 1,000 {m[999]:.4f}, after 10,000 {m[-1]:.5f}")
assert first10["ordinary IS"] > 3 * first10["weighted IS"]
assert all(m[-1] < m[9] / 50 for m in mse.values())
assert mse["weighted IS"][-1] < 0.003 and mse["ordinary IS"][-1] < 0.005
peak = int(mse["weighted IS"][:100].argmax()) + 1
print(f"weighted IS: MSE {mse['weighted IS'][0]:.3f} after 1 episode, highest "
      f"({mse['weighted IS'][peak - 1]:.3f}) after {peak} episodes")
assert 3 <= peak <= 40

# %% [markdown]
# Early on, ordinary IS multiplies a $\pm 1$ return by ratios like 8 or 16, so a single lucky
# or unlucky episode moves the estimate far outside $[-1, 1]$; weighted IS averages the
# returns of the matching episodes and stays within $[-1, 1]$. (Its very first points are
# flattered by a convention: until some episode has $\rho > 0$ the estimate is 0, only 0.28 away
# from the truth. Its error then rises to the printed peak, when most runs have averaged one
# or two matching returns of $\pm 1$, and falls from there.) Both converge: the bias of the
# weighted estimator shrinks like $1/n$, and here ordinary IS's variance is finite (the ratio
# is bounded), so its error falls like $1/n$ too. With unbounded ratios (e.g. loops in the
# episode), ordinary IS can have infinite variance (the book's Example 5.5).
#
# ### 4.1 Every action value at once: off-policy Monte Carlo prediction
# The book's general algorithm (section 5.6) estimates $Q^\pi(s, a)$ for every pair from the
# behaviour's episodes, with the weighted update of Exercise 5 applied per pair. The weight of a
# return $G_t$ for $Q(S_t, A_t)$ is the product of the ratios of the actions **after** $t$:
# $A_t$ is given (that is what $Q(S_t, A_t)$ conditions on), so its own ratio does not enter.
# Going backwards through the episode builds all these products with one multiplication per
# step, and once a ratio is 0 every earlier step has weight 0 too, so the loop can stop.
#
# ### Exercise 6: one episode of off-policy MC prediction
# `Q` and `C` are tables `[S, A]` updated in place. `states`, `actions`, `rewards` describe one
# episode (`rewards[t]` follows `actions[t]`), and `pi_probs[t]`, `b_probs[t]` are the target's
# and the behaviour's probabilities of `actions[t]` in `states[t]`.

# %%
def off_policy_mc_update(Q, C, states, actions, rewards, pi_probs, b_probs, gamma):
    """One episode of weighted-IS off-policy MC prediction: Q, C [S, A] in place; None."""
    ### BEGIN SOLUTION
    ret, weight = 0.0, 1.0
    for t in reversed(range(len(states))):
        s, a = states[t], actions[t]
        ret = gamma * ret + rewards[t]
        C[s, a] += weight
        Q[s, a] += weight / C[s, a] * (ret - Q[s, a])
        weight *= pi_probs[t] / b_probs[t]
        if weight == 0.0:
            break
    ### END SOLUTION


off_policy_mc_update = check("tabular_control.off_policy_mc_update", off_policy_mc_update)
print(show_source(tc.off_policy_mc_update))

# %% [markdown]
# Now $Q^\pi$ of the Example 5.4 policy (stick only on 20 or 21) in all 400 state-action pairs,
# from 200,000 episodes of the random behaviour that start in uniformly random states, scored
# against the exact $Q^\pi$ from dynamic programming:

# %%
t0 = time.perf_counter()
marks = (2_000, 6_000, 20_000, 60_000, 200_000)
Q_off, C_off, Q_seen = tc.off_policy_blackjack_q(policy_54, 200_000, seed=7,
                                                 update_fn=off_policy_mc_update,
                                                 checkpoints=marks)
print(f"200,000 episodes of off-policy MC prediction in {time.perf_counter() - t0:.1f} s")
rms = np.array([np.sqrt(((q - Q_54) ** 2).mean()) for q in Q_seen])
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
axes[0].loglog(marks, rms, "o-", label="measured")
axes[0].loglog(marks, rms[0] * np.sqrt(marks[0] / np.array(marks)), "k--",
               label="slope -1/2 (error ~ 1/sqrt(n))")
axes[0].set_xlabel("episodes")
axes[0].set_ylabel("RMS error over the 400 pairs")
axes[0].set_title("Weighted-IS estimate of Q^pi vs the exact values")
axes[0].legend()
axes[1].scatter(Q_54.ravel(), Q_off.ravel(), s=8, c=np.log10(C_off.ravel()), cmap="viridis")
axes[1].plot([-1, 1], [-1, 1], "k--", linewidth=1)
axes[1].set_xlabel("exact Q^pi(s, a) (dynamic programming)")
axes[1].set_ylabel("estimate after 200,000 episodes")
axes[1].set_title("400 state-action pairs (colour: log10 of the weight C)")
plt.tight_layout()
plt.show()
for n, e in zip(marks, rms):
    print(f"after {n:7,d} episodes: RMS error {e:.3f}")
print(f"smallest cumulative weight C: {C_off.min():.0f}; largest error "
      f"{np.abs(Q_off - Q_54).max():.3f}")
err_off = np.abs(Q_off - Q_54)
low_c = C_off < np.quantile(C_off, 0.25)
usable_low = (np.arange(2)[:, None, None, None] == 1) & (np.arange(12, 22)[None, :, None, None]
                                                         <= 14)
print(f"mean error: the quarter of pairs with the smallest C {err_off[low_c].mean():.3f}, the "
      f"rest {err_off[~low_c].mean():.3f}; usable ace with sum 12-14 holds "
      f"{(low_c & usable_low).sum()} of the {low_c.sum()} smallest-C pairs")
assert rms[-1] < 0.06 and rms[0] > 4 * rms[-1]
assert err_off[low_c].mean() > 1.5 * err_off[~low_c].mean()

# %% [markdown]
# The error falls like $1/\sqrt n$, as for any average. The largest errors sit mostly where
# the weight $C$ is small (dark dots): states from which the random behaviour rarely follows
# $\pi$ for long, such as low sums with a usable ace, where $\pi$ hits several times in a row
# and each hit of the behaviour has probability 1/2. Off-policy MC *control* (the book's section 5.7) uses the same loop with a greedy
# target policy, so it learns only from the tails of episodes after the last exploratory
# action, and it is slow for exactly this reason.
#
# ## Common misconceptions
#
# * "Expected SARSA is off-policy because its target is an expectation." With $\pi$ the
#   $\varepsilon$-greedy behaviour it is on-policy; with a *greedy* target policy its target is
#   $\max_{a'} Q(s', a')$ and it becomes Q-learning. It can evaluate any target policy without
#   importance sampling, since $a'$ is not sampled.
# * "Double Q-learning averages two tables." The behaviour uses $Q_1 + Q_2$, but the *update*
#   chooses with one table and scores with the other; averaging both in the target would keep
#   the bias.
# * "Weighted importance sampling is unbiased." It is biased (consistent, bias $\to 0$); the
#   ordinary estimator is the unbiased one, with higher variance.
# * "Exploring starts are a practical exploration method." They need the ability to start in
#   any state with any action, usually only possible in simulation; $\varepsilon$-soft policies
#   or off-policy learning are the general alternatives.
#
# ## What to remember
#
# * Expected SARSA: target $r + \gamma\sum_{a'}\pi(a'|s')Q(s', a')$, SARSA's target averaged
#   over $a'$; lower variance, tolerates large $\alpha$, contains Q-learning ($\pi$ greedy).
# * $\max$ over noisy estimates is biased upwards; Q-learning inherits it through its target.
# * Double Q-learning: a coin picks the table to update; it selects $a^*$ with its own argmax
#   and evaluates $a^*$ with the other table.
# * Monte Carlo control averages complete returns per (state, action) and acts greedily;
#   exploring starts or $\varepsilon$-soft policies keep every action tried.
# * Off-policy MC reweights returns by $\rho = \prod_t \pi(A_t|S_t)/b(A_t|S_t)$; ordinary IS
#   divides by $n$ (unbiased, high variance), weighted IS by $\sum\rho$ (biased, low variance).
# * Incremental weighted IS: $C \leftarrow C + W$, $V \leftarrow V + (W/C)(G - V)$. For
#   $Q(S_t, A_t)$ the weight uses only the ratios *after* $t$: multiply $W$ after the update,
#   and stop once it is 0.
# * Use `np.add.at` (not `x[idx] += v`) when an index batch may repeat.
#
# ## Further reading
#
# * Sutton & Barto (2018), *Reinforcement Learning: An Introduction*, 2nd ed., chapter 5
#   (Monte Carlo methods: blackjack, exploring starts, off-policy prediction by importance
#   sampling, Figures 5.2 and 5.3) and chapter 6 (Expected SARSA and Figure 6.3, maximisation
#   bias and Double Q-learning, Example 6.7 and Figure 6.5).
# * van Hasselt (2010), "Double Q-learning", NeurIPS: the double estimator and its proof of
#   convergence.
# * van Seijen, van Hasselt, Whiteson & Wiering (2009), "A theoretical and empirical analysis
#   of Expected Sarsa", IEEE ADPRL.
# * van Hasselt, Guez & Silver (2016), "Deep reinforcement learning with double Q-learning",
#   AAAI: Double DQN.
# * Precup, Sutton & Singh (2000), "Eligibility traces for off-policy policy evaluation",
#   ICML: importance sampling for off-policy evaluation.
#
# ## Interview questions
# 1. Write the Expected SARSA target for an $\varepsilon$-greedy policy. What does it become
#    for $\varepsilon = 0$, and why does it have lower variance than SARSA's?
#
# <details><summary>Answer</summary>
#
# $r + \gamma\big[(1-\varepsilon)\max_{a'}Q(s', a') + \frac{\varepsilon}{|\mathcal A|}
# \sum_{a'} Q(s', a')\big]$ (ties share the greedy mass). For $\varepsilon = 0$ it is
# Q-learning's target. It is the conditional expectation of SARSA's target given $s'$, so by
# the law of total variance its variance is smaller by $\gamma^2\,\mathbb E[\mathrm{Var}_{a'}
# Q(s', a')]$; it removes the noise of the next action's draw.
# </details>
#
# 2. Why does Q-learning overestimate, and how does Double Q-learning fix it?
#
# <details><summary>Answer</summary>
#
# The target takes the max over noisy estimates, and $\mathbb E[\max_a \hat Q(a)] \ge
# \max_a \mathbb E[\hat Q(a)]$: the action that looks best is often the one whose estimate is
# too high. Double Q-learning chooses $a^* = \arg\max Q_1(s', \cdot)$ and evaluates it with an
# independent $Q_2(s', a^*)$, whose error is not correlated with the choice, so the target is
# not optimistic (it can be slightly pessimistic).
# </details>
#
# 3. In Example 6.7, why does Q-learning prefer "left" early although it is worse?
#
# <details><summary>Answer</summary>
#
# $Q(A, \text{left})$ bootstraps on $\max_b Q(B, b)$. Early on, some of B's estimates are at
# or above 0 (unvisited, or lucky rewards), while $Q(A, \text{right}) = 0$ exactly. The max
# over 10 noisy values is positive long before each has been averaged down to $-0.1$, so
# "left" looks better.
# </details>
#
# 4. Monte Carlo ES on blackjack: why exploring starts, and why does the learned policy still
#    differ from the optimal one in a few states?
#
# <details><summary>Answer</summary>
#
# A greedy policy would never try the other action in a state, so its value would never be
# estimated; starting each episode with a random state and action guarantees that every pair
# keeps being sampled. The differences are states where both actions have nearly the same
# value (gaps around 0.01): the sample averages of $\pm 1$ returns need far more episodes to
# resolve them, and the cost of the mistake is just as small.
# </details>
#
# 5. Ordinary vs weighted importance sampling: bias, variance, and which one to use.
#
# <details><summary>Answer</summary>
#
# Ordinary: $\sum\rho_i G_i / n$, unbiased, variance can be very large (even infinite). Weighted:
# $\sum\rho_i G_i / \sum\rho_i$, biased for finite $n$ (bias $\to 0$), variance bounded when
# returns are bounded. Weighted is usually preferred in practice; ordinary is easier to
# extend to function approximation and per-decision variants.
# </details>
#
# 6. Why does the weighted-IS update stop (or skip) when $\pi(A_t|S_t) = 0$?
#
# <details><summary>Answer</summary>
#
# Then $\rho = 0$: the trajectory is impossible under the target policy, so it carries no
# information about $v_\pi$, and every earlier step of the episode (in the backward loop of
# off-policy MC control) gets weight 0 too. Stopping saves work; and while the cumulative
# weight $C$ is still 0 the estimate must be left unchanged (no $0/0$).
# </details>
#
# 7. Is Expected SARSA on-policy or off-policy?
#
# <details><summary>Answer</summary>
#
# Either. The expectation can be taken under any target policy $\pi$, with the data coming
# from a behaviour $b$; no importance weights are needed because the next action is not
# sampled. With $\pi = b$ ($\varepsilon$-greedy) it is on-policy; with a greedy $\pi$ it is
# Q-learning (off-policy).
# </details>

# %%
rlcourse.results.record(
    "15_tabular_control",
    title="Classic tabular control: Monte Carlo, Expected SARSA and Double Q-learning",
    topics="Expected SARSA, maximisation bias, Double Q-learning, Monte Carlo ES on blackjack, "
           "ordinary vs weighted importance sampling",
    headline=(f"Cliff online return: Expected SARSA {late['Expected SARSA']:.0f}, SARSA "
              f"{late['SARSA']:.0f}, Q-learning {late['Q-learning']:.0f}; left from A in "
              f"episodes 10-20: Q-learning {early['Q-learning']:.0%} vs Double Q "
              f"{early['Double Q-learning']:.0%}; MC ES matches {agree:.1%} of Figure 5.2; "
              f"IS MSE over episodes 1-10: ordinary {first10['ordinary IS']:.2f} vs weighted "
              f"{first10['weighted IS']:.2f}"),
    metrics={"cliff_online_expected_sarsa": late["Expected SARSA"],
             "cliff_online_sarsa": late["SARSA"], "cliff_online_qlearning": late["Q-learning"],
             "maxbias_left_q_ep10_20": early["Q-learning"],
             "maxbias_left_double_ep10_20": early["Double Q-learning"],
             "maxbias_left_double_ep201_300": tail["Double Q-learning"],
             "blackjack_policy_agreement": agree,
             "is_mse_first10_ordinary": first10["ordinary IS"],
             "is_mse_first10_weighted": first10["weighted IS"],
             "is_mse_10000_weighted": mse["weighted IS"][-1],
             "offpolicy_q_rms_200k": rms[-1]},
)
print(f"total time {session.elapsed():.1f} s")
