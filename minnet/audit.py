"""Checks that catch a parameter that silently never trains.

The classic failure with a learnable padding is ``self.k = torch.tensor(0.5,
requires_grad=True)``: a plain tensor attribute is not registered, so it is not in
``model.parameters()``, the optimizer never sees it and it stays at 0.5 forever.
Training runs three checks, each raising AuditError naming the parameter:

1. before training, every tensor that asks for a gradient is a registered parameter,
   and every trainable parameter is in the optimizer;
2. after the first step, every trainable parameter received a finite gradient;
3. after training, a learnable padding moved.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from minnet.errors import AuditError


def check_registered(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    for prefix, module in model.named_modules():
        for attr, value in vars(module).items():
            is_loose = isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter)
            if is_loose and value.requires_grad:
                name = f"{prefix}.{attr}" if prefix else attr
                raise AuditError(
                    f"tensor '{name}' requires grad but is not a registered parameter, so the "
                    f"optimizer never updates it; wrap it: self.{attr} = nn.Parameter(...)"
                )

    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [
        n for n, p in model.named_parameters() if p.requires_grad and id(p) not in in_optimizer
    ]
    if missing:
        raise AuditError(
            f"trainable parameter(s) {', '.join(missing)} are not in the optimizer; "
            "create the optimizer after the model is complete, from model.parameters()"
        )


def check_gradients(model: nn.Module) -> None:
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            raise AuditError(
                f"parameter '{name}' got no gradient in the first step; "
                "it is not used by forward(), or its graph is detached"
            )
        values = p.grad.coalesce().values() if p.grad.is_sparse else p.grad
        if not bool(torch.isfinite(values).all()):
            raise AuditError(f"parameter '{name}' got a non-finite gradient in the first step")


def check_moved(name: str, before: float, after: float) -> None:
    if before == after or not math.isfinite(after):
        raise AuditError(
            f"learnable '{name}' ended at {after!r}, where it started; check that it reaches "
            "the loss and that its learning rate is not zero"
        )
