"""Learning curves of several algorithms on one env, for one comparison plot (notebook 07).

    python -m rlcourse.compare --env CartPole-v1 --seeds 5 --out results/compare/CartPole-v1.json

Each algorithm of :data:`rlcourse.bench.ALGOS` trains with its course defaults (its own
``Config``, its own ``total_steps``) except that it keeps going after it first solves the env
(``stop_when_solved=False``), so the curve also shows whether it *stays* solved. For every
finished training episode the run stores:

* ``steps``: env steps taken so far, counted the same way for every algorithm: vector-env
  steps times the number of sub-envs (every ``env.step`` of every sub-env, the autoreset steps
  and REINFORCE's discarded waiting steps included);
* ``returns``: the episode's undiscounted return;
* ``wall_seconds`` (``time.perf_counter``) and ``cpu_seconds`` (``time.process_time`` of this
  process) since the run started. Torch runs on one thread, so CPU seconds are the seconds of
  one busy core: on an idle machine they equal wall-clock, on a shared one they are the
  honest measure (wall-clock also counts the time other jobs held the core).

The episode ends are recorded by a tracker that replaces ``deeprl.EpisodeTracker`` during a
run (:func:`recording_tracker`): the algorithms themselves are not changed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rlcourse import deeprl
from rlcourse.bench import ALGOS
from rlcourse.validation import check_positive_int

DEFAULT_ALGOS = ("dqn", "reinforce", "a2c", "ppo")
COMPARE_FOLDER = Path(__file__).resolve().parent.parent / "results" / "compare"


class RecordingTracker(deeprl.EpisodeTracker):
    """An :class:`rlcourse.deeprl.EpisodeTracker` that also stamps each finished episode.

    Every ``update`` is one vector-env step, so the env-step count after it is
    ``calls * num_envs``. ``log`` gets one (steps, return, wall s, cpu s) row per episode.
    """

    def __init__(self, num_envs: int, threshold: float | None = None,
                 window: int = deeprl.SOLVE_WINDOW):
        super().__init__(num_envs, threshold, window)
        self.num_envs = num_envs
        self.calls = 0
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        self.log: list[tuple[int, float, float, float]] = []

    def update(self, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
               valid: np.ndarray) -> None:
        before = len(self.returns)
        super().update(rewards, terminated, truncated, valid)
        self.calls += 1
        if len(self.returns) > before:
            wall, cpu = time.perf_counter() - self.wall0, time.process_time() - self.cpu0
            steps = self.calls * self.num_envs
            self.log.extend((steps, r, wall, cpu) for r in self.returns[before:])


@contextlib.contextmanager
def recording_tracker() -> Iterator[list[RecordingTracker]]:
    """Within the block, ``deeprl.EpisodeTracker`` builds :class:`RecordingTracker` objects;
    yields the list of those built (the training run's tracker is the first with a threshold)."""
    made: list[RecordingTracker] = []
    original = deeprl.EpisodeTracker

    def build(*args, **kwargs) -> RecordingTracker:
        made.append(RecordingTracker(*args, **kwargs))
        return made[-1]

    deeprl.EpisodeTracker = build  # type: ignore[assignment, misc]
    try:
        yield made
    finally:
        deeprl.EpisodeTracker = original  # type: ignore[misc]


def run_curve(algo: str, env_id: str, seed: int, **overrides) -> dict[str, Any]:
    """Train ``algo`` on ``env_id`` (course defaults, no stop at solving, ``overrides`` on top)
    and return its learning curve: lists ``steps``, ``returns``, ``wall_seconds``,
    ``cpu_seconds`` (one entry per finished episode) plus the run's summary numbers."""
    if algo not in ALGOS:
        raise ValueError(f"unknown algo {algo!r}; choose from {sorted(ALGOS)}")
    train = importlib.import_module(ALGOS[algo]).train
    with recording_tracker() as made:
        result = train(env_id, seed, progress=False,
                       **{"stop_when_solved": False, **overrides})
    runs = [t for t in made if t.threshold is not None] or made
    if not runs:
        raise RuntimeError(f"{algo}.train built no EpisodeTracker, so nothing was recorded")
    log = runs[0].log
    cols = list(zip(*log)) if log else [(), (), (), ()]
    return {"algo": algo, "seed": seed, "solved": bool(result.solved),
            "steps_to_solve": result.steps_to_solve, "total_steps": int(result.total_steps),
            "steps": [int(s) for s in cols[0]], "returns": [round(float(r), 2) for r in cols[1]],
            "wall_seconds": [round(float(s), 3) for s in cols[2]],
            "cpu_seconds": [round(float(s), 3) for s in cols[3]]}


def compare(env_id: str, seeds: int, algos: tuple[str, ...] = DEFAULT_ALGOS,
            first_seed: int = 0, **overrides) -> dict[str, Any]:
    """Curves of every algorithm in ``algos`` for ``seeds`` seeds: {"env", "algos", "runs"}."""
    check_positive_int(seeds, "seeds")
    unknown = [a for a in algos if a not in ALGOS]
    if unknown:
        raise ValueError(f"unknown algos {unknown}; choose from {sorted(ALGOS)}")
    deeprl.reward_threshold(env_id)  # fail early on envs without a threshold
    runs = []
    for algo in algos:
        for seed in range(first_seed, first_seed + seeds):
            runs.append(run_curve(algo, env_id, seed, **overrides))
            r = runs[-1]
            print(f"{algo} seed {seed}: {len(r['returns'])} episodes, {r['total_steps']:,} steps,"
                  f" {r['cpu_seconds'][-1] if r['cpu_seconds'] else 0:.1f} cpu s",
                  file=sys.stderr)
    return {"env": env_id, "algos": list(algos), "seeds": seeds,
            "threshold": deeprl.reward_threshold(env_id), "runs": runs}


def curve_on_grid(steps: list[float], returns: list[float], grid: np.ndarray,
                  window: int = deeprl.SOLVE_WINDOW) -> np.ndarray:
    """The running mean of the last ``window`` returns, read at each x of ``grid``.

    ``steps`` [E] (increasing) and ``returns`` [E] per finished episode; returns [len(grid)]
    with NaN before the first episode ends and after the run's last episode.
    """
    steps, returns = np.asarray(steps, dtype=float), np.asarray(returns, dtype=float)
    if steps.shape != returns.shape or steps.ndim != 1:
        raise ValueError(f"steps {steps.shape} and returns {returns.shape} must be equal 1-D")
    if np.any(np.diff(steps) < 0):
        raise ValueError("steps must be non-decreasing")
    window = check_positive_int(window, "window")
    out = np.full(len(grid), np.nan)
    if len(steps) == 0:
        return out
    csum = np.concatenate([[0.0], np.cumsum(returns)])
    idx = np.searchsorted(steps, grid, side="right")  # episodes finished by each x
    ok = (idx > 0) & (np.asarray(grid) <= steps[-1])
    lo = np.maximum(idx - window, 0)
    out[ok] = (csum[idx[ok]] - csum[lo[ok]]) / (idx[ok] - lo[ok])
    return out


def first_reach(steps: list[float], returns: list[float], threshold: float,
                window: int = deeprl.SOLVE_WINDOW) -> float | None:
    """The x (``steps``, or seconds) of the episode end at which the mean of the last
    ``window`` returns first reaches ``threshold`` (the course's "solved"); None if never."""
    returns = np.asarray(returns, dtype=float)
    if len(steps) != len(returns):
        raise ValueError(f"steps ({len(steps)}) and returns ({len(returns)}) differ in length")
    window = check_positive_int(window, "window")
    if len(returns) < window:
        return None
    means = np.convolve(returns, np.ones(window) / window, mode="valid")
    hits = np.flatnonzero(means >= threshold)
    return None if len(hits) == 0 else float(steps[hits[0] + window - 1])


def solve_table(report: dict[str, Any]) -> dict[str, dict[str, list[float | None]]]:
    """Per algorithm, per seed: env steps and CPU seconds at which the run first solved
    (None if never), and the mean of its last ``SOLVE_WINDOW`` returns at the end."""
    out: dict[str, dict[str, list[float | None]]] = {}
    for r in report["runs"]:
        row = out.setdefault(r["algo"], {"steps": [], "cpu_seconds": [], "final": []})
        row["steps"].append(first_reach(r["steps"], r["returns"], report["threshold"]))
        row["cpu_seconds"].append(first_reach(r["cpu_seconds"], r["returns"],
                                              report["threshold"]))
        tail = r["returns"][-deeprl.SOLVE_WINDOW:]
        row["final"].append(float(np.mean(tail)) if tail else None)
    return out


def load(env_id: str = "CartPole-v1", folder: str | Path | None = None) -> dict[str, Any]:
    """The stored comparison ``results/compare/<env_id>.json`` (see the module docstring)."""
    path = Path(folder if folder is not None else COMPARE_FOLDER) / f"{env_id}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no stored comparison at {path}; create it with "
                                f"python -m rlcourse.compare --env {env_id} --seeds 5 "
                                f"--out {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; writes the JSON to ``--out`` (or stdout)."""
    parser = argparse.ArgumentParser(prog="python -m rlcourse.compare",
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--algos", default=",".join(DEFAULT_ALGOS),
                        help=f"comma-separated, from {sorted(ALGOS)}")
    parser.add_argument("--out", default=None, help="JSON file (default: print to stdout)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    algos = tuple(a.strip() for a in args.algos.split(",") if a.strip())
    bad = [a for a in algos if a not in ALGOS]
    if bad or not algos:
        parser.error(f"--algos must name algorithms from {sorted(ALGOS)}, got {args.algos!r}")
    import torch

    torch.set_num_threads(1)
    report = compare(args.env, args.seeds, algos, args.first_seed)
    text = json.dumps(report)
    if args.out:  # written to a temporary file first: a stopped run leaves the old file intact
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, out)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
