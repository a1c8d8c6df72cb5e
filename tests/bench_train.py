"""Benchmark minnet's training loop against the plain PyTorch loop a practitioner writes.

Run from the repository root (pytest does not collect it: the name does not start with
``test_``):

    python tests/bench_train.py                 # 3 repeats of the lesson's 6 epochs
    python tests/bench_train.py --repeats 5 --no-sparse
    python tests/bench_train.py --threads-study  # 1 or 2 workers x 1 or 2 torch threads

It trains the lesson's Mini Net on ``../shared/data/ml-latest-small-2016`` (lesson split:
seed 42, 20% validation) when that folder exists, else on synthetic ratings of the same
size, with

- baseline: ``TensorDataset`` + ``DataLoader`` + ``torch.optim.Adam`` defaults, kept here
  as the reference;
- minnet: ``minnet.train.train`` (dense fused Adam);
- minnet sparse: ``TrainConfig(sparse=True)`` (lazy Adam on the tables), unless
  ``--no-sparse``.

All start from the same initial weights and seed, and see the batches in the same order:
the baseline's sampler draws one permutation per epoch from the run's seeded generator,
as minnet does (``shuffle=True`` would draw a second, unused one each epoch), and the
loader's own seed comes from a separate generator so that dropout masks match too. The
loops run alternately, repeat after repeat, and the figures are medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler, TensorDataset

from minnet.data import Ratings, load_ratings
from minnet.model import MiniNet
from minnet.split import make_split
from minnet.train import Part, TrainConfig, seed_everything, train

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ml-latest-small-2016" / "ratings.csv"
MSE_TOLERANCE = 0.005  # the bar for "learns the same"


# synthetic ratings


def synthetic_ratings(
    n_ratings: int, n_users: int, n_items: int, seed: int = 0, n_factors: int = 8
) -> Ratings:
    """Ratings from latent factors, with long-tailed user activity and movie popularity.

    Users and movies are drawn with Zipf-like weights (a few are very active or very
    popular, most are rare), as in MovieLens; a rating is a global mean plus biases plus
    a dot product of latent factors plus noise, rounded to half stars in 0.5..5.
    """
    rng = np.random.default_rng(seed)
    user_weight = rng.permutation(1.0 / np.arange(1, n_users + 1) ** 0.7)
    item_weight = rng.permutation(1.0 / np.arange(1, n_items + 1) ** 1.0)
    users = rng.choice(n_users, size=n_ratings, p=user_weight / user_weight.sum())
    items = rng.choice(n_items, size=n_ratings, p=item_weight / item_weight.sum())

    user_f = rng.normal(0, 0.5, (n_users, n_factors)).astype(np.float32)
    item_f = rng.normal(0, 0.5, (n_items, n_factors)).astype(np.float32)
    user_b = rng.normal(0, 0.4, n_users).astype(np.float32)
    item_b = rng.normal(0, 0.4, n_items).astype(np.float32)
    ratings = np.empty(n_ratings, dtype=np.float32)
    for lo in range(0, n_ratings, 1 << 20):  # chunks keep the (n, factors) temporaries small
        u, i = users[lo : lo + (1 << 20)], items[lo : lo + (1 << 20)]
        dot = np.einsum("nf,nf->n", user_f[u], item_f[i])
        noise = rng.normal(0, 0.6, len(u)).astype(np.float32)
        ratings[lo : lo + len(u)] = 3.5 + user_b[u] + item_b[i] + dot + noise
    ratings = np.clip(np.round(ratings * 2) / 2, 0.5, 5.0).astype(np.float32)
    return Ratings(
        users=users.astype(np.int64),
        items=items.astype(np.int64),
        ratings=ratings,
        n_users=n_users,
        n_items=n_items,
        rating_min=0.5,
        rating_max=5.0,
        source=f"synthetic({n_ratings}, {n_users} users, {n_items} movies, seed {seed})",
    )


# the baseline: the loop a practitioner writes


class EpochPermutation(Sampler[int]):
    """``RandomSampler`` without replacement, drawing exactly one permutation per epoch."""

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n = n
        self.generator = generator

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


def baseline_train(
    model: MiniNet, train_part: Part, valid_part: Part, config: TrainConfig, seed: int
) -> list[float]:
    """TensorDataset + DataLoader + Adam defaults; the validation MSE after every epoch."""
    seed_everything(seed)
    loader = DataLoader(
        TensorDataset(train_part.users, train_part.items, train_part.ratings),
        batch_size=config.batch_size,
        sampler=EpochPermutation(len(train_part), torch.Generator().manual_seed(seed)),
        generator=torch.Generator(),
    )
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    val_mse = []
    for _ in range(config.epochs):
        model.train()
        for users, items, ratings in loader:
            loss = F.mse_loss(model(users, items), ratings)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        model.eval()
        with torch.no_grad():
            pred = model(valid_part.users, valid_part.items)
            val_mse.append(float(((pred - valid_part.ratings).double() ** 2).mean()))
    return val_mse


def minnet_train(sparse: bool) -> Callable[[MiniNet, Part, Part, TrainConfig, int], list[float]]:
    def run(model: MiniNet, train_part: Part, valid_part: Part, config: TrainConfig, seed: int):
        config = dataclasses.replace(config, sparse=sparse)
        return train(model, train_part, valid_part, config, seed).val_mse_per_epoch

    return run


# the benchmark


@dataclass
class Runs:
    name: str
    sparse: bool
    fit: Callable[[MiniNet, Part, Part, TrainConfig, int], list[float]]
    seconds: list[float]  # wall clock per epoch
    cpu_seconds: list[float]  # this process's CPU time per epoch: less hurt by other load
    val_mse: list[list[float]]


def load(path: Path, synthetic_size: int) -> Ratings:
    if path.is_file():
        return load_ratings(path)
    print(f"{path} not found: using synthetic ratings", file=sys.stderr)
    return synthetic_ratings(synthetic_size, n_users=671, n_items=9066)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    python = platform.python_version()
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {python}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="ratings.csv or u.data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every loop")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-sparse", action="store_true", help="skip minnet's sparse mode")
    parser.add_argument(
        "--threads-study",
        action="store_true",
        help="instead: trials per hour with 1 or 2 worker processes of 1 or 2 torch threads",
    )
    parser.add_argument("--trial", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.trial:
        one_trial(args)
    elif args.threads_study:
        threads_study(args)
    else:
        compare_loops(args)


def lesson_parts(path: Path) -> tuple[Ratings, Part, Part]:
    data = load(path, synthetic_size=100_004)
    split = make_split(len(data), seed=42, valid_fraction=0.2)
    return data, Part.of(data, split.train), Part.of(data, split.valid)


def one_trial(args: argparse.Namespace) -> None:
    """Train minnet once (a study trial) and print its seconds per epoch."""
    data, train_part, valid_part = lesson_parts(args.data)
    config = TrainConfig(epochs=args.epochs, torch_threads=args.threads)
    torch.manual_seed(0)
    model = MiniNet(data.n_users, data.n_items, data.rating_range)
    result = train(model, train_part, valid_part, config, args.seed)
    print(result.seconds / args.epochs)


def threads_study(args: argparse.Namespace) -> None:
    """Trials per hour for each layout of worker processes and torch threads."""
    print(f"machine: {machine()}")
    print(f"each trial: the lesson config, {args.epochs} epochs; {args.repeats} rounds\n")
    print("| worker processes | torch threads each | s/epoch per trial | trials per hour |")
    print("|---:|---:|---:|---:|")
    for workers, threads in ((1, 1), (1, 2), (2, 1), (2, 2)):
        command = [sys.executable, __file__, "--trial", "--threads", str(threads)]
        command += ["--epochs", str(args.epochs), "--data", str(args.data)]
        per_epoch, wall = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            procs = [
                subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
                for _ in range(workers)
            ]
            outs = [p.communicate()[0] for p in procs]
            wall.append(time.perf_counter() - started)
            per_epoch += [float(out.strip().splitlines()[-1]) for out in outs]
        # Throughput from training time alone: start-up and data loading are paid once
        # per worker in a real study, not once per trial.
        seconds = statistics.median(per_epoch)
        print(
            f"| {workers} | {threads} | {seconds:.3f} | "
            f"{workers * 3600 / (seconds * args.epochs):,.0f} |",
            flush=True,
        )


def compare_loops(args: argparse.Namespace) -> None:
    """Time the baseline and minnet's loops alternately and compare what they learn."""
    torch.set_num_threads(args.threads)
    data, train_part, valid_part = lesson_parts(args.data)
    config = TrainConfig(epochs=args.epochs, torch_threads=args.threads)
    torch.manual_seed(0)
    initial = MiniNet(data.n_users, data.n_items, data.rating_range).state_dict()

    runs = [
        Runs("baseline (DataLoader + Adam)", False, baseline_train, [], [], []),
        Runs("minnet", False, minnet_train(False), [], [], []),
    ]
    if not args.no_sparse:
        runs.append(Runs("minnet sparse", True, minnet_train(True), [], [], []))

    print(f"machine: {machine()}; torch threads: {args.threads}")
    print(
        f"data: {data.source}: {len(train_part)} training, {len(valid_part)} validation rows; "
        f"batch {config.batch_size}, {args.epochs} epochs, lr {config.lr}, "
        f"weight decay {config.weight_decay}, seed {args.seed}"
    )

    # warm-up: one short untimed epoch each, so allocators and kernels are primed
    warm = Part(*(t[: 64 * 200] for t in (train_part.users, train_part.items, train_part.ratings)))
    for run in runs:
        model = MiniNet(data.n_users, data.n_items, data.rating_range, sparse=run.sparse)
        model.load_state_dict(initial)
        run.fit(model, warm, valid_part, TrainConfig(epochs=1, torch_threads=args.threads), 0)

    for repeat in range(args.repeats):
        for run in runs:
            model = MiniNet(data.n_users, data.n_items, data.rating_range, sparse=run.sparse)
            model.load_state_dict(initial)
            started, cpu_started = time.perf_counter(), time.process_time()
            val_mse = run.fit(model, train_part, valid_part, config, args.seed)
            run.cpu_seconds.append((time.process_time() - cpu_started) / args.epochs)
            run.seconds.append((time.perf_counter() - started) / args.epochs)
            run.val_mse.append(val_mse)
            print(
                f"  repeat {repeat + 1}: {run.name:30s} {run.seconds[-1]:6.3f} s/epoch "
                f"(CPU {run.cpu_seconds[-1]:.3f}), val MSE {val_mse[-1]:.5f}",
                flush=True,
            )

    base = statistics.median(runs[0].seconds)
    base_cpu = statistics.median(runs[0].cpu_seconds)
    print(f"\nmedians of {args.repeats} repeats; ratio = baseline time / loop time")
    header = ("loop", "s/epoch", "min", "ratings/s", "ratio", "CPU s", "CPU ratio", "val MSE")
    print("{:30s} {:>8s} {:>7s} {:>10s} {:>6s} {:>7s} {:>9s} {:>8s}".format(*header))
    for run in runs:
        median, cpu = statistics.median(run.seconds), statistics.median(run.cpu_seconds)
        print(
            f"{run.name:30s} {median:8.3f} {min(run.seconds):7.3f} "
            f"{len(train_part) / median:10.0f} {base / median:5.2f}x {cpu:7.3f} "
            f"{base_cpu / cpu:8.2f}x {run.val_mse[-1][-1]:8.5f}"
        )
    print()
    for run in runs:
        print(f"val MSE by epoch, {run.name}: " + " ".join(f"{v:.5f}" for v in run.val_mse[-1]))
    repeatable = all(v == run.val_mse[0] for run in runs[1:] for v in run.val_mse)
    gap = abs(runs[1].val_mse[-1][-1] - runs[0].val_mse[-1][-1])
    print(
        f"\nminnet vs baseline: {base / statistics.median(runs[1].seconds):.2f}x faster "
        f"(median of {args.repeats}), final val MSE differs by {gap:.6f} "
        f"({'within' if gap <= MSE_TOLERANCE else 'OUTSIDE'} {MSE_TOLERANCE}); "
        f"minnet repeats bit-identical: {repeatable}"
    )
    if len(runs) > 2:
        gap = runs[2].val_mse[-1][-1] - runs[1].val_mse[-1][-1]
        print(f"sparse vs dense minnet: final val MSE {gap:+.5f}")


if __name__ == "__main__":
    main()
