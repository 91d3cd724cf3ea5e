"""The main job (``wideseek demo``, run by ``bash scripts/main.sh``).

1. Build the shared OTT-QA Wikipedia corpus into ``wideseek_env.paths.default_corpus_dir()``
   (idempotent: an unchanged input is not rebuilt).
2. Generate the default broad table tasks into ``default_tasks_dir()`` (idempotent: same corpus, code
   and seed -> the files are reused).
3. Show the ``search`` and ``access`` tools the agents use, on one query and one page.
4. Evaluate the scripted baseline (``agents.baselines.ScriptedBaseline``, no LLM) on the generated test
   split with ``agents.eval`` and print the summary table. The run lives in
   ``home_dir()/evals/demo-scripted-test`` and is resumable: a second ``wideseek demo`` reuses the
   finished episodes (and an interrupted one continues where it stopped), and an earlier demo run of other
   tasks or settings there is replaced (an explicit ``--out`` holding another run is refused instead); the
   summary has a row per tier (T0-T4) and per kind. ``--limit N`` evaluates a fixed random sample of N tasks instead.

Only ``wideseek_env`` is needed for steps 1-3; step 4 imports the ``agents`` package of this checkout
(no torch, no LLM).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from wideseek_env import paths

EXAMPLE_SEARCH = {"query": "1968 Summer Olympics men's 1500 metres", "count": 2}
EXAMPLE_ACCESS = {"url": "en.wikipedia.org/w/index.php?title=Jim Ryun", "info_to_extract": "when was he born"}


def build_default_corpus() -> str:
    from wideseek_env.corpus.build import build_corpus

    out = paths.default_corpus_dir()
    started = time.perf_counter()
    manifest = build_corpus("ottqa", paths.shared_data_dir() / "ottqa", out)
    verb = "reused" if manifest.get("reused") else "built"
    print(
        f"corpus {verb} at {out} in {time.perf_counter() - started:.1f} s: "
        f"{manifest['counts']['pages']:,} pages, {manifest['counts']['passages']:,} passages, "
        f"{manifest['counts']['tables']:,} tables"
    )
    return str(out)


def generate_default_tasks(corpus_dir: str) -> Path:
    from wideseek_env.taskgen.generate import generate_tasks

    out = paths.default_tasks_dir()
    stats = generate_tasks(Path(corpus_dir), out, seed=0)
    verb = "reused" if stats.get("reused") else "generated"
    split = stats["tasks"]
    print(
        f"tasks {verb} at {out} in {stats.get('seconds', 0.0):.1f} s: {split['train']['total']:,} train, "
        f"{split['test']['total']:,} test"
    )
    names = {"0": "lookups", "1": "described sets", "2": "filters through linked pages", "3": "wide unions",
             "4": "joins and aggregation"}
    for tier, n in split.get("by_tier", {}).items():
        rows = stats.get("rows", {}).get(tier, {})
        print(f"  T{tier} {names.get(tier, '')}: {n:,} tasks, median {rows.get('median', 0)} rows")
    return out


def _head(text: str, lines: int, width: int = 160) -> str:
    out = [line if len(line) <= width else line[: width - 3] + "..." for line in text.splitlines()[:lines]]
    return "\n".join(out)


def show_tools(corpus_dir: str) -> None:
    from wideseek_env.corpus.local import LocalRetriever
    from wideseek_env.tools.access import AccessTool
    from wideseek_env.tools.search import SearchTool

    with LocalRetriever(corpus_dir) as retriever:
        search, access = SearchTool(retriever), AccessTool(retriever, page_chars=600)
        print("\n== search", json.dumps({"queries": [EXAMPLE_SEARCH]}))
        print(_head(search.call_many([{"queries": [EXAMPLE_SEARCH]}])[0], 9))
        print("\n== access", json.dumps({"urls": [EXAMPLE_ACCESS]}))
        print(_head(access.call_many([{"urls": [EXAMPLE_ACCESS]}])[0], 4, 240))


def run_scripted_eval(corpus_dir: str, tasks_dir: Path, limit: int | None = None, out: str | None = None,
                      parallel: int = 8) -> dict:
    from agents.eval import EvalSpec, evaluate
    from agents.eval.spec import RunMismatchError

    spec = EvalSpec(policy="scripted", tasks=str(tasks_dir / "test.jsonl"), corpus=corpus_dir, limit=limit,
                    parallel=parallel)
    out_dir = Path(out) if out else paths.home_dir() / "evals" / "demo-scripted-test"
    what = f"a fixed sample of {limit} test tasks" if limit else "the whole test split"
    print(f"\n== evaluating the scripted baseline (no LLM) on {what} -> {out_dir}")
    try:
        return evaluate(spec, out_dir)
    except RunMismatchError as e:
        if out is not None:
            raise
        # The demo's own directory holds a run of other tasks or settings (regenerated tasks, a newer
        # checkout): it is the demo's cache, not the user's data, so it is replaced rather than refused.
        print(f"   (replacing an earlier demo run: {e})")
        return evaluate(spec, out_dir, overwrite=True)


def run_demo(limit: int | None = None, out: str | None = None) -> int:
    corpus_dir = build_default_corpus()
    tasks_dir = generate_default_tasks(corpus_dir)
    show_tools(corpus_dir)
    summary = run_scripted_eval(corpus_dir, tasks_dir, limit=limit, out=out)
    run = summary.get("run", {})
    print(
        f"\n{run.get('episodes_run_now', 0)} episodes run now, {run.get('episodes_reused', 0)} reused, "
        f"{run.get('wall_seconds_now', 0.0):.1f} s. Next: 'wideseek eval --help' (other policies, "
        "subagent widths, samples, Ray), docs/quickstart.md."
    )
    return 0
