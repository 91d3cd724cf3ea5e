"""Writing a generated task set: crash-safe, idempotent, locked.

Files are written (and fsynced) into ``out_dir/.tmp-<pid>/``; then the marker
``out_dir/.incomplete`` is written and fsynced, the old ``stats.json`` removed, the files moved into
place one by one with ``os.replace`` (``stats.json`` last), and the marker removed. A process killed
at any point leaves the previous or the new files with their ``stats.json``, or the marker, which
:func:`~wideseek_env.tasks.loaders.load_tasks` refuses. ``stats.json`` records the parameters
(generator, code and corpus fingerprints, seed...) and the count and SHA-256 of both task files;
:func:`reusable` returns the stats of a directory whose files still match the same parameters.
A lock file (:func:`lock`) serialises concurrent generations of one directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from wideseek_env.files import file_sha256
from wideseek_env.tasks.loaders import INCOMPLETE_MARKER
from wideseek_env.table.schema import Task

TRAIN_FILE, TEST_FILE, STATS_FILE = "train.jsonl", "test.jsonl", "stats.json"


def distribution(values: Sequence[int]) -> dict:
    if not values:
        return {"min": 0, "median": 0, "mean": 0.0, "max": 0, "histogram": {}}
    hist = Counter(values)
    return {
        "min": min(values),
        "median": statistics.median(values),
        "mean": round(sum(values) / len(values), 2),
        "max": max(values),
        "histogram": {str(k): hist[k] for k in sorted(hist)},
    }


def reusable(out_dir: Path, params: dict) -> dict | None:
    if (out_dir / INCOMPLETE_MARKER).exists():  # a killed generation's files: never trusted
        return None
    try:
        stats = json.loads((out_dir / STATS_FILE).read_text(encoding="utf-8"))
        if stats.get("params") != params:
            return None
        for name, info in stats["files"].items():
            if file_sha256(out_dir / name) != info["sha256"]:
                return None
        return stats
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_jsonl(path: Path, tasks: Iterable[Task]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for task in tasks:
            f.write(json.dumps(task.to_json(), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def lock(out_dir: Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``out_dir/.lock`` (waits for a concurrent generation)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: generations of one directory must not overlap
        yield
        return
    fd = os.open(out_dir / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_outputs(out_dir: Path, train: list[Task], test: list[Task], stats: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for leftover in out_dir.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = out_dir / f".tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        _write_jsonl(tmp / TRAIN_FILE, train)
        _write_jsonl(tmp / TEST_FILE, test)
        stats["files"] = {
            TRAIN_FILE: {"tasks": len(train), "sha256": file_sha256(tmp / TRAIN_FILE)},
            TEST_FILE: {"tasks": len(test), "sha256": file_sha256(tmp / TEST_FILE)},
        }
        with open(tmp / STATS_FILE, "w", encoding="utf-8") as f:
            json.dump(stats, f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        # From the first replace until stats.json is in place, the directory may hold a new
        # train.jsonl beside an old test.jsonl: the marker (durable before anything moves) says so,
        # and the loader and _reusable refuse a directory that holds it.
        marker = out_dir / INCOMPLETE_MARKER
        with open(marker, "w", encoding="utf-8") as f:
            f.write("wideseek tasks generate was moving new task files into this directory; while "
                    "this file exists that did not finish: run it again\n")
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(out_dir)
        # stats.json last: it vouches (by count and hash) for the task files beside it.
        (out_dir / STATS_FILE).unlink(missing_ok=True)
        os.replace(tmp / TRAIN_FILE, out_dir / TRAIN_FILE)
        os.replace(tmp / TEST_FILE, out_dir / TEST_FILE)
        os.replace(tmp / STATS_FILE, out_dir / STATS_FILE)
        _fsync_dir(out_dir)  # the renames are durable before the marker goes
        marker.unlink()
        _fsync_dir(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    """Flush a directory's entries (renames, new and removed files) to disk, where the OS allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # not supported for directories here
        pass
    finally:
        os.close(fd)
