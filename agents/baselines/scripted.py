"""Baseline policies without an LLM: :class:`ScriptedBaseline` (honest) and :class:`OracleAgent` (tests only).

Both implement the policy interface of :mod:`agents.policy`: one ``act(requests)`` call per env step
for every acting agent (``AgentRequest(episode_id, agent_id, new_messages, tools, role)`` ->
``AgentResponse(text=...)``). They read the new chat messages of each agent (``infos[a]["messages"]``)
and answer with assistant text holding Hermes ``<tool_call>`` blocks (rendered with
:func:`wideseek_env.tools.parsing.render_tool_calls`), or with a final answer. :func:`run_episode`
drives one env episode with any such policy.

ScriptedBaseline
----------------
A rule-based agent team that never reads the gold table, the task object or ``task.provenance``:
only the query text, the tool results and the column names written in the query. Every agent of an
episode keeps its own state (a Python generator per agent, resumed with the agent's new messages).

- **Lead** (multi-agent mode; it has only ``call_subagent``): reads the query (:func:`parse_query`)
  and delegates:

  * *transcribe* ("the “S” table of the Wikipedia page “T”"): one subagent copies the table;
  * *union* ("“X Grand Prix” for X in 1999 and 2005"): one subagent per page;
  * *enrich* (entities plus attributes from their own pages): in "list" mode the query names the
    entities; in "set" mode a first subagent finds the table the query describes and reports its
    rows; then one subagent per entity looks the attributes up (``entities_per_subagent``
    entities each), at most ``k`` subagents per lead turn, where ``k`` is the smaller of
    ``max_subagents`` and the per-call limit the ``call_subagent`` schema states. The lead keeps its
    last turn for the answer, so with ``k`` subagents per turn it can look up about
    ``k * (lead turns - 1)`` entities: the width that more subagents buy. Entities it had no turn
    for are still listed (the query names them), with empty attribute cells;
  * anything else (WideSearch questions): one subagent researches the whole question.

  It then assembles one markdown table with exactly the columns the query names, in a
  ```` ```markdown ```` block.
- **Subagent**: parses its subtask (the formats the lead writes, see ``*_PROMPT``), searches,
  accesses pages (tables are read from the accessed page text: the corpus renders Wikipedia tables
  as markdown under ``## section`` headings), extracts attributes with simple patterns
  (:func:`extract_attribute`), and reports a small markdown table. A subtask in any other wording
  (a person playing the lead, see ``wideseek play``) gets a generic search-and-read report.
- **Single agent** (``EnvConfig.single_agent()``): does the same work itself with search + access,
  five queries or URLs per call, and answers before its turn limit or its context budget runs out
  (it counts its context with the env's default token estimate).

Honesty: the only task knowledge is what the query says. The attribute patterns are written here
independently of the task generator's extractors (they look for the phrases Wikipedia lead
sentences use: "(born 5 May 1947)", "founded in", "population of", ...).

OracleAgent
-----------
**FOR TESTS OF THE REWARD PATH ONLY: IT READS THE GOLD TABLE.** It answers every task at once with
the task's gold table and is no baseline: its score says that the plumbing from answer to reward
works, nothing about a policy.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Generator, Iterable, Mapping, Sequence

from agents.policy import AgentRequest, AgentResponse, Policy
from wideseek_env.evaluation.markdown import extract_table, render_table, split_row
from wideseek_env.tasks.schema import normalize_column_name
from wideseek_env.tools.parsing import final_answer_text, render_tool_calls

__all__ = [
    "ScriptedBaseline",
    "OracleAgent",
    "QueryPlan",
    "PageTable",
    "parse_query",
    "parse_columns",
    "tables_in_text",
    "extract_attribute",
    "render_answer",
    "run_episode",
]

# ----------------------------------------------------------------------------------------------
# Texts the lead writes to its subagents (an LLM subagent can read them too).

TRANSCRIBE_PROMPT = (
    "Transcribe a table. Open the Wikipedia page “{title}” and copy every row of its {table}. "
    "Report one markdown table with exactly these columns: {columns}."
)
FIND_TABLE_PROMPT = (
    "Find a table. Find the Wikipedia page about {topic} that has the {table} listing {noun}, and "
    "copy every row of that table. Report one markdown table with exactly these columns: {columns}."
)
ENTITY_PROMPT = (
    "Look up entities. For each of these {noun}{context}: {names}, find their own Wikipedia page and "
    "read from it: {attributes}. Report one markdown table with exactly these columns: {columns}; "
    "one row per entity, with the “{key}” values written exactly as given here."
)
GENERIC_PROMPT = (
    "Research the main task: search Wikipedia for it, read the most relevant pages and report what "
    "you find as one markdown table with the columns: {columns}."
)

_TURN_HINT = re.compile(r"Your next answer will be on turn (\d+); you MUST finish by turn (\d+)\.")
_SUBTASK_MARK = "Your current subtask is: "
_WIKI = "https://en.wikipedia.org/wiki/"

# ----------------------------------------------------------------------------------------------
# Small text helpers


def _norm(text: str) -> str:
    """Lower-case words of ``text`` separated by single spaces (punctuation dropped)."""
    return " ".join(re.findall(r"[0-9a-z]+", text.lower().replace("'s", "s")))


def _strip_paren(text: str) -> str:
    """``"Bob Babich (linebacker)"`` -> ``"Bob Babich"``; ``"Scott Dunlap (2)"`` -> ``"Scott Dunlap"``."""
    out = re.sub(r"\s*\([^()]*\)\s*", " ", text).strip()
    out = re.sub(r"[*†‡#^]+", "", out).strip()
    return out or text.strip()


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


def _title_url(title: str) -> str:
    return _WIKI + title.strip().replace(" ", "_")


def approx_tokens(text: str) -> int:
    """The env's default token estimate (UTF-8 bytes / 4)."""
    if not text:
        return 0
    n = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
    return (n + 3) // 4


# ----------------------------------------------------------------------------------------------
# Reading the query


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


#: Attribute columns an *enrich* query may ask for, by normalised column name -> attribute key.
ATTRIBUTE_COLUMNS = {
    "dateofbirth": "birth_date",
    "birthdate": "birth_date",
    "yearofbirth": "birth_year",
    "birthyear": "birth_year",
    "dateofdeath": "death_date",
    "deathdate": "death_date",
    "yearofdeath": "death_year",
    "deathyear": "death_year",
    "releaseyear": "release_year",
    "yearofrelease": "release_year",
    "publicationyear": "publication_year",
    "yearofpublication": "publication_year",
    "director": "director",
    "yearfounded": "founded",
    "foundingyear": "founded",
    "founded": "founded",
    "yearopened": "opened",
    "openingyear": "opened",
    "opened": "opened",
    "population": "population",
    "capacity": "capacity",
}


def attribute_key(column: str) -> str | None:
    return ATTRIBUTE_COLUMNS.get(normalize_column_name(column))


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
        (r"^For each of the following \d+ (.+?)(?: \((.*)\))?, find their (.+?): (.+)$", (1, 2, 4)),
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
    attrs = [c for c in columns if attribute_key(c)]
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


# ----------------------------------------------------------------------------------------------
# Reading tool results


@dataclass
class SearchHit:
    query: int
    rank: int
    title: str
    url: str
    snippet: str


def parse_search_result(text: str) -> list[SearchHit]:
    """The hits of a ``search`` tool result (any number of queries)."""
    hits: list[SearchHit] = []
    blocks = re.split(r"^### Query (\d+)[^\n]*\n", text, flags=re.MULTILINE)
    for i in range(1, len(blocks) - 1, 2):
        qno = int(blocks[i])
        body = blocks[i + 1]
        parts = re.split(r"^\[(\d+)\] (.*)\nURL: (\S+)\n", body, flags=re.MULTILINE)
        for j in range(1, len(parts) - 3, 4):
            hits.append(SearchHit(qno, int(parts[j]), parts[j + 1].strip(), parts[j + 2].strip(), parts[j + 3].strip()))
    return hits


@dataclass
class AccessedPage:
    url: str
    title: str
    content: str | None  # None: not found / error


def parse_access_result(text: str) -> list[AccessedPage]:
    """The pages of an ``access`` tool result, in order."""
    pages: list[AccessedPage] = []
    blocks = re.split(r"^### URL \d+(?:: (.*))?\n", text, flags=re.MULTILINE)
    for i in range(1, len(blocks) - 1, 2):
        url = (blocks[i] or "").strip()
        body = blocks[i + 1]
        m = re.match(r"Title: (.*)\n", body)
        if not m:
            pages.append(AccessedPage(url, "", None))
            continue
        title = m.group(1).strip()
        rest = body[m.end():]
        cm = re.search(r"^(?:Content[^\n]*|Summary[^\n]*):\n", rest, flags=re.MULTILINE)
        content = rest[cm.end():] if cm else rest
        pages.append(AccessedPage(url, title, content))
    return pages


@dataclass
class PageTable:
    """A table read from page text: the ``## section`` above it, its header and its rows."""

    section: str
    header: list[str]
    rows: list[list[str]]
    page: str = ""


def _is_sep(line: str) -> bool:
    cells = split_row(line)
    return bool(cells) and all(re.fullmatch(r":?-{2,}:?", c.strip() or "-") for c in cells)


def tables_in_text(text: str, page: str = "") -> list[PageTable]:
    """Markdown tables in page text (as the corpus renders Wikipedia tables), with their sections.

    A run of ``|`` lines whose second line is a separator starts a table; a run without a separator
    continues the last table of the same section (``access`` may show a long table in pieces); pieces
    with the same section and header are merged.
    """
    tables: list[PageTable] = []
    section = ""
    run: list[str] = []
    after_omission = False  # only "..." (and blank lines) since the last table line

    def close() -> None:
        nonlocal run
        if not run:
            return
        if len(run) >= 2 and _is_sep(run[1]):
            header = split_row(run[0])
            rows = [split_row(r) for r in run[2:] if not _is_sep(r)]
            last = tables[-1] if tables else None
            if after_omission and last is not None and last.section == section and last.header == header:
                last.rows.extend(rows)  # the same table, shown in pieces by ``access``
            else:
                tables.append(PageTable(section, header, rows, page))
        elif tables and tables[-1].section == section:
            tables[-1].rows.extend(split_row(r) for r in run if not _is_sep(r))
        run = []

    for line in text.split("\n"):
        s = line.strip()
        if s.startswith("|"):
            run.append(s)
            continue
        if run:
            close()
            after_omission = True
        if s in ("", "...", "…"):
            continue
        after_omission = False
        if s.startswith("## "):
            section = s[3:].strip()
    close()
    for t in tables:
        width = len(t.header)
        t.rows = [(r + [""] * width)[:width] for r in t.rows]
    return tables


def _section_key(text: str) -> str:
    return _norm(text.replace(" -- ", ": "))


def section_similarity(wanted: str | None, found: str) -> float:
    if not wanted:
        return 0.5
    a, b = _section_key(wanted), _section_key(found)
    if a == b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b).ratio()


def map_columns(wanted: Sequence[str], header: Sequence[str]) -> list[int | None]:
    """For every wanted column, the index of the header cell it names (or None)."""
    norm_header = [normalize_column_name(h) for h in header]
    out: list[int | None] = []
    for col in wanted:
        n = normalize_column_name(col)
        if n in norm_header:
            out.append(norm_header.index(n))
            continue
        close = difflib.get_close_matches(n, norm_header, n=1, cutoff=0.8)
        out.append(norm_header.index(close[0]) if close else None)
    return out


def best_table(tables: Sequence[PageTable], section: str | None, columns: Sequence[str]) -> PageTable | None:
    """The table that best fits a section label and the wanted columns (None if none has any column)."""
    best, best_score = None, 0.0
    for t in tables:
        cols = reconcile_columns(columns, t.header)
        mapped = map_columns(cols, t.header)
        hit = sum(m is not None for m in mapped) / max(1, len(mapped))
        if hit == 0:
            continue
        norm_header = {normalize_column_name(h) for h in t.header}
        exact = sum(normalize_column_name(c) in norm_header for c in cols) / max(1, len(cols))
        score = 2.0 * section_similarity(section, t.section) + hit + exact + min(len(t.rows), 100) / 10000
        if score > best_score:
            best, best_score = t, score
    return best


def project(table: PageTable, columns: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """The table's rows restricted to ``columns`` (merged fragments, missing columns empty)."""
    cols = reconcile_columns(columns, table.header)
    mapped = map_columns(cols, table.header)
    rows = [[(r[i] if i is not None and i < len(r) else "") for i in mapped] for r in table.rows]
    return cols, rows


# ----------------------------------------------------------------------------------------------
# Attribute patterns (read from an entity's own page)

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_MON_ABBR = "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
_DATE = rf"(?:(?:{_MONTHS}|(?:{_MON_ABBR})\.?) \d{{1,2}},? \d{{4}}|\d{{1,2}} (?:{_MONTHS}|(?:{_MON_ABBR})\.?),? \d{{4}})"
_YEAR = r"(?:1[0-9]\d\d|20[0-3]\d)"
_DY = rf"(?:{_DATE}|{_YEAR})"
_DASH = r"\s*(?:[-–—]|to)\s*"
_NAME = r"[A-Z](?:\.|[\w'’-]+)"


def _lead_parens(text: str) -> list[str]:
    """Parenthesised groups of the first sentence (where Wikipedia writes life dates)."""
    head = text[:600]
    first_verb = re.search(r"\s(?:is|was|are|were)\s", head)
    region = head[: first_verb.start()] if first_verb else head
    return re.findall(r"\(([^()]*(?:\([^()]*\)[^()]*)*)\)", region)


def _year_of(value: str) -> str | None:
    m = re.search(_YEAR, value)
    return m.group(0) if m else None


def _life_date(
    text: str, paren_patterns: Sequence[str], text_patterns: Sequence[str], window: int
) -> str | None:
    """A birth or death date: first from the lead's parentheses, then from the first ``window`` chars."""
    for par in _lead_parens(text):
        found = _first_match(paren_patterns, par)
        if found:
            return found
    return _first_match(text_patterns, text[:window])


def _birth(text: str) -> str | None:
    return _life_date(
        text,
        [rf"\bborn\s+(?:on\s+|in\s+)?({_DY})", rf"({_DY}){_DASH}{_DY}"],
        [rf"\bborn\s+(?:on\s+)?({_DATE})", rf"\bborn\s+(?:in\s+)?(?:[A-Z][\w ,.]*? in\s+)?({_YEAR})\b"],
        1500,
    )


def _death(text: str) -> str | None:
    return _life_date(
        text,
        [rf"{_DY}{_DASH}({_DY})", rf"\bdied\s+(?:on\s+|in\s+)?({_DY})"],
        [rf"\bdied\s+(?:on\s+)?({_DATE})", rf"\bdied\s+(?:in\s+)?(?:[A-Z][\w ,.]*? in\s+)?({_YEAR})\b"],
        3000,
    )


def _first_match(patterns: Sequence[str], text: str) -> str | None:
    for p in patterns:
        m = re.search(p, text)
        if m:
            return m.group(1)
    return None


def extract_attribute(key: str, text: str) -> str | None:
    """The value of attribute ``key`` (see ``ATTRIBUTE_COLUMNS``) in an entity page's text, as the
    page writes it, or None. Simple first-match patterns, no verification."""
    if not text:
        return None
    if key in ("birth_date", "birth_year"):
        v = _birth(text)
        if v is None:
            return None
        if key == "birth_year":
            return _year_of(v)
        return v if re.fullmatch(_DATE, v) else None
    if key in ("death_date", "death_year"):
        v = _death(text)
        if v is None:
            return None
        if key == "death_year":
            return _year_of(v)
        return v if re.fullmatch(_DATE, v) else None
    if key in ("release_year", "publication_year"):
        return _first_match(
            [
                rf"\b(?:is|was) (?:an?|the) ({_YEAR})\b",
                rf"\b(?:released|published|premiered|issued)\s+(?:in|on)\s+(?:[\w ,]{{0,20}}?)({_YEAR})\b",
                rf"\bin ({_YEAR})\b",
            ],
            text[:2000],
        )
    if key == "director":
        return _first_match([rf"\bdirected by ({_NAME}(?: {_NAME}){{1,3}})"], text[:3000])
    if key == "founded":
        return _first_match(
            [
                rf"\b(?:founded|established|formed|incorporated|created)\s+(?:in|on)\s+(?:[\w ,]{{0,25}}?)({_YEAR})\b",
                rf"\b(?:founded|established|formed)\b[^.]{{0,60}}?\b({_YEAR})\b",
            ],
            text[:4000],
        )
    if key == "opened":
        return _first_match(
            [
                rf"\bopened\s+(?:in|on)\s+(?:[\w ,]{{0,25}}?)({_YEAR})\b",
                rf"\b(?:opened|completed|built)\b[^.]{{0,60}}?\b({_YEAR})\b",
            ],
            text[:4000],
        )
    if key == "population":
        return _first_match(
            [
                r"\bpopulation (?:of|was|is|stood at)\s+(?:about |approximately |around |roughly |an estimated )?(\d{1,3}(?:,\d{3})+|\d+)",
                r"\b(\d{1,3}(?:,\d{3})+|\d{3,})\s+(?:inhabitants|residents|people)\b",
            ],
            text[:4000],
        )
    if key == "capacity":
        return _first_match(
            [
                r"\bcapacity of\s+(?:about |approximately |around )?(\d{1,3}(?:,\d{3})+|\d+)",
                r"\b(\d{1,3}(?:,\d{3})+|\d{3,})[- ](?:seat|seater|capacity)\b",
            ],
            text[:4000],
        )
    return None


def render_answer(columns: Sequence[str], rows: Sequence[Sequence[str]], note: str = "") -> str:
    """A final answer: an optional sentence, then the table in a ```markdown block."""
    table = render_table(list(columns), [list(r) for r in rows])
    head = f"{note}\n\n" if note else ""
    return f"{head}```markdown\n{table}\n```"


# ----------------------------------------------------------------------------------------------
# Agents: generators that yield assistant texts and receive the agent's next new messages


Calls = list[tuple[str, dict[str, Any]]]
_Gen = Generator[str, list, str]


class _AgentState:
    """One scripted agent of one episode."""

    def __init__(self, policy: "ScriptedBaseline", role: str, agent_id: str, messages: list[dict], tools: list[dict]):
        self.policy = policy
        self.role = role
        self.agent_id = agent_id
        self.tools = tools
        self.tool_names = {t.get("function", {}).get("name") for t in tools if isinstance(t, Mapping)}
        self.turn = 1  # the number of the next answer
        self.max_turns = policy.default_max_turns(role)
        self.tokens = approx_tokens(json.dumps(tools, ensure_ascii=False)) if tools else 0
        self.done = False
        user = ""
        for m in messages:
            if m.get("role") == "user" and not user:
                user = m.get("content") or ""
        self._see(messages)
        user = _TURN_HINT.sub("", user).strip()
        if _SUBTASK_MARK in user:
            self.task, self.subtask = user.rsplit(_SUBTASK_MARK, 1)
            self.task, self.subtask = self.task.strip(), self.subtask.strip()
        else:
            self.task, self.subtask = user, None
        self.max_per_call = self._per_call_limit()
        self.gen: _Gen | None = None

    def _per_call_limit(self) -> int:
        for t in self.tools:
            fn = t.get("function", {}) if isinstance(t, Mapping) else {}
            if fn.get("name") in ("call_subagent", "create_sub_agents"):
                m = re.search(r"[Aa]t most (\d+)", fn.get("description", ""))
                if m:
                    return int(m.group(1))
        return 10

    def _see(self, messages: Sequence[Mapping[str, Any]]) -> None:
        for m in messages:
            content = m.get("content") or ""
            self.tokens += approx_tokens(content) + 4
            hint = _TURN_HINT.search(content)
            if hint:
                self.turn, self.max_turns = int(hint.group(1)), int(hint.group(2))

    # -- budget -------------------------------------------------------------------------------

    def turns_left(self) -> int:
        """Turns after the next one (0: the next answer must be final)."""
        return self.max_turns - self.turn

    def context_left(self) -> int:
        return self.policy.context_tokens - self.tokens

    # -- driving ------------------------------------------------------------------------------

    def step(self, new_messages: list[dict]) -> str:
        if self.done:
            return ""
        try:
            if self.gen is None:
                self.gen = self.run()
                text = next(self.gen)
            else:
                self._see(new_messages)
                text = self.gen.send(new_messages)
        except StopIteration as stop:
            text = stop.value if isinstance(stop.value, str) else ""
            self.done = True
        except Exception as exc:  # noqa: BLE001 - never crash the episode
            text = self.fallback_answer(f"(the scripted agent failed: {type(exc).__name__})")
            self.done = True
        self.turn += 1
        self.tokens += approx_tokens(text) + 4
        return text

    def call(self, calls: Calls) -> Generator[str, list, list[str]]:
        """Make tool calls (one assistant message); returns the tool result texts, in order."""
        messages = yield render_tool_calls(calls)
        return [_TURN_HINT.sub("", m.get("content") or "").rstrip() for m in messages if m.get("role") == "tool"]

    def run(self) -> _Gen:
        if self.role == "lead":
            return (yield from self.run_lead())
        return (yield from self.run_worker())

    def fallback_answer(self, note: str) -> str:
        if self.role == "subagent":
            return f"I could not complete the subtask. {note}"
        cols = parse_columns(self.task) or ["answer"]
        return render_answer(cols, [], note)

    # -- the lead -----------------------------------------------------------------------------

    def delegate(self, prompts: list[str]) -> Generator[str, list, list[str | None]]:
        """Run subtasks, ``k`` per turn, while turns remain (the last turn is kept for the answer).
        Returns one report per prompt (None: not run or failed)."""
        k = max(1, min(self.max_per_call, self.policy.max_subagents or self.max_per_call))
        reports: list[str | None] = [None] * len(prompts)
        i = 0
        while i < len(prompts) and self.turns_left() >= 1:
            batch = prompts[i:i + k]
            results = yield from self.call([("call_subagent", {"sub_agents": [{"prompt": p} for p in batch]})])
            blocks = _report_blocks(results[0] if results else "")
            for j, rep in enumerate(blocks[: len(batch)]):
                if rep and not rep.startswith("The subagent failed"):
                    reports[i + j] = rep
            i += len(batch)
        return reports

    def run_lead(self) -> _Gen:
        plan = parse_query(self.task)
        cols = plan.columns or ["answer"]
        if plan.kind == "transcribe":
            prompt = TRANSCRIBE_PROMPT.format(
                title=plan.title, table=_table_phrase(plan.section), columns=", ".join(cols)
            )
            reports = yield from self.delegate([prompt])
            return _answer_from_reports(cols, reports)
        if plan.kind == "union":
            src = plan.source_column or cols[0]
            page_cols = [c for c in cols if c != src]
            prompts = [
                TRANSCRIBE_PROMPT.format(
                    title=fill_x(plan.template, v) or v,
                    table=_table_phrase(fill_x(plan.section, v)), columns=", ".join(page_cols),
                )
                for v in plan.values
            ]
            reports = yield from self.delegate(prompts)
            headers: list[str] = []
            tables = []
            for v, rep in zip(plan.values, reports):
                t = extract_table(rep) if rep else None
                if t is not None and t.rows:
                    headers.extend(t.header)
                    tables.append((v, t))
            final_cols = reconcile_columns(cols, headers)
            rows = []
            for v, t in tables:
                mapped = map_columns(final_cols, t.header)
                for r in t.rows:
                    rows.append([
                        v if normalize_column_name(c) == normalize_column_name(src)
                        else (r[m] if m is not None and m < len(r) else "")
                        for c, m in zip(final_cols, mapped)
                    ])
            return render_answer(final_cols, rows)
        if plan.kind == "enrich":
            return (yield from self.lead_enrich(plan))
        reports = yield from self.delegate([GENERIC_PROMPT.format(columns=", ".join(cols))])
        return _answer_from_reports(cols, reports)

    def lead_enrich(self, plan: QueryPlan) -> _Gen:
        key = enrich_key(plan)
        cols = plan.columns
        attrs = [c for c in cols if attribute_key(c)]
        entities = list(plan.entities)
        table_values: dict[str, dict[str, str]] = {}
        if plan.mode == "set" or not entities:
            find_cols = [key] + list(plan.table_columns)
            prompt = FIND_TABLE_PROMPT.format(
                topic=plan.topic or "the subject of the main task", table=_table_phrase(plan.section),
                noun=plan.noun or "the entities", columns=", ".join(find_cols),
            )
            reports = yield from self.delegate([prompt])
            t = extract_table(reports[0]) if reports[0] else None
            if t is not None:
                mapped = map_columns(find_cols, t.header)
                for r in t.rows:
                    vals = [(r[m] if m is not None and m < len(r) else "") for m in mapped]
                    if vals[0] and vals[0] not in table_values:
                        entities.append(vals[0])
                        table_values[vals[0]] = dict(zip(find_cols, vals))
        per = max(1, self.policy.entities_per_subagent)
        groups = [entities[i:i + per] for i in range(0, len(entities), per)]
        context = f" ({plan.context})" if plan.context else ""
        prompts = [
            ENTITY_PROMPT.format(
                noun=plan.noun or "entities", context=context, names="; ".join(f"“{n}”" for n in g),
                attributes=", ".join(attrs), columns=", ".join([key] + attrs), key=key,
            )
            for g in groups
        ]
        reports: list[str | None] = []
        if prompts and attrs:
            reports = yield from self.delegate(prompts)
        found: dict[str, dict[str, str]] = {}
        for rep in reports:
            t = extract_table(rep) if rep else None
            if t is None:
                continue
            mapped = map_columns([key] + attrs, t.header)
            for r in t.rows:
                vals = [(r[m] if m is not None and m < len(r) else "") for m in mapped]
                if vals[0]:
                    found[vals[0]] = dict(zip([key] + attrs, vals))
        rows = []
        for name in entities:
            vals = {**table_values.get(name, {}), **{k: v for k, v in found.get(name, {}).items() if v}}
            rows.append([name if c == key else vals.get(c, "") for c in cols])
        return render_answer(cols, rows)

    # -- workers (subagents and the single agent) ---------------------------------------------

    def run_worker(self) -> _Gen:
        spec = self.subtask if self.subtask is not None else None
        if spec is None:  # the single agent: the query itself
            return (yield from self.single_agent())
        m = re.match(r"Transcribe a table\. Open the Wikipedia page “(.+?)” and copy every row of its (.+?)\. "
                     r"Report one markdown table with exactly these columns: (.+)\.$", spec, re.S)
        if m:
            section = _section_from_phrase(m.group(2))
            cols = _split_cols(m.group(3))
            header, rows = yield from self.transcribe(m.group(1), section, cols)
            return render_answer(header, rows) if header else f"I could not find the table on “{m.group(1)}”."
        m = re.match(r"Find a table\. Find the Wikipedia page about (.+?) that has the (.+?) listing (.+?), and copy "
                     r"every row of that table\. Report one markdown table with exactly these columns: (.+)\.$", spec, re.S)
        if m:
            cols = _split_cols(m.group(4))
            header, rows = yield from self.find_table(m.group(1), _section_from_phrase(m.group(2)), cols)
            return render_answer(header, rows) if header else "I could not find the table."
        m = re.match(r"Look up entities\. For each of these (.+?): (“.+”), find their own Wikipedia page and read "
                     r"from it: (.+?)\. Report one markdown table with exactly these columns: (.+?); one row per "
                     r"entity, with the “(.+?)” values", spec, re.S)
        if m:
            names = re.findall(r"“([^”]+)”", m.group(2))
            key, attrs = m.group(5), _split_cols(m.group(3))
            values = yield from self.lookup(names, attrs, context=m.group(1))
            rows = [[n] + [values.get(n, {}).get(a, "") for a in attrs] for n in names]
            return render_answer([key] + attrs, rows)
        cols = parse_columns(spec) or parse_columns(self.task)
        return (yield from self.generic(spec, cols, report=True))

    def single_agent(self) -> _Gen:
        plan = parse_query(self.task)
        cols = plan.columns or ["answer"]
        if plan.kind == "transcribe":
            header, rows = yield from self.transcribe(plan.title or "", plan.section, cols)
            return render_answer(header or cols, rows)
        if plan.kind == "union":
            src = plan.source_column or cols[0]
            page_cols = [c for c in cols if c != src]
            titles = [(v, fill_x(plan.template, v) or v) for v in plan.values]
            pages = yield from self.read_pages([t for _, t in titles], f"{plan.section or ''} table")
            headers: list[str] = []
            found = []
            for (v, _), page in zip(titles, pages):
                if page is None:
                    continue
                t = best_table(tables_in_text(page.content or ""), fill_x(plan.section, v), page_cols)
                if t is not None:
                    headers.extend(t.header)
                    found.append((v, t))
            final_cols = reconcile_columns(cols, headers)
            rows = []
            for v, t in found:
                tcols, trows = project(t, [c for c in final_cols if c != src])
                for r in trows:
                    d = dict(zip(tcols, r))
                    rows.append([v if c == src else d.get(c, "") for c in final_cols])
            return render_answer(final_cols, rows)
        if plan.kind == "enrich":
            key = enrich_key(plan)
            attrs = [c for c in plan.columns if attribute_key(c)]
            entities = list(plan.entities)
            table_values: dict[str, dict[str, str]] = {}
            if plan.mode == "set" or not entities:
                find_cols = [key] + list(plan.table_columns)
                header, trows = yield from self.find_table(plan.topic or self.task[:200], plan.section, find_cols)
                for r in trows:
                    if r and r[0] and r[0] not in table_values:
                        entities.append(r[0])
                        table_values[r[0]] = dict(zip(find_cols, r))
            values = yield from self.lookup(entities, attrs, context=plan.context or "")
            rows = []
            for name in entities:
                vals = {**table_values.get(name, {}), **{k: v for k, v in values.get(name, {}).items() if v}}
                rows.append([name if c == key else vals.get(c, "") for c in plan.columns])
            return render_answer(plan.columns, rows)
        return (yield from self.generic(self.task, cols, report=False))

    # building blocks; each returns what it found so far when the budget runs out

    def can_call(self, cost_tokens: int) -> bool:
        return self.turns_left() >= 1 and self.context_left() - cost_tokens > self.policy.context_margin

    def read_pages(self, titles: list[str], info: str) -> Generator[str, list, list[AccessedPage | None]]:
        """Access pages by title (5 per call); a title not found is searched for once."""
        out: list[AccessedPage | None] = [None] * len(titles)
        todo = list(range(len(titles)))
        for i in range(0, len(todo), 5):
            chunk = todo[i:i + 5]
            if not self.can_call(self.policy.page_cost * len(chunk)):
                break
            res = yield from self.call([("access", {"urls": [{"url": _title_url(titles[j]), "info_to_extract": info} for j in chunk]})])
            pages = parse_access_result(res[0]) if res else []
            for j, page in zip(chunk, pages):
                if page.content is not None:
                    out[j] = page
        missing = [j for j in range(len(titles)) if out[j] is None]
        if missing and self.can_call(self.policy.search_cost * min(5, len(missing))):
            missing = missing[:5]
            res = yield from self.call([("search", {"queries": [{"query": titles[j], "count": 3} for j in missing]})])
            hits = parse_search_result(res[0]) if res else []
            urls = {}
            for q, j in enumerate(missing, 1):
                cands = [h for h in hits if h.query == q]
                best = _best_hit(titles[j], cands, "")
                if best is not None:
                    urls[j] = best.url
            if urls and self.can_call(self.policy.page_cost * len(urls)):
                res = yield from self.call([("access", {"urls": [{"url": u, "info_to_extract": info} for u in urls.values()]})])
                pages = parse_access_result(res[0]) if res else []
                for j, page in zip(urls, pages):
                    if page.content is not None:
                        out[j] = page
        return out

    def transcribe(self, title: str, section: str | None, cols: list[str]) -> Generator[str, list, tuple[list[str], list[list[str]]]]:
        info = f"{section or ''} table: {', '.join(cols)}".strip()
        pages = yield from self.read_pages([title], info)
        page = pages[0]
        if page is None:
            return [], []
        t = best_table(tables_in_text(page.content or "", page.url), section, cols)
        if t is None:
            return [], []
        return project(t, cols)

    def find_table(self, topic: str, section: str | None, cols: list[str]) -> Generator[str, list, tuple[list[str], list[list[str]]]]:
        queries = [f"{topic} {section or ''}".strip(), topic]
        if not self.can_call(self.policy.search_cost * 2):
            return [], []
        res = yield from self.call([("search", {"queries": [{"query": q, "count": 5} for q in dict.fromkeys(queries)]})])
        hits = parse_search_result(res[0]) if res else []
        urls = list(dict.fromkeys(h.url for h in hits))[:5]
        if not urls or not self.can_call(self.policy.page_cost * len(urls)):
            return [], []
        info = f"{section or ''} {' '.join(cols)}".strip()
        res = yield from self.call([("access", {"urls": [{"url": u, "info_to_extract": info} for u in urls]})])
        tables: list[PageTable] = []
        topic_words = set(_norm(topic).split())
        for page in parse_access_result(res[0]) if res else []:
            if page.content is None:
                continue
            for t in tables_in_text(page.content, page.title):
                tables.append(t)
        best, best_score = None, 0.0
        for t in tables:
            mapped = map_columns(reconcile_columns(cols, t.header), t.header)
            hit = sum(m is not None for m in mapped) / max(1, len(mapped))
            if hit == 0 or mapped[0] is None:
                continue
            overlap = len(topic_words & set(_norm(t.page).split())) / max(1, len(topic_words))
            score = 2.0 * section_similarity(section, t.section) + hit + overlap
            if score > best_score:
                best, best_score = t, score
        if best is None:
            return [], []
        return project(best, cols)

    def lookup(self, names: list[str], attr_cols: list[str], context: str) -> Generator[str, list, dict[str, dict[str, str]]]:
        """Find each entity's page (search) and read its attributes (access), 5 entities per call."""
        values: dict[str, dict[str, str]] = {}
        keys = {c: attribute_key(c) for c in attr_cols}
        info = ", ".join(attr_cols)
        ctx_words = set(_norm(context + " " + (self.task[:500] if self.task else "")).split())
        for i in range(0, len(names), 5):
            chunk = names[i:i + 5]
            if not self.can_call(self.policy.search_cost * len(chunk) + self.policy.page_cost * len(chunk)):
                break
            res = yield from self.call([("search", {"queries": [{"query": _strip_paren(n), "count": 3} for n in chunk]})])
            hits = parse_search_result(res[0]) if res else []
            chosen: list[tuple[str, SearchHit]] = []
            for q, name in enumerate(chunk, 1):
                best = _best_hit(name, [h for h in hits if h.query == q], ctx_words)
                if best is not None:
                    chosen.append((name, best))
                    vals = {c: extract_attribute(k, best.snippet) for c, k in keys.items() if k}
                    values[name] = {c: v for c, v in vals.items() if v}
            if not chosen or not self.can_call(self.policy.page_cost * len(chosen)):
                continue
            res = yield from self.call([("access", {"urls": [{"url": h.url, "info_to_extract": info} for _, h in chosen]})])
            pages = parse_access_result(res[0]) if res else []
            for (name, _), page in zip(chosen, pages):
                if page.content is None:
                    continue
                vals = {c: extract_attribute(k, page.content) for c, k in keys.items() if k}
                got = values.setdefault(name, {})
                for c, v in vals.items():
                    if v:
                        got[c] = v
        return values

    def generic(self, question: str, cols: list[str], report: bool) -> _Gen:
        """Search the question's words, read the top pages, report the best-fitting table."""
        text = _TURN_HINT.sub("", question)
        text = re.split(r"(?:Please organize|Please output|Present the results|Output a single|Don't ask me|The column|不要问我|表格中的列名)", text)[0]
        queries = [q for q in dict.fromkeys([text.strip()[:200], " ".join(cols[:4])]) if q.strip()]
        if not queries or not self.can_call(self.policy.search_cost * len(queries)):
            return render_answer(cols, []) if not report else "I found nothing."
        res = yield from self.call([("search", {"queries": [{"query": q, "count": 3} for q in queries]})])
        hits = parse_search_result(res[0]) if res else []
        urls = list(dict.fromkeys(h.url for h in hits))[:3]
        pages: list[AccessedPage] = []
        if urls and self.can_call(self.policy.page_cost * len(urls)):
            res = yield from self.call([("access", {"urls": [{"url": u, "info_to_extract": text[:300]} for u in urls]})])
            pages = [p for p in (parse_access_result(res[0]) if res else []) if p.content is not None]
        tables = [t for p in pages for t in tables_in_text(p.content or "", p.title)]
        t = best_table(tables, None, cols) if cols else None
        if t is not None:
            header, rows = project(t, cols)
            return render_answer(header, rows)
        if report:
            lines = ["I found these pages but no table with the requested columns:"]
            for p in pages:
                lines.append(f"- {p.title} ({p.url}): {(p.content or '')[:500].strip()}")
            for h in hits[:5]:
                lines.append(f"- search hit: {h.title} ({h.url})")
            return "\n".join(lines)
        return render_answer(cols, [])


def _table_phrase(section: str | None) -> str:
    return f"“{section}” table" if section else "table"


def _section_from_phrase(phrase: str) -> str | None:
    m = re.search(r"“(.+)”", phrase)
    return m.group(1) if m else None


def _split_cols(text: str) -> list[str]:
    return [c.strip() for c in text.split(", ") if c.strip()]


def _report_blocks(text: str) -> list[str]:
    """The ``# Result`` texts of a call_subagent tool message, in order."""
    parts = re.split(r"^# Subtask \d+\n", text, flags=re.MULTILINE)
    out = []
    for p in parts[1:]:
        if "\n# Result\n" in p:
            out.append(p.split("\n# Result\n", 1)[1].strip())
        else:
            out.append("")
    return out


def _answer_from_reports(cols: list[str], reports: Sequence[str | None]) -> str:
    headers: list[str] = []
    tables = []
    for rep in reports:
        t = extract_table(rep) if rep else None
        if t is not None:
            headers.extend(t.header)
            tables.append(t)
    final_cols = reconcile_columns(cols, headers)
    rows = []
    for t in tables:
        mapped = map_columns(final_cols, t.header)
        for r in t.rows:
            rows.append([(r[m] if m is not None and m < len(r) else "") for m in mapped])
    return render_answer(final_cols, rows)


def _best_hit(name: str, hits: Sequence[SearchHit], context_words: Iterable[str]) -> SearchHit | None:
    """The search hit most likely to be the entity's own page."""
    if not hits:
        return None
    target = _norm(_strip_paren(name))
    full = _norm(name)
    ctx = set(context_words) if not isinstance(context_words, str) else set(_norm(context_words).split())
    best, best_score = None, -1.0
    for h in hits:
        title = _norm(_strip_paren(h.title))
        if title == target or _norm(h.title) == full:
            level = 3.0
        elif target and (f" {target} " in f" {title} " or f" {title} " in f" {target} "):
            level = 2.0
        elif target and target.split()[-1] in title.split():
            level = 1.0
        else:
            level = 0.0
        words = set(_norm(h.snippet[:600]).split())
        overlap = len(words & ctx) / (1 + len(ctx)) if ctx else 0.0
        score = level + overlap - 0.01 * h.rank
        if score > best_score:
            best, best_score = h, score
    return best


# ----------------------------------------------------------------------------------------------
# The policies


class ScriptedBaseline(Policy):
    """The honest rule-based baseline (see the module docstring).

    ``max_subagents``: subagents the lead starts per turn (None: the limit the ``call_subagent`` schema
    states, 10 by default); ``entities_per_subagent``: entities one lookup subagent handles;
    ``context_tokens`` / ``context_margin``: the context budget a worker assumes and the tokens it
    keeps free (it stops calling tools when a call might not fit); ``page_cost`` / ``search_cost``:
    the tokens it expects one accessed page / one search query to add; ``*_max_turns``: turn limits
    assumed until the env's turn hint says otherwise.
    """

    def __init__(
        self,
        max_subagents: int | None = None,
        *,
        entities_per_subagent: int = 1,
        context_tokens: int = 32768,
        context_margin: int = 1024,
        page_cost: int = 2500,
        search_cost: int = 600,
        lead_max_turns: int = 10,
        subagent_max_turns: int = 20,
        single_max_turns: int = 50,
    ) -> None:
        if max_subagents is not None and max_subagents < 1:
            raise ValueError(f"max_subagents must be None or >= 1, got {max_subagents}")
        self.max_subagents = max_subagents
        self.entities_per_subagent = max(1, int(entities_per_subagent))
        self.context_tokens = context_tokens
        self.context_margin = context_margin
        self.page_cost = page_cost
        self.search_cost = search_cost
        self._max_turns = {"lead": lead_max_turns, "subagent": subagent_max_turns, "agent": single_max_turns}
        self._episodes: dict[str, dict[str, _AgentState]] = {}

    def default_max_turns(self, role: str) -> int:
        return self._max_turns.get(role, self._max_turns["agent"])

    @staticmethod
    def _role(req: AgentRequest) -> str:
        role = getattr(req, "role", None)
        if role in ("lead", "subagent", "agent"):
            return role
        names = {t.get("function", {}).get("name") for t in (req.tools or []) if isinstance(t, Mapping)}
        if "call_subagent" in names and "search" not in names:
            return "lead"
        text = " ".join(str(m.get("content") or "") for m in req.new_messages)
        return "subagent" if _SUBTASK_MARK in text else "agent"

    def act_one(self, req: AgentRequest) -> str:
        agents = self._episodes.setdefault(req.episode_id, {})
        state = agents.get(req.agent_id)
        messages = [dict(m) for m in (req.new_messages or [])]
        if state is None:
            state = _AgentState(self, self._role(req), req.agent_id, messages, list(req.tools or []))
            agents[req.agent_id] = state
            return state.step([])
        return state.step(messages)

    def act(self, requests: Sequence[AgentRequest]) -> list[AgentResponse]:
        return [AgentResponse(text=self.act_one(r)) for r in requests]

    def reset_episode(self, episode_id: str) -> None:
        self._episodes.pop(episode_id, None)

    def end_episode(self, episode_id: str) -> dict:
        self._episodes.pop(episode_id, None)
        return {}


class OracleAgent(Policy):
    """**TESTS OF THE REWARD PATH ONLY — THIS AGENT READS THE GOLD TABLE.**

    Given the task list, it finds the task whose query the lead (or single agent) receives and
    answers at once with the gold table rendered as markdown (no tool calls). Its score checks that
    a perfect answer reaches the reward (item F1 1.0); it measures nothing about a policy and must
    never be reported as a baseline. Subagents (never started by it) would answer with an empty text.
    """

    def __init__(self, tasks: Iterable[Any]):
        self._by_query: dict[str, Any] = {}
        for t in tasks:
            self._by_query[_TURN_HINT.sub("", str(t.query)).strip()] = t

    def _task_for(self, text: str) -> Any | None:
        text = _TURN_HINT.sub("", text).strip()
        if text in self._by_query:
            return self._by_query[text]
        for q, t in self._by_query.items():  # the env may have cut a very long query
            if q.startswith(text) or text.startswith(q):
                return t
        return None

    @staticmethod
    def gold_answer(task: Any) -> str:
        cols = list(task.display_columns or task.required_columns)
        rows = [[row.get(c, "") for c in task.required_columns] for row in task.gold]
        return render_answer(cols, rows)

    def act(self, requests: Sequence[AgentRequest]) -> list[AgentResponse]:
        out = []
        for req in requests:
            user = next((m.get("content") or "" for m in req.new_messages if m.get("role") == "user"), "")
            task = self._task_for(user) if user and _SUBTASK_MARK not in user else None
            out.append(AgentResponse(text=self.gold_answer(task) if task is not None else ""))
        return out


# ----------------------------------------------------------------------------------------------
# Running an episode


def run_episode(
    env: Any,
    policy: Policy,
    *,
    seed: int | None = None,
    task_id: str | None = None,
    episode_id: str | None = None,
    max_steps: int = 100_000,
) -> dict[str, Any]:
    """Play one episode of a :class:`~wideseek_env.env.WideSeekEnv` with ``policy`` (one ``act`` call
    per env step for all acting agents) and return the env's final metrics (``env.last_metrics``)."""
    options = {"task_id": task_id} if task_id is not None else None
    obs, infos = env.reset(seed=seed, options=options)
    eid = episode_id or f"{getattr(env.task, 'id', 'episode')}"
    policy.reset_episode(eid)
    steps = 0
    try:
        while env.agents and steps < max_steps:
            reqs = [
                AgentRequest(eid, a, infos[a]["messages"], infos[a]["tools"], infos[a]["role"])
                for a in env.agents
                if infos[a]["acting"]
            ]
            responses = policy.act(reqs)
            actions = {r.agent_id: resp.text for r, resp in zip(reqs, responses)}
            obs, _, _, _, infos = env.step(actions)
            steps += 1
    finally:
        policy.end_episode(eid)
    return dict(env.last_metrics or {})
