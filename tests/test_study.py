import re
from pathlib import Path

import optuna
import pytest

from minnet.errors import MinnetError
from minnet.initial import read_state, state_sha256
from minnet.spec import spec_from_dict
from minnet.storage import open_storage
from minnet.study import run_study


def raw_spec(**study: object) -> dict:
    return {
        "study": {"name": "t", "seed": 3, **study},
        "data": {"name": "tiny"},
        "training": {"epochs": 2, "batch_size": 32},
        "search": {"padding": [0.0, 0.25, 0.5], "hidden": [[4], [8, 4]]},
        "final": {"seeds": 2},
    }


def trials(results: Path, name: str = "t") -> list[optuna.trial.FrozenTrial]:
    store = open_storage(None, results / name)
    return optuna.load_study(study_name=name, storage=store).get_trials()


def test_study_runs_resumes_and_extends_exactly(tmp_path: Path, data_dir: Path) -> None:
    results = tmp_path / "results"

    run_study(spec_from_dict(raw_spec(n_trials=2)), results, data_dir=data_dir)
    assert len(trials(results)) == 2

    run_study(spec_from_dict(raw_spec(n_trials=2)), results, data_dir=data_dir)
    assert len(trials(results)) == 2  # nothing repeated

    summary = run_study(spec_from_dict(raw_spec(n_trials=5)), results, data_dir=data_dir)
    done = trials(results)
    assert len(done) == 5 and all(t.state.name == "COMPLETE" for t in done)
    points = {(t.params["padding"], t.params["hidden"]) for t in done}
    assert len(points) == 5  # no grid point twice

    assert len(summary.finals) == 4
    assert sorted(summary.finals["role"]) == ["fixed", "fixed", "learnable", "learnable"]
    for name in (
        "report.html",
        "report.md",
        "trials.csv",
        "finals.csv",
        "plots/mse_vs_padding.png",
    ):
        assert (results / "t" / name).is_file(), name


def test_every_trial_loaded_its_shapes_stored_weights(tmp_path: Path, data_dir: Path) -> None:
    summary = run_study(spec_from_dict(raw_spec(n_trials=6)), tmp_path, data_dir=data_dir)

    files = {p.stem: state_sha256(read_state(p)) for p in (tmp_path / "t" / "init").glob("*.pt")}
    assert set(files) == {"4", "8-4"}
    for t in trials(tmp_path):
        assert t.user_attrs["init_sha256"] == files[t.params["hidden"]]
        assert t.user_attrs["seed"] == 3
        assert t.user_attrs["split_sha256"] == summary.facts["split_sha256"]
    # the embeddings part is shared, so the two shapes' files differ only in the head
    assert files["4"] != files["8-4"]


def test_identical_parameters_give_bit_identical_results(tmp_path: Path, data_dir: Path) -> None:
    raw = raw_spec(n_trials=3, sampler="random")
    raw["search"] = {"padding": [0.25], "hidden": [[8, 4]]}
    run_study(spec_from_dict(raw), tmp_path, data_dir=data_dir)

    values = [t.value for t in trials(tmp_path)]
    assert len(values) == 3 and values[0] == values[1] == values[2]


def test_learnable_padding_moves_in_the_final_runs(tmp_path: Path, data_dir: Path) -> None:
    summary = run_study(spec_from_dict(raw_spec(n_trials=2)), tmp_path, data_dir=data_dir)

    learnable = summary.finals[summary.finals["role"] == "learnable"]
    fixed = summary.finals[summary.finals["role"] == "fixed"]
    assert (learnable["padding_final"] != learnable["padding_initial"]).all()
    assert (fixed["padding_final"] == fixed["padding_initial"]).all()
    steps = -(-summary.facts["rows"]["train"] // 32) * 2  # ceil(rows / batch) x epochs
    assert all(len(trace) == steps for trace in learnable["padding_trace"])
    for trace, k in zip(learnable["padding_trace"], learnable["padding_final"], strict=True):
        assert trace[-1] == pytest.approx(k, abs=1e-6)


def test_bad_input_leaves_nothing_under_results(tmp_path: Path, data_dir: Path) -> None:
    results = tmp_path / "results"
    raw = raw_spec()
    raw["search"]["padding"] = [0.5, -3.0]
    with pytest.raises(MinnetError, match=r"\[search\] padding -3 makes the output range empty"):
        run_study(spec_from_dict(raw), results, data_dir=data_dir)

    raw = raw_spec()
    raw["data"]["name"] = "missing"
    with pytest.raises(MinnetError, match="dataset 'missing' not found"):
        run_study(spec_from_dict(raw), results, data_dir=data_dir)

    with pytest.raises(MinnetError, match="not a storage URL"):
        run_study(spec_from_dict(raw_spec()), results, storage="nonsense://x", data_dir=data_dir)
    assert not results.exists() or not any(results.iterdir())


def test_changed_spec_on_existing_study_is_refused(tmp_path: Path, data_dir: Path) -> None:
    run_study(spec_from_dict(raw_spec(n_trials=1)), tmp_path, data_dir=data_dir)
    raw = raw_spec(n_trials=1)
    raw["training"]["lr"] = 0.01
    with pytest.raises(
        MinnetError, match=r"different spec \(training.lr: stored 0.001, now 0.01\)"
    ):
        run_study(spec_from_dict(raw), tmp_path, data_dir=data_dir)


def test_synthetic_study_reports_the_best_achievable_error(tmp_path: Path) -> None:
    raw = raw_spec(n_trials=2)
    raw["data"] = {"name": "synthetic", "n_ratings": 3000, "n_users": 100, "n_items": 150}
    raw["final"] = {"seeds": 0}
    summary = run_study(spec_from_dict(raw), tmp_path, data_dir=tmp_path / "no-data-needed")

    noise = summary.facts["noise_mse"]
    assert 0 < noise < summary.trials["val_mse"].min()
    text = (tmp_path / "t" / "report.md").read_text()
    assert f"the best achievable MSE is {noise:.4f}" in text


def test_every_run_states_its_cold_rows(tmp_path: Path) -> None:
    raw = raw_spec(n_trials=1)
    raw["data"] = {"name": "synthetic", "n_ratings": 3000, "n_users": 100, "n_items": 300}
    raw["split"] = {"cold": "drop"}
    summary = run_study(spec_from_dict(raw), tmp_path, data_dir=tmp_path / "unused")

    sentence = summary.facts["cold_rows"]
    assert re.match(r"[1-9]\d* validation and \d+ test rows involve a user or movie", sentence)
    assert "(dropped" in sentence
    assert (
        "rows involve a user or movie with no training rows"
        in (tmp_path / "t" / "report.md").read_text()
    )
