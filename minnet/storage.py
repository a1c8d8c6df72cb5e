"""Where a study lives: a journal file under its results folder, or any Optuna storage URL.

The default is Optuna's journal file storage: one append-only log that several processes
on one machine share safely, unlike SQLite, which answers "database is locked" once
workers contend. Its appends are guarded by ``fcntl.flock`` here rather than by Optuna's
symlink lock: the kernel drops a flock when its process dies, so a worker killed with
kill -9 while writing never leaves a lock that stalls every other process (Optuna's lock
would be forced open only after 30 s, and never if the journal path is relative, since the
link then dangles). ``--storage`` takes any URL Optuna accepts (``postgresql://``,
``mysql://``, ``sqlite:///``), or a ``.journal`` path, for studies shared between machines.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections import Counter
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.storages.journal._file import BaseJournalFileLock  # not exported by optuna 5.1
from optuna.trial import TrialState

from minnet.errors import MinnetError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

JOURNAL_NAME = "study.journal"
RDB_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def open_storage(url: str | None, folder: Path, create: bool = True) -> BaseStorage:
    """The storage for ``url``, or the journal file under ``folder`` when ``url`` is None.

    With ``create`` false, a journal file that does not exist is an error, not a new file.
    """
    fix = "give a writable path ending in .journal"
    if url is None:
        url = str(folder / JOURNAL_NAME)
        fix = "give --results-dir a writable folder"
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in RDB_SCHEMES:
        if url.endswith((".journal", ".log")):
            if not create and not Path(url).is_file():
                raise MinnetError(
                    f"{url}: no such journal file; give a study's results folder or its "
                    "--storage URL"
                )
            return _open_journal_checked(Path(url), fix)
        raise MinnetError(
            f"--storage {redact(url)!r} is not a storage URL; use e.g. "
            "postgresql://user@host/db, sqlite:///study.db or a path ending in .journal"
        )
    try:
        # pre-ping: workers hold a connection for hours, and servers drop idle ones
        return RDBStorage(with_driver(url), engine_kwargs={"pool_pre_ping": True})
    except ImportError as exc:
        extra = "mysql" if scheme == "mysql" else "postgres"
        raise MinnetError(
            f"--storage {redact(url)}: the database driver is missing ({exc}); "
            f"install it: pip install 'minnet-study[{extra}]'"
        ) from None
    except Exception as exc:  # SQLAlchemy raises many kinds; all mean the same to the user
        raise MinnetError(
            f"--storage {redact(url)}: cannot connect ({_first_line(exc)})"
        ) from None


def _open_journal_checked(path: Path, fix: str) -> JournalStorage:
    """Open a journal file, turning a damaged or unusable one into a one-line error."""
    try:
        if _ends_mid_record(path):
            raise ValueError("its last record is cut off")
        return open_journal(path)
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
        raise MinnetError(
            f"{path}: the study journal is damaged ({_first_line(exc)}); restore it from a "
            "backup, or delete the study's folder to start the study again"
        ) from None
    except OSError as exc:
        raise MinnetError(
            f"{path}: cannot open the study journal ({exc.strerror or exc}); {fix}"
        ) from None


def _ends_mid_record(path: Path) -> bool:
    """Whether a journal's last line is incomplete: a write was cut short by a crash.

    Optuna takes such a line for one still being written and appends after it, which
    fuses two records into one unreadable line; so check, under the writers' lock.
    """
    if fcntl is None or not path.is_file() or path.stat().st_size == 0:
        return False
    lock = FlockLock(str(path.absolute()) + ".flock")
    lock.acquire()
    try:
        with path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    finally:
        lock.release()


def open_journal(path: Path) -> JournalStorage:
    path = path.absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock: BaseJournalFileLock = (
        FlockLock(str(path) + ".flock") if fcntl is not None else JournalFileOpenLock(str(path))
    )
    return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))


class FlockLock(BaseJournalFileLock):
    """A journal lock the kernel releases when its holder dies, however it dies."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


# SQLAlchemy's default driver for a plain scheme, and the one minnet's extras install.
DRIVERS = {"postgresql": ("psycopg", "psycopg2"), "mysql": ("MySQLdb", "pymysql")}


def with_driver(url: str) -> str:
    """Name an installed driver in a plain ``postgresql://`` or ``mysql://`` URL.

    SQLAlchemy 2.1 reads ``postgresql://`` as psycopg 3, but ``minnet-study[postgres]``
    installs psycopg2; likewise ``mysql://`` means mysqlclient, but the extra is PyMySQL.
    """
    scheme, rest = url.split("://", 1) if "://" in url else (url, "")
    if scheme not in DRIVERS:
        return url
    default, ours = DRIVERS[scheme]
    if importlib.util.find_spec(default) is None and importlib.util.find_spec(ours) is not None:
        return f"{scheme}+{ours}://{rest}"
    return url


def describe(url: str | None, folder: Path) -> str:
    """A label for the storage that is safe to print and to write into reports."""
    return redact(url) if url else str(folder / JOURNAL_NAME)


def redact(url: str) -> str:
    """Hide the passwords of a database URL: ``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``.

    The password part runs to the last ``@`` (a password may contain ``@``), and a
    ``password=`` query parameter is hidden too.
    """
    url = re.sub(r"(//[^:/@]*:)[^/]*@", r"\1***@", url)
    return re.sub(r"(?i)([?&](?:password|passwd|pwd)=)[^&]*", r"\1***", url)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(text[0]) if text else type(exc).__name__


def study_names(store: BaseStorage) -> list[str]:
    return [s.study_name for s in store.get_all_studies()]


def load_study(store: BaseStorage, name: str) -> optuna.Study:
    """The study ``name``; if there is none, an error listing the studies that exist."""
    names = study_names(store)
    if name not in names:
        known = ", ".join(sorted(n for n in names if not n.endswith(".final"))) or "none"
        raise MinnetError(f"no study named '{name}' in this storage; studies there: {known}")
    return optuna.load_study(study_name=name, storage=store)


def state_counts(store: BaseStorage) -> dict[str, dict[str, int]]:
    """Each study's number of trials per state (COMPLETE, PRUNED, FAIL, RUNNING, WAITING)."""
    counts = {}
    for study in store.get_all_studies():
        trials = store.get_all_trials(study._study_id, deepcopy=False)
        states = Counter(t.state.name for t in trials)
        counts[study.study_name] = {s.name: states.get(s.name, 0) for s in TrialState}
    return counts
