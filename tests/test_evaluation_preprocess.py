"""Steps 3 and 5: cell cleaning, pandas emulation, preprocess functions and the date parser."""

import datetime as dt

import pytest

from wideseek_env.evaluation import official
from wideseek_env.table import official_dates
from wideseek_env.table.cells import clean_cell
from wideseek_env.table.dates import parse_date
from wideseek_env.table.preprocess import extract_number, norm_date, norm_str


def test_norm_str_modes():
    assert norm_str(" **New York** City ", "widesearch") == "newyorkcity"
    # widesearch deletes only U+0020; default deletes every whitespace and folds full-width forms.
    assert norm_str("a\nb\u00a0c", "widesearch") == "a\nb\u00a0c"
    assert norm_str("a\nb\u00a0c") == "abc"
    assert norm_str("物理（中外合办）") == "物理(中外合办)"


def test_extract_number_modes():
    assert extract_number("about 1,234.50 USD") == "1234.5"
    assert extract_number("about 1,234.50 USD", "widesearch") == "1234.50"
    assert extract_number("31.1亿元") == "31.1"
    assert extract_number("12.5%") == "12.5%"
    assert extract_number("19.0") == "19"
    assert extract_number("n/a") == "NULL"
    assert extract_number("\u221242") == "-42"
    assert extract_number("\u221242", "widesearch") == "42"


def test_norm_date_unparsable_kept():
    assert norm_date("April 29, 1947") == "1947-04-29"
    assert norm_date("incumbent") == "incumbent"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1947-04-29", dt.date(1947, 4, 29)),
        ("1947-04-29T10:00:00Z", dt.date(1947, 4, 29)),
        ("1947/4/29", dt.date(1947, 4, 29)),
        ("April 29, 1947", dt.date(1947, 4, 29)),
        ("29 April 1947", dt.date(1947, 4, 29)),
        ("Apr. 29 1947", dt.date(1947, 4, 29)),
        ("Tuesday, 29th of April 1947", dt.date(1947, 4, 29)),
        ("29-Apr-1947", dt.date(1947, 4, 29)),
        ("Mar 05, 1981", dt.date(1981, 3, 5)),
        ("1947-04", dt.date(1947, 4, 1)),
        ("April 1947", dt.date(1947, 4, 1)),
        ("1947", dt.date(1947, 1, 1)),
        ("4/29/1947", dt.date(1947, 4, 29)),
        ("29/4/1947", dt.date(1947, 4, 29)),
        ("29.04.1947", dt.date(1947, 4, 29)),
        ("2023年8月\u200c", dt.date(2023, 8, 1)),
        ("1947年4月29日", dt.date(1947, 4, 29)),
        ("**2020-11-17**  ", dt.date(2020, 11, 17)),
    ],
)
def test_parse_date_forms(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    "text", ["incumbent", "NA", "2024年年底在任", "October 15, 6pm (BST)", "1947-02-30", "", "47"]
)
def test_parse_date_rejects_non_dates(text):
    assert parse_date(text) is None


def test_clean_cell():
    assert clean_cell("  **Harvard**  ") == "Harvard"
    assert clean_cell("`x`") == "x"
    assert clean_cell("*a* and *b*") == "*a* and *b*"
    assert clean_cell("a<br>b<BR/>c") == "a\nb\nc"
    assert clean_cell("19.0") == "19"
    assert clean_cell("19.50") == "19.50"
    assert clean_cell("AT&amp;T") == "AT&T"


def test_official_answer_frame_reads_like_pandas_read_csv():
    frame = official.answer_frame([["", "a", "a", ""], ["", "1", '"18"Wuliangye', ""], ["", "N/A", "x", ""]])
    assert list(frame.columns) == ["a", "a.1"]  # Unnamed edges dropped, duplicates mangled
    # a field starting with a quote is a quoted field (its quotes go); NA strings are NaN
    assert official.as_strings(frame, "a.1") == ["18Wuliangye", "x"]
    assert official.as_strings(frame, "a") == ["1.0", "nan"]


def test_official_answer_frame_row_with_too_many_fields_is_a_parse_error():
    with pytest.raises(official.OfficialParseError):
        official.answer_frame([["", "a", ""], ["", "x", ""], ["", "1", "2", "3", "4", "5"]])


def test_official_gold_frame_types_columns_as_pandas_does():
    gold = official.gold_frame([{"n": "19", "t": "x"}, {"n": "20", "t": "NA"}], ["n", "t"])
    assert official.as_strings(gold, "n") == ["19", "20"] and official.as_strings(gold, "t") == ["x", "nan"]


def test_official_dates_use_dateparser():
    assert official_dates.norm_date("April 29, 1947") == "1947-04-29"
    assert official_dates.norm_date("not a date at all") == "not a date at all"
    assert official_dates.date_near("29 April 1947", "1947-05-29") == 1.0
    assert official_dates.date_near("1947-04-29", "1947-06-29") == 0.0
    assert official_dates.date_near("vacant", "incumbent") == 1.0  # neither is a date: the official 1
    assert official_dates.date_near("vacant", "1947-04-29") == 0.0
