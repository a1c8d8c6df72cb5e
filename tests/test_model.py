from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from minnet.errors import MinnetError
from minnet.model import MiniNet


def _batch(n_users: int = 30, n_items: int = 40, size: int = 64) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(7)
    users = torch.randint(0, n_users, (size,), generator=g)
    items = torch.randint(0, n_items, (size,), generator=g)
    ratings = torch.randint(1, 11, (size,), generator=g).float() / 2
    return users, items, ratings


def _net(**kwargs: object) -> MiniNet:
    torch.manual_seed(0)
    model = MiniNet(30, 40, (0.5, 5.0), n_factors=6, **kwargs)  # type: ignore[arg-type]
    with torch.no_grad():  # larger weights than the lesson's init, so every path matters
        for p in model.parameters():
            p.uniform_(-0.5, 0.5)
    return model


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"hidden": (12, 5), "learnable_padding": True, "padding": 0.3},
        {"embedding_dropout": 0.0, "hidden_dropout": 0.0},
        {"hidden_dropout": 1.0},
    ],
)
def test_batch_gradients_match_autograd_and_draw_the_same_masks(kwargs: dict) -> None:
    model = _net(**kwargs)
    users, items, ratings = _batch()

    torch.manual_seed(3)
    loss = F.mse_loss(model(users, items), ratings)
    loss.backward()
    after_autograd = torch.get_rng_state()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}  # type: ignore[union-attr]

    torch.manual_seed(3)
    grads = model.batch_gradients(users, items, ratings)

    assert torch.equal(torch.get_rng_state(), after_autograd)
    torch.testing.assert_close(grads.loss, loss.detach())
    for table, rows, g in (
        ("user_factors.weight", users, grads.users),
        ("item_factors.weight", items, grads.items),
    ):
        dense = torch.zeros_like(expected[table]).index_add_(0, rows, g)
        torch.testing.assert_close(dense, expected[table])
    head_names = [f"head.{n}" for n, _ in model.head.named_parameters()]
    for name, g in zip(head_names, grads.head, strict=True):
        torch.testing.assert_close(g, expected[name])
    if model.learnable_padding:
        assert grads.padding is not None
        torch.testing.assert_close(grads.padding, expected["padding"])
    else:
        assert grads.padding is None


def test_batch_gradients_without_dropout_in_eval_mode() -> None:
    model = _net().eval()
    users, items, ratings = _batch()

    state = torch.get_rng_state()
    grads = model.batch_gradients(users, items, ratings)

    assert torch.equal(torch.get_rng_state(), state)
    expected = F.mse_loss(model(users, items), ratings)
    torch.testing.assert_close(grads.loss, expected)


def test_batch_gradients_refuse_a_net_whose_forward_is_overridden() -> None:
    class Shifted(MiniNet):
        def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
            return super().forward(users, items) + 0.1

    model = Shifted(30, 40, (0.5, 5.0))

    assert not model.supports_batch_gradients()
    with pytest.raises(MinnetError, match="autograd"):
        model.batch_gradients(*_batch())


def test_sparse_net_gives_its_tables_sparse_gradients_and_its_head_dense_ones() -> None:
    model = _net(sparse=True)
    users, items, ratings = _batch()

    F.mse_loss(model(users, items), ratings).backward()

    assert model.user_factors.weight.grad is not None
    assert model.user_factors.weight.grad.is_sparse
    assert model.item_factors.weight.grad is not None
    assert model.item_factors.weight.grad.is_sparse
    assert all(p.grad is not None and not p.grad.is_sparse for p in model.head.parameters())


def test_sparse_flag_does_not_change_the_initial_weights() -> None:
    torch.manual_seed(0)
    dense = MiniNet(30, 40, (0.5, 5.0)).state_dict()
    torch.manual_seed(0)
    sparse = MiniNet(30, 40, (0.5, 5.0), sparse=True).state_dict()

    assert dense.keys() == sparse.keys()
    assert all(torch.equal(dense[k], sparse[k]) for k in dense)
