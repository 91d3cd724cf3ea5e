"""Random text never makes the extractor or the scorer raise, and scores stay in range."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wideseek_env.evaluation import score_answer
from wideseek_env.table.markdown import extract_table, extract_table_widesearch
from wideseek_env.table.schema import ColumnSpec, Task

from fuzz_settings import examples

TASK = Task(
    id="fuzz",
    query="q",
    language="en",
    required_columns=["name", "n", "when", "site", "note"],
    unique_columns=["name"],
    columns={
        "name": ColumnSpec("name"),
        "n": ColumnSpec("n", "extract_number", "number_near", 0.05),
        "when": ColumnSpec("when", "norm_date", "date_near"),
        "site": ColumnSpec("site", "norm_str", "url_match"),
        "note": ColumnSpec("note", "norm_str", "llm_judge"),
    },
    gold=[
        {"name": "Ann", "n": "12", "when": "1947-04-29", "site": "https://a.org", "note": "x"},
        {"name": "Bob", "n": "3.5%", "when": "NA", "site": "", "note": "y z"},
    ],
    display_columns=["Name", "N", "When", "Site", "Note"],
)

# Text biased towards table syntax: pipes, dashes, quotes, backticks, emphasis, newlines.
table_alphabet = st.sampled_from(
    list("|-:*_`\"'\\ \n\t<>br") + ["Ann", "Bob", "12", "1947-04-29", "```", "name", "N"]
)
table_like = st.lists(table_alphabet, max_size=200).map("".join)
anything = st.one_of(st.text(max_size=300), table_like, st.binary(max_size=200))


@settings(max_examples=examples(300), deadline=10_000, suppress_health_check=[HealthCheck.too_slow])
@given(anything)
def test_extractors_never_raise(text):
    table = extract_table(text)
    if table is not None:
        assert all(len(row) == len(table.header) for row in table.rows)
    extract_table_widesearch(text)


@settings(max_examples=examples(300), deadline=10_000, suppress_health_check=[HealthCheck.too_slow])
@given(anything, st.sampled_from(["default", "widesearch"]), st.sampled_from(["deterministic", "exact"]))
def test_scorer_never_raises_and_default_scores_stay_in_unit_range(text, compat, judge):
    score = score_answer(TASK, text, compat=compat, judge=judge)
    values = [
        score.item_precision,
        score.item_recall,
        score.item_f1,
        score.row_precision,
        score.row_recall,
        score.row_f1,
    ]
    assert all(v >= 0.0 for v in values)
    if compat == "default":
        assert all(v <= 1.0 for v in values)
    assert score.success in (0.0, 1.0)


@settings(max_examples=examples(100), deadline=10_000)
@given(st.lists(st.tuples(table_like, table_like), max_size=6))
def test_random_rows_under_the_real_header_never_raise(rows):
    lines = ["| Name | N | When | Site | Note |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {a} | {b} | {a} |" for a, b in rows]
    for compat in ("default", "widesearch"):
        score = score_answer(TASK, "\n".join(lines), compat=compat)
        assert score.item_f1 >= 0.0
