"""One single-agent episode driven by structured tool calls: the piece every trainer adapter shares.

Trainer frameworks (TRL's ``environment_factory``, verifiers toolsets, OpenEnv servers) hand an
environment *structured* tool calls (a name and a JSON arguments object, already parsed from the
model's text by the framework) and ask for each tool's result text, then for a reward of the final
answer. :class:`ToolEpisode` maps that onto :class:`~wideseek_env.wrappers.single_agent.SingleSeekEnv`
(so :class:`~wideseek_env.env.WideSeekEnv` runs the episode: the paper's limits, tool batching,
agent-facing error texts, the turn hint, scoring and the reward function are all the env's):

- :meth:`ToolEpisode.reset` starts an episode on a task and returns its first messages (system prompt,
  the task as the user message, the tool schemas);
- :meth:`ToolEpisode.call_tools` renders the calls as one Hermes assistant message
  (``<tool_call>{...}</tool_call>`` blocks), steps the env with it (one turn) and returns the env's tool
  messages, one text per call (plus the env's own error messages for bad calls);
- :meth:`ToolEpisode.answer` steps the env with the final answer and returns the episode reward
  (item F1 by default). An answer the env reads as a tool call (a malformed call that the framework's
  parser left in the text) does not end an episode by itself; it is then ended with an empty answer
  (reward as for no answer), so that :meth:`answer` always finishes the episode.

Once the episode is over (an answer, or the turn or context limit), :meth:`call_tools` answers with one
``Error: ...`` text saying so instead of raising, and :meth:`answer` returns the reward already given.
The same actions through ``WideSeekEnv`` give the same messages and the same reward.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from wideseek_env.config import EnvConfig
from wideseek_env.tools.base import error_text
from wideseek_env.tools.parsing import render_tool_calls
from wideseek_env.wrappers.single_agent import SingleSeekEnv

__all__ = ["EpisodeStart", "ToolEpisode", "episode_over_text"]


@dataclass(frozen=True)
class EpisodeStart:
    """What an episode starts with: the task's id, the system prompt, the first user message (the task
    and, by default, the turn hint) and the OpenAI tool schemas of the agent."""

    task_id: str
    system: str
    user: str
    tools: list[dict[str, Any]]


def episode_over_text(metrics: Mapping[str, Any] | None) -> str:
    """The agent-facing text for a call made after the episode ended."""
    why = (metrics or {}).get("failure")
    reason = {"turns": "the turn limit was reached", "context": "the context budget was used up"}.get(
        why, "the final answer was given"
    )
    return error_text(f"the episode is over ({reason}); no more tool calls are run")


def _render_call(name: str, arguments: Any) -> str:
    """One Hermes call block; arguments that are not an object are written as given, so that the env's
    parser reports them to the agent exactly as it would for a model that wrote them."""
    if isinstance(arguments, Mapping):
        return render_tool_calls([(name, arguments)])
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + "\n</tool_call>"


class ToolEpisode:
    """A single-agent WideSeek episode stepped with structured tool calls (see the module docstring).

    Args:
        corpus: a built corpus directory or a ``Retriever`` (shared: it is not closed by :meth:`close`
            unless it was opened here from a path).
        tasks: a task file, ``TaskSet`` or list of ``Task``.
        config: an :class:`EnvConfig`; default ``EnvConfig.single_agent()`` (the paper's SingleSeek
            limits: 50 turns, 32k-token context, search top-3, 5 queries / URLs per call). The mode is
            forced to ``"single"``.
        **env_kwargs: passed to :class:`WideSeekEnv` (``reward_fn``, ``judge``, ``token_counter``, ...).
    """

    def __init__(self, corpus: Any, tasks: Any, config: EnvConfig | None = None, **env_kwargs: Any) -> None:
        self.env = SingleSeekEnv(corpus, tasks, config, **env_kwargs)
        self._done = True
        self._reward = 0.0
        self._metrics: dict[str, Any] | None = None

    # ------------------------------------------------------------------ state

    @property
    def done(self) -> bool:
        """Whether the current episode has ended (or none was started)."""
        return self._done

    @property
    def reward(self) -> float:
        """The episode reward once :attr:`done` (0 before)."""
        return self._reward

    @property
    def metrics(self) -> dict[str, Any] | None:
        """The env's end-of-episode metrics (item/row precision, recall and F1, success, turns, ...)."""
        return self._metrics

    @property
    def task(self) -> Any:
        return self.env.task

    # ------------------------------------------------------------------ episode

    def reset(self, task_id: str | None = None, seed: int | None = None) -> EpisodeStart:
        """Start an episode on ``task_id`` (or one drawn with ``seed``); unknown ids raise
        ``UnknownTaskError``."""
        options = {"task_id": task_id} if task_id is not None else None
        _, info = self.env.reset(seed=seed, options=options)
        messages = info["messages"]
        self._done = False
        self._reward = 0.0
        self._metrics = None
        return EpisodeStart(
            task_id=self.env.task.id,
            system=next(m["content"] for m in messages if m["role"] == "system"),
            user=next(m["content"] for m in messages if m["role"] == "user"),
            tools=info["tools"],
        )

    def call_tools(self, calls: Sequence[tuple[str, Any]]) -> list[str]:
        """Run ``calls`` (``(name, arguments)`` pairs) as one assistant turn; return the tool messages'
        texts in order (one per call, then any error messages of the env). After the episode ended, or
        when this turn ends it (a tool call on the last turn, context exhausted), one error text."""
        if self._done:
            return [episode_over_text(self._metrics)]
        if not calls:
            return [error_text("no tool call was given")]
        action = "\n".join(_render_call(name, args) for name, args in calls)
        _, reward, term, trunc, info = self.env.step(action)
        if term or trunc:
            self._finish(reward, info)
            return [episode_over_text(self._metrics)]
        return [m.get("content") or "" for m in info.get("messages", []) if m.get("role") == "tool"]

    def answer(self, text: str) -> float:
        """End the episode with ``text`` as the final answer; return the episode reward."""
        if self._done:
            return self._reward
        _, reward, term, trunc, info = self.env.step(text or "")
        if not (term or trunc):
            _, reward, term, trunc, info = self.env.step("")
        self._finish(reward, info)
        return self._reward

    def _finish(self, reward: float, info: Mapping[str, Any]) -> None:
        self._done = True
        self._reward = float(reward)
        self._metrics = dict(info.get("metrics") or {})

    def close(self) -> None:
        self.env.close()
