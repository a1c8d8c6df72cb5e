"""Inputs found to break earlier versions: each must end in one clear line, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import minnet

from minnet.errors import MinnetError
from minnet.model import check_padding
from minnet.spec import spec_from_dict
from minnet.storage import redact
from minnet.study import run_study
from minnet.train import TrainConfig, TrainingDiverged

TINY = {
    "study": {"name": "t", "seed": 3},
    "data": {"name": "tiny"},
    "training": {"epochs": 1, "batch_size": 32},
    "search": {"padding": [0.0, 0.5], "hidden": [[4]]},
    "final": {"seeds": 1},
}


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql://postgres:hun@ter2secret@127.0.0.1:1/x", "ter2secret"),
        ("postgresql://127.0.0.1:1/x?password=qsecret&user=u", "qsecret"),
        ("mysql://u:plain@h/db?sslmode=x&PASSWORD=zz", "zz"),
    ],
)
def test_passwords_are_redacted_wherever_they_hide(url: str, secret: str) -> None:
    assert secret not in redact(url) and "***" in redact(url)


@pytest.mark.parametrize("padding", [1e300, float("nan"), float("inf"), -2.25])
def test_absurd_paddings_are_refused_before_training(padding: float) -> None:
    with pytest.raises(MinnetError, match="padding"):
        check_padding(padding, (0.5, 5.0))


def test_runaway_learnable_padding_fails_the_run(tmp_path: Path, data_dir: Path) -> None:
    from minnet.runs import train_on_release

    with pytest.raises(TrainingDiverged):
        train_on_release(
            "tiny", str(data_dir), learnable=True, config=TrainConfig(epochs=2, lr=1e6)
        )


def test_damaged_journal_is_one_line_and_not_made_worse(tmp_path: Path, data_dir: Path) -> None:
    run_study(spec_from_dict(TINY), tmp_path / "results", data_dir=data_dir)
    journal = tmp_path / "results" / "t" / "study.journal"
    text = journal.read_bytes()
    journal.write_bytes(text[: len(text) // 2])  # cut mid-record
    damaged = journal.read_bytes()

    spec = tmp_path / "t.toml"
    spec.write_text(
        '[study]\nname = "t"\nseed = 3\n[data]\nname = "tiny"\n[training]\nepochs = 1\n'
        "batch_size = 32\n[search]\npadding = [0.0, 0.5]\nhidden = [[4]]\n[final]\nseeds = 1\n"
    )
    for args in (["run", str(spec), "--data-dir", str(data_dir)], ["report", "results/t"]):
        out = minnet(*args, cwd=tmp_path)
        assert out.returncode == 2, out.stderr
        assert "study journal is damaged" in out.stderr and "Traceback" not in out.stderr
    assert journal.read_bytes() == damaged

    out = minnet("studies", cwd=tmp_path)
    assert "damaged" in out.stderr and "Traceback" not in out.stderr


def test_results_dir_that_is_a_file_is_refused(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(MinnetError, match="is a file, not a folder"):
        run_study(spec_from_dict(TINY), tmp_path / "results", data_dir=data_dir)
    assert (tmp_path / "results").read_text() == "not a folder"


def test_unwritable_results_dir_leaves_nothing(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(
        MinnetError, match="cannot open the study journal.*give --results-dir a writable"
    ):
        run_study(spec_from_dict(TINY), "/proc/minnet-results", data_dir=data_dir)


def test_report_on_a_final_comparison_is_refused(tmp_path: Path, data_dir: Path) -> None:
    run_study(spec_from_dict(TINY), tmp_path / "results", data_dir=data_dir)
    before = (tmp_path / "results" / "t" / "report.md").read_text()
    out = minnet("report", "results/t", "--study", "t.final", cwd=tmp_path)
    assert out.returncode == 2 and "is the final comparison of study 't'" in out.stderr
    assert (tmp_path / "results" / "t" / "report.md").read_text() == before


def test_spelling_out_a_default_is_not_a_changed_spec(tmp_path: Path, data_dir: Path) -> None:
    run_study(spec_from_dict(TINY), tmp_path, data_dir=data_dir)
    explicit = {**TINY, "final": {"seeds": 1, "learnable_padding_init": 0.5}}
    summary = run_study(spec_from_dict(explicit), tmp_path, data_dir=data_dir)
    assert len(summary.trials) == 2
