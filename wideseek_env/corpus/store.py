"""The page store: an embedded SQLite key-value store of pages keyed by canonical URL, plus tables.

Layout of ``pages.sqlite``::

    pages(url TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL)
    tables(uid TEXT PRIMARY KEY, url TEXT NOT NULL, data TEXT NOT NULL)   -- data: Table as JSON

SQLite is in the standard library, safe for concurrent readers, and needs no server. Readers
borrow read-only connections from a small pool for the length of one query (a connection is
used by one thread at a time): a server that runs each HTTP connection in a new thread thus
reuses a few SQLite connections instead of opening one per thread, which would hold a file
descriptor until the garbage collector found it (hundreds under load).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from wideseek_env.corpus.types import Page, Table
from wideseek_env.corpus.urls import title_variants
from wideseek_env.errors import CorpusNotBuiltError

PAGES_FILE = "pages.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (url TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tables (uid TEXT PRIMARY KEY, url TEXT NOT NULL, data TEXT NOT NULL);
"""


_TABLE_FIELDS = tuple(f.name for f in dataclasses.fields(Table))


def table_to_json(table: Table) -> str:
    # Same JSON as dataclasses.asdict, without its deep copy of every cell (5x faster).
    return json.dumps({name: getattr(table, name) for name in _TABLE_FIELDS}, ensure_ascii=False)


def table_from_json(data: str) -> Table:
    return Table(**json.loads(data))


class PageWriter:
    """Appends page fragments and tables while a corpus is built (single writer, one transaction)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
        self._db.execute("BEGIN")

    def add_pages(self, pages: Iterable[Page]) -> None:
        """Insert pages; a fragment whose URL exists already is appended to that page's text."""
        self.add_page_rows((p.url, p.title, p.text) for p in pages)

    def add_page_rows(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """``add_pages`` for ``(url, title, text)`` tuples (what the corpus builder batches)."""
        self._db.executemany(
            "INSERT INTO pages(url, title, text) VALUES (?, ?, ?) "
            "ON CONFLICT(url) DO UPDATE SET text = pages.text || char(10) || char(10) || excluded.text",
            rows,
        )

    def add_tables(self, tables: Iterable[Table]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO tables(uid, url, data) VALUES (?, ?, ?)",
            ((t.uid, t.url, table_to_json(t)) for t in tables),
        )

    def close(self) -> tuple[int, int]:
        """Commit and return (number of pages, number of tables)."""
        self._db.commit()
        pages = self._db.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
        tables = self._db.execute("SELECT COUNT(*) FROM tables").fetchone()[0]
        self._db.close()
        return pages, tables


def _rebuild_command(corpus_dir: Path) -> str:
    from wideseek_env.corpus.index import rebuild_command  # index imports nothing of ours: no cycle

    return rebuild_command(corpus_dir)


class PageStore:
    """Read-only access to ``pages.sqlite``; safe to share between threads."""

    MAX_IDLE = 16  # idle connections kept for reuse; more concurrent readers open (and close) extra

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise CorpusNotBuiltError(
                f"page store {self.path} is missing; build the corpus with "
                f"'{_rebuild_command(self.path.parent)}'"
            )
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        try:
            with self._connection() as conn:
                conn.execute("SELECT url, title, text FROM pages LIMIT 1").fetchall()
                conn.execute("SELECT uid, url, data FROM tables LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise self._corrupt(exc) from None

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection for this thread's exclusive use until the block ends."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        try:
            yield conn
        finally:
            with self._lock:
                keep = not self._closed and len(self._idle) < self.MAX_IDLE
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def _corrupt(self, exc: sqlite3.DatabaseError) -> CorpusNotBuiltError:
        return CorpusNotBuiltError(
            f"page store {self.path} is corrupt ({exc}); rebuild the corpus with "
            f"'{_rebuild_command(self.path.parent)}'"
        )

    def _one(self, sql: str, params: tuple = ()):
        try:
            with self._connection() as conn:
                return conn.execute(sql, params).fetchone()
        except sqlite3.DatabaseError as exc:  # damage in a page not read when the store was opened
            raise self._corrupt(exc) from None

    def get(self, url: str) -> Page | None:
        """The page stored under canonical ``url``, or None."""
        row = self._one("SELECT url, title, text FROM pages WHERE url = ?", (url,))
        return Page(*row) if row else None

    def get_many(self, urls: Sequence[str]) -> list[Page | None]:
        return [self.get(url) for url in urls]

    def candidates(self, key: str, limit: int = 10) -> list[str]:
        """Stored page URLs that canonical ``key`` may mean, at most ``limit``, in a fixed order.

        The page under ``key`` itself and its case variants (``urls.title_variants``, which cover
        non-ASCII letters), then any other page whose URL equals ``key`` ignoring ASCII case (a
        scan of the URL column: about 20 ms for 171k pages, run only for titles that found no
        page), then the pages titled ``<title> (...)`` (how Wikipedia tells same-named pages apart,
        e.g. ``Mercury_(planet)``; a key-range search).
        """
        found: list[str] = []
        try:
            for variant in title_variants(key):
                row = self._one("SELECT url FROM pages WHERE url = ?", (variant,))
                if row and row[0] not in found:
                    found.append(row[0])
            prefix = key + "_("
            with self._connection() as conn:
                rows = conn.execute(
                    "SELECT url FROM pages WHERE url = ? COLLATE NOCASE ORDER BY url LIMIT ?", (key, limit)
                ).fetchall()
                rows += conn.execute(
                    "SELECT url FROM pages WHERE url >= ? AND url < ? ORDER BY url LIMIT ?",
                    (prefix, prefix + "\U0010ffff", limit),
                ).fetchall()
        except UnicodeEncodeError:  # a lone surrogate: no page has that name
            return found[:limit]
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from None
        found.extend(url for (url,) in rows if url not in found)
        return found[:limit]

    def __len__(self) -> int:
        return self._one("SELECT COUNT(*) FROM pages")[0]

    def _rows(self, sql: str) -> Iterator[tuple]:
        with self._connection() as conn:  # held until the iteration ends or the generator closes
            cursor = conn.execute(sql)
            while True:
                try:
                    row = cursor.fetchone()
                except sqlite3.DatabaseError as exc:
                    raise self._corrupt(exc) from None
                if row is None:
                    return
                yield row

    def iter_pages(self) -> Iterator[Page]:
        for row in self._rows("SELECT url, title, text FROM pages ORDER BY url"):
            yield Page(*row)

    def iter_tables(self) -> Iterator[Table]:
        """Every stored table, in uid order (deterministic)."""
        for (data,) in self._rows("SELECT data FROM tables ORDER BY uid"):
            yield table_from_json(data)

    def count_tables(self) -> int:
        return self._one("SELECT COUNT(*) FROM tables")[0]

    def close(self) -> None:
        """Close the idle connections; connections in use close when their query ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
