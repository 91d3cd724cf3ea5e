"""Step 8: from several sampled answers per task to benchmark numbers.

Per task with N samples (REFERENCE.md section 2, as the WideSeek-R1 paper reports them):
``*_avg`` = mean over the samples (Avg@N), ``item_f1_max``/``row_f1_max`` = best sample (Max@N),
``success_pass`` = 1 if any sample succeeded (Pass@N). Then every field is averaged over tasks.
Values are fractions in [0, 1] (the paper prints them x100). A task with no samples scores 0 in
every field. Tasks may have different N; each uses all of its own samples (``n_samples_min``/
``n_samples_max`` in the summary say whether N was uniform).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wideseek_env.evaluation.table_score import TableScore

TASK_FIELDS = (
    "item_f1_avg",
    "item_f1_max",
    "row_f1_avg",
    "row_f1_max",
    "success_avg",
    "success_pass",
    "item_precision_avg",
    "item_recall_avg",
    "row_precision_avg",
    "row_recall_avg",
)


def task_metrics(samples: Sequence[TableScore]) -> dict[str, float]:
    """Avg@N / Max@N / Pass@N of one task's samples (all 0 for no samples), plus ``n_samples``."""
    n = len(samples)
    out: dict[str, float] = {"n_samples": n}
    if n == 0:
        out.update({name: 0.0 for name in TASK_FIELDS})
        return out

    def mean(attr: str) -> float:
        return sum(getattr(s, attr) for s in samples) / n

    def best(attr: str) -> float:
        return max(getattr(s, attr) for s in samples)

    out.update(
        item_f1_avg=mean("item_f1"),
        item_f1_max=best("item_f1"),
        row_f1_avg=mean("row_f1"),
        row_f1_max=best("row_f1"),
        success_avg=mean("success"),
        success_pass=best("success"),
        item_precision_avg=mean("item_precision"),
        item_recall_avg=mean("item_recall"),
        row_precision_avg=mean("row_precision"),
        row_recall_avg=mean("row_recall"),
    )
    return out


def _mean_over_tasks(per_task: Sequence[Mapping[str, float]]) -> dict[str, float]:
    n = len(per_task)
    out: dict[str, float] = {"n_tasks": n}
    for name in TASK_FIELDS:
        out[name] = sum(m[name] for m in per_task) / n if n else 0.0
    counts = [int(m["n_samples"]) for m in per_task]
    out["n_samples_min"] = min(counts, default=0)
    out["n_samples_max"] = max(counts, default=0)
    return out


def aggregate(
    samples_by_task: Mapping[str, Sequence[TableScore]],
    *,
    kinds: Mapping[str, str] | None = None,
    languages: Mapping[str, str] | None = None,
) -> dict:
    """Benchmark summary: the mean over tasks of :func:`task_metrics`, with breakdowns.

    ``kinds``/``languages`` map task id -> kind/language; when given, ``by_kind``/``by_language``
    hold the same summary restricted to each group.
    """
    metrics = {task_id: task_metrics(samples) for task_id, samples in samples_by_task.items()}
    summary = _mean_over_tasks(list(metrics.values()))
    for label, groups in (("by_kind", kinds), ("by_language", languages)):
        if groups is None:
            continue
        grouped: dict[str, list[Mapping[str, float]]] = {}
        for task_id, m in metrics.items():
            grouped.setdefault(groups.get(task_id, "unknown"), []).append(m)
        summary[label] = {name: _mean_over_tasks(ms) for name, ms in sorted(grouped.items())}
    return summary
