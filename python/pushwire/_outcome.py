"""What happened to one notification: the four outcomes every result carries."""

from __future__ import annotations

import enum


class Outcome(str, enum.Enum):
    """What happened to one notification."""

    #: The provider accepted it (HTTP 200). Not proof it was displayed.
    DELIVERED = "delivered"
    #: The provider refused it; ``status`` and ``reason`` say why.
    REJECTED = "rejected"
    #: No answer before ``request_timeout``: the stream was reset. It may have been delivered.
    TIMEOUT = "timeout"
    #: No answer for another reason (connection lost, could not connect, client closed).
    #: ``maybe_delivered`` tells whether it may have reached the provider.
    FAILED = "failed"


OUTCOMES_BY_VALUE = {o.value: o for o in Outcome}
