"""support.bench.options: the argument types the benchmark CLIs share (parse_levels)."""

from __future__ import annotations

import argparse

import pytest

from support.bench.options import parse_levels


@pytest.mark.parametrize(
    ("text", "levels"),
    [("1,10,100", [1, 10, 100]), ("5", [5]), (" 1, 2 ,", [1, 2]), ("3,1,3", [3, 1, 3])],
)
def test_comma_separated_integers_in_the_given_order(text: str, levels: list[int]) -> None:
    assert parse_levels(text) == levels


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b", "expected comma-separated integers, got 'a,b'"),
        ("1.5", "expected comma-separated integers, got '1.5'"),
        ("", "concurrency levels must be integers >= 1, got ''"),
        (" , ", "concurrency levels must be integers >= 1, got ' , '"),
        ("0,5", "concurrency levels must be integers >= 1, got '0,5'"),
        ("-1", "concurrency levels must be integers >= 1, got '-1'"),
    ],
)
def test_anything_else_is_an_argument_type_error(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse_levels(text)
    assert str(info.value) == message


def test_argparse_turns_it_into_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="prog")
    parser.add_argument("--concurrency", type=parse_levels, default=[1])
    assert parser.parse_args(["--concurrency", "2,4"]).concurrency == [2, 4]
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--concurrency", "0"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "prog: error: argument --concurrency: concurrency levels must be integers >= 1, got '0'"
    )
