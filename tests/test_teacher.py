"""The privileged demonstrator (``agents.baselines.teacher.TeacherPolicy``) on the generated tasks: it
solves every tier with real tool calls, answers only with what the tools showed, and needs width on
the wide tier."""

from __future__ import annotations

import copy
import random
from collections import defaultdict

import pytest

from agents.baselines import run_episode
from agents.baselines.teacher import TeacherPolicy
from agents.setup import POLICIES, build_policy
from wideseek_env.config import EnvConfig
from wideseek_env.env import WideSeekEnv


def _sample(tasks, per_tier: int, seed: int = 0):
    by_tier = defaultdict(list)
    for t in sorted(tasks, key=lambda t: t.id):
        by_tier[t.tier].append(t)
    return {tier: random.Random(seed).sample(ts, min(per_tier, len(ts))) for tier, ts in sorted(by_tier.items())}


def _run(retriever, tasks, config, policy):
    env = WideSeekEnv(retriever, tasks, config)
    return {t.id: run_episode(env, policy, task_id=t.id) for t in tasks}


def test_solves_every_tier_with_real_tool_calls(ottqa_retriever, generated_tasks):
    samples = _sample(generated_tasks["test"] + generated_tasks["train"], 6)
    assert set(samples) == {0, 1, 2, 3, 4}
    for tier, tasks in samples.items():
        results = _run(ottqa_retriever, tasks, EnvConfig(), TeacherPolicy(tasks))
        f1 = [m["item_f1"] for m in results.values()]
        assert sum(f1) / len(f1) >= 0.95, (tier, f1)
        for m in results.values():
            assert m["tool_calls"].get("call_subagent", 0) >= 1
            assert m["tool_calls"].get("access", 0) >= 1 and m["tool_calls"].get("search", 0) >= 1
            assert not m["truncated"]


def test_answers_only_with_values_the_tools_showed(ottqa_retriever, generated_tasks):
    """Point every entity passage at a page that does not hold the value: those cells stay empty."""
    task = next(t for t in sorted(generated_tasks["test"], key=lambda t: t.id) if t.kind == "filtered")
    fake = copy.deepcopy(task)
    elsewhere = "https://en.wikipedia.org/wiki/Wikipedia"
    tables = set(fake.provenance["pages"][: len(fake.provenance["tables"])])
    fake.provenance["passages"] = [
        p if p[0] in tables else [elsewhere, *p[1:]] for p in fake.provenance["passages"]
    ]
    real = _run(ottqa_retriever, [task], EnvConfig(), TeacherPolicy([task]))[task.id]
    faked = _run(ottqa_retriever, [fake], EnvConfig(), TeacherPolicy([fake]))[fake.id]
    assert real["item_f1"] == pytest.approx(1.0)
    assert faked["item_f1"] < real["item_f1"]
    attribute = [c for c in task.display_columns if c.lower().startswith(("year", "date", "population", "capacity"))]
    assert attribute and all(f"| {v} |" not in faked["answer"] for v in (row[task.required_columns[task.display_columns.index(attribute[0])]] for row in task.gold))


def test_width_matters_on_the_wide_tier(ottqa_retriever, generated_tasks):
    wide = _sample(generated_tasks["test"] + generated_tasks["train"], 3)[3]
    f1 = {}
    for k in (1, 4, 10):
        results = _run(ottqa_retriever, wide, EnvConfig(), TeacherPolicy(wide, max_subagents=k))
        f1[k] = sum(m["item_f1"] for m in results.values()) / len(wide)
    single = _run(ottqa_retriever, wide, EnvConfig.single_agent(), TeacherPolicy(wide))
    f1["single"] = sum(m["item_f1"] for m in single.values()) / len(wide)
    assert f1[1] < f1[4] <= f1[10]
    assert f1[10] >= 0.95 and f1[10] - f1["single"] >= 0.2
    assert all(m["subagents_spawned"] == 0 for m in single.values())


def test_is_a_policy_of_the_shared_setup():
    assert "teacher" in POLICIES
    policy = build_policy("teacher", env=EnvConfig(), tasks=[], options={"max_subagents": 2})
    assert isinstance(policy, TeacherPolicy) and policy.max_subagents == 2
    with pytest.raises(ValueError):
        TeacherPolicy([], max_subagents=0)


def test_eval_runs_the_teacher_and_reports_each_tier(ottqa_corpus, generated_tasks, tmp_path):
    from agents.eval import EvalSpec, evaluate
    from wideseek_env.tasks import save_tasks

    tasks = [ts[0] for ts in _sample(generated_tasks["test"], 1).values()]
    save_tasks(tasks, tmp_path / "tasks.jsonl")
    spec = EvalSpec(policy="teacher", tasks=str(tmp_path / "tasks.jsonl"), corpus=str(ottqa_corpus))
    summary = evaluate(spec, tmp_path / "run")
    assert set(summary["by_tier"]) == {"T0", "T1", "T2", "T3", "T4"}
    assert summary["item_f1_avg"] >= 0.95
