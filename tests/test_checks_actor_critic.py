"""Honesty tests for the checks of notebook 06: blanks and plausible wrong answers must fail."""

import pytest
import torch

from rlcourse import actor_critic
from rlcourse.advantages import masked_mean, td_errors
from tests.honesty import assert_verdict, honesty_cases

# ---- td_errors ---------------------------------------------------------------------------


def td_gamma_on_difference(rewards, values, next_values, terminated, gamma):
    """E-42: delta = r + gamma * (V(s') - V(s)), the seed's garbled prose."""
    alive = 1.0 - terminated.float()
    return rewards + gamma * (alive * next_values - values)


def td_no_terminal_mask(rewards, values, next_values, terminated, gamma):
    """Bootstraps from the next value even when the episode terminated."""
    return rewards + gamma * next_values - values


def td_no_gamma(rewards, values, next_values, terminated, gamma):
    """Forgets the discount: r + V(s') - V(s)."""
    return rewards + (1.0 - terminated.float()) * next_values - values


def td_mask_on_current_value(rewards, values, next_values, terminated, gamma):
    """Puts the terminal mask on V(s) instead of V(s')."""
    alive = 1.0 - terminated.float()
    return rewards + gamma * next_values - alive * values


# ---- gae ---------------------------------------------------------------------------------


def _backward(delta, keep, w):
    adv = torch.zeros_like(delta)
    running = torch.zeros_like(delta[:, 0])
    for t in range(delta.shape[1] - 1, -1, -1):
        running = delta[:, t] + w * keep[:, t] * running
        adv[:, t] = running
    return adv


def gae_lambda_without_gamma(rewards, values, next_values, terminated, dones, gamma, lam):
    """A_t = delta_t + lam * A_{t+1}: E-04's "lambda is like gamma" taken literally."""
    delta = td_errors(rewards, values, next_values, terminated, gamma)
    return _backward(delta, 1.0 - dones.float(), lam)


def gae_not_cut_at_dones(rewards, values, next_values, terminated, dones, gamma, lam):
    """The recursion runs on across episode boundaries."""
    delta = td_errors(rewards, values, next_values, terminated, gamma)
    return _backward(delta, torch.ones_like(delta), gamma * lam)


def gae_cut_only_at_terminations(rewards, values, next_values, terminated, dones, gamma, lam):
    """Stops the recursion at terminations but lets truncated episodes leak into the next."""
    delta = td_errors(rewards, values, next_values, terminated, gamma)
    return _backward(delta, 1.0 - terminated.float(), gamma * lam)


def gae_truncation_as_termination(rewards, values, next_values, terminated, dones, gamma, lam):
    """Treats a time-limit truncation as a terminal state (no bootstrap)."""
    delta = td_errors(rewards, values, next_values, dones, gamma)
    return _backward(delta, 1.0 - dones.float(), gamma * lam)


def gae_forward_in_time(rewards, values, next_values, terminated, dones, gamma, lam):
    """Accumulates past TD errors (a forward loop) instead of future ones."""
    delta = td_errors(rewards, values, next_values, terminated, gamma)
    flip = lambda x: torch.flip(x, dims=[1])
    return flip(_backward(flip(delta), flip(1.0 - dones.float()), gamma * lam))


def gae_squeezes_values(rewards, values, next_values, terminated, dones, gamma, lam):
    """Squeezes the values (as for a critic head of shape [B, T, 1]): breaks T = 1 rollouts."""
    values, next_values = values.squeeze(), next_values.squeeze()
    delta = rewards + gamma * (1.0 - terminated.float()) * next_values - values
    return _backward(delta, 1.0 - dones.float(), gamma * lam)


# ---- n_step_returns ----------------------------------------------------------------------


def nstep_bootstrap_power_off_by_one(rewards, next_values, terminated, dones, gamma, n):
    """Bootstraps with gamma^(m-1) V(s_{t+m}) instead of gamma^m."""
    ref = actor_critic.n_step_returns(rewards, next_values, terminated, dones, gamma, n)
    boot = actor_critic.n_step_returns(torch.zeros_like(rewards), next_values, terminated, dones,
                                       gamma, n)
    return ref - boot + boot / gamma if gamma > 0 else ref


def nstep_ignores_dones(rewards, next_values, terminated, dones, gamma, n):
    """The n-step window runs across episode ends (adds the next episode's rewards)."""
    none = torch.zeros_like(dones)
    return actor_critic.n_step_returns(rewards, next_values, none, none, gamma, n)


def nstep_bootstraps_terminal(rewards, next_values, terminated, dones, gamma, n):
    """Stops at episode ends but bootstraps even from a terminal state."""
    return actor_critic.n_step_returns(rewards, next_values, torch.zeros_like(terminated), dones,
                                       gamma, n)


def nstep_window_of_n_minus_one(rewards, next_values, terminated, dones, gamma, n):
    """Sums only n-1 rewards before bootstrapping (off-by-one in the window)."""
    if n == 1:
        return rewards + gamma * (1.0 - terminated.float()) * next_values
    return actor_critic.n_step_returns(rewards, next_values, terminated, dones, gamma, n - 1)


def nstep_squeezes_next_values(rewards, next_values, terminated, dones, gamma, n):
    """Squeezes next_values and indexes time with [..., i]: breaks T = 1 rollouts."""
    next_values = next_values.squeeze()
    B, T = rewards.shape
    out = torch.zeros_like(rewards)
    for t in range(T):
        acc, open_ = torch.zeros(B), torch.ones(B, dtype=torch.bool)
        for k in range(min(n, T - t)):
            i = t + k
            acc = acc + open_ * gamma ** k * rewards[:, i]
            stop = open_ & (dones[:, i] | (k == n - 1) | (i == T - 1))
            boot = (~terminated[:, i]) * gamma ** (k + 1) * next_values[..., i]
            acc, open_ = acc + stop * boot, open_ & ~stop
        out[:, t] = acc
    return out


# ---- a2c_loss ----------------------------------------------------------------------------


def _parts(logits, actions, advantages, values, returns, mask):
    log_probs = torch.log_softmax(logits, -1)
    logp = log_probs.gather(-1, actions.long()[..., None])[..., 0]
    entropy = masked_mean(-(log_probs.exp() * log_probs).sum(-1), mask)
    return logp, entropy


def _pack(pl, vl, ent, vf_coef, ent_coef):
    return pl + vf_coef * vl - ent_coef * ent, {"policy_loss": float(pl.detach()),
                                               "value_loss": float(vl.detach()),
                                               "entropy": float(ent.detach())}


def loss_advantage_not_detached(logits, actions, advantages, values, returns, mask=None,
                                vf_coef=0.5, ent_coef=0.0):
    """Lets the policy loss push gradient into the critic through the advantages."""
    logp, ent = _parts(logits, actions, advantages, values, returns, mask)
    pl = -masked_mean(logp * advantages, mask)
    vl = 0.5 * masked_mean((values - returns.detach()) ** 2, mask)
    return _pack(pl, vl, ent, vf_coef, ent_coef)


def loss_value_sign(logits, actions, advantages, values, returns, mask=None, vf_coef=0.5,
                    ent_coef=0.0):
    """Subtracts the value loss (the critic climbs its own error)."""
    loss, parts = actor_critic.a2c_loss(logits, actions, advantages, values, returns, mask,
                                        vf_coef, ent_coef)
    return loss - 2 * vf_coef * 0.5 * masked_mean((values - returns.detach()) ** 2, mask), parts


def loss_entropy_sign(logits, actions, advantages, values, returns, mask=None, vf_coef=0.5,
                      ent_coef=0.0):
    """Adds the entropy to the loss: a penalty that makes the policy deterministic."""
    logp, ent = _parts(logits, actions, advantages, values, returns, mask)
    pl = -masked_mean(logp * advantages.detach(), mask)
    vl = 0.5 * masked_mean((values - returns.detach()) ** 2, mask)
    return pl + vf_coef * vl + ent_coef * ent, {"policy_loss": float(pl.detach()),
                                                "value_loss": float(vl.detach()),
                                                "entropy": float(ent.detach())}


def loss_policy_sign(logits, actions, advantages, values, returns, mask=None, vf_coef=0.5,
                     ent_coef=0.0):
    """Minimises +A log pi: gradient descent on the objective instead of ascent."""
    logp, ent = _parts(logits, actions, advantages, values, returns, mask)
    pl = masked_mean(logp * advantages.detach(), mask)
    vl = 0.5 * masked_mean((values - returns.detach()) ** 2, mask)
    return _pack(pl, vl, ent, vf_coef, ent_coef)


def loss_ignores_mask(logits, actions, advantages, values, returns, mask=None, vf_coef=0.5,
                      ent_coef=0.0):
    """Averages over autoreset/padding steps too."""
    return actor_critic.a2c_loss(logits, actions, advantages, values, returns, None, vf_coef,
                                 ent_coef)


def loss_mse_without_half(logits, actions, advantages, values, returns, mask=None, vf_coef=0.5,
                          ent_coef=0.0):
    """Value loss mean((V - R)^2) without the 1/2 the exercise asks for."""
    logp, ent = _parts(logits, actions, advantages, values, returns, mask)
    pl = -masked_mean(logp * advantages.detach(), mask)
    vl = masked_mean((values - returns.detach()) ** 2, mask)
    return _pack(pl, vl, ent, vf_coef, ent_coef)


def loss_returns_not_detached(logits, actions, advantages, values, returns, mask=None,
                              vf_coef=0.5, ent_coef=0.0):
    """Regresses V on a target that still carries the critic's graph (a full gradient)."""
    logp, ent = _parts(logits, actions, advantages, values, returns, mask)
    pl = -masked_mean(logp * advantages.detach(), mask)
    vl = 0.5 * masked_mean((values - returns) ** 2, mask)
    return _pack(pl, vl, ent, vf_coef, ent_coef)


def loss_probability_not_log(logits, actions, advantages, values, returns, mask=None,
                             vf_coef=0.5, ent_coef=0.0):
    """Weights pi(a|s) instead of log pi(a|s) by the advantage."""
    logp, ent = _parts(logits, actions, advantages, values, returns, mask)
    pl = -masked_mean(logp.exp() * advantages.detach(), mask)
    vl = 0.5 * masked_mean((values - returns.detach()) ** 2, mask)
    return _pack(pl, vl, ent, vf_coef, ent_coef)


def loss_only(logits, actions, advantages, values, returns, mask=None, vf_coef=0.5,
              ent_coef=0.0):
    """Returns the loss alone, without the dict of parts."""
    return actor_critic.a2c_loss(logits, actions, advantages, values, returns, mask, vf_coef,
                                 ent_coef)[0]


def loss_as_float(logits, actions, advantages, values, returns, mask=None, vf_coef=0.5,
                  ent_coef=0.0):
    """Right numbers, but the loss is a Python float: nothing to call backward() on."""
    loss, parts = actor_critic.a2c_loss(logits, actions, advantages, values, returns, mask,
                                        vf_coef, ent_coef)
    return float(loss.detach()), parts


def loss_parts_as_list(logits, actions, advantages, values, returns, mask=None, vf_coef=0.5,
                       ent_coef=0.0):
    """Returns the parts as a list [policy, value, entropy] instead of a dict."""
    loss, parts = actor_critic.a2c_loss(logits, actions, advantages, values, returns, mask,
                                        vf_coef, ent_coef)
    return loss, [parts["policy_loss"], parts["value_loss"], parts["entropy"]]


WRONG_ANSWERS = {
    "actor_critic.td_errors": {
        "gamma_on_difference_E42": td_gamma_on_difference,
        "no_terminal_mask": td_no_terminal_mask,
        "no_gamma": td_no_gamma,
        "mask_on_current_value": td_mask_on_current_value,
    },
    "actor_critic.gae": {
        "lambda_without_gamma": gae_lambda_without_gamma,
        "not_cut_at_dones": gae_not_cut_at_dones,
        "cut_only_at_terminations": gae_cut_only_at_terminations,
        "truncation_as_termination": gae_truncation_as_termination,
        "forward_in_time": gae_forward_in_time,
        "squeezes_values": gae_squeezes_values,
    },
    "actor_critic.n_step_returns": {
        "bootstrap_power_off_by_one": nstep_bootstrap_power_off_by_one,
        "ignores_dones": nstep_ignores_dones,
        "bootstraps_terminal": nstep_bootstraps_terminal,
        "window_of_n_minus_one": nstep_window_of_n_minus_one,
        "squeezes_next_values": nstep_squeezes_next_values,
    },
    "actor_critic.a2c_loss": {
        "advantage_not_detached": loss_advantage_not_detached,
        "value_loss_sign": loss_value_sign,
        "entropy_sign": loss_entropy_sign,
        "policy_sign": loss_policy_sign,
        "ignores_mask": loss_ignores_mask,
        "mse_without_half": loss_mse_without_half,
        "returns_not_detached": loss_returns_not_detached,
        "probability_not_log": loss_probability_not_log,
        "loss_only": loss_only,
        "loss_as_float": loss_as_float,
        "parts_as_list": loss_parts_as_list,
    },
}


# ---- a2c_update ----------------------------------------------------------------------------

def _a2c_variant(net, optimizer, ro, cfg, *, target_attached=False, adv_attached=False,
                 trunc_as_term=False, no_zero_grad=False, entropy_sign=1.0, policy_sign=1.0,
                 no_vf_coef=False, no_half=False, no_clip=False, clip_actor_only=False,
                 normalize_always=False, targets_from_normalized=False, fresh_adam=False):
    """The A2C update, loss written inline, with one planted mistake switched on."""
    from rlcourse.advantages import gae, normalize

    if fresh_adam and isinstance(optimizer, torch.optim.Adam):
        optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    logits, values = net(torch.cat([ro.obs, ro.last_obs[None]]))
    bt = lambda x: x.transpose(0, 1)
    mask = bt(ro.valid).float()
    v = values if (target_attached or adv_attached) else values.detach()
    term = ro.dones if trunc_as_term else ro.terminated
    adv = gae(bt(ro.rewards), bt(v[:-1]), bt(v[1:]), bt(term), bt(ro.dones), cfg.gamma, cfg.lam)
    returns = adv + bt(v[:-1])
    if not target_attached:
        returns = returns.detach()
    if cfg.normalize_advantages or normalize_always:
        adv = normalize(adv, mask)
    if targets_from_normalized:
        returns = (adv + bt(v[:-1])).detach()
    if not adv_attached:
        adv = adv.detach()
    log_probs = torch.log_softmax(bt(logits[:-1]), dim=-1)
    logp = log_probs.gather(-1, bt(ro.actions).long().unsqueeze(-1)).squeeze(-1)
    entropy = masked_mean(-(log_probs.exp() * log_probs).sum(-1), mask)
    policy_loss = -policy_sign * masked_mean(logp * adv, mask)
    value_loss = (1.0 if no_half else 0.5) * masked_mean((bt(values[:-1]) - returns) ** 2, mask)
    loss = (policy_loss + (1.0 if no_vf_coef else cfg.vf_coef) * value_loss
            - entropy_sign * cfg.ent_coef * entropy)
    if not no_zero_grad:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if not no_clip:
        params = net.actor.parameters() if clip_actor_only else net.parameters()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
    optimizer.step()
    return {"policy_loss": float(policy_loss.detach()), "value_loss": float(value_loss.detach()),
            "entropy": float(entropy.detach())}


def _a2c(**flag):
    def fn(net, optimizer, ro, cfg):
        return _a2c_variant(net, optimizer, ro, cfg, **flag)
    fn.__doc__ = f"The A2C update with {flag}."
    return fn


def a2c_update_bad_parts(net, optimizer, ro, cfg):
    """Right step, but reports the entropy as the value loss."""
    parts = actor_critic.update(net, optimizer, ro, cfg)
    return {**parts, "value_loss": parts["entropy"]}


def test_the_a2c_variant_without_mistakes_passes():
    """Each planted mistake below differs from a correct inline update by one flag."""
    assert_verdict("actor_critic.a2c_update", _a2c(), "passed")


WRONG_ANSWERS["actor_critic.a2c_update"] = {
    "value_target_not_detached": _a2c(target_attached=True),
    "advantage_not_detached": _a2c(adv_attached=True),
    "truncation_as_termination": _a2c(trunc_as_term=True),
    "no_zero_grad": _a2c(no_zero_grad=True),
    "entropy_sign": _a2c(entropy_sign=-1.0),
    "policy_sign": _a2c(policy_sign=-1.0),
    "critic_without_vf_coef": _a2c(no_vf_coef=True),
    "critic_without_half": _a2c(no_half=True),
    "no_clipping": _a2c(no_clip=True),
    "clips_the_actor_only": _a2c(clip_actor_only=True),
    "always_normalizes": _a2c(normalize_always=True),
    "targets_from_normalized_advantages": _a2c(targets_from_normalized=True),
    "rebuilds_the_optimizer": _a2c(fresh_adam=True),
    "wrong_parts": a2c_update_bad_parts,
}


@pytest.mark.parametrize("label,words", [
    ("value_target_not_detached", "did you detach the value target?"),
    ("advantage_not_detached", "with vf_coef = 0"),
    ("truncation_as_termination", "truncation is not a termination"),
    ("no_zero_grad", "zero_grad"),
    ("entropy_sign", "bonus"),
    ("critic_without_vf_coef", "multiplied by cfg.vf_coef"),
    ("critic_without_half", "times the reference's length"),
])
def test_a2c_update_failures_name_the_likely_cause(label, words):
    from rlcourse import exercises

    result = exercises.evaluate("actor_critic.a2c_update",
                                WRONG_ANSWERS["actor_critic.a2c_update"][label])
    assert result.status == "failed" and words in result.message, result.message


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_is_honest(name, candidate, expected):
    assert_verdict(name, candidate, expected)


def test_every_exercise_of_the_notebook_has_wrong_answers():
    from rlcourse import exercises

    exercises.get("actor_critic.gae")  # loads the registry
    mine = {n for n, ex in exercises.REGISTRY.items() if ex.notebook == "06_actor_critic_gae"}
    assert mine == set(WRONG_ANSWERS)


@pytest.mark.parametrize("candidate,words", [
    (loss_only, "expected a tuple of 2 items, got a Tensor"),
    (loss_as_float, "the loss (first item): expected a Tensor, got a float"),
    (loss_parts_as_list, "parts (second item): expected a dict, got a list"),
])
def test_a2c_loss_failures_say_what_type_was_expected(candidate, words):
    from rlcourse import exercises

    result = exercises.evaluate("actor_critic.a2c_loss", candidate)
    assert result.status == "failed" and words in result.message, result


def _mask_invariants(ro):
    """What next-step autoreset implies for the masks of a rollout [T, N]."""
    ends = ro.dones & ro.valid
    assert torch.equal(ro.valid[1:], ~ends[:-1])  # the step after an end is an autoreset step
    assert not (ro.terminated & ~ro.valid).any() and ro.dones[~ro.valid].all()
    assert (ro.rewards[~ro.valid] == 0).all()


@pytest.mark.parametrize("truncation", [False, True])
def test_the_a2c_check_uses_rollouts_shaped_like_real_ones(truncation):
    from rlcourse.checks.actor_critic import _synthetic_rollout

    with torch.random.fork_rng():
        torch.manual_seed(0)
        real = actor_critic.rollout(actor_critic.A2CPolicy(actor_critic.ActorCritic(4, 2)),
                                    "CartPole-v1", num_envs=4, n_steps=60, seed=0)
    assert (real.dones & real.valid).any()
    _mask_invariants(real)
    fake = _synthetic_rollout(0, truncation)
    _mask_invariants(fake)
    truncated = fake.dones & fake.valid & ~fake.terminated
    assert bool(truncated.any()) == truncation and fake.terminated.any()
