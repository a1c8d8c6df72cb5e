from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from summary_rows import FINALS, PNG_MAGIC, TRIALS, final

from minnet import plots
from minnet.summary import FINAL_COLUMNS, TRIAL_COLUMNS
from minnet.verdict import judge

NO_TRIALS = pd.DataFrame(columns=list(TRIAL_COLUMNS))
NO_FINALS = pd.DataFrame(columns=list(FINAL_COLUMNS))

DrawCall = Callable[[], Axes]
WITH_DATA: list[tuple[str, DrawCall]] = [
    ("best_so_far", lambda: plots.best_so_far(TRIALS)),
    ("mse_vs_padding", lambda: plots.mse_vs_padding(TRIALS)),
    ("spread_by_head", lambda: plots.spread_by_head(TRIALS)),
    ("learning_curves", lambda: plots.learning_curves(FINALS)),
    ("padding_trajectory", lambda: plots.padding_trajectory(FINALS)),
    ("paired_differences", lambda: plots.paired_differences(judge(FINALS))),
]
FAILED_ONLY = TRIALS[TRIALS["state"] != "COMPLETE"]
WITHOUT_DATA: list[tuple[str, DrawCall]] = [
    ("best_so_far", lambda: plots.best_so_far(FAILED_ONLY)),
    ("mse_vs_padding", lambda: plots.mse_vs_padding(NO_TRIALS)),
    ("spread_by_head", lambda: plots.spread_by_head(pd.DataFrame())),
    ("learning_curves", lambda: plots.learning_curves(NO_FINALS)),
    ("padding_trajectory", lambda: plots.padding_trajectory(pd.DataFrame())),
    ("paired_differences", lambda: plots.paired_differences(judge(pd.DataFrame()))),
]


def png_bytes(ax: Axes) -> bytes:
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png")
    return buffer.getvalue()


def texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


@pytest.mark.parametrize(("name", "draw"), WITH_DATA, ids=[n for n, _ in WITH_DATA])
def test_plot_is_labelled_and_renders_to_png(name: str, draw: DrawCall) -> None:
    ax = draw()

    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert not any(t.startswith("no data") for t in texts(ax))
    assert png_bytes(ax).startswith(PNG_MAGIC)


@pytest.mark.parametrize(("name", "draw"), WITHOUT_DATA, ids=[n for n, _ in WITHOUT_DATA])
def test_plot_without_data_says_so(name: str, draw: DrawCall) -> None:
    ax = draw()

    assert any(t.startswith("no data") for t in texts(ax))
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert png_bytes(ax).startswith(PNG_MAGIC)


def test_plot_draws_on_the_axes_it_is_given() -> None:
    ax = plots.new_axes()

    assert plots.best_so_far(TRIALS, ax=ax) is ax
    assert len(ax.figure.axes) == 1


def test_best_so_far_steps_through_completed_trials_only() -> None:
    ax = plots.best_so_far(TRIALS)

    dots, step = ax.lines
    assert list(dots.get_xdata()) == [0, 1, 3, 5, 6]
    assert list(step.get_ydata()) == pytest.approx([0.82, 0.82, 0.80, 0.80, 0.80])


def test_mse_vs_padding_has_one_sorted_series_per_head_and_the_lesson_line() -> None:
    ax = plots.mse_vs_padding(TRIALS)

    series = {line.get_label(): line for line in ax.lines}
    assert set(series) == {"head [10]", "head [50]", "head [50, 25]", "lesson's k = 0.5"}
    assert list(series["head [10]"].get_xdata()) == [0.3, 0.5, 0.9]
    assert list(series["head [10]"].get_ydata()) == [0.85, 0.80, 0.82]
    assert list(series["lesson's k = 0.5"].get_xdata()) == [0.5, 0.5]


def test_spread_by_head_orders_heads_by_depth_then_width() -> None:
    ax = plots.spread_by_head(TRIALS)

    assert [t.get_text() for t in ax.get_xticklabels()] == ["[10]", "[50]", "[50, 25]"]


def test_learning_curves_draw_each_seed_and_the_mean() -> None:
    ax = plots.learning_curves(FINALS)

    labelled = {
        line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")
    }
    assert set(labelled) == {"best fixed k = 0.5 (mean)", "learnable k (mean)"}
    assert list(labelled["learnable k (mean)"].get_ydata()) == pytest.approx(
        [0.8975, 0.8175, 0.7975]
    )
    assert len(ax.lines) == 6


def test_padding_trajectory_has_a_line_per_seed_and_both_references() -> None:
    ax = plots.padding_trajectory(FINALS)

    labels = [line.get_label() for line in ax.lines]
    assert labels == ["seed 1", "seed 2", "start k = 0.5", "best fixed k = 0.5"]
    assert list(ax.lines[1].get_ydata()) == [0.5, 0.52, 0.58]


def test_long_padding_trace_is_thinned_but_keeps_its_last_step() -> None:
    trace = list(np.linspace(0.5, 0.7, 10_001))
    ax = plots.padding_trajectory(pd.DataFrame([final("learnable", 0, 0.8, trace)]))

    line = ax.lines[0]
    assert len(line.get_xdata()) <= plots.MAX_POINTS + 1
    assert line.get_xdata()[-1] == 10_001
    assert line.get_ydata()[-1] == pytest.approx(0.7)


def test_paired_differences_marks_each_seed_and_the_mean() -> None:
    verdict = judge(FINALS)
    ax = plots.paired_differences(verdict)

    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]
    points = next(line for line in ax.lines if line.get_label() == "one seed")
    assert list(points.get_ydata()) == pytest.approx([-0.01, -0.005])
    assert f"mean {verdict.mean:+.4f}" in [line.get_label() for line in ax.lines]
