"""A Retriever that talks to a retrieval server (``wideseek serve``) over HTTP.

Many env workers, on one machine or many, can share one index this way. The protocol is described
in ``wideseek_env.corpus.server``; this client also reads the plain Search-R1 shape (hits with only
``contents``, or wrapped as ``{"document": {...}, "score": ...}``), so it works against other
servers of that family.

One ``search_many`` call is one ``POST /retrieve`` (split into requests of at most ``max_batch``
queries when larger); one ``access_many`` is one ``POST /access``. The HTTP client is ``httpx``
with a connection pool, timeouts and bounded retries (``HTTPRetriever``).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Sequence
from urllib.parse import urlsplit

import httpx

from wideseek_env.corpus.types import Hit, Page
from wideseek_env.errors import WideseekError


class RetrievalServerError(WideseekError):
    """The retrieval server is unreachable or answered with an error."""


def _parse_contents(contents: str) -> tuple[str, str]:
    """Split Search-R1 ``contents`` (``"Title"\\ntext``) into title and text."""
    first, _, rest = contents.partition("\n")
    title = first.strip()
    if len(title) >= 2 and title[0] == title[-1] == '"':
        title = title[1:-1]
    return title, rest


def _hit_from_json(item: Any) -> Hit | None:
    if not isinstance(item, dict):
        return None
    score = item.get("score", 0.0)
    doc = item.get("document") if isinstance(item.get("document"), dict) else item
    title, text, url = doc.get("title"), doc.get("text"), doc.get("url")
    contents = doc.get("contents")
    if (title is None or text is None) and isinstance(contents, str):
        parsed_title, parsed_text = _parse_contents(contents)
        title = parsed_title if title is None else title
        text = parsed_text if text is None else text
    try:
        score = float(score)
    except (TypeError, ValueError):
        score = 0.0
    return Hit(str(title or ""), str(url or item.get("url") or ""), str(text or ""), score)


def _page_from_json(item: Any) -> Page | None:
    if not isinstance(item, dict):
        return None
    text = item.get("contents")
    if text is None:
        text = item.get("text")
    if text is None:
        return None
    title = item.get("title")
    if title is None:
        title, text = _parse_contents(text) if str(text).startswith('"') else ("", text)
    return Page(str(item.get("url") or ""), str(title), str(text))


class HTTPRetriever:
    """Retriever over HTTP. ``base_url`` is ``http://host:port`` (``host:port`` also works).

    Built on ``httpx``: one connection pool (``max_connections`` keep-alive connections, shared by
    all threads: the client is thread-safe), ``timeout`` seconds per request (connect, read, write,
    pool), and bounded retries: a request that fails to connect, loses its connection or gets a
    503 is sent again up to ``retries`` times, after ``backoff`` x 1, 2, 4, ... seconds (the
    endpoints only read, so a repeat is harmless). Sockets are ``TCP_NODELAY``: a request's header
    and body writes must not wait for the server's delayed ACK (40 ms per request on Linux).

    Raises ``RetrievalServerError`` (a ``WideseekError``) when the server cannot be reached after
    the retries or answers with an error; the message names the URL and how to start a server.
    The tools catch it and show the agent a readable ``Error: ...`` instead of crashing.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30,
        max_batch: int = 256,
        retries: int = 2,
        backoff: float = 0.1,
        max_connections: int = 32,
    ) -> None:
        if "://" not in base_url:
            base_url = "http://" + base_url
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WideseekError(f"bad retrieval server URL {base_url!r}; expected http://HOST:PORT")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_batch = max(1, int(max_batch))
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, float(backoff))
        transport = httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self._client = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport,
            headers={"Accept": "application/json"},
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> "HTTPRetriever":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- HTTP --------------------------------------------------------------------------------

    def _unreachable(self, exc: BaseException) -> RetrievalServerError:
        return RetrievalServerError(
            f"cannot reach the retrieval server at {self.base_url} ({type(exc).__name__}: {exc}); "
            "start one with 'wideseek serve --index CORPUS_DIR --port PORT' or check the URL"
        )

    def _send(self, method: str, path: str, body: bytes | None = None):
        """One request with the bounded retries (class doc); the response, or RetrievalServerError."""
        headers = {"Content-Type": "application/json"} if body is not None else None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._client.request(method, path, content=body, headers=headers)
            except (httpx.TransportError, RuntimeError) as exc:  # RuntimeError: the client was closed
                if attempt == self.retries or isinstance(exc, RuntimeError):
                    raise self._unreachable(exc) from exc
                continue
            if response.status_code == 503 and attempt < self.retries:
                continue
            return response
        raise AssertionError("unreachable")

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        response = self._send("POST", path, body)
        data = response.content
        try:
            decoded = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise RetrievalServerError(
                f"the retrieval server at {self.base_url} answered {path} with status "
                f"{response.status_code} and a body that is not JSON: {data[:200]!r}"
            ) from None
        if response.status_code != 200:
            message = decoded.get("error") if isinstance(decoded, dict) else decoded
            raise RetrievalServerError(
                f"the retrieval server at {self.base_url} answered {path} with status "
                f"{response.status_code}: {message}"
            )
        if not isinstance(decoded, dict) or not isinstance(decoded.get("result"), list):
            raise RetrievalServerError(
                f"the retrieval server at {self.base_url} answered {path} without a 'result' list"
            )
        return decoded["result"]

    def health(self) -> dict[str, Any]:
        """``GET /health`` of the server (raises RetrievalServerError if unreachable)."""
        response = self._send("GET", "/health")
        try:
            return json.loads(response.content)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise RetrievalServerError(f"{self.base_url}/health did not answer JSON") from None

    # -- Retriever ---------------------------------------------------------------------------

    def search_many(self, queries: Sequence[str], k: int = 3) -> list[list[Hit]]:
        queries = [q if isinstance(q, str) else "" for q in queries]
        try:
            k = int(k)
        except (TypeError, ValueError):
            k = 3
        if k <= 0 or not queries:
            return [[] for _ in queries]
        k = min(k, 100)
        out: list[list[Hit]] = []
        for start in range(0, len(queries), self.max_batch):
            batch = queries[start : start + self.max_batch]
            result = self._post("/retrieve", {"queries": batch, "topk": k, "return_scores": True})
            if len(result) != len(batch):
                raise RetrievalServerError(
                    f"the retrieval server at {self.base_url} returned {len(result)} hit lists "
                    f"for {len(batch)} queries"
                )
            for hits in result:
                parsed = [_hit_from_json(h) for h in hits] if isinstance(hits, list) else []
                out.append([h for h in parsed if h is not None][:k])
        return out

    def access_many(self, urls: Sequence[str]) -> list[Page | None]:
        urls = list(urls)
        out: list[Page | None] = [None] * len(urls)
        wanted = [(i, u) for i, u in enumerate(urls) if isinstance(u, str) and u.strip()]
        for start in range(0, len(wanted), self.max_batch):
            batch = wanted[start : start + self.max_batch]
            result = self._post("/access", {"urls": [u for _, u in batch]})
            if len(result) != len(batch):
                raise RetrievalServerError(
                    f"the retrieval server at {self.base_url} returned {len(result)} pages "
                    f"for {len(batch)} URLs"
                )
            for (i, _), item in zip(batch, result):
                out[i] = _page_from_json(item)
        return out

    def candidates_many(self, urls: Sequence[str], limit: int = 10) -> list[list[str]]:
        """``LocalRetriever.candidates_many`` on the server (``POST /candidates``)."""
        return self._url_lists(urls, limit, similar=False)

    def similar_titles_many(self, titles: Sequence[str], limit: int = 10) -> list[list[str]]:
        """``LocalRetriever.similar_titles_many`` on the server (``POST /candidates`` with
        ``"similar": true``)."""
        return self._url_lists(titles, limit, similar=True)

    def _url_lists(self, urls: Sequence[str], limit: int, *, similar: bool) -> list[list[str]]:
        urls = list(urls)
        out: list[list[str]] = [[] for _ in urls]
        wanted = [(i, u) for i, u in enumerate(urls) if isinstance(u, str) and u.strip()]
        for start in range(0, len(wanted), self.max_batch):
            batch = wanted[start : start + self.max_batch]
            payload: dict[str, Any] = {"urls": [u for _, u in batch], "limit": limit}
            if similar:
                payload["similar"] = True
            result = self._post("/candidates", payload)
            if len(result) != len(batch):
                raise RetrievalServerError(
                    f"the retrieval server at {self.base_url} returned {len(result)} candidate lists "
                    f"for {len(batch)} URLs"
                )
            for (i, _), item in zip(batch, result):
                if isinstance(item, list):
                    out[i] = [u for u in item if isinstance(u, str)][:limit]
        return out
