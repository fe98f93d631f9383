"""The pieces behind `pushwire send`: reading rows lazily with their line numbers, building
one message per distinct row payload, resuming from a results file, latency percentiles."""

from __future__ import annotations

import io
import itertools
import json
import random
import re

import pytest
from rich.console import Console

from pushwire import Message
from pushwire.cli import input as cli_input
from pushwire.cli.errors import CLIError
from pushwire.cli.input import BadRow, Row, RowSource, detect_format
from pushwire.cli.report import LatencyHistogram, LiveProgress, Tally
from pushwire.cli.resume import load_done_rows
from pushwire.cli.rows import PayloadFlags, RowError, RowMessages
from pushwire.fcm import FCMMessage

TOKEN = "ab" * 32


def rows_of(text: bytes, fmt: str) -> list[Row | BadRow]:
    return list(RowSource(io.BytesIO(text), "in", fmt, len(text), owned=True))


def test_jsonl_rows_keep_their_line_numbers_and_index():
    text = b'\xef\xbb\xbf{"token": " ab "}\n\n{"token": "cd", "title": "t"}\n  \n{"token": 3}\n'
    rows = rows_of(text, "jsonl")
    assert rows == [
        Row(0, 1, "ab", {}),
        Row(1, 3, "cd", {"title": "t"}),
        BadRow(2, 5, None, "token must be a string, not int"),
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b'{"token": "a\xff"}', "not valid UTF-8 text"),
        (b'{"token": ""}', "token is empty"),
        (b'{"token": "ab"', "not valid JSON"),
    ],
)
def test_unreadable_jsonl_rows_say_why(line, problem):
    (row,) = rows_of(line + b"\n", "jsonl")
    assert isinstance(row, BadRow) and row.line == 1
    assert problem in row.problem


@pytest.mark.parametrize("after", [b"", b'cc,"fine"\n'], ids=["to the end", "into a later quote"])
def test_an_unbalanced_csv_quote_is_a_csv_error_on_its_line_and_swallows_nothing(after):
    text = b'token,title\naa,"unclosed\nbb,ok\n' + after
    rows = rows_of(text, "csv")
    assert isinstance(rows[0], BadRow) and rows[0].line == 2
    assert rows[0].problem.startswith("not valid CSV") and "quote" in rows[0].problem
    assert rows[1] == Row(1, 3, "bb", {"title": "ok"})
    if after:
        assert rows[2] == Row(2, 4, "cc", {"title": "fine"})
    assert len(rows) == (3 if after else 2)


def test_an_unbalanced_csv_quote_does_not_hide_the_many_rows_after_it():
    text = b'token\n"aa\n' + b"".join(b"%064x\n" % i for i in range(300))
    rows = rows_of(text, "csv")
    assert isinstance(rows[0], BadRow) and rows[0].line == 2
    assert [r.token for r in rows[1:]] == [format(i, "064x") for i in range(300)]


def test_bad_utf8_is_named_whatever_exception_msgspec_raises(monkeypatch):
    # msgspec < 0.23 raised UnicodeDecodeError for bad UTF-8; 0.23 raises DecodeError.
    def old_msgspec(raw: bytes) -> object:
        return raw.decode("utf-8")

    monkeypatch.setattr(cli_input, "_decode_json", old_msgspec)
    (row,) = rows_of(b'{"token": "a\xff"}\n', "jsonl")
    assert isinstance(row, BadRow) and row.problem == "not valid UTF-8 text"


def test_csv_rows_types_and_line_numbers_with_a_quoted_newline():
    text = (
        b"\xef\xbb\xbfToken,Title,badge,custom\n"
        b'aa,"two\nlines",2,"{""k"": 1}"\n'
        b"\n"
        b"bb,,,\n"
        b"cc,x,many,\n"
        b"dd,x,1,{oops\n"
        b"ee,x,1,{},extra\n"
    )
    rows = rows_of(text, "csv")
    assert rows[0] == Row(0, 2, "aa", {"title": "two\nlines", "badge": 2, "custom": {"k": 1}})
    assert rows[1] == Row(1, 5, "bb", {})
    assert rows[2] == BadRow(2, 6, "cc", "badge 'many' is not a whole number")
    assert isinstance(rows[3], BadRow) and "custom is not valid JSON" in rows[3].problem
    assert rows[4] == BadRow(4, 8, None, "5 values but the header has 4 columns")


def test_csv_header_must_name_the_token_column_once():
    with pytest.raises(CLIError, match="needs a 'token' column"):
        rows_of(b"device\nab\n", "csv")
    with pytest.raises(CLIError, match="repeats token"):
        rows_of(b"token,token\nab,cd\n", "csv")


def test_format_comes_from_the_flag_the_extension_or_the_first_byte():
    from pathlib import Path

    assert detect_format(Path("x.csv"), io.BytesIO(b"{"), None) == "csv"
    assert detect_format(Path("x.ndjson"), io.BytesIO(b"t"), None) == "jsonl"
    assert detect_format(None, io.BufferedReader(io.BytesIO(b'  {"token"')), None) == "jsonl"
    assert detect_format(None, io.BufferedReader(io.BytesIO(b"token,title")), None) == "csv"
    assert detect_format(Path("x.csv"), io.BytesIO(b""), "jsonl") == "jsonl"


class EndlessRows(io.RawIOBase):
    """An input that never ends: reading it whole would never return."""

    def __init__(self) -> None:
        self._lines = (f'{{"token": "{i:064x}"}}\n'.encode() for i in itertools.count())
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while len(self._pending) < len(buffer):
            self._pending += next(self._lines)
        n = len(buffer)
        buffer[:n], self._pending = self._pending[:n], self._pending[n:]
        return n


def test_rows_are_read_lazily():
    source = RowSource(io.BufferedReader(EndlessRows()), "endless", "jsonl", None, owned=True)
    first = list(itertools.islice(source, 5))
    assert [r.line for r in first] == [1, 2, 3, 4, 5]
    assert source.count_unread_lines() is None  # a pipe is never read to its end
    source.close()


def test_unread_lines_of_a_file_are_counted_after_an_interruption():
    text = b"".join(f'{{"token": "{i:02x}"}}\n'.encode() for i in range(10))
    source = RowSource(io.BytesIO(text + b'{"token": "ff"}'), "in", "jsonl", 1, owned=True)
    rows = iter(source)
    assert [next(rows).line for _ in range(4)] == [1, 2, 3, 4]
    assert source.count_unread_lines() == 7


# -- messages -----------------------------------------------------------------------------------


def apns_messages(base=None, **flags):
    unknown: list[str] = []
    flags.setdefault("topic", "com.example.app")
    messages = RowMessages(
        "apns", base or {}, PayloadFlags(**flags), lambda name, hint: unknown.append(name)
    )
    return messages, unknown


def test_rows_with_the_same_fields_share_one_message():
    messages, _ = apns_messages(title="Hi")
    a = messages.notification(Row(0, 1, TOKEN, {}))
    b = messages.notification(Row(1, 2, TOKEN, {"badge": 2}))
    c = messages.notification(Row(2, 3, TOKEN, {"badge": 2}))
    assert a.message is messages.default
    assert b.message is c.message and b.message is not a.message


def test_payload_file_then_flags_then_row_fields():
    base = {"aps": {"alert": "from file", "sound": "a.caf"}, "k": 1}
    messages, unknown = apns_messages(base, body="from flag", badge=1, collapse_id="c1")
    row = Row(0, 1, TOKEN, {"title": "Ada", "custom": {"order": 7}, "user": "x", "data": {}})
    message = messages.notification(row).message
    assert isinstance(message, Message)
    assert json.loads(message.payload) == {
        "aps": {"alert": {"body": "from flag", "title": "Ada"}, "sound": "a.caf", "badge": 1},
        "k": 1,
        "order": 7,
    }
    assert message.collapse_id == "c1"
    assert unknown == ["user", "data"]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"badge": -1}, "badge must be a whole number"),
        ({"custom": {"aps": {}}}, "custom must not hold 'aps'"),
        ({"title": 5}, "title must be a string"),
        ({"collapse_id": "x" * 65}, "apns-collapse-id"),
        ({"body": "x" * 5000}, "limit for alert pushes is 4096"),
    ],
)
def test_row_payload_problems_are_row_errors(fields, words):
    messages, _ = apns_messages()
    with pytest.raises(RowError, match=words):
        messages.notification(Row(0, 1, TOKEN, fields))


def test_apns_needs_a_topic():
    with pytest.raises(CLIError, match="--topic"):
        RowMessages("apns", {}, PayloadFlags(), lambda name, hint: None)


def test_fcm_message_from_payload_file_flags_and_row():
    base = {
        "notification": {"title": "file"},
        "data": {"a": "1"},
        "android": {"priority": "NORMAL"},
    }
    flags = PayloadFlags(body="flag", sound="ping", priority=10, badge=4, collapse_id="k")
    messages = RowMessages("fcm", base, flags, lambda name, hint: None)
    message = messages.notification(
        Row(0, 1, "tok:1", {"data": {"b": "2"}, "title": "row"})
    ).message
    assert isinstance(message, FCMMessage)
    assert json.loads(message.encoded) == {
        "notification": {"title": "row", "body": "flag"},
        "data": {"a": "1", "b": "2"},
        "android": {
            "priority": "HIGH",
            "notification": {"sound": "ping"},
            "collapse_key": "k",
        },
        "apns": {"payload": {"aps": {"badge": 4}}},
    }


def test_fcm_payload_file_with_an_unknown_field_is_refused():
    from pushwire import PayloadError

    with pytest.raises(PayloadError, match="unknown FCM message field 'notfication'"):
        RowMessages("fcm", {"notfication": {}}, PayloadFlags(), lambda name, hint: None)


# -- resume -------------------------------------------------------------------------------------


def test_done_rows_come_from_the_results_file(tmp_path):
    results = tmp_path / "r.jsonl"
    results.write_text('{"index": 0, "line": 1}\n\n{"index": 4, "line": 12, "x": 1}\n{"line": 3')
    done = load_done_rows(results)
    assert 1 in done and 12 in done and 3 not in done and 2 not in done
    assert done.count == 2
    assert results.read_text().endswith('"x": 1}\n')  # the cut-short line is gone
    assert load_done_rows(tmp_path / "none.jsonl").count == 0


def test_a_file_that_is_not_a_results_file_is_refused(tmp_path):
    other = tmp_path / "in.jsonl"
    other.write_text('{"token": "ab"}\n')
    with pytest.raises(CLIError, match="line 1 is not a pushwire results line"):
        load_done_rows(other)


def test_latency_percentiles_are_within_two_percent():
    rng = random.Random(3)
    samples = [rng.lognormvariate(-3, 1) for _ in range(20_000)]
    histogram = LatencyHistogram()
    for s in samples:
        histogram.add(s)
    ordered = sorted(samples)
    for q in (0.5, 0.99):
        exact = ordered[int(q * len(ordered))]
        assert abs(histogram.percentile(q) - exact) / exact < 0.02


def progress_line(width: int) -> str:
    """The progress bar's last frame at ``width`` columns, control codes removed."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    tally = Tally()
    tally.results = 12_345_678
    tally.outcomes.update({"delivered": 12_000_000, "rejected": 300_000, "timeout": 45_678})
    with LiveProgress(console, enabled=True, total=20_000_000) as progress:
        progress.update(tally, lambda: 5000, 12_345_678, force=True)
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue()).split("\r")
    return next(f for f in reversed(frames) if "results" in f).strip("\n")


def test_progress_bar_fits_80_columns_uncut():
    line = progress_line(80)
    assert len(line) <= 80 and "…" not in line
    assert "12,345,678 results" in line and "in flight 5,000" in line and "62%" in line


def test_progress_bar_shows_the_outcomes_on_a_wide_terminal():
    line = progress_line(160)
    assert "…" not in line and "rejected 300,000" in line
