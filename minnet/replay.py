"""Replay one stored trial and check that it gives the very same validation MSE, bit for bit.

Everything a trial depended on is in the storage: the spec, the digests of the data split
and of the initial weights (and the weights themselves), the seed, the parameters and the
number of torch threads its worker used. Replaying rebuilds the split from the local data,
checks both digests, and trains again; the worker, the machine and the order in which
trials ran make no difference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from optuna.trial import TrialState

from minnet import stored_init
from minnet.errors import MinnetError
from minnet.initial import parse_hidden
from minnet.objective import prepare_data
from minnet.runs import run_once
from minnet.spec import spec_from_dict
from minnet.storage import load_study, open_storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replay:
    number: int
    params: dict[str, object]
    worker: str
    threads: int
    stored: float
    replayed: float

    @property
    def identical(self) -> bool:
        return self.stored == self.replayed


def replay(
    storage: str | None,
    folder: Path,
    study_name: str,
    number: int,
    data_dir: str | Path | None = None,
) -> Replay:
    """Train trial ``number`` of ``study_name`` again, as its worker did."""
    study = load_study(open_storage(storage, folder, create=False), study_name)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise MinnetError(
            f"study '{study_name}' has no trial {number}; its trials are 0 to {len(trials) - 1}"
        )
    trial = trials[number]
    if trial.state != TrialState.COMPLETE or trial.value is None:
        raise MinnetError(
            f"trial {number} of study '{study_name}' is {trial.state.name}; only COMPLETE "
            "trials have a value to replay"
        )
    attrs = trial.user_attrs
    spec = spec_from_dict(study.user_attrs["spec"], where=f"spec stored with '{study_name}'")

    prepared = prepare_data(spec, data_dir)
    data = prepared.data.sha256()
    stored_data = study.user_attrs.get("facts", {}).get("data_sha256", data)
    if data != stored_data:
        raise MinnetError(
            f"the ratings differ from the ones study '{study_name}' ran on (sha256 {data[:12]}, "
            f"study {str(stored_data)[:12]}); use the release the study used"
        )
    split = prepared.split.sha256()
    if split != attrs.get("split_sha256"):
        raise MinnetError(
            f"the data or split differ from trial {number}'s (split sha256 {split[:12]}, "
            f"trial {str(attrs.get('split_sha256'))[:12]}); use the release the study used"
        )
    hidden = str(trial.params["hidden"])
    inits = stored_init.load(study, study.user_attrs["init_sha256"])
    if study.user_attrs["init_sha256"].get(hidden) != attrs.get("init_sha256"):
        raise MinnetError(
            f"trial {number} loaded initial weights other than the study's for head [{hidden}]; "
            "it cannot be replayed from this storage"
        )

    threads = int(attrs.get("threads", torch.get_num_threads()))
    torch.set_num_threads(threads)  # float sums may split differently over other thread counts
    run = run_once(
        prepared,
        parse_hidden(hidden),
        float(trial.params["padding"]),
        spec.training,
        int(attrs.get("seed", spec.seed)),
        init=inits[hidden],
    )
    return Replay(
        number=number,
        params=dict(trial.params),
        worker=str(attrs.get("worker", "unknown")),
        threads=threads,
        stored=float(trial.value),
        replayed=run.result.val_mse,
    )
