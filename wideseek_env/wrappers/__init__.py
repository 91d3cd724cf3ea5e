"""Wrappers of :class:`wideseek_env.env.WideSeekEnv`.

- :class:`SingleSeekEnv` (``wrappers.single_agent``): the single-agent baseline as a plain Gymnasium env.
- ``wrappers.tianshou`` (needs the ``[tianshou]`` extra, imported on first use): :class:`TianshouParallelEnv`,
  :class:`TextPolicy`, :func:`make_tianshou_env` — whole episodes through a tianshou ``Collector``.
"""

from wideseek_env.wrappers.single_agent import SingleSeekEnv

_TIANSHOU_NAMES = (
    "STANDIN_ACTION_SPACE",
    "TextPolicy",
    "TextRequest",
    "TianshouParallelEnv",
    "WideSeekPettingZooEnv",
    "make_tianshou_env",
)

__all__ = ["SingleSeekEnv", *_TIANSHOU_NAMES]


def __getattr__(name: str):
    if name in _TIANSHOU_NAMES:  # lazily: importing tianshou pulls torch
        from wideseek_env.wrappers import tianshou

        return getattr(tianshou, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
