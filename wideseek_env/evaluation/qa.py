"""Scoring of QA tasks (``task.kind == "qa"``): one answer string against accepted gold answers.

The answer is the content of the last ``\\boxed{...}`` (braces balanced), else the text after the
last ``</think>``, stripped. It is judged against every gold answer with the task's ``answer``
column spec (``llm_judge``: the judge's ``judge_column``; any other metric: that metric), and the
best score counts. All precision/recall/F1 fields of the returned score equal that value.
"""

from __future__ import annotations

from wideseek_env.evaluation.judges import Judge
from wideseek_env.evaluation.metrics import score_cell
from wideseek_env.evaluation.table_score import TableScore
from wideseek_env.table.markdown import to_text
from wideseek_env.table.preprocess import preprocess
from wideseek_env.table.schema import Task


def extract_final_answer(response: str | bytes | None) -> str:
    """The last ``\\boxed{...}`` content, else the text after the last ``</think>``."""
    text = to_text(response)
    start = text.rfind("\\boxed{")
    if start >= 0:
        depth, i = 0, start + len("\\boxed")
        for j in range(i, len(text)):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    return text[i + 1 : j].strip()
    return text.rsplit("</think>", 1)[-1].strip()


def score_qa(task: Task, response: str | bytes | None, judge: Judge, compat: str) -> TableScore:
    column = task.required_columns[0]
    spec = task.columns[column]
    answer = extract_final_answer(response)
    golds = [row[column] for row in task.gold]
    if not answer or not golds:
        return TableScore(
            n_gold_rows=1, compat=compat, error="empty answer" if golds else "no gold answer"
        )
    pre_answer = preprocess(answer, spec.preprocess, compat)
    pre_golds = [preprocess(g, spec.preprocess, compat) for g in golds]
    if spec.metric == "llm_judge":
        scores = judge.judge_column(spec, spec.criterion, [(pre_answer, g) for g in pre_golds])
    else:
        scores = [
            score_cell(spec.metric, pre_answer, g, spec.effective_tolerance, compat) for g in pre_golds
        ]
    best = max((min(max(float(s), 0.0), 1.0) for s in scores), default=0.0)
    return TableScore(
        item_precision=best,
        item_recall=best,
        item_f1=best,
        row_precision=best,
        row_recall=best,
        row_f1=best,
        success=1.0 if best == 1.0 else 0.0,
        n_answer_rows=1,
        n_gold_rows=1,
        n_matched_rows=1,
        n_correct_rows=best,
        columns_ok=True,
        compat=compat,
    )
