"""Errors as RFC 9457 problem documents (``application/problem+json``): every refusal names
its status, a stable ``type``, a human ``detail`` and, for bad input, the ``field`` at fault.
No exception text that could carry a secret reaches a response: pushwire's own messages
never hold secrets, and anything unexpected is answered with a generic 500 (and logged)."""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from .._errors import ConfigurationError, CredentialsError, PayloadError, PushwireError
from ..campaigns.errors import CampaignInputError, CampaignStateError, UnknownCampaignError
from ..jobs.errors import JobInputError, JobsError, QueueUnavailableError
from ..jobs.errors import UnknownJobError as UnknownQueueJobError
from ..store.errors import (
    DatabaseUnavailableError,
    MissingClientError,
    StoreInputError,
    UnknownApplicationError,
    UnknownEndpointError,
    UnknownRunError,
)
from .errors import ApiProblem, KeyInputError, UnknownJobError, UnknownKeyError

log = logging.getLogger("pushwire.server")

PROBLEM_JSON = "application/problem+json"


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    #: The request field at fault, as a path (``tokens[3]``, ``message.badge``).
    field: str | None = None
    #: The row of a batch at fault.
    index: int | None = None


def problem(
    status: int, title: str, detail: str, *, field: str | None = None, index: int | None = None
) -> Problem:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return Problem(f"urn:pushwire:problem:{slug}", title, status, detail, field, index)


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    field: str | None = None,
    index: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    return as_response(problem(status, title, detail, field=field, index=index), headers)


def as_response(body: Problem, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        content=msgspec.json.encode(body),
        status_code=body.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


# (exception class, status, title); the first that matches wins.
_STATUSES: tuple[tuple[type[BaseException], int, str], ...] = (
    (UnknownApplicationError, 404, "Unknown application"),
    (UnknownEndpointError, 404, "Unknown device"),
    (UnknownRunError, 404, "Unknown send run"),
    (UnknownKeyError, 404, "Unknown key"),
    (UnknownJobError, 404, "Unknown job"),
    (UnknownCampaignError, 404, "Unknown campaign"),
    (CampaignStateError, 409, "Campaign state conflict"),
    (CampaignInputError, 422, "Invalid value"),
    (UnknownQueueJobError, 404, "Unknown job"),
    (DatabaseUnavailableError, 503, "Database unavailable"),
    (QueueUnavailableError, 503, "Job queue unavailable"),
    (StoreInputError, 422, "Invalid value"),
    (PayloadError, 422, "Invalid message"),
    (KeyInputError, 422, "Invalid value"),
    (JobInputError, 422, "Invalid value"),
    (MissingClientError, 409, "Application not ready"),
    (CredentialsError, 409, "Application credentials unusable"),
    (ConfigurationError, 409, "Application not ready"),
    (JobsError, 503, "Job queue error"),
)

_AT_PATH = re.compile(r"at `\$\.?([^`]*)`")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]*)`")


def _field_of(message: str, key: str = "") -> str | None:
    """The JSON path at fault (``tokens[3]``, ``events[1].extra``): where msgspec says it
    is (in the message, or the ``key`` Litestar split off it), with the unknown or missing
    field it names."""
    at = _AT_PATH.search(message)
    path = at.group(1) if at else ("" if key in ("", "body", "data") else key)
    named = _UNKNOWN.search(message) or _MISSING.search(message)
    if named:
        return f"{path}.{named.group(1)}" if path else named.group(1)
    return path or None


def pushwire_error(request: Request[Any, Any, Any], exc: PushwireError) -> Response[Any]:
    return as_response(*problem_of(exc, request.method, request.url.path))


def problem_of(exc: PushwireError, method: str, path: str) -> tuple[Problem, dict[str, str]]:
    """The problem document (and headers) answering ``exc``, raised by ``method path``."""
    if isinstance(exc, ApiProblem):
        return problem(exc.status, exc.title, str(exc), field=exc.field), exc.headers
    for kind, status, title in _STATUSES:
        if isinstance(exc, kind):
            return problem(status, title, str(exc), field=exc.field, index=exc.index), {}
    if _from_database_driver(exc):
        # A statement the database refused: the server's fault, not the request's; its text
        # (database URL, SQL) stays in the log.
        log.error("database error on %s %s: %s", method, path, exc)
        return problem(500, "Internal error", "the database refused an operation; it is logged"), {}
    # Another store or engine refusal: the request conflicts with the current state.
    return problem(409, "Conflict", str(exc), field=exc.field, index=exc.index), {}


def _from_database_driver(exc: BaseException) -> bool:
    cause = exc.__cause__
    return cause is not None and type(cause).__module__.split(".")[0] in ("sqlite3", "psycopg")


def validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """A body that is not JSON, or not of the schema (wrong type, unknown or missing field)."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    messages = [str(item.get("message", "")) for item in extra if isinstance(item, dict)]
    keys = [str(item.get("key", "")) for item in extra if isinstance(item, dict)]
    detail = "; ".join(m for m in messages if m) or "the request body is not valid JSON"
    field = next((f for f in map(_field_of, messages, keys) if f), None)
    title = (
        "Malformed JSON" if "malformed" in detail or "truncated" in detail else "Invalid request"
    )
    return problem_response(400, title, detail, field=field)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    titles = {
        400: "Bad request",
        404: "Not found",
        405: "Method not allowed",
        413: "Request body too large",
        415: "Unsupported media type",
    }
    detail = exc.detail if status != 500 else "internal error"
    if status == 400 and re.search(r"truncated|malformed|JSON|decode", str(detail), re.I):
        return problem_response(400, "Malformed JSON", f"the body is not valid JSON: {detail}")
    return problem_response(
        status, titles.get(status, "HTTP error"), str(detail), headers=exc.headers
    )


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return as_response(unexpected_problem(exc, request.method, request.url.path))


def unexpected_problem(exc: Exception, method: str, path: str) -> Problem:
    # The message is not shown: an unexpected exception may carry anything.
    log.error("unexpected error on %s %s: %s", method, path, type(exc).__name__, exc_info=exc)
    return problem(500, "Internal error", "the server failed; it is logged")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    PushwireError: pushwire_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}

#: OpenAPI: the problem document every route may answer.
PROBLEM_MEDIA_TYPE = MediaType.JSON
