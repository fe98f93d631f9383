"""Delivery statistics: every store-driven send is a *run* (who, when, what, to whom) with its
counts per application; daily KPIs are sums over runs.

A run is written when it starts (status ``running``) and completed when it ends
(``finished``, or ``failed`` with the error and the counts so far), so a crashed send still
shows up.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .._classify import Action
from .apply import ApplyReport
from .backend import Connection, Database
from .clock import optional_datetime, to_datetime, utc_day
from .errors import StoreInputError, UnknownRunError

#: Distinct warnings kept per application and run.
MAX_WARNINGS = 20


@dataclass
class ApplicationTally:
    """Counts of one application in one run."""

    application: str
    sent: int = 0
    delivered: int = 0
    rejected: int = 0
    timed_out: int = 0
    failed: int = 0
    #: Results that said the token is dead (applied, kept or withheld).
    invalid_tokens: int = 0
    tokens_disabled: int = 0
    #: Dead-token verdicts not applied: the token registered again since.
    kept_reregistered: int = 0
    #: Dead-token verdicts withheld by the burst rule (environment or topic mix-up).
    withheld: int = 0
    #: Results worth resending later (retry, retry after auth).
    retryable: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    alerts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, report: ApplyReport) -> None:
        summary = report.summary
        outcomes = summary.by_outcome
        self.sent += summary.total
        self.delivered += outcomes.get("delivered", 0)
        self.rejected += outcomes.get("rejected", 0)
        self.timed_out += outcomes.get("timeout", 0)
        self.failed += outcomes.get("failed", 0)
        self.invalid_tokens += summary.by_action.get(Action.DROP_TOKEN.value, 0)
        self.retryable += len(summary.retryable)
        self.by_reason.update(summary.by_reason)
        self.tokens_disabled += len(report.disabled)
        self.kept_reregistered += report.kept_reregistered
        self.withheld += report.withheld
        self.alerts += report.alerts
        for warning in summary.warnings:
            if warning not in self.warnings and len(self.warnings) < MAX_WARNINGS:
                self.warnings.append(warning)

    @property
    def by_outcome(self) -> dict[str, int]:
        counts = {
            "delivered": self.delivered,
            "rejected": self.rejected,
            "timeout": self.timed_out,
            "failed": self.failed,
        }
        return {k: v for k, v in counts.items() if v}


@dataclass
class SendReport:
    """The outcome of a store-driven send."""

    run_id: int
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    applications: dict[str, ApplicationTally] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(t.sent for t in self.applications.values())

    @property
    def delivered(self) -> int:
        return sum(t.delivered for t in self.applications.values())

    @property
    def tokens_disabled(self) -> int:
        return sum(t.tokens_disabled for t in self.applications.values())

    @property
    def by_outcome(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for tally in self.applications.values():
            counts.update(tally.by_outcome)
        return dict(counts)

    @property
    def by_reason(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for tally in self.applications.values():
            counts.update(tally.by_reason)
        return dict(counts)

    @property
    def alerts(self) -> list[str]:
        return [f"{name}: {a}" for name, t in self.applications.items() for a in t.alerts]

    @property
    def warnings(self) -> list[str]:
        return [f"{name}: {w}" for name, t in self.applications.items() for w in t.warnings]

    @property
    def delivery_rate(self) -> float:
        return self.delivered / self.total if self.total else 0.0


@dataclass(frozen=True)
class SendRun:
    """A recorded run, as read back."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    actor: str
    target_kind: str
    target: Any
    message: dict[str, Any]
    total: int
    tokens_disabled: int
    by_outcome: dict[str, int]
    by_reason: dict[str, int]
    warnings: list[str]
    error: str | None
    applications: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class DailyKPI:
    """One application on one UTC day, summed over its runs."""

    application: str
    day: str
    runs: int
    sent: int
    delivered: int
    invalid_tokens: int
    tokens_disabled: int

    @property
    def delivery_rate(self) -> float:
        return self.delivered / self.sent if self.sent else 0.0

    @property
    def invalid_token_rate(self) -> float:
        return self.invalid_tokens / self.sent if self.sent else 0.0


def start_run(
    database: Database,
    *,
    now: int,
    actor: str,
    target_kind: str,
    target: Any,
    message: dict[str, Any],
) -> int:
    def work(c: Connection) -> int:
        rows = c.query(
            "INSERT INTO send_runs (started_at, status, actor, target_kind, target, message, "
            "total, tokens_disabled, by_outcome, by_reason, warnings) "
            "VALUES (?, 'running', ?, ?, ?, ?, 0, 0, ?, ?, ?) RETURNING id",
            (
                now,
                actor,
                target_kind,
                database.json_param(target),
                database.json_param(message),
                database.json_param({}),
                database.json_param({}),
                database.json_param([]),
            ),
        )
        run_id: int = rows[0][0]
        return run_id

    return database.write(work)


def finish_run(
    database: Database, report: SendReport, *, now: int, status: str, error: str | None = None
) -> None:
    day = utc_day(int(report.started_at.timestamp() * 1000))
    report.status = status
    report.finished_at = to_datetime(now)

    def work(c: Connection) -> None:
        c.execute(
            "UPDATE send_runs SET finished_at = ?, status = ?, total = ?, tokens_disabled = ?, "
            "by_outcome = ?, by_reason = ?, warnings = ?, error = ? WHERE id = ?",
            (
                now,
                status,
                report.total,
                report.tokens_disabled,
                database.json_param(report.by_outcome),
                database.json_param(report.by_reason),
                database.json_param(report.warnings),
                error,
                report.run_id,
            ),
        )
        c.execute("DELETE FROM send_run_applications WHERE run_id = ?", (report.run_id,))
        c.executemany(
            "INSERT INTO send_run_applications (run_id, application, day, sent, delivered, "
            "rejected, timed_out, failed, invalid_tokens, tokens_disabled, retryable, "
            "by_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    report.run_id,
                    t.application,
                    day,
                    t.sent,
                    t.delivered,
                    t.rejected,
                    t.timed_out,
                    t.failed,
                    t.invalid_tokens,
                    t.tokens_disabled,
                    t.retryable,
                    database.json_param(dict(t.by_reason)),
                )
                for t in report.applications.values()
            ],
        )

    database.write(work)


_RUN_COLUMNS = (
    "id, started_at, finished_at, status, actor, target_kind, target, message, total, "
    "tokens_disabled, by_outcome, by_reason, warnings, error"
)
_APP_COLUMNS = (
    "run_id, application, sent, delivered, rejected, timed_out, failed, invalid_tokens, "
    "tokens_disabled, retryable, by_reason"
)


def list_runs(database: Database, *, limit: int = 50, run_id: int | None = None) -> list[SendRun]:
    """The latest runs first (or the one ``run_id``)."""

    def work(c: Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        if run_id is not None:
            runs = c.query(f"SELECT {_RUN_COLUMNS} FROM send_runs WHERE id = ?", (run_id,))
        else:
            runs = c.query(
                f"SELECT {_RUN_COLUMNS} FROM send_runs ORDER BY id DESC LIMIT ?", (limit,)
            )
        if not runs:
            return runs, []
        condition, params = database.in_condition("run_id", [r[0] for r in runs])
        apps = c.query(
            f"SELECT {_APP_COLUMNS} FROM send_run_applications WHERE {condition} "
            "ORDER BY application",
            params,
        )
        return runs, apps

    runs, apps = database.read(work)
    per_run: dict[int, dict[str, dict[str, Any]]] = {}
    names = _APP_COLUMNS.split(", ")
    for row in apps:
        values = dict(zip(names, row, strict=True))
        values["by_reason"] = database.json_value(values["by_reason"])
        per_run.setdefault(row[0], {})[row[1]] = values
    load = database.json_value
    return [
        SendRun(
            id=r[0],
            started_at=to_datetime(r[1]),
            finished_at=optional_datetime(r[2]),
            status=r[3],
            actor=r[4],
            target_kind=r[5],
            target=load(r[6]),
            message=load(r[7]),
            total=r[8],
            tokens_disabled=r[9],
            by_outcome=load(r[10]),
            by_reason=load(r[11]),
            warnings=load(r[12]),
            error=r[13],
            applications=per_run.get(r[0], {}),
        )
        for r in runs
    ]


def get_run(database: Database, run_id: int) -> SendRun:
    runs = list_runs(database, run_id=run_id)
    if not runs:
        raise UnknownRunError(f"no send run {run_id}", field="run_id")
    return runs[0]


def daily_kpis(
    database: Database,
    *,
    application: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[DailyKPI]:
    """Per application and UTC day (``since`` and ``until`` included), oldest first."""
    conditions: list[str] = []
    params: list[Any] = []
    if application is not None:
        conditions.append("application = ?")
        params.append(application)
    for bound, op, name in ((since, ">=", "since"), (until, "<=", "until")):
        if bound is not None:
            if isinstance(bound, datetime):
                bound = bound.date()
            if not isinstance(bound, date):
                raise StoreInputError(f"{name} must be a date", field=name)
            conditions.append(f"day {op} ?")
            params.append(bound.isoformat())
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    sql = (
        "SELECT application, day, COUNT(*), SUM(sent), SUM(delivered), SUM(invalid_tokens), "
        f"SUM(tokens_disabled) FROM send_run_applications {where}"
        "GROUP BY application, day ORDER BY day, application"
    )
    rows = database.read(lambda c: c.query(sql, params))
    return [
        DailyKPI(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6])) for r in rows
    ]
