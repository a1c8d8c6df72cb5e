"""How epoch time and memory grow with the data and the tables, dense vs sparse mode.

Run from the repository root (about 5 minutes on 2 cores; pytest does not collect it):

    python tests/bench_scale.py
    python tests/bench_scale.py --sizes 100000 1000000 --steps 500

Synthetic ratings (``bench_train.synthetic_ratings``) with MovieLens-25M-like tables,
162,541 users and 59,047 movies, at 100k, 1M, 10M and 25M ratings, split 80/20. Each
(mode, size) runs in its own process so that its peak resident memory is its own.

An epoch at 25M ratings is 312,500 steps, hours in dense mode, so each run is bounded:
it trains ``--steps`` steps (or the whole epoch if that is shorter) through
``minnet.train.train`` and times the rest of an epoch separately, once: the epoch's
permutation and gathers of the training rows, and the evaluation of the validation
rows. The epoch time printed is ``seconds per step * steps per epoch + gather +
evaluation``, marked "measured" when the whole epoch ran. The peak memory is that of a
process holding the data, both parts, one epoch's permuted copy, the model and the
optimizer state, as a real epoch does.

A second table fixes the data (100k ratings) and grows the tables, to show what a step
costs in each mode as the tables grow.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import machine, synthetic_ratings  # noqa: E402

from minnet.model import MiniNet  # noqa: E402
from minnet.split import make_split  # noqa: E402
from minnet.train import Part, TrainConfig, evaluate, train  # noqa: E402

ML25M_USERS, ML25M_MOVIES = 162_541, 59_047
SIZES = (100_000, 1_000_000, 10_000_000, 25_000_000)
TABLE_FRACTIONS = (0.01, 0.1, 1.0)  # of the ML-25M-like tables, for the table sweep


def one_run(mode: str, n_ratings: int, n_users: int, n_items: int, steps: int) -> dict:
    """Time one bounded epoch in this process and report it with the peak memory."""
    sparse = mode == "sparse"
    data = synthetic_ratings(n_ratings, n_users, n_items, seed=0)
    split = make_split(len(data), seed=42, valid_fraction=0.2)
    train_part, valid_part = Part.of(data, split.train), Part.of(data, split.valid)
    config = TrainConfig(epochs=1, sparse=sparse, torch_threads=1)
    torch.set_num_threads(1)
    steps_per_epoch = -(-len(train_part) // config.batch_size)
    run_steps = min(steps, steps_per_epoch)

    started = time.perf_counter()
    perm = torch.randperm(len(train_part))
    epoch_copy = [t[perm] for t in (train_part.users, train_part.items, train_part.ratings)]
    gather = time.perf_counter() - started

    def timed(n_steps: int, valid: Part) -> float:
        torch.manual_seed(0)
        model = MiniNet(data.n_users, data.n_items, data.rating_range, sparse=sparse)
        rows = slice(0, n_steps * config.batch_size)
        part = Part(train_part.users[rows], train_part.items[rows], train_part.ratings[rows])
        return train(model, part, valid, config, seed=1).seconds

    # The difference of a long and a short run is the cost of the steps alone, without
    # the fixed costs of a run (optimizer state, the audited first step).
    valid_tensors = (valid_part.users, valid_part.items, valid_part.ratings)
    tiny_valid = Part(*(t[:1000] for t in valid_tensors))
    short = max(run_steps // 5, 1)
    measured = run_steps == steps_per_epoch
    model = MiniNet(data.n_users, data.n_items, data.rating_range, sparse=sparse)
    started = time.perf_counter()
    evaluate(model, valid_part)
    evaluation = time.perf_counter() - started
    del model, epoch_copy

    timed(2, tiny_valid)  # warm-up: the first run imports and initialises lazily
    long_seconds = timed(run_steps, valid_part if measured else tiny_valid)
    steps_only = long_seconds - (evaluation if measured else 0.0)
    per_step = (steps_only - timed(short, tiny_valid)) / (run_steps - short)
    epoch = long_seconds if measured else per_step * steps_per_epoch + gather + evaluation

    return {
        "mode": mode,
        "ratings": n_ratings,
        "users": n_users,
        "movies": n_items,
        "steps_per_epoch": steps_per_epoch,
        "steps_run": run_steps,
        "ms_per_step": 1000 * per_step,
        "gather_s": gather,
        "eval_s": evaluation,
        "epoch_s": epoch,
        "measured": measured,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def spawn(mode: str, n_ratings: int, n_users: int, n_items: int, steps: int) -> dict:
    command = [sys.executable, __file__, "--one", mode, str(n_ratings), str(n_users)]
    command += [str(n_items), "--steps", str(steps)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def format_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--steps", type=int, default=1000, help="steps timed per run")
    parser.add_argument("--one", nargs=4, metavar=("MODE", "RATINGS", "USERS", "MOVIES"))
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args(argv)

    if args.one:
        mode, ratings, users, movies = args.one
        print(json.dumps(one_run(mode, int(ratings), int(users), int(movies), args.steps)))
        return

    print(f"machine: {machine()}; torch threads: 1; batch 64")
    print(f"tables: {ML25M_USERS} users x {ML25M_MOVIES} movies, 50 factors each\n")
    print("| ratings | mode | ms/step | steps/epoch | epoch | peak RSS |")
    print("|---:|---|---:|---:|---:|---:|")
    runs = []
    for n in args.sizes:
        for mode in ("dense", "sparse"):
            r = spawn(mode, n, ML25M_USERS, ML25M_MOVIES, args.steps)
            runs.append(r)
            how = "measured" if r["measured"] else f"from {r['steps_run']} steps"
            print(
                f"| {n:,} | {mode} | {r['ms_per_step']:.2f} | {r['steps_per_epoch']:,} | "
                f"{format_duration(r['epoch_s'])} ({how}) | {r['peak_rss_mb']:,.0f} MB |",
                flush=True,
            )

    print("\nstep cost as the tables grow (100,000 ratings):\n")
    print("| users | movies | table rows | dense ms/step | sparse ms/step |")
    print("|---:|---:|---:|---:|---:|")
    for fraction in TABLE_FRACTIONS:
        users, movies = int(ML25M_USERS * fraction), int(ML25M_MOVIES * fraction)
        cost = {}
        for mode in ("dense", "sparse"):
            r = spawn(mode, 100_000, users, movies, min(args.steps, 500))
            runs.append(r)
            cost[mode] = r["ms_per_step"]
        print(
            f"| {users:,} | {movies:,} | {users + movies:,} | {cost['dense']:.2f} | "
            f"{cost['sparse']:.2f} |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
