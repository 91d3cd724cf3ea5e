"""Evaluation during training: the current policy, greedy, on a fixed held-out sample of tasks, through
the same harness as ``wideseek eval`` (so the numbers are comparable with any eval run)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agents.train.config import TrainConfig

__all__ = ["evaluate_policy"]


def evaluate_policy(cfg: TrainConfig, policy: Any, model_dir: Path, eval_file: Path, out: Path) -> dict[str, float]:
    """Run ``policy`` greedily (``cfg.eval_max_tokens`` or ``cfg.max_tokens`` per turn) on the first
    ``cfg.eval_limit`` tasks of ``eval_file`` (a seeded shuffle, the same every time) into ``out``, keeping
    ``cfg.eval_transcripts`` transcripts; return the ``eval/*`` metrics and ``time/eval_s``."""
    from agents.eval import EvalSpec, evaluate
    from agents.policy import SamplingConfig

    remote = bool(cfg.corpus) and str(cfg.corpus).startswith(("http://", "https://"))
    max_tokens = cfg.eval_max_tokens or cfg.max_tokens
    spec = EvalSpec(policy=cfg.policy, tasks=str(eval_file), corpus=None if remote else cfg.corpus,
                    retriever_url=cfg.corpus if remote else None, model=str(model_dir), preset=cfg.preset,
                    env=dict(cfg.env), limit=cfg.eval_limit, seed=cfg.seed, temperature=0.0, max_tokens=max_tokens,
                    max_model_len=cfg.max_model_len,
                    parallel=max(1, min(cfg.tasks_per_step * cfg.group_size, cfg.eval_limit or 8)),
                    save_transcripts=cfg.eval_transcripts > 0)
    started = time.perf_counter()
    with policy.sampling_override(SamplingConfig(temperature=0.0, max_tokens=max_tokens)):
        summary = evaluate(spec, out, overwrite=True, progress=False, print_table=False, policy=policy,
                           max_transcripts=cfg.eval_transcripts)
    st = summary.get("stats", {})
    return {
        "eval/item_f1": summary["item_f1_avg"],
        "eval/row_f1": summary["row_f1_avg"],
        "eval/success": summary["success_avg"],
        "eval/answer_parsed": st.get("answer_parsed_rate", 0.0),
        "eval/tool_calls_per_episode": st.get("tool_calls_per_episode_total", 0.0),
        "eval/subagents_per_episode": st.get("subagents_per_episode", 0.0),
        "eval/episodes": float(st.get("episodes", 0)),
        "time/eval_s": time.perf_counter() - started,
    }
