"""An LLM judge over any text-in/text-out callable (a policy, an OpenAI client wrapper, a stub).

Prompts follow WideSearch's two LLM steps (REFERENCE.md section 2): aligning two vocabularies
(answer key values to gold key values, or answer column names to required names), and grading one
column's ``(response, target)`` pairs against the column's criterion. Replies are asked for as a
fenced JSON object; the last JSON object in the reply is used.

Safety rules, so that a bad reply can never crash scoring or invent matches:

- values equal after preprocessing are aligned without asking (WideSearch's prompt demands it);
- an alignment is kept only if its origin is an unaligned answer value and its target an unaligned
  gold value; with ``one_to_one=True`` (default) a gold value is used once;
- a grade is kept only if it is 0/1 (or true/false, "0"/"1"); pairs the reply does not grade, and
  every pair when the call raises or the reply does not parse, are graded by ``fallback``
  (default :class:`~wideseek_env.evaluation.judges.DeterministicJudge`; ``None`` scores them 0 as the
  official scorer does). ``failures`` counts such replies.
- columns with more than ``batch_size`` pairs are graded in several calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

from wideseek_env.evaluation.judges import DeterministicJudge, Judge, exact_pass_and_rest
from wideseek_env.table.schema import ColumnSpec

ALIGN_PROMPT = """You align two vocabularies. Each value in the list to align should be matched to the value of the reference list that names the same entity, if there is one: the two strings may differ in spelling, format, abbreviation, language or markdown decoration, but must mean the same thing. Identical strings always correspond. Do not match by position, and do not match values that merely look alike.

Values to align ({what}):
{response}

Reference values:
{reference}

Reply with one JSON object in a ```json fenced block, mapping each value to align that has a counterpart (copied exactly as given) to its reference value (copied exactly as given). Leave out values with no counterpart.
```json
{{"value to align": "reference value"}}
```"""

GRADE_PROMPT = """You grade answers against reference answers. Each item below has an id, a response and a target (the reference). Score each item 1 if the response is correct for the target under the criterion, else 0; scores are integers 0 or 1 only.

Criterion:
{criterion}

Items:
{items}

First reason briefly item by item, then give every score in one JSON object in a ```json fenced block, keyed by item id:
```json
{{"idx_0": 1, "idx_1": 0}}
```"""

_FENCED_JSON_RE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def parse_json_object(reply: str) -> dict | None:
    """The last JSON object of a reply: a fenced block if any, else the last balanced ``{...}``."""
    if not isinstance(reply, str):
        return None
    candidates = _FENCED_JSON_RE.findall(reply)
    if not candidates:
        end = reply.rfind("}")
        depth = 0
        for i in range(end, -1, -1):
            if reply[i] == "}":
                depth += 1
            elif reply[i] == "{":
                depth -= 1
                if depth == 0:
                    candidates = [reply[i : end + 1]]
                    break
    for text in reversed(candidates):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


def _grade(value: object) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and value in (0, 1):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return 1.0 if value.strip().lower() in ("1", "true") else 0.0
    return None


class LLMJudge:
    """A :class:`~wideseek_env.evaluation.judges.Judge` that asks ``complete(prompt) -> reply``."""

    name = "llm"

    def __init__(
        self,
        complete: Callable[[str], str],
        *,
        fallback: Judge | None = None,
        use_fallback: bool = True,
        one_to_one: bool = True,
        batch_size: int = 50,
    ) -> None:
        self.complete = complete
        self.fallback: Judge | None = (fallback or DeterministicJudge()) if use_fallback else None
        self.one_to_one = one_to_one
        self.batch_size = max(1, int(batch_size))
        self.failures = 0
        self.calls = 0

    def _ask(self, prompt: str) -> dict | None:
        self.calls += 1
        try:
            reply = self.complete(prompt)
        except Exception:  # a judge outage must not stop scoring; counted instead
            self.failures += 1
            return None
        parsed = parse_json_object(reply)
        if parsed is None:
            self.failures += 1
        return parsed

    def align_keys(
        self, response_keys: Sequence[str], gold_keys: Sequence[str], column: ColumnSpec
    ) -> dict[str, str]:
        mapping, left_r, left_g = exact_pass_and_rest(response_keys, gold_keys, column)
        if not left_r or not left_g:
            return mapping
        what = "column names" if column.name.startswith("<") else f"values of column {column.name!r}"
        reply = self._ask(
            ALIGN_PROMPT.format(
                what=what,
                response=json.dumps(left_r, ensure_ascii=False),
                reference=json.dumps(left_g, ensure_ascii=False),
            )
        )
        if reply is None:
            return mapping
        allowed_r, allowed_g = set(left_r), set(left_g)
        taken: set[str] = set()
        for origin, target in reply.items():
            if origin not in allowed_r or not isinstance(target, str) or target not in allowed_g:
                continue
            if self.one_to_one and target in taken:
                continue
            mapping[origin] = target
            taken.add(target)
        return mapping

    def judge_column(
        self, column: ColumnSpec, criterion: str | None, pairs: Sequence[tuple[str, str]]
    ) -> list[float]:
        scores: list[float | None] = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            items = {f"idx_{i}": {"response": r, "target": g} for i, (r, g) in enumerate(chunk)}
            reply = self._ask(
                GRADE_PROMPT.format(
                    criterion=criterion or "The response must mean the same as the target.",
                    items=json.dumps(items, ensure_ascii=False, indent=1),
                )
            )
            for i in range(len(chunk)):
                scores.append(_grade(reply.get(f"idx_{i}")) if reply is not None else None)
        missing = [i for i, s in enumerate(scores) if s is None]
        if missing:
            filled = [0.0] * len(missing)
            if self.fallback is not None:
                fallback = self.fallback.judge_column(column, criterion, [pairs[i] for i in missing])
                if len(fallback) == len(missing):
                    filled = list(fallback)
            for i, s in zip(missing, filled, strict=True):
                scores[i] = s
        return [float(s) for s in scores]  # type: ignore[arg-type]
