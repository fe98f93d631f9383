"""Bulk results that cost nothing when all is well: counts for the delivered, full
:class:`Result` objects only for what needs attention.

A :class:`Result` costs ~450 bytes (the object, its token and apns-id strings, its numbers);
a million delivered notifications held as Results are ~450 MB. A :class:`BulkReport` keeps, per
delivered notification, one byte of completion order and its provider id packed in a shared
buffer (20 bytes for an APNs UUID), so a million-token send holds ~21 MB and a clean one's
report is a few counters and two buffers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from . import _core
from ._classify import RegisteredAt, Summary, TokenToDrop, summarize, tokens_to_drop
from ._outcome import Outcome
from ._results import Result, Results

__all__ = ["BulkReport", "MessageIds"]

#: Entries made into strings per call when reading :class:`MessageIds`.
_READ_SLICE = 4096


class MessageIds:
    """The provider ids of delivered notifications (APNs ``apns-id``, FCM message ``name``),
    packed on the Rust side: a UUID takes 16 bytes plus a 4-byte index, a name its UTF-8 bytes
    after the prefix it shares with the first name seen (``projects/<p>/messages/``) plus 16
    bytes. Strings are made only when read (:meth:`items`), a slice at a time."""

    __slots__ = ("_packed", "add")

    def __init__(self) -> None:
        self._packed = _core.MessageIds()
        #: Record the id of the notification at an index (bound once: it runs per delivery).
        self.add = self._packed.add

    def __len__(self) -> int:
        return len(self._packed)

    def items(self) -> Iterator[tuple[int, str]]:
        """``(index, message id)`` of every delivered notification that has one, made lazily,
        grouped by id form (``dict(report.message_ids.items())`` for lookups by index)."""
        packed = self._packed
        for start in range(0, len(packed), _READ_SLICE):
            yield from packed.slice(start, _READ_SLICE)

    @property
    def nbytes(self) -> int:
        """Bytes held by the packed ids."""
        return self._packed.nbytes


_DELIVERED, _PROBLEM = 0, 1


class BulkReport:
    """What a bulk send returns with ``keep="problems"`` (and :meth:`~PushClient.send_stream`):
    every notification is accounted for (``delivered + len(problems) == total``), exactly one
    outcome each, but only the ones that need attention are :class:`Result` objects.

    ``problems`` holds the rejected, timed out and failed ones (``maybe_delivered`` among them,
    retries that gave up, notifications refused locally), in input order. Delivered ones are
    counted, and their provider ids are in :attr:`message_ids`.
    """

    __slots__ = ("_by_completion", "_keep_ids", "_order", "_sorted", "delivered", "message_ids")

    def __init__(self, *, keep_message_ids: bool = True) -> None:
        #: Notifications the provider accepted.
        self.delivered = 0
        #: ``apns-id`` / FCM message name of each delivered notification, packed (empty when
        #: the send was asked not to keep them: ``send_stream(..., message_ids=False)``).
        self.message_ids = MessageIds()
        self._keep_ids = keep_message_ids
        self._by_completion: list[Result] = []
        # One byte per notification in completion order (delivered or not): summary() replays
        # it so the bad-token burst rule sees the same sequence as with full Results.
        self._order = bytearray()
        self._sorted: Results | None = None

    # -- filled by the dispatcher ---------------------------------------------------------

    def _add_delivered(self, index: int, message_id: str | None) -> None:
        self.delivered += 1
        self._order.append(_DELIVERED)
        if message_id is not None and self._keep_ids:
            self.message_ids.add(index, message_id)

    def _add_problem(self, result: Result) -> None:
        if result.outcome is Outcome.DELIVERED:  # e.g. a kept-headers answer
            self._add_delivered(result.index, result.apns_id)
            return
        self._by_completion.append(result)
        self._order.append(_PROBLEM)
        self._sorted = None

    # -- read by the caller ---------------------------------------------------------------

    @property
    def total(self) -> int:
        """Notifications accounted for: the input's length once the send returned."""
        return len(self._order)

    @property
    def problems(self) -> Results:
        """Every result that is not ``delivered``, in input order (by ``index``)."""
        if self._sorted is None:
            self._sorted = Results(sorted(self._by_completion, key=_index))
        return self._sorted

    @property
    def ok(self) -> bool:
        """True when every notification was delivered."""
        return not self._by_completion

    def counts(self) -> dict[Outcome, int]:
        """Notifications per outcome; they add up to :attr:`total`."""
        counts = dict.fromkeys(Outcome, 0)
        counts[Outcome.DELIVERED] = self.delivered
        for result in self._by_completion:
            counts[result.outcome] += 1
        return counts

    def summary(self) -> Summary:
        """The same :class:`Summary` the full :class:`Results` would give (counts by outcome,
        reason and action, tokens to drop, the bad-token burst rule, retryable indexes)."""
        return summarize(self._replay())

    def tokens_to_drop(
        self, registered_at: Mapping[str, RegisteredAt] | None = None
    ) -> list[TokenToDrop]:
        """As :meth:`Results.tokens_to_drop`: tokens to disable, the burst rule applied (in
        completion order)."""
        return tokens_to_drop(self._replay(), registered_at)

    def _replay(self) -> Iterator[Result]:
        """Every outcome in completion order, one shared stand-in for the delivered."""
        problems = iter(self._by_completion)
        for kind in self._order:
            yield _DELIVERED_STAND_IN if kind == _DELIVERED else next(problems)

    def __repr__(self) -> str:
        shown = ", ".join(f"{o.value}={n}" for o, n in self.counts().items() if n)
        return f"BulkReport(total={self.total}, {shown or 'empty'})"


def _index(result: Result) -> int:
    return result.index


_DELIVERED_STAND_IN = Result(
    0, "", Outcome.DELIVERED, 200, None, None, None, None, 0, 0, 0.0, 1, None, False
)
