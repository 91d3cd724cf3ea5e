"""Scripted episodes: spawning, waiting, reports, limits, failures, invalid calls, depth, reward."""

from __future__ import annotations

import pytest

from wideseek_env import prompts
from wideseek_env.config import ConfigError, EnvConfig
from wideseek_env.env import (
    EpisodeRecord,
    ToolRequest,
    WideSeekEnv,
    approx_token_count,
    execute_tool_requests,
)
from wideseek_env.errors import UnknownTaskError
from wideseek_env.evaluation import score_answer
from wideseek_env.tools.parsing import render_tool_call

TASK = "ws_en_001"


def spawn(*subtasks: str, name: str = "call_subagent") -> str:
    return render_tool_call(name, {"sub_agents": [{"prompt": p} for p in subtasks]})


def search(*queries: str) -> str:
    return render_tool_call("search", {"queries": [{"query": q} for q in queries]})


def access(*urls: str) -> str:
    return render_tool_call("access", {"urls": [{"url": u, "info_to_extract": "birth date"} for u in urls]})


def acting(infos) -> list[str]:
    return [a for a, i in infos.items() if i["acting"]]


@pytest.fixture()
def make_env(ottqa_retriever, widesearch_task_list):
    envs = []

    def make(config: EnvConfig | None = None, **kwargs):
        env = WideSeekEnv(ottqa_retriever, widesearch_task_list, config or EnvConfig(), **kwargs)
        env.reset(options={"task_id": TASK})
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


def test_reset_state_and_task_pinning(make_env):
    env = make_env()
    obs, infos = env.reset(seed=5, options={"task_id": "ws_en_002"})
    assert env.agents == ["lead"] and env.task.id == "ws_en_002"
    info = infos["lead"]
    assert info["acting"] and info["role"] == "lead" and info["parent"] is None and info["depth"] == 0
    assert info["turn"] == 1 and info["max_turns"] == 10
    assert [m["role"] for m in info["messages"]] == ["system", "user"]
    assert env.task.query[:50] in obs["lead"]["text"]
    assert prompts.turn_hint(1, 10) in obs["lead"]["text"]
    assert "<tools>" in obs["lead"]["text"] and "call_subagent" in obs["lead"]["text"]
    with pytest.raises(UnknownTaskError, match="no_such_task"):
        env.reset(options={"task_id": "no_such_task"})
    # the same seed draws the same task; sampling is restricted by task_ids
    a = env.reset(seed=11)[0]
    b = env.reset(seed=11)[0]
    assert a == b
    env2 = make_env(task_ids=["ws_zh_003", "ws_en_004"])
    assert {env2.reset(seed=s)[1] and env2.task.id for s in range(12)} == {"ws_zh_003", "ws_en_004"}


def test_spawn_wait_and_reports_in_order(make_env):
    env = make_env()
    obs, rew, term, trunc, infos = env.step({"lead": spawn("find Jim Ryun", "find Kansas", "find Olympics")})
    assert env.agents == ["lead", "sub_0", "sub_1", "sub_2"]
    assert set(term) == set(trunc) == set(rew) == set(env.agents)
    assert acting(infos) == ["sub_0", "sub_1", "sub_2"]
    assert obs["lead"]["text"] == "" and infos["lead"]["status"] == "waiting"
    sub = infos["sub_1"]
    assert sub["role"] == "subagent" and sub["parent"] == "lead" and sub["depth"] == 1 and sub["max_turns"] == 20
    assert [t["function"]["name"] for t in sub["tools"]] == ["search", "access"]
    user = sub["messages"][1]["content"]
    assert user.startswith(env.task.query[:40]) and "Your current subtask is: find Kansas" in user
    assert "Your current subtask is: find Kansas" in obs["sub_1"]["text"]

    # sub_1 answers at once, sub_0 searches, sub_2 reads; the lead's action is ignored (not acting)
    obs, _, _, _, infos = env.step({
        "lead": "ignored", "sub_0": search("Jim Ryun mile"), "sub_1": "<think>easy</think>Kansas report",
        "sub_2": access("https://en.wikipedia.org/wiki/Jim_Ryun"),
    })
    assert acting(infos) == ["sub_0", "sub_2"] and infos["sub_1"]["status"] == "done"
    assert "Jim Ryun" in obs["sub_0"]["text"] and "https://en.wikipedia.org/wiki/Jim_Ryun" in obs["sub_0"]["text"]
    assert "1947" in obs["sub_2"]["text"]
    tool_msg = infos["sub_0"]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "sub_0_t1_c0"
    assert env.context("sub_0")[2]["tool_calls"][0]["id"] == "sub_0_t1_c0"
    assert prompts.turn_hint(2, 20) in tool_msg["content"]

    obs, _, _, _, infos = env.step({"sub_0": "Ryun report", "sub_2": search("Kansas")})
    assert acting(infos) == ["sub_2"]  # the lead still waits for sub_2
    obs, _, _, _, infos = env.step({"sub_2": "<think>x</think>\n  Olympics report  "})
    assert acting(infos) == ["lead"]
    text = infos["lead"]["messages"][0]["content"]
    assert infos["lead"]["messages"][0]["role"] == "tool"
    i1, i2, i3 = (text.index(f"# Subtask {k}\nfind") for k in (1, 2, 3))
    assert i1 < i2 < i3
    assert "# Subtask 1\nfind Jim Ryun\n\n# Result\nRyun report" in text
    assert "# Result\nKansas report" in text and "# Result\nOlympics report" in text
    assert infos["lead"]["turn"] == 2
    # isolated contexts: a subagent never sees another's messages
    assert all("Kansas report" not in m["content"] for m in env.context("sub_0"))


def test_final_answer_reward_shared_and_equal_to_item_f1(make_env):
    env = make_env()
    env.step({"lead": spawn("a", "b")})
    env.step({"sub_0": "r0", "sub_1": "r1"})
    answer = env.task.gold_markdown()
    obs, rew, term, trunc, infos = env.step({"lead": "<think>assemble</think>\n" + answer})
    assert env.agents == [] and set(rew) == {"lead", "sub_0", "sub_1"}
    assert all(term.values()) and not any(trunc.values())
    assert set(rew.values()) == {1.0}
    m = infos["sub_0"]["metrics"]
    assert m == infos["lead"]["metrics"] and m["item_f1"] == 1.0 and m["success"] == 1.0
    assert m["subagents_spawned"] == 2 and m["lead_turns"] == 2 and m["total_turns"] == 4
    assert m["tool_calls"] == {"call_subagent": 1}

    env.reset(options={"task_id": TASK})
    partial = "\n".join(answer.splitlines()[:5]) + "\n```"
    _, rew, *_ , infos = env.step({"lead": partial})
    expected = score_answer(env.task, partial.strip()).item_f1
    assert 0 < expected < 1 and rew["lead"] == pytest.approx(expected)
    assert infos["lead"]["metrics"]["item_f1"] == pytest.approx(expected)


def test_parallel_count_limit(make_env):
    env = make_env()
    obs, _, _, _, infos = env.step({"lead": spawn(*[f"task {i}" for i in range(13)])})
    assert len(env.agents) == 11 and acting(infos) == [f"sub_{i}" for i in range(10)]
    env.step({a: f"report {a}" for a in acting(infos)})
    text = env.context("lead")[-1]["content"]
    assert "At most 10 subagents run per call" in text and "3 subtask(s) were dropped" in text
    assert "# Subtask 10\ntask 9\n" in text and "\ntask 10\n" not in text
    # two calls in one message share the per-message limit
    env = make_env()
    _, _, _, _, infos = env.step({"lead": spawn(*["x"] * 7) + spawn(*["y"] * 7)})
    assert len(acting(infos)) == 10


def test_alias_create_sub_agents(make_env):
    env = make_env()
    _, _, _, _, infos = env.step({"lead": spawn("a", name="create_sub_agents")})
    assert acting(infos) == ["sub_0"]


def test_pool_exhaustion(make_env):
    env = make_env(EnvConfig(subagent_pool_size=3))
    assert env.possible_agents == ["lead", "sub_0", "sub_1", "sub_2"]
    _, _, _, _, infos = env.step({"lead": spawn("a", "b")})
    env.step({"sub_0": "r", "sub_1": "r"})
    _, _, _, _, infos = env.step({"lead": spawn("c", "d")})
    assert acting(infos) == ["sub_2"]
    _, _, _, _, infos = env.step({"sub_2": "r"})
    assert "Only 1 of 2 subagents could be started" in infos["lead"]["messages"][0]["content"]
    _, _, _, _, infos = env.step({"lead": spawn("e")})
    assert acting(infos) == ["lead"]
    msg = infos["lead"]["messages"][0]["content"]
    assert msg.startswith("Error: no subagent was started") and "3 subagents" in msg
    _, rew, term, _, _ = env.step({"lead": "final"})
    assert set(term) == {"lead", "sub_0", "sub_1", "sub_2"}


def test_subagent_turn_limit_returns_failure_text(make_env):
    env = make_env(EnvConfig(subagent_max_turns=3))
    env.step({"lead": spawn("loop forever", "answer quickly")})
    _, _, _, _, infos = env.step({"sub_0": search("a"), "sub_1": "quick report"})
    _, _, _, _, infos = env.step({"sub_0": search("b")})
    assert infos["sub_0"]["turn"] == 3 and prompts.turn_hint(3, 3) in infos["sub_0"]["messages"][-1]["content"]
    _, _, _, _, infos = env.step({"sub_0": search("c")})  # a tool call on its last turn
    assert acting(infos) == ["lead"] and infos["sub_0"]["status"] == "failed"
    text = infos["lead"]["messages"][0]["content"]
    assert f"# Subtask 1\nloop forever\n\n# Result\n{prompts.SUBAGENT_FAILURE_TEXT}" in text
    assert "# Result\nquick report" in text
    _, _, _, _, infos = env.step({"lead": "done"})
    assert infos["lead"]["metrics"]["subagent_failures"] == 1
    assert infos["lead"]["metrics"]["subagent_failures_turns"] == 1


def test_lead_turn_limit_truncates_with_zero_reward(make_env):
    env = make_env(EnvConfig(lead_max_turns=2))
    env.step({"lead": spawn("a")})
    env.step({"sub_0": "r"})
    _, rew, term, trunc, infos = env.step({"lead": spawn("b")})  # turn 2 = last turn, still calling
    assert env.agents == [] and set(trunc) == {"lead", "sub_0"}
    assert all(trunc.values()) and not any(term.values())
    assert set(rew.values()) == {0.0}
    m = infos["lead"]["metrics"]
    assert m["truncated"] and m["failure"] == "turns" and m["answer"] == ""


def test_lead_turn_limit_reward_is_computed_on_empty_answer(make_env):
    seen = []

    def reward_fn(task, answer, record):
        seen.append((answer, record.truncated))
        return 0.25

    env = make_env(EnvConfig(lead_max_turns=1), reward_fn=reward_fn)
    _, rew, _, trunc, _ = env.step({"lead": spawn("a")})
    assert seen == [("", True)] and rew == {"lead": 0.25} and trunc == {"lead": True}


def test_context_budget_with_tiny_token_counter(make_env):
    # one token per character: a search result (several thousand chars) overflows 5,000 tokens
    cfg = EnvConfig(context_tokens=5000, max_query_tokens=200)
    env = make_env(cfg, token_counter=len)
    _, _, _, _, infos = env.step({"lead": spawn("x", "y")})
    assert infos["sub_0"]["context_tokens"] < 4000
    queries = ("Jim Ryun", "Kansas", "Olympics", "river", "album")
    _, _, _, _, infos = env.step({"sub_0": search(*queries), "sub_1": "fine"})
    assert infos["sub_0"]["status"] == "failed" and acting(infos) == ["lead"]
    assert prompts.SUBAGENT_FAILURE_TEXT in infos["lead"]["messages"][0]["content"]
    _, _, _, _, infos = env.step({"lead": "answer"})
    assert infos["lead"]["metrics"]["subagent_failures_context"] == 1
    # the question is capped at max_query_tokens
    assert len(env.context("lead")[1]["content"]) < 200 + 100

    # the lead overflowing its own budget truncates the episode
    env = make_env(EnvConfig(context_tokens=5000, max_query_tokens=200), token_counter=len)
    env.step({"lead": spawn("x", "y", "z")})
    _, rew, term, trunc, infos = env.step({a: "y" * 1500 for a in ("sub_0", "sub_1", "sub_2")})
    assert infos["sub_0"]["metrics"]["subagent_failures"] == 0
    assert env.agents == [] and all(trunc.values()) and set(rew.values()) == {0.0}
    assert infos["lead"]["metrics"]["failure"] == "context"


def test_default_token_counter():
    assert approx_token_count("") == 0
    assert approx_token_count("abcd" * 10) == 10
    assert approx_token_count("中文") == 2


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ('<tool_call>{"name": "call_subagent", "arguments": {</tool_call>', "invalid JSON"),
        (render_tool_call("search", {"queries": [{"query": "x"}]}), "unknown tool 'search'"),
        ('<tool_call>{"name": "call_subagent"', "never closed"),
        (spawn(), "no subagent was started"),
        (render_tool_call("call_subagent", {"agents": []}), '"sub_agents"'),
    ],
)
def test_invalid_calls_error_mode(make_env, bad, fragment):
    env = make_env()
    obs, rew, term, trunc, infos = env.step({"lead": bad})
    assert env.agents == ["lead"] and acting(infos) == ["lead"]
    msg = infos["lead"]["messages"][0]
    assert msg["role"] == "tool" and msg["content"].startswith("Error:") and fragment in msg["content"]
    assert fragment in obs["lead"]["text"]
    _, _, _, _, infos = env.step({"lead": "ok"})
    assert infos["lead"]["metrics"]["invalid_calls"] >= (0 if "sub_agents" in fragment or "no sub" in fragment else 1)


@pytest.mark.parametrize(
    "bad",
    ['<think>x</think>answer text <tool_call>{"name": "call_subagent", "arguments": {</tool_call>',
     "answer text " + render_tool_call("search", {"queries": [{"query": "x"}]})],
)
def test_invalid_calls_final_mode(make_env, bad):
    seen = []
    env = make_env(EnvConfig.paper(), reward_fn=lambda t, a, r: seen.append(a) or 0.0)
    _, rew, term, trunc, infos = env.step({"lead": bad})
    assert env.agents == [] and term == {"lead": True}
    assert seen[0].startswith("answer text <tool_call>")  # the raw text after </think> is the answer


def test_final_mode_subagent_bad_call_is_its_report(make_env):
    env = make_env(EnvConfig.paper())
    env.step({"lead": spawn("a")})
    _, _, _, _, infos = env.step({"sub_0": "found X " + spawn("deeper")})  # subagents cannot delegate
    assert acting(infos) == ["lead"]
    assert "# Result\nfound X <tool_call>" in infos["lead"]["messages"][0]["content"]


def test_rlinf_mode_only_first_call(make_env):
    env = make_env(EnvConfig.rlinf())
    env.step({"lead": spawn("a")})
    _, _, _, _, infos = env.step({"sub_0": search("Jim Ryun") + access("/wiki/Kansas")})
    msgs = infos["sub_0"]["messages"]
    assert len(msgs) == 1 and "Jim Ryun" in msgs[0]["content"]
    assert [c["function"]["name"] for c in env.context("sub_0")[2]["tool_calls"]] == ["search"]


def test_several_calls_per_message_and_limit(make_env):
    env = make_env(EnvConfig(max_tool_calls_per_message=2))
    env.step({"lead": spawn("a")})
    _, _, _, _, infos = env.step({"sub_0": search("Jim Ryun") + access("/wiki/Jim_Ryun") + search("x")})
    msgs = infos["sub_0"]["messages"]
    assert [m["role"] for m in msgs] == ["tool", "tool", "tool"]
    assert msgs[0]["name"] == "search" and msgs[1]["name"] == "access"
    assert "only the first 2 tool calls" in msgs[2]["content"]


def test_bad_tool_arguments_never_raise(make_env):
    env = make_env()
    env.step({"lead": spawn("a")})
    for action in (
        render_tool_call("search", {"queries": []}),
        render_tool_call("search", {"queries": [{"query": ""}]}),
        render_tool_call("search", {"queries": 42}),
        render_tool_call("access", {"urls": [{"url": "https://en.wikipedia.org/wiki/No_such_page_zzz"}]}),
        render_tool_call("access", {"urls": [{"url": "ftp://x"}]}),
        render_tool_call("access", {}),
        render_tool_call("browse", {"url": "x"}),
    ):
        _, _, _, _, infos = env.step({"sub_0": action})
        assert acting(infos) == ["sub_0"]
        content = infos["sub_0"]["messages"][-1]["content"]
        assert "Error" in content or "No useful information" in content


def test_missing_action_is_empty_text(make_env):
    env = make_env()
    env.step({"lead": spawn("a", "b")})
    _, _, _, _, infos = env.step({"sub_0": "r0"})  # sub_1 acts but sends nothing: an empty report
    assert acting(infos) == ["lead"]
    assert "# Subtask 2\nb\n\n# Result\n\n" in infos["lead"]["messages"][0]["content"] + "\n"
    _, rew, term, _, _ = env.step({})  # the lead's missing action: an empty final answer
    assert env.agents == [] and set(rew.values()) == {0.0}


def test_depth_two_recursive_delegation(make_env):
    env = make_env(EnvConfig(max_depth=2, subagent_pool_size=10))
    _, _, _, _, infos = env.step({"lead": spawn("split this")})
    assert "call_subagent" in [t["function"]["name"] for t in infos["sub_0"]["tools"]]
    _, _, _, _, infos = env.step({"sub_0": spawn("part 1", "part 2") + search("Jim Ryun")})
    assert acting(infos) == ["sub_1", "sub_2"]
    assert infos["sub_1"]["parent"] == "sub_0" and infos["sub_1"]["depth"] == 2
    assert "call_subagent" not in [t["function"]["name"] for t in infos["sub_1"]["tools"]]
    _, _, _, _, infos = env.step({"sub_1": "p1 result", "sub_2": "p2 result"})
    assert acting(infos) == ["sub_0"]
    msgs = infos["sub_0"]["messages"]
    assert [m["name"] for m in msgs] == ["call_subagent", "search"]  # in call order
    assert "# Result\np1 result" in msgs[0]["content"] and "Jim Ryun" in msgs[1]["content"]
    _, _, _, _, infos = env.step({"sub_0": "combined"})
    assert acting(infos) == ["lead"] and "# Result\ncombined" in infos["lead"]["messages"][0]["content"]
    _, rew, term, _, infos = env.step({"lead": "x"})
    assert set(term) == {"lead", "sub_0", "sub_1", "sub_2"}
    assert infos["lead"]["metrics"]["max_depth_reached"] == 2


def test_tool_calls_of_a_step_are_batched(make_env, ottqa_retriever):
    from wideseek_env.tools.access import AccessTool
    from wideseek_env.tools.search import SearchTool

    class Counting:
        def __init__(self, tool):
            self.tool, self.name = tool, tool.name
            self.description, self.parameters = tool.description, tool.parameters
            self.batches = []

        def call_many(self, args):
            self.batches.append(len(args))
            return self.tool.call_many(args)

    s, a = Counting(SearchTool(ottqa_retriever)), Counting(AccessTool(ottqa_retriever))
    env = make_env(tools=[s, a])
    env.step({"lead": spawn("a", "b", "c")})
    env.step({"sub_0": search("x") + search("y"), "sub_1": search("z") + access("/wiki/Kansas"),
              "sub_2": access("/wiki/Jim_Ryun")})
    assert s.batches == [3] and a.batches == [2]


def test_collect_execute_apply_hook_across_envs(make_env):
    envs = [make_env(), make_env()]
    for env in envs:
        env.step({"lead": spawn("a")})
    reqs = [env.step_collect({"sub_0": search(f"query {i}")}) for i, env in enumerate(envs)]
    assert all(isinstance(r, ToolRequest) for rs in reqs for r in rs)
    flat = execute_tool_requests([r for rs in reqs for r in rs])
    assert len(flat) == 2
    out = [envs[0].step_apply(flat[:1]), envs[1].step_apply(flat[1:])]
    assert "query 0" in out[0][0]["sub_0"]["text"] and "query 1" in out[1][0]["sub_0"]["text"]


def test_a_raising_tool_gives_an_error_message(make_env):
    class Broken:
        name, description, parameters = "search", "d", {"type": "object"}

        def call_many(self, args):
            raise RuntimeError("index gone")

    env = make_env(tools=[Broken()])
    env.step({"lead": spawn("a")})
    _, _, _, _, infos = env.step({"sub_0": search("x")})
    assert "Error: the search tool failed (RuntimeError: index gone)" in infos["sub_0"]["messages"][0]["content"]


def test_reward_shaping_flag(make_env):
    env = make_env(EnvConfig(reward_shaping=True))
    env.step({"lead": spawn("a")})
    env.step({"sub_0": access("/wiki/Jim_Ryun")})
    env.step({"sub_0": "r"})
    _, rew, *_ = env.step({"lead": env.task.gold_markdown()})
    assert rew["lead"] == pytest.approx(1.0 + 0.1 + 0.05)
    env.reset(options={"task_id": TASK})
    _, rew, *_ = env.step({"lead": "no table at all"})
    assert rew["lead"] == 0.0
    env.reset(options={"task_id": TASK})
    long_answer = env.task.gold_markdown() + "\n" + "word " * 16000  # ~20k tokens: full penalty
    _, rew, *_ = env.step({"lead": long_answer})
    assert rew["lead"] == pytest.approx(1.0 + 0.1 - 0.1)


def test_custom_reward_fn_gets_the_record(make_env):
    records: list[EpisodeRecord] = []

    def reward_fn(task, answer, record):
        records.append(record)
        return 0.5

    env = make_env(reward_fn=reward_fn)
    env.step({"lead": spawn("a")})
    env.step({"sub_0": search("x")})
    env.step({"sub_0": "r"})
    _, rew, *_ = env.step({"lead": "final"})
    assert rew == {"lead": 0.5, "sub_0": 0.5}
    rec = records[0]
    assert rec.answer == "final" and not rec.truncated and rec.score is not None
    assert rec.agents["sub_0"].tool_calls["search"] == 1 and rec.agents["sub_0"].report == "r"


def test_single_agent_mode(make_env):
    env = make_env(EnvConfig.single_agent(single_max_turns=3))
    obs, infos = env.reset(options={"task_id": TASK})
    assert env.agents == ["agent"] and infos["agent"]["max_turns"] == 3
    assert [t["function"]["name"] for t in infos["agent"]["tools"]] == ["search", "access"]
    _, _, _, _, infos = env.step({"agent": search("Jim Ryun")})
    assert "Jim Ryun" in infos["agent"]["messages"][0]["content"]
    _, _, _, _, infos = env.step({"agent": spawn("x")})
    assert "Error" in infos["agent"]["messages"][0]["content"]
    _, rew, term, trunc, infos = env.step({"agent": search("x")})
    assert trunc == {"agent": True} and rew == {"agent": 0.0}


def test_render_ansi_transcript(make_env):
    env = make_env(render_mode="ansi")
    env.reset(options={"task_id": TASK})
    first = env.render()
    assert "=== task ws_en_001 ===" in first
    env.step({"lead": spawn("find it")})
    text = env.render()
    assert "[lead turn 1]" in text and "[lead -> sub_0] spawned: find it" in text
    assert "task ws_en_001" not in text  # only what is new since the last render
    env.step({"sub_0": "report"})
    env.step({"lead": "answer"})
    assert "episode done" in env.render() and "[sub_0 reports] report" in env.transcript()


def test_render_human_prints(make_env, capsys):
    env = make_env(render_mode="human")
    env.step({"lead": "bye"})
    assert "[lead turn 1] bye" in capsys.readouterr().out


def test_step_after_end_and_config_validation(make_env):
    env = make_env()
    env.step({"lead": "bye"})
    assert env.step({"lead": "again"}) == ({}, {}, {}, {}, {})
    for bad in (dict(mode="duo"), dict(invalid_call="retry"), dict(lead_max_turns=0),
                dict(max_subagents_per_call=-1), dict(subagent_pool_size=-2), dict(format_bonus=-1.0),
                dict(scoring_compat="x"), dict(context_tokens=True)):
        with pytest.raises(ConfigError, match=list(bad)[0]):
            EnvConfig(**bad)
    assert EnvConfig.rlinf().first_tool_call_only and EnvConfig.rlinf().invalid_call == "final"
    assert EnvConfig.single_agent().pool_size == 0 and EnvConfig().pool_size == 100
    assert EnvConfig(max_depth=2).pool_size == 1000  # capped by max_pool_size
    assert EnvConfig(max_depth=2, max_pool_size=50_000).pool_size == 100 + 100 * 20 * 10


def test_huge_and_odd_actions(make_env):
    seen = []
    env = make_env(EnvConfig(max_action_chars=1000), reward_fn=lambda t, answer, r: seen.append(answer) or 0.0)
    env.step({"lead": "a" * 5000})  # cut to max_action_chars
    assert len(seen[0]) == 1000
    # an answer longer than the whole context budget (131k chars ~ 32k tokens) is a context failure
    env = make_env(reward_fn=lambda t, answer, r: seen.append(answer) or 0.0)
    _, _, _, trunc, infos = env.step({"lead": "a" * 200_000})
    assert trunc == {"lead": True} and seen[-1] == "" and infos["lead"]["metrics"]["failure"] == "context"
    env.reset(options={"task_id": TASK})
    # a JSON escape can smuggle a lone surrogate past the text level: observations stay valid UTF-8
    obs, _, _, _, infos = env.step(
        {"lead": '<tool_call>{"name": "call_subagent", "arguments": {"sub_agents": [{"prompt": "\\ud800 x"}]}}</tool_call>'})
    assert env.observation_space("sub_0").contains(obs["sub_0"])
    obs, _, _, _, infos = env.step({"sub_0": b"bytes report \xff"})
    assert env.observation_space("lead").contains(obs["lead"]) and "bytes report" in obs["lead"]["text"]


def test_repeat_note_names_the_turn_an_agent_repeats_exactly(make_env):
    env = make_env(EnvConfig(mode="single", repeat_note=True))
    missing = access("https://en.wikipedia.org/wiki/Jim_Ryunn")
    broken = '<tool_call>\n{"name": "access", "arguments": {"urls": [{"url": "x}\n</tool_call>'
    notes = []
    for action in (missing, search("Jim Ryun"), missing, broken, broken, broken):
        _, _, _, _, infos = env.step({"agent": action})
        notes.append(infos["agent"]["messages"][-1]["content"].count("Note: this message repeats"))
    assert notes == [0, 0, 1, 0, 1, 1]
    last = env.context("agent")[-1]["content"]
    assert prompts.repeat_note(4) in last and last.endswith(prompts.turn_hint(7, 50))


def test_repeat_note_is_off_by_default(make_env):
    env = make_env(EnvConfig(mode="single"))
    missing = access("https://en.wikipedia.org/wiki/Jim_Ryunn")
    for _ in range(2):
        _, _, _, _, infos = env.step({"agent": missing})
    assert "repeats" not in infos["agent"]["messages"][-1]["content"]
