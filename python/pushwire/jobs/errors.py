"""The job queue's exceptions, all under :class:`pushwire.PushwireError`.

::

    PushwireError
    └── JobsError                        anything the job queue could not do
        ├── QueueUnavailableError        Redis cannot be reached or answered with an error
        ├── UnknownJobError              no job with that id (also a LookupError)
        ├── SharedAuthError              a shared credential could not be obtained in time
        ├── MalformedEntryError          a stream entry is not a job chunk (dead-lettered)
        └── JobInputError (ValueError)   bad arguments: ``field`` names it
            └── JobExistsError           a job with that id was already enqueued

An unknown application is :class:`pushwire.store.UnknownApplicationError`. Messages never
contain secrets: a Redis URL is shown without its password.
"""

from __future__ import annotations

from .._errors import PushwireError

__all__ = [
    "JobExistsError",
    "JobInputError",
    "JobsError",
    "MalformedEntryError",
    "QueueUnavailableError",
    "SharedAuthError",
    "UnknownJobError",
]


class JobsError(PushwireError):
    """Base of every job-queue error."""


class QueueUnavailableError(JobsError):
    """Redis cannot be reached (refused, timed out, wrong password) or refused a command."""


class UnknownJobError(JobsError, LookupError):
    """No job with that id in this stream (never enqueued, or expired)."""


class SharedAuthError(JobsError):
    """A credential shared through Redis (APNs JWT, FCM access token) could not be had: the
    worker holding its lease did not publish one in time."""


class MalformedEntryError(JobsError):
    """A stream entry that is not a valid job chunk; it goes to the dead-letter stream."""


class JobInputError(JobsError, ValueError):
    """An argument of an enqueue or a worker setting is invalid; ``field`` names it."""


class JobExistsError(JobInputError):
    """A job with this id exists already: job ids are never reused."""
