"""The generated task set of the shared corpus, and small task files cut from it, for the tests (and
``benchmarks/faults.py``)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from wideseek_env.paths import default_tasks_dir
from wideseek_env.tasks import Task, load_tasks, save_tasks
from wideseek_env.taskgen.generate import generate_tasks


def generated_tasks(corpus_dir: Path) -> dict[str, list[Task]]:
    """``wideseek tasks generate`` of ``corpus_dir`` into the default tasks directory (seed 0; a complete
    earlier run is reused): ``{"train": [...], "test": [...]}``."""
    out = default_tasks_dir()
    generate_tasks(corpus_dir, out, seed=0, progress=False)
    return {split: list(load_tasks(out / f"{split}.jsonl")) for split in ("train", "test")}


def save_test_tasks_by_kind(corpus_dir: Path, path: Path, *, enrich: int, transcribe: int, union: int) -> Path:
    """The first ``enrich`` / ``transcribe`` / ``union`` tasks (by id) of the generated test split, saved
    to ``path`` in that order; returns ``path``."""
    by_kind: dict[str, list[Task]] = defaultdict(list)
    for task in sorted(generated_tasks(corpus_dir)["test"], key=lambda t: t.id):
        by_kind[task.kind].append(task)
    save_tasks(by_kind["enrich"][:enrich] + by_kind["transcribe"][:transcribe] + by_kind["union"][:union], path)
    return path
