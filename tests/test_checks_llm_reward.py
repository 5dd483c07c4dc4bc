"""Honesty tests for the checks of notebook 10: blanks and plausible wrong answers must fail."""

import pytest
import torch
import torch.nn.functional as F

from rlcourse.llm.reward_model import batch_scores, bradley_terry_loss, pairwise_accuracy
from tests.honesty import assert_verdict, honesty_cases

# ---- bradley_terry_loss --------------------------------------------------------------------


def bt_without_log(r_chosen, r_rejected):
    """E-06: the preference probability itself, negated, with no -log."""
    return -torch.sigmoid(r_chosen - r_rejected).mean()


def bt_sign_flipped(r_chosen, r_rejected):
    """Rewards the rejected response: -log sigmoid(r_rejected - r_chosen)."""
    return -F.logsigmoid(r_rejected - r_chosen).mean()


def bt_maximised(r_chosen, r_rejected):
    """E-46: the log-likelihood itself (to be maximised), not the loss."""
    return F.logsigmoid(r_chosen - r_rejected).mean()


def bt_summed(r_chosen, r_rejected):
    """A sum over pairs, so the loss scale depends on the batch size."""
    return -F.logsigmoid(r_chosen - r_rejected).sum()


def bt_naive_log(r_chosen, r_rejected):
    """log(sigmoid(.)): right for moderate margins, inf for a margin of -200."""
    return -torch.log(torch.sigmoid(r_chosen - r_rejected)).mean()


# ---- last_token_index ----------------------------------------------------------------------


def last_is_length_minus_one(mask):
    """The padding pitfall: right only when the padding is on the right."""
    return mask.sum(-1) - 1


def last_before_first_pad(mask):
    """First pad column minus one: breaks on rows without padding (argmax of all-False is 0)."""
    return (mask == 0).int().argmax(-1) - 1


def last_always_final_column(mask):
    """Assumes left padding: always column T - 1."""
    return torch.full((mask.shape[0],), mask.shape[1] - 1)


def last_as_float(mask):
    """The right columns, but as floats (unusable as indices)."""
    cols = torch.arange(mask.shape[1])
    return (cols * (mask != 0)).argmax(-1).float()


# ---- rm_train_step -------------------------------------------------------------------------


def step_swapped(model, optimizer, chosen, rejected, max_grad_norm=1.0):
    """Chosen and rejected exchanged: learns the opposite preference."""
    r_w, r_l = batch_scores(model, rejected), batch_scores(model, chosen)
    loss = bradley_terry_loss(r_w, r_l)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return float(loss.detach()), pairwise_accuracy(r_w, r_l)


def step_without_zero_grad(model, optimizer, chosen, rejected, max_grad_norm=1.0):
    """Gradients accumulate across steps."""
    r_w, r_l = batch_scores(model, chosen), batch_scores(model, rejected)
    loss = bradley_terry_loss(r_w, r_l)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return float(loss.detach()), pairwise_accuracy(r_w, r_l)


def step_never_steps(model, optimizer, chosen, rejected, max_grad_norm=1.0):
    """Computes the loss and gradient but forgets optimizer.step()."""
    r_w, r_l = batch_scores(model, chosen), batch_scores(model, rejected)
    loss = bradley_terry_loss(r_w, r_l)
    optimizer.zero_grad()
    loss.backward()
    return float(loss.detach()), pairwise_accuracy(r_w, r_l)


def step_without_log(model, optimizer, chosen, rejected, max_grad_norm=1.0):
    """E-06 inside the step: minimises -sigmoid(margin) instead of -log sigmoid(margin)."""
    r_w, r_l = batch_scores(model, chosen), batch_scores(model, rejected)
    loss = -torch.sigmoid(r_w - r_l).mean()
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return float(loss.detach()), pairwise_accuracy(r_w, r_l)


def step_reports_after_update(model, optimizer, chosen, rejected, max_grad_norm=1.0):
    """Steps, then reports the loss and accuracy of the updated model."""
    loss = bradley_terry_loss(batch_scores(model, chosen), batch_scores(model, rejected))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    with torch.no_grad():
        r_w, r_l = batch_scores(model, chosen), batch_scores(model, rejected)
    return float(bradley_terry_loss(r_w, r_l)), pairwise_accuracy(r_w, r_l)


WRONG_ANSWERS = {
    "llm_reward.bradley_terry_loss": {"no-log": bt_without_log, "sign": bt_sign_flipped,
                                      "maximised": bt_maximised, "sum": bt_summed,
                                      "naive-log": bt_naive_log},
    "llm_reward.last_token_index": {"length-minus-one": last_is_length_minus_one,
                                    "before-first-pad": last_before_first_pad,
                                    "final-column": last_always_final_column,
                                    "float": last_as_float},
    "llm_reward.rm_train_step": {"swapped": step_swapped, "no-zero-grad": step_without_zero_grad,
                                 "no-step": step_never_steps, "no-log": step_without_log,
                                 "after-update": step_reports_after_update},
}


@pytest.mark.parametrize("name, candidate, expected", honesty_cases(WRONG_ANSWERS))
def test_check_verdicts(name, candidate, expected):
    assert_verdict(name, candidate, expected)
