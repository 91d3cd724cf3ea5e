"""Corpus source readers on small files written by the tests, and detokenisation."""

from __future__ import annotations

import gzip
import json
import lzma
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wideseek_env.corpus.readers import (
    Passage,
    StoredPage,
    clean_cell,
    read_dpr,
    read_jsonl,
    read_ottqa,
    read_rlinf,
    render_table,
    source_files,
)
from wideseek_env.corpus.text import detokenize
from wideseek_env.corpus.types import Page, Table
from wideseek_env.errors import CorpusFormatError

W = "https://en.wikipedia.org/wiki/"


def write_jsonl(path: Path, objects: list) -> Path:
    text = "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in objects)
    if path.suffix == ".xz":
        with lzma.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    elif path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def cell(text: str, *links: str) -> list:
    return [text, list(links)]


def table_obj(uid: str, section: str, rows: list, *, url: str = W + "Jim_Ryun", title: str = "Jim Ryun"):
    return {
        "url": url,
        "title": title,
        "section_title": section,
        "section_text": "Times are in minutes .",
        "intro": "James Ronald Ryun ( born April 29 , 1947 ) is a former runner .",
        "uid": uid,
        "header": [cell("Year"), cell("Event")],
        "data": rows,
    }


@pytest.fixture()
def ottqa_dir(tmp_path: Path) -> Path:
    write_jsonl(
        tmp_path / "train_tables.jsonl.xz",
        [
            table_obj("Jim_Ryun_0", "Records", [[cell("1966"), cell("Mile run", "/wiki/Mile_run")]]),
            table_obj("Jim_Ryun_1", "Medals", [[cell("1968"), cell("Olympic Games , 1968 |")]]),
        ],
    )
    write_jsonl(
        tmp_path / "train_passages.jsonl",
        [
            {"url": "/wiki/Jim_Ryun", "text": "Duplicate intro ."},
            {"url": "/wiki/Mile_run", "text": "The mile run ( 1,609.344 metres ) is a race ."},
        ],
    )
    return tmp_path


def records_of(kind, records):
    return [r for r in records if type(r) is kind]


# -------------------------------------------------------------------------------------- detokenize


@pytest.mark.parametrize(
    ("tokenised", "clean"),
    [
        ("born April 29 , 1947 ) is", "born April 29, 1947) is"),
        ("( born 1947 )", "(born 1947)"),
        ("Yankovic 's first", "Yankovic's first"),
        ("Association ( NBA ) 's season", "Association (NBA)'s season"),
        ("do n't stop", "don't stop"),
        ('the " Weird Al " show', 'the "Weird Al" show'),
        ("won 1 - 1 / 1 - 0", "won 1-1/1-0"),
        ("the ( MFB ) - existed", "the (MFB) - existed"),
        ("Eek ! The Cat", "Eek! The Cat"),
        ("costs $ 5 or 10 %", "costs $5 or 10%"),
        ("a  \t b\n c", "a b c"),
    ],
)
def test_detokenize_rejoins_punctuation(tokenised, clean):
    assert detokenize(tokenised) == clean


@pytest.mark.parametrize(
    "clean", ["James Ronald Ryun (born April 29, 1947) is a runner.", "Mo Farah's 10,000 m", "1997", ""]
)
def test_detokenize_leaves_clean_text_unchanged(clean):
    assert detokenize(clean) == clean


@given(st.text(alphabet=st.sampled_from("ab1 ,.()'\"-/$%\t\n–s"), max_size=40))
def test_detokenize_only_ever_removes_whitespace(text):
    assert "".join(detokenize(text).split()) == "".join(text.split())


# ------------------------------------------------------------------------------------------ OTT-QA


def test_ottqa_first_table_page_holds_intro_and_table_section(ottqa_dir):
    first = records_of(Page, read_ottqa(ottqa_dir))[0]
    intro = "James Ronald Ryun (born April 29, 1947) is a former runner."
    assert first.text.startswith(intro + "\n\n## Records")


def test_ottqa_table_section_renders_the_table_as_markdown(ottqa_dir):
    first = records_of(Page, read_ottqa(ottqa_dir))[0]
    assert "| Year | Event |\n| --- | --- |\n| 1966 | Mile run |" in first.text


def test_ottqa_later_table_of_a_page_yields_only_its_section(ottqa_dir):
    second = records_of(Page, read_ottqa(ottqa_dir))[1]
    assert (second.url, second.text.split("\n")[0]) == (W + "Jim_Ryun", "## Medals")


def test_ottqa_yields_one_table_record_per_table(ottqa_dir):
    tables = records_of(Table, read_ottqa(ottqa_dir))
    assert [t.uid for t in tables] == ["Jim_Ryun_0", "Jim_Ryun_1"]


def test_ottqa_table_record_has_detokenised_cells_and_canonical_links(ottqa_dir):
    table = records_of(Table, read_ottqa(ottqa_dir))[0]
    assert (table.header, table.rows, table.links) == (
        ["Year", "Event"],
        [["1966", "Mile run"]],
        [[[], [W + "Mile_run"]]],
    )


def test_ottqa_pipe_residue_is_removed_from_cells(ottqa_dir):
    table = records_of(Table, read_ottqa(ottqa_dir))[1]
    assert table.rows == [["1968", "Olympic Games, 1968"]]


def test_ottqa_every_cell_value_appears_verbatim_in_the_page_text(ottqa_dir):
    records = list(read_ottqa(ottqa_dir))
    text = "\n".join(p.text for p in records_of(Page, records) if p.url == W + "Jim_Ryun")
    values = [v for t in records_of(Table, records) for row in t.rows for v in row]
    assert all(f"| {v} |" in text for v in values)


def test_ottqa_passage_of_a_table_page_is_skipped(ottqa_dir):
    pages = records_of(Page, read_ottqa(ottqa_dir))
    assert not any("Duplicate intro" in p.text for p in pages)


def test_ottqa_other_passage_becomes_a_page_titled_after_its_url(ottqa_dir):
    page = records_of(Page, read_ottqa(ottqa_dir))[-1]
    assert page == Page(W + "Mile_run", "Mile run", "The mile run (1,609.344 metres) is a race.")


def test_ottqa_reads_tables_before_passages(tmp_path):
    write_jsonl(tmp_path / "a_passages.jsonl", [{"url": "/wiki/P", "text": "P text"}])
    write_jsonl(tmp_path / "z_tables.jsonl", [table_obj("T_0", "S", [[cell("1"), cell("2")]], url=W + "T")])
    assert [type(r).__name__ for r in read_ottqa(tmp_path)] == ["Page", "Table", "Page"]


def test_ottqa_reads_a_single_passage_file(tmp_path):
    path = write_jsonl(tmp_path / "train_passages.jsonl.gz", [{"url": "/wiki/P", "text": "P text"}])
    assert list(read_ottqa(path)) == [Page(W + "P", "P", "P text")]


def test_ottqa_file_with_unknown_role_is_rejected(tmp_path):
    path = write_jsonl(tmp_path / "stuff.jsonl", [])
    with pytest.raises(CorpusFormatError, match="tables or passages"):
        list(read_ottqa(path))


def test_ottqa_directory_without_source_files_is_rejected(tmp_path):
    with pytest.raises(CorpusFormatError, match="no \\*tables.jsonl"):
        list(read_ottqa(tmp_path))


def test_ottqa_malformed_cell_is_reported_with_its_line(tmp_path):
    bad = table_obj("T_0", "S", [["not a cell"]])
    write_jsonl(tmp_path / "train_tables.jsonl", [table_obj("T_1", "S", []), bad])
    with pytest.raises(CorpusFormatError, match=r"train_tables.jsonl, line 2: malformed table"):
        list(read_ottqa(tmp_path))


def test_render_table_puts_one_row_per_line():
    assert render_table(["A", "B"], [["1", "2"]]) == "| A | B |\n| --- | --- |\n| 1 | 2 |"


def test_clean_cell_replaces_inner_pipes():
    assert clean_cell("| a | b |") == "a / b"


# --------------------------------------------------------------------------------------------- DPR


DPR_TSV = (
    "id\ttext\ttitle\n"
    '1\t"Aaron ( or ; ""Ahärôn"" ) is a prophet ."\tAaron\n'
    "2\tHe was the brother of Moses .\tAaron\n"
    "3\t\tEmpty\n"
    "4\tAbba is a band .\tABBA\n"
)


@pytest.fixture()
def dpr_file(tmp_path: Path) -> Path:
    path = tmp_path / "psgs_w100.tsv"
    path.write_text(DPR_TSV, encoding="utf-8")
    return path


def test_dpr_row_yields_a_stored_fragment_and_a_verbatim_passage(dpr_file):
    records = list(read_dpr(dpr_file))
    assert records[:2] == [
        StoredPage(W + "Aaron", "Aaron", 'Aaron (or; "Ahärôn") is a prophet.'),
        Passage(W + "Aaron", "Aaron", 'Aaron (or; "Ahärôn") is a prophet.'),
    ]


def test_dpr_rows_of_one_title_are_fragments_of_one_page(dpr_file):
    urls = [r.url for r in records_of(StoredPage, read_dpr(dpr_file))]
    assert urls == [W + "Aaron", W + "Aaron", W + "ABBA"]


def test_dpr_row_with_empty_text_is_skipped(dpr_file):
    assert not any(r.title == "Empty" for r in read_dpr(dpr_file))


def test_dpr_column_order_follows_the_header(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("id\ttitle\ttext\n1\tAaron\tA prophet .\n", encoding="utf-8")
    assert list(read_dpr(path))[1] == Passage(W + "Aaron", "Aaron", "A prophet.")


def test_dpr_file_without_header_reads_id_text_title(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("1\tA prophet .\tAaron\n", encoding="utf-8")
    assert list(read_dpr(path))[1] == Passage(W + "Aaron", "Aaron", "A prophet.")


def test_dpr_row_with_too_few_columns_is_reported_with_its_line(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("id\ttext\ttitle\n1\tA prophet .\tAaron\n2\tno title\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"p.tsv, line 3: expected 3 tab-separated columns, got 2"):
        list(read_dpr(path))


def test_dpr_bad_quoting_is_reported_with_its_line(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text('id\ttext\ttitle\n1\t"quoted" tail\tAaron\n', encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"p.tsv, line 2: malformed TSV"):
        list(read_dpr(path))


def test_dpr_empty_title_is_reported_with_its_line(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("id\ttext\ttitle\n1\tSome text .\t \n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"p.tsv, line 2: empty title"):
        list(read_dpr(path))


# ------------------------------------------------------------------------------------------- RLinf

RLINF_PAGE = {
    "url": "https://en.wikipedia.org/w/index.php?title=List%20of%20capitals%20of%20France",
    "contents": "This is a chronological list of capitals of France .",
}
RLINF_PASSAGE = {
    "id": "0",
    "wikipedia_id": "123",
    "url": RLINF_PAGE["url"],
    "contents": '"List of capitals of France"\nThis is a chronological list .',
}
CAPITALS = W + "List_of_capitals_of_France"


def test_rlinf_with_both_files_stores_webpages_and_indexes_corpus_passages(tmp_path):
    write_jsonl(tmp_path / "wiki_webpages.jsonl", [RLINF_PAGE])
    write_jsonl(tmp_path / "wiki_corpus.jsonl", [RLINF_PASSAGE])
    assert list(read_rlinf(tmp_path)) == [
        StoredPage(
            CAPITALS, "List of capitals of France", "This is a chronological list of capitals of France."
        ),
        Passage(CAPITALS, "List of capitals of France", "This is a chronological list."),
    ]


def test_rlinf_corpus_alone_is_stored_and_indexed(tmp_path):
    path = write_jsonl(tmp_path / "wiki_corpus.jsonl", [RLINF_PASSAGE])
    assert [type(r) for r in read_rlinf(path)] == [StoredPage, Passage]


def test_rlinf_webpages_alone_become_pages_split_by_the_builder(tmp_path):
    write_jsonl(tmp_path / "wiki_webpages.jsonl.xz", [RLINF_PAGE])
    assert [type(r) for r in read_rlinf(tmp_path)] == [Page]


def test_rlinf_passage_without_url_takes_it_from_the_quoted_title(tmp_path):
    passage = {"id": "1", "contents": '"Alan Turing"\nA mathematician .'}
    write_jsonl(tmp_path / "wiki_corpus.jsonl", [passage])
    assert list(read_rlinf(tmp_path))[1] == Passage(W + "Alan_Turing", "Alan Turing", "A mathematician.")


def test_rlinf_directory_without_its_files_is_rejected(tmp_path):
    with pytest.raises(CorpusFormatError, match="wiki_webpages.jsonl and/or wiki_corpus.jsonl"):
        list(read_rlinf(tmp_path))


# ------------------------------------------------------------------------------------------- JSONL


def test_jsonl_reads_url_title_and_text(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"url": "/wiki/A", "title": "Alpha", "text": "A text ."}])
    assert list(read_jsonl(path)) == [Page(W + "A", "Alpha", "A text.")]


def test_jsonl_title_alone_gives_the_url(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"title": "alan turing", "text": "T"}])
    assert list(read_jsonl(path)) == [Page(W + "Alan_turing", "alan turing", "T")]


def test_jsonl_url_alone_gives_the_title(tmp_path):
    line = {"url": "https://en.m.wikipedia.org/wiki/Alan_Turing", "text": "T"}
    path = write_jsonl(tmp_path / "p.jsonl", [line])
    assert list(read_jsonl(path)) == [Page(W + "Alan_Turing", "Alan Turing", "T")]


def test_jsonl_accepts_search_r1_contents(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": "0", "contents": '"Aaron"\nAaron is a prophet .'}])
    assert list(read_jsonl(path)) == [Page(W + "Aaron", "Aaron", "Aaron is a prophet.")]


def test_jsonl_skips_empty_text(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"title": "A", "text": "  "}, {"title": "B", "text": "b"}])
    assert [p.title for p in read_jsonl(path)] == ["B"]


def test_jsonl_reads_every_file_of_a_directory_in_name_order(tmp_path):
    write_jsonl(tmp_path / "b.jsonl", [{"title": "B", "text": "b"}])
    write_jsonl(tmp_path / "a.jsonl.xz", [{"title": "A", "text": "a"}])
    assert [p.title for p in read_jsonl(tmp_path)] == ["A", "B"]


def test_jsonl_non_wikipedia_url_is_rejected_with_its_line(tmp_path):
    lines = [{"title": "A", "text": "a"}, {"url": "https://example.com/x", "text": "x"}]
    path = write_jsonl(tmp_path / "p.jsonl", lines)
    with pytest.raises(CorpusFormatError, match=r"p.jsonl, line 2: not a.*Wikipedia URL"):
        list(read_jsonl(path))


def test_jsonl_line_without_url_or_title_is_rejected(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "x"}])
    with pytest.raises(CorpusFormatError, match=r"p.jsonl, line 1: needs a 'url' or a 'title'"):
        list(read_jsonl(path))


def test_jsonl_line_without_text_is_rejected(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"title": "A"}])
    with pytest.raises(CorpusFormatError, match=r"p.jsonl, line 1: missing field 'text'"):
        list(read_jsonl(path))


def test_jsonl_field_of_the_wrong_type_is_rejected(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"title": 3, "text": "t"}])
    with pytest.raises(CorpusFormatError, match=r"line 1: field 'title' must be a str, got int"):
        list(read_jsonl(path))


# ------------------------------------------------------------------------------------------ errors


def test_missing_input_is_reported(tmp_path):
    with pytest.raises(CorpusFormatError, match=r"nope.jsonl: no such file or directory"):
        list(read_jsonl(tmp_path / "nope.jsonl"))


def test_invalid_json_is_reported_with_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"title": "A", "text": "a"}\n{"title": \n', encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"p.jsonl, line 2: invalid JSON"):
        list(read_jsonl(path))


def test_json_that_is_not_an_object_is_reported(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"p.jsonl, line 1: expected a JSON object, got list"):
        list(read_jsonl(path))


def test_blank_lines_are_ignored(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('\n{"title": "A", "text": "a"}\n\n', encoding="utf-8")
    assert len(list(read_jsonl(path))) == 1


def test_undecodable_bytes_are_reported_with_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"title": "A", "text": "a"}\n{"title": "B", "text": "\xff\xfe"}\n')
    with pytest.raises(CorpusFormatError, match=r"p.jsonl, line 2: not valid UTF-8"):
        list(read_jsonl(path))


def test_undecodable_tsv_bytes_are_reported_with_file_and_line(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_bytes(b"id\ttext\ttitle\n1\tok\tA\n2\t\xff\tB\n")
    with pytest.raises(CorpusFormatError, match=r"p.tsv, line 3: not valid UTF-8"):
        list(read_dpr(path))


def test_truncated_xz_stream_is_reported_with_file_and_line(tmp_path):
    passages = [{"url": f"/wiki/T{i}", "text": f"Passage number {i * 7919} of many."} for i in range(300)]
    full = write_jsonl(tmp_path / "full.jsonl.xz", passages)
    cut = tmp_path / "train_passages.jsonl.xz"
    cut.write_bytes(full.read_bytes()[:-40])
    expected = r"train_passages.jsonl.xz, line \d+: the file is truncated or corrupt"
    with pytest.raises(CorpusFormatError, match=expected):
        list(read_ottqa(cut))


def test_format_error_has_no_chained_traceback(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("{oops\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError) as caught:
        list(read_jsonl(path))
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_source_files_rejects_an_unknown_source(tmp_path):
    with pytest.raises(CorpusFormatError, match="unknown corpus source 'wiki'"):
        source_files("wiki", tmp_path)


def test_source_files_lists_ottqa_tables_then_passages(ottqa_dir):
    names = [p.name for p in source_files("ottqa", ottqa_dir)]
    assert names == ["train_tables.jsonl.xz", "train_passages.jsonl"]
