"""The default worker tools (``search`` + ``access``) built from an :class:`~wideseek_env.config.EnvConfig`.

One place decides how the config's limits map onto the tools, so that an env building its own tools and a
run setup building one set of tools for many envs (``agents.setup``) give agents the same tools.
"""

from __future__ import annotations

from typing import Any

from wideseek_env.tools.access import AccessTool
from wideseek_env.tools.base import Tool
from wideseek_env.tools.search import SearchTool


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
                        summarizer=summarizer)
    return [search, access]
