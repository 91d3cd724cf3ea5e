"""The training recipe on the real env: the smoke config end to end, the train split by default and the
refusal to train on the evaluation file, dynamic sampling, RLinf's runaway-turn rule, the engine
old-logprob path and its ratio guard, token-budget micro-batches, and rollouts on Ray.

Real corpus, real tasks and rewards where the behaviour depends on them; the tiny in-process model."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("yaml")

from agents.train import TrainConfig, TrainConfigError, Trainer  # noqa: E402
from wideseek_env.tasks import ColumnSpec, Task, save_tasks  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "examples" / "train" / "smoke.yaml"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from agents.models import tiny_test_model

    return tiny_test_model(tmp_path_factory.getbasetemp() / "tiny-model-recipe")


@pytest.fixture(scope="module")
def toy_tasks(tmp_path_factory) -> Path:
    path = tmp_path_factory.getbasetemp() / "recipe-toy-tasks.jsonl"
    tasks = [Task(id=f"toy{i}", query=q, language="en", required_columns=["name"], unique_columns=["name"],
                  columns={"name": ColumnSpec("name")}, gold=[{"name": "x"}])
             for i, q in enumerate(["Name a colour.", "Name a city.", "Name a fox.", "Name a river."])]
    save_tasks(tasks, path)
    return path


def signal_for_odd_tasks(task, answer, record) -> float:
    """Tasks toy1/toy3 get rewards that vary with the answer; toy0/toy2 always 1.0 (zero variance)."""
    if task.id in ("toy0", "toy2"):
        return 1.0
    return (sum(map(ord, answer)) % 7) / 7.0


def _toy(tmp: Path, tiny: Path, tasks: Path, **kw) -> TrainConfig:
    base = dict(model=str(tiny), tasks=str(tasks), tools="none", preset="single", reward_fn=signal_for_odd_tasks,
                steps=1, tasks_per_step=4, group_size=3, max_tokens=12, lr=1e-3, micro_batch_size=2,
                output_dir=str(tmp), save_every=0, logger="jsonl", seed=5)
    base.update(kw)
    return TrainConfig(**base)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ----------------------------------------------------------------------------------------- smoke config


def test_smoke_config_trains_two_steps_with_evaluation_at_steps_0_and_2(ottqa_corpus, generated_tasks, tmp_path):
    out = tmp_path / "smoke"
    proc = subprocess.run([sys.executable, "-m", "wideseek_env.cli", "train", "--config", str(SMOKE),
                           "--set", f"output_dir={out}", "--set", f"corpus={ottqa_corpus}"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2]
    evals = {r["step"]: r for r in rows if "eval/item_f1" in r}
    assert sorted(evals) == [0, 2]
    for r in evals.values():
        for key in ("eval/item_f1", "eval/row_f1", "eval/success", "eval/answer_parsed",
                    "eval/tool_calls_per_episode"):
            assert 0.0 <= r[key] <= 100.0, key
        assert r["eval/episodes"] == 2
    for r in rows[1:]:
        assert r["groups/total"] == 2 and 0 <= r["groups/zero_variance"] <= 2
    # the evaluation kept every agent's transcript of its two episodes
    transcripts = _rows(out / "evals" / "step_000002" / "transcripts.jsonl")
    assert len(transcripts) == 2
    lead = transcripts[0]["agents"]["lead"]
    assert lead["messages"][0]["role"] == "system" and lead["texts"] and lead["turns"][0]["response_ids"]
    assert (out / "checkpoints" / "step_000002" / "model" / "config.json").exists()


# ----------------------------------------------------------------------------------------- task files


def test_unset_tasks_means_the_train_split(ottqa_corpus, generated_tasks, tmp_path, tiny):
    from wideseek_env.paths import default_tasks_dir

    trainer = Trainer(TrainConfig(model=str(tiny), corpus=str(ottqa_corpus), output_dir=str(tmp_path), steps=1,
                                  logger="jsonl"))
    try:
        assert trainer.train_file == default_tasks_dir() / "train.jsonl"
        train_ids = {t.id for t in generated_tasks["train"]}
        assert set(trainer.task_ids()) == train_ids
        assert not train_ids & {t.id for t in generated_tasks["test"]}
    finally:
        trainer.close()


def test_training_on_the_evaluation_file_is_refused_unless_forced(ottqa_corpus, generated_tasks, tmp_path, tiny):
    from wideseek_env.paths import default_tasks_dir

    test_file = str(default_tasks_dir() / "test.jsonl")
    with pytest.raises(TrainConfigError, match="evaluation task file"):
        Trainer(TrainConfig(model=str(tiny), tasks=test_file, corpus=str(ottqa_corpus), output_dir=str(tmp_path)))
    with pytest.raises(TrainConfigError, match="evaluation task file"):
        Trainer(TrainConfig(model=str(tiny), tasks=test_file, eval_tasks=test_file, eval_every=1,
                            corpus=str(ottqa_corpus), output_dir=str(tmp_path)))
    forced = Trainer(TrainConfig(model=str(tiny), tasks=test_file, allow_eval_tasks=True, corpus=str(ottqa_corpus),
                                 output_dir=str(tmp_path), logger="jsonl"))
    forced.close()


def test_paper_defaults():
    d = TrainConfig()
    assert (d.preset, d.turn_selection, d.old_logprobs, d.max_importance_ratio, d.adam_eps, d.lr,
            d.lr_schedule, d.max_tokens, d.tasks) == ("rlinf", "rlinf", "engine", 5.0, 1e-5, 1e-6, "constant",
                                                      8192, None)
    with pytest.raises(TrainConfigError, match="'env_preset' is now 'preset'"):
        TrainConfig.from_dict({"env_preset": "rlinf"})


# ----------------------------------------------------------------------------------------- dynamic sampling


def test_zero_variance_groups_get_no_logprob_or_backward_work(tmp_path, tiny, toy_tasks):
    trainer = Trainer(_toy(tmp_path, tiny, toy_tasks, old_logprobs="recompute"))
    try:
        episodes = trainer.collect(0)
        flat = {"toy0", "toy2"}
        in_flat = [e for e in episodes if e.group_id in flat]
        assert in_flat and len(in_flat) < len(episodes)  # the draw holds both kinds of group
        signal_samples = sum(1 for e in episodes if e.group_id not in flat for tr in e.trajectories.values()
                             if tr.num_trained_tokens)
        m = trainer.update(episodes)
        assert m["groups/zero_variance"] == len({e.group_id for e in in_flat})
        assert m["train/skipped_samples"] == len(in_flat)  # single agent: one sample per episode
        # recompute pass + one update pass: each touches exactly the samples of groups with signal
        assert trainer.counters == {"forward_samples": 2 * signal_samples, "backward_samples": signal_samples}
    finally:
        trainer.close()


def test_dropping_zero_variance_groups_keeps_the_paper_gradient(tmp_path, tiny, toy_tasks):
    grads = {}
    for mode in ("off", "drop"):
        trainer = Trainer(_toy(tmp_path / mode, tiny, toy_tasks, dynamic_sampling=mode, param_dtype="float64",
                               micro_batch_size=16))
        try:
            episodes = trainer.collect(0)
            trainer.optimizer.step = lambda *a, **k: None  # look at the gradient only
            trainer.update(episodes)
            grads[mode] = [p.grad.clone() for p in trainer.params]
        finally:
            trainer.close()
    for a, b in zip(grads["off"], grads["drop"]):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
    assert any(g.abs().sum() > 0 for g in grads["drop"])


def test_all_zero_variance_step_is_skipped_without_work(tmp_path, tiny, toy_tasks):
    trainer = Trainer(_toy(tmp_path, tiny, toy_tasks, reward_fn=lambda t, a, r: 0.0))
    try:
        m = trainer.update(trainer.collect(0))
        assert m["train/skipped"] == 1.0 and m["groups/zero_variance_share"] == 1.0
        assert trainer.counters == {"forward_samples": 0, "backward_samples": 0}
    finally:
        trainer.close()


# ----------------------------------------------------------------------------------------- turns and ratios


def test_runaway_turn_is_flagged_and_selected_by_rlinf(ottqa_corpus, generated_tasks, tmp_path, tiny):
    from agents.grpo import select_turns

    # the tiny model never writes a parsable answer, and a 6-token budget cuts every generation
    trainer = Trainer(TrainConfig(model=str(tiny), corpus=str(ottqa_corpus), preset="default", max_tokens=6,
                                  env={"lead_max_turns": 2}, tasks_per_step=1, group_size=2, steps=1,
                                  output_dir=str(tmp_path), logger="jsonl", max_model_len=4096))
    try:
        episodes = trainer.collect(0)
        for e in episodes:
            lead = e.trajectories["lead"]
            assert not e.answer_parsed
            assert all(t.finish_reason == "length" and t.failed for t in lead.turns)
            assert select_turns(e, "rlinf")["lead"] == set(range(len(lead.turns)))
        # a turn that ended by itself is not an offending turn: only the flagged ones train
        lead = episodes[0].trajectories["lead"]
        if len(lead.turns) > 1:
            lead.turns[0].failed = False
            assert 0 not in select_turns(episodes[0], "rlinf")["lead"]
    finally:
        trainer.close()


def test_engine_old_logprobs_and_the_importance_ratio_guard(tmp_path, tiny, toy_tasks):
    trainer = Trainer(_toy(tmp_path, tiny, toy_tasks, old_logprobs="engine", max_importance_ratio=5.0))
    try:
        episodes = trainer.collect(0)
        m = trainer.update(episodes)
        assert m["train/dropped_microbatches"] == 0 and m["optimizer_steps"] == 1
        assert m["logprob_gap/mean_abs"] < 1e-3  # the engine is the same HF model
        assert trainer.counters["forward_samples"] == trainer.counters["backward_samples"]  # no recompute pass
        # the engine's logprobs lowered by 3 nats: every ratio is e^3 > 5, so every micro-batch is dropped
        episodes = trainer.collect(1)
        for e in episodes:
            for tr in e.trajectories.values():
                for t in tr.turns:
                    t.logprobs = [lp - 3.0 for lp in t.logprobs]
        before = [p.detach().clone() for p in trainer.params]
        m = trainer.update(episodes)
        assert m["train/dropped_microbatches"] >= 1 and "loss/clip_fraction" not in m
        assert all(torch.equal(a, p) for a, p in zip(before, trainer.params))
    finally:
        trainer.close()


def test_token_budget_microbatches_give_the_gradient_of_one_batch(tmp_path, tiny, toy_tasks):
    grads = {}
    for name, kw in {"one": dict(micro_batch_size=64), "tokens": dict(max_tokens_per_microbatch=60)}.items():
        trainer = Trainer(_toy(tmp_path / name, tiny, toy_tasks, param_dtype="float64", dynamic_sampling="off", **kw))
        try:
            episodes = trainer.collect(0)
            batch, _ = trainer.make_batch(episodes)
            grads[name + "_mbs"] = len(trainer._micro_batches(batch.samples))
            trainer.optimizer.step = lambda *a, **k: None
            trainer.update(episodes)
            grads[name] = [p.grad.clone() for p in trainer.params]
        finally:
            trainer.close()
    assert grads["one_mbs"] == 1 and grads["tokens_mbs"] > 1
    for a, b in zip(grads["one"], grads["tokens"]):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_token_budget_packs_by_padded_tokens():
    from agents.train.batching import token_budget_microbatches

    samples = [[0] * n for n in (10, 10, 10, 30, 50, 200)]
    mbs = token_budget_microbatches(samples, max_tokens=60)
    assert [[len(s) for s in mb] for mb in mbs] == [[10, 10, 10], [30], [50], [200]]
    assert all(len(mb) * max(map(len, mb)) <= 60 or len(mb) == 1 for mb in mbs)


def test_lr_warmup_and_cosine_schedule(tmp_path, tiny, toy_tasks):
    trainer = Trainer(_toy(tmp_path, tiny, toy_tasks, steps=10, lr=1e-3, lr_warmup_steps=2, lr_schedule="cosine",
                           min_lr_ratio=0.1))
    try:
        factors = [trainer._lr_factor(k) for k in range(11)]
        assert factors[:2] == [0.5, 1.0] and factors[2] == pytest.approx(1.0)
        assert factors[10] == pytest.approx(0.1) and all(a >= b for a, b in zip(factors[2:], factors[3:]))
    finally:
        trainer.close()


# ----------------------------------------------------------------------------------------- Ray


def test_ray_rollout_workers_follow_the_trainer(tmp_path, tiny, toy_tasks, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent) + ":" + str(REPO))
    local_cfg = _toy(tmp_path / "local", tiny, toy_tasks, steps=2, reward_fn="test_train_recipe:signal_for_odd_tasks")
    local = Trainer(local_cfg)
    try:
        local_hist = local.train(progress=None)
        local_eps = local.collect(2)
    finally:
        local.close()
    remote = Trainer(dataclasses.replace(local_cfg, output_dir=str(tmp_path / "ray"), ray="local", ray_workers=1))
    try:
        remote_hist = remote.train(progress=None)
        remote_eps = remote.collect(2)
    finally:
        remote.close()
    # same seeds, same batching, same weights pushed after each update: the same samples
    assert [h["reward/mean"] for h in remote_hist] == [h["reward/mean"] for h in local_hist]
    assert [e.trajectories["agent"].turns[0].response_ids for e in remote_eps] == \
        [e.trajectories["agent"].turns[0].response_ids for e in local_eps]
