"""Workers: processes that pop trials from the study's queue until none is left.

``minnet run --workers N`` starts N worker processes on this machine; ``minnet worker``
is one more, started by hand on any machine that reaches the storage. A worker needs only
the storage, the study's name and the data: the spec and initial weights come from the
storage. Each limits torch to its share of the cores, so N workers do not oversubscribe
them.

The processes are plain ``multiprocessing`` spawn processes rather than a joblib pool:
joblib's loky executor treats a worker killed by a signal (kill -9, the OOM killer) as a
broken pool and shuts the other workers down with it. Here the survivors go on, fail the
dead worker's trial at once (its process is gone), run its parameters again, and finish.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from tqdm.auto import tqdm

from minnet import tickets
from minnet.errors import MinnetError
from minnet.liveness import GRACE_SECONDS, Heartbeat
from minnet.objective import (
    StudyContext,
    context_from_storage,
    log_trial,
    make_pruner,
    objective,
)
from minnet.storage import load_study, open_storage
from minnet.train import TrainingDiverged

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0


def cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_worker(workers: int, wanted: int | None = None) -> int:
    """Torch threads for each of ``workers`` processes: ``wanted``, at most its share of cores.

    The default is one. The Mini Net's operations on a batch of 64 are far too small for
    torch to split usefully, and a second thread only waits at barriers, badly so on a
    busy machine: one epoch of 40k ratings took 0.44 s on 1 thread and 2.1 s on 2 threads
    of this 2-core machine under load, with bit-identical results. Cores are put to work
    by running more workers instead.
    """
    share = max(1, cores() // workers)
    return min(wanted or 1, share)


@dataclass(frozen=True)
class Join:
    """What a worker process needs to join a study."""

    storage: str  # a URL (it may hold a password: never log it) or a journal file path
    study: str
    data_dir: str | None = None
    threads: int | None = None  # torch threads; None: threads_per_worker(1)
    grace: float = GRACE_SECONDS
    log_level: int = logging.INFO


def join(args: Join, progress: bool = False) -> int:
    """Join a study from its storage and run its trials until none is left; return how many."""
    torch.set_num_threads(args.threads or threads_per_worker(1))
    store = open_storage(args.storage, Path(), create=False)
    study = load_study(store, args.study)
    context = context_from_storage(study, args.data_dir)
    study.pruner = make_pruner(context.spec)
    if context.spec.sampler == "tpe":
        log.warning(
            "joining a TPE study: with several workers its search cannot be reproduced, "
            "though each trial can (minnet replay)"
        )
    return work(study, context, args.grace, progress)


def work(
    study: optuna.Study,
    context: StudyContext,
    grace: float = GRACE_SECONDS,
    progress: bool = False,
) -> int:
    """Pop and run trials until the queue is empty and no other worker's trial is running.

    While others still run, wait: if one of them dies, its parameters come back to the
    queue and this worker runs them. Returns the number of trials this worker finished.
    """
    spec = context.spec
    finished = 0
    bar = tqdm(total=spec.n_trials, unit="trial", desc=spec.name, disable=not progress)
    try:
        while True:
            tickets.recover_dead(study, grace)
            trial = tickets.pop(study, spec)
            if trial is None:
                if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                    break
                time.sleep(POLL_SECONDS)
                continue
            state = run_trial(study, context, trial)
            if state in tickets.FINISHED:
                finished += 1
                bar.update(1)
    finally:
        bar.close()
    return finished


def run_trial(study: optuna.Study, context: StudyContext, trial: optuna.Trial) -> TrialState:
    """Run one popped ticket to its end and record it; return the state it ended in."""
    spec = context.spec
    reason = tickets.conflict(study, spec, trial)
    if reason:
        tickets.fail(study, trial._trial_id, tickets.SKIPPED, reason)
        log.info("trial %d skipped: %s", trial.number, reason)
        return TrialState.FAIL

    value: float | None = None
    state, kind, reason = TrialState.FAIL, "", ""
    with Heartbeat(study._storage, trial._trial_id) as beat:
        try:
            value = objective(context, trial)
            state = TrialState.COMPLETE
        except optuna.TrialPruned as exc:
            state, reason = TrialState.PRUNED, str(exc)
        except TrainingDiverged as exc:
            kind, reason = tickets.DIVERGED, str(exc)
        except UpdateFinishedTrialError:
            beat.lost = True
        except KeyboardInterrupt:
            _fail_and_requeue(study, trial, tickets.INTERRUPTED, "interrupted (Ctrl-C)")
            raise
        except Exception as exc:
            _fail_and_requeue(study, trial, tickets.ERROR, f"{type(exc).__name__}: {exc}")
            raise
    if beat.lost:
        log.warning(
            "trial %d was failed by another worker while it ran (this worker stalled for longer "
            "than the grace period); its result is dropped and its parameters run again",
            trial.number,
        )
        return TrialState.FAIL

    try:
        if kind:
            tickets.fail(study, trial._trial_id, kind, reason)
            _replace_diverged(study, context)
        else:
            study.tell(trial, value, state=state)
    except UpdateFinishedTrialError:
        log.warning("trial %d was finished by another worker; its result is dropped", trial.number)
        return TrialState.FAIL
    log_trial(study, study._storage.get_trial(trial._trial_id))
    return state


def _fail_and_requeue(study: optuna.Study, trial: optuna.Trial, kind: str, reason: str) -> None:
    if tickets.fail(study, trial._trial_id, kind, reason):
        tickets.requeue(study, study._storage.get_trial(trial._trial_id))
        log.warning("trial %d %s; its parameters are queued again", trial.number, reason)


def _replace_diverged(study: optuna.Study, context: StudyContext) -> None:
    """Queue a replacement: another grid point if one is left, or a fresh draw."""
    spec = context.spec
    failures = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.user_attrs.get("fail_kind") == tickets.DIVERGED
    ]
    if len(failures) > spec.n_trials:
        log.warning(
            "%d trials diverged, more than n_trials %d; not replacing any more",
            len(failures),
            spec.n_trials,
        )
        return
    tickets.top_up(study, spec)


def run_processes(args: Join, n: int) -> list[int]:
    """Run ``n`` worker processes until they end; return their exit codes.

    A worker killed by a signal does not stop the others. Ctrl-C reaches every worker (one
    process group): each fails its trial as interrupted and queues its parameters again.
    """
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=_process_main, args=(args,), name=f"minnet-worker-{i}")
        for i in range(n)
    ]
    for p in procs:
        p.start()
    log.info("started %d workers, %d torch thread(s) each", n, args.threads or 1)
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.join(timeout=30)
        raise
    codes = [p.exitcode if p.exitcode is not None else -1 for p in procs]
    for p, code in zip(procs, codes, strict=True):
        if code < 0:
            log.warning("worker pid %s was killed by %s", p.pid, signal.Signals(-code).name)
        elif code > 0:
            log.warning("worker pid %s exited with code %d", p.pid, code)
    return codes


def _process_main(args: Join) -> None:
    logging.basicConfig(
        level=args.log_level,
        format=f"%(asctime)s %(levelname)s [worker {os.getpid()}] %(message)s",
        datefmt="%H:%M:%S",
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        join(args)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except MinnetError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
