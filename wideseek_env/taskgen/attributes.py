"""Attributes that only an entity's own page holds, for *enrich* tasks.

Every extractor reads the lead text of one linked article (the stored page text, which for OTT-QA
is the article's lead section) and returns the value exactly as the text writes it, or ``None``. The
patterns are deliberately narrow: a wrong gold value is worse than a missing attribute, so an
extractor gives up whenever the text is ambiguous.

- ``birth_date`` / ``death_date``: the first parenthesis of the first sentence, before its verb
  ("Jim Ryun (born April 29, 1947) is ...", "William Hayward (23 October 1867 – 7 February 1932)
  was ..."). Full dates only (day, month name, year); "c.", "circa", "fl.", "or" and "?" reject.
- ``birth_year`` / ``death_year``: the same parenthesis, also accepting bare years ("(born 1976)",
  "(1805–1867)").
- ``release_year``: the first sentence says "<Title> is a 1981 [adjectives] film|album|song|single|
  novel|..." (the year right after "is a/an"); the noun decides the column name.
- ``director``: "directed by <2-4 capitalised words>" in the first two sentences, once, not followed
  by another name (" and X", ", X"), for films only.
- ``founded``: "founded|established|formed in|on [day] [month] <year>" — exactly one distinct year
  among all such phrases of the text.
- ``opened``: "opened in|on [day] [month] <year>" — exactly one distinct year in the text.
- ``population``: "population of|was [about] <n>" — exactly one such phrase, n >= 100; a phrase
  whose sentence names a metropolitan/urban area or agglomeration before it is not the entity's own
  figure ("the Billings Metropolitan Area, which has a population of 171,677") and is skipped.
- ``capacity``: "capacity of <n>" — exactly one such phrase, n >= 100; a past "had a capacity of"
  (a figure before a rebuild) is skipped.

Values are checked again later against the stored page text (answerability), and date values must
parse with the scorer's own date parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from wideseek_env.table.dates import parse_date

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December"
)
_DATE = rf"(?:(?:{_MONTHS}) \d{{1,2}}, \d{{4}}|\d{{1,2}} (?:{_MONTHS}),? \d{{4}})"
_YEAR = r"(?:1[0-9]\d\d|20[0-2]\d)"
_DATE_OR_YEAR = rf"(?:{_DATE}|{_YEAR})"
_DASH = r"\s*[-–—]\s*"

_FIRST_VERB = re.compile(r"\s(?:is|was|are|were)\s")
_BORN = re.compile(rf"\bborn\s+(?:on\s+)?({_DATE_OR_YEAR})(?![\d\w])")
_SPAN = re.compile(rf"(?:^|[;,]\s*)({_DATE_OR_YEAR}){_DASH}({_DATE_OR_YEAR})\s*$")
_VAGUE = re.compile(r"\b(?:c\.|ca\.|circa|fl\.|or|before|after|about|died)\b|\?")

_RELEASE = re.compile(
    rf"^[^.]{{0,200}}?\s(?:is|was)\s(?:an?|the)\s({_YEAR})\s(?:[\w'’-]+\s){{0,5}}?"
    r"(film|movie|documentary|album|song|single|EP|novel|video game|musical|opera|television film)\b"
)
_NAME_WORD = r"[A-Z](?:\.|[\w'’-]+)"
_DIRECTOR = re.compile(
    rf"\bdirected by ({_NAME_WORD}(?: {_NAME_WORD}){{1,3}})(?![\w'’-])(?!\s*(?:,|&|and)\s+[A-Z])"
)
_FOUNDED = re.compile(
    rf"\b(?:founded|established|formed)\s+(?:in|on)\s+(?:(?:\d{{1,2}}\s+)?(?:{_MONTHS})\s+"
    rf"(?:\d{{1,2}},?\s+)?)?({_YEAR})\b"
)
_OPENED = re.compile(
    rf"\bopened\s+(?:in|on)\s+(?:(?:\d{{1,2}}\s+)?(?:{_MONTHS})\s+(?:\d{{1,2}},?\s+)?)?({_YEAR})\b"
)
_POPULATION = re.compile(
    r"\bpopulation (?:of|was)\s+(?:about\s+|approximately\s+|roughly\s+|around\s+)?(\d{1,3}(?:,\d{3})+|\d+)(?![\d.,]\d)"
)
# "metropolitan" alone also names an entity's own type ("a metropolitan borough"): not a skip.
_METRO = re.compile(
    r"\b(?:metropolitan (?:area|region|statistical|population)|metro area|urban area|agglomeration)",
    re.IGNORECASE,
)
_PAST = re.compile(r"\bhad\s+(?:a|an)\s+(?:[\w-]+\s+)?$")
_CAPACITY = re.compile(r"\bcapacity of\s+(?:about\s+|approximately\s+)?(\d{1,3}(?:,\d{3})+|\d+)(?![\d.,]\d)")

_VENUE = re.compile(
    r"\b(?:stadium|arena|venue|ground|hall|field|park|centre|center|circuit|speedway|station|"
    r"bridge|building|museum|airport|coaster|ride|theatre|theater|hotel|tower|mall|library|tunnel|"
    r"church|cathedral|dam|brewery|racecourse|velodrome|ballpark|bowl|dome|coliseum|colosseum)s?\b",
    re.IGNORECASE,
)
_NOT_VENUE = re.compile(r"\b(?:club|team|franchise|company|band|league|association)\b", re.IGNORECASE)

_SENTENCE_END = re.compile(r"(?<![A-Z])(?<!\b[A-Z][a-z])\.\s+(?=[A-Z])")


@dataclass(frozen=True)
class Attribute:
    """One extractable attribute: its column name, the phrase used in queries, and its data type."""

    key: str
    column: str
    phrase: str
    kind: str  # "date", "year", "number", "text"


ATTRIBUTES: dict[str, Attribute] = {
    a.key: a
    for a in (
        Attribute("birth_date", "Date of birth", "date of birth", "date"),
        Attribute("birth_year", "Year of birth", "year of birth", "year"),
        Attribute("death_date", "Date of death", "date of death", "date"),
        Attribute("death_year", "Year of death", "year of death", "year"),
        Attribute("release_year", "Release year", "year of release", "year"),
        Attribute("publication_year", "Publication year", "year of publication", "year"),
        Attribute("director", "Director", "director", "text"),
        Attribute("founded", "Year founded", "founding year", "year"),
        Attribute("opened", "Year opened", "opening year", "year"),
        Attribute("population", "Population", "population (as given in its article)", "number"),
        Attribute("capacity", "Capacity", "capacity (as given in its article)", "number"),
    )
}

# Attributes that describe the same fact at two precisions: never ask both in one task.
EXCLUSIVE = [{"birth_date", "birth_year"}, {"death_date", "death_year"}]


def _lead_parenthesis(text: str) -> str | None:
    """The text inside the first parenthesis, if it opens before the first sentence's verb."""
    verb = _FIRST_VERB.search(text[:600])
    if verb is None:
        return None
    start = text.find("(", 0, verb.start())
    if start < 0:
        return None
    depth, i = 0, start
    while i < len(text):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
        i += 1
    return None


def _life(text: str) -> dict[str, str]:
    inner = _lead_parenthesis(text)
    if not inner:
        return {}
    out: dict[str, str] = {}
    # The last ';'-separated part carries the dates ("Hebrew: ...; born 1950").
    parts = [p.strip() for p in re.split(r";", inner) if p.strip()]
    for part in reversed(parts):
        born = _BORN.search(part)
        span = _SPAN.search(part)
        if born and not span:
            if part[born.end() :].strip() or _VAGUE.search(part[: born.start()]):
                return {}
            value = born.group(1)
            out = _split_value(value, "birth")
            break
        if span and not born:
            if _VAGUE.search(part):
                return {}
            out = {**_split_value(span.group(1), "birth"), **_split_value(span.group(2), "death")}
            break
        if born or span:
            return {}
    return out


def _split_value(value: str, prefix: str) -> dict[str, str]:
    value = value.strip()
    if re.fullmatch(_YEAR, value):
        return {f"{prefix}_year": value}
    if parse_date(value) is None:
        return {}
    year = re.search(_YEAR, value)
    return {f"{prefix}_date": value, f"{prefix}_year": year.group(0)} if year else {}


def _first_sentences(text: str, n: int) -> str:
    parts = _SENTENCE_END.split(text[:1500], maxsplit=n)
    return ". ".join(parts[:n])


def _release(text: str) -> dict[str, str]:
    m = _RELEASE.search(_first_sentences(text, 1))
    if not m:
        return {}
    noun = m.group(2).lower()
    out = {("publication_year" if noun == "novel" else "release_year"): m.group(1)}
    if noun in ("film", "movie", "documentary", "television film"):
        found = _DIRECTOR.findall(_first_sentences(text, 2))
        if len(set(found)) == 1 and len(found[0]) <= 40 and not found[0].endswith("."):
            out["director"] = found[0]
    return out


def _unique_year(pattern: re.Pattern[str], text: str) -> str | None:
    years = set(pattern.findall(text))
    return years.pop() if len(years) == 1 else None


def _unique_number(
    pattern: re.Pattern[str], text: str, skip: re.Pattern[str] | None = None
) -> str | None:
    """The one number ``pattern`` finds (>= 100), ignoring matches whose sentence, up to the match,
    ``skip`` finds something in (such a figure describes something other than the page's entity)."""
    found = []
    for m in pattern.finditer(text):
        sentence = text[text.rfind(". ", 0, m.start()) + 1 : m.start()]
        if skip is None or not skip.search(sentence):
            found.append(m.group(1))
    if len(found) != 1:
        return None
    if int(found[0].replace(",", "")) < 100:
        return None
    return found[0]


def _events(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if ("founded" in text or "established" in text or "formed" in text) and (
        year := _unique_year(_FOUNDED, text)
    ) is not None:
        out["founded"] = year
    if "population" in text and (n := _unique_number(_POPULATION, text, _METRO)) is not None:
        out["population"] = n
    if "opened" not in text and "capacity" not in text:
        return out
    first = _first_sentences(text, 1)
    if not (_VENUE.search(first) and not _NOT_VENUE.search(first)):
        # "opened" and "capacity" on a club's or a company's page describe its ground: skip.
        return out
    if (year := _unique_year(_OPENED, text)) is not None:
        out["opened"] = year
    if (n := _unique_number(_CAPACITY, text, _PAST)) is not None:
        out["capacity"] = n
    return out


_EXTRACTORS: list[Callable[[str], dict[str, str]]] = [_life, _release, _events]


def extract_attributes(text: str) -> dict[str, str]:
    """All attributes the patterns find in one article's (detokenised) lead text."""
    if not text:
        return {}
    text = " ".join(text.split())
    out: dict[str, str] = {}
    for extractor in _EXTRACTORS:
        out.update(extractor(text))
    return out
