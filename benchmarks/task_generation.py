"""Task generation from the whole shared OTT-QA corpus: time, counts, and a check of every task.

It builds the default corpus if missing, generates the task set from scratch into a temporary
directory (timed: CPU and wall), generates it again into a second directory (the files must be
byte-identical), calls the generator a third time on the first directory (reuse: no work), then
checks EVERY generated task:

- the gold table as the answer scores 1 (item F1 and success) and an empty answer 0, with
  ``score_answer`` in both compat modes (default and widesearch);
- every gold cell's ``norm_str`` occurs in the ``norm_str`` of a page the task draws on
  (``provenance.pages``);
- no table feeds both train and test; enrich and union queries do not name their table pages.

It prints and writes a markdown report (``benchmarks/results/task_generation.md``).

    python benchmarks/task_generation.py [--seed 0] [--out benchmarks/results/task_generation.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from wideseek_env.corpus.build import build_corpus
from wideseek_env.corpus.store import PAGES_FILE, PageStore
from wideseek_env.evaluation import score_answer
from wideseek_env.evaluation.preprocess import norm_str
from wideseek_env.paths import default_corpus_dir, shared_data_dir
from wideseek_env.tasks import load_tasks
from wideseek_env.taskgen.generate import generate_tasks
from wideseek_env.taskgen.queries import mentions_title

KINDS = ("transcribe", "enrich", "union", "described", "filtered", "wide", "count", "top", "join", "entity")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import describe_machine  # noqa: E402


def timed(fn):
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def check_all(out: Path, corpus: Path) -> dict:
    train = list(load_tasks(out / "train.jsonl"))
    test = list(load_tasks(out / "test.jsonl"))
    problems: Counter = Counter()
    store = PageStore(corpus / PAGES_FILE)
    table_titles = {t.uid: t.title for t in store.iter_tables()}
    norms: dict[str, str] = {}
    for task in train + test:
        for compat in ("default", "widesearch"):
            gold = score_answer(task, task.gold_markdown(), compat=compat)
            if gold.success != 1.0 or gold.item_f1 != 1.0:
                problems[f"gold below 1 ({compat})"] += 1
            if score_answer(task, "", compat=compat).item_f1 != 0.0:
                problems[f"empty answer above 0 ({compat})"] += 1
        texts = []
        for url in task.provenance["pages"]:
            if url not in norms:
                page = store.get(url)
                norms[url] = norm_str(page.title + "\n" + page.text) if page else ""
            texts.append(norms[url])
        for row in task.gold:
            for value in row.values():
                if not value or not any(norm_str(value) in text for text in texts):
                    problems["gold cell not in its pages"] += 1
        if task.kind != "transcribe":
            if mentions_title(task.query, [table_titles[u] for u in task.provenance["tables"]]):
                problems["enrich/union query names its page"] += 1
    store.close()
    overlap = {u for t in train for u in t.provenance["tables"]} & {u for t in test for u in t.provenance["tables"]}
    if overlap:
        problems["tables in both splits"] = len(overlap)
    return {"tasks": len(train) + len(test), "problems": dict(problems)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "task_generation.md"))
    args = parser.parse_args(argv)

    corpus = default_corpus_dir()
    build_corpus("ottqa", shared_data_dir() / "ottqa", corpus, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a", Path(tmp) / "b"
        stats, cpu, wall = timed(lambda: generate_tasks(corpus, a, seed=args.seed, progress=False))
        _, cpu2, wall2 = timed(lambda: generate_tasks(corpus, b, seed=args.seed, progress=False))
        reuse, _, reuse_wall = timed(lambda: generate_tasks(corpus, a, seed=args.seed, progress=False))
        identical = all(
            (a / name).read_bytes() == (b / name).read_bytes()
            for name in ("train.jsonl", "test.jsonl", "stats.json")
        )
        check, check_cpu, _ = timed(lambda: check_all(a, corpus))

    t = stats["tasks"]
    lines = [
        "| kind | train | test | total | share | rows (min/median/max) | columns (min/median/max) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for kind in KINDS:
        r, c = stats["rows"][kind], stats["columns"][kind]
        lines.append(
            f"| {kind} | {t['train'][kind]:,} | {t['test'][kind]:,} | {t['by_kind'][kind]:,} | "
            f"{t['by_kind'][kind] / t['total']:.0%} | {r['min']}/{r['median']}/{r['max']} | "
            f"{c['min']}/{c['median']}/{c['max']} |"
        )
    lines.append(f"| all | {t['train']['total']:,} | {t['test']['total']:,} | {t['total']:,} | 100% | | |")
    ans = stats["answerability"]
    report = "\n".join(
        [
            "# Task generation (whole shared OTT-QA corpus)",
            "",
            f"Machine: {describe_machine(system='name')}; shared with other jobs (load average "
            f"{os.getloadavg()[0]:.1f} at the end), so CPU time is the headline. One process.",
            "",
            f"Seed {args.seed}, default parameters (min_rows 4, test_fraction 0.2, kind mix 0.4 / 0.4 / 0.2).",
            f"Generation from scratch: {cpu:.1f} s CPU, {wall:.1f} s wall (a second run: {cpu2:.1f} s CPU, "
            f"{wall2:.1f} s wall); a rerun on the same directory reused the files in {reuse_wall:.2f} s "
            f"(reused={reuse['reused']}). Two runs with one seed gave byte-identical files: {identical}.",
            "",
            *lines,
            "",
            f"Candidates before balancing (after all filters): "
            + ", ".join(f"{k} {stats['after_filters'][k]:,}" for k in KINDS)
            + f"; union groups: {stats['union_groups']}. Enrich modes: {stats['enrich_modes']}. "
            f"Enrich attributes: {stats['enrich_attributes']}.",
            "",
            f"Answerability: {ans['cells_checked']:,} gold cells checked, {ans['cells_failed']} failed, "
            f"{ans['rows_dropped']} rows / {ans['columns_dropped']} columns / {ans['tasks_dropped']} tasks "
            "dropped for it.",
            "",
            "Filtered candidates, by reason: "
            + "; ".join(f"{k}: {v:,}" for k, v in stats["filtered"].items())
            + ".",
            "",
            f"Check of every one of the {check['tasks']:,} tasks ({check_cpu:.1f} s CPU): gold = 1 and "
            "empty = 0 in both compat modes, every gold cell found in the task's pages, no table in "
            f"both splits, no enrich/union query naming its page. Problems: {check['problems'] or 'none'}.",
            "",
            "Reproduce with `python benchmarks/task_generation.py`.",
            "",
        ]
    )
    print(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report, encoding="utf-8")
    print(f"written to {out}", file=sys.stderr)
    return 1 if check["problems"] or not identical else 0


if __name__ == "__main__":
    sys.exit(main())
