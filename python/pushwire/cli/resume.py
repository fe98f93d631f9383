"""``--resume``: which input rows an earlier run already recorded in the results file.

A row is identified by the input line it starts on, which is the same from one run to the
next for the same input. Every row present in the results file, whatever its outcome, is
skipped: the union of the runs then holds each row exactly once, and nothing delivered is
sent twice.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from .errors import CLIError, echo_warning


class _RecordedRow(msgspec.Struct):
    """The part of a results line resuming needs (other fields are ignored)."""

    line: int


_decode_recorded = msgspec.json.Decoder(_RecordedRow).decode


class DoneRows:
    """A set of input line numbers, one byte per line: 10M lines cost 10 MB."""

    def __init__(self) -> None:
        self._flags = bytearray()
        self.count = 0

    def add(self, line: int) -> None:
        if line >= len(self._flags):
            self._flags.extend(bytes(max(line + 1 - len(self._flags), len(self._flags))))
        if not self._flags[line]:
            self._flags[line] = 1
            self.count += 1

    def __contains__(self, line: int) -> bool:
        return line < len(self._flags) and self._flags[line] == 1


def load_done_rows(path: Path) -> DoneRows:
    """The rows recorded in ``path`` (none if it does not exist yet).

    A last line cut short (the earlier run was killed mid-write) is removed from the file, so
    that new results are appended on a line of their own; its row is sent again.
    """
    done = DoneRows()
    if not path.exists():
        return done
    complete_up_to = 0
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                break  # cut short: dealt with below
            complete_up_to += len(raw)
            if not raw.strip():
                continue
            try:
                done.add(_decode_recorded(raw).line)
            except (msgspec.DecodeError, UnicodeDecodeError) as e:  # by msgspec version
                raise CLIError(
                    f"{path} line {number} is not a pushwire results line ({e}); is this the "
                    "results file of an earlier `pushwire send` with this input?"
                ) from None
    if complete_up_to < path.stat().st_size:
        echo_warning(f"{path}: removing an incomplete last line left by an interrupted run")
        os.truncate(path, complete_up_to)
    return done
