"""The endpoint store: device tokens per application and user, disabled when providers say
they are dead (respecting the 410 timestamp), enabled again when the app registers them
again; sends to users and segments with results applied back; change events; statistics.

SQLite by default (a file, zero setup), PostgreSQL for shared deployments
(``pip install 'pushwire[postgres]'``); the same API on both.

=========================== ===============================================================
module                      concern
=========================== ===============================================================
``model``                   applications, endpoints, registrations, events
``validation``              checks on tokens, users, data, attributes
``rules``                   how registrations and verdicts change an endpoint (no SQL)
``schema``                  tables and migrations
``backend``                 what a database must offer; URL -> backend
``sqlite`` / ``postgres``   the two backends
``applications``            application rows
``endpoints`` / ``edits``   endpoint rows: registration and reads / explicit changes
``subscriptions``           Web Push subscriptions (endpoints with keys) for sending
``apply``                   applying send results
``segments``                filters and keyset pagination
``message``                 the provider-neutral message and its rendering
``sending``                 sends through the store
``events``                  the change log and subscribers
``stats``                   send runs and daily KPIs
``credentials``             credential references -> clients
``store``                   :class:`Store`, the facade
=========================== ===============================================================
"""

from __future__ import annotations

from .apply import ApplyReport
from .credentials import client_for, load_credentials
from .endpoints import RegisterCounts
from .errors import (
    DatabaseUnavailableError,
    InvalidFilterError,
    InvalidSubscriptionError,
    InvalidTokenError,
    MissingClientError,
    SchemaVersionError,
    StoreError,
    StoreInputError,
    UnknownApplicationError,
    UnknownEndpointError,
    UnknownRunError,
)
from .message import APNsOverride, ClickAction, FCMOverride, PushMessage, WebPushOverride
from .model import (
    Application,
    AttributeValue,
    Endpoint,
    EndpointEvent,
    EventKind,
    Provider,
    Registration,
)
from .segments import SegmentFilter
from .stats import ApplicationTally, DailyKPI, SendReport, SendRun
from .store import Store, open_store

__all__ = [
    "APNsOverride",
    "Application",
    "ApplicationTally",
    "ApplyReport",
    "AttributeValue",
    "ClickAction",
    "DailyKPI",
    "DatabaseUnavailableError",
    "Endpoint",
    "EndpointEvent",
    "EventKind",
    "FCMOverride",
    "InvalidFilterError",
    "InvalidSubscriptionError",
    "InvalidTokenError",
    "MissingClientError",
    "Provider",
    "PushMessage",
    "RegisterCounts",
    "Registration",
    "SchemaVersionError",
    "SegmentFilter",
    "SendReport",
    "SendRun",
    "Store",
    "StoreError",
    "StoreInputError",
    "UnknownApplicationError",
    "UnknownEndpointError",
    "UnknownRunError",
    "WebPushOverride",
    "client_for",
    "load_credentials",
    "open_store",
]
