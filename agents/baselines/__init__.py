"""Baseline policies without an LLM (moved to :mod:`agents.baselines.scripted`; split up next)."""

from agents.baselines.scripted import *  # noqa: F401,F403
from agents.baselines.scripted import __all__, fill_x, reconcile_columns  # noqa: F401
