"""``wideseek train --ray local|ADDRESS``: rollouts on Ray actors.

Each :class:`RolloutWorker` actor holds envs (its own retriever on the corpus, which every node must be
able to read, or a retrieval server URL) and a replica of the sampling policy built from the run's model
directory. The trainer deals each step's episodes to the workers (whole groups stay together), gathers
the :class:`~agents.episode.Episode` s (with their token trajectories) and, after each update, pushes the
new weights to every worker (:meth:`RayRollouts.push_weights`), so the next step samples from the
current policy.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Sequence

from agents.episode import EpisodeJob

__all__ = ["RolloutWorker", "RayRollouts"]


class RolloutWorker:
    """A Ray actor: envs + a policy replica; plays the jobs it is given."""

    def __init__(self, config_dict: dict[str, Any], model_dir: str, train_file: str) -> None:
        from agents.train.config import TrainConfig
        from agents.train.build import rollout_policy, train_env_setup

        self.config = TrainConfig.from_dict(config_dict)
        self.setup = train_env_setup(self.config, Path(train_file))
        self.policy = rollout_policy(self.config, model_dir)
        self.envs: list[Any] = []

    def load_weights(self, weights: list[tuple[str, Any]]) -> bool:
        self.policy.load_weights(weights)
        return True

    def collect(self, jobs: list[tuple[str, str, int, int]]) -> list[Any]:
        from agents.rollout import iter_episodes

        width = len(jobs)
        if self.config.max_parallel_envs:
            width = min(width, self.config.max_parallel_envs)
        while len(self.envs) < width:
            self.envs.append(self.setup.make_env())
        job_objs = [EpisodeJob(t, e, s, k) for t, e, s, k in jobs]
        return list(iter_episodes(self.envs[:width], self.policy, job_objs, max_parallel=width, refill=False))

    def close(self) -> None:
        for env in self.envs:
            with contextlib.suppress(Exception):
                env.close()
        self.setup.close()
        with contextlib.suppress(Exception):
            self.policy.close()


class RayRollouts:
    """The driver's side: starts ``config.ray_workers`` actors on ``config.ray``; ``collect`` and
    ``push_weights`` each step; ``close`` at the end (Ray started here is shut down)."""

    def __init__(self, config: Any, model_dir: str, train_file: Path) -> None:
        from agents.ray_cluster import ray_session

        self._session = ray_session(config.ray, {"num_cpus": max(config.ray_workers, 1)}
                                    if config.ray == "local" else None)
        self.ray = self._session.__enter__()
        cfg = config.to_dict()  # a callable reward_fn travels as "module:function" (it must be importable)
        cfg["ray"] = None
        actor = self.ray.remote(num_cpus=1)(RolloutWorker)
        self.actors = [actor.remote(cfg, model_dir, str(train_file)) for _ in range(config.ray_workers)]

    def collect(self, task_ids: Sequence[str], group_size: int, *, seed: int, prefix: str) -> list[Any]:
        """The same episodes (ids, seeds, order) as :func:`agents.rollout.collect_rollouts`, played on the
        workers; each task's group goes to one worker."""
        jobs = [(tid, f"{prefix}{k}", seed + k, k)
                for k, tid in enumerate(t for t in task_ids for _ in range(group_size))]
        shares: list[list[tuple[str, str, int, int]]] = [[] for _ in self.actors]
        for j, job in enumerate(jobs):
            shares[(j // group_size) % len(self.actors)].append(job)
        refs = [a.collect.remote(share) for a, share in zip(self.actors, shares) if share]
        episodes = [e for part in self.ray.get(refs) for e in part]
        return sorted(episodes, key=lambda e: e.job.key)

    def push_weights(self, weights: list[tuple[str, Any]]) -> None:
        ref = self.ray.put([(n, t.detach().cpu()) for n, t in weights])
        self.ray.get([a.load_weights.remote(ref) for a in self.actors])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ray.get([a.close.remote() for a in self.actors])
        for a in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(a)
        self._session.__exit__(None, None, None)
