"""Steps 2-3 of the scorer, cell level: cast every cell (answer and gold alike) to the string the
later steps compare.

``default`` mode, :func:`clean_cell` (applied to answer *and* gold cells, so gold-as-answer is
always consistent):

- ``\\r\\n``/``\\r`` and ``<br>``/``<br/>`` become ``\\n``; HTML entities are unescaped;
- whole-cell markdown emphasis is removed (``**x**``, ``__x__``, ``*x*``, ``_x_``, ```x```, ``~~x~~``);
- outer whitespace is stripped;
- an integer written as a float (``19.0``, ``-3.00``) becomes the integer (``19``): the official
  scorer compares ``19`` and ``19.0`` as different strings when pandas typed the columns differently.

``widesearch`` mode reproduces what pandas does in the official scorer (``read_csv`` of the answer
and of the gold CSV, then ``astype(str)``), see :func:`widesearch_frame` and
:func:`widesearch_cast_columns`. Approximations: quoted fields are only unwrapped when a whole cell
is quoted; a row with more fields than the header is a parse error (pandas raises, or with exactly
one extra field silently shifts the columns into the index); very large integers stay integers.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
_FLOAT_INT_RE = re.compile(r"^([+-]?\d+)\.0+$")
_EMPHASIS = ("**", "__", "~~", "*", "_", "`")

# pandas.read_csv's default NA strings: such cells become NaN, which astype(str) writes "nan".
PANDAS_NA = frozenset(
    "#N/A,#N/A N/A,#NA,-1.#IND,-1.#QNAN,-NaN,-nan,1.#IND,1.#QNAN,<NA>,N/A,NA,NULL,NaN,None,n/a,nan,null".split(
        ","
    )
) | {""}
_PD_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")
_PD_FLOAT_RE = re.compile(
    r"^\s*[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|Inf|INF|infinity|Infinity)\s*$"
)
_PD_BOOL = {
    "True": "True",
    "TRUE": "True",
    "true": "True",
    "False": "False",
    "FALSE": "False",
    "false": "False",
}


class TableParseError(ValueError):
    """The answer's table cannot be read the way the official scorer reads it (widesearch mode)."""


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


# -------------------------------------------------------------------------------- widesearch


def _unmangle_name(name: str, seen: dict[str, int]) -> str:
    # pandas renames duplicate headers "x", "x" to "x", "x.1".
    count = seen.get(name, 0)
    seen[name] = count + 1
    return name if count == 0 else f"{name}.{count}"


def widesearch_frame(fields: list[list[str]]) -> tuple[list[str], list[list[str | None]]]:
    """Columns and rows as ``pd.read_csv(sep="|")`` builds them from the official extractor's fields.

    Empty header fields become ``Unnamed: i`` columns, which the official code drops; duplicate
    names are mangled (``x.1``); short rows are padded with NaN (``None``); NA strings are NaN; a
    whole-cell ``"quoted"`` field is unwrapped. Raises :class:`TableParseError` for a row with more
    fields than the header.
    """
    if not fields:
        raise TableParseError("no columns to parse")
    header = fields[0]
    width = len(header)
    seen: dict[str, int] = {}
    names = [_unmangle_name(_unquote(h) or f"Unnamed: {i}", seen) for i, h in enumerate(header)]
    keep = [i for i, name in enumerate(names) if not name.startswith("Unnamed")]
    rows: list[list[str | None]] = []
    for line_no, row in enumerate(fields[1:], start=2):
        if len(row) > width:
            raise TableParseError(f"Expected {width} fields in line {line_no}, saw {len(row)}")
        padded = [_na(_unquote(c)) for c in row] + [None] * (width - len(row))
        rows.append([padded[i] for i in keep])
    return [names[i] for i in keep], rows


def _unquote(cell: str) -> str:
    if len(cell) >= 2 and cell[0] == '"' and cell[-1] == '"':
        return cell[1:-1].replace('""', '"')
    return cell


def _na(cell: str | None) -> str | None:
    return None if cell is None or cell in PANDAS_NA else cell


def gold_na(cell: str) -> str | None:
    """A gold CSV cell as pandas reads it: NA strings (and empty cells) are NaN (``None``)."""
    return _na(cell)


def _dtype(values: list[str | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "float"  # an all-NaN column is float64
    has_na = len(present) != len(values)
    if not has_na and all(v in _PD_BOOL for v in present):
        return "bool"
    if all(_PD_INT_RE.match(v) for v in present):
        return "float" if has_na else "int"
    if all(_PD_FLOAT_RE.match(v) for v in present):
        return "float"
    return "object"


def _as_str(value: str | None, dtype: str) -> str:
    if value is None:
        return "nan"
    if dtype == "int":
        return str(int(value))
    if dtype == "float":
        return repr(float(value))
    if dtype == "bool":
        return _PD_BOOL[value]
    return value


def widesearch_cast_columns(
    answer: list[str | None], gold: list[str | None]
) -> tuple[list[str], list[str]]:
    """``astype(str)`` of one answer column and the matching gold column, as the official scorer does.

    Each column gets pandas' dtype (bool, int, float, object); if one side is int and the other
    float, the int side is made float first (the official scorer's only reconciliation), so ``19``
    and ``19.0`` still differ when, say, the answer column is object because one cell is text.
    """
    a_type, g_type = _dtype(answer), _dtype(gold)
    if {a_type, g_type} == {"int", "float"}:
        a_type = g_type = "float"
    return [_as_str(v, a_type) for v in answer], [_as_str(v, g_type) for v in gold]
