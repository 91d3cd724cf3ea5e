"""The Tool protocol: a name, a description, a JSON schema of its arguments, and a batched call.

Tools never raise on agent input: ``call_many`` returns one text per call, and a call whose
arguments are wrong returns an error text that tells the agent what to fix (starting with
``"Error:"``). Batching lets the env run every call of one step (across agents and envs) at once.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable


@runtime_checkable
class Tool(Protocol):
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the ``arguments`` object

    def call_many(self, arguments: Sequence[Any]) -> list[str]:
        """Run one call per element of ``arguments`` (each the decoded JSON ``arguments`` value)."""
        ...


def openai_schema(tool: Tool) -> dict[str, Any]:
    """The OpenAI / Hermes tool schema: ``{"type": "function", "function": {...}}``."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def error_text(message: str) -> str:
    """Format an agent-facing error so every tool reports problems the same way."""
    return f"Error: {message}"
