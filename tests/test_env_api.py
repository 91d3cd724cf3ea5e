"""PettingZoo API conformance on the real OTT-QA corpus and the WideSearch task file.

Random text (``action_space.sample()``) almost never holds a tool call, so with the stock space every
episode ends on the lead's first answer. ``ScriptedSampleEnv`` (test only) swaps in an action space
whose ``sample()`` mixes well-formed calls (call_subagent, search, access), malformed calls, unknown
tools and plain answers, so that PettingZoo's own test drivers also exercise spawning, waiting,
reports and failures.
"""

from __future__ import annotations

import json

import numpy as np
import pettingzoo
import pytest
from gymnasium.spaces import Dict
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test
from pettingzoo.utils import parallel_to_aec

from wideseek_env.config import EnvConfig
from wideseek_env.env import WideSeekEnv
from wideseek_env.registration import PARALLEL_ENV_ID
from wideseek_env.spaces import UnicodeText
from wideseek_env.tools.parsing import render_tool_call

WORDS = ["Jim Ryun", "mile", "Olympics", "Kansas", "river", "album", "1968", "中国", "école", "station"]
URLS = ["https://en.wikipedia.org/wiki/Jim_Ryun", "/wiki/Kansas", "en.wikipedia.org/wiki/Nowhere_page_x",
        "http://example.com/x", ""]


class ScriptedText(UnicodeText):
    """A text space whose samples are agent-like actions (tool calls, broken calls, answers)."""

    def sample(self, mask=None, probability=None):
        rng = self.np_random
        kind = rng.choice(["answer", "subagents", "search", "access", "broken", "unknown", "random"],
                          p=[0.15, 0.3, 0.2, 0.15, 0.08, 0.07, 0.05])
        if kind == "answer":
            return "<think>done</think>\n| a | b |\n|---|---|\n| x | 1 |"
        if kind == "subagents":
            k = int(rng.integers(1, 4))
            return render_tool_call("call_subagent", {"sub_agents": [{"prompt": f"find {WORDS[int(rng.integers(len(WORDS)))]}"} for _ in range(k)]})
        if kind == "search":
            qs = [{"query": " ".join(rng.choice(WORDS, size=2)), "count": int(rng.integers(0, 5))}
                  for _ in range(int(rng.integers(0, 4)))]
            return render_tool_call("search", {"queries": qs})
        if kind == "access":
            return render_tool_call("access", {"urls": [{"url": str(rng.choice(URLS)), "info_to_extract": "birth"}]})
        if kind == "broken":
            return '<tool_call>{"name": "search", "arguments": {"queries": [</tool_call>'
        if kind == "unknown":
            return render_tool_call("browse", {"x": 1})
        return super().sample()


class ScriptedSampleEnv(WideSeekEnv):
    """Test-only: one shared ScriptedText action space for every agent (seeding the lead's space
    seeds them all, so parallel_seed_test stays deterministic when subagents spawn)."""

    spawned_total = 0

    def action_space(self, agent):
        if not hasattr(self, "_scripted_space"):
            self._scripted_space = ScriptedText(self.config.max_action_chars, seed=0)
        return self._scripted_space

    def _spawn(self, role, parent, depth, subtask):
        if parent is not None:
            self.spawned_total += 1
        return super()._spawn(role, parent, depth, subtask)


SMALL = dict(lead_max_turns=5, subagent_max_turns=4, max_action_chars=4096)


@pytest.fixture()
def make_env(ottqa_retriever, widesearch_tasks):
    envs = []

    def make(cls=WideSeekEnv, **config):
        env = cls(ottqa_retriever, widesearch_tasks, EnvConfig(**config))
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


# ---------------------------------------------------------------------------- stock random actions


def test_parallel_api_test(make_env):
    parallel_api_test(make_env(max_action_chars=2000), num_cycles=1000)


def test_parallel_seed_test(make_env):
    parallel_seed_test(lambda: make_env(max_action_chars=2000), num_cycles=500)


def test_aec_api_test(make_env):
    api_test(parallel_to_aec(make_env(max_action_chars=2000)), num_cycles=1000)


def test_single_agent_mode_api(make_env):
    parallel_api_test(make_env(mode="single", max_action_chars=2000), num_cycles=200)
    api_test(parallel_to_aec(make_env(mode="single", max_action_chars=2000)), num_cycles=200)


# ---------------------------------------------------------------------------- agent-like actions


@pytest.mark.parametrize("config", [SMALL, dict(SMALL, max_depth=2, subagent_pool_size=30),
                                    dict(SMALL, invalid_call="final")])
def test_parallel_api_test_with_spawning(make_env, config):
    env = make_env(ScriptedSampleEnv, **config)
    for _ in range(6):
        parallel_api_test(env, num_cycles=500)
    # the harness really exercised subagents (fewer in "final" mode: a lead's bad call ends the episode)
    assert env.spawned_total >= (1 if config.get("invalid_call") == "final" else 5)


@pytest.mark.parametrize("config", [SMALL, dict(SMALL, max_depth=2, subagent_pool_size=30)])
def test_parallel_seed_test_with_spawning(make_env, config):
    parallel_seed_test(lambda: make_env(ScriptedSampleEnv, **config), num_cycles=500)


def test_aec_api_test_with_spawning(make_env):
    api_test(parallel_to_aec(make_env(ScriptedSampleEnv, **SMALL)), num_cycles=1000)


def test_single_agent_scripted_api(make_env):
    parallel_api_test(make_env(ScriptedSampleEnv, mode="single", single_max_turns=6), num_cycles=200)


# ---------------------------------------------------------------------------- spaces and registry


def test_spaces_are_cached_and_hold_unicode(make_env):
    env = make_env()
    for agent in env.possible_agents[:5]:
        assert env.observation_space(agent) is env.observation_space(agent)
        assert env.action_space(agent) is env.action_space(agent)
        assert isinstance(env.observation_space(agent), Dict)
    obs, _ = env.reset(options={"task_id": "ws_zh_001"})
    text = obs["lead"]["text"]
    assert not text.isascii()  # a Chinese question
    assert env.observation_space("lead").contains(obs["lead"])
    space = env.observation_space("lead")["text"]
    for s in ("é 中文 — ∑ 😀", "", "\x00\n\t"):
        assert space.contains(s)
    assert not space.contains("\ud800") and not space.contains(3)
    assert not space.contains("x" * (space.max_length + 1))


def test_possible_agents_follow_the_limits(make_env):
    env = make_env()
    assert env.possible_agents[0] == "lead" and len(env.possible_agents) == 1 + 10 * 10
    assert len(set(env.possible_agents)) == len(env.possible_agents)
    env2 = make_env(max_depth=2)
    assert len(env2.possible_agents) == 1 + 1000  # capped by max_pool_size
    assert make_env(mode="single").possible_agents == ["agent"]


def test_pettingzoo_registry(ottqa_corpus, widesearch_tasks):
    import wideseek_env  # noqa: F401  (registers)

    env = pettingzoo.make("parallel", PARALLEL_ENV_ID, corpus=ottqa_corpus, tasks=widesearch_tasks)
    try:
        assert isinstance(env, WideSeekEnv)
        obs, infos = env.reset(seed=0)
        assert infos["lead"]["acting"] and obs["lead"]["text"]
    finally:
        env.close()


def test_infos_are_json_serialisable_and_timing_free(make_env):
    env = make_env()
    _, infos = env.reset(seed=1)
    json.dumps(infos)
    assert set(infos["lead"]) >= {"acting", "role", "parent", "depth", "turn", "max_turns", "messages",
                                  "tools", "limits"}
    assert [t["function"]["name"] for t in infos["lead"]["tools"]] == ["call_subagent"]
    _, _, _, _, infos = env.step({"lead": "no table"})
    json.dumps(infos)
    assert not any("time" in k for k in infos["lead"]["metrics"])
    assert np.isclose(infos["lead"]["metrics"]["item_f1"], 0.0)


def test_whole_episodes_are_deterministic(make_env):
    """parallel_seed_test stops after the first step (it tests ``any(terminations)`` on a dict), so
    compare whole episodes of agent-like actions here."""
    from gymnasium.utils.env_checker import data_equivalence

    for config in (SMALL, dict(SMALL, max_depth=2, subagent_pool_size=30)):
        envs = [make_env(ScriptedSampleEnv, **config) for _ in range(2)]
        for seed in (0, 1, 2):
            outs = [env.reset(seed=seed) for env in envs]
            for env in envs:
                env.action_space("lead").seed(seed)
            assert data_equivalence(outs[0], outs[1])
            steps = 0
            while envs[0].agents:
                acts = [{a: env.action_space(a).sample() for a in env.agents} for env in envs]
                assert data_equivalence(acts[0], acts[1])
                outs = [env.step(a) for env, a in zip(envs, acts)]
                assert data_equivalence(outs[0], outs[1])
                steps += 1
            assert not envs[1].agents and steps >= 1
