from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest
from matplotlib.axes import Axes
from summary_rows import FINALS, PNG_MAGIC, TRIALS

from minnet import plots, report
from minnet.errors import MinnetError
from minnet.report import PLOTS, ranked_trials, write_report
from minnet.summary import StudySummary
from minnet.verdict import judge

FACTS = {
    "seed": 1234,
    "split_sha256": "5p1i7" * 4,
    "data_sha256": "da7a" * 5,
    "init_sha256": {"10": "1111aaaa", "50-25": "2222bbbb"},
    "versions": {"torch": "2.5.1", "optuna": "4.1.0"},
    "spec": {"name": "demo", "hidden": [[10], [50, 25]], "train": {"epochs": 6}},
    "notes": "first line\nsecond line",
}


def summary(name: str = "demo", finals: pd.DataFrame = FINALS) -> StudySummary:
    return StudySummary(name=name, trials=TRIALS.copy(), finals=finals.copy(), facts=FACTS)


def test_writes_every_file_and_returns_the_markdown(tmp_path: Path) -> None:
    out = tmp_path / "results" / "demo"

    path = write_report(summary(), out)

    assert path == out / "report.md"
    assert sorted(p.name for p in out.iterdir()) == [
        "finals.csv",
        "plots",
        "report.html",
        "report.md",
        "trials.csv",
    ]
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(
        f"{name}.png"
        for name in (
            "best_so_far",
            "mse_vs_padding",
            "spread_by_head",
            "learning_curves",
            "padding_trajectory",
            "paired_differences",
        )
    )
    for png in (out / "plots").iterdir():
        assert png.read_bytes().startswith(PNG_MAGIC)
        height, width, _ = mpimg.imread(png).shape
        assert height > 300 and width > 500
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["demo"]  # no staging left


def test_pruned_and_failed_trials_never_rank() -> None:
    ranked = ranked_trials(TRIALS)

    assert list(ranked["number"]) == [3, 6, 0, 5, 1]
    assert set(ranked["state"]) == {"COMPLETE"}


def test_markdown_opens_with_the_verdict_and_names_the_best_trial(tmp_path: Path) -> None:
    md = write_report(summary(), tmp_path / "out").read_text(encoding="utf-8")

    verdict = judge(FINALS).sentence
    assert md.index(verdict) < md.index("## Study overview")
    assert "7 trials: 5 COMPLETE, 1 PRUNED, 1 FAIL" in md
    assert "Head [10] with k = 0.500: validation MSE 0.8000 in trial 3" in md
    assert "| 1 | 3 | [10] | 0.500 | 0.8000 | 2 | 2 | 1.0 |" in md
    assert "| 5 | 1 | [10] | 0.300 | 0.8500 | 2 | 2 | 1.0 |" in md
    assert not re.search(r"^\| \d+ \| [24] \|", md, re.M), (
        "a pruned or failed trial is in the top table"
    )
    assert "| 1 | 0.8000 | 0.7900 | \N{MINUS SIGN}0.0100 | 0.600 |" in md
    assert "![Best validation MSE so far](plots/best_so_far.png)" in md
    assert "| 4 | [50] | 0.700 | loss is nan \\<at step 3\\> |" in md


def test_markdown_lists_the_reproducibility_facts(tmp_path: Path) -> None:
    md = write_report(summary(), tmp_path / "out").read_text(encoding="utf-8")

    facts = md[md.index("## Reproducibility") :]
    for line in (
        "- `seed`: `1234`",
        f"- `split_sha256`: `{FACTS['split_sha256']}`",
        f"- `data_sha256`: `{FACTS['data_sha256']}`",
        "  - `50-25`: `2222bbbb`",
        "  - `torch`: `2.5.1`",
        "  - `hidden`: `[[10], [50, 25]]`",
        "    - `epochs`: `6`",
        "  ```\n  first line\n  second line\n  ```",
    ):
        assert line in facts


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_report(summary(name="<b>study</b> & co"), out)

    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'src="http' not in page and "<link" not in page and "<script" not in page
    assert page.count('src="data:image/png;base64,') == len(PLOTS)
    assert "<h1>Mini Net study: &lt;b&gt;study&lt;/b&gt; &amp; co</h1>" in page
    assert "<b>study</b>" not in page
    assert "<td>loss is nan &lt;at step 3&gt;</td>" in page
    assert judge(FINALS).sentence in page
    assert "<td>2222bbbb</td>" not in page and "<code>2222bbbb</code>" in page


def test_list_columns_are_written_as_json(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_report(summary(), out)

    trials = pd.read_csv(out / "trials.csv")
    finals = pd.read_csv(out / "finals.csv")
    assert json.loads(trials.loc[0, "val_mse_per_epoch"]) == pytest.approx([0.87, 0.82])
    assert json.loads(finals.loc[1, "padding_trace"]) == [0.5, 0.55, 0.6]
    assert json.loads(finals.loc[0, "padding_trace"]) == []
    assert list(trials["number"]) == list(TRIALS["number"])


def test_report_before_the_final_comparison_says_it_has_not_run(tmp_path: Path) -> None:
    out = tmp_path / "out"

    md = write_report(summary(finals=pd.DataFrame()), out).read_text(encoding="utf-8")

    assert "**Verdict.** The final comparison of fixed and learnable k has not run yet." in md
    assert (out / "plots" / "paired_differences.png").read_bytes().startswith(PNG_MAGIC)
    assert pd.read_csv(out / "finals.csv").empty


def test_failed_plot_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> Axes:
        raise RuntimeError("plot broke")

    monkeypatch.setattr(plots, "paired_differences", broken)

    with pytest.raises(RuntimeError, match="plot broke"):
        write_report(summary(), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_previous_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write_report(summary(name="first"), out)
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    monkeypatch.setattr(report, "_html", lambda *args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_report(summary(name="second"), out)

    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_rewrite_replaces_report_files_and_keeps_other_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_report(summary(name="first"), out)
    (out / "notes.txt").write_text("mine", encoding="utf-8")

    write_report(summary(name="second"), out)

    assert "# Mini Net study: second" in (out / "report.md").read_text(encoding="utf-8")
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_trials_missing_a_column_is_an_error(tmp_path: Path) -> None:
    broken = StudySummary("demo", TRIALS.drop(columns=["padding"]), FINALS)

    with pytest.raises(MinnetError, match="lacks column\\(s\\) padding"):
        write_report(broken, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_study_without_completed_trials_has_no_best(tmp_path: Path) -> None:
    unfinished = TRIALS[TRIALS["state"] != "COMPLETE"]

    md = write_report(StudySummary("demo", unfinished, pd.DataFrame()), tmp_path / "out")

    text = md.read_text(encoding="utf-8")
    assert "2 trials: 0 COMPLETE, 1 PRUNED, 1 FAIL" in text
    assert "No trial completed, so there is no best fixed k yet" in text
    assert "No facts were recorded." in text


def test_best_k_at_the_edge_of_the_grid_is_flagged(tmp_path: Path) -> None:
    edge = TRIALS.copy()
    edge.loc[edge["number"] == 0, "val_mse"] = 0.70  # k = 0.9, the largest tried
    write_report(StudySummary("edge", edge, FINALS, FACTS), tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "with k = 0.900" in text and "It is the largest padding tried" in text

    write_report(StudySummary("inner", TRIALS, FINALS, FACTS), tmp_path / "inner")
    assert "padding tried" not in (tmp_path / "inner" / "report.md").read_text()


def test_head_shapes_are_listed_by_width(tmp_path: Path) -> None:
    shapes = TRIALS.copy()
    shapes["hidden"] = ["100", "10", "50-25", "10-10", "50", "10", "100"]
    write_report(StudySummary("order", shapes, FINALS, FACTS), tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "head shapes searched: [10], [10, 10], [50], [50, 25], [100]" in text
