"""LocalRetriever: BM25 search over a small real corpus, query sanitising, page access by URL."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wideseek_env.corpus.local import LocalRetriever, sanitize_query
from wideseek_env.corpus.types import Hit, Page, Retriever
from wideseek_env.errors import CorpusNotBuiltError
from corpus_helpers import build_jsonl_corpus  # noqa: E402

W = "https://en.wikipedia.org/wiki/"


def filler(seed: int, sentences: int) -> str:
    rng = random.Random(seed)
    words = "river market village council harbour railway school parish bridge mill farm road".split()
    return " ".join(
        " ".join(rng.choice(words) for _ in range(rng.randint(8, 14))).capitalize() + "."
        for _ in range(sentences)
    )


PAGES = [
    {"url": "/wiki/Jim_Ryun", "text": "James Ronald Ryun (born April 29, 1947) is a former American "
     "politician and Olympic track and field athlete. He was the first high school athlete to run a "
     "mile in under four minutes."},
    {"url": "/wiki/Marty_Liquori", "text": "Marty Liquori (born September 11, 1949) is an American "
     "former middle-distance runner who beat Ryun in the NCAA outdoor mile."},
    {"url": "/wiki/Café_Tacuba", "text": "Café Tacuba is a Mexican rock band from Ciudad Satélite, "
     "formed in 1989."},
    {"url": "/wiki/Zebra", "text": "\n\n".join(
        f"Zebra stripes paragraph {i}. Zebras are African equines with black and white stripes. "
        + filler(i, 6) for i in range(12))},
    {"url": "/wiki/Zebra_crossing", "text": "A zebra crossing is a type of pedestrian crossing "
     "used in many places around the world."},
]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return build_jsonl_corpus(tmp_path_factory.mktemp("corpus"), PAGES)


@pytest.fixture(scope="module")
def retriever(corpus_dir):
    with LocalRetriever(corpus_dir, threads=2) as r:
        yield r


def test_is_a_retriever(retriever):
    assert isinstance(retriever, Retriever)
    assert retriever.num_passages > len(PAGES)


def test_finds_the_right_page(retriever):
    hits = retriever.search_many(["Jim Ryun mile four minutes"], k=3)[0]
    assert hits and isinstance(hits[0], Hit)
    assert hits[0].url == W + "Jim_Ryun"
    assert hits[0].title == "Jim Ryun"
    assert "April 29, 1947" in hits[0].text
    assert hits[0].score > 0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_non_ascii_query(retriever):
    [hit] = retriever.search_many(["Café Tacuba Satélite"], 1)[0]
    assert hit.url == W + "Café_Tacuba" and hit.title == "Café Tacuba"


@pytest.mark.parametrize(
    "query",
    ['what: "Jim Ryun NOT', "title:Ryun", "Ryun AND OR NOT", "+Ryun -mile", "Ryun~2^3 *",
     "(((Ryun]]", "Ryun\\", "url:http://x Ryun", "[Ryun TO mile}", 'Ryun "mile'],
)
def test_query_syntax_is_neutralised(retriever, query):
    hits = retriever.search_many([query], 3)[0]
    assert hits and hits[0].url == W + "Jim_Ryun"


@pytest.mark.parametrize("query", ["", "   ", "!!! ??? ...", ":", '"', "()", None, 5, b"Ryun"])
def test_empty_or_invalid_query_gives_no_hits(retriever, query):
    assert retriever.search_many([query], 3) == [[]]


def test_k_bounds(retriever):
    assert retriever.search_many(["zebra"], 0) == [[]]
    assert retriever.search_many(["zebra"], -3) == [[]]
    assert len(retriever.search_many(["zebra"], 1)[0]) == 1
    assert len(retriever.search_many(["zebra stripes"], 1000)[0]) <= 100
    assert retriever.search_many([], 3) == []


def test_hits_are_deduplicated_by_page(retriever, corpus_dir):
    hits = retriever.search_many(["zebra stripes"], 3)[0]
    urls = [h.url for h in hits]
    assert len(urls) == len(set(urls)) == 2  # Zebra (best passage only) and Zebra crossing
    with LocalRetriever(corpus_dir, dedup_pages=False) as raw:
        raw_urls = [h.url for h in raw.search_many(["zebra stripes"], 3)[0]]
    assert raw_urls.count(W + "Zebra") >= 2


def test_batch_equals_single_queries(retriever):
    queries = ["Jim Ryun", "zebra", "", "Liquori NCAA", "Mexican rock band", "mile runner"] * 3
    batched = retriever.search_many(queries, 2)
    assert batched == [retriever.search_many([q], 2)[0] for q in queries]


def test_concurrent_callers(retriever):
    queries = ["Jim Ryun", "zebra crossing", "Liquori", "Café Tacuba"] * 8
    expected = retriever.search_many(queries, 3)
    results, errors = [], []

    def work():
        try:
            results.append(retriever.search_many(queries, 3))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(r == expected for r in results)


@pytest.mark.parametrize(
    "url",
    [
        "/wiki/Jim_Ryun",
        "wiki/Jim_Ryun",
        "https://en.wikipedia.org/wiki/Jim_Ryun",
        "http://en.m.wikipedia.org/wiki/Jim_Ryun#Career",
        "en.wikipedia.org/wiki/Jim Ryun",
        "https://en.wikipedia.org/wiki/jim_Ryun",
        "https://en.wikipedia.org/w/index.php?title=Jim%20Ryun&oldid=1",
        "https://en.wikipedia.org/w/index.php/Jim_Ryun",
        "https://en.wikipedia.org/wiki/Jim%5FRyun",
    ],
)
def test_access_url_forms(retriever, url):
    [page] = retriever.access_many([url])
    assert isinstance(page, Page)
    assert page.url == W + "Jim_Ryun" and page.title == "Jim Ryun"
    assert "April 29, 1947" in page.text


def test_access_misses(retriever):
    assert retriever.access_many(
        ["https://example.com/wiki/Jim_Ryun", "https://en.wikipedia.org/wiki/No_such_page", "", None, 7]
    ) == [None, None, None, None, None]
    assert retriever.access_many([]) == []
    cafes = retriever.access_many([W + "Café_Tacuba", W + "Caf%C3%A9_Tacuba", "/wiki/café Tacuba"])
    assert all(c is not None and c.title == "Café Tacuba" for c in cafes)


def test_missing_corpus(tmp_path):
    with pytest.raises(CorpusNotBuiltError):
        LocalRetriever(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusNotBuiltError):
        LocalRetriever(tmp_path / "empty")


def test_close(corpus_dir):
    r = LocalRetriever(corpus_dir, threads=2)
    assert r.search_many(["zebra"] * 8, 1)[0]
    r.close()
    r.close()  # idempotent
    with pytest.raises(RuntimeError):
        r.search_many(["zebra"], 1)


def test_sanitize_query():
    assert sanitize_query('What: "Jim Ryun" NOT (mile)') == "what jim ryun mile"
    assert sanitize_query("the of and") == "the of and"  # only stopwords: keep them
    assert sanitize_query("Ryun ryun RYUN") == "ryun ryun ryun"  # repeats weigh more, as in Lucene
    assert sanitize_query("...") == ""
    assert len(sanitize_query(" ".join(f"w{i}" for i in range(500))).split()) == 32


@settings(max_examples=150, deadline=10_000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=80), max_size=6))
def test_any_text_never_raises(retriever, queries):
    results = retriever.search_many(queries, 2)
    assert len(results) == len(queries)
    assert all(len(hits) <= 2 for hits in results)


def test_title_and_text_words_are_searched_together_in_one_body_field(tmp_path):
    corpus = build_jsonl_corpus(tmp_path, [{"url": "/wiki/Jim_Ryun", "text": "An athlete."},
                                           {"url": "/wiki/Miler", "text": "Ryun ran a mile."}])
    with LocalRetriever(corpus) as r:
        [hit] = r.search_many(["ryun athlete"], 1)[0]  # one word from the title, one from the text
        assert (hit.title, hit.text) == ("Jim Ryun", "An athlete.")
