"""Which database a URL names: the one module that knows every backend."""

from __future__ import annotations

from typing import Any

from .backend import DATABASE_URL_VARIABLE, Database, sqlite_path
from .errors import StoreInputError
from .postgres import PostgresDatabase
from .sqlite import SQLiteDatabase


def open_database(url: str, **options: Any) -> Database:
    """A backend for ``url``: ``sqlite:///path.db`` (or a plain path) or
    ``postgresql://user:password@host:port/db`` (``postgres://`` too)."""
    if not isinstance(url, str) or not url:
        raise StoreInputError(
            f"a database URL is required (sqlite:///path.db or postgresql://...); "
            f"the CLI also reads ${DATABASE_URL_VARIABLE}",
            field="url",
        )
    path = sqlite_path(url)
    if path is not None:
        return SQLiteDatabase(path, **options)
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        return PostgresDatabase(url, **options)
    raise StoreInputError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///path.db or postgresql://...",
        field="url",
    )
