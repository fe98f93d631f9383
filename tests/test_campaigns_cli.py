"""`pushwire campaigns ...` and `pushwire kpis` against the mock APNs: create, list, show,
schedule, pause, resume, cancel, run, ingest, KPIs; --json everywhere; bad input exits 2 and
writes nothing."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pushwire.campaigns import engagement_id
from pushwire.cli.app import app
from pushwire.store import Store
from pushwire.testing import MockAPNs
from support.store import apns_token

runner = CliRunner()


def run(db: str, *args: str):
    return runner.invoke(app, [*args, "--db", db])


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def test_campaign_cli_end_to_end(tmp_path, credentials, p8_key):
    db = f"sqlite:///{tmp_path}/store.db"
    p8 = tmp_path / "AuthKey.p8"
    p8.write_bytes(p8_key)
    tokens = [apns_token(i) for i in range(40)]
    with Store.open(db) as store:
        store.put_application(
            "ios",
            provider="apns",
            topic="com.example.app",
            credentials_ref=f"p8:{p8}?key_id=ABC123DEFG&team_id=TEAM123456",
        )
        for token in tokens:
            store.register("ios", token, attributes={"plan": "pro"})
    treatments = tmp_path / "treatments.json"
    treatments.write_text(
        json.dumps(
            [
                {"name": "A", "percent": 50, "message": {"title": "A", "body": "a"}},
                {"name": "B", "percent": 50, "message": {"title": "B", "body": "b"}},
            ]
        )
    )
    created = json.loads(
        ok(run(db, "campaigns", "create", "ab", "--filter", "plan=pro", "--treatments",
               str(treatments), "--holdout", "10", "--actor", "alice", "--json"))
    )  # fmt: skip
    assert created["state"] == "draft" and created["holdout_percent"] == 10
    assert [c["name"] for c in json.loads(ok(run(db, "campaigns", "list", "--json")))] == ["ab"]
    assert "ab\tdraft" in ok(run(db, "campaigns", "list"))
    scheduled = json.loads(ok(run(db, "campaigns", "schedule", "ab", "--actor", "bob", "--json")))
    assert scheduled["state"] == "scheduled"
    with MockAPNs(credentials=credentials) as apns:
        out = json.loads(
            ok(run(db, "campaigns", "run", "--once", "--apns-url", apns.url, "--ca-file",
                   str(apns.ca_file), "--json"))
        )  # fmt: skip
        received = {t: apns.received(t) for t in tokens}
    (slot,) = out
    assert slot["sent"] + slot["holdout"] == 40 and slot["delivered"] == slot["sent"]
    assert sum(received.values()) == slot["sent"] and max(received.values()) == 1
    shown = json.loads(ok(run(db, "campaigns", "show", "ab", "--json")))
    assert shown["state"] == "completed"
    assert [e["kind"] for e in shown["events"]][:3] == ["created", "scheduled", "running"]
    assert [e["actor"] for e in shown["events"]][:2] == ["alice", "bob"]
    # Engagement from a JSON Lines file, then the KPIs.
    with Store.open(db) as store:
        rows = store.database.read(
            lambda c: c.query(
                "SELECT e.token, s.treatment FROM campaign_sends s JOIN endpoints e "
                "ON e.id = s.endpoint_id WHERE s.state = 'delivered' ORDER BY e.id"
            )
        )
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(
            json.dumps(
                {
                    "name": "opened",
                    "engagement": engagement_id(1, slot["slot"], t),
                    "application": "ios",
                    "token": token,
                }
            )
            for token, t in rows[:5]
        )
    )
    assert json.loads(ok(run(db, "campaigns", "ingest", str(events), "--json"))) == {"recorded": 5}
    kpis = json.loads(ok(run(db, "kpis", "--campaign", "ab", "--json")))
    assert sum(k["opened"] for k in kpis) == 5
    assert sum(k["successful-deliveries"] for k in kpis) == slot["sent"]
    assert {k["treatment"] for k in kpis} <= {"A", "B", "holdout"}
    assert "push-open-rate" in ok(run(db, "kpis"))
    assert "A: sent" in ok(run(db, "campaigns", "show", "1"))
    # The lifecycle refuses what it does not allow; bad input exits 2 and writes nothing.
    result = run(db, "campaigns", "resume", "ab")
    assert result.exit_code == 2 and "cannot become scheduled" in result.output
    for args, expected in [
        (["--filter", "tier=gold", "--title", "x", "--body", "y"], "segment attribute 'tier'"),
        (["--title", "x", "--schedule", "cron", "--cron", "0 0 30 2 *"], "schedule.cron"),
        (["--title", "x", "--schedule", "daily", "--start", "2030-01-01T09:00",
          "--timezone", "Mars/Olympus"], "unknown time zone"),
        (["--title", "x", "--frequency-cap", "two"], "--frequency-cap"),
    ]:  # fmt: skip
        result = run(db, "campaigns", "create", "bad", *args)
        assert result.exit_code == 2 and expected in result.output, result.output
    assert len(json.loads(ok(run(db, "campaigns", "list", "--json")))) == 1
    # Pause, resume and cancel on a second campaign.
    ok(run(db, "campaigns", "create", "later", "--title", "x", "--schedule", "once", "--start",
           "2030-01-01T09:00", "--schedule-now"))  # fmt: skip
    assert json.loads(ok(run(db, "campaigns", "pause", "later", "--json")))["state"] == "paused"
    assert json.loads(ok(run(db, "campaigns", "resume", "later", "--json")))["state"] == (
        "scheduled"
    )
    assert json.loads(ok(run(db, "campaigns", "cancel", "later", "--json")))["state"] == (
        "cancelled"
    )
