"""Internal to :mod:`wideseek_env.env`: the state the env keeps per agent between steps, and the
helpers that make agent text safe to store.

- :class:`AgentState`: one spawned agent (its context, token count, turn, status, the result slots of
  its current tool-call message, its open ``call_subagent`` groups, its :class:`AgentRecord`);
- :class:`Slot`: one result position of an agent's current tool-call message;
- :class:`Group`: the subagents started by one ``call_subagent`` call;
- :class:`Outcome`: what an acting agent's action amounts to, decided in ``step_collect`` and applied
  in ``step_apply``;
- :func:`clean_text`, :func:`coerce_action`, :func:`short_text`: UTF-8 cleaning, any action to text,
  transcript shortening.

Nothing here is public API: the env's contract is its module docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wideseek_env.episode_record import AgentRecord
from wideseek_env.tools.base import Tool
from wideseek_env.tools.subagent import SubagentRequest


@dataclass
class Slot:
    """One result position of an agent's current tool-call message."""

    call_id: str
    name: str
    text: str | None = None  # None until known (tool result or subagent reports)


@dataclass
class Group:
    """The subagents started by one ``call_subagent`` call."""

    caller: str
    slot: int
    children: list[str]
    prompts: list[str]
    notes: list[str]
    results: dict[str, str] = field(default_factory=dict)


@dataclass
class AgentState:
    """One spawned agent of the current episode."""

    id: str
    role: str
    parent: str | None
    depth: int
    max_turns: int
    tools: dict[str, Tool]
    schemas: list[dict[str, Any]]
    can_delegate: bool
    subtask: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    new: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0
    turn: int = 0
    status: str = "acting"  # acting | waiting | done | failed
    slots: list[Slot] = field(default_factory=list)
    open_groups: int = 0
    group: Group | None = None  # the call_subagent group this subagent belongs to
    record: AgentRecord | None = None
    calls_seen: dict[str, int] = field(default_factory=dict)  # tool-call message signature -> first turn
    repeat_of: int | None = None  # the earlier turn the current message repeats (EnvConfig.repeat_note)


@dataclass
class Outcome:
    """What an acting agent's action amounts to (decided in collect, applied in apply)."""

    agent: str
    kind: str  # "final" | "tools" | "fail"
    answer: str = ""
    failure: str | None = None
    requests: list[tuple[int, int]] = field(default_factory=list)  # (slot index, request index)
    spawns: list[tuple[int, SubagentRequest | str]] = field(default_factory=list)  # (slot, request)


# ----------------------------------------------------------------------------------------------
# Agent text


def clean_text(text: str) -> str:
    """Replace lone surrogates (which JSON-decoded agent strings may hold) so every text is UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def coerce_action(action: Any) -> str:
    """Any action as text: None -> ``""``, bytes decoded as UTF-8, a 0-d array's item, else ``str``
    (``""`` when even ``str`` raises)."""
    if action is None:
        return ""
    if isinstance(action, str):
        return action
    if isinstance(action, (bytes, bytearray)):
        return bytes(action).decode("utf-8", "replace")
    if isinstance(action, np.ndarray) and action.shape == ():
        return coerce_action(action.item())
    try:
        return str(action)
    except Exception:  # noqa: BLE001 - a hostile __str__
        return ""


def short_text(text: str, limit: int = 600) -> str:
    """``text`` stripped and cut to ``limit`` characters for the transcript, saying how much was cut."""
    text = text.strip()
    if len(text) > limit:
        return text[:limit] + f" ... [{len(text) - limit} more chars]"
    return text
