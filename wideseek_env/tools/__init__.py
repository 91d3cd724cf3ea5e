"""Agent tools: the Tool protocol, ``search`` and ``access`` over a Retriever, ``call_subagent`` (run by
the env), and tool-call parsing / rendering (Hermes format)."""

from wideseek_env.tools.access import AccessTool
from wideseek_env.tools.base import Tool, error_text, openai_schema
from wideseek_env.tools.search import SearchTool

__all__ = ["AccessTool", "SearchTool", "Tool", "error_text", "openai_schema"]
from wideseek_env.tools.parsing import (  # noqa: E402
    HermesParser,
    ParsedMessage,
    ToolCall,
    ToolCallParser,
    final_answer_text,
    render_assistant,
    render_messages,
    render_tool_call,
    render_tool_calls,
    render_tool_result,
    render_tools_block,
    split_reasoning,
)
from wideseek_env.tools.subagent import (  # noqa: E402
    SUBAGENT_TOOL_NAME,
    SUBAGENT_TOOL_NAMES,
    SubagentRequest,
    SubagentTool,
    parse_subagent_arguments,
)

__all__ += [
    "HermesParser",
    "ParsedMessage",
    "ToolCall",
    "ToolCallParser",
    "final_answer_text",
    "render_assistant",
    "render_messages",
    "render_tool_call",
    "render_tool_calls",
    "render_tool_result",
    "render_tools_block",
    "split_reasoning",
    "SUBAGENT_TOOL_NAME",
    "SUBAGENT_TOOL_NAMES",
    "SubagentRequest",
    "SubagentTool",
    "parse_subagent_arguments",
]
