"""Streaming readers of corpus sources.

Every reader is a generator over one source (a file or a directory) that never holds the source in
memory. It yields records of four kinds, which the builder (``corpus.build``) routes as follows:

- ``Page``: a page fragment: stored (fragments of one URL are appended in order) AND split into
  ~100-word passages for the search index;
- ``StoredPage``: a page fragment that is only stored (its passages come as ``Passage`` records);
- ``Passage``: a search passage indexed verbatim (sources that ship their own passages: DPR,
  RLinf), never stored;
- ``Table``: a Wikipedia table (OTT-QA), stored for the task generator.

URLs are canonical (``urls.canonical_url``) and text is detokenised (``text.detokenize``).

Errors: a missing file, undecodable bytes, invalid JSON, a missing or malformed field or a truncated
or damaged compressed stream raise ``CorpusFormatError`` with one message, ``"<file>, line <n>:
<what>"``. Rows with empty text are skipped. Files may be plain or compressed (``.xz``, ``.gz``,
``.bz2``). A lone UTF-16 surrogate in a JSON string (``"\\ud800"``, which JSON allows but is not
text: SQLite and Tantivy refuse it) becomes U+FFFD, the replacement character.

The record types are defined in ``corpus.types`` and the file reading that all formats share
(decompression, numbered lines, JSON objects, field checks, the error format) in
``corpus.sourceio``; this module holds one section per format and the ``READERS`` registry, and
re-exports ``StoredPage``, ``Passage``, ``Record`` and ``COMPRESSED_SUFFIXES``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Iterator

from wideseek_env.corpus.sourceio import (
    COMPRESSED_SUFFIXES,
    existing_path,
    files_in,
    format_error,
    json_objects,
    numbered_lines,
    optional_str,
    required_field,
    strip_compression,
    title_of,
    utf8_problem,
    wiki_url,
)
from wideseek_env.corpus.text import detokenize
from wideseek_env.corpus.types import Page, Passage, Record, StoredPage, Table
from wideseek_env.corpus.urls import NotWikipediaURL, canonical_url, title_to_url
from wideseek_env.errors import CorpusFormatError

__all__ = [
    "COMPRESSED_SUFFIXES",
    "READERS",
    "RLINF_PAGES",
    "RLINF_PASSAGES",
    "Passage",
    "Record",
    "StoredPage",
    "clean_cell",
    "jsonl_files",
    "ottqa_files",
    "read_dpr",
    "read_jsonl",
    "read_ottqa",
    "read_rlinf",
    "render_table",
    "rlinf_files",
    "source_files",
    "table_section",
]


# --------------------------------------------------------------------------------------------------
# OTT-QA


def ottqa_files(path: Path) -> tuple[list[Path], list[Path]]:
    """The (table files, passage files) of an OTT-QA source: a directory or one file.

    Table files are named ``*tables.jsonl`` and passage files ``*passages.jsonl`` (each possibly
    compressed); both lists are sorted by name.
    """
    path = existing_path(path)
    if path.is_dir():
        tables, passages = files_in(path, "tables.jsonl"), files_in(path, "passages.jsonl")
        if not tables and not passages:
            raise CorpusFormatError(
                f"{path}: no *tables.jsonl[.xz] or *passages.jsonl[.xz] files in this directory"
            )
        return tables, passages
    name = strip_compression(path.name)
    if name.endswith("tables.jsonl"):
        return [path], []
    if name.endswith("passages.jsonl"):
        return [], [path]
    raise CorpusFormatError(
        f"{path}: cannot tell whether this OTT-QA file holds tables or passages "
        "(name it *tables.jsonl[.xz] or *passages.jsonl[.xz])"
    )


def clean_cell(text: str) -> str:
    """A detokenised table cell with no ``|``: the markdown rendering then holds it verbatim.

    A ``|`` in an OTT-QA cell is wikitext residue (``"6 July 1978 |"``): it is dropped at the ends
    and replaced by ``/`` inside.
    """
    cell = detokenize(text)
    if "|" in cell:
        cell = cell.strip(" |").replace("|", "/")
    return cell


def render_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table (header row, ``---`` separator, one line per row) of clean cells.

    Markdown because LLMs read it well and BM25 ignores the pipes; one line per row so that passage
    splitting can cut between rows and repeat the header (see ``passages.split_passages``).
    """
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def _cells(raw_row, path: Path, lineno: int) -> tuple[list[str], list[list[str]]]:
    """Texts and canonical link URLs of one OTT-QA row (a list of ``[text, links]`` cells)."""
    texts: list[str] = []
    links: list[list[str]] = []
    try:
        for text, cell_links in raw_row:
            texts.append(clean_cell(text))
            urls = []
            for link in cell_links:
                try:
                    urls.append(canonical_url(link))
                except NotWikipediaURL:
                    pass  # an external or empty link: not a page of the corpus
            links.append(urls)
    except (TypeError, ValueError, AttributeError):
        raise format_error(path, lineno, "malformed table: each cell must be [text, [links]]") from None
    return texts, links


def _table(obj: dict, path: Path, lineno: int) -> Table:
    url = wiki_url(required_field(obj, "url", path, lineno), path, lineno)
    header, _ = _cells(required_field(obj, "header", path, lineno, list), path, lineno)
    rows, links = [], []
    for raw_row in required_field(obj, "data", path, lineno, list):
        if not isinstance(raw_row, list):
            raise format_error(path, lineno, "malformed table: 'data' must be a list of rows")
        texts, row_links = _cells(raw_row, path, lineno)
        rows.append(texts)
        links.append(row_links)
    return Table(
        uid=required_field(obj, "uid", path, lineno),
        url=url,
        title=detokenize(optional_str(obj, "title", path, lineno)) or title_of(url),
        section_title=detokenize(optional_str(obj, "section_title", path, lineno)),
        section_text=detokenize(optional_str(obj, "section_text", path, lineno)),
        header=header,
        rows=rows,
        links=links,
    )


def table_section(table: Table) -> str:
    """The page text of one table: ``## section title``, the section text, the markdown table."""
    parts = []
    if table.section_title:
        parts.append("## " + table.section_title)
    if table.section_text:
        parts.append(table.section_text)
    parts.append(render_table(table.header, table.rows))
    return "\n\n".join(parts)


def read_ottqa(path: Path) -> Iterator[Record]:
    """Tables, then passages, of OTT-QA (see ``shared/data/README.md`` for the format).

    Table files are read first. The first table of a page yields a ``Page`` whose text is the page's
    intro plus the table's section (``table_section``); a later table of the same page yields only
    its section (the builder appends it). Every table also yields its ``Table``.

    A passage (``{"url": "/wiki/X", "text"}``) of a page that has a table is skipped: it is that
    page's intro again. Every other passage becomes a ``Page`` titled after its URL. Only the set of
    table-page URLs (a few thousand) is kept in memory.
    """
    table_files, passage_files = ottqa_files(path)
    table_pages: set[str] = set()
    for file in table_files:
        for lineno, obj in json_objects(file):
            table = _table(obj, file, lineno)
            section = table_section(table)
            if table.url in table_pages:
                yield Page(table.url, table.title, section)
            else:
                table_pages.add(table.url)
                intro = detokenize(optional_str(obj, "intro", file, lineno))
                yield Page(table.url, table.title, f"{intro}\n\n{section}" if intro else section)
            yield table
    for file in passage_files:
        for lineno, obj in json_objects(file):
            url = wiki_url(required_field(obj, "url", file, lineno), file, lineno)
            if url in table_pages:
                continue
            text = detokenize(required_field(obj, "text", file, lineno))
            if text:
                yield Page(url, title_of(url), text)


# --------------------------------------------------------------------------------------------------
# DPR


def _decoded_lines(path: Path, counter: list[int]) -> Iterator[str]:
    """Decoded lines for ``csv``; ``counter[0]`` is the number of the line last handed out."""
    for lineno, raw in numbered_lines(path):
        counter[0] = lineno
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise format_error(path, lineno, utf8_problem(exc)) from None


def read_dpr(path: Path) -> Iterator[Record]:
    """DPR's ``psgs_w100.tsv``: a header ``id<TAB>text<TAB>title``, then one passage a row.

    Fields may be quoted as in the real file (``"..."`` with ``""`` for a quote). The column order
    comes from the header; a file without a header is read as ``id, text, title``. Each row yields a
    ``StoredPage`` fragment of the article ``title`` (fragments are appended in file order) and the
    row's text as a ``Passage``, so that DPR's own 100-word passages are what search returns.
    """
    path = existing_path(path)
    if path.is_dir():
        raise CorpusFormatError(f"{path}: is a directory; give the DPR .tsv file")
    counter = [0]
    reader = csv.reader(_decoded_lines(path, counter), delimiter="\t", quotechar='"', strict=True)
    columns, width = {"text": 1, "title": 2}, 3
    first = True
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise format_error(path, counter[0], f"malformed TSV ({exc})") from None
        if first:
            first = False
            if row and row[0].strip().lower() == "id":
                names = [name.strip().lower() for name in row]
                missing = {"text", "title"} - set(names)
                if missing:
                    raise format_error(path, counter[0], f"header lacks column(s) {sorted(missing)}")
                columns = {name: names.index(name) for name in ("text", "title")}
                width = len(names)
                continue
        if not row:
            continue
        try:
            text, title = row[columns["text"]], row[columns["title"]]
        except IndexError:
            raise format_error(
                path, counter[0], f"expected {width} tab-separated columns, got {len(row)}"
            ) from None
        text = detokenize(text)
        if not text:
            continue
        if not title.strip():
            raise format_error(path, counter[0], "empty title")
        url = title_to_url(title)
        title = title_of(url)
        yield StoredPage(url, title, text)
        yield Passage(url, title, text)


# --------------------------------------------------------------------------------------------------
# Generic JSONL and RLinf / ASearcher Wiki-2018


def _split_quoted_title(contents: str) -> tuple[str, str]:
    """``'"Title"\\ntext'`` (Search-R1 / FlashRAG wiki-18 ``contents``) -> ``("Title", "text")``.

    Contents without a quoted first line give ``("", contents)``.
    """
    if contents.startswith('"'):
        first, sep, rest = contents.partition("\n")
        if sep and len(first) >= 2 and first.endswith('"'):
            return first[1:-1], rest
    return "", contents


def _page_fields(obj: dict, path: Path, lineno: int) -> tuple[str, str, str]:
    """``(canonical url, title, text)`` of a generic page/passage object; see ``read_jsonl``."""
    text = obj.get("text")
    if text is None:
        text = obj.get("contents")
        if text is None:
            raise format_error(path, lineno, "missing field 'text' (or 'contents')")
    if not isinstance(text, str):
        raise format_error(path, lineno, f"field 'text' must be a str, got {type(text).__name__}")
    title = optional_str(obj, "title", path, lineno)
    raw_url = optional_str(obj, "url", path, lineno)
    if "text" not in obj:
        quoted, rest = _split_quoted_title(text)
        if quoted:
            title, text = title or quoted, rest
    if raw_url:
        url = wiki_url(raw_url, path, lineno)
    elif title.strip():
        url = title_to_url(title)
    else:
        raise format_error(path, lineno, "needs a 'url' or a 'title'")
    return url, (title.strip() or title_of(url)), detokenize(text)


def read_jsonl(path: Path) -> Iterator[Record]:
    """Generic JSON lines, one page (fragment) per line: ``{"url", "title", "text"}``.

    - ``url`` is optional when ``title`` is given (the URL is then the title's Wikipedia URL);
      ``title`` is optional when ``url`` is given (the title is then read from the URL);
    - ``url`` must be an English Wikipedia URL in any accepted form (``urls`` module): the page
      store and the ``access`` tool key pages by canonical Wikipedia URL, so a page under another
      site's URL could never be reached. Such a line is rejected with an error naming it;
    - ``contents`` is accepted instead of ``text`` (Search-R1's ``wiki-18.jsonl``: ``{"id",
      "contents": "\\"Title\\"\\ntext"}``; the quoted first line is then the title);
    - several lines with one URL are fragments of one page, appended in order.

    ``path`` is one file or a directory of ``*.jsonl[.xz|.gz|.bz2]`` files (read in name order).
    """
    for file in jsonl_files(path):
        for lineno, obj in json_objects(file):
            url, title, text = _page_fields(obj, file, lineno)
            if text:
                yield Page(url, title, text)


def jsonl_files(path: Path) -> list[Path]:
    path = existing_path(path)
    if not path.is_dir():
        return [path]
    files = files_in(path, ".jsonl")
    if not files:
        raise CorpusFormatError(f"{path}: no *.jsonl[.xz|.gz|.bz2] files in this directory")
    return files


RLINF_PAGES = "wiki_webpages.jsonl"
RLINF_PASSAGES = "wiki_corpus.jsonl"


def rlinf_files(path: Path) -> tuple[Path | None, Path | None]:
    """``(wiki_webpages file, wiki_corpus file)`` of an RLinf source; one of them may be None."""
    path = existing_path(path)
    candidates = sorted(path.iterdir()) if path.is_dir() else [path]
    found: dict[str, Path] = {}
    for candidate in candidates:
        name = strip_compression(candidate.name)
        if name in (RLINF_PAGES, RLINF_PASSAGES) and candidate.is_file():
            found.setdefault(name, candidate)
    if not found:
        raise CorpusFormatError(
            f"{path}: expected {RLINF_PAGES} and/or {RLINF_PASSAGES} "
            "(the RLinf/ASearcher Wiki-2018 layout)"
        )
    return found.get(RLINF_PAGES), found.get(RLINF_PASSAGES)


def read_rlinf(path: Path) -> Iterator[Record]:
    """RLinf's WideSeek-R1 Wiki-2018 corpus (the ASearcher-Local-Knowledge layout).

    ``path`` is the directory holding the files, or one of them. Formats, as RLinf's retrieval
    server and tool client read them (RLinf ``examples/wideseek_r1/search_engine/
    local_retrieval_server_qdrant.py`` and ``rlinf/agents/wideseek_r1/tools.py``: pages are looked
    up by ``page["url"]`` and shown as ``page["contents"]``; search hits are shown as
    ``hit["contents"]`` with ``hit["url"]``):

    - ``wiki_webpages.jsonl`` (pages for ``access``): ``{"url", "contents"}``, ``url`` like
      ``https://en.wikipedia.org/w/index.php?title=List%20of%20capitals%20of%20France``; an optional
      ``title`` is used, else the title comes from the URL. ``text`` is accepted for ``contents``.
    - ``wiki_corpus.jsonl`` (passages for ``search``): ``{"id", "contents", "url", ...}`` where
      ``contents`` is ``"\\"Title\\"\\npassage text"`` as in FlashRAG/Search-R1's wiki-18; extra
      fields (``wikipedia_id``) are ignored; without ``url`` the URL comes from the title.

    Assumed, as the field names above were read from RLinf's code rather than from a data sample.

    Routing: with both files, webpages are stored (``StoredPage``) and corpus passages are indexed
    verbatim (``Passage``), exactly RLinf's split of roles. With only the corpus, each passage is
    also stored as a fragment of its page. With only webpages, pages are stored and split into
    passages by the builder (``Page``).
    """
    pages_file, passages_file = rlinf_files(path)
    if pages_file is not None:
        kind = StoredPage if passages_file is not None else Page
        for lineno, obj in json_objects(pages_file):
            url, title, text = _page_fields(obj, pages_file, lineno)
            if text:
                yield kind(url, title, text)
    if passages_file is not None:
        for lineno, obj in json_objects(passages_file):
            url, title, text = _page_fields(obj, passages_file, lineno)
            if not text:
                continue
            if pages_file is None:
                yield StoredPage(url, title, text)
            yield Passage(url, title, text)


# --------------------------------------------------------------------------------------------------
# Registry


READERS: dict[str, Callable[[Path], Iterator[Record]]] = {
    "ottqa": read_ottqa,
    "dpr": read_dpr,
    "rlinf": read_rlinf,
    "jsonl": read_jsonl,
}


def source_files(source: str, path: Path) -> list[Path]:
    """The files that ``READERS[source]`` reads from ``path`` (for fingerprints); validates both."""
    if source not in READERS:
        raise CorpusFormatError(
            f"unknown corpus source {source!r}; choose one of {sorted(READERS)}"
        )
    if source == "ottqa":
        tables, passages = ottqa_files(path)
        return tables + passages
    if source == "rlinf":
        return [p for p in rlinf_files(path) if p is not None]
    if source == "jsonl":
        return jsonl_files(path)
    path = existing_path(path)
    if path.is_dir():
        raise CorpusFormatError(f"{path}: is a directory; give the DPR .tsv file")
    return [path]
