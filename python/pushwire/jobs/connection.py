"""Connecting to Redis (redis-py's asyncio client) and turning its errors into ours.

``pip install 'pushwire[redis]'`` installs redis-py; without it, a clear error says so.
URLs: ``redis://[:password@]host:port/db``, ``rediss://`` for TLS, ``unix:///path.sock``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from .errors import JobInputError, QueueUnavailableError

REDIS_URL_VARIABLE = "PUSHWIRE_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def display_url(url: str) -> str:
    """The URL without its password (what messages show)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable Redis URL>"
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + host))


def _redis_module() -> Any:
    try:
        import redis.asyncio
    except ImportError:
        raise JobInputError(
            "the job queue needs redis-py: pip install 'pushwire[redis]'", field="redis_url"
        ) from None
    return redis.asyncio


def client(url: str, *, timeout: float = 10.0) -> Any:
    """A ``redis.asyncio.Redis`` for ``url`` (binary replies). Nothing is contacted yet."""
    module = _redis_module()
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise JobInputError(
            f"the Redis URL must start with redis://, rediss:// or unix://, got "
            f"{display_url(str(url))!r}",
            field="redis_url",
        )
    try:
        return module.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=None,
            health_check_interval=30,
        )
    except ValueError as e:
        raise JobInputError(f"bad Redis URL {display_url(url)!r}: {e}", field="redis_url") from None


@contextmanager
def redis_errors(url: str, doing: str) -> Iterator[None]:
    """Raise :class:`QueueUnavailableError` for any Redis failure, naming the server (no
    password) and what was being done."""
    import redis.exceptions as rex

    try:
        yield
    except rex.AuthenticationError:
        raise QueueUnavailableError(
            f"Redis at {display_url(url)} refused the password while {doing}"
        ) from None
    except (rex.ConnectionError, rex.TimeoutError, OSError) as e:
        raise QueueUnavailableError(
            f"cannot reach Redis at {display_url(url)} while {doing}: {_reason(e)}"
        ) from None
    except rex.ResponseError as e:
        raise QueueUnavailableError(
            f"Redis at {display_url(url)} refused a command while {doing}: {e}"
        ) from None
    except rex.RedisError as e:
        raise QueueUnavailableError(
            f"Redis error at {display_url(url)} while {doing}: {_reason(e)}"
        ) from None


def _reason(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    # redis-py quotes host:port already; keep the message one line.
    return " ".join(text.split())[:300]


@asynccontextmanager
async def connect(url: str, *, timeout: float = 10.0) -> AsyncIterator[Any]:
    """An open, checked (PING) client; closed on exit."""
    redis = client(url, timeout=timeout)
    try:
        with redis_errors(url, "connecting"):
            await redis.ping()
        yield redis
    finally:
        await redis.aclose()
