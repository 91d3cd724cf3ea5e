"""Corpus builds: layout, counts, passages, idempotence, crash safety, manifest loading."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import tantivy

from wideseek_env.corpus import build as build_module
from wideseek_env.corpus.build import (
    FORMAT_VERSION,
    build_corpus,
    corpus_paths,
    load_manifest,
    split_passages,
)
from wideseek_env.corpus.readers import READERS, read_jsonl
from wideseek_env.corpus.store import PageStore
from wideseek_env.corpus.types import Page
from wideseek_env.errors import CorpusFormatError, CorpusNotBuiltError, WideseekError

W = "https://en.wikipedia.org/wiki/"
LONG = " ".join(f"Sentence number {i} talks about zebras and their stripes." for i in range(60))
PAGES = [
    {"url": "/wiki/Jim_Ryun", "text": "Jim Ryun ( born 1947 ) is a runner ."},
    {"title": "Zebra", "text": LONG},
    {"url": "/wiki/Jim_Ryun", "text": "He ran the mile ."},
]


def write_pages(path: Path, pages: list = PAGES) -> Path:
    path.write_text("".join(json.dumps(p) + "\n" for p in pages), encoding="utf-8")
    return path


def build(src: Path, out: Path, **kwargs) -> dict:
    kwargs.setdefault("threads", 1)
    return build_corpus("jsonl", src, out, progress=False, **kwargs)


def index_docs(corpus_dir: Path) -> list[dict]:
    index = tantivy.Index.open(str(corpus_paths(corpus_dir).index))
    index.reload()
    searcher = index.searcher()
    hits = searcher.search(tantivy.Query.all_query(), 1000).hits
    return [searcher.doc(address).to_dict() for _, address in hits]


@pytest.fixture()
def src(tmp_path: Path) -> Path:
    return write_pages(tmp_path / "pages.jsonl")


@pytest.fixture()
def built(src: Path, tmp_path: Path) -> Path:
    out = tmp_path / "corpus"
    build(src, out)
    return out


# ------------------------------------------------------------------------------------------ layout


def test_build_writes_manifest_pages_and_index(built):
    paths = corpus_paths(built)
    assert paths.manifest.is_file() and paths.pages.is_file() and (paths.index / "meta.json").is_file()


def test_build_counts_records_pages_and_passages(src, tmp_path):
    counts = build(src, tmp_path / "corpus")["counts"]
    assert counts == {"records": 3, "pages": 2, "passages": 3 + len(split_passages(LONG)) - 1, "tables": 0}


def test_build_appends_fragments_of_one_url_into_one_page(built):
    page = PageStore(corpus_paths(built).pages).get(W + "Jim_Ryun")
    assert page == Page(W + "Jim_Ryun", "Jim Ryun", "Jim Ryun (born 1947) is a runner.\n\nHe ran the mile.")


def test_build_indexes_passages_with_title_text_and_url(built):
    docs = [d for d in index_docs(built) if d["url"] == [W + "Jim_Ryun"]]
    assert sorted(d["text"][0] for d in docs) == ["He ran the mile.", "Jim Ryun (born 1947) is a runner."]


def test_build_splits_long_pages_into_passages(built):
    docs = [d for d in index_docs(built) if d["title"] == ["Zebra"]]
    assert len(docs) > 3 and all(len(d["text"][0].split()) <= 150 for d in docs)


def test_manifest_records_source_input_fingerprint_and_versions(src, tmp_path):
    manifest = build(src, tmp_path / "corpus")
    summary = {k: manifest[k] for k in ("format_version", "source", "input", "passage_words")}
    assert (summary, manifest["fingerprint"][0]["size"], set(manifest["versions"])) == (
        {"format_version": FORMAT_VERSION, "source": "jsonl", "input": str(src.resolve()), "passage_words": 100},
        src.stat().st_size,
        {"wideseek_env", "tantivy", "python"},
    )


def test_manifest_file_omits_the_reused_flag(built):
    assert "reused" not in json.loads(corpus_paths(built).manifest.read_text())


def test_ottqa_build_stores_tables(tmp_path):
    table = {
        "url": W + "Jim_Ryun", "title": "Jim Ryun", "section_title": "Records", "section_text": "",
        "intro": "Jim Ryun is a runner .", "uid": "Jim_Ryun_0",
        "header": [["Year", []], ["Event", []]], "data": [[["1966", []], ["Mile", ["/wiki/Mile_run"]]]],
    }
    (tmp_path / "src").mkdir()
    write_pages(tmp_path / "src" / "train_tables.jsonl", [table])
    write_pages(tmp_path / "src" / "train_passages.jsonl", [{"url": "/wiki/Mile_run", "text": "A race ."}])
    manifest = build_corpus("ottqa", tmp_path / "src", tmp_path / "corpus", progress=False, threads=1)
    assert manifest["counts"] == {"records": 3, "pages": 2, "passages": 2, "tables": 1}


def test_dpr_build_indexes_its_passages_verbatim(tmp_path):
    tsv = tmp_path / "psgs.tsv"
    tsv.write_text("id\ttext\ttitle\n1\t" + LONG + "\tZebra\n2\tShort one .\tZebra\n", encoding="utf-8")
    build_corpus("dpr", tsv, tmp_path / "corpus", progress=False, threads=1)
    lengths = sorted(len(d["text"][0]) for d in index_docs(tmp_path / "corpus"))
    assert lengths == [len("Short one."), len(LONG)]


def test_progress_bar_writes_to_stderr_only(src, tmp_path, capsys):
    build_corpus("jsonl", src, tmp_path / "corpus", progress=True, threads=1)
    captured = capsys.readouterr()
    assert captured.out == "" and "records" in captured.err


# ------------------------------------------------------------------------------------- idempotence


def test_first_build_is_not_reused(src, tmp_path):
    assert build(src, tmp_path / "corpus")["reused"] is False


def test_second_build_of_unchanged_input_is_reused(src, built):
    assert build(src, built)["reused"] is True


def test_reused_build_leaves_the_index_untouched(src, built):
    before = os.stat(corpus_paths(built).index)
    build(src, built)
    after = os.stat(corpus_paths(built).index)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_reused_build_removes_the_old_corpus_a_killed_swap_left_beside_it(src, built):
    # A build killed while deleting the replaced corpus, after its swap, leaves it as .corpus.old-<pid>.
    old = built.parent / f".{built.name}.old-12345"
    shutil.copytree(built, old)
    assert build(src, built)["reused"] is True
    assert not old.exists() and corpus_paths(built).manifest.exists()


def test_reused_build_returns_the_stored_manifest(src, built):
    stored = json.loads(corpus_paths(built).manifest.read_text())
    assert {k: v for k, v in build(src, built).items() if k not in ("reused", "corpus_dir")} == stored


def test_touched_input_triggers_a_rebuild(src, built):
    stat = src.stat()
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert build(src, built)["reused"] is False


def test_changed_input_content_is_in_the_rebuilt_corpus(src, built):
    write_pages(src, PAGES + [{"title": "New page", "text": "Brand new ."}])
    build(src, built)
    assert PageStore(corpus_paths(built).pages).get(W + "New_page") is not None


def test_other_passage_size_triggers_a_rebuild(src, built):
    assert build(src, built, passage_words=50)["reused"] is False


def test_force_rebuilds_unchanged_input(src, built):
    assert build(src, built, force=True)["reused"] is False


def test_force_replaces_the_index_directory(src, built):
    before = os.stat(corpus_paths(built).index).st_ino
    build(src, built, force=True)
    assert os.stat(corpus_paths(built).index).st_ino != before


# ------------------------------------------------------------------------------------ crash safety


def failing_reader(after: int, exc: BaseException):
    def reader(path):
        yield from list(read_jsonl(path))[:after]
        raise exc

    return reader


def test_reader_failure_keeps_the_previous_corpus_loadable(src, built, monkeypatch):
    before = load_manifest(built)
    monkeypatch.setitem(READERS, "jsonl", failing_reader(2, RuntimeError("disk on fire")))
    with pytest.raises(RuntimeError, match="disk on fire"):
        build(src, built, force=True)
    assert load_manifest(built) == before


def test_reader_failure_keeps_the_previous_pages(src, built, monkeypatch):
    monkeypatch.setitem(READERS, "jsonl", failing_reader(1, RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        build(src, built, force=True)
    assert len(PageStore(corpus_paths(built).pages)) == 2


def test_reader_failure_leaves_no_building_directory(src, built, monkeypatch):
    monkeypatch.setitem(READERS, "jsonl", failing_reader(1, RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        build(src, built, force=True)
    assert list(built.parent.glob(".corpus.building-*")) == []


def test_format_error_mid_way_names_file_and_line_and_keeps_the_corpus(src, built):
    before = load_manifest(built)
    src.write_text(src.read_text() + "{broken\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"pages.jsonl, line 4: invalid JSON"):
        build(src, built)
    assert load_manifest(built) == before


def test_reader_error_that_cannot_be_pickled_is_reported_as_text(src, tmp_path, monkeypatch):
    class Local(Exception):  # a local class does not pickle across the process boundary
        pass

    monkeypatch.setitem(READERS, "jsonl", failing_reader(1, Local("odd failure")))
    with pytest.raises(Exception, match="odd failure"):
        build(src, tmp_path / "corpus")


def test_failed_first_build_leaves_no_corpus(src, tmp_path, monkeypatch):
    monkeypatch.setitem(READERS, "jsonl", failing_reader(1, RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        build(src, tmp_path / "corpus")
    assert not (tmp_path / "corpus").exists()


def test_stale_building_directory_is_removed_by_the_next_build(src, tmp_path):
    stale = tmp_path / ".corpus.building-999999"
    (stale / "index").mkdir(parents=True)
    build(src, tmp_path / "corpus")
    assert not stale.exists()


def test_stale_building_directory_does_not_count_as_a_corpus(tmp_path):
    stale = tmp_path / ".corpus.building-999999"
    (stale / "index").mkdir(parents=True)
    with pytest.raises(CorpusNotBuiltError):
        load_manifest(tmp_path / "corpus")


def test_kill_between_swap_renames_is_reported_and_cleaned_up(src, built):
    # Simulates a kill after the old corpus was renamed away and before the new one came in.
    old = built.parent / ".corpus.old-999999"
    built.rename(old)
    with pytest.raises(CorpusNotBuiltError):
        load_manifest(built)
    build(src, built)
    assert load_manifest(built) and not old.exists()


KILLED_BUILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from wideseek_env.corpus import readers
    from wideseek_env.corpus.build import build_corpus

    def slow(path):
        yield from readers.read_jsonl(path)
        Path(sys.argv[3]).write_text("started")
        time.sleep(60)

    readers.READERS["jsonl"] = slow
    build_corpus("jsonl", Path(sys.argv[1]), Path(sys.argv[2]), progress=False, threads=1, force=True)
    """
)


def test_killed_build_process_leaves_the_previous_corpus_intact(src, built, tmp_path):
    before = load_manifest(built)
    marker = tmp_path / "started"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(src), str(built), str(marker)],
        start_new_session=True,  # its own process group: the reader child dies with it
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert marker.exists(), "the build never started"
    finally:
        os.killpg(process.pid, 9)
        process.wait()
    assert load_manifest(built) == before and list(tmp_path.glob(".corpus.building-*"))


def test_build_after_a_killed_build_removes_its_leftovers(src, built, tmp_path):
    leftover = tmp_path / ".corpus.building-4242"
    (leftover / "index").mkdir(parents=True)
    (leftover / "pages.sqlite").write_bytes(b"partial")
    build(src, built, force=True)
    assert not leftover.exists()


def test_concurrent_build_of_the_same_directory_is_refused(src, built):
    import fcntl

    with open(built.parent / ".corpus.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(WideseekError, match="another 'wideseek corpus build' is writing"):
            build(src, built, force=True)


def test_build_refuses_to_replace_a_directory_that_is_not_a_corpus(src, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "thesis.tex").write_text("precious")
    with pytest.raises(WideseekError, match="is not a corpus directory"):
        build(src, tmp_path / "docs")


def test_build_into_an_empty_existing_directory_works(src, tmp_path):
    (tmp_path / "corpus").mkdir()
    assert build(src, tmp_path / "corpus")["counts"]["pages"] == 2


def test_missing_input_is_a_format_error(tmp_path):
    with pytest.raises(CorpusFormatError, match="no such file or directory"):
        build(tmp_path / "missing.jsonl", tmp_path / "corpus")


def test_zero_threads_is_rejected(src, tmp_path):
    with pytest.raises(WideseekError, match="threads must be at least 1"):
        build(src, tmp_path / "corpus", threads=0)


def test_reader_runs_in_this_process_without_fork(src, tmp_path, monkeypatch):
    monkeypatch.setattr(build_module.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert build(src, tmp_path / "corpus")["counts"]["pages"] == 2


# ----------------------------------------------------------------------------------- load_manifest


def test_load_manifest_returns_the_manifest(src, built):
    assert load_manifest(built)["source"] == "jsonl"


def test_load_manifest_of_a_missing_directory_names_it_and_the_build_command(tmp_path):
    expected = r"no corpus at .*nowhere; build it with 'wideseek corpus build"
    with pytest.raises(CorpusNotBuiltError, match=expected):
        load_manifest(tmp_path / "nowhere")


def test_load_manifest_without_manifest_reports_an_incomplete_corpus(built):
    corpus_paths(built).manifest.unlink()
    with pytest.raises(CorpusNotBuiltError, match="is incomplete"):
        load_manifest(built)


def test_load_manifest_with_corrupt_json_reports_it(built):
    corpus_paths(built).manifest.write_text("{not json")
    with pytest.raises(CorpusNotBuiltError, match="is corrupt"):
        load_manifest(built)


def test_load_manifest_with_missing_index_reports_an_incomplete_corpus(built):
    (corpus_paths(built).index / "meta.json").unlink()
    with pytest.raises(CorpusNotBuiltError, match=r"incomplete \(missing meta.json\)"):
        load_manifest(built)


def test_load_manifest_of_another_format_version_asks_for_a_rebuild(built):
    manifest = json.loads(corpus_paths(built).manifest.read_text())
    corpus_paths(built).manifest.write_text(json.dumps({**manifest, "format_version": 999}))
    with pytest.raises(CorpusNotBuiltError, match=r"format version 999.*--source jsonl"):
        load_manifest(built)


def test_corrupt_manifest_triggers_a_rebuild(src, built):
    corpus_paths(built).manifest.write_text("{not json")
    assert build(src, built)["reused"] is False


# --------------------------------------------------------------------------------- split_passages


def test_short_text_is_one_passage():
    assert split_passages("One short text.", 100) == ["One short text."]


def test_empty_text_has_no_passages():
    assert split_passages("  ", 100) == []


def test_long_text_is_split_at_sentence_ends():
    assert all(p.endswith("stripes.") for p in split_passages(LONG, 30))


def test_passages_put_together_give_the_text_back():
    assert " ".join(split_passages(LONG, 30)) == LONG


def test_passages_are_about_the_requested_size():
    sizes = [len(p.split()) for p in split_passages(LONG, 30)]
    assert all(15 <= n <= 40 for n in sizes)


def test_very_long_sentence_is_cut_between_words():
    words = [f"w{i}" for i in range(500)]
    passages = split_passages(" ".join(words), 100)
    assert [w for p in passages for w in p.split()] == words and len(passages) == 5


def test_table_passages_repeat_the_header():
    rows = "\n".join(f"| {i} | value {i} |" for i in range(120))
    text = "Intro.\n\n## Section\n\n| Year | Value |\n| --- | --- |\n" + rows
    passages = split_passages(text, 50)
    assert len(passages) > 2 and all("| Year | Value |\n| --- | --- |\n" in p for p in passages)


def test_heading_is_not_left_at_the_end_of_a_passage():
    text = LONG + "\n\n## Next\n\n" + LONG
    assert not any(p.rstrip().endswith("## Next") for p in split_passages(text, 50))


def test_short_tail_joins_the_previous_passage():
    text = " ".join(["Word " * 79 + "end."] * 2) + " Tail."
    assert split_passages(text, 80)[-1].endswith("end. Tail.")
