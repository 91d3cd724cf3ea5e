"""The main job (``wideseek demo``): build the default corpus if missing and show the tools working.

It builds the shared OTT-QA Wikipedia corpus into ``wideseek_env.paths.default_corpus_dir()``
(idempotent: an unchanged input is not rebuilt), then runs a few searches and page accesses through
the same ``search`` / ``access`` tools the agents use.
"""

from __future__ import annotations

import json
import time

from wideseek_env import paths

EXAMPLE_SEARCHES = [
    {"query": "American musical comedian accordion parody songs", "count": 3},
    {"query": "1968 Summer Olympics men's 1500 metres", "count": 3},
]
EXAMPLE_ACCESSES = [
    {"url": "https://en.wikipedia.org/wiki/%22Weird_Al%22_Yankovic", "info_to_extract": "birth date"},
    {"url": "en.wikipedia.org/w/index.php?title=Jim Ryun", "info_to_extract": "when was he born"},
]


def build_default_corpus() -> str:
    from wideseek_env.corpus.build import build_corpus

    out = paths.default_corpus_dir()
    started = time.perf_counter()
    manifest = build_corpus("ottqa", paths.shared_data_dir() / "ottqa", out)
    verb = "reused" if manifest.get("reused") else "built"
    print(
        f"corpus {verb} at {out} in {time.perf_counter() - started:.1f} s: "
        f"{manifest['counts']['pages']:,} pages, {manifest['counts']['passages']:,} passages, "
        f"{manifest['counts']['tables']:,} tables"
    )
    return str(out)


def show_tools(corpus_dir: str) -> None:
    from wideseek_env.corpus.local import LocalRetriever
    from wideseek_env.tools.access import AccessTool
    from wideseek_env.tools.search import SearchTool

    with LocalRetriever(corpus_dir) as retriever:
        search, access = SearchTool(retriever), AccessTool(retriever, page_chars=600)
        print("\n== search", json.dumps({"queries": EXAMPLE_SEARCHES}))
        print(search.call_many([{"queries": EXAMPLE_SEARCHES}])[0])
        print("\n== access", json.dumps({"urls": EXAMPLE_ACCESSES}))
        print(access.call_many([{"urls": EXAMPLE_ACCESSES}])[0])


def run_demo() -> int:
    corpus_dir = build_default_corpus()
    show_tools(corpus_dir)
    return 0
