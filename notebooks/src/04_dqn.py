# %% [markdown]
# # 04 · Deep Q-networks (DQN)
#
# Tabular Q-learning (notebook 03) keeps one number per state-action pair. CartPole's state is
# four real numbers, so there is no table to fill: we need a function $Q(s, a; \theta)$ that
# *generalises* from the states it has seen to the ones it has not. DQN is Q-learning with a
# neural network, plus two tricks that keep it from falling apart: a replay buffer and a
# target network.
#
# **Learning goals.** After this notebook you can
# 1. write the DQN loss and its target $y = r + \gamma(1-\text{terminated})\max_{a'}
#    Q(s', a'; \theta^-)$, and explain why a time-limit *truncation* must still bootstrap;
# 2. implement a linear $\varepsilon$ schedule, the TD target and the loss (squared or Huber),
#    then build the agent in stages: a ring replay buffer, the loss on a minibatch, and one
#    full update with the target-network copy;
# 3. debug a DQN with probe environments (which probe catches which bug), train your own DQN
#    on CartPole-v1 until it is solved, and read its diagnostics (max-Q against the return's
#    scale, TD error, gradient norm) and its learning curves over seeds;
# 4. measure what really happens without replay and without a target network (and why
#    value-based deep RL is *not* the "stable" family: the deadly triad);
# 5. show with a toy why $\max$ over noisy estimates overestimates, and fix it with Double DQN;
# 6. explain the dueling head, prioritized replay and what Rainbow combines.

# %%
import time

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch

import rlcourse
import rlcourse.plotting
import rlcourse.results
from rlcourse import deeprl, dqn
from rlcourse.exercises import check, show_source

session = rlcourse.setup(seed=0)
rng = np.random.default_rng(0)
cpu_start = time.process_time()

# %% [markdown]
# ## 1. From a Q-table to a Q-network
#
# Q-learning moves $Q(s,a)$ towards the target $r + \gamma \max_{a'} Q(s', a')$. With a
# network we cannot "set" one entry; instead we take a gradient step on a regression loss over
# a minibatch $\mathcal B$ of transitions $(s, a, r, s', \text{terminated})$:
# $$\mathcal L(\theta) = \frac{1}{|\mathcal B|}\sum_{(s,a,r,s')\in\mathcal B}
#   \ell\big(y - Q(s, a; \theta)\big), \qquad
#   y = r + \gamma\,(1 - \text{terminated})\,\max_{a'} Q(s', a'; \theta^-),$$
# where $\ell$ is the squared error (or the Huber loss, section 5) and $\theta^-$ are the
# weights of a *target network*, a lagged copy of $\theta$ (section 6). The target $y$ is
# treated as a fixed label: we do not differentiate through it. That makes DQN a
# **semi-gradient** method, and it is the reason it is not plain gradient descent on any fixed
# objective.
#
# The network takes the observation and outputs one Q-value per action, so a single forward
# pass gives $\max_{a'}$ and $\arg\max_{a'}$.

# %%
q_net = dqn.QNetwork(obs_dim=4, n_actions=2, hidden=(128, 128))
n_params = sum(p.numel() for p in q_net.parameters())
obs_example = torch.tensor([[0.0, 0.1, 0.02, -0.1], [0.5, -0.3, -0.1, 0.4]])
print(q_net)
print(f"{n_params:,} parameters; Q-values of two CartPole states:\n"
      f"{q_net(obs_example).detach().numpy().round(3)}")

# %% [markdown]
# **Three ingredients that do not mix well.** Sutton and Barto call the combination of
# (1) function approximation, (2) bootstrapping (targets built from the current estimates) and
# (3) off-policy learning (the data come from a different, exploratory policy) the **deadly
# triad**: with all three, the updates can diverge even on tiny problems (notebook 16 proves
# it on Baird's seven-state counterexample, where linear TD's weights grow without bound), and
# DQN has all three. Replay and the target network do not remove the triad; they make it less likely to
# bite. Tabular Q-learning converges, but Q-learning with a neural network has no convergence
# guarantee and is sensitive to its hyperparameters (section 8 shows the Q-values running
# away when the target network is removed). Among deep RL methods it is one of the more
# fragile families; what it buys is sample efficiency, because replay reuses every transition.

# %% [markdown]
# ## 2. Exploration: a linear $\varepsilon$ schedule
#
# DQN acts $\varepsilon$-greedily: a random action with probability $\varepsilon$, otherwise
# $\arg\max_a Q(s, a; \theta)$. Early on $Q$ is meaningless, so $\varepsilon$ starts at 1 and
# decays linearly to a small floor:
# $$\varepsilon(t) = \varepsilon_\text{start} + \min\!\Big(\frac{t}{T_\text{decay}}, 1\Big)
#   \big(\varepsilon_\text{end} - \varepsilon_\text{start}\big),$$
# with $t$ counted in environment steps (summed over the parallel environments).
#
# ### Exercise 1: the epsilon schedule
# Return $\varepsilon(t)$ as a float: exactly `start` at step 0, exactly `end` at step
# `decay_steps`, and `end` for every later step.

# %%
def epsilon_schedule(step, start=1.0, end=0.01, decay_steps=5_000):
    """Linearly decayed epsilon at env step `step` (a float)."""
    ### BEGIN SOLUTION
    frac = min(step / decay_steps, 1.0)
    return float(start + frac * (end - start))
    ### END SOLUTION


epsilon_schedule = check("dqn.epsilon_schedule", epsilon_schedule)

# %%
cfg = dqn.Config()
steps_axis = np.arange(0, 3 * cfg.eps_decay_steps + 1, 100)
eps_curve = [epsilon_schedule(int(s), cfg.eps_start, cfg.eps_end, cfg.eps_decay_steps)
             for s in steps_axis]
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(steps_axis, eps_curve)
ax.set_xlabel("env step")
ax.set_ylabel(r"$\varepsilon$")
ax.set_title("Course default: linear decay, then constant")
plt.show()
print(f"epsilon: {eps_curve[0]:.2f} at step 0, "
      f"{epsilon_schedule(cfg.eps_decay_steps // 2, cfg.eps_start, cfg.eps_end, cfg.eps_decay_steps):.3f}"
      f" at step {cfg.eps_decay_steps // 2:,}, {eps_curve[-1]:.2f} from step {cfg.eps_decay_steps:,} on")

# %% [markdown]
# ## 3. The target: terminated vs truncated
#
# An episode can end in two different ways, and gymnasium reports them separately:
#
# * **terminated**: the MDP reached a terminal state (the pole fell). Nothing follows, the
#   value of that state is 0 by definition, so $y = r$.
# * **truncated**: the episode was *cut* by a time limit (CartPole-v1 stops after 500 steps).
#   The pole is still up and the task would go on; the next state has a perfectly good value,
#   so we still **bootstrap**: $y = r + \gamma \max_{a'} Q(s', a')$.
#
# Treating a truncation like a termination teaches the network that a healthy state at step
# 500 is worth 1, while the same state at step 400 is worth about 100. The observation does not
# contain the time, so the network sees contradictory labels for identical inputs. With
# gymnasium's next-step autoreset, the observation returned on the last step is the true final
# observation $s'$, so bootstrapping from it is correct (the reset observation only arrives on
# the *next* step, which we never store: section 4).
#
# ### Exercise 2: the TD target
# `rewards` [B], `next_q` [B, A] (the target network's Q-values of $s'$), `terminated` and
# `truncated` [B] boolean tensors, a float `gamma`. Return the targets $y$ [B]. Which of the
# two flags removes the bootstrap is for you to decide from the text above.

# %%
def td_target(rewards, next_q, terminated, truncated, gamma):
    """DQN targets [B] from rewards [B], target-net Q-values of s' [B, A], flags [B], gamma."""
    ### BEGIN SOLUTION
    alive = 1.0 - terminated.float()
    return rewards + gamma * alive * next_q.max(dim=1).values
    ### END SOLUTION


td_target = check("dqn.td_target", td_target)

# %% [markdown]
# What the two choices teach at the end of a perfect CartPole episode, when a trained network
# values every upright state at about $1/(1-\gamma) = 100$:

# %%
r_last = torch.tensor([1.0, 1.0])
next_q_last = torch.tensor([[99.0, 100.0], [99.0, 100.0]])
term_last = torch.tensor([False, True])  # row 0: cut at 500 steps; row 1: wrongly "terminal"
trunc_last = torch.tensor([True, True])
y_last = td_target(r_last, next_q_last, term_last, trunc_last, 0.99)
print(f"target at a truncation, bootstrapped: {y_last[0]:.1f}; "
      f"if it were treated as terminal: {y_last[1]:.1f}")
assert y_last[0] > 90 and y_last[1] == 1.0

# %% [markdown]
# ## 4. The replay buffer
#
# Consecutive transitions of one episode are almost identical states, so a minibatch of the
# last 64 steps is a very correlated sample, and gradient steps on it chase whatever the agent
# is doing right now. **Experience replay** stores the last $N$ transitions and trains on
# minibatches drawn uniformly from all of them: closer to i.i.d. data, every transition is
# reused many times, and since Q-learning is off-policy it does not matter that old
# transitions came from older policies.
#
# From here on you build the agent itself, in three stages, each checked by its behaviour:
# the buffer (this section), the loss on one minibatch (section 5) and one full update with
# the target-network copy (section 6). Section 6b then runs *your* DQN on five tiny problems
# with known answers, and section 7 trains it on CartPole.
#
# ### Exercise 3: a ring replay buffer
# The buffer preallocates one numpy array per field (done for you in `__init__`). Write:
#
# * `add(obs, actions, rewards, next_obs, terminated, truncated, valid=None)`: one *vector*
#   step, `obs` and `next_obs` [N, obs_dim], the others [N]; `valid` [N] bool, or `None` for
#   all rows. Rows whose `valid` is False are skipped: they are the autoreset steps of
#   `deeprl.StepMask` (the step after an episode ends, whose action is ignored and whose "next
#   observation" is the start of a new episode). The kept rows, in order, go one by one into
#   slot `self.pos`, which then moves on by one and wraps to 0 after the last slot;
#   `self.size` counts the stored transitions up to `capacity`. So the $i$-th transition ever
#   kept sits in slot $i \bmod$ `capacity`, and a full buffer overwrites its oldest row.
#   Store `terminated` and `truncated` separately: section 3 needs both.
# * `sample(batch_size, rng)`: pick the slots with exactly one call
#   `rng.integers(0, len(self), size=batch_size)` (uniform, with replacement, filled slots
#   only) and return a dict of torch tensors with keys `obs`, `next_obs` [B, obs_dim] float32,
#   `actions` [B] int64, `rewards` [B] float32, `terminated`, `truncated` [B] bool.
#
# The check fills your buffer and the course's with the same vector steps, wraps them around
# twice, and compares `len` and samples drawn with the same generator seed.

# %%
class ReplayBuffer:
    """Ring buffer of transitions; add(...) one vector step, sample(batch_size, rng) -> dict."""

    def __init__(self, capacity, obs_dim):
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=bool)
        self.truncated = np.zeros(capacity, dtype=bool)
        self.pos = 0  # the slot the next transition goes to
        self.size = 0  # how many slots hold a transition

    def __len__(self):
        return self.size

    def add(self, obs, actions, rewards, next_obs, terminated, truncated, valid=None):
        """Store the valid rows of one vector step (arrays with N rows)."""
        ### BEGIN SOLUTION
        keep = np.ones(len(obs), dtype=bool) if valid is None else np.asarray(valid, bool)
        n_new = int(keep.sum())
        slots = (self.pos + np.arange(n_new)) % self.capacity
        self.obs[slots] = np.asarray(obs)[keep]
        self.next_obs[slots] = np.asarray(next_obs)[keep]
        self.actions[slots] = np.asarray(actions)[keep]
        self.rewards[slots] = np.asarray(rewards)[keep]
        self.terminated[slots] = np.asarray(terminated)[keep]
        self.truncated[slots] = np.asarray(truncated)[keep]
        self.pos = (self.pos + n_new) % self.capacity
        self.size = min(self.size + n_new, self.capacity)
        ### END SOLUTION

    def sample(self, batch_size, rng):
        """A dict of tensors for batch_size uniformly drawn stored transitions."""
        ### BEGIN SOLUTION
        slots = rng.integers(0, len(self), size=batch_size)
        fields = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")
        return {name: torch.from_numpy(getattr(self, name)[slots]) for name in fields}
        ### END SOLUTION


ReplayBuffer = check("dqn.ReplayBuffer", ReplayBuffer)

# %% [markdown]
# Watch the ring wrap around: a buffer of 5 slots, 2 environments, so each vector step adds two
# transitions (labelled 1, 2, ... by their reward). The course's version, `dqn.ReplayBuffer`,
# also validates its inputs and refuses to sample more transitions than it holds:

# %%
demo = ReplayBuffer(capacity=5, obs_dim=1)
for t in range(3):
    label = np.array([2.0 * t + 1, 2.0 * t + 2])  # 2 envs per step; transitions 1, 2, ..., 6
    o = label[:, None].astype(np.float32)
    demo.add(o, np.zeros(2, int), label, o, np.zeros(2, bool), np.zeros(2, bool))
    print(f"after vector step {t}: slots hold transitions {demo.rewards.astype(int).tolist()} "
          f"(0 = empty), pos = {demo.pos}, size = {len(demo)}")
assert demo.rewards.tolist() == [6.0, 2.0, 3.0, 4.0, 5.0]  # 1, the oldest, was overwritten
print(show_source(dqn.ReplayBuffer.sample))

# %% [markdown]
# How correlated is a minibatch? We collect 5,000 steps of CartPole with a random policy into
# your buffer and compare the last 64 transitions of a single environment (slots 5,000 - 64 on:
# the buffer has not wrapped yet) with 64 transitions drawn by `sample`: the lag-1 correlation
# of the pole angle between neighbouring entries of the batch.

# %%
envs = deeprl.make_vec_env("CartPole-v1", 1, seed=0)
obs, _ = envs.reset(seed=0)
buf, mask = ReplayBuffer(10_000, 4), deeprl.StepMask(1)
for _ in range(5_000):
    a = rng.integers(0, 2, 1)
    nxt, r, te, tr, _ = envs.step(a)
    valid = mask.step(te, tr)
    buf.add(obs, a, r, nxt, te, tr, valid)
    obs = nxt
envs.close()


def lag1_corr(x):
    x = np.asarray(x)
    return float(np.corrcoef(x[:-1], x[1:])[0, 1])


seq_corr = lag1_corr(buf.obs[len(buf) - 64:len(buf), 2])
rand_corr = np.mean([lag1_corr(buf.sample(64, rng)["obs"][:, 2]) for _ in range(200)])
print(f"{len(buf):,} transitions stored (autoreset steps left out: "
      f"{5_000 - len(buf)}), all rewards = 1: {bool(np.all(buf.rewards[:len(buf)] == 1))}")
print(f"lag-1 correlation of the pole angle: last 64 steps {seq_corr:.2f}, "
      f"uniform replay minibatch {rand_corr:.2f}")
assert seq_corr > 0.8 and abs(rand_corr) < 0.1

# %% [markdown]
# ## 5. The loss: squared error or Huber
#
# With the TD error $e = Q(s,a;\theta) - y$ the plain choice is $\ell(e) = \tfrac12 e^2$,
# whose gradient is $e$ itself. The original DQN clipped that gradient to $[-1, 1]$, which is
# the gradient of the **Huber loss** ($\delta = 1$):
# $$\ell_\delta(e) = \begin{cases} \tfrac12 e^2 & |e| \le \delta \\
#   \delta\,(|e| - \tfrac12\delta) & \text{otherwise,}\end{cases}
#   \qquad \ell_\delta'(e) = \operatorname{clip}(e, -\delta, \delta).$$
# Huber is quadratic near 0 but linear in the tails, so one huge error (a target that just
# jumped, a large reward) cannot produce a huge gradient. It is the safer default when reward
# scales are unknown (Atari). CartPole's rewards are all 1 and its values stay below 100, so
# the course default is the squared error, `huber=False` (`dqn.train(..., huber=True)` trains
# with Huber; section 7 says how to compare the two). Either way, only the Q-value of the
# action actually taken enters the loss: the other outputs get no gradient from this
# transition.
#
# ### Exercise 4: the DQN loss
# `q_values` [B, A] (the online network's output, with gradients), `actions` [B] (int64),
# `targets` [B], and a flag `huber`. Return the batch mean of $\tfrac12 e^2$ (`huber=False`)
# or of the Huber loss with $\delta = 1$ (`huber=True`) between $Q(s_i, a_i)$ and the targets,
# as a scalar torch tensor. The target is a label: no gradient may flow into it.

# %%
def dqn_loss(q_values, actions, targets, huber):
    """Mean 0.5 * e^2 (or Huber) with e = Q(s, a) - targets; a scalar tensor."""
    ### BEGIN SOLUTION
    q_sa = q_values.gather(1, actions.long().unsqueeze(1)).squeeze(1)
    err = q_sa - targets.detach()
    if not huber:
        return 0.5 * (err ** 2).mean()
    quadratic = err.abs() <= 1.0
    return torch.where(quadratic, 0.5 * err ** 2, err.abs() - 0.5).mean()
    ### END SOLUTION


dqn_loss = check("dqn.dqn_loss", dqn_loss)

# %%
e = torch.linspace(-4, 4, 401)
curves_loss = {}
for huber in (False, True):
    q_in = e[:, None].clone().requires_grad_(True)  # one transition per error value
    per_sample = torch.stack([dqn_loss(q_in[i:i + 1], torch.zeros(1, dtype=torch.long),
                                       torch.zeros(1), huber) for i in range(len(e))])
    grad = torch.autograd.grad(per_sample.sum(), q_in)[0][:, 0]
    curves_loss[huber] = (per_sample.detach(), grad)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for huber, label in [(False, r"squared $\frac{1}{2}e^2$"), (True, "Huber")]:
    axes[0].plot(e, curves_loss[huber][0], label=label)
    axes[1].plot(e, curves_loss[huber][1], label=label)
axes[0].set_ylim(0, 8)
for ax, yl in zip(axes, ["loss", "d loss / d Q(s,a)"]):
    ax.set_xlabel(r"TD error $e = Q(s,a) - y$")
    ax.set_ylabel(yl)
    ax.legend()
plt.show()
assert torch.allclose(curves_loss[True][1], e.clamp(-1, 1), atol=1e-6)
assert torch.allclose(curves_loss[False][1], e, atol=1e-6)

# %% [markdown]
# ### Exercise 5: the loss on a minibatch
# Put sections 3 and 5 together on a batch from your buffer. `q_net` and `target_net` map
# observations [B, obs_dim] to Q-values [B, A]; `batch` is what `sample` returns; `gamma` a
# float, `huber` a flag. Return a tuple `(loss, q_values, targets)`:
#
# * `q_values` [B, A]: the online net on `batch["obs"]`, with gradients;
# * `targets` [B]: your `td_target` from the **target** net's values of `batch["next_obs"]`,
#   computed inside `torch.no_grad()` (labels, not something to differentiate);
# * `loss`: your `dqn_loss` of those Q-values at the actions taken against the targets.
#
# The check builds two different small networks and a batch where some rows are terminated
# and some only truncated, then compares the targets, Q-values, loss and the gradients your
# loss sends into the online net (none may reach the target net).

# %%
def batch_loss(q_net, target_net, batch, gamma, huber):
    """(scalar loss, Q-values [B, A], targets [B]) for a minibatch dict of tensors."""
    ### BEGIN SOLUTION
    q_values = q_net(batch["obs"])
    with torch.no_grad():
        next_q = target_net(batch["next_obs"])
        targets = td_target(batch["rewards"], next_q, batch["terminated"], batch["truncated"],
                            gamma)
    return dqn_loss(q_values, batch["actions"], targets, huber), q_values, targets
    ### END SOLUTION


batch_loss = check("dqn.batch_loss", batch_loss)

# %%
print(show_source(dqn.batch_loss))

# %% [markdown]
# ## 6. The target network
#
# If the target used the online weights $\theta$, every gradient step would also move the
# target it is chasing. The **target network** $\theta^-$ is a copy that is held fixed for a
# while. Two common update rules:
#
# * **hard update** every $K$ steps: $\theta^- \leftarrow \theta$;
# * **Polyak averaging** after every step: $\theta^- \leftarrow \tau\theta + (1-\tau)\theta^-$
#   with a small $\tau$ (e.g. 0.005).
#
# The course uses the **hard update**, every `target_update` env steps. Hard updates also make
# the role of $K$ easy to see: information travels back one step of the Bellman backup per
# copy, so a Q-value that must see $h$ steps ahead needs roughly $h$ copies.

# %%
print("Course defaults (dqn.Config):")
for k, v in vars(cfg).items():
    print(f"  {k:18s} {v}")
updates_per_copy = cfg.target_update // cfg.num_envs * cfg.grad_steps
print(f"-> {updates_per_copy} gradient steps between two target copies")

# %% [markdown]
# ### Exercise 6: one full update
# The learning part of one training iteration. The training loop has just stepped the
# environments, moving its env-step counter from `steps_before` to `steps`. Then:
#
# 1. `cfg.grad_steps` times: draw a minibatch with `buffer.sample(cfg.batch_size, rng)`,
#    compute `loss, q, y = batch_loss(q_net, target_net, batch, cfg.gamma, cfg.huber)`, clear
#    the old gradients with `optimizer.zero_grad()`, backpropagate, clip the gradient norm with
#    `torch.nn.utils.clip_grad_norm_(q_net.parameters(), cfg.max_grad_norm)` (it returns the
#    norm *before* clipping), and take `optimizer.step()`;
# 2. after those steps, if a multiple of `cfg.target_update` lies in (`steps_before`,
#    `steps`], copy the online weights into the target net:
#    `target_net.load_state_dict(q_net.state_dict())`.
#
# Return a dict of four floats, each the mean over the gradient steps, for the training
# diagnostics of section 7: `loss`, `q_mean` (batch mean of $\max_a Q(s,a)$), `td_error`
# (batch mean of $|Q(s,a) - y|$) and `grad_norm`. The check runs your function and the
# course's on copies of the same networks, Adam state, buffer and generator for five
# consecutive calls that cross two copy points, and compares the weights after each call.

# %%
def update_step(q_net, target_net, optimizer, buffer, rng, cfg, steps_before, steps):
    """grad_steps minibatch updates of q_net, then the timed target copy; returns diagnostics."""
    ### BEGIN SOLUTION
    stats = {"loss": 0.0, "q_mean": 0.0, "td_error": 0.0, "grad_norm": 0.0}
    for _ in range(cfg.grad_steps):
        batch = buffer.sample(cfg.batch_size, rng)
        loss, q, y = batch_loss(q_net, target_net, batch, cfg.gamma, cfg.huber)
        optimizer.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(q_net.parameters(), cfg.max_grad_norm)
        optimizer.step()
        q = q.detach()
        q_taken = q.gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
        stats["loss"] += loss.item()
        stats["q_mean"] += q.max(dim=1).values.mean().item()
        stats["td_error"] += (q_taken - y).abs().mean().item()
        stats["grad_norm"] += norm.item()
    if steps // cfg.target_update > steps_before // cfg.target_update:
        target_net.load_state_dict(q_net.state_dict())
    return {name: total / cfg.grad_steps for name, total in stats.items()}
    ### END SOLUTION


update_step = check("dqn.update_step", update_step)

# %% [markdown]
# The course's version is the same function, plus the no-replay ablation and a device move.
# `dqn.train(..., update_fn=update_step, buffer_cls=ReplayBuffer)` runs the whole training
# loop with your two pieces; left at their defaults it runs exactly these.

# %%
print(show_source(dqn.update_step))

# %% [markdown]
# ## 6b. Debugging with probe environments
#
# A DQN that does not learn CartPole could have a hundred causes, and a CartPole run takes
# half a minute. **Probe environments** (`rlcourse.probes`) are five tiny tasks whose exact
# Q-values we know; each adds one thing the learner must get right, so the first probe that
# fails points at the bug:
#
# | # | probe | what it tests | true Q |
# |---|---|---|---|
# | 1 | `constant` | one step, reward +1: the loss and the optimiser | $Q = 1$ |
# | 2 | `observation` | reward = observation $\pm1$: the net reads its input | $Q(s) = s$ |
# | 3 | `two_step` | reward 0 then +1: discounting, bootstrapping, the terminal mask | $Q(0) = \gamma$, $Q(1) = 1$ |
# | 4 | `action` | action 0 earns +1, action 1 earns -1: Q of the action *taken* | $Q = (1, -1)$ |
# | 5 | `observation_action` | the right action depends on the observation | $\pm(1, -1)$ |
#
# Every episode ends by termination. `dqn.run_probe(name, seed, update_fn=..., buffer_cls=...)`
# trains with `dqn.train` on the registered probe (`dqn.PROBE_SETTINGS`, printed below: a
# small net, a short run, and a $\gamma$ well below 1 so that $Q(0) = \gamma$ on probe 3 is
# clearly not 1) and reads the learned
# Q-table next to `true_q`. Your DQN first:

# %%
from tqdm.auto import tqdm

from rlcourse import probes

mine = {name: dqn.run_probe(name, seed=0, update_fn=update_step, buffer_cls=ReplayBuffer)
        for name in tqdm(probes.PROBE_IDS, desc="your DQN on the probes")}
ps = dqn.PROBE_SETTINGS
print(f"probe runs: hidden layers {ps['hidden']}, {ps['total_steps']:,} env steps, gamma = "
      f"{ps['gamma']}, lr {ps['lr']}, target copy every {ps['target_update']} env steps; a "
      f"probe passes when every Q-value is within {dqn.PROBE_TOLERANCE} of the truth")
for name, rep in mine.items():
    for o, q_row, t_row in zip(rep.observations, rep.q, rep.true_q):
        print(f"{name:18s} obs {o:+.0f}: learned Q {np.round(q_row, 2).tolist()!s:14s} "
              f"true Q {t_row.tolist()}")
    print(f"{'':18s} max error {rep.max_error:.3f} -> {'pass' if rep.passed else 'FAIL'}")
assert all(rep.passed for rep in mine.values()), {n: r.max_error for n, r in mine.items()}

# %% [markdown]
# **Which probe catches which bug?** `dqn.planted_bugs()` returns six deliberately broken
# variants of the course's DQN (as `train` hooks). We run each on every probe and colour each
# cell by the largest Q-value error:

# %%
bugs = dqn.planted_bugs()
probe_err = np.array([[dqn.run_probe(name, seed=0, **hooks).max_error
                       for name in probes.PROBE_IDS]
                      for hooks in tqdm(bugs.values(), desc="planted bugs x probes")])
fig, ax = plt.subplots(figsize=(8.5, 4))
im = ax.imshow(probe_err.clip(1e-3, 10), cmap="RdYlGn_r",
               norm=matplotlib.colors.LogNorm(vmin=1e-3, vmax=10))
for i, j in np.ndindex(probe_err.shape):
    ax.text(j, i, f"{probe_err[i, j]:.2f}", ha="center", va="center", fontsize=8,
            fontweight="bold" if probe_err[i, j] > dqn.PROBE_TOLERANCE else "normal")
ax.set_xticks(range(len(probes.PROBE_IDS)),
              [f"{k + 1}: {n}" for k, n in enumerate(probes.PROBE_IDS)], rotation=30,
              ha="right")
ax.set_yticks(range(len(bugs)), list(bugs))
fig.colorbar(im, ax=ax, label="max |Q - true Q| (log scale)")
ax.set_title(f"Bold: failed (error > {dqn.PROBE_TOLERANCE})")
plt.show()

# %%
failed = {bug: [p for p, e in zip(probes.PROBE_IDS, row) if e > dqn.PROBE_TOLERANCE]
          for bug, row in zip(bugs, probe_err)}
for bug, which in failed.items():
    print(f"{bug:26s} fails: {', '.join(which) or 'no probe'}")
assert {"constant", "two_step"} <= set(failed["no terminal mask"])
assert failed["target never synced"] == ["two_step"]  # only probe 3 bootstraps
assert "constant" in failed["no zero_grad"]  # probe 1 already: the optimiser
assert "action" in failed["Q of the greedy action"]
assert "observation" in failed["buffer stores s' as s"]
assert failed["truncation = termination"] == []  # probes never truncate

# %% [markdown]
# Read the grid row by row:
#
# * **No terminal mask** (bootstrapping through the end of an episode) fails probe 1 already:
#   $Q = 1 + \gamma Q$ climbs towards $1/(1-\gamma)$, and on probe 3 much further.
# * **Target never synced**: probes 1 and 2 have no bootstrap (every episode is one step), so
#   only probe 3, whose $Q(0) = \gamma\,Q(1)$ reads the target net, sees the frozen random
#   target.
# * **No `zero_grad`**: gradients pile up across steps and the optimiser overshoots; even the
#   constant probe fails, which points at the update itself.
# * **Q of the greedy action** instead of the action taken trains the wrong output: probes 4
#   and 5, the first ones with two actions.
# * **Buffer stores $s'$ as $s$**: the net never sees the real input, so probe 2 fails.
# * **Truncation treated as termination** passes everything: probes end by termination only,
#   so they cannot see it. Exercise 2's check can, and on CartPole (500-step truncations) it
#   matters. A probe suite is a filter, not a proof.
#
# The order matters when you debug your own agent: fix the first failing probe first.

# %% [markdown]
# ## 7. Training DQN on CartPole-v1
#
# `dqn.train` puts the pieces together. Each iteration
# 1. steps the 4 CartPole copies once with the $\varepsilon$-greedy policy (one batched forward
#    pass), and adds the valid transitions to the buffer;
# 2. after `learning_starts` env steps, calls the update (your `update_step`): `grad_steps`
#    gradient steps on uniformly sampled minibatches, with targets from the target network,
#    then the copy $\theta \to \theta^-$ whenever the env-step counter passes a multiple of
#    `target_update`.
#
# CartPole-v1 counts as **solved** when the mean return of the last 20 training episodes
# reaches 475 (`deeprl.SOLVE_WINDOW`); training stops there, and a separate 100-episode
# greedy evaluation checks the policy. This run uses **your** `ReplayBuffer` and
# `update_step` (which calls your `batch_loss`, `td_target` and `dqn_loss`) and your
# `epsilon_schedule`, through the hooks `buffer_cls=`, `update_fn=` and `epsilon_fn=`; an
# exercise you skipped is replaced by the course's version. A full run takes about half a
# minute, so the notebook solves one seed (seed 0); section 8 adds seeds 1 and 2 for the
# first 8,000 steps, and the 10-seed benchmark below covers the rest.

# %%
MAIN_SEED = 0
main_run = dqn.train("CartPole-v1", MAIN_SEED, device=session.device, update_fn=update_step,
                     buffer_cls=ReplayBuffer, epsilon_fn=epsilon_schedule)
main_eval = deeprl.evaluate("CartPole-v1", main_run.act, episodes=100, seed=10_000 + MAIN_SEED,
                            device=session.device)
print(f"seed {MAIN_SEED}: solved after {main_run.steps_to_solve:,} env steps "
      f"({main_run.seconds:.0f} s, {len(main_run.episode_returns)} episodes); greedy evaluation "
      f"over 100 episodes: mean {main_eval.mean():.0f}, min {main_eval.min():.0f}")

# %% [markdown]
# **Reading a DQN while it trains.** The return alone says little about *why* a run is slow
# or broken. Every 1,000 env steps `history` also logs the averages of what your update
# returned:
#
# * **mean $\max_a Q$ against the scale of the return.** Every CartPole step pays +1 and a
#   time-limit truncation bootstraps, so for any policy $Q(s,a) \le \sum_k \gamma^k =
#   1/(1-\gamma) = 100$. Q-values far above the largest possible discounted return are
#   overestimation or divergence; values stuck near 0 mean no learning signal.
# * **mean $|Q(s,a) - y|$, the TD error.** It does not go to 0 in DQN: each target copy
#   moves the labels, so it jumps after copies and shrinks between them. A TD error that grows
#   steadily with the Q-values is the signature of the feedback loop of section 8.
# * **the gradient norm before clipping**, against `max_grad_norm`. Occasional spikes above
#   it are what clipping is for; if it sits above the threshold all the time, clipping is doing
#   the learning and the effective learning rate is lower than the one you set.

# %%
grid = np.arange(1_000, main_run.total_steps + 1, 1_000)
hist = main_run.history
fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
ax = axes[0, 0]
ax.plot(hist["episode_end_step"], main_run.episode_returns, ".", alpha=0.4,
        label="episode return")
ax.plot(grid, dqn.learning_curve(main_run, grid), label="mean of the last 20")
ax.axhline(475, color="gray", ls=":", label="solved (475)")
ax.set_ylabel("return")
ax.set_title(f"DQN on CartPole-v1, seed {MAIN_SEED}")
panels = [(axes[0, 1], "q_mean", r"mean of $\max_a Q(s,a)$ on minibatches",
           1 / (1 - cfg.gamma), r"$1/(1-\gamma)$"),
          (axes[1, 0], "td_error", r"mean $|Q(s,a) - y|$", None, None),
          (axes[1, 1], "grad_norm", "gradient norm before clipping", cfg.max_grad_norm,
           "max_grad_norm")]
for ax, key, ylabel, line, line_label in panels:
    ax.plot(hist["log_step"], hist[key], "o-", ms=3, label="your DQN")
    if line is not None:
        ax.axhline(line, color="gray", ls=":", label=line_label)
    ax.set_ylabel(ylabel)
for ax in axes.flat:
    ax.legend(fontsize=8)
for ax in axes[1]:
    ax.set_xlabel("env steps")
plt.show()
logged = np.isfinite(hist["grad_norm"])
clipped = float(np.mean(np.array(hist["grad_norm"])[logged] > cfg.max_grad_norm))
print(f"mean max-Q: {np.nanmin(hist['q_mean']):.1f} at first, {np.nanmax(hist['q_mean']):.1f} at "
      f"most (ceiling {1 / (1 - cfg.gamma):.0f}); TD error {np.nanmin(hist['td_error']):.2f} to "
      f"{np.nanmax(hist['td_error']):.2f}; gradient norm above max_grad_norm = "
      f"{cfg.max_grad_norm:.0f} in {clipped:.0%} of the logged intervals")
assert np.all(np.isfinite(np.array(hist["td_error"])[logged]))

# %% [markdown]
# Look at the last number printed: with the course defaults the gradient norm is above
# `max_grad_norm` most of the time. The squared loss on Q-values that grow towards 100 makes
# large gradients, so clipping rescales nearly every step. It hurts less than it sounds
# because the optimiser is Adam: Adam divides each parameter's step by a running RMS of its
# gradients, so a scale factor that changes slowly largely cancels out; what clipping still
# does is stop a single huge gradient from moving the weights far. With plain SGD the same
# numbers would mean that `max_grad_norm`, not `lr`, sets the step size.

# %% [markdown]
# The Q panel is worth a second look. A perfect policy gets close to 100 from every upright
# state. The Q-values climb towards that ceiling only as fast as the target network is copied
# (each copy moves information one Bellman backup further), and the return plateaus around
# 150 to 250 until the values "see" far enough ahead to punish the cart drifting off the
# track. If the curve passes 100 (it does near the end of seed 0's run), that is pure
# overestimation: section 9.

# %%
assert main_run.solved and main_run.steps_to_solve <= 50_000, main_run.steps_to_solve
assert main_eval.mean() >= 450, main_eval.mean()
print(f"largest mean max-Q during training: {max(main_run.history['q_mean'][1:]):.0f} "
      f"(the true values are at most {1 / (1 - cfg.gamma):.0f})")

# %% [markdown]
# **Benchmark over 10 seeds.** `python -m rlcourse.bench dqn --seeds 10` trains seeds 0-9
# with the course defaults and evaluates each final greedy policy over 100 episodes; `make
# bench` stores the result in `results/bench/`, and the next cell reads it (so the numbers
# below are the stored benchmark's, not typed in).

# %%
bench = rlcourse.results.load_bench("dqn", "CartPole-v1")
b_rows = bench["seeds"]
b_steps = [r["steps_to_solve"] for r in b_rows if r["solved"]]
b_eval = np.array([r["eval_mean_return"] for r in b_rows])
b_weak = [r for r in b_rows if r["eval_mean_return"] < 475]
print(f"stored benchmark, {len(b_rows)} seeds: solved {sum(r['solved'] for r in b_rows)}"
      f"/{len(b_rows)}; median {bench['median_steps_to_solve'] / 1000:.1f}k env steps to solve "
      f"(range {min(b_steps) / 1000:.1f}k to {max(b_steps) / 1000:.1f}k), median "
      f"{bench['median_seconds_to_solve']:.0f} s wall-clock per run")
print(f"greedy evaluation (100 episodes): mean over seeds {b_eval.mean():.0f}; "
      f"{int((b_eval >= 475).sum())}/{len(b_rows)} seeds >= 475; below 475: "
      + (", ".join(f"seed {r['seed']} ({r['eval_mean_return']:.0f})" for r in b_weak) or "none"))

# %% [markdown]
# The training criterion and the greedy evaluation need not agree (the weakest seeds are
# listed above). The criterion averages the last 20 episodes of the *exploring* policy, played
# by slightly older networks, and a single update can make a good greedy policy worse. That is
# why every claim is checked with a separate greedy evaluation.
#
# The stored benchmark covers the course defaults only. To compare a variant, train it on the
# same seeds, e.g. `dqn.train("CartPole-v1", seed, huber=True)` (or `double=True`,
# `dueling=True`, section 9 and 10), and compare steps to solve and greedy evaluations over
# at least 10 seeds: differences of a few thousand steps are within the seed-to-seed spread
# printed above.

# %% [markdown]
# ## 8. Ablations: without replay, without a target network
#
# Why does DQN need both components? That is a claim about experiments, so let us run them.
# Same code, same seeds, same hyperparameters; one component switched off:
#
# * **no replay**: the buffer holds only the latest vector step (4 transitions), and each
#   gradient step uses exactly those: online Q-learning with a network;
# * **no target network**: the target is computed with the online network itself,
#   $y = r + \gamma(1-\text{terminated})\max_{a'}Q(s',a';\theta)$ (with gradients still
#   stopped). Copying every gradient step is the same thing.
#
# To fit the notebook's time budget the ablations run 8,000 env steps (3,500 gradient
# steps) on 3 seeds, with full DQN on the same 3 seeds as the reference. Seed 0's full-DQN
# curve is the first 8,000 steps of the run above (a run with a smaller step budget is
# identical up to that point, which `tests/test_dqn.py` checks).

# %%
ABL_STEPS, ABL_SEEDS = 8_000, [0, 1, 2]
variants = {"DQN": {}, "no replay": {"replay": False},
            "no target network": {"target_network": False}}
abl = {name: [] for name in variants}
for name, opts in variants.items():
    for seed in ABL_SEEDS:
        if not opts and seed == MAIN_SEED:
            abl[name].append(main_run)  # its first ABL_STEPS steps are exactly this run
            continue
        abl[name].append(dqn.train("CartPole-v1", seed, device=session.device,
                                   target_fn=td_target, loss_fn=dqn_loss,
                                   epsilon_fn=epsilon_schedule, total_steps=ABL_STEPS,
                                   stop_when_solved=False, **opts))

abl_grid = np.arange(500, ABL_STEPS + 1, 500)
curves = {n: np.array([dqn.learning_curve(r, abl_grid) for r in rs]) for n, rs in abl.items()}
n_logs = ABL_STEPS // cfg.log_every


def q_trace(r, key="q_mean"):
    return np.array(r.history[key][:n_logs])


fig, axes = plt.subplots(1, 3, figsize=(15, 4))
rlcourse.plotting.plot_curves(curves, ax=axes[0], x=abl_grid, band="minmax",
                              xlabel="env steps", ylabel="mean return, last 20 episodes")
log_x = np.array(main_run.history["log_step"][:n_logs])
for name, rs in abl.items():
    qs = np.array([q_trace(r) for r in rs])
    axes[1].plot(log_x, np.nanmedian(qs, axis=0), "o-", label=name)
axes[1].axhline(1 / (1 - cfg.gamma), color="gray", ls=":", label="ceiling 100")
axes[1].set_yscale("log")
axes[1].set_xlabel("env steps")
axes[1].set_ylabel(r"median over seeds of mean $\max_a Q$")
axes[1].legend()
for name, rs in abl.items():
    axes[2].plot(log_x, np.nanmedian([q_trace(r, "td_error") for r in rs], axis=0), "o-",
                 label=name)
axes[2].set_yscale("log")
axes[2].set_xlabel("env steps")
axes[2].set_ylabel(r"median over seeds of mean $|Q(s,a) - y|$")
axes[2].legend()
axes[0].set_title("Band: min to max over 3 seeds")
plt.show()

abl_final = {n: c[:, -1] for n, c in curves.items()}
abl_qmax = {n: np.array([np.nanmax(q_trace(r)) for r in rs]) for n, rs in abl.items()}
abl_td = {n: np.array([np.nanmax(q_trace(r, "td_error")) for r in rs]) for n, rs in abl.items()}
for n in variants:
    print(f"{n:18s} return (last 20 episodes) at {ABL_STEPS:,} steps: "
          f"{', '.join(f'{x:.0f}' for x in abl_final[n])}; largest mean max-Q: "
          f"{', '.join(f'{x:.0f}' for x in abl_qmax[n])}; largest TD error: "
          f"{', '.join(f'{x:.1f}' for x in abl_td[n])}")

# %%
dqn_mean, norep_mean = abl_final["DQN"].mean(), abl_final["no replay"].mean()
assert np.all(abl_final["DQN"] >= 150), abl_final["DQN"]  # all 3 seeds learn (random: ~22)
assert norep_mean < 0.5 * dqn_mean, (norep_mean, dqn_mean)
assert np.all(abl_qmax["no target network"] > 1 / (1 - cfg.gamma))  # impossible values
assert np.all(abl_qmax["DQN"] < 1 / (1 - cfg.gamma))
assert abl_td["no target network"].min() > 10 * abl_td["DQN"].max()  # TD error blows up too

# %%
ceiling = 1 / (1 - cfg.gamma)
print(f"at {ABL_STEPS:,} env steps (mean over {len(ABL_SEEDS)} seeds): no replay reaches "
      f"{norep_mean:.0f}, {norep_mean / dqn_mean:.0%} of full DQN's {dqn_mean:.0f}; without a "
      f"target network the return is {abl_final['no target network'].mean():.0f} while the "
      f"largest mean max-Q is {abl_qmax['no target network'].min() / ceiling:.0f}x to "
      f"{abl_qmax['no target network'].max() / ceiling:.0f}x the largest possible value "
      f"{ceiling:.0f}")

# %% [markdown]
# **What we measured** (the numbers are the ones printed above):
#
# * **Without replay** the agent learns something but stays far below full DQN. Each
#   gradient step fits the last four, nearly identical, transitions and overwrites what the
#   network knew about other states.
# * **Without a target network** the *value estimates* are what breaks first. The mean
#   $\max_a Q$ passes 100, a value that *no* policy can reach, within a few thousand steps,
#   and keeps growing. The returns need not drop to the random level (compare the seeds
#   above): a greedy policy only needs the *ordering* of two Q-values to be right, and that
#   can survive for a while even when their size is absurd. The target moves with every
#   update, so errors feed on themselves: the deadly triad, measured. Notebook 16 shows the
#   same mechanism where it can be proven: on Baird's counterexample a *linear* value function
#   trained off-policy with semi-gradient TD diverges, and there a periodically copied target
#   only slows the growth.
#   The third panel shows what you would see in a run of your own: the TD error of the
#   run without a target network grows along with its Q-values (largest values printed above).
#
# So neither ablation makes learning impossible at once, and the greedy policy without a
# target network can look decent for a while. But neither is reliable: without replay the
# agent is much slower, without a target network the Q-values diverge. To see how the two
# ablations develop, set `ABL_STEPS = 20_000` above and run the section again (about 2.5 times
# longer; the asserts are written for 8,000 steps and may then fail).

# %% [markdown]
# ## 9. Overestimation and Double DQN
#
# The target takes a $\max$ over *estimates*. If $\hat Q(s', a) = Q(s', a) + \epsilon_a$ with
# zero-mean noise, then $\max_a \hat Q(s',a)$ is biased upwards:
# $$\mathbb E\big[\max_a (q_a + \epsilon_a)\big] \;\ge\; \max_a \mathbb E[q_a + \epsilon_a]
#   = \max_a q_a,$$
# because the max is convex (Jensen) and it preferentially picks the actions whose noise
# happened to be positive. For $n$ actions with equal values and i.i.d. $\mathcal N(0,
# \sigma^2)$ noise the bias is exactly $\sigma\,\mathbb E[\max$ of $n$ standard normals$]$
# ($\sigma/\sqrt\pi \approx 0.56\,\sigma$ for two actions). The bias is fed back through
# bootstrapping, step after step.
#
# The **double estimator** uses two independent estimates: $\hat Q^A$ *chooses*
# $a^* = \arg\max_a \hat Q^A(s',a)$ and $\hat Q^B$ *evaluates* it, $\hat Q^B(s', a^*)$. Since
# the noise of $B$ is independent of the choice, $\mathbb E[\hat Q^B(s',a^*)] = \mathbb
# E[q_{a^*}] \le \max_a q_a$: no overestimation (at worst a small underestimation). We check
# both claims with 20,000 simulated trials.

# %%
sigma, n_trials = 1.0, 20_000
n_actions_list = [1, 2, 4, 8, 16, 32]
bias_single, bias_double, bias_exact = [], [], []
for n in n_actions_list:
    single, double = dqn.noisy_max_estimates(np.zeros(n), sigma, n_trials, rng)
    bias_single.append(single.mean())
    bias_double.append(double.mean())
    bias_exact.append(sigma * dqn.expected_max_std_normal(n))
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.plot(n_actions_list, bias_single, "o-", label=r"single: $\max_a \hat Q_a$")
ax.plot(n_actions_list, bias_exact, "k--", label=r"exact: $\sigma\,E[\max$ of $n$ normals$]$")
ax.plot(n_actions_list, bias_double, "s-", label=r"double: $\hat Q^B(\arg\max_a \hat Q^A_a)$")
ax.set_xscale("log", base=2)
ax.set_xlabel("number of actions (all true values 0)")
ax.set_ylabel(r"bias of the estimate of $\max_a q_a$")
ax.legend()
plt.show()
for n, s_, d_, x_ in zip(n_actions_list, bias_single, bias_double, bias_exact):
    print(f"n = {n:2d}: single {s_:+.3f} (exact {x_:+.3f}), double {d_:+.3f}")
se = sigma / np.sqrt(n_trials)
assert all(abs(s_ - x_) < 4 * se for s_, x_ in zip(bias_single, bias_exact))
assert all(abs(d_) < 4 * se for d_ in bias_double)

# %% [markdown]
# With *different* true values the double estimator underestimates a little (it sometimes
# picks a worse action), while the single estimator still overestimates:

# %%
q_true = np.array([1.0, 0.8, 0.5, 0.0])
single, double = dqn.noisy_max_estimates(q_true, 1.0, n_trials, rng)
print(f"max_a q_a = {q_true.max():.2f}; single estimator {single.mean():.3f}, "
      f"double estimator {double.mean():.3f}")
assert single.mean() > q_true.max() + 0.3 and double.mean() < q_true.max()

# %% [markdown]
# **Double DQN** applies this with the two networks DQN already has: the online network
# chooses, the target network evaluates,
# $$y = r + \gamma\,(1-\text{terminated})\,
#   Q\big(s', \arg\max_{a'} Q(s', a'; \theta);\ \theta^-\big).$$
# The two networks are not independent (one is a lagged copy of the other), so the bias is
# reduced rather than removed.
#
# ### Exercise 7: the Double DQN target
# `rewards` [B], `next_q_online` and `next_q_target` [B, A] (the two networks' Q-values of
# $s'$), `terminated` [B], `gamma`. Return $y$ [B].

# %%
def double_dqn_target(rewards, next_q_online, next_q_target, terminated, gamma):
    """Double DQN targets [B]; next_q_online, next_q_target [B, A], the others [B]."""
    ### BEGIN SOLUTION
    best = next_q_online.argmax(dim=1, keepdim=True)
    chosen = next_q_target.gather(1, best).squeeze(1)
    return rewards + gamma * (1.0 - terminated.float()) * chosen
    ### END SOLUTION


double_dqn_target = check("dqn.double_dqn_target", double_dqn_target)

# %% [markdown]
# In the agent, `dqn.train(..., double=True, double_target_fn=double_dqn_target)` trains with
# your target. On one transition the two targets differ like this:

# %%
y_double = double_dqn_target(torch.tensor([1.0]), torch.tensor([[2.0, 5.0]]),
                             torch.tensor([[9.0, 3.0]]), torch.tensor([False]), 0.9)
y_vanilla = td_target(torch.tensor([1.0]), torch.tensor([[9.0, 3.0]]), torch.tensor([False]),
                      torch.tensor([False]), 0.9)
print(f"online net prefers action 1, target net values it at 3: Double DQN y = "
      f"{y_double.item():.1f}, vanilla DQN y = {y_vanilla.item():.1f} (uses the target's max, 9)")

# %% [markdown]
# `dqn.train(..., double=True)` trains Double DQN; compare it with the stored benchmark as
# section 7 describes. On CartPole, with a target network, the overestimation of vanilla DQN
# is mild (in section 8 full DQN's mean $\max_a Q$ stayed below the ceiling of 100 for the
# first 8,000 steps on all three seeds), so expect a small difference that 10 seeds may not resolve. Double DQN is a one-line
# change that costs nothing, so most modern DQN variants include it; its gains are larger on
# problems with many actions and noisy rewards (Atari), where the $\max$ has more noise to
# pick from.

# %% [markdown]
# ## 10. Dueling networks
#
# Many states are good or bad whatever you do (a pole about to fall), and the action matters
# only a little. The **dueling** head splits the last layer into a state value $V(s)$ and
# advantages $A(s, a)$ and recombines them:
# $$Q(s,a) = V(s) + A(s,a) - \frac1{|\mathcal A|}\sum_{a'} A(s,a').$$
# Why subtract the mean? $V$ and $A$ are not *identifiable* from $Q$ alone: $V + c$ and
# $A - c$ give the same $Q$ for any constant $c$, so the network could drift along that
# direction. Subtracting the mean pins it down: the mean of $Q$ over actions is then exactly
# $V(s)$ (the max could be used instead; the mean is smoother). Every Q-value update also
# updates the shared $V(s)$, which helps when many actions have similar values.

# %%
v_demo = torch.tensor([[10.0], [-3.0]])
a_demo = torch.tensor([[1.0, -1.0], [0.5, 2.5]])
q_demo = dqn.dueling_combine(v_demo, a_demo)
print("Q =", q_demo.tolist(), "| mean over actions =", q_demo.mean(dim=1).tolist())
print("shift every advantage by +100:", dqn.dueling_combine(v_demo, a_demo + 100).tolist())
assert torch.allclose(q_demo.mean(dim=1, keepdim=True), v_demo)
assert torch.allclose(dqn.dueling_combine(v_demo, a_demo + 100), q_demo)
dueling_net = dqn.QNetwork(4, 2, (128, 128), dueling=True)
print(f"dueling QNetwork: {sum(p.numel() for p in dueling_net.parameters()):,} parameters, "
      f"output shape {tuple(dueling_net(obs_example).shape)}; train with dqn.train(dueling=True)")

# %% [markdown]
# ## 11. Prioritized replay and Rainbow (overview)
#
# **Prioritized experience replay (PER)** samples transitions with large TD errors more often:
# $P(i) = p_i^\alpha / \sum_k p_k^\alpha$ with $p_i = |\delta_i| + \epsilon$ ($\alpha = 0$ is
# uniform). Non-uniform sampling changes the expectation the loss estimates, so each sample is
# reweighted by the importance-sampling weight $w_i = (N\,P(i))^{-\beta}$ (normalised by
# $\max_i w_i$), with $\beta$ annealed to 1 by the end of training: the same importance
# sampling idea as in off-policy evaluation and PPO's ratios. A *sum tree* (a binary tree whose
# nodes store the sum of the priorities below them) samples and updates a priority in
# $O(\log N)$.
#
# **Rainbow** (Hessel et al., 2018) combines six extensions of DQN and showed they are largely
# complementary on Atari:
# 1. **Double DQN** (section 9): less overestimation;
# 2. **prioritized replay**: replay surprising transitions more often;
# 3. **dueling** head (section 10);
# 4. **multi-step returns** (below): $n$ real rewards before the bootstrap, which propagates
#    rewards $n$ steps per backup (recall the slow climb of Q in section 7);
# 5. **distributional RL** (C51): learn the distribution of returns on a fixed support, not
#    just its mean;
# 6. **noisy nets**: learned parameter noise in the linear layers replaces $\varepsilon$-greedy
#    exploration.
#
# The ablations of the Rainbow paper found prioritized replay and multi-step returns the most
# important components.
#
# **The multi-step target, with its mask.** Index convention: as in the code and in notebook
# 06, $r_{t+k}$ is the reward that *follows* action $a_{t+k}$ (Sutton and Barto's
# $R_{t+k+1}$), and transition $t+k$ leads from $s_{t+k}$ to $s_{t+k+1}$. A window of $n$
# transitions starting at $t$ stops early at the first episode end inside it; call its length
# $m \le n$ ($m = n$ if the episode goes on). Then
# $$y_t^{(n)} = \sum_{k=0}^{m-1}\gamma^k r_{t+k}
#   + \gamma^m\,(1-\text{terminated}_{t+m-1})\,\max_{a}Q(s_{t+m}, a;\theta^-).$$
# We bootstrap only if no termination occurred within the window; a truncation ends the
# window but still bootstraps, from the final observation $s_{t+m}$. For $n = 1$ this is the
# target of section 3. Without the mask a window that crosses a termination would add the
# value of a state after the end (with autoreset, the first state of the *next* episode).
# One more caveat: the rewards $r_{t+1}, \dots$ were earned by the exploring behaviour policy,
# not the greedy one, so for $n > 1$ the target is biased for $Q^*$ (Rainbow accepts that
# bias for small $n$; importance weights would remove it at the cost of variance).
# `dqn.n_step_target` computes it on `[B, n]` windows; three windows of CartPole rewards,
# with a target network that values every state at 100:

# %%
gamma_w = cfg.gamma
win_r = torch.ones(3, 3)
win_q = torch.full((3, 3, 2), 100.0)  # max_a Q(s_{t+k+1}) = 100 for every k
win_term = torch.tensor([[False] * 3, [False, True, False], [False] * 3])
win_trunc = torch.tensor([[False] * 3, [False] * 3, [False, True, False]])
y_win = dqn.n_step_target(win_r, win_q, win_term, win_trunc, gamma_w)
y_unmasked = sum(gamma_w ** k for k in range(3)) + gamma_w ** 3 * 100.0
for label, y in zip(["episode goes on", "pole falls at k = 1", "time limit at k = 1"], y_win):
    print(f"{label:20s}: y = {y:.2f}")
print(f"ignoring the termination would give {y_unmasked:.2f}")
assert abs(y_win[1] - (1 + gamma_w)) < 1e-5  # two rewards, no bootstrap
assert abs(y_win[2] - (1 + gamma_w + gamma_w ** 2 * 100)) < 1e-4  # bootstraps at k = 1

# %% [markdown]
# ## Common misconceptions
#
# * *"Value-based methods are more stable than policy-based methods."* Not in deep RL. With a
#   neural network, bootstrapping and off-policy data (the deadly triad) Q-learning has no
#   convergence guarantee and is sensitive to its hyperparameters; without a target network
#   the Q-values left the range of possible values within 8,000 steps (sections 1 and 8). PPO-style policy-gradient methods are usually the more stable and easier to tune;
#   DQN's strength is sample efficiency through replay. <!-- E-26 -->
# * *"Remove the replay buffer or the target network and DQN collapses at once."* Measured in
#   section 8, the failures are more specific: without replay the agent learned far more
#   slowly (less than half of full DQN's return), and without a target network the Q-values
#   diverged while the return did not have to collapse at the same time.
# * *"A time-limit cut is the end of the episode, so the target is just $r$."* A truncation
#   does not end the task: the target still bootstraps from the final observation; only a
#   termination removes $\gamma\max_{a'}Q(s',a')$ (section 3, and the multi-step target in
#   section 11).
#
# ## What to remember
#
# * DQN regresses $Q(s,a;\theta)$ onto $y = r + \gamma(1-\text{terminated})\max_{a'}
#   Q(s',a';\theta^-)$ with $y$ held fixed: a semi-gradient method, not gradient descent on a
#   fixed objective.
# * Terminated: no bootstrap. Truncated (time limit): bootstrap from the final observation.
#   The autoreset step of a vector env is not a transition and never enters the buffer.
# * Exploration: $\varepsilon$-greedy with $\varepsilon$ decayed linearly from 1 to a floor.
# * Replay decorrelates minibatches and reuses every transition; it is valid because
#   Q-learning is off-policy.
# * Debug on probes before CartPole: the first failing probe points at the bug (probe 1: loss
#   and optimiser; 2: the input; 3: discounting, bootstrap, terminal mask, target copies;
#   4-5: Q of the action taken). Probes that only terminate cannot see truncation bugs.
# * While training, watch mean $\max_a Q$ against the largest possible return, the TD error
#   and the gradient norm against the clipping threshold.
# * The target network (hard copy every $K$ steps, or Polyak averaging) holds the regression
#   target still; values propagate about one Bellman backup per copy.
# * Huber loss = squared error with the gradient clipped to $[-\delta, \delta]$.
# * Deadly triad: function approximation + bootstrapping + off-policy data can diverge. On
#   CartPole no true Q-value exceeds $1/(1-\gamma)$, a free divergence diagnostic.
# * $\mathbb E[\max_a \hat Q_a] \ge \max_a \mathbb E[\hat Q_a]$: the max overestimates.
#   Double DQN: the online net chooses $a^*$, the target net evaluates it.
# * Dueling: $Q = V + A - \text{mean}_a A$ (the mean makes $V$ and $A$ identifiable).
# * PER samples by $p_i^\alpha$ and corrects with weights $(N P(i))^{-\beta}$, $\beta \to 1$.
# * Multi-step target: $m \le n$ rewards, then $\gamma^m(1-\text{terminated}_{t+m-1})
#   \max_a Q(s_{t+m},a;\theta^-)$; the window stops at the first episode end.
# * "Solved" (running mean of training episodes) and the greedy evaluation can disagree:
#   report both.
#
# ## Further reading
#
# * Sutton & Barto (2018), *Reinforcement Learning: An Introduction*, 2nd ed., §6.5 and §6.7:
#   Q-learning, maximisation bias and double learning in the tabular case; §11.3: the deadly
#   triad, and why off-policy bootstrapping with function approximation can diverge.
# * Mnih et al. (2015), "Human-level control through deep reinforcement learning", *Nature*:
#   the DQN paper, with replay, the target network and the Atari evaluation protocol.
# * van Hasselt, Guez & Silver (2016), "Deep reinforcement learning with double Q-learning":
#   overestimation measured in DQN and the Double DQN target of section 9.
# * Wang et al. (2016), "Dueling network architectures for deep reinforcement learning": the
#   $V + A$ head of section 10 and why the mean is subtracted.
# * Schaul et al. (2016), "Prioritized experience replay": priorities, the sum tree and the
#   importance-sampling correction.
# * Hessel et al. (2018), "Rainbow: Combining improvements in deep reinforcement learning":
#   the six extensions together, and the ablation that ranks them.

# %% [markdown]
# ## Interview questions
#
# 1. Write the DQN loss. Why is it called a *semi*-gradient method?
#
# <details><summary>Answer</summary>
#
# $\mathcal L(\theta) = \mathbb E_{(s,a,r,s')\sim\mathcal D}[\ell(y - Q(s,a;\theta))]$ with
# $y = r + \gamma(1-\text{terminated})\max_{a'}Q(s',a';\theta^-)$. The target depends on the
# parameters too (through $\theta^-$, a copy of $\theta$, or $\theta$ itself), but we do not
# differentiate through it: we follow only the gradient of the prediction $Q(s,a;\theta)$.
# The update is therefore not the gradient of any fixed objective, which is one reason
# convergence is not guaranteed.
# </details>
#
# 2. An episode of CartPole-v1 ends after 500 steps with the pole upright. What should the
# target of that last transition be, and what goes wrong if you get it wrong?
#
# <details><summary>Answer</summary>
#
# It is a truncation, not a termination: $y = r + \gamma\max_{a'}Q(s',a';\theta^-)$, about
# 100. Masking it as terminal ($y = r = 1$) gives identical-looking states wildly different
# labels (the observation does not contain the time), which adds noise and bias, and it
# teaches the agent that surviving long is worth nothing at the end. Use `terminated`, not
# `terminated or truncated`, in the mask.
# </details>
#
# 3. Why does DQN use a replay buffer? What would break without one?
#
# <details><summary>Answer</summary>
#
# Consecutive transitions are strongly correlated (we measured a lag-1 correlation near 1),
# so minibatches of recent steps are far from i.i.d.; the network chases the current
# trajectory and forgets the rest. Uniform replay decorrelates the minibatches and reuses
# each transition many times (sample efficiency). It is only valid because Q-learning is
# off-policy: the max in the target does not care which policy collected the data. In our
# ablation, learning without replay largely failed within the budget.
# </details>
#
# 4. Why a target network, and what are the two usual ways to update it?
#
# <details><summary>Answer</summary>
#
# Without it, each gradient step moves the target it chases (the same weights produce both),
# which can feed errors back into themselves and diverge; in our ablation the Q-values passed
# the impossible value 100 and kept growing. A lagged copy holds the target still for a
# while. Hard update: $\theta^-\leftarrow\theta$ every $K$ steps (this course, $K = 100$ env
# steps = 50 gradient steps). Polyak: $\theta^-\leftarrow\tau\theta + (1-\tau)\theta^-$ every
# step with small $\tau$.
# </details>
#
# 5. Is value-based deep RL more stable than policy-gradient methods?
#
# <details><summary>Answer</summary>
#
# Generally no. DQN combines function approximation, bootstrapping and off-policy data: the
# deadly triad, with no convergence guarantee; it can diverge and is sensitive to
# hyperparameters (here: the loss, the target period, the update ratio). Policy-gradient
# methods take noisy gradient steps on the policy itself. Their gradient estimate is unbiased
# for the undiscounted return only in plain Monte-Carlo REINFORCE with $\gamma = 1$
# (optionally with a state baseline); discounting, a learned critic and GAE with
# $\lambda < 1$ trade bias for lower variance (notebooks 05 and 06). Their critic bootstraps
# too, but on-policy, so the third leg of the triad is missing, and PPO-style methods are
# usually considered the more stable and easier to tune. DQN's advantage is sample efficiency
# through replay.
# </details>
#
# 6. Why does Q-learning overestimate, and how does Double DQN fix it?
#
# <details><summary>Answer</summary>
#
# $\mathbb E[\max_a \hat Q_a] \ge \max_a \mathbb E[\hat Q_a]$: the max picks the actions
# whose estimation noise is positive (the toy: $+0.56\sigma$ for two equal actions, more for
# more actions), and bootstrapping propagates the bias. Double DQN decouples selection and
# evaluation: the online net picks $a^* = \arg\max_a Q(s',a;\theta)$, the target net
# evaluates $Q(s',a^*;\theta^-)$. With independent estimators the bias disappears; with two
# correlated networks it is reduced.
# </details>
#
# 7. In a dueling network, why subtract the mean advantage?
#
# <details><summary>Answer</summary>
#
# $Q = V + A$ is unidentifiable: adding $c$ to $V$ and subtracting it from $A$ changes
# nothing. Forcing the advantages to have mean zero over actions makes the decomposition
# unique ($V(s) = \text{mean}_a Q(s,a)$) and the optimisation better behaved.
# </details>
#
# 8. Name the six components of Rainbow.
#
# <details><summary>Answer</summary>
#
# Double Q-learning, prioritized replay, dueling networks, multi-step returns, distributional
# RL (C51) and noisy nets (all on top of DQN's replay and target network).
# </details>
#
# 9. Your DQN learns nothing on CartPole. How do you find the bug quickly?
#
# <details><summary>Answer</summary>
#
# Run it on probe environments with known Q-values, simplest first, and fix the first one that
# fails: a constant reward tests the loss and the optimiser (a missing `zero_grad` fails
# there), an observation-dependent reward tests that the network reads its input, a two-step
# episode tests discounting, the terminal mask and the target copy (a target net that is never
# synced fails only there), and action-dependent rewards test that the loss uses the Q-value
# of the action taken. Meanwhile log mean $\max_a Q$ (above $1/(1-\gamma)$ times the largest
# reward is impossible), the TD error and the gradient norm. Probes that only terminate cannot
# catch a truncation handled as termination; a unit test of the target can.
# </details>
#
# 10. With prioritized replay, why are importance-sampling weights needed, and why is
# $\beta$ annealed to 1?
#
# <details><summary>Answer</summary>
#
# Sampling with $P(i) \ne 1/N$ changes the distribution the loss is averaged over, which biases
# the fixed point. Weighting each sample by $(N P(i))^{-\beta}$ undoes that ($\beta = 1$ is
# exact correction). Early in training the bias matters little and full correction would
# cancel the benefit, so $\beta$ starts lower and reaches 1 when the estimates should
# converge.
# </details>

# %%
cpu_total = time.process_time() - cpu_start
headline = (f"CartPole solved in {main_run.steps_to_solve / 1000:.1f}k env steps (seed "
            f"{MAIN_SEED}; benchmark: {sum(r['solved'] for r in b_rows)}/{len(b_rows)} seeds, "
            f"median {bench['median_steps_to_solve'] / 1000:.1f}k), greedy eval "
            f"{main_eval.mean():.0f}; at {ABL_STEPS // 1000}k steps (3 seeds): DQN "
            f"{dqn_mean:.0f}, no replay {norep_mean:.0f}, no target net "
            f"{abl_final['no target network'].mean():.0f} with max-Q up to "
            f"{abl_qmax['no target network'].max():.0f} (> 100 is impossible)")
rlcourse.results.record(
    "04_dqn",
    title="Deep Q-networks",
    topics="DQN loss, replay, target net, terminated vs truncated, ablations, Double DQN, "
           "dueling, PER/Rainbow",
    headline=headline,
    metrics={"steps_to_solve": main_run.steps_to_solve, "greedy_eval_mean": main_eval.mean(),
             "ablation_return_dqn": dqn_mean, "ablation_return_no_replay": norep_mean,
             "ablation_return_no_target": abl_final["no target network"].mean(),
             "ablation_max_q_no_target": abl_qmax["no target network"].max(),
             "ablation_max_q_dqn": abl_qmax["DQN"].max(),
             "overestimation_bias_2_actions": bias_single[1]},
)
print(headline)
print(f"total time {session.elapsed():.1f} s (CPU {cpu_total:.1f} s)")
