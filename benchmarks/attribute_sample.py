"""Draw the fixed, seeded sample of extracted attribute cells that ``tests/data/attribute_labels.jsonl``
labels, and print each cell's passage *without* the extractor's value, for a person to label.

Usage::

    python -m benchmarks.attribute_sample --tasks data/tasks-ottqa --corpus data/corpus-ottqa \\
        [--n 240] [--seed 14] [--json OUT.jsonl]

A cell is sampled when its column is one of :data:`wideseek_env.taskgen.attributes.ATTRIBUTES`'
columns and its provenance is an entity page's passage (not a table row, not derived). The draw is
stratified by attribute (round-robin over attribute types, each shuffled with ``--seed``) so rare
attributes are represented. ``--json`` writes the sampled cells *with* the page text (what the test
re-runs the extractor on) but never any label: labels are written by hand, from the printed passages.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from wideseek_env.corpus.store import PageStore
from wideseek_env.taskgen.attributes import ATTRIBUTES
from wideseek_env.taskgen.drafts import cell_sources

_KEY_OF_COLUMN = {a.column: a.key for a in ATTRIBUTES.values()}


def attribute_cells(tasks_dir: Path) -> dict[str, dict[tuple[str, str], str]]:
    """Per attribute key, the distinct (page url, passage) cells the task files hold."""
    out: dict[str, dict[tuple[str, str], str]] = {}
    for name in ("train.jsonl", "test.jsonl"):
        for line in (tasks_dir / name).read_text().splitlines():
            task = json.loads(line)
            sources = cell_sources(task.get("provenance", {}))
            for c, display in enumerate(task["display_columns"]):
                key = _KEY_OF_COLUMN.get(display)
                if key is None:
                    continue
                for row in sources:
                    if c >= len(row) or len(row[c]) != 2 or row[c][1].lstrip().startswith("|"):
                        continue
                    url, passage = row[c]
                    out.setdefault(key, {}).setdefault((url, passage), task["kind"])
    return out


def draw(cells: dict[str, dict[tuple[str, str], str]], n: int, seed: int) -> list[dict]:
    """``n`` cells, round-robin over attribute keys (sorted), each key's cells shuffled by ``seed``."""
    rng = random.Random(seed)
    pools = {}
    for key in sorted(cells):
        items = sorted(cells[key].items())
        rng.shuffle(items)
        pools[key] = items
    picked: list[dict] = []
    seen_pages: set[tuple[str, str]] = set()
    while len(picked) < n and any(pools.values()):
        for key in sorted(pools):
            if pools[key] and len(picked) < n:
                (url, passage), kind = pools[key].pop()
                if (url, key) in seen_pages:
                    continue
                seen_pages.add((url, key))
                picked.append({"url": url, "attribute": key, "kind": kind, "passage": passage})
    return picked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=Path, default=Path("data/tasks-ottqa"))
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus-ottqa"))
    ap.add_argument("--n", type=int, default=240)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--json", type=Path, help="write the sampled cells with page text (no labels)")
    args = ap.parse_args()
    sample = draw(attribute_cells(args.tasks), args.n, args.seed)
    store = PageStore(args.corpus / "pages.sqlite")
    for i, cell in enumerate(sample):
        page = store.get(cell["url"])
        cell["text"] = " ".join(page.text.split()) if page else ""
        print(f"[{i}] {cell['attribute']}  {cell['url']}\n    {cell['text'][:700]}\n")
    if args.json:
        with args.json.open("w") as f:
            for cell in sample:
                f.write(json.dumps(cell, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
