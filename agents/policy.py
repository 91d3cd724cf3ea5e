"""The policy interface, and the token-in/token-out machinery that the LLM policies share.

A policy is called once per env step for every acting agent of every env::

    responses = policy.act([AgentRequest(episode_id, agent_id, new_messages, tools, role), ...])

``new_messages`` are the OpenAI-style chat messages that are new for that agent since its last action
(system prompt + task when it is spawned, tool results later; exactly ``infos[agent]["messages"]`` of the
env). One call covers many agents, so LLM policies generate for all of them in one batch: width is
batched generation. ``reset_episode`` / ``end_episode`` start and free the per-episode state.

Token-in/token-out (:class:`ChatTokenPolicy`)
---------------------------------------------
Each (episode, agent) keeps its own append-only token buffer. New messages are rendered with the chat
template (tool schemas go into the system prompt on the first render, Hermes ``<tool_call>`` format as
Qwen-style templates do) and their tokens are APPENDED: earlier turns are never re-tokenised, so the
ids a trainer sees are exactly the ids that were sampled. The assistant's generated ids are appended
verbatim, followed by whatever end-of-turn tokens of the template the model did not generate itself
(``<|im_end|>\\n`` in ChatML). Qwen3-style ``<think>...</think>`` blocks stay in the agent's own buffer.

Incremental rendering. The text for the new messages is the suffix delta
``render(history + new, add_generation_prompt=True)[len(render(history)):]`` where ``history`` is the
agent's conversation so far (assistant messages hold the decoded generated text). This assumes the
template is *prefix-stable*: rendering more messages does not change the rendering of earlier ones. The
prefix is checked on every turn. Templates that rewrite earlier turns (Qwen3 drops the ``<think>`` of
assistant turns before the last user message) fail that check; the fallback then renders the new messages
after a fixed stand-in conversation (system, user, assistant) and takes the delta after it, which depends
only on the new messages (verl's approach). If even that is not prefix-stable, :class:`TemplateError` is
raised, naming the template problem. ``render_mode`` forces one method ("history" or "base").

Context overflow: a prompt that leaves no room for a single generated token (``max_model_len``) yields
``AgentResponse(text="", error="context_length", finish_reason="context_length")``; nothing is appended
to the buffer, and the env / rollout runner marks the agent failed. Otherwise ``max_tokens`` is clipped
to the room left, and a cut generation has ``finish_reason="length"``.

Out of memory: when the backend raises an out-of-memory error (:func:`is_out_of_memory`) for a batch, the
batch is split in two and each half retried, down to single prompts; a prompt that fails alone yields
``AgentResponse(text="", error="out_of_memory", finish_reason="error")`` (nothing appended, the agent is
marked failed by the rollout runner) while the rest of the batch is answered. So an OOM costs the agents
that cannot fit, never the run. (vLLM reserves its KV cache when the engine starts and preempts
sequences rather than failing when it is full; what it can still raise — a dead engine — is not an OOM
of one batch and propagates.)
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Mapping, Sequence

from agents.trajectory import Trajectory, Turn

log = logging.getLogger(__name__)

CONTEXT_LENGTH_ERROR = "context_length"
OUT_OF_MEMORY_ERROR = "out_of_memory"


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a backend running out of memory: ``MemoryError``, ``torch.OutOfMemoryError``
    (``torch.cuda.OutOfMemoryError`` is the same class), or a ``RuntimeError`` whose message says so
    (older torch builds and some CPU allocators)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _release_cached_memory() -> None:
    """Give cached accelerator memory back after an OOM so that the retry of a smaller batch can use it."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass
class AgentRequest:
    episode_id: str
    agent_id: str
    new_messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    role: str = "default"


@dataclass
class AgentResponse:
    text: str
    prompt_ids: list[int] | None = None  # the whole context the response was generated from
    response_ids: list[int] | None = None
    logprobs: list[float] | None = None
    finish_reason: str = "stop"  # "stop" | "length" | "context_length" | "error"
    error: str | None = None


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling parameters of one role. ``temperature=0`` is greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_tokens: int = 1024
    stop_token_ids: tuple[int, ...] = ()
    #: Generate at least this many tokens before an end-of-sequence may stop the generation (vLLM's
    #: ``min_tokens``, transformers' ``min_new_tokens``). Benchmarks set it to ``max_tokens`` so every
    #: generation has the same length; training and evaluation leave it at 0.
    min_tokens: int = 0


def resolve_sampling(
    sampling: SamplingConfig | Mapping[str, SamplingConfig | Mapping[str, Any]] | None,
) -> dict[str, SamplingConfig]:
    """Normalise the ``sampling`` argument of a policy into ``{role: SamplingConfig}`` with a ``"default"``.

    Accepts one SamplingConfig (every role), or a mapping role -> SamplingConfig or dict of its fields.
    """
    if sampling is None:
        return {"default": SamplingConfig()}
    if isinstance(sampling, SamplingConfig):
        return {"default": sampling}
    out: dict[str, SamplingConfig] = {}
    for role, cfg in sampling.items():
        if isinstance(cfg, Mapping):
            cfg = dict(cfg)
            if "stop_token_ids" in cfg:
                cfg["stop_token_ids"] = tuple(cfg["stop_token_ids"])
            cfg = SamplingConfig(**cfg)
        if not isinstance(cfg, SamplingConfig):
            raise TypeError(f"sampling for role {role!r} must be a SamplingConfig or a dict, got {cfg!r}")
        out[role] = cfg
    out.setdefault("default", SamplingConfig())
    return out


class Policy(abc.ABC):
    """What the env-facing code (rollout runner, evaluation) calls."""

    @abc.abstractmethod
    def act(self, requests: Sequence[AgentRequest]) -> list[AgentResponse]:
        """One response per request, in order. Never raises for a context overflow."""

    def reset_episode(self, episode_id: str) -> None:
        """Forget any state of ``episode_id`` (call before reusing an id)."""

    def end_episode(self, episode_id: str) -> dict[str, Trajectory]:
        """Free the episode's buffers and return its per-agent trajectories (empty if not recorded)."""
        return {}

    def close(self) -> None:
        """Release engines, servers or thread pools."""


class TemplateError(RuntimeError):
    """The chat template cannot be rendered incrementally (not prefix-stable)."""


@dataclass
class Generation:
    """What a backend returns for one prompt."""

    token_ids: list[int]
    logprobs: list[float] | None
    finish_reason: str  # "stop" | "length"
    error: str | None = None


@dataclass
class GenerationRequest:
    prompt_ids: list[int]
    sampling: SamplingConfig  # max_tokens already clipped to the room left in the context
    seed: int | None = None


@dataclass
class _AgentState:
    messages: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] | None = None
    ids: list[int] = field(default_factory=list)
    trajectory: Trajectory | None = None
    turn: int = 0


# A stand-in conversation for the "base" rendering fallback: the new messages are rendered after it.
_BASE_CONVERSATION = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "U"},
    {"role": "assistant", "content": "A"},
]
_MARK = "\u2063WIDESEEK_END_OF_TURN_PROBE\u2063"


class ChatTokenPolicy(Policy):
    """A policy over a chat-template tokenizer with per-agent append-only token buffers.

    Subclasses implement :meth:`_generate` (a batch of token-id prompts -> generated ids + logprobs) and
    may override :meth:`_max_model_len`.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        sampling: SamplingConfig | Mapping[str, Any] | None = None,
        max_model_len: int | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
        render_mode: str = "auto",
        seed: int | None = 0,
        record_trajectories: bool = True,
    ) -> None:
        if render_mode not in ("auto", "history", "base"):
            raise ValueError("render_mode must be 'auto', 'history' or 'base'")
        self.tokenizer = tokenizer
        self.sampling = resolve_sampling(sampling)
        self.max_model_len = max_model_len
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.render_mode = render_mode
        self.seed = seed
        self.record_trajectories = record_trajectories
        self._episodes: dict[str, dict[str, _AgentState]] = {}
        self._eot_ids: list[int] | None = None
        self.fallback_renders = 0  # how many turns needed the "base" fallback (a template that rewrites history)

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        """Generate for every request (in one batch where the backend can)."""

    # ------------------------------------------------------------------ episode bookkeeping
    def reset_episode(self, episode_id: str) -> None:
        self._episodes.pop(episode_id, None)

    def end_episode(self, episode_id: str) -> dict[str, Trajectory]:
        states = self._episodes.pop(episode_id, {})
        return {a: s.trajectory for a, s in states.items() if s.trajectory is not None}

    def trajectories(self, episode_id: str) -> dict[str, Trajectory]:
        """The trajectories recorded so far for ``episode_id`` (live objects; not freed)."""
        states = self._episodes.get(episode_id, {})
        return {a: s.trajectory for a, s in states.items() if s.trajectory is not None}

    def token_buffer(self, episode_id: str, agent_id: str) -> list[int]:
        """A copy of the agent's current token buffer (its whole context)."""
        return list(self._episodes[episode_id][agent_id].ids)

    def sampling_for(self, role: str) -> SamplingConfig:
        return self.sampling.get(role, self.sampling["default"])

    @contextlib.contextmanager
    def sampling_override(self, sampling: SamplingConfig | Mapping[str, Any]) -> Iterator[None]:
        """Sample with ``sampling`` (for every role unless it names roles) inside the ``with`` block: how
        the trainer evaluates its current policy greedily between updates."""
        saved = self.sampling
        self.sampling = resolve_sampling(sampling)
        try:
            yield
        finally:
            self.sampling = saved

    # ------------------------------------------------------------------ rendering
    def _render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            messages,
            tools=tools or None,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            **self.chat_template_kwargs,
        )

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        """The text of generated ids, as returned to the env (special tokens such as eos dropped)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def end_of_turn_ids(self) -> list[int]:
        """Tokens the template puts after an assistant message's content (``<|im_end|>\\n`` in ChatML)."""
        if self._eot_ids is None:
            conv = _BASE_CONVERSATION[:2] + [{"role": "assistant", "content": _MARK}]
            text = self._render(conv, None, False)
            pos = text.rfind(_MARK)
            if pos < 0:
                raise TemplateError("the chat template does not render assistant message content")
            self._eot_ids = self._encode(text[pos + len(_MARK):])
        return self._eot_ids

    def _render_delta(self, state: _AgentState, new: list[dict[str, Any]]) -> str:
        if not state.messages:
            return self._render(new, state.tools, True)
        if self.render_mode in ("auto", "history"):
            before = self._render(state.messages, state.tools, False)
            after = self._render(state.messages + new, state.tools, True)
            if after.startswith(before):
                return after[len(before):]
            if self.render_mode == "history":
                raise TemplateError(
                    "the chat template is not prefix-stable: rendering new messages changed the rendering "
                    "of earlier ones (use render_mode='auto' or 'base')"
                )
        before = self._render(_BASE_CONVERSATION, state.tools, False)
        after = self._render(_BASE_CONVERSATION + new, state.tools, True)
        if not after.startswith(before):
            raise TemplateError(
                "the chat template is not prefix-stable even after a fixed stand-in conversation; "
                "token-in/token-out rendering needs a template whose rendering of a conversation is a "
                "prefix of the rendering of the conversation plus more messages"
            )
        if self.render_mode == "auto":
            self.fallback_renders += 1
            if self.fallback_renders == 1:
                log.warning("chat template rewrites earlier turns; rendering new messages after a stand-in "
                            "conversation instead (render_mode='base')")
        return after[len(before):]

    @staticmethod
    def _append_overlap(response: list[int], eot: list[int]) -> list[int]:
        """The part of ``eot`` not already generated at the end of ``response``."""
        for k in range(min(len(eot), len(response)), 0, -1):
            if response[-k:] == eot[:k]:
                return eot[k:]
        return list(eot)

    def _max_model_len(self) -> int | None:
        return self.max_model_len

    def _request_seed(self, req: AgentRequest, turn: int) -> int | None:
        if self.seed is None:
            return None
        h = hashlib.blake2b(f"{self.seed}|{req.episode_id}|{req.agent_id}|{turn}".encode(), digest_size=8)
        return int.from_bytes(h.digest(), "little") & 0x7FFFFFFF

    def _generate_fitting(self, requests: list[GenerationRequest]) -> list[Generation]:
        """:meth:`_generate`, halving the batch on out-of-memory errors (see the module docstring)."""
        try:
            return self._generate(requests)
        except Exception as exc:  # noqa: BLE001 - only OOMs are handled, the rest re-raised
            if not is_out_of_memory(exc):
                raise
            oom = exc
        _release_cached_memory()
        if len(requests) == 1:
            log.warning("the backend ran out of memory on a single prompt of %d tokens: %s",
                        len(requests[0].prompt_ids), oom)
            return [Generation([], None, "error", error=OUT_OF_MEMORY_ERROR)]
        half = len(requests) // 2
        log.warning("the backend ran out of memory on a batch of %d prompts; retrying in halves", len(requests))
        return self._generate_fitting(requests[:half]) + self._generate_fitting(requests[half:])

    # ------------------------------------------------------------------ act
    def act(self, requests: Sequence[AgentRequest]) -> list[AgentResponse]:
        seen: set[tuple[str, str]] = set()
        for r in requests:
            key = (r.episode_id, r.agent_id)
            if key in seen:
                raise ValueError(f"agent {r.agent_id!r} of episode {r.episode_id!r} appears twice in one act()")
            seen.add(key)

        max_len = self._max_model_len()
        eot = self.end_of_turn_ids()
        responses: list[AgentResponse | None] = [None] * len(requests)
        pending: list[tuple[int, _AgentState, list[dict[str, Any]], list[int], GenerationRequest]] = []
        for i, req in enumerate(requests):
            state = self._episodes.setdefault(req.episode_id, {}).setdefault(req.agent_id, _AgentState())
            if state.tools is None:
                state.tools = list(req.tools or [])
            new = [dict(m) for m in req.new_messages]
            if not state.messages and not new:
                responses[i] = AgentResponse(text="", finish_reason="error",
                                             error="no messages: the first request of an agent needs its prompt")
                continue
            delta_ids = self._encode(self._render_delta(state, new))
            prompt_len = len(state.ids) + len(delta_ids)
            sampling = self.sampling_for(req.role)
            if max_len is not None:
                room = max_len - prompt_len
                if room < 1:
                    responses[i] = AgentResponse(
                        text="", finish_reason=CONTEXT_LENGTH_ERROR, error=CONTEXT_LENGTH_ERROR
                    )
                    continue
                if sampling.max_tokens > room:
                    sampling = replace(sampling, max_tokens=room)
            gen_req = GenerationRequest(state.ids + delta_ids, sampling, self._request_seed(req, state.turn))
            pending.append((i, state, new, delta_ids, gen_req))

        generations = self._generate_fitting([p[-1] for p in pending]) if pending else []
        if len(generations) != len(pending):
            raise RuntimeError(f"backend returned {len(generations)} generations for {len(pending)} prompts")
        for (i, state, new, delta_ids, gen_req), gen in zip(pending, generations):
            req = requests[i]
            if gen.error is not None:
                # Nothing is appended: the buffer stays as it was before this request.
                responses[i] = AgentResponse(
                    text="",
                    finish_reason=CONTEXT_LENGTH_ERROR if gen.error == CONTEXT_LENGTH_ERROR else "error",
                    error=gen.error,
                )
                continue
            response_ids = list(gen.token_ids)
            logprobs = list(gen.logprobs) if gen.logprobs is not None else None
            text = self.decode(response_ids)
            suffix = self._append_overlap(response_ids, eot)
            state.ids = gen_req.prompt_ids + response_ids + suffix
            state.messages = state.messages + new + [{"role": "assistant", "content": text}]
            state.turn += 1
            if self.record_trajectories:
                if state.trajectory is None:
                    state.trajectory = Trajectory(req.episode_id, req.agent_id, req.role)
                state.trajectory.add_turn(Turn(
                    prompt_ids=delta_ids,
                    response_ids=response_ids,
                    logprobs=logprobs,
                    mask=[1] * len(response_ids),
                    suffix_ids=suffix,
                    finish_reason=gen.finish_reason,
                ))
            responses[i] = AgentResponse(
                text=text,
                prompt_ids=gen_req.prompt_ids,
                response_ids=response_ids,
                logprobs=logprobs,
                finish_reason=gen.finish_reason,
            )
        assert all(r is not None for r in responses)
        return responses  # type: ignore[return-value]
