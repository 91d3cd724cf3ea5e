"""``evaluate()``: run (or resume) an evaluation into ``--out`` and summarise it.

Each selected task is played ``samples`` times (episode ``(task id, sample index)``) by the policy in
:class:`~wideseek_env.env.WideSeekEnv` s built by the run setup (:class:`agents.setup.EnvSetup`: one
retriever and one set of tools for all envs). Up to ``parallel`` envs are stepped together by
:func:`agents.rollout.iter_episodes`; a finished env takes the next episode. Each finished episode's record
is appended to ``episodes.jsonl`` at once (and its transcript to ``transcripts.jsonl`` when asked), so a
killed run loses nothing and the same command resumes it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from agents.episode import EpisodeJob, episode_id
from agents.eval.identity import check_run_file, episode_seed, run_identity, select_tasks
from agents.eval.records import JsonlLog, read_episodes
from agents.eval.spec import EvalError, EvalSpec
from agents.eval.summary import format_summary, summarize
from agents.setup import EnvSetup, SetupError, build_policy
from wideseek_env.errors import WideseekError
from wideseek_env.files import locked_dir, write_json_atomic

__all__ = ["evaluate", "env_setup", "policy_for", "default_out_dir", "run_cli"]


def env_setup(spec: EvalSpec, tasks: Sequence[Any]) -> EnvSetup:
    """The envs of ``spec``: its env config on its corpus or retriever URL."""
    try:
        return EnvSetup.build(tasks, spec.env_config(), corpus=spec.knowledge())
    except SetupError as exc:
        raise EvalError(str(exc)) from None


def policy_for(spec: EvalSpec, tasks: Sequence[Any], model_path: str | None) -> Any:
    """The policy ``spec`` names (recording token trajectories only when transcripts are kept)."""
    from agents.policy import SamplingConfig

    sampling = SamplingConfig(temperature=spec.temperature, top_p=spec.top_p, max_tokens=spec.max_tokens)
    return build_policy(spec.policy, model=model_path or spec.model, sampling=sampling, seed=spec.seed,
                        max_model_len=spec.max_model_len, env=spec.env_config(), tasks=tasks,
                        base_url=spec.base_url, api_key=spec.api_key,
                        record_trajectories=spec.save_transcripts, options=spec.policy_options)


def _jobs(selected: Sequence[Any], samples: int, seed: int, done: Mapping[tuple[str, int], Any]) -> list[EpisodeJob]:
    return [
        EpisodeJob(t.id, episode_id(t.id, k), episode_seed(seed, t.id, k), (t.id, k))
        for t in selected
        for k in range(samples)
        if (t.id, k) not in done
    ]


def run_local(spec: EvalSpec, tasks: Sequence[Any], jobs: Sequence[EpisodeJob], model_path: str | None,
              emit: Callable[[Any], None], policy: Any = None) -> None:
    """Play ``jobs`` here and ``emit`` each finished :class:`~agents.episode.Episode`."""
    from agents.rollout import iter_episodes

    setup = env_setup(spec, tasks)
    own_policy = policy is None
    if own_policy:
        policy = policy_for(spec, tasks, model_path)
    envs = [setup.make_env() for _ in range(min(spec.parallel, len(jobs)))]
    try:
        for episode in iter_episodes(envs, policy, jobs, max_parallel=spec.parallel, refill=True,
                                     keep_transcripts=spec.save_transcripts):
            emit(episode)
    finally:
        if own_policy:
            with contextlib.suppress(Exception):
                policy.close()
        for env in envs:
            with contextlib.suppress(Exception):
                env.close()
        setup.close()


def evaluate(
    spec: EvalSpec,
    out: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    ray_address: str | None = None,
    ray_workers: int | None = None,
    ray_worker_gpus: float = 0.0,
    ray_init_kwargs: Mapping[str, Any] | None = None,
    print_table: bool = True,
    policy: Any = None,
    max_transcripts: int | None = None,
) -> dict[str, Any]:
    """Run (or resume) the evaluation of ``spec`` into ``out``; return the summary (also ``summary.json``).

    ``policy``: an already-built policy to use instead of building the one ``spec`` names (programmatic use:
    one vLLM engine for several runs, the trainer's current policy; it is not closed). It must be the
    policy ``spec`` describes: the run's identity is computed from ``spec``. Not with ``ray_address``.
    ``max_transcripts``: with ``spec.save_transcripts``, keep only the first N episodes' transcripts."""
    spec.validate()
    if policy is not None and ray_address is not None:
        raise EvalError("a pre-built policy cannot be sent to Ray workers; leave policy=None with ray_address")
    tasks_file = spec.tasks_path()
    from wideseek_env.tasks import load_tasks

    all_tasks = list(load_tasks(tasks_file))
    if not all_tasks:
        raise EvalError(f"task file {tasks_file} holds no tasks")
    corpus = spec.corpus_path()
    if corpus is not None and not corpus.exists():
        raise EvalError(
            f"corpus directory {corpus} does not exist; build one with 'wideseek corpus build' or pass "
            "--retriever-url"
        )
    model_path = spec.resolved_model()
    identity = run_identity(spec, tasks_file)
    out_dir = Path(out) if out is not None else default_out_dir(spec)
    selected = select_tasks(all_tasks, spec.limit, spec.task_seed)
    label = spec.label()
    kinds = {t.id: getattr(t, "kind", "table") for t in selected}

    busy = f"another 'wideseek eval' is writing to {out_dir}; wait for it or use another --out"
    with locked_dir(out_dir, busy):
        episodes_file = out_dir / "episodes.jsonl"
        transcripts_file = out_dir / "transcripts.jsonl"
        if overwrite:
            for p in (out_dir / "run.json", episodes_file, transcripts_file, out_dir / "summary.json"):
                p.unlink(missing_ok=True)
        check_run_file(out_dir, identity, {
            "spec": spec.to_json(),
            "tasks_file": str(tasks_file.resolve()),
            "corpus": str(corpus.resolve()) if corpus is not None else None,
            "model_path": model_path,
        })
        done = read_episodes(episodes_file)
        if spec.save_transcripts:
            read_episodes(transcripts_file)  # cut off a line a killed run left half-written
        jobs = _jobs(selected, spec.samples, spec.seed, done)
        skipped = len(selected) * spec.samples - len(jobs)
        log = JsonlLog(episodes_file)
        transcripts = JsonlLog(transcripts_file) if spec.save_transcripts else None
        kept = [0]
        bar = None
        if progress and jobs:
            from tqdm import tqdm

            bar = tqdm(total=len(jobs), desc=f"eval {label}", unit="ep", file=sys.stderr, dynamic_ncols=True)
            if skipped:
                bar.write(f"resuming: {skipped} of {len(selected) * spec.samples} episodes already in {episodes_file}")
        f1_sum = [0.0, 0]

        def emit(episode: Any) -> None:
            record = episode if isinstance(episode, dict) else episode.record(kinds.get(episode.task_id, "table"))
            key = (record["task_id"], int(record["sample"]))
            if key in done:
                return
            done[key] = record
            if transcripts is not None and (max_transcripts is None or kept[0] < max_transcripts):
                transcript = record.pop("transcript", None) if isinstance(episode, dict) else episode.transcript()
                if transcript is not None:
                    transcripts.append(transcript)
                    kept[0] += 1
            record.pop("transcript", None)
            log.append(record)
            f1_sum[0] += record["scores"]["item_f1"]
            f1_sum[1] += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(item_f1=f"{f1_sum[0] / f1_sum[1]:.3f}", refresh=False)

        started = time.perf_counter()
        try:
            if jobs and ray_address is not None:
                from agents.eval.ray_eval import run_ray

                run_ray(spec, selected, jobs, model_path, emit, address=ray_address, workers=ray_workers,
                        worker_gpus=ray_worker_gpus, init_kwargs=ray_init_kwargs)
            elif jobs:
                run_local(spec, selected, jobs, model_path, emit, policy)
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
                bar = None
            print(f"wideseek eval: {len(done)} episodes saved in {episodes_file}; run the same command to resume",
                  file=sys.stderr)
            raise
        except WideseekError:
            raise
        except Exception as exc:
            raise EvalError(
                f"the evaluation failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                f"{len(done)} episodes are saved in {episodes_file}: run the same command to resume"
            ) from exc
        finally:
            if bar is not None:
                bar.close()
            log.close()
            if transcripts is not None:
                transcripts.close()
        elapsed = time.perf_counter() - started

        summary = summarize(done.values(), selected, spec.samples)
        summary["run"] = {
            "label": label,
            "out": str(out_dir),
            "policy": spec.policy,
            "model": spec.model,
            "mode": "single" if spec.single_agent else "multi",
            "max_subagents_per_call": None if spec.single_agent else spec.env_config().max_subagents_per_call,
            "preset": spec.preset,
            "env": spec.env,
            "tasks_file": str(tasks_file),
            "limit": spec.limit,
            "task_seed": spec.task_seed,
            "seed": spec.seed,
            "episodes_run_now": len(jobs),
            "episodes_reused": skipped,
            "wall_seconds_now": round(elapsed, 3),
            "parallel": min(spec.parallel, len(jobs)) if jobs else spec.parallel,
            "ray": ray_address,
        }
        write_json_atomic(out_dir / "summary.json", summary)
    if print_table:
        print(format_summary(summary, title=f"{label}: {tasks_file.name}, {out_dir}"))
    return summary


def default_out_dir(spec: EvalSpec) -> Path:
    from wideseek_env.paths import home_dir

    stem = Path(spec.tasks).stem if spec.tasks else "tasks-ottqa-test"
    return home_dir() / "evals" / f"{spec.label()}-{stem}"


def run_cli(args) -> int:
    """``wideseek eval``."""
    from agents.eval.spec import spec_from_args

    if args.ray_workers is not None and args.ray_workers < 1:
        raise EvalError(f"--ray-workers must be >= 1, got {args.ray_workers}")
    evaluate(
        spec_from_args(args), args.out, overwrite=args.overwrite, progress=not args.no_progress,
        ray_address=args.ray, ray_workers=args.ray_workers, ray_worker_gpus=args.ray_worker_gpus,
    )
    return 0
