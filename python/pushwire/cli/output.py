"""Files `pushwire send` and `pushwire demo` write: the results and the tokens to drop.

Both are created with mode 0600 (they hold device tokens) and written as results arrive,
flushed at least every :data:`FLUSH_INTERVAL` seconds, so an interrupted run leaves a usable
record. With ``--resume`` they are appended to.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import msgspec

from .._classify import Action, BadTokenBurstDetector, Classification
from .._results import Outcome, Result

FLUSH_INTERVAL = 0.2
#: Enum values looked up once: millions of results are written.
_OUTCOME_TEXT = {outcome: outcome.value for outcome in Outcome}
_ACTION_TEXT = {action: action.value for action in Action}
#: Reasons that, in a burst, mean a configuration mistake rather than dead tokens.
_BURST_WARNINGS = {
    "BadDeviceToken": (
        "a burst of BadDeviceToken ({count:,} tokens) looks like sandbox tokens sent to "
        "production or the reverse: check --sandbox/--production against the app build; "
        "these tokens were NOT marked to drop"
    ),
    "DeviceTokenNotForTopic": (
        "a burst of DeviceTokenNotForTopic ({count:,} tokens) looks like a wrong --topic or "
        "--push-type; these tokens were NOT marked to drop"
    ),
}


def open_private(path: Path, *, append: bool) -> IO[bytes]:
    """Open for writing with mode 0600, an existing file included (device tokens are
    personal data)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    if os.fstat(fd).st_mode & 0o077:
        os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb", buffering=1 << 16)


class ResultsWriter:
    """One JSON line per input row: ``index``, ``line``, ``token``, ``outcome``, ``status``,
    ``reason``, ``action``, ``apns_id`` (FCM: ``message_id``), ``timestamp_ms``, ``error``,
    ``maybe_delivered``."""

    def __init__(self, path: Path | None, *, id_field: str = "apns_id", append: bool = False):
        self._id_field = id_field
        self._out = open_private(path, append=append) if path is not None else None
        self._encode = msgspec.json.Encoder().encode
        self._flushed_at = time.monotonic()

    def write(self, result: Result, action: Action, index: int, line: int | None) -> None:
        record: dict[str, Any] = {"index": index}
        if line is not None:
            record["line"] = line
        record["token"] = result.token
        record["outcome"] = _OUTCOME_TEXT[result.outcome]
        record["status"] = result.status
        record["reason"] = result.reason
        record["action"] = _ACTION_TEXT[action]
        record[self._id_field] = result.apns_id
        record["timestamp_ms"] = result.timestamp_ms
        record["error"] = result.error
        record["maybe_delivered"] = result.maybe_delivered
        self._write(record)

    def write_unsent(self, index: int, line: int, token: str | None, error: str) -> None:
        """A row refused before sending (unreadable, bad token...): ``failed``, fix_payload."""
        self._write_failed(index, line, token, error, Action.FIX_PAYLOAD, maybe_delivered=False)

    def write_unknown(self, index: int, line: int, token: str, error: str) -> None:
        """A row whose outcome never came back: ``failed``, maybe delivered, so that
        ``--resume`` does not send it again."""
        self._write_failed(index, line, token, error, Action.RETRY, maybe_delivered=True)

    def _write_failed(
        self,
        index: int,
        line: int,
        token: str | None,
        error: str,
        action: Action,
        *,
        maybe_delivered: bool,
    ) -> None:
        self._write(
            {
                "index": index,
                "line": line,
                "token": token,
                "outcome": "failed",
                "status": 0,
                "reason": None,
                "action": action.value,
                self._id_field: None,
                "timestamp_ms": None,
                "error": error,
                "maybe_delivered": maybe_delivered,
            }
        )

    def _write(self, record: dict[str, Any]) -> None:
        if self._out is None:
            return
        self._out.write(self._encode(record) + b"\n")
        now = time.monotonic()
        if now - self._flushed_at > FLUSH_INTERVAL:
            self._out.flush()
            self._flushed_at = now

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


class DropTokens:
    """Tokens to remove from your database, decided with :func:`pushwire.classify`.

    Written as they come (JSONL, or CSV for a ``.csv`` name: ``token``, ``reason``,
    ``timestamp_ms`` for 410, ``line``), except ``BadDeviceToken`` / ``DeviceTokenNotForTopic``
    ones: those wait in a temporary file until the end, and are dropped only if they did not
    come in a burst (a burst means a sandbox/production or topic mix-up, not dead tokens).
    """

    def __init__(self, path: Path | None, *, append: bool = False) -> None:
        self._csv = path is not None and path.suffix.lower() == ".csv"
        self._out = open_private(path, append=append) if path is not None else None
        if self._out is not None and self._csv and self._out.tell() == 0:
            self._out.write(b"token,reason,timestamp_ms,line\n")
        #: reason -> (temporary file, count) of the tokens held back until the end
        self._held: dict[str, tuple[IO[bytes], int]] = {}
        self._detector = BadTokenBurstDetector()
        self._encode = msgspec.json.Encoder().encode
        self.count = 0
        self.withheld = 0
        self.warnings: list[str] = []

    def observe(self, result: Result, classification: Classification, line: int | None) -> None:
        self._detector.observe(result)
        if classification.action is not Action.DROP_TOKEN:
            return
        entry = self._entry(result, line)
        reason = result.reason
        if reason in _BURST_WARNINGS:
            # Closed in finish(), after the run: it outlives this call.
            held, count = self._held.get(reason) or (tempfile.TemporaryFile(), 0)  # noqa: SIM115
            held.write(entry)
            self._held[reason] = (held, count + 1)
        else:
            self._emit(entry)

    def _entry(self, result: Result, line: int | None) -> bytes:
        if self._csv:
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerow(
                [result.token, result.reason or "", result.timestamp_ms or "", line or ""]
            )
            return text.getvalue().encode()
        record: dict[str, object] = {"token": result.token, "reason": result.reason}
        if result.timestamp_ms is not None:
            record["timestamp_ms"] = result.timestamp_ms
        if line is not None:
            record["line"] = line
        return self._encode(record) + b"\n"

    def _emit(self, entry: bytes) -> None:
        self.count += 1
        if self._out is not None:
            self._out.write(entry)

    def _burst_seen(self, reason: str) -> bool:
        if reason == "BadDeviceToken":
            return self._detector.environment_mismatch_seen
        return self._detector.topic_mismatch_seen

    def finish(self) -> None:
        """Decide on the held tokens, write them or warn, and close the files."""
        for reason, (held, count) in self._held.items():
            if self._burst_seen(reason):
                self.withheld += count
                self.warnings.append(_BURST_WARNINGS[reason].format(count=count))
            else:
                held.seek(0)
                for entry in held:
                    self._emit(entry)
            held.close()
        self._held.clear()
        if self._out is not None:
            self._out.close()
            self._out = None
