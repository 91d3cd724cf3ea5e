"""``compat="widesearch"``: the part of the official WideSearch scorer that only its library
reproduces exactly: pandas for reading tables and typing cells (``dateparser`` for dates is
:mod:`wideseek_env.table.official_dates`, since the ``norm_date`` preprocess needs it too).

The official code (ByteDance-Seed/WideSearch ``src/evaluation/``) reads the answer's table with
``pd.read_csv(sep="|")`` and the gold CSV with ``pd.read_csv``, then casts every required column
with ``astype(str)``; what that does to a cell is pandas' behaviour, not a rule that can be restated
briefly (a field that *starts* with ``"`` is a quoted field, so ``"18"Wuliangye`` reads
``18Wuliangye``; NA strings become ``nan``; an int column writes ``19``, a float one ``19.0``, a
column with one NaN is float). So this module calls pandas the same way.

pandas is in the optional extra ``[widesearch]``; without it, compat mode raises
``MissingExtraError`` (an ImportError) naming it. Default mode never imports it.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Sequence

from wideseek_env.errors import require


class OfficialParseError(ValueError):
    """pandas could not read the answer's table (the official scorer reports an evaluator error)."""


def _pandas():
    return require("pandas", "widesearch")


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
