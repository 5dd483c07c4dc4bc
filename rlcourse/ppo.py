"""Trust regions and PPO (notebook 07): ratios, clipped surrogate, value loss, KL estimates.

All losses are written to be *minimised* (loss = -objective) and average over a mask of real
steps, so they serve both vector-env rollouts and padded language-model batches ([B, T]).
"""

from __future__ import annotations

import torch

from rlcourse.advantages import masked_mean
from rlcourse.validation import check_in_range

Tensor = torch.Tensor


def clipped_surrogate(logp: Tensor, logp_old: Tensor, adv: Tensor, clip_eps: float = 0.2,
                      mask: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
    """PPO-clip policy loss  -mean( min(r A, clip(r, 1-eps, 1+eps) A) ),  r = pi/pi_old.

    Shapes: any shape, all equal (e.g. [B, T] with ``mask`` [B, T]). Returns (loss, stats) with
    the fraction of clipped samples and the k3 estimate of KL(pi_old || pi).
    """
    eps = check_in_range(clip_eps, "clip_eps", 0.0, 1.0, low_open=True)
    if not (logp.shape == logp_old.shape == adv.shape):
        raise ValueError(f"logp {tuple(logp.shape)}, logp_old {tuple(logp_old.shape)} and "
                         f"adv {tuple(adv.shape)} must have the same shape")
    log_ratio = logp - logp_old
    ratio = log_ratio.exp()
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv)
    loss = -masked_mean(surrogate, mask)
    with torch.no_grad():
        clipped = ((ratio - 1).abs() > eps).to(adv.dtype)
        stats = {"clip_fraction": float(masked_mean(clipped, mask)),
                 "approx_kl": float(masked_mean(kl_k3(log_ratio), mask))}
    return loss, stats


def clipped_value_loss(values: Tensor, old_values: Tensor, targets: Tensor,
                       clip_eps: float | None = None, mask: Tensor | None = None) -> Tensor:
    """0.5 * mean squared error to ``targets``; with ``clip_eps``, PPO's pessimistic clipped form.

    The clipped form takes the larger of the errors of ``values`` and of
    ``old_values + clip(values - old_values, -eps, eps)``.
    """
    err = (values - targets) ** 2
    if clip_eps is not None:
        moved = old_values + (values - old_values).clamp(-clip_eps, clip_eps)
        err = torch.maximum(err, (moved - targets) ** 2)
    return 0.5 * masked_mean(err, mask)


def kl_k1(log_ratio: Tensor) -> Tensor:
    """k1 = -log r with r = p(x)/q(x), x ~ q: unbiased for KL(q || p), but can be negative."""
    return -log_ratio


def kl_k2(log_ratio: Tensor) -> Tensor:
    """k2 = (log r)^2 / 2: biased, always >= 0, low variance when p and q are close."""
    return 0.5 * log_ratio ** 2


def kl_k3(log_ratio: Tensor) -> Tensor:
    """k3 = (r - 1) - log r, x ~ q: unbiased for KL(q || p) and always >= 0."""
    return torch.expm1(log_ratio) - log_ratio
