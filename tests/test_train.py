from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from minnet.errors import AuditError, MinnetError
from minnet.model import MiniNet
from minnet.train import (
    Part,
    SparseTablesAdam,
    TrainConfig,
    TrainingDiverged,
    make_optimizer,
    train,
)

N_USERS, N_ITEMS = 60, 90


def _parts(n: int = 3000, seed: int = 0) -> tuple[Part, Part]:
    """Ratings from 3 latent factors with skewed popularity, split 80/20."""
    rng = np.random.default_rng(seed)
    users = rng.choice(N_USERS, n, p=_zipf(N_USERS))
    items = rng.choice(N_ITEMS, n, p=_zipf(N_ITEMS))
    user_f, item_f = rng.normal(0, 0.7, (N_USERS, 3)), rng.normal(0, 0.7, (N_ITEMS, 3))
    raw = 3.0 + (user_f[users] * item_f[items]).sum(1) + rng.normal(0, 0.3, n)
    ratings = np.clip(np.round(raw * 2) / 2, 0.5, 5.0)
    cut = int(0.8 * n)
    parts = [
        Part(
            torch.from_numpy(users[rows]),
            torch.from_numpy(items[rows]),
            torch.from_numpy(ratings[rows].astype(np.float32)),
        )
        for rows in (slice(0, cut), slice(cut, n))
    ]
    return parts[0], parts[1]


def _zipf(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1)
    return w / w.sum()


def _net(**kwargs: object) -> MiniNet:
    torch.manual_seed(0)
    return MiniNet(N_USERS, N_ITEMS, (0.5, 5.0), n_factors=8, **kwargs)  # type: ignore[arg-type]


CONFIG = TrainConfig(epochs=3, lr=1e-2)


class AutogradNet(MiniNet):
    """The same net, but trained through autograd: forward is overridden."""

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return super().forward(users, items)


def test_training_twice_from_the_same_start_is_bit_identical() -> None:
    train_part, valid_part = _parts()
    first, second = _net(), _net()

    a = train(first, train_part, valid_part, CONFIG, seed=5)
    b = train(second, train_part, valid_part, CONFIG, seed=5)

    assert a.val_mse_per_epoch == b.val_mse_per_epoch
    assert a.train_loss_per_epoch == b.train_loss_per_epoch
    assert all(
        torch.equal(x, y)
        for x, y in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )


def test_a_different_seed_gives_a_different_run() -> None:
    train_part, valid_part = _parts()

    a = train(_net(), train_part, valid_part, CONFIG, seed=5)
    b = train(_net(), train_part, valid_part, CONFIG, seed=6)

    assert a.val_mse_per_epoch != b.val_mse_per_epoch


@pytest.mark.parametrize("learnable", [False, True])
def test_hand_gradients_learn_what_autograd_learns(learnable: bool) -> None:
    train_part, valid_part = _parts()
    fast = _net(learnable_padding=learnable)
    torch.manual_seed(0)
    slow = AutogradNet(N_USERS, N_ITEMS, (0.5, 5.0), n_factors=8, learnable_padding=learnable)
    assert not slow.supports_batch_gradients()

    a = train(fast, train_part, valid_part, CONFIG, seed=5)
    b = train(slow, train_part, valid_part, CONFIG, seed=5)

    np.testing.assert_allclose(a.val_mse_per_epoch, b.val_mse_per_epoch, rtol=1e-4)
    np.testing.assert_allclose(a.padding_trace, b.padding_trace, rtol=1e-4)


def test_a_plain_optimizer_gets_fresh_table_gradients_and_learns_the_same() -> None:
    train_part, valid_part = _parts()
    fast, slow = _net(), AutogradNet(N_USERS, N_ITEMS, (0.5, 5.0), n_factors=8)
    slow.load_state_dict(fast.state_dict())

    a = train(
        fast,
        train_part,
        valid_part,
        CONFIG,
        5,
        optimizer=torch.optim.SGD(fast.parameters(), lr=0.1, weight_decay=1e-3),
    )
    b = train(
        slow,
        train_part,
        valid_part,
        CONFIG,
        5,
        optimizer=torch.optim.SGD(slow.parameters(), lr=0.1, weight_decay=1e-3),
    )

    np.testing.assert_allclose(a.val_mse_per_epoch, b.val_mse_per_epoch, rtol=1e-4)


def test_sparse_mode_trains_and_lands_close_to_dense() -> None:
    train_part, valid_part = _parts()
    config = TrainConfig(epochs=4, lr=1e-2)
    mean_only = float(((valid_part.ratings - train_part.ratings.mean()) ** 2).mean())

    dense = train(_net(), train_part, valid_part, config, seed=5)
    sparse_net = _net(sparse=True)
    sparse = train(
        sparse_net, train_part, valid_part, TrainConfig(epochs=4, lr=1e-2, sparse=True), seed=5
    )

    assert isinstance(make_optimizer(sparse_net, config), SparseTablesAdam)
    assert all(math.isfinite(v) for v in sparse.val_mse_per_epoch)
    assert sparse.val_mse < mean_only
    assert abs(sparse.val_mse - dense.val_mse) < 0.1 * dense.val_mse


def test_sparse_mode_is_bit_identical_when_repeated() -> None:
    train_part, valid_part = _parts()
    config = TrainConfig(epochs=2, sparse=True)

    a = train(_net(sparse=True), train_part, valid_part, config, seed=5)
    b = train(_net(sparse=True), train_part, valid_part, config, seed=5)

    assert a.val_mse_per_epoch == b.val_mse_per_epoch


def test_sparse_config_needs_a_sparse_net() -> None:
    train_part, valid_part = _parts()

    with pytest.raises(MinnetError, match="sparse"):
        train(_net(), train_part, valid_part, TrainConfig(sparse=True), seed=5)


def test_sparse_optimizer_state_round_trips() -> None:
    train_part, valid_part = _parts(n=500)
    model = _net(sparse=True)
    optimizer = make_optimizer(model, TrainConfig(sparse=True))
    train(model, train_part, valid_part, TrainConfig(epochs=1, sparse=True), 5, None, optimizer)
    saved = optimizer.state_dict()

    restored = make_optimizer(model, TrainConfig(sparse=True))
    restored.load_state_dict(saved)

    assert restored.state_dict()["state"].keys() == saved["state"].keys()
    table = model.item_factors.weight
    assert torch.equal(restored.state[table]["exp_avg"], optimizer.state[table]["exp_avg"])


def test_an_unregistered_padding_that_requires_grad_fails_the_audit() -> None:
    class LoosePadding(MiniNet):
        def __init__(self) -> None:
            super().__init__(N_USERS, N_ITEMS, (0.5, 5.0), n_factors=8)
            del self.padding
            self.padding = torch.tensor(0.5, requires_grad=True)

    train_part, valid_part = _parts(n=500)

    with pytest.raises(AuditError, match="'padding'"):
        train(LoosePadding(), train_part, valid_part, CONFIG, seed=5)


def test_a_parameter_left_out_of_the_optimizer_fails_the_audit() -> None:
    model = _net()
    optimizer = torch.optim.Adam(p for n, p in model.named_parameters() if n != "head.4.bias")
    train_part, valid_part = _parts(n=500)

    with pytest.raises(AuditError, match="head.4.bias"):
        train(model, train_part, valid_part, CONFIG, 5, optimizer=optimizer)


def test_an_absurd_learning_rate_diverges() -> None:
    train_part, valid_part = _parts(n=500)

    with pytest.raises(TrainingDiverged, match="epoch 1"):
        train(_net(), train_part, valid_part, TrainConfig(epochs=2, lr=1e30), seed=5)


def test_learnable_padding_moves_is_traced_and_is_not_decayed() -> None:
    train_part, valid_part = _parts()
    model = _net(learnable_padding=True)
    config = TrainConfig(epochs=2, lr=1e-2, weight_decay=1e-2, padding_lr=5e-2)

    result = train(model, train_part, valid_part, config, seed=5)

    steps = math.ceil(len(train_part) / config.batch_size)
    assert len(result.padding_trace) == config.epochs * steps
    assert result.padding_trace[-1] == result.padding != 0.5
    groups = make_optimizer(model, config).param_groups
    (padding_group,) = [g for g in groups if any(p is model.padding for p in g["params"])]
    assert padding_group["params"] == [model.padding]
    assert padding_group["weight_decay"] == 0.0
    assert padding_group["lr"] == 5e-2
    assert all(g["weight_decay"] == 1e-2 for g in groups if g is not padding_group)


def test_training_restores_thread_count_and_subnormal_handling() -> None:
    train_part, valid_part = _parts(n=500)
    threads = torch.get_num_threads()

    train(_net(), train_part, valid_part, TrainConfig(epochs=1, torch_threads=1), seed=5)

    assert torch.get_num_threads() == threads
    assert torch.tensor(1e-40, dtype=torch.float32).item() != 0.0


def test_config_rejects_a_thread_count_below_one() -> None:
    with pytest.raises(MinnetError, match="torch_threads"):
        TrainConfig(torch_threads=0)
