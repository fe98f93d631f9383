"""Helpers shared by the store tests (no tests here): the PostgreSQL test server and a store
per backend.

PostgreSQL: ``$PUSHWIRE_TEST_POSTGRES_DSN`` if set (scripts/test.sh starts a server with
scripts/postgres.sh); otherwise a throwaway server is started here with the same script and
stopped when the test process exits. The PostgreSQL tests are skipped only when
``PUSHWIRE_NO_POSTGRES=1`` says so; a server that is expected but cannot be reached or started
fails them.

Each PostgreSQL test gets a schema of its own (``search_path`` in the DSN), dropped after it,
so tests never see each other's rows and every test exercises the migrations.
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pushwire.store import Store
from support.util import ThrowawayServer

DSN_VARIABLE = "PUSHWIRE_TEST_POSTGRES_DSN"
NO_POSTGRES_VARIABLE = "PUSHWIRE_NO_POSTGRES"
BACKENDS = ["sqlite", "postgresql"]
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres.sh"


def _masked(dsn: str) -> str:
    return urllib.parse.urlsplit(dsn)._replace(netloc="***").geturl()


def _select_one(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, connect_timeout=10) as conn:
        conn.execute("SELECT 1")


_POSTGRES = ThrowawayServer(
    "PostgreSQL", DSN_VARIABLE, NO_POSTGRES_VARIABLE, SCRIPT, _select_one, shown=_masked
)


def postgres_dsn() -> str:
    """The test server's DSN; skips only on PUSHWIRE_NO_POSTGRES=1, fails otherwise."""
    return _POSTGRES.url()


def with_search_path(dsn: str, schema: str) -> str:
    """The DSN with ``options=-csearch_path=schema`` added."""
    parts = urllib.parse.urlsplit(dsn)
    query = urllib.parse.parse_qsl(parts.query)
    query.append(("options", f"-csearch_path={schema}"))
    return parts._replace(query=urllib.parse.urlencode(query)).geturl()


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A DSN whose tables live in a fresh schema, dropped afterwards."""
    import psycopg

    dsn = postgres_dsn()
    schema = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(dsn, schema)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def database_url(backend: str, directory: Path) -> Iterator[str]:
    """A fresh, empty database of ``backend``."""
    if backend == "sqlite":
        yield f"sqlite:///{directory}/store.db"
        return
    with postgres_schema() as url:
        yield url


@contextmanager
def open_store(backend: str, directory: Path, **options: object) -> Iterator[Store]:
    with database_url(backend, directory) as url, Store.open(url, **options) as store:
        yield store


def apns_token(i: int, prefix: str = "") -> str:
    width = 64 - len(prefix)
    return prefix + format(i, f"0{width}x")


def fcm_token(i: int, prefix: str = "tok") -> str:
    return f"{prefix}{i:06d}:APA91b" + "x" * 140
