"""The study's work queue: every trial is enqueued first, then popped by exactly one worker.

Optuna's GridSampler picks its point when a trial starts and counts a failed point as
visited, so a killed point is never rerun and parallel workers can pick the same point
near the end of the grid. minnet therefore never lets a sampler create a trial. The
process that creates or resumes a study enqueues one WAITING trial ("ticket") per trial
still wanted: a grid point with its parameters fixed, or an empty ticket the sampler fills
in (TPE, random). Workers only pop tickets, and popping is atomic in Optuna's storages, so
``n_trials`` finished trials means exactly that many tickets were run.

Tickets are conserved: a trial that diverged is replaced by a fresh ticket (another grid
point, if the grid has one left, or a new draw), and a diverged grid point is never run
again, since it would diverge again; a trial that was interrupted, crashed or whose worker died is
failed and its parameters are enqueued again, by the one process whose FAIL the storage
accepted. If two processes resume a study at the same moment they may enqueue the same
ticket twice; the worker that pops the later copy sees the earlier one and fails its copy
as "skipped" without training it.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np
import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from minnet.liveness import GRACE_SECONDS, dead_reason
from minnet.spec import Spec

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
PENDING = (TrialState.RUNNING, TrialState.WAITING)

# Values of the trial user attr "fail_kind".
DIVERGED = "diverged"  # NaN or infinite loss: a rerun would fail the same way
DEAD = "dead"  # its worker died; rerun
INTERRUPTED = "interrupted"  # Ctrl-C; rerun
ERROR = "error"  # an unexpected exception; rerun on resume
SKIPPED = "skipped"  # a duplicate or surplus ticket; never trained


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial ``number``: draws depend on the trial, not on the worker."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def make_sampler(spec: Spec, number: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler that fills in trial ``number``'s parameters.

    Grid tickets carry all their parameters, so the grid's sampler never draws. Seeding
    per trial makes random search the same in any number of processes, and keeps parallel
    TPE workers, which would otherwise share one seed, from proposing identical points.
    """
    seed = trial_seed(spec.seed, number)
    if spec.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    return optuna.samplers.RandomSampler(seed=seed)


def params_of(trial: FrozenTrial) -> dict[str, Any]:
    """The trial's parameters, including those fixed by its ticket but not suggested yet."""
    return {**trial.system_attrs.get("fixed_params", {}), **trial.params}


def grid_points(spec: Spec) -> list[dict[str, Any]]:
    """Every grid point, in an order shuffled by the study's seed (n_trials may be a part)."""
    points = list(itertools.product(spec.paddings or (), spec.hidden_keys))
    order = np.random.default_rng(spec.seed).permutation(len(points))
    return [{"padding": points[i][0], "hidden": points[i][1]} for i in order]


def top_up(study: optuna.Study, spec: Spec) -> int:
    """Enqueue the tickets the study still lacks; return how many."""
    trials = study.get_trials(deepcopy=False)
    wanted = spec.n_trials - sum(1 for t in trials if t.state in FINISHED or t.state in PENDING)
    if spec.sampler == "grid":
        taken = {_point(params_of(t)) for t in trials if _holds_point(t)}
        todo = [p for p in grid_points(spec) if _point(p) not in taken][: max(0, wanted)]
    else:
        todo = [{} for _ in range(wanted)]
    for params in todo:
        study.enqueue_trial(params)
    if todo:
        log.debug("study '%s': enqueued %d trials", spec.name, len(todo))
    return len(todo)


def pop(study: optuna.Study, spec: Spec) -> optuna.Trial | None:
    """Take the next ticket: mark it RUNNING for this process only, or None if none is left."""
    storage = study._storage  # popping by id needs the storage; Study.ask would create trials
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if not storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                continue
        except UpdateFinishedTrialError:
            continue
        study.sampler = make_sampler(spec, frozen.number)
        return optuna.Trial(study, frozen._trial_id)
    return None


def conflict(study: optuna.Study, spec: Spec, trial: optuna.Trial) -> str:
    """Why a just-popped ticket must not run (a duplicate or surplus one), or ""."""
    number = trial.number
    mine = study._storage.get_trial(trial._trial_id)
    others = [t for t in study.get_trials(deepcopy=False) if t.number != number]
    if spec.sampler == "grid":
        point = _point(params_of(mine))
        for t in others:
            if _point(params_of(t)) != point:
                continue
            if t.state in FINISHED or _settled(t):
                return f"grid point already run by trial {t.number}"
            if t.state in PENDING and t.number < number:
                return f"grid point also queued as trial {t.number}"
    ahead = sum(
        1 for t in others if t.state in FINISHED or (t.state in PENDING and t.number < number)
    )
    if ahead >= spec.n_trials:
        return (
            f"not needed: {ahead} trials finished or queued ahead of it (n_trials {spec.n_trials})"
        )
    return ""


def fail(study: optuna.Study, trial_id: int, kind: str, reason: str) -> bool:
    """Fail a trial with its reason; False if someone else finished it first."""
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial_id, "fail_kind", kind)
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False
    return True


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue ``trial``'s parameters again, as a new ticket."""
    study.enqueue_trial(params_of(trial), user_attrs={"retry_of": trial.number})


def recover_dead(
    study: optuna.Study, grace: float = GRACE_SECONDS, rerun: bool = True
) -> list[int]:
    """Fail the RUNNING trials whose worker died, and (``rerun``) enqueue their parameters.

    Returns the numbers of the trials this process failed. Several processes may check at
    once; the storage accepts only one FAIL per trial, and only that process re-enqueues.
    """
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = dead_reason(t, grace)
        if not reason or not fail(study, t._trial_id, DEAD, f"worker died: {reason}"):
            continue
        failed.append(t.number)
        if rerun:
            requeue(study, t)
        log.warning(
            "trial %d failed: %s%s", t.number, reason, "; its parameters are queued again" * rerun
        )
    return failed


def _point(params: dict[str, Any]) -> tuple[float, str]:
    return (float(params.get("padding", float("nan"))), str(params.get("hidden", "")))


def _settled(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.FAIL and trial.user_attrs.get("fail_kind") == DIVERGED


def _holds_point(trial: FrozenTrial) -> bool:
    return trial.state in FINISHED or trial.state in PENDING or _settled(trial)
