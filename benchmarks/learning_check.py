"""Learning check: does the GRPO trainer raise the reward of a small model on an easy task, on CPU?

The task is deliberately easy and needs no corpus: the single-agent env without tools, short questions,
and a reward that a random model already gets partly and can improve by shifting its token
distribution: the share of vowels among the non-space characters of the answer
(:func:`vowel_reward`, about 0.26 for the random tiny model). The model is the random 2-layer tiny
model of :func:`agents.models.tiny_test_model`; the whole pipeline is the real one (env episodes ->
token trajectories -> group advantages -> dual-level weights -> clipped loss -> AdamW).

A control run with a learning rate of 1e-12 (weights effectively frozen, same sampling seeds) shows the
curve of an untrained model, so that a rise is not sampling noise.

    python benchmarks/learning_check.py --steps 40 --out benchmarks/results

writes ``learning_check.json`` (per-step metrics of both runs), ``learning_check.md`` (summary) and
``learning_check.png`` (reward curves).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUESTIONS = [
    "Name a colour.", "Name a city.", "Name an animal.", "Name a fruit.", "Name a river.",
    "Name a planet.", "Name a tree.", "Name a sport.",
]


def vowel_reward(task, answer, record) -> float:
    """Share of vowels (a, e, i, o, u) among the non-space characters of the answer (0 if empty)."""
    text = "".join(answer.split())
    return sum(c in "aeiouAEIOU" for c in text) / len(text) if text else 0.0


def write_tasks(path: Path) -> Path:
    from wideseek_env.tasks import save_tasks
    from wideseek_env.table.schema import ColumnSpec, Task

    tasks = [Task(id=f"q{i}", query=q, language="en", required_columns=["name"], unique_columns=["name"],
                  columns={"name": ColumnSpec("name")}, gold=[{"name": "x"}]) for i, q in enumerate(QUESTIONS)]
    save_tasks(tasks, path)
    return path


def run(label: str, lr: float, args, work: Path, tasks: Path) -> list[dict]:
    from agents.train import TrainConfig, Trainer

    cfg = TrainConfig(
        model="tiny", tasks=str(tasks), tools="none", preset="single", reward_fn=vowel_reward,
        steps=args.steps, tasks_per_step=args.tasks_per_step, group_size=args.group_size,
        max_tokens=args.max_tokens, lr=lr, micro_batch_size=16, output_dir=str(work / label), save_every=0,
        keep_checkpoints=1, logger="jsonl", seed=args.seed,
    )
    trainer = Trainer(cfg)
    try:
        return trainer.train(progress=lambda s: print(f"[{label}] {s}", file=sys.stderr, flush=True))
    finally:
        trainer.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--tasks-per-step", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-control", action="store_true", help="skip the frozen-weights control run")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    with tempfile.TemporaryDirectory(prefix="wideseek-learning-") as tmp:
        work = Path(tmp)
        tasks = write_tasks(work / "tasks.jsonl")
        t0 = time.perf_counter()
        trained = run("trained", args.lr, args, work, tasks)
        t_trained = time.perf_counter() - t0
        control = [] if args.no_control else run("control", 1e-12, args, work, tasks)

    def curve(hist, key="reward/mean"):
        return [h[key] for h in hist]

    k = min(5, args.steps)
    summary = {
        "steps": args.steps, "rollouts_per_step": args.tasks_per_step * args.group_size, "lr": args.lr,
        "max_tokens": args.max_tokens, "seed": args.seed,
        "trained_first": statistics.mean(curve(trained)[:k]), "trained_last": statistics.mean(curve(trained)[-k:]),
        "seconds_trained_run": round(t_trained, 1),
        "seconds_per_step": round(t_trained / args.steps, 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
    }
    if control:
        summary["control_first"] = statistics.mean(curve(control)[:k])
        summary["control_last"] = statistics.mean(curve(control)[-k:])
    keep = ("reward/mean", "reward/std", "entropy", "loss/approx_kl", "grad_norm", "response_length/mean",
            "advantage/zero_fraction", "time/step_s")
    data = {"summary": summary,
            "trained": [{k2: h.get(k2) for k2 in keep} for h in trained],
            "control": [{k2: h.get(k2) for k2 in keep} for h in control]}
    (out / "learning_check.json").write_text(json.dumps(data, indent=1) + "\n")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        steps = list(range(1, len(trained) + 1))
        ax.plot(steps, curve(trained), label=f"GRPO, lr {args.lr:g}")
        if control:
            ax.plot(steps, curve(control), label="control (lr 1e-12)", linestyle="--")
        ax.set_xlabel("step")
        ax.set_ylabel("mean reward (vowel share)")
        ax.set_title(f"Tiny model, {summary['rollouts_per_step']} rollouts/step, CPU")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "learning_check.png", dpi=120)
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)

    lines = [
        "# GRPO learning check (CPU)",
        "",
        "`python benchmarks/learning_check.py` - the random tiny model (agents.models.tiny_test_model), "
        "single-agent env without tools, 8 short questions, reward = share of vowels in the answer "
        f"(`vowel_reward`). {summary['rollouts_per_step']} rollouts per step "
        f"({args.tasks_per_step} tasks x {args.group_size}), {args.max_tokens} tokens per answer, "
        f"AdamW lr {args.lr:g}, one update per batch, dual-level weights, seed {args.seed}.",
        "",
        f"Machine: {summary['machine']} (shared with other jobs while it ran: times are indicative).",
        "",
        f"| run | mean reward, first {k} steps | mean reward, last {k} steps |",
        "|---|---|---|",
        f"| GRPO | {summary['trained_first']:.3f} | {summary['trained_last']:.3f} |",
    ]
    if control:
        lines.append(f"| control (lr 1e-12) | {summary['control_first']:.3f} | {summary['control_last']:.3f} |")
    lines += ["", f"{args.steps} steps took {summary['seconds_trained_run']} s "
              f"({summary['seconds_per_step']} s per step).", "", "![curve](learning_check.png)", ""]
    (out / "learning_check.md").write_text("\n".join(lines))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
