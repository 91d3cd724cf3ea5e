"""Broad table tasks: the task schema and loaders for our JSONL, WideSearch and WideSeek-R1 files
(generation is :mod:`wideseek_env.taskgen`)."""

from wideseek_env.tasks.loaders import TaskSet, detect_format, load_tasks, save_tasks
from wideseek_env.tasks.schema import ColumnSpec, Task, normalize_column_name

__all__ = [
    "ColumnSpec",
    "Task",
    "TaskSet",
    "detect_format",
    "load_tasks",
    "normalize_column_name",
    "save_tasks",
]
