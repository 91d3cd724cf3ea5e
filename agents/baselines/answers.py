"""The answers the scripted agents write: one markdown table in a ```` ```markdown ```` block.

Contract: :func:`render_answer` renders columns and rows (plus an optional sentence) as a final
answer; :func:`_answer_from_reports` merges the tables of subagent reports into one answer with
the wanted columns (a report without a table adds nothing).
"""

from __future__ import annotations

from typing import Sequence

from agents.baselines.query import reconcile_columns
from agents.baselines.tables import map_columns
from wideseek_env.table.markdown import extract_table, render_table


def render_answer(columns: Sequence[str], rows: Sequence[Sequence[str]], note: str = "") -> str:
    """A final answer: an optional sentence, then the table in a ```markdown block."""
    table = render_table(list(columns), [list(r) for r in rows])
    head = f"{note}\n\n" if note else ""
    return f"{head}```markdown\n{table}\n```"


def _answer_from_reports(cols: list[str], reports: Sequence[str | None]) -> str:
    headers: list[str] = []
    tables = []
    for rep in reports:
        t = extract_table(rep) if rep else None
        if t is not None:
            headers.extend(t.header)
            tables.append(t)
    final_cols = reconcile_columns(cols, headers)
    rows = []
    for t in tables:
        mapped = map_columns(final_cols, t.header)
        for r in t.rows:
            rows.append([(r[m] if m is not None and m < len(r) else "") for m in mapped])
    return render_answer(final_cols, rows)

