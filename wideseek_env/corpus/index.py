"""The Tantivy passage index: schema and opening.

Each document is one passage of a page: ``title`` and ``text`` are English-stemmed and stored;
``url`` (the page's canonical URL) is stored with the raw tokenizer so it matches exactly.
"""

from __future__ import annotations

from pathlib import Path

import tantivy

from wideseek_env.errors import CorpusNotBuiltError

INDEX_DIR = "index"
SEARCH_FIELDS = ["title", "text"]


def passage_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("title", stored=True, tokenizer_name="en_stem")
    builder.add_text_field("text", stored=True, tokenizer_name="en_stem")
    builder.add_text_field("url", stored=True, tokenizer_name="raw")
    return builder.build()


def create_index(path: Path) -> tantivy.Index:
    """A new empty index at ``path`` (the directory must exist and be empty)."""
    return tantivy.Index(passage_schema(), str(path))


def open_index(path: Path) -> tantivy.Index:
    """Open a built index read-only, or raise CorpusNotBuiltError saying how to rebuild it."""
    path = Path(path)
    if not (path / "meta.json").is_file():
        raise CorpusNotBuiltError(
            f"no Tantivy index at {path}; build the corpus with 'wideseek corpus build'"
        )
    try:
        index = tantivy.Index.open(str(path))
        index.reload()
        index.searcher()
    except Exception as exc:  # tantivy raises ValueError/OSError subclasses for corruption
        raise CorpusNotBuiltError(
            f"the Tantivy index at {path} cannot be opened ({exc}); rebuild it with "
            "'wideseek corpus build --force ...'"
        ) from exc
    return index
