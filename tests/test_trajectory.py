"""Trajectory bookkeeping and the token-in/token-out rendering of ChatTokenPolicy, with a fake backend."""

from __future__ import annotations

import pytest

from agents.policy import (
    AgentRequest,
    ChatTokenPolicy,
    Generation,
    GenerationRequest,
    SamplingConfig,
    TemplateError,
    resolve_sampling,
)
from agents.trajectory import Trajectory, Turn

TOOLS = [{"type": "function", "function": {"name": "search", "description": "Search the corpus.",
                                           "parameters": {"type": "object", "properties": {}}}}]


def test_turn_validates_lengths():
    with pytest.raises(ValueError):
        Turn([1], [2, 3], [0.0], [1, 1])
    with pytest.raises(ValueError):
        Turn([1], [2, 3], None, [1])


def test_trajectory_concatenation_and_masks():
    tr = Trajectory("e", "lead", "lead")
    tr.add_turn(Turn([1, 2, 3], [4, 5], [-0.1, -0.2], [1, 1], suffix_ids=[9]))
    tr.add_turn(Turn([6, 7], [8], [-0.3], [1], suffix_ids=[]))
    assert tr.full_ids == [1, 2, 3, 4, 5, 9, 6, 7, 8]
    assert tr.loss_mask == [0, 0, 0, 1, 1, 0, 0, 0, 1]
    assert tr.full_logprobs == [0, 0, 0, -0.1, -0.2, 0, 0, 0, -0.3]
    assert tr.context_ids(0) == [1, 2, 3]
    assert tr.context_ids(1) == [1, 2, 3, 4, 5, 9, 6, 7]
    assert tr.turns[1].start == 6 and tr.turns[1].response_start == 8 and tr.num_tokens == 9
    assert tr.response_lengths == [2, 1] and tr.num_trained_tokens == 3
    tr.set_mask(0, [0])
    assert tr.loss_mask == [0, 0, 0, 0, 0, 0, 0, 0, 1]
    back = Trajectory.from_dict(tr.to_dict())
    assert back == tr


def test_append_overlap():
    f = ChatTokenPolicy._append_overlap
    assert f([5, 6, 2], [2, 10]) == [10]  # generated eos: only the newline is added
    assert f([5, 6], [2, 10]) == [2, 10]  # cut by length: the whole end of turn
    assert f([5, 2, 10], [2, 10]) == []
    assert f([], [2, 10]) == [2, 10]


def test_resolve_sampling():
    s = resolve_sampling({"sub": {"temperature": 0.5, "stop_token_ids": [3]}})
    assert s["sub"] == SamplingConfig(temperature=0.5, stop_token_ids=(3,))
    assert s["default"] == SamplingConfig()
    assert resolve_sampling(SamplingConfig(max_tokens=3))["default"].max_tokens == 3


# --------------------------------------------------------------------------- fake backend
@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    transformers = pytest.importorskip("transformers", reason="the [llm] extra (transformers) is not installed")
    from agents.models import tiny_test_model

    path = tiny_test_model(tmp_path_factory.getbasetemp() / "tiny-model")
    return transformers.AutoTokenizer.from_pretrained(path)


class FakePolicy(ChatTokenPolicy):
    """Generates a fixed text (tokenised) plus eos, cut to max_tokens; logprobs -1."""

    def __init__(self, tokenizer, reply: str = "ok <tool_call>\n{}\n</tool_call>", **kw):
        super().__init__(tokenizer, **kw)
        self.reply = reply
        self.calls: list[list[GenerationRequest]] = []

    def _generate(self, requests):
        self.calls.append(requests)
        out = []
        for r in requests:
            ids = self.tokenizer.encode(self.reply, add_special_tokens=False) + [self.tokenizer.eos_token_id]
            cut = ids[: r.sampling.max_tokens]
            out.append(Generation(cut, [-1.0] * len(cut), "stop" if len(cut) == len(ids) else "length"))
        return out


def _start(i=0):
    return [{"role": "system", "content": "You are agent %d." % i}, {"role": "user", "content": "Find it."}]


def test_buffers_are_append_only_and_match_trajectory(tokenizer):
    pol = FakePolicy(tokenizer, max_model_len=4096)
    first = pol.act([AgentRequest("e", "lead", _start(), TOOLS, "lead")])[0]
    assert first.error is None and first.finish_reason == "stop"
    rendered = tokenizer.apply_chat_template(_start(), tools=TOOLS, tokenize=False, add_generation_prompt=True)
    assert first.prompt_ids == tokenizer.encode(rendered, add_special_tokens=False)
    assert "<tools>" in tokenizer.decode(first.prompt_ids)
    buffers = [pol.token_buffer("e", "lead")]
    for k in range(3):
        r = pol.act([AgentRequest("e", "lead", [{"role": "tool", "content": f"result {k}"}], TOOLS, "lead")])[0]
        buf = pol.token_buffer("e", "lead")
        assert buf[: len(buffers[-1])] == buffers[-1]  # earlier ids never change
        assert r.prompt_ids[: len(buffers[-1])] == buffers[-1]
        assert r.text == tokenizer.decode(r.response_ids, skip_special_tokens=True)
        buffers.append(buf)
    # The buffer decodes to the same text as a full rendering of the conversation.
    conv = _start() + [m for k in range(3) for m in (
        {"role": "assistant", "content": pol.reply}, {"role": "tool", "content": f"result {k}"})] + [
        {"role": "assistant", "content": pol.reply}]
    full = tokenizer.apply_chat_template(conv, tools=TOOLS, tokenize=False)
    assert tokenizer.decode(buffers[-1]) == full
    tr = pol.end_episode("e")["lead"]
    assert tr.full_ids == buffers[-1]
    assert len(tr.turns) == 4 and all(t.suffix_ids == tokenizer.encode("\n") for t in tr.turns)
    assert sum(tr.loss_mask) == sum(len(t.response_ids) for t in tr.turns)
    assert pol.fallback_renders == 0
    assert pol.trajectories("e") == {}


def test_one_backend_call_per_act_and_errors(tokenizer):
    pol = FakePolicy(tokenizer, max_model_len=300, sampling={"default": SamplingConfig(max_tokens=4),
                                                             "sub": SamplingConfig(max_tokens=2)})
    reqs = [AgentRequest(f"e{i % 2}", f"a{i}", _start(i), TOOLS, "sub" if i % 2 else "lead") for i in range(5)]
    out = pol.act(reqs)
    assert len(pol.calls) == 1 and len(pol.calls[0]) == 5
    assert [len(r.response_ids) for r in out] == [4, 2, 4, 2, 4]
    assert all(r.finish_reason == "length" for r in out)
    before = pol.token_buffer("e0", "a0")
    huge = [{"role": "tool", "content": "word " * 400}]
    out = pol.act([AgentRequest("e0", "a0", huge, TOOLS), AgentRequest("e1", "a1", [], TOOLS, "sub")])
    assert out[0].error == "context_length" and out[0].text == "" and out[0].response_ids is None
    assert out[1].error is None
    assert pol.token_buffer("e0", "a0") == before  # nothing appended on overflow
    with pytest.raises(ValueError):
        pol.act([AgentRequest("e0", "a0", []), AgentRequest("e0", "a0", [])])
    pol.reset_episode("e0")
    assert "e0" not in pol._episodes


def test_max_tokens_clipped_to_room(tokenizer):
    pol = FakePolicy(tokenizer, reply="x " * 50, sampling=SamplingConfig(max_tokens=1000))
    first = pol.act([AgentRequest("e", "a", _start())])[0]
    pol.max_model_len = len(first.prompt_ids) + 3
    pol.reset_episode("e")
    r = pol.act([AgentRequest("e", "a", _start())])[0]
    assert len(r.response_ids) == 3 and r.finish_reason == "length"


# A template that drops <think> blocks from assistant turns before the last user message (as Qwen3
# does): rendering more messages changes earlier ones, so the history delta is not a prefix.
_REWRITING = (
    "{%- for m in messages -%}"
    "{%- set c = m['content'] -%}"
    "{%- if m['role'] == 'assistant' and not loop.last and '</think>' in c -%}"
    "{%- set c = c.split('</think>')[-1] -%}{%- endif -%}"
    "{{- '<|im_start|>' + m['role'] + '\\n' + c + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def test_non_prefix_stable_template_falls_back(tokenizer):
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    tok.chat_template = _REWRITING
    pol = FakePolicy(tok, reply="<think>hmm</think>answer")
    pol.act([AgentRequest("e", "a", _start())])
    b1 = pol.token_buffer("e", "a")
    pol.act([AgentRequest("e", "a", [{"role": "user", "content": "more"}])])
    b2 = pol.token_buffer("e", "a")
    assert b2[: len(b1)] == b1 and pol.fallback_renders == 1
    assert tok.decode(b2[len(b1):]).startswith("<|im_start|>user\nmore<|im_end|>\n<|im_start|>assistant\n")
    assert "<think>hmm</think>" in tok.decode(b2)  # thinking stays in the agent's own buffer
    strict = FakePolicy(tok, reply="<think>hmm</think>answer", render_mode="history")
    strict.act([AgentRequest("e", "a", _start())])
    with pytest.raises(TemplateError):
        strict.act([AgentRequest("e", "a", [{"role": "user", "content": "more"}])])


class MemoryBoundPolicy(FakePolicy):
    """A backend with room for ``budget`` prompt tokens per batch: a bigger batch raises ``exc``."""

    def __init__(self, tokenizer, budget, exc=MemoryError, **kw):
        super().__init__(tokenizer, **kw)
        self.budget, self.exc, self.sizes = budget, exc, []

    def _generate(self, requests):
        self.sizes.append(len(requests))
        if sum(len(r.prompt_ids) for r in requests) > self.budget:
            raise self.exc("CUDA out of memory. Tried to allocate 1.00 GiB")
        return super()._generate(requests)


def test_out_of_memory_halves_the_batch_and_fails_only_what_cannot_fit(tokenizer):
    pol = MemoryBoundPolicy(tokenizer, budget=10**6, max_model_len=4096)
    sizes = [len(r.prompt_ids) for r in pol.act([AgentRequest("m", f"a{i}", _start(i), TOOLS) for i in range(4)])]
    huge = [{"role": "system", "content": "x " * 600}, {"role": "user", "content": "Find it."}]
    pol = MemoryBoundPolicy(tokenizer, budget=2 * max(sizes), exc=RuntimeError, max_model_len=4096)
    reqs = [AgentRequest("m", f"a{i}", _start(i), TOOLS) for i in range(4)] + [AgentRequest("m", "big", huge)]
    out = pol.act(reqs)
    assert pol.sizes[0] == 5 and pol.sizes[1:3] == [2, 3]  # halves, then halves of halves
    assert [r.error for r in out] == [None] * 4 + ["out_of_memory"]
    assert out[4].text == "" and out[4].finish_reason == "error"
    assert "big" not in pol.trajectories("m") and len(pol.trajectories("m")) == 4


def test_errors_other_than_out_of_memory_propagate(tokenizer):
    pol = MemoryBoundPolicy(tokenizer, budget=0, exc=ValueError, max_model_len=4096)
    with pytest.raises(ValueError):
        pol.act([AgentRequest("m", "a", _start())])
    assert pol.sizes == [1]
