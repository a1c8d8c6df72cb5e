"""One search trial, and everything a process needs to run trials: the study's context.

The context is built once per process: by the process that creates the study from the spec
and the data, or by a worker that joins from the storage alone (spec, digests and initial
weights are all stored with the study) plus its own copy of the data.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from minnet import initial, stored_init
from minnet.data import load_dataset
from minnet.errors import MinnetError
from minnet.initial import head_label
from minnet.model import check_padding
from minnet.runs import Prepared, run_once
from minnet.spec import Spec, spec_from_dict
from minnet.split import handle_cold, make_split
from minnet.train import TrainingDiverged

log = logging.getLogger(__name__)


@dataclass
class StudyContext:
    """Everything a trial needs, built once per process."""

    spec: Spec
    prepared: Prepared
    inits: dict[str, initial.State]
    init_sha256: dict[str, str]


def prepare_data(spec: Spec, data_dir: str | Path | None = None) -> Prepared:
    """Load and split the spec's data, and check its paddings against the rating range."""
    data = load_dataset(spec.data, data_dir, fetch=True)
    for padding in spec.all_paddings():
        check_padding(padding, data.rating_range, where=f"{spec.where}: [search] padding")
    check_padding(
        spec.learnable_padding_init,
        data.rating_range,
        where=f"{spec.where}: [final] learnable_padding_init",
    )
    split = make_split(len(data), spec.split_seed, spec.valid_fraction, spec.test_fraction)
    split, cold = handle_cold(split, data.users, data.items, spec.cold)
    log.info("split: %s", cold.sentence())
    return Prepared.build(
        data, split, spec.n_factors, spec.embedding_dropout, spec.hidden_dropout, cold
    )


def context_from_storage(study: optuna.Study, data_dir: str | Path | None) -> StudyContext:
    """The context of a study someone else created: spec and weights from its storage."""
    attrs = study.user_attrs
    if "spec" not in attrs or "init_sha256" not in attrs:
        raise MinnetError(
            f"study '{study.study_name}' was not created by `minnet run` (no spec or initial "
            "weights stored); start it with `minnet run SPEC --storage URL` first"
        )
    spec = spec_from_dict(attrs["spec"], where=f"spec stored with study '{study.study_name}'")
    prepared = prepare_data(spec, data_dir)
    check_split(study, prepared)
    inits = stored_init.load(study, attrs["init_sha256"])
    return StudyContext(spec, prepared, inits, dict(attrs["init_sha256"]))


def check_split(study: optuna.Study, prepared: Prepared) -> None:
    """Refuse data or a split other than the ones the study was run on."""
    stored = study.user_attrs.get("facts", {}).get("split_sha256")
    digest = prepared.split.sha256()
    if stored and stored != digest:
        raise MinnetError(
            f"study '{study.study_name}' was run on different data or split (split sha256 "
            f"{str(stored)[:12]}, now {digest[:12]}); restore the data or start a new study"
        )


def objective(context: StudyContext, trial: optuna.Trial) -> float:
    """Train one trial from its head shape's stored initial weights; return validation MSE.

    Raises ``TrainingDiverged`` (with the reason also stored on the trial) when the loss
    or the validation MSE is not finite.
    """
    spec = context.spec
    if spec.paddings is not None:
        padding = float(trial.suggest_categorical("padding", list(spec.paddings)))
    else:
        low, high = spec.padding_range or (0.0, 1.0)
        padding = trial.suggest_float("padding", low, high)
    key = str(trial.suggest_categorical("hidden", spec.hidden_keys))
    trial.set_user_attr("seed", spec.seed)
    trial.set_user_attr("split_sha256", context.prepared.split.sha256())
    trial.set_user_attr("init_sha256", context.init_sha256[key])
    trial.set_user_attr("threads", torch.get_num_threads())
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")

    def report(epoch: int, mse: float) -> None:
        trial.report(mse, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} at validation MSE {mse:.5f}")

    run = run_once(
        context.prepared,
        initial.parse_hidden(key),
        padding,
        spec.training,
        spec.seed,
        init=context.inits[key],
        on_epoch=report,
    )
    value = run.result.val_mse
    if not math.isfinite(value):
        raise TrainingDiverged(f"validation MSE is {value} after the last epoch")
    trial.set_user_attr("init_sha256", run.init_sha256)
    trial.set_user_attr("seconds", round(run.result.seconds, 3))
    trial.set_user_attr("val_mse_per_epoch", run.result.val_mse_per_epoch)
    return value


def make_pruner(spec: Spec) -> optuna.pruners.BasePruner:
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The COMPLETE trial with the lowest value (pruned and failed trials never count)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return min(complete, key=lambda t: (t.value, t.number)) if complete else None


def log_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    params = trial.params or trial.system_attrs.get("fixed_params", {})
    padding = params.get("padding")
    shown = f"padding {padding:g}" if padding is not None else "padding ?"
    shown += f", hidden {head_label(params.get('hidden', '?'))}"
    if trial.state == TrialState.COMPLETE:
        best = best_trial(study) or trial
        log.info(
            "trial %d: %s -> valid MSE %.5f (%.1f s); best %.5f (trial %d)",
            trial.number,
            shown,
            trial.value,
            trial.user_attrs.get("seconds", 0.0),
            best.value,
            best.number,
        )
    else:
        reason = trial.user_attrs.get("fail_reason") or trial.system_attrs.get("fail_reason", "")
        if not reason and trial.state == TrialState.PRUNED and trial.intermediate_values:
            last = max(trial.intermediate_values)
            reason = f"after epoch {last} at validation MSE {trial.intermediate_values[last]:.5f}"
        state = trial.state.name.lower()
        log.info("trial %d: %s -> %s", trial.number, shown, f"{state} {reason}".rstrip())
