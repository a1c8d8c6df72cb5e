"""Studies shared through PostgreSQL: concurrent processes, a joining worker, a killed worker.

Needs the server on 127.0.0.1:5432 (trust auth, database ``test``); CI starts it. Every
test uses a study name of its own, so the tests leave each other's studies alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
from test_workers import check_exact_grid, minnet_cmd, point, wait_for_running, write_spec

from minnet.storage import open_storage

URL = os.environ.get("MINNET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg() -> str:
    try:
        import psycopg2

        psycopg2.connect(URL.replace("postgresql://", "postgres://"), connect_timeout=3).close()
    except Exception as exc:
        pytest.skip(
            f"PostgreSQL not reachable ({type(exc).__name__}); start it with "
            "`pg_ctlcluster --skip-systemctl-redirect 15 main start`"
        )
    return URL


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def study_trials(name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(URL, Path())).get_trials()


def test_three_processes_share_a_study_and_a_fourth_joins(
    pg: str, tmp_path: Path, data_dir: Path
) -> None:
    name = unique("share")
    spec = write_spec(
        tmp_path,
        name,
        epochs=2,
        batch=8,
        paddings="[-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]",
        hidden="[[4], [8], [4, 4]]",
    )
    runs = [
        subprocess.Popen(
            minnet_cmd(
                "run",
                str(spec),
                "--data-dir",
                str(data_dir),
                "--storage",
                pg,
                "--results-dir",
                f"machine{i}",
            ),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.2)
        try:
            study = optuna.load_study(study_name=name, storage=open_storage(pg, Path()))
            if "queued" in study.user_attrs:
                break
        except KeyError:
            continue
    joiner = subprocess.Popen(
        minnet_cmd("worker", "--storage", pg, "--study", name, "--data-dir", str(data_dir)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    joined_out, joined_err = joiner.communicate(timeout=600)
    outs = [p.communicate(timeout=600) for p in runs]

    assert joiner.returncode == 0, joined_err
    for p, (_, err) in zip(runs, outs, strict=True):
        assert p.returncode == 0, err
    trials = study_trials(name)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 24 and len(trials) == 24  # nobody queued or ran a point twice
    assert len({point(t) for t in complete}) == 24
    by_pid = Counter(int(t.user_attrs["worker"].split(":")[1]) for t in complete)
    assert set(by_pid) <= {p.pid for p in runs} | {joiner.pid}
    assert by_pid[joiner.pid] >= 1
    assert f"worker finished {by_pid[joiner.pid]} trial" in joined_out


def test_sigkill_on_postgres_then_resume_runs_every_grid_point_once(
    pg: str, tmp_path: Path, data_dir: Path
) -> None:
    name = unique("kill")
    spec = write_spec(tmp_path, name, epochs=4, batch=4)
    run = minnet_cmd(
        "run", str(spec), "--data-dir", str(data_dir), "--storage", pg, "--workers", "2"
    )
    proc = subprocess.Popen(run, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    store = open_storage(pg, tmp_path)

    victim = wait_for_running(store, name, pid_not=proc.pid)
    os.kill(victim["pid"], signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err

    again = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "nothing to run" in again.stderr
    check_exact_grid(study_trials(name), 6, victim["number"])
