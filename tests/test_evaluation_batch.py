"""score_files and the `wideseek score` command on a few WideSearch tasks."""

import json

import pytest

from wideseek_env.cli import main
from wideseek_env.errors import WideseekError
from wideseek_env.evaluation.batch import score_files
from wideseek_env.paths import shared_data_dir
from wideseek_env.tasks import load_tasks, save_tasks

IDS = ["ws_en_001", "ws_en_002", "ws_zh_001"]


@pytest.fixture(scope="module")
def few_tasks(tmp_path_factory):
    """Three WideSearch tasks saved in our own format (so the test reads a small file)."""
    try:
        source = shared_data_dir() / "widesearch" / "widesearch.jsonl"
    except WideseekError:
        pytest.skip("shared WideSearch data not found")
    if not source.exists():
        pytest.skip("shared WideSearch data not found")
    tasks = [t for t in load_tasks(source) if t.id in IDS]
    path = tmp_path_factory.mktemp("tasks") / "few.jsonl"
    save_tasks(tasks, path)
    return path, {t.id: t for t in tasks}


def write_responses(path, pairs):
    path.write_text(
        "\n".join(json.dumps({"instance_id": i, "response": r}, ensure_ascii=False) for i, r in pairs)
        + "\n"
    )
    return path


def test_cli_score_gold_and_garbage_samples(few_tasks, tmp_path, capsys):
    tasks_path, tasks = few_tasks
    responses = write_responses(
        tmp_path / "responses.jsonl",
        [
            ("ws_en_001", tasks["ws_en_001"].gold_markdown()),
            ("ws_en_001", "no table"),
            ("ws_zh_001", tasks["ws_zh_001"].gold_markdown()),
            # ws_en_002 has no response: it counts as 0.
        ],
    )
    out = tmp_path / "scores.jsonl"
    assert (
        main(["score", "--tasks", str(tasks_path), "--responses", str(responses), "--out", str(out)])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    # Per task: en_001 avg (1 + 0)/2, max 1, pass 1; zh_001 all 1; en_002 all 0.
    assert summary["n_tasks"] == 3 and summary["n_responses"] == 3
    assert summary["n_tasks_without_response"] == 1
    assert summary["item_f1_avg"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert summary["item_f1_max"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    assert summary["success_avg"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert summary["success_pass"] == pytest.approx(2 / 3)
    assert summary["by_language"]["zh"]["item_f1_avg"] == 1.0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["instance_id"] for line in lines] == IDS
    assert (
        lines[0]["n_samples"] == 2
        and lines[0]["samples"][1]["error"] == "no markdown table in the answer"
    )
    assert lines[1]["n_samples"] == 0
    assert json.loads((tmp_path / "scores.summary.json").read_text())["n_tasks"] == 3


def test_cli_widesearch_mode_and_exact_judge(few_tasks, tmp_path, capsys):
    tasks_path, tasks = few_tasks
    responses = write_responses(
        tmp_path / "r.jsonl", [("ws_zh_001", tasks["ws_zh_001"].gold_markdown())]
    )
    args = [
        "score",
        "--tasks",
        str(tasks_path),
        "--responses",
        str(responses),
        "--out",
        str(tmp_path / "s.jsonl"),
    ]
    assert main(args + ["--compat", "widesearch", "--judge", "exact"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["compat"] == "widesearch" and summary["judge"] == "exact"
    assert summary["success_pass"] == pytest.approx(1 / 3)


def test_unknown_instance_ids_are_an_error_listing_them(few_tasks, tmp_path, capsys):
    tasks_path, _ = few_tasks
    responses = write_responses(tmp_path / "r.jsonl", [("ws_en_999", "x"), ("zz", "y")])
    args = [
        "score",
        "--tasks",
        str(tasks_path),
        "--responses",
        str(responses),
        "--out",
        str(tmp_path / "s.jsonl"),
    ]
    assert main(args) == 2
    assert "2 response instance id(s) not in" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="ws_en_999, zz"):
        summary = score_files(
            load_tasks(tasks_path), responses, tmp_path / "s.jsonl", on_unknown="skip"
        )
    assert summary["n_unknown_responses_skipped"] == 2 and summary["item_f1_avg"] == 0.0


def test_malformed_responses_file_names_the_line(few_tasks, tmp_path):
    tasks_path, _ = few_tasks
    bad = tmp_path / "r.jsonl"
    bad.write_text('{"instance_id": "ws_en_001", "response": "x"}\n{oops\n')
    with pytest.raises(WideseekError, match=r"r.jsonl:2: invalid JSON"):
        score_files(load_tasks(tasks_path), bad, tmp_path / "s.jsonl")


def test_a_task_path_instead_of_the_tasks_is_an_error_saying_to_load_it(few_tasks, tmp_path):
    tasks_path, _ = few_tasks
    responses = write_responses(tmp_path / "r.jsonl", [("ws_en_001", "x")])
    with pytest.raises(TypeError, match=r"score_files\(load_tasks\("):
        score_files(str(tasks_path), responses, tmp_path / "s.jsonl")
