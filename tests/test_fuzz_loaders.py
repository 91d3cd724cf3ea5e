"""Every loader fuzzed: bad input gives the documented error (or a result), never another exception.

- corpus readers of each format (ottqa, dpr, rlinf, jsonl): random and garbled lines, random bytes,
  truncated or damaged compressed files (xz, gz, bz2), lone surrogates: ``CorpusFormatError`` or
  well-formed records; and ``build_corpus`` on such input: a corpus or ``CorpusFormatError``;
- task loaders (ours, WideSearch with its gold CSV, WideSeek-R1): random JSON lines and random
  CSV: ``TaskFormatError`` or valid tasks;
- the markdown table extractor and the Hermes tool-call parser: a result, never an exception;
- configs: ``EnvConfig`` from random dicts (``ConfigError``), the trainer's YAML config
  (``TrainConfigError``).

Hypothesis deadlines catch hangs (an example that runs for seconds fails).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from wideseek_env.corpus.readers import READERS, Passage, StoredPage
from wideseek_env.corpus.types import Page, Table
from wideseek_env.errors import CorpusFormatError, TaskFormatError

from fuzz_settings import examples

FAST = settings(max_examples=examples(150), deadline=2000, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=examples(12), deadline=20000, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def scratch():
    """A temporary directory per example (hypothesis runs many examples in one test call)."""
    path = Path(tempfile.mkdtemp(prefix="wideseek-fuzz-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- strategies -------------------------------------------------------------------------------------

# JSON values, biased towards what the readers look at.
keys = st.sampled_from(["url", "title", "text", "contents", "id", "uid", "header", "data", "intro",
                        "section_title", "section_text", "wikipedia_id"]) | st.text(max_size=8)
scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=40)
           | st.sampled_from(["/wiki/A", "/wiki/", "https://en.wikipedia.org/wiki/B", "wiki/C_d",
                              "https://example.com/x", "file:///etc/passwd", "", " ", "\ud800",
                              "A\udc00B", "\x00", "https://en.wikipedia.org/w/index.php?title=E%20f"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(keys, inner, max_size=5), max_leaves=20)
objects = st.dictionaries(keys, json_values, max_size=8)

# A cell of an OTT-QA table: usually [text, [links]], sometimes not.
cell = st.one_of(st.tuples(st.text(max_size=20), st.lists(scalars, max_size=3)).map(list), json_values)
table_object = st.fixed_dictionaries(
    {"uid": scalars, "url": scalars, "header": st.lists(cell, max_size=4) | json_values,
     "data": st.lists(st.lists(cell, max_size=4) | json_values, max_size=4) | json_values},
    optional={"title": scalars, "intro": scalars, "section_title": scalars, "section_text": scalars},
)


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=True)  # lone surrogates become \\udXXX escapes


lines_of = lambda objs: st.lists(objs.map(dumps) | st.text(max_size=60) | st.just(""), max_size=8)  # noqa: E731
garbled = st.lists(st.sampled_from(list('{}[]":,\\ \n\tabc/wiki\x00\xe9') + ['"url"', '"text"', "\\ud800"]),
                   max_size=120).map("".join)


def check_records(records: list) -> None:
    """What the builder relies on: records of the four kinds with well-typed, encodable fields."""
    for record in records:
        assert isinstance(record, (Page, StoredPage, Passage, Table)), record
        for name in ("url", "title", "text") if not isinstance(record, Table) else ("uid", "url", "title"):
            value = getattr(record, name)
            assert isinstance(value, str)
            value.encode("utf-8")  # no lone surrogates: SQLite and Tantivy need valid UTF-8
        assert record.url.startswith("https://en.wikipedia.org/wiki/")
        if isinstance(record, Table):
            for row in [record.header, *record.rows]:
                for value in row:
                    assert isinstance(value, str)
                    value.encode("utf-8")


def read_all(source: str, path: Path) -> list:
    try:
        records = list(READERS[source](path))
    except CorpusFormatError as exc:
        assert str(path.name) in str(exc) or str(path) in str(exc)
        return []
    check_records(records)
    return records


# -- corpus readers ---------------------------------------------------------------------------------


@FAST
@given(lines=lines_of(objects) | lines_of(table_object), garbage=garbled)
def test_jsonl_reader_on_random_lines(lines, garbage):
    with scratch() as tmp:
        path = tmp / "pages.jsonl"
        path.write_text("\n".join(lines + [garbage]), encoding="utf-8", errors="surrogatepass")
        read_all("jsonl", path)


@FAST
@given(tables=lines_of(table_object), passages=lines_of(objects))
def test_ottqa_reader_on_random_tables_and_passages(tables, passages):
    with scratch() as tmp:
        (tmp / "train_tables.jsonl").write_text("\n".join(tables), encoding="utf-8", errors="surrogatepass")
        (tmp / "train_passages.jsonl").write_text("\n".join(passages), encoding="utf-8", errors="surrogatepass")
        read_all("ottqa", tmp)


@FAST
@given(pages=lines_of(objects), corpus=lines_of(objects), which=st.sampled_from(["both", "pages", "corpus"]))
def test_rlinf_reader_on_random_lines(pages, corpus, which):
    with scratch() as tmp:
        if which in ("both", "pages"):
            (tmp / "wiki_webpages.jsonl").write_text("\n".join(pages), encoding="utf-8", errors="surrogatepass")
        if which in ("both", "corpus"):
            (tmp / "wiki_corpus.jsonl").write_text("\n".join(corpus), encoding="utf-8", errors="surrogatepass")
        read_all("rlinf", tmp)


tsv_field = st.lists(st.sampled_from(list('ab "\t\n\r\\\x00é') + ['""', "id", "text", "title"]), max_size=30).map("".join)


@FAST
@given(header=st.sampled_from(["id\ttext\ttitle", "id\ttitle\ttext", "id\ttext", "", "x\ty\tz"]),
       rows=st.lists(st.lists(tsv_field, max_size=4).map("\t".join), max_size=8))
def test_dpr_reader_on_random_rows(header, rows):
    with scratch() as tmp:
        path = tmp / "psgs_w100.tsv"
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        read_all("dpr", path)


@FAST
@given(data=st.binary(max_size=400), source=st.sampled_from(["jsonl", "dpr", "ottqa", "rlinf"]))
def test_every_reader_on_random_bytes(data, source):
    with scratch() as tmp:
        name = {"jsonl": "x.jsonl", "dpr": "x.tsv", "ottqa": "x_tables.jsonl", "rlinf": "wiki_corpus.jsonl"}[source]
        path = tmp / name
        path.write_bytes(data)
        read_all(source, path)


VALID_JSONL = "".join(dumps({"url": f"/wiki/Page_{i}", "text": f"Page {i} is a page about thing {i}. " * 3}) + "\n"
                      for i in range(300)).encode()
COMPRESSORS = {".xz": lzma.compress, ".gz": gzip.compress, ".bz2": bz2.compress}


@FAST
@given(suffix=st.sampled_from(sorted(COMPRESSORS)), cut=st.floats(0.0, 1.0),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), max_size=4))
def test_truncated_or_damaged_compressed_files(suffix, cut, flips):
    data = bytearray(COMPRESSORS[suffix](VALID_JSONL))
    for where, mask in flips:
        data[min(len(data) - 1, int(where * len(data)))] ^= mask
    data = bytes(data[: int(cut * len(data))])
    with scratch() as tmp:
        path = tmp / f"pages.jsonl{suffix}"
        path.write_bytes(data)
        records = read_all("jsonl", path)
        assert len(records) <= 300


def test_a_truncated_xz_file_names_the_file_and_line():
    with scratch() as tmp:
        path = tmp / "pages.jsonl.xz"
        data = lzma.compress(VALID_JSONL)
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(CorpusFormatError, match=r"pages\.jsonl\.xz, line \d+: the file is truncated or corrupt"):
            list(READERS["jsonl"](path))


def test_lone_surrogates_become_replacement_characters():
    with scratch() as tmp:
        path = tmp / "pages.jsonl"
        path.write_text(dumps({"url": "/wiki/A\ud800", "title": "T\udc00", "text": "x \ud83d y \ud83d\ude00 z"}) + "\n")
        [page] = read_all("jsonl", path)
        assert page.text == "x \ufffd y \U0001f600 z" and page.title == "T\ufffd"
        assert page.url == "https://en.wikipedia.org/wiki/A\ufffd"


@SLOW
@given(lines=lines_of(objects), source=st.sampled_from(["jsonl", "rlinf"]))
def test_build_corpus_on_random_input_builds_or_reports_the_format_error(lines, source):
    from wideseek_env.corpus.build import build_corpus
    from wideseek_env.corpus.local import LocalRetriever

    with scratch() as tmp:
        name = "pages.jsonl" if source == "jsonl" else "wiki_corpus.jsonl"
        good = dumps({"url": "/wiki/Anchor", "text": "an anchor page"})
        (tmp / name).write_text("\n".join([good, *lines]), encoding="utf-8", errors="surrogatepass")
        try:
            manifest = build_corpus(source, tmp / name, tmp / "corpus", progress=False, threads=1)
        except CorpusFormatError:
            assert not (tmp / "corpus").exists()
            return
        assert manifest["counts"]["pages"] >= 1
        with LocalRetriever(tmp / "corpus", threads=1) as retriever:
            assert retriever.access_many(["/wiki/Anchor"])[0] is not None


# -- task loaders -------------------------------------------------------------------------------------

task_keys = st.sampled_from(["id", "query", "question", "answer", "language", "required_columns", "unique_columns",
                             "columns", "gold", "provenance", "kind", "format", "instance_id", "evaluation",
                             "display_columns", "is_markdown"]) | st.text(max_size=6)
table_text = st.lists(st.sampled_from(["| a | b |", "|---|---|", "| 1 | 2 |", "| x |", "```", "name", "\n"]),
                      max_size=8).map("\n".join)
task_values = st.recursive(scalars | table_text, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(task_keys, inner, max_size=4), max_leaves=15)
task_objects = st.dictionaries(task_keys, task_values, max_size=10)


def our_task(seed: int) -> dict:
    return {"id": f"t{seed}", "query": "q", "language": "en", "required_columns": ["name", "n"],
            "unique_columns": ["name"], "columns": {"name": {"preprocess": "norm_str", "metric": "exact_match"},
                                                    "n": {"preprocess": "extract_number", "metric": "number_near"}},
            "gold": [{"name": "a", "n": "1"}]}


def mutate(obj, path_choice, value):
    """``obj`` with one field (chosen by ``path_choice``) replaced by ``value``."""
    obj = json.loads(json.dumps(obj))
    keys_ = sorted(obj)
    obj[keys_[path_choice % len(keys_)]] = value
    return obj


def load_all(path: Path):
    from wideseek_env.tasks import load_tasks

    try:
        tasks = load_tasks(path)
    except TaskFormatError as exc:
        assert path.name in str(exc)
        return []
    for task in tasks:
        task.to_json()
        json.dumps(task.to_json(), ensure_ascii=False).encode("utf-8")
    return tasks


@FAST
@given(lines=st.lists(task_objects.map(dumps) | st.text(max_size=40), max_size=5), garbage=garbled)
def test_task_loader_on_random_json_lines(lines, garbage):
    with scratch() as tmp:
        path = tmp / "tasks.jsonl"
        path.write_text("\n".join(lines + [garbage]), encoding="utf-8", errors="surrogatepass")
        load_all(path)


@FAST
@given(choice=st.integers(0, 50), value=task_values)
def test_task_loader_on_one_bad_field_of_a_good_task(choice, value):
    with scratch() as tmp:
        path = tmp / "tasks.jsonl"
        path.write_text(dumps(our_task(0)) + "\n" + dumps(mutate(our_task(1), choice, value)) + "\n")
        load_all(path)


@FAST
@given(choice=st.integers(0, 50), value=task_values)
def test_wideseek_r1_loader_on_one_bad_field(choice, value):
    good = {"question": "List the a and b.", "answer": "| a | b |\n|---|---|\n| 1 | 2 |", "unique_columns": ["a"],
            "instance_id": "r1", "language": "en", "evaluation": json.dumps({"required": ["a", "b"]})}
    with scratch() as tmp:
        path = tmp / "train.jsonl"
        path.write_text(dumps(mutate(good, choice, value)) + "\n")
        load_all(path)


csv_cell = st.lists(st.sampled_from(list('ab,"\n\r \x00é') + ["name", "n", '""']), max_size=12).map("".join)


@FAST
@given(header=st.lists(csv_cell, max_size=4), rows=st.lists(st.lists(csv_cell, max_size=5), max_size=6),
       raw=st.one_of(st.none(), st.binary(max_size=200)), bom=st.booleans())
def test_widesearch_loader_on_random_gold_csv(header, rows, raw, bom):
    evaluation = {"unique_columns": ["name"], "required": ["name", "n"],
                  "eval_pipeline": {"n": {"preprocess": ["extract_number"], "metric": ["number_near"],
                                          "criterion": 0.1}}}
    record = {"instance_id": "ws_1", "query": "q", "language": "en", "evaluation": json.dumps(evaluation)}
    with scratch() as tmp:
        (tmp / "gold").mkdir()
        if raw is not None:
            data = raw
        else:
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows)
            data = out.getvalue().encode("utf-8")
        (tmp / "gold" / "ws_1.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
        path = tmp / "widesearch.jsonl"
        path.write_text(dumps(record) + "\n")
        load_all(path)


@FAST
@given(value=task_values, field=st.sampled_from(["evaluation", "instance_id", "query", "language"]))
def test_widesearch_loader_on_random_evaluation(value, field):
    record = {"instance_id": "ws_1", "query": "q", "language": "en",
              "evaluation": json.dumps({"unique_columns": ["name"], "required": ["name"]})}
    record[field] = value
    with scratch() as tmp:
        (tmp / "gold").mkdir()
        (tmp / "gold" / "ws_1.csv").write_text("name\nx\n")
        path = tmp / "widesearch.jsonl"
        path.write_text(dumps(record) + "\n")
        load_all(path)


# -- extractor and parser -----------------------------------------------------------------------------

markdownish = st.lists(st.sampled_from(list("|-: *_`\n\t\\<>") + ["```", "```markdown", "| a | b |", "|---|---|",
                                                                 "<br>", "\ud800", "\x00", "| 1 | 2 |"]),
                       max_size=300).map("".join)


@FAST
@given(text=st.text(max_size=500) | markdownish | st.binary(max_size=300) | st.none())
def test_markdown_extractor_never_raises(text):
    from wideseek_env.table.markdown import extract_table, extract_table_widesearch

    table = extract_table(text)
    if table is not None:
        assert all(len(row) == len(table.header) for row in table.rows)
    extract_table_widesearch(text)


@settings(max_examples=examples(5), deadline=5000)
@given(n=st.sampled_from([2000, 20000]))
def test_markdown_extractor_is_not_quadratic(n):
    from wideseek_env.table.markdown import extract_table

    extract_table("|" * n * 10)
    extract_table("```\n" * n)
    extract_table("| a |\n" * n)


toolish = st.lists(st.sampled_from(["<tool_call>", "</tool_call>", "<think>", "</think>", '{"name": "search", ',
                                    '"arguments": {"queries": [{"query": "x"}]}}', "{", "}", "[", "]", '"', "\\",
                                    "null", "NaN", "1e999", "\ud800", "\x00", " ", "\n", "search", "access"]),
                   max_size=80).map("".join)


@FAST
@given(text=toolish | st.text(max_size=300), first_only=st.booleans(), max_calls=st.sampled_from([None, 1, 5]))
def test_tool_call_parser_never_raises(text, first_only, max_calls):
    from wideseek_env.tools.parsing import HermesParser

    parsed = HermesParser(max_calls, first_only=first_only).parse(text)
    assert not any("could not be parsed" in e for e in parsed.errors)  # not the catch-all
    for call in parsed.tool_calls:
        assert isinstance(call.name, str) and isinstance(call.arguments, dict)
        json.dumps(call.arguments)


@settings(max_examples=examples(4), deadline=5000)
@given(n=st.sampled_from([5000, 50000]))
def test_tool_call_parser_is_not_quadratic(n):
    from wideseek_env.tools.parsing import HermesParser

    parser = HermesParser(None)
    parser.parse("<tool_call>" * n)
    parser.parse("</tool_call>" * n)
    parser.parse("<tool_call>{}</tool_call>" * (n // 10))
    parser.parse("<think>" * n + "</think>" * n)


# -- configs -------------------------------------------------------------------------------------------

env_fields = st.sampled_from([
    "mode", "lead_max_turns", "subagent_max_turns", "single_max_turns", "max_subagents_per_call",
    "max_tool_calls_per_message", "first_tool_call_only", "context_tokens", "max_query_tokens", "max_depth",
    "invalid_call", "search_top_k", "max_search_queries", "snippet_chars", "max_access_urls", "page_chars",
    "max_action_chars", "max_observation_chars", "turn_hint", "subagent_pool_size", "max_pool_size",
    "reward_shaping", "format_bonus", "access_bonus", "length_penalty", "length_penalty_start",
    "length_penalty_range", "scoring_compat", "access_suggestions", "repeat_note",
]) | st.text(max_size=10)
config_values = (json_values | st.floats() | st.integers(-5, 5) | st.sampled_from(["multi", "single", "error", "final",
                                                                                  "default", "widesearch"]))


@FAST
@given(data=st.dictionaries(env_fields, config_values, max_size=6),
       preset=st.sampled_from(["EnvConfig", "paper", "rlinf", "single_agent", "from_dict", "replace"]))
def test_env_config_from_random_dicts(data, preset):
    import math

    from wideseek_env.config import ConfigError, EnvConfig

    try:
        if preset == "EnvConfig":  # keyword construction: an unknown keyword is Python's TypeError
            config = EnvConfig(**{k: v for k, v in data.items() if k in EnvConfig.field_names()})
        elif preset == "from_dict":
            config = EnvConfig.from_dict(data)
        elif preset == "replace":
            config = EnvConfig().replace(**data)
        else:
            config = getattr(EnvConfig, preset)(**data)
    except ConfigError as exc:
        assert str(exc)
        return
    # accepted: every field has a sane value
    for name in ("first_tool_call_only", "turn_hint", "reward_shaping"):
        assert isinstance(getattr(config, name), bool)
    for name in ("format_bonus", "access_bonus", "length_penalty"):
        assert math.isfinite(getattr(config, name))
    assert isinstance(config.access_suggestions, int) and config.access_suggestions >= 0
    assert config.pool_size >= 0 and config.max_turns("lead") >= 1


@FAST
@given(data=st.dictionaries(st.text(max_size=6) | st.sampled_from(["env", "steps", "lr", "betas", "lora", "model"]),
                            config_values, max_size=5) | json_values)
def test_env_config_from_dict_rejects_non_mappings_and_unknown_keys(data):
    from wideseek_env.config import ConfigError, EnvConfig

    try:
        EnvConfig.from_dict(data)
    except ConfigError:
        pass


train_fields = st.sampled_from(["model", "policy", "tasks", "steps", "tasks_per_step", "group_size", "lr", "betas",
                                "eps_low", "eps_high", "dual_clip", "lora", "env", "preset", "aggregation",
                                "save_every", "max_len", "seed", "resume", "logger", "weight_decay", "sampling",
                                "max_tokens", "temperature", "num_minibatches"]) | st.text(max_size=8)


@pytest.fixture(scope="module")
def trainer_module():
    pytest.importorskip("yaml")
    pytest.importorskip("torch")
    import agents.train  # imported once here, so that no example pays for importing torch

    return agents.train


@FAST
@given(data=st.dictionaries(train_fields, config_values, max_size=6) | json_values,
       raw=st.one_of(st.none(), st.binary(max_size=200), garbled,
                     st.lists(st.sampled_from(["a: 1", "- x", "[", "{", ": :", "!!python/object:os.system", "&a",
                                               "*a", "? x", "\t", "b: [1, 2", "lr: 1e-3", "betas: ab"]),
                              max_size=8).map("\n".join)),
       overrides=st.lists(st.text(max_size=12) | st.sampled_from(["lr=[", "steps=: :", "betas=[1]", "env={x: 1}",
                                                                  "lr=.nan", "steps=1e999", "model=!!python/name:os"]),
                          max_size=3))
def test_trainer_yaml_config_from_random_files(trainer_module, data, raw, overrides):
    import yaml

    TrainConfig, TrainConfigError = trainer_module.TrainConfig, trainer_module.TrainConfigError

    with scratch() as tmp:
        path = tmp / "train.yaml"
        if raw is None:
            try:
                path.write_text(yaml.safe_dump(data), encoding="utf-8")
            except (yaml.YAMLError, UnicodeEncodeError):
                assume(False)
        elif isinstance(raw, bytes):
            path.write_bytes(raw)
        else:
            path.write_text(raw, encoding="utf-8", errors="surrogatepass")
        try:
            TrainConfig.from_yaml(path, overrides)
        except TrainConfigError as exc:
            assert str(exc)


def test_task_files_with_lone_surrogates_load_as_valid_text():
    from wideseek_env.tasks import save_tasks

    task = our_task(0) | {"id": "t\ud800", "query": "q \ud800 \ud83d\ude00"}
    task["gold"] = [{"name": "a\udc00", "n": "1"}]
    with scratch() as tmp:
        (tmp / "tasks.jsonl").write_text(dumps(task) + "\n")
        [loaded] = load_all(tmp / "tasks.jsonl")
        assert loaded.id == "t\ufffd" and loaded.query == "q \ufffd \U0001f600"
        assert loaded.gold == [{"name": "a\ufffd", "n": "1"}]
        save_tasks([loaded], tmp / "again.jsonl")  # writable as UTF-8


@pytest.mark.parametrize("instance_id", ["../../../../etc/passwd", "/etc/passwd", "..", "a/b", "a\\b", "x\x00y",
                                         "x" * 300, "", " ", 5.5, None, ["ws_1"], {"a": 1}, True])
def test_a_widesearch_instance_id_never_names_a_file_outside_gold(instance_id):
    record = {"instance_id": instance_id, "query": "q", "language": "en",
              "evaluation": json.dumps({"unique_columns": ["name"], "required": ["name"]})}
    with scratch() as tmp:
        (tmp / "gold").mkdir()
        (tmp / "secret.csv").write_text("name\nleaked\n")
        (tmp / "sub").mkdir()
        record_path = tmp / "sub" / "widesearch.jsonl"
        (tmp / "sub" / "gold").mkdir()
        if isinstance(instance_id, str) and instance_id.startswith(".."):
            record["instance_id"] = "../../secret"
        record_path.write_text(dumps(record) + "\n")
        with pytest.raises(TaskFormatError, match="instance_id"):
            from wideseek_env.tasks import load_tasks

            load_tasks(record_path)
