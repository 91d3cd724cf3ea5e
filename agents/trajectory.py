"""Token-level trajectories of one agent in one episode.

A policy keeps, for every (episode, agent), one append-only token buffer: the agent's whole context as the
model saw it. Each generation adds one :class:`Turn` to the agent's :class:`Trajectory`:

``prompt_ids``    tokens appended to the buffer just before this generation: the chat-template rendering
                  of the messages that are new since the agent's last action (system prompt + tools + task
                  on the first turn; tool results, hints and the assistant header later);
``response_ids``  the tokens the model generated, verbatim (an end-of-turn/eos token it generated included);
``logprobs``      log-probability of each generated token under the sampling policy (None if unknown);
``mask``          1 for generated tokens that a trainer should train on, 0 otherwise (all 1 when recorded;
                  a trainer or rollout runner may zero turns, e.g. those of a failed subagent);
``suffix_ids``    the template's end-of-turn tokens appended after the response when the model did not
                  generate them itself (``<|im_end|>`` after a length cut, the ``\\n`` after ``<|im_end|>``);
``failed``        set by the rollout runner on an offending turn (runaway or context overflow).

So the buffer is always ``full_ids`` = concatenation over turns of ``prompt_ids + response_ids +
suffix_ids``, and ``loss_mask`` marks the generated tokens in it. Earlier tokens never change: the
context of turn ``t`` is exactly ``full_ids[:turns[t].response_start]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Turn:
    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float] | None
    mask: list[int]
    suffix_ids: list[int] = field(default_factory=list)
    finish_reason: str = ""
    # Offset of prompt_ids in the agent's full token buffer (set by Trajectory.add_turn).
    start: int = 0
    #: An offending turn (set by the rollout runner): a runaway generation that used the whole per-turn
    #: budget, or the turn after which the agent's context overflowed. RLinf's credit assignment trains
    #: only such turns in a failed rollout (``turn_selection="rlinf"`` in agents.grpo).
    failed: bool = False

    def __post_init__(self) -> None:
        if len(self.mask) != len(self.response_ids):
            raise ValueError(f"mask has {len(self.mask)} entries for {len(self.response_ids)} response ids")
        if self.logprobs is not None and len(self.logprobs) != len(self.response_ids):
            raise ValueError(
                f"logprobs has {len(self.logprobs)} entries for {len(self.response_ids)} response ids"
            )

    @property
    def response_start(self) -> int:
        """Offset of the first generated token in the agent's full buffer (= length of this turn's context)."""
        return self.start + len(self.prompt_ids)

    @property
    def end(self) -> int:
        return self.response_start + len(self.response_ids) + len(self.suffix_ids)

    @property
    def num_trained_tokens(self) -> int:
        return sum(self.mask)


@dataclass
class Trajectory:
    """All turns of one agent in one episode, plus what the rollout runner attaches (reward, failure)."""

    episode_id: str
    agent_id: str
    role: str = ""
    turns: list[Turn] = field(default_factory=list)
    reward: float | None = None
    failed: bool = False
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def add_turn(self, turn: Turn) -> Turn:
        turn.start = self.turns[-1].end if self.turns else 0
        self.turns.append(turn)
        return turn

    @property
    def num_tokens(self) -> int:
        return self.turns[-1].end if self.turns else 0

    @property
    def full_ids(self) -> list[int]:
        out: list[int] = []
        for t in self.turns:
            out += t.prompt_ids
            out += t.response_ids
            out += t.suffix_ids
        return out

    @property
    def loss_mask(self) -> list[int]:
        """1 on generated tokens to train (per ``Turn.mask``), 0 on prompts and template suffixes."""
        out: list[int] = []
        for t in self.turns:
            out += [0] * len(t.prompt_ids)
            out += t.mask
            out += [0] * len(t.suffix_ids)
        return out

    @property
    def full_logprobs(self) -> list[float]:
        """Sampling logprobs aligned with ``full_ids`` (0.0 where nothing was generated or not recorded)."""
        out: list[float] = []
        for t in self.turns:
            out += [0.0] * len(t.prompt_ids)
            out += t.logprobs if t.logprobs is not None else [0.0] * len(t.response_ids)
            out += [0.0] * len(t.suffix_ids)
        return out

    def context_ids(self, turn_index: int) -> list[int]:
        """The exact prompt the model saw for turn ``turn_index`` (the buffer before its response)."""
        return self.full_ids[: self.turns[turn_index].response_start]

    @property
    def response_lengths(self) -> list[int]:
        return [len(t.response_ids) for t in self.turns]

    @property
    def num_trained_tokens(self) -> int:
        return sum(t.num_trained_tokens for t in self.turns)

    def set_mask(self, value: int, turns: list[int] | None = None) -> None:
        """Set the training mask of the given turns (all by default) to ``value`` (0 or 1)."""
        for i in range(len(self.turns)) if turns is None else turns:
            t = self.turns[i]
            t.mask = [value] * len(t.response_ids)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Trajectory":
        data = dict(data)
        turns = [Turn(**t) for t in data.pop("turns", [])]
        traj = cls(**data)
        traj.turns = turns
        return traj
