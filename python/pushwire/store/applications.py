"""Applications: one app on one provider, its topic or project, and where its credentials are."""

from __future__ import annotations

from typing import Any

from .backend import Connection, Database
from .clock import to_datetime
from .credentials import check_credentials_ref
from .errors import StoreError, UnknownApplicationError
from .model import Application, Provider
from .validation import check_application_settings, check_name, check_provider

_COLUMNS = (
    "id, name, provider, environment, topic, project_id, credentials_ref, created_at, updated_at"
)


def application_from_row(row: tuple[Any, ...]) -> Application:
    app_id, name, provider, environment, topic, project_id, ref, created, updated = row
    return Application(
        name=name,
        provider=Provider(provider),
        environment=environment,
        topic=topic,
        project_id=project_id,
        credentials_ref=ref,
        created_at=to_datetime(created),
        updated_at=to_datetime(updated),
        id=app_id,
    )


def put_application(
    database: Database,
    name: str,
    *,
    provider: Provider | str,
    environment: str | None,
    topic: str | None,
    project_id: str | None,
    credentials_ref: str | None,
    now: int,
) -> Application:
    """Create the application, or update its settings (its endpoints stay)."""
    check_name(name)
    provider = check_provider(provider)
    environment, topic, project_id = check_application_settings(
        provider, environment, topic, project_id
    )
    ref = check_credentials_ref(credentials_ref)

    def work(c: Connection) -> Application:
        existing = c.query(f"SELECT {_COLUMNS} FROM applications WHERE name = ?", (name,))
        if existing and existing[0][2] != provider.value:
            # Tokens of one provider mean nothing to the other.
            raise StoreError(
                f"application {name!r} is an {existing[0][2]} application; "
                f"it cannot become {provider.value}"
            )
        if existing:
            c.execute(
                "UPDATE applications SET environment = ?, topic = ?, project_id = ?, "
                "credentials_ref = ?, updated_at = ? WHERE name = ?",
                (environment, topic, project_id, ref, now, name),
            )
        else:
            c.execute(
                "INSERT INTO applications (name, provider, environment, topic, project_id, "
                "credentials_ref, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, provider.value, environment, topic, project_id, ref, now, now),
            )
        row = c.query(f"SELECT {_COLUMNS} FROM applications WHERE name = ?", (name,))
        return application_from_row(row[0])

    return database.write(work)


def all_applications(connection: Connection) -> list[Application]:
    rows = connection.query(f"SELECT {_COLUMNS} FROM applications ORDER BY name")
    return [application_from_row(row) for row in rows]


def application_named(connection: Connection, name: str) -> Application:
    rows = connection.query(f"SELECT {_COLUMNS} FROM applications WHERE name = ?", (name,))
    if not rows:
        raise UnknownApplicationError(
            f"no application named {name!r}: add it first (Store.put_application, "
            "`pushwire endpoints add-app`)",
            field="application",
        )
    return application_from_row(rows[0])


def delete_application(database: Database, name: str) -> None:
    """Delete an application that has no endpoints left (delete or move them first)."""

    def work(c: Connection) -> None:
        app = application_named(c, name)
        count = c.query("SELECT COUNT(*) FROM endpoints WHERE application_id = ?", (app.id,))
        if count[0][0]:
            raise StoreError(
                f"application {name!r} still has {count[0][0]} endpoints: delete them first"
            )
        c.execute("DELETE FROM applications WHERE id = ?", (app.id,))

    database.write(work)
