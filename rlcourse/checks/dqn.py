"""Checks for notebook 04 (DQN): epsilon schedule, TD target, Double-DQN target, Huber loss,
and the staged build: replay buffer, loss on a batch, one full update step."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from rlcourse import dqn
from rlcourse.exercises import (
    call_with,
    expect_close,
    expect_params_close,
    expect_true,
    expect_type,
    register,
)

NB = "04_dqn"


def _t(x, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(x, dtype=dtype)


@register("dqn.epsilon_schedule", notebook=NB, reference=dqn.epsilon_schedule,
          hint="A straight line from `start` at step 0 to `end` at step decay_steps, then flat "
               "at `end` for ever after.")
def _(fn: Callable) -> None:
    cases = [((0, 1.0, 0.05, 100), 1.0), ((50, 1.0, 0.05, 100), 0.525),
             ((100, 1.0, 0.05, 100), 0.05), ((250, 1.0, 0.05, 100), 0.05),
             ((1, 1.0, 0.0, 4), 0.75), ((3, 0.5, 0.1, 4), 0.2), ((10**6, 0.5, 0.1, 4), 0.1),
             ((2, 0.2, 0.2, 10), 0.2)]
    for (step, start, end, decay), expected in cases:
        got = fn(step, start, end, decay)
        expect_close(got, expected, f"epsilon_schedule(step={step}, start={start}, end={end}, "
                                    f"decay_steps={decay})")


def _td_batch():
    rewards = _t([1.0, 1.0, 0.5, -2.0, 0.0])
    next_q = _t([[1.0, 3.0, 2.0], [5.0, 4.0, 0.0], [-1.0, -2.0, -0.5],
                 [2.0, 2.0, 7.0], [0.0, 10.0, 1.0]])
    terminated = _t([False, True, False, False, True], torch.bool)
    truncated = _t([False, False, True, False, True], torch.bool)
    return rewards, next_q, terminated, truncated


@register("dqn.td_target", notebook=NB, reference=dqn.td_target,
          hint="The target is the reward plus the discounted value of the best next action. "
               "Ask which flag means the next state has no future (only that one drops the "
               "bootstrap); a time limit does not end the task. Gamma multiplies the next value "
               "only.")
def _(fn: Callable) -> None:
    r, nq, te, tr = _td_batch()
    # row 0: plain step; row 1: terminated; row 2: truncated only (must bootstrap);
    # row 3: plain step with a negative reward; row 4: terminated and truncated together
    cases = [(0.9, [3.7, 1.0, 0.05, 4.3, 0.0]), (0.0, [1.0, 1.0, 0.5, -2.0, 0.0]),
             (1.0, [4.0, 1.0, 0.0, 5.0, 0.0])]
    for gamma, expected in cases:
        got = fn(r.clone(), nq.clone(), te.clone(), tr.clone(), gamma)
        expect_close(got, expected, f"td_target(rewards={r.tolist()}, next_q={nq.tolist()}, "
                                    f"terminated={te.tolist()}, truncated={tr.tolist()}, "
                                    f"gamma={gamma})", atol=1e-5)
    one = fn(_t([2.0]), _t([[0.0, -1.0]]), _t([False], torch.bool), _t([True], torch.bool), 0.5)
    expect_close(one, [2.0], "a single truncated transition with next_q=[[0, -1]], r=2, "
                             "gamma=0.5 (the max is 0, not -1)", atol=1e-6)


@register("dqn.double_dqn_target", notebook=NB, reference=dqn.double_dqn_target,
          hint="Two roles, two networks: the online network chooses the next action (its "
               "argmax), the target network says what that action is worth. Not the max of "
               "either table. Terminal steps do not bootstrap.")
def _(fn: Callable) -> None:
    r = _t([1.0, 0.0, 2.0, 1.0])
    online = _t([[1.0, 2.0, 0.0], [3.0, 0.0, 1.0], [0.0, 0.0, 5.0], [4.0, 1.0, 0.0]])
    target = _t([[6.0, 1.0, 0.0], [2.0, 8.0, 1.0], [9.0, 0.0, 3.0], [4.0, 9.0, 9.0]])
    te = _t([False, False, False, True], torch.bool)
    # online argmax: [1, 0, 2, 0]; target at those actions: [1, 2, 3, (terminal)]
    for gamma, expected in [(0.5, [1.5, 1.0, 3.5, 1.0]), (1.0, [2.0, 2.0, 5.0, 1.0])]:
        got = fn(r.clone(), online.clone(), target.clone(), te.clone(), gamma)
        expect_close(got, expected, f"double_dqn_target(rewards={r.tolist()}, next_q_online="
                                    f"{online.tolist()}, next_q_target={target.tolist()}, "
                                    f"terminated={te.tolist()}, gamma={gamma})", atol=1e-5)


@register("dqn.dqn_loss", notebook=NB, reference=dqn.dqn_loss,
          hint="Pick each row's Q-value at the action actually taken, and treat the targets as "
               "fixed labels (no gradient through them). Squared: half the squared error. "
               "Huber: quadratic for errors up to 1 in size, linear beyond, joined smoothly at "
               "|e| = 1. Average over the batch.")
def _(fn: Callable) -> None:
    q = _t([[1.0, 2.0], [0.0, -1.0], [3.0, 3.5], [0.2, 0.4]])
    a = _t([0, 1, 1, 0], torch.long)
    y = _t([1.5, 2.0, 0.5, 0.2])
    what = f"dqn_loss(q_values={q.tolist()}, actions={a.tolist()}, targets={y.tolist()}, huber="
    # errors Q(s,a) - y: [-0.5, -3.0, 3.0, 0.0] -> squared/2 [0.125, 4.5, 4.5, 0], Huber
    # [0.125, 2.5, 2.5, 0.0]
    expect_close(fn(q.clone(), a.clone(), y.clone(), False), 2.28125, what + "False)")
    expect_close(fn(q.clone(), a.clone(), y.clone(), True), 1.28125, what + "True)")
    small = fn(_t([[0.3, 0.0]]), _t([0], torch.long), _t([0.1]), True)
    expect_close(small, 0.02, "huber=True with a single error of 0.2 (inside the quadratic "
                              "zone: 0.5 * 0.2^2)")
    # errors around the switch point |e| = 1: 0.9 and 1.2 on either side, 1.5 and 2.5 between
    # the two zones' old test values, so any other threshold gives a different loss
    errors = [0.9, -1.2, 1.5, -2.5]
    zone = [0.5 * e ** 2 if abs(e) <= 1 else abs(e) - 0.5 for e in errors]
    for err, want in zip(errors, zone):
        got = fn(_t([[0.0, err]]), _t([1], torch.long), _t([0.0]), True)
        expect_close(got, want, f"huber=True with a single error of {err} (the quadratic zone "
                                "is |e| <= 1, the linear zone |e| - 0.5 beyond it)")
    expect_close(fn(_t([[e, 0.0] for e in errors]), _t([0] * 4, torch.long), _t([0.0] * 4),
                    True), sum(zone) / 4, f"huber=True on the batch of errors {errors}")
    for huber, expected_grad in [(False, [[-0.125, 0.0], [0.0, -0.75], [0.0, 0.75], [0.0, 0.0]]),
                                 (True, [[-0.125, 0.0], [0.0, -0.25], [0.0, 0.25], [0.0, 0.0]])]:
        qg = q.clone().requires_grad_(True)
        yg = y.clone().requires_grad_(True)
        loss = fn(qg, a, yg, huber)
        expect_true(isinstance(loss, torch.Tensor) and loss.ndim == 0,
                    f"the loss must be a scalar torch tensor, got {type(loss).__name__} "
                    f"{tuple(getattr(loss, 'shape', ()))}")
        expect_true(loss.requires_grad, "the loss carries no gradient: keep the computation in "
                                        "torch (no .item(), no numpy)")
        loss.backward()
        expect_close(qg.grad, expected_grad, f"gradient of the loss (huber={huber}) with "
                                             "respect to q_values (only the taken actions get "
                                             "one)")
        expect_true(yg.grad is None or float(yg.grad.abs().sum()) == 0.0,
                    "a gradient flowed into the targets: DQN is a semi-gradient method, so use "
                    "targets.detach() (the target is a fixed label)")


# ---- the staged build: buffer -> loss on a batch -> one full update -------------------------

def _vector_steps():
    """Vector steps of 3 envs (obs_dim 2) that fill a capacity-5 buffer and wrap it twice.

    Each transition's reward is its arrival number (1, 2, ...), so a sampled batch shows which
    transition sits in which slot; some rows are invalid (autoreset steps), some terminated,
    some truncated only.
    """
    steps, label = [], 0
    valid_rows = [[True, True, True], [True, False, True], [True, True, True],
                  [False, True, True], [True, True, False], [True, True, True]]
    for t, valid in enumerate(valid_rows):
        rewards = np.arange(label + 1, label + 4, dtype=np.float32)
        label += 3
        obs = np.stack([rewards, -rewards], axis=1).astype(np.float32)
        actions = np.array([t % 2, 1, 0], dtype=np.int64)
        term = np.array([t == 2, False, t == 4])
        trunc = np.array([False, t in (1, 3), t == 4])
        steps.append((obs, actions, rewards, obs + 0.5, term, trunc, np.array(valid)))
    return steps


def _compare_batches(got, ref, what: str) -> None:
    expect_type(got, dict, what)
    expect_true(set(got) >= set(ref), f"{what}: the batch needs the keys {sorted(ref)}, got "
                                      f"{sorted(got)}")
    for key, want in ref.items():
        expect_true(isinstance(got[key], torch.Tensor),
                    f"{what}: batch[{key!r}] should be a torch tensor, got "
                    f"{type(got[key]).__name__}")
        expect_close(got[key].float(), want.float(), f"{what}, batch[{key!r}]")


@register("dqn.ReplayBuffer", notebook=NB, reference=dqn.ReplayBuffer,
          hint="Write row i of a vector step at slot `pos`, then move `pos` on by one and wrap "
               "it to 0 past the last slot; skip rows whose `valid` flag is False; store "
               "`terminated` and `truncated` separately; `len` stops growing at the capacity. "
               "In sample, call rng.integers(0, len(self), size=batch_size) once and return "
               "those slots' rows as tensors.")
def _(cls: Callable) -> None:
    ref = dqn.ReplayBuffer(5, 2)
    got = call_with(cls, "ReplayBuffer(capacity=5, obs_dim=2)", 5, 2)
    added = 0
    for t, step in enumerate(_vector_steps()):
        ref.add(*step)
        call_with(got.add, f"add (vector step {t})", *step)
        added += int(step[-1].sum())
        what = (f"after {t + 1} vector steps ({added} valid transitions, rewards = arrival "
                "numbers, capacity 5)")
        expect_close(call_with(len, "len(buffer)", got), len(ref), f"{what}: len(buffer)")
        for size, seed in ((len(ref), t), (max(1, len(ref) // 2), 100 + t)):
            want = ref.sample(size, np.random.default_rng(seed))
            have = call_with(got.sample, f"sample({size}, rng)", size,
                             np.random.default_rng(seed))
            _compare_batches(have, want, f"{what}: sample({size}, np.random.default_rng("
                                         f"{seed}))")


def _loss_setup(seed: int = 0):
    """Two different small Q-nets (online, target) and a batch with every kind of ending."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    q_net = dqn.QNetwork(3, 2, (8,))
    target_net = dqn.QNetwork(3, 2, (8,))
    b = 6
    batch = {"obs": torch.randn(b, 3, generator=gen),
             "actions": torch.tensor([0, 1, 1, 0, 1, 0]),
             "rewards": torch.tensor([1.0, -0.5, 2.0, 0.0, 1.0, 0.3]),
             "next_obs": torch.randn(b, 3, generator=gen),
             "terminated": torch.tensor([False, True, False, False, True, False]),
             "truncated": torch.tensor([False, False, True, False, True, True])}
    return q_net, target_net, batch


def _grads(net) -> dict[str, torch.Tensor]:
    return {n: (p.grad if p.grad is not None else torch.zeros_like(p))
            for n, p in net.named_parameters()}


@register("dqn.batch_loss", notebook=NB, reference=dqn.batch_loss,
          hint="Q-values come from the online net on batch['obs']; the targets come from the "
               "TARGET net on batch['next_obs'] inside torch.no_grad(), masked by "
               "batch['terminated'] only; the loss is dqn_loss on Q(s, a) of the actions "
               "taken (gather along the action axis, dim 1).")
def _(fn: Callable) -> None:
    for gamma, huber in ((0.9, False), (0.5, True)):
        q_net, target_net, batch = _loss_setup()
        ref_q, ref_t = copy.deepcopy(q_net), copy.deepcopy(target_net)
        what = f"batch_loss(gamma={gamma}, huber={huber}) on a batch of 6 (rows 1 and 4 " \
               "terminated, rows 2, 4 and 5 truncated)"
        out = call_with(fn, what, q_net, target_net, {k: v.clone() for k, v in batch.items()},
                        gamma, huber)
        expect_type(out, tuple, what, length=3)
        loss, q, y = out
        want_loss, want_q, want_y = dqn.batch_loss(ref_q, ref_t, batch, gamma, huber)
        expect_close(y, want_y, f"{what}: targets", atol=1e-5)
        expect_true(not y.requires_grad, f"{what}: the targets carry a gradient; compute them "
                                         "under torch.no_grad() (they are fixed labels)")
        expect_close(q, want_q.detach(), f"{what}: q_values (the online net on batch['obs'])",
                     atol=1e-5)
        expect_close(loss, want_loss.detach(), f"{what}: loss", atol=1e-5)
        expect_true(isinstance(loss, torch.Tensor) and loss.requires_grad,
                    f"{what}: the loss must be a torch scalar with a gradient")
        loss.backward()
        want_loss.backward()
        expect_params_close(_grads(q_net), _grads(ref_q), f"{what}: gradients of the online net",
                            hint="Only Q(s, a) should carry a gradient; a target computed "
                                 "with gradients, or from the online net, changes it.")
        expect_true(all(p.grad is None or float(p.grad.abs().sum()) == 0.0
                        for p in target_net.parameters()),
                    f"{what}: a gradient reached the target net; its values are labels")


def _update_setup():
    """Online net, target copy, Adam, a filled buffer and a config with active clipping."""
    torch.manual_seed(3)
    q_net = dqn.QNetwork(3, 2, (16,))
    target_net = copy.deepcopy(q_net)
    buf = dqn.ReplayBuffer(64, 3)
    gen = np.random.default_rng(5)
    for _ in range(10):
        obs = gen.normal(size=(4, 3)).astype(np.float32)
        buf.add(obs, gen.integers(0, 2, 4), gen.normal(size=4).astype(np.float32),
                gen.normal(size=(4, 3)).astype(np.float32), gen.random(4) < 0.2,
                gen.random(4) < 0.3)
    cfg = dqn.make_config(num_envs=4, batch_size=8, grad_steps=2, target_update=8, gamma=0.9,
                          lr=1e-2, max_grad_norm=0.5, huber=False)
    return q_net, target_net, torch.optim.Adam(q_net.parameters(), lr=cfg.lr), buf, cfg


_UPDATE_HINT = ("Per gradient step: sample, loss, optimizer.zero_grad(), loss.backward(), "
                "clip_grad_norm_(q_net.parameters(), cfg.max_grad_norm), optimizer.step(); "
                "common causes: gradients not zeroed (they accumulate), step before backward, "
                "no clipping, or a target that uses the online net / masks truncations.")
_SYNC_HINT = ("The target net must be a copy of the online net made exactly when a multiple "
              "of cfg.target_update lies in (steps_before, steps]: not every call, not never, "
              "and after the gradient steps.")


@register("dqn.update_step", notebook=NB, reference=dqn.update_step,
          hint=_UPDATE_HINT + " " + _SYNC_HINT)
def _(fn: Callable) -> None:
    mine, ref = _update_setup(), _update_setup()
    rng_mine, rng_ref = np.random.default_rng(11), np.random.default_rng(11)
    for k in range(5):
        before, steps = 4 * k, 4 * (k + 1)
        what = (f"update {k + 1} of 5 (steps_before={before}, steps={steps}, grad_steps=2, "
                f"target_update=8, max_grad_norm=0.5)")
        stats = call_with(fn, what, *mine[:4], rng_mine, mine[4], before, steps)
        want = dqn.update_step(*ref[:4], rng_ref, ref[4], before, steps)
        # the target first: update 1 crosses no sync boundary, so a wrong gradient step shows
        # up there in the online net, and a wrong sync rule here, in the target net
        expect_params_close(mine[1], ref[1], f"{what}: target net", atol=1e-5, hint=_SYNC_HINT)
        expect_params_close(mine[0], ref[0], f"{what}: online net", atol=1e-5,
                            hint=_UPDATE_HINT)
        expect_type(stats, dict, f"{what}: the returned diagnostics")
        for key, value in want.items():
            expect_true(key in stats, f"{what}: the diagnostics lack {key!r}")
            expect_close(stats[key], value, f"{what}: diagnostic {key!r} (mean over the "
                                            "gradient steps)", atol=1e-4, rtol=1e-4)
