"""The records every tier builds: a :class:`Draft` (a task before filtering) with per-cell provenance.

A draft's gold table is ``rows`` (strings, one per column); ``cells[r][c]`` says where cell (r, c)
comes from, as a :class:`Cell`:

- ``Cell(url, passage)``: the value is copied from ``passage``, a piece of the stored text of page
  ``url`` that the tools show (a table row as the page renders it, ``"| 1 | Rhadi ... | 43:33 |"``,
  or the sentence of an entity's article that states an attribute);
- ``Cell(url, passage, derived=...)``: the value is computed from passages (a count of rows, a
  page's slot value): ``derived`` names the rule and ``passage`` is one of the rows it reads (the
  rest are in the task's ``provenance["rows"]``).

:func:`finish` turns a filtered draft into a :class:`~wideseek_env.table.schema.Task` whose
``provenance["passages"]`` lists the distinct ``[url, passage]`` (or ``[url, passage, derived]``)
and ``provenance["cells"][r][c]`` indexes it (:func:`cell_sources` expands it): the provenance of
every gold cell, in text the ``access`` tool shows.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from wideseek_env.corpus.store import PageStore
from wideseek_env.corpus.types import Table
from wideseek_env.table.preprocess import norm_str
from wideseek_env.taskgen.attributes import extract_attributes
from wideseek_env.table.schema import ColumnSpec, Task

GENERATOR = "wideseek_env.taskgen"
VERSION = 2
TIER_OF_KIND = {
    "transcribe": 0, "enrich": 0, "union": 0,
    "described": 1, "filtered": 2, "wide": 3,
    "count": 4, "join": 4, "top": 4, "entity": 4,
}  # fmt: skip


@dataclass(frozen=True)
class Cell:
    """Where one gold value comes from: a passage of a page (see the module docstring)."""

    url: str
    passage: str
    derived: str | None = None

    def to_json(self) -> list[str]:
        return [self.url, self.passage] + ([self.derived] if self.derived else [])


@dataclass
class Draft:
    """A task before filtering.

    ``query`` builds the query from the finished columns (display names, data kinds, key
    positions); ``titles`` are page titles the query must not contain; ``group`` names the union
    group (template and section) the task draws on, for the split.
    """

    kind: str
    uids: list[str]
    display: list[str]
    specs: list[ColumnSpec]
    kinds: list[str]
    key: list[int]
    rows: list[list[str]]
    cells: list[list[Cell]]
    query: Callable[[list[str], list[str], list[int]], str]
    titles: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    group: str | None = None
    min_rows: int = 4

    @property
    def tier(self) -> int:
        return TIER_OF_KIND[self.kind]


class Pages:
    """Page texts, their ``norm_str`` forms and extracted attributes, cached."""

    def __init__(self, store: PageStore) -> None:
        self.store = store
        self._text: dict[str, str | None] = {}
        self._norm: dict[str, str | None] = {}
        self._attrs: dict[str, dict[str, str] | None] = {}

    def text(self, url: str) -> str | None:
        if url not in self._text:
            page = self.store.get(url)
            self._text[url] = (page.title + "\n" + page.text) if page else None
        return self._text[url]

    def norm(self, url: str) -> str | None:
        """``norm_str`` of the page's title and text (None: no such page)."""
        if url not in self._norm:
            text = self.text(url)
            self._norm[url] = norm_str(text) if text is not None else None
        return self._norm[url]

    def attributes(self, url: str) -> dict[str, str] | None:
        """The attributes :mod:`.attributes` finds in the page (None: no such page)."""
        if url not in self._attrs:
            page = self.store.get(url)
            self._attrs[url] = extract_attributes(page.text) if page else None
        return self._attrs[url]

    def attribute_cell(self, url: str, value: str) -> Cell:
        """The cell of an attribute value: the sentence of the page's text that states it."""
        page = self.store.get(url)
        text = " ".join((page.text if page else "").split())
        at = text.find(value)
        if at < 0:
            return Cell(url, text[:300])
        dot = text.rfind(". ", 0, at)
        start = max(dot + 2 if dot >= 0 else 0, at - 300)
        end = text.find(". ", at)
        end = len(text) if end < 0 or end - at > 300 else end + 1
        return Cell(url, text[start:end].strip())


def row_line(table: Table, r: int) -> str:
    """Row ``r`` of ``table`` as the stored page text renders it (a markdown table line)."""
    return "| " + " | ".join(table.rows[r]) + " |"


def row_cell(table: Table, r: int) -> Cell:
    return Cell(table.url, row_line(table, r))


def rng_for(seed: int, kind: str, uids: Sequence[str], extra: str = "") -> random.Random:
    return random.Random(f"{seed}|{kind}|{'|'.join(uids)}|{extra}")


def task_id(kind: str, uids: Sequence[str], extra: str = "") -> str:
    digest = hashlib.sha1(("|".join([kind, *uids, extra])).encode("utf-8")).hexdigest()[:12]
    return f"ottqa-{kind}-{digest}"


_FOOTNOTE = re.compile(
    r"(?:\s*(?:\*+|†+|‡+|§|¶|#|\^|\+|\[\s*[\w\s]{1,3}\s*\]|\(\s*\d{1,2}\s*\)|\(\s*[a-z]\s*\)))+$"
)


def clean_key(value: str) -> str:
    """A key cell without footnote residue: "Chamique Holdsclaw * (2)" -> "Chamique Holdsclaw"."""
    cleaned = _FOOTNOTE.sub("", value).strip()
    return cleaned or value.strip()


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


def entity_link(table: Table, r: int, j: int) -> str | None:
    """The one article that cell (r, j) links to and names, or None."""
    links = table.links[r][j] if r < len(table.links) and j < len(table.links[r]) else []
    cell = table.rows[r][j] if j < len(table.rows[r]) else ""
    if len(links) != 1 or links[0] == table.url or not names_entity(cell, links[0]):
        return None
    return links[0]


def _cell_provenance(cells: list[list[Cell]]) -> dict:
    """``passages``: the distinct ``[url, passage(, derived)]``; ``cells[r][c]``: an index into it."""
    index: dict[Cell, int] = {}
    rows = [[index.setdefault(cell, len(index)) for cell in row] for row in cells]
    return {"passages": [cell.to_json() for cell in index], "cells": rows}


def cell_sources(provenance: dict) -> list[list[list[str]]]:
    """Per gold row, per column, the ``[url, passage(, derived)]`` a task's provenance records."""
    passages = provenance.get("passages", [])
    return [[passages[i] for i in row] for row in provenance.get("cells", [])]


def finish(draft: Draft, seed: int) -> Task:
    """The Task record of a filtered draft: the query over its final columns, per-cell provenance."""
    query = draft.query(draft.display, draft.kinds, draft.key)
    required = [s.name for s in draft.specs]
    gold = [dict(zip(required, row)) for row in draft.rows]
    provenance = {
        "source": "ottqa", "generator": GENERATOR, "version": VERSION, "seed": seed, "tier": draft.tier,
        **draft.provenance,
        **_cell_provenance(draft.cells),
    }  # fmt: skip
    if draft.group:
        provenance["group"] = draft.group
    extra = provenance.get("variant", "")
    return Task(
        id=task_id(draft.kind, draft.uids, str(extra)),
        query=query,
        language="en",
        required_columns=required,
        unique_columns=[required[k] for k in draft.key],
        columns={s.name: s for s in draft.specs},
        gold=gold,
        display_columns=list(draft.display),
        kind=draft.kind,
        provenance=provenance,
        tier=draft.tier,
    )
