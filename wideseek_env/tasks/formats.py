"""The two foreign task formats that :func:`~wideseek_env.tasks.loaders.load_tasks` reads, one record
at a time (see the module docstring of :mod:`wideseek_env.tasks.loaders` for what each holds):

- :func:`from_widesearch`: a WideSearch record, its gold table read from ``gold/<instance_id>.csv``
  (or ``widesearch_gold/``) beside the task file;
- :func:`from_wideseek_r1`: a WideSeek-R1 training record, the gold from its markdown ``answer``
  table (or a QA task when the answer is no table).

Both raise ``TaskFormatError`` without a location (the loader adds file and line).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from wideseek_env.errors import TaskFormatError
from wideseek_env.table.markdown import extract_table
from wideseek_env.table.schema import (
    ColumnSpec,
    Task,
    default_columns,
    normalize_column_name,
)
from wideseek_env.tasks.decoding import loads, read_text

__all__ = ["from_widesearch", "from_wideseek_r1"]

# ------------------------------------------------------------------------------- WideSearch


def _require(record: dict, *names: str) -> None:
    missing = [n for n in names if n not in record]
    if missing:
        raise TaskFormatError(f"record lacks fields {missing}")


def _evaluation(record: dict) -> dict | None:
    evaluation = record.get("evaluation")
    if evaluation is None or evaluation == "":
        return None
    if isinstance(evaluation, str):
        try:
            evaluation = loads(evaluation)
        except json.JSONDecodeError as exc:
            raise TaskFormatError(f"'evaluation' is not valid JSON: {exc.msg}") from None
    if not isinstance(evaluation, dict):
        raise TaskFormatError("'evaluation' must be an object")
    return evaluation


def _string_list(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TaskFormatError(f"{what} must be a list of strings")
    return [normalize_column_name(v) for v in value]


def _specs_from_pipeline(
    pipeline: dict, required: list[str], unique: list[str]
) -> dict[str, ColumnSpec]:
    if not isinstance(pipeline, dict):
        raise TaskFormatError("'eval_pipeline' must be an object")
    pipeline = {normalize_column_name(k): v for k, v in pipeline.items()}
    defaults = default_columns(required, unique)
    specs: dict[str, ColumnSpec] = {}
    for col in required:
        entry = pipeline.get(col)
        if entry is None:
            specs[col] = defaults[col]
            continue
        if not isinstance(entry, dict):
            raise TaskFormatError(f"eval_pipeline[{col!r}] must be an object")
        steps = entry.get("preprocess") or []
        metrics = entry.get("metric") or ["exact_match"]
        steps = [steps] if isinstance(steps, str) else steps
        metrics = [metrics] if isinstance(metrics, str) else metrics
        if len(steps) > 1 or len(metrics) != 1:
            raise TaskFormatError(
                f"eval_pipeline[{col!r}]: one preprocess step and one metric are supported, "
                f"got {steps} and {metrics}"
            )
        metric = metrics[0]
        criterion = entry.get("criterion")
        tolerance = None
        if metric in ("number_near", "date_near") and criterion is not None:
            tolerance, criterion = criterion, None
        elif criterion is not None and not isinstance(criterion, str):
            criterion = str(criterion)
        specs[col] = ColumnSpec(col, steps[0] if steps else None, metric, tolerance, criterion)
    return specs


def _read_gold_csv(csv_path: Path, required: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    """Display names (in ``required`` order) and gold rows of a WideSearch gold CSV."""
    if not csv_path.exists():
        raise TaskFormatError(f"gold table {csv_path} is missing")
    text = read_text(csv_path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise TaskFormatError(f"{csv_path}: empty gold CSV") from None
    except csv.Error as exc:
        raise TaskFormatError(f"{csv_path}:1: {exc}") from None
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        positions.setdefault(normalize_column_name(name.strip()), i)
    missing = [c for c in required if c not in positions]
    if missing:
        raise TaskFormatError(f"{csv_path}: gold CSV lacks required columns {missing} (header {header})")
    display = [header[positions[c]].strip() for c in required]
    rows: list[dict[str, str]] = []
    try:
        for cells in reader:
            if not cells or not any(c.strip() for c in cells):
                continue  # blank lines (pandas skips them too)
            if len(cells) > len(header):
                raise TaskFormatError(
                    f"{csv_path}:{reader.line_num}: {len(cells)} cells for {len(header)} columns"
                )
            cells = cells + [""] * (len(header) - len(cells))
            rows.append({c: cells[positions[c]].strip() for c in required})
    except csv.Error as exc:
        raise TaskFormatError(f"{csv_path}:{reader.line_num}: {exc}") from None
    return display, rows


def _language(record: dict, task_id: str) -> str:
    language = record.get("language")
    if isinstance(language, str) and language:
        return language
    return "zh" if "_zh_" in task_id or task_id.startswith("zh") else "en"


def _gold_file_stem(task_id: Any) -> str:
    """``instance_id`` as the stem of its gold CSV's name: a plain file name, nothing else.

    The id comes from the task file and names a file to read: a separator, ``..``, a NUL or an
    overlong id would point elsewhere (``gold/../../x.csv``) or fail in the OS; refuse those."""
    if not isinstance(task_id, (str, int)) or isinstance(task_id, bool):
        raise TaskFormatError(f"'instance_id' must be a string, got {type(task_id).__name__}")
    task_id = str(task_id)
    if (
        not task_id.strip()
        or len(task_id.encode("utf-8", "surrogatepass")) > 200
        or any(c in task_id for c in "/\\\x00")
        or task_id in (".", "..")
        or not task_id.isprintable()
    ):
        raise TaskFormatError(
            f"'instance_id' {task_id[:80]!r} cannot name a gold file (use letters, digits, '_', '-', '.')"
        )
    return task_id


def from_widesearch(record: dict, path: Path) -> Task:
    """The task of a WideSearch record of the file ``path`` (its gold CSV is looked up beside it)."""
    _require(record, "instance_id", "query", "evaluation")
    task_id = _gold_file_stem(record["instance_id"])
    evaluation = _evaluation(record)
    if evaluation is None:
        raise TaskFormatError("'evaluation' is empty")
    _require(evaluation, "required", "unique_columns")
    required = _string_list(evaluation["required"], "evaluation.required")
    unique = _string_list(evaluation["unique_columns"], "evaluation.unique_columns")
    specs = _specs_from_pipeline(evaluation.get("eval_pipeline") or {}, required, unique)
    gold_dir = next(
        (d for d in (path.parent / "gold", path.parent / "widesearch_gold") if d.is_dir()),
        path.parent / "gold",
    )
    csv_path = gold_dir / f"{task_id}.csv"
    display, gold = _read_gold_csv(csv_path, required)
    return Task(
        id=task_id,
        query=str(record["query"]),
        language=_language(record, task_id),
        required_columns=required,
        unique_columns=unique,
        columns=specs,
        gold=gold,
        display_columns=display,
        kind="widesearch",
        provenance={"source": "widesearch", "gold": f"{gold_dir.name}/{csv_path.name}"},
    )


# ------------------------------------------------------------------------------ WideSeek-R1


def from_wideseek_r1(record: dict, path: Path, line_no: int) -> Task:
    """The task of a WideSeek-R1 record at ``line_no`` of ``path`` (both go into its provenance, and
    into its id when it has no ``instance_id``)."""
    query = record.get("question", record.get("query"))
    if not isinstance(query, str):
        raise TaskFormatError("'question' (or 'query') must be a string")
    task_id = str(record.get("instance_id") or f"{path.stem}-{line_no}")
    language = _language(record, task_id)
    answer = record["answer"]
    provenance = {"source": "wideseek-r1", "file": path.name, "line": line_no}
    table = None
    if isinstance(answer, str) and record.get("is_markdown", True) is not False:
        table = extract_table(answer)
    if table is None or not table.header:
        answers = answer if isinstance(answer, list) else [answer]
        answers = [str(a) for a in answers if a is not None and str(a).strip()]
        if not answers:
            raise TaskFormatError("'answer' is empty")
        return Task(
            id=task_id,
            query=query,
            language=language,
            required_columns=["answer"],
            unique_columns=["answer"],
            columns={"answer": ColumnSpec("answer", "norm_str", "llm_judge")},
            gold=[{"answer": a} for a in answers],
            kind="qa",
            provenance=provenance,
        )
    header = [normalize_column_name(h) for h in table.header]
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        positions.setdefault(name, i)
    evaluation = _evaluation(record) or {}
    required = (
        _string_list(evaluation["required"], "evaluation.required")
        if evaluation.get("required")
        else list(positions)
    )
    missing = [c for c in required if c not in positions]
    if missing:
        raise TaskFormatError(f"answer table lacks required columns {missing} (header {table.header})")
    unique_raw = record.get("unique_columns") or evaluation.get("unique_columns")
    unique = _string_list(unique_raw, "unique_columns") if unique_raw else [required[0]]
    specs = _specs_from_pipeline(evaluation.get("eval_pipeline") or {}, required, unique)
    return Task(
        id=task_id,
        query=query,
        language=language,
        required_columns=required,
        unique_columns=unique,
        columns=specs,
        gold=[{c: row[positions[c]] for c in required} for row in table.rows],
        display_columns=[table.header[positions[c]] for c in required],
        kind=str(record.get("kind") or "wideseek-r1"),
        provenance=provenance,
    )
