"""The synthetic generator: sizes, scale, skew, determinism and its known best error."""

from __future__ import annotations

import numpy as np
import pytest

from minnet import synthetic
from minnet.errors import MinnetError
from minnet.synthetic import generate


def test_sample_has_the_asked_size_and_distinct_sorted_pairs() -> None:
    sample = generate(n_ratings=20_000, n_users=300, n_items=900, seed=1)

    keys = sample.users * sample.n_items + sample.items
    assert len(sample.ratings) == 20_000
    assert np.all(np.diff(keys) > 0)
    assert sample.users.max() == sample.n_users - 1 <= 299
    assert sample.items.max() == sample.n_items - 1 <= 899
    assert len(np.unique(sample.users)) == sample.n_users  # indices are contiguous


@pytest.mark.parametrize(
    ("scale", "levels"), [("half", np.arange(0.5, 5.01, 0.5)), ("whole", np.arange(1.0, 5.01))]
)
def test_ratings_lie_on_the_chosen_scale(scale: str, levels: np.ndarray) -> None:
    sample = generate(n_ratings=20_000, scale=scale, seed=2)

    assert set(np.unique(sample.ratings).tolist()) == set(levels.tolist())
    assert (sample.rating_min, sample.rating_max) == (levels[0], levels[-1])
    assert 3.0 < sample.ratings.mean() < 4.0  # MovieLens-like: mean about 3.5


def test_same_seed_same_sample_other_seed_other_sample() -> None:
    a, b, c = (generate(n_ratings=5_000, seed=s) for s in (7, 7, 8))

    assert np.array_equal(a.ratings, b.ratings) and np.array_equal(a.items, b.items)
    assert a.noise_mse == b.noise_mse
    assert not np.array_equal(a.items, c.items)


def test_activity_and_popularity_are_skewed() -> None:
    sample = generate(n_ratings=200_000, seed=0)

    for counts in (np.bincount(sample.users), np.bincount(sample.items)):
        top = np.sort(counts)[::-1][: len(counts) // 10]
        assert top.sum() > 0.3 * counts.sum()  # the busiest tenth holds far more than a tenth


def test_noise_mse_is_the_variance_left_by_a_perfect_predictor() -> None:
    levels = np.arange(0.5, 5.01, 0.5)
    scores = np.array([0.0, 1.3, 3.5, 4.9, 7.0])
    rng = np.random.default_rng(0)
    noisy = scores[:, None] + rng.normal(0.0, 0.8, (len(scores), 200_000))
    rounded = np.clip(np.floor((noisy - 0.5) / 0.5 + 0.5) * 0.5 + 0.5, 0.5, 5.0)

    exact = synthetic._rating_variance(scores, 0.8, levels)

    np.testing.assert_allclose(exact, rounded.var(axis=1), atol=0.01)


def test_noise_mse_tracks_the_noise() -> None:
    quiet, loud = (generate(n_ratings=20_000, noise=s, seed=0).noise_mse for s in (0.0, 1.0))

    assert quiet == 0.0
    assert 0.7 < loud < 1.0 + 0.5**2 / 12  # rounding adds, clipping at 0.5 and 5 removes


def test_too_dense_a_request_is_refused() -> None:
    with pytest.raises(MinnetError, match=r"n_ratings 60 is more than half of all 10 x 10"):
        generate(n_ratings=60, n_users=10, n_items=10)


def test_default_sizes_follow_movielens_proportions() -> None:
    assert synthetic.default_users(25_000_000) == 166_666
    assert 55_000 < synthetic.default_items(25_000_000) < 65_000
    assert synthetic.default_users(10) == 10
