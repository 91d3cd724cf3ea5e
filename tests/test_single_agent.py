"""The single-agent Gymnasium env (SingleSeek) and its registry id."""

from __future__ import annotations

import warnings

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

import wideseek_env  # noqa: F401  (registers the ids)
from wideseek_env.config import EnvConfig
from wideseek_env.registration import SINGLE_ENV_ID
from wideseek_env.spaces import UnicodeText
from wideseek_env.tools.parsing import render_tool_call
from wideseek_env.wrappers.single_agent import SingleSeekEnv


@pytest.fixture()
def env(ottqa_corpus, widesearch_tasks):
    env = gymnasium.make(SINGLE_ENV_ID, corpus=ottqa_corpus, tasks=widesearch_tasks)
    yield env
    env.close()


def test_make_and_check_env(env):
    assert isinstance(env.unwrapped, SingleSeekEnv)
    assert isinstance(env.observation_space, UnicodeText) and isinstance(env.action_space, UnicodeText)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # check_env must not even warn
        check_env(env.unwrapped, skip_render_check=True)


def test_episode(env):
    obs, info = env.reset(seed=3, options={"task_id": "ws_zh_010"})
    assert env.observation_space.contains(obs) and "search" in obs
    assert info["role"] == "agent" and info["max_turns"] == 50 and info["acting"]
    obs, reward, term, trunc, info = env.step(
        render_tool_call("search", {"queries": [{"query": "Jim Ryun"}]}))
    assert "Jim Ryun" in obs and reward == 0.0 and not term and not trunc
    assert env.unwrapped.context()[-1]["role"] == "tool"
    task = env.unwrapped.task
    obs, reward, term, trunc, info = env.step(task.gold_markdown())
    assert term and not trunc and reward == 1.0 and info["metrics"]["item_f1"] == 1.0
    assert env.unwrapped.step("again") == ("", 0.0, True, False, {})


def test_turn_limit_truncates(ottqa_corpus, widesearch_tasks):
    env = SingleSeekEnv(ottqa_corpus, widesearch_tasks, EnvConfig(single_max_turns=2))  # mode forced
    assert env.config.mode == "single"
    env.reset(seed=0)
    call = render_tool_call("search", {"queries": [{"query": "x"}]})
    assert env.step(call)[2:4] == (False, False)
    _, reward, term, trunc, info = env.step(call)
    assert (term, trunc, reward) == (False, True, 0.0) and info["metrics"]["failure"] == "turns"
    env.close()
