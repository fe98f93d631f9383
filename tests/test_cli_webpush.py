"""The CLI and Web Push: ``pushwire send --subscriptions`` against mock push services (every
line checked before anything is sent; one result per line, counted by the services),
``check-credentials --vapid-key`` (the public key shown, the private key never), and a
segment of the store with web subscriptions sent by ``pushwire send --to-segment``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pushwire.store import Store
from pushwire.testing import MockWebPush
from pushwire.vapid import VapidKey
from support.cli import invoke, write_jsonl


def browser_json(sub) -> dict[str, object]:
    return {
        "endpoint": sub.endpoint,
        "expirationTime": None,
        "keys": {"p256dh": sub.p256dh, "auth": sub.auth},
    }


@pytest.fixture
def vapid(tmp_path: Path) -> tuple[Path, VapidKey]:
    key = VapidKey.generate()
    path = tmp_path / "vapid.pem"
    path.write_bytes(key.private_pem())
    return path, key


def test_send_subscriptions_file_one_result_per_line(tmp_path, vapid):
    key_path, _ = vapid
    with MockWebPush(services=2, rules={"dead": "unregistered"}) as mock:
        subs = [mock.subscription(f"ok{i}", service=i % 2) for i in range(6)]
        subs.append(mock.subscription("dead1", service=1))
        rows = [browser_json(s) for s in subs]
        path = write_jsonl(tmp_path / "subs.jsonl", [*rows[:3], "", *rows[3:]])
        results, drops = tmp_path / "results.jsonl", tmp_path / "drop.jsonl"
        out = invoke(
            [
                "send",
                "--subscriptions", str(path),
                "--vapid-key", str(key_path),
                "--subject", "mailto:ops@example.com",
                "--title", "Hi", "--body", "there", "--ttl", "60", "--urgency", "high",
                "--ca-file", str(mock.ca_file),
                "--results", str(results), "--drop-tokens", str(drops),
            ]
        )  # fmt: skip
        assert out.exit_code == 0, out.output
        assert [mock.received(s) for s in subs] == [1] * 7
        (plaintext,) = mock.messages(subs[0])
        assert json.loads(plaintext) == {"notification": {"title": "Hi", "body": "there"}}
    # Written as they arrive; each names its input line (line 4 is blank).
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    records = sorted(lines, key=lambda r: r["line"])
    assert [r["line"] for r in records] == [1, 2, 3, 5, 6, 7, 8]
    assert {r["outcome"] for r in records[:-1]} == {"delivered"}
    assert records[-1]["status"] == 410
    (dropped,) = [json.loads(line) for line in drops.read_text().splitlines()]
    assert dropped["token"] == subs[-1].endpoint and dropped["line"] == 8
    assert subs[0].auth not in out.output


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"endpoint": "http://push.example.net/1", "keys": {}}', "field endpoint"),
        ("not json", "not valid JSON"),
        ('{"endpoint": "https://push.example.net/1"}', "field keys"),
        (
            '{"endpoint": "https://push.example.net/1", "keys": {"p256dh": "AAAA", "auth": "x"}}',
            "field p256dh",
        ),
    ],
)
def test_a_bad_line_stops_before_anything_is_sent(tmp_path, vapid, line, words):
    key_path, _ = vapid
    with MockWebPush(services=1) as mock:
        good = browser_json(mock.subscription("fine"))
        path = write_jsonl(tmp_path / "subs.jsonl", [good, good, line, good])
        out = invoke(
            [
                "send", "--subscriptions", str(path), "--vapid-key", str(key_path),
                "--subject", "mailto:ops@example.com", "--body", "x",
                "--ca-file", str(mock.ca_file),
            ]
        )  # fmt: skip
        assert mock.total_received == 0
    assert out.exit_code == 2
    (message,) = [ln for ln in out.output.splitlines() if ln.strip()]
    assert "line 3" in message and words in message


def test_web_push_send_options_are_checked_first(tmp_path, vapid):
    key_path, _ = vapid
    path = write_jsonl(tmp_path / "subs.jsonl", [])
    base = ["send", "--subscriptions", str(path)]
    no_key = invoke([*base, "--subject", "mailto:a@example.com", "--body", "x"])
    assert no_key.exit_code == 2 and "--vapid-key" in no_key.output
    no_subject = invoke([*base, "--vapid-key", str(key_path), "--body", "x"])
    assert no_subject.exit_code == 2 and "--subject" in no_subject.output
    no_message = invoke([*base, "--vapid-key", str(key_path), "--subject", "mailto:a@example.com"])
    assert no_message.exit_code == 2 and "--title/--body" in no_message.output
    both = invoke([*base, "--input", str(path), "--vapid-key", str(key_path)])
    assert both.exit_code == 2 and "not with --input" in both.output
    stray = invoke(["send", "--input", str(path), "--ttl", "5", "--p8", "x.p8"])
    assert stray.exit_code == 2 and "only with --subscriptions" in stray.output


def test_check_credentials_reads_a_vapid_key(tmp_path, vapid):
    key_path, key = vapid
    out = invoke(
        ["check-credentials", "--vapid-key", str(key_path), "--subject", "mailto:a@example.com"]
    )
    assert out.exit_code == 0, out.output
    assert key.public_key in out.output and "signed a VAPID JWT" in out.output
    private = key.private_pem().decode()
    assert "PRIVATE" not in out.output and private.splitlines()[1] not in out.output
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nsecretish\n-----END PRIVATE KEY-----\n")
    out = invoke(["check-credentials", "--vapid-key", str(bad)])
    assert out.exit_code == 2 and "secretish" not in out.output
    assert "pushwire vapid generate" in out.output
    out = invoke(
        ["check-credentials", "--vapid-key", str(key_path), "--subject", "mailto:me@localhost"]
    )
    assert out.exit_code == 2 and "localhost" in out.output


def test_send_to_segment_reaches_web_subscriptions_of_the_store(tmp_path, vapid):
    key_path, _ = vapid
    db = f"sqlite:///{tmp_path}/store.db"
    with MockWebPush(services=2, rules={"dead": "unregistered"}) as mock:
        subs = [mock.subscription(f"seg{i}", service=i % 2) for i in range(5)]
        subs.append(mock.subscription("dead-seg", service=0))
        rows = tmp_path / "import.jsonl"
        write_jsonl(
            rows,
            [
                {"app": "web", **browser_json(s), "registered_at": "2026-01-01T00:00:00Z"}
                for s in subs
            ],
        )
        ref = f"vapid:{key_path}?subject=mailto:ops@example.com"
        for args in (
            ["endpoints", "add-app", "web", "--provider", "webpush", "--credentials-ref", ref],
            ["endpoints", "import", str(rows)],
        ):
            done = invoke([*args, "--db", db])
            assert done.exit_code == 0, done.output
        out = invoke(
            [
                "send",
                "--to-segment",
                "app=web",
                "--body",
                "hello",
                "--ca-file",
                str(mock.ca_file),
                "--db",
                db,
            ]
        )
        assert out.exit_code == 0, out.output
        assert [mock.received(s) for s in subs] == [1] * 6
    with Store.open(db) as store:
        assert [store.get("web", s.endpoint).enabled for s in subs] == [True] * 5 + [False]
    # The export keeps the keys, so that an import elsewhere can send to them.
    exported = invoke(["endpoints", "export", "--db", db])
    records = {r["token"]: r for r in map(json.loads, exported.stdout.splitlines())}
    assert {(r["p256dh"], r["auth"]) for r in records.values()} == {
        (s.p256dh, s.auth) for s in subs
    }
    assert all((records[s.endpoint]["p256dh"], records[s.endpoint]["auth"]) == s[1:] for s in subs)
