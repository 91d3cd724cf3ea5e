"""Internal to :mod:`wideseek_env.env`: what ``WideSeekEnv.__init__`` builds before the first episode,
from its ``tasks``, ``corpus``, ``tools`` and ``summarizer`` arguments (see the class docstring).

- :func:`load_env_tasks`: the task list (a task file of any format ``tasks.load_tasks`` reads, a
  ``TaskSet`` or list of ``Task``, or the default generated test set);
- :func:`build_role_tools`: each role's tools by name (``call_subagent`` left out: the env adds it
  where a role may delegate), and the retriever of the default tools with whether the env opened it
  (and so must close it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from wideseek_env.config import EnvConfig
from wideseek_env.episode_record import ROLE_LEAD, ROLE_SINGLE, ROLE_SUB
from wideseek_env.errors import WideseekError
from wideseek_env.tools.base import Tool
from wideseek_env.tools.subagent import SUBAGENT_TOOL_NAMES


def load_env_tasks(tasks: Any) -> list[Any]:
    """``tasks`` as a list: a path is read with ``tasks.load_tasks``, None is the default test split
    (``paths.default_tasks_dir() / "test.jsonl"``; a missing one is a ``WideseekError`` saying how to
    make it), anything else is listed as it is."""
    if tasks is None:
        from wideseek_env.paths import default_tasks_dir

        path = default_tasks_dir() / "test.jsonl"
        if not path.exists():
            raise WideseekError(
                f"no tasks given and the default task set {path} does not exist: pass tasks=FILE "
                "(a task JSONL, e.g. shared/data/widesearch/widesearch.jsonl) or generate the "
                "default set with `wideseek tasks generate`"
            )
        tasks = path
    if isinstance(tasks, (str, os.PathLike)):
        from wideseek_env.tasks import load_tasks

        return list(load_tasks(Path(tasks)))
    return list(tasks)


def build_role_tools(
    config: EnvConfig, corpus: Any, tools: Any, summarizer: Any
) -> tuple[dict[str, dict[str, Tool]], Any, bool]:
    """``(tools by name per role, retriever, whether the env owns the retriever)``.

    ``tools``: a mapping ``{role: [Tool]}``, a list of ``Tool`` for the working role (the single agent,
    or subagents), or None for the default ``search`` + ``access`` over ``corpus`` (a corpus directory,
    opened here and owned by the env; a ``Retriever``; or None for ``paths.default_corpus_dir()``).
    The retriever is None unless the default tools were built. Two tools of one name for one role
    are a ``WideseekError``."""
    retriever, owned = None, False
    worker = ROLE_SINGLE if config.mode == "single" else ROLE_SUB
    if isinstance(tools, Mapping):
        role_lists = {role: list(tools.get(role, ())) for role in (ROLE_LEAD, ROLE_SUB, ROLE_SINGLE)}
    else:
        if tools is None:
            retriever, owned = _open_retriever(corpus)
            from wideseek_env.tools.defaults import default_tools

            tools = default_tools(retriever, config, summarizer)
        role_lists = {ROLE_LEAD: [], ROLE_SUB: [], ROLE_SINGLE: []}
        role_lists[worker] = list(tools)
    out: dict[str, dict[str, Tool]] = {}
    for role, lst in role_lists.items():
        named: dict[str, Tool] = {}
        for tool in lst:
            if tool.name in SUBAGENT_TOOL_NAMES:
                continue  # added by the env where allowed
            if tool.name in named:
                raise WideseekError(f"two tools named {tool.name!r} for role {role!r}")
            named[tool.name] = tool
        out[role] = named
    return out, retriever, owned


def _open_retriever(corpus: Any) -> tuple[Any, bool]:
    """``(retriever, opened here)``: a corpus directory (None: the default one) is opened with
    ``LocalRetriever``; anything else is taken as a retriever."""
    if corpus is None:
        from wideseek_env.paths import default_corpus_dir

        corpus = default_corpus_dir()
    if isinstance(corpus, (str, os.PathLike)):
        from wideseek_env.corpus.local import LocalRetriever

        return LocalRetriever(Path(corpus)), True
    return corpus, False
