"""The store's exceptions, all under :class:`pushwire.PushwireError`.

::

    PushwireError
    └── StoreError                         anything the store could not do
        ├── DatabaseUnavailableError       cannot connect, locked too long, disk error
        ├── SchemaVersionError             the schema is older (run migrations) or newer than us
        ├── UnknownApplicationError        no application by that name (also a LookupError)
        ├── UnknownEndpointError           no endpoint for that application and token
        ├── UnknownRunError                no send run with that id
        ├── MissingClientError             a send needs a client for an application
        └── StoreInputError (ValueError)   bad input: ``field`` names it, ``index`` the row
            ├── InvalidTokenError          a token malformed for its provider
            │   └── InvalidSubscriptionError   a Web Push subscription's endpoint or keys
            └── InvalidFilterError         a segment filter that cannot be understood

Every write is one transaction: when one of these is raised, nothing was written.
"""

from __future__ import annotations

from .._errors import PushwireError

__all__ = [
    "DatabaseUnavailableError",
    "InvalidFilterError",
    "InvalidSubscriptionError",
    "InvalidTokenError",
    "MissingClientError",
    "SchemaVersionError",
    "StoreError",
    "StoreInputError",
    "UnknownApplicationError",
    "UnknownEndpointError",
    "UnknownRunError",
]


class StoreError(PushwireError):
    """Base of every endpoint-store error."""


class DatabaseUnavailableError(StoreError):
    """The database cannot be reached or used (connection refused, timeout, locked, I/O)."""


class SchemaVersionError(StoreError):
    """The database schema does not match this version of pushwire."""


class UnknownApplicationError(StoreError, LookupError):
    """No application with that name: add it first (``Store.put_application``)."""


class UnknownEndpointError(StoreError, LookupError):
    """No endpoint for that application and token."""


class UnknownRunError(StoreError, LookupError):
    """No send run with that id."""


class MissingClientError(StoreError):
    """A store-driven send selected endpoints of an application it was given no client for."""


class StoreInputError(StoreError, ValueError):
    """An argument is invalid; ``field`` names it and ``index`` the row of a batch."""


class InvalidTokenError(StoreInputError):
    """A device token is malformed for its application's provider."""


class InvalidSubscriptionError(InvalidTokenError):
    """A Web Push subscription is malformed: ``field`` is ``endpoint`` (not an https URL),
    ``p256dh`` (not base64url of a 65-byte uncompressed P-256 point) or ``auth`` (not
    base64url of 16 bytes)."""


class InvalidFilterError(StoreInputError):
    """A segment filter is malformed."""
