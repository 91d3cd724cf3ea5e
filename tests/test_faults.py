"""Builders and indexes survive faults: SIGKILLed builds and generations, corrupt or truncated files.

- ``wideseek corpus build`` is a real subprocess on a medium-sized generated corpus (4,000 pages,
  4 reader batches), SIGKILLed at fixed points (right after it starts building, mid-index, with a
  complete build not yet swapped in, between the two renames of the swap) and at a random time.
  A killed build must leave either the previous corpus, intact and still answering with its old
  content, or no corpus at all (reported as not built): never a half-built one that a later run
  or a reader trusts. The next run must finish and equal a clean build.
- ``wideseek tasks generate`` is killed the same way (mid-analysis, between writing the two task
  files, before, between and after moving them into place); ``load_tasks`` must refuse whatever a
  killed run left half-swapped (the ``.incomplete`` marker) and load only files that ``stats.json``
  vouches for; the next run must not reuse anything half-written and must write files
  byte-identical to a clean run. A generated task file edited afterwards (a line removed) is
  refused by the loader with an error saying how to regenerate it.
- A corrupt or truncated index (segment files truncated or overwritten, garbage mid-file,
  ``meta.json`` deleted) or page store (truncated, garbage bytes), or a missing or corrupt
  ``manifest.json``, gives one ``CorpusNotBuiltError`` from ``LocalRetriever`` naming the damaged
  part and the rebuild command, and ``wideseek search`` / ``wideseek access`` exit with status 2
  and one error line, no traceback (and no Rust panic).

Kill points are set by a small driver that wraps one function of the builder so that the process
SIGKILLs itself when that function is called for the n-th time, then runs the real CLI.
"""

from __future__ import annotations

import json
import lzma
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wideseek_env.corpus.build import build_corpus, load_manifest
from wideseek_env.corpus.local import LocalRetriever
from wideseek_env.errors import CorpusNotBuiltError, TaskFormatError
from wideseek_env.paths import shared_data_dir
from wideseek_env.tasks import load_tasks

N_PAGES = 4000
W = "https://en.wikipedia.org/wiki/"

DRIVER = r'''
import os, signal, sys

target, after = sys.argv[1], int(sys.argv[2])
argv = sys.argv[3:]


def arm(owner, name):
    original = getattr(owner, name)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] > after:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


from wideseek_env.corpus import build, store
from wideseek_env.taskgen import output, tablesets

owners = {
    "build._record_batches": (build, "_record_batches"),
    "PageWriter.add_page_rows": (store.PageWriter, "add_page_rows"),
    "build._swap_in": (build, "_swap_in"),
    "os.rename": (os, "rename"),
    "tablesets.analyse_columns": (tablesets, "analyse_columns"),
    "output._write_jsonl": (output, "_write_jsonl"),
    "output._fsync_dir": (output, "_fsync_dir"),
    "os.replace": (os, "replace"),
}
if target != "none":
    arm(*owners[target])
from wideseek_env.cli import main

sys.exit(main(argv))
'''


def run_cli(args: list[str], *, kill_at: str = "none", after: int = 0, tmp: Path, timeout: float = 120):
    driver = tmp / "driver.py"
    if not driver.exists():
        driver.write_text(DRIVER)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, str(driver), kill_at, str(after), *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def run_and_kill_after(args: list[str], delay: float, timeout: float = 120):
    """Start the real CLI and SIGKILL it after ``delay`` seconds (if still running)."""
    proc = subprocess.Popen([sys.executable, "-m", "wideseek_env.cli", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        proc.wait(delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout)
    return proc.returncode


def no_orphans(marker: str, timeout: float = 10.0) -> bool:
    """True once no process's command line mentions ``marker`` (the forked reader exits too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
            except OSError:
                continue
            if marker.encode() in cmdline and state != "Z":
                alive.append(pid)
        if not alive:
            return True
        time.sleep(0.1)
    return False


# -- a medium-sized generated corpus, in two versions ----------------------------------------------


def write_pages(path: Path, version: int) -> None:
    rng = random.Random(version)
    vocabulary = [f"word{i}" for i in range(2500)]
    words = [rng.choice(vocabulary) for _ in range(20_000)]
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(N_PAGES):
            start = (i * 7919) % (len(words) - 130)
            text = " ".join(words[start : start + 120]) + f". Marker v{version}marker page{i}."
            handle.write(json.dumps({"url": f"/wiki/Page_{i}", "text": text}) + "\n")


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("fault-src")
    out = {}
    for version in (1, 2):
        out[version] = root / f"pages-v{version}.jsonl"
        write_pages(out[version], version)
    return out


@pytest.fixture(scope="module")
def reference(sources, tmp_path_factory) -> dict:
    """Clean in-process builds of both versions: what every finished run must equal."""
    root = tmp_path_factory.mktemp("fault-ref")
    refs = {}
    for version, src in sources.items():
        manifest = build_corpus("jsonl", src, root / f"v{version}", progress=False)
        refs[version] = {"dir": root / f"v{version}", "counts": manifest["counts"]}
    return refs


def corpus_version(corpus: Path) -> int:
    """Which version a loadable corpus holds (its marker word), checked through search and access."""
    with LocalRetriever(corpus, threads=1) as retriever:
        found = [v for v in (1, 2) if retriever.search_many([f"v{v}marker"], 1)[0]]
        assert len(found) == 1, found
        page = retriever.access_many([W + "Page_17"])[0]
        assert page is not None and f"v{found[0]}marker page17" in page.text
    return found[0]


def assert_previous_or_nothing(out: Path, previous: int | None, reference: dict) -> None:
    """After a killed build: the previous corpus, whole, or no corpus at all; never a half-built one."""
    try:
        manifest = load_manifest(out)
    except CorpusNotBuiltError as exc:
        assert str(out) in str(exc) and "wideseek corpus build" in str(exc)
        with pytest.raises(CorpusNotBuiltError):
            LocalRetriever(out)
        return
    assert previous is not None, "a first build that was killed left a corpus behind"
    assert manifest["counts"] == reference[previous]["counts"]
    assert corpus_version(out) == previous


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.glob(f".{out.name}.*") if not p.name.endswith(".lock"))


BUILD_KILLS = [
    ("build._record_batches", 0),  # early: lock taken, building directory made, nothing read yet
    ("PageWriter.add_page_rows", 2),  # mid-index: 2 of 4 batches stored and indexed
    ("build._swap_in", 0),  # complete build with its manifest, not yet swapped in
    ("os.rename", 1),  # between the swap's two renames: old moved away, new not yet in place
]


def test_killed_corpus_builds_leave_the_previous_corpus_or_nothing(sources, reference, tmp_path):
    out = tmp_path / "corpus"
    build_corpus("jsonl", sources[1], out, progress=False)
    args = ["corpus", "build", "--source", "jsonl", "--input", str(sources[2]), "--out", str(out)]
    previous = 1
    for target, after in BUILD_KILLS:
        result = run_cli(args, kill_at=target, after=after, tmp=tmp_path)
        assert result.returncode == -signal.SIGKILL, (target, result.stderr[-2000:])
        assert no_orphans(str(tmp_path / "driver.py")), f"processes left behind after killing at {target}"
        assert_previous_or_nothing(out, previous, reference)
        if target == "os.rename":
            previous = None  # the old corpus was moved away: nothing is at ``out`` until a rebuild
            assert not out.exists() and leftovers(out)
    # A real build killed at a random moment, then a clean one.
    assert run_and_kill_after(args, random.Random(0).uniform(0.8, 1.6)) in (0, -signal.SIGKILL)
    try:
        load_manifest(out)
        previous = 1 if corpus_version(out) == 1 else 2
    except CorpusNotBuiltError:
        previous = None
    assert_previous_or_nothing(out, previous, reference)
    result = run_cli(args, tmp=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_same_as_clean_build(out, reference[2])


def assert_same_as_clean_build(out: Path, want: dict) -> None:
    """After a finished run: the corpus at ``out`` equals the clean build ``want`` (version 2) and no
    leftover of a killed run remains beside it."""
    manifest = load_manifest(out)
    assert manifest["counts"] == want["counts"]
    assert corpus_version(out) == 2
    assert leftovers(out) == []  # the finished run removed every leftover of the killed ones
    with LocalRetriever(out, threads=1) as got, LocalRetriever(want["dir"], threads=1) as ref:
        assert got.num_passages == ref.num_passages
        unique = [f"page{i}" for i in (0, 42, 999, 4321, N_PAGES - 1)]
        assert got.search_many(unique, 1) == ref.search_many(unique, 1)
        # Hits with tied scores may come in another order (2 indexing threads): compare scores.
        common = ["word17 word99", "word2000 word3 word7"]
        for a, b in zip(got.search_many(common, 5), ref.search_many(common, 5)):
            assert [round(h.score, 4) for h in a] == [round(h.score, 4) for h in b]


def test_a_killed_first_build_leaves_nothing_that_is_trusted(sources, reference, tmp_path):
    out = tmp_path / "fresh"
    args = ["corpus", "build", "--source", "jsonl", "--input", str(sources[2]), "--out", str(out)]
    result = run_cli(args, kill_at="PageWriter.add_page_rows", after=2, tmp=tmp_path)
    assert result.returncode == -signal.SIGKILL
    assert not out.exists()
    assert_previous_or_nothing(out, None, reference)
    search = subprocess.run([sys.executable, "-m", "wideseek_env.cli", "search", "--corpus", str(out), "x"],
                            capture_output=True, text=True, timeout=60)
    assert search.returncode == 2 and "Traceback" not in search.stderr
    assert search.stderr.startswith("wideseek: error:") and str(out) in search.stderr
    # The leftover building directory is not a corpus either.
    [building] = leftovers(out)
    with pytest.raises(CorpusNotBuiltError):
        load_manifest(out.parent / building)
    result = run_cli(args, tmp=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert load_manifest(out)["counts"] == reference[2]["counts"] and leftovers(out) == []


# -- task generation ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table_corpus(ottqa_corpus, tmp_path_factory) -> Path:
    return make_table_corpus(ottqa_corpus, tmp_path_factory.mktemp("fault-tables"))


def make_table_corpus(ottqa_corpus: Path, root: Path) -> Path:
    """An OTT-QA-format slice of the shared data: its first 60 tables and every page they link to
    (page texts taken from the built shared corpus), built as a corpus at ``root / "corpus"``."""
    from wideseek_env.corpus.store import PageStore
    from wideseek_env.corpus.urls import NotWikipediaURL, canonical_url

    src = root / "src"
    src.mkdir()
    tables, links = [], set()
    with lzma.open(shared_data_dir() / "ottqa" / "train_tables.jsonl.xz", "rt", encoding="utf-8") as handle:
        for line in handle:
            table = json.loads(line)
            tables.append(line)
            for row in table["data"]:
                for _text, cell_links in row:
                    links.update(cell_links)
            if len(tables) == 60:
                break
    (src / "slice_tables.jsonl").write_text("".join(tables), encoding="utf-8")
    store = PageStore(ottqa_corpus / "pages.sqlite")
    try:
        with open(src / "slice_passages.jsonl", "w", encoding="utf-8") as handle:
            for link in sorted(links):
                try:
                    page = store.get(canonical_url(link))
                except NotWikipediaURL:
                    continue
                if page is not None:
                    handle.write(json.dumps({"url": link, "text": page.text}) + "\n")
    finally:
        store.close()
    build_corpus("ottqa", src, root / "corpus", progress=False)
    return root / "corpus"


def task_files(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in ("train.jsonl", "test.jsonl", "stats.json")}


@pytest.fixture(scope="module")
def clean_tasks(table_corpus, tmp_path_factory) -> Path:
    """A clean, uninterrupted generation (seed 0) of the table corpus: what every finished run equals."""
    from wideseek_env.taskgen.generate import generate_tasks

    out = tmp_path_factory.mktemp("fault-tasks") / "want"
    stats = generate_tasks(table_corpus, out, seed=0, progress=False)
    assert stats["tasks"]["total"] > 10 and stats["tasks"]["test"]["total"] > 1
    return out


def refused_as_unfinished(out: Path) -> None:
    """``load_tasks`` refuses the directory and each task file in it, naming it and the fix."""
    for path in (out, out / "train.jsonl", out / "test.jsonl"):
        with pytest.raises(TaskFormatError) as info:
            load_tasks(path)
        message = str(info.value)
        assert str(out) in message and "did not finish" in message
        assert f"wideseek tasks generate --corpus <corpus dir> --out {out}" in message


TASK_KILLS = [
    ("tablesets.analyse_columns", 40),  # mid-analysis: nothing written yet
    ("output._write_jsonl", 1),  # train.jsonl written into .tmp-<pid>, test.jsonl not yet
    ("os.replace", 0),  # marker written, old stats.json removed, nothing moved yet
    ("os.replace", 1),  # new train.jsonl in place beside the old test.jsonl
    ("os.replace", 2),  # both new task files in place, stats.json not yet
]


def test_killed_task_generation_is_never_reused_and_the_rerun_is_identical(table_corpus, clean_tasks, tmp_path):
    from wideseek_env.taskgen.generate import generate_tasks

    expected = task_files(clean_tasks)
    out = tmp_path / "tasks"
    generate_tasks(table_corpus, out, seed=1, progress=False)  # an earlier, complete generation
    earlier = task_files(out)
    earlier_tasks = load_tasks(out)
    assert earlier != expected
    args = ["tasks", "generate", "--corpus", str(table_corpus), "--out", str(out), "--seed", "0"]
    mixed = False
    for target, after in TASK_KILLS:
        result = run_cli(args, kill_at=target, after=after, tmp=tmp_path)
        assert result.returncode == -signal.SIGKILL, (target, result.stderr[-2000:])
        if target == "os.replace":  # killed while swapping: the marker says the directory is unfinished
            assert (out / ".incomplete").exists() and not (out / "stats.json").exists()
            refused_as_unfinished(out)
            if after == 1:  # the state the marker guards against: new train.jsonl, old test.jsonl
                assert (out / "train.jsonl").read_bytes() == expected["train.jsonl"]
                assert (out / "test.jsonl").read_bytes() == earlier["test.jsonl"]
                mixed = True
        else:  # killed before anything moved: the earlier files, still vouched for and loadable
            assert not (out / ".incomplete").exists()
            assert task_files(out) == earlier
            assert load_tasks(out) == earlier_tasks
    assert mixed
    assert run_and_kill_after(args, random.Random(1).uniform(1.0, 2.0)) in (0, -signal.SIGKILL)
    if (out / ".incomplete").exists():
        refused_as_unfinished(out)
    result = run_cli(args, tmp=tmp_path)
    assert_generation_finished(out, result, clean_tasks)
    # and a further run trusts the finished files
    again = run_cli(args, tmp=tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout)["reused"] is True


def assert_generation_finished(out: Path, result: subprocess.CompletedProcess, clean_tasks: Path) -> None:
    """After a finished rerun: files byte-identical to the clean generation, nothing half-written left."""
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["reused"] is False or task_files(out) == task_files(clean_tasks)
    assert task_files(out) == task_files(clean_tasks)
    assert list(out.glob(".tmp-*")) == [] and not (out / ".incomplete").exists()
    assert load_tasks(out) == load_tasks(clean_tasks)


def test_a_generation_killed_after_the_swap_is_regenerated_not_reused(table_corpus, clean_tasks, tmp_path):
    """Killed after stats.json is in place but before the marker is removed: the files are whole, but
    nothing says so; the loader refuses them and the next run regenerates rather than reuses."""
    out = tmp_path / "tasks"
    args = ["tasks", "generate", "--corpus", str(table_corpus), "--out", str(out), "--seed", "0"]
    # _fsync_dir runs after the marker is written, after the three renames, after the marker's removal.
    result = run_cli(args, kill_at="output._fsync_dir", after=1, tmp=tmp_path)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert (out / ".incomplete").exists() and task_files(out) == task_files(clean_tasks)
    refused_as_unfinished(out)
    result = run_cli(args, tmp=tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout)["reused"] is False, result.stderr[-2000:]
    assert task_files(out) == task_files(clean_tasks) and not (out / ".incomplete").exists()
    assert len(load_tasks(out)) == len(load_tasks(clean_tasks))


def test_an_edited_generated_task_file_is_refused(clean_tasks, tmp_path):
    out = tmp_path / "tasks"
    shutil.copytree(clean_tasks, out)
    assert len(load_tasks(out)) == json.loads((out / "stats.json").read_text())["tasks"]["total"]
    lines = (out / "test.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (out / "test.jsonl").write_text("".join(lines[:-1]), encoding="utf-8")  # the last task removed
    for path in (out, out / "test.jsonl"):
        with pytest.raises(TaskFormatError) as info:
            load_tasks(path)
        message = str(info.value)
        assert str(out / "test.jsonl") in message
        assert f"holds {len(lines) - 1} tasks where stats.json records {len(lines)}" in message
        assert "modified or half-written" in message
        assert f"wideseek tasks generate --corpus <corpus dir> --out {out} --seed 0" in message
    assert len(load_tasks(out / "train.jsonl")) > 0  # the untouched file still loads on its own
    # Same count, other bytes: the hash catches it.
    (out / "test.jsonl").write_text("".join(lines[:-1] + [lines[-1].replace('"query": "', '"query": "X', 1)]),
                                    encoding="utf-8")
    with pytest.raises(TaskFormatError, match="SHA-256 differs"):
        load_tasks(out)
    # A listed task file that is gone makes the directory incomplete.
    (out / "test.jsonl").unlink()
    with pytest.raises(TaskFormatError, match=r"test\.jsonl: missing, but .*stats\.json lists it"):
        load_tasks(out)


# -- corrupt or truncated corpora ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_corpus(sources, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fault-good") / "corpus"
    build_corpus("jsonl", sources[1], out, progress=False)
    return out


def segment_files(corpus: Path, ext: str) -> list[Path]:
    return sorted(p for p in (corpus / "index").iterdir() if p.suffix == "." + ext and not p.name.startswith("."))


def truncate(fraction: float, ext: str):
    def mutate(corpus: Path) -> None:
        for path in segment_files(corpus, ext):
            with open(path, "r+b") as handle:
                handle.truncate(int(path.stat().st_size * fraction))
    return mutate


def overwrite(ext: str):
    def mutate(corpus: Path) -> None:
        for path in segment_files(corpus, ext):
            path.write_bytes(random.Random(0).randbytes(path.stat().st_size))
    return mutate


def garbage_inside(ext: str, at: float):
    def mutate(corpus: Path) -> None:
        for path in segment_files(corpus, ext):
            size = path.stat().st_size
            with open(path, "r+b") as handle:
                handle.seek(int(size * at))
                handle.write(random.Random(1).randbytes(max(8, size // 50)))
    return mutate


def store_truncate(fraction: float):
    def mutate(corpus: Path) -> None:
        path = corpus / "pages.sqlite"
        with open(path, "r+b") as handle:
            handle.truncate(int(path.stat().st_size * fraction))
    return mutate


def store_garbage(at: float | None):
    def mutate(corpus: Path) -> None:
        path = corpus / "pages.sqlite"
        size = path.stat().st_size
        if at is None:
            path.write_bytes(random.Random(2).randbytes(size))
            return
        with open(path, "r+b") as handle:
            handle.seek(int(size * at))
            handle.write(random.Random(3).randbytes(size // 10))
    return mutate


INDEX_DAMAGE = {
    "store-truncated-to-0": (truncate(0.0, "store"), ".store"),
    "store-truncated-half": (truncate(0.5, "store"), ".store"),
    "term-truncated-half": (truncate(0.5, "term"), ".term"),
    "idx-overwritten": (overwrite("idx"), ".idx"),
    "pos-overwritten": (overwrite("pos"), ".pos"),
    "fast-garbage-inside": (garbage_inside("fast", 0.1), ".fast"),
    "idx-garbage-inside": (garbage_inside("idx", 0.5), ".idx"),
    "store-garbage-inside": (garbage_inside("store", 0.3), ".store"),
    "term-garbage-inside": (garbage_inside("term", 0.5), ".term"),
    "fieldnorm-garbage-inside": (garbage_inside("fieldnorm", 0.2), ".fieldnorm"),
    "meta-deleted": (lambda c: (c / "index" / "meta.json").unlink(), "meta.json"),
    "meta-garbage": (lambda c: (c / "index" / "meta.json").write_text("{not json"), "meta.json"),
    "segment-deleted": (lambda c: [p.unlink() for p in segment_files(c, "store")], "index"),
}
STORE_DAMAGE = {
    "store-db-truncated-to-0": store_truncate(0.0),
    "store-db-truncated-half": store_truncate(0.5),
    "store-db-overwritten": store_garbage(None),
    "store-db-deleted": lambda c: (c / "pages.sqlite").unlink(),
}

MANIFEST_DAMAGE = {  # case -> (mutation, what the message must say)
    "manifest-deleted": (lambda c: (c / "manifest.json").unlink(), "is incomplete (no manifest.json)"),
    "manifest-garbage": (lambda c: (c / "manifest.json").write_text("{not json"), "is corrupt"),
    "manifest-truncated": (
        lambda c: (c / "manifest.json").write_bytes((c / "manifest.json").read_bytes()[:40]), "is corrupt"
    ),
    "manifest-not-an-object": (lambda c: (c / "manifest.json").write_text("[1, 2]\n"), "is corrupt"),
}


def damaged(good: Path, tmp: Path, mutate) -> Path:
    corpus = tmp / "damaged"
    shutil.copytree(good, corpus)
    mutate(corpus)
    return corpus


def use(corpus: Path) -> None:
    with LocalRetriever(corpus, threads=1) as retriever:
        for word in ("word1", "word2 word3", "v1marker", "page4000"):
            retriever.search_many([word], 50)
        retriever.access_many([f"{W}Page_{i}" for i in range(0, N_PAGES, 7)])


@pytest.mark.parametrize("case", sorted(INDEX_DAMAGE))
def test_a_damaged_index_is_one_clear_error(good_corpus, tmp_path, case):
    mutate, names = INDEX_DAMAGE[case]
    corpus = damaged(good_corpus, tmp_path, mutate)
    with pytest.raises(CorpusNotBuiltError) as info:
        use(corpus)
    message = str(info.value)
    assert str(corpus / "index") in message and names in message
    assert "wideseek corpus build" in message and "--force" in message
    assert "--source jsonl" in message  # the command is the real one, read from the manifest


@pytest.mark.parametrize("case", sorted(STORE_DAMAGE))
def test_a_damaged_page_store_is_one_clear_error(good_corpus, tmp_path, case):
    corpus = damaged(good_corpus, tmp_path, STORE_DAMAGE[case])
    with pytest.raises(CorpusNotBuiltError) as info:
        use(corpus)
    message = str(info.value)
    assert str(corpus / "pages.sqlite") in message and "wideseek corpus build" in message


@pytest.mark.parametrize("case", sorted(MANIFEST_DAMAGE))
def test_a_missing_or_corrupt_manifest_is_one_clear_error(good_corpus, tmp_path, case):
    """The manifest is written last by a build: a directory without a readable one is not a corpus,
    however whole its index and page store look."""
    mutate, says = MANIFEST_DAMAGE[case]
    corpus = damaged(good_corpus, tmp_path, mutate)
    for verify in (True, False):
        with pytest.raises(CorpusNotBuiltError) as info:
            LocalRetriever(corpus, threads=1, verify=verify)
        message = str(info.value)
        assert str(corpus) in message and says in message
        assert "wideseek corpus build" in message and f"--out {corpus} --force" in message


def test_garbage_inside_the_page_store_is_reported_when_a_page_is_read(good_corpus, tmp_path):
    corpus = damaged(good_corpus, tmp_path, store_garbage(0.5))
    with pytest.raises(CorpusNotBuiltError) as info:
        use(corpus)
    assert str(corpus / "pages.sqlite") in str(info.value) and "corrupt" in str(info.value)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wideseek_env.cli", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "case, command",
    [
        ("store-truncated-half", "search"),
        ("idx-garbage-inside", "search"),
        ("fast-garbage-inside", "search"),
        ("meta-deleted", "search"),
        ("store-db-overwritten", "search"),
        ("store-db-garbage-inside", "access"),
        ("manifest-deleted", "search"),
        ("manifest-garbage", "access"),
    ],
)
def test_cli_on_a_damaged_corpus_exits_2_with_one_line_and_no_traceback(good_corpus, tmp_path, case, command):
    damage = {**{k: v[0] for k, v in INDEX_DAMAGE.items()}, **{k: v[0] for k, v in MANIFEST_DAMAGE.items()},
              **STORE_DAMAGE}
    mutate = damage.get(case) or store_garbage(0.5)
    corpus = damaged(good_corpus, tmp_path, mutate)
    if command == "search":
        result = cli("search", "--corpus", str(corpus), "word1 word2", "v1marker")
    else:
        result = cli("access", "--corpus", str(corpus), *[f"{W}Page_{i}" for i in range(0, N_PAGES, 11)])
    assert result.returncode == 2, (result.stdout[-500:], result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wideseek: error:"), result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr
    assert str(corpus) in lines[0] and "wideseek corpus build" in lines[0]


def test_an_intact_copy_still_works(good_corpus, tmp_path):
    """The checks above are about damage: an undamaged copy opens and answers."""
    corpus = damaged(good_corpus, tmp_path, lambda c: None)
    use(corpus)
    assert corpus_version(corpus) == 1
    with sqlite3.connect(corpus / "pages.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM pages").fetchone()[0] == N_PAGES
