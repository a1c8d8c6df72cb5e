"""The Mini Net of fast.ai Lesson 5, with a configurable head and padding.

    user, movie -> embeddings (n_factors each) -> concat -> dropout
        -> [Linear -> ReLU -> dropout] per hidden width -> Linear(., 1)
        -> sigmoid(x) * (max - min + 2k) + min - k

The padding ``k`` stretches the sigmoid beyond the rating range so that the extreme
ratings are reachable; the lesson uses ``k = 0.5``. With ``learnable_padding`` it is an
``nn.Parameter``, so it is in ``parameters()``, in the optimizer and in ``state_dict()``.
A fixed padding is a non-persistent buffer: it moves with ``.to()`` but is not part of
the initial weights, which every trial of a study shares whatever its padding.

``batch_gradients`` is the same network differentiated by hand. The training loop uses it
instead of autograd because at batch 64 the autograd graph costs more than the arithmetic;
``tests/test_model.py`` checks it against ``forward`` + ``backward``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from minnet.errors import MinnetError

PADDING_LIMIT = 10  # paddings beyond 10 rating spans only flatten the sigmoid into noise
EMBEDDING_INIT = 0.01  # the lesson draws embeddings from uniform(-0.01, 0.01)


@dataclass(frozen=True)
class BatchGradients:
    """Loss and gradients of one training batch, as ``backward()`` would leave them."""

    loss: torch.Tensor  # () mean squared error
    users: torch.Tensor  # (B, F) gradient of the user rows looked up, in batch order
    items: torch.Tensor  # (B, F) gradient of the item rows looked up
    head: list[torch.Tensor]  # one per head parameter, in head.parameters() order
    padding: torch.Tensor | None  # () when the padding is learnable


class MiniNet(nn.Module):
    padding: torch.Tensor

    def __init__(
        self,
        n_users: int,
        n_items: int,
        rating_range: tuple[float, float],
        n_factors: int = 50,
        hidden: Sequence[int] = (10,),
        embedding_dropout: float = 0.05,
        hidden_dropout: float = 0.5,
        padding: float = 0.5,
        learnable_padding: bool = False,
        sparse: bool = False,
    ) -> None:
        """Build the net; ``sparse=True`` gives the tables sparse gradients (SparseAdam)."""
        super().__init__()
        check_padding(padding, rating_range)
        if not hidden or any(int(w) <= 0 for w in hidden):
            raise MinnetError(
                f"hidden widths {list(hidden)} must be one or more positive integers"
            )
        self.rating_range = (float(rating_range[0]), float(rating_range[1]))
        self.hidden = tuple(int(w) for w in hidden)
        self.sparse = bool(sparse)

        # Embeddings are created and initialised before the head, so that under one seed
        # they come out the same whatever the head's shape.
        self.user_factors = nn.Embedding(n_users, n_factors, sparse=self.sparse)
        self.item_factors = nn.Embedding(n_items, n_factors, sparse=self.sparse)
        for table in (self.user_factors, self.item_factors):
            nn.init.uniform_(table.weight, -EMBEDDING_INIT, EMBEDDING_INIT)

        layers: list[nn.Module] = [nn.Dropout(embedding_dropout)]
        width = 2 * n_factors
        for out in self.hidden:
            layers += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(hidden_dropout)]
            width = out
        layers.append(nn.Linear(width, 1))
        self.head = nn.Sequential(*layers)

        value = torch.tensor(float(padding))
        if learnable_padding:
            self.padding = nn.Parameter(value)
        else:
            self.register_buffer("padding", value, persistent=False)

    @property
    def learnable_padding(self) -> bool:
        return isinstance(self.padding, nn.Parameter)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.user_factors(users), self.item_factors(items)], dim=1)  # (B, 2F)
        x = self.head(x).squeeze(1)  # (B,)
        scale, shift = self._output_affine()
        return torch.sigmoid(x) * scale + shift

    def batch_gradients(
        self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor
    ) -> BatchGradients:
        """MSE loss of one batch and its gradients, computed without autograd.

        Draws the dropout masks exactly as ``forward`` does in training mode (same calls,
        same order, same generator), so it consumes the random stream identically and
        agrees with ``forward`` + ``backward`` to rounding. Gradients are returned, not
        stored, so the caller decides how table gradients are kept (dense or sparse).
        """
        if not self.supports_batch_gradients():
            raise MinnetError(
                f"{type(self).__name__} overrides forward() or changed its head; "
                "train it with autograd (forward + backward) instead"
            )
        layers = list(self.head)
        linears = [m for m in layers if isinstance(m, nn.Linear)]
        dropouts = [m.p for m in layers if isinstance(m, nn.Dropout)]
        n_factors = self.user_factors.embedding_dim

        # forward, keeping what backward needs
        with torch.no_grad():
            x = torch.cat(
                [
                    self.user_factors.weight.index_select(0, users),
                    self.item_factors.weight.index_select(0, items),
                ],
                dim=1,
            )  # (B, 2F)
            inputs: list[torch.Tensor] = []  # input of each Linear, after dropout
            masks: list[torch.Tensor | None] = []
            pre: list[torch.Tensor] = []  # output of each Linear
            for j, linear in enumerate(linears):
                if j > 0:
                    x = torch.relu(pre[-1])
                mask = _dropout_mask(x, dropouts[j]) if self.training else None
                if mask is not None:
                    x = x * mask
                inputs.append(x)
                masks.append(mask)
                pre.append(torch.addmm(linear.bias, x, linear.weight.t()))  # (B, out)
            s = torch.sigmoid(pre[-1].squeeze(1))  # (B,)
            scale, shift = self._output_affine()
            error = s * scale + shift - ratings
            loss = error.square().mean()

            # backward: d loss / d pre-activation, then layer by layer to the embeddings
            d_padding = None
            if self.learnable_padding:
                d_padding = (error * (2.0 / len(ratings)) * (2.0 * s - 1.0)).sum()
            d_s = error * (2.0 * scale / len(ratings))  # (B,)
            d = (d_s * s * (1.0 - s)).unsqueeze(1)  # (B, 1)
            grads: list[torch.Tensor] = []
            for j in range(len(linears) - 1, -1, -1):
                grads += [d.sum(0), torch.mm(d.t(), inputs[j])]  # bias, weight
                d = torch.mm(d, linears[j].weight)  # (B, in)
                mask = masks[j]
                if mask is not None:
                    d = d * mask
                if j > 0:
                    d = d * (pre[j - 1] > 0)
            grads.reverse()  # weight, bias per layer, first layer first
        return BatchGradients(
            loss=loss,
            users=d[:, :n_factors],
            items=d[:, n_factors:],
            head=grads,
            padding=d_padding,
        )

    def supports_batch_gradients(self) -> bool:
        """Whether ``batch_gradients`` matches ``forward``: true unless changed or subclassed."""
        if type(self).forward is not MiniNet.forward:
            return False
        kinds = [type(m) for m in self.head]
        expected = [nn.Dropout] + [nn.Linear, nn.ReLU, nn.Dropout] * len(self.hidden) + [nn.Linear]
        return kinds == expected

    def _output_affine(self) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        low, high = self.rating_range
        # A fixed padding as a Python float saves three tensor ops per batch.
        k: torch.Tensor | float = self.padding if self.learnable_padding else self.padding.item()
        return high - low + 2 * k, low - k


def _dropout_mask(x: torch.Tensor, p: float) -> torch.Tensor | None:
    """The scaled mask ``nn.Dropout`` draws for ``x``; None when it draws nothing."""
    if p == 0.0:
        return None
    if p == 1.0:
        return torch.zeros_like(x)
    return torch.empty_like(x).bernoulli_(1.0 - p).div_(1.0 - p)


def check_padding(
    padding: float, rating_range: tuple[float, float], where: str = "padding"
) -> None:
    """Reject a padding that leaves the output range empty."""
    low, high = rating_range
    span = high - low
    if not math.isfinite(padding) or padding > PADDING_LIMIT * max(span, 1.0):
        raise MinnetError(
            f"{where} {padding:g} is not a sensible padding for ratings {low:g} to {high:g}; "
            f"use a value between {-span / 2 + 0.0:g} and {PADDING_LIMIT * max(span, 1.0):g}"
        )
    if high - low + 2 * padding <= 0:
        raise MinnetError(
            f"{where} {padding:g} makes the output range empty for ratings {low:g} to {high:g}; "
            f"use a padding above {-(high - low) / 2 + 0.0:g}"
        )
