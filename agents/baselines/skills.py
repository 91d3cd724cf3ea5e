"""The scripted agents' reading skills: find and read pages, copy a table, look entities up.

Contract: :class:`ReadingSkills` is a mixin for the scripted agent state
(:class:`agents.baselines.scripted._AgentState`); its methods are generators driven with
``yield from`` inside the agent's own generator. Each yields assistant texts (through the host's
``call``), receives the tool results and returns what it found so far, stopping early (never
raising) when the host's turn or context budget (``can_call``) runs out. The host provides
``call(calls)``, ``turns_left()``, ``context_left()``, ``policy`` (the :class:`ScriptedBaseline`, for
its ``page_cost`` / ``search_cost`` / ``context_margin``) and ``task`` (the agent's subtask text).

Kept apart from the agents' plans (:mod:`agents.baselines.scripted`: what the lead delegates, what a
worker does with its subtask) because these are general page-reading skills, written without
knowledge of the task generator's phrasings.
"""

from __future__ import annotations

import re
from typing import Generator, Iterable, Sequence

from agents.baselines.answers import render_answer
from agents.baselines.attributes import attribute_key, extract_attribute
from agents.baselines.env_messages import _TURN_HINT, AccessedPage, SearchHit, parse_access_result, parse_search_result
from agents.baselines.query import reconcile_columns
from agents.baselines.tables import PageTable, best_table, map_columns, project, section_similarity, tables_in_text
from agents.baselines.text import _norm, _strip_paren

_WIKI = "https://en.wikipedia.org/wiki/"
_Gen = Generator[str, list, str]


def _title_url(title: str) -> str:
    return _WIKI + title.strip().replace(" ", "_")


class ReadingSkills:
    """Building blocks of the scripted agents (see the module docstring)."""

    def can_call(self, cost_tokens: int) -> bool:
        return self.turns_left() >= 1 and self.context_left() - cost_tokens > self.policy.context_margin

    def read_pages(self, titles: list[str], info: str) -> Generator[str, list, list[AccessedPage | None]]:
        """Access pages by title (5 per call); a title not found is searched for once."""
        out: list[AccessedPage | None] = [None] * len(titles)
        todo = list(range(len(titles)))
        for i in range(0, len(todo), 5):
            chunk = todo[i:i + 5]
            if not self.can_call(self.policy.page_cost * len(chunk)):
                break
            res = yield from self.call([("access", {"urls": [{"url": _title_url(titles[j]), "info_to_extract": info} for j in chunk]})])
            pages = parse_access_result(res[0]) if res else []
            for j, page in zip(chunk, pages):
                if page.content is not None:
                    out[j] = page
        missing = [j for j in range(len(titles)) if out[j] is None]
        if missing and self.can_call(self.policy.search_cost * min(5, len(missing))):
            missing = missing[:5]
            res = yield from self.call([("search", {"queries": [{"query": titles[j], "count": 3} for j in missing]})])
            hits = parse_search_result(res[0]) if res else []
            urls = {}
            for q, j in enumerate(missing, 1):
                cands = [h for h in hits if h.query == q]
                best = _best_hit(titles[j], cands, "")
                if best is not None:
                    urls[j] = best.url
            if urls and self.can_call(self.policy.page_cost * len(urls)):
                res = yield from self.call([("access", {"urls": [{"url": u, "info_to_extract": info} for u in urls.values()]})])
                pages = parse_access_result(res[0]) if res else []
                for j, page in zip(urls, pages):
                    if page.content is not None:
                        out[j] = page
        return out

    def transcribe(self, title: str, section: str | None, cols: list[str]) -> Generator[str, list, tuple[list[str], list[list[str]]]]:
        info = f"{section or ''} table: {', '.join(cols)}".strip()
        pages = yield from self.read_pages([title], info)
        page = pages[0]
        if page is None:
            return [], []
        t = best_table(tables_in_text(page.content or "", page.url), section, cols)
        if t is None:
            return [], []
        return project(t, cols)

    def find_table(self, topic: str, section: str | None, cols: list[str]) -> Generator[str, list, tuple[list[str], list[list[str]]]]:
        queries = [f"{topic} {section or ''}".strip(), topic]
        if not self.can_call(self.policy.search_cost * 2):
            return [], []
        res = yield from self.call([("search", {"queries": [{"query": q, "count": 5} for q in dict.fromkeys(queries)]})])
        hits = parse_search_result(res[0]) if res else []
        urls = list(dict.fromkeys(h.url for h in hits))[:5]
        if not urls or not self.can_call(self.policy.page_cost * len(urls)):
            return [], []
        info = f"{section or ''} {' '.join(cols)}".strip()
        res = yield from self.call([("access", {"urls": [{"url": u, "info_to_extract": info} for u in urls]})])
        tables: list[PageTable] = []
        topic_words = set(_norm(topic).split())
        for page in parse_access_result(res[0]) if res else []:
            if page.content is None:
                continue
            for t in tables_in_text(page.content, page.title):
                tables.append(t)
        best, best_score = None, 0.0
        for t in tables:
            mapped = map_columns(reconcile_columns(cols, t.header), t.header)
            hit = sum(m is not None for m in mapped) / max(1, len(mapped))
            if hit == 0 or mapped[0] is None:
                continue
            overlap = len(topic_words & set(_norm(t.page).split())) / max(1, len(topic_words))
            score = 2.0 * section_similarity(section, t.section) + hit + overlap
            if score > best_score:
                best, best_score = t, score
        if best is None:
            return [], []
        return project(best, cols)

    def lookup(self, names: list[str], attr_cols: list[str], context: str) -> Generator[str, list, dict[str, dict[str, str]]]:
        """Find each entity's page (search) and read its attributes (access), 5 entities per call."""
        values: dict[str, dict[str, str]] = {}
        keys = {c: attribute_key(c) for c in attr_cols}
        info = ", ".join(attr_cols)
        ctx_words = set(_norm(context + " " + (self.task[:500] if self.task else "")).split())
        for i in range(0, len(names), 5):
            chunk = names[i:i + 5]
            if not self.can_call(self.policy.search_cost * len(chunk) + self.policy.page_cost * len(chunk)):
                break
            res = yield from self.call([("search", {"queries": [{"query": _strip_paren(n), "count": 3} for n in chunk]})])
            hits = parse_search_result(res[0]) if res else []
            chosen: list[tuple[str, SearchHit]] = []
            for q, name in enumerate(chunk, 1):
                best = _best_hit(name, [h for h in hits if h.query == q], ctx_words)
                if best is not None:
                    chosen.append((name, best))
                    vals = {c: extract_attribute(k, best.snippet) for c, k in keys.items() if k}
                    values[name] = {c: v for c, v in vals.items() if v}
            if not chosen or not self.can_call(self.policy.page_cost * len(chosen)):
                continue
            res = yield from self.call([("access", {"urls": [{"url": h.url, "info_to_extract": info} for _, h in chosen]})])
            pages = parse_access_result(res[0]) if res else []
            for (name, _), page in zip(chosen, pages):
                if page.content is None:
                    continue
                vals = {c: extract_attribute(k, page.content) for c, k in keys.items() if k}
                got = values.setdefault(name, {})
                for c, v in vals.items():
                    if v:
                        got[c] = v
        return values

    def generic(self, question: str, cols: list[str], report: bool) -> _Gen:
        """Search the question's words, read the top pages, report the best-fitting table."""
        text = _TURN_HINT.sub("", question)
        text = re.split(r"(?:Please organize|Please output|Present the results|Output a single|Don't ask me|The column|不要问我|表格中的列名)", text)[0]
        queries = [q for q in dict.fromkeys([text.strip()[:200], " ".join(cols[:4])]) if q.strip()]
        if not queries or not self.can_call(self.policy.search_cost * len(queries)):
            return render_answer(cols, []) if not report else "I found nothing."
        res = yield from self.call([("search", {"queries": [{"query": q, "count": 3} for q in queries]})])
        hits = parse_search_result(res[0]) if res else []
        urls = list(dict.fromkeys(h.url for h in hits))[:3]
        pages: list[AccessedPage] = []
        if urls and self.can_call(self.policy.page_cost * len(urls)):
            res = yield from self.call([("access", {"urls": [{"url": u, "info_to_extract": text[:300]} for u in urls]})])
            pages = [p for p in (parse_access_result(res[0]) if res else []) if p.content is not None]
        tables = [t for p in pages for t in tables_in_text(p.content or "", p.title)]
        t = best_table(tables, None, cols) if cols else None
        if t is not None:
            header, rows = project(t, cols)
            return render_answer(header, rows)
        if report:
            lines = ["I found these pages but no table with the requested columns:"]
            for p in pages:
                lines.append(f"- {p.title} ({p.url}): {(p.content or '')[:500].strip()}")
            for h in hits[:5]:
                lines.append(f"- search hit: {h.title} ({h.url})")
            return "\n".join(lines)
        return render_answer(cols, [])


def _best_hit(name: str, hits: Sequence[SearchHit], context_words: Iterable[str]) -> SearchHit | None:
    """The search hit most likely to be the entity's own page."""
    if not hits:
        return None
    target = _norm(_strip_paren(name))
    full = _norm(name)
    ctx = set(context_words) if not isinstance(context_words, str) else set(_norm(context_words).split())
    best, best_score = None, -1.0
    for h in hits:
        title = _norm(_strip_paren(h.title))
        if title == target or _norm(h.title) == full:
            level = 3.0
        elif target and (f" {target} " in f" {title} " or f" {title} " in f" {target} "):
            level = 2.0
        elif target and target.split()[-1] in title.split():
            level = 1.0
        else:
            level = 0.0
        words = set(_norm(h.snippet[:600]).split())
        overlap = len(words & ctx) / (1 + len(ctx)) if ctx else 0.0
        score = level + overlap - 0.01 * h.rank
        if score > best_score:
            best, best_score = h, score
    return best
