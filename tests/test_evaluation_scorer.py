"""score_answer on small hand-made tasks; every expected number is computed by hand in a comment.

The "cities" task has 5 required columns and 4 gold rows (20 gold items):
name (key, exact_match), country (llm_judge), population (number_near 5%), founded (date_near),
website (url_match).
"""

import pytest

from wideseek_env.evaluation import score_answer
from wideseek_env.table.markdown import render_table
from wideseek_env.table.schema import ColumnSpec, Task

HEADER = ["Name", "Country", "Population", "Founded", "Website"]
GOLD = [
    ["Springfield", "USA", "100,000", "1850-03-01", "https://www.springfield.gov/"],
    ["Shelbyville", "USA", "50000", "1860-07-15", "https://shelbyville.gov/"],
    ["Ogdenville", "Canada", "20000", "1900-01-10", "https://ogdenville.ca/"],
    ["North Haverbrook", "Canada", "8000", "1920-12-31", "https://nh.ca/"],
]


def cities_task() -> Task:
    cols = ["name", "country", "population", "founded", "website"]
    return Task(
        id="cities",
        query="List the cities.",
        language="en",
        required_columns=cols,
        unique_columns=["name"],
        columns={
            "name": ColumnSpec("name", "norm_str", "exact_match"),
            "country": ColumnSpec("country", "norm_str", "llm_judge", criterion="same country"),
            "population": ColumnSpec("population", "extract_number", "number_near", tolerance=0.05),
            "founded": ColumnSpec("founded", "norm_date", "date_near"),
            "website": ColumnSpec("website", "norm_str", "url_match"),
        },
        gold=[dict(zip(cols, row, strict=True)) for row in GOLD],
        display_columns=HEADER,
    )


def md(rows, header=HEADER) -> str:
    return "```markdown\n" + render_table(header, rows) + "\n```"


def changed(row_index, col_index, value, rows=GOLD):
    rows = [list(r) for r in rows]
    rows[row_index][col_index] = value
    return rows


def assert_scores(score, item_p, item_r, row_p, row_r):
    assert score.item_precision == pytest.approx(item_p)
    assert score.item_recall == pytest.approx(item_r)
    assert score.row_precision == pytest.approx(row_p)
    assert score.row_recall == pytest.approx(row_r)
    for p, r, f in ((item_p, item_r, score.item_f1), (row_p, row_r, score.row_f1)):
        assert f == pytest.approx(2 * p * r / (p + r) if p + r > 1e-9 else 0.0)


@pytest.mark.parametrize("compat", ["default", "widesearch"])
def test_gold_as_answer_scores_one(compat):
    score = score_answer(cities_task(), cities_task().gold_markdown(), compat=compat)
    assert_scores(score, 1, 1, 1, 1)
    assert score.success == 1.0 and score.columns_ok and score.error is None


def test_dropped_row():
    # 3 of 4 rows, all correct: 15 items of 15 answered, of 20 gold; 3 of 3 rows, of 4 gold.
    score = score_answer(cities_task(), md(GOLD[:3]))
    assert_scores(score, 15 / 15, 15 / 20, 3 / 3, 3 / 4)
    assert score.item_f1 == pytest.approx(2 * 0.75 / 1.75)  # 0.857142...
    assert score.success == 0.0


def test_extra_row_not_in_gold():
    # 5 answer rows, 4 match: 20 items of 25 answered; rows 4 of 5.
    rows = GOLD + [["Capital City", "USA", "3000", "1800-01-01", "https://cc.gov/"]]
    score = score_answer(cities_task(), md(rows))
    assert_scores(score, 20 / 25, 20 / 20, 4 / 5, 4 / 4)
    assert score.item_f1 == pytest.approx(2 * 0.8 / 1.8)  # 0.888...


def test_changed_cells_outside_tolerance():
    # population 120,000 vs 100,000 (20% > 5%) and founded 1860-09-30 vs 1860-07-15 (77 days > 31):
    # 18 of 20 cells right; rows 1 and 2 wrong -> 2 of 4 rows.
    rows = changed(0, 2, "120,000")
    rows = changed(1, 3, "1860-09-30", rows)
    score = score_answer(cities_task(), md(rows))
    assert_scores(score, 18 / 20, 18 / 20, 2 / 4, 2 / 4)
    assert score.column_recall["population"] == pytest.approx(3 / 4)


def test_changed_cells_inside_tolerance():
    # 104,000 vs 100,000 is 4% (<= 5%); 1860-08-10 vs 1860-07-15 is 26 days (<= 31).
    rows = changed(0, 2, "104000")
    rows = changed(1, 3, "August 10, 1860", rows)
    assert score_answer(cities_task(), md(rows)).success == 1.0


def test_changed_url_host_and_country():
    # website host differs (1 cell) and country "Mexico" vs "Canada" (1 cell): 18/20, rows 2/4.
    rows = changed(2, 4, "https://ogdenville.com/")
    rows = changed(3, 1, "Mexico", rows)
    assert_scores(score_answer(cities_task(), md(rows)), 0.9, 0.9, 0.5, 0.5)


def test_shuffled_rows_and_columns():
    order = [4, 2, 0, 3, 1]
    rows = [[GOLD[i][c] for c in order] for i in (3, 1, 0, 2)]
    score = score_answer(cities_task(), md(rows, [HEADER[c] for c in order]))
    assert score.success == 1.0


def test_markdown_emphasis_case_and_whitespace():
    text = (
        "| **NAME** | Country |  population | founded | WEB SITE |\n"
        "|---|---|---|---|---|\n"
        "| **Springfield** |  usa  | 100000 | 1850-03-01 | <https://www.springfield.gov/> |\n"
        "| shelbyville | *USA* | 50,000 | July 15, 1860 | https://shelbyville.gov |\n"
        "|   Ogdenville | Canada | 20 000 | 1900-01-10 | https://ogdenville.ca/ |\n"
        "| North  Haverbrook | Canada | 8000 | 1920-12-31 | https://nh.ca/ |"
    )
    # "20 000" extracts 20 (the space splits the number): one population cell wrong -> 19/20, 3/4 rows.
    assert_scores(score_answer(cities_task(), text), 19 / 20, 19 / 20, 3 / 4, 3 / 4)


def test_missing_column_default_zeroes_its_cells_widesearch_zeroes_table():
    rows = [r[:4] for r in GOLD]
    default = score_answer(cities_task(), md(rows, HEADER[:4]))
    # 4 of 5 columns right in each row: 16/20 items; no row complete.
    assert_scores(default, 16 / 20, 16 / 20, 0, 0)
    assert default.missing_columns == ["website"] and not default.columns_ok
    widesearch = score_answer(cities_task(), md(rows, HEADER[:4]), compat="widesearch")
    assert_scores(widesearch, 0, 0, 0, 0)
    assert "required columns" in widesearch.error


def test_extra_column_ignored_in_default_zeroes_table_in_widesearch():
    rows = [r + ["note"] for r in GOLD]
    header = HEADER + ["Notes"]
    default = score_answer(cities_task(), md(rows, header))
    assert default.success == 1.0 and default.extra_columns == ["Notes"]
    widesearch = score_answer(cities_task(), md(rows, header), compat="widesearch")
    assert_scores(widesearch, 0, 0, 0, 0)


def test_missing_key_column_scores_zero_with_reason():
    score = score_answer(cities_task(), md([r[1:] for r in GOLD], HEADER[1:]))
    assert_scores(score, 0, 0, 0, 0)
    assert "key column" in score.error and score.n_answer_rows == 4


def test_duplicate_key_keeps_first_row():
    # Springfield twice; the second copy has a wrong population. Keep-first: 4 rows, all right.
    rows = GOLD + [changed(0, 2, "1")[0]]
    for compat in ("default", "widesearch"):
        score = score_answer(cities_task(), md(rows), compat=compat)
        assert score.success == 1.0 and score.n_answer_rows == 4


def test_many_to_one_keys_default_one_to_one_widesearch_recall_above_one():
    rows = GOLD + [["SPRINGFIELD"] + GOLD[0][1:]]
    default = score_answer(cities_task(), md(rows))
    assert default.success == 1.0 and default.n_answer_rows == 4
    # widesearch: raw keys differ, so both rows survive dedup and join gold row 1:
    # 25 items right of 25 answered, of 20 gold -> recall 1.25; rows 5/5 and 5/4.
    widesearch = score_answer(cities_task(), md(rows), compat="widesearch")
    assert_scores(widesearch, 25 / 25, 25 / 20, 5 / 5, 5 / 4)
    assert widesearch.item_f1 == pytest.approx(2 * 1.25 / 2.25)  # 1.111...
    assert widesearch.success == 0.0


def age_task() -> Task:
    return Task(
        id="ages",
        query="q",
        language="en",
        required_columns=["name", "age"],
        unique_columns=["name"],
        columns={"name": ColumnSpec("name"), "age": ColumnSpec("age", "norm_str", "exact_match")},
        gold=[{"name": "A", "age": "19"}, {"name": "B", "age": "20"}],
    )


def test_int_vs_float_default_equal_widesearch_different():
    # The answer's age column holds text ("about 20"), so pandas keeps it as strings: "19.0" != "19".
    text = "| name | age |\n|---|---|\n| A | 19.0 |\n| B | about 20 |"
    # default: A's age matches, B's does not: 3 of 4 items, 1 of 2 rows.
    assert_scores(score_answer(age_task(), text), 3 / 4, 3 / 4, 1 / 2, 1 / 2)
    # widesearch: both ages fail: 2 of 4 items (the keys), 0 rows.
    assert_scores(score_answer(age_task(), text, compat="widesearch"), 2 / 4, 2 / 4, 0, 0)


def test_widesearch_does_not_reconcile_a_float_column_with_int_gold():
    # The official code means to cast int to float when the other side is float, but it tests
    # ``dtype is float``, which a numpy dtype never is: "19.0" stays unequal to "19".
    text = "| name | age |\n|---|---|\n| A | 19.0 |\n| B | 20.0 |"
    assert_scores(score_answer(age_task(), text, compat="widesearch"), 2 / 4, 2 / 4, 0, 0)
    assert score_answer(age_task(), text).success == 1.0


def test_malformed_rows_stray_pipe_and_quote():
    # Row 2 has a stray pipe inside the name: its cells shift, so its key "Shelby" matches nothing.
    # Row 3 has a stray quote: the key is still aligned ('"Ogdenville' ~ 'Ogdenville').
    rows = [list(r) for r in GOLD]
    rows[2][0] = '"Ogdenville'
    text = render_table(HEADER, rows).replace("| Shelbyville |", "| Shelby|ville |")
    score = score_answer(cities_task(), text)
    # 3 rows right of 4 answered and 4 gold: 15/20 items, 3/4 rows.
    assert_scores(score, 15 / 20, 15 / 20, 3 / 4, 3 / 4)
    assert score.n_ragged_rows == 1
    # The official parser fails on a row with more fields than the header: all 0.
    widesearch = score_answer(cities_task(), text, compat="widesearch")
    assert_scores(widesearch, 0, 0, 0, 0) and "parse" in widesearch.error


@pytest.mark.parametrize(
    "answer", ["", None, "I could not find anything.", "| only a header |", b"\xff\xfe\x00\x81"]
)
@pytest.mark.parametrize("compat", ["default", "widesearch"])
def test_empty_or_tableless_answer_scores_zero(answer, compat):
    score = score_answer(cities_task(), answer, compat=compat)
    assert_scores(score, 0, 0, 0, 0)
    assert score.success == 0.0


def test_undecodable_bytes_in_a_cell_do_not_break_scoring():
    raw = cities_task().gold_markdown().encode("utf-8").replace(b"| Canada |", b"| Canada\xff |", 1)
    score = score_answer(cities_task(), raw)
    # "Canada\ufffd" vs "Canada" for the llm_judge column: equal loose forms.
    assert score.success == 1.0


def test_ten_thousand_row_table():
    n = 10_000
    task = Task(
        id="big",
        query="q",
        language="en",
        required_columns=["key", "value"],
        unique_columns=["key"],
        columns={
            "key": ColumnSpec("key"),
            "value": ColumnSpec("value", "extract_number", "number_near", tolerance=0.0),
        },
        gold=[{"key": f"item {i}", "value": str(i)} for i in range(n)],
    )
    assert score_answer(task, task.gold_markdown()).success == 1.0
    # Drop the last 1,000 rows and change 500 values: 9,000 rows answered, 8,500 right.
    rows = [[f"item {i}", str(i + 1 if i < 500 else i)] for i in range(n - 1000)]
    score = score_answer(task, render_table(["Key", "Value"], rows))
    # items: 9,000 keys + 8,500 values = 17,500 of 18,000 answered and of 20,000 gold.
    assert_scores(score, 17_500 / 18_000, 17_500 / 20_000, 8_500 / 9_000, 8_500 / 10_000)


def test_qa_task_scores_boxed_answer():
    task = Task(
        id="qa1",
        query="Capital of France?",
        language="en",
        required_columns=["answer"],
        unique_columns=["answer"],
        columns={"answer": ColumnSpec("answer", "norm_str", "llm_judge")},
        gold=[{"answer": "Paris"}],
        kind="qa",
    )
    assert score_answer(task, "<think>hmm</think> It is \\boxed{Paris}.").success == 1.0
    assert score_answer(task, "\\boxed{Lyon}").item_f1 == 0.0


def test_unknown_compat_is_rejected():
    with pytest.raises(ValueError):
        score_answer(cities_task(), "", compat="strict")
