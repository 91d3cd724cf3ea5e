"""The local retriever: BM25 over the Tantivy passage index plus page lookup in the page store.

``LocalRetriever(corpus_dir)`` opens ``DIR/index`` and ``DIR/pages.sqlite`` once and answers
batches of queries on a thread pool (Tantivy releases the GIL while it searches, so threads scale
with cores).

Query handling (LLM-written queries are messy):

- the text is lower-cased and reduced to its word tokens (``\\w+``), so query-syntax characters
  (``:``, quotes, brackets, ``+``/``-``, ``^``, ``~``, ``*``) and upper-case boolean keywords
  (``AND``/``OR``/``NOT``) lose their meaning: a query is always a plain bag of words, and no query can
  fail to parse or silently become a match-nothing query;
- the 33 English stopwords of Lucene's classic list (``the``, ``of``, ``is`` ..., the same list
  bm25s uses) are dropped unless the query has nothing else; a repeated word counts as often as it
  appears (as in Lucene and bm25s). Dropping more words (a 75-word list) made search ~25% faster
  but cost 0.6 points of recall@5; dropping none gave +0.7 points at 4-5x the search time;
- at most ``MAX_QUERY_TERMS`` words are kept (the first ones), which bounds the cost of a
  pathological query;
- an empty, whitespace-only or punctuation-only query gives ``[]``, never an error.

Fields. Every word is matched against one unstored ``body`` field holding the page title and the
passage text together, as bm25s indexes them. Measured on the whole OTT-QA corpus (2,000 queries each;
recall@5 of the page the query came from), for "passage-word" queries (8-12 consecutive words of a
passage) and "entity" queries (a page title plus two words of its text):

- separate title and text fields, scores added: title weight 1: 0.79 / 0.999; text only: 0.93 / 0.94;
  title weight 0.3: 0.93 / 0.987 (Tantivy scores each field on its own, and titles are a few words
  long, so an unweighted title match outweighs many text matches);
- bm25s, which indexes title + text as one field: 0.939 / 0.995;
- the ``body`` field (corpus format 2): 0.941 / 0.996. Format-1 corpora (title and text only) are
  refused by ``build.load_manifest`` with the rebuild command.

Hits are deduplicated by page by default (``dedup_pages=True``): each page appears at most once in
a hit list, with its best passage. The index holds ~100-word passages, and a page's passages often
rank next to each other; repeating a page wastes the agent's few hit slots (3 by default) on one
page that the ``access`` tool can read whole anyway, so dedup returns more distinct pages for the
same ``k``. Deduplication fetches stored documents in rank order and stops at ``k`` distinct pages,
so it costs a few extra document reads only when duplicates occur.
"""

from __future__ import annotations

import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import tantivy

from wideseek_env.corpus.build import MANIFEST_FILE, load_manifest
from wideseek_env.corpus.index import INDEX_DIR, open_index, rebuild_command
from wideseek_env.corpus.store import PAGES_FILE, PageStore
from wideseek_env.corpus.types import Hit, Page
from wideseek_env.corpus.urls import NotWikipediaURL, canonical_url, url_to_title
from wideseek_env.errors import CorpusNotBuiltError

MAX_QUERY_TERMS = 32
MAX_K = 100
BODY_FIELD = "body"  # title + passage text in one field (corpus format 2)
TITLE_FIELD = "title"  # the page title alone (similar_titles_many)

_WORD = re.compile(r"\w+")

# Lucene's classic English stop set (also bm25s's "en" list).
STOPWORDS = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the their then
    there these they this to was will with""".split()
)


def sanitize_query(query: str) -> str:
    """Reduce an LLM-written query to a plain space-separated bag of lower-case words ('' if none)."""
    if not isinstance(query, str):
        return ""
    words = _WORD.findall(query.lower())
    terms = [w for w in words if w not in STOPWORDS] or words
    return " ".join(terms[:MAX_QUERY_TERMS])


def _default_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


class LocalRetriever:
    """BM25 passage search and page access over a corpus directory built by ``build_corpus``.

    Args:
        corpus_dir: a directory built by ``build_corpus``: ``manifest.json``, ``index/`` (Tantivy)
            and ``pages.sqlite``.
        threads: search threads used by ``search_many`` for batches (default: CPU count, at most 8).
            ``1`` searches in the calling thread.
        dedup_pages: keep only the best passage of each page in a hit list (see the module doc).
        verify: check the index files' checksums when opening (``index.verify_index``; about
            0.4 s for the whole OTT-QA corpus, once per process).

    A directory that is not a finished build (no ``manifest.json``: the build writes it last), a
    manifest that is unreadable or of another format version, or a corrupt corpus raises
    ``CorpusNotBuiltError`` (naming the directory or file and the rebuild command) when it is
    opened, or, for damage found only later (a corrupt page in the store), when it is read.
    ``manifest`` holds the corpus's manifest (``build.load_manifest``).

    Thread-safe: ``search_many`` and ``access_many`` may be called from several threads at once.
    Use as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        corpus_dir: str | os.PathLike,
        *,
        threads: int | None = None,
        dedup_pages: bool = True,
        verify: bool = True,
    ) -> None:
        self.corpus_dir = Path(corpus_dir)
        if not self.corpus_dir.is_dir():
            raise CorpusNotBuiltError(
                f"corpus directory {self.corpus_dir} does not exist; build it with "
                "'wideseek corpus build --source ... --input ... --out DIR'"
            )
        # A build writes manifest.json last, so without it this is no finished build (a killed or
        # hand-made one): say so before reading an index that may be half-written.
        if not (self.corpus_dir / MANIFEST_FILE).is_file():
            load_manifest(self.corpus_dir)  # raises CorpusNotBuiltError naming the rebuild command
        # Damage to the index or the page store is reported naming the part; then the manifest
        # itself must be readable and of this format version.
        self.index = open_index(self.corpus_dir / INDEX_DIR, verify=verify)
        self.store = PageStore(self.corpus_dir / PAGES_FILE)
        try:
            self.manifest = load_manifest(self.corpus_dir)
        except BaseException:
            self.store.close()
            raise
        self.dedup_pages = dedup_pages
        self.threads = max(1, int(threads)) if threads is not None else _default_threads()
        self._searcher = self.index.searcher()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._pool_busy = False  # a search_many call is using the pool
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> "LocalRetriever":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.store.close()

    def reload(self) -> None:
        """Pick up a rebuilt index (only needed if the index directory changed after opening)."""
        self.index.reload()
        self._searcher = self.index.searcher()

    @property
    def num_passages(self) -> int:
        return self._searcher.num_docs

    # -- search ------------------------------------------------------------------------------

    def parse(self, query: str) -> tantivy.Query | None:
        """The Tantivy query for an LLM-written query, or None when it has no searchable word."""
        text = sanitize_query(query)
        if not text:
            return None
        try:
            return self.index.parse_query(text, [BODY_FIELD])
        except ValueError:  # cannot happen for plain words; be safe rather than raise on agent text
            parsed, _errors = self.index.parse_query_lenient(text, [BODY_FIELD])
            return parsed

    def _search_one(self, searcher: tantivy.Searcher, query: str, k: int) -> list[Hit]:
        parsed = self.parse(query)
        if parsed is None:
            return []
        if not self.dedup_pages:
            hits = searcher.search(parsed, k, count=False).hits
            out = []
            for score, address in hits:
                doc = searcher.doc(address)
                out.append(
                    Hit(doc.get_first("title"), doc.get_first("url"), doc.get_first("text"), score)
                )
            return out
        # A first window of k + k/2 (at least k + 2) passages yields k distinct pages for about 9
        # queries in 10 on OTT-QA; the rest search again with a 4x larger window.
        limit = k + max(2, k // 2)
        while True:
            hits = searcher.search(parsed, limit, count=False).hits
            out = []
            seen: set[str] = set()
            for score, address in hits:
                doc = searcher.doc(address)
                url = doc.get_first("url")
                if url in seen:
                    continue
                seen.add(url)
                out.append(Hit(doc.get_first("title"), url, doc.get_first("text"), score))
                if len(out) == k:
                    return out
            if len(hits) < limit or limit >= 64 * k:
                return out
            limit *= 4

    def _search_chunk(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        searcher = self._searcher
        try:
            return [self._search_one(searcher, q, k) for q in queries]
        except BaseException as exc:  # Tantivy: ValueError for bad bytes, PanicException (BaseException)
            if isinstance(exc, ValueError) or type(exc).__name__ == "PanicException":
                raise CorpusNotBuiltError(
                    f"the Tantivy index at {self.corpus_dir / INDEX_DIR} is corrupt ({exc}); rebuild "
                    f"the corpus with '{rebuild_command(self.corpus_dir)}'"
                ) from None
            raise

    def search_many(self, queries: Sequence[str], k: int = 3) -> list[list[Hit]]:
        """One ranked hit list (at most ``k`` hits) per query; bad queries give ``[]``.

        A batch is split into one contiguous chunk per thread; a batch smaller than twice the
        thread count runs in the calling thread (the pool's hand-off costs more than it saves).
        Only one call at a time uses the pool: a call made while another call's batch is on it
        searches in its own thread instead of queueing behind that batch, so with many callers
        (server connections, env workers) a small batch is never stuck behind a huge one, and the
        callers' threads still search in parallel (Tantivy releases the GIL).
        """
        if self._closed:
            raise RuntimeError("LocalRetriever is closed")
        queries = list(queries)
        try:
            k = int(k)
        except (TypeError, ValueError):
            k = 3
        k = min(k, MAX_K)
        if k <= 0 or not queries:
            return [[] for _ in queries]
        n = len(queries)
        if self.threads == 1 or n < 2 * self.threads:
            return self._search_chunk(queries, k)
        with self._pool_lock:
            use_pool = not self._pool_busy and not self._closed
            if use_pool:
                self._pool_busy = True
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="wideseek-search")
        if not use_pool:  # another caller's batch holds the pool: search here rather than queue
            return self._search_chunk(queries, k)
        try:
            size = -(-n // self.threads)
            futures = [
                self._pool.submit(self._search_chunk, queries[i : i + size], k)
                for i in range(0, n, size)
            ]
            results: list[list[Hit]] = []
            for future in futures:
                results.extend(future.result())
            return results
        finally:
            with self._pool_lock:
                self._pool_busy = False

    # -- access ------------------------------------------------------------------------------

    def access_many(self, urls: Sequence[str]) -> list[Page | None]:
        """The stored page for each URL (any Wikipedia URL form), or None if unknown/not Wikipedia.

        URLs are only ever keys of the page store: no URL, however it is written (``file://``,
        ``../``, an absolute path), makes this read a file."""
        if self._closed:
            raise RuntimeError("LocalRetriever is closed")
        out: list[Page | None] = []
        for url in urls:
            try:
                if isinstance(url, str) and "index.php/" in url:  # .../w/index.php/Title (RLinf rule)
                    url = url.replace("index.php/", "index.php?title=", 1)
                key = canonical_url(url)
            except NotWikipediaURL:
                out.append(None)
                continue
            try:
                out.append(self.store.get(key))
            except UnicodeEncodeError:  # a lone surrogate (JSON "\\ud800"): no page has that name
                out.append(None)
        return out

    def candidates_many(self, urls: Sequence[str], limit: int = 10) -> list[list[str]]:
        """For each URL or bare title, the stored page URLs it may mean (``PageStore.candidates``).

        Used when a title finds no page as written: one candidate resolves it, several are offered
        to the agent. Anything that is not a Wikipedia URL or title gives ``[]``."""
        if self._closed:
            raise RuntimeError("LocalRetriever is closed")
        out: list[list[str]] = []
        for url in urls:
            try:
                key = canonical_url(url, allow_bare_title=True)
            except NotWikipediaURL:
                out.append([])
                continue
            out.append(self.store.candidates(key, limit))
        return out

    def similar_titles_many(self, titles: Sequence[str], limit: int = 10) -> list[list[str]]:
        """For each URL or title, up to ``limit`` page URLs whose titles share its words up to one
        typo each, best first.

        A Tantivy query over the ``title`` field in which every word of the title is a fuzzy term
        (Levenshtein distance 1, a swap of neighbouring letters counting once), so "Jim Ryn" finds
        "Jim Ryun" where a search for its words cannot. The ``access`` tool ranks these, with search
        hits, to suggest pages for a URL not in the corpus. A URL that is no Wikipedia URL, or a title
        without a word, gives ``[]``."""
        if self._closed:
            raise RuntimeError("LocalRetriever is closed")
        searcher = self._searcher
        out: list[list[str]] = []
        for title in titles:
            try:
                text = sanitize_query(url_to_title(canonical_url(title, allow_bare_title=True)))
            except NotWikipediaURL:
                text = ""
            if not text:
                out.append([])
                continue
            query = self.index.parse_query(text, [TITLE_FIELD], fuzzy_fields={TITLE_FIELD: (False, 1, True)})
            urls: list[str] = []
            for _score, address in searcher.search(query, 4 * limit, count=False).hits:
                url = searcher.doc(address).get_first("url")
                if url not in urls:
                    urls.append(url)
            out.append(urls[:limit])
        return out
