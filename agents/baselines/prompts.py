"""The subtask texts the lead writes to its subagents, and how a subagent reads them back.

Contract: the lead fills ``*_PROMPT`` (plain English, so an LLM subagent can read them too); a
scripted subagent matches its subtask against ``*_SUBTASK`` (one pattern per prompt, the same
wording) to get the parameters back. A subtask in any other wording (a person playing the lead, see
``wideseek play``) matches none of them.
"""

from __future__ import annotations

import re

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

#: A subagent's reading of the prompts above: ``TRANSCRIBE_PROMPT`` -> (title, table phrase, columns),
#: ``FIND_TABLE_PROMPT`` -> (topic, table phrase, noun, columns), ``ENTITY_PROMPT`` -> (noun and
#: context, quoted names, attributes, columns, key).
TRANSCRIBE_SUBTASK = re.compile(
    r"Transcribe a table\. Open the Wikipedia page “(.+?)” and copy every row of its (.+?)\. "
    r"Report one markdown table with exactly these columns: (.+)\.$", re.S
)
FIND_TABLE_SUBTASK = re.compile(
    r"Find a table\. Find the Wikipedia page about (.+?) that has the (.+?) listing (.+?), and copy "
    r"every row of that table\. Report one markdown table with exactly these columns: (.+)\.$", re.S
)
ENTITY_SUBTASK = re.compile(
    r"Look up entities\. For each of these (.+?): (“.+”), find their own Wikipedia page and read "
    r"from it: (.+?)\. Report one markdown table with exactly these columns: (.+?); one row per "
    r"entity, with the “(.+?)” values", re.S
)


def _table_phrase(section: str | None) -> str:
    return f"“{section}” table" if section else "table"


def _section_from_phrase(phrase: str) -> str | None:
    m = re.search(r"“(.+)”", phrase)
    return m.group(1) if m else None


def _split_cols(text: str) -> list[str]:
    return [c.strip() for c in text.split(", ") if c.strip()]

