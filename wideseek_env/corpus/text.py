"""Text clean-up shared by the corpus readers and the task generator."""

from __future__ import annotations

import re

# OTT-QA text is pre-tokenised: "born April 29 , 1947 ) is" -> "born April 29, 1947) is".
#
# Speed matters: the corpus build detokenises ~150 MB of text. Each regex below starts with a
# literal space or is guarded by a cheap substring test, so ``re`` scans fast and most rules cost
# one pass; this is ~2x faster than a chain of ``re.sub(r"\s+...")`` calls, with the same rules.
_SPACE_BEFORE = re.compile(r" (?=[,.;:!?%)\]}])")
_SPACE_AFTER = re.compile(r"(?<=[(\[{$]) ")
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
    printable = text.isprintable()  # False for any whitespace but " "
    if printable and " " not in text:
        return text  # one token (a year, a name): no space to remove; common in table cells
    if not printable or "  " in text or text[0] == " " or text[-1] == " ":
        out = " ".join(text.split())
    else:
        out = text  # single spaces only (the usual case): skip the split/join
    out = _SPACE_BEFORE.sub("", out)
    if "( " in out or "[ " in out or "{ " in out or "$ " in out:
        out = _SPACE_AFTER.sub("", out)
    if " '" in out or " n't" in out:
        out = _POSSESSIVE.sub("", out)
    if '" ' in out:
        out = _QUOTES.sub(r'"\1"', out)
    if " - " in out or " / " in out or " – " in out:
        out = _JOINER.sub(r"\1", out)
    return out
