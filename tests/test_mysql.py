"""A study shared through MySQL / MariaDB: two workers, then a replay from the database.

Needs the server on 127.0.0.1:3306 (user root, empty password, database ``test``) and
PyMySQL; CI starts the server.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import optuna
import pytest
from test_workers import minnet_cmd, point, write_spec

from minnet.storage import open_storage

URL = os.environ.get("MINNET_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")


@pytest.fixture
def mysql() -> str:
    try:
        import pymysql

        pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test").close()
    except Exception as exc:
        pytest.skip(
            f"MySQL/MariaDB not reachable ({type(exc).__name__}); start it with "
            "`start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd`"
        )
    return URL


def test_two_workers_share_a_study_in_mysql_and_replay_matches(
    mysql: str, tmp_path: Path, data_dir: Path
) -> None:
    name = f"my_{uuid.uuid4().hex[:10]}"
    spec = write_spec(tmp_path, name, epochs=1, batch=16, hidden="[[4], [8]]")
    run = subprocess.run(
        minnet_cmd(
            "run", str(spec), "--data-dir", str(data_dir), "--storage", mysql, "--workers", "2"
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr

    study = optuna.load_study(study_name=name, storage=open_storage(mysql, Path()))
    complete = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    assert len(complete) == 6 and len({point(t) for t in complete}) == 6
    assert all(t.user_attrs["worker"] for t in complete)

    replay = subprocess.run(
        minnet_cmd(
            "replay",
            f"results/{name}",
            str(complete[-1].number),
            "--storage",
            mysql,
            "--data-dir",
            str(data_dir),
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert replay.returncode == 0 and "identical" in replay.stdout, replay.stderr
