import tomllib
from pathlib import Path

import pytest

from minnet.errors import MinnetError
from minnet.spec import load_spec, spec_from_dict

REPO = Path(__file__).parents[1]

GOOD = """
[study]
name = "t"
[data]
name = "tiny"
[search]
padding = [0.0, 0.5]
hidden = [[4], [8, 4]]
"""

# (text replaced in GOOD, pattern the one-line message must match)
BAD_SPECS = [
    (("[search]", "[serach]"), r"unknown table 'serach'; did you mean 'search'\?"),
    (
        ('name = "tiny"', 'nmae = "tiny"'),
        r"\[data\] key 'nmae' is unknown; did you mean 'name'\?",
    ),
    (("[0.0, 0.5]", "[]"), r"\[search\] padding is an empty list"),
    (("[0.0, 0.5]", '["a"]'), r"\[search\] padding\[0\] is 'a'; expected a number"),
    (("[0.0, 0.5]", "{ low = 1.0, high = 0.0 }"), r"range low 1 must be below high 0"),
    (("[[4], [8, 4]]", "[[0]]"), r"\[search\] hidden\[0\] is \[0\]; a head shape is a list"),
    (("[[4], [8, 4]]", "[]"), r"\[search\] hidden is an empty list"),
    (("[[4], [8, 4]]", "[[4], [4]]"), r"lists a head shape twice"),
    (('[study]\nname = "t"', '[study]\nname = "t"\nn_trials = 9'), r"grid has only 4 points"),
    (('[study]\nname = "t"', '[study]\nname = "t"\nsampler = "cmaes"'), r"sampler is 'cmaes'"),
    (
        ('[study]\nname = "t"', '[study]\nname = "t"\nseed = "x"'),
        r"\[study\] seed is 'x'; expected an integer",
    ),
    (
        ('[study]\nname = "t"', '[study]\nname = "a/b"'),
        r"name 'a/b' must be 1 to 100 letters, digits",
    ),
    (
        ("[search]", "[split]\nvalid_fraction = 0.7\ntest_fraction = 0.3\n[search]"),
        r"sum to less than 1",
    ),
    (("[search]", "[split]\ntest_fraction = 0.0\n[search]"), r"final comparison needs test"),
    (("[search]", "[training]\nepochs = 0\n[search]"), r"\[training\] training epochs is 0"),
    (("[search]", "[training]\nlr = -1\n[search]"), r"lr is -1"),
    (("[search]", "[model]\nhidden_dropout = 1.5\n[search]"), r"hidden_dropout is 1.5"),
    (("[search]", "[final]\nseeds = -1\n[search]"), r"\[final\] seeds is -1"),
    (('[data]\nname = "tiny"', ""), r"\[data\] name is missing"),
    (("[study]", "[study"), r"invalid TOML"),
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_lesson_spec_asks_the_lessons_question() -> None:
    spec = load_spec(REPO / "study" / "lesson5.toml")

    assert spec.data.name == "ml-latest-small-2016"
    assert spec.paddings is not None and len(spec.paddings) >= 7
    assert 0.5 in spec.paddings and min(spec.paddings) == -1.0 and max(spec.paddings) == 1.5
    assert sum(p < 0 for p in spec.paddings) >= 2
    assert spec.hidden == ((10,), (50,), (100,), (10, 10), (50, 25))
    assert spec.n_trials == spec.grid_size == len(spec.paddings) * 5
    assert (spec.split_seed, spec.valid_fraction) == (42, 0.2)
    assert spec.training.epochs == 6 and spec.training.batch_size == 64
    assert spec.final_seeds == 5 and spec.learnable_padding_init == 0.5


def test_defaults_fill_a_minimal_spec(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.sampler == "grid" and spec.n_trials == 4 and spec.seed == 42
    assert spec.hidden_keys == ["4", "8-4"]


def test_padding_range_selects_tpe(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD.replace("[0.0, 0.5]", "{ low = -1.0, high = 1.5 }")))
    assert spec.sampler == "tpe" and spec.padding_range == (-1.0, 1.5) and spec.paddings is None


@pytest.mark.parametrize(("edit", "message"), BAD_SPECS)
def test_bad_specs_name_the_key_and_the_fix(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, GOOD.replace(*edit, 1))
    with pytest.raises(MinnetError, match=message) as info:
        load_spec(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(MinnetError, match="no such spec file"):
        load_spec(tmp_path / "nope.toml")


@pytest.mark.parametrize("name", ["..", ".", "a\nb", "a" * 101, "x.final", "a\x00b", ""])
def test_study_names_that_are_not_plain_folder_names_are_refused(name: str) -> None:
    raw = tomllib.loads(GOOD)
    raw["study"]["name"] = name
    with pytest.raises(MinnetError, match=r"\[study\] name"):
        spec_from_dict(raw)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[study]\nseed = -1", r"\[study\] seed is -1; use an integer from 0 to 2\*\*32 - 1"),
        ("[split]\nseed = 99999999999", r"\[split\] seed is 99999999999"),
        ("[training]\npadding_lr = -1.0", r"padding_lr is -1.0; it must be positive"),
        ("[model]\nn_factors = 100000000", r"n_factors is 100000000; use 1 to 100000"),
    ],
)
def test_out_of_range_numbers_are_refused(tmp_path: Path, table: str, message: str) -> None:
    header = table.split("\n")[0]
    body = GOOD.replace(header + "\n", table + "\n") if header in GOOD else GOOD + "\n" + table
    with pytest.raises(MinnetError, match=message):
        load_spec(write(tmp_path, body))


def test_a_bare_width_is_not_taken_for_a_head_shape(tmp_path: Path) -> None:
    with pytest.raises(MinnetError, match=r"hidden\[0\] is 10; write each head shape as a list"):
        load_spec(write(tmp_path, GOOD.replace("[[4], [8, 4]]", "[10, 20]")))
