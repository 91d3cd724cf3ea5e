"""The Wikipedia knowledge base: source readers, the page store, the Tantivy index, retrievers."""

from wideseek_env.corpus.types import Hit, Page, Retriever, Table
from wideseek_env.corpus.urls import NotWikipediaURL, canonical_url

__all__ = ["Hit", "Page", "Retriever", "Table", "NotWikipediaURL", "canonical_url"]
