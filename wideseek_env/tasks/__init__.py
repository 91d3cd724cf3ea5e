"""Broad table tasks: loaders for our JSONL, WideSearch and WideSeek-R1 files, and the task schema
(:class:`Task`, :class:`ColumnSpec`, defined in :mod:`wideseek_env.table.schema` and re-exported
here; generation is :mod:`wideseek_env.taskgen`)."""

from wideseek_env.table.schema import ColumnSpec, Task, normalize_column_name
from wideseek_env.tasks.loaders import TaskSet, detect_format, load_tasks, save_tasks

__all__ = [
    "ColumnSpec",
    "Task",
    "TaskSet",
    "detect_format",
    "load_tasks",
    "normalize_column_name",
    "save_tasks",
]
