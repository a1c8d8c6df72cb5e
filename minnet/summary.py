"""What a finished study hands to the report: tables of trials and final runs, and facts.

Both tables are read back from the study's storage, so a report can be made again from
storage alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# Columns of StudySummary.trials, one row per search trial.
TRIAL_COLUMNS = (
    "number",  # int, Optuna's trial number
    "state",  # "COMPLETE", "PRUNED", "FAIL", "RUNNING", ...
    "padding",  # float
    "hidden",  # str, widths joined by "-": "10", "50-25"
    "val_mse",  # float, validation MSE after the last epoch (NaN unless COMPLETE)
    "val_mse_per_epoch",  # list[float], as far as the trial got
    "seconds",  # float, training time
    "init_sha256",  # str, digest of the initial weights the trial loaded
    "seed",  # int
    "split_sha256",  # str
    "fail_reason",  # str, empty unless FAIL
)

# Columns of StudySummary.finals, one row per final-comparison run.
FINAL_COLUMNS = (
    "role",  # "fixed" (best fixed padding) or "learnable"
    "seed",  # int; runs with the same seed are a pair
    "hidden",  # str
    "padding_initial",  # float
    "padding_final",  # float (equal to padding_initial for "fixed")
    "test_mse",  # float, on the test rows the search never saw
    "val_mse_per_epoch",  # list[float]
    "padding_trace",  # list[float], value after every step ("learnable" only, else [])
)


@dataclass
class StudySummary:
    name: str
    trials: pd.DataFrame
    finals: pd.DataFrame
    facts: dict[str, Any] = field(default_factory=dict)


def load_summary(storage: Any, name: str) -> StudySummary:
    """Read a study and its final comparison back from storage."""
    import optuna

    from minnet.compare import final_study_name
    from minnet.errors import MinnetError
    from minnet.spec import FINAL_SUFFIX
    from minnet.storage import load_study, study_names

    if name.endswith(FINAL_SUFFIX):
        raise MinnetError(
            f"'{name}' is the final comparison of study '{name[: -len(FINAL_SUFFIX)]}'; "
            "report on that study instead"
        )
    study = load_study(storage, name)
    names = study_names(storage)
    frozen = study.get_trials(deepcopy=False)
    trials = _trials_frame(frozen)

    finals = pd.DataFrame(columns=list(FINAL_COLUMNS))
    complete = trials[trials["state"] == "COMPLETE"]
    if final_study_name(name) in names and not complete.empty:
        best = complete.sort_values(["val_mse", "number"]).iloc[0]
        final = optuna.load_study(study_name=final_study_name(name), storage=storage)
        finals = _finals_frame(final.get_trials(deepcopy=False), best["hidden"], best["padding"])

    facts = dict(study.user_attrs.get("facts", {}))
    facts["spec"] = study.user_attrs.get("spec", {})
    facts["init_sha256"] = study.user_attrs.get("init_sha256", {})
    facts["search"] = search_note(facts["spec"], frozen)
    return StudySummary(name=name, trials=trials, finals=finals, facts=facts)


def search_note(spec: dict[str, Any], trials: list[Any]) -> str:
    """Whether the search itself (not just each trial) can be reproduced, in a sentence."""
    listed = isinstance(spec.get("search", {}).get("padding"), list)
    sampler = spec.get("study", {}).get("sampler", "grid" if listed else "tpe")
    workers = {t.user_attrs["worker"] for t in trials if "worker" in t.user_attrs}
    n = len(workers)
    ran = f"run by {n} worker process{'es' if n != 1 else ''}"
    if sampler == "grid":
        return f"grid: every point once, {ran}; the set of trials does not depend on the workers"
    if sampler == "random":
        return f"random: each trial's draw depends only on the seed and its number; {ran}"
    if n <= 1:
        return f"TPE {ran}: reproducible from the seed"
    return (
        f"TPE {ran}: each proposal depended on which parallel trials had finished, so the "
        "search cannot be reproduced; each trial can (minnet replay)"
    )


def _trials_frame(trials: list[Any]) -> pd.DataFrame:
    rows = []
    for t in trials:
        per_epoch = [t.intermediate_values[k] for k in sorted(t.intermediate_values)]
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "padding": t.params.get("padding", float("nan")),
                "hidden": str(t.params.get("hidden", "")),
                "val_mse": t.value if t.state.name == "COMPLETE" else float("nan"),
                "val_mse_per_epoch": t.user_attrs.get("val_mse_per_epoch", per_epoch),
                "seconds": t.user_attrs.get("seconds", float("nan")),
                "init_sha256": t.user_attrs.get("init_sha256", ""),
                "seed": t.user_attrs.get("seed"),
                "split_sha256": t.user_attrs.get("split_sha256", ""),
                "fail_reason": t.user_attrs.get("fail_reason")
                or t.system_attrs.get("fail_reason", ""),
            }
        )
    return pd.DataFrame(rows, columns=list(TRIAL_COLUMNS))


def _finals_frame(trials: list[Any], hidden: str, padding: float) -> pd.DataFrame:
    rows = []
    for t in trials:
        a = t.user_attrs
        if (
            t.state.name != "COMPLETE"
            or a.get("hidden") != hidden
            or a.get("padding_best") != padding
        ):
            continue
        rows.append(
            {
                "role": a["role"],
                "seed": a["seed"],
                "hidden": a["hidden"],
                "padding_initial": a["padding_initial"],
                "padding_final": a["padding_final"],
                "test_mse": t.value,
                "val_mse_per_epoch": a["val_mse_per_epoch"],
                "padding_trace": a["padding_trace"] if a["role"] == "learnable" else [],
            }
        )
    frame = pd.DataFrame(rows, columns=list(FINAL_COLUMNS))
    # one run per (seed, role), even if two processes both finished it
    frame = frame.drop_duplicates(["seed", "role"], keep="first")
    return frame.sort_values(["seed", "role"], ignore_index=True)
