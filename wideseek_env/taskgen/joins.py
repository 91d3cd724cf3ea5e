"""Tier 4: joins, aggregation and entity-centric tasks over the pages of a union group.

- **count**: across a run of 3-8 editions, one row per distinct entity of the key column with the
  number of editions that list it and its first and last edition (kept when some entity appears
  in two editions or more);
- **top**: per edition of a run of 3-8, the rows ranked at most k (3 or 5) by the table's rank
  column;
- **join**: two consecutive editions: the entities on both lists (with a column from each), or on
  the first but not the second;
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
from wideseek_env.taskgen import queries as Q
from wideseek_env.taskgen.columns import column_spec, column_type, _POOR_KEYS
from wideseek_env.taskgen.drafts import Cell, Draft, clean_key, rng_for, row_cell
from wideseek_env.taskgen.groups import UnionGroup, group_name, runs, slot_year, source_column
from wideseek_env.taskgen.tablesets import TableSet, set_key, table_set
from wideseek_env.table.schema import normalize_column_name

_RANK = re.compile(r"^(?:rank|pos\.?|position|place|rk|finish|fin\.?|no\.?|#)$")


def _ts(group: UnionGroup, start: int, end: int) -> TableSet:
    return table_set(group.tables[start:end], group.values[start:end], group.template, group.section,
                     group_name(group))


def _description(rng: random.Random, ts: TableSet) -> str:
    topic = P.topic_of_template(ts.template)
    span = P.span_phrase(rng, ts.values)
    where = P.section_phrase(rng, ts.section)
    values = span or ("for " + Q.join_words(ts.values))
    return " ".join(p for p in (f"of {topic}" if topic else "", values, where) if p)


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


def _source(ts: TableSet) -> str:
    source = source_column(ts.template, ts.values)
    return "Edition" if normalize_column_name(source) in {c.name for c in ts.infos} else source


def count_drafts(group: UnionGroup, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    rng = rng_for(seed, "count", [t.uid for t in group.tables])
    drafts = []
    for start, end in runs(group, 3, 10):
        ts = _ts(group, start, end)
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
        source = _source(ts)
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

        def query(display, kinds, key_pos, rng=rng, noun=noun, description=description):
            intro = P.count_intro(rng, noun, description, display[1])
            return Q.assemble(rng, intro, display, kinds, [display[k] for k in key_pos])

        drafts.append(Draft(
            "count", ts.uids, display, specs, kinds, [0], rows, cells, query, [t.title for t in ts.tables],
            {"tables": ts.uids, "pages": ts.urls, "section": ts.section, "template": ts.template,
             "values": ts.values, "rows": read, "description": description},
            group=ts.group, min_rows=min_rows,
        ))  # fmt: skip
    return drafts


def top_drafts(group: UnionGroup, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    rng = rng_for(seed, "top", [t.uid for t in group.tables])
    drafts = []
    for start, end in runs(group, 3, 10):
        ts = _ts(group, start, end)
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
        source = _source(ts)
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

        def query(display, kinds, key_pos, rng=rng, noun=noun, description=description, k=k):
            intro = P.top_intro(rng, noun, description, k, display[1], display[0])
            return Q.assemble(rng, intro, display, kinds, [display[c] for c in key_pos])

        drafts.append(Draft(
            "top", ts.uids, display, specs, kinds, [0, 2], rows, cells, query, [t.title for t in ts.tables],
            {"tables": ts.uids, "pages": ts.urls, "section": ts.section, "template": ts.template,
             "values": ts.values, "k": k, "description": description},
            group=ts.group, min_rows=min_rows,
        ))  # fmt: skip
    return drafts


def join_drafts(group: UnionGroup, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    rng = rng_for(seed, "join", [t.uid for t in group.tables])
    drafts = []
    n = len(group.tables)
    for a, b in [(a, b) for a in range(n) for b in range(a + 1, min(n, a + 4))]:
        ts = table_set([group.tables[a], group.tables[b]], [group.values[a], group.values[b]], group.template,
                       group.section, group_name(group))
        j = _entity_column(ts)
        if j is None:
            reasons["join: no entity column"] += 1
            continue
        by_table: list[dict[str, int]] = [{}, {}]
        for i, row in enumerate(ts.rows):
            by_table[ts.origin[i][0]].setdefault(norm_str(clean_key(row[j])), i)
        both = [k for k in by_table[0] if k in by_table[1]]
        only = [k for k in by_table[0] if k not in by_table[1]]
        mode = "both" if len(both) >= min_rows and (len(only) < min_rows or rng.random() < 0.5) else "only"
        chosen = both if mode == "both" else only
        if len(chosen) < min_rows or not both:
            reasons["join: too few entities on both lists / on one only"] += 1
            continue
        others = [c for c in ts.infos if c.usable and c.index != j and c.kind != "text" or (c.usable and c.index != j and c.kind == "text")]
        other = rng.choice(others) if others else None
        v0, v1 = ts.values
        name = P.paraphrase(rng, ts.infos[j].display)
        display = [name]
        if other is not None:
            display.append(f"{P.paraphrase(rng, other.display)} ({v0})")
            if mode == "both":
                display.append(f"{P.paraphrase(rng, other.display)} ({v1})")
        rows, cells = [], []
        for key in chosen:
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
        if len({normalize_column_name(d) for d in display}) != len(display):
            continue
        specs, kinds = _specs(display, rows)
        topic = P.topic_of_template(ts.template)
        where = P.section_phrase(rng, ts.section)
        first = f"{where} of {topic} {v0}".strip()
        second = f"in that of {v1}"
        noun = P.noun_for(ts.infos[j].display)

        def query(display, kinds, key_pos, rng=rng, noun=noun, first=first, second=second, mode=mode):
            intro = P.join_intro(rng, noun, first, second, mode)
            return Q.assemble(rng, intro, display, kinds, [display[c] for c in key_pos])

        drafts.append(Draft(
            "join", ts.uids, display, specs, kinds, [0], rows, cells, query, [t.title for t in ts.tables],
            {"tables": ts.uids, "pages": ts.urls, "section": ts.section, "template": ts.template,
             "values": ts.values, "mode": mode, "variant": mode},
            group=ts.group, min_rows=min_rows,
        ))  # fmt: skip
    return drafts


def entity_drafts(group: UnionGroup, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    if len(group.tables) < 4:
        return []
    ts = _ts(group, 0, len(group.tables))
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
    source = _source(ts)
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

        def query(display, kinds, key_pos, rng=rng, entity=entity, description=description):
            intro = P.entity_intro(rng, entity, description, display[0])
            return Q.assemble(rng, intro, display, kinds, [display[c] for c in key_pos])

        drafts.append(Draft(
            "entity", ts.uids, display, specs, kinds, [0], rows, cells, query, [t.title for t in ts.tables],
            {"tables": ts.uids, "pages": ts.urls, "section": ts.section, "template": ts.template,
             "values": ts.values, "entity": entity, "variant": key, "description": description},
            group=ts.group, min_rows=min_rows,
        ))  # fmt: skip
    return drafts
