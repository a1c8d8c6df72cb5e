"""The MovieLens file layouts, and a strict, lean reader for their ratings (and titles).

Columns are taken by the release's documented order or, for a generic CSV/TSV, by the
names in its header; they are never guessed. The reader runs pandas' C parser in chunks
with explicit dtypes, so 25M ratings load in seconds and only the kept columns stay in
memory. Whenever the parser balks, the file is scanned again line by line to say, in one
line, where the problem is and what was expected there.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from minnet.errors import MinnetError

ROLES = ("user", "item", "rating", "timestamp")
CHUNK_ROWS = 2_000_000
FLOAT32_MAX = float(np.finfo(np.float32).max)
INT32 = np.iinfo(np.int32)
SEPARATOR_NAMES = {",": "comma", "\t": "tab", "::": "'::'", ";": "semicolon", "|": "'|'"}


@dataclass(frozen=True)
class Layout:
    """Where each role sits in the lines of one ratings file."""

    format: str  # "ratings.csv", "ratings.dat", "u.data" or "csv"
    sep: str  # as written in the file: ",", "\t", "::"
    names: tuple[str, ...]  # one label per field, for messages
    positions: Mapping[str, int] = field(hash=False)  # role -> field index
    header: tuple[str, ...] | None = None  # the exact first line, None when headerless

    @property
    def sep_name(self) -> str:
        return _name(self.sep)

    def label(self, role: str) -> str:
        return self.names[self.positions[role]]


def _release_layout(fmt: str, sep: str, header: tuple[str, ...] | None) -> Layout:
    return Layout(fmt, sep, header or ROLES, {role: k for k, role in enumerate(ROLES)}, header)


LAYOUTS = {
    "ratings.csv": _release_layout(
        "ratings.csv", ",", ("userId", "movieId", "rating", "timestamp")
    ),
    "ratings.dat": _release_layout("ratings.dat", "::", None),
    "u.data": _release_layout("u.data", "\t", None),
}


def generic_layout(path: Path, sep: str, columns: Mapping[str, str]) -> Layout:
    """The layout of a CSV/TSV whose header names the columns mapped in ``columns``."""
    header = tuple(_first_fields(path, sep, quoted=True))
    if not header or header == ("",):
        raise MinnetError(f"{path}:1: the first line is empty; expected a header naming columns")
    if len(set(header)) != len(header):
        twice = sorted({name for name in header if header.count(name) > 1})
        raise MinnetError(f"{path}:1: header names {', '.join(twice)} twice; rename one")
    positions = {}
    for role, name in columns.items():
        if name not in header:
            hint = _separator_hint(sep.join(header), sep) if len(header) == 1 else ""
            raise MinnetError(
                f"{path}:1: header {sep.join(header)!r} has no column {name!r} for the {role}; "
                f"set [data] columns.{role} to one of its columns{hint}"
            )
        positions[role] = header.index(name)
    return Layout("csv", sep, header, positions, header)


class Columns(NamedTuple):
    """The parsed columns of a ratings file, raw ids not yet mapped."""

    users: np.ndarray  # (N,) int32 raw user id, int64 when an id needs it
    items: np.ndarray  # (N,) int32 raw item id, int64 when an id needs it
    ratings: np.ndarray  # (N,) float32


def read_columns(path: Path, layout: Layout) -> Columns:
    """Parse ``path``; raise MinnetError naming the first bad line when anything is off."""
    _check_start(path, layout)
    users, items, ratings = [], [], []
    try:
        with warnings.catch_warnings():
            # Ids like 1e300 make numpy warn before pandas raises; we diagnose them below.
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            # ... and fields beyond the expected ones would be dropped with only a warning.
            warnings.filterwarnings("error", category=pd.errors.ParserWarning)
            for chunk in _chunks(path, layout):
                rating = chunk[layout.positions["rating"]].to_numpy(np.float32)
                if not np.isfinite(rating).all() or not _gaps_empty(chunk, layout):
                    raise ValueError("a rating is not a finite float32 or a '::' gap is filled")
                users.append(_narrow(chunk[layout.positions["user"]].to_numpy(np.int64)))
                items.append(_narrow(chunk[layout.positions["item"]].to_numpy(np.int64)))
                ratings.append(rating)
    except (ValueError, OverflowError, UnicodeError, pd.errors.ParserWarning):
        # pandas' own messages count lines differently from us; find the line ourselves.
        raise MinnetError(diagnose(path, layout)) from None
    if not ratings or sum(len(r) for r in ratings) == 0:
        where = "after the header" if layout.header else "in the file"
        raise MinnetError(f"{path}: no ratings {where}; expected at least one row")
    return Columns(_concatenate(users), _concatenate(items), _concatenate(ratings))


def _narrow(ids: np.ndarray) -> np.ndarray:
    """MovieLens ids fit in 32 bits: halve the memory of the raw ids when they do."""
    if len(ids) and ids.min() >= INT32.min and ids.max() <= INT32.max:
        return ids.astype(np.int32)
    return ids


def _concatenate(parts: list[np.ndarray]) -> np.ndarray:
    """Join chunks, dropping each one once copied, so memory holds one extra chunk at most."""
    dtype = np.result_type(*parts)
    out = np.empty(sum(len(p) for p in parts), dtype)
    start = 0
    while parts:
        part = parts.pop(0)
        out[start : start + len(part)] = part
        start += len(part)
    return out


def _chunks(path: Path, layout: Layout) -> Iterator[pd.DataFrame]:
    # The C parser takes one-character separators only: '::' is split on ':', and every
    # second field (the gap inside '::') must then be empty; see _gaps_empty.
    step = 2 if layout.sep == "::" else 1
    sep = ":" if step == 2 else layout.sep
    n_fields = step * len(layout.names) - (step - 1)
    kinds = {"user": np.int64, "item": np.int64, "rating": np.float64, "timestamp": np.int64}
    dtypes: dict[int, object] = {k: np.float64 for k in range(1, n_fields, 2)} if step == 2 else {}
    for role, position in layout.positions.items():
        dtypes[position * step] = kinds[role]
    for k in range(n_fields):
        dtypes.setdefault(k, object)  # a generic file's unused columns
    reader = pd.read_csv(
        path,
        sep=sep,
        header=None,
        names=list(range(n_fields)),
        skiprows=1 if layout.header else 0,
        index_col=False,
        dtype=dtypes,  # type: ignore[arg-type]
        engine="c",
        encoding="utf-8-sig",
        encoding_errors="replace",  # bad bytes in a number fail there; elsewhere they do no harm
        quoting=csv.QUOTE_MINIMAL if layout.format == "csv" else csv.QUOTE_NONE,
        chunksize=CHUNK_ROWS,
    )
    with reader:
        for chunk in reader:
            if step == 2:
                chunk = chunk.rename(columns=lambda k: k // 2 if k % 2 == 0 else -1 - k)
            yield chunk


def _gaps_empty(chunk: pd.DataFrame, layout: Layout) -> bool:
    if layout.sep != "::":
        return True
    gaps = chunk[[k for k in chunk.columns if k < 0]]
    return bool(gaps.isna().to_numpy().all())


def _check_start(path: Path, layout: Layout) -> None:
    """Refuse empty or UTF-16 files and a missing, wrong or unexpected header."""
    with path.open("rb") as f:
        head = f.read(4)
    if not head:
        raise MinnetError(f"{path}: file is empty; expected MovieLens ratings")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise MinnetError(f"{path}: file is UTF-16 text; expected UTF-8 or ASCII, re-save it so")
    if layout.header and layout.format != "csv":
        fields = tuple(_first_fields(path, layout.sep, quoted=False))
        if fields != layout.header:
            raise MinnetError(_header_problem(path, layout, fields))
    # pandas would take extra fields on the first data line as an index: refuse them here.
    try:
        first = next(_lines(path, layout), None)
        fits = first is None or len(first[2]) == len(layout.names)
    except _Unsplittable:
        fits = False
    if not fits:
        raise MinnetError(diagnose(path, layout))


def _header_problem(path: Path, layout: Layout, fields: tuple[str, ...]) -> str:
    found = layout.sep.join(fields)
    expected = layout.sep.join(layout.header or ())
    if len(fields) == len(layout.names) and all(_is_number(f) for f in fields):
        return f"{path}:1: found data {found!r} where the header {expected!r} belongs; add it"
    return (
        f"{path}:1: header is {found!r}; expected {expected!r}{_separator_hint(found, layout.sep)}"
    )


def _first_fields(path: Path, sep: str, quoted: bool) -> list[str]:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        line = f.readline().rstrip("\r\n")
    if quoted and len(sep) == 1:
        return next(csv.reader([line], delimiter=sep), [])
    return line.split(sep)


def diagnose(path: Path, layout: Layout) -> str:
    """Scan ``path`` line by line and describe the first line that breaks ``layout``."""
    seen = False
    try:
        for number, raw, fields in _lines(path, layout):
            seen = True
            problem = _line_problem(layout, number, fields)
            if problem is None:
                continue
            if not raw.endswith(("\n", "\r")):
                problem += "; the file ends in the middle of this line, so it looks truncated"
            return f"{path}:{number}: {problem}"
    except _Unsplittable as e:
        return (
            f"{path}:{e.line}: cannot split into {layout.sep_name}-separated fields ({e.reason}); "
            "check the quotes that start on or before this line"
        )
    if not seen:
        where = "after the header" if layout.header else "in the file"
        return f"{path}: no ratings {where}; expected at least one row"
    return f"{path}: could not be read as {layout.sep_name}-separated {', '.join(layout.names)}"


class _Unsplittable(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line, self.reason = line, reason


def line_of_row(path: Path, layout: Layout, row: int) -> int:
    """The line number of data row ``row`` (0-based), as the parser counted rows."""
    try:
        for k, (number, _, _) in enumerate(_lines(path, layout)):
            if k == row:
                return number
    except _Unsplittable:
        raise MinnetError(diagnose(path, layout)) from None
    raise MinnetError(f"{path}: has no data row {row}")  # the file changed under us


def _lines(path: Path, layout: Layout) -> Iterator[tuple[int, str, list[str]]]:
    """Data lines as (line number, raw text, fields), skipping the header and blank lines."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        if layout.format == "csv":
            reader = csv.reader(f, delimiter=layout.sep, strict=True)
            try:
                next(reader, None)
                for fields in reader:
                    if fields:
                        yield reader.line_num, "\n", fields
            except csv.Error as e:
                raise _Unsplittable(reader.line_num, str(e)) from None
            return
        for number, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            if (number == 1 and layout.header) or not line:
                continue
            yield number, raw, line.split(layout.sep)


def _line_problem(layout: Layout, number: int, fields: list[str]) -> str | None:
    line = layout.sep.join(fields)
    header_like = number == 1 and not layout.header and not any(c.isdigit() for c in line)
    header = (
        f"found a header {line!r}, but {layout.format} has none; expected "
        f"{', '.join(layout.names)} as numbers, so delete that line"
    )
    if len(fields) != len(layout.names):
        hint = _separator_hint(line, layout.sep)
        if header_like and not hint:
            return header
        return (
            f"found {len(fields)} {layout.sep_name}-separated fields, expected "
            f"{len(layout.names)} ({', '.join(layout.names)}){hint}"
        )
    for role, position in layout.positions.items():
        value = fields[position]
        problem = _field_problem(role, value)
        if problem is not None:
            return header if header_like else f"{layout.names[position]} {value!r} {problem}"
    return None


def _field_problem(role: str, value: str) -> str | None:
    if value.strip() == "":
        return "is empty; expected a number"
    if "_" in value:
        return "is not a number" if role == "rating" else "is not an integer id"
    try:
        number = float(value) if role == "rating" else int(value)
    except ValueError:
        if role != "rating" and _is_number(value) and float(value).is_integer():
            # pandas takes integral floats such as 1.0 or 1e3 as ids, when they fit
            return None if abs(float(value)) < 2**63 else "is too large for a 64-bit integer"
        return "is not a number" if role == "rating" else "is not an integer id"
    if isinstance(number, float) and not math.isfinite(number):
        return "is not a finite number"
    if isinstance(number, float) and abs(number) > FLOAT32_MAX:
        return "is too large for a rating"
    if isinstance(number, int) and not -(2**63) <= number < 2**63:
        return "is too large for a 64-bit integer"
    return None


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _separator_hint(line: str, sep: str) -> str:
    if sep == "::" and ":" in line:
        return "; the line uses single ':' where this file must use '::'"
    for other, name in SEPARATOR_NAMES.items():
        if other != sep and other not in sep and other in line:
            return f"; the line looks {name}-separated, but this file must use {_name(sep)}"
    return ""


def _name(sep: str) -> str:
    return SEPARATOR_NAMES.get(sep, repr(sep))


TITLE_FILES = (("movies.csv", ","), ("movies.dat", "::"), ("u.item", "|"))


def load_titles(folder: Path) -> dict[int, str]:
    """Movie titles by raw movie id, from ``movies.csv``, ``movies.dat`` or ``u.item``.

    ``movies.dat`` (ml-1m) and ``u.item`` (ml-100k) are Latin-1; they are read as UTF-8
    when they decode as such and as Latin-1 otherwise.
    """
    found = [(folder / name, sep) for name, sep in TITLE_FILES if (folder / name).is_file()]
    if not found:
        names = " or ".join(name for name, _ in TITLE_FILES)
        raise MinnetError(f"{folder} holds no {names}; titles are not available")
    path, sep = found[0]
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = text.splitlines()
    if sep == ",":
        rows: Iterator[list[str]] = csv.reader(lines[1:])
    else:
        rows = (line.split(sep) for line in lines)
    titles = {}
    for number, fields in enumerate(rows, start=2 if sep == "," else 1):
        if not fields:
            continue
        if len(fields) < 2 or not fields[0].strip().isdigit():
            raise MinnetError(
                f"{path}:{number}: expected a movie id and a title separated by {sep!r}, "
                f"found {sep.join(fields)!r}"
            )
        titles[int(fields[0])] = fields[1]
    return titles
