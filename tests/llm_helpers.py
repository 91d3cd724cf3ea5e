"""Shared pieces of the policy tests (HF, vLLM, OpenAI-compatible) on the tiny random test model."""

from __future__ import annotations

TOOLS = [{"type": "function", "function": {"name": "search", "description": "Search the corpus.",
                                           "parameters": {"type": "object", "properties": {}}}}]


def start_messages(i: int) -> list[dict]:
    """A first turn for agent ``i``; prompts differ in length so that batches need padding."""
    return [{"role": "system", "content": "You are agent %d." % i},
            {"role": "user", "content": "Task " + "number " * i}]


def check_length(r, max_tokens: int, eos_id: int) -> None:
    """A random model may sample eos early: then the generation stops there, with the eos kept."""
    n = len(r.response_ids)
    assert 1 <= n <= max_tokens
    if r.finish_reason == "length":
        assert n == max_tokens
    else:
        assert r.finish_reason == "stop" and r.response_ids[-1] == eos_id
