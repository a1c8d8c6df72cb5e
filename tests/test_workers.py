"""Parallel workers, crash recovery and exact grids on the default (journal file) storage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from minnet import objective as objective_module
from minnet.liveness import HEARTBEAT_KEY
from minnet.spec import spec_from_dict
from minnet.storage import open_storage
from minnet.study import run_study
from minnet.tickets import params_of
from minnet.train import TrainingDiverged

SPEC = """
[study]
name = "{name}"
seed = 5
{study}
[data]
name = "tiny"
[training]
epochs = {epochs}
batch_size = {batch}
[search]
padding = {paddings}
hidden = {hidden}
[final]
seeds = 0
"""


def write_spec(folder: Path, name: str, epochs: int = 1, batch: int = 64, **kw: str) -> Path:
    text = SPEC.format(
        name=name,
        study=kw.get("study", ""),
        epochs=epochs,
        batch=batch,
        paddings=kw.get("paddings", "[0.0, 0.25, 0.5]"),
        hidden=kw.get("hidden", "[[4], [8, 4]]"),
    )
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def minnet_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "minnet", *args]


def trials(storage: optuna.storages.BaseStorage, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def point(t: optuna.trial.FrozenTrial) -> tuple[float, str]:
    p = params_of(t)
    return (float(p["padding"]), str(p["hidden"]))


def wait_for_running(storage: optuna.storages.BaseStorage, name: str, pid_not: int = 0) -> dict:
    """The heartbeat of a trial running in a process other than ``pid_not``, once one runs."""
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            time.sleep(0.2)
            continue
        done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            beat = t.system_attrs.get(HEARTBEAT_KEY)
            if done and beat and beat["pid"] != pid_not:
                return {"number": t.number, **beat}
        time.sleep(0.1)
    raise AssertionError("no trial started running within 120 s")


def check_exact_grid(
    all_trials: list[optuna.trial.FrozenTrial], n_trials: int, killed: int
) -> None:
    complete = [t for t in all_trials if t.state.name == "COMPLETE"]
    assert len(complete) == n_trials
    assert max(Counter(point(t) for t in complete).values()) == 1  # no grid point twice
    victim = next(t for t in all_trials if t.number == killed)
    assert victim.state.name == "FAIL"
    assert victim.user_attrs["fail_kind"] == "dead"
    assert "is gone" in victim.user_attrs["fail_reason"]
    rerun = [t for t in complete if t.user_attrs.get("retry_of") == killed]
    assert len(rerun) == 1 and point(rerun[0]) == point(victim)


def test_sigkill_mid_trial_then_resume_runs_every_grid_point_once(
    tmp_path: Path, data_dir: Path
) -> None:
    spec = write_spec(tmp_path, "kill", epochs=4, batch=4)
    run = minnet_cmd("run", str(spec), "--data-dir", str(data_dir))
    proc = subprocess.Popen(run, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    store = open_storage(None, tmp_path / "results" / "kill")

    victim = wait_for_running(store, "kill")
    assert victim["pid"] == proc.pid
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    again = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"trial {victim['number']} failed: its worker (pid {proc.pid}" in again.stderr
    check_exact_grid(trials(store, "kill"), 6, victim["number"])

    third = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "nothing to run" in third.stderr
    assert len(trials(store, "kill")) == 7  # 6 complete + the killed one


def test_surviving_worker_reruns_a_killed_workers_trial(tmp_path: Path, data_dir: Path) -> None:
    spec = write_spec(tmp_path, "kill2", epochs=4, batch=4)
    run = minnet_cmd("run", str(spec), "--data-dir", str(data_dir), "--workers", "2")
    proc = subprocess.Popen(run, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    store = open_storage(None, tmp_path / "results" / "kill2")

    victim = wait_for_running(store, "kill2", pid_not=proc.pid)
    os.kill(victim["pid"], signal.SIGKILL)
    _, err = proc.communicate(timeout=300)

    assert proc.returncode == 0, err
    assert "was killed by SIGKILL" in err
    check_exact_grid(trials(store, "kill2"), 6, victim["number"])


def test_four_workers_finish_forty_trials_without_storage_errors(
    tmp_path: Path, data_dir: Path
) -> None:
    spec = write_spec(
        tmp_path,
        "forty",
        paddings="[-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]",
        hidden="[[4], [8], [16], [4, 4], [8, 4]]",
    )
    out = subprocess.run(
        minnet_cmd("run", str(spec), "--data-dir", str(data_dir), "--workers", "4"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert out.returncode == 0, out.stderr
    for bad in ("Traceback", "locked", "ERROR", "WARNING"):
        assert bad not in out.stderr
    done = trials(open_storage(None, tmp_path / "results" / "forty"), "forty")
    assert len(done) == 40 and all(t.state.name == "COMPLETE" for t in done)
    assert len({point(t) for t in done}) == 40
    assert len({t.user_attrs["worker"] for t in done}) == 4
    assert {t.user_attrs["threads"] for t in done} == {max(1, len(os.sched_getaffinity(0)) // 4)}


def raw_spec(sampler: str, n_trials: int) -> dict:
    padding: object = [0.0, 0.5, 1.0] if sampler == "grid" else {"low": 0.0, "high": 1.0}
    return {
        "study": {"name": sampler, "seed": 3, "sampler": sampler, "n_trials": n_trials},
        "data": {"name": "tiny"},
        "training": {"epochs": 1, "batch_size": 64},
        "search": {"padding": padding, "hidden": [[4], [8, 4]]},
        "final": {"seeds": 0},
    }


@pytest.mark.parametrize("sampler", ["grid", "random"])
def test_diverged_trials_fail_with_reason_and_the_study_goes_on(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, sampler: str
) -> None:
    real = objective_module.run_once
    calls = []

    def flaky(prepared, hidden, padding, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(padding)
        if len(calls) in (2, 4):
            raise TrainingDiverged("loss became nan at epoch 1, step 3")
        return real(prepared, hidden, padding, *args, **kwargs)

    monkeypatch.setattr(objective_module, "run_once", flaky)
    summary = run_study(spec_from_dict(raw_spec(sampler, 5)), tmp_path, data_dir=data_dir)

    states = Counter(summary.trials["state"])
    failed = summary.trials[summary.trials["state"] == "FAIL"]
    assert states["FAIL"] == 2
    assert set(failed["fail_reason"]) == {"loss became nan at epoch 1, step 3"}
    if sampler == "grid":  # a diverged point is settled: rerunning it would diverge again
        assert states["COMPLETE"] == 4
    else:  # a sampled trial is replaced by a fresh draw, so n_trials still complete
        assert states["COMPLETE"] == 5
    best = summary.trials[summary.trials["state"] == "COMPLETE"]["val_mse"].min()
    assert (summary.trials["val_mse"].dropna() >= best).all()  # failures never count as best
    report = (tmp_path / sampler / "report.md").read_text()
    assert f"{states['COMPLETE']} COMPLETE, 0 PRUNED, 2 FAIL" in report


def test_random_search_draws_the_same_parameters_in_any_number_of_workers(
    tmp_path: Path, data_dir: Path
) -> None:
    spec = spec_from_dict(raw_spec("random", 6))
    run_study(spec, tmp_path / "one", data_dir=data_dir)
    run_study(spec, tmp_path / "two", data_dir=data_dir, workers=2)

    def drawn(folder: Path) -> dict[int, dict]:
        store = open_storage(None, folder / "random")
        return {t.number: t.params for t in trials(store, "random")}

    assert drawn(tmp_path / "one") == drawn(tmp_path / "two")
    assert len({p["padding"] for p in drawn(tmp_path / "one").values()}) == 6
