"""Figures of a study: the search, the head shapes, and the final comparison.

Each function draws on the ``Axes`` it is given, or on a new Agg-backed figure, labels
both axes and the title, and returns the ``Axes``; saving is the caller's job. Figures
are made without pyplot, so nothing is shown, no global figure list grows, and the
user's matplotlib backend is left alone. Missing data (no completed trial, no final
runs yet) gives an axes that says so instead of an exception.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from minnet.verdict import Verdict, head_label

log = logging.getLogger(__name__)

LESSON_PADDING = 0.5
FIGSIZE = (7.0, 4.2)
ROLE_COLORS = {"fixed": "tab:blue", "learnable": "tab:orange"}
MAX_POINTS = 2000  # per trace; a learnable k is logged every step, far more than a plot shows


def new_axes() -> Axes:
    """A fresh Axes on its own Agg-backed figure, sized for a report."""
    fig = Figure(figsize=FIGSIZE, dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig.add_subplot()


def best_so_far(trials: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Validation MSE of completed trials as dots, with the running best as a step line."""
    ax = _label(ax, "Best validation MSE so far", "trial number", "validation MSE")
    done = _completed(trials).sort_values("number")
    if done.empty:
        return _no_data(ax, "no completed trials")

    best = np.minimum.accumulate(done["val_mse"].to_numpy(dtype=float))
    ax.plot(done["number"], done["val_mse"], "o", color="0.55", ms=4, label="completed trial")
    ax.step(done["number"], best, where="post", color="tab:red", lw=2, label="best so far")
    ax.legend()
    return ax


def mse_vs_padding(trials: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Validation MSE against padding ``k``, one series per head shape."""
    ax = _label(ax, "Validation MSE against padding k", "padding k", "validation MSE")
    done = _completed(trials)
    if done.empty:
        return _no_data(ax, "no completed trials")

    for hidden in _head_order(done["hidden"]):
        rows = done[done["hidden"] == hidden].sort_values("padding")
        ax.plot(
            rows["padding"], rows["val_mse"], "o-", ms=4, lw=1, label=f"head {head_label(hidden)}"
        )
    ax.axvline(
        LESSON_PADDING, color="0.3", ls="--", lw=1, label=f"lesson's k = {LESSON_PADDING:g}"
    )
    ax.legend(fontsize="small")
    return ax


def spread_by_head(trials: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Spread of validation MSE per head shape: a box plot with every trial as a point."""
    ax = _label(ax, "Validation MSE by head shape", "head shape", "validation MSE")
    done = _completed(trials)
    if done.empty:
        return _no_data(ax, "no completed trials")

    heads = _head_order(done["hidden"])
    values = [done.loc[done["hidden"] == h, "val_mse"].to_numpy(dtype=float) for h in heads]
    positions = np.arange(1, len(heads) + 1)
    ax.boxplot(values, positions=positions, widths=0.5, showfliers=False)
    jitter = np.random.default_rng(0)  # fixed, so the same study always draws the same figure
    for x, ys in zip(positions, values, strict=True):
        xs = x + jitter.uniform(-0.12, 0.12, size=len(ys))
        ax.plot(xs, ys, "o", color="tab:blue", alpha=0.6, ms=4)
    ax.set_xticks(positions, [head_label(h) for h in heads])
    return ax


def learning_curves(finals: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Validation MSE per epoch of the final runs: a thin line per seed, the mean in bold."""
    ax = _label(ax, "Learning curves of the final runs", "epoch", "validation MSE")
    if finals.empty:
        return _no_data(ax, "the final comparison has not run")

    for role, color in ROLE_COLORS.items():
        column = finals.loc[finals["role"] == role, "val_mse_per_epoch"]
        curves = [curve for curve in map(_seq, column) if curve]
        if not curves:
            continue
        for curve in curves:
            ax.plot(range(1, len(curve) + 1), curve, color=color, lw=0.8, alpha=0.4)
        mean = np.nanmean(_ragged(curves), axis=0)
        ax.plot(
            range(1, len(mean) + 1), mean, color=color, lw=2.5, label=_role_label(finals, role)
        )
    if not ax.lines:
        return _no_data(ax, "no validation MSE recorded")
    ax.legend()
    return ax


def padding_trajectory(finals: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """The learnable ``k`` after every training step, one line per seed, with references."""
    ax = _label(ax, "Learnable k during training", "training step", "padding k")
    runs = finals[finals["role"] == "learnable"] if not finals.empty else finals
    runs = runs[[len(_seq(t)) > 0 for t in runs["padding_trace"]]] if not runs.empty else runs
    if runs.empty:
        return _no_data(ax, "no learnable-k run has a trace")

    for _, run in runs.sort_values("seed").iterrows():
        trace = np.asarray(_seq(run["padding_trace"]))
        steps = np.arange(1, len(trace) + 1)
        keep = _thin(len(trace))
        ax.plot(steps[keep], trace[keep], lw=1, label=f"seed {run['seed']}")
    start = float(runs["padding_initial"].iloc[0])
    ax.axhline(start, color="0.4", ls=":", lw=1.2, label=f"start k = {start:g}")
    fixed = finals[finals["role"] == "fixed"]
    if not fixed.empty:
        best = float(fixed["padding_initial"].iloc[0])
        ax.axhline(best, color="tab:red", ls="--", lw=1.2, label=f"best fixed k = {best:g}")
    # The reference lines sit at the top or bottom edge; keep the legend off them.
    ax.margins(y=0.25)
    ax.legend(fontsize="small", ncols=2)
    return ax


def paired_differences(verdict: Verdict, ax: Axes | None = None) -> Axes:
    """Per-seed test MSE difference (learnable − fixed) with the mean and its 95% interval."""
    ax = _label(ax, "Paired test MSE difference by seed", "seed", "test MSE, learnable − fixed")
    if verdict.n == 0:
        return _no_data(ax, "no paired final runs")

    pairs = verdict.pairs
    positions = np.arange(len(pairs))
    ax.axhline(0, color="black", lw=0.8)
    ax.plot(positions, pairs["difference"], "o", color="tab:blue", ms=6, label="one seed")
    ax.axhline(verdict.mean, color="tab:orange", lw=2, label=f"mean {verdict.mean:+.4f}")
    if not math.isnan(verdict.low):
        ax.axhspan(verdict.low, verdict.high, color="tab:orange", alpha=0.2, label="95% interval")
    ax.set_xticks(positions, [str(s) for s in pairs["seed"]])
    ax.set_xlim(-0.5, len(pairs) - 0.5)
    ax.legend(fontsize="small")
    return ax


def _label(ax: Axes | None, title: str, xlabel: str, ylabel: str) -> Axes:
    ax = ax if ax is not None else new_axes()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def _no_data(ax: Axes, why: str) -> Axes:
    log.debug("plot '%s' has no data: %s", ax.get_title(), why)
    ax.text(
        0.5, 0.5, f"no data: {why}", transform=ax.transAxes, ha="center", va="center", color="0.4"
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _completed(trials: pd.DataFrame) -> pd.DataFrame:
    if trials.empty:
        return trials
    done = trials[(trials["state"] == "COMPLETE") & np.isfinite(trials["val_mse"].astype(float))]
    return done.astype({"padding": float, "val_mse": float})


def _head_order(hidden: pd.Series) -> list[str]:
    # By depth, then widths, so "10" < "50" < "10-5" rather than string order.
    parts = {h: str(h).split("-") for h in hidden.unique()}
    widths = {h: [int(p) if p.isdigit() else -1 for p in parts[h]] for h in parts}
    return sorted(parts, key=lambda h: (len(parts[h]), widths[h], str(h)))


def _ragged(curves: list[list[float]]) -> np.ndarray:
    out = np.full((len(curves), max(len(c) for c in curves)), np.nan)
    for i, curve in enumerate(curves):
        out[i, : len(curve)] = curve
    return out


def _thin(n: int) -> np.ndarray:
    # Every stride-th step, and always the last, so the line ends where training ended.
    stride = max(1, math.ceil(n / MAX_POINTS))
    return np.unique(np.r_[np.arange(0, n, stride), n - 1])


def _seq(value: object) -> list[float]:
    if isinstance(value, list | tuple | np.ndarray):
        return [float(v) for v in value]
    return []


def _role_label(finals: pd.DataFrame, role: str) -> str:
    if role == "learnable":
        return "learnable k (mean)"
    padding = finals.loc[finals["role"] == "fixed", "padding_initial"].iloc[0]
    return f"best fixed k = {padding:g} (mean)"
