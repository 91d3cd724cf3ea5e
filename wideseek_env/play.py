"""``wideseek play``: a person plays one agent of an episode in the terminal, against the real tools.

    wideseek play --corpus data/corpus-ottqa --tasks data/tasks-ottqa/test.jsonl [--task-id ID]
                  [--role lead|subagent|single] [--others scripted|teacher|human|MODULE:CLASS] [--seed N]

Roles: ``lead`` (you delegate with ``call_subagent``; the subagents are played by ``--others``),
``subagent`` (the lead and the other subagents are played by ``--others``; you play the first
subagent the lead starts), ``single`` (single-agent mode: you alone, with search and access).

Each time one of your agents acts, the observation (what is new for it) is printed and you type the
agent's assistant text, over as many lines as you like, ended by a line holding only ``.`` (or by
the end of the input). The text goes to the env as it is (Hermes ``<tool_call>`` blocks are tool
calls, anything else is a final answer), except for these helper lines, which become tool calls:

    /search QUERY | QUERY ...          search (3 hits per query)
    /access URL | URL ... [:: WHAT]    read pages (WHAT: the info_to_extract)
    /spawn PROMPT | PROMPT ...         call_subagent, one subagent per prompt
    /answer                            the lines after it are the final answer (e.g. a markdown table)
    /help                              this help        /quit   end the episode (empty answer)

Several helper lines in one message make several tool calls. Other agents: ``scripted`` (the
default) is ``agents.baselines:ScriptedBaseline``, ``teacher`` the privileged demonstrator
``agents.baselines.teacher:TeacherPolicy`` (it reads the task's provenance), loaded by name so that this module does not
import ``agents`` (the package's one-way dependency rule); ``human`` means you play every agent;
``MODULE:CLASS`` names any class with the ``agents.policy.Policy`` interface
(``act(requests) -> responses``).
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from typing import IO, Any

from wideseek_env.errors import WideseekError
from wideseek_env.tools.parsing import render_tool_calls

__all__ = ["play", "parse_human_input", "HELP"]

HELP = __doc__.split("calls, anything else is a final answer), except for these helper lines, which become tool calls:\n", 1)[1].split("Several helper lines", 1)[0].rstrip() + "\n"

DEFAULT_OTHERS = "agents.baselines:ScriptedBaseline"
TEACHER = "agents.baselines.teacher:TeacherPolicy"  # the privileged demonstrator (reads provenance)


@dataclass
class _Request:
    """Duck-typed ``agents.policy.AgentRequest``."""

    episode_id: str
    agent_id: str
    new_messages: list = field(default_factory=list)
    tools: list = field(default_factory=list)
    role: str = "default"


def parse_human_input(text: str) -> str:
    """Turn what the person typed into the agent's assistant text (helpers -> tool calls)."""
    lines = text.split("\n")
    calls: list[tuple[str, dict[str, Any]]] = []
    plain: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("/answer"):
            rest = stripped[len("/answer"):].strip()
            return "\n".join(([rest] if rest else []) + lines[i + 1:]).strip()
        if stripped.startswith("/search "):
            queries = [q.strip() for q in stripped[len("/search "):].split("|") if q.strip()]
            calls.append(("search", {"queries": [{"query": q, "count": 3} for q in queries]}))
        elif stripped.startswith("/access "):
            body = stripped[len("/access "):]
            body, _, info = body.partition("::")
            urls = [u.strip() for u in body.split("|") if u.strip()]
            calls.append(("access", {"urls": [{"url": u, "info_to_extract": info.strip()} for u in urls]}))
        elif stripped.startswith("/spawn "):
            prompts = [p.strip() for p in stripped[len("/spawn "):].split("|") if p.strip()]
            calls.append(("call_subagent", {"sub_agents": [{"prompt": p} for p in prompts]}))
        else:
            plain.append(line)
    if calls:
        head = "\n".join(plain).strip()
        return (head + "\n\n" if head else "") + render_tool_calls(calls)
    return text.strip()


def load_policy(spec: str, *args: Any) -> Any:
    """``MODULE:CLASS`` -> an instance, built with ``args`` (``scripted`` = the scripted baseline,
    ``teacher`` = the privileged demonstrator: give it the tasks whose provenance it may read)."""
    if spec == "scripted":
        spec = DEFAULT_OTHERS
    elif spec == "teacher":
        spec = TEACHER
    module_name, _, cls_name = spec.partition(":")
    if not module_name or not cls_name:
        raise WideseekError(f"--others must be 'scripted', 'teacher', 'human' or MODULE:CLASS, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise WideseekError(f"cannot import {module_name!r} for --others ({exc})") from None
    try:
        return getattr(module, cls_name)(*args)
    except AttributeError:
        raise WideseekError(f"{module_name!r} has no {cls_name!r}") from None


def _read_message(stdin: IO[str], stdout: IO[str], prompt: str) -> str | None:
    """Lines up to a line holding only '.'; None at the end of the input with nothing typed."""
    stdout.write(prompt)
    stdout.flush()
    lines: list[str] = []
    while True:
        line = stdin.readline()
        if line == "":
            return "\n".join(lines) if lines else None
        line = line.rstrip("\n")
        if line.strip() == ".":
            return "\n".join(lines)
        lines.append(line)


def play(
    corpus: Any,
    tasks: Any,
    *,
    task_id: str | None = None,
    role: str = "lead",
    others: str | Any = "scripted",
    seed: int | None = None,
    config: Any = None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    env: Any = None,
) -> dict[str, Any]:
    """Play one episode interactively (see the module docstring); returns the final metrics.

    ``env``: an already built env (then ``corpus``, ``tasks`` and ``config`` are not used).
    ``others``: ``"scripted"``, ``"teacher"`` (the privileged demonstrator, given the drawn task),
    ``"human"``, ``"MODULE:CLASS"`` or a policy object.
    """
    from wideseek_env.config import EnvConfig
    from wideseek_env.env import WideSeekEnv

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    if role not in ("lead", "subagent", "single"):
        raise WideseekError(f"--role must be lead, subagent or single, got {role!r}")
    if env is None:
        if config is None:
            config = EnvConfig.single_agent() if role == "single" else EnvConfig()
        env = WideSeekEnv(corpus, tasks, config)
    all_human = others == "human"
    teacher = others == "teacher"  # built for the drawn task below: it reads that task's provenance
    policy = None if all_human or teacher else (load_policy(others) if isinstance(others, str) else others)

    obs, infos = env.reset(seed=seed, options={"task_id": task_id} if task_id else None)
    if teacher:
        policy = load_policy("teacher", [env.task])
    episode = f"play-{env.task.id}"
    if policy is not None and hasattr(policy, "reset_episode"):
        policy.reset_episode(episode)
    out = stdout.write
    out(f"=== task {env.task.id} — you play the {role}"
        f"{'' if all_human else ' (other agents: ' + (others if isinstance(others, str) else type(others).__name__) + ')'}"
        " ===\nType each message over as many lines as you like and end it with a line holding only '.'\n"
        "(a full stop alone on its line). Helper lines, which become tool calls:\n" + HELP
        + "Anything else is sent as it is (a final answer, or Hermes <tool_call> blocks).\n")
    human_ids: set[str] = set()
    if role == "lead":
        human_ids.add("lead")
    elif role == "single":
        human_ids.add(env.agents[0])
    eof = False
    while env.agents:
        acting = [a for a in env.agents if infos[a]["acting"]]
        if role == "subagent" and not (human_ids - {"lead"}):
            subs = [a for a in acting if infos[a]["role"] == "subagent"]
            if subs:
                human_ids.add(subs[0])
        mine = [a for a in acting if all_human or a in human_ids]
        theirs = [a for a in acting if a not in mine]
        actions: dict[str, str] = {}
        if theirs:
            reqs = [_Request(episode, a, infos[a]["messages"], infos[a]["tools"], infos[a]["role"]) for a in theirs]
            for a, resp in zip(theirs, policy.act(reqs)):
                actions[a] = getattr(resp, "text", resp) or ""
                out(f"[{a} ({infos[a]['role']}) acted: {_short(actions[a])}]\n")
        for a in mine:
            info = infos[a]
            out(f"\n----- {a} ({info['role']}), turn {info['turn']} of {info['max_turns']} -----\n")
            out(obs[a]["text"] + "\n")
            while True:
                text = None if eof else _read_message(stdin, stdout, f"\n{a}> ")
                if text is None:
                    eof = True
                    text = ""
                    break
                if text.strip() == "/help":
                    out(HELP)
                    continue
                break
            if text.strip() == "/quit":
                text = ""
            actions[a] = parse_human_input(text)
        obs, rewards, terms, truncs, infos = env.step(actions)
    if policy is not None and hasattr(policy, "end_episode"):
        policy.end_episode(episode)
    m = env.last_metrics or {}
    out(
        "\n=== episode over{} — reward {:.3f}; item F1 {:.3f} (P {:.3f}, R {:.3f}), row F1 {:.3f}, "
        "success {:.0f}; {} turns, tool calls {} ===\n".format(
            " (truncated)" if m.get("truncated") else "", m.get("reward", 0.0), m.get("item_f1", 0.0),
            m.get("item_precision", 0.0), m.get("item_recall", 0.0), m.get("row_f1", 0.0),
            m.get("success", 0.0), m.get("total_turns", 0), m.get("tool_calls", {}),
        )
    )
    gold = getattr(env.task, "gold_markdown", None)
    if callable(gold):
        out("The gold answer was:\n" + gold() + "\n")
    return dict(m)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + " ..."
