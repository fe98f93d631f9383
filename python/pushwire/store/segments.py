"""Segments: which endpoints a send or a listing selects, and keyset pagination over them.

A :class:`SegmentFilter` ANDs its parts: applications, providers, user ids and attributes
(each attribute matches when the endpoint's value, or one of its values, is one of those
listed). Endpoints are read in pages ordered by id (``WHERE id > last_seen ORDER BY id
LIMIT n``): each page is one short query whatever the size of the segment, and memory holds
one page, never the segment.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .applications import all_applications
from .backend import Connection, Database
from .endpoints import ENDPOINT_COLUMNS, ENDPOINTS_WITH_APPLICATION, endpoint_from_row
from .errors import InvalidFilterError, StoreInputError, UnknownApplicationError
from .model import Application, Endpoint, Provider
from .validation import check_attribute_key, check_user_id

DEFAULT_PAGE_SIZE = 2000

_APPLICATION_KEYS = ("app", "apps", "application", "applications")
_PROVIDER_KEYS = ("provider", "providers")
_USER_KEYS = ("user", "users", "user_id", "user_ids")


def _strings(value: object, field_name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InvalidFilterError(
        f"{field_name} must be a string or a list of strings", field=field_name
    )


@dataclass(frozen=True)
class SegmentFilter:
    """Endpoints to select; an empty filter selects every endpoint.

    ``SegmentFilter(applications=["ios"], attributes={"plan": ["pro", "team"]})``, or from
    text with :meth:`parse`: ``app=ios plan=pro,team user=u1,u2 provider=apns``.
    """

    applications: Sequence[str] = ()
    providers: Sequence[Provider | str] = ()
    user_ids: Sequence[str] = ()
    attributes: Mapping[str, str | Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Normalised in place (frozen: object.__setattr__) so equal filters compare equal.
        apps = _strings(self.applications, "applications")
        raw_providers = self.providers
        if isinstance(raw_providers, str):  # Provider is a str too
            raw_providers = (raw_providers,)
        if not isinstance(raw_providers, (list, tuple)):
            raise InvalidFilterError("providers must be a list", field="providers")
        providers = []
        for p in raw_providers:
            try:
                providers.append(Provider(p))
            except ValueError:
                raise InvalidFilterError(
                    f"provider must be 'apns' or 'fcm', not {p!r}", field="providers"
                ) from None
        users = _strings(self.user_ids, "user_ids")
        for user in users:
            try:
                check_user_id(user)
            except StoreInputError as e:
                raise InvalidFilterError(str(e), field="user_ids") from None
        if not isinstance(self.attributes, Mapping):
            raise InvalidFilterError("attributes must be a mapping", field="attributes")
        attributes: dict[str, tuple[str, ...]] = {}
        for key, values in self.attributes.items():
            try:
                check_attribute_key(key)
            except StoreInputError as e:
                raise InvalidFilterError(str(e), field="attributes") from None
            attributes[key] = _strings(values, f"attributes.{key}")
            if not attributes[key]:
                raise InvalidFilterError(
                    f"attributes.{key} lists no value", field=f"attributes.{key}"
                )
        object.__setattr__(self, "applications", apps)
        object.__setattr__(self, "providers", tuple(providers))
        object.__setattr__(self, "user_ids", users)
        object.__setattr__(self, "attributes", attributes)

    @classmethod
    def parse(cls, text: str) -> SegmentFilter:
        """A filter from text: JSON (``{"applications": [...], "attributes": {...}}``) or
        terms ``key=value[,value...]`` separated by spaces, where key is ``app``,
        ``provider``, ``user`` or an attribute name (``attr.NAME`` or ``attr:NAME`` for an
        attribute named like one of those). ``all`` or an empty string selects everything."""
        text = text.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError as e:
                raise InvalidFilterError(f"segment filter is not valid JSON: {e}") from None
            return cls.from_dict(data)
        if text in ("", "all", "*"):
            return cls()
        try:
            terms = shlex.split(text)
        except ValueError as e:
            raise InvalidFilterError(f"segment filter {text!r}: {e}") from None
        apps: list[str] = []
        providers: list[str] = []
        users: list[str] = []
        attributes: dict[str, list[str]] = {}
        for term in terms:
            key, sep, value = term.partition("=")
            values = [v for v in value.split(",") if v]
            if not sep or not key or not values:
                raise InvalidFilterError(
                    f"segment filter term {term!r} is not key=value[,value...]",
                    field="filter",
                )
            if key in _APPLICATION_KEYS:
                apps += values
            elif key in _PROVIDER_KEYS:
                providers += values
            elif key in _USER_KEYS:
                users += values
            else:
                name = key[len("attr.") :] if key.startswith(("attr.", "attr:")) else key
                attributes.setdefault(name, []).extend(values)
        return cls(apps, providers, users, attributes)

    @classmethod
    def from_dict(cls, data: object) -> SegmentFilter:
        if not isinstance(data, Mapping):
            raise InvalidFilterError("a segment filter must be a JSON object")
        unknown = set(data) - {"applications", "providers", "user_ids", "attributes"}
        if unknown:
            raise InvalidFilterError(
                f"unknown segment filter keys {sorted(unknown)} (known: applications, "
                "providers, user_ids, attributes)"
            )
        return cls(
            applications=data.get("applications", ()),
            providers=data.get("providers", ()),
            user_ids=data.get("user_ids", ()),
            attributes=data.get("attributes", {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what a send run records)."""
        out: dict[str, Any] = {}
        if self.applications:
            out["applications"] = list(self.applications)
        if self.providers:
            out["providers"] = [Provider(p).value for p in self.providers]
        if self.user_ids:
            out["user_ids"] = list(self.user_ids)
        if self.attributes:
            out["attributes"] = {k: list(v) for k, v in self.attributes.items()}
        return out


def selected_applications(connection: Connection, segment: SegmentFilter) -> list[Application]:
    """The applications a filter can select from; named ones must exist."""
    apps = all_applications(connection)
    if segment.applications:
        known = {a.name for a in apps}
        missing = [name for name in segment.applications if name not in known]
        if missing:
            raise UnknownApplicationError(
                f"segment filter names unknown applications: {', '.join(missing)}",
                field="applications",
            )
        apps = [a for a in apps if a.name in segment.applications]
    if segment.providers:
        apps = [a for a in apps if a.provider in segment.providers]
    return apps


def endpoint_conditions(database: Database, segment: SegmentFilter) -> tuple[str, list[Any]]:
    """`` AND ...`` for the user and attribute parts of a filter (applications aside)."""
    sql = ""
    params: list[Any] = []
    if segment.user_ids:
        condition, condition_params = database.in_condition("endpoints.user_id", segment.user_ids)
        sql += f" AND {condition}"
        params += condition_params
    for key, values in segment.attributes.items():
        condition, condition_params = database.attribute_condition(key, list(values))
        sql += f" AND {condition}"
        params += condition_params
    return sql, params


def token_pages(
    database: Database,
    application: Application,
    segment: SegmentFilter,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Iterator[list[str]]:
    """Tokens of the enabled endpoints of ``application`` in the segment, a page at a time."""
    conditions, params = endpoint_conditions(database, segment)
    sql = (
        "SELECT endpoints.id, endpoints.token FROM endpoints "
        f"WHERE endpoints.application_id = ? AND endpoints.enabled{conditions} "
        "AND endpoints.id > ? ORDER BY endpoints.id LIMIT ?"
    )
    after = 0

    def page(c: Connection) -> list[tuple[Any, ...]]:
        return c.query(sql, (application.id, *params, after, page_size))

    while True:
        rows = database.read(page)
        if not rows:
            return
        after = rows[-1][0]
        yield [row[1] for row in rows]
        if len(rows) < page_size:
            return


def has_enabled_endpoints(
    connection: Connection, database: Database, application: Application, segment: SegmentFilter
) -> bool:
    conditions, params = endpoint_conditions(database, segment)
    rows = connection.query(
        "SELECT 1 FROM endpoints WHERE endpoints.application_id = ? "
        f"AND endpoints.enabled{conditions} LIMIT 1",
        (application.id, *params),
    )
    return bool(rows)


def endpoint_pages(
    database: Database,
    segment: SegmentFilter,
    *,
    enabled: bool | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Iterator[list[Endpoint]]:
    """Endpoints of the segment in id order, a page at a time; ``enabled`` None = both."""
    apps = database.read(lambda c: selected_applications(c, segment))
    if not apps:
        return
    conditions, params = endpoint_conditions(database, segment)
    if enabled is not None:
        conditions += " AND endpoints.enabled" if enabled else " AND NOT endpoints.enabled"
    in_apps, app_ids = database.in_condition("endpoints.application_id", [a.id for a in apps])
    sql = (
        f"SELECT {ENDPOINT_COLUMNS} FROM {ENDPOINTS_WITH_APPLICATION} "
        f"WHERE {in_apps}{conditions} "
        "AND endpoints.id > ? ORDER BY endpoints.id LIMIT ?"
    )
    after = 0

    def page(c: Connection) -> list[tuple[Any, ...]]:
        return c.query(sql, (*app_ids, *params, after, page_size))

    while True:
        rows = database.read(page)
        if not rows:
            return
        after = rows[-1][2]  # endpoints.id follows the application name and provider
        yield [endpoint_from_row(database, row) for row in rows]
        if len(rows) < page_size:
            return
