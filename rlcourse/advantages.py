"""Returns, TD errors and advantage estimators on padded [batch, time] tensors (notebook 06).

Every function here works on tensors of shape [B, T] (B sequences or environments, T steps) and
is shared by Part II (vector envs) and Part III (language models, where B = responses and
T = tokens). Conventions:

* ``rewards[:, t]`` is the reward that follows the action taken at step t;
* ``values[:, t] = V(s_t)`` and ``next_values[:, t] = V(s_{t+1})``, the value of the true next
  state (on a time-limit truncation: the final observation, so the return is bootstrapped);
* ``terminated[:, t]``: s_{t+1} is terminal, so its value is 0 and nothing is bootstrapped;
* ``dones[:, t]``: step t is the last of its episode for any reason (terminated, truncated or
  the end of a sequence); it stops the backward recursion;
* ``mask[:, t]``: 1 for real steps, 0 for padding or autoreset steps; losses average over it.
"""

from __future__ import annotations

import torch

from rlcourse.validation import check_gamma, check_in_range

Tensor = torch.Tensor


def _check(name: str, ref: Tensor, *others: tuple[str, Tensor | None]) -> None:
    if ref.ndim != 2:
        raise ValueError(f"{name} must have shape [batch, time], got {tuple(ref.shape)}")
    for other_name, t in others:
        if t is not None and tuple(t.shape) != tuple(ref.shape):
            raise ValueError(f"{other_name} has shape {tuple(t.shape)} but {name} has "
                             f"{tuple(ref.shape)}; all inputs must be [batch, time]")


def discounted_returns(rewards: Tensor, dones: Tensor, gamma: float,
                       bootstrap: Tensor | None = None) -> Tensor:
    """G_t = r_t + gamma * (1 - done_t) * G_{t+1}, computed backwards. Shapes [B, T] -> [B, T].

    ``bootstrap`` [B] is the value after the last step (0 if None); it is ignored for rows
    whose last step is done.
    """
    _check("rewards", rewards, ("dones", dones))
    gamma = check_gamma(gamma)
    keep = 1.0 - dones.to(rewards.dtype)
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0]) if bootstrap is None else bootstrap.to(rewards)
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, t] + gamma * keep[:, t] * running
        out[:, t] = running
    return out


def td_errors(rewards: Tensor, values: Tensor, next_values: Tensor, terminated: Tensor,
              gamma: float) -> Tensor:
    """delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t). Shapes [B, T].

    Gamma multiplies the next value only (not the difference V(s_{t+1}) - V(s_t)).
    """
    _check("rewards", rewards, ("values", values), ("next_values", next_values),
           ("terminated", terminated))
    gamma = check_gamma(gamma)
    alive = 1.0 - terminated.to(rewards.dtype)
    return rewards + gamma * alive * next_values - values


def gae(rewards: Tensor, values: Tensor, next_values: Tensor, terminated: Tensor,
        dones: Tensor, gamma: float, lam: float) -> Tensor:
    """Generalised advantage estimates [B, T]: A_t = delta_t + gamma*lam*(1 - done_t)*A_{t+1}.

    lam = 0 gives the one-step TD error; lam = 1 gives the Monte-Carlo return minus V(s_t)
    (bootstrapped with V at truncations). Value targets are ``gae(...) + values``.
    """
    _check("rewards", rewards, ("dones", dones))
    lam = check_gamma(lam, "lam")
    delta = td_errors(rewards, values, next_values, terminated, gamma)
    keep = 1.0 - dones.to(rewards.dtype)
    adv = torch.zeros_like(delta)
    running = torch.zeros_like(delta[:, 0])
    for t in range(delta.shape[1] - 1, -1, -1):
        running = delta[:, t] + gamma * lam * keep[:, t] * running
        adv[:, t] = running
    return adv


def masked_mean(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean of ``x`` over the entries where ``mask`` is 1 (all entries if None)."""
    if mask is None:
        return x.mean()
    if tuple(mask.shape) != tuple(x.shape):
        raise ValueError(f"mask has shape {tuple(mask.shape)} but x has {tuple(x.shape)}")
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def normalize(x: Tensor, mask: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """(x - mean) / (std + eps) over the masked entries; masked-out entries become 0."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) / (var.sqrt() + eps)
    return out if mask is None else out * mask.to(x.dtype)


# ---- how a per-token loss [B, T] becomes one number (GRPO, DAPO, Dr. GRPO; notebook 12) -----

AGGREGATION_MODES = ("seq_mean", "token_mean", "seq_sum_norm")


def token_weights(mask: Tensor, mode: str, constant: float | None = None) -> Tensor:
    """Weight [B, T] that each aggregation mode gives each token; padding gets 0.

    * ``"seq_mean"`` (GRPO): 1 / (n_seq * |o_i|): mean over each row's tokens, then over the
      n_seq rows that have at least one token (empty rows, e.g. filtered, get no weight);
    * ``"token_mean"`` (DAPO): 1 / sum_i |o_i|: every token weighs the same;
    * ``"seq_sum_norm"`` (Dr. GRPO): 1 / (B * constant) with a fixed ``constant`` (e.g. the
      maximum length), so the weight depends on neither the row's length nor the batch's.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must have shape [batch, time], got {tuple(mask.shape)}")
    if mode not in AGGREGATION_MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {AGGREGATION_MODES}")
    if (constant is not None) != (mode == "seq_sum_norm"):
        raise ValueError(f"constant is needed by mode 'seq_sum_norm' and only by it; got "
                         f"mode={mode!r}, constant={constant!r}")
    m = mask.to(mask.dtype if mask.is_floating_point() else torch.get_default_dtype())
    if mode == "token_mean":
        return m / m.sum().clamp_min(1.0)
    if mode == "seq_sum_norm":
        c = check_in_range(constant, "constant", 0.0, float("inf"), low_open=True, high_open=True)
        return m / (m.shape[0] * c)
    lengths = m.sum(1, keepdim=True)
    n_seq = (lengths > 0).sum().clamp_min(1)
    return m / (lengths.clamp_min(1.0) * n_seq)


def aggregate_token_loss(loss: Tensor, mask: Tensor, mode: str,
                         constant: float | None = None) -> Tensor:
    """Scalar  sum_{i,t} w_{i,t} * loss_{i,t}  with w = ``token_weights(mask, mode, constant)``.

    ``loss`` and ``mask`` are [B, T]; padded entries are ignored even if they hold NaN or inf.
    """
    _check("loss", loss, ("mask", mask))
    w = token_weights(mask.to(loss.dtype), mode, constant)
    return (w * loss.masked_fill(mask == 0, 0.0)).sum()
