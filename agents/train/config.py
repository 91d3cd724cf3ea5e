"""``TrainConfig``: every knob of a GRPO run, grouped by purpose, with the paper's defaults.

Defaults follow WideSeek-R1 as trained with RLinf (REFERENCE.md sections 1 and 5) unless a field says
otherwise: the train split, the ``rlinf`` env preset, RLinf's turn selection, old log-probs from the
rollout engine with the importance-ratio guard, Adam lr 1e-6 constant with eps 1e-5, weight decay 0.01,
grad clip 1.0, G = 8, eps 0.2/0.28, dual clip 10, an 8,192-token per-turn budget. What departs from the
paper is named: ``dynamic_sampling: drop`` skips zero-variance groups before any log-prob or backward
work but keeps the paper's B in the loss, so the gradient is the paper's exactly (they contribute 0);
``resample`` is DAPO's filter (verl ``filter_groups``), not the paper's.

A YAML file holds a mapping of these fields (unknown keys are errors); ``--set key=value`` overrides one.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from agents.config_file import coerce_float_fields, construct, read_yaml_config
from wideseek_env.errors import WideseekError

__all__ = ["TrainConfig", "TrainConfigError", "AGGREGATION_NAMES"]


class TrainConfigError(WideseekError, ValueError):
    """An invalid training config; the message names the field."""


AGGREGATION_NAMES = ("dual_level", "token_mean", "seq_mean_token_mean", "seq_mean_token_sum",
                     "seq_mean_token_sum_norm")


@dataclass
class TrainConfig:
    """Every knob of a GRPO run (see the module docstring for the defaults' provenance)."""

    # ---- model and sampling engine
    #: A model directory, a checkpoint directory of ``wideseek sft`` / ``wideseek train`` (its ``model/``
    #: is used: how a GRPO run starts from an SFT warm start), ``"tiny"`` or ``"smollm2"``.
    model: str = "tiny"
    #: ``"hf"`` (transformers generate, shares the training model) or ``"vllm"`` (an engine fed new
    #: weights after each update).
    policy: str = "hf"
    device: str = "auto"  # "auto": cuda if available, else cpu
    param_dtype: str = "float32"
    #: "auto": bfloat16 autocast on CUDA, none on CPU; or "none"/"bfloat16"/"float16" (bfloat16 is ~2x
    #: faster on CPUs with avx512_bf16).
    compute_dtype: str = "auto"
    max_model_len: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    #: Generated tokens per turn (the per-turn budget; a turn cut here is a runaway turn, flagged failed).
    max_tokens: int = 8192
    #: Per-role sampling overrides, e.g. ``{"subagent": {"max_tokens": 512}}``.
    sampling: dict[str, dict[str, Any]] = field(default_factory=dict)
    generation_batch_size: int | None = None  # hf policy: sequences per generate call (None: all)
    vllm_kwargs: dict[str, Any] = field(default_factory=dict)
    gradient_checkpointing: bool = False
    #: LoRA (needs ``peft``): ``{"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}``.
    lora: dict[str, Any] | None = None

    # ---- environment and tasks
    #: A task file; None: the generated train split (never the test split).
    tasks: str | None = None
    task_ids: list[str] | None = None  # train on these tasks only
    task_kinds: list[str] | None = None  # train on tasks of these kinds only (e.g. [transcribe] first)
    #: Training on the task file that evaluation uses is refused unless this is true.
    allow_eval_tasks: bool = False
    corpus: str | None = None  # a built corpus directory or an http(s) retrieval server URL
    preset: str = "rlinf"  # an env preset: default | paper | rlinf | single | compact
    env: dict[str, Any] = field(default_factory=dict)  # EnvConfig overrides (any field)
    #: ``"module:function"`` or ``"path/file.py:function"`` (or a callable): ``fn(task, answer, record)
    #: -> float``; None: the env's default (item F1, shaped under ``rlinf``).
    reward_fn: Any = None
    #: ``"default"`` (search + access on ``corpus``), ``"none"``, or ``"module:function"`` returning tools.
    tools: Any = "default"
    max_parallel_envs: int | None = None  # episodes run at once (None: the whole batch)

    # ---- GRPO
    steps: int = 100
    tasks_per_step: int = 8  # B questions per step
    group_size: int = 8  # G rollouts per question
    aggregation: str = "dual_level"
    max_len: int | None = None  # the constant of seq_mean_token_sum_norm (default: max_tokens)
    turn_selection: str = "rlinf"  # rlinf | all
    scale_advantages: bool = True  # False: Dr. GRPO (no std normalisation)
    adv_eps: float = 1e-6
    eps_low: float = 0.2
    eps_high: float = 0.28
    dual_clip: float | None = 10.0
    log_ratio_clamp: float = 20.0
    kl_beta: float = 0.0  # > 0: k3 KL to the initial model (LoRA: the base with adapters off)
    #: ``engine``: the sampling engine's logprobs are the old policy (RLinf); ``recompute``: the trainer's.
    old_logprobs: str = "engine"
    #: A micro-batch whose mean importance ratio (trainer / old) over its trained tokens exceeds this is
    #: dropped (RLinf ``early_stop_imp_ratio``); None: never.
    max_importance_ratio: float | None = 5.0
    #: ``drop``: zero-variance groups get no log-prob or backward work (same gradient as the paper);
    #: ``resample``: also draw more tasks, up to ``max_resample_rounds`` rounds, to fill the batch with
    #: groups that have signal (DAPO); ``off``: every group goes through the update.
    dynamic_sampling: str = "drop"
    max_resample_rounds: int = 3
    epochs: int = 1  # passes over each batch
    num_minibatches: int = 1  # optimizer steps per pass (one per mini-batch of whole rollouts)
    micro_batch_size: int = 4  # samples per forward/backward (gradient accumulation)
    #: Pack micro-batches by padded tokens (samples x longest) instead of ``micro_batch_size``.
    max_tokens_per_microbatch: int | None = None

    # ---- optimizer
    lr: float = 1e-6
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-5
    max_grad_norm: float = 1.0
    lr_warmup_steps: int = 0  # linear warm-up from 0 over this many optimizer steps
    lr_schedule: str = "constant"  # constant | linear | cosine (decay to min_lr_ratio * lr at the end)
    min_lr_ratio: float = 0.0

    # ---- evaluation during training
    #: Evaluate the current policy (greedy) at step 0 and every N steps (0: never).
    eval_every: int = 0
    eval_tasks: str | None = None  # None: the generated test split
    eval_limit: int | None = 50  # a fixed held-out sample (the first N of a seeded shuffle)
    eval_max_tokens: int | None = None  # per-turn budget of evaluation (None: max_tokens)
    eval_transcripts: int = 4  # decoded episodes (every agent's transcript) kept per evaluation

    # ---- run
    output_dir: str = "runs/grpo"
    seed: int = 0
    save_every: int = 10  # steps between checkpoints (0: only the last step)
    keep_checkpoints: int | None = 3  # None: keep all
    resume: str | None = None  # None | "auto" | a checkpoint directory
    logger: str = "auto"  # auto | tensorboard | jsonl
    #: Rollouts on Ray: ``"local"`` or a cluster address; workers (envs + a policy replica) get the new
    #: weights after each update. None: rollouts in this process.
    ray: str | None = None
    ray_workers: int = 2

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ loading

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        if not isinstance(data, Mapping):
            raise TrainConfigError(f"a training config must be a mapping of fields, got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.field_names()))
        if unknown:
            hint = " ('env_preset' is now 'preset')" if "env_preset" in unknown else ""
            raise TrainConfigError(
                f"unknown training config key(s) {unknown}{hint}; known keys: {', '.join(cls.field_names())}"
            )
        data = dict(data)
        if "betas" in data and data["betas"] is not None:
            try:
                betas = tuple(float(b) for b in data["betas"])
            except (TypeError, ValueError):
                betas = ()
            if len(betas) != 2 or not all(math.isfinite(b) for b in betas):
                raise TrainConfigError(f"TrainConfig.betas must be two numbers, got {data['betas']!r}")
            data["betas"] = betas
        # YAML 1.1 reads an unquoted `off` as False (`--set dynamic_sampling=off`, `dynamic_sampling: off`)
        if data.get("dynamic_sampling") is False:
            data["dynamic_sampling"] = "off"
        coerce_float_fields(cls, data, TrainConfigError)
        return construct(cls, data, TrainConfigError)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: Sequence[str] = (),
                  env_overrides: Sequence[str] = ()) -> "TrainConfig":
        """Load a YAML file; ``overrides`` are ``key=value`` strings (values parsed as YAML);
        ``env_overrides`` are ``KEY=VALUE`` env settings merged into ``env`` (``--env``)."""
        data = read_yaml_config(path, overrides, TrainConfigError, "training config")
        if env_overrides:
            from agents.setup import SetupError, parse_env_overrides

            try:
                data["env"] = {**dict(data.get("env") or {}), **parse_env_overrides(env_overrides)}
            except SetupError as exc:
                raise TrainConfigError(str(exc)) from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        if callable(self.reward_fn):
            d["reward_fn"] = f"{getattr(self.reward_fn, '__module__', '?')}:{getattr(self.reward_fn, '__qualname__', '?')}"
        if callable(self.tools) or isinstance(self.tools, (list, tuple, dict)):
            d["tools"] = repr(self.tools)
        return d

    def validate(self) -> None:
        def bad(name: str, why: str) -> None:
            raise TrainConfigError(f"TrainConfig.{name} {why}, got {getattr(self, name)!r}")

        for name in ("steps", "tasks_per_step", "group_size", "epochs", "num_minibatches", "micro_batch_size",
                     "max_tokens", "max_resample_rounds", "ray_workers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(name, "must be an integer >= 1")
        for name in ("lr_warmup_steps", "eval_every", "eval_transcripts", "save_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                bad(name, "must be an integer >= 0")
        choices = {
            "policy": ("hf", "vllm"), "aggregation": AGGREGATION_NAMES, "turn_selection": ("all", "rlinf"),
            "old_logprobs": ("recompute", "engine"), "logger": ("auto", "tensorboard", "jsonl"),
            "param_dtype": ("float32", "bfloat16", "float16", "float64"),
            "compute_dtype": ("auto", "none", "bfloat16", "float16"),
            "dynamic_sampling": ("off", "drop", "resample"), "lr_schedule": ("constant", "linear", "cosine"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                bad(name, f"must be one of {', '.join(allowed)}")
        from wideseek_env.config import PRESETS

        if self.preset not in PRESETS:
            bad("preset", f"must be one of {', '.join(PRESETS)}")
        if not (0 <= self.eps_low < 1) or self.eps_high < 0:
            raise TrainConfigError("TrainConfig.eps_low must be in [0, 1) and eps_high >= 0")
        if self.dual_clip is not None and self.dual_clip <= 1:
            bad("dual_clip", "must be > 1 or null")
        if self.lr <= 0 or self.max_grad_norm <= 0:
            raise TrainConfigError("TrainConfig.lr and max_grad_norm must be > 0")
        if not 0 <= self.min_lr_ratio <= 1:
            bad("min_lr_ratio", "must be in [0, 1]")
        if self.max_importance_ratio is not None and self.max_importance_ratio <= 1:
            bad("max_importance_ratio", "must be > 1 or null")
        if self.num_minibatches > self.tasks_per_step * self.group_size:
            bad("num_minibatches", "must be <= tasks_per_step * group_size")
        if self.lora is not None and not isinstance(self.lora, Mapping):
            bad("lora", "must be a mapping (r, alpha, dropout, target_modules) or null")
        for name in ("max_len", "max_tokens_per_microbatch", "eval_limit", "eval_max_tokens"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                bad(name, "must be an integer >= 1 or null")
        if not isinstance(self.env, Mapping):
            bad("env", "must be a mapping of EnvConfig fields")
