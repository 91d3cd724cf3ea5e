"""What defines an evaluation run: :class:`EvalSpec` (the ``wideseek eval`` arguments) and its checks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from agents.setup import LLM_POLICIES, POLICIES, SetupError, env_config, parse_env_overrides, resolve_model, tasks_file
from wideseek_env.errors import WideseekError

__all__ = ["EvalSpec", "EvalError", "RunMismatchError", "add_arguments", "spec_from_args"]


class EvalError(WideseekError):
    """A problem with an evaluation run (bad arguments, paths, a failing policy)."""


class RunMismatchError(EvalError):
    """``--out`` holds a run with a different identity."""


def _presets() -> tuple[str, ...]:
    from wideseek_env.config import PRESETS

    return tuple(PRESETS)


@dataclass
class EvalSpec:
    """Everything that defines an evaluation run (the CLI's arguments).

    ``preset`` + ``env``: the env config (``EnvConfig.from_preset(preset, env)``; ``env`` holds any
    :class:`~wideseek_env.config.EnvConfig` fields, ``--env KEY=VALUE`` on the command line);
    ``single_agent`` and ``subagents`` are shortcuts for ``mode=single`` and ``max_subagents_per_call``.
    ``policy_options``: extra keyword arguments for the policy's constructor (e.g. ``{"dtype": "float32"}``
    for ``hf``). All of these are part of the run's identity; ``limit``, ``samples``, ``parallel`` and
    ``save_transcripts`` are not.
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
    env: dict[str, Any] = field(default_factory=dict)
    policy_options: dict[str, Any] = field(default_factory=dict)
    save_transcripts: bool = False

    def validate(self) -> None:
        """Raise :class:`EvalError` with a one-line message for a bad combination of arguments."""
        if self.policy not in POLICIES:
            raise EvalError(f"unknown policy {self.policy!r}; choose one of: {', '.join(POLICIES)}")
        if self.preset not in _presets():
            raise EvalError(f"unknown preset {self.preset!r}; choose one of: {', '.join(_presets())}")
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
        self.env_config()

    # ------------------------------------------------------------------ derived values

    def tasks_path(self) -> Path:
        try:
            return tasks_file(self.tasks, split="test")
        except SetupError as exc:
            raise EvalError(str(exc)) from None

    def corpus_path(self) -> Path | None:
        if self.retriever_url is not None:
            return None
        if self.corpus is None:
            from wideseek_env.paths import default_corpus_dir

            return default_corpus_dir()
        return Path(self.corpus)

    def knowledge(self) -> str:
        """What the envs search: the retriever URL or the corpus directory."""
        return self.retriever_url if self.retriever_url is not None else str(self.corpus_path())

    def env_config(self) -> Any:
        changes: dict[str, Any] = dict(self.env)
        if self.single_agent:
            changes["mode"] = "single"
        if self.subagents is not None:
            changes["max_subagents_per_call"] = self.subagents
        try:
            return env_config(self.preset, changes)
        except SetupError as exc:
            raise EvalError(str(exc)) from None

    def resolved_model(self) -> str | None:
        """The model directory (``smollm2`` / ``tiny`` are built on first use); None for non-LLM policies."""
        if self.policy not in LLM_POLICIES:
            return None
        try:
            return resolve_model(self.model, policy=self.policy)
        except SetupError as exc:
            raise EvalError(str(exc)) from None

    def label(self) -> str:
        mode = "single" if self.single_agent else f"multi-k{self.env_config().max_subagents_per_call}"
        model = f"-{Path(self.model).name}" if self.model else ""
        return f"{self.policy}{model}-{mode}"

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("api_key", None)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "EvalSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# ----------------------------------------------------------------------------------------------
# Command line


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
    p.add_argument("--preset", choices=_presets(), default="default", help="env preset (invalid-call handling, RLinf settings)")
    p.add_argument("--env", dest="env", action="append", default=[], metavar="KEY=VALUE",
                   help="set any EnvConfig field, e.g. --env page_chars=3000 --env lead_max_turns=5; repeatable")
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
    p.add_argument("--save-transcripts", action="store_true",
                   help="also write OUT/transcripts.jsonl: every agent's messages, texts and tokens (see 'wideseek show')")
    p.add_argument("--overwrite", action="store_true", help="discard an earlier run in --out")
    p.add_argument("--ray", default=None, metavar="ADDRESS", help="run on a Ray cluster ('local' starts one here)")
    p.add_argument("--ray-workers", type=int, default=None, help="Ray actors (default: the cluster's CPUs)")
    p.add_argument("--ray-worker-gpus", type=float, default=0.0, help="GPUs per Ray actor (vllm/hf on GPUs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def spec_from_args(args) -> EvalSpec:
    try:
        env = parse_env_overrides(args.env)
    except SetupError as exc:
        raise EvalError(str(exc)) from None
    return EvalSpec(
        policy=args.policy, tasks=args.tasks, corpus=args.corpus, retriever_url=args.retriever_url,
        model=args.model, base_url=args.base_url, api_key=args.api_key, subagents=args.subagents,
        single_agent=args.single_agent, preset=args.preset, samples=args.samples, seed=args.seed,
        limit=args.limit, task_seed=args.task_seed, parallel=args.parallel, temperature=args.temperature,
        top_p=args.top_p, max_tokens=args.max_tokens, max_model_len=args.max_model_len, env=env,
        save_transcripts=args.save_transcripts,
    )
