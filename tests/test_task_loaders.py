"""Task loaders: our JSONL, WideSearch (+ gold CSVs), WideSeek-R1 training JSONL, malformed files."""

import json
import random

import numpy as np
import pytest

from wideseek_env.errors import TaskFormatError, UnknownTaskError, WideseekError
from wideseek_env.paths import shared_data_dir
from wideseek_env.tasks import ColumnSpec, Task, TaskSet, load_tasks, normalize_column_name, save_tasks


def widesearch_file():
    try:
        path = shared_data_dir() / "widesearch" / "widesearch.jsonl"
    except WideseekError:
        pytest.skip("shared WideSearch data not found")
    if not path.exists():
        pytest.skip("shared WideSearch data not found")
    return path


def small_task(task_id="t1") -> Task:
    return Task(
        id=task_id,
        query="List films.",
        language="en",
        required_columns=["film", "year"],
        unique_columns=["film"],
        columns={
            "film": ColumnSpec("film"),
            "year": ColumnSpec("year", "extract_number", "number_near", 0.0),
        },
        gold=[{"film": "Heat", "year": "1995"}],
        display_columns=["Film", "Year"],
        kind="transcribe",
        provenance={"pages": ["https://en.wikipedia.org/wiki/Heat_(1995_film)"]},
    )


# ------------------------------------------------------------------------------------- ours


def test_our_format_round_trips(tmp_path):
    path = tmp_path / "tasks.jsonl"
    assert save_tasks([small_task("t1"), small_task("t2")], path) == 2
    loaded = load_tasks(path)
    assert [t.id for t in loaded] == ["t1", "t2"]
    assert loaded[0] == small_task("t1")
    assert json.loads(path.read_text().splitlines()[0])["format"] == "wideseek-task/1"


def test_gold_markdown_uses_display_names():
    assert (
        small_task().gold_markdown()
        == "```markdown\n| Film | Year |\n| --- | --- |\n| Heat | 1995 |\n```"
    )


def test_normalize_column_name_matches_widesearch():
    assert normalize_column_name("Times Higher Education  World University Rankings 2025") == (
        "timeshighereducationworlduniversityrankings2025"
    )
    assert normalize_column_name("姓名（中文）") == "姓名（中文）"


def test_task_validation_errors():
    with pytest.raises(TaskFormatError, match="not required columns"):
        Task("x", "q", "en", ["a"], ["b"], {"a": ColumnSpec("a")}, [])
    with pytest.raises(TaskFormatError, match="not normalised"):
        Task("x", "q", "en", ["A b"], ["A b"], {"A b": ColumnSpec("A b")}, [])
    with pytest.raises(TaskFormatError, match="unknown metric"):
        ColumnSpec("a", metric="fuzzy")


def test_to_widesearch_evaluation():
    evaluation = small_task().to_widesearch_evaluation()
    assert evaluation["eval_pipeline"]["year"] == {
        "preprocess": ["extract_number"],
        "metric": ["number_near"],
        "criterion": 0.0,
    }


# ------------------------------------------------------------------------------- WideSearch


def test_all_widesearch_tasks_load():
    tasks = load_tasks(widesearch_file())
    assert len(tasks) == 200
    assert sum(t.language == "zh" for t in tasks) == 100
    first = tasks[0]
    assert first.id == "ws_en_001" and first.kind == "widesearch"
    # "Country" is in the CSV but not required: dropped.
    assert "country" not in first.required_columns and len(first.required_columns) == 8
    assert first.unique_columns == ["subject", "university"]
    assert first.columns["homepage"].metric == "url_match"
    assert first.display_columns[4] == "Times Higher Education  World University Rankings 2025"
    # Multi-line quoted cell, stripped.
    assert first.gold[1]["applicationfee"].startswith("Taught courses is £75:")
    assert "\n" in first.gold[1]["applicationfee"]
    zh = next(t for t in tasks if t.id == "ws_zh_001")
    assert zh.columns["本国累计票房收益"].metric == "number_near"
    assert zh.columns["本国累计票房收益"].tolerance == 0.1


def write_widesearch(tmp_path, csv_bytes=None, record=None):
    record = record or {
        "instance_id": "ws_t_1",
        "query": "q",
        "language": "en",
        "evaluation": json.dumps(
            {
                "unique_columns": ["name"],
                "required": ["name", "birthdate"],
                "eval_pipeline": {
                    "name": {"preprocess": ["norm_str"], "metric": ["exact_match"]},
                    "birthdate": {"preprocess": ["norm_date"], "metric": ["date_near"]},
                },
            }
        ),
    }
    path = tmp_path / "widesearch.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    (tmp_path / "gold").mkdir(exist_ok=True)
    if csv_bytes is not None:
        (tmp_path / "gold" / "ws_t_1.csv").write_bytes(csv_bytes)
    return path


def test_widesearch_csv_with_bom_multiline_cell_and_extra_column(tmp_path):
    csv_bytes = '\ufeffName,Extra,Birth Date\r\n"Ann\r\nLee",x,1947-04-29\r\nBob,y,\r\n'.encode("utf-8")
    [task] = load_tasks(write_widesearch(tmp_path, csv_bytes))
    assert task.required_columns == ["name", "birthdate"]
    assert task.display_columns == ["Name", "Birth Date"]
    assert task.gold == [
        {"name": "Ann\r\nLee", "birthdate": "1947-04-29"},
        {"name": "Bob", "birthdate": ""},
    ]
    assert task.columns["birthdate"].effective_tolerance == 31.0


def test_widesearch_missing_gold_csv(tmp_path):
    path = write_widesearch(tmp_path)
    with pytest.raises(TaskFormatError, match=r"widesearch.jsonl:1: gold table .*ws_t_1.csv is missing"):
        load_tasks(path)


def test_widesearch_csv_lacking_required_column(tmp_path):
    path = write_widesearch(tmp_path, b"Name,Other\nAnn,1\n")
    with pytest.raises(TaskFormatError, match="lacks required columns \\['birthdate'\\]"):
        load_tasks(path)


def test_widesearch_undecodable_csv(tmp_path):
    path = write_widesearch(tmp_path, b"Name,Birth Date\nAnn,1947\n\xff\xfe,1948\n")
    with pytest.raises(TaskFormatError, match=r"ws_t_1.csv:3: not valid UTF-8"):
        load_tasks(path)


def test_widesearch_bad_evaluation_json(tmp_path):
    record = {"instance_id": "ws_t_1", "query": "q", "evaluation": "{not json"}
    with pytest.raises(TaskFormatError, match="widesearch.jsonl:1: 'evaluation' is not valid JSON"):
        load_tasks(write_widesearch(tmp_path, b"a\n", record))


# ------------------------------------------------------------------------------ WideSeek-R1


def test_wideseek_r1_table_and_qa_records(tmp_path):
    records = [
        {
            "instance_id": "r1_1",
            "question": "List the films.",
            "answer": "| Film | Year | Director |\n|---|---|---|\n| Heat | 1995 | Michael Mann |",
            "unique_columns": ["film"],
            "evaluation": json.dumps({"required": ["film", "year"]}),
            "language": "en",
        },
        {"query": "Who directed Heat?", "answer": ["Michael Mann", "Mann"], "instance_id": "r1_2"},
        {
            "question": "List the films.",
            "answer": "| Film |\n|---|\n| Heat |",
            "unique_columns": '["Film"]',
        },
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    table, qa, third = load_tasks(path)
    assert table.required_columns == ["film", "year"] and table.unique_columns == ["film"]
    assert table.gold == [{"film": "Heat", "year": "1995"}]
    assert table.display_columns == ["Film", "Year"]
    assert table.columns["film"].metric == "exact_match" and table.columns["year"].metric == "llm_judge"
    assert qa.kind == "qa" and [g["answer"] for g in qa.gold] == ["Michael Mann", "Mann"]
    assert third.id == "train-3" and third.unique_columns == ["film"]


def test_wideseek_r1_json_list_file(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps([{"question": "q", "answer": "| a |\n|---|\n| 1 |", "instance_id": "x"}]))
    [task] = load_tasks(path)
    assert task.unique_columns == ["a"] and task.gold == [{"a": "1"}]


# -------------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"id": "x"\n', r"tasks.jsonl:1: invalid JSON"),
        (b'\n\n{"hello": 1}\n', r"tasks.jsonl:3: unknown task format"),
        (b"[1, 2]\n", r"tasks.jsonl:1: unknown task format"),
        (b'{"required_columns": ["a"], "gold": []}\n', r"tasks.jsonl:1: task object lacks fields"),
        (b'{"required_columns": [], "gold": [], "id": "\xff"}\n', r"tasks.jsonl:1: not valid UTF-8"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "tasks.jsonl"
    path.write_bytes(content)
    with pytest.raises(TaskFormatError, match=message):
        load_tasks(path)


def test_mixed_formats_and_duplicate_ids_rejected(tmp_path):
    path = tmp_path / "tasks.jsonl"
    line = json.dumps(small_task().to_json())
    path.write_text(line + "\n" + json.dumps({"question": "q", "answer": "a"}) + "\n")
    with pytest.raises(TaskFormatError, match="tasks.jsonl:2: record is not in this file's format"):
        load_tasks(path)
    path.write_text(line + "\n" + line + "\n")
    with pytest.raises(
        TaskFormatError, match=r"tasks.jsonl:2: duplicate task id 't1' \(first at .*tasks.jsonl:1\)"
    ):
        load_tasks(path)


def test_missing_file(tmp_path):
    with pytest.raises(TaskFormatError, match="no such task file"):
        load_tasks(tmp_path / "nope.jsonl")


def test_directory_loads_every_jsonl(tmp_path):
    save_tasks([small_task("a")], tmp_path / "1.jsonl")
    save_tasks([small_task("b")], tmp_path / "2.jsonl")
    assert [t.id for t in load_tasks(tmp_path)] == ["a", "b"]


# ----------------------------------------------------- generated directories (stats.json, marker)


def write_task_dir(out, *, stats=True):
    """train.jsonl and test.jsonl, and a stats.json vouching for them as the generator writes it."""
    import hashlib

    out.mkdir(exist_ok=True)
    save_tasks([small_task("a"), small_task("b")], out / "train.jsonl")
    save_tasks([small_task("c")], out / "test.jsonl")
    if stats:
        files = {
            name: {"tasks": n, "sha256": hashlib.sha256((out / name).read_bytes()).hexdigest()}
            for name, n in (("train.jsonl", 2), ("test.jsonl", 1))
        }
        (out / "stats.json").write_text(json.dumps({"params": {"seed": 7}, "files": files}))
    return out


def test_hand_written_task_directory_without_stats_loads(tmp_path):
    out = write_task_dir(tmp_path / "tasks", stats=False)
    assert [t.id for t in load_tasks(out)] == ["c", "a", "b"]  # test.jsonl sorts first
    # A stats.json without a "files" section (not the generator's) vouches for nothing: still loads.
    (out / "stats.json").write_text(json.dumps({"note": "hand-made"}))
    assert len(load_tasks(out)) == 3
    (out / "stats.json").write_text("not json")
    assert len(load_tasks(out / "train.jsonl")) == 2


def test_generated_directory_matching_its_stats_loads(tmp_path):
    out = write_task_dir(tmp_path / "tasks")
    assert len(load_tasks(out)) == 3
    assert [t.id for t in load_tasks(out / "test.jsonl")] == ["c"]
    save_tasks([small_task("x")], out / "extra.jsonl")  # a file stats.json does not list: not checked
    assert len(load_tasks(out)) == 4


def test_unfinished_generation_marker_is_refused(tmp_path):
    out = write_task_dir(tmp_path / "tasks")
    (out / ".incomplete").write_text("")
    (out / "stats.json").unlink()  # as while the generator swaps its files in
    for path in (out, out / "train.jsonl", out / "test.jsonl"):
        with pytest.raises(TaskFormatError) as info:
            load_tasks(path)
        assert str(out) in str(info.value) and "did not finish" in str(info.value)
        assert f"'wideseek tasks generate --corpus <corpus dir> --out {out}'" in str(info.value)
    (out / ".incomplete").unlink()
    assert len(load_tasks(out)) == 3


def test_task_file_that_does_not_match_its_stats_is_refused(tmp_path):
    out = write_task_dir(tmp_path / "tasks")
    (out / "train.jsonl").write_text((out / "train.jsonl").read_text().splitlines(keepends=True)[0])
    for path in (out, out / "train.jsonl"):
        with pytest.raises(TaskFormatError) as info:
            load_tasks(path)
        message = str(info.value)
        assert str(out / "train.jsonl") in message and "holds 1 tasks where stats.json records 2" in message
        assert "modified or half-written" in message and f"--out {out} --seed 7'" in message
    assert len(load_tasks(out / "test.jsonl")) == 1  # the untouched file still loads on its own
    save_tasks([small_task("z"), small_task("b")], out / "train.jsonl")  # same count, other content
    with pytest.raises(TaskFormatError, match="SHA-256 differs from the one stats.json records"):
        load_tasks(out)
    (out / "test.jsonl").unlink()
    (out / "train.jsonl").unlink()
    with pytest.raises(TaskFormatError, match=r"missing, but .*stats\.json lists it"):
        load_tasks(out)


# ---------------------------------------------------------------------------------- TaskSet


def test_task_set_lookup_iteration_and_sampling():
    tasks = TaskSet([small_task("ws_en_001"), small_task("ws_en_002"), small_task("ws_zh_001")])
    assert len(tasks) == 3 and "ws_en_002" in tasks
    assert [t.id for t in tasks] == ["ws_en_001", "ws_en_002", "ws_zh_001"]
    assert tasks.get("ws_zh_001").id == tasks["ws_zh_001"].id
    with pytest.raises(
        UnknownTaskError, match=r"unknown task id 'ws_en_003'.*did you mean 'ws_en_002', 'ws_en_001'"
    ):
        tasks.get("ws_en_003")
    assert tasks.sample(np.random.default_rng(0)).id in tasks
    assert tasks.sample(random.Random(1)).id == tasks.sample(random.Random(1)).id
    assert tasks.sample(7).id == tasks.sample(7).id
    assert len(tasks.filter(kind="transcribe")) == 3


def test_unknown_task_error_is_a_key_error_and_wideseek_error():
    with pytest.raises(KeyError):
        TaskSet([])["x"]
    with pytest.raises(WideseekError):
        TaskSet([]).sample(0)
