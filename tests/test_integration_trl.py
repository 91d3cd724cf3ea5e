"""TRL: the GRPOTrainer environment over the single-agent setting (tiny model, real corpus, real reward)."""

from __future__ import annotations


import pytest

pytest.importorskip("trl", reason="the [trl] extra is not installed")
pytest.importorskip("torch", reason="the [llm] extra is not installed")

from agents.models import tiny_test_model  # noqa: E402
from wideseek_env.integrations.trl_env import (  # noqa: E402
    REWARD_FUNCS,
    REWARD_WEIGHTS,
    environment_factory,
    episode_reward,
    prepare_tokenizer,
    task_dataset,
)
from wideseek_env.tools.parsing import render_tool_call  # noqa: E402
from wideseek_env.wrappers.single_agent import SingleSeekEnv  # noqa: E402

TASK = "ws_zh_010"
SEARCH = {"queries": [{"query": "Jim Ryun", "count": 2}]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_test_model(tmp_path_factory.getbasetemp() / "tiny-model")


@pytest.fixture()
def factory(ottqa_retriever, widesearch_tasks):
    return environment_factory(ottqa_retriever, widesearch_tasks)


def test_tools_answer_as_the_env_does(factory, ottqa_retriever, widesearch_tasks):
    env = factory()
    first = env.reset(task_id=TASK, prompt="ignored row field")
    through_env = SingleSeekEnv(ottqa_retriever, widesearch_tasks)
    _, info = through_env.reset(options={"task_id": TASK})
    assert first == next(m["content"] for m in info["messages"] if m["role"] == "user")
    _, _, _, _, info = through_env.step(render_tool_call("search", SEARCH))
    assert env.search(**SEARCH) == info["messages"][0]["content"]
    assert "Jim Ryun" in env.search(**SEARCH)


def test_bad_arguments_come_back_as_tool_errors(factory):
    env = factory()
    env.reset(task_id=TASK)
    assert env.search(queries=[]).startswith("Error:")
    assert env.access(urls=[{"url": "https://en.wikipedia.org/wiki/No_such_page_xyz"}])


def test_gold_answer_completion_scores_one(factory):
    env = factory()
    env.reset(task_id=TASK)
    gold = env.episode.task.gold_markdown()
    completion = [{"role": "assistant", "content": gold}]
    assert episode_reward([completion], environments=[env]) == [1.0]
    assert env.episode.metrics["item_f1"] == 1.0 and env.episode.metrics["success"] == 1.0
    assert env.search(**SEARCH).startswith("Error: the episode is over")


def test_unfinished_completion_scores_as_empty_answer(factory):
    env = factory()
    env.reset(task_id=TASK)
    cut = [{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
        "name": "search", "arguments": SEARCH}}]}]
    assert episode_reward([cut], environments=[env]) == [0.0]
    assert env.episode.done and env.episode.metrics["item_f1"] == 0.0


def test_trl_parses_a_hermes_call_of_the_project_template(tiny):
    from transformers import AutoTokenizer
    from trl.chat_template_utils import parse_response

    tok = prepare_tokenizer(AutoTokenizer.from_pretrained(tiny))
    ids = tok.encode(render_tool_call("search", SEARCH) + "<|im_end|>", add_special_tokens=False)
    prompt = tok.apply_chat_template([{"role": "user", "content": "task"}], add_generation_prompt=True,
                                     tokenize=True, return_dict=False)
    msg = parse_response(tok, ids, prefix=prompt)  # as GRPOTrainer calls it, after the rendered prompt
    assert msg["tool_calls"][0]["function"] == {"name": "search", "arguments": SEARCH}


def test_grpo_trainer_runs_two_steps(tiny, factory, widesearch_tasks, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    tok = prepare_tokenizer(AutoTokenizer.from_pretrained(tiny))
    ids = ["ws_en_001", TASK]
    args = GRPOConfig(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2, num_generations=2,
        max_completion_length=24, max_tool_calling_iterations=2, logging_steps=1, report_to="none",
        use_cpu=True, save_strategy="no", bf16=False, reward_weights=REWARD_WEIGHTS, seed=0,
    )
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny), processing_class=tok, args=args,
        train_dataset=task_dataset(widesearch_tasks, task_ids=ids), reward_funcs=REWARD_FUNCS,
        environment_factory=factory,
    )
    trainer.train()
    assert trainer.state.global_step == 2
    logged = [h for h in trainer.state.log_history if "rewards/episode_reward/mean" in h]
    assert len(logged) == 2 and all("rewards/row_f1/mean" in h for h in logged)
    pool = trainer._environment_pool[None]
    assert len(pool) == 2  # one instance per rollout of a batch, reused across steps
    for env in pool:  # every rollout was a real episode on a dataset task, scored by the evaluator
        assert env.episode.done and env.episode.task.id in ids
        assert {"item_f1", "row_f1", "success", "lead_turns"} <= set(env.episode.metrics)
        assert env.episode.metrics["task_id"] == env.episode.task.id
