"""Reading corpus source files line by line, for the readers of :mod:`wideseek_env.corpus.readers`.

Files may be plain or compressed (``.xz``, ``.gz``, ``.bz2``: chosen by suffix) and are streamed,
never held in memory. Every problem is a ``CorpusFormatError`` with one message,
``"<file>, line <n>: <what>"`` (:func:`format_error`): a missing file, a file that cannot be
opened, a truncated or damaged compressed stream, undecodable bytes, invalid JSON, a line that is
not a JSON object, a missing or mistyped field, a URL that is not English Wikipedia. A lone UTF-16
surrogate in a JSON string (``"\\ud800"``: JSON allows it, SQLite and Tantivy refuse it) becomes
U+FFFD.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import zlib
from pathlib import Path
from typing import IO, Callable, Iterator

from wideseek_env.corpus.urls import WIKI_PREFIX, NotWikipediaURL, canonical_url
from wideseek_env.errors import CorpusFormatError
from wideseek_env.files import without_surrogates

COMPRESSED_SUFFIXES = (".xz", ".gz", ".bz2")
_OPENERS: dict[str, Callable[[Path], IO[bytes]]] = {
    ".xz": lambda p: lzma.open(p, "rb"),
    ".gz": lambda p: gzip.open(p, "rb"),
    ".bz2": lambda p: bz2.open(p, "rb"),
}
# What a truncated or corrupt compressed stream raises while it is read (zlib.error: damaged gzip data).
_STREAM_ERRORS = (EOFError, OSError, lzma.LZMAError, gzip.BadGzipFile, zlib.error)


def format_error(path: Path, line: int | None, what: str) -> CorpusFormatError:
    """The error to raise: ``"<path>, line <line>: <what>"`` (no line part when ``line`` is None)."""
    where = f"{path}, line {line}" if line else str(path)
    return CorpusFormatError(f"{where}: {what}")


def open_source(path: Path) -> IO[bytes]:
    """``path`` opened for binary reading, decompressed by its suffix."""
    opener = _OPENERS.get(path.suffix)
    try:
        return opener(path) if opener else open(path, "rb")
    except OSError as exc:
        raise format_error(path, None, f"cannot open: {exc.strerror or exc}") from None


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, raw bytes)`` of each line; a broken compressed stream: CorpusFormatError."""
    lineno = 0
    with open_source(path) as handle:
        iterator = iter(handle)
        while True:
            try:
                raw = next(iterator)
            except StopIteration:
                return
            except _STREAM_ERRORS as exc:
                raise format_error(
                    path, lineno + 1, f"the file is truncated or corrupt ({exc})"
                ) from None
            lineno += 1
            yield lineno, raw


def json_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for every non-blank line of a JSON-lines file."""
    for lineno, raw in numbered_lines(path):
        try:
            # json.loads decodes UTF-8 bytes itself (faster than decoding first).
            obj = json.loads(raw)
        except UnicodeDecodeError as exc:
            raise format_error(path, lineno, utf8_problem(exc)) from None
        except json.JSONDecodeError as exc:
            if not raw.strip():
                continue
            raise format_error(path, lineno, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise format_error(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
        # A surrogate can only come from a \\uXXXX escape, or from the bytes ED A0..BF that json
        # decodes with "surrogatepass": look closer only at lines holding either.
        if b"\\ud" in raw or b"\\uD" in raw or b"\xed" in raw:
            obj = without_surrogates(obj)
        yield lineno, obj


def utf8_problem(exc: UnicodeDecodeError) -> str:
    """What a decoding error says, for :func:`format_error`."""
    return f"not valid UTF-8 text ({exc.reason} at byte {exc.start})"


def type_problem(name: str, kind: type, value) -> str:
    """What a mistyped field says, for :func:`format_error`."""
    return f"field {name!r} must be a {kind.__name__}, got {type(value).__name__}"



def required_field(obj: dict, name: str, path: Path, lineno: int, kind: type = str):
    """``obj[name]``, which must exist and be a ``kind``."""
    try:
        value = obj[name]
    except KeyError:
        raise format_error(path, lineno, f"missing field {name!r}") from None
    if not isinstance(value, kind):
        raise format_error(path, lineno, type_problem(name, kind, value))
    return value


def optional_str(obj: dict, name: str, path: Path, lineno: int) -> str:
    """``obj[name]`` if it is a string, ``""`` if it is missing or null."""
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise format_error(path, lineno, type_problem(name, str, value))
    return value


def wiki_url(url: str, path: Path, lineno: int) -> str:
    """The canonical form of an English Wikipedia URL (``urls.canonical_url``)."""
    try:
        return canonical_url(url)
    except NotWikipediaURL as exc:
        raise format_error(
            path, lineno, f"{exc} (the corpus keys pages by English Wikipedia URL)"
        ) from None


def title_of(url: str) -> str:
    """The title of a canonical URL (``urls.url_to_title`` without canonicalising it again)."""
    return url[len(WIKI_PREFIX):].replace("_", " ")


def strip_compression(name: str) -> str:
    """A file name without its compression suffix."""
    for suffix in COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def existing_path(path: Path) -> Path:
    """``path`` as a ``Path``, which must exist."""
    path = Path(path)
    if not path.exists():
        raise CorpusFormatError(f"{path}: no such file or directory")
    return path


def files_in(directory: Path, stem_suffix: str) -> list[Path]:
    """Files of ``directory`` whose name (compression suffix removed) ends with ``stem_suffix``."""
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and strip_compression(p.name).endswith(stem_suffix)
    )


