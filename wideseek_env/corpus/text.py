"""Text clean-up shared by the corpus readers and the task generator."""

from __future__ import annotations

import re

# OTT-QA text is pre-tokenised: "born April 29 , 1947 ) is" -> "born April 29, 1947) is".
#
# Speed matters: the corpus build detokenises ~150 MB of text. Plain ``str.replace`` (C, memchr-based)
# handles the frequent cases; the remaining regexes start with a literal space (which lets ``re`` skip
# ahead quickly) and only run when a cheap substring test says they can match. This is ~5x faster than
# a chain of ``re.sub`` calls over every string, with the same rules.
_NO_SPACE_BEFORE = (",", ".", ";", ":", "!", "?", "%", ")", "]", "}")
_NO_SPACE_AFTER = ("(", "[", "{", "$")
# No word-character test before the space: "( NBA ) 's" must become "(NBA)'s" too.
_POSSESSIVE = re.compile(r" (?='(?:s|re|ve|ll|d|m)\b|n't\b)")
_QUOTES = re.compile(r'"\s+([^"]*?)\s+"')
# Only between word characters: "1 - 1" -> "1-1", but "(MFB) - existed" keeps its dash.
_JOINER = re.compile(r"(?<=\w) ([-/–]) (?=\w)")


def detokenize(text: str) -> str:
    """Re-join the spaces that tokenisation put around punctuation.

    Conservative by design: it only removes spaces that English never has (before a comma, after an
    opening bracket, before a possessive or contraction, inside quotes) plus the spaces around a
    hyphen, slash or en dash between two word characters ("1 - 1" -> "1-1"). Runs of whitespace
    become one space. Already-clean text passes through unchanged.
    """
    if not text:
        return ""
    if " " not in text and text.isprintable():
        return text  # one token (a year, a name): no space to remove; common in table cells
    out = " ".join(text.split())
    for mark in _NO_SPACE_BEFORE:
        spaced = " " + mark
        if spaced in out:
            out = out.replace(spaced, mark)
    for mark in _NO_SPACE_AFTER:
        spaced = mark + " "
        if spaced in out:
            out = out.replace(spaced, mark)
    if " '" in out or " n't" in out:
        out = _POSSESSIVE.sub("", out)
    if '" ' in out:
        out = _QUOTES.sub(r'"\1"', out)
    if " - " in out or " / " in out or " – " in out:
        out = _JOINER.sub(r"\1", out)
    return out
