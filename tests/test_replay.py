"""`minnet replay`: a stored trial trained again gives the very same validation MSE."""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import pytest
from conftest import write_ratings_csv
from test_workers import minnet_cmd, write_spec

from minnet import cli
from minnet import replay as replay_module
from minnet.storage import open_storage


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("replay") / "data"
    write_ratings_csv(root / "tiny")
    return root


@pytest.fixture(scope="module")
def studied(data_dir: Path) -> Path:
    tmp_path = data_dir.parent
    spec = write_spec(tmp_path, "rep", epochs=2, batch=32)
    run = minnet_cmd("run", str(spec), "--data-dir", str(data_dir), "--workers", "2")
    out = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return tmp_path / "results" / "rep"


def test_replay_is_bit_identical_whichever_worker_ran_the_trial(
    studied: Path, data_dir: Path
) -> None:
    store = open_storage(None, studied)
    trials = optuna.load_study(study_name="rep", storage=store).get_trials()
    first_of_each = {t.user_attrs["worker"]: t for t in reversed(trials)}
    assert len(first_of_each) == 2  # two workers ran trials

    for trial in first_of_each.values():
        out = subprocess.run(
            minnet_cmd("replay", str(studied), str(trial.number), "--data-dir", str(data_dir)),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        assert f"stored   valid MSE {trial.value!r}" in out.stdout
        assert f"replayed valid MSE {trial.value!r}" in out.stdout
        assert trial.user_attrs["worker"] in out.stdout and "identical" in out.stdout


def test_replay_that_differs_exits_1_printing_both_values(
    studied: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    real = replay_module.run_once

    def nudged(*args, **kwargs):  # type: ignore[no-untyped-def]
        run = real(*args, **kwargs)
        run.result.val_mse_per_epoch[-1] += 1e-9
        return run

    monkeypatch.setattr(replay_module, "run_once", nudged)
    code = cli.main(["replay", str(studied), "0", "--data-dir", str(data_dir)])

    out = capsys.readouterr()
    assert code == 1
    assert "replay of trial 0 differs from the stored result" in out.err
    stored, replayed = (line.split()[-1] for line in out.out.splitlines()[1:3])
    assert float(replayed) - float(stored) == pytest.approx(1e-9, rel=1e-3)


def test_replay_refuses_other_data_and_unknown_trials(
    studied: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    other = tmp_path / "other"
    write_ratings_csv(other / "tiny", seed=1)
    assert cli.main(["replay", str(studied), "0", "--data-dir", str(other)]) == 2
    assert "the ratings differ from the ones study 'rep' ran on" in capsys.readouterr().err

    assert cli.main(["replay", str(studied), "99"]) == 2
    assert "study 'rep' has no trial 99; its trials are 0 to 5" in capsys.readouterr().err
