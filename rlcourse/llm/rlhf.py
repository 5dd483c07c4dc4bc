"""RLHF with PPO on the lab's GPT: four models, make_experience, per-token KL rewards (notebook 11).

The objective, for prompts x from the data and responses y sampled from the *policy*:

    J(theta) = E_{x, y ~ pi_theta(.|x)} [ r(x, y) - beta * log(pi_theta(y|x) / pi_ref(y|x)) ],

whose second term averages to beta * KL(pi_theta || pi_ref). PPO optimises it token by token:

* **per-token reward** (:func:`per_token_rewards`):
  r_t = -beta * (log pi_old(y_t) - log pi_ref(y_t)) on every response token, plus the
  sequence score r(x, y) on the last real token, so that
  sum_t r_t = r(x, y) - beta * log(pi_old(y|x) / pi_ref(y|x));
* **masked token-level GAE** (:func:`token_gae`) with Part II's :func:`rlcourse.advantages.gae`
  (gamma = 1, lambda = 0.95): the last real token is terminal, padding is masked out;
* **losses** from Part II: :func:`rlcourse.ppo.clipped_surrogate` for the actor and
  :func:`rlcourse.ppo.clipped_value_loss` for the critic, both averaged over the response mask.

Four models take part: the actor (trained), the critic (:class:`ValueModel`, trained), the reward
function (frozen; the learned RM, or the gold reward as an oracle) and the reference (the frozen
SFT model). :func:`make_experience` is the rollout step, :func:`ppo_update` the learning step and
:func:`train` the loop, starting from the cached SFT model (:func:`rlcourse.llm.sft.sft_model`).

Shapes: B responses, T = prompt + response tokens of ``sequences``; per-token tensors of an
:class:`Experience` have R = T - P columns, one per response token (column k scores the token at
position P + k and holds the value of the state before it).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
import torch
from torch import nn

from rlcourse import advantages as adv_lib
from rlcourse import ppo
from rlcourse.llm import task
from rlcourse.llm.logprobs import last_token_index, position_ids, response_mask, token_logprobs
from rlcourse.llm.model import generate
from rlcourse.validation import check_gamma, check_in_range, check_positive_int

Tensor = torch.Tensor
RewardFn = Callable[[Sequence[str], Sequence[str]], Tensor]


@dataclass(frozen=True)
class Config:
    """Course defaults for RLHF-PPO on the lab task (``kl_target`` set = adaptive beta).

    Measured on the shared 2-core CPU, one torch thread, SFT seed 0, gold reward: 40 updates
    (about 36 CPU-s) took greedy held-out accuracy from 0.57 to 0.96 with KL 0.87 nats per
    response; 10 updates already reached 0.92.
    """

    updates: int = 40               # rollouts (each followed by ``epochs`` passes of PPO)
    n_prompts: int = 64             # prompts per rollout, one sampled response each
    minibatch: int = 32
    epochs: int = 4
    lr: float = 1e-4                # actor
    critic_lr: float = 3e-4
    beta: float = 0.05              # KL coefficient (reward units per nat); see RM_BETA
    kl_target: float | None = None  # nats per response; None keeps beta fixed
    clip_eps: float = 0.2
    value_clip: float | None = 0.2
    gamma: float = 1.0
    lam: float = 0.95
    temperature: float = 1.0
    max_new_tokens: int = 6
    max_grad_norm: float = 1.0
    normalize_advantages: bool = True
    mask_advantages: bool = True    # False = the debugging lab's "unmasked advantages" bug
    ref_is_policy: bool = False     # True = the debugging lab's "reference = policy" bug
    eval_every: int = 10            # greedy held-out accuracy every this many updates (0: end)
    n_eval: int = 500

    def __post_init__(self) -> None:
        for name in ("updates", "n_prompts", "minibatch", "epochs", "max_new_tokens", "n_eval"):
            check_positive_int(getattr(self, name), name)
        for name in ("lr", "critic_lr"):
            check_in_range(getattr(self, name), name, 0.0, 1.0, low_open=True)
        check_in_range(self.beta, "beta", 0.0, 100.0)
        check_in_range(self.clip_eps, "clip_eps", 0.0, 1.0, low_open=True)
        check_gamma(self.gamma)
        check_gamma(self.lam, "lam")
        if self.kl_target is not None and (self.kl_target <= 0 or self.beta <= 0):
            raise ValueError("adaptive beta needs kl_target > 0 and beta > 0")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every}")

    def to_dict(self) -> dict:
        """All fields as plain values."""
        return asdict(self)


@dataclass
class Experience:
    """One rollout. ``sequences``/``attention_mask`` [B, T] (prompt then response; mask 1 up to
    and including the first eos); per-token [B, R] tensors: ``action_mask`` (real response
    tokens), ``logp`` (old policy), ``ref_logp``, ``values`` (critic, state before each token),
    ``rewards`` (:func:`per_token_rewards`), ``advantages`` and ``returns`` (:func:`token_gae`);
    ``score`` [B] the reward function's score of each response."""

    prompts: list[str]
    responses: list[str]
    sequences: Tensor
    attention_mask: Tensor
    response_start: int
    action_mask: Tensor
    logp: Tensor
    ref_logp: Tensor
    values: Tensor
    score: Tensor
    rewards: Tensor
    advantages: Tensor
    returns: Tensor

    def __len__(self) -> int:
        return int(self.sequences.shape[0])

    def select(self, index: Tensor) -> Experience:
        """The rows ``index`` of every tensor and list (a minibatch)."""
        rows = index.tolist()
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = (v[index] if isinstance(v, Tensor) else
                           [v[i] for i in rows] if isinstance(v, list) else v)
        return Experience(**out)


# ---- models -----------------------------------------------------------------------------------

class ValueModel(nn.Module):
    """The critic: a transformer body with a scalar head, V(prefix) at every position [B, T]."""

    def __init__(self, body: nn.Module, hidden_size: int):
        super().__init__()
        self.body = body
        self.head = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Values [B, T]: column t is the value of the prefix that ends at token t."""
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask,
                           position_ids=position_ids(attention_mask)).last_hidden_state
        return self.head(hidden).squeeze(-1)


def make_critic(policy) -> ValueModel:
    """A critic initialised from a copy of ``policy``'s transformer body, with a zero head."""
    return ValueModel(copy.deepcopy(policy.base_model), int(policy.config.hidden_size))


def frozen_copy(model):
    """A deep copy of ``model`` in eval mode with gradients off (the reference)."""
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def parameter_bytes(model: nn.Module) -> int:
    """Bytes held by the parameters of ``model``."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def memory_held(*models) -> dict[str, int]:
    """What a trainer holds: ``models_in_memory`` (distinct networks; a reward model's wrapper
    counts as its network) and ``parameter_bytes`` (their parameters, a shared tensor once).
    Measured from the objects, so a trainer that aliases two roles counts one model."""
    nets: dict[int, nn.Module] = {}
    for m in models:
        net = getattr(m, "model", m)
        if not isinstance(net, nn.Module):
            raise TypeError(f"expected a torch module or a reward model, got {type(m).__name__}")
        nets.setdefault(id(net), net)
    params = {id(p): p for net in nets.values() for p in net.parameters()}
    return {"models_in_memory": len(nets),
            "parameter_bytes": sum(p.numel() * p.element_size() for p in params.values())}


def optimizer_bytes(opt: torch.optim.Optimizer) -> int:
    """Bytes of the tensors in ``opt``'s state (Adam: two moments per parameter)."""
    return sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values()
               if isinstance(v, Tensor) and v.ndim > 0)


# ---- the math (pure) --------------------------------------------------------------------------

def _check_bt(name: str, ref: Tensor, **others: Tensor) -> None:
    if ref.ndim != 2:
        raise ValueError(f"{name} must be [B, T], got {tuple(ref.shape)}")
    for k, v in others.items():
        if tuple(v.shape) != tuple(ref.shape):
            raise ValueError(f"{k} {tuple(v.shape)} must match {name} {tuple(ref.shape)}")


def per_token_rewards(score: Tensor, logp: Tensor, ref_logp: Tensor, mask: Tensor,
                      beta: float) -> Tensor:
    """Rewards [B, T]: -beta * (logp - ref_logp) on each masked token, plus ``score`` [B] on
    each row's last masked token; 0 on padding. Their row sums are score - beta * log-ratio."""
    _check_bt("logp", logp, ref_logp=ref_logp, mask=mask)
    if score.shape != (logp.shape[0],):
        raise ValueError(f"score must be [B] = [{logp.shape[0]}], got {tuple(score.shape)}")
    m = mask.to(logp.dtype)
    rewards = -float(beta) * (logp - ref_logp) * m
    rows = torch.arange(logp.shape[0], device=logp.device)
    rewards[rows, last_token_index(mask)] += score.to(logp.dtype)
    return rewards


def token_gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0,
              lam: float = 0.95) -> tuple[Tensor, Tensor]:
    """(advantages, returns) [B, T] by :func:`rlcourse.advantages.gae` over response tokens.

    The last masked token of each row is terminal (nothing after it is bootstrapped); padding
    gets 0. ``returns = advantages + values`` are the critic's targets.
    """
    _check_bt("rewards", rewards, values=values, mask=mask)
    m = mask.to(rewards.dtype)
    end = torch.zeros_like(m)
    end[torch.arange(m.shape[0]), last_token_index(mask)] = 1.0
    v = values * m
    next_v = torch.cat([v[:, 1:], torch.zeros_like(v[:, :1])], dim=1)
    adv = adv_lib.gae(rewards * m, v, next_v, end.bool(), end.bool(), gamma, lam) * m
    return adv, (adv + v) * m


def sequence_kl_exact(logits: Tensor, ref_logits: Tensor, mask: Tensor) -> Tensor:
    """Sum over masked positions of KL(pi(.|prefix) || ref(.|prefix)) from the full next-token
    distributions: logits [B, T, V] (already aligned with ``mask`` [B, T]) -> [B]."""
    kl = ppo.categorical_kl(logits.float(), ref_logits.float())
    return (kl * mask.to(kl.dtype)).sum(1)


def rlhf_objective(score: Tensor, logp: Tensor, ref_logp: Tensor, beta: float) -> Tensor:
    """Per-sample KL-regularised objective r(x, y) - beta * log(pi(y|x) / pi_ref(y|x)).

    ``score``, ``logp`` and ``ref_logp`` are [B] sequence-level values; returns [B].
    """
    return score - beta * (logp - ref_logp)


# ---- rollout ----------------------------------------------------------------------------------

def sample(policy, tokenizer, prompts: Sequence[str], cfg: Config,
           generator: torch.Generator):
    """Responses sampled from ``policy`` (a :class:`rlcourse.llm.model.Generation`), drawn
    with a seed taken from ``generator`` so the global torch RNG is left alone."""
    from transformers.utils import logging

    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    level = logging.get_verbosity()
    logging.set_verbosity_error()  # HF generate warns about padding it handles itself
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return generate(policy, tokenizer, prompts, cfg.max_new_tokens, do_sample=True,
                            temperature=cfg.temperature)
    finally:
        logging.set_verbosity(level)


def response_logits(model, sequences: Tensor, attention_mask: Tensor, start: int) -> Tensor:
    """Logits [B, R, V] that score the response tokens (positions start .. T-1)."""
    logits = model(input_ids=sequences, attention_mask=attention_mask,
                   position_ids=position_ids(attention_mask)).logits
    return logits[:, start - 1:-1]


def response_logprobs(model, sequences: Tensor, attention_mask: Tensor,
                      start: int) -> Tensor:
    """log pi(token) [B, R] of each response token under ``model`` (with gradients)."""
    logits = model(input_ids=sequences, attention_mask=attention_mask,
                   position_ids=position_ids(attention_mask)).logits
    return token_logprobs(logits, sequences)[:, start - 1:]


def response_values(critic: ValueModel, sequences: Tensor, attention_mask: Tensor,
                    start: int) -> Tensor:
    """V(state before each response token) [B, R] (with gradients)."""
    return critic(sequences, attention_mask)[:, start - 1:-1]


def response_action_mask(attention_mask: Tensor, start: int) -> Tensor:
    """Mask [B, R] of real response tokens (up to and including the first eos)."""
    return response_mask(attention_mask, start)[:, start - 1:]


@torch.no_grad()
def make_experience(policy, ref, critic, reward_fn: RewardFn, tokenizer,
                    prompts: Sequence[str], cfg: Config,
                    generator: torch.Generator) -> Experience:
    """Sample one response per prompt from ``policy``, score it, and fill an
    :class:`Experience` (old and reference log-probs, values, per-token rewards, GAE)."""
    gen = sample(policy, tokenizer, prompts, cfg, generator)
    seq, attn, start = gen.sequences, gen.attention_mask, gen.response_start
    mask = response_action_mask(attn, start)
    logp = response_logprobs(policy, seq, attn, start)
    ref_logp = response_logprobs(ref, seq, attn, start)
    values = response_values(critic, seq, attn, start) * mask
    score = torch.as_tensor(reward_fn(list(prompts), gen.responses), dtype=torch.float32)
    rewards = per_token_rewards(score, logp, ref_logp, mask, cfg.beta)
    advantages, returns = token_gae(rewards, values, mask, cfg.gamma, cfg.lam)
    return Experience(list(prompts), gen.responses, seq, attn, start, mask, logp, ref_logp,
                      values, score, rewards, advantages, returns)


# ---- learning ---------------------------------------------------------------------------------

def ppo_losses(policy, critic: ValueModel, mb: Experience,
               cfg: Config) -> tuple[Tensor, Tensor, dict[str, float]]:
    """(policy_loss, value_loss, stats) on a minibatch: Part II's clipped surrogate over the
    response tokens (all columns when ``cfg.mask_advantages`` is False) and clipped value loss."""
    logits = response_logits(policy, mb.sequences, mb.attention_mask, mb.response_start)
    tokens = mb.sequences[:, mb.response_start:].long().unsqueeze(-1)
    logp = torch.log_softmax(logits.float(), -1).gather(-1, tokens).squeeze(-1)
    mask = mb.action_mask if cfg.mask_advantages else None
    policy_loss, stats = ppo.clipped_surrogate(logp, mb.logp, mb.advantages, cfg.clip_eps, mask)
    values = response_values(critic, mb.sequences, mb.attention_mask, mb.response_start)
    value_loss = ppo.clipped_value_loss(values, mb.values, mb.returns, cfg.value_clip,
                                        mb.action_mask)
    with torch.no_grad():
        stats["entropy"] = float(adv_lib.masked_mean(ppo.categorical_entropy(logits.float()),
                                                     mb.action_mask))
    stats["value_loss"] = float(value_loss.detach())
    return policy_loss, value_loss, stats


def _step(loss: Tensor, model: nn.Module, opt: torch.optim.Optimizer, max_norm: float) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()


def ppo_update(policy, critic: ValueModel, exp: Experience, cfg: Config,
               opt_policy: torch.optim.Optimizer, opt_critic: torch.optim.Optimizer,
               generator: torch.Generator) -> dict[str, float]:
    """``cfg.epochs`` passes of minibatch PPO over one rollout; returns the mean stats
    (clip_fraction, approx_kl, entropy, value_loss). Actor and critic have separate losses."""
    adv = exp.advantages
    if cfg.normalize_advantages:
        adv = adv_lib.normalize(adv, exp.action_mask if cfg.mask_advantages else None)
    exp = replace(exp, advantages=adv)
    policy.train()
    critic.train()
    logs: list[dict[str, float]] = []
    for _ in range(cfg.epochs):
        order = torch.randperm(len(exp), generator=generator)
        for i in range(0, len(exp), cfg.minibatch):
            mb = exp.select(order[i:i + cfg.minibatch])
            policy_loss, value_loss, stats = ppo_losses(policy, critic, mb, cfg)
            _step(policy_loss, policy, opt_policy, cfg.max_grad_norm)
            _step(value_loss, critic, opt_critic, cfg.max_grad_norm)
            logs.append(stats)
    policy.eval()
    critic.eval()
    return {k: float(np.mean([s[k] for s in logs])) for k in logs[0]}


# ---- rewards and evaluation -------------------------------------------------------------------

def gold_reward_fn(prompts: Sequence[str], responses: Sequence[str]) -> Tensor:
    """The oracle reward: :func:`rlcourse.llm.task.gold_reward` of each pair -> [B]."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    return torch.tensor([task.gold_reward(p, r) for p, r in zip(prompts, responses)])


def reward_function(reward: str, seed: int = 0, rm_overrides: dict | None = None, *,
                    sft_cfg=None, root=None) -> tuple[RewardFn, object | None]:
    """(reward_fn, reward_model or None) for ``reward`` in {"rm", "gold"}; the RM is the cached
    one for ``seed``, the SFT config ``sft_cfg`` and ``rm_overrides`` (e.g. ``length_bias``),
    from :func:`rlcourse.llm.reward_model.load_reward_model`."""
    if reward == "gold":
        return gold_reward_fn, None
    if reward != "rm":
        raise ValueError(f"reward must be 'rm' or 'gold', got {reward!r}")
    try:
        from rlcourse.llm.reward_model import load_reward_model
    except ImportError as err:
        raise RuntimeError("reward='rm' needs rlcourse.llm.reward_model (the learned reward "
                           "model); use reward='gold' for the oracle") from err
    extra = {} if sft_cfg is None else {"sft": sft_cfg}
    rm = load_reward_model(seed=seed, root=root, **extra, **(rm_overrides or {}))
    return rm.score, rm


@torch.no_grad()
def kl_to_reference(policy, ref, tokenizer, prompts: Sequence[str], cfg: Config,
                    generator: torch.Generator) -> float:
    """Mean KL(pi || ref) per response in nats: responses sampled from ``policy``, summed exact
    KL of the next-token distributions along each (an unbiased estimate of the sequence KL)."""
    gen = sample(policy, tokenizer, prompts, cfg, generator)
    seq, attn, start = gen.sequences, gen.attention_mask, gen.response_start
    mask = response_action_mask(attn, start)
    kl = sequence_kl_exact(response_logits(policy, seq, attn, start),
                           response_logits(ref, seq, attn, start), mask)
    return float(kl.mean())


@torch.no_grad()
def evaluate_policy(policy, ref, tokenizer, problems: Sequence[task.Problem],
                    reward_fn: RewardFn, cfg: Config, seed: int = 0) -> dict[str, float]:
    """Greedy held-out ``gold_accuracy``, ``gold_reward``, ``proxy_reward`` (reward_fn) and
    ``response_length`` (characters), plus sampled ``kl_to_ref`` (nats per response)."""
    prompts = [p.prompt for p in problems]
    gen = generate(policy, tokenizer, prompts, cfg.max_new_tokens)
    scores = torch.as_tensor(reward_fn(prompts, gen.responses), dtype=torch.float32)
    right = np.array([task.exact_match(p, r) for p, r in zip(problems, gen.responses)], float)
    carry = np.array([p.carry for p in problems])
    g = torch.Generator().manual_seed(10_000 + seed)
    return {"gold_accuracy": float(right.mean()),
            "gold_reward": float(np.mean([task.gold_reward(p, r)
                                          for p, r in zip(problems, gen.responses)])),
            "accuracy_carry": float(right[carry].mean()) if carry.any() else float("nan"),
            "proxy_reward": float(scores.mean()),
            "response_length": float(np.mean([len(r) for r in gen.responses])),
            "kl_to_ref": kl_to_reference(policy, ref, tokenizer, prompts, cfg, g)}


# ---- the loop ---------------------------------------------------------------------------------

@dataclass
class RLHFResult:
    """``history``: lists per update (proxy_reward, gold_reward, kl_to_ref, entropy,
    response_length, clip_fraction, approx_kl, value_loss, beta, tokens_per_s) plus
    ``eval_update``/``gold_accuracy`` at the evaluation points; ``final``: the metrics of
    :func:`evaluate_policy` at the last checkpoint with ``seconds`` (wall) and ``cpu_seconds``;
    ``start``: the same metrics for the SFT model."""

    config: Config
    history: dict[str, list[float]]
    final: dict[str, float]
    start: dict[str, float]
    policy: object = field(repr=False)
    critic: ValueModel = field(repr=False)
    tokenizer: object = field(repr=False)


def _rollout_metrics(exp: Experience, beta: float) -> dict[str, float]:
    """Per-update log entries computed from one rollout."""
    m = exp.action_mask
    log_ratio = ((exp.logp - exp.ref_logp) * m).sum(1)
    gold = gold_reward_fn(exp.prompts, exp.responses)
    return {"proxy_reward": float(exp.score.mean()), "gold_reward": float(gold.mean()),
            "kl_to_ref": float(log_ratio.mean()), "beta": float(beta),
            "response_length": float(np.mean([len(r) for r in exp.responses])),
            "gold_exact": float(np.mean([task.exact_match(p, r)
                                         for p, r in zip(exp.prompts, exp.responses)]))}


def _setup(seed: int, sft_seed: int | None, sft_cfg, root, progress: bool, cfg: Config):
    """(policy, ref, sft_ref, critic, tokenizer, train_prompts, held_out) from the SFT model.

    ``ref`` is what the KL penalty uses (the policy itself under ``cfg.ref_is_policy``, the
    debugging lab's bug); ``sft_ref`` is always a frozen copy, for honest evaluation."""
    from rlcourse.llm.sft import SFTConfig, sft_model

    sft_cfg = sft_cfg or SFTConfig()
    policy, tokenizer, _ = sft_model(sft_cfg, seed=seed if sft_seed is None else sft_seed,
                                     root=root, progress=progress)
    sft_ref = frozen_copy(policy)
    ref = policy if cfg.ref_is_policy else sft_ref
    train_set, held = task.split_problems(sft_cfg.split_seed, sft_cfg.n_heldout)
    return (policy, ref, sft_ref, make_critic(policy), tokenizer,
            [p.prompt for p in train_set], held[:cfg.n_eval])


# beta is in reward units per nat, so it depends on the reward's scale: Config.beta (0.05) was
# calibrated on the gold reward (std about 0.15 over SFT samples); the course RM's scores spread
# about six times wider, and against it beta 0.3 gained more gold accuracy at less KL than 0.05
# (the course_rm experiment), so train() uses RM_BETA for reward="rm" unless beta is given.
RM_BETA = 0.3


def train(seed: int = 0, *, reward: str = "rm", progress: bool = True,
          reward_fn: RewardFn | None = None, experience_fn: Callable | None = None,
          sft_seed: int | None = None, sft_cfg=None, root=None, rm_overrides: dict | None = None,
          **overrides) -> RLHFResult:
    """RLHF-PPO from the cached SFT model (``sft_seed``, default ``seed``) with the course
    :class:`Config` changed by ``overrides``. ``reward`` picks the learned RM or the gold
    oracle (``rm_overrides`` pick its training settings); ``reward_fn`` replaces both;
    ``experience_fn`` replaces :func:`make_experience`. Without a ``beta`` override, beta is
    :data:`RM_BETA` for the learned RM and ``Config.beta`` otherwise."""
    from tqdm.auto import tqdm

    if "beta" not in overrides and reward == "rm" and reward_fn is None:
        overrides = {**overrides, "beta": RM_BETA}
    cfg = replace(Config(), **overrides)
    policy, ref, sft_ref, critic, tok, prompts, held = _setup(seed, sft_seed, sft_cfg, root,
                                                              progress, cfg)
    rm = None
    if reward_fn is None:
        reward_fn, rm = reward_function(reward, seed if sft_seed is None else sft_seed,
                                        rm_overrides, sft_cfg=sft_cfg, root=root)
    experience_fn = experience_fn or make_experience
    opt_p = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    opt_c = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr)
    rng, gen = np.random.default_rng([seed, 11]), torch.Generator().manual_seed(seed)
    start = evaluate_policy(policy, sft_ref, tok, held, reward_fn, cfg, seed)
    history: dict[str, list[float]] = {"eval_update": [0], "gold_accuracy":
                                       [start["gold_accuracy"]]}
    wall0, cpu0, tokens, beta = time.perf_counter(), time.process_time(), 0, cfg.beta
    bar = tqdm(range(cfg.updates), desc=f"RLHF-PPO seed {seed}", disable=not progress,
               leave=False, mininterval=1.0)
    for u in bar:
        batch = [prompts[i] for i in rng.integers(0, len(prompts), size=cfg.n_prompts)]
        exp = experience_fn(policy, ref, critic, reward_fn, tok, batch,
                            replace(cfg, beta=beta), gen)
        stats = ppo_update(policy, critic, exp, cfg, opt_p, opt_c, gen)
        row = {**_rollout_metrics(exp, beta), **stats}
        tokens += int(exp.attention_mask.sum()) * cfg.epochs
        row["tokens_per_s"] = tokens / max(time.perf_counter() - wall0, 1e-9)
        for k, v in row.items():
            history.setdefault(k, []).append(v)
        if cfg.kl_target is not None:
            beta = ppo.adaptive_kl_beta(beta, row["kl_to_ref"], cfg.kl_target)
        if cfg.eval_every and (u + 1) % cfg.eval_every == 0 and u + 1 < cfg.updates:
            history["eval_update"].append(u + 1)
            history["gold_accuracy"].append(evaluate_policy(
                policy, sft_ref, tok, held, reward_fn, cfg, seed)["gold_accuracy"])
        bar.set_postfix(reward=f"{row['proxy_reward']:.3f}", kl=f"{row['kl_to_ref']:.2f}",
                        tok_s=f"{row['tokens_per_s']:,.0f}")
    bar.close()
    seconds, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    final = evaluate_policy(policy, sft_ref, tok, held, reward_fn, cfg, seed)
    history["eval_update"].append(cfg.updates)
    history["gold_accuracy"].append(final["gold_accuracy"])
    final.update(seconds=seconds, cpu_seconds=cpu, beta=beta,
                 **memory_held(*(m for m in (policy, ref, sft_ref, critic, rm) if m is not None)))
    return RLHFResult(cfg, history, final, start, policy, critic, tok)


# ---- stored experiments (notebook 11 reads them) ----------------------------------------------

HISTORY_KEYS = ("proxy_reward", "gold_reward", "gold_exact", "kl_to_ref", "entropy",
                "response_length", "clip_fraction", "approx_kl", "beta")


def summary(res: RLHFResult) -> dict:
    """A JSON-ready summary of a run: the start and final metrics and the per-update history."""
    hist = {k: [round(float(v), 5) for v in res.history[k]] for k in HISTORY_KEYS}
    hist["eval_update"] = list(res.history["eval_update"])
    hist["gold_accuracy"] = [round(float(v), 5) for v in res.history["gold_accuracy"]]
    return {"start": res.start, "final": res.final, "history": hist}


def experiment_grid() -> dict[str, list[dict]]:
    """The stored experiments: name -> list of run settings (train() keyword arguments)."""
    # the length-biased RM is a short run (250 steps): it learns the length bias at once
    biased = {"reward": "rm", "rm_overrides": {"length_bias": GOODHART_LENGTH_BIAS, "steps": 250}}
    return {
        "goodhart": [{"seed": s, "beta": 0.0, "updates": 40, **biased} for s in (0, 1)],
        "debugging": [{"seed": 0, "reward": "gold", "updates": 25, "label": label, **change}
                      for label, change in DEBUG_RUNS.items()],
        "beta_sweep": [{"seed": 0, "beta": b, "updates": 30, **biased}
                       for b in (0.0, 0.05, 0.2, 1.0)],
        "course_rm": [{"seed": 0, "beta": b, "updates": 40, "eval_every": 5, "reward": "rm"}
                      for b in (0.05, 0.3)],
    }


GOODHART_LENGTH_BIAS = 0.6  # the length-biased annotator of notebook 10
DEBUG_RUNS = {"healthy": {}, "lr x30": {"lr": 3e-3}, "beta = 0": {"beta": 0.0},
              "reference = policy": {"ref_is_policy": True},
              "advantages not masked": {"mask_advantages": False}}


def run_experiment(name: str, progress: bool = True) -> list[dict]:
    """Run every setting of ``experiment_grid()[name]`` from the cached SFT model of seed 0."""
    runs = []
    for setting in experiment_grid()[name]:
        kw = {k: v for k, v in setting.items() if k != "label"}
        res = train(sft_seed=0, progress=progress, **kw)
        runs.append({"setting": setting, **summary(res)})
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rlcourse.llm.rlhf NAME [NAME ...] --out FILE``: run the stored experiments
    and write them as JSON (the file keeps experiments it does not rerun)."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("names", nargs="+", choices=sorted(experiment_grid()))
    parser.add_argument("--out", default="results/lab/rlhf_experiments.json")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # 2 threads were slower on the busy 2-core machine
    out = Path(args.out)
    data = json.loads(out.read_text()) if out.exists() else {}
    for name in args.names:
        data[name] = run_experiment(name, progress=not args.no_progress)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
