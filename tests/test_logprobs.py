"""The selective log-softmax of the trainer's log-prob path equals the plain full-vocabulary float32
expression it replaced (values, gradients, entropy), on random logits and on the tiny training model."""

from __future__ import annotations

import pytest
import torch

from agents.grpo import token_logprobs
from agents.logprobs import chunked_entropy, selective_logprobs


def plain_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """The expression agents.grpo.token_logprobs used before: a float32 copy of all logits."""
    x = logits.to(torch.promote_types(logits.dtype, torch.float32)) / temperature
    return x.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - x.logsumexp(-1)


def plain_token_logprobs(model, input_ids, attention_mask, temperature=1.0):
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
    lp = plain_logprobs(logits, input_ids[:, 1:], temperature)
    logp = torch.log_softmax(logits.detach().float() / temperature, -1)
    ent = -(logp.exp() * logp).sum(-1)
    zero = torch.zeros(input_ids.shape[0], 1)
    return torch.cat([zero, lp], 1), torch.cat([zero, ent], 1)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("chunk_rows", [1, 5, None])
def test_values_and_gradients_equal_the_plain_expression(temperature, chunk_rows):
    gen = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(3, 7, 50, generator=gen)).requires_grad_()
    targets = torch.randint(0, 50, (3, 7), generator=gen)
    upstream = torch.randn(3, 7, generator=gen)

    new = selective_logprobs(logits, targets, temperature=temperature, chunk_rows=chunk_rows)
    (grad_new,) = torch.autograd.grad((new * upstream).sum(), logits)
    old = plain_logprobs(logits, targets, temperature)
    (grad_old,) = torch.autograd.grad((old * upstream).sum(), logits)

    assert torch.allclose(new, old, atol=1e-5)
    assert torch.allclose(grad_new, grad_old, atol=1e-6)


def test_float64_logits_stay_float64():
    logits = torch.randn(4, 9, dtype=torch.float64, requires_grad=True)
    targets = torch.arange(4)
    lp = selective_logprobs(logits, targets, chunk_rows=3)
    assert lp.dtype == torch.float64
    assert torch.autograd.gradcheck(lambda x: selective_logprobs(x, targets, chunk_rows=3), (logits,))


def test_bf16_logits_give_float32_values_and_bf16_gradients():
    logits = torch.randn(6, 40).to(torch.bfloat16).requires_grad_()
    targets = torch.randint(0, 40, (6,))
    lp = selective_logprobs(logits, targets)
    lp.sum().backward()
    assert lp.dtype == torch.float32 and logits.grad.dtype == torch.bfloat16
    assert torch.allclose(lp, plain_logprobs(logits.detach(), targets), atol=1e-5)


def test_entropy_equals_the_plain_expression():
    logits = 4 * torch.randn(5, 3, 30)
    logp = torch.log_softmax(logits / 0.5, -1)
    assert torch.allclose(chunked_entropy(logits, temperature=0.5, chunk_rows=2),
                          -(logp.exp() * logp).sum(-1), atol=1e-5)


def test_bad_shapes_and_temperature_are_refused():
    with pytest.raises(ValueError, match="targets shape"):
        selective_logprobs(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        selective_logprobs(torch.zeros(2, 5), torch.zeros(2, dtype=torch.long), temperature=0.0)


@pytest.mark.parametrize("temperature", [1.0, 0.8])
def test_tiny_model_token_logprobs_and_gradients_equal_the_old_path(tmp_path, temperature):
    from transformers import AutoModelForCausalLM

    from agents.models import tiny_test_model

    model = AutoModelForCausalLM.from_pretrained(tiny_test_model(tmp_path / "tiny"))
    gen = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, model.config.vocab_size, (2, 24), generator=gen)
    attention = torch.ones_like(input_ids)
    attention[1, 18:] = 0

    new, new_ent = token_logprobs(model, input_ids, attention, temperature=temperature, with_entropy=True)
    new.sum().backward()
    grads_new = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    old, old_ent = plain_token_logprobs(model, input_ids, attention, temperature)
    old.sum().backward()

    assert torch.allclose(new, old, atol=1e-5)
    assert torch.allclose(new_ent, old_ent, atol=1e-5)
    for g_new, p in zip(grads_new, model.parameters()):
        assert torch.allclose(g_new, p.grad, atol=1e-5, rtol=1e-4)
