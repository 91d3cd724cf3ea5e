"""The learning result on the real env: does a real model get better at the env's own tasks?

SmolLM2-135M-Instruct (the one LLM that installs here) in four versions, all evaluated on the same
held-out test tasks that no stage trained on:

- ``untrained``: as shipped;
- ``sft``: after supervised fine-tuning on demonstrations of the train split (``wideseek demos`` with the
  scripted baseline, rendered with the model's own chat template and the env's prompts; ``wideseek sft``);
- ``grpo``: the SFT checkpoint after GRPO on the real env (``wideseek train``: rlinf turn selection,
  dual-level weights, dynamic sampling);
- ``control``: the same GRPO steps from the same SFT checkpoint with a learning rate of ~0 (1e-12), so
  that a rise of ``grpo`` over ``sft`` is not the rollouts' sampling or the evaluation's noise.

Evaluation is greedy. With ``--sampled-samples N`` the ``sft``, ``grpo`` and ``control`` versions are also
evaluated sampled at the rollout temperature (N episodes a task, stages ``sampled-VERSION``): GRPO
optimises that stochastic policy, and a gain there need not move the greedy mode.

    python benchmarks/learning_real.py --work /tmp/wideseek-learning --out benchmarks/results/learning_real.md

Every stage runs in its own child process (vLLM's in-process engines do not share a process well) and
writes into ``--work`` (outside the repository); a stage whose output is complete is skipped, and the
demos, SFT and GRPO stages resume from their own checkpoints, so an interrupted run continues where it
stopped. The page, ``learning_real.json`` and ``learning_real.png`` are written from what was measured:
item F1, row F1, success (0-100), answers parsed, valid tool calls per role and subagents per episode
for each version, a bootstrap 95% interval over tasks for each and for the paired differences to
``sft``, and the GRPO / control curves (training reward and held-out item F1 against the step) with
their diagnostics (zero-variance share, group reward std, entropy, clip fraction, approx KL).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import describe_machine  # noqa: E402

VERSIONS = ("untrained", "sft", "grpo", "control")


# ----------------------------------------------------------------------------------------------
# Stages (each runs in a child process: python learning_real.py --stage NAME ...)


def stage_tasks(args: argparse.Namespace, work: Path) -> None:
    """The generated train/test splits cut to ``--kinds`` (a test task never shares a table with a train
    task: the generator's split)."""
    from wideseek_env.paths import default_tasks_dir
    from wideseek_env.tasks import load_tasks, save_tasks

    out = work / "tasks"
    if all((out / f"{split}.jsonl").exists() for split in ("train", "test")):
        # never replaced: a regenerated default task set (a newer generator) would give the later
        # stages other train/test tasks than the demos and SFT had
        print(f"[tasks] keeping {out} (delete it to cut new splits)", file=sys.stderr)
        return
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        tasks = [t for t in load_tasks(default_tasks_dir() / f"{split}.jsonl")
                 if not args.kinds or getattr(t, "kind", None) in args.kinds]
        save_tasks(tasks, out / f"{split}.jsonl")


def env_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from agents.setup import parse_env_overrides

    return parse_env_overrides(args.env)


def stage_demos(args: argparse.Namespace, work: Path) -> None:
    from agents.demos import DemoConfig, write_demos

    manifest = write_demos(DemoConfig(policy=args.demo_policy, tasks=str(work / "tasks" / "train.jsonl"),
                                      out=str(work / "demos"), model=args.model, min_f1=args.min_f1,
                                      preset=args.preset, env=env_overrides(args), limit=args.demo_tasks,
                                      seed=args.seed, parallel=args.eval_parallel, recovery=args.recovery))
    print(json.dumps(manifest, indent=1), flush=True)


def stage_sft(args: argparse.Namespace, work: Path) -> None:
    from agents.sft import SFTConfig, run_sft

    run_sft(SFTConfig(demos=[str(work / "demos")], model=args.model, steps=args.sft_steps, batch_size=args.sft_batch,
                      micro_batch_size=args.sft_micro_batch, lr=args.sft_lr, compute_dtype="bfloat16",
                      gradient_checkpointing=True, max_length=args.sft_max_length, output_dir=str(work / "sft"),
                      save_every=max(1, args.sft_steps // 6), resume="auto", seed=args.seed, logger="jsonl"))


def sft_checkpoint(work: Path) -> Path:
    from agents.train.checkpoints import list_checkpoints

    ckpts = list_checkpoints(work / "sft" / "checkpoints")
    if not ckpts:
        raise SystemExit(f"no SFT checkpoint in {work / 'sft' / 'checkpoints'}: run the sft stage first")
    return ckpts[-1]


def stage_train(args: argparse.Namespace, work: Path, name: str) -> None:
    from agents.train import TrainConfig, Trainer
    from wideseek_env.tasks import load_tasks

    train_file = work / "tasks" / "train.jsonl"
    task_ids = sorted(t.id for t in load_tasks(train_file))[: args.train_tasks] if args.train_tasks else None
    cfg = TrainConfig(
        model=str(sft_checkpoint(work)), policy=args.policy, vllm_kwargs=vllm_kwargs(args),
        compute_dtype="bfloat16", gradient_checkpointing=args.grpo_gradient_checkpointing,
        max_model_len=args.max_model_len, tasks=str(train_file), task_ids=task_ids, eval_tasks=str(work / "tasks" / "test.jsonl"),
        preset=args.preset, env=env_overrides(args), steps=args.grpo_steps, tasks_per_step=args.tasks_per_step,
        group_size=args.group_size, temperature=args.temperature, max_tokens=args.max_tokens,
        turn_selection="rlinf", aggregation="dual_level", dynamic_sampling="drop",
        max_tokens_per_microbatch=args.tokens_per_microbatch,
        lr=args.grpo_lr if name == "grpo" else 1e-12, eval_every=args.eval_every, eval_limit=args.curve_limit,
        eval_max_tokens=args.max_tokens, eval_transcripts=2, save_every=1, keep_checkpoints=1, resume="auto",
        logger="jsonl", output_dir=str(work / name), seed=args.seed)
    trainer = Trainer(cfg)
    try:
        trainer.train(progress=lambda s: print(f"[{name}] {s}", file=sys.stderr, flush=True))
    finally:
        trainer.close()


def version_model(work: Path, version: str, model: str) -> str:
    if version == "untrained":
        return model
    if version == "sft":
        return str(sft_checkpoint(work))
    from agents.train.checkpoints import list_checkpoints

    ckpts = list_checkpoints(work / version / "checkpoints")
    if not ckpts:
        raise SystemExit(f"no checkpoint in {work / version}: run the {version} stage first")
    return str(ckpts[-1])


def vllm_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.policy != "vllm" or args.vllm_memory is None:
        return {}  # vLLM's default (on CPU: the policy's default KV-cache size)
    return {"gpu_memory_utilization": args.vllm_memory}


def stage_eval(args: argparse.Namespace, work: Path, version: str, *, sampled: bool = False) -> None:
    """``version`` on the held-out tasks, greedy (``work/eval-VERSION``, transcripts kept) or, with
    ``sampled``, at the rollout temperature (``--temperature``), ``--sampled-samples`` episodes a task
    (``work/sampled-VERSION``): the policy GRPO optimises, where greedy decoding shows only its mode."""
    from agents.eval import EvalSpec, evaluate

    spec = EvalSpec(policy=args.policy, model=version_model(work, version, args.model),
                    tasks=str(work / "tasks" / "test.jsonl"), preset=args.preset, env=env_overrides(args),
                    limit=args.eval_limit, seed=args.seed, temperature=args.temperature if sampled else 0.0,
                    samples=args.sampled_samples if sampled else 1, max_tokens=args.max_tokens,
                    max_model_len=args.max_model_len, parallel=args.eval_parallel, save_transcripts=not sampled,
                    policy_options=vllm_kwargs(args))
    evaluate(spec, work / f"{'sampled' if sampled else 'eval'}-{version}", progress=True, print_table=True)


def stage_kl(args: argparse.Namespace, work: Path) -> None:
    """How far GRPO (and the control) moved the policy from the SFT checkpoint, measured where it acts:
    the exact per-token KL(version || sft) and the version's entropy, averaged over the generated tokens
    of the version's own held-out evaluation (its saved token trajectories, every turn). Writes
    ``work/kl.json``; a version without a checkpoint or an evaluation is left out."""
    import torch
    from transformers import AutoModelForCausalLM

    from agents.eval.records import read_transcripts

    def load(path: str) -> Any:  # a checkpoint keeps its weights in model/; a model name resolves as is
        weights = Path(path) / "model"
        return AutoModelForCausalLM.from_pretrained(str(weights if weights.is_dir() else path),
                                                    torch_dtype=torch.float32).eval()

    sft = load(str(sft_checkpoint(work)))
    out: dict[str, Any] = {}
    for version in ("grpo", "control"):
        run = work / f"eval-{version}" / "transcripts.jsonl"
        if not run.exists():
            continue
        model = load(version_model(work, version, args.model))
        kl_sum = ent_sum = 0.0
        tokens = turns = 0
        with torch.no_grad():
            for record in read_transcripts(run):
                for agent in record["agents"].values():
                    for turn in agent.get("turns", []):
                        ids = turn["prompt_ids"] + turn["response_ids"]
                        n = len(turn["response_ids"])
                        if n == 0:
                            continue
                        x = torch.tensor([ids])
                        # logits at position i predict token i+1: the response tokens' predictors
                        sl = slice(len(turn["prompt_ids"]) - 1, len(ids) - 1)
                        lp = torch.log_softmax(model(x).logits[0, sl].float(), -1)
                        lq = torch.log_softmax(sft(x).logits[0, sl].float(), -1)
                        mask = torch.tensor(turn["mask"], dtype=torch.bool)
                        p = lp.exp()
                        kl_sum += float(((p * (lp - lq)).sum(-1))[mask].sum())
                        ent_sum += float((-(p * lp).sum(-1))[mask].sum())
                        tokens += int(mask.sum())
                        turns += 1
        out[version] = {"kl_to_sft": kl_sum / max(tokens, 1), "entropy": ent_sum / max(tokens, 1),
                        "tokens": tokens, "turns": turns}
        print(f"[kl] {version}: {out[version]}", file=sys.stderr, flush=True)
    (work / "kl.json").write_text(json.dumps(out, indent=1) + "\n")


# ----------------------------------------------------------------------------------------------
# Report


def _bootstrap(values: list[float], *, rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean of ``values`` over ``rounds`` resamples."""
    if not values:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    return (means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1])


def _per_task(run: Path) -> dict[str, dict[str, float]]:
    out = {}
    for line in (run / "episodes.jsonl").read_text().splitlines():
        r = json.loads(line)
        out[r["task_id"]] = {**r["scores"], "answer_parsed": float(r["metrics"]["answer_parsed"])}
    return out


def _per_task_mean_f1(run: Path) -> dict[str, float]:
    """Item F1 of each task, averaged over its sampled episodes."""
    scores: dict[str, list[float]] = {}
    for line in (run / "episodes.jsonl").read_text().splitlines():
        r = json.loads(line)
        scores.setdefault(r["task_id"], []).append(r["scores"]["item_f1"])
    return {t: sum(v) / len(v) for t, v in scores.items()}


def _paired(a: dict[str, float], b: dict[str, float], skip: set[str]) -> dict[str, Any]:
    """Mean of a - b (item F1, 0-100) over the tasks both hold, with a bootstrap 95% interval."""
    common = sorted((set(a) & set(b)) - skip)
    diffs = [100 * (a[t] - b[t]) for t in common]
    return {"n_tasks": len(common), "item_f1_diff": round(sum(diffs) / max(len(diffs), 1), 2),
            "ci95": [round(x, 2) for x in _bootstrap(diffs)]}


def report(args: argparse.Namespace, work: Path, timings: dict[str, float]) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": describe_machine(), "model": args.model, "kinds": args.kinds,
                              "preset": args.preset, "env": env_overrides(args), "stage_seconds": timings,
                              "settings": {k: v for k, v in vars(args).items() if k not in ("stage",)}}
    per_task = {}
    for v in VERSIONS:
        run = work / f"eval-{v}"
        if not (run / "summary.json").exists():
            continue
        s = json.loads((run / "summary.json").read_text())
        st = s.get("stats", {})
        per_task[v] = _per_task(run)
        f1s = [100 * x["item_f1"] for x in per_task[v].values()]
        result[v] = {
            "item_f1": round(100 * s["item_f1_avg"], 2), "row_f1": round(100 * s["row_f1_avg"], 2),
            "success": round(100 * s["success_avg"], 2), "answer_parsed": round(100 * st.get("answer_parsed_rate", 0), 2),
            "n_tasks": s["tasks_done"], "item_f1_ci95": [round(x, 2) for x in _bootstrap(f1s)],
            "tool_calls_by_role": st.get("calls_by_role_per_episode", {}),
            "subagents_per_episode": round(st.get("subagents_per_episode", 0.0), 2),
            "tool_calls_per_episode": round(st.get("tool_calls_per_episode_total", 0.0), 2),
        }
    manifest = work / "demos" / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        result["demos"] = {k: m.get(k) for k in ("episodes_played", "episodes_kept", "mean_item_f1_played",
                                                 "records", "completion_tokens", "total_tokens", "max_tokens")}
    sft_metrics = work / "sft" / "metrics.jsonl"
    if sft_metrics.exists():
        rows = [json.loads(line) for line in sft_metrics.read_text().splitlines() if line.strip()]
        result["sft_training"] = {
            "steps_done": max((r["step"] for r in rows), default=0),
            "loss": [[r["step"], round(r["loss"], 4)] for r in rows if "loss" in r],
            "heldout_loss": [[r["step"], round(r["heldout/loss"], 4)] for r in rows if "heldout/loss" in r],
            "seconds_per_step": round(sum(r.get("time/step_s", 0.0) for r in rows) / max(1, sum("loss" in r for r in rows)), 1),
        }
    excluded_file = work / "excluded_tasks.json"
    excluded = json.loads(excluded_file.read_text()) if excluded_file.exists() else {"tasks": [], "reason": ""}
    if excluded["tasks"]:
        result["excluded"] = excluded
    skip = set(excluded["tasks"])
    result["paired"] = []
    pairs = (("grpo", "sft"), ("control", "sft"), ("grpo", "control"))
    for v, base in pairs:
        if v in per_task and base in per_task:
            f1 = {name: {t: x["item_f1"] for t, x in per_task[name].items()} for name in (v, base)}
            result["paired"].append({"version": v, "minus": base, **_paired(f1[v], f1[base], skip)})
    sampled = {v: _per_task_mean_f1(work / f"sampled-{v}") for v in VERSIONS
               if (work / f"sampled-{v}" / "summary.json").exists()}
    if sampled:
        result["sampled"] = {
            "temperature": args.temperature, "samples": args.sampled_samples,
            "item_f1": {v: round(100 * sum(f.values()) / max(len(f), 1), 2) for v, f in sampled.items()},
            "item_f1_ci95": {v: [round(x, 2) for x in _bootstrap([100 * x for x in f.values()])]
                             for v, f in sampled.items()},
            "n_tasks": {v: len(f) for v, f in sampled.items()},
            "paired": [{"version": v, "minus": base, **_paired(sampled[v], sampled[base], skip)}
                       for v, base in pairs if v in sampled and base in sampled],
        }
    if skip:
        for v in per_task:
            kept = [100 * x["item_f1"] for t, x in per_task[v].items() if t not in skip]
            result[v]["item_f1_without_excluded"] = round(sum(kept) / max(len(kept), 1), 2)
            result[v]["item_f1_without_excluded_ci95"] = [round(x, 2) for x in _bootstrap(kept)]
    for v in ("grpo", "control"):
        metrics = work / v / "metrics.jsonl"
        if metrics.exists():  # the curve shows while the version's final evaluation is still to come
            rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            # a resumed run logs the steps after its checkpoint again: the last row of a step wins
            rows = sorted({r["step"]: r for r in rows}.values(), key=lambda r: r["step"])
            result.setdefault(v, {})["curve"] = [
                {k: r.get(k) for k in ("step", "reward/mean", "episode/item_f1", "eval/item_f1",
                                       "groups/zero_variance_share", "groups/reward_std_mean", "entropy", "loss/clip_fraction", "loss/approx_kl",
                                       "grad_norm", "train/skipped", "logprob_gap/kl_k3", "time/step_s")
                 if k in r}
                for r in rows]
    kl = work / "kl.json"
    if kl.exists():
        for v, d in json.loads(kl.read_text()).items():
            if v in result:
                result[v]["drift"] = d
    return result


def write_page(result: dict[str, Any], out: Path, command: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# Learning on the real env: SmolLM2-135M-Instruct, untrained / SFT / GRPO / control", "",
             f"Command: `{command}`", "", f"Machine: {result['machine']}.", "",
             f"Held-out tasks: the generated test split, kinds {result['kinds'] or 'all'}, the first "
             f"{result['settings']['eval_limit']} of a seeded shuffle; greedy decoding; preset "
             f"`{result['preset']}`, env {result['env']}. No stage trained on them (the generator splits by "
             "source page).", "",
             "| version | item F1 (95% CI) | row F1 | success | answers parsed | tool calls/ep | tasks |",
             "|---|---|---|---|---|---|---|"]
    for v in VERSIONS:
        r = result.get(v, {})
        if "item_f1" not in r:
            lines.append(f"| {v} | not run yet | | | | | |")
            continue
        lo, hi = r["item_f1_ci95"]
        lines.append(f"| {v} | {r['item_f1']:.1f} ({lo:.1f}-{hi:.1f}) | {r['row_f1']:.1f} | {r['success']:.1f} | "
                     f"{r['answer_parsed']:.1f}% | {r['tool_calls_per_episode']:.1f} | {r['n_tasks']} |")
    if "excluded" in result:
        ex = result["excluded"]
        lines += ["", f"Left out of the comparisons below: {len(ex['tasks'])} held-out tasks ({ex['reason']}). "
                  "Item F1 without them: " + ", ".join(
                      f"{v} {result[v]['item_f1_without_excluded']:.1f} ({result[v]['item_f1_without_excluded_ci95'][0]:.1f}-"
                      f"{result[v]['item_f1_without_excluded_ci95'][1]:.1f})"
                      for v in VERSIONS if "item_f1_without_excluded" in result.get(v, {})) + "."]
    for d in result.get("paired", []):
        lo, hi = d["ci95"]
        lines += ["", f"{d['version']} - {d['minus']}, paired over {d['n_tasks']} tasks: {d['item_f1_diff']:+.1f} item F1 "
                  f"(95% bootstrap CI {lo:+.1f} to {hi:+.1f})."]
    if "sampled" in result:
        sp = result["sampled"]
        lines += ["", f"Sampled at the rollout temperature {sp['temperature']} ({sp['samples']} episodes a task, "
                  "item F1 averaged per task; the stochastic policy that GRPO optimises, where greedy decoding "
                  "shows its mode): " + ", ".join(
                      f"{v} {f1:.1f} ({sp['item_f1_ci95'][v][0]:.1f}-{sp['item_f1_ci95'][v][1]:.1f}, "
                      f"{sp['n_tasks'][v]} tasks)" for v, f1 in sp["item_f1"].items()) + "."]
        for d in sp["paired"]:
            lo, hi = d["ci95"]
            lines += ["", f"Sampled, {d['version']} - {d['minus']}, paired over {d['n_tasks']} tasks: "
                      f"{d['item_f1_diff']:+.1f} item F1 (95% bootstrap CI {lo:+.1f} to {hi:+.1f})."]
    if "demos" in result:
        d = result["demos"]
        recovery = result["settings"].get("recovery") or 0.0
        lines += ["", f"Demonstrations (scripted baseline on train tasks, kept at item F1 >= {result['settings']['min_f1']}"
                  + (f"; a share {recovery} of episodes with a corrupted first access call, left out of the loss, "
                     "then the real one" if recovery else "") + "): "
                  f"{d['episodes_kept']} of {d['episodes_played']} episodes kept (mean item F1 played "
                  f"{100 * d['mean_item_f1_played']:.1f}), {d['total_tokens']} tokens of which {d['completion_tokens']} "
                  f"trained (assistant tokens), longest {d['max_tokens']} tokens."]
    if "sft_training" in result:
        t = result["sft_training"]
        first, last = (t["loss"][0][1], t["loss"][-1][1]) if t["loss"] else (None, None)
        lines += ["", f"SFT: {t['steps_done']} of {result['settings']['sft_steps']} steps x "
                  f"{result['settings']['sft_batch']} sequences ({t['seconds_per_step']} s a step); train loss "
                  f"{first} at step 1 -> {last}; held-out loss by step {t['heldout_loss']}."]
    lines += _diagnostics(result)
    lines += ["", "Valid / invalid tool calls per episode by role:", ""]
    for v in VERSIONS:
        if result.get(v, {}).get("tool_calls_by_role"):
            lines.append(f"- {v}: " + ", ".join(f"{role} {c['valid']:.2f} valid / {c['invalid']:.2f} invalid"
                                               for role, c in result[v]["tool_calls_by_role"].items()))
    notes = Path(result["settings"].get("notes") or "")
    if notes.is_file():
        lines += ["", notes.read_text().strip()]
    lines += ["", "Stage wall times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in result["stage_seconds"].items()), ""]
    out.write_text("\n".join(lines) + "\n")


def _diagnostics(result: dict[str, Any]) -> list[str]:
    """The GRPO / control diagnostics, one row per step, and the drift from the SFT policy."""
    def cell(r: dict[str, Any], key: str, fmt: str, scale: float = 1.0) -> str:
        return format(scale * r[key], fmt) if r.get(key) is not None else ""

    lines: list[str] = []
    for v in ("grpo", "control"):
        curve = result.get(v, {}).get("curve", [])
        if not curve:
            continue
        train_tasks = result["settings"].get("train_tasks")
        lines += ["", f"{v}: per step (reward: mean episode reward of the step's rollouts, train item F1 their "
                  "mean item F1"
                  + (f", every step on the same {train_tasks} train tasks (the first by id)" if train_tasks else "")
                  + "; groups without "
                  "reward variance are dropped; clip fraction and approx KL (k3, old -> new) are measured in "
                  "the step's one update pass, so the approx KL is the gap between the engine's and the "
                  "trainer's log-probs of the sampled tokens; held-out item F1 on the curve sample):", "",
                  "| step | reward | train item F1 | zero-var groups | group reward std | entropy | clip frac | "
                  "approx KL | grad norm | held-out item F1 | s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in curve:
            lines.append(" | ".join([
                f"| {r['step']}", cell(r, "reward/mean", ".3f"), cell(r, "episode/item_f1", ".1f", 100.0),
                cell(r, "groups/zero_variance_share", ".0%"),
                cell(r, "groups/reward_std_mean", ".3f"), cell(r, "entropy", ".3f"), cell(r, "loss/clip_fraction", ".3f"),
                cell(r, "loss/approx_kl", ".2e"), cell(r, "grad_norm", ".3f"),
                cell(r, "eval/item_f1", ".1f", 100.0), cell(r, "time/step_s", ".0f")]) + " |")
    drift = [(v, result[v]["drift"]) for v in ("grpo", "control") if "drift" in result.get(v, {})]
    if drift:
        lines += ["", "Drift from the SFT policy on each version's own held-out generations (exact per-token "
                  "KL(version || sft) and the version's entropy, over every generated token of its evaluation): "
                  + "; ".join(f"{v} KL {d['kl_to_sft']:.2e}, entropy {d['entropy']:.3f} over {d['tokens']} tokens"
                              for v, d in drift) + "."]
    return lines


def plot(result: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for v, style in (("grpo", "-o"), ("control", "--s")):
        curve = result.get(v, {}).get("curve", [])
        tr = [(r["step"], r["reward/mean"]) for r in curve if r.get("reward/mean") is not None]
        ev = [(r["step"], 100 * r["eval/item_f1"]) for r in curve if r.get("eval/item_f1") is not None]
        if tr:
            a.plot(*zip(*tr), style, label=v)
        if ev:
            b.plot(*zip(*ev), style, label=v)
    a.set(xlabel="step", ylabel="training reward", title="GRPO training reward")
    b.set(xlabel="step", ylabel="held-out item F1", title="held-out item F1 (curve sample)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# ----------------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="/tmp/wideseek-learning", help="runs and checkpoints (outside the repository)")
    p.add_argument("--out", default="benchmarks/results/learning_real.md")
    p.add_argument("--model", default="smollm2")
    p.add_argument("--policy", default="vllm", choices=("vllm", "hf"), help="rollout and evaluation engine")
    p.add_argument("--vllm-memory", type=float, default=None, help="vLLM gpu_memory_utilization (GPU runs)")
    p.add_argument("--kinds", nargs="*", default=["transcribe"], help="task kinds trained and evaluated")
    p.add_argument("--preset", default="compact", help="env preset (compact: short prompts, whole-section access)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="EnvConfig field; repeatable")
    p.add_argument("--demo-policy", default="scripted", help="the demonstrator of the demos stage")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-tokens", type=int, default=384, help="tokens per turn (rollouts and evaluation)")
    p.add_argument("--max-model-len", type=int, default=4096)
    p.add_argument("--demo-tasks", type=int, default=None, help="train tasks played for demos (default: all)")
    p.add_argument("--min-f1", type=float, default=0.8)
    p.add_argument("--recovery", type=float, default=0.0,
                   help="share of demo episodes with a corrupted first access call, then the real one (demos --recovery)")
    p.add_argument("--sft-steps", type=int, default=200)
    p.add_argument("--sft-batch", type=int, default=8)
    p.add_argument("--sft-micro-batch", type=int, default=1)
    p.add_argument("--sft-lr", type=float, default=1e-4)
    p.add_argument("--sft-max-length", type=int, default=4096)
    p.add_argument("--grpo-steps", type=int, default=12)
    p.add_argument("--grpo-lr", type=float, default=1e-6)
    p.add_argument("--grpo-gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True,
                   help="off: GRPO and control update passes ~20%% faster on CPU for ~1.6x the activation memory "
                        "(SmolLM2-135M, 4096-token microbatch: 9.5 GB against 5.8 GB)")
    p.add_argument("--tasks-per-step", type=int, default=4)
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--tokens-per-microbatch", type=int, default=4096)
    p.add_argument("--train-tasks", type=int, default=None,
                   help="GRPO and control train on the first N train tasks (by id) only; N = --tasks-per-step "
                        "draws the same tasks every step, so the training reward compares across steps")
    p.add_argument("--eval-every", type=int, default=4, help="GRPO steps between curve evaluations")
    p.add_argument("--curve-limit", type=int, default=12, help="held-out tasks of the curve evaluations")
    p.add_argument("--eval-limit", type=int, default=50, help="held-out tasks of the four final evaluations")
    p.add_argument("--eval-parallel", type=int, default=8)
    p.add_argument("--sampled-samples", type=int, default=0,
                   help="> 0: also evaluate sft, grpo and control sampled at --temperature, this many episodes a task")
    p.add_argument("--notes", default=None, help="a markdown file appended to the page (what a run's numbers mean)")
    p.add_argument("--stages", nargs="*", default=None, help="run only these stages (default: all, in order)")
    p.add_argument("--report-only", action="store_true", help="run no stage: write the page from what is in --work")
    p.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.train_tasks is not None and args.train_tasks < 1:
        p.error(f"--train-tasks must be at least 1, got {args.train_tasks}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.stage:
        name = args.stage
        if name == "tasks":
            stage_tasks(args, work)
        elif name == "demos":
            stage_demos(args, work)
        elif name == "sft":
            stage_sft(args, work)
        elif name in ("grpo", "control"):
            stage_train(args, work, name)
        elif name.startswith("eval-"):
            stage_eval(args, work, name[len("eval-"):])
        elif name.startswith("sampled-"):
            stage_eval(args, work, name[len("sampled-"):], sampled=True)
        elif name == "kl":
            stage_kl(args, work)
        else:
            raise SystemExit(f"unknown stage {name}")
        return
    # The warm start first: on a slow machine the SFT comparison lands before the untrained evaluation
    # (whose answers mostly run to the per-turn budget) and the GRPO stages.
    order = ["tasks", "demos", "sft", "eval-sft", "eval-untrained", "grpo", "control", "eval-grpo", "eval-control", "kl"]
    if args.sampled_samples:
        order += ["sampled-sft", "sampled-grpo", "sampled-control"]
    timings_file = work / "stage_seconds.json"
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    argv = [a for a in sys.argv[1:] if a != "--report-only"]  # _without_stages drops --stages and its names
    for name in order:
        if args.stages and name not in args.stages:
            continue
        if name.startswith(("eval-", "sampled-")) and (work / name / "summary.json").exists() \
                and json.loads((work / name / "summary.json").read_text()).get("complete"):
            continue
        if name == "kl" and (work / "kl.json").exists() \
                and set(json.loads((work / "kl.json").read_text())) >= {"grpo", "control"}:
            continue
        if args.report_only:
            break
        started = time.perf_counter()
        print(f"== stage {name}  ({time.strftime('%H:%M:%S', time.gmtime())} UTC)", flush=True)
        rc = subprocess.run([sys.executable, __file__, *_without_stages(argv), "--stage", name], env=env).returncode
        timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - started, 1)
        timings_file.write_text(json.dumps(timings, indent=1))
        if rc != 0:  # the page still shows every stage that completed
            print(f"== stage {name} failed (exit {rc}); writing the page from the stages that completed", flush=True)
            break
    result = report(args, work, timings)
    out = Path(args.out)
    command = "python benchmarks/learning_real.py " + " ".join(_without_stages(argv))
    write_page(result, out, command)
    plot(result, out.with_suffix(".png"))
    print(out.read_text())


def _without_stages(argv: list[str]) -> list[str]:
    """``argv`` less what does not change the measurements (``--stages ...``, ``--report-only``,
    ``--notes FILE``), so the page's command reruns the whole chain."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--stages":  # its values run up to the next option
            while i < len(argv) and not argv[i].startswith("--"):
                i += 1
        elif a == "--notes":
            i += 1
        elif a != "--report-only" and not a.startswith("--notes="):
            out.append(a)
    return out


if __name__ == "__main__":
    main()
