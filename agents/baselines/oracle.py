"""OracleAgent: **FOR TESTS OF THE REWARD PATH ONLY: IT READS THE GOLD TABLE.**

It answers every task at once with the task's gold table and is no baseline: its score says that
the plumbing from answer to reward works, nothing about a policy.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from agents.baselines.answers import render_answer
from agents.baselines.env_messages import _SUBTASK_MARK, _TURN_HINT
from agents.policy import AgentRequest, AgentResponse, Policy


class OracleAgent(Policy):
    """**TESTS OF THE REWARD PATH ONLY — THIS AGENT READS THE GOLD TABLE.**

    Given the task list, it finds the task whose query the lead (or single agent) receives and
    answers at once with the gold table rendered as markdown (no tool calls). Its score checks that
    a perfect answer reaches the reward (item F1 1.0); it measures nothing about a policy and must
    never be reported as a baseline. Subagents (never started by it) would answer with an empty text.
    """

    def __init__(self, tasks: Iterable[Any]):
        self._by_query: dict[str, Any] = {}
        for t in tasks:
            self._by_query[_TURN_HINT.sub("", str(t.query)).strip()] = t

    def _task_for(self, text: str) -> Any | None:
        text = _TURN_HINT.sub("", text).strip()
        if text in self._by_query:
            return self._by_query[text]
        for q, t in self._by_query.items():  # the env may have cut a very long query
            if q.startswith(text) or text.startswith(q):
                return t
        return None

    @staticmethod
    def gold_answer(task: Any) -> str:
        cols = list(task.display_columns or task.required_columns)
        rows = [[row.get(c, "") for c in task.required_columns] for row in task.gold]
        return render_answer(cols, rows)

    def act(self, requests: Sequence[AgentRequest]) -> list[AgentResponse]:
        out = []
        for req in requests:
            user = next((m.get("content") or "" for m in req.new_messages if m.get("role") == "user"), "")
            task = self._task_for(user) if user and _SUBTASK_MARK not in user else None
            out.append(AgentResponse(text=self.gold_answer(task) if task is not None else ""))
        return out
