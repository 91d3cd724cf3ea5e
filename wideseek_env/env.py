"""The WideSeek PettingZoo ParallelEnv: a lead agent delegating to dynamically spawned subagents.

Quick start::

    from wideseek_env.env import WideSeekEnv
    env = WideSeekEnv("data/corpus-ottqa", "data/tasks-ottqa/test.jsonl")
    obs, infos = env.reset(seed=0)
    while env.agents:
        actions = {a: my_policy(obs[a]["text"], infos[a]) for a in env.agents if infos[a]["acting"]}
        obs, rewards, terms, truncs, infos = env.step(actions)

Agents and scheduling
    ``possible_agents`` is ``["lead", "sub_0", ..., "sub_{N-1}"]`` (N from ``EnvConfig.pool_size``) or
    ``["agent"]`` in single-agent mode. Only ``"lead"`` exists after ``reset``. A ``call_subagent``
    with k prompts takes the next k unused ids (an id is never reused within an episode); they appear
    in ``agents`` from that step on, and act from the next step, in parallel, each in its own isolated
    context with the ``search`` and ``access`` tools. The caller does not act while they run. A
    subagent's final answer (a message without tool calls) is its report: the text after its last
    ``</think>``. When *all* subagents of one call have finished, the caller gets one tool message
    with ``# Subtask k`` / ``# Result`` blocks in order and acts in the next step.
    Every spawned agent stays in ``agents`` (not acting) until the episode ends, so that every agent
    that took part receives the shared reward: ``infos[a]["acting"]`` says who acts next. Actions of
    agents that are not acting are ignored. **A missing action of an acting agent is taken as the
    empty text** (for the lead that is an empty final answer, which ends the episode): policies must
    answer for every acting agent.

Episode end
    The lead's final answer ends the episode: every agent terminates in that step and gets the same
    reward ``reward_fn(task, answer, record)`` (default: item F1 of the answer, plus RLinf's shaping
    terms when ``EnvConfig.reward_shaping``). A lead that uses its last turn for a tool call or whose
    context exceeds ``EnvConfig.context_tokens`` ends the episode with truncation, the reward computed
    on an empty answer. The last step's ``infos[a]["metrics"]`` (the same dict for every agent) holds
    item/row precision, recall and F1, success, turns, tool calls by name, subagents spawned, failures.

Limits and failures
    An agent's n-th action is its turn n. A subagent that makes a tool call on its last turn, or whose
    context grows past the budget, fails: its caller receives ``prompts.SUBAGENT_FAILURE_TEXT`` as its
    result. Bad output never raises: invalid JSON, unknown tools, calls past the per-message limit,
    pool exhaustion, bad arguments all come back as ``Error: ...`` tool messages (or, with
    ``invalid_call="final"``, a malformed call or a tool the role lacks makes the message the agent's
    final answer, as in the paper). Parse errors have no call id of their own: their tool messages
    carry a synthetic ``tool_call_id`` (``<agent>_t<turn>_err<k>``) that no assistant ``tool_calls``
    entry lists.

Observations and infos
    ``observation_space(a)`` is ``Dict({"text": UnicodeText(...)})``; the text is what is new for the
    agent since its last action (system prompt with the tools preamble and the task at spawn, tool
    results later, rendered by ``tools.parsing.render_messages``) and ``""`` for agents not acting.
    ``infos[a]``: ``acting``, ``role``, ``parent``, ``depth``, ``turn`` (the number of its next answer),
    ``max_turns``, ``status``, ``messages`` (the same new messages, OpenAI chat format: system / user /
    assistant / tool with ``tool_call_id``), ``tools`` (OpenAI schemas of the role), ``context_tokens``
    (used so far) and ``limits``. No timings (``parallel_seed_test`` compares infos). The whole
    isolated context of an agent: :meth:`WideSeekEnv.context`.

Batching hook
    ``step`` = :meth:`step_collect` (parse every acting agent's action, return the tool requests) ->
    :func:`execute_tool_requests` (one ``call_many`` per tool object: all searches of the step in one
    batch, all accesses in another) -> :meth:`step_apply` (deliver results, spawn, finish, score).
    A rollout runner driving many envs that share tool objects can batch across envs::

        reqs = [env.step_collect(acts) for env, acts in zip(envs, actions)]
        flat = execute_tool_requests([r for rs in reqs for r in rs])
        out, i = [], 0
        for env, rs in zip(envs, reqs):
            out.append(env.step_apply(flat[i:i + len(rs)])); i += len(rs)
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from wideseek_env import prompts
from wideseek_env.config import EnvConfig
from wideseek_env.errors import UnknownTaskError, WideseekError
from wideseek_env.spaces import UnicodeText, text_dict_space
from wideseek_env.tools.base import Tool, error_text, openai_schema
from wideseek_env.tools.parsing import (
    HermesParser,
    ParsedMessage,
    ToolCallParser,
    final_answer_text,
    render_messages,
)
from wideseek_env.tools.subagent import (
    SUBAGENT_TOOL_NAMES,
    SubagentRequest,
    parse_subagent_arguments,
)

__all__ = [
    "WideSeekEnv",
    "EpisodeRecord",
    "AgentRecord",
    "ToolRequest",
    "execute_tool_requests",
    "default_reward",
    "approx_token_count",
]

LEAD = "lead"
SINGLE = "agent"
ROLE_LEAD, ROLE_SUB, ROLE_SINGLE = "lead", "subagent", "agent"

TokenCounter = Callable[[str], int]
RewardFn = Callable[[Any, str, "EpisodeRecord"], float]


def approx_token_count(text: str) -> int:
    """Default token counter: UTF-8 bytes / 4, rounded up (about 4 characters per English token and
    0.75 tokens per CJK character). Pass ``token_counter=lambda s: len(tok.encode(s))`` for exact
    counts with a real tokenizer."""
    if not text:
        return 0
    n = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
    return (n + 3) // 4


def _clean(text: str) -> str:
    """Replace lone surrogates (which JSON-decoded agent strings may hold) so every text is UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _coerce_action(action: Any) -> str:
    if action is None:
        return ""
    if isinstance(action, str):
        return action
    if isinstance(action, (bytes, bytearray)):
        return bytes(action).decode("utf-8", "replace")
    if isinstance(action, np.ndarray) and action.shape == ():
        return _coerce_action(action.item())
    try:
        return str(action)
    except Exception:  # noqa: BLE001 - a hostile __str__
        return ""


# ----------------------------------------------------------------------------------------------
# Tool execution (the batching hook)


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


# ----------------------------------------------------------------------------------------------
# Episode records and the default reward


@dataclass
class AgentRecord:
    """What one agent did in an episode (part of :class:`EpisodeRecord`)."""

    id: str
    role: str
    parent: str | None
    depth: int
    subtask: str | None
    turns: int = 0
    tool_calls: Counter = field(default_factory=Counter)
    invalid_calls: int = 0
    failed: bool = False
    failure: str | None = None  # "turns" | "context"
    report: str | None = None
    max_turn_tokens: int = 0
    context_tokens: int = 0


@dataclass
class EpisodeRecord:
    """Everything a reward function may look at besides the task and the answer."""

    task_id: str
    answer: str
    truncated: bool
    agents: dict[str, AgentRecord]
    config: EnvConfig
    score: Any = None  # evaluation.TableScore of the answer (None if scoring failed)
    scoring_error: str | None = None

    @property
    def subagents(self) -> list[AgentRecord]:
        return [a for a in self.agents.values() if a.role == ROLE_SUB]

    @property
    def longest_turn_tokens(self) -> int:
        return max((a.max_turn_tokens for a in self.agents.values()), default=0)

    @property
    def access_used(self) -> bool:
        """Whether any worker (a subagent, or the single agent) called ``access``."""
        return any(a.tool_calls.get("access", 0) > 0 for a in self.agents.values() if a.role != ROLE_LEAD)


def answer_parsed(task: Any, answer: str) -> bool:
    """Whether the answer has the expected form: a markdown table (table tasks) or ``\\boxed{}`` (QA)."""
    if not answer:
        return False
    if getattr(task, "kind", "table") == "qa":
        return "\\boxed{" in answer
    from wideseek_env.table.markdown import extract_table

    try:
        return extract_table(answer) is not None
    except Exception:  # noqa: BLE001
        return False


def default_reward(task: Any, answer: str, record: EpisodeRecord) -> float:
    """Item F1 of the answer; with ``config.reward_shaping``, RLinf's shaped reward:
    ``F1 + 0.1 (format) + 0.05 (a worker used access) - 0.1 * clip((longest turn tokens - 3000) / 2000,
    0, 1)`` when the answer parsed, else 0 (weights from ``EnvConfig``)."""
    f1 = float(getattr(record.score, "item_f1", 0.0) or 0.0) if record.score is not None else 0.0
    cfg = record.config
    if not cfg.reward_shaping:
        return f1
    if record.truncated or not answer_parsed(task, answer):
        return 0.0
    excess = (record.longest_turn_tokens - cfg.length_penalty_start) / cfg.length_penalty_range
    return (
        f1
        + cfg.format_bonus
        + (cfg.access_bonus if record.access_used else 0.0)
        - cfg.length_penalty * min(1.0, max(0.0, excess))
    )


# ----------------------------------------------------------------------------------------------
# Internal per-agent state


@dataclass
class _Slot:
    """One result position of an agent's current tool-call message."""

    call_id: str
    name: str
    text: str | None = None  # None until known (tool result or subagent reports)


@dataclass
class _Group:
    """The subagents started by one ``call_subagent`` call."""

    caller: str
    slot: int
    children: list[str]
    prompts: list[str]
    notes: list[str]
    results: dict[str, str] = field(default_factory=dict)


@dataclass
class _Agent:
    id: str
    role: str
    parent: str | None
    depth: int
    max_turns: int
    tools: dict[str, Tool]
    schemas: list[dict[str, Any]]
    can_delegate: bool
    subtask: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    new: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0
    turn: int = 0
    status: str = "acting"  # acting | waiting | done | failed
    slots: list[_Slot] = field(default_factory=list)
    open_groups: int = 0
    group: _Group | None = None  # the call_subagent group this subagent belongs to
    record: AgentRecord | None = None


@dataclass
class _Outcome:
    """What an acting agent's action amounts to (decided in collect, applied in apply)."""

    agent: str
    kind: str  # "final" | "tools" | "fail"
    answer: str = ""
    failure: str | None = None
    requests: list[tuple[int, int]] = field(default_factory=list)  # (slot index, request index)
    spawns: list[tuple[int, SubagentRequest | str]] = field(default_factory=list)  # (slot, request)


# ----------------------------------------------------------------------------------------------


class WideSeekEnv(ParallelEnv):
    """PettingZoo ParallelEnv of WideSeek-R1 (see the module docstring for the full contract).

    ``corpus``: a built corpus directory (opened with ``LocalRetriever``), a ``Retriever`` (local or
    ``HTTPRetriever``), or None for ``paths.default_corpus_dir()``; not needed when ``tools`` replaces
    the default search/access tools. ``tasks``: a task file (any format ``tasks.load_tasks`` reads), a
    ``TaskSet`` or a list of ``Task``; None for the default generated test set. ``config``: an
    :class:`EnvConfig` (default: paper limits, multi-agent). ``reward_fn(task, answer, record)``: the
    shared episode reward (default :func:`default_reward`). ``token_counter(text) -> int``: counts
    context tokens (default :func:`approx_token_count`). ``tools``: the working role's tools instead
    of ``search`` + ``access`` (a list of ``Tool``), or a mapping ``{"lead"|"subagent"|"agent": [Tool]}``;
    ``call_subagent`` is added by the env where the role may delegate. ``summarizer``: passed to the
    default ``AccessTool``. ``task_ids``: sample only these tasks. ``judge``: passed to
    ``score_answer`` for the metrics and the default reward. ``parser``: a ``ToolCallParser`` instead
    of the Hermes parser built from the config.
    """

    metadata = {"name": "wideseek_v0", "render_modes": ["human", "ansi"], "is_parallelizable": True}

    def __init__(
        self,
        corpus: Any = None,
        tasks: Any = None,
        config: EnvConfig | None = None,
        *,
        reward_fn: RewardFn | None = None,
        token_counter: TokenCounter | None = None,
        tools: Sequence[Tool] | Mapping[str, Sequence[Tool]] | None = None,
        summarizer: Any = None,
        render_mode: str | None = None,
        task_ids: Iterable[str] | None = None,
        judge: Any = None,
        parser: ToolCallParser | None = None,
    ) -> None:
        self.config = config if config is not None else EnvConfig()
        if not isinstance(self.config, EnvConfig):
            raise TypeError(f"config must be an EnvConfig, got {type(self.config).__name__}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise WideseekError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.reward_fn: RewardFn = reward_fn or default_reward
        self.token_counter: TokenCounter = token_counter or approx_token_count
        self.judge = judge
        cfg = self.config
        self.parser: ToolCallParser = parser or HermesParser(
            cfg.max_tool_calls_per_message, first_only=cfg.first_tool_call_only
        )

        self._tasks = self._load_tasks(tasks)
        if task_ids is not None:
            ids = list(task_ids)
            for tid in ids:
                self._get_task(tid)
            self._sample_ids = ids
        else:
            self._sample_ids = [t.id for t in self._tasks]
        if not self._sample_ids:
            raise WideseekError("the task set is empty: give a task file with at least one task")

        self._owns_retriever = False
        self.retriever = None
        self._role_tools = self._build_tools(corpus, tools, summarizer)
        from wideseek_env.tools.defaults import subagent_tool

        self._subagent_tool = subagent_tool(cfg)

        if cfg.mode == "single":
            self.possible_agents = [SINGLE]
        else:
            self.possible_agents = [LEAD] + [f"sub_{i}" for i in range(cfg.pool_size)]
        self.agents: list[str] = []
        self._obs_spaces: dict[str, Any] = {}
        self._act_spaces: dict[str, Any] = {}
        self._limits_cache: dict[tuple[str, bool], dict[str, Any]] = {}
        self._schemas_cache: dict[tuple[str, bool], str] = {}
        self._np_random: np.random.Generator | None = None
        self._np_random_seed: int | None = None
        self._state: dict[str, _Agent] = {}
        self._groups: list[_Group] = []
        self._pending: tuple[list[_Outcome], list[ToolRequest]] | None = None
        self._transcript: list[str] = []
        self._rendered = 0
        self._done = True
        self._end: tuple[str, bool] | None = None  # (answer, truncated) once the root finished
        self.task = None
        self.answer: str | None = None
        self.last_metrics: dict[str, Any] | None = None
        self.last_record: EpisodeRecord | None = None

    # ------------------------------------------------------------------ construction helpers

    @staticmethod
    def _load_tasks(tasks: Any) -> list[Any]:
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

    def _get_task(self, task_id: str) -> Any:
        if not hasattr(self, "_task_index"):
            self._task_index = {t.id: t for t in self._tasks}
        try:
            return self._task_index[task_id]
        except (KeyError, TypeError):
            raise UnknownTaskError(
                f"unknown task id {task_id!r}: not among the {len(self._task_index)} tasks of this env"
            ) from None

    def _build_tools(self, corpus: Any, tools: Any, summarizer: Any) -> dict[str, dict[str, Tool]]:
        cfg = self.config
        worker = ROLE_SINGLE if cfg.mode == "single" else ROLE_SUB
        if isinstance(tools, Mapping):
            role_lists = {role: list(tools.get(role, ())) for role in (ROLE_LEAD, ROLE_SUB, ROLE_SINGLE)}
        else:
            if tools is None:
                tools = self._default_tools(corpus, summarizer)
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
        return out

    def _default_tools(self, corpus: Any, summarizer: Any) -> list[Tool]:
        from wideseek_env.tools.defaults import default_tools

        if corpus is None:
            from wideseek_env.paths import default_corpus_dir

            corpus = default_corpus_dir()
        if isinstance(corpus, (str, os.PathLike)):
            from wideseek_env.corpus.local import LocalRetriever

            self.retriever = LocalRetriever(Path(corpus))
            self._owns_retriever = True
        else:
            self.retriever = corpus
        return default_tools(self.retriever, self.config, summarizer)

    # ------------------------------------------------------------------ spaces

    def observation_space(self, agent: str):
        space = self._obs_spaces.get(agent)
        if space is None:
            space = self._obs_spaces[agent] = text_dict_space(self.config.max_observation_chars)
        return space

    def action_space(self, agent: str):
        space = self._act_spaces.get(agent)
        if space is None:
            space = self._act_spaces[agent] = UnicodeText(self.config.max_action_chars)
        return space

    # ------------------------------------------------------------------ public accessors

    @property
    def np_random(self) -> np.random.Generator:
        if self._np_random is None:
            self._np_random, self._np_random_seed = seeding.np_random()
        return self._np_random

    @property
    def tasks(self) -> list[Any]:
        return list(self._tasks)

    def context(self, agent: str) -> list[dict[str, Any]]:
        """The agent's whole isolated context (a copy): system, user, assistant and tool messages."""
        st = self._state.get(agent)
        if st is None:
            raise KeyError(f"agent {agent!r} has not been spawned in this episode")
        return copy.deepcopy(st.messages)

    def tool_schemas(self, agent: str) -> list[dict[str, Any]]:
        st = self._state.get(agent)
        if st is None:
            raise KeyError(f"agent {agent!r} has not been spawned in this episode")
        return copy.deepcopy(st.schemas)

    @property
    def acting_agents(self) -> list[str]:
        return [a for a in self.agents if self._state[a].status == "acting"]

    # ------------------------------------------------------------------ reset

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode. ``options={"task_id": ID}`` pins the task (unknown id ->
        ``UnknownTaskError``); otherwise a task is drawn with the env's ``np_random`` (re-seeded when
        ``seed`` is given). Other option keys are ignored."""
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        rng = self.np_random
        task_id = (options or {}).get("task_id") if isinstance(options, Mapping) else None
        if task_id is not None:
            task = self._get_task(task_id)
        else:
            task = self._get_task(self._sample_ids[int(rng.integers(len(self._sample_ids)))])
        self.task = task
        self.answer = None
        self.last_metrics = None
        self._state = {}
        self._groups = []
        self._pending = None
        self._next_sub = 0
        self._done = False
        self._end = None
        self._transcript = [f"=== task {task.id} ===", _clean(str(task.query))]
        self._rendered = 0
        self._query = self._cap_query(_clean(str(task.query)))

        root_role = ROLE_SINGLE if self.config.mode == "single" else ROLE_LEAD
        root = self._spawn(root_role, parent=None, depth=0, subtask=None)
        self.agents = [root.id]
        # A first prompt that does not fit the context budget fails on the agent's first turn.
        obs = {root.id: self._observation(root)}
        infos = {root.id: self._info(root)}
        root.new = []
        return obs, infos

    def _cap_query(self, query: str) -> str:
        """Cut the question to ``max_query_tokens`` tokens (binary search on a character prefix)."""
        limit = self.config.max_query_tokens
        if self.token_counter(query) <= limit:
            return query
        lo, hi = 0, len(query)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.token_counter(query[:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        return query[:lo]

    def _spawn(self, role: str, parent: str | None, depth: int, subtask: str | None) -> _Agent:
        cfg = self.config
        if role == ROLE_SUB:
            agent_id = f"sub_{self._next_sub}"
            self._next_sub += 1
        else:
            agent_id = LEAD if role == ROLE_LEAD else SINGLE
        can_delegate = role == ROLE_LEAD or (role == ROLE_SUB and depth < cfg.max_depth)
        tools = dict(self._role_tools[role])
        schemas = [openai_schema(t) for t in tools.values()]
        if can_delegate:
            schemas.append(openai_schema(self._subagent_tool))
        system = prompts.system_prompt(role, cfg.prompts)
        if role == ROLE_SUB and can_delegate:
            system += "\n\n" + prompts.SUBAGENT_DELEGATION_NOTE
        user = self._query if subtask is None else prompts.subagent_user_message(self._query, subtask)
        max_turns = cfg.max_turns(role)
        if cfg.turn_hint:
            user = f"{user}\n\n{prompts.turn_hint(1, max_turns)}"
        st = _Agent(
            id=agent_id,
            role=role,
            parent=parent,
            depth=depth,
            max_turns=max_turns,
            tools=tools,
            schemas=schemas,
            can_delegate=can_delegate,
            subtask=subtask,
        )
        st.record = AgentRecord(agent_id, role, parent, depth, subtask)
        self._state[agent_id] = st
        st.tokens = self.token_counter(json.dumps(schemas, ensure_ascii=False)) if schemas else 0
        self._add_message(st, {"role": "system", "content": system})
        self._add_message(st, {"role": "user", "content": user})
        return st

    def _add_message(self, st: _Agent, msg: dict[str, Any], *, new: bool = True) -> None:
        st.messages.append(msg)
        if new:
            st.new.append(msg)
        st.tokens += self.token_counter(msg.get("content") or "") + 4  # + a few template tokens

    # ------------------------------------------------------------------ step

    def step(self, actions: Mapping[str, Any]):
        """collect -> execute -> apply (see the module docstring)."""
        requests = self.step_collect(actions)
        return self.step_apply(execute_tool_requests(requests))

    def step_collect(self, actions: Mapping[str, Any] | None) -> list[ToolRequest]:
        """Phase 1: read the actions of acting agents, parse them, return the tool calls to run."""
        if self._pending is not None:
            raise RuntimeError("step_collect called twice without step_apply in between")
        outcomes: list[_Outcome] = []
        requests: list[ToolRequest] = []
        if not self._done:
            actions = actions if isinstance(actions, Mapping) else {}
            for agent_id in self.agents:
                st = self._state[agent_id]
                if st.status != "acting":
                    continue
                outcomes.append(self._collect_one(st, actions.get(agent_id), requests))
        self._pending = (outcomes, requests)
        return list(requests)

    def _collect_one(self, st: _Agent, action: Any, requests: list[ToolRequest]) -> _Outcome:
        cfg = self.config
        text = _clean(_coerce_action(action))
        if len(text) > cfg.max_action_chars:
            text = text[: cfg.max_action_chars]
        st.turn += 1
        rec = st.record
        rec.turns = st.turn
        turn_tokens = self.token_counter(text)
        rec.max_turn_tokens = max(rec.max_turn_tokens, turn_tokens)
        parsed: ParsedMessage = self.parser.parse(text, id_prefix=f"{st.id}_t{st.turn}_c")
        allowed = set(st.tools) | (set(SUBAGENT_TOOL_NAMES) if st.can_delegate else set())
        disallowed = [c for c in parsed.tool_calls if c.name not in allowed]
        rec.invalid_calls += len(parsed.errors) + len(disallowed)
        final = parsed.is_final or (
            cfg.invalid_call == "final" and (bool(parsed.errors) or bool(disallowed))
        )
        self._log(st, "assistant", text)
        if final:
            answer = final_answer_text(text)
            msg: dict[str, Any] = {"role": "assistant", "content": answer}
            if parsed.reasoning:
                msg["reasoning_content"] = parsed.reasoning
            self._add_message(st, msg, new=False)
            st.tokens += turn_tokens - self.token_counter(answer)  # count what was generated
            if st.tokens > cfg.context_tokens:
                return _Outcome(st.id, "fail", failure="context")
            return _Outcome(st.id, "final", answer=answer)

        msg = {"role": "assistant", "content": parsed.content}
        if parsed.reasoning:
            msg["reasoning_content"] = parsed.reasoning
        if parsed.tool_calls:
            msg["tool_calls"] = [c.to_openai() for c in parsed.tool_calls]
        self._add_message(st, msg, new=False)
        st.tokens += turn_tokens - self.token_counter(parsed.content)
        if st.tokens > cfg.context_tokens:
            return _Outcome(st.id, "fail", failure="context")
        if st.turn >= st.max_turns:
            return _Outcome(st.id, "fail", failure="turns")
        for c in parsed.tool_calls:
            rec.tool_calls[c.name] += 1

        out = _Outcome(st.id, "tools")
        st.slots = []
        budget = cfg.max_subagents_per_call
        for call in parsed.tool_calls:
            slot = len(st.slots)
            st.slots.append(_Slot(call.id, call.name))
            if call.name in SUBAGENT_TOOL_NAMES and st.can_delegate:
                req = parse_subagent_arguments(call.arguments, cfg.max_subagents_per_call)
                if isinstance(req, SubagentRequest):
                    if budget <= 0:
                        req = error_text(
                            f"at most {cfg.max_subagents_per_call} subagents can be started per "
                            "message; this call was not run"
                        )
                    elif len(req.prompts) > budget:
                        dropped = len(req.prompts) - budget
                        req = SubagentRequest(
                            req.prompts[:budget],
                            req.notes
                            + (
                                f"At most {cfg.max_subagents_per_call} subagents run per message: "
                                f"the last {dropped} subtask(s) of this call were dropped.",
                            ),
                        )
                    if isinstance(req, SubagentRequest):
                        budget -= len(req.prompts)
                out.spawns.append((slot, req))
            elif call.name in st.tools:
                out.requests.append((slot, len(requests)))
                requests.append(ToolRequest(st.id, call.id, call.name, call.arguments, st.tools[call.name]))
            else:
                st.slots[slot].text = error_text(self._unknown_tool_text(st, call.name))
        for k, err in enumerate(parsed.errors):
            st.slots.append(_Slot(f"{st.id}_t{st.turn}_err{k}", "error", error_text(err)))
        if parsed.dropped_calls:
            st.slots.append(
                _Slot(
                    f"{st.id}_t{st.turn}_err{len(parsed.errors)}",
                    "error",
                    error_text(
                        f"only the first {cfg.tool_calls_per_message} tool calls of a message are run; "
                        f"{parsed.dropped_calls} more were ignored"
                    ),
                )
            )
        return out

    def _unknown_tool_text(self, st: _Agent, name: str) -> str:
        names = list(st.tools) + ([self._subagent_tool.name] if st.can_delegate else [])
        have = ", ".join(names) if names else "none"
        if name in SUBAGENT_TOOL_NAMES:
            return f"the {st.role} cannot start subagents here; your tools are: {have}"
        return f"unknown tool {name!r}; your tools are: {have}"

    def step_apply(self, results: Sequence[str]):
        """Phase 3: deliver tool results, spawn subagents, finish agents, score a finished episode.
        Returns ``(observations, rewards, terminations, truncations, infos)``."""
        if self._pending is None:
            raise RuntimeError("step_apply called without step_collect")
        outcomes, requests = self._pending
        self._pending = None
        if self._done:
            return {}, {}, {}, {}, {}
        results = list(results)
        if len(results) != len(requests):
            raise ValueError(f"step_apply got {len(results)} results for {len(requests)} requests")
        for oc in outcomes:
            st = self._state[oc.agent]
            if oc.kind == "final":
                if st.role == ROLE_SUB:
                    self._finish_sub(st, oc.answer, failed=None)
                else:
                    st.status = "done"
                    self._end = (oc.answer, False)
            elif oc.kind == "fail":
                self._fail(st, oc.failure)
            else:
                for slot, ridx in oc.requests:
                    st.slots[slot].text = _clean(results[ridx])
                    self._log_tool(st, st.slots[slot].name, st.slots[slot].text)
                st.status = "waiting"
                children: list[_Agent] = []
                for slot, req in oc.spawns:
                    children += self._start_group(st, slot, req)
                if st.open_groups == 0:
                    self._deliver(st)
                # A subagent whose first prompt already exceeds the budget fails at once (after all
                # groups of the message exist, so that the caller cannot be resumed too early).
                for child in children:
                    if child.tokens > self.config.context_tokens:
                        self._fail(child, "context")
        return self._emit(self._end)

    # ------------------------------------------------------------------ scheduling internals

    def _start_group(self, caller: _Agent, slot: int, req: SubagentRequest | str) -> list[_Agent]:
        if isinstance(req, str):
            caller.slots[slot].text = req
            self._log_tool(caller, "call_subagent", req)
            return []
        available = len(self.possible_agents) - 1 - self._next_sub
        prompts_ = [_clean(p) for p in req.prompts]
        notes = list(req.notes)
        if available <= 0:
            text = error_text(
                f"no subagent was started: all {len(self.possible_agents) - 1} subagents of this "
                "episode have been used. Continue with the results you have."
            )
            caller.slots[slot].text = text
            self._log_tool(caller, "call_subagent", text)
            return []
        if len(prompts_) > available:
            notes.append(
                f"Only {available} of {len(prompts_)} subagents could be started: the pool of "
                f"{len(self.possible_agents) - 1} subagents of this episode is used up."
            )
            prompts_ = prompts_[:available]
        group = _Group(caller.id, slot, [], prompts_, notes)
        self._groups.append(group)
        caller.open_groups += 1
        children = []
        for p in prompts_:
            child = self._spawn(ROLE_SUB, parent=caller.id, depth=caller.depth + 1, subtask=p)
            child.group = group
            group.children.append(child.id)
            self.agents.append(child.id)
            children.append(child)
            self._transcript.append(f"[{caller.id} -> {child.id}] spawned: {_short(p)}")
        return children

    def _finish_sub(self, st: _Agent, report: str, failed: str | None) -> None:
        st.status = "failed" if failed else "done"
        st.record.failed = bool(failed)
        st.record.failure = failed
        st.record.report = report
        self._transcript.append(f"[{st.id} reports] {report}")
        group = st.group
        assert group is not None
        group.results[st.id] = report
        if len(group.results) == len(group.children):
            caller = self._state[group.caller]
            results = [group.results[c] for c in group.children]
            text = prompts.reports_message(group.prompts, results, group.notes)
            caller.slots[group.slot].text = text
            self._log_tool(caller, "call_subagent", text)
            caller.open_groups -= 1
            if caller.open_groups == 0:
                self._deliver(caller)

    def _fail(self, st: _Agent, reason: str | None) -> None:
        """A subagent returns the failure text to its caller; the root agent truncates the episode."""
        st.record.failed = True
        st.record.failure = reason
        self._transcript.append(f"[{st.id} fails: {reason}]")
        if st.role == ROLE_SUB:
            self._finish_sub(st, prompts.SUBAGENT_FAILURE_TEXT, failed=reason or "failed")
            return
        st.status = "failed"
        self._end = ("", True)

    def _deliver(self, st: _Agent) -> None:
        """All results of the agent's message are known: append them as tool messages; it acts next."""
        msgs = []
        for s in st.slots:
            msgs.append({"role": "tool", "tool_call_id": s.call_id, "name": s.name, "content": s.text or ""})
        if msgs and self.config.turn_hint:
            msgs[-1]["content"] += "\n\n" + prompts.turn_hint(st.turn + 1, st.max_turns)
        for m in msgs:
            self._add_message(st, m)
        st.slots = []
        if st.tokens > self.config.context_tokens:
            self._fail(st, "context")
            return
        st.status = "acting"

    # ------------------------------------------------------------------ outputs

    def _observation(self, st: _Agent) -> dict[str, str]:
        if st.status != "acting" or not st.new:
            return {"text": ""}
        has_system = any(m.get("role") == "system" for m in st.new)
        text = render_messages(st.new, st.schemas if has_system else None)
        limit = self.config.max_observation_chars
        if len(text) > limit:
            marker = "\n[... observation cut ...]"
            text = text[: limit - len(marker)] + marker
        return {"text": text}

    def _limits(self, st: _Agent) -> dict[str, Any]:
        key = (st.role, st.can_delegate)
        lim = self._limits_cache.get(key)
        if lim is None:
            cfg = self.config
            lim = {
                "max_turns": st.max_turns,
                "context_tokens": cfg.context_tokens,
                "max_tool_calls_per_message": cfg.tool_calls_per_message,
                "max_subagents_per_call": cfg.max_subagents_per_call if st.can_delegate else 0,
                "max_action_chars": cfg.max_action_chars,
            }
            self._limits_cache[key] = lim
        return lim

    def _info(self, st: _Agent) -> dict[str, Any]:
        acting = st.status == "acting" and not self._done
        return {
            "acting": acting,
            "role": st.role,
            "parent": st.parent,
            "depth": st.depth,
            "turn": st.turn + 1 if acting else st.turn,
            "max_turns": st.max_turns,
            "status": st.status,
            "messages": copy.deepcopy(st.new) if acting else [],
            "tools": json.loads(self._schemas_json(st)),  # fresh objects: callers may keep or edit infos
            "context_tokens": st.tokens,
            "limits": dict(self._limits(st)),
        }

    def _schemas_json(self, st: _Agent) -> str:
        key = (st.role, st.can_delegate)
        text = self._schemas_cache.get(key)
        if text is None:
            text = self._schemas_cache[key] = json.dumps(st.schemas, ensure_ascii=False)
        return text

    def _emit(self, end: tuple[str, bool] | None):
        agents = list(self.agents)
        obs: dict[str, Any] = {}
        infos: dict[str, Any] = {}
        rewards = dict.fromkeys(agents, 0.0)
        terms = dict.fromkeys(agents, False)
        truncs = dict.fromkeys(agents, False)
        if end is not None:
            answer, truncated = end
            self._done = True
            reward, metrics = self._finish_episode(answer, truncated)
            for a in agents:
                st = self._state[a]
                if st.status in ("acting", "waiting"):
                    st.status = "done"
            for a in agents:
                st = self._state[a]
                obs[a] = {"text": ""}
                info = self._info(st)
                info["metrics"] = copy.deepcopy(metrics)
                infos[a] = info
                rewards[a] = reward
                terms[a] = not truncated
                truncs[a] = truncated
                st.new = []
            self.agents = []
        else:
            for a in agents:
                st = self._state[a]
                obs[a] = self._observation(st)
                infos[a] = self._info(st)
            for a in agents:
                self._state[a].new = []
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terms, truncs, infos

    def _finish_episode(self, answer: str, truncated: bool) -> tuple[float, dict[str, Any]]:
        self.answer = answer
        task = self.task
        record = EpisodeRecord(
            task_id=task.id,
            answer=answer,
            truncated=truncated,
            agents={a: st.record for a, st in self._state.items()},
            config=self.config,
        )
        for a, st in self._state.items():
            st.record.context_tokens = st.tokens
        try:
            from wideseek_env.evaluation import score_answer

            record.score = score_answer(task, answer, judge=self.judge, compat=self.config.scoring_compat)
        except Exception as exc:  # noqa: BLE001 - scoring must not take the env down
            record.scoring_error = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"scoring the answer of task {task.id!r} failed: {record.scoring_error}")
        reward = float(self.reward_fn(task, answer, record))
        if not math.isfinite(reward):
            reward = 0.0
        self._transcript.append(f"=== episode {'truncated' if truncated else 'done'}: reward {reward:.4f} ===")
        metrics = self._metrics(record, reward)
        self.last_metrics = metrics
        self.last_record = record
        return reward, metrics

    def _metrics(self, record: EpisodeRecord, reward: float) -> dict[str, Any]:
        score = record.score
        names = ("item_precision", "item_recall", "item_f1", "row_precision", "row_recall", "row_f1")
        m: dict[str, Any] = {n: float(getattr(score, n, 0.0) or 0.0) for n in names}
        m["success"] = float(getattr(score, "success", 0.0) or 0.0)
        tool_calls: Counter = Counter()
        for r in record.agents.values():
            tool_calls.update(r.tool_calls)
        subs = record.subagents
        root = record.agents.get(LEAD) or record.agents.get(SINGLE)
        m.update(
            reward=reward,
            truncated=record.truncated,
            answer=record.answer,
            answer_parsed=answer_parsed(self.task, record.answer),
            task_id=record.task_id,
            lead_turns=root.turns if root else 0,
            total_turns=sum(r.turns for r in record.agents.values()),
            tool_calls=dict(sorted(tool_calls.items())),
            invalid_calls=sum(r.invalid_calls for r in record.agents.values()),
            subagents_spawned=len(subs),
            subagent_failures=sum(1 for r in subs if r.failed),
            subagent_failures_turns=sum(1 for r in subs if r.failure == "turns"),
            subagent_failures_context=sum(1 for r in subs if r.failure == "context"),
            max_depth_reached=max((r.depth for r in record.agents.values()), default=0),
            longest_turn_tokens=record.longest_turn_tokens,
            failure=root.failure if root else None,
            scoring_error=record.scoring_error,
        )
        return m

    # ------------------------------------------------------------------ render / close

    def _log(self, st: _Agent, kind: str, text: str) -> None:
        self._transcript.append(f"[{st.id} turn {st.turn}] {_short(text)}")

    def _log_tool(self, st: _Agent, name: str, text: str) -> None:
        self._transcript.append(f"[{st.id} <- {name}] {_short(text)}")

    def transcript(self) -> str:
        """The whole readable transcript of the current episode."""
        return "\n".join(self._transcript)

    def render(self) -> str | None:
        """"human": print what happened since the last ``render()``; "ansi": return it as a string."""
        if self.render_mode is None:
            warnings.warn("render() called without a render_mode; pass render_mode='human' or 'ansi'")
            return None
        text = "\n".join(self._transcript[self._rendered:])
        self._rendered = len(self._transcript)
        if self.render_mode == "human":
            if text:
                print(text)
            return None
        return text

    def close(self) -> None:
        if self._owns_retriever and self.retriever is not None:
            try:
                self.retriever.close()
            finally:
                self.retriever = None
                self._owns_retriever = False

    def __str__(self) -> str:
        return "wideseek_v0"


def _short(text: str, limit: int = 600) -> str:
    text = text.strip()
    if len(text) > limit:
        return text[:limit] + f" ... [{len(text) - limit} more chars]"
    return text
