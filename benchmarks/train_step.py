"""Step-time breakdown of GRPO training: rollout, old log-probs, update, weight sync and evaluation, for a
training config run with and without dynamic sampling, side by side in one run.

    python benchmarks/train_step.py --config examples/train/smollm2_cpu.yaml --steps 2 \\
        --out benchmarks/results/train_step.md

Each setting runs in its own child process (vLLM's in-process engines do not share a process well) with
the same seed, tasks and config except ``dynamic_sampling`` (``drop`` vs ``off``); ``--eval-limit`` held-out
tasks are evaluated at step 0 and at the last step. Checkpoints and logs go to a temporary directory
outside the repository. The page reports, per setting, the mean seconds per step of each phase, the
zero-variance share of the groups and the speed-up of the step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import describe_machine  # noqa: E402

PHASES = ("time/rollout_s", "time/logprobs_s", "time/update_s", "time/sync_s", "time/step_s")
SETTINGS = ("drop", "off")


def run_child(config: str, setting: str, steps: int, eval_limit: int, out_dir: Path, extra: list[str]) -> None:
    from agents.train import TrainConfig, Trainer

    overrides = [f"dynamic_sampling={setting}", f"steps={steps}", f"eval_every={steps}",
                 f"eval_limit={eval_limit}", "save_every=0", "resume=null", "logger=jsonl",
                 f"output_dir={out_dir}", *extra]
    cfg = TrainConfig.from_yaml(config, overrides)
    started = time.perf_counter()
    trainer = Trainer(cfg)
    setup_s = time.perf_counter() - started
    try:
        trainer.train(progress=lambda s: print(s, file=sys.stderr, flush=True))
    finally:
        trainer.close()
    (out_dir / "setup.json").write_text(json.dumps({"setup_s": setup_s}))


def summarize(out_dir: Path) -> dict:
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["step"] > 0]
    evals = [r for r in rows if "time/eval_s" in r]
    mean = lambda key, rs: sum(r.get(key, 0.0) or 0.0 for r in rs) / max(len(rs), 1)  # noqa: E731
    out = {k.split("/")[1]: round(mean(k, steps), 2) for k in PHASES}
    out["eval_s"] = round(mean("time/eval_s", evals), 2)
    out["zero_variance_share"] = round(mean("groups/zero_variance_share", steps), 3)
    out["reward_mean"] = round(mean("reward/mean", steps), 4)
    out["trained_tokens"] = round(mean("train/tokens", steps), 1)
    out["skipped_samples"] = round(mean("train/skipped_samples", steps), 1)
    out["setup_s"] = round(json.loads((out_dir / "setup.json").read_text())["setup_s"], 1)
    out["steps"] = len(steps)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="examples/train/smollm2_cpu.yaml")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--eval-limit", type=int, default=4)
    p.add_argument("--set", dest="extra", action="append", default=[], help="more config overrides")
    p.add_argument("--out", default="benchmarks/results/train_step.md")
    p.add_argument("--work", default=None, help="where runs go (default: a temporary directory)")
    p.add_argument("--child", nargs=2, metavar=("SETTING", "DIR"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        run_child(args.config, args.child[0], args.steps, args.eval_limit, Path(args.child[1]), args.extra)
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="wideseek-train-step-"))
    results: dict = {"config": args.config, "steps": args.steps, "eval_limit": args.eval_limit,
                     "overrides": args.extra, "machine": describe_machine(), "settings": {}}
    for setting in SETTINGS:
        out_dir = work / setting
        out_dir.mkdir(parents=True, exist_ok=True)
        load = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--config", args.config, "--steps", str(args.steps),
               "--eval-limit", str(args.eval_limit), "--child", setting, str(out_dir)]
        for e in args.extra:
            cmd += ["--set", e]
        subprocess.run(cmd, check=True, env={**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"})
        results["settings"][setting] = {**summarize(out_dir), "load_at_start": round(load, 2)}
        print(setting, results["settings"][setting], flush=True)
    drop, off = results["settings"]["drop"], results["settings"]["off"]
    speedup = off["step_s"] / drop["step_s"] if drop["step_s"] else float("inf")
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [
        "# GRPO step-time breakdown: dynamic sampling on and off",
        "",
        f"Command: `python benchmarks/train_step.py --config {args.config} --steps {args.steps} "
        f"--eval-limit {args.eval_limit}" + "".join(f" --set {e}" for e in args.extra) + f" --out {args.out}`",
        "",
        f"Machine: {results['machine']}. Both settings ran one after the other in one run, each in its own "
        "process, same seed and tasks; load average at each start in the table (other jobs shared the machine "
        "when it was above ~2).",
        "",
        "| setting | rollout s | old log-probs s | update s | sync s | step s | eval s | zero-variance groups | "
        "trained tokens/step | reward | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["settings"].items():
        lines.append(f"| dynamic_sampling: {name} | {r['rollout_s']} | {r['logprobs_s']} | {r['update_s']} | "
                     f"{r['sync_s']} | {r['step_s']} | {r['eval_s']} | {100 * r['zero_variance_share']:.0f}% | "
                     f"{r['trained_tokens']} | {r['reward_mean']} | {r['load_at_start']} |")
    lines += [
        "",
        f"Step time without / with dynamic sampling: **{speedup:.2f}x**. With `drop`, the samples of groups "
        "whose rewards are all equal get no log-prob or backward work (their advantage is 0, so the gradient "
        "is the paper's exactly, tested in tests/test_train_recipe.py); with `off` they go through the "
        "whole update for nothing. How much that saves is the zero-variance share: an untrained small model "
        "scores 0 on every episode, so every group is zero-variance and `drop` skips the whole update.",
        "",
        "Seconds are means over the steps (evaluation: over its runs at step 0 and at the last step); "
        "`setup` (model load, engine start) is not in the step time: "
        + ", ".join(f"{n} {r['setup_s']} s" for n, r in results["settings"].items()) + ".",
    ]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
