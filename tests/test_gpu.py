"""The GPU paths: GRPO steps, the transformers policy and evaluation during training on CUDA.

Skipped (with the reason) where torch sees no CUDA device, as on CI; run on a GPU machine with
``pytest tests/test_gpu.py`` (``benchmarks/gpu_check.sh`` does, and records what it measured)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none visible to torch)")

from agents.train import TrainConfig, Trainer  # noqa: E402
from wideseek_env.tasks import ColumnSpec, Task, save_tasks  # noqa: E402


def answer_length(task, answer, record) -> float:
    return min(len(answer), 40) / 40.0


@pytest.fixture(scope="module")
def toy_tasks(tmp_path_factory) -> Path:
    path = tmp_path_factory.getbasetemp() / "gpu-toy-tasks.jsonl"
    save_tasks([Task(id=f"g{i}", query=q, language="en", required_columns=["name"], unique_columns=["name"],
                     columns={"name": ColumnSpec("name")}, gold=[{"name": "x"}])
                for i, q in enumerate(["Name a colour.", "Name a city.", "Name a fox."])], path)
    return path


def _config(tmp: Path, tasks: Path, **kw) -> TrainConfig:
    base = dict(model="tiny", tasks=str(tasks), tools="none", preset="single", reward_fn=answer_length, steps=2,
                tasks_per_step=2, group_size=4, max_tokens=16, lr=1e-3, output_dir=str(tmp), save_every=1,
                logger="jsonl", seed=1)
    base.update(kw)
    return TrainConfig(**base)


def test_grpo_steps_run_on_cuda_under_bf16_autocast(tmp_path, toy_tasks):
    trainer = Trainer(_config(tmp_path, toy_tasks))
    try:
        assert trainer.device.type == "cuda" and trainer.autocast_dtype == torch.bfloat16
        assert next(trainer.model.parameters()).dtype == torch.float32  # master weights stay fp32
        before = [p.detach().clone() for p in trainer.params]
        history = trainer.train(progress=None)
        assert len(history) == 2 and any(h["train/skipped"] == 0.0 for h in history)
        assert any(not torch.equal(a, p) for a, p in zip(before, trainer.params))
        for h in history:
            if h["train/skipped"] == 0.0:
                assert h["grad_norm"] > 0 and h["logprob_gap/mean_abs"] < 0.1  # engine = the same model
    finally:
        trainer.close()


def test_resume_on_cuda_continues_from_the_checkpoint(tmp_path, toy_tasks):
    first = Trainer(_config(tmp_path, toy_tasks, steps=1))
    try:
        first.train(progress=None)
    finally:
        first.close()
    resumed = Trainer(_config(tmp_path, toy_tasks, steps=2, resume="auto"))
    try:
        assert resumed.step == 1
        resumed.train(progress=None)
        assert resumed.step == 2 and (tmp_path / "checkpoints" / "step_000002" / "model").is_dir()
    finally:
        resumed.close()


def test_evaluation_during_training_runs_on_cuda(tmp_path, ottqa_corpus, generated_tasks):
    trainer = Trainer(TrainConfig(model="tiny", corpus=str(ottqa_corpus), steps=1, tasks_per_step=1, group_size=2,
                                  max_tokens=16, max_model_len=4096, eval_every=1, eval_limit=2,
                                  output_dir=str(tmp_path), logger="jsonl"))
    try:
        history = trainer.train(progress=None)
        assert history[0]["eval/episodes"] == 2
        assert (tmp_path / "evals" / "step_000001" / "transcripts.jsonl").exists()
    finally:
        trainer.close()
