"""Canonical Wikipedia URLs.

Every form an agent (or a corpus file) may use for one English Wikipedia article maps to one key,
``https://en.wikipedia.org/wiki/<Title>``, where ``<Title>`` uses underscores for spaces, is
percent-decoded, and has its first letter upper-cased (MediaWiki's own rule). Accepted forms:

- ``/wiki/X`` and ``wiki/X`` paths (OTT-QA links),
- ``https://en.wikipedia.org/wiki/X`` (also http, ``en.m.wikipedia.org``, no scheme),
- ``https://en.wikipedia.org/w/index.php?title=X&...``,
- a bare title with spaces (``"Alan Turing"``) when ``allow_bare_title`` is true,
- fragments (``#History``) and trailing slashes are dropped.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

WIKI_PREFIX = "https://en.wikipedia.org/wiki/"
_WIKI_HOSTS = {"en.wikipedia.org", "en.m.wikipedia.org", "wikipedia.org", "www.wikipedia.org"}


class NotWikipediaURL(ValueError):
    """Raised for a URL that does not name an English Wikipedia article."""


_WHITESPACE = re.compile(r"\s+")


def _is_normalized(title: str) -> bool:
    """True when ``normalize_title`` would return ``title`` unchanged (cheap string tests only)."""
    return (
        title != ""
        and "%" not in title
        and " " not in title
        and "__" not in title
        and title[0] != "_"
        and title[-1] != "_"
        and title.isprintable()  # False for any whitespace but " "
        and title[0] == title[0].upper()
    )


def normalize_title(title: str) -> str:
    """Return MediaWiki's canonical form of an article title (underscores, first letter upper)."""
    if _is_normalized(title):
        # Corpus files hold hundreds of thousands of links that are canonical already.
        return title
    title = unquote(title).replace("_", " ")
    title = _WHITESPACE.sub(" ", title).strip()
    if not title:
        return ""
    title = title[0].upper() + title[1:]
    return title.replace(" ", "_")


def title_to_url(title: str) -> str:
    """``"alan turing"`` -> ``"https://en.wikipedia.org/wiki/Alan_turing"``."""
    normalized = normalize_title(title)
    if not normalized:
        raise NotWikipediaURL("empty title")
    return WIKI_PREFIX + normalized


def title_variants(key: str) -> list[str]:
    """Canonical keys that differ from canonical ``key`` only in letter case, likeliest first.

    MediaWiki titles are case-sensitive after the first letter, but an agent often types a title
    in the wrong case ("jim ryun", "Jim ryun"); these are the spellings a page is usually stored
    under: the key itself, every word capitalised, and all lower case after the first letter.
    """
    title = key[len(WIKI_PREFIX):] if key.startswith(WIKI_PREFIX) else key
    words = title.split("_")
    forms = [
        title,
        "_".join(w[:1].upper() + w[1:] for w in words),
        title[:1] + title[1:].lower(),
        "_".join(w[:1].upper() + w[1:].lower() for w in words),
    ]
    return [WIKI_PREFIX + f for f in dict.fromkeys(forms) if f]


def url_to_title(url: str) -> str:
    """Human-readable title of a canonical URL (underscores become spaces)."""
    return canonical_url(url)[len(WIKI_PREFIX):].replace("_", " ")


def canonical_url(url: str, *, allow_bare_title: bool = False) -> str:
    """Map any accepted form of a Wikipedia article URL to its canonical key.

    Raises:
        NotWikipediaURL: the text is empty, names another site, or has no article title.
    """
    if not isinstance(url, str):
        raise NotWikipediaURL(f"expected a string URL, got {type(url).__name__}")
    text = url.strip()
    if not text:
        raise NotWikipediaURL("empty URL")
    if text.startswith("/wiki/") or text.startswith("wiki/"):
        return title_to_url(text.split("wiki/", 1)[1].split("#", 1)[0])
    has_scheme = "://" in text
    looks_like_host = text.split("/", 1)[0].lower() in _WIKI_HOSTS
    if not has_scheme and not looks_like_host:
        if allow_bare_title and "/" not in text.split("#", 1)[0]:
            return title_to_url(text.split("#", 1)[0])
        raise NotWikipediaURL(f"not a Wikipedia URL: {text[:200]!r}")
    parts = urlsplit(text if has_scheme else "https://" + text)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or host not in _WIKI_HOSTS:
        raise NotWikipediaURL(f"not an English Wikipedia URL: {text[:200]!r}")
    path = parts.path
    if path.startswith("/wiki/"):
        return title_to_url(path[len("/wiki/"):].rstrip("/"))
    if path in ("/w/index.php", "/index.php"):
        titles = parse_qs(parts.query).get("title")
        if titles and titles[0].strip():
            return title_to_url(titles[0])
    raise NotWikipediaURL(f"no article title in URL: {text[:200]!r}")
