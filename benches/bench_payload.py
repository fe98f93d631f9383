"""Micro-benchmarks for the typed payload builders (pytest-benchmark).

Run explicitly (pyproject's testpaths only covers tests/)::

    python -m pytest benches/bench_payload.py --benchmark-only -q

Each push-type case measures one builder call: validation, msgspec encoding and the Message
(header checks plus the Rust template). The bulk case builds 10,000 alert Messages with
distinct bodies, the shape of a personalised campaign.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pushwire import Message, payload
from pushwire.payload import Alert, LocalizedString, Sound

TOPIC = "com.example.app"
STATE = {"currentHealthLevel": 0.941, "eventDescription": "Power Panda found a sword!"}
PANDA_ALERT = Alert(
    title=LocalizedString("%@ is on an adventure!", ["Power Panda"]),
    body=LocalizedString("%@ found a sword!", ["Power Panda"]),
    sound="chime.aiff",
)

ONE_OF_EACH: dict[str, Callable[[], Message]] = {
    "alert": lambda: payload.alert(
        TOPIC,
        title="Order shipped",
        body="Your order #1234 arrives Tuesday",
        badge=3,
        sound="default",
        thread_id="orders",
        custom={"order": 1234},
    ),
    "alert-critical": lambda: payload.alert(
        TOPIC, title="Fire", sound=Sound("siren.caf", 0.9), interruption_level="critical"
    ),
    "background": lambda: payload.background(TOPIC, custom={"sync": "inbox"}),
    "voip": lambda: payload.voip(TOPIC, custom={"call_id": "c-42", "caller": "Ada"}),
    "pushtotalk": lambda: payload.push_to_talk(TOPIC, custom={"activeSpeaker": "Ada"}),
    "location": lambda: payload.location(TOPIC),
    "complication": lambda: payload.complication(TOPIC, custom={"score": "3-1"}),
    "fileprovider": lambda: payload.fileprovider(TOPIC, custom={"domain": "docs"}),
    "mdm": lambda: payload.mdm("com.apple.mgmt.External.5a3b", "PUSHMAGIC"),
    "widgets": lambda: payload.widgets(TOPIC),
    "controls": lambda: payload.controls(TOPIC),
    "wallet": lambda: payload.wallet_pass("pass.com.example.boarding"),
    "liveactivity-start": lambda: payload.live_activity_start(
        TOPIC,
        attributes_type="AdventureAttributes",
        attributes={"hero": "Power Panda"},
        content_state=STATE,
        timestamp=1685952000,
        alert=PANDA_ALERT,
        input_push_token=True,
    ),
    "liveactivity-update": lambda: payload.live_activity_update(
        TOPIC, content_state=STATE, timestamp=1685952000, stale_date=1685955600
    ),
    "liveactivity-end": lambda: payload.live_activity_end(
        TOPIC, content_state=STATE, timestamp=1685952000, dismissal_date=1685952000
    ),
}


@pytest.mark.parametrize("kind", ONE_OF_EACH)
def test_build_one_message(benchmark, kind: str) -> None:
    message = benchmark(ONE_OF_EACH[kind])
    assert isinstance(message, Message)


BODIES = [f"Hi user {i}, your order #{i:06d} has shipped." for i in range(10_000)]


def build_alerts() -> list[Message]:
    return [
        payload.alert(TOPIC, title="Order shipped", body=body, badge=1, sound="default")
        for body in BODIES
    ]


def test_build_10k_alerts(benchmark) -> None:
    messages = benchmark.pedantic(build_alerts, rounds=10, iterations=1, warmup_rounds=1)
    assert len(messages) == 10_000 and messages[-1].payload != messages[0].payload


def test_build_10k_raw_messages_for_comparison(benchmark) -> None:
    # The same payloads as hand-written dicts through Message(dict): the baseline to beat.
    def build() -> list[Message]:
        return [
            Message(
                {
                    "aps": {
                        "alert": {"title": "Order shipped", "body": body},
                        "badge": 1,
                        "sound": "default",
                    }
                },
                topic=TOPIC,
            )
            for body in BODIES
        ]

    messages = benchmark.pedantic(build, rounds=10, iterations=1, warmup_rounds=1)
    assert len(messages) == 10_000
