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



class RecordingEnv:
    """A :class:`~wideseek_env.env.WideSeekEnv` factory whose envs remember, per episode (task id, reset
    seed) and agent, the action texts they received in order: what the round-trip checks compare the
    trajectories against."""

    def __init__(self, retriever, tasks, config=None):
        from wideseek_env.config import EnvConfig
        from wideseek_env.env import WideSeekEnv

        received = self.received = {}

        class _Env(WideSeekEnv):
            def reset(self, seed=None, options=None):
                out = super().reset(seed=seed, options=options)
                self._recording = received.setdefault((self.task.id, seed), {})
                return out

            def step_collect(self, actions):
                for agent, text in actions.items():
                    self._recording.setdefault(agent, []).append(text)
                return super().step_collect(actions)

        self._make = lambda: _Env(retriever, tasks, config or EnvConfig.paper())

    def __call__(self):
        return self._make()


def assert_trajectories_round_trip(rollouts, tokenizer, received, seed: int = 0) -> None:
    """For rollouts of ``collect_rollouts(..., seed=seed)``: each agent's generated turns decode, in order,
    to exactly the texts its env received from it, and each trajectory's token sequence is its turns'
    prompt, response and end-of-turn ids laid end to end."""
    turns = 0
    for k, ro in enumerate(rollouts):
        assert not ro.metrics["policy_errors"], ro.metrics["policy_errors"]
        got = received[(ro.group_id, seed + k)]
        for agent, traj in ro.trajectories.items():
            assert traj.agent_id == agent
            decoded = [tokenizer.decode(t.response_ids, skip_special_tokens=True) for t in traj.turns]
            assert decoded == got[agent]
            flat = [i for t in traj.turns for i in t.prompt_ids + t.response_ids + t.suffix_ids]
            assert traj.full_ids == flat
            assert sum(traj.loss_mask) == sum(len(t.response_ids) for t in traj.turns)
            turns += len(traj.turns)
    assert turns > 0


def check_real_episodes_round_trip(policy, tasks, retriever, seed: int = 3) -> None:
    """Two real episodes of each of ``tasks`` through :func:`agents.rollout.collect_rollouts`: grouped by
    task, rewards in [0, 1], and every trajectory round-trips (:func:`assert_trajectories_round_trip`)."""
    from agents.rollout import collect_rollouts

    record = RecordingEnv(retriever, tasks)
    rollouts = collect_rollouts(record, policy, [t.id for t in tasks], group_size=2, seed=seed)
    assert [r.group_id for r in rollouts] == [t.id for t in tasks for _ in range(2)]
    assert all(0.0 <= r.reward <= 1.0 and "lead" in r.trajectories for r in rollouts)
    assert_trajectories_round_trip(rollouts, policy.tokenizer, record.received, seed=seed)
