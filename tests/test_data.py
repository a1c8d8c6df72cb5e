"""Loading every release layout, a generic CSV and synthetic data; the [data] table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from minnet.data import (
    HALF_STARS,
    WHOLE_STARS,
    DataConfig,
    find_release,
    load_dataset,
    load_ratings,
    load_release,
    release_scale,
    resolve_data_dir,
)
from minnet.errors import MinnetError
from minnet.formats import load_titles

ROWS = [(1, 31, 2.5, 1260759144), (1, 1029, 3.0, 1260759179), (7, 31, 5.0, 835355493)]
WHOLE_ROWS = [(u, i, float(int(r) or 1), t) for u, i, r, t in ROWS]


def write_release(root: Path, folder: str, filename: str, rows: list[tuple]) -> Path:
    path = root / folder / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    if filename == "ratings.csv":
        lines = ["userId,movieId,rating,timestamp"] + [f"{u},{i},{r:g},{t}" for u, i, r, t in rows]
    elif filename == "ratings.dat":
        lines = [f"{u}::{i}::{r:g}::{t}" for u, i, r, t in rows]
    else:
        lines = [f"{u}\t{i}\t{r:g}\t{t}" for u, i, r, t in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("folder", "filename", "rows"),
    [
        ("ml-latest-small", "ratings.csv", ROWS),
        ("ml-20m", "ratings.csv", ROWS),
        ("ml-25m", "ratings.csv", ROWS),
        ("ml-32m", "ratings.csv", ROWS),
        ("ml-latest", "ratings.csv", ROWS),
        ("ml-10m", "ratings.dat", ROWS),
        ("ml-1m", "ratings.dat", WHOLE_ROWS),
        ("ml-100k", "u.data", WHOLE_ROWS),
    ],
)
def test_each_release_layout_loads_from_its_folder(
    tmp_path: Path, folder: str, filename: str, rows: list[tuple]
) -> None:
    write_release(tmp_path, folder, filename, rows)

    data = load_release(folder, tmp_path)

    assert find_release(folder, tmp_path).name == filename
    assert (len(data), data.n_users, data.n_items) == (3, 2, 2)
    assert data.users.tolist() == [0, 0, 1]
    assert data.items.tolist() == [0, 1, 0]  # movie ids 31 < 1029
    assert data.ratings.tolist() == [r for _, _, r, _ in rows]
    assert data.user_ids is not None and data.user_ids.tolist() == [1, 7]
    assert data.item_ids is not None and data.item_ids.tolist() == [31, 1029]
    assert data.users.dtype == np.int64 and data.ratings.dtype == np.float32


def test_crlf_and_bom_variants_load_like_the_plain_file(tmp_path: Path) -> None:
    plain = write_release(tmp_path / "a", "ml-latest-small", "ratings.csv", ROWS)
    text = plain.read_text()
    variants = {
        "crlf": text.replace("\n", "\r\n").encode(),
        "bom": b"\xef\xbb\xbf" + text.encode(),
        "bom+crlf": b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode(),
        "no final newline": text.rstrip("\n").encode(),
        "blank final lines": (text + "\n\n").encode(),
    }
    expected = load_ratings(plain)

    for name, content in variants.items():
        path = tmp_path / name / "ml-latest-small" / "ratings.csv"
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        assert load_ratings(path).sha256() == expected.sha256(), name


def test_headerless_layouts_accept_a_bom_too(tmp_path: Path) -> None:
    path = write_release(tmp_path, "ml-100k", "u.data", WHOLE_ROWS)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))

    assert load_ratings(path).n_users == 2


def test_folder_with_two_ratings_files_asks_for_a_format(tmp_path: Path) -> None:
    write_release(tmp_path, "both", "ratings.csv", ROWS)
    write_release(tmp_path, "both", "u.data", WHOLE_ROWS)

    with pytest.raises(
        MinnetError, match=r"holds both ratings.csv and u.data; set \[data\] format"
    ):
        load_release("both", tmp_path)
    data = load_dataset(DataConfig(name="both", format="u.data"), tmp_path)
    assert data.source.endswith("u.data")


def test_missing_release_names_the_folder_and_the_fetch_command(tmp_path: Path) -> None:
    (tmp_path / "ml-100k").mkdir()

    with pytest.raises(
        MinnetError, match=r"no folder .*ml-1m \(found: ml-100k\).*data fetch ml-1m"
    ):
        load_release("ml-1m", tmp_path)
    with pytest.raises(
        MinnetError, match=r"ml-100k holds no ratings.csv or ratings.dat or u.data"
    ):
        load_release("ml-100k", tmp_path)


def test_scale_comes_from_the_release_name() -> None:
    assert release_scale("ml-100k", "u.data") == WHOLE_STARS
    assert release_scale("ml-1m", "ratings.dat") == WHOLE_STARS
    assert release_scale("ml-10M100K", "ratings.dat") == HALF_STARS
    assert release_scale("ml-latest-small-2016", "ratings.csv") == HALF_STARS
    assert release_scale("my-copy", "u.data") == WHOLE_STARS
    assert release_scale("my-copy", "ratings.dat") == HALF_STARS


def test_rating_scale_option_overrides_the_release_scale(tmp_path: Path) -> None:
    write_release(tmp_path, "ml-100k", "u.data", [(1, 2, 7.0, 3), (2, 2, 10.0, 3)])

    with pytest.raises(MinnetError, match="rating 7 is outside"):
        load_release("ml-100k", tmp_path)
    data = load_dataset(DataConfig(name="ml-100k", rating_scale=(1, 10)), tmp_path)
    assert data.rating_range == (7.0, 10.0)


def test_duplicates_keep_last_keeps_the_last_rating_of_each_pair(tmp_path: Path) -> None:
    rows = [(1, 31, 2.5, 1), (2, 5, 3.0, 1), (1, 31, 4.0, 2), (1, 31, 3.5, 3)]
    write_release(tmp_path, "ml-latest-small", "ratings.csv", rows)

    with pytest.raises(MinnetError, match="2 repeated"):
        load_release("ml-latest-small", tmp_path)
    data = load_dataset(DataConfig(name="ml-latest-small", duplicates="keep_last"), tmp_path)
    assert len(data) == 2
    assert data.ratings.tolist() == [3.0, 3.5]  # row order kept: user 2's, then the last (1, 31)


def test_generic_csv_takes_columns_by_name(tmp_path: Path) -> None:
    (tmp_path / "mine.tsv").write_text(
        "when\tscore\tuid\tmid\tnote\n1\t8\t3\t10\tgood\n2\t3\t5\t10\t\n"
    )
    config = DataConfig.from_table(
        {
            "name": "mine",
            "format": "csv",
            "path": "mine.tsv",
            "sep": "\t",
            "columns": {"user": "uid", "item": "mid", "rating": "score"},
        }
    )

    data = load_dataset(config, tmp_path)

    assert data.ratings.tolist() == [8.0, 3.0]
    assert data.user_ids is not None and data.user_ids.tolist() == [3, 5]
    assert data.n_items == 1
    assert data.rating_range == (3.0, 8.0)  # no scale given: taken from the data


def test_generic_csv_path_must_exist_under_the_data_dir(tmp_path: Path) -> None:
    config = DataConfig(
        name="x", format="csv", path="nope.csv", columns={"user": "u", "item": "i", "rating": "r"}
    )
    with pytest.raises(MinnetError, match=r"\[data\] path 'nope.csv': no such file"):
        load_dataset(config, tmp_path)


def test_synthetic_dataset_is_generated_in_memory() -> None:
    config = DataConfig.from_table({"name": "synthetic", "n_ratings": 5000, "seed": 3})

    data = load_dataset(config, data_dir="/nonexistent")

    assert len(data) == 5000
    assert data.noise_mse is not None and 0.5 < data.noise_mse < 0.8
    assert data.rating_range == (0.5, 5.0)
    assert data.sha256() == load_dataset(config).sha256()
    assert data.source.startswith("synthetic(n_ratings=5000")


def test_load_dataset_fetches_a_missing_release_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_fetch(name: str, root: Path) -> Path:
        calls.append(name)
        return write_release(root, name, "u.data", WHOLE_ROWS).parent

    monkeypatch.setattr("minnet.data.fetch_release", fake_fetch)
    with pytest.raises(MinnetError, match="not found"):
        load_dataset(DataConfig(name="ml-100k"), tmp_path)

    assert len(load_dataset(DataConfig(name="ml-100k"), tmp_path, fetch=True)) == 3
    assert len(load_dataset(DataConfig(name="ml-100k"), tmp_path, fetch=True)) == 3
    assert calls == ["ml-100k"]


def test_resolve_data_dir_honours_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINNET_DATA_DIR", "/somewhere")
    assert resolve_data_dir() == Path("/somewhere")
    assert resolve_data_dir("here") == Path("here")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"name": "ml-1m", "n_rating": 5},
            r"\[data\] key 'n_rating' is unknown; did you mean 'n_ratings'",
        ),
        ({"name": "ml-1m", "formt": "u.data"}, r"did you mean 'format'\?"),
        ({"format": "u.data"}, r"\[data\] name is missing"),
        ({"name": 3}, r"\[data\] name = 3 is not a string"),
        ({"name": "ml-1m", "format": "xlsx"}, r"\[data\] format 'xlsx' is unknown"),
        ({"name": "ml-1m", "duplicates": "first"}, r"\[data\] duplicates 'first' is unknown"),
        ({"name": "ml-1m", "rating_scale": [5, 1]}, r"\[data\] rating_scale \[5.0, 1.0\] must be"),
        ({"name": "ml-1m", "rating_scale": "1-5"}, r"rating_scale = '1-5' is not two numbers"),
        ({"name": "ml-1m", "n_ratings": 10}, r"n_ratings only applies with name = 'synthetic'"),
        ({"name": "ml-1m", "path": "x.csv"}, r"path only applies with format = 'csv'"),
        ({"name": "x", "format": "csv"}, r"\[data\] path is missing"),
        (
            {"name": "x", "format": "csv", "path": "x", "columns": {"user": "a"}},
            r"columns lacks item, rating",
        ),
        (
            {
                "name": "x",
                "format": "csv",
                "path": "x",
                "columns": {"user": "a", "item": "b", "rating": "c", "time": "d"},
            },
            r"columns.time is unknown; did you mean 'timestamp'\?",
        ),
        (
            {
                "name": "x",
                "format": "csv",
                "path": "x",
                "sep": "::",
                "columns": {"user": "a", "item": "b", "rating": "c"},
            },
            r"sep '::' must be one character",
        ),
        ({"name": "synthetic", "n_ratings": 0}, r"n_ratings = 0 must be at least 1"),
        ({"name": "synthetic", "n_ratings": 1.5}, r"n_ratings = 1.5 is not an integer"),
        ({"name": "synthetic", "n_ratings": True}, r"n_ratings = True is not an integer"),
        ({"name": "synthetic", "noise": -1}, r"noise = -1.0 must be a finite std"),
        ({"name": "synthetic", "scale": "tenths"}, r"scale 'tenths' is unknown"),
        ({"name": "synthetic", "format": "u.data"}, r"format only applies to files"),
        ({"name": "../etc"}, r"name '../etc' is not a folder name"),
    ],
)
def test_data_table_errors_name_the_key_and_the_fix(table: dict, message: str) -> None:
    with pytest.raises(MinnetError, match=message) as caught:
        DataConfig.from_table(table)
    assert "\n" not in str(caught.value)


def test_data_table_errors_use_the_given_table_name() -> None:
    with pytest.raises(MinnetError, match=r"^\[study.data\] duplicates"):
        DataConfig.from_table({"name": "ml-1m", "duplicates": "x"}, where="study.data")


def test_data_table_round_trip_and_hashable() -> None:
    config = DataConfig.from_table({"name": "synthetic", "n_ratings": 1000, "noise": 1})

    assert config == DataConfig(name="synthetic", n_ratings=1000, noise=1.0)
    assert isinstance(config.noise, float)
    assert hash(config) == hash(DataConfig(name="synthetic", n_ratings=1000, noise=1.0))


@pytest.mark.parametrize(
    ("folder", "n", "n_users", "n_items", "scale"),
    [
        ("ml-latest-small-2016", 100_004, 671, 9_066, (0.5, 5.0)),
        ("ml-latest-small", 100_836, 610, 9_724, (0.5, 5.0)),
        ("ml-100k", 100_000, 943, 1_682, (1.0, 5.0)),
    ],
)
def test_real_releases_load_with_the_documented_counts(
    shared_data: Path, folder: str, n: int, n_users: int, n_items: int, scale: tuple
) -> None:
    data = load_dataset(DataConfig(name=folder), shared_data)

    assert (len(data), data.n_users, data.n_items) == (n, n_users, n_items)
    assert data.rating_range == scale


def test_titles_are_read_from_each_layout_with_latin_1_where_needed(tmp_path: Path) -> None:
    (tmp_path / "ml-1m").mkdir()
    (tmp_path / "ml-1m" / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation\n2::Misérables, Les (1995)::Drama\n".encode("latin-1")
    )
    (tmp_path / "ml-25m").mkdir()
    (tmp_path / "ml-25m" / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Animation\n2,"Cité, La (1995)",Drama\n'
    )

    assert load_titles(tmp_path / "ml-1m") == {1: "Toy Story (1995)", 2: "Misérables, Les (1995)"}
    assert load_titles(tmp_path / "ml-25m")[2] == "Cité, La (1995)"
    with pytest.raises(MinnetError, match="holds no movies.csv or movies.dat or u.item"):
        load_titles(tmp_path)


def test_real_titles_match_the_item_ids(shared_data: Path) -> None:
    data = load_release("ml-100k", shared_data)
    titles = load_titles(shared_data / "ml-100k")

    assert data.item_ids is not None
    assert titles[int(data.item_ids[0])] == "Toy Story (1995)"
    assert len(titles) == 1682 and "Misérables, Les (1995)" in titles.values()
