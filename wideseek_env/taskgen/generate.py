"""``generate_tasks(corpus_dir, out_dir, seed=0, tiers=None) -> stats``: the tiered task generator.

It reads the tables and pages of a built corpus (``wideseek corpus build``) and writes
``train.jsonl``, ``test.jsonl`` (one :class:`~wideseek_env.table.schema.Task` per line, each with
``kind`` and ``tier``) and ``stats.json``. The tiers (one module each):

- 0 (:mod:`.tier0`): transcribe, enrich, union lookups, at most 20% of the set;
- 1 (:mod:`.described`): described sets, no page title in the query, retrievable by BM25;
- 2 (:mod:`.filtered`): filters through linked pages;
- 3 (:mod:`.filtered`): wide unions of >= 5 pages, 100-300 rows, one entity page per row;
- 4 (:mod:`.joins`): counts, top-k per edition, joins of two editions, one entity across editions.

Tiers 1 and 2 draw only on sets of several tables (runs of a union group's pages, and page sets:
one page's tables that share a header, :mod:`.tablesets`), never on one table: OTT-QA cuts tables
at 20 rows, so a one-table set is a lookup (tier 0), not a search. :data:`RULES` states the size
rules of each tier; ``stats.json`` repeats them and counts tiers 1-2 by set shape.

The paper's three stages, deterministic from ``seed``: drafts (rows, columns, query builder, per-
cell provenance), gold from the source itself, then the filters of :mod:`.filters` (answerability
through each cell's passage, BM25 retrievability for tier 1, the page-title rule for tiers 1-4 and
enrich, unique keys, the gold scores 1). Then the mix (:func:`~.split.apply_mix`) and the split
by source page and group (:func:`~.split.split`), and the crash-safe write of :mod:`.output`. Same
seed, same corpus -> byte-identical files; a rerun with the same parameters reuses the files.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from wideseek_env.corpus.build import load_manifest
from wideseek_env.corpus.fingerprint import corpus_fingerprint
from wideseek_env.corpus.store import PAGES_FILE, PageStore
from wideseek_env.taskgen import described, filtered, joins, output, tier0
from wideseek_env.taskgen import queries as Q
from wideseek_env.taskgen.drafts import GENERATOR, VERSION, Draft, Pages, finish
from wideseek_env.taskgen.filters import Answerability, SearchCheck, check_answerable, gold_scores_one, unique_keys
from wideseek_env.taskgen.groups import union_groups
from wideseek_env.taskgen.split import DEFAULT_MIX, apply_mix, split
from wideseek_env.taskgen.tablesets import page_set, page_sets, table_set

TIERS = (0, 1, 2, 3, 4)
# The size rules, as stats.json states them.
RULES = {
    "1": "described sets of several tables only: runs of 2-20 consecutive pages of a union group with "
         "year/season/edition slots (at most 300 rows) and page sets (one page's tables sharing a header); "
         "a one-table set (OTT-QA cuts tables at 20 rows) is a lookup, left to tier 0",
    "2": "filters over sets of several tables only (runs of 2-20 pages, at most 300 rows, and page sets), "
         "keeping 30-70% of the entities whose article states the attribute",
    "3": "runs of >= 5 pages, 100-300 rows after keeping entities whose article states the attribute",
    "4": "count and top over runs of 3-20 pages (at most 300 rows); join over two pages at most three "
         "apart (both lists, and first only); entity over a whole group",
}  # fmt: skip


FINGERPRINTED_PACKAGES = ("taskgen", "table", "tasks", "corpus", "evaluation")


def code_fingerprint(package_dir: Path | None = None) -> str:
    """Hash of the generator's own source files and of every module of the packages it reads through:
    ``table/`` (the task schema, markdown, preprocess, dates, cells, official dates), ``tasks/`` (column
    names, task files), ``corpus/`` (how the page store hands it pages and tables) and ``evaluation/``
    (the scorer that verifies every task's gold scores 1), so that changed
    code never reuses old outputs. Whole packages rather than the modules imported today: an import
    added later is then covered without anyone remembering this list; the cost of a change elsewhere
    in them is one regeneration. ``package_dir``: the ``wideseek_env`` directory to read (default:
    this installation's)."""
    h = hashlib.sha256()
    root = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parent.parent
    for folder in FINGERPRINTED_PACKAGES:
        for path in sorted((root / folder).glob("*.py")):
            h.update(f"{folder}/{path.name}\n".encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def parse_tiers(text: str | None) -> tuple[int, ...]:
    """``"0,1,2"`` -> (0, 1, 2); None or "" -> all tiers. Bad input raises ValueError."""
    if not text:
        return TIERS
    try:
        tiers = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"--tiers takes comma-separated tier numbers 0-4, got {text!r}") from None
    if not tiers or any(t not in TIERS for t in tiers):
        raise ValueError(f"--tiers takes comma-separated tier numbers 0-4, got {text!r}")
    return tuple(tiers)


def generate_tasks(corpus_dir: Path, out_dir: Path, *, seed: int = 0, min_rows: int = 4, progress: bool = True,
                   test_fraction: float = 0.2, tiers: Sequence[int] | None = None,
                   mix: dict[int, float] | None = None, verify: bool = True) -> dict:
    """Generate tasks of ``tiers`` (default all) from ``corpus_dir`` into ``out_dir``.

    Args:
        corpus_dir: a corpus built by ``wideseek corpus build``.
        out_dir: where ``train.jsonl``, ``test.jsonl`` and ``stats.json`` go (created if missing).
        seed: every random choice derives from it.
        min_rows: fewest gold rows of a task (enrich: 5, wide: 100).
        progress: tqdm bars on stderr.
        test_fraction: share of tasks (whole components) in ``test.jsonl``.
        tiers: which tiers to make (None: all).
        mix: target share per tier (default :data:`~.split.DEFAULT_MIX`); tier 0 is capped at its
            share (at most 20%), the others keep every task; shortfalls go in the stats.
        verify: drop any task whose gold does not score 1 (or empty answer not 0).

    Returns:
        The stats (also in ``stats.json``) plus ``"reused"`` and ``"seconds"``.
    """
    started = time.perf_counter()
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    if min_rows < 1:
        raise ValueError(f"min_rows must be >= 1, got {min_rows}")
    tiers = tuple(sorted(set(tiers))) if tiers is not None else TIERS
    if not tiers or any(t not in TIERS for t in tiers):
        raise ValueError(f"tiers must be a non-empty subset of {TIERS}, got {tiers}")
    mix = {t: w for t, w in (mix or DEFAULT_MIX).items() if t in tiers}
    params = {
        "generator": GENERATOR, "version": VERSION, "code_fingerprint": code_fingerprint(),
        "corpus_fingerprint": corpus_fingerprint(load_manifest(corpus_dir)), "seed": seed,
        "min_rows": min_rows, "test_fraction": test_fraction, "tiers": list(tiers),
        "mix": {str(t): mix[t] for t in sorted(mix)}, "verify": verify,
    }  # fmt: skip
    reused = output.reusable(out_dir, params)
    if reused is not None:
        return {**reused, "reused": True, "seconds": round(time.perf_counter() - started, 3)}
    out_dir.mkdir(parents=True, exist_ok=True)
    with output.lock(out_dir):
        reused = output.reusable(out_dir, params)
        if reused is not None:
            return {**reused, "reused": True, "seconds": round(time.perf_counter() - started, 3)}
        store = PageStore(corpus_dir / PAGES_FILE)
        try:
            stats = _generate(store, corpus_dir, out_dir, params, tiers, mix, seed, min_rows, test_fraction,
                              verify, progress)
        finally:
            store.close()
    return {**stats, "reused": False, "seconds": round(time.perf_counter() - started, 3)}


def _drafts(store: PageStore, pages: Pages, tiers, seed: int, min_rows: int, reasons: Counter, progress: bool):
    tables = list(store.iter_tables())
    sections = Counter((t.url, t.section_title) for t in tables)
    drafts: list[Draft] = []
    if 0 in tiers:
        for table in tqdm(tables, desc="tables", unit="table", disable=not progress, file=sys.stderr):
            ts = table_set([table])
            shared = sections[(table.url, table.section_title)] > 1
            made = [tier0.transcribe_draft(ts, seed, min_rows, shared, reasons),
                    tier0.enrich_draft(ts, pages, seed, min_rows, reasons)]
            drafts.extend(d for d in made if d is not None)
    same_page = page_sets(tables) if {1, 2} & set(tiers) else []
    for members in tqdm(same_page, desc="page sets", unit="set", disable=not progress, file=sys.stderr):
        made = []
        if 1 in tiers:
            made.append(described.page_draft(members, seed, min_rows, reasons))
        if 2 in tiers:
            made.append(filtered.filtered_draft(page_set(members), pages, seed, min_rows, reasons))
        drafts.extend(d for d in made if d is not None)
    groups = union_groups(tables)
    for group in tqdm(groups, desc="groups", unit="group", disable=not progress, file=sys.stderr):
        if 0 in tiers:
            drafts += tier0.union_drafts(group, seed, min_rows, reasons)
        if 1 in tiers:
            drafts += described.run_drafts(group, seed, min_rows, reasons)
        if 2 in tiers:
            drafts += filtered.filtered_runs(group, pages, seed, min_rows, reasons)
        if 3 in tiers:
            drafts += filtered.wide_drafts(group, pages, seed, reasons)
        if 4 in tiers:
            for make in (joins.count_drafts, joins.top_drafts, joins.join_drafts, joins.entity_drafts):
                drafts += make(group, seed, min_rows, reasons)
    return tables, groups, drafts


def _generate(store, corpus_dir, out_dir, params, tiers, mix, seed, min_rows, test_fraction, verify, progress):
    pages = Pages(store)
    reasons: Counter = Counter()
    tables, groups, drafts = _drafts(store, pages, tiers, seed, min_rows, reasons, progress)
    candidates = Counter(d.kind for d in drafts)
    # Higher tiers first: where two drafts ask for the same gold table, the harder task stays.
    drafts.sort(key=lambda d: -d.tier)
    acc = Answerability()
    cache: dict = {}
    search = SearchCheck(corpus_dir) if 1 in tiers else None
    kept = []
    seen_ids: set[str] = set()
    seen_gold: set[str] = set()
    try:
        for draft in tqdm(drafts, desc="filter", unit="task", disable=not progress, file=sys.stderr):
            kind = draft.kind
            if check_answerable(draft, pages, acc, cache) is None:
                reasons[f"{kind}: unanswerable (too few answerable rows or columns)"] += 1
                continue
            if search is not None and "searches" in draft.provenance and not search.finds(draft.provenance["searches"]):
                reasons[f"{kind}: description does not retrieve its pages (BM25 top-10)"] += 1
                continue
            task = finish(draft, seed)
            if task.id in seen_ids:
                reasons[f"{kind}: duplicate id"] += 1
                continue
            if draft.titles and Q.mentions_title(task.query, draft.titles):
                reasons[f"{kind}: query names a source page"] += 1
                continue
            if not unique_keys(task):
                reasons[f"{kind}: keys not unique after preprocessing"] += 1
                continue
            gold = json.dumps(task.gold_rows())
            if gold in seen_gold:  # another task already asks for this very table
                reasons[f"{kind}: same gold table as another task"] += 1
                continue
            seen_ids.add(task.id)
            seen_gold.add(gold)
            kept.append(task)
    finally:
        if search is not None:
            search.close()
    after_filters = Counter(t.kind for t in kept)
    mixed, mix_info = apply_mix(kept, mix, seed)
    if verify:
        verified = []
        for task in tqdm(mixed, desc="verify", unit="task", disable=not progress, file=sys.stderr):
            why = gold_scores_one(task)
            if why:
                reasons[f"{task.kind}: {why}"] += 1
            else:
                verified.append(task)
        mixed = verified
    table_pages = {t.uid: t.url for t in tables}
    train, test, split_info = split(mixed, table_pages, test_fraction, seed)
    stats = _stats(params, tables, groups, candidates, after_filters, mix_info, train, test, acc, reasons,
                   split_info, search)
    output.write_outputs(out_dir, train, test, stats)
    return stats


def _stats(params, tables, groups, candidates, after_filters, mix_info, train, test, acc, reasons, split_info,
           search) -> dict:
    all_tasks = train + test
    kinds = sorted({*candidates, *(t.kind for t in all_tasks)})
    upper = [t for t in all_tasks if t.tier != 0]
    by_tier = defaultdict(list)
    for t in all_tasks:
        by_tier[t.tier].append(t)
    return {
        "params": params,
        "corpus": {"fingerprint": params["corpus_fingerprint"], "tables": len(tables)},
        "union_groups": len(groups),
        "candidates": {k: candidates.get(k, 0) for k in kinds},
        "after_filters": {k: after_filters.get(k, 0) for k in kinds},
        # Of the tasks that passed the filters (tier 0 up to its mix target), the share kept.
        "kept_share": round(len(all_tasks) / max(1, mix_info["passing_up_to_target"]), 4),
        "mix": mix_info,
        "tasks": {
            "total": len(all_tasks),
            "by_tier": {str(t): len(by_tier[t]) for t in sorted(by_tier)},
            "by_kind": {k: sum(1 for t in all_tasks if t.kind == k) for k in kinds},
            "train": {k: sum(1 for t in train if t.kind == k) for k in kinds} | {"total": len(train)},
            "test": {k: sum(1 for t in test if t.kind == k) for k in kinds} | {"total": len(test)},
        },
        "rows": {str(t): output.distribution([len(x.gold) for x in ts]) for t, ts in sorted(by_tier.items())},
        "columns": {str(t): output.distribution([len(x.required_columns) for x in ts]) for t, ts in sorted(by_tier.items())},
        "cells": {str(t): output.distribution([len(x.gold) * len(x.required_columns) for x in ts])
                  for t, ts in sorted(by_tier.items())},
        "rules": RULES,
        "set_shapes": {str(t): dict(sorted(Counter(x.provenance.get("shape", "") for x in by_tier[t]).items()))
                       for t in (1, 2) if by_tier[t]},
        "tiers_1_4": {
            "tasks": len(upper),
            "median_rows": output.distribution([len(x.gold) for x in upper])["median"],
            "median_cells": output.distribution([len(x.gold) * len(x.required_columns) for x in upper])["median"],
        },
        "answerability": {
            "cells_checked": acc.cells_checked, "cells_failed": acc.cells_failed,
            "rows_dropped": acc.rows_dropped, "columns_dropped": acc.columns_dropped,
            "tasks_dropped": acc.tasks_dropped,
        },
        "bm25_searches": search.searches if search is not None else 0,
        "filtered": dict(sorted((k, v) for k, v in reasons.items() if v)),
        "split": split_info,
    }  # fmt: skip


def load_stats(out_dir: Path) -> dict:
    return json.loads((Path(out_dir) / output.STATS_FILE).read_text(encoding="utf-8"))
