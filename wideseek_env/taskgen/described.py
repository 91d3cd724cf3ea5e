"""Tier 1: described sets. The query describes which rows are wanted without naming a page.

**Rule: a described set spans several tables.** OTT-QA cuts every table at 20 rows, so a set that
one table holds is a lookup of that table (tier 0's transcribe asks for it), not a search. The two
shapes (:mod:`.tablesets`):

- a **run** of 2-20 consecutive pages (at most 300 rows) of a union group with year, season or
  edition slots, described by the template's topic without its placeholder, the time span and the
  section ("for the Hungarian Grand Prix from 1999 to 2004, listed under "Qualifying""), with a
  column saying which edition each row is from. The run covers every page of the group between its
  first and last value, so the description fits no other set of the group;
- a **page set**: the tables of one page that share a header under different sections, described
  by the page's subject (:func:`~.queries.describe_page`) and every section's name ("for MLS
  Supplemental Draft in 2013, in the sections "Selection order: Round 1" and ..."), with a column
  saying which section each row is from (none where two tables share a section).

Columns are the key and up to four others, renamed (:func:`~.phrasing.paraphrase`). The
description must also lead a search to each source page (the BM25 check in :mod:`.filters`):
``provenance["searches"]`` holds, per page, the search text that must retrieve it.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Sequence

from wideseek_env.corpus.types import Table
from wideseek_env.taskgen import phrasing as P
from wideseek_env.taskgen import queries as Q
from wideseek_env.taskgen.columns import column_spec, column_type
from wideseek_env.taskgen.drafts import Draft, clean_key, rng_for, row_cell
from wideseek_env.taskgen.groups import UnionGroup
from wideseek_env.taskgen.tablesets import RUN_PAGES, RUN_ROWS, TableSet, page_set, run_sets, set_key
from wideseek_env.tasks import ColumnSpec, normalize_column_name


def columns_for(rng: random.Random, ts: TableSet, key_col: int, most: int) -> list[int]:
    """The key column plus up to ``most`` other usable columns, in table order."""
    others = [c.index for c in ts.infos if c.usable and c.index != key_col]
    rng.shuffle(others)
    return sorted([key_col] + others[:most])


def build_columns(rng: random.Random, ts: TableSet, cols: list[int], key_col: int):
    """Display names (paraphrased), specs, kinds, key positions, rows and cells of a set's chosen
    columns, after the set's source column where it has one (None: two names clash)."""
    source = ts.source
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
        line = row_cell(ts.table_of(i), ts.origin[i][1])
        rows.append(([ts.label_of(i)] if source else []) + [clean_key(row[j]) if j == key_col else row[j] for j in cols])
        cells.append(([ts.label_cell(i)] if source else []) + [line] * len(cols))
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


def run_drafts(group: UnionGroup, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    """Every run of 2-20 consecutive pages with at most 300 rows, where the slots make a span."""
    if not P.span_phrase(random.Random(0), group.values):
        reasons["described: group slots are not a time span"] += 1
        return []
    if len(P.topic_of_template(group.template).split()) < 2:
        reasons["described: template has no topic"] += 1
        return []
    made = (set_draft(ts, seed, min_rows, reasons) for ts in run_sets(group, 2, RUN_PAGES, RUN_ROWS))
    return [d for d in made if d is not None]


def page_draft(tables: Sequence[Table], seed: int, min_rows: int, reasons: Counter) -> Draft | None:
    """The described set of one page's tables that share a header."""
    return set_draft(page_set(tables), seed, min_rows, reasons)


def set_draft(ts: TableSet, seed: int, min_rows: int, reasons: Counter) -> Draft | None:
    """A tier-1 draft of a run or a page set (see the module docstring)."""
    key_col = set_key(ts)
    if key_col is None or len(ts.rows) < min_rows:
        reasons["described: no key or too few rows"] += 1
        return None
    rng = rng_for(seed, "described", ts.uids)
    built = build_columns(rng, ts, columns_for(rng, ts, key_col, 4), key_col)
    if built is None or len(built[0]) < 3:
        reasons["described: fewer than 3 usable columns"] += 1
        return None
    description = P.set_description(rng, ts)
    if description is None:
        reasons["described: page title has no description"] += 1
        return None
    display, specs, kinds, key, rows, cells = built
    noun = P.noun_for(ts.infos[key_col].display)
    label = "edition" if ts.shape == "run" else "section"

    def intro(display: list[str]) -> str:
        text = P.described_intro(rng, noun, description)
        if ts.source:
            text += " " + rng.choice([f"Say in {Q.quote(display[0])} which {label} each row is from.",
                                      f"The {Q.quote(display[0])} column gives each row's {label}."])
        return text

    provenance = {"tables": ts.uids, "pages": list(dict.fromkeys(ts.urls)), "section": ts.section,
                  "shape": ts.shape}
    if ts.shape == "run":
        topic = P.topic_of_template(ts.template)
        section = Q.section_label(ts.section.replace("X", "")).strip(" :")
        searches = {t.url: f"{topic} {v} {section}".strip() for t, v in zip(ts.tables, ts.values)}
        provenance |= {"template": ts.template, "values": ts.values}
    else:
        searches = {ts.tables[0].url: f"{Q.describe_page(ts.tables[0].title)} {Q.section_label(ts.section)}".strip()}
        provenance["sections"] = [t.section_title for t in ts.tables]
    provenance |= {"description": description, "searches": searches}
    return Draft(
        "described", ts.uids, display, specs, kinds, key, rows, cells, P.query_builder(rng, intro),
        [t.title for t in ts.tables], provenance, group=ts.group, min_rows=min_rows,
    )  # fmt: skip
