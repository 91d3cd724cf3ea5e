"""Registry ids of the environments (registered when ``wideseek_env`` is imported).

- PettingZoo (1.27 has a registry: ``pettingzoo.register`` / ``pettingzoo.make``)::

      env = pettingzoo.make("parallel", "wideseek/WideSeek-v0", corpus=DIR, tasks=FILE)

  builds :class:`wideseek_env.env.WideSeekEnv` (keyword arguments go to its constructor; pass
  ``config=EnvConfig.single_agent()`` for the single-agent variant).
- Gymnasium::

      env = gymnasium.make("wideseek/SingleSeek-v0", corpus=DIR, tasks=FILE)

  builds :class:`wideseek_env.wrappers.single_agent.SingleSeekEnv`, the single-agent baseline as a
  plain ``gymnasium.Env`` with text observations and actions.

Entry points are strings, so registering imports neither the env nor its tools. Registering twice
is a no-op.
"""

from __future__ import annotations

PARALLEL_ENV_ID = "wideseek/WideSeek-v0"
SINGLE_ENV_ID = "wideseek/SingleSeek-v0"


def register_envs() -> None:
    """Register ``wideseek/WideSeek-v0`` (PettingZoo, parallel) and ``wideseek/SingleSeek-v0``
    (Gymnasium) unless already registered."""
    import gymnasium

    try:
        import pettingzoo
        from pettingzoo.env_registry.registration import parallel_registry
    except ImportError:  # pragma: no cover - pettingzoo < 1.27 has no registry
        pettingzoo = None
        parallel_registry = None
    if pettingzoo is not None and hasattr(pettingzoo, "register") and PARALLEL_ENV_ID not in parallel_registry:
        pettingzoo.register("parallel", PARALLEL_ENV_ID, entry_point="wideseek_env.env:WideSeekEnv")
    if SINGLE_ENV_ID not in gymnasium.registry:
        gymnasium.register(
            id=SINGLE_ENV_ID,
            entry_point="wideseek_env.wrappers.single_agent:SingleSeekEnv",
        )
