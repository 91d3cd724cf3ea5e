"""The batched episode runner: :func:`iter_episodes` steps many :class:`~wideseek_env.env.WideSeekEnv`
episodes with one policy; :func:`collect_rollouts` runs B tasks x G samples of them for GRPO.

At every step, ONE ``policy.act`` call answers every acting agent of every live env (width is batched
generation), and the tool calls of all envs are batched too (``step_collect`` -> ``execute_tool_requests``
-> ``step_apply``, see the env's docstring). Both yield :class:`agents.episode.Episode` s, the one episode
type that evaluation records and GRPO batches are made from.

What the runner attaches to the trajectories the policy recorded (``policy.end_episode``):

- ``Trajectory.reward`` = the shared episode reward;
- ``Trajectory.failed`` / ``error`` for agents that hit a turn or context limit (from ``env.last_record``)
  or whose generation failed in the policy (its ``AgentResponse.error``: ``context_length`` when the prompt
  overflowed the model's context, ``out_of_memory`` when the backend could not fit it even alone, a
  request error of a remote server). The env then receives the empty text for that agent: a subagent's
  empty report, or the lead's empty final answer (reward 0). The episode finishes, counted in
  ``metrics["policy_errors"]``; the run goes on;
- ``Turn.failed`` on offending turns, which RLinf's credit assignment trains alone in a failed rollout:
  a runaway turn (its generation was cut at the per-turn token budget: ``finish_reason == "length"``) and
  the last turn of an agent whose context overflowed (env context limit or the model's context).

Episode ids of :func:`collect_rollouts` are ``f"{prefix}{k}"`` (k = 0 .. B*G-1 in task-major order: the G
samples of task j are ``j*G .. j*G+G-1``); env ``reset`` seeds are ``seed + k``. This module imports no
torch, so policies without an LLM run without the ``[llm]`` extra.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Callable, Iterator, Sequence

from agents.episode import Episode, EpisodeJob
from agents.policy import CONTEXT_LENGTH_ERROR, AgentRequest, Policy

__all__ = ["collect_rollouts", "iter_episodes", "EpisodeJob", "Episode"]


def collect_rollouts(
    make_env: Callable[[], Any] | Sequence[Any],
    policy: Policy,
    task_ids: Sequence[str],
    group_size: int,
    *,
    seed: int = 0,
    max_parallel: int | None = None,
    prefix: str = "ep",
    max_steps: int = 10_000,
    progress: bool = False,
) -> list[Episode]:
    """Run ``group_size`` episodes of each task in ``task_ids``; return one :class:`Episode` per episode
    (same order as the episode ids). ``make_env``: a zero-argument env factory, or a list of envs to reuse
    (its length then bounds ``max_parallel``). ``progress``: a tqdm bar of finished episodes on stderr,
    with the mean reward so far."""
    jobs = [
        EpisodeJob(tid, f"{prefix}{k}", seed + k, k)
        for k, tid in enumerate(t for t in task_ids for _ in range(group_size))
    ]
    episodes = iter_episodes(make_env, policy, jobs, max_parallel=max_parallel, refill=False,
                             max_steps=max_steps)
    if progress:
        import sys

        from tqdm import tqdm

        results = []
        with tqdm(total=len(jobs), desc="rollouts", unit="ep", file=sys.stderr, dynamic_ncols=True) as bar:
            for r in episodes:
                results.append(r)
                bar.update(1)
                bar.set_postfix(reward=f"{sum(x.reward for x in results) / len(results):.3f}")
    else:
        results = list(episodes)
    results.sort(key=lambda r: r.job.key)
    return results


def iter_episodes(
    make_env: Callable[[], Any] | Sequence[Any],
    policy: Policy,
    jobs: Sequence[EpisodeJob],
    *,
    max_parallel: int | None = None,
    refill: bool = True,
    max_steps: int = 10_000,
    keep_transcripts: bool = False,
) -> Iterator[Episode]:
    """Run ``jobs`` with up to ``max_parallel`` envs stepped together (one ``policy.act`` per step for
    every acting agent of every live env; one batched tool execution per step) and yield each episode's
    :class:`Episode` as it finishes (``refill=True``: a free env takes the next job at once) or at the
    end of its wave (``refill=False``: a new wave starts when every env of the last one has finished).
    ``make_env``: a zero-argument env factory, or a list of envs to reuse. An episode still running after
    ``max_steps`` steps raises ``RuntimeError``. ``keep_transcripts``: fill each episode's ``messages``,
    ``texts``, ``tools`` and ``parents`` (every agent's context, raw generated texts, tool schemas and
    spawning agent)."""
    from wideseek_env.env import execute_tool_requests

    jobs = list(jobs)
    if isinstance(make_env, Sequence):
        envs = list(make_env)
        if not envs:
            raise ValueError("make_env is an empty list of envs")
    else:
        width = max_parallel or len(jobs) or 1
        envs = [make_env() for _ in range(min(width, max(len(jobs), 1)))]
    width = min(len(envs), max_parallel or len(envs))
    free = list(reversed(envs[:width]))
    queue = list(reversed(jobs))
    live: list[dict[str, Any]] = []

    def start(env: Any, job: EpisodeJob) -> dict[str, Any]:
        policy.reset_episode(job.episode_id)
        started = time.perf_counter()
        _, infos = env.reset(seed=job.seed, options={"task_id": job.task_id})
        return {"env": env, "job": job, "infos": infos, "failed": {}, "errors": Counter(),
                "texts": {}, "final": None, "steps": 0, "started": started}

    while queue or live:
        if queue and free and (refill or not live):
            while queue and free:
                live.append(start(free.pop(), queue.pop()))
        requests, owners = [], []
        for s in live:
            for agent, info in s["infos"].items():
                if info.get("acting"):
                    requests.append(AgentRequest(s["job"].episode_id, agent, info["messages"], info["tools"],
                                                 info.get("role", "default")))
                    owners.append((s, agent))
        responses = policy.act(requests) if requests else []
        if len(responses) != len(requests):
            raise RuntimeError(f"policy returned {len(responses)} responses for {len(requests)} requests")
        actions: dict[int, dict[str, str]] = {id(s): {} for s in live}
        for (s, agent), resp in zip(owners, responses):
            actions[id(s)][agent] = resp.text
            if keep_transcripts:
                s["texts"].setdefault(agent, []).append(resp.text)
            if resp.error:
                s["errors"][str(resp.error)] += 1
                s["failed"].setdefault(agent, str(resp.error))
        tool_reqs = [s["env"].step_collect(actions[id(s)]) for s in live]
        flat = execute_tool_requests([r for rs in tool_reqs for r in rs])
        i = 0
        still: list[dict[str, Any]] = []
        finished: list[dict[str, Any]] = []
        for s, rs in zip(live, tool_reqs):
            obs, rewards, terms, truncs, infos = s["env"].step_apply(flat[i:i + len(rs)])
            i += len(rs)
            s["infos"] = infos
            s["steps"] += 1
            if not s["env"].agents:
                s["final"] = (rewards, terms, truncs, infos)
                finished.append(s)
            elif s["steps"] >= max_steps:
                raise RuntimeError(f"episodes did not finish within {max_steps} steps")
            else:
                still.append(s)
        live = still
        for s in finished:
            free.append(s["env"])
            yield _finish(s, policy, keep_transcripts)


def _finish(s: dict[str, Any], policy: Policy, keep_transcripts: bool) -> Episode:
    env = s["env"]
    job: EpisodeJob = s["job"]
    rewards, terms, truncs, infos = s["final"]
    metrics = dict(env.last_metrics or next((i.get("metrics") for i in infos.values() if "metrics" in i), {}))
    root = "agent" if "agent" in rewards else "lead"
    reward = float(rewards.get(root, next(iter(rewards.values()), 0.0)))
    truncated = bool(truncs.get(root, False))
    trajs = policy.end_episode(job.episode_id)
    record = env.last_record
    for agent, traj in trajs.items():
        traj.reward = reward
        rec = record.agents.get(agent) if record is not None else None
        if rec is not None and rec.failed:
            traj.failed = True
            traj.error = rec.failure or "failed"
        if agent in s["failed"]:
            traj.failed = True
            traj.error = s["failed"][agent]
        _flag_offending_turns(traj)
        traj.info.setdefault("task_id", job.task_id)
    metrics["subagents_spawned"] = metrics.get("subagents_spawned", max(len(trajs) - 1, 0))
    metrics["policy_errors"] = dict(sorted(s["errors"].items()))
    if record is not None:
        metrics["calls_by_role"] = _calls_by_role(record)
    episode = Episode(
        job=job,
        reward=reward,
        trajectories=trajs,
        answer_parsed=bool(metrics.get("answer_parsed", True)) and not truncated,
        root_agent=root,
        metrics=metrics,
        seconds=time.perf_counter() - s["started"],
        steps=s["steps"],
    )
    if keep_transcripts:
        names = list(record.agents) if record is not None else list(s["texts"])
        episode.messages = {a: env.context(a) for a in names}
        episode.tools = {a: env.tool_schemas(a) for a in names}
        episode.texts = {a: s["texts"].get(a, []) for a in names}
        episode.parents = {a: record.agents[a].parent for a in names} if record is not None else {}
    return episode


def _flag_offending_turns(traj: Any) -> None:
    """``Turn.failed`` on a runaway turn (cut at the per-turn budget) and on the last turn of an agent
    whose context overflowed (the env's context limit, or the model's)."""
    for turn in traj.turns:
        if turn.finish_reason == "length":
            turn.failed = True
    if traj.turns and traj.error in ("context", CONTEXT_LENGTH_ERROR):
        traj.turns[-1].failed = True


def _calls_by_role(record: Any) -> dict[str, dict[str, int]]:
    """{role: {"valid": tool calls run, "invalid": malformed or disallowed calls}} over the episode."""
    out: dict[str, dict[str, int]] = {}
    for agent in record.agents.values():
        role = out.setdefault(agent.role, {"valid": 0, "invalid": 0})
        role["valid"] += sum(agent.tool_calls.values())
        role["invalid"] += agent.invalid_calls
    return out
