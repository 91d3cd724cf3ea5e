"""Records that flow from corpus readers to the store, the index and the tools."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, Union, runtime_checkable


@dataclass(frozen=True)
class Page:
    """A page fragment read from a source, or a whole stored page.

    Readers may yield several fragments with one ``url`` (DPR passages of one article, several tables
    of one page); the builder appends their texts in order. ``url`` is canonical (see ``urls``).
    """

    url: str
    title: str
    text: str


@dataclass(frozen=True)
class Table:
    """A Wikipedia table with detokenised cells; ``links[r][c]`` lists canonical URLs in cell (r, c)."""

    uid: str
    url: str
    title: str
    section_title: str
    section_text: str
    header: list[str]
    rows: list[list[str]]
    links: list[list[list[str]]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoredPage:
    """A page fragment to store but not to index (its passages are yielded as ``Passage``)."""

    url: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Passage:
    """A ready-made search passage of page ``url``, indexed as is and not stored."""

    url: str
    title: str
    text: str


#: What a corpus reader yields (see ``corpus.readers``).
Record = Union[Page, StoredPage, Passage, Table]



@dataclass(frozen=True)
class Hit:
    """One search result: a passage of a page, with the passage text (or a snippet of it)."""

    title: str
    url: str
    text: str
    score: float


@runtime_checkable
class Retriever(Protocol):
    """What the tools need from a knowledge base, local or remote.

    ``search_many`` returns one ranked hit list per query (an empty or unparsable query gives an
    empty list, never an exception); ``access_many`` returns the stored page for each URL, or None
    when the URL is not a Wikipedia URL or not in the corpus.

    Optional: ``candidates_many(urls, limit=10) -> list[list[str]]``, the stored page URLs each
    URL or bare title may mean when it finds no page as written (other case, same-named pages);
    the ``access`` tool uses it when a retriever has it. Also optional:
    ``similar_titles_many(titles, limit=10) -> list[list[str]]``, page URLs whose titles match each
    title's words up to one typo a word; the ``access`` tool suggests from them on a URL not found.
    """

    def search_many(self, queries: Sequence[str], k: int = 3) -> list[list[Hit]]: ...

    def access_many(self, urls: Sequence[str]) -> list[Page | None]: ...

    def close(self) -> None: ...
