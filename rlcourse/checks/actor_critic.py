"""Checks for notebook 06 (actor-critic and GAE).

All exercises work on padded [batch, time] tensors, the layout of :mod:`rlcourse.advantages`.
The expected values are computed here by brute force (explicit sums over future steps), not
with the reference implementations.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rlcourse import actor_critic, advantages
from rlcourse.exercises import (
    call_with,
    expect_close,
    expect_params_close,
    expect_true,
    expect_type,
    register,
)

NB = "06_actor_critic_gae"

# W-01 (one trajectory, gamma = 0.9): rewards 1, 2, 0; V = 1.5, 2.0, 0.5; terminal after step 3.
W01_R = [[1.0, 2.0, 0.0]]
W01_V = [[1.5, 2.0, 0.5]]
W01_NEXT_V = [[2.0, 0.5, 0.0]]
W01_TERM = [[False, False, True]]


def _t(x, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(x, dtype=dtype)


# A rollout of one step (T = 1) for 3 environments: a plain step, a termination, a truncation.
T1_R, T1_V, T1_NEXT_V = [[1.0], [2.0], [-1.0]], [[0.5], [1.0], [2.0]], [[3.0], [4.0], [-2.0]]
T1_TERM, T1_DONE = [[False], [True], [False]], [[False], [True], [True]]
T1_WHAT = ("a rollout of T = 1 step in 3 environments (shape [3, 1]): rewards [1, 2, -1], "
           "next values [3, 4, -2], the second terminates, the third is truncated, gamma 0.9")


def _batch(seed: int, B: int = 4, T: int = 9):
    """Random rewards/values with terminations and (separate) truncations, as numpy arrays."""
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(B, T)).round(2)
    v = rng.normal(size=(B, T + 1)).round(2)
    term = rng.random((B, T)) < 0.15
    trunc = (rng.random((B, T)) < 0.15) & ~term
    term[0, 3], trunc[1, 4] = True, True  # at least one of each
    trunc[1, 4] &= ~term[1, 4]
    return r, v[:, :-1], v[:, 1:], term, term | trunc


def _tensors(r, v, nv, term, done):
    return _t(r), _t(v), _t(nv), _t(term, torch.bool), _t(done, torch.bool)


def _delta_brute(r, nv, v, term, gamma):
    return r + gamma * np.where(term, 0.0, nv) - v


def _weighted_sum(x, done, w):
    """out[b, t] = sum_{k >= t} w^(k-t) x[b, k], stopping after the first done at or after t."""
    B, T = x.shape
    out = np.zeros((B, T))
    for b in range(B):
        for t in range(T):
            acc, weight = 0.0, 1.0
            for k in range(t, T):
                acc += weight * x[b, k]
                if done[b, k]:
                    break
                weight *= w
            out[b, t] = acc
    return out


def _n_step_brute(r, nv, term, done, gamma, n):
    B, T = r.shape
    out = np.zeros((B, T))
    for b in range(B):
        for t in range(T):
            acc = 0.0
            for k in range(n):
                i = t + k
                acc += gamma ** k * r[b, i]
                if done[b, i] or k == n - 1 or i == T - 1:
                    acc += 0.0 if term[b, i] else gamma ** (k + 1) * nv[b, i]
                    break
            out[b, t] = acc
    return out


@register("actor_critic.td_errors", notebook=NB, reference=advantages.td_errors,
          hint="The TD error is the one-step surprise: what you got (the reward plus the "
               "discounted value of where you landed) minus what you expected (the value of "
               "where you were). Gamma discounts the next value only; after a termination the "
               "next state is worth nothing.")
def _(fn: Callable) -> None:
    got = fn(_t(W01_R), _t(W01_V), _t(W01_NEXT_V), _t(W01_TERM, torch.bool), 0.9)
    expect_close(got, [[1.3, 0.45, -0.5]], "W-01 (rewards 1,2,0; V 1.5,2,0.5; gamma 0.9)", 1e-5)
    got = fn(_t([[1.0, 1.0]]), _t([[2.0, 3.0]]), _t([[3.0, 5.0]]),
             _t([[False, True]], torch.bool), 0.5)
    expect_close(got, [[0.5, -2.0]],
                 "rewards [1, 1], V [2, 3], next V [3, 5], step 2 terminates, gamma 0.5 "
                 "(the next value 5 of the terminal step must be ignored)", 1e-5)
    r, v, nv, term, done = _batch(0)
    for gamma in (0.0, 0.97):
        got = fn(*_tensors(r, v, nv, term, done)[:4], gamma)
        expect_close(got, _delta_brute(r, nv, v, term, gamma),
                     f"a random [4, 9] batch with terminations, gamma={gamma}", 1e-5)


@register("actor_critic.gae", notebook=NB, reference=advantages.gae,
          hint="Work backwards in time, accumulating TD errors with a weight of gamma * lam per "
               "step, from nothing after the last step. A terminal step's TD error does not "
               "bootstrap; the accumulation restarts at every episode end (terminated or "
               "truncated).")
def _(fn: Callable) -> None:
    for lam, expected in ((0.0, [1.3, 0.45, -0.5]), (0.5, [1.40125, 0.225, -0.5]),
                          (0.95, [1.3192375, 0.0225, -0.5]), (1.0, [1.3, 0.0, -0.5])):
        got = fn(_t(W01_R), _t(W01_V), _t(W01_NEXT_V), _t(W01_TERM, torch.bool),
                 _t(W01_TERM, torch.bool), 0.9, lam)
        expect_close(got, [expected], f"W-01 with gamma=0.9, lam={lam}", 1e-5)
    got = fn(_t([[1.0, 1.0, 1.0, 1.0]]), _t([[0.0] * 4]), _t([[0.0, 4.0, 0.0, 0.0]]),
             _t([[False, False, False, True]], torch.bool),
             _t([[False, True, False, True]], torch.bool), 0.5, 1.0)
    expect_close(got, [[2.5, 3.0, 1.5, 1.0]],
                 "rewards [1, 1, 1, 1], V = 0, step 2 is truncated (its final state has value 4: "
                 "bootstrap, then stop the recursion), step 4 terminates, gamma 0.5, lam 1", 1e-5)
    what = f"{T1_WHAT}, V [0.5, 1, 2], lam 0.95 (with one step the advantage is the TD error)"
    got = call_with(fn, what, _t(T1_R), _t(T1_V), _t(T1_NEXT_V), _t(T1_TERM, torch.bool),
                    _t(T1_DONE, torch.bool), 0.9, 0.95)
    expect_close(got, [[3.2], [1.0], [-4.8]], what, 1e-5)
    r, v, nv, term, done = _batch(1)
    for gamma, lam in ((0.9, 0.8), (0.99, 0.95), (1.0, 0.5)):
        delta = _delta_brute(r, nv, v, term, gamma)
        got = fn(*_tensors(r, v, nv, term, done), gamma, lam)
        expect_close(got, _weighted_sum(delta, done, gamma * lam),
                     f"a random [4, 9] batch with terminations and truncations, gamma={gamma}, "
                     f"lam={lam} (expected: sum_l (gamma lam)^l delta_(t+l) up to the episode's "
                     "end)", 1e-4)


@register("actor_critic.n_step_returns", notebook=NB, reference=actor_critic.n_step_returns,
          hint="From each t, add up to n discounted rewards, stopping early at an episode end "
               "or at the rollout's end. Then, unless the last step you used terminated, add "
               "the value of the state after it, discounted once more.")
def _(fn: Callable) -> None:
    r, nv = _t([[1.0, 2.0, 3.0, 4.0]]), _t([[10.0, 20.0, 30.0, 40.0]])
    no = _t([[False] * 4], torch.bool)
    expect_close(fn(r, nv, no, no, 0.5, 2), [[7.0, 11.0, 15.0, 24.0]],
                 "rewards [1,2,3,4], next values [10,20,30,40], no episode end, gamma 0.5, n=2",
                 1e-5)
    term = _t([[False, True, False, False]], torch.bool)
    expect_close(fn(r, nv, term, term, 0.5, 3), [[2.0, 2.0, 15.0, 24.0]],
                 "the same, n=3, but step 2 terminates (no bootstrap, no reward from the next "
                 "episode)", 1e-5)
    expect_close(fn(r, nv, no, term, 0.5, 3), [[7.0, 12.0, 15.0, 24.0]],
                 "the same, n=3, but step 2 is truncated (bootstrap with its next value 20)", 1e-5)
    for n in (1, 3):
        what = f"{T1_WHAT}, n={n} (the window cannot go past the rollout's single step)"
        got = call_with(fn, what, _t(T1_R), _t(T1_NEXT_V), _t(T1_TERM, torch.bool),
                        _t(T1_DONE, torch.bool), 0.9, n)
        expect_close(got, [[3.7], [2.0], [-2.8]], what, 1e-5)
    r, _, nv, term, done = _batch(2)
    for gamma, n in ((0.9, 1), (0.9, 3), (0.99, 5), (0.8, 20)):
        got = fn(_t(r), _t(nv), _t(term, torch.bool), _t(done, torch.bool), gamma, n)
        expect_close(got, _n_step_brute(r, nv, term, done, gamma, n),
                     f"a random [4, 9] batch with terminations and truncations, gamma={gamma}, "
                     f"n={n}", 1e-4)


def _loss_inputs():
    """Logits [2, 3, 3], actions, advantages, values and returns [2, 3]; the last step masked."""
    logits = _t([[[0.0, 1.0, -1.0], [2.0, 0.0, 0.0], [0.5, 0.5, 0.5]],
                 [[1.0, -2.0, 0.0], [0.0, 0.0, 3.0], [9.0, -9.0, 0.0]]]).requires_grad_()
    actions = torch.tensor([[1, 0, 2], [2, 2, 1]])
    adv = _t([[1.0, -0.5, 2.0], [0.3, -1.2, 50.0]])
    values = _t([[0.5, 1.0, -1.0], [2.0, 0.0, 7.0]]).requires_grad_()
    returns = _t([[1.5, 0.0, 0.0], [1.0, 1.0, -30.0]])
    mask = _t([[1, 1, 1], [1, 1, 0]])
    return logits, actions, adv, values, returns, mask


def _expected_loss(logits, actions, adv, values, returns, mask, vf_coef, ent_coef):
    """Independent numpy computation of the loss parts and their gradients."""
    z = logits.detach().numpy().astype(float)
    a, A = actions.numpy(), adv.numpy().astype(float)
    V, R, m = values.detach().numpy(), returns.numpy(), mask.numpy().astype(float)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    logp = np.log(p)
    chosen = np.take_along_axis(logp, a[..., None], -1)[..., 0]
    H = -(p * logp).sum(-1)
    M = m.sum()
    parts = {"policy_loss": -(m * A * chosen).sum() / M,
             "value_loss": 0.5 * (m * (V - R) ** 2).sum() / M,
             "entropy": (m * H).sum() / M}
    loss = parts["policy_loss"] + vf_coef * parts["value_loss"] - ent_coef * parts["entropy"]
    onehot = np.eye(z.shape[-1])[a]
    g_pol = -(m * A)[..., None] * (onehot - p) / M
    g_ent = -(m[..., None] * p * (logp + H[..., None])) / M  # dH/dz
    return loss, parts, g_pol - ent_coef * g_ent, vf_coef * m * (V - R) / M


@register("actor_critic.a2c_loss", notebook=NB, reference=actor_critic.a2c_loss,
          hint="Three terms, each averaged over the valid (mask = 1) steps only. The policy "
               "term raises the log-probability of actions in proportion to their advantage; "
               "the critic term is half the squared error to the returns; the entropy is a "
               "bonus, so it lowers the loss. Advantages and returns are fixed labels: no "
               "gradient may flow through them.")
def _(fn: Callable) -> None:
    for vf_coef, ent_coef in ((0.5, 0.0), (1.0, 0.1)):
        logits, actions, adv, values, returns, mask = _loss_inputs()
        what = (f"a [2, 3] batch with 3 actions, the last step masked out, vf_coef={vf_coef}, "
                f"ent_coef={ent_coef}")
        loss, parts = _a2c_call(fn, what, logits, actions, adv, values, returns, mask, vf_coef,
                                ent_coef)
        exp_loss, exp_parts, g_logits, g_values = _expected_loss(
            logits, actions, adv, values, returns, mask, vf_coef, ent_coef)
        expect_true(isinstance(parts, dict) and set(exp_parts) <= set(parts),
                    f"{what}: the second return value must be a dict with keys "
                    f"{sorted(exp_parts)}, got {parts!r}")
        for key, val in exp_parts.items():
            expect_close(parts[key], val, f"{what}: parts['{key}']", 1e-5, 1e-5)
        expect_close(loss, exp_loss, f"{what}: the loss", 1e-5, 1e-5)
        loss.backward()
        expect_close(logits.grad, g_logits, f"{what}: d loss / d logits", 1e-5, 1e-5)
        expect_close(values.grad, g_values, f"{what}: d loss / d values", 1e-5, 1e-5)
    # Advantages and returns that still carry the critic's graph must be treated as constants.
    logits, actions, _, values, returns, mask = _loss_inputs()
    adv = returns - values  # depends on values through autograd
    targets = values + 1.0  # a bootstrapped target built from the same values
    loss, _ = _a2c_call(fn, "advantages and returns passed with their autograd graph", logits,
                        actions, adv, values, targets, mask, 0.5, 0.0)
    loss.backward()
    expect_close(values.grad, 0.5 * mask.numpy() * (-1.0) / float(mask.sum()),
                 "d loss / d values when advantages = returns - values and returns = values + 1 "
                 "are passed with their autograd graph (they must be detached: only the value "
                 "loss's own V may get gradient)", 1e-5, 1e-5)


def _a2c_call(fn: Callable, what: str, *args):
    """Call ``fn`` and check the result is (a scalar loss tensor with a gradient, a dict)."""
    out = call_with(fn, what, *args)
    expect_type(out, tuple, f"{what}: the result (loss, parts)", length=2)
    loss = out[0]
    expect_type(loss, torch.Tensor, f"{what}: the loss (first item)")
    expect_true(loss.ndim == 0, f"{what}: the loss must be a scalar tensor, got shape "
                                f"{tuple(loss.shape)}")
    expect_true(loss.requires_grad, f"{what}: the loss carries no gradient; keep it in torch "
                                    "(no .item(), no numpy) so that backward() reaches the "
                                    "network")
    expect_type(out[1], dict, f"{what}: parts (second item)")
    return out


# ---- the A2C update: one gradient step on a rollout, compared with the package's ----------

A2C_HINTS = {
    "actor_into_critic": "with vf_coef = 0 only the actor's loss is left, yet your update moved "
                         "the critic: either the advantages still carry the critic's graph "
                         "(compute them from V without gradient: torch.no_grad() or "
                         "values.detach()), or your critic term is not multiplied by "
                         "cfg.vf_coef",
    "actor": "the actor: GAE with cfg.gamma and cfg.lam from V(s_t) and V(s_t+1) of one "
             "forward pass on the T+1 observations, transposed to [N, T]; normalised over the "
             "valid steps (advantages.normalize(adv, mask)) only if "
             "cfg.normalize_advantages; policy loss = minus the masked "
             "mean of advantage * log pi(a_t|s_t)",
    "critic": "the critic: did you detach the value target? target = GAE advantages (before "
              "normalising) + V(s_t), both without gradient; the critic's term is "
              "cfg.vf_coef * 0.5 * masked mean of (V(s_t) - target)^2",
    "entropy": "the entropy is a bonus: loss = policy_loss + vf_coef * value_loss - ent_coef * "
               "entropy (masked mean of the policy's entropy)",
    "normalize": "normalise the advantages only if cfg.normalize_advantages",
    "truncation": "a time-limit truncation is not a termination: the TD error bootstraps with "
                  "V(s_t+1) unless ro.terminated; ro.dones (terminated, truncated or an "
                  "autoreset step) only cuts the GAE recursion",
    "zero_grad": "call optimizer.zero_grad() before backward(): gradients accumulate in .grad, "
                 "so leftovers from an earlier backward() get added to yours",
    "clip": "clip the gradient norm of all of net's parameters between backward() and step(): "
            "torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)",
    "adam": "the single SGD steps agree, so look at what changes over several updates with "
            "Adam: use the optimizer you are given, and do not rebuild or reset it",
}


@dataclass(frozen=True)
class _A2CCase:
    """One scenario of the A2C update check (the first that fails names the likely cause)."""

    what: str
    optim: str
    overrides: dict
    actor_hint: str
    critic_hint: str
    truncation: bool = False
    stale: bool = False
    n_updates: int = 1


_SGD = {"max_grad_norm": 1e6, "ent_coef": 0.0, "gamma": 0.9, "lam": 0.8}
A2C_CASES = (
    _A2CCase("one update with vf_coef=0 and normalize_advantages=False (plain SGD, lr 0.1, no "
             "clipping, no truncation)", "sgd",
             {**_SGD, "vf_coef": 0.0, "normalize_advantages": False}, "actor",
             "actor_into_critic"),
    _A2CCase("one update, plain SGD (lr 0.1), no clipping (max_grad_norm=1e6), gamma 0.9, "
             "lam 0.8, vf_coef 0.5, ent_coef 0, no truncation", "sgd", _SGD, "actor", "critic"),
    _A2CCase("the same with an entropy bonus (ent_coef=0.1)", "sgd", {**_SGD, "ent_coef": 0.1},
             "entropy", "critic"),
    _A2CCase("the same with normalize_advantages=False", "sgd",
             {**_SGD, "ent_coef": 0.1, "normalize_advantages": False}, "normalize", "critic"),
    _A2CCase("the same as the second case on a rollout with time-limit truncations", "sgd", _SGD,
             "truncation", "truncation", truncation=True),
    _A2CCase("the same, but the network still holds gradients from an earlier backward()",
             "sgd", _SGD, "zero_grad", "zero_grad", truncation=True, stale=True),
    _A2CCase("plain SGD with the gradient norm clipped at max_grad_norm=0.05", "sgd",
             {**_SGD, "max_grad_norm": 0.05}, "clip", "clip", truncation=True),
    _A2CCase("three consecutive updates with Adam and the course's Config (ent_coef 0.01)",
             "adam", {"ent_coef": 0.01}, "adam", "adam", truncation=True, n_updates=3),
)


def _synthetic_rollout(seed: int, truncation: bool, T: int = 12, N: int = 4
                       ) -> actor_critic.Rollout:
    """A rollout [T, N] shaped like :func:`rlcourse.actor_critic.collect`'s, with fixed ends.

    Env 0 terminates at step 4, env 2 at step 2; with ``truncation`` env 1 is truncated at
    step 6 and env 2 at step 9. The step after each end is an autoreset step (not valid,
    done, reward 0), as with gymnasium's next-step autoreset.
    """
    g = torch.Generator().manual_seed(seed)
    term, trunc = torch.zeros(T, N, dtype=torch.bool), torch.zeros(T, N, dtype=torch.bool)
    term[4, 0], term[2, 2] = True, True
    if truncation:
        trunc[6, 1], trunc[9, 2] = True, True
    valid = torch.ones(T, N, dtype=torch.bool)
    valid[1:] = ~(term | trunc)[:-1]
    rewards = (1.0 + 0.5 * torch.randn(T, N, generator=g)) * valid
    return actor_critic.Rollout(
        obs=torch.randn(T, N, 4, generator=g), actions=torch.randint(0, 2, (T, N), generator=g),
        rewards=rewards, terminated=term & valid, dones=term | trunc | ~valid, valid=valid,
        last_obs=torch.randn(N, 4, generator=g))


def _a2c_start(case: _A2CCase, cfg: actor_critic.Config, seed: int) -> tuple:
    """(net, optimizer): a small seeded ActorCritic and the case's optimizer."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = actor_critic.ActorCritic(4, 2, hidden=16)
    with torch.no_grad():  # a policy far from uniform, where the entropy has a gradient
        net.actor[-1].weight.mul_(100.0)
    if case.optim == "sgd":
        return net, torch.optim.SGD(net.parameters(), lr=0.1)
    return net, torch.optim.Adam(net.parameters(), lr=cfg.lr)


def _part(net: torch.nn.Module, prefix: str) -> dict:
    return {k: v for k, v in net.state_dict().items() if k.startswith(prefix)}


def _scale_hint(got: dict, ref: dict, start: dict) -> str:
    """Name a flipped sign or a rescaled step, from the parameter changes of one SGD step."""
    flat = lambda sd: torch.cat([sd[k].reshape(-1) - start[k].reshape(-1) for k in sorted(ref)])
    d_got, d_ref = flat(got), flat(ref)
    cos = float(d_got @ d_ref / (d_got.norm() * d_ref.norm() + 1e-12))
    ratio = float(d_got.norm() / (d_ref.norm() + 1e-12))
    if cos < -0.99:
        return "your step points the opposite way: check the sign of that term of the loss"
    if cos > 0.9999 and abs(ratio - 1) > 1e-3:
        return (f"your step has the right direction but {ratio:.3f} times the reference's "
                "length: check how the term is scaled (coefficients, 0.5, mean over the valid "
                "steps)")
    return ""


def _run_a2c_case(fn: Callable, case: _A2CCase, seed: int = 0) -> tuple:
    """Run ``fn`` and :func:`rlcourse.actor_critic.update` on copies of the same state.

    Compares the actor's parameters, then the critic's (each with its own likely cause);
    returns (your parts, the reference's parts) of the last update.
    """
    cfg = actor_critic.make_config(**case.overrides)
    start = _a2c_start(case, cfg, seed)
    ref, got = copy.deepcopy(start), copy.deepcopy(start)
    if case.stale:
        for net in (ref[0], got[0]):
            g = torch.Generator().manual_seed(seed + 1)
            for p in net.parameters():
                p.grad = torch.randn(p.shape, generator=g)
    for i in range(case.n_updates):
        ref_parts = actor_critic.update(*ref, _synthetic_rollout(seed + i, case.truncation), cfg)
        parts = call_with(fn, case.what, *got, _synthetic_rollout(seed + i, case.truncation),
                          cfg)
    init = start[0].state_dict()
    for prefix, key in (("actor.", case.actor_hint), ("critic.", case.critic_hint)):
        got_p, ref_p = _part(got[0], prefix), _part(ref[0], prefix)
        hint = A2C_HINTS[key]
        if case.optim == "sgd" and case.n_updates == 1 and cfg.max_grad_norm >= 1e6:
            hint = _scale_hint(got_p, ref_p, init) or hint
        name = prefix[:-1]
        expect_params_close(got_p, ref_p, f"{case.what}: parameters differ after your update "
                            f"(the {name}'s)", atol=1e-5, hint=hint)
    return parts, ref_parts


def _compare_parts(what: str, parts, ref_parts: dict) -> None:
    """The loss parts an update returns for the log, against the reference's."""
    expect_type(parts, dict, f"{what}: the result (a dict of the loss parts)")
    for key in ("policy_loss", "value_loss", "entropy"):
        expect_true(key in parts, f"{what}: the returned dict lacks {key!r}")
        expect_close(float(parts[key]), ref_parts[key], f"{what}: the returned {key} (the "
                     "parameters are right in every scenario)", atol=1e-4, rtol=1e-4)


@register("actor_critic.a2c_update", notebook=NB, reference=actor_critic.update,
          hint="One forward pass on the T+1 observations; GAE and the targets without "
               "gradient (transposed to [N, T]); normalise; your a2c_loss with mask = valid; "
               "zero_grad, backward, clip, step. The message names the first scenario that "
               "differs and the part of the network that moved differently.")
def _(fn: Callable) -> None:
    results = [(case.what, *_run_a2c_case(fn, case)) for case in A2C_CASES]
    for what, parts, ref_parts in results:
        _compare_parts(what, parts, ref_parts)
