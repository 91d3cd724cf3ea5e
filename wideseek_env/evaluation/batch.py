"""Score a file of responses against a set of tasks (the ``wideseek score`` command).

Input: the tasks (any iterable of :class:`~wideseek_env.table.schema.Task`, e.g. what
:func:`wideseek_env.tasks.load_tasks` returns for a task file in any format it reads: the caller
loads them, since evaluation sits beside ``tasks`` and does not import it), and a responses JSONL
with one ``{"instance_id": ..., "response": ...}`` object per line (other fields are ignored). Several
lines with one id are several samples of that task (Avg@N / Max@N / Pass@N, see :mod:`.aggregate`).
A ``null`` response is an empty answer (score 0).

Rules a benchmarker can rely on:

- a response whose ``instance_id`` is not among the tasks is an error (:class:`WideseekError`
  listing the unknown ids), because it usually means the wrong task file; pass
  ``on_unknown="skip"`` to drop them with a warning instead;
- a task with no response at all scores 0 in every metric and counts in the means
  (``n_tasks_without_response`` in the summary says how many);
- malformed response lines raise :class:`WideseekError` naming file and line.

Output: ``out_path`` gets one JSON line per task, in the order the tasks are given: ``instance_id``,
``kind``, ``language``, ``n_samples``, ``samples`` (each sample's :class:`TableScore` as a dict) and
the task's @N metrics. The summary (the returned dict) is also written beside it as
``<out_path without suffix>.summary.json`` (``scores.jsonl`` -> ``scores.summary.json``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path

from wideseek_env.errors import WideseekError
from wideseek_env.evaluation.aggregate import aggregate, task_metrics
from wideseek_env.evaluation.judges import Judge, get_judge
from wideseek_env.evaluation.scorer import score_answer
from wideseek_env.evaluation.table_score import TableScore
from wideseek_env.table.schema import Task


def summary_path_for(out_path: str | Path) -> Path:
    """``scores.jsonl`` -> ``scores.summary.json`` (same folder)."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.stem + ".summary.json")


def read_responses(path: str | Path) -> list[tuple[str, str]]:
    """``(instance_id, response)`` pairs of a responses JSONL, in file order."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise WideseekError(f"{path}: cannot read responses: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise WideseekError(f"{path}: responses file is not UTF-8 ({exc.reason})") from None
    pairs: list[tuple[str, str]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise WideseekError(f"{path}:{line_no}: invalid JSON: {exc.msg}") from None
        if not isinstance(record, dict) or "instance_id" not in record:
            raise WideseekError(
                f'{path}:{line_no}: expected an object with "instance_id" and "response"'
            )
        response = record.get("response")
        if response is not None and not isinstance(response, str):
            raise WideseekError(f'{path}:{line_no}: "response" must be a string or null')
        pairs.append((str(record["instance_id"]), response or ""))
    return pairs


def score_files(
    tasks: Iterable[Task],
    responses_path: str | Path,
    out_path: str | Path,
    *,
    compat: str = "default",
    judge: str | Judge = "deterministic",
    on_unknown: str = "error",
    tasks_name: str = "the tasks",
) -> dict:
    """Score every response, write per-task lines and the summary; return the summary.

    ``tasks_name`` (e.g. the task file's path) names the tasks in the unknown-id message. A path
    given as ``tasks`` is a TypeError that says to load it first."""
    if isinstance(tasks, (str, Path)):
        raise TypeError(
            f"score_files takes the tasks, not their path: score_files(load_tasks({str(tasks)!r}), ...)"
            " with load_tasks from wideseek_env.tasks"
        )
    if on_unknown not in ("error", "skip"):
        raise ValueError("on_unknown must be 'error' or 'skip'")
    judge_obj = get_judge(judge)
    tasks = list(tasks)
    by_id = {task.id: task for task in tasks}
    responses = read_responses(responses_path)

    unknown = sorted({rid for rid, _ in responses if rid not in by_id})
    if unknown:
        listed = ", ".join(unknown[:20]) + (
            f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        )
        message = f"{len(unknown)} response instance id(s) not in {tasks_name}: {listed}"
        if on_unknown == "error":
            raise WideseekError(message + " (wrong task file? on_unknown='skip' drops them)")
        warnings.warn(message + "; skipped", stacklevel=2)

    samples: dict[str, list[TableScore]] = {task.id: [] for task in tasks}
    for rid, response in responses:
        if rid in samples:
            samples[rid].append(score_answer(by_id[rid], response, judge=judge_obj, compat=compat))

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as out:
        for task in tasks:
            line = {
                "instance_id": task.id,
                "kind": task.kind,
                "language": task.language,
                **task_metrics(samples[task.id]),
                "samples": [s.to_dict() for s in samples[task.id]],
            }
            out.write(json.dumps(line, ensure_ascii=False) + "\n")

    summary = aggregate(
        samples,
        kinds={t.id: t.kind for t in tasks},
        languages={t.id: t.language for t in tasks},
    )
    summary_file = summary_path_for(out_path)
    summary.update(
        compat=compat,
        judge=getattr(judge_obj, "name", type(judge_obj).__name__),
        n_responses=sum(len(v) for v in samples.values()),
        n_tasks_without_response=sum(1 for v in samples.values() if not v),
        n_unknown_responses_skipped=sum(1 for rid, _ in responses if rid not in by_id),
        per_task_path=str(out_path),
        summary_path=str(summary_file),
    )
    summary_file.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary
