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
from typing import Sequence

from wideseek_env.taskgen import queries as Q
from wideseek_env.taskgen.groups import slot_year

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


def describe(rng: random.Random, topic: str, section: str, values: Sequence[str] = ()) -> str:
    """A set description: what the section lists, for a topic, over a span (when several pages)."""
    span = span_phrase(rng, values) if len(values) > 1 else ""
    where = section_phrase(rng, section)
    parts = [p for p in (f"for {topic}" if topic else "", span, where) if p]
    return " ".join(parts)


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


def described_intro(rng: random.Random, noun: str, description: str) -> str:
    body = rng.choice([
        f"List every one of the {noun} {description}.",
        f"Find all {noun} {description}, with the details below.",
        f"Which {noun} appear {description}? Give me all of them.",
        f"Collect the complete set of {noun} {description}.",
        f"I want each of the {noun} {description}, none left out.",
    ])  # fmt: skip
    return _sentence(_opener(rng), body)


def filtered_intro(rng: random.Random, noun: str, description: str, condition: str, stated: str) -> str:
    body = rng.choice([
        f"Among the {noun} {description}, keep only those whose Wikipedia article {stated}, and "
        f"of those only the ones {condition}.",
        f"Take the {noun} {description}. I only want the ones {condition}, judged from each one's "
        f"own Wikipedia article (leave out any whose article does not say).",
        f"Which of the {noun} {description} qualify as {condition}? Use each one's own article; "
        f"skip those whose article {stated.replace('states', 'does not state')}.",
        f"From the {noun} {description}, select those {condition}, checking each one's own page; "
        f"include only entries whose article {stated}.",
    ])  # fmt: skip
    return _sentence(_opener(rng), body)


def wide_intro(rng: random.Random, noun: str, description: str, attr: str, source_col: str) -> str:
    body = rng.choice([
        f"Go through all the {noun} {description} and, for each one whose own Wikipedia article "
        f"gives their {attr}, report it. Say in {Q.quote(source_col)} which edition each row is from.",
        f"I need a big table: every one of the {noun} {description}, with the {attr} taken from "
        f"each one's own article (leave out those whose article does not state it); the "
        f"{Q.quote(source_col)} column tells the edition.",
        f"Compile the {noun} {description}, each with their {attr} as their own Wikipedia page "
        f"states it; omit anyone whose page lacks it. Mark the edition in {Q.quote(source_col)}.",
    ])  # fmt: skip
    return _sentence(_opener(rng), body)


def count_intro(rng: random.Random, noun: str, description: str, count_col: str) -> str:
    body = rng.choice([
        f"Consider every edition {description}. For each of the {noun} that appear in any of them, "
        f"count in how many of these editions they appear ({Q.quote(count_col)}).",
        f"Across all editions {description}, tally each of the {noun}: {Q.quote(count_col)} is the "
        f"number of editions whose list includes them.",
        f"How many times does each of the {noun} show up {description}? One row per distinct "
        f"entry, with the number of editions in {Q.quote(count_col)}.",
    ])  # fmt: skip
    return _sentence(_opener(rng), body)


def top_intro(rng: random.Random, noun: str, description: str, k: int, rank_col: str, source_col: str) -> str:
    body = rng.choice([
        f"For each edition {description}, give the top {k} {noun} by {Q.quote(rank_col)}, with the "
        f"edition in {Q.quote(source_col)}.",
        f"I only care about the first {k} places. Across the editions {description}, list the "
        f"{noun} ranked {k} or better in {Q.quote(rank_col)} in each edition (edition in "
        f"{Q.quote(source_col)}).",
        f"Pull out, edition by edition {description}, the {noun} whose {Q.quote(rank_col)} is at "
        f"most {k}; say which edition in {Q.quote(source_col)}.",
    ])  # fmt: skip
    return _sentence(_opener(rng), body)


def join_intro(rng: random.Random, noun: str, first: str, second: str, mode: str) -> str:
    if mode == "both":
        body = rng.choice([
            f"Which {noun} appear both {first} and {second}?",
            f"Find the {noun} that are on both lists: {first}, and {second}.",
            f"I want the overlap: {noun} present {first} as well as {second}.",
        ])  # fmt: skip
    else:
        body = rng.choice([
            f"Which {noun} appear {first} but not {second}?",
            f"Find the {noun} listed {first} that are missing {second}.",
            f"List the {noun} {first}, leaving out every one that also appears {second}.",
        ])  # fmt: skip
    return _sentence(_opener(rng), body)


def entity_intro(rng: random.Random, entity: str, description: str, source_col: str) -> str:
    body = rng.choice([
        f"Find every row {description} in which {entity} appears, with the edition in "
        f"{Q.quote(source_col)}.",
        f"Track {entity} across all editions {description}: one row per appearance, the edition "
        f"in {Q.quote(source_col)}.",
        f"Where does {entity} show up {description}? Give each appearance as a row "
        f"(edition in {Q.quote(source_col)}).",
    ])  # fmt: skip
    return _sentence(_opener(rng), body)


def noun_for(header: str, fallback: str = "entries") -> str:
    return Q.row_noun(header) or fallback
