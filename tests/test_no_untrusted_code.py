"""No untrusted code paths: data from corpora, tasks, agent output or requests is never run as code.

1. A static check (an AST scan of every call site in ``wideseek_env/`` and ``agents/``) for what can
   turn data into code: ``pickle``/``marshal``/``shelve``/``dill``/``joblib`` loads, ``eval``/
   ``exec``/``compile``/``__import__``, ``yaml.load`` without a safe loader (and ``unsafe_load``/
   ``full_load``), ``torch.load`` without ``weights_only=True``, ``numpy.load(allow_pickle=True)``,
   ``trust_remote_code=True``, ``subprocess`` with ``shell=True``, ``os.system``/``os.popen``/
   ``os.exec*``/``os.spawn*``, dynamic imports (``importlib.import_module``,
   ``spec_from_file_location``, ``exec_module``) and pickling transports (multiprocessing pipes,
   Ray). Each remaining site is in ``ALLOWED`` with the reason it is safe; a new site fails the
   test until it is fixed or justified there, and a stale entry fails it too.
2. Dynamic checks: corpus text, tasks, agent actions and server requests holding Python source,
   pickle payloads and YAML tags go through building, loading, scoring, the env and the server as
   text, with an audit hook watching for any unpickling, ``exec``/``compile``, ``os.system`` or
   process start while they do.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import pickle
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("wideseek_env", "agents")

# (file, enclosing function, category) -> why this site is not a path from untrusted data to code.
ALLOWED: dict[tuple[str, str, str], str] = {
    ("wideseek_env/errors.py", "require", "dynamic-import"):
        "imports optional dependencies by names written in the code (require('torch', 'llm')), "
        "never by names from data",
    ("wideseek_env/play.py", "load_policy", "dynamic-import"):
        "'wideseek play --others MODULE:CLASS': the user names their own policy class on the command "
        "line, like 'python -m'; nothing from a corpus, task, agent or request reaches it",
    ("agents/setup.py", "load_callable", "dynamic-import"):
        "reward_fn/tools 'module:function' or 'file.py:function' from the user's own training config "
        "(a YAML file they wrote, like a Python script they run); the config is read with "
        "yaml.safe_load, so a task or corpus cannot inject it",
    ("wideseek_env/corpus/build.py", "_ReaderProcess.__init__", "pickle-transport"):
        "a multiprocessing pipe between the corpus builder and the reader child it forked itself: "
        "both ends are this program; corpus content travels as plain tuples of strings",
    ("agents/openai_policy.py", "VLLMServer.start", "process"):
        "starts 'python -m vllm.entrypoints.openai.api_server' with an argument list (no shell); "
        "the model path and arguments come from the caller's code or CLI options",
}

# Ray pickles between its workers; a cluster is as trusted as the machines the user started it on.
RAY_REASON = ("Ray ships episodes and policies between the driver and its workers by pickling, inside "
              "a cluster the user started ('--ray ADDRESS'); nothing from a task, corpus or agent "
              "output is unpickled outside it")

UNSAFE_MODULE_CALLS = {
    ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("cPickle", "load"),
    ("cPickle", "loads"), ("dill", "load"), ("dill", "loads"), ("cloudpickle", "load"),
    ("cloudpickle", "loads"), ("marshal", "load"), ("marshal", "loads"), ("shelve", "open"),
    ("joblib", "load"), ("pandas", "read_pickle"), ("pd", "read_pickle"), ("yaml", "unsafe_load"),
    ("yaml", "full_load"), ("yaml", "unsafe_load_all"), ("yaml", "full_load_all"),
    ("os", "system"), ("os", "popen"), ("os", "execv"), ("os", "execve"), ("os", "execvp"),
    ("os", "execvpe"), ("os", "execl"), ("os", "execlp"), ("os", "spawnv"), ("os", "spawnl"),
    ("os", "posix_spawn"), ("os", "posix_spawnp"),
}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return ""


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_const(node: ast.expr | None, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


class Scanner(ast.NodeVisitor):
    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.stack: list[str] = []
        self.found: list[tuple[str, str, str, int, str]] = []  # (file, function, category, line, text)

    def _scope(self) -> str:
        return ".".join(self.stack) or "<module>"

    def _flag(self, node: ast.AST, category: str) -> None:
        self.found.append((self.rel, self._scope(), category, node.lineno, ast.unparse(node)[:120]))

    def visit_FunctionDef(self, node) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] in ("pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve"):
                self._flag(node, "pickle-import")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if (node.module or "").split(".")[0] in ("pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve"):
            self._flag(node, "pickle-import")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        parts = name.split(".")
        head, last = (parts[-2] if len(parts) > 1 else ""), parts[-1]
        if isinstance(node.func, ast.Name) and last in ("eval", "exec", "compile", "__import__", "execfile"):
            self._flag(node, "eval-exec")
        if (head, last) in UNSAFE_MODULE_CALLS:
            self._flag(node, "process" if head == "os" else "deserialize")
        if last in ("load", "load_all") and head == "yaml":
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or _dotted(loader).split(".")[-1] not in SAFE_YAML_LOADERS:
                self._flag(node, "deserialize")
        if last == "load" and head == "torch":
            if not _is_const(_keyword(node, "weights_only"), True):
                self._flag(node, "deserialize")
        if last == "load" and head in ("np", "numpy"):
            if not _is_const(_keyword(node, "allow_pickle"), False) and _keyword(node, "allow_pickle") is not None:
                self._flag(node, "deserialize")
        trust = _keyword(node, "trust_remote_code")
        if trust is not None and not _is_const(trust, False):
            self._flag(node, "remote-code")
        if head == "subprocess" or last in ("Popen", "run", "call", "check_call", "check_output"):
            shell = _keyword(node, "shell")
            if shell is not None and not _is_const(shell, False):
                self._flag(node, "shell")
            if head == "subprocess":
                self._flag(node, "process")
        if last in ("import_module", "spec_from_file_location", "exec_module") and not (
            node.args and isinstance(node.args[0], ast.Constant)
        ):
            self._flag(node, "dynamic-import")
        if last == "Pipe" and head in ("multiprocessing", "context", "mp", "ctx"):
            self._flag(node, "pickle-transport")
        if head == "ray" and last in ("get", "remote", "put", "wait"):
            self._flag(node, "ray")
        self.generic_visit(node)


def scan() -> list[tuple[str, str, str, int, str]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            scanner = Scanner(rel)
            scanner.visit(ast.parse(path.read_text(encoding="utf-8"), filename=rel))
            found.extend(scanner.found)
    return found


def test_the_scanner_finds_what_it_looks_for():
    source = '''
import pickle, yaml, torch, subprocess, os, importlib
def f(data, path, name):
    pickle.loads(data)
    yaml.load(data)
    yaml.load(data, Loader=yaml.FullLoader)
    yaml.load(data, Loader=yaml.SafeLoader)
    yaml.safe_load(data)
    torch.load(path)
    torch.load(path, weights_only=False)
    torch.load(path, weights_only=True)
    eval(data)
    exec(data)
    subprocess.run(data, shell=True)
    os.system(data)
    importlib.import_module(name)
    AutoModel.from_pretrained(path, trust_remote_code=True)
    re.compile(data)
'''
    scanner = Scanner("x.py")
    scanner.visit(ast.parse(source))
    lines = sorted({line for *_, line, _ in scanner.found})
    assert lines == [2, 4, 5, 6, 9, 10, 12, 13, 14, 15, 16, 17]  # not the safe forms on lines 7, 8, 11, 18


def test_no_call_site_turns_data_into_code_except_the_documented_ones():
    found = scan()
    unexplained = []
    used = set()
    for rel, scope, category, line, text in found:
        if category == "ray":
            assert rel.startswith("agents/"), (rel, RAY_REASON)  # never in the env package
            continue
        if category == "pickle-import" and "pickle" not in text.split("import", 1)[-1]:
            continue
        key = (rel, scope, category)
        if key in ALLOWED:
            used.add(key)
            continue
        unexplained.append(f"{rel}:{line} in {scope}: {category}: {text}")
    assert unexplained == [], (
        "call sites that may run data as code; fix them or add them to ALLOWED with the reason "
        "they are safe:\n" + "\n".join(unexplained)
    )
    stale = sorted(set(ALLOWED) - used)
    assert stale == [], f"ALLOWED entries that match nothing any more (remove them): {stale}"


def test_every_torch_load_is_weights_only_and_every_yaml_load_is_safe():
    """Spelled out: these two are the usual ways a checkpoint or a config file runs code."""
    for rel, scope, category, line, text in scan():
        assert not text.startswith("torch.load"), f"{rel}:{line}: {text}"
        assert not text.startswith("yaml.load"), f"{rel}:{line}: {text}"


# -- dynamic checks ------------------------------------------------------------------------------------

MARKER_NAME = "wideseek-pwned-marker"


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def payloads(marker: Path) -> list[str]:
    pickled = pickle.dumps(_Payload(marker), protocol=0)
    return [
        f"__import__('os').system('touch {marker}')",
        f"eval(compile(\"open('{marker}', 'w')\", 'x', 'exec'))",
        pickled.decode("latin-1"),
        base64.b64encode(pickle.dumps(_Payload(marker))).decode(),
        f"!!python/object/apply:os.system ['touch {marker}']",
        f"{{{{ ''.__class__.__mro__[1].__subclasses__() }}}} $(touch {marker}) `touch {marker}`",
        f"; touch {marker} #",
    ]


class Watch:
    """Records audit events that mean code or a process is being run from data."""

    EVENTS = ("pickle.find_class", "marshal.loads", "marshal.load", "os.system", "subprocess.Popen",
              "os.exec", "os.posix_spawn", "os.spawn", "exec", "compile", "os.fork")
    _installed = False
    _active: "Watch | None" = None

    def __init__(self, *, all_threads: bool = False) -> None:
        self.all_threads = all_threads
        self.events: list[tuple[str, str]] = []
        if not Watch._installed:
            sys.addaudithook(Watch._hook)  # cannot be removed: inert unless a Watch is active
            Watch._installed = True

    @staticmethod
    def _hook(event: str, args: tuple) -> None:
        watch = Watch._active
        if watch is not None and event in Watch.EVENTS and (
            watch.all_threads or threading.current_thread() is threading.main_thread()
        ):
            watch.events.append((event, repr(args)[:200]))

    def __enter__(self) -> "Watch":
        Watch._active = self
        return self

    def __exit__(self, *exc) -> None:
        Watch._active = None


def run_twice(fn):
    """Once to warm up (lazy imports compile and exec modules), once watched."""
    fn()
    with Watch() as watch:
        fn()
    return watch.events


@pytest.fixture()
def marker(tmp_path) -> Path:
    path = tmp_path / MARKER_NAME
    yield path
    assert not path.exists(), "a payload was executed"


def test_corpus_text_with_code_and_pickles_is_stored_and_searched_as_text(tmp_path, marker):
    from wideseek_env.corpus.build import build_corpus
    from wideseek_env.corpus.local import LocalRetriever
    from wideseek_env.corpus.text import detokenize

    texts = payloads(marker)
    src = tmp_path / "pages.jsonl"
    src.write_text("".join(json.dumps({"url": f"/wiki/Evil_{i}", "text": f"evil page {i}: {t}"}) + "\n"
                           for i, t in enumerate(texts)), encoding="utf-8")
    build_corpus("jsonl", src, tmp_path / "corpus", progress=False)

    def use():
        with LocalRetriever(tmp_path / "corpus", threads=1) as retriever:
            pages = retriever.access_many([f"/wiki/Evil_{i}" for i in range(len(texts))])
            hits = retriever.search_many(texts + ["evil page"], 5)
        for i, (page, text) in enumerate(zip(pages, texts)):  # the reader's usual clean-up, nothing else
            assert page is not None and page.text == detokenize(f"evil page {i}: {text}")
        assert hits[-1]

    assert run_twice(use) == []


def test_tasks_with_code_and_pickles_load_and_score_as_text(tmp_path, marker):
    from wideseek_env.evaluation import score_answer
    from wideseek_env.tasks import load_tasks

    texts = payloads(marker)
    gold = [{"name": t, "n": str(i)} for i, t in enumerate(texts[:3])]
    record = {"id": "evil", "query": texts[0], "language": "en", "required_columns": ["name", "n"],
              "unique_columns": ["name"],
              "columns": {"name": {"preprocess": "norm_str", "metric": "exact_match"},
                          "n": {"preprocess": "extract_number", "metric": "number_near"}},
              "gold": gold, "provenance": {"payload": texts[3], "yaml": texts[4]}}
    r1 = {"question": texts[1], "answer": "| a | b |\n|---|---|\n| " + texts[0].replace("|", "/") + " | 1 |",
          "unique_columns": ["a"], "instance_id": "r1", "evaluation": json.dumps({"required": ["a", "b"]})}
    (tmp_path / "tasks.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    (tmp_path / "r1.jsonl").write_text(json.dumps(r1) + "\n", encoding="utf-8")
    answer = "| name | n |\n|---|---|\n" + "\n".join(f"| {t.replace('|', '/')} | {i} |" for i, t in enumerate(texts))

    def use():
        [task] = load_tasks(tmp_path / "tasks.jsonl")
        assert task.query == texts[0] and task.provenance["payload"] == texts[3]
        [r1_task] = load_tasks(tmp_path / "r1.jsonl")
        assert r1_task.query == texts[1]
        score = score_answer(task, answer)
        assert 0.0 <= score.item_f1 <= 1.0
        score_answer(task, texts[2])

    assert run_twice(use) == []


def test_agent_output_with_code_and_pickles_is_only_ever_text(tmp_path, marker):
    from wideseek_env.config import EnvConfig
    from wideseek_env.corpus.build import build_corpus
    from wideseek_env.corpus.local import LocalRetriever
    from wideseek_env.env import WideSeekEnv
    from wideseek_env.table.schema import ColumnSpec, Task
    from wideseek_env.tools.parsing import render_tool_call

    texts = payloads(marker)
    src = tmp_path / "pages.jsonl"
    src.write_text(json.dumps({"url": "/wiki/Plain", "text": "a plain page"}) + "\n")
    build_corpus("jsonl", src, tmp_path / "corpus", progress=False)
    task = Task(id="t", query="Name it.", language="en", required_columns=["name"], unique_columns=["name"],
                columns={"name": ColumnSpec("name")}, gold=[{"name": "x"}])
    actions = [render_tool_call(texts[0], {"x": texts[1]}),
               render_tool_call("search", {"queries": [{"query": t} for t in texts[:5]]}),
               render_tool_call("access", {"urls": [{"url": t, "info_to_extract": t} for t in texts[:5]]}),
               "<tool_call>" + texts[2] + "</tool_call>",
               "<tool_call>{\"name\": \"search\", \"arguments\": " + json.dumps(texts[4]) + "}</tool_call>",
               "| name |\n|---|\n| " + texts[0] + " |"]

    def use():
        with LocalRetriever(tmp_path / "corpus", threads=1) as retriever:
            env = WideSeekEnv(retriever, [task], EnvConfig.single_agent(single_max_turns=10))
            env.reset(seed=0)
            for action in actions:
                if not env.agents:
                    break
                obs, rewards, term, trunc, infos = env.step({"agent": action})
            assert not env.agents and rewards["agent"] == 0.0
            env.close()

    assert run_twice(use) == []


def test_server_requests_with_code_and_pickles_are_only_ever_text(tmp_path, marker):
    import http.client

    from wideseek_env.corpus.build import build_corpus
    from wideseek_env.corpus.local import LocalRetriever
    from wideseek_env.corpus.server import make_server

    texts = payloads(marker)
    src = tmp_path / "pages.jsonl"
    src.write_text(json.dumps({"url": "/wiki/Plain", "text": "a plain page"}) + "\n")
    build_corpus("jsonl", src, tmp_path / "corpus", progress=False)
    raw_pickle = pickle.dumps(_Payload(marker))
    with LocalRetriever(tmp_path / "corpus", threads=1) as retriever:
        server = make_server(retriever, timeout=2.0)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        requests = [("/retrieve", json.dumps({"queries": texts})), ("/access", json.dumps({"urls": texts})),
                    ("/retrieve", raw_pickle), ("/access", b"\x80\x04" + raw_pickle)]

        def send_all() -> list:
            out = []
            for path, body in requests:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
                conn.request("POST", path, body=body)
                response = conn.getresponse()
                out.append((response.status, json.loads(response.read())))
                conn.close()
            return out

        try:
            send_all()  # warm-up
            with Watch(all_threads=True) as watch:
                statuses = send_all()
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
    assert watch.events == []
    assert [s for s, _ in statuses] == [200, 200, 400, 400]
    assert statuses[1][1] == {"result": [None] * len(texts)}


def test_the_watch_sees_unpickling_and_exec():
    with Watch() as watch:
        pickle.loads(pickle.dumps(Path("x")))
        eval("1 + 1")  # noqa: S307 - the check of the check
    events = {event for event, _ in watch.events}
    assert "pickle.find_class" in events and ("exec" in events or "compile" in events)
