"""Decoding task files: their bytes as UTF-8 text (a BOM accepted) and their JSON, for the loaders
of :mod:`wideseek_env.tasks.loaders` and :mod:`wideseek_env.tasks.formats`.

Undecodable bytes and unreadable files are ``TaskFormatError`` naming the file and line; JSON that
Python cannot hold (too deep, a number too long) is invalid JSON like any other; a lone surrogate in a
JSON string becomes U+FFFD.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wideseek_env.errors import TaskFormatError
from wideseek_env.files import without_surrogates


def read_text(path: Path) -> str:
    """The file's text (UTF-8, a leading BOM dropped); ``TaskFormatError`` with the line of a bad byte."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TaskFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TaskFormatError(
            f"{path}:{line}: not valid UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None





def loads(text: str) -> Any:
    """json.loads; numbers too long to convert and nesting too deep are invalid JSON too."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(str(exc), text, 0) from None
    return without_surrogates(value) if ("\\ud" in text or "\\uD" in text) else value
