"""The command line, end to end in a subprocess on temporary folders."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY_SPEC = """
[study]
name = "cli"
seed = 1
[data]
name = "tiny"
[training]
epochs = 2
batch_size = 32
[search]
padding = [0.0, 0.5]
hidden = [[4]]
[final]
seeds = 2
"""


def minnet(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minnet", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_train_json_reports_the_run(tmp_path: Path, data_dir: Path) -> None:
    out = minnet(
        "train",
        "--dataset",
        "tiny",
        "--data-dir",
        str(data_dir),
        "--epochs",
        "2",
        "--hidden",
        "8,4",
        "--learnable-padding",
        "0.3",
        "--json",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert len(result["val_mse_per_epoch"]) == 2
    assert result["val_mse"] == result["val_mse_per_epoch"][-1]
    assert result["hidden"] == [8, 4] and result["learnable_padding"] is True
    assert result["padding"] != 0.3  # it moved


def test_run_then_report_from_storage_alone(tmp_path: Path, data_dir: Path) -> None:
    spec = tmp_path / "cli.toml"
    spec.write_text(TINY_SPEC)
    out = minnet("run", str(spec), "--data-dir", str(data_dir), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "beat" in out.stdout and "report: results/cli/report.html" in out.stdout
    assert out.stderr.count("trial ") >= 2  # one log line per finished trial

    folder = tmp_path / "results" / "cli"
    (folder / "report.html").unlink()
    (folder / "trials.csv").unlink()
    out = minnet("report", str(folder), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (folder / "report.html").is_file() and (folder / "trials.csv").is_file()

    again = minnet("run", str(spec), "--data-dir", str(data_dir), cwd=tmp_path)
    assert again.returncode == 0 and "nothing to run" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nope.toml"], "nope.toml: no such spec file"),
        (["train", "--dataset", "missing", "--data-dir", "."], "dataset 'missing' not found"),
        (["train", "--hidden", "10,x"], "is not a list of widths"),
        (["train", "--epochs", "0"], "must be positive"),
        (["train", "--padding", "-3", "--dataset", "tiny"], "makes the output range empty"),
        (["report", "results/none"], "holds no study.journal"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, data_dir: Path, args: list[str], message: str
) -> None:
    if "tiny" in args:
        args = [*args, "--data-dir", str(data_dir)]
    out = minnet(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "results").exists()


def test_train_sparse_mode_and_synthetic_data(tmp_path: Path) -> None:
    out = minnet(
        "train", "--dataset", "synthetic", "--epochs", "1", "--sparse", "--json", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["sparse"] is True and result["rows"]["valid"] == 20_000
    assert 0.3 < result["val_mse"] < 3.0


def test_data_fetch_offline_says_where_to_put_the_files(tmp_path: Path) -> None:
    env = {**os.environ, "MINNET_MOVIELENS_URL": "http://127.0.0.1:9/"}  # discard port: refused
    out = subprocess.run(
        [sys.executable, "-m", "minnet", "data", "fetch", "ml-100k", "--data-dir", "d"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 2
    assert "ml-100k" in out.stderr and str(Path("d") / "ml-100k") in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()  # no empty data directory left behind


def test_help_explains_every_flag(tmp_path: Path) -> None:
    out = minnet("train", "--help", cwd=tmp_path)
    assert out.returncode == 0
    for flag in (
        "--dataset",
        "--data-dir",
        "--padding",
        "--learnable-padding",
        "--hidden",
        "--epochs",
        "--seed",
        "--json",
    ):
        assert flag in out.stdout
