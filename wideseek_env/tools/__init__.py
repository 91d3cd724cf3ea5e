"""Agent tools: the Tool protocol, ``search`` and ``access`` over a Retriever."""

from wideseek_env.tools.access import AccessTool
from wideseek_env.tools.base import Tool, error_text, openai_schema
from wideseek_env.tools.search import SearchTool

__all__ = ["AccessTool", "SearchTool", "Tool", "error_text", "openai_schema"]
