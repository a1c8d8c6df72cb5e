"""The initial weights, kept in the study's storage so a worker needs only the URL and the data.

Each tensor is stored once, under the sha256 of its bytes, as base64 text in study system
attrs of at most ``CHUNK`` characters (MySQL's TEXT column holds 64 KiB). The embeddings are
the same for every head shape, so they are stored once for all shapes. System attrs, not
user attrs, so that reading the spec or the facts does not fetch megabytes of weights.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import numpy as np
import optuna
import torch

from minnet.errors import MinnetError
from minnet.initial import State, state_sha256

MANIFEST = "minnet:init_manifest"
BLOB = "minnet:init_blob:"
CHUNK = 49_152


def store(study: optuna.Study, inits: dict[str, State]) -> None:
    """Write ``inits`` (head shape key -> state) into the study's storage, skipping stored ones."""
    storage, study_id = _where(study)
    stored = storage.get_study_system_attrs(study_id)
    manifest: dict[str, dict[str, Any]] = dict(stored.get(MANIFEST, {}))
    for key, state in inits.items():
        entry = {}
        for name, tensor in state.items():
            array = tensor.detach().cpu().contiguous().numpy()
            data = array.tobytes()
            digest = hashlib.sha256(data).hexdigest()
            text = base64.b64encode(data).decode("ascii")
            chunks = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
            if f"{BLOB}{digest}:0" not in stored:
                for i, chunk in enumerate(chunks):
                    storage.set_study_system_attr(study_id, f"{BLOB}{digest}:{i}", chunk)
                stored[f"{BLOB}{digest}:0"] = chunks[0]
            entry[name] = {
                "sha256": digest,
                "dtype": array.dtype.str,
                "shape": list(array.shape),
                "chunks": len(chunks),
            }
        manifest[key] = entry
    storage.set_study_system_attr(study_id, MANIFEST, manifest)


def present(study: optuna.Study) -> bool:
    storage, study_id = _where(study)
    return MANIFEST in storage.get_study_system_attrs(study_id)


def load(study: optuna.Study, expected: dict[str, str]) -> dict[str, State]:
    """Read every shape's initial weights back and check them against the recorded digests."""
    storage, study_id = _where(study)
    stored = storage.get_study_system_attrs(study_id)
    manifest = stored.get(MANIFEST)
    if not manifest:
        raise MinnetError(
            f"study '{study.study_name}' keeps no initial weights in its storage; it was made "
            "by an older minnet: resume it once with `minnet run SPEC` on the machine holding "
            "its results folder"
        )
    states = {}
    for key, entry in manifest.items():
        state = {name: _tensor(stored, name, info) for name, info in entry.items()}
        digest = state_sha256(state)
        if digest != expected.get(key):
            raise MinnetError(
                f"study '{study.study_name}': stored initial weights of head [{key}] have sha256 "
                f"{digest[:12]}, but the study recorded {str(expected.get(key))[:12]}; "
                "the storage was altered: start a new study"
            )
        states[key] = state
    return states


def _tensor(stored: dict[str, Any], name: str, info: dict[str, Any]) -> torch.Tensor:
    text = "".join(stored[f"{BLOB}{info['sha256']}:{i}"] for i in range(info["chunks"]))
    data = base64.b64decode(text)
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise MinnetError(
            f"stored initial weight '{name}' is corrupt (sha256 mismatch); start a new study"
        )
    array = np.frombuffer(data, dtype=np.dtype(info["dtype"])).reshape(info["shape"])
    return torch.from_numpy(array.copy())


def _where(study: optuna.Study) -> tuple[optuna.storages.BaseStorage, int]:
    storage = study._storage  # Study exposes no public handle on its storage and id
    return storage, storage.get_study_id_from_name(study.study_name)
