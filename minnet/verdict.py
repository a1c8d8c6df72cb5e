"""Is a learnable padding better than the best fixed one, beyond seed noise?

The final comparison trains the best fixed ``k`` and a learnable ``k`` from the same seeds,
so the two runs of a seed share initial weights and batch order. Pairing by seed removes
that shared noise: the question becomes whether the mean of the per-seed differences
``test_mse(learnable) - test_mse(fixed)`` is away from zero, judged by a Student-t
interval because there are only a handful of seeds.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from minnet.errors import MinnetError
from minnet.initial import head_label

log = logging.getLogger(__name__)

CONFIDENCE = 0.95
PAIR_COLUMNS = ("seed", "fixed", "learnable", "difference", "padding_final")
MINUS = "\N{MINUS SIGN}"


@dataclass(frozen=True)
class Verdict:
    """The paired comparison of the best fixed padding against a learnable one.

    ``pairs`` has one row per seed with both runs: ``seed``, the test MSE of the ``fixed``
    and the ``learnable`` run, their ``difference`` (learnable minus fixed) and the
    learnable run's ``padding_final``. ``mean`` is the mean difference; ``std`` its sample
    standard deviation; ``low`` and ``high`` bound the 95% interval of the mean (NaN with
    fewer than two pairs); ``n`` counts the pairs.
    """

    pairs: pd.DataFrame
    mean: float
    std: float
    low: float
    high: float
    n: int
    sentence: str


def signed(value: float, digits: int = 4) -> str:
    """Format a number with an explicit sign and a typographic minus: ``+0.0004``."""
    text = f"{value:+.{digits}f}"
    return text.replace("-", MINUS)


def judge(finals: pd.DataFrame) -> Verdict:
    """Pair the final runs by seed and say whether learnable ``k`` beats the best fixed ``k``.

    Args:
        finals: ``StudySummary.finals``; may be empty when the final comparison has not run.

    Returns:
        The per-seed pairs, the mean difference with its 95% Student-t interval, and one
        sentence stating the verdict with its numbers.

    Raises:
        MinnetError: a seed has more than one run of the same role.
    """
    if finals.empty:
        return _undecided(
            _empty_pairs(), "The final comparison of fixed and learnable k has not run yet."
        )

    pairs = _pair(finals)
    n = len(pairs)
    if n == 0:
        counts = finals["role"].value_counts()
        return _undecided(
            pairs,
            "The final comparison has no paired seeds yet "
            f"({counts.get('fixed', 0)} fixed and {counts.get('learnable', 0)} learnable runs), "
            "so there is no verdict.",
        )

    diffs = pairs["difference"].to_numpy(dtype=float)
    mean = float(diffs.mean())
    std = float(diffs.std(ddof=1)) if n > 1 else math.nan
    low, high = _interval(mean, std, n)
    sentence = _sentence(_reference(finals), mean, low, high, n, pairs["padding_final"])
    return Verdict(pairs=pairs, mean=mean, std=std, low=low, high=high, n=n, sentence=sentence)


def _pair(finals: pd.DataFrame) -> pd.DataFrame:
    repeated = finals.groupby(["role", "seed"]).size()
    repeated = repeated[repeated > 1]
    if not repeated.empty:
        role, seed = repeated.index[0]
        raise MinnetError(
            f"finals has {repeated.iloc[0]} '{role}' runs for seed {seed}; the final comparison "
            "needs at most one run per role and seed, so drop the duplicate runs from storage"
        )

    fixed = finals[finals["role"] == "fixed"].set_index("seed")
    learnable = finals[finals["role"] == "learnable"].set_index("seed")
    seeds = sorted(set(fixed.index) & set(learnable.index))
    unpaired = sorted(set(fixed.index) ^ set(learnable.index))
    if unpaired:
        log.warning("final runs without a partner are left out of the verdict: seeds %s", unpaired)

    pairs = pd.DataFrame(
        {
            "seed": seeds,
            "fixed": fixed.loc[seeds, "test_mse"].to_numpy(dtype=float),
            "learnable": learnable.loc[seeds, "test_mse"].to_numpy(dtype=float),
            "padding_final": learnable.loc[seeds, "padding_final"].to_numpy(dtype=float),
        }
    )
    pairs["difference"] = pairs["learnable"] - pairs["fixed"]

    # A run that diverged has no test MSE; its pair cannot say anything about the difference.
    finite = np.isfinite(pairs["difference"])
    if not finite.all():
        log.warning(
            "pairs without a finite test MSE are left out: seeds %s", list(pairs["seed"][~finite])
        )
    return pairs.loc[finite, list(PAIR_COLUMNS)].reset_index(drop=True)


def _interval(mean: float, std: float, n: int) -> tuple[float, float]:
    if n < 2:
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, df=n - 1) * std / math.sqrt(n)
    return mean - half, mean + half


def _reference(finals: pd.DataFrame) -> str:
    fixed = finals[finals["role"] == "fixed"]
    shapes = fixed[["padding_initial", "hidden"]].drop_duplicates()
    if len(shapes) > 1:
        log.warning(
            "the fixed final runs disagree on padding or head: %s", shapes.to_dict("records")
        )
    padding, hidden = shapes.iloc[0]
    return f"the best fixed k ({padding:g}, head {head_label(hidden)})"


def _sentence(
    reference: str, mean: float, low: float, high: float, n: int, padding_final: pd.Series
) -> str:
    seeds = f"{n} paired seed{'s' if n != 1 else ''}"
    k = padding_final.to_numpy(dtype=float)
    k_end = f"k ended at {k.mean():.3f}" + (
        f" ± {k.std(ddof=1):.3f} (mean ± sd over seeds)" if n > 1 else ""
    )

    if n == 1:
        return (
            f"With a single paired seed there is no interval, so seed noise cannot be judged: "
            f"learnable k's test MSE differs from {reference} by {signed(mean)}; {k_end}."
        )
    # When the interval excludes zero, say it as an amount lower or higher, as one would aloud.
    if high < 0:
        return (
            f"Learnable k beats {reference} beyond seed noise: test MSE lower by "
            f"{-mean:.4f} on average (95% CI {-high:.4f} to {-low:.4f}, {seeds}); {k_end}."
        )
    if low > 0:
        return (
            f"Learnable k is worse than {reference} beyond seed noise: test MSE higher by "
            f"{mean:.4f} on average (95% CI {low:.4f} to {high:.4f}, {seeds}); {k_end}."
        )
    return (
        f"Learnable k does not beat {reference} beyond seed noise: mean test MSE difference "
        f"learnable − fixed {signed(mean)} (95% CI {signed(low)} to {signed(high)}, {seeds}; "
        f"negative favours learnable); {k_end}."
    )


def _undecided(pairs: pd.DataFrame, sentence: str) -> Verdict:
    return Verdict(
        pairs=pairs,
        mean=math.nan,
        std=math.nan,
        low=math.nan,
        high=math.nan,
        n=0,
        sentence=sentence,
    )


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=float) for column in PAIR_COLUMNS})
