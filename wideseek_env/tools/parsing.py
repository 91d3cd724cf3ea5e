"""Tool-call parsing and rendering (Hermes format by default; the parser is pluggable).

An agent's action is its assistant text. :class:`HermesParser` finds the tool calls in it::

    <think> ... reasoning ... </think>
    Let me look this up.
    <tool_call>
    {"name": "search", "arguments": {"queries": [{"query": "Jim Ryun", "count": 3}]}}
    </tool_call>

Rules (all documented choices):

- **Reasoning is not acted on.** Everything up to the *last* ``</think>`` is reasoning; tool calls are
  looked for only in the text after it (the same text that is the final answer, see
  :func:`final_answer_text`). Qwen3 chat templates open ``<think>`` inside the prompt, so a generation
  often holds ``</think>`` without ``<think>``; a call drafted while thinking is an idea, not an
  action. With no ``</think>`` the whole text is the answer region.
- **Several calls per message**, in order, up to ``max_calls``; blocks past the limit are not run and
  are counted in ``ParsedMessage.dropped_calls`` (the env tells the agent). With ``first_only=True``
  (RLinf) only the first block is looked at and later ones are ignored silently.
- **Malformed blocks are reported, not raised**: invalid JSON, a JSON value that is not an object, a
  missing or empty ``name``, ``arguments`` that is not an object (a JSON *string* holding an object
  is accepted and decoded, as some templates emit it; ``parameters`` is accepted as an alias of
  ``arguments``; a missing ``arguments`` means ``{}``), an unclosed ``<tool_call>`` and a stray
  ``</tool_call>``. Each gives one readable error string (at most ``max_errors`` of them, then a
  count). ``parse`` never raises, whatever the input.
- **Linear time**: tags are found with ``str.find`` from monotonically increasing positions, and
  each block body is decoded once, so huge or adversarial texts (a million tags, deeply nested JSON)
  cost time proportional to their length.

Text with no tool-call syntax at all (no block, no stray tag) is a final answer
(``ParsedMessage.is_final``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
TOOL_RESPONSE_OPEN = "<tool_response>"
TOOL_RESPONSE_CLOSE = "</tool_response>"

_EXCERPT_CHARS = 160


@dataclass(frozen=True)
class ToolCall:
    """One well-formed tool call: ``arguments`` is the decoded JSON object."""

    id: str
    name: str
    arguments: dict[str, Any]

    def to_openai(self) -> dict[str, Any]:
        """OpenAI chat format: ``{"id", "type": "function", "function": {"name", "arguments": str}}``."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": _dumps(self.arguments)},
        }


@dataclass(frozen=True)
class ParsedMessage:
    """An assistant message split into its parts.

    ``content``: the answer region (after the last ``</think>``) with tool-call blocks removed,
    stripped. ``reasoning``: the text before the last ``</think>`` (``<think>`` tags removed),
    stripped. ``tool_calls``: well-formed calls in order. ``errors``: one agent-readable text per
    malformed block. ``dropped_calls``: blocks past the per-message limit (not parsed, not run).
    """

    content: str
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    errors: tuple[str, ...] = ()
    dropped_calls: int = 0

    @property
    def has_tool_syntax(self) -> bool:
        return bool(self.tool_calls or self.errors or self.dropped_calls)

    @property
    def is_final(self) -> bool:
        """True when the message holds no tool-call syntax: it is the agent's final answer."""
        return not self.has_tool_syntax


@runtime_checkable
class ToolCallParser(Protocol):
    """Turns an assistant text into a :class:`ParsedMessage`; must never raise."""

    def parse(self, text: str, *, id_prefix: str = "call_") -> ParsedMessage: ...


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _excerpt(text: str) -> str:
    text = text.strip()
    if len(text) > _EXCERPT_CHARS:
        text = text[:_EXCERPT_CHARS] + "..."
    return json.dumps(text, ensure_ascii=False)


def split_reasoning(text: str) -> tuple[str, str]:
    """``(reasoning, answer_region)``: split at the last ``</think>`` (reasoning is '' without one)."""
    cut = text.rfind(THINK_CLOSE)
    if cut < 0:
        return "", text
    reasoning = text[:cut]
    start = reasoning.find(THINK_OPEN)
    if start >= 0:
        reasoning = reasoning[:start] + reasoning[start + len(THINK_OPEN):]
    return reasoning.strip(), text[cut + len(THINK_CLOSE):]


def final_answer_text(text: str) -> str:
    """The agent's answer: the text after the last ``</think>`` (the whole text without one), stripped.

    This is what a subagent reports to its caller and what the lead's answer is scored on, as in
    WideSeek-R1.
    """
    if not isinstance(text, str):
        return ""
    cut = text.rfind(THINK_CLOSE)
    return (text if cut < 0 else text[cut + len(THINK_CLOSE):]).strip()


_USAGE = '{"name": <tool name>, "arguments": {...}}'


def decode_call_body(body: str) -> tuple[str, dict[str, Any]] | str:
    """Decode one block body into ``(name, arguments)``, or return an error text (never raises)."""
    stripped = body.strip()
    if not stripped:
        return f"the block is empty; write {_USAGE} between the tags"
    try:
        obj = json.loads(stripped)
    except RecursionError:
        return "the JSON is nested too deeply"
    except ValueError as exc:  # JSONDecodeError
        return f"invalid JSON ({exc}) in {_excerpt(stripped)}; write {_USAGE}"
    if not isinstance(obj, dict):
        return f"expected a JSON object {_USAGE}, got a JSON {type(obj).__name__}"
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        return f'the call has no "name" (a non-empty string); write {_USAGE}'
    name = name.strip()
    if "arguments" in obj:
        args = obj["arguments"]
    elif "parameters" in obj:
        args = obj["parameters"]
    else:
        args = {}
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except RecursionError:
            return f'the "arguments" of {name!r} are nested too deeply'
        except ValueError as exc:
            return f'the "arguments" string of {name!r} is not valid JSON ({exc})'
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return f'the "arguments" of {name!r} must be a JSON object, got a JSON {type(args).__name__}'
    return name, args


class HermesParser:
    """Parses Hermes ``<tool_call>{json}</tool_call>`` blocks (see the module docstring for the rules).

    ``max_calls``: blocks parsed per message (None: no limit). ``first_only``: RLinf behaviour, only
    the first block is looked at. ``max_errors``: individual error texts kept, then a count.
    ``accept_unclosed_final``: accept a last block missing ``</tool_call>`` when its body decodes
    (for generations stopped on the ``</tool_call>`` stop string); off by default.
    """

    def __init__(
        self,
        max_calls: int | None = 5,
        *,
        first_only: bool = False,
        max_errors: int = 5,
        accept_unclosed_final: bool = False,
    ) -> None:
        if max_calls is not None and max_calls < 1:
            raise ValueError(f"max_calls must be >= 1 or None, got {max_calls}")
        self.max_calls = 1 if first_only else max_calls
        self.first_only = first_only
        self.max_errors = max(0, int(max_errors))
        self.accept_unclosed_final = accept_unclosed_final

    def __repr__(self) -> str:
        return (
            f"HermesParser(max_calls={self.max_calls}, first_only={self.first_only}, "
            f"max_errors={self.max_errors})"
        )

    def parse(self, text: str, *, id_prefix: str = "call_") -> ParsedMessage:
        try:
            return self._parse(text, id_prefix)
        except Exception as exc:  # pragma: no cover - defensive: parse must never raise
            return ParsedMessage(content="", errors=(f"the message could not be parsed ({exc!r})",))

    def _parse(self, text: Any, id_prefix: str) -> ParsedMessage:
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        reasoning, region = split_reasoning(text)
        calls: list[ToolCall] = []
        errors: list[str] = []
        extra_errors = 0
        dropped = 0
        pieces: list[str] = []  # answer text outside blocks
        blocks_seen = 0
        n = len(region)
        lo, lc = len(TOOL_CALL_OPEN), len(TOOL_CALL_CLOSE)

        def add_error(msg: str) -> None:
            nonlocal extra_errors
            if len(errors) < self.max_errors:
                errors.append(msg)
            else:
                extra_errors += 1

        pos = 0  # end of the last consumed block
        next_open = region.find(TOOL_CALL_OPEN)
        next_close = region.find(TOOL_CALL_CLOSE)
        while next_open != -1 or next_close != -1:
            if self.first_only and blocks_seen >= 1:
                # RLinf: only the first block counts; the rest of the text is left as it is.
                break
            if next_close != -1 and (next_open == -1 or next_close < next_open):
                # a closing tag with no opening tag before it
                pieces.append(region[pos:next_close])
                pos = next_close + lc
                if not self.first_only:  # RLinf looks for the first complete block only
                    add_error(
                        f"found {TOOL_CALL_CLOSE} without a matching {TOOL_CALL_OPEN} before it; "
                        f"wrap each call as {TOOL_CALL_OPEN}{_USAGE}{TOOL_CALL_CLOSE}"
                    )
                next_close = region.find(TOOL_CALL_CLOSE, pos)
                continue
            # next_open != -1 here, and next_close (if any) lies after it
            pieces.append(region[pos:next_open])
            body_start = next_open + lo
            following_open = region.find(TOOL_CALL_OPEN, body_start)
            closed = next_close != -1 and (following_open == -1 or next_close < following_open)
            if closed:
                body = region[body_start:next_close]
                end = next_close + lc
                next_close = region.find(TOOL_CALL_CLOSE, end)
            else:
                end = following_open if following_open != -1 else n
                body = region[body_start:end]
            blocks_seen += 1
            pos = end
            next_open = following_open
            if self.max_calls is not None and blocks_seen > self.max_calls:
                dropped += 1
                continue
            k = blocks_seen
            if not closed:
                last = following_open == -1
                if self.accept_unclosed_final and last:
                    decoded = decode_call_body(body)
                    if not isinstance(decoded, str):
                        calls.append(ToolCall(f"{id_prefix}{len(calls)}", decoded[0], decoded[1]))
                        continue
                add_error(
                    f"tool call {k}: {TOOL_CALL_OPEN} is never closed; end each call with "
                    f"{TOOL_CALL_CLOSE} (block starts {_excerpt(body)})"
                )
                continue
            decoded = decode_call_body(body)
            if isinstance(decoded, str):
                add_error(f"tool call {k}: {decoded}")
            else:
                calls.append(ToolCall(f"{id_prefix}{len(calls)}", decoded[0], decoded[1]))
        pieces.append(region[pos:])
        if extra_errors:
            errors.append(f"... and {extra_errors} more malformed tool call(s)")
        if self.first_only:
            dropped = 0
        return ParsedMessage(
            content="".join(pieces).strip(),
            reasoning=reasoning,
            tool_calls=tuple(calls),
            errors=tuple(errors),
            dropped_calls=dropped,
        )


# --------------------------------------------------------------------------------------------------
# Rendering


def render_tool_call(name: str, arguments: Mapping[str, Any] | None = None) -> str:
    """One Hermes block: ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``."""
    payload = {"name": name, "arguments": dict(arguments or {})}
    return f"{TOOL_CALL_OPEN}\n{_dumps(payload)}\n{TOOL_CALL_CLOSE}"


def render_tool_calls(calls: Iterable[ToolCall | tuple[str, Mapping[str, Any]]]) -> str:
    """Several blocks, one per line, in order (``ToolCall`` objects or ``(name, arguments)`` pairs)."""
    out = []
    for call in calls:
        if isinstance(call, ToolCall):
            out.append(render_tool_call(call.name, call.arguments))
        else:
            out.append(render_tool_call(call[0], call[1]))
    return "\n".join(out)


def render_assistant(content: str = "", calls: Sequence[Any] = (), reasoning: str | None = None) -> str:
    """An assistant text as a Hermes model writes it: optional ``<think>`` block, text, then calls."""
    parts = []
    if reasoning is not None:
        parts.append(f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}")
    if content:
        parts.append(content)
    if calls:
        parts.append(render_tool_calls(calls))
    return "\n\n".join(parts)


def render_tool_result(content: str) -> str:
    """A tool result as Qwen/Hermes templates show it to the model."""
    return f"{TOOL_RESPONSE_OPEN}\n{content}\n{TOOL_RESPONSE_CLOSE}"


def render_tools_block(schemas: Sequence[Mapping[str, Any]]) -> str:
    """The Hermes tool preamble (as in Qwen's chat template) listing the OpenAI-format schemas."""
    lines = "\n".join(_dumps(s) for s in schemas)
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{lines}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        f"{TOOL_CALL_OPEN}{TOOL_CALL_CLOSE} XML tags:\n"
        f'{TOOL_CALL_OPEN}\n{{"name": <function-name>, "arguments": <args-json-object>}}\n{TOOL_CALL_CLOSE}'
    )


def render_messages(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None
) -> str:
    """Plain-text rendering of chat messages (the env's text observations).

    system: its content, followed by the tools preamble when ``tools`` is given; user: its content;
    tool: a ``<tool_response>`` block; assistant: its content and its calls as Hermes blocks.
    Messages are separated by a blank line. No role markers or special tokens: policies that need an
    exact chat template use the structured messages in ``infos`` instead.
    """
    out: list[str] = []
    for m in messages:
        role = m.get("role")
        content = m.get("content") or ""
        if role == "system":
            out.append(f"{content}\n\n{render_tools_block(tools)}" if tools else content)
        elif role == "tool":
            out.append(render_tool_result(content))
        elif role == "assistant":
            calls = [
                (c["function"]["name"], _loads_or_raw(c["function"]["arguments"]))
                for c in m.get("tool_calls") or ()
            ]
            out.append(render_assistant(content, calls))
        else:
            out.append(content)
    return "\n\n".join(out)


def _loads_or_raw(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return {"_raw": arguments}
    return arguments
