"""The endpoint store on SQLite and PostgreSQL: registration, users, attributes, events,
results applied with the 410 rule and the burst rule, typed errors and all-or-nothing writes."""

from __future__ import annotations

import itertools
import logging
from datetime import datetime, timedelta, timezone

import pytest

import pushwire
from pushwire import Outcome, PushwireError
from pushwire.store import (
    DatabaseUnavailableError,
    EventKind,
    InvalidFilterError,
    InvalidTokenError,
    Registration,
    SchemaVersionError,
    SegmentFilter,
    Store,
    StoreError,
    StoreInputError,
    UnknownApplicationError,
    UnknownEndpointError,
)
from pushwire.store.clock import to_ms
from pushwire.store.events import EventLog
from pushwire.store.rules import CheckedRegistration, DropVerdict, drop, new_endpoint, register
from support.store import (
    BACKENDS,
    apns_token,
    database_url,
    fcm_token,
    open_store,
    postgres_dsn,
    with_search_path,
)

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    with open_store(request.param, tmp_path) as opened:
        opened.put_application("ios", provider="apns", topic="com.example.app")
        opened.put_application("android", provider="fcm", project_id="demo-project")
        yield opened


def result(
    token: str,
    status: int = 200,
    reason: str | None = None,
    *,
    timestamp: datetime | None = None,
    outcome: Outcome | None = None,
    latency: float = 0.01,
    index: int = 0,
    body: bytes | None = None,
) -> pushwire.Result:
    if outcome is None:
        outcome = Outcome.DELIVERED if status == 200 else Outcome.REJECTED
    timestamp_ms = to_ms(timestamp, "timestamp") if timestamp is not None else None
    return pushwire.Result(
        index, token, outcome, status, reason, None, timestamp_ms, None, 1, 1, latency, 1,
        None, False, body,
    )  # fmt: skip


def kinds(store: Store, **filters) -> list[str]:
    return [e.kind.value for e in store.events(**filters)]


# -- registration -----------------------------------------------------------------------------


def test_register_creates_once_and_is_idempotent(store):
    token = apns_token(1)
    first = store.register("ios", token, user_id="u1", data={"app_version": "5.2"})
    again = store.register("ios", token, user_id="u1", data={"app_version": "5.2"})
    assert again.id == first.id and again.enabled
    assert again.last_registered_at >= first.last_registered_at
    assert again.data == {"app_version": "5.2"} and again.user_id == "u1"
    # A registration that changes nothing is a heartbeat, not an event.
    assert kinds(store, application="ios", token=token) == ["created"]


def test_apns_tokens_are_one_spelling_per_device(store):
    upper = apns_token(0xABC).upper()
    store.register("ios", upper)
    assert store.get("ios", upper.lower()).token == upper.lower()
    assert store.register("ios", upper.lower()).id == store.get("ios", upper).id


def test_registering_again_enables_a_disabled_endpoint(store):
    token = apns_token(2)
    store.register("ios", token)
    disabled = store.disable("ios", token, reason="uninstalled?")
    assert not disabled.enabled and disabled.disabled_reason == "uninstalled?"
    assert disabled.disabled_at is not None
    enabled = store.register("ios", token)
    assert enabled.enabled and enabled.disabled_reason is None and enabled.disabled_at is None
    events = store.events(application="ios", token=token)
    assert [e.kind for e in events] == [EventKind.CREATED, EventKind.DISABLED, EventKind.RE_ENABLED]
    assert events[1].cause == "api" and events[1].details == {"reason": "uninstalled?"}
    assert events[2].details["was_disabled_for"] == "uninstalled?"


def test_registration_by_another_user_moves_the_endpoint(store):
    token = fcm_token(3)
    store.register("android", token, user_id="alice")
    moved = store.register("android", token, user_id="bob")
    assert moved.user_id == "bob"
    assert store.endpoints_of_user("alice") == []
    assert [e.token for e in store.endpoints_of_user("bob")] == [token]
    event = store.events(application="android", token=token)[-1]
    assert event.kind is EventKind.UPDATED
    assert event.details["user_id"] == {"from": "alice", "to": "bob"}
    # Registering without a user keeps the owner; update(user_id=None) detaches it.
    assert store.register("android", token).user_id == "bob"
    assert store.update("android", token, user_id=None).user_id is None


def test_an_older_registration_arriving_late_changes_nothing(store):
    token = apns_token(4)
    store.register("ios", token, user_id="new-owner", registered_at=T0)
    late = store.register("ios", token, user_id="old-owner", registered_at=T0 - timedelta(hours=1))
    assert late.user_id == "new-owner" and late.last_registered_at == T0


def test_a_user_is_reachable_on_every_device_and_provider(store):
    store.register("ios", apns_token(5), user_id="u9")
    store.register("android", fcm_token(5), user_id="u9")
    store.register("android", fcm_token(6), user_id="someone-else")
    store.register("ios", apns_token(6), user_id="u9")
    store.disable("ios", apns_token(6))
    devices = store.endpoints_of_user("u9")
    assert sorted((e.application, e.enabled) for e in devices) == [
        ("android", True),
        ("ios", False),
        ("ios", True),
    ]
    assert {e.provider.value for e in store.endpoints_of_user("u9", enabled_only=True)} == {
        "apns",
        "fcm",
    }


def test_attributes_are_read_merged_and_replaced(store):
    token = apns_token(7)
    store.register("ios", token, attributes={"plan": "pro", "langs": ["en", "fr"]})
    assert store.attributes("ios", token) == {"plan": "pro", "langs": ["en", "fr"]}
    merged = store.set_attributes("ios", token, {"plan": "team", "beta": "yes"})
    assert merged.attributes == {"plan": "team", "langs": ["en", "fr"], "beta": "yes"}
    replaced = store.set_attributes("ios", token, {"plan": "free"}, merge=False)
    assert replaced.attributes == {"plan": "free"}
    assert kinds(store, token=token, application="ios") == ["created", "updated", "updated"]
    # Setting the same values again is no change.
    store.set_attributes("ios", token, {"plan": "free"})
    assert len(store.events(token=token, application="ios")) == 3


def test_delete_leaves_a_trace_and_unknown_endpoints_are_typed_errors(store):
    token = fcm_token(8)
    store.register("android", token, user_id="u1")
    store.delete("android", token)
    assert store.find("android", token) is None
    with pytest.raises(UnknownEndpointError) as info:
        store.get("android", token)
    assert isinstance(info.value, LookupError) and isinstance(info.value, PushwireError)
    with pytest.raises(UnknownEndpointError):
        store.delete("android", token)
    with pytest.raises(UnknownEndpointError):
        store.disable("android", token)
    deleted = store.events(application="android", token=token)[-1]
    assert deleted.kind is EventKind.DELETED and deleted.user_id == "u1"


# -- bad input --------------------------------------------------------------------------------


def test_unknown_application_is_a_typed_error(store):
    with pytest.raises(UnknownApplicationError) as info:
        store.register("watch", apns_token(1))
    assert info.value.field == "application" and "add it first" in str(info.value)
    with pytest.raises(UnknownApplicationError) as info:
        store.register_many([Registration("ios", apns_token(1)), Registration("nope", "ab")])
    assert info.value.index == 1
    with pytest.raises(UnknownApplicationError):
        list(store.endpoints(SegmentFilter(applications=["nope"])))
    assert list(store.endpoints()) == []


@pytest.mark.parametrize(
    ("application", "token", "words"),
    [
        ("ios", "", "empty"),
        ("ios", "xyz" * 20, "hexadecimal"),
        ("ios", "abc", "even number"),
        ("ios", "a" * 2000, "limit 1024"),
        ("android", "has space", "printable ASCII"),
        ("android", 'quote"d', "printable ASCII"),
        ("android", 12345, "must be a string"),
    ],
)
def test_malformed_tokens_are_refused_per_provider(store, application, token, words):
    with pytest.raises(InvalidTokenError) as info:
        store.register(application, token)
    error = info.value
    assert isinstance(error, ValueError) and isinstance(error, StoreError)
    assert error.field == "token" and words in str(error)
    assert list(store.endpoints()) == []


def test_a_bad_row_in_a_batch_writes_nothing(store):
    rows = [Registration("ios", apns_token(i), user_id=f"u{i}") for i in range(100)]
    rows.insert(57, Registration("ios", "not hex"))
    with pytest.raises(InvalidTokenError) as info:
        store.register_many(rows)
    assert info.value.index == 57
    assert list(store.endpoints()) == [] and store.events() == []
    with pytest.raises(StoreInputError) as info:
        store.register_many([{"application": "ios", "token": apns_token(1), "colour": "red"}])
    assert info.value.index == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"user_id": ""}, "user_id"),
        ({"user_id": "a\nb"}, "user_id"),
        ({"data": {"when": datetime.now()}}, "data"),
        ({"data": {"x": "y" * 20_000}}, "data"),
        ({"data": ["not", "a", "dict"]}, "data"),
        ({"attributes": {"plan": 3}}, "attributes.plan"),
        ({"attributes": {"plan": ["ok", 3]}}, "attributes.plan"),
        ({"attributes": {"bad key!": "x"}}, "attributes"),
    ],
)
def test_bad_user_data_and_attributes_are_refused(store, kwargs, field):
    with pytest.raises(StoreInputError) as info:
        store.register("ios", apns_token(1), **kwargs)
    assert info.value.field == field
    assert list(store.endpoints()) == []


def test_a_failure_inside_a_write_rolls_the_whole_transaction_back(store, monkeypatch):
    store.register("ios", apns_token(1), user_id="u1")

    def broken(self, connection, events):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(EventLog, "record", broken)
    with pytest.raises(RuntimeError):
        store.register_many([Registration("ios", apns_token(i)) for i in range(2, 50)])
    with pytest.raises(RuntimeError):
        store.register("ios", apns_token(1), user_id="u2")
    monkeypatch.undo()
    assert [e.token for e in store.endpoints()] == [apns_token(1)]
    assert store.get("ios", apns_token(1)).user_id == "u1"
    assert kinds(store) == ["created"]


def test_application_settings_are_checked(store):
    with pytest.raises(StoreInputError) as info:
        store.put_application("ios2", provider="apns")
    assert info.value.field == "topic"
    with pytest.raises(StoreInputError):
        store.put_application("ios2", provider="apns", topic="t", environment="staging")
    with pytest.raises(StoreInputError):
        store.put_application("fcm2", provider="fcm", topic="com.example")
    with pytest.raises(StoreInputError):
        store.put_application("x", provider="mqtt")
    with pytest.raises(StoreInputError) as info:
        store.put_application(
            "ios2",
            provider="apns",
            topic="t",
            credentials_ref="-----BEGIN PRIVATE KEY-----\nMIG...",
        )
    assert "not the key" in str(info.value)
    with pytest.raises(StoreError):
        store.put_application("ios", provider="fcm")  # tokens of one provider mean nothing
    updated = store.put_application(
        "ios", provider="apns", topic="com.example.app", environment="sandbox"
    )
    assert updated.environment == "sandbox"
    assert [a.name for a in store.applications()] == ["android", "ios"]
    store.register("ios", apns_token(1))
    with pytest.raises(StoreError):
        store.delete_application("ios")
    store.delete_application("android")
    with pytest.raises(UnknownApplicationError):
        store.application("android")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_unreachable_database_is_a_typed_error(backend, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/no/such/dir/store.db"
    else:
        postgres_dsn()  # the server is expected; this one is not there
        url = "postgresql://nobody:secret@127.0.0.1:9/none"
    with pytest.raises(DatabaseUnavailableError) as info:
        Store.open(url, **({"connect_timeout": 2} if backend == "postgresql" else {}))
    assert "secret" not in str(info.value)
    assert isinstance(info.value, StoreError) and isinstance(info.value, PushwireError)


def test_a_database_url_must_be_one_we_know(tmp_path):
    with pytest.raises(StoreInputError):
        Store.open("mysql://localhost/db")
    with pytest.raises(StoreInputError):
        Store.open("")
    with Store.open(str(tmp_path / "plain-path.db")) as store:  # a plain path is SQLite
        assert store.applications() == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_schema_is_migrated_on_first_use_and_checked_otherwise(backend, tmp_path):
    with database_url(backend, tmp_path) as url:
        with pytest.raises(SchemaVersionError) as info:
            Store.open(url, migrate=False)
        assert "pushwire endpoints migrate" in str(info.value)
        with Store.open(url) as store:
            assert store.migrate() == []  # already done on open
            store.put_application("ios", provider="apns", topic="t")
            store.database.write(
                lambda c: c.execute(
                    "INSERT INTO pushwire_schema (version, description, applied_at) "
                    "VALUES (999, 'from the future', 0)"
                )
            )
        with pytest.raises(SchemaVersionError) as info:
            Store.open(url)
        assert "upgrade pushwire" in str(info.value)


def test_the_postgres_url_of_a_schema_keeps_its_query():
    url = with_search_path("postgresql://u:p@127.0.0.1:5432/db?sslmode=disable", "t_1")
    assert url.endswith("sslmode=disable&options=-csearch_path%3Dt_1")


# -- applying results -------------------------------------------------------------------------


def test_a_410_after_the_last_registration_disables_the_endpoint(store):
    token = apns_token(10)
    store.register("ios", token, user_id="u1", registered_at=T0)
    # Sent in capitals by the caller's own code: still the same device.
    stamp = T0 + timedelta(days=2)
    report = store.apply_results(
        "ios", [result(token.upper(), 410, "Unregistered", timestamp=stamp)]
    )
    assert report.disabled == [token]
    endpoint = store.get("ios", token)
    assert not endpoint.enabled and endpoint.disabled_reason == "Unregistered"
    assert endpoint.last_410_at == T0 + timedelta(days=2)
    assert endpoint.invalid_since == T0 + timedelta(days=2)
    event = store.events(application="ios", token=token)[-1]
    assert event.kind is EventKind.DISABLED and event.cause == "send_result"
    assert event.details["reason"] == "Unregistered" and event.details["status"] == 410


def test_reregistration_after_a_410_keeps_the_endpoint_enabled(store):
    token = apns_token(11)
    stamp = T0 + timedelta(days=2)
    store.register("ios", token, registered_at=stamp + timedelta(seconds=1))
    report = store.apply_results("ios", [result(token, 410, "Unregistered", timestamp=stamp)])
    assert report.disabled == [] and report.kept_reregistered == 1
    endpoint = store.get("ios", token)
    assert endpoint.enabled and endpoint.last_410_at == stamp  # remembered all the same
    assert kinds(store, application="ios", token=token) == ["created"]


def test_a_disabled_endpoint_comes_back_only_with_a_registration_after_the_410(store):
    token = apns_token(12)
    stamp = T0 + timedelta(days=2)
    store.register("ios", token, registered_at=T0)
    store.apply_results("ios", [result(token, 410, "Unregistered", timestamp=stamp)])
    # An old registration replayed (an import of yesterday's data) does not resurrect it...
    assert not store.register("ios", token, registered_at=T0 + timedelta(days=1)).enabled
    # ...a registration after the 410 does.
    assert store.register("ios", token, registered_at=stamp + timedelta(hours=1)).enabled


def test_a_burst_of_bad_device_tokens_disables_nothing_and_raises_an_alert(store):
    tokens = [apns_token(i) for i in range(100)]
    store.register_many([Registration("ios", t) for t in tokens])
    results = [result(t, 400, "BadDeviceToken", index=i) for i, t in enumerate(tokens)]
    report = store.apply_results("ios", results)
    assert report.disabled == [] and report.withheld == 100
    assert report.alerts == ["environment_mismatch"]
    assert all(e.enabled for e in store.endpoints())
    (alert,) = store.events(kinds=[EventKind.CONFIG_ALERT])
    assert alert.application == "ios" and alert.token is None
    assert alert.details["alert"] == "environment_mismatch"
    assert "sandbox" in alert.details["warning"]


def test_scattered_bad_device_tokens_are_disabled(store):
    tokens = [apns_token(i) for i in range(200)]
    # Registered before the (made-up) send: a token registered after it would be kept.
    store.register_many([Registration("ios", t, registered_at=T0) for t in tokens])
    bad = {tokens[17], tokens[99], tokens[150]}
    results = [
        result(t, 400, "BadDeviceToken", index=i) if t in bad else result(t, index=i)
        for i, t in enumerate(tokens)
    ]
    report = store.apply_results("ios", results)
    assert set(report.disabled) == bad and report.alerts == []
    assert {e.token for e in store.endpoints(enabled=False)} == bad


def test_fcm_verdicts_disable_and_the_send_time_guards_later_registrations(store):
    dead, registered_later, bad = fcm_token(1), fcm_token(2), fcm_token(3)
    for token in (dead, registered_later, bad):
        store.register("android", token, registered_at=T0)
    sent_at = T0 + timedelta(hours=1)
    # The app registered this token again after the notification was sent to it.
    store.register("android", registered_later, registered_at=sent_at + timedelta(seconds=5))
    invalid_body = (
        b'{"error":{"message":"The registration token is not a valid FCM registration token"}}'
    )
    results = [
        result(dead, 404, "UNREGISTERED", latency=0.5),
        result(registered_later, 404, "UNREGISTERED", latency=0.5),
        result(bad, 400, "INVALID_ARGUMENT", latency=0.5, body=invalid_body),
    ]
    report = store.apply_results("android", results, received_at=sent_at + timedelta(seconds=0.5))
    assert sorted(report.disabled) == sorted([dead, bad]) and report.kept_reregistered == 1
    assert store.get("android", bad).disabled_reason == "INVALID_ARGUMENT"
    assert store.get("android", registered_later).enabled


def test_retryable_and_payload_outcomes_change_nothing(store):
    tokens = [apns_token(i) for i in range(7)]
    store.register_many([Registration("ios", t) for t in tokens])
    results = [
        result(tokens[0], 429, "TooManyRequests"),
        result(tokens[1], 500, "InternalServerError"),
        result(tokens[2], 503, "ServiceUnavailable"),
        result(tokens[3], 0, outcome=Outcome.TIMEOUT),
        result(tokens[4], 0, outcome=Outcome.FAILED),
        result(tokens[5], 413, "PayloadTooLarge"),
        result(tokens[6], 403, "ExpiredProviderToken"),
    ]
    before = list(store.endpoints())
    report = store.apply_results("ios", results)
    assert report.disabled == [] and report.alerts == []
    assert list(store.endpoints()) == before
    assert kinds(store) == ["created"] * 7


def test_configuration_rejections_keep_tokens_and_alert_once(store):
    tokens = [apns_token(i) for i in range(5)]
    store.register_many([Registration("ios", t) for t in tokens])
    results = [result(t, 400, "BadTopic", index=i) for i, t in enumerate(tokens)]
    assert store.apply_results("ios", results).alerts == ["configuration"]
    assert all(e.enabled for e in store.endpoints())
    assert [e.details["alert"] for e in store.events(kinds=["config_alert"])] == ["configuration"]


def test_a_registration_now_comes_after_everything_recorded(store):
    token = apns_token(13)
    store.register("ios", token)
    # A 410 stamped ahead of our clock (the provider's clock runs a little fast)...
    ahead = datetime.now(timezone.utc) + timedelta(seconds=30)
    store.apply_results("ios", [result(token, 410, "Unregistered", timestamp=ahead)])
    assert not store.get("ios", token).enabled
    # ...is still before the app's registration that comes after it.
    assert store.register("ios", token).enabled
    # Same for an explicit disable and a registration within the same millisecond.
    for _ in range(20):
        store.disable("ios", token)
        assert store.register("ios", token).enabled


def test_verdicts_for_unknown_tokens_are_counted_not_errors(store):
    report = store.apply_results("ios", [result(apns_token(1), 410, "Unregistered", timestamp=T0)])
    assert report.unknown == 1 and report.disabled == []


# -- the rules are order independent -----------------------------------------------------------


def test_registrations_and_verdicts_commute():
    """Whatever the order in which registrations and 410s reach the store, the endpoint ends
    enabled exactly when its latest registration is not older than its latest 410."""
    base = to_ms(T0, "t")
    registrations = [base + 10, base + 30, base + 50]
    stamps = [base + 20, base + 40]
    operations = [("register", t) for t in registrations] + [("drop", t) for t in stamps]
    finals = set()
    for order in itertools.permutations(operations):
        state = new_endpoint(
            CheckedRegistration(1, "ios", "ab", "u", None, None, base), base, endpoint_id=1
        )
        for kind, t in order:
            if kind == "register":
                registration = CheckedRegistration(1, "ios", "ab", None, None, None, t)
                state, _ = register(state, registration, base)
            else:
                stamp = datetime.fromtimestamp(t / 1000, tz=timezone.utc)
                verdict = DropVerdict(
                    result("ab", 410, "Unregistered", timestamp=stamp), "Unregistered", t
                )
                state, _, _ = drop(state, verdict, base)
        finals.add((state.enabled, state.last_registered_at, state.invalid_since))
    assert finals == {(True, base + 50, base + 40)}


# -- events -----------------------------------------------------------------------------------


def test_subscribers_hear_of_committed_changes_only(store, monkeypatch, caplog):
    heard = []
    unsubscribe = store.subscribe(heard.append)
    store.register("ios", apns_token(1), user_id="u1")
    store.register_many([Registration("ios", apns_token(i)) for i in range(2, 5)])
    assert [e.kind for e in heard] == [EventKind.CREATED] * 4
    assert [e.id for e in heard] == [e.id for e in store.events()]

    def explode(event):
        raise ValueError("subscriber bug")

    store.subscribe(explode)
    with caplog.at_level(logging.ERROR, logger="pushwire.store"):
        store.disable("ios", apns_token(1))  # a failing subscriber undoes nothing
    assert not store.get("ios", apns_token(1)).enabled
    assert "subscriber" in caplog.text
    unsubscribe()
    store.register("ios", apns_token(9))
    assert len(heard) == 5


def test_events_are_queryable(store):
    store.register("ios", apns_token(1), user_id="u1")
    store.register("android", fcm_token(1), user_id="u1")
    store.register("android", fcm_token(2), user_id="u2")
    store.disable("android", fcm_token(2))
    assert len(store.events(user_id="u1")) == 2
    assert kinds(store, application="android") == ["created", "created", "disabled"]
    first = store.events(limit=1)[0]
    assert [e.token for e in store.events(after_id=first.id, kinds=["created"])] == [
        fcm_token(1),
        fcm_token(2),
    ]
    assert store.events(since=datetime.now(timezone.utc) + timedelta(days=1)) == []
    with pytest.raises(StoreInputError):
        store.events(kinds=["exploded"])


# -- segments ---------------------------------------------------------------------------------


def test_segment_filters_parse_from_text_and_json():
    text = SegmentFilter.parse("app=ios,android plan=pro,team user=u1 attr.app=x provider=apns")
    assert text == SegmentFilter(
        applications=["ios", "android"],
        providers=["apns"],
        user_ids=["u1"],
        attributes={"plan": ["pro", "team"], "app": "x"},
    )
    # `attr:NAME` is the same as `attr.NAME`.
    assert SegmentFilter.parse("attr:plan=pro attr:user=x") == SegmentFilter(
        attributes={"plan": "pro", "user": "x"}
    )
    as_json = SegmentFilter.parse('{"attributes": {"plan": "pro"}, "user_ids": ["u1"]}')
    assert as_json.to_dict() == {"user_ids": ["u1"], "attributes": {"plan": ["pro"]}}
    assert SegmentFilter.parse("all") == SegmentFilter() == SegmentFilter.parse("")
    for bad in ("plan", "plan=", "{nope", '{"colour": "red"}', "provider=mqtt", "bad key!=1"):
        with pytest.raises(InvalidFilterError):
            SegmentFilter.parse(bad)


def test_listing_a_segment_pages_through_it(store):
    rows = [
        Registration(
            "ios" if i % 2 else "android",
            apns_token(i) if i % 2 else fcm_token(i),
            user_id=f"u{i % 5}",
            attributes={"plan": "pro" if i % 3 == 0 else "free", "langs": ["en", f"l{i % 4}"]},
        )
        for i in range(60)
    ]
    store.register_many(rows)
    store.disable("ios", apns_token(3))
    everything = list(store.endpoints(page_size=7))
    assert len(everything) == 60 and [e.id for e in everything] == sorted(e.id for e in everything)

    def select(text, **options):
        return {
            (e.application, e.token)
            for e in store.endpoints(SegmentFilter.parse(text), page_size=7, **options)
        }

    def expected(keep):
        return {(r.application, r.token) for i, r in enumerate(rows) if keep(i)}

    assert select("plan=pro") == expected(lambda i: i % 3 == 0)
    assert select("langs=l1,l2 app=ios") == expected(lambda i: i % 4 in (1, 2) and i % 2)
    assert select("user=u0,u1 provider=fcm") == expected(lambda i: i % 5 in (0, 1) and i % 2 == 0)
    assert select("plan=pro", enabled=False) == {("ios", apns_token(3))}
    assert select("plan=nobody") == set()
