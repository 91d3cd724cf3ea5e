"""The scripted baseline and the oracle (agents/baselines/) on the real corpus and generated tasks."""

from __future__ import annotations

import copy
from collections import defaultdict

import pytest

from agents.baselines import (
    OracleAgent,
    ScriptedBaseline,
    extract_attribute,
    fill_x,
    parse_columns,
    parse_query,
    reconcile_columns,
    run_episode,
    tables_in_text,
)
from wideseek_env.config import EnvConfig
from wideseek_env.env import WideSeekEnv
from wideseek_env.table.markdown import extract_table
from wideseek_env.tasks import load_tasks


@pytest.fixture(scope="module")
def ottqa_tasks(ottqa_corpus):
    """The default generated task set (generated once per checkout; reused afterwards)."""
    from wideseek_env.paths import default_tasks_dir
    from wideseek_env.taskgen.generate import generate_tasks

    out = default_tasks_dir()
    generate_tasks(ottqa_corpus, out, seed=0, progress=False)
    return list(load_tasks(out / "test.jsonl"))


@pytest.fixture(scope="module")
def sample(ottqa_tasks):
    by_kind = defaultdict(list)
    for t in sorted(ottqa_tasks, key=lambda t: t.id):
        by_kind[t.kind].append(t)
    return [t for kind in ("transcribe", "enrich", "union") for t in by_kind[kind][:4]]


def _run_all(retriever, tasks, config, policy):
    env = WideSeekEnv(retriever, tasks, config)
    return {t.id: run_episode(env, policy, task_id=t.id) for t in tasks}


# ------------------------------------------------------------------------------- query reading


def test_parse_query_kinds():
    closing = "\nDon't ask me any questions ... ```markdown\n{data_content}\n```."
    q = ("Could you compile all the seasons listed in the “Winners: Players” table of the Wikipedia page "
         "“FAM Football Awards”?\n\nPlease organize the results in one Markdown table with the columns: "
         "Seasons, Players, Teams.\nCopy the “Seasons” values exactly as Wikipedia writes them." + closing)
    p = parse_query(q)
    assert (p.kind, p.title, p.section, p.columns) == (
        "transcribe", "FAM Football Awards", "Winners: Players", ["Seasons", "Players", "Teams"])

    q = ("For X in Contemporary R&B and Traditional, take the “Recipients” table of the Wikipedia page "
         "“Grammy Award for Best X Gospel Album”. Combine all their works into one table, with a column "
         "“Source” saying which X each row comes from.\n\nOutput a single Markdown table with exactly "
         "these columns: Source, Year, Work." + closing)
    p = parse_query(q)
    assert p.kind == "union" and p.template == "Grammy Award for Best X Gospel Album"
    assert p.values == ["Contemporary R&B", "Traditional"] and p.source_column == "Source"

    q = ("Please list all the rows of the “Members of the X General Assembly” table on each Wikipedia page "
         "“X Parliament of British Columbia”, where X is each of 14th and 28th, in a single table with a "
         "“Edition” column giving the X of each row.\n\nOutput a single Markdown table with exactly these "
         "columns: Edition, Member." + closing)
    p = parse_query(q)
    assert (p.kind, p.template, p.section, p.values, p.source_column) == (
        "union", "X Parliament of British Columbia", "Members of the X General Assembly", ["14th", "28th"], "Edition")
    assert fill_x(p.section, "14th") == "Members of the 14th General Assembly"

    q = ("Here is a list of venues (listed under “Round 1 venues”): Rec Hall; Thomas Assembly Center. "
         "For each of them, look up their opening year.\n\nPlease organize the results in one Markdown "
         "table with the following columns:\nVenue, Year opened\n" + closing)
    p = parse_query(q)
    assert p.kind == "enrich" and p.mode == "list"
    assert p.entities == ["Rec Hall", "Thomas Assembly Center"] and p.columns == ["Venue", "Year opened"]

    q = ("For every one of the players listed under “Draft” for BAA draft in 1947, find their year of "
         "birth. Also give their Round as that list states it.\n\nPresent the results as one Markdown "
         "table whose columns are, in this order: Player, Round, Year of birth." + closing)
    p = parse_query(q)
    assert p.kind == "enrich" and p.mode == "set" and p.topic == "BAA draft in 1947"
    assert p.section == "Draft" and p.table_columns == ["Round"]

    # a key column whose name holds a comma is merged back
    q = ("For each of the following 2 cities (listed under “Towns”), find their population: Aldie, "
         "Virginia; Norfolk, Virginia.\n\nOutput a single Markdown table with exactly these columns: "
         "City, State, Population." + closing)
    p = parse_query(q)
    assert p.columns == ["City, State", "Population"] and p.entities == ["Aldie, Virginia", "Norfolk, Virginia"]


def test_parse_columns_widesearch_styles():
    assert parse_columns("The column names are as follows in sequence: Award, Award Year, Genre\nNote: x") == [
        "Award", "Award Year", "Genre"]
    assert parse_columns("The column headers should be:\n2024 Steam Best-Selling Games, Publisher.\nDon't") == [
        "2024 Steam Best-Selling Games", "Publisher"]
    assert parse_columns("表格中的列名依次为：\n年份、国家、全球排名。不要问我任何问题") == ["年份", "国家", "全球排名"]
    assert parse_columns("no columns here") == []
    assert reconcile_columns(["City", "State", "Population"], ["City, State", "Pop."]) == ["City, State", "Population"]


def test_tables_in_text_sections_and_pieces():
    text = (
        "Intro.\n\n## Results -- Men\n\nSome text.\n\n| Name | Time |\n| --- | --- |\n| A | 1 |\n\n...\n\n"
        "| Name | Time |\n| --- | --- |\n| B | 2 |\n\n## Results -- Women\n\n| Name | Time |\n| --- | --- |\n| C | 3 |\n\n"
        "Another table follows.\n\n| Name | Time |\n| --- | --- |\n| D | 4 |\n"
    )
    tables = tables_in_text(text)
    assert [(t.section, [r[0] for r in t.rows]) for t in tables] == [
        ("Results -- Men", ["A", "B"]),  # pieces of one table (an omission between them) are merged
        ("Results -- Women", ["C"]),
        ("Results -- Women", ["D"]),  # text between them: two tables
    ]


@pytest.mark.parametrize(
    "key,text,value",
    [
        ("birth_date", "Robert Babich (of Serbian descent, born May 5, 1947) is a former player.", "May 5, 1947"),
        ("birth_year", "Robert Babich (born May 5, 1947) is a former player.", "1947"),
        ("death_date", "William Hayward (23 October 1867 – 7 February 1932) was a coach.", "7 February 1932"),
        ("death_year", "John Smith (1805–1867) was a painter.", "1867"),
        ("release_year", "Whip It is a 2009 American sports comedy-drama film directed by Drew Barrymore.", "2009"),
        ("director", "Whip It is a 2009 American film directed by Drew Barrymore.", "Drew Barrymore"),
        ("founded", "The club was founded in 1899 in Stavanger.", "1899"),
        ("opened", "The arena opened in March 1969.", "1969"),
        ("population", "It had a population of 44,125 at the 2010 census.", "44,125"),
        ("capacity", "The stadium has a capacity of 21,000 spectators.", "21,000"),
        ("birth_year", "A page without the fact.", None),
    ],
)
def test_extract_attribute(key, text, value):
    assert extract_attribute(key, text) == value


# ---------------------------------------------------------------------------------- episodes


def test_scripted_multi_agent_on_generated_tasks(ottqa_retriever, sample):
    results = _run_all(ottqa_retriever, sample, EnvConfig(), ScriptedBaseline())
    per_kind = defaultdict(list)
    for t in sample:
        m = results[t.id]
        assert not m["truncated"] and m["answer_parsed"], (t.id, m["answer"][:300])
        assert m["subagents_spawned"] >= 1 and m["tool_calls"].get("call_subagent", 0) >= 1
        per_kind[t.kind].append(m["item_f1"])
    for kind, f1s in per_kind.items():
        assert sum(f1s) / len(f1s) >= 0.5, (kind, f1s)


def test_scripted_single_agent_on_generated_tasks(ottqa_retriever, sample):
    results = _run_all(ottqa_retriever, sample, EnvConfig.single_agent(), ScriptedBaseline())
    f1 = [m["item_f1"] for m in results.values()]
    assert all(not m["truncated"] and m["subagents_spawned"] == 0 for m in results.values())
    assert sum(f1) / len(f1) >= 0.5


def test_baseline_never_reads_the_gold(ottqa_retriever, sample):
    """The same answers when the gold table and the provenance are replaced."""
    tasks = sample[:2] + sample[4:6] + sample[8:10]
    fake = []
    for t in tasks:
        f = copy.deepcopy(t)
        f.gold = [{c: "zzz" for c in t.required_columns}]
        f.provenance = {"pages": ["https://en.wikipedia.org/wiki/Nothing"]}
        fake.append(f)
    for config in (EnvConfig(), EnvConfig.single_agent()):
        real = _run_all(ottqa_retriever, tasks, config, ScriptedBaseline())
        faked = _run_all(ottqa_retriever, fake, config, ScriptedBaseline())
        for t in tasks:
            assert real[t.id]["answer"] == faked[t.id]["answer"]
            assert faked[t.id]["item_f1"] == 0.0 or len(t.gold) == 1


def test_width_is_bounded_by_subagents_per_call(ottqa_retriever, ottqa_tasks):
    wide = [t for t in sorted(ottqa_tasks, key=lambda t: t.id) if t.kind == "enrich"
            and t.provenance.get("mode") == "list" and len(t.gold) > 12][:2]
    assert wide
    for t in wide:
        narrow = _run_all(ottqa_retriever, [t], EnvConfig(max_subagents_per_call=1), ScriptedBaseline())[t.id]
        broad = _run_all(ottqa_retriever, [t], EnvConfig(max_subagents_per_call=10), ScriptedBaseline())[t.id]
        assert narrow["subagents_spawned"] <= 9 < len(t.gold) <= broad["subagents_spawned"]
        assert narrow["lead_turns"] == 10 and not narrow["truncated"]
        # every entity the query names is still listed
        assert len(extract_table(narrow["answer"]).rows) == len(t.gold)
        assert broad["item_f1"] >= narrow["item_f1"]


def test_oracle_gets_full_reward(ottqa_retriever, sample):
    for config in (EnvConfig(), EnvConfig.rlinf()):
        env = WideSeekEnv(ottqa_retriever, sample, config)
        oracle = OracleAgent(sample)
        for t in sample:
            m = run_episode(env, oracle, task_id=t.id)
            assert m["item_f1"] == pytest.approx(1.0) and m["success"] == 1.0
            expected = 1.1 if config.reward_shaping else 1.0  # format bonus, no access bonus
            assert m["reward"] == pytest.approx(expected)


def test_widesearch_tasks_degrade_gracefully(ottqa_retriever, widesearch_task_list):
    tasks = widesearch_task_list[:3] + [t for t in widesearch_task_list if t.language != "en"][:2]
    for config in (EnvConfig(), EnvConfig.single_agent()):
        results = _run_all(ottqa_retriever, tasks, config, ScriptedBaseline())
        for t in tasks:
            m = results[t.id]
            assert not m["truncated"]
            assert 0.0 <= m["item_f1"] <= 1.0
            table = extract_table(m["answer"])
            assert table is not None


def test_policy_survives_unexpected_messages():
    policy = ScriptedBaseline()
    from agents.policy import AgentRequest

    tools = [{"type": "function", "function": {"name": "search", "description": "", "parameters": {}}}]
    first = policy.act([AgentRequest("e", "agent", [{"role": "system", "content": "s"},
                                                   {"role": "user", "content": "garbage ✓ ?"}], tools, "agent")])
    assert isinstance(first[0].text, str)
    # tool results in an unknown format, then more requests after the agent finished
    for _ in range(5):
        out = policy.act([AgentRequest("e", "agent", [{"role": "tool", "content": "??"}], tools, "agent")])
        assert isinstance(out[0].text, str)


def test_generator_agent_reads_limits_from_the_tools_and_turn_hints_and_stops_after_its_answer():
    from agents.baselines.generator_agent import GeneratorAgent

    class TwoTurns(GeneratorAgent):
        def run(self):
            results = yield from self.call([("search", {"queries": [{"query": "x"}]})])
            return f"answer after {len(results)} result(s)"

    tools = [{"type": "function", "function": {"name": "call_subagent", "description": "Start at most 7 subagents."}}]
    first = [{"role": "user", "content": "Q? Your next answer will be on turn 1; you MUST finish by turn 4."}]
    agent = TwoTurns("lead", 10, first, tools)
    assert (agent.per_call_limit, agent.max_turns, agent.user) == (7, 4, "Q?")
    assert "<tool_call>" in agent.step([])
    assert agent.step([{"role": "tool", "content": "hits"}]) == "answer after 1 result(s)"
    assert agent.done and agent.step([]) == ""


def test_generator_agent_reraises_an_error_of_its_plan_by_default():
    from agents.baselines.generator_agent import GeneratorAgent

    class Broken(GeneratorAgent):
        def run(self):
            raise KeyError("boom")
            yield ""

    with pytest.raises(KeyError):
        Broken("agent", 5, [{"role": "user", "content": "Q"}], []).step([])
