"""Storages, liveness checks, weights kept in storage, and the `studies` listing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState
from test_workers import minnet_cmd, write_spec

from minnet import stored_init
from minnet.errors import MinnetError
from minnet.liveness import HEARTBEAT_KEY, dead_reason, identity
from minnet.storage import FlockLock, open_storage, with_driver


def running_trial(beat: dict | None, started: datetime | None = None) -> optuna.trial.FrozenTrial:
    return optuna.trial.FrozenTrial(
        number=0,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=started or datetime.now(),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={HEARTBEAT_KEY: beat} if beat else {},
        intermediate_values={},
        trial_id=0,
    )


def test_local_worker_is_dead_exactly_when_its_process_is_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    beat = {**identity(), "pid": child.pid, "started": None, "time": time.time()}
    assert dead_reason(running_trial(beat)) == ""  # alive, however old its heartbeat
    assert dead_reason(running_trial({**beat, "time": 0.0})) == ""

    child.send_signal(signal.SIGKILL)
    child.wait()
    assert "is gone" in dead_reason(running_trial(beat))
    assert dead_reason(running_trial({**identity(), "time": 0.0})) == ""  # this very process


def test_remote_worker_is_dead_after_the_grace_period_without_heartbeat() -> None:
    remote = {"host": "elsewhere", "machine": "other-boot", "pid": 1, "started": 1}
    assert dead_reason(running_trial({**remote, "time": time.time() - 5}), grace=60) == ""
    reason = dead_reason(running_trial({**remote, "time": time.time() - 90}), grace=60)
    assert reason.startswith("no heartbeat from elsewhere pid 1 for 9")

    old = datetime.now() - timedelta(seconds=120)
    assert "no heartbeat 120 s after it started" in dead_reason(running_trial(None, old), 60)
    assert dead_reason(running_trial(None), 60) == ""


def test_journal_lock_is_released_when_its_holder_is_killed(tmp_path: Path) -> None:
    lock_path = tmp_path / "study.journal.flock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from minnet.storage import FlockLock; "
            f"FlockLock({str(lock_path)!r}).acquire(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    lock = FlockLock(str(lock_path))
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (lock.acquire(), got.set()), daemon=True)
    waiter.start()
    assert not got.wait(0.5)  # held by the child

    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert got.wait(5)
    lock.release()


def test_initial_weights_round_trip_through_storage_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stored_init, "CHUNK", 100)
    shared = torch.randn(30, 5)
    inits = {
        "4": {"emb": shared, "head": torch.randn(4, 5)},
        "8": {"emb": shared, "head": torch.randn(8, 5)},
    }
    digests = {k: stored_init.state_sha256(v) for k, v in inits.items()}
    study = optuna.create_study(storage=open_storage(None, tmp_path), study_name="w")
    stored_init.store(study, inits)

    again = stored_init.load(
        optuna.load_study(study_name="w", storage=open_storage(None, tmp_path)), digests
    )
    for key, state in inits.items():
        for name, tensor in state.items():
            assert torch.equal(again[key][name], tensor)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    blobs = {k.rsplit(":", 1)[0] for k in attrs if k.startswith(stored_init.BLOB)}
    assert len(blobs) == 3  # the embedding both shapes share is stored once

    with pytest.raises(MinnetError, match=r"stored initial weights of head \[4\] have sha256"):
        stored_init.load(study, {**digests, "4": "0" * 64})


def test_studies_lists_counts_per_state_and_unknown_names_list_known_ones(
    tmp_path: Path, data_dir: Path
) -> None:
    spec = write_spec(tmp_path, "listed")
    ran = subprocess.run(
        minnet_cmd("run", str(spec), "--data-dir", str(data_dir)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr

    out = subprocess.run(minnet_cmd("studies"), cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()
    assert header.split() == [
        "study",
        "complete",
        "pruned",
        "fail",
        "running",
        "waiting",
        "storage",
    ]
    assert row.split() == ["listed", "6", "0", "0", "0", "0", "results/listed/study.journal"]

    journal = "results/listed/study.journal"
    for args in (
        ["worker", "--storage", journal, "--study", "nope"],
        ["replay", "results/listed", "0", "--study", "nope"],
        ["report", "results/listed", "--study", "nope"],
    ):
        out = subprocess.run(minnet_cmd(*args), cwd=tmp_path, capture_output=True, text=True)
        assert out.returncode == 2
        assert "no study named 'nope' in this storage; studies there: listed" in out.stderr


def test_password_never_reaches_the_output(tmp_path: Path, data_dir: Path) -> None:
    secret = "s3cr3t-pw"
    url = f"postgresql://minnet:{secret}@127.0.0.1:1/none"
    spec = write_spec(tmp_path, "pw")
    for args in (
        ["run", str(spec), "--data-dir", str(data_dir), "--storage", url],
        ["worker", "--storage", url, "--study", "pw", "--data-dir", str(data_dir)],
        ["studies", "--storage", url],
    ):
        out = subprocess.run(
            minnet_cmd(*args), cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 2, out.stderr
        assert "cannot connect" in out.stderr and "minnet:***@" in out.stderr
        assert secret not in out.stderr + out.stdout
    assert not (tmp_path / "results").exists()


def test_plain_database_urls_get_the_installed_driver() -> None:
    assert with_driver("postgresql://u@h/db").startswith(
        ("postgresql://", "postgresql+psycopg2://")
    )
    assert with_driver("sqlite:///x.db") == "sqlite:///x.db"
    assert with_driver("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
