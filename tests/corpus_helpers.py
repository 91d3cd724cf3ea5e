"""Small real corpora and a loopback retrieval server, shared by the corpus/server/tool tests."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from wideseek_env.corpus.build import build_corpus
from wideseek_env.corpus.server import make_server


def build_jsonl_corpus(root: Path, pages: list[dict]) -> Path:
    """Build a corpus from ``pages`` (JSONL records of url/title/text) under ``root``; return its dir."""
    src = root / "pages.jsonl"
    src.write_text("".join(json.dumps(p) + "\n" for p in pages), encoding="utf-8")
    build_corpus("jsonl", src, root / "corpus", progress=False)
    return root / "corpus"


def start_server(retriever, **kwargs):
    """A real retrieval server on 127.0.0.1 (free port) served from a daemon thread."""
    server = make_server(retriever, "127.0.0.1", 0, **kwargs)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


def stop_server(server, thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(5)
    assert not thread.is_alive()


class AsgiServer:
    """The ASGI retrieval server (uvicorn in a daemon thread) with the stdlib server's ``port``/``url``."""

    def __init__(self, retriever, *, max_body_bytes: int = 1 << 20, max_items: int = 256) -> None:
        import socket

        import uvicorn

        from wideseek_env.corpus.asgi import make_app

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        app = make_app(retriever, max_body_bytes=max_body_bytes, max_items=max_items)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="critical"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the ASGI server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
        self.sock.close()
        assert not self.thread.is_alive()
