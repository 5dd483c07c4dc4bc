"""Checks for notebook 07 (trust regions and PPO)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from rlcourse import ppo
from rlcourse.exercises import expect_close, expect_params_close, expect_true, register

NB = "07_ppo"


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


@register("ppo.categorical_kl", notebook=NB, reference=ppo.categorical_kl,
          hint="Logits are unnormalised: turn them into log-probabilities first. KL(p || q) is "
               "the expectation under p (the first argument) of log p - log q, summed over the "
               "actions on the last axis.")
def _(fn: Callable) -> None:
    flip = fn(_t([0.9, 0.1]).log(), _t([0.1, 0.9]).log())
    expect_close(flip, 0.8 * math.log(9), "KL([0.9, 0.1] || [0.1, 0.9]) (W-03)", atol=1e-6)
    p, q = _t([0.5, 0.3, 0.2]), _t([0.2, 0.2, 0.6])
    exact = float((p * (p / q).log()).sum())
    expect_close(fn(p.log(), q.log()), exact,
                 "KL(p || q) with p = [0.5, 0.3, 0.2], q = [0.2, 0.2, 0.6] (the direction "
                 "matters: KL(q || p) is 0.3600)", atol=1e-6)
    # logits are unnormalised: adding a constant per row must not change anything
    logits_p = torch.stack([p.log() + 3.0, _t([1.0, 1.0, 1.0])])
    logits_q = torch.stack([q.log() - 2.0, _t([0.0, 0.0, 0.0])])
    expect_close(fn(logits_p, logits_q), [exact, 0.0],
                 "a batch [2, 3] of unnormalised logits (row 0: p, q shifted by +3 / -2; "
                 "row 1: two uniform policies)", atol=1e-6)


@register("ppo.kl_k3", notebook=NB, reference=ppo.kl_k3,
          hint="The argument is log r, not r. k3 is the gap between the line r - 1 (the "
               "tangent of log r at r = 1) and log r itself: never negative, and 0 only at "
               "r = 1.")
def _(fn: Callable) -> None:
    log_r = _t([0.5, 1.0, 2.0]).log()
    expect_close(fn(log_r), [0.5 - 1 - math.log(0.5), 0.0, 1 - math.log(2.0)],
                 "k3 at r = [0.5, 1, 2] (T-08)", atol=1e-6)
    big = _t([-3.0, 2.5])
    expect_close(fn(big), big.exp() - 1 - big, "k3 at log r = [-3, 2.5]", atol=1e-6)
    q = _t([0.1, 0.2, 0.3, 0.4])
    p = _t([0.25, 0.25, 0.25, 0.25])
    estimate = float((q * fn((p / q).log())).sum())
    expect_close(estimate, float((q * (q / p).log()).sum()),
                 "E_{x~q}[k3] over q = [0.1, 0.2, 0.3, 0.4], p uniform, should equal "
                 "KL(q || p) exactly (k3 is unbiased)", atol=1e-6)


@register("ppo.clipped_objective", notebook=NB, reference=ppo.clipped_objective,
          hint="Compare the plain surrogate r * A with the one whose ratio is held inside "
               "[1 - eps, 1 + eps], and keep the more pessimistic of the two. It is the ratio "
               "that gets clipped, not the advantage.")
def _(fn: Callable) -> None:
    ratio = _t([0.5, 1.0, 1.5, 0.5, 1.0, 1.5])
    adv = _t([2.0, 2.0, 2.0, -2.0, -2.0, -2.0])
    expect_close(fn(ratio, adv, 0.2), [1.0, 2.0, 2.4, -1.6, -2.0, -3.0],
                 "the six cases: r = [0.5, 1, 1.5] with A = +2, then with A = -2 (eps = 0.2)",
                 atol=1e-6)
    expect_close(fn(_t([1.25, 1.1, 0.6]), _t([1.3, 0.0, -0.5]), 0.2), [1.56, 0.0, -0.4],
                 "the W-01 steps: r = [1.25, 1.1, 0.6], A = [1.3, 0, -0.5], eps = 0.2",
                 atol=1e-6)
    expect_close(fn(_t([1.05, 0.8]), _t([1.0, 3.0]), 0.1), [1.05, 2.4],
                 "eps = 0.1: r = [1.05, 0.8], A = [1, 3]", atol=1e-6)
    r = _t([1.5, 0.5]).requires_grad_(True)
    fn(r, _t([1.0, -1.0]), 0.2).sum().backward()
    expect_true(r.grad is not None and torch.count_nonzero(r.grad) == 0,
                "A > 0 with r = 1.5 and A < 0 with r = 0.5 must have zero gradient with "
                f"respect to r (the clipped branch is active); got {r.grad}")


@register("ppo.adaptive_kl_beta", notebook=NB, reference=ppo.adaptive_kl_beta,
          hint="Too large a KL means the penalty was too weak, so make it stiffer; too small a "
               "KL means it can be relaxed. Change beta by `factor` only when the KL leaves the "
               "band [target / tolerance, tolerance * target]; on the band's edges keep it.")
def _(fn: Callable) -> None:
    cases = [(1.0, 0.05, 0.01, 2.0, "KL five times the target"),
             (1.0, 0.001, 0.01, 0.5, "KL a tenth of the target"),
             (1.0, 0.012, 0.01, 1.0, "KL 1.2 x the target (inside the band)"),
             (0.4, 0.008, 0.01, 0.4, "KL 0.8 x the target (inside the band)"),
             (0.25, 0.016, 0.01, 0.5, "KL 1.6 x the target, beta 0.25"),
             (3.0, 0.006, 0.01, 1.5, "KL 0.6 x the target, beta 3"),
             # the band's edges belong to the band (target 0.375: the edges 0.25 and 0.5625
             # are exact in binary, so kl * 1.5 and target / 1.5 compare without rounding)
             (1.0, 0.5625, 0.375, 1.0, "KL exactly 1.5 x the target (the upper edge)"),
             (1.0, 0.25, 0.375, 1.0, "KL exactly the target / 1.5 (the lower edge)"),
             (1.0, 0.5626, 0.375, 2.0, "KL just above 1.5 x the target"),
             (1.0, 0.2499, 0.375, 0.5, "KL just below the target / 1.5")]
    for beta, kl, target, expected, what in cases:
        expect_close(fn(beta, kl, target), expected,
                     f"{what}: beta={beta}, kl={kl}, target={target}", atol=1e-9)
    for kl, expected in ((0.025, 3.0), (0.018, 1.0), (0.004, 1 / 3)):
        expect_close(fn(1.0, kl, 0.01, factor=3.0, tolerance=2.0), expected,
                     f"factor=3, tolerance=2 (the band is [0.005, 0.02]): beta=1, kl={kl}, "
                     "target=0.01", atol=1e-9)


@register("ppo.ppo_loss", notebook=NB, reference=ppo.ppo_loss,
          hint="Start from what PPO maximises: the clipped surrogate, minus a weighted value "
               "error, plus a weighted entropy bonus. The optimiser minimises, so flip the sign "
               "of that objective, and note that policy_loss is already the surrogate's "
               "negative.")
def _(fn: Callable) -> None:
    expect_close(fn(_t(-0.3), _t(2.0), _t(0.6), 0.5, 0.01), -0.3 + 1.0 - 0.006,
                 "policy_loss=-0.3, value_loss=2, entropy=0.6, vf_coef=0.5, ent_coef=0.01",
                 atol=1e-9)
    expect_close(fn(_t(0.2), _t(0.1), _t(1.2), 1.0, 0.1), 0.2 + 0.1 - 0.12,
                 "policy_loss=0.2, value_loss=0.1, entropy=1.2, vf_coef=1, ent_coef=0.1",
                 atol=1e-9)
    ent = _t(0.5).requires_grad_(True)
    fn(_t(0.0), _t(0.0), ent, 0.5, 0.01).backward()
    slope = "no gradient" if ent.grad is None else f"{float(ent.grad):.4g}"
    expect_true(ent.grad is not None and float(ent.grad) < 0,
                "a higher entropy must lower the loss (the entropy is a bonus); "
                f"d loss / d entropy = {slope}")


# ---- the staged PPO update: minibatch indexer -> loss on a fixed batch -> one full update ----

@register("ppo.minibatch_indices", notebook=NB, reference=ppo.minibatch_indices,
          hint="For each epoch draw ONE new permutation with torch.randperm(n, generator="
               "generator) inside the epoch loop (and yield it there, so an epoch's draw happens "
               "only when that epoch is asked for), then cut it into chunks of ceil(n / "
               "minibatches) with .split: every index exactly once per epoch, none dropped.")
def _(fn: Callable) -> None:
    n, m, epochs = 10, 4, 3
    got = [tuple(chunks) for chunks in fn(n, m, epochs, torch.Generator().manual_seed(0))]
    expect_true(len(got) == epochs, f"minibatch_indices(n=10, minibatches=4, epochs=3) should "
                f"yield 3 epochs, yielded {len(got)}")
    for e, chunks in enumerate(got):
        sizes = [len(c) for c in chunks]
        flat = torch.cat([torch.as_tensor(c).reshape(-1) for c in chunks])
        expect_true(sorted(flat.tolist()) == list(range(n)),
                    f"epoch {e}: the minibatches must hold every index 0..9 exactly once; got "
                    f"{sorted(flat.tolist())} (an index repeated or dropped)")
        expect_true(sizes == [3, 3, 3, 1], f"epoch {e}: chunk sizes should be ceil(10 / 4) = 3 "
                    f"with the rest in the last chunk, [3, 3, 3, 1]; got {sizes}")
    orders = [torch.cat(list(c)).tolist() for c in got]
    expect_true(orders[0] != list(range(n)), "epoch 0 is 0, 1, ..., 9 in order: the indices "
                "must be shuffled (minibatches of consecutive steps are correlated)")
    expect_true(len({tuple(o) for o in orders}) == epochs, "two epochs used the same order: "
                "draw a fresh permutation for every epoch, not one for the whole update")
    gen = torch.Generator().manual_seed(7)
    ref = [torch.cat(list(c)).tolist() for c in ppo.minibatch_indices(33, 4, 2, gen)]
    gen = torch.Generator().manual_seed(7)
    mine = [torch.cat(list(c)).tolist() for c in fn(33, 4, 2, gen)]
    expect_true(mine == ref, "with torch.Generator().manual_seed(7), n=33, minibatches=4, "
                "epochs=2 your orders differ from one torch.randperm(n, generator=generator) per "
                "epoch (use exactly that call, nothing else from the generator)")
    gen, gen_ref = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    next(iter(fn(20, 2, 5, gen)))
    next(iter(ppo.minibatch_indices(20, 2, 5, gen_ref)))
    expect_true(torch.equal(gen.get_state(), gen_ref.get_state()),
                "after taking only the first epoch, your function had used the generator more "
                "than one randperm: draw each epoch's permutation lazily (yield inside the loop), "
                "so an update that stops early on the KL leaves the generator as the package does")


def _loss_batch(seed: int = 0, b: int = 12) -> dict[str, torch.Tensor]:
    """A fixed minibatch: ratios far enough from 1 that the clip bites on several samples."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda scale=1.0, shift=0.0: shift + scale * torch.randn(b, generator=g,
                                                                   dtype=torch.float64)
    logp_old = -rnd(0.3, 0.7).abs()
    return {"logp": (logp_old + rnd(0.3)).requires_grad_(True), "logp_old": logp_old,
            "adv": rnd(2.0, 0.5), "values": rnd(1.0).requires_grad_(True),
            "v_old": rnd(1.0), "targets": rnd(2.0, 1.0),
            "entropy": rnd(0.1, 0.6).abs().requires_grad_(True)}


def _loss_and_grads(fn: Callable, batch: dict[str, torch.Tensor], cfg: ppo.Config):
    leaves = {k: (v.detach().clone().requires_grad_(True) if v.requires_grad else v.clone())
              for k, v in batch.items()}
    loss, stats = fn(leaves["logp"], leaves["logp_old"], leaves["adv"], leaves["values"],
                     leaves["v_old"], leaves["targets"], leaves["entropy"], cfg)
    loss.backward()
    grads = {k: (None if v.grad is None else v.grad.clone()) for k, v in leaves.items()
             if v.requires_grad}
    return float(loss.detach()), stats, grads


def _expect_stage(fn: Callable, cfg: ppo.Config, what: str, cause: str) -> None:
    batch = _loss_batch()
    loss, stats, grads = _loss_and_grads(fn, batch, cfg)
    ref_loss, ref_stats, ref_grads = _loss_and_grads(ppo.minibatch_loss, batch, cfg)
    expect_close(loss, ref_loss, f"{what}: the loss", atol=1e-8)
    for key, g in grads.items():
        ref_g = ref_grads[key]
        if g is None:  # a term left out entirely: fine only where the reference's gradient is 0
            g = torch.zeros_like(ref_g)
        expect_close(g, ref_g, f"{what}: d loss / d {key} (all zero means {key} does not reach "
                     f"the loss). {cause}".rstrip(" ."), atol=1e-8)
    for key in ("approx_kl", "clip_fraction"):
        expect_true(key in stats, f"{what}: the stats dict needs a {key!r} entry")
        expect_close(stats[key], ref_stats[key], f"{what}: stats[{key!r}]", atol=1e-8)


@register("ppo.minibatch_loss", notebook=NB, reference=ppo.minibatch_loss,
          hint="The ratio compares the CURRENT log-probs with the rollout's OLD ones, "
               "exp(logp - logp_old); keep min(r A, clip(r) A) (the pessimistic term); "
               "normalise the advantages over the minibatch when cfg.norm_adv; the entropy is a "
               "bonus, so it is subtracted: ppo_loss(policy_loss, value_loss, entropy.mean()).")
def _(fn: Callable) -> None:
    base = dict(vf_coef=0.0, ent_coef=0.0, norm_adv=False)
    _, stats, _ = _loss_and_grads(fn, _loss_batch(), ppo.make_config(**base))
    ref = _loss_and_grads(ppo.minibatch_loss, _loss_batch(), ppo.make_config(**base))[1]
    expect_close(stats.get("clip_fraction", float("nan")), ref["clip_fraction"],
                 "stage 1, the ratio: the clip fraction on a batch whose new log-probs differ "
                 "from the old ones (a clip fraction of 0 means your ratio is always 1: the old "
                 "log-probs must come from logp_old)", atol=1e-8)
    _expect_stage(fn, ppo.make_config(**base), "stage 1, the clipped surrogate alone "
                  "(vf_coef=0, ent_coef=0, norm_adv=False)",
                  "logp must enter the loss through the ratio.")
    _expect_stage(fn, ppo.make_config(vf_coef=0.0, ent_coef=0.0), "stage 2, with norm_adv=True "
                  "(advantages normalised over the minibatch)", "")
    _expect_stage(fn, ppo.make_config(vf_coef=0.0, ent_coef=0.1), "stage 3, with the entropy "
                  "bonus (ent_coef=0.1; a higher entropy must LOWER the loss)",
                  "The entropy bonus enters the loss.")
    _expect_stage(fn, ppo.make_config(), "stage 4, the full loss with the default config "
                  "(vf_coef=0.5, ent_coef=0.01, norm_adv=True)", "The value loss enters the loss.")
    _expect_stage(fn, ppo.make_config(vf_clip=0.2), "stage 5, with vf_clip=0.2 (the clipped "
                  "value loss, ppo.clipped_value_loss)", "")


def _update_setup(seed: int, cfg: ppo.Config):
    """A small double-precision agent, an Adam that has already taken steps, and a rollout."""
    torch.manual_seed(seed)
    agent = ppo.ActorCritic(3, 2, hidden=8).double()
    opt = torch.optim.Adam(agent.parameters(), lr=0.05, eps=1e-5)
    g = torch.Generator().manual_seed(seed)
    t, n = 6, 4
    warm = agent(torch.randn(5, 3, generator=g, dtype=torch.float64))
    opt.zero_grad()
    (warm[0].sum() + warm[1].sum()).backward()
    opt.step()  # the optimiser state is part of what the update must carry on from
    obs = torch.randn(t, n, 3, generator=g, dtype=torch.float64)
    with torch.no_grad():
        logits, values = agent(obs.reshape(-1, 3))
    logits, values = logits.reshape(t, n, 2), values.reshape(t, n)
    actions = ppo.sample_actions(logits, g)
    valid = torch.ones(t, n, dtype=torch.bool)
    valid[2, 1] = valid[4, 3] = False
    term = torch.zeros(t, n, dtype=torch.bool)
    term[1, 1] = term[3, 3] = True
    ro = ppo.Rollout(obs=obs, actions=actions, logits=logits,
                     logp=torch.log_softmax(logits, -1).gather(-1, actions[..., None])[..., 0],
                     values=values, next_values=torch.cat([values[1:], values[-1:]]),
                     rewards=5.0 * torch.randn(t, n, generator=g, dtype=torch.float64),
                     terminated=term, dones=term | ~valid, valid=valid)
    adv, targets = ppo.advantages_and_targets(ro, cfg.gamma, cfg.lam)
    return agent, opt, ro, adv, targets


def _run_update(fn: Callable, cfg: ppo.Config, seed: int):
    agent, opt, ro, adv, targets = _update_setup(seed, cfg)
    stats = fn(agent, opt, ro, adv, targets, cfg, torch.Generator().manual_seed(seed + 100))
    return agent, stats


UPDATE_CASES = (({"epochs": 3, "minibatches": 4}, 0,
                 "stage 1: one update, 3 epochs x 4 minibatches, max_grad_norm=0.5"),
                ({"epochs": 4, "minibatches": 2, "target_kl": 1e-5}, 1,
                 "stage 2: target_kl=1e-5 (the reference stops after the first epoch)"))

UPDATE_HINT = ("Likely causes: the minibatches not shuffled (use minibatch_indices), old "
               "log-probs recomputed from the current policy (they are the rollout's, fixed for "
               "the whole update), no opt.zero_grad() before backward, no gradient-norm clip "
               "(nn.utils.clip_grad_norm_(agent.parameters(), cfg.max_grad_norm) between "
               "backward and step), or a loss other than minibatch_loss on the minibatch.")


@register("ppo.update", notebook=NB, reference=ppo.update,
          hint="Loop: for each epoch's minibatches, loss -> zero_grad -> backward -> clip the "
               "gradient norm -> step; after each epoch stop if cfg.target_kl is set and the "
               "batch KL exceeds it. Return batch_report(...) plus 'epochs' and 'grad_norm' "
               "(the mean total norm before clipping).")
def _(fn: Callable) -> None:
    for overrides, seed, what in UPDATE_CASES:
        cfg = ppo.make_config(**overrides)
        agent, stats = _run_update(fn, cfg, seed)
        ref_agent, ref_stats = _run_update(ppo.update, cfg, seed)
        expect_true(isinstance(stats, dict) and "epochs" in stats and "grad_norm" in stats,
                    f"{what}: return a dict with at least 'epochs' and 'grad_norm'")
        expect_close(stats["epochs"], ref_stats["epochs"], f"{what}: epochs run (an update "
                     "that ran all epochs ignored target_kl; check the batch KL after each "
                     "epoch and break once it exceeds cfg.target_kl)", atol=0)
        expect_params_close(agent, ref_agent, f"{what}: parameters differ from the reference "
                            "update's", atol=1e-7, hint=UPDATE_HINT)
        expect_close(stats["grad_norm"], ref_stats["grad_norm"], f"{what}: mean gradient "
                     "norm before clipping (clip_grad_norm_ returns it)", atol=1e-7)
