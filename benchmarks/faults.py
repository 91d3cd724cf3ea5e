"""Faults, the full form: real CLI runs SIGKILLed at many random moments, each checked as the tests do.

The test suite (``tests/test_faults.py``, ``tests/test_long_runs.py``) kills each long-running command
at fixed points and at one random moment. This benchmark repeats the random kill many times with
different seeds, for each kind of run:

- ``build``: ``wideseek corpus build`` of the tests' generated 4,000-page corpus (version 2), over a
  previous corpus (version 1, three trials in four) or over nothing (a first build);
- ``generate``: ``wideseek tasks generate --seed 0`` on the tests' 60-table slice of the shared
  OTT-QA data, over an earlier complete generation (seed 1, three trials in four) or over nothing;
- ``eval``: ``wideseek eval`` (scripted policy, 6 tasks x 2 samples, 2 in parallel) on the shared
  corpus; in one trial in three the resumed run is killed again at a random moment;
- ``train``: ``wideseek train`` (the tiny test model on CPU, 4 steps, a checkpoint every 2), resumed
  with ``resume: auto``.

A clean (uninterrupted) subprocess run of each kind is timed first; each trial then starts the real
CLI (``python -m wideseek_env.cli``) and SIGKILLs it after ``f x`` that duration, ``f`` uniform in
[0, 1.1] (so from before the interpreter has imported anything to after the run has finished:
about one trial in eleven finishes before the kill and checks that a finished run is left alone).
The state the kill left is checked, the same command is run again to completion, and the result is
checked against the clean reference, with the tests' own helpers (imported from ``tests/``):

- after the kill: a build leaves the previous corpus whole (still answering with its old content),
  the new one whole, or no corpus (reported as not built, with the old one kept aside between the
  swap's two renames), and no process behind it; a generation leaves either files that the loader
  accepts and that equal the earlier or the clean generation, or a directory that the loader
  refuses as unfinished; an evaluation leaves only whole episode lines (a cut last line aside),
  no episode twice, each equal to the clean run's; training leaves metrics rows for steps 1..k once
  each and only complete checkpoints under their final names;
- after the rerun: the corpus equals a clean build (counts, passages, search results) with no
  leftovers; the task files are byte-identical to a clean generation; every ``(task, sample)``
  episode is there exactly once and equal to the clean run's; the trained weights and optimizer
  state equal the uninterrupted run's, with one metrics row per step.

Any failed check is an invariant violation (there must be none); the trial's directory is kept and
its path and the failure printed. Reported per kind: trials, the state each kill left (its phase),
the kill times as fractions of the clean run, violations and time; with ``--out`` a markdown report.

    python benchmarks/faults.py [--trials N] [--kinds build,generate,eval,train] [--seed 0]
                                [--out benchmarks/results/faults.md]

``--trials`` applies to every kind; without it each kind runs its default count (build 100,
generate 100, eval 100, train 12: about 10 minutes on a 2-core machine). The clean duration is the
median of three clean runs (one for ``train``, whose runs take longest), each also checked.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks._common import describe_machine  # noqa: E402

KINDS = ("build", "generate", "eval", "train")
DEFAULT_TRIALS = {"build": 100, "generate": 100, "eval": 100, "train": 12}
MAX_FRACTION = 1.1
FRACTION_BINS = [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0), (1.0, MAX_FRACTION)]

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _failed_exceptions() -> tuple[type[BaseException], ...]:
    """What a failed check raises: ``assert`` and ``pytest.raises`` (whose failure is no Exception)."""
    import pytest

    return (Exception, pytest.fail.Exception)


def timed_kill(args: list[str], delay: float) -> tuple[int, float]:
    """``run_and_kill_after`` of the tests, timed: (return code, seconds until the process ended)."""
    from test_faults import run_and_kill_after

    started = time.perf_counter()
    rc = run_and_kill_after(args, delay, timeout=600)
    return rc, time.perf_counter() - started


# -- corpus build ----------------------------------------------------------------------------------


class BuildKind:
    name = "build"
    what = "`wideseek corpus build` (4,000 generated pages, jsonl)"

    def __init__(self, work: Path) -> None:
        from wideseek_env.corpus.build import build_corpus

        import test_faults as tf

        self.tf = tf
        self.sources, self.reference = {}, {}
        for version in (1, 2):
            self.sources[version] = work / f"pages-v{version}.jsonl"
            tf.write_pages(self.sources[version], version)
            manifest = build_corpus("jsonl", self.sources[version], work / f"ref-v{version}", progress=False)
            self.reference[version] = {"dir": work / f"ref-v{version}", "counts": manifest["counts"]}

    def args(self, out: Path) -> list[str]:
        return ["corpus", "build", "--source", "jsonl", "--input", str(self.sources[2]), "--out", str(out)]

    def prepare(self, trial: Path, rng: random.Random) -> dict:
        out = trial / "corpus"
        previous = None if rng.random() < 0.25 else 1
        if previous is not None:
            shutil.copytree(self.reference[previous]["dir"], out)
        return {"out": out, "previous": previous, "start": "first build" if previous is None else "over v1"}

    def after_kill(self, state: dict, rc: int) -> str:
        from wideseek_env.corpus.build import load_manifest
        from wideseek_env.errors import CorpusNotBuiltError

        tf, out, previous = self.tf, state["out"], state["previous"]
        assert tf.no_orphans(str(out)), "processes left behind after the kill"
        left = tf.leftovers(out)
        try:
            load_manifest(out)
            version = tf.corpus_version(out)
        except CorpusNotBuiltError:
            version = None
        if version is None:
            tf.assert_previous_or_nothing(out, None, self.reference)
            if previous is not None:  # the old corpus may only be away between the swap's renames
                assert any(".old-" in name for name in left), f"the previous corpus is gone: {left}"
        else:
            assert version in (previous, 2), f"version {version} after a kill over {previous}"
            tf.assert_previous_or_nothing(out, version, self.reference)
        if rc == 0:
            return "finished"
        if version is None:
            return "between the swap's renames" if previous is not None else (
                "building" if any(".building-" in n for n in left) else "before building")
        if version == 2 and previous != 2:
            return "swapped in, cleaning up"
        return "building" if any(".building-" in n for n in left) else "before building"

    def rerun(self, state: dict, trial: Path) -> None:
        result = self.tf.run_cli(self.args(state["out"]), tmp=trial, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        self.tf.assert_same_as_clean_build(state["out"], self.reference[2])


# -- task generation ---------------------------------------------------------------------------------


class GenerateKind:
    name = "generate"
    what = "`wideseek tasks generate --seed 0` (60 OTT-QA tables and their linked pages)"

    def __init__(self, work: Path) -> None:
        from wideseek_env.corpus.build import build_corpus
        from wideseek_env.paths import default_corpus_dir, shared_data_dir
        from wideseek_env.tasks import load_tasks
        from wideseek_env.taskgen.generate import generate_tasks

        import test_faults as tf

        self.tf = tf
        ottqa = default_corpus_dir()
        build_corpus("ottqa", shared_data_dir() / "ottqa", ottqa, progress=False)  # reused if built
        (work / "tables").mkdir()
        self.corpus = tf.make_table_corpus(ottqa, work / "tables")
        self.clean = work / "clean-tasks"
        generate_tasks(self.corpus, self.clean, seed=0, progress=False)
        self.earlier = work / "earlier-tasks"
        generate_tasks(self.corpus, self.earlier, seed=1, progress=False)
        self.files = {"clean": tf.task_files(self.clean), "earlier": tf.task_files(self.earlier)}
        self.tasks = {"clean": load_tasks(self.clean), "earlier": load_tasks(self.earlier)}
        assert self.files["clean"] != self.files["earlier"]

    def args(self, out: Path) -> list[str]:
        return ["tasks", "generate", "--corpus", str(self.corpus), "--out", str(out), "--seed", "0"]

    def prepare(self, trial: Path, rng: random.Random) -> dict:
        out = trial / "tasks"
        earlier = rng.random() >= 0.25
        if earlier:
            shutil.copytree(self.earlier, out)
        return {"out": out, "earlier": earlier, "start": "over seed 1" if earlier else "first run"}

    def after_kill(self, state: dict, rc: int) -> str:
        from wideseek_env.errors import WideseekError
        from wideseek_env.tasks import load_tasks

        tf, out = self.tf, state["out"]
        assert tf.no_orphans(str(out)), "processes left behind after the kill"
        if (out / ".incomplete").exists():
            tf.refused_as_unfinished(out)
            trusted = None
        else:
            try:
                loaded = load_tasks(out)
            except (WideseekError, OSError):
                loaded = None
            if loaded is None:
                assert not state["earlier"], "the earlier generation is refused but no marker says why"
                trusted = None
            else:
                files = tf.task_files(out)
                trusted = "clean" if files == self.files["clean"] else "earlier" if files == self.files["earlier"] \
                    else None
                assert trusted is not None, "the loader accepts files that are neither the earlier nor the clean ones"
                assert trusted == "clean" or state["earlier"]
                assert loaded == self.tasks[trusted]
        if rc == 0:
            return "finished"
        if (out / ".incomplete").exists():
            return "swapping (refused as unfinished)"
        if trusted == "clean":
            return "done, not yet exited"
        if list(out.glob(".tmp-*")):
            return "writing the new files"
        return "before writing"

    def rerun(self, state: dict, trial: Path) -> None:
        result = self.tf.run_cli(self.args(state["out"]), tmp=trial, timeout=600)
        self.tf.assert_generation_finished(state["out"], result, self.clean)


# -- evaluation ------------------------------------------------------------------------------------


class EvalKind:
    name = "eval"
    what = "`wideseek eval` (scripted policy, 6 tasks x 2 samples, --parallel 2, shared OTT-QA corpus)"

    def __init__(self, work: Path) -> None:
        from wideseek_env.corpus.build import build_corpus
        from wideseek_env.paths import default_corpus_dir, shared_data_dir

        import test_long_runs as lr

        self.lr = lr
        self.corpus = default_corpus_dir()
        build_corpus("ottqa", shared_data_dir() / "ottqa", self.corpus, progress=False)  # reused if built
        self.tasks = lr.make_eval_tasks(self.corpus, work / "eval-tasks.jsonl")
        (work / "eval-ref").mkdir()
        self.reference = lr.make_eval_reference(self.tasks, self.corpus, work / "eval-ref")

    def args(self, out: Path) -> list[str]:
        return self.lr.eval_args(self.tasks, self.corpus, out)

    def prepare(self, trial: Path, rng: random.Random) -> dict:
        return {"out": trial / "out", "start": "fresh", "kill_again": rng.random() < 1 / 3}

    def after_kill(self, state: dict, rc: int) -> str:
        out = state["out"]
        path = out / "episodes.jsonl"
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        whole = text.split("\n")[:-1]  # a cut last line (no newline yet) is left for the resume to drop
        records = [json.loads(line) for line in whole]
        keys = [(r["task_id"], r["sample"]) for r in records]
        assert len(keys) == len(set(keys)), "an episode was written twice"
        for record in records:
            assert self.lr.essence(record) == self.reference[(record["task_id"], record["sample"])], \
                "a saved episode differs from the clean run's"
        summary = out / "summary.json"
        if summary.exists() and json.loads(summary.read_text()).get("complete"):
            assert set(keys) == set(self.reference), "summary.json says complete with episodes missing"
        if rc == 0:
            return "finished"
        n = len(records)
        return f"{n} of {len(self.reference)} episodes saved" if n < len(self.reference) else \
            "all episodes saved, not yet exited"

    def rerun(self, state: dict, trial: Path) -> None:
        result = self.lr.run_cli(trial, self.args(state["out"]), timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        self.lr.assert_complete_and_equal(state["out"], self.reference)


# -- training --------------------------------------------------------------------------------------


class TrainKind:
    name = "train"
    clean_runs = 1
    what = "`wideseek train` (tiny test model on CPU, 4 steps, checkpoint every 2, resume: auto)"

    def __init__(self, work: Path) -> None:
        import test_long_runs as lr

        self.lr = lr
        self.setup = lr.make_train_setup(work)
        self.reference = work / "train-ref"
        (work / "train-ref-tmp").mkdir()
        result = lr.run_cli(work / "train-ref-tmp", self.args(self.reference), timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]

    def args(self, out: Path) -> list[str]:
        return ["train", "--config", str(self.lr.train_config(self.setup, out))]

    def prepare(self, trial: Path, rng: random.Random) -> dict:
        return {"out": trial / "run", "start": "fresh"}

    def after_kill(self, state: dict, rc: int) -> str:
        import torch

        out = state["out"]
        metrics = out / "metrics.jsonl"
        text = metrics.read_text() if metrics.exists() else ""
        rows = [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]
        steps = [r["step"] for r in rows]
        assert steps == list(range(1, len(steps) + 1)), f"metrics rows for steps {steps}"
        checkpoints = out / "checkpoints"
        complete = sorted(p.name for p in checkpoints.iterdir() if ".tmp" not in p.name) \
            if checkpoints.exists() else []
        for name in complete:
            state_file = checkpoints / name / "trainer_state.pt"
            saved = torch.load(state_file, map_location="cpu", weights_only=False)
            assert saved["step"] == int(name.split("_")[1]), f"{name} holds step {saved['step']}"
            assert list((checkpoints / name / "model").glob("*.safetensors")), f"{name} has no weights"
        if rc == 0:
            return "finished"
        return f"{len(steps)} of 4 steps logged, checkpoints {[int(n.split('_')[1]) for n in complete]}"

    def rerun(self, state: dict, trial: Path) -> None:
        result = self.lr.run_cli(trial, self.args(state["out"]), timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        self.lr.assert_same_training(state["out"], self.reference)


KIND_CLASSES = {k.name: k for k in (BuildKind, GenerateKind, EvalKind, TrainKind)}


# -- running ---------------------------------------------------------------------------------------


def clean_seconds(kind, work: Path) -> float:
    """Median seconds of ``runs`` clean subprocess runs, started as the killed ones are, from the trials'
    usual start state; each run's output is checked against the reference as a trial's is."""
    times = []
    for i in range(getattr(kind, "clean_runs", 3)):
        trial = work / f"{kind.name}-clean-{i}"
        trial.mkdir()
        state = kind.prepare(trial, random.Random(0))  # over an earlier output, as most trials
        rc, seconds = timed_kill(kind.args(state["out"]), 10_000)
        assert rc == 0, f"the clean {kind.name} run failed with {rc}"
        kind.rerun(state, trial)  # a second run: reuses it (or resumes nothing) and it equals the reference
        shutil.rmtree(trial)
        times.append(seconds)
    return sorted(times)[len(times) // 2]


def run_trial(kind, work: Path, index: int, rng: random.Random, duration: float) -> dict:
    trial = work / f"{kind.name}-{index:03d}"
    trial.mkdir()
    state = kind.prepare(trial, rng)
    fractions, phases = [], []
    started = time.perf_counter()
    record = {"trial": index, "start": state["start"], "violation": None}
    step = "kill"
    try:
        kills = 2 if state.get("kill_again") else 1
        for _ in range(kills):
            fraction = rng.uniform(0.0, MAX_FRACTION)
            rc, _seconds = timed_kill(kind.args(state["out"]), fraction * duration)
            assert rc in (0, -signal.SIGKILL), f"the run ended with status {rc}"
            fractions.append(fraction)
            step = "after the kill"
            phases.append(kind.after_kill(state, rc))
            step = "kill"
        step = "rerun"
        kind.rerun(state, trial)
    except _failed_exceptions() as exc:
        record["violation"] = f"{step}: {type(exc).__name__}: {exc}".strip()[:2000]
        record["traceback"] = traceback.format_exc()[-4000:]
        record["kept"] = str(trial)
    record.update(fractions=fractions, phases=phases, seconds=time.perf_counter() - started)
    if record["violation"] is None:
        shutil.rmtree(trial, ignore_errors=True)
    return record


def fraction_bins(fractions: list[float]) -> list[int]:
    return [sum(lo <= f < hi for f in fractions) for lo, hi in FRACTION_BINS]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None,
                        help="trials per kind (default: " + ", ".join(f"{k} {n}" for k, n in DEFAULT_TRIALS.items())
                        + ")")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated, of " + ", ".join(KINDS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where trials run (default: a temporary directory, removed unless a trial failed)")
    parser.add_argument("--out", type=Path, default=None, help="write a markdown report here")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="wideseek-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    started_all = time.perf_counter()
    results = {}
    for name in kinds:
        kind_started = time.perf_counter()
        kind_work = work / name
        kind_work.mkdir()
        kind = KIND_CLASSES[name](kind_work)
        duration = clean_seconds(kind, kind_work)
        setup_seconds = time.perf_counter() - kind_started
        trials = args.trials if args.trials is not None else DEFAULT_TRIALS[name]
        print(f"[{name}] clean run {duration:.2f} s; {trials} trials", flush=True)
        records = []
        for i in range(trials):
            rng = random.Random(f"{args.seed}-{name}-{i}")
            record = run_trial(kind, kind_work, i, rng, duration)
            records.append(record)
            status = "VIOLATION " + record["violation"] if record["violation"] else "ok"
            print(f"[{name}] trial {i}: {record['start']}, killed at "
                  f"{', '.join(f'{f:.2f}' for f in record['fractions'])} -> {'; '.join(record['phases'])}: {status}",
                  flush=True)
            if record["violation"]:
                print(record["traceback"], file=sys.stderr, flush=True)
        fractions = [f for r in records for f in r["fractions"]]
        phases = Counter(p for r in records for p in r["phases"])
        results[name] = {
            "what": kind.what,
            "clean_seconds": duration,
            "setup_seconds": setup_seconds,
            "trials": trials,
            "kills": len(fractions),
            "starts": dict(Counter(r["start"] for r in records)),
            "phases": dict(sorted(phases.items(), key=lambda kv: -kv[1])),
            "fraction_bins": fraction_bins(fractions),
            "min_fraction": min(fractions, default=float("nan")),
            "max_fraction": max(fractions, default=float("nan")),
            "violations": [{k: r[k] for k in ("trial", "violation", "kept")} for r in records if r["violation"]],
            "seconds": time.perf_counter() - kind_started,
            "trial_seconds_mean": sum(r["seconds"] for r in records) / max(1, len(records)),
        }
    violations = sum(len(r["violations"]) for r in results.values())
    if not violations and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "machine": describe_machine(ram=True),
        "seed": args.seed,
        "kinds": results,
        "violations": violations,
        "seconds": time.perf_counter() - started_all,
        "command": "python benchmarks/faults.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report(result))
    return result


def report(r: dict) -> str:
    bins = " | ".join(f"{lo:g}-{hi:g}" for lo, hi in FRACTION_BINS)
    lines = [
        "# Faults: commands SIGKILLed at random moments",
        "",
        f"Machine: {r['machine']}.",
        "",
        f"Command: `{r['command'].strip()}`",
        "",
        "Each trial starts the real CLI (`python -m wideseek_env.cli`), SIGKILLs it after a uniform random "
        f"fraction in [0, {MAX_FRACTION:g}] of a clean run's duration (measured first), checks the state the "
        "kill left, runs the same command again to completion and checks the result against a clean "
        "reference, with the checks of `tests/test_faults.py` and `tests/test_long_runs.py` (see the "
        "docstring of `benchmarks/faults.py`). A fraction above 1 lets the run finish before the kill.",
        "",
        f"| kind | clean run s | trials | kills | violations | minutes | kills at fraction {bins} |",
        "|---|---:|---:|---:|---:|---:|" + "---:|" * len(FRACTION_BINS),
    ]
    for name, k in r["kinds"].items():
        lines.append(f"| {name} | {k['clean_seconds']:.1f} | {k['trials']} | {k['kills']} | {len(k['violations'])} "
                     f"| {k['seconds'] / 60:.1f} | {' | '.join(str(n) for n in k['fraction_bins'])} |")
    lines += [
        "", f"Invariant violations in all: {r['violations']}. Total time {r['seconds'] / 60:.1f} minutes.", "",
        "These small runs spend most of their time starting the interpreter and importing (and, for `train`, "
        "loading the model), so most random kills land there; the narrow windows (between the swap's "
        "renames, mid-update) are hit by the tests' fixed kill points rather than by chance here.", "",
    ]
    for name, k in r["kinds"].items():
        lines += [
            f"## {name}",
            "",
            f"{k['what']}; starting states: " + ", ".join(f"{s} {n}" for s, n in k["starts"].items())
            + f". Kill fractions from {k['min_fraction']:.3f} to {k['max_fraction']:.3f}.",
            "",
            "| state the kill left (phase) | kills |",
            "|---|---:|",
        ]
        lines += [f"| {phase} | {n} |" for phase, n in k["phases"].items()]
        lines.append("")
        for v in k["violations"]:
            lines.append(f"- VIOLATION in trial {v['trial']}: {v['violation']} (kept at {v['kept']})")
        if k["violations"]:
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(1 if main()["violations"] else 0)
