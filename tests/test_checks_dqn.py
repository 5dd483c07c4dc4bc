"""Honesty tests for the checks of notebook 04: blanks and plausible wrong answers must fail."""

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


WRONG_ANSWERS = {
    "dqn.epsilon_schedule": {"never-reaches-end": eps_never_reaches_end,
                             "off-by-one": eps_off_by_one, "not-clamped": eps_not_clamped,
                             "exponential": eps_exponential},
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
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_dqn_exercise_has_wrong_answers():
    from rlcourse import exercises

    exercises.get("dqn.td_target")  # loads the registry
    ours = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "04_dqn"}
    assert ours == set(WRONG_ANSWERS)
