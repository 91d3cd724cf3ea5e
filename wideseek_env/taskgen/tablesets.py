"""A set of source tables seen as one: merged rows, column analysis, key choice, linked entities.

Every tier draws on a :class:`TableSet`: one table, or a run of tables of one union group (then
``values`` holds each table's slot value and the rows say which table they come from). The helpers
here are shared by the tiers:

- :func:`set_key`: a column whose (cleaned) values are unique within each table (plus the source
  column when several tables are merged), entity-like columns first;
- :func:`entity_scan`: for a linked text column, per row the entity article (when the cell names
  the one article it links to) and the attributes :mod:`.attributes` extracts from it;
- :func:`spec_for`: a column's WideSearch spec from its final gold values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from wideseek_env.corpus.types import Table
from wideseek_env.taskgen.columns import (
    _POOR_KEYS,
    ColumnInfo,
    analyse_columns,
    column_spec,
    column_type,
    key_preference,
    preprocessed,
)
from wideseek_env.taskgen.drafts import Pages, clean_key, entity_link
from wideseek_env.table.schema import ColumnSpec


@dataclass
class TableSet:
    """Tables merged into one list of rows; ``origin[i]`` is (table index, row index) of row i."""

    tables: list[Table]
    values: list[str] = field(default_factory=list)  # slot values (several tables only)
    template: str = ""
    section: str = ""
    group: str | None = None
    rows: list[list[str]] = field(default_factory=list)
    origin: list[tuple[int, int]] = field(default_factory=list)
    infos: list[ColumnInfo] = field(default_factory=list)

    @property
    def uids(self) -> list[str]:
        return [t.uid for t in self.tables]

    @property
    def urls(self) -> list[str]:
        return [t.url for t in self.tables]

    def table_of(self, i: int) -> Table:
        return self.tables[self.origin[i][0]]


def table_set(tables: Sequence[Table], values: Sequence[str] = (), template: str = "", section: str = "",
              group: str | None = None) -> TableSet:
    """Merge ``tables`` (same header) into one :class:`TableSet` and analyse its columns."""
    width = len(tables[0].header)
    rows, links, origin = [], [], []
    for t_i, table in enumerate(tables):
        for r, row in enumerate(table.rows):
            rows.append(list(row[:width]) + [""] * (width - len(row)))
            links.append(table.links[r] if r < len(table.links) else [])
            origin.append((t_i, r))
    infos = analyse_columns(tables[0].header, rows, links)
    return TableSet(list(tables), list(values), template, section or tables[0].section_title, group,
                    rows, origin, infos)


def set_key(ts: TableSet) -> int | None:
    """A usable column whose cleaned values are unique within each table (entity-like first)."""
    for info in sorted((c for c in ts.infos if c.usable), key=lambda c: (bool(_POOR_KEYS.match(c.name)), *key_preference(c))):
        if info.kind != "text" and len(ts.tables) == 1 and _POOR_KEYS.match(info.name):
            continue
        keys = {(ts.origin[i][0], preprocessed(clean_key(ts.rows[i][info.index]), info.spec)) for i in range(len(ts.rows))}
        if len(keys) == len(ts.rows):
            return info.index
    return None


@dataclass
class EntityScan:
    """One linked column: per row the entity article (or None) and its attributes."""

    column: int
    urls: list[str | None]
    attrs: list[dict[str, str]]

    def coverage(self, attr: str) -> list[int]:
        """Rows whose entity's article states ``attr``."""
        return [i for i, a in enumerate(self.attrs) if attr in a]

    def counts(self) -> Counter:
        return Counter(a for attrs in self.attrs for a in attrs)


def entity_scan(ts: TableSet, pages: Pages, min_linked: float = 0.5) -> EntityScan | None:
    """The linked text column whose entities' pages state the most attributes (None: no such column)."""
    best: EntityScan | None = None
    best_n = 0
    for info in sorted(ts.infos, key=key_preference):
        if not info.name or info.kind != "text" or not info.usable or info.linked < min_linked:
            continue
        urls: list[str | None] = []
        attrs: list[dict[str, str]] = []
        for i in range(len(ts.rows)):
            t_i, r = ts.origin[i]
            url = entity_link(ts.tables[t_i], r, info.index)
            urls.append(url)
            attrs.append((pages.attributes(url) or {}) if url else {})
        n = max(scan_counts(attrs).values(), default=0)
        if n > best_n:
            best, best_n = EntityScan(info.index, urls, attrs), n
    return best


def scan_counts(attrs: Sequence[dict[str, str]]) -> Counter:
    return Counter(a for d in attrs for a in d)


def spec_for(name: str, values: Sequence[str], kind: str | None = None) -> tuple[ColumnSpec, str]:
    """The spec and data kind of a column with these final gold values."""
    kind = kind or column_type(values)
    return column_spec(name, values, kind), kind


def varied(values: Sequence[str]) -> bool:
    """No single value covers more than half of the values."""
    return bool(values) and Counter(values).most_common(1)[0][1] * 2 <= len(values)
