"""Time and memory of synthetic generation and of loading a ratings.csv at scale.

Run as ``python tests/bench_data.py [--n-ratings 25000000]`` (pytest does not collect it).
Each step runs in a fresh Python process so its peak resident memory is its own:

1. generate ``n`` synthetic ratings in memory;
2. write them as a ml-25m-style ``ratings.csv`` in a temporary folder;
3. load that file with ``minnet.data.load_ratings`` (parse, validate, map ids).

Peak memory is the process's maximum resident set size, from which the baseline of a
process that only imported numpy, pandas and minnet is also shown.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1024 * 1024


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def step(name: str, n: int, folder: Path) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    from minnet import synthetic
    from minnet.data import load_ratings

    path = folder / "ml-25m" / "ratings.csv"
    start = time.perf_counter()
    out: dict[str, float] = {}
    if name == "generate":
        sample = synthetic.generate(n_ratings=n, seed=0)
        out["noise_mse"] = sample.noise_mse
        out["bytes"] = sample.users.nbytes + sample.items.nbytes + sample.ratings.nbytes
    elif name == "write":
        sample = synthetic.generate(n_ratings=n, seed=0)
        start = time.perf_counter()
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(
            {
                "userId": sample.users + 1,
                "movieId": sample.items + 1,
                "rating": pd.Categorical.from_codes(
                    np.round(sample.ratings * 2).astype(np.int8) - 1,
                    [f"{k / 2:g}" for k in range(1, 11)],
                ),
                "timestamp": 1_000_000_000 + np.arange(n, dtype=np.int64) % 500_000_000,
            }
        )
        frame.to_csv(path, index=False, chunksize=1_000_000)
        out["file_mb"] = path.stat().st_size / MB
    elif name == "load":
        data = load_ratings(path)
        out["bytes"] = data.users.nbytes + data.items.nbytes + data.ratings.nbytes
        out["n_users"], out["n_items"] = data.n_users, data.n_items
    out["seconds"] = time.perf_counter() - start
    out["peak_mb"] = peak_mb()
    return out


def run(name: str, n: int, folder: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--step", name, "--n-ratings", str(n), str(folder)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-ratings", type=int, default=25_000_000)
    parser.add_argument("--step", choices=["baseline", "generate", "write", "load"])
    parser.add_argument("folder", nargs="?", type=Path)
    args = parser.parse_args()

    if args.step:
        if args.step == "baseline":
            import minnet.data  # noqa: F401

            print(json.dumps({"peak_mb": peak_mb()}))
        else:
            print(json.dumps(step(args.step, args.n_ratings, args.folder)))
        return

    n = args.n_ratings
    with tempfile.TemporaryDirectory(prefix="minnet-bench-") as tmp:
        folder = Path(tmp)
        base = run("baseline", n, folder)["peak_mb"]
        gen = run("generate", n, folder)
        write = run("write", n, folder)
        load = run("load", n, folder)

    print(f"synthetic ratings: {n:,}   (process baseline after imports: {base:.0f} MB)")
    print(f"arrays held (users, items int64; ratings float32): {gen['bytes'] / MB:.0f} MB")
    print(f"generate   {gen['seconds']:7.1f} s   peak {gen['peak_mb']:6.0f} MB")
    print(f"write csv  {write['seconds']:7.1f} s   file {write['file_mb']:6.0f} MB")
    print(
        f"load csv   {load['seconds']:7.1f} s   peak {load['peak_mb']:6.0f} MB   "
        f"({load['n_users']:,.0f} users, {load['n_items']:,.0f} items)"
    )
    print(f"best achievable MSE (noise_mse): {gen['noise_mse']:.4f}")


if __name__ == "__main__":
    main()
