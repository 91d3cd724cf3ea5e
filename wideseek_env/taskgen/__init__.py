"""Task generation from a corpus's Wikipedia tables, in tiers 0-4 (see :mod:`.generate`)."""

from wideseek_env.taskgen.generate import TIERS, generate_tasks, parse_tiers

__all__ = ["TIERS", "generate_tasks", "parse_tiers"]
