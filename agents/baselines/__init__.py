"""Baseline policies without an LLM: :class:`ScriptedBaseline` (honest) and :class:`OracleAgent` (tests only).

Both implement the policy interface of :mod:`agents.policy`: one ``act(requests)`` call per env step
for every acting agent (``AgentRequest(episode_id, agent_id, new_messages, tools, role)`` ->
``AgentResponse(text=...)``). They read the new chat messages of each agent (``infos[a]["messages"]``)
and answer with assistant text holding Hermes ``<tool_call>`` blocks (rendered with
:func:`wideseek_env.tools.parsing.render_tool_calls`), or with a final answer. :func:`run_episode`
drives one env episode with any such policy.

The package, one idea a module (this module only re-exports their public names):

- :mod:`~agents.baselines.scripted`: :class:`ScriptedBaseline` and its per-agent state machine (its reading
  skills in :mod:`~agents.baselines.skills`);
- :mod:`~agents.baselines.oracle`: :class:`OracleAgent` (reads the gold table: tests only);
- :mod:`~agents.baselines.episode`: :func:`run_episode`;
- :mod:`~agents.baselines.query`: reading a query (:func:`parse_query`, :func:`parse_columns`, ...);
- :mod:`~agents.baselines.prompts`: the subtask texts the lead writes and a subagent reads back;
- :mod:`~agents.baselines.env_messages`: reading tool results and the env's turn hints;
- :mod:`~agents.baselines.tables`: tables in page text, picking and projecting them;
- :mod:`~agents.baselines.attributes`: attribute columns and reading their values from a page;
- :mod:`~agents.baselines.answers`: rendering final answers, merging subagent reports;
- :mod:`~agents.baselines.text`: small string helpers.

Names with a leading underscore are shared between these modules only.
"""

from __future__ import annotations

# Every public name of the former single module agents/baselines.py stays importable from here;
# __all__ (what ``import *`` gives) is the one it had.
from agents.baselines.answers import render_answer
from agents.baselines.attributes import ATTRIBUTE_COLUMNS, attribute_key, extract_attribute  # noqa: F401
from agents.baselines.env_messages import (  # noqa: F401
    AccessedPage,
    SearchHit,
    parse_access_result,
    parse_search_result,
)
from agents.baselines.episode import run_episode
from agents.baselines.oracle import OracleAgent
from agents.baselines.prompts import ENTITY_PROMPT, FIND_TABLE_PROMPT, GENERIC_PROMPT, TRANSCRIBE_PROMPT  # noqa: F401
from agents.baselines.query import (  # noqa: F401
    QueryPlan,
    enrich_key,
    fill_x,
    parse_columns,
    parse_query,
    reconcile_columns,
)
from agents.baselines.generator_agent import Calls, approx_tokens  # noqa: F401
from agents.baselines.scripted import ScriptedBaseline  # noqa: F401
from agents.baselines.tables import (  # noqa: F401
    PageTable,
    best_table,
    map_columns,
    project,
    section_similarity,
    tables_in_text,
)

__all__ = [
    "ScriptedBaseline",
    "OracleAgent",
    "QueryPlan",
    "PageTable",
    "parse_query",
    "parse_columns",
    "tables_in_text",
    "extract_attribute",
    "render_answer",
    "run_episode",
]
