"""Quality of the scripted baseline on the generated test split, and its width-scaling curve.

    python benchmarks/baselines.py [--tasks data/tasks-ottqa/test.jsonl] [--corpus data/corpus-ottqa]
                                   [--sample 0] [--out benchmarks/results]

Runs ``agents.baselines.ScriptedBaseline`` (honest: it reads only the query and the tool results)
through ``WideSeekEnv`` on every task of the test split (``--sample N`` draws a fixed-seed sample
instead), in these settings:

- multi-agent with at most k subagents per ``call_subagent`` (``EnvConfig.max_subagents_per_call``)
  for k in 1, 2, 4, 8, 10; the lead has the paper's 10 turns, so it can look up at most about
  ``9 k`` entities (it keeps the last turn for the answer);
- single-agent mode (SingleSeek: one agent, search + access, 50 turns, 32k-token context).

Writes ``baselines.md`` (item F1 / row F1 / success per task kind and setting, the width curve, the
machine and the command) and ``baselines_width.png`` (item F1 vs k, single-agent as a line) into
``--out``. The default task set is generated first if it is missing
(``generate_tasks(corpus, default_tasks_dir(), seed=0)``).
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.baselines import ScriptedBaseline, run_episode  # noqa: E402
from benchmarks._common import describe_machine  # noqa: E402
from wideseek_env.config import EnvConfig  # noqa: E402
from wideseek_env.corpus.local import LocalRetriever  # noqa: E402
from wideseek_env.env import WideSeekEnv  # noqa: E402
from wideseek_env.paths import default_corpus_dir, default_tasks_dir  # noqa: E402
from wideseek_env.tasks import load_tasks  # noqa: E402

KINDS = ("transcribe", "enrich", "union")
WIDTHS = (1, 2, 4, 8, 10)


def run_setting(retriever, tasks, config: EnvConfig) -> tuple[list[dict], float]:
    env = WideSeekEnv(retriever, tasks, config)
    policy = ScriptedBaseline()
    out = []
    start = time.perf_counter()
    for t in tasks:
        m = run_episode(env, policy, task_id=t.id)
        m["kind"] = t.kind
        m["gold_rows"] = len(t.gold)
        out.append(m)
    return out, time.perf_counter() - start


def summarize(results: list[dict]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for m in results:
        groups[m["kind"]].append(m)
        groups["all"].append(m)
    out = {}
    for kind, ms in groups.items():
        n = len(ms)
        out[kind] = {
            "n": n,
            "item_f1": sum(m["item_f1"] for m in ms) / n,
            "row_f1": sum(m["row_f1"] for m in ms) / n,
            "success": sum(m["success"] for m in ms) / n,
            "subagents": sum(m["subagents_spawned"] for m in ms) / n,
            "turns": sum(m["total_turns"] for m in ms) / n,
            "truncated": sum(bool(m["truncated"]) for m in ms),
        }
    return out


def plot(curve: dict[int, dict], single: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = sorted(curve)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    styles = {"all": ("k", "o-"), "enrich": ("tab:blue", "s-"), "transcribe": ("tab:green", "^-"),
              "union": ("tab:orange", "d-")}
    for kind in ("all", "enrich", "transcribe", "union"):
        if kind not in curve[ks[0]]:
            continue
        color, style = styles[kind]
        ax.plot(ks, [100 * curve[k][kind]["item_f1"] for k in ks], style, color=color,
                label=f"multi-agent, {kind}")
        if kind in single:
            ax.axhline(100 * single[kind]["item_f1"], color=color, linestyle=":", linewidth=1)
    ax.plot([], [], "k:", label="single-agent (dotted, same colours)")
    ax.set_xlabel("subagents allowed per call (lead: 10 turns)")
    ax.set_ylabel("item F1 (%)")
    ax.set_xticks(ks)
    ax.set_title("Scripted baseline: width scaling on the generated test split", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(default_corpus_dir()))
    ap.add_argument("--tasks", default=None, help="task file (default: the generated test split)")
    ap.add_argument("--sample", type=int, default=0, help="a fixed-seed sample of N tasks (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    if args.tasks is None:
        tasks_path = default_tasks_dir() / "test.jsonl"
        if not tasks_path.exists():
            from wideseek_env.taskgen.generate import generate_tasks

            generate_tasks(Path(args.corpus), default_tasks_dir(), seed=0)
    else:
        tasks_path = Path(args.tasks)
    tasks = sorted(load_tasks(tasks_path), key=lambda t: t.id)
    total = len(tasks)
    if args.sample and args.sample < total:
        tasks = sorted(random.Random(args.seed).sample(tasks, args.sample), key=lambda t: t.id)
    retriever = LocalRetriever(Path(args.corpus))

    settings: list[tuple[str, EnvConfig]] = [(f"multi, k={k}", EnvConfig(max_subagents_per_call=k)) for k in WIDTHS]
    settings.append(("single-agent", EnvConfig.single_agent()))
    summaries: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    for name, config in settings:
        results, secs = run_setting(retriever, tasks, config)
        summaries[name] = summarize(results)
        seconds[name] = secs
        s = summaries[name]["all"]
        print(f"{name:14s} item F1 {s['item_f1']:.3f} row F1 {s['row_f1']:.3f} success {s['success']:.3f} "
              f"({secs:.1f} s)", flush=True)
    retriever.close()

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    curve = {k: summaries[f"multi, k={k}"] for k in WIDTHS}
    plot(curve, summaries["single-agent"], out_dir / "baselines_width.png")

    kinds = [k for k in KINDS if k in summaries["single-agent"]] + ["all"]
    counts = ", ".join(f"{summaries['single-agent'][k]['n']} {k}" for k in kinds if k != "all")
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *(argv or sys.argv[1:])])
    machine = describe_machine(implementation=True)
    lines = [
        "# Scripted baseline: quality and width scaling",
        "",
        f"Machine: {machine}. No LLM: `agents.baselines.ScriptedBaseline` (honest: it reads only the "
        "query text, the tool results and the column names in the query; never the gold table or the "
        "task's provenance), `WideSeekEnv` with the paper's limits (lead 10 turns, subagent 20, 32k-token "
        "context, search top-3, pages cut to 25,000 chars), default deterministic judge, reward = item F1.",
        "",
        f"Tasks: {'all ' + str(total) if len(tasks) == total else f'a fixed-seed sample (seed {args.seed}) of {len(tasks)} of the {total}'} "
        f"tasks of `{os.path.relpath(tasks_path, ROOT) if tasks_path.is_relative_to(ROOT) else tasks_path}` ({counts}). "
        "One episode per task and setting (the baseline is deterministic, so Avg@1 = Max@1).",
        "",
        f"Command: `{cmd}`",
        "",
        "## Per task kind (item F1 / row F1 / success, %)",
        "",
        "| setting | " + " | ".join(kinds) + " | subagents / episode | agent turns / episode | truncated | time (s) |",
        "|---|" + "---:|" * (len(kinds) + 4),
    ]
    for name, _ in settings:
        s = summaries[name]
        cells = [f"{100 * s[k]['item_f1']:.1f} / {100 * s[k]['row_f1']:.1f} / {100 * s[k]['success']:.1f}" for k in kinds]
        lines.append(
            f"| {name} | " + " | ".join(cells)
            + f" | {s['all']['subagents']:.1f} | {s['all']['turns']:.1f} | {s['all']['truncated']} | {seconds[name]:.1f} |"
        )
    lines += [
        "",
        "## Width curve (item F1 %, vs subagents allowed per call)",
        "",
        "| subagents allowed | " + " | ".join(kinds) + " |",
        "|---:|" + "---:|" * len(kinds),
    ]
    for k in WIDTHS:
        lines.append(f"| {k} | " + " | ".join(f"{100 * curve[k][kd]['item_f1']:.1f}" for kd in kinds) + " |")
    lines.append("| single-agent | " + " | ".join(f"{100 * summaries['single-agent'][kd]['item_f1']:.1f}" for kd in kinds) + " |")
    lines += [
        "",
        "![item F1 vs subagents allowed](baselines_width.png)",
        "",
        "## Reading the numbers",
        "",
        "- *transcribe* and *union* queries name the page(s) and the table, and the corpus renders tables "
        "as markdown: a rule that copies the table scores close to 100. The misses are tasks whose page has "
        "several tables with the same section title and the same asked columns (the query cannot tell them "
        "apart) and tables that `access` cuts at 25,000 characters.",
        "- *enrich* is where width matters: one subagent per entity and the lead keeps its last turn for "
        "the answer, so with k subagents per call it can look up about 9k entities; entities it had no "
        "turn for are still listed (the query names them) with empty attribute cells. Enrich tasks of the "
        "test split have at most 20 rows, so the curve is flat from k = 4 on. The remaining misses are "
        "the baseline's own limits: the wrong page for a common name, and attribute patterns that do "
        "not match the page's wording.",
        "- The scripted single agent batches five searches and five page reads per turn and watches its "
        "context, so on tasks of at most 20 entities it is not limited by its 50 turns or its 32k "
        "tokens: it matches the widest multi-agent setting. The width advantage the paper reports for "
        "LLM agents comes from per-agent context and turn limits that a rule-based agent with perfect "
        "batching does not hit on this test split.",
    ]
    (out_dir / "baselines.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out_dir / 'baselines.md'} and {out_dir / 'baselines_width.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
