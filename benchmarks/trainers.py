"""Our GRPO trainer beside TRL's GRPOTrainer on the same single-agent work, in one run on one machine.

    python benchmarks/trainers.py --models tiny smollm2 --steps 3 --out benchmarks/results/trainers.md

For each model, both trainers run the same single-agent setting (the ``--preset`` env: search and
access as tools, the item F1 of the final answer as the reward) on the same first ``--tasks`` train tasks
(by id), with the same group size, per-turn token budget, learning rate, seed and number of steps, in
the same weight dtype (``--dtype``), gradient checkpointing (``--gradient-checkpointing``) and env preset
(``--preset``, always in single-agent mode), on the same device (``--device cpu``, or ``cuda`` for a
GPU), each in its own child process (so that peak RSS, and peak GPU memory on ``cuda``, are the trainer's
own):

- ours: :class:`agents.train.Trainer` with the ``hf`` policy (generation shares the training model),
  ``dynamic_sampling: off`` (TRL has no such skip: both do the whole update even when
  every reward is equal), old log-probs from the rollout, one micro-batch of the whole step (as TRL's
  ``per_device_train_batch_size`` = tasks x group);
- TRL: ``GRPOTrainer(environment_factory=...)`` through :mod:`wideseek_env.integrations.trl_env`, with
  ``max_completion_length`` = the per-turn budget and ``max_tool_calling_iterations`` = turns - 1.

Per step: rollout seconds (ours: ``time/rollout_s``; TRL: its ``_generate_and_score_completions``, which
generates, runs the tools and scores), update seconds (the rest of the step: log-probs, backward,
optimizer), mean reward; per run: peak RSS (``ru_maxrss`` of the child). The page and a JSON go to
``--out``; training outputs go to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import describe_machine  # noqa: E402

TRAINERS = ("ours", "trl")


@dataclass
class Work:
    """The work both trainers do."""

    model: str = "tiny"
    tasks: int = 2
    group: int = 2
    max_tokens: int = 64
    turns: int = 3
    lr: float = 1e-6
    steps: int = 3
    seed: int = 0
    task_file: str = "data/tasks-ottqa/train.jsonl"
    dtype: str = "float32"  # the weights of both trainers ("bfloat16": pure bf16 on both, no fp32 masters)
    gradient_checkpointing: bool = False  # on both (TRL's GRPOConfig turns it on by default)
    preset: str = "single"  # the env preset of both, always in single-agent mode ("compact": short prompts)
    device: str = "cpu"  # "cuda": both trainers train and generate on the GPU


def gpu_name() -> str | None:
    """The first CUDA GPU's name, None where torch sees none."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def env_config(work: Work):
    """The single-agent env both trainers train in: ``work.preset`` with ``mode=single``."""
    from wideseek_env.config import EnvConfig

    return EnvConfig.from_preset(work.preset, {"mode": "single", "single_max_turns": work.turns})


def task_ids(work: Work) -> list[str]:
    from wideseek_env.tasks import load_tasks

    return sorted(t.id for t in load_tasks(Path(work.task_file)))[: work.tasks]


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # Linux: KiB


def run_ours(work: Work, out_dir: Path) -> dict:
    from agents.train import TrainConfig, Trainer

    cfg = TrainConfig(
        model=work.model, policy="hf", device=work.device, param_dtype=work.dtype, compute_dtype="none",
        gradient_checkpointing=work.gradient_checkpointing, preset=work.preset,
        env={"mode": "single", "single_max_turns": work.turns}, tasks=work.task_file, task_ids=task_ids(work),
        allow_eval_tasks=True, steps=work.steps, tasks_per_step=work.tasks, group_size=work.group,
        max_tokens=work.max_tokens, temperature=1.0, lr=work.lr, dynamic_sampling="off",
        micro_batch_size=work.tasks * work.group, eval_every=0, save_every=work.steps + 1, keep_checkpoints=1,
        logger="jsonl", output_dir=str(out_dir), seed=work.seed,
    )
    started = time.perf_counter()
    trainer = Trainer(cfg)
    setup_s = time.perf_counter() - started
    steps = []
    try:
        for _ in range(work.steps):
            m = trainer.train_step()
            steps.append({"rollout_s": m["time/rollout_s"], "update_s": m["time/step_s"] - m["time/rollout_s"],
                          "step_s": m["time/step_s"], "reward": m["reward/mean"],
                          "tokens": m.get("train/tokens", 0.0), "sequence_tokens": m.get("train/sequence_tokens", 0.0)})
    finally:
        trainer.close()
    return {"setup_s": setup_s, "steps": steps}


def run_trl(work: Work, out_dir: Path) -> dict:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from agents.setup import resolve_model
    from wideseek_env.paths import default_corpus_dir  # what our trainer opens for corpus=None
    from wideseek_env.integrations.trl_env import (REWARD_FUNCS, REWARD_WEIGHTS, environment_factory,
                                                   prepare_tokenizer, task_dataset)

    started = time.perf_counter()
    path = resolve_model(work.model)
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(path))
    args = GRPOConfig(
        output_dir=str(out_dir), max_steps=work.steps, per_device_train_batch_size=work.tasks * work.group,
        num_generations=work.group, max_completion_length=work.max_tokens,
        max_tool_calling_iterations=max(1, work.turns - 1), learning_rate=work.lr, temperature=1.0, top_p=1.0,
        epsilon=0.2, epsilon_high=0.28, reward_weights=REWARD_WEIGHTS, logging_steps=1, report_to="none",
        lr_scheduler_type="constant", save_strategy="no", use_cpu=work.device == "cpu", bf16=False, seed=work.seed,
        shuffle_dataset=False, gradient_checkpointing=work.gradient_checkpointing,
    )
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, work.dtype)),
        processing_class=tokenizer, args=args,
        train_dataset=task_dataset(work.task_file, task_ids=task_ids(work)), reward_funcs=REWARD_FUNCS,
        environment_factory=environment_factory(default_corpus_dir(), work.task_file,
                                                env_config(work)),
    )
    setup_s = time.perf_counter() - started
    times: dict[str, list[float]] = {"rollout": [], "step": []}
    inner = trainer._generate_and_score_completions

    def timed_generation(*a, **kw):
        t = time.perf_counter()
        try:
            return inner(*a, **kw)
        finally:
            times["rollout"].append(time.perf_counter() - t)

    trainer._generate_and_score_completions = timed_generation

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **kw):
            times["step"].append(time.perf_counter() - self.t)

    trainer.add_callback(StepTimer())
    trainer.train()
    rewards = [h["rewards/episode_reward/mean"] for h in trainer.state.log_history
               if "rewards/episode_reward/mean" in h]
    lengths = [h.get("completions/mean_length", 0.0) for h in trainer.state.log_history
               if "rewards/episode_reward/mean" in h]
    # TRL logs num_tokens as a running total of the tokens it forwarded (prompts + completions)
    totals = [0.0] + [h["num_tokens"] for h in trainer.state.log_history
                      if "rewards/episode_reward/mean" in h and "num_tokens" in h]
    forwarded = [b - a for a, b in zip(totals, totals[1:])] or [0.0] * len(rewards)
    steps = [{"rollout_s": r, "update_s": s - r, "step_s": s, "reward": w, "tokens": n * work.tasks * work.group,
              "sequence_tokens": f}
             for r, s, w, n, f in zip(times["rollout"], times["step"], rewards, lengths, forwarded)]
    return {"setup_s": setup_s, "steps": steps}


def child(trainer: str, work: Work, out_dir: Path) -> None:
    result = (run_ours if trainer == "ours" else run_trl)(work, out_dir)
    result["peak_rss_gib"] = peak_rss_gib()
    if work.device == "cuda":
        import torch

        result["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
    (out_dir / "result.json").write_text(json.dumps(result))


def summary(result: dict) -> dict:
    steps = result["steps"][1:] or result["steps"]  # the first step warms caches up
    mean = lambda k: sum(s[k] for s in steps) / len(steps)  # noqa: E731
    return {"rollout_s": mean("rollout_s"), "update_s": mean("update_s"), "step_s": mean("step_s"),
            "peak_rss_gib": result["peak_rss_gib"], "rewards": [round(s["reward"], 4) for s in result["steps"]],
            "tokens": mean("tokens"), "sequence_tokens": mean("sequence_tokens"), "setup_s": result["setup_s"],
            "peak_gpu_gib": result.get("peak_gpu_gib")}


def plot(results: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.5), squeeze=False)
    for ax, (model, runs) in zip(axes[0], results.items()):
        for name, r in runs.items():
            ax.plot(range(1, len(r["rewards"]) + 1), r["rewards"], marker="o", label=name)
        ax.set(title=model, xlabel="step", ylabel="mean reward (item F1)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["tiny", "smollm2"])
    for name, value in asdict(Work()).items():
        if name == "model":
            continue
        if isinstance(value, bool):
            p.add_argument("--" + name.replace("_", "-"), action=argparse.BooleanOptionalAction, default=value)
        else:
            p.add_argument("--" + name.replace("_", "-"), type=type(value), default=value,
                           choices=("cpu", "cuda") if name == "device" else None)
    p.add_argument("--out", default="benchmarks/results/trainers.md")
    p.add_argument("--child", nargs=3, metavar=("TRAINER", "MODEL", "DIR"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.device == "cuda" and gpu_name() is None:
        p.error("--device cuda: torch sees no CUDA GPU here (torch.cuda.is_available() is False); "
                "run on a GPU machine or use --device cpu")
    fields = {k: getattr(args, k) for k in asdict(Work()) if k != "model"}
    if args.child:
        child(args.child[0], Work(model=args.child[1], **fields), Path(args.child[2]))
        return
    work_dir = Path(tempfile.mkdtemp(prefix="wideseek-trainers-"))
    results: dict = {}
    loads: dict = {}
    for model in args.models:
        results[model] = {}
        for trainer in TRAINERS:
            out_dir = work_dir / model / trainer
            out_dir.mkdir(parents=True)
            loads[f"{model}/{trainer}"] = round(os.getloadavg()[0], 2)
            cmd = [sys.executable, __file__, "--child", trainer, model, str(out_dir)]
            cmd += cli_args(fields)
            subprocess.run(cmd, check=True)
            results[model][trainer] = summary(json.loads((out_dir / "result.json").read_text()))
            print(model, trainer, results[model][trainer], flush=True)
        # the page is rewritten after each model, so an interrupted run keeps the models it finished
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps({"work": fields, "machine": describe_machine(ram=True),
                                                        "load_at_start": loads, "results": results}, indent=1) + "\n")
        has_plot = plot(results, out.with_suffix(".png"))
        write_page(out, args, fields, results, loads, has_plot)


def cli_args(fields: dict) -> list[str]:
    out: list[str] = []
    for k, v in fields.items():
        flag = "--" + k.replace("_", "-")
        out += ([flag] if v else ["--no-" + k.replace("_", "-")]) if isinstance(v, bool) else [flag, str(v)]
    return out


def write_page(out: Path, args, fields: dict, results: dict, loads: dict, has_plot: bool) -> None:
    cmd = (f"python benchmarks/trainers.py --models {' '.join(args.models)} "
           + " ".join(cli_args(fields)) + f" --out {args.out}")
    on_gpu = fields["device"] == "cuda"
    where = f"on the GPU ({gpu_name()})" if on_gpu else "on the CPU"
    lines = [
        f"# Our GRPO trainer beside TRL's GRPOTrainer (single agent, {'GPU' if on_gpu else 'CPU'})",
        "",
        f"Command: `{cmd}`",
        "",
        f"Machine: {describe_machine(ram=True)}; both trainers of a model ran one after the other in one run, "
        f"each in its own child process, {fields['dtype']} weights on both, gradient checkpointing "
        f"{'on' if fields['gradient_checkpointing'] else 'off'} on both, env preset `{fields['preset']}` in "
        f"single-agent mode on both, {where} (load average at each start: "
        + ", ".join(f"{k} {v}" for k, v in loads.items()) + ").",
        "",
        f"Work: the first {fields['tasks']} train tasks by id, group {fields['group']}, "
        f"{fields['max_tokens']} tokens per turn, {fields['turns']} turns at most, lr {fields['lr']}, "
        f"{fields['steps']} steps, seed {fields['seed']}. Seconds are means over the steps after the first "
        "(the first warms caches up); rollout = generation + tools + reward, update = the rest of the step.",
        "",
        "| model | trainer | rollout s/step | update s/step | step s | trained tokens/step | forwarded tokens/step "
        "| update ms/forwarded token | peak RSS GiB | rewards per step | setup s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, runs in results.items():
        for name, r in runs.items():
            per_token = 1e3 * r["update_s"] / r["sequence_tokens"] if r.get("sequence_tokens") else float("nan")
            lines.append(f"| {model} | {name} | {r['rollout_s']:.2f} | {r['update_s']:.2f} | {r['step_s']:.2f} | "
                         f"{r['tokens']:.0f} | {r.get('sequence_tokens', 0):.0f} | {per_token:.2f} | "
                         f"{r['peak_rss_gib']:.2f} | {r['rewards']} | {r['setup_s']:.1f} |")
    lines.append("")
    if on_gpu:
        lines += ["Peak GPU memory (GiB, `torch.cuda.max_memory_allocated`): " + ", ".join(
            f"{model}/{name} {r['peak_gpu_gib']:.2f}" for model, runs in results.items() for name, r in runs.items()
            if r.get("peak_gpu_gib") is not None) + ".", ""]
    for model, runs in results.items():
        o, t = runs["ours"], runs["trl"]
        lines.append(f"- {model}: TRL step / our step = **{t['step_s'] / o['step_s']:.2f}x** "
                     f"(rollout {t['rollout_s'] / max(o['rollout_s'], 1e-9):.2f}x, "
                     f"update {t['update_s'] / max(o['update_s'], 1e-9):.2f}x; above 1 means ours is faster).")
    if has_plot:
        lines += ["", f"![reward per step]({out.with_suffix('.png').name})"]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
