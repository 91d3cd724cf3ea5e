"""Retrieval server under load: many concurrent clients against ``wideseek serve`` on the full corpus.

Measures each server of ``--backends`` (default ``stdlib,asgi``: the threaded ``http.server`` and
the FastAPI + uvicorn app), one after the other in the same run with the same workload. For each it
starts ``wideseek serve --backend B`` (a real subprocess, bound to 127.0.0.1 only) on the whole shared OTT-QA
corpus (built at ``wideseek_env.paths.default_corpus_dir()`` first if missing), then runs
``--clients`` concurrent clients (stdlib ``http.client``, one keep-alive connection each, spread over
``--procs`` client processes so that the clients' own JSON work does not share one GIL). Each
client sends a mix of requests:

- ``POST /retrieve`` with a batch of 1-16 queries (uniform), ``topk`` 3 (RLinf's default) or 5,
  queries made of page titles and words of their passages (real vocabulary, varied lengths);
- ``POST /access`` with 1-5 URLs in the forms agents write (``/wiki/X``, full URLs,
  ``index.php?title=X``, lower-case first letter, spaces), one in ten missing;
- one request in ten on a fresh connection (reconnecting clients), the rest keep-alive.

The run is bounded: it stops after ``--requests`` requests in all or ``--duration`` seconds,
whichever comes first. Reported: requests/s and queries/s, p50/p90/p99/max latency per endpoint,
errors (non-200 answers, malformed answers, connection failures: must be 0), and the server
process's peak RSS (``VmHWM`` from ``/proc/<pid>/status``), RSS, threads and open files at the
end. With ``--out`` it writes a markdown report (machine and command included).

    python benchmarks/server_load.py [--clients 32] [--requests 20000] [--duration 120]
                                     [--procs 2] [--backends stdlib,asgi]
                                     [--out benchmarks/results/server_load.md]

The server and the clients share the machine: on a small machine the figures are a lower bound
of what the server alone sustains.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import describe_machine  # noqa: E402

BATCH_SIZES = range(1, 17)


# -- workload --------------------------------------------------------------------------------------


def sample_workload(corpus_dir: Path, n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` queries and ``n`` URLs drawn from the corpus's pages (seeded)."""
    rng = random.Random(seed)
    db = sqlite3.connect(f"file:{corpus_dir / 'pages.sqlite'}?mode=ro", uri=True)
    try:
        (count,) = db.execute("SELECT COUNT(*) FROM pages").fetchone()
        rows = []
        for rowid in rng.sample(range(1, count + 1), n):
            row = db.execute("SELECT url, title, substr(text, 1, 600) FROM pages WHERE rowid = ?",
                             (rowid,)).fetchone()
            if row:
                rows.append(row)
    finally:
        db.close()
    queries, urls = [], []
    for url, title, text in rows:
        words = re.findall(r"\w+", text)
        extra = rng.sample(words, min(len(words), rng.randint(0, 6)))
        queries.append(" ".join([title] + extra) if rng.random() < 0.7 else " ".join(extra or [title]))
        name = url.rsplit("/wiki/", 1)[1]
        form = rng.randrange(5)
        if form == 0:
            urls.append("/wiki/" + name)
        elif form == 1:
            urls.append(url)
        elif form == 2:
            urls.append("https://en.wikipedia.org/w/index.php?title=" + name.replace("_", "%20"))
        elif form == 3:
            urls.append("https://en.wikipedia.org/wiki/" + name[:1].lower() + name[1:])
        else:
            urls.append(title)  # a bare title: not a URL, answered with null
        if rng.random() < 0.1:
            urls[-1] = f"https://en.wikipedia.org/wiki/No_such_page_{rng.randrange(10**9)}"
    return queries, urls


# -- clients ---------------------------------------------------------------------------------------


def _client(port: int, seed: int, queries, urls, budget, stop_at: float, out: list) -> None:
    """One client: requests until the shared budget is spent or the time is up."""
    rng = random.Random(seed)
    records = []  # (endpoint, batch size, latency s, ok, error text)
    conn = None
    while time.monotonic() < stop_at:
        with budget.get_lock():
            if budget.value <= 0:
                break
            budget.value -= 1
        if rng.random() < 0.7:
            path = "/retrieve"
            batch = [rng.choice(queries) for _ in range(rng.choice(BATCH_SIZES))]
            body = {"queries": batch, "topk": rng.choice((3, 3, 5))}
        else:
            path = "/access"
            batch = [rng.choice(urls) for _ in range(rng.randint(1, 5))]
            body = {"urls": batch}
        data = json.dumps(body)
        if conn is None or rng.random() < 0.1:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        started = time.perf_counter()
        error = ""
        try:
            conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = json.loads(response.read())
            latency = time.perf_counter() - started
            if response.status != 200:
                error = f"HTTP {response.status}: {str(payload)[:200]}"
            elif not isinstance(payload.get("result"), list) or len(payload["result"]) != len(batch):
                error = "malformed answer"
            elif path == "/retrieve" and not all(
                isinstance(hits, list) and all("url" in h and "contents" in h for h in hits)
                for hits in payload["result"]
            ):
                error = "malformed hits"
        except Exception as exc:  # noqa: BLE001 - every failure is an error to report
            latency = time.perf_counter() - started
            error = f"{type(exc).__name__}: {exc}"
            conn.close()
            conn = None
        records.append((path, len(batch), latency, error))
    if conn is not None:
        conn.close()
    out.extend(records)


def _client_process(port, first_seed, threads, queries, urls, budget, stop_at, queue) -> None:
    out: list = []
    workers = [
        threading.Thread(target=_client, args=(port, first_seed + i, queries, urls, budget, stop_at, out))
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put(out)


# -- server process --------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM, VmRSS (KiB) and Threads of a live process, from /proc/<pid>/status."""
    values = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "Threads"):
                values[key] = int(rest.split()[0])
    return values


def start_server(corpus_dir: Path, backend: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wideseek_env.cli", "serve", "--index", str(corpus_dir),
         "--host", "127.0.0.1", "--port", "0", "--backend", backend],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.stdout.read()}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep its pipe drained
    return proc, int(match.group(1))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def run_backend(args, corpus_dir: Path, backend: str, queries: list[str], urls: list[str]) -> dict:
    """One load run against a fresh ``wideseek serve --backend BACKEND`` process."""
    server, port = start_server(corpus_dir, backend)
    try:
        idle = proc_status(server.pid)
        idle_files = len(os.listdir(f"/proc/{server.pid}/fd"))
        context = multiprocessing.get_context("fork")
        budget = context.Value("q", args.requests)
        queue = context.Queue()
        procs = max(1, min(args.procs, args.clients))
        per_proc = [args.clients // procs + (i < args.clients % procs) for i in range(procs)]
        stop_at = time.monotonic() + args.duration
        peak_sampled = {"rss": 0}
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.2):
                try:
                    peak_sampled["rss"] = max(peak_sampled["rss"], proc_status(server.pid)["VmRSS"])
                except OSError:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        children = []
        seed = args.seed * 1000
        for n in per_proc:
            child = context.Process(
                target=_client_process, args=(port, seed, n, queries, urls, budget, stop_at, queue)
            )
            child.start()
            children.append(child)
            seed += n
        records = []
        for _ in children:
            records.extend(queue.get(timeout=args.duration + 120))
        for child in children:
            child.join(30)
        elapsed = time.perf_counter() - started
        sampling.set()
        sampler.join()
        status = proc_status(server.pid)
        open_files = len(os.listdir(f"/proc/{server.pid}/fd"))
        health = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        health.request("GET", "/health")
        alive = health.getresponse().status == 200
        health.close()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    errors = [r for r in records if r[3]]
    by_path = {}
    for path in ("/retrieve", "/access"):
        rows = [r for r in records if r[0] == path and not r[3]]
        lat = [r[2] * 1000 for r in rows]
        by_path[path] = {
            "requests": len(rows),
            "items": sum(r[1] for r in rows),
            "p50_ms": percentile(lat, 50),
            "p90_ms": percentile(lat, 90),
            "p99_ms": percentile(lat, 99),
            "max_ms": max(lat) if lat else float("nan"),
        }
    all_lat = [r[2] * 1000 for r in records if not r[3]]
    return {
        "backend": backend,
        "requests": len(records),
        "seconds": elapsed,
        "requests_per_s": len(records) / elapsed,
        "queries_per_s": by_path["/retrieve"]["items"] / elapsed,
        "urls_per_s": by_path["/access"]["items"] / elapsed,
        "p50_ms": percentile(all_lat, 50),
        "p99_ms": percentile(all_lat, 99),
        "by_path": by_path,
        "errors": len(errors),
        "error_samples": sorted({e[3] for e in errors})[:5],
        "server_rss_idle_mib": idle["VmRSS"] / 1024,
        "server_peak_rss_mib": status["VmHWM"] / 1024,
        "server_rss_end_mib": status["VmRSS"] / 1024,
        "server_threads_end": status["Threads"],
        "server_open_files_idle": idle_files,
        "server_open_files_end": open_files,
        "server_alive_after": alive,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None, help="built corpus (default: the shared OTT-QA one)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--procs", type=int, default=2, help="client processes the clients are spread over")
    parser.add_argument("--requests", type=int, default=20000, help="stop after this many requests in all")
    parser.add_argument("--duration", type=float, default=120.0, help="stop after this many seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write a markdown report here")
    parser.add_argument("--backends", default="stdlib,asgi",
                        help="servers to measure, one after the other in this run (wideseek serve --backend)")
    args = parser.parse_args(argv)

    from wideseek_env.corpus.build import build_corpus
    from wideseek_env.paths import default_corpus_dir, shared_data_dir

    corpus_dir = args.corpus
    if corpus_dir is None:
        corpus_dir = default_corpus_dir()
        build_corpus("ottqa", shared_data_dir() / "ottqa", corpus_dir, progress=False)  # reused if built
    manifest = json.loads((corpus_dir / "manifest.json").read_text())
    queries, urls = sample_workload(corpus_dir, 4000, args.seed)

    runs = [run_backend(args, corpus_dir, b, queries, urls) for b in args.backends.split(",")]
    procs = max(1, min(args.procs, args.clients))
    result = {
        "machine": describe_machine(ram=True),
        "corpus": {"dir": str(corpus_dir), **manifest["counts"]},
        "clients": args.clients,
        "client_procs": procs,
        "runs": runs,
        "errors": sum(r["errors"] for r in runs),
        "command": "python benchmarks/server_load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "load_average_end": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report(result))
    for r in runs:
        if r["errors"]:
            print(f"{r['backend']}: {r['errors']} errors, e.g. {r['error_samples']}", file=sys.stderr)
    return result


def report(r: dict) -> str:
    c = r["corpus"]
    lines = [
        "# Retrieval server under load",
        "",
        f"Machine: {r['machine']}. Each server (`wideseek serve --backend B`, a subprocess on 127.0.0.1) "
        f"and the clients ({r['clients']} threads over {r['client_procs']} processes, stdlib "
        "`http.client`) shared this machine, so the figures are a lower bound for the server alone; "
        f"load average {r['load_average_end']:.1f} at the end. The servers were measured one after "
        "the other in one run, same workload and seed.",
        "",
        f"Corpus: the whole shared OTT-QA corpus ({c['pages']:,} pages, {c['passages']:,} passages, "
        f"{c['tables']:,} tables).",
        "",
        "Workload: 70% `POST /retrieve` with 1-16 queries (uniform) and topk 3 or 5; 30% `POST /access` "
        "with 1-5 URLs in mixed forms (one in ten missing, bare titles answered null); one request "
        "in ten on a new connection, the rest keep-alive. Queries are page titles plus words of their "
        "pages (seeded sample of 4,000 pages).",
        "",
        f"Command: `{r['command']}`",
        "",
        "| server | requests | seconds | requests/s | queries/s | URLs/s | p50 ms | p99 ms | errors | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in r["runs"]:
        lines.append(
            f"| {b['backend']} | {b['requests']:,} | {b['seconds']:.1f} | {b['requests_per_s']:,.0f} "
            f"| {b['queries_per_s']:,.0f} | {b['urls_per_s']:,.0f} | {b['p50_ms']:.1f} | {b['p99_ms']:.1f} "
            f"| {b['errors']} | {b['server_peak_rss_mib']:.0f} |"
        )
    lines += ["", "| server | endpoint | requests | items | p50 ms | p90 ms | p99 ms | max ms |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for b in r["runs"]:
        for path, s in b["by_path"].items():
            lines.append(f"| {b['backend']} | {path} | {s['requests']:,} | {s['items']:,} | {s['p50_ms']:.1f} "
                         f"| {s['p90_ms']:.1f} | {s['p99_ms']:.1f} | {s['max_ms']:.1f} |")
    lines.append("")
    speed = {b["backend"]: b["requests_per_s"] for b in r["runs"]}
    if {"stdlib", "asgi"} <= set(speed):
        ratio = speed["asgi"] / speed["stdlib"]
        lines += [
            f"Which is the default: the asgi server answered {ratio:.2f}x the stdlib server's requests/s "
            "in this run. It replaces the stdlib server as the default of `wideseek serve` only if it is "
            "at least as fast within noise (a few percent on this shared machine); "
            + ("it is, so" if ratio >= 0.97 else "it is not, so `stdlib` stays the default and")
            + " `--backend asgi` gives the FastAPI app (its `/docs`, `/openapi.json` and `--workers`). "
            "On this 2-core machine the event loop, the thread-pool hand-off of every request and "
            "pydantic validation presumably (not profiled) cost more CPU than the stdlib server's thread per connection, and the "
            "clients share those two cores; with `--workers N` on a larger machine the asgi server can "
            "use more cores than one GIL allows.",
            "",
        ]
    for b in r["runs"]:
        lines.append(
            f"{b['backend']}: {b['server_rss_idle_mib']:.0f} MiB RSS idle after start, peak RSS (VmHWM) "
            f"{b['server_peak_rss_mib']:.0f} MiB, {b['server_rss_end_mib']:.0f} MiB at the end; "
            f"{b['server_threads_end']} threads and {b['server_open_files_end']} open files at the end "
            f"({b['server_open_files_idle']} before the run); answered `/health` after the run: "
            f"{b['server_alive_after']}."
        )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(1 if main()["errors"] else 0)
