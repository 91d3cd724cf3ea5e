"""verifiers: the WideSeek taskset, its toolset, and a rubric that scores exactly as `wideseek score`."""

from __future__ import annotations

import asyncio
import json

import pytest

vf = pytest.importorskip("verifiers.v1", reason="the [verifiers] extra is not installed")

from wideseek_env.cli import main as wideseek_main  # noqa: E402
from wideseek_env.errors import WideseekError  # noqa: E402
from wideseek_env.integrations.verifiers_env import WideSeekToolset, WideSeekToolsConfig, load_environment  # noqa: E402
from wideseek_env.wrappers.single_agent import SingleSeekEnv  # noqa: E402
from wideseek_env.tools.parsing import render_tool_call  # noqa: E402

TASK = "ws_zh_010"
SEARCH = {"queries": [{"query": "Jim Ryun", "count": 2}]}


@pytest.fixture(scope="module")
def env(ottqa_corpus, widesearch_tasks):
    return load_environment(ottqa_corpus, widesearch_tasks, mode="single")


def _task(env, task_id):
    return next(t for t in env.taskset.include(ids=[task_id]))


def _scripted_trace(task, tool_text: str, answer: str):
    """A finished rollout: system, user, an assistant search call, its result, the final table."""
    call = vf.ToolCall(id="c1", name="search", arguments=json.dumps(SEARCH))
    messages = [
        vf.SystemMessage(content=task.data.system_prompt),
        vf.UserMessage(content=task.data.prompt),
        vf.AssistantMessage(content="", tool_calls=[call]),
        vf.ToolMessage(tool_call_id="c1", content=tool_text),
        vf.AssistantMessage(content=answer),
    ]
    nodes = [vf.MessageNode(parent=i - 1 if i else None, message=m, sampled=m.role == "assistant")
             for i, m in enumerate(messages)]
    return vf.Trace(task=vf.TraceTask(type=type(task).__name__, data=task.data),
                    agent=vf.AgentInfo(config=vf.AgentConfig()), nodes=nodes)


def test_taskset_yields_the_tasks_with_the_env_prompt(env, ottqa_retriever, widesearch_tasks):
    task = _task(env, TASK)
    single = SingleSeekEnv(ottqa_retriever, widesearch_tasks)
    _, info = single.reset(options={"task_id": TASK})
    system = next(m["content"] for m in info["messages"] if m["role"] == "system")
    assert task.data.task_id == TASK and task.data.system_prompt == system
    assert task.data.prompt == str(single.task.query)


def test_toolset_answers_as_the_env_tools(ottqa_corpus, ottqa_retriever, widesearch_tasks):
    toolset = WideSeekToolset(WideSeekToolsConfig(corpus=str(ottqa_corpus)))
    got = asyncio.run(toolset.search(**SEARCH))
    single = SingleSeekEnv(ottqa_retriever, widesearch_tasks)
    single.reset(options={"task_id": TASK})
    _, _, _, _, info = single.step(render_tool_call("search", SEARCH))
    assert info["messages"][0]["content"].startswith(got) and "Jim Ryun" in got


@pytest.mark.parametrize("rows", [None, 3, 0])  # the gold table, a partial table, no table
def test_rubric_scores_a_scripted_rollout_as_wideseek_score(env, ottqa_corpus, widesearch_tasks, tmp_path, rows,
                                                            capsys):
    task = _task(env, TASK)
    toolset = WideSeekToolset(WideSeekToolsConfig(corpus=str(ottqa_corpus)))
    from wideseek_env.tasks import load_tasks

    table = next(t for t in load_tasks(widesearch_tasks) if t.id == TASK).gold_markdown()
    answer = table if rows is None else "\n".join(table.splitlines()[: rows + 2]) if rows else "I do not know."
    trace = _scripted_trace(task, asyncio.run(toolset.search(**SEARCH)), answer)
    asyncio.run(task.score(trace))

    responses, out = tmp_path / "responses.jsonl", tmp_path / "scores.jsonl"
    responses.write_text(json.dumps({"instance_id": TASK, "response": answer}) + "\n")
    assert wideseek_main(["score", "--tasks", str(widesearch_tasks), "--responses", str(responses),
                          "--out", str(out)]) == 0
    row = next(r for r in map(json.loads, out.read_text().splitlines()) if r["instance_id"] == TASK)
    want = row["samples"][0]
    assert trace.rewards["item_f1"].score == want["item_f1"]
    assert trace.metrics["row_f1"] == want["row_f1"] and trace.metrics["success"] == want["success"]
    assert trace.reward == want["item_f1"]
    assert trace.reward == (1.0 if rows is None else 0.0 if rows == 0 else pytest.approx(want["item_f1"]))
    if rows == 3:
        assert 0.0 < trace.reward < 1.0


def test_bad_arguments_name_the_problem(ottqa_corpus, widesearch_tasks, tmp_path):
    with pytest.raises(WideseekError, match="mode"):
        load_environment(ottqa_corpus, widesearch_tasks, mode="wide")
    with pytest.raises(WideseekError, match="not offered"):
        load_environment(ottqa_corpus, widesearch_tasks, mode="multi")
    with pytest.raises(WideseekError, match="corpus build"):
        load_environment(tmp_path, widesearch_tasks)
