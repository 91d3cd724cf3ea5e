"""Which part of a page an agent reads: relevance selection and section selection within a budget.

:func:`select_relevant` (the ``access`` tool's default): a page that fits the budget is returned whole;
a longer page is cut into chunks (:func:`split_chunks`: paragraphs; long paragraphs at sentence ends;
tables into groups of rows), the chunks are scored by BM25 against the words of ``info`` (with
statistics of this page's chunks), and the best chunks are kept until the budget is full: the page's
first chunk (its lead, usually the densest facts) first, then by score, then, if room is left,
unscored chunks from the top of the page. The kept chunks are shown in page order; ``...``
(:data:`OMISSION`) marks each omission, and a table chunk shown without its table's header gets the
header repeated above it.

:func:`select_section` (``access_mode="section"``): the ``## section`` that best matches ``info``, whole.

Pure functions of text: no corpus, no tool protocol (that is :mod:`wideseek_env.tools.access`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

__all__ = ["OMISSION", "split_chunks", "select_relevant", "select_section"]

OMISSION = "..."
_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")
_STOP = frozenset(
    """a an and are as at be been by can did do does for from had has have how i if in into is it its
    of on or that the their then there these they this to was were what when where which who whom
    whose why will with about also information info find extract page article wikipedia""".split()
)


def _norm(word: str) -> str:
    """A light English stemmer: plural and possessive endings, good enough for term overlap."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _terms(text: str) -> list[str]:
    return [_norm(w) for w in _WORD.findall(text.lower())]


@dataclass
class _Chunk:
    start: int
    end: int
    header: str = ""  # the table header lines, when the chunk is rows of a table without them
    score: float = 0.0


def _split_block(text: str, start: int, end: int, target: int) -> list[_Chunk]:
    """Cut text[start:end] into chunks of about ``target`` characters at row or sentence ends."""
    block = text[start:end]
    if len(block) <= target * 1.5:
        return [_Chunk(start, end)]
    if block.startswith("|"):  # a markdown table: header + separator lines, then one line a row
        lines = block.split("\n")
        header = "\n".join(lines[:2])
        chunks, pos, chunk_start = [], start, start
        first = True
        for line in lines:
            line_end = pos + len(line)
            if line_end - chunk_start >= target:
                chunks.append(_Chunk(chunk_start, line_end, "" if first else header))
                first = False
                chunk_start = line_end + 1
            pos = line_end + 1
        if chunk_start < end:
            chunks.append(_Chunk(chunk_start, end, "" if first else header))
        return chunks
    chunks, chunk_start = [], start
    for match in _SENTENCE_END.finditer(block):
        cut = start + match.start()
        if cut - chunk_start >= target:
            chunks.append(_Chunk(chunk_start, cut))
            chunk_start = start + match.end()
    if chunk_start < end:
        tail = _Chunk(chunk_start, end)
        if chunks and end - chunk_start < target // 4:
            chunks[-1].end = end
        else:
            chunks.append(tail)
    # A single sentence far over the target is cut between words.
    out = []
    for chunk in chunks:
        if chunk.end - chunk.start <= target * 3:
            out.append(chunk)
            continue
        pos = chunk.start
        while pos < chunk.end:
            cut = min(chunk.end, pos + target)
            if cut < chunk.end:
                space = text.rfind(" ", pos + target // 2, cut)
                cut = space if space > pos else cut
            out.append(_Chunk(pos, cut))
            pos = cut + 1 if cut < chunk.end and text[cut] == " " else cut
    return out


def split_chunks(text: str, target: int = 800) -> list[_Chunk]:
    """Chunks (character spans) of ``text``: blank-line-separated blocks, long ones cut further.

    A ``## heading`` block is kept with the block after it.
    """
    chunks: list[_Chunk] = []
    pending_start = -1
    for match in re.finditer(r"[^\n](?:.|\n(?!\n))*", text):
        start, end = match.start(), match.end()
        block = match.group()
        if not block.strip():
            continue
        if block.startswith("## ") and "\n" not in block:
            if pending_start < 0:
                pending_start = start
            continue
        pieces = _split_block(text, start, end, target)
        if pending_start >= 0:
            pieces[0].start = pending_start
            pending_start = -1
        chunks.extend(pieces)
    if pending_start >= 0:
        chunks.append(_Chunk(pending_start, len(text)))
    return chunks


def select_relevant(text: str, info: str, budget: int, *, target: int | None = None) -> str:
    """The parts of ``text`` most relevant to ``info`` within ``budget`` characters (module doc).

    ``target`` is the chunk size in characters (default: ``budget // 8``, between 200 and 800, so
    that a small budget still holds several chunks).
    """
    if len(text) <= budget:
        return text
    if budget <= len(OMISSION):
        return text[: max(budget, 0)]
    if target is None:
        target = max(200, min(800, budget // 8))
    chunks = split_chunks(text, target)
    if not chunks:
        return text[: budget - len(OMISSION)] + OMISSION
    query = [t for t in dict.fromkeys(_terms(info)) if t not in _STOP]
    if query:
        chunk_terms = [Counter(_terms(text[c.start : c.end])) for c in chunks]
        n = len(chunks)
        avg_len = sum(sum(ct.values()) for ct in chunk_terms) / n or 1.0
        df = {t: sum(1 for ct in chunk_terms if t in ct) for t in query}
        idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in query}
        for chunk, ct in zip(chunks, chunk_terms):
            length = sum(ct.values())
            score = 0.0
            for t in query:
                tf = ct.get(t, 0)
                if tf:
                    score += idf[t] * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / avg_len))
            chunk.score = score
    # The lead chunk first (when it is small next to the budget), then matching chunks by score,
    # then the rest from the top of the page.
    scored = sorted((i for i in range(len(chunks)) if chunks[i].score > 0), key=lambda i: (-chunks[i].score, i))
    lead_first = chunks[0].end - chunks[0].start <= budget // 4
    order = ([0] if lead_first else []) + [i for i in scored if not (lead_first and i == 0)]
    taken = set(order)
    order += [i for i in range(len(chunks)) if i not in taken]
    chosen: set[int] = set()
    used = len(OMISSION) + 2  # room for a final omission mark
    for i in order:
        c = chunks[i]
        cost = c.end - c.start + len(c.header) + len(OMISSION) + 4
        if used + cost <= budget:
            chosen.add(i)
            used += cost
    if not chosen:  # even the best chunk alone is over the budget: cut it
        best = chunks[order[0]]
        return text[best.start : best.start + budget - len(OMISSION)] + OMISSION
    parts: list[str] = []
    previous = -1
    for i in sorted(chosen):
        c = chunks[i]
        if i == previous + 1 and previous >= 0:
            parts.append(text[chunks[previous].end : c.start])  # the original separator
        else:
            if i > 0:
                parts.append(("\n" if parts else "") + OMISSION + "\n")
            if c.header and (i - 1) not in chosen:
                parts.append(c.header + "\n")
        parts.append(text[c.start : c.end])
        previous = i
    if chunks[-1].end < len(text.rstrip()) or (len(chunks) - 1) not in chosen:
        parts.append("\n" + OMISSION)
    out = "".join(parts)
    return out if len(out) <= budget else out[: budget - len(OMISSION)] + OMISSION


_HEADING = re.compile(r"^## .*$", re.M)


def select_section(text: str, info: str, budget: int) -> str:
    """The ``## section`` of ``text`` that best matches ``info``, whole (``access_mode="section"``).

    Sections are scored by the share of ``info``'s words found in their heading (twice) plus BM25-like term
    overlap with their body; the page's lead (before the first heading) is a section too. No match (or no
    ``info``): the lead, or the first section when the lead is empty. A section over ``budget`` is cut."""
    if len(text) <= budget and not info:
        return text
    starts = [m.start() for m in _HEADING.finditer(text)]
    bounds = list(zip([0] + starts, starts + [len(text)]))
    sections = [(a, b) for a, b in bounds if text[a:b].strip()]
    if not sections:
        return text[:budget]
    query = [t for t in dict.fromkeys(_terms(info)) if t not in _STOP]
    best, best_score = sections[0], 0.0
    for a, b in sections:
        body = text[a:b]
        heading = body.split("\n", 1)[0] if body.startswith("## ") else ""
        head_terms, body_terms = set(_terms(heading)), Counter(_terms(body))
        score = 0.0
        if query:
            score = 2.0 * sum(t in head_terms for t in query) / len(query)
            score += sum(min(body_terms.get(t, 0), 3) for t in query) / (3.0 * len(query))
        if score > best_score:
            best, best_score = (a, b), score
    out = text[best[0]:best[1]].strip()
    return out if len(out) <= budget else out[: budget - len(OMISSION)] + OMISSION
