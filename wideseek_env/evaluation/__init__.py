"""WideSearch-compatible evaluation of table answers (REFERENCE.md section 2).

``score_answer(task, response, judge=None, compat="default") -> TableScore`` scores one answer;
``aggregate`` turns samples per task into Avg@N / Max@N / Pass@N; ``batch.score_files`` scores
response files. Judges (``judges``): ``DeterministicJudge`` (default), ``ExactJudge``, ``LLMJudge``.
"""

from wideseek_env.evaluation import judges
from wideseek_env.evaluation.aggregate import aggregate, task_metrics
from wideseek_env.evaluation.judges import DeterministicJudge, ExactJudge, Judge, get_judge
from wideseek_env.evaluation.llm_judge import LLMJudge
from wideseek_env.evaluation.scorer import COMPAT_MODES, score_answer
from wideseek_env.evaluation.table_score import TableScore
from wideseek_env.table.markdown import ParsedTable, extract_table, render_table

__all__ = [
    "COMPAT_MODES",
    "DeterministicJudge",
    "ExactJudge",
    "Judge",
    "LLMJudge",
    "ParsedTable",
    "TableScore",
    "aggregate",
    "extract_table",
    "get_judge",
    "judges",
    "render_table",
    "score_answer",
    "task_metrics",
]
