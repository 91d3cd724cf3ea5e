"""Env overhead per agent turn, with the scripted baseline and no LLM.

    python benchmarks/env_overhead.py [--tasks data/tasks-ottqa/test.jsonl] [--sample 0] [--repeat 2]
                                      [--out benchmarks/results/env_overhead.md]

Plays every task of the test split (or a fixed-seed sample) with ``agents.baselines.ScriptedBaseline``,
multi-agent (paper limits, up to 10 subagents per call) and single-agent, and splits the time of
every env step into:

- **env logic**: ``step_collect`` (parsing actions, scheduling, spawning) and ``step_apply``
  (delivering results, observations, infos) and ``reset``, minus the evaluation below;
- **tools**: the ``search`` calls (one batched BM25 query per step over the local Tantivy index) and
  the ``access`` calls (page lookups + relevant-part selection), run with
  :func:`~wideseek_env.env.execute_tool_requests` one tool at a time so that each is timed alone;
- **evaluation**: ``score_answer`` of the final answer and the reward function (timed by wrapping
  ``wideseek_env.evaluation.score_answer``, which the env looks up at call time);
- **policy**: the scripted baseline's ``act`` (not part of the env; shown for scale).

An *agent turn* is one action of one agent (the metrics' ``total_turns``). Reported: agent turns per
second of env time (env logic + tools + evaluation) and of the whole loop (with the policy), per
setting; wall time and this process's CPU time (the machine may be shared). Best of ``--repeat``
passes per setting.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import wideseek_env.evaluation as evaluation  # noqa: E402
from agents.baselines import ScriptedBaseline  # noqa: E402
from agents.policy import AgentRequest  # noqa: E402
from benchmarks._common import describe_machine  # noqa: E402
from wideseek_env.config import EnvConfig  # noqa: E402
from wideseek_env.corpus.local import LocalRetriever  # noqa: E402
from wideseek_env.env import WideSeekEnv, execute_tool_requests  # noqa: E402
from wideseek_env.paths import default_corpus_dir, default_tasks_dir  # noqa: E402
from wideseek_env.tasks import load_tasks  # noqa: E402

PARTS = ("env", "search", "access", "evaluation", "policy")


class Clock:
    """Accumulates wall and CPU seconds per part."""

    def __init__(self) -> None:
        self.wall = dict.fromkeys(PARTS, 0.0)
        self.cpu = dict.fromkeys(PARTS, 0.0)

    def add(self, part: str, wall: float, cpu: float) -> None:
        self.wall[part] += wall
        self.cpu[part] += cpu


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def play_timed(env: WideSeekEnv, policy: ScriptedBaseline, task_id: str, clock: Clock) -> int:
    """One episode with every part timed; returns the number of agent turns."""
    w, c = _now()
    obs, infos = env.reset(options={"task_id": task_id})
    w2, c2 = _now()
    clock.add("env", w2 - w, c2 - c)
    policy.reset_episode(task_id)
    while env.agents:
        w, c = _now()
        reqs = [AgentRequest(task_id, a, infos[a]["messages"], infos[a]["tools"], infos[a]["role"])
                for a in env.agents if infos[a]["acting"]]
        actions = {r.agent_id: resp.text for r, resp in zip(reqs, policy.act(reqs))}
        w2, c2 = _now()
        clock.add("policy", w2 - w, c2 - c)

        w, c = _now()
        requests = env.step_collect(actions)
        w2, c2 = _now()
        clock.add("env", w2 - w, c2 - c)
        results = [""] * len(requests)
        for name in ("search", "access"):
            idx = [i for i, r in enumerate(requests) if r.name == name]
            if not idx:
                continue
            w, c = _now()
            out = execute_tool_requests([requests[i] for i in idx])
            w2, c2 = _now()
            clock.add(name, w2 - w, c2 - c)
            for i, text in zip(idx, out):
                results[i] = text
        rest = [i for i, r in enumerate(requests) if r.name not in ("search", "access")]
        if rest:
            for i, text in zip(rest, execute_tool_requests([requests[i] for i in rest])):
                results[i] = text
        w, c = _now()
        obs, rewards, terms, truncs, infos = env.step_apply(results)
        w2, c2 = _now()
        clock.add("env", w2 - w, c2 - c)  # the evaluation inside is moved out below
    policy.end_episode(task_id)
    return int(env.last_metrics["total_turns"])


def run_setting(retriever, tasks, config: EnvConfig, repeat: int) -> dict:
    best = None
    for _ in range(repeat):
        env = WideSeekEnv(retriever, tasks, config)
        policy = ScriptedBaseline()
        clock = Clock()
        scoring = {"wall": 0.0, "cpu": 0.0}
        original = evaluation.score_answer

        def timed_score(*args, **kwargs):
            w, c = _now()
            try:
                return original(*args, **kwargs)
            finally:
                w2, c2 = _now()
                scoring["wall"] += w2 - w
                scoring["cpu"] += c2 - c

        evaluation.score_answer = timed_score
        try:
            turns = 0
            for t in tasks:
                turns += play_timed(env, policy, t.id, clock)
        finally:
            evaluation.score_answer = original
        clock.wall["env"] -= scoring["wall"]
        clock.cpu["env"] -= scoring["cpu"]
        clock.add("evaluation", scoring["wall"], scoring["cpu"])
        env_wall = sum(clock.wall[p] for p in PARTS if p != "policy")
        if best is None or env_wall < best["env_wall"]:
            best = {"clock": clock, "turns": turns, "env_wall": env_wall, "episodes": len(tasks)}
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(default_corpus_dir()))
    ap.add_argument("--tasks", default=str(default_tasks_dir() / "test.jsonl"))
    ap.add_argument("--sample", type=int, default=0, help="a fixed-seed sample of N tasks (0: all)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "env_overhead.md"))
    args = ap.parse_args(argv)

    tasks = sorted(load_tasks(Path(args.tasks)), key=lambda t: t.id)
    total = len(tasks)
    if args.sample and args.sample < total:
        tasks = sorted(random.Random(0).sample(tasks, args.sample), key=lambda t: t.id)
    retriever = LocalRetriever(Path(args.corpus))
    settings = [("multi-agent (k=10)", EnvConfig()), ("single-agent", EnvConfig.single_agent())]
    rows = []
    for name, config in settings:
        r = run_setting(retriever, tasks, config, args.repeat)
        rows.append((name, r))
        wall, turns = r["clock"].wall, r["turns"]
        print(f"{name}: {turns} turns, env {turns / r['env_wall']:.0f} turns/s; "
              + ", ".join(f"{p} {wall[p]:.2f}s" for p in PARTS), flush=True)
    retriever.close()

    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *(argv or sys.argv[1:])])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    machine = describe_machine(implementation=True)
    lines = [
        "# Env overhead per agent turn (scripted baseline, no LLM)",
        "",
        f"Machine: {machine}; one process; load average {load:.1f} when it finished (this process's "
        "CPU time, which other load does not inflate, is shown beside the wall time).",
        "",
        f"Workload: {'all ' + str(total) if len(tasks) == total else f'a fixed-seed sample of {len(tasks)} of the {total}'} "
        f"tasks of the generated test split, one episode each, played by `ScriptedBaseline` through "
        "`step_collect` -> `execute_tool_requests` (search and access timed apart) -> `step_apply`; the "
        "local Tantivy retriever on the shared OTT-QA corpus; best of "
        f"{args.repeat} passes. An agent turn is one action of one agent.",
        "",
        f"Command: `{cmd}`",
        "",
        "| setting | episodes | agent turns | turns/s (env only) | turns/s (with policy) | env logic | search | access | evaluation | policy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        wall, cpu, turns = r["clock"].wall, r["clock"].cpu, r["turns"]
        env_wall = sum(wall[p] for p in PARTS if p != "policy")
        all_wall = env_wall + wall["policy"]

        def cell(p):
            return (f"{1e3 * wall[p] / turns:.3f} ms ({100 * wall[p] / env_wall:.0f}%)"
                    if p != "policy" else f"{1e3 * wall[p] / turns:.3f} ms")

        lines.append(
            f"| {name} | {r['episodes']} | {turns} | {turns / env_wall:,.0f} | {turns / all_wall:,.0f} | "
            + " | ".join(cell(p) for p in PARTS) + " |"
        )
    lines += [
        "",
        "Per-turn times are wall milliseconds per agent turn; the percentages are shares of the env time "
        "(env logic + search + access + evaluation). CPU time of this process per part:",
        "",
        "| setting | env logic | search | access | evaluation | policy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        cpu, turns = r["clock"].cpu, r["turns"]
        lines.append(f"| {name} | " + " | ".join(f"{1e3 * cpu[p] / turns:.3f} ms" for p in PARTS) + " |")
    lines += [
        "",
        "Evaluation runs once per episode (on the lead's final answer), so its share per turn falls as "
        "episodes get longer. Search time includes the snippet rendering; access time includes the "
        "page lookup in SQLite and the BM25 selection of the relevant part of long pages.",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
