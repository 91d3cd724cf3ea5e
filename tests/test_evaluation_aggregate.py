"""Step 8: Avg@N, Max@N, Pass@N per task, then the mean over tasks, with breakdowns."""

import pytest

from wideseek_env.evaluation.aggregate import aggregate, task_metrics
from wideseek_env.evaluation.table_score import TableScore


def sample(item_f1, row_f1, success=0.0):
    return TableScore(item_f1=item_f1, row_f1=row_f1, success=success)


def test_task_metrics_avg_max_pass():
    m = task_metrics([sample(0.2, 0.0), sample(0.6, 0.5), sample(1.0, 1.0, 1.0), sample(0.2, 0.1)])
    assert m["n_samples"] == 4
    assert m["item_f1_avg"] == pytest.approx((0.2 + 0.6 + 1.0 + 0.2) / 4)  # 0.5
    assert m["item_f1_max"] == 1.0
    assert m["row_f1_avg"] == pytest.approx((0.0 + 0.5 + 1.0 + 0.1) / 4)  # 0.4
    assert m["row_f1_max"] == 1.0
    assert m["success_avg"] == pytest.approx(0.25)
    assert m["success_pass"] == 1.0


def test_task_without_samples_scores_zero():
    m = task_metrics([])
    assert m["n_samples"] == 0 and m["item_f1_avg"] == 0.0 and m["success_pass"] == 0.0


def test_mean_over_tasks_and_breakdowns():
    samples = {
        "a": [sample(0.5, 0.2), sample(0.7, 0.4)],  # avg 0.6 / max 0.7; rows avg 0.3 / max 0.4
        "b": [sample(1.0, 1.0, 1.0)],  # avg = max = 1; success 1
        "c": [],  # no response: all 0
    }
    summary = aggregate(
        samples,
        kinds={"a": "enrich", "b": "enrich", "c": "union"},
        languages={"a": "en", "b": "zh", "c": "en"},
    )
    assert summary["n_tasks"] == 3
    assert summary["item_f1_avg"] == pytest.approx((0.6 + 1.0 + 0.0) / 3)
    assert summary["item_f1_max"] == pytest.approx((0.7 + 1.0 + 0.0) / 3)
    assert summary["row_f1_avg"] == pytest.approx((0.3 + 1.0 + 0.0) / 3)
    assert summary["row_f1_max"] == pytest.approx((0.4 + 1.0 + 0.0) / 3)
    assert summary["success_avg"] == pytest.approx(1 / 3)
    assert summary["success_pass"] == pytest.approx(1 / 3)
    assert (summary["n_samples_min"], summary["n_samples_max"]) == (0, 2)
    assert summary["by_kind"]["enrich"]["item_f1_avg"] == pytest.approx(0.8)
    assert summary["by_kind"]["union"]["item_f1_avg"] == 0.0
    assert summary["by_language"]["en"]["n_tasks"] == 2
