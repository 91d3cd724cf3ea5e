"""Natural-language queries of tiers 1-4: described sets, paraphrased column names, varied wording.

A query is built from parts, each drawn by the task's seeded RNG from several wordings: an opener
("I'm putting together ...", "Could you ..."), the description of the set of rows (a topic, what
the section lists, a time span; never a page title nor a title template with a placeholder), the
condition or operation of the tier, the column list (:func:`~.queries.columns_sentence`), format
hints and WideSearch's closing. The parts multiply into hundreds of surface forms, so no small set
of regular expressions inverts them; no query states a row count.

:func:`paraphrase` renames a column (a synonym for common headers, abbreviations spelled out), so
the answer's headers are not the source table's.
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Callable, Sequence

from wideseek_env.taskgen import queries as Q
from wideseek_env.taskgen.groups import slot_year

if TYPE_CHECKING:
    from wideseek_env.taskgen.tablesets import TableSet

_SYNONYMS = {
    "pos": ["Position"], "pos.": ["Position"], "nat.": ["Nationality"], "nat": ["Nationality"],
    "athlete": ["Athlete", "Competitor", "Athlete name"], "player": ["Player", "Player name"],
    "name": ["Name", "Full name"], "country": ["Country", "Nation"], "nation": ["Nation", "Country"],
    "team": ["Team", "Team name"], "club": ["Club", "Club name"], "time": ["Time"],
    "school": ["School", "School attended"], "college": ["College", "College attended"],
    "position": ["Position", "Playing position"], "result": ["Result", "Outcome"],
    "venue": ["Venue", "Venue name"], "city": ["City", "Host city"], "location": ["Location", "Place"],
    "film": ["Film", "Film title"], "title": ["Title", "Work title"], "director": ["Director", "Directed by"],
    "driver": ["Driver", "Driver name"], "constructor": ["Constructor", "Car constructor"],
    "points": ["Points", "Points scored"], "pts": ["Points"], "score": ["Score", "Final score"],
    "opponent": ["Opponent", "Opposing team"], "date": ["Date", "Date of the event"],
    "state": ["State", "U.S. state"], "party": ["Party", "Political party"], "district": ["District"],
    "county": ["County"], "event": ["Event", "Competition event"], "medal": ["Medal", "Medal won"],
    "sport": ["Sport"], "games": ["Games", "Edition of the Games"], "notes": ["Notes", "Remarks"],
    "artist": ["Artist", "Performer"], "song": ["Song", "Song title"], "album": ["Album", "Album title"],
    "capacity": ["Capacity", "Seating capacity"], "stadium": ["Stadium", "Home stadium"],
    "round": ["Round"], "pick": ["Pick", "Pick number"], "rank": ["Rank", "Ranking"],
    "no.": ["Number"], "no": ["Number"], "#": ["Number"], "yr": ["Year"], "ht": ["Height"],
    "wt": ["Weight"], "gp": ["Games played"], "apps": ["Appearances"], "gls": ["Goals"],
}  # fmt: skip


def paraphrase(rng: random.Random, header: str) -> str:
    """Another name for a column: a synonym, an abbreviation spelled out, "(s)" plurals resolved."""
    h = " ".join(header.split())
    options = _SYNONYMS.get(h.lower())
    if options:
        return rng.choice(options)
    h = re.sub(r"\s*\(\s*s\s*\)", "s", h)
    h = re.sub(r"\s*\[[^\]]*\]", "", h).strip()
    if h and h == h.upper() and len(h) > 4:  # "NAME ON THE REGISTER" -> "Name on the register"
        h = h.capitalize()
    return h or header


# ------------------------------------------------------------------------------- descriptions


def topic_of_template(template: str) -> str:
    """What a title template is about, without its placeholder ("{} Hungarian Grand Prix" ->
    "the Hungarian Grand Prix"); "List of X" loses its "List of"."""
    text = template.replace("{}", " ").replace(" ,", ",")
    text = re.sub(r"^(?:List|Lists) of ", "", " ".join(text.split()))
    text = re.sub(r"\b(?:of|in|at|for|the)\s*$", "", text).strip(" ,:–-")
    return text


def span_phrase(rng: random.Random, values: Sequence[str]) -> str:
    """A time span or range covering the slot values ("between 1999 and 2004")."""
    a, b = values[0], values[-1]
    if all(slot_year(v) is not None for v in values):
        return rng.choice([f"from {a} to {b}", f"between {a} and {b}", f"in the years {a} through {b}",
                           f"over the period {a}–{b}", f"from {a} up to and including {b}"])
    if all(re.fullmatch(r"\d+(?:st|nd|rd|th)", v) for v in values):
        return rng.choice([f"from the {a} to the {b} edition", f"in the editions numbered {a} to {b}"])
    low = [v.lower() for v in values]
    if all(re.fullmatch(r"(?:season|series) \d+", v) for v in low):
        return rng.choice([f"from {low[0]} to {low[-1]}", f"in {low[0]} through {low[-1]}"])
    return ""


def section_phrase(rng: random.Random, section: str) -> str:
    label = Q.section_label(section)
    if not label:
        return ""
    return rng.choice([f"in the {Q.quote(label)} part", f"listed under {Q.quote(label)}",
                       f"in the section {Q.quote(label)}", f"that the {Q.quote(label)} list gives"])


def sections_phrase(rng: random.Random, sections: Sequence[str]) -> str:
    """Where a page set's rows stand: its sections, each named ("in the sections "A" and "B"";
    sections under one parent: "in the "Results" sections "Men" and "Women"")."""
    labels = list(dict.fromkeys(Q.section_label(s) for s in sections if Q.section_label(s)))
    if len(labels) == 1:
        return section_phrase(rng, sections[0])
    if not labels:
        return ""
    paths = [[p.strip() for p in s.split(" -- ")] for s in sections]
    parent = ""
    if all(len(p) > 1 and p[:-1] == paths[0][:-1] for p in paths) and len({p[-1] for p in paths}) == len(paths):
        parent = Q.quote(Q.section_label(" -- ".join(paths[0][:-1])))
        labels = [Q.section_label(p[-1]) for p in paths]
    named = Q.join_words([Q.quote(label) for label in labels])
    if parent:
        return rng.choice([f"in the {parent} sections {named}", f"listed under {parent}: {named}",
                           f"in the parts {named} of {parent}"])
    return rng.choice([f"in the sections {named}", f"listed under {named}", f"across its sections {named}",
                       f"in all of {named}"])


def set_description(rng: random.Random, ts: "TableSet", prep: str = "for", page: str | None = None) -> str | None:
    """What a set's rows are, with no page title (None: no rule describes it).

    One table or a page set: the page's subject (:func:`~.queries.describe_page`; ``page`` instead
    where given) and its section(s). A run: the template's topic, the span of its slot values (or,
    where they are not a span, the values themselves) and the section.
    """
    if ts.shape == "run":
        topic = topic_of_template(ts.template)
        span = span_phrase(rng, ts.values) or "for " + Q.join_words(ts.values)
        parts = (f"{prep} {topic}" if topic else "", span, section_phrase(rng, ts.section))
        return " ".join(p for p in parts if p)
    topic = page or Q.describe_page(ts.tables[0].title)
    if topic is None:
        return None
    where = sections_phrase(rng, [t.section_title for t in ts.tables])
    return " ".join(p for p in (f"{prep} {topic}", where) if p)


# ------------------------------------------------------------------------------------- intros

_OPENERS = [
    "I'm putting together a dataset on this.", "I need this for a research project.",
    "Please help me compile a table.", "This is for a report I'm writing.", "",
    "I'd like a complete overview.", "Could you gather this from Wikipedia?",
]  # fmt: skip


def _opener(rng: random.Random) -> str:
    return rng.choice(_OPENERS)


def _sentence(*parts: str) -> str:
    return " ".join(p for p in parts if p).strip()


# The bodies of each tier's intro: str.format templates over the fields its function passes.
_BODIES: dict[str, list[str]] = {
    "described": [
        "List every one of the {noun} {description}.",
        "Find all {noun} {description}, with the details below.",
        "Which {noun} appear {description}? Give me all of them.",
        "Collect the complete set of {noun} {description}.",
        "I want each of the {noun} {description}, none left out.",
    ],
    "filtered": [
        "Among the {noun} {description}, keep only those whose Wikipedia article {stated}, and "
        "of those only the ones {condition}.",
        "Take the {noun} {description}. I only want the ones {condition}, judged from each one's "
        "own Wikipedia article (leave out any whose article does not say).",
        "Which of the {noun} {description} qualify as {condition}? Use each one's own article; "
        "skip those whose article {not_stated}.",
        "From the {noun} {description}, select those {condition}, checking each one's own page; "
        "include only entries whose article {stated}.",
    ],
    "wide": [
        "Go through all the {noun} {description} and, for each one whose own Wikipedia article "
        "gives their {attr}, report it. Say in {source} which edition each row is from.",
        "I need a big table: every one of the {noun} {description}, with the {attr} taken from "
        "each one's own article (leave out those whose article does not state it); the "
        "{source} column tells the edition.",
        "Compile the {noun} {description}, each with their {attr} as their own Wikipedia page "
        "states it; omit anyone whose page lacks it. Mark the edition in {source}.",
    ],
    "count": [
        "Consider every edition {description}. For each of the {noun} that appear in any of them, "
        "count in how many of these editions they appear ({count}).",
        "Across all editions {description}, tally each of the {noun}: {count} is the "
        "number of editions whose list includes them.",
        "How many times does each of the {noun} show up {description}? One row per distinct "
        "entry, with the number of editions in {count}.",
    ],
    "top": [
        "For each edition {description}, give the top {k} {noun} by {rank}, with the edition in {source}.",
        "I only care about the first {k} places. Across the editions {description}, list the "
        "{noun} ranked {k} or better in {rank} in each edition (edition in {source}).",
        "Pull out, edition by edition {description}, the {noun} whose {rank} is at most {k}; say "
        "which edition in {source}.",
    ],
    "join both": [
        "Which {noun} appear both {first} and {second}?",
        "Find the {noun} that are on both lists: {first}, and {second}.",
        "I want the overlap: {noun} present {first} as well as {second}.",
    ],
    "join only": [
        "Which {noun} appear {first} but not {second}?",
        "Find the {noun} listed {first} that are missing {second}.",
        "List the {noun} {first}, leaving out every one that also appears {second}.",
    ],
    "entity": [
        "Find every row {description} in which {entity} appears, with the edition in {source}.",
        "Track {entity} across all editions {description}: one row per appearance, the edition in {source}.",
        "Where does {entity} show up {description}? Give each appearance as a row (edition in {source}).",
    ],
}  # fmt: skip


def _intro(rng: random.Random, kind: str, **fields: object) -> str:
    """One of ``kind``'s bodies filled with ``fields``, after an opener."""
    body = rng.choice(_BODIES[kind]).format(**fields)
    return _sentence(_opener(rng), body)


def query_builder(rng: random.Random, intro: Callable[[list[str]], str]):
    """A draft's ``query(display, kinds, key_pos)``: ``intro(display)`` and the common parts."""

    def query(display: list[str], kinds: list[str], key_pos: list[int]) -> str:
        return Q.assemble(rng, intro(display), display, kinds, [display[k] for k in key_pos])

    return query


def described_intro(rng: random.Random, noun: str, description: str) -> str:
    return _intro(rng, "described", noun=noun, description=description)


def filtered_intro(rng: random.Random, noun: str, description: str, condition: str, stated: str) -> str:
    return _intro(rng, "filtered", noun=noun, description=description, condition=condition, stated=stated,
                  not_stated=stated.replace("states", "does not state"))


def wide_intro(rng: random.Random, noun: str, description: str, attr: str, source_col: str) -> str:
    return _intro(rng, "wide", noun=noun, description=description, attr=attr, source=Q.quote(source_col))


def count_intro(rng: random.Random, noun: str, description: str, count_col: str) -> str:
    return _intro(rng, "count", noun=noun, description=description, count=Q.quote(count_col))


def top_intro(rng: random.Random, noun: str, description: str, k: int, rank_col: str, source_col: str) -> str:
    return _intro(rng, "top", noun=noun, description=description, k=k, rank=Q.quote(rank_col),
                  source=Q.quote(source_col))


def join_intro(rng: random.Random, noun: str, first: str, second: str, mode: str) -> str:
    return _intro(rng, f"join {mode}", noun=noun, first=first, second=second)


def entity_intro(rng: random.Random, entity: str, description: str, source_col: str) -> str:
    return _intro(rng, "entity", entity=entity, description=description, source=Q.quote(source_col))


def noun_for(header: str, fallback: str = "entries") -> str:
    return Q.row_noun(header) or fallback
