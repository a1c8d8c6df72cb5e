"""The final comparison: the best fixed padding against a learnable one, paired by seed.

For each seed, both runs start from the best head shape's stored initial weights and see
the same batch order and dropout masks; the only difference is whether ``k`` may move.
They are judged on the test rows, which the search never looked at. Runs are stored as
trials of a second study, ``<name>.final``, so an interrupted comparison resumes where it
stopped and the report can be rebuilt from storage. Several processes sharing a study may
reach the comparison together: a run is claimed by its trial, and of two trials claiming
the same run the later one steps aside untrained; a run whose worker died is run again.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from minnet import tickets
from minnet.initial import head_label, parse_hidden
from minnet.liveness import GRACE_SECONDS, Heartbeat
from minnet.runs import run_once
from minnet.spec import FINAL_SUFFIX, Spec
from minnet.train import TrainingDiverged

if TYPE_CHECKING:
    from minnet.objective import StudyContext

log = logging.getLogger(__name__)

ROLES = ("fixed", "learnable")
WAIT_SECONDS = 2.0  # how often to look at final runs other workers are training


def final_study_name(name: str) -> str:
    return name + FINAL_SUFFIX


def final_seeds(spec: Spec) -> list[int]:
    return [spec.seed + i for i in range(spec.final_seeds)]


def run_key(role: str, seed: int, hidden: str, padding: float) -> tuple[str, int, str, float]:
    return (role, seed, hidden, padding)


def run_final(
    spec: Spec,
    context: StudyContext,
    best: FrozenTrial,
    storage: optuna.storages.BaseStorage,
    progress: bool = False,
    grace: float = GRACE_SECONDS,
) -> None:
    """Train whatever final runs for ``best`` are not yet in storage.

    Runs that another live process is training are waited for, so that every process
    that returns from here reports on the whole comparison.
    """
    hidden = str(best.params["hidden"])
    fixed_padding = float(best.params["padding"])
    study = optuna.create_study(
        storage=storage, study_name=final_study_name(spec.name), load_if_exists=True
    )
    runs = [(seed, role) for seed in final_seeds(spec) for role in ROLES]
    attempted: set[tuple[int, str]] = set()  # a run that diverged here is not tried again
    while True:
        tickets.recover_dead(study, grace, rerun=False)
        todo = [
            run
            for run in runs
            if run not in attempted
            and _claimed_by(study, run_key(run[1], run[0], hidden, fixed_padding), None) is None
        ]
        if todo:
            _train_runs(study, todo, context, spec, hidden, fixed_padding, progress)
            attempted.update(todo)
            continue
        elsewhere = [
            run for run in runs if _running(study, run_key(run[1], run[0], hidden, fixed_padding))
        ]
        if not elsewhere:
            return
        log.info("waiting for %d final runs that other workers are training", len(elsewhere))
        time.sleep(WAIT_SECONDS)


def _train_runs(
    study: optuna.Study,
    todo: list[tuple[int, str]],
    context: StudyContext,
    spec: Spec,
    hidden: str,
    fixed_padding: float,
    progress: bool,
) -> None:
    log.info(
        "final comparison: head %s, fixed k %g vs learnable k from %g, %d runs to go",
        head_label(hidden),
        fixed_padding,
        spec.learnable_padding_init,
        len(todo),
    )
    for seed, role in tqdm(todo, desc="final", unit="run", disable=not progress):
        key = run_key(role, seed, hidden, fixed_padding)
        if _claimed_by(study, key, None) is not None:
            continue
        learnable = role == "learnable"
        padding = spec.learnable_padding_init if learnable else fixed_padding
        trial = study.ask()
        for name, value in {
            "role": role,
            "seed": seed,
            "hidden": hidden,
            "padding_initial": padding,
            "padding_best": fixed_padding,
        }.items():
            trial.set_user_attr(name, value)
        other = _claimed_by(study, key, trial.number)
        if other is not None:
            tickets.fail(study, trial._trial_id, tickets.SKIPPED, f"run taken by trial {other}")
            continue
        _run(study, trial, context, spec, role, seed, hidden, padding)


def _running(study: optuna.Study, key: tuple[str, int, str, float]) -> bool:
    """Whether ``key`` is being trained and not yet complete."""
    states = {
        t.state
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
        if "role" in t.user_attrs
        and run_key(
            t.user_attrs["role"],
            t.user_attrs["seed"],
            t.user_attrs["hidden"],
            t.user_attrs["padding_best"],
        )
        == key
    }
    return TrialState.RUNNING in states and TrialState.COMPLETE not in states


def _claimed_by(
    study: optuna.Study, key: tuple[str, int, str, float], number: int | None
) -> int | None:
    """The trial holding run ``key``: a COMPLETE one, or a RUNNING one ahead of ``number``."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
        a = t.user_attrs
        if t.number == number or "role" not in a:
            continue
        if run_key(a["role"], a["seed"], a["hidden"], a["padding_best"]) != key:
            continue
        if t.state == TrialState.COMPLETE or number is None or t.number < number:
            return t.number
    return None


def _run(
    study: optuna.Study,
    trial: optuna.Trial,
    context: StudyContext,
    spec: Spec,
    role: str,
    seed: int,
    hidden: str,
    padding: float,
) -> None:
    learnable = role == "learnable"
    with Heartbeat(study._storage, trial._trial_id):
        try:
            run = run_once(
                context.prepared,
                parse_hidden(hidden),
                padding,
                spec.training,
                seed,
                learnable=learnable,
                init=context.inits[hidden],
            )
        except TrainingDiverged as exc:
            tickets.fail(study, trial._trial_id, tickets.DIVERGED, str(exc))
            log.warning("final run %s seed %d failed: %s", role, seed, exc)
            return
        except KeyboardInterrupt:
            tickets.fail(study, trial._trial_id, tickets.INTERRUPTED, "interrupted (Ctrl-C)")
            raise
        except Exception as exc:
            tickets.fail(study, trial._trial_id, tickets.ERROR, f"{type(exc).__name__}: {exc}")
            raise
    result = run.result
    trial.set_user_attr("padding_final", result.padding)
    trial.set_user_attr("val_mse_per_epoch", result.val_mse_per_epoch)
    trial.set_user_attr("padding_trace", [round(v, 6) for v in result.padding_trace])
    trial.set_user_attr("init_sha256", run.init_sha256)
    study.tell(trial, run.test_mse)
    log.info(
        "final %s seed %d: test MSE %.5f, k %.4f -> %.4f",
        role,
        seed,
        run.test_mse,
        padding,
        result.padding,
    )
