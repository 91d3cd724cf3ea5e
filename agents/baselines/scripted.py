"""ScriptedBaseline: the honest rule-based baseline, and the per-agent state machine behind it.

Contract: :class:`ScriptedBaseline` is a :class:`~agents.policy.Policy` (one ``act`` call per env
step for every acting agent); each agent of an episode is an :class:`_AgentState` (a
:class:`~agents.baselines.generator_agent.GeneratorAgent`), a Python generator resumed with the
agent's new messages, that yields assistant texts (Hermes tool calls or a final answer) and never
raises (a failure becomes a final answer saying so).

A rule-based agent team that never reads the gold table, the task object or ``task.provenance``:
only the query text, the tool results and the column names written in the query. Every agent of an
episode keeps its own state (a Python generator per agent, resumed with the agent's new messages).

- **Lead** (multi-agent mode; it has only ``call_subagent``): reads the query (:func:`parse_query`)
  and delegates:

  * *transcribe* ("the “S” table of the Wikipedia page “T”"): one subagent copies the table;
  * *union* ("“X Grand Prix” for X in 1999 and 2005"): one subagent per page;
  * *enrich* (entities plus attributes from their own pages): in "list" mode the query names the
    entities; in "set" mode a first subagent finds the table the query describes and reports its
    rows; then one subagent per entity looks the attributes up (``entities_per_subagent``
    entities each), at most ``k`` subagents per lead turn, where ``k`` is the smaller of
    ``max_subagents`` and the per-call limit the ``call_subagent`` schema states. The lead keeps its
    last turn for the answer, so with ``k`` subagents per turn it can look up about
    ``k * (lead turns - 1)`` entities: the width that more subagents buy. Entities it had no turn
    for are still listed (the query names them), with empty attribute cells;
  * anything else (WideSearch questions): one subagent researches the whole question.

  It then assembles one markdown table with exactly the columns the query names, in a
  ```` ```markdown ```` block.
- **Subagent**: parses its subtask (the formats the lead writes, see
  :mod:`agents.baselines.prompts`), searches, accesses pages (tables are read from the accessed page
  text: the corpus renders Wikipedia tables as markdown under ``## section`` headings), extracts
  attributes with simple patterns (:func:`extract_attribute`), and reports a small markdown table.
  A subtask in any other wording (a person playing the lead, see ``wideseek play``) gets a generic
  search-and-read report.
- **Single agent** (``EnvConfig.single_agent()``): does the same work itself with search + access,
  five queries or URLs per call, and answers before its turn limit or its context budget runs out
  (it counts its context with the env's default token estimate).

Honesty: the only task knowledge is what the query says (:mod:`agents.baselines.query`). The
attribute patterns (:mod:`agents.baselines.attributes`) are written independently of the task
generator's extractors.
"""

from __future__ import annotations

import re
from typing import Generator

from agents.baselines.answers import _answer_from_reports, render_answer
from agents.baselines.attributes import attribute_key
from agents.baselines.env_messages import _report_blocks
from agents.baselines.generator_agent import AgentGen as _Gen
from agents.baselines.generator_agent import GeneratorAgent, GeneratorPolicy
from agents.baselines.prompts import (
    ENTITY_PROMPT,
    ENTITY_SUBTASK,
    FIND_TABLE_PROMPT,
    FIND_TABLE_SUBTASK,
    GENERIC_PROMPT,
    TRANSCRIBE_PROMPT,
    TRANSCRIBE_SUBTASK,
    _section_from_phrase,
    _split_cols,
    _table_phrase,
)
from agents.baselines.query import QueryPlan, enrich_key, fill_x, parse_columns, parse_query, reconcile_columns
from agents.baselines.skills import ReadingSkills
from agents.baselines.tables import best_table, map_columns, project, tables_in_text
from agents.policy import AgentRequest
from wideseek_env.table.markdown import extract_table
from wideseek_env.table.schema import normalize_column_name

# ----------------------------------------------------------------------------------------------
# Agents: generators that yield assistant texts and receive the agent's next new messages


class _AgentState(GeneratorAgent, ReadingSkills):
    """One scripted agent of one episode (its plans here; its reading skills in :mod:`agents.baselines.skills`)."""

    def __init__(self, policy: "ScriptedBaseline", role: str, agent_id: str, messages: list[dict], tools: list[dict]):
        super().__init__(role, policy.default_max_turns(role), messages, tools)
        self.policy = policy
        self.agent_id = agent_id
        self.task, self.subtask = self.split_subtask()
        self.max_per_call = self.per_call_limit

    def context_left(self) -> int:
        return self.policy.context_tokens - self.tokens

    def on_error(self, exc: Exception) -> str:  # never crash the episode
        return self.fallback_answer(f"(the scripted agent failed: {type(exc).__name__})")

    def run(self) -> _Gen:
        if self.role == "lead":
            return (yield from self.run_lead())
        return (yield from self.run_worker())

    def fallback_answer(self, note: str) -> str:
        if self.role == "subagent":
            return f"I could not complete the subtask. {note}"
        cols = parse_columns(self.task) or ["answer"]
        return render_answer(cols, [], note)

    # -- the lead -----------------------------------------------------------------------------

    def delegate(self, prompts: list[str]) -> Generator[str, list, list[str | None]]:
        """Run subtasks, ``k`` per turn, while turns remain (the last turn is kept for the answer).
        Returns one report per prompt (None: not run or failed)."""
        k = max(1, min(self.max_per_call, self.policy.max_subagents or self.max_per_call))
        reports: list[str | None] = [None] * len(prompts)
        i = 0
        while i < len(prompts) and self.turns_left() >= 1:
            batch = prompts[i:i + k]
            results = yield from self.call([("call_subagent", {"sub_agents": [{"prompt": p} for p in batch]})])
            blocks = _report_blocks(results[0] if results else "")
            for j, rep in enumerate(blocks[: len(batch)]):
                if rep and not rep.startswith("The subagent failed"):
                    reports[i + j] = rep
            i += len(batch)
        return reports

    def run_lead(self) -> _Gen:
        plan = parse_query(self.task)
        cols = plan.columns or ["answer"]
        if plan.kind == "transcribe":
            prompt = TRANSCRIBE_PROMPT.format(
                title=plan.title, table=_table_phrase(plan.section), columns=", ".join(cols)
            )
            reports = yield from self.delegate([prompt])
            return _answer_from_reports(cols, reports)
        if plan.kind == "union":
            src = plan.source_column or cols[0]
            page_cols = [c for c in cols if c != src]
            prompts = [
                TRANSCRIBE_PROMPT.format(
                    title=fill_x(plan.template, v) or v,
                    table=_table_phrase(fill_x(plan.section, v)), columns=", ".join(page_cols),
                )
                for v in plan.values
            ]
            reports = yield from self.delegate(prompts)
            headers: list[str] = []
            tables = []
            for v, rep in zip(plan.values, reports):
                t = extract_table(rep) if rep else None
                if t is not None and t.rows:
                    headers.extend(t.header)
                    tables.append((v, t))
            final_cols = reconcile_columns(cols, headers)
            rows = []
            for v, t in tables:
                mapped = map_columns(final_cols, t.header)
                for r in t.rows:
                    rows.append([
                        v if normalize_column_name(c) == normalize_column_name(src)
                        else (r[m] if m is not None and m < len(r) else "")
                        for c, m in zip(final_cols, mapped)
                    ])
            return render_answer(final_cols, rows)
        if plan.kind == "enrich":
            return (yield from self.lead_enrich(plan))
        reports = yield from self.delegate([GENERIC_PROMPT.format(columns=", ".join(cols))])
        return _answer_from_reports(cols, reports)

    def lead_enrich(self, plan: QueryPlan) -> _Gen:
        key = enrich_key(plan)
        cols = plan.columns
        attrs = [c for c in cols if attribute_key(c)]
        entities = list(plan.entities)
        table_values: dict[str, dict[str, str]] = {}
        if plan.mode == "set" or not entities:
            find_cols = [key] + list(plan.table_columns)
            prompt = FIND_TABLE_PROMPT.format(
                topic=plan.topic or "the subject of the main task", table=_table_phrase(plan.section),
                noun=plan.noun or "the entities", columns=", ".join(find_cols),
            )
            reports = yield from self.delegate([prompt])
            t = extract_table(reports[0]) if reports[0] else None
            if t is not None:
                mapped = map_columns(find_cols, t.header)
                for r in t.rows:
                    vals = [(r[m] if m is not None and m < len(r) else "") for m in mapped]
                    if vals[0] and vals[0] not in table_values:
                        entities.append(vals[0])
                        table_values[vals[0]] = dict(zip(find_cols, vals))
        per = max(1, self.policy.entities_per_subagent)
        groups = [entities[i:i + per] for i in range(0, len(entities), per)]
        context = f" ({plan.context})" if plan.context else ""
        prompts = [
            ENTITY_PROMPT.format(
                noun=plan.noun or "entities", context=context, names="; ".join(f"“{n}”" for n in g),
                attributes=", ".join(attrs), columns=", ".join([key] + attrs), key=key,
            )
            for g in groups
        ]
        reports: list[str | None] = []
        if prompts and attrs:
            reports = yield from self.delegate(prompts)
        found: dict[str, dict[str, str]] = {}
        for rep in reports:
            t = extract_table(rep) if rep else None
            if t is None:
                continue
            mapped = map_columns([key] + attrs, t.header)
            for r in t.rows:
                vals = [(r[m] if m is not None and m < len(r) else "") for m in mapped]
                if vals[0]:
                    found[vals[0]] = dict(zip([key] + attrs, vals))
        rows = []
        for name in entities:
            vals = {**table_values.get(name, {}), **{k: v for k, v in found.get(name, {}).items() if v}}
            rows.append([name if c == key else vals.get(c, "") for c in cols])
        return render_answer(cols, rows)

    # -- workers (subagents and the single agent) ---------------------------------------------

    def run_worker(self) -> _Gen:
        spec = self.subtask if self.subtask is not None else None
        if spec is None:  # the single agent: the query itself
            return (yield from self.single_agent())
        m = TRANSCRIBE_SUBTASK.match(spec)
        if m:
            section = _section_from_phrase(m.group(2))
            cols = _split_cols(m.group(3))
            header, rows = yield from self.transcribe(m.group(1), section, cols)
            return render_answer(header, rows) if header else f"I could not find the table on “{m.group(1)}”."
        m = FIND_TABLE_SUBTASK.match(spec)
        if m:
            cols = _split_cols(m.group(4))
            header, rows = yield from self.find_table(m.group(1), _section_from_phrase(m.group(2)), cols)
            return render_answer(header, rows) if header else "I could not find the table."
        m = ENTITY_SUBTASK.match(spec)
        if m:
            names = re.findall(r"“([^”]+)”", m.group(2))
            key, attrs = m.group(5), _split_cols(m.group(3))
            values = yield from self.lookup(names, attrs, context=m.group(1))
            rows = [[n] + [values.get(n, {}).get(a, "") for a in attrs] for n in names]
            return render_answer([key] + attrs, rows)
        cols = parse_columns(spec) or parse_columns(self.task)
        return (yield from self.generic(spec, cols, report=True))

    def single_agent(self) -> _Gen:
        plan = parse_query(self.task)
        cols = plan.columns or ["answer"]
        if plan.kind == "transcribe":
            header, rows = yield from self.transcribe(plan.title or "", plan.section, cols)
            return render_answer(header or cols, rows)
        if plan.kind == "union":
            src = plan.source_column or cols[0]
            page_cols = [c for c in cols if c != src]
            titles = [(v, fill_x(plan.template, v) or v) for v in plan.values]
            pages = yield from self.read_pages([t for _, t in titles], f"{plan.section or ''} table")
            headers: list[str] = []
            found = []
            for (v, _), page in zip(titles, pages):
                if page is None:
                    continue
                t = best_table(tables_in_text(page.content or ""), fill_x(plan.section, v), page_cols)
                if t is not None:
                    headers.extend(t.header)
                    found.append((v, t))
            final_cols = reconcile_columns(cols, headers)
            rows = []
            for v, t in found:
                tcols, trows = project(t, [c for c in final_cols if c != src])
                for r in trows:
                    d = dict(zip(tcols, r))
                    rows.append([v if c == src else d.get(c, "") for c in final_cols])
            return render_answer(final_cols, rows)
        if plan.kind == "enrich":
            key = enrich_key(plan)
            attrs = [c for c in plan.columns if attribute_key(c)]
            entities = list(plan.entities)
            table_values: dict[str, dict[str, str]] = {}
            if plan.mode == "set" or not entities:
                find_cols = [key] + list(plan.table_columns)
                header, trows = yield from self.find_table(plan.topic or self.task[:200], plan.section, find_cols)
                for r in trows:
                    if r and r[0] and r[0] not in table_values:
                        entities.append(r[0])
                        table_values[r[0]] = dict(zip(find_cols, r))
            values = yield from self.lookup(entities, attrs, context=plan.context or "")
            rows = []
            for name in entities:
                vals = {**table_values.get(name, {}), **{k: v for k, v in values.get(name, {}).items() if v}}
                rows.append([name if c == key else vals.get(c, "") for c in plan.columns])
            return render_answer(plan.columns, rows)
        return (yield from self.generic(self.task, cols, report=False))


# ----------------------------------------------------------------------------------------------
# The policies


class ScriptedBaseline(GeneratorPolicy):
    """The honest rule-based baseline (see the module docstring).

    ``max_subagents``: subagents the lead starts per turn (None: the limit the ``call_subagent`` schema
    states, 10 by default); ``entities_per_subagent``: entities one lookup subagent handles;
    ``context_tokens`` / ``context_margin``: the context budget a worker assumes and the tokens it
    keeps free (it stops calling tools when a call might not fit); ``page_cost`` / ``search_cost``:
    the tokens it expects one accessed page / one search query to add; ``*_max_turns``: turn limits
    assumed until the env's turn hint says otherwise.
    """

    def __init__(
        self,
        max_subagents: int | None = None,
        *,
        entities_per_subagent: int = 1,
        context_tokens: int = 32768,
        context_margin: int = 1024,
        page_cost: int = 2500,
        search_cost: int = 600,
        lead_max_turns: int = 10,
        subagent_max_turns: int = 20,
        single_max_turns: int = 50,
    ) -> None:
        if max_subagents is not None and max_subagents < 1:
            raise ValueError(f"max_subagents must be None or >= 1, got {max_subagents}")
        super().__init__()
        self.max_subagents = max_subagents
        self.entities_per_subagent = max(1, int(entities_per_subagent))
        self.context_tokens = context_tokens
        self.context_margin = context_margin
        self.page_cost = page_cost
        self.search_cost = search_cost
        self._max_turns = {"lead": lead_max_turns, "subagent": subagent_max_turns, "agent": single_max_turns}

    def default_max_turns(self, role: str) -> int:
        return self._max_turns.get(role, self._max_turns["agent"])

    def new_agent(self, role: str, req: AgentRequest, messages: list[dict]) -> _AgentState:
        return _AgentState(self, role, req.agent_id, messages, list(req.tools or []))
