"""The search: an Optuna study over padding and head shape, every trial from the same start.

Before the first trial the initial weights of every head shape are created from the
study's seed and saved under ``results/<study>/init/``. Each trial then builds a fresh
model, loads its shape's weights strictly, and trains with everything seeded from the
same seed, so trials differ only in their hyperparameters. ``n_trials`` is a total over
all runs of the study: running a spec again completes what is missing.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from minnet import compare, initial
from minnet.data import Ratings, load_release
from minnet.errors import MinnetError
from minnet.model import check_padding
from minnet.report import write_report
from minnet.runs import Prepared, library_versions, run_once
from minnet.spec import Spec
from minnet.split import make_split
from minnet.storage import describe, open_storage
from minnet.summary import StudySummary, load_summary
from minnet.train import TrainingDiverged

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class StudyContext:
    """Everything a trial needs, built once per process."""

    spec: Spec
    prepared: Prepared
    inits: dict[str, initial.State]
    init_sha256: dict[str, str]


def prepare_data(spec: Spec, data_dir: str | Path | None = None) -> Prepared:
    """Load and split the spec's data, and check its paddings against the rating range."""
    data = load_dataset(spec, data_dir)
    for padding in spec.all_paddings():
        check_padding(padding, data.rating_range, where="[search] padding")
    check_padding(spec.learnable_padding_init, data.rating_range, "[final] learnable_padding_init")
    split = make_split(len(data), spec.split_seed, spec.valid_fraction, spec.test_fraction)
    return Prepared.build(data, split, spec.n_factors, spec.embedding_dropout, spec.hidden_dropout)


def load_dataset(spec: Spec, data_dir: str | Path | None) -> Ratings:
    return load_release(spec.data["name"], data_dir)


def run_study(
    spec: Spec,
    results_dir: str | Path = "results",
    storage: str | None = None,
    data_dir: str | Path | None = None,
    progress: bool = False,
) -> StudySummary:
    """Run (or resume) the search, then the final comparison, then write the report.

    Returns the summary the report was made from. Nothing is written under
    ``results_dir`` unless the spec, the data and the storage are all usable.
    """
    prepared = prepare_data(spec, data_dir)
    folder = Path(results_dir) / spec.name
    with _cleanup_on_error(folder):
        store = open_storage(storage, folder)
        study = _open_study(spec, store)
        context = _context(spec, prepared, study, folder, describe(storage, folder))

    _search(study, context, progress)
    best = best_trial(study)
    if best is not None and spec.final_seeds > 0:
        compare.run_final(spec, context, best, store, progress=progress)
    summary = load_summary(store, spec.name)
    write_report(summary, folder)
    log.info("report written to %s", folder / "report.html")
    return summary


@contextmanager
def _cleanup_on_error(folder: Path) -> Iterator[None]:
    """Remove ``folder`` if this call created it and setup then failed."""
    existed = folder.exists()
    try:
        yield
    except BaseException:
        if not existed and folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _open_study(spec: Spec, store: optuna.storages.BaseStorage) -> optuna.Study:
    study = optuna.create_study(
        storage=store,
        study_name=spec.name,
        direction="minimize",
        sampler=make_sampler(spec),
        pruner=make_pruner(spec),
        load_if_exists=True,
    )
    stored = study.user_attrs.get("spec")
    if stored is None:
        study.set_user_attr("spec", spec.raw)
    else:
        differs = _spec_difference(stored, spec.raw)
        if differs:
            raise MinnetError(
                f"study '{spec.name}' already exists with a different spec ({differs}); "
                "give the new spec another [study] name, or delete the study's results folder"
            )
        if stored.get("study", {}).get("n_trials") != spec.raw.get("study", {}).get("n_trials"):
            study.set_user_attr("spec", spec.raw)
    return study


def _spec_difference(stored: dict[str, Any], new: dict[str, Any]) -> str:
    """The first key where two specs differ, ignoring n_trials (raising it is how to extend)."""
    for table in sorted(set(stored) | set(new)):
        a, b = dict(stored.get(table, {})), dict(new.get(table, {}))
        if table == "study":
            a.pop("n_trials", None)
            b.pop("n_trials", None)
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return f"[{table}] {key}: stored {a.get(key)!r}, now {b.get(key)!r}"
    return ""


def make_sampler(spec: Spec) -> optuna.samplers.BaseSampler:
    if spec.sampler == "grid":
        space: dict[str, list[float] | list[str]] = {
            "padding": list(spec.paddings or ()),
            "hidden": spec.hidden_keys,
        }
        return optuna.samplers.GridSampler(space, seed=spec.seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    return optuna.samplers.TPESampler(seed=spec.seed)


def make_pruner(spec: Spec) -> optuna.pruners.BasePruner:
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def _context(
    spec: Spec, prepared: Prepared, study: optuna.Study, folder: Path, storage_label: str
) -> StudyContext:
    expected = study.user_attrs.get("init_sha256")
    inits = initial.prepare(folder / "init", prepared.factory, spec.hidden, spec.seed, expected)
    digests = {key: initial.state_sha256(state) for key, state in inits.items()}
    facts = {
        "seed": spec.seed,
        "split_seed": spec.split_seed,
        "split_sha256": prepared.split.sha256(),
        "data_sha256": prepared.data.sha256(),
        "dataset": spec.data.get("name"),
        "ratings": len(prepared.data),
        "users": prepared.data.n_users,
        "items": prepared.data.n_items,
        "rating_range": list(prepared.data.rating_range),
        "rows": {
            "train": len(prepared.split.train),
            "valid": len(prepared.split.valid),
            "test": len(prepared.split.test),
        },
        "versions": library_versions(),
        "storage": storage_label,
    }
    stored_facts = study.user_attrs.get("facts")
    split_digest = prepared.split.sha256()
    if stored_facts and stored_facts.get("split_sha256") != split_digest:
        raise MinnetError(
            f"study '{spec.name}' was run on different data or split (split sha256 "
            f"{str(stored_facts.get('split_sha256'))[:12]}, now {split_digest[:12]}); "
            "restore the data or start a new study"
        )
    if expected is None:
        study.set_user_attr("init_sha256", digests)
    if not stored_facts:
        study.set_user_attr("facts", facts)
    return StudyContext(spec, prepared, inits, digests)


def objective(context: StudyContext, trial: optuna.Trial) -> float:
    """Train one trial from its head shape's stored initial weights; return validation MSE."""
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

    def report(epoch: int, mse: float) -> None:
        trial.report(mse, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} at validation MSE {mse:.5f}")

    try:
        run = run_once(
            context.prepared,
            initial.parse_hidden(key),
            padding,
            spec.training,
            spec.seed,
            init=context.inits[key],
            on_epoch=report,
        )
    except TrainingDiverged as exc:
        trial.set_user_attr("fail_reason", str(exc))
        raise
    trial.set_user_attr("init_sha256", run.init_sha256)
    trial.set_user_attr("seconds", round(run.result.seconds, 3))
    trial.set_user_attr("val_mse_per_epoch", run.result.val_mse_per_epoch)
    return run.result.val_mse


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return min(complete, key=lambda t: (t.value, t.number)) if complete else None


def _search(study: optuna.Study, context: StudyContext, progress: bool) -> None:
    spec = context.spec
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    if done >= spec.n_trials:
        log.info(
            "study '%s' already has %d of %d trials; nothing to run",
            spec.name,
            done,
            spec.n_trials,
        )
        return
    log.info(
        "study '%s': %d of %d trials done, running %d",
        spec.name,
        done,
        spec.n_trials,
        spec.n_trials - done,
    )

    bar = tqdm(
        total=spec.n_trials, initial=done, unit="trial", desc=spec.name, disable=not progress
    )
    stop = optuna.study.MaxTrialsCallback(spec.n_trials, states=FINISHED)

    def finished(study: optuna.Study, trial: FrozenTrial) -> None:
        _log_trial(study, trial)
        if trial.state in FINISHED:
            bar.update(1)

    try:
        # Failed trials do not count towards n_trials; go round again for the missing ones,
        # but stop if a whole round completes nothing (every remaining trial fails).
        while done < spec.n_trials:
            study.optimize(
                lambda t: objective(context, t),
                n_trials=spec.n_trials - done,
                callbacks=[stop, finished],
                catch=(TrainingDiverged,),
            )
            now = len(study.get_trials(deepcopy=False, states=FINISHED))
            if now == done:
                log.warning(
                    "a round of trials finished none; stopping at %d of %d", now, spec.n_trials
                )
                break
            done = now
    finally:
        bar.close()


def _log_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    params = f"padding {trial.params.get('padding'):g}, hidden [{trial.params.get('hidden', '')}]"
    if trial.state == TrialState.COMPLETE:
        best = best_trial(study) or trial
        log.info(
            "trial %d: %s -> valid MSE %.5f (%.1f s); best %.5f (trial %d)",
            trial.number,
            params,
            trial.value,
            trial.user_attrs.get("seconds", 0.0),
            best.value,
            best.number,
        )
    else:
        reason = trial.user_attrs.get("fail_reason") or trial.system_attrs.get("fail_reason", "")
        log.info("trial %d: %s -> %s %s", trial.number, params, trial.state.name.lower(), reason)
