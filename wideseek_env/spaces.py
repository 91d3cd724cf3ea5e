"""Text spaces that hold real-world text.

Gymnasium's :class:`~gymnasium.spaces.Text` accepts a string only if every character is in its
``charset``. Observations here are Wikipedia pages, WideSearch questions (half of them Chinese) and
whatever an LLM writes, so no finite charset can be declared up front: a single ``é`` or ``中`` outside
it would make ``observation_space(a).contains(obs)`` false and fail PettingZoo's ``api_test``.

:class:`UnicodeText` therefore keeps Text's length bounds but accepts *any* Python ``str`` whose
characters can be encoded as UTF-8 (lone surrogates, which cannot be written to JSON or sent to a
tokenizer, are rejected). ``sample()`` still draws from a finite charset (printable ASCII plus a few
non-ASCII letters, so that random actions exercise Unicode handling), which keeps random actions
reproducible under ``space.seed(...)``.

``min_length`` defaults to 0: an agent that does not act in a step observes the empty string.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium.spaces import Dict, Text

#: What ``UnicodeText.sample()`` draws from: printable ASCII (incl. space, tab, newline) plus a few
#: accented Latin, CJK, Greek and typographic characters.
SAMPLE_CHARSET: str = (
    string.ascii_letters
    + string.digits
    + string.punctuation
    + " \n\t"
    + "éèüöñßçøåÉ—–“”‘’…€£°中文字日本한국語Ωπ"
)


class UnicodeText(Text):
    """A :class:`gymnasium.spaces.Text` that contains every UTF-8-encodable string within its length
    bounds (lengths in characters), whatever the characters. See the module docstring for why."""

    def __init__(
        self,
        max_length: int,
        *,
        min_length: int = 0,
        charset: str | frozenset[str] = SAMPLE_CHARSET,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(max_length, min_length=min_length, charset=charset, seed=seed)

    def contains(self, x: Any) -> bool:
        if not isinstance(x, str):
            return False
        if not (self.min_length <= len(x) <= self.max_length):
            return False
        if x.isascii():
            return True
        try:
            x.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            return False
        return True

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, UnicodeText)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
            and self.character_set == other.character_set
        )

    __hash__ = None  # type: ignore[assignment]  # mutable RNG state, like other spaces


def text_dict_space(max_length: int) -> Dict:
    """``Dict({"text": UnicodeText(max_length)})``: the observation space of every env agent."""
    return Dict({"text": UnicodeText(max_length)})
