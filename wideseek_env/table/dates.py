"""A small, strict date parser for ``norm_date`` and ``date_near`` (instead of ``dateparser``).

The whole cell must be a date (after cleaning); otherwise :func:`parse_date` returns ``None``, so
"incumbent", "NA" or "2024年年底在任" stay text. Cleaning: NFKC (full-width digits), zero-width
characters, ``*`` and surrounding punctuation removed, lower-cased. Accepted forms:

- ISO ``1947-04-29`` (a trailing time such as ``T10:00`` or `` 10:00:00`` is ignored),
  ``1947/04/29``, ``1947.4.29``;
- year and month ``1947-04``, ``1947/4`` -> the 1st of the month; a bare year ``1947`` -> 1 January
  (WideSearch's ``dateparser`` would fill in today's month: not reproducible);
- day-month-year with numbers: ``4/29/1947`` is month/day/year (US) unless the first number is over
  12 (``29/4/1947``); ``29.04.1947`` and ``29-04-1947`` are day.month.year unless the second number
  is over 12;
- month names in English, full or abbreviated, with or without a dot, in any order with the day and
  year, optional weekday, ordinal suffixes and "of": ``April 29, 1947``, ``29 April 1947``,
  ``Apr. 29 1947``, ``29-Apr-1947``, ``Tuesday, 29th of April 1947``; ``April 1947`` -> the 1st;
- Chinese ``1947年4月29日`` (or ``号``), ``1947年4月``, ``1947年``.

Two-digit years and relative dates are not parsed.
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_WEEKDAYS = {
    "monday", "mon", "tuesday", "tue", "tues", "wednesday", "wed", "thursday", "thu", "thur",
    "thurs", "friday", "fri", "saturday", "sat", "sunday", "sun",
}  # fmt: skip
_FILLER = {"st", "nd", "rd", "th", "of", "the"}

_ZERO_WIDTH_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_YMD_RE = re.compile(
    r"^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?:[t ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?)?$"
)
_YM_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})$")
_Y_RE = re.compile(r"^(\d{4})$")
_DMY_RE = re.compile(r"^(\d{1,2})([-/.])(\d{1,2})\2(\d{4})$")
_CJK_RE = re.compile(r"^(\d{4})年(?:(\d{1,2})月(?:(\d{1,2})[日号])?)?$")
_TOKEN_RE = re.compile(r"[a-z]+|\d+")


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", str(text))
    text = _ZERO_WIDTH_RE.sub("", text).replace("*", "")
    text = " ".join(text.split()).lower()
    return text.strip(" .,;:()[]")


def _date(year: int, month: int, day: int) -> _dt.date | None:
    try:
        return _dt.date(year, month, day)
    except ValueError:
        return None


def parse_date(text: str) -> _dt.date | None:
    """The date the whole of ``text`` names (forms in the module docstring), else ``None``."""
    s = _clean(text)
    if not s or len(s) > 64:
        return None
    if m := _YMD_RE.match(s):
        return _date(int(m.group(1)), int(m.group(3)), int(m.group(4)))
    if m := _YM_RE.match(s):
        return _date(int(m.group(1)), int(m.group(2)), 1)
    if m := _Y_RE.match(s):
        return _date(int(m.group(1)), 1, 1)
    if m := _DMY_RE.match(s):
        first, sep, second, year = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
        if sep == "/":
            month, day = (first, second) if first <= 12 else (second, first)
        else:
            day, month = (first, second) if second <= 12 else (second, first)
        return _date(year, month, day)
    if m := _CJK_RE.match(s.replace(" ", "")):
        return _date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
    return _parse_named_month(s)


def _parse_named_month(s: str) -> _dt.date | None:
    # Only letters, digits and separators may appear: "6pm (bst)" or "approx." make it text.
    if re.search(r"[^a-z0-9 ,./-]", s):
        return None
    month = year = day = None
    for token in _TOKEN_RE.findall(s):
        if token.isdigit():
            if len(token) == 4 and year is None:
                year = int(token)
            elif len(token) <= 2 and day is None:
                day = int(token)
            else:
                return None
        elif token in _MONTHS and month is None:
            month = _MONTHS[token]
        elif token in _WEEKDAYS or token in _FILLER:
            continue
        else:
            return None
    if month is None or year is None:
        return None
    return _date(year, month, day or 1)
