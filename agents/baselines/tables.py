"""Tables on pages: reading them from page text, picking the one a task wants, projecting columns.

Contract: :func:`tables_in_text` reads the markdown tables the corpus renders (with the ``## section``
above each) into :class:`PageTable` objects; :func:`best_table` picks the table that best fits a
section label and the wanted columns; :func:`project` restricts a table's rows to those columns
(missing ones empty). Column names are matched after normalisation, then fuzzily.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Sequence

from agents.baselines.query import reconcile_columns
from agents.baselines.text import _norm
from wideseek_env.table.markdown import split_row
from wideseek_env.table.schema import normalize_column_name


@dataclass
class PageTable:
    """A table read from page text: the ``## section`` above it, its header and its rows."""

    section: str
    header: list[str]
    rows: list[list[str]]
    page: str = ""


def _is_sep(line: str) -> bool:
    cells = split_row(line)
    return bool(cells) and all(re.fullmatch(r":?-{2,}:?", c.strip() or "-") for c in cells)


def tables_in_text(text: str, page: str = "") -> list[PageTable]:
    """Markdown tables in page text (as the corpus renders Wikipedia tables), with their sections.

    A run of ``|`` lines whose second line is a separator starts a table; a run without a separator
    continues the last table of the same section (``access`` may show a long table in pieces); pieces
    with the same section and header are merged.
    """
    tables: list[PageTable] = []
    section = ""
    run: list[str] = []
    after_omission = False  # only "..." (and blank lines) since the last table line

    def close() -> None:
        nonlocal run
        if not run:
            return
        if len(run) >= 2 and _is_sep(run[1]):
            header = split_row(run[0])
            rows = [split_row(r) for r in run[2:] if not _is_sep(r)]
            last = tables[-1] if tables else None
            if after_omission and last is not None and last.section == section and last.header == header:
                last.rows.extend(rows)  # the same table, shown in pieces by ``access``
            else:
                tables.append(PageTable(section, header, rows, page))
        elif tables and tables[-1].section == section:
            tables[-1].rows.extend(split_row(r) for r in run if not _is_sep(r))
        run = []

    for line in text.split("\n"):
        s = line.strip()
        if s.startswith("|"):
            run.append(s)
            continue
        if run:
            close()
            after_omission = True
        if s in ("", "...", "…"):
            continue
        after_omission = False
        if s.startswith("## "):
            section = s[3:].strip()
    close()
    for t in tables:
        width = len(t.header)
        t.rows = [(r + [""] * width)[:width] for r in t.rows]
    return tables


def _section_key(text: str) -> str:
    return _norm(text.replace(" -- ", ": "))


def section_similarity(wanted: str | None, found: str) -> float:
    if not wanted:
        return 0.5
    a, b = _section_key(wanted), _section_key(found)
    if a == b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b).ratio()


def map_columns(wanted: Sequence[str], header: Sequence[str]) -> list[int | None]:
    """For every wanted column, the index of the header cell it names (or None)."""
    norm_header = [normalize_column_name(h) for h in header]
    out: list[int | None] = []
    for col in wanted:
        n = normalize_column_name(col)
        if n in norm_header:
            out.append(norm_header.index(n))
            continue
        close = difflib.get_close_matches(n, norm_header, n=1, cutoff=0.8)
        out.append(norm_header.index(close[0]) if close else None)
    return out


def best_table(tables: Sequence[PageTable], section: str | None, columns: Sequence[str]) -> PageTable | None:
    """The table that best fits a section label and the wanted columns (None if none has any column)."""
    best, best_score = None, 0.0
    for t in tables:
        cols = reconcile_columns(columns, t.header)
        mapped = map_columns(cols, t.header)
        hit = sum(m is not None for m in mapped) / max(1, len(mapped))
        if hit == 0:
            continue
        norm_header = {normalize_column_name(h) for h in t.header}
        exact = sum(normalize_column_name(c) in norm_header for c in cols) / max(1, len(cols))
        score = 2.0 * section_similarity(section, t.section) + hit + exact + min(len(t.rows), 100) / 10000
        if score > best_score:
            best, best_score = t, score
    return best


def project(table: PageTable, columns: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """The table's rows restricted to ``columns`` (merged fragments, missing columns empty)."""
    cols = reconcile_columns(columns, table.header)
    mapped = map_columns(cols, table.header)
    rows = [[(r[i] if i is not None and i < len(r) else "") for i in mapped] for r in table.rows]
    return cols, rows

