"""Benchmark CLI: train an algorithm with the course defaults over several seeds.

    python -m rlcourse.bench ppo --env CartPole-v1 --seeds 10 [--json]

For each seed it reports whether training solved the env (running mean of the last
``deeprl.SOLVE_WINDOW`` episodes reaching the env's reward threshold), the env steps and
wall-clock seconds it took, and the mean return of a 100-episode greedy evaluation. Medians
count an unsolved seed as infinitely slow, so a median is reported only when at least half of
the seeds solved.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import statistics
import sys
from typing import Any

from rlcourse import continuous, deeprl

ALGOS = {"dqn": "rlcourse.dqn", "reinforce": "rlcourse.pg", "a2c": "rlcourse.actor_critic",
         "ppo": "rlcourse.ppo", "sac": "rlcourse.sac"}

#: Per-(algo, env) settings on top of the algorithm's Config defaults (which are tuned on the
#: env named in each Config's docstring). Envs without a registered reward threshold use the
#: course's target, :data:`rlcourse.continuous.COURSE_TARGETS` (Pendulum-v1: -200).
ENV_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    # PPO's CartPole defaults do not carry over to Pendulum-v1: a shorter horizon (gamma 0.9)
    # and larger batches (8 x 256 steps, 10 epochs of 64-step minibatches), no gradient-norm
    # clip (the value loss's gradient, large with returns near -1000, would take all of its
    # budget). Training stops once solved, else after 200k steps.
    ("ppo", "Pendulum-v1"): {"gamma": 0.9, "lam": 0.95, "lr": 1e-3, "rollout_steps": 256,
                             "epochs": 10, "minibatches": 32, "max_grad_norm": None,
                             "total_steps": 200_000},
}


def run_seed(algo: str, env_id: str, seed: int, device: str = "cpu",
             eval_episodes: int = 100, curve_every: int | None = None) -> dict[str, Any]:
    """Train one seed and evaluate its greedy policy; returns one row of the report.

    With ``curve_every``, the row also holds ``curve``: the training running mean
    (:func:`rlcourse.deeprl.learning_curve`) at every multiple of ``curve_every`` env steps.
    """
    train = importlib.import_module(ALGOS[algo]).train
    result = train(env_id, seed, device=device, progress=False,
                   **ENV_OVERRIDES.get((algo, env_id), {}))
    returns = deeprl.evaluate(env_id, result.act, episodes=eval_episodes, seed=10_000 + seed,
                              device=device)
    row = {"seed": seed, "solved": bool(result.solved),
           "steps_to_solve": result.steps_to_solve,
           "seconds_to_solve": None if result.seconds_to_solve is None
           else round(result.seconds_to_solve, 2),
           "eval_mean_return": round(float(returns.mean()), 2)}
    if curve_every:
        steps = list(range(curve_every, result.total_steps + 1, curve_every))
        means = deeprl.learning_curve(result, steps)
        row["curve"] = {"step": steps, "running_mean": [
            None if math.isnan(m) else round(float(m), 2) for m in means]}
    return row


def _median(values: list[float | None]) -> float | None:
    m = statistics.median([math.inf if v is None else v for v in values])
    return None if math.isinf(m) else m


def summarize(algo: str, env_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON report: per-seed rows plus medians and the solved fraction."""
    return {"algo": algo, "env": env_id, "seeds": rows,
            "median_steps_to_solve": _median([r["steps_to_solve"] for r in rows]),
            "median_seconds_to_solve": _median([r["seconds_to_solve"] for r in rows]),
            "solved_fraction": sum(r["solved"] for r in rows) / len(rows)}


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table of the report."""
    lines = [f"{report['algo']} on {report['env']}",
             f"{'seed':>4}  {'solved':>6}  {'steps':>8}  {'seconds':>8}  {'eval return':>11}"]
    for r in report["seeds"]:
        steps = "-" if r["steps_to_solve"] is None else f"{r['steps_to_solve']:,}"
        secs = "-" if r["seconds_to_solve"] is None else f"{r['seconds_to_solve']:.1f}"
        lines.append(f"{r['seed']:>4}  {'yes' if r['solved'] else 'no':>6}  {steps:>8}  "
                     f"{secs:>8}  {r['eval_mean_return']:>11.1f}")
    ms, mt = report["median_steps_to_solve"], report["median_seconds_to_solve"]
    lines.append(f"median steps to solve: {'-' if ms is None else f'{ms:,.0f}'} | median "
                 f"seconds: {'-' if mt is None else f'{mt:.1f}'} | solved "
                 f"{report['solved_fraction']:.0%} of seeds")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m rlcourse.bench",
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument("algo", choices=sorted(ALGOS))
    parser.add_argument("--env", default="CartPole-v1", help="gymnasium id (default CartPole-v1)")
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds, from 0")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--curve-every", type=int, default=None, metavar="STEPS",
                        help="also store each seed's training curve every STEPS env steps")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    continuous.reward_target(args.env)  # fail early on unknown envs or envs without a target
    import torch

    from rlcourse.core import default_threads

    torch.set_num_threads(default_threads())
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rows.append(run_seed(args.algo, args.env, seed, args.device, args.eval_episodes,
                             args.curve_every))
        r = rows[-1]
        print(f"seed {seed}: solved={r['solved']} steps={r['steps_to_solve']} "
              f"eval={r['eval_mean_return']:.1f}", file=sys.stderr)
    report = summarize(args.algo, args.env, rows)
    print(json.dumps(report) if args.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
