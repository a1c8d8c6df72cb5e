"""The search: create or resume a study, queue its trials, run them, compare, report.

Before the first trial the initial weights of every head shape are created from the
study's seed, saved under ``results/<study>/init/`` and stored with the study, so a worker
on another machine can load them. Each trial then builds a fresh model, loads its shape's
weights strictly, and trains with everything seeded from the same seed, so trials differ
only in their hyperparameters.

``n_trials`` counts finished (COMPLETE or PRUNED) trials over all runs of the study: the
process that creates or resumes it enqueues exactly the trials still wanted (see
``minnet.tickets``), and one or more workers run them. Running a spec again completes
what is missing, including trials whose worker died.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.exceptions import DuplicatedStudyError
from optuna.trial import TrialState

from minnet import compare, initial, stored_init, tickets
from minnet.errors import MinnetError
from minnet.liveness import GRACE_SECONDS, gone, identity
from minnet.objective import (
    StudyContext,
    best_trial,
    check_split,
    make_pruner,
    prepare_data,
)
from minnet.report import write_report
from minnet.runs import Prepared, library_versions
from minnet.spec import Spec, spec_from_dict
from minnet.storage import JOURNAL_NAME, describe, open_storage
from minnet.summary import StudySummary, load_summary
from minnet.workers import Join, run_processes, threads_per_worker, work

log = logging.getLogger(__name__)

SETUP_POLL_SECONDS = 0.5


def run_study(
    spec: Spec,
    results_dir: str | Path = "results",
    storage: str | None = None,
    data_dir: str | Path | None = None,
    progress: bool = False,
    workers: int = 1,
    grace: float = GRACE_SECONDS,
    threads: int | None = None,
) -> StudySummary:
    """Run (or resume, or join) the search, then the final comparison, then write the report.

    ``workers`` processes run the trials (1: this process), each with ``threads`` torch
    threads (default 1, at most its share of the cores). Several ``run_study`` calls,
    on one machine or many, may share a study through a database ``storage``. Returns the
    summary the report was made from. Nothing is written under ``results_dir`` unless the
    spec, the data and the storage are all usable.
    """
    if workers < 1:
        raise MinnetError(f"--workers is {workers}; give 1 or more worker processes")
    prepared = prepare_data(spec, data_dir)
    folder = Path(results_dir) / spec.name
    with _cleanup_on_error(folder):
        store = open_storage(storage, folder)
        study, created = _open_study(spec, store, grace)
        context = _context(spec, prepared, study, folder, describe(storage, folder))
    _queue(study, spec, created, grace)
    _note_search(spec, workers)

    n_threads = threads_per_worker(workers, threads)
    if workers == 1:
        with _torch_threads(n_threads):
            work(study, context, grace, progress)
    else:
        where = storage or str(folder / JOURNAL_NAME)
        level = logging.getLogger("minnet").getEffectiveLevel()
        run_processes(Join(where, spec.name, _str(data_dir), n_threads, grace, level), workers)
    _check_finished(study, spec)

    best = best_trial(study)
    if best is not None and spec.final_seeds > 0:
        with _torch_threads(n_threads):  # the final runs, like trials, gain nothing from more
            compare.run_final(spec, context, best, store, progress=progress, grace=grace)
    summary = load_summary(store, spec.name)
    write_report(summary, folder)
    log.info("report written to %s", folder / "report.html")
    return summary


@contextmanager
def _cleanup_on_error(folder: Path) -> Iterator[None]:
    """Remove what this call created of ``folder`` and its parents if setup then fails."""
    chain = [folder, *folder.parents]
    for path in chain:
        if path.exists() and not path.is_dir():
            raise MinnetError(f"{path} is a file, not a folder; give --results-dir a folder")
    missing = [path for path in chain if not path.exists()]
    try:
        yield
    except OSError as exc:
        _remove(missing)
        raise MinnetError(
            f"cannot write the study's files under {folder} ({exc.strerror or exc}); "
            "give --results-dir a writable folder"
        ) from None
    except BaseException:
        _remove(missing)
        raise


def _remove(created: list[Path]) -> None:
    if created:
        shutil.rmtree(created[-1], ignore_errors=True)


def _open_study(
    spec: Spec, store: optuna.storages.BaseStorage, grace: float
) -> tuple[optuna.Study, bool]:
    """The study, and whether this process created it (creating a study is atomic)."""
    try:
        study = optuna.create_study(storage=store, study_name=spec.name, direction="minimize")
        created = True
        study.set_user_attr("creator", identity())
    except DuplicatedStudyError:
        study = optuna.load_study(study_name=spec.name, storage=store)
        created = False
        _wait_for_creator(study, grace)
    study.pruner = make_pruner(spec)

    stored = study.user_attrs.get("spec")
    if stored is None:
        study.set_user_attr("spec", spec.raw)
    else:
        differs = _spec_difference(stored, spec)
        if differs:
            raise MinnetError(
                f"study '{spec.name}' already exists with a different spec ({differs}); "
                "give the new spec another [study] name, or delete the study's results folder"
            )
        if stored.get("study", {}).get("n_trials") != spec.raw.get("study", {}).get("n_trials"):
            study.set_user_attr("spec", spec.raw)
    return study, created


def _wait_for_creator(study: optuna.Study, grace: float) -> None:
    """Let a process that is creating the study at this moment finish queueing its trials."""
    waited = 0.0
    while "queued" not in (attrs := study.user_attrs):
        creator = attrs.get("creator")
        if creator is None and "spec" in attrs:
            return  # created by an older minnet, which queued nothing
        if waited >= grace or (creator and gone(creator)):
            log.warning(
                "the process that created study '%s' stopped; taking over", study.study_name
            )
            return
        if waited == 0:
            log.info("waiting for the process creating study '%s'", study.study_name)
        time.sleep(SETUP_POLL_SECONDS)
        waited += SETUP_POLL_SECONDS


def _spec_difference(stored: dict[str, Any], new: Spec) -> str:
    """The first setting in which two specs differ once defaults are filled in.

    ``n_trials`` is ignored: raising it is how a study is extended.
    """
    return _difference(spec_from_dict(stored, where="the stored spec"), new, "")


def _difference(old: Any, new: Any, prefix: str) -> str:
    for f in dataclasses.fields(old):
        if f.name in ("n_trials", "raw", "where"):
            continue
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before == after:
            continue
        if dataclasses.is_dataclass(before) and type(before) is type(after):
            return _difference(before, after, f"{prefix}{f.name}.")
        return f"{prefix}{f.name}: stored {before!r}, now {after!r}"
    return ""


def _context(
    spec: Spec, prepared: Prepared, study: optuna.Study, folder: Path, storage_label: str
) -> StudyContext:
    check_split(study, prepared)
    expected = study.user_attrs.get("init_sha256")
    inits = initial.prepare(folder / "init", prepared.factory, spec.hidden, spec.seed, expected)
    digests = {key: initial.state_sha256(state) for key, state in inits.items()}
    if expected is None:
        study.set_user_attr("init_sha256", digests)
    if not stored_init.present(study):
        stored_init.store(study, inits)
    if not study.user_attrs.get("facts"):
        study.set_user_attr("facts", _facts(spec, prepared, storage_label))
    return StudyContext(spec, prepared, inits, digests)


def _facts(spec: Spec, prepared: Prepared, storage_label: str) -> dict[str, Any]:
    return {
        "seed": spec.seed,
        "split_seed": spec.split_seed,
        "split_sha256": prepared.split.sha256(),
        "data_sha256": prepared.data.sha256(),
        "dataset": spec.data.name,
        "ratings": len(prepared.data),
        "users": prepared.data.n_users,
        "items": prepared.data.n_items,
        "rating_range": list(prepared.data.rating_range),
        "noise_mse": prepared.data.noise_mse,  # synthetic data: the best achievable MSE
        "cold_rows": prepared.cold.sentence() if prepared.cold else None,
        "rows": {
            "train": len(prepared.split.train),
            "valid": len(prepared.split.valid),
            "test": len(prepared.split.test),
        },
        "versions": library_versions(),
        "storage": storage_label,
    }


def _queue(study: optuna.Study, spec: Spec, created: bool, grace: float) -> None:
    """Recover trials of dead workers, then enqueue what the study still lacks."""
    tickets.recover_dead(study, grace)
    tickets.top_up(study, spec)
    if created or "queued" not in study.user_attrs:
        study.set_user_attr("queued", True)
    trials = study.get_trials(deepcopy=False)
    done = sum(1 for t in trials if t.state in tickets.FINISHED)
    queued = sum(1 for t in trials if t.state == TrialState.WAITING)
    if not any(t.state in tickets.PENDING for t in trials):
        log.info(
            "study '%s' already has %d of %d trials; nothing to run",
            spec.name,
            done,
            spec.n_trials,
        )
    else:
        log.info(
            "study '%s': %d of %d trials done, %d queued", spec.name, done, spec.n_trials, queued
        )


def _note_search(spec: Spec, workers: int) -> None:
    if spec.sampler == "tpe" and workers > 1:
        log.warning(
            "TPE in %d parallel workers: each proposal depends on which trials happened to "
            "finish first, so the search cannot be reproduced (each trial can: minnet replay)",
            workers,
        )


def _check_finished(study: optuna.Study, spec: Spec) -> None:
    trials = study.get_trials(deepcopy=False)
    done = sum(1 for t in trials if t.state in tickets.FINISHED)
    left = sum(1 for t in trials if t.state in tickets.PENDING)
    if done < spec.n_trials and left:
        log.warning(
            "study '%s' stopped at %d of %d trials with %d still queued or running; run the "
            "same command again to resume",
            spec.name,
            done,
            spec.n_trials,
            left,
        )


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _str(path: str | Path | None) -> str | None:
    return None if path is None else str(path)
