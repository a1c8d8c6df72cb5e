"""The study report: tables as CSV, figures as PNG, and the story in Markdown and HTML.

The content is built once as a list of blocks (heading, paragraph, table, figure, facts)
and rendered twice, so the Markdown and the HTML say the same thing. Everything is
rendered into a staging directory next to the output and moved into place only when all
of it succeeded: a failed plot never leaves a report that points at missing figures.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from minnet import plots
from minnet.errors import MinnetError
from minnet.initial import parse_hidden
from minnet.summary import FINAL_COLUMNS, TRIAL_COLUMNS, StudySummary
from minnet.verdict import Verdict, head_label, judge, signed

log = logging.getLogger(__name__)

TOP_TRIALS = 10
STATES = ("COMPLETE", "PRUNED", "FAIL")
CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.5; }
h1, h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.verdict { background: #f4f7fb; border-left: 4px solid #3870b0; padding: .6rem 1rem; }
table { border-collapse: collapse; margin: .8rem 0; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; } img { max-width: 100%; } figcaption { color: #555; }
code, pre { background: #f5f5f5; font-size: .9em; } pre { padding: .5rem; overflow-x: auto; }
"""
NUMBER = re.compile(r"^[+\-\N{MINUS SIGN}]?\d[\d.,e+\-]*$")
MD_SPECIAL = re.compile(r"([\\`*_<>|])")


@dataclass(frozen=True)
class Plot:
    function: str  # in minnet.plots; looked up when drawing, so a test can replace one
    source: str  # what it draws: "trials", "finals" or "verdict"
    caption: str

    @property
    def file(self) -> str:
        return f"{self.function}.png"


PLOTS = (
    Plot("best_so_far", "trials", "Best validation MSE so far"),
    Plot("mse_vs_padding", "trials", "Validation MSE against padding k"),
    Plot("spread_by_head", "trials", "Validation MSE by head shape"),
    Plot("learning_curves", "finals", "Learning curves of the final runs"),
    Plot("padding_trajectory", "finals", "Learnable k during training"),
    Plot("paired_differences", "verdict", "Paired test MSE differences"),
)

Block = tuple[str, Any]


def write_report(summary: StudySummary, out_dir: Path) -> Path:
    """Write the CSV tables, the figures, ``report.md`` and ``report.html`` into ``out_dir``.

    Files of an earlier report in ``out_dir`` are replaced; other files are left alone.

    Args:
        summary: the finished (or partly finished) study.
        out_dir: the folder to write into; created if missing.

    Returns:
        The path of ``report.md``.

    Raises:
        MinnetError: a table lacks columns listed in ``minnet.summary``.
    """
    out_dir = Path(out_dir)
    summary = _conformed(summary)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        _render(summary, staging)
        _publish(staging, out_dir)
    finally:
        shutil.rmtree(staging)

    log.info("report of study '%s' written to %s", summary.name, out_dir)
    return out_dir / "report.md"


def ranked_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Completed trials with a finite validation MSE, best first; pruned and failed never rank."""
    if trials.empty:
        return trials
    done = trials[(trials["state"] == "COMPLETE") & np.isfinite(trials["val_mse"].astype(float))]
    return done.sort_values(["val_mse", "number"], kind="stable")


def _conformed(summary: StudySummary) -> StudySummary:
    frames = []
    for what, frame, columns, spec in (
        ("trials", summary.trials, TRIAL_COLUMNS, "TRIAL_COLUMNS"),
        ("finals", summary.finals, FINAL_COLUMNS, "FINAL_COLUMNS"),
    ):
        missing = [c for c in columns if c not in frame.columns]
        if missing and not frame.empty:
            raise MinnetError(
                f"summary.{what} of study '{summary.name}' lacks column(s) {', '.join(missing)}; "
                f"build it with the columns in minnet.summary.{spec}"
            )
        frames.append(frame.reindex(columns=list(columns)) if missing else frame)
    return StudySummary(summary.name, frames[0], frames[1], dict(summary.facts))


def _render(summary: StudySummary, staging: Path) -> None:
    verdict = judge(summary.finals)
    (staging / "plots").mkdir()
    sources = {"trials": summary.trials, "finals": summary.finals, "verdict": verdict}
    for plot in PLOTS:
        ax = getattr(plots, plot.function)(sources[plot.source])
        ax.figure.savefig(staging / "plots" / plot.file)
        log.debug("drew %s", plot.file)

    _csv(summary.trials).to_csv(staging / "trials.csv", index=False)
    _csv(summary.finals).to_csv(staging / "finals.csv", index=False)
    blocks = _blocks(summary, verdict)
    (staging / "report.md").write_text(_markdown(blocks), encoding="utf-8")
    (staging / "report.html").write_text(_html(blocks, summary.name, staging), encoding="utf-8")


def _publish(staging: Path, out_dir: Path) -> None:
    # Figures first and the reports last, so a report never points at a figure not yet there.
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    for plot in PLOTS:
        os.replace(staging / "plots" / plot.file, out_dir / "plots" / plot.file)
    for name in ("trials.csv", "finals.csv", "report.md", "report.html"):
        os.replace(staging / name, out_dir / name)


def _csv(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, list | tuple | np.ndarray)).any():
            out[column] = out[column].map(_json)
    return out


def _json(value: object) -> str:
    items = list(value) if isinstance(value, list | tuple | np.ndarray) else []
    # Strict JSON has no NaN: a diverged epoch becomes null.
    return json.dumps([float(v) if np.isfinite(v) else None for v in np.asarray(items, float)])


# content


def _blocks(summary: StudySummary, verdict: Verdict) -> list[Block]:
    trials, ranked = summary.trials, ranked_trials(summary.trials)
    blocks: list[Block] = [
        ("h1", f"Mini Net study: {summary.name}"),
        ("verdict", verdict.sentence),
    ]

    blocks += [("h2", "Study overview"), ("items", _overview(trials, verdict, summary.facts))]
    blocks += [("h2", f"Top {TOP_TRIALS} completed trials")]
    if len(ranked):
        blocks += [("table", _trial_table(ranked.head(TOP_TRIALS)))]
        note = _early_note(ranked)
        if note:
            blocks += [("p", note)]
    else:
        blocks += [("p", "No trial completed.")]
    failed = trials[trials["state"] == "FAIL"]
    if len(failed):
        blocks += [("h2", "Failed trials"), ("table", _failure_table(failed.head(TOP_TRIALS)))]
    if len(failed) > TOP_TRIALS:
        blocks += [("p", f"The first {TOP_TRIALS} of {len(failed)} failures; trials.csv has all.")]

    blocks += [("h2", "Best fixed k"), ("p", _best_sentence(ranked))]
    blocks += [("h2", "Final comparison"), ("p", _final_sentence(verdict))]
    if verdict.n:
        blocks += [("table", _pair_table(verdict.pairs))]

    blocks += [("h2", "Plots")] + [("figure", (p.caption, f"plots/{p.file}")) for p in PLOTS]
    blocks += [("h2", "Reproducibility")]
    blocks += [("facts", summary.facts)] if summary.facts else [("p", "No facts were recorded.")]
    return blocks


def _overview(trials: pd.DataFrame, verdict: Verdict, facts: dict[str, Any]) -> list[str]:
    counts = trials["state"].value_counts()
    states = [f"{counts.get(s, 0)} {s}" for s in STATES]
    states += [f"{n} {s}" for s, n in counts.items() if s not in STATES]
    shapes = sorted(trials["hidden"].dropna().unique(), key=_shape_order)
    heads = ", ".join(head_label(h) for h in shapes)
    lines = [
        f"{len(trials)} trials: {', '.join(states)}",
        f"head shapes searched: {heads or 'none'}",
        f"final comparison: {verdict.n} paired seed{'s' if verdict.n != 1 else ''}",
    ]
    if facts.get("cold_rows"):
        lines.append(f"split: {facts['cold_rows']}")
    noise = facts.get("noise_mse")
    best = trials.loc[trials["state"] == "COMPLETE", "val_mse"].min()
    if noise is not None and pd.notna(best):
        lines.append(
            f"synthetic data: the best achievable MSE is {noise:.4f} (its known noise); "
            f"the best trial is {best - noise:.4f} above it"
        )
    return lines


def _trial_table(ranked: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": range(1, len(ranked) + 1),
            "trial": ranked["number"].astype(int),
            "head": ranked["hidden"].map(head_label),
            "k": ranked["padding"].map(lambda x: f"{x:.3f}"),
            "val MSE": ranked["val_mse"].map(lambda x: f"{x:.4f}"),
            "epochs": ranked["val_mse_per_epoch"].map(lambda c: len(_curve(c))),
            "best epoch": ranked["val_mse_per_epoch"].map(_best_epoch),
            "seconds": ranked["seconds"].map(lambda x: f"{x:.1f}"),
        }
    )


def _shape_order(key: Any) -> tuple[int, ...]:
    """Sort head shapes by their widths: [10], [10, 10], [50], [50, 25], [100]."""
    try:
        return parse_hidden(str(key))
    except ValueError:
        return ()


def _curve(curve: Any) -> list[float]:
    return list(curve) if isinstance(curve, list | tuple | np.ndarray) else []


def _best_epoch(curve: Any) -> int:
    """The epoch (from 1) with the lowest validation MSE; 0 for no curve."""
    values = _curve(curve)
    return int(np.argmin(values)) + 1 if values else 0


def _early_note(ranked: pd.DataFrame) -> str | None:
    """Say so when most trials were best before their last epoch: the score is the last."""
    curves = [_curve(c) for c in ranked["val_mse_per_epoch"]]
    early = sum(1 for c in curves if c and _best_epoch(c) < len(c))
    if not curves or early * 2 <= len(curves):
        return None
    return (
        f"{early} of {len(curves)} completed trials reached their lowest validation MSE before "
        "the last epoch, but trials are scored at the last epoch, as in the lesson: fewer "
        "[training] epochs may serve them better."
    )


def _failure_table(failed: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trial": failed["number"].astype(int),
            "head": failed["hidden"].map(head_label),
            "k": failed["padding"].map(lambda x: f"{x:.3f}"),
            "reason": failed["fail_reason"].fillna("").astype(str),
        }
    )


def _pair_table(pairs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "seed": pairs["seed"].astype(int),
            "fixed test MSE": pairs["fixed"].map(lambda x: f"{x:.4f}"),
            "learnable test MSE": pairs["learnable"].map(lambda x: f"{x:.4f}"),
            "learnable − fixed": pairs["difference"].map(signed),
            "final k": pairs["padding_final"].map(lambda x: f"{x:.3f}"),
        }
    )


def _best_sentence(ranked: pd.DataFrame) -> str:
    if ranked.empty:
        return (
            "No trial completed, so there is no best fixed k yet; "
            "pruned and failed trials never count."
        )
    best = ranked.iloc[0]
    sentence = (
        f"Head {head_label(best['hidden'])} with k = {best['padding']:.3f}: validation MSE "
        f"{best['val_mse']:.4f} in trial {int(best['number'])}, "
        f"the best of {len(ranked)} completed trials."
    )
    tried = ranked["padding"]
    if tried.nunique() > 2 and best["padding"] in (tried.min(), tried.max()):
        side = "largest" if best["padding"] == tried.max() else "smallest"
        sentence += (
            f" It is the {side} padding tried, so the best k may lie beyond it: "
            "widen [search] padding to find out."
        )
    return sentence


def _final_sentence(verdict: Verdict) -> str:
    if verdict.n == 0:
        return verdict.sentence
    if verdict.n == 1:
        return (
            f"One paired seed: learnable − fixed is {signed(verdict.mean)}; "
            "an interval needs at least two seeds."
        )
    return (
        f"Over {verdict.n} paired seeds the difference learnable − fixed has mean "
        f"{signed(verdict.mean)}, "
        f"sample standard deviation {verdict.std:.4f}, and 95% Student-t interval "
        f"{signed(verdict.low)} to {signed(verdict.high)}."
    )


# markdown


def _markdown(blocks: list[Block]) -> str:
    parts = []
    for kind, value in blocks:
        if kind in ("h1", "h2"):
            parts.append(f"{'#' * int(kind[1])} {_md(value)}")
        elif kind == "verdict":
            parts.append(f"**Verdict.** {_md(value)}")
        elif kind == "p":
            parts.append(_md(value))
        elif kind == "items":
            parts.append("\n".join(f"- {_md(item)}" for item in value))
        elif kind == "table":
            parts.append(_md_table(value))
        elif kind == "figure":
            parts.append(f"![{_md(value[0])}]({value[1]})")
        elif kind == "facts":
            parts.append("\n".join(_md_facts(value, 0)))
    return "\n\n".join(parts) + "\n"


def _md(text: object) -> str:
    return MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _md_code(text: object) -> str:
    text = str(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_table(frame: pd.DataFrame) -> str:
    right = [_numeric(frame[c]) for c in frame.columns]
    lines = [
        "| " + " | ".join(_md(c) for c in frame.columns) + " |",
        "| " + " | ".join("---:" if r else "---" for r in right) + " |",
    ]
    lines += [
        "| " + " | ".join(_md(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def _md_facts(facts: dict[str, Any], depth: int) -> list[str]:
    indent = "  " * depth
    lines = []
    for key, value in facts.items():
        if isinstance(value, dict) and value:
            lines.append(f"{indent}- {_md_code(key)}:")
            lines += _md_facts(value, depth + 1)
        elif isinstance(value, str) and "\n" in value:
            fence = "`" * max(3, max((len(r) for r in re.findall("`+", value)), default=0) + 1)
            block = "\n".join(f"{indent}  {line}" for line in [fence, *value.splitlines(), fence])
            lines.append(f"{indent}- {_md_code(key)}:\n\n{block}\n")
        else:
            lines.append(f"{indent}- {_md_code(key)}: {_md_code(_scalar(value))}")
    return lines


# html


def _html(blocks: list[Block], name: str, staging: Path) -> str:
    body = []
    for kind, value in blocks:
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{_esc(value)}</{kind}>")
        elif kind == "verdict":
            body.append(f'<p class="verdict"><strong>Verdict.</strong> {_esc(value)}</p>')
        elif kind == "p":
            body.append(f"<p>{_esc(value)}</p>")
        elif kind == "items":
            body.append("<ul>" + "".join(f"<li>{_esc(item)}</li>" for item in value) + "</ul>")
        elif kind == "table":
            body.append(_html_table(value))
        elif kind == "figure":
            data = base64.b64encode((staging / value[1]).read_bytes()).decode("ascii")
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(value[0])}">'
                f"<figcaption>{_esc(value[0])}</figcaption></figure>"
            )
        elif kind == "facts":
            body.append(_html_facts(value))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Mini Net study: {_esc(name)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _html_table(frame: pd.DataFrame) -> str:
    cls = [' class="num"' if _numeric(frame[c]) else "" for c in frame.columns]
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td{k}>{_esc(v)}</td>" for k, v in zip(cls, row, strict=True)) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _html_facts(facts: dict[str, Any]) -> str:
    items = []
    for key, value in facts.items():
        if isinstance(value, dict) and value:
            inner = _html_facts(value)
        elif isinstance(value, str) and "\n" in value:
            inner = f"<pre>{_esc(value)}</pre>"
        else:
            inner = f"<code>{_esc(_scalar(value))}</code>"
        items.append(f"<li><code>{_esc(key)}</code>: {inner}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _scalar(value: object) -> str:
    if isinstance(value, list | tuple):
        return json.dumps(list(value), default=str)
    return str(value)


def _numeric(column: pd.Series) -> bool:
    return bool(len(column)) and all(NUMBER.match(str(v)) for v in column)
