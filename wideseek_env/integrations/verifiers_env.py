"""verifiers (0.4, ``verifiers.v1``): a WideSeek taskset whose rubric is the WideSearch evaluator.

In verifiers 0.4 an environment is a *taskset* (tasks + their rewards, ``@vf.reward`` / ``@vf.metric``
methods of the task class) played by agents through a harness, with tools served as MCP toolsets;
``vf.load_environment(EnvConfig)`` builds it and ``vf eval`` / prime-rl run it. A taskset id names an
importable top-level module exporting the ``Taskset`` subclass through ``__all__``: here
``wideseek_verifiers`` (shipped beside ``wideseek_env``). This module defines:

- :class:`WideSeekTaskset`: one task per WideSeek task, its prompt the env's first user message and its
  system prompt the env's (single agent: search + access);
- :class:`WideSeekTask`: the rubric. ``item_f1`` (reward, weight 1) is the item F1 of the trace's last
  reply against the gold table, scored by :func:`wideseek_env.evaluation.score_answer` exactly as
  ``wideseek score`` scores a response; ``row_f1`` and ``success`` are metrics (recorded, not summed);
- :class:`WideSeekToolset`: ``search`` and ``access``, the env's own tools with the paper's limits
  (``EnvConfig.single_agent()``), served over MCP to the harness;
- :func:`load_environment`: ``load_environment(corpus=..., tasks=..., mode="single")`` -> a verifiers
  ``Env`` (``SingleAgentEnv`` over the taskset).

Limits. The turn limit and context budget are the harness's (verifiers' ``--env.agent.*`` settings),
not the env's: the toolset answers each call as the env's tools do, without the env's turn hint.
``mode="multi"`` (the lead/subagent setting) is not offered: in verifiers 0.4 that needs a multi-agent
``Env`` whose ``run()`` spawns subagent seats per ``call_subagent``, which is not written yet.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Iterator

from wideseek_env.config import EnvConfig
from wideseek_env.errors import MissingExtraError, WideseekError

try:
    import verifiers.v1 as vf
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingExtraError(
        "the verifiers integration needs verifiers>=0.4; install it with: pip install 'wideseek-env[verifiers]'"
    ) from exc

__all__ = [
    "TASKSET_ID",
    "WideSeekData",
    "WideSeekTask",
    "WideSeekTaskConfig",
    "WideSeekTaskset",
    "WideSeekTasksetConfig",
    "WideSeekToolset",
    "WideSeekToolsConfig",
    "load_environment",
    "score_reply",
]

#: The verifiers taskset id (the top-level module ``wideseek_verifiers``).
TASKSET_ID = "wideseek-verifiers"
MODES = ("single", "multi")


@functools.lru_cache(maxsize=8)
def _tasks_by_id(path: str) -> dict[str, Any]:
    from wideseek_env.tasks import load_tasks

    return {t.id: t for t in load_tasks(Path(path))}


@functools.lru_cache(maxsize=4)
def _env_tools(corpus: str) -> dict[str, Any]:
    from wideseek_env.corpus.local import LocalRetriever
    from wideseek_env.tools.access import AccessTool
    from wideseek_env.tools.search import SearchTool

    cfg = EnvConfig.single_agent()
    retriever = LocalRetriever(Path(corpus))
    return {
        "search": SearchTool(retriever, max_queries=cfg.max_search_queries, default_count=cfg.search_top_k,
                             max_count=max(10, cfg.search_top_k), snippet_chars=cfg.snippet_chars),
        "access": AccessTool(retriever, max_urls=cfg.max_access_urls, page_chars=cfg.page_chars),
    }


def score_reply(tasks: str | os.PathLike, task_id: str, reply: str) -> Any:
    """The evaluator's ``TableScore`` of ``reply`` for the task ``task_id`` of the task file ``tasks``."""
    from wideseek_env.evaluation import score_answer

    by_id = _tasks_by_id(str(Path(tasks).resolve()))
    if task_id not in by_id:
        raise WideseekError(f"task {task_id!r} is not in {tasks}")
    return score_answer(by_id[task_id], reply)


# ------------------------------------------------------------------------------------------------
# Tools


class WideSeekToolsConfig(vf.SharedToolsetConfig):
    corpus: str = ""
    """The built corpus directory the tools read."""


class WideSeekToolset(vf.Toolset[WideSeekToolsConfig, vf.State]):
    """``search`` and ``access`` over the corpus, as the env's tools answer them (paper limits)."""

    TOOL_PREFIX = None

    @vf.tool
    async def search(self, queries: list[dict]) -> str:
        """Search the offline Wikipedia with BM25 keyword queries; several queries run in parallel.
        queries: up to 5 objects {"query": "keywords", "count": 3} (count: hits wanted, default 3)."""
        return _env_tools(self.config.corpus)["search"].call_many([{"queries": queries}])[0]

    @vf.tool
    async def access(self, urls: list[dict]) -> str:
        """Read Wikipedia pages by URL and get the parts relevant to what you want to extract.
        urls: up to 5 objects {"url": "https://en.wikipedia.org/wiki/...", "info_to_extract": "..."}."""
        return _env_tools(self.config.corpus)["access"].call_many([{"urls": urls}])[0]


# ------------------------------------------------------------------------------------------------
# Tasks and the rubric


class WideSeekTaskConfig(vf.TaskConfig):
    tasks: str = ""
    """The task file holding the gold tables (set by the taskset)."""


class WideSeekData(vf.TaskData):
    task_id: str
    """The WideSeek task id (also ``id``)."""


class WideSeekTask(vf.Task[WideSeekData, vf.State, WideSeekTaskConfig]):
    """A WideSeek task; its rubric is the WideSearch evaluator on the trace's last reply."""

    def _score(self, trace: Any) -> Any:
        cached = trace.info.get("wideseek_score")
        if cached is None:
            score = score_reply(self.config.tasks, self.data.task_id, trace.last_reply)
            cached = trace.info["wideseek_score"] = {
                "item_f1": float(score.item_f1), "row_f1": float(score.row_f1), "success": float(score.success),
            }
        return cached

    @vf.reward(weight=1.0)
    async def item_f1(self, trace: Any) -> float:
        """Item F1 of the final table against the gold table."""
        return self._score(trace)["item_f1"]

    @vf.metric
    async def row_f1(self, trace: Any) -> float:
        """Row F1 (a row counts when every cell is right)."""
        return self._score(trace)["row_f1"]

    @vf.metric
    async def success(self, trace: Any) -> float:
        """1.0 when every precision, recall and F1 is exactly 1."""
        return self._score(trace)["success"]


class WideSeekTasksetConfig(vf.TasksetConfig):
    corpus: str = ""
    """A built corpus directory (``wideseek corpus build``)."""
    tasks: str = ""
    """A task file (our JSONL, WideSearch or WideSeek-R1 format)."""
    mode: str = "single"
    """``"single"``: one agent with search + access (the only mode offered so far)."""
    tools: WideSeekToolsConfig = WideSeekToolsConfig()
    task: WideSeekTaskConfig = WideSeekTaskConfig()


class WideSeekTaskset(vf.Taskset[WideSeekTask, WideSeekTasksetConfig]):
    """The WideSeek tasks of ``config.tasks`` over ``config.corpus`` (module docstring)."""

    @classmethod
    def toolsets(cls, config: WideSeekTasksetConfig) -> list[vf.Toolset]:
        return [WideSeekToolset(config.tools.model_copy(update={"corpus": config.corpus}))]

    def load(self) -> Iterator[WideSeekTask]:
        from wideseek_env import prompts

        cfg = self.config
        _check(cfg.corpus, cfg.tasks, cfg.mode)
        task_config = cfg.task.model_copy(update={"tasks": str(Path(cfg.tasks).resolve())})
        system = prompts.system_prompt("agent")
        for task in _tasks_by_id(str(Path(cfg.tasks).resolve())).values():
            yield WideSeekTask(
                WideSeekData(id=task.id, task_id=task.id, name=task.id, prompt=str(task.query),
                             system_prompt=system),
                task_config,
            )


def _check(corpus: str, tasks: str, mode: str) -> None:
    if mode not in MODES:
        raise WideseekError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "multi":
        raise WideseekError(
            "mode='multi' (lead + subagents) is not offered for verifiers yet: use mode='single', or the "
            "bundled trainer (wideseek train) for the lead/subagent setting"
        )
    if not corpus or not (Path(corpus) / "manifest.json").exists():
        raise WideseekError(f"corpus {corpus!r} is not a built corpus directory: run `wideseek corpus build`")
    if not tasks or not Path(tasks).exists():
        raise WideseekError(f"task file {tasks!r} does not exist")


def load_environment(corpus: str | os.PathLike, tasks: str | os.PathLike, mode: str = "single",
                     **env_config: Any):
    """The verifiers ``Env`` of the WideSeek taskset: ``SingleAgentEnv`` over :class:`WideSeekTaskset`.

    ``env_config`` goes to ``SingleAgentEnvConfig`` (e.g. ``max_concurrent_agents``)."""
    corpus, tasks = str(Path(corpus).resolve()), str(Path(tasks).resolve())
    _check(corpus, tasks, mode)
    taskset = WideSeekTasksetConfig(id=TASKSET_ID, corpus=corpus, tasks=tasks, mode=mode)
    config = vf.SingleAgentEnvConfig(taskset=taskset, **env_config)
    return vf.load_environment(config)
