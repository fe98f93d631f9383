"""``pushwire live-activities``: broadcast channels, push-to-start on a segment, broadcasts.

The group's options name the app (``--bundle-id``), the APNs credentials and the servers; the
store (``--db``) keeps channels per event and the push-to-start tokens a segment is started
with (:mod:`pushwire.store.live_activities`).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from .._broadcast import BroadcastClient, BroadcastMessage, channel_ids
from .._results import Result
from ..payload import Alert, live_activity_end, live_activity_start, live_activity_update
from ..store import SegmentFilter
from ..store.live_activities import LiveActivities
from .credentials import CredentialOptions, apns_credentials
from .errors import EXIT_OK, EXIT_SOME_FAILED, CLIError, user_errors
from .options import (
    P8,
    P12,
    BaseUrl,
    CaFile,
    Cert,
    DbOption,
    Key,
    KeyId,
    Password,
    TeamId,
    credential_options,
    open_store,
)

live_activities_app = typer.Typer(
    no_args_is_help=True,
    help="Live Activities: broadcast channels, push-to-start on a segment, broadcasts.",
)
channels_app = typer.Typer(no_args_is_help=True, help="Create, list and delete channels.")
live_activities_app.add_typer(channels_app, name="channels")


@dataclass
class _Connection:
    """The group's options, checked when a command uses them (so `--help` needs none)."""

    bundle_id_option: str | None
    credential_options: CredentialOptions
    environment: str
    base_url: str | None
    management_url: str | None
    ca_file: Path | None

    @property
    def bundle_id(self) -> str:
        if not self.bundle_id_option:
            raise CLIError("give --bundle-id (the app's bundle id) or set PUSHWIRE_BUNDLE_ID")
        return self.bundle_id_option

    def client(self) -> BroadcastClient:
        bundle_id = self.bundle_id  # named first: it is the first thing a user must give
        return BroadcastClient(
            apns_credentials(self.credential_options),
            bundle_id=bundle_id,
            environment=self.environment,
            base_url=self.base_url,
            management_url=self.management_url,
            ca_file=self.ca_file,
        )


@live_activities_app.callback()
def _group(
    ctx: typer.Context,
    bundle_id: Annotated[
        str | None,
        typer.Option(envvar="PUSHWIRE_BUNDLE_ID", help="The app's bundle id (no suffix)."),
    ] = None,
    p8: P8 = None,
    key_id: KeyId = None,
    team_id: TeamId = None,
    cert: Cert = None,
    key: Key = None,
    p12: P12 = None,
    password: Password = None,
    environment: Annotated[
        str, typer.Option(help="production or sandbox (picks both hosts).")
    ] = "production",
    base_url: BaseUrl = None,
    management_url: Annotated[
        str | None,
        typer.Option(
            envvar="PUSHWIRE_MANAGEMENT_URL",
            help="Channel-management server (default: Apple's, ports 2196/2195; a mock's url).",
        ),
    ] = None,
    ca_file: CaFile = None,
) -> None:
    opts = credential_options(p8, key_id, team_id, cert, key, p12, password, None)
    ctx.obj = _Connection(bundle_id, opts, environment, base_url, management_url, ca_file)


def _now() -> int:
    return int(time.time())


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise CLIError(f"{option} is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise CLIError(f"{option} must be a JSON object")
    return value


def _outcome(result: Result, what: str) -> int:
    if result.delivered:
        return EXIT_OK
    typer.echo(
        f"{what} failed: {result.status} {result.reason or result.error or ''}".rstrip(), err=True
    )
    return EXIT_SOME_FAILED


async def _call(conn: _Connection, work: Any) -> Any:
    async with conn.client() as client:
        return await work(client)


# -- channels ---------------------------------------------------------------------------------


@channels_app.command("create")
def create_channel(
    ctx: typer.Context,
    storage_policy: Annotated[
        int, typer.Option(min=0, max=1, help="0: nothing stored; 1: latest kept up to 8 h.")
    ] = 0,
    event: Annotated[str | None, typer.Option(help="Record the channel for this event.")] = None,
    app: Annotated[str | None, typer.Option(help="Store application of the event.")] = None,
    db: DbOption = None,
) -> None:
    """Create a channel at APNs; print its id (and record it in --db for --event)."""
    conn: _Connection = ctx.obj
    with user_errors():
        if (event is None) != (db is None) or (db is not None and app is None):
            raise CLIError("--event, --app and --db go together (to record the channel)")
        result: Result = asyncio.run(
            _call(conn, lambda c: c.create_channel(1 if storage_policy else 0))
        )
        code = _outcome(result, "create")
        if code == EXIT_OK and result.channel_id:
            if db is not None and event is not None and app is not None:
                with open_store(db) as store:
                    LiveActivities(store).add_channel(app, event, result.channel_id, storage_policy)
            typer.echo(result.channel_id)
    raise typer.Exit(code)


@channels_app.command("list")
def list_channels(ctx: typer.Context) -> None:
    """Print the app's channel ids at APNs, one a line."""
    with user_errors():
        result: Result = asyncio.run(_call(ctx.obj, lambda c: c.list_channels()))
        code = _outcome(result, "list")
        for channel in channel_ids(result):
            typer.echo(channel)
    raise typer.Exit(code)


@channels_app.command("delete")
def delete_channel(
    ctx: typer.Context,
    channel: Annotated[str, typer.Argument(help="Channel id as APNs returned it.")],
    db: DbOption = None,
) -> None:
    """Delete a channel at APNs (and mark it deleted in --db)."""
    with user_errors():
        result: Result = asyncio.run(_call(ctx.obj, lambda c: c.delete_channel(channel)))
        code = _outcome(result, "delete")
        if code == EXIT_OK and db is not None:
            with open_store(db) as store:
                LiveActivities(store).channel_deleted(channel)
    raise typer.Exit(code)


# -- start, broadcast, end ----------------------------------------------------------------------

ChannelOption = Annotated[str, typer.Option("--channel", help="Channel id.")]
ContentState = Annotated[str, typer.Option(help="content-state, a JSON object.")]


@live_activities_app.command("start")
def start(
    ctx: typer.Context,
    channel: ChannelOption,
    app: Annotated[str, typer.Option(help="Store application of the endpoints.")],
    activity_type: Annotated[str, typer.Option(help="attributes-type (the Swift type).")],
    attributes: Annotated[str, typer.Option(help="attributes, a JSON object.")],
    content_state: ContentState,
    title: Annotated[str, typer.Option(help="Alert title shown when it starts.")],
    body: Annotated[str | None, typer.Option(help="Alert text.")] = None,
    segment: Annotated[
        str, typer.Option(help="Segment of the store: 'plan=pro', JSON, or 'all'.")
    ] = "all",
    priority: Annotated[int, typer.Option(help="5 (no budget) or 10.")] = 10,
    db: DbOption = None,
) -> None:
    """Push-to-start the activity on every endpoint of the segment that has a push-to-start
    token for --activity-type, subscribing each to --channel (iOS 18)."""
    conn: _Connection = ctx.obj
    with user_errors():
        with open_store(db) as store:
            selected = SegmentFilter.parse(segment)
            devices = [e.token for e in store.endpoints(selected, enabled=True)]
            tokens = list(
                LiveActivities(store).push_to_start_tokens(app, activity_type, devices).values()
            )
        message = live_activity_start(
            conn.bundle_id,
            attributes_type=activity_type,
            attributes=_json_object(attributes, "--attributes"),
            content_state=_json_object(content_state, "--content-state"),
            timestamp=_now(),
            alert=Alert(title=title, body=body),
            input_push_channel=channel,
            priority=priority,
        )
        results = asyncio.run(_call(conn, lambda c: c.send_to_tokens(message, tokens)))
        with open_store(db) as store:
            disabled = LiveActivities(store).apply_push_to_start_results(app, results)
        delivered = sum(r.delivered for r in results)
        typer.echo(f"started={delivered} failed={len(results) - delivered} disabled={disabled}")
    raise typer.Exit(EXIT_OK if delivered == len(results) else EXIT_SOME_FAILED)


@live_activities_app.command("broadcast")
def broadcast(
    ctx: typer.Context,
    channel: ChannelOption,
    content_state: ContentState,
    priority: Annotated[int, typer.Option(help="5 (no budget) or 10.")] = 10,
    expiration: Annotated[
        int, typer.Option(min=0, help="0 on storage-policy-0 channels; else a UNIX time.")
    ] = 0,
    db: DbOption = None,
) -> None:
    """Send one update to every activity on the channel: one request. With --db, the
    channel's storage policy is checked before sending (policy 0 needs --expiration 0)."""
    conn: _Connection = ctx.obj
    with user_errors():
        policy = None
        if db is not None:
            with open_store(db) as store:
                policy = 1 if LiveActivities(store).channel(channel).storage_policy else 0
        update = live_activity_update(
            conn.bundle_id,
            content_state=_json_object(content_state, "--content-state"),
            timestamp=_now(),
            priority=priority,
            expiration=expiration,
        )
        result: Result = asyncio.run(
            _call(
                conn,
                lambda c: c.broadcast(
                    channel, BroadcastMessage.from_message(update), storage_policy=policy
                ),
            )
        )
        code = _outcome(result, "broadcast")
        if code == EXIT_OK:
            typer.echo(f"request_id={result.request_id} unique_id={result.unique_id}")
    raise typer.Exit(code)


@live_activities_app.command("end")
def end(
    ctx: typer.Context,
    channel: ChannelOption,
    content_state: ContentState,
    dismissal_date: Annotated[
        int | None, typer.Option(help="UNIX time to remove it (default: up to 4 h).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Broadcast the end event (and mark the channel ended in --db)."""
    conn: _Connection = ctx.obj
    with user_errors():
        final = live_activity_end(
            conn.bundle_id,
            content_state=_json_object(content_state, "--content-state"),
            timestamp=_now(),
            dismissal_date=dismissal_date,
        )
        result: Result = asyncio.run(
            _call(conn, lambda c: c.broadcast(channel, BroadcastMessage.from_message(final)))
        )
        code = _outcome(result, "end")
        if code == EXIT_OK and db is not None:
            with open_store(db) as store:
                LiveActivities(store).end_channel(channel)
    raise typer.Exit(code)
