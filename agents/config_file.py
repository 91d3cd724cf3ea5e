"""Reading a run config (``TrainConfig``, ``SFTConfig``) from YAML: the file and its ``key=value``
overrides as a mapping, number strings made floats, the dataclass built with one kind of error.

Shared by :mod:`agents.train.config` and :mod:`agents.sft.config` so that both read files the same
way: every bad file or override (unreadable, not UTF-8, invalid YAML, not a mapping, a value that is
not a number where one is needed) is the config's own error class with a one-line message naming the
file, the override or the field.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Sequence

from wideseek_env.errors import require

__all__ = ["coerce_float_fields", "construct", "read_yaml_config"]


def read_yaml_config(
    path: str | os.PathLike, overrides: Sequence[str], error: type[Exception], what: str
) -> dict[str, Any]:
    """The mapping in the YAML file ``path`` with ``overrides`` (``key=value``, the value read as
    YAML) applied; anything wrong raises ``error`` (``what`` names the config in the message, e.g.
    ``"training config"``). Needs PyYAML (the ``[train]`` extra)."""
    yaml = require("yaml", "train")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{p}: cannot read the {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{p}: the {what} is not UTF-8 text ({exc.reason})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise error(f"{p}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{p}: the {what} must be a YAML mapping")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise error(f"override {item!r} must look like key=value")
        try:
            data[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise error(f"override {item!r}: invalid YAML value: {exc}") from None
    return data


def coerce_float_fields(cls: type, data: dict[str, Any], error: type[Exception]) -> None:
    """Make the values of ``cls``'s ``float`` fields in ``data`` floats, in place: YAML 1.1 reads
    ``1e-6`` (no dot) as a string. A value that is no number, or not a finite one, raises ``error``
    naming ``Cls.field``."""
    for f in dataclasses.fields(cls):
        v = data.get(f.name)
        if not str(f.type).startswith("float"):
            continue
        if isinstance(v, (str, int)) and not isinstance(v, bool):
            try:
                data[f.name] = float(v)
            except (ValueError, OverflowError):
                raise error(f"{cls.__name__}.{f.name} must be a number, got {v!r}") from None
        if isinstance(data.get(f.name), float) and not math.isfinite(data[f.name]):
            raise error(f"{cls.__name__}.{f.name} must be a finite number, got {v!r}")


def construct(cls: type, data: dict[str, Any], error: type[Exception]) -> Any:
    """``cls(**data)``, a ``TypeError`` (a missing or bad argument) raised as ``error``."""
    try:
        return cls(**data)
    except TypeError as exc:
        raise error(str(exc)) from None
