"""How a client's connection pool behaves: one typed object, checked before the engine sees it.

:class:`PoolOptions` documents every option; ``APNsClient(..., max_retries=2)`` and
``FCMClient(...)`` keep taking them as keyword arguments, validated into one. A misspelt or
out-of-range option is a :class:`ConfigurationError` naming it (and, for a misspelling, the
closest valid name), never a bare ``TypeError``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping
from typing import TypedDict

from ._errors import ConfigurationError

__all__ = ["PoolOptionArgs", "PoolOptions"]

#: Checks one option's value; returns it (a duration as a float) or raises.
_Check = Callable[[str, object], object]

_U32 = 2**32 - 1
_U64 = 2**64 - 1
#: Durations beyond this many seconds do not fit the engine's clock.
_MAX_SECONDS = float(2**63)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PoolOptions:
    """The tuning of one connection pool (each client has one per credential).

    The defaults suit APNs and FCM; change them when measurements say so. Counts are
    non-negative integers, durations non-negative seconds (``int`` or ``float``).
    """

    #: Connections opened lazily, at most this many (0 counts as 1).
    max_connections: int = 4
    #: Our own cap on concurrent streams per connection; the server's SETTINGS may lower it.
    max_streams_per_connection: int = 1000
    #: Deadline of one request, from the moment its stream is opened.
    request_timeout: float = 10.0
    #: How long a notification may wait for a connection before it fails (covers reconnects).
    queue_timeout: float = 60.0
    #: Deadline of the TCP connect and TLS handshake.
    connect_timeout: float = 10.0
    #: Interval between liveness PINGs on an idle connection.
    ping_interval: float = 10.0
    #: A PING not acknowledged within this time marks the connection dead.
    ping_timeout: float = 5.0
    #: This many timeouts in a row, with no success for a whole ``request_timeout``, mark the
    #: connection dead.
    dead_after_timeouts: int = 10
    #: Rotate a connection once its stream ids pass this value; None: the engine's default,
    #: a margin below HTTP/2's 2**31-1.
    stream_id_limit: int | None = None
    #: Reconnect backoff: first delay and cap, in seconds (each delay gets full jitter).
    backoff_base: float = 0.1
    backoff_max: float = 30.0
    #: Connect attempts in a row that may fail before waiting notifications fail.
    max_connect_attempts: int = 5
    #: Transparent resends of a notification that provably never reached the provider.
    max_retries: int = 5
    #: Also resend notifications whose fate is uncertain (may deliver one twice). Off.
    retry_uncertain: bool = False
    #: Record the latency histogram and outcome counts (see :meth:`APNsClient.metrics`).
    metrics: bool = True

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            checked = _CHECKS[spec.name](spec.name, value)
            if checked is not value:
                object.__setattr__(self, spec.name, checked)

    @classmethod
    def from_keywords(cls, options: Mapping[str, object]) -> PoolOptions:
        """Options from keyword arguments; an unknown name is a :class:`ConfigurationError`
        that suggests the closest valid one."""
        for name in options:
            if name not in _CHECKS:
                raise ConfigurationError(_unknown(name), field=name)
        return cls(**options)  # type: ignore[arg-type]


class PoolOptionArgs(TypedDict, total=False):
    """:class:`PoolOptions` as keyword arguments of the clients (for type checkers)."""

    max_streams_per_connection: int
    queue_timeout: float
    connect_timeout: float
    ping_interval: float
    ping_timeout: float
    dead_after_timeouts: int
    stream_id_limit: int | None
    backoff_base: float
    backoff_max: float
    max_connect_attempts: int
    max_retries: int
    retry_uncertain: bool
    metrics: bool


def _unknown(name: str) -> str:
    message = f"unknown pool option {name!r}"
    close = difflib.get_close_matches(name, list(_CHECKS), n=1)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    return f"{message}; the options are those of pushwire.PoolOptions: {', '.join(_CHECKS)}"


def _count(limit: int) -> _Check:
    def check(name: str, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(
                f"{name} must be an int, got {type(value).__name__}", field=name
            )
        if not 0 <= value <= limit:
            raise ConfigurationError(f"{name} must be between 0 and {limit}", field=name)
        return value

    return check


def _optional_count(limit: int) -> _Check:
    count = _count(limit)

    def check(name: str, value: object) -> object:
        return None if value is None else count(name, value)

    return check


def _seconds(name: str, value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"{name} must be a number of seconds, got {type(value).__name__}", field=name
        )
    seconds = float(value)
    if not (math.isfinite(seconds) and 0 <= seconds < _MAX_SECONDS):
        raise ConfigurationError(
            f"{name} must be a finite, non-negative number of seconds, got {value!r}",
            field=name,
        )
    return value if isinstance(value, float) else seconds


def _flag(name: str, value: object) -> object:
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"{name} must be True or False, got {type(value).__name__}", field=name
        )
    return value


_CHECKS: dict[str, _Check] = {
    "max_connections": _count(_U64),
    "max_streams_per_connection": _count(_U64),
    "request_timeout": _seconds,
    "queue_timeout": _seconds,
    "connect_timeout": _seconds,
    "ping_interval": _seconds,
    "ping_timeout": _seconds,
    "dead_after_timeouts": _count(_U32),
    "stream_id_limit": _optional_count(_U32),
    "backoff_base": _seconds,
    "backoff_max": _seconds,
    "max_connect_attempts": _count(_U32),
    "max_retries": _count(_U32),
    "retry_uncertain": _flag,
    "metrics": _flag,
}
