"""Driving one env episode with any policy.

Contract: :func:`run_episode` resets the env, makes one ``policy.act`` call per env step for all
acting agents, always ends the policy's episode, and returns the env's final metrics.
"""

from __future__ import annotations

from typing import Any

from agents.policy import AgentRequest, Policy


def run_episode(
    env: Any,
    policy: Policy,
    *,
    seed: int | None = None,
    task_id: str | None = None,
    episode_id: str | None = None,
    max_steps: int = 100_000,
) -> dict[str, Any]:
    """Play one episode of a :class:`~wideseek_env.env.WideSeekEnv` with ``policy`` (one ``act`` call
    per env step for all acting agents) and return the env's final metrics (``env.last_metrics``)."""
    options = {"task_id": task_id} if task_id is not None else None
    obs, infos = env.reset(seed=seed, options=options)
    eid = episode_id or f"{getattr(env.task, 'id', 'episode')}"
    policy.reset_episode(eid)
    steps = 0
    try:
        while env.agents and steps < max_steps:
            reqs = [
                AgentRequest(eid, a, infos[a]["messages"], infos[a]["tools"], infos[a]["role"])
                for a in env.agents
                if infos[a]["acting"]
            ]
            responses = policy.act(reqs)
            actions = {r.agent_id: resp.text for r, resp in zip(reqs, responses)}
            obs, _, _, _, infos = env.step(actions)
            steps += 1
    finally:
        policy.end_episode(eid)
    return dict(env.last_metrics or {})
