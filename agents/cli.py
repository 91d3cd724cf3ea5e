"""The agent-side subcommands of ``wideseek``: ``eval``, ``show``, ``train``, ``demos``, ``sft`` and ``demo``.

``wideseek_env.cli`` finds ``register`` through the ``wideseek.commands`` entry-point group declared in
pyproject.toml, so the env package never imports ``agents``. Handlers import their modules lazily.
"""

from __future__ import annotations

import argparse


def _train(args: argparse.Namespace) -> int:
    from agents.train import train

    train(args.config, args.overrides, args.env, ray=args.ray)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from agents.eval.run import run_cli

    return run_cli(args)


def _show(args: argparse.Namespace) -> int:
    from agents.eval.show import run_show

    print(run_show(args.run, args.episode, width=args.width))
    return 0


def _demos(args: argparse.Namespace) -> int:
    from agents.demos import run_cli

    return run_cli(args)


def _sft(args: argparse.Namespace) -> int:
    from agents.sft import run_sft_cli

    return run_sft_cli(args)


def _demo(args: argparse.Namespace) -> int:
    from agents.demo import run_demo

    return run_demo(limit=args.limit, out=args.out)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``train``, ``eval``, ``show`` and ``demo`` to the ``wideseek`` subcommands."""
    from agents.eval.spec import add_arguments as add_eval_arguments

    train = commands.add_parser(
        "train", help="GRPO training of a policy on the env (needs the [train] extra)",
        description="GRPO training (agents/train). Configs: examples/train/*.yaml; docs/training.md.",
    )
    train.add_argument("--config", required=True, help="YAML file of agents.train.TrainConfig fields")
    train.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config field (value parsed as YAML); repeatable",
    )
    train.add_argument("--env", dest="env", action="append", default=[], metavar="KEY=VALUE",
                       help="set any EnvConfig field (merged into the config's env:); repeatable")
    train.add_argument("--ray", default=None, metavar="ADDRESS",
                       help="rollouts on Ray workers ('local' starts a local instance)")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser(
        "eval", help="run a policy on a task set: per-episode JSONL, summary table (resumable)",
        description="Run a policy on tasks (N samples each, P envs stepped together); write "
        "OUT/episodes.jsonl (resumable), OUT/summary.json and print the summary table. "
        "See agents/eval/__init__.py.",
    )
    add_eval_arguments(evaluate)
    evaluate.set_defaults(handler=_eval)

    show = commands.add_parser(
        "show", help="print one episode of an eval run as a conversation tree (needs --save-transcripts)"
    )
    show.add_argument("run", help="the eval output directory (holding transcripts.jsonl)")
    show.add_argument("--episode", type=int, default=0, metavar="N", help="which transcript (0-based, file order)")
    show.add_argument("--width", type=int, default=400, help="characters per message (0: whole messages)")
    show.set_defaults(handler=_show)

    demos = commands.add_parser(
        "demos", help="an SFT dataset: a demonstrator's good episodes rendered with the trained model's template",
        description="Play train tasks with a demonstrator policy; keep episodes with item F1 >= --min-f1; "
        "write OUT/demos.jsonl (token ids + loss mask per agent), resumable. See agents/demos.py.",
    )
    from agents.demos import add_arguments as add_demos_arguments

    add_demos_arguments(demos)
    demos.set_defaults(handler=_demos)

    sft = commands.add_parser(
        "sft", help="supervised fine-tuning on demonstrations (checkpoints in the format of 'wideseek train')",
        description="SFT on assistant tokens only (agents/sft). Configs: examples/sft/*.yaml; docs/training.md.",
    )
    sft.add_argument("--config", required=True, help="YAML file of agents.sft.SFTConfig fields")
    sft.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override one config field (value parsed as YAML); repeatable")
    sft.set_defaults(handler=_sft)

    demo = commands.add_parser(
        "demo", help="the main job: build the default corpus and tasks, evaluate the scripted baseline"
    )
    demo.add_argument(
        "--limit", type=int, default=None, metavar="N",
        help="evaluate a fixed random sample of N test tasks (default: the whole test split)",
    )
    demo.add_argument("--out", default=None, help="eval directory (default: data/evals/demo-scripted-test)")
    demo.set_defaults(handler=_demo)
