"""Tier 4: joins, aggregation and entity-centric tasks over the pages of a union group.

- **count**: across a run of 3-20 editions (at most 300 rows), one row per distinct entity of the
  key column with the number of editions that list it and its first and last edition (kept when
  some entity appears in two editions or more);
- **top**: per edition of a run of 3-20 (at most 300 rows), the rows ranked at most k (3 or 5) by
  the table's rank column;
- **join**: two editions at most three apart: the entities on both lists (with a column from
  each), and those on the first but not the second (two tasks where both have enough entities);
- **entity**: every row, across all editions of the group, in which one entity (appearing in at
  least four editions) appears.

Derived cells (counts, first / last edition) record the rule and one row they read;
``provenance["rows"]`` lists every row line a task's gold reads (url, row text).
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict

from wideseek_env.table.preprocess import norm_str
from wideseek_env.taskgen import phrasing as P
from wideseek_env.taskgen.columns import column_spec, column_type, _POOR_KEYS
from wideseek_env.taskgen.drafts import Cell, Draft, clean_key, rng_for, row_cell
from wideseek_env.taskgen.groups import UnionGroup, runs, slot_year
from wideseek_env.taskgen.tablesets import RUN_PAGES, RUN_ROWS, TableSet, group_set, run_set, set_key
from wideseek_env.tasks import normalize_column_name

_RANK = re.compile(r"^(?:rank|pos\.?|position|place|rk|finish|fin\.?|no\.?|#)$")


def _description(rng: random.Random, ts: TableSet) -> str:
    return P.set_description(rng, ts, "of") or ""


def _entity_column(ts: TableSet) -> int | None:
    """A text column naming entities (linked or entity-like), not a rank or number."""
    key = set_key(ts)
    if key is None or ts.infos[key].kind != "text" or _POOR_KEYS.match(ts.infos[key].name):
        return None
    return key


def _specs(display, rows, text_cols=(0,)):
    specs, kinds = [], []
    for pos, name in enumerate(display):
        values = [r[pos] for r in rows]
        kind = "text" if pos in text_cols else column_type(values)
        specs.append(column_spec(normalize_column_name(name), values, kind))
        kinds.append(kind)
    return specs, kinds


def _draft(kind: str, ts: TableSet, columns: tuple, key: list[int], rng: random.Random, intro,
           min_rows: int, **provenance) -> Draft:
    """A tier-4 draft over a run: ``columns`` = (display, specs, kinds, rows, cells); the provenance
    names the set (tables, pages, section, template, values) and adds ``provenance``."""
    display, specs, kinds, rows, cells = columns
    return Draft(
        kind, ts.uids, display, specs, kinds, key, rows, cells, P.query_builder(rng, intro),
        [t.title for t in ts.tables],
        {"tables": ts.uids, "pages": ts.urls, "section": ts.section, "template": ts.template,
         "values": ts.values, **provenance},
        group=ts.group, min_rows=min_rows,
    )  # fmt: skip


def count_drafts(group: UnionGroup, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    rng = rng_for(seed, "count", [t.uid for t in group.tables])
    drafts = []
    for start, end in runs(group, 3, RUN_PAGES, RUN_ROWS):
        ts = run_set(group, start, end)
        j = _entity_column(ts)
        if j is None:
            reasons["count: no entity column"] += 1
            continue
        seen: dict[str, list[int]] = defaultdict(list)
        names: dict[str, str] = {}
        for i, row in enumerate(ts.rows):
            name = clean_key(row[j])
            names.setdefault(norm_str(name), name)
            if not seen[norm_str(name)] or ts.origin[seen[norm_str(name)][-1]][0] != ts.origin[i][0]:
                seen[norm_str(name)].append(i)
        if len(seen) < min_rows or max(len(v) for v in seen.values()) < 2:
            reasons["count: no entity in two editions"] += 1
            continue
        source = ts.source
        display = [P.paraphrase(rng, ts.infos[j].display), rng.choice(["Appearances", "Number of editions"]),
                   f"First {source.lower()}", f"Last {source.lower()}"]
        rows, cells, read = [], [], []
        for key in sorted(seen, key=lambda k: seen[k][0]):
            idx = seen[key]
            first, last = ts.values[ts.origin[idx[0]][0]], ts.values[ts.origin[idx[-1]][0]]
            rows.append([names[key], str(len(idx)), first, last])
            line = row_cell(ts.table_of(idx[0]), ts.origin[idx[0]][1])
            last_line = row_cell(ts.table_of(idx[-1]), ts.origin[idx[-1]][1])
            cells.append([line, Cell(line.url, line.passage, "count of editions listing the entity"),
                          Cell(line.url, ts.table_of(idx[0]).title, "page title slot"),
                          Cell(last_line.url, ts.table_of(idx[-1]).title, "page title slot")])
            read.append([[ts.table_of(i).url, row_cell(ts.table_of(i), ts.origin[i][1]).passage] for i in idx])
        if any(column_type([r[c] for r in rows]) not in ("year", "number") for c in (2, 3)):
            display, rows, cells = display[:2], [r[:2] for r in rows], [c[:2] for c in cells]
        specs, kinds = _specs(display, rows)
        description = _description(rng, ts)
        noun = P.noun_for(ts.infos[j].display)

        def intro(display, noun=noun, description=description):
            return P.count_intro(rng, noun, description, display[1])

        drafts.append(_draft("count", ts, (display, specs, kinds, rows, cells), [0], rng, intro, min_rows,
                             rows=read, description=description))
    return drafts


def top_drafts(group: UnionGroup, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    rng = rng_for(seed, "top", [t.uid for t in group.tables])
    drafts = []
    for start, end in runs(group, 3, RUN_PAGES, RUN_ROWS):
        ts = run_set(group, start, end)
        rank = next((c for c in ts.infos if _RANK.match(c.name) and c.usable and c.kind == "number"), None)
        j = _entity_column(ts)
        if rank is None or j is None:
            reasons["top: no rank or entity column"] += 1
            continue
        k = rng.choice([3, 5])
        picked = [i for i, row in enumerate(ts.rows) if row[rank.index].strip().isdigit() and int(row[rank.index]) <= k]
        if len(picked) < min_rows or len(picked) == len(ts.rows):
            reasons["top: too few or all rows in the top k"] += 1
            continue
        others = [c.index for c in ts.infos if c.usable and c.index not in (j, rank.index)]
        extra = rng.sample(others, min(len(others), rng.randint(1, 2)))
        source = ts.source
        rank_name = P.paraphrase(rng, rank.display)
        display = [source, rank_name, P.paraphrase(rng, ts.infos[j].display)]
        display += [P.paraphrase(rng, ts.infos[c].display) for c in extra]
        if len({normalize_column_name(d) for d in display}) != len(display):
            continue
        rows, cells = [], []
        for i in picked:
            table, row = ts.table_of(i), ts.rows[i]
            line = row_cell(table, ts.origin[i][1])
            rows.append([ts.values[ts.origin[i][0]], row[rank.index], clean_key(row[j])] + [row[c] for c in extra])
            cells.append([Cell(table.url, table.title, "page title slot")] + [line] * (2 + len(extra)))
        specs, kinds = _specs(display, rows, text_cols=(2,) if column_type([r[0] for r in rows]) == "year" else (0, 2))
        description = _description(rng, ts)
        noun = P.noun_for(ts.infos[j].display)

        def intro(display, noun=noun, description=description, k=k):
            return P.top_intro(rng, noun, description, k, display[1], display[0])

        drafts.append(_draft("top", ts, (display, specs, kinds, rows, cells), [0, 2], rng, intro, min_rows,
                             k=k, description=description))
    return drafts


def join_drafts(group: UnionGroup, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    """Per pair of editions at most three apart: the entities on both lists, and those on the first
    only, each where it has at least ``min_rows`` entities (and some entity is on both lists)."""
    rng = rng_for(seed, "join", [t.uid for t in group.tables])
    drafts = []
    n = len(group.tables)
    for a, b in [(a, b) for a in range(n) for b in range(a + 1, min(n, a + 4))]:
        ts = group_set(group, [a, b])
        j = _entity_column(ts)
        if j is None:
            reasons["join: no entity column"] += 1
            continue
        by_table: list[dict[str, int]] = [{}, {}]
        for i, row in enumerate(ts.rows):
            by_table[ts.origin[i][0]].setdefault(norm_str(clean_key(row[j])), i)
        both = [k for k in by_table[0] if k in by_table[1]]
        only = [k for k in by_table[0] if k not in by_table[1]]
        modes = [(mode, keys) for mode, keys in (("both", both), ("only", only)) if len(keys) >= min_rows]
        if not modes or not both:
            reasons["join: too few entities on both lists / on one only"] += 1
            continue
        for mode, keys in modes:
            draft = _join_draft(ts, j, by_table, keys, mode, rng, min_rows)
            if draft is not None:
                drafts.append(draft)
    return drafts


def _join_draft(ts: TableSet, j: int, by_table: list[dict[str, int]], keys: list[str], mode: str,
                rng: random.Random, min_rows: int) -> Draft | None:
    others = [c for c in ts.infos if c.usable and c.index != j]
    other = rng.choice(others) if others else None
    v0, v1 = ts.values
    display = [P.paraphrase(rng, ts.infos[j].display)]
    if other is not None:
        display.append(f"{P.paraphrase(rng, other.display)} ({v0})")
        if mode == "both":
            display.append(f"{P.paraphrase(rng, other.display)} ({v1})")
    if len({normalize_column_name(d) for d in display}) != len(display):
        return None
    rows, cells = [], []
    for key in keys:
        i0 = by_table[0][key]
        row = [clean_key(ts.rows[i0][j])]
        line0 = row_cell(ts.tables[0], ts.origin[i0][1])
        cell = [line0]
        if other is not None:
            row.append(ts.rows[i0][other.index])
            cell.append(line0)
            if mode == "both":
                i1 = by_table[1][key]
                row.append(ts.rows[i1][other.index])
                cell.append(row_cell(ts.tables[1], ts.origin[i1][1]))
        rows.append(row)
        cells.append(cell)
    specs, kinds = _specs(display, rows)
    where = P.section_phrase(rng, ts.section)
    first = f"{where} of {P.topic_of_template(ts.template)} {v0}".strip()
    second = f"in that of {v1}"
    noun = P.noun_for(ts.infos[j].display)

    def intro(display):
        return P.join_intro(rng, noun, first, second, mode)

    return _draft("join", ts, (display, specs, kinds, rows, cells), [0], rng, intro, min_rows, mode=mode,
                  variant=mode)


def entity_drafts(group: UnionGroup, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    if len(group.tables) < 4:
        return []
    ts = run_set(group, 0, len(group.tables))
    j = _entity_column(ts)
    if j is None:
        reasons["entity: no entity column"] += 1
        return []
    rng = rng_for(seed, "entity", ts.uids)
    where: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(ts.rows):
        where[norm_str(clean_key(row[j]))].append(i)
    frequent = sorted((k for k, idx in where.items() if len({ts.origin[i][0] for i in idx}) >= max(4, min_rows)
                       and len({ts.origin[i][0] for i in idx}) == len(idx)), key=lambda k: (-len(where[k]), k))
    drafts = []
    others = [c.index for c in ts.infos if c.usable and c.index != j]
    source = ts.source
    for key in frequent[:10]:
        idx = where[key]
        entity = clean_key(ts.rows[idx[0]][j])
        extra = sorted(rng.sample(others, min(len(others), 3)))
        display = [source] + [P.paraphrase(rng, ts.infos[c].display) for c in extra]
        if len(extra) < 2 or len({normalize_column_name(d) for d in display}) != len(display):
            continue
        rows, cells = [], []
        for i in idx:
            table = ts.table_of(i)
            line = row_cell(table, ts.origin[i][1])
            rows.append([ts.values[ts.origin[i][0]]] + [ts.rows[i][c] for c in extra])
            cells.append([Cell(table.url, table.title, "page title slot")] + [line] * len(extra))
        year = column_type([r[0] for r in rows]) == "year"
        specs, kinds = _specs(display, rows, text_cols=() if year else (0,))
        if not year and not all(slot_year(v) for v in ts.values):
            kinds[0] = "text"
        description = _description(rng, ts)

        def intro(display, entity=entity, description=description):
            return P.entity_intro(rng, entity, description, display[0])

        drafts.append(_draft("entity", ts, (display, specs, kinds, rows, cells), [0], rng, intro, min_rows,
                             entity=entity, variant=key, description=description))
    return drafts
