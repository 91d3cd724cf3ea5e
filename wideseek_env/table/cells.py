"""Steps 2-3 of the scorer, cell level: cast every cell (answer and gold alike) to the string the
later steps compare.

``default`` mode, :func:`clean_cell` (applied to answer *and* gold cells, so gold-as-answer is
always consistent):

- ``\\r\\n``/``\\r`` and ``<br>``/``<br/>`` become ``\\n``; HTML entities are unescaped;
- whole-cell markdown emphasis is removed (``**x**``, ``__x__``, ``*x*``, ``_x_``, ```x```, ``~~x~~``);
- outer whitespace is stripped;
- an integer written as a float (``19.0``, ``-3.00``) becomes the integer (``19``): the official
  scorer compares ``19`` and ``19.0`` as different strings when pandas typed the columns differently.

``widesearch`` mode casts cells with pandas itself, as the official scorer does: see
:mod:`wideseek_env.evaluation.official`.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
_FLOAT_INT_RE = re.compile(r"^([+-]?\d+)\.0+$")
_EMPHASIS = ("**", "__", "~~", "*", "_", "`")


# ----------------------------------------------------------------------------------- default


def clean_cell(value: object) -> str:
    """The default-mode cast of one cell (rules in the module docstring)."""
    return _clean_text("" if value is None else str(value))


@lru_cache(maxsize=1 << 16)  # gold cells are cleaned again at every sample of a task
def _clean_text(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "<" in text:
        text = _BR_RE.sub("\n", text)
    if "&" in text:
        text = html.unescape(text)
    text = text.strip()
    text = _strip_emphasis(text)
    if "." in text:
        match = _FLOAT_INT_RE.match(text)
        if match:
            text = match.group(1)
    return text


def _strip_emphasis(text: str) -> str:
    if not text or text[0] not in "*_~`" or text[-1] not in "*_~`":
        return text
    changed = True
    while changed and text:
        changed = False
        for mark in _EMPHASIS:
            n = len(mark)
            if len(text) > 2 * n and text.startswith(mark) and text.endswith(mark):
                inner = text[n:-n]
                # "*a* and *b*" is not one emphasised span.
                if mark in inner:
                    continue
                text = inner.strip()
                changed = True
                break
    return text
