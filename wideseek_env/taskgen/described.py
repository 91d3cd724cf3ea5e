"""Tier 1: described sets. The query describes which rows are wanted without naming a page.

Two shapes:

- one table whose page title a rule can describe (:func:`~.queries.describe_page`: "Kenya at the
  Summer Olympics in 2008") and whose (page, section) holds no other table;
- a run of 2-6 consecutive pages of a union group with year, season or edition slots, described by
  the template's topic without its placeholder plus the time span ("for the Hungarian Grand Prix
  from 1999 to 2004, listed under "Qualifying""), merged with a column saying which edition each
  row is from. The run covers every page of the group between its first and last value, so the
  description fits no other table of the group.

Columns are the key and up to four others, renamed (:func:`~.phrasing.paraphrase`). The
description must also lead a search to each source page (the BM25 check in :mod:`.filters`):
``provenance["searches"]`` holds, per page, the search text that must retrieve it.
"""

from __future__ import annotations

import random
from collections import Counter

from wideseek_env.taskgen import phrasing as P
from wideseek_env.taskgen import queries as Q
from wideseek_env.taskgen.columns import column_spec, column_type
from wideseek_env.taskgen.drafts import Cell, Draft, clean_key, rng_for, row_cell
from wideseek_env.taskgen.groups import UnionGroup, group_name, runs, source_column
from wideseek_env.taskgen.tablesets import TableSet, set_key, table_set
from wideseek_env.table.schema import ColumnSpec, normalize_column_name

MAX_RUN = 8
MAX_ROWS = 160


def columns_for(rng: random.Random, ts: TableSet, key_col: int, most: int) -> list[int]:
    """The key column plus up to ``most`` other usable columns, in table order."""
    others = [c.index for c in ts.infos if c.usable and c.index != key_col]
    rng.shuffle(others)
    return sorted([key_col] + others[:most])


def build_columns(rng: random.Random, ts: TableSet, cols: list[int], key_col: int, source: str | None):
    """Display names (paraphrased), specs, kinds, rows and cells of a set's chosen columns."""
    display: list[str] = [source] if source else []
    seen = {normalize_column_name(source)} if source else set()
    for j in cols:
        name = P.paraphrase(rng, ts.infos[j].display)
        if normalize_column_name(name) in seen or not normalize_column_name(name):
            name = ts.infos[j].display
        if normalize_column_name(name) in seen:
            return None
        seen.add(normalize_column_name(name))
        display.append(name)
    rows, cells = [], []
    for i, row in enumerate(ts.rows):
        table = ts.table_of(i)
        line = row_cell(table, ts.origin[i][1])
        out = [ts.values[ts.origin[i][0]]] if source else []
        cell_row = [Cell(table.url, table.title, "page title slot")] if source else []
        out += [clean_key(row[j]) if j == key_col else row[j] for j in cols]
        cell_row += [line] * len(cols)
        rows.append(out)
        cells.append(cell_row)
    specs: list[ColumnSpec] = []
    kinds: list[str] = []
    for pos, name in enumerate(display):
        values = [r[pos] for r in rows]
        kind = column_type(values)
        if source and pos == 0 and kind != "year":
            kind = "text"
        specs.append(column_spec(normalize_column_name(name), values, kind))
        kinds.append(kind)
    key = ([0] if source else []) + [(1 if source else 0) + cols.index(key_col)]
    return display, specs, kinds, key, rows, cells


def single_draft(ts: TableSet, seed: int, min_rows: int, shared_section: bool, reasons: Counter) -> Draft | None:
    table = ts.tables[0]
    topic = Q.describe_page(table.title)
    if topic is None:
        reasons["described: page title has no description"] += 1
        return None
    if shared_section:
        reasons["described: page section holds several tables"] += 1
        return None
    key_col = set_key(ts)
    if key_col is None or len(ts.rows) < min_rows:
        reasons["described: no key or too few rows"] += 1
        return None
    rng = rng_for(seed, "described", [table.uid])
    built = build_columns(rng, ts, columns_for(rng, ts, key_col, 4), key_col, None)
    if built is None or len(built[0]) < 3:
        reasons["described: fewer than 3 usable columns"] += 1
        return None
    display, specs, kinds, key, rows, cells = built
    description = P.describe(rng, topic, table.section_title)
    noun = P.noun_for(ts.infos[key_col].display)

    def query(display, kinds, key_pos, rng=rng):
        intro = P.described_intro(rng, noun, description)
        return Q.assemble(rng, intro, display, kinds, [display[k] for k in key_pos])

    search = f"{topic} {Q.section_label(table.section_title)}"
    return Draft(
        "described", [table.uid], display, specs, kinds, key, rows, cells, query, [table.title],
        {"tables": [table.uid], "pages": [table.url], "section": table.section_title,
         "description": description, "searches": {table.url: search}},
        min_rows=min_rows,
    )  # fmt: skip


def run_drafts(group: UnionGroup, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    """Every run of 2-6 consecutive pages with at most ``MAX_ROWS`` rows."""
    if not P.span_phrase(random.Random(0), group.values):
        reasons["described: group slots are not a time span"] += 1
        return []
    topic = P.topic_of_template(group.template)
    if len(topic.split()) < 2:
        reasons["described: template has no topic"] += 1
        return []
    drafts = []
    for start, end in runs(group, 2, MAX_RUN, MAX_ROWS):
        ts = table_set(group.tables[start:end], group.values[start:end], group.template, group.section,
                       group_name(group))
        draft = _run_draft(ts, topic, seed, min_rows, reasons)
        if draft is not None:
            drafts.append(draft)
    return drafts


def _run_draft(ts: TableSet, topic: str, seed: int, min_rows: int, reasons: Counter) -> Draft | None:
    key_col = set_key(ts)
    if key_col is None or len(ts.rows) < min_rows:
        reasons["described: no key or too few rows"] += 1
        return None
    rng = rng_for(seed, "described", ts.uids)
    source = source_column(ts.template, ts.values)
    if normalize_column_name(source) in {c.name for c in ts.infos}:
        source = "Edition"
    built = build_columns(rng, ts, columns_for(rng, ts, key_col, 4), key_col, source)
    if built is None or len(built[0]) < 3:
        reasons["described: fewer than 3 usable columns"] += 1
        return None
    display, specs, kinds, key, rows, cells = built
    description = P.describe(rng, topic, ts.section, ts.values)
    noun = P.noun_for(ts.infos[key_col].display)
    section = Q.section_label(ts.section.replace("X", "")).strip(" :")

    def query(display, kinds, key_pos, rng=rng):
        intro = P.described_intro(rng, noun, description)
        intro += " " + rng.choice([f"Say in {Q.quote(display[0])} which edition each row is from.",
                                   f"The {Q.quote(display[0])} column gives each row's edition."])
        return Q.assemble(rng, intro, display, kinds, [display[k] for k in key_pos])

    searches = {t.url: f"{topic} {v} {section}".strip() for t, v in zip(ts.tables, ts.values)}
    return Draft(
        "described", ts.uids, display, specs, kinds, key, rows, cells, query, [t.title for t in ts.tables],
        {"tables": ts.uids, "pages": ts.urls, "section": ts.section, "template": ts.template,
         "values": ts.values, "description": description, "searches": searches},
        group=ts.group, min_rows=min_rows,
    )  # fmt: skip
