"""The training loop: Adam over in-memory index tensors, deterministic on the CPU.

Each epoch draws one permutation from a generator seeded by the run's seed, gathers the
training rows in that order once, and walks through them in contiguous slices, so there
is no per-sample collation. The optimizer is ``Adam(fused=True)``: with coupled L2 weight
decay every embedding row changes at every step, and the fused kernel does that update
in one pass.

Weight decay does not apply to a learnable padding: decay would pull ``k`` towards 0,
biasing the very quantity the study measures, and ``k`` is a range, not a weight whose
size needs keeping in check.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from minnet import audit
from minnet.data import Ratings
from minnet.errors import MinnetError
from minnet.model import MiniNet

log = logging.getLogger(__name__)

EVAL_BATCH = 65536


class TrainingDiverged(MinnetError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    padding_lr: float | None = None  # None: the same as lr

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size"):
            if int(getattr(self, key)) < 1:
                raise MinnetError(f"training {key} is {getattr(self, key)}; it must be at least 1")
        if not self.lr > 0:
            raise MinnetError(f"training lr is {self.lr}; it must be positive")
        if self.weight_decay < 0:
            raise MinnetError(f"training weight_decay is {self.weight_decay}; it must be >= 0")


@dataclass(frozen=True)
class Part:
    """The rows of one split part as tensors."""

    users: torch.Tensor  # (N,) int64
    items: torch.Tensor  # (N,) int64
    ratings: torch.Tensor  # (N,) float32

    @classmethod
    def of(cls, data: Ratings, rows: np.ndarray) -> Part:
        return cls(
            torch.from_numpy(data.users[rows]),
            torch.from_numpy(data.items[rows]),
            torch.from_numpy(data.ratings[rows]),
        )

    def __len__(self) -> int:
        return len(self.ratings)


@dataclass
class TrainResult:
    val_mse_per_epoch: list[float]
    train_loss_per_epoch: list[float]
    padding: float  # final value
    padding_trace: list[float] = field(default_factory=list)  # after every step, if learnable
    seconds: float = 0.0

    @property
    def val_mse(self) -> float:
        return self.val_mse_per_epoch[-1]


EpochCallback = Callable[[int, float], None]  # (epoch starting at 1, validation MSE)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch: dropout masks then repeat from run to run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(model: MiniNet, config: TrainConfig) -> torch.optim.Adam:
    weights = [p for n, p in model.named_parameters() if n != "padding"]
    groups: list[dict] = [{"params": weights}]
    if model.learnable_padding:
        groups.append({
            "params": [model.padding],
            "weight_decay": 0.0,
            "lr": config.padding_lr if config.padding_lr is not None else config.lr,
        })
    return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay, fused=True)


@torch.no_grad()
def evaluate(model: MiniNet, part: Part) -> float:
    """Mean squared error over a split part, in eval mode (no dropout)."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64)
    for i in range(0, len(part), EVAL_BATCH):
        pred = model(part.users[i : i + EVAL_BATCH], part.items[i : i + EVAL_BATCH])
        total += ((pred - part.ratings[i : i + EVAL_BATCH]).double() ** 2).sum()
    model.train(was_training)
    return float(total) / len(part)


def train(
    model: MiniNet,
    train_part: Part,
    valid_part: Part,
    config: TrainConfig,
    seed: int,
    on_epoch: EpochCallback | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> TrainResult:
    """Train ``model`` in place and return its validation MSE after every epoch.

    Seeds everything from ``seed`` first, so the same model, data and seed give
    bit-identical results. ``on_epoch`` may raise (Optuna's pruning does) to stop early.
    """
    started = time.perf_counter()
    seed_everything(seed)
    order = torch.Generator().manual_seed(seed)
    optimizer = optimizer or make_optimizer(model, config)
    audit.check_registered(model, optimizer)

    n, bs = len(train_part), config.batch_size
    steps = (n + bs - 1) // bs
    learnable = model.learnable_padding
    padding_start = model.padding.item()
    trace = torch.empty(config.epochs * steps if learnable else 0)
    val_mse: list[float] = []
    train_loss: list[float] = []
    model.train()

    for epoch in range(1, config.epochs + 1):
        perm = torch.randperm(n, generator=order)
        users, items, ratings = train_part.users[perm], train_part.items[perm], train_part.ratings[perm]
        total = torch.zeros(())
        for step in range(steps):
            batch = slice(step * bs, (step + 1) * bs)
            loss = F.mse_loss(model(users[batch], items[batch]), ratings[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if epoch == 1 and step == 0:
                audit.check_gradients(model)
            optimizer.step()
            total += loss.detach() * len(ratings[batch])
            if learnable:
                trace[(epoch - 1) * steps + step] = model.padding.detach()

        epoch_loss = float(total) / n
        if not np.isfinite(epoch_loss):
            raise TrainingDiverged(
                f"training loss became {epoch_loss} in epoch {epoch}; lower the learning rate "
                "or check the padding"
            )
        train_loss.append(epoch_loss)
        val_mse.append(evaluate(model, valid_part))
        log.debug("epoch %d: train loss %.5f, valid MSE %.5f", epoch, epoch_loss, val_mse[-1])
        if on_epoch is not None:
            on_epoch(epoch, val_mse[-1])

    if learnable:
        audit.check_moved("padding", padding_start, model.padding.item())
    return TrainResult(
        val_mse_per_epoch=val_mse,
        train_loss_per_epoch=train_loss,
        padding=model.padding.item(),
        padding_trace=trace.tolist(),
        seconds=time.perf_counter() - started,
    )
