"""``wideseek sft``: supervised fine-tuning on demonstrations (``wideseek demos``), assistant tokens only.

The warm start of the recipe demos -> SFT -> GRPO (docs/training.md): checkpoints are written in the format
of ``wideseek train`` (:mod:`agents.train.checkpoints`), so a GRPO run starts from one with
``model: <output_dir>/checkpoints/step_N``. bf16 autocast (CPU too), gradient checkpointing, LoRA optional,
resumable, a progress bar, train and held-out loss in ``metrics.jsonl``.
"""

from __future__ import annotations

from typing import Any

from agents.sft.config import SFTConfig, SFTConfigError
from agents.sft.loop import SFTRun, run_sft

__all__ = ["SFTConfig", "SFTConfigError", "SFTRun", "run_sft", "run_sft_cli"]


def run_sft_cli(args: Any) -> int:
    """``wideseek sft --config FILE [--set key=value ...]``."""
    ckpt = run_sft(SFTConfig.from_yaml(args.config, args.overrides))
    print(f"wideseek sft: last checkpoint {ckpt}")
    return 0
