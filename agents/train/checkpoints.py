"""Checkpoints of ``wideseek train`` (and ``wideseek sft``, same format).

``output_dir/checkpoints/step_NNNNNN/``: ``model/`` (``save_pretrained`` + tokenizer: a normal model
directory that transformers and vLLM load) or ``adapter/`` with LoRA, and ``trainer_state.pt`` (step,
optimizer and LR-scheduler state, python/numpy/torch/CUDA RNG states, the config). A checkpoint is written
to ``step_N.tmp-*`` and renamed into place, so a kill leaves either no checkpoint or a whole one.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from wideseek_env.errors import WideseekError

__all__ = ["list_checkpoints", "save_checkpoint", "load_trainer_state", "rng_state", "restore_rng",
           "export_weights"]

_CHECKPOINT_NAME = re.compile(r"step_\d+")


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first: ``step_N`` folders with a trainer state.

    ``step_N.tmp-*`` folders are checkpoints being written (or cut off by a kill): never resumed from."""
    if not directory.is_dir():
        return []
    return sorted(c for c in directory.iterdir()
                  if _CHECKPOINT_NAME.fullmatch(c.name) and (c / "trainer_state.pt").is_file())


def find_resume(resume: str | None, directory: Path, setting: str) -> Path | None:
    """The checkpoint a run resumes from: ``None`` (no resume), ``"auto"`` (the newest checkpoint in
    ``directory``, or ``None`` when there is none) or a checkpoint directory. ``setting`` names the config
    field in the error (e.g. ``"TrainConfig.resume"``). Raises :class:`WideseekError` when a given
    directory is not a checkpoint."""
    if not resume:
        return None
    if resume == "auto":
        ckpts = list_checkpoints(directory)
        return ckpts[-1] if ckpts else None
    path = Path(resume)
    if not (path / "trainer_state.pt").exists():
        raise WideseekError(f"{setting}: {path} is not a checkpoint (no trainer_state.pt)")
    return path


def rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(final: Path, *, model: Any, tokenizer: Any, lora: bool, state: dict[str, Any],
                    keep: int | None = None) -> Path:
    """Write the checkpoint ``final`` (``.../checkpoints/step_N``) atomically; keep the newest ``keep``."""
    import torch

    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob("step_*.tmp-*"):  # cut off by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=final.parent))
    try:
        if lora:
            model.save_pretrained(str(tmp / "adapter"))
        else:
            model.save_pretrained(str(tmp / "model"))
            tokenizer.save_pretrained(str(tmp / "model"))
        torch.save(state, tmp / "trainer_state.pt")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if keep:
        for old in list_checkpoints(final.parent)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_trainer_state(ckpt: Path) -> dict[str, Any]:
    """``ckpt/trainer_state.pt``, loaded as data only (a checkpoint may come from someone else)."""
    import numpy as np
    import torch

    # weights_only: tensors, numbers, strings and numpy's RNG state (an ndarray) are allowed, no code.
    core = getattr(np, "_core", None) or np.core
    allowed = [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(ckpt / "trainer_state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a truncated, corrupt or unsafe file
        raise WideseekError(
            f"cannot load the checkpoint {ckpt} ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); "
            "resume from another checkpoint, or start afresh with resume: null"
        ) from None


def export_weights(model: Any, *, lora: bool, dtype: Any = None) -> list[tuple[str, Any]]:
    """(name, tensor) pairs in the checkpoint's HF naming, LoRA merged in (cast to ``dtype`` if given)."""
    seen: set[int] = set()

    def unique(named):  # tied weights (embeddings = LM head) once, under their first name
        out = []
        for name, t in named:
            if t.data_ptr() in seen:
                continue
            seen.add(t.data_ptr())
            out.append((name, t))
        return out

    if lora:
        model.merge_adapter()
        try:
            named = unique((n.replace(".base_layer.", "."), t)
                           for n, t in model.get_base_model().state_dict().items() if "lora_" not in n)
            return [(n, t.detach().to(dtype or t.dtype, copy=True)) for n, t in named]
        finally:
            model.unmerge_adapter()
    return [(n, t.detach().to(dtype or t.dtype)) for n, t in unique(model.state_dict().items())]
