"""The worked example of a different tool environment (examples/unit_conversion_env.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from wideseek_env.tools.base import Tool

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "unit_conversion_env.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("unit_conversion_env", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_tools_follow_the_protocol(example):
    table, calc = example.UnitTableTool(), example.CalculatorTool()
    assert isinstance(table, Tool) and isinstance(calc, Tool)
    assert table.call_many([{"units": ["mile"]}]) == ["1 mile = 1609.344 metre (length)"]
    assert calc.call_many([{"expression": "2 * (3 + 4)"}]) == ["2 * (3 + 4) = 14"]
    # bad input never raises: it comes back as an error text
    bad = table.call_many([{}, {"units": ["furlong"]}, "x"]) + calc.call_many(
        [{}, {"expression": "__import__('os')"}, {"expression": "1/0"}, {"expression": "9**9**9"}]
    )
    assert all(text.startswith("Error:") for text in bad), bad


def test_api(example):
    parallel_api_test(example.make_env(), num_cycles=30)
    parallel_seed_test(lambda: example.make_env())


def test_roles_get_their_tools(example):
    env = example.make_env()
    obs, infos = env.reset(options={"task_id": "units-mass"})
    assert [t["function"]["name"] for t in infos["lead"]["tools"]] == ["call_subagent"]
    from wideseek_env.tools.parsing import render_tool_call

    obs, _, _, _, infos = env.step({"lead": render_tool_call("call_subagent", {"sub_agents": [{"prompt": "Convert 1 pound"}]})})
    assert [t["function"]["name"] for t in infos["sub_0"]["tools"]] == ["unit_table", "calculator"]


def test_scripted_episodes_score_and_reward(example):
    env = example.make_env()
    policy = example.UnitScriptedPolicy()
    for task in env.tasks:
        m = example.play_episode(env, policy, task.id)
        n = len(task.gold)
        assert m["item_f1"] == pytest.approx(1.0)
        assert m["subagents_spawned"] == n
        # the custom reward: item F1 - 0.01 per tool call (1 call_subagent + 2 calls per subagent)
        assert m["reward"] == pytest.approx(1.0 - 0.01 * (1 + 2 * n))


def test_wrong_answer_gets_partial_reward(example):
    env = example.make_env()
    env.reset(options={"task_id": "units-length"})
    _, rewards, terms, _, infos = env.step({"lead": "```markdown\n| Quantity | Metres |\n|---|---|\n| 3 mile | 4828.03 |\n```"})
    assert all(terms.values())
    m = infos["lead"]["metrics"]
    assert 0.0 < m["item_f1"] < 1.0
    assert rewards["lead"] == pytest.approx(m["item_f1"])  # no tool calls: nothing subtracted


def test_script_runs():
    out = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "parallel_api_test: passed" in out.stdout
    assert out.stdout.count("item F1 1.000") == 3
