"""Judges: the two steps WideSearch hands to an LLM, behind one small protocol.

- ``align_keys(response_keys, gold_keys, column) -> {response_key: gold_key}`` (step 4, and step 2
  for column names): which answer values name the same entity as which gold values. Values are the
  cast cells (before preprocessing); keys absent from the mapping stay as they are.
- ``judge_column(column, criterion, pairs) -> [score, ...]`` (step 6 for ``llm_judge`` columns):
  one score in [0, 1] per ``(response, gold)`` pair of cells of one column: preprocessed cells in
  widesearch mode (as the official scorer sends them), cleaned but not preprocessed cells in
  default mode (``norm_str`` would delete the spaces between words).

Judges here:

:class:`DeterministicJudge` (``"deterministic"``, the default): no model, reproducible.
  Alignment, in passes over the values still unaligned (pass 1 may map several answer values to
  one gold value, since they are equal after preprocessing anyway; passes 2-4 are one-to-one):
  1. equal after the column's preprocess (default mode) and lower-casing;
  2. equal *loose forms*: Unicode NFKD without accents, case-folded, ``<br>`` and ``&`` read as a
     space and "and", thousands separators dropped, then only letters and digits kept (each CJK
     character is a token);
  3. equal token multisets (word order ignored: "Oxford University" = "University of Oxford" is
     *not* matched since "of" is a token, but "Smith John" = "John Smith" is);
  4. fuzzy: ``difflib`` ratio >= 0.9 between loose forms of at least 6 characters with identical
     digit sequences (so "Shin-Hanul-1" never matches "Shin-Hanul-2"), best pairs first; skipped when
     more than 40,000 pairs remain, to stay fast on huge tables.
  ``judge_column`` scores 1 when the loose token lists are equal, or when the shorter one (at least
  2 characters) occurs as a contiguous run of tokens in the longer one ("Nolan" vs "Christopher
  Nolan"; "Action" vs "Action, Sci-Fi"); cells with no letters or digits must be equal after
  ``norm_str``. The criterion text is not read.

:class:`ExactJudge` (``"exact"``): the strict, reproducible baseline. Aligns values only when equal
  after the column's preprocess; scores ``llm_judge`` cells as ``exact_match`` after ``norm_str``.

:class:`~wideseek_env.evaluation.llm_judge.LLMJudge`: WideSearch-style prompts to any
  text-in/text-out callable, with safe fallbacks.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol, runtime_checkable

from wideseek_env.errors import WideseekError
from wideseek_env.table.preprocess import norm_str, preprocess
from wideseek_env.table.schema import ColumnSpec

# The spec used when aligning column names (step 2) rather than cell values.
COLUMN_NAMES = ColumnSpec(name="<column names>", preprocess="norm_str", metric="exact_match")

_FUZZY_THRESHOLD = 0.9
_FUZZY_MIN_LENGTH = 6
_FUZZY_MAX_PAIRS = 40_000
_THOUSANDS_RE = re.compile(r"(?<=\d)[,_'](?=\d{3}(?!\d))")
_DIGITS_RE = re.compile(r"\d+")
_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)


@runtime_checkable
class Judge(Protocol):
    """What the scorer needs from a judge (see the module docstring for the contracts)."""

    name: str

    def align_keys(
        self, response_keys: Sequence[str], gold_keys: Sequence[str], column: ColumnSpec
    ) -> dict[str, str]: ...

    def judge_column(
        self, column: ColumnSpec, criterion: str | None, pairs: Sequence[tuple[str, str]]
    ) -> list[float]: ...


# ------------------------------------------------------------------------------- normalisation


# CJK ideographs, kana and hangul (jamo after NFKD): one token per character, since Chinese and
# Japanese do not space words.
_CJK = "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f"
_TOKEN_RE = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")
_COMBINING_RE = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


@lru_cache(maxsize=1 << 16)
def loose_tokens(text: str) -> tuple[str, ...]:
    """Letters-and-digits tokens of ``text`` without accents or case; CJK characters one each.

    Cached (gold cells are judged again at every sample of a task)."""
    s = _BR_RE.sub(" ", text) if "<" in text else text
    if not s.isascii():
        # NFKD splits accents off (and folds full-width forms); the combining marks are dropped.
        s = _COMBINING_RE.sub("", unicodedata.normalize("NFKD", s))
    s = s.casefold().replace("&", " and ")
    s = _THOUSANDS_RE.sub("", s)
    return tuple(_TOKEN_RE.findall(s))


def _contains_run(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    n = len(shorter)
    first = shorter[0]
    for i in range(len(longer) - n + 1):
        if longer[i] == first and longer[i : i + n] == shorter:
            return True
    return False


def loose_equal_or_contained(response: str, gold: str) -> bool:
    """The deterministic judge's cell rule (module docstring)."""
    if response == gold:
        return True
    r, g = loose_tokens(str(response)), loose_tokens(str(gold))
    if not r or not g:
        return not r and not g and norm_str(response) == norm_str(gold)
    if r == g or "".join(r) == "".join(g):
        return True
    shorter, longer = (r, g) if len(r) <= len(g) else (g, r)
    if len("".join(shorter)) < 2:
        return False
    return _contains_run(longer, shorter)


# ------------------------------------------------------------------------------------- judges


def exact_pass(
    response_keys: Sequence[str], gold_keys: Sequence[str], column: ColumnSpec
) -> dict[str, str]:
    """Values equal after the column's preprocess (many answer values may map to one gold value).

    The first alignment pass of every judge here and of
    :class:`~wideseek_env.evaluation.llm_judge.LLMJudge`."""
    first_gold: dict[str, str] = {}
    for g in gold_keys:
        first_gold.setdefault(preprocess(g, column.preprocess).lower(), g)
    mapping: dict[str, str] = {}
    for r in response_keys:
        target = first_gold.get(preprocess(r, column.preprocess).lower())
        if target is not None:
            mapping[r] = target
    return mapping


def exact_pass_and_rest(
    response_keys: Sequence[str], gold_keys: Sequence[str], column: ColumnSpec
) -> tuple[dict[str, str], list[str], list[str]]:
    """``(mapping, left_r, left_g)``: :func:`exact_pass`, then the distinct response keys it left
    unmapped and the distinct gold keys nothing maps to, in first-seen order (what a judge's later
    passes try to align)."""
    mapping = exact_pass(response_keys, gold_keys, column)
    used = set(mapping.values())
    left_r = [r for r in dict.fromkeys(response_keys) if r not in mapping]
    left_g = [g for g in dict.fromkeys(gold_keys) if g not in used]
    return mapping, left_r, left_g


class ExactJudge:
    """Equality after preprocessing, for both alignment and ``llm_judge`` cells."""

    name = "exact"

    def align_keys(
        self, response_keys: Sequence[str], gold_keys: Sequence[str], column: ColumnSpec
    ) -> dict[str, str]:
        return exact_pass(response_keys, gold_keys, column)

    def judge_column(
        self, column: ColumnSpec, criterion: str | None, pairs: Sequence[tuple[str, str]]
    ) -> list[float]:
        return [1.0 if norm_str(r) == norm_str(g) else 0.0 for r, g in pairs]


class DeterministicJudge:
    """Model-free alignment and cell judging with light normalisation (module docstring)."""

    name = "deterministic"

    def __init__(
        self,
        fuzzy_threshold: float = _FUZZY_THRESHOLD,
        fuzzy_max_pairs: int = _FUZZY_MAX_PAIRS,
    ) -> None:
        self.fuzzy_threshold = fuzzy_threshold
        self.fuzzy_max_pairs = fuzzy_max_pairs

    def align_keys(
        self, response_keys: Sequence[str], gold_keys: Sequence[str], column: ColumnSpec
    ) -> dict[str, str]:
        mapping, left_r, left_g = exact_pass_and_rest(response_keys, gold_keys, column)
        if not left_r or not left_g:
            return mapping
        tokens = {v: loose_tokens(v) for v in (*left_r, *left_g)}
        for form in (lambda v: "".join(tokens[v]), lambda v: tuple(sorted(tokens[v]))):
            left_r, left_g = self._unique_form_pass(left_r, left_g, form, mapping)
            if not left_r or not left_g:
                return mapping
        if len(left_r) * len(left_g) <= self.fuzzy_max_pairs:
            self._fuzzy_pass(left_r, left_g, tokens, mapping)
        return mapping

    @staticmethod
    def _unique_form_pass(left_r, left_g, form, mapping):
        by_form: dict[object, list[str]] = {}
        for g in left_g:
            key = form(g)
            if key:
                by_form.setdefault(key, []).append(g)
        taken: set[str] = set()
        still_r = []
        for r in left_r:
            candidates = [g for g in by_form.get(form(r), ()) if g not in taken] if form(r) else []
            if candidates:
                mapping[r] = candidates[0]
                taken.add(candidates[0])
            else:
                still_r.append(r)
        return still_r, [g for g in left_g if g not in taken]

    def _fuzzy_pass(self, left_r, left_g, tokens, mapping) -> None:
        loose = {v: "".join(tokens[v]) for v in (*left_r, *left_g)}
        digits = {v: _DIGITS_RE.findall(loose[v]) for v in loose}
        scored = []
        for r in left_r:
            a = loose[r]
            if len(a) < _FUZZY_MIN_LENGTH:
                continue
            matcher = difflib.SequenceMatcher(None, a, autojunk=False)
            for g in left_g:
                b = loose[g]
                if len(b) < _FUZZY_MIN_LENGTH or digits[r] != digits[g]:
                    continue
                if 2 * min(len(a), len(b)) / (len(a) + len(b)) < self.fuzzy_threshold:
                    continue  # the length ratio bounds the similarity ratio
                matcher.set_seq2(b)
                if (
                    matcher.real_quick_ratio() < self.fuzzy_threshold
                    or matcher.quick_ratio() < self.fuzzy_threshold
                ):
                    continue
                ratio = matcher.ratio()
                if ratio >= self.fuzzy_threshold:
                    scored.append((-ratio, r, g))
        taken_r: set[str] = set()
        taken_g: set[str] = set()
        for _, r, g in sorted(scored):
            if r not in taken_r and g not in taken_g:
                mapping[r] = g
                taken_r.add(r)
                taken_g.add(g)

    def judge_column(
        self, column: ColumnSpec, criterion: str | None, pairs: Sequence[tuple[str, str]]
    ) -> list[float]:
        return [1.0 if loose_equal_or_contained(r, g) else 0.0 for r, g in pairs]


JUDGES = {"deterministic": DeterministicJudge, "exact": ExactJudge}


def get_judge(judge: str | Judge | None = None) -> Judge:
    """A judge from its name (``"deterministic"``, ``"exact"``) or the judge itself; ``None`` is the
    default :class:`DeterministicJudge`."""
    if judge is None:
        return DeterministicJudge()
    if isinstance(judge, str):
        try:
            return JUDGES[judge]()
        except KeyError:
            raise WideseekError(
                f"unknown judge {judge!r}; choose one of {', '.join(sorted(JUDGES))} "
                "(or pass an LLMJudge object from Python)"
            ) from None
    if not isinstance(judge, Judge):
        raise WideseekError(f"{judge!r} is not a judge (it needs align_keys and judge_column)")
    return judge

