"""The GRPO trainer for WideSeek multi-agent rollouts: ``wideseek train --config FILE``.

One step, each phase a named method::

    evaluate(0)                                       (eval_every > 0: greedy, held-out tasks, step 0)
    episodes  <- collect(step)                        B tasks x G multi-agent episodes (local or Ray);
                                                      with dynamic_sampling=resample, more rounds of
                                                      tasks until B groups have signal
    batch     <- make_batch(episodes)                 advantages, samples, dual-level weights; samples
                                                      of zero-variance groups set aside (counted)
    compute_old_logprobs(batch)                       only where needed: old_logprobs=recompute, a sample
                                                      without engine logprobs, or a KL reference
    optimize(batch)                                   epochs x mini-batches (optimizer steps) x micro-
                                                      batches (by samples or by tokens); a micro-batch
                                                      whose mean importance ratio > max_importance_ratio
                                                      is dropped; engine-vs-trainer gap logged
    sync_weights()                                    into the sampling engine / the Ray workers
                                                      (update(episodes) = the four phases above)
    evaluate(step)                                    every eval_every steps
    save_checkpoint()                                 every save_every steps and at the end

Precision: parameters and AdamW state stay in ``param_dtype`` (float32 by default); forward passes run
under ``compute_dtype`` autocast (bf16 on CUDA by default; set ``bfloat16`` on CPUs with avx512_bf16).
Pure-bf16 weights would silently drop most updates at lr 1e-6.

Outputs in ``output_dir``: ``metrics.jsonl`` (one row per step, and step 0 with the first evaluation),
``rollouts.jsonl`` (one row per training episode: step, task, reward, the episode's metrics),
``tb/`` (TensorBoard), ``evals/step_N/`` (the evaluation runs, with transcripts), ``checkpoints/``
(see :mod:`agents.train.checkpoints`; ``resume: auto`` continues from the latest and reproduces the
uninterrupted run), ``config.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from agents.train.batching import split_by_signal, token_budget_microbatches
from agents.train.checkpoints import (export_weights, find_resume, load_trainer_state,
                                      restore_rng, rng_state, save_checkpoint)
from agents.train.config import TrainConfig, TrainConfigError
from agents.train.evaluation import evaluate_policy
from agents.train.build import load_training_model, rollout_policy, train_env_setup
from agents.train.schedule import lr_factor
from agents.train.metrics import LogprobGap, MetricsLogger, RolloutLog, batch_metrics, mean
from wideseek_env.errors import require

log = logging.getLogger(__name__)

__all__ = ["Trainer", "train"]


class Trainer:
    """``Trainer(config).train()``. Also usable phase by phase (``collect``, ``make_batch``,
    ``compute_old_logprobs``, ``optimize``, ``sync_weights``, ``evaluate``, ``save_checkpoint``).
    ``make_env`` / ``policy`` replace the env factory or the sampling policy (tests, custom envs)."""

    def __init__(self, config: TrainConfig, *, make_env: Callable[[], Any] | None = None,
                 policy: Any = None) -> None:
        self.config = cfg = config
        self.torch = torch = require("torch", "train")
        self.transformers = require("transformers", "train")
        self.out_dir = Path(cfg.output_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.step = 0
        _seed_everything(cfg.seed)
        self.counters = {"forward_samples": 0, "backward_samples": 0}  # work done, for tests and logs

        resume_dir = find_resume(self.config.resume, self.out_dir / "checkpoints", "TrainConfig.resume")
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        )
        cd = cfg.compute_dtype
        if cd == "auto":
            cd = "bfloat16" if self.device.type == "cuda" else "none"
        self.autocast_dtype = None if cd == "none" else getattr(torch, cd)

        self.train_file, self.eval_file = self._task_files()
        self.model_dir = self._resolve_model_dir(cfg.model)
        self.tokenizer = self.transformers.AutoTokenizer.from_pretrained(str(self.model_dir))
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.model = self._load_model(resume_dir)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.adam_eps,
                                           weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self._reference = None
        if cfg.kl_beta > 0 and cfg.lora is None:
            import copy

            self._reference = copy.deepcopy(self.model).eval()
            for p in self._reference.parameters():
                p.requires_grad_(False)

        self._make_env = make_env
        self.env_setup = None if make_env is not None else self._build_env_setup()
        self._envs: list[Any] | None = None
        self._task_ids: list[str] | None = None
        self.policy = policy if policy is not None else self._make_policy()
        self.workers = None
        if cfg.ray is not None:
            from agents.train.ray_rollouts import RayRollouts

            self.workers = RayRollouts(cfg, str(self.model_dir), self.train_file)
        if resume_dir is not None:
            self._load_state(resume_dir)
            self.sync_weights()
        resume_step = self.step if resume_dir is not None else None
        self.logger = MetricsLogger(self.out_dir, cfg.logger, append=resume_dir is not None,
                                    resume_step=resume_step)
        self.rollout_log = RolloutLog(self.out_dir, append=resume_dir is not None, resume_step=resume_step)
        (self.out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, default=str) + "\n")

    # ------------------------------------------------------------------ construction

    def _task_files(self) -> tuple[Path | None, Path | None]:
        """(train file, eval file). Unset ``tasks`` is the generated train split; training on the file that
        evaluation uses is refused unless ``allow_eval_tasks``."""
        from agents.setup import SetupError, tasks_file

        cfg = self.config
        try:
            train_file = tasks_file(cfg.tasks, split="train")
            try:
                eval_file = tasks_file(cfg.eval_tasks, split="test")
            except SetupError:
                if cfg.eval_every or cfg.eval_tasks is not None:
                    raise
                eval_file = None  # no evaluation asked for and no test split generated
        except SetupError as exc:
            raise TrainConfigError(f"TrainConfig.tasks/eval_tasks: {exc}") from None
        if eval_file is not None and train_file.resolve() == eval_file.resolve() and not cfg.allow_eval_tasks:
            raise TrainConfigError(
                f"TrainConfig.tasks: {train_file} is the evaluation task file, so nothing would be held out; "
                "train on the train split (leave tasks unset), or set allow_eval_tasks: true to force it"
            )
        return train_file, eval_file

    def _resolve_model_dir(self, name: str) -> Path:
        from agents.setup import SetupError, resolve_model

        try:
            return Path(resolve_model(name))
        except SetupError as exc:
            raise TrainConfigError(f"TrainConfig.model: {exc}") from None

    def _load_model(self, resume_dir: Path | None):
        return load_training_model(self.config, self.model_dir, self.device, resume_dir)

    def _make_policy(self):
        return rollout_policy(self.config, str(self.model_dir), model=self.model, tokenizer=self.tokenizer)

    def _build_env_setup(self):
        return train_env_setup(self.config, self.train_file)

    def envs(self) -> list[Any]:
        if self._envs is None:
            make = self._make_env or self.env_setup.make_env
            n = self.config.tasks_per_step * self.config.group_size
            if self.config.max_parallel_envs:
                n = min(n, self.config.max_parallel_envs)
            self._envs = [make() for _ in range(n)]
        return self._envs

    def task_ids(self) -> list[str]:
        if self._task_ids is None:
            cfg = self.config
            tasks = self.env_setup.tasks if self.env_setup is not None else self.envs()[0].tasks
            if cfg.task_kinds:
                tasks = [t for t in tasks if getattr(t, "kind", None) in cfg.task_kinds]
            self._task_ids = list(cfg.task_ids or [t.id for t in tasks])
            if not self._task_ids:
                raise TrainConfigError(f"no training task left (task_ids={cfg.task_ids}, task_kinds={cfg.task_kinds})")
        return self._task_ids

    # ------------------------------------------------------------------ helpers

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return self.torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _micro_batches(self, samples: list[Any]) -> list[list[Any]]:
        cfg = self.config
        return token_budget_microbatches(samples, max_tokens=cfg.max_tokens_per_microbatch,
                                         max_samples=cfg.micro_batch_size)

    def _reference_ctx(self):
        """(model, context) computing reference logprobs: a frozen copy, or the LoRA base (adapters off)."""
        if self._reference is not None:
            return self._reference, contextlib.nullcontext()
        return self.model, self.model.disable_adapter()

    def _lr_factor(self, optimizer_step: int) -> float:
        """The LR multiplier after ``optimizer_step`` optimizer steps: linear warm-up, then the schedule."""
        cfg = self.config
        return lr_factor(optimizer_step, total=max(1, cfg.steps * cfg.epochs * cfg.num_minibatches),
                         warmup_steps=cfg.lr_warmup_steps, schedule=cfg.lr_schedule, min_lr_ratio=cfg.min_lr_ratio)

    # ------------------------------------------------------------------ phase: rollouts

    def draw_tasks(self, step: int, round_: int = 0) -> list[str]:
        """The B task ids of ``step`` (round ``round_`` > 0: the extra draws of dynamic resampling)."""
        import numpy as np

        ids = self.task_ids()
        rng = np.random.default_rng([self.config.seed, step, round_] if round_ else [self.config.seed, step])
        b = self.config.tasks_per_step
        picks = rng.choice(len(ids), size=b, replace=b > len(ids))
        return [ids[int(i)] for i in picks]

    def _collect_round(self, step: int, round_: int) -> list[Any]:
        from agents.rollout import collect_rollouts

        cfg = self.config
        seed = cfg.seed * 1_000_003 + step * 10_007 + round_ * 100_003
        prefix = f"s{step}-" if round_ == 0 else f"s{step}r{round_}-"
        task_ids = self.draw_tasks(step, round_)
        if self.workers is not None:
            return self.workers.collect(task_ids, cfg.group_size, seed=seed, prefix=prefix)
        with self._autocast(), self.torch.no_grad():
            return collect_rollouts(self.envs(), self.policy, task_ids, cfg.group_size, seed=seed,
                                    prefix=prefix, max_parallel=cfg.max_parallel_envs)

    def collect(self, step: int | None = None) -> list[Any]:
        """The step's episodes. With ``dynamic_sampling: resample``, more rounds of B tasks are played
        (up to ``max_resample_rounds`` in all) until B groups with signal are in hand."""
        step = self.step if step is None else step
        cfg = self.config
        episodes = self._collect_round(step, 0)
        if cfg.dynamic_sampling != "resample":
            return episodes
        rounds = 1
        while rounds < cfg.max_resample_rounds:
            signal, _ = split_by_signal(episodes)
            if len({e.group_id for e in signal}) >= cfg.tasks_per_step:
                break
            episodes += self._collect_round(step, rounds)
            rounds += 1
        return episodes

    # ------------------------------------------------------------------ phase: batch

    def make_batch(self, episodes: Sequence[Any]) -> tuple[Any, dict[str, float]]:
        """The GRPO batch of ``episodes`` and its metrics.

        ``drop``: the batch is built from every episode (so B and the weights are the paper's), then the
        samples of zero-variance groups are removed: they carry advantage 0 and add nothing to the loss.
        ``resample``: only groups with signal form the batch (DAPO), at most B of them."""
        from agents.grpo import build_batch

        cfg = self.config
        signal, flat = split_by_signal(episodes)
        chosen = list(episodes)
        if cfg.dynamic_sampling == "resample":
            keep_groups: list[Any] = []
            for e in signal:
                if e.group_id not in keep_groups and len(keep_groups) < cfg.tasks_per_step:
                    keep_groups.append(e.group_id)
            chosen = [e for e in signal if e.group_id in keep_groups]
        metrics: dict[str, float] = {}
        if not chosen:
            return None, metrics
        batch = build_batch(chosen, aggregation=cfg.aggregation, max_len=cfg.max_len or cfg.max_tokens,
                            turn_selection=cfg.turn_selection, eps=cfg.adv_eps,
                            scale_advantages=cfg.scale_advantages)
        if cfg.dynamic_sampling == "drop":
            flat_groups = {e.group_id for e in flat}
            groups = [g for g in batch.group_ids]
            before = len(batch.samples)
            batch.samples = [s for s in batch.samples if groups[s.rollout_index] not in flat_groups]
            metrics["train/skipped_samples"] = float(before - len(batch.samples))
        return batch, metrics

    # ------------------------------------------------------------------ phase: old logprobs

    def compute_old_logprobs(self, batch: Any) -> dict[str, float]:
        """A no-grad pass over the samples that need it: all with ``old_logprobs: recompute``, those
        without engine logprobs otherwise, and all when a KL reference is used. Logs the gap between the
        engine's and the trainer's logprobs of the sampled tokens where both are known."""
        from agents.grpo import collate, token_logprobs

        torch, cfg = self.torch, self.config
        need = [s for s in batch.samples
                if cfg.old_logprobs == "recompute" or not s.has_engine_logprobs or cfg.kl_beta > 0]
        if not need:
            return {}
        self.model.eval()
        gap = LogprobGap()
        with torch.no_grad(), self._autocast():
            for mb in self._micro_batches(need):
                t = collate(mb, self.pad_id, device=self.device)
                lp, _ = token_logprobs(self.model, t["input_ids"], t["attention_mask"],
                                       loss_mask=t["loss_mask"], temperature=cfg.temperature)
                self.counters["forward_samples"] += len(mb)
                for row, s in enumerate(mb):
                    new_row = lp[row, :len(s)].float()
                    if s.has_engine_logprobs:
                        gap.add(new_row, t["old_logprobs"][row, :len(s)], t["loss_mask"][row, :len(s)] > 0)
                    if cfg.old_logprobs == "recompute" or not s.has_engine_logprobs:
                        s.old_logprobs = new_row.cpu().tolist()
                if cfg.kl_beta > 0:
                    ref_model, ctx = self._reference_ctx()
                    with ctx:
                        rlp, _ = token_logprobs(ref_model, t["input_ids"], t["attention_mask"],
                                                loss_mask=t["loss_mask"], temperature=cfg.temperature)
                    for row, s in enumerate(mb):
                        s.ref_logprobs = rlp[row, :len(s)].float().cpu().tolist()
        return gap.metrics()

    # ------------------------------------------------------------------ phase: update

    def optimize(self, batch: Any) -> dict[str, float]:
        """epochs x mini-batches (one optimizer step each) x micro-batches (exact gradient accumulation)."""
        from agents.grpo import collate, grpo_loss, merge_stats, token_logprobs

        torch, cfg = self.torch, self.config
        self.model.train()
        stats, grad_norms = [], []
        dropped = 0
        gap = LogprobGap()
        ent_sum, ent_n = 0.0, 0
        for epoch in range(cfg.epochs):
            for mb_index, minibatch in enumerate(batch.split(cfg.num_minibatches)):
                first_pass = epoch == 0 and mb_index == 0  # the weights are still those that sampled
                self.optimizer.zero_grad(set_to_none=True)
                for mb in self._micro_batches(minibatch.samples):
                    t = collate(mb, self.pad_id, device=self.device)
                    with self._autocast():
                        new, ent = token_logprobs(self.model, t["input_ids"], t["attention_mask"],
                                                  loss_mask=t["loss_mask"], temperature=cfg.temperature,
                                                  with_entropy=first_pass)
                    self.counters["forward_samples"] += len(mb)
                    mask = t["loss_mask"] > 0
                    if first_pass:
                        ent_sum += float(ent[mask].sum())
                        ent_n += int(mask.sum())
                        for row, s in enumerate(mb):
                            if s.has_engine_logprobs and cfg.old_logprobs == "engine":
                                gap.add(new[row, :len(s)].detach().float(), t["old_logprobs"][row, :len(s)],
                                        mask[row, :len(s)])
                    if cfg.max_importance_ratio is not None and mask.any():
                        ratio = torch.exp((new.detach().float() - t["old_logprobs"])[mask].clamp(-20, 20)).mean()
                        if float(ratio) > cfg.max_importance_ratio:
                            dropped += 1  # RLinf: the micro-batch is too far off-policy to trust
                            continue
                    ref = t.get("ref_logprobs") if cfg.kl_beta > 0 else None
                    loss, st = grpo_loss(new.float(), t["old_logprobs"], t["advantages"], t["weights"],
                                         eps_low=cfg.eps_low, eps_high=cfg.eps_high, dual_clip=cfg.dual_clip,
                                         log_ratio_clamp=cfg.log_ratio_clamp, ref_logprobs=ref,
                                         kl_beta=cfg.kl_beta)
                    loss.backward()
                    self.counters["backward_samples"] += len(mb)
                    stats.append(st)
                gn = torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                grad_norms.append(float(gn))
                self.optimizer.step()
                self.scheduler.step()
        self.model.eval()
        metrics = {f"loss/{k}": v for k, v in merge_stats(stats).items() if k != "tokens"} if stats else {}
        metrics.update(gap.metrics())
        metrics["entropy"] = ent_sum / ent_n if ent_n else 0.0
        metrics["grad_norm"] = mean(grad_norms)
        metrics["optimizer_steps"] = float(len(grad_norms))
        metrics["train/dropped_microbatches"] = float(dropped)
        return metrics

    # ------------------------------------------------------------------ phase: weights

    def sync_weights(self) -> None:
        """Push the current weights into the sampling engine and the Ray workers (nothing to do for an hf
        policy that shares the training model)."""
        policy = self.policy
        if self.workers is not None:
            self.workers.push_weights(self.export_weights())
        if getattr(policy, "model", None) is self.model or not hasattr(policy, "load_weights"):
            return
        dtype = None
        with contextlib.suppress(Exception):
            dtype = policy.llm.llm_engine.model_config.dtype  # a vLLM engine's weight dtype
        policy.load_weights(self.export_weights(dtype))

    def export_weights(self, dtype: Any = None) -> list[tuple[str, Any]]:
        """(name, tensor) pairs in the checkpoint's HF naming, LoRA merged in (cast to ``dtype`` if given)."""
        return export_weights(self.model, lora=self.config.lora is not None, dtype=dtype)

    # ------------------------------------------------------------------ phase: evaluation

    def evaluate(self, step: int) -> dict[str, float]:
        """The current policy, greedy, on the fixed held-out sample (see :mod:`agents.train.evaluation`)."""
        with self._autocast(), self.torch.no_grad():
            return evaluate_policy(self.config, self.policy, self.model_dir, self.eval_file,
                                   self.out_dir / "evals" / f"step_{step:06d}")

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_dir(self, step: int) -> Path:
        return self.out_dir / "checkpoints" / f"step_{step:06d}"

    def save_checkpoint(self) -> Path:
        state = {"step": self.step, "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "rng": rng_state(), "config": self.config.to_dict()}
        return save_checkpoint(self.checkpoint_dir(self.step), model=self.model, tokenizer=self.tokenizer,
                               lora=self.config.lora is not None, state=state, keep=self.config.keep_checkpoints)

    def _load_state(self, ckpt: Path) -> None:
        try:
            state = load_trainer_state(ckpt)
        except Exception as exc:  # noqa: BLE001
            raise TrainConfigError(str(exc)) from None
        self.optimizer.load_state_dict(state["optimizer"])
        if "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        restore_rng(state["rng"])
        log.info("resumed from %s at step %d", ckpt, self.step)

    # ------------------------------------------------------------------ the loop

    def update(self, episodes: Sequence[Any]) -> dict[str, float]:
        """Everything after the rollouts: batch, old logprobs, optimizer steps, weight sync (timed)."""
        t0 = time.perf_counter()
        batch, metrics = self.make_batch(episodes)
        metrics.update(batch_metrics(episodes, batch))
        if batch is None or not batch.samples:
            metrics["train/skipped"] = 1.0  # nothing to learn from: no log-prob or backward work
            metrics["lr"] = float(self.optimizer.param_groups[0]["lr"])
            metrics.update({"time/logprobs_s": 0.0, "time/update_s": 0.0, "time/sync_s": 0.0})
            return metrics
        metrics["train/skipped"] = 0.0
        metrics.update(self.compute_old_logprobs(batch))
        t1 = time.perf_counter()
        metrics.update(self.optimize(batch))
        metrics["lr"] = float(self.optimizer.param_groups[0]["lr"])
        t2 = time.perf_counter()
        self.sync_weights()
        metrics.update({"time/logprobs_s": t1 - t0, "time/update_s": t2 - t1,
                        "time/sync_s": time.perf_counter() - t2})
        return metrics

    def train_step(self) -> dict[str, float]:
        """One step: :meth:`collect`, then :meth:`update`; returns its metrics."""
        t0 = time.perf_counter()
        episodes = self.collect(self.step)
        t1 = time.perf_counter()
        self.rollout_log.log(self.step + 1, episodes)
        metrics = self.update(episodes)
        self.step += 1
        metrics["time/rollout_s"] = t1 - t0
        metrics["time/step_s"] = time.perf_counter() - t0
        return metrics

    def train(self, steps: int | None = None, *, progress: Callable[[str], None] | None = print) -> list[dict]:
        """Run until ``config.steps`` (or ``steps`` more). Returns the metrics of each step run."""
        cfg = self.config
        end = cfg.steps if steps is None else self.step + steps
        history = []
        if cfg.eval_every and self.step == 0:
            self.logger.log(0, self.evaluate(0))
        while self.step < end:
            metrics = self.train_step()
            if cfg.eval_every and self.step % cfg.eval_every == 0:
                metrics.update(self.evaluate(self.step))
            if cfg.save_every and self.step % cfg.save_every == 0 or self.step == end:
                metrics["time/checkpoint_s"] = _timed(self.save_checkpoint)
            self.logger.log(self.step, metrics)
            history.append(metrics)
            if progress is not None:
                progress(
                    f"step {self.step}/{end}  reward {metrics['reward/mean']:.4f}  "
                    f"item_f1 {metrics.get('episode/item_f1', 0.0):.4f}  "
                    f"zero-var groups {int(metrics.get('groups/zero_variance', 0))}/{int(metrics.get('groups/total', 0))}  "
                    f"clip {metrics.get('loss/clip_fraction', 0.0):.3f}  "
                    f"tokens {int(metrics['train/tokens'])}  {metrics['time/step_s']:.1f}s"
                    + (f"  eval item_f1 {metrics['eval/item_f1']:.4f}" if "eval/item_f1" in metrics else "")
                )
        return history

    def close(self) -> None:
        self.logger.close()
        self.rollout_log.close()
        for env in self._envs or []:
            with contextlib.suppress(Exception):
                env.close()
        if self.env_setup is not None:
            self.env_setup.close()
        if self.workers is not None:
            self.workers.close()
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


def train(config: TrainConfig | str, overrides: Sequence[str] = (), env_overrides: Sequence[str] = (),
          ray: str | None = None) -> list[dict]:
    """Build a :class:`Trainer` from a config (or a YAML path) and run it to ``config.steps``."""
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_yaml(config, overrides, env_overrides)
    if ray is not None:
        import dataclasses

        config = dataclasses.replace(config, ray=ray)
    trainer = Trainer(config)
    try:
        return trainer.train(progress=lambda s: print(s, file=sys.stderr, flush=True))
    finally:
        trainer.close()
