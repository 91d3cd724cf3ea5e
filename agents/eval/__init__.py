"""The evaluation harness: ``wideseek eval`` runs a policy on a task set and reports WideSearch metrics.

::

    wideseek eval --tasks data/tasks-ottqa/test.jsonl --policy scripted --out runs/eval-scripted
    wideseek eval --policy vllm --model smollm2 --env page_chars=3000 --limit 10 --save-transcripts
    wideseek show runs/eval-scripted --episode 0

Modules, one concern each:

- :mod:`agents.eval.spec`: :class:`EvalSpec` (the run's arguments, ``--env KEY=VALUE`` for any env
  setting) and its checks;
- :mod:`agents.eval.identity`: task selection (``--limit`` takes a prefix of a seeded shuffle), episode
  seeds, and the run identity in ``run.json`` that decides whether ``--out`` can be resumed;
- :mod:`agents.eval.records`: ``episodes.jsonl`` / ``transcripts.jsonl`` (appended as episodes finish;
  a cut-off last line is repaired);
- :mod:`agents.eval.summary`: Avg@N / Max@N / Pass@N overall and by kind, tool-call statistics (valid
  and invalid calls per role), the printed table;
- :mod:`agents.eval.run`: :func:`evaluate` (local) and :mod:`agents.eval.ray_eval` (``--ray``);
- :mod:`agents.eval.show`: ``wideseek show``.

Outputs (in ``--out DIR``): ``run.json`` (identity), ``episodes.jsonl`` (one record per episode:
:meth:`agents.episode.Episode.record`), ``transcripts.jsonl`` with ``--save-transcripts``
(:meth:`agents.episode.Episode.transcript`: every agent's messages, raw generated texts, token ids and loss
mask), ``summary.json``. Re-running the same command resumes; a different identity in ``--out`` is an error
(``--overwrite`` discards it). An episode depends only on the identity, its task and its sample index.
"""

from agents.eval.identity import episode_seed, select_tasks
from agents.eval.records import read_episodes
from agents.eval.run import default_out_dir, evaluate
from agents.eval.spec import EvalError, EvalSpec, RunMismatchError
from agents.eval.summary import format_summary, summarize

__all__ = [
    "EvalSpec",
    "EvalError",
    "RunMismatchError",
    "evaluate",
    "select_tasks",
    "episode_seed",
    "read_episodes",
    "summarize",
    "format_summary",
    "default_out_dir",
]
