"""Which samples go into an update, and in what pieces.

- :func:`split_by_signal`: dynamic sampling. Groups whose rewards are all equal have advantage 0 for every
  token, so they add exactly nothing to the loss (without a KL term); they are set aside before any
  log-prob or backward work (verl/DAPO ``filter_groups``).
- :func:`token_budget_microbatches`: micro-batches packed by padded tokens (samples x the longest sample)
  instead of a sample count (RLinf ``max_tokens_per_mbs``), so short samples share a forward pass and a
  long one runs alone. Gradient accumulation stays exact: the loss weights are computed once per batch.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["split_by_signal", "token_budget_microbatches"]


def split_by_signal(episodes: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """``(with_signal, zero_variance)``: episodes of groups whose rewards differ, and of groups whose
    rewards are all equal (a group of one included). Order is kept within each list."""
    groups: dict[Any, list[float]] = {}
    for e in episodes:
        groups.setdefault(e.group_id, []).append(float(e.reward))
    flat = {g for g, rs in groups.items() if max(rs) == min(rs)}
    return [e for e in episodes if e.group_id not in flat], [e for e in episodes if e.group_id in flat]


def token_budget_microbatches(samples: Sequence[Any], *, max_tokens: int | None = None,
                              max_samples: int | None = None) -> list[list[Any]]:
    """Micro-batches of ``samples`` sorted by length (less padding). With ``max_tokens``, a micro-batch
    grows while ``count * longest <= max_tokens`` (a longer sample goes alone); otherwise it holds
    ``max_samples`` samples."""
    order = sorted(samples, key=len)
    if max_tokens is None:
        k = max(1, max_samples or len(order) or 1)
        return [order[i:i + k] for i in range(0, len(order), k)]
    out: list[list[Any]] = []
    current: list[Any] = []
    for s in order:  # ascending: the new sample is the longest of the micro-batch
        if current and (len(current) + 1) * len(s) > max_tokens:
            out.append(current)
            current = []
        current.append(s)
    if current:
        out.append(current)
    return out
