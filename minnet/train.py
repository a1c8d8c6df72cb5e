"""The training loop: Adam over in-memory index tensors, deterministic on the CPU.

Each epoch draws one permutation from a generator seeded by the run's seed, gathers the
training rows in that order once, and walks through them in contiguous slices, so there
is no per-sample collation. The optimizer is ``Adam(fused=True)``: with coupled L2 weight
decay every embedding row changes at every step, and the fused kernel does that update
in one pass.

Where the time goes, and what the loop does about it (BENCHMARKS.md has the figures):

- The dense Adam update of both tables is the floor. Under coupled L2 the rows a batch
  does not touch are driven towards zero and end up subnormal, and x86 arithmetic on
  subnormal floats is slow; training flushes them to zero (``torch.set_flush_denormal``),
  which makes the update about 1.6x faster and changes nothing above 1e-38.
- Autograd's embedding backward allocates and zeroes a table-sized gradient every step;
  the loop keeps one gradient buffer per table and clears only the rows it wrote.
- At batch 64 the autograd graph costs more than the arithmetic, so after an audited
  first step the gradients come from ``MiniNet.batch_gradients``, the same net
  differentiated by hand, drawing the same dropout masks.

With ``MiniNet(sparse=True)`` and ``TrainConfig(sparse=True)`` the tables get sparse
gradients and a lazy Adam (``torch.optim.SparseAdam``): only the rows in the batch and
their moments change, so a step costs the same whatever the table size. The tables then
get no weight decay, because the decay gradient of an untouched row is not zero; the head
and padding keep dense fused Adam.

Weight decay does not apply to a learnable padding: decay would pull ``k`` towards 0,
biasing the very quantity the study measures, and ``k`` is a range, not a weight whose
size needs keeping in check.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from minnet import audit
from minnet.data import Ratings
from minnet.errors import MinnetError
from minnet.model import MiniNet, check_padding

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
    sparse: bool = False  # lazy Adam on sparse table gradients; needs MiniNet(sparse=True)
    # Torch threads for this run, restored afterwards; None leaves the caller's setting
    # (a study worker sets its own). One thread per trial and one worker per core gives
    # the most trials per hour: BENCHMARKS.md, "Threads".
    torch_threads: int | None = None

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size"):
            if int(getattr(self, key)) < 1:
                raise MinnetError(f"training {key} is {getattr(self, key)}; it must be at least 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise MinnetError(f"training lr is {self.lr}; it must be a positive number")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise MinnetError(f"training weight_decay is {self.weight_decay}; it must be >= 0")
        if self.padding_lr is not None and not (
            math.isfinite(self.padding_lr) and self.padding_lr > 0
        ):
            raise MinnetError(f"training padding_lr is {self.padding_lr}; it must be positive")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise MinnetError(
                f"training torch_threads is {self.torch_threads}; use a positive count, "
                "or None to keep torch's own setting"
            )


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


class SparseTablesAdam(torch.optim.Optimizer):
    """Lazy Adam (``SparseAdam``) for the embedding tables, fused Adam for the rest.

    One optimizer object over both, so that the audit, ``zero_grad`` and ``state_dict``
    see every parameter. The param groups and state are shared with the two inner
    optimizers, which do the work.
    """

    def __init__(
        self,
        tables: list[torch.Tensor],
        groups: list[dict[str, Any]],
        lr: float,
        weight_decay: float,
    ) -> None:
        self._tables = torch.optim.SparseAdam(tables, lr=lr)
        self._rest = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay, fused=True)
        super().__init__(self._tables.param_groups + self._rest.param_groups, {})
        self._link()

    def _link(self) -> None:
        n = len(self._tables.param_groups)
        self._tables.param_groups = self.param_groups[:n]
        self._rest.param_groups = self.param_groups[n:]
        self._tables.state = self._rest.state = self.state

    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]
        if closure is not None:
            raise MinnetError("SparseTablesAdam.step takes no closure; call backward first")
        self._tables.step()
        self._rest.step()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._link()


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch: dropout masks then repeat from run to run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(model: MiniNet, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam with coupled L2 on the weights, none on a learnable padding.

    A model with sparse tables (``MiniNet(sparse=True)``) gets ``SparseTablesAdam``: lazy
    Adam without weight decay for the tables, fused Adam for the head and padding.
    """
    tables = [model.user_factors.weight, model.item_factors.weight]
    skip = {id(model.padding)} | ({id(t) for t in tables} if model.sparse else set())
    groups: list[dict[str, Any]] = [
        {"params": [p for p in model.parameters() if id(p) not in skip]}
    ]
    if model.learnable_padding:
        groups.append(
            {
                "params": [model.padding],
                "weight_decay": 0.0,
                "lr": config.padding_lr if config.padding_lr is not None else config.lr,
            }
        )
    if model.sparse:
        return SparseTablesAdam(tables, groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay, fused=True)


@torch.inference_mode()
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
    if config.sparse != model.sparse:
        raise MinnetError(
            f"TrainConfig(sparse={config.sparse}) but the model was built with "
            f"MiniNet(sparse={model.sparse}); build both with the same setting"
        )
    seed_everything(seed)
    order = torch.Generator().manual_seed(seed)
    optimizer = optimizer or make_optimizer(model, config)
    audit.check_registered(model, optimizer)

    n, bs = len(train_part), config.batch_size
    steps = (n + bs - 1) // bs
    sizes = torch.full((steps,), float(bs), dtype=torch.float64)
    sizes[-1] = n - (steps - 1) * bs
    learnable = model.learnable_padding
    padding_start = model.padding.item()
    trace = torch.empty(config.epochs * steps if learnable else 0)
    val_mse: list[float] = []
    train_loss: list[float] = []
    stepper = _Stepper(model, optimizer)
    model.train()

    with _cpu_settings(config.torch_threads):
        for epoch in range(1, config.epochs + 1):
            perm = torch.randperm(n, generator=order)
            users, items, ratings = (
                train_part.users[perm],
                train_part.items[perm],
                train_part.ratings[perm],
            )
            losses = []
            for step in range(steps):
                batch = slice(step * bs, (step + 1) * bs)
                losses.append(stepper.step(users[batch], items[batch], ratings[batch]))
                if learnable:
                    trace[(epoch - 1) * steps + step] = model.padding.detach()

            epoch_loss = float((torch.stack(losses).double() * sizes).sum()) / n
            if not np.isfinite(epoch_loss):
                raise TrainingDiverged(
                    f"training loss became {epoch_loss} in epoch {epoch}; lower the learning "
                    "rate or check the padding"
                )
            train_loss.append(epoch_loss)
            val_mse.append(evaluate(model, valid_part))
            log.debug("epoch %d: train loss %.5f, valid MSE %.5f", epoch, epoch_loss, val_mse[-1])
            if on_epoch is not None:
                on_epoch(epoch, val_mse[-1])
    optimizer.zero_grad(set_to_none=True)  # frees the table-sized gradient buffers

    if learnable:
        audit.check_moved("padding", padding_start, model.padding.item())
        try:
            check_padding(model.padding.item(), model.rating_range, "learnable padding")
        except MinnetError as exc:
            raise TrainingDiverged(
                f"{exc} (it ran away in training: lower [training] padding_lr or lr)"
            ) from None
    return TrainResult(
        val_mse_per_epoch=val_mse,
        train_loss_per_epoch=train_loss,
        padding=model.padding.item(),
        padding_trace=trace.tolist(),
        seconds=time.perf_counter() - started,
    )


class _Stepper:
    """One optimisation step per call; the first one by autograd, audited."""

    def __init__(self, model: MiniNet, optimizer: torch.optim.Optimizer) -> None:
        self.model = model
        self.optimizer = optimizer
        self.by_hand = model.supports_batch_gradients()
        self.tables = (model.user_factors.weight, model.item_factors.weight)
        self.head = list(model.head.parameters())
        # Adam never writes into .grad, so a table's gradient buffer can be reused with
        # only the rows of the last batch cleared; any other optimizer gets fresh ones.
        self.reuse = not model.sparse and isinstance(optimizer, torch.optim.Adam)
        self.first = True

    def step(
        self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor
    ) -> torch.Tensor:
        if self.first or not self.by_hand:
            loss = F.mse_loss(self.model(users, items), ratings)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.first:
                audit.check_gradients(self.model)
                self.first = False
        else:
            loss = self._set_gradients(users, items, ratings)
        self.optimizer.step()

        if self.by_hand and self.reuse:
            for table, rows in zip(self.tables, (users, items), strict=True):
                table.grad.index_fill_(0, rows, 0.0)  # type: ignore[union-attr]
        return loss.detach()

    def _set_gradients(
        self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor
    ) -> torch.Tensor:
        grads = self.model.batch_gradients(users, items, ratings)
        for p, g in zip(self.head, grads.head, strict=True):
            p.grad = g
        if grads.padding is not None:
            self.model.padding.grad = grads.padding
        for table, rows, g in zip(
            self.tables, (users, items), (grads.users, grads.items), strict=True
        ):
            if self.model.sparse:
                table.grad = torch.sparse_coo_tensor(
                    rows.unsqueeze(0), g, table.shape, check_invariants=False
                )
            elif self.reuse and table.grad is not None:
                table.grad.index_add_(0, rows, g)
            else:
                table.grad = torch.zeros_like(table).index_add_(0, rows, g)
        return grads.loss


def _flushes_denormals() -> bool:
    """Whether this thread already flushes subnormal floats to zero."""
    return torch.tensor(1e-40, dtype=torch.float32).item() == 0.0


@contextmanager
def _cpu_settings(threads: int | None) -> Iterator[None]:
    """Set torch's thread count and flush subnormals for the block, then restore both."""
    prior_threads, prior_flush = torch.get_num_threads(), _flushes_denormals()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(prior_flush)
        if threads is not None:
            torch.set_num_threads(prior_threads)
