"""The default tools (``search`` + ``access``, and the env's ``call_subagent`` schema) built from an
:class:`~wideseek_env.config.EnvConfig`.

One place decides how the config's limits map onto the tools, so that an env building its own tools and a
run setup building one set of tools for many envs (``agents.setup``) give agents the same tools. With
``EnvConfig.prompts = "compact"`` the tools get short descriptions and schemas (a departure from the
paper's, for small models: see ``wideseek_env.prompts``); with ``access_mode = "section"`` ``access``
returns the best-matching section of a page whole.
"""

from __future__ import annotations

from typing import Any

from wideseek_env.tools.access import AccessTool
from wideseek_env.tools.base import Tool
from wideseek_env.tools.search import SearchTool
from wideseek_env.tools.subagent import SubagentTool


def default_tools(retriever: Any, config: Any, summarizer: Any = None) -> list[Tool]:
    """``[SearchTool, AccessTool]`` over ``retriever`` with the limits of ``config`` (an ``EnvConfig``).

    ``summarizer``: optional access summarizer (see :class:`AccessTool`). Tools never raise on agent input."""
    search = SearchTool(
        retriever,
        max_queries=config.max_search_queries,
        default_count=config.search_top_k,
        max_count=max(10, config.search_top_k),
        snippet_chars=config.snippet_chars,
    )
    access = AccessTool(retriever, max_urls=config.max_access_urls, page_chars=config.page_chars,
                        summarizer=summarizer, mode=getattr(config, "access_mode", "relevant"),
                        suggestions=getattr(config, "access_suggestions", 0))
    if getattr(config, "prompts", "paper") == "compact":
        _compact_search(search)
        _compact_access(access)
    return [search, access]


def subagent_tool(config: Any) -> SubagentTool:
    """The ``call_subagent`` schema the env offers delegating agents (compact with compact prompts)."""
    tool = SubagentTool(config.max_subagents_per_call)
    if getattr(config, "prompts", "paper") == "compact":
        tool.description = f"Start up to {tool.max_per_call} subagents, one per subtask; returns their reports."
        tool.parameters = _list_of("sub_agents", {"prompt": "string"})
    return tool


def _list_of(name: str, fields: dict[str, str]) -> dict[str, Any]:
    """A schema ``{name: [{field: type, ...}, ...]}`` with every field required and no descriptions."""
    item = {"type": "object", "properties": {k: {"type": v} for k, v in fields.items()}, "required": list(fields)}
    return {"type": "object", "properties": {name: {"type": "array", "items": item}}, "required": [name]}


def _compact_search(tool: SearchTool) -> None:
    tool.description = "Keyword search over Wikipedia; returns title, URL and snippet per hit."
    tool.parameters = _list_of("queries", {"query": "string"})


def _compact_access(tool: AccessTool) -> None:
    what = "the page section that best matches info_to_extract" if tool.mode == "section" else \
        "the parts of the page most relevant to info_to_extract"
    tool.description = f"Read Wikipedia pages by URL; returns {what}."
    tool.parameters = _list_of("urls", {"url": "string", "info_to_extract": "string"})
