"""Where a study lives: a journal file under its results folder, or any Optuna storage URL.

The default is Optuna's journal file storage: one append-only log that several processes
on one machine can share safely through a file lock, unlike SQLite, which answers
"database is locked" once workers contend. ``--storage`` takes any URL Optuna accepts
(``postgresql://``, ``mysql://``, ``sqlite:///``) for studies shared between machines.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from minnet.errors import MinnetError

log = logging.getLogger(__name__)

JOURNAL_NAME = "study.journal"
RDB_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def open_storage(url: str | None, folder: Path) -> BaseStorage:
    """The storage for ``url``, or the journal file under ``folder`` when ``url`` is None."""
    if url is None:
        folder.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(folder / JOURNAL_NAME)))
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in RDB_SCHEMES:
        if url.endswith((".journal", ".log")):
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(url))
        raise MinnetError(
            f"--storage {redact(url)!r} is not a storage URL; use e.g. "
            "postgresql://user@host/db, sqlite:///study.db or a path ending in .journal"
        )
    try:
        return RDBStorage(url)
    except ImportError as exc:
        raise MinnetError(
            f"--storage {redact(url)}: the database driver is missing ({exc}); "
            "install it, e.g. pip install 'minnet-study[postgres]'"
        ) from None
    except Exception as exc:  # SQLAlchemy raises many kinds; all mean the same to the user
        raise MinnetError(
            f"--storage {redact(url)}: cannot connect ({_first_line(exc)})"
        ) from None


def describe(url: str | None, folder: Path) -> str:
    """A label for the storage that is safe to print and to write into reports."""
    return redact(url) if url else str(folder / JOURNAL_NAME)


def redact(url: str) -> str:
    """Hide the password of a database URL: ``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``."""
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(text[0]) if text else type(exc).__name__


def study_names(store: BaseStorage) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(store, include_best_trial=False)]
