"""Reproducible train / validation / test splits.

The lesson's split is ``numpy.random.seed(42); numpy.random.permutation(n)[:int(0.2 * n)]``
for validation. The legacy global generator and ``RandomState(seed)`` draw the same
permutation, so ``make_split(n, seed=42, valid_fraction=0.2)`` gives exactly the lesson's
validation rows. A test split, when asked for, is the next slice of the same permutation,
so adding one never changes which rows are validation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from minnet.errors import MinnetError


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # (N_train,) row indices, ascending
    valid: np.ndarray  # (N_valid,) row indices, in permutation order
    test: np.ndarray  # (N_test,) row indices, in permutation order
    seed: int

    def sha256(self) -> str:
        """Digest of which rows went where; equal digests mean equal splits."""
        h = hashlib.sha256()
        for part in (self.train, self.valid, self.test):
            h.update(len(part).to_bytes(8, "little"))
            h.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
        return h.hexdigest()


def make_split(
    n: int, seed: int = 42, valid_fraction: float = 0.2, test_fraction: float = 0.0
) -> Split:
    """Split ``n`` rows: validation first, then test, from one seeded permutation."""
    if not 0.0 < valid_fraction < 1.0:
        raise MinnetError(f"valid_fraction {valid_fraction} must be above 0 and below 1")
    if not 0.0 <= test_fraction < 1.0:
        raise MinnetError(f"test_fraction {test_fraction} must be in [0, 1)")
    if valid_fraction + test_fraction >= 1.0:
        raise MinnetError(
            f"valid_fraction + test_fraction is {valid_fraction + test_fraction:g}; "
            "it must be below 1 to leave rows for training"
        )

    perm = np.random.RandomState(seed).permutation(n)
    n_valid = int(valid_fraction * n)
    n_test = int(test_fraction * n)
    if n_valid == 0 or n - n_valid - n_test == 0:
        raise MinnetError(
            f"{n} ratings are too few to split into training, {valid_fraction:g} validation and "
            f"{test_fraction:g} test rows; use a larger ratings file"
        )
    valid = perm[:n_valid]
    test = perm[n_valid : n_valid + n_test]
    train = np.sort(perm[n_valid + n_test :])
    return Split(train=train, valid=valid, test=test, seed=seed)
