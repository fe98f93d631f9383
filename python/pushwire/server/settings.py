"""How a ``pushwire serve`` process is configured (flags of the command, or a test's
arguments), passed to worker processes as JSON."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import msgspec

#: Environment variable carrying the settings to uvicorn worker processes.
SETTINGS_VARIABLE = "PUSHWIRE_SERVE_SETTINGS"


@dataclass(frozen=True)
class ServerSettings:
    """Everything is optional but the database URL."""

    db: str
    #: Redis URL: large sends become jobs on the Redis Streams workers (`pushwire worker`).
    #: Without it, they run in this process.
    redis: str | None = None
    #: The job stream and consumer group `pushwire worker` reads (their defaults).
    stream: str = "pushwire:jobs"
    group: str = "pushwire-workers"
    #: Largest request body, bytes (413 above).
    max_body: int = 1 << 20
    #: Requests per second per key when the key has no limit of its own (None: unlimited).
    rate_limit: int | None = 1000
    #: Origins allowed to call the API from a browser (CORS); none by default.
    cors_origins: tuple[str, ...] = ()
    #: A send to at most this many endpoints is answered with its report; larger ones
    #: become a job.
    sync_send_limit: int = 100
    #: Seconds in-process jobs get to finish when the server stops.
    shutdown_grace: float = 30.0
    #: Console session lifetime, seconds.
    session_seconds: int = 8 * 3600
    #: Provider overrides (a mock server in tests, a proxy): base URLs, OAuth2 token URI
    #: and an extra CA file to trust.
    apns_url: str | None = None
    fcm_url: str | None = None
    token_uri: str | None = None
    ca_file: str | None = None
    request_timeout: float = 10.0
    #: Serve the console at /console.
    console: bool = True
    #: Cookies only over HTTPS (behind a TLS proxy). Off for plain-HTTP local use.
    secure_cookies: bool = False
    #: Answer well-formed, allowed ``POST /v1/devices`` without the framework's layers
    #: (:mod:`pushwire.server.fast_registration`; the same answers). Off: every request
    #: through Litestar (to compare).
    fast_registrations: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    def to_env(self) -> str:
        return msgspec.json.encode(asdict(self)).decode()

    @classmethod
    def from_env(cls) -> ServerSettings:
        raw = os.environ.get(SETTINGS_VARIABLE)
        if not raw:
            raise RuntimeError(f"{SETTINGS_VARIABLE} is not set: start with `pushwire serve`")
        data = msgspec.json.decode(raw)
        data["cors_origins"] = tuple(data.get("cors_origins", ()))
        return cls(**data)
