"""The learning-rate schedule shared by ``wideseek train`` and ``wideseek sft``: linear warm-up, then
constant, linear or cosine decay to ``min_lr_ratio`` of the peak at ``total`` optimizer steps."""

from __future__ import annotations

import math

__all__ = ["SCHEDULES", "lr_factor"]

SCHEDULES = ("constant", "linear", "cosine")


def lr_factor(optimizer_step: int, *, total: int, warmup_steps: int = 0, schedule: str = "constant",
              min_lr_ratio: float = 0.0) -> float:
    """The LR multiplier after ``optimizer_step`` optimizer steps (a ``LambdaLR`` factor)."""
    if warmup_steps and optimizer_step < warmup_steps:
        return (optimizer_step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (optimizer_step - warmup_steps) / max(1, total - warmup_steps))
    shape = 1.0 - progress if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_lr_ratio + (1.0 - min_lr_ratio) * shape
