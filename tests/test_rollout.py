"""The batched rollout runner (agents/rollout.py) driving real episodes with the transformers policy.

The tiny random test model acts in real :class:`WideSeekEnv` episodes over the shared corpus. The vLLM and
OpenAI-compatible policies run the same round-trip check in their own modules (one engine each).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the [llm] extra (torch) is not installed")
pytest.importorskip("transformers", reason="the [llm] extra (transformers) is not installed")

from agents.hf_policy import HFPolicy  # noqa: E402
from agents.models import tiny_test_model  # noqa: E402
from agents.policy import SamplingConfig  # noqa: E402
from agents.rollout import collect_rollouts  # noqa: E402

from llm_helpers import RecordingEnv, assert_trajectories_round_trip  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_test_model(tmp_path_factory.getbasetemp() / "tiny-model")


@pytest.fixture(scope="module")
def tasks(generated_tasks):
    return generated_tasks["test"][:3]


def test_rollouts_are_grouped_seeded_and_round_trip(tiny, tasks, ottqa_retriever, capsys):
    record = RecordingEnv(ottqa_retriever, tasks)
    policy = HFPolicy(tiny, sampling=SamplingConfig(max_tokens=16), max_model_len=4096, seed=0)
    ids = [t.id for t in tasks[:2]]
    rollouts = collect_rollouts(record, policy, ids, group_size=2, seed=7, max_parallel=4, progress=True)
    assert [r.group_id for r in rollouts] == [ids[0], ids[0], ids[1], ids[1]]
    for ro in rollouts:
        assert 0.0 <= ro.reward <= 1.0 and ro.root_agent == "lead" and "lead" in ro.trajectories
        assert all(t.reward == ro.reward for t in ro.trajectories.values())
    assert_trajectories_round_trip(rollouts, policy.tokenizer, record.received, seed=7)
    bar = capsys.readouterr().err
    assert "rollouts: 100%" in bar and "4/4" in bar and "reward=" in bar
    # Same seed, same episodes: the sampled tokens are a function of (seed, episode, agent, turn).
    again = collect_rollouts(RecordingEnv(ottqa_retriever, tasks), policy, ids, group_size=2, seed=7)
    assert [r.trajectories["lead"].full_ids for r in again] == [r.trajectories["lead"].full_ids for r in rollouts]


def _prompt_tokens(policy, env_factory, task_id) -> int:
    env = env_factory()
    _, infos = env.reset(seed=0, options={"task_id": task_id})
    info = infos["lead"]
    text = policy.tokenizer.apply_chat_template(info["messages"], tools=info["tools"], tokenize=False,
                                                add_generation_prompt=True)
    return len(policy.tokenizer.encode(text, add_special_tokens=False))


def test_out_of_memory_fails_the_agent_not_the_run(tiny, tasks, ottqa_retriever):
    """A backend that cannot fit a prompt: the batch is split and retried, the prompt that does not fit
    even alone fails its agent (and so its episode, reward 0), and every other episode completes."""
    record = RecordingEnv(ottqa_retriever, tasks)
    policy = HFPolicy(tiny, sampling=SamplingConfig(max_tokens=8), max_model_len=4096, seed=0)
    by_len = sorted(tasks, key=lambda t: _prompt_tokens(policy, record, t.id))
    short, long = by_len[0], by_len[-1]
    limit = (_prompt_tokens(policy, record, short.id) + _prompt_tokens(policy, record, long.id)) // 2
    assert _prompt_tokens(policy, record, short.id) <= limit < _prompt_tokens(policy, record, long.id)

    # Fault injection: a forward pass over more than ``limit`` positions runs out of memory, as a GPU
    # with room for ``limit`` tokens of activations would. Only the prefill sees whole prompts.
    batches = []
    real_forward = policy.model.forward

    def forward(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[1] > 1:
            batches.append(tuple(ids.shape))
            if ids.shape[1] > limit:
                raise torch.OutOfMemoryError("injected: CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(*args, **kwargs)

    policy.model.forward = forward
    try:
        rollouts = collect_rollouts(record, policy, [short.id, long.id], group_size=1, seed=0)
    finally:
        del policy.model.forward
    by_task = {r.group_id: r for r in rollouts}
    assert batches[0][0] == 2  # both prompts in one batch first, then halves
    assert sorted(b[0] for b in batches[1:3]) == [1, 1]
    failed = by_task[long.id]
    assert failed.reward == 0.0 and failed.metrics["policy_errors"] == {"out_of_memory": 1}
    assert "lead" not in failed.trajectories  # nothing was generated for it: no turn to train on
    assert record.received[(long.id, 1)]["lead"] == [""]
    ok = by_task[short.id]
    assert ok.metrics["policy_errors"] == {} and len(ok.trajectories["lead"].turns) == 1
