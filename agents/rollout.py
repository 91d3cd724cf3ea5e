"""A minimal batched rollout collector: B tasks x G samples of :class:`~wideseek_env.env.WideSeekEnv` episodes
driven by one policy (seeded; optional progress bar), returning :class:`agents.grpo.Rollout` s with
per-agent token-level trajectories.

Episodes run in waves of up to ``max_parallel`` envs. At every step, ONE ``policy.act`` call answers every
acting agent of every env in the wave (width is batched generation), and the tool calls of all envs are
batched too (``step_collect`` -> ``execute_tool_requests`` -> ``step_apply``, see the env's docstring).

What the runner attaches to the trajectories the policy recorded (``policy.end_episode``):

- ``Trajectory.reward`` = the shared episode reward; ``Trajectory.failed`` / ``error`` for agents that
  hit a turn or context limit (from ``env.last_record``) or whose generation failed in the policy (its
  ``AgentResponse.error``: ``context_length`` when the prompt overflowed the model's context,
  ``out_of_memory`` when the backend could not fit it even alone, a request error of a remote server).
  The env then receives the empty text for that agent: a subagent's empty report, or the lead's empty
  final answer (reward 0). The episode finishes, counted in ``metrics["policy_errors"]``; the run goes on;
- ``Rollout.answer_parsed`` = the env's ``metrics["answer_parsed"]`` and not truncated; ``metrics`` = the
  env's end-of-episode metrics.

Episode ids are ``f"{prefix}{k}"`` (k = 0 .. B*G-1 in task-major order: the G samples of task j are
``j*G .. j*G+G-1``); env ``reset`` seeds are ``seed + k``.

The stepping loop itself is :func:`iter_episodes` (also used by the evaluation harness,
:mod:`agents.evaluate`): it takes explicit :class:`EpisodeJob` s (task id, episode id, reset seed), keeps up
to ``max_parallel`` envs busy, either in waves (``refill=False``, what :func:`collect_rollouts` uses) or
refilling a slot as soon as its episode ends (``refill=True``), and yields an :class:`EpisodeResult` for
each episode as it finishes. It imports no torch (``agents.grpo`` is imported by :func:`collect_rollouts`
only), so policies without an LLM run without the ``[llm]`` extra.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from agents.policy import AgentRequest, Policy

if TYPE_CHECKING:  # agents.grpo imports torch
    from agents.grpo import Rollout

__all__ = ["collect_rollouts", "iter_episodes", "EpisodeJob", "EpisodeResult"]


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to run: the task, the episode id the policy sees, the env ``reset`` seed, and an
    opaque ``key`` the caller gets back in the :class:`EpisodeResult`."""

    task_id: str
    episode_id: str
    seed: int | None = None
    key: Any = None


@dataclass
class EpisodeResult:
    """A finished episode: the same fields as :class:`agents.grpo.Rollout` plus the job and timing.

    ``metrics``: the env's end-of-episode metrics (``answer``, item/row scores, turns, tool calls,
    subagents, failures...) plus ``policy_errors`` ({error: count} of the policy's ``AgentResponse.error``
    s in this episode). ``seconds``: wall time from the episode's reset to its last step (episodes
    stepped together share that time).
    """

    job: EpisodeJob
    group_id: Any
    reward: float
    trajectories: dict[str, Any]
    answer_parsed: bool
    root_agent: str
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int = 0

    def to_rollout(self) -> "Rollout":
        from agents.grpo import Rollout

        return Rollout(
            group_id=self.group_id,
            reward=self.reward,
            trajectories=self.trajectories,
            answer_parsed=self.answer_parsed,
            root_agent=self.root_agent,
            metrics=self.metrics,
        )


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
) -> list["Rollout"]:
    """Run ``group_size`` episodes of each task in ``task_ids``; return one :class:`Rollout` per episode
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
    return [r.to_rollout() for r in results]


def iter_episodes(
    make_env: Callable[[], Any] | Sequence[Any],
    policy: Policy,
    jobs: Sequence[EpisodeJob],
    *,
    max_parallel: int | None = None,
    refill: bool = True,
    max_steps: int = 10_000,
) -> Iterator[EpisodeResult]:
    """Run ``jobs`` with up to ``max_parallel`` envs stepped together (one ``policy.act`` per step for
    every acting agent of every live env; one batched tool execution per step) and yield each episode's
    :class:`EpisodeResult` as it finishes (``refill=True``: a free env takes the next job at once) or at the
    end of its wave (``refill=False``: a new wave starts when every env of the last one has finished).
    ``make_env``: a zero-argument env factory, or a list of envs to reuse. An episode still running after
    ``max_steps`` steps raises ``RuntimeError``."""
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
                "final": None, "steps": 0, "started": started}

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
            yield _finish(s, policy)


def _finish(s: dict[str, Any], policy: Policy) -> EpisodeResult:
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
        traj.info.setdefault("task_id", job.task_id)
    metrics["subagents_spawned"] = metrics.get("subagents_spawned", max(len(trajs) - 1, 0))
    metrics["policy_errors"] = dict(sorted(s["errors"].items()))
    return EpisodeResult(
        job=job,
        group_id=job.task_id,
        reward=reward,
        trajectories=trajs,
        answer_parsed=bool(metrics.get("answer_parsed", True)) and not truncated,
        root_agent=root,
        metrics=metrics,
        seconds=time.perf_counter() - s["started"],
        steps=s["steps"],
    )
