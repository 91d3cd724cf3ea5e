"""The ``wideseek`` command.

Subcommands import their implementation lazily so that ``wideseek --help`` stays fast. Every user
error (``WideseekError``) is printed as one line, ``wideseek: error: ...``, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wideseek_env.errors import WideseekError


def _corpus_build(args: argparse.Namespace) -> int:
    from wideseek_env.corpus.build import build_corpus

    manifest = build_corpus(
        args.source, Path(args.input), Path(args.out), threads=args.threads, force=args.force
    )
    print(json.dumps(manifest, indent=2))
    return 0


def _serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise WideseekError(f"--workers must be at least 1, got {args.workers}")
    if args.backend == "asgi":
        from wideseek_env.corpus.asgi import serve_asgi

        serve_asgi(Path(args.index), host=args.host, port=args.port, workers=args.workers)
        return 0
    if args.workers != 1:
        raise WideseekError("--workers needs --backend asgi (the stdlib server is one process)")
    from wideseek_env.corpus.server import serve

    serve(Path(args.index), host=args.host, port=args.port)
    return 0


def _search(args: argparse.Namespace) -> int:
    from wideseek_env.corpus.local import LocalRetriever

    with LocalRetriever(Path(args.corpus)) as retriever:
        for query, hits in zip(args.queries, retriever.search_many(args.queries, args.k)):
            print(f"# {query}")
            for hit in hits:
                print(f"  {hit.score:7.2f}  {hit.title}  <{hit.url}>")
                print(f"           {hit.text[:200]}")
    return 0


def _access(args: argparse.Namespace) -> int:
    from wideseek_env.corpus.local import LocalRetriever

    with LocalRetriever(Path(args.corpus)) as retriever:
        for url, page, candidates in zip(
            args.urls, retriever.access_many(args.urls), retriever.candidates_many(args.urls)
        ):
            print(f"# {url}")
            if page is None and len(candidates) == 1:  # a bare title, or one in another case
                [page] = retriever.access_many(candidates)
            if page is None and candidates:
                print("names several pages:\n" + "\n".join(f"  {c}" for c in candidates))
            else:
                print(page.text[: args.chars] if page else "(not in the corpus)")
    return 0


def _tasks_generate(args: argparse.Namespace) -> int:
    from wideseek_env.taskgen.generate import generate_tasks, parse_tiers

    try:
        tiers = parse_tiers(args.tiers)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stats = generate_tasks(Path(args.corpus), Path(args.out), seed=args.seed, tiers=tiers)
    print(json.dumps(stats, indent=2))
    return 0


def _score(args: argparse.Namespace) -> int:
    from wideseek_env.evaluation.batch import score_files
    from wideseek_env.tasks import load_tasks

    summary = score_files(
        load_tasks(Path(args.tasks)), Path(args.responses), Path(args.out),
        compat=args.compat, judge=args.judge, tasks_name=str(args.tasks),
    )
    print(json.dumps(summary, indent=2))
    return 0








def _serve_env(args: argparse.Namespace) -> int:
    from wideseek_env.config import EnvConfig
    from wideseek_env.integrations.openenv_server import serve_env

    config = EnvConfig.paper(mode="single") if args.paper else EnvConfig.single_agent()
    print(f"OpenEnv server for the single-agent episode on http://{args.host}:{args.port} (ws /ws)", flush=True)
    serve_env(Path(args.corpus), Path(args.tasks), config, host=args.host, port=args.port,
              max_sessions=args.max_sessions)
    return 0


def _play(args: argparse.Namespace) -> int:
    from wideseek_env.play import play

    play(
        Path(args.corpus), Path(args.tasks), task_id=args.task_id, role=args.role, others=args.others,
        seed=args.seed,
    )
    return 0


COMMAND_GROUP = "wideseek.commands"


def _add_plugin_commands(commands: argparse._SubParsersAction) -> None:
    """Let installed packages add subcommands through the ``wideseek.commands`` entry-point group.

    Each entry point names a function ``register(commands)`` that adds its subparsers. This is how
    ``agents`` contributes ``eval``, ``train`` and ``demo`` without ``wideseek_env`` importing ``agents``
    (DESIGN.md: dependencies point from agents to wideseek_env, never back).
    """
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        entry.load()(commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wideseek", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    corpus = commands.add_parser("corpus", help="build and inspect knowledge bases")
    corpus_commands = corpus.add_subparsers(dest="corpus_command", required=True, metavar="ACTION")
    build = corpus_commands.add_parser("build", help="build pages + a Tantivy index from a source")
    build.add_argument("--source", required=True, choices=["ottqa", "dpr", "rlinf", "jsonl"])
    build.add_argument("--input", required=True, help="source file or directory")
    build.add_argument("--out", required=True, help="corpus directory to write")
    build.add_argument("--threads", type=int, default=2, help="Tantivy indexing threads")
    build.add_argument("--force", action="store_true", help="rebuild even if the input is unchanged")
    build.set_defaults(handler=_corpus_build)

    serve = commands.add_parser("serve", help="serve a built corpus over HTTP (/retrieve, /access)")
    serve.add_argument("--index", required=True, help="a corpus directory built by 'corpus build'")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--backend",
        choices=["stdlib", "asgi"],
        default="stdlib",
        help="stdlib: the threaded http.server (default; faster here, see benchmarks/results/"
        "server_load.md); asgi: FastAPI + uvicorn, with /docs and /openapi.json (extra [server])",
    )
    serve.add_argument("--workers", type=int, default=1, help="worker processes (asgi backend only)")
    serve.set_defaults(handler=_serve)

    search = commands.add_parser("search", help="BM25 search of a built corpus")
    search.add_argument("--corpus", required=True)
    search.add_argument("-k", type=int, default=3)
    search.add_argument("queries", nargs="+")
    search.set_defaults(handler=_search)

    access = commands.add_parser("access", help="print stored pages by URL")
    access.add_argument("--corpus", required=True)
    access.add_argument("--chars", type=int, default=2000)
    access.add_argument("urls", nargs="+")
    access.set_defaults(handler=_access)

    tasks = commands.add_parser("tasks", help="broad table tasks")
    task_commands = tasks.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
    generate = task_commands.add_parser("generate", help="generate tasks from a corpus's tables")
    generate.add_argument("--corpus", required=True)
    generate.add_argument("--out", required=True)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--tiers", default=None,
                          help="comma-separated tiers to make, e.g. 0,1,2 (default: all, 0-4)")
    generate.set_defaults(handler=_tasks_generate)

    score = commands.add_parser("score", help="score table answers against a task file")
    score.add_argument("--tasks", required=True, help="task JSONL (ours, WideSearch or WideSeek-R1)")
    score.add_argument("--responses", required=True, help='JSONL of {"instance_id", "response"}')
    score.add_argument("--out", required=True, help="per-task metrics JSONL to write")
    score.add_argument("--compat", choices=["default", "widesearch"], default="default")
    score.add_argument("--judge", default="deterministic", choices=["deterministic", "exact"])
    score.set_defaults(handler=_score)

    serve_env = commands.add_parser(
        "serve-env", help="serve single-agent episodes as an OpenEnv environment (needs [openenv])"
    )
    serve_env.add_argument("--corpus", required=True, help="a built corpus directory")
    serve_env.add_argument("--tasks", required=True, help="a task file (JSONL)")
    serve_env.add_argument("--host", default="127.0.0.1")
    serve_env.add_argument("--port", type=int, default=8001)
    serve_env.add_argument("--max-sessions", type=int, default=4, help="concurrent WebSocket sessions")
    serve_env.add_argument("--paper", action="store_true", help="RLinf's exact settings (invalid calls end the turn)")
    serve_env.set_defaults(handler=_serve_env)

    from wideseek_env.play import HELP as play_helpers

    play = commands.add_parser(
        "play",
        help="play an agent of an episode in the terminal",
        description="Play one agent of an episode in the terminal, against the real tools. End each "
        "message with a line holding only '.'.",
        epilog="helper lines (each becomes a tool call):\n" + play_helpers,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    play.add_argument("--corpus", required=True, help="a built corpus directory")
    play.add_argument("--tasks", required=True, help="a task file (JSONL)")
    play.add_argument("--task-id", default=None, help="the task to play (default: drawn with --seed)")
    play.add_argument("--role", choices=["lead", "subagent", "single"], default="lead")
    play.add_argument(
        "--others", default="scripted",
        help="who plays the other agents: scripted (default), teacher (the privileged demonstrator), "
             "human, or MODULE:CLASS of a policy",
    )
    play.add_argument("--seed", type=int, default=None)
    play.set_defaults(handler=_play)

    _add_plugin_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except WideseekError as exc:
        print(f"wideseek: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wideseek: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
