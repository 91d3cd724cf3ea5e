"""Shared fixtures: the real OTT-QA corpus (built once per checkout) and the WideSearch task file.

``ottqa_corpus`` builds the whole shared OTT-QA corpus with ``build_corpus`` into the default corpus
directory (``wideseek_env.paths.default_corpus_dir()``, i.e. ``data/corpus-ottqa`` beside the
checkout unless ``$WIDESEEK_HOME`` says otherwise). A complete earlier build is reused, so only the
first test session pays for it (well under a minute). If another process is building the same
directory, the fixture waits for it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from wideseek_env.errors import WideseekError
from wideseek_env.paths import default_corpus_dir, shared_data_dir


def _build_ottqa(out_dir: Path) -> Path:
    from wideseek_env.corpus.build import build_corpus

    deadline = time.monotonic() + 600
    while True:
        try:
            build_corpus("ottqa", shared_data_dir() / "ottqa", out_dir, progress=False)
            return out_dir
        except WideseekError as exc:
            if "another" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2.0)


@pytest.fixture(scope="session")
def ottqa_corpus() -> Path:
    """Path of the built shared OTT-QA corpus directory (manifest.json, pages.sqlite, index/)."""
    return _build_ottqa(default_corpus_dir())


@pytest.fixture(scope="session")
def widesearch_tasks() -> Path:
    """Path of the 200 WideSearch tasks (``widesearch.jsonl``; gold tables in ``gold/*.csv``)."""
    path = shared_data_dir() / "widesearch" / "widesearch.jsonl"
    if not path.exists():
        pytest.skip(f"WideSearch data not found at {path}")
    return path


@pytest.fixture(scope="session")
def ottqa_retriever(ottqa_corpus):
    """One LocalRetriever on the shared corpus for the whole session (envs given it do not close it)."""
    from wideseek_env.corpus.local import LocalRetriever

    retriever = LocalRetriever(ottqa_corpus)
    yield retriever
    retriever.close()


@pytest.fixture(scope="session")
def widesearch_task_list(widesearch_tasks):
    from wideseek_env.tasks import load_tasks

    return list(load_tasks(widesearch_tasks))


@pytest.fixture(scope="session")
def generated_tasks(ottqa_corpus):
    """The generated task set of the shared corpus: ``{"train": [...], "test": [...]}``
    (``task_helpers.generated_tasks``)."""
    from task_helpers import generated_tasks as generate

    return generate(ottqa_corpus)
