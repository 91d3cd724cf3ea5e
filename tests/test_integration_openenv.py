"""OpenEnv: `wideseek serve-env` on loopback, played by its own client, rewards as through WideSeekEnv."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("openenv.core", reason="the [openenv] extra is not installed")

from wideseek_env.integrations.openenv_server import (  # noqa: E402
    WideSeekAction,
    WideSeekEnvClient,
    WideSeekOpenEnv,
    WideSeekToolCall,
)
from wideseek_env.tools.parsing import render_tool_calls  # noqa: E402
from wideseek_env.wrappers.single_agent import SingleSeekEnv  # noqa: E402

TASK = "ws_zh_010"
CALLS = [
    [("search", {"queries": [{"query": "Jim Ryun", "count": 2}, {"query": "mile run record"}]})],
    [("access", {"urls": [{"url": "https://en.wikipedia.org/wiki/Jim_Ryun", "info_to_extract": "records"}]}),
     ("search", {"queries": []})],  # a bad call: the env's error message, in the same turn
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def server(ottqa_corpus, widesearch_tasks):
    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wideseek_env.cli", "serve-env", "--corpus", str(ottqa_corpus),
         "--tasks", str(widesearch_tasks), "--port", str(port), "--max-sessions", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve-env did not come up: {proc.stdout.read()}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _through_env(corpus, tasks, answer: str):
    env = SingleSeekEnv(corpus, tasks)
    env.reset(options={"task_id": TASK})
    texts = []
    for calls in CALLS:
        _, reward, term, trunc, info = env.step(render_tool_calls(calls))
        texts.append([m["content"] for m in info["messages"] if m["role"] == "tool"])
    _, reward, term, trunc, info = env.step(answer)
    env.close()
    return texts, reward, info["metrics"]


def test_client_plays_an_episode_with_the_env_reward(server, ottqa_retriever, widesearch_tasks):
    gold = WideSeekOpenEnv(ottqa_retriever, widesearch_tasks)
    gold.reset(task_id=TASK)
    table = gold.episode.task.gold_markdown()
    answer = "\n".join(table.splitlines()[:4])  # a partial table: reward strictly between 0 and 1
    want_texts, want_reward, want_metrics = _through_env(ottqa_retriever, widesearch_tasks, answer)
    assert 0.0 < want_reward < 1.0

    with WideSeekEnvClient(base_url=server).sync() as client:
        first = client.reset(task_id=TASK)
        obs = first.observation
        assert obs.task_id == TASK and not first.done and first.reward == 0.0
        assert [m["role"] for m in obs.messages] == ["system", "user"]
        assert {t["function"]["name"] for t in obs.tools} == {"search", "access"}
        got_texts = []
        for calls in CALLS:
            action = WideSeekAction(tool_calls=[WideSeekToolCall(name=n, arguments=a) for n, a in calls])
            result = client.step(action)
            assert not result.done and result.reward == 0.0
            got_texts.append([m["content"] for m in result.observation.messages])
        end = client.step(WideSeekAction(answer=answer))
        state = client.state()
        after = client.step(WideSeekAction(tool_calls=[WideSeekToolCall(name="search", arguments={})]))

    assert got_texts == want_texts
    assert end.done and end.reward == pytest.approx(want_reward)
    assert end.observation.metrics["item_f1"] == pytest.approx(want_metrics["item_f1"])
    assert state.done and state.task_id == TASK and state.step_count == 3
    assert after.done and after.reward == 0.0  # nothing counted twice
    assert after.observation.messages[0]["content"].startswith("Error: the episode is over")


def test_schema_names_the_tool_call_action(server):
    import json

    with urllib.request.urlopen(server + "/schema", timeout=10) as resp:
        schema = json.loads(resp.read())
    assert {"tool_calls", "answer"} <= set(schema["action"]["properties"])
