"""PostgreSQL backend, for stores shared by several processes or machines (psycopg 3 and its
connection pool).

Concurrency: transactions run at READ COMMITTED; every unit of work that updates endpoints
first locks their rows with ``SELECT ... FOR UPDATE`` (in token byte order, the same order
everywhere) and inserts with ``ON CONFLICT DO NOTHING``, so concurrent registrations and
result batches serialise per row and no update is lost. Should PostgreSQL still report a
deadlock or a serialization failure, the whole unit of work is run again.
"""

from __future__ import annotations

import functools
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from .backend import Connection, Database, T
from .errors import DatabaseUnavailableError, StoreError

if TYPE_CHECKING:
    import psycopg

#: Runs of one unit of work before a deadlock or serialization failure is reported.
MAX_ATTEMPTS = 5
#: Any constant: serialises migrations across processes (pg_advisory_xact_lock).
_MIGRATION_LOCK = 0x70757368  # "push"


_encode = msgspec.json.Encoder().encode


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    # The store's SQL never contains a literal "?" or "%", so this is a plain substitution.
    # %b: parameters travel in binary (arrays of tokens need no quoting or escaping).
    return sql.replace("?", "%b")


def without_password(url: str) -> str:
    """The URL for messages: ``postgresql://user:***@host/db``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


class _PostgresConnection(Connection):
    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(_pg(sql), params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(_pg(sql), params).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._conn.cursor() as cursor:
                cursor.executemany(_pg(sql), rows)


class PostgresDatabase(Database):
    """A pool of connections to one PostgreSQL database."""

    dialect: ClassVar[str] = "postgresql"
    for_update: ClassVar[str] = " FOR UPDATE"
    token_order: ClassVar[str] = 'token COLLATE "C"'

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        connect_timeout: float = 10.0,
    ) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise StoreError(
                "PostgreSQL support needs psycopg 3: pip install 'pushwire[postgres]' "
                "(psycopg[binary] and psycopg-pool)"
            ) from None
        self.display_url = without_password(url)
        self._timeout = connect_timeout
        # One direct connection first: if the server cannot be reached, libpq's own message
        # (refused, unknown host, bad password) is what the caller needs to read.
        try:
            with psycopg.connect(url, connect_timeout=max(1, round(connect_timeout))) as probe:
                probe.execute("SELECT 1")
        except psycopg.Error as e:
            raise DatabaseUnavailableError(
                f"cannot connect to {self.display_url}: {_first_line(e)}"
            ) from None
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] | None = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout))},
            timeout=connect_timeout,
            check=ConnectionPool.check_connection,
            name="pushwire-store",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except Exception as e:
            self._pool.close()
            raise DatabaseUnavailableError(
                f"cannot open a connection pool to {self.display_url}: {_first_line(e)}"
            ) from None

    def __repr__(self) -> str:
        return f"PostgresDatabase({self.display_url!r})"

    def write(self, work: Callable[[Connection], T]) -> T:
        return self._run(work)

    def read(self, work: Callable[[Connection], T]) -> T:
        return self._run(work)

    def _run(self, work: Callable[[Connection], T]) -> T:
        import psycopg
        from psycopg import errors
        from psycopg_pool import PoolTimeout

        if self._pool is None:
            raise StoreError("the store is closed")
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._pool.connection() as conn, conn.transaction():
                    return work(_PostgresConnection(conn))
            except (errors.DeadlockDetected, errors.SerializationFailure) as e:
                if attempt >= MAX_ATTEMPTS:
                    raise StoreError(
                        f"{self.display_url}: gave up after {attempt} attempts: {_first_line(e)}"
                    ) from e
                time.sleep(random.uniform(0, 0.02 * attempt))  # let the other one finish
            except PoolTimeout as e:
                raise DatabaseUnavailableError(
                    f"no connection to {self.display_url} within {self._timeout:g} s: "
                    f"{_first_line(e)}"
                ) from e
            except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                raise DatabaseUnavailableError(f"{self.display_url}: {_first_line(e)}") from e
            except psycopg.Error as e:
                raise StoreError(f"{self.display_url}: {_first_line(e)}") from e

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def json_param(self, value: Any) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(value)

    def json_value(self, raw: Any) -> Any:
        return raw  # psycopg decodes jsonb already

    def attribute_condition(self, key: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        # jsonb_exists_any: the string itself, or one of the array's elements.
        return "jsonb_exists_any(endpoints.attributes -> ?, ?::text[])", [key, list(values)]

    def in_condition(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        # One array parameter: the statement text stays the same whatever the count.
        return f"{column} = ANY(?)", [list(values)]

    def insert_many(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
        suffix: str = "",
    ) -> list[tuple[Any, ...]]:
        # One array per column through unnest(): one short statement whatever the row count.
        if not rows:
            return []
        names = ", ".join(name for name, _ in columns)
        sql = (
            f"INSERT INTO {table} ({names}) SELECT {_select_list(columns)} "
            f"FROM unnest({_array_params(columns)}) AS u({names})"
        )
        params = _column_arrays(columns, rows)
        if "RETURNING" in suffix.upper():
            return connection.query(f"{sql} {suffix}", params)
        connection.execute(f"{sql} {suffix}".rstrip(), params)
        return []

    def update_many(
        self,
        connection: Connection,
        table: str,
        key: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        if not rows:
            return
        all_columns = [*columns, (key, "bigint")]
        names = ", ".join(name for name, _ in all_columns)
        assignments = ", ".join(
            f"{name} = u.{name}::jsonb" if kind == "jsonb" else f"{name} = u.{name}"
            for name, kind in columns
        )
        connection.execute(
            f"UPDATE {table} SET {assignments} FROM unnest({_array_params(all_columns)}) "
            f"AS u({names}) WHERE {table}.{key} = u.{key}",
            _column_arrays(all_columns, rows),
        )

    def lock_for_migrations(self, connection: Connection) -> None:
        connection.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))


def _select_list(columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(
        f"u.{name}::jsonb" if kind == "jsonb" else f"u.{name}" for name, kind in columns
    )


def _array_params(columns: Sequence[tuple[str, str]]) -> str:
    # JSON travels as text and is cast per element: a jsonb[] parameter would need Jsonb
    # wrappers for every value.
    return ", ".join(f"?::{'text' if kind == 'jsonb' else kind}[]" for _, kind in columns)


def _column_arrays(
    columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> list[list[Any]]:
    arrays: list[list[Any]] = [list(values) for values in zip(*rows, strict=True)]
    for i, (_, kind) in enumerate(columns):
        if kind == "jsonb":
            arrays[i] = [None if v is None else _encode(v).decode() for v in arrays[i]]
    return arrays


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
