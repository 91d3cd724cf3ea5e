"""Adapters to the LLM-RL trainers people already run (each behind its own extra, imported lazily).

- ``integrations.tool_episode``: :class:`ToolEpisode`, one single-agent episode stepped with structured
  tool calls; the piece the adapters below share (no extra needed).
- ``integrations.trl_env`` (``[trl]``): a TRL ``GRPOTrainer(environment_factory=...)`` environment,
  its task dataset and reward functions.
- ``integrations.verifiers_env`` (``[verifiers]``): ``load_environment(corpus=..., tasks=..., mode=...)``,
  a verifiers taskset whose rubric is the WideSearch evaluator.
- ``integrations.openenv_server`` (``[openenv]``): an OpenEnv environment server (``wideseek serve-env``)
  and its client.

Nothing here imports ``agents``.
"""
