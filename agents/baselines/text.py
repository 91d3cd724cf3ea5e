"""Small text helpers the scripted agents share (package-internal).

Contract: pure functions on strings, no state, never raise on ordinary ``str`` input.
"""

from __future__ import annotations

import re


def _norm(text: str) -> str:
    """Lower-case words of ``text`` separated by single spaces (punctuation dropped)."""
    return " ".join(re.findall(r"[0-9a-z]+", text.lower().replace("'s", "s")))


def _strip_paren(text: str) -> str:
    """``"Bob Babich (linebacker)"`` -> ``"Bob Babich"``; ``"Scott Dunlap (2)"`` -> ``"Scott Dunlap"``."""
    out = re.sub(r"\s*\([^()]*\)\s*", " ", text).strip()
    out = re.sub(r"[*†‡#^]+", "", out).strip()
    return out or text.strip()

