"""A transformers policy: batched ``generate`` with left padding, on CPU or GPU.

Same interface and trajectories as the vLLM policy (see :mod:`agents.policy`). Requests are grouped by
their sampling parameters (one ``generate`` call per distinct role config), padded on the left, and cut
at the first end-of-sequence token. Logprobs are those of the sampled tokens under the model's *raw*
logits (``logprobs_mode="raw"``, like vLLM's default: before temperature / top-p), or under the processed
distribution that was sampled from (``"processed"``).

Needs the ``[llm]`` extra (torch, transformers).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from agents.policy import ChatTokenPolicy, Generation, GenerationRequest, SamplingConfig
from wideseek_env.errors import require


class HFPolicy(ChatTokenPolicy):
    """``HFPolicy(model, tokenizer=None, *, sampling=..., max_model_len=None, device=None, dtype=None)``.

    ``model`` is a model directory / hub-style name or a loaded ``PreTrainedModel``; ``tokenizer`` likewise
    (default: loaded from the model directory). ``max_model_len`` defaults to the model's
    ``max_position_embeddings``. ``batch_size`` caps how many sequences one ``generate`` call runs.
    ``seed``: HF sampling has no per-request seed, so each ``generate`` call seeds torch from the
    per-request seeds of its batch (derived from ``seed``, episode, agent and turn): the same requests
    batched the same way sample the same tokens, in any process. ``None`` leaves torch's RNG alone.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        *,
        sampling: SamplingConfig | Mapping[str, Any] | None = None,
        max_model_len: int | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | None = None,
        logprobs_mode: str = "raw",
        seed: int | None = 0,
        chat_template_kwargs: Mapping[str, Any] | None = None,
        render_mode: str = "auto",
        record_trajectories: bool = True,
    ) -> None:
        torch = require("torch", "llm")
        transformers = require("transformers", "llm")
        if logprobs_mode not in ("raw", "processed"):
            raise ValueError("logprobs_mode must be 'raw' or 'processed'")
        if tokenizer is None:
            if not isinstance(model, (str, os.PathLike)):
                raise ValueError("pass tokenizer= when model is an already-loaded model object")
            tokenizer = model
        if isinstance(tokenizer, (str, os.PathLike)):
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer))
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if isinstance(model, (str, os.PathLike)):
            kwargs: dict[str, Any] = {}
            if dtype is not None:
                kwargs["dtype"] = getattr(torch, dtype) if isinstance(dtype, str) else dtype
            model = transformers.AutoModelForCausalLM.from_pretrained(str(model), **kwargs)
            model.to(device)
        self.model = model
        self.device = next(model.parameters()).device
        if max_model_len is None:
            max_model_len = getattr(model.config, "max_position_embeddings", None)
        super().__init__(
            tokenizer,
            sampling=sampling,
            max_model_len=max_model_len,
            chat_template_kwargs=chat_template_kwargs,
            render_mode=render_mode,
            seed=seed,
            record_trajectories=record_trajectories,
        )
        self.batch_size = batch_size
        self.logprobs_mode = logprobs_mode
        self._torch = torch
        if seed is not None:
            torch.manual_seed(seed)
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id
        self.pad_token_id = pad
        eos: set[int] = set()
        if tokenizer.eos_token_id is not None:
            eos.add(int(tokenizer.eos_token_id))
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        if isinstance(gen_eos, int):
            eos.add(gen_eos)
        elif gen_eos:
            eos.update(int(e) for e in gen_eos)
        self.eos_token_ids = sorted(eos)

    def _generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        out: list[Generation | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            s = r.sampling
            key = (s.temperature, s.top_p, s.top_k, s.stop_token_ids, s.min_tokens)
            groups.setdefault(key, []).append(i)
        for key, idx in groups.items():
            step = self.batch_size or len(idx)
            for b in range(0, len(idx), step):
                chunk = idx[b:b + step]
                for i, g in zip(chunk, self._generate_group([requests[i] for i in chunk])):
                    out[i] = g
        return out  # type: ignore[return-value]

    def _generate_group(self, reqs: list[GenerationRequest]) -> list[Generation]:
        from agents.logprobs import selective_logprobs  # torch-backed: imported with the model, not the module

        torch = self._torch
        s = reqs[0].sampling
        max_new = max(r.sampling.max_tokens for r in reqs)
        width = max(len(r.prompt_ids) for r in reqs)
        input_ids = torch.full((len(reqs), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(reqs), width), dtype=torch.long)
        for row, r in enumerate(reqs):
            n = len(r.prompt_ids)
            input_ids[row, width - n:] = torch.tensor(r.prompt_ids, dtype=torch.long)
            attention[row, width - n:] = 1
        eos = sorted(set(self.eos_token_ids) | set(s.stop_token_ids))
        gen_kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new,
            eos_token_id=eos,
            pad_token_id=self.pad_token_id,
            return_dict_in_generate=True,
            output_logits=self.logprobs_mode == "raw",
            output_scores=self.logprobs_mode == "processed",
        )
        if s.min_tokens:
            gen_kwargs["min_new_tokens"] = min(s.min_tokens, *(r.sampling.max_tokens for r in reqs))
        if s.temperature <= 0:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            gen_kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p,
                              top_k=s.top_k if s.top_k and s.top_k > 0 else None)
        if all(r.seed is not None for r in reqs):
            torch.manual_seed(hash(tuple(r.seed for r in reqs)) & 0x7FFFFFFF)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                res = self.model.generate(
                    input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device), **gen_kwargs
                )
        finally:
            if was_training:
                self.model.train()
        seqs = res.sequences[:, width:].cpu()
        steps = res.logits if self.logprobs_mode == "raw" else res.scores
        eos_set = set(eos)
        gens: list[Generation] = []
        for row, r in enumerate(reqs):
            ids: list[int] = []
            finish = "length"
            limit = r.sampling.max_tokens
            for t in range(min(seqs.shape[1], limit)):
                tok = int(seqs[row, t])
                ids.append(tok)
                if tok in eos_set:
                    finish = "stop"
                    break
            lps: list[float] = []
            if ids:  # one log-softmax over the row's steps, not one per token
                logits = torch.stack([steps[t][row] for t in range(len(ids))])
                lps = selective_logprobs(logits, torch.tensor(ids, device=logits.device)).tolist()
            gens.append(Generation(ids, lps, finish))
        return gens

    def load_weights(self, weights: Any) -> None:
        """Copy new weights into the model: a state dict or ``(name, tensor)`` pairs in the model's own
        naming (tied weights may be given once). How a Ray rollout worker's replica follows the trainer."""
        items = dict(weights.items() if hasattr(weights, "items") else weights)
        missing, unexpected = self.model.load_state_dict(items, strict=False)
        if unexpected:
            raise ValueError(f"weights the model does not have: {sorted(unexpected)[:5]}")
