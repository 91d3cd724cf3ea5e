"""The files of an evaluation run: ``episodes.jsonl`` (one record per finished episode, appended as it
ends) and ``transcripts.jsonl`` (per episode, every agent's messages, texts and tokens)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from agents.eval.spec import EvalError

__all__ = ["read_episodes", "JsonlLog", "read_transcripts"]


def read_episodes(path: Path, *, repair: bool = True) -> dict[tuple[str, int], dict[str, Any]]:
    """The records of a JSONL run file by ``(task_id, sample)`` (the first record of a pair wins).

    A last line that does not parse (or lacks its newline: a run killed mid-write) is cut off the file
    when ``repair``; a bad line before the last is an :class:`EvalError` naming the line."""
    records: dict[tuple[str, int], dict[str, Any]] = {}
    if not path.exists():
        return records
    lines = path.read_bytes().split(b"\n")
    offset = 0
    for lineno, raw in enumerate(lines, 1):
        is_last = lineno == len(lines) or (lineno == len(lines) - 1 and lines[-1] == b"")
        complete = lineno < len(lines)  # followed by a newline
        if raw.strip():
            try:
                if not complete:
                    raise ValueError("no newline at the end")
                rec = json.loads(raw)
                key = (str(rec["task_id"]), int(rec["sample"]))
            except (ValueError, KeyError, TypeError) as exc:
                if is_last:
                    if repair:
                        with open(path, "r+b") as f:
                            f.truncate(offset)
                    break
                raise EvalError(
                    f"{path}:{lineno}: not an episode record ({exc}); remove that line or use --overwrite"
                ) from None
            records.setdefault(key, rec)
        offset += len(raw) + 1
    return records


def read_transcripts(path: Path) -> Iterator[dict[str, Any]]:
    """The transcripts of ``transcripts.jsonl`` in file order (a cut-off last line is skipped)."""
    for rec in read_episodes(path, repair=False).values():
        yield rec


class JsonlLog:
    """Appends records to a JSONL file, one line each, flushed at once (fsync'ed every second)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = open(path, "a", encoding="utf-8")
        self._synced = time.monotonic()

    def append(self, record: Mapping[str, Any]) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()
        if time.monotonic() - self._synced > 1.0:
            os.fsync(self._f.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._f.flush()
            os.fsync(self._f.fileno())
        self._f.close()
