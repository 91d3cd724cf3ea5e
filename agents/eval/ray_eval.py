"""``wideseek eval --ray ADDRESS``: pending episodes dealt to Ray actors.

Each actor holds ``parallel`` envs (the corpus path must be readable on every node, or a retriever URL is
used) and its own policy: a replica (scripted, oracle, hf, vllm) or a client of a shared OpenAI-compatible
server. Actors stream each finished episode's record back; the driver writes it to the same resumable
``episodes.jsonl``.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

from agents.episode import EpisodeJob
from agents.eval.spec import EvalSpec
from agents.ray_cluster import ray_session

__all__ = ["run_ray"]


class _EvalWorker:
    """A Ray actor: ``parallel`` envs on one retriever + one policy; streams episode records back."""

    def __init__(self, spec_json: dict[str, Any], tasks_json: list[dict[str, Any]], model_path: str | None):
        from agents.eval.run import env_setup, policy_for
        from wideseek_env.tasks import Task

        self.spec = EvalSpec.from_json(spec_json)
        self.tasks = [Task.from_json(t) for t in tasks_json]
        self.kinds = {t.id: getattr(t, "kind", "table") for t in self.tasks}
        self.setup = env_setup(self.spec, self.tasks)
        self.policy = policy_for(self.spec, self.tasks, model_path)
        self.envs = [self.setup.make_env() for _ in range(self.spec.parallel)]

    def run(self, jobs: list[tuple[str, str, int, tuple[str, int]]]) -> Iterator[dict[str, Any]]:
        from agents.rollout import iter_episodes

        job_objs = [EpisodeJob(t, e, s, tuple(k)) for t, e, s, k in jobs]
        for episode in iter_episodes(self.envs, self.policy, job_objs, max_parallel=self.spec.parallel,
                                     refill=True, keep_transcripts=self.spec.save_transcripts):
            record = episode.record(self.kinds.get(episode.task_id, "table"))
            if self.spec.save_transcripts:
                record["transcript"] = episode.transcript()
            yield record

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.policy.close()
        self.setup.close()


def run_ray(spec: EvalSpec, tasks: Sequence[Any], jobs: Sequence[EpisodeJob], model_path: str | None,
            emit: Callable[[dict[str, Any]], None], *, address: str, workers: int | None,
            worker_gpus: float, init_kwargs: Any) -> None:
    with ray_session(address, init_kwargs) as ray:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(1, min(workers or cpus, len(jobs)))
        actor_cls = ray.remote(num_cpus=1, num_gpus=worker_gpus)(_EvalWorker)
        tasks_ref = ray.put([t.to_json() for t in tasks])
        spec_json = spec.to_json()
        spec_json["api_key"] = spec.api_key
        actors = [actor_cls.remote(spec_json, tasks_ref, model_path) for _ in range(n)]
        plain = [(j.task_id, j.episode_id, j.seed, list(j.key)) for j in jobs]
        gens = [a.run.options(num_returns="streaming").remote(plain[i::n]) for i, a in enumerate(actors)]
        live = list(gens)
        while live:
            ready, _ = ray.wait(live, num_returns=1)
            for g in ready:
                try:
                    ref = next(g)
                except StopIteration:
                    live.remove(g)
                    continue
                emit(ray.get(ref))
        ray.get([a.close.remote() for a in actors])
        for a in actors:
            ray.kill(a)
