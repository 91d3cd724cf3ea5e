"""The retrieval server (real HTTP on 127.0.0.1) and the HTTPRetriever client."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wideseek_env.corpus.local import LocalRetriever
from wideseek_env.corpus.remote import HTTPRetriever, RetrievalServerError
from wideseek_env.corpus.types import Retriever
from wideseek_env.errors import WideseekError
from corpus_helpers import AsgiServer, build_jsonl_corpus, start_server, stop_server  # noqa: E402

W = "https://en.wikipedia.org/wiki/"
PAGES = [
    {"url": "/wiki/Jim_Ryun", "text": "James Ronald Ryun (born April 29, 1947) is a former American "
     "politician and Olympic track and field athlete, the first high school athlete to run a mile "
     "in under four minutes."},
    {"url": "/wiki/Marty_Liquori", "text": "Marty Liquori (born September 11, 1949) is an American "
     "former middle-distance runner."},
    {"url": "/wiki/List_of_capitals_of_France", "text": "This is a chronological list of capitals "
     "of France. Paris has been the capital for most of its history."},
]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return build_jsonl_corpus(tmp_path_factory.mktemp("corpus"), PAGES)


@pytest.fixture(scope="module")
def local(corpus_dir):
    with LocalRetriever(corpus_dir, threads=2) as r:
        yield r


start, stop = start_server, stop_server


@pytest.fixture(scope="module")
def stdlib_server(local):
    srv, thread = start(local, timeout=1.0, max_items=256)
    yield srv
    stop(srv, thread)


@pytest.fixture(scope="module")
def asgi_server(local):
    pytest.importorskip("fastapi")
    srv = AsgiServer(local, max_items=256)
    yield srv
    srv.stop()


@pytest.fixture(params=["stdlib", "asgi"])
def server(request):
    """Each protocol test runs against both backends (``wideseek serve --backend``)."""
    return request.getfixturevalue(f"{request.param}_server")


def raw(server, method, path, body=None, headers=None):
    """One request on a fresh connection; returns (status, decoded JSON)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers or {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        assert response.getheader("Content-Type", "").startswith("application/json")
        return response.status, json.loads(data)
    finally:
        conn.close()


def healthy(server) -> bool:
    return raw(server, "GET", "/health") == (200, {"status": "ok", "passages": 3})


def test_server_url_and_port(server):
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_http_retriever_matches_local(server, local):
    queries = ["Jim Ryun mile", "Liquori runner", "", "!!!", "capitals of France"]
    with HTTPRetriever(server.url) as remote:
        assert isinstance(remote, Retriever)
        assert remote.search_many(queries, 2) == local.search_many(queries, 2)
        urls = ["/wiki/Jim_Ryun", "https://en.wikipedia.org/w/index.php?title=Marty%20Liquori",
                "https://en.wikipedia.org/wiki/Nope", "https://example.com/", 5]
        assert remote.access_many(urls) == local.access_many(urls)
        assert remote.search_many([], 3) == [] and remote.access_many([]) == []
        # more queries than one request may hold: split into several requests
        many = ["Jim Ryun"] * 300
        assert len(remote.search_many(many, 1)) == 300
        assert remote.health()["status"] == "ok"


def test_candidates_over_http_match_local(server, local):
    titles = ["jim ryun", "Jim Ryun", "list of capitals of france", "Nope", "https://example.com/", ""]
    with HTTPRetriever(server.url) as remote:
        assert remote.candidates_many(titles) == local.candidates_many(titles)
    assert local.candidates_many(titles)[:2] == [[W + "Jim_Ryun"], [W + "Jim_Ryun"]]
    assert local.candidates_many(titles)[2] == [W + "List_of_capitals_of_France"]
    assert raw(server, "POST", "/candidates", {"urls": ["jim ryun"]}) == (200, {"result": [[W + "Jim_Ryun"]]})


def test_similar_titles_over_http_match_local(server, local):
    titles = ["Jmi Ryn", "Jim Ryun", "Nope", "https://example.com/", ""]
    with HTTPRetriever(server.url) as remote:
        assert remote.similar_titles_many(titles, 3) == local.similar_titles_many(titles, 3)
    assert local.similar_titles_many(titles, 3)[0][0] == W + "Jim_Ryun"
    assert raw(server, "POST", "/candidates", {"urls": ["Jmi Ryn"], "limit": 1, "similar": True}) == (
        200, {"result": [[W + "Jim_Ryun"]]})


def test_http_retriever_without_scheme(server):
    with HTTPRetriever(f"127.0.0.1:{server.port}") as remote:
        assert remote.search_many(["Ryun"], 1)[0][0].url == W + "Jim_Ryun"


def test_rlinf_shape(server):
    """RLinf's WideSeek-R1 client: return_scores false, reads contents and url; access reads contents."""
    status, body = raw(server, "POST", "/retrieve",
                       {"queries": ["Jim Ryun", "capitals of France"], "topk": 3, "return_scores": False})
    assert status == 200 and len(body["result"]) == 2
    top = body["result"][0][0]
    assert top["contents"].startswith('"Jim Ryun"\n') and "1947" in top["contents"]
    assert top["url"] == W + "Jim_Ryun" and top["title"] == "Jim Ryun" and "score" not in top
    status, body = raw(server, "POST", "/access", {"urls": [
        "https://en.wikipedia.org/w/index.php?title=List%20of%20capitals%20of%20France",
        "https://en.wikipedia.org/w/index.php/List_of_capitals_of_France",
        "https://en.wikipedia.org/wiki/Nope"]})
    assert status == 200
    first, second, missing = body["result"]
    assert first == second and "Paris" in first["contents"] and first["url"] == W + "List_of_capitals_of_France"
    assert missing is None


def test_search_r1_shape(server):
    """Search-R1 clients: return_scores true, read hit["document"]["contents"] (quoted title line)."""
    status, body = raw(server, "POST", "/retrieve", {"queries": ["Jim Ryun"], "topk": 2, "return_scores": True})
    assert status == 200
    item = body["result"][0][0]
    content = item["document"]["contents"]
    assert content.split("\n")[0] == '"Jim Ryun"' and "1947" in "\n".join(content.split("\n")[1:])
    assert isinstance(item["score"], float) and item["url"] == W + "Jim_Ryun"
    # topk omitted or null: the default (3)
    status, body = raw(server, "POST", "/retrieve", {"queries": ["Ryun Liquori Paris"]})
    assert status == 200 and 1 <= len(body["result"][0]) <= 3
    status, body = raw(server, "POST", "/retrieve", {"queries": [], "topk": None})
    assert (status, body) == (200, {"result": []})


@pytest.mark.parametrize(
    "path, body, status",
    [
        ("/retrieve", "{not json", 400),
        ("/retrieve", b"\xff\xfe", 400),
        ("/retrieve", [1, 2], 400),
        ("/retrieve", {}, 400),
        ("/retrieve", {"queries": "Jim Ryun"}, 400),
        ("/retrieve", {"queries": ["ok", 5]}, 400),
        ("/retrieve", {"queries": ["ok"], "topk": "3"}, 400),
        ("/retrieve", {"queries": ["ok"], "topk": 0}, 400),
        ("/retrieve", {"queries": ["ok"], "topk": 1000}, 400),
        ("/retrieve", {"queries": ["ok"], "topk": True}, 400),
        ("/retrieve", {"queries": ["ok"], "return_scores": "yes"}, 400),
        ("/retrieve", {"queries": ["q"] * 257}, 400),
        ("/access", {"urls": None}, 400),
        ("/access", {"urls": [{"url": "x"}]}, 400),
        ("/access", {"urls": ["u"] * 257}, 400),
        ("/candidates", {"urls": "Jim Ryun"}, 400),
        ("/candidates", {"urls": ["Jim Ryun"], "limit": 0}, 400),
        ("/candidates", {"urls": ["Jim Ryun"], "similar": "yes"}, 400),
        ("/nowhere", {"queries": ["ok"]}, 404),
    ],
)
def test_bad_requests_answer_json_4xx(server, path, body, status):
    got, payload = raw(server, "POST", path, body)
    assert got == status
    assert isinstance(payload.get("error"), str) and payload["error"]
    assert healthy(server)


def test_wrong_method_and_unknown_get(server):
    assert raw(server, "GET", "/retrieve")[0] == 405
    assert raw(server, "GET", "/etc/passwd")[0] == 404
    assert raw(server, "PUT", "/retrieve", {"queries": []})[0] == 405
    assert healthy(server)


def read_until_closed(sock) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_missing_content_length_and_oversized_body(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /retrieve HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 411") and b'"error"' in reply
    # Announce a 2 MiB body: refused with 413 before it is read.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 2097152\r\n\r\n" + b"[" * 1000)
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 413") and b'"error"' in reply
    # A real oversized body through a normal client.
    status, payload = raw(server, "POST", "/retrieve", {"queries": ["x" * (1 << 20)]})
    assert status == 413 and "limit" in payload["error"]
    assert healthy(server)


def test_unread_body_closes_the_connection(stdlib_server):
    server = stdlib_server
    body = b'{"queries": ["x"]}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 404") and b"Connection: close" in reply
    # A validation error after the body was read keeps the connection usable.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/retrieve", body=json.dumps({"queries": ["x"], "topk": 0}))
    first = conn.getresponse()
    first.read()
    conn.request("POST", "/retrieve", body=json.dumps({"queries": ["Ryun"], "topk": 1}))
    second = conn.getresponse()
    assert (first.status, second.status) == (400, 200) and json.loads(second.read())["result"][0]
    conn.close()


def test_slow_and_dropped_clients_are_cut_off(stdlib_server):
    # The stdlib server's own connection handling (uvicorn has no per-request deadline).
    server = stdlib_server
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    slow.sendall(b"POST /retrieve HTTP/1.1\r\nHost: x\r\n")  # headers never finish
    stalled = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    stalled.sendall(b"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")  # body never finishes
    dropped = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    dropped.sendall(b"POST /retrieve HTTP/1.1\r\nContent-Length: 50\r\n\r\n{")
    dropped.close()
    try:
        assert healthy(server)  # others are served meanwhile
        started = time.monotonic()
        for sock in (slow, stalled):  # the server closes them after its 1 s timeout
            assert b"200 OK" not in read_until_closed(sock)
        assert time.monotonic() - started < 4
    finally:
        slow.close()
        stalled.close()
    assert healthy(server)


def test_keep_alive_connection_is_reused(server):
    with HTTPRetriever(server.url) as remote:
        for _ in range(3):
            remote.search_many(["Ryun"], 1)
        assert len(remote._client._transport._pool.connections) == 1  # httpx's pool


def test_server_gone_mid_episode_is_a_tool_error_not_a_crash(corpus_dir):
    from wideseek_env.tools import AccessTool, SearchTool

    proc = subprocess.Popen(
        [sys.executable, "-m", "wideseek_env.cli", "serve", "--index", str(corpus_dir), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        url = "http://" + proc.stdout.readline().split("http://", 1)[1].split()[0]
        with HTTPRetriever(url, retries=2, backoff=0.01) as remote:
            search, access = SearchTool(remote), AccessTool(remote)
            assert "Jim Ryun" in search({"queries": [{"query": "Ryun"}]})
            proc.kill()  # the server dies between two tool calls, its keep-alive connection with it
            proc.wait(10)
            for text in (search({"queries": [{"query": "Ryun"}]}), access({"urls": ["/wiki/Jim_Ryun"]})):
                assert "Error:" in text and "cannot reach the retrieval server" in text, text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_small_requests_do_not_wait_for_delayed_acks(server):
    # Regression: without TCP_NODELAY on both ends, each answer waited ~40 ms for a delayed ACK.
    with HTTPRetriever(server.url) as remote:
        remote.access_many(["/wiki/Jim_Ryun"])
        times = []
        for _ in range(21):
            started = time.perf_counter()
            remote.access_many(["/wiki/Jim_Ryun"])
            times.append(time.perf_counter() - started)
    assert sorted(times)[10] < 0.025


def test_retries_ride_out_a_server_that_starts_late(local):
    from wideseek_env.corpus.server import make_server

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    box = {}

    def start_late():
        time.sleep(0.3)
        box["server"] = make_server(local, "127.0.0.1", port)
        box["server"].serve_forever(poll_interval=0.05)

    import threading

    late = threading.Thread(target=start_late, daemon=True)
    late.start()
    try:
        # Refused at first; the retries (0.2 s, 0.4 s, 0.8 s, ...) reach the server once it is up.
        with HTTPRetriever(f"127.0.0.1:{port}", retries=4, backoff=0.2) as remote:
            assert remote.search_many(["Ryun"], 1)[0][0].title == "Jim Ryun"
    finally:
        deadline = time.monotonic() + 5
        while "server" not in box and time.monotonic() < deadline:
            time.sleep(0.05)
        box["server"].shutdown()
        box["server"].server_close()
        late.join(5)


class Exploding:
    def search_many(self, queries, k=3):
        raise RuntimeError("index on fire")

    def access_many(self, urls):
        raise RuntimeError("store on fire")

    def close(self):
        pass


def test_retriever_failure_is_a_500_and_the_server_lives_on():
    srv, thread = start(Exploding())
    try:
        status, body = raw(srv, "POST", "/retrieve", {"queries": ["x"]})
        assert status == 500 and "index on fire" in body["error"]
        status, body = raw(srv, "POST", "/access", {"urls": ["/wiki/X"]})
        assert status == 500 and "store on fire" in body["error"]
        assert raw(srv, "GET", "/health")[0] == 200
        with HTTPRetriever(srv.url) as remote, pytest.raises(RetrievalServerError, match="500"):
            remote.search_many(["x"], 1)
    finally:
        stop(srv, thread)


def test_unreachable_server_names_url_and_command():
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with HTTPRetriever(f"http://127.0.0.1:{port}", timeout=2) as remote:
        with pytest.raises(WideseekError) as info:
            remote.search_many(["x"], 1)
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "wideseek serve" in message
    with pytest.raises(WideseekError):
        HTTPRetriever("ftp://host/x")


def test_asgi_server_has_openapi_and_docs(asgi_server):
    conn = http.client.HTTPConnection("127.0.0.1", asgi_server.port, timeout=5)
    try:
        conn.request("GET", "/openapi.json")
        spec = json.loads(conn.getresponse().read())
        assert {"/retrieve", "/access", "/candidates", "/health"} <= set(spec["paths"])
        conn.request("GET", "/docs")
        response = conn.getresponse()
        assert response.status == 200 and b"swagger" in response.read().lower()
    finally:
        conn.close()


@pytest.mark.parametrize("extra", [[], ["--backend", "asgi"], ["--backend", "asgi", "--workers", "2"]])
def test_serve_command_prints_url_and_stops_on_ctrl_c(corpus_dir, extra):
    if extra:
        pytest.importorskip("uvicorn")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wideseek_env.cli", "serve", "--index", str(corpus_dir), "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line
        url = line.split("http://", 1)[1].split()[0]
        with HTTPRetriever("http://" + url) as remote:
            assert remote.search_many(["Ryun"], 1)[0][0].title == "Jim Ryun"
        proc.send_signal(signal.SIGINT)
        # Generous: on a loaded 2-core CI machine the interpreter's shutdown can be slow to get the CPU.
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "stopping" in out, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
