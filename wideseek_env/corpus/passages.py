"""Splitting a page's text into the passages of the search index (:func:`split_passages`).

Passages of about ``passage_words`` words, cut between sentences and between table rows, never
inside a word (only a single very long sentence is cut between words); a passage that starts inside
a markdown table repeats the table's header lines; the passages of a text put together give the
text back. Used by ``corpus.build`` (which re-exports :func:`split_passages`) in its reading process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["split_passages"]

# A sentence ends at . ! or ? followed by whitespace and something that can start a sentence. The
# whitespace is captured so that the passages of a text put together give the text back.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])(\s+)(?=[\"'(\[A-Z0-9])")


@dataclass(slots=True)
class _Unit:
    sep: str  # what separates this unit from the previous one in the text
    text: str
    words: int
    header: str  # a table's header lines, repeated when a passage starts inside that table


def _row_words(row: str) -> int:
    # "| a | b c |": spaces = 2 per cell + inner spaces, pipes = cells + 1 -> words = 3.
    return row.count(" ") + 1 - row.count("|")


def _table_units(block: str, prefix: str) -> list[_Unit]:
    lines = block.split("\n")
    header = "\n".join(lines[:2])
    first = prefix + "\n".join(lines[:3])
    units = [_Unit("\n\n", first, _row_words(first), "")]
    units.extend(_Unit("\n", row, _row_words(row), header) for row in lines[3:])
    return units


def _prose_units(block: str, prefix: str) -> list[_Unit]:
    pieces = _SENTENCE_BREAK.split(block)  # [sentence, whitespace, sentence, ...]
    units = [_Unit("\n\n", prefix + pieces[0], pieces[0].count(" ") + 1, "")]
    for i in range(1, len(pieces), 2):
        sentence = pieces[i + 1]
        units.append(_Unit(pieces[i], sentence, sentence.count(" ") + 1, ""))
    return units


def _units(text: str) -> list[_Unit]:
    """Sentences and table rows of ``text``, in order.

    Blocks are separated by blank lines. A ``## heading`` block sticks to the start of the next
    block, and a table's header sticks to its first row, so no passage ends on a bare heading.
    """
    units: list[_Unit] = []
    prefix = ""
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        if block.startswith("## ") and "\n" not in block:
            prefix += block + "\n\n"
        elif block.startswith("|"):
            units.extend(_table_units(block, prefix))
            prefix = ""
        else:
            units.extend(_prose_units(block, prefix))
            prefix = ""
    if prefix:
        units.append(_Unit("\n\n", prefix.rstrip("\n"), prefix.count(" ") + 1, ""))
    return units


def _split_long(unit: _Unit, limit: int) -> list[str]:
    """A unit of more than twice ``limit`` words, cut between words into ``limit``-word pieces."""
    words = unit.text.split(" ")
    head = unit.header + "\n" if unit.header else ""
    return [head + " ".join(words[i : i + limit]) for i in range(0, len(words), limit)]


def split_passages(text: str, passage_words: int = 100) -> list[str]:
    """Split ``text`` into passages of about ``passage_words`` words for the index.

    - Cuts fall between sentences (and between table rows); a text of at most 1.5x
      ``passage_words`` words stays whole; a passage holds at least half of ``passage_words`` unless
      it is the text's only one; a short last piece (< 1/4) joins the previous passage.
    - Only a single sentence longer than twice ``passage_words`` is cut between words; no word is
      ever cut.
    - A passage that starts inside a markdown table repeats the table's header lines, so each
      passage of a table is readable (and searchable) on its own.
    - Word counts are approximate (spaces), which is all BM25 passage sizing needs.
    """
    text = text.strip()
    if not text:
        return []
    if text.count(" ") < passage_words * 1.5:
        return [text]
    chunks: list[str] = []
    head, parts, words, first_sep = "", [], 0, ""
    for unit in _units(text):
        if unit.words > 2 * passage_words:
            if parts:
                chunks.append(head + "".join(parts))
                head, parts, words = "", [], 0
            chunks.extend(_split_long(unit, passage_words))
            continue
        if parts and words + unit.words > passage_words and words >= passage_words // 2:
            chunks.append(head + "".join(parts))
            head, parts, words = "", [], 0
        if parts:
            parts.append(unit.sep)
        else:
            head = unit.header + "\n" if unit.header else ""
            first_sep = unit.sep
        parts.append(unit.text)
        words += unit.words
    if parts:
        if chunks and words < passage_words // 4:
            chunks[-1] += first_sep + "".join(parts)  # the previous passage has the header already
        else:
            chunks.append(head + "".join(parts))
    return chunks
