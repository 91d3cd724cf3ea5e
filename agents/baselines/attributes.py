"""Entity attributes: which answer columns name one, and reading its value from the entity's own page.

Contract: :data:`ATTRIBUTE_COLUMNS` maps a normalised column name ("Date of birth" -> "dateofbirth")
to an attribute key; :func:`extract_attribute` returns that attribute's value as the page text
writes it, or None. Simple first-match patterns, no verification.

Honesty: the patterns are written here independently of the task generator's extractors (they look
for the phrases Wikipedia lead sentences use: "(born 5 May 1947)", "founded in", "population of",
...).
"""

from __future__ import annotations

import re
from typing import Sequence

from wideseek_env.table.schema import normalize_column_name

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
    if key in _PAGE_PATTERNS:
        patterns, window = _PAGE_PATTERNS[key]
        return _first_match(patterns, text[:window])
    return None


_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)"
_BIG_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d{3,})"
_RELEASE = (
    [
        rf"\b(?:is|was) (?:an?|the) ({_YEAR})\b",
        rf"\b(?:released|published|premiered|issued)\s+(?:in|on)\s+(?:[\w ,]{{0,20}}?)({_YEAR})\b",
        rf"\bin ({_YEAR})\b",
    ],
    2000,
)
#: attribute key -> (patterns tried in order, the first group of the first match is the value; how many
#: characters from the start of the page are searched).
_PAGE_PATTERNS: dict[str, tuple[list[str], int]] = {
    "release_year": _RELEASE,
    "publication_year": _RELEASE,
    "director": ([rf"\bdirected by ({_NAME}(?: {_NAME}){{1,3}})"], 3000),
    "founded": (
        [
            rf"\b(?:founded|established|formed|incorporated|created)\s+(?:in|on)\s+(?:[\w ,]{{0,25}}?)({_YEAR})\b",
            rf"\b(?:founded|established|formed)\b[^.]{{0,60}}?\b({_YEAR})\b",
        ],
        4000,
    ),
    "opened": (
        [
            rf"\bopened\s+(?:in|on)\s+(?:[\w ,]{{0,25}}?)({_YEAR})\b",
            rf"\b(?:opened|completed|built)\b[^.]{{0,60}}?\b({_YEAR})\b",
        ],
        4000,
    ),
    "population": (
        [
            r"\bpopulation (?:of|was|is|stood at)\s+(?:about |approximately |around |roughly |an estimated )?"
            + _NUMBER,
            r"\b" + _BIG_NUMBER + r"\s+(?:inhabitants|residents|people)\b",
        ],
        4000,
    ),
    "capacity": (
        [
            r"\bcapacity of\s+(?:about |approximately |around )?" + _NUMBER,
            r"\b" + _BIG_NUMBER + r"[- ](?:seat|seater|capacity)\b",
        ],
        4000,
    ),
}

