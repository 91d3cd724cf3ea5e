"""Tiers 2 and 3: filters through linked pages, and wide unions that need every entity's page.

**Tier 2 (filtered)**: the rows of one table (or a run of 2-4 pages of a union group) whose linked
entity satisfies a condition read from the entity's own article: born before a year, died before,
founded / opened / released before, population or capacity over a number. Only entities whose
article states the attribute count (the query says so); at least 60% of the rows' entities must,
and the condition keeps 30-70% of those. Columns: the entity, the attribute (so the answer shows
the fact it was filtered on), one or two of the table's columns, and the edition column for runs.

**Tier 3 (wide)**: a run of 5 or more pages of a union group, 100-300 rows after keeping the
entities whose article states the attribute, each row with that attribute: one entity page per
row, so a single agent within the paper's turn and context limits cannot read them all, and a lead
with parallel subagents can.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter

from wideseek_env.taskgen import phrasing as P
from wideseek_env.taskgen import queries as Q
from wideseek_env.taskgen.attributes import ATTRIBUTES
from wideseek_env.taskgen.columns import column_spec, column_type
from wideseek_env.taskgen.drafts import Cell, Draft, Pages, clean_key, rng_for, row_cell
from wideseek_env.taskgen.groups import UnionGroup, group_name, runs, source_column
from wideseek_env.taskgen.tablesets import EntityScan, TableSet, entity_scan, table_set
from wideseek_env.table.schema import normalize_column_name

MIN_COVERAGE = 0.6
KEEP_LOW, KEEP_HIGH = 0.3, 0.7
WIDE_MIN_PAGES, WIDE_MIN_ROWS, WIDE_MAX_ROWS = 5, 100, 300

# attribute -> (condition "before"/"over" wording, "states ..." wording)
_CONDITIONS = {
    "birth_year": ("born before {t}", "states their year of birth"),
    "death_year": ("who died before {t}", "states their year of death"),
    "founded": ("founded before {t}", "states a founding year"),
    "opened": ("opened before {t}", "states an opening year"),
    "release_year": ("released before {t}", "states a release year"),
    "publication_year": ("published before {t}", "states a publication year"),
    "population": ("with a population over {t}", "states a population"),
    "capacity": ("with a capacity over {t}", "states a capacity"),
}
_NOUNS = {"birth_year": "people", "death_year": "people", "founded": "organisations", "opened": "venues",
          "release_year": "works", "publication_year": "books", "population": "places", "capacity": "venues"}


def _number(value: str) -> float:
    return float(value.replace(",", ""))


def threshold(attr: str, values: list[str]) -> tuple[str, list[bool]] | None:
    """A round threshold keeping 30-70% of ``values`` ("before t" for years, "over t" for sizes)."""
    nums = [_number(v) for v in values]
    median = statistics.median(nums)
    if attr in ("population", "capacity"):
        digits = max(0, len(str(int(median))) - 2)
        candidates = [round(median, -digits), median]
        for t in candidates:
            keep = [x > t for x in nums]
            if KEEP_LOW <= sum(keep) / len(keep) <= KEEP_HIGH:
                return f"{int(t):,}", keep
        return None
    for t in (round(median / 10) * 10, round(median / 5) * 5, int(median), int(median) + 1):
        keep = [x < t for x in nums]
        if KEEP_LOW <= sum(keep) / len(keep) <= KEEP_HIGH:
            return str(int(t)), keep
    return None


def _attribute(scan: EntityScan, rng: random.Random, n_rows: int, min_count: int) -> str | None:
    counts = scan.counts()
    options = sorted(a for a in _CONDITIONS if counts[a] >= max(min_count, MIN_COVERAGE * n_rows))
    return rng.choice(options) if options else None


def _distinct_rows(ts: TableSet, scan: EntityScan, rows: list[int], per_table: bool) -> list[int]:
    """Rows whose entity is not repeated (within its table when ``per_table``)."""
    def ident(i: int):
        return (ts.origin[i][0] if per_table else 0, scan.urls[i])
    counts = Counter(ident(i) for i in rows)
    return [i for i in rows if counts[ident(i)] == 1]


def _draft(kind: str, ts: TableSet, scan: EntityScan, attr: str, rows: list[int], pages: Pages,
           rng: random.Random, extra_cols: int, min_rows: int, intro, provenance: dict) -> Draft | None:
    multi = len(ts.tables) > 1
    j = scan.column
    others = [c.index for c in ts.infos if c.usable and c.index != j]
    rng.shuffle(others)
    cols = others[:extra_cols]
    source = source_column(ts.template, ts.values) if multi else None
    if source and normalize_column_name(source) in {c.name for c in ts.infos}:
        source = "Edition"
    key_name = P.paraphrase(rng, ts.infos[j].display)
    display = ([source] if source else []) + [key_name, ATTRIBUTES[attr].column]
    display += [P.paraphrase(rng, ts.infos[c].display) for c in cols]
    if len({normalize_column_name(d) for d in display}) != len(display):
        return None
    out_rows, cells = [], []
    for i in rows:
        table, r = ts.table_of(i), ts.origin[i][1]
        line = row_cell(table, r)
        value = scan.attrs[i][attr]
        row = ([ts.values[ts.origin[i][0]]] if source else []) + [clean_key(ts.rows[i][j]), value]
        row += [ts.rows[i][c] for c in cols]
        cell = ([Cell(table.url, table.title, "page title slot")] if source else []) + [line]
        cell += [pages.attribute_cell(scan.urls[i], value)] + [line] * len(cols)
        out_rows.append(row)
        cells.append(cell)
    specs, kinds = [], []
    for pos, name in enumerate(display):
        values = [r[pos] for r in out_rows]
        data_kind = column_type(values)
        if (source and pos == 0 and data_kind != "year") or (pos == (1 if source else 0)):
            data_kind = "text"
        specs.append(column_spec(normalize_column_name(name), values, data_kind))
        kinds.append(data_kind)
    key = [0, 1] if source else [0]
    uids = ts.uids

    def query(display, kinds, key_pos, rng=rng):
        return Q.assemble(rng, intro(display), display, kinds, [display[k] for k in key_pos])

    return Draft(
        kind, uids, display, specs, kinds, key, out_rows, cells, query, [t.title for t in ts.tables],
        {"tables": uids, "pages": ts.urls + sorted({scan.urls[i] for i in rows}), "section": ts.section,
         "attribute": attr, **provenance},
        group=ts.group, min_rows=min_rows,
    )  # fmt: skip


def _description(rng: random.Random, ts: TableSet) -> str:
    if len(ts.tables) > 1:
        return P.describe(rng, P.topic_of_template(ts.template), ts.section, ts.values)
    table = ts.tables[0]
    topic = Q.describe_page(table.title) or f"the Wikipedia article {Q.quote(table.title)}"
    return P.describe(rng, topic, table.section_title)


def filtered_draft(ts: TableSet, pages: Pages, seed: int, min_rows: int, reasons: Counter) -> Draft | None:
    scan = entity_scan(ts, pages)
    if scan is None:
        reasons["filtered: no linked entity column"] += 1
        return None
    rng = rng_for(seed, "filtered", ts.uids)
    attr = _attribute(scan, rng, len(ts.rows), 2 * min_rows)
    if attr is None:
        reasons["filtered: too few entities state a filterable attribute"] += 1
        return None
    covered = _distinct_rows(ts, scan, scan.coverage(attr), per_table=True)
    if len(covered) < 2 * min_rows:
        reasons["filtered: too few distinct entities state the attribute"] += 1
        return None
    found = threshold(attr, [scan.attrs[i][attr] for i in covered])
    if found is None:
        reasons["filtered: no threshold keeps 30-70% of the rows"] += 1
        return None
    t, keep = found
    rows = [i for i, k in zip(covered, keep) if k]
    if len(rows) < min_rows:
        reasons["filtered: too few rows pass the filter"] += 1
        return None
    condition, stated = _CONDITIONS[attr]
    condition = condition.format(t=t)
    description = _description(rng, ts)
    noun = P.noun_for(ts.infos[scan.column].display, _NOUNS[attr])

    def intro(display):
        return P.filtered_intro(rng, noun, description, condition, stated)

    draft = _draft("filtered", ts, scan, attr, rows, pages, rng, rng.randint(1, 2), min_rows, intro,
                   {"condition": condition, "threshold": t, "candidates": len(covered),
                    "description": description})
    if draft is not None and len(ts.tables) == 1 and Q.describe_page(ts.tables[0].title) is None:
        draft.titles = []  # a page no rule describes is named: the filter, not the set, is the task
    return draft


def filtered_runs(group: UnionGroup, pages: Pages, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    """Tier-2 drafts over every run of 2-6 consecutive pages of a group."""
    drafts = []
    for start, end in runs(group, 2, 8):
        ts = table_set(group.tables[start:end], group.values[start:end], group.template, group.section,
                       group_name(group))
        draft = filtered_draft(ts, pages, seed, min_rows, reasons)
        if draft is not None:
            drafts.append(draft)
    return drafts


def wide_drafts(group: UnionGroup, pages: Pages, seed: int, reasons: Counter) -> list[Draft]:
    """Tier 3: every run of >= 5 pages whose entities with the attribute number 100-300."""
    if len(group.tables) < WIDE_MIN_PAGES:
        return []
    whole = table_set(group.tables, group.values, group.template, group.section, group_name(group))
    scan = entity_scan(whole, pages)
    if scan is None:
        reasons["wide: no linked entity column"] += 1
        return []
    rng = rng_for(seed, "wide", whole.uids)
    counts = scan.counts()
    options = [a for a in ATTRIBUTES if counts[a] >= WIDE_MIN_ROWS and ATTRIBUTES[a].kind != "text"]
    if not options:
        reasons["wide: fewer than 100 entities state an attribute"] += 1
        return []
    # Rows per page that state each attribute, to size the runs.
    per_page = {a: Counter(whole.origin[i][0] for i in scan.coverage(a)) for a in options}
    drafts = []
    n = len(group.tables)
    for start, end in runs(group, WIDE_MIN_PAGES, n):
        attr = rng.choice(options)
        total = sum(per_page[attr][p] for p in range(start, end))
        if not WIDE_MIN_ROWS <= total <= WIDE_MAX_ROWS:
            continue
        ts = table_set(group.tables[start:end], group.values[start:end], group.template, group.section,
                       group_name(group))
        sub = EntityScan(scan.column, [scan.urls[i] for i in range(len(whole.rows)) if start <= whole.origin[i][0] < end],
                         [scan.attrs[i] for i in range(len(whole.rows)) if start <= whole.origin[i][0] < end])
        rows = _distinct_rows(ts, sub, sub.coverage(attr), per_table=True)
        if not WIDE_MIN_ROWS <= len(rows) <= WIDE_MAX_ROWS:
            reasons["wide: rows outside 100-300"] += 1
            continue
        if not P.span_phrase(rng, ts.values):
            description = P.describe(rng, P.topic_of_template(ts.template), ts.section) + " for " + Q.join_words(ts.values)
        else:
            description = _description(rng, ts)
        noun = P.noun_for(ts.infos[scan.column].display, _NOUNS.get(attr, "entries"))
        attr_phrase = ATTRIBUTES[attr].phrase

        def intro(display, noun=noun, description=description, attr_phrase=attr_phrase):
            return P.wide_intro(rng, noun, description, attr_phrase, display[0])

        draft = _draft("wide", ts, sub, attr, rows, pages, rng, 1, WIDE_MIN_ROWS, intro,
                       {"description": description, "variant": f"{start}-{end}-{attr}"})
        if draft is not None:
            drafts.append(draft)
    return drafts


