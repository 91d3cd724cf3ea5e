"""``wideseek show RUN --episode N``: one episode of a run's ``transcripts.jsonl`` as a readable
conversation tree: the lead's messages, each subagent's conversation indented under the assistant
message whose ``call_subagent`` spawned it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from agents.eval.records import read_transcripts
from agents.eval.spec import EvalError

__all__ = ["format_transcript", "run_show"]


def _spawned(message: dict[str, Any]) -> int:
    """How many subagents an assistant message asked for (its call_subagent prompts)."""
    n = 0
    for call in message.get("tool_calls") or []:
        fn = call.get("function", {})
        if fn.get("name") not in ("call_subagent", "create_sub_agents"):
            continue
        args = fn.get("arguments")
        try:
            args = json.loads(args) if isinstance(args, str) else (args or {})
            n += len(args.get("sub_agents") or [])
        except (ValueError, AttributeError, TypeError):
            continue
    return n


def _body(message: dict[str, Any], width: int) -> str:
    text = message.get("content") or ""
    if isinstance(text, list):
        text = " ".join(str(p.get("text", "")) for p in text if isinstance(p, dict))
    for call in message.get("tool_calls") or []:
        fn = call.get("function", {})
        text += f"\n-> {fn.get('name')}({fn.get('arguments')})"
    return textwrap.shorten(" ".join(str(text).split()), width=width, placeholder=" ...") if width else str(text)


def format_transcript(transcript: dict[str, Any], *, width: int = 400) -> str:
    """The tree of one transcript record (``width`` characters per message at most; 0: whole messages)."""
    agents = transcript["agents"]
    children: dict[str | None, list[str]] = {}
    for agent, entry in agents.items():
        children.setdefault(entry.get("parent"), []).append(agent)
    lines = [f"episode {transcript['episode_id']}  task {transcript['task_id']}  reward {transcript['reward']:.3f}"]

    def walk(agent: str, depth: int) -> None:
        pad = "    " * depth
        entry = agents[agent]
        status = f"  [failed: {entry.get('error')}]" if entry.get("failed") else ""
        lines.append(f"{pad}=== {agent}{status}")
        queue = list(children.get(agent, []))
        texts = list(entry.get("texts") or [])
        for message in entry.get("messages", []):
            shown = message
            if message.get("role") == "assistant" and texts:
                shown = {"content": texts.pop(0)}  # the raw text the model generated, not the parsed form
            lines.append(f"{pad}[{message.get('role')}] {_body(shown, width)}")
            if message.get("role") == "assistant":
                for _ in range(min(_spawned(message), len(queue))):
                    walk(queue.pop(0), depth + 1)
        for rest in queue:  # spawned by a call the matching above could not place
            walk(rest, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return "\n".join(lines)


def run_show(run: str, episode: int, width: int = 400) -> str:
    """The tree of the ``episode``-th transcript (0-based, file order) of run directory ``run``."""
    path = Path(run) / "transcripts.jsonl"
    if not path.exists():
        raise EvalError(f"{path} does not exist; run 'wideseek eval ... --save-transcripts --out {run}' first")
    records = list(read_transcripts(path))
    if not 0 <= episode < len(records):
        raise EvalError(f"--episode {episode} is out of range: {path} holds {len(records)} transcripts (0..{len(records) - 1})")
    return format_transcript(records[episode], width=width)
