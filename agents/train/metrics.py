"""Training metrics: one JSON line per step in ``metrics.jsonl`` (always) and TensorBoard scalars (when
installed), one JSON line per training episode in ``rollouts.jsonl`` (:class:`RolloutLog`), plus
:func:`batch_metrics`, the step's reward, episode-shape, advantage and length statistics.

Names: ``reward/*``, ``episode/<name>`` (the batch mean of :meth:`agents.episode.Episode.scalar_metrics`,
the same names as the evaluation records), ``groups/*`` (``groups/zero_variance``: how many groups of
the step had all rewards equal; ``groups/zero_variance_share``), ``advantage/*``, ``response_length/*``,
``train/*`` (samples, tokens, dropped micro-batches), ``loss/*``, ``time/*`` and ``eval/*``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from wideseek_env.errors import WideseekError

log = logging.getLogger(__name__)

__all__ = ["MetricsLogger", "RolloutLog", "LogprobGap", "batch_metrics", "group_rewards", "mean", "std"]


class MetricsLogger:
    """TensorBoard scalars (when available and wanted) plus one JSON line per step."""

    def __init__(self, out_dir: Path, backend: str = "auto", *, append: bool = False,
                 resume_step: int | None = None) -> None:
        """``resume_step``: the step a resumed run continues from. Rows of later steps (logged by the
        run that was interrupted after its last checkpoint, and about to be run again) are dropped from
        ``metrics.jsonl``, and TensorBoard purges them, so that each step is logged once."""
        self.path, self._file = _open_step_log(out_dir / "metrics.jsonl", append, resume_step)
        self.writer = None
        if backend in ("auto", "tensorboard"):
            try:
                from torch.utils.tensorboard import SummaryWriter

                purge = resume_step + 1 if append and resume_step is not None else None
                self.writer = SummaryWriter(str(out_dir / "tb"), purge_step=purge)
            except Exception as exc:  # noqa: BLE001 - tensorboard missing or broken
                if backend == "tensorboard":
                    raise WideseekError(
                        f"TensorBoard logging asked for but unavailable ({exc}); "
                        "pip install tensorboard, or set logger: jsonl"
                    ) from None
                log.info("tensorboard unavailable (%s): metrics go to %s only", exc, self.path)

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        row = {"step": step}
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                row[k] = float(v) if math.isfinite(float(v)) else None
                if self.writer is not None and math.isfinite(float(v)):
                    self.writer.add_scalar(k, float(v), step)
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        self._file.close()
        if self.writer is not None:
            self.writer.close()


class RolloutLog:
    """``rollouts.jsonl``: one JSON line per training episode, so a run can be read per task (which tasks
    a step drew, which samples scored, how a task's reward moves across steps), not only as step means.

    A row: ``step`` (the step the episode was collected for, 1-based like ``metrics.jsonl``),
    ``task_id``, ``episode_id``, ``reward``, ``answer_parsed`` and the episode's scalar metrics
    (``item_f1``, ``tool_calls``, ...; the names of the evaluation records). ``resume_step`` as in
    :class:`MetricsLogger`: rows of later steps are dropped, so each step is logged once."""

    def __init__(self, out_dir: Path, *, append: bool = False, resume_step: int | None = None) -> None:
        self.path, self._file = _open_step_log(out_dir / "rollouts.jsonl", append, resume_step)

    def log(self, step: int, episodes: Sequence[Any]) -> None:
        for e in episodes:
            row: dict[str, Any] = {"step": step, "task_id": e.task_id, "episode_id": e.job.episode_id}
            for k, v in e.scalar_metrics().items():
                row[k] = float(v) if math.isfinite(float(v)) else None
            row.update(reward=float(e.reward), answer_parsed=bool(e.answer_parsed))
            self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _open_step_log(path: Path, append: bool, resume_step: int | None) -> tuple[Path, Any]:
    """``path`` opened for JSON lines keyed by ``step``: truncated for a new run; for a resumed one
    (``append``), rows after ``resume_step`` dropped first (they are about to be logged again)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if append and resume_step is not None and path.exists():
        _drop_rows_after(path, resume_step)
    return path, open(path, "a" if append else "w", encoding="utf-8")


def _drop_rows_after(path: Path, step: int) -> None:
    """Keep the complete rows of ``path`` whose step is at most ``step`` (atomically rewritten)."""
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            row = json.loads(line)
            if line.endswith("\n") and int(row["step"]) <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut off by a kill
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    os.replace(tmp, path)


def mean(xs: Sequence[float]) -> float:
    return float(sum(xs) / len(xs)) if xs else 0.0


def std(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return 0.0
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def group_rewards(episodes: Sequence[Any]) -> dict[Any, list[float]]:
    """Group id -> the rewards of its episodes."""
    groups: dict[Any, list[float]] = {}
    for e in episodes:
        groups.setdefault(e.group_id, []).append(float(e.reward))
    return groups


def batch_metrics(episodes: Sequence[Any], batch: Any = None) -> dict[str, float]:
    """Reward and episode statistics of all ``episodes`` of a step; advantage and length statistics of the
    ``batch`` built from those that went into the update (None when none did)."""
    rewards = [float(e.reward) for e in episodes]
    m: dict[str, float] = {
        "reward/mean": mean(rewards), "reward/std": std(rewards),
        "reward/max": max(rewards, default=0.0), "reward/min": min(rewards, default=0.0),
    }
    scalars = [e.scalar_metrics() for e in episodes]
    for key in (scalars[0] if scalars else {}):
        m[f"episode/{key}"] = mean([s[key] for s in scalars])
    m["episode/agents"] = mean([len(e.trajectories) for e in episodes])
    groups = group_rewards(episodes)
    flat = [g for g in groups.values() if max(g) == min(g)]
    m["groups/total"] = float(len(groups))
    m["groups/zero_variance"] = float(len(flat))
    m["groups/zero_variance_share"] = len(flat) / len(groups) if groups else 0.0
    m["groups/with_signal"] = 1.0 - m["groups/zero_variance_share"] if groups else 0.0
    m["groups/reward_std_mean"] = mean([std(g) for g in groups.values()])
    lengths = [len(t.response_ids) for e in episodes for tr in e.trajectories.values() for t in tr.turns]
    m["response_length/mean"] = mean(lengths)
    m["response_length/max"] = float(max(lengths, default=0))
    m["response_length/turns"] = float(len(lengths))
    m["response_length/runaway_turns"] = float(sum(
        1 for e in episodes for tr in e.trajectories.values() for t in tr.turns if t.failed))
    if batch is not None:
        adv = batch.advantages.tolist()
        m.update({
            "advantage/mean": mean(adv), "advantage/std": std(adv),
            "advantage/abs_mean": mean([abs(a) for a in adv]),
            "advantage/zero_fraction": mean([1.0 if a == 0 else 0.0 for a in adv]),
        })
        m["train/samples"] = float(len(batch.samples))
        m["train/tokens"] = float(batch.num_tokens)
        # every token the update forwards (prompts and tool results included): what its cost scales with
        m["train/sequence_tokens"] = float(sum(len(s.input_ids) for s in batch.samples))
    else:
        m["train/samples"] = 0.0
        m["train/tokens"] = 0.0
        m["train/sequence_tokens"] = 0.0
    return m


class LogprobGap:
    """Engine-vs-trainer logprob gap of the sampled tokens: mean |d|, max |d|, k3 KL(engine || trainer)."""

    def __init__(self) -> None:
        self.abs = self.max = self.k3 = 0.0
        self.n = 0

    def add(self, trainer_lp: Any, engine_lp: Any, mask: Any) -> None:
        import torch

        d = (trainer_lp - engine_lp)[mask]
        if d.numel():
            self.abs += float(d.abs().sum())
            self.max = max(self.max, float(d.abs().max()))
            self.k3 += float((torch.exp(d) - d - 1).sum())
            self.n += int(d.numel())

    def metrics(self) -> dict[str, float]:
        if not self.n:
            return {}
        return {"logprob_gap/mean_abs": self.abs / self.n, "logprob_gap/max_abs": self.max,
                "logprob_gap/kl_k3": self.k3 / self.n}

