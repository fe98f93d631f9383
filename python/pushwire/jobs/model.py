"""What goes through Redis: job chunks on the stream, outcome records, a job's status.

A job is many stream entries, one per chunk of tokens; each entry carries everything a worker
needs (application name, message, the tokens and the index of the first one), so any worker
can process any entry, in any order, more than once. Fields of an entry::

    job    the job id
    chunk  the chunk number within the job
    data   JSON of :class:`ChunkEntry`

Outcome records are keyed by (job id, index): the index is the notification's position in
the job, which is what makes recording them idempotent.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from .._classify import classify
from .._results import Result
from .errors import MalformedEntryError
from .keys import check_job_id

#: Version of the entry format; a worker refuses (dead-letters) versions it does not know.
ENTRY_VERSION = 1
#: A chunk holds at most this many tokens (a Redis entry stays well under 1 MB).
MAX_CHUNK = 10_000
#: Dead-letter entries keep at most this much of a malformed entry.
DEAD_LETTER_EXCERPT = 4096

_encoder = msgspec.json.Encoder()


class ChunkEntry(msgspec.Struct, frozen=True):
    """One chunk of one job: send ``message`` to ``tokens`` of application ``app``; the
    first token is notification ``first`` of the job."""

    job: str
    app: str
    first: int
    tokens: list[str]
    #: A :class:`pushwire.store.PushMessage` as ``to_dict()`` writes it.
    message: dict[str, Any]
    v: int = ENTRY_VERSION


class OutcomeRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """The final outcome of one notification of a job, as stored in Redis."""

    token: str
    outcome: str
    action: str
    status: int = 0
    reason: str | None = None
    message_id: str | None = None
    timestamp_ms: int | None = None
    error: str | None = None
    maybe_delivered: bool = False
    attempts: int = 0
    #: The worker (consumer name) that recorded it.
    worker: str = ""


class JobStatus(msgspec.Struct, frozen=True):
    """Progress of a job: how many notifications have their final outcome, and which."""

    job_id: str
    #: ``enqueuing`` (chunks still being written), ``queued`` (all written, none recorded),
    #: ``running``, or ``complete`` (every notification has its final outcome and every
    #: chunk is acknowledged).
    state: str
    #: Notifications in the job (so far, while enqueuing).
    total: int
    #: Notifications with a final outcome recorded.
    recorded: int
    chunks: int
    chunks_done: int
    by_outcome: dict[str, int]
    by_action: dict[str, int]
    #: Notifications sent again after their entry was reclaimed from a worker that stopped
    #: answering: each may have reached the provider twice (the device shows one: collapse id).
    resent: int
    #: Chunks sent to the dead-letter stream (their notifications are recorded ``failed``).
    dead_lettered: int
    created_at: float
    applications: list[str]
    #: When :meth:`Queue.cancel` was called (epoch seconds), or None. Chunks taken after it
    #: record their notifications ``failed`` with reason ``JobCancelled``, never sent.
    cancelled_at: float | None = None

    @property
    def complete(self) -> bool:
        return self.state == "complete"

    @property
    def delivered(self) -> int:
        return self.by_outcome.get("delivered", 0)


def new_job_id() -> str:
    """Sortable by creation time, unique across machines: ``j`` + ms in base 36 + random."""
    ms = int(time.time() * 1000)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    stamp = ""
    while ms:
        ms, rest = divmod(ms, 36)
        stamp = digits[rest] + stamp
    return f"j{stamp}-{secrets.token_hex(5)}"


def encode_entry(entry: ChunkEntry, chunk: int) -> dict[str, bytes]:
    return {
        "job": entry.job.encode(),
        "chunk": str(chunk).encode(),
        "data": _encoder.encode(entry),
    }


_entry_decoder = msgspec.json.Decoder(ChunkEntry)


def decode_entry(fields: Mapping[bytes, bytes]) -> tuple[ChunkEntry, int]:
    """The chunk and its number, or :class:`MalformedEntryError` saying what is wrong."""
    data = fields.get(b"data")
    if data is None:
        raise MalformedEntryError("the entry has no 'data' field (not a pushwire job chunk)")
    try:
        entry = _entry_decoder.decode(data)
    except msgspec.DecodeError as e:
        raise MalformedEntryError(f"'data' is not a job chunk: {e}") from None
    if entry.v != ENTRY_VERSION:
        raise MalformedEntryError(
            f"entry format version {entry.v} is not supported by this worker "
            f"(it reads version {ENTRY_VERSION}): upgrade the workers"
        )
    try:
        check_job_id(entry.job)
    except Exception as e:
        raise MalformedEntryError(str(e)) from None
    if entry.first < 0:
        raise MalformedEntryError(f"'first' must be >= 0, got {entry.first}")
    if not entry.tokens or len(entry.tokens) > MAX_CHUNK:
        raise MalformedEntryError(
            f"a chunk holds 1 to {MAX_CHUNK} tokens, this one {len(entry.tokens)}"
        )
    if not entry.app:
        raise MalformedEntryError("'app' is empty")
    raw_chunk = fields.get(b"chunk", b"")
    try:
        chunk = int(raw_chunk)
    except ValueError:
        raise MalformedEntryError(f"'chunk' is not a number: {raw_chunk[:40]!r}") from None
    if fields.get(b"job") != entry.job.encode():
        raise MalformedEntryError("the 'job' field does not match the chunk's job")
    return entry, chunk


def excerpt(fields: Mapping[bytes, bytes]) -> bytes:
    """A bounded JSON rendering of an entry's fields for the dead-letter stream."""
    shown = {
        k.decode("utf-8", "replace")[:100]: v.decode("utf-8", "replace")[:DEAD_LETTER_EXCERPT]
        for k, v in list(fields.items())[:20]
    }
    return _encoder.encode(shown)[: DEAD_LETTER_EXCERPT * 2]


def record_of(result: Result, worker: str) -> OutcomeRecord:
    return OutcomeRecord(
        token=result.token,
        outcome=result.outcome.value,
        action=classify(result).action.value,
        status=result.status,
        reason=result.reason,
        message_id=result.message_id,
        timestamp_ms=result.timestamp_ms,
        error=result.error,
        maybe_delivered=result.maybe_delivered,
        attempts=result.attempts,
        worker=worker,
    )


#: The reason of a notification not sent because its job was cancelled before its chunk ran.
CANCELLED_REASON = "JobCancelled"


def failed_record(
    token: str, error: str, worker: str, action: str = "fix_config", reason: str | None = None
) -> OutcomeRecord:
    """The outcome of a notification that was never sent (its chunk was dead-lettered, or its
    job cancelled)."""
    return OutcomeRecord(
        token=token,
        outcome="failed",
        action=action,
        reason=reason,
        error=error,
        maybe_delivered=False,
        worker=worker,
    )


def encode_record(record: OutcomeRecord) -> bytes:
    return _encoder.encode(record)


_record_decoder = msgspec.json.Decoder(OutcomeRecord)


def decode_record(data: bytes) -> OutcomeRecord:
    return _record_decoder.decode(data)


def default_consumer() -> str:
    """``host-pid``: unique per worker process, readable in ``pushwire jobs status``."""
    host = os.uname().nodename.split(".")[0] or "worker"
    return f"{host}-{os.getpid()}"
