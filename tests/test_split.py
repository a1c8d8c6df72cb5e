import numpy as np
import pytest

from minnet.errors import MinnetError
from minnet.split import make_split


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
