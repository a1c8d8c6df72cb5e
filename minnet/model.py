"""The Mini Net of fast.ai Lesson 5, with a configurable head and padding.

    user, movie -> embeddings (n_factors each) -> concat -> dropout
        -> [Linear -> ReLU -> dropout] per hidden width -> Linear(., 1)
        -> sigmoid(x) * (max - min + 2k) + min - k

The padding ``k`` stretches the sigmoid beyond the rating range so that the extreme
ratings are reachable; the lesson uses ``k = 0.5``. With ``learnable_padding`` it is an
``nn.Parameter``, so it is in ``parameters()``, in the optimizer and in ``state_dict()``.
A fixed padding is a non-persistent buffer: it moves with ``.to()`` but is not part of
the initial weights, which every trial of a study shares whatever its padding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from minnet.errors import MinnetError

EMBEDDING_INIT = 0.01  # the lesson draws embeddings from uniform(-0.01, 0.01)


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
    ) -> None:
        super().__init__()
        check_padding(padding, rating_range)
        if not hidden or any(int(w) <= 0 for w in hidden):
            raise MinnetError(f"hidden widths {list(hidden)} must be one or more positive integers")
        self.rating_range = (float(rating_range[0]), float(rating_range[1]))
        self.hidden = tuple(int(w) for w in hidden)

        # Embeddings are created and initialised before the head, so that under one seed
        # they come out the same whatever the head's shape.
        self.user_factors = nn.Embedding(n_users, n_factors)
        self.item_factors = nn.Embedding(n_items, n_factors)
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
        low, high = self.rating_range
        k = self.padding
        return torch.sigmoid(x) * (high - low + 2 * k) + (low - k)


def check_padding(padding: float, rating_range: tuple[float, float], where: str = "padding") -> None:
    """Reject a padding that leaves the output range empty."""
    low, high = rating_range
    if high - low + 2 * padding <= 0:
        raise MinnetError(
            f"{where} {padding:g} makes the output range empty for ratings {low:g} to {high:g}; "
            f"use a padding above {-(high - low) / 2:g}"
        )
