"""Checks for notebook 12 (DPO and friends)."""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable

import torch

from rlcourse.exercises import call_with, expect_close, expect_true, expect_type, register
from rlcourse.llm import dpo

NB = "12_dpo"


def _t(values, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


def _register(name: str, reference: Callable, hint: str):
    return register(name, notebook=NB, reference=reference, hint=hint)


def _bt_loss(w, l, rw, rl, beta) -> float:
    """-log sigmoid(beta * ((w - rw) - (l - rl))) averaged, in plain Python floats."""
    out = []
    for a, b, c, d in zip(w, l, rw, rl):
        z = beta * ((a - c) - (b - d))
        out.append(math.log1p(math.exp(-z)) if z > -30 else -z + math.log1p(math.exp(z)))
    return sum(out) / len(out)


@_register("llm_dpo.dpo_loss", dpo.dpo_loss,
           "The DPO logit is beta times [(policy minus reference) on the chosen response] "
           "minus [(policy minus reference) on the rejected one]; the loss is the mean of "
           "-log sigmoid(logit). Raising the chosen response's log-prob must lower the loss. "
           "Use a numerically stable log-sigmoid, and detach the reference log-probs.")
def _(fn: Callable) -> None:
    ref = _t([-10.0, -10.0, -10.0])
    got = [call_with(fn, "T-03", _t([w]), _t([-10.0]), _t([-10.0]), _t([-10.0]), 0.1)
           for w in (-10.0, -9.0, -8.0)]
    expect_close(torch.stack([torch.as_tensor(g).reshape(()) for g in got]),
                 [0.69315, 0.64440, 0.59814],
                 "T-03: beta = 0.1, log pi_ref(y_w) = log pi_ref(y_l) = log pi(y_l) = -10, "
                 "log pi(y_w) = -10, -9, -8 (the loss must fall as the chosen response gets "
                 "likelier)", atol=1e-5)
    pol = _t([-3.0, -7.5, -1.2])
    expect_close(call_with(fn, "policy = reference", pol, ref, pol.clone(), ref.clone(), 0.5),
                 math.log(2), "T-02: the loss with the policy equal to the reference (any beta)")
    w, l = [-2.0, -5.0, -1.0, -4.0], [-3.0, -1.0, -6.0, -4.5]
    rw, rl = [-2.5, -4.0, -1.5, -3.0], [-2.0, -2.0, -5.0, -4.0]
    expect_close(call_with(fn, "four pairs", _t(w), _t(l), _t(rw), _t(rl), 0.3),
                 _bt_loss(w, l, rw, rl, 0.3), "mean loss over four pairs with beta = 0.3 "
                 f"(policy chosen {w}, rejected {l}; reference chosen {rw}, rejected {rl})")
    far = call_with(fn, "a very wrong pair in float32",
                    _t([-1000.0], torch.float32), _t([0.0], torch.float32),
                    _t([0.0], torch.float32), _t([0.0], torch.float32), 0.2)
    expect_close(far, 200.0, "float32 pair with logit -200 (the loss must be 200, finite)",
                 rtol=1e-4)
    pw, pl = _t(w).requires_grad_(True), _t(l).requires_grad_(True)
    qw, ql = _t(rw).requires_grad_(True), _t(rl).requires_grad_(True)
    loss = call_with(fn, "four pairs with gradients", pw, pl, qw, ql, 0.3)
    expect_true(isinstance(loss, torch.Tensor) and loss.requires_grad,
                "the loss must be a tensor that carries the policy's gradient")
    loss.backward()
    expect_true(qw.grad is None and ql.grad is None,
                "a gradient reached the reference log-probs: detach them (the reference is "
                "frozen)")
    expect_true(pw.grad is not None and bool((pw.grad < 0).all()),
                "the gradient of the loss w.r.t. the chosen log-probs must be negative "
                "(raising them lowers the loss)")


@_register("llm_dpo.reward_accuracy", dpo.reward_accuracy,
           "The implicit reward of a response is beta * (log pi - log pi_ref), policy on top, "
           "computed without gradients. A pair counts as right only when the chosen reward is "
           "strictly above the rejected one.")
def _(fn: Callable) -> None:
    w, l = _t([-2.0, -5.0, -1.0, -4.0]), _t([-3.0, -1.0, -6.0, -4.5])
    rw, rl = _t([-2.5, -4.0, -1.5, -4.0]), _t([-2.0, -2.0, -5.0, -4.5])
    out = call_with(fn, "four pairs, beta = 0.5", w, l, rw, rl, 0.5)
    expect_type(out, (tuple, list), "reward_accuracy's result", length=3)
    r_w, r_l, acc = out
    expect_close(r_w, [0.25, -0.5, 0.25, 0.0], "implicit rewards of the chosen responses "
                 "(beta = 0.5, log pi = [-2, -5, -1, -4], log pi_ref = [-2.5, -4, -1.5, -4])")
    expect_close(r_l, [-0.5, 0.5, -0.5, 0.0], "implicit rewards of the rejected responses "
                 "(beta = 0.5, log pi = [-3, -1, -6, -4.5], log pi_ref = [-2, -2, -5, -4.5])")
    expect_close(float(acc), 0.5, "reward accuracy of pairs (0.25 vs -0.5), (-0.5 vs 0.5), "
                 "(0.25 vs -0.5), (0 vs 0): a tie is not a win")
    g = w.clone().requires_grad_(True)
    r_w2, _, _ = call_with(fn, "chosen log-probs that require grad", g, l, rw, rl, 0.5)
    expect_true(not torch.as_tensor(r_w2).requires_grad,
                "the implicit rewards are diagnostics: return them without gradients")


@functools.lru_cache(maxsize=1)
def _tiny_world():
    """(policy, ref, tokenizer, chosen, rejected): tiny GPTs of different seeds, 6 pairs."""
    from rlcourse.llm import annotator as ann
    from rlcourse.llm import model as lm
    from rlcourse.llm import reward_model as rmod

    tok = lm.build_tokenizer()
    cfg = lm.ModelConfig(n_embd=16, n_layer=1, n_head=2)
    policy = lm.build_model(tok, cfg, seed=0).eval()
    ref = lm.build_model(tok, cfg, seed=1).eval()     # trainable on purpose: must stay untouched
    pairs = [ann.PreferencePair("12+35=", "47", "57"), ann.PreferencePair("47+38=", "85", "75"),
             ann.PreferencePair("99+9=", "108", "18"), ann.PreferencePair("10+10=", "20", "2"),
             ann.PreferencePair("55+55=", "110", "100"), ann.PreferencePair("31+69=", "100", "90")]
    data = rmod.encode_pairs(tok, pairs)
    return policy, ref, tok, *data.rows(torch.arange(len(pairs)))


def _run_steps(fn, policy, ref, chosen, rejected, what):
    """Two calls of ``fn`` with SGD + momentum (so zero_grad and clipping both matter)."""
    opt = torch.optim.SGD(policy.parameters(), lr=0.5, momentum=0.9)
    return [call_with(fn, what, policy, ref, opt, chosen, rejected, 0.5, 0.1) for _ in range(2)]


@_register("llm_dpo.dpo_step", dpo.dpo_step_with_reference,
           "Run the reference under torch.no_grad() on both sides, then the policy with "
           "gradients; the loss is your dpo_loss. Then zero the old gradients, backward, clip "
           "the gradient norm to max_grad_norm, and step the optimiser. Report the loss "
           "computed before the step.")
def _(fn: Callable) -> None:
    policy0, ref0, _, chosen, rejected = _tiny_world()
    want_pol, want_ref = copy.deepcopy(policy0), copy.deepcopy(ref0)
    want = _run_steps(dpo.dpo_step_with_reference, want_pol, want_ref, chosen, rejected, "ref")
    pol, ref = copy.deepcopy(policy0), copy.deepcopy(ref0)
    got = _run_steps(fn, pol, ref, chosen, rejected, "two steps on 6 pairs, SGD with "
                     "momentum, lr 0.5, beta 0.5, max_grad_norm 0.1")
    for i, (g, w) in enumerate(zip(got, want)):
        expect_type(g, dict, f"the result of step {i + 1}")
        for key in ("loss", "reward_accuracy", "reward_margin", "logp_chosen", "logp_rejected"):
            expect_true(key in g, f"step {i + 1}: the returned dict has no {key!r}")
            expect_close(float(g[key]), w[key], f"step {i + 1}: {key} (computed before the "
                         "optimiser step)", atol=1e-5)
    expect_true(all(p.grad is None or not bool(p.grad.any()) for p in ref.parameters()),
                "gradients reached the reference model: compute its log-probs under "
                "torch.no_grad()")
    for (name, p), q in zip(ref.named_parameters(), ref0.parameters()):
        expect_true(bool(torch.equal(p, q)), f"the reference's parameter {name} changed")
    for (name, p), q in zip(pol.named_parameters(), want_pol.parameters()):
        expect_close(p.detach(), q.detach(), f"policy parameter {name} after two steps "
                     "(zero the gradients, clip to max_grad_norm, then step)", atol=1e-5)


@_register("llm_dpo.ipo_loss", dpo.ipo_loss,
           "IPO works on the unscaled margin h = (log pi_w - log pi_ref,w) - (log pi_l - "
           "log pi_ref,l), with no beta and no sigmoid: it regresses h onto the target "
           "1 / (2 tau) with a squared error, averaged over pairs. Detach the reference.")
def _(fn: Callable) -> None:
    w, l = [-2.0, -5.0, -1.0, -4.0], [-3.0, -1.0, -6.0, -4.5]
    rw, rl = [-2.5, -4.0, -1.5, -3.0], [-2.0, -2.0, -5.0, -4.0]
    h = [(a - c) - (b - d) for a, b, c, d in zip(w, l, rw, rl)]
    for tau in (0.25, 1.0):
        want = sum((x - 1 / (2 * tau)) ** 2 for x in h) / len(h)
        expect_close(call_with(fn, f"four pairs, tau = {tau}", _t(w), _t(l), _t(rw), _t(rl), tau),
                     want, f"IPO loss of four pairs with tau = {tau} (margins h = {h}, target "
                     f"{1 / (2 * tau)})")
    at_target = call_with(fn, "a pair exactly at the target", _t([-1.0]), _t([-3.0]),
                          _t([-2.0]), _t([-2.0]), 0.25)
    expect_close(at_target, 0.0, "a pair whose margin equals the target 1 / (2 * 0.25) = 2")
    pw, qw = _t(w).requires_grad_(True), _t(rw).requires_grad_(True)
    loss = call_with(fn, "four pairs with gradients", pw, _t(l), qw, _t(rl), 0.25)
    expect_true(isinstance(loss, torch.Tensor) and loss.requires_grad,
                "the loss must be a tensor that carries the policy's gradient")
    loss.backward()
    expect_true(qw.grad is None, "a gradient reached the reference log-probs: detach them")
