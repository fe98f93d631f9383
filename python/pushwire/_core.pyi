"""Type stubs of the Rust extension. Users import from `pushwire`, never from `_core`."""

import os
from typing import Any, Callable, final

__all__ = ["Engine", "MockServer", "Template", "__version__"]
__version__: str

RawOutcome = tuple[
    int,
    str,
    str,
    int,
    str | None,
    str | None,
    int | None,
    int | None,
    int,
    int,
    float,
    int,
    str | None,
    bool,
    bytes | None,
    int,
]

@final
class Template:
    def __new__(
        cls,
        path: str,
        headers: list[tuple[str, str]],
        payload: bytes,
        token_format: str = "hex",
    ) -> Template: ...
    @staticmethod
    def body_splice(
        path: str,
        headers: list[tuple[str, str]],
        before: bytes,
        after: bytes,
        token_format: str = "opaque",
    ) -> Template: ...
    @staticmethod
    def fixed(
        path: str,
        headers: list[tuple[str, str]],
        payload: bytes,
        keep_body: bool = False,
    ) -> Template: ...
    def body_len(self, token_len: int) -> int: ...

@final
class Engine:
    def __new__(cls, *, worker_threads: int = 1, max_in_flight: int = 10000) -> Engine: ...
    def add_pool(
        self,
        base_url: str,
        *,
        path_prefix: str = ...,
        ca_file: str | os.PathLike[str] | None = None,
        client_cert_pem: bytes | None = None,
        client_key_pem: bytes | None = None,
        identity: str = ...,
        max_connections: int = 4,
        max_streams_per_connection: int = 1000,
        request_timeout: float = 10.0,
        queue_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        dead_after_timeouts: int = 10,
        stream_id_limit: int | None = None,
        backoff_base: float = 0.1,
        backoff_max: float = 30.0,
        max_connect_attempts: int = 5,
        max_retries: int = 5,
        retry_uncertain: bool = False,
        metrics: bool = True,
    ) -> int: ...
    def set_authorization(self, pool: int, value: str | None) -> int: ...
    def retire_connections(self, pool: int) -> None: ...
    def capacity(self) -> int: ...
    def outstanding(self) -> int: ...
    def validate(self, items: list[Any]) -> None: ...
    def submit(self, pool: int, first_id: int, items: list[Any]) -> None: ...
    def validate_tokens(self, template: Template, tokens: list[str]) -> None: ...
    def submit_tokens(
        self, pool: int, first_id: int, template: Template, tokens: list[str]
    ) -> None: ...
    def fileno(self) -> int: ...
    def drain(self, max: int = ...) -> list[RawOutcome]: ...
    def stats(self, pool: int) -> dict[str, int]: ...
    def metrics(self, pool: int) -> dict[str, Any]: ...
    def close(self, grace: float = 0.0) -> None: ...
    @property
    def closed(self) -> bool: ...

@final
class MockServer:
    def __new__(
        cls,
        *,
        port: int = 0,
        max_concurrent_streams: int = 1000,
        start_streams_at_one: bool = False,
        rules: list[str] = ...,
        jwt_keys: list[tuple[str, str, str]] = ...,
        goaway_after_streams: int | None = None,
        response_delay: float = 0.0,
        cert_dir: str | os.PathLike[str] | None = None,
        client_ca_pem: str | None = None,
        jwt_max_age: float = 3600.0,
        token_update_window: float = 1200.0,
        fcm_service_accounts: list[tuple[str, str]] = ...,
        fcm_token_lifetime: float = 3600.0,
        fcm_quota_per_window: int | None = None,
        fcm_quota_window: float = 60.0,
    ) -> MockServer: ...
    @property
    def url(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def ca_file(self) -> str: ...
    @property
    def token_uri(self) -> str: ...
    def received(self, token: str) -> int: ...
    @property
    def total_received(self) -> int: ...
    @property
    def connections_accepted(self) -> int: ...
    @property
    def max_active_streams_seen(self) -> int: ...
    @property
    def refused_streams(self) -> int: ...
    @property
    def cert_connections(self) -> int: ...
    @property
    def token_update_rejections(self) -> int: ...
    @property
    def distinct_tokens(self) -> int: ...
    @property
    def oauth_tokens_issued(self) -> int: ...
    @property
    def quota_rejections(self) -> int: ...
    @property
    def fcm_dry_runs(self) -> int: ...
    def expire_oauth_tokens(self) -> None: ...
    def set_rules(self, rules: list[str]) -> None: ...
    def set_max_concurrent_streams(self, n: int) -> None: ...
    def stop(self) -> None: ...

@final
class WebPushSender:
    def __new__(cls, engine: Engine, new_pool: Callable[[str], int]) -> WebPushSender: ...
    def pools(self) -> list[tuple[str, int]]: ...
    def validate(self, items: list[Any]) -> None: ...
    def validate_to(self, message: Any, subscriptions: list[Any]) -> None: ...
    def submit(self, first_id: int, items: list[Any]) -> None: ...
    def submit_to(self, first_id: int, message: Any, subscriptions: list[Any]) -> None: ...

def webpush_encrypt(p256dh: bytes, auth: bytes, plaintext: bytes, padding: int = 0) -> bytes: ...
def webpush_split_endpoint(endpoint: str) -> tuple[str, str]: ...
def mock_webpush_keys(id: str) -> tuple[bytes, bytes]: ...
def mock_webpush_messages(server: MockServer, id: str) -> list[bytes]: ...
