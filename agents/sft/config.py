"""``SFTConfig``: every knob of ``wideseek sft`` (supervised fine-tuning on demonstrations)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from agents.config_file import coerce_float_fields, construct, read_yaml_config
from wideseek_env.errors import WideseekError

__all__ = ["SFTConfig", "SFTConfigError"]


class SFTConfigError(WideseekError, ValueError):
    """An invalid SFT config; the message names the field."""


@dataclass
class SFTConfig:
    """An SFT run: ``demos`` (directories or JSONL files of ``wideseek demos``) train ``model``.

    The loss is the mean cross-entropy over assistant tokens only (the records' ``loss_mask``). Records
    longer than ``max_length`` tokens are skipped (counted). A seeded ``heldout_fraction`` of the episodes
    is held out; its loss is logged every ``eval_every`` steps. Checkpoints are those of ``wideseek train``
    (``output_dir/checkpoints/step_N``), so ``wideseek train`` with ``model: <output_dir>/checkpoints/step_N``
    starts from one."""

    demos: list[str] = field(default_factory=list)
    model: str = "smollm2"
    device: str = "auto"
    param_dtype: str = "float32"
    #: "auto": bfloat16 on CUDA and CPU (autocast); "none" for full precision.
    compute_dtype: str = "auto"
    gradient_checkpointing: bool = True
    lora: dict[str, Any] | None = None  # as TrainConfig.lora
    max_length: int = 4096
    steps: int = 200  # optimizer steps
    batch_size: int = 8  # sequences per optimizer step
    micro_batch_size: int = 1  # sequences per forward/backward
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0
    lr_warmup_steps: int = 5
    lr_schedule: str = "cosine"
    min_lr_ratio: float = 0.1
    heldout_fraction: float = 0.05
    eval_every: int = 25
    output_dir: str = "runs/sft"
    seed: int = 0
    save_every: int = 50  # 0: only the last step
    keep_checkpoints: int | None = 2
    resume: str | None = "auto"  # None | "auto" | a checkpoint directory
    logger: str = "jsonl"  # jsonl | tensorboard | auto

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SFTConfig":
        if not isinstance(data, Mapping):
            raise SFTConfigError(f"an SFT config must be a mapping, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SFTConfigError(f"unknown SFT config key(s) {unknown}; known keys: {', '.join(sorted(names))}")
        data = dict(data)
        if isinstance(data.get("demos"), str):
            data["demos"] = [data["demos"]]
        if data.get("betas") is not None:
            data["betas"] = tuple(float(b) for b in data["betas"])
        coerce_float_fields(cls, data, SFTConfigError)
        return construct(cls, data, SFTConfigError)

    @classmethod
    def from_yaml(cls, path: str, overrides: Sequence[str] = ()) -> "SFTConfig":
        data = read_yaml_config(path, overrides, SFTConfigError, "SFT config")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    def validate(self) -> None:
        def bad(name: str, why: str) -> None:
            raise SFTConfigError(f"SFTConfig.{name} {why}, got {getattr(self, name)!r}")

        if not self.demos:
            bad("demos", "must name at least one demos directory or JSONL file")
        for name in ("max_length", "steps", "batch_size", "micro_batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(name, "must be an integer >= 1")
        for name in ("lr_warmup_steps", "eval_every", "save_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                bad(name, "must be an integer >= 0")
        if self.micro_batch_size > self.batch_size:
            bad("micro_batch_size", "must be <= batch_size")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            bad("lr", "must be a finite number > 0")
        if not 0 <= self.heldout_fraction < 1:
            bad("heldout_fraction", "must be in [0, 1)")
        from agents.train.schedule import SCHEDULES

        choices = {"lr_schedule": SCHEDULES, "compute_dtype": ("auto", "none", "bfloat16", "float16"),
                   "param_dtype": ("float32", "bfloat16"), "logger": ("auto", "tensorboard", "jsonl")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                bad(name, f"must be one of {', '.join(allowed)}")
