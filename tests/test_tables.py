"""support.tables: text_table's alignment (left, then right from numeric_from), the rule, trailing blanks."""

from __future__ import annotations

from support.tables import text_table

ROWS = [["pattern", "req/s", "p99 ms"], ["silent", "4.9", "812"], ["fix_async_client", "98.2", "61"]]


def test_first_column_left_the_rest_right_two_spaces_apart() -> None:
    assert text_table(ROWS).splitlines() == [
        "pattern           req/s  p99 ms",
        "silent              4.9     812",
        "fix_async_client   98.2      61",
    ]


def test_numeric_from_moves_the_boundary() -> None:
    assert text_table(ROWS, numeric_from=2).splitlines() == [
        "pattern           req/s  p99 ms",
        "silent            4.9       812",
        "fix_async_client  98.2       61",
    ]
    assert text_table(ROWS, numeric_from=0).splitlines()[1] == "          silent    4.9     812"
    assert text_table(ROWS, numeric_from=3) == text_table(ROWS, numeric_from=99)  # all left-aligned


def test_rule_is_a_line_of_dashes_under_the_header() -> None:
    lines = text_table(ROWS, rule=True).splitlines()
    assert lines[1] == "----------------  -----  ------"
    assert [lines[0], *lines[2:]] == text_table(ROWS).splitlines()
    assert len(lines[1]) == len(lines[0])  # one dash per character of each column


def test_trailing_blanks_are_dropped_and_columns_still_line_up() -> None:
    rows = [["name", "note"], ["a", ""], ["longer", "x"]]
    assert text_table(rows, numeric_from=2).splitlines() == ["name    note", "a", "longer  x"]
    assert text_table([["only"]]) == "only"
