"""Honesty tests for the checks of notebook 04: blanks and plausible wrong answers must fail."""

import numpy as np
import pytest
import torch

from rlcourse import dqn
from tests.honesty import assert_verdict, honesty_cases

# ---- epsilon_schedule ----------------------------------------------------------------------


def eps_never_reaches_end(step, start, end, decay_steps):
    """Divides by decay_steps + 1, so epsilon is still above `end` at step decay_steps."""
    return start + (end - start) * min(step / (decay_steps + 1), 1.0)


def eps_off_by_one(step, start, end, decay_steps):
    """Counts from step 1: (step + 1) / decay_steps, so step 0 is already below `start`."""
    return start + (end - start) * min((step + 1) / decay_steps, 1.0)


def eps_not_clamped(step, start, end, decay_steps):
    """Keeps decaying past decay_steps (and eventually goes negative)."""
    return start + (end - start) * step / decay_steps


def eps_exponential(step, start, end, decay_steps):
    """Exponential decay towards `end`: never reaches it exactly."""
    return end + (start - end) * 0.01 ** (step / decay_steps)


def eps_never_decays(step, start, end, decay_steps):
    """Epsilon stays at `start`: the agent explores at random for the whole run."""
    return start


def eps_decays_to_zero(step, start, end, decay_steps):
    """Ignores `end` and decays to 0: no exploration at all once the decay is over."""
    return start * max(1.0 - step / decay_steps, 0.0)


# ---- td_target -----------------------------------------------------------------------------


def td_no_mask(rewards, next_q, terminated, truncated, gamma):
    """Bootstraps from terminal states too."""
    return rewards + gamma * next_q.max(dim=1).values


def td_masks_on_done(rewards, next_q, terminated, truncated, gamma):
    """Stops bootstrapping on truncation as well (the time-limit bug)."""
    done = (terminated | truncated).float()
    return rewards + gamma * (1 - done) * next_q.max(dim=1).values


def td_masks_on_truncated(rewards, next_q, terminated, truncated, gamma):
    """Masks with the wrong flag."""
    return rewards + gamma * (1 - truncated.float()) * next_q.max(dim=1).values


def td_gamma_outside(rewards, next_q, terminated, truncated, gamma):
    """gamma * (r + max Q'): the reward is discounted too."""
    return gamma * (rewards + (1 - terminated.float()) * next_q.max(dim=1).values)


def td_mean_not_max(rewards, next_q, terminated, truncated, gamma):
    """Expected-SARSA-under-uniform: averages the next Q-values instead of taking the max."""
    return rewards + gamma * (1 - terminated.float()) * next_q.mean(dim=1)


# ---- double_dqn_target ---------------------------------------------------------------------


def double_is_vanilla(rewards, next_q_online, next_q_target, terminated, gamma):
    """Max of the target net: this is the ordinary DQN target."""
    return rewards + gamma * (1 - terminated.float()) * next_q_target.max(dim=1).values


def double_max_online(rewards, next_q_online, next_q_target, terminated, gamma):
    """Max of the online net: selection and evaluation by the same (noisy) net."""
    return rewards + gamma * (1 - terminated.float()) * next_q_online.max(dim=1).values


def double_swapped(rewards, next_q_online, next_q_target, terminated, gamma):
    """The target net chooses, the online net evaluates (roles swapped)."""
    a = next_q_target.argmax(dim=1, keepdim=True)
    return rewards + gamma * (1 - terminated.float()) * next_q_online.gather(1, a).squeeze(1)


def double_no_mask(rewards, next_q_online, next_q_target, terminated, gamma):
    """Right action choice, but bootstraps from terminal states."""
    a = next_q_online.argmax(dim=1, keepdim=True)
    return rewards + gamma * next_q_target.gather(1, a).squeeze(1)


# ---- dqn_loss ------------------------------------------------------------------------------


def _q_sa(q_values, actions):
    return q_values.gather(1, actions.long().unsqueeze(1)).squeeze(1)


def _ref(q_values, actions, targets, huber):
    return dqn.dqn_loss(q_values, actions, targets, huber)


def loss_always_squared(q_values, actions, targets, huber):
    """Ignores the flag: always 0.5 * squared error."""
    return 0.5 * ((_q_sa(q_values, actions) - targets.detach()) ** 2).mean()


def loss_squared_without_half(q_values, actions, targets, huber):
    """Mean squared error without the 1/2 (gradients twice too large)."""
    if huber:
        return _ref(q_values, actions, targets, True)
    return ((_q_sa(q_values, actions) - targets.detach()) ** 2).mean()


def loss_no_detach(q_values, actions, targets, huber):
    """Right value, but the gradient also flows into the targets."""
    err = _q_sa(q_values, actions) - targets
    if huber:
        return torch.nn.functional.smooth_l1_loss(_q_sa(q_values, actions), targets)
    return 0.5 * (err ** 2).mean()


def loss_max_not_taken(q_values, actions, targets, huber):
    """Uses max_a Q(s, a) instead of the Q-value of the action actually taken."""
    idx = q_values.argmax(dim=1)
    return _ref(q_values, idx, targets, huber)


def loss_sum(q_values, actions, targets, huber):
    """Sums over the batch instead of averaging."""
    return _ref(q_values, actions, targets, huber) * len(targets)


def loss_huber_is_l1(q_values, actions, targets, huber):
    """'Huber' as the absolute error everywhere (no quadratic zone)."""
    if not huber:
        return _ref(q_values, actions, targets, False)
    return (_q_sa(q_values, actions) - targets.detach()).abs().mean()


def _huber_switch_at(threshold):
    def loss(q_values, actions, targets, huber):
        if not huber:
            return _ref(q_values, actions, targets, False)
        err = _q_sa(q_values, actions) - targets.detach()
        return torch.where(err.abs() <= threshold, 0.5 * err ** 2, err.abs() - 0.5).mean()
    loss.__doc__ = f"Huber whose quadratic zone ends at |e| = {threshold} instead of 1."
    return loss


def loss_as_float(q_values, actions, targets, huber):
    """Right number, but returned as a Python float (no gradient can flow)."""
    return _ref(q_values, actions, targets, huber).item()


# ---- ReplayBuffer ----------------------------------------------------------------------------


class _Buffer:
    """A learner-style ring buffer; subclasses plant one mistake each."""

    def __init__(self, capacity, obs_dim):
        self.capacity, self.pos, self.size = capacity, 0, 0
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros_like(self.obs)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, bool)
        self.truncated = np.zeros(capacity, bool)

    def __len__(self):
        return self.size

    def _slot(self):
        return self.pos % self.capacity

    def _flags(self, terminated, truncated):
        return terminated, truncated

    def add(self, obs, actions, rewards, next_obs, terminated, truncated, valid=None):
        term, trunc = self._flags(np.asarray(terminated), np.asarray(truncated))
        for i in range(len(obs)):
            if valid is not None and not valid[i]:
                continue
            j = self._slot()
            self.obs[j], self.next_obs[j] = obs[i], next_obs[i]
            self.actions[j], self.rewards[j] = actions[i], rewards[i]
            self.terminated[j], self.truncated[j] = term[i], trunc[i]
            self.pos = (self.pos + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def _indices(self, batch_size, rng):
        return rng.integers(0, self.size, size=batch_size)

    def sample(self, batch_size, rng):
        idx = self._indices(batch_size, rng)
        return {k: torch.as_tensor(getattr(self, k)[idx]) for k in
                ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")}


def test_the_learner_style_buffer_passes():
    """The base of the wrong buffers below is right, so each subclass differs by one mistake."""
    assert_verdict("dqn.ReplayBuffer", _Buffer, "passed")


class BufferNoWrap(_Buffer):
    """Never wraps pos back to 0: an IndexError once the buffer is full."""

    def add(self, obs, actions, rewards, next_obs, terminated, truncated, valid=None):
        keep = np.ones(len(obs), bool) if valid is None else np.asarray(valid)
        idx = self.size + np.arange(int(keep.sum()))
        self.obs[idx], self.next_obs[idx] = obs[keep], next_obs[keep]
        self.actions[idx], self.rewards[idx] = actions[keep], rewards[keep]
        self.terminated[idx], self.truncated[idx] = terminated[keep], truncated[keep]
        self.size += len(idx)


class BufferGrowsPastCapacity(_Buffer):
    """Python lists that keep every transition: len passes the capacity."""

    def __init__(self, capacity, obs_dim):
        super().__init__(capacity, obs_dim)
        self.rows = []

    def add(self, obs, actions, rewards, next_obs, terminated, truncated, valid=None):
        for i in range(len(obs)):
            if valid is None or valid[i]:
                self.rows.append((obs[i], actions[i], rewards[i], next_obs[i], terminated[i],
                                  truncated[i]))
        self.size = len(self.rows)

    def sample(self, batch_size, rng):
        idx = rng.integers(0, self.size, size=batch_size)
        cols = list(zip(*[self.rows[i] for i in idx]))
        keys = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated")
        return {k: torch.as_tensor(np.array(c)) for k, c in zip(keys, cols)}


class BufferOverwritesLastSlot(_Buffer):
    """Once full, keeps overwriting the last slot instead of the oldest transition."""

    def _slot(self):
        return self.capacity - 1 if self.size == self.capacity else self.pos


class BufferOverwritesNewest(_Buffer):
    """Once full, overwrites the slot just written (pos - 1): the newest, not the oldest."""

    def _slot(self):
        return (self.pos - 1) % self.capacity if self.size == self.capacity else self.pos


class BufferSamplesUnfilled(_Buffer):
    """Draws indices from the whole capacity, including slots never written."""

    def _indices(self, batch_size, rng):
        return rng.integers(0, self.capacity, size=batch_size)


class BufferOneDoneFlag(_Buffer):
    """Stores terminated or truncated as one done flag."""

    def _flags(self, terminated, truncated):
        return terminated | truncated, truncated


class BufferKeepsInvalid(_Buffer):
    """Ignores the valid mask: autoreset steps enter the buffer."""

    def add(self, obs, actions, rewards, next_obs, terminated, truncated, valid=None):
        super().add(obs, actions, rewards, next_obs, terminated, truncated, None)


class BufferOwnGenerator(_Buffer):
    """Ignores the generator it is given and draws from its own."""

    def _indices(self, batch_size, rng):
        return np.random.default_rng(1234).integers(0, self.size, size=batch_size)


class BufferReturnsNumpy(_Buffer):
    """Right rows, but numpy arrays instead of tensors."""

    def sample(self, batch_size, rng):
        return {k: v.numpy() for k, v in super().sample(batch_size, rng).items()}


# ---- batch_loss ------------------------------------------------------------------------------


def _learner_batch_loss(online_target=False, no_grad=True, done_mask=False, gather_dim=1,
                        hand_loss=False):
    def fn(q_net, target_net, batch, gamma, huber):
        q = q_net(batch["obs"])
        net = q_net if online_target else target_net
        mask = batch["terminated"] | batch["truncated"] if done_mask else batch["terminated"]
        with torch.set_grad_enabled(not no_grad):
            next_max = net(batch["next_obs"]).max(dim=1).values
            y = batch["rewards"] + gamma * (1.0 - mask.float()) * next_max
        idx = batch["actions"].long().unsqueeze(1)
        q_sa = q.gather(gather_dim, idx).squeeze(1)
        if hand_loss or gather_dim != 1:
            err = q_sa - y
            if huber:
                return torch.nn.functional.smooth_l1_loss(q_sa, y), q, y
            return 0.5 * (err ** 2).mean(), q, y
        return dqn.dqn_loss(q, batch["actions"], y, huber), q, y
    return fn


def loss_only(q_net, target_net, batch, gamma, huber):
    """Returns the loss alone instead of (loss, q_values, targets)."""
    return dqn.batch_loss(q_net, target_net, batch, gamma, huber)[0]


def test_the_learner_style_batch_loss_passes():
    assert_verdict("dqn.batch_loss", _learner_batch_loss(), "passed")


# ---- update_step -----------------------------------------------------------------------------


def _learner_update(zero_grad=True, clip=True, step_first=False, sync="due", loss_fn=None,
                    sync_first=False, diagnostics=True):
    loss_fn = loss_fn or _learner_batch_loss()

    def fn(q_net, target_net, optimizer, buffer, rng, cfg, steps_before, steps):
        due = {"due": steps // cfg.target_update > steps_before // cfg.target_update,
               "never": False, "always": True}[sync]
        if sync_first and due:
            target_net.load_state_dict(q_net.state_dict())
        stats = {"loss": 0.0, "q_mean": 0.0, "td_error": 0.0, "grad_norm": 0.0}
        for _ in range(cfg.grad_steps):
            batch = buffer.sample(cfg.batch_size, rng)
            loss, q, y = loss_fn(q_net, target_net, batch, cfg.gamma, cfg.huber)
            if zero_grad:
                optimizer.zero_grad()
            if step_first:
                optimizer.step()
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(
                q_net.parameters(), cfg.max_grad_norm if clip else float("inf"))
            if not step_first:
                optimizer.step()
            q_sa = q.detach().gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
            stats["loss"] += loss.item() / cfg.grad_steps
            stats["q_mean"] += q.detach().max(dim=1).values.mean().item() / cfg.grad_steps
            stats["td_error"] += (q_sa - y).abs().mean().item() / cfg.grad_steps
            stats["grad_norm"] += float(norm) / cfg.grad_steps
        if due and not sync_first:
            target_net.load_state_dict(q_net.state_dict())
        return stats if diagnostics else None
    return fn


def test_the_learner_style_update_passes():
    assert_verdict("dqn.update_step", _learner_update(), "passed")


def test_the_update_check_crosses_sync_boundaries():
    """Without a copy at steps 8 and 16 the check could not see the sync mistakes."""
    cfg = dqn.make_config(num_envs=4, target_update=8)
    due = [dqn.target_sync_due(4 * k, 4 * (k + 1), cfg.target_update) for k in range(5)]
    assert due == [False, True, False, True, False]



WRONG_ANSWERS = {
    "dqn.epsilon_schedule": {"never-reaches-end": eps_never_reaches_end,
                             "off-by-one": eps_off_by_one, "not-clamped": eps_not_clamped,
                             "exponential": eps_exponential, "never-decays": eps_never_decays,
                             "decays-to-zero": eps_decays_to_zero},
    "dqn.td_target": {"no-mask": td_no_mask, "masks-on-done": td_masks_on_done,
                      "masks-on-truncated": td_masks_on_truncated,
                      "gamma-outside": td_gamma_outside, "mean-not-max": td_mean_not_max},
    "dqn.double_dqn_target": {"vanilla": double_is_vanilla, "max-online": double_max_online,
                              "swapped": double_swapped, "no-mask": double_no_mask},
    "dqn.dqn_loss": {"always-squared": loss_always_squared,
                     "squared-without-half": loss_squared_without_half,
                     "no-detach": loss_no_detach, "max-not-taken": loss_max_not_taken,
                     "sum": loss_sum, "huber-is-l1": loss_huber_is_l1, "float": loss_as_float,
                     "huber-switch-at-2": _huber_switch_at(2.0),
                     "huber-switch-at-0.8": _huber_switch_at(0.8),
                     "huber-switch-at-1.5": _huber_switch_at(1.5)},
    "dqn.ReplayBuffer": {"no-wrap": BufferNoWrap, "grows-past-capacity": BufferGrowsPastCapacity,
                         "overwrites-last-slot": BufferOverwritesLastSlot,
                         "overwrites-newest": BufferOverwritesNewest,
                         "samples-unfilled": BufferSamplesUnfilled,
                         "one-done-flag": BufferOneDoneFlag, "keeps-invalid": BufferKeepsInvalid,
                         "own-generator": BufferOwnGenerator, "numpy": BufferReturnsNumpy},
    "dqn.batch_loss": {"online-net-target": _learner_batch_loss(online_target=True),
                       "online-net-not-detached": _learner_batch_loss(
                           online_target=True, no_grad=False, hand_loss=True),
                       "target-with-grad": _learner_batch_loss(no_grad=False),
                       "truncation-as-termination": _learner_batch_loss(done_mask=True),
                       "gather-axis-0": _learner_batch_loss(gather_dim=0),
                       "loss-only": loss_only},
    "dqn.update_step": {"no-zero-grad": _learner_update(zero_grad=False),
                        "no-clip": _learner_update(clip=False),
                        "step-before-backward": _learner_update(step_first=True),
                        "never-synced": _learner_update(sync="never"),
                        "synced-every-call": _learner_update(sync="always"),
                        "synced-before-the-gradient-steps": _learner_update(sync_first=True),
                        "target-not-detached": _learner_update(loss_fn=_learner_batch_loss(
                            online_target=True, no_grad=False, hand_loss=True)),
                        "truncation-as-termination": _learner_update(
                            loss_fn=_learner_batch_loss(done_mask=True)),
                        "no-diagnostics": _learner_update(diagnostics=False)},
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_dqn_exercise_has_wrong_answers():
    from rlcourse import exercises

    exercises.get("dqn.td_target")  # loads the registry
    ours = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "04_dqn"}
    assert ours == set(WRONG_ANSWERS)
