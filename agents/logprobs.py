"""Selective log-softmax: ``log softmax(logits / T)[target]`` without full-vocabulary float32 copies.

The plain expression ``logits.float().gather(target) - logits.float().logsumexp(-1)`` keeps a float32
copy of the ``[N, vocab]`` logits alive for the backward pass, and its backward builds two more
(``softmax`` and the scattered one-hot), all at once. With SmolLM2's 49,152-token vocabulary and a few
thousand trained tokens per micro-batch that is gigabytes per copy, and the time goes into allocating and
filling them. :func:`selective_logprobs` instead

- keeps only the logits as the model produced them (bf16 under autocast) and one float per row (the
  log-normaliser) for the backward pass;
- works on ``chunk_rows`` rows at a time in float32, both forward and backward, so the float32 working
  set is ``chunk_rows x vocab`` whatever N is;
- writes the gradient straight into one ``[N, vocab]`` tensor of the logits' dtype.

The values equal the plain expression's up to float32 rounding (tests/test_logprobs.py); so do the
gradients. TRL's ``selective_log_softmax`` does the same per row; this one also chunks the backward.
"""

from __future__ import annotations

import torch

__all__ = ["selective_logprobs", "chunked_entropy"]

#: Rows per float32 chunk: 1024 x 49,152 x 4 bytes = 192 MiB for SmolLM2; small vocabularies use more.
DEFAULT_CHUNK_ELEMENTS = 1024 * 49_152


def _chunk_rows(vocab: int, chunk_rows: int | None) -> int:
    if chunk_rows is not None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        return chunk_rows
    return max(1, DEFAULT_CHUNK_ELEMENTS // max(1, vocab))


class _SelectiveLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, temperature: float,  # type: ignore[override]
                rows: int) -> torch.Tensor:
        n = logits.shape[0]
        work = torch.promote_types(logits.dtype, torch.float32)
        out = torch.empty(n, dtype=work, device=logits.device)
        lse = torch.empty(n, dtype=work, device=logits.device)
        for i in range(0, n, rows):
            x = logits[i:i + rows].to(work)
            if temperature != 1.0:
                x = x / temperature
            lse[i:i + rows] = x.logsumexp(-1)
            out[i:i + rows] = x.gather(-1, targets[i:i + rows, None]).squeeze(-1) - lse[i:i + rows]
        ctx.save_for_backward(logits, targets, lse)
        ctx.temperature, ctx.rows = temperature, rows
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        logits, targets, lse = ctx.saved_tensors
        t, rows = ctx.temperature, ctx.rows
        grad = torch.empty_like(logits)
        g = grad_out.to(lse.dtype)
        for i in range(0, logits.shape[0], rows):
            x = logits[i:i + rows].to(lse.dtype)
            if t != 1.0:
                x = x / t
            # d/dx [x_y - lse(x)] = onehot(y) - softmax(x); chain through x = logits / T
            gx = torch.exp(x - lse[i:i + rows, None]).mul_(-g[i:i + rows, None])
            gx.scatter_add_(-1, targets[i:i + rows, None], g[i:i + rows, None])
            if t != 1.0:
                gx.div_(t)
            grad[i:i + rows] = gx
        return grad, None, None, None


def selective_logprobs(logits: torch.Tensor, targets: torch.Tensor, *, temperature: float = 1.0,
                       chunk_rows: int | None = None) -> torch.Tensor:
    """``log_softmax(logits / temperature, -1)`` at ``targets``, shape ``logits.shape[:-1]``, in float32
    (float64 for float64 logits).

    ``logits``: ``[..., vocab]`` of any float dtype (not copied); ``targets``: integer, ``logits.shape[:-1]``.
    Differentiable with respect to ``logits``; the gradient has the logits' dtype."""
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"targets shape {tuple(targets.shape)} != logits shape without vocab "
                         f"{tuple(logits.shape[:-1])}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    lead, vocab = logits.shape[:-1], logits.shape[-1]
    flat = _SelectiveLogprobs.apply(logits.reshape(-1, vocab), targets.reshape(-1).long(), float(temperature),
                                    _chunk_rows(vocab, chunk_rows))
    return flat.reshape(lead)


@torch.no_grad()
def chunked_entropy(logits: torch.Tensor, *, temperature: float = 1.0, chunk_rows: int | None = None) -> torch.Tensor:
    """Entropy of ``softmax(logits / temperature)`` over the last axis, in float32 (float64 for float64
    logits), ``chunk_rows`` rows at a time (no gradient)."""
    lead, vocab = logits.shape[:-1], logits.shape[-1]
    flat = logits.reshape(-1, vocab)
    rows = _chunk_rows(vocab, chunk_rows)
    work = torch.promote_types(logits.dtype, torch.float32)
    out = torch.empty(flat.shape[0], dtype=work, device=logits.device)
    for i in range(0, flat.shape[0], rows):
        x = flat[i:i + rows].to(work)
        if temperature != 1.0:
            x = x / temperature
        logp = torch.log_softmax(x, dim=-1)
        out[i:i + rows] = -(logp.exp() * logp).sum(-1)
    return out.reshape(lead)
