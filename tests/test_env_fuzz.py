"""Hypothesis drives every acting agent with random and adversarial text: the env never raises,
every observation stays in its space, and every episode ends within its limits."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wideseek_env.config import EnvConfig
from wideseek_env.env import WideSeekEnv
from wideseek_env.tools.parsing import render_tool_call

from fuzz_settings import examples

WORDS = st.sampled_from(["Jim Ryun", "Kansas", "mile", "", " ", "中文", "é", '"', "\\", "NOT", "title:", "*", "((("])
URLS = st.sampled_from([
    "https://en.wikipedia.org/wiki/Jim_Ryun", "/wiki/Kansas", "Jim Ryun", "https://en.wikipedia.org/w/index.php?title=Kansas",
    "https://fr.wikipedia.org/wiki/X", "ftp://x", "", "/wiki/" + "A" * 300, "/wiki/%ZZ", "javascript:alert(1)",
])
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def _call(name, args):
    return render_tool_call(name, args)


work_calls = st.one_of(
    st.builds(lambda qs: _call("search", {"queries": [{"query": q, "count": c} for q, c in qs]}),
              st.lists(st.tuples(WORDS, st.integers(-5, 50) | st.none()), max_size=7)),
    st.builds(lambda us: _call("access", {"urls": [{"url": u, "info_to_extract": "birth"} for u in us]}),
              st.lists(URLS, max_size=7)),
)
spawn_calls = st.one_of(
    st.builds(lambda ps: _call("call_subagent", {"sub_agents": [{"prompt": p} for p in ps]}),
              st.lists(WORDS, min_size=1, max_size=14)),
    st.builds(lambda ps: _call("create_sub_agents", {"sub_agents": ps}), st.lists(WORDS | JSONISH, max_size=4)),
)
valid_calls = work_calls | spawn_calls
bad_args = st.builds(
    lambda name, args: _call(name, args) if isinstance(args, dict) else
    "<tool_call>" + json.dumps({"name": name, "arguments": args}) + "</tool_call>",
    st.sampled_from(["search", "access", "call_subagent", "browse", "", "final_answer"]),
    JSONISH,
)
broken = st.sampled_from([
    "<tool_call>", "</tool_call>", "<tool_call>{</tool_call>", '<tool_call>{"name": "search"',
    "<tool_call><tool_call>{}</tool_call></tool_call>", "<think><tool_call>", "</think><tool_call>[1]</tool_call>",
    '<tool_call>{"name": "search", "arguments": "{\\"queries\\": \\"\\ud800\\"}"}</tool_call>',
    '<tool_call>{"name": "call_subagent", "arguments": {"sub_agents": [{"prompt": "\\ud800 x"}, "\\udfff"]}}</tool_call>',
    '<tool_call>{"name": "access", "arguments": {"urls": ["/wiki/\\ud800"]}}</tool_call>',
    "<tool_call>" + "[" * 5000 + "</tool_call>", "\ud800\udfff", "\x00" * 10, "<think>" * 50,
])
huge = st.builds(lambda c, n: c * n, st.sampled_from(["a", "中", "<tool_call>", "| x |\n", " "]),
                 st.integers(1_000, 60_000))
answers = st.sampled_from(["", "done", "<think>ok</think>| a |\n|---|\n| 1 |", "```markdown\n| x |\n|---|\n| y |\n```"])
action = st.one_of(valid_calls, bad_args, broken, huge, answers, st.text(max_size=200), st.binary(max_size=50),
                   st.none(), st.integers())
# concatenations: several calls and text in one message
message = st.one_of(action, st.lists(valid_calls | broken | st.text(max_size=30), min_size=2, max_size=6).map("".join))
# what an acting agent sends: biased towards calls so that episodes go deep and hit their limits
agent_message = st.one_of(spawn_calls, work_calls, message)


def run_episode(env, data, seed):
    obs, infos = env.reset(seed=seed)
    cfg = env.config
    steps = 0
    # every agent acts at most max_turns times, so the number of steps is bounded
    bound = cfg.lead_max_turns * (1 + cfg.subagent_max_turns * cfg.max_depth) + 5
    while env.agents:
        for a in env.agents:
            assert env.observation_space(a).contains(obs[a]), a
        actions = {a: data.draw(agent_message) for a in env.agents if infos[a]["acting"]}
        if data.draw(st.booleans()):  # actions for agents that do not act are ignored
            actions.update({a: data.draw(message) for a in env.agents if not infos[a]["acting"]})
        obs, rew, term, trunc, infos = env.step(actions)
        steps += 1
        assert steps <= bound
        for a, info in infos.items():
            assert info["turn"] <= info["max_turns"]
    assert all(term.values()) or all(trunc.values())
    assert len(set(rew.values())) == 1
    metrics = next(iter(infos.values()))["metrics"]
    assert 0.0 <= metrics["item_f1"] <= 1.0 and metrics["scoring_error"] is None
    return steps


CONFIGS = {
    "error": EnvConfig(lead_max_turns=4, subagent_max_turns=3, max_subagents_per_call=4),
    "final": EnvConfig.paper(lead_max_turns=4, subagent_max_turns=3, max_subagents_per_call=4),
    "rlinf": EnvConfig.rlinf(lead_max_turns=4, subagent_max_turns=3, max_subagents_per_call=4),
    "depth2": EnvConfig(lead_max_turns=3, subagent_max_turns=3, max_subagents_per_call=3, max_depth=2,
                        subagent_pool_size=20, context_tokens=20000),
    "single": EnvConfig.single_agent(single_max_turns=5),
}


@pytest.fixture(scope="module")
def envs(ottqa_retriever, widesearch_task_list):
    out = {name: WideSeekEnv(ottqa_retriever, widesearch_task_list, cfg) for name, cfg in CONFIGS.items()}
    yield out
    for env in out.values():
        env.close()


@pytest.mark.parametrize("name", list(CONFIGS))
@settings(max_examples=examples(50), deadline=60_000, suppress_health_check=list(HealthCheck))
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_fuzz_episode(envs, name, data, seed):
    # @given on the test itself (not on an inner function): --hypothesis-show-statistics reports it
    run_episode(envs[name], data, seed)
