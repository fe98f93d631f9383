"""pushwire's exceptions: one tree rooted at :class:`PushwireError`.

::

    PushwireError
    ├── ConfigurationError (ValueError)   bad client options, CA file, URL, TLS setup
    ├── CredentialsError                  unreadable / wrong key, certificate or password
    ├── PayloadError (ValueError)         a notification is invalid (names the field and index)
    └── ClientClosedError                 the client was closed
        └── SendInterruptedError          ... during send_stream(): carries the report so far

Rejections by APNs/FCM are not exceptions: they are :class:`pushwire.Result` values with an
``outcome`` and an ``action``. Exceptions mean the call itself could not be carried out.
Messages never contain secrets (keys, JWTs, passwords, OAuth tokens).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._report import BulkReport


class PushwireError(Exception):
    """Base of every pushwire exception."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        index: int | None = None,
    ) -> None:
        super().__init__(message)
        #: The input field at fault (``token``, ``apns-topic``, ``payload``...), when known.
        self.field = field
        #: Position of the offending notification in a batch, when known.
        self.index = index


class ConfigurationError(PushwireError, ValueError):
    """The client's configuration is wrong (base URL, CA file, options). Fix it and retry."""


class CredentialsError(PushwireError):
    """Credentials cannot be used: unreadable key file, wrong key type, bad password..."""


class PayloadError(PushwireError, ValueError):
    """A notification is invalid and was not sent. ``field`` and ``index`` say which."""


class ClientClosedError(PushwireError):
    """The client was closed; create a new one."""


class SendInterruptedError(ClientClosedError):
    """The client was closed during :meth:`~pushwire.APNsClient.send_stream`. ``report``
    holds the outcome of every notification submitted before (``report.total`` of them, each
    exactly once); the rest of the input was not read."""

    def __init__(self, message: str, report: BulkReport) -> None:
        super().__init__(message)
        #: The outcomes of everything submitted before the close.
        self.report = report
