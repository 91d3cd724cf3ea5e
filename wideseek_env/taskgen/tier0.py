"""Tier 0: the original three kinds (lookups), with the defects of the first generator fixed.

- **transcribe**: every row of one table, key plus a few columns; the query names the page and
  section. A (page, section) that holds two or more tables is skipped (the query would be
  ambiguous); no query states the row count.
- **enrich**: the entities of one table's linked column plus attributes from each entity's own
  page. "set" mode (every row) describes the table; "list" mode names the entities. An attribute
  whose value already appears in the entity's table row (a release year the list itself gives) is
  not asked; a repeated entity is left out.
- **union**: the same table on 2-4 pages of a union group (runs of consecutive slot values, at
  most 60 rows); the query names the template with a placeholder.

Key cells are cleaned of footnote marks (:func:`~.drafts.clean_key`).
"""

from __future__ import annotations

import random
from collections import Counter

from wideseek_env.table.preprocess import norm_str
from wideseek_env.taskgen import queries as Q
from wideseek_env.taskgen.attributes import ATTRIBUTES, EXCLUSIVE
from wideseek_env.taskgen.columns import column_spec, column_type, choose_key
from wideseek_env.taskgen.drafts import Cell, Draft, Pages, clean_key, rng_for, row_cell
from wideseek_env.taskgen.groups import UnionGroup, group_name, source_column
from wideseek_env.taskgen.tablesets import TableSet, entity_scan, set_key, table_set, varied
from wideseek_env.table.schema import ColumnSpec, normalize_column_name

MAX_UNION_TABLES = 4
MAX_UNION_ROWS = 60
MIN_ENRICH_ROWS = 5
_ATTR_ORDER = list(ATTRIBUTES)
_FAMILY_NOUNS = {
    "birth_date": "people", "birth_year": "people", "death_date": "people", "death_year": "people",
    "release_year": "works", "publication_year": "books", "director": "films", "founded": "organisations",
    "opened": "venues", "capacity": "venues", "population": "places",
}  # fmt: skip


def renamed(spec: ColumnSpec, name: str) -> ColumnSpec:
    return ColumnSpec(name, spec.preprocess, spec.metric, spec.tolerance, spec.criterion)


def _pick(rng: random.Random, ts: TableSet, key: list[int], lo: int, hi: int) -> list[int]:
    others = [c.index for c in ts.infos if c.usable and c.index not in key]
    if not others:
        return sorted(key)
    n = rng.randint(min(lo, len(others)), min(hi, len(others)))
    return sorted(key + rng.sample(others, n))


def transcribe_draft(ts: TableSet, seed: int, min_rows: int, shared_section: bool, reasons: Counter) -> Draft | None:
    table = ts.tables[0]
    if shared_section:
        reasons["transcribe: page section holds several tables"] += 1
        return None
    if len(table.rows) < min_rows:
        reasons["transcribe: fewer rows than min_rows"] += 1
        return None
    key = choose_key(ts.infos, table.rows)
    if key is None:
        reasons["transcribe: no unique key column"] += 1
        return None
    rng = rng_for(seed, "transcribe", [table.uid])
    cols = _pick(rng, ts, key, 2, 4)
    if len(cols) < 2:
        reasons["transcribe: fewer than 2 usable columns"] += 1
        return None
    infos = ts.infos
    rows = [[clean_key(row[j]) if j in key else row[j] for j in cols] for row in table.rows]
    cells = [[row_cell(table, r)] * len(cols) for r in range(len(rows))]
    section = Q.section_label(table.section_title)
    noun = Q.row_noun(infos[key[0]].display) if len(key) == 1 else None

    def query(display, kinds, key_pos, rng=rng, title=table.title):
        where = f"the {Q.quote(section)} table" if section else "the table"
        things = noun or "rows"
        intro = rng.choice([
            f"I need the complete {where.replace('the ', '', 1)} from the English Wikipedia article "
            f"{Q.quote(title)}. List every one of its {things}.",
            f"From Wikipedia's article on {title}, please list all {things} in {where}.",
            f"Could you compile all the {things} listed in {where} of the Wikipedia page {Q.quote(title)}?",
            f"Please collect every row of {where} on the Wikipedia page {Q.quote(title)}.",
        ])  # fmt: skip
        return Q.assemble(rng, intro, display, kinds, [display[k] for k in key_pos])

    return Draft(
        "transcribe", [table.uid], [infos[j].display for j in cols],
        [renamed(infos[j].spec, infos[j].name) for j in cols], [infos[j].kind for j in cols],
        [cols.index(j) for j in key], rows, cells, query, [],
        {"tables": [table.uid], "pages": [table.url], "section": table.section_title},
        min_rows=min_rows,
    )  # fmt: skip


def enrich_draft(ts: TableSet, pages: Pages, seed: int, min_rows: int, reasons: Counter) -> Draft | None:
    table = ts.tables[0]
    need = max(min_rows, MIN_ENRICH_ROWS)
    if len(table.rows) < need:
        reasons["enrich: fewer rows than min_rows"] += 1
        return None
    scan = entity_scan(ts, pages)
    if scan is None:
        reasons["enrich: no linked column whose pages share an attribute"] += 1
        return None
    j = scan.column
    row_text = [norm_str(" ".join(row)) for row in table.rows]
    per_row = [
        {a: v for a, v in attrs.items() if norm_str(v) not in row_text[r]}  # not already in the list
        for r, attrs in enumerate(scan.attrs)
    ]
    counts = Counter({a: n for a, n in Counter(a for d in per_row for a in d).items()
                      if varied([d[a] for d in per_row if a in d])})  # fmt: skip
    if not counts or max(counts.values()) < need:
        reasons["enrich: no linked column whose pages share an attribute"] += 1
        return None
    rng = rng_for(seed, "enrich", [table.uid])
    top = max(counts.values())
    primaries = sorted((a for a, n in counts.items() if n >= max(need, 0.75 * top)), key=_ATTR_ORDER.index)
    chosen = [rng.choice(primaries)]
    rows_ok = {r for r, attrs in enumerate(per_row) if chosen[0] in attrs}
    extras = sorted((a for a in counts if a not in chosen), key=_ATTR_ORDER.index)
    rng.shuffle(extras)
    for attr in extras:
        if len(chosen) >= 3:
            break
        if any(attr in group and set(chosen) & group for group in EXCLUSIVE):
            continue
        keep = {r for r in rows_ok if attr in per_row[r]}
        if len(keep) >= max(need, 0.8 * len(rows_ok)):
            chosen.append(attr)
            rows_ok = keep
    chosen = [a for a in sorted(chosen, key=_ATTR_ORDER.index) if varied([per_row[r][a] for r in rows_ok])]
    if not chosen:
        reasons["enrich: attribute values all alike"] += 1
        return None
    names = Counter(norm_str(clean_key(table.rows[r][j])) for r in rows_ok)
    rows_ok = sorted(r for r in rows_ok if names[norm_str(clean_key(table.rows[r][j]))] == 1)
    if len(rows_ok) < need:
        reasons["enrich: too few entities with the attributes"] += 1
        return None
    full = len(rows_ok) == len(table.rows)
    section = Q.section_label(table.section_title)
    topic = Q.describe_page(table.title)
    mode = "set" if full and topic else "list"
    key_info = ts.infos[j]
    display = [key_info.display or "Name"] + [ATTRIBUTES[a].column for a in chosen]
    if len({normalize_column_name(d) for d in display}) != len(display):
        reasons["enrich: column name clash"] += 1
        return None
    rows, cells = [], []
    for r in rows_ok:
        url = scan.urls[r]
        rows.append([clean_key(table.rows[r][j])] + [per_row[r][a] for a in chosen])
        cells.append([row_cell(table, r)] + [pages.attribute_cell(url, per_row[r][a]) for a in chosen])
    specs, kinds = [], []
    for pos, name in enumerate(display):
        values = [row[pos] for row in rows]
        kind = "text" if pos == 0 or ATTRIBUTES[chosen[pos - 1]].kind == "text" else column_type(values)
        specs.append(column_spec(normalize_column_name(name), values, kind))
        kinds.append(kind)
    noun = Q.row_noun(key_info.display) or _FAMILY_NOUNS.get(chosen[0], "entries")
    asked = Q.join_words([ATTRIBUTES[a].phrase for a in chosen])
    entities = [row[0] for row in rows]

    def query(display, kinds, key_pos, rng=rng):
        if mode == "set":
            where = f"listed under {Q.quote(section)} for {topic}" if section else f"listed for {topic}"
            intro = rng.choice([
                f"For every one of the {noun} {where}, find their {asked}.",
                f"Consider all the {noun} {where}. For each one, look up their {asked} on their own "
                f"Wikipedia page.",
            ])  # fmt: skip
        else:
            ctx = f" (listed under {Q.quote(section)})" if section else ""
            listed = "; ".join(entities)
            intro = rng.choice([
                f"For each of the following {noun}{ctx}, find their {asked}: {listed}.",
                f"Here is a list of {noun}{ctx}: {listed}. For each of them, look up their {asked}.",
            ])  # fmt: skip
        return Q.assemble(rng, intro, display, kinds, [display[k] for k in key_pos])

    return Draft(
        "enrich", [table.uid], display, specs, kinds, [0], rows, cells, query, [table.title],
        {"tables": [table.uid], "pages": [table.url] + [scan.urls[r] for r in rows_ok],
         "section": table.section_title, "mode": mode, "attributes": chosen},
        min_rows=need,
    )  # fmt: skip


def union_drafts(group: UnionGroup, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    """Runs of 2-4 consecutive pages of a group (one starting at each page but the last)."""
    rng = rng_for(seed, "union", [t.uid for t in group.tables])
    n = len(group.tables)
    windows: list[list[int]] = []
    for start in range(max(1, n - 1)):
        size = rng.randint(2, min(MAX_UNION_TABLES, n - start)) if n > 2 else n
        window = list(range(start, start + size))
        if not windows or window[-1] > windows[-1][-1]:
            windows.append(window)
    drafts = []
    for window in windows:
        tables = [group.tables[i] for i in window]
        values = [group.values[i] for i in window]
        while len(tables) > 2 and sum(len(t.rows) for t in tables) > MAX_UNION_ROWS:
            tables, values = tables[:-1], values[:-1]
        ts = table_set(tables, values, group.template, group.section, group_name(group))
        draft = _union_draft(ts, seed, min_rows, reasons)
        if draft is not None:
            drafts.append(draft)
    return drafts


def _union_draft(ts: TableSet, seed: int, min_rows: int, reasons: Counter) -> Draft | None:
    rng = rng_for(seed, "union", ts.uids)
    if len(ts.rows) < min_rows:
        reasons["union: fewer rows than min_rows"] += 1
        return None
    key_col = set_key(ts)
    if key_col is None:
        reasons["union: no unique key column"] += 1
        return None
    source_display = source_column(ts.template, ts.values)
    names = {c.name for c in ts.infos}
    if normalize_column_name(source_display) in names:
        source_display = "Source page"
        if normalize_column_name(source_display) in names:
            reasons["union: column name clash"] += 1
            return None
    cols = _pick(rng, ts, [key_col], 1, 3)
    src_values = [ts.values[o[0]] for o in ts.origin]
    src_kind = "year" if column_type(src_values) == "year" else "text"
    display = [source_display] + [ts.infos[j].display for j in cols]
    specs = [column_spec(normalize_column_name(source_display), src_values, src_kind)]
    specs += [renamed(ts.infos[j].spec, ts.infos[j].name) for j in cols]
    kinds = [src_kind] + [ts.infos[j].kind for j in cols]
    rows, cells = [], []
    for i, row in enumerate(ts.rows):
        table = ts.table_of(i)
        rows.append([src_values[i]] + [clean_key(row[j]) if j == key_col else row[j] for j in cols])
        line = row_cell(table, ts.origin[i][1])
        cells.append([Cell(table.url, table.title, "page title slot")] + [line] * len(cols))
    section = Q.section_label(ts.section)
    noun = Q.row_noun(ts.infos[key_col].display) or "rows"
    page = Q.quote(ts.template.replace("{}", "X"))
    vals = Q.join_words(ts.values)

    def query(display, kinds, key_pos, rng=rng):
        where = f"the {Q.quote(section)} table" if section else "the table"
        intro = rng.choice([
            f"For X in {vals}, take {where} of the Wikipedia page {page}. Combine all their {noun} "
            f"into one table, with a column {Q.quote(display[0])} saying which X each row comes from.",
            f"Please list all the {noun} of {where} on each Wikipedia page {page}, where X is each "
            f"of {vals}, in a single table with a {Q.quote(display[0])} column giving the X of each row.",
        ])  # fmt: skip
        return Q.assemble(rng, intro, display, kinds, [display[k] for k in key_pos])

    return Draft(
        "union", ts.uids, display, specs, kinds, [0, 1 + cols.index(key_col)], rows, cells, query,
        [t.title for t in ts.tables],
        {"tables": ts.uids, "pages": ts.urls, "section": ts.section, "template": ts.template,
         "values": ts.values},
        group=ts.group, min_rows=min_rows,
    )  # fmt: skip
