"""Hostile and bad input: builders, classifiers and the extension's entry points.

- Any input to the message builders (``Message``, ``pushwire.payload.*``, ``FCMMessage``) gives
  a message or a ``PayloadError`` that names the field at fault; never a ``TypeError``,
  ``KeyError``, ``UnicodeError``...
- ``classify`` / ``summarize`` / ``should_drop_token`` never raise, whatever a result holds.
- Tokens, topics, collapse ids and header values with CR/LF, NUL, non-ASCII or huge sizes are
  refused locally, before anything is sent, naming the field.
- Wrong types and absurd values handed to ``_core`` raise Python exceptions; the interpreter
  never crashes (checked in a subprocess, so an abort shows as a signal).

Known bugs are ``xfail(strict=True)`` with the cause in ``reason``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pushwire
from pushwire import (
    AndroidConfig,
    ApnsConfig,
    FCMMessage,
    FCMNotification,
    Message,
    Notification,
    Outcome,
    PayloadError,
    PushwireError,
    WebpushConfig,
    _core,
    payload,
)
from pushwire.payload import Alert, LocalizedString, Sound
from pushwire.testing import MockAPNs
from support.util import tokens

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- strategies ----------------------------------------------------------------------------------

#: Characters that break headers and encodings, among any others (lone surrogates included).
TRICKY = [
    "\r",
    "\n",
    "\x00",
    "\x7f",
    "\t",
    " ",
    "é",
    "\u2028",
    "\ufeff",
    "\ud800",
    "\udfff",
]
nasty_char = st.one_of(st.characters(exclude_categories=()), st.sampled_from(TRICKY))
nasty_text = st.one_of(
    st.text(nasty_char, max_size=40),
    st.integers(0, 70_000).map(lambda n: "x" * n),
    st.sampled_from(["", "com.example.app", "a" * 65, "é" * 33]),
)
#: The same without lone surrogates (handled by a known-bug test of their own).
encodable_char = st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from(TRICKY[:-2]))
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    nasty_text,
)
jsonish = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(nasty_text, inner, max_size=3)
    ),
    max_leaves=10,
)
maybe_text = st.one_of(st.none(), nasty_text)
numbers = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(), st.booleans())
timestamps = st.one_of(
    numbers,
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
)
#: Hashable values of any type, for options looked up in tables (priority, push type...).
hashable_junk = st.one_of(
    st.none(), numbers, nasty_text, st.binary(max_size=8), st.tuples(st.integers())
)


def assert_names_its_field(error: PayloadError) -> None:
    assert isinstance(error, PushwireError)
    assert error.field, f"no field: {error}"
    # The message says which field, in the field's own words (header or JSON path).
    assert error.field.split(".")[0] in str(error) or error.field in str(error), error


def build_or_payload_error(build: Any) -> Any:
    """The built value, or None after a PayloadError naming its field. Anything else fails."""
    try:
        return build()
    except PayloadError as e:
        assert_names_its_field(e)
        return None


# --- APNs messages --------------------------------------------------------------------------------


@SETTINGS
@given(
    body=st.one_of(jsonish, st.binary(max_size=6000), nasty_text),
    topic=nasty_text,
    push_type=st.one_of(st.sampled_from(list(pushwire.PUSH_TYPES)), hashable_junk),
    priority=hashable_junk,
    expiration=hashable_junk,
    collapse_id=st.one_of(st.none(), nasty_text),
)
def test_message_gives_a_message_or_a_payload_error_naming_the_field(
    body, topic, push_type, priority, expiration, collapse_id
):
    message = build_or_payload_error(
        lambda: Message(
            body,
            topic=topic,
            push_type=push_type,
            priority=priority,
            expiration=expiration,
            collapse_id=collapse_id,
        )
    )
    if message is None:
        return
    # What was accepted is what APNs accepts: a JSON object within the limit, ASCII headers.
    limit = pushwire.PUSH_TYPES[message.push_type][3]
    assert message.payload.lstrip().startswith(b"{") and len(message.payload) <= limit
    assert message.topic.endswith(pushwire.PUSH_TYPES[message.push_type][0])
    for value in (message.topic, message.collapse_id or ""):
        assert value.isascii() and value.isprintable()
    assert message.collapse_id is None or len(message.collapse_id) <= 64


@pytest.mark.parametrize("bad", ["\r\n", "\n", "\r", "\x00", "é", "\u2028", "\x7f", "\ud800"])
@pytest.mark.parametrize("field", ["apns-topic", "apns-collapse-id"])
def test_header_values_with_line_breaks_nul_or_non_ascii_are_refused_naming_the_header(bad, field):
    value = f"com.example{bad}x-injected: 1"
    kwargs = {"topic": value} if field == "apns-topic" else {"topic": "t", "collapse_id": value}
    with pytest.raises(PayloadError) as info:
        Message({"aps": {}}, **kwargs)
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"topic": "t", "collapse_id": "c" * 65}, "apns-collapse-id"),
        ({"topic": "t", "collapse_id": "é" * 33}, "apns-collapse-id"),
        ({"topic": "t", "payload": {"aps": {"alert": "x" * 10_000_000}}}, "payload"),
        ({"topic": "t", "payload": b"{" + b" " * 5000 + b"}"}, "payload"),
        ({"topic": "t", "push_type": "voip", "payload": {"v": "x" * 5200}}, "payload"),
    ],
)
def test_oversized_fields_are_refused_naming_the_field(kwargs, field):
    body = kwargs.pop("payload", {"aps": {}})
    with pytest.raises(PayloadError) as info:
        Message(body, **kwargs)
    assert info.value.field == field


def _payload_builders(draw: Any) -> tuple[str, Any]:
    topic = draw(nasty_text)
    common = {
        "priority": draw(hashable_junk),
        "expiration": draw(hashable_junk),
        "collapse_id": draw(st.one_of(st.none(), nasty_text)),
    }
    # Keep the common options sometimes, to reach the payload checks past them.
    if draw(st.booleans()):
        common = {}
    custom = draw(st.one_of(st.none(), st.dictionaries(nasty_text, jsonish, max_size=3)))
    which = draw(
        st.sampled_from(
            [
                "alert",
                "background",
                "mdm",
                "voip",
                "push_to_talk",
                "location",
                "complication",
                "fileprovider",
                "wallet_pass",
                "widgets",
                "controls",
                "live_activity_start",
                "live_activity_update",
                "live_activity_end",
            ]
        )
    )
    text = maybe_text
    if which == "alert":

        def build() -> Message:
            sound = draw(
                st.one_of(
                    maybe_text,
                    st.builds(
                        lambda n, v, c: (n, v, c), nasty_text, numbers, st.sampled_from([0, 1, 2])
                    ),
                )
            )
            if isinstance(sound, tuple):
                sound = Sound(name=sound[0], volume=sound[1], critical=sound[2])
            return payload.alert(
                topic,
                title=draw(text),
                subtitle=draw(text),
                body=draw(text),
                badge=draw(st.one_of(st.none(), numbers)),
                sound=sound,
                thread_id=draw(text),
                category=draw(text),
                mutable_content=draw(st.booleans()),
                interruption_level=draw(
                    st.one_of(maybe_text, st.sampled_from(payload.INTERRUPTION_LEVELS))
                ),
                relevance_score=draw(st.one_of(st.none(), numbers)),
                target_content_id=draw(text),
                filter_criteria=draw(text),
                loc_key=draw(text),
                loc_args=draw(st.one_of(st.none(), st.lists(nasty_text, max_size=3))),
                custom=custom,
                **common,
            )

    elif which == "mdm":

        def build() -> Message:
            return payload.mdm(topic, draw(nasty_text), **common)

    elif which in ("voip", "push_to_talk"):

        def build() -> Message:
            return getattr(payload, which)(topic, custom=custom or {}, **common)

    elif which in ("widgets", "controls", "wallet_pass"):

        def build() -> Message:
            return getattr(payload, which)(topic, **common)

    elif which.startswith("live_activity"):

        def build() -> Message:
            alert = Alert(
                title=draw(st.one_of(nasty_text, st.builds(LocalizedString, nasty_text))),
                body=draw(text),
            )
            args: dict[str, Any] = {
                "content_state": draw(st.dictionaries(nasty_text, jsonish, max_size=3)),
                "timestamp": draw(timestamps),
            }
            if which == "live_activity_start":
                args |= {
                    "attributes_type": draw(nasty_text),
                    "attributes": draw(st.dictionaries(nasty_text, jsonish, max_size=3)),
                    "alert": alert,
                    "stale_date": draw(st.one_of(st.none(), timestamps)),
                    "input_push_channel": draw(text),
                }
            elif which == "live_activity_update":
                args |= {"alert": alert, "relevance_score": draw(st.one_of(st.none(), numbers))}
            else:
                args["dismissal_date"] = draw(st.one_of(st.none(), timestamps))
            return getattr(payload, which)(topic, **args)

    else:

        def build() -> Message:
            return getattr(payload, which)(topic, custom=custom, **common)

    return which, build


@SETTINGS
@given(data=st.data())
def test_every_payload_builder_gives_a_message_or_a_payload_error_naming_the_field(data):
    which, build = _payload_builders(data.draw)
    message = build_or_payload_error(build)
    if message is not None:
        assert isinstance(message, Message), which
        limit = pushwire.PUSH_TYPES[message.push_type][3]
        assert len(message.payload) <= limit


# --- FCM messages ---------------------------------------------------------------------------------


@SETTINGS
@given(
    target=st.sampled_from(["token", "topic", "condition", None]),
    target_value=nasty_text,
    title=maybe_text,
    data=st.one_of(
        st.none(),
        st.dictionaries(nasty_text, nasty_text, max_size=3),
        st.dictionaries(nasty_text, jsonish, max_size=2),
    ),
    ttl=st.one_of(st.none(), nasty_text, numbers, st.timedeltas()),
    priority=st.one_of(st.none(), nasty_text, st.sampled_from(["NORMAL", "HIGH"])),
    headers=st.one_of(st.none(), st.dictionaries(nasty_text, nasty_text, max_size=2)),
    apns_payload=st.one_of(st.none(), st.dictionaries(nasty_text, jsonish, max_size=2)),
    label=maybe_text,
    validate_only=st.booleans(),
)
def test_fcm_message_gives_a_message_or_a_payload_error_naming_the_field(
    target, target_value, title, data, ttl, priority, headers, apns_payload, label, validate_only
):
    def build() -> FCMMessage:
        targets = {target: target_value} if target else {}
        return FCMMessage(
            **targets,
            notification=FCMNotification(title=title),
            data=data,
            android=AndroidConfig(ttl=ttl, priority=priority, data=data),
            apns=ApnsConfig(headers=headers, payload=apns_payload),
            webpush=WebpushConfig(data=data),
            analytics_label=label,
            validate_only=validate_only,
        )

    message = build_or_payload_error(build)
    if message is not None:
        # FCM's payload rule: data keys and values plus the notification's texts.
        sent = json.loads(message.encoded)
        shown = sum(len(k.encode()) + len(v.encode()) for k, v in sent["notification"].items())
        limit = 2048 if message.target_kind == "topic" else 4096
        assert pushwire.fcm.data_bytes(sent.get("data")) + shown <= limit


# --- classification -------------------------------------------------------------------------------

anything = st.deferred(
    lambda: st.one_of(
        hashable_junk,
        st.binary(max_size=64),
        st.lists(anything, max_size=3),
        st.dictionaries(st.text(max_size=5), anything, max_size=3),
        st.just(object()),
        st.just(float("nan")),
        st.integers(min_value=-(2**200), max_value=2**200),
    )
)


@SETTINGS
@given(
    fields=st.fixed_dictionaries(
        {
            "index": anything,
            "token": st.one_of(nasty_text, anything),
            "outcome": st.one_of(
                st.sampled_from([o.value for o in Outcome] + list(Outcome)), anything
            ),
            "status": st.one_of(st.integers(0, 999), anything),
            "reason": st.one_of(
                st.sampled_from(
                    ["BadDeviceToken", "Unregistered", "UNREGISTERED", "INVALID_ARGUMENT"]
                ),
                nasty_text,
                anything,
            ),
            "timestamp_ms": anything,
            "retry_after": anything,
            "maybe_delivered": anything,
            "body": st.one_of(st.binary(max_size=200), anything),
        }
    ),
    registered_at=st.one_of(
        st.none(), numbers, st.datetimes(timezones=st.one_of(st.none(), st.timezones()))
    ),
)
def test_classifiers_never_raise_whatever_a_result_holds(fields, registered_at):
    result = SimpleNamespace(**fields)
    verdict = pushwire.classify(result)
    assert isinstance(verdict.action, pushwire.Action)
    summary = pushwire.summarize([result, result])
    assert summary is not None
    assert isinstance(pushwire.should_drop_token(result, registered_at), bool)
    pushwire.parse_reason(fields["reason"] if isinstance(fields["reason"], str) else None)


# --- tokens and apns-ids, checked by the engine before anything is queued ----------------------

APNS_MESSAGE = Message({"aps": {}}, topic="com.example.app")
FCM_TEMPLATE = FCMMessage()._template


@pytest.fixture(scope="module")
def engine() -> Any:
    engine = _core.Engine()
    yield engine
    engine.close()


tokenish = st.one_of(
    st.text(encodable_char, max_size=80),
    st.text(st.sampled_from("0123456789abcdefABCDEF"), min_size=1, max_size=80),
    st.integers(1000, 5000).map(lambda n: "a" * n),
    st.sampled_from(["", " ", "ab cd", "ab\r\ncd", "ab\x00", "ab/..", 'a"b', "a\\b"]),
)


@SETTINGS
@given(token=tokenish, apns_id=st.one_of(st.none(), st.text(encodable_char, max_size=40)))
def test_tokens_and_apns_ids_are_refused_locally_naming_field_and_index(engine, token, apns_id):
    items = [Notification("ab" * 32, APNS_MESSAGE)] * 3 + [
        Notification(token, APNS_MESSAGE, apns_id)
    ]
    try:
        engine.validate(items)
    except PayloadError as e:
        assert e.field in ("token", "apns-id") and e.index == 3, e
        assert "#3" in str(e) and e.field in str(e)
        return
    assert token and len(token) <= 1024
    assert all(c in "0123456789abcdefABCDEF" for c in token)


@SETTINGS
@given(token=tokenish)
def test_fcm_tokens_are_refused_locally_when_unprintable_spaced_or_huge(engine, token):
    try:
        engine.validate_tokens(FCM_TEMPLATE, ["ok-token", token])
    except PayloadError as e:
        assert e.field == "token" and e.index == 1, e
        return
    assert 0 < len(token) <= 1024
    assert all(0x21 <= ord(c) < 0x7F and c not in '"\\/' for c in token)


# --- known bugs ----------------------------------------------------------------------------------

SURROGATE_BUG = (
    "extension bug: a token or apns-id holding a lone surrogate (e.g. '\\ud800', which Python "
    "str allows) raises UnicodeEncodeError from rust/py/src/engine.rs build_requests / "
    "token_requests (`.to_str()?` propagates Python's encode error) instead of PayloadError "
    "(field='token' / 'apns-id', index=i); in stream() (strict=False) it escapes the per-item "
    "handling of _dispatch._submit_stream_chunk (which only catches PayloadError) and aborts the "
    "whole stream. Fix: map the to_str() error to Error::invalid_input(field, ...) with Some(i)."
)


@pytest.mark.parametrize("field", ["token", "apns-id"])
def test_a_lone_surrogate_in_a_token_or_apns_id_is_a_payload_error(engine, field):
    good = Notification("ab" * 32, APNS_MESSAGE)
    bad = (
        Notification("ab\ud800", APNS_MESSAGE)
        if field == "token"
        else Notification("ab" * 32, APNS_MESSAGE, "\ud800")
    )
    with pytest.raises(PayloadError) as info:
        engine.validate([good, good, bad])
    assert (info.value.field, info.value.index) == (field, 2)


def test_a_lone_surrogate_in_a_stream_fails_that_item_only(credentials, message):
    items = [Notification(t, message) for t in tokens(5)]
    items.insert(2, Notification("ab\ud800", message))
    with MockAPNs(credentials=credentials) as server:

        async def main() -> list[pushwire.Result]:
            async with server.client() as client:
                return [r async for r in client.stream(items)]

        results = asyncio.run(main())
    by_index = {r.index: r for r in results}
    assert sorted(by_index) == list(range(6))
    assert by_index[2].outcome is Outcome.FAILED and not by_index[2].maybe_delivered
    assert all(r.delivered for i, r in by_index.items() if i != 2)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"priority": [10]}, "apns-priority"), ({"push_type": {"alert": 1}}, "apns-push-type")],
)
def test_unhashable_priority_or_push_type_is_a_payload_error(kwargs, field):
    with pytest.raises(PayloadError) as info:
        Message({"aps": {}}, topic="com.example.app", **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"android": {"priority": "URGENT"}}, "android.priority"),
        ({"apns": {"headrs": {}}}, "apns.headrs"),
        ({"android": 3}, "android"),
        ({"webpush": "x"}, "webpush"),
        ({"notification": object()}, "notification"),
    ],
)
def test_fcm_config_of_the_wrong_type_is_a_payload_error(kwargs, field):
    with pytest.raises(PayloadError) as info:
        FCMMessage(**kwargs)
    assert info.value.field is not None and info.value.field.startswith(field)


def test_a_huge_topic_is_refused_locally():
    with pytest.raises(PayloadError) as info:
        Message({"aps": {}}, topic="a" * 100_000)
    assert info.value.field == "apns-topic"


def test_webpush_header_values_with_line_breaks_are_refused():
    with pytest.raises(PayloadError) as info:
        FCMMessage(webpush=WebpushConfig(headers={"TTL": "60\r\nX-Injected: 1"}))
    assert (info.value.field or "").startswith("webpush.headers")


def test_a_base_url_port_out_of_range_is_a_configuration_error():
    with pytest.raises(pushwire.ConfigurationError) as info:
        pushwire.APNsClient(base_url="https://127.0.0.1:99999")
    assert info.value.field == "base_url"


def test_an_absurd_worker_thread_count_is_a_configuration_error():
    with pytest.raises(pushwire.ConfigurationError):
        pushwire.APNsClient(base_url="https://localhost:1", worker_threads=2**62)


# --- the extension under wrong types and absurd values, in a subprocess ------------------------

CRASH_SCRIPT = textwrap.dedent(
    """
    import types

    import pushwire
    from pushwire import _core

    U64 = 2**64 - 1
    msg = pushwire.Message({"aps": {}}, topic="t")
    t = msg._template
    e = _core.Engine()
    p = e.add_pool("https://localhost:1", pushwire.PoolOptions())
    WIRING = {"path_prefix", "ca_file", "client_cert_pem", "client_key_pem", "identity"}

    def pool(**kw):
        # The engine reads options from any object with PoolOptions' attributes: these
        # values skip PoolOptions' own checks, so the engine's are exercised.
        options = vars(pushwire.PoolOptions()) | {k: v for k, v in kw.items() if k not in WIRING}
        wiring = {k: v for k, v in kw.items() if k in WIRING}
        return e.add_pool("https://localhost:1", types.SimpleNamespace(**options), **wiring)

    CASES = {
        "Template()": lambda: _core.Template(),
        "Template(path=int)": lambda: _core.Template(123, [], b""),
        "Template(headers=str)": lambda: _core.Template("/3/device/", "x", b""),
        "Template(header 3-tuple)": lambda: _core.Template("/x/", [("a", "b", "c")], b""),
        "Template(header ints)": lambda: _core.Template("/x/", [(1, 2)], b""),
        "Template(payload=str)": lambda: _core.Template("/x/", [], "x"),
        "Template(payload=memoryview)": lambda: _core.Template("/x/", [], memoryview(b"x")),
        "Template(path 10 MB)": lambda: _core.Template("/" + "a" * 10_000_000, [], b""),
        "Template(header 10 MB)": lambda: _core.Template("/x/", [("x-a", "a" * 10_000_000)], b""),
        "Template(100k headers)": lambda: _core.Template("/x/", [("x-a", "b")] * 100_000, b""),
        "Template(header surrogate)": lambda: _core.Template("/x/", [("x-a", "\\ud800")], b""),
        "Template(bad format)": lambda: _core.Template("/x/", [], b"", "nope"),
        "Template.body_splice(20 MB)": lambda: _core.Template.body_splice(
            "/x", [], b"a" * 10**7, b"b" * 10**7
        ),
        "Template.fixed(keep_body=str)": lambda: _core.Template.fixed("/x", [], b"", keep_body="y"),
        "Template.body_len(u64 max)": lambda: _core.Template.body_splice(
            "/x", [], b"a", b"b"
        ).body_len(U64),
        "Template.body_len(-1)": lambda: t.body_len(-1),
        "Engine(worker_threads=-1)": lambda: _core.Engine(worker_threads=-1),
        "Engine(worker_threads=2**62)": lambda: _core.Engine(worker_threads=2**62),
        "Engine(max_in_flight=2**70)": lambda: _core.Engine(max_in_flight=2**70),
        "Engine(max_in_flight=0)": lambda: _core.Engine(max_in_flight=0),
        "add_pool()": lambda: e.add_pool(),
        "add_pool(url=int)": lambda: e.add_pool(123, pushwire.PoolOptions()),
        "add_pool(options=None)": lambda: e.add_pool("https://localhost:1", None),
        "add_pool(url surrogate)": lambda: e.add_pool("https://\\ud800", pushwire.PoolOptions()),
        "add_pool(url 10 MB)": lambda: e.add_pool(
            "https://" + "a" * 10_000_000, pushwire.PoolOptions()
        ),
        "add_pool(request_timeout=nan)": lambda: pool(request_timeout=float("nan")),
        "add_pool(request_timeout=inf)": lambda: pool(request_timeout=float("inf")),
        "add_pool(request_timeout=-1)": lambda: pool(request_timeout=-1.0),
        "add_pool(request_timeout=1e300)": lambda: pool(request_timeout=1e300),
        "add_pool(ping_interval=0)": lambda: pool(ping_interval=0.0, ping_timeout=0.0),
        "add_pool(backoff 1e18)": lambda: pool(backoff_base=1e18, backoff_max=1e18),
        "add_pool(max_connections=u64 max)": lambda: pool(max_connections=U64),
        "add_pool(max_connections=-1)": lambda: pool(max_connections=-1),
        "add_pool(stream_id_limit=0)": lambda: pool(stream_id_limit=0),
        "add_pool(max_retries=u32 max)": lambda: pool(max_retries=2**32 - 1),
        "add_pool(max_retries=2**40)": lambda: pool(max_retries=2**40),
        "add_pool(ca_file=dir)": lambda: pool(ca_file="/"),
        "add_pool(ca_file=/dev/null)": lambda: pool(ca_file="/dev/null"),
        "add_pool(client cert garbage)": lambda: pool(client_cert_pem=b"x", client_key_pem=b"y"),
        "add_pool(path_prefix bad)": lambda: pool(path_prefix="x/"),
        "submit(pool=99)": lambda: e.submit(99, 0, [("ab", t, None)]),
        "submit(pool=-1)": lambda: e.submit(-1, 0, [("ab", t, None)]),
        "submit(first_id=u64 max, 2 items)": lambda: e.submit(p, U64, [("ab", t, None)] * 2),
        "submit(items=tuple)": lambda: e.submit(p, 0, ("ab", t, None)),
        "submit(item=str)": lambda: e.submit(p, 0, ["ab"]),
        "submit(item 1-tuple)": lambda: e.submit(p, 0, [("ab",)]),
        "submit(item 4-tuple)": lambda: e.submit(p, 0, [("ab", t, None, 1)]),
        "submit(template=str)": lambda: e.submit(p, 0, [("ab", "t", None)]),
        "submit(apns_id=int)": lambda: e.submit(p, 0, [("ab", t, 5)]),
        "submit(token=bytes)": lambda: e.submit(p, 0, [(b"ab", t, None)]),
        "submit(token surrogate)": lambda: e.submit(p, 0, [("\\ud800", t, None)]),
        "submit(token 10 MB)": lambda: e.submit(p, 0, [("a" * 10_000_000, t, None)]),
        "submit(1M items)": lambda: e.submit(p, 0, [("ab", t, None)] * 1_000_000),
        "submit_tokens(template=str)": lambda: e.submit_tokens(p, 0, "x", ["ab"]),
        "submit_tokens(token=int)": lambda: e.submit_tokens(p, 0, t, [1]),
        "drain(-1)": lambda: e.drain(-1),
        "stats(99)": lambda: e.stats(99),
        "set_authorization(CRLF)": lambda: e.set_authorization(p, "a\\r\\nb"),
        "set_authorization(10 MB)": lambda: e.set_authorization(p, "a" * 10_000_000),
        "retire_connections(99)": lambda: e.retire_connections(99),
        "close(nan)": lambda: e.close(float("nan")),
    }
    for name, case in CASES.items():
        try:
            value = case()
            print(f"CASE {name} -> ok {type(value).__name__}", flush=True)
        except BaseException as error:
            kind = f"{type(error).__module__}.{type(error).__name__}"
            print(f"CASE {name} -> {kind}", flush=True)
    e.close(1.0)
    print("DONE", flush=True)
    """
)


def test_wrong_types_and_absurd_values_never_crash_the_interpreter():
    done = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT], capture_output=True, text=True, timeout=120
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("CASE ")]
    # A crash (abort, segfault) ends the process with a signal: the last CASE line names it.
    assert done.returncode == 0, (done.returncode, lines[-1:], done.stderr[-2000:])
    assert done.stdout.rstrip().endswith("DONE")
    assert "Fatal Python error" not in done.stderr
    outcomes = dict(line[5:].split(" -> ", 1) for line in lines)
    assert len(outcomes) == CRASH_SCRIPT.count('": lambda')
    # Typed pushwire errors where the engine validates; plain Python errors for wrong types;
    # a Rust panic only as a Python exception.
    assert outcomes["submit(item=str)"] == "pushwire._errors.PayloadError"
    assert outcomes["add_pool(request_timeout=nan)"] == "pushwire._errors.ConfigurationError"
    assert outcomes["add_pool(path_prefix bad)"] == "pushwire._errors.ConfigurationError"
    assert outcomes["add_pool(url=int)"] == "builtins.TypeError"
    assert outcomes["add_pool(ca_file=/dev/null)"] == "pushwire._errors.ConfigurationError"
    assert outcomes["Engine(worker_threads=2**62)"] in (
        "pyo3_runtime.PanicException",
        "pushwire._errors.ConfigurationError",
    )


def test_bad_client_options_raise_typed_errors():
    for options in (
        {"request_timeout": 0},
        {"request_timeout": -1},
        {"rate_limit": 0},
        {"base_url": "http://plain.example"},
        {"base_url": "not a url"},
        {"environment": "staging", "base_url": None},
        {"ca_file": "/nonexistent/ca.pem"},
    ):
        options = {"base_url": "https://localhost:1", **options}
        with pytest.raises(pushwire.ConfigurationError):
            pushwire.APNsClient(**options)


def test_timestamps_in_the_far_past_or_future_are_payload_errors_or_accepted():
    for moment in (
        dt.datetime.min,
        dt.datetime.max,
        dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc),
        float("inf"),
        float("nan"),
        10**30,
        -(10**30),
    ):
        build_or_payload_error(
            lambda moment=moment: payload.live_activity_update(
                "com.example.app", content_state={}, timestamp=moment
            )
        )
