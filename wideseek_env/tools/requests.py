"""The tool batching hook: :class:`ToolRequest` (one tool call an agent made) and
:func:`execute_tool_requests`, which runs a list of them with one ``call_many`` per tool object.

``WideSeekEnv.step`` = ``step_collect`` (returns the step's requests) -> :func:`execute_tool_requests`
-> ``step_apply``; a rollout runner driving many envs that share tool objects concatenates their
requests and runs them in one call, so that all searches of all envs go to the retriever as one
batch (see the module docstring of :mod:`wideseek_env.env`). ``wideseek_env.env`` re-exports both
names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from wideseek_env.tools.base import Tool, error_text

__all__ = ["ToolRequest", "execute_tool_requests"]


@dataclass(frozen=True)
class ToolRequest:
    """One tool call to run: which agent asked, its call id, the tool and the decoded arguments."""

    agent: str
    call_id: str
    name: str
    arguments: Any
    tool: Tool = field(compare=False, repr=False)


def execute_tool_requests(requests: Sequence[ToolRequest]) -> list[str]:
    """Run requests with one ``call_many`` per distinct tool object (order of first use) and return
    the results aligned with ``requests``. Never raises: a tool that raises or returns the wrong
    number of results gives error texts."""
    results: list[str] = [""] * len(requests)
    groups: dict[int, list[int]] = {}
    for i, req in enumerate(requests):
        groups.setdefault(id(req.tool), []).append(i)
    for idxs in groups.values():
        tool = requests[idxs[0]].tool
        name = getattr(tool, "name", "tool")
        try:
            out = list(tool.call_many([requests[i].arguments for i in idxs]))
            if len(out) != len(idxs):
                raise RuntimeError(f"returned {len(out)} results for {len(idxs)} calls")
        except Exception as exc:  # noqa: BLE001 - a tool must never take the env down
            out = [error_text(f"the {name} tool failed ({type(exc).__name__}: {exc})")] * len(idxs)
        for i, text in zip(idxs, out):
            results[i] = text if isinstance(text, str) else str(text)
    return results
