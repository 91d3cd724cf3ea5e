"""Environment configuration: roles, limits, parsing mode, reward shaping.

Defaults follow the WideSeek-R1 paper (REFERENCE.md section 1): lead 10 turns, subagent 20 turns, at
most 10 subagents per call, 32k tokens of context per agent, questions capped at 4,096 tokens, search
top-3 with 5,000-char snippets, pages cut to 25,000 chars. Presets:

- ``EnvConfig()``: multi-agent, paper limits, robust handling of bad output (a malformed call or a
  tool the role does not have gets an error tool message and the agent goes on), up to 5 calls per
  message;
- ``EnvConfig.paper()``: the same limits, but an invalid call ends the agent's turn as its final
  answer, as in the paper (no retry);
- ``EnvConfig.rlinf()``: RLinf's settings exactly: only the first ``<tool_call>`` block of a message
  is parsed, invalid call = final answer, the shaped training reward;
- ``EnvConfig.single_agent()``: one agent with search + access and 50 turns (SingleSeek).

Subagent pool. PettingZoo needs a fixed ``possible_agents`` and never reuses an id, so the env
allocates subagent ids ``sub_0 .. sub_{N-1}`` from a bounded pool. Unless ``subagent_pool_size`` is
given, N follows from the limits: with L = ``lead_max_turns``, S = ``subagent_max_turns``,
P = ``max_subagents_per_call`` and D = ``max_depth``::

    N = sum_{d=1..D} L * P * (S * P) ** (d - 1)      capped at ``max_pool_size``

(depth 1: each lead turn can start P subagents, so N = L * P = 100 with the defaults; every extra level
lets each subagent of the level above start P per turn). The cap keeps ``possible_agents`` small for
deep trees; when the pool runs out, ``call_subagent`` answers with an error and the episode goes on.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wideseek_env.errors import WideseekError


class ConfigError(WideseekError, ValueError):
    """An invalid ``EnvConfig`` field; the message names the field and the allowed values."""


MODES = ("multi", "single")
INVALID_CALL_MODES = ("error", "final")
SCORING_COMPAT_MODES = ("default", "widesearch")  # = wideseek_env.evaluation.COMPAT_MODES
PROMPT_STYLES = ("paper", "compact")
ACCESS_MODES = ("relevant", "section")


@dataclass
class EnvConfig:
    """All knobs of :class:`wideseek_env.env.WideSeekEnv` (validated on construction)."""

    #: "multi": a lead with ``call_subagent`` plus spawned subagents; "single": one agent "agent"
    #: with search + access.
    mode: str = "multi"
    lead_max_turns: int = 10
    subagent_max_turns: int = 20
    single_max_turns: int = 50
    #: Subagents started by one assistant message (extra prompts are dropped with a note).
    max_subagents_per_call: int = 10
    #: Tool-call blocks run per assistant message; further blocks are not run (the agent is told).
    max_tool_calls_per_message: int = 5
    #: RLinf: parse only the first ``<tool_call>`` block of a message, ignore the rest silently.
    first_tool_call_only: bool = False
    #: Context budget per agent in tokens (counted with the env's token counter). An agent whose
    #: context exceeds it fails (a subagent returns the failure text, the lead is truncated).
    context_tokens: int = 32768
    #: The question is cut to this many tokens before it is shown.
    max_query_tokens: int = 4096
    #: 1: only the lead delegates. >1: subagents above this depth may call ``call_subagent`` too.
    max_depth: int = 1
    #: "error": a malformed call or a tool the role does not have gets an error tool message.
    #: "final": such a message is the agent's final answer (paper / RLinf behaviour).
    invalid_call: str = "error"
    search_top_k: int = 3
    max_search_queries: int = 5
    snippet_chars: int = 5000
    max_access_urls: int = 5
    page_chars: int = 25000
    #: Longer actions are cut to this many characters before parsing (also the action space bound).
    max_action_chars: int = 131072
    #: Observation texts are cut to this many characters (the observation space bound).
    max_observation_chars: int = 1 << 21
    #: Append "Your next answer will be on turn t; you MUST finish by turn max" to every observation.
    turn_hint: bool = True
    #: Tool results of a message that repeats an earlier one of the same agent exactly (the same calls with
    #: the same arguments, or the same malformed text) end with a note naming that turn, so an agent stuck
    #: in a loop is told so (a departure from the paper, which shows nothing; off by default).
    repeat_note: bool = False
    #: None: derived from the limits (see the module docstring); else the exact pool size.
    subagent_pool_size: int | None = None
    #: Upper bound of the derived pool size.
    max_pool_size: int = 1000
    #: Add RLinf's shaping terms to the reward (default reward function only).
    reward_shaping: bool = False
    format_bonus: float = 0.1
    access_bonus: float = 0.05
    length_penalty: float = 0.1
    length_penalty_start: int = 3000
    length_penalty_range: int = 2000
    #: Scorer compatibility mode passed to ``score_answer``: "default" or "widesearch".
    scoring_compat: str = "default"
    #: "paper": the full system prompts and tool descriptions (~1,000 tokens before the task);
    #: "compact": short ones for small models (a departure from the paper; see wideseek_env.prompts).
    prompts: str = "paper"
    #: ``access`` on a long page: "relevant" returns the parts most relevant to ``info_to_extract`` within
    #: ``page_chars`` (the paper's behaviour); "section" returns the one ``## section`` (with its table)
    #: that best matches ``info_to_extract``, whole (cut only at ``page_chars``).
    access_mode: str = "relevant"
    #: ``access`` on a URL not in the corpus: list up to this many pages with the nearest titles (titles
    #: within one typo a word, and a search of the index for the title's words), so a misremembered URL
    #: costs a turn, not the episode. 0: the paper's bare
    #: "No useful information is found under this URL."
    access_suggestions: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"EnvConfig.mode must be one of {MODES}, got {self.mode!r}")
        if self.invalid_call not in INVALID_CALL_MODES:
            raise ConfigError(
                f"EnvConfig.invalid_call must be one of {INVALID_CALL_MODES}, got {self.invalid_call!r}"
            )
        if self.scoring_compat not in SCORING_COMPAT_MODES:
            raise ConfigError(
                f"EnvConfig.scoring_compat must be one of {SCORING_COMPAT_MODES}, got {self.scoring_compat!r}"
            )
        if self.prompts not in PROMPT_STYLES:
            raise ConfigError(f"EnvConfig.prompts must be one of {PROMPT_STYLES}, got {self.prompts!r}")
        if self.access_mode not in ACCESS_MODES:
            raise ConfigError(f"EnvConfig.access_mode must be one of {ACCESS_MODES}, got {self.access_mode!r}")
        positive = (
            "lead_max_turns", "subagent_max_turns", "single_max_turns", "max_subagents_per_call",
            "max_tool_calls_per_message", "context_tokens", "max_query_tokens", "max_depth",
            "search_top_k", "max_search_queries", "snippet_chars", "max_access_urls", "page_chars",
            "max_action_chars", "max_observation_chars", "max_pool_size", "length_penalty_range",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"EnvConfig.{name} must be an integer >= 1, got {value!r}")
        if self.subagent_pool_size is not None:
            v = self.subagent_pool_size
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"EnvConfig.subagent_pool_size must be None or an integer >= 0, got {v!r}")
        for name in ("format_bonus", "access_bonus", "length_penalty"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"EnvConfig.{name} must be a number >= 0, got {value!r}")
        for name in ("length_penalty_start", "access_suggestions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"EnvConfig.{name} must be an integer >= 0, got {value!r}")
        if self.max_observation_chars < 1024:
            raise ConfigError(
                f"EnvConfig.max_observation_chars must be >= 1024, got {self.max_observation_chars}"
            )
        for name in ("first_tool_call_only", "turn_hint", "reward_shaping", "repeat_note"):
            value = getattr(self, name)
            if not isinstance(value, bool):  # "no" or 0 from a config file would silently mean True/False
                raise ConfigError(f"EnvConfig.{name} must be true or false, got {value!r}")
        for name in ("format_bonus", "access_bonus", "length_penalty"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"EnvConfig.{name} must be a finite number, got {getattr(self, name)!r}")

    # ------------------------------------------------------------------ construction from data

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def _check_keys(cls, data: Any) -> dict:
        if not isinstance(data, Mapping):
            raise ConfigError(f"an env config must be a mapping of fields, got {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in cls.field_names())
        if unknown:
            raise ConfigError(
                f"unknown EnvConfig field(s) {unknown}; known fields: {', '.join(cls.field_names())}"
            )
        return dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EnvConfig":
        """An EnvConfig from a mapping (a config file): unknown fields and bad values are ConfigError."""
        return cls(**cls._check_keys(data))

    # ------------------------------------------------------------------ presets

    @classmethod
    def paper(cls, **overrides: Any) -> "EnvConfig":
        """Paper limits; an invalid call is the agent's final answer (no retry)."""
        return cls(**{"invalid_call": "final", **cls._check_keys(overrides)})

    @classmethod
    def rlinf(cls, **overrides: Any) -> "EnvConfig":
        """RLinf's settings: first tool call only, invalid call = final answer, shaped reward."""
        base = dict(
            invalid_call="final",
            first_tool_call_only=True,
            max_tool_calls_per_message=1,
            reward_shaping=True,
        )
        return cls(**{**base, **cls._check_keys(overrides)})

    @classmethod
    def single_agent(cls, **overrides: Any) -> "EnvConfig":
        """SingleSeek: one agent with search + access, 50 turns."""
        return cls(**{"mode": "single", **cls._check_keys(overrides)})

    @classmethod
    def compact(cls, **overrides: Any) -> "EnvConfig":
        """RLinf's settings with compact prompts and whole-section access: for small models (a departure
        from the paper's prompts: the system prompt and tool schemas cost a few hundred tokens, not ~1,000)."""
        return cls.rlinf(**{"prompts": "compact", "access_mode": "section", **cls._check_keys(overrides)})

    @classmethod
    def from_preset(cls, name: str, overrides: Mapping[str, Any] | None = None) -> "EnvConfig":
        """The preset ``name`` (a key of :data:`PRESETS`) with ``overrides`` applied on top.

        The one preset table of the package: ``wideseek eval --preset``, ``wideseek train``'s ``preset:``
        and ``wideseek sft`` all resolve names here. Unknown names and fields are :class:`ConfigError`."""
        try:
            build = PRESETS[name]
        except (KeyError, TypeError):
            raise ConfigError(f"unknown env preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
        return build(cls, **cls._check_keys(overrides or {}))

    def replace(self, **changes: Any) -> "EnvConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **self._check_keys(changes))

    # ------------------------------------------------------------------ derived values

    @property
    def tool_calls_per_message(self) -> int:
        return 1 if self.first_tool_call_only else self.max_tool_calls_per_message

    @property
    def pool_size(self) -> int:
        """The number of subagent ids (``sub_0`` ...): explicit, or derived from the limits."""
        if self.mode == "single":
            return 0
        if self.subagent_pool_size is not None:
            return self.subagent_pool_size
        per_level = self.lead_max_turns * self.max_subagents_per_call
        total = 0
        for _ in range(self.max_depth):
            total += per_level
            if total >= self.max_pool_size:
                return self.max_pool_size
            per_level *= self.subagent_max_turns * self.max_subagents_per_call
        return min(total, self.max_pool_size)

    def max_turns(self, role: str) -> int:
        if role == "lead":
            return self.lead_max_turns
        if role == "subagent":
            return self.subagent_max_turns
        return self.single_max_turns


#: Preset name -> builder (``EnvConfig.from_preset``). ``default``: multi-agent, paper limits, invalid calls
#: answered with an error message; ``paper``: invalid call = final answer; ``rlinf``: RLinf's settings
#: (first tool call only, shaped reward); ``single``: one agent with search + access, 50 turns; ``compact``:
#: ``rlinf`` with compact prompts and whole-section access (small models; not the paper's prompts).
PRESETS: dict[str, Any] = {
    "default": lambda cls, **kw: cls(**kw),
    "paper": lambda cls, **kw: cls.paper(**kw),
    "rlinf": lambda cls, **kw: cls.rlinf(**kw),
    "single": lambda cls, **kw: cls.single_agent(**kw),
    "compact": lambda cls, **kw: cls.compact(**kw),
}
