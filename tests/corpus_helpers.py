"""Small real corpora and a loopback retrieval server, shared by the corpus/server/tool tests."""

from __future__ import annotations

import json
import threading
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
