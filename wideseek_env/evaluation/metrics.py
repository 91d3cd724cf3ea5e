"""Step 6 of the scorer: the deterministic cell metrics. Each compares one preprocessed answer cell
with one preprocessed gold cell and returns 1.0 or 0.0. (``llm_judge`` is a judge's job:
:mod:`.judges`.)

- ``exact_match``: case-insensitive equality.
- ``number_near``: ``|r - t| <= |t| * tolerance``; a trailing ``%`` divides by 100; two values that
  are not numbers score 1 only if they are equal strings (``"NULL"`` and ``"NULL"``).
  default adds a relative slack of 1e-9 so that float rounding does not fail a value exactly at the
  boundary (``1.1`` vs ``1.0`` at 10%).
- ``date_near``: both parse as dates and lie within ``tolerance`` days (31). default parses with
  :func:`wideseek_env.table.dates.parse_date` and, if neither parses, scores 1 only if their
  ``norm_str`` forms are equal. widesearch is the official function
  (:mod:`wideseek_env.table.official_dates`: ``dateparser``, 31 days, 1 when neither parses
  whatever the texts: "vacant" matches "incumbent"). If only one parses, 0.
- ``url_match``: the sets of hosts of the ``http(s)://`` URLs in each cell are equal and non-empty.
  If neither has a URL, widesearch scores 1 (both sets empty: the official quirk) and default
  compares the ``norm_str`` forms. default also reads bare domains (``harvard.edu/x``) and compares
  hosts case-insensitively without a leading ``www.`` and without port or user info.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from wideseek_env.table import official_dates
from wideseek_env.table.dates import parse_date
from wideseek_env.table.preprocess import norm_str

# The official pattern's character set: "!", the ASCII range "$".."_" (digits, capitals, most
# punctuation) and lower-case letters. Spaces, quotes, "|", "{}" and non-ASCII end a URL.
_URL_RE = re.compile(r"https?://[!$-_a-z]+")
_BARE_HOST_RE = re.compile(
    r"(?:(?<=\s)|^)(?:https?://)?((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,})(?::\d+)?(?=[/?#\s]|$)",
    re.IGNORECASE,
)


def exact_match(response: str, target: str, *, compat: str = "default") -> float:
    return 1.0 if str(response).lower() == str(target).lower() else 0.0


def _to_number(text: str) -> float | None:
    text = str(text)
    try:
        if "%" in text:
            return float(text.replace("%", "")) / 100.0
        return float(text)
    except (TypeError, ValueError):
        return None


def number_near(
    response: str, target: str, tolerance: float = 0.05, *, compat: str = "default"
) -> float:
    r, t = _to_number(response), _to_number(target)
    if r is None or t is None:
        return 1.0 if r is None and t is None and str(response) == str(target) else 0.0
    allowed = abs(t) * tolerance
    if compat != "widesearch":
        allowed += 1e-9 * max(abs(t), 1.0)
    return 1.0 if abs(r - t) <= allowed else 0.0


def date_near(response: str, target: str, tolerance: float = 31.0, *, compat: str = "default") -> float:
    if compat == "widesearch":  # dateparser and a fixed 31 days, as the official scorer
        return official_dates.date_near(response, target)
    r, t = parse_date(response), parse_date(target)
    if r is None and t is None:
        if compat == "widesearch":
            return 1.0
        return 1.0 if norm_str(response) == norm_str(target) else 0.0
    if r is None or t is None:
        return 0.0
    return 1.0 if abs((r - t).days) <= tolerance else 0.0


def _official_host(url: str) -> str:
    try:
        return urlsplit(url).netloc
    except ValueError:
        rest = url.split("://", 1)[-1]
        return rest.split("/", 1)[0].rsplit("@", 1)[-1]


def _clean_host(host: str) -> str:
    host = host.rsplit("@", 1)[-1].split(":", 1)[0].lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def url_hosts(text: str, compat: str = "default") -> set[str]:
    """The hosts of the URLs in ``text`` (default mode also reads bare domains)."""
    text = str(text)
    urls = _URL_RE.findall(text)
    if compat == "widesearch":
        return {h for h in (_official_host(u) for u in urls) if h}
    hosts = {_clean_host(_official_host(u)) for u in urls}
    hosts.update(_clean_host(h) for h in _BARE_HOST_RE.findall(text))
    return {h for h in hosts if h}


def url_match(response: str, target: str, *, compat: str = "default") -> float:
    r_hosts, t_hosts = url_hosts(response, compat), url_hosts(target, compat)
    if r_hosts and t_hosts:
        return 1.0 if r_hosts == t_hosts else 0.0
    if not r_hosts and not t_hosts:
        if compat == "widesearch":
            return (
                1.0 if set(_URL_RE.findall(str(response))) == set(_URL_RE.findall(str(target))) else 0.0
            )
        return 1.0 if norm_str(response) == norm_str(target) else 0.0
    return 0.0


def score_cell(metric: str, response: str, target: str, tolerance: float, compat: str) -> float:
    """Dispatch one deterministic metric (``tolerance`` is ignored by those without one)."""
    if metric == "exact_match":
        return exact_match(response, target, compat=compat)
    if metric == "number_near":
        return number_near(response, target, tolerance, compat=compat)
    if metric == "date_near":
        return date_near(response, target, tolerance, compat=compat)
    if metric == "url_match":
        return url_match(response, target, compat=compat)
    raise ValueError(f"{metric!r} is not a deterministic metric")
