"""OpenEnv: the single-agent episode as an OpenEnv environment server (``wideseek serve-env``) and its client.

OpenEnv (``openenv-core``) specifies an environment as an ``Environment`` subclass with ``reset``,
``step(action)`` and a ``state`` property over pydantic ``Action`` / ``Observation`` / ``State`` types,
served by ``openenv.core.create_fastapi_app`` (HTTP ``/reset``, ``/step``, ``/state``, ``/schema``,
``/health``, and a WebSocket ``/ws`` holding one stateful session per connection) and played by an
``EnvClient`` subclass (async; ``.sync()`` for blocking use). This module provides:

- :class:`WideSeekAction`: one assistant turn, either ``tool_calls`` (a list of ``{"name", "arguments"}``:
  ``search`` with ``{"queries": [{"query", "count"}]}``, ``access`` with ``{"urls": [{"url",
  "info_to_extract"}]}``; several calls are one turn, as in the env) or, with no tool calls, the final
  ``answer`` (a markdown table; missing means the empty answer).
- :class:`WideSeekObservation`: ``messages`` new for the agent (system prompt and task after ``reset``,
  one tool message per call after a step, as the env's ``infos["messages"]``), ``tools`` (the OpenAI tool
  schemas, after ``reset``), ``task_id``, ``turn`` / ``max_turns``, and ``metrics`` at the end; ``done``,
  and ``reward``: 0.0 on every step but the one that ends the episode, which carries the episode reward
  (item F1 of the answer by default), so that clients that add up step rewards get the episode reward.
- :class:`WideSeekState`: ``episode_id``, ``step_count``, ``task_id``, ``done``, ``reward``.
- :class:`WideSeekOpenEnv`: the ``Environment``, a :class:`~.tool_episode.ToolEpisode` (hence
  ``WideSeekEnv``) per session; ``reset(seed=..., episode_id=..., task_id=...)`` pins the task with
  ``task_id`` or draws one with ``seed``.
- :func:`create_app` / :func:`serve_env`: the FastAPI app and the uvicorn server (127.0.0.1 by default);
  :class:`WideSeekEnvClient`: the client.

After the episode ended, a step answers with an ``Error: the episode is over ...`` tool message, reward 0.
Only the single-agent setting is served (a lead/subagent episode needs every subagent's turns from the
same client, which OpenEnv's one-actor step does not describe).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional

from wideseek_env.config import EnvConfig
from wideseek_env.errors import MissingExtraError, WideseekError

try:
    from openenv.core.client_types import StepResult
    from openenv.core.env_client import EnvClient
    from openenv.core.env_server.interfaces import Environment
    from openenv.core.env_server.types import Action, Observation, State
    from pydantic import BaseModel, Field
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingExtraError(
        "the OpenEnv integration needs openenv-core; install it with: pip install 'wideseek-env[openenv]'"
    ) from exc

from wideseek_env.integrations.tool_episode import ToolEpisode

__all__ = [
    "WideSeekAction",
    "WideSeekEnvClient",
    "WideSeekObservation",
    "WideSeekOpenEnv",
    "WideSeekState",
    "WideSeekToolCall",
    "create_app",
    "serve_env",
]


class WideSeekToolCall(BaseModel):
    """One tool call: the tool's name and its arguments object."""

    name: str = Field(description="tool name: search or access")
    arguments: dict[str, Any] = Field(default_factory=dict, description="the tool's arguments object")


class WideSeekAction(Action):
    """One assistant turn: tool calls, or (without any) the final answer."""

    tool_calls: list[WideSeekToolCall] = Field(default_factory=list, description="calls run in this turn")
    answer: Optional[str] = Field(default=None, description="the final answer (used when there are no tool calls)")


class WideSeekObservation(Observation):
    """What is new for the agent; ``reward`` is the episode reward on the step that ends the episode."""

    task_id: str = ""
    messages: list[dict[str, Any]] = Field(default_factory=list)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    turn: int = 0
    max_turns: int = 0
    metrics: dict[str, Any] = Field(default_factory=dict)


class WideSeekState(State):
    """The session's episode: its task, whether it ended, and its reward."""

    task_id: Optional[str] = None
    done: bool = False
    reward: float = 0.0


class WideSeekOpenEnv(Environment[WideSeekAction, WideSeekObservation, WideSeekState]):
    """The single-agent WideSeek episode behind OpenEnv's ``Environment`` interface (module docstring).

    Sessions are independent: each has its own episode; they share the retriever (read-only) and the
    task list given to :func:`create_app`."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, corpus: Any, tasks: Any, config: EnvConfig | None = None, **env_kwargs: Any) -> None:
        super().__init__()
        self._episode = ToolEpisode(corpus, tasks, config, **env_kwargs)
        self._state = WideSeekState()
        self._turn = 0

    @property
    def episode(self) -> ToolEpisode:
        return self._episode

    def reset(self, seed: Optional[int] = None, episode_id: Optional[str] = None,
              task_id: Optional[str] = None, **kwargs: Any) -> WideSeekObservation:
        start = self._episode.reset(task_id=task_id, seed=seed)
        self._state = WideSeekState(episode_id=episode_id, step_count=0, task_id=start.task_id)
        self._turn = 0
        return WideSeekObservation(
            task_id=start.task_id,
            messages=[{"role": "system", "content": start.system}, {"role": "user", "content": start.user}],
            tools=start.tools, turn=1, max_turns=self._max_turns(), reward=0.0, done=False,
        )

    def step(self, action: WideSeekAction, timeout_s: Optional[float] = None, **kwargs: Any) -> WideSeekObservation:
        was_done = self._episode.done
        if action.tool_calls:
            texts = self._episode.call_tools([(c.name, c.arguments) for c in action.tool_calls])
            messages = [{"role": "tool", "content": t} for t in texts]
        else:
            self._episode.answer(action.answer or "")
            messages = []
        if not was_done:
            self._turn += 1
            self._state.step_count += 1
        done = self._episode.done
        reward = self._episode.reward if done and not was_done else 0.0
        self._state.done = done
        self._state.reward = self._episode.reward if done else 0.0
        return WideSeekObservation(
            task_id=self._state.task_id or "", messages=messages, turn=self._turn + (0 if done else 1),
            max_turns=self._max_turns(), metrics=dict(self._episode.metrics or {}) if done else {},
            reward=reward, done=done,
        )

    @property
    def state(self) -> WideSeekState:
        return self._state

    def _max_turns(self) -> int:
        return self._episode.env.config.max_turns("agent")

    def close(self) -> None:
        self._episode.close()


class WideSeekEnvClient(EnvClient[WideSeekAction, WideSeekObservation, WideSeekState]):
    """Client of :func:`serve_env`: ``async with WideSeekEnvClient(base_url=...) as c: await c.reset(task_id=...)``,
    ``await c.step(WideSeekAction(...))``, ``await c.state()``; ``.sync()`` gives the blocking form."""

    def _step_payload(self, action: WideSeekAction) -> dict[str, Any]:
        return action.model_dump(exclude={"metadata"})

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[WideSeekObservation]:
        obs = WideSeekObservation(**payload.get("observation", {}), done=payload.get("done", False),
                                  reward=payload.get("reward"))
        return StepResult(observation=obs, reward=payload.get("reward"), done=payload.get("done", False))

    def _parse_state(self, payload: dict[str, Any]) -> WideSeekState:
        return WideSeekState(**payload)


def create_app(corpus: Any, tasks: Any, config: EnvConfig | None = None, *, max_sessions: int = 4,
               **env_kwargs: Any):
    """The FastAPI app of OpenEnv's server for the WideSeek environment. ``corpus`` (a directory or a
    ``Retriever``) is opened once and shared; ``tasks`` is loaded once; ``max_sessions`` bounds the
    concurrent WebSocket sessions."""
    from openenv.core.env_server.http_server import create_fastapi_app

    if max_sessions < 1:
        raise WideseekError(f"max_sessions must be at least 1, got {max_sessions}")
    if isinstance(corpus, (str, os.PathLike)):
        from wideseek_env.corpus.local import LocalRetriever

        corpus = LocalRetriever(Path(corpus))
    if isinstance(tasks, (str, os.PathLike)):
        from wideseek_env.tasks import load_tasks

        tasks = list(load_tasks(Path(tasks)))
    factory: Callable[[], WideSeekOpenEnv] = lambda: WideSeekOpenEnv(corpus, tasks, config, **env_kwargs)  # noqa: E731
    factory()  # fail now, with the env's own message, on an empty task set or a bad config
    return create_fastapi_app(factory, WideSeekAction, WideSeekObservation, max_concurrent_envs=max_sessions)


def serve_env(corpus: Any, tasks: Any, config: EnvConfig | None = None, *, host: str = "127.0.0.1",
              port: int = 8001, max_sessions: int = 4, log_level: str = "warning") -> None:
    """Run the OpenEnv server with uvicorn until interrupted."""
    import uvicorn

    app = create_app(corpus, tasks, config, max_sessions=max_sessions)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
