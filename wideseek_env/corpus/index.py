"""The Tantivy passage index: schema and opening.

Each document is one passage of a page: ``title`` and ``text`` are English-stemmed and stored, and
``body`` (title + text, unstored) is what search reads; ``url`` (the page's canonical URL) is stored
with the raw tokenizer so it matches exactly.

Corruption. Tantivy checks a segment file's footer when it opens it, but not the bytes before it:
garbage in the middle of a file makes a later search raise ``ValueError`` or even panic (a
``PanicException``, which is not an ``Exception``, after the Rust runtime has printed a backtrace).
So ``open_index`` verifies every segment file first: each ends with a footer (JSON with the CRC-32
of the bytes before it, its length as a u32 and the magic number 1337, little-endian), and the
CRC is recomputed (about 0.4 s for the 140 MB index of the whole OTT-QA corpus, once per process
for an unchanged index). A mismatch is a ``CorpusNotBuiltError`` naming the file and the rebuild.
"""

from __future__ import annotations

import json
import re
import struct
import threading
import zlib
from pathlib import Path

import tantivy

from wideseek_env.errors import CorpusNotBuiltError

INDEX_DIR = "index"


def passage_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("title", stored=True, tokenizer_name="en_stem")
    builder.add_text_field("text", stored=True, tokenizer_name="en_stem")
    builder.add_text_field("url", stored=True, tokenizer_name="raw")
    # title + passage text as one unstored field, searched alone (as bm25s indexes them): scoring the
    # two fields apart let short titles dominate and lost recall on "entity" queries.
    builder.add_text_field("body", stored=False, tokenizer_name="en_stem")
    return builder.build()


def create_index(path: Path) -> tantivy.Index:
    """A new empty index at ``path`` (the directory must exist and be empty)."""
    return tantivy.Index(passage_schema(), str(path))


_FOOTER_MAGIC = 1337
_SEGMENT_FILE = re.compile(r"^[0-9a-f]{32}\.[a-z0-9_.]+$")
_verified: dict[str, tuple] = {}  # index path -> (name, size, mtime_ns) of every file verified
_verified_lock = threading.Lock()


def rebuild_command(corpus_dir: Path) -> str:
    """The command that rebuilds ``corpus_dir``, with source and input from its manifest if readable."""
    source, input_path = "<source>", "<input>"
    try:
        manifest = json.loads((Path(corpus_dir) / "manifest.json").read_text(encoding="utf-8"))
        source = str(manifest.get("source") or source)
        input_path = str(manifest.get("input") or input_path)
    except (OSError, ValueError, AttributeError):
        pass
    return f"wideseek corpus build --source {source} --input {input_path} --out {corpus_dir} --force"


def _rebuild_hint(path: Path) -> str:
    return f"rebuild the corpus with '{rebuild_command(path.parent)}'"


def _check_file(file: Path) -> str | None:
    """None if ``file`` ends with a Tantivy footer whose CRC-32 matches its content, else why not."""
    size = file.stat().st_size
    with open(file, "rb") as handle:
        if size < 8:
            return f"{file.name} is truncated ({size} bytes)"
        handle.seek(size - 8)
        length, magic = struct.unpack("<II", handle.read(8))
        if magic != _FOOTER_MAGIC or length > min(size - 8, 4096):
            return f"{file.name} has no valid footer (truncated or overwritten)"
        payload = size - 8 - length
        handle.seek(payload)
        try:
            expected = json.loads(handle.read(length))["crc"]
        except (ValueError, KeyError, TypeError):
            return f"{file.name} has a corrupt footer"
        handle.seek(0)
        crc, remaining = 0, payload
        while remaining:
            chunk = handle.read(min(remaining, 1 << 22))
            if not chunk:
                return f"{file.name} is truncated"
            crc = zlib.crc32(chunk, crc)
            remaining -= len(chunk)
    if crc != expected:
        return f"{file.name} is corrupt (checksum mismatch)"
    return None


def verify_index(path: Path) -> None:
    """Check every segment file's footer and checksum, or raise CorpusNotBuiltError naming the file.

    The result is remembered per process for an unchanged directory (same names, sizes, mtimes).
    """
    path = Path(path)
    try:
        files = sorted(p for p in path.iterdir() if _SEGMENT_FILE.match(p.name))
        state = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    except OSError as exc:
        raise CorpusNotBuiltError(f"the Tantivy index at {path} cannot be read ({exc}); {_rebuild_hint(path)}") from None
    key = str(path.resolve())
    with _verified_lock:
        if _verified.get(key) == state:
            return
    for file in files:
        try:
            problem = _check_file(file)
        except OSError as exc:
            problem = f"{file.name} cannot be read ({exc.strerror or exc})"
        if problem:
            raise CorpusNotBuiltError(f"the Tantivy index at {path} is corrupt: {problem}; {_rebuild_hint(path)}")
    with _verified_lock:
        _verified[key] = state


def open_index(path: Path, *, verify: bool = True) -> tantivy.Index:
    """Open a built index read-only, or raise CorpusNotBuiltError saying how to rebuild it.

    ``verify`` checks every segment file's checksum first (see the module docstring).
    """
    path = Path(path)
    if not (path / "meta.json").is_file():
        raise CorpusNotBuiltError(
            f"no Tantivy index at {path} (missing meta.json); build the corpus with "
            f"'{rebuild_command(path.parent)}'"
        )
    if verify:  # before Tantivy reads anything: corrupt bytes can make it panic
        verify_index(path)
    try:
        index = tantivy.Index.open(str(path))
        index.reload()
        index.searcher()
    except BaseException as exc:  # ValueError/OSError for corruption; PanicException is a BaseException
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        raise CorpusNotBuiltError(
            f"the Tantivy index at {path} cannot be opened ({exc}); {_rebuild_hint(path)}"
        ) from None
    return index
