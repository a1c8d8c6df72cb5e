"""Read a MovieLens release, a generic ratings CSV or synthetic data into integer indices.

Three release layouts are read, each by its documented column order (see
``minnet.formats``):

- ``ratings.csv`` (ml-latest-small, ml-20m, ml-25m, ml-32m, ml-latest): comma-separated
  with the header ``userId,movieId,rating,timestamp``;
- ``ratings.dat`` (ml-1m, ml-10m): ``::``-separated, no header;
- ``u.data`` (ml-100k): tab-separated, no header: user, item, rating, timestamp.

The layout is detected from the file in the release folder; a generic CSV/TSV names its
columns in ``[data] columns``. Ids are mapped to indices from the *whole* ratings file, so
every movie that appears only in the validation or test rows still has an embedding row.
Every rating is checked against the release's scale and every (user, item) pair must be
unique; any problem is a one-line MinnetError naming the file and line.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from minnet import formats, synthetic
from minnet.errors import MinnetError
from minnet.fetch import ARCHIVES, fetch_release
from minnet.formats import LAYOUTS, Layout

log = logging.getLogger(__name__)

DATA_DIR_ENV = "MINNET_DATA_DIR"
SYNTHETIC = "synthetic"
FORMATS = ("auto", *LAYOUTS, "csv")
DUPLICATES = ("error", "keep_last")


@dataclass(frozen=True)
class Scale:
    """The ratings a release allows: ``low`` to ``high`` in steps of ``step``."""

    low: float
    high: float
    step: float | None = None  # None: any value in between

    def describe(self) -> str:
        if self.step == 0.5:
            return f"{self.low:g} to {self.high:g} in half stars"
        if self.step == 1.0:
            return f"{self.low:g} to {self.high:g} in whole stars"
        return f"{self.low:g} to {self.high:g}"


HALF_STARS = Scale(0.5, 5.0, 0.5)
WHOLE_STARS = Scale(1.0, 5.0, 1.0)
RELEASE_SCALES = {
    "ml-100k": WHOLE_STARS,
    "ml-1m": WHOLE_STARS,
    "ml-10m": HALF_STARS,
    "ml-10m100k": HALF_STARS,  # the folder inside ml-10m.zip
    "ml-20m": HALF_STARS,
    "ml-25m": HALF_STARS,
    "ml-32m": HALF_STARS,
    "ml-latest": HALF_STARS,
    "ml-latest-small": HALF_STARS,
}


@dataclass(frozen=True)
class Ratings:
    """All ratings of one dataset, ids already mapped to ``0..n-1``."""

    users: np.ndarray  # (N,) int64 index into the user table
    items: np.ndarray  # (N,) int64 index into the item table
    ratings: np.ndarray  # (N,) float32
    n_users: int
    n_items: int
    rating_min: float
    rating_max: float
    source: str
    noise_mse: float | None = None  # synthetic data: the best achievable MSE
    user_ids: np.ndarray | None = field(default=None, repr=False, compare=False)  # (n_users,)
    item_ids: np.ndarray | None = field(default=None, repr=False, compare=False)  # (n_items,)

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


@dataclass(frozen=True)
class DataConfig:
    """A dataset as a spec's ``[data]`` table describes it.

    ``name`` is a release folder under the data directory (``ml-latest-small``), or
    ``"synthetic"``. ``format`` picks the ratings file (default: detected from the
    folder); ``"csv"`` reads ``path`` (relative paths are under the data directory) with
    separator ``sep`` and takes the columns named in ``columns`` (user, item, rating,
    optional timestamp). ``duplicates = "keep_last"`` keeps the last of repeated (user,
    item) pairs instead of refusing the file. ``rating_scale = [min, max]`` overrides
    the release's scale. The remaining keys shape synthetic data (see
    ``minnet.synthetic.generate``).
    """

    name: str
    format: str = "auto"
    path: str | None = None
    sep: str = ","
    columns: Mapping[str, str] | None = field(default=None, hash=False)
    duplicates: str = "error"
    rating_scale: tuple[float, float] | None = None
    n_ratings: int = 100_000
    n_users: int | None = None
    n_items: int | None = None
    n_factors: int = 10
    noise: float = 0.8
    scale: str = "half"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rating_scale is not None:
            low, high = self.rating_scale
            object.__setattr__(self, "rating_scale", (float(low), float(high)))
        if self.columns is not None:
            object.__setattr__(self, "columns", dict(self.columns))
        _check_config(self)

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str = "data") -> DataConfig:
        """Build from a parsed TOML table; raise MinnetError naming ``[where] key``."""
        if not isinstance(table, Mapping):
            raise MinnetError(f"[{where}] must be a table, not {type(table).__name__}")
        known = [f.name for f in fields(cls)]
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"expected one of {known}"
                raise MinnetError(f"[{where}] key {key!r} is unknown; {hint}")
        if "name" not in table:
            raise MinnetError(
                f"[{where}] name is missing; set it to a release folder such as "
                f"'ml-latest-small', or to '{SYNTHETIC}'"
            )
        values = {key: _convert(key, value, where) for key, value in table.items()}
        try:
            return cls(**values)
        except MinnetError as e:
            raise MinnetError(str(e).replace("[data]", f"[{where}]", 1)) from None


_STR_KEYS = ("name", "format", "path", "sep", "duplicates", "scale")
_INT_KEYS = ("n_ratings", "n_users", "n_items", "n_factors", "seed")


def _convert(key: str, value: Any, where: str) -> Any:
    """Check the TOML type of one ``[data]`` value; return it in the field's type."""
    bad = f"[{where}] {key} = {value!r} is"
    if key in _STR_KEYS and not isinstance(value, str):
        raise MinnetError(f"{bad} not a string; quote it")
    if key in _INT_KEYS and (isinstance(value, bool) or not isinstance(value, int)):
        raise MinnetError(f"{bad} not an integer; write it without quotes or decimals")
    if key == "noise":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MinnetError(f"{bad} not a number; write it like 0.5")
        return float(value)
    if key == "rating_scale":
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            raise MinnetError(f"{bad} not two numbers; write it like [0.5, 5.0]")
        return (float(value[0]), float(value[1]))
    if key == "columns":
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise MinnetError(f"{bad} not a table of column names; write it like {{user = 'uid'}}")
        return dict(value)
    return value


def _check_config(c: DataConfig) -> None:
    """Value checks shared by ``DataConfig(...)`` and ``from_table``."""
    defaults = DataConfig.__dataclass_fields__
    if not c.name or not isinstance(c.name, str):
        raise MinnetError(f"[data] name {c.name!r} is empty; name a release or '{SYNTHETIC}'")
    if c.format not in FORMATS:
        raise MinnetError(f"[data] format {c.format!r} is unknown; expected one of {FORMATS}")
    if c.duplicates not in DUPLICATES:
        raise MinnetError(f"[data] duplicates {c.duplicates!r} is unknown; expected {DUPLICATES}")
    csv_keys = ("path", "sep", "columns")
    synthetic_keys = ("n_ratings", "n_users", "n_items", "n_factors", "noise", "scale", "seed")
    for key in (*csv_keys, *synthetic_keys):
        given = getattr(c, key) != defaults[key].default
        if given and key in csv_keys and c.format != "csv":
            raise MinnetError(f"[data] {key} only applies with format = 'csv'; remove it")
        if given and key in synthetic_keys and c.name != SYNTHETIC:
            raise MinnetError(f"[data] {key} only applies with name = '{SYNTHETIC}'; remove it")
    if c.name == SYNTHETIC:
        _check_synthetic(c)
    elif c.format == "csv":
        _check_csv(c)
    elif "/" in c.name or "\\" in c.name or c.name in (".", ".."):
        raise MinnetError(
            f"[data] name {c.name!r} is not a folder name; for a file use format = 'csv' and path"
        )
    if c.rating_scale is not None:
        low, high = c.rating_scale
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise MinnetError(f"[data] rating_scale {list(c.rating_scale)} must be [min, max]")


def _check_csv(c: DataConfig) -> None:
    if not c.path:
        raise MinnetError("[data] path is missing; format = 'csv' reads the file it names")
    if len(c.sep) != 1 or c.sep in '"\r\n':
        raise MinnetError(f"[data] sep {c.sep!r} must be one character such as ',' or '\\t'")
    columns = dict(c.columns or {})
    missing = [role for role in ("user", "item", "rating") if role not in columns]
    if missing:
        raise MinnetError(
            f"[data] columns lacks {', '.join(missing)}; map user, item, rating (and "
            "optionally timestamp) to the names in the file's header"
        )
    for role in columns:
        if role not in formats.ROLES:
            close = difflib.get_close_matches(role, formats.ROLES, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"expected {formats.ROLES}"
            raise MinnetError(f"[data] columns.{role} is unknown; {hint}")
    if len(set(columns.values())) != len(columns):
        raise MinnetError(f"[data] columns {columns} maps two roles to one column")


def _check_synthetic(c: DataConfig) -> None:
    if c.format != "auto":
        raise MinnetError(f"[data] format only applies to files; remove it for '{SYNTHETIC}'")
    for key in ("n_ratings", "n_users", "n_items", "n_factors"):
        value = getattr(c, key)
        if value is not None and value < 1:
            raise MinnetError(f"[data] {key} = {value} must be at least 1")
    if c.seed < 0:
        raise MinnetError(f"[data] seed = {c.seed} must be zero or positive")
    if not (math.isfinite(c.noise) and c.noise >= 0):
        raise MinnetError(f"[data] noise = {c.noise} must be a finite std, zero or more")
    if c.scale not in synthetic.SCALES:
        raise MinnetError(f"[data] scale {c.scale!r} is unknown; expected 'half' or 'whole'")


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: the argument, else ``$MINNET_DATA_DIR``, else ``data/``."""
    if data_dir is not None:
        return Path(data_dir)
    return Path(os.environ.get(DATA_DIR_ENV) or "data")


def find_release(
    name: str, data_dir: str | os.PathLike[str] | None = None, format: str = "auto"
) -> Path:
    """The ratings file of the release called ``name`` under the data directory."""
    root = resolve_data_dir(data_dir)
    folder = root / name
    if not folder.is_dir():
        known = (
            sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            if root.is_dir()
            else []
        )
        hint = f" (found: {', '.join(known)})" if known else ""
        fetchable = f", run `minnet data fetch {name}`" if name in ARCHIVES else ""
        raise MinnetError(
            f"dataset '{name}' not found: no folder {folder}{hint}; put the unpacked release "
            f"there{fetchable}, or point --data-dir / ${DATA_DIR_ENV} at the folder that holds it"
        )
    if format != "auto":
        if not (folder / format).is_file():
            raise MinnetError(f"{folder} holds no {format}; set [data] format to the file it has")
        return folder / format
    found = [folder / f for f in LAYOUTS if (folder / f).is_file()]
    if len(found) > 1:
        names = " and ".join(p.name for p in found)
        raise MinnetError(f"{folder} holds both {names}; set [data] format to the one to read")
    if not found:
        expected = " or ".join(LAYOUTS)
        raise MinnetError(
            f"{folder} holds no {expected}; it does not look like a MovieLens release"
        )
    return found[0]


def load_release(name: str, data_dir: str | os.PathLike[str] | None = None) -> Ratings:
    """Load the release called ``name`` (a folder under the data directory)."""
    return load_ratings(find_release(name, data_dir))


def load_dataset(
    config: DataConfig, data_dir: str | os.PathLike[str] | None = None, fetch: bool = False
) -> Ratings:
    """Load (or generate) the dataset ``config`` describes.

    Args:
        config: the ``[data]`` table.
        data_dir: the data directory; default ``$MINNET_DATA_DIR`` or ``data/``.
        fetch: download an official release that is not in the data directory yet.
    """
    if config.name == SYNTHETIC:
        return _generate(config)
    root = resolve_data_dir(data_dir)
    scale = Scale(*config.rating_scale) if config.rating_scale else None
    if config.format == "csv":
        path = root / str(config.path)
        if not path.is_file():
            raise MinnetError(
                f"[data] path {config.path!r}: no such file {path} (relative paths are under "
                f"the data directory {root})"
            )
        layout = formats.generic_layout(path, config.sep, dict(config.columns or {}))
        return _load(path, layout, scale, config.duplicates, origin=config.name)
    if fetch and not (root / config.name).exists() and config.name in ARCHIVES:
        fetch_release(config.name, root)
    path = find_release(config.name, root, config.format)
    return load_ratings(path, duplicates=config.duplicates, rating_scale=config.rating_scale)


def load_ratings(
    path: str | os.PathLike[str],
    duplicates: str = "error",
    rating_scale: tuple[float, float] | None = None,
) -> Ratings:
    """Load a ``ratings.csv``, ``ratings.dat`` or ``u.data`` file.

    The rating scale is the release's (told by the folder name, else by the layout)
    unless ``rating_scale`` gives one. Raise MinnetError naming the bad line.
    """
    path = Path(path)
    layout = LAYOUTS.get(path.name)
    if layout is None:
        raise MinnetError(
            f"{path}: unknown ratings file name; expected one of {', '.join(LAYOUTS)}, or "
            "read it with format = 'csv' and a columns mapping"
        )
    if not path.is_file():
        raise MinnetError(f"{path}: no such file")
    origin = path.parent.name or path.name
    if rating_scale is not None:
        scale = Scale(*rating_scale)
    else:
        scale = release_scale(origin, layout.format)
    return _load(path, layout, scale, duplicates, origin)


def release_scale(name: str, format: str) -> Scale:
    """The documented scale of release ``name``, else the widest one its layout allows."""
    key = name.lower()
    if key in RELEASE_SCALES:
        return RELEASE_SCALES[key]
    if key.startswith("ml-latest"):
        return HALF_STARS
    return WHOLE_STARS if format == "u.data" else HALF_STARS


def _load(
    path: Path, layout: Layout, scale: Scale | None, duplicates: str, origin: str
) -> Ratings:
    raw_users, raw_items, ratings = formats.read_columns(path, layout)
    if scale is not None:
        _check_scale(path, layout, ratings, scale, origin)
    users, user_ids = _factorize(raw_users)
    del raw_users
    items, item_ids = _factorize(raw_items)
    del raw_items
    keep = _check_duplicates(path, layout, users, items, len(item_ids), duplicates)
    if keep is not None:
        users, items, ratings = users[keep], items[keep], ratings[keep]

    result = Ratings(
        users=users,
        items=items,
        ratings=ratings,
        n_users=len(user_ids),
        n_items=len(item_ids),
        rating_min=float(ratings.min()),
        rating_max=float(ratings.max()),
        source=str(path),
        user_ids=user_ids,
        item_ids=item_ids,
    )
    log.info(
        "loaded %s: %d ratings, %d users, %d items, ratings %g to %g",
        path, len(result), result.n_users, result.n_items, result.rating_min, result.rating_max,
    )  # fmt: skip
    return result


def _factorize(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``0..k-1`` in the order of the sorted distinct ids, and those ids."""
    codes, uniques = pd.factorize(ids)
    order = np.argsort(uniques)
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    np.take(rank, codes, out=codes, mode="clip")  # in place: no second (N,) array
    return codes.astype(np.int64, copy=False), np.asarray(uniques[order], dtype=np.int64)


def _check_scale(
    path: Path, layout: Layout, ratings: np.ndarray, scale: Scale, origin: str
) -> None:
    bad = (ratings < scale.low) | (ratings > scale.high)
    off_step = np.zeros_like(bad)
    if scale.step:
        with np.errstate(over="ignore", invalid="ignore"):  # huge ratings are `bad` anyway
            steps = (ratings - scale.low) / scale.step
            off_step = np.abs(steps - np.round(steps)) > 1e-4
    if not (bad.any() or off_step.any()):
        return
    row = int(np.flatnonzero(bad | off_step)[0])
    line = formats.line_of_row(path, layout, row)
    value = f"{layout.label('rating')} {float(ratings[row]):g}"
    what = "is outside" if bad[row] else "is not a step of"
    raise MinnetError(
        f"{path}:{line}: {value} {what} the scale of {origin}, {scale.describe()}; fix the "
        "line, or set [data] rating_scale if the file uses another scale"
    )


def _check_duplicates(
    path: Path,
    layout: Layout,
    users: np.ndarray,
    items: np.ndarray,
    n_items: int,
    duplicates: str,
) -> np.ndarray | None:
    """Refuse repeated (user, item) pairs, or return the rows to keep (the last of each)."""
    keys = users * np.int64(n_items)
    keys += items
    if len(keys) < 2 or bool(np.all(keys[1:] > keys[:-1])):
        return None  # releases are sorted by user then item: no sort needed
    order = np.argsort(keys, kind="stable")
    same = keys[order[1:]] == keys[order[:-1]]
    n_repeats = int(np.count_nonzero(same))
    if n_repeats == 0:
        return None
    if duplicates == "keep_last":
        keep = np.ones(len(keys), bool)
        keep[order[:-1][same]] = False
        log.warning("%s: dropped %d repeated (user, item) pairs, kept the last", path, n_repeats)
        return keep
    row = int(order[1:][same].min())
    first = int(order[np.searchsorted(keys[order], keys[row])])
    line, first_line = (formats.line_of_row(path, layout, r) for r in (row, first))
    raise MinnetError(
        f"{path}:{line}: {n_repeats} repeated (user, item) pairs; the first repeats line "
        f"{first_line}; remove them, or set [data] duplicates = 'keep_last'"
    )


def _generate(config: DataConfig) -> Ratings:
    sample = synthetic.generate(
        n_ratings=config.n_ratings,
        n_users=config.n_users,
        n_items=config.n_items,
        n_factors=config.n_factors,
        noise=config.noise,
        scale=config.scale,
        seed=config.seed,
    )
    return Ratings(
        users=sample.users,
        items=sample.items,
        ratings=sample.ratings,
        n_users=sample.n_users,
        n_items=sample.n_items,
        rating_min=sample.rating_min,
        rating_max=sample.rating_max,
        source=(
            f"synthetic(n_ratings={config.n_ratings}, n_factors={config.n_factors}, "
            f"noise={config.noise:g}, scale={config.scale}, seed={config.seed})"
        ),
        noise_mse=sample.noise_mse,
    )
