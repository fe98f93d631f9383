"""Where everything lives in Redis: the names of keys, derived from the stream name.

======================================= ===================================================
key                                     what
======================================= ===================================================
``STREAM``                              the job stream: one entry per chunk of tokens
``STREAM:dead``                         dead-letter stream: malformed or unprocessable entries
``STREAM:results``                      optional feed of outcome records (``--results-stream``)
``STREAM:jobs``                         sorted set of job ids by creation time
``STREAM:job:ID``                       hash: job settings, progress counters
``STREAM:job:ID:outcomes``              hash: index -> final outcome record (set once)
``STREAM:job:ID:chunks``                set: chunk numbers finished (acknowledged)
``STREAM:worker:CONSUMER``              hash: a worker's metrics, expires when it stops
``PREFIX:auth:...``                     shared APNs JWTs / FCM access tokens and their leases
``PREFIX:quota:PROJECT``                 FCM project quota: sliding-window reservations
======================================= ===================================================

Shared credentials and rate limits use ``PREFIX`` (default ``pushwire``), not the stream: two
streams sending with one APNs key still share one JWT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import JobInputError

_NAME = re.compile(r"[A-Za-z0-9_.:@/+-]{1,200}")
_JOB_ID = re.compile(r"[A-Za-z0-9_.-]{1,48}")

DEFAULT_STREAM = "pushwire:jobs"
DEFAULT_GROUP = "pushwire-workers"
DEFAULT_PREFIX = "pushwire"


def check_name(value: object, field: str) -> str:
    """A stream, group, consumer or prefix name: printable, no spaces, at most 200 chars."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise JobInputError(
            f"{field} must be 1-200 characters among letters, digits and _.:@/+-, got {value!r}",
            field=field,
        )
    return value


def check_job_id(value: object) -> str:
    """Job ids become part of collapse ids (64 bytes at most): 1-48 of [A-Za-z0-9_.-]."""
    if not isinstance(value, str) or not _JOB_ID.fullmatch(value):
        raise JobInputError(
            f"a job id is 1-48 characters among letters, digits and _.-, got {value!r}",
            field="job_id",
        )
    return value


@dataclass(frozen=True)
class Keys:
    """The keys of one job stream."""

    stream: str

    def __post_init__(self) -> None:
        check_name(self.stream, "stream")

    @property
    def dead(self) -> str:
        return f"{self.stream}:dead"

    @property
    def results(self) -> str:
        return f"{self.stream}:results"

    @property
    def jobs(self) -> str:
        return f"{self.stream}:jobs"

    def job(self, job_id: str) -> str:
        return f"{self.stream}:job:{job_id}"

    def outcomes(self, job_id: str) -> str:
        return f"{self.stream}:job:{job_id}:outcomes"

    def chunks(self, job_id: str) -> str:
        return f"{self.stream}:job:{job_id}:chunks"

    def worker(self, consumer: str) -> str:
        return f"{self.stream}:worker:{consumer}"

    @property
    def workers_pattern(self) -> str:
        return f"{self.stream}:worker:*"


def auth_key(prefix: str, kind: str, identity: str) -> str:
    """The shared credential ``kind`` (``jwt``, ``fcm``) of ``identity``."""
    return f"{prefix}:auth:{kind}:{identity}"


def quota_key(prefix: str, project: str) -> str:
    """The sliding-window reservations of FCM ``project``'s quota."""
    return f"{prefix}:quota:fcm:{project}"
