"""Step 1: finding and splitting the answer's markdown table (default and widesearch extractors)."""

from wideseek_env.table.markdown import (
    extract_table,
    extract_table_widesearch,
    render_table,
    split_row,
)


def test_fenced_markdown_block_is_read():
    text = "Here you go:\n```markdown\n| Name | Age |\n|---|---|\n| Ann | 31 |\n| Bob | 40 |\n```\nBye."
    table = extract_table(text)
    assert table.header == ["Name", "Age"]
    assert table.rows == [["Ann", "31"], ["Bob", "40"]]


def test_first_fenced_block_with_a_table_wins_over_earlier_blocks_without_one():
    text = '```json\n{"a": 1}\n```\n```\n| x |\n|---|\n| 1 |\n```\n```markdown\n| y |\n|---|\n| 2 |\n```'
    assert extract_table(text).header == ["x"]


def test_unfenced_table_and_table_without_outer_pipes():
    assert extract_table("intro\n| a | b |\n|:--|--:|\n| 1 | 2 |\nend").rows == [["1", "2"]]
    assert extract_table("a | b\n--- | ---\n1 | 2").rows == [["1", "2"]]


def test_run_with_separator_preferred_over_earlier_prose_with_a_pipe():
    text = "| note: use A | B wisely\n\n| c | d |\n|---|---|\n| 3 | 4 |"
    assert extract_table(text).header == ["c", "d"]


def test_table_after_last_think_preferred_over_draft_in_reasoning():
    text = "<think>\n| a |\n|---|\n| draft |\n</think>\n| a |\n|---|\n| final |"
    assert extract_table(text).rows == [["final"]]


def test_escaped_pipes_stay_in_the_cell():
    assert split_row(r"| a \| b | c |") == ["a | b", "c"]


def test_ragged_rows_are_padded_or_truncated_and_counted():
    table = extract_table("| a | b |\n|---|---|\n| 1 |\n| 2 | 3 | 4 |\n| 5 | 6 | |")
    assert table.rows == [["1", ""], ["2", "3"], ["5", "6"]]
    assert table.n_ragged == 2


def test_empty_header_cell_drops_its_column():
    table = extract_table("| a | | b |\n|---|---|---|\n| 1 | x | 2 |")
    assert table.header == ["a", "b"] and table.rows == [["1", "2"]]


def test_data_row_of_single_dashes_is_kept_but_a_late_separator_is_dropped():
    table = extract_table("| a | b |\n|---|---|\n| - | - |\n|---|---|\n| 1 | 2 |")
    assert table.rows == [["-", "-"], ["1", "2"]]


def test_no_table_gives_none():
    assert extract_table("no table here") is None
    assert extract_table("") is None
    assert extract_table(None) is None


def test_bytes_with_undecodable_sequences_are_replaced_not_fatal():
    table = extract_table(b"| a |\n|---|\n| caf\xe9 |")
    assert table.rows == [["caf\ufffd"]]


def test_crlf_line_endings():
    assert extract_table("| a |\r\n|---|\r\n| 1 |\r\n").rows == [["1"]]


def test_render_then_extract_round_trips_pipes_and_newlines():
    rows = [["x | y", "line1\nline2"], ["", "plain"]]
    table = extract_table(render_table(["A", "B"], rows))
    assert table.header == ["A", "B"]
    assert table.rows == [["x | y", "line1<br>line2"], ["", "plain"]]


def test_widesearch_extractor_needs_markdown_info_string_else_uses_pipe_region():
    fenced = "```markdown\n| Home Page | B |\n|---|---|\n| 1 | 2 |\n```"
    assert extract_table_widesearch(fenced) == [["", "homepage", "b", ""], ["", "1", "2", ""]]
    bare = "text\n| a | b |\n|---|---|\n| 1 | 2 |\nafter"
    assert extract_table_widesearch(bare) == [["", "a", "b", ""], ["", "1", "2", ""]]
    assert extract_table_widesearch("a | b") is None


def test_widesearch_extractor_splits_escaped_pipes():
    fields = extract_table_widesearch("```markdown\n| a |\n|---|\n| x \\| y |\n```")
    assert fields[1] == ["", "x \\", "y", ""]


def test_ten_thousand_rows_parse():
    text = "| k | v |\n|---|---|\n" + "\n".join(f"| key{i} | {i} |" for i in range(10_000))
    table = extract_table(text)
    assert len(table.rows) == 10_000 and table.rows[-1] == ["key9999", "9999"]
