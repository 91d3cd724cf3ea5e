"""Demonstrations (``wideseek demos``), compact prompts and supervised fine-tuning (``wideseek sft``) with the
tiny model: the loss mask covers exactly the assistant tokens, only good episodes are kept, SFT lowers the
loss, and an SFT checkpoint is a starting point of ``wideseek train``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from agents.demos import DemoConfig, TeacherForcedPolicy, write_demos  # noqa: E402
from wideseek_env.tasks import save_tasks  # noqa: E402

ENV = {"mode": "single"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from agents.models import tiny_test_model

    return tiny_test_model(tmp_path_factory.getbasetemp() / "tiny-model-sft")


@pytest.fixture(scope="module")
def train_tasks(ottqa_corpus, generated_tasks, tmp_path_factory) -> Path:
    by_kind = {k: sorted((t for t in generated_tasks["train"] if t.kind == k), key=lambda t: t.id)
               for k in ("transcribe", "enrich", "described")}
    # enrich and described sets: lower scores for the scripted baseline, so thresholds separate
    tasks = by_kind["transcribe"][:4] + by_kind["enrich"][:3] + by_kind["described"][:3]
    path = tmp_path_factory.getbasetemp() / "demo-train.jsonl"
    save_tasks(tasks, path)
    return path


@pytest.fixture(scope="module")
def demos_all(tiny, train_tasks, ottqa_corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.getbasetemp() / "demos-all"
    write_demos(DemoConfig(out=str(out), model=str(tiny), tasks=str(train_tasks), corpus=str(ottqa_corpus),
                           preset="compact", env=ENV, min_f1=0.0), progress=False)
    return out


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ----------------------------------------------------------------------------------------- demos


def test_loss_mask_covers_exactly_the_assistant_tokens(tiny, train_tasks, ottqa_corpus):
    from transformers import AutoTokenizer

    from agents.episode import EpisodeJob
    from agents.rollout import iter_episodes
    from agents.setup import EnvSetup, build_policy, env_config
    from wideseek_env.tasks import load_tasks

    tok = AutoTokenizer.from_pretrained(str(tiny))
    config = env_config("compact", ENV)
    tasks = list(load_tasks(train_tasks))[:2]
    setup = EnvSetup.build(tasks, config, corpus=str(ottqa_corpus))
    policy = TeacherForcedPolicy(build_policy("scripted", env=config), tok)
    jobs = [EpisodeJob(t.id, f"e{i}", 0, i) for i, t in enumerate(tasks)]
    episodes = list(iter_episodes(setup.make_env, policy, jobs, keep_transcripts=True))
    setup.close()
    eot = policy.end_of_turn_ids()[:1]
    for ep in episodes:
        traj = ep.trajectories["agent"]
        ids, mask = traj.full_ids, traj.loss_mask
        # the whole sequence is the chat template's rendering of the conversation the env saw
        assert tok.decode(ids) == tok.apply_chat_template(ep.messages["agent"], tools=ep.tools["agent"],
                                                          tokenize=False)
        spans, cur = [], []
        for i, m in zip(ids, mask):
            if m:
                cur.append(i)
            elif cur:
                spans.append(cur)
                cur = []
        if cur:
            spans.append(cur)
        assert spans == [tok.encode(text, add_special_tokens=False) + eot for text in ep.texts["agent"]]


def test_corrupt_access_call_drops_a_title_letter_or_the_closing_quote():
    import random

    from agents.demos import corrupt_access_call

    url = "https://en.wikipedia.org/wiki/List_of_GE_locomotives"
    text = ('<tool_call>\n{"name": "access", "arguments": {"urls": [{"url": "' + url + '", "info_to_extract": "t"}]}}'
            "\n</tool_call>")
    seen = set()
    for seed in range(20):
        broken = corrupt_access_call(text, random.Random(seed))
        assert broken != text and broken.startswith('<tool_call>\n{"name": "access"')
        if len(broken) == len(text) - 1 and url not in broken:
            seen.add("typo")  # one letter of the title gone, the JSON intact
            json.loads(broken.split("\n")[1])
        else:
            seen.add("json")
            assert broken.replace(url + ",", url + '",') == text
    assert seen == {"typo", "json"}
    assert corrupt_access_call('<tool_call>\n{"name": "search", "arguments": {"query": "x"}}\n</tool_call>',
                               random.Random(0)) is None
    assert corrupt_access_call("| a | b |", random.Random(0)) is None


def test_corrupt_access_call_also_leaves_out_a_titles_punctuation():
    import random

    from agents.demos import corrupt_access_call

    text = ('<tool_call>\n{"name": "access", "arguments": {"urls": [{"url": '
            '"https://en.wikipedia.org/wiki/Whistler,_British_Columbia", "info_to_extract": "t"}]}}\n</tool_call>')
    broken = {corrupt_access_call(text, random.Random(seed)).split("\n")[1] for seed in range(30)}
    plain = text.split("\n")[1].replace("Whistler,_British", "Whistler_British")
    assert plain in broken
    misses = [json.loads(call) for call in broken if call.count('"') == text.count('"')]  # quotes all closed
    assert misses and all(not m["arguments"]["urls"][0]["url"].endswith("Whistler,_British_Columbia")
                          for m in misses)


def test_recovery_demos_train_the_real_call_after_a_corrupted_one(tiny, train_tasks, ottqa_corpus):
    from transformers import AutoTokenizer

    from agents.episode import EpisodeJob
    from agents.rollout import iter_episodes
    from agents.setup import EnvSetup, build_policy, env_config
    from wideseek_env.tasks import load_tasks

    tok = AutoTokenizer.from_pretrained(str(tiny))
    config = env_config("compact", {**ENV, "access_suggestions": 3, "invalid_call": "error"})
    tasks = [t for t in load_tasks(train_tasks) if t.kind == "transcribe"][:3]
    setup = EnvSetup.build(tasks, config, corpus=str(ottqa_corpus))
    jobs = [EpisodeJob(t.id, f"e{i}", 0, i) for i, t in enumerate(tasks)]
    plain = list(iter_episodes(setup.make_env, TeacherForcedPolicy(build_policy("scripted", env=config), tok),
                               jobs, keep_transcripts=True))
    detoured = list(iter_episodes(setup.make_env,
                                  TeacherForcedPolicy(build_policy("scripted", env=config), tok, recovery=1.0),
                                  jobs, keep_transcripts=True))
    setup.close()
    for before, after in zip(plain, detoured):
        texts, traj = after.texts["agent"], after.trajectories["agent"]
        assert len(texts) == len(before.texts["agent"]) + 1
        assert texts[1:] == before.texts["agent"]  # the real call, then the demonstration as it was
        reply = next(m for m in after.messages["agent"] if m["role"] == "tool")["content"]
        assert "No useful information is found under this URL" in reply or reply.startswith("Error:")
        assert sum(traj.turns[0].mask) == 0 and all(sum(t.mask) == len(t.mask) for t in traj.turns[1:])
        assert after.scores()["item_f1"] == before.scores()["item_f1"]


def test_recovery_share_must_be_in_0_1(tiny):
    from agents.demos import DemosError

    with pytest.raises(DemosError, match="recovery"):
        TeacherForcedPolicy(None, None, recovery=1.5)


def test_demos_keep_only_episodes_at_or_above_min_f1(tiny, train_tasks, ottqa_corpus, demos_all, tmp_path):
    played = {r["task_id"]: r["item_f1"] for r in _rows(demos_all / "episodes.jsonl")}
    assert len(played) == 10
    scores = sorted(set(played.values()))
    assert len(scores) >= 2, "the scripted baseline scored every task alike: no threshold separates them"
    threshold = scores[-1]  # only the best episodes pass
    out = tmp_path / "demos-best"
    manifest = write_demos(DemoConfig(out=str(out), model=str(tiny), tasks=str(train_tasks),
                                      corpus=str(ottqa_corpus), preset="compact", env=ENV, min_f1=threshold),
                           progress=False)
    kept = {r["task_id"] for r in _rows(out / "demos.jsonl")}
    assert kept == {t for t, f1 in played.items() if f1 >= threshold}
    assert manifest["episodes_played"] == 10 and manifest["episodes_kept"] == len(kept) < 10


def test_demos_resume_without_playing_again(tiny, train_tasks, ottqa_corpus, demos_all):
    before = (demos_all / "demos.jsonl").read_text()
    manifest = write_demos(DemoConfig(out=str(demos_all), model=str(tiny), tasks=str(train_tasks),
                                      corpus=str(ottqa_corpus), preset="compact", env=ENV, min_f1=0.0),
                           progress=False)
    assert (demos_all / "demos.jsonl").read_text() == before
    assert manifest["episodes_played"] == 10


# ----------------------------------------------------------------------------------------- compact prompts


@pytest.mark.parametrize("role", ["agent", "subagent", "lead"])
def test_compact_prompts_fit_a_few_hundred_tokens(tiny, ottqa_retriever, role):
    from transformers import AutoTokenizer

    from wideseek_env import prompts
    from wideseek_env.config import EnvConfig
    from wideseek_env.tools.base import openai_schema
    from wideseek_env.tools.defaults import default_tools, subagent_tool

    tok = AutoTokenizer.from_pretrained(str(tiny))

    def cost(config: EnvConfig) -> int:
        tools = [subagent_tool(config)] if role == "lead" else default_tools(ottqa_retriever, config)
        text = tok.apply_chat_template([{"role": "system", "content": prompts.system_prompt(role, config.prompts)}],
                                       tools=[openai_schema(t) for t in tools], tokenize=False)
        return len(tok.encode(text, add_special_tokens=False))

    compact, paper = cost(EnvConfig.from_preset("compact")), cost(EnvConfig.from_preset("rlinf"))
    assert compact < 0.4 * paper


def test_section_access_returns_the_requested_table_whole():
    from wideseek_env.tools.page_selection import select_section

    rows = "\n".join(f"| r{i} | {i} |" for i in range(200))
    page = f"Lead text.\n\n## Early years\n\nBorn somewhere.\n\n## Results -- 2001\n\n| Team | Points |\n| --- | --- |\n{rows}\n\n## Later\n\nMore."
    out = select_section(page, "Results -- 2001 table: Team, Points", budget=100_000)
    assert out.startswith("## Results -- 2001") and out.endswith("| r199 | 199 |")


# ----------------------------------------------------------------------------------------- SFT


def _sft(tmp: Path, tiny: Path, demos: Path, **kw):
    from agents.sft import SFTConfig

    base = dict(demos=[str(demos)], model=str(tiny), steps=8, batch_size=4, micro_batch_size=2, lr=2e-3,
                lr_warmup_steps=0, lr_schedule="constant", heldout_fraction=0.0, output_dir=str(tmp),
                save_every=0, logger="jsonl", compute_dtype="none", gradient_checkpointing=False)
    base.update(kw)
    return SFTConfig(**base)


def test_sft_lowers_the_loss_on_the_demonstrations(tiny, demos_all, tmp_path):
    from agents.sft import SFTRun

    run = SFTRun(_sft(tmp_path, tiny, demos_all))
    before = run.loss_on(run.train_set)
    run.train(progress=False)
    after = run.loss_on(run.train_set)
    run.close()
    assert after < 0.9 * before


def test_sft_resume_continues_the_same_run(tiny, demos_all, tmp_path):
    from agents.sft import run_sft
    from agents.train.checkpoints import list_checkpoints

    whole = run_sft(_sft(tmp_path / "whole", tiny, demos_all, steps=4), progress=False)
    run_sft(_sft(tmp_path / "parts", tiny, demos_all, steps=2), progress=False)
    resumed = run_sft(_sft(tmp_path / "parts", tiny, demos_all, steps=4, resume="auto"), progress=False)
    assert [c.name for c in list_checkpoints(tmp_path / "parts" / "checkpoints")] == ["step_000002", "step_000004"]
    from safetensors.torch import load_file

    a, b = load_file(whole / "model" / "model.safetensors"), load_file(resumed / "model" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_an_sft_checkpoint_starts_wideseek_train(tiny, demos_all, tmp_path):
    from safetensors.torch import load_file

    from agents.sft import run_sft
    from agents.train import TrainConfig, Trainer
    from wideseek_env.table.schema import ColumnSpec, Task

    toy = tmp_path / "toy.jsonl"
    save_tasks([Task(id=f"toy{i}", query=q, language="en", required_columns=["name"], unique_columns=["name"],
                     columns={"name": ColumnSpec("name")}, gold=[{"name": "x"}])
                for i, q in enumerate(["Name a colour.", "Name a city."])], toy)
    ckpt = run_sft(_sft(tmp_path / "sft", tiny, demos_all, steps=2), progress=False)
    cfg = TrainConfig(model=str(ckpt), tasks=str(toy), tools="none",
                      preset="single", steps=1, tasks_per_step=2, group_size=2, max_tokens=8, lr=1e-3,
                      output_dir=str(tmp_path / "grpo"), save_every=0, logger="jsonl", seed=1)
    trainer = Trainer(cfg)
    try:
        saved = load_file(ckpt / "model" / "model.safetensors")
        state = trainer.model.state_dict()
        assert all(torch.equal(saved[k], state[k]) for k in saved)
        trainer.train(progress=None)
    finally:
        trainer.close()
    assert (tmp_path / "grpo" / "checkpoints" / "step_000001" / "model" / "config.json").exists()
