"""Planning: turning a campaign's schedule into slot rows, once.

A slot is one occurrence in one zone: every endpoint zone of the segment when the campaign
runs in local time or has quiet hours (each zone's quiet hours are its own), else the
campaign's zone only. Planning inserts the due slots with ``INSERT ... ON
CONFLICT DO NOTHING`` on ``UNIQUE (campaign_id, occurrence, zone)``: any number of schedulers
may plan at once, each occurrence gets exactly one row. Occurrences that fell due while no
scheduler ran are recorded as ``skipped`` (``missed``) except the latest, which still goes
out; one that falls in quiet hours is held until they end or skipped, as the campaign says.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..store.backend import Connection, Database
from ..store.segments import endpoint_conditions, selected_applications
from .model import ACTIVE, TIMEZONE_ATTRIBUTE, Campaign, valid_zone
from .schedule import from_ms, occurrences, quiet_release, to_ms


def timezone_expression(database: Database) -> str:
    """SQL for an endpoint's time-zone attribute as text (NULL when absent)."""
    if database.dialect == "sqlite":
        return f"json_extract(endpoints.attributes, '$.\"{TIMEZONE_ATTRIBUTE}\"')"
    return f"(endpoints.attributes ->> '{TIMEZONE_ATTRIBUTE}')"


def segment_zones(c: Connection, database: Database, campaign: Campaign) -> list[str]:
    """The zones a campaign in local time or with quiet hours has slots in: the valid time
    zones of its enabled endpoints, and the campaign's own (for endpoints without one)."""
    zones = {campaign.schedule.timezone}
    apps = selected_applications(c, campaign.segment)
    if not apps:
        return sorted(zones)
    conditions, params = endpoint_conditions(database, campaign.segment)
    in_apps, app_ids = database.in_condition("endpoints.application_id", [a.id for a in apps])
    rows = c.query(
        f"SELECT DISTINCT {timezone_expression(database)} FROM endpoints "
        f"WHERE {in_apps} AND endpoints.enabled{conditions}",
        (*app_ids, *params),
    )
    for (value,) in rows:
        if isinstance(value, str) and valid_zone(value) is not None:
            zones.add(value)
    return sorted(zones)


def plan(database: Database, campaign: Campaign, now: int, zones: list[str] | None = None) -> int:
    """Insert the slots of ``campaign`` that are due at ``now``; how many were new.
    ``zones``: its zones when the caller knows them (:func:`segment_zones`, cached)."""
    if campaign.state not in ACTIVE or campaign.scheduled_at is None:
        return 0
    schedule = campaign.schedule
    scheduled_ms = to_ms(campaign.scheduled_at)

    def read(c: Connection) -> tuple[list[str], dict[str, str]]:
        if zones is not None:
            names = zones
        elif campaign.zoned:
            names = segment_zones(c, database, campaign)
        else:
            names = [schedule.timezone]
        last = dict(
            c.query(
                "SELECT zone, MAX(occurrence) FROM campaign_slots WHERE campaign_id = ? "
                "GROUP BY zone",
                (campaign.id,),
            )
        )
        return names, last

    names, last = database.read(read)
    rows: list[tuple[Any, ...]] = []
    for name in names:
        tz = valid_zone(name)
        assert tz is not None
        # Local time: occurrences are wall-clock times in each zone. Otherwise they are the
        # campaign zone's, the same instant for every zone (zones only for quiet hours).
        walk = tz if schedule.local_time else schedule.zone
        after = from_ms(scheduled_ms - 1, walk)
        if name in last:
            after = max(after, datetime.fromisoformat(last[name]).replace(tzinfo=walk))
        due = []
        for moment in occurrences(schedule, walk, after=after, scheduled_at_ms=scheduled_ms):
            if to_ms(moment) > now:
                break
            due.append(moment)
        for i, moment in enumerate(due):
            state, reason, due_at = "pending", None, to_ms(moment)
            if i < len(due) - 1:
                state, reason = "skipped", "missed"
            elif campaign.quiet_hours is not None:
                release = quiet_release(campaign.quiet_hours, moment.astimezone(tz))
                if release is not None and campaign.quiet_hours.mode == "skip":
                    state, reason = "skipped", "quiet_hours"
                elif release is not None:
                    due_at, reason = to_ms(release), "held_quiet_hours"
            occurrence = moment.replace(tzinfo=None).isoformat(timespec="minutes")
            rows.append((campaign.id, occurrence, name, due_at, state, reason))
    if not rows:
        return 0

    def insert(c: Connection) -> int:
        inserted = database.insert_many(
            c,
            "campaign_slots",
            [
                ("campaign_id", "bigint"),
                ("occurrence", "text"),
                ("zone", "text"),
                ("due_at", "bigint"),
                ("state", "text"),
                ("reason", "text"),
                ("attempts", "bigint"),
                ("counts", "jsonb"),
            ],
            [(*row, 0, {}) for row in rows],
            suffix="ON CONFLICT (campaign_id, occurrence, zone) DO NOTHING RETURNING id",
        )
        return len(inserted)

    return database.write(insert)
