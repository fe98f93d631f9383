"""What the store needs from a database (``factory.open_database`` picks one for a URL).

The store's SQL is written once, with ``?`` placeholders, in the modules that own each concern;
a backend runs it inside transactions and supplies the few fragments that differ between
SQLite and PostgreSQL (row locks, JSON, collation). Every unit of work is a function run by
:meth:`Database.write` or :meth:`Database.read`, so a backend can run it again after a
deadlock without the caller noticing.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from .errors import StoreInputError

T = TypeVar("T")

#: Environment variable with the database URL, for the CLI and :func:`pushwire.store.open_store`.
DATABASE_URL_VARIABLE = "PUSHWIRE_DB"


class Connection(Protocol):
    """The statements a unit of work can run, inside its transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class Database(abc.ABC):
    """A SQL database the store runs on."""

    #: ``sqlite`` or ``postgresql``: picks the migration scripts.
    dialect: ClassVar[str]
    #: Appended to a SELECT whose rows the transaction will update (a row lock on PostgreSQL;
    #: SQLite's write transactions are exclusive already).
    for_update: ClassVar[str]
    #: ORDER BY expression for tokens in byte order, the order rows are locked in everywhere
    #: (one order for every transaction means no lock cycles).
    token_order: ClassVar[str]

    #: The URL without its password, for messages.
    display_url: str

    @abc.abstractmethod
    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction: all of it is committed or none of it."""

    @abc.abstractmethod
    def read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one read-only transaction."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def json_param(self, value: Any) -> Any:
        """A JSON value as a statement parameter."""

    @abc.abstractmethod
    def json_value(self, raw: Any) -> Any:
        """A JSON column as read back."""

    @abc.abstractmethod
    def attribute_condition(self, key: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        """SQL true when the ``endpoints.attributes`` entry ``key`` (a string or a list of
        strings) equals or holds one of ``values``."""

    @abc.abstractmethod
    def in_condition(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """SQL true when ``column`` is one of ``values`` (not empty)."""

    @abc.abstractmethod
    def insert_many(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
        suffix: str = "",
    ) -> list[tuple[Any, ...]]:
        """Insert ``rows`` in one statement; ``columns`` are (name, type) with type one of
        ``bigint``, ``text``, ``boolean``, ``jsonb`` (JSON columns take Python values).
        ``suffix`` follows the VALUES (``ON CONFLICT ...``, ``RETURNING ...``); the rows it
        returns, in no particular order (sort generated ids to get the input order)."""

    @abc.abstractmethod
    def update_many(
        self,
        connection: Connection,
        table: str,
        key: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """``UPDATE table SET columns... WHERE key = ...`` for each row (key last)."""

    @abc.abstractmethod
    def lock_for_migrations(self, connection: Connection) -> None:
        """Serialise concurrent migrators (first use by several processes at once)."""


_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)


def sqlite_path(url: str) -> str | None:
    """The SQLite file of ``url``, or None when ``url`` is not a SQLite URL.

    As SQLAlchemy spells them: ``sqlite:///relative.db`` is relative to the current directory,
    ``sqlite:////abs/path.db`` is absolute (four slashes), ``sqlite://:memory:`` is in memory;
    ``sqlite:relative.db`` is relative too, and a plain path (no ``scheme://``) is a SQLite
    file.
    """
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:") :]
        if rest in ("", "//", "///", "////"):
            raise StoreInputError(
                "the SQLite URL has no path: sqlite:///relative.db or sqlite:////abs/path.db",
                field="url",
            )
        if rest.startswith("//:memory:") or rest == ":memory:":
            return ":memory:"
        if rest.startswith("//"):
            # sqlite://HOST/PATH: the host must be empty, and PATH follows its slash.
            rest = rest[2:]
            if not rest.startswith("/"):
                raise StoreInputError(
                    f"{url!r}: a host is not allowed in a SQLite URL; use "
                    "sqlite:///relative.db or sqlite:////abs/path.db",
                    field="url",
                )
            return rest[1:]
        return rest
    if _SCHEME.match(url):
        return None
    return str(Path(url))
