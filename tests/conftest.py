"""Shared fixtures: a small MovieLens-like release made inside the tests, and the real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(
    os.environ.get("MINNET_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data")
)


def write_ratings_csv(
    folder: Path, n_users: int = 60, n_items: int = 80, n: int = 2400, seed: int = 0
) -> Path:
    """A small ratings.csv with latent structure, half-star ratings and sparse ids."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, size=n * 2)
    items = rng.integers(0, n_items, size=n * 2)
    pairs = np.unique(np.stack([users, items], axis=1), axis=0)
    pairs = pairs[rng.permutation(len(pairs))[:n]]
    u_f, i_f = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    score = (u_f[pairs[:, 0]] * i_f[pairs[:, 1]]).sum(1) + rng.normal(scale=0.5, size=len(pairs))
    ratings = np.clip(np.round((3 + score) * 2) / 2, 0.5, 5.0)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ratings.csv"
    with path.open("w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        for (u, i), r in zip(pairs, ratings, strict=True):
            # Ids start at 1 and skip values, as real releases do.
            f.write(f"{u * 3 + 1},{i * 7 + 2},{r:g},{1000000 + u}\n")
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_ratings_csv(root / "tiny")
    return root


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "ml-latest-small-2016" / "ratings.csv").is_file():
        pytest.skip(f"real MovieLens data not found at {SHARED_DATA} (set MINNET_SHARED_DATA)")
    return SHARED_DATA
