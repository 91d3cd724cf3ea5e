"""What an episode of :class:`~wideseek_env.env.WideSeekEnv` leaves behind: the per-agent and
per-episode records, the default shared reward and the final metrics dict.

- :class:`AgentRecord`: what one agent did (turns, tool calls by name, invalid calls, failure, report,
  longest turn and context in tokens).
- :class:`EpisodeRecord`: everything a reward function may look at besides the task and the answer
  (the agents' records, the config, the :class:`~wideseek_env.evaluation.TableScore` of the answer).
- :func:`default_reward`: item F1 of the answer, plus RLinf's shaping terms with
  ``EnvConfig.reward_shaping``.
- :func:`episode_metrics`: the ``infos[a]["metrics"]`` dict of the last step (``env.last_metrics``).

The agent ids and role names of the env are defined here too, since the records and the metrics
read them. ``wideseek_env.env`` re-exports every public name of this module that it exported before
the split (import them from either).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from wideseek_env.config import EnvConfig

__all__ = [
    "AgentRecord",
    "EpisodeRecord",
    "RewardFn",
    "answer_parsed",
    "default_reward",
    "episode_metrics",
]

#: Agent ids of the root agent: the lead (multi-agent mode) or the single agent.
LEAD = "lead"
SINGLE = "agent"
#: Role names, as ``prompts.system_prompt`` and ``EnvConfig.max_turns`` take them.
ROLE_LEAD, ROLE_SUB, ROLE_SINGLE = "lead", "subagent", "agent"


@dataclass
class AgentRecord:
    """What one agent did in an episode (part of :class:`EpisodeRecord`)."""

    id: str
    role: str
    parent: str | None
    depth: int
    subtask: str | None
    turns: int = 0
    tool_calls: Counter = field(default_factory=Counter)
    invalid_calls: int = 0
    failed: bool = False
    failure: str | None = None  # "turns" | "context"
    report: str | None = None
    max_turn_tokens: int = 0
    context_tokens: int = 0


@dataclass
class EpisodeRecord:
    """Everything a reward function may look at besides the task and the answer."""

    task_id: str
    answer: str
    truncated: bool
    agents: dict[str, AgentRecord]
    config: EnvConfig
    score: Any = None  # evaluation.TableScore of the answer (None if scoring failed)
    scoring_error: str | None = None

    @property
    def subagents(self) -> list[AgentRecord]:
        return [a for a in self.agents.values() if a.role == ROLE_SUB]

    @property
    def longest_turn_tokens(self) -> int:
        return max((a.max_turn_tokens for a in self.agents.values()), default=0)

    @property
    def access_used(self) -> bool:
        """Whether any worker (a subagent, or the single agent) called ``access``."""
        return any(a.tool_calls.get("access", 0) > 0 for a in self.agents.values() if a.role != ROLE_LEAD)


RewardFn = Callable[[Any, str, EpisodeRecord], float]


def answer_parsed(task: Any, answer: str) -> bool:
    """Whether the answer has the expected form: a markdown table (table tasks) or ``\\boxed{}`` (QA)."""
    if not answer:
        return False
    if getattr(task, "kind", "table") == "qa":
        return "\\boxed{" in answer
    from wideseek_env.table.markdown import extract_table

    try:
        return extract_table(answer) is not None
    except Exception:  # noqa: BLE001
        return False


def default_reward(task: Any, answer: str, record: EpisodeRecord) -> float:
    """Item F1 of the answer; with ``config.reward_shaping``, RLinf's shaped reward:
    ``F1 + 0.1 (format) + 0.05 (a worker used access) - 0.1 * clip((longest turn tokens - 3000) / 2000,
    0, 1)`` when the answer parsed, else 0 (weights from ``EnvConfig``)."""
    f1 = float(getattr(record.score, "item_f1", 0.0) or 0.0) if record.score is not None else 0.0
    cfg = record.config
    if not cfg.reward_shaping:
        return f1
    if record.truncated or not answer_parsed(task, answer):
        return 0.0
    excess = (record.longest_turn_tokens - cfg.length_penalty_start) / cfg.length_penalty_range
    return (
        f1
        + cfg.format_bonus
        + (cfg.access_bonus if record.access_used else 0.0)
        - cfg.length_penalty * min(1.0, max(0.0, excess))
    )


def episode_metrics(task: Any, record: EpisodeRecord, reward: float) -> dict[str, Any]:
    """The final metrics of an episode (the same dict in every agent's last ``infos[a]["metrics"]``):
    item/row precision, recall and F1 and success of ``record.score`` (0 when scoring failed), the
    ``reward``, the answer and whether it parsed, turns, tool calls by name, invalid calls, subagents
    spawned and failed (by cause), the deepest level reached, the longest turn, the root's failure and
    the scoring error."""
    score = record.score
    names = ("item_precision", "item_recall", "item_f1", "row_precision", "row_recall", "row_f1")
    m: dict[str, Any] = {n: float(getattr(score, n, 0.0) or 0.0) for n in names}
    m["success"] = float(getattr(score, "success", 0.0) or 0.0)
    tool_calls: Counter = Counter()
    for r in record.agents.values():
        tool_calls.update(r.tool_calls)
    subs = record.subagents
    root = record.agents.get(LEAD) or record.agents.get(SINGLE)
    m.update(
        reward=reward,
        truncated=record.truncated,
        answer=record.answer,
        answer_parsed=answer_parsed(task, record.answer),
        task_id=record.task_id,
        lead_turns=root.turns if root else 0,
        total_turns=sum(r.turns for r in record.agents.values()),
        tool_calls=dict(sorted(tool_calls.items())),
        invalid_calls=sum(r.invalid_calls for r in record.agents.values()),
        subagents_spawned=len(subs),
        subagent_failures=sum(1 for r in subs if r.failed),
        subagent_failures_turns=sum(1 for r in subs if r.failure == "turns"),
        subagent_failures_context=sum(1 for r in subs if r.failure == "context"),
        max_depth_reached=max((r.depth for r in record.agents.values()), default=0),
        longest_turn_tokens=record.longest_turn_tokens,
        failure=root.failure if root else None,
        scoring_error=record.scoring_error,
    )
    return m
