"""Honesty tests for the checks of notebook 12: blanks and plausible wrong answers must fail."""

import pytest
import torch
import torch.nn.functional as F

from rlcourse.llm import dpo
from tests.honesty import assert_verdict, honesty_cases

# ---- dpo_loss ------------------------------------------------------------------------------


def loss_sign_flipped(pol_w, pol_l, ref_w, ref_l, beta):
    """E-18 in code: the ratios written reference over policy."""
    z = beta * ((ref_w.detach() - pol_w) - (ref_l.detach() - pol_l))
    return -F.logsigmoid(z).mean()


def loss_without_beta(pol_w, pol_l, ref_w, ref_l, beta):
    """Forgets to scale the logit by beta."""
    return dpo.dpo_loss(pol_w, pol_l, ref_w, ref_l, 1.0)


def loss_reference_not_detached(pol_w, pol_l, ref_w, ref_l, beta):
    """Right values, but the reference log-probs take part in the gradient."""
    return -F.logsigmoid(beta * ((pol_w - ref_w) - (pol_l - ref_l))).mean()


def loss_naive_log_sigmoid(pol_w, pol_l, ref_w, ref_l, beta):
    """log(sigmoid(z)): -inf in float32 once the logit is very negative."""
    z = beta * ((pol_w - ref_w.detach()) - (pol_l - ref_l.detach()))
    return -torch.log(torch.sigmoid(z)).mean()


def loss_summed(pol_w, pol_l, ref_w, ref_l, beta):
    """Sums over pairs instead of averaging."""
    return -F.logsigmoid(dpo.dpo_logits(pol_w, pol_l, ref_w, ref_l, beta)).sum()


# ---- reward_accuracy -----------------------------------------------------------------------


def rewards_inverted(pol_w, pol_l, ref_w, ref_l, beta):
    """E-17 in code: beta * log(pi_ref / pi)."""
    r_w, r_l = beta * (ref_w - pol_w).detach(), beta * (ref_l - pol_l).detach()
    return r_w, r_l, float((r_w > r_l).double().mean())


def rewards_ties_win(pol_w, pol_l, ref_w, ref_l, beta):
    """Counts a tie as a correct pair (>= instead of >)."""
    r_w, r_l, _ = dpo.reward_accuracy(pol_w, pol_l, ref_w, ref_l, beta)
    return r_w, r_l, float((r_w >= r_l).double().mean())


def rewards_without_beta(pol_w, pol_l, ref_w, ref_l, beta):
    """The log-ratio without beta."""
    return dpo.reward_accuracy(pol_w, pol_l, ref_w, ref_l, 1.0)


def rewards_with_grad(pol_w, pol_l, ref_w, ref_l, beta):
    """Right numbers, still attached to the graph."""
    r_w, r_l = beta * (pol_w - ref_w), beta * (pol_l - ref_l)
    return r_w, r_l, float((r_w > r_l).double().mean())


# ---- dpo_step ------------------------------------------------------------------------------


def _report(loss, pol_c, pol_r, ref_c, ref_r, beta):
    return {"loss": float(loss.detach()),
            **dpo.dpo_metrics(pol_c.detach(), pol_r.detach(), ref_c.detach(), ref_r.detach(),
                              beta),
            "logp_chosen": float(pol_c.detach().mean()),
            "logp_rejected": float(pol_r.detach().mean())}


def _step(policy, ref, optimizer, chosen, rejected, beta, max_grad_norm, *, zero=True,
          ref_grad=False, flip=False, clip=True):
    if ref_grad:
        ref_c, ref_r = dpo.pair_logprobs(ref, chosen, rejected)
    else:
        with torch.no_grad():
            ref_c, ref_r = dpo.pair_logprobs(ref, chosen, rejected)
    pol_c, pol_r = dpo.pair_logprobs(policy, chosen, rejected)
    z = beta * ((pol_c - ref_c) - (pol_r - ref_r))
    loss = -F.logsigmoid(-z if flip else z).mean()
    if zero:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
    optimizer.step()
    return _report(loss if not flip else -F.logsigmoid(z).mean(), pol_c, pol_r, ref_c, ref_r,
                   beta)


def step_no_zero_grad(*args):
    """Never clears the gradients: they pile up from one step to the next."""
    return _step(*args, zero=False)


def step_reference_with_grad(*args):
    """Runs the reference with gradients and a loss that does not detach it."""
    return _step(*args, ref_grad=True)


def step_sign_flipped(*args):
    """Minimises the E-18 loss (and reports the correct one)."""
    return _step(*args, flip=True)


def step_no_clip(*args):
    """Skips the gradient clipping."""
    return _step(*args, clip=False)


def step_reports_loss_after(policy, ref, optimizer, chosen, rejected, beta, max_grad_norm):
    """Steps correctly but reports the metrics of the updated policy."""
    dpo.dpo_step_with_reference(policy, ref, optimizer, chosen, rejected, beta, max_grad_norm)
    return dpo.evaluate_pairs(policy, ref, chosen, rejected, beta)



# ---- ipo_loss ------------------------------------------------------------------------------


def _margin(pol_w, pol_l, ref_w, ref_l):
    return (pol_w - ref_w.detach()) - (pol_l - ref_l.detach())


def ipo_dpo_plus_regulariser(pol_w, pol_l, ref_w, ref_l, tau):
    """E-08 in code: the DPO loss with a squared regulariser added."""
    h = _margin(pol_w, pol_l, ref_w, ref_l)
    return (-F.logsigmoid(h) + (h - 1 / (2 * tau)) ** 2).mean()


def ipo_target_one_over_tau(pol_w, pol_l, ref_w, ref_l, tau):
    """Targets 1 / tau instead of 1 / (2 tau)."""
    return ((_margin(pol_w, pol_l, ref_w, ref_l) - 1 / tau) ** 2).mean()


def ipo_scaled_by_tau(pol_w, pol_l, ref_w, ref_l, tau):
    """Scales the margin by tau like DPO's beta."""
    return ((tau * _margin(pol_w, pol_l, ref_w, ref_l) - 1 / (2 * tau)) ** 2).mean()


def ipo_reference_not_detached(pol_w, pol_l, ref_w, ref_l, tau):
    """Right values, gradient into the reference."""
    return ((((pol_w - ref_w) - (pol_l - ref_l)) - 1 / (2 * tau)) ** 2).mean()


WRONG_ANSWERS = {
    "llm_dpo.dpo_loss": {
        "sign-flipped": loss_sign_flipped,
        "without-beta": loss_without_beta,
        "reference-not-detached": loss_reference_not_detached,
        "naive-log-sigmoid": loss_naive_log_sigmoid,
        "summed": loss_summed,
    },
    "llm_dpo.reward_accuracy": {
        "inverted-ratio": rewards_inverted,
        "ties-win": rewards_ties_win,
        "without-beta": rewards_without_beta,
        "with-grad": rewards_with_grad,
    },
    "llm_dpo.dpo_step": {
        "no-zero-grad": step_no_zero_grad,
        "reference-with-grad": step_reference_with_grad,
        "sign-flipped": step_sign_flipped,
        "no-clip": step_no_clip,
        "loss-after-step": step_reports_loss_after,
    },
    "llm_dpo.ipo_loss": {
        "dpo-plus-regulariser": ipo_dpo_plus_regulariser,
        "target-one-over-tau": ipo_target_one_over_tau,
        "scaled-by-tau": ipo_scaled_by_tau,
        "reference-not-detached": ipo_reference_not_detached,
    },
}


@pytest.mark.parametrize("name,candidate,expected", honesty_cases(WRONG_ANSWERS))
def test_check_verdicts(name, candidate, expected):
    assert_verdict(name, candidate, expected)

