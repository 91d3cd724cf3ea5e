"""The ``call_subagent`` tool: delegate subtasks to fresh subagents.

Arguments: ``{"sub_agents": [{"prompt": str}, ...]}``. Each prompt starts a brand-new subagent with an
empty context; the caller waits until all subagents of the call have finished and then receives one
tool message with a ``# Subtask k`` / ``# Result`` block per subagent (see ``wideseek_env.prompts``).
RLinf's name for the tool, ``create_sub_agents``, is accepted as an alias.

Unlike ``search`` and ``access`` this tool is **handled by the environment**, not by
``call_many``: spawning agents, scheduling them and collecting their reports is the env's job
(``wideseek_env.env.WideSeekEnv``). :class:`SubagentTool` carries the name, description and JSON
schema (so it can be listed in a role's tools and rendered into prompts), and its ``call_many``
only returns an error saying so. :func:`parse_subagent_arguments` validates the arguments;
:func:`limit_to_budget` cuts a request to the subagents its message may still start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from wideseek_env.tools.base import error_text

SUBAGENT_TOOL_NAME = "call_subagent"
SUBAGENT_TOOL_ALIASES = frozenset({"create_sub_agents"})
SUBAGENT_TOOL_NAMES = frozenset({SUBAGENT_TOOL_NAME}) | SUBAGENT_TOOL_ALIASES


@dataclass(frozen=True)
class SubagentRequest:
    """Validated ``call_subagent`` arguments: the prompts to start, and notes for the caller."""

    prompts: tuple[str, ...]
    notes: tuple[str, ...] = ()


class SubagentTool:
    """Schema of ``call_subagent``; executed by the env (``call_many`` only returns an error)."""

    name = SUBAGENT_TOOL_NAME

    def __init__(self, max_per_call: int = 10) -> None:
        self.max_per_call = max_per_call
        self.description = (
            "Start subagents that work on subtasks in parallel. Each subagent starts with an empty "
            "context, can search and read Wikipedia, and reports back a text answer. Give each one a "
            "self-contained subtask (what to find, for which entities, and in what form to report "
            f"it). At most {max_per_call} subagents per call; you wait until all of them have "
            "finished and then receive their results together."
        )
        self.parameters: dict[str, Any] = {
            "type": "object",
            "properties": {
                "sub_agents": {
                    "type": "array",
                    "description": f"The subtasks, one subagent each (at most {max_per_call}).",
                    "items": {
                        "type": "object",
                        "properties": {
                            "prompt": {
                                "type": "string",
                                "description": "The subtask for this subagent.",
                            }
                        },
                        "required": ["prompt"],
                    },
                }
            },
            "required": ["sub_agents"],
        }

    def call_many(self, arguments: Sequence[Any]) -> list[str]:
        msg = error_text(f"{self.name} is executed by the environment, not by call_many")
        return [msg for _ in arguments]


_USAGE = '{"sub_agents": [{"prompt": "..."}, ...]}'


def parse_subagent_arguments(arguments: Any, max_per_call: int) -> SubagentRequest | str:
    """Validate ``call_subagent`` arguments; return the request or an agent-readable error text.

    Accepted: a list under ``sub_agents`` whose items are ``{"prompt": str}`` objects (a bare string
    item is taken as the prompt). Items without a usable prompt are skipped with a note; prompts past
    ``max_per_call`` are dropped with a note. No usable prompt at all is an error.
    """
    if not isinstance(arguments, dict):
        return error_text(f"call_subagent expects an object {_USAGE}")
    items = arguments.get("sub_agents")
    if items is None:
        return error_text(f'call_subagent needs a "sub_agents" list: {_USAGE}')
    if isinstance(items, (str, dict)):
        items = [items]
    if not isinstance(items, list):
        return error_text(f'"sub_agents" must be a list: {_USAGE}')
    prompts: list[str] = []
    skipped = 0
    for item in items:
        prompt = item.get("prompt") if isinstance(item, dict) else item
        if isinstance(prompt, str) and prompt.strip():
            prompts.append(prompt.strip())
        else:
            skipped += 1
    notes: list[str] = []
    if skipped:
        notes.append(f'{skipped} item(s) of "sub_agents" had no "prompt" text and were skipped.')
    if not prompts:
        return error_text(f'no subagent was started: every item needs a non-empty "prompt": {_USAGE}')
    if len(prompts) > max_per_call:
        notes.append(
            f"At most {max_per_call} subagents run per call: the last "
            f"{len(prompts) - max_per_call} subtask(s) were dropped."
        )
        prompts = prompts[:max_per_call]
    return SubagentRequest(tuple(prompts), tuple(notes))


def limit_to_budget(request: SubagentRequest | str, budget: int, max_per_message: int) -> SubagentRequest | str:
    """``request`` cut to the ``budget`` subagents its message may still start (of
    ``max_per_message``, shared by all ``call_subagent`` calls of one message): an error text when
    none are left, the prompts past the budget dropped with a note. An error text passes unchanged."""
    if not isinstance(request, SubagentRequest):
        return request
    if budget <= 0:
        return error_text(
            f"at most {max_per_message} subagents can be started per message; this call was not run"
        )
    if len(request.prompts) > budget:
        dropped = len(request.prompts) - budget
        return SubagentRequest(
            request.prompts[:budget],
            request.notes
            + (
                f"At most {max_per_message} subagents run per message: "
                f"the last {dropped} subtask(s) of this call were dropped.",
            ),
        )
    return request
