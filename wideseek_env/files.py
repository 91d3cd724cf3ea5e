"""Small file helpers shared by long-running commands and the readers: an exclusive directory lock,
atomic JSON writes (a reader never sees a half-written file; a kill leaves the old file or the new one)
and the lone-surrogate cleaning that the corpus and task readers apply to decoded JSON."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

from wideseek_env.errors import WideseekError

__all__ = ["locked_dir", "write_json_atomic", "file_sha256", "without_surrogates"]

_SURROGATE = re.compile("[\ud800-\udfff]")


@contextlib.contextmanager
def locked_dir(directory: Path, busy_message: str) -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on ``directory/.lock`` for the ``with`` block.

    Another holder (in any process) makes it raise :class:`WideseekError` with ``busy_message``. The lock
    goes with the process, so a killed run never leaves a stale lock behind."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise WideseekError(busy_message) from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` through a temporary file and ``os.replace``."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def without_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate in its strings (keys too) replaced by U+FFFD.

    A JSON ``"\\ud800"`` escape decodes to a lone surrogate: not text, and unwritable as UTF-8, so a
    reader that keeps it would fail later, far from the bad line."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, list):
        return [without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in value.items()}
    return value
