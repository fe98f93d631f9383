"""The engine's outcome record, read by field name.

Outcomes cross from Rust as plain tuples (one allocation each, the cheapest thing the drain
loop can build); ``_core.OUTCOME_FIELDS`` names their fields in order, and the constants here
are those positions, so no module reads a record by number. ``tests/test_record.py`` checks
that both sides agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:
    from ._core import OutcomeRecord as OutcomeRecord
else:
    OutcomeRecord = tuple  # the precise type lives in _core.pyi


#: The field names, in the engine's order (rust/py/src/engine.rs ``OUTCOME_FIELDS``).
FIELDS = (
    "id",
    "token",
    "outcome",
    "status",
    "reason",
    "apns_id",
    "timestamp_ms",
    "retry_after",
    "stream_id",
    "connection_id",
    "latency",
    "attempts",
    "error",
    "maybe_delivered",
    "body",
    "auth_generation",
    "headers",
)

#: Request id: ``(job << 32) | index`` (see ``_dispatch``).
ID: Final = 0
TOKEN: Final = 1
#: ``"delivered"``, ``"rejected"``, ``"timeout"`` or ``"failed"``.
OUTCOME: Final = 2
#: HTTP status, 0 when no response came back.
STATUS: Final = 3
REASON: Final = 4
APNS_ID: Final = 5
TIMESTAMP_MS: Final = 6
#: ``retry-after`` in seconds, when the provider sent one.
RETRY_AFTER: Final = 7
STREAM_ID: Final = 8
CONNECTION_ID: Final = 9
#: Seconds from submission to outcome.
LATENCY: Final = 10
ATTEMPTS: Final = 11
ERROR: Final = 12
MAYBE_DELIVERED: Final = 13
BODY: Final = 14
#: The number the engine gave the ``authorization`` header the request carried.
AUTH_GENERATION: Final = 15
#: Response headers the template kept (APNs broadcast ids), or None.
HEADERS: Final = 16

_POSITIONS = {name: position for position, name in enumerate(FIELDS)}


def replace(record: OutcomeRecord, **changes: Any) -> OutcomeRecord:
    """A copy of ``record`` with the named fields changed (``replace(r, outcome="failed")``)."""
    fields = list(record)
    for name, value in changes.items():
        try:
            fields[_POSITIONS[name]] = value
        except KeyError:
            raise TypeError(f"an outcome record has no field {name!r}") from None
    return cast(OutcomeRecord, tuple(fields))
