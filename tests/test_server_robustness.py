"""The retrieval server under load, bad input and misbehaving clients (real HTTP on 127.0.0.1 only).

Short, bounded forms of what ``benchmarks/server_load.py`` measures at scale: a burst of concurrent
clients gets no errors; malformed, mistyped, oversized and over-long requests get a 4xx JSON error;
slow, trickling and dropped clients are cut off within a bounded time while others are served; the
default bind address is loopback; and request content never reaches the filesystem.
Every socket has a timeout, so no test here can hang.
"""

from __future__ import annotations

import http.client
import inspect
import json
import random
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from wideseek_env.cli import build_parser
from wideseek_env.corpus.local import LocalRetriever
from wideseek_env.corpus.server import make_server, serve
from corpus_helpers import build_jsonl_corpus, start_server, stop_server  # noqa: E402

TIMEOUT = 1.0  # the server's per-request deadline in these tests
WORDS = ("river mountain castle league season election album station church bridge district "
         "railway novel football painter island museum college battle festival").split()
N_PAGES = 300


def page(i: int) -> dict:
    rng = random.Random(i)
    text = " ".join(rng.choice(WORDS) for _ in range(150)) + f". Page number {i} unique{i}."
    return {"url": f"/wiki/Page_{i}", "title": f"Page {i}", "text": text}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return build_jsonl_corpus(tmp_path_factory.mktemp("robust"), [page(i) for i in range(N_PAGES)])


@pytest.fixture(scope="module")
def local(corpus_dir):
    with LocalRetriever(corpus_dir, threads=2) as retriever:
        yield retriever


start, stop = start_server, stop_server


@pytest.fixture(scope="module")
def server(local):
    srv, thread = start(local, timeout=TIMEOUT)
    yield srv
    stop(srv, thread)


def request(port, method, path, body=None, *, timeout=5.0):
    """One request on a fresh connection: (status, decoded JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        assert response.getheader("Content-Type", "").startswith("application/json"), data[:200]
        return response.status, json.loads(data)
    finally:
        conn.close()


def healthy(port) -> bool:
    return request(port, "GET", "/health") == (200, {"status": "ok", "passages": N_PAGES})


def raw_exchange(port, data: bytes, *, timeout=5.0) -> bytes:
    """Send raw bytes, read until the server closes (or the timeout): the raw reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_until_closed(sock)


def read_until_closed(sock) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def json_error(reply: bytes, status: int) -> str:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()) or head.startswith(f"HTTP/1.0 {status}".encode()), head
    assert b"application/json" in head, head
    message = json.loads(body)["error"]
    assert isinstance(message, str) and message
    return message


# -- load ------------------------------------------------------------------------------------------


def test_concurrent_burst_has_no_errors_and_matches_the_local_retriever(server, local):
    """24 clients x 20 requests, /retrieve batches of 1-16 queries mixed with /access."""
    def client(seed: int) -> list[str]:
        rng = random.Random(seed)
        errors = []
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for _ in range(20):
                if rng.random() < 0.6:
                    queries = [" ".join(rng.sample(WORDS, 3)) + f" unique{rng.randrange(N_PAGES)}"
                               for _ in range(rng.randint(1, 16))]
                    k = rng.randint(1, 5)
                    body = {"queries": queries, "topk": k}
                    path = "/retrieve"
                else:
                    urls = [f"https://en.wikipedia.org/wiki/Page_{rng.randrange(N_PAGES + 20)}"
                            for _ in range(rng.randint(1, 8))]
                    body = {"urls": urls}
                    path = "/access"
                if rng.random() < 0.2:  # some clients reconnect, most keep the connection alive
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = json.loads(response.read())
                if response.status != 200:
                    errors.append(f"{response.status} {payload}")
                    continue
                if path == "/retrieve":
                    expected = local.search_many(queries, k)
                    got = [[hit["url"] for hit in hits] for hits in payload["result"]]
                    if got != [[hit.url for hit in hits] for hits in expected]:
                        errors.append(f"different hits for {queries}")
                else:
                    got = [p and p["url"] for p in payload["result"]]
                    want = [p and p.url for p in local.access_many(urls)]
                    if got != want:
                        errors.append(f"different pages for {urls}")
        except Exception as exc:  # noqa: BLE001 - reported as a test failure below
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()
        return errors

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(client, range(24)))
    errors = [e for errs in results for e in errs]
    assert errors == []
    assert healthy(server.port)


# -- malformed requests --------------------------------------------------------------------------

BAD_BODIES = [
    ("/retrieve", "{not json"),
    ("/retrieve", ""),
    ("/retrieve", b"\xff\xfe\x00garbage"),
    ("/retrieve", "[" * 50_000 + "]" * 50_000),  # nested too deep for the JSON parser
    ("/retrieve", '{"queries": ["a"], "topk": ' + "9" * 5000 + "}"),  # too long an integer
    ("/retrieve", "null"),
    ("/retrieve", '"queries"'),
    ("/retrieve", {"queries": None}),
    ("/retrieve", {"queries": 5}),
    ("/retrieve", {"queries": {"q": "a"}}),
    ("/retrieve", {"queries": [["nested"]]}),
    ("/retrieve", {"queries": [None]}),
    ("/retrieve", {"queries": ["a"], "topk": -1}),
    ("/retrieve", {"queries": ["a"], "topk": 1.5}),
    ("/retrieve", {"queries": ["a"], "topk": [3]}),
    ("/retrieve", '{"queries": ["a"], "topk": NaN}'),
    ("/retrieve", '{"queries": ["a"], "topk": Infinity}'),
    ("/retrieve", {"queries": ["a"], "return_scores": 1}),
    ("/access", {"urls": "https://en.wikipedia.org/wiki/Page_1"}),
    ("/access", {"urls": [1, 2]}),
    ("/access", {"urls": [None]}),
    ("/access", {"queries": ["a"]}),
]


@pytest.mark.parametrize("path, body", BAD_BODIES, ids=[f"bad{i}" for i in range(len(BAD_BODIES))])
def test_malformed_or_mistyped_body_is_a_400_json_error(server, path, body):
    status, payload = request(server.port, "POST", path, body)
    assert status == 400
    assert isinstance(payload["error"], str) and payload["error"]


def test_thousands_of_queries_or_urls_in_one_request_are_refused(server):
    status, payload = request(server.port, "POST", "/retrieve", {"queries": ["river"] * 5000})
    assert status == 400 and "too many" in payload["error"]
    status, payload = request(server.port, "POST", "/access", {"urls": ["/wiki/Page_1"] * 5000})
    assert status == 400 and "too many" in payload["error"]
    # the limit itself is served, with any topk up to the maximum
    status, payload = request(server.port, "POST", "/retrieve", {"queries": ["river castle"] * 256, "topk": 3})
    assert status == 200 and len(payload["result"]) == 256
    status, payload = request(server.port, "POST", "/retrieve", {"queries": ["river castle"] * 8, "topk": 100})
    assert status == 200 and [len(hits) for hits in payload["result"]] == [100] * 8
    assert healthy(server.port)


def test_oversized_bodies_are_refused_with_413(server):
    status, payload = request(server.port, "POST", "/retrieve", {"queries": ["x" * (2 << 20)]})
    assert status == 413 and "limit" in payload["error"]
    # Announced far over the limit: refused before the body is read, connection closed.
    reply = raw_exchange(server.port, b"POST /retrieve HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 10000000000\r\n\r\n{")
    json_error(reply, 413)
    assert healthy(server.port)


def test_huge_queries_within_the_body_limit_are_answered(server):
    status, payload = request(server.port, "POST", "/retrieve", {"queries": ["a" * 900_000]})
    assert status == 200 and payload == {"result": [[]]}
    many_words = " ".join(f"w{i}" for i in range(60_000)) + " river"
    status, payload = request(server.port, "POST", "/retrieve", {"queries": [many_words]})
    assert status == 200 and len(payload["result"]) == 1
    status, payload = request(server.port, "POST", "/retrieve", {"queries": ["\ud800 river \udfff", "\x00", "   "]})
    assert status == 200 and payload["result"][1:] == [[], []]


@pytest.mark.parametrize(
    "data, status",
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"POST /retrieve HTTP/9.9\r\n\r\n", 505),
        (b"POST /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"POST /retrieve HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"POST /retrieve HTTP/1.1\r\n" + b"X-H: v\r\n" * 150 + b"\r\n", 431),
        (b"POST /retrieve HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
        (b"POST /retrieve HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
        (b"POST /retrieve HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411),
        (b"POST /retrieve HTTP/1.1\r\n\r\n", 411),
        (b"OPTIONS /retrieve HTTP/1.1\r\n\r\n", 501),
        (b"BREW /retrieve HTTP/1.1\r\n\r\n", 501),
    ],
    ids=["garbage", "version", "long-line", "long-header", "many-headers", "length-nan",
         "length-negative", "chunked", "no-length", "options", "unknown-method"],
)
def test_requests_the_http_layer_rejects_get_a_json_error(server, data, status):
    json_error(raw_exchange(server.port, data), status)
    assert healthy(server.port)


# -- slow, stalled and dropped clients --------------------------------------------------------------


def test_slow_clients_are_cut_off_in_bounded_time_while_others_are_served(server):
    port = server.port
    socks = []
    try:
        for _ in range(10):  # request line only, then silence
            sock = socket.create_connection(("127.0.0.1", port), timeout=8)
            sock.sendall(b"POST /retrieve HTTP/1.1\r\n")
            socks.append(sock)
        for _ in range(10):  # headers done, body never comes
            sock = socket.create_connection(("127.0.0.1", port), timeout=8)
            sock.sendall(b"POST /retrieve HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{\"queries\"")
            socks.append(sock)
        idle = socket.create_connection(("127.0.0.1", port), timeout=8)  # connects, sends nothing
        socks.append(idle)
        started = time.monotonic()
        # Others are served at once while the slow ones hang on.
        for _ in range(5):
            t0 = time.monotonic()
            assert healthy(port)
            status, _ = request(port, "POST", "/retrieve", {"queries": ["river"], "topk": 2})
            assert status == 200 and time.monotonic() - t0 < TIMEOUT
        for sock in socks:  # each is closed by the server at its deadline, none gets a 200
            assert b"200 OK" not in read_until_closed(sock)
        assert time.monotonic() - started < TIMEOUT + 3
    finally:
        for sock in socks:
            sock.close()
    assert healthy(port)


def test_a_client_trickling_its_headers_is_cut_off_at_the_request_deadline(server):
    """One header byte every 0.2 s never trips a per-read timeout; the request deadline cuts it."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=8) as sock:
        sock.sendall(b"POST /retrieve HTTP/1.1\r\n")
        cut = False
        for _ in range(int(10 * TIMEOUT / 0.2)):
            try:
                sock.sendall(b"X")
                time.sleep(0.2)
            except OSError:
                cut = True
                break
            if time.monotonic() - started > TIMEOUT + 0.5:
                # the server has closed by now: whatever it sent ends at EOF
                sock.settimeout(3)
                reply = read_until_closed(sock)
                assert b"200 OK" not in reply
                cut = True
                break
        assert cut
    assert time.monotonic() - started < TIMEOUT + 4
    assert healthy(server.port)


def test_a_client_trickling_its_body_is_cut_off(server):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=8) as sock:
        sock.sendall(b"POST /retrieve HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
        try:
            while time.monotonic() - started < TIMEOUT + 2:
                sock.sendall(b" ")
                time.sleep(0.05)
        except OSError:
            pass
        sock.settimeout(3)
        assert b"200 OK" not in read_until_closed(sock)
    assert time.monotonic() - started < TIMEOUT + 6
    assert healthy(server.port)


def test_dropped_clients_do_not_disturb_the_server(server):
    port = server.port
    for data in (
        b"POST /retrieve HTTP/1.1\r\n",
        b"POST /retrieve HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"que",
        b"",
    ):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if data:
            sock.sendall(data)
        sock.close()
    # Ask for a large answer (several MB) and hang up before reading it (RST instead of FIN).
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        body = json.dumps({"queries": ["river castle league"] * 64, "topk": 50}).encode()
        sock.sendall(b"POST /retrieve HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    assert healthy(port)
    status, payload = request(port, "POST", "/access", {"urls": ["/wiki/Page_7"]})
    assert status == 200 and payload["result"][0]["title"] == "Page 7"


def test_a_small_request_is_not_stuck_behind_huge_ones(server):
    """Huge batches from other clients do not queue a small batch behind them (shared search pool)."""
    heavy = json.dumps({"queries": ["river castle league"] * 256, "topk": 40})
    done = []

    def big():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            conn.request("POST", "/retrieve", body=heavy)
            response = conn.getresponse()
            response.read()
            done.append(response.status)
        finally:
            conn.close()

    threads = [threading.Thread(target=big, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    status, payload = request(server.port, "POST", "/retrieve", {"queries": ["unique7 river"] * 12, "topk": 2})
    small = time.monotonic() - started
    for thread in threads:
        thread.join(60)
    assert status == 200 and payload["result"][0][0]["title"] == "Page 7"
    assert done == [200, 200, 200]
    assert small < 2.0, f"a 12-query request took {small:.1f} s behind 3 huge ones"


def test_a_client_that_stops_reading_a_large_answer_is_cut_off(server):
    # An answer of ~30 MB: more than the kernel's socket buffers hold on both sides.
    body = json.dumps({"queries": ["river castle league"] * 128, "topk": 100}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /retrieve HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        time.sleep(TIMEOUT + 2.0)  # read nothing: the server's write times out and it hangs up
        reply = read_until_closed(sock)
    head, _, rest = reply.partition(b"\r\n\r\n")
    length = int(head.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0])
    assert len(rest) < length  # cut off, not held open forever
    assert healthy(server.port)


def test_connection_limit_answers_503_and_recovers(local):
    srv, thread = start(local, timeout=TIMEOUT, max_connections=4)
    socks = []
    try:
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            sock.sendall(b"POST /retrieve HTTP/1.1\r\n")
            socks.append(sock)
        time.sleep(0.2)
        reply = raw_exchange(srv.port, b"GET /health HTTP/1.1\r\n\r\n")
        assert "too many" in json_error(reply, 503)
        for sock in socks:
            read_until_closed(sock)  # cut off at the deadline, slots released
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if healthy(srv.port):
                    break
            except (AssertionError, OSError, json.JSONDecodeError):
                time.sleep(0.1)
        assert healthy(srv.port)
    finally:
        for sock in socks:
            sock.close()
        stop(srv, thread)


# -- addresses and the filesystem -----------------------------------------------------------------


def test_the_default_bind_address_is_loopback(local):
    assert inspect.signature(make_server).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    args = build_parser().parse_args(["serve", "--index", "somewhere"])
    assert args.host == "127.0.0.1"
    srv = make_server(local, port=0)
    try:
        assert srv.server_address[0] == "127.0.0.1"
        assert srv.url.startswith("http://127.0.0.1:")
    finally:
        srv.server_close()


HOSTILE_URLS = [
    "file:///etc/passwd",
    "file://localhost/etc/passwd",
    "/etc/passwd",
    "../../etc/passwd",
    "../../../../../../etc/passwd",
    "/wiki/../../etc/passwd",
    "/wiki/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "https://en.wikipedia.org/wiki/../../../etc/passwd",
    "https://en.wikipedia.org/w/index.php?title=../../etc/passwd",
    "C:\\Windows\\win.ini",
    "\\\\server\\share\\x",
    "pages.sqlite",
    "index/meta.json",
    "manifest.json",
    "/wiki/\ud800",
    "/wiki/A\x00B",
    "",
]


def test_access_never_reads_files_named_in_the_request(server, corpus_dir):
    """Hostile URLs are not found, and the server opens no file while answering them."""
    opened: list[tuple[str, tuple]] = []
    watching = threading.Event()
    main = threading.main_thread()

    def audit(event: str, args: tuple) -> None:
        if watching.is_set() and threading.current_thread() is not main and (
            event in ("open", "os.listdir", "os.scandir", "shutil.copyfile", "subprocess.Popen")
            or event.startswith("os.")
        ):
            opened.append((event, args))

    sys.addaudithook(audit)  # cannot be removed; inert once ``watching`` is cleared
    watching.set()
    try:
        status, payload = request(server.port, "POST", "/access", {"urls": HOSTILE_URLS})
        for path in ("/etc/passwd", "/../../etc/passwd", "/index/meta.json", "/pages.sqlite",
                     "/manifest.json", "//etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"):
            assert request(server.port, "GET", path)[0] == 404
        status_r, payload_r = request(server.port, "POST", "/retrieve",
                                      {"queries": ["file:///etc/passwd", "../../etc/passwd root:x:0:0"]})
    finally:
        watching.clear()
    assert status == 200 and payload == {"result": [None] * len(HOSTILE_URLS)}
    assert status_r == 200
    for hits in payload_r["result"]:
        assert all(hit["url"].startswith("https://en.wikipedia.org/wiki/Page_") for hit in hits)
    assert opened == []


def test_retriever_failures_never_leak_into_files(server, corpus_dir):
    """The corpus directory is byte-for-byte unchanged after hostile requests."""
    before = {p: p.stat().st_mtime_ns for p in corpus_dir.rglob("*") if p.is_file()}
    request(server.port, "POST", "/access", {"urls": HOSTILE_URLS})
    request(server.port, "POST", "/retrieve", {"queries": HOSTILE_URLS[:-3]})
    after = {p: p.stat().st_mtime_ns for p in corpus_dir.rglob("*") if p.is_file()}
    assert after == before


def _open_store_files(corpus_dir: Path) -> int:
    target = str((corpus_dir / "pages.sqlite").resolve())
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += str(fd.readlink()) == target
        except OSError:
            pass
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_open_files_do_not_grow_with_the_number_of_connections(server, corpus_dir):
    """Each connection is a thread; page lookups reuse pooled SQLite connections, not one per thread."""
    def client(_):
        for _ in range(40):
            status, _payload = request(server.port, "POST", "/access", {"urls": ["/wiki/Page_3"]})
            assert status == 200

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client, range(8)))  # 320 connections, 320 server threads
    assert _open_store_files(corpus_dir) <= 16 + 2
