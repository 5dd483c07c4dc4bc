"""Notebook 07's stored experiments: the learning-rate sweep and the time-to-solve ablation.

    python -m rlcourse.ppo_sweep lr --seeds 10 > results/ppo/lr_sweep.json
    python -m rlcourse.ppo_sweep solve --seeds 10 > results/ppo/ablation_solve.json

``lr`` trains each variant (vanilla PG with a one-step critic, vanilla PG with PPO's critic
schedule, PPO) at each learning rate for a fixed budget of env steps and records the return
at the end, the return averaged over training and the KL of the updates. ``solve`` trains
PPO variants (and vanilla PG at its best rate) until CartPole-v1 is solved or a step cap, with
the defaults' learning-rate schedule, and records the env steps it took.
Both print one JSON object that notebook 07 reads with :func:`load`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from rlcourse import ppo

FOLDER = Path(__file__).resolve().parent.parent / "results" / "ppo"
BUDGET = 10_240
ANNEAL_STEPS = 200_000  # the defaults' horizon, so a short run is the start of a long one
LRS = (3e-4, 1e-3, 2.5e-3, 1e-2, 3e-2, 1e-1)
_CFG = ppo.Config()
#: "one-step critic": the critic takes one step per batch like the policy (confounded);
#: "vanilla PG": one policy step per batch, the critic keeps PPO's 8 x 4 schedule.
LR_VARIANTS: dict[str, dict[str, Any]] = {
    "vanilla PG, one-step critic": dict(epochs=1, minibatches=1),
    "vanilla PG": dict(epochs=1, minibatches=1, critic_epochs=_CFG.epochs,
                       critic_minibatches=_CFG.minibatches),
    "PPO": {},
}
SOLVE_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "no gradient-norm clipping": dict(max_grad_norm=None),
    "no advantage normalisation": dict(norm_adv=False),
    "4 epochs": dict(epochs=4),
    "1 epoch": dict(epochs=1, critic_epochs=_CFG.epochs),
    "1 epoch, one-epoch critic": dict(epochs=1),
    "vanilla PG, lr 1e-2": dict(LR_VARIANTS["vanilla PG"], lr=1e-2),
}


def short_run(seed: int, budget: int = BUDGET, **overrides) -> dict[str, float]:
    """Train PPO on CartPole-v1 for ``budget`` env steps; summary of the run.

    ``overrides`` are :class:`rlcourse.ppo.Config` fields (or ``device``, passed to ``train``).

    Keys: ``return`` (running mean of the last 20 episodes at the end), ``avg_return`` (that
    running mean averaged over the updates), ``max_kl`` and ``mean_kl`` (exact
    KL(pi_old || pi) of the updates).
    """
    run = ppo.train("CartPole-v1", seed=seed, progress=False, total_steps=budget,
                    anneal_steps=ANNEAL_STEPS, stop_when_solved=False, **overrides)
    h = run.history
    return {"return": round(h["running_mean"][-1], 2),
            "avg_return": round(float(np.mean(h["running_mean"])), 2),
            "max_kl": round(max(h["kl"]), 5), "mean_kl": round(float(np.mean(h["kl"])), 6)}


def lr_sweep(seeds: int, lrs: tuple[float, ...] = LRS, budget: int = BUDGET,
             variants: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every variant x learning rate x seed (0..seeds-1); ``runs[variant][i_lr][seed]``."""
    variants = LR_VARIANTS if variants is None else variants
    runs: dict[str, list[list[dict[str, float]]]] = {}
    with tqdm(total=len(variants) * len(lrs) * seeds, desc="LR sweep") as bar:
        for name, kw in variants.items():
            runs[name] = []
            for lr in lrs:
                runs[name].append([short_run(s, budget, lr=lr, **kw) for s in range(seeds)])
                bar.update(seeds)
    return {"experiment": "lr_sweep", "env": "CartPole-v1", "budget": budget,
            "anneal_steps": ANNEAL_STEPS, "lrs": list(lrs), "seeds": list(range(seeds)),
            "overrides": variants, "runs": runs}


def solve_ablation(seeds: int, max_steps: int = 100_000,
                   variants: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Env steps to solve CartPole-v1 per variant and seed (None: not within ``max_steps``)."""
    variants = SOLVE_VARIANTS if variants is None else variants
    steps: dict[str, list[int | None]] = {}
    with tqdm(total=len(variants) * seeds, desc="solve ablation") as bar:
        for name, kw in variants.items():
            steps[name] = []
            for seed in range(seeds):
                run = ppo.train("CartPole-v1", seed=seed, progress=False,
                                total_steps=max_steps, anneal_steps=ANNEAL_STEPS, **kw)
                steps[name].append(run.steps_to_solve)
                bar.update()
    medians = {name: _median(v) for name, v in steps.items()}
    return {"experiment": "solve_ablation", "env": "CartPole-v1", "max_steps": max_steps,
            "seeds": list(range(seeds)), "overrides": variants, "steps_to_solve": steps,
            "median_steps_to_solve": medians}


def _median(values: list[int | None]) -> float | None:
    """Median counting an unsolved run (None) as infinitely slow; None if most did not solve."""
    m = statistics.median([float("inf") if v is None else float(v) for v in values])
    return None if m == float("inf") else m


def load(name: str, folder: str | Path | None = None) -> dict[str, Any]:
    """A stored result, ``name`` = "lr_sweep" or "ablation_solve" (from ``results/ppo``)."""
    path = (Path(folder) if folder is not None else FOLDER) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; regenerate it with "
                                f"`python -m rlcourse.ppo_sweep ...` (see the module docstring)")
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    """Command line: ``lr`` or ``solve``; prints the JSON object."""
    parser = argparse.ArgumentParser(prog="python -m rlcourse.ppo_sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=["lr", "solve"])
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds, from 0")
    parser.add_argument("--budget", type=int, default=BUDGET, help="lr: env steps per run")
    parser.add_argument("--max-steps", type=int, default=100_000, help="solve: step cap")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    torch_threads()
    report = (lr_sweep(args.seeds, budget=args.budget) if args.experiment == "lr"
              else solve_ablation(args.seeds, args.max_steps))
    json.dump(report, sys.stdout)
    print()
    return 0


def torch_threads() -> None:
    """One torch thread, as in the notebooks (the networks are tiny)."""
    import torch

    torch.set_num_threads(1)


if __name__ == "__main__":
    raise SystemExit(main())
