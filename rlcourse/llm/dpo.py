"""The DPO family as pure functions of sequence log-probabilities (issue 8, notebook 12).

The derivation, in five steps (x a prompt, y a response, r a reward, pi_ref the frozen SFT model):

1. **Optimum.** max_pi E_{y~pi}[r(x, y)] - beta * KL(pi || pi_ref) equals
   beta * log Z(x) - beta * KL(pi || pi*), so it is maximised by the Gibbs distribution
   pi*(y|x) = pi_ref(y|x) * exp(r(x, y) / beta) / Z(x), Z(x) = sum_y pi_ref(y|x) exp(r / beta),
   where it is worth beta * log Z(x) (:func:`kl_regularised_optimum`).
2. **Reparameterisation.** Solving step 1 for the reward:
   r(x, y) = beta * log(pi*(y|x) / pi_ref(y|x)) + beta * log Z(x).
   (The ratio is pi* over pi_ref; the inverted ratio is seed error E-17.)
3. **Bradley-Terry.** P(y_w > y_l | x) = sigmoid(r(x, y_w) - r(x, y_l)).
4. **Z cancels.** In the difference r(x, y_w) - r(x, y_l) the term beta * log Z(x) appears twice
   with opposite signs, so the preference probability depends on pi* and pi_ref only.
5. **Loss.** Replace pi* by the trained policy pi_theta and maximise the likelihood of the data:
   L_DPO = -E log sigmoid(beta * [(log pi_theta(y_w) - log pi_ref(y_w))
                                  - (log pi_theta(y_l) - log pi_ref(y_l))]).

Sign convention: the DPO *logit* is chosen minus rejected, each as policy minus reference, so
raising log pi_theta(y_w) raises the logit and lowers the loss. Flipping the ratio (reference over
policy, seed error E-18) gives a loss whose minimisation lowers the preferred response's
likelihood. Every loss here is minimised; ``implicit_reward`` is the reward the policy encodes.

Shapes: sequence log-probabilities are float tensors [B], one per response, already summed over
the response tokens (:func:`rlcourse.llm.logprobs.sequence_logprob`); the discrete toy of step 1
works on [..., K] (K responses per prompt). Reference log-probabilities are detached inside the
losses, so gradients reach the policy only. IPO, KTO and ORPO follow their papers (Azar et al.
2023, Ethayarajh et al. 2024, Hong et al. 2024).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from rlcourse.validation import check_distribution, check_in_range, check_same_length

Tensor = torch.Tensor


# ---- argument checks ------------------------------------------------------------------------

def _check_beta(beta: float, name: str = "beta") -> float:
    """``beta`` as a float in (0, inf), else ``ValueError`` (NaN and inf included)."""
    return check_in_range(beta, name, 0.0, math.inf, low_open=True, high_open=True)


def _check_tensors(ndim: int | None = 1, **tensors: Tensor) -> tuple[int, ...]:
    """Raise unless all keyword tensors are non-empty float tensors of one shape; return it."""
    for name, t in tensors.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a float tensor, got dtype {t.dtype}")
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        desc = ", ".join(f"{k}={v}" for k, v in shapes.items())
        raise ValueError(f"shapes differ: {desc}")
    shape = next(iter(shapes.values()))
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"need {ndim}-dimensional tensors, got shape {shape}")
    if math.prod(shape) == 0:
        raise ValueError(f"need non-empty tensors, got shape {shape}")
    return shape


def check_same_prompts(chosen_prompts: Sequence[str], rejected_prompts: Sequence[str]) -> None:
    """Raise ``ValueError`` unless pair i has the same prompt on both sides, for every i.

    DPO compares two responses *to one prompt*: Z(x) only cancels when x is shared.
    """
    n = check_same_length(chosen_prompts=chosen_prompts, rejected_prompts=rejected_prompts)
    if n == 0:
        raise ValueError("need at least one preference pair, got none")
    for i, (a, b) in enumerate(zip(chosen_prompts, rejected_prompts)):
        if a != b:
            raise ValueError(f"preference pairs whose prompts differ: first at index {i} "
                             f"(chosen {a!r}, rejected {b!r})")


# ---- step 1: the KL-regularised optimum on a discrete response space -------------------------

def kl_regularised_optimum(ref_probs: Tensor, rewards: Tensor, beta: float) -> Tensor:
    """pi*(y) = pi_ref(y) exp(r(y) / beta) / Z over the last axis: [..., K], [..., K] -> [..., K].

    Computed as a softmax of log pi_ref + r / beta, so large r / beta does not overflow and
    responses with pi_ref(y) = 0 keep probability 0.
    """
    beta = _check_beta(beta)
    _check_tensors(None, ref_probs=ref_probs, rewards=rewards)
    check_distribution(ref_probs.detach().cpu().double().numpy(), "ref_probs")
    return torch.softmax(torch.log(ref_probs) + rewards / beta, dim=-1)


def kl_regularised_objective(pi: Tensor, ref_probs: Tensor, rewards: Tensor,
                             beta: float) -> Tensor:
    """E_pi[r] - beta * KL(pi || pi_ref) per row: [..., K] (three times) -> [...].

    KL = sum_y pi(y) (log pi(y) - log pi_ref(y)), with 0 log 0 = 0 (``xlogy``), so a policy
    with zeros (the beta -> 0 limit) stays finite; mass where pi_ref is 0 gives +inf KL.
    """
    beta = _check_beta(beta)
    _check_tensors(None, pi=pi, ref_probs=ref_probs, rewards=rewards)
    kl = (torch.special.xlogy(pi, pi) - torch.special.xlogy(pi, ref_probs)).sum(-1)
    return (pi * rewards).sum(-1) - beta * kl


# ---- steps 2-5: implicit reward and the DPO loss ---------------------------------------------

def implicit_reward(logp: Tensor, ref_logp: Tensor, beta: float) -> Tensor:
    """beta * (log pi(y|x) - log pi_ref(y|x)): [B], [B] -> [B] (reward up to beta * log Z(x))."""
    beta = _check_beta(beta)
    _check_tensors(logp=logp, ref_logp=ref_logp)
    return beta * (logp - ref_logp.detach())


def dpo_logits(pol_chosen: Tensor, pol_rejected: Tensor, ref_chosen: Tensor,
               ref_rejected: Tensor, beta: float) -> Tensor:
    """beta * [(log pi_w - log pi_ref,w) - (log pi_l - log pi_ref,l)]: four [B] -> [B].

    This is the Bradley-Terry logit of the implicit rewards; positive means "prefers y_w".
    """
    beta = _check_beta(beta)
    _check_tensors(pol_chosen=pol_chosen, pol_rejected=pol_rejected, ref_chosen=ref_chosen,
                   ref_rejected=ref_rejected)
    chosen = pol_chosen - ref_chosen.detach()
    rejected = pol_rejected - ref_rejected.detach()
    return beta * (chosen - rejected)


def dpo_loss(pol_chosen: Tensor, pol_rejected: Tensor, ref_chosen: Tensor,
             ref_rejected: Tensor, beta: float) -> Tensor:
    """Mean over pairs of -log sigmoid(:func:`dpo_logits`): four [B] -> scalar.

    ``logsigmoid`` keeps it finite: a logit of -200 costs 200, one of +200 costs ~0. Equals
    ln 2 when the policy equals the reference. Gradient per pair:
    -beta * sigmoid(-logit) * (grad log pi_w - grad log pi_l) / B.
    """
    logits = dpo_logits(pol_chosen, pol_rejected, ref_chosen, ref_rejected, beta)
    return -F.logsigmoid(logits).mean()


def _check_indices(idx: Tensor, name: str, n: int) -> None:
    if not isinstance(idx, Tensor) or idx.is_floating_point() or idx.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor")
    if idx.ndim != 1 or idx.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D tensor, got shape {tuple(idx.shape)}")
    if bool((idx < 0).any()) or bool((idx >= n).any()):
        raise ValueError(f"{name} has indices out of range [0, {n - 1}]: "
                         f"min {int(idx.min())}, max {int(idx.max())}")


def dpo_loss_indexed(policy_logps: Tensor, ref_logps: Tensor, chosen_idx: Tensor,
                     rejected_idx: Tensor, beta: float) -> tuple[Tensor, Tensor]:
    """DPO loss for N completions stored in one tensor, pairs given by indices.

    ``policy_logps``, ``ref_logps`` [N]; ``chosen_idx``, ``rejected_idx`` [B] integer indices
    into them. Returns (scalar loss, detached implicit rewards beta * (log pi - log pi_ref) [N]).
    """
    n = _check_tensors(policy_logps=policy_logps, ref_logps=ref_logps)[0]
    _check_indices(chosen_idx, "chosen_idx", n)
    _check_indices(rejected_idx, "rejected_idx", n)
    if chosen_idx.shape != rejected_idx.shape:
        raise ValueError(f"chosen_idx {tuple(chosen_idx.shape)} and rejected_idx "
                         f"{tuple(rejected_idx.shape)} must have the same shape")
    loss = dpo_loss(policy_logps[chosen_idx], policy_logps[rejected_idx],
                    ref_logps[chosen_idx], ref_logps[rejected_idx], beta)
    return loss, implicit_reward(policy_logps, ref_logps, beta).detach()


def dpo_metrics(pol_chosen: Tensor, pol_rejected: Tensor, ref_chosen: Tensor,
                ref_rejected: Tensor, beta: float) -> dict[str, float]:
    """Training diagnostics of DPO on four [B] tensors, as plain floats.

    ``reward_accuracy``: fraction of pairs with implicit reward chosen > rejected (ties count 0);
    ``reward_margin``: mean of chosen minus rejected implicit reward (= mean DPO logit);
    ``chosen_reward``, ``rejected_reward``: mean implicit reward of each side.
    """
    with torch.no_grad():
        r_w = implicit_reward(pol_chosen, ref_chosen, beta)
        r_l = implicit_reward(pol_rejected, ref_rejected, beta)
        _check_tensors(r_w=r_w, r_l=r_l)
        return {"reward_accuracy": float((r_w > r_l).double().mean()),
                "reward_margin": float((r_w - r_l).double().mean()),
                "chosen_reward": float(r_w.double().mean()),
                "rejected_reward": float(r_l.double().mean())}


# ---- IPO, KTO, ORPO -------------------------------------------------------------------------

def ipo_loss(pol_chosen: Tensor, pol_rejected: Tensor, ref_chosen: Tensor,
             ref_rejected: Tensor, tau: float) -> Tensor:
    """IPO (Azar et al. 2023): mean over pairs of (h - 1 / (2 tau))^2: four [B] -> scalar.

    h = (log pi_w - log pi_ref,w) - (log pi_l - log pi_ref,l), the *unscaled* log-ratio
    difference. The square is minimised at the finite margin h = 1 / (2 tau), whereas the DPO
    loss keeps falling as the margin grows, so under deterministic preferences DPO drifts on.
    """
    tau = _check_beta(tau, "tau")
    h = dpo_logits(pol_chosen, pol_rejected, ref_chosen, ref_rejected, 1.0)
    return ((h - 1.0 / (2.0 * tau)) ** 2).mean()


def kto_ref_point(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """KTO's reference point z0 = max(0, mean(log pi - log pi_ref)), detached: [B], [B] -> scalar.

    A batch estimate of KL(pi || pi_ref); KTO evaluates it on mismatched (x, y') pairs, so that
    it does not reward the batch's own responses, and passes no gradient through it.
    """
    _check_tensors(logp=logp, ref_logp=ref_logp)
    return (logp - ref_logp).mean().clamp(min=0.0).detach()


def kto_loss(logp: Tensor, ref_logp: Tensor, desirable: Tensor, beta: float,
             ref_point: float | Tensor, lambda_d: float = 1.0, lambda_u: float = 1.0) -> Tensor:
    """KTO (Ethayarajh et al. 2024) on unpaired responses: mean of lambda_y - v(y), a scalar.

    ``logp``, ``ref_logp`` [B]; ``desirable`` [B] bool; r = log pi - log pi_ref and z0 =
    ``ref_point`` (detached). v = lambda_d * sigmoid(beta (r - z0)) for desirable responses and
    lambda_u * sigmoid(beta (z0 - r)) for undesirable ones; lambda_y is lambda_d or lambda_u.
    """
    beta = _check_beta(beta)
    lam_d, lam_u = _check_beta(lambda_d, "lambda_d"), _check_beta(lambda_u, "lambda_u")
    _check_tensors(logp=logp, ref_logp=ref_logp)
    if not isinstance(desirable, Tensor) or desirable.dtype != torch.bool:
        raise TypeError("desirable must be a bool tensor")
    if desirable.shape != logp.shape:
        raise ValueError(f"desirable {tuple(desirable.shape)} must have the shape of logp "
                         f"{tuple(logp.shape)}")
    z0 = torch.as_tensor(ref_point, dtype=logp.dtype, device=logp.device).detach()
    if z0.numel() != 1 or not bool(torch.isfinite(z0)):
        raise ValueError(f"ref_point must be one finite number, got {ref_point!r}")
    r = logp - ref_logp.detach()
    value = torch.where(desirable, lam_d * torch.sigmoid(beta * (r - z0)),
                        lam_u * torch.sigmoid(beta * (z0 - r)))
    lam = torch.where(desirable, torch.full_like(r, lam_d), torch.full_like(r, lam_u))
    return (lam - value).mean()


def log_odds(mean_logp: Tensor) -> Tensor:
    """log(p / (1 - p)) with p = exp(mean_logp) < 1, elementwise; accurate for p near 1.

    log(1 - p) is computed as log(-expm1(mean_logp)), which keeps its digits when p -> 1.
    """
    if bool((mean_logp >= 0).any()):
        raise ValueError("mean token log-probabilities must be < 0: the odds p / (1 - p) are "
                         "undefined at p = 1")
    return mean_logp - torch.log(-torch.expm1(mean_logp))


def orpo_loss(nll_chosen: Tensor, mean_logp_chosen: Tensor, mean_logp_rejected: Tensor,
              lam: float) -> Tensor:
    """ORPO (Hong et al. 2024): NLL + lam * mean(-log sigmoid(log odds_w - log odds_l)).

    ``nll_chosen``: the SFT loss on the chosen responses, a scalar or [B] (averaged);
    ``mean_logp_*`` [B]: mean token log-probability of each response (length-normalised), so
    p = exp(mean_logp) and odds = p / (1 - p). No reference model takes part.
    """
    lam = check_in_range(lam, "lam", 0.0, math.inf, high_open=True)
    _check_tensors(mean_logp_chosen=mean_logp_chosen, mean_logp_rejected=mean_logp_rejected)
    if not isinstance(nll_chosen, Tensor) or nll_chosen.numel() == 0:
        raise ValueError("nll_chosen must be a non-empty tensor")
    ratio = log_odds(mean_logp_chosen) - log_odds(mean_logp_rejected)
    return nll_chosen.mean() + lam * (-F.logsigmoid(ratio)).mean()
