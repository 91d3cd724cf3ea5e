"""Train on WideSeek tasks with TRL's GRPOTrainer through the ``environment_factory`` adapter.

Run it (after ``bash scripts/setup.sh`` and ``wideseek demo``, which builds the corpus and the tasks)::

    python examples/trl_grpo.py                          # tiny random model, 2 steps: a smoke run
    python examples/trl_grpo.py --model smollm2 --steps 10 --tasks 8

The single agent gets ``search`` and ``access`` as tools (``WideSeekTRLEnv``'s methods; their docstrings
are the tool schemas), ``reset`` puts each dataset row's task into the prompt, and the reward is the
env's episode reward: the item F1 of the final answer's table (row F1 and success are logged with weight
0). See ``docs/integrations.md`` for the limits.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Args:
    """What the example trains on and how long."""

    model: str = "tiny"
    """``tiny`` (agents.models.tiny_test_model), ``smollm2`` (SmolLM2-135M-Instruct) or a model directory."""
    corpus: str = "data/corpus-ottqa"
    """A built corpus directory."""
    task_file: str = "data/tasks-ottqa/train.jsonl"
    """The task file to train on."""
    tasks: int = 4
    """How many tasks of the file (the first ones by id)."""
    steps: int = 2
    """GRPO steps."""
    group: int = 2
    """Rollouts per task (GRPO group size)."""
    max_completion_length: int = 128
    """Token budget of a whole multi-turn completion (all turns and tool results together)."""
    max_tool_calls: int = 8
    """TRL's tool-calling iterations per rollout (each call is one env turn)."""
    lr: float = 1e-6
    out: str = ""
    """Output folder (default: a temporary one)."""


def model_dir(name: str) -> Path:
    from agents.models import smollm2_model_dir, tiny_test_model
    from wideseek_env.paths import home_dir

    if name == "tiny":
        return tiny_test_model(home_dir() / "models" / "tiny-test")
    if name == "smollm2":
        return smollm2_model_dir()
    return Path(name)


def main(args: Args) -> None:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from wideseek_env.integrations.trl_env import (
        REWARD_FUNCS,
        REWARD_WEIGHTS,
        environment_factory,
        prepare_tokenizer,
        task_dataset,
    )
    from wideseek_env.tasks import load_tasks

    path = model_dir(args.model)
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(path))
    model = AutoModelForCausalLM.from_pretrained(path)
    ids = sorted(t.id for t in load_tasks(Path(args.task_file)))[: args.tasks]
    config = GRPOConfig(
        output_dir=args.out or tempfile.mkdtemp(prefix="trl-grpo-"),
        max_steps=args.steps, per_device_train_batch_size=args.group, num_generations=args.group,
        max_completion_length=args.max_completion_length, max_tool_calling_iterations=args.max_tool_calls,
        learning_rate=args.lr, temperature=1.0, top_p=1.0, epsilon=0.2, epsilon_high=0.28,
        reward_weights=REWARD_WEIGHTS, logging_steps=1, report_to="none", save_strategy="no",
        use_cpu=True, bf16=False,
    )
    trainer = GRPOTrainer(
        model=model, processing_class=tokenizer, args=config,
        train_dataset=task_dataset(args.task_file, task_ids=ids), reward_funcs=REWARD_FUNCS,
        environment_factory=environment_factory(args.corpus, args.task_file),
    )
    trainer.train()
    for entry in trainer.state.log_history:
        if "rewards/episode_reward/mean" in entry:
            print(f"step {entry['step']}: reward {entry['rewards/episode_reward/mean']:.3f} "
                  f"row_f1 {entry['rewards/row_f1/mean']:.3f} tool calls/rollout "
                  f"{entry.get('tools/call_frequency', 0.0):.2f} step time {entry.get('step_time', 0.0):.1f}s")


def parse_args(argv: list[str] | None = None) -> Args:
    defaults = Args()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in vars(defaults).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    return Args(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main(parse_args())
