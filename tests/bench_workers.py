"""Benchmark: trials per minute with 1 and 2 workers, and the time spent outside training.

    /work/venv/bin/python tests/bench_workers.py [--trials 16] [--epochs 3]

Runs the same grid study (no final comparison) with 1 and then 2 worker processes on a
synthetic MovieLens-like release, on the default journal storage. "Outside training" is
each worker's time from its first trial's start to its last trial's end, less the training
time the trials recorded: popping, storage writes, heartbeats, model set-up, test-set
evaluation. Process start-up (imports, data loading) is reported apart.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).parent))
from conftest import write_ratings_csv  # noqa: E402

from minnet.spec import spec_from_dict  # noqa: E402
from minnet.storage import open_storage  # noqa: E402
from minnet.study import run_study  # noqa: E402
from minnet.workers import cores  # noqa: E402

PADDINGS = [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 1.5]


def bench(root: Path, data: Path, workers: int, trials: int, epochs: int) -> dict[str, float]:
    name = f"bench{workers}"
    raw = {
        "study": {"name": name, "seed": 1, "n_trials": trials},
        "data": {"name": "bench"},
        "training": {"epochs": epochs, "batch_size": 64},
        "search": {"padding": PADDINGS, "hidden": [[10], [50], [10, 10]]},
        "final": {"seeds": 0},
    }
    start = time.perf_counter()
    run_study(spec_from_dict(raw), root, data_dir=data, workers=workers)
    wall = time.perf_counter() - start

    done = optuna.load_study(study_name=name, storage=open_storage(None, root / name))
    spans: dict[str, list[optuna.trial.FrozenTrial]] = defaultdict(list)
    for t in done.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        spans[t.user_attrs["worker"]].append(t)
    busy = training = 0.0
    first_start = min(t.datetime_start for ts in spans.values() for t in ts)  # type: ignore[type-var]
    for ts in spans.values():
        begin = min(t.datetime_start for t in ts)  # type: ignore[type-var]
        end = max(t.datetime_complete for t in ts)  # type: ignore[type-var]
        busy += (end - begin).total_seconds()
        training += sum(t.user_attrs["seconds"] for t in ts)
    search = max(t.datetime_complete for ts in spans.values() for t in ts) - first_start  # type: ignore[type-var]
    return {
        "wall": wall,
        "search": search.total_seconds(),
        "per_minute": 60 * trials / wall,
        "outside": 1 - training / busy,
        "per_trial_outside": (busy - training) / trials,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_ratings_csv(root / "data" / "bench", n_users=600, n_items=1500, n=50_000)
        print(f"{cores()} cores, {args.trials} trials of {args.epochs} epochs each")
        results = {
            w: bench(root / f"w{w}", root / "data", w, args.trials, args.epochs) for w in (1, 2)
        }
    for w, r in results.items():
        print(
            f"{w} worker{'s' if w > 1 else ' '}: {r['per_minute']:6.1f} trials/min "
            f"({r['wall']:.1f} s wall, search {r['search']:.1f} s); outside training "
            f"{100 * r['outside']:.2f}% ({1000 * r['per_trial_outside']:.0f} ms per trial)"
        )
    speedup = results[2]["per_minute"] / results[1]["per_minute"]
    search = results[1]["search"] / results[2]["search"]
    print(
        f"speed-up with 2 workers: {speedup:.2f}x wall, {search:.2f}x once workers have "
        "started (goal >= 1.8x); the CPU is shared, so numbers are noisy"
    )


if __name__ == "__main__":
    main()
