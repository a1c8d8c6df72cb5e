"""The lesson's numbers, on the real 2016 ml-latest-small release."""

from pathlib import Path

import numpy as np

from minnet.data import load_release
from minnet.runs import train_on_release
from minnet.split import make_split


def test_lesson_data_and_split(shared_data: Path) -> None:
    data = load_release("ml-latest-small-2016", shared_data)
    assert (len(data), data.n_users, data.n_items) == (100_004, 671, 9_066)
    assert data.rating_range == (0.5, 5.0)
    split = make_split(len(data), seed=42, valid_fraction=0.2)
    assert (len(split.train), len(split.valid)) == (80_004, 20_000)


def test_lesson_mini_net_reaches_the_lessons_error(shared_data: Path) -> None:
    result = train_on_release("ml-latest-small-2016", str(shared_data))

    per_epoch = result["val_mse_per_epoch"]
    assert len(per_epoch) == 6
    assert result["val_mse"] <= 0.795  # the lesson printed 0.78075
    assert per_epoch[1] < per_epoch[0]
    assert np.isfinite(result["train_loss_per_epoch"]).all()
