"""One finished episode, the one type that flows from the rollout runner to evaluation records and to GRPO.

:func:`agents.rollout.iter_episodes` yields :class:`Episode` s. The evaluation harness writes
:meth:`Episode.record` to ``episodes.jsonl`` (and :meth:`Episode.transcript` when transcripts are kept);
the GRPO trainer passes episodes straight to :func:`agents.grpo.build_batch` (an episode has the
``group_id``, ``reward``, ``trajectories``, ``answer_parsed`` and ``root_agent`` that the loss reads).

The metric names are defined once here: :data:`SCORE_FIELDS` (the WideSearch scores of the lead's answer)
and :data:`COUNT_FIELDS` / :data:`FLAG_FIELDS` (episode shape). The record's ``scores`` and ``metrics``,
the evaluation summary and the trainer's ``episode/<name>`` logs all use these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EpisodeJob", "Episode", "SCORE_FIELDS", "COUNT_FIELDS", "FLAG_FIELDS", "episode_id"]

#: The scores of the lead's final answer (0..1), as the evaluator computes them.
SCORE_FIELDS = ("item_precision", "item_recall", "item_f1", "row_precision", "row_recall", "row_f1", "success")
#: Episode-shape counts: record name -> the env's metric name.
COUNT_FIELDS = {
    "lead_turns": "lead_turns",
    "total_turns": "total_turns",
    "invalid_calls": "invalid_calls",
    "subagents": "subagents_spawned",
    "subagent_failures": "subagent_failures",
    "subagent_failures_turns": "subagent_failures_turns",
    "subagent_failures_context": "subagent_failures_context",
    "max_depth_reached": "max_depth_reached",
    "longest_turn_tokens": "longest_turn_tokens",
}
#: Episode-shape flags (0/1).
FLAG_FIELDS = ("truncated", "answer_parsed")


def episode_id(task_id: str, sample: int) -> str:
    """The id of sample ``sample`` of ``task_id`` (what the policy sees as the episode id)."""
    return f"{task_id}#{sample}"


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to run: the task, the episode id the policy sees, the env ``reset`` seed, and an
    opaque ``key`` the caller gets back in the :class:`Episode`."""

    task_id: str
    episode_id: str
    seed: int | None = None
    key: Any = None


@dataclass
class Episode:
    """A finished episode.

    ``reward``: the shared episode reward (every agent's). ``trajectories``: agent id -> the policy's
    token-level :class:`~agents.trajectory.Trajectory` (empty for policies that record none), with
    ``failed`` set for agents that hit a limit or whose generation failed, and ``Turn.failed`` for the
    offending turns (a runaway turn that used the whole per-turn budget, the turn that overflowed the
    context). ``answer_parsed``: the lead's answer had the expected form and the episode was not
    truncated. ``metrics``: the env's end-of-episode metrics plus ``policy_errors`` ({error: count}) and
    ``calls_by_role`` ({role: {"valid": n, "invalid": m}}). ``seconds``: wall time from reset to the last
    step. ``messages`` / ``texts`` / ``tools`` / ``parents``: per agent, its whole chat context, the raw
    texts it generated, its tool schemas and the agent that spawned it (only when the runner was asked to
    keep transcripts).
    """

    job: EpisodeJob
    reward: float
    trajectories: dict[str, Any]
    answer_parsed: bool
    root_agent: str
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int = 0
    messages: dict[str, list[dict[str, Any]]] | None = None
    texts: dict[str, list[str]] | None = None
    parents: dict[str, str | None] | None = None
    tools: dict[str, list[dict[str, Any]]] | None = None

    @property
    def group_id(self) -> str:
        """GRPO group: episodes of the same task."""
        return self.job.task_id

    @property
    def task_id(self) -> str:
        return self.job.task_id

    def scores(self) -> dict[str, float]:
        return {name: float(self.metrics.get(name, 0.0) or 0.0) for name in SCORE_FIELDS}

    def generated_tokens(self) -> int | None:
        if not self.trajectories:
            return None
        return sum(len(t.response_ids) for tr in self.trajectories.values() for t in tr.turns)

    def scalar_metrics(self) -> dict[str, float]:
        """Scores, counts and flags under their record names (the trainer logs their batch means)."""
        m = self.metrics
        out = self.scores()
        out.update({name: float(m.get(env_name, 0) or 0) for name, env_name in COUNT_FIELDS.items()})
        out["truncated"] = float(bool(m.get("truncated", False)))
        out["answer_parsed"] = float(bool(m.get("answer_parsed", False)))
        out["tool_calls"] = float(sum((m.get("tool_calls") or {}).values()))
        return out

    def record(self, kind: str = "table") -> dict[str, Any]:
        """The ``episodes.jsonl`` record: ``task_id``, ``sample``, ``kind``, ``episode_id``, ``answer``,
        ``scores``, ``reward``, ``metrics``, ``error`` (None, or why the episode has no usable answer),
        ``seconds`` and ``steps``."""
        m = self.metrics
        task_id, sample = self.job.key if isinstance(self.job.key, tuple) else (self.task_id, 0)
        metrics: dict[str, Any] = {name: m.get(env_name, 0) for name, env_name in COUNT_FIELDS.items()}
        metrics.update({
            "tool_calls": dict(m.get("tool_calls") or {}),
            "calls_by_role": dict(m.get("calls_by_role") or {}),
            "truncated": bool(m.get("truncated", False)),
            "answer_parsed": bool(m.get("answer_parsed", False)),
            "failure": m.get("failure"),
            "policy_errors": dict(m.get("policy_errors") or {}),
        })
        generated = self.generated_tokens()
        if generated is not None:
            metrics["generated_tokens"] = generated
        error = None
        if m.get("scoring_error"):
            error = f"scoring failed: {m['scoring_error']}"
        elif metrics["truncated"]:
            error = f"episode truncated ({m.get('failure') or 'lead turn limit'})"
        elif metrics["policy_errors"]:
            error = "policy errors: " + ", ".join(f"{k} x{v}" for k, v in metrics["policy_errors"].items())
        return {
            "task_id": task_id,
            "sample": sample,
            "kind": kind,
            "episode_id": self.job.episode_id,
            "answer": m.get("answer", ""),
            "scores": self.scores(),
            "reward": float(self.reward),
            "metrics": metrics,
            "error": error,
            "seconds": round(float(self.seconds), 4),
            "steps": int(self.steps),
        }

    def transcript(self) -> dict[str, Any]:
        """Every agent's messages, raw generated texts and token trajectory (prompt and generated ids per
        turn, loss mask), with the spawning parent of each agent: what ``wideseek show`` prints."""
        task_id, sample = self.job.key if isinstance(self.job.key, tuple) else (self.task_id, 0)
        agents: dict[str, Any] = {}
        names = list(self.messages or {}) or list(self.trajectories)
        for agent in names:
            entry: dict[str, Any] = {
                "parent": (self.parents or {}).get(agent),
                "messages": (self.messages or {}).get(agent, []),
                "texts": (self.texts or {}).get(agent, []),
                "tools": (self.tools or {}).get(agent, []),
            }
            traj = self.trajectories.get(agent)
            if traj is not None:
                entry["failed"] = bool(traj.failed)
                entry["error"] = traj.error
                entry["turns"] = [
                    {"prompt_ids": t.prompt_ids, "response_ids": t.response_ids, "suffix_ids": t.suffix_ids,
                     "mask": t.mask, "finish_reason": t.finish_reason, "failed": bool(t.failed)}
                    for t in traj.turns
                ]
            agents[agent] = entry
        return {"task_id": task_id, "sample": sample, "episode_id": self.job.episode_id,
                "reward": float(self.reward), "answer": self.metrics.get("answer", ""), "agents": agents}
