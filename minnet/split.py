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


COLD_POLICIES = ("keep", "train", "drop")


@dataclass(frozen=True)
class ColdRows:
    """Validation and test rows whose user or movie has no training row."""

    valid: int
    test: int
    policy: str

    def sentence(self) -> str:
        done = {"keep": "kept", "train": "moved to training", "drop": "dropped"}[self.policy]
        return (
            f"{self.valid} validation and {self.test} test rows involve a user or movie with no "
            f"training rows ({done}; [split] cold = keep | train | drop)"
        )


def handle_cold(
    split: Split, users: np.ndarray, items: np.ndarray, policy: str = "keep"
) -> tuple[Split, ColdRows]:
    """Count the held-out rows a model cannot have learned, and keep, move or drop them.

    Their embeddings never get a gradient, so they score the initial weights; moving them
    to training (``"train"``) or dropping them (``"drop"``) measures the rest alone.
    """
    if policy not in COLD_POLICIES:
        raise MinnetError(
            f"[split] cold is {policy!r}; expected one of {', '.join(COLD_POLICIES)}"
        )
    seen_users = np.zeros(int(users.max()) + 1, dtype=bool)
    seen_items = np.zeros(int(items.max()) + 1, dtype=bool)
    seen_users[users[split.train]] = True
    seen_items[items[split.train]] = True

    def cold(rows: np.ndarray) -> np.ndarray:  # (len(rows),) bool
        return ~(seen_users[users[rows]] & seen_items[items[rows]])

    cold_valid, cold_test = cold(split.valid), cold(split.test)
    counts = ColdRows(int(cold_valid.sum()), int(cold_test.sum()), policy)
    if policy == "keep" or not (counts.valid or counts.test):
        return split, counts
    valid, test = split.valid[~cold_valid], split.test[~cold_test]
    train = split.train
    if policy == "train":
        moved = np.concatenate([split.valid[cold_valid], split.test[cold_test]])
        train = np.sort(np.concatenate([split.train, moved]))
    return Split(train=train, valid=valid, test=test, seed=split.seed), counts
