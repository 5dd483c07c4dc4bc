"""Honesty tests for the checks of notebook 05: blanks and plausible wrong answers must fail."""

import pytest
import torch

from rlcourse import pg
from tests.honesty import assert_verdict, honesty_cases

# ---- score_function ------------------------------------------------------------------------


def score_onehot_only(logits, action):
    """Forgets the -pi term (the derivative of the log-normaliser)."""
    return torch.nn.functional.one_hot(action.long(), logits.shape[-1]).to(logits.dtype)


def score_sign_flipped(logits, action):
    """pi - onehot: the gradient of -log pi."""
    return -pg.score_function(logits, action)


def score_diagonal_only(logits, action):
    """Only d log pi_a / d z_a = 1 - pi_a; the other logits get 0 instead of -pi_k."""
    onehot = score_onehot_only(logits, action)
    return onehot * (1 - torch.softmax(logits, -1))


def score_log_probs(logits, action):
    """onehot - log softmax: log-probabilities where probabilities belong."""
    return score_onehot_only(logits, action) - torch.log_softmax(logits, -1)


def score_naive_softmax(logits, action):
    """exp(z) / sum exp(z) without subtracting the max: overflows for large logits."""
    e = logits.exp()
    return score_onehot_only(logits, action) - e / e.sum(-1, keepdim=True)


# ---- reward_to_go --------------------------------------------------------------------------


def rtg_full_return(rewards, gamma):
    """R(tau) at every step: the whole episode's return, past rewards included."""
    g = pg.reward_to_go(rewards, gamma)
    return g[:, :1].expand_as(g).clone()


def rtg_off_by_one(rewards, gamma):
    """G_t starts with rewards[t + 1]: the reward of action t itself is left out."""
    g = pg.reward_to_go(rewards, gamma)
    out = torch.zeros_like(g)
    out[:, :-1] = g[:, 1:]
    return out


def rtg_forward_cumsum(rewards, gamma):
    """Rewards so far (the past) instead of rewards to go."""
    return torch.cumsum(rewards, dim=1)


def rtg_no_gamma(rewards, gamma):
    """gamma forgotten: the undiscounted reward-to-go for every gamma."""
    return pg.reward_to_go(rewards, 1.0)


def rtg_discount_from_zero(rewards, gamma):
    """sum_{t' >= t} gamma^t' r_t': discounts from the episode start, not from t."""
    w = gamma ** torch.arange(rewards.shape[1], dtype=rewards.dtype)
    return pg.reward_to_go(rewards * w, 1.0)


def rtg_rows_joined(rewards, gamma):
    """Treats the batch as one long stream: returns leak from one episode into the previous."""
    flat = pg.reward_to_go(rewards.reshape(1, -1), gamma)
    return flat.reshape(rewards.shape)


# ---- reinforce_loss ------------------------------------------------------------------------


def loss_sign_flipped(logp, weights, mask):
    """Gradient descent on this lowers the probability of good actions."""
    return -pg.reinforce_loss(logp, weights, mask)


def loss_ignores_mask(logp, weights, mask):
    """Sums over the padding too."""
    return -(weights.detach() * logp).sum() / logp.shape[0]


def loss_step_mean(logp, weights, mask):
    """Masked mean over steps: divides by the number of real steps instead of episodes."""
    m = mask.to(logp.dtype)
    return -(m * weights.detach() * logp).sum() / m.sum()


def loss_not_detached(logp, weights, mask):
    """Right value, but gradients flow into the weights (e.g. into a value network)."""
    return -(mask * weights * logp).sum() / logp.shape[0]


def loss_mean_all(logp, weights, mask):
    """Mean over every entry, padding included."""
    return -(mask * weights.detach() * logp).mean()


# ---- optimal_baseline ----------------------------------------------------------------------


def baseline_mean_return(scores, returns):
    """The usual approximation E[R], not the variance-minimising constant."""
    return returns.mean()


def baseline_norm_not_squared(scores, returns):
    """Weights by |g| instead of |g|^2."""
    n = scores.reshape(scores.shape[0], -1).norm(dim=1)
    return (n * returns).sum() / n.sum()


def baseline_divided_by_n(scores, returns):
    """Mean of |g|^2 R without dividing by the mean of |g|^2."""
    sq = scores.reshape(scores.shape[0], -1).pow(2).sum(1)
    return (sq * returns).mean()


def baseline_per_component_average(scores, returns):
    """One c per component, averaged: not the minimiser of the total variance."""
    sq = scores.reshape(scores.shape[0], -1).pow(2)
    return ((sq * returns[:, None]).sum(0) / sq.sum(0)).mean()


WRONG_ANSWERS = {
    "pg.score_function": {"onehot-only": score_onehot_only, "sign": score_sign_flipped,
                          "diagonal-only": score_diagonal_only, "log-probs": score_log_probs,
                          "naive-softmax": score_naive_softmax},
    "pg.reward_to_go": {"full-return": rtg_full_return, "off-by-one": rtg_off_by_one,
                        "forward-cumsum": rtg_forward_cumsum, "no-gamma": rtg_no_gamma,
                        "discount-from-zero": rtg_discount_from_zero,
                        "rows-joined": rtg_rows_joined},
    "pg.reinforce_loss": {"sign": loss_sign_flipped, "ignores-mask": loss_ignores_mask,
                          "step-mean": loss_step_mean, "not-detached": loss_not_detached,
                          "mean-all": loss_mean_all},
    "pg.optimal_baseline": {"mean-return": baseline_mean_return,
                            "norm-not-squared": baseline_norm_not_squared,
                            "divided-by-n": baseline_divided_by_n,
                            "per-component": baseline_per_component_average},
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_exercise_of_the_notebook_has_wrong_answers():
    from rlcourse import exercises

    exercises.get("pg.score_function")
    mine = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "05_policy_gradients"}
    assert mine == set(WRONG_ANSWERS)
