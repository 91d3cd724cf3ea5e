"""The ``access`` tool: read Wikipedia pages of the offline corpus by URL.

Arguments (the paper's): ``{"urls": [{"url": str, "info_to_extract": str}, ...]}``.

For each URL the tool returns the part of the page most relevant to ``info_to_extract``, within a
budget of ``page_chars`` characters (paper: 25,000): the whole page when it fits, else the best
BM25-scored chunks in page order with ``...`` at each omission, or, with ``mode="section"``, the best
matching ``## section`` whole. The selection itself lives in :mod:`wideseek_env.tools.page_selection`
(pure functions of text); this module is the tool protocol around it: arguments, lookup, suggestions,
summaries and the rendered tool message.

Batching: ``call_many`` looks up all URLs of all calls with one ``retriever.access_many`` (each
distinct page once).

Summarizer hook (the paper condenses pages with a summarizer model): ``summarizer`` is a callable
taking a list of ``(url, page_text, info_to_extract)`` triples, where ``page_text`` is the
relevance-selected text above, and returning one summary string per triple, in order. It is called
once per ``call_many`` with every found page of every call (so a policy can batch the generation).
The summary replaces the page text in the output. If it raises or returns the wrong number of
strings, the tool falls back to the page text and says so; it never raises.

Bad input never raises:

- arguments not an object, no ``urls``, ``urls`` not a list, or an empty list: the whole call
  answers ``Error: ...`` with the expected shape;
- leniency: an item that is a plain string is a URL with no ``info_to_extract``; a top-level
  ``{"url": ..., "info_to_extract": ...}`` is read as a one-URL list;
- more than ``max_urls`` URLs: the first ``max_urls`` are read, and a note says how many were
  dropped (the paper drops extras too);
- an item that is not an object, or has no string ``url``: that URL's block says ``Error: ...``;
- a URL that is not an English Wikipedia article URL: ``Error: ...`` saying only English Wikipedia
  pages are available, with the accepted form;
- a bare page title (``"Jim Ryun"``, ``"Jim_Ryun"``, ``"jim Ryun"``) is read as
  ``https://en.wikipedia.org/wiki/<Title>``;
- a URL or title that finds no page as written is looked up again with the retriever's optional
  ``candidates_many`` (other letter case, same-named pages ``Title (...)``): exactly one candidate
  is read in its place; several are listed for the agent to choose from;
- a Wikipedia URL that is not in the corpus (and has no candidates): "No useful information is
  found under this URL." (the paper's text); with ``suggestions=N`` (off by default, so the paper's
  behaviour stays the default) the text also lists up to N pages whose titles best match the missing
  title, found by the retriever's optional ``similar_titles_many`` (title words within one typo) and
  a search of the index for the title's words (a misspelt or half-remembered URL then costs a turn,
  not the episode);
- ``info_to_extract`` missing, empty or not a string: the page is returned from its top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Callable, Sequence

from wideseek_env.corpus.types import Page, Retriever
from wideseek_env.corpus.urls import NotWikipediaURL, canonical_url, url_to_title
from wideseek_env.tools.base import error_text
from wideseek_env.tools.page_selection import select_relevant, select_section

NOT_FOUND_TEXT = "No useful information is found under this URL."

Summarizer = Callable[[list[tuple[str, str, str]]], list[str]]

_USAGE = 'expected {"urls": [{"url": "https://en.wikipedia.org/wiki/Title", "info_to_extract": "what to look for"}, ...]}'


def rank_by_title(title: str, urls: Sequence[str]) -> list[str]:
    """The distinct non-empty string ``urls``, closest page title to ``title`` first (``difflib`` ratio,
    ignoring case; ties keep their order)."""
    pool = list(dict.fromkeys(u for u in urls if isinstance(u, str) and u))
    wanted = title.lower()
    return sorted(pool, key=lambda url: -SequenceMatcher(None, wanted, url_to_title(url).lower()).ratio())


@dataclass
class _Request:
    url: str = ""
    info: str = ""
    key: str | None = None  # canonical URL, when valid
    bare: bool = False  # given as a bare title, not a URL
    error: str | None = None
    notes: list[str] = field(default_factory=list)


class AccessTool:
    """Read pages of the offline Wikipedia by URL; see the module doc for everything it does.

    Args:
        retriever: any ``Retriever``.
        max_urls: URLs read per call (paper: 5); extras are dropped with a note.
        page_chars: budget of page text per URL (paper: 25,000 characters).
        summarizer: optional batched hook ``[(url, page_text, info_to_extract)] -> [summary]``.
        mode: ``"relevant"`` (the module doc's selection) or ``"section"`` (:func:`select_section`: the best
            matching ``## section`` of the page, whole).
        suggestions: on a URL not in the corpus, list up to this many pages with the nearest titles
            (``retriever.similar_titles_many`` where it exists, and ``search_many`` over the title's
            words); 0 (default): the paper's bare text.
    """

    name = "access"

    def __init__(
        self,
        retriever: Retriever,
        *,
        max_urls: int = 5,
        page_chars: int = 25000,
        summarizer: Summarizer | None = None,
        mode: str = "relevant",
        suggestions: int = 0,
    ) -> None:
        if mode not in ("relevant", "section"):
            raise ValueError(f"mode must be 'relevant' or 'section', got {mode!r}")
        if not isinstance(suggestions, int) or suggestions < 0:
            raise ValueError(f"suggestions must be an int >= 0, got {suggestions!r}")
        self.mode = mode
        self.suggestions = suggestions
        self.retriever = retriever
        self.max_urls = max_urls
        self.page_chars = page_chars
        self.summarizer = summarizer
        self.description = (
            "Read pages of an offline copy of English Wikipedia. Give one or more page URLs (at most "
            f"{max_urls} per call; extra ones are dropped), typically from search results, each with "
            "the information to extract. For each URL you get the parts of the page most relevant "
            f"to that information (up to {page_chars} characters"
            + ("; condensed by a summarizer" if summarizer else "")
            + "). Only English Wikipedia pages work: article URLs (https://en.wikipedia.org/wiki/Title) "
            "or page titles; a title that names several pages gets the list to choose from."
        )
        self.parameters: dict[str, Any] = {
            "type": "object",
            "properties": {
                "urls": {
                    "type": "array",
                    "description": f"Pages to read in parallel (1 to {max_urls}; extras are dropped).",
                    "minItems": 1,
                    "maxItems": max_urls,
                    "items": {
                        "type": "object",
                        "properties": {
                            "url": {
                                "type": "string",
                                "description": (
                                    "An English Wikipedia article URL, e.g. "
                                    "https://en.wikipedia.org/wiki/Jim_Ryun, or a page title"
                                ),
                            },
                            "info_to_extract": {
                                "type": "string",
                                "description": (
                                    "What to look for on the page, e.g. 'date of birth and Olympic "
                                    "medals'; the most relevant parts of the page are returned."
                                ),
                            },
                        },
                        "required": ["url", "info_to_extract"],
                    },
                }
            },
            "required": ["urls"],
        }

    # -- argument parsing --------------------------------------------------------------------

    def _parse(self, arguments: Any) -> tuple[list[_Request], list[str]] | str:
        if not isinstance(arguments, dict):
            return error_text(f"the access arguments must be a JSON object; {_USAGE}")
        if "urls" not in arguments and isinstance(arguments.get("url"), str):
            arguments = {"urls": [dict(arguments)]}
        items = arguments.get("urls")
        if items is None:
            return error_text(f'missing "urls"; {_USAGE}')
        if isinstance(items, (str, dict)):
            items = [items]
        if not isinstance(items, list):
            return error_text(f'"urls" must be a list; {_USAGE}')
        if not items:
            return error_text(f'"urls" is empty; {_USAGE}')
        notes = []
        if len(items) > self.max_urls:
            notes.append(
                f"Note: only the first {self.max_urls} URLs were read; "
                f"{len(items) - self.max_urls} more were dropped."
            )
            items = items[: self.max_urls]
        return [self._parse_item(item) for item in items], notes

    def _parse_item(self, item: Any) -> _Request:
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict):
            return _Request(error='each entry must be an object like {"url": ..., "info_to_extract": ...}')
        url = item.get("url")
        if not isinstance(url, str) or not url.strip():
            return _Request(error='missing "url" (a string)')
        url = url.strip()
        info = item.get("info_to_extract")
        request = _Request(url=url[:2000], info=info.strip()[:2000] if isinstance(info, str) else "")
        try:
            if "index.php/" in url:
                url = url.replace("index.php/", "index.php?title=", 1)
            request.key = canonical_url(url)
        except NotWikipediaURL:
            pass
        if request.key is None and "://" not in url and len(url) <= 300:
            try:  # a bare title; a path or any other site still fails
                request.key = canonical_url(url, allow_bare_title=True)
                request.bare = True
            except NotWikipediaURL:
                pass
        if request.key is None:
            request.error = (
                f"{request.url[:300]!r} is not an English Wikipedia article URL. Only English Wikipedia "
                "pages are available in this offline corpus; use URLs like "
                "https://en.wikipedia.org/wiki/Title (e.g. from search results)."
            )
        return request

    # -- Tool --------------------------------------------------------------------------------

    def call_many(self, arguments: Sequence[Any]) -> list[str]:
        parsed = [self._parse(a) for a in arguments]
        keys: list[str] = []
        for p in parsed:
            if not isinstance(p, str):
                keys.extend(r.key for r in p[0] if r.key is not None)
        unique = list(dict.fromkeys(keys))
        try:
            pages = dict(zip(unique, self.retriever.access_many(unique))) if unique else {}
        except Exception as exc:
            message = error_text(f"access is unavailable ({type(exc).__name__}: {exc})")
            return [p if isinstance(p, str) else message for p in parsed]
        several = self._resolve_missing(pages)
        nearest = self._nearest_titles([k for k, page in pages.items() if page is None and k not in several])

        # Select the relevant text of every found page, then summarise all of them at once.
        selected: dict[tuple[int, int], tuple[Page, str]] = {}
        for ci, p in enumerate(parsed):
            if isinstance(p, str):
                continue
            for ui, request in enumerate(p[0]):
                page = pages.get(request.key) if request.key else None
                if page is not None:
                    select = select_section if self.mode == "section" else select_relevant
                    selected[(ci, ui)] = (page, select(page.text, request.info, self.page_chars))
        summaries: dict[tuple[int, int], str] = {}
        summary_note = ""
        if self.summarizer is not None and selected:
            slots = list(selected)
            triples = [
                (selected[s][0].url, selected[s][1], parsed[s[0]][0][s[1]].info) for s in slots
            ]
            try:
                result = self.summarizer(triples)
                if not isinstance(result, (list, tuple)) or len(result) != len(triples):
                    raise ValueError(f"returned {type(result).__name__} of the wrong length")
                summaries = {s: str(text) for s, text in zip(slots, result)}
            except Exception as exc:
                summary_note = (
                    f"Note: the summarizer failed ({type(exc).__name__}: {str(exc)[:200]}); "
                    "showing the page text instead.\n"
                )

        out: list[str] = []
        for ci, p in enumerate(parsed):
            if isinstance(p, str):
                out.append(p)
                continue
            requests, notes = p
            blocks = list(notes)
            for ui, request in enumerate(requests):
                blocks.append(self._render(ci, ui, request, selected, summaries, summary_note, several,
                                           nearest))
            out.append("\n\n".join(blocks))
        return out

    def _resolve_missing(self, pages: dict[str, Page | None]) -> dict[str, list[str]]:
        """Fill in ``pages`` for keys with exactly one candidate; return the keys with several.

        A retriever without ``candidates_many``, or one that fails, leaves the keys unfound."""
        finder = getattr(self.retriever, "candidates_many", None)
        missing = [key for key, page in pages.items() if page is None]
        if finder is None or not missing:
            return {}
        try:
            found = dict(zip(missing, finder(missing)))
            single = {key: urls[0] for key, urls in found.items() if len(urls) == 1}
            targets = list(dict.fromkeys(single.values()))
            resolved = dict(zip(targets, self.retriever.access_many(targets))) if targets else {}
        except Exception:  # a lookup that only helps must never cost the agent its answer
            return {}
        for key, target in single.items():
            pages[key] = resolved.get(target)
        return {key: urls for key, urls in found.items() if len(urls) > 1}

    def _nearest_titles(self, keys: list[str]) -> dict[str, list[str]]:
        """For each missing key, up to ``suggestions`` URLs of pages whose titles best match its title.

        The pool: the retriever's optional ``similar_titles_many`` (titles within one typo a word),
        then one ``search_many`` for all keys, each query the title's words (hits are passages, so a
        page enters once). The pool is ranked by how closely each page's title matches the missing
        one as a string (``difflib``), since a text search alone favours pages that only mention
        those words. A lookup that fails adds nothing (it only helps)."""
        if not self.suggestions or not keys:
            return {}
        titles = [url_to_title(k) for k in keys]
        limit = 10 * self.suggestions
        pools: list[list[str]] = [[] for _ in keys]
        similar = getattr(self.retriever, "similar_titles_many", None)
        try:
            if similar is not None:
                for pool, urls in zip(pools, similar(titles, limit)):
                    pool.extend(urls)
        except Exception:
            pass
        try:
            for pool, hits in zip(pools, self.retriever.search_many(titles, k=limit)):
                pool.extend(h.url for h in hits)
        except Exception:
            pass
        ranked = {key: rank_by_title(title, pool)[: self.suggestions] for key, title, pool in zip(keys, titles, pools)}
        return {key: urls for key, urls in ranked.items() if urls}

    def _render(self, ci, ui, request: _Request, selected, summaries, summary_note, several,
                nearest=None) -> str:
        head = f"### URL {ui + 1}: {request.url}" if request.url else f"### URL {ui + 1}"
        if request.error is not None:
            return head + "\n" + error_text(request.error)
        found = selected.get((ci, ui))
        if found is None and request.key in several:
            choices = "\n".join(f"- {url}" for url in several[request.key])
            return (f"{head}\n{request.url[:300]!r} names several pages; access the one you mean:\n"
                    + choices)
        if found is None and (nearest or {}).get(request.key):
            choices = "\n".join(f"- {url}" for url in nearest[request.key])
            return f"{head}\n{NOT_FOUND_TEXT} Pages with similar titles:\n{choices}"
        if found is None and request.bare:
            return (f"{head}\nNo page titled {request.url[:300]!r} is in this offline corpus; search "
                    "for it, or give a URL like https://en.wikipedia.org/wiki/Title.")
        if found is None:
            return head + "\n" + NOT_FOUND_TEXT
        page, text = found
        lines = [head, f"Title: {page.title}"]
        if (ci, ui) in summaries:
            about = f' (about "{request.info}")' if request.info else ""
            lines.append(f"Summary{about}:\n{summaries[(ci, ui)]}")
            return "\n".join(lines)
        if summary_note:
            lines.append(summary_note.rstrip("\n"))
        if len(text) < len(page.text) and self.mode == "section":
            lines.append("Content (the section that best matches your request):")
        elif len(text) < len(page.text):
            about = f' to "{request.info}"' if request.info else ""
            lines.append(f'Content (the parts of the page most relevant{about}; "..." marks omitted parts):')
        else:
            lines.append("Content:")
        lines.append(text)
        return "\n".join(lines)

    def __call__(self, arguments: Any) -> str:
        return self.call_many([arguments])[0]
