"""The search and access tools: batching, output, relevance selection, and every kind of bad input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wideseek_env.corpus.build import build_corpus
from wideseek_env.corpus.local import LocalRetriever
from wideseek_env.tools import AccessTool, SearchTool, Tool, openai_schema
from wideseek_env.tools.access import NOT_FOUND_TEXT
from wideseek_env.tools.page_selection import select_relevant

W = "https://en.wikipedia.org/wiki/"


def _paragraph(i: int) -> str:
    return (f"Paragraph {i} of the history of Springfield describes the river trade, the market "
            f"square, the council elections and the railway of that period in some detail. " * 3).strip()


LIGHTHOUSE = ("The Springfield lighthouse was designed by engineer Harriet Quimby and first lit in "
              "1873; its lamp could be seen eleven nautical miles out to sea.")
TABLE = "| Year | Mayor |\n| --- | --- |\n" + "\n".join(f"| {1900 + i} | Mayor number {i} |" for i in range(60))
HISTORY = [_paragraph(i) for i in range(12)] + [LIGHTHOUSE] + [_paragraph(i) for i in range(12, 24)]
PAGES = [
    {"url": "/wiki/Jim_Ryun", "text": "James Ronald Ryun (born April 29, 1947) is a former American "
     "politician and Olympic track and field athlete, the first high school athlete to run a mile "
     "in under four minutes."},
    {"url": "/wiki/Marty_Liquori", "text": "Marty Liquori (born September 11, 1949) is an American "
     "former middle-distance runner."},
    {"url": "/wiki/Café_Tacuba", "text": "Café Tacuba is a Mexican rock band formed in 1989."},
    {"url": "/wiki/Mercury_(planet)", "text": "Mercury is the smallest planet of the Solar System."},
    {"url": "/wiki/Mercury_(element)", "text": "Mercury is a chemical element with symbol Hg."},
] + [{"url": "/wiki/History_of_Springfield", "text": p} for p in HISTORY]  # fragments of one page


@pytest.fixture(scope="module")
def retriever(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    src = root / "pages.jsonl"
    src.write_text("".join(json.dumps(p) + "\n" for p in PAGES), encoding="utf-8")
    build_corpus("jsonl", src, root / "corpus", progress=False)
    with LocalRetriever(root / "corpus", threads=2) as r:
        yield r


class Counting:
    """Wraps a retriever and records its calls."""

    def __init__(self, inner):
        self.inner = inner
        self.searches: list[tuple[list[str], int]] = []
        self.accesses: list[list[str]] = []

    def search_many(self, queries, k=3):
        self.searches.append((list(queries), k))
        return self.inner.search_many(queries, k)

    def access_many(self, urls):
        self.accesses.append(list(urls))
        return self.inner.access_many(urls)

    def close(self):
        pass


class Broken:
    def search_many(self, queries, k=3):
        raise ConnectionError("server gone")

    def access_many(self, urls):
        raise ConnectionError("server gone")

    def close(self):
        pass


# -- schemas ----------------------------------------------------------------------------------


def test_schemas(retriever):
    for tool, key, item_keys in ((SearchTool(retriever), "queries", {"query", "count"}),
                                 (AccessTool(retriever), "urls", {"url", "info_to_extract"})):
        assert isinstance(tool, Tool)
        schema = openai_schema(tool)
        json.dumps(schema)
        fn = schema["function"]
        assert schema["type"] == "function" and fn["name"] == tool.name and fn["description"]
        params = fn["parameters"]
        assert params["type"] == "object" and params["required"] == [key]
        items = params["properties"][key]["items"]
        assert set(items["properties"]) == item_keys
        assert params["properties"][key]["maxItems"] == 5
        assert all(p["description"] for p in items["properties"].values())
    count = openai_schema(SearchTool(retriever))["function"]["parameters"]["properties"]["queries"]["items"]["properties"]["count"]
    assert (count["default"], count["minimum"], count["maximum"]) == (3, 1, 10)


# -- search -----------------------------------------------------------------------------------


def test_search_output(retriever):
    [text] = SearchTool(retriever).call_many([{"queries": [{"query": "Jim Ryun mile", "count": 2}]}])
    assert text.startswith('### Query 1: "Jim Ryun mile"')
    assert "[1] Jim Ryun\nURL: " + W + "Jim_Ryun\n" in text and "April 29, 1947" in text
    assert "[3]" not in text


def test_search_batches_all_queries_of_all_calls(retriever):
    counting = Counting(retriever)
    tool = SearchTool(counting)
    out = tool.call_many([
        {"queries": [{"query": "Jim Ryun", "count": 1}, {"query": "Liquori"}]},
        "not a dict",
        {"queries": [{"query": "Mexican rock band", "count": 5}, {"query": ""}]},
    ])
    assert len(out) == 3
    assert counting.searches == [(["Jim Ryun", "Liquori", "Mexican rock band"], 5)]
    assert out[0].count("URL: ") <= 1 + 3 and "[2]" not in out[0].split("### Query 2")[0]
    assert out[1].startswith("Error:")
    assert "Café Tacuba" in out[2] and "### Query 2\nError: the query is empty" in out[2]


def test_search_snippet_cut(retriever):
    [text] = SearchTool(retriever, snippet_chars=20).call_many([{"queries": [{"query": "Jim Ryun"}]}])
    assert "James Ronald Ryun (b..." in text


BAD_SEARCH = [
    (None, "Error: the search arguments must be a JSON object"),
    ("Jim Ryun", "Error: the search arguments must be a JSON object"),
    (42, "Error:"),
    ([{"query": "x"}], "Error:"),
    ({}, 'Error: missing "queries"'),
    ({"queries": None}, 'Error: missing "queries"'),
    ({"queries": 7}, 'Error: "queries" must be a list'),
    ({"queries": []}, 'Error: "queries" is empty'),
]


@pytest.mark.parametrize("arguments, start", BAD_SEARCH)
def test_search_bad_arguments(retriever, arguments, start):
    [text] = SearchTool(retriever).call_many([arguments])
    assert text.startswith(start)
    assert "queries" in text  # says what shape is expected


@pytest.mark.parametrize(
    "item, expected",
    [
        (5, "Error: each query must be an object"),
        (None, "Error: each query must be an object"),
        ({"count": 3}, 'Error: missing "query"'),
        ({"query": 7}, 'Error: "query" must be a string'),
        ({"query": ["a"]}, 'Error: "query" must be a string'),
        ({"query": "   \n "}, "Error: the query is empty"),
    ],
)
def test_search_bad_items_do_not_stop_the_others(retriever, item, expected):
    [text] = SearchTool(retriever).call_many([{"queries": [item, {"query": "Jim Ryun"}]}])
    first, second = text.split("### Query 2")
    assert expected in first
    assert "Jim Ryun" in second and "URL: " + W + "Jim_Ryun" in second


@pytest.mark.parametrize(
    "count, hits, note",
    [
        (None, 3, None), (1, 1, None), ("2", 2, None), (2.0, 2, None),
        (0, 1, "count 0 is below 1; used 1"), (-5, 1, "count -5 is below 1"),
        (100, 4, "count 100 is above the maximum 10; used 10"),
        ("abc", 3, "is not a whole number; used 3"), (True, 3, "is not a number; used 3"),
        (2.5, 3, "is not a whole number"), ([1], 3, "is not a whole number"),
    ],
)
def test_search_count_handling(retriever, count, hits, note):
    item = {"query": "Jim Ryun Liquori Springfield Tacuba"}
    if count is not None:
        item["count"] = count
    [text] = SearchTool(retriever).call_many([{"queries": [item]}])
    assert text.count("\nURL: ") == hits  # the corpus has 4 pages
    if note:
        assert "Note: count " in text and note in text
    else:
        assert "Note:" not in text


def test_search_leniency(retriever):
    tool = SearchTool(retriever)
    a, b, c = tool.call_many([
        {"queries": ["Jim Ryun"]},
        {"query": "Jim Ryun", "count": 1},
        {"queries": {"query": "Jim Ryun"}},
    ])
    for text in (a, b, c):
        assert "URL: " + W + "Jim_Ryun" in text


def test_search_too_many_queries_and_huge_query(retriever):
    counting = Counting(retriever)
    queries = [{"query": f"Ryun {i}"} for i in range(8)] + [{"query": "Ryun " + "x" * 5000}]
    [text] = SearchTool(counting, max_queries=5).call_many([{"queries": queries}])
    assert text.startswith("Note: only the first 5 queries were run; 4 more were dropped.")
    assert text.count("### Query") == 5 and len(counting.searches[0][0]) == 5
    [text] = SearchTool(counting, max_query_chars=100).call_many([{"queries": [queries[-1]]}])
    assert "Note: the query was cut to its first 100 characters." in text
    assert len(counting.searches[-1][0][0]) == 100


def test_search_no_results_and_broken_retriever(retriever):
    [text] = SearchTool(retriever).call_many([{"queries": [{"query": "qwxzv plokm"}]}])
    assert "No results found" in text
    out = SearchTool(Broken()).call_many([{"queries": [{"query": "x"}]}, None])
    assert out[0].startswith("Error: search is unavailable (ConnectionError: server gone)")
    assert out[1].startswith("Error: the search arguments")


def test_search_empty_batch(retriever):
    assert SearchTool(retriever).call_many([]) == []


# -- access -----------------------------------------------------------------------------------


def test_access_url_forms_resolve_to_one_page(retriever):
    counting = Counting(retriever)
    forms = ["/wiki/Jim_Ryun", W + "Jim_Ryun", "http://en.m.wikipedia.org/wiki/Jim_Ryun#Career",
             "https://en.wikipedia.org/w/index.php?title=Jim_Ryun", "https://en.wikipedia.org/w/index.php/Jim_Ryun",
             W + "jim_Ryun", W + "Jim Ryun", W + "Jim%20Ryun", "en.wikipedia.org/wiki/Jim_Ryun"]
    out = AccessTool(counting).call_many(
        [{"urls": [{"url": f, "info_to_extract": "birth date"}]} for f in forms])
    assert counting.accesses == [[W + "Jim_Ryun"]]  # one batched lookup, each page once
    bodies = {text.split("\n", 1)[1] for text in out}
    assert len(bodies) == 1
    body = bodies.pop()
    assert body.startswith("Title: Jim Ryun\nContent:\n") and "April 29, 1947" in body


@pytest.mark.parametrize("title", ["Jim Ryun", "Jim_Ryun", "jim Ryun", "jim ryun", " JIM RYUN ".title()])
def test_access_bare_title_naming_one_page_reads_it(retriever, title):
    [text] = AccessTool(retriever).call_many([{"urls": [{"url": title, "info_to_extract": "birth"}]}])
    assert f"### URL 1: {title.strip()}\nTitle: Jim Ryun\n" in text and "April 29, 1947" in text


def test_access_title_naming_several_pages_lists_them(retriever):
    for form in ("Mercury", W + "mercury"):
        [text] = AccessTool(retriever).call_many([{"urls": [{"url": form, "info_to_extract": "x"}]}])
        assert "names several pages; access the one you mean:" in text
        assert f"- {W}Mercury_(element)\n- {W}Mercury_(planet)" in text and "Hg" not in text


def test_access_unknown_bare_title_says_so(retriever):
    [text] = AccessTool(retriever).call_many([{"urls": ["No such page at all"]}])
    assert "No page titled 'No such page at all' is in this offline corpus" in text


def test_access_retriever_without_candidates_still_reads_exact_titles(retriever):
    counting = Counting(retriever)  # has no candidates_many
    out = AccessTool(counting).call_many([{"urls": ["Jim Ryun"]}, {"urls": ["jim ryun"]}])
    assert "Title: Jim Ryun" in out[0] and "No page titled 'jim ryun'" in out[1]


def test_access_unicode_url(retriever):
    [text] = AccessTool(retriever).call_many([{"urls": [{"url": W + "Caf%C3%A9_Tacuba", "info_to_extract": "x"}]}])
    assert "Title: Café Tacuba" in text and "1989" in text


def test_access_missing_and_foreign_urls(retriever):
    [text] = AccessTool(retriever).call_many([{"urls": [
        {"url": W + "No_such_page", "info_to_extract": "x"},
        {"url": "https://www.google.com/search?q=ryun", "info_to_extract": "x"},
        {"url": "https://de.wikipedia.org/wiki/Jim_Ryun", "info_to_extract": "x"},
        {"url": "de.wikipedia.org/wiki/Jim_Ryun", "info_to_extract": "x"},
    ]}])
    blocks = text.split("### URL ")[1:]
    assert blocks[0].strip().endswith(NOT_FOUND_TEXT)
    assert NOT_FOUND_TEXT == "No useful information is found under this URL."
    for block in blocks[1:]:
        assert "Error:" in block and "Only English Wikipedia pages are available" in block
        assert "https://en.wikipedia.org/wiki/Title" in block


def test_access_miss_suggests_pages_with_the_nearest_titles(retriever):
    tool = AccessTool(retriever, suggestions=2)
    [text] = tool.call_many([{"urls": [{"url": W + "History_of_Springfeld_town", "info_to_extract": "x"}]}])
    assert text.splitlines()[1] == NOT_FOUND_TEXT + " Pages with similar titles:"
    assert f"- {W}History_of_Springfield" in text
    assert len([line for line in text.splitlines() if line.startswith("- ")]) <= 2


def test_access_miss_suggestions_are_off_by_default_and_never_break_the_call(retriever):
    [plain] = AccessTool(retriever).call_many([{"urls": [W + "History_of_Springfeld_town"]}])
    assert plain.strip().endswith(NOT_FOUND_TEXT) and "similar titles" not in plain

    class SearchBroken(Counting):
        def search_many(self, queries, k=3):
            raise ConnectionError("server gone")

    [text] = AccessTool(SearchBroken(retriever), suggestions=3).call_many([{"urls": [W + "Nope", W + "Jim_Ryun"]}])
    assert NOT_FOUND_TEXT in text and "Title: Jim Ryun" in text


def test_access_miss_suggests_a_title_with_a_typo_in_every_word(retriever):
    # "Jmi Ryn": no word of it is in the index, so only the retriever's similar-title lookup finds it
    [text] = AccessTool(retriever, suggestions=3).call_many([{"urls": [W + "Jmi_Ryn"]}])
    assert text.splitlines()[2] == f"- {W}Jim_Ryun"
    [without] = AccessTool(Counting(retriever), suggestions=3).call_many([{"urls": [W + "Jmi_Ryn"]}])
    assert f"{W}Jim_Ryun" not in without


def test_similar_titles_allow_one_typo_per_word(retriever):
    got = retriever.similar_titles_many(["Jmi Ryn", W + "Marty_Liqouri", "Jim Ryun", "", "https://example.com/x"], 2)
    assert got[0][0] == W + "Jim_Ryun" and got[1][0] == W + "Marty_Liquori" and got[2][0] == W + "Jim_Ryun"
    assert got[3:] == [[], []]
    assert all(len(urls) <= 2 for urls in got)
    assert retriever.similar_titles_many(["Jxyz Rqqq"]) == [[]]  # two typos in a word: too far


def test_access_suggestions_must_be_a_count():
    with pytest.raises(ValueError, match="suggestions"):
        AccessTool(None, suggestions=-1)


BAD_ACCESS = [
    (None, "Error: the access arguments must be a JSON object"),
    ("https://en.wikipedia.org/wiki/Jim_Ryun", "Error: the access arguments must be a JSON object"),
    ({}, 'Error: missing "urls"'),
    ({"urls": 3}, 'Error: "urls" must be a list'),
    ({"urls": []}, 'Error: "urls" is empty'),
]


@pytest.mark.parametrize("arguments, start", BAD_ACCESS)
def test_access_bad_arguments(retriever, arguments, start):
    [text] = AccessTool(retriever).call_many([arguments])
    assert text.startswith(start) and "urls" in text


@pytest.mark.parametrize("item", [None, 5, {"url": 5}, {"info_to_extract": "x"}, {"url": "  "}, ["x"]])
def test_access_bad_items_do_not_stop_the_others(retriever, item):
    [text] = AccessTool(retriever).call_many([{"urls": [item, {"url": "/wiki/Jim_Ryun", "info_to_extract": "x"}]}])
    first, second = text.split("### URL 2")
    assert "Error:" in first
    assert "Title: Jim Ryun" in second


def test_access_leniency_and_bad_info(retriever):
    out = AccessTool(retriever).call_many([
        {"urls": ["/wiki/Jim_Ryun"]},
        {"url": "/wiki/Jim_Ryun", "info_to_extract": "birth"},
        {"urls": "/wiki/Jim_Ryun"},
        {"urls": [{"url": "/wiki/Jim_Ryun", "info_to_extract": {"not": "text"}}]},
    ])
    assert all("Title: Jim Ryun" in text and "1947" in text for text in out)


def test_access_too_many_urls(retriever):
    counting = Counting(retriever)
    urls = [{"url": "/wiki/Jim_Ryun", "info_to_extract": "x"}] * 4 + [{"url": "/wiki/Marty_Liquori"}] * 3
    [text] = AccessTool(counting, max_urls=5).call_many([{"urls": urls}])
    assert text.startswith("Note: only the first 5 URLs were read; 2 more were dropped.")
    assert text.count("### URL") == 5


def test_access_relevance_selection_within_budget(retriever):
    budget = 1500
    [text] = AccessTool(retriever, page_chars=budget).call_many([{"urls": [
        {"url": "/wiki/History_of_Springfield", "info_to_extract": "lighthouse engineer"}]}])
    header, content = text.split('"..." marks omitted parts):\n', 1)
    assert 'most relevant to "lighthouse engineer"' in header
    assert len(content) <= budget
    assert LIGHTHOUSE in content
    assert content.startswith(_paragraph(0)[:50])  # the lead is kept
    assert "\n...\n" in content and content.index(_paragraph(0)[:50]) < content.index(LIGHTHOUSE)


def test_access_whole_page_when_it_fits(retriever):
    [text] = AccessTool(retriever).call_many([{"urls": [{"url": "/wiki/History_of_Springfield", "info_to_extract": "x"}]}])
    assert "\nContent:\n" in text and "\n\n".join(HISTORY) in text and "..." not in text


def test_access_summarizer_is_called_once_batched(retriever):
    calls = []

    def summarize(triples):
        calls.append(triples)
        return [f"SUMMARY of {url} for {info}: {len(page)} chars" for url, page, info in triples]

    out = AccessTool(retriever, summarizer=summarize, page_chars=2000).call_many([
        {"urls": [{"url": "/wiki/Jim_Ryun", "info_to_extract": "birth"}, {"url": W + "Nope", "info_to_extract": "x"}]},
        {"urls": [{"url": "/wiki/History_of_Springfield", "info_to_extract": "lighthouse"}]},
    ])
    assert len(calls) == 1 and len(calls[0]) == 2
    (url1, page1, info1), (url2, page2, info2) = calls[0]
    assert (url1, info1) == (W + "Jim_Ryun", "birth") and "1947" in page1
    assert (url2, info2) == (W + "History_of_Springfield", "lighthouse") and LIGHTHOUSE in page2 and len(page2) <= 2000
    assert f"SUMMARY of {W}Jim_Ryun for birth" in out[0] and NOT_FOUND_TEXT in out[0]
    assert "SUMMARY of" in out[1] and LIGHTHOUSE not in out[1]


@pytest.mark.parametrize("summarizer", [
    lambda triples: 1 / 0,
    lambda triples: ["only one"] * (len(triples) + 1),
    lambda triples: None,
])
def test_access_summarizer_failure_falls_back(retriever, summarizer):
    [text] = AccessTool(retriever, summarizer=summarizer).call_many([{"urls": [{"url": "/wiki/Jim_Ryun", "info_to_extract": "x"}]}])
    assert "Note: the summarizer failed" in text and "1947" in text


def test_access_broken_retriever():
    out = AccessTool(Broken()).call_many([{"urls": ["/wiki/X"]}, {"urls": []}])
    assert out[0].startswith("Error: access is unavailable")
    assert out[1].startswith('Error: "urls" is empty')


# -- relevance selection ---------------------------------------------------------------------


def test_select_relevant_table_rows_get_their_header():
    text = "\n\n".join([_paragraph(0), "## Mayors", TABLE, _paragraph(1)])
    assert len(text) > 2400
    out = select_relevant(text, "mayor 1957", 2400)
    assert len(out) <= 2400 and out.startswith(_paragraph(0)[:40])
    row = out.index("| 1957 | Mayor number 57 |")
    assert out.rfind("| Year | Mayor |\n| --- | --- |\n", 0, row) != -1
    assert out.count("| Year | Mayor |") == 1
    # A row far from the table's start: its chunk is shown with the header repeated above it.
    big = "| Year | Mayor |\n| --- | --- |\n" + "\n".join(f"| {1700 + i} | Mayor number {i} |" for i in range(400))
    out = select_relevant("\n\n".join([_paragraph(0), big]), "mayor 2050", 1500)
    assert len(out) <= 1500 and "| 2050 | Mayor number 350 |" in out and "| 1750 |" not in out
    row = out.index("| 2050 |")
    header = out.rfind("...\n| Year | Mayor |\n| --- | --- |\n", 0, row)
    assert header != -1 and "..." not in out[header + 4 : row]


def test_select_relevant_keeps_order_and_marks_omissions():
    text = "\n\n".join(f"Block {i} about topic{i} and filler words here." for i in range(40))
    out = select_relevant(text, "topic25 topic7", 200)
    assert len(out) <= 200
    assert "topic25" in out and "topic7" in out and out.startswith("Block 0")
    assert out.index("topic7") < out.index("topic25") and "..." in out


@settings(max_examples=200, deadline=10_000)
@given(st.text(max_size=3000), st.text(max_size=60), st.integers(min_value=0, max_value=2500))
def test_select_relevant_never_exceeds_the_budget(text, info, budget):
    out = select_relevant(text, info, budget)
    assert len(out) <= max(budget, 0)
    if len(text) <= budget:
        assert out == text


@settings(max_examples=100, deadline=10_000)
@given(st.lists(st.text(alphabet="ab |\n.-", min_size=1, max_size=120), max_size=40), st.integers(100, 900))
def test_select_relevant_structured_text(lines, budget):
    text = "\n".join(lines)
    assert len(select_relevant(text, "a b", budget)) <= budget


def test_access_bare_title_on_the_shared_corpus(ottqa_retriever):
    out = AccessTool(ottqa_retriever).call_many(
        [{"urls": [{"url": t, "info_to_extract": "born"}]} for t in ("Jim Ryun", "Jim_Ryun", "jim ryun")])
    for text in out:
        assert "\nTitle: Jim Ryun\n" in text and "1947" in text
