"""``pushwire campaigns ...`` and ``pushwire kpis``: campaigns and their KPIs from the command
line, over :mod:`pushwire.campaigns`. Every command takes ``--db`` (or ``$PUSHWIRE_DB``) and
``--json``; bad input prints one ``error: ...`` line and exits 2, writing nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from contextlib import AsyncExitStack
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from ..campaigns import Campaign, CampaignKPI, FrequencyCap, QuietHours, Schedule, Treatment
from ..store import Store, client_for
from .errors import CLIError, user_errors
from .options import BodyOption, DbOption, MessageFileOption, TitleOption, open_store, push_message

campaigns_app = typer.Typer(
    help="Campaigns: segments, treatments, schedules, quiet hours, caps; run them; KPIs.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ActorOption = Annotated[str | None, typer.Option(help="Who does it (recorded with the event).")]
KeyArgument = Annotated[str, typer.Argument(help="Campaign id or name.")]


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=None, default=str))


def _summary(campaign: Campaign) -> str:
    schedule = campaign.schedule.to_dict()
    when = schedule["frequency"] + (f" {schedule['start']}" if "start" in schedule else "")
    local = " (local time)" if campaign.schedule.local_time else ""
    treatments = ", ".join(f"{t.name} {t.percent:g}%" for t in campaign.treatments)
    return (
        f"{campaign.id}\t{campaign.name}\t{campaign.state.value}\t{when}{local}\t"
        f"{treatments}; holdout {campaign.holdout_percent:g}%"
    )


def _parse_quiet(text: str | None, mode: str) -> QuietHours | None:
    if text is None:
        return None
    start, sep, end = text.partition("-")
    if not sep:
        raise CLIError(f"--quiet-hours must be HH:MM-HH:MM (22:00-08:00), not {text!r}")
    return QuietHours(start, end, mode=mode)


def _parse_cap(text: str | None) -> FrequencyCap | None:
    if text is None:
        return None
    limit, sep, period = text.partition("/")
    if not sep or not limit.isdigit():
        raise CLIError(f"--frequency-cap must be N/day or N/week, not {text!r}")
    return FrequencyCap(int(limit), period)


@campaigns_app.command("create")
def create_command(
    name: Annotated[str, typer.Argument(help="A unique name.")],
    segment: Annotated[str, typer.Option("--filter", help="Segment: 'app=ios plan=pro'.")] = "",
    title: TitleOption = None,
    body: BodyOption = None,
    message_file: MessageFileOption = None,
    treatments_file: Annotated[
        Path | None,
        typer.Option(
            "--treatments",
            help='JSON list of treatments: [{"name": "A", "percent": 50, "message": {...}}].',
        ),
    ] = None,
    holdout: Annotated[float, typer.Option(help="Holdout percent (gets nothing).")] = 0.0,
    frequency: Annotated[
        str, typer.Option("--schedule", help="immediate, once, hourly, daily, weekly or cron.")
    ] = "immediate",
    start: Annotated[str | None, typer.Option(help="Wall-clock start: 2026-12-07T09:00.")] = None,
    end: Annotated[str | None, typer.Option(help="Wall-clock end.")] = None,
    cron: Annotated[str | None, typer.Option(help="Cron expression (--schedule cron).")] = None,
    timezone: Annotated[str, typer.Option(help="IANA zone of start/end.")] = "UTC",
    local_time: Annotated[
        bool, typer.Option("--local-time", help="In each endpoint's timezone attribute.")
    ] = False,
    quiet_hours: Annotated[str | None, typer.Option(help="HH:MM-HH:MM, no pushes.")] = None,
    quiet_mode: Annotated[str, typer.Option(help="hold or skip.")] = "hold",
    rate: Annotated[float | None, typer.Option(help="Send-rate cap, messages/s.")] = None,
    frequency_cap: Annotated[str | None, typer.Option(help="N/day or N/week.")] = None,
    schedule_now: Annotated[
        bool, typer.Option("--schedule-now", help="Schedule it at once (else: draft).")
    ] = False,
    actor: ActorOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Create a campaign (checked whole before anything is written)."""
    with user_errors(), open_store(db) as store:
        treatments = None
        message = None
        if treatments_file is not None:
            raw = json.loads(treatments_file.read_text())
            if not isinstance(raw, list):
                raise CLIError("--treatments must hold a JSON list")
            treatments = [Treatment.from_dict(t, i) for i, t in enumerate(raw)]
        else:
            message = push_message(
                message_file, title, body, None, None, None, None, False, None, None
            )
        campaign = store.campaigns.create(
            name,
            segment=segment,
            message=message,
            treatments=treatments,
            holdout_percent=holdout,
            schedule=Schedule(frequency, start, end, cron, timezone, local_time),
            quiet_hours=_parse_quiet(quiet_hours, quiet_mode),
            rate_per_second=rate,
            frequency_cap=_parse_cap(frequency_cap),
            actor=actor,
        )
        if schedule_now:
            campaign = store.campaigns.schedule(campaign.id, actor=actor)
    _echo_json(campaign.to_dict()) if as_json else typer.echo(_summary(campaign))


@campaigns_app.command("list")
def list_command(
    state: Annotated[str | None, typer.Option(help="Only campaigns in this state.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """The campaigns, oldest first."""
    with user_errors(), open_store(db) as store:
        campaigns = store.campaigns.list(state=state)
    if as_json:
        _echo_json([c.to_dict() for c in campaigns])
    else:
        for campaign in campaigns:
            typer.echo(_summary(campaign))


@campaigns_app.command("show")
def show_command(key: KeyArgument, as_json: JsonOption = False, db: DbOption = None) -> None:
    """A campaign with its slots, lifecycle events and treatment comparison."""
    with user_errors(), open_store(db) as store:
        campaigns = store.campaigns
        campaign = campaigns.get(key)
        slots = campaigns.slots(campaign.id)
        events = campaigns.events(campaign.id)
        comparison = campaigns.compare(campaign.id)
    if as_json:
        _echo_json(
            {
                **campaign.to_dict(),
                "slots": [s.to_dict() for s in slots],
                "events": [e.to_dict() for e in events],
                "treatments_compared": [t.to_dict() for t in comparison],
            }
        )
        return
    typer.echo(_summary(campaign))
    for slot in slots:
        typer.echo(
            f"  slot {slot.id} {slot.occurrence} {slot.zone}: {slot.state}"
            f"{' (' + slot.reason + ')' if slot.reason else ''} {slot.counts or ''}"
        )
    for t in comparison:
        typer.echo(
            f"  {t.treatment}: sent {t.sent}, delivered {t.successful_deliveries}, opened "
            f"{t.opened}, push-open-rate {t.push_open_rate:.2%}, holdout {t.holdout}"
        )
    for event in events:
        typer.echo(f"  {event.at.isoformat()} {event.kind} by {event.actor}")


def _transition_command(verb: str, doc: str) -> None:
    def command(
        key: KeyArgument,
        actor: ActorOption = None,
        as_json: JsonOption = False,
        db: DbOption = None,
    ) -> None:
        with user_errors(), open_store(db) as store:
            campaign = getattr(store.campaigns, verb)(key, actor=actor)
        _echo_json(campaign.to_dict()) if as_json else typer.echo(_summary(campaign))

    command.__doc__ = doc
    campaigns_app.command(verb)(command)


_transition_command("schedule", "Draft -> scheduled: its slots go out from now on.")
_transition_command("pause", "Stop starting slots (a slot being sent stops after its page).")
_transition_command("resume", "Paused -> scheduled.")
_transition_command("cancel", "Final: pending slots are cancelled.")


@campaigns_app.command("run")
def run_command(
    once: Annotated[bool, typer.Option("--once", help="Run what is due now, then exit.")] = False,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between ticks.")] = 1.0,
    owner: Annotated[str | None, typer.Option(help="Scheduler name (default host-pid).")] = None,
    lease: Annotated[
        float, typer.Option(min=0.5, help="Seconds a slot (and the fleet lead) is held unrenewed.")
    ] = 30.0,
    page_size: Annotated[int, typer.Option(min=1, help="Endpoints read per query.")] = 2000,
    key_prefix: Annotated[
        str, typer.Option(help="Prefix of the leader lease key (with --redis).")
    ] = "pushwire",
    redis: Annotated[
        str | None, typer.Option(help="Dispatch slots to the worker fleet on this Redis.")
    ] = None,
    stream: Annotated[str, typer.Option(help="Campaign lane (with --redis).")] = (
        "pushwire:campaigns"
    ),
    apns_url: Annotated[str | None, typer.Option(help="APNs server (tests, proxies).")] = None,
    fcm_url: Annotated[str | None, typer.Option(help="FCM server (tests, proxies).")] = None,
    token_uri: Annotated[str | None, typer.Option(help="OAuth2 token URI for FCM.")] = None,
    ca_file: Annotated[Path | None, typer.Option(help="Extra CA to trust.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Run the scheduler: send due slots in this process (clients from each application's
    credentials_ref), or with --redis dispatch them to `pushwire worker --stream
    pushwire:campaigns`. Until SIGTERM/SIGINT, or one tick with --once."""
    with user_errors(), open_store(db) as store:

        async def main() -> list[Any]:
            reports: list[Any] = []
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            async with AsyncExitStack() as stack:
                scheduler = await _scheduler(
                    store,
                    stack,
                    owner,
                    redis,
                    stream,
                    apns_url,
                    fcm_url,
                    token_uri,
                    ca_file,
                    lease=lease,
                    page_size=page_size,
                    key_prefix=key_prefix,
                )
                while True:
                    for report in await scheduler.tick():
                        reports.append(report)
                        if not as_json:
                            typer.echo(
                                f"slot {report.slot_id} ({report.zone} {report.occurrence}): "
                                f"{report.state}, sent {report.sent}, holdout {report.holdout}, "
                                f"capped {report.capped}, in doubt {report.in_doubt}"
                            )
                    if once or stop.is_set():
                        return reports
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), interval)

        reports = asyncio.run(main())
    if as_json:
        _echo_json(
            [
                {"slot": r.slot_id, "campaign": r.campaign_id, "zone": r.zone, "state": r.state,
                 "occurrence": r.occurrence, **r.counts()}
                for r in reports
            ]
        )  # fmt: skip


async def _scheduler(
    store: Store,
    stack: AsyncExitStack,
    owner: str | None,
    redis: str | None,
    stream: str,
    apns_url: str | None,
    fcm_url: str | None,
    token_uri: str | None,
    ca_file: Path | None,
    *,
    lease: float,
    page_size: int,
    key_prefix: str,
) -> Any:
    if redis is not None:
        from ..campaigns.fleet import FleetScheduler

        fleet = FleetScheduler(
            store,
            redis_url=redis,
            stream=stream,
            key_prefix=key_prefix,
            owner=owner,
            lease_seconds=lease,
            page_size=page_size,
        )
        stack.push_async_callback(fleet.aclose)
        return fleet
    clients: dict[str, Any] = {}
    for app in store.applications():
        if not app.credentials_ref:
            continue
        extra: dict[str, Any] = {}
        base_url = apns_url if app.provider.value == "apns" else fcm_url
        if base_url:
            extra["base_url"] = base_url
        if token_uri and app.provider.value == "fcm":
            extra["token_uri"] = token_uri
        if ca_file is not None:
            extra["ca_file"] = ca_file
        clients[app.name] = await stack.enter_async_context(client_for(app, **extra))
    return store.campaigns.scheduler(
        clients=clients, owner=owner, lease_seconds=lease, page_size=page_size
    )


@campaigns_app.command("ingest")
def ingest_command(
    path: Annotated[Path, typer.Argument(help="JSON Lines of engagement events.")],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Record engagement events (one JSON object a line: name, engagement, application and
    token or endpoint_id, optional at) in one transaction."""
    with user_errors(), open_store(db) as store:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        count = store.campaigns.record_engagement(rows)
    _echo_json({"recorded": count}) if as_json else typer.echo(f"{count} events recorded")


def kpis_command(
    campaign: Annotated[str | None, typer.Option(help="Campaign id or name.")] = None,
    application: Annotated[str | None, typer.Option(help="One application.")] = None,
    since: Annotated[str | None, typer.Option(help="First UTC day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Last UTC day, YYYY-MM-DD.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Campaign KPIs per campaign, treatment, application and UTC day (Pinpoint's names)."""
    with user_errors(), open_store(db) as store:
        try:
            first = date.fromisoformat(since) if since else None
            last = date.fromisoformat(until) if until else None
        except ValueError as e:
            raise CLIError(f"--since/--until must be YYYY-MM-DD: {e}") from None
        rows: list[CampaignKPI] = store.campaigns.kpis(
            campaign, application=application, since=first, until=last
        )
    if as_json:
        _echo_json([r.to_dict() for r in rows])
        return
    typer.echo(
        "day\tcampaign\ttreatment\tapplication\tsent\tsuccessful-deliveries\t"
        "successful-delivery-rate\tpush-open-rate\tunique-endpoints-reached\tholdout\t"
        "tokens-disabled"
    )
    for r in rows:
        typer.echo(
            f"{r.day}\t{r.campaign}\t{r.treatment}\t{r.application}\t{r.sent}\t"
            f"{r.successful_deliveries}\t{r.successful_delivery_rate:.4f}\t"
            f"{r.push_open_rate:.4f}\t{r.unique_endpoints_reached}\t{r.holdout}\t"
            f"{r.tokens_disabled}"
        )


campaigns_app.command("kpis")(kpis_command)
