"""Read task files in any of the three supported formats, and the :class:`TaskSet` container.

``load_tasks(path)`` detects the format of each file from its first record:

- **ours** (``Task.to_json`` lines; has ``required_columns`` and ``gold``);
- **WideSearch** ``widesearch.jsonl`` (``instance_id``, ``query``, ``evaluation`` as a JSON string or
  object, ``language``) with the gold tables in ``gold/<instance_id>.csv`` (or ``widesearch_gold/``)
  beside the file. CSVs may start with a BOM and hold multi-line quoted cells; header names are
  normalised and only the required columns are kept (extra ones such as "Country" are dropped);
  cells are stripped; short rows are padded with empty cells;
- **WideSeek-R1 training data** (``question`` or ``query``; ``answer``: a markdown table string for
  table tasks; ``unique_columns``; optional ``evaluation`` (object or JSON string) with ``required``
  and optionally ``eval_pipeline``; ``instance_id``; ``language``). Without ``required`` the answer
  table's header is used; without ``unique_columns`` the first column is the key; without an
  ``eval_pipeline`` keys are ``exact_match`` and other columns ``llm_judge``. A record whose
  ``answer`` is a list, holds no table, or has ``is_markdown: false`` is a QA task (``kind="qa"``).

``path`` may be a ``.jsonl`` file, a ``.json`` file holding a list of records, or a directory (every
``*.jsonl`` in it, sorted). Any problem (unreadable file, undecodable bytes, invalid JSON, missing
fields, a gold CSV missing or lacking a required column, duplicate ids) raises
:class:`~wideseek_env.errors.TaskFormatError` naming the file and line.

Output of ``wideseek tasks generate`` (:mod:`wideseek_env.taskgen.generate`) is checked before it
is read, whether the directory or one of its files is given:

- a directory holding the generator's marker ``.incomplete`` is refused: a generation was moving its
  files into place and did not finish, so ``train.jsonl`` and ``test.jsonl`` may come from two
  different runs;
- when the directory's ``stats.json`` has a ``"files"`` section, each task file it lists (that is
  being loaded) must hold the recorded number of tasks and have the recorded SHA-256 (a few MB: a
  few milliseconds), and, when the directory is given, be present; a file that was edited,
  truncated or half-written is refused.

Both errors name the directory and the command that regenerates it. A directory with neither
``stats.json`` nor the marker (hand-written task files) loads as before.

The WideSearch and WideSeek-R1 converters are in :mod:`wideseek_env.tasks.formats`, the decoding of
bytes and JSON in :mod:`wideseek_env.tasks.decoding`; this module detects formats, checks generated
directories, and holds :class:`TaskSet`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from wideseek_env.errors import TaskFormatError, UnknownTaskError
from wideseek_env.table.schema import Task
from wideseek_env.tasks.decoding import loads, read_text
from wideseek_env.tasks.formats import from_widesearch, from_wideseek_r1

FORMATS = ("wideseek", "widesearch", "wideseek-r1")
# Written by the task generator before it moves new files into a directory, removed once stats.json
# (which vouches for them) is in place: while it exists the directory may mix two generations.
INCOMPLETE_MARKER = ".incomplete"
GENERATION_STATS = "stats.json"


# ---------------------------------------------------------------------------------- reading


def _records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, decoded JSON value) of each non-blank line, or of each item of a JSON list."""
    text = read_text(path)
    if path.suffix == ".json":
        try:
            data = loads(text)
        except json.JSONDecodeError as exc:
            raise TaskFormatError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        items = data if isinstance(data, list) else [data]
        yield from enumerate(items, start=1)
        return
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, loads(line)
        except json.JSONDecodeError as exc:
            raise TaskFormatError(
                f"{path}:{line_no}: invalid JSON: {exc.msg} (column {exc.colno})"
            ) from None


def detect_format(record: Any) -> str | None:
    """``"wideseek"``, ``"widesearch"`` or ``"wideseek-r1"`` for a decoded record, else ``None``."""
    if not isinstance(record, dict):
        return None
    if "required_columns" in record and "gold" in record:
        return "wideseek"
    if "answer" in record and ("question" in record or "query" in record):
        return "wideseek-r1"
    if "evaluation" in record and "instance_id" in record:
        return "widesearch"
    return None


def load_tasks(path: str | Path) -> list[Task]:
    """All tasks of a file or directory, in file order (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        _check_generated(path, None)
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise TaskFormatError(f"{path}: directory holds no *.jsonl task file")
    elif path.exists():
        _check_generated(path.parent, path)
        files = [path]
    else:
        raise TaskFormatError(f"{path}: no such task file")
    tasks: list[Task] = []
    where: dict[str, str] = {}
    for file in files:
        for location, task in _load_file(file):
            if task.id in where:
                raise TaskFormatError(
                    f"{location}: duplicate task id {task.id!r} (first at {where[task.id]})"
                )
            where[task.id] = location
            tasks.append(task)
    return tasks


def _regenerate_hint(directory: Path, stats: dict | None = None) -> str:
    seed = None
    params = (stats or {}).get("params")
    if isinstance(params, dict) and isinstance(params.get("seed"), int):
        seed = params["seed"]
    command = f"wideseek tasks generate --corpus <corpus dir> --out {directory}"
    if seed is not None:
        command += f" --seed {seed}"
    return f"regenerate the tasks with '{command}'"


def _check_generated(directory: Path, only: Path | None) -> None:
    """Refuse the output of a task generation that did not finish, or whose files changed since.

    ``directory`` is a task directory (``only`` None: every file ``stats.json`` lists is checked and
    must exist) or the directory of the one task file ``only`` being loaded. See the module doc.
    """
    if (directory / INCOMPLETE_MARKER).exists():
        raise TaskFormatError(
            f"{directory}: a task generation into this directory did not finish (it holds "
            f"{INCOMPLETE_MARKER}), so its task files may be half-written or from two different runs; "
            f"{_regenerate_hint(directory)}"
        )
    stats_path = directory / GENERATION_STATS
    if not stats_path.is_file():
        return
    try:
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # not readable as the generator's stats: nothing vouches for or against the files
    files = stats.get("files") if isinstance(stats, dict) else None
    if not isinstance(files, dict):
        return
    for name, info in files.items():
        if not isinstance(name, str) or not isinstance(info, dict) or Path(name).name != name:
            continue  # only plain file names beside stats.json are the generator's
        file = directory / name
        if only is not None and file.name != only.name:
            continue
        if not file.is_file():
            raise TaskFormatError(
                f"{file}: missing, but {stats_path} lists it (the generated task set is incomplete); "
                f"{_regenerate_hint(directory, stats)}"
            )
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise TaskFormatError(f"{file}: cannot read: {exc.strerror or exc}") from None
        problem = None
        count = sum(1 for line in raw.split(b"\n") if line.strip())
        if isinstance(info.get("tasks"), int) and count != info["tasks"]:
            problem = f"holds {count} tasks where {stats_path.name} records {info['tasks']}"
        elif isinstance(info.get("sha256"), str) and hashlib.sha256(raw).hexdigest() != info["sha256"]:
            problem = f"its SHA-256 differs from the one {stats_path.name} records"
        if problem:
            raise TaskFormatError(
                f"{file}: {problem}: the file was modified or half-written after 'wideseek tasks "
                f"generate' wrote it; {_regenerate_hint(directory, stats)}"
            )


def _load_file(path: Path) -> Iterator[tuple[str, Task]]:
    fmt: str | None = None
    for line_no, record in _records(path):
        location = f"{path}:{line_no}"
        this = detect_format(record)
        if fmt is None:
            if this is None:
                raise TaskFormatError(
                    f"{location}: unknown task format: expected our task JSON (required_columns, gold), "
                    "WideSearch (instance_id, evaluation) or WideSeek-R1 (question, answer); got "
                    + (
                        f"keys {sorted(record)[:8]}"
                        if isinstance(record, dict)
                        else type(record).__name__
                    )
                )
            fmt = this
        elif this != fmt:
            raise TaskFormatError(f"{location}: record is not in this file's format ({fmt})")
        try:
            if fmt == "wideseek":
                task = Task.from_json(record)
            elif fmt == "widesearch":
                task = from_widesearch(record, path)
            else:
                task = from_wideseek_r1(record, path, line_no)
        except TaskFormatError as exc:
            raise TaskFormatError(f"{location}: {exc}") from None
        yield location, task


def save_tasks(tasks: Iterable[Task], path: str | Path) -> int:
    """Write tasks as our JSONL (one ``Task.to_json()`` per line, UTF-8); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as out:
        for task in tasks:
            out.write(json.dumps(task.to_json(), ensure_ascii=False) + "\n")
            n += 1
    return n


# ---------------------------------------------------------------------------------- TaskSet


class TaskSet:
    """Tasks by id, in load order.

    ``taskset[id]`` and ``taskset.get(id)`` raise :class:`UnknownTaskError` naming the id and the
    closest known ids; ``id in taskset``; ``len(taskset)``; iterating yields :class:`Task` objects
    (not ids); ``sample(rng)`` draws one task uniformly.
    """

    def __init__(self, tasks: Iterable[Task]) -> None:
        self._tasks: dict[str, Task] = {}
        for task in tasks:
            if task.id in self._tasks:
                raise TaskFormatError(f"duplicate task id {task.id!r}")
            self._tasks[task.id] = task
        self._ids = list(self._tasks)

    @classmethod
    def from_path(cls, path: str | Path) -> TaskSet:
        return cls(load_tasks(path))

    def get(self, task_id: str) -> Task:
        try:
            return self._tasks[task_id]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(task_id), self._ids, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownTaskError(f"unknown task id {task_id!r} ({len(self)} tasks){hint}") from None

    __getitem__ = get

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks.values())

    def ids(self) -> list[str]:
        return list(self._ids)

    def filter(self, *, kind: str | None = None, language: str | None = None) -> TaskSet:
        """The tasks of one kind and/or language."""
        return TaskSet(
            t
            for t in self
            if (kind is None or t.kind == kind) and (language is None or t.language == language)
        )

    def sample(self, rng: Any = None) -> Task:
        """One task drawn uniformly with ``rng``: a ``numpy.random.Generator``, a ``random.Random``,
        an int seed, or ``None`` (fresh entropy)."""
        if not self._ids:
            raise UnknownTaskError("cannot sample from an empty task set")
        if rng is None or isinstance(rng, int):
            rng = random.Random(rng)
        if hasattr(rng, "integers"):
            index = int(rng.integers(len(self._ids)))
        else:
            index = rng.randrange(len(self._ids))
        return self._tasks[self._ids[index]]
