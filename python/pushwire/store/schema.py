"""The store's tables and their migrations, one numbered step at a time, per dialect.

``pushwire_schema`` records the steps applied. :func:`migrate` applies the missing ones in one
transaction (PostgreSQL and SQLite both have transactional DDL: a failed step leaves the
schema as it was), serialised across processes, so that several workers opening a new
database at once do not race. A database migrated by a newer pushwire is refused rather than
misread.

Times are BIGINT epoch milliseconds in both dialects; JSON is JSONB on PostgreSQL and TEXT on
SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass

from .backend import Connection, Database
from .errors import SchemaVersionError


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]

    def statements(self, dialect: str) -> tuple[str, ...]:
        return self.sqlite if dialect == "sqlite" else self.postgresql


def _tables(id_column: str, boolean: str, json: str) -> tuple[str, ...]:
    """Version 1 in either dialect: they differ in id, boolean and JSON column types only."""
    return (
        f"""CREATE TABLE applications (
            id {id_column},
            name TEXT NOT NULL UNIQUE,
            provider TEXT NOT NULL CHECK (provider IN ('apns', 'fcm')),
            environment TEXT,
            topic TEXT,
            project_id TEXT,
            credentials_ref TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )""",
        f"""CREATE TABLE endpoints (
            id {id_column},
            application_id BIGINT NOT NULL REFERENCES applications (id),
            token TEXT NOT NULL,
            user_id TEXT,
            enabled {boolean} NOT NULL,
            data {json} NOT NULL,
            attributes {json} NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            last_registered_at BIGINT NOT NULL,
            disabled_at BIGINT,
            disabled_reason TEXT,
            invalid_since BIGINT,
            last_410_at BIGINT,
            UNIQUE (application_id, token)
        )""",
        "CREATE INDEX endpoints_by_user ON endpoints (user_id) WHERE user_id IS NOT NULL",
        # Keyset pages of a send: enabled endpoints of one application in id order.
        "CREATE INDEX endpoints_enabled_by_id ON endpoints (application_id, id) WHERE enabled",
        f"""CREATE TABLE endpoint_events (
            id {id_column},
            at BIGINT NOT NULL,
            kind TEXT NOT NULL,
            application TEXT,
            token TEXT,
            endpoint_id BIGINT,
            user_id TEXT,
            cause TEXT NOT NULL,
            details {json} NOT NULL
        )""",
        "CREATE INDEX endpoint_events_by_endpoint ON endpoint_events (application, token)",
        "CREATE INDEX endpoint_events_by_user ON endpoint_events (user_id) "
        "WHERE user_id IS NOT NULL",
        "CREATE INDEX endpoint_events_by_kind ON endpoint_events (kind, at)",
        f"""CREATE TABLE send_runs (
            id {id_column},
            started_at BIGINT NOT NULL,
            finished_at BIGINT,
            status TEXT NOT NULL,
            actor TEXT NOT NULL,
            target_kind TEXT NOT NULL,
            target {json} NOT NULL,
            message {json} NOT NULL,
            total BIGINT NOT NULL,
            tokens_disabled BIGINT NOT NULL,
            by_outcome {json} NOT NULL,
            by_reason {json} NOT NULL,
            warnings {json} NOT NULL,
            error TEXT
        )""",
        f"""CREATE TABLE send_run_applications (
            run_id BIGINT NOT NULL REFERENCES send_runs (id) ON DELETE CASCADE,
            application TEXT NOT NULL,
            day TEXT NOT NULL,
            sent BIGINT NOT NULL,
            delivered BIGINT NOT NULL,
            rejected BIGINT NOT NULL,
            timed_out BIGINT NOT NULL,
            failed BIGINT NOT NULL,
            invalid_tokens BIGINT NOT NULL,
            tokens_disabled BIGINT NOT NULL,
            retryable BIGINT NOT NULL,
            by_reason {json} NOT NULL,
            PRIMARY KEY (run_id, application)
        )""",
        "CREATE INDEX send_run_applications_by_day ON send_run_applications (day, application)",
    )


def _campaign_tables(id_column: str, boolean: str, json: str) -> tuple[str, ...]:
    """Version 2: campaigns, their lifecycle events, slots (each runs exactly once: the
    UNIQUE constraint and a claim), per-(slot, endpoint) send records (never twice: the
    primary key), engagement events."""
    return (
        f"""CREATE TABLE campaigns (
            id {id_column},
            name TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            spec {json} NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            scheduled_at BIGINT
        )""",
        "CREATE INDEX campaigns_by_state ON campaigns (state)",
        f"""CREATE TABLE campaign_events (
            id {id_column},
            campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
            at BIGINT NOT NULL,
            kind TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT,
            actor TEXT NOT NULL,
            details {json} NOT NULL
        )""",
        "CREATE INDEX campaign_events_by_campaign ON campaign_events (campaign_id, id)",
        f"""CREATE TABLE campaign_slots (
            id {id_column},
            campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
            occurrence TEXT NOT NULL,
            zone TEXT NOT NULL,
            due_at BIGINT NOT NULL,
            state TEXT NOT NULL,
            reason TEXT,
            owner TEXT,
            lease_until BIGINT,
            attempts BIGINT NOT NULL,
            run_id BIGINT,
            started_at BIGINT,
            finished_at BIGINT,
            counts {json} NOT NULL,
            UNIQUE (campaign_id, occurrence, zone)
        )""",
        "CREATE INDEX campaign_slots_due ON campaign_slots (state, due_at)",
        f"""CREATE TABLE campaign_sends (
            slot_id BIGINT NOT NULL REFERENCES campaign_slots (id),
            endpoint_id BIGINT NOT NULL,
            campaign_id BIGINT NOT NULL,
            application_id BIGINT NOT NULL,
            treatment INTEGER NOT NULL,
            state TEXT NOT NULL,
            disabled {boolean} NOT NULL,
            at BIGINT NOT NULL,
            day TEXT NOT NULL,
            job TEXT,
            PRIMARY KEY (slot_id, endpoint_id)
        )""",
        "CREATE INDEX campaign_sends_by_endpoint ON campaign_sends (endpoint_id, at)",
        "CREATE INDEX campaign_sends_by_campaign ON campaign_sends (campaign_id, day)",
        "CREATE INDEX campaign_sends_by_job ON campaign_sends (slot_id, job) WHERE job IS NOT NULL",
        f"""CREATE TABLE engagement_events (
            id {id_column},
            at BIGINT NOT NULL,
            name TEXT NOT NULL,
            endpoint_id BIGINT NOT NULL,
            campaign_id BIGINT NOT NULL,
            slot_id BIGINT NOT NULL,
            treatment INTEGER NOT NULL,
            details {json} NOT NULL
        )""",
        "CREATE INDEX engagement_events_by_send ON engagement_events (slot_id, endpoint_id, name)",
        "CREATE INDEX engagement_events_by_campaign ON engagement_events (campaign_id, name)",
    )


def _api_key_tables(id_column: str) -> tuple[str, ...]:
    """API keys of ``pushwire serve``: only the SHA-256 of a key is kept; ``key_id`` is its
    public part (for lookup and listing); console sessions are short-lived keys with a
    parent."""
    return (
        f"""CREATE TABLE api_keys (
            id {id_column},
            key_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            scope TEXT NOT NULL CHECK (scope IN ('app', 'sender', 'admin', 'session')),
            application TEXT,
            secret_hash TEXT NOT NULL,
            parent_id BIGINT REFERENCES api_keys (id),
            rate_limit BIGINT,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            revoked_at BIGINT
        )""",
    )


def _live_activity_tables(id_column: str, boolean: str) -> tuple[str, ...]:
    """Live Activity tokens and broadcast channels (:mod:`pushwire.store.live_activities`)."""
    return (
        f"""CREATE TABLE live_activity_tokens (
            id {id_column},
            application TEXT NOT NULL,
            endpoint_token TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('push_to_start', 'update')),
            activity_type TEXT NOT NULL,
            activity_id TEXT,
            token TEXT NOT NULL,
            enabled {boolean} NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            disabled_at BIGINT,
            disabled_reason TEXT,
            UNIQUE (application, kind, token)
        )""",
        "CREATE INDEX live_activity_tokens_by_type "
        "ON live_activity_tokens (application, kind, activity_type) WHERE enabled",
        "CREATE INDEX live_activity_tokens_by_activity "
        "ON live_activity_tokens (application, activity_id) WHERE activity_id IS NOT NULL",
        """CREATE TABLE live_activity_channels (
            channel_id TEXT PRIMARY KEY,
            application TEXT NOT NULL,
            event TEXT NOT NULL,
            storage_policy INTEGER NOT NULL CHECK (storage_policy IN (0, 1)),
            state TEXT NOT NULL CHECK (state IN ('open', 'ended', 'deleted')),
            created_at BIGINT NOT NULL,
            ended_at BIGINT,
            deleted_at BIGINT
        )""",
        "CREATE INDEX live_activity_channels_by_event "
        "ON live_activity_channels (application, event)",
    )


def _web_subscription_columns() -> tuple[str, ...]:
    """Web Push subscriptions are endpoints (token = the endpoint URL) with two more columns:
    the browser's ``p256dh`` and ``auth`` keys (base64url), NULL for APNs and FCM tokens."""
    return (
        "ALTER TABLE endpoints ADD COLUMN web_p256dh TEXT",
        "ALTER TABLE endpoints ADD COLUMN web_auth TEXT",
    )


#: SQLite cannot change a CHECK constraint: the applications table is rebuilt. Inside the
#: migration's transaction, so foreign keys are deferred (endpoints point at the rows while
#: the table is replaced) and the AUTOINCREMENT counter is carried over (ids are never reused).
_SQLITE_WEBPUSH_APPLICATIONS = (
    "PRAGMA defer_foreign_keys = ON",
    "CREATE TEMP TABLE applications_before_v5 AS SELECT * FROM applications",
    "CREATE TEMP TABLE applications_seq_before_v5 AS "
    "SELECT seq FROM sqlite_sequence WHERE name = 'applications'",
    "DROP TABLE applications",
    """CREATE TABLE applications (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            provider TEXT NOT NULL CHECK (provider IN ('apns', 'fcm', 'webpush')),
            environment TEXT,
            topic TEXT,
            project_id TEXT,
            credentials_ref TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )""",
    "INSERT INTO applications (id, name, provider, environment, topic, project_id, "
    "credentials_ref, created_at, updated_at) SELECT id, name, provider, environment, topic, "
    "project_id, credentials_ref, created_at, updated_at FROM temp.applications_before_v5",
    "UPDATE sqlite_sequence SET seq = (SELECT MAX(seq) FROM temp.applications_seq_before_v5) "
    "WHERE name = 'applications' AND EXISTS (SELECT 1 FROM temp.applications_seq_before_v5)",
    "DROP TABLE temp.applications_before_v5",
    "DROP TABLE temp.applications_seq_before_v5",
)

_POSTGRESQL_WEBPUSH_APPLICATIONS = (
    "ALTER TABLE applications DROP CONSTRAINT applications_provider_check",
    "ALTER TABLE applications ADD CONSTRAINT applications_provider_check "
    "CHECK (provider IN ('apns', 'fcm', 'webpush'))",
)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "applications, endpoints, events, send runs",
        # AUTOINCREMENT: ids of deleted endpoints are never reused, so events stay unambiguous.
        sqlite=_tables("INTEGER PRIMARY KEY AUTOINCREMENT", "BOOLEAN", "TEXT"),
        postgresql=_tables(
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BOOLEAN", "JSONB"
        ),
    ),
    Migration(
        2,
        "campaigns, slots, campaign sends, engagement events",
        sqlite=_campaign_tables("INTEGER PRIMARY KEY AUTOINCREMENT", "BOOLEAN", "TEXT"),
        postgresql=_campaign_tables(
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BOOLEAN", "JSONB"
        ),
    ),
    # pushwire serve: API keys, stored hashed (pushwire.server.keys). Its own step.
    Migration(
        3,
        "api keys",
        sqlite=_api_key_tables("INTEGER PRIMARY KEY AUTOINCREMENT"),
        postgresql=_api_key_tables("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    ),
    # Live Activities: push-to-start/update tokens and broadcast channels (store/live_activities).
    Migration(
        4,
        "live activity tokens and broadcast channels",
        sqlite=_live_activity_tables("INTEGER PRIMARY KEY AUTOINCREMENT", "BOOLEAN"),
        postgresql=_live_activity_tables(
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BOOLEAN"
        ),
    ),
    # Web Push: applications of provider 'webpush', subscriptions as endpoints with keys.
    Migration(
        5,
        "web push subscriptions",
        sqlite=_SQLITE_WEBPUSH_APPLICATIONS + _web_subscription_columns(),
        postgresql=_POSTGRESQL_WEBPUSH_APPLICATIONS + _web_subscription_columns(),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version

_CREATE_VERSIONS = """CREATE TABLE IF NOT EXISTS pushwire_schema (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)"""


def _applied(connection: Connection) -> set[int]:
    return {row[0] for row in connection.query("SELECT version FROM pushwire_schema")}


def _check_not_newer(applied: set[int], where: str) -> None:
    newer = sorted(v for v in applied if v > LATEST_VERSION)
    if newer:
        raise SchemaVersionError(
            f"{where} has schema version {newer[-1]}, newer than this pushwire knows "
            f"({LATEST_VERSION}): upgrade pushwire"
        )


def migrate(database: Database, now_ms: int) -> list[int]:
    """Apply the missing migrations; the versions applied (empty when up to date)."""

    def work(connection: Connection) -> list[int]:
        database.lock_for_migrations(connection)
        connection.execute(_CREATE_VERSIONS)
        applied = _applied(connection)
        _check_not_newer(applied, database.display_url)
        done = []
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            for statement in migration.statements(database.dialect):
                connection.execute(statement)
            connection.execute(
                "INSERT INTO pushwire_schema (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, now_ms),
            )
            done.append(migration.version)
        return done

    return database.write(work)


def check_schema(database: Database) -> None:
    """Refuse a database whose schema is missing steps (run migrations) or is newer."""

    def work(connection: Connection) -> set[int]:
        if database.dialect == "sqlite":
            exists = connection.query(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pushwire_schema'"
            )
        else:
            exists = connection.query("SELECT to_regclass('pushwire_schema') IS NOT NULL")
            exists = exists if exists and exists[0][0] else []
        return _applied(connection) if exists else set()

    applied = database.read(work)
    _check_not_newer(applied, database.display_url)
    missing = [m.version for m in MIGRATIONS if m.version not in applied]
    if missing:
        raise SchemaVersionError(
            f"{database.display_url} lacks schema migrations {missing}: run "
            "`pushwire endpoints migrate --db URL` or open the store with migrate=True"
        )
