"""The evaluation harness (agents/eval, ``wideseek eval``) on the real corpus and generated tasks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agents.episode import Episode
from agents.eval import EvalError, EvalSpec, RunMismatchError, evaluate, read_episodes, select_tasks
from wideseek_env.cli import main
from wideseek_env.tasks import load_tasks

from task_helpers import save_test_tasks_by_kind


@pytest.fixture(scope="module")
def task_file(ottqa_corpus, tmp_path_factory) -> Path:
    """Eight tasks of the generated test split (3 enrich, 3 transcribe, 2 union), in a file of their own."""
    path = tmp_path_factory.mktemp("eval") / "tasks.jsonl"
    return save_test_tasks_by_kind(ottqa_corpus, path, enrich=3, transcribe=3, union=2)


def _spec(task_file, ottqa_corpus, **kw) -> EvalSpec:
    return EvalSpec(**{"policy": "scripted", "tasks": str(task_file), "corpus": str(ottqa_corpus), "parallel": 3, **kw})


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines() if line.strip()]


def _keys(out: Path) -> list[tuple[str, int]]:
    return [(r["task_id"], r["sample"]) for r in _lines(out)]


# ------------------------------------------------------------------------------------------ runs


def test_oracle_scores_one(task_file, ottqa_corpus, tmp_path):
    s = evaluate(_spec(task_file, ottqa_corpus, policy="oracle"), tmp_path / "o", progress=False, print_table=False)
    assert s["complete"] and s["tasks"] == s["tasks_done"] == 8 and s["episodes_done"] == 8
    for name in ("item_f1_avg", "item_f1_max", "row_f1_avg", "row_f1_max", "success_avg", "success_pass"):
        assert s[name] == 1.0, name
    assert set(s["by_kind"]) == {"enrich", "transcribe", "union"}
    assert all(k["item_f1_avg"] == 1.0 for k in s["by_kind"].values())
    assert s["stats"]["subagents_per_episode"] == 0 and s["stats"]["tool_calls_per_episode_total"] == 0
    recs = _lines(tmp_path / "o")
    assert all(r["scores"]["success"] == 1.0 and r["error"] is None and r["answer"] for r in recs)


def test_scripted_eval_records_and_summary(task_file, ottqa_corpus, tmp_path, capsys):
    out = tmp_path / "s"
    s = evaluate(_spec(task_file, ottqa_corpus, samples=2), out, progress=False)
    table = capsys.readouterr().out
    assert "item F1 avg@2" in table and "enrich" in table and "episodes 16/16" in table
    assert s["complete"] and s["episodes_done"] == 16 and s["samples"] == 2
    assert 0.5 < s["item_f1_avg"] <= s["item_f1_max"] <= 1.0
    assert s["success_avg"] <= s["success_pass"]
    st = s["stats"]
    assert st["episodes"] == 16 and st["subagents_per_episode"] >= 1 and st["tool_calls_per_episode"]["access"] > 0
    assert st["answer_parsed_rate"] == 1.0 and st["truncated_rate"] == 0.0
    assert s["by_kind"]["enrich"]["stats"]["subagents_per_episode"] > s["by_kind"]["transcribe"]["stats"]["subagents_per_episode"]
    assert json.loads((out / "summary.json").read_text())["item_f1_avg"] == s["item_f1_avg"]
    recs = _lines(out)
    assert sorted(_keys(out)) == sorted({(r["task_id"], r["sample"]) for r in recs}) and len(recs) == 16
    r = recs[0]
    assert set(r) >= {"task_id", "sample", "kind", "answer", "scores", "metrics", "error", "seconds"}
    assert set(r["scores"]) >= {"item_f1", "row_f1", "success", "item_precision", "item_recall"}
    assert set(r["metrics"]) >= {"lead_turns", "total_turns", "tool_calls", "subagents", "subagent_failures"}
    run = json.loads((out / "run.json").read_text())
    assert run["identity"]["policy"] == "scripted" and len(run["identity"]["tasks_sha256"]) == 64


def test_single_agent_and_width(task_file, ottqa_corpus, tmp_path):
    single = evaluate(_spec(task_file, ottqa_corpus, single_agent=True, limit=4), tmp_path / "single",
                      progress=False, print_table=False)
    assert single["stats"]["subagents_per_episode"] == 0 and single["item_f1_avg"] > 0.5
    one = evaluate(_spec(task_file, ottqa_corpus, subagents=1, limit=4), tmp_path / "k1", progress=False,
                   print_table=False)
    assert one["run"]["max_subagents_per_call"] == 1
    for r in _lines(tmp_path / "k1"):
        assert r["metrics"]["subagents"] <= r["metrics"]["tool_calls"].get("call_subagent", 0)


def test_task_selection_is_a_seeded_prefix(task_file):
    tasks = load_tasks(task_file)
    a, b = select_tasks(tasks, 3, 0), select_tasks(tasks, 6, 0)
    assert [t.id for t in a] == [t.id for t in b[:3]]
    assert sorted(t.id for t in select_tasks(tasks, None, 5)) == sorted(t.id for t in tasks)
    assert [t.id for t in select_tasks(tasks, 8, 1)] != [t.id for t in select_tasks(tasks, 8, 0)]


# ------------------------------------------------------------------------------------------ resume


def test_resume_after_limit_then_full(task_file, ottqa_corpus, tmp_path):
    out = tmp_path / "r"
    first = evaluate(_spec(task_file, ottqa_corpus, limit=3), out, progress=False, print_table=False)
    assert first["episodes_done"] == 3 and first["run"]["episodes_run_now"] == 3
    before = _lines(out)
    full = evaluate(_spec(task_file, ottqa_corpus), out, progress=False, print_table=False)
    assert full["run"]["episodes_reused"] == 3 and full["run"]["episodes_run_now"] == 5
    after = _lines(out)
    assert after[:3] == before and len(after) == 8 and len(set(_keys(out))) == 8
    again = evaluate(_spec(task_file, ottqa_corpus), out, progress=False, print_table=False)
    assert again["run"]["episodes_run_now"] == 0 and len(_lines(out)) == 8
    assert again["item_f1_avg"] == full["item_f1_avg"]
    more = evaluate(_spec(task_file, ottqa_corpus, samples=2), out, progress=False, print_table=False)
    assert more["run"]["episodes_run_now"] == 8 and len(set(_keys(out))) == 16 == len(_lines(out))


def test_resume_after_interruption_and_truncated_line(task_file, ottqa_corpus, tmp_path, monkeypatch):
    out = tmp_path / "i"
    real = Episode.record
    calls = {"n": 0}

    def flaky(episode, kind):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(episode, kind)

    monkeypatch.setattr(Episode, "record", flaky)
    with pytest.raises(KeyboardInterrupt):
        evaluate(_spec(task_file, ottqa_corpus), out, progress=False, print_table=False)
    monkeypatch.setattr(Episode, "record", real)
    assert len(_lines(out)) == 3
    # a run killed while writing a line: the partial last line is cut off and the episode run again
    good = (out / "episodes.jsonl").read_bytes()
    partial = json.dumps(_lines(out)[0] | {"task_id": "x-never"})[:40]
    (out / "episodes.jsonl").write_bytes(good + partial.encode())
    s = evaluate(_spec(task_file, ottqa_corpus), out, progress=False, print_table=False)
    assert s["complete"] and s["run"]["episodes_reused"] == 3 and s["run"]["episodes_run_now"] == 5
    keys = _keys(out)
    assert len(keys) == len(set(keys)) == 8 and all(k[0] != "x-never" for k in keys)
    assert (out / "episodes.jsonl").read_bytes().startswith(good)


def test_read_episodes_rejects_a_corrupt_middle_line(tmp_path):
    path = tmp_path / "episodes.jsonl"
    rec = {"task_id": "a", "sample": 0, "scores": {}}
    path.write_text(json.dumps(rec) + "\n{broken\n" + json.dumps(rec | {"task_id": "b"}) + "\n")
    with pytest.raises(EvalError, match=":2: not an episode record"):
        read_episodes(path)
    path.write_text(json.dumps(rec) + "\n" + json.dumps(rec) + "\n")  # a duplicate pair: the first wins
    assert list(read_episodes(path)) == [("a", 0)]


def test_mismatched_config_is_a_clear_error(task_file, ottqa_corpus, tmp_path):
    out = tmp_path / "m"
    evaluate(_spec(task_file, ottqa_corpus, limit=2), out, progress=False, print_table=False)
    with pytest.raises(RunMismatchError, match=r"differs in: .*env\.max_subagents_per_call.*--overwrite"):
        evaluate(_spec(task_file, ottqa_corpus, limit=2, subagents=3), out, progress=False, print_table=False)
    with pytest.raises(RunMismatchError, match="seed"):
        evaluate(_spec(task_file, ottqa_corpus, limit=2, seed=7), out, progress=False, print_table=False)
    s = evaluate(_spec(task_file, ottqa_corpus, limit=2, subagents=3), out, overwrite=True, progress=False,
                 print_table=False)
    assert s["run"]["episodes_run_now"] == 2 and len(_lines(out)) == 2
    assert json.loads((out / "run.json").read_text())["identity"]["env"]["max_subagents_per_call"] == 3



def test_main_job_replaces_its_own_stale_run_but_refuses_an_explicit_out(task_file, ottqa_corpus, tmp_path,
                                                                          monkeypatch):
    from agents.demo import run_scripted_eval

    monkeypatch.setenv("WIDESEEK_HOME", str(tmp_path / "home"))
    tasks_dir = tmp_path / "tasks"
    tasks_dir.mkdir()
    (tasks_dir / "test.jsonl").write_bytes(Path(task_file).read_bytes())
    assert run_scripted_eval(str(ottqa_corpus), tasks_dir, limit=2)["run"]["episodes_run_now"] == 2
    # The task set changes (as after 'wideseek tasks generate' with a newer generator): the demo's own
    # directory is re-run, not refused.
    first_task = (tasks_dir / "test.jsonl").read_text().splitlines()[0]
    (tasks_dir / "test.jsonl").write_text(first_task + "\n")
    s = run_scripted_eval(str(ottqa_corpus), tasks_dir, limit=2)
    assert s["run"]["episodes_run_now"] == 1
    mine = tmp_path / "mine"
    evaluate(_spec(task_file, ottqa_corpus, limit=2), mine, progress=False, print_table=False)
    with pytest.raises(RunMismatchError):
        run_scripted_eval(str(ottqa_corpus), tasks_dir, limit=2, out=str(mine))


# ------------------------------------------------------------------------------------------ CLI


def test_cli_runs_and_prints_the_table(task_file, ottqa_corpus, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["eval", "--policy", "scripted", "--tasks", str(task_file), "--corpus", str(ottqa_corpus),
               "--out", str(out), "--limit", "2", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "item F1 avg@1" in text and "episodes 2/2" in text
    assert len(_lines(out)) == 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--policy", "hf"], "--policy hf needs --model"),
        (["--policy", "openai"], "--policy openai needs --base-url"),
        (["--policy", "scripted", "--subagents", "2", "--single-agent"], "exclude each other"),
        (["--policy", "scripted", "--samples", "0"], "--samples must be an integer >= 1"),
        (["--policy", "scripted", "--limit", "0"], "--limit must be an integer >= 1"),
        (["--policy", "scripted", "--tasks", "/nonexistent/tasks.jsonl"], "task file /nonexistent/tasks.jsonl does not exist"),
        (["--policy", "scripted", "--corpus", "/nonexistent/corpus"], "corpus directory /nonexistent/corpus does not exist"),
        (["--policy", "hf", "--model", "/nonexistent/model"], "is not a directory"),
    ],
)
def test_cli_errors_are_one_line(task_file, ottqa_corpus, tmp_path, capsys, extra, message):
    args = ["eval", "--tasks", str(task_file), "--corpus", str(ottqa_corpus), "--out", str(tmp_path / "e"), "--no-progress"]
    args += extra
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wideseek: error: ") and message in err and "\n" not in err


def test_cli_missing_extra_names_the_extra(task_file, ottqa_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # "import vllm" raises ImportError
    model = tmp_path / "model"
    model.mkdir()
    rc = main(["eval", "--policy", "vllm", "--model", str(model), "--tasks", str(task_file), "--corpus",
               str(ottqa_corpus), "--out", str(tmp_path / "v"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "wideseek-env[vllm" in err and "\n" not in err


def test_cli_argparse_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--policy", "nonsense"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--policy", "scripted", "--samples", "two"])
    assert exc.value.code == 2


def test_cli_busy_out_dir(task_file, ottqa_corpus, tmp_path, capsys):
    import fcntl

    out = tmp_path / "busy"
    out.mkdir()
    with open(out / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        rc = main(["eval", "--policy", "scripted", "--tasks", str(task_file), "--corpus", str(ottqa_corpus),
                   "--out", str(out), "--no-progress"])
    assert rc == 2 and "another 'wideseek eval' is writing" in capsys.readouterr().err


def test_hf_policy_smoke(task_file, ottqa_corpus, tmp_path):
    """The tiny random model through the transformers policy: the LLM path of the harness runs end to end."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    s = evaluate(_spec(task_file, ottqa_corpus, policy="hf", model="tiny", limit=2, max_tokens=8, parallel=2,
                       temperature=0.0), tmp_path / "hf", progress=False, print_table=False)
    assert s["complete"] and s["episodes_done"] == 2
    for r in _lines(tmp_path / "hf"):
        assert r["scores"]["item_f1"] == 0.0  # random weights answer noise
        assert "generated_tokens" not in r["metrics"] or r["metrics"]["generated_tokens"] >= 0


# ------------------------------------------------------------------------------------------ env overrides


def test_cli_env_overrides_reach_the_env_and_the_run_identity(task_file, ottqa_corpus, tmp_path, capsys):
    out = tmp_path / "env"
    args = ["eval", "--policy", "scripted", "--tasks", str(task_file), "--corpus", str(ottqa_corpus),
            "--out", str(out), "--limit", "2", "--no-progress"]
    assert main(args + ["--env", "page_chars=900", "--env", "lead_max_turns=4"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["identity"]["env"]["page_chars"] == 900 and run["identity"]["env"]["lead_max_turns"] == 4
    # a different env setting is a different run
    assert main(args + ["--env", "page_chars=901", "--env", "lead_max_turns=4"]) == 2
    assert "differs in: env.page_chars" in capsys.readouterr().err


@pytest.mark.parametrize("bad, message", [
    ("page_chars", "must look like KEY=VALUE"),
    ("no_such_field=1", "not an env setting"),
    ("page_chars=0", "page_chars must be an integer >= 1"),
])
def test_cli_bad_env_override_is_one_line(task_file, ottqa_corpus, tmp_path, capsys, bad, message):
    rc = main(["eval", "--policy", "scripted", "--tasks", str(task_file), "--corpus", str(ottqa_corpus),
               "--out", str(tmp_path / "bad"), "--no-progress", "--env", bad])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and "\n" not in err


def test_env_override_changes_what_the_agent_reads(task_file, ottqa_corpus, tmp_path):
    """A page cut at 300 characters leaves the scripted baseline less to read than the default 25,000."""
    full = evaluate(_spec(task_file, ottqa_corpus, limit=3), tmp_path / "full", progress=False, print_table=False)
    cut = evaluate(_spec(task_file, ottqa_corpus, limit=3, env={"page_chars": 300}), tmp_path / "cut",
                   progress=False, print_table=False)
    assert cut["item_f1_avg"] < full["item_f1_avg"]


# ------------------------------------------------------------------------------------------ transcripts


def test_transcripts_hold_every_agents_conversation_and_tokens(task_file, ottqa_corpus, tmp_path):
    pytest.importorskip("torch")
    from transformers import AutoTokenizer

    from agents.setup import resolve_model

    out = tmp_path / "tr"
    evaluate(_spec(task_file, ottqa_corpus, policy="hf", model="tiny", limit=2, max_tokens=8, parallel=2,
                   temperature=0.0, save_transcripts=True), out, progress=False, print_table=False)
    records = [json.loads(line) for line in (out / "transcripts.jsonl").read_text().splitlines()]
    assert [(r["task_id"], r["sample"]) for r in records] == _keys(out)
    tok = AutoTokenizer.from_pretrained(resolve_model("tiny"))
    for r in records:
        lead = r["agents"]["lead"]
        assert lead["parent"] is None and lead["messages"][0]["role"] == "system"
        assert len(lead["turns"]) == len(lead["texts"]) >= 1
        for turn, text in zip(lead["turns"], lead["texts"]):
            # the saved token trajectory decodes to exactly the text the env received
            assert tok.decode(turn["response_ids"], skip_special_tokens=True) == text
            assert len(turn["mask"]) == len(turn["response_ids"]) and turn["prompt_ids"]
        # and its first prompt re-renders from the saved system prompt, task and tool schemas to the same ids
        first = tok.apply_chat_template(lead["messages"][:2], tools=lead["tools"], tokenize=False,
                                        add_generation_prompt=True)
        assert lead["turns"][0]["prompt_ids"] == tok.encode(first, add_special_tokens=False)


def test_show_prints_the_episode_as_a_tree(task_file, ottqa_corpus, tmp_path, capsys):
    out = tmp_path / "show"
    assert main(["eval", "--policy", "scripted", "--tasks", str(task_file), "--corpus", str(ottqa_corpus),
                 "--out", str(out), "--limit", "1", "--no-progress", "--save-transcripts"]) == 0
    capsys.readouterr()
    assert main(["show", str(out), "--episode", "0", "--width", "120"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    lead_at = lines.index("=== lead")
    subs = [i for i, line in enumerate(lines) if line.startswith("    === sub_")]
    assert subs and all(i > lead_at for i in subs)  # subagents indented under the lead's call
    assert any("call_subagent" in line for line in lines[lead_at:subs[0]])
    assert main(["show", str(out), "--episode", "5"]) == 2
    assert "out of range" in capsys.readouterr().err
