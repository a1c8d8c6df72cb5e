"""Malformed ratings files, each refused with its own one-line message."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minnet.data import DataConfig, Ratings, load_dataset, load_ratings
from minnet.errors import MinnetError

HEADER = "userId,movieId,rating,timestamp\n"
VALID = {
    "ratings.csv": HEADER + "1,31,2.5,1260759144\n1,1029,3.0,1260759179\n2,10,4.0,835355493\n",
    "ratings.dat": "1::1193::5::978300760\n1::661::3::978302109\n2::1357::5::978298709\n",
    "u.data": "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n",
}
FOLDER = {"ratings.csv": "ml-latest-small", "ratings.dat": "ml-1m", "u.data": "ml-100k"}

# (case, ratings file, content, pattern the message must match)
CORPUS = [
    (
        "missing column",
        "ratings.csv",
        HEADER + "1,31,2.5\n",
        r"ratings.csv:2: found 3 comma-separated fields, expected 4 \(userId, movieId, rating, ",
    ),
    (
        "extra column",
        "ratings.csv",
        HEADER + "1,31,2.5,1260759144,x\n",
        r":2: found 5 comma-separated fields, expected 4",
    ),
    (
        "extra column later",
        "ratings.csv",
        VALID["ratings.csv"] + "3,4,5,6,7\n",
        r":5: found 5 comma-separated fields, expected 4",
    ),
    (
        "extra '::' field",
        "ratings.dat",
        VALID["ratings.dat"] + "3::4::5::6::7\n",
        r"ratings.dat:4: found 5 '::'-separated fields, expected 4",
    ),
    (
        "header where none is expected",
        "u.data",
        "user\titem\trating\ttimestamp\n1\t2\t3\t4\n",
        r"u.data:1: found a header 'user\\titem\\trating\\ttimestamp', but u.data has none",
    ),
    (
        "no header where one is expected",
        "ratings.csv",
        "1,31,2.5,1260759144\n",
        r"ratings.csv:1: found data '1,31,2.5,1260759144' where the header "
        r"'userId,movieId,rating,timestamp' belongs",
    ),
    (
        "wrong header",
        "ratings.csv",
        "user,movie,rating,time\n1,31,2.5,1\n",
        r":1: header is 'user,movie,rating,time'; expected 'userId,movieId,rating,timestamp'",
    ),
    (
        "non-numeric user id",
        "ratings.csv",
        HEADER + "1,31,2.5,1\nabc,31,2.5,1\n",
        r":3: userId 'abc' is not an integer id",
    ),
    (
        "non-numeric item id",
        "ratings.dat",
        "1::x12::5::978300760\n",
        r"ratings.dat:1: item 'x12' is not an integer id",
    ),
    (
        "non-numeric rating",
        "u.data",
        "1\t2\tgood\t4\n",
        r"u.data:1: rating 'good' is not a number",
    ),
    (
        "fractional id",
        "ratings.csv",
        HEADER + "1.5,31,2.5,1\n",
        r":2: userId '1.5' is not an integer id",
    ),
    (
        "NaN rating",
        "ratings.csv",
        HEADER + "1,31,nan,1\n",
        r":2: rating 'nan' is not a finite number",
    ),
    (
        "empty field",
        "ratings.csv",
        HEADER + "1,,2.5,1\n",
        r":2: movieId '' is empty; expected a number",
    ),
    (
        "empty timestamp",
        "u.data",
        "1\t2\t3\t\n",
        r"u.data:1: timestamp '' is empty; expected a number",
    ),
    (
        "rating above the scale",
        "ratings.csv",
        HEADER + "1,31,2.5,1\n1,32,7,1\n",
        r"ratings.csv:3: rating 7 is outside the scale of ml-latest-small, 0.5 to 5 in half stars",
    ),
    (
        "rating below the scale",
        "u.data",
        "1\t2\t0\t4\n",
        r"u.data:1: rating 0 is outside the scale of ml-100k, 1 to 5 in whole stars",
    ),
    (
        "half star in a whole-star release",
        "ratings.dat",
        "1::2::3.5::4\n",
        r"ratings.dat:1: rating 3.5 is not a step of the scale of ml-1m, 1 to 5 in whole stars",
    ),
    (
        "quarter star",
        "ratings.csv",
        HEADER + "1,31,2.25,1\n",
        r":2: rating 2.25 is not a step of the scale of ml-latest-small",
    ),
    (
        "duplicate pairs",
        "ratings.csv",
        HEADER + "1,31,2.5,1\n2,5,3,1\n1,31,4,2\n1,31,3,3\n",
        r"ratings.csv:4: 2 repeated \(user, item\) pairs; the first repeats line 2; remove them, "
        r"or set \[data\] duplicates = 'keep_last'",
    ),
    ("empty file", "ratings.csv", "", r"ratings.csv: file is empty"),
    ("header only", "ratings.csv", HEADER, r"ratings.csv: no ratings after the header"),
    ("blank lines only", "u.data", "\n\n", r"u.data: no ratings in the file"),
    (
        "tabs in a comma file",
        "ratings.csv",
        HEADER.replace(",", "\t") + "1\t31\t2.5\t1\n",
        r":1: header is 'userId\\tmovieId\\trating\\ttimestamp'; expected "
        r"'userId,movieId,rating,timestamp'; the line looks tab-separated, but this file must "
        r"use comma",
    ),
    (
        "commas in a tab file",
        "u.data",
        "1,2,3,4\n",
        r"u.data:1: found 1 tab-separated fields, expected 4 \(user, item, rating, timestamp\); "
        r"the line looks comma-separated",
    ),
    (
        "single colons",
        "ratings.dat",
        "1:2:3:4\n",
        r"ratings.dat:1: found 1 '::'-separated fields, expected 4 .*single ':'",
    ),
    (
        "colons in the gaps",
        "ratings.dat",
        "1:2:3:4:5:6:7\n",
        r"ratings.dat:1: found 1 '::'-separated fields",
    ),
    (
        "truncated last line",
        "ratings.csv",
        HEADER + "1,31,2.5,1\n2,3",
        r":3: found 2 comma-separated fields, expected 4 .*the file ends in the middle of this "
        r"line, so it looks truncated",
    ),
    (
        "truncated number",
        "u.data",
        "1\t2\t3\t4\n5\t6\t",
        r"u.data:2: found 3 tab-separated fields.*looks truncated",
    ),
    ("UTF-16", "ratings.csv", "\ufeff" + HEADER, r"ratings.csv: file is UTF-16 text"),
    (
        "huge id",
        "u.data",
        "1\t99999999999999999999\t3\t4\n",
        r"u.data:1: item '99999999999999999999' is too large for a 64-bit integer",
    ),
    ("quoted id", "u.data", '"1"\t2\t3\t4\n', r"u.data:1: user '\"1\"' is not an integer id"),
]


def write(tmp_path: Path, filename: str, content: str | bytes, folder: str | None = None) -> Path:
    path = tmp_path / (folder or FOLDER[filename]) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        encoding = "utf-16" if content.startswith("\ufeff") else "utf-8"
        content = content.removeprefix("\ufeff").encode(encoding)
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("filename", "content", "pattern"),
    [case[1:] for case in CORPUS],
    ids=[case[0] for case in CORPUS],
)
def test_malformed_file_gives_its_one_line_message(
    tmp_path: Path, filename: str, content: str, pattern: str
) -> None:
    path = write(tmp_path, filename, content)
    with pytest.raises(MinnetError) as caught:
        load_ratings(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert re.search(pattern, message), message


GENERIC_HEADER = "uid;mid;score;when\n"
GENERIC = [
    (
        "column missing from the header",
        "uid;mid;when\n1;2;3\n",
        r"x.csv:1: header 'uid;mid;when' has no column 'score' for the rating; set \[data\] "
        r"columns.rating",
    ),
    (
        "wrong separator",
        "uid,mid,score,when\n1,2,3,4\n",
        r"x.csv:1: header 'uid,mid,score,when' has no column 'uid' .*comma-separated",
    ),
    (
        "row with an extra field",
        GENERIC_HEADER + "1;2;3;4\n1;3;3;4;5\n",
        r"x.csv:3: found 5 semicolon-separated fields, expected 4 \(uid, mid, score, when\)",
    ),
    (
        "row missing a mapped field",
        GENERIC_HEADER + "1;2;3;4\n1;3\n",
        r"x.csv:3: found 2 semicolon-separated fields",
    ),
    (
        "non-numeric rating",
        GENERIC_HEADER + "1;2;high;4\n",
        r"x.csv:2: score 'high' is not a number",
    ),
    (
        "rating outside the configured scale",
        GENERIC_HEADER + "1;2;11;4\n",
        r"x.csv:2: score 11 is outside the scale of generic, 1 to 10",
    ),
    (
        "header names a column twice",
        "uid;mid;score;uid\n1;2;3;4\n",
        r"x.csv:1: header names uid twice",
    ),
]


@pytest.mark.parametrize(
    ("content", "pattern"), [case[1:] for case in GENERIC], ids=[case[0] for case in GENERIC]
)
def test_malformed_generic_csv_gives_its_one_line_message(
    tmp_path: Path, content: str, pattern: str
) -> None:
    (tmp_path / "x.csv").write_text(content)
    config = DataConfig(
        name="generic",
        format="csv",
        path="x.csv",
        sep=";",
        columns={"user": "uid", "item": "mid", "rating": "score", "timestamp": "when"},
        rating_scale=(1, 10),
    )
    with pytest.raises(MinnetError) as caught:
        load_dataset(config, tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert re.search(pattern, message), message


def corrupt(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Apply (kind, position, bytes) edits: 0 replaces, 1 inserts, 2 deletes, 3 truncates."""
    for kind, position, chunk in edits:
        at = position % (len(data) + 1)
        if kind == 0:
            data = data[:at] + chunk + data[at + len(chunk) :]
        elif kind == 1:
            data = data[:at] + chunk + data[at:]
        elif kind == 2:
            data = data[:at] + data[at + len(chunk) :]
        else:
            data = data[:at]
    return data


NOISE = st.sampled_from(
    [b",", b"\t", b"::", b":", b"\n", b"\r\n", b"\r", b" ", b"-", b".", b"e", b"x", b'"',
     b"nan", b"inf", b"0", b"9", b"\x00", b"\xff", b"\xef\xbb\xbf", b"1e309", b"_"]
) | st.binary(min_size=1, max_size=3)  # fmt: skip
EDITS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 10_000), NOISE), min_size=1, max_size=4
)


@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(filename=st.sampled_from(sorted(VALID)), edits=EDITS)
def test_random_corruption_loads_or_raises_minnet_error(
    tmp_path: Path, filename: str, edits: list[tuple[int, int, bytes]]
) -> None:
    data = corrupt(VALID[filename].encode(), edits)
    path = write(tmp_path, filename, data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning may mean silently lost data
            result = load_ratings(path)
    except MinnetError as e:
        assert "\n" not in str(e)
    else:
        assert isinstance(result, Ratings)
        assert len(result) > 0
        assert result.users.max() < result.n_users and result.items.max() < result.n_items


GENERIC_VALID = 'uid;mid;score;note\n1;2;3.5;"a;b"\n1;3;4;\n2;2;1;x\n'
GENERIC_CONFIG = DataConfig(
    name="mine",
    format="csv",
    path="mine.csv",
    sep=";",
    columns={"user": "uid", "item": "mid", "rating": "score"},
)


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=EDITS)
def test_random_corruption_of_a_generic_csv_loads_or_raises_minnet_error(
    tmp_path: Path, edits: list[tuple[int, int, bytes]]
) -> None:
    (tmp_path / "mine.csv").write_bytes(corrupt(GENERIC_VALID.encode(), edits))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = load_dataset(GENERIC_CONFIG, tmp_path)
    except MinnetError as e:
        assert "\n" not in str(e)
    else:
        assert len(result) > 0 and np.isfinite(result.ratings).all()
