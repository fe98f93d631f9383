"""Applying send results to endpoints.

* ``drop_token`` results disable their endpoint with the provider's reason, unless the token
  was registered again after the moment the result speaks about (the APNs 410 timestamp, or
  the send time when there is none): see :mod:`.rules`.
* A burst of ``BadDeviceToken`` (``DeviceTokenNotForTopic``) is a sandbox/production (topic)
  mix-up, not dead tokens: those results are withheld by :func:`pushwire.summarize` and a
  ``config_alert`` event is recorded instead, once per applier. ``fix_config`` results raise
  the same alert; tokens are kept.
* Retryable outcomes, payload errors and deliveries change nothing.

One :class:`ResultApplier` per application and send carries the burst detector across
batches, so a mix-up that starts in one batch keeps its tokens withheld in the next ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._classify import (
    Action,
    BadTokenBurstDetector,
    Reason,
    ResultLike,
    Summary,
    TokenToDrop,
    parse_reason,
    summarize,
)
from .backend import Connection, Database
from .endpoints import batched, event_for, lock_states, write_status
from .events import EventLog, NewEvent
from .model import Application, EndpointEvent, EventKind, Provider
from .rules import DropVerdict, EndpointState, drop

#: Alert kinds and the start of the summary warning that explains each.
_ALERTS = {
    "environment_mismatch": "Burst of BadDeviceToken",
    "topic_mismatch": "Burst of DeviceTokenNotForTopic",
    "configuration": "Configuration problem",
}


@dataclass
class ApplyReport:
    """What one batch of results did to the store."""

    results: int = 0
    #: Tokens this batch disabled.
    disabled: list[str] = field(default_factory=list)
    #: Drop verdicts not applied because the token was registered again since.
    kept_reregistered: int = 0
    #: Drop verdicts withheld by the burst rule (environment or topic mix-up).
    withheld: int = 0
    #: Drop verdicts about tokens the store does not have (deleted meanwhile).
    unknown: int = 0
    #: Alert kinds this batch raised (``environment_mismatch``, ``topic_mismatch``,
    #: ``configuration``).
    alerts: list[str] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)


class ResultApplier:
    """Applies batches of results of one application, in the order they arrive."""

    def __init__(
        self,
        database: Database,
        events: EventLog,
        application: Application,
        *,
        detector: BadTokenBurstDetector | None = None,
        cause: str = "send_result",
        run_id: int | None = None,
    ) -> None:
        self._db = database
        self._events = events
        self.application = application
        self.detector = detector if detector is not None else BadTokenBurstDetector()
        self._cause = cause
        self._run_id = run_id
        self._alerted: set[str] = set()

    def apply(
        self, results: Sequence[ResultLike], *, received_at: int, now: int
    ) -> tuple[ApplyReport, list[EndpointEvent]]:
        """Apply one batch. ``received_at`` (epoch ms) is when the batch's first result
        arrived: minus a result's latency, it is when that notification was sent."""
        summary = summarize(results, detector=self.detector)
        report = ApplyReport(results=summary.total, summary=summary)
        candidates = summary.tokens_to_drop
        report.withheld = summary.by_action.get(Action.DROP_TOKEN.value, 0) - len(candidates)
        new_alerts = [kind for kind in self._alert_kinds(summary) if kind not in self._alerted]
        if not candidates and not new_alerts:
            return report, []
        # APNs tokens are stored lowercase; a caller's own send may have used capitals.
        key = str.lower if self.application.provider is Provider.APNS else str
        rejected: dict[str, list[ResultLike]] = {}
        for r in results:
            if r.outcome == "rejected":
                rejected.setdefault(key(r.token), []).append(r)
        verdicts: dict[str, DropVerdict] = {}
        for candidate in candidates:
            token = key(candidate.token)
            verdict = self._verdict(candidate, rejected[token], received_at)
            # Several verdicts on one token: the latest moment decides (the rules commute).
            current = verdicts.get(token)
            if current is None or verdict.invalid_since > current.invalid_since:
                verdicts[token] = verdict

        def work(c: Connection) -> tuple[list[str], int, int, list[EndpointEvent]]:
            # Pure with respect to self: PostgreSQL may run it again after a deadlock.
            disabled: list[str] = []
            kept = unknown = 0
            new_events = [self._alert_event(kind, summary, now) for kind in new_alerts]
            for tokens in batched(sorted(verdicts)):
                states = lock_states(c, self._db, self.application.id, tokens)
                changed: list[EndpointState] = []
                for token in tokens:
                    state = states.get(token)
                    if state is None:
                        unknown += 1
                        continue
                    new, change, applied = drop(state, verdicts[token], now)
                    if new is not state:
                        changed.append(new)
                    if not applied:
                        kept += 1
                    if change is not None:
                        disabled.append(token)
                        if self._run_id is not None:
                            change.details["run_id"] = self._run_id
                        new_events.append(
                            event_for(change, self.application.name, new, now, self._cause)
                        )
                write_status(c, self._db, changed)
            return disabled, kept, unknown, self._events.record(c, new_events)

        disabled, kept, unknown, published = self._db.write(work)
        report.disabled, report.kept_reregistered, report.unknown = disabled, kept, unknown
        report.alerts = new_alerts
        self._alerted.update(new_alerts)
        return report, published

    @staticmethod
    def _verdict(
        candidate: TokenToDrop, results: list[ResultLike], received_at: int
    ) -> DropVerdict:
        result = next(
            (
                r
                for r in results
                if r.timestamp_ms == candidate.timestamp_ms
                and parse_reason(r.reason) == candidate.reason
            ),
            results[-1],
        )
        reason = candidate.reason
        if reason is None:
            reason_text = f"HTTP {result.status}"
        else:
            reason_text = reason.value if isinstance(reason, Reason) else reason
        if candidate.timestamp_ms is not None:
            since = candidate.timestamp_ms
        else:
            latency_ms = int(float(getattr(result, "latency", 0.0) or 0.0) * 1000)
            since = received_at - latency_ms
        return DropVerdict(result, reason_text, since)

    @staticmethod
    def _alert_kinds(summary: Summary) -> list[str]:
        kinds = []
        if summary.environment_mismatch_suspected:
            kinds.append("environment_mismatch")
        if summary.topic_mismatch_suspected:
            kinds.append("topic_mismatch")
        if summary.by_action.get(Action.FIX_CONFIG.value):
            kinds.append("configuration")
        return kinds

    def _alert_event(self, kind: str, summary: Summary, now: int) -> NewEvent:
        prefix = _ALERTS[kind]
        details: dict[str, Any] = {
            "alert": kind,
            "warning": next((w for w in summary.warnings if w.startswith(prefix)), None),
            "by_reason": dict(summary.by_reason),
        }
        if self._run_id is not None:
            details["run_id"] = self._run_id
        return NewEvent(
            at=now,
            kind=EventKind.CONFIG_ALERT,
            application=self.application.name,
            token=None,
            endpoint_id=None,
            user_id=None,
            cause=self._cause,
            details=details,
        )
