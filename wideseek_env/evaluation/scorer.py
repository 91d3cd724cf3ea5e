"""Score one answer against one task: WideSearch's procedure (REFERENCE.md section 2), step by step.

``score_answer(task, response, judge=None, compat="default") -> TableScore``. It never raises on the
answer's content: text without a table, garbage, undecodable bytes and ``None`` all score 0 with
``error`` saying why.

The steps (each module named does one):

1. extract the table (:mod:`wideseek_env.table.markdown`);
2. map the header to the required columns: normalised names first, the judge's ``align_keys`` for
   the rest;
3. cast cells to strings (:mod:`wideseek_env.table.cells`) and, in widesearch mode, drop rows
   with a duplicate key (keep the first) in both tables;
4. align key values of ``exact_match``/``llm_judge`` key columns with the judge's ``align_keys``;
5. preprocess every column (:mod:`wideseek_env.table.preprocess`);
6. inner-join answer rows to gold rows on the key columns; key cells score 1, other cells by their
   metric (:mod:`.metrics`) or, for ``llm_judge``, the judge's ``judge_column`` (scores clamped to
   [0, 1]; a judge returning the wrong number of scores gives 0s);
7. a row is correct iff all its cells are (row score = min of cell scores);
   item precision = sum of cell scores / (answer rows x required columns), item recall = the same
   over gold rows; row precision/recall likewise from correct rows; F1 = harmonic mean, 0 when
   p + r <= 1e-9. ``success`` is 1 only if all six values are exactly 1.

``compat="widesearch"`` reproduces the official scorer (ByteDance-Seed/WideSearch
``src/evaluation/``), quirks included, for numbers comparable with published ones. It follows the
official code step by step: its extractor; pandas itself to read the answer table
(``read_csv(sep="|")``) and the gold CSV and to cast cells (``astype(str)``: ``19`` in an int
column vs ``19.0`` in a float or text column fail ``exact_match``, since the official int/float
reconciliation tests ``dtype is float`` and never fires; NA strings read "nan"; a field that starts
with ``"`` loses its quotes) and ``dateparser`` for ``norm_date``/``date_near``
(:mod:`.official`, :mod:`wideseek_env.table.official_dates`; the ``[widesearch]`` extra, an
ImportError naming it when missing); a header
mismatch after mapping (an extra, a missing or a duplicated column) -> every score 0; duplicate keys
dropped on the raw cells before alignment and preprocessing, so two answer rows whose keys differ
only in case or markup, or that the judge maps to one gold key, both join that gold row and recall
can exceed 1; ``date_near`` of two non-dates and ``url_match`` of two URL-less cells score 1; no
slack in ``number_near``; ``success`` is also 1 when the preprocessed tables are equal and no key
column was aligned (the official early check, which the alignment step otherwise defeats).

Parity: ``tests/test_evaluation_parity.py`` scores the 12 kinds of perturbed answers to the 200
tasks in ``shared/data/widesearch/parity/`` with a judge that behaves like the official run's
stand-in and equals the official item F1, row F1 and success on all 2,378 answers where the
official code did not crash. Remaining deviations:

- where the official code raises, it reports an evaluator error (all scores 0); compat mode scores
  the answer instead (it never raises on an answer). In the recorded parity run that was
  ws_en_012 and ws_zh_085 for 11 of the 12 kinds; the official code run here on those 22 answers
  (pandas 2.3, dateparser 1.5) did not raise and gave the scores compat mode gives;
- a table pandas cannot read (a row with several more fields than the header): compat mode gives
  error "table does not parse", the official code an evaluator error; both score 0;
- ``dateparser`` fills a date without a month (a bare year) with the current month, so a
  ``date_near`` between a bare year and a full date can depend on the day of scoring, in both;
- the LLM calls (column and key alignment, ``llm_judge``) are the judge's: only a judge that
  answers like the official prompts on the official model makes those steps equal.

``compat="default"`` fixes those quirks; every difference:

- extraction: any fenced block (not only ```` ```markdown ````), escaped pipes, ``<br>``, tables
  after ``</think>`` preferred, ragged rows padded or truncated instead of a parse failure;
- columns: names compared after NFKC and without ``*``/backticks; an **extra column is ignored**;
  a **missing required column scores 0 for its cells only** (rows can still match on the other
  columns but cannot be correct); a missing *key* column makes the table unjoinable: all scores 0;
  a repeated column: the first occurrence counts;
- cells: cleaned alike on both sides (:func:`wideseek_env.table.cells.clean_cell`): emphasis
  removed, ``19.0`` read as ``19``, no pandas typing, empty cells stay empty;
- preprocessing: ``norm_str`` folds Unicode (NFKC) and removes every kind of whitespace;
  ``extract_number`` gives canonical numbers (so number keys join across notations);
  ``llm_judge`` cells go to the judge as cleaned text, not preprocessed (``norm_str`` deletes the
  spaces a judge needs to see words: "christophernolan");
- **one-to-one rows**: duplicate keys are dropped (keep first) *after* alignment and preprocessing,
  in both tables, so each gold row is matched by at most one answer row and precision, recall and
  F1 never exceed 1;
- metrics: ``number_near`` has a 1e-9 relative slack; ``date_near`` of two non-dates and
  ``url_match`` of two URL-less cells need equal ``norm_str`` forms; URL hosts ignore ``www.``;
- ``success`` only from the six values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wideseek_env.evaluation import official
from wideseek_env.evaluation.judges import COLUMN_NAMES, Judge, get_judge
from wideseek_env.evaluation.metrics import score_cell
from wideseek_env.evaluation.qa import score_qa
from wideseek_env.evaluation.table_score import TableScore, f1
from wideseek_env.table.cells import clean_cell
from wideseek_env.table.markdown import extract_table, extract_table_widesearch
from wideseek_env.table.preprocess import norm_str, preprocess
from wideseek_env.table.schema import Task, normalize_column_name

COMPAT_MODES = ("default", "widesearch")
_ALIGNED_METRICS = ("exact_match", "llm_judge")


def score_answer(
    task: Task,
    response: str | bytes | None,
    *,
    judge: Judge | str | None = None,
    compat: str = "default",
) -> TableScore:
    """Score ``response`` (the agent's final answer) against ``task`` (module docstring)."""
    if compat not in COMPAT_MODES:
        raise ValueError(f"compat must be one of {COMPAT_MODES}, got {compat!r}")
    judge = get_judge(judge)
    if task.kind == "qa":
        return score_qa(task, response, judge, compat)
    reader = _read_widesearch if compat == "widesearch" else _read_default
    read = reader(task, response, judge)
    if isinstance(read, TableScore):
        return read
    return _score_rows(task, read, judge, compat)


# ------------------------------------------------------------------------ steps 1-3, per mode


@dataclass
class _Read:
    """Cast answer and gold rows (dicts over the answer's present required columns)."""

    answer: list[dict[str, str]]
    gold: list[dict[str, str]]
    present: list[str]
    missing: list[str]
    extra: list[str]
    n_ragged: int = 0


def _fail(task: Task, compat: str, error: str, **diagnostics) -> TableScore:
    return TableScore(n_gold_rows=len(task.gold), compat=compat, error=error, **diagnostics)


def _column_key(name: str) -> str:
    return norm_str(normalize_column_name(name)).replace("`", "")


def _map_columns_default(header: list[str], task: Task, judge: Judge) -> dict[int, str]:
    """Answer column index -> required column, one-to-one; first occurrence of a name wins."""
    by_key: dict[str, str] = {}
    for col in task.required_columns:
        by_key.setdefault(_column_key(col), col)
    mapping: dict[int, str] = {}
    taken: set[str] = set()
    for i, name in enumerate(header):
        col = by_key.get(_column_key(name))
        if col is not None and col not in taken:
            mapping[i] = col
            taken.add(col)
    left_names = {header[i]: i for i in range(len(header)) if i not in mapping and header[i]}
    left_cols = [c for c in task.required_columns if c not in taken]
    if left_names and left_cols:
        aligned = judge.align_keys(list(left_names), left_cols, COLUMN_NAMES)
        for name, col in aligned.items():
            if name in left_names and col in left_cols and col not in taken:
                mapping[left_names[name]] = col
                taken.add(col)
    return mapping


def _read_default(task: Task, response, judge: Judge) -> _Read | TableScore:
    table = extract_table(response)
    if table is None:
        return _fail(task, "default", "no markdown table in the answer")
    mapping = _map_columns_default(table.header, task, judge)
    present = [c for c in task.required_columns if c in mapping.values()]
    missing = [c for c in task.required_columns if c not in mapping.values()]
    extra = [table.header[i] for i in range(len(table.header)) if i not in mapping]
    missing_keys = [c for c in task.unique_columns if c in missing]
    if missing_keys:
        return _fail(
            task,
            "default",
            f"key column(s) {missing_keys} missing from the answer's header {table.header}",
            n_answer_rows=len(table.rows),
            n_ragged_rows=table.n_ragged,
            missing_columns=missing,
            extra_columns=extra,
        )
    answer = [{col: clean_cell(row[i]) for i, col in mapping.items()} for row in table.rows]
    gold = [{col: clean_cell(row[col]) for col in present} for row in task.gold]
    return _Read(answer, gold, present, missing, extra, table.n_ragged)


def _read_widesearch(task: Task, response, judge: Judge) -> _Read | TableScore:
    fields = extract_table_widesearch(response)
    if not fields:
        return _fail(task, "widesearch", "no markdown table in the answer")
    try:
        frame = official.answer_frame(fields)
    except official.OfficialParseError as exc:
        return _fail(task, "widesearch", f"table does not parse: {exc}")
    names = list(frame.columns)
    required = task.required_columns
    if set(names) != set(required):
        left_names = [n for n in names if n not in required]
        left_cols = [c for c in required if c not in names]
        if left_names and left_cols:
            aligned = judge.align_keys(left_names, left_cols, COLUMN_NAMES)
            names = [aligned.get(n, n) if n in left_names else n for n in names]
    if set(names) != set(required) or len(names) != len(set(names)):
        return _fail(
            task,
            "widesearch",
            f"answer columns {names} != required columns {required}",
            n_answer_rows=len(frame),
            missing_columns=[c for c in required if c not in names],
            extra_columns=[n for n in names if n not in required],
        )
    frame.columns = names
    gold_frame = official.gold_frame(task.gold, required)
    answer_cols = {col: official.as_strings(frame, col) for col in required}
    gold_cols = {col: official.as_strings(gold_frame, col) for col in required}
    answer = [{c: answer_cols[c][i] for c in required} for i in range(len(frame))]
    gold = [{c: gold_cols[c][i] for c in required} for i in range(len(gold_frame))]
    # Official order: duplicate keys are dropped on the cast strings, before alignment.
    keys = task.unique_columns
    return _Read(_dedupe(answer, keys), _dedupe(gold, keys), list(required), [], [])


def _dedupe(rows: list[dict[str, str]], keys: Sequence[str]) -> list[dict[str, str]]:
    return [rows[i] for i in _first_of_each_key(rows, keys)]


# ------------------------------------------------------------------------------- steps 4-7


def _score_rows(task: Task, read: _Read, judge: Judge, compat: str) -> TableScore:
    keys = task.unique_columns
    answer, gold = read.answer, read.gold

    # Step 4: align key values, answer -> gold, per key column that a judge may align.
    aligned_any = False
    for col in keys:
        spec = task.columns[col]
        if spec.metric not in _ALIGNED_METRICS:
            continue
        aligned_any = True
        mapping = judge.align_keys(
            list(dict.fromkeys(r[col] for r in answer)), list(dict.fromkeys(g[col] for g in gold)), spec
        )
        if mapping:
            for row in answer:
                row[col] = mapping.get(row[col], row[col])

    # Step 5: preprocess both tables (into new rows: default mode judges llm_judge cells on the
    # cleaned text, whose word boundaries norm_str would delete).
    answer_pre, gold_pre = _preprocess_rows(task, read.present, answer, gold, compat)
    if compat == "default":
        keep_a, keep_g = _first_of_each_key(answer_pre, keys), _first_of_each_key(gold_pre, keys)
        answer, answer_pre = [answer[i] for i in keep_a], [answer_pre[i] for i in keep_a]
        gold, gold_pre = [gold[j] for j in keep_g], [gold_pre[j] for j in keep_g]
        judged = (answer, gold)
    else:
        judged = (answer_pre, gold_pre)

    n_cols = len(task.required_columns)
    n_answer, n_gold = len(answer), len(gold)

    # Step 6: inner join on the key columns; one pair per (answer row, gold row) with equal keys.
    gold_index: dict[tuple[str, ...], list[int]] = {}
    for j, row in enumerate(gold_pre):
        gold_index.setdefault(tuple(row[k] for k in keys), []).append(j)
    pairs = [
        (i, j)
        for i, row in enumerate(answer_pre)
        for j in gold_index.get(tuple(row[k] for k in keys), ())
    ]

    row_scores = [1.0] * len(pairs)
    column_totals: dict[str, float] = {}
    for col in task.required_columns:
        cells = _column_scores(task, col, read, (answer_pre, gold_pre), judged, pairs, judge, compat)
        column_totals[col] = sum(cells)
        for p, s in enumerate(cells):
            if s < row_scores[p]:
                row_scores[p] = s

    # Step 7: precision, recall, F1, success.
    tp_item = sum(column_totals.values())
    tp_row = sum(row_scores)
    item_p = tp_item / (n_answer * n_cols) if n_answer else 0.0
    item_r = tp_item / (n_gold * n_cols) if n_gold else 0.0
    row_p = tp_row / n_answer if n_answer else 0.0
    row_r = tp_row / n_gold if n_gold else 0.0
    score = TableScore(
        item_precision=item_p,
        item_recall=item_r,
        item_f1=f1(item_p, item_r),
        row_precision=row_p,
        row_recall=row_r,
        row_f1=f1(row_p, row_r),
        n_answer_rows=n_answer,
        n_gold_rows=n_gold,
        n_matched_rows=len(pairs),
        n_correct_rows=tp_row,
        n_ragged_rows=read.n_ragged,
        columns_ok=not read.missing and not read.extra,
        missing_columns=read.missing,
        extra_columns=read.extra,
        column_recall={c: (t / n_gold if n_gold else 0.0) for c, t in column_totals.items()},
        compat=compat,
    )
    values = (
        score.item_precision,
        score.item_recall,
        score.item_f1,
        score.row_precision,
        score.row_recall,
        score.row_f1,
    )
    perfect = all(v == 1.0 for v in values)
    if compat == "widesearch" and not aligned_any and not perfect:
        perfect = _same_table(answer_pre, gold_pre, task.required_columns)
    score.success = 1.0 if perfect else 0.0
    return score


def _column_scores(task, col, read, compared, judged, pairs, judge, compat) -> list[float]:
    """One column's cell scores over the joined pairs (``compared``: preprocessed rows;
    ``judged``: the rows whose text an llm_judge column is judged on)."""
    if col in task.unique_columns:
        return [1.0] * len(pairs)
    if col not in read.present:
        return [0.0] * len(pairs)
    spec = task.columns[col]
    if spec.metric == "llm_judge":
        if not pairs:
            return []
        answer, gold = judged
        scores = judge.judge_column(
            spec, spec.criterion, [(answer[i][col], gold[j][col]) for i, j in pairs]
        )
        if len(scores) != len(pairs):
            return [0.0] * len(pairs)
        return [min(max(float(s), 0.0), 1.0) for s in scores]
    answer, gold = compared
    tolerance = spec.effective_tolerance
    return [score_cell(spec.metric, answer[i][col], gold[j][col], tolerance, compat) for i, j in pairs]


def _preprocess_rows(task, present, answer, gold, compat):
    """New rows with every present column preprocessed (each distinct value computed once)."""
    functions = [(col, task.columns[col].preprocess) for col in present]
    caches: dict[str, dict[str, str]] = {col: {} for col in present}

    def convert(row: dict[str, str]) -> dict[str, str]:
        out = dict(row)
        for col, name in functions:
            if name is None:
                continue
            value, cache = row[col], caches[col]
            if value not in cache:
                cache[value] = preprocess(value, name, compat)
            out[col] = cache[value]
        return out

    return [convert(r) for r in answer], [convert(g) for g in gold]


def _first_of_each_key(rows: list[dict[str, str]], keys: Sequence[str]) -> list[int]:
    seen: set[tuple[str, ...]] = set()
    kept = []
    for i, row in enumerate(rows):
        key = tuple(row[k] for k in keys)
        if key not in seen:
            seen.add(key)
            kept.append(i)
    return kept


def _same_table(answer, gold, columns) -> bool:
    if len(answer) != len(gold):
        return False
    as_rows = sorted(tuple(r[c] for c in columns) for r in answer)
    return as_rows == sorted(tuple(r[c] for c in columns) for r in gold)
