"""``compat="widesearch"``: the parts of the official WideSearch scorer that only its libraries
reproduce exactly: pandas for reading tables and typing cells, ``dateparser`` for dates.

The official code (ByteDance-Seed/WideSearch ``src/evaluation/``) reads the answer's table with
``pd.read_csv(sep="|")`` and the gold CSV with ``pd.read_csv``, then casts every required column
with ``astype(str)``; what that does to a cell is pandas' behaviour, not a rule that can be restated
briefly (a field that *starts* with ``"`` is a quoted field, so ``"18"Wuliangye`` reads
``18Wuliangye``; NA strings become ``nan``; an int column writes ``19``, a float one ``19.0``, a
column with one NaN is float). So this module calls pandas the same way. Likewise ``norm_date`` and
``date_near`` call ``dateparser.parse(text, settings={"PREFER_DAY_OF_MONTH": "first"})``.

Both libraries are the optional extra ``[widesearch]``; without them, compat mode raises
``MissingExtraError`` (an ImportError) naming it. Default mode never imports them.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from functools import lru_cache
from typing import Any, Sequence

from wideseek_env.errors import require

class OfficialParseError(ValueError):
    """pandas could not read the answer's table (the official scorer reports an evaluator error)."""


def _pandas():
    return require("pandas", "widesearch")


@lru_cache(maxsize=1)
def _dateparser():
    return require("dateparser", "widesearch")


def norm_column(name: str) -> str:
    """The official column-name normalisation: strip, lower-case, delete U+0020 spaces."""
    return str(name).strip().lower().replace(" ", "")


def answer_frame(fields: list[list[str]]) -> Any:
    """The answer's DataFrame as the official extractor builds it from its raw-split fields
    (``markdown.extract_table_widesearch``): the rows joined by ``|``, read by ``read_csv(sep="|")``,
    ``Unnamed`` columns dropped, names normalised with :func:`norm_column`.

    Raises :class:`OfficialParseError` where pandas raises (e.g. a row with too many fields)."""
    pd = _pandas()
    text = "\n".join("|".join(row) for row in fields)
    try:
        frame = pd.read_csv(io.StringIO(text), sep="|")
    except Exception as exc:  # pandas' own parser errors, whatever their class
        raise OfficialParseError(f"{type(exc).__name__}: {exc}") from None
    frame = frame.loc[:, ~frame.columns.str.startswith("Unnamed")]
    frame.columns = [norm_column(c) for c in frame.columns]
    return frame


def gold_frame(rows: Sequence[dict[str, str]], columns: Sequence[str]) -> Any:
    """The gold table as ``pd.read_csv`` of its CSV reads it (``columns``: the required ones).

    The task's gold cells are the CSV's fields as the ``csv`` module read them; writing them back
    with ``csv`` and reading with pandas gives pandas the same fields to type."""
    pd = _pandas()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    buffer.seek(0)
    return pd.read_csv(buffer, dtype=None)


def as_strings(frame: Any, column: str) -> list[str]:
    """``frame[column].astype(str)`` as a list (the official cast of every required column)."""
    return frame[column].astype(str).tolist()


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
