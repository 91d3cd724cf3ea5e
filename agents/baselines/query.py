"""Reading a task query: its answer columns and what kind of work it asks for.

Contract: :func:`parse_query` turns a query's text into a :class:`QueryPlan` (task kind plus the
page, section, entities, ... the query names) and never raises (an unreadable query is "generic");
:func:`parse_columns` lists the answer columns a query names, :func:`reconcile_columns` merges
column-name fragments again once a table header shows them. Only the query text is read: never the
gold table, the task object or ``task.provenance``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from agents.baselines.attributes import attribute_key
from wideseek_env.table.markdown import split_row
from wideseek_env.table.schema import normalize_column_name


def _split_list(text: str) -> list[str]:
    """``"a, b, and c"`` / ``"a and b"`` / ``"a"`` -> items."""
    text = text.strip().rstrip(".")
    if ", " in text:
        parts = [p.strip() for p in text.split(", ")]
        if parts and parts[-1].startswith("and "):
            parts[-1] = parts[-1][4:]
        if len(parts) >= 2 and " and " in parts[-1] and not parts[-1].startswith("and "):
            pass
        return [p for p in parts if p]
    if " and " in text:
        return [p.strip() for p in text.split(" and ") if p.strip()]
    return [text] if text else []


def _and_splits(text: str) -> list[str]:
    """Every value a list ``"A and B"`` may hold when items can contain " and " themselves
    (``"Trinidad and Tobago and Jamaica"``): all contiguous runs of the " and "-separated parts."""
    text = text.strip().rstrip(".")
    if ", " in text:
        parts = [p.strip() for p in text.split(", ")]
        if parts[-1].startswith("and "):
            parts[-1] = parts[-1][4:]
        return [p for p in parts if p]
    pieces = [p.strip() for p in text.split(" and ")]
    if len(pieces) <= 2:
        return [p for p in pieces if p]
    out: list[str] = []
    for i in range(len(pieces)):
        for j in range(i + 1, len(pieces) + 1):
            if (i, j) != (0, len(pieces)):
                out.append(" and ".join(pieces[i:j]))
    return list(dict.fromkeys(out))


def fill_x(template: str | None, value: str) -> str | None:
    """``"X Hungarian Grand Prix"`` -> ``"1999 Hungarian Grand Prix"`` (X as a whole word)."""
    if template is None:
        return None
    return re.sub(r"\bX\b", lambda _: value, template)



_COLUMN_TRIGGERS = [
    re.compile(r"with the following columns:\s*\n(.+)"),
    re.compile(r"with the columns: (.+)"),
    re.compile(r"whose columns are, in this order: (.+)"),
    re.compile(r"with exactly these columns: (.+)"),
    re.compile(r"column names are as follows(?: in sequence)?[:：]\s*(.*)"),
    re.compile(r"column headers? (?:should be|are)[:：]\s*(.*)"),
    re.compile(r"following columns[:：]\s*(.*)"),
    re.compile(r"columns?(?: names?)?(?: are| should be)?[:：]\s*(.*)", re.IGNORECASE),
    re.compile(r"列名依次为[:：]?\s*(.*)"),
    re.compile(r"列名(?:为|是)[:：]?\s*(.*)"),
]


def parse_columns(query: str) -> list[str]:
    """The answer columns a query names, in order ([] if none are found).

    Understands the generator's phrasings ("... with the columns: A, B.") and the usual WideSearch
    ones ("The column names are as follows in sequence: ...", "列名依次为：..."). Names are split at
    commas (``,``, ``，``, ``、``); a name that itself holds a comma ("City, State") comes out as
    two fragments, which :func:`reconcile_columns` merges again when a table header shows it.
    """
    for pattern in _COLUMN_TRIGGERS:
        m = pattern.search(query)
        if not m:
            continue
        text = m.group(1).strip()
        if not text:  # the list is on the next non-empty line
            rest = query[m.end():].lstrip("\n")
            text = rest.split("\n", 1)[0].strip() if rest else ""
        text = text.split("\n", 1)[0].strip()
        text = re.sub(r"(?:不要问我|Don't ask me).*$", "", text).strip()
        text = re.sub(r"[.。;；]\s*$", "", text).strip()
        parts = [p.strip().strip("*`\"“”") for p in re.split(r",\s*|，\s*|、\s*", text)]
        parts = [p for p in parts if p]
        if parts:
            return parts
    m = re.search(r"^\s*\|(.+)\|\s*$", query, re.MULTILINE)  # a header line written into the query
    if m:
        return [c for c in split_row("|" + m.group(1) + "|") if c]
    return []


def reconcile_columns(fragments: Sequence[str], headers: Iterable[str]) -> list[str]:
    """Merge adjacent fragments whose comma-joined name is one of ``headers`` (normalised)."""
    known = {normalize_column_name(h) for h in headers}
    out: list[str] = []
    i = 0
    frags = list(fragments)
    while i < len(frags):
        merged = False
        for j in range(min(len(frags), i + 4), i + 1, -1):
            name = ", ".join(frags[i:j])
            if normalize_column_name(name) in known:
                out.append(name)
                i = j
                merged = True
                break
        if not merged:
            out.append(frags[i])
            i += 1
    return out



@dataclass
class QueryPlan:
    """What :func:`parse_query` read from a query."""

    kind: str  # "transcribe" | "union" | "enrich" | "generic"
    columns: list[str]  # answer columns as fragments (see parse_columns)
    title: str | None = None  # transcribe: the page
    section: str | None = None  # the table's section label
    noun: str | None = None  # what the rows are ("players")
    template: str | None = None  # union: page title with X
    values: list[str] = field(default_factory=list)  # union: the values of X
    source_column: str | None = None  # union: the column holding X
    mode: str | None = None  # enrich: "list" | "set"
    entities: list[str] = field(default_factory=list)  # enrich list mode
    context: str | None = None  # enrich: "listed under ..." context
    topic: str | None = None  # enrich set mode: what the table is about
    table_columns: list[str] = field(default_factory=list)  # enrich: columns copied from the list


_Q = r"“([^”]+)”"


def parse_query(query: str) -> QueryPlan:
    """Read the task kind and its parameters from a query's text (never raises)."""
    try:
        return _parse_query(query)
    except Exception:  # noqa: BLE001 - a policy must not crash on odd queries
        return QueryPlan("generic", parse_columns(query) if isinstance(query, str) else [])


def _parse_query(query: str) -> QueryPlan:
    columns = parse_columns(query)
    first = query.strip().split("\n", 1)[0]
    section_m = re.search(_Q + r" table", first)
    section = section_m.group(1) if section_m else None

    # union: a page title written with a placeholder X
    tmpl = re.search(r"Wikipedia page “([^”]*\bX\b[^”]*)”", first) or re.search(r"“([^”]*\bX\b[^”]*)”", first)
    if tmpl:
        values_text = None
        for pat in (r"For X in (.+?), take ", r" for X = (.+?)\. From each page", r"where X is each of (.+?), in a single table"):
            m = re.search(pat, first)
            if m:
                values_text = m.group(1)
                break
        if values_text:
            src = re.search(r"column " + _Q, first) or re.search(r"a " + _Q + " column", first)
            noun = re.search(r"all (?:the |their )?(\w[\w ]*?) (?:of|into) ", first)
            return QueryPlan(
                "union", columns, section=section, template=tmpl.group(1),
                values=_and_splits(values_text), source_column=src.group(1) if src else None,
                noun=noun.group(1) if noun else None,
            )

    # transcribe: the page is named
    m = re.search(r"Wikipedia (?:article|page) " + _Q, first) or re.search(
        r"From Wikipedia's article on (.+?), please list", first
    )
    if m:
        noun = re.search(r"(?:list|compile) (?:all|every one of) (?:the |its )?(\w[\w ]*?) (?:in|listed|\(|\.)", first)
        return QueryPlan("transcribe", columns, title=m.group(1), section=section,
                         noun=noun.group(1) if noun else None)

    # enrich, list mode: the entities are named
    list_patterns = (
        (r"^For each of the following (?:\d+ )?(.+?)(?: \((.*)\))?, find their (.+?): (.+)$", (1, 2, 4)),
        (r"^Here is a list of (.+?)(?: \((.*)\))?: (.+)\. For each of them, look up their (.+?)\.$", (1, 2, 3)),
        (r"^I have \d+ (.+?)(?: \((.*)\))? and need their (.+?)\. The .+? are: (.+)$", (1, 2, 4)),
    )
    for pat, (gn, gc, ge) in list_patterns:
        m = re.search(pat, first)
        if m:
            names = m.group(ge).strip()
            if names.endswith("."):
                names = names[:-1]
            entities = [n.strip() for n in names.split("; ") if n.strip()]
            return _enrich_plan(query, columns, "list", m.group(gn), m.group(gc), entities, None)

    # enrich, set mode: the table is described
    set_patterns = (
        r"^For every one of the (?P<noun>.+?) listed (?:under “(?P<section>[^”]+)” )?for (?P<topic>.+?), find their ",
        r"^Consider all the (?P<noun>.+?) listed (?:under “(?P<section>[^”]+)” )?for (?P<topic>.+?)\. For each one",
        r"^I'm researching (?P<topic>.+?)\. Take every one of the (?P<noun>.+?) (?:in its “(?P<section>[^”]+)” list|it lists) and give me",
    )
    for pat in set_patterns:
        m = re.search(pat, first)
        if m:
            plan = _enrich_plan(query, columns, "set", m.group("noun"), None, [], m.group("section"))
            plan.topic = m.group("topic")
            return plan

    return QueryPlan("generic", columns, section=section)


def _enrich_plan(query, columns, mode, noun, context, entities, section) -> QueryPlan:
    first = query.strip().split("\n", 1)[0]
    rest = [c for c in columns if not attribute_key(c)]
    table_cols: list[str] = []
    m = re.search(r"Also give their (.+?) as that list states it\.", first)
    if m:
        named = _split_list(m.group(1))
        table_cols = [c for c in named if c in rest]
    key_frags = [c for c in rest if c not in table_cols]
    key = ", ".join(key_frags) if key_frags else (rest[0] if rest else "Name")
    # rebuild the column list with the key merged back (a key such as "City, State")
    merged: list[str] = []
    for c in columns:
        if c in key_frags:
            if key not in merged:
                merged.append(key)
        else:
            merged.append(c)
    sec = section
    if sec is None and context:
        sm = re.search(_Q, context)
        sec = sm.group(1) if sm else None
    return QueryPlan("enrich", merged, section=sec, noun=noun, mode=mode, entities=entities,
                     context=context, table_columns=table_cols)


def enrich_key(plan: QueryPlan) -> str:
    """The key column of an enrich plan: the first column that is neither an attribute nor copied."""
    for c in plan.columns:
        if not attribute_key(c) and c not in plan.table_columns:
            return c
    return plan.columns[0] if plan.columns else "Name"

