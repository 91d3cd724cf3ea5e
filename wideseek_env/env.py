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
    entry lists. With ``EnvConfig.repeat_note``, the tool results of a message that repeats one of the
    agent's earlier messages exactly end with ``prompts.repeat_note(turn)``.

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

Where things live
    The episode records, :func:`default_reward` and the final metrics are in
    :mod:`wideseek_env.episode_record`; ``ToolRequest`` and :func:`execute_tool_requests` in
    :mod:`wideseek_env.tools.requests` (all re-exported here, so ``from wideseek_env.env import ...``
    keeps working); the per-agent state in ``wideseek_env._agent_state`` and what the constructor
    builds (tasks, role tools) in ``wideseek_env._env_setup``. :class:`WideSeekEnv` stays one class
    of about 600 lines on purpose: its step machinery (collect, apply, spawn, group completion,
    failure propagation, emit) reads and writes one per-episode state (agents, groups, pending
    outcomes, transcript), and splitting it into mixins would spread that state over classes that
    cannot be used or tested alone.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from wideseek_env import prompts
from wideseek_env._agent_state import (
    AgentState,
    Group,
    Outcome,
    Slot,
    clean_text,
    coerce_action,
    short_text,
)
from wideseek_env._env_setup import build_role_tools, load_env_tasks
from wideseek_env.config import EnvConfig
from wideseek_env.episode_record import (  # re-exported: these names were defined here before
    LEAD,
    ROLE_LEAD,
    ROLE_SINGLE,
    ROLE_SUB,
    SINGLE,
    AgentRecord,
    EpisodeRecord,
    RewardFn,
    answer_parsed,
    default_reward,
    episode_metrics,
)
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
from wideseek_env.tools.requests import ToolRequest, execute_tool_requests  # re-exported
from wideseek_env.tools.subagent import (
    SUBAGENT_TOOL_NAMES,
    SubagentRequest,
    limit_to_budget,
    parse_subagent_arguments,
)

__all__ = [
    "WideSeekEnv",
    "EpisodeRecord",
    "AgentRecord",
    "ToolRequest",
    "execute_tool_requests",
    "default_reward",
    "answer_parsed",
    "approx_token_count",
]

TokenCounter = Callable[[str], int]


def approx_token_count(text: str) -> int:
    """Default token counter: UTF-8 bytes / 4, rounded up (about 4 characters per English token and
    0.75 tokens per CJK character). Pass ``token_counter=lambda s: len(tok.encode(s))`` for exact
    counts with a real tokenizer."""
    if not text:
        return 0
    n = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
    return (n + 3) // 4


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

        self._tasks = load_env_tasks(tasks)
        if task_ids is not None:
            ids = list(task_ids)
            for tid in ids:
                self._get_task(tid)
            self._sample_ids = ids
        else:
            self._sample_ids = [t.id for t in self._tasks]
        if not self._sample_ids:
            raise WideseekError("the task set is empty: give a task file with at least one task")

        self._role_tools, self.retriever, self._owns_retriever = build_role_tools(cfg, corpus, tools, summarizer)
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
        self._state: dict[str, AgentState] = {}
        self._groups: list[Group] = []
        self._pending: tuple[list[Outcome], list[ToolRequest]] | None = None
        self._transcript: list[str] = []
        self._rendered = 0
        self._done = True
        self._end: tuple[str, bool] | None = None  # (answer, truncated) once the root finished
        self.task = None
        self.answer: str | None = None
        self.last_metrics: dict[str, Any] | None = None
        self.last_record: EpisodeRecord | None = None

    # ------------------------------------------------------------------ construction helpers

    def _get_task(self, task_id: str) -> Any:
        if not hasattr(self, "_task_index"):
            self._task_index = {t.id: t for t in self._tasks}
        try:
            return self._task_index[task_id]
        except (KeyError, TypeError):
            raise UnknownTaskError(
                f"unknown task id {task_id!r}: not among the {len(self._task_index)} tasks of this env"
            ) from None

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
        self._transcript = [f"=== task {task.id} ===", clean_text(str(task.query))]
        self._rendered = 0
        self._query = self._cap_query(clean_text(str(task.query)))

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

    def _spawn(self, role: str, parent: str | None, depth: int, subtask: str | None) -> AgentState:
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
        st = AgentState(
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

    def _add_message(self, st: AgentState, msg: dict[str, Any], *, new: bool = True) -> None:
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
        outcomes: list[Outcome] = []
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

    def _collect_one(self, st: AgentState, action: Any, requests: list[ToolRequest]) -> Outcome:
        cfg = self.config
        text = clean_text(coerce_action(action))
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
                return Outcome(st.id, "fail", failure="context")
            return Outcome(st.id, "final", answer=answer)

        msg = {"role": "assistant", "content": parsed.content}
        if parsed.reasoning:
            msg["reasoning_content"] = parsed.reasoning
        if parsed.tool_calls:
            msg["tool_calls"] = [c.to_openai() for c in parsed.tool_calls]
        self._add_message(st, msg, new=False)
        st.tokens += turn_tokens - self.token_counter(parsed.content)
        if st.tokens > cfg.context_tokens:
            return Outcome(st.id, "fail", failure="context")
        if st.turn >= st.max_turns:
            return Outcome(st.id, "fail", failure="turns")
        for c in parsed.tool_calls:
            rec.tool_calls[c.name] += 1

        out = Outcome(st.id, "tools")
        st.slots = []
        if cfg.repeat_note:
            signature = json.dumps([[c.name, c.arguments] for c in parsed.tool_calls] + list(parsed.errors),
                                   sort_keys=True, default=str)
            first = st.calls_seen.setdefault(signature, st.turn)
            st.repeat_of = first if first != st.turn else None
        budget = cfg.max_subagents_per_call
        for call in parsed.tool_calls:
            slot = len(st.slots)
            st.slots.append(Slot(call.id, call.name))
            if call.name in SUBAGENT_TOOL_NAMES and st.can_delegate:
                req = parse_subagent_arguments(call.arguments, cfg.max_subagents_per_call)
                req = limit_to_budget(req, budget, cfg.max_subagents_per_call)
                if isinstance(req, SubagentRequest):
                    budget -= len(req.prompts)
                out.spawns.append((slot, req))
            elif call.name in st.tools:
                out.requests.append((slot, len(requests)))
                requests.append(ToolRequest(st.id, call.id, call.name, call.arguments, st.tools[call.name]))
            else:
                st.slots[slot].text = error_text(self._unknown_tool_text(st, call.name))
        for k, err in enumerate(parsed.errors):
            st.slots.append(Slot(f"{st.id}_t{st.turn}_err{k}", "error", error_text(err)))
        if parsed.dropped_calls:
            st.slots.append(
                Slot(
                    f"{st.id}_t{st.turn}_err{len(parsed.errors)}",
                    "error",
                    error_text(
                        f"only the first {cfg.tool_calls_per_message} tool calls of a message are run; "
                        f"{parsed.dropped_calls} more were ignored"
                    ),
                )
            )
        return out

    def _unknown_tool_text(self, st: AgentState, name: str) -> str:
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
                    st.slots[slot].text = clean_text(results[ridx])
                    self._log_tool(st, st.slots[slot].name, st.slots[slot].text)
                st.status = "waiting"
                children: list[AgentState] = []
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

    def _start_group(self, caller: AgentState, slot: int, req: SubagentRequest | str) -> list[AgentState]:
        if isinstance(req, str):
            caller.slots[slot].text = req
            self._log_tool(caller, "call_subagent", req)
            return []
        available = len(self.possible_agents) - 1 - self._next_sub
        prompts_ = [clean_text(p) for p in req.prompts]
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
        group = Group(caller.id, slot, [], prompts_, notes)
        self._groups.append(group)
        caller.open_groups += 1
        children = []
        for p in prompts_:
            child = self._spawn(ROLE_SUB, parent=caller.id, depth=caller.depth + 1, subtask=p)
            child.group = group
            group.children.append(child.id)
            self.agents.append(child.id)
            children.append(child)
            self._transcript.append(f"[{caller.id} -> {child.id}] spawned: {short_text(p)}")
        return children

    def _finish_sub(self, st: AgentState, report: str, failed: str | None) -> None:
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

    def _fail(self, st: AgentState, reason: str | None) -> None:
        """A subagent returns the failure text to its caller; the root agent truncates the episode."""
        st.record.failed = True
        st.record.failure = reason
        self._transcript.append(f"[{st.id} fails: {reason}]")
        if st.role == ROLE_SUB:
            self._finish_sub(st, prompts.SUBAGENT_FAILURE_TEXT, failed=reason or "failed")
            return
        st.status = "failed"
        self._end = ("", True)

    def _deliver(self, st: AgentState) -> None:
        """All results of the agent's message are known: append them as tool messages; it acts next."""
        msgs = []
        for s in st.slots:
            msgs.append({"role": "tool", "tool_call_id": s.call_id, "name": s.name, "content": s.text or ""})
        if msgs and st.repeat_of is not None:
            msgs[-1]["content"] += "\n\n" + prompts.repeat_note(st.repeat_of)
            st.repeat_of = None
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

    def _observation(self, st: AgentState) -> dict[str, str]:
        if st.status != "acting" or not st.new:
            return {"text": ""}
        has_system = any(m.get("role") == "system" for m in st.new)
        text = render_messages(st.new, st.schemas if has_system else None)
        limit = self.config.max_observation_chars
        if len(text) > limit:
            marker = "\n[... observation cut ...]"
            text = text[: limit - len(marker)] + marker
        return {"text": text}

    def _limits(self, st: AgentState) -> dict[str, Any]:
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

    def _info(self, st: AgentState) -> dict[str, Any]:
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

    def _schemas_json(self, st: AgentState) -> str:
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
        metrics = episode_metrics(task, record, reward)
        self.last_metrics = metrics
        self.last_record = record
        return reward, metrics

    # ------------------------------------------------------------------ render / close

    def _log(self, st: AgentState, kind: str, text: str) -> None:
        self._transcript.append(f"[{st.id} turn {st.turn}] {short_text(text)}")

    def _log_tool(self, st: AgentState, name: str, text: str) -> None:
        self._transcript.append(f"[{st.id} <- {name}] {short_text(text)}")

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

