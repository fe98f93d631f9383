"""Campaign rows, lifecycle events and slot rows in the store's database (no sending here).

A transition is one transaction: the state changes and its event is written together, with
the actor; a transition the lifecycle does not allow raises :class:`CampaignStateError` and
writes nothing.
"""

from __future__ import annotations

from typing import Any

from ..store.backend import Connection, Database
from ..store.clock import optional_datetime, to_datetime
from ..store.message import PushMessage
from ..store.segments import SegmentFilter
from .errors import CampaignStateError, UnknownCampaignError
from .model import (
    TRANSITIONS,
    Campaign,
    CampaignEvent,
    FrequencyCap,
    QuietHours,
    Schedule,
    Slot,
    State,
    Treatment,
)

CAMPAIGN_COLUMNS = "id, name, state, spec, created_at, updated_at, scheduled_at"
SLOT_COLUMNS = (
    "id, campaign_id, occurrence, zone, due_at, state, reason, run_id, started_at, "
    "finished_at, counts"
)


def campaign_from_row(database: Database, row: tuple[Any, ...]) -> Campaign:
    spec = database.json_value(row[3])
    return Campaign(
        id=row[0],
        name=row[1],
        state=State(row[2]),
        segment=SegmentFilter.from_dict(spec["segment"]),
        treatments=tuple(
            Treatment(PushMessage.from_dict(t["message"]), t["percent"], t["name"])
            for t in spec["treatments"]
        ),
        holdout_percent=spec["holdout_percent"],
        schedule=Schedule.from_dict(spec["schedule"]),
        quiet_hours=QuietHours.from_dict(spec["quiet_hours"]) if spec["quiet_hours"] else None,
        rate_per_second=spec["rate_per_second"],
        frequency_cap=(
            FrequencyCap.from_dict(spec["frequency_cap"]) if spec["frequency_cap"] else None
        ),
        created_at=to_datetime(row[4]),
        updated_at=to_datetime(row[5]),
        scheduled_at=optional_datetime(row[6]),
    )


def slot_from_row(database: Database, row: tuple[Any, ...]) -> Slot:
    return Slot(
        id=row[0],
        campaign_id=row[1],
        occurrence=row[2],
        zone=row[3],
        due_at=to_datetime(row[4]),
        state=row[5],
        reason=row[6],
        run_id=row[7],
        started_at=optional_datetime(row[8]),
        finished_at=optional_datetime(row[9]),
        counts=database.json_value(row[10]),
    )


# Campaign ids are BIGINT on PostgreSQL (INTEGER on SQLite, also 64-bit).
MAX_CAMPAIGN_ID = 2**63 - 1


def find_campaign(
    c: Connection, database: Database, key: int | str, *, lock: bool = False
) -> Campaign:
    """The campaign with id ``key`` (an int or digits) or name ``key``."""
    suffix = f" {database.for_update}" if lock else ""
    # str.isdigit() is true for "²" and other non-ASCII digits that int() refuses, and an
    # id past BIGINT would overflow on PostgreSQL: neither can name a stored campaign.
    numeric = isinstance(key, int) or (key.isascii() and key.isdigit())
    if numeric and not 0 < int(key) <= MAX_CAMPAIGN_ID:
        raise UnknownCampaignError(f"no campaign {key!r}", field="campaign")
    if numeric:
        rows = c.query(
            f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?{suffix}", (int(key),)
        )
    else:
        rows = c.query(f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE name = ?{suffix}", (key,))
    if not rows:
        raise UnknownCampaignError(f"no campaign {key!r}", field="campaign")
    return campaign_from_row(database, rows[0])


def add_event(
    c: Connection,
    database: Database,
    campaign_id: int,
    *,
    now: int,
    kind: str,
    actor: str,
    from_state: State | None = None,
    to_state: State | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    c.execute(
        "INSERT INTO campaign_events (campaign_id, at, kind, from_state, to_state, actor, "
        "details) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            campaign_id,
            now,
            kind,
            from_state.value if from_state else None,
            to_state.value if to_state else None,
            actor,
            database.json_param(details or {}),
        ),
    )


def transition(
    c: Connection,
    database: Database,
    campaign: Campaign,
    to: State,
    *,
    now: int,
    actor: str,
    kind: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Move ``campaign`` (read with a lock in this transaction) to ``to`` and record it."""
    if to not in TRANSITIONS[campaign.state]:
        raise CampaignStateError(
            f"campaign {campaign.name!r} is {campaign.state.value}: it cannot become {to.value}",
            field="state",
        )
    scheduled = (
        ", scheduled_at = ?" if to is State.SCHEDULED and campaign.scheduled_at is None else ""
    )
    params: list[Any] = [to.value, now]
    if scheduled:
        params.append(now)
    c.execute(
        f"UPDATE campaigns SET state = ?, updated_at = ?{scheduled} WHERE id = ?",
        (*params, campaign.id),
    )
    add_event(
        c,
        database,
        campaign.id,
        now=now,
        kind=kind or to.value,
        actor=actor,
        from_state=campaign.state,
        to_state=to,
        details=details,
    )


def events_of(database: Database, campaign_id: int) -> list[CampaignEvent]:
    rows = database.read(
        lambda c: c.query(
            "SELECT id, campaign_id, at, kind, from_state, to_state, actor, details "
            "FROM campaign_events WHERE campaign_id = ? ORDER BY id",
            (campaign_id,),
        )
    )
    return [
        CampaignEvent(
            r[0], r[1], to_datetime(r[2]), r[3], r[4], r[5], r[6], database.json_value(r[7])
        )
        for r in rows
    ]


def slots_of(database: Database, campaign_id: int) -> list[Slot]:
    rows = database.read(
        lambda c: c.query(
            f"SELECT {SLOT_COLUMNS} FROM campaign_slots WHERE campaign_id = ? "
            "ORDER BY due_at, zone, id",
            (campaign_id,),
        )
    )
    return [slot_from_row(database, r) for r in rows]
