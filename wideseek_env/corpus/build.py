"""Building a corpus directory from a source: the page store, the passage index, the manifest.

Layout of a built corpus directory::

    manifest.json   written last: its presence (with a known format_version) marks a complete build
    pages.sqlite    pages keyed by canonical URL, and tables (``store.PageWriter``)
    index/          Tantivy index of ~``passage_words``-word passages (``index.passage_schema``)

``build_corpus`` is idempotent (an unchanged input is not rebuilt) and crash-safe: it builds into a
hidden sibling directory ``.<name>.building-<pid>`` and swaps it into place only once complete, so a
killed build leaves the previous corpus (or nothing) at ``out_dir``, never a half-built one.
Leftovers of killed builds are removed by the next build of the same directory. A build holds an
exclusive lock on ``.<name>.lock`` beside ``out_dir``, so a second build of the same directory is
refused (``WideseekError`` saying another build is running) instead of racing the first.

Reading (decompression, JSON, detokenising, passage splitting: ``corpus.passages``) runs in a forked
child process while this process feeds Tantivy and SQLite, so a build keeps two cores busy.
``split_passages`` is re-exported here.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import platform
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Iterator

import tantivy
from tqdm import tqdm

import wideseek_env
from wideseek_env.corpus.index import INDEX_DIR, create_index
from wideseek_env.corpus.passages import split_passages
from wideseek_env.corpus.readers import READERS, Passage, Record, StoredPage, source_files
from wideseek_env.corpus.store import PAGES_FILE, PageWriter
from wideseek_env.corpus.types import Page, Table
from wideseek_env.errors import CorpusNotBuiltError, WideseekError

FORMAT_VERSION = 2  # 2: the combined 'body' search field
MANIFEST_FILE = "manifest.json"
# Tantivy needs >= 15 MB of indexing heap per thread; a bigger heap means fewer, larger segments.
HEAP_PER_THREAD = 128 * 1024 * 1024
_BATCH = 1024  # records per batch: one pipe message, one SQLite executemany, one bar update
Reader = Callable[[Path], Iterable[Record]]
_MANIFEST_KEYS = ("format_version", "source", "input", "fingerprint", "passage_words", "counts")


@dataclass(frozen=True)
class CorpusPaths:
    """Where the parts of a corpus directory live."""

    root: Path
    manifest: Path
    pages: Path
    index: Path


def corpus_paths(corpus_dir: Path) -> CorpusPaths:
    root = Path(corpus_dir)
    return CorpusPaths(root, root / MANIFEST_FILE, root / PAGES_FILE, root / INDEX_DIR)


# --------------------------------------------------------------------------------------------------
# Manifest


def input_fingerprint(source: str, input_path: Path) -> list[dict]:
    """Path, size and mtime of each file the source reader reads: cheap, and changes on any edit."""
    fingerprint = []
    for file in source_files(source, Path(input_path)):
        stat = file.stat()
        fingerprint.append(
            {"path": str(file.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        )
    return fingerprint


def _rebuild_hint(corpus_dir: Path, manifest: dict | None = None) -> str:
    source = (manifest or {}).get("source") or "ottqa"
    input_path = (manifest or {}).get("input") or "<source file or directory>"
    return (
        f"wideseek corpus build --source {source} --input {input_path} --out {corpus_dir} --force"
    )


def load_manifest(corpus_dir: Path) -> dict:
    """The manifest of a complete corpus build at ``corpus_dir``.

    Raises:
        CorpusNotBuiltError: the directory is missing, or its build is incomplete (no manifest: a
            build never ran or was killed), corrupt, or of another format version. The message
            names the directory and the command that rebuilds it.
    """
    paths = corpus_paths(corpus_dir)
    if not paths.root.is_dir():
        raise CorpusNotBuiltError(
            f"no corpus at {paths.root}; build it with '{_rebuild_hint(paths.root)}'"
        )
    if not paths.manifest.is_file():
        raise CorpusNotBuiltError(
            f"the corpus at {paths.root} is incomplete (no {MANIFEST_FILE}); "
            f"build it with '{_rebuild_hint(paths.root)}'"
        )
    try:
        manifest = json.loads(paths.manifest.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or any(key not in manifest for key in _MANIFEST_KEYS):
            raise ValueError("missing keys")
    except (OSError, ValueError) as exc:
        raise CorpusNotBuiltError(
            f"the corpus manifest {paths.manifest} is corrupt ({exc}); "
            f"rebuild it with '{_rebuild_hint(paths.root)}'"
        ) from None
    if manifest["format_version"] != FORMAT_VERSION:
        raise CorpusNotBuiltError(
            f"the corpus at {paths.root} has format version {manifest['format_version']!r}, this "
            f"version of wideseek-env reads {FORMAT_VERSION}; rebuild it with "
            f"'{_rebuild_hint(paths.root, manifest)}'"
        )
    missing = [p.name for p in (paths.pages, paths.index / "meta.json") if not p.is_file()]
    if missing:
        raise CorpusNotBuiltError(
            f"the corpus at {paths.root} is incomplete (missing {', '.join(missing)}); "
            f"rebuild it with '{_rebuild_hint(paths.root, manifest)}'"
        )
    return manifest


def _reusable(
    out_dir: Path, source: str, fingerprint: list[dict], passage_words: int
) -> dict | None:
    """The existing manifest if ``out_dir`` holds a complete build of this very input, else None."""
    try:
        manifest = load_manifest(out_dir)
    except CorpusNotBuiltError:
        return None
    same = (
        manifest["source"] == source
        and manifest["fingerprint"] == fingerprint
        and manifest["passage_words"] == passage_words
    )
    return manifest if same else None


def _versions() -> dict:
    return {
        "wideseek_env": wideseek_env.__version__,
        "tantivy": metadata.version("tantivy"),
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------------------------------
# Directory handling (crash safety)


@contextlib.contextmanager
def _build_lock(out_dir: Path) -> Iterator[int | None]:
    """Hold an exclusive lock on ``.<name>.lock`` beside ``out_dir`` (one build at a time).

    Yields the lock's file descriptor (None without ``fcntl``), which forked children must close.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking, builds of one directory must not overlap
        yield None
        return
    lock_path = out_dir.parent / f".{out_dir.name}.lock"
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WideseekError(
                f"another 'wideseek corpus build' is writing {out_dir}; wait for it to finish"
            ) from None
        yield fd
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _leftovers(out_dir: Path) -> list[Path]:
    """The ``.<name>.building-*`` / ``.<name>.old-*`` siblings of ``out_dir`` (builds in progress or killed)."""
    return [p for pattern in (f".{out_dir.name}.building-*", f".{out_dir.name}.old-*")
            for p in out_dir.parent.glob(pattern)]


def _remove_leftovers(out_dir: Path) -> None:
    """Delete the siblings left by killed builds. Only called under the build lock, so no live build
    owns them."""
    for leftover in _leftovers(out_dir):
        shutil.rmtree(leftover, ignore_errors=True)


def _remove_leftovers_if_idle(out_dir: Path) -> None:
    """On the reuse path: delete leftovers of killed builds (a build killed while deleting the old
    corpus after its swap leaves ``.<name>.old-*`` beside a finished corpus) unless a build is running,
    which removes them itself."""
    if not _leftovers(out_dir):
        return
    try:
        with _build_lock(out_dir):
            _remove_leftovers(out_dir)
    except WideseekError:  # another build holds the lock
        pass


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace anything but a corpus directory, an empty directory or nothing."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise WideseekError(f"{out_dir} exists and is not a directory; choose another --out")
    names = {p.name for p in out_dir.iterdir()}
    if names and not names & {MANIFEST_FILE, PAGES_FILE, INDEX_DIR}:
        raise WideseekError(
            f"{out_dir} exists and is not a corpus directory (no {MANIFEST_FILE}, {PAGES_FILE} or "
            f"{INDEX_DIR}/); refusing to replace it: choose another --out"
        )


def _fsync_tree(root: Path) -> None:
    """Flush all files and directories under ``root`` to disk before the manifest says done."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_manifest(path: Path, manifest: dict) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _swap_in(new_dir: Path, out_dir: Path) -> None:
    """Put the complete ``new_dir`` at ``out_dir``: old away, new in, old deleted.

    Each step is an atomic rename; a kill between the two renames leaves no ``out_dir`` (reported
    as not built) and an ``.old-*`` leftover that the next build removes.
    """
    old_dir = None
    if out_dir.exists():
        old_dir = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        os.rename(out_dir, old_dir)
    os.rename(new_dir, out_dir)
    if old_dir is not None:
        shutil.rmtree(old_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Building


# A batch handed from the reading side to the writing side of a build:
# (page rows (url, title, text) to store, passages (title, text, url) to index, tables,
#  number of records read).
_Batch = tuple[list[tuple[str, str, str]], list[tuple[str, str, str]], list[Table], int]


def _batches(records: Iterable[Record], passage_words: int) -> Iterator[_Batch]:
    """Route records into batches: pages to store, passages to index (``Page`` texts split into
    passages here), tables; ``_BATCH`` records per batch.
    """
    pages: list[tuple[str, str, str]] = []
    passages: list[tuple[str, str, str]] = []
    tables: list[Table] = []
    count = 0
    for record in records:
        count += 1
        kind = type(record)
        if kind is Page:
            pages.append((record.url, record.title, record.text))
            title, url = record.title, record.url
            chunks = split_passages(record.text, passage_words)
            passages.extend((title, chunk, url) for chunk in chunks)
        elif kind is Passage:
            passages.append((record.title, record.text, record.url))
        elif kind is StoredPage:
            pages.append((record.url, record.title, record.text))
        elif kind is Table:
            tables.append(record)
        else:
            raise TypeError(f"a corpus reader yielded {kind.__name__}, not a Page/Passage/Table")
        if count == _BATCH:
            yield pages, passages, tables, count
            pages, passages, tables, count = [], [], [], 0
    yield pages, passages, tables, count


def _produce(reader: Reader, input_path: Path, passage_words: int, conn, parent_end, lock_fd) -> None:
    """Body of the reader process: send every batch, then None; or send the exception raised.

    The forked child first closes what it inherited but must not hold: the pipe's receiving end
    (else, with the parent killed, the pipe would still have a reader and a full pipe would block
    this process forever instead of failing with EPIPE) and the build lock's descriptor (else an
    orphaned child would keep the lock and refuse every later build).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    parent_end.close()
    if lock_fd is not None:
        with contextlib.suppress(OSError):
            os.close(lock_fd)
    try:
        for batch in _batches(reader(input_path), passage_words):
            conn.send(batch)
        conn.send(None)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        details = traceback.format_exc()
        if not isinstance(exc, WideseekError):  # a bug, not bad input: keep the child's traceback
            exc.add_note("raised in the corpus reader process:\n" + details)
        try:
            conn.send(_ReaderFailed(exc))
        except BrokenPipeError:
            pass  # the parent is gone
        except Exception:  # the exception does not pickle: send its text
            with contextlib.suppress(Exception):
                conn.send(_ReaderFailed(RuntimeError(f"the corpus reader failed:\n{details}")))
    finally:
        conn.close()


@dataclass
class _ReaderFailed:
    exception: BaseException


class _ReaderProcess:
    """``_batches`` computed in a forked child process, received through a pipe.

    Why: reading is pure Python (decompression, JSON, detokenising, passage splitting) and holds the
    GIL, while this process feeds Tantivy and SQLite; two processes keep two cores busy. The pipe
    blocks when full, so only a few batches are in flight. The child is forked at construction,
    before Tantivy starts its threads; ``close()`` stops it (always call it: use ``closing``).
    """

    def __init__(self, reader: Reader, input_path: Path, passage_words: int, lock_fd: int | None = None) -> None:
        context = multiprocessing.get_context("fork")
        self._receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_produce,
            args=(reader, input_path, passage_words, sender, self._receiver, lock_fd),
            daemon=True,
        )
        self._process.start()
        sender.close()

    def __iter__(self) -> Iterator[_Batch]:
        while True:
            try:
                message = self._receiver.recv()
            except EOFError:
                self._process.join()
                raise RuntimeError(
                    f"the corpus reader process died (exit code {self._process.exitcode})"
                ) from None
            if message is None:
                return
            if isinstance(message, _ReaderFailed):
                raise message.exception
            yield message

    def close(self) -> None:
        self._receiver.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()


def _record_batches(source: str, input_path: Path, passage_words: int, lock_fd: int | None = None):
    """An iterable of ``_Batch`` with a ``close()`` method, read in a child process if possible."""
    reader = READERS[source]
    if "fork" in multiprocessing.get_all_start_methods():
        return _ReaderProcess(reader, input_path, passage_words, lock_fd)
    return _batches(reader(input_path), passage_words)  # no fork (Windows): read in this process


def _build_into(
    directory: Path, batches: Iterable[_Batch], threads: int, bar: tqdm
) -> dict:
    """Write pages.sqlite and index/ into the empty ``directory``; returns the counts."""
    paths = corpus_paths(directory)
    paths.index.mkdir()
    index = create_index(paths.index)
    writer = index.writer(heap_size=HEAP_PER_THREAD * threads, num_threads=threads)
    store = PageWriter(paths.pages)
    document, add_document = tantivy.Document, writer.add_document
    n_records = n_passages = 0
    try:
        for pages, passages, tables, count in batches:
            store.add_page_rows(pages)
            if tables:
                store.add_tables(tables)
            for title, text, url in passages:
                add_document(document(title=title, text=text, url=url, body=f"{title}\n{text}"))
            n_passages += len(passages)
            n_records += count
            bar.update(count)
        writer.commit()
        writer.wait_merging_threads()
    except BaseException:
        with contextlib.suppress(Exception):
            writer.rollback()
            writer.wait_merging_threads()  # join Tantivy's threads before the directory is deleted
        raise
    finally:
        n_pages, n_tables = store.close()
    return {"records": n_records, "pages": n_pages, "passages": n_passages, "tables": n_tables}


def build_corpus(
    source: str,
    input_path: Path,
    out_dir: Path,
    *,
    threads: int = 2,
    force: bool = False,
    progress: bool = True,
    passage_words: int = 100,
) -> dict:
    """Build (or reuse) the corpus of ``source`` read from ``input_path`` at ``out_dir``.

    ``source`` names a reader of ``readers.READERS`` (ottqa, dpr, rlinf, jsonl). If ``out_dir``
    already holds a complete build of the same source, input files (paths, sizes, mtimes),
    ``passage_words`` and format version, nothing is done and its manifest is returned with
    ``"reused": True``; ``force=True`` rebuilds anyway. The returned dict is the manifest plus
    ``"reused"`` and ``"corpus_dir"`` (neither is written to manifest.json).

    Raises:
        CorpusFormatError: the input is missing or malformed (the message names file and line).
        WideseekError: bad arguments, ``out_dir`` is not a corpus directory, or another build of
            ``out_dir`` is running.
    """
    if threads < 1:
        raise WideseekError(f"threads must be at least 1, got {threads}")
    if passage_words < 1:
        raise WideseekError(f"passage_words must be at least 1, got {passage_words}")
    input_path = Path(input_path).resolve()
    out_dir = Path(out_dir).resolve()
    fingerprint = input_fingerprint(source, input_path)  # also validates source and input
    if not force:
        existing = _reusable(out_dir, source, fingerprint, passage_words)
        if existing is not None:
            _remove_leftovers_if_idle(out_dir)
            return {**existing, "reused": True, "corpus_dir": str(out_dir)}
    _check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(out_dir) as lock_fd:
        _remove_leftovers(out_dir)
        building = out_dir.parent / f".{out_dir.name}.building-{os.getpid()}"
        building.mkdir()
        started = time.perf_counter()
        try:
            with contextlib.closing(
                _record_batches(source, input_path, passage_words, lock_fd)
            ) as batches, tqdm(
                desc=f"corpus {source}",
                unit=" records",
                unit_scale=True,
                file=sys.stderr,
                disable=not progress,
                mininterval=0.5,
            ) as bar:
                counts = _build_into(building, batches, threads, bar)
            _fsync_tree(building)
            manifest = {
                "format_version": FORMAT_VERSION,
                "source": source,
                "input": str(input_path),
                "fingerprint": fingerprint,
                "passage_words": passage_words,
                "counts": counts,
                "versions": _versions(),
                "build_seconds": round(time.perf_counter() - started, 2),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            _write_manifest(corpus_paths(building).manifest, manifest)
            _swap_in(building, out_dir)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    return {**manifest, "reused": False, "corpus_dir": str(out_dir)}
