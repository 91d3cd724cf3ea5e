"""Stage 3 of generation: the filters every draft passes before it becomes a task.

- **answerability** (:func:`check_answerable`): every gold cell's value, normalised with the
  scorer's ``norm_str``, must occur in the *passage* its provenance names (the table row line or
  the attribute sentence), and that passage must occur in the stored text of its page, so the
  ``access`` tool shows it. Derived cells (counts, edition labels) are checked through the rows
  they read. A failing key cell drops its row, any other failing cell drops its column; a draft
  left with fewer than its ``min_rows`` rows or 2 columns is dropped.
- **retrievability** (:class:`SearchCheck`, tier 1): each source page must be among the top-k BM25
  hits of the search text recorded for it.
- **unique keys** after the scorer's preprocessing, and **gold scores 1** (the gold table as the
  answer scores 1 and an empty answer 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from wideseek_env.table.preprocess import norm_str
from wideseek_env.taskgen.columns import preprocessed
from wideseek_env.taskgen.drafts import Draft, Pages
from wideseek_env.table.schema import Task

SEARCH_TOP_K = 10


@dataclass
class Answerability:
    cells_checked: int = 0
    cells_failed: int = 0
    rows_dropped: int = 0
    columns_dropped: int = 0
    tasks_dropped: int = 0


def _shown(pages: Pages, url: str, passage: str, cache: dict) -> bool:
    key = (url, passage)
    if key not in cache:
        text = pages.text(url)
        cache[key] = text is not None and (passage in text or passage in " ".join(text.split()))
    return cache[key]


def check_answerable(draft: Draft, pages: Pages, acc: Answerability, cache: dict) -> Draft | None:
    """Drop rows (failing key cell) and columns (any other failing cell); None if too little is left."""
    n_cols = len(draft.display)
    bad_cols: set[int] = set()
    keep = []
    for r, (row, cells) in enumerate(zip(draft.rows, draft.cells)):
        ok_row = True
        for c in range(n_cols):
            acc.cells_checked += 1
            cell = cells[c]
            value = norm_str(row[c])
            if cell.derived:
                good = _shown(pages, cell.url, cell.passage, cache) if cell.derived != "page title slot" else (
                    pages.text(cell.url) is not None)
            else:
                good = bool(value) and value in norm_str(cell.passage) and _shown(pages, cell.url, cell.passage, cache)
            if good:
                continue
            acc.cells_failed += 1
            if c in draft.key:
                ok_row = False
            else:
                bad_cols.add(c)
        if ok_row:
            keep.append(r)
    acc.rows_dropped += len(draft.rows) - len(keep)
    acc.columns_dropped += len(bad_cols)
    cols = [c for c in range(n_cols) if c not in bad_cols]
    if len(keep) < draft.min_rows or len(cols) < 2 or any(k in bad_cols for k in draft.key):
        acc.tasks_dropped += 1
        return None
    if len(cols) == n_cols and len(keep) == len(draft.rows):
        return draft
    remap = {c: i for i, c in enumerate(cols)}
    draft.display = [draft.display[c] for c in cols]
    draft.specs = [draft.specs[c] for c in cols]
    draft.kinds = [draft.kinds[c] for c in cols]
    draft.key = [remap[c] for c in draft.key]
    draft.rows = [[draft.rows[r][c] for c in cols] for r in keep]
    draft.cells = [[draft.cells[r][c] for c in cols] for r in keep]
    if "rows" in draft.provenance:
        draft.provenance["rows"] = [draft.provenance["rows"][r] for r in keep]
    return draft


class SearchCheck:
    """Whether a search text retrieves a page among the top ``k`` BM25 hits (results cached)."""

    def __init__(self, corpus_dir, k: int = SEARCH_TOP_K) -> None:
        from wideseek_env.corpus.local import LocalRetriever

        self.retriever = LocalRetriever(corpus_dir)
        self.k = k
        self._hits: dict[str, set[str]] = {}
        self.searches = 0

    def finds(self, searches: dict[str, str]) -> bool:
        todo = [q for q in set(searches.values()) if q not in self._hits]
        if todo:
            self.searches += len(todo)
            for q, hits in zip(todo, self.retriever.search_many(todo, k=self.k)):
                self._hits[q] = {h.url for h in hits}
        return all(url in self._hits[q] for url, q in searches.items())

    def close(self) -> None:
        self.retriever.close()


def unique_keys(task: Task) -> bool:
    keys = {tuple(preprocessed(row[c], task.columns[c]) for c in task.unique_columns) for row in task.gold}
    return len(keys) == len(task.gold)


def gold_scores_one(task: Task) -> str | None:
    """None if the gold answer scores 1 and an empty answer 0, else the reason."""
    from wideseek_env.evaluation import score_answer

    gold = score_answer(task, task.gold_markdown())
    if gold.success != 1.0 or gold.item_f1 != 1.0:
        return "gold does not score 1"
    if score_answer(task, "").item_f1 != 0.0:
        return "empty answer does not score 0"
    return None
