"""A set of source tables seen as one: merged rows, column analysis, key choice, linked entities.

Every tier draws on a :class:`TableSet`: one table, or several tables with one header merged (the
rows say which table they come from). Two shapes of several tables, each with a *source* column
that says which table a row is from (``values`` holds each table's label):

- a **run** (:func:`run_set`): consecutive pages of a union group; the label is the page's slot
  value ("2004"), whose provenance is the page title;
- a **page set** (:func:`page_sets`, :func:`page_set`): the tables of one page that share a header,
  each under its own section ("Round 1", "Round 2" of a draft); the label is the section's last
  part, whose provenance is the section heading the page shows. Where two of the tables stand in
  the same section, there is no source column and keys must be unique over the whole set.

The helpers here are shared by the tiers:

- :func:`set_key`: a column whose (cleaned) values are unique within each table (plus the source
  column when several tables are merged), entity-like columns first;
- :func:`entity_scan`: for a linked text column, per row the entity article (when the cell names
  the one article it links to) and the attributes :mod:`.attributes` extracts from it;
- :func:`spec_for`: a column's WideSearch spec from its final gold values.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterator, Sequence

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
from wideseek_env.taskgen.drafts import Cell, Pages, clean_key, entity_link
from wideseek_env.taskgen.groups import UnionGroup, group_name, runs, source_column
from wideseek_env.tasks import ColumnSpec, normalize_column_name


RUN_PAGES = 20  # most pages of a run (tiers 1 and 2)
RUN_ROWS = 300  # most rows of a run before any filter (tiers 1 and 2; tier 3's ceiling too)


@dataclass
class TableSet:
    """Tables merged into one list of rows; ``origin[i]`` is (table index, row index) of row i.

    ``shape`` is "table", "run" or "page" (module docstring); ``source`` the display name of the
    column that says which table a row is from (None: one table, or a page set whose tables share
    a section).
    """

    tables: list[Table]
    values: list[str] = field(default_factory=list)  # each table's label (several tables only)
    template: str = ""
    section: str = ""
    group: str | None = None
    rows: list[list[str]] = field(default_factory=list)
    origin: list[tuple[int, int]] = field(default_factory=list)
    infos: list[ColumnInfo] = field(default_factory=list)
    shape: str = "table"
    source: str | None = None

    @property
    def uids(self) -> list[str]:
        return [t.uid for t in self.tables]

    @property
    def urls(self) -> list[str]:
        return [t.url for t in self.tables]

    def table_of(self, i: int) -> Table:
        return self.tables[self.origin[i][0]]

    def label_of(self, i: int) -> str:
        """Row i's value of the source column: its table's label."""
        return self.values[self.origin[i][0]]

    def label_cell(self, i: int) -> Cell:
        """The provenance of row i's label: the page title (a run) or the section heading (a page set)."""
        table = self.table_of(i)
        if self.shape == "page":
            return Cell(table.url, table.section_title)
        return Cell(table.url, table.title, "page title slot")


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


def _free_name(ts: TableSet, name: str) -> str:
    """``name``, or "Edition" where the tables already have a column of that name."""
    return "Edition" if normalize_column_name(name) in {c.name for c in ts.infos} else name


def run_set(group: UnionGroup, start: int, end: int) -> TableSet:
    """Pages ``start:end`` of a union group as one set, labelled by slot value."""
    return group_set(group, range(start, end))


def group_set(group: UnionGroup, members: Sequence[int]) -> TableSet:
    """The group's pages at positions ``members`` (in order) as one set, labelled by slot value."""
    ts = table_set([group.tables[m] for m in members], [group.values[m] for m in members], group.template,
                   group.section, group_name(group))
    ts.shape = "run"
    ts.source = _free_name(ts, source_column(ts.template, ts.values))
    return ts


def run_sets(group: UnionGroup, lo: int, hi: int, max_rows: int | None = None) -> Iterator[TableSet]:
    """:func:`run_set` of every run of ``lo``-``hi`` pages (at most ``max_rows`` rows) of a group."""
    for start, end in runs(group, lo, hi, max_rows):
        yield run_set(group, start, end)


def page_sets(tables: Sequence[Table]) -> list[list[Table]]:
    """Per page, its tables that share a (normalised) header, where there are two or more, in the
    order of ``tables`` (the store's: by uid); sets in the order of their first table."""
    by_key: dict[tuple, list[Table]] = defaultdict(list)
    for table in tables:
        by_key[(table.url, tuple(normalize_column_name(h) for h in table.header))].append(table)
    return [members for members in by_key.values() if len(members) >= 2]


def page_set(tables: Sequence[Table]) -> TableSet:
    """The tables of one page with one header as a set, labelled by their sections' last parts
    ("Selection order -- Round 2" -> "Round 2"; the whole section title where the last parts
    repeat); no source column where two tables share a section."""
    sections = [t.section_title for t in tables]
    last = [s.split(" -- ")[-1].strip() for s in sections]
    labels = last if len(set(last)) == len(last) else sections
    distinct = len(set(sections)) == len(sections) and all(labels)
    ts = table_set(tables, labels if distinct else [])
    ts.shape = "page"
    ts.source = _free_name(ts, "Section") if distinct else None
    return ts


def set_key(ts: TableSet) -> int | None:
    """A usable column whose cleaned values are unique within each table (entity-like first); over
    the whole set where no source column tells the tables apart."""
    per_table = ts.shape != "page" or ts.source is not None
    for info in sorted((c for c in ts.infos if c.usable), key=lambda c: (bool(_POOR_KEYS.match(c.name)), *key_preference(c))):
        if info.kind != "text" and len(ts.tables) == 1 and _POOR_KEYS.match(info.name):
            continue
        keys = {(ts.origin[i][0] if per_table else 0, preprocessed(clean_key(ts.rows[i][info.index]), info.spec))
                for i in range(len(ts.rows))}
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
