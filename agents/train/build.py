"""What a training run is built from, shared by the trainer and its Ray rollout workers: the rollout
sampling settings, the sampling policy and the env setup (all through :mod:`agents.setup`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.train.config import TrainConfig, TrainConfigError
from wideseek_env.errors import require

__all__ = ["rollout_sampling", "rollout_policy", "train_env_setup", "load_training_model"]


def rollout_sampling(cfg: TrainConfig) -> dict[str, Any]:
    """Per-role sampling settings of the rollouts."""
    base = {"temperature": cfg.temperature, "top_p": cfg.top_p, "max_tokens": cfg.max_tokens}
    out = {"default": dict(base)}
    for role, over in (cfg.sampling or {}).items():
        out[role] = {**base, **dict(over)}
    return out


def rollout_policy(cfg: TrainConfig, model_dir: str, *, model: Any = None, tokenizer: Any = None) -> Any:
    """The sampling policy of a run: ``hf`` on ``model`` (the training model itself, or a replica loaded
    from ``model_dir``) or a ``vllm`` engine on ``model_dir``. Both record token trajectories."""
    from agents.setup import build_policy

    if cfg.policy == "hf":
        # With a temperature != 1 the ratio must use the distribution sampled from ("processed"),
        # which token_logprobs reproduces by dividing the logits by the temperature.
        return build_policy("hf", model=model if model is not None else model_dir, tokenizer=tokenizer,
                            sampling=rollout_sampling(cfg), seed=cfg.seed, max_model_len=cfg.max_model_len,
                            record_trajectories=True,
                            options={"batch_size": cfg.generation_batch_size,
                                     "logprobs_mode": "raw" if cfg.temperature == 1.0 else "processed"})
    kwargs = dict(cfg.vllm_kwargs)
    if cfg.temperature != 1.0:
        kwargs.setdefault("logprobs_mode", "processed_logprobs")
    kwargs.setdefault("per_request_seed", False)
    return build_policy("vllm", model=model_dir, sampling=rollout_sampling(cfg), seed=cfg.seed,
                        max_model_len=cfg.max_model_len or 4096, record_trajectories=True, options=kwargs)


def train_env_setup(cfg: TrainConfig, train_file: Path) -> Any:
    """The envs of a run: the train tasks, the preset + ``env`` overrides, the corpus, reward and tools."""
    from agents.setup import EnvSetup, SetupError, env_config
    from wideseek_env.tasks import load_tasks

    try:
        return EnvSetup.build(list(load_tasks(train_file)), env_config(cfg.preset, cfg.env),
                              corpus=cfg.corpus, reward_fn=cfg.reward_fn, tools=cfg.tools)
    except SetupError as exc:
        raise TrainConfigError(str(exc)) from None


def load_training_model(cfg: TrainConfig, model_dir: Path, device: Any, resume_dir: Path | None) -> Any:
    """The model to train: ``model_dir`` (or the resumed checkpoint's weights) in ``param_dtype`` on ``device``,
    with gradient checkpointing and LoRA (a fresh adapter, or the checkpoint's) as configured."""
    torch = require("torch", "train")
    transformers = require("transformers", "train")
    src = model_dir
    if resume_dir is not None and cfg.lora is None:
        src = resume_dir / "model"
    model = transformers.AutoModelForCausalLM.from_pretrained(str(src), dtype=getattr(torch, cfg.param_dtype))
    model.to(device)
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
        model.to(device)
    return model
