"""Long runs lose nothing: ``wideseek eval`` and ``wideseek train`` SIGKILLed mid-way resume exactly.

- ``wideseek eval`` (scripted policy, real subprocess on the shared corpus) is killed in the middle of
  writing an episode line, and at a random moment; rerunning the same command completes the run with
  every ``(task, sample)`` episode exactly once, each equal to an uninterrupted run's.
- ``wideseek train`` (the tiny test model on CPU, a real subprocess) is killed in the middle of an
  update, with the temporary folder of a checkpoint cut off mid-write beside the complete ones;
  ``resume: auto`` continues from the last complete checkpoint and ends with the same weights and
  optimizer state as an uninterrupted run, with one metrics row per step. A checkpoint is loaded
  as data only (a pickled payload in it is refused, not run).

Kills are placed by a driver that wraps one function so that the process SIGKILLs itself when it is
called for the n-th time (after writing part of its output, for the "half" variants), then runs the
real CLI.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from task_helpers import save_test_tasks_by_kind

DRIVER = r'''
import os, signal, sys

target, after = sys.argv[1], int(sys.argv[2])
argv = sys.argv[3:]


def die():
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(owner, name, half=None):
    original = getattr(owner, name)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] > after:
            if half is not None:
                half(*args, **kwargs)
            die()
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


if target == "EpisodeLog.append-half":
    import json
    import agents.eval.records as ev

    def half_line(self, record):  # a line cut in the middle, flushed to the file
        line = json.dumps(record, ensure_ascii=False) + "\n"
        self._f.write(line[: len(line) // 2])
        self._f.flush()

    arm(ev.JsonlLog, "append", half_line)
elif target == "Trainer.optimize":
    import agents.train.trainer as tr
    arm(tr.Trainer, "optimize")
elif target != "none":
    raise SystemExit("unknown kill point " + target)

from wideseek_env.cli import main

sys.exit(main(argv))
'''


def run_cli(tmp: Path, args: list[str], *, kill_at: str = "none", after: int = 0, timeout: float = 300,
            env: dict | None = None):
    driver = tmp / "driver.py"
    if not driver.exists():
        driver.write_text(DRIVER)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false", **(env or {}))
    return subprocess.run([sys.executable, str(driver), kill_at, str(after), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


# -- evaluation ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eval_tasks(ottqa_corpus, tmp_path_factory) -> Path:
    return make_eval_tasks(ottqa_corpus, tmp_path_factory.mktemp("long-eval") / "tasks.jsonl")


def make_eval_tasks(ottqa_corpus: Path, path: Path) -> Path:
    """Six tasks of the generated test split (two of each kind), in a file of their own at ``path``."""
    return save_test_tasks_by_kind(ottqa_corpus, path, enrich=2, transcribe=2, union=2)


SAMPLES = 2


def eval_args(tasks: Path, corpus: Path, out: Path) -> list[str]:
    return ["eval", "--policy", "scripted", "--tasks", str(tasks), "--corpus", str(corpus),
            "--samples", str(SAMPLES), "--parallel", "2", "--out", str(out), "--no-progress"]


def episode_lines(out: Path) -> list[dict]:
    """Every line of episodes.jsonl parsed (a line that does not parse fails the test)."""
    text = (out / "episodes.jsonl").read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def essence(record: dict) -> tuple:
    """What an episode's result is, without its timings."""
    metrics = {k: v for k, v in record["metrics"].items() if "second" not in k and "time" not in k}
    return record["answer"], json.dumps(record["scores"], sort_keys=True), record["reward"], \
        json.dumps(metrics, sort_keys=True), record["error"]


@pytest.fixture(scope="module")
def eval_reference(eval_tasks, ottqa_corpus, tmp_path_factory) -> dict:
    return make_eval_reference(eval_tasks, ottqa_corpus, tmp_path_factory.mktemp("long-eval-ref"))


def make_eval_reference(eval_tasks: Path, ottqa_corpus: Path, tmp: Path) -> dict:
    """An uninterrupted ``wideseek eval`` run: ``{(task_id, sample): essence}`` of its episodes."""
    result = run_cli(tmp, eval_args(eval_tasks, ottqa_corpus, tmp / "out"))
    assert result.returncode == 0, result.stderr[-3000:]
    records = episode_lines(tmp / "out")
    assert len(records) == 6 * SAMPLES
    return {(r["task_id"], r["sample"]): essence(r) for r in records}


def assert_complete_and_equal(out: Path, reference: dict) -> None:
    records = episode_lines(out)
    keys = [(r["task_id"], r["sample"]) for r in records]
    assert len(keys) == len(set(keys)), "an episode was written twice"
    assert set(keys) == set(reference), "episodes were lost"
    for record in records:
        assert essence(record) == reference[(record["task_id"], record["sample"])]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is True


def test_eval_killed_mid_write_resumes_without_loss_or_duplicates(eval_tasks, ottqa_corpus, eval_reference, tmp_path):
    out = tmp_path / "out"
    args = eval_args(eval_tasks, ottqa_corpus, out)
    killed = run_cli(tmp_path, args, kill_at="EpisodeLog.append-half", after=5)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    raw = (out / "episodes.jsonl").read_text(encoding="utf-8")
    assert raw.count("\n") == 5 and not raw.endswith("\n")  # five whole lines and half of the sixth
    resumed = run_cli(tmp_path, args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete_and_equal(out, eval_reference)
    again = run_cli(tmp_path, args)  # a finished run reruns nothing and writes nothing
    assert again.returncode == 0
    assert_complete_and_equal(out, eval_reference)


def test_eval_killed_at_a_random_moment_resumes_without_loss_or_duplicates(
    eval_tasks, ottqa_corpus, eval_reference, tmp_path
):
    out = tmp_path / "out"
    args = eval_args(eval_tasks, ottqa_corpus, out)
    proc = subprocess.Popen([sys.executable, "-m", "wideseek_env.cli", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    want = random.Random(0).randint(2, 8)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            episodes = out / "episodes.jsonl"
            if episodes.exists() and episodes.read_bytes().count(b"\n") >= want:
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    resumed = run_cli(tmp_path, args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_complete_and_equal(out, eval_reference)


# -- training --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def train_setup(tmp_path_factory) -> dict:
    for module in ("torch", "transformers", "yaml", "safetensors"):
        pytest.importorskip(module)
    return make_train_setup(tmp_path_factory.mktemp("long-train"))


def make_train_setup(root: Path) -> dict:
    """The tiny test model, three toy tasks and a length reward under ``root``."""
    from agents.models import tiny_test_model
    from wideseek_env.tasks import save_tasks
    from wideseek_env.table.schema import ColumnSpec, Task

    model = tiny_test_model(root / "tiny-model")
    tasks = root / "toy-tasks.jsonl"
    save_tasks([
        Task(id=f"toy{i}", query=q, language="en", required_columns=["name"], unique_columns=["name"],
             columns={"name": ColumnSpec("name")}, gold=[{"name": g}])
        for i, (q, g) in enumerate([("Name a colour.", "red"), ("Name a city.", "Paris"), ("Name a fox.", "fox")])
    ], tasks)
    reward = root / "toy_reward.py"
    reward.write_text("def length_reward(task, answer, record):\n    return min(len(answer), 30) / 30.0\n")
    return {"root": root, "model": model, "tasks": tasks, "reward": reward}


def train_config(setup: dict, out: Path) -> Path:
    import yaml

    config = {
        "model": str(setup["model"]), "policy": "hf", "tasks": str(setup["tasks"]), "tools": "none",
        "preset": "single", "reward_fn": f"{setup['reward']}:length_reward", "steps": 4,
        "tasks_per_step": 2, "group_size": 2, "max_tokens": 8, "lr": 1e-3, "micro_batch_size": 2,
        "output_dir": str(out), "save_every": 2, "keep_checkpoints": None, "logger": "jsonl", "seed": 3,
        "resume": "auto",
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def metrics_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def final_state(out: Path) -> tuple[dict, dict]:
    import torch
    from safetensors.torch import load_file

    ckpt = out / "checkpoints" / "step_000004"
    state = torch.load(ckpt / "trainer_state.pt", map_location="cpu", weights_only=False)
    weights = {}
    for file in sorted((ckpt / "model").glob("*.safetensors")):
        weights.update(load_file(file))
    return state, weights


def test_training_killed_mid_step_resumes_identically_and_skips_a_half_written_checkpoint(train_setup, tmp_path):
    import torch

    from agents.train import TrainConfig, Trainer

    # The uninterrupted reference, in this process (the subprocesses below use as many threads).
    reference = tmp_path / "reference"
    trainer = Trainer(TrainConfig.from_yaml(train_config(train_setup, reference)))
    try:
        trainer.train(progress=None)
    finally:
        trainer.close()
    threads = {"OMP_NUM_THREADS": str(torch.get_num_threads())}

    out = tmp_path / "run"
    args = ["train", "--config", str(train_config(train_setup, out))]
    # Killed during the update of step 4: steps 1-3 ran and were logged, step 2 is the last checkpoint.
    killed = run_cli(tmp_path, args, kill_at="Trainer.optimize", after=3, env=threads)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert [r["step"] for r in metrics_rows(out)] == [1, 2, 3]
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["step_000002"]
    # What a kill while writing the checkpoint of step 4 leaves: its temporary folder, a file cut short.
    partial = out / "checkpoints" / "step_000004.tmp-killed"
    (partial / "model").mkdir(parents=True)
    state_bytes = (out / "checkpoints" / "step_000002" / "trainer_state.pt").read_bytes()
    (partial / "trainer_state.pt").write_bytes(state_bytes[: len(state_bytes) // 2])
    # Resumed (here, to save a process start): from step 2, not the half-written folder, to the end.
    trainer = Trainer(TrainConfig.from_yaml(train_config(train_setup, out)))
    try:
        assert trainer.step == 2
        trainer.train(progress=None)
    finally:
        trainer.close()
    assert_same_training(out, reference)


def assert_same_training(out: Path, reference: Path) -> None:
    """A finished (resumed) run at ``out`` ends as the uninterrupted ``reference``: the same weights and
    optimizer state, one metrics row per step equal to the reference's, and only complete checkpoints."""
    import torch

    ref_state, ref_weights = final_state(reference)
    state, weights = final_state(out)
    assert state["step"] == ref_state["step"] == 4
    assert weights.keys() == ref_weights.keys()
    for name in weights:
        assert torch.equal(weights[name], ref_weights[name]), name
    a, b = state["optimizer"], ref_state["optimizer"]
    assert a["param_groups"] == b["param_groups"] and a["state"].keys() == b["state"].keys()
    for key in a["state"]:
        for name in a["state"][key]:
            assert torch.equal(torch.as_tensor(a["state"][key][name]), torch.as_tensor(b["state"][key][name]))
    # One metrics row per step (the replayed step 3 is not logged twice), equal to the reference's.
    rows, ref_rows = metrics_rows(out), metrics_rows(reference)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]

    def untimed(row: dict) -> dict:
        return {k: v for k, v in row.items() if not k.startswith("time/")}

    assert [untimed(r) for r in rows] == [untimed(r) for r in ref_rows]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000002", "step_000004"]


def test_a_checkpoint_is_loaded_as_data_only(train_setup, tmp_path):
    """A trainer_state.pt holding a pickled callable is refused (weights_only), not executed."""
    import pickle

    import torch

    from agents.train import TrainConfig, TrainConfigError, Trainer

    out = tmp_path / "run"
    trainer = Trainer(TrainConfig.from_yaml(train_config(train_setup, out), ["steps=2"]))
    try:
        trainer.train(progress=None)
    finally:
        trainer.close()
    ckpt = out / "checkpoints" / "step_000002"
    state = torch.load(ckpt / "trainer_state.pt", map_location="cpu", weights_only=False)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    state["config"]["payload"] = Payload()
    torch.save(state, ckpt / "trainer_state.pt", pickle_module=pickle)
    with pytest.raises(TrainConfigError, match="cannot load the checkpoint"):
        Trainer(TrainConfig.from_yaml(train_config(train_setup, out), ["steps=3"]))
    assert not marker.exists()
