"""``pushwire endpoints ...`` (the endpoint store) and the send-to-segment command.

``endpoints_app`` is a typer sub-app: ``app.add_typer(endpoints_app, name="endpoints")``.
``send_to_segment_command`` is a plain command function: ``pushwire send --to-segment`` calls
it (through :func:`tokens_or_segment`), and it is also registered as the older spelling
``pushwire send-segment``. Every command takes ``--db`` (or ``$PUSHWIRE_DB``):
``sqlite:///path/to/file.db`` (or a plain path) or ``postgresql://user:pw@host/db``.

User mistakes (a bad file, an unknown application, an unreachable database) print one
``error: ...`` line on stderr and exit with code 2; nothing is half-imported: a file is
checked whole before its first row is written.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ._errors import PushwireError
from .store import (
    Endpoint,
    EventKind,
    PushMessage,
    Registration,
    SegmentFilter,
    SendReport,
    Store,
    StoreInputError,
    client_for,
)
from .store.backend import DATABASE_URL_VARIABLE, sqlite_path
from .store.sending import Clients

EXIT_USAGE = 2
EXIT_NEEDS_ATTENTION = 1
#: Rows checked, then written, per transaction during an import.
IMPORT_BATCH = 5000

endpoints_app = typer.Typer(
    help="The endpoint store: applications, device tokens, users and segments.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar=DATABASE_URL_VARIABLE,
        help="Store URL: sqlite:///path.db (or a path) or postgresql://user:pw@host/db "
        f"(env {DATABASE_URL_VARIABLE}).",
        show_default=False,
    ),
]
SegmentOption = Annotated[
    str | None,
    typer.Option(
        "--filter",
        help="Segment: 'app=ios plan=pro,team user=u1' (attribute=value terms) or JSON.",
    ),
]
StatusOption = Annotated[str, typer.Option(help="enabled, disabled or all.", show_default=True)]


class _UsageError(Exception):
    """A mistake in the command line or an input file."""


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except (_UsageError, PushwireError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        typer.echo(f"error: {where}{e.strerror or e}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def _open(db: str | None) -> Store:
    if not db:
        raise _UsageError(f"give --db URL or set {DATABASE_URL_VARIABLE}")
    return Store.open(db)


def _open_existing(db: str | None) -> Store:
    """The store to send from: a SQLite file that does not exist is a mistake (opening it
    would create an empty store and send nothing), as is a store without applications."""
    if not db:
        raise _UsageError(f"give --db URL or set {DATABASE_URL_VARIABLE}")
    path = sqlite_path(db)
    if path is not None and path != ":memory:" and not Path(path).exists():
        raise _UsageError(
            f"no store at {path}: create it with `pushwire endpoints add-app` and "
            "`pushwire endpoints import`"
        )
    store = Store.open(db)
    if not store.applications():
        display = store.database.display_url
        store.close()
        raise _UsageError(
            f"the store {display} has no applications: add one with `pushwire endpoints add-app`"
        )
    return store


def _enabled_filter(status: str) -> bool | None:
    choices = {"enabled": True, "disabled": False, "all": None}
    if status not in choices:
        raise _UsageError(f"--status must be enabled, disabled or all, not {status!r}")
    return choices[status]


# -- schema and applications ------------------------------------------------------------------


@endpoints_app.command("migrate")
def migrate_command(db: DbOption = None) -> None:
    """Create or upgrade the store's tables (also done on first use)."""
    with _user_errors(), _open(db) as store:
        # Opening migrates; a second call reports what is left (nothing).
        store.migrate()
        typer.echo(f"schema up to date: {store.database.display_url}")


@endpoints_app.command("add-app")
def add_app_command(
    name: Annotated[str, typer.Argument(help="Application name, e.g. ios-prod.")],
    provider: Annotated[str, typer.Option(help="apns or fcm.")],
    topic: Annotated[str | None, typer.Option(help="APNs: the bundle id.")] = None,
    environment: Annotated[
        str | None, typer.Option(help="APNs: production (default) or sandbox.")
    ] = None,
    project_id: Annotated[str | None, typer.Option(help="FCM: the Firebase project.")] = None,
    credentials_ref: Annotated[
        str | None,
        typer.Option(
            help="Where the credentials are: p8:PATH?key_id=..&team_id=.., env:PREFIX, "
            "p12:PATH?password_env=VAR, cert:CERT?key=KEY, service-account:PATH."
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Add an application, or change its settings."""
    with _user_errors(), _open(db) as store:
        app = store.put_application(
            name,
            provider=provider,
            topic=topic,
            environment=environment,
            project_id=project_id,
            credentials_ref=credentials_ref,
        )
        typer.echo(f"application {app.name} ({app.provider.value}) saved")


@endpoints_app.command("apps")
def apps_command(db: DbOption = None) -> None:
    """List the applications."""
    with _user_errors(), _open(db) as store:
        table = Table("name", "provider", "environment", "topic / project", "credentials")
        for app in store.applications():
            table.add_row(
                app.name,
                app.provider.value,
                app.environment or "",
                app.topic or app.project_id or "",
                app.credentials_ref or "",
            )
        Console().print(table)


# -- import -----------------------------------------------------------------------------------

_COLUMNS = {"app", "application", "token", "user_id", "user", "data", "attributes", "registered_at"}
#: Columns an export writes that an import reads past (the state is the store's to decide).
_INFORMATIVE = {
    "enabled",
    "disabled_reason",
    "disabled_at",
    "created_at",
    "updated_at",
    "invalid_since",
    "last_410_at",
    "provider",
    "id",
}


def _moment(value: Any, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)  # epoch milliseconds
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    raise _UsageError(f"{where}: registered_at {value!r} is not ISO 8601 or epoch milliseconds")


def _json_object(value: Any, column: str, where: str) -> Any:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise _UsageError(f"{where}: {column} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise _UsageError(f"{where}: {column} must be a JSON object")
    return value


def _registration(row: dict[str, Any], default_app: str | None, where: str) -> Registration:
    attributes = _json_object(row.get("attributes"), "attributes", where)
    for key in list(row):
        if key.startswith("attr."):
            value = row.pop(key)
            if value not in (None, ""):
                attributes = attributes or {}
                attributes[key[5:]] = value.split("|") if "|" in value else value
    unknown = set(row) - _COLUMNS - _INFORMATIVE
    if unknown:
        known = ", ".join(sorted(_COLUMNS)) + ", attr.NAME"
        raise _UsageError(f"{where}: unknown column(s) {', '.join(sorted(unknown))} ({known})")
    app = row.get("app") or row.get("application") or default_app
    if not app:
        raise _UsageError(f"{where}: no application (an app column, or --app)")
    return Registration(
        application=app,
        token=row.get("token") or "",
        user_id=row.get("user_id") or row.get("user") or None,
        data=_json_object(row.get("data"), "data", where),
        attributes=attributes,
        registered_at=_moment(row.get("registered_at"), where),
    )


def _rows(path: Path, fmt: str, default_app: str | None) -> Iterator[tuple[str, Registration]]:
    """(where, registration) for each row of a CSV or JSONL file."""
    with path.open(encoding="utf-8", newline="") as f:
        if fmt == "csv":
            reader = csv.DictReader(f)
            for row in reader:
                where = f"{path} line {reader.line_num}"
                if None in row:
                    raise _UsageError(f"{where}: more cells than columns")
                yield where, _registration(dict(row), default_app, where)
            return
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                row = json.loads(line)
            except ValueError as e:
                raise _UsageError(f"{where}: not valid JSON ({e})") from None
            if not isinstance(row, dict):
                raise _UsageError(f"{where}: each line must be a JSON object")
            yield where, _registration(row, default_app, where)


def _batches(
    path: Path, fmt: str, default_app: str | None
) -> Iterator[tuple[list[str], list[Registration]]]:
    wheres: list[str] = []
    rows: list[Registration] = []
    for where, row in _rows(path, fmt, default_app):
        wheres.append(where)
        rows.append(row)
        if len(rows) == IMPORT_BATCH:
            yield wheres, rows
            wheres, rows = [], []
    if rows:
        yield wheres, rows


def _format_of(path: Path, fmt: str) -> str:
    if fmt != "auto":
        if fmt not in ("csv", "jsonl"):
            raise _UsageError(f"--format must be auto, csv or jsonl, not {fmt!r}")
        return fmt
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


@contextmanager
def _readable_twice(file: str) -> Iterator[Path]:
    """The input as a file that can be read twice (check, then import): stdin is copied."""
    if file != "-":
        yield Path(file)
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "stdin"
        path.write_text(sys.stdin.read(), encoding="utf-8")
        yield path


@endpoints_app.command("import")
def import_command(
    file: Annotated[str, typer.Argument(help="CSV or JSONL file of registrations ('-' = stdin).")],
    fmt: Annotated[
        str, typer.Option("--format", help="auto (by extension: .csv, else JSONL), csv, jsonl.")
    ] = "auto",
    app: Annotated[
        str | None, typer.Option("--app", help="Application of rows that name none.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Register endpoints from a file: columns app, token, user_id, data (JSON), attributes
    (JSON), registered_at (ISO 8601), and attr.NAME (a value, or values separated by |).

    The whole file is checked first: a bad row (named by its line) imports nothing. Rows are
    then written in transactions of 5,000; importing again is harmless (registrations are
    idempotent).
    """
    with _user_errors(), _open(db) as store, _readable_twice(file) as path:
        fmt = _format_of(path, fmt)
        checked = 0
        for wheres, rows in _batches(path, fmt, app):
            try:
                checked += store.check_registrations(rows)
            except StoreInputError as e:
                if e.index is None:
                    raise
                raise _UsageError(f"{wheres[e.index]}: {e}") from None
        totals = {"created": 0, "updated": 0, "re_enabled": 0, "unchanged": 0}
        for _, rows in _batches(path, fmt, app):
            counts = store.register_many(rows, cause="import")
            for name in totals:
                totals[name] += getattr(counts, name)
        summary = ", ".join(f"{n} {name.replace('_', '-')}" for name, n in totals.items())
        typer.echo(f"imported {checked} rows: {summary}")


# -- list, export, disable --------------------------------------------------------------------


def _segment(segment: str | None, apps: list[str] | None, users: list[str] | None) -> SegmentFilter:
    base = SegmentFilter.parse(segment or "")
    if not apps and not users:
        return base
    return SegmentFilter(
        applications=[*base.applications, *(apps or [])],
        providers=base.providers,
        user_ids=[*base.user_ids, *(users or [])],
        attributes=base.attributes,
    )


def _record(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint as one JSON object (what export writes and import reads back)."""
    return {
        "app": endpoint.application,
        "token": endpoint.token,
        "user_id": endpoint.user_id,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "data": dict(endpoint.data),
        "attributes": dict(endpoint.attributes),
        "registered_at": endpoint.last_registered_at.isoformat(),
    }


@endpoints_app.command("list")
def list_command(
    app: Annotated[
        list[str] | None, typer.Option("--app", help="Only this app (repeatable).")
    ] = None,
    user: Annotated[
        list[str] | None, typer.Option("--user", help="Only this user (repeatable).")
    ] = None,
    segment: SegmentOption = None,
    status: StatusOption = "all",
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    db: DbOption = None,
) -> None:
    """List endpoints (in the order they were created)."""
    with _user_errors(), _open(db) as store:
        selected = store.endpoints(_segment(segment, app, user), enabled=_enabled_filter(status))
        table = Table("app", "token", "user", "enabled", "disabled for", "registered", "attributes")
        shown = 0
        for endpoint in selected:
            if limit is not None and shown >= limit:
                break
            shown += 1
            if as_json:
                typer.echo(json.dumps(_record(endpoint)))
                continue
            table.add_row(
                endpoint.application,
                endpoint.token,
                endpoint.user_id or "",
                "yes" if endpoint.enabled else "no",
                endpoint.disabled_reason or "",
                endpoint.last_registered_at.strftime("%Y-%m-%d %H:%M:%S"),
                json.dumps(dict(endpoint.attributes)) if endpoint.attributes else "",
            )
        if not as_json:
            Console(soft_wrap=True).print(table)
            typer.echo(f"{shown} endpoint(s)")


@endpoints_app.command("export")
def export_command(
    output: Annotated[str, typer.Argument(help="File to write ('-' = stdout).")] = "-",
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    segment: SegmentOption = None,
    status: StatusOption = "all",
    db: DbOption = None,
) -> None:
    """Write endpoints as JSONL or CSV, in the format `endpoints import` reads."""
    with _user_errors(), _open(db) as store:
        if fmt not in ("jsonl", "csv"):
            raise _UsageError(f"--format must be jsonl or csv, not {fmt!r}")
        selected = store.endpoints(_segment(segment, None, None), enabled=_enabled_filter(status))
        if output == "-":
            count = _write(sys.stdout, fmt, selected)
        else:
            with open(output, "w", encoding="utf-8", newline="") as f:
                count = _write(f, fmt, selected)
            typer.echo(f"exported {count} endpoint(s) to {output}", err=True)


def _write(out: IO[str], fmt: str, endpoints: Iterator[Endpoint]) -> int:
    count = 0
    writer = None
    for endpoint in endpoints:
        record = _record(endpoint)
        if fmt == "jsonl":
            out.write(json.dumps(record) + "\n")
        else:
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(record))
                writer.writeheader()
            record["data"] = json.dumps(record["data"])
            record["attributes"] = json.dumps(record["attributes"])
            writer.writerow(record)
        count += 1
    return count


@endpoints_app.command("disable")
def disable_command(
    token: Annotated[str, typer.Argument(help="The device token.")],
    app: Annotated[
        str | None, typer.Option("--app", help="Its application (needed if several have it).")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "manual",
    db: DbOption = None,
) -> None:
    """Disable an endpoint until its app registers the token again."""
    with _user_errors(), _open(db) as store:
        if app is None:
            owners = [
                a.name
                for a in store.applications()
                if _quietly(lambda a=a: store.find(a.name, token)) is not None
            ]
            if not owners:
                raise _UsageError(f"no endpoint has token {token[:80]!r}")
            if len(owners) > 1:
                raise _UsageError(
                    f"token {token[:80]!r} is in applications {', '.join(owners)}: add --app"
                )
            app = owners[0]
        endpoint = store.disable(app, token, reason=reason, cause="cli")
        typer.echo(f"disabled {endpoint.application} {endpoint.token} ({reason})")


def _quietly(find: Any) -> Any:
    """``find()``, or None when the token is malformed for that application's provider."""
    try:
        return find()
    except StoreInputError:
        return None


# -- events and statistics --------------------------------------------------------------------


@endpoints_app.command("events")
def events_command(
    app: Annotated[str | None, typer.Option("--app")] = None,
    token: Annotated[str | None, typer.Option("--token")] = None,
    user: Annotated[str | None, typer.Option("--user")] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help=", ".join(k.value for k in EventKind) + " (repeatable)."),
    ] = None,
    after_id: Annotated[int | None, typer.Option(help="Only events after this id.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    db: DbOption = None,
) -> None:
    """Print recorded changes as JSON lines, oldest first."""
    with _user_errors(), _open(db) as store:
        for event in store.events(
            application=app, token=token, user_id=user, kinds=kind, after_id=after_id, limit=limit
        ):
            record = {
                "id": event.id,
                "at": event.at.isoformat(),
                "kind": event.kind.value,
                "app": event.application,
                "token": event.token,
                "user_id": event.user_id,
                "cause": event.cause,
                "details": dict(event.details),
            }
            typer.echo(json.dumps(record))


@endpoints_app.command("kpis")
def kpis_command(
    app: Annotated[str | None, typer.Option("--app")] = None,
    since: Annotated[str | None, typer.Option(help="First UTC day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Last UTC day, YYYY-MM-DD.")] = None,
    db: DbOption = None,
) -> None:
    """Delivery rate and invalid-token rate per application and day, from recorded sends."""
    with _user_errors(), _open(db) as store:
        try:
            first = date.fromisoformat(since) if since else None
            last = date.fromisoformat(until) if until else None
        except ValueError as e:
            raise _UsageError(f"--since/--until: {e}") from None
        table = Table("day", "app", "runs", "sent", "delivery rate", "invalid tokens", "disabled")
        for kpi in store.kpis(application=app, since=first, until=last):
            table.add_row(
                kpi.day,
                kpi.application,
                str(kpi.runs),
                str(kpi.sent),
                f"{kpi.delivery_rate:.2%}",
                f"{kpi.invalid_tokens} ({kpi.invalid_token_rate:.2%})",
                str(kpi.tokens_disabled),
            )
        Console().print(table)


# -- send to a segment ------------------------------------------------------------------------


# The provider-neutral message's options, shared by `send-segment` and `enqueue`.
TitleOption = Annotated[str | None, typer.Option(help="Notification title.")]
BodyOption = Annotated[str | None, typer.Option(help="Notification text.")]
DataOption = Annotated[
    list[str] | None, typer.Option("--data", help="Custom data KEY=VALUE (repeatable).")
]
ImageUrlOption = Annotated[str | None, typer.Option(help="https:// image to show.")]
SoundOption = Annotated[str | None, typer.Option(help="Sound name ('default').")]
BadgeOption = Annotated[int | None, typer.Option(min=0, help="App icon badge.")]
SilentOption = Annotated[bool, typer.Option("--silent", help="Background (data-only) message.")]
UrlOption = Annotated[str | None, typer.Option(help="Open this web page on tap.")]
DeepLinkOption = Annotated[str | None, typer.Option(help="Open this app link on tap.")]
MessageFileOption = Annotated[
    Path | None,
    typer.Option("--message", help="The whole message as JSON (PushMessage fields)."),
]


def _message(
    message_file: Path | None,
    title: str | None,
    body: str | None,
    data: list[str] | None,
    image_url: str | None,
    sound: str | None,
    badge: int | None,
    silent: bool,
    url: str | None,
    deep_link: str | None,
) -> PushMessage:
    if message_file is not None:
        try:
            loaded = json.loads(message_file.read_text(encoding="utf-8"))
        except ValueError as e:
            raise _UsageError(f"{message_file} is not valid JSON: {e}") from None
        return PushMessage.from_dict(loaded)
    pairs: dict[str, str] = {}
    for item in data or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _UsageError(f"--data {item!r} is not KEY=VALUE")
        pairs[key] = value
    if url and deep_link:
        raise _UsageError("give --url or --deep-link, not both")
    action = "url" if url else "deep_link" if deep_link else "open_app"
    return PushMessage(
        title=title,
        body=body,
        data=pairs,
        image_url=image_url,
        sound=sound,
        badge=badge,
        silent=silent,
        action=action,
        url=url or deep_link,
    )


def _print_report(report: SendReport) -> None:
    rate = f" ({report.delivery_rate:.1%})" if report.total else ""
    typer.echo(
        f"run {report.run_id}: {report.total} notifications, {report.delivered} delivered"
        f"{rate}, {report.tokens_disabled} tokens disabled"
    )
    for name, tally in report.applications.items():
        typer.echo(
            f"  {name}: {tally.sent} sent, {tally.delivered} delivered, "
            f"{tally.invalid_tokens} invalid tokens ({tally.tokens_disabled} disabled, "
            f"{tally.kept_reregistered} registered again since, {tally.withheld} withheld), "
            f"{tally.retryable} to retry"
        )
    if report.by_reason:
        reasons = sorted(report.by_reason.items(), key=lambda item: -item[1])
        typer.echo("reasons: " + ", ".join(f"{r} {n}" for r, n in reasons))
    for alert in report.alerts:
        typer.echo(f"alert: {alert}", err=True)
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)


def _report_json(report: SendReport) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "total": report.total,
        "delivered": report.delivered,
        "tokens_disabled": report.tokens_disabled,
        "by_outcome": report.by_outcome,
        "by_reason": report.by_reason,
        "alerts": report.alerts,
        "applications": {
            name: {
                "sent": t.sent,
                "delivered": t.delivered,
                "invalid_tokens": t.invalid_tokens,
                "tokens_disabled": t.tokens_disabled,
                "kept_reregistered": t.kept_reregistered,
                "withheld": t.withheld,
                "retryable": t.retryable,
            }
            for name, t in report.applications.items()
        },
    }


def send_to_segment_command(
    to_segment: Annotated[
        str,
        typer.Option(
            "--to-segment",
            help="Endpoints to send to: 'app=ios plan=pro,team user=u1', JSON, or 'all'.",
        ),
    ],
    title: TitleOption = None,
    body: BodyOption = None,
    data: DataOption = None,
    image_url: ImageUrlOption = None,
    sound: SoundOption = None,
    badge: BadgeOption = None,
    silent: SilentOption = False,
    url: UrlOption = None,
    deep_link: DeepLinkOption = None,
    message_file: MessageFileOption = None,
    apns_url: Annotated[
        str | None, typer.Option(help="APNs server (default: the application's environment).")
    ] = None,
    fcm_url: Annotated[str | None, typer.Option(help="FCM server (tests, proxies).")] = None,
    token_uri: Annotated[str | None, typer.Option(help="OAuth2 token URI for FCM.")] = None,
    ca_file: Annotated[
        Path | None, typer.Option(help="Extra CA to trust (a mock server's).")
    ] = None,
    request_timeout: Annotated[float, typer.Option(min=0.1, help="Per-notification s.")] = 10.0,
    page_size: Annotated[int, typer.Option(min=1, help="Endpoints read per query.")] = 2000,
    actor: Annotated[str | None, typer.Option(help="Who sends (recorded with the run).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Send one message to every enabled endpoint of a segment, applying the results to the
    store (dead tokens disabled) and recording the run. The same as `pushwire send
    --to-segment`.

    Clients are built from each application's credentials_ref. Exit code 1 when some
    notifications need attention (to retry, refused payload or configuration) or a
    configuration alert was raised; dead tokens alone are not a failure.
    """
    with _user_errors(), _open_existing(db) as store:
        message = _message(
            message_file, title, body, data, image_url, sound, badge, silent, url, deep_link
        )
        segment = SegmentFilter.parse(to_segment)
        options: dict[str, Any] = {"request_timeout": request_timeout}
        if ca_file is not None:
            options["ca_file"] = ca_file

        async def main() -> SendReport:
            async with AsyncExitStack() as stack:
                clients: dict[str, Any] = {}
                for app in store.segment_applications(segment):
                    base_url = apns_url if app.provider.value == "apns" else fcm_url
                    extra = {"base_url": base_url} if base_url else {}
                    if token_uri and app.provider.value == "fcm":
                        extra["token_uri"] = token_uri
                    client = client_for(app, **options, **extra)
                    clients[app.name] = await stack.enter_async_context(client)
                typed: Clients = clients
                return await store.send_to_segment(
                    segment, message, clients=typed, actor=actor, page_size=page_size
                )

        report = asyncio.run(main())
    if as_json:
        typer.echo(json.dumps(_report_json(report)))
    else:
        _print_report(report)
    unresolved = (
        report.total
        - report.delivered
        - sum(t.invalid_tokens for t in report.applications.values())
    )
    if unresolved or report.alerts:
        raise typer.Exit(EXIT_NEEDS_ATTENTION)


# -- `pushwire send --to-segment` --------------------------------------------------------------

#: `pushwire send` options that only apply to a send from --input, with what to do instead.
_INPUT_ONLY = {
    "format": "",
    "strict": "",
    "payload": "; give the message with --title/--body/... or --message",
    "push_type": "; use --silent for a background message",
    "priority": "",
    "topic": "; the topic is the application's (pushwire endpoints add-app --topic)",
    "collapse_id": "",
    "expiration": "",
    "sandbox": "; the environment is the application's",
    "results": "",
    "drop_tokens": "; dead tokens are disabled in the store",
    "resume": "",
    "overwrite": "",
    "max_connections": "",
    "rate_limit": "",
}
_CREDENTIALS = ("p8", "key_id", "team_id", "cert", "key", "p12", "password", "service_account")
_CREDENTIALS_HINT = "; credentials come from each application's credentials_ref in the store"
for _name in (*_CREDENTIALS, "project_id"):
    _INPUT_ONLY[_name] = _CREDENTIALS_HINT
#: `pushwire send` options that only apply with --to-segment.
_SEGMENT_ONLY = (
    "db",
    "data",
    "image_url",
    "silent",
    "url",
    "deep_link",
    "message_file",
    "apns_url",
    "fcm_url",
    "page_size",
    "actor",
    "as_json",
)


def _flag(ctx: typer.Context, name: str) -> str:
    for param in ctx.command.params:
        if param.name == name and param.opts:
            return max(param.opts, key=len)
    return "--" + name.replace("_", "-")


def _on_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was typed (not taken from the environment, a config file or
    its default). By the enum's name: typer bundles its own click."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def tokens_or_segment(ctx: typer.Context) -> Path:
    """Route ``pushwire send``: with ``--to-segment``, send to the store's endpoints (through
    :func:`send_to_segment_command`) and exit; otherwise return the ``--input`` file.

    ``--input`` and ``--to-segment`` exclude each other wherever they come from; options of
    one mode typed on the command line in the other mode are refused (exit 2), while values
    from ``PUSHWIRE_*`` variables or a config file for the other mode are ignored.
    """
    params = ctx.params
    to_segment: str | None = params.get("to_segment")
    source: Path | None = params.get("input")
    with _user_errors():
        if to_segment is None:
            typed = [_flag(ctx, n) for n in _SEGMENT_ONLY if _on_command_line(ctx, n)]
            if typed:
                raise _UsageError(f"{', '.join(typed)}: only with --to-segment FILTER")
            if source is None:
                raise _UsageError(
                    "give --input FILE (rows with device tokens) or --to-segment FILTER "
                    "(endpoints of the store, with --db)"
                )
            return source
        if source is not None:
            raise _UsageError(
                "give --input FILE or --to-segment FILTER, not both: --input sends to the "
                "tokens of a file, --to-segment to the endpoints of the store"
            )
        for name, hint in _INPUT_ONLY.items():
            if _on_command_line(ctx, name):
                raise _UsageError(f"{_flag(ctx, name)} applies to --input sends only{hint}")
    base_url: str | None = params.get("base_url")
    send_to_segment_command(
        to_segment=to_segment,
        title=params.get("title"),
        body=params.get("body"),
        data=params.get("data"),
        image_url=params.get("image_url"),
        sound=params.get("sound"),
        badge=params.get("badge"),
        silent=bool(params.get("silent")),
        url=params.get("url"),
        deep_link=params.get("deep_link"),
        message_file=params.get("message_file"),
        apns_url=params.get("apns_url") or base_url,
        fcm_url=params.get("fcm_url") or base_url,
        token_uri=params.get("token_uri"),
        ca_file=params.get("ca_file"),
        request_timeout=params.get("request_timeout", 10.0),
        page_size=params.get("page_size", 2000),
        actor=params.get("actor"),
        as_json=bool(params.get("as_json")),
        db=params.get("db"),
    )
    raise typer.Exit(0)
