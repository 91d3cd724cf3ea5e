"""TeacherPolicy: the privileged demonstrator. **IT READS THE TASK'S PROVENANCE: NOT A BASELINE.**

It shows that a generated task is solvable with the env's own tools within the env's limits, how much
width that takes, and produces demonstrations for supervised warm starts. Privilege and honesty:

- it reads the task's ``provenance`` (which pages hold the source tables, which entity pages hold the
  attributes, the search text that finds each page, the passage every gold cell comes from), found by
  matching the query it receives against the task list (as :class:`~agents.baselines.OracleAgent`);
- it acts only through real tool calls: the lead starts subagents (``call_subagent``, at most ``k``
  per call, ``k`` = ``max_subagents`` or the schema's per-call limit, 10 by default), each subagent
  searches for its pages and accesses them (at most 5 URLs per ``access`` call); in single-agent
  mode the one agent does all of it itself;
- it answers only with what the tool results showed: a gold cell is written only if its value
  occurs in the text returned for the page its provenance names (a count only if every row it
  counts was returned; an edition label only if its page was returned); a row is written only if
  its key cells were, and, where the row's membership depends on a linked page (filters, wide
  tasks), only if that page's values were; every other cell is left empty.

Width: the lead first sends ``pages_per_subagent`` table pages to each subagent, then
``entities_per_subagent`` entity pages to each, ``k`` subagents per turn, keeping its last turn for
the answer; so with ``k`` subagents it reads about ``k * entities_per_subagent`` entity pages per
turn. The single agent has one context (32k tokens by default) for every page; it stops reading
when the next batch might not fit and answers with what it has.
"""

from __future__ import annotations

import re
from typing import Any, Generator, Iterable, Mapping
from urllib.parse import unquote

from agents.baselines.answers import render_answer
from agents.baselines.env_messages import _TURN_HINT, _report_blocks, parse_access_result
from agents.baselines.generator_agent import AgentGen as _Gen
from agents.baselines.generator_agent import GeneratorAgent, GeneratorPolicy, approx_tokens
from agents.policy import AgentRequest
from wideseek_env.table.preprocess import norm_str

SUBTASK_HEAD = "Read these Wikipedia pages and copy, word for word, the lines that answer the main task:"
_LINE = re.compile(r"^- (https?://\S+)(?: \(find it by searching: “(.+)”\))?$", re.MULTILINE)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _squash(text: str) -> str:
    return " ".join(text.split())


def _around(passage: str, value: str, before: int = 60, after: int = 20) -> str:
    """The part of ``passage`` around the first occurrence of ``value`` (all of it if absent)."""
    at = passage.find(value)
    if at < 0:
        return passage
    return passage[max(0, at - before): at + len(value) + after].strip()


def _title_of(url: str) -> str:
    return unquote(url.rsplit("/wiki/", 1)[-1]).replace("_", " ")


class Recipe:
    """What the provenance of one task says to read (see the module docstring)."""

    def __init__(self, task: Any) -> None:
        prov = task.provenance or {}
        passages = prov.get("passages", [])
        self.cells = [[passages[i] for i in row] for row in prov.get("cells", [])]
        self.rows_read = prov.get("rows")
        n_tables = len(prov.get("tables", []))
        self.table_pages = _unique(prov.get("pages", [])[:n_tables])
        self.entity_pages = _unique(
            src[0] for row in self.cells for src in row if len(src) == 2 and src[0] not in self.table_pages
        )
        searches = prov.get("searches") or {}
        self.searches = {url: searches.get(url) or _title_of(url) for url in self.table_pages}
        # What a subagent copies back per page: a table row whole, an entity's sentence only around
        # the value (the lead's context must hold hundreds of them).
        self.needed: dict[str, list[str]] = {}
        for gold, row in zip(task.gold_rows(), self.cells):
            for value, src in zip(gold, row):
                if len(src) == 2 and src[0] not in self.table_pages:
                    self.needed.setdefault(src[0], []).append(_around(src[1], value))
                elif len(src) == 2 or src[2] != "page title slot":
                    self.needed.setdefault(src[0], []).append(src[1])
        for read in self.rows_read or []:
            for url, line in read:
                self.needed.setdefault(url, []).append(line)
        self.needed = {u: _unique(p) for u, p in self.needed.items()}
        # Filters read the entity's page: a row is in the answer only once that page was read.
        self.membership_from_entities = "attribute" in prov
        self.section = str(prov.get("section", ""))
        self.task = task

    def info(self, url: str) -> str:
        """``info_to_extract`` for a page: the section and the start of what must be read."""
        parts = [self.section] + [p[:80] for p in self.needed.get(url, [])[:3]]
        return _squash(" ".join(p for p in parts if p))[:300] or "the facts the main task asks for"

    def answer(self, seen: Mapping[str, str], titles: set[str]) -> str:
        """The answer built from what was seen (``seen[url]``: text the tools returned for url)."""
        task = self.task
        norm = {url: norm_str(text) for url, text in seen.items()}
        key_pos = [task.required_columns.index(c) for c in task.unique_columns]
        rows = []
        for r, (gold, sources) in enumerate(zip(task.gold_rows(), self.cells)):
            out = []
            for value, src in zip(gold, sources):
                url, passage = src[0], src[1]
                derived = src[2] if len(src) > 2 else None
                if derived == "page title slot":
                    ok = url in titles
                elif derived:
                    read = self.rows_read[r] if self.rows_read else [[url, passage]]
                    ok = all(norm_str(line) in norm.get(u, "") for u, line in read)
                else:
                    ok = bool(norm_str(value)) and norm_str(value) in norm.get(url, "")
                out.append(value if ok else "")
            entity_cells = [c for c, src in enumerate(sources) if len(src) == 2 and src[0] not in self.table_pages]
            if all(out[k] for k in key_pos) and not (
                self.membership_from_entities and not all(out[c] for c in entity_cells)
            ):
                rows.append(out)
        return render_answer(list(task.display_columns or task.required_columns), rows)


class _Agent(GeneratorAgent):
    """One demonstrator agent of one episode: a generator of assistant texts."""

    def __init__(self, policy: "TeacherPolicy", role: str, messages: list[dict], tools: list[dict]) -> None:
        super().__init__(role, policy.max_turns[role], messages, tools)
        self.policy = policy
        self.per_call = self.per_call_limit
        query, subtask = self.split_subtask()
        self.query, self.subtask = query, subtask or ""
        self.recipe = policy.recipe_for(self.query)
        self.observed: dict[bool, list[int]] = {}

    def run(self) -> _Gen:
        if self.recipe is None:
            return "I do not know this task." if self.role == "subagent" else render_answer(["answer"], [])
        if self.role == "lead":
            return (yield from self.run_lead())
        if self.role == "subagent":
            return (yield from self.run_subagent())
        return (yield from self.run_single())

    # -- reading pages (subagent and single agent) ---------------------------------------------

    def read(self, urls: list[str], searches: Mapping[str, str], budget: bool) -> Generator[str, list, tuple]:
        """Search (where a search text is given), then access ``urls`` in batches; with ``budget``,
        stop before a batch that might not fit the context. Returns (seen text per url, titles)."""
        seen: dict[str, str] = {}
        titles: set[str] = set()
        queries = _unique(q for u, q in searches.items() if q and u in urls)
        pol = self.policy
        if queries and self.turn < self.max_turns:
            calls = [("search", {"queries": [{"query": q, "count": 5} for q in queries[i:i + 5]]})
                     for i in range(0, len(queries), 5)][: pol.max_calls_per_message]
            yield from self.call(calls)
        per_message = pol.max_urls_per_call * pol.max_calls_per_message
        i = 0
        while i < len(urls) and self.turn < self.max_turns:
            batch = urls[i:i + (pol.max_urls_per_call if budget else per_message)]
            cost = sum(self.page_cost(u in searches) for u in batch)
            if budget and self.tokens + cost + self.answer_cost() + pol.context_margin > pol.context_tokens:
                break
            calls = [("access", {"urls": [{"url": u, "info_to_extract": self.recipe.info(u)} for u in batch[j:j + pol.max_urls_per_call]]})
                     for j in range(0, len(batch), pol.max_urls_per_call)]
            results = yield from self.call(calls)
            for text in results:
                for page in parse_access_result(text):
                    if page.content is not None:
                        seen[page.url] = seen.get(page.url, "") + "\n" + page.content
                        titles.add(page.url)
                        self.observed.setdefault(page.url in searches, []).append(approx_tokens(page.content) + 30)
            i += len(batch)
        return seen, titles

    def page_cost(self, table_page: bool) -> int:
        """Tokens the next page of this kind is expected to add: the mean of those read so far,
        else :meth:`TeacherPolicy.page_cost`."""
        seen = self.observed.get(table_page)
        return int(sum(seen) / len(seen)) + 1 if seen else self.policy.page_cost(table_page)

    def answer_cost(self) -> int:
        task = self.recipe.task
        return approx_tokens(task.gold_markdown()) + 16 if self.role != "subagent" else 0

    def run_subagent(self) -> _Gen:
        lines = _LINE.findall(self.subtask)
        urls = [u for u, _ in lines]
        searches = {u: q for u, q in lines if q}
        seen, titles = yield from self.read(urls, searches, budget=True)
        report = []
        for url in urls:
            if url not in titles:
                continue
            text = _squash(seen[url])
            found = [p for p in self.recipe.needed.get(url, []) if _squash(p) in text]
            report.append(f"## {url}\n" + "\n".join(found))
        return "\n\n".join(report) if report else "None of the pages could be read."

    def run_single(self) -> _Gen:
        recipe = self.recipe
        urls = recipe.table_pages + recipe.entity_pages
        seen, titles = yield from self.read(urls, recipe.searches, budget=True)
        return recipe.answer(seen, titles)

    # -- the lead -------------------------------------------------------------------------------

    def run_lead(self) -> _Gen:
        recipe, pol = self.recipe, self.policy
        k = max(1, min(self.per_call, pol.max_subagents or self.per_call))
        prompts = []
        for group, size in ((recipe.table_pages, pol.pages_per_subagent), (recipe.entity_pages, pol.entities_per_subagent)):
            for i in range(0, len(group), size):
                lines = []
                for url in group[i:i + size]:
                    search = recipe.searches.get(url)
                    lines.append(f"- {url}" + (f" (find it by searching: “{search}”)" if search else ""))
                prompts.append(SUBTASK_HEAD + "\n" + "\n".join(lines))
        seen: dict[str, str] = {}
        titles: set[str] = set()
        i = 0
        while i < len(prompts) and self.max_turns - self.turn >= 1:
            batch = prompts[i:i + k]
            results = yield from self.call([("call_subagent", {"sub_agents": [{"prompt": p} for p in batch]})])
            for report in _report_blocks(results[0] if results else ""):
                for block in re.split(r"^## ", report, flags=re.MULTILINE)[1:]:
                    url, _, body = block.partition("\n")
                    url = url.strip()
                    seen[url] = seen.get(url, "") + "\n" + body
                    titles.add(url)
            i += len(batch)
        return recipe.answer(seen, titles)


class TeacherPolicy(GeneratorPolicy):
    """The privileged demonstrator (see the module docstring); **not a baseline**.

    ``tasks``: the tasks it may be given (None: the default generated train and test splits).
    ``max_subagents``: subagents per ``call_subagent`` call (None: the schema's limit, 10);
    ``entities_per_subagent`` / ``pages_per_subagent``: pages one subagent reads; the limits
    (``context_tokens``, turns) are those the env states, defaulting to the paper's.
    """

    def __init__(self, tasks: Iterable[Any] | None = None, *, max_subagents: int | None = None,
                 entities_per_subagent: int = 4, pages_per_subagent: int = 3, context_tokens: int = 32768,
                 context_margin: int = 2048, lead_max_turns: int = 10, subagent_max_turns: int = 20,
                 single_max_turns: int = 50, max_urls_per_call: int = 5, max_calls_per_message: int = 5) -> None:
        if max_subagents is not None and max_subagents < 1:
            raise ValueError(f"max_subagents must be None or >= 1, got {max_subagents}")
        super().__init__()
        if tasks is None:
            tasks = _default_tasks()
        self._by_query = {_TURN_HINT.sub("", str(t.query)).strip(): t for t in tasks}
        self._recipes: dict[str, Recipe] = {}
        self.max_subagents = max_subagents
        self.entities_per_subagent = max(1, int(entities_per_subagent))
        self.pages_per_subagent = max(1, int(pages_per_subagent))
        self.context_tokens = context_tokens
        self.context_margin = context_margin
        self.max_turns = {"lead": lead_max_turns, "subagent": subagent_max_turns, "agent": single_max_turns}
        self.max_urls_per_call = max_urls_per_call
        self.max_calls_per_message = max_calls_per_message

    @staticmethod
    def page_cost(table_page: bool) -> int:
        """Tokens an accessed page is expected to add (a table page is longer than an entity's lead)."""
        return 3000 if table_page else 700

    def recipe_for(self, query: str) -> Recipe | None:
        task = self._by_query.get(query)
        if task is None:
            task = next((t for q, t in self._by_query.items() if q.startswith(query) or query.startswith(q)), None)
        if task is None or not task.provenance.get("cells"):
            return None
        if task.id not in self._recipes:
            self._recipes[task.id] = Recipe(task)
        return self._recipes[task.id]

    def new_agent(self, role: str, req: AgentRequest, messages: list[dict]) -> _Agent:
        return _Agent(self, role, messages, list(req.tools or []))


def _default_tasks() -> list[Any]:
    from wideseek_env.paths import default_tasks_dir
    from wideseek_env.tasks import load_tasks

    out = default_tasks_dir()
    return [t for split in ("train", "test") if (out / f"{split}.jsonl").exists() for t in load_tasks(out / f"{split}.jsonl")]
