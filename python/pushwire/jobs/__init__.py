"""Scale-out on Redis Streams: producers enqueue send jobs, a fleet of workers sends them.

=================== =====================================================================
module              concern
=================== =====================================================================
``keys``            key names derived from the stream name
``model``           job chunks, outcome records and job status (msgspec)
``connection``      redis-py asyncio client, Redis errors -> :class:`QueueUnavailableError`
``queue``           :class:`Queue`: enqueue jobs, read status and outcomes (producer)
``outcomes``        idempotent outcome records keyed by (job id, index); chunk completion
``recovery``        XAUTOCLAIM of entries left by dead workers; claim renewal
``shared_auth``     one APNs JWT / FCM access token for every worker, under a Redis lease
``quota``           FCM's per-project quota: a sliding window in Redis shared by every worker
``clients``         one client per application, messages rendered with collapse ids
``metrics``         per-worker metrics and queue depth / lag, as plain dicts
``worker``          :class:`Worker`: the consumer-group loop
=================== =====================================================================

Delivery is at least once: a worker killed mid-send leaves notifications that may have
reached the provider without a recorded outcome; the worker that reclaims its entries sends
those again (counted as ``resent``). Every notification still ends with exactly one recorded
outcome, and the collapse id derived from the job id makes the device show one.
"""

from __future__ import annotations

from .clients import ClientOptions, collapse_id, with_collapse
from .errors import (
    JobExistsError,
    JobInputError,
    JobsError,
    MalformedEntryError,
    QueueUnavailableError,
    SharedAuthError,
    UnknownJobError,
)
from .keys import DEFAULT_GROUP, DEFAULT_PREFIX, DEFAULT_STREAM, Keys
from .metrics import WorkerMetrics, queue_metrics
from .model import ChunkEntry, JobStatus, OutcomeRecord
from .queue import Queue
from .worker import Worker, WorkerSettings

__all__ = [
    "DEFAULT_GROUP",
    "DEFAULT_PREFIX",
    "DEFAULT_STREAM",
    "ChunkEntry",
    "ClientOptions",
    "JobExistsError",
    "JobInputError",
    "JobStatus",
    "JobsError",
    "Keys",
    "MalformedEntryError",
    "OutcomeRecord",
    "Queue",
    "QueueUnavailableError",
    "SharedAuthError",
    "UnknownJobError",
    "Worker",
    "WorkerMetrics",
    "WorkerSettings",
    "collapse_id",
    "queue_metrics",
    "with_collapse",
]
