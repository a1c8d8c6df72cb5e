"""Initial weights shared by every trial of a head shape.

For each head shape the weights are created once from the study's seed and saved under
``results/<study>/init/<hidden>.pt``. Embeddings are created first under that seed, so
they are identical across shapes. Every trial loads its shape's file strictly into a
fresh model, and records the digest of what it loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from minnet.errors import MinnetError
from minnet.model import MiniNet

log = logging.getLogger(__name__)

State = dict[str, torch.Tensor]


def hidden_key(hidden: Sequence[int]) -> str:
    """The name of a head shape: ``[50, 25]`` is ``"50-25"``."""
    return "-".join(str(int(w)) for w in hidden)


def head_label(key: str) -> str:
    """A head shape stored as ``"50-25"`` written the way the lesson does: ``[50, 25]``."""
    return "[" + ", ".join(str(key).split("-")) + "]"


def parse_hidden(key: str) -> tuple[int, ...]:
    return tuple(int(w) for w in key.split("-"))


def state_sha256(state: State) -> str:
    """Digest of a state dict's names, dtypes, shapes and values, independent of file format."""
    h = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        h.update(tensor.numpy().tobytes())
    return h.hexdigest()


def create_state(make_model: MiniNetFactory, hidden: Sequence[int], seed: int) -> State:
    """Weights of a fresh model of this head shape, drawn under ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = make_model(tuple(hidden), 0.5, False)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def load_state(model: MiniNet, state: State) -> str:
    """Load ``state`` strictly into ``model``; return the digest of what was loaded.

    A learnable padding is the only parameter not in the initial weights: its start value
    is a hyperparameter, so it is kept from the model.
    """
    full = dict(state)
    if model.learnable_padding:
        full["padding"] = model.padding.detach().clone()
    try:
        model.load_state_dict(full, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise MinnetError(
            f"initial weights do not fit this model ({first[-1].strip() if first else exc}); "
            "the study's data or model settings changed: start a new study"
        ) from None
    return state_sha256(state)


def save_state(state: State, path: Path) -> None:
    """Write atomically, so a crash never leaves a truncated weights file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_state(path: Path) -> State:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MinnetError(
            f"{path}: cannot read initial weights ({exc}); delete it to recreate it"
        ) from None
    return dict(state)


def prepare(
    folder: Path,
    make_model: MiniNetFactory,
    shapes: Sequence[Sequence[int]],
    seed: int,
    expected: dict[str, str] | None = None,
) -> dict[str, State]:
    """The initial weights of every shape: read from ``folder``, or created and saved there.

    ``expected`` maps shape keys to digests recorded by an earlier run of the study; a file
    that no longer matches is an error, since trials would no longer share their start.
    """
    states: dict[str, State] = {}
    for hidden in shapes:
        key = hidden_key(hidden)
        path = folder / f"{key}.pt"
        fresh = create_state(make_model, hidden, seed)
        if path.exists():
            state = read_state(path)
        else:
            state = fresh
            save_state(state, path)
            log.info("created initial weights %s", path)
        digest = state_sha256(state)
        want = (expected or {}).get(key, state_sha256(fresh))
        if digest != want:
            raise MinnetError(
                f"{path}: initial weights differ from the ones this study started from "
                f"(sha256 {digest[:12]} != {want[:12]}); restore the file or start a new study"
            )
        states[key] = state
    return states


class MiniNetFactory:
    """Builds a MiniNet of the study's data and model settings for a given head."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        rating_range: tuple[float, float],
        n_factors: int,
        embedding_dropout: float,
        hidden_dropout: float,
    ) -> None:
        self.n_users, self.n_items, self.rating_range = n_users, n_items, rating_range
        self.n_factors = n_factors
        self.embedding_dropout, self.hidden_dropout = embedding_dropout, hidden_dropout

    def __call__(
        self, hidden: Sequence[int], padding: float, learnable: bool, sparse: bool = False
    ) -> MiniNet:
        return MiniNet(
            self.n_users,
            self.n_items,
            self.rating_range,
            n_factors=self.n_factors,
            hidden=hidden,
            embedding_dropout=self.embedding_dropout,
            hidden_dropout=self.hidden_dropout,
            padding=padding,
            learnable_padding=learnable,
            sparse=sparse,
        )
