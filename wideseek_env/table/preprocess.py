"""Step 5 of the scorer: the per-column preprocess functions (``norm_str``, ``extract_number``,
``norm_date``), applied to answer and gold cells alike before they are joined and compared.

Each takes the cell string and ``compat``:

- ``norm_str``: widesearch: lower-case, strip, delete spaces and ``*`` (exactly the official rule).
  default: also NFKC (full-width letters/digits/brackets fold to ASCII) and delete *every* whitespace
  character (newlines, tabs, no-break and zero-width spaces), not only U+0020.
- ``extract_number``: both: delete commas, then the first number, keeping a trailing ``%``, else
  ``"NULL"``. default: also NFKC and the Unicode minus sign, and the number is canonical
  (``19.50`` -> ``19.5``, ``19.0`` -> ``19``) so key columns of numbers join whatever the notation.
- ``norm_date``: both: the date as ``YYYY-MM-DD``, else the cell unchanged. widesearch: parsed by
  ``dateparser`` as the official scorer does (:mod:`.official_dates`); default: by the strict
  :func:`.dates.parse_date` (see :mod:`.dates` for the forms it accepts).
"""

from __future__ import annotations

import re
import unicodedata

from wideseek_env.table import official_dates
from wideseek_env.table.dates import parse_date

_NUMBER_RE = re.compile(r"[-+]?\d*\.\d+%?|[-+]?\d+\.?\d*%?")
_INVISIBLE_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


def norm_str(value: str, compat: str = "default") -> str:
    text = str(value)
    if compat == "widesearch":
        return text.lower().strip().replace(" ", "").replace("*", "")
    text = _INVISIBLE_RE.sub("", unicodedata.normalize("NFKC", text))
    return "".join(text.split()).lower().replace("*", "")


def extract_number(value: str, compat: str = "default") -> str:
    text = str(value)
    if compat != "widesearch":
        text = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    found = _NUMBER_RE.search(text.replace(",", ""))
    if found is None:
        return "NULL"
    number = found.group(0)
    return number if compat == "widesearch" else canonical_number(number)


def canonical_number(number: str) -> str:
    """``"+019.50%"`` -> ``"19.5%"``: no plus sign, no leading zeros, no trailing fraction zeros."""
    percent = number.endswith("%")
    body = number[:-1] if percent else number
    sign = "-" if body.startswith("-") else ""
    body = body.lstrip("+-")
    whole, _, fraction = body.partition(".")
    whole = whole.lstrip("0") or "0"
    fraction = fraction.rstrip("0")
    text = whole + ("." + fraction if fraction else "")
    if text == "0":
        sign = ""
    return sign + text + ("%" if percent else "")


def norm_date(value: str, compat: str = "default") -> str:
    if compat == "widesearch":
        return official_dates.norm_date(value)
    parsed = parse_date(value)
    return str(value) if parsed is None else parsed.isoformat()


PREPROCESSORS = {"norm_str": norm_str, "extract_number": extract_number, "norm_date": norm_date}


def preprocess(value: str, name: str | None, compat: str = "default") -> str:
    """Apply the named preprocess (``None``: the value unchanged)."""
    if name is None:
        return str(value)
    return PREPROCESSORS[name](value, compat)
