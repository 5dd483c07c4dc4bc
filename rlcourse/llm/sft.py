"""Pretraining and supervised fine-tuning (SFT) of the lab's GPT, and its greedy accuracy.

Two stages, both next-token cross-entropy on a causal LM (notebook 09):

* **pretraining** models whole correct equations ``"47+35=82<eos>"``, every token counted;
* **SFT** imitates demonstrations that forget the carry with probability ``p_forget``; the
  loss counts only response tokens (``include_prompt=True`` also counts the prompt, for the
  comparison in the notebook):  L_SFT = -mean_{t in response} log pi(y_t | x, y_<t).

Because demonstrations are wrong on most carry problems, the SFT model answers them the wrong
way when decoding greedily: its accuracy lands near the fraction of problems without a carry,
which leaves the later RL stages something to fix. :func:`sft_model` returns the trained pair
from the checkpoint cache (:mod:`rlcourse.llm.cache`), building it on first use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from rlcourse.llm import task
from rlcourse.llm.cache import CacheEntry, cache_root, get_or_build
from rlcourse.llm.logprobs import masked_nll, position_ids, response_mask
from rlcourse.llm.model import ModelConfig, build_model, build_tokenizer, check_text, generate
from rlcourse.validation import check_in_range, check_positive_int

Tensor = torch.Tensor
# Bump whenever a change here, in task.py (data) or in model.py (architecture, tokenizer) would
# train a different model: the cache then rebuilds instead of reusing the old checkpoint.
CODE_VERSION = "sft-1"


@dataclass(frozen=True)
class Batch:
    """Right-padded token batch: ``input_ids``/``attention_mask`` [B, T]; ``response_mask`` and
    ``all_mask`` [B, T-1] select the per-token columns of response tokens / of all real tokens."""

    input_ids: Tensor
    attention_mask: Tensor
    response_mask: Tensor
    all_mask: Tensor

    @property
    def n_tokens(self) -> int:
        """Number of real (non-pad) tokens."""
        return int(self.attention_mask.sum())


@dataclass(frozen=True)
class SFTConfig:
    """Course defaults for the base model and SFT.

    Measured on a shared 2-core CPU with one torch thread (seeds 0-2): pretraining (600 steps,
    about 76 CPU-s) reaches 100 % held-out greedy accuracy, from about 450 steps on; SFT (150
    steps, about 19 CPU-s) then lands at 57 %: right on every problem without a carry, wrong on
    nearly every one with it, while sampling at temperature 1 still finds 14-17 % of the carry
    answers, so RL has a signal to follow.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    split_seed: int = 0
    n_heldout: int = 500
    batch_size: int = 128
    pretrain_steps: int = 600
    pretrain_lr: float = 2e-3
    sft_steps: int = 150
    sft_lr: float = 5e-4
    p_forget: float = 0.85
    include_prompt: bool = False
    warmup: int = 30
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        for name in ("n_heldout", "batch_size", "pretrain_steps", "sft_steps", "warmup"):
            check_positive_int(getattr(self, name), name)
        for name in ("pretrain_lr", "sft_lr"):
            check_in_range(getattr(self, name), name, 0.0, 1.0, low_open=True)
        check_in_range(self.p_forget, "p_forget", 0.0, 1.0)
        check_in_range(self.max_grad_norm, "max_grad_norm", 0.0, np.inf, low_open=True)

    def to_dict(self) -> dict:
        """All fields as plain JSON values (the cache key)."""
        return asdict(self)


def make_batch(tokenizer, prompts: Sequence[str], responses: Sequence[str],
               context: int | None = None) -> Batch:
    """Tokenise ``prompt + response + END`` for each pair into a right-padded :class:`Batch`.

    Raises ``ValueError`` for characters outside the vocabulary, mismatched lengths, or a
    sequence longer than ``context`` (default: the tokenizer's ``model_max_length``).
    """
    if len(prompts) != len(responses) or len(prompts) == 0:
        raise ValueError(f"need as many responses as prompts (>0), got {len(prompts)} prompts "
                         f"and {len(responses)} responses")
    check_text(tokenizer, list(prompts) + list(responses))
    context = tokenizer.model_max_length if context is None else context
    texts = [p + r + tokenizer.eos_token for p, r in zip(prompts, responses)]
    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    try:
        enc = tokenizer(texts, padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = side
    if enc["input_ids"].shape[1] > context:
        raise ValueError(f"a sequence has {enc['input_ids'].shape[1]} tokens, more than the "
                         f"context of {context}")
    start = torch.tensor([len(ids) for ids in tokenizer(list(prompts))["input_ids"]])
    mask = enc["attention_mask"]
    return Batch(enc["input_ids"], mask, response_mask(mask, start),
                 mask[:, 1:].to(torch.float32))


def lm_loss(model, batch: Batch, include_prompt: bool = False) -> Tensor:
    """Mean next-token NLL over response tokens, or over all real tokens if ``include_prompt``."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                   position_ids=position_ids(batch.attention_mask)).logits
    return masked_nll(logits, batch.input_ids, batch.all_mask if include_prompt
                      else batch.response_mask)


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to 10 % of it."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + np.cos(np.pi * min(1.0, progress))))


def _gradient_step(model, opt, batch: Batch, include_prompt: bool,
                   max_grad_norm: float) -> float:
    """One AdamW step on :func:`lm_loss`; returns the loss."""
    loss = lm_loss(model, batch, include_prompt)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    opt.step()
    return float(loss.detach())


def sft_step(model, batch: Batch, optimizer: torch.optim.Optimizer,
             max_grad_norm: float = 1.0) -> float:
    """One SFT update on ``batch``: the mean NLL over its response tokens (``batch.
    response_mask``), fresh gradients, global gradient norm clipped to ``max_grad_norm``, one
    ``optimizer`` step. Returns the loss before the step (notebook 09's exercise)."""
    check_in_range(max_grad_norm, "max_grad_norm", 0.0, np.inf, low_open=True)
    return _gradient_step(model, optimizer, batch, False, max_grad_norm)


def train_lm(model, next_batch: Callable[[], Batch], steps: int, lr: float, *,
             include_prompt: bool, warmup: int = 30, max_grad_norm: float = 1.0,
             desc: str = "train", progress: bool = True,
             eval_fn: Callable[[], float] | None = None,
             eval_every: int = 0) -> dict[str, list[float]]:
    """AdamW on :func:`lm_loss` for ``steps`` batches drawn from ``next_batch()``.

    Returns the history: ``loss`` per step and ``tokens_per_s`` (real tokens per second of
    training time; the tqdm bar shows both). With ``eval_fn`` and ``eval_every`` > 0, also
    ``eval_step`` and ``eval``: ``eval_fn()`` (e.g. greedy accuracy), called in eval mode every
    ``eval_every`` steps and after the last; its time does not count against tokens/s.
    """
    from tqdm.auto import tqdm

    steps = check_positive_int(steps, "steps")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    history: dict[str, list[float]] = {"loss": [], "tokens_per_s": [], "eval_step": [],
                                       "eval": []}
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False, mininterval=1.0)
    started, tokens, paused = time.perf_counter(), 0, 0.0
    model.train()
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        batch = next_batch()
        history["loss"].append(_gradient_step(model, opt, batch, include_prompt, max_grad_norm))
        tokens += batch.n_tokens
        speed = tokens / max(time.perf_counter() - started - paused, 1e-9)
        history["tokens_per_s"].append(speed)
        if eval_fn is not None and eval_every > 0 and ((step + 1) % eval_every == 0
                                                       or step + 1 == steps):
            t0 = time.perf_counter()
            model.eval()
            history["eval_step"].append(step + 1)
            history["eval"].append(float(eval_fn()))
            model.train()
            paused += time.perf_counter() - t0
        if step % 20 == 0:
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", tok_s=f"{speed:,.0f}")
    bar.close()
    model.eval()
    return history


def batch_sampler(tokenizer, problems: Sequence[task.Problem], batch_size: int,
                  rng: np.random.Generator, p_forget: float = 0.0) -> Callable[[], Batch]:
    """A function returning a fresh random batch of ``problems`` (drawn with replacement),
    answered by :func:`rlcourse.llm.task.demonstration` with ``p_forget`` (0 = always right)."""
    if not problems:
        raise ValueError("problems is empty")
    batch_size = check_positive_int(batch_size, "batch_size")

    def next_batch() -> Batch:
        picks = [problems[i] for i in rng.integers(0, len(problems), size=batch_size)]
        return make_batch(tokenizer, [p.prompt for p in picks],
                          task.demonstrations(picks, p_forget, rng))

    return next_batch


@torch.no_grad()
def evaluate(model, tokenizer, problems: Sequence[task.Problem], batch_size: int = 500,
             max_new_tokens: int = 5) -> dict[str, float]:
    """Greedy decoding on ``problems``: exact-match ``accuracy``, mean ``gold_reward``,
    ``accuracy_carry`` / ``accuracy_no_carry`` and the fraction of responses that ``ended``."""
    if not problems:
        raise ValueError("problems is empty")
    correct, reward, ended = [], [], []
    for i in range(0, len(problems), batch_size):
        chunk = problems[i:i + batch_size]
        gen = generate(model, tokenizer, [p.prompt for p in chunk], max_new_tokens)
        correct += [task.exact_match(p, r) for p, r in zip(chunk, gen.responses)]
        reward += [task.gold_reward(p, r) for p, r in zip(chunk, gen.responses)]
        ended += gen.ended
    carry = np.array([p.carry for p in problems])
    correct_a = np.array(correct, dtype=float)
    return {"accuracy": float(correct_a.mean()), "gold_reward": float(np.mean(reward)),
            "accuracy_carry": float(correct_a[carry].mean()) if carry.any() else float("nan"),
            "accuracy_no_carry": float(correct_a[~carry].mean()) if (~carry).any()
            else float("nan"), "ended": float(np.mean(ended))}


def greedy_accuracy(model, tokenizer, problems: Sequence[task.Problem]) -> float:
    """Exact-match accuracy of greedy answers on ``problems`` (checked by the verifier)."""
    return evaluate(model, tokenizer, problems)["accuracy"]


def _accuracy_fn(model, tokenizer, problems: Sequence[task.Problem] | None):
    """A no-argument greedy-accuracy probe on ``problems`` for :func:`train_lm` (or None)."""
    if not problems:
        return None
    return lambda: greedy_accuracy(model, tokenizer, problems)


def on_device(sample: Callable[[], Batch], device: str | torch.device) -> Callable[[], Batch]:
    """``sample`` with each batch moved to ``device`` (the identity on the CPU)."""
    if str(device) == "cpu":
        return sample
    return lambda: Batch(*(t.to(device) for t in vars(sample()).values()))


def pretrain(model, tokenizer, problems: Sequence[task.Problem], cfg: SFTConfig, seed: int,
             progress: bool = True, eval_problems: Sequence[task.Problem] | None = None,
             eval_every: int = 0, device: str | torch.device = "cpu") -> dict[str, list[float]]:
    """Pretrain on correct equations of ``problems``; the loss counts every real token.

    With ``eval_problems`` and ``eval_every``, the history also tracks greedy accuracy.
    ``model`` must already be on ``device``; the batches are moved there.
    """
    rng = np.random.default_rng([seed, 1])
    sample = on_device(batch_sampler(tokenizer, problems, cfg.batch_size, rng, p_forget=0.0),
                       device)
    return train_lm(model, sample, cfg.pretrain_steps, cfg.pretrain_lr, include_prompt=True,
                    warmup=cfg.warmup, max_grad_norm=cfg.max_grad_norm,
                    desc=f"pretrain seed {seed}", progress=progress,
                    eval_fn=_accuracy_fn(model, tokenizer, eval_problems), eval_every=eval_every)


def sft(model, tokenizer, problems: Sequence[task.Problem], cfg: SFTConfig, seed: int,
        progress: bool = True, eval_problems: Sequence[task.Problem] | None = None,
        eval_every: int = 0, device: str | torch.device = "cpu") -> dict[str, list[float]]:
    """SFT on carry-forgetting demonstrations; response tokens only unless
    ``cfg.include_prompt``. Evaluation and device options as in :func:`pretrain`."""
    rng = np.random.default_rng([seed, 2])
    sample = on_device(batch_sampler(tokenizer, problems, cfg.batch_size, rng,
                                     p_forget=cfg.p_forget), device)
    return train_lm(model, sample, cfg.sft_steps, cfg.sft_lr, include_prompt=cfg.include_prompt,
                    warmup=cfg.warmup, max_grad_norm=cfg.max_grad_norm,
                    desc=f"SFT seed {seed}", progress=progress,
                    eval_fn=_accuracy_fn(model, tokenizer, eval_problems), eval_every=eval_every)


def train_base_and_sft(cfg: SFTConfig, seed: int, progress: bool = True):
    """(base, sft_model, tokenizer, info): pretrain a fresh model, copy it, SFT the copy.

    ``info`` holds both histories and the CPU seconds (``time.process_time``) of each stage.
    """
    import copy

    train_set, _ = task.split_problems(cfg.split_seed, cfg.n_heldout)
    tokenizer = build_tokenizer(max_length=cfg.model.n_positions)
    base = build_model(tokenizer, cfg.model, seed=seed)
    cpu0 = time.process_time()
    pre = pretrain(base, tokenizer, train_set, cfg, seed, progress)
    cpu1 = time.process_time()
    tuned = copy.deepcopy(base)
    hist = sft(tuned, tokenizer, train_set, cfg, seed, progress)
    info = {"pretrain": pre, "sft": hist, "pretrain_cpu_s": cpu1 - cpu0,
            "sft_cpu_s": time.process_time() - cpu1}
    return base, tuned, tokenizer, info


def _save_pair(folder, model, tokenizer) -> None:
    from rlcourse.llm.model import quiet_transformers

    with quiet_transformers():
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)


def sft_cache_key(cfg: SFTConfig, seed: int) -> dict:
    """The cache key of the base and SFT models trained by ``cfg`` and ``seed`` (with
    :data:`CODE_VERSION`, it names the ``lab_sft`` cache entry)."""
    return {"sft": cfg.to_dict(), "seed": int(seed)}


def sft_model(cfg: SFTConfig | None = None, seed: int = 0, *, stage: str = "sft",
              root=None, progress: bool = True):
    """(model, tokenizer, entry) of the cached ``stage`` ("base" or "sft") model for ``cfg`` and
    ``seed``, trained on first use (both stages are cached by one build)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlcourse.llm.model import check_compatible, quiet_transformers

    cfg = cfg or SFTConfig()
    if stage not in ("base", "sft"):
        raise ValueError(f"stage must be 'base' or 'sft', got {stage!r}")
    key = sft_cache_key(cfg, seed)

    def build(folder) -> None:
        base, tuned, tokenizer, _ = train_base_and_sft(cfg, seed, progress)
        _save_pair(folder / "base", base, tokenizer)
        _save_pair(folder / "sft", tuned, tokenizer)

    entry: CacheEntry = get_or_build("lab_sft", key, build, CODE_VERSION, root=cache_root(root))
    folder = entry.path / stage
    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True,
                                                     local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    check_compatible(model, tokenizer)
    model.eval()
    return model, tokenizer, entry
