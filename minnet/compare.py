"""The final comparison: the best fixed padding against a learnable one, paired by seed.

For each seed, both runs start from the best head shape's stored initial weights and see
the same batch order and dropout masks; the only difference is whether ``k`` may move.
They are judged on the test rows, which the search never looked at. Runs are stored as
trials of a second study, ``<name>.final``, so an interrupted comparison resumes where it
stopped and the report can be rebuilt from storage.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from minnet.initial import parse_hidden
from minnet.runs import run_once
from minnet.spec import Spec
from minnet.train import TrainingDiverged

if TYPE_CHECKING:
    from minnet.study import StudyContext

log = logging.getLogger(__name__)

ROLES = ("fixed", "learnable")
FINAL_SUFFIX = ".final"


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
) -> None:
    """Train whatever final runs for ``best`` are not yet in storage."""
    hidden = str(best.params["hidden"])
    fixed_padding = float(best.params["padding"])
    study = optuna.create_study(
        storage=storage, study_name=final_study_name(spec.name), load_if_exists=True
    )
    done = {
        run_key(
            t.user_attrs["role"],
            t.user_attrs["seed"],
            t.user_attrs["hidden"],
            t.user_attrs["padding_best"],
        )
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    }
    todo = [
        (seed, role)
        for seed in final_seeds(spec)
        for role in ROLES
        if run_key(role, seed, hidden, fixed_padding) not in done
    ]
    if not todo:
        return
    log.info(
        "final comparison: head [%s], fixed k %g vs learnable k from %g, %d runs to go",
        hidden,
        fixed_padding,
        spec.learnable_padding_init,
        len(todo),
    )

    for seed, role in tqdm(todo, desc="final", unit="run", disable=not progress):
        learnable = role == "learnable"
        padding = spec.learnable_padding_init if learnable else fixed_padding
        trial = study.ask()
        for key, value in {
            "role": role,
            "seed": seed,
            "hidden": hidden,
            "padding_initial": padding,
            "padding_best": fixed_padding,
        }.items():
            trial.set_user_attr(key, value)
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
            trial.set_user_attr("fail_reason", str(exc))
            study.tell(trial, state=TrialState.FAIL)
            log.warning("final run %s seed %d failed: %s", role, seed, exc)
            continue
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
