"""The server's exceptions, under :class:`pushwire.PushwireError`.

::

    PushwireError
    └── ServerError
        ├── KeyInputError (ValueError)   a key cannot be created as asked (``field`` says why)
        ├── UnknownKeyError (LookupError)
        ├── UnknownJobError (LookupError)
        └── ApiProblem                   a request refused with an HTTP status (auth, scope,
                                         rate limit, body): becomes a problem document
"""

from __future__ import annotations

from .._errors import PushwireError


class ServerError(PushwireError):
    """Base of the server's errors."""


class KeyInputError(ServerError, ValueError):
    """An API key cannot be created as asked."""


class UnknownKeyError(ServerError, LookupError):
    """No API key with that id."""


class UnknownJobError(ServerError, LookupError):
    """No job with that id (in-process jobs live as long as the server process)."""


class ApiProblem(ServerError):
    """A request refused with ``status``; ``headers`` go with the answer (Retry-After...)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail, field=field)
        self.status = status
        self.title = title
        self.headers = headers or {}
