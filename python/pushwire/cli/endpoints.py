"""``pushwire endpoints ...``: the endpoint store's applications and endpoints.

``endpoints_app`` is a typer sub-app (``app.add_typer(endpoints_app, name="endpoints")``).
Every command takes ``--db`` (or ``$PUSHWIRE_DB``): ``sqlite:///path/to/file.db`` (or a plain
path) or ``postgresql://user:pw@host/db``; sending to a segment is in :mod:`.segment`.

User mistakes (a bad file, an unknown application, an unreachable database) print one
``error: ...`` line on stderr and exit with code 2; nothing is half-imported: a file is
checked whole before its first row is written.
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.table import Table

from ..store import Endpoint, EventKind, Registration, SegmentFilter, StoreInputError
from .console import Console
from .errors import CLIError, user_errors
from .options import DbOption, open_store

#: Rows checked, then written, per transaction during an import.
IMPORT_BATCH = 5000

endpoints_app = typer.Typer(
    help="The endpoint store: applications, device tokens, users and segments.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

SegmentOption = Annotated[
    str | None,
    typer.Option(
        "--filter",
        help="Segment: 'app=ios plan=pro,team user=u1' (attribute=value terms) or JSON.",
    ),
]
StatusOption = Annotated[str, typer.Option(help="enabled, disabled or all.", show_default=True)]


def _enabled_filter(status: str) -> bool | None:
    choices = {"enabled": True, "disabled": False, "all": None}
    if status not in choices:
        raise CLIError(f"--status must be enabled, disabled or all, not {status!r}")
    return choices[status]


# -- schema and applications ------------------------------------------------------------------


@endpoints_app.command("migrate")
def migrate_command(db: DbOption = None) -> None:
    """Create or upgrade the store's tables (also done on first use)."""
    with user_errors(), open_store(db) as store:
        # Opening migrates; a second call reports what is left (nothing).
        store.migrate()
        typer.echo(f"schema up to date: {store.database.display_url}")


@endpoints_app.command("add-app")
def add_app_command(
    name: Annotated[str, typer.Argument(help="Application name, e.g. ios-prod.")],
    provider: Annotated[str, typer.Option(help="apns, fcm or webpush.")],
    topic: Annotated[str | None, typer.Option(help="APNs: the bundle id.")] = None,
    environment: Annotated[
        str | None, typer.Option(help="APNs: production (default) or sandbox.")
    ] = None,
    project_id: Annotated[str | None, typer.Option(help="FCM: the Firebase project.")] = None,
    credentials_ref: Annotated[
        str | None,
        typer.Option(
            help="Where the credentials are: p8:PATH?key_id=..&team_id=.., env:PREFIX, "
            "p12:PATH?password_env=VAR, cert:CERT?key=KEY, service-account:PATH, "
            "vapid:KEY.pem?subject=mailto:... (Web Push)."
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Add an application, or change its settings."""
    with user_errors(), open_store(db) as store:
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
    with user_errors(), open_store(db) as store:
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

_COLUMNS = {
    "app",
    "application",
    "token",
    "user_id",
    "user",
    "data",
    "attributes",
    "registered_at",
    # Web Push subscriptions: PushSubscription JSON's endpoint and keys, or flat key columns.
    "endpoint",
    "keys",
    "p256dh",
    "auth",
    "expirationTime",
}
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
    raise CLIError(f"{where}: registered_at {value!r} is not ISO 8601 or epoch milliseconds")


def _json_object(value: Any, column: str, where: str) -> Any:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise CLIError(f"{where}: {column} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise CLIError(f"{where}: {column} must be a JSON object")
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
        raise CLIError(f"{where}: unknown column(s) {', '.join(sorted(unknown))} ({known})")
    app = row.get("app") or row.get("application") or default_app
    if not app:
        raise CLIError(f"{where}: no application (an app column, or --app)")
    keys = _json_object(row.get("keys"), "keys", where) or {}
    return Registration(
        application=app,
        token=row.get("token") or row.get("endpoint") or "",
        user_id=row.get("user_id") or row.get("user") or None,
        data=_json_object(row.get("data"), "data", where),
        attributes=attributes,
        registered_at=_moment(row.get("registered_at"), where),
        p256dh=row.get("p256dh") or keys.get("p256dh"),
        auth=row.get("auth") or keys.get("auth"),
    )


def _rows(path: Path, fmt: str, default_app: str | None) -> Iterator[tuple[str, Registration]]:
    """(where, registration) for each row of a CSV or JSONL file."""
    with path.open(encoding="utf-8", newline="") as f:
        if fmt == "csv":
            reader = csv.DictReader(f)
            for row in reader:
                where = f"{path} line {reader.line_num}"
                if None in row:
                    raise CLIError(f"{where}: more cells than columns")
                yield where, _registration(dict(row), default_app, where)
            return
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                row = json.loads(line)
            except ValueError as e:
                raise CLIError(f"{where}: not valid JSON ({e})") from None
            if not isinstance(row, dict):
                raise CLIError(f"{where}: each line must be a JSON object")
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
            raise CLIError(f"--format must be auto, csv or jsonl, not {fmt!r}")
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
    with user_errors(), open_store(db) as store, _readable_twice(file) as path:
        fmt = _format_of(path, fmt)
        checked = 0
        for wheres, rows in _batches(path, fmt, app):
            try:
                checked += store.check_registrations(rows)
            except StoreInputError as e:
                if e.index is None:
                    raise
                raise CLIError(f"{wheres[e.index]}: {e}") from None
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
    with user_errors(), open_store(db) as store:
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
    with user_errors(), open_store(db) as store:
        if fmt not in ("jsonl", "csv"):
            raise CLIError(f"--format must be jsonl or csv, not {fmt!r}")
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
        # Web Push subscriptions need their keys to be imported again (None for tokens); the
        # export file is a copy of the store: keep it as private as the database.
        record["p256dh"], record["auth"] = endpoint.p256dh, endpoint.auth
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
    with user_errors(), open_store(db) as store:
        if app is None:
            owners = [
                a.name
                for a in store.applications()
                if _quietly(lambda a=a: store.find(a.name, token)) is not None
            ]
            if not owners:
                raise CLIError(f"no endpoint has token {token[:80]!r}")
            if len(owners) > 1:
                raise CLIError(
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
    with user_errors(), open_store(db) as store:
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
    with user_errors(), open_store(db) as store:
        try:
            first = date.fromisoformat(since) if since else None
            last = date.fromisoformat(until) if until else None
        except ValueError as e:
            raise CLIError(f"--since/--until: {e}") from None
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
