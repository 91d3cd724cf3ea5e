"""Broad table tasks generated from a corpus's Wikipedia tables (WideSeek-R1's three stages).

``generate_tasks(corpus_dir, out_dir, seed=0) -> stats`` reads the tables and pages of a built
corpus (``wideseek corpus build``) and writes ``train.jsonl``, ``test.jsonl`` (one
:class:`~wideseek_env.tasks.schema.Task` per line) and ``stats.json``.

Three kinds of task:

- **transcribe**: every row of one table, the key column(s) plus a few others. The query names the
  page and the section.
- **enrich**: the entities of one table's linked column plus attributes that only each entity's own
  page holds (:mod:`.attributes`: dates of birth and death, founding years, release years,
  directors, populations, capacities...), so one page per row must be read: the width that
  subagents parallelise. "set" mode asks for every row of the table and describes the table by
  topic; "list" mode (when some entities' pages lack the attribute, those rows are left out) names
  the entities in the query. Neither names the page (page-title rule: :mod:`.queries`).
- **union**: the same table ("Medalists", "Qualifying", "Teams": same header, same section title
  up to the page's own year) on 2-4 pages whose titles differ in one part (a year, a season, a
  country: "X Hungarian Grand Prix" for X in 1999, 2005), merged into one table whose first column
  ("Year", "Season", "Edition", "Country" or "Source") says which page each row comes from; the key
  is that column plus a column unique within each table. A group of n such pages gives runs of
  2-4 consecutive pages (by X), about n - 1 overlapping union tasks, at most 60 rows each.

The three stages of the paper, deterministically from ``seed``:

1. *query generation*: pick tables (or groups of tables), the key, the columns, and write the query
   (:mod:`.queries`) with templates chosen by a per-item RNG seeded from ``(seed, kind, table
   uids)``;
2. *answer generation*: the gold table, copied from the corpus's table cells and from attributes
   extracted from the linked pages (instead of the paper's two independent LLM answers, the gold
   comes from the source itself);
3. *filtering*: at least ``min_rows`` rows; unique keys (after the scorer's preprocessing); no empty
   gold cell (columns with one are not used); text cells short enough for an exact match; the
   query must not name a page it draws on (enrich, union); **answerability**: every gold cell's
   value, normalised with the scorer's ``norm_str``, must occur in the ``norm_str`` of the stored
   text (title + text) of a page the cell comes from (the table's page for table cells, the
   entity's page for attributes) — a failing key cell drops its row, any other failing cell drops
   its column, and a task left with fewer than ``min_rows`` rows or 2 columns is dropped; finally
   the gold table, rendered as an answer, must score exactly 1 with
   :func:`~wideseek_env.evaluation.score_answer` and an empty answer 0.

Then the kinds are balanced (``kind_mix``: the largest set whose kind shares are the given
fractions, sampling the over-represented kinds by seed; ``None`` keeps everything), and the tasks are
split by source table: tasks that share a table are one component (a union task joins its tables),
and components go whole to train or test (``test_fraction`` of the tasks, greedily, in a seeded
order), so no table feeds both splits.

Idempotent and crash-safe: files are written (and fsynced) into ``out_dir/.tmp-<pid>/``; then the
marker ``out_dir/.incomplete`` is written and fsynced, the old ``stats.json`` removed, the files
moved into place one by one with ``os.replace`` (``stats.json`` last), and the marker removed. A
process killed at any point leaves the previous or the new files with their ``stats.json``, or the
marker: while the files are being swapped the directory may hold a new ``train.jsonl`` beside an
old ``test.jsonl``, and the marker says so. :func:`~wideseek_env.tasks.loaders.load_tasks` refuses
a directory holding the marker, or a task file that does not match the count and SHA-256 that
``stats.json`` records for it, with an error saying how to regenerate it. ``stats.json`` records
the corpus fingerprint, the parameters, a hash of the generator's code and the count and SHA-256 of
both task files; a later call with the same corpus, code, seed and parameters whose files still
match, and no marker, does no work (it returns the stats with ``"reused": true``); any other call
regenerates everything (and removes leftover ``.tmp-*`` directories). A lock file serialises
concurrent calls on one ``out_dir``. Same seed -> byte-identical files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from tqdm import tqdm

from wideseek_env.corpus.build import load_manifest
from wideseek_env.corpus.store import PAGES_FILE, PageStore
from wideseek_env.corpus.types import Table
from wideseek_env.evaluation.preprocess import norm_str
from wideseek_env.tasks import queries as Q
from wideseek_env.tasks.attributes import ATTRIBUTES, EXCLUSIVE, extract_attributes
from wideseek_env.tasks.columns import (
    ColumnInfo,
    analyse_columns,
    choose_key,
    column_spec,
    column_type,
    is_empty,
    key_preference,
    preprocessed,
    _POOR_KEYS,
)
from wideseek_env.tasks.loaders import INCOMPLETE_MARKER
from wideseek_env.tasks.schema import ColumnSpec, Task, normalize_column_name

GENERATOR = "wideseek_env.tasks.generate"
VERSION = 1
KINDS = ("transcribe", "enrich", "union")
DEFAULT_KIND_MIX = {"transcribe": 0.4, "enrich": 0.4, "union": 0.2}
TRAIN_FILE, TEST_FILE, STATS_FILE = "train.jsonl", "test.jsonl", "stats.json"
MAX_UNION_TABLES = 4
MAX_UNION_ROWS = 60
MIN_ENRICH_ROWS = 5


# ------------------------------------------------------------------------------------ records


@dataclass
class Draft:
    """A task before filtering: gold cells carry the pages their values must be found in."""

    kind: str
    uids: list[str]
    display: list[str]
    specs: list[ColumnSpec]
    kinds: list[str]  # column data types ("date", "year", "number", "text")
    key: list[int]  # positions in display
    rows: list[list[str]]
    sources: list[list[str]]  # per row, per column: the page URL the value comes from
    make_query: object  # callable(display, specs, kinds, key) -> str
    titles: list[str]  # page titles the query must not name (enrich/union)
    provenance: dict = field(default_factory=dict)
    rng: random.Random | None = None


class Pages:
    """Page texts and their ``norm_str`` forms, cached (the answerability check and extraction)."""

    def __init__(self, store: PageStore) -> None:
        self.store = store
        self._norm: dict[str, str | None] = {}
        self._attrs: dict[str, dict[str, str] | None] = {}

    def norm(self, url: str) -> str | None:
        """``norm_str`` of the page's title and text (None: no such page)."""
        if url not in self._norm:
            page = self.store.get(url)
            self._norm[url] = norm_str(page.title + "\n" + page.text) if page else None
        return self._norm[url]

    def attributes(self, url: str) -> dict[str, str] | None:
        """The attributes :mod:`.attributes` finds in the page (None: no such page)."""
        if url not in self._attrs:
            page = self.store.get(url)
            self._attrs[url] = extract_attributes(page.text) if page else None
        return self._attrs[url]


def _rng(seed: int, kind: str, uids: Sequence[str]) -> random.Random:
    return random.Random(f"{seed}|{kind}|{'|'.join(uids)}")


def _task_id(kind: str, uids: Sequence[str]) -> str:
    digest = hashlib.sha1(("|".join([kind, *uids])).encode("utf-8")).hexdigest()[:12]
    return f"ottqa-{kind}-{digest}"


# ------------------------------------------------------------------------------ transcribe


def _pick_columns(rng: random.Random, infos: Sequence[ColumnInfo], key: list[int], lo: int, hi: int) -> list[int]:
    others = [c.index for c in infos if c.usable and c.index not in key]
    if not others:
        return sorted(key)
    n = rng.randint(min(lo, len(others)), min(hi, len(others)))
    return sorted(key + rng.sample(others, n))


def transcribe_draft(table: Table, infos: list[ColumnInfo], seed: int, min_rows: int,
                     reasons: Counter) -> Draft | None:
    if len(table.rows) < min_rows:
        reasons["transcribe: fewer rows than min_rows"] += 1
        return None
    key = choose_key(infos, table.rows)
    if key is None:
        reasons["transcribe: no unique key column"] += 1
        return None
    rng = _rng(seed, "transcribe", [table.uid])
    cols = _pick_columns(rng, infos, key, 2, 4)
    if len(cols) < 2:
        reasons["transcribe: fewer than 2 usable columns"] += 1
        return None
    display = [infos[j].display for j in cols]
    specs = [_renamed(infos[j].spec, infos[j].name) for j in cols]
    kinds = [infos[j].kind for j in cols]
    rows = [[row[j] for j in cols] for row in table.rows]
    sources = [[table.url] * len(cols) for _ in rows]
    key_pos = [cols.index(j) for j in key]
    section = Q.section_label(table.section_title)
    noun = Q.row_noun(infos[key[0]].display) if len(key) == 1 else None
    title = table.title

    def make_query(display, specs, kinds, key, rows_n, rng=rng):
        intro = Q.transcribe_intro(rng, title, section, noun, rows_n)
        return Q.assemble(rng, intro, display, kinds, [display[k] for k in key])

    return Draft(
        "transcribe", [table.uid], display, specs, kinds, key_pos, rows, sources, make_query, [],
        {"tables": [table.uid], "pages": [table.url], "section": table.section_title}, rng,
    )


def _renamed(spec: ColumnSpec, name: str) -> ColumnSpec:
    return ColumnSpec(name, spec.preprocess, spec.metric, spec.tolerance, spec.criterion)


# ---------------------------------------------------------------------------------- enrich

_FAMILY_NOUNS = {
    "birth_date": "people", "birth_year": "people", "death_date": "people", "death_year": "people",
    "release_year": "works", "publication_year": "books", "director": "films", "founded": "organisations",
    "opened": "venues", "capacity": "venues", "population": "places",
}  # fmt: skip
_ATTR_ORDER = list(ATTRIBUTES)


def enrich_draft(table: Table, infos: list[ColumnInfo], pages: Pages, seed: int, min_rows: int,
                 reasons: Counter) -> Draft | None:
    need = max(min_rows, MIN_ENRICH_ROWS)
    if len(table.rows) < need:
        reasons["enrich: fewer rows than min_rows"] += 1
        return None
    best = None  # (rows with primary attr, column, per-row attrs)
    for info in sorted(infos, key=key_preference):
        if not info.name or info.kind != "text" or info.linked * len(table.rows) < need:
            continue
        j = info.index
        per_row: list[dict[str, str] | None] = []
        for r, row in enumerate(table.rows):
            links = table.links[r][j] if r < len(table.links) and j < len(table.links[r]) else []
            cell = row[j] if j < len(row) else ""
            if len(links) != 1 or is_empty(cell) or links[0] == table.url or not names_entity(cell, links[0]):
                per_row.append(None)
            else:
                per_row.append(pages.attributes(links[0]))
        values: dict[str, list[str]] = defaultdict(list)
        for attrs in per_row:
            for a, v in (attrs or {}).items():
                values[a].append(v)
        # An attribute most entities share ("release year" of the films of 1989) asks nothing.
        counts = Counter({a: len(vs) for a, vs in values.items() if _varied(vs)})
        if counts and (best is None or max(counts.values()) > best[0]):
            best = (max(counts.values()), j, per_row, counts)
    if best is None or best[0] < need:
        reasons["enrich: no linked column whose pages share an attribute"] += 1
        return None
    _, j, per_row, counts = best
    rng = _rng(seed, "enrich", [table.uid])
    top = max(counts.values())
    primaries = sorted((a for a, n in counts.items() if n >= max(need, 0.75 * top)), key=_ATTR_ORDER.index)
    chosen = [rng.choice(primaries)]
    rows_ok = {r for r, attrs in enumerate(per_row) if attrs and chosen[0] in attrs}
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
    chosen.sort(key=_ATTR_ORDER.index)
    varied = [a for a in chosen if _varied([per_row[r][a] for r in rows_ok])]
    if not varied:
        reasons["enrich: attribute values all alike"] += 1
        return None
    chosen = varied
    # Unique entity names only (after the scorer's norm_str): a repeated entity is left out.
    names = Counter(norm_str(table.rows[r][j]) for r in rows_ok)
    rows_ok = sorted(r for r in rows_ok if names[norm_str(table.rows[r][j])] == 1)
    if len(rows_ok) < need:
        reasons["enrich: too few entities with the attributes"] += 1
        return None
    full = len(rows_ok) == len(table.rows)
    section = Q.section_label(table.section_title)
    topic = Q.describe_page(table.title)
    mode = "set" if full and topic else "list"
    key_info = infos[j]
    display = [key_info.display or "Name"]
    spec_names = [normalize_column_name(display[0])]
    table_cols: list[int] = []
    if mode == "set":
        others = [c.index for c in infos if c.usable and c.index != j]
        if others and rng.random() < 0.5:
            table_cols = [rng.choice(others)]
    attr_display = [ATTRIBUTES[a].column for a in chosen]
    for d in [infos[c].display for c in table_cols] + attr_display:
        if normalize_column_name(d) in spec_names:
            reasons["enrich: column name clash"] += 1
            return None
        spec_names.append(normalize_column_name(d))
    display += [infos[c].display for c in table_cols] + attr_display
    entity_urls = {r: table.links[r][j][0] for r in rows_ok}
    rows, sources = [], []
    for r in rows_ok:
        attrs = per_row[r]
        rows.append([table.rows[r][j]] + [table.rows[r][c] for c in table_cols] + [attrs[a] for a in chosen])
        sources.append([table.url] * (1 + len(table_cols)) + [entity_urls[r]] * len(chosen))
    specs, kinds = [], []
    for pos, name in enumerate(spec_names):
        values = [row[pos] for row in rows]
        if pos == 0:
            kind = "text"
        elif pos <= len(table_cols):
            kind = infos[table_cols[pos - 1]].kind
        elif ATTRIBUTES[chosen[pos - 1 - len(table_cols)]].kind == "text":
            kind = "text"
        else:
            kind = column_type(values)
        specs.append(column_spec(name, values, kind))
        kinds.append(kind)
    header_noun = Q.row_noun(key_info.display)
    noun = header_noun or _FAMILY_NOUNS.get(chosen[0], "entries")
    attr_phrases = [ATTRIBUTES[a].phrase for a in chosen]
    table_phrases = [infos[c].display for c in table_cols]
    title = table.title

    def make_query(display, specs, kinds, key, rows_n, rng=rng, rows=rows):
        if mode == "set":
            intro = Q.enrich_set_intro(rng, topic, section, noun, attr_phrases, table_phrases)
        else:
            context = []
            if section:
                context.append(f"listed under {Q.quote(section)}" + (f" for {topic}" if topic else ""))
            intro = Q.enrich_list_intro(rng, [row[0] for row in rows], noun, "; ".join(context), attr_phrases)
        return Q.assemble(rng, intro, display, kinds, [display[k] for k in key])

    return Draft(
        "enrich", [table.uid], display, specs, kinds, [0], rows, sources, make_query, [title],
        {
            "tables": [table.uid], "pages": [table.url] + [entity_urls[r] for r in rows_ok],
            "section": table.section_title, "mode": mode, "attributes": chosen,
        },
        rng,
    )


_WORD = re.compile(r"[^\W_]+")


def names_entity(cell: str, url: str) -> bool:
    """Whether a cell's text names the article it links to, not just mentions it.

    "Joshua Cheptegei (UGA)" -> Joshua_Cheptegei: yes; "Old River Road in Niskayuna" ->
    Niskayuna: no. At least half of the title's words (its disambiguation in parentheses
    dropped) are in the cell, and at least half of the cell's words are in the title.
    """
    title = url.rsplit("/wiki/", 1)[-1].replace("_", " ")
    title = re.sub(r"\s*\([^()]*\)$", "", title)
    t_words = {w.lower() for w in _WORD.findall(title)}
    c_words = {w.lower() for w in _WORD.findall(cell)}
    if not t_words or not c_words:
        return False
    shared = len(t_words & c_words)
    return shared * 2 >= len(t_words) and shared * 2 >= len(c_words)


def _varied(values: Sequence[str]) -> bool:
    """No single value covers more than half of the rows."""
    return Counter(values).most_common(1)[0][1] * 2 <= len(values)


# ----------------------------------------------------------------------------------- union

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


def _source_column(template: str, values: Sequence[str]) -> str:
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


def _windows(rng: random.Random, n: int) -> list[list[int]]:
    """Runs of 2-4 consecutive tables (by slot value), one starting at each table but the last.

    Consecutive runs overlap, so one group of n pages gives about n - 1 union tasks; they share
    tables, so the split keeps them together (one component).
    """
    if n <= 2:
        return [list(range(n))]
    out: list[list[int]] = []
    for start in range(n - 1):
        size = rng.randint(2, min(MAX_UNION_TABLES, n - start))
        window = list(range(start, start + size))
        if not out or window[-1] > out[-1][-1]:
            out.append(window)
    return out


def union_drafts(group: UnionGroup, seed: int, min_rows: int, reasons: Counter) -> list[Draft]:
    rng = _rng(seed, "union", [t.uid for t in group.tables])
    drafts = []
    for chunk in _windows(rng, len(group.tables)):
        tables = [group.tables[i] for i in chunk]
        values = [group.values[i] for i in chunk]
        # Cap the size: drop the biggest-valued tables until the rows fit.
        while len(tables) > 2 and sum(len(t.rows) for t in tables) > MAX_UNION_ROWS:
            tables, values = tables[:-1], values[:-1]
        draft = _union_draft(group.template, group.section, tables, values, seed, min_rows, reasons)
        if draft is not None:
            drafts.append(draft)
    return drafts


def _union_draft(template: str, section_title: str, tables: list[Table], values: list[str], seed: int,
                 min_rows: int, reasons: Counter) -> Draft | None:
    uids = [t.uid for t in tables]
    rng = _rng(seed, "union", uids)
    header = tables[0].header
    width = len(header)
    all_rows, all_links, origin = [], [], []
    for t_i, table in enumerate(tables):
        for r, row in enumerate(table.rows):
            all_rows.append(list(row[:width]) + [""] * (width - len(row)))
            all_links.append(table.links[r] if r < len(table.links) else [])
            origin.append(t_i)
    if len(all_rows) < min_rows:
        reasons["union: fewer rows than min_rows"] += 1
        return None
    infos = analyse_columns(header, all_rows, all_links)
    # Key: the source column plus a column unique within each table.
    key_col = None
    for info in sorted((c for c in infos if c.usable), key=lambda c: (bool(_POOR_KEYS.match(c.name)), *key_preference(c))):
        keys = {(origin[i], preprocessed(all_rows[i][info.index], info.spec)) for i in range(len(all_rows))}
        if len(keys) == len(all_rows):
            key_col = info.index
            break
    if key_col is None:
        reasons["union: no unique key column"] += 1
        return None
    source_display = _source_column(template, values)
    names = {c.name for c in infos}
    if normalize_column_name(source_display) in names:
        source_display = "Source page"
        if normalize_column_name(source_display) in names:
            reasons["union: column name clash"] += 1
            return None
    cols = _pick_columns(rng, infos, [key_col], 1, 3)
    display = [source_display] + [infos[j].display for j in cols]
    src_values = [values[o] for o in origin]
    src_kind = column_type(src_values)
    src_kind = src_kind if src_kind in ("year",) else "text"
    specs = [column_spec(normalize_column_name(source_display), src_values, src_kind)]
    specs += [_renamed(infos[j].spec, infos[j].name) for j in cols]
    kinds = [src_kind] + [infos[j].kind for j in cols]
    rows = [[src_values[i]] + [all_rows[i][j] for j in cols] for i in range(len(all_rows))]
    sources = [[tables[origin[i]].url] * (1 + len(cols)) for i in range(len(all_rows))]
    key_pos = [0, 1 + cols.index(key_col)]
    section = Q.section_label(section_title)
    noun = Q.row_noun(infos[key_col].display)

    def make_query(display, specs, kinds, key, rows_n, rng=rng):
        intro = Q.union_intro(rng, template, values, section, display[0], noun)
        return Q.assemble(rng, intro, display, kinds, [display[k] for k in key])

    return Draft(
        "union", uids, display, specs, kinds, key_pos, rows, sources, make_query,
        [t.title for t in tables],
        {
            "tables": uids, "pages": [t.url for t in tables], "section": section_title,
            "template": template, "values": values,
        },
        rng,
    )


# ------------------------------------------------------------------------------- filtering


@dataclass
class Answerability:
    cells_checked: int = 0
    cells_failed: int = 0
    rows_dropped: int = 0
    columns_dropped: int = 0
    tasks_dropped: int = 0


def check_answerable(draft: Draft, pages: Pages, acc: Answerability, min_rows: int) -> Draft | None:
    """Drop rows (failing key cell) and columns (any other failing cell); None if too little is left."""
    n_cols = len(draft.display)
    bad_cols: set[int] = set()
    keep_rows = []
    for row, srcs in zip(draft.rows, draft.sources):
        ok_row = True
        for c in range(n_cols):
            acc.cells_checked += 1
            text = pages.norm(srcs[c])
            value = norm_str(row[c])
            if text is not None and value and value in text:
                continue
            acc.cells_failed += 1
            if c in draft.key:
                ok_row = False
            else:
                bad_cols.add(c)
        if ok_row:
            keep_rows.append((row, srcs))
    acc.rows_dropped += len(draft.rows) - len(keep_rows)
    acc.columns_dropped += len(bad_cols)
    keep_cols = [c for c in range(n_cols) if c not in bad_cols]
    if len(keep_rows) < min_rows or len(keep_cols) < 2:
        acc.tasks_dropped += 1
        return None
    if len(keep_cols) == n_cols and len(keep_rows) == len(draft.rows):
        return draft
    remap = {c: i for i, c in enumerate(keep_cols)}
    draft.display = [draft.display[c] for c in keep_cols]
    draft.specs = [draft.specs[c] for c in keep_cols]
    draft.kinds = [draft.kinds[c] for c in keep_cols]
    draft.key = [remap[c] for c in draft.key]
    draft.rows = [[row[c] for c in keep_cols] for row, _ in keep_rows]
    draft.sources = [[srcs[c] for c in keep_cols] for _, srcs in keep_rows]
    return draft


def finish(draft: Draft, seed: int) -> Task:
    """Stage 1's query over the (filtered) columns, and the Task record."""
    query = draft.make_query(draft.display, draft.specs, draft.kinds, draft.key, len(draft.rows))
    required = [s.name for s in draft.specs]
    gold = [dict(zip(required, row)) for row in draft.rows]
    provenance = {"source": "ottqa", "generator": GENERATOR, "version": VERSION, "seed": seed, **draft.provenance}
    return Task(
        id=_task_id(draft.kind, draft.uids),
        query=query,
        language="en",
        required_columns=required,
        unique_columns=[required[k] for k in draft.key],
        columns={s.name: s for s in draft.specs},
        gold=gold,
        display_columns=list(draft.display),
        kind=draft.kind,
        provenance=provenance,
    )


def _unique_keys(task: Task) -> bool:
    keys = {tuple(preprocessed(row[c], task.columns[c]) for c in task.unique_columns) for row in task.gold}
    return len(keys) == len(task.gold)


def gold_scores_one(task: Task) -> str | None:
    """None if the gold answer scores 1 and an empty answer 0, else the reason."""
    from wideseek_env.evaluation import score_answer

    gold = score_answer(task, task.gold_markdown())
    if gold.success != 1.0 or gold.item_f1 != 1.0:
        return "gold does not score 1"
    empty = score_answer(task, "")
    if empty.item_f1 != 0.0:
        return "empty answer does not score 0"
    return None


# ----------------------------------------------------------------------------- balance, split


def balance(tasks: list[tuple[Task, list[str]]], kind_mix: dict[str, float] | None, seed: int) -> tuple[list, dict]:
    """Keep the largest subset whose kind shares follow ``kind_mix`` (seeded sample per kind)."""
    by_kind: dict[str, list] = defaultdict(list)
    for item in tasks:
        by_kind[item[0].kind].append(item)
    dropped = {k: 0 for k in KINDS}
    if not kind_mix:
        return tasks, dropped
    present = {k: w for k, w in kind_mix.items() if w > 0 and by_kind.get(k)}
    if not present:
        return tasks, dropped
    total_w = sum(present.values())
    total = min(len(by_kind[k]) / (w / total_w) for k, w in present.items())
    kept = []
    for kind in KINDS:
        items = sorted(by_kind.get(kind, []), key=lambda it: it[0].id)
        if kind in present:
            quota = min(len(items), int(round(total * present[kind] / total_w)))
            rng = random.Random(f"{seed}|balance|{kind}")
            chosen = rng.sample(items, quota)
            dropped[kind] = len(items) - quota
            kept.extend(chosen)
        else:
            kept.extend(items)
    kept.sort(key=lambda it: it[0].id)
    return kept, dropped


def split(tasks: list[tuple[Task, list[str]]], test_fraction: float, seed: int) -> tuple[list[Task], list[Task], dict]:
    """Components of tasks sharing a table go whole to train or test."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for _, uids in tasks:
        root = find(uids[0])
        for uid in uids[1:]:
            other = find(uid)
            if other != root:
                parent[max(other, root)] = min(other, root)
                root = min(other, root)
    components: dict[str, list[Task]] = defaultdict(list)
    for task, uids in tasks:
        components[find(uids[0])].append(task)
    order = sorted(components)
    random.Random(f"{seed}|split").shuffle(order)
    target = test_fraction * len(tasks)
    test_roots: set[str] = set()
    n_test = 0
    for root in order:
        size = len(components[root])
        if n_test + size <= target + 0.5 or (n_test < target and n_test + size - target < target - n_test):
            test_roots.add(root)
            n_test += size
    train = [t for root in sorted(components) if root not in test_roots for t in components[root]]
    test = [t for root in sorted(components) if root in test_roots for t in components[root]]
    train.sort(key=lambda t: t.id)
    test.sort(key=lambda t: t.id)
    info = {
        "components": len(components),
        "test_components": len(test_roots),
        "train_tables": sum(1 for uid in parent if find(uid) not in test_roots),
        "test_tables": sum(1 for uid in parent if find(uid) in test_roots),
    }
    return train, test, info


# ------------------------------------------------------------------------------- the driver


def code_fingerprint() -> str:
    """Hash of the generator's own source files: changed code never reuses old outputs."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("generate.py", "attributes.py", "columns.py", "queries.py", "schema.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def corpus_fingerprint(manifest: dict) -> str:
    basis = {k: manifest.get(k) for k in ("format_version", "source", "fingerprint", "passage_words", "counts")}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _distribution(values: Sequence[int]) -> dict:
    if not values:
        return {"min": 0, "median": 0, "mean": 0.0, "max": 0, "histogram": {}}
    hist = Counter(values)
    return {
        "min": min(values),
        "median": statistics.median(values),
        "mean": round(sum(values) / len(values), 2),
        "max": max(values),
        "histogram": {str(k): hist[k] for k in sorted(hist)},
    }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _reusable(out_dir: Path, params: dict) -> dict | None:
    if (out_dir / INCOMPLETE_MARKER).exists():  # a killed generation's files: never trusted
        return None
    try:
        stats = json.loads((out_dir / STATS_FILE).read_text(encoding="utf-8"))
        if stats.get("params") != params:
            return None
        for name, info in stats["files"].items():
            if _sha256(out_dir / name) != info["sha256"]:
                return None
        return stats
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_jsonl(path: Path, tasks: Iterable[Task]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for task in tasks:
            f.write(json.dumps(task.to_json(), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def generate_tasks(
    corpus_dir: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    min_rows: int = 4,
    progress: bool = True,
    test_fraction: float = 0.2,
    kind_mix: dict[str, float] | None = None,
    verify: bool = True,
) -> dict:
    """Generate tasks from ``corpus_dir``'s tables into ``out_dir`` (see the module docstring).

    Args:
        corpus_dir: a corpus built by ``wideseek corpus build`` (its ``pages.sqlite`` holds tables).
        out_dir: where ``train.jsonl``, ``test.jsonl`` and ``stats.json`` go (created if missing).
        seed: every random choice derives from it; same seed, same corpus -> identical files.
        min_rows: fewest gold rows a task may have (enrich tasks need at least 5).
        progress: a tqdm bar on stderr.
        test_fraction: share of tasks (whole table components) in ``test.jsonl``.
        kind_mix: target share per kind (default 0.4 transcribe, 0.4 enrich, 0.2 union); ``{}``
            keeps every task.
        verify: score every gold table with the evaluator and drop any task whose gold does not
            score 1 (or whose empty answer does not score 0); the count is in the stats.

    Returns:
        The stats (also written to ``stats.json``) plus ``"reused"`` and ``"seconds"``.
    """
    started = time.perf_counter()
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    if min_rows < 1:
        raise ValueError(f"min_rows must be >= 1, got {min_rows}")
    mix = dict(DEFAULT_KIND_MIX) if kind_mix is None else dict(kind_mix)
    manifest = load_manifest(corpus_dir)
    params = {
        "generator": GENERATOR,
        "version": VERSION,
        "code_fingerprint": code_fingerprint(),
        "corpus_fingerprint": corpus_fingerprint(manifest),
        "seed": seed,
        "min_rows": min_rows,
        "test_fraction": test_fraction,
        "kind_mix": {k: mix[k] for k in sorted(mix)},
        "verify": verify,
    }
    reused = _reusable(out_dir, params)
    if reused is not None:
        return {**reused, "reused": True, "seconds": round(time.perf_counter() - started, 3)}
    out_dir.mkdir(parents=True, exist_ok=True)
    with _lock(out_dir):
        # Another process may have produced the same files while we waited for the lock.
        reused = _reusable(out_dir, params)
        if reused is not None:
            return {**reused, "reused": True, "seconds": round(time.perf_counter() - started, 3)}
        store = PageStore(corpus_dir / PAGES_FILE)
        try:
            stats = _generate(store, out_dir, params, seed, min_rows, test_fraction, mix, verify, progress)
        finally:
            store.close()
    return {**stats, "reused": False, "seconds": round(time.perf_counter() - started, 3)}


@contextlib.contextmanager
def _lock(out_dir: Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``out_dir/.lock`` (waits for a concurrent generation)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: generations of one directory must not overlap
        yield
        return
    fd = os.open(out_dir / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _generate(store, out_dir, params, seed, min_rows, test_fraction, mix, verify, progress) -> dict:
    pages = Pages(store)
    reasons: Counter = Counter()
    tables = list(store.iter_tables())
    drafts: list[Draft] = []
    bar = tqdm(total=len(tables) + 1, desc="tasks", unit="table", disable=not progress, file=sys.stderr)
    for table in tables:
        infos = analyse_columns(table.header, table.rows, table.links)
        for draft in (
            transcribe_draft(table, infos, seed, min_rows, reasons),
            enrich_draft(table, infos, pages, seed, min_rows, reasons),
        ):
            if draft is not None:
                drafts.append(draft)
        bar.update(1)
    groups = union_groups(tables)
    for group in groups:
        drafts.extend(union_drafts(group, seed, min_rows, reasons))
    bar.update(1)
    bar.close()
    candidates = Counter(d.kind for d in drafts)

    acc = Answerability()
    kept: list[tuple[Task, list[str]]] = []
    seen_ids: set[str] = set()
    check_bar = tqdm(drafts, desc="filter", unit="task", disable=not progress, file=sys.stderr)
    for draft in check_bar:
        kind = draft.kind
        draft = check_answerable(draft, pages, acc, min_rows if kind != "enrich" else max(min_rows, MIN_ENRICH_ROWS))
        if draft is None:
            reasons[f"{kind}: unanswerable (too few answerable rows or columns)"] += 1
            continue
        task = finish(draft, seed)
        if task.id in seen_ids:
            reasons[f"{task.kind}: duplicate id"] += 1
            continue
        if draft.titles and Q.mentions_title(task.query, draft.titles):
            reasons[f"{task.kind}: query names a source page"] += 1
            continue
        if not _unique_keys(task):
            reasons[f"{task.kind}: keys not unique after preprocessing"] += 1
            continue
        seen_ids.add(task.id)
        kept.append((task, draft.uids))
    answerable = Counter(t.kind for t, _ in kept)
    balanced, dropped_by_balance = balance(kept, mix, seed)
    if verify:
        # Last filter, on the balanced set only (scoring is the costliest check).
        verified = []
        for task, uids in tqdm(balanced, desc="verify", unit="task", disable=not progress, file=sys.stderr):
            why = gold_scores_one(task)
            if why:
                reasons[f"{task.kind}: {why}"] += 1
            else:
                verified.append((task, uids))
        balanced = verified
    train, test, split_info = split(balanced, test_fraction, seed)

    all_tasks = train + test
    enriched = [t for t in all_tasks if t.kind == "enrich"]
    stats = {
        "params": params,
        "corpus": {"fingerprint": params["corpus_fingerprint"], "tables": len(tables)},
        "candidates": {k: candidates.get(k, 0) for k in KINDS},
        "after_filters": {k: answerable.get(k, 0) for k in KINDS},
        "dropped_by_balance": dropped_by_balance,
        "tasks": {
            "total": len(all_tasks),
            "by_kind": {k: sum(1 for t in all_tasks if t.kind == k) for k in KINDS},
            "train": {k: sum(1 for t in train if t.kind == k) for k in KINDS} | {"total": len(train)},
            "test": {k: sum(1 for t in test if t.kind == k) for k in KINDS} | {"total": len(test)},
        },
        "enrich_modes": dict(sorted(Counter(t.provenance["mode"] for t in enriched).items())),
        "enrich_attributes": dict(
            sorted(Counter(a for t in enriched for a in t.provenance["attributes"]).items())
        ),
        "union_groups": len(groups),
        "rows": {k: _distribution([len(t.gold) for t in all_tasks if t.kind == k]) for k in KINDS},
        "columns": {
            k: _distribution([len(t.required_columns) for t in all_tasks if t.kind == k]) for k in KINDS
        },
        "answerability": {
            "cells_checked": acc.cells_checked,
            "cells_failed": acc.cells_failed,
            "rows_dropped": acc.rows_dropped,
            "columns_dropped": acc.columns_dropped,
            "tasks_dropped": acc.tasks_dropped,
        },
        "filtered": dict(sorted((k, v) for k, v in reasons.items() if v)),
        "split": split_info,
    }
    _write_outputs(out_dir, train, test, stats)
    return stats


def _write_outputs(out_dir: Path, train: list[Task], test: list[Task], stats: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for leftover in out_dir.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = out_dir / f".tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        _write_jsonl(tmp / TRAIN_FILE, train)
        _write_jsonl(tmp / TEST_FILE, test)
        stats["files"] = {
            TRAIN_FILE: {"tasks": len(train), "sha256": _sha256(tmp / TRAIN_FILE)},
            TEST_FILE: {"tasks": len(test), "sha256": _sha256(tmp / TEST_FILE)},
        }
        with open(tmp / STATS_FILE, "w", encoding="utf-8") as f:
            json.dump(stats, f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        # From the first replace until stats.json is in place, the directory may hold a new
        # train.jsonl beside an old test.jsonl: the marker (durable before anything moves) says so,
        # and the loader and _reusable refuse a directory that holds it.
        marker = out_dir / INCOMPLETE_MARKER
        with open(marker, "w", encoding="utf-8") as f:
            f.write("wideseek tasks generate was moving new task files into this directory; while "
                    "this file exists that did not finish: run it again\n")
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(out_dir)
        # stats.json last: it vouches (by count and hash) for the task files beside it.
        (out_dir / STATS_FILE).unlink(missing_ok=True)
        os.replace(tmp / TRAIN_FILE, out_dir / TRAIN_FILE)
        os.replace(tmp / TEST_FILE, out_dir / TEST_FILE)
        os.replace(tmp / STATS_FILE, out_dir / STATS_FILE)
        _fsync_dir(out_dir)  # the renames are durable before the marker goes
        marker.unlink()
        _fsync_dir(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    """Flush a directory's entries (renames, new and removed files) to disk, where the OS allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # not supported for directories here
        pass
    finally:
        os.close(fd)
