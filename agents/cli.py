"""The agent-side subcommands of ``wideseek``: ``eval``, ``train`` and ``demo``.

``wideseek_env.cli`` finds ``register`` through the ``wideseek.commands`` entry-point group declared in
pyproject.toml, so the env package never imports ``agents``. Handlers import their modules lazily.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _train(args: argparse.Namespace) -> int:
    from agents.trainer import train

    train(Path(args.config), args.overrides)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from agents.evaluate import run_cli

    return run_cli(args)


def _demo(args: argparse.Namespace) -> int:
    from agents.demo import run_demo

    return run_demo(limit=args.limit, out=args.out)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``train``, ``eval`` and ``demo`` to the ``wideseek`` subcommands."""
    from agents.evaluate import add_arguments as add_eval_arguments

    train = commands.add_parser(
        "train", help="GRPO training of a policy on the env (needs the [train] extra)"
    )
    train.add_argument("--config", required=True, help="YAML file of agents.trainer.TrainConfig fields")
    train.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config field (value parsed as YAML); repeatable",
    )
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser(
        "eval", help="run a policy on a task set: per-episode JSONL, summary table (resumable)",
        description="Run a policy on tasks (N samples each, P envs stepped together); write "
        "OUT/episodes.jsonl (resumable), OUT/summary.json and print the summary table. "
        "See agents/evaluate.py.",
    )
    add_eval_arguments(evaluate)
    evaluate.set_defaults(handler=_eval)

    demo = commands.add_parser(
        "demo", help="the main job: build the default corpus and tasks, evaluate the scripted baseline"
    )
    demo.add_argument(
        "--limit", type=int, default=None, metavar="N",
        help="evaluate a fixed random sample of N test tasks (default: the whole test split)",
    )
    demo.add_argument("--out", default=None, help="eval directory (default: data/evals/demo-scripted-test)")
    demo.set_defaults(handler=_demo)
