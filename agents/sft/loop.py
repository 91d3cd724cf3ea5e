"""The SFT loop: masked cross-entropy on assistant tokens, AdamW with the shared LR schedule, checkpoints
in the format of ``wideseek train`` (:mod:`agents.train.checkpoints`), resumable.

Outputs in ``output_dir``: ``metrics.jsonl`` (per step: ``loss``, ``lr``, ``grad_norm``, ``tokens``,
``time/step_s``; every ``eval_every`` steps and at the end ``heldout/loss``), ``checkpoints/step_N/``,
``config.json``. ``resume: auto`` continues from the latest checkpoint with the same data order.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from agents.sft.config import SFTConfig, SFTConfigError
from agents.sft.data import Example, collate, load_examples, split_heldout, step_examples
from agents.train.build import load_training_model
from agents.train.checkpoints import find_resume, list_checkpoints, load_trainer_state, restore_rng, rng_state, save_checkpoint
from agents.train.metrics import MetricsLogger
from agents.train.schedule import lr_factor
from wideseek_env.errors import require

__all__ = ["SFTRun", "run_sft", "masked_loss_sum"]


def masked_loss_sum(model: Any, ids: Any, attn: Any, mask: Any, torch: Any) -> Any:
    """Sum of next-token cross-entropy over positions whose TARGET token has ``mask`` 1."""
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    targets = ids[:, 1:]
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                           reduction="none").view_as(targets)
    return (ce * mask[:, 1:]).sum()


class SFTRun:
    """``SFTRun(config).train()``; ``heldout_loss()`` and ``loss_on(examples)`` for checks."""

    def __init__(self, config: SFTConfig) -> None:
        from agents.setup import SetupError, resolve_model

        self.config = cfg = config
        self.torch = torch = require("torch", "train")
        transformers = require("transformers", "train")
        self.out_dir = Path(cfg.output_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        try:
            self.model_dir = Path(resolve_model(cfg.model))
        except SetupError as exc:
            raise SFTConfigError(f"SFTConfig.model: {exc}") from None
        examples, self.skipped = load_examples(cfg.demos, cfg.max_length)
        if not examples:
            raise SFTConfigError(f"no demonstration of at most {cfg.max_length} tokens in {cfg.demos}")
        self.train_set, self.heldout = split_heldout(examples, cfg.heldout_fraction, cfg.seed)
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto"
                                   else cfg.device)
        cd = "bfloat16" if cfg.compute_dtype == "auto" else cfg.compute_dtype
        self.autocast_dtype = None if cd == "none" else getattr(torch, cd)
        resume = find_resume(self.config.resume, self.out_dir / "checkpoints", "SFTConfig.resume")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.model_dir))
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.model = load_training_model(cfg, self.model_dir, self.device, resume)  # type: ignore[arg-type]
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.adam_eps,
                                           weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(
            s, total=cfg.steps, warmup_steps=cfg.lr_warmup_steps, schedule=cfg.lr_schedule,
            min_lr_ratio=cfg.min_lr_ratio))
        self.step = 0
        if resume is not None:
            state = load_trainer_state(resume)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.step = int(state["step"])
            restore_rng(state["rng"])
        self.logger = MetricsLogger(self.out_dir, cfg.logger, append=resume is not None,
                                    resume_step=self.step if resume is not None else None)
        (self.out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1) + "\n")

    def _autocast(self) -> Any:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return self.torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _micro(self, batch: Sequence[Example]) -> list[list[Example]]:
        k = self.config.micro_batch_size
        ordered = sorted(batch, key=lambda e: len(e.input_ids))  # similar lengths pad less
        return [ordered[i:i + k] for i in range(0, len(ordered), k)]

    def loss_on(self, examples: Sequence[Example]) -> float:
        """Mean cross-entropy per assistant token of ``examples`` under the current weights."""
        torch = self.torch
        total, tokens = 0.0, 0
        self.model.eval()
        with torch.no_grad(), self._autocast():
            for micro in self._micro(examples):
                ids, attn, mask = (t.to(self.device) for t in collate(micro, self.pad_id, torch))
                total += float(masked_loss_sum(self.model, ids, attn, mask, torch))
                tokens += sum(e.trained_tokens for e in micro)
        self.model.train()
        return total / max(1, tokens)

    def train_step(self) -> dict[str, float]:
        torch, cfg = self.torch, self.config
        t0 = time.perf_counter()
        batch = step_examples(self.train_set, self.step, cfg.batch_size, cfg.seed)
        tokens = sum(e.trained_tokens for e in batch)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in self._micro(batch):
            ids, attn, mask = (t.to(self.device) for t in collate(micro, self.pad_id, torch))
            with self._autocast():
                loss = masked_loss_sum(self.model, ids, attn, mask, torch) / tokens
            loss.backward()
            total += float(loss.detach())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm))
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return {"loss": total, "lr": lr, "grad_norm": grad_norm, "tokens": float(tokens),
                "time/step_s": time.perf_counter() - t0}

    def save_checkpoint(self) -> Path:
        cfg = self.config
        state = {"step": self.step, "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "rng": rng_state(), "config": cfg.to_dict()}
        return save_checkpoint(self.out_dir / "checkpoints" / f"step_{self.step:06d}", model=self.model,
                               tokenizer=self.tokenizer, lora=cfg.lora is not None, state=state,
                               keep=cfg.keep_checkpoints)

    def train(self, *, progress: bool = True) -> list[dict[str, float]]:
        cfg = self.config
        history = []
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, desc="sft", unit="step", file=sys.stderr,
                       dynamic_ncols=True)
        try:
            if self.step == 0 and self.heldout and cfg.eval_every:
                self.logger.log(0, {"heldout/loss": self.loss_on(self.heldout)})
            while self.step < cfg.steps:
                metrics = self.train_step()
                if self.heldout and (cfg.eval_every and self.step % cfg.eval_every == 0 or self.step == cfg.steps):
                    metrics["heldout/loss"] = self.loss_on(self.heldout)
                if cfg.save_every and self.step % cfg.save_every == 0 or self.step == cfg.steps:
                    self.save_checkpoint()
                self.logger.log(self.step, metrics)
                history.append(metrics)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{metrics['loss']:.3f}", **(
                        {"heldout": f"{metrics['heldout/loss']:.3f}"} if "heldout/loss" in metrics else {}))
        finally:
            if bar is not None:
                bar.close()
        return history

    def close(self) -> None:
        self.logger.close()


def run_sft(config: SFTConfig, *, progress: bool = True) -> Path:
    """Run (or resume) ``config`` to its last step; return the last checkpoint."""
    run = SFTRun(config)
    try:
        run.train(progress=progress)
    finally:
        run.close()
    return list_checkpoints(Path(config.output_dir) / "checkpoints")[-1]
