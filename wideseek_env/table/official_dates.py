"""Dates as the official WideSearch scorer reads them (``compat="widesearch"``): ``dateparser``.

The official code calls ``dateparser.parse(text, settings={"PREFER_DAY_OF_MONTH": "first"})`` in
its ``norm_date`` preprocess and its ``date_near`` metric; this module calls it the same way. Default
mode uses the strict, reproducible :mod:`wideseek_env.table.dates` instead and never imports
``dateparser``.

``dateparser`` is in the optional extra ``[widesearch]``; without it, the first call raises
``MissingExtraError`` (an ImportError) naming it. (The pandas side of compat mode, reading and
typing tables, is :mod:`wideseek_env.evaluation.official`.)
"""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache

from wideseek_env.errors import require


@lru_cache(maxsize=1)
def _dateparser():
    return require("dateparser", "widesearch")


@lru_cache(maxsize=1 << 14)
def parse_date(text: str) -> _dt.datetime | None:
    """``dateparser.parse`` as the official scorer calls it; None where it fails or raises.

    A date without a day is the 1st of the month; one without a month takes the current month
    (``dateparser``'s rule, so such scores can depend on the day they are computed)."""
    try:
        return _dateparser().parse(str(text), settings={"PREFER_DAY_OF_MONTH": "first"})
    except ImportError:
        raise
    except Exception:
        return None


def norm_date(value: str) -> str:
    """The official ``norm_date``: ``YYYY-MM-DD`` of the parsed date, else the cell unchanged."""
    parsed = parse_date(value)
    return str(value) if parsed is None else parsed.strftime("%Y-%m-%d")


def date_near(response: str, target: str) -> float:
    """The official ``date_near``: both unparsable -> 1; one unparsable -> 0; else within 31 days
    (``timedelta.days``, which floors: 12 hours before is day -1)."""
    r, t = parse_date(response), parse_date(target)
    if r is None or t is None:
        return 1.0 if r is None and t is None else 0.0
    try:
        return 1.0 if abs((r - t).days) <= 31 else 0.0
    except TypeError:  # one date with a time zone, one without: the official code raises here
        return 0.0
