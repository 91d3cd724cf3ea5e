"""GRPO training on the WideSeek env: ``wideseek train --config FILE [--set k=v] [--env K=V] [--ray ADDR]``.

- :mod:`agents.train.config`: :class:`TrainConfig`, every knob with the paper's defaults;
- :mod:`agents.train.trainer`: :class:`Trainer`, one step as named phases (collect, make_batch,
  compute_old_logprobs, optimize, sync_weights, evaluate, save_checkpoint);
- :mod:`agents.train.batching`: dynamic sampling and token-budget micro-batches;
- :mod:`agents.train.metrics`: metrics.jsonl / TensorBoard and the per-step statistics;
- :mod:`agents.train.checkpoints`: the checkpoint format (shared with ``wideseek sft``);
- :mod:`agents.train.ray_rollouts`: rollout workers on Ray.

The loss itself is :mod:`agents.grpo`. See docs/training.md and examples/train/.
"""

from agents.train.config import TrainConfig, TrainConfigError
from agents.train.trainer import Trainer, train

__all__ = ["TrainConfig", "TrainConfigError", "Trainer", "train"]
