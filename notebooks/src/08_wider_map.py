# %% [markdown]
# # 08 · The wider map: SAC, TD3, multi-agent, offline, safe RL, MCTS and more
#
# Notebooks 04 to 07 built the two workhorses of deep RL, DQN and PPO. Around them sits a
# family of methods that every practitioner is expected to *recognise* and to place: which
# problem each solves, which failure of a simpler method it fixes, and when to reach for it.
# This notebook is a map at the level of an interview, not a set of full implementations.
# Each family gets its key formula, a few lines of computation that make the formula concrete,
# and questions at the end. One experiment is real: Monte-Carlo tree search playing tic-tac-toe.
#
# **Learning goals.** After this notebook you can
# 1. state the maximum-entropy objective of SAC, compute a soft state value, and explain how
#    the temperature $\alpha$ moves the soft-optimal policy $\mathrm{softmax}(Q/\alpha)$ between
#    greedy and uniform;
# 2. name TD3's three fixes to DDPG (clipped double-Q, target policy smoothing, delayed actor
#    updates), compute its target, and measure the overestimation that the minimum removes;
# 3. choose between SAC, TD3, PPO and DQN for a given problem, and say why A3C is rarely used now;
# 4. explain why multi-agent RL is harder (non-stationarity, credit assignment, the joint action
#    space $|A|^N$) and what CTDE, independent learners, MAPPO and QMIX do;
# 5. explain why naive off-policy RL fails on a fixed dataset (extrapolation error) and how
#    behaviour cloning, CQL, IQL and the Decision Transformer avoid it;
# 6. write a constrained MDP, its Lagrangian relaxation, and run dual ascent on the multiplier;
# 7. describe sim-to-real transfer, domain randomisation and curricula;
# 8. walk through the four phases of MCTS with UCT (and AlphaZero's PUCT), and measure how
#    search strength grows with the number of simulations; describe self-play;
# 9. describe how recommender systems use RL (slates, long-term value).

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

import rlcourse
import rlcourse.results
from rlcourse import wider
from rlcourse.exercises import check

session = rlcourse.setup(seed=0)

# %% [markdown]
# ## 1. SAC: maximum-entropy RL
#
# Soft Actor-Critic (SAC) changes the objective. Besides reward, the agent is paid for keeping
# its policy random, measured by the entropy $\mathcal H(\pi(\cdot|s)) = -\mathbb E_{a\sim\pi}
# [\log\pi(a|s)]$:
# $$J(\pi) = \sum_t \mathbb E_{(s_t, a_t)\sim\rho_\pi}\big[r(s_t, a_t) + \alpha\,\mathcal H(\pi(\cdot|s_t))\big].$$
# The **temperature** $\alpha > 0$ prices entropy in units of reward. The values change with the
# objective. The **soft state value** adds the entropy bonus to the expected Q:
# $$V(s) = \mathbb E_{a\sim\pi}\big[Q(s,a) - \alpha\log\pi(a|s)\big]
#        = \sum_a \pi(a|s)\,Q(s,a) + \alpha\,\mathcal H(\pi(\cdot|s)),$$
# and the soft Q-function bootstraps on it: $Q(s,a) = r(s,a) + \gamma\,\mathbb E_{s'}[V(s')]$.
#
# ### Exercise 1: the soft state value
# For a discrete policy, `q` and `log_probs` have shape `[..., A]` (the last axis is the action);
# return the soft value with shape `[...]`. With $\alpha = 0$ it must be the plain expected Q.

# %%
def soft_state_value(q: torch.Tensor, log_probs: torch.Tensor, alpha: float) -> torch.Tensor:
    """Soft state value [...] of a discrete policy; q, log_probs [..., A], alpha >= 0."""
    ### BEGIN SOLUTION
    return (log_probs.exp() * (q - alpha * log_probs)).sum(-1)
    ### END SOLUTION


soft_state_value = check("wider.soft_state_value", soft_state_value)

# %% [markdown]
# **Which policy maximises the soft value?** Maximising $\sum_a\pi(a)Q(a) - \alpha\sum_a\pi(a)
# \log\pi(a)$ over the probability simplex (a Lagrange multiplier for $\sum_a\pi(a) = 1$) gives a
# Boltzmann policy and a closed-form value:
# $$\pi^*(a|s) = \frac{\exp(Q(s,a)/\alpha)}{\sum_b \exp(Q(s,b)/\alpha)} = \mathrm{softmax}(Q/\alpha),
# \qquad V^*(s) = \alpha\log\sum_a \exp\big(Q(s,a)/\alpha\big).$$
# $V^*$ is a "soft maximum": as $\alpha\to 0$ it tends to $\max_a Q$ (greedy), as
# $\alpha\to\infty$ the policy tends to uniform. Below, four actions with $Q = (1.0, 0.8, 0, -1)$:
# your `soft_state_value` evaluates $\mathrm{softmax}(Q/\alpha)$ and we compare with the
# log-sum-exp formula and with other policies.

# %%
q = torch.tensor([1.0, 0.8, 0.0, -1.0], dtype=torch.float64)
alphas = [0.01, 0.1, 0.3, 1.0, 3.0, 10.0]
probs = []
print(" alpha | pi(a) for Q = (1.0, 0.8, 0, -1) | entropy | E_pi[Q] |  soft V | a*logsumexp")
for alpha in alphas:
    pi = wider.soft_optimal_policy(q, alpha)
    v = float(soft_state_value(q, pi.log(), alpha))
    lse = alpha * float(torch.logsumexp(q / alpha, 0))
    ent = float(-(pi * pi.log()).sum())
    probs.append(pi.numpy())
    print(f"{alpha:6.2f} | {'  '.join(f'{p:.3f}' for p in pi.tolist()):>30} | {ent:7.3f} | "
          f"{float((pi * q).sum()):7.3f} | {v:7.3f} | {lse:7.3f}")
    assert abs(v - lse) < 1e-9, "the soft value of softmax(Q/alpha) is alpha*logsumexp(Q/alpha)"

# no other policy does better (uniform, and 200 random policies)
rng = np.random.default_rng(0)
others = [torch.full((4,), 0.25, dtype=torch.float64)] + [torch.tensor(rng.dirichlet(np.ones(4))) for _ in range(200)]
best_other = max(float(soft_state_value(q, p.log(), 0.3)) for p in others)
v_soft = float(soft_state_value(q, wider.soft_optimal_policy(q, 0.3).log(), 0.3))
print(f"alpha=0.3: soft value of softmax(Q/alpha) {v_soft:.4f} >= best of 201 others "
      f"{best_other:.4f}")
assert v_soft >= best_other
probs = np.array(probs)
assert probs[0, 0] > 0.99 and probs[-1].min() > 0.2  # greedy at small alpha, near-uniform at large

fig, ax = plt.subplots(figsize=(6.5, 3.6))
for a in range(4):
    ax.plot(alphas, probs[:, a], marker="o", label=f"a{a}: Q={q[a]:.1f}")
ax.set_xscale("log")
ax.set_xlabel(r"temperature $\alpha$")
ax.set_ylabel(r"$\pi^*(a)$ = softmax$(Q/\alpha)$")
ax.set_title("The temperature moves the soft-optimal policy from greedy to uniform")
ax.legend()
plt.show()

# %% [markdown]
# **Why SAC explores.** Where two actions have almost the same Q (here $a_0$ and $a_1$) the
# soft-optimal policy keeps both alive instead of committing to one on the basis of noise, and it
# only becomes nearly deterministic where one action is clearly better (a gap that is large
# compared with $\alpha$). Exploration is part of the objective, not noise added from outside
# (as $\epsilon$-greedy does for DQN or Gaussian noise for DDPG). The stochastic policy is also
# more robust and can represent several good modes.
#
# **SAC in one paragraph.** Off-policy, with a replay buffer, for continuous actions. Two
# critics $Q_{\phi_1}, Q_{\phi_2}$ with slowly updated (Polyak) target copies learn from the
# soft target
# $$y = r + \gamma(1-d)\Big(\min_{i=1,2} Q_{\bar\phi_i}(s', a') - \alpha\log\pi_\theta(a'|s')\Big),
# \quad a'\sim\pi_\theta(\cdot|s').$$
# The actor is a squashed Gaussian, $\tilde a = \tanh(\mu_\theta(s) + \sigma_\theta(s)\odot
# \varepsilon)$, trained through the reparameterisation trick to minimise
# $\mathbb E_{s, \varepsilon}[\alpha\log\pi_\theta(\tilde a|s) - \min_i Q_{\phi_i}(s, \tilde a)]$
# (the log-probability includes the $\tanh$ change-of-variables correction). The temperature
# is usually tuned automatically to hold the entropy near a target $\bar{\mathcal H}$ (commonly
# $-\dim\mathcal A$) by minimising $\mathbb E[-\alpha(\log\pi(a|s) + \bar{\mathcal H})]$: if the
# policy is less random than the target, $\alpha$ grows, and vice versa. (A full SAC run on
# Pendulum does not fit this notebook's time budget; the course keeps SAC at this level.)

# %% [markdown]
# ## 2. DDPG and TD3
#
# **DDPG** is "DQN for continuous actions": a deterministic actor $\mu_\theta(s)$ replaces the
# $\arg\max$, a critic learns $Q_\phi$ from replayed data with target
# $y = r + \gamma(1-d)\,Q_{\bar\phi}(s', \mu_{\bar\theta}(s'))$, and the actor climbs the critic,
# $\nabla_\theta\,\mathbb E_s[Q_\phi(s, \mu_\theta(s))]$. Exploration is noise added to the action.
# DDPG is brittle: the actor is trained to find the *largest* critic value, so every error that
# makes $Q$ too high is sought out and then copied into the targets, and the overestimation
# compounds.
#
# **TD3** (Twin Delayed DDPG) adds three fixes:
#
# | trick | formula | the failure it fixes |
# |---|---|---|
# | clipped double-Q | $y = r + \gamma(1-d)\min_{i=1,2} Q_{\bar\phi_i}(s', \tilde a)$ | overestimation: the actor exploits critic errors, bootstrapping compounds them |
# | target policy smoothing | $\tilde a = \mathrm{clip}\big(\mu_{\bar\theta}(s') + \mathrm{clip}(\epsilon, -c, c), a_\text{low}, a_\text{high}\big)$, $\epsilon\sim\mathcal N(0,\sigma^2)$ | the actor exploiting narrow, wrong peaks of Q; smooths the target over nearby actions |
# | delayed actor updates | update actor and targets once every $d$ (e.g. 2) critic steps | high-variance actor updates against a critic that has not yet settled |
#
# ### Exercise 2: the TD3 target
# All inputs have shape `[B]`; `terminated` is boolean. Use the smaller of the two target
# critics, and no bootstrap after a true termination (a time-limit truncation *does*
# bootstrap, so it is not passed here).

# %%
def td3_target(rewards: torch.Tensor, q1_next: torch.Tensor, q2_next: torch.Tensor,
               terminated: torch.Tensor, gamma: float) -> torch.Tensor:
    """TD3 clipped double-Q targets [B]; every input [B], terminated boolean."""
    ### BEGIN SOLUTION
    alive = 1.0 - terminated.to(rewards.dtype)
    return rewards + gamma * alive * torch.minimum(q1_next, q2_next)
    ### END SOLUTION


td3_target = check("wider.td3_target", td3_target)

# %% [markdown]
# **How much does the minimum help?** A toy with the answer known: at $s'$ ten actions all have
# true value 0, and reward 0, so the correct target is 0. Two critics each estimate the ten
# values with independent noise $\mathcal N(0, 1)$; the actor is greedy with respect to critic 1
# (it was trained to climb it). A single-critic target uses $Q_1(s', a^*)$, which is the maximum
# of ten noisy numbers and therefore biased upwards (by $\mathbb E[\max_{10}] \approx 1.54$). The
# clipped target takes $\min(Q_1, Q_2)$ at the same action. Your `td3_target` computes both
# (passing critic 1 twice gives the single-critic target).

# %%
n, n_actions = 100_000, 10
gen = torch.Generator().manual_seed(0)
q1_all = torch.randn(n, n_actions, generator=gen)
q2_all = torch.randn(n, n_actions, generator=gen)
a_star = q1_all.argmax(1, keepdim=True)  # the actor climbs critic 1
q1_next, q2_next = q1_all.gather(1, a_star)[:, 0], q2_all.gather(1, a_star)[:, 0]
zeros, alive = torch.zeros(n), torch.zeros(n, dtype=torch.bool)
bias_single = float(td3_target(zeros, q1_next, q1_next, alive, 1.0).mean())
bias_clipped = float(td3_target(zeros, q1_next, q2_next, alive, 1.0).mean())
bias_double = float(q2_next.mean())  # double-Q-learning style: evaluate with the other critic
print(f"bias of the target (truth 0): single critic {bias_single:+.3f}, "
      f"other critic (double Q) {bias_double:+.3f}, clipped min {bias_clipped:+.3f}")
assert bias_single > 1.4 and abs(bias_double) < 0.02 and -0.6 < bias_clipped < 0.0

# %% [markdown]
# The single critic overestimates by about 1.5 standard deviations of its noise. Evaluating the
# chosen action with the other critic (double Q-learning) is unbiased here; the minimum goes a
# little further and *under*-estimates. TD3 prefers that trade: an underestimate is not sought
# out by the actor, so it does not compound, while an overestimate is and does. SAC uses the
# same $\min$ of two critics.

# %% [markdown]
# ## 3. Choosing an algorithm (SAC, TD3, PPO, DQN, A3C)
#
# * **Continuous control with costly samples** (robots, MuJoCo): off-policy actor-critics,
#   SAC or TD3. The replay buffer reuses every transition many times, so they need far fewer
#   environment steps than PPO. SAC is the usual default: robust to hyperparameters thanks to
#   its entropy term and automatic temperature.
# * **Cheap, parallel simulation, discrete or mixed actions, or LLMs**: PPO. On-policy, so each
#   batch is used for a few epochs and thrown away (sample-hungry), but it is simple, scales
#   across many parallel environments and is stable. RLHF of language models uses PPO-style
#   updates (notebooks 09+), not SAC: the action space is a vocabulary sequence and the
#   "environment" is the model's own generation.
# * **Discrete actions, sample efficiency matters** (Atari): DQN and its descendants
#   (Double/Dueling/prioritised replay, Rainbow).
# * **A3C** (asynchronous advantage actor-critic, 2016) ran many CPU workers that pushed
#   gradients to shared parameters without waiting; the asynchrony decorrelated the data without a
#   replay buffer. On GPUs the synchronous version (A2C, one batched forward pass for all
#   environments) is simpler and as good, and PPO improved on A2C with several epochs per batch
#   and clipping. A3C is now mostly of historical interest; its idea (many actors in parallel)
#   lives on in distributed designs such as IMPALA, which correct for policy lag with V-trace.
#
# Value-based deep RL is the more sample-efficient family but also the more fragile one (the
# deadly triad; notebook 04 measures it). Off-policy data reuse is illustrated best by DQN's
# replay buffer, SAC and TD3 on robots, and offline RL from logs (section 5).

# %% [markdown]
# ## 4. Multi-agent RL
#
# With $N$ agents each picking from $A$ actions the environment sees a **joint action**
# $(a_1, \dots, a_N)$. Settings are cooperative (one shared reward: a robot team), competitive
# (zero-sum: Go, poker) or mixed (traffic, negotiation). Why it is much harder than one agent:
#
# * **Non-stationarity.** To agent $i$ the others are part of the environment, and they keep
#   learning, so its transition and reward functions change under it. The Markov assumption that
#   justified single-agent Q-learning breaks, and replayed experience goes stale.
# * **Credit assignment.** With one team reward, which agent's action earned it?
# * **Scale.** The joint action space grows as $|A|^N$, so a centralised controller that picks
#   joint actions (or a joint Q-table) is hopeless beyond a handful of agents:

# %%
print("|A| \\ N " + "".join(f"{n:>12d}" for n in (1, 2, 5, 10, 20)))
for a in (2, 5, 18):  # 18 = the full Atari action set
    print(f"{a:>7d} " + "".join(f"{float(a) ** n:>12.3g}" for n in (1, 2, 5, 10, 20)))
joint, factored = 5 ** 10, 5 * 10
print(f"10 agents, 5 actions: {joint:,} joint actions vs {factored} per-agent outputs")
assert joint == 9_765_625

# %% [markdown]
# * **Partial observability.** Each agent usually sees only its own observation $o_i$.
#
# **Designs and algorithms (overview).**
# * *Independent learners* (independent Q-learning, IPPO): each agent learns as if alone. Simple,
#   scales, ignores non-stationarity; surprisingly strong baselines.
# * *Centralised training, decentralised execution* (**CTDE**): during training a critic may see
#   the global state and all actions; at execution each agent acts on its own observation.
#   **MAPPO** = PPO with decentralised actors $\pi_i(a_i|o_i)$ and a centralised value $V(s)$.
# * *Value factorisation*: **VDN** sums per-agent values, **QMIX** mixes them with a monotonic
#   network, $Q_\text{tot} = f_\text{mix}(Q_1, \dots, Q_N; s)$ with
#   $\partial Q_\text{tot}/\partial Q_i \ge 0$, so each agent's own $\arg\max$ is also the joint
#   $\arg\max$ (decentralised greedy action selection stays consistent). The price: value
#   functions that are not monotonic in the agents' utilities cannot be represented.
# * *Learned communication* (CommNet and relatives) and *population training* (AlphaStar's league
#   of main agents and exploiters) for competitive games.
# * *LLM multi-agent systems*: debate between models, planner / coder / reviewer pipelines,
#   red-team vs blue-team, negotiation. Most are prompted, not trained with MARL, but the same
#   issues (credit assignment over a team output, non-stationary partners) appear when they are.
#
# Watch the acronym: **IQL** means *independent Q-learning* in MARL and *implicit Q-learning* in
# offline RL (next section).

# %% [markdown]
# ## 5. Offline RL
#
# Offline (batch) RL learns a policy from a fixed dataset $\mathcal D$ of transitions collected
# by some behaviour policy $\mu$, with no further interaction (medical records, logged
# recommendations, driving logs). Running off-policy Q-learning on $\mathcal D$ fails in a
# specific way: the target $r + \gamma\max_{a'}Q(s', a')$ queries actions that $\mathcal D$
# never contains, where $Q$ is an unconstrained extrapolation. The $\max$ picks exactly the
# over-estimated ones (**extrapolation error**), nothing ever corrects them because those actions
# are never tried, and the learned policy steers into states and actions the data does not cover
# (**distribution shift**). The fixes are all forms of pessimism or staying close to the data:
#
# * **Behaviour cloning (BC)**: supervised learning of $\mu$. Strong when the data are expert;
#   filtered BC keeps only the best trajectories.
# * **Policy constraints** (BCQ, BEAR, TD3+BC): keep $\pi$ close to $\mu$, e.g. TD3's actor loss
#   plus a term $\|\pi(s) - a\|^2$.
# * **CQL** (conservative Q-learning) adds to the TD loss a penalty that pushes Q down on actions
#   the policy likes and up on actions in the data:
#   $\alpha\big(\mathbb E_{s\sim\mathcal D}\big[\log\sum_a\exp Q(s,a)\big] -
#   \mathbb E_{(s,a)\sim\mathcal D}[Q(s,a)]\big)$, so unseen actions are not over-valued.
# * **IQL** (implicit Q-learning) never evaluates an unseen action: $V(s)$ is fitted as an upper
#   expectile of $Q(s,a)$ over dataset actions, $Q$ bootstraps on $r + \gamma V(s')$, and the
#   policy is extracted by advantage-weighted regression on the data.
# * **Decision Transformer**: treat RL as sequence modelling; condition a transformer on the
#   desired return-to-go and predict the action (supervised, no bootstrapping).
# * **Offline-to-online**: pre-train offline, then fine-tune with interaction, easing off the
#   pessimism. RLHF reward models and DPO (later notebooks) also learn from fixed preference data
#   and face the same distribution-shift problem.

# %% [markdown]
# ## 6. Constrained MDPs and safe RL
#
# A reward alone cannot say "maximise throughput but keep the crash rate below 1 %". A
# **constrained MDP** adds cost signals $c_i$ with limits $d_i$:
# $$\max_\pi J_r(\pi) \quad \text{s.t.} \quad J_{c_i}(\pi) \le d_i,\qquad
# J_c(\pi) = \mathbb E_\pi\Big[\sum_t\gamma^t c(s_t, a_t)\Big].$$
# The **Lagrangian relaxation** turns it into a saddle-point problem,
# $$\max_\pi \min_{\lambda\ge 0}\; J_r(\pi) - \sum_i \lambda_i\big(J_{c_i}(\pi) - d_i\big),$$
# solved by alternating a policy step on the penalised reward $r - \lambda c$ (any RL algorithm,
# e.g. PPO-Lagrangian) with dual ascent on the multiplier,
# $\lambda \leftarrow \max\big(0, \lambda + \eta\,(J_c(\pi) - d)\big)$ (`wider.lagrange_step`):
# while the constraint is violated the price of cost rises, once it is satisfied with slack the
# price falls back towards 0. Unlike a hand-set penalty, the multiplier finds the price that makes
# the constraint bind. Safe RLHF uses exactly this with a helpfulness reward and a harmlessness
# cost.
#
# **A two-action demo.** A safe action pays reward 1 with cost 0, a risky one pays 2 with cost 1;
# the limit is an expected cost of $d = 0.3$. The constrained optimum mixes the two, taking the
# risky action 30 % of the time, for reward 1.3. The policy step is the soft-optimal policy of
# section 1 on the penalised reward, $\pi_\lambda = \mathrm{softmax}\big((r - \lambda c)/\tau\big)$
# with $\tau = 0.1$; the dual step is `lagrange_step`.

# %%
r_arms, c_arms, limit, tau = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0]), 0.3, 0.1
lam, history = 0.0, []
for _ in range(100):
    pi = wider.soft_optimal_policy(r_arms - lam * c_arms, tau)
    cost, reward = float(pi @ c_arms), float(pi @ r_arms)
    history.append((lam, cost, reward))
    lam = wider.lagrange_step(lam, cost, limit, lr=0.2)
lams, costs, rewards = np.array(history).T
lam_exact = 1.0 + tau * math.log((1 - limit) / limit)  # softmax(...)[risky] = limit exactly
print(f"start (lambda=0): cost {costs[0]:.3f}, reward {rewards[0]:.3f}")
print(f"after {len(lams)} dual steps: lambda {lams[-1]:.3f} (exact {lam_exact:.3f}), "
      f"cost {costs[-1]:.3f} (limit {limit}), reward {rewards[-1]:.3f}")
assert costs[0] > 0.99 and abs(costs[-1] - limit) < 0.005 and abs(lams[-1] - lam_exact) < 0.01

lam_loose = 0.0
for _ in range(100):  # a limit that the unconstrained policy already meets: lambda stays 0
    pi = wider.soft_optimal_policy(r_arms - lam_loose * c_arms, tau)
    lam_loose = wider.lagrange_step(lam_loose, float(pi @ c_arms), 1.0, lr=0.2)
print(f"with a slack limit d=1.0 the multiplier stays at {lam_loose:.3f}")
assert lam_loose == 0.0

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
ax1.plot(lams)
ax1.axhline(lam_exact, ls="--", color="gray", label="exact multiplier")
ax1.set_xlabel("dual step")
ax1.set_ylabel(r"$\lambda$")
ax1.legend()
ax2.plot(costs, label="expected cost")
ax2.axhline(limit, ls="--", color="red", label=f"limit d = {limit}")
ax2.set_xlabel("dual step")
ax2.set_ylabel("expected cost")
ax2.legend()
fig.suptitle("Dual ascent raises the price of cost until the constraint binds")
plt.show()

# %% [markdown]
# ## 7. Sim-to-real, domain randomisation, curricula
#
# Training on real robots is slow, costly and dangerous, so policies are trained in simulation,
# where the **reality gap** (wrong friction, masses, latencies, sensor noise, rendering) makes
# them fail on hardware. Remedies:
# * **Domain randomisation**: sample the simulator's parameters (friction, mass, motor gains,
#   delays, lighting, textures) anew per episode, so that the real world looks like one more
#   sample; the policy must be robust (or infer the parameters from its history, with a recurrent
#   policy).
# * **System identification**: measure or fit the real parameters and set the simulator to match;
#   often combined with randomisation around the identified values.
# * **Progressive transfer**: fine-tune on a little real data, adapt residual policies, or
#   distil a privileged "teacher" (which sees true state in simulation) into a "student" that
#   uses only real sensors.
# * **Curriculum learning**: order tasks from easy to hard (shorter distances, flatter terrain),
#   or let an automatic curriculum choose tasks at the edge of the agent's ability (e.g. widen
#   the randomisation ranges as the agent succeeds, as OpenAI's Rubik's-cube hand did).
#
# The field is moving towards large pre-trained models for robots: vision-language-action models
# (RT-2, Octo, $\pi_0$) map images and instructions to actions, and learned **world models**
# (Dreamer, MuZero-style latent models) let an agent plan or train "in imagination".

# %% [markdown]
# ## 8. Monte-Carlo tree search and self-play
#
# MCTS plans at decision time by building a search tree from the current state. Each
# **simulation** has four phases:
# 1. **Selection**: from the root, repeatedly pick the child with the best score until a node
#    with an untried move (or a terminal state) is reached;
# 2. **Expansion**: add one child for an untried move;
# 3. **Simulation** (rollout): play to the end with a fast default policy (here uniformly
#    random moves) to get an outcome;
# 4. **Backup** (backpropagation): add the outcome to the visit count $N$ and value sum $W$ of every
#    node on the path, each from the point of view of the player who moved into it.
#
# After the budget is spent, play the most-visited root move (more robust than the highest mean).
# Selection treats each node's children as a bandit (notebook 01) and uses **UCT**, UCB1 applied
# to trees:
# $$\mathrm{UCT}(s, a) = \frac{W(s,a)}{N(s,a)} + c\sqrt{\frac{\ln N(s)}{N(s,a)}},$$
# with unvisited children scoring $+\infty$ (try everything once). The first term exploits, the
# second grows for children visited rarely relative to their parent. **AlphaZero** replaces the
# rollout by a value network $v_\theta(s)$ and guides selection with a policy prior
# $P(s,a)$ from a policy network (**PUCT**):
# $$a = \arg\max_a\; Q(s,a) + c_\text{puct}\,P(s,a)\,\frac{\sqrt{N(s)}}{1 + N(s,a)}.$$
#
# ### Exercise 3: the UCT score
# Return the UCT score of a child with `value_sum` $W$ and `visits` $N(s,a)$ under a parent with
# `parent_visits` $N(s)$; an unvisited child scores `math.inf`. Your function drives the search
# in the experiment below.

# %%
def uct_score(value_sum: float, visits: int, parent_visits: int, c: float = 1.4) -> float:
    """UCT score of one child (a float); math.inf for a child that was never visited."""
    ### BEGIN SOLUTION
    if visits == 0:
        return math.inf
    return value_sum / visits + c * math.sqrt(math.log(parent_visits) / visits)
    ### END SOLUTION


uct_score = check("wider.uct_score", uct_score)

# %% [markdown]
# ### Experiment: MCTS plays tic-tac-toe
# `wider.play_game(x_sims, o_sims, rng, score=...)` plays one game; a side with `None`
# simulations plays uniformly random moves, otherwise it runs MCTS (UCT with $c = 1.4$, random
# rollouts, a win scored 1, a draw 0.5) with your `uct_score`. Win = 1 for X, who moves first.
# First, MCTS as X against a random O for growing budgets (100 games each), with random-vs-random
# as the baseline; then MCTS against itself. Tic-tac-toe is a draw under perfect play, so two
# strong players should mostly draw.

# %%
SIMS, N_GAMES = [5, 10, 25, 50, 100], 100
rng = np.random.default_rng(0)


def outcome_rates(results: list[int]) -> np.ndarray:
    """Fractions of (X wins, draws, O wins)."""
    r = np.array(results)
    return np.array([(r == 1).mean(), (r == 0).mean(), (r == -1).mean()])


baseline = outcome_rates([wider.play_game(None, None, rng) for _ in range(2000)])
vs_random = np.array([
    outcome_rates([wider.play_game(s, None, rng, score=uct_score) for _ in range(N_GAMES)])
    for s in tqdm(SIMS, desc="MCTS (X) vs random")])

MM_SIMS, MM_GAMES = [25, 100, 400], 20
vs_self = np.array([
    outcome_rates([wider.play_game(s, s, rng, score=uct_score) for _ in range(MM_GAMES)])
    for s in tqdm(MM_SIMS, desc="MCTS vs MCTS")])

print(f"random vs random ({2000} games): X wins {baseline[0]:.2f}, draws {baseline[1]:.2f}, "
      f"O wins {baseline[2]:.2f}")
print("MCTS (X) vs random O:  sims |  win  draw  loss")
for s, (w, d, l) in zip(SIMS, vs_random):
    print(f"{s:>28d} | {w:.2f}  {d:.2f}  {l:.2f}")
print("MCTS vs MCTS:          sims | X wins draw O wins")
for s, (w, d, l) in zip(MM_SIMS, vs_self):
    print(f"{s:>28d} | {w:.2f}   {d:.2f}  {l:.2f}")

win_100, loss_100 = vs_random[-1, 0], vs_random[-1, 2]
assert vs_random[0, 0] > baseline[0] + 0.1, "even 5 simulations beat random play"
assert win_100 >= 0.9 and loss_100 <= 0.02, "100 simulations: at least 90 % wins, almost no losses"
# more search helps (thresholds hold on seeds 0-5, not only on this one)
assert win_100 >= vs_random[0, 0] + 0.05 and vs_random[-1, 2] < vs_random[0, 2]
assert vs_self[-1, 1] >= 0.7 and vs_self[-1, 1] > vs_self[0, 1], "strong self-play mostly draws"

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for k, (label, color) in enumerate([("win", "C2"), ("draw", "C7"), ("loss", "C3")]):
    ax1.plot(SIMS, vs_random[:, k], marker="o", color=color, label=f"MCTS {label}")
    ax1.axhline(baseline[k], ls=":", color=color, alpha=0.7)
ax1.set_xscale("log")
ax1.set_xticks(SIMS, [str(s) for s in SIMS])
ax1.minorticks_off()
ax1.set_xlabel("MCTS simulations per move")
ax1.set_ylabel(f"fraction of {N_GAMES} games")
ax1.set_title("MCTS (X) vs random O (dotted: random vs random)")
ax1.legend(loc="center right")
bottom = np.zeros(len(MM_SIMS))
for k, (label, color) in enumerate([("X wins", "C2"), ("draw", "C7"), ("O wins", "C3")]):
    ax2.bar([str(s) for s in MM_SIMS], vs_self[:, k], bottom=bottom, color=color, label=label)
    bottom += vs_self[:, k]
ax2.set_xlabel("simulations per move (both sides)")
ax2.set_ylabel(f"fraction of {MM_GAMES} games")
ax2.set_title("MCTS vs MCTS")
ax2.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
plt.show()

# %% [markdown]
# Five simulations per move already beat random play clearly, 100 simulations almost never lose,
# and two 400-simulation players draw most games, as perfect players would. With a small budget
# a losing reply may never be examined, and each random rollout is a very noisy estimate of a
# position's value; AlphaZero's value network and policy prior make every simulation far more
# informative, which is why it needs far fewer simulations per move than its search space
# would suggest.
#
# **Self-play.** AlphaZero trains by playing against itself: the visit distribution of the search
# is a better policy than the raw network (search is a *policy-improvement operator*), so the
# policy network is trained towards the visit counts and the value network towards the game
# outcome, and the improved network makes the next search stronger. Forms of self-play:
# * *adversarial*: against the current or past versions of oneself (AlphaZero; AlphaStar's
#   league adds exploiters, and sampling past opponents prevents forgetting and cycling);
# * *debate*: two copies argue opposite sides of a question for a judge; the game is zero-sum,
#   used to make the truth easier to verify;
# * *iterative generate, filter, train* (expert iteration, STaR, ReST): sample many solutions,
#   keep those a verifier or reward accepts, fine-tune on them, repeat;
# * *self-rewarding language models*: one model both writes responses and judges them
#   (LLM-as-a-judge), then trains on the preference pairs it made (e.g. with DPO), iterated.
#
# **Search in LLM systems takes other forms too.** The canonical MCTS systems are AlphaGo,
# AlphaZero and MuZero. Large-scale code and math systems often search differently: AlphaCode 2
# samples very many programs, filters them by running tests, clusters them and ranks them with
# a scoring model; AlphaGeometry pairs a language model that proposes auxiliary constructions
# with a symbolic deduction engine, searched with beam search.

# %% [markdown]
# ## 9. RL in recommender systems
#
# Supervised recommenders predict the next click; RL views a user session as an MDP: the state is
# the user's history and context, the action is what to show, the reward is engagement, and the
# objective is **long-term value** (retention, lifetime value), not the immediate click. A
# clickbait item can win the click and lose the user; only a multi-step objective sees that.
# The difficulties:
# * **Slate actions**: showing $k$ of $N$ items in order is one of $N!/(N-k)!$ actions
#   (about $10^{30}$ for $k = 10$ of $N = 1000$). **SlateQ** decomposes the slate's value into
#   per-item long-term values under a user-choice model (the user picks at most one item), so
#   the slate can be optimised item by item.
# * **Delayed, noisy reward** (a user returns days later) and **partial observability**.
# * **Off-policy learning and evaluation from logs** collected by the old recommender: importance
#   weighting (e.g. YouTube's REINFORCE recommender with a top-$k$ off-policy correction) and
#   off-policy evaluation before any A/B test.
# * **Exploration costs real users' experience**, so it is done cautiously (small traffic slices,
#   bandit-style exploration, conservative updates).

# %% [markdown]
# ## 10. Summary
#
# | family | on/off-policy | action space | key idea | when to use |
# |---|---|---|---|---|
# | DQN and descendants | off (replay) | discrete | bootstrapped $\max_a Q$ with target net and replay | discrete actions, samples costly (Atari) |
# | PPO (A2C, A3C before it) | on | discrete or continuous, token sequences | clipped policy-gradient steps on fresh batches | cheap parallel simulation, stability, LLM fine-tuning |
# | DDPG / TD3 | off (replay) | continuous | deterministic actor climbs a critic; twin critics take the min, smoothed targets, delayed actor | continuous control, sample efficiency |
# | SAC | off (replay) | continuous (discrete variants exist) | maximum entropy: reward + $\alpha\mathcal H$, soft values, $\pi\propto\exp(Q/\alpha)$, auto-$\alpha$ | the default for continuous control |
# | MARL (IQL/IPPO, MAPPO, QMIX) | either | joint, $\lvert A\rvert^N$ | CTDE: centralised critic or monotonic mixing, decentralised actors | several learning agents (teams, games, traffic) |
# | Offline RL (BC, CQL, IQL, DT) | fixed dataset | either | pessimism or staying on the data support against extrapolation error | logs only, interaction expensive or unsafe |
# | Constrained MDP (PPO-Lagrangian) | either | either | Lagrange multiplier prices the cost, dual ascent | hard limits on cost or risk (safety, Safe RLHF) |
# | MCTS / AlphaZero | planning with a model; self-play | discrete | UCT/PUCT tree search; search improves the policy | known simulator or rules, board games, planning |
# | RL recommenders (SlateQ) | off (logged data) | combinatorial slates | long-term value with a user-choice model | retention / LTV objectives |

# %% [markdown]
# ## Common misconceptions
#
# * *"AlphaCode 2 and AlphaGeometry are MCTS + LLM systems."* Neither is a standard MCTS
#   example: AlphaCode 2 relies on massive sampling, test filtering, clustering and a scoring
#   model; AlphaGeometry pairs a language model with a symbolic deduction engine searched with
#   beam search. AlphaGo, AlphaZero and MuZero are the canonical MCTS systems (section 8).
#   <!-- E-32 -->
#
# Two related claims are corrected elsewhere: "value-based methods are more stable" in
# notebook 04, and AlphaGo as an example of off-policy learning in notebook 03.
#
# ## What to remember
#
# * SAC maximises reward plus $\alpha$ times the policy entropy; the soft-optimal policy is
#   $\mathrm{softmax}(Q/\alpha)$, and $\alpha$ is usually tuned towards a target entropy.
# * TD3 = DDPG + clipped double-Q (min of two target critics) + target policy smoothing +
#   delayed actor updates; the min trades a compounding overestimate for a mild underestimate.
# * Choice: SAC/TD3 for costly continuous control, PPO for cheap parallel simulation and LLMs,
#   DQN descendants for discrete actions when samples are costly.
# * Multi-agent RL: non-stationary from each agent's view, joint actions grow as $|A|^N$;
#   centralised training with decentralised execution is the common compromise.
# * Offline RL: $\max_{a'}Q$ over actions absent from the data is extrapolation; CQL is
#   pessimistic, IQL never queries unseen actions, behaviour cloning is a strong baseline.
# * Constrained MDPs: a Lagrange multiplier prices the cost and is learned by dual ascent.
# * Sim-to-real: domain randomisation, system identification, distillation, curricula.
# * MCTS: selection by UCT/PUCT, expansion, rollout or value network, backup; play the most
#   visited move; in self-play the search is a policy-improvement operator.
# * RL recommenders optimise long-term value; slates, delayed rewards and off-policy logs are
#   the hard parts.
#
# ## Further reading
#
# * Haarnoja et al. (2018), "Soft actor-critic: Off-policy maximum entropy deep reinforcement
#   learning with a stochastic actor": the maximum-entropy objective and soft values of
#   section 1.
# * Fujimoto, van Hoof & Meger (2018), "Addressing function approximation error in
#   actor-critic methods": TD3 and the overestimation analysis behind its three fixes.
# * Silver et al. (2016), "Mastering the game of Go with deep neural networks and tree search"
#   and Silver et al. (2017), "Mastering the game of Go without human knowledge": MCTS with
#   policy and value networks, and self-play without human data.
# * Levine, Kumar, Tucker & Fu (2020), "Offline reinforcement learning: Tutorial, review, and
#   perspectives on open problems": distribution shift and the families of offline methods.
# * Achiam, Held, Tamar & Abbeel (2017), "Constrained policy optimization": trust-region
#   updates that keep a cost constraint, the safe-RL counterpart of section 6.

# %% [markdown]
# ## Interview questions
#
# 1. What does SAC maximise, why does it explore, and what happens as $\alpha\to 0$ and
#    $\alpha\to\infty$?
#
# <details><summary>Answer</summary>
#
# Expected return plus $\alpha$ times the policy entropy at every visited state. The soft-optimal
# policy is $\mathrm{softmax}(Q/\alpha)$, so actions with similar Q keep similar probability and
# the policy only sharpens where one action is clearly better: exploration is part of the
# objective. As $\alpha\to 0$ it becomes greedy (ordinary RL); as $\alpha\to\infty$ uniform
# (reward ignored). In practice $\alpha$ is tuned automatically towards a target entropy.
# </details>
#
# 2. Name TD3's three tricks and the failure each one fixes.
#
# <details><summary>Answer</summary>
#
# Clipped double-Q (min of two target critics) against overestimation that the actor exploits
# and bootstrapping compounds; target policy smoothing (clipped noise on the target action)
# against the actor exploiting narrow wrong peaks of Q; delayed actor and target updates (every
# $d$ critic steps) against high-variance actor updates on a critic that has not settled. In the
# toy above a single critic's target was biased by about +1.5, the clipped one slightly negative.
# </details>
#
# 3. SAC or PPO? And is A3C still a good choice?
#
# <details><summary>Answer</summary>
#
# SAC for continuous control when environment steps are expensive (off-policy replay makes it far
# more sample-efficient); PPO for discrete or mixed actions, massively parallel cheap simulation,
# and LLM fine-tuning, where its stability and simplicity matter more than sample reuse. A3C is
# largely superseded: synchronous A2C/PPO use GPUs better and PPO reuses each batch; distributed
# successors like IMPALA correct policy lag with V-trace.
# </details>
#
# 4. Why is multi-agent RL much harder than single-agent RL?
#
# <details><summary>Answer</summary>
#
# The other agents learn, so from each agent's view the environment is non-stationary (no longer
# an MDP, replay goes stale); credit for a shared reward must be split between agents; the joint
# action space grows as $|A|^N$ (5 actions, 10 agents: about 9.8 million joint actions); agents
# usually see only partial observations. CTDE is the common compromise: centralised critics in
# training, decentralised actors at execution.
# </details>
#
# 5. What does QMIX's monotonicity constraint buy, and what does it cost?
#
# <details><summary>Answer</summary>
#
# With $\partial Q_\text{tot}/\partial Q_i \ge 0$, each agent maximising its own $Q_i$ also
# maximises $Q_\text{tot}$, so greedy decentralised execution is consistent with the centralised
# value and the $\arg\max$ costs $N|A|$ instead of $|A|^N$. It cannot represent team values where
# one agent's best action depends on what the others do in a non-monotonic way (coordination
# games with miscoordination penalties).
# </details>
#
# 6. Why does plain DQN fail on a fixed offline dataset, and how do CQL and IQL avoid it?
#
# <details><summary>Answer</summary>
#
# Its target's $\max_{a'}Q(s', a')$ queries actions absent from the data, whose Q-values are
# arbitrary extrapolations; the max selects the over-estimated ones and no new data ever corrects
# them, so the policy heads for unsupported actions (extrapolation error, distribution shift).
# CQL adds a penalty that lowers Q on the policy's actions (log-sum-exp) and raises it on dataset
# actions, a pessimistic lower bound. IQL never queries unseen actions: it fits $V$ as an upper
# expectile of Q over dataset actions and extracts the policy by advantage-weighted regression.
# With expert data, plain behaviour cloning is a strong baseline.
# </details>
#
# 7. In a constrained MDP, why learn the Lagrange multiplier instead of using a fixed penalty?
#
# <details><summary>Answer</summary>
#
# The right penalty is unknown and depends on the policy; a fixed one either over-constrains or
# under-constrains. Dual ascent $\lambda\leftarrow\max(0, \lambda + \eta(J_c - d))$ raises the price
# while the cost is above the limit and lowers it (to 0) once there is slack, so it finds the
# price at which the constraint just binds (in the demo: cost 0.30 at $\lambda\approx 1.085$).
# Its weaknesses: the constraint holds only on average and after convergence, and $\lambda$ can
# oscillate (PID-Lagrangian methods damp that).
# </details>
#
# 8. How do you get a policy trained in simulation to work on a real robot?
#
# <details><summary>Answer</summary>
#
# Close or straddle the reality gap: domain randomisation of physics and visuals so that reality
# is one more sample, system identification to match the simulator to the hardware, privileged
# teacher to sensor-only student distillation, fine-tuning or residual policies on a little real
# data, and curricula (possibly automatic) that widen task difficulty and randomisation as the
# agent improves.
# </details>
#
# 9. Walk through one MCTS simulation. How does AlphaZero change it, and why is the final move
#    the most visited one?
#
# <details><summary>Answer</summary>
#
# Selection down the tree by UCT (mean value + $c\sqrt{\ln N(s)/N(s,a)}$), expansion of one
# untried move, a rollout to the end, and backup of the outcome along the path (from each mover's
# point of view). AlphaZero drops the rollout for a value network and adds a policy prior in
# PUCT, $Q + c\,P\sqrt{N(s)}/(1+N(s,a))$. Visit counts are the robust choice: a rarely visited
# child can have a high mean by luck. In self-play the network is trained towards the visit
# distribution and the game outcome.
# </details>
#
# 10. Is AlphaCode 2 an MCTS system? Is AlphaGeometry?
#
# <details><summary>Answer</summary>
#
# No to both. AlphaCode 2 is large-scale sampling, test filtering, clustering and a scoring
# model; AlphaGeometry is a language model plus a symbolic deduction engine with beam search.
# The canonical MCTS systems are AlphaGo, AlphaZero and MuZero.
# </details>
#
# 11. Why would a recommender use RL instead of a click predictor, and what makes it hard?
#
# <details><summary>Answer</summary>
#
# To optimise long-term value (retention, lifetime value) that immediate clicks miss. Hard parts:
# combinatorial slate actions (SlateQ decomposes them under a user-choice model), delayed and
# noisy rewards, learning and evaluating off-policy from logs of the old system (importance
# weighting, off-policy evaluation), and exploration that costs real users' experience.
# </details>

# %%
sims_row = ", ".join(f"{s}:{w:.2f}" for s, w in zip(SIMS, vs_random[:, 0]))
rlcourse.results.record(
    "08_wider_map",
    title="The wider map",
    topics="SAC, TD3/DDPG, algorithm choice, MARL, offline RL, constrained MDPs, sim-to-real, "
           "MCTS and self-play, RL recommenders",
    headline=(f"MCTS (X) vs random: win rate by simulations {sims_row}, loss {loss_100:.2f} at "
              f"100; MCTS vs MCTS at {MM_SIMS[-1]} sims: {vs_self[-1, 1]:.2f} draws; "
              f"TD3 min removes a +{bias_single:.2f} target bias ({bias_clipped:+.2f})"),
    metrics={**{f"win_rate_{s}_sims": w for s, w in zip(SIMS, vs_random[:, 0])},
             "loss_rate_100_sims": loss_100, "random_x_win_rate": baseline[0],
             "self_play_draw_rate_400": vs_self[-1, 1], "td3_bias_single": bias_single,
             "td3_bias_clipped": bias_clipped, "lagrange_lambda": lams[-1],
             "lagrange_cost": costs[-1]},
)
print(f"total time {session.elapsed():.1f} s")
