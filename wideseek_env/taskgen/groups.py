"""Union groups: the same table (same header, same section up to the page's own slot value) on
several pages whose titles share a template with one varying part ("{} Hungarian Grand Prix").

:func:`union_groups` finds them; :func:`source_column` names the column that says which page a row
comes from, and :func:`slot_year` reads a slot value's year, if it has one.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from wideseek_env.corpus.types import Table
from wideseek_env.table.schema import normalize_column_name

_DIGITS = re.compile(r"\d+")
_NUMERIC_SLOT = re.compile(
    r"^(?:(?:1[5-9]|20)\d\d(?:[–-](?:\d\d|\d{4}))?|\d+(?:st|nd|rd|th)|(?:season|series) \d+)$", re.I
)
_NAME_SLOT = re.compile(r"^[^\d()]+$")


@dataclass
class UnionGroup:
    template: str  # the page title with "{}" for the slot
    section: str  # the section title with "X" for the slot (where it holds it)
    tables: list[Table]  # one per page, sorted by slot value
    values: list[str]


def _bucket_key(table: Table) -> tuple:
    header = tuple(normalize_column_name(h) for h in table.header)
    section = _DIGITS.sub("#", table.section_title.lower())
    return header, section


def _templates(a: str, b: str) -> str | None:
    ta, tb = a.split(" "), b.split(" ")
    p = 0
    while p < min(len(ta), len(tb)) and ta[p] == tb[p]:
        p += 1
    s = 0
    while s < min(len(ta), len(tb)) - p and ta[-1 - s] == tb[-1 - s]:
        s += 1
    if p + s < 2:
        return None
    sa, sb = ta[p : len(ta) - s], tb[p : len(tb) - s]
    if not (1 <= len(sa) <= 3 and 1 <= len(sb) <= 3):
        return None
    return " ".join(ta[:p] + ["{}"] + ta[len(ta) - s :])


def _slot(template: str, title: str) -> str | None:
    prefix, suffix = template.split("{}")
    if not (title.startswith(prefix) and title.endswith(suffix)) or len(title) <= len(prefix) + len(suffix):
        return None
    value = title[len(prefix) : len(title) - len(suffix)]
    if value != value.strip() or not value or len(value.split(" ")) > 3:
        return None
    return value


def _slot_kind(values: Sequence[str]) -> str | None:
    if all(_NUMERIC_SLOT.match(v) for v in values):
        return "numeric"
    if all(_NAME_SLOT.match(v) for v in values):
        return "name"
    return None


def union_groups(tables: Sequence[Table]) -> list[UnionGroup]:
    """Tables of one kind on different pages, grouped by a shared title template.

    Tables are bucketed by (normalised header, section title with digits masked); inside a bucket,
    two page titles that differ in one run of 1-3 words and share at least two words define a
    template (``"{} Hungarian Grand Prix"``). A group is the tables of one template whose section
    titles are equal once the page's own slot value is written X ("2006 Schedule and results" on
    page "2006 ... Tour" -> "X Schedule and results"), one table per page (the first by uid). The
    slot values of a group must be all year/season/ordinal-like or all names. Each table joins at
    most one group (biggest first, ties by template and section).
    """
    buckets: dict[tuple, list[Table]] = defaultdict(list)
    for table in tables:
        buckets[_bucket_key(table)].append(table)
    candidates: dict[tuple, dict[str, Table]] = {}
    for bkey, members in buckets.items():
        members = sorted(members, key=lambda t: t.uid)
        titles = sorted({t.title for t in members})
        if len(titles) < 2:
            continue
        found: set[str] = set()
        for i, a in enumerate(titles[:300]):
            for b in titles[i + 1 : 300]:
                template = _templates(a, b)
                if template:
                    found.add(template)
        for template in found:
            by_section: dict[str, dict[str, Table]] = defaultdict(dict)
            for table in members:
                value = _slot(template, table.title)
                if value is None:
                    continue
                section = table.section_title.replace(value, "X")
                by_section[section].setdefault(value, table)
            for section, group in by_section.items():
                if len(group) >= 2 and _slot_kind(list(group)) is not None:
                    candidates[(template, section, bkey)] = group
    claimed: set[str] = set()
    groups = []
    for (template, section, _), group in sorted(
        candidates.items(), key=lambda kv: (-len(kv[1]), kv[0][0], kv[0][1], repr(kv[0][2]))
    ):
        free = {v: t for v, t in group.items() if t.uid not in claimed}
        if len(free) < 2 or _slot_kind(list(free)) is None:
            continue
        values = sorted(free, key=_slot_sort)
        for v in values:
            claimed.add(free[v].uid)
        groups.append(UnionGroup(template, section, [free[v] for v in values], values))
    return groups


def _slot_sort(value: str) -> tuple:
    m = re.search(r"\d+", value)
    return (0, int(m.group(0)), value) if m else (1, 0, value)


def source_column(template: str, values: Sequence[str]) -> str:
    if all(re.fullmatch(r"(?:1[5-9]|20)\d\d", v) for v in values):
        return "Year"
    if all(re.fullmatch(r"(?:1[5-9]|20)\d\d[–-](?:\d\d|\d{4})", v) for v in values):
        return "Season"
    if all(re.fullmatch(r"(?:season) \d+", v, re.I) for v in values):
        return "Season"
    if all(re.fullmatch(r"(?:series) \d+", v, re.I) for v in values):
        return "Series"
    if all(re.fullmatch(r"\d+(?:st|nd|rd|th)", v) for v in values):
        return "Edition"
    if template.startswith("{} at the ") or template.startswith("{} at "):
        return "Country"
    return "Source"


def group_name(group: UnionGroup) -> str:
    """A stable name of the group (its template and section), for the split."""
    return f"{group.template}|{group.section}"


def slot_year(value: str) -> int | None:
    """The year a slot value names ("1999", "2005-06" -> 2005), or None."""
    m = re.fullmatch(r"((?:1[5-9]|20)\d\d)(?:[–-](?:\d\d|\d{4}))?", value)
    return int(m.group(1)) if m else None



def runs(group: UnionGroup, lo: int, hi: int, max_rows: int | None = None) -> list[tuple[int, int]]:
    """Every run ``(start, end)`` of ``lo``-``hi`` consecutive pages of the group (at most
    ``max_rows`` rows in all, when given), in order of start then end."""
    n = len(group.tables)
    out = []
    for start in range(n):
        rows = 0
        for end in range(start + 1, min(n, start + hi) + 1):
            rows += len(group.tables[end - 1].rows)
            if max_rows is not None and rows > max_rows:
                break
            if end - start >= lo:
                out.append((start, end))
    return out
