"""The lab CLI: run the tiny-GPT pipeline from scratch with the course defaults, over seeds.

    python -m rlcourse.llm.lab --stages pretrain,sft,rm,ppo,ppo_gold,dpo,grpo [--seeds 3] [--json]

Each stage is a small function in a registry (:data:`STAGES`). Stages share a
:class:`LabContext` per seed, so a later stage reuses the models that an earlier one trained in
the same run; a stage asked for without its prerequisites (``--stages rm``) trains them first,
without reporting them. Nothing is read from the checkpoint cache: the run uses an empty
temporary cache folder (``$RLCOURSE_CACHE`` points there while it runs), into which it saves
the base and SFT models it trained, so the reward-model and RLHF modules, which load the SFT
model from the cache, start from this run's models instead of training them again.

Per stage it reports wall-clock ``seconds`` (and ``cpu_seconds``) and, where they apply:
``gold_accuracy`` (greedy exact match on the held-out prompts, 0-1), ``gold_reward`` (mean
partial-credit gold reward of the greedy answers), ``rm_pair_accuracy`` and
``rm_onpolicy_accuracy`` (held-out pairwise accuracy of the reward model against the gold
preference, on synthetic pairs and on pairs sampled from the SFT model), ``proxy_reward``
(mean reward-model score), ``kl_to_ref`` (nats per response) and ``response_length``
(characters). With ``--json`` the last line of standard output is one JSON object:
``{"seeds": [...], "per_seed": [{stage: {...}}, ...], "median": {stage: {...}}, ...}``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import importlib
import inspect
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcourse.core import default_threads
from rlcourse.llm import task
from rlcourse.llm.cache import CACHE_ENV, get_or_build
from rlcourse.llm.sft import SFTConfig

Metrics = dict[str, Any]


class LabError(ValueError):
    """A request the lab cannot run: an unknown stage, or one whose code is not there yet."""


@dataclass
class LabContext:
    """What the stages of one seed share: the config, the trained models, the results so far.

    ``overrides`` maps a stage name to extra keyword arguments for its training call (tests use
    it to run tiny configurations).
    """

    seed: int
    cfg: SFTConfig
    cache_root: Path
    device: str = "cpu"
    progress: bool = True
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokenizer: Any = None
    models: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Metrics] = field(default_factory=dict)
    configs: dict[str, Any] = field(default_factory=dict)
    published: bool = False

    def heldout(self) -> list[task.Problem]:
        """The held-out problems of the config's split (never trained on)."""
        return task.split_problems(self.cfg.split_seed, self.cfg.n_heldout)[1]

    def train_set(self) -> list[task.Problem]:
        """The training problems of the config's split."""
        return task.split_problems(self.cfg.split_seed, self.cfg.n_heldout)[0]


@dataclass(frozen=True)
class Stage:
    """One registered stage: ``run(ctx) -> metrics``; ``needs``: stages whose models it uses;
    ``module``/``attr``: the package function it calls (None: always available);
    ``uses_cache``: it loads the SFT model from the checkpoint cache."""

    name: str
    run: Callable[[LabContext], Metrics]
    needs: tuple[str, ...] = ()
    module: str | None = None
    attr: str | None = None
    uses_cache: bool = False
    summary: str = ""


STAGES: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    """Add ``stage`` to :data:`STAGES` (in run order); its ``needs`` must already be there."""
    missing = [n for n in stage.needs if n not in STAGES]
    if missing:
        raise ValueError(f"stage {stage.name!r} needs unregistered stages {missing}")
    STAGES[stage.name] = stage
    return stage


def unavailable_reason(name: str) -> str | None:
    """None if stage ``name`` can run, else why not (its module or function is missing)."""
    stage = STAGES[name]
    if stage.module is None:
        return None
    try:
        module = importlib.import_module(stage.module)
    except ModuleNotFoundError as err:
        if err.name and stage.module.startswith(err.name):
            return f"{stage.module} does not exist yet"
        raise
    if stage.attr and not hasattr(module, stage.attr):
        return f"{stage.module} has no {stage.attr}() yet"
    return None


def available_stages() -> list[str]:
    """Names of the registered stages that can run now, in run order."""
    return [name for name in STAGES if unavailable_reason(name) is None]


def parse_stages(text: str | Sequence[str]) -> list[str]:
    """Stage names from ``"pretrain,sft"`` (or a list), checked and put in run order.

    ``"all"`` alone means every registered stage. Raises :class:`LabError` for an empty list,
    an unknown name, a repeated name, or a stage (or a prerequisite of it) that is not
    available yet.
    """
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text)]
    names = [s for s in names if s]
    if names == ["all"]:
        names = list(STAGES)
    if not names:
        raise LabError(f"no stages given; choose from {', '.join(STAGES)}")
    unknown = [s for s in names if s not in STAGES]
    if unknown:
        raise LabError(f"unknown stage(s) {', '.join(map(repr, unknown))}; "
                       f"known: {', '.join(STAGES)}")
    repeated = sorted({s for s in names if names.count(s) > 1})
    if repeated:
        raise LabError(f"stage(s) given twice: {', '.join(repeated)}")
    for name in names:
        for needed in _closure(name):
            reason = unavailable_reason(needed)
            if reason is not None:
                via = "" if needed == name else f" (needed by {name!r})"
                raise LabError(f"stage {needed!r}{via} is not available yet: {reason}")
    order = list(STAGES)
    return sorted(names, key=order.index)


def _closure(name: str) -> list[str]:
    """``name`` and every stage it needs, prerequisites first."""
    out: list[str] = []
    for needed in STAGES[name].needs:
        out += [n for n in _closure(needed) if n not in out]
    return out + [name]


# ---- evaluation -----------------------------------------------------------------------------
@torch.no_grad()
def greedy_metrics(model, tokenizer, problems: Sequence[task.Problem],
                   batch_size: int = 500) -> Metrics:
    """Greedy answers to ``problems``: ``gold_accuracy`` (exact match, 0-1), mean
    ``gold_reward``, ``accuracy_carry``/``accuracy_no_carry``, mean ``response_length``
    (characters), and the ``responses`` themselves (not reported)."""
    from rlcourse.llm.model import generate

    if not problems:
        raise ValueError("problems is empty")
    responses: list[str] = []
    for i in range(0, len(problems), batch_size):
        chunk = problems[i:i + batch_size]
        responses += generate(model, tokenizer, [p.prompt for p in chunk], 5).responses
    correct = np.array([task.exact_match(p, r) for p, r in zip(problems, responses)], float)
    carry = np.array([p.carry for p in problems])
    return {"gold_accuracy": float(correct.mean()),
            "gold_reward": float(np.mean([task.gold_reward(p, r)
                                          for p, r in zip(problems, responses)])),
            "accuracy_carry": float(correct[carry].mean()) if carry.any() else None,
            "accuracy_no_carry": float(correct[~carry].mean()) if (~carry).any() else None,
            "response_length": float(np.mean([len(r) for r in responses])),
            "responses": responses}


def _report_eval(model, ctx: LabContext, name: str) -> Metrics:
    """:func:`greedy_metrics` on the held-out problems; the greedy responses are kept in
    ``ctx.models[name + "_responses"]`` for later stages, not reported."""
    out = greedy_metrics(model, ctx.tokenizer, ctx.heldout())
    ctx.models[f"{name}_responses"] = out.pop("responses")
    return out


# ---- pretrain and SFT -----------------------------------------------------------------------
def _lm_stage(ctx: LabContext, model, *, pretraining: bool) -> Metrics:
    """Pretrain (all tokens, correct answers) or SFT (response tokens, forgetful demos) ``model``
    in place with :func:`rlcourse.llm.sft.pretrain` / :func:`rlcourse.llm.sft.sft`, the
    functions that build the cached models."""
    from rlcourse.llm import sft

    train = sft.pretrain if pretraining else sft.sft
    hist = train(model, ctx.tokenizer, ctx.train_set(), ctx.cfg, ctx.seed, progress=ctx.progress,
                 device=ctx.device)
    steps = ctx.cfg.pretrain_steps if pretraining else ctx.cfg.sft_steps
    return {"steps": steps, "final_loss": hist["loss"][-1],
            "tokens_per_s": float(np.median(hist["tokens_per_s"]))}


def run_pretrain(ctx: LabContext) -> Metrics:
    """Build the tokenizer and a fresh GPT (seeded), pretrain it; held-out greedy metrics."""
    from rlcourse.llm.model import build_model, build_tokenizer, count_parameters

    ctx.tokenizer = build_tokenizer(max_length=ctx.cfg.model.n_positions)
    base = build_model(ctx.tokenizer, ctx.cfg.model, seed=ctx.seed).to(ctx.device)
    out = _lm_stage(ctx, base, pretraining=True)
    ctx.models["base"] = base
    ctx.configs["sft"] = ctx.cfg.to_dict()
    return {**out, "parameters": count_parameters(base), **_report_eval(base, ctx, "base")}


def run_sft(ctx: LabContext) -> Metrics:
    """SFT a copy of the base model on the carry-forgetting demonstrations."""
    tuned = copy.deepcopy(ctx.models["base"])
    out = _lm_stage(ctx, tuned, pretraining=False)
    ctx.models["sft"] = tuned
    return {**out, **_report_eval(tuned, ctx, "sft")}


def publish_sft(ctx: LabContext) -> None:
    """Save this run's base and SFT models where :func:`rlcourse.llm.sft.sft_model` looks for
    them (the same cache key), so modules that load the SFT model reuse them."""
    from rlcourse.llm import sft

    if ctx.published:
        return

    def build(folder: Path) -> None:
        for stage in ("base", "sft"):
            sft._save_pair(folder / stage, ctx.models[stage].to("cpu"), ctx.tokenizer)
            ctx.models[stage].to(ctx.device)

    get_or_build("lab_sft", sft.sft_cache_key(ctx.cfg, ctx.seed), build, sft.CODE_VERSION,
                 root=ctx.cache_root, verbose=False)
    ctx.published = True


register(Stage("pretrain", run_pretrain, summary="pretrain a fresh GPT on correct equations"))
register(Stage("sft", run_sft, needs=("pretrain",),
               summary="SFT on demonstrations that forget the carry"))


# ---- the runner -----------------------------------------------------------------------------
def _device_kwargs(fn: Callable, ctx: LabContext, what: str) -> dict[str, Any]:
    """``{"device": ...}`` for ``fn`` off the CPU; LabError if ``fn`` takes no device."""
    if ctx.device == "cpu":
        return {}
    if "device" not in inspect.signature(fn).parameters:
        raise LabError(f"{what} runs on the CPU only (it takes no device argument)")
    return {"device": ctx.device}


def check_device(stages: Sequence[str], device: str) -> None:
    """LabError if a stage of ``stages`` (or one they need) cannot run on ``device``: off the
    CPU, each package function a stage calls must take a ``device`` argument."""
    if device == "cpu":
        return
    for name in dict.fromkeys(n for s in stages for n in _closure(s)):
        stage = STAGES[name]
        if stage.module is not None and stage.attr is not None:
            fn = getattr(importlib.import_module(stage.module), stage.attr)
            _device_kwargs(fn, LabContext(0, SFTConfig(), Path("."), device), f"stage {name!r}")


def ensure(ctx: LabContext, name: str) -> Metrics:
    """Run stage ``name`` (after the stages it needs) unless it already ran; its metrics.

    ``seconds`` is wall-clock and ``cpu_seconds`` process CPU time of the stage, evaluation
    included; saving models for later stages is not counted.
    """
    if name in ctx.results:
        return ctx.results[name]
    stage = STAGES[name]
    for needed in stage.needs:
        ensure(ctx, needed)
    if stage.uses_cache:
        publish_sft(ctx)
    wall, cpu = time.perf_counter(), time.process_time()
    out = stage.run(ctx)
    out = {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu,
           **out}
    ctx.results[name] = out
    return out


@contextlib.contextmanager
def fresh_cache(root: str | os.PathLike | None = None) -> Iterator[Path]:
    """Point ``$RLCOURSE_CACHE`` at ``root`` (default: a new empty temporary folder, deleted
    afterwards) for the duration of the block, then restore it."""
    old = os.environ.get(CACHE_ENV)
    with contextlib.ExitStack() as stack:
        if root is None:
            root = stack.enter_context(tempfile.TemporaryDirectory(prefix="rlcourse-lab-"))
        os.environ[CACHE_ENV] = str(root)
        try:
            yield Path(root)
        finally:
            if old is None:
                os.environ.pop(CACHE_ENV, None)
            else:
                os.environ[CACHE_ENV] = old


def run_seed(stages: Sequence[str], seed: int, *, cfg: SFTConfig | None = None,
             device: str = "cpu", progress: bool = True, cache_root: Path | None = None,
             overrides: dict[str, dict[str, Any]] | None = None,
             configs: dict[str, Any] | None = None) -> dict[str, Metrics]:
    """Run ``stages`` (checked with :func:`parse_stages`) for one seed from scratch; returns
    ``{stage: metrics}`` for the stages asked for, in run order. A ``configs`` dict is filled
    with the configuration each stage trained with (e.g. ``"sft"``, ``"rm"``, ``"ppo"``)."""
    names = parse_stages(stages)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LabError(f"seed must be a non-negative integer, got {seed!r}")
    with fresh_cache(cache_root) as root:
        ctx = LabContext(int(seed), cfg or SFTConfig(), root, device, progress,
                         dict(overrides or {}))
        for name in names:
            ensure(ctx, name)
            print(f"seed {seed}: {name} done in {ctx.results[name]['seconds']:.1f} s",
                  file=sys.stderr)
    if configs is not None:
        configs.update(ctx.configs)
    return {name: ctx.results[name] for name in names}


# ---- reward model and RLHF (from rlcourse.llm.reward_model and rlcourse.llm.rlhf) ---------
def run_rm(ctx: LabContext) -> Metrics:
    """Train the Bradley-Terry reward model; its held-out pairwise accuracies, and its mean
    score of the SFT model's greedy answers (the proxy reward RLHF starts from).

    It goes through ``load_reward_model``: the lab's cache is empty, so that trains the RM,
    and saves it where RLHF-PPO, which loads the RM from the cache, finds it.
    """
    fn = importlib.import_module("rlcourse.llm.reward_model").load_reward_model
    overrides = {"sft": ctx.cfg, **ctx.overrides.get("rm", {})}
    rm = fn(ctx.seed, progress=ctx.progress, **_device_kwargs(fn, ctx, "the reward model"),
            **overrides)
    ctx.models["rm"] = rm
    info = rm.info
    ctx.configs["rm"] = info.get("config")
    prompts = [p.prompt for p in ctx.heldout()]
    score = rm.score(prompts, ctx.models["sft_responses"])
    return {"rm_pair_accuracy": info["pair_accuracy"],
            "rm_onpolicy_accuracy": info["onpolicy_accuracy"],
            "train_seconds": info.get("wall_seconds"), "train_cpu_seconds": info.get("seconds"),
            "proxy_reward": float(torch.as_tensor(score, dtype=torch.float32).mean())}


def _run_trainer(ctx: LabContext, name: str, module: str, **kwargs: Any) -> Metrics:
    """Run ``module.train`` (RLHF-PPO, DPO or GRPO) from this run's SFT model; the final
    checkpoint's metrics and its gold-accuracy gain over the SFT model."""
    fn = importlib.import_module(module).train
    if "sft_cfg" in inspect.signature(fn).parameters:
        kwargs["sft_cfg"] = ctx.cfg
    result = fn(ctx.seed, progress=ctx.progress, **_device_kwargs(fn, ctx, f"stage {name!r}"),
                **kwargs, **ctx.overrides.get(name, {}))
    ctx.models[name] = result
    if dataclasses.is_dataclass(getattr(result, "config", None)):
        ctx.configs[name] = dataclasses.asdict(result.config)
    final = result.final
    out = {k: final[k] for k in ("gold_accuracy", "gold_reward", "accuracy_carry",
                                 "proxy_reward", "kl_to_ref", "response_length", "beta",
                                 "models_in_memory", "parameter_bytes")
           if k in final}
    out["train_seconds"] = final.get("seconds")
    out["train_cpu_seconds"] = final.get("cpu_seconds")
    out["gain_over_sft"] = out["gold_accuracy"] - ctx.results["sft"]["gold_accuracy"]
    return out


def run_ppo(ctx: LabContext) -> Metrics:
    """RLHF-PPO against the learned reward model."""
    return _run_trainer(ctx, "ppo", "rlcourse.llm.rlhf", reward="rm")


def run_ppo_gold(ctx: LabContext) -> Metrics:
    """The same PPO against the gold reward (an oracle reward model)."""
    return _run_trainer(ctx, "ppo_gold", "rlcourse.llm.rlhf", reward="gold")


def run_dpo(ctx: LabContext) -> Metrics:
    """DPO on the annotator's preference pairs (the reward model's training data)."""
    return _run_trainer(ctx, "dpo", "rlcourse.llm.dpo")


def run_grpo(ctx: LabContext) -> Metrics:
    """GRPO with the gold (verifiable) reward."""
    return _run_trainer(ctx, "grpo", "rlcourse.llm.grpo")


register(Stage("rm", run_rm, needs=("sft",), module="rlcourse.llm.reward_model",
               attr="load_reward_model", uses_cache=True,
               summary="Bradley-Terry reward model on the annotator's preferences"))
register(Stage("ppo", run_ppo, needs=("sft", "rm"), module="rlcourse.llm.rlhf", attr="train",
               uses_cache=True, summary="RLHF-PPO against the learned reward model"))
register(Stage("ppo_gold", run_ppo_gold, needs=("sft",), module="rlcourse.llm.rlhf",
               attr="train", uses_cache=True, summary="the same PPO with the gold reward"))
register(Stage("dpo", run_dpo, needs=("sft",), module="rlcourse.llm.dpo", attr="train",
               uses_cache=True, summary="DPO on the annotator's preference pairs"))
register(Stage("grpo", run_grpo, needs=("sft",), module="rlcourse.llm.grpo", attr="train",
               uses_cache=True, summary="GRPO with the gold (verifiable) reward"))


# ---- the report -----------------------------------------------------------------------------
def _clean(value: Any) -> Any:
    """JSON-safe value: floats to 4 significant digits, NaN/inf to None."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if not math.isfinite(v) else float(f"{v:.4g}")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    raise TypeError(f"cannot report a {type(value).__name__}")


def median_metrics(per_seed: Sequence[dict[str, Metrics]]) -> dict[str, Metrics]:
    """Per stage, the median over seeds of every numeric metric that every seed reported."""
    if not per_seed:
        raise ValueError("per_seed is empty")
    out: dict[str, Metrics] = {}
    for stage in per_seed[0]:
        keys = [k for k, v in per_seed[0][stage].items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)]
        out[stage] = {}
        for k in keys:
            vals = [run[stage].get(k) for run in per_seed]
            if all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals):
                out[stage][k] = statistics.median(vals)
    return out


def summarize(seeds: Sequence[int], per_seed: Sequence[dict[str, Metrics]],
              **extra: Any) -> dict[str, Any]:
    """The JSON report: ``seeds``, ``per_seed`` (one ``{stage: metrics}`` per seed, in the
    order of ``seeds``), their ``median``, and any ``extra`` keys (e.g. threads, device)."""
    if len(seeds) != len(per_seed):
        raise ValueError(f"{len(seeds)} seeds but {len(per_seed)} per-seed results")
    return _clean({"seeds": [int(s) for s in seeds], "per_seed": list(per_seed),
                   "median": median_metrics(per_seed), **extra})


COLUMNS = (("seconds", "seconds", "{:.1f}"), ("gold_accuracy", "gold acc", "{:.1%}"),
           ("rm_pair_accuracy", "RM pairs", "{:.1%}"),
           ("rm_onpolicy_accuracy", "RM on-policy", "{:.1%}"),
           ("proxy_reward", "proxy reward", "{:.3f}"), ("kl_to_ref", "KL (nats)", "{:.3f}"),
           ("response_length", "length", "{:.2f}"))


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table of the medians, one row per stage ('-' where a metric does not
    apply), and each seed's gold accuracy."""
    seeds = report["seeds"]
    lines = [f"tiny-GPT lab, median over seeds {', '.join(map(str, seeds))}",
             f"{'stage':<9}" + "".join(f"  {title:>12}" for _, title, _ in COLUMNS)]
    for stage, m in report["median"].items():
        cells = ["-" if m.get(k) is None else fmt.format(m[k]) for k, _, fmt in COLUMNS]
        lines.append(f"{stage:<9}" + "".join(f"  {c:>12}" for c in cells))
    for seed, run in zip(seeds, report["per_seed"]):
        accs = [f"{stage} {m['gold_accuracy']:.1%}" for stage, m in run.items()
                if m.get("gold_accuracy") is not None]
        lines.append(f"seed {seed}: gold accuracy " + (", ".join(accs) or "-"))
    return "\n".join(lines)


# ---- the head-to-head comparison (--compare) -------------------------------------------------
# (stage, display name, policy samples drawn during training from the stage's config)
METHODS = (("ppo", "RM + PPO", lambda c: c["updates"] * c["n_prompts"]),
           ("ppo_gold", "PPO, gold reward", lambda c: c["updates"] * c["n_prompts"]),
           ("dpo", "DPO", lambda c: 0),
           ("grpo", "GRPO", lambda c: c["updates"] * c["n_prompts"] * c["group_size"]))


def _seed_values(report: dict[str, Any], stage: str, key: str) -> list[float]:
    """``key`` of ``stage`` in every seed of ``report`` (missing values skipped)."""
    vals = [run.get(stage, {}).get(key) for run in report["per_seed"]]
    return [float(v) for v in vals if isinstance(v, (int, float))]


def compare_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per method of :data:`METHODS` that ``report`` (the lab's JSON) ran: medians over
    seeds of ``gold_accuracy``, ``gain_over_sft``, ``kl_to_ref``, ``seconds`` (training
    wall-clock; for RM + PPO the reward model's training is included), ``models_in_memory``
    and ``parameter_bytes`` (held during training, measured), ``samples`` (policy samples drawn
    while training; DPO's pairs are fixed in advance) and ``pairs`` (preference pairs seen, DPO),
    and ``seed_std``, the sample standard deviation of gold accuracy over seeds (None for one
    seed)."""
    rows = []
    for stage, name, samples in METHODS:
        acc = _seed_values(report, stage, "gold_accuracy")
        if not acc:
            continue
        secs = _seed_values(report, stage, "train_seconds")
        if stage == "ppo":
            secs = [a + b for a, b in zip(secs, _seed_values(report, "rm", "train_seconds"))]
        cfg = report.get("config", {}).get(stage) or {}
        row = {"method": name, "stage": stage, "gold_accuracy": statistics.median(acc),
               "seed_std": statistics.stdev(acc) if len(acc) > 1 else None,
               "seconds": statistics.median(secs) if secs else None,
               "samples": samples(cfg) if cfg else None,
               "pairs": cfg["steps"] * cfg["batch_size"] if stage == "dpo" and cfg else 0}
        for key in ("gain_over_sft", "kl_to_ref", "models_in_memory", "parameter_bytes"):
            vals = _seed_values(report, stage, key)
            row[key] = statistics.median(vals) if vals else None
        rows.append(row)
    if not rows:
        raise LabError("--compare needs at least one of the stages "
                       + ", ".join(m[0] for m in METHODS))
    return _clean(rows)


COMPARE_COLUMNS = (("gold_accuracy", "gold acc", "{:.1%}"), ("seed_std", "seed std", "{:.1%}"),
                   ("gain_over_sft", "gain", "{:+.1%}"), ("kl_to_ref", "KL (nats)", "{:.2f}"),
                   ("seconds", "seconds", "{:.1f}"), ("samples", "samples", "{:,}"),
                   ("models_in_memory", "models", "{:.0f}"),
                   ("parameter_bytes", "param MB", "{:.2f}"))


def format_compare(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text head-to-head table of :func:`compare_rows`."""
    lines = [f"{'method':<17}" + "".join(f"  {t:>10}" for _, t, _ in COMPARE_COLUMNS)]
    for row in rows:
        cells = []
        for key, _, fmt in COMPARE_COLUMNS:
            v = row.get(key)
            v = v / 1e6 if key == "parameter_bytes" and v is not None else v
            cells.append("-" if v is None else fmt.format(int(v) if key == "samples" else v))
        lines.append(f"{row['method']:<17}" + "".join(f"  {c:>10}" for c in cells))
    return "\n".join(lines)


def course_config() -> SFTConfig:
    """The base/SFT configuration the CLI uses: the course defaults (tests shrink it)."""
    return SFTConfig()


def lab_threads(cpu_count: int | None = None) -> int:
    """Torch threads for the lab's GPT workloads: two on a machine with two cores (the 0.8M
    GPT trains about 1.6x faster on two idle cores than on one, unlike Part II's small MLPs,
    see :func:`rlcourse.core.default_threads`), else the course default."""
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return min(cores, 2) if cores <= 2 else default_threads(cores)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rlcourse.llm.lab",
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument("--stages", default=None,
                        help=f"comma-separated, from {', '.join(STAGES)}, or all "
                             "(default: every stage available now)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: lab_threads(), 2 on a 2-core machine: "
                             "faster when the machine is idle, far slower on a busy one)")
    parser.add_argument("--compare", action="store_true",
                        help="also print the head-to-head table of RM + PPO, PPO with the gold "
                             "reward, DPO and GRPO (with --json: the report's 'compare' list)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object as the last line of standard output")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--warm-cache", action="store_true",
                        help="only build (or check) the cached checkpoints notebooks 10-11 "
                             "start from, then exit; `make notebooks` runs this first")
    return parser


def warm_cache(seed: int = 0, progress: bool = True,
               rm_overrides: dict | None = None) -> dict[str, Any]:
    """Build, or find, the cached base, SFT and reward models of ``seed`` with the course
    defaults (``rm_overrides`` change the RM's). Returns the wall seconds of each step and
    whether it had to be built."""
    from rlcourse.llm.reward_model import load_reward_model
    from rlcourse.llm.sft import sft_model

    t0 = time.perf_counter()
    _, _, entry = sft_model(course_config(), seed, progress=progress)
    t1 = time.perf_counter()
    rm = load_reward_model(seed, progress=progress, sft=course_config(), **(rm_overrides or {}))
    return {"sft_seconds": t1 - t0, "sft_built": entry.built,
            "rm_seconds": time.perf_counter() - t1, "rm_built": rm.info["cache_built"]}


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """Validate the arguments (exits with a message on bad input); the stages to run."""
    from rlcourse.core import pick_device

    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    if args.first_seed < 0:
        parser.error(f"--first-seed must be non-negative, got {args.first_seed}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    try:
        args.device = pick_device(args.device)
        stages = parse_stages(args.stages if args.stages is not None else available_stages())
        check_device(stages, args.device)
        if args.compare and not {m[0] for m in METHODS} & set(stages):
            raise LabError("--compare needs at least one of the stages "
                           + ", ".join(m[0] for m in METHODS))
        return stages
    except (LabError, ValueError, RuntimeError) as err:
        parser.error(str(err))
    raise AssertionError("unreachable")  # parser.error exits


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code. Everything but the final table or
    JSON line goes to standard error, so standard output can be redirected to a file."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.warm_cache:
        torch.set_num_threads(args.threads or lab_threads())
        took = warm_cache(args.first_seed, progress=not args.no_progress)
        print(f"lab cache ready: SFT {took['sft_seconds']:.1f} s, RM {took['rm_seconds']:.1f} s")
        return 0
    stages = _check_args(parser, args)
    threads = args.threads or lab_threads()
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    configs: dict[str, Any] = {}
    per_seed, totals = [], []
    try:
        with contextlib.redirect_stdout(sys.stderr):
            for seed in seeds:
                t0 = time.perf_counter()
                per_seed.append(run_seed(stages, seed, cfg=course_config(), device=args.device,
                                         progress=not args.no_progress, configs=configs))
                totals.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    report = summarize(seeds, per_seed, stages=stages, device=args.device, threads=threads,
                       torch=torch.__version__, config=configs,
                       total_seconds=statistics.median(totals), per_seed_total_seconds=totals)
    if args.compare:
        report["compare"] = compare_rows(report)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_table(report))
        if args.compare:
            print(format_compare(report["compare"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
