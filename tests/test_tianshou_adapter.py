"""tianshou 2.0.1 Collector + DummyVectorEnv running whole WideSeek episodes with a shared text policy."""

from __future__ import annotations

import warnings
from collections import defaultdict

import numpy as np
import pytest

pytest.importorskip("tianshou", reason="tianshou is not installed (pip install 'wideseek-env[tianshou]')")

from tianshou.data import Collector  # noqa: E402
from tianshou.env import DummyVectorEnv  # noqa: E402

from agents.baselines import ScriptedBaseline, run_episode  # noqa: E402
from wideseek_env.config import EnvConfig  # noqa: E402
from wideseek_env.env import WideSeekEnv  # noqa: E402
from wideseek_env.wrappers.tianshou import (  # noqa: E402
    STANDIN_ACTION_SPACE,
    TextPolicy,
    TianshouParallelEnv,
    make_tianshou_env,
)


@pytest.fixture(scope="module")
def tasks(ottqa_corpus):
    from wideseek_env.paths import default_tasks_dir
    from wideseek_env.tasks import load_tasks
    from wideseek_env.taskgen.generate import generate_tasks

    out = default_tasks_dir()
    generate_tasks(ottqa_corpus, out, seed=0, progress=False)
    by_kind = defaultdict(list)
    for t in sorted(load_tasks(out / "test.jsonl"), key=lambda t: t.id):
        by_kind[t.kind].append(t)
    return [t for k in ("transcribe", "enrich", "union") for t in by_kind[k][:2]]


def _venv(retriever, tasks, n, config=None):
    def factory(i):
        return lambda: make_tianshou_env(WideSeekEnv(retriever, tasks, config), env_id=f"env{i}")

    venv = DummyVectorEnv([factory(i) for i in range(n)])
    venv.seed(list(range(n)))
    return venv


def test_spaces_and_infos_are_tianshou_friendly(ottqa_retriever, tasks):
    par = TianshouParallelEnv(WideSeekEnv(ottqa_retriever, tasks), env_id="x")
    assert all(par.action_space(a) is STANDIN_ACTION_SPACE for a in par.possible_agents)
    obs, infos = par.reset(seed=0)
    info = infos["lead"]
    assert info["acting"] and info["role"] == "lead" and info["episode_id"] == "x/1"
    assert all(isinstance(v, (str, bool, int)) for v in info.values())
    # an integer action (the stand-in space's sample) is read as text: no crash
    obs, rewards, terms, truncs, infos = par.step({"lead": np.int64(0)})
    assert all(terms.values()) and "metrics_json" in infos["lead"]
    assert len(par.episode_metrics) == 1


@pytest.mark.parametrize("mode", ["multi", "single"])
def test_collector_runs_whole_episodes(ottqa_retriever, tasks, mode):
    config = EnvConfig.single_agent() if mode == "single" else EnvConfig()
    venv = _venv(ottqa_retriever, tasks, 3, config)
    policy = TextPolicy(ScriptedBaseline())
    collector = Collector(policy, venv)
    collector.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tianshou: stats over the reward vector of all agents
        stats = collector.collect(n_episode=6)
    assert stats.n_collected_episodes == 6
    metrics = [m for ms in venv.get_env_attr("episode_metrics") for m in ms]
    assert len(metrics) >= 6
    assert all(not m["truncated"] and m["answer_parsed"] for m in metrics)
    assert np.mean([m["item_f1"] for m in metrics]) > 0.5
    if mode == "multi":
        assert all(m["subagents_spawned"] >= 1 for m in metrics)
    # the buffer holds the texts; every finished episode's reward vector holds the shared reward
    buf = collector.buffer
    acts = buf.act[: len(buf)]
    assert acts.dtype == object and any(isinstance(a, str) and "<tool_call>" in a for a in acts)
    done = buf.done[: len(buf)]
    rew = buf.rew[: len(buf)]
    assert rew.shape[1] == len(WideSeekEnv(ottqa_retriever, tasks, config).possible_agents)
    for r in rew[done]:
        assert r[0] == pytest.approx(max(r))  # the lead (or the single agent) got the shared reward
    venv.close()


def test_same_results_as_the_plain_runner(ottqa_retriever, tasks):
    """Collected through tianshou (agents one at a time) or run directly: the same answers."""
    venv = _venv(ottqa_retriever, tasks, 1)
    collector = Collector(TextPolicy(ScriptedBaseline()), venv)
    collector.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        collector.collect(n_episode=3)
    metrics = venv.get_env_attr("episode_metrics")[0]
    env = WideSeekEnv(ottqa_retriever, tasks)
    for m in metrics:
        direct = run_episode(env, ScriptedBaseline(), task_id=m["task_id"])
        assert direct["answer"] == m["answer"] and direct["item_f1"] == m["item_f1"]


def test_plain_function_as_text_policy(ottqa_retriever, tasks):
    seen = []

    def answer_at_once(requests):
        seen.extend(r.agent_id for r in requests)
        return ["```markdown\n| a |\n| --- |\n| b |\n```" for _ in requests]

    venv = _venv(ottqa_retriever, tasks, 2)
    collector = Collector(TextPolicy(answer_at_once), venv)
    collector.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = collector.collect(n_episode=4)
    assert stats.n_collected_episodes == 4 and set(seen) == {"lead"}
