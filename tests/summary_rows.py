"""Rows of StudySummary tables built by hand, shared by the report and plot tests."""

from __future__ import annotations

from typing import Any

import pandas as pd


def trial(number: int, state: str, padding: float, hidden: str, val_mse: float) -> dict[str, Any]:
    return {
        "number": number,
        "state": state,
        "padding": padding,
        "hidden": hidden,
        "val_mse": val_mse,
        "val_mse_per_epoch": [val_mse + 0.05, val_mse],
        "seconds": 1.0,
        "init_sha256": "0" * 64,
        "seed": 0,
        "split_sha256": "1" * 64,
        "fail_reason": "loss is nan <at step 3>" if state == "FAIL" else "",
    }


def final(role: str, seed: int, test_mse: float, trace: list[float]) -> dict[str, Any]:
    return {
        "role": role,
        "seed": seed,
        "hidden": "10",
        "padding_initial": 0.5,
        "padding_final": trace[-1] if trace else 0.5,
        "test_mse": test_mse,
        "val_mse_per_epoch": [test_mse + 0.1, test_mse + 0.02, test_mse],
        "padding_trace": trace,
    }


# Trials 2 (pruned) and 4 (failed) carry the lowest MSE: they must still never rank.
TRIALS = pd.DataFrame(
    [
        trial(0, "COMPLETE", 0.9, "10", 0.82),
        trial(1, "COMPLETE", 0.3, "10", 0.85),
        trial(2, "PRUNED", 0.5, "50-25", 0.10),
        trial(3, "COMPLETE", 0.5, "10", 0.80),
        trial(4, "FAIL", 0.7, "50", 0.05),
        trial(5, "COMPLETE", 0.7, "50-25", 0.83),
        trial(6, "COMPLETE", 0.2, "50", 0.81),
    ]
)

FINALS = pd.DataFrame(
    [
        final("fixed", 1, 0.80, []),
        final("learnable", 1, 0.79, [0.5, 0.55, 0.6]),
        final("fixed", 2, 0.81, []),
        final("learnable", 2, 0.805, [0.5, 0.52, 0.58]),
    ]
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
