"""How `streamctl produce` cuts input into records, and the argument forms it parses."""

from __future__ import annotations

import io

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from streamhouse.workbench.streamctl.args import parse_pairs, parse_timestamp
from streamhouse.workbench.streamctl.lines import (
    count_records,
    read_chunks,
    split_keys,
    split_lines,
)


def records_of(data: bytes, separator: str | None = None, chunk: int = 7):
    out = []
    for block in read_chunks(io.BytesIO(data), chunk):
        records = split_keys(split_lines(block), separator)
        keys = records.keys.to_pylist() if records.keys is not None else [None] * len(records)
        out += list(zip(keys, records.values.to_pylist(), strict=True))
    return out


def expected_lines(data: bytes) -> list[bytes]:
    """The reference: split on newline, a final newline ends the last line."""
    if not data:
        return []
    lines = data.split(b"\n")
    return lines[:-1] if data.endswith(b"\n") else lines


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=40))
def test_lines_match_a_plain_split_whatever_the_chunk_size(data: bytes, chunk: int) -> None:
    got = [value for _, value in records_of(data, chunk=chunk)]
    assert got == expected_lines(data)
    assert count_records(read_chunks(io.BytesIO(data), chunk)) == len(got)


def test_only_the_newline_is_stripped() -> None:
    data = b"a\r\n  b  \n\n\tc"
    assert [v for _, v in records_of(data)] == [b"a\r", b"  b  ", b"", b"\tc"]


def test_keys_split_at_the_first_separator_only() -> None:
    data = "k1::v1\nno sep\n::empty key\nk2::a::b\n\nzoë::✓\n".encode()
    assert records_of(data, "::", chunk=5) == [
        (b"k1", b"v1"),
        (None, b"no sep"),
        (b"", b"empty key"),
        (b"k2", b"a::b"),
        (None, b""),
        ("zoë".encode(), "✓".encode()),
    ]


def test_a_line_longer_than_a_chunk_stays_whole() -> None:
    long = b"x" * 1000
    assert records_of(b"a\n" + long + b"\nb", chunk=16) == [
        (None, b"a"),
        (None, long),
        (None, b"b"),
    ]


def test_pairs_and_their_mistakes() -> None:
    assert parse_pairs(["a=1", "b=x=y", "c="], "--config") == {"a": "1", "b": "x=y", "c": ""}
    for bad in ("novalue", "=1"):
        with pytest.raises(typer.BadParameter):
            parse_pairs([bad], "--config")


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("1700000000123", 1_700_000_000_123),
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T22:13:20", 1_700_000_000_000),
        ("2023-11-14T23:13:20.5+01:00", 1_700_000_000_500),
        ("2023-11-14", 1_699_920_000_000),
    ],
)
def test_timestamps_accept_epoch_ms_and_iso_8601(text: str, ms: int) -> None:
    assert parse_timestamp(text) == ms


@pytest.mark.parametrize("text", ["-5", "yesterday", "2023-13-01", "", "12:00"])
def test_bad_timestamps_are_usage_errors(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_timestamp(text)
