"""MovieLens-like ratings drawn from a known model, at any size, with no download.

Each user and item has a bias and ``n_factors`` latent factors; the clean score of a
pair is ``mean + b_user + b_item + p_user . q_item``. The rating is that score plus
Gaussian noise of std ``noise``, rounded to the scale's step and clipped to its ends.
Who rates what is skewed as in MovieLens: user activity and item popularity are
log-normal, so a few users rate a lot and a few movies are rated by many.

Because the noise is known, so is the best any model can do: predicting the expected
rating of every pair gives the mean squared error returned as ``noise_mse``.

Usage: ``generate(n_ratings=1_000_000, seed=0)``, or ``[data] name = "synthetic"`` in a
spec, which ``minnet.data.load_dataset`` turns into the same call.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from minnet.errors import MinnetError

log = logging.getLogger(__name__)

SCALES = {"half": (0.5, 5.0, 0.5), "whole": (1.0, 5.0, 1.0)}
USER_ACTIVITY_SIGMA = 1.2  # log-normal spread of how many ratings a user gives
ITEM_POPULARITY_SIGMA = 1.8  # log-normal spread of how many ratings an item gets
USER_BIAS_STD = 0.35
ITEM_BIAS_STD = 0.45
INTERACTION_VAR = 0.3  # variance of p_user . q_item
MAX_DENSITY = 0.5
CHUNK_ROWS = 250_000  # keeps the (rows, levels) temporaries small


@dataclass(frozen=True)
class Sample:
    """Synthetic ratings, ids already contiguous, sorted by (user, item)."""

    users: np.ndarray  # (N,) int64
    items: np.ndarray  # (N,) int64
    ratings: np.ndarray  # (N,) float32
    n_users: int
    n_items: int
    rating_min: float
    rating_max: float
    noise_mse: float  # mean over rows of Var(rating | user, item): the best achievable MSE


def default_users(n_ratings: int) -> int:
    """About 150 ratings per user, as in ml-1m, ml-25m and ml-latest-small."""
    return max(10, n_ratings // 150)


def default_items(n_ratings: int) -> int:
    """Items grow like the square root of ratings: 3.8k at 100k, 60k at 25M."""
    return max(10, round(12 * math.sqrt(n_ratings)))


def generate(
    n_ratings: int,
    n_users: int | None = None,
    n_items: int | None = None,
    n_factors: int = 10,
    noise: float = 0.8,
    scale: str = "half",
    seed: int = 0,
) -> Sample:
    """Draw ``n_ratings`` distinct (user, item) ratings from the model above.

    Args:
        n_ratings: number of ratings, each a distinct (user, item) pair.
        n_users, n_items: sizes of the populations drawn from; users or items never
            drawn are left out, so the result may hold slightly fewer.
        n_factors: latent factors per user and item.
        noise: std of the Gaussian noise added before rounding.
        scale: ``"half"`` (0.5 to 5 in half stars) or ``"whole"`` (1 to 5).
        seed: seed of the only random generator used; equal seeds give equal samples.

    Returns:
        A :class:`Sample` whose ``noise_mse`` is the best achievable mean squared error.
    """
    n_users = n_users or default_users(n_ratings)
    n_items = n_items or default_items(n_ratings)
    if scale not in SCALES:
        raise MinnetError(f"[data] scale {scale!r} is unknown; expected 'half' or 'whole'")
    if n_ratings > MAX_DENSITY * n_users * n_items:
        raise MinnetError(
            f"[data] n_ratings {n_ratings} is more than half of all {n_users} x {n_items} "
            "(user, item) pairs; raise n_users or n_items"
        )
    low, high, step = SCALES[scale]
    rng = np.random.default_rng(seed)

    keys = _draw_pairs(rng, n_ratings, n_users, n_items)
    users, items = np.divmod(keys, n_items)
    del keys
    mean = (low + high) / 2 + 0.75
    user_bias = rng.normal(0.0, USER_BIAS_STD, n_users).astype(np.float32)
    item_bias = rng.normal(0.0, ITEM_BIAS_STD, n_items).astype(np.float32)
    factor_std = (INTERACTION_VAR / n_factors) ** 0.25
    p = rng.normal(0.0, factor_std, (n_users, n_factors)).astype(np.float32)
    q = rng.normal(0.0, factor_std, (n_items, n_factors)).astype(np.float32)

    ratings = np.empty(n_ratings, np.float32)
    total_var = 0.0
    levels = np.arange(low, high + step / 2, step)
    for start in range(0, n_ratings, CHUNK_ROWS):
        u, i = users[start : start + CHUNK_ROWS], items[start : start + CHUNK_ROWS]
        score = mean + user_bias[u] + item_bias[i] + np.einsum("nk,nk->n", p[u], q[i])  # (n,)
        noisy = score + rng.normal(0.0, noise, len(u))
        rounded = np.floor((noisy - low) / step + 0.5) * step + low
        ratings[start : start + len(u)] = np.clip(rounded, low, high)
        total_var += float(_rating_variance(score, noise, levels).sum())

    users, n_users = _compact(users, n_users)
    items, n_items = _compact(items, n_items)
    noise_mse = total_var / n_ratings
    log.info(
        "generated %d synthetic ratings: %d users, %d items, best achievable MSE %.4f",
        n_ratings, n_users, n_items, noise_mse,
    )  # fmt: skip
    return Sample(users, items, ratings, n_users, n_items, low, high, noise_mse)


def _draw_pairs(rng: np.random.Generator, n: int, n_users: int, n_items: int) -> np.ndarray:
    """``n`` distinct keys ``user * n_items + item``, sorted, drawn with skewed weights."""
    activity = rng.lognormal(0.0, USER_ACTIVITY_SIGMA, n_users)
    popularity = rng.lognormal(0.0, ITEM_POPULARITY_SIGMA, n_items)
    activity /= activity.sum()
    popularity /= popularity.sum()
    keys = np.empty(0, np.int64)
    for _ in range(100):
        missing = n - len(keys)
        if missing <= 0:
            break
        size = int(missing * 1.1) + 100
        parts = [keys]
        for start in range(0, size, CHUNK_ROWS):
            drawn = rng.choice(n_users, min(CHUNK_ROWS, size - start), p=activity)
            drawn *= n_items
            drawn += rng.choice(n_items, len(drawn), p=popularity)
            parts.append(drawn)
        keys = _sorted_unique(np.concatenate(parts))
        del parts
    else:
        raise MinnetError(
            f"[data] could not draw {n} distinct pairs from {n_users} users and {n_items} "
            "items; raise n_users or n_items"
        )
    if len(keys) > n:
        keep = np.ones(len(keys), bool)
        keep[rng.choice(len(keys), len(keys) - n, replace=False)] = False
        keys = keys[keep]
    return keys


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    keys.sort()  # numpy's hash-based unique is several times slower on 25M keys
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])]


def _rating_variance(score: np.ndarray, noise: float, levels: np.ndarray) -> np.ndarray:
    """Var(rating | score) for each row: the error left after predicting perfectly."""
    if noise == 0:
        return np.zeros(len(score))
    step = levels[1] - levels[0]
    cdf = ndtr(((levels[:-1] + step / 2)[None, :] - score[:, None]) / noise)  # (n, L-1)
    ones = np.ones((len(score), 1))
    probs = np.diff(np.hstack([0 * ones, cdf, ones]), axis=1)  # (n, L)
    expected = probs @ levels
    return np.maximum(probs @ levels**2 - expected**2, 0.0)


def _compact(ids: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Renumber ``ids`` (in place) to ``0..k-1`` over the ids that occur, keeping order."""
    present = np.zeros(n, bool)
    present[ids] = True
    index = np.cumsum(present) - 1
    np.take(index, ids, out=ids, mode="clip")  # in place: ids are 0..n-1 already
    return ids, int(present.sum())
