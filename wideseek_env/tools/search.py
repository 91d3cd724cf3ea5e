"""The ``search`` tool: BM25 keyword search over the offline Wikipedia passages.

Arguments (the paper's): ``{"queries": [{"query": str, "count": int = 3}, ...]}``.

``call_many`` runs every query of every call in one batched ``retriever.search_many`` (with the
largest ``count`` asked for; each query's list is then cut to its own ``count``: rankings are
deterministic, so a prefix of a longer list is the shorter list).

Bad input never raises; what happens instead (an agent can act on every message):

- arguments that are not an object, no ``queries``, ``queries`` not a list, or an empty list: the
  whole call answers ``Error: ...`` with the expected shape;
- leniency: a list item that is a plain string is a query with the default count, and a top-level
  ``{"query": str, "count": int}`` is read as a one-query list;
- an item that is not an object, has no ``query``, a non-string or empty query: that query's block
  says ``Error: ...``; the other queries of the call still run;
- more than ``max_queries`` queries: the first ``max_queries`` run and a note says how many were
  dropped (the paper drops extras too);
- a query longer than ``max_query_chars`` characters is cut to that length, with a note;
- ``count`` missing or null: ``default_count``; a numeric string or an integral float is accepted;
  below 1 or above ``max_count``: clamped into range, with a note; not a number: default, with a note.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from wideseek_env.corpus.types import Hit, Retriever
from wideseek_env.tools.base import error_text

_USAGE = 'expected {"queries": [{"query": "keywords", "count": 3}, ...]}'


@dataclass
class _Query:
    text: str | None  # None: the item was invalid, ``error`` says why
    count: int
    notes: list[str]
    error: str | None = None


def _coerce_count(value: Any, default: int, lo: int, hi: int) -> tuple[int, str | None]:
    if value is None:
        return default, None
    if isinstance(value, bool):
        return default, f"count {value!r} is not a number; used {default}"
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    if number is None:
        return default, f"count {str(value)[:20]!r} is not a whole number; used {default}"
    if number < lo:
        return lo, f"count {number} is below {lo}; used {lo}"
    if number > hi:
        return hi, f"count {number} is above the maximum {hi}; used {hi}"
    return number, None


class SearchTool:
    """BM25 search over passages; see the module doc for argument handling.

    Args:
        retriever: any ``Retriever`` (local Tantivy or ``HTTPRetriever``).
        max_queries: queries run per call (paper: 5); extras are dropped with a note.
        default_count: hits per query when ``count`` is not given (paper: 3).
        max_count: the largest ``count`` honoured (larger ones are clamped, with a note).
        snippet_chars: each hit's text is cut to this many characters (paper: 5,000).
        max_query_chars: a longer query is cut to this many characters, with a note.
    """

    name = "search"

    def __init__(
        self,
        retriever: Retriever,
        *,
        max_queries: int = 5,
        default_count: int = 3,
        max_count: int = 10,
        snippet_chars: int = 5000,
        max_query_chars: int = 500,
    ) -> None:
        if not 1 <= default_count <= max_count:
            raise ValueError("need 1 <= default_count <= max_count")
        self.retriever = retriever
        self.max_queries = max_queries
        self.default_count = default_count
        self.max_count = max_count
        self.snippet_chars = snippet_chars
        self.max_query_chars = max_query_chars
        self.description = (
            "Search an offline copy of English Wikipedia with keyword (BM25) search. Give one or more "
            f"queries (at most {max_queries} per call; extra ones are dropped); each returns the "
            f"best-matching passages (default {default_count}, at most {max_count}), each with the "
            "page title, the page URL and the passage text. Queries are bags of keywords: name the "
            "entity and the attribute you need (e.g. 'Jim Ryun birth date'); operators, quotes and "
            "question words do nothing. Use the access tool with a result's URL to read the page."
        )
        self.parameters: dict[str, Any] = {
            "type": "object",
            "properties": {
                "queries": {
                    "type": "array",
                    "description": (
                        f"Search queries to run in parallel (1 to {max_queries}; extras are dropped)."
                    ),
                    "minItems": 1,
                    "maxItems": max_queries,
                    "items": {
                        "type": "object",
                        "properties": {
                            "query": {
                                "type": "string",
                                "description": (
                                    "Keywords to search for, e.g. an entity name plus the fact wanted "
                                    f"(at most {max_query_chars} characters)."
                                ),
                            },
                            "count": {
                                "type": "integer",
                                "description": (
                                    f"Number of results to return (default {default_count}, "
                                    f"1 to {max_count})."
                                ),
                                "minimum": 1,
                                "maximum": max_count,
                                "default": default_count,
                            },
                        },
                        "required": ["query"],
                    },
                }
            },
            "required": ["queries"],
        }

    # -- argument parsing --------------------------------------------------------------------

    def _parse(self, arguments: Any) -> tuple[list[_Query], list[str]] | str:
        """(queries, call-level notes), or an error text for the whole call."""
        if not isinstance(arguments, dict):
            return error_text(f"the search arguments must be a JSON object; {_USAGE}")
        if "queries" not in arguments and isinstance(arguments.get("query"), str):
            arguments = {"queries": [dict(arguments)]}
        items = arguments.get("queries")
        if items is None:
            return error_text(f'missing "queries"; {_USAGE}')
        if isinstance(items, (str, dict)):
            items = [items]
        if not isinstance(items, list):
            return error_text(f'"queries" must be a list; {_USAGE}')
        if not items:
            return error_text(f'"queries" is empty; {_USAGE}')
        notes = []
        if len(items) > self.max_queries:
            notes.append(
                f"Note: only the first {self.max_queries} queries were run; "
                f"{len(items) - self.max_queries} more were dropped."
            )
            items = items[: self.max_queries]
        return [self._parse_item(item) for item in items], notes

    def _parse_item(self, item: Any) -> _Query:
        if isinstance(item, str):
            item = {"query": item}
        if not isinstance(item, dict):
            return _Query(None, 0, [], 'each query must be an object like {"query": "keywords", "count": 3}')
        text = item.get("query")
        if text is None:
            return _Query(None, 0, [], 'missing "query" text')
        if not isinstance(text, str):
            return _Query(None, 0, [], f'"query" must be a string, not {type(text).__name__}')
        text = " ".join(text.split())
        if not text:
            return _Query(None, 0, [], "the query is empty; give some keywords")
        notes = []
        if len(text) > self.max_query_chars:
            text = text[: self.max_query_chars]
            notes.append(f"the query was cut to its first {self.max_query_chars} characters")
        count, note = _coerce_count(item.get("count"), self.default_count, 1, self.max_count)
        if note:
            notes.append(note)
        return _Query(text, count, notes)

    # -- rendering ---------------------------------------------------------------------------

    def _render_query(self, number: int, query: _Query, hits: list[Hit]) -> str:
        if query.text is None:
            return f"### Query {number}\n" + error_text(str(query.error))
        head = "\n".join([f'### Query {number}: "{query.text}"'] + [f"Note: {n}." for n in query.notes])
        if not hits:
            return head + "\nNo results found. Try other keywords (names, distinctive words)."
        blocks = [head]
        for rank, hit in enumerate(hits, 1):
            snippet = hit.text
            if len(snippet) > self.snippet_chars:
                snippet = snippet[: self.snippet_chars] + "..."
            blocks.append(f"[{rank}] {hit.title}\nURL: {hit.url}\n{snippet}")
        return "\n\n".join(blocks)

    # -- Tool --------------------------------------------------------------------------------

    def call_many(self, arguments: Sequence[Any]) -> list[str]:
        parsed = [self._parse(a) for a in arguments]
        texts: list[str] = []
        counts: list[int] = []
        for p in parsed:
            if isinstance(p, str):
                continue
            for q in p[0]:
                if q.text is not None:
                    texts.append(q.text)
                    counts.append(q.count)
        try:
            results = self.retriever.search_many(texts, max(counts)) if texts else []
        except Exception as exc:  # a retriever failure becomes the agent's error text
            message = error_text(f"search is unavailable ({type(exc).__name__}: {exc})")
            return [p if isinstance(p, str) else message for p in parsed]
        out: list[str] = []
        cursor = 0
        for p in parsed:
            if isinstance(p, str):
                out.append(p)
                continue
            queries, notes = p
            blocks = []
            for number, q in enumerate(queries, 1):
                hits: list[Hit] = []
                if q.text is not None:
                    hits = results[cursor][: q.count]
                    cursor += 1
                blocks.append(self._render_query(number, q, hits))
            out.append("\n\n".join(notes + blocks))
        return out

    def __call__(self, arguments: Any) -> str:
        return self.call_many([arguments])[0]
