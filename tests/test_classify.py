"""Classification of results into actions, the 410 rule, burst detection and batch summaries.

The expected tables below are transcribed from /work/shared/protocol.md (§1.5, §1.9, §2) by
hand, independently of ``pushwire.APNS_TABLE``: a change to either side shows up here.
"""

from __future__ import annotations

import importlib
import math
import types
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pushwire
from pushwire import (
    APNS_TABLE,
    Action,
    BadTokenBurstDetector,
    Classification,
    Reason,
    Summary,
    TokenToDrop,
    classify,
    parse_reason,
    should_drop_token,
    summarize,
    tokens_to_drop,
)
from support.util import tokens

Outcome = pushwire.Outcome
# The module itself (pushwire re-exports its tables and functions).
classify_module = importlib.import_module("pushwire._classify")

# APNs 410 timestamp used throughout: 2023-11-14T22:13:20Z, in MILLISECONDS.
TS_MS = 1_700_000_000_000
TS = datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)


def result(
    status: int = 200,
    reason: str | None = None,
    *,
    outcome: Outcome | None = None,
    index: int = 0,
    token: str = "ab" * 32,
    timestamp_ms: int | None = None,
    retry_after: int | None = None,
    maybe_delivered: bool = False,
    body: bytes | None = None,
) -> pushwire.Result:
    if outcome is None:
        outcome = Outcome.DELIVERED if 200 <= status < 300 else Outcome.REJECTED
    return pushwire.Result(
        index,
        token,
        outcome,
        status,
        reason,
        None,
        timestamp_ms,
        retry_after,
        1,
        1,
        0.01,
        1,
        None,
        maybe_delivered,
        body,
    )


def delivered(index: int = 0, token: str = "ab" * 32) -> pushwire.Result:
    return result(200, index=index, token=token)


def bad_device_token(index: int = 0, token: str = "ab" * 32) -> pushwire.Result:
    return result(400, "BadDeviceToken", index=index, token=token)


def timed_out(index: int = 0) -> pushwire.Result:
    return result(0, outcome=Outcome.TIMEOUT, index=index, maybe_delivered=True)


# -- the reason table, transcribed from protocol.md ---------------------------------------------

# §1.5 "Every reason string": (status, reason, class code as printed).
APNS_REASONS = [
    (400, "BadCollapseId", "R"),
    (400, "BadDeviceToken", "T*"),
    (400, "BadExpirationDate", "R"),
    (400, "BadMessageId", "R"),
    (400, "BadPriority", "R"),
    (400, "BadTopic", "C"),
    (400, "DeviceTokenNotForTopic", "T*/C"),
    (400, "DuplicateHeaders", "R"),
    (400, "IdleTimeout", "X"),
    (400, "InvalidPushType", "R/C"),
    (400, "MissingDeviceToken", "R"),
    (400, "MissingTopic", "R/C"),
    (400, "PayloadEmpty", "R"),
    (400, "TopicDisallowed", "C"),
    (403, "BadCertificate", "C"),
    (403, "BadCertificateEnvironment", "C"),
    (403, "ExpiredProviderToken", "A"),
    (403, "Forbidden", "C"),
    (403, "InvalidProviderToken", "C"),
    (403, "MissingProviderToken", "R/C"),
    (403, "UnrelatedKeyIdInToken", "A"),
    (403, "BadEnvironmentKeyIdInToken", "C"),
    (403, "BadEnvironmentKeyInToken", "C"),  # the alternate spelling, same row
    (404, "BadPath", "R"),
    (405, "MethodNotAllowed", "R"),
    (410, "ExpiredToken", "T"),
    (410, "Unregistered", "T"),
    (413, "PayloadTooLarge", "R"),
    (429, "TooManyProviderTokenUpdates", "A"),
    (429, "TooManyRequests", "X"),
    (500, "InternalServerError", "X"),
    (503, "ServiceUnavailable", "X"),
    (503, "Shutdown", "X"),
]

CLASS_CODE_ACTIONS = {
    "T": {Action.DROP_TOKEN},
    "T*": {Action.DROP_TOKEN},  # subject to the burst rule
    "T*/C": {Action.DROP_TOKEN},  # per the brief; the burst rule covers the "C" case
    "C": {Action.FIX_CONFIG},
    "R": {Action.FIX_PAYLOAD},
    "R/C": {Action.FIX_PAYLOAD, Action.FIX_CONFIG},
    "A": {Action.RETRY_AFTER_AUTH},
    "X": {Action.RETRY},
}

# §1.9 broadcast-only errors. protocol.md gives them no class code; these are our reading.
BROADCAST_REASONS = [
    (400, "FeatureNotEnabled", Action.FIX_CONFIG),
    (400, "MissingChannelId", Action.FIX_PAYLOAD),
    (400, "BadChannelId", Action.FIX_PAYLOAD),
    (400, "ChannelNotRegistered", Action.FIX_CONFIG),
    (400, "BadRequestParams", Action.FIX_PAYLOAD),
    (400, "BadRequestPayload", Action.FIX_PAYLOAD),
    (400, "MissingPushType", Action.FIX_PAYLOAD),
    (400, "CannotCreateChannelConfig", Action.FIX_CONFIG),
    (403, "TopicMismatch", Action.FIX_CONFIG),
    (503, "Service Unavailable", Action.RETRY),
    (400, "MissingChannelQueueSize", Action.FIX_PAYLOAD),  # undocumented, status assumed
]

# §2 "Token disposition", APNs row.
DISPOSITION_REMOVE = ["Unregistered", "ExpiredToken", "BadDeviceToken", "DeviceTokenNotForTopic"]
DISPOSITION_CONFIG = [
    "BadTopic",
    "TopicDisallowed",
    "BadCertificate",
    "BadCertificateEnvironment",
    "Forbidden",
    "InvalidProviderToken",
    "BadEnvironmentKeyIdInToken",
    "MissingTopic",
    "InvalidPushType",
]
DISPOSITION_RETRY = [
    "TooManyRequests",
    "InternalServerError",
    "ServiceUnavailable",
    "Shutdown",
    "IdleTimeout",
]
DISPOSITION_RETRY_AFTER_AUTH = ["ExpiredProviderToken", "UnrelatedKeyIdInToken"]

STATUS_OF = {reason: status for status, reason, _ in APNS_REASONS + BROADCAST_REASONS}
ALL_DOCUMENTED = {(status, reason) for status, reason, _ in APNS_REASONS + BROADCAST_REASONS}


@pytest.mark.parametrize(("status", "reason"), sorted(ALL_DOCUMENTED))
def test_every_documented_reason_is_a_reason_member(status, reason):
    member = parse_reason(reason)
    assert isinstance(member, Reason)
    assert member.value == reason
    assert Reason(reason) is member


# FCM v1 errorCodes, protocol.md §4.3 (status, errorCode, expected action), plus the canonical
# UNAUTHENTICATED an expired OAuth token gets (no errorCode).
FCM_REASONS = [
    (400, "INVALID_ARGUMENT", Action.FIX_PAYLOAD),
    (404, "UNREGISTERED", Action.DROP_TOKEN),
    (403, "SENDER_ID_MISMATCH", Action.DROP_TOKEN),
    (429, "QUOTA_EXCEEDED", Action.RETRY),
    (503, "UNAVAILABLE", Action.RETRY),
    (500, "INTERNAL", Action.RETRY),
    (401, "THIRD_PARTY_AUTH_ERROR", Action.FIX_CONFIG),
    (401, "APNS_AUTH_ERROR", Action.FIX_CONFIG),
    (401, "UNAUTHENTICATED", Action.RETRY_AFTER_AUTH),
]
FCM_CODES = {reason for _, reason, _ in FCM_REASONS} | {"UNSPECIFIED_ERROR"}


def test_reason_members_are_exactly_the_documented_strings():
    documented = {reason for _, reason in ALL_DOCUMENTED} | FCM_CODES
    assert {r.value for r in Reason} == documented


@pytest.mark.parametrize(("status", "reason", "action"), FCM_REASONS)
def test_every_fcm_error_code_is_classified(status, reason, action):
    r = result(status, reason)
    assert classify(r).action is action
    assert isinstance(classify(r).reason, Reason)


def test_fcm_invalid_argument_drops_the_token_only_when_fcm_blames_the_token():
    token_body = (
        b'{"error":{"code":400,"message":"The registration token is not a valid FCM '
        b'registration token","status":"INVALID_ARGUMENT","details":[{"errorCode":'
        b'"INVALID_ARGUMENT"}]}}'
    )
    payload_body = (
        b'{"error":{"code":400,"message":"Invalid value at \'message.data[0].value\'",'
        b'"status":"INVALID_ARGUMENT"}}'
    )
    bad_token = result(400, "INVALID_ARGUMENT", body=token_body)
    bad_payload = result(400, "INVALID_ARGUMENT", body=payload_body)
    assert classify(bad_token).action is Action.DROP_TOKEN
    assert classify(bad_payload).action is Action.FIX_PAYLOAD


def test_fcm_quota_backs_off_at_least_a_minute_unless_told_otherwise():
    quota = result(429, "QUOTA_EXCEEDED")
    assert classify(quota).retry_after == 60.0
    told = result(429, "QUOTA_EXCEEDED", retry_after=120)
    assert classify(told).retry_after == 120


def test_table_rows_are_exactly_the_documented_pairs():
    assert set(APNS_TABLE) == ALL_DOCUMENTED


def test_names_of_a_few_members():
    assert Reason.BAD_DEVICE_TOKEN == "BadDeviceToken"
    assert Reason.SERVICE_UNAVAILABLE_BROADCAST.value == "Service Unavailable"
    assert Reason.BAD_ENVIRONMENT_KEY_ID_IN_TOKEN.value == "BadEnvironmentKeyIdInToken"
    assert Reason.BAD_ENVIRONMENT_KEY_IN_TOKEN.value == "BadEnvironmentKeyInToken"
    assert Reason.MISSING_CHANNEL_QUEUE_SIZE.value == "MissingChannelQueueSize"
    assert Action.DROP_TOKEN.value == "drop_token"
    assert Action.RETRY_AFTER_AUTH.value == "retry_after_auth"


@pytest.mark.parametrize(("status", "reason", "code"), APNS_REASONS)
def test_apns_reasons_follow_their_class_code(status, reason, code):
    verdict = classify(result(status, reason))
    assert verdict.action in CLASS_CODE_ACTIONS[code]
    assert verdict.reason is Reason(reason)


@pytest.mark.parametrize(("status", "reason", "action"), BROADCAST_REASONS)
def test_broadcast_reasons(status, reason, action):
    verdict = classify(result(status, reason))
    assert verdict.action is action
    assert verdict.reason is Reason(reason)


@pytest.mark.parametrize(
    ("reasons", "action"),
    [
        (DISPOSITION_REMOVE, Action.DROP_TOKEN),
        (DISPOSITION_CONFIG, Action.FIX_CONFIG),
        (DISPOSITION_RETRY, Action.RETRY),
        (DISPOSITION_RETRY_AFTER_AUTH, Action.RETRY_AFTER_AUTH),
    ],
)
def test_token_disposition_table(reasons, action):
    for reason in reasons:
        assert classify(result(STATUS_OF[reason], reason)).action is action, reason


@pytest.mark.parametrize(("key", "row"), list(APNS_TABLE.items()))
def test_every_row_has_one_human_sentence(key, row):
    action, description = row
    assert isinstance(action, Action)
    assert description[0].isupper() and description.endswith(".")
    assert "{" not in description and "\n" not in description


def test_apples_never_retry_list_is_not_retried():
    for reason in [
        "BadDeviceToken",
        "DeviceTokenNotForTopic",
        "Forbidden",
        "ExpiredToken",
        "Unregistered",
        "PayloadTooLarge",
    ]:
        verdict = classify(result(STATUS_OF[reason], reason))
        assert not verdict.retryable and verdict.retry_after is None, reason


# -- unknown reasons and status fallbacks -------------------------------------------------------


def test_parse_reason_keeps_unknown_strings():
    assert parse_reason(None) is None
    assert parse_reason("Unregistered") is Reason.UNREGISTERED
    unknown = "BrandNewReason2027"
    assert parse_reason(unknown) is unknown
    # Case and whitespace matter: APNs strings are exact.
    assert parse_reason("unregistered") == "unregistered"
    assert not isinstance(parse_reason("unregistered"), Reason)
    assert parse_reason("ServiceUnavailable ") == "ServiceUnavailable "
    assert parse_reason("") == ""


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (200, Action.DELIVERED),
        (204, Action.DELIVERED),
        (400, Action.FIX_PAYLOAD),
        (404, Action.FIX_PAYLOAD),
        (405, Action.FIX_PAYLOAD),
        (413, Action.FIX_PAYLOAD),
        (403, Action.FIX_CONFIG),
        (410, Action.DROP_TOKEN),
        (429, Action.RETRY),
        (500, Action.RETRY),
        (502, Action.RETRY),
        (503, Action.RETRY),
        (504, Action.RETRY),
        (599, Action.RETRY),
        (0, Action.FIX_CONFIG),
        (301, Action.FIX_CONFIG),
        (401, Action.FIX_CONFIG),
        (418, Action.FIX_CONFIG),
        (600, Action.FIX_CONFIG),
        (-1, Action.FIX_CONFIG),
    ],
)
@pytest.mark.parametrize("reason", [None, "SomethingApple2030Invented", ""])
def test_status_fallback_for_unknown_or_missing_reasons(status, action, reason):
    verdict = classify(result(status, reason, outcome=Outcome.REJECTED))
    assert verdict.action is action
    assert verdict.reason == reason
    assert not isinstance(verdict.reason, Reason)
    assert str(status) in verdict.description


def test_known_reason_on_an_unexpected_status_follows_the_status():
    # A 5xx never deletes a token, whatever the body says.
    verdict = classify(result(500, "Unregistered"))
    assert verdict.action is Action.RETRY
    assert verdict.reason is Reason.UNREGISTERED


def test_unknown_reason_is_shown_escaped_and_bounded():
    weird = "\u202eevil\x00" + "x" * 10_000
    verdict = classify(result(400, weird))
    assert verdict.reason is weird
    assert len(verdict.description) < 300
    assert "\x00" not in verdict.description and "\u202e" not in verdict.description


def test_delivered():
    verdict = classify(delivered())
    assert verdict.action is Action.DELIVERED
    assert verdict.reason is None and verdict.retry_after is None
    assert verdict.drop_token_if_registered_before is None


# -- outcomes without a response ----------------------------------------------------------------


def test_timeout_is_retried_but_may_duplicate():
    verdict = classify(result(0, outcome=Outcome.TIMEOUT, maybe_delivered=True))
    assert verdict.action is Action.RETRY
    assert "may have delivered" in verdict.description and "duplicate" in verdict.description


def test_failed_before_sending_is_safe_to_retry():
    verdict = classify(result(0, outcome=Outcome.FAILED, maybe_delivered=False))
    assert verdict.action is Action.RETRY
    assert "safe" in verdict.description and "duplicate" not in verdict.description


def test_failed_after_sending_may_duplicate():
    verdict = classify(result(0, outcome=Outcome.FAILED, maybe_delivered=True))
    assert verdict.action is Action.RETRY
    assert "duplicate" in verdict.description


def test_raw_outcome_strings_work_too():
    raw = types.SimpleNamespace(
        outcome="failed",
        status=0,
        reason=None,
        timestamp_ms=None,
        retry_after=None,
        maybe_delivered=False,
    )
    assert classify(raw).action is Action.RETRY  # type: ignore[arg-type]


# -- retry delays -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "delay"),
    [
        (429, "TooManyRequests", 60.0),
        (429, None, 60.0),
        (500, "InternalServerError", 1.0),
        (503, "ServiceUnavailable", 1.0),
        (503, "Shutdown", 1.0),
        (400, "IdleTimeout", 1.0),
        (403, "ExpiredProviderToken", 1.0),
    ],
)
def test_default_retry_delays(status, reason, delay):
    assert classify(result(status, reason)).retry_after == delay


def test_retry_after_header_is_honoured():
    assert classify(result(429, "TooManyRequests", retry_after=5)).retry_after == 5.0
    assert classify(result(503, "ServiceUnavailable", retry_after=120)).retry_after == 120.0
    assert classify(result(503, "ServiceUnavailable", retry_after=0)).retry_after == 0.0


def test_nonsense_retry_after_header_is_ignored():
    assert classify(result(503, "ServiceUnavailable", retry_after=-3)).retry_after == 1.0
    header = result(503, "ServiceUnavailable", retry_after=10**400)
    assert classify(header).retry_after == 1.0


def test_retry_after_is_only_set_for_retries():
    for verdict in [
        classify(result(400, "PayloadEmpty", retry_after=30)),
        classify(result(410, "Unregistered", timestamp_ms=TS_MS, retry_after=30)),
        classify(delivered()),
    ]:
        assert verdict.retry_after is None


# -- 410 timestamps and the drop rule -----------------------------------------------------------


def unregistered(timestamp_ms: int | None = TS_MS, token: str = "ab" * 32) -> pushwire.Result:
    return result(410, "Unregistered", timestamp_ms=timestamp_ms, token=token)


def test_410_carries_its_timestamp_in_milliseconds():
    verdict = classify(unregistered())
    assert verdict.action is Action.DROP_TOKEN
    assert verdict.drop_token_if_registered_before == TS_MS
    assert classify(bad_device_token()).drop_token_if_registered_before is None


@pytest.mark.parametrize(
    ("registered", "drop"),
    [
        # timezone-aware
        (TS - timedelta(seconds=1), True),
        (TS + timedelta(seconds=1), False),
        (TS, False),  # at the very instant: not "before"
        (TS - timedelta(microseconds=500), True),
        (TS + timedelta(microseconds=500), False),
        # aware, not UTC: 03:13:19+05:00 is 22:13:19Z, a later wall clock but an earlier instant
        (datetime(2023, 11, 15, 3, 13, 19, tzinfo=timezone(timedelta(hours=5))), True),
        (datetime(2023, 11, 15, 3, 13, 21, tzinfo=timezone(timedelta(hours=5))), False),
        (datetime(2023, 11, 14, 20, 13, 21, tzinfo=timezone(timedelta(hours=-2))), False),
        # naive: taken as UTC
        (datetime(2023, 11, 14, 22, 13, 19), True),
        (datetime(2023, 11, 14, 22, 13, 21), False),
        # epoch milliseconds
        (TS_MS - 1, True),
        (TS_MS, False),
        (TS_MS + 1, False),
        (TS_MS - 0.5, True),
        (float(TS_MS + 60_000), False),
        # unknown registration time
        (None, True),
    ],
)
def test_410_rule(registered, drop):
    assert should_drop_token(unregistered(), registered) is drop


def test_410_rule_matches_the_result_timestamp_property():
    # Result.timestamp is the same instant as timestamp_ms, so it is a valid boundary.
    res = unregistered()
    assert res.timestamp == TS
    assert should_drop_token(res, res.timestamp - timedelta(milliseconds=1))
    assert not should_drop_token(res, res.timestamp)


def test_no_timestamp_means_drop():
    assert should_drop_token(unregistered(timestamp_ms=None), TS + timedelta(days=365))
    assert should_drop_token(bad_device_token(), TS + timedelta(days=365))
    assert should_drop_token(result(410, "SomethingNew"), None)


def test_only_drop_token_results_are_dropped():
    for res in [delivered(), result(500), result(400, "PayloadEmpty"), timed_out()]:
        assert not should_drop_token(res, None)


@pytest.mark.parametrize("seconds", [1_700_000_000, 1_700_000_000.0, 0, -5])
def test_epoch_seconds_are_refused_not_misread(seconds):
    with pytest.raises(ValueError, match="MILLISECONDS"):
        should_drop_token(unregistered(), seconds)


@pytest.mark.parametrize("bad", [math.nan, math.inf, TS_MS * 1000])
def test_implausible_epoch_values_are_refused(bad):
    with pytest.raises(ValueError):
        should_drop_token(unregistered(), bad)


@pytest.mark.parametrize("bad", ["2023-11-14", True, TS.date()])
def test_registration_time_of_the_wrong_type_is_refused(bad):
    with pytest.raises(TypeError):
        should_drop_token(unregistered(), bad)


def test_tokens_to_drop_applies_the_410_rule():
    alive, dead, unknown, bad = tokens(4)
    results = [
        unregistered(token=alive),
        delivered(),
        unregistered(token=dead),
        unregistered(token=unknown),
        bad_device_token(token=bad),
    ]
    registered_at = {
        alive: TS + timedelta(minutes=5),  # re-registered after the 410: keep
        dead: TS_MS - 86_400_000,  # a day before, in ms: drop
        bad: TS + timedelta(days=9),  # BadDeviceToken has no timestamp: drop
    }
    dropped = tokens_to_drop(results, registered_at)
    assert [t.token for t in dropped] == [dead, unknown, bad]
    assert dropped[0] == TokenToDrop(dead, Reason.UNREGISTERED, TS_MS)
    assert dropped[2] == TokenToDrop(bad, Reason.BAD_DEVICE_TOKEN, None)
    # Without registration times every dead token is listed.
    assert [t.token for t in tokens_to_drop(results)] == [alive, dead, unknown, bad]


# -- burst detection ----------------------------------------------------------------------------


def interleaved(total: int, bad_every: int, bad_count: int) -> list[pushwire.Result]:
    names = tokens(total)
    out = []
    for i, token in enumerate(names):
        is_bad = i % bad_every == 0 and i // bad_every < bad_count
        out.append(bad_device_token(i, token) if is_bad else delivered(i, token))
    return out


def test_burst_of_bad_device_tokens_is_a_configuration_bug():
    names = tokens(1000)
    results = [
        bad_device_token(i, names[i]) if i % 5 < 3 else delivered(i, names[i]) for i in range(990)
    ]
    results += [unregistered(token=names[i]) for i in range(990, 1000)]
    summary = summarize(results)
    bad = {r.token for r in results if r.reason == "BadDeviceToken"}
    assert len(bad) == 594
    assert summary.environment_mismatch_suspected
    assert not bad & {t.token for t in summary.tokens_to_drop}
    # Real 410s in the same batch are still dropped.
    assert [t.token for t in summary.tokens_to_drop] == names[990:]
    assert any("environment=" in w and "sandbox" in w for w in summary.warnings)
    assert tokens_to_drop(results) == summary.tokens_to_drop


def test_exactly_600_of_1000_bad_device_tokens():
    names = tokens(1000)
    results = [
        bad_device_token(i, names[i]) if i < 600 else delivered(i, names[i]) for i in range(1000)
    ]
    summary = summarize(results)
    assert summary.by_reason == {"BadDeviceToken": 600}
    assert summary.environment_mismatch_suspected
    assert summary.tokens_to_drop == []


def test_a_few_bad_device_tokens_are_dropped():
    results = interleaved(1000, bad_every=200, bad_count=5)
    expected = [r.token for r in results if r.reason == "BadDeviceToken"]
    assert len(expected) == 5
    summary = summarize(results)
    assert not summary.environment_mismatch_suspected
    assert [t.token for t in summary.tokens_to_drop] == expected
    assert all(t.reason is Reason.BAD_DEVICE_TOKEN for t in summary.tokens_to_drop)
    assert not any("environment=" in w for w in summary.warnings)


def test_detector_needs_min_count():
    detector = BadTokenBurstDetector()
    for _ in range(19):
        detector.observe(bad_device_token())
    assert not detector.environment_mismatch_suspected
    detector.observe(bad_device_token())
    assert detector.environment_mismatch_suspected
    assert detector.bad_device_tokens_in_window == 20


def test_detector_needs_the_ratio():
    detector = BadTokenBurstDetector()
    for _ in range(21):
        detector.observe(delivered())
    for _ in range(20):
        detector.observe(bad_device_token())
    assert not detector.environment_mismatch_suspected  # 20 / 41 < 0.5
    detector.observe(bad_device_token())
    assert detector.environment_mismatch_suspected  # 21 / 42 == 0.5


def test_unanswered_results_do_not_dilute_the_ratio():
    detector = BadTokenBurstDetector()
    for _ in range(500):
        detector.observe(timed_out())
    for _ in range(20):
        detector.observe(bad_device_token())
    assert detector.answered_in_window == 20
    assert detector.environment_mismatch_suspected


def test_detector_window_slides_and_seen_latches():
    detector = BadTokenBurstDetector(window=100)
    for _ in range(30):
        detector.observe(bad_device_token())
    assert detector.environment_mismatch_suspected and detector.environment_mismatch_seen
    for _ in range(100):
        detector.observe(delivered())
    assert detector.bad_device_tokens_in_window == 0
    assert not detector.environment_mismatch_suspected
    assert detector.environment_mismatch_seen
    detector.reset()
    assert not detector.environment_mismatch_seen
    assert detector.answered_in_window == 0


def test_an_eviction_alone_can_reveal_a_burst():
    detector = BadTokenBurstDetector(threshold_ratio=0.5, min_count=2, window=10)
    for _ in range(8):
        detector.observe(delivered())
    for _ in range(2):
        detector.observe(bad_device_token())
    assert not detector.environment_mismatch_seen  # 2 / 10
    for _ in range(6):
        detector.observe(timed_out())  # evicts six deliveries: 2 / 4
    assert detector.environment_mismatch_suspected and detector.environment_mismatch_seen


@pytest.mark.parametrize(
    "kwargs",
    [{"threshold_ratio": 0}, {"threshold_ratio": 1.5}, {"min_count": 0}, {"window": 0}],
)
def test_detector_refuses_nonsense_settings(kwargs):
    with pytest.raises(ValueError):
        BadTokenBurstDetector(**kwargs)


def test_burst_of_device_token_not_for_topic_is_a_topic_bug():
    names = tokens(100)
    results = [result(400, "DeviceTokenNotForTopic", index=i, token=t) for i, t in enumerate(names)]
    summary = summarize(results)
    assert summary.topic_mismatch_suspected and not summary.environment_mismatch_suspected
    assert summary.tokens_to_drop == []
    assert any("apns-topic" in w for w in summary.warnings)


def test_summarize_accepts_a_custom_detector():
    results = interleaved(100, bad_every=20, bad_count=5)
    assert not summarize(results).environment_mismatch_suspected
    strict = BadTokenBurstDetector(threshold_ratio=0.05, min_count=5)
    summary = summarize(results, detector=strict)
    assert summary.environment_mismatch_suspected
    assert summary.tokens_to_drop == []


# -- summaries ----------------------------------------------------------------------------------


def mixed_batch() -> list[pushwire.Result]:
    names = tokens(12)
    specs = [
        (200, None, Outcome.DELIVERED),
        (410, "Unregistered", Outcome.REJECTED),
        (400, "BadDeviceToken", Outcome.REJECTED),
        (429, "TooManyRequests", Outcome.REJECTED),
        (500, None, Outcome.REJECTED),
        (503, "Shutdown", Outcome.REJECTED),
        (0, None, Outcome.TIMEOUT),
        (0, None, Outcome.FAILED),
        (400, "BadTopic", Outcome.REJECTED),
        (403, "ExpiredProviderToken", Outcome.REJECTED),
        (413, "PayloadTooLarge", Outcome.REJECTED),
        (200, None, Outcome.DELIVERED),
    ]
    return [
        result(
            status,
            reason,
            outcome=outcome,
            index=i,
            token=names[i],
            timestamp_ms=TS_MS if status == 410 else None,
            maybe_delivered=outcome is Outcome.TIMEOUT,
        )
        for i, (status, reason, outcome) in enumerate(specs)
    ]


def test_summary_counts_add_up():
    results = mixed_batch()
    summary = summarize(iter(results))  # any iterable, consumed once
    assert summary.total == 12
    assert sum(summary.by_outcome.values()) == summary.total
    assert sum(summary.by_action.values()) == summary.total
    assert summary.by_outcome == {"delivered": 2, "rejected": 8, "timeout": 1, "failed": 1}
    assert summary.by_action == {
        "delivered": 2,
        "drop_token": 2,
        "retry": 5,
        "fix_config": 1,
        "retry_after_auth": 1,
        "fix_payload": 1,
    }
    assert sum(summary.by_reason.values()) == 8 - 1  # the 500 carried no reason
    assert summary.by_reason["Unregistered"] == 1
    assert summary.retryable == [3, 4, 5, 6, 7, 9]
    assert [t.token for t in summary.tokens_to_drop] == [results[1].token, results[2].token]
    assert summary.tokens_to_drop[0].timestamp_ms == TS_MS
    assert not summary.environment_mismatch_suspected


def test_summary_warnings_name_the_problems():
    warnings = summarize(mixed_batch()).warnings
    text = "\n".join(warnings)
    assert "BadTopic: 1" in text
    assert "ExpiredProviderToken: 1" in text
    assert "PayloadTooLarge: 1" in text
    assert "duplicates" in text  # the timeout


def test_summary_of_nothing():
    summary = summarize([])
    assert summary == Summary()
    assert summary.total == 0 and summary.warnings == []


# -- robustness and performance properties ------------------------------------------------------


def test_common_classifications_are_shared_not_rebuilt():
    assert classify(result(400, "BadDeviceToken")) is classify(result(400, "BadDeviceToken"))
    assert classify(delivered()) is classify(delivered())
    first = classify(unregistered(timestamp_ms=TS_MS))
    second = classify(unregistered(timestamp_ms=TS_MS + 1))
    assert first.drop_token_if_registered_before != second.drop_token_if_registered_before


def test_cache_stays_bounded_under_endless_new_reasons():
    for i in range(5000):
        classify(result(400, f"Novel{i}"))
    assert len(classify_module._CACHE) <= classify_module._CACHE_LIMIT


def test_classification_is_immutable():
    verdict = classify(delivered())
    with pytest.raises(AttributeError):
        verdict.action = Action.RETRY  # type: ignore[misc]


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),  # unhashable
)
statuses = st.one_of(st.sampled_from([0, 200, 400, 403, 404, 410, 429, 500, 503]), anything)
reasons = st.one_of(st.sampled_from([r.value for r in Reason]), anything)
outcomes = st.one_of(st.sampled_from(list(Outcome)), st.sampled_from(["timeout"]), anything)


@settings(max_examples=300, deadline=None)
@given(
    outcome=outcomes,
    status=statuses,
    reason=reasons,
    timestamp_ms=anything,
    retry_after=anything,
    maybe_delivered=anything,
)
def test_classify_never_raises(outcome, status, reason, timestamp_ms, retry_after, maybe_delivered):
    res = pushwire.Result(
        0,
        "ab" * 32,
        outcome,
        status,
        reason,
        None,
        timestamp_ms,
        retry_after,
        0,
        0,
        0.0,
        0,
        None,
        maybe_delivered,
    )
    verdict = classify(res)
    assert isinstance(verdict, Classification)
    assert isinstance(verdict.action, Action)
    assert isinstance(verdict.description, str) and verdict.description
    assert verdict.retry_after is None or (
        math.isfinite(verdict.retry_after) and verdict.retry_after >= 0
    )
    assert (verdict.retry_after is not None) == verdict.retryable
    if isinstance(reason, str):
        assert verdict.reason == reason
    summary = summarize([res])
    assert summary.total == sum(summary.by_action.values()) == 1
    assert should_drop_token(res, None) is (verdict.action is Action.DROP_TOKEN)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=100, max_value=699))
def test_unknown_reasons_survive_verbatim(reason, status):
    verdict = classify(result(status, reason, outcome=Outcome.REJECTED))
    assert verdict.reason == reason
    assert isinstance(verdict.reason, Reason) == (reason in {r.value for r in Reason})


KIND_RESULTS = {
    "ok": delivered(),
    "bad": bad_device_token(),
    "topic": result(400, "DeviceTokenNotForTopic"),
    "other": result(410, "Unregistered", timestamp_ms=TS_MS),
    "timeout": timed_out(),
}


@settings(max_examples=300, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.sampled_from(sorted(KIND_RESULTS)), max_size=300), min_size=1, max_size=3
    ),
    window=st.integers(min_value=1, max_value=60),
    min_count=st.integers(min_value=1, max_value=25),
    threshold_ratio=st.sampled_from([0.05, 0.3, 0.5, 0.8, 1.0]),
)
def test_batch_detection_matches_one_by_one(batches, window, min_count, threshold_ratio):
    # summarize() feeds the detector in bulk and skips blocks that cannot hold a burst;
    # the answer must be exactly that of observing every result in turn.
    settings_ = {"window": window, "min_count": min_count, "threshold_ratio": threshold_ratio}
    bulk, stepwise = BadTokenBurstDetector(**settings_), BadTokenBurstDetector(**settings_)
    for batch in batches:
        results = [KIND_RESULTS[kind] for kind in batch]
        summary = summarize(results, detector=bulk)
        for res in results:
            stepwise.observe(res)
        assert summary.environment_mismatch_suspected == stepwise.environment_mismatch_seen
        assert summary.topic_mismatch_suspected == stepwise.topic_mismatch_seen
        for name in [
            "environment_mismatch_suspected",
            "topic_mismatch_suspected",
            "environment_mismatch_seen",
            "topic_mismatch_seen",
            "bad_device_tokens_in_window",
            "answered_in_window",
        ]:
            assert getattr(bulk, name) == getattr(stepwise, name), name
