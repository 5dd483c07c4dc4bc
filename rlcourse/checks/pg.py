"""Checks for the exercises of notebook 05 (policy gradients: REINFORCE and baselines)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rlcourse import pg
from rlcourse.exercises import (
    CheckFailure,
    call_with,
    expect_close,
    expect_params_close,
    expect_true,
    expect_type,
    register,
)

NB = "05_policy_gradients"


def _t(x, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(x, dtype=dtype)


def _np(x) -> np.ndarray:
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=float)


@register("pg.score_function", notebook=NB, reference=pg.score_function,
          hint="d log softmax(z)[a] / d z_k = 1[k == a] - softmax(z)_k: a one-hot of the action "
               "minus the whole probability vector (every logit, not only the chosen one). Use "
               "torch.softmax (stable for large logits) and "
               "torch.nn.functional.one_hot(action, K).")
def _(fn: Callable) -> None:
    expect_close(fn(_t([0.0, 0.0]), torch.tensor(0)), [0.5, -0.5],
                 "logits=[0, 0], action=0")
    z = [1.0, 2.0, 3.0]
    pi = np.exp(z) / np.exp(z).sum()
    expect_close(fn(_t(z), torch.tensor(2)), np.eye(3)[2] - pi, "logits=[1, 2, 3], action=2",
                 atol=1e-8)
    batch = _t([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    expect_close(fn(batch, torch.tensor([0, 1])),
                 [np.eye(3)[0] - pi, np.eye(3)[1] - 1 / 3],
                 "a batch: logits=[[1, 2, 3], [0, 0, 0]], actions=[0, 1]", atol=1e-8)
    expect_close(fn(_t([1000.0, 0.0, -1000.0]), torch.tensor(1)), [-1.0, 1.0, 0.0],
                 "large logits=[1000, 0, -1000], action=1 (overflow-safe softmax needed)")
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 4, 3, dtype=torch.float64, generator=gen)
    actions = torch.randint(0, 3, (2, 4), generator=gen)
    before = logits.clone()
    got = fn(logits, actions)
    expect_true(torch.equal(logits, before), "your function changed its input logits in place")
    want = np.zeros((2, 4, 3))
    for i in range(2):
        for j in range(4):
            z = logits[i, j].clone().requires_grad_(True)
            torch.log_softmax(z, -1)[actions[i, j]].backward()
            want[i, j] = z.grad.numpy()
    expect_close(got, want, "random logits of shape [2, 4, 3] (compared with autograd)",
                 atol=1e-8)


@register("pg.reward_to_go", notebook=NB, reference=pg.reward_to_go,
          hint="Each row is one episode. Walk backwards along the time axis: G = 0 after the "
               "last step, then G[:, t] = rewards[:, t] + gamma * G[:, t + 1]. G_t starts at "
               "time t (rewards[:, t] is not discounted) and never reaches into another row.")
def _(fn: Callable) -> None:
    cases = [([[1.0, 1.0, 1.0]], 0.5, [[1.75, 1.5, 1.0]]),
             ([[0.0, 0.0, 1.0]], 0.9, [[0.81, 0.9, 1.0]]),
             ([[1.0, 2.0, 3.0, 0.0, 0.0], [4.0, 5.0, 0.0, 0.0, 0.0]], 1.0,
              [[6.0, 5.0, 3.0, 0.0, 0.0], [9.0, 5.0, 0.0, 0.0, 0.0]]),
             ([[3.0, -1.0, 2.0], [1.0, 1.0, 1.0]], 0.0, [[3.0, -1.0, 2.0], [1.0, 1.0, 1.0]]),
             ([[2.0, -1.0, 4.0], [1.0, 0.0, 0.0]], 0.5, [[2.5, 1.0, 4.0], [1.0, 0.0, 0.0]]),
             ([[5.0]], 0.9, [[5.0]])]
    for rewards, gamma, expected in cases:
        r = _t(rewards)
        got = fn(r, gamma)
        expect_true(torch.equal(r, _t(rewards)), "your function changed rewards in place")
        expect_close(got, expected, f"rewards={rewards}, gamma={gamma}")


@register("pg.reinforce_loss", notebook=NB, reference=pg.reinforce_loss,
          hint="loss = -(1/B) * sum over b and t of mask * weights.detach() * logp, with B = "
               "logp.shape[0] the number of episodes (not the number of steps). Minus, because "
               "optimisers minimise; detach, because the weights are constants.")
def _(fn: Callable) -> None:
    one = torch.ones(1, 2, dtype=torch.float64)
    expect_close(fn(_t([[-0.5, -1.0]]), _t([[2.0, 1.0]]), one), 2.0,
                 "logp=[[-0.5, -1]], weights=[[2, 1]], mask=[[1, 1]]")
    logp = _t([[-1.0, -2.0, -3.0], [-0.5, -0.5, -9.0]]).requires_grad_(True)
    weights = _t([[1.0, 2.0, 3.0], [4.0, 4.0, 100.0]]).requires_grad_(True)
    mask = _t([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    what = ("logp=[[-1, -2, -3], [-0.5, -0.5, -9]], weights=[[1, 2, 3], [4, 4, 100]], "
            "mask=[[1, 1, 1], [1, 1, 0]] (the last step of episode 2 is padding)")
    loss = fn(logp, weights, mask)
    expect_true(isinstance(loss, torch.Tensor) and loss.ndim == 0,
                f"{what}: expected a scalar tensor, got {type(loss).__name__} "
                f"{tuple(getattr(loss, 'shape', ()))}")
    expect_close(loss, 9.0, what)
    loss.backward()
    expect_close(logp.grad, -_np(mask * weights) / 2,
                 f"{what}: the gradient with respect to logp (should be -mask * weights / B)")
    expect_true(weights.grad is None or float(weights.grad.abs().max()) == 0.0,
                f"{what}: a gradient flowed into the weights; treat returns/advantages as "
                "constants (weights.detach())")
    lp = _t([[-1.0, -1.0]])
    up = fn(_t([[-0.5, -1.0]]), _t([[1.0, 1.0]]), _t([[1.0, 1.0]]))
    base = fn(lp, _t([[1.0, 1.0]]), _t([[1.0, 1.0]]))
    expect_true(float(up) < float(base),
                "sign test: raising log pi of an action with a positive weight must lower the "
                f"loss; got loss {float(base):.3f} -> {float(up):.3f}")


@register("pg.optimal_baseline", notebook=NB, reference=pg.optimal_baseline,
          hint="c* = sum_n |g_n|^2 R_n / sum_n |g_n|^2, where |g_n|^2 is the squared norm of "
               "sample n's whole score vector (flatten all but the first axis).")
def _(fn: Callable) -> None:
    scores = _t([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    expect_close(fn(scores, _t([1.0, 2.0, 3.0])), 15 / 7,
                 "scores=[[1, 0], [0, 2], [1, 1]], returns=[1, 2, 3]")
    expect_close(fn(_t([[3.0, 4.0], [0.0, 5.0], [-5.0, 0.0]]), _t([1.0, 4.0, 7.0])), 4.0,
                 "scores with equal norms [[3, 4], [0, 5], [-5, 0]], returns=[1, 4, 7] "
                 "(equal weights: the mean return)")
    gen = torch.Generator().manual_seed(3)
    g3 = torch.randn(50, 3, 2, dtype=torch.float64, generator=gen)
    r = 5.0 + torch.randn(50, dtype=torch.float64, generator=gen) * 2
    sq = g3.reshape(50, -1).pow(2).sum(1)
    expect_close(fn(g3, r), float((sq * r).sum() / sq.sum()),
                 "random scores of shape [50, 3, 2] (one 3x2 score matrix per sample)")
    c = float(_np(fn(g3, r)))
    second_moment = lambda b: float(((r - b)[:, None, None] * g3).pow(2).sum())
    expect_true(second_moment(c) <= min(second_moment(c - 0.05), second_moment(c + 0.05)),
                f"your c = {c:.4f} does not minimise sum_n |(R_n - c) g_n|^2 on random data")


# ---- REINFORCE, built in two stages: collect a batch, then update ---------------------------

COLLECT_HINTS = {
    "actions": "call act(obs) exactly once per vector step, on the observations the envs just "
               "returned, and reset the envs once at the start with envs.reset() (no seed: "
               "they are seeded already)",
    "valid": "valid comes from a deeprl.StepMask: the step after an episode ends is the "
             "autoreset step, not a transition",
    "keep": "keep = valid & (this env has finished fewer than episodes_per_env episodes so "
            "far); count an episode as finished on a kept step that terminated or truncated. "
            "Keeping every episode finished before the slowest env is done favours short "
            "episodes (notebook 05, section 6)",
    "length": "stop as soon as every env has finished its first episodes_per_env episodes",
}


def _sampling_policy(seed: int, obs_dim: int = 4, n_actions: int = 2):
    """A fixed random policy network and act(obs) sampling from it with its own generator."""
    from rlcourse import deeprl

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = deeprl.mlp([obs_dim, 16, n_actions], out_gain=0.5)
    return pg._sampler(net, "cpu", torch.Generator().manual_seed(seed))


def _first_difference(got: np.ndarray, ref: np.ndarray) -> tuple[int, int] | None:
    """(step, env) of the first entry where two [T, N] arrays differ, over their common T."""
    t = min(len(got), len(ref))
    diff = np.argwhere(got[:t] != ref[:t])
    return (int(diff[0][0]), int(diff[0][1])) if len(diff) else None


def _compare_rollouts(got, ref: dict, what: str) -> None:
    """Exact comparison of a learner's rollout dict with the reference's, stage by stage."""
    expect_type(got, dict, f"{what}: the result")
    missing = [k for k in pg.ROLLOUT_KEYS if k not in got]
    expect_true(not missing, f"{what}: your dict lacks the keys {missing} (it needs all of "
                             f"{list(pg.ROLLOUT_KEYS)})")
    arrays = {k: np.asarray(got[k]) for k in pg.ROLLOUT_KEYS}
    n = ref["rewards"].shape[1]
    for key in pg.ROLLOUT_KEYS:
        a, r = arrays[key], ref[key]
        expect_true(a.ndim == r.ndim and a.shape[1:] == r.shape[1:],
                    f"{what}: {key} has shape {a.shape}; expected [T, {n}]"
                    + (", obs_dim]" if r.ndim == 3 else ""))
    for key in ("actions", "rewards", "valid", "keep"):
        where = _first_difference(arrays[key], ref[key])
        if where is not None:
            stage = "actions" if key == "rewards" else key
            raise CheckFailure(f"{what}: {key} differs from the reference first at step "
                               f"{where[0]}, env {where[1]}: {COLLECT_HINTS[stage]}")
    expect_true(len(arrays["rewards"]) == len(ref["rewards"]),
                f"{what}: your rollout has {len(arrays['rewards'])} steps, the reference "
                f"{len(ref['rewards'])}: {COLLECT_HINTS['length']}")
    for key in pg.ROLLOUT_KEYS:
        expect_true(np.array_equal(arrays[key], ref[key]),
                    f"{what}: {key} differs from the reference (the actions, rewards, valid "
                    "and keep agree): store obs before the step and next_obs after it")


@register("pg.collect_episodes", notebook=NB, reference=pg.collect_episodes,
          hint="Reset once, then loop: actions = act(obs); step; valid = step_mask.step(te, tu);"
               " keep = valid & (finished < episodes_per_env); finished += (te | tu) & keep; "
               "append everything; stop when every env has finished episodes_per_env episodes."
               " Stack the lists into arrays [T, N].")
def _(fn: Callable) -> None:
    from rlcourse import deeprl

    for n_envs, k, seed in ((4, 1, 0), (8, 1, 1), (3, 2, 7)):
        what = (f"CartPole-v1, {n_envs} envs from deeprl.make_vec_env(..., seed={seed}), "
                f"episodes_per_env={k}, a fixed random policy")
        envs_ref, envs_got = (deeprl.make_vec_env("CartPole-v1", n_envs, seed) for _ in "ab")
        ref = pg.collect_episodes(envs_ref, _sampling_policy(seed), k)
        got = call_with(fn, what, envs_got, _sampling_policy(seed), k)
        envs_ref.close()
        envs_got.close()
        _compare_rollouts(got, ref, what)


UPDATE_HINTS = {
    "weights": "check the weights of the log-probabilities: the reward-to-go with cfg.gamma "
               "(not the episode's total return at every step), zero on padding, minus V(s_t) "
               "computed without gradient, then rlcourse.advantages.normalize(adv, mask); "
               "and the loss: minus the sum over time, averaged over the episodes",
    "config": "follow cfg: no value baseline and no value steps when cfg.baseline == 'none', "
              "normalise only if cfg.normalize_advantages",
    "truncation": "an episode cut by the time limit did not end: add gamma * V(final_obs) "
                  "to its last reward before the reward-to-go (pg.bootstrap_truncated); "
                  "terminated episodes get nothing",
    "zero_grad": "call zero_grad() before every backward(): gradients accumulate in .grad, "
                 "so leftovers from an earlier backward() get added to yours",
    "clip": "clip the policy's gradient norm between backward() and step(): "
            "torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)",
    "adam": "the single SGD updates agree, so look at what changes over several updates with "
            "Adam: use the optimizers you are given, and do not rebuild or reset them",
    "value": "the value network: cfg.value_steps steps, each zero_grad, backward and step on "
             "0.5 * masked mean of (V(s_t) - return_t)^2, with the returns of the policy step "
             "(bootstrapped at truncations) as fixed targets",
}


@dataclass(frozen=True)
class _UpdateCase:
    """One scenario of the REINFORCE update check (the first that fails names the cause)."""

    what: str
    optim: str
    overrides: dict
    hint: str
    truncated: bool = False
    stale: bool = False
    n_updates: int = 1


_SGD_CFG = {"max_grad_norm": 1e6, "value_steps": 3, "gamma": 0.9}
UPDATE_CASES = (
    _UpdateCase("one update, plain SGD (lr 0.1), no clipping (max_grad_norm=1e6), gamma 0.9, "
                "no truncated episode", "sgd", _SGD_CFG, "weights"),
    _UpdateCase("the same with baseline='none', normalize_advantages=False", "sgd",
                {**_SGD_CFG, "baseline": "none", "normalize_advantages": False}, "config"),
    _UpdateCase("the first case with two episodes truncated by the time limit", "sgd", _SGD_CFG,
                "truncation", truncated=True),
    _UpdateCase("the first case, but the networks still hold gradients from an earlier "
                "backward()", "sgd", _SGD_CFG, "zero_grad", truncated=True, stale=True),
    _UpdateCase("plain SGD with the policy's gradient norm clipped at max_grad_norm=0.05", "sgd",
                {**_SGD_CFG, "max_grad_norm": 0.05}, "clip", truncated=True),
    _UpdateCase("three consecutive updates with Adam and the course's Config", "adam",
                {"value_steps": 3}, "adam", truncated=True, n_updates=3),
)


def _episode_batch(seed: int, truncated: bool) -> pg.EpisodeBatch:
    """Five padded episodes (lengths 7, 3, 10, 5, 8; obs_dim 4; 2 actions), rewards near 1."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 3, 10, 5, 8])
    mask = (torch.arange(10)[None, :] < lengths[:, None]).float()
    obs = torch.randn(5, 10, 4, generator=g) * mask[..., None]
    actions = torch.randint(0, 2, (5, 10), generator=g) * mask.long()
    rewards = (1.0 + 0.5 * torch.randn(5, 10, generator=g)) * mask
    trunc = torch.tensor([False, True, False, False, True]) if truncated else torch.zeros(
        5, dtype=torch.bool)
    return pg.EpisodeBatch(obs, actions, rewards, mask, trunc, torch.randn(5, 4, generator=g))


def _networks_and_optimizers(case: _UpdateCase, cfg: pg.Config, seed: int) -> tuple:
    """(policy, value, (policy optimizer, value optimizer)), small and seeded."""
    from rlcourse import deeprl

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        policy = deeprl.mlp([4, 16, 2], out_gain=0.5)
        value = deeprl.mlp([4, 16, 1])
    if case.optim == "sgd":
        opts = (torch.optim.SGD(policy.parameters(), lr=0.1),
                torch.optim.SGD(value.parameters(), lr=0.1))
    else:
        opts = (torch.optim.Adam(policy.parameters(), lr=cfg.lr),
                torch.optim.Adam(value.parameters(), lr=cfg.value_lr))
    return policy, value, opts


def _add_stale_gradients(policy: torch.nn.Module, value: torch.nn.Module, seed: int) -> None:
    """Fill .grad as an earlier backward() would have (copy.deepcopy does not copy .grad)."""
    g = torch.Generator().manual_seed(seed + 1)
    for p in [*policy.parameters(), *value.parameters()]:
        p.grad = torch.randn(p.shape, generator=g)


def _count_backward(net: torch.nn.Module) -> list:
    """A list that grows by one each time a backward pass reaches ``net``'s first parameter."""
    calls: list = []
    next(net.parameters()).register_hook(lambda grad: calls.append(1))
    return calls


def _flat_delta(net: torch.nn.Module, before: torch.Tensor) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()]) - before


def _direction_hint(got: torch.Tensor, ref: torch.Tensor, clipped: bool) -> str:
    """Name a flipped sign or (without clipping) a rescaled step, from two SGD steps."""
    cos = float(got @ ref / (got.norm() * ref.norm() + 1e-12))
    ratio = float(got.norm() / (ref.norm() + 1e-12))
    if cos < -0.99:
        return ("your step points the opposite way: the loss is minus the weighted "
                "log-probabilities (optimisers minimise)")
    if not clipped and cos > 0.9999 and abs(ratio - 1) > 1e-3:
        return (f"your step has the right direction but {ratio:.3f} times the reference's "
                "length: the loss sums over the steps of each episode and averages over the "
                "episodes (divide by B, not by the number of real steps)")
    return ""


def _run_update_case(fn: Callable, case: _UpdateCase, seed: int = 0) -> None:
    """Run ``fn`` and :func:`rlcourse.pg.update` on copies of the same state; compare them.

    Copies of the same networks, optimizers and batches; compared: the parameters, how often
    a backward pass reached the value network, and the returned numbers.
    """
    cfg = pg.make_config(**case.overrides)
    start = _networks_and_optimizers(case, cfg, seed)
    ref, got = copy.deepcopy(start), copy.deepcopy(start)
    if case.stale:
        _add_stale_gradients(*ref[:2], seed)
        _add_stale_gradients(*got[:2], seed)
    before = {name: torch.cat([p.detach().reshape(-1) for p in net.parameters()])
              for name, net in (("policy", start[0]), ("value", start[1]))}
    calls_ref, calls_got = _count_backward(ref[1]), _count_backward(got[1])
    for i in range(case.n_updates):
        ref_stats = pg.update(*ref, _episode_batch(seed + i, case.truncated), cfg)
        stats = call_with(fn, case.what, *got, _episode_batch(seed + i, case.truncated), cfg)
    hint = UPDATE_HINTS[case.hint]
    if case.optim == "sgd" and case.n_updates == 1:
        hint = _direction_hint(_flat_delta(got[0], before["policy"]),
                               _flat_delta(ref[0], before["policy"]),
                               cfg.max_grad_norm < 1e6) or hint
    expect_params_close(got[0], ref[0], f"{case.what}: the policy's parameters differ from "
                        "the reference's after your update", atol=1e-5, hint=hint)
    expect_true(len(calls_got) <= len(calls_ref),
                f"{case.what}: the policy's loss sent gradients into the value network (a "
                f"backward pass reached it {len(calls_got)} times, {len(calls_ref)} expected): "
                "compute the baseline V(s_t) without gradient (torch.no_grad() or .detach())")
    expect_params_close(got[1], ref[1], f"{case.what}: the value network's parameters differ "
                        "from the reference's after your update", atol=1e-5,
                        hint=UPDATE_HINTS["zero_grad" if case.stale else "value"])
    expect_type(stats, dict, f"{case.what}: the result (a dict of floats for the log)")
    missing = [k for k in pg.STATS_KEYS if k not in stats]
    expect_true(not missing, f"{case.what}: the returned dict lacks {missing}")
    for key in pg.STATS_KEYS:
        expect_close(float(stats[key]), ref_stats[key], f"{case.what}: the logged {key} (the "
                     "parameters are right)", atol=1e-4, rtol=1e-4)


@register("pg.reinforce_update", notebook=NB, reference=pg.update,
          hint="Follow the order of the contract: bootstrap truncated episodes, reward-to-go "
               "returns, baseline without gradient, normalise, policy loss; zero_grad, "
               "backward, clip, step; then the value steps. The message names the first "
               "scenario that differs.")
def _(fn: Callable) -> None:
    for case in UPDATE_CASES:
        _run_update_case(fn, case)
