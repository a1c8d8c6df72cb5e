"""Study specs: a TOML file naming the data, split, model, training and search space.

Every key is checked: an unknown key is an error that suggests the closest valid one,
a value of the wrong type or range names its table and key. The spec as read is also
stored with the study, so a study can be resumed, joined or reported on from storage.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minnet.data import DataConfig
from minnet.errors import MinnetError
from minnet.initial import hidden_key
from minnet.split import COLD_POLICIES
from minnet.train import TrainConfig

SAMPLERS = ("grid", "tpe", "random")
MAX_WIDTH = 100_000  # widths and factors beyond this only exhaust memory
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
FINAL_SUFFIX = ".final"  # the final comparison is stored as study "<name>.final"
PRUNERS = ("none", "median")

TABLES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "study": {
        "name": str,
        "seed": int,
        "n_trials": int,
        "sampler": str,
        "pruner": str,
    },
    "data": {},  # checked by DataConfig.from_table
    "split": {"seed": int, "valid_fraction": float, "test_fraction": float, "cold": str},
    "model": {"n_factors": int, "embedding_dropout": float, "hidden_dropout": float},
    "training": {
        "epochs": int,
        "batch_size": int,
        "lr": float,
        "weight_decay": float,
        "padding_lr": float,
        "sparse": bool,
    },
    "search": {"padding": (list, dict), "hidden": list},
    "final": {"seeds": int, "learnable_padding_init": float},
}
REQUIRED = {"study": ("name",), "search": ("padding", "hidden")}


@dataclass(frozen=True)
class Spec:
    name: str
    seed: int
    n_trials: int
    sampler: str
    pruner: str
    data: DataConfig
    split_seed: int
    valid_fraction: float
    test_fraction: float
    cold: str  # held-out rows of users or movies unseen in training: keep, train or drop
    n_factors: int
    embedding_dropout: float
    hidden_dropout: float
    training: TrainConfig
    paddings: tuple[float, ...] | None  # a grid of values ...
    padding_range: tuple[float, float] | None  # ... or a range to sample from
    hidden: tuple[tuple[int, ...], ...]
    final_seeds: int
    learnable_padding_init: float
    raw: dict[str, Any]  # the tables as read, stored with the study
    where: str = field(default="spec", compare=False)  # the file it came from, for errors

    @property
    def hidden_keys(self) -> list[str]:
        return [hidden_key(h) for h in self.hidden]

    @property
    def grid_size(self) -> int | None:
        return len(self.paddings) * len(self.hidden) if self.paddings is not None else None

    def all_paddings(self) -> list[float]:
        """Every padding the search may try, or the ends of its range."""
        return list(self.paddings) if self.paddings is not None else list(self.padding_range or ())


def load_spec(path: str | Path) -> Spec:
    """Read and check a study spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MinnetError(
            f"{path}: no such spec file; see study/lesson5.toml for an example"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MinnetError(f"{path}: cannot read the spec ({exc})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MinnetError(f"{path}: invalid TOML: {exc}") from None
    return spec_from_dict(raw, where=str(path))


def spec_from_dict(raw: Mapping[str, Any], where: str = "spec") -> Spec:
    """Check the tables of a spec (as parsed from TOML, or as stored with a study)."""
    _check_keys(raw, TABLES, where, "table")
    for table, keys in TABLES.items():
        body = raw.get(table, {})
        if not isinstance(body, Mapping):
            raise MinnetError(f"{where}: [{table}] must be a table")
        if table == "data":
            continue
        _check_keys(body, keys, where, f"key in [{table}]")
        for key, kind in keys.items():
            if key in body:
                _check_type(body[key], kind, f"{where}: [{table}] {key}")
        for key in REQUIRED.get(table, ()):
            if key not in body:
                raise MinnetError(f"{where}: [{table}] {key} is required")

    try:
        data = DataConfig.from_table(raw.get("data", {}))
    except MinnetError as exc:
        raise MinnetError(f"{where}: {exc}") from None
    study, split, model = raw["study"], raw.get("split", {}), raw.get("model", {})
    training, search, final = raw.get("training", {}), raw["search"], raw.get("final", {})
    at = f"{where}: [search]"

    paddings, padding_range = _paddings(search["padding"], f"{at} padding")
    hidden = _hidden(search["hidden"], f"{at} hidden")
    sampler = _choice(
        study.get("sampler", "grid" if paddings else "tpe"), SAMPLERS, where, "study", "sampler"
    )
    if sampler == "grid" and paddings is None:
        raise MinnetError(
            f"{at} padding is a range, which a grid cannot enumerate; give a list of values "
            'or set [study] sampler = "tpe"'
        )
    grid = len(paddings) * len(hidden) if paddings is not None else None
    n_trials = study.get("n_trials", grid if sampler == "grid" else 50)
    if n_trials < 1:
        raise MinnetError(f"{where}: [study] n_trials is {n_trials}; it must be at least 1")
    if sampler == "grid" and grid is not None and n_trials > grid:
        raise MinnetError(
            f"{where}: [study] n_trials is {n_trials} but the grid has only {grid} points "
            f"({len(paddings or ())} paddings x {len(hidden)} head shapes); "
            "lower n_trials or widen the grid"
        )

    train_keys = {k: training[k] for k in TABLES["training"] if k in training}
    try:
        train_config = TrainConfig(**train_keys)
    except MinnetError as exc:
        raise MinnetError(f"{where}: [training] {exc}") from None

    final_seeds = final.get("seeds", 5)
    test_fraction = split.get("test_fraction", 0.1)
    if final_seeds < 0:
        raise MinnetError(
            f"{where}: [final] seeds is {final_seeds}; use 0 to skip the final comparison"
        )
    if final_seeds > 0 and test_fraction <= 0:
        raise MinnetError(
            f"{where}: [split] test_fraction is {test_fraction}; the final comparison needs test "
            "rows the search never saw: set it above 0, or [final] seeds = 0"
        )
    for key in ("embedding_dropout", "hidden_dropout"):
        if not 0 <= model.get(key, 0) < 1:
            raise MinnetError(f"{where}: [model] {key} is {model[key]}; it must be in [0, 1)")
    valid_fraction = split.get("valid_fraction", 0.2)
    if (
        not 0 < valid_fraction < 1
        or not 0 <= test_fraction < 1
        or valid_fraction + test_fraction >= 1
    ):
        raise MinnetError(
            f"{where}: [split] valid_fraction {valid_fraction} + test_fraction {test_fraction} "
            "must each be in [0, 1) and sum to less than 1"
        )
    if not 1 <= model.get("n_factors", 50) <= MAX_WIDTH:
        raise MinnetError(
            f"{where}: [model] n_factors is {model['n_factors']}; use 1 to {MAX_WIDTH}"
        )
    for table, body in (("study", study), ("split", split)):
        if not 0 <= body.get("seed", 0) < 2**32:
            raise MinnetError(
                f"{where}: [{table}] seed is {body['seed']}; use an integer from 0 to 2**32 - 1"
            )
    check_name(study["name"], f"{where}: [study] name")

    return Spec(
        name=study["name"],
        seed=study.get("seed", 42),
        n_trials=n_trials,
        sampler=sampler,
        pruner=_choice(study.get("pruner", "none"), PRUNERS, where, "study", "pruner"),
        data=data,
        split_seed=split.get("seed", study.get("seed", 42)),
        valid_fraction=valid_fraction,
        test_fraction=test_fraction,
        cold=_choice(split.get("cold", "keep"), COLD_POLICIES, where, "split", "cold"),
        n_factors=model.get("n_factors", 50),
        embedding_dropout=model.get("embedding_dropout", 0.05),
        hidden_dropout=model.get("hidden_dropout", 0.5),
        training=train_config,
        paddings=paddings,
        padding_range=padding_range,
        hidden=hidden,
        final_seeds=final_seeds,
        learnable_padding_init=final.get("learnable_padding_init", 0.5),
        raw={k: dict(v) for k, v in raw.items()},
        where=where,
    )


def check_name(name: str, at: str) -> None:
    """A study name doubles as a folder name: keep it plain, short and unambiguous."""
    if not NAME_PATTERN.fullmatch(name):
        raise MinnetError(
            f"{at} {name!r} must be 1 to 100 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    if name.endswith(FINAL_SUFFIX):
        raise MinnetError(
            f"{at} {name!r} ends in '{FINAL_SUFFIX}', which names the final comparison of "
            f"study '{name[: -len(FINAL_SUFFIX)]}'; choose another name"
        )


def _check_keys(
    body: Mapping[str, Any], allowed: Mapping[str, Any], where: str, what: str
) -> None:
    for key in body:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; valid: {', '.join(allowed)}"
            raise MinnetError(f"{where}: unknown {what} '{key}'{hint}")


def _check_type(value: Any, kind: type | tuple[type, ...], at: str) -> None:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return
    if isinstance(value, bool) and bool in kinds:
        return
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = " or ".join(
            {
                int: "an integer",
                float: "a number",
                str: "a string",
                list: "a list",
                dict: "a table",
                bool: "true or false",
            }[k]
            for k in kinds
        )
        raise MinnetError(f"{at} is {value!r}; expected {names}")
    if isinstance(value, float) and not math.isfinite(value):
        raise MinnetError(f"{at} is {value!r}; expected a finite number")


def _choice(value: Any, options: tuple[str, ...], where: str, table: str, key: str) -> str:
    if value not in options:
        raise MinnetError(
            f"{where}: [{table}] {key} is {value!r}; expected one of {', '.join(options)}"
        )
    return str(value)


def _number(value: Any, at: str) -> float:
    _check_type(value, float, at)
    return float(value)


def _paddings(value: Any, at: str) -> tuple[tuple[float, ...] | None, tuple[float, float] | None]:
    if isinstance(value, list):
        if not value:
            raise MinnetError(f"{at} is an empty list; give at least one padding value")
        values = tuple(_number(v, f"{at}[{i}]") for i, v in enumerate(value))
        if len(set(values)) != len(values):
            raise MinnetError(f"{at} lists a value twice; give each padding once")
        return values, None
    _check_keys(value, {"low": float, "high": float}, at, "key")
    if "low" not in value or "high" not in value:
        raise MinnetError(
            f"{at} as a range needs both low and high, e.g. {{ low = -1.0, high = 1.5 }}"
        )
    low, high = _number(value["low"], f"{at}.low"), _number(value["high"], f"{at}.high")
    if not low < high:
        raise MinnetError(f"{at} range low {low:g} must be below high {high:g}")
    return None, (low, high)


def _hidden(value: list[Any], at: str) -> tuple[tuple[int, ...], ...]:
    if not value:
        raise MinnetError(f"{at} is an empty list; give at least one head shape such as [10]")
    shapes = []
    for i, shape in enumerate(value):
        if not isinstance(shape, list):
            raise MinnetError(
                f"{at}[{i}] is {shape!r}; write each head shape as a list, "
                "e.g. hidden = [[10], [50, 25]]"
            )
        if not shape or not all(
            isinstance(w, int) and not isinstance(w, bool) and 0 < w <= MAX_WIDTH for w in shape
        ):
            raise MinnetError(
                f"{at}[{i}] is {shape!r}; a head shape is a list of integer widths from 1 to "
                f"{MAX_WIDTH}, e.g. [50, 25]"
            )
        widths = shape
        shapes.append(tuple(widths))
    if len(set(shapes)) != len(shapes):
        raise MinnetError(f"{at} lists a head shape twice; give each shape once")
    return tuple(shapes)
