"""One knob for the fuzz tests' example counts: ``$WIDESEEK_FUZZ_SCALE`` (a positive integer, default 1).

The suite runs the counts written in the tests (``examples(150)`` is 150 examples); the fuzz benchmark
(``python benchmarks/fuzz.py``) runs the same tests with ``WIDESEEK_FUZZ_SCALE=10`` (10x the
examples). Deadlines are not scaled: a deadline bounds each example, whatever the number of examples,
and is what turns a near-hang into a failure.
"""

from __future__ import annotations

import os

ENV_VAR = "WIDESEEK_FUZZ_SCALE"


def scale() -> int:
    """The multiplier from ``$WIDESEEK_FUZZ_SCALE`` (1 when unset or empty); a bad value is an error."""
    raw = os.environ.get(ENV_VAR, "").strip() or "1"
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"${ENV_VAR} must be a positive integer, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"${ENV_VAR} must be a positive integer, not {raw!r}")
    return value


def examples(n: int) -> int:
    """``n`` examples times the scale: the value for ``@settings(max_examples=...)``."""
    return n * scale()
