"""Is the worker of a RUNNING trial still alive? Heartbeats and process checks, on any storage.

Optuna 5.1 keeps heartbeats only in RDB storages; its journal file storage, minnet's default,
has none. So minnet keeps its own, the same on every storage: while a trial runs, a thread
writes the worker's identity and the time into the trial's system attrs every
``HEARTBEAT_SECONDS``. A RUNNING trial's worker is dead when

- it ran on this machine (same host name, boot and pid namespace) and its process is gone or
  a zombie: exact and immediate, so a resume after kill -9, an OOM kill or a reboot recovers
  at once, and a live local worker is never mistaken for a dead one;
- otherwise, when its last heartbeat is older than ``GRACE_SECONDS``. Workers on other
  machines are judged by wall clocks, which NTP keeps far closer than the grace period.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "minnet:heartbeat"
HEARTBEAT_SECONDS = 10.0
GRACE_SECONDS = 60.0


def identity() -> dict[str, Any]:
    """Who this process is: enough to tell later, on this machine, whether it still runs."""
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "machine": _machine(),
        "pid": pid,
        "started": _start_ticks(pid),
    }


def dead_reason(trial: FrozenTrial, grace: float = GRACE_SECONDS) -> str:
    """Why the worker of a RUNNING ``trial`` is dead, or "" if it may still be running."""
    beat = trial.system_attrs.get(HEARTBEAT_KEY)
    if beat is None:
        # Popped but no heartbeat yet: the first one is written right after the pop.
        started = trial.datetime_start or datetime.now()
        age = (datetime.now() - started).total_seconds()
        return f"no heartbeat {age:.0f} s after it started" if age > grace else ""

    if local(beat):
        return f"its worker (pid {beat['pid']} on {beat['host']}) is gone" if gone(beat) else ""

    age = time.time() - float(beat["time"])
    if age > grace:
        return f"no heartbeat from {beat.get('host')} pid {beat.get('pid')} for {age:.0f} s"
    return ""


def local(who: dict[str, Any]) -> bool:
    """Whether the process ``who`` (an ``identity()``) ran on this machine, as far as we know."""
    here = identity()
    return bool(who.get("machine")) and (who.get("host"), who.get("machine")) == (
        here["host"],
        here["machine"],
    )


def gone(who: dict[str, Any]) -> bool:
    """Whether the local process ``who`` has ended (never true for another machine's)."""
    if not local(who) or int(who["pid"]) == os.getpid():
        return False
    return not _alive(int(who["pid"]), who.get("started"))


class Heartbeat:
    """Beat for ``trial_id`` while the ``with`` block runs; the first beat is written at once.

    ``lost`` turns true if the trial was finished by someone else meanwhile, which happens
    only when this worker stalled for longer than the grace period.
    """

    def __init__(
        self, storage: BaseStorage, trial_id: int, interval: float = HEARTBEAT_SECONDS
    ) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.lost = False
        self._me = identity()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="minnet-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval) and not self.lost:
            try:
                self._beat()
            except Exception as exc:  # a storage hiccup must not kill the trial; retry next beat
                log.warning("heartbeat of trial id %d not recorded: %s", self.trial_id, exc)

    def _beat(self) -> None:
        try:
            self.storage.set_trial_system_attr(
                self.trial_id, HEARTBEAT_KEY, {**self._me, "time": time.time()}
            )
        except UpdateFinishedTrialError:
            self.lost = True


def _machine() -> str:
    """This kernel boot and pid namespace, or "" where /proc does not tell (not Linux)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return ""


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from the state on: (state, ppid, ...)


def _start_ticks(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None  # field 22 of stat: start time since boot


def _alive(pid: int, started: int | None) -> bool:
    """The process runs, is not a zombie, and is the one that started then (pids are reused)."""
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started
