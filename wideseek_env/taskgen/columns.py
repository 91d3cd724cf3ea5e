"""Column typing, metric choice and key choice for generated tasks.

Every column of a generated task is typed from *all* of its gold cells (WideSearch's pipelines,
REFERENCE.md section 2):

- ``date``: every cell is a full date with a month name or ISO digits ("29 April 1947",
  "April 29, 1947", "1947-04-29") -> ``norm_date`` + ``date_near`` with tolerance 0 days: the corpus
  states the exact day, so only the exact day counts (WideSearch's 31 days would accept a wrong
  month).
- ``year``: every cell is a four-digit year (1000-2099) -> ``extract_number`` + ``number_near`` with
  tolerance 0 (exact): a year one off is wrong.
- ``number``: every cell is a plain number ("12", "1,234", "-3.5", "45%") -> ``extract_number`` +
  ``number_near``. Tolerance 0 (exact) for ranks, counts, scores and other integers below 1,000 and
  for every decimal (times, points); 0.05 (WideSearch's usual relative tolerance) for integers of
  1,000 and more (populations, capacities, attendances), which other sources round.
- ``text``: anything else -> ``norm_str`` + ``exact_match`` (case, spaces and ``*`` ignored).

Cells that say nothing ("", "-", "—", "N/A", "TBA", "?") count as empty; a column with any empty
gold cell is not used (a task never has an empty gold cell). Text columns with long cells (prose,
lists of guests) are not used either: an exact match of a sentence is not a fair test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from wideseek_env.table.dates import parse_date
from wideseek_env.table.preprocess import extract_number, norm_str
from wideseek_env.table.schema import ColumnSpec, normalize_column_name

EMPTY_VALUES = frozenset(
    {
        "", "-", "--", "—", "–", "?", "n/a", "na", "n.a.", "tba", "tbd", "none", "unknown", "nil",
        ".", "not listed", "not known", "n.k.", "nk", "unlisted", "vacant", "×", "x", "...", "…",
    }  # fmt: skip
)
MAX_TEXT_MEAN = 45  # mean characters of a usable text column
MAX_TEXT_CELL = 100  # longest usable text cell
LARGE_NUMBER = 1000  # integers from here on get a 5% tolerance

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?"
)
_FULL_DATE = re.compile(
    rf"^(?:{_MONTH} \d{{1,2}},? \d{{4}}|\d{{1,2}} {_MONTH},? \d{{4}}|\d{{4}}-\d{{2}}-\d{{2}})$"
)
_YEAR = re.compile(r"^(?:1\d{3}|20\d{2})$")
_NUMBER = re.compile(r"^[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?$")
_INTEGER = re.compile(r"^[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)$")


def is_empty(value: str) -> bool:
    return value.strip().lower() in EMPTY_VALUES


def cell_type(value: str) -> str:
    """``"date"``, ``"year"``, ``"number"`` or ``"text"`` for one non-empty cell."""
    v = value.strip()
    if _YEAR.match(v):
        return "year"
    if _NUMBER.match(v):
        return "number"
    if _FULL_DATE.match(v) and parse_date(v) is not None:
        return "date"
    return "text"


def column_type(values: Sequence[str]) -> str:
    """The type shared by every cell of a column (``"text"`` when they differ)."""
    types = {cell_type(v) for v in values}
    if len(types) == 1:
        return types.pop()
    if types == {"year", "number"}:
        return "number"
    return "text"


def number_tolerance(values: Sequence[str]) -> float:
    """0.05 for large integers (>= 1,000), else 0 (exact); see the module docstring."""
    if all(_INTEGER.match(v.strip()) for v in values):
        magnitudes = [abs(float(extract_number(v))) for v in values]
        if min(magnitudes) >= LARGE_NUMBER:
            return 0.05
    return 0.0


def column_spec(name: str, values: Sequence[str], kind: str | None = None) -> ColumnSpec:
    """The WideSearch preprocess + metric for a column of gold ``values`` (already non-empty)."""
    kind = kind or column_type(values)
    if kind == "date":
        return ColumnSpec(name, "norm_date", "date_near", tolerance=0.0)
    if kind == "year":
        return ColumnSpec(name, "extract_number", "number_near", tolerance=0.0)
    if kind == "number":
        return ColumnSpec(name, "extract_number", "number_near", tolerance=number_tolerance(values))
    return ColumnSpec(name, "norm_str", "exact_match")


def preprocessed(value: str, spec: ColumnSpec) -> str:
    """The value as the scorer compares it (for key uniqueness checks)."""
    if spec.preprocess == "extract_number":
        return extract_number(value)
    if spec.preprocess == "norm_date":
        parsed = parse_date(value)
        return parsed.isoformat() if parsed else norm_str(value)
    return norm_str(value)


def usable_text(values: Sequence[str]) -> bool:
    """Short enough to be compared exactly (see MAX_TEXT_MEAN / MAX_TEXT_CELL)."""
    if not values:
        return False
    lengths = [len(v) for v in values]
    return max(lengths) <= MAX_TEXT_CELL and sum(lengths) / len(lengths) <= MAX_TEXT_MEAN


@dataclass
class ColumnInfo:
    """What the generator knows about one table column."""

    index: int
    display: str
    name: str  # normalised
    kind: str
    usable: bool  # no empty cell, usable text, a header name
    unique: bool  # every preprocessed value distinct
    linked: float  # share of cells that carry exactly one link
    spec: ColumnSpec | None = None  # set when usable


_KEY_NAMES = (
    "name", "player", "athlete", "title", "team", "club", "film", "song", "album", "country",
    "nation", "driver", "school", "station", "episode", "artist", "event", "venue", "stadium",
    "candidate", "member", "district", "city", "town", "constituency", "winner", "skater",
    "gymnast", "swimmer", "boxer", "wrestler", "horse", "ship", "building", "airport", "game",
    "county", "municipality", "church", "site", "show", "program", "programme", "company",
    "university", "college", "institution", "book", "novel", "character", "celebrity", "person",
    "recipient", "office", "position", "party", "state", "region", "location", "season", "year",
    "date", "race", "round", "series", "tournament", "competition", "award", "category",
)  # fmt: skip
_POOR_KEYS = re.compile(r"^(?:#|no\.?|rank|pos\.?|position|place|pick|pick#|overall|rk|number|s/?n)$")


def analyse_columns(header: Sequence[str], rows: Sequence[Sequence[str]], links=None) -> list[ColumnInfo]:
    """Type every column of a table; columns with a blank or repeated (normalised) name are unusable."""
    seen: set[str] = set()
    infos = []
    for j, display in enumerate(header):
        values = [row[j] if j < len(row) else "" for row in rows]
        name = normalize_column_name(display)
        named = bool(name) and name not in seen and len(display) <= 60
        seen.add(name)
        empty = any(is_empty(v) for v in values)
        kind = column_type(values) if not empty else "text"
        usable = named and not empty and (kind != "text" or usable_text(values))
        spec = column_spec(name or "x", values, kind) if usable else None
        unique = usable and len({preprocessed(v, spec) for v in values}) == len(values)
        linked = 0.0
        if links:
            linked = sum(
                1 for r in range(len(rows)) if r < len(links) and j < len(links[r]) and len(links[r][j]) == 1
            ) / max(1, len(rows))
        infos.append(ColumnInfo(j, display, name, kind, usable, unique, linked, spec))
    return infos


def key_preference(info: ColumnInfo) -> tuple:
    """Sort key: smaller is a better key column (entity-like text first, ranks and numbers last)."""
    poor = bool(_POOR_KEYS.match(info.name))
    named = any(word in info.name for word in _KEY_NAMES)
    return (poor, info.kind != "text", -round(info.linked, 1), not named, info.index)


def choose_key(infos: Sequence[ColumnInfo], rows: Sequence[Sequence[str]]) -> list[int] | None:
    """Column indices of the key: the best unique column, else the best unique pair, else None."""
    usable = sorted((c for c in infos if c.usable), key=key_preference)
    for info in usable:
        if info.unique and not _POOR_KEYS.match(info.name):
            return [info.index]
    for a_pos, a in enumerate(usable):
        for b in usable[a_pos + 1 :]:
            if _POOR_KEYS.match(a.name) and _POOR_KEYS.match(b.name):
                continue
            pairs = {(preprocessed(r[a.index], a.spec), preprocessed(r[b.index], b.spec)) for r in rows}
            if len(pairs) == len(rows):
                return sorted([a.index, b.index])
    for info in usable:
        if info.unique:
            return [info.index]
    return None
