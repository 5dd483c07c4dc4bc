"""PPO on the probe environments (notebook 07): does an update learn what it must, and which
probe catches which bug?

:func:`staged_update` is :func:`rlcourse.ppo.update` (PPO-clip, joint loss) written from the
three parts notebook 07 builds: :func:`rlcourse.ppo.minibatch_indices`,
:func:`rlcourse.ppo.minibatch_loss` and the optimiser step. With the default parts it gives the
same parameters as ``ppo.update``, bit for bit. :data:`PLANTED_BUGS` are update functions with
one classic mistake each, and :func:`probe_run` trains any update function on one probe and
compares the critic with the probe's exact values and the policy with the right action.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rlcourse import ppo
from rlcourse.probes import PROBE_IDS, make_probe
from rlcourse.validation import check_positive_int

Tensor = torch.Tensor

#: Settings of a probe run: PPO's code with a small network, a short budget (4 updates of 128
#: steps), a constant learning rate and no stop at "solved" (a probe is "solved" by chance
#: long before the critic has learnt anything).
PROBE_SETTINGS = {"num_envs": 4, "rollout_steps": 32, "total_steps": 512, "epochs": 8,
                  "minibatches": 2, "lr": 5e-3, "anneal_lr": False, "stop_when_solved": False,
                  "hidden": 16}
VALUE_TOL = 0.2    # |V(s) - V*(s)| allowed after a probe run
POLICY_MIN = 0.9   # the probability the policy must give the right action


def staged_update(agent: ppo.ActorCritic, opt: torch.optim.Optimizer, ro: ppo.Rollout,
                  adv: Tensor, targets: Tensor, cfg: ppo.Config, generator: torch.Generator,
                  beta: float = 0.0, *, loss_fn: Callable = ppo.minibatch_loss,
                  indices_fn: Callable = ppo.minibatch_indices) -> dict[str, float]:
    """PPO-clip's update from its parts (signature of :func:`rlcourse.ppo.update`).

    ``cfg.epochs`` epochs of the minibatches ``indices_fn`` yields; each minibatch: ``loss_fn``
    (signature of :func:`rlcourse.ppo.minibatch_loss`), zero_grad, backward, gradient-norm clip,
    Adam step; after each epoch, stop if ``cfg.target_kl`` is set and the batch KL exceeds it.
    Returns :func:`rlcourse.ppo.batch_report` plus ``epochs`` and ``grad_norm`` (mean total
    norm before clipping). ``beta`` is unused (PPO-clip); it keeps the signature.
    """
    if not cfg.joint_update:
        raise ValueError("staged_update trains actor and critic with one loss: leave "
                         "critic_epochs and critic_minibatches at None")
    b = ppo.flatten_rollout(ro, adv, targets)
    norms, epochs = [], 0
    for minibatches in indices_fn(len(b.obs), cfg.minibatches, cfg.epochs, generator):
        for mb in minibatches:
            logits, values = agent(b.obs[mb])
            logp = torch.log_softmax(logits, -1).gather(-1, b.actions[mb, None])[:, 0]
            loss, _ = loss_fn(logp, b.logp_old[mb], b.adv[mb], values, b.v_old[mb],
                              b.targets[mb], ppo.categorical_entropy(logits), cfg)
            opt.zero_grad()
            loss.backward()
            if cfg.max_grad_norm is not None:
                norm = nn.utils.clip_grad_norm_(agent.parameters(), cfg.max_grad_norm)
            else:
                norm = nn.utils.get_total_norm([p.grad for p in agent.parameters()])
            norms.append(float(norm))
            opt.step()
        epochs += 1
        if cfg.target_kl is not None and ppo.batch_kl(agent, b) > cfg.target_kl:
            break
    return {**ppo.batch_report(agent, b, cfg), "epochs": float(epochs),
            "grad_norm": float(np.mean(norms))}


# ---- planted bugs: each is an update function with one classic mistake --------------------

def _loss_without_value(logp, logp_old, adv, values, v_old, targets, entropy, cfg):
    loss, stats = ppo.minibatch_loss(logp, logp_old, adv, values, v_old, targets, entropy,
                                     dataclasses.replace(cfg, vf_coef=0.0))
    return loss, stats


def _loss_adv_flipped(logp, logp_old, adv, values, v_old, targets, entropy, cfg):
    return ppo.minibatch_loss(logp, logp_old, -adv, values, v_old, targets, entropy, cfg)


def _loss_ratio_new_new(logp, logp_old, adv, values, v_old, targets, entropy, cfg):
    return ppo.minibatch_loss(logp, logp.detach(), adv, values, v_old, targets, entropy, cfg)


def _loss_entropy_flipped(logp, logp_old, adv, values, v_old, targets, entropy, cfg):
    return ppo.minibatch_loss(logp, logp_old, adv, values, v_old, targets, -entropy, cfg)


def _with_loss(loss_fn: Callable) -> Callable:
    def update_fn(agent, opt, ro, adv, targets, cfg, generator, beta=0.0):
        return staged_update(agent, opt, ro, adv, targets, cfg, generator, beta,
                             loss_fn=loss_fn)
    return update_fn


def _terminal_as_truncation(agent, opt, ro, adv, targets, cfg, generator, beta=0.0):
    """Recomputes the targets with every termination treated as a time limit (bootstraps
    from the value of the terminal observation)."""
    wrong = dataclasses.replace(ro, terminated=torch.zeros_like(ro.terminated))
    adv, targets = ppo.advantages_and_targets(wrong, cfg.gamma, cfg.lam)
    return staged_update(agent, opt, ro, adv, targets, cfg, generator, beta)


def _obs_misaligned(agent, opt, ro, adv, targets, cfg, generator, beta=0.0):
    """Pairs each step's action, advantage and target with the PREVIOUS step's observation."""
    shifted = dataclasses.replace(ro, obs=ro.obs.roll(1, dims=0))
    return staged_update(agent, opt, shifted, adv, targets, cfg, generator, beta)


PLANTED_BUGS: dict[str, Callable] = {
    "value loss left out": _with_loss(_loss_without_value),
    "termination bootstrapped": _terminal_as_truncation,
    "obs of the wrong step": _obs_misaligned,
    "advantage sign flipped": _with_loss(_loss_adv_flipped),
    "ratio from new log-probs only": _with_loss(_loss_ratio_new_new),
    "entropy sign flipped": _with_loss(_loss_entropy_flipped),
}


# ---- running an update on a probe -----------------------------------------------------------

@dataclass(frozen=True)
class ProbeResult:
    """What a probe run learnt: the critic's value and the right action's probability for each
    observation the probe shows, against the exact answers."""

    probe: str
    observations: list[float]
    values: list[float]
    true_values: list[float]
    p_right: list[float] | None   # None for the one-action probes 1-3
    value_ok: bool
    policy_ok: bool

    @property
    def passed(self) -> bool:
        return self.value_ok and self.policy_ok


def probe_run(probe: str, update_fn: Callable | None = None, seed: int = 0,
              **overrides) -> ProbeResult:
    """Train PPO with ``update_fn`` (None: :func:`rlcourse.ppo.update`) on one probe with
    :data:`PROBE_SETTINGS` (``overrides`` on top) and judge the critic and the policy."""
    if probe not in PROBE_IDS:
        raise ValueError(f"unknown probe {probe!r}; choose from {', '.join(PROBE_IDS)}")
    settings = {**PROBE_SETTINGS, **overrides}
    result = ppo.train(PROBE_IDS[probe], seed, progress=False, update_fn=update_fn, **settings)
    agent, env = result.act.__self__, make_probe(probe)  # act is agent.act_greedy
    obs = env.observations()
    gamma = ppo.make_config(**settings).gamma
    x = torch.tensor(obs, dtype=torch.float32)[:, None]
    with torch.no_grad():
        logits, values = agent(x)
    true_v = [env.true_value(o, gamma) for o in obs]
    value_ok = bool(np.max(np.abs(values.numpy() - np.asarray(true_v))) <= VALUE_TOL)
    p_right = None
    if env.action_space.n > 1:
        right = torch.tensor([int(np.argmax(env.true_q(o, gamma))) for o in obs])
        p_right = torch.softmax(logits, -1).gather(-1, right[:, None])[:, 0].tolist()
    policy_ok = p_right is None or min(p_right) >= POLICY_MIN
    return ProbeResult(probe, obs, [float(v) for v in values], true_v, p_right, value_ok,
                       policy_ok)


def probe_table(updates: dict[str, Callable | None], seed: int = 0,
                probes: tuple[str, ...] = tuple(PROBE_IDS)) -> dict[str, dict[str, ProbeResult]]:
    """{update name: {probe: ProbeResult}} for every update function on every probe."""
    check_positive_int(len(updates), "number of update functions")
    return {name: {p: probe_run(p, fn, seed) for p in probes} for name, fn in updates.items()}
