"""The retrieval server as an ASGI app (FastAPI on Starlette, served by uvicorn): ``--backend asgi``.

The protocol, response shapes and limits are those of :mod:`.server` (its module doc), so a client
cannot tell the two apart, plus what a FastAPI app gives: request models that validate every field,
OpenAPI at ``/openapi.json`` and interactive docs at ``/docs``, and ``--workers N`` processes.

- ``POST /retrieve``, ``POST /access``, ``POST /candidates``, ``GET /health``: as in :mod:`.server`.
- Errors are ``{"error": "..."}`` with the same statuses: 400 for malformed JSON, a wrong field type
  or too many items (FastAPI's own 422 is mapped to 400, naming the field), 413 for a body over
  ``max_body_bytes`` (refused from its ``Content-Length``: the body is read for at most a second and
  dropped, never parsed), 411 without a ``Content-Length`` (a chunked body too), 404, 405, 500 (the
  retriever failed; the server lives on).
- Unlike the stdlib server, there is no whole-request deadline: a client that stalls mid-request
  holds only its own connection (uvicorn's event loop serves the others meanwhile).
- The endpoints are plain functions, which Starlette runs in its thread pool: the retriever
  (``LocalRetriever``, thread-safe) is shared by those threads. With ``workers > 1`` uvicorn starts
  that many processes, each opening the corpus itself (the Tantivy index and the page store are
  memory-mapped / read-only files, so the pages are shared by the OS).

Needs the ``[server]`` extra (fastapi, uvicorn); without it ``make_app`` raises MissingExtraError.

(No ``from __future__ import annotations`` here: FastAPI reads the request models' annotations at
run time, and the models are defined inside ``make_app``.)
"""


import asyncio
import json
import os
from typing import Any

from wideseek_env.corpus.server import (
    DEFAULT_TOPK,
    MAX_CANDIDATES,
    MAX_TOPK,
    hit_to_json,
    page_to_json,
)
from wideseek_env.corpus.types import Retriever
from wideseek_env.errors import require

CORPUS_ENV = "WIDESEEK_SERVE_CORPUS"  # how ``workers > 1`` tells each worker process its corpus


class _BodyLimit:
    """ASGI middleware: 411 without a length, 413 over ``limit`` bytes, before the app parses the body."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None:
            return await _send_error(send, 411, "a Content-Length header is required")
        try:
            size = int(length)
        except ValueError:
            return await _send_error(send, 400, "bad Content-Length header")
        if size > self.limit:
            # Read (and drop) what the client sends for a moment first: uvicorn closes the
            # connection after the reply, and a client still writing its body would get a broken
            # pipe instead of the 413. A client that stalls is answered after a second.
            await _drain(receive, seconds=1.0, max_bytes=64 << 20)
            return await _send_error(send, 413, f"request body of {size} bytes is over the limit of {self.limit} bytes")
        return await self.app(scope, receive, send)


async def _drain(receive, *, seconds: float, max_bytes: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    read = 0
    while read < max_bytes:
        left = deadline - loop.time()
        if left <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), left)
        except asyncio.TimeoutError:
            return
        read += len(message.get("body", b""))
        if message.get("type") != "http.request" or not message.get("more_body"):
            return


async def _send_error(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})


def make_app(retriever: Retriever, *, max_body_bytes: int = 1 << 20, max_items: int = 256):
    """The FastAPI app serving ``retriever`` (module doc); wrap it or serve it with uvicorn."""
    fastapi = require("fastapi", "server")
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr
    from starlette.exceptions import HTTPException

    class RetrieveRequest(BaseModel):
        queries: list[StrictStr] = Field(description=f"search queries (at most {max_items})")
        topk: StrictInt | None = Field(DEFAULT_TOPK, ge=1, le=MAX_TOPK, description="hits per query")
        return_scores: StrictBool | None = Field(False, description="Search-R1 shape: score and document")

    class AccessRequest(BaseModel):
        urls: list[StrictStr] = Field(description=f"Wikipedia URLs, any form (at most {max_items})")

    class CandidatesRequest(BaseModel):
        urls: list[StrictStr] = Field(description=f"URLs or bare titles (at most {max_items})")
        limit: StrictInt = Field(10, ge=1, le=MAX_CANDIDATES)
        similar: StrictBool = Field(False, description="pages with titles within one typo a word")

    app = fastapi.FastAPI(
        title="wideseek retrieval server",
        description="BM25 search and page access over an offline Wikipedia corpus "
        "(the Search-R1 / RLinf protocol).",
    )

    def too_many(items: list, key: str) -> None:
        if len(items) > max_items:
            raise HTTPException(400, f"too many {key}: {len(items)} (at most {max_items} per request)")

    @app.exception_handler(HTTPException)
    async def _http_error(request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
        return JSONResponse({"error": "; ".join(problems)[:1000]}, status_code=400)

    @app.exception_handler(Exception)
    async def _failed(request, exc: Exception):
        return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=500)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "passages": getattr(retriever, "num_passages", None)}

    @app.post("/retrieve")
    def retrieve(body: RetrieveRequest) -> dict[str, Any]:
        too_many(body.queries, "queries")
        topk = DEFAULT_TOPK if body.topk is None else body.topk
        with_score = bool(body.return_scores)
        results = retriever.search_many(body.queries, topk) if body.queries else []
        return {"result": [[hit_to_json(h, with_score=with_score) for h in hits] for hits in results]}

    @app.post("/access")
    def access(body: AccessRequest) -> dict[str, Any]:
        too_many(body.urls, "urls")
        pages = retriever.access_many(body.urls) if body.urls else []
        return {"result": [page_to_json(p) for p in pages]}

    @app.post("/candidates")
    def candidates(body: CandidatesRequest) -> dict[str, Any]:
        too_many(body.urls, "urls")
        finder = getattr(retriever, "similar_titles_many" if body.similar else "candidates_many", None)
        if finder is None or not body.urls:
            return {"result": [[] for _ in body.urls]}
        return {"result": finder(body.urls, body.limit)}

    app.add_middleware(_BodyLimit, limit=max_body_bytes)
    return app


def app_from_env():
    """uvicorn factory for ``workers > 1``: each worker opens the corpus named by ``$WIDESEEK_SERVE_CORPUS``."""
    from wideseek_env.corpus.local import LocalRetriever

    return make_app(LocalRetriever(os.environ[CORPUS_ENV]))


def serve_asgi(corpus_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, *,
               workers: int = 1, threads: int | None = None) -> None:
    """Serve a corpus with uvicorn until Ctrl-C (blocking); prints the URL it listens on
    (``port=0``: a free port, bound here before the workers start, so the URL is the real one)."""
    uvicorn = require("uvicorn", "server")
    require("fastapi", "server")
    from uvicorn.supervisors import Multiprocess

    from wideseek_env.corpus.local import LocalRetriever

    os.environ[CORPUS_ENV] = str(corpus_dir)
    if workers > 1:
        config = uvicorn.Config("wideseek_env.corpus.asgi:app_from_env", factory=True, host=host,
                                port=port, workers=workers, log_level="warning")
        retriever = None
    else:
        retriever = LocalRetriever(corpus_dir, threads=threads)
        config = uvicorn.Config(make_app(retriever), host=host, port=port, log_level="warning")
    sock = config.bind_socket()
    sock.listen(config.backlog)  # connections made as soon as the URL is printed wait in the backlog
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"wideseek retrieval server (asgi, {workers} worker{'s' if workers > 1 else ''}) on "
        f"http://{shown}:{bound} from {corpus_dir}; POST /retrieve, /access, /candidates, GET /health, "
        "docs at /docs; Ctrl-C stops",
        flush=True,
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("note: the server has no authentication; expose it only on a trusted network", flush=True)
    server = uvicorn.Server(config)
    try:
        if workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it already handled
        pass
    finally:
        sock.close()
        if retriever is not None:
            retriever.close()
        print("stopping", flush=True)
