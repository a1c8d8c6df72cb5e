"""Read a MovieLens release into contiguous integer indices.

Two layouts are read, each by its documented column order:

- ``ratings.csv`` (ml-latest-small and later): comma-separated with the header
  ``userId,movieId,rating,timestamp``;
- ``u.data`` (ml-100k): tab-separated, no header: user, item, rating, timestamp.

Ids are mapped to indices from the *whole* ratings file, so every movie that appears
only in the validation or test rows still has an embedding row.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from minnet.errors import MinnetError

log = logging.getLogger(__name__)

DATA_DIR_ENV = "MINNET_DATA_DIR"
COLUMNS = ("user", "item", "rating", "timestamp")


@dataclass(frozen=True)
class Layout:
    filename: str
    sep: str
    header: tuple[str, ...] | None


LAYOUTS = (
    Layout("ratings.csv", ",", ("userId", "movieId", "rating", "timestamp")),
    Layout("u.data", "\t", None),
)


@dataclass(frozen=True)
class Ratings:
    """All ratings of one release, ids already mapped to ``0..n-1``."""

    users: np.ndarray  # (N,) int64 index into the user table
    items: np.ndarray  # (N,) int64 index into the item table
    ratings: np.ndarray  # (N,) float32
    n_users: int
    n_items: int
    rating_min: float
    rating_max: float
    source: str

    def __len__(self) -> int:
        return len(self.ratings)

    @property
    def rating_range(self) -> tuple[float, float]:
        return (self.rating_min, self.rating_max)

    def sha256(self) -> str:
        """Digest of the mapped ratings, so a study can tell its data changed."""
        h = hashlib.sha256()
        for a in (self.users, self.items, self.ratings):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: the argument, else ``$MINNET_DATA_DIR``, else ``data/``."""
    if data_dir is not None:
        return Path(data_dir)
    return Path(os.environ.get(DATA_DIR_ENV) or "data")


def find_release(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ratings file of the release called ``name`` under the data directory."""
    root = resolve_data_dir(data_dir)
    folder = root / name
    for layout in LAYOUTS:
        if (folder / layout.filename).is_file():
            return folder / layout.filename
    expected = " or ".join(layout.filename for layout in LAYOUTS)
    if not folder.is_dir():
        known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        hint = f" (found: {', '.join(known)})" if known else ""
        raise MinnetError(
            f"dataset '{name}' not found: no folder {folder}{hint}; put the unpacked release "
            f"there, or point --data-dir / ${DATA_DIR_ENV} at the folder that holds it"
        )
    raise MinnetError(f"{folder} holds no {expected}; it does not look like a MovieLens release")


def load_release(name: str, data_dir: str | os.PathLike[str] | None = None) -> Ratings:
    """Load the release called ``name`` (a folder under the data directory)."""
    return load_ratings(find_release(name, data_dir))


def load_ratings(path: str | os.PathLike[str]) -> Ratings:
    """Load a ``ratings.csv`` or ``u.data`` file; raise MinnetError naming the bad line."""
    path = Path(path)
    layout = next((lay for lay in LAYOUTS if lay.filename == path.name), None)
    if layout is None:
        names = ", ".join(lay.filename for lay in LAYOUTS)
        raise MinnetError(f"{path}: unknown ratings file name; expected one of {names}")
    if not path.is_file():
        raise MinnetError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MinnetError(f"{path}: file is empty; expected MovieLens ratings")

    frame = _read(path, layout)
    users, user_ids = pd.factorize(frame["user"], sort=True)
    items, item_ids = pd.factorize(frame["item"], sort=True)
    ratings = frame["rating"].to_numpy(np.float32)
    result = Ratings(
        users=users.astype(np.int64),
        items=items.astype(np.int64),
        ratings=ratings,
        n_users=len(user_ids),
        n_items=len(item_ids),
        rating_min=float(ratings.min()),
        rating_max=float(ratings.max()),
        source=str(path),
    )
    log.info(
        "loaded %s: %d ratings, %d users, %d items, ratings %g to %g",
        path, len(result), result.n_users, result.n_items, result.rating_min, result.rating_max,
    )
    return result


def _read(path: Path, layout: Layout) -> pd.DataFrame:
    dtypes = {"user": np.int64, "item": np.int64, "rating": np.float64, "timestamp": np.int64}
    try:
        frame = pd.read_csv(
            path,
            sep=layout.sep,
            header=0 if layout.header else None,
            names=list(COLUMNS),
            dtype=dtypes,
            engine="c",
            encoding="utf-8-sig",
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
        raise MinnetError(_diagnose(path, layout)) from None
    if frame.isna().to_numpy().any():
        raise MinnetError(_diagnose(path, layout))
    if layout.header:
        _check_header(path, layout)
    if frame.empty:
        raise MinnetError(f"{path}: no ratings after the header; expected at least one row")
    return frame


def _check_header(path: Path, layout: Layout) -> None:
    with path.open(encoding="utf-8-sig", newline="") as f:
        header = tuple(next(csv.reader(f, delimiter=layout.sep), []))
    if header != layout.header:
        raise MinnetError(
            f"{path}:1: header is {','.join(header)!r}; expected {','.join(layout.header or ())!r}"
        )


def _diagnose(path: Path, layout: Layout) -> str:
    """Find the first line pandas could not take and say what is wrong with it."""
    want = len(COLUMNS)
    sep_name = "tab" if layout.sep == "\t" else repr(layout.sep)
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        for number, fields in enumerate(csv.reader(f, delimiter=layout.sep), start=1):
            if number == 1 and layout.header:
                if tuple(fields) != layout.header:
                    return (
                        f"{path}:1: header is {layout.sep.join(fields)!r}; "
                        f"expected {layout.sep.join(layout.header)!r}"
                    )
                continue
            if len(fields) != want:
                return (
                    f"{path}:{number}: found {len(fields)} {sep_name}-separated fields, "
                    f"expected {want} ({', '.join(COLUMNS)})"
                )
            for name, value in zip(COLUMNS, fields, strict=True):
                problem = _field_problem(name, value)
                if problem:
                    return f"{path}:{number}: {name} {value!r} {problem}"
    return f"{path}: could not be read as {sep_name}-separated {', '.join(COLUMNS)}"


def _field_problem(name: str, value: str) -> str | None:
    if value.strip() == "":
        return "is empty; expected a number"
    try:
        number = float(value) if name == "rating" else int(value)
    except ValueError:
        kind = "a number" if name == "rating" else "an integer"
        return f"is not {kind}"
    if isinstance(number, float) and not math.isfinite(number):
        return "is not a finite number"
    return None
