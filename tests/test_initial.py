import pytest
import torch

from minnet.errors import MinnetError
from minnet.initial import MiniNetFactory, create_state, load_state, prepare, state_sha256

FACTORY = MiniNetFactory(
    20, 30, (0.5, 5.0), n_factors=6, embedding_dropout=0.05, hidden_dropout=0.5
)


def test_embeddings_are_identical_across_head_shapes() -> None:
    a = create_state(FACTORY, (10,), seed=5)
    b = create_state(FACTORY, (50, 25), seed=5)

    for name in ("user_factors.weight", "item_factors.weight"):
        assert torch.equal(a[name], b[name])
        assert a[name].abs().max() <= 0.01
    assert a["head.1.weight"].shape == (10, 12) and b["head.4.weight"].shape == (25, 50)


def test_creation_is_deterministic_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    state = create_state(FACTORY, (10,), seed=5)
    after = torch.rand(1)

    assert state_sha256(state) == state_sha256(create_state(FACTORY, (10,), seed=5))
    assert state_sha256(state) != state_sha256(create_state(FACTORY, (10,), seed=6))
    assert torch.equal(before, after)


def test_strict_load_into_fixed_and_learnable_models() -> None:
    state = create_state(FACTORY, (10,), seed=5)

    fixed = FACTORY((10,), 0.25, False)
    learnable = FACTORY((10,), 0.75, True)

    assert load_state(fixed, state) == load_state(learnable, state) == state_sha256(state)
    assert torch.equal(fixed.user_factors.weight, state["user_factors.weight"])
    assert learnable.padding.item() == 0.75  # the start value is a hyperparameter, kept


def test_loading_into_another_shape_fails_clearly() -> None:
    state = create_state(FACTORY, (10,), seed=5)
    with pytest.raises(MinnetError, match="do not fit this model"):
        load_state(FACTORY((50,), 0.5, False), state)


def test_prepare_saves_then_reuses_and_detects_tampering(tmp_path) -> None:
    first = prepare(tmp_path, FACTORY, [(10,), (4, 4)], seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["10.pt", "4-4.pt"]
    digests = {k: state_sha256(s) for k, s in first.items()}

    again = prepare(tmp_path, FACTORY, [(10,), (4, 4)], seed=1, expected=digests)
    assert {k: state_sha256(s) for k, s in again.items()} == digests

    tampered = dict(first["10"])
    tampered["head.1.bias"] = tampered["head.1.bias"] + 1
    torch.save(tampered, tmp_path / "10.pt")
    with pytest.raises(MinnetError, match="differ from the ones this study started from"):
        prepare(tmp_path, FACTORY, [(10,)], seed=1, expected=digests)
