"""SQLite backend: the default, a single file, no server (stdlib ``sqlite3``).

WAL mode lets readers (a send paging through endpoints, another process listing them) go on
while one writer commits. Write transactions start with ``BEGIN IMMEDIATE``, which takes the
write lock up front: a unit of work that reads rows and then updates them cannot be overtaken
by another writer in between, in this process or another one (others wait up to
``busy_timeout``).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import msgspec

from .backend import Connection, Database, T
from .errors import DatabaseUnavailableError, StoreError

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

#: Parameters per statement, under SQLite's limit (32,766 since 3.32).
_MAX_PARAMETERS = 30_000

# Errors that mean the database cannot be used right now, not that a statement is wrong.
_UNAVAILABLE = re.compile(r"locked|busy|unable to open|disk|read-?only|I/O|malformed", re.I)


class _SQLiteConnection(Connection):
    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


class SQLiteDatabase(Database):
    """One connection per store, shared by its threads under a lock."""

    dialect: ClassVar[str] = "sqlite"
    for_update: ClassVar[str] = ""
    token_order: ClassVar[str] = "token"  # BINARY collation: byte order

    def __init__(self, path: str, *, busy_timeout: float = 30.0) -> None:
        self.path = path
        # SQLAlchemy's spelling: three slashes then the path (a fourth for an absolute one).
        self.display_url = path if path == ":memory:" else "sqlite:///" + path
        self._lock = threading.RLock()
        try:
            conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise DatabaseUnavailableError(f"cannot open SQLite database {path}: {e}") from None
        try:
            if path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across application crashes in WAL mode (only a power loss
            # may lose the last transactions), and much faster than FULL.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as e:
            conn.close()
            raise DatabaseUnavailableError(f"cannot use SQLite database {path}: {e}") from None
        self._conn: sqlite3.Connection | None = conn

    def __repr__(self) -> str:
        return f"SQLiteDatabase({self.path!r})"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the store is closed")
        return self._conn

    def write(self, work: Callable[[Connection], T]) -> T:
        return self._transaction("BEGIN IMMEDIATE", work)

    def read(self, work: Callable[[Connection], T]) -> T:
        return self._transaction("BEGIN", work)

    def _transaction(self, begin: str, work: Callable[[Connection], T]) -> T:
        with self._lock:
            conn = self._connection()
            try:
                conn.execute(begin)
                result = work(_SQLiteConnection(conn))
                conn.execute("COMMIT")
                return result
            except BaseException as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.OperationalError) and _UNAVAILABLE.search(str(e)):
                    raise DatabaseUnavailableError(f"SQLite database {self.path}: {e}") from e
                if isinstance(e, sqlite3.Error):
                    raise StoreError(f"SQLite database {self.path}: {e}") from e
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def json_param(self, value: Any) -> Any:
        if not value and isinstance(value, dict):
            return "{}"  # most data and attributes: skip the encoder
        return _encode(value).decode()

    def json_value(self, raw: Any) -> Any:
        return _decode(raw)

    def in_condition(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)

    def insert_many(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
        suffix: str = "",
    ) -> list[tuple[Any, ...]]:
        if not rows:
            return []
        json_columns = [i for i, (_, kind) in enumerate(columns) if kind == "jsonb"]
        one = "(" + ", ".join("?" * len(columns)) + ")"
        names = ", ".join(name for name, _ in columns)
        per_statement = max(1, _MAX_PARAMETERS // len(columns))
        returned: list[tuple[Any, ...]] = []
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params: list[Any] = []
            for row in chunk:
                values = list(row)
                for i in json_columns:
                    values[i] = self.json_param(values[i])
                params += values
            sql = f"INSERT INTO {table} ({names}) VALUES " + ", ".join([one] * len(chunk))
            if suffix:
                returned += connection.query(f"{sql} {suffix}", params)
            else:
                connection.execute(sql, params)
        return returned

    def update_many(
        self,
        connection: Connection,
        table: str,
        key: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        json_columns = [i for i, (_, kind) in enumerate(columns) if kind == "jsonb"]
        assignments = ", ".join(f"{name} = ?" for name, _ in columns)
        encoded = []
        for row in rows:
            values = list(row)
            for i in json_columns:
                values[i] = self.json_param(values[i])
            encoded.append(values)
        connection.executemany(f"UPDATE {table} SET {assignments} WHERE {key} = ?", encoded)

    def lock_for_migrations(self, connection: Connection) -> None:
        """Nothing to do: BEGIN IMMEDIATE already excludes other writers."""

    def attribute_condition(self, key: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        # json_each over a string yields that one value, over an array each element.
        marks = ", ".join("?" * len(values))
        sql = (
            "EXISTS (SELECT 1 FROM json_each(endpoints.attributes, ?) AS attribute "
            f"WHERE attribute.value IN ({marks}))"
        )
        return sql, [f'$."{key}"', *values]
