"""One training run from a given start: what trials, final runs and `minnet train` share."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from minnet.data import Ratings
from minnet.initial import MiniNetFactory, State, create_state, load_state
from minnet.model import check_padding
from minnet.split import ColdRows, Split
from minnet.train import EpochCallback, Part, TrainConfig, TrainResult, evaluate, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """Data, split and model factory, built once and reused by every run."""

    data: Ratings
    split: Split
    train: Part
    valid: Part
    test: Part
    factory: MiniNetFactory
    cold: ColdRows | None = None

    @classmethod
    def build(
        cls,
        data: Ratings,
        split: Split,
        n_factors: int = 50,
        embedding_dropout: float = 0.05,
        hidden_dropout: float = 0.5,
        cold: ColdRows | None = None,
    ) -> Prepared:
        factory = MiniNetFactory(
            data.n_users,
            data.n_items,
            data.rating_range,
            n_factors,
            embedding_dropout,
            hidden_dropout,
        )
        return cls(
            data,
            split,
            Part.of(data, split.train),
            Part.of(data, split.valid),
            Part.of(data, split.test),
            factory,
            cold,
        )


@dataclass
class Run:
    result: TrainResult
    init_sha256: str
    test_mse: float | None


def run_once(
    prepared: Prepared,
    hidden: Sequence[int],
    padding: float,
    config: TrainConfig,
    seed: int,
    learnable: bool = False,
    init: State | None = None,
    on_epoch: EpochCallback | None = None,
) -> Run:
    """Train a fresh model from ``init`` (created from ``seed`` if not given).

    The model is fresh, its optimizer is fresh, and everything is seeded from ``seed``
    right before training: two calls with equal arguments give bit-identical results.
    """
    check_padding(padding, prepared.data.rating_range)
    if init is None:
        init = create_state(prepared.factory, hidden, seed)
    model = prepared.factory(tuple(hidden), padding, learnable, sparse=config.sparse)
    digest = load_state(model, init)
    result = train(model, prepared.train, prepared.valid, config, seed, on_epoch=on_epoch)
    test_mse = evaluate(model, prepared.test) if len(prepared.test) else None
    return Run(result=result, init_sha256=digest, test_mse=test_mse)


def library_versions() -> dict[str, str]:
    import platform

    import numpy
    import optuna
    import pandas

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "optuna": optuna.__version__,
    }


def train_on_release(
    dataset: str,
    data_dir: str | None = None,
    hidden: Sequence[int] = (10,),
    padding: float = 0.5,
    learnable: bool = False,
    config: TrainConfig | None = None,
    seed: int = 42,
    split_seed: int = 42,
    valid_fraction: float = 0.2,
    n_factors: int = 50,
) -> dict[str, Any]:
    """One run on a MovieLens release with the lesson's defaults; the result as plain data.

    >>> result = train_on_release("ml-latest-small-2016", "../shared/data")  # doctest: +SKIP
    >>> result["val_mse"]  # about 0.79 after 6 epochs                      # doctest: +SKIP
    """
    from minnet.data import DataConfig, load_dataset
    from minnet.split import make_split

    data = load_dataset(DataConfig(name=dataset), data_dir, fetch=True)
    split = make_split(len(data), split_seed, valid_fraction)
    prepared = Prepared.build(data, split, n_factors=n_factors)
    run = run_once(prepared, hidden, padding, config or TrainConfig(), seed, learnable=learnable)
    result = run.result
    return {
        "dataset": dataset,
        "hidden": list(hidden),
        "sparse": (config or TrainConfig()).sparse,
        "padding_initial": padding,
        "learnable_padding": learnable,
        "padding": result.padding,
        "val_mse": result.val_mse,
        "val_rmse": result.val_mse**0.5,
        "val_mse_per_epoch": result.val_mse_per_epoch,
        "train_loss_per_epoch": result.train_loss_per_epoch,
        "seconds": round(result.seconds, 3),
        "seed": seed,
        "split_sha256": split.sha256(),
        "init_sha256": run.init_sha256,
        "rows": {"train": len(split.train), "valid": len(split.valid)},
    }
