"""The DPO family as pure functions of sequence log-probabilities, then DPO training on the
lab's preference pairs (:func:`train`; notebook 12).

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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import torch
import torch.nn.functional as F

from rlcourse.llm import task
from rlcourse.validation import (
    check_distribution,
    check_in_range,
    check_positive_int,
    check_same_length,
)

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


# ---- training on the lab's preference pairs --------------------------------------------------

@dataclass(frozen=True)
class DPOConfig:
    """Course defaults for DPO from the cached SFT model on the annotator's preference pairs
    (the same pairs the reward model of notebook 10 trains on)."""

    beta: float = 0.1
    steps: int = 150
    batch_size: int = 64
    lr: float = 1e-4
    warmup: int = 10
    max_grad_norm: float = 1.0
    eval_every: int = 50       # greedy held-out gold accuracy every this many steps (0: end)
    n_eval: int = 500

    def __post_init__(self) -> None:
        _check_beta(self.beta)
        for name in ("steps", "batch_size", "warmup", "n_eval"):
            check_positive_int(getattr(self, name), name)
        check_in_range(self.lr, "lr", 0.0, 1.0, low_open=True)
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every}")


def check_same_prompt_tokens(chosen, rejected) -> None:
    """Raise ``ValueError`` unless row i of the chosen and the rejected
    :class:`rlcourse.llm.sft.Batch` start with the same prompt tokens, for every i (the
    tokenised form of :func:`check_same_prompts`; ``response_mask`` marks where answers start)."""
    if chosen.input_ids.shape[0] != rejected.input_ids.shape[0]:
        raise ValueError(f"{chosen.input_ids.shape[0]} chosen rows but "
                         f"{rejected.input_ids.shape[0]} rejected rows")
    start_c = chosen.response_mask.float().argmax(1) + 1   # first response token of each row
    start_r = rejected.response_mask.float().argmax(1) + 1
    width = min(chosen.input_ids.shape[1], rejected.input_ids.shape[1])
    pos = torch.arange(width, device=chosen.input_ids.device)
    in_prompt = pos[None, :] < start_c[:, None]
    differ = (start_c != start_r) | ((chosen.input_ids[:, :width] != rejected.input_ids[:, :width])
                                     & in_prompt).any(1)
    if bool(differ.any()):
        i = int(differ.nonzero()[0])
        raise ValueError(f"preference pairs whose prompts differ: first at row {i} (prompt "
                         f"tokens {chosen.input_ids[i, :int(start_c[i])].tolist()} vs "
                         f"{rejected.input_ids[i, :int(start_r[i])].tolist()})")


def pair_logprobs(model, chosen, rejected) -> tuple[Tensor, Tensor]:
    """Sequence log-probs [B] of the chosen and rejected rows (right-padded
    :class:`rlcourse.llm.sft.Batch` of one width), response tokens only, in one forward pass.
    Raises ``ValueError`` if a pair's two rows have different prompts."""
    from rlcourse.llm.logprobs import model_token_logprobs, sequence_logprob

    check_same_prompt_tokens(chosen, rejected)
    n = chosen.input_ids.shape[0]
    ids = torch.cat([chosen.input_ids, rejected.input_ids])
    mask = torch.cat([chosen.attention_mask, rejected.attention_mask])
    resp = torch.cat([chosen.response_mask, rejected.response_mask])
    seq = sequence_logprob(model_token_logprobs(model, ids, mask), resp)
    return seq[:n], seq[n:]


@torch.no_grad()
def reference_logprobs(ref, data, chunk: int = 1024) -> tuple[Tensor, Tensor]:
    """:func:`pair_logprobs` of the frozen reference over all pairs of ``data`` (a
    :class:`rlcourse.llm.reward_model.PairTensors`), computed once: ([N], [N])."""
    out_c, out_r = [], []
    for i in range(0, len(data), chunk):
        c, r = pair_logprobs(ref, *data.rows(torch.arange(i, min(i + chunk, len(data)))))
        out_c.append(c)
        out_r.append(r)
    return torch.cat(out_c), torch.cat(out_r)


def dpo_step(policy, optimizer, chosen, rejected, ref_chosen: Tensor, ref_rejected: Tensor,
             beta: float, max_grad_norm: float = 1.0) -> dict[str, float]:
    """One optimiser step on :func:`dpo_loss` of B pairs; returns the loss before the step,
    :func:`dpo_metrics` and the mean sequence log-probs of both sides."""
    pol_c, pol_r = pair_logprobs(policy, chosen, rejected)
    loss = dpo_loss(pol_c, pol_r, ref_chosen, ref_rejected, beta)
    return _step_and_report(policy, optimizer, loss, pol_c, pol_r, ref_chosen, ref_rejected,
                            beta, max_grad_norm)


def _step_and_report(policy, optimizer, loss: Tensor, pol_c: Tensor, pol_r: Tensor,
                     ref_c: Tensor, ref_r: Tensor, beta: float,
                     max_grad_norm: float) -> dict[str, float]:
    """Backward ``loss``, clip, step; the loss, :func:`dpo_metrics` and mean log-probs [B]."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
    optimizer.step()
    return {"loss": float(loss.detach()),
            **dpo_metrics(pol_c.detach(), pol_r.detach(), ref_c, ref_r, beta),
            "logp_chosen": float(pol_c.detach().mean()),
            "logp_rejected": float(pol_r.detach().mean())}


@dataclass
class DPOResult:
    """``history``: per step the entries of :func:`dpo_step`, plus ``eval_step`` and
    ``gold_accuracy``; ``start``/``final``: :func:`rlcourse.llm.rlhf.evaluate_policy` of the SFT
    model and of the trained policy (``final`` also has ``seconds`` and ``cpu_seconds``)."""

    config: DPOConfig
    history: dict[str, list[float]]
    start: dict[str, float]
    final: dict[str, float]
    policy: object = field(repr=False)


def train(seed: int = 0, *, progress: bool = True, sft_cfg=None, root=None,
          rm_overrides: dict | None = None, **overrides) -> DPOResult:
    """DPO from the cached SFT model of ``seed`` on the preference pairs of
    :func:`rlcourse.llm.reward_model.training_pairs` (``rm_overrides`` change their
    :class:`~rlcourse.llm.reward_model.RMConfig`), with :class:`DPOConfig` changed by
    ``overrides``."""
    from rlcourse.llm import reward_model as rmod
    from rlcourse.llm import rlhf
    from rlcourse.llm.sft import SFTConfig, sft_model

    cfg = replace(DPOConfig(), **overrides)
    sft_cfg = sft_cfg or SFTConfig()
    policy, tok, _ = sft_model(sft_cfg, seed, root=root, progress=progress)
    ref = rlhf.frozen_copy(policy)
    train_set, held = task.split_problems(sft_cfg.split_seed, sft_cfg.n_heldout)
    rm_cfg = rmod.RMConfig(**{"sft": sft_cfg, **(rm_overrides or {})})
    data = rmod.encode_pairs(tok, rmod.training_pairs(rm_cfg, policy, tok, train_set, seed))
    ref_c, ref_r = reference_logprobs(ref, data)
    evaluate = partial(rlhf.evaluate_policy, ref=ref, tokenizer=tok, problems=held[:cfg.n_eval],
                       reward_fn=rlhf.gold_reward_fn, cfg=rlhf.Config(), seed=seed)
    start = evaluate(policy)
    history = _dpo_loop(policy, data, ref_c, ref_r, cfg, seed, progress,
                        lambda: evaluate(policy)["gold_accuracy"])
    final = evaluate(policy)
    final.update(seconds=history.pop("seconds"), cpu_seconds=history.pop("cpu_seconds"),
                 **rlhf.memory_held(policy, ref))
    history["eval_step"].append(cfg.steps)
    history["gold_accuracy"].append(final["gold_accuracy"])
    return DPOResult(cfg, history, start, final, policy)


def _dpo_loop(policy, data, ref_c: Tensor, ref_r: Tensor, cfg: DPOConfig, seed: int,
              progress: bool, accuracy) -> dict:
    """The training loop of :func:`train`: :func:`run_dpo` with the reference log-probs
    computed once, ``accuracy()`` every ``cfg.eval_every`` steps (``train`` evaluates the end
    itself), and the loop's wall and CPU ``seconds``/``cpu_seconds``."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    hist = run_dpo(policy, None, data, cfg, seed=seed, accuracy=accuracy, progress=progress,
                   desc=f"DPO seed {seed}", ref_logps=(ref_c, ref_r), eval_at_end=False)
    hist["seconds"], hist["cpu_seconds"] = time.perf_counter() - wall0, time.process_time() - cpu0
    return hist


# ---- notebook 12: a step with its own reference pass, a generic loop, the debugging lab ------

#: The bugs of notebook 12's debugging lab (``bug`` of :func:`debug_dpo_step`).
DEBUG_BUGS = ("reference = policy", "swapped", "averaged", "prompt counted",
              "prompt counted, averaged")


def pair_logprobs_as(model, chosen, rejected, *, average: bool = False,
                     include_prompt: bool = False) -> tuple[Tensor, Tensor]:
    """:func:`pair_logprobs` with two reductions DPO must not use, as options: [B], [B].

    ``average``: mean instead of sum over the counted tokens; ``include_prompt``: count the
    prompt's tokens too (``Batch.all_mask`` instead of ``Batch.response_mask``).
    """
    from rlcourse.llm.logprobs import model_token_logprobs

    check_same_prompt_tokens(chosen, rejected)
    n = chosen.input_ids.shape[0]
    ids = torch.cat([chosen.input_ids, rejected.input_ids])
    attn = torch.cat([chosen.attention_mask, rejected.attention_mask])
    if include_prompt:
        cols = torch.cat([chosen.all_mask, rejected.all_mask])
    else:
        cols = torch.cat([chosen.response_mask, rejected.response_mask])
    tok = model_token_logprobs(model, ids, attn)
    m = cols.to(tok.dtype)
    seq = (tok * m).sum(-1)
    if average:
        seq = seq / m.sum(-1).clamp(min=1.0)
    return seq[:n], seq[n:]


def dpo_step_with_reference(policy, ref, optimizer, chosen, rejected, beta: float,
                            max_grad_norm: float = 1.0) -> dict[str, float]:
    """:func:`dpo_step` that runs the frozen ``ref`` itself (under ``no_grad``) on the same
    B pairs: the signature of notebook 12's exercise. Returns :func:`dpo_step`'s dict."""
    with torch.no_grad():
        ref_c, ref_r = pair_logprobs(ref, chosen, rejected)
    return dpo_step(policy, optimizer, chosen, rejected, ref_c, ref_r, beta, max_grad_norm)


def debug_dpo_step(policy, ref, optimizer, chosen, rejected, beta: float,
                   max_grad_norm: float = 1.0, *, bug: str | None = None) -> dict[str, float]:
    """:func:`dpo_step_with_reference` with one of :data:`DEBUG_BUGS` planted (None: no bug).

    "reference = policy": the anchor is the live policy; "swapped": policy and reference trade
    places in a loss that detaches nothing; "averaged" / "prompt counted": the reductions of
    :func:`pair_logprobs_as`. Returns the metrics *as the buggy code logs them*.
    """
    if bug is not None and bug not in DEBUG_BUGS:
        raise ValueError(f"bug must be None or one of {DEBUG_BUGS}, got {bug!r}")
    bug = bug or ""
    opts = {"average": "averaged" in bug, "include_prompt": "prompt" in bug}
    anchor = policy if bug == "reference = policy" else ref
    with torch.no_grad():
        ref_c, ref_r = pair_logprobs_as(anchor, chosen, rejected, **opts)
    pol_c, pol_r = pair_logprobs_as(policy, chosen, rejected, **opts)
    if bug == "swapped":
        loss = -F.logsigmoid(beta * ((ref_c - pol_c) - (ref_r - pol_r))).mean()
    else:
        loss = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta)
    return _step_and_report(policy, optimizer, loss, pol_c, pol_r, ref_c, ref_r, beta,
                            max_grad_norm)


@torch.no_grad()
def evaluate_pairs(policy, ref, chosen, rejected, beta: float) -> dict[str, float]:
    """The correct DPO loss, :func:`dpo_metrics` and mean sequence log-probs of B pairs,
    without a step (to measure any policy, buggy runs included, the same way)."""
    pol_c, pol_r = pair_logprobs(policy, chosen, rejected)
    ref_c, ref_r = pair_logprobs(ref, chosen, rejected)
    return {"loss": float(dpo_loss(pol_c, pol_r, ref_c, ref_r, beta)),
            **dpo_metrics(pol_c, pol_r, ref_c, ref_r, beta),
            "logp_chosen": float(pol_c.mean()), "logp_rejected": float(pol_r.mean())}


def run_dpo(policy, ref, data, cfg: DPOConfig, *, seed: int = 0, step_fn=None,
            accuracy=None, progress: bool = True, desc: str = "DPO",
            ref_logps: tuple[Tensor, Tensor] | None = None,
            eval_at_end: bool = True) -> dict[str, list]:
    """``cfg.steps`` DPO steps on random minibatches of ``data`` (PairTensors) with AdamW,
    warm-up and cosine decay, each ``step_fn(policy, ref, opt, chosen, rejected, beta,
    max_grad_norm) -> dict`` (default :func:`dpo_step_with_reference`). With ``ref_logps``,
    the reference's log-probs of every pair ([N], [N], computed once), each step is
    :func:`dpo_step` on their rows instead (no ``ref`` or ``step_fn`` then). Returns the
    per-step history, plus ``eval_step``/``gold_accuracy`` from ``accuracy()`` every
    ``cfg.eval_every`` steps and, with ``eval_at_end``, at the end (when ``accuracy`` is
    given)."""
    from tqdm.auto import tqdm

    from rlcourse.llm.sft import lr_at

    if ref_logps is not None:
        if step_fn is not None:
            raise ValueError("pass either ref_logps (precomputed reference) or step_fn")
        ref_c, ref_r = ref_logps

        def step_fn(policy, _ref, opt, chosen, rejected, beta, max_grad_norm):
            # idx: the rows of this step's minibatch, drawn in the loop below
            return dpo_step(policy, opt, chosen, rejected, ref_c[idx], ref_r[idx], beta,
                            max_grad_norm)
    step_fn = step_fn or dpo_step_with_reference
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(int(seed))
    hist: dict = {"eval_step": [], "gold_accuracy": []}
    policy.train()
    for step in tqdm(range(cfg.steps), desc=desc, disable=not progress, leave=False,
                     mininterval=1.0):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg.steps, cfg.lr, cfg.warmup)
        idx = torch.randint(0, len(data), (cfg.batch_size,), generator=gen)
        row = step_fn(policy, ref, opt, *data.rows(idx), cfg.beta, cfg.max_grad_norm)
        for k, v in row.items():
            hist.setdefault(k, []).append(float(v))
        last = step + 1 == cfg.steps
        if accuracy is not None and ((last and eval_at_end) or (
                cfg.eval_every and (step + 1) % cfg.eval_every == 0 and not last)):
            policy.eval()
            hist["eval_step"].append(step + 1)
            hist["gold_accuracy"].append(float(accuracy()))
            policy.train()
    policy.eval()
    return hist


def onpolicy_round_pairs(policy, tokenizer, problems: Sequence[task.Problem], annotator,
                         seed: int, samples_per_prompt: int = 4, temperature: float = 1.0):
    """Preference data for one round of iterative (online) DPO: ``samples_per_prompt``
    responses per problem sampled from ``policy``, one pair per problem with two distinct
    samples, labelled by ``annotator``. Returns (pairs, PairTensors)."""
    import numpy as np

    from rlcourse.llm import reward_model as rmod

    check_positive_int(samples_per_prompt, "samples_per_prompt")
    samples = rmod.sample_responses(policy, tokenizer, problems, samples_per_prompt,
                                    temperature, seed=seed)
    pairs = rmod.onpolicy_pairs(problems, samples, annotator, np.random.default_rng([seed, 12]))
    if not pairs:
        raise ValueError("every problem's samples were identical: no pair to train on")
    return pairs, rmod.encode_pairs(tokenizer, pairs)


def reward_accuracy(pol_chosen: Tensor, pol_rejected: Tensor, ref_chosen: Tensor,
                    ref_rejected: Tensor, beta: float) -> tuple[Tensor, Tensor, float]:
    """(implicit rewards of the chosen [B], of the rejected [B], reward accuracy), detached;
    the accuracy is the fraction of pairs with chosen strictly above rejected (ties count 0)."""
    with torch.no_grad():
        r_w = implicit_reward(pol_chosen, ref_chosen, beta)
        r_l = implicit_reward(pol_rejected, ref_rejected, beta)
        _check_tensors(r_w=r_w, r_l=r_l)
        return r_w, r_l, float((r_w > r_l).double().mean())
