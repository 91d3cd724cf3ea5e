"""Text clean-up shared by the corpus readers and the task generator."""

from __future__ import annotations

import re

# OTT-QA text is pre-tokenised: "born April 29 , 1947 ) is" -> "born April 29, 1947) is".
_SPACE_BEFORE = re.compile(r"\s+([,.;:!?%)\]}])")
_SPACE_AFTER = re.compile(r"([(\[{$])\s+")
_POSSESSIVE = re.compile(r"(\w)\s+('s|'re|'ve|'ll|'d|'m|n't)\b")
_QUOTES = re.compile(r'"\s+([^"]*?)\s+"')
_HYPHEN = re.compile(r"(\w)\s+([-/–])\s+(\w)")
_SPACES = re.compile(r"\s+")


def detokenize(text: str) -> str:
    """Re-join the spaces that tokenisation put around punctuation.

    Conservative by design: it only removes spaces that English never has (before a comma, after an
    opening bracket, around a possessive), so already-clean text passes through unchanged.
    """
    if not text:
        return ""
    out = _SPACES.sub(" ", text).strip()
    out = _SPACE_BEFORE.sub(r"\1", out)
    out = _SPACE_AFTER.sub(r"\1", out)
    out = _POSSESSIVE.sub(r"\1\2", out)
    out = _QUOTES.sub(r'"\1"', out)
    out = _HYPHEN.sub(r"\1\2\3", out)
    return out
