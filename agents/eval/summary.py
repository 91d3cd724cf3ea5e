"""The summary of an evaluation run: Avg@N / Max@N / Pass@N over tasks (overall and per task kind), tool
call and subagent statistics, and the printed table."""

from __future__ import annotations

from collections import Counter, defaultdict
from types import SimpleNamespace
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["summarize", "format_summary"]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _stats(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    n = len(records)
    calls: Counter = Counter()
    for r in records:
        calls.update(r["metrics"].get("tool_calls") or {})
    subs = [r["metrics"].get("subagents", 0) for r in records]
    failures = sum(r["metrics"].get("subagent_failures", 0) for r in records)
    out: dict[str, Any] = {
        "episodes": n,
        "tool_calls_per_episode": {k: calls[k] / n for k in sorted(calls)} if n else {},
        "tool_calls_per_episode_total": sum(calls.values()) / n if n else 0.0,
        "subagents_per_episode": _mean(subs),
        "subagents_max": max(subs, default=0),
        "subagent_failure_rate": failures / sum(subs) if sum(subs) else 0.0,
        "lead_turns_per_episode": _mean([r["metrics"].get("lead_turns", 0) for r in records]),
        "total_turns_per_episode": _mean([r["metrics"].get("total_turns", 0) for r in records]),
        "invalid_calls_per_episode": _mean([r["metrics"].get("invalid_calls", 0) for r in records]),
        "answer_parsed_rate": _mean([float(r["metrics"].get("answer_parsed", False)) for r in records]),
        "truncated_rate": _mean([float(r["metrics"].get("truncated", False)) for r in records]),
        "episodes_with_error": sum(1 for r in records if r.get("error")),
        "seconds_per_episode": _mean([float(r.get("seconds", 0.0)) for r in records]),
    }
    by_role: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        for role, c in (r["metrics"].get("calls_by_role") or {}).items():
            by_role[role].update(c)
    if by_role and n:
        # per episode, by role: tool calls run and calls rejected as malformed or not allowed
        out["calls_by_role_per_episode"] = {
            role: {"valid": c["valid"] / n, "invalid": c["invalid"] / n,
                   "valid_share": c["valid"] / (c["valid"] + c["invalid"]) if c["valid"] + c["invalid"] else 0.0}
            for role, c in sorted(by_role.items())
        }
    gen = [r["metrics"]["generated_tokens"] for r in records if "generated_tokens" in r["metrics"]]
    if gen:
        out["generated_tokens_per_episode"] = _mean(gen)
    return out


def summarize(records: Iterable[Mapping[str, Any]], tasks: Sequence[Any], samples: int) -> dict[str, Any]:
    """The summary of the records of the selected ``tasks`` with sample index < ``samples``.

    Tasks without any finished episode are left out (``tasks_done`` < ``tasks`` says so); each task uses
    the samples it has (``n_samples_min``/``max``)."""
    from wideseek_env.evaluation import aggregate

    wanted = {t.id: t for t in tasks}
    by_task: dict[str, list[Any]] = defaultdict(list)
    kept: list[Mapping[str, Any]] = []
    for r in records:
        if r["task_id"] in wanted and int(r["sample"]) < samples:
            by_task[r["task_id"]].append(SimpleNamespace(**r["scores"]))
            kept.append(r)
    kinds = {tid: getattr(wanted[tid], "kind", "table") for tid in by_task}
    summary = aggregate(dict(by_task), kinds=kinds)
    summary["tasks"] = len(wanted)
    summary["tasks_done"] = len(by_task)
    summary["samples"] = samples
    summary["episodes_expected"] = len(wanted) * samples
    summary["episodes_done"] = len(kept)
    summary["complete"] = len(kept) == len(wanted) * samples
    summary["stats"] = _stats(kept)
    by_kind_records: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in kept:
        by_kind_records[kinds.get(r["task_id"], "table")].append(r)
    for kind, group in summary.get("by_kind", {}).items():
        group["stats"] = _stats(by_kind_records.get(kind, []))
    # Generated tasks carry a tier (0-4): the same scores per tier ("T0".."T4").
    tiers = {tid: f"T{wanted[tid].tier}" for tid in by_task if getattr(wanted[tid], "tier", None) is not None}
    if tiers:
        by_tier = aggregate({tid: by_task[tid] for tid in tiers}, kinds=tiers).get("by_kind", {})
        for label, group in by_tier.items():
            group["stats"] = _stats([r for r in kept if tiers.get(r["task_id"]) == label])
        summary["by_tier"] = dict(sorted(by_tier.items()))
    return summary


def format_summary(summary: Mapping[str, Any], title: str = "") -> str:
    """The summary as a text table (values x100, as the paper prints them)."""
    n = summary.get("samples", 1)
    head = ["", "tasks", "episodes", f"item F1 avg@{n}", f"max@{n}", f"row F1 avg@{n}", f"max@{n}",
            f"success avg@{n}", f"pass@{n}", "subagents/ep", "tool calls/ep"]
    rows = []

    def row(label: str, s: Mapping[str, Any]) -> list[str]:
        st = s.get("stats", {})
        return [
            label, str(s.get("n_tasks", 0)), str(st.get("episodes", 0)),
            f"{100 * s['item_f1_avg']:.1f}", f"{100 * s['item_f1_max']:.1f}",
            f"{100 * s['row_f1_avg']:.1f}", f"{100 * s['row_f1_max']:.1f}",
            f"{100 * s['success_avg']:.1f}", f"{100 * s['success_pass']:.1f}",
            f"{st.get('subagents_per_episode', 0.0):.1f}", f"{st.get('tool_calls_per_episode_total', 0.0):.1f}",
        ]

    rows.append(row("all", summary))
    for tier, s in summary.get("by_tier", {}).items():
        rows.append(row(tier, s))
    for kind, s in summary.get("by_kind", {}).items():
        rows.append(row(kind, s))
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    lines = []
    if title:
        lines.append(title)
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    lines.append(fmt(head))
    lines.append("  ".join("-" * w for w in widths))
    lines += [fmt(r) for r in rows]
    st = summary.get("stats", {})
    calls = ", ".join(f"{k} {v:.1f}" for k, v in st.get("tool_calls_per_episode", {}).items())
    lines.append(
        f"episodes {summary.get('episodes_done', 0)}/{summary.get('episodes_expected', 0)}"
        + ("" if summary.get("complete") else " (incomplete)")
        + f"; tool calls per episode: {calls or 'none'}; subagents max {st.get('subagents_max', 0)}, "
        f"failure rate {100 * st.get('subagent_failure_rate', 0.0):.1f}%; answers parsed "
        f"{100 * st.get('answer_parsed_rate', 0.0):.1f}%, truncated {100 * st.get('truncated_rate', 0.0):.1f}%; "
        f"episode wall time {st.get('seconds_per_episode', 0.0):.3f} s"
    )
    run = summary.get("run")
    if run and run.get("episodes_run_now"):
        lines.append(
            f"this run: {run['episodes_run_now']} episodes in {run['wall_seconds_now']:.1f} s "
            f"({run['episodes_run_now'] / max(run['wall_seconds_now'], 1e-9):.2f} episodes/s, "
            f"{run.get('parallel')} envs stepped together{', on Ray' if run.get('ray') else ''}), "
            f"{run.get('episodes_reused', 0)} reused"
        )
    return "\n".join(lines)
