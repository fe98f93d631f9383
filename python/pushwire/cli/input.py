"""Reading `pushwire send` input: JSONL or CSV rows, streamed, from a file or stdin.

Every non-blank record is a row with an ``index`` (0-based, in input order) and the ``line``
it starts on (1-based); both are stable from one run to the next, which is what ``--resume``
relies on. A row that cannot be read becomes a :class:`BadRow` saying why, and reading goes
on: the caller decides whether to stop (``--strict``).

Nothing is read ahead: rows are produced as the sender asks for them, so memory stays bounded
whatever the input size.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import msgspec

from .errors import CLIError

FORMATS = ("jsonl", "csv")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
#: CSV cells holding JSON objects, and cells holding whole numbers.
_JSON_COLUMNS = frozenset({"data", "custom"})
_INT_COLUMNS = frozenset({"badge"})
#: Lines one quoted CSV cell may span (a title or body over more is an unbalanced quote).
MAX_RECORD_LINES = 100

_decode_json = msgspec.json.Decoder().decode


@dataclass(slots=True)
class Row:
    """One readable input row: a device token and its optional per-row fields."""

    index: int
    line: int
    token: str
    #: Per-row fields present in the input (token excluded), typed (badge int, data dict...).
    fields: dict[str, Any]


@dataclass(slots=True)
class BadRow:
    """A row that cannot be sent, and why (in words a user can act on)."""

    index: int
    line: int
    token: str | None
    problem: str


def detect_format(path: Path | None, stream: BinaryIO, given: str | None) -> str:
    """``--format``, else the file extension, else a look at the first byte."""
    if given is not None:
        if given not in FORMATS:
            raise CLIError(f"--format must be jsonl or csv, not {given!r}")
        return given
    if path is not None and path.suffix.lower() in _EXTENSIONS:
        return _EXTENSIONS[path.suffix.lower()]
    head = stream.peek(64) if isinstance(stream, io.BufferedReader) else b""
    return "jsonl" if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") else "csv"


def _token_of(value: object) -> tuple[str | None, str | None]:
    """(token, problem) from a row's ``token`` value."""
    if value is None:
        return None, "no token (every row needs a 'token')"
    if not isinstance(value, str):
        return None, f"token must be a string, not {type(value).__name__}"
    token = value.strip()
    if not token:
        return None, "token is empty"
    return token, None


class RowSource:
    """The rows of one input, read lazily. Iterate once."""

    def __init__(
        self, stream: BinaryIO, name: str, fmt: str, total_bytes: int | None, *, owned: bool
    ) -> None:
        self.name = name
        self.format = fmt
        #: Size of the input when it is a regular file (for the progress bar), else None.
        self.total_bytes = total_bytes
        #: Bytes handed to the parser so far.
        self.bytes_read = 0
        #: Line number of the last line read.
        self.last_line = 0
        self._stream = stream
        self._owned = owned
        self._bad_utf8_lines: set[int] = set()
        #: CSV lines read, then given back after a record that did not parse.
        self._lines_ahead: deque[tuple[int, str]] = deque()

    def __iter__(self) -> Iterator[Row | BadRow]:
        return self._jsonl_rows() if self.format == "jsonl" else self._csv_rows()

    def _raw_lines(self) -> Iterator[bytes]:
        for raw in self._stream:
            self.bytes_read += len(raw)
            self.last_line += 1
            if self.last_line == 1:
                raw = raw.removeprefix(
                    b"\xef\xbb\xbf"
                )  # a UTF-8 byte-order mark, as spreadsheets write
            yield raw

    def _jsonl_rows(self) -> Iterator[Row | BadRow]:
        index = 0
        for raw in self._raw_lines():
            if not raw.strip():
                continue
            line = self.last_line
            try:
                obj = _decode_json(raw)
            except (msgspec.DecodeError, UnicodeDecodeError) as e:
                # msgspec < 0.23 raises UnicodeDecodeError for bad UTF-8, 0.23 a DecodeError:
                # ask the bytes, not the exception.
                why = "not valid UTF-8 text" if not _is_utf8(raw) else f"not valid JSON ({e})"
                yield BadRow(index, line, None, why)
                index += 1
                continue
            if not isinstance(obj, dict):
                yield BadRow(index, line, None, f"expected a JSON object, got {_kind(obj)}")
                index += 1
                continue
            token, problem = _token_of(obj.pop("token", None))
            if problem is not None or token is None:
                yield BadRow(index, line, None, problem or "no token")
            else:
                yield Row(index, line, token, obj)
            index += 1

    def _text_lines(self) -> Iterator[tuple[int, str]]:
        """(line number, text) of each line; bad UTF-8 is noted and replaced."""
        for raw in self._raw_lines():
            try:
                yield self.last_line, raw.decode("utf-8")
            except UnicodeDecodeError:
                self._bad_utf8_lines.add(self.last_line)
                yield self.last_line, raw.decode("utf-8", "replace")

    def _csv_records(self) -> Iterator[tuple[int, int, list[str] | None, str | None]]:
        """(first line, last line, cells, problem) of each CSV record.

        A quoted cell may span lines, up to :data:`MAX_RECORD_LINES`. A record that does not
        parse (an unbalanced quote runs to the end of the file or into a later quote, text
        after a closing quote) is a problem on its first line, and reading goes on from the
        line after it: the rows that follow are not swallowed.
        """
        lines = self._text_lines()
        ahead = self._lines_ahead

        def take() -> tuple[int, str] | None:
            return ahead.popleft() if ahead else next(lines, None)

        while (first := take()) is not None:
            window = [first]
            try:
                cells = next(csv.reader(_record_lines(window, take), strict=True))
            except csv.Error as e:
                ahead.extendleft(reversed(window[1:]))  # read them again, as rows of their own
                yield first[0], first[0], None, f"not valid CSV: {e} (an unbalanced quote?)"
                continue
            yield first[0], window[-1][0], cells, None

    def _csv_rows(self) -> Iterator[Row | BadRow]:
        records = self._csv_records()
        header_record = next(records, None)
        if header_record is None:
            return
        line, _, header_cells, problem = header_record
        if header_cells is None:
            raise CLIError(f"{self.name} line {line}: the CSV header is {problem}")
        header = _csv_header(header_cells, self.name, line)
        index = 0
        for start, end, record, problem in records:
            if record is None:
                yield BadRow(index, start, None, problem or "not valid CSV")
                index += 1
                continue
            if not record or all(not cell.strip() for cell in record):
                continue
            if any(n in self._bad_utf8_lines for n in range(start, end + 1)):
                yield BadRow(index, start, None, "not valid UTF-8 text")
            else:
                yield _csv_row(index, start, header, record)
            index += 1

    def count_unread_lines(self) -> int | None:
        """Lines after the last one read (for "N rows not sent"); None for a pipe."""
        if self.total_bytes is None:
            return None
        count = len(self._lines_ahead)
        last = b"\n"
        while block := self._stream.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
        return count + (last != b"\n")

    def close(self) -> None:
        if self._owned:
            self._stream.close()

    def __enter__(self) -> RowSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _record_lines(
    window: list[tuple[int, str]], take: Callable[[], tuple[int, str] | None]
) -> Iterator[str]:
    """The text of ``window``'s first line, then of more lines as the CSV reader asks for
    them (a quoted cell spanning lines), appended to ``window``, at most MAX_RECORD_LINES."""
    yield window[0][1]
    while len(window) < MAX_RECORD_LINES and (line := take()) is not None:
        window.append(line)
        yield line[1]


def _kind(value: object) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _csv_header(record: list[str], name: str, line: int) -> list[str]:
    header = [cell.strip().lower() for cell in record]
    if "token" not in header:
        found = ", ".join(repr(h) for h in header) or "nothing"
        raise CLIError(f"{name} line {line}: the CSV header needs a 'token' column (found {found})")
    duplicates = sorted({h for h in header if h and header.count(h) > 1})
    if duplicates:
        raise CLIError(f"{name} line {line}: the CSV header repeats {', '.join(duplicates)}")
    return header


def _csv_row(index: int, line: int, header: list[str], record: list[str]) -> Row | BadRow:
    if len(record) > len(header):
        return BadRow(
            index, line, None, f"{len(record)} values but the header has {len(header)} columns"
        )
    cells = dict(zip(header, record, strict=False))  # short rows: missing cells unset
    token, problem = _token_of(cells.pop("token", None) or None)
    if problem is not None or token is None:
        return BadRow(index, line, None, problem or "no token")
    fields: dict[str, Any] = {}
    for column, cell in cells.items():
        if not column or not cell.strip():
            continue  # an empty cell leaves the field unset
        if column in _INT_COLUMNS:
            try:
                fields[column] = int(cell)
            except ValueError:
                return BadRow(index, line, token, f"{column} {cell!r} is not a whole number")
        elif column in _JSON_COLUMNS:
            try:
                fields[column] = _decode_json(cell)
            except (msgspec.DecodeError, UnicodeDecodeError) as e:
                return BadRow(index, line, token, f"{column} is not valid JSON ({e})")
        else:
            fields[column] = cell
    return Row(index, line, token, fields)


def open_rows(path: Path, fmt: str | None) -> RowSource:
    """Open ``path`` (``-`` = stdin) for reading rows."""
    if str(path) == "-":
        stdin: BinaryIO = sys.stdin.buffer
        if not hasattr(stdin, "peek"):  # detect_format looks at the first bytes
            stdin = io.BufferedReader(cast(Any, stdin))
        return RowSource(stdin, "stdin", detect_format(None, stdin, fmt), None, owned=False)
    stream = path.open("rb")
    try:
        info = os.fstat(stream.fileno())
        total = info.st_size if stat.S_ISREG(info.st_mode) else None
        fmt = detect_format(path, stream, fmt)
    except BaseException:
        stream.close()
        raise
    return RowSource(stream, str(path), fmt, total, owned=True)
