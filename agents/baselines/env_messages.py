"""Reading what the env writes to an agent: turn hints, the subtask mark and tool results.

Contract: :func:`parse_search_result`, :func:`parse_access_result` and :func:`_report_blocks` split
the text of a ``search``, ``access`` or ``call_subagent`` tool message into its parts (never raise;
a part they cannot read is left out or empty); ``_TURN_HINT`` matches the turn hint the env appends
to messages, ``_SUBTASK_MARK`` starts the subtask in a subagent's first message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TURN_HINT = re.compile(r"Your next answer will be on turn (\d+); you MUST finish by turn (\d+)\.")
_SUBTASK_MARK = "Your current subtask is: "


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

