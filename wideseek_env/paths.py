"""Where default data lives.

- ``shared_data_dir()``: the shared Wikipedia data (OTT-QA, WideSearch). ``$WIDESEEK_SHARED_DATA``,
  else the first ``shared/data`` found beside the current directory or beside this checkout.
- ``home_dir()``: built corpora and task sets. ``$WIDESEEK_HOME``, else ``./data`` under the checkout
  (so a clone keeps its builds next to it), falling back to ``~/.cache/wideseek``.
"""

from __future__ import annotations

import os
from pathlib import Path

from wideseek_env.errors import WideseekError

_CHECKOUT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("WIDESEEK_SHARED_DATA")
    if env:
        return Path(env)
    for base in (Path.cwd(), _CHECKOUT):
        for candidate in (base / "shared" / "data", base.parent / "shared" / "data"):
            if (candidate / "ottqa").is_dir():
                return candidate
    raise WideseekError(
        "cannot find the shared data (shared/data/ottqa): put the 'shared' folder beside the "
        "checkout or set WIDESEEK_SHARED_DATA=/path/to/shared/data"
    )


def home_dir() -> Path:
    env = os.environ.get("WIDESEEK_HOME")
    if env:
        return Path(env)
    if (_CHECKOUT / "pyproject.toml").exists():
        return _CHECKOUT / "data"
    return Path.home() / ".cache" / "wideseek"


def default_corpus_dir() -> Path:
    """The built default corpus (the shared OTT-QA tables and passages)."""
    return home_dir() / "corpus-ottqa"


def default_tasks_dir() -> Path:
    """The generated default task set (train.jsonl, test.jsonl, stats.json)."""
    return home_dir() / "tasks-ottqa"
