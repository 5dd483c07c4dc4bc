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


# ---- collect_episodes (REINFORCE stage 1) --------------------------------------------------

def _collect_variant(envs, act, episodes_per_env, *, keep_all=False, no_step_mask=False,
                     stop_on_total=False, reseed=False):
    """The collection loop with one planted mistake switched on."""
    import numpy as np

    from rlcourse import deeprl

    n = envs.num_envs
    obs, _ = envs.reset(seed=0) if reseed else envs.reset()
    mask, finished = deeprl.StepMask(n), np.zeros(n, dtype=int)
    ended = [0]  # every episode end so far, kept or not
    keys = ("obs", "actions", "rewards", "terminated", "truncated", "valid", "keep", "next_obs")
    out = {key: [] for key in keys}

    def more():
        if stop_on_total:
            return ended[0] < n * episodes_per_env
        return (finished < episodes_per_env).any()

    while more():
        actions = np.asarray(act(obs))
        next_obs, r, te, tu, _ = envs.step(actions)
        valid = np.ones(n, dtype=bool) if no_step_mask else mask.step(te, tu)
        keep = valid if keep_all else valid & (finished < episodes_per_env)
        finished += (te | tu) & keep
        ended[0] += int(((te | tu) & valid).sum())
        for key, v in zip(keys, (obs, actions, r, te, tu, valid, keep, next_obs)):
            out[key].append(np.asarray(v))
        obs = next_obs
    return {key: np.stack(v) for key, v in out.items()}


def collect_keep_every_finished(envs, act, k):
    """Keeps every episode finished before the slowest env is done: favours short ones."""
    return _collect_variant(envs, act, k, keep_all=True)


def collect_no_step_mask(envs, act, k):
    """Treats gymnasium's autoreset steps as transitions."""
    return _collect_variant(envs, act, k, no_step_mask=True)


def collect_stop_on_total(envs, act, k):
    """Stops once N * k episodes ended in total, whichever envs ended them."""
    return _collect_variant(envs, act, k, stop_on_total=True)


def collect_reseeds(envs, act, k):
    """Resets with seed=0 every batch: the same start states again and again."""
    return _collect_variant(envs, act, k, reseed=True)


def collect_keep_key_missing(envs, act, k):
    """Forgets to return the keep mask."""
    out = pg.collect_episodes(envs, act, k)
    del out["keep"]
    return out


# ---- reinforce_update (REINFORCE stage 2) --------------------------------------------------

def _update_variant(policy, value, optimizers, batch, cfg, *, total_return=False,
                    attached_baseline=False, no_zero_grad=False, no_policy_zero_grad=False,
                    step_mean=False, sign=1.0, no_bootstrap=False, always_baseline=False,
                    no_clip=False, fresh_adam=False):
    """The REINFORCE update with one planted mistake switched on (all off: the reference)."""
    from rlcourse.advantages import masked_mean, normalize

    opt_pi, opt_v = optimizers
    if fresh_adam and isinstance(opt_pi, torch.optim.Adam):
        opt_pi = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    rewards, mask = batch.rewards, batch.mask
    if batch.truncated.any() and not no_bootstrap:
        with torch.no_grad():
            v_final = value(batch.final_obs).squeeze(-1)
        rewards = pg.bootstrap_truncated(rewards, mask, batch.truncated, v_final, cfg.gamma)
    returns = (pg.total_return(rewards, mask) if total_return
               else pg.reward_to_go(rewards, cfg.gamma) * mask)
    use_value = cfg.baseline == "value" or always_baseline
    adv = returns
    if use_value:
        v = value(batch.obs).squeeze(-1)
        adv = returns - (v if attached_baseline else v.detach())
    if cfg.normalize_advantages:
        adv = normalize(adv, mask)
    dist = torch.distributions.Categorical(logits=policy(batch.obs))
    weighted = mask * adv * dist.log_prob(batch.actions)  # adv keeps its graph if attached
    loss_pi = -sign * weighted.sum() / (mask.sum() if step_mean else batch.rewards.shape[0])
    if not (no_zero_grad or no_policy_zero_grad):
        opt_pi.zero_grad(set_to_none=True)
    loss_pi.backward()
    norm = torch.nn.utils.clip_grad_norm_(policy.parameters(),
                                          1e12 if no_clip else cfg.max_grad_norm)
    opt_pi.step()
    loss_v = torch.zeros(())
    for _ in range(cfg.value_steps if use_value else 0):
        loss_v = 0.5 * masked_mean((value(batch.obs).squeeze(-1) - returns) ** 2, mask)
        if not no_zero_grad:
            opt_v.zero_grad(set_to_none=True)
        loss_v.backward()
        opt_v.step()
    return {"policy_loss": float(loss_pi.detach()), "value_loss": float(loss_v.detach()),
            "entropy": float(masked_mean(dist.entropy().detach(), mask)),
            "grad_norm": float(norm)}


def _variant(**flag):
    def fn(policy, value, optimizers, batch, cfg):
        return _update_variant(policy, value, optimizers, batch, cfg, **flag)
    fn.__doc__ = f"The update with {flag}."
    return fn


def update_bad_stats(policy, value, optimizers, batch, cfg):
    """Right parameters, but logs the loss of the value network as the policy loss."""
    stats = pg.update(policy, value, optimizers, batch, cfg)
    return {**stats, "policy_loss": stats["value_loss"]}


def test_the_update_variant_without_mistakes_passes():
    """The planted mistakes below differ from a correct implementation by one flag each."""
    assert_verdict("pg.reinforce_update", _variant(), "passed")


WRONG_ANSWERS.update({
    "pg.collect_episodes": {"keep-every-finished-episode": collect_keep_every_finished,
                            "no-step-mask": collect_no_step_mask,
                            "stop-on-total-episodes": collect_stop_on_total,
                            "reseeds-every-batch": collect_reseeds,
                            "keep-missing": collect_keep_key_missing},
    "pg.reinforce_update": {"total-return": _variant(total_return=True),
                            "baseline-not-detached": _variant(attached_baseline=True),
                            "no-zero-grad": _variant(no_zero_grad=True),
                            "no-policy-zero-grad": _variant(no_policy_zero_grad=True),
                            "mean-over-steps": _variant(step_mean=True),
                            "sign-flipped": _variant(sign=-1.0),
                            "no-truncation-bootstrap": _variant(no_bootstrap=True),
                            "ignores-cfg-baseline": _variant(always_baseline=True),
                            "no-clipping": _variant(no_clip=True),
                            "rebuilds-the-optimizer": _variant(fresh_adam=True),
                            "wrong-stats": update_bad_stats},
})


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_exercise_of_the_notebook_has_wrong_answers():
    from rlcourse import exercises

    exercises.get("pg.score_function")
    mine = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "05_policy_gradients"}
    assert mine == set(WRONG_ANSWERS)
