"""The machinery shared by the rule-driven policies: one Python generator per agent of an episode.

Contract: a :class:`GeneratorAgent` is one agent of one episode. Its :meth:`~GeneratorAgent.run`
is a generator that yields assistant texts (Hermes tool calls or a final answer) and receives, at
each resume, the agent's new messages (the tool results of its last call, with the env's turn
hint); what it returns is its last text. :meth:`~GeneratorAgent.step` drives it one env step,
keeping the turn counter and an estimate of the context used (the env's default token estimate);
an exception inside ``run`` goes to :meth:`~GeneratorAgent.on_error`, which raises by default.

A :class:`GeneratorPolicy` is a :class:`~agents.policy.Policy` that keeps one agent per
``(episode_id, agent_id)``, built by :meth:`~GeneratorPolicy.new_agent` on the agent's first
request, and forgets an episode's agents at ``reset_episode`` / ``end_episode``. The scripted
baseline (:mod:`agents.baselines.scripted`) and the privileged demonstrator
(:mod:`agents.baselines.teacher`) are both built on these two classes.
"""

from __future__ import annotations

import json
import re
from typing import Any, Generator, Mapping, Sequence

from agents.baselines.env_messages import _SUBTASK_MARK, _TURN_HINT
from agents.policy import AgentRequest, AgentResponse, Policy
from wideseek_env.tools.parsing import render_tool_calls

Calls = list[tuple[str, dict[str, Any]]]
AgentGen = Generator[str, list, str]

_PER_CALL = re.compile(r"[Aa]t most (\d+)")


def approx_tokens(text: str) -> int:
    """The env's default token estimate (UTF-8 bytes / 4)."""
    if not text:
        return 0
    n = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
    return (n + 3) // 4


class GeneratorAgent:
    """One agent of one episode: ``role`` (lead, subagent or agent), its turn budget ``max_turns``
    (updated from the env's turn hints), its first ``messages`` and its ``tools`` (OpenAI schemas).

    After construction: ``user`` is the agent's first user message without the turn hint;
    ``per_call_limit`` the most subagents one ``call_subagent`` call may start (read from the tool's
    description, 10 when it states none); ``turn`` the number of the next answer; ``tokens`` the
    context used so far (tool schemas and messages)."""

    def __init__(self, role: str, max_turns: int, messages: Sequence[Mapping[str, Any]],
                 tools: Sequence[Mapping[str, Any]]) -> None:
        self.role = role
        self.turn, self.max_turns = 1, max_turns
        self.tools = list(tools)
        self.tool_names = {t.get("function", {}).get("name") for t in self.tools if isinstance(t, Mapping)}
        self.tokens = approx_tokens(json.dumps(self.tools, ensure_ascii=False)) if self.tools else 0
        self.per_call_limit = _per_call_limit(self.tools)
        user = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
        self.user = _TURN_HINT.sub("", user).strip()
        self.done = False
        self._gen: AgentGen | None = None
        self._see(messages)

    def split_subtask(self) -> tuple[str, str | None]:
        """``(query, subtask)`` of a subagent's first message (the env puts the subtask after
        ``_SUBTASK_MARK``); ``(user, None)`` for an agent that has no subtask."""
        if _SUBTASK_MARK not in self.user:
            return self.user, None
        query, subtask = self.user.rsplit(_SUBTASK_MARK, 1)
        return query.strip(), subtask.strip()

    def _see(self, messages: Sequence[Mapping[str, Any]]) -> None:
        for m in messages:
            content = m.get("content") or ""
            self.tokens += approx_tokens(content) + 4
            hint = _TURN_HINT.search(content)
            if hint:
                self.turn, self.max_turns = int(hint.group(1)), int(hint.group(2))

    def turns_left(self) -> int:
        """Turns after the next one (0: the next answer must be final)."""
        return self.max_turns - self.turn

    def step(self, new_messages: list[dict]) -> str:
        """The agent's next assistant text, given its new messages since the last step ("" once done)."""
        if self.done:
            return ""
        try:
            if self._gen is None:
                self._gen = self.run()
                text = next(self._gen)
            else:
                self._see(new_messages)
                text = self._gen.send(new_messages)
        except StopIteration as stop:
            text = stop.value if isinstance(stop.value, str) else ""
            self.done = True
        except Exception as exc:  # noqa: BLE001 - the subclass decides (the scripted baseline never crashes)
            text = self.on_error(exc)
            self.done = True
        self.turn += 1
        self.tokens += approx_tokens(text) + 4
        return text

    def call(self, calls: Calls) -> Generator[str, list, list[str]]:
        """Make tool calls (one assistant message); returns the tool result texts, in order."""
        messages = yield render_tool_calls(calls)
        return [_TURN_HINT.sub("", m.get("content") or "").rstrip() for m in messages if m.get("role") == "tool"]

    def run(self) -> AgentGen:
        """The agent's plan: yields assistant texts, returns the last one."""
        raise NotImplementedError

    def on_error(self, exc: Exception) -> str:
        """The final text after ``run`` raised ``exc`` (default: re-raise)."""
        raise exc


class GeneratorPolicy(Policy):
    """A :class:`~agents.policy.Policy` whose agents are :class:`GeneratorAgent` objects."""

    def __init__(self) -> None:
        self._episodes: dict[str, dict[str, GeneratorAgent]] = {}

    def new_agent(self, role: str, req: AgentRequest, messages: list[dict]) -> GeneratorAgent:
        """The agent for the first request ``req`` of an agent (``messages``: a copy of its messages)."""
        raise NotImplementedError

    @staticmethod
    def role_of(req: AgentRequest) -> str:
        """The request's role, or, for callers that do not say, the one its tools and messages imply."""
        role = getattr(req, "role", None)
        if role in ("lead", "subagent", "agent"):
            return role
        names = {t.get("function", {}).get("name") for t in (req.tools or []) if isinstance(t, Mapping)}
        if "call_subagent" in names and "search" not in names:
            return "lead"
        text = " ".join(str(m.get("content") or "") for m in req.new_messages)
        return "subagent" if _SUBTASK_MARK in text else "agent"

    def act_one(self, req: AgentRequest) -> str:
        agents = self._episodes.setdefault(req.episode_id, {})
        messages = [dict(m) for m in (req.new_messages or [])]
        agent = agents.get(req.agent_id)
        if agent is None:
            agent = agents[req.agent_id] = self.new_agent(self.role_of(req), req, messages)
            return agent.step([])
        return agent.step(messages)

    def act(self, requests: Sequence[AgentRequest]) -> list[AgentResponse]:
        return [AgentResponse(text=self.act_one(r)) for r in requests]

    def reset_episode(self, episode_id: str) -> None:
        self._episodes.pop(episode_id, None)

    def end_episode(self, episode_id: str) -> dict:
        self._episodes.pop(episode_id, None)
        return {}


def _per_call_limit(tools: Sequence[Mapping[str, Any]]) -> int:
    for t in tools:
        fn = t.get("function", {}) if isinstance(t, Mapping) else {}
        if fn.get("name") in ("call_subagent", "create_sub_agents"):
            m = _PER_CALL.search(fn.get("description", ""))
            if m:
                return int(m.group(1))
    return 10
