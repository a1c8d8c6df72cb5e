from __future__ import annotations

import math

import pandas as pd
import pytest

from minnet.errors import MinnetError
from minnet.verdict import head_label, judge, signed

T_975_DF4 = 2.7764451051977934  # Student-t quantile from a table, 4 degrees of freedom


def finals(
    fixed: list[float],
    learnable: list[float],
    seeds: list[int] | None = None,
    padding: float = 0.5,
    hidden: str = "10",
) -> pd.DataFrame:
    seeds = seeds if seeds is not None else list(range(len(fixed)))
    rows = [
        {
            "role": "fixed",
            "seed": s,
            "hidden": hidden,
            "padding_initial": padding,
            "padding_final": padding,
            "test_mse": mse,
            "val_mse_per_epoch": [mse + 0.1, mse],
            "padding_trace": [],
        }
        for s, mse in zip(seeds, fixed, strict=True)
    ]
    rows += [
        {
            "role": "learnable",
            "seed": s,
            "hidden": hidden,
            "padding_initial": padding,
            "padding_final": padding + 0.1 + 0.01 * i,
            "test_mse": mse,
            "val_mse_per_epoch": [mse + 0.1, mse],
            "padding_trace": [padding, padding + 0.1 + 0.01 * i],
        }
        for i, (s, mse) in enumerate(zip(seeds, learnable, strict=True))
    ]
    return pd.DataFrame(rows)


FIXED = [0.80, 0.81, 0.79, 0.82, 0.80]
BETTER = [f - d for f, d in zip(FIXED, [0.003, 0.004, 0.002, 0.0035, 0.0025], strict=True)]


def test_interval_matches_hand_computation() -> None:
    verdict = judge(finals(FIXED, BETTER))

    # d = -0.003 - [0, 0.001, -0.001, 0.0005, -0.0005]; squared deviations sum to 2.5e-6
    std = math.sqrt(2.5e-6 / 4)
    half = T_975_DF4 * std / math.sqrt(5)
    assert verdict.n == 5
    assert verdict.mean == pytest.approx(-0.003, abs=1e-12)
    assert verdict.std == pytest.approx(std, rel=1e-9)
    assert verdict.low == pytest.approx(-0.003 - half, rel=1e-9)
    assert verdict.high == pytest.approx(-0.003 + half, rel=1e-9)
    assert list(verdict.pairs["seed"]) == [0, 1, 2, 3, 4]
    assert verdict.pairs["difference"].tolist() == pytest.approx(
        [-0.003, -0.004, -0.002, -0.0035, -0.0025]
    )


def test_reliably_lower_mse_beats_fixed() -> None:
    sentence = judge(finals(FIXED, BETTER)).sentence

    assert sentence.startswith(
        "Learnable k beats the best fixed k (0.5, head [10]) beyond seed noise"
    )
    assert "lower by 0.0030 on average (95% CI 0.0020 to 0.0040, 5 paired seeds)" in sentence
    assert "k ended at 0.620 ± 0.016" in sentence


def test_interval_across_zero_does_not_beat_fixed() -> None:
    learnable = [f + d for f, d in zip(FIXED, [0.002, -0.003, 0.001, -0.001, 0.003], strict=True)]

    verdict = judge(finals(FIXED, learnable, padding=0.8, hidden="50-25"))

    assert verdict.low < 0 < verdict.high
    assert "does not beat the best fixed k (0.8, head [50, 25])" in verdict.sentence
    assert "learnable − fixed +0.0004" in verdict.sentence
    assert f"95% CI {signed(verdict.low)} to {signed(verdict.high)}" in verdict.sentence


def test_reliably_higher_mse_is_worse() -> None:
    worse = [f + d for f, d in zip(FIXED, [0.003, 0.004, 0.002, 0.0035, 0.0025], strict=True)]

    sentence = judge(finals(FIXED, worse)).sentence

    assert "Learnable k is worse than the best fixed k" in sentence
    assert "higher by 0.0030 on average (95% CI 0.0020 to 0.0040" in sentence
    assert "beats" not in sentence


def test_single_pair_has_no_interval() -> None:
    verdict = judge(finals([0.80], [0.7995]))

    assert verdict.n == 1
    assert verdict.mean == pytest.approx(-0.0005)
    assert math.isnan(verdict.low) and math.isnan(verdict.high) and math.isnan(verdict.std)
    assert "single paired seed there is no interval" in verdict.sentence
    assert "\N{MINUS SIGN}0.0005" in verdict.sentence
    assert "beats" not in verdict.sentence


def test_no_finals_says_the_comparison_has_not_run() -> None:
    verdict = judge(pd.DataFrame())

    assert verdict.n == 0
    assert math.isnan(verdict.mean)
    assert verdict.pairs.empty
    assert "has not run" in verdict.sentence


def test_fixed_runs_alone_give_no_verdict() -> None:
    only_fixed = finals(FIXED, BETTER).query("role == 'fixed'")

    verdict = judge(only_fixed)

    assert verdict.n == 0
    assert "no paired seeds yet (5 fixed and 0 learnable runs)" in verdict.sentence


def test_pairs_by_seed_whatever_the_row_order_and_drops_unpaired() -> None:
    table = finals([0.80, 0.81, 0.82], [0.79, 0.80, 0.83], seeds=[7, 3, 5])
    table = table[~((table["role"] == "learnable") & (table["seed"] == 5))]
    shuffled = table.sample(frac=1.0, random_state=0)

    verdict = judge(shuffled)

    assert list(verdict.pairs["seed"]) == [3, 7]
    assert verdict.pairs["difference"].tolist() == pytest.approx([-0.01, -0.01])


def test_pair_with_diverged_run_is_left_out() -> None:
    verdict = judge(finals([0.80, 0.81, 0.82], [0.79, float("nan"), 0.81]))

    assert list(verdict.pairs["seed"]) == [0, 2]
    assert verdict.n == 2


def test_duplicate_run_for_a_seed_is_an_error() -> None:
    table = finals(FIXED, BETTER)
    doubled = pd.concat([table, table.iloc[[0]]], ignore_index=True)

    with pytest.raises(MinnetError, match="2 'fixed' runs for seed 0"):
        judge(doubled)


def test_head_label_lists_widths() -> None:
    assert head_label("10") == "[10]"
    assert head_label("50-25") == "[50, 25]"
