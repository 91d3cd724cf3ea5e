"""SingleSeek as a plain single-agent Gymnasium env (``gymnasium.make("wideseek/SingleSeek-v0")``).

The single-agent baseline of WideSeek-R1: one agent with ``search`` and ``access`` and 50 turns whose
final answer (a message without tool calls) ends the episode. This wraps
:class:`wideseek_env.env.WideSeekEnv` in single-agent mode:

- ``observation_space`` and ``action_space`` are :class:`~wideseek_env.spaces.UnicodeText` (any
  Unicode text within the length bounds); an observation is what is new for the agent since its last
  action (the system prompt, tools and task after ``reset``, tool results after each step);
- ``info`` is the agent's info from the parallel env (structured chat ``messages``, ``tools``,
  ``turn``, limits; ``metrics`` on the last step);
- the reward is 0 until the episode ends, then the episode reward (item F1 by default);
- ``terminated`` when the agent answers, ``truncated`` when it runs out of turns or context.

Stepping after the episode ended returns an empty observation, reward 0 and the same end flags.
"""

from __future__ import annotations

from typing import Any

import gymnasium

from wideseek_env.config import EnvConfig
from wideseek_env.env import SINGLE, WideSeekEnv
from wideseek_env.spaces import UnicodeText


class SingleSeekEnv(gymnasium.Env):
    """One research agent with search + access. Arguments are those of ``WideSeekEnv``; ``config``
    defaults to ``EnvConfig.single_agent()`` and is forced to ``mode="single"``."""

    metadata = {"render_modes": ["human", "ansi"]}

    def __init__(
        self,
        corpus: Any = None,
        tasks: Any = None,
        config: EnvConfig | None = None,
        **kwargs: Any,
    ) -> None:
        if config is None:
            config = EnvConfig.single_agent()
        elif config.mode != "single":
            config = config.replace(mode="single")
        self.env = WideSeekEnv(corpus, tasks, config, **kwargs)
        self.config = config
        self.render_mode = self.env.render_mode
        self.observation_space = UnicodeText(config.max_observation_chars)
        self.action_space = UnicodeText(config.max_action_chars)
        self._last_end: tuple[bool, bool] = (False, False)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs, infos = self.env.reset(seed=seed, options=options)
        self._last_end = (False, False)
        return obs[SINGLE]["text"], infos[SINGLE]

    def step(self, action: Any):
        if not self.env.agents:
            term, trunc = self._last_end
            return "", 0.0, term, trunc, {}
        obs, rewards, terms, truncs, infos = self.env.step({SINGLE: action})
        self._last_end = (bool(terms[SINGLE]), bool(truncs[SINGLE]))
        return (
            obs[SINGLE]["text"],
            float(rewards[SINGLE]),
            bool(terms[SINGLE]),
            bool(truncs[SINGLE]),
            infos[SINGLE],
        )

    def context(self) -> list[dict[str, Any]]:
        """The agent's whole chat context (system, user, assistant, tool messages)."""
        return self.env.context(SINGLE)

    @property
    def task(self) -> Any:
        return self.env.task

    def render(self):
        return self.env.render()

    def close(self) -> None:
        self.env.close()
        super().close()
