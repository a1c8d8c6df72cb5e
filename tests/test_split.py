import numpy as np
import pytest

from minnet.errors import MinnetError
from minnet.split import Split, handle_cold, make_split


def test_lesson_split_matches_numpy_global_seed() -> None:
    n = 100_004
    np.random.seed(42)
    lesson_valid = np.random.permutation(n)[: int(0.2 * n)]

    split = make_split(n, seed=42, valid_fraction=0.2)

    np.testing.assert_array_equal(split.valid, lesson_valid)
    assert len(split.valid) == 20_000 and len(split.train) == 80_004 and len(split.test) == 0
    assert sorted(set(split.train) | set(split.valid)) == list(range(n))


def test_test_rows_come_after_validation_and_do_not_overlap() -> None:
    plain = make_split(1000, seed=3, valid_fraction=0.2)
    with_test = make_split(1000, seed=3, valid_fraction=0.2, test_fraction=0.1)

    np.testing.assert_array_equal(plain.valid, with_test.valid)
    parts = [set(with_test.train), set(with_test.valid), set(with_test.test)]
    assert [len(p) for p in parts] == [700, 200, 100]
    assert set.union(*parts) == set(range(1000))
    assert with_test.sha256() != plain.sha256()


def test_split_hash_depends_on_seed_only_through_rows() -> None:
    assert make_split(500, seed=1).sha256() == make_split(500, seed=1).sha256()
    assert make_split(500, seed=1).sha256() != make_split(500, seed=2).sha256()


@pytest.mark.parametrize(("valid", "test"), [(0.0, 0.1), (0.6, 0.4), (1.2, 0.0), (0.2, -0.1)])
def test_bad_fractions_are_rejected(valid: float, test: float) -> None:
    with pytest.raises(MinnetError, match="fraction"):
        make_split(100, valid_fraction=valid, test_fraction=test)


def cold_fixture() -> tuple[Split, np.ndarray, np.ndarray]:
    # rows 0-5 train; row 6 (user 9 unseen) and row 7 (seen) valid; row 8 (item 9 unseen) test
    users = np.array([0, 1, 2, 0, 1, 2, 9, 0, 1])
    items = np.array([0, 1, 2, 1, 2, 0, 0, 2, 9])
    split = Split(train=np.arange(6), valid=np.array([6, 7]), test=np.array([8]), seed=0)
    return split, users, items


@pytest.mark.parametrize(
    ("policy", "train", "valid", "test"),
    [
        ("keep", [0, 1, 2, 3, 4, 5], [6, 7], [8]),
        ("train", [0, 1, 2, 3, 4, 5, 6, 8], [7], []),
        ("drop", [0, 1, 2, 3, 4, 5], [7], []),
    ],
)
def test_cold_rows_are_counted_and_kept_moved_or_dropped(
    policy: str, train: list[int], valid: list[int], test: list[int]
) -> None:
    split, users, items = cold_fixture()
    result, counts = handle_cold(split, users, items, policy)

    assert (counts.valid, counts.test) == (1, 1)
    assert result.train.tolist() == train
    assert result.valid.tolist() == valid and result.test.tolist() == test
    assert "1 validation and 1 test rows involve a user or movie" in counts.sentence()


def test_unknown_cold_policy_is_refused() -> None:
    split, users, items = cold_fixture()
    with pytest.raises(MinnetError, match=r"\[split\] cold is 'move'"):
        handle_cold(split, users, items, "move")
