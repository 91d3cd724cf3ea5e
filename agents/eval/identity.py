"""Run identity and resumption of ``wideseek eval``: which tasks and seeds, what must match to reuse the
episodes already in ``--out``, and the ``run.json`` that records it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from agents.eval.spec import EvalError, EvalSpec, RunMismatchError
from agents.setup import LLM_POLICIES
from wideseek_env.files import file_sha256, write_json_atomic

__all__ = ["select_tasks", "episode_seed", "run_identity", "check_run_file", "RUN_FORMAT"]

RUN_FORMAT = "wideseek-eval/1"


def select_tasks(tasks: Sequence[Any], limit: int | None, task_seed: int = 0) -> list[Any]:
    """Tasks sorted by id, shuffled with ``task_seed``; the first ``limit`` (all if None). A larger limit
    extends a smaller one with the same seed."""
    order = sorted(tasks, key=lambda t: t.id)
    random.Random(task_seed).shuffle(order)
    return order if limit is None else order[:limit]


def episode_seed(seed: int, task_id: str, sample: int) -> int:
    """The env reset seed of episode ``(task_id, sample)``: independent of the other episodes of the run."""
    h = hashlib.blake2b(f"{seed}|{task_id}|{sample}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "little") & 0x7FFFFFFF


def run_identity(spec: EvalSpec, tasks_file: Path) -> dict[str, Any]:
    """What must match for episodes of an existing ``--out`` to be reused."""
    if spec.retriever_url is not None:
        knowledge: dict[str, Any] = {"retriever_url": spec.retriever_url}
    else:
        from wideseek_env.corpus.build import load_manifest
        from wideseek_env.corpus.fingerprint import corpus_fingerprint

        knowledge = {"corpus_fingerprint": corpus_fingerprint(load_manifest(spec.corpus_path()))}
    ident: dict[str, Any] = {
        "tasks_sha256": file_sha256(tasks_file),
        **knowledge,
        "policy": spec.policy,
        "env": dataclasses.asdict(spec.env_config()),
        "seed": spec.seed,
        "policy_options": spec.policy_options,
    }
    if spec.policy in LLM_POLICIES:
        ident["model"] = spec.model
        ident["sampling"] = {
            "temperature": spec.temperature,
            "top_p": spec.top_p,
            "max_tokens": spec.max_tokens,
            "max_model_len": spec.max_model_len,
        }
        if spec.policy == "openai":
            ident["base_url"] = spec.base_url
    return ident


def _diff_keys(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += _diff_keys(va, vb, prefix + k + ".")
        elif va != vb:
            out.append(prefix + k)
    return out


def check_run_file(out_dir: Path, identity: dict[str, Any], details: dict[str, Any]) -> None:
    """Make sure ``out_dir`` holds this run (or nothing yet): compare ``run.json``'s identity, or write it
    (with ``details``: the spec, paths, creation time). A different run is a :class:`RunMismatchError`."""
    run_file = out_dir / "run.json"
    episodes_file = out_dir / "episodes.jsonl"
    if run_file.exists():
        try:
            prev_ident = json.loads(run_file.read_text())["identity"]
        except (ValueError, KeyError, TypeError):
            raise EvalError(f"{run_file} is not a run file of 'wideseek eval'; use another --out or --overwrite") from None
        if prev_ident != identity:
            keys = _diff_keys(prev_ident, identity)
            raise RunMismatchError(
                f"{out_dir} holds a different run (differs in: {', '.join(keys[:6])}"
                f"{', ...' if len(keys) > 6 else ''}); use a new --out, or --overwrite to discard it"
            )
    elif episodes_file.exists() and episodes_file.stat().st_size > 0:
        raise RunMismatchError(f"{episodes_file} exists without a run.json; use a new --out, or --overwrite to discard it")
    else:
        write_json_atomic(run_file, {"format": RUN_FORMAT, "identity": identity, **details,
                                     "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
