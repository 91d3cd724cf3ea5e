"""The retrieval server: one shared index for many env workers, over HTTP/JSON.

Protocol (the one Search-R1, ASearcher and RLinf's WideSeek-R1 clients speak):

``POST /retrieve`` with ``{"queries": [str, ...], "topk": int = 3, "return_scores": bool = false}``
answers ``{"result": [[hit, ...], ...]}``, one list per query, each hit
``{"contents": "\\"Title\\"\\ntext", "title": str, "url": str, "text": str}``. ``contents`` has the
title quoted on its first line, as in the DPR/Search-R1 ``wiki-18.jsonl`` corpus: RLinf's client
reads ``contents`` and ``url``. With ``return_scores: true`` each hit also carries ``"score"`` and
``"document": {"contents", "title", "url"}``, because Search-R1-style clients, which always ask
for scores, read ``hit["document"]["contents"]``.

``POST /access`` with ``{"urls": [str, ...]}`` answers ``{"result": [page or null, ...]}`` with
page ``{"url": canonical URL, "title": str, "contents": page text}`` (RLinf reads ``contents``).
Every Wikipedia URL form is accepted (``/wiki/X``, full URLs, ``index.php?title=X``,
``index.php/X``); an unknown or non-Wikipedia URL gives ``null``.

``POST /candidates`` with ``{"urls": [str, ...], "limit": int = 10}`` answers
``{"result": [[url, ...], ...]}``: for each URL or bare title, the stored pages it may mean when it
finds no page as written (``LocalRetriever.candidates_many``); the ``access`` tool uses it to
resolve "jim ryun" or offer "Mercury (planet)", "Mercury (element)". With ``"similar": true`` the
lists are pages whose titles match up to one typo a word (``LocalRetriever.similar_titles_many``),
which the ``access`` tool suggests for a URL not in the corpus.

``GET /health`` answers ``{"status": "ok", "passages": N}``.

Errors answer a 4xx/5xx status with ``{"error": "..."}``: malformed JSON or wrong field types 400,
a body over ``max_body_bytes`` 413 (the body is not read; the connection is closed), more than
``max_items`` queries or URLs in one request 400, a missing ``Content-Length`` 411, an unknown path
404, a wrong method 405, too many open connections 503. The server never touches the filesystem
based on request content: it only searches the index and looks pages up by key.

Each connection is a thread (``ThreadingHTTPServer``) with keep-alive. Every socket read has a
timeout (``timeout`` seconds), and a whole request (request line, headers and body, counted from
when the server starts waiting for it) must arrive within ``timeout`` seconds in total, so clients
that stall or trickle (even one header byte at a time) are cut off without holding up the others.
Requests the HTTP layer itself rejects (a garbled request line, too many or too long headers, an
unsupported method) also get a JSON ``{"error"}`` body. JSON nested too deeply or holding numbers
too long to convert is a 400 like any other malformed body. There is no
authentication: bind to 127.0.0.1 (the default) unless the network is trusted.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from wideseek_env.corpus.types import Hit, Page, Retriever

DEFAULT_TOPK = 3
MAX_TOPK = 100
MAX_CANDIDATES = 50
_POST_PATHS = ("/retrieve", "/access", "/candidates")


class RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def hit_to_json(hit: Hit, *, with_score: bool) -> dict[str, Any]:
    doc = {
        "contents": f'"{hit.title}"\n{hit.text}',
        "title": hit.title,
        "url": hit.url,
        "text": hit.text,
    }
    if not with_score:
        return doc
    # Search-R1 clients read hit["document"]["contents"]; "text" is left out of that copy (it is in
    # "contents" already) to keep responses small.
    document = {"contents": doc["contents"], "title": hit.title, "url": hit.url}
    return {**doc, "score": float(hit.score), "document": document}


def page_to_json(page: Page | None) -> dict[str, Any] | None:
    if page is None:
        return None
    return {"url": page.url, "title": page.title, "contents": page.text}


class RetrievalServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer bound to a retriever; ``port`` and ``url`` tell where it listens."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        retriever: Retriever,
        *,
        max_body_bytes: int = 1 << 20,
        max_items: int = 256,
        timeout: float = 10.0,
        max_connections: int = 512,
        verbose: bool = False,
    ) -> None:
        self.retriever = retriever
        self.max_body_bytes = max_body_bytes
        self.max_items = max_items
        self.timeout_s = timeout
        self.verbose = verbose
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        host = self.server_address[0]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def process_request(self, request, client_address):  # one thread per connection, bounded
        if not self._slots.acquire(blocking=False):
            try:
                body = json.dumps({"error": "too many open connections; retry later"}).encode()
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                    + body
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):  # a dropped client is not worth a traceback
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _DeadlineReader(io.RawIOBase):
    """The socket's read side, refusing to read past the handler's current request deadline.

    Each ``recv`` waits at most until the deadline (and at most the per-read timeout), so a client
    that trickles bytes slower than the request deadline is cut off (``TimeoutError``), which a
    plain per-read socket timeout cannot do.
    """

    def __init__(self, sock: socket.socket, handler: "_Handler") -> None:
        super().__init__()
        self._sock = sock
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        remaining = self._handler.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request not received in time")
        self._sock.settimeout(min(remaining, self._handler.server.timeout_s))
        return self._sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Answer even a garbled request line with a status line and headers (the library's default,
    # HTTP/0.9, would send a bare body that HTTP/1.x clients cannot read).
    default_request_version = "HTTP/1.1"
    server_version = "wideseek-retrieval/1"
    server: RetrievalServer

    def setup(self) -> None:
        self.timeout = self.server.timeout_s  # per-read socket timeout (StreamRequestHandler)
        self.deadline = time.monotonic() + self.server.timeout_s
        super().setup()
        # The status line and headers go out in one write, the body in another: without
        # TCP_NODELAY the body waits for the client's delayed ACK of the headers (40 ms a request).
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not a TCP socket
            pass
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))

    def handle_one_request(self) -> None:
        # One deadline per request: waiting for it, its request line, headers and body.
        self.deadline = time.monotonic() + self.server.timeout_s
        super().handle_one_request()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors raised by the HTTP layer itself (bad request line, headers), as JSON."""
        try:
            short, _long = self.responses[code]
        except KeyError:
            short = "error"
        self.log_error("code %d, message %s", code, message or short)
        body = json.dumps({"error": message or short}).encode("utf-8")
        self.connection.settimeout(self.server.timeout_s)  # reads may have left less
        self.send_response(code, short)
        self.send_header("Connection", "close")
        self.close_connection = True
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self._write_body(body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    # -- plumbing ----------------------------------------------------------------------------

    def _send_json(self, status: int, payload: Any, *, close: bool = False) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.connection.settimeout(self.server.timeout_s)  # reads may have left less
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self._write_body(body)

    def _write_body(self, body: bytes) -> None:
        """Write in 1 MiB pieces, each within ``timeout`` seconds: a client that stops reading is
        cut off, a slow one that keeps reading gets a large answer whole."""
        view = memoryview(body)
        for start in range(0, len(view), 1 << 20):
            self.wfile.write(view[start : start + (1 << 20)])

    def _error(self, status: int, message: str, *, close: bool = False) -> None:
        self._send_json(status, {"error": message}, close=close)

    def _read_json(self) -> Any:
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not supported; send Content-Length")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        try:
            length = int(length_text)
        except ValueError:
            raise RequestError(HTTPStatus.BAD_REQUEST, "Content-Length is not a number") from None
        if length < 0:
            raise RequestError(HTTPStatus.BAD_REQUEST, "Content-Length is negative")
        if length > self.server.max_body_bytes:
            self._drain(length)
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"request body of {length} bytes is over the limit of {self.server.max_body_bytes}",
            )
        deadline = time.monotonic() + self.server.timeout_s
        chunks = []
        remaining = length
        while remaining > 0:
            if time.monotonic() > deadline:
                raise TimeoutError("request body too slow")
            chunk = self.rfile.read1(min(remaining, 65536))
            if not chunk:
                raise ConnectionError("client closed the connection mid-body")
            chunks.append(chunk)
            remaining -= len(chunk)
        try:
            return json.loads(b"".join(chunks))
        except (ValueError, RecursionError) as exc:
            # ValueError: invalid JSON or UTF-8, or an integer too long to convert;
            # RecursionError: arrays/objects nested too deeply.
            raise RequestError(HTTPStatus.BAD_REQUEST, f"body is not valid JSON: {exc}") from None

    def _drain(self, length: int) -> None:
        """Read and drop a refused body of modest size, so the client can read the 413 reply
        (closing with unread data makes the kernel reset the connection). Bounded in bytes and time."""
        if length > 8 * self.server.max_body_bytes:
            return
        deadline = time.monotonic() + self.server.timeout_s
        try:
            while length > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(length, 65536))
                if not chunk:
                    return
                length -= len(chunk)
        except OSError:
            return

    def _string_list(self, body: Any, key: str) -> list[str]:
        if not isinstance(body, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, f'body must be a JSON object with "{key}"')
        if key not in body:
            raise RequestError(HTTPStatus.BAD_REQUEST, f'missing field "{key}"')
        items = body[key]
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            raise RequestError(HTTPStatus.BAD_REQUEST, f'"{key}" must be a list of strings')
        if len(items) > self.server.max_items:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f'too many {key}: {len(items)} (at most {self.server.max_items} per request)',
            )
        return items

    # -- endpoints ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/health":
            passages = getattr(self.server.retriever, "num_passages", None)
            self._send_json(HTTPStatus.OK, {"status": "ok", "passages": passages})
        elif path in _POST_PATHS:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"use POST for {path}")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such endpoint {path}; use /retrieve, /access, /health")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        body_read = False
        try:
            if path not in _POST_PATHS:
                raise RequestError(
                    HTTPStatus.NOT_FOUND, f"no such endpoint {path}; use /retrieve, /access or /candidates"
                )
            body = self._read_json()
            body_read = True
            if path == "/retrieve":
                payload = self._retrieve(body)
            elif path == "/access":
                payload = self._access(body)
            else:
                payload = self._candidates(body)
        except RequestError as exc:
            # A body left unread would be parsed as the next request: close such connections.
            self._error(exc.status, exc.message, close=not body_read)
            return
        except (TimeoutError, ConnectionError, socket.timeout):
            self.close_connection = True
            return
        except Exception as exc:  # a retriever failure must not take the server down
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")
            return
        self._send_json(HTTPStatus.OK, payload)

    def do_PUT(self) -> None:
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use POST /retrieve or POST /access", close=True)

    do_DELETE = do_PATCH = do_PUT

    def _retrieve(self, body: Any) -> dict[str, Any]:
        queries = self._string_list(body, "queries")
        topk = body.get("topk", DEFAULT_TOPK)
        if topk is None:
            topk = DEFAULT_TOPK
        if isinstance(topk, bool) or not isinstance(topk, int) or not 1 <= topk <= MAX_TOPK:
            raise RequestError(HTTPStatus.BAD_REQUEST, f'"topk" must be an integer from 1 to {MAX_TOPK}')
        with_score = body.get("return_scores", False)
        if with_score is None:
            with_score = False
        if not isinstance(with_score, bool):
            raise RequestError(HTTPStatus.BAD_REQUEST, '"return_scores" must be true or false')
        results = self.server.retriever.search_many(queries, topk) if queries else []
        return {"result": [[hit_to_json(h, with_score=with_score) for h in hits] for hits in results]}

    def _access(self, body: Any) -> dict[str, Any]:
        urls = self._string_list(body, "urls")
        pages = self.server.retriever.access_many(urls) if urls else []
        return {"result": [page_to_json(p) for p in pages]}

    def _candidates(self, body: Any) -> dict[str, Any]:
        urls = self._string_list(body, "urls")
        limit = body.get("limit", 10)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CANDIDATES:
            raise RequestError(HTTPStatus.BAD_REQUEST, f'"limit" must be an integer from 1 to {MAX_CANDIDATES}')
        similar = body.get("similar", False)
        if not isinstance(similar, bool):
            raise RequestError(HTTPStatus.BAD_REQUEST, '"similar" must be true or false')
        method = "similar_titles_many" if similar else "candidates_many"
        finder = getattr(self.server.retriever, method, None)
        if finder is None or not urls:
            return {"result": [[] for _ in urls]}
        return {"result": finder(urls, limit)}


def make_server(
    retriever: Retriever,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_body_bytes: int = 1 << 20,
    max_items: int = 256,
    timeout: float = 10.0,
    max_connections: int = 512,
    verbose: bool = False,
) -> RetrievalServer:
    """A bound (not yet serving) server; run ``serve_forever()`` (in a thread if you like), then
    ``shutdown()`` and ``server_close()``. ``port=0`` picks a free port: read it from ``.port``."""
    return RetrievalServer(
        (host, port),
        retriever,
        max_body_bytes=max_body_bytes,
        max_items=max_items,
        timeout=timeout,
        max_connections=max_connections,
        verbose=verbose,
    )


def _stop_on_signals() -> None:
    """Make SIGINT and SIGTERM stop the server (as uvicorn does for the asgi backend), also when it was
    started with SIGINT ignored: a process started in the background by a non-interactive shell
    (``wideseek serve ... &`` in a script, CI) inherits SIGINT ignored, and Python then turns Ctrl-C into
    nothing. Only from the main thread (a server run in a thread leaves signals alone)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def serve(
    corpus_dir: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    threads: int | None = None,
    verbose: bool = False,
) -> None:
    """Serve a corpus directory until Ctrl-C or SIGTERM (blocking). Prints the URL it listens on."""
    from wideseek_env.corpus.local import LocalRetriever

    _stop_on_signals()

    with LocalRetriever(corpus_dir, threads=threads) as retriever:
        server = make_server(retriever, host, port, verbose=verbose)
        print(
            f"wideseek retrieval server on {server.url} ({retriever.num_passages} passages from "
            f"{corpus_dir}); POST /retrieve, POST /access, GET /health; Ctrl-C stops",
            flush=True,
        )
        if host not in ("127.0.0.1", "localhost", "::1"):
            print("note: the server has no authentication; expose it only on a trusted network", flush=True)
        try:
            server.serve_forever(poll_interval=0.5)
        except KeyboardInterrupt:
            print("stopping", flush=True)
        finally:
            server.server_close()
