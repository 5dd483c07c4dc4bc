"""From scratch to the library: the course's GRPO and DPO runs through TRL (notebook 14).

TRL (Hugging Face's ``trl`` package) is an optional extra: ``pip install -e ".[trl]"``, which
``make test`` installs. Each ``trl_*`` function runs the library's trainer on the same cached
SFT model, reward and data as the course's own trainer (:func:`rlcourse.llm.grpo.train`,
:func:`rlcourse.llm.dpo.train`), with every setting that differs between the two by default
set explicitly, and returns a :class:`Run` with the same fields as the ``course_*`` function.

Defaults of TRL 1.x that change the algorithm silently (see :func:`trl_defaults`):

* ``GRPOConfig.beta`` is 0: no KL term toward the reference unless you set it;
* ``GRPOConfig.loss_type`` is ``"dapo"``: token-level averaging, not GRPO's per-sequence mean;
* both trainers' ``learning_rate`` is 1e-6, sized for billion-parameter models;
* ``DPOTrainer`` appends the end-of-sequence token to chosen and rejected texts itself.
"""

from __future__ import annotations

import contextlib
import importlib.util
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

INSTALL_HINT = 'pip install -e ".[trl]"   (make test installs it)'


def missing() -> str | None:
    """None if TRL and its ``datasets`` dependency import, else what to run to install them."""
    absent = [m for m in ("trl", "datasets") if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    return f"{' and '.join(absent)} not installed; to run this section: {INSTALL_HINT}"


def _require() -> None:
    reason = missing()
    if reason is not None:
        raise ModuleNotFoundError(reason)


def trl_defaults() -> dict[str, object]:
    """The defaults of the installed TRL that matter here, read from its config classes."""
    _require()
    import trl

    with tempfile.TemporaryDirectory() as tmp, _quiet():
        g = trl.GRPOConfig(output_dir=tmp, use_cpu=True, report_to="none")
        d = trl.DPOConfig(output_dir=tmp, use_cpu=True, report_to="none")
    return {"trl": trl.__version__, "grpo_beta": g.beta, "grpo_loss_type": g.loss_type,
            "grpo_scale_rewards": g.scale_rewards, "grpo_num_generations": g.num_generations,
            "grpo_learning_rate": g.learning_rate, "dpo_beta": d.beta,
            "dpo_loss_type": list(d.loss_type) if isinstance(d.loss_type, (list, tuple))
            else d.loss_type, "dpo_learning_rate": d.learning_rate}


@dataclass
class Run:
    """One training run: greedy held-out ``gold_accuracy`` at each ``step`` of ``steps`` (step
    0 = the SFT model), wall ``seconds`` of the training loop (the same evaluations included on
    both sides), ``final`` = :func:`rlcourse.llm.rlhf.evaluate_policy` at the end."""

    name: str
    steps: list[int]
    gold_accuracy: list[float]
    seconds: float
    final: dict[str, float]
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def seconds_per_step(self) -> float:
        """Wall seconds per optimiser step."""
        return self.seconds / max(self.steps[-1], 1)


def _setup(seed: int, n_eval: int, sft_cfg=None, root=None):
    """(policy, frozen reference, tokenizer, train problems, evaluate(model) -> metrics) from
    the cached SFT model of ``seed`` (``sft_cfg`` default: the course's)."""
    from rlcourse.llm import rlhf, task
    from rlcourse.llm.sft import SFTConfig, sft_model

    cfg = sft_cfg or SFTConfig()
    policy, tok, _ = sft_model(cfg, seed, root=root, progress=False)
    ref = rlhf.frozen_copy(policy)
    train_set, held = task.split_problems(cfg.split_seed, cfg.n_heldout)
    evaluate = partial(rlhf.evaluate_policy, ref=ref, tokenizer=tok, problems=held[:n_eval],
                       reward_fn=rlhf.gold_reward_fn, cfg=rlhf.Config(), seed=seed)
    return policy, ref, tok, train_set, evaluate


def _eval_callback(evaluate: Callable, every: int, steps: list[int], acc: list[float]):
    """A transformers ``TrainerCallback`` that appends the gold accuracy every ``every``
    optimiser steps (and at the last one)."""
    from transformers import TrainerCallback

    class GoldAccuracy(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % every == 0 or state.global_step == state.max_steps:
                was_training = model.training
                model.eval()
                steps.append(state.global_step)
                acc.append(evaluate(model)["gold_accuracy"])
                model.train(was_training)

    return GoldAccuracy()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide transformers' deprecation warnings, info logs and weight-loading bars for the
    duration of a TRL run (they are about the library, not the lesson)."""
    import datasets
    from transformers.utils import logging

    from rlcourse.llm.model import quiet_transformers

    level, bars = logging.get_verbosity(), datasets.is_progress_bar_enabled()
    logging.set_verbosity_error()
    datasets.disable_progress_bars()
    try:
        with warnings.catch_warnings(), quiet_transformers():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logging.set_verbosity(level)
        if bars:
            datasets.enable_progress_bars()


def _train(trainer) -> tuple[float, list[dict]]:
    """Run ``trainer.train()`` without its console printer; (wall seconds, TRL's per-step
    log history)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    return seconds, [row for row in trainer.state.log_history if "loss" in row]


def _common_args(tmp: str, seed: int, steps: int, device: str) -> dict[str, object]:
    """TrainingArguments shared by both trainers: offline, no saving, no logging service."""
    return dict(output_dir=tmp, use_cpu=device == "cpu", report_to="none", seed=seed,
                max_steps=steps, save_strategy="no", logging_steps=1, max_grad_norm=1.0,
                weight_decay=0.0, disable_tqdm=True, dataloader_num_workers=0)


# ---- GRPO ---------------------------------------------------------------------------------------

def course_grpo(seed: int = 0, updates: int = 20, eval_every: int = 5, n_eval: int = 200,
                progress: bool = True, sft_cfg=None, root=None, **overrides) -> Run:
    """The course's :func:`rlcourse.llm.grpo.train` for ``updates`` updates, its
    :class:`~rlcourse.llm.grpo.GRPOConfig` changed by ``overrides``."""
    from rlcourse.llm import grpo

    res = grpo.train(seed, progress=progress, sft_cfg=sft_cfg, root=root, updates=updates,
                     eval_every=eval_every, n_eval=n_eval, **overrides)
    return Run("course GRPO", list(res.history["eval_update"]),
               list(res.history["gold_accuracy"]), res.final["seconds"], res.final)


def trl_grpo(seed: int = 0, updates: int = 20, eval_every: int = 5, n_eval: int = 200,
             device: str = "cpu", sft_cfg=None, root=None, **overrides) -> Run:
    """TRL's ``GRPOTrainer`` with the course's :class:`~rlcourse.llm.grpo.GRPOConfig` spelled
    out: B prompts x G samples per step, the gold reward, the k3 KL with the course's beta,
    GRPO's per-sequence loss, group-std scaling, the same clip, learning rate and length."""
    _require()
    import datasets
    import trl

    from rlcourse.llm import grpo, rlhf

    cfg = grpo.GRPOConfig(updates=updates, **overrides)
    policy, _, tok, train_set, evaluate = _setup(seed, n_eval, sft_cfg, root)
    rng = np.random.default_rng([seed, 13])
    prompts = [train_set[i].prompt for i in rng.integers(0, len(train_set),
                                                         size=updates * cfg.n_prompts)]

    def gold(prompts, completions, **_):
        return [float(r) for r in rlhf.gold_reward_fn(prompts, completions)]

    steps, acc = [0], [evaluate(policy)["gold_accuracy"]]
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        args = trl.GRPOConfig(
            **_common_args(tmp, seed, updates, device),
            per_device_train_batch_size=cfg.n_prompts * cfg.group_size,
            num_generations=cfg.group_size, max_completion_length=cfg.max_new_tokens,
            temperature=cfg.temperature, learning_rate=cfg.lr, lr_scheduler_type="constant",
            warmup_steps=0, beta=cfg.beta, loss_type="grpo", scale_rewards="group",
            epsilon=cfg.clip_eps, num_iterations=cfg.epochs, shuffle_dataset=False)
        trainer = trl.GRPOTrainer(model=policy, reward_funcs=gold, args=args,
                                  train_dataset=datasets.Dataset.from_dict({"prompt": prompts}),
                                  processing_class=tok,
                                  callbacks=[_eval_callback(evaluate, eval_every, steps, acc)])
        seconds, log = _train(trainer)
    policy.eval()
    return Run("TRL GRPOTrainer", steps, acc, seconds, evaluate(policy),
               {"kl": [float(r.get("kl", np.nan)) for r in log],
                "reward": [float(r.get("reward", np.nan)) for r in log]})


# ---- DPO ----------------------------------------------------------------------------------------

def course_dpo(seed: int = 0, steps: int = 60, eval_every: int = 20, n_eval: int = 200,
               onpolicy_prompts: int = 200, progress: bool = True, sft_cfg=None, root=None,
               **overrides) -> Run:
    """The course's :func:`rlcourse.llm.dpo.train` for ``steps`` steps on the annotator's pairs
    (with ``onpolicy_prompts`` prompts of SFT samples, fewer than the lab's, to save time)."""
    from rlcourse.llm import dpo

    res = dpo.train(seed, progress=progress, sft_cfg=sft_cfg, root=root, steps=steps,
                    eval_every=eval_every, n_eval=n_eval,
                    rm_overrides={"onpolicy_prompts": onpolicy_prompts}, **overrides)
    return Run("course DPO", [0] + list(res.history["eval_step"]),
               [res.start["gold_accuracy"]] + list(res.history["gold_accuracy"]),
               res.final["seconds"], res.final)


def trl_dpo(seed: int = 0, steps: int = 60, eval_every: int = 20, n_eval: int = 200,
            onpolicy_prompts: int = 200, device: str = "cpu", sft_cfg=None, root=None,
            **overrides) -> Run:
    """TRL's ``DPOTrainer`` on the same preference pairs as :func:`course_dpo` (same seed),
    with the course's :class:`~rlcourse.llm.dpo.DPOConfig`: beta, learning rate, batch size,
    warm-up then cosine decay, the sigmoid loss, reference log-probs computed once."""
    _require()
    import datasets
    import trl

    from rlcourse.llm import dpo
    from rlcourse.llm import reward_model as rmod
    from rlcourse.llm.sft import SFTConfig

    cfg = dpo.DPOConfig(steps=steps, **overrides)
    policy, ref, tok, train_set, evaluate = _setup(seed, n_eval, sft_cfg, root)
    rm_cfg = rmod.RMConfig(sft=sft_cfg or SFTConfig(), onpolicy_prompts=onpolicy_prompts)
    pairs = rmod.training_pairs(rm_cfg, policy, tok, train_set, seed)
    data = datasets.Dataset.from_dict({"prompt": [p.prompt for p in pairs],
                                       "chosen": [p.chosen for p in pairs],
                                       "rejected": [p.rejected for p in pairs]})
    done, acc = [0], [evaluate(policy)["gold_accuracy"]]
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        args = trl.DPOConfig(
            **_common_args(tmp, seed, steps, device), per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.lr, lr_scheduler_type="cosine", warmup_steps=cfg.warmup,
            beta=cfg.beta, loss_type="sigmoid", precompute_ref_log_probs=True,
            precompute_ref_batch_size=1024)
        trainer = trl.DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=data,
                                 processing_class=tok,
                                 callbacks=[_eval_callback(evaluate, eval_every, done, acc)])
        seconds, log = _train(trainer)
        ends_with_eos = _ends_with_eos(trainer.train_dataset, tok)
    policy.eval()
    return Run("TRL DPOTrainer", done, acc, seconds, evaluate(policy),
               {"pairs": len(pairs), "chosen_ends_with_eos": ends_with_eos,
                "loss": [float(r["loss"]) for r in log]})


def _ends_with_eos(dataset, tokenizer) -> float:
    """Fraction of the tokenised chosen responses in TRL's dataset that end with the EOS id and
    hold it exactly once (TRL appends it; the texts handed over had none)."""
    key = next(k for k in ("chosen_input_ids", "chosen_ids") if k in dataset.column_names)
    eos = tokenizer.eos_token_id
    return float(np.mean([len(r) > 0 and r[-1] == eos and list(r).count(eos) == 1
                          for r in dataset[key]]))


# ---- the stored comparison (notebook 14 reads results/lab/trl_compare.json) ---------------------

def run_summary(run: Run) -> dict[str, object]:
    """A JSON-ready summary of ``run``: its curve, seconds and final accuracy and KL."""
    return {"name": run.name, "steps": list(run.steps),
            "gold_accuracy": [round(float(a), 4) for a in run.gold_accuracy],
            "seconds": round(run.seconds, 2), "seconds_per_step": round(run.seconds_per_step, 4),
            "final_gold_accuracy": round(float(run.final["gold_accuracy"]), 4),
            "kl_to_ref": round(float(run.final["kl_to_ref"]), 4)}


def compare(seeds: Sequence[int], grpo_updates: int = 20, dpo_steps: int = 60,
            progress: bool = True) -> dict[str, object]:
    """Course vs TRL, GRPO and DPO, for each seed: ``{"grpo": {"course": [...], "trl": [...]},
    "dpo": {...}, "median": {algo: {side: {final_gold_accuracy, seconds_per_step,
    kl_to_ref}}}}`` with :func:`run_summary` entries in the order of ``seeds``."""
    _require()
    from tqdm.auto import tqdm

    jobs = {"grpo": (partial(course_grpo, updates=grpo_updates, progress=False),
                     partial(trl_grpo, updates=grpo_updates)),
            "dpo": (partial(course_dpo, steps=dpo_steps, progress=False),
                    partial(trl_dpo, steps=dpo_steps))}
    out: dict[str, object] = {"seeds": list(seeds), "grpo_updates": grpo_updates,
                              "dpo_steps": dpo_steps, "trl": trl_defaults()["trl"]}
    bar = tqdm(total=4 * len(seeds), desc="course vs TRL", disable=not progress)
    for algo, (ours, theirs) in jobs.items():
        out[algo] = {"course": [], "trl": []}
        for seed in seeds:
            for side, fn in (("course", ours), ("trl", theirs)):
                out[algo][side].append(run_summary(fn(seed)))
                bar.update()
    bar.close()
    keys = ("final_gold_accuracy", "seconds_per_step", "kl_to_ref")
    out["median"] = {algo: {side: {k: float(np.median([r[k] for r in out[algo][side]]))
                                   for k in keys} for side in ("course", "trl")}
                     for algo in jobs}
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m rlcourse.llm.trl_bridge [--seeds 3] [--out FILE]``: :func:`compare` as JSON
    (written to a temporary file, then moved over ``FILE``)."""
    import argparse
    import json
    import os

    import torch

    parser = argparse.ArgumentParser(prog="python -m rlcourse.llm.trl_bridge",
                                     description="the course's GRPO and DPO against TRL's")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=None, help="JSON file (default: standard output)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    if missing() is not None:
        parser.error(missing())
    torch.set_num_threads(1)
    text = json.dumps(compare(range(args.seeds)), indent=1)
    if args.out is None:
        print(text)
        return 0
    tmp = f"{args.out}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
