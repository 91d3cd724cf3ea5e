"""``wideseek demos``: an SFT dataset of demonstrations, rendered exactly as the GRPO policy samples.

A demonstrator policy (the scripted baseline, or any policy :func:`agents.setup.build_policy` knows, such as
a privileged teacher) plays train tasks in the env through the shared run setup. It is wrapped in a
:class:`TeacherForcedPolicy`: a :class:`~agents.policy.ChatTokenPolicy` over the tokenizer of the model to
be trained whose "generation" is the demonstrator's text, tokenised and closed with the end-of-turn token.
So every prompt is rendered by the policy's own incremental rendering (the env's prompts and tool schemas,
the model's chat template) and the token trajectory of each agent is what a GRPO rollout of the same
conversation would hold: same prompt ids, same response ids, same loss mask.

Episodes whose item F1 is at least ``min_f1`` are kept; each agent of a kept episode is one JSONL record in
``OUT/demos.jsonl``::

    {"task_id", "episode_id", "agent", "role", "item_f1", "input_ids", "loss_mask", "prompt_tokens",
     "completion_tokens", "turns": [[prompt_len, completion_len, suffix_len], ...]}

``loss_mask`` is 1 exactly on the demonstrator's generated tokens (and the end-of-turn token the model
must learn to emit).

Recovery demonstrations (``recovery``, a share of episodes, 0 by default): a demonstrator never errs, so
a model trained on it alone has never seen a failed call and answers right after one (on the compact
single-agent transcribe tasks, 21 of 60 held-out episodes of such an SFT checkpoint ended that way). In
the chosen episodes, each agent's first ``access`` call is replaced by a corrupted one, a page title
with one letter dropped or a URL string left unclosed (:func:`corrupt_access_call`); the env answers it
as it answers any such call (a miss, with suggestions when ``access_suggestions`` is on; an error with
``invalid_call: error``), and on the next turn the demonstrator's real call is made. The corrupted turn
is left out of the loss mask, so SFT learns the recovery, not the mistake (DART-style noise injection).

``OUT/episodes.jsonl`` lists every episode played (kept or not), so a rerun of the same command resumes;
``OUT/manifest.json`` holds the settings and the counts (a rerun with other settings is refused).
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from agents.policy import AgentRequest, AgentResponse, ChatTokenPolicy, Generation, GenerationRequest, Policy
from wideseek_env.errors import WideseekError

__all__ = ["DemoConfig", "TeacherForcedPolicy", "corrupt_access_call", "write_demos", "read_demos", "run_cli",
           "add_arguments"]


class DemosError(WideseekError, ValueError):
    """A demonstration run cannot go on as asked."""


@dataclass
class DemoConfig:
    """What ``wideseek demos`` runs: ``policy`` plays ``tasks`` (the train split by default) under
    ``preset`` + ``env``; the turns are rendered with ``model``'s tokenizer; episodes with item F1 >=
    ``min_f1`` (0..1) are written to ``out``."""

    out: str
    policy: str = "scripted"
    model: str = "smollm2"
    tasks: str | None = None
    corpus: str | None = None
    preset: str = "default"
    env: dict[str, Any] = field(default_factory=dict)
    min_f1: float = 0.8
    limit: int | None = None
    seed: int = 0
    parallel: int = 8
    kinds: list[str] | None = None
    recovery: float = 0.0  # share of episodes with a corrupted first access call (module doc)

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("out", "limit", "parallel"):  # a larger limit extends a run
            d.pop(k)
        if not d["recovery"]:  # manifests written before the field existed stay valid
            d.pop("recovery")
        return d


# The first access URL of a Hermes tool call: the title part, then the closing quote.
_ACCESS_URL = re.compile(r'("url":\s*"https?://en\.wikipedia\.org/wiki/)([^"]+)(")')


def corrupt_access_call(text: str, rng: random.Random) -> str | None:
    """``text`` with its first ``access`` call made to fail, or None when it holds no access call.

    One of three faults, at random: a letter of the first URL's page title dropped, the title's
    punctuation left out (commas, periods, parentheses and apostrophes dropped, dashes made underscores;
    a letter is dropped instead when the title has none), both misses; or the URL's closing quote
    dropped, a call that is not valid JSON. These are the first-call faults a small model makes on
    its own (missing pages and unclosed strings), so the detour looks like its own mistakes."""
    if '"access"' not in text:
        return None
    match = _ACCESS_URL.search(text)
    if match is None:
        return None
    fault = rng.randrange(3)
    if fault == 2:
        return text[: match.start()] + match.group(1) + match.group(2) + text[match.end():]
    title = match.group(2)
    plain = _plain_title(title)
    if fault == 1 and plain and plain != title:
        title = plain
    else:
        letters = [i for i, c in enumerate(title) if c.isalpha() and i > 0]
        if not letters:
            return text[: match.start()] + match.group(1) + title + text[match.end():]
        i = rng.choice(letters)
        title = title[:i] + title[i + 1:]
    return text[: match.start()] + match.group(1) + title + match.group(3) + text[match.end():]


def _plain_title(title: str) -> str:
    """``title`` without its punctuation: ``Whistler,_British_Columbia`` -> ``Whistler_British_Columbia``."""
    title = re.sub(r"[-\u2013\u2014]", "_", title)
    title = re.sub(r"[,.()'\u2019]", "", title)
    return re.sub(r"_+", "_", title).strip("_")


class TeacherForcedPolicy(ChatTokenPolicy):
    """``teacher``'s texts as if ``tokenizer``'s model had generated them (see the module docstring)."""

    def __init__(self, teacher: Policy, tokenizer: Any, *, recovery: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= recovery <= 1.0:
            raise DemosError(f"recovery must be a share in [0, 1], got {recovery}")
        super().__init__(tokenizer, max_model_len=None, record_trajectories=True)
        self.teacher = teacher
        self.recovery = recovery
        self.seed = seed
        self._texts: list[str] = []
        self._turns: dict[tuple[str, str], int] = {}  # turns taken so far, per (episode, agent)
        self._pending: dict[tuple[str, str], str] = {}  # the real call, made on the agent's next turn
        self._masked: dict[str, dict[str, list[int]]] = {}  # episode -> agent -> corrupted turn indices

    def act(self, requests: Sequence[AgentRequest]) -> list[AgentResponse]:
        keys = [(r.episode_id, r.agent_id) for r in requests]
        texts: list[str | None] = [self._pending.pop(k, None) for k in keys]
        asked = [i for i, t in enumerate(texts) if t is None]
        answers = self.teacher.act([requests[i] for i in asked]) if asked else []
        for i, answer in zip(asked, answers):
            texts[i] = self._maybe_detour(keys[i], answer.text)
        for k in keys:
            self._turns[k] = self._turns.get(k, 0) + 1
        self._texts = [t or "" for t in texts]
        return super().act(requests)

    def _maybe_detour(self, key: tuple[str, str], text: str) -> str:
        """The corrupted call in place of ``text`` (which is kept for the next turn), or ``text``."""
        episode, agent = key
        if not self.recovery or agent in self._masked.get(episode, {}):  # one detour an agent
            return text
        rng = random.Random(f"{self.seed}:{episode}:{agent}")
        if rng.random() >= self.recovery:
            return text
        broken = corrupt_access_call(text, rng)
        if broken is None:
            return text
        self._pending[key] = text
        self._masked.setdefault(episode, {}).setdefault(agent, []).append(self._turns.get(key, 0))
        return broken

    def _generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        if len(requests) != len(self._texts):
            raise RuntimeError("teacher forcing: a request was answered without generation")
        eot = self.end_of_turn_ids()[:1]  # the end-of-turn token the model itself must generate
        return [Generation(self._encode(text) + eot, None, "stop") for text in self._texts]

    def reset_episode(self, episode_id: str) -> None:
        super().reset_episode(episode_id)
        self.teacher.reset_episode(episode_id)
        self._forget(episode_id)

    def end_episode(self, episode_id: str) -> dict[str, Any]:
        self.teacher.end_episode(episode_id)
        trajectories = super().end_episode(episode_id)
        for agent, turns in self._masked.get(episode_id, {}).items():
            if agent in trajectories:
                trajectories[agent].set_mask(0, turns)
        self._forget(episode_id)
        return trajectories

    def _forget(self, episode_id: str) -> None:
        self._masked.pop(episode_id, None)
        for table in (self._turns, self._pending):
            for key in [k for k in table if k[0] == episode_id]:
                del table[key]

    def close(self) -> None:
        self.teacher.close()


def _records(episode: Any) -> list[dict[str, Any]]:
    out = []
    f1 = episode.scores()["item_f1"]
    for agent, traj in episode.trajectories.items():
        ids, mask = traj.full_ids, traj.loss_mask
        out.append({
            "task_id": episode.task_id, "episode_id": episode.job.episode_id, "agent": agent, "role": traj.role,
            "item_f1": f1, "input_ids": ids, "loss_mask": mask, "prompt_tokens": len(ids) - sum(mask),
            "completion_tokens": sum(mask),
            "turns": [[len(t.prompt_ids), len(t.response_ids), len(t.suffix_ids)] for t in traj.turns],
        })
    return out


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut by a kill: everything after it is played again
    return rows


def read_demos(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a demos directory (``DIR/demos.jsonl``) or a JSONL file."""
    p = Path(path)
    p = p / "demos.jsonl" if p.is_dir() else p
    if not p.exists():
        raise DemosError(f"no demonstrations at {p}; write them with 'wideseek demos'")
    return _read_jsonl(p)


def write_demos(cfg: DemoConfig, *, progress: bool = True) -> dict[str, Any]:
    """Play the tasks of ``cfg`` not played yet, append kept agents to ``demos.jsonl``; return the manifest."""
    from transformers import AutoTokenizer

    from agents.episode import EpisodeJob, episode_id
    from agents.eval.identity import select_tasks
    from agents.rollout import iter_episodes
    from agents.setup import EnvSetup, SetupError, build_policy, env_config, resolve_model, tasks_file
    from wideseek_env.tasks import load_tasks

    if not 0.0 <= cfg.min_f1 <= 1.0:
        raise DemosError(f"--min-f1 must be in [0, 1], got {cfg.min_f1}")
    if not 0.0 <= cfg.recovery <= 1.0:
        raise DemosError(f"--recovery must be a share in [0, 1], got {cfg.recovery}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text()).get("config", {})
        if old and old != cfg.identity():
            raise DemosError(f"{out} holds demonstrations made with other settings ({old}); use another --out")
    try:
        model_dir = resolve_model(cfg.model)
        config = env_config(cfg.preset, cfg.env)
        path = tasks_file(cfg.tasks, split="train")
        tasks = [t for t in load_tasks(path) if not cfg.kinds or getattr(t, "kind", None) in cfg.kinds]
        setup = EnvSetup.build(tasks, config, corpus=cfg.corpus)
        teacher = build_policy(cfg.policy, env=config, tasks=tasks, seed=cfg.seed)
    except SetupError as exc:
        raise DemosError(str(exc)) from None
    selected = select_tasks(tasks, cfg.limit, cfg.seed)
    played = {r["task_id"]: r for r in _read_jsonl(out / "episodes.jsonl")}
    # demos.jsonl may hold agents of an episode whose episodes.jsonl line a kill cut off: drop them
    demos = [r for r in _read_jsonl(out / "demos.jsonl") if r["task_id"] in played]
    with open(out / "demos.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in demos)
    jobs = [EpisodeJob(t.id, episode_id(t.id, 0), cfg.seed, (t.id, 0)) for t in selected if t.id not in played]
    policy = TeacherForcedPolicy(teacher, AutoTokenizer.from_pretrained(model_dir), recovery=cfg.recovery,
                                 seed=cfg.seed)
    envs = [setup.make_env() for _ in range(max(1, min(cfg.parallel, len(jobs))))]
    bar = None
    if progress and jobs:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc=f"demos {cfg.policy}", unit="ep", file=sys.stderr, dynamic_ncols=True)
    try:
        with open(out / "episodes.jsonl", "a", encoding="utf-8") as ep_log, \
                open(out / "demos.jsonl", "a", encoding="utf-8") as demo_log:
            for episode in iter_episodes(envs, policy, jobs, max_parallel=cfg.parallel) if jobs else ():
                f1 = episode.scores()["item_f1"]
                keep = f1 >= cfg.min_f1 and not episode.metrics.get("truncated")
                if keep:
                    demo_log.writelines(json.dumps(r) + "\n" for r in _records(episode))
                    demo_log.flush()
                row = {"task_id": episode.task_id, "item_f1": f1, "kept": keep}
                ep_log.write(json.dumps(row) + "\n")
                ep_log.flush()
                played[episode.task_id] = row
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(kept=sum(r["kept"] for r in played.values()), refresh=False)
    finally:
        if bar is not None:
            bar.close()
        policy.close()
        for env in envs:
            env.close()
        setup.close()
    records = _read_jsonl(out / "demos.jsonl")
    manifest = {
        "config": cfg.identity(), "model_dir": model_dir, "tasks_file": str(path),
        "episodes_played": len(played), "episodes_kept": sum(r["kept"] for r in played.values()),
        "mean_item_f1_played": sum(r["item_f1"] for r in played.values()) / max(1, len(played)),
        "records": len(records), "records_by_role": _count(r["role"] for r in records),
        "completion_tokens": sum(r["completion_tokens"] for r in records),
        "total_tokens": sum(len(r["input_ids"]) for r in records),
        "max_tokens": max((len(r["input_ids"]) for r in records), default=0),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


def add_arguments(p: Any) -> None:
    from agents.setup import POLICIES

    p.add_argument("--policy", default="scripted", choices=POLICIES, help="the demonstrator")
    p.add_argument("--model", default="smollm2", help="the model to be trained (its tokenizer and chat template)")
    p.add_argument("--tasks", default=None, help="task file (default: the generated train split)")
    p.add_argument("--kinds", nargs="*", default=None, help="only tasks of these kinds (e.g. transcribe)")
    p.add_argument("--corpus", default=None)
    p.add_argument("--preset", default="default", help="env preset (e.g. compact)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="EnvConfig field; repeatable")
    p.add_argument("--min-f1", type=float, default=0.8, help="keep episodes with item F1 >= this (0..1)")
    p.add_argument("--limit", type=int, default=None, help="play N tasks (a fixed seeded sample)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recovery", type=float, default=0.0,
                   help="share of episodes whose first access call is corrupted, then made right (0..1)")
    p.add_argument("--parallel", type=int, default=8)
    p.add_argument("--out", required=True, help="output directory (demos.jsonl, episodes.jsonl, manifest.json)")


def run_cli(args: Any) -> int:
    from agents.setup import SetupError, parse_env_overrides

    try:
        env = parse_env_overrides(args.env)
    except SetupError as exc:
        raise DemosError(str(exc)) from None
    manifest = write_demos(DemoConfig(
        out=args.out, policy=args.policy, model=args.model, tasks=args.tasks, corpus=args.corpus,
        preset=args.preset, env=env, min_f1=args.min_f1, limit=args.limit, seed=args.seed,
        parallel=args.parallel, kinds=args.kinds, recovery=args.recovery))
    print(json.dumps(manifest, indent=1))
    return 0
