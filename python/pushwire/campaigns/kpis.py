"""Campaign KPIs per campaign, treatment, application and UTC day, from the send records and
the engagement events, named as Amazon Pinpoint named them where they mean the same:

================================ ==========================================================
``successful-deliveries``        notifications the provider accepted
``successful-delivery-rate``     successful deliveries / notifications sent
``push-open-rate``               endpoints that opened / successful deliveries
``unique-endpoints-reached``     distinct endpoints with a successful delivery
``holdout``                      endpoints set apart (never sent to), counted
``tokens-disabled``              endpoints the results disabled (dead tokens)
================================ ==========================================================

An open counts once per notification (slot and endpoint), and only for a notification that
was delivered, so the open rate stays a rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ..store.backend import Database
from ..store.errors import StoreInputError
from .model import HOLDOUT

_SENT = "('delivered', 'rejected', 'timeout', 'failed', 'in_doubt')"


def _count(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


@dataclass(frozen=True)
class CampaignKPI:
    """One campaign, treatment, application and UTC day."""

    campaign_id: int
    campaign: str
    #: The treatment's name, or ``holdout``.
    treatment: str
    application: str
    day: str
    sent: int
    successful_deliveries: int
    unique_endpoints_reached: int
    opened: int
    holdout: int
    capped: int
    in_doubt: int
    tokens_disabled: int
    #: Other engagement events (received, dismissed, custom), one per notification.
    events: dict[str, int] = field(default_factory=dict)

    @property
    def successful_delivery_rate(self) -> float:
        return self.successful_deliveries / self.sent if self.sent else 0.0

    @property
    def push_open_rate(self) -> float:
        return self.opened / self.successful_deliveries if self.successful_deliveries else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "campaign": self.campaign,
            "treatment": self.treatment,
            "application": self.application,
            "day": self.day,
            "sent": self.sent,
            "successful-deliveries": self.successful_deliveries,
            "successful-delivery-rate": round(self.successful_delivery_rate, 6),
            "push-open-rate": round(self.push_open_rate, 6),
            "opened": self.opened,
            "unique-endpoints-reached": self.unique_endpoints_reached,
            "holdout": self.holdout,
            "capped": self.capped,
            "in-doubt": self.in_doubt,
            "tokens-disabled": self.tokens_disabled,
            "events": dict(self.events),
        }


@dataclass(frozen=True)
class TreatmentResult:
    """One treatment of a campaign over its whole life (all days and applications)."""

    treatment: str
    percent: float
    sent: int
    successful_deliveries: int
    opened: int
    holdout: int

    @property
    def push_open_rate(self) -> float:
        return self.opened / self.successful_deliveries if self.successful_deliveries else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "treatment": self.treatment,
            "percent": self.percent,
            "sent": self.sent,
            "successful-deliveries": self.successful_deliveries,
            "opened": self.opened,
            "push-open-rate": round(self.push_open_rate, 6),
            "holdout": self.holdout,
        }


def campaign_kpis(
    database: Database,
    *,
    campaign_id: int | None = None,
    application: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[CampaignKPI]:
    """KPI rows, oldest day first."""
    where: list[str] = []
    params: list[Any] = []
    if campaign_id is not None:
        where.append("s.campaign_id = ?")
        params.append(campaign_id)
    if application is not None:
        where.append("a.name = ?")
        params.append(application)
    for bound, op, name in ((since, ">=", "since"), (until, "<=", "until")):
        if bound is None:
            continue
        if isinstance(bound, datetime):
            bound = bound.date()
        if not isinstance(bound, date):
            raise StoreInputError(f"{name} must be a date", field=name)
        where.append(f"s.day {op} ?")
        params.append(bound.isoformat())
    condition = f"WHERE {' AND '.join(where)} " if where else ""
    group = "s.campaign_id, c.name, s.treatment, a.name, s.day"
    joins = (
        "FROM campaign_sends s JOIN applications a ON a.id = s.application_id "
        "JOIN campaigns c ON c.id = s.campaign_id "
    )
    counts = ", ".join(
        [
            _count(f"s.state IN {_SENT}"),
            _count("s.state = 'delivered'"),
            "COUNT(DISTINCT CASE WHEN s.state = 'delivered' THEN s.endpoint_id END)",
            _count("s.state = 'delivered' AND o.endpoint_id IS NOT NULL"),
            _count("s.state = 'holdout'"),
            _count("s.state = 'capped'"),
            _count("s.state = 'in_doubt'"),
            _count("s.disabled"),
        ]
    )
    main = (
        f"SELECT {group}, {counts} "
        f"{joins}LEFT JOIN (SELECT DISTINCT slot_id, endpoint_id FROM engagement_events "
        "WHERE name = 'opened') o ON o.slot_id = s.slot_id AND o.endpoint_id = s.endpoint_id "
        f"{condition}GROUP BY {group} ORDER BY s.day, s.campaign_id, s.treatment, a.name"
    )
    others = (
        f"SELECT {group}, e.name, COUNT(*) {joins}"
        "JOIN (SELECT DISTINCT slot_id, endpoint_id, name FROM engagement_events "
        "WHERE name <> 'opened') e ON e.slot_id = s.slot_id AND e.endpoint_id = s.endpoint_id "
        f"{condition}GROUP BY {group}, e.name"
    )

    def work(c: Any) -> tuple[list[Any], list[Any], dict[int, list[str]]]:
        rows = c.query(main, params)
        extra = c.query(others, params)
        ids = sorted({r[0] for r in rows})
        names: dict[int, list[str]] = {}
        if ids:
            in_ids, id_params = database.in_condition("id", ids)
            for cid, spec in c.query(f"SELECT id, spec FROM campaigns WHERE {in_ids}", id_params):
                treatments = database.json_value(spec)["treatments"]
                names[cid] = [t["name"] for t in treatments]
        return rows, extra, names

    rows, extra, names = database.read(work)
    events: dict[tuple[Any, ...], dict[str, int]] = {}
    for r in extra:
        events.setdefault(tuple(r[:5]), {})[r[5]] = int(r[6])

    def treatment_name(cid: int, number: int) -> str:
        if number == HOLDOUT:
            return "holdout"
        listed = names.get(cid, [])
        return listed[number] if 0 <= number < len(listed) else str(number)

    return [
        CampaignKPI(
            campaign_id=r[0],
            campaign=r[1],
            treatment=treatment_name(r[0], int(r[2])),
            application=r[3],
            day=r[4],
            sent=int(r[5]),
            successful_deliveries=int(r[6]),
            unique_endpoints_reached=int(r[7]),
            opened=int(r[8]),
            holdout=int(r[9]),
            capped=int(r[10]),
            in_doubt=int(r[11]),
            tokens_disabled=int(r[12]),
            events=events.get(tuple(r[:5]), {}),
        )
        for r in rows
    ]


def compare_treatments(
    rows: list[CampaignKPI], percents: dict[str, float]
) -> list[TreatmentResult]:
    """Totals per treatment (and the holdout) of one campaign's KPI rows."""
    totals: dict[str, list[int]] = {}
    for row in rows:
        t = totals.setdefault(row.treatment, [0, 0, 0, 0])
        t[0] += row.sent
        t[1] += row.successful_deliveries
        t[2] += row.opened
        t[3] += row.holdout
    order = [*percents, "holdout"]
    return [
        TreatmentResult(name, percents.get(name, 0.0), *totals.get(name, [0, 0, 0, 0]))
        for name in order
        if name in totals or name in percents
    ]
