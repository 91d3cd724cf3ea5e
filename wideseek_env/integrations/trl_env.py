"""TRL: a ``GRPOTrainer(environment_factory=...)`` environment over the single-agent setting.

TRL's GRPOTrainer (>= 1.0, ``environment_factory``) creates one environment instance per rollout (pooled
and reused), calls ``reset(**row)`` with the dataset row before generating, exposes every public method
of the class except ``reset`` as a tool (the method's name, type hints and Google-style docstring become
the tool schema), calls the tools the model asks for in its tool-calling loop, and passes the instances to
the reward functions as ``environments``. This module provides those pieces::

    from trl import GRPOConfig, GRPOTrainer
    from wideseek_env.integrations.trl_env import (
        REWARD_FUNCS, REWARD_WEIGHTS, environment_factory, prepare_tokenizer, task_dataset)

    trainer = GRPOTrainer(
        model=model, processing_class=prepare_tokenizer(tokenizer),
        args=GRPOConfig(..., reward_weights=REWARD_WEIGHTS),
        train_dataset=task_dataset("data/tasks-ottqa/train.jsonl"),
        reward_funcs=REWARD_FUNCS,
        environment_factory=environment_factory("data/corpus-ottqa", "data/tasks-ottqa/train.jsonl"),
    )

- :class:`WideSeekTRLEnv`: ``reset(task_id=...)`` starts a :class:`~.tool_episode.ToolEpisode` on the
  row's task and returns the task text (TRL appends it to the row's empty user message); ``search`` and
  ``access`` run the env's tools with the paper's argument objects and return the env's tool messages.
- :func:`task_dataset`: the task set as a ``datasets.Dataset`` with ``prompt`` (the env's system prompt
  and an empty user message) and ``task_id``.
- Rewards: :func:`episode_reward` ends each episode with the last assistant message of its completion as
  the final answer and returns the env's reward (item F1 of the table; RLinf's shaping when
  ``EnvConfig.reward_shaping``); :func:`row_f1` and :func:`success` report the same episode's row F1 and
  success (weight 0 in :data:`REWARD_WEIGHTS`: logged by TRL as ``rewards/row_f1/mean`` and
  ``rewards/success/mean``, not trained on).
- :func:`prepare_tokenizer` gives a Hermes/ChatML tokenizer (Qwen2.5/3 and this project's models) the
  response template TRL parses tool calls with, when TRL does not recognise its chat template.

Limits. The env keeps the paper's SingleSeek limits (``EnvConfig.single_agent()``: 50 turns, 32k-token
context, 5 queries / URLs per call, top-3 hits, 5,000-character snippets, 25,000-character pages). TRL
runs the calls of one message one by one, so each *call* costs one env turn (the env counts a message
with several calls as one turn); set ``GRPOConfig.max_tool_calling_iterations`` below the turn limit and
``max_completion_length`` to the token budget of the whole multi-turn completion (TRL's limit covers
all turns together; the env's 32k context budget covers them too). A completion that TRL stops while the
model still calls tools (iteration or length limit) is scored as an empty answer.

Lead / subagent setting. TRL trains one conversation per rollout, so only one role can be the trained
policy. TRL can drive the *lead* when its subagents are played by a fixed policy; that is not offered
here yet (see docs/integrations.md): the bundled trainer (``wideseek train``) trains lead and subagents
together with the shared episode advantage, which TRL's single-conversation rollouts cannot express.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from wideseek_env.config import EnvConfig
from wideseek_env.errors import WideseekError, require
from wideseek_env.integrations.tool_episode import ToolEpisode

__all__ = [
    "REWARD_FUNCS",
    "REWARD_WEIGHTS",
    "WideSeekTRLEnv",
    "environment_factory",
    "episode_reward",
    "final_answer",
    "prepare_tokenizer",
    "row_f1",
    "success",
    "task_dataset",
]


class WideSeekTRLEnv:
    """One single-agent WideSeek episode per rollout, for TRL's ``environment_factory``.

    Its public methods are what TRL exposes to the model: ``reset`` (not a tool), ``search`` and
    ``access`` (tools). Everything else is private or a property, so that TRL does not mistake it for a
    tool. Build instances with :func:`environment_factory`, which shares one retriever and one task list
    between them.
    """

    def __init__(self, corpus: Any, tasks: Any, config: EnvConfig | None = None, **env_kwargs: Any) -> None:
        self._episode = ToolEpisode(corpus, tasks, config, **env_kwargs)

    @property
    def episode(self) -> ToolEpisode:
        """The underlying episode (reward, metrics, task)."""
        return self._episode

    def reset(self, task_id: str | None = None, **row: Any) -> str:
        """Start an episode on the dataset row's task (``task_id``; without one, a task is drawn) and
        return the task text that TRL appends to the row's user message. Other row fields are ignored."""
        start = self._episode.reset(task_id=task_id)
        return start.user

    def search(self, queries: list[dict]) -> str:
        """Search the offline Wikipedia with BM25 keyword queries; several queries run in parallel.

        Args:
            queries: Up to 5 searches, each an object {"query": "keywords", "count": 3} where count is the number of hits wanted (default 3).

        Returns:
            For each query, the hits with title, URL and a text snippet.
        """
        return self._call("search", {"queries": queries})

    def access(self, urls: list[dict]) -> str:
        """Read Wikipedia pages by URL and get the parts relevant to what you want to extract.

        Args:
            urls: Up to 5 pages, each an object {"url": "https://en.wikipedia.org/wiki/...", "info_to_extract": "what to look for on the page"}.

        Returns:
            For each URL, the most relevant part of the page, or a message that it is not in the corpus.
        """
        return self._call("access", {"urls": urls})

    def _call(self, name: str, arguments: Mapping[str, Any]) -> str:
        return "\n\n".join(self._episode.call_tools([(name, arguments)]))

    def _finish(self, completion: Any) -> ToolEpisode:
        self._episode.answer(final_answer(completion))
        return self._episode


def environment_factory(
    corpus: Any, tasks: Any, config: EnvConfig | None = None, **env_kwargs: Any
) -> Callable[[], WideSeekTRLEnv]:
    """A zero-argument factory of :class:`WideSeekTRLEnv` for ``GRPOTrainer(environment_factory=...)``.

    ``corpus`` (a directory) is opened once and shared by every instance; ``tasks`` (a file) is loaded
    once. ``config`` defaults to ``EnvConfig.single_agent()``; ``env_kwargs`` go to ``WideSeekEnv``."""
    if isinstance(corpus, (str, os.PathLike)):
        from wideseek_env.corpus.local import LocalRetriever

        corpus = LocalRetriever(Path(corpus))
    task_list = _load_task_list(tasks)

    def make() -> WideSeekTRLEnv:
        return WideSeekTRLEnv(corpus, task_list, config, **env_kwargs)

    return make


def task_dataset(tasks: Any, *, system_prompt: str | None = None, task_ids: Sequence[str] | None = None):
    """The task set as a ``datasets.Dataset`` for ``GRPOTrainer(train_dataset=...)``: one row per task with
    ``prompt`` (the single agent's system prompt and an empty user message that ``reset`` fills with the
    task) and ``task_id``. ``task_ids`` keeps only those tasks, in that order."""
    datasets = require("datasets", "trl")
    from wideseek_env import prompts

    task_list = _load_task_list(tasks)
    if task_ids is not None:
        by_id = {t.id: t for t in task_list}
        missing = [tid for tid in task_ids if tid not in by_id]
        if missing:
            raise WideseekError(f"task ids not in the task set: {missing[:5]}")
        task_list = [by_id[tid] for tid in task_ids]
    system = system_prompt if system_prompt is not None else prompts.system_prompt("agent")
    rows = [
        {"prompt": [{"role": "system", "content": system}, {"role": "user", "content": ""}], "task_id": t.id}
        for t in task_list
    ]
    return datasets.Dataset.from_list(rows)


def _load_task_list(tasks: Any) -> list[Any]:
    if isinstance(tasks, (str, os.PathLike)):
        from wideseek_env.tasks import load_tasks

        return list(load_tasks(Path(tasks)))
    return list(tasks)


# ------------------------------------------------------------------------------------------------
# Reward functions (TRL calls them with prompts, completions, environments and the dataset columns)


def final_answer(completion: Any) -> str:
    """The final answer of a TRL completion: the content of its last message when that is an assistant
    message without tool calls, else ``""`` (TRL stopped the tool loop before the model answered)."""
    if isinstance(completion, str):
        return completion
    if not completion:
        return ""
    last = completion[-1]
    if last.get("role") != "assistant" or last.get("tool_calls"):
        return ""
    content = last.get("content") or ""
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return content


def _finished(completions: Sequence[Any], environments: Sequence[WideSeekTRLEnv] | None) -> list[ToolEpisode]:
    if environments is None:
        raise WideseekError(
            "the wideseek reward functions need TRL's environments: pass "
            "environment_factory=wideseek_env.integrations.trl_env.environment_factory(...) to GRPOTrainer"
        )
    return [env._finish(c) for env, c in zip(environments, completions, strict=True)]


def episode_reward(completions: Sequence[Any], environments: Sequence[WideSeekTRLEnv] | None = None,
                   **kwargs: Any) -> list[float]:
    """The env's episode reward of each completion (item F1 of its final answer by default)."""
    return [ep.reward for ep in _finished(completions, environments)]


def row_f1(completions: Sequence[Any], environments: Sequence[WideSeekTRLEnv] | None = None,
           **kwargs: Any) -> list[float]:
    """Row F1 of each completion's final answer (a metric: weight 0 in :data:`REWARD_WEIGHTS`)."""
    return [float((ep.metrics or {}).get("row_f1", 0.0)) for ep in _finished(completions, environments)]


def success(completions: Sequence[Any], environments: Sequence[WideSeekTRLEnv] | None = None,
            **kwargs: Any) -> list[float]:
    """1.0 when the final answer's table is exactly right, else 0.0 (a metric: weight 0)."""
    return [float((ep.metrics or {}).get("success", 0.0)) for ep in _finished(completions, environments)]


REWARD_FUNCS = [episode_reward, row_f1, success]
REWARD_WEIGHTS = [1.0, 0.0, 0.0]


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Give ``tokenizer`` the response template TRL parses Hermes tool calls with, if it has none and TRL
    does not recognise its chat template (TRL knows Qwen's, Llama's, ...; this project's ChatML + Hermes
    template, which Qwen2.5/3 use too, is parsed like Qwen3's). Returns the tokenizer."""
    require("trl", "trl")
    from trl.chat_template_utils import add_response_schema, qwen3_template

    if getattr(tokenizer, "response_template", None) is not None or getattr(tokenizer, "response_schema", None):
        return tokenizer
    try:
        return add_response_schema(tokenizer)
    except ValueError:
        template = tokenizer.chat_template or ""
        if "<tool_call>" not in template or "<|im_start|>" not in template:
            raise WideseekError(
                "the tokenizer's chat template is neither one TRL knows nor ChatML with Hermes "
                "<tool_call> blocks: set tokenizer.response_template yourself (see the transformers "
                "docs on response parsing)"
            ) from None
        tokenizer.response_template = qwen3_template
        return tokenizer
