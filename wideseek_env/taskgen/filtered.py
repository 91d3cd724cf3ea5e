"""Tiers 2 and 3: filters through linked pages, and wide unions that need every entity's page.

**Tier 2 (filtered)**: the rows of a set of several tables (a run of 2-20 pages of a union group,
at most 300 rows, or a page set: :mod:`.tablesets`) whose linked entity satisfies a condition read
from the entity's own article: born before a year, died before, founded / opened / released
before, population or capacity over a number. Only entities whose article states the attribute
count (the query says so); at least 60% of the rows' entities must, and the condition keeps 30-70%
of those. Columns: the entity, the attribute (so the answer shows the fact it was filtered on), one
or two of the table's columns, and the set's source column (edition or section). **Rule: as for
tier 1, a filtered set spans several tables**; one table (at most 20 rows in OTT-QA) leaves a
filter of a handful of rows.

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
from wideseek_env.taskgen.drafts import Draft, Pages, clean_key, rng_for, row_cell
from wideseek_env.taskgen.groups import UnionGroup, runs
from wideseek_env.taskgen.tablesets import (
    RUN_PAGES,
    RUN_ROWS,
    EntityScan,
    TableSet,
    entity_scan,
    run_set,
    run_sets,
)
from wideseek_env.tasks import normalize_column_name

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
    j = scan.column
    others = [c.index for c in ts.infos if c.usable and c.index != j]
    rng.shuffle(others)
    cols = others[:extra_cols]
    source = ts.source
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
        row = ([ts.label_of(i)] if source else []) + [clean_key(ts.rows[i][j]), value]
        row += [ts.rows[i][c] for c in cols]
        cell = ([ts.label_cell(i)] if source else []) + [line]
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
    return Draft(
        kind, uids, display, specs, kinds, key, out_rows, cells, P.query_builder(rng, intro),
        [t.title for t in ts.tables],
        {"tables": uids, "pages": list(dict.fromkeys(ts.urls)) + sorted({scan.urls[i] for i in rows}),
         "section": ts.section, "shape": ts.shape, "attribute": attr, **provenance},
        group=ts.group, min_rows=min_rows,
    )  # fmt: skip


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
    covered = _distinct_rows(ts, scan, scan.coverage(attr), per_table=ts.source is not None)
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
    description = P.set_description(rng, ts)
    named = description is None  # a page no rule describes is named: the filter, not the set, is the task
    if named:
        description = P.set_description(rng, ts, page=f"the Wikipedia article {Q.quote(ts.tables[0].title)}")
    noun = P.noun_for(ts.infos[scan.column].display, _NOUNS[attr])

    def intro(display):
        return P.filtered_intro(rng, noun, description, condition, stated)

    draft = _draft("filtered", ts, scan, attr, rows, pages, rng, rng.randint(1, 2), min_rows, intro,
                   {"condition": condition, "threshold": t, "candidates": len(covered),
                    "description": description})
    if draft is not None and named:
        draft.titles = []
    return draft


def filtered_runs(group: UnionGroup, pages: Pages, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    """Tier-2 drafts over every run of 2-20 consecutive pages (at most 300 rows) of a group."""
    made = (filtered_draft(ts, pages, seed, min_rows, reasons) for ts in run_sets(group, 2, RUN_PAGES, RUN_ROWS))
    return [d for d in made if d is not None]


def wide_drafts(group: UnionGroup, pages: Pages, seed: int, reasons: Counter) -> list[Draft]:
    """Tier 3: every run of >= 5 pages whose entities with the attribute number 100-300."""
    if len(group.tables) < WIDE_MIN_PAGES:
        return []
    whole = run_set(group, 0, len(group.tables))
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
        ts = run_set(group, start, end)
        sub = EntityScan(scan.column, [scan.urls[i] for i in range(len(whole.rows)) if start <= whole.origin[i][0] < end],
                         [scan.attrs[i] for i in range(len(whole.rows)) if start <= whole.origin[i][0] < end])
        rows = _distinct_rows(ts, sub, sub.coverage(attr), per_table=True)
        if not WIDE_MIN_ROWS <= len(rows) <= WIDE_MAX_ROWS:
            reasons["wide: rows outside 100-300"] += 1
            continue
        description = P.set_description(rng, ts)
        noun = P.noun_for(ts.infos[scan.column].display, _NOUNS.get(attr, "entries"))
        attr_phrase = ATTRIBUTES[attr].phrase

        def intro(display, noun=noun, description=description, attr_phrase=attr_phrase):
            return P.wide_intro(rng, noun, description, attr_phrase, display[0])

        draft = _draft("wide", ts, sub, attr, rows, pages, rng, 1, WIDE_MIN_ROWS, intro,
                       {"description": description, "variant": f"{start}-{end}-{attr}"})
        if draft is not None:
            drafts.append(draft)
    return drafts


