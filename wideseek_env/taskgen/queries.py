"""Stage 1 of the generator: natural-language queries, in WideSearch's style.

A query says what set of rows is wanted, names every column of the answer in order, adds format
hints for dates and numbers, and ends with WideSearch's own closing ("Don't ask me any questions
... The output format is ```markdown {data_content} ```"). Phrasing is drawn from a few templates
by the task's seeded RNG.

**Page-title rule.** A *transcribe* query may name its page. An *enrich* or *union* query must not
contain the title of any page it draws on: :func:`mentions_title` compares lower-cased text with
every run of non-alphanumeric characters collapsed to one space, so "Kenya at the 2008 Summer
Olympics" is found in "kenya at the 2008 summer olympics!" but not in "Kenya at the Summer Olympics
in 2008". Such queries describe the set instead:

- *enrich*, "set" mode (every row of the table is asked): by the table's section title plus a
  rewrite of the page title (:func:`describe_page`): "List of X" -> "X"; a year or season moves to
  the end ("2008 Summer Olympics" -> "Summer Olympics in 2008", "1988 in country music" -> "country
  music in 1988"); "A (season 3)" -> "season 3 of A"; "A: B" / "A – B" -> "B (A)"; "A at/in/of
  the B" -> "B: A". A title none of these rules rewrites (a bare name such as "Shot put") gives no
  description, and the task falls back to "list" mode;
- *enrich*, "list" mode: the query enumerates the entities (with the section title as context);
- *union*: the pages share a title template with one varying part (a year, a season, a country);
  the query writes the template with a placeholder, ``"X Hungarian Grand Prix"``, and lists the
  values of X.
The generator checks the finished query with :func:`mentions_title` and drops a task that fails.
"""

from __future__ import annotations

import random
import re
from typing import Sequence


CLOSING = (
    "Don't ask me any questions, just output the results according to the columns without "
    "omitting cells arbitrarily. The output format is ```markdown\n{data_content}\n```."
)

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_YEARISH = re.compile(
    r"\b(?:(?:1[5-9]|20)\d\d(?:[–-](?:\d\d|\d{4}))?)\b"
)
_SEASONISH = re.compile(r"^(?:season|series|series|volume|vol\.|part|book|chapter)\s+\d+$", re.I)
_SPLIT_PREPS = (" at the ", " in the ", " of the ", " at ", " in ", " of ")


def normalise_for_match(text: str) -> str:
    return " " + _NON_ALNUM.sub(" ", text.lower()).strip() + " "


def mentions_title(query: str, titles: Sequence[str]) -> bool:
    """True if any title appears in the query (case and punctuation ignored, whole words)."""
    q = normalise_for_match(query)
    for title in titles:
        t = normalise_for_match(title).strip()
        if t and f" {t} " in q:
            return True
    return False


def section_label(section_title: str) -> str:
    """"Results -- Men 's" style OTT-QA section paths, as people write them: "Results: Men's"."""
    parts = [p.strip() for p in section_title.split(" -- ") if p.strip()]
    label = ": ".join(parts)
    return label.replace(" 's", "'s")


def describe_page(title: str) -> str | None:
    """A description of a page's subject that does not repeat its title (rules in the docstring)."""
    title = " ".join(title.split())
    text = title
    if text.startswith("List of ") or text.startswith("Lists of "):
        text = text.split(" ", 2)[2]
        if not mentions_title(text, [title]):
            return _finish(text, title)
    match = _YEARISH.search(text)
    if match:
        rest = (text[: match.start()] + text[match.end() :]).strip()
        rest = re.sub(r"\s+", " ", rest).strip(" ,-–:")
        if rest:
            year = match.group(0)
            if rest.lower().startswith("in "):
                rest = rest[3:]
            phrase = f"{rest} in {year}"
            return _finish(phrase, title)
    paren = re.fullmatch(r"(.+?) \(([^()]+)\)", text)
    if paren and _SEASONISH.match(paren.group(2)):
        return _finish(f"{paren.group(2)} of {paren.group(1)}", title)
    for sep in (": ", " – ", " - "):
        if sep in text:
            a, b = text.split(sep, 1)
            if a and b:
                return _finish(f"{b} ({a})", title)
    for prep in _SPLIT_PREPS:
        if prep in text:
            a, b = text.split(prep, 1)
            if a and b and "(" not in b:
                return _finish(f"{b}: {a}", title)
    return None


def _finish(phrase: str, title: str) -> str | None:
    phrase = " ".join(phrase.split())
    if not phrase or mentions_title(phrase, [title]):
        return None
    return phrase


# ------------------------------------------------------------------------------- nouns and lists

_GENERIC_HEADERS = {
    "name", "names", "title", "titles", "entity", "#", "no", "no.", "item", "subject", "details",
}  # fmt: skip


def plural(noun: str) -> str:
    noun = noun.strip()
    low = noun.lower()
    if not low:
        return "entries"
    if low.endswith(("s", "x", "ch", "sh", "z")):
        return noun if low.endswith("s") and not low.endswith("ss") else noun + "es"
    if low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if low in ("person",):
        return "people"
    return noun + "s"


def row_noun(header: str) -> str | None:
    """A plural noun for the rows, from the key column's header ("Athlete" -> "athletes")."""
    h = header.strip()
    if not h or h.lower() in _GENERIC_HEADERS or " " in h or not re.fullmatch(r"[A-Za-z-]+", h):
        return None
    return plural(h.lower())


def join_words(items: Sequence[str], conj: str = "and") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} {conj} {items[1]}"
    return ", ".join(items[:-1]) + f", {conj} {items[-1]}"


def quote(text: str) -> str:
    return f"\u201c{text}\u201d"


# ---------------------------------------------------------------------------------- query parts


def columns_sentence(rng: random.Random, display: Sequence[str]) -> str:
    cols = ", ".join(display)
    return rng.choice(
        [
            f"Please organize the results in one Markdown table with the following columns:\n{cols}",
            f"Please organize the results in one Markdown table with the columns: {cols}.",
            f"Present the results as one Markdown table whose columns are, in this order: {cols}.",
            f"Output a single Markdown table with exactly these columns: {cols}.",
        ]
    )


def format_hints(display: Sequence[str], kinds: Sequence[str], key_display: Sequence[str]) -> list[str]:
    """One line per data type: how to write dates, years and numbers; keys verbatim."""
    hints = []
    dates = [d for d, k in zip(display, kinds) if k == "date"]
    years = [d for d, k in zip(display, kinds) if k == "year"]
    numbers = [d for d, k in zip(display, kinds) if k == "number"]
    if dates:
        hints.append(
            f"Give {_values_of(dates)} as full dates (day, month and year), e.g. 29 April 1947 or "
            "1947-04-29."
        )
    if years:
        hints.append(f"Give {_values_of(years)} as four-digit years.")
    if numbers:
        hints.append(f"Write {_values_of(numbers)} in Arabic numerals, as the source writes them.")
    texts = [d for d, k in zip(display, kinds) if k == "text" and d in key_display]
    if texts:
        hints.append(f"Copy {_values_of(texts)} exactly as Wikipedia writes them.")
    return hints


def _values_of(columns: Sequence[str]) -> str:
    names = join_words([quote(c) for c in columns])
    return f"the {names} values" if len(columns) == 1 else f"the values of {names}"


def assemble(rng: random.Random, intro: str, display: Sequence[str], kinds: Sequence[str],
             key_display: Sequence[str]) -> str:
    """The whole query: intro, the column list, format hints, WideSearch's closing."""
    lines = [intro, "", columns_sentence(rng, display)]
    lines.extend(format_hints(display, kinds, key_display))
    lines.append(CLOSING)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- intros


def transcribe_intro(rng: random.Random, title: str, section: str, noun: str | None, n_rows: int) -> str:
    where = f"the {quote(section)} table" if section else "the table"
    things = noun or "rows"
    count = rng.choice(["", f" (there are {n_rows})"])
    options = [
        f"I need the complete {where.replace('the ', '', 1)} from the English Wikipedia article "
        f"{quote(title)}. List every one of its {things}{count}.",
        f"From Wikipedia's article on {title}, please list all {things} in {where}{count}.",
        f"Could you compile all the {things} listed in {where} of the Wikipedia page {quote(title)}?",
        f"Please collect every row of {where} on the Wikipedia page {quote(title)}{count}.",
    ]
    return rng.choice(options)


def enrich_set_intro(rng: random.Random, topic: str, section: str, noun: str, attrs: Sequence[str],
                     table_cols: Sequence[str]) -> str:
    asked = join_words(list(attrs))
    extra = f" Also give their {join_words(list(table_cols))} as that list states it." if table_cols else ""
    where = f"listed under {quote(section)} for {topic}" if section else f"listed for {topic}"
    options = [
        f"For every one of the {noun} {where}, find their {asked}.{extra}",
        f"Consider all the {noun} {where}. For each one, look up their {asked} on their own "
        f"Wikipedia page.{extra}",
        f"I'm researching {topic}. Take every one of the {noun} "
        + (f"in its {quote(section)} list" if section else "it lists")
        + f" and give me their {asked}.{extra}",
    ]
    return rng.choice(options)


def enrich_list_intro(rng: random.Random, names: Sequence[str], noun: str, context: str,
                      attrs: Sequence[str]) -> str:
    asked = join_words(list(attrs))
    listed = "; ".join(names)
    ctx = f" ({context})" if context else ""
    options = [
        f"For each of the following {len(names)} {noun}{ctx}, find their {asked}: {listed}.",
        f"Here is a list of {noun}{ctx}: {listed}. For each of them, look up their {asked}.",
        f"I have {len(names)} {noun}{ctx} and need their {asked}. The {noun} are: {listed}.",
    ]
    return rng.choice(options)


def union_intro(rng: random.Random, template: str, values: Sequence[str], section: str,
                source_col: str, noun: str | None) -> str:
    page = quote(template.replace("{}", "X"))
    vals = join_words([str(v) for v in values])
    where = f"the {quote(section)} table" if section else "the table"
    things = noun or "rows"
    options = [
        f"For X in {vals}, take {where} of the Wikipedia page {page}. Combine all their {things} "
        f"into one table, with a column {quote(source_col)} saying which X each row comes from.",
        f"I'm comparing several pages of the same kind: {page} for X = {vals}. From each page, "
        f"collect every row of {where} and merge them into one table; add a column "
        f"{quote(source_col)} holding that page's X.",
        f"Please list all the {things} of {where} on each Wikipedia page {page}, where X is each of "
        f"{vals}, in a single table with a {quote(source_col)} column giving the X of each row.",
    ]
    return rng.choice(options)
