"""``wideseek play``: a person plays an agent through stdin (fed here from strings)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from wideseek_env.play import parse_human_input, play
from wideseek_env.tools.parsing import HermesParser


@pytest.fixture(scope="module")
def task_file(ottqa_corpus, tmp_path_factory):
    """One transcribe task of the generated test split, in a file of its own."""
    from wideseek_env.paths import default_tasks_dir
    from wideseek_env.tasks import load_tasks
    from wideseek_env.taskgen.generate import generate_tasks

    out = default_tasks_dir()
    generate_tasks(ottqa_corpus, out, seed=0, progress=False)
    tasks = sorted((t for t in load_tasks(out / "test.jsonl") if t.kind == "transcribe"), key=lambda t: t.id)
    path = tmp_path_factory.mktemp("play") / "tasks.jsonl"
    path.write_text(json.dumps(tasks[0].to_json(), ensure_ascii=False) + "\n", encoding="utf-8")
    return path, tasks[0]


def _title_and_section(task):
    from agents.baselines import parse_query

    plan = parse_query(task.query)
    return plan.title, plan.section


def test_parse_human_input_helpers():
    parser = HermesParser()
    text = parse_human_input("Let me look.\n/search Jim Ryun | mile record\n/access https://en.wikipedia.org/wiki/Jim_Ryun :: birth date")
    parsed = parser.parse(text)
    assert parsed.content == "Let me look."
    assert [c.name for c in parsed.tool_calls] == ["search", "access"]
    assert parsed.tool_calls[0].arguments == {"queries": [{"query": "Jim Ryun", "count": 3}, {"query": "mile record", "count": 3}]}
    assert parsed.tool_calls[1].arguments == {
        "urls": [{"url": "https://en.wikipedia.org/wiki/Jim_Ryun", "info_to_extract": "birth date"}]}
    spawn = parser.parse(parse_human_input("/spawn find A | find B"))
    assert spawn.tool_calls[0].arguments == {"sub_agents": [{"prompt": "find A"}, {"prompt": "find B"}]}
    assert parse_human_input("/answer\n| a |\n|---|\n| 1 |") == "| a |\n|---|\n| 1 |"
    assert parse_human_input("just text") == "just text"


def test_play_lead_with_scripted_subagents(ottqa_retriever, task_file):
    path, task = task_file
    title, section = _title_and_section(task)
    cols = ", ".join(task.display_columns)
    subtask = (f"Transcribe a table. Open the Wikipedia page “{title}” and copy every row of its “{section}” "
               f"table. Report one markdown table with exactly these columns: {cols}.")
    answer = task.gold_markdown()
    stdin = io.StringIO(f"/help\n.\n/spawn {subtask}\n.\n/answer\n{answer}\n.\n")
    stdout = io.StringIO()
    from wideseek_env.env import WideSeekEnv

    m = play(None, None, env=WideSeekEnv(ottqa_retriever, path), role="lead", stdin=stdin, stdout=stdout)
    out = stdout.getvalue()
    assert "/search QUERY" in out  # the help was shown
    assert "[sub_0 (subagent) acted:" in out  # the scripted subagent worked
    assert "# Subtask 1" in out and "# Result" in out  # its report reached the person
    assert m["item_f1"] == pytest.approx(1.0) and m["subagents_spawned"] == 1
    assert "episode over" in out and "The gold answer was" in out


def test_play_start_says_how_to_end_a_message_and_lists_the_helpers(ottqa_retriever, task_file):
    path, _ = task_file
    from wideseek_env.config import EnvConfig
    from wideseek_env.env import WideSeekEnv

    stdout = io.StringIO()
    env = WideSeekEnv(ottqa_retriever, path, EnvConfig.single_agent())
    play(None, None, env=env, role="single", stdin=io.StringIO("/quit\n.\n"), stdout=stdout)
    start = stdout.getvalue().split("-----", 1)[0]  # before the first observation
    assert "end it with a line holding only '.'" in start
    for helper in ("/search QUERY", "/access URL", "/spawn PROMPT", "/answer", "/help", "/quit"):
        assert helper in start


def test_play_subagent_and_single(ottqa_retriever, task_file):
    path, task = task_file
    title, _ = _title_and_section(task)
    from wideseek_env.config import EnvConfig
    from wideseek_env.env import WideSeekEnv

    # the person is the subagent: reads the page, reports; the scripted lead answers from the report
    url = "https://en.wikipedia.org/wiki/" + title.replace(" ", "_")
    stdin = io.StringIO(f"/access {url} :: the table\n.\n/answer\n{task.gold_markdown()}\n.\n")
    stdout = io.StringIO()
    m = play(None, None, env=WideSeekEnv(ottqa_retriever, path), role="subagent", stdin=stdin, stdout=stdout)
    assert "----- sub_0 (subagent)" in stdout.getvalue() and "[lead (lead) acted:" in stdout.getvalue()
    assert m["item_f1"] == pytest.approx(1.0)

    # single-agent mode; the input ends early (EOF): the episode still ends, with an empty answer
    stdin = io.StringIO(f"/search {title}\n.\n")
    stdout = io.StringIO()
    env = WideSeekEnv(ottqa_retriever, path, EnvConfig.single_agent())
    m = play(None, None, env=env, role="single", stdin=stdin, stdout=stdout)
    assert "----- agent (agent), turn 2 of 50" in stdout.getvalue()
    assert m["item_f1"] == 0.0 and m["tool_calls"] == {"search": 1}


def test_cli_play_via_stdin(ottqa_corpus, task_file):
    path, task = task_file
    stdin = "/quit\n.\n"
    out = subprocess.run(
        [sys.executable, "-m", "wideseek_env.cli", "play", "--corpus", str(ottqa_corpus), "--tasks", str(path),
         "--task-id", task.id, "--role", "lead"],
        input=stdin, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert f"=== task {task.id}" in out.stdout and "episode over" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "wideseek_env.cli", "play", "--corpus", str(ottqa_corpus), "--tasks", str(path),
         "--others", "no_such_module:X"],
        input="", capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 2 and "wideseek: error: cannot import 'no_such_module'" in bad.stderr
