"""Constants, token shapes and the expected outcome counts of every scenario."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCHES = REPO / "benches"
ENTRY_POINT = BENCHES / "throughput.py"
MOCK_BIN = REPO / "target" / "release" / "pushwire-mock"
DEFAULT_OUT = BENCHES / "RESULTS.md"

KEY_ID = "ABC123DEFG"
TEAM_ID = "TEAM123456"
TOPIC = "com.example.bench"
PAYLOAD = {"aps": {"alert": {"title": "Bench", "body": "Hello from the benchmark"}}}
PAYLOAD_BYTES = json.dumps(PAYLOAD, separators=(",", ":")).encode()
# FCM: a service account with a fresh RSA key; the mock checks its RS256 OAuth2 assertions.
FCM_PROJECT = "bench-project"
FCM_EMAIL = f"bench@{FCM_PROJECT}.iam.gserviceaccount.com"
FCM_NOTIFICATION = {"title": "Bench", "body": "Hello from the benchmark"}
FCM_DATA = {"k": "v"}

# Token prefixes the servers treat specially (hex, as APNs tokens are; no bulk token, which
# starts with 0s, and no warm-up token, which starts with f, has them).
HANG_PREFIX = "dead"  # mock: never answered
DELAY_PREFIX = "de1a"  # mock: answered LATENCY_MS late
UNREGISTERED_PREFIX = "a410"  # mock and nginx: 410 Unregistered with a timestamp
BAD_TOKEN_PREFIX = "ba40"  # mock and nginx: 400 BadDeviceToken
HANG_EVERY = 100  # 1% hung
REJECT_EVERY = 20  # 5% rejected: half 410, half 400
HANG_REQUEST_TIMEOUT = 2.0
LATENCY_MS = 40
MOCK_RULES = [
    f"{HANG_PREFIX}=hang",
    f"{DELAY_PREFIX}=delay:{LATENCY_MS}",
    f"{UNREGISTERED_PREFIX}=unregistered",
    f"{BAD_TOKEN_PREFIX}=bad-token",
]

DELIVERED = "delivered"
TIMEOUT = "timeout"
UNREGISTERED = "410 Unregistered"
BAD_TOKEN = "400 BadDeviceToken"

CHILD_TIMEOUT = 600.0
MAX_CONNECTIONS = 4
#: What the pushwire mock advertises (SETTINGS_MAX_CONCURRENT_STREAMS, its default) and what
#: nginx is configured with (http2_max_concurrent_streams).
SERVER_MAX_STREAMS = 1000
PUSHWIRE_MAX_IN_FLIGHT = 10_000
AIOAPNS_CONCURRENCY = 1000
HTTPX_CONCURRENCY = 1000
#: httpcore (httpx's HTTP/2) never opens more than this many streams on one connection.
HTTPX_STREAMS_PER_CONNECTION = 100
SINGLE_SEND_TASKS = 10_000
# Warm-up opens connections and mints the JWT outside the timed window; its tokens are distinct.
WARMUP = 1000
#: httpx is slow (hundreds per second): a smaller warm-up still opens every connection.
HTTPX_WARMUP = 200
WARMUP_TOKEN_BASE = 0xF << 252
# Stream latencies are sampled so percentile maths never costs more memory than the stream.
STREAM_LATENCY_SAMPLES = 100_000
# h2load cycles through a list of this many distinct URIs (per connection, from the first).
H2LOAD_URIS = 200
# Other processes' average load (cores) above which the report warns that rates are depressed.
BUSY_MACHINE_CORES = 0.25


def device_token(i: int) -> str:
    return f"{i:064x}"


def hangs(i: int) -> bool:
    return i % HANG_EVERY == 0


def hang_token(i: int) -> str:
    """1 token in HANG_EVERY hangs; the others are the bulk tokens."""
    return f"{HANG_PREFIX}{i:060x}" if hangs(i) else device_token(i)


def latency_token(i: int) -> str:
    return f"{DELAY_PREFIX}{i:060x}"


def rejected_token(i: int) -> str:
    """5%: i % 20 == 0 is rejected, alternately 410 Unregistered and 400 BadDeviceToken."""
    if i % (2 * REJECT_EVERY) == 0:
        return f"{UNREGISTERED_PREFIX}{i:060x}"
    if i % REJECT_EVERY == 0:
        return f"{BAD_TOKEN_PREFIX}{i:060x}"
    return device_token(i)


def fcm_token(i: int, kind: str = "tok") -> str:
    """A registration-token-shaped string (163 characters), distinct per ``i`` and ``kind``."""
    return f"{kind}{i:09d}:APA91b" + "x" * 140


#: The token of notification i in each APNs scenario.
TOKENS: dict[str, Callable[[int], str]] = {
    "bulk": device_token,
    "latency-40ms": latency_token,
    "rejected-5pct": rejected_token,
    "hang": hang_token,
    "stream-1m": device_token,
    "single-send-10k": device_token,
    "wire-bytes": device_token,
    "stream-10m": device_token,
}


def expected_outcome(token: str) -> str:
    """What both servers answer for this token."""
    prefix = token[:4].lower()
    if prefix == HANG_PREFIX:
        return TIMEOUT
    if prefix == UNREGISTERED_PREFIX:
        return UNREGISTERED
    if prefix == BAD_TOKEN_PREFIX:
        return BAD_TOKEN
    return DELIVERED


def expected_outcomes(tokens: list[str]) -> dict[str, int]:
    return dict(Counter(expected_outcome(t) for t in tokens))


def status_only(outcomes: dict[str, int]) -> dict[str, int]:
    """Outcome counts by HTTP status alone (``delivered`` stays; h2load sees no reasons)."""
    merged: Counter[str] = Counter()
    for key, count in outcomes.items():
        merged[key if key in (DELIVERED, TIMEOUT) else key.split(" ", 1)[0]] += count
    return dict(merged)
