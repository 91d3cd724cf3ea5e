"""Memory stays bounded: peak RSS of corpus builds of growing size and of long scripted evaluations.

Each measurement runs the real ``wideseek`` command in a fresh subprocess and samples the memory of
its whole process tree (the build forks a reader process) every 0.1 s from ``/proc`` (the sum of
the RSS of every process in the tree); the peak RSS of the largest single process comes from
``os.wait4``'s ``ru_maxrss``. Measured:

- ``corpus build`` of the whole shared OTT-QA corpus (the original ``.xz`` files);
- ``corpus build`` of OTT-QA-format derivatives written with gzip (level 1): the corpus once
  (``1x``) and three times (``3x``: copies 2 and 3 have every ``/wiki/`` URL suffixed with
  ``_(copy_k)``, table uids too, so they are 3x the pages, passages and tables, not duplicates).
  If the build streams, the 3x peak is about the 1x peak;
- ``wideseek eval --policy scripted`` of 100 and of 1,000 episodes (the generated test split, two
  samples per task); the RSS is also sampled against the number of episodes written, to show that
  it does not grow with the episodes run.

    python benchmarks/memory.py [--work DIR] [--episodes 1000] [--skip-3x]
                                [--out benchmarks/results/memory.md]

The derivatives (about 1 GB for 3x) are written under ``--work`` (a temporary directory by default,
removed at the end).
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import describe_machine  # noqa: E402


# -- measuring -------------------------------------------------------------------------------------


def _tree_rss_kib(pid: int) -> tuple[int, int]:
    """Sums of VmRSS and RssAnon over ``pid`` and all its descendants (KiB), from /proc.

    RssAnon is the process's own memory (heap, arenas); the rest of VmRSS is file pages mapped in
    (the Tantivy index is memory-mapped: pages read by searches or merges count in RSS, but the
    kernel can drop them at will) and shared memory."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(") ", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, anon, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                elif line.startswith("RssAnon:"):
                    anon += int(line.split()[1])
        except OSError:
            pass
        todo.extend(children.get(p, []))
    return total, anon


def measure(cmd: list[str], *, progress_file: Path | None = None, interval: float = 0.1) -> dict:
    """Run ``cmd``; return wall time, peak tree RSS, ru_maxrss and a timeline of (s, tree MiB, lines)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    timeline: list[tuple[float, float, int, float]] = []  # (s, tree RSS MiB, lines, tree RssAnon MiB)
    peak = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss, anon = _tree_rss_kib(proc.pid)
            lines = 0
            if progress_file is not None and progress_file.exists():
                with open(progress_file, "rb") as handle:
                    lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
            if rss:
                peak[0] = max(peak[0], rss)
                peak[1] = max(peak[1], anon)
                timeline.append((time.perf_counter() - started, rss / 1024, lines, anon / 1024))
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {
        "seconds": time.perf_counter() - started,
        "peak_tree_rss_mib": peak[0] / 1024,
        "peak_tree_anon_mib": peak[1] / 1024,
        "max_process_rss_mib": usage.ru_maxrss / 1024,  # Linux: KiB
        "timeline": timeline,
    }


def wideseek(*args: str) -> list[str]:
    return [sys.executable, "-m", "wideseek_env.cli", *args]


# -- the 1x / 3x derivatives ------------------------------------------------------------------------


def _copy_url(url, suffix: str):
    return url + suffix if isinstance(url, str) and "/wiki/" in url else url


def _copy_line(line: str, k: int) -> str:
    """Copy ``k`` of one OTT-QA line: page URL, cell links and table uid suffixed (k > 1)."""
    if k == 1:
        return line
    suffix = f"_(copy_{k})"
    obj = json.loads(line)
    obj["url"] = _copy_url(obj.get("url"), suffix)
    if "uid" in obj:
        obj["uid"] = f"{obj['uid']}_copy_{k}"
    for row in [obj.get("header") or [], *(obj.get("data") or [])]:
        for cell in row:
            if isinstance(cell, list) and len(cell) == 2 and isinstance(cell[1], list):
                cell[1] = [_copy_url(link, suffix) for link in cell[1]]
    return json.dumps(obj, ensure_ascii=False) + "\n"


def write_derivative(src: Path, out: Path, copies: int) -> dict:
    """OTT-QA-format files holding the source ``copies`` times (gzip level 1)."""
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name in ("train_tables.jsonl", "train_passages.jsonl"):
        target = out / f"{name}.gz"
        with lzma.open(src / f"{name}.xz", "rt", encoding="utf-8") as reader, \
                gzip.open(target, "wt", encoding="utf-8", compresslevel=1) as writer:
            for line in reader:
                if not line.strip():
                    continue
                for k in range(1, copies + 1):
                    writer.write(_copy_line(line, k))
        sizes[name] = target.stat().st_size
    return sizes


# -- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--skip-3x", action="store_true", help="skip the derivative builds")
    parser.add_argument("--copies", default="1,3,6", help="sizes of the derivative corpora to build")
    parser.add_argument("--skip-builds", action="store_true", help="only the evaluations")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown report (and a plot) here")
    parser.add_argument("--report-only", type=Path, default=None, metavar="JSON",
                        help="rewrite --out from the results JSON of an earlier run")
    args = parser.parse_args(argv)
    if args.report_only is not None:
        results = json.loads(args.report_only.read_text())
        if args.out:
            args.out.write_text(report(results, plot_runs(results, args.out.with_suffix(".png"))))
        return results

    from wideseek_env.corpus.build import build_corpus
    from wideseek_env.paths import default_corpus_dir, default_tasks_dir, shared_data_dir
    from wideseek_env.taskgen.generate import generate_tasks

    shared = shared_data_dir() / "ottqa"
    corpus = default_corpus_dir()
    build_corpus("ottqa", shared, corpus, progress=False)  # reused if built: for the eval runs
    generate_tasks(corpus, default_tasks_dir(), seed=0, progress=False)
    tasks = default_tasks_dir() / "test.jsonl"

    work = args.work or Path(tempfile.mkdtemp(prefix="wideseek-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": describe_machine(ram=True),
                     "command": "python benchmarks/memory.py " + " ".join(argv or sys.argv[1:]), "runs": {}}
    try:
        def build(label: str, source_dir: Path) -> None:
            out = work / f"corpus-{label}"
            print(f"building {label} ...", file=sys.stderr, flush=True)
            run = measure(wideseek("corpus", "build", "--source", "ottqa", "--input", str(source_dir),
                                   "--out", str(out), "--force"))
            run["counts"] = json.loads((out / "manifest.json").read_text())["counts"]
            run["input_bytes"] = sum(p.stat().st_size for p in source_dir.iterdir() if p.is_file())
            results["runs"][f"build {label}"] = run
            shutil.rmtree(out, ignore_errors=True)
            print(f"  {label}: {run['peak_tree_rss_mib']:.0f} MiB peak, {run['seconds']:.0f} s", file=sys.stderr)

        if not args.skip_builds:
            build("shared (xz)", shared)
        if not args.skip_3x and not args.skip_builds:
            for copies in [int(c) for c in args.copies.split(",")]:
                source_dir = work / f"ottqa-{copies}x"
                print(f"writing the {copies}x derivative ...", file=sys.stderr, flush=True)
                write_derivative(shared, source_dir, copies)
                build(f"{copies}x (gz)", source_dir)
                shutil.rmtree(source_dir, ignore_errors=True)

        for episodes in sorted({100, args.episodes}):
            out = work / f"eval-{episodes}"
            print(f"evaluating {episodes} episodes ...", file=sys.stderr, flush=True)
            run = measure(wideseek("eval", "--policy", "scripted", "--tasks", str(tasks), "--corpus", str(corpus),
                                   "--limit", str(episodes // 2), "--samples", "2", "--out", str(out),
                                   "--no-progress"),
                          progress_file=out / "episodes.jsonl", interval=0.25)
            run["episodes"] = sum(1 for _ in open(out / "episodes.jsonl"))
            results["runs"][f"eval {episodes} episodes"] = run
            print(f"  {episodes}: {run['peak_tree_rss_mib']:.0f} MiB peak, {run['seconds']:.0f} s", file=sys.stderr)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    summary = {k: {kk: vv for kk, vv in v.items() if kk != "timeline"} for k, v in results["runs"].items()}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        plot = plot_runs(results, args.out.with_suffix(".png"))
        args.out.write_text(report(results, plot))
        (args.out.with_suffix(".json")).write_text(json.dumps(results, indent=1) + "\n")
    return results


def _rss_at(timeline, fraction_of_episodes: float, total: int, column: int = 1) -> float:
    goal = fraction_of_episodes * total
    for point in timeline:
        if point[2] >= goal:
            return point[column]
    return timeline[-1][column] if timeline else float("nan")


def report(results: dict, plot: Path | None) -> str:
    runs = results["runs"]
    lines = [
        "# Memory: corpus builds and long evaluations",
        "",
        f"Machine: {results['machine']}; load average {os.getloadavg()[0]:.1f} when the report was written "
        "(times are wall times).",
        "",
        f"Command: `{results['command']}`. Each row is the real `wideseek` command in a fresh process. "
        "RSS = the largest sum of resident memory over its process tree (the build forks a reader "
        "process), sampled every 0.1 s from /proc; anon = the same for anonymous memory only (heap and "
        "arenas: what the program itself holds; the rest of RSS is file pages mapped in, mostly the "
        "memory-mapped Tantivy index, which the kernel can drop at will); largest process = "
        "`ru_maxrss` from `wait4`.",
        "",
        "| build | input (compressed) | pages | passages | tables | peak RSS (MiB) | peak anon (MiB) | largest process (MiB) | time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    builds = {name: run for name, run in runs.items() if name.startswith("build")}
    for name, run in builds.items():
        c = run["counts"]
        lines.append(f"| {name[6:]} | {run['input_bytes'] / 2**20:.0f} MiB | {c['pages']:,} | {c['passages']:,} | "
                     f"{c['tables']:,} | {run['peak_tree_rss_mib']:.0f} | {run.get('peak_tree_anon_mib', float('nan')):.0f} "
                     f"| {run['max_process_rss_mib']:.0f} | {run['seconds']:.0f} |")
    copies = sorted((int(name.split()[1].rstrip("x")), run) for name, run in builds.items()
                    if name.split()[1].endswith("x") and name.split()[1][:-1].isdigit())
    if len(copies) >= 2:
        (k0, r0), (k1, r1) = copies[0], copies[-1]
        gap, gap_k = max((r["peak_tree_rss_mib"] - r["peak_tree_anon_mib"], k) for k, r in copies)
        steps = ", ".join(f"{k}x: {r['peak_tree_anon_mib']:.0f} MiB" for k, r in copies)
        lines += ["", f"Peak anonymous memory by corpus size: {steps}; from {k0}x to {k1}x "
                      f"({r1['counts']['passages'] / r0['counts']['passages']:.1f}x the passages, about "
                      f"{k1 * 149} MiB of uncompressed input) it grew {r1['peak_tree_anon_mib'] / r0['peak_tree_anon_mib']:.2f}x, "
                      f"while the time grew {r1['seconds'] / r0['seconds']:.1f}x. (The input column is the "
                      "compressed size: copies of a line are written next to each other, so gzip squeezes them.)",
                  "",
                  "Why it is bounded: the readers are generators and the build moves records in batches of "
                  "1,024 (pages to SQLite, passages to Tantivy), so nothing holds the corpus. What grows "
                  "during a build is Tantivy's indexing arena: each indexing thread (2 by default) fills up "
                  "to 128 MiB, then writes a segment and starts again, and segment merges run beside it. The "
                  "1x corpus ends before the arenas are full, hence its lower peak; once the arenas are full, "
                  "larger corpora level off: the step from 3x to 6x (twice the data) added "
                  f"{copies[-1][1]['peak_tree_anon_mib'] - dict(copies).get(3, copies[-1][1])['peak_tree_anon_mib']:.0f} MiB "
                  "(merges of larger segments, and the OTT-QA reader's set of table-page URLs, a few "
                  "thousand strings per copy), against hundreds of MiB of added input.",
                  "",
                  f"Peak RSS above peak anon is file pages mapped in: Tantivy reads its segments through "
                  f"mmap while merging them, so that part grows with the index (largest gap: {gap:.0f} MiB "
                  f"at {gap_k}x), but it is the kernel's to drop under memory pressure, not the program's."]
    lines += ["", "| evaluation | episodes | peak RSS (MiB) | peak anon (MiB) | anon at 10% / 50% / 100% of the episodes (MiB) | RSS at 10% / 50% / 100% (MiB) | time (s) |",
              "|---|---:|---:|---:|---|---|---:|"]
    for name, run in runs.items():
        if not name.startswith("eval"):
            continue
        n = run["episodes"]
        anon = " / ".join(f"{_rss_at(run['timeline'], f, n, 3):.0f}" for f in (0.1, 0.5, 1.0))
        rss = " / ".join(f"{_rss_at(run['timeline'], f, n, 1):.0f}" for f in (0.1, 0.5, 1.0))
        lines.append(f"| scripted, `wideseek eval` | {n:,} | {run['peak_tree_rss_mib']:.0f} | "
                     f"{run.get('peak_tree_anon_mib', float('nan')):.0f} | {anon} | {rss} | {run['seconds']:.0f} |")
    lines += ["", "The evaluation's own memory (anon) is flat in the number of episodes: it holds one "
                  "retriever, the task set and up to `--parallel` (8) envs, writes each finished episode to "
                  "`episodes.jsonl` and keeps its record for the summary (a few KB each). Its RSS climbs as "
                  "searches touch more of the memory-mapped index (file pages: bounded by the 140 MiB "
                  "index, and reclaimable), levelling off as the index is covered."]
    if plot is not None:
        lines += ["", f"![RSS over time]({plot.name})"]
    lines.append("")
    return "\n".join(lines)


def plot_runs(results: dict, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, run in results["runs"].items():
        tl = run["timeline"]
        if not tl:
            continue
        if name.startswith("build"):
            total = tl[-1][0]
            line, = left.plot([p[0] / total for p in tl], [p[1] for p in tl], label=name[6:] + " RSS")
            if len(tl[0]) > 3:
                left.plot([p[0] / total for p in tl], [p[3] for p in tl], "--", color=line.get_color(),
                          label=name[6:] + " anon")
        if name.startswith("eval"):
            line, = right.plot([p[2] for p in tl], [p[1] for p in tl], label=name[5:] + " RSS")
            if len(tl[0]) > 3:
                right.plot([p[2] for p in tl], [p[3] for p in tl], "--", color=line.get_color(),
                           label=name[5:] + " anon")
    left.set(xlabel="fraction of the build's time", ylabel="MiB (process tree)", title="corpus build")
    right.set(xlabel="episodes written", ylabel="MiB", title="scripted evaluation")
    for ax in (left, right):
        ax.set_ylim(bottom=0)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
