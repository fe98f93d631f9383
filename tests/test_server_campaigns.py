"""Engagement events and campaigns through `pushwire serve`, over real HTTP (the server as its
own process on 127.0.0.1, an httpx client, a mock APNs server counting what it receives):
every route, every scope boundary, bad input → a problem document naming the field, and
nothing written."""

from __future__ import annotations

import asyncio

import pytest

from pushwire.campaigns import engagement_id
from pushwire.store import Store
from pushwire.testing import MockAPNs
from support.server import apns_token, client, close_clients, create_key, is_problem, running_server

pytestmark = pytest.mark.timeout(180)

PRO = [apns_token(i, "aa") for i in range(6)]
FREE = [apns_token(i, "bb") for i in range(2)]
OTHER = [apns_token(i, "cc") for i in range(2)]


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    close_clients()


@pytest.fixture(scope="module")
def mock():
    with MockAPNs() as server:
        yield server


@pytest.fixture(scope="module")
def env(tmp_path_factory, mock, p8_key):
    directory = tmp_path_factory.mktemp("serve-campaigns")
    db = f"sqlite:///{directory}/store.db"
    key_file = directory / "AuthKey_ABC123DEFG.p8"
    key_file.write_bytes(p8_key)
    ref = f"p8:{key_file}?key_id=ABC123DEFG&team_id=TEAM123456"
    with Store.open(db) as store:
        store.put_application("ios", provider="apns", topic="com.example.app", credentials_ref=ref)
        store.put_application(
            "other", provider="apns", topic="com.example.other", credentials_ref=ref
        )
        for token in PRO:
            store.register("ios", token, attributes={"plan": "pro"})
        for token in FREE:
            store.register("ios", token, attributes={"plan": "free"})
        for token in OTHER:
            store.register("other", token, attributes={"plan": "pro"})
    keys = {
        "admin": create_key(db, "admin", "admin"),
        "sender": create_key(db, "sender", "sender"),
        "app": create_key(db, "ios-app", "app", "ios"),
        "other_app": create_key(db, "other-app", "app", "other"),
    }
    extra = ["--apns-url", mock.url, "--ca-file", str(mock.ca_file)]
    with running_server(db, *extra, log=directory / "server.log") as server:
        yield {"db": db, "keys": keys, "server": server}


def api(env, who: str | None):
    return client(env["server"], env["keys"][who] if who else None)


def written(db: str) -> tuple[int, int, int]:
    """(engagement events, campaigns, campaign events): what a refusal must leave alone."""
    with Store.open(db) as store:
        return store.database.read(
            lambda c: tuple(
                int(c.query(f"SELECT COUNT(*) FROM {table}")[0][0])
                for table in ("engagement_events", "campaigns", "campaign_events")
            )
        )


def run_due_slots(db: str, mock: MockAPNs) -> list:
    """One scheduler tick in this process: the due slots sent through the mock."""

    async def tick() -> list:
        with Store.open(db) as store:
            async with mock.client() as apns:
                return await store.campaigns.scheduler(clients={"ios": apns}).tick()

    return asyncio.run(tick())


def campaign_body(name: str, **more) -> dict:
    return {"name": name, "segment": "app=ios plan=pro", "message": {"title": name}, **more}


# -- a campaign from creation to its open rate --------------------------------------------------


def test_campaign_sent_opened_and_measured(env, mock):
    admin, app = api(env, "admin"), api(env, "app")
    created = admin.post("/v1/campaigns", json=campaign_body("spring"))
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert campaign["state"] == "draft" and campaign["treatments"][0]["name"] == "A"
    key_id = admin.get("/v1/me").json()["key_id"]

    scheduled = admin.post(f"/v1/campaigns/{campaign['id']}/schedule")
    assert scheduled.status_code == 200 and scheduled.json()["state"] == "scheduled"
    before = {t: mock.received(t) for t in PRO + FREE}
    reports = run_due_slots(env["db"], mock)
    assert len(reports) == 1
    assert {t: mock.received(t) - before[t] for t in PRO} == dict.fromkeys(PRO, 1)
    assert all(mock.received(t) == before[t] for t in FREE)  # not in the segment

    shown = admin.get("/v1/campaigns/spring").json()  # by name
    assert shown["campaign"]["id"] == campaign["id"]
    progress = shown["progress"]
    assert progress["slots"] == 1 and progress["slots_by_state"] == {"done": 1}
    assert (progress["sent"], progress["delivered"], progress["opened"]) == (6, 6, 0)

    slots = admin.get(f"/v1/campaigns/{campaign['id']}/slots").json()
    assert slots["next_offset"] is None and len(slots["slots"]) == 1
    eid = engagement_id(campaign["id"], slots["slots"][0]["id"], 0)

    # The app reports: one open alone, two more opens and a received in a batch.
    one = app.post(
        "/v1/events",
        json={"name": "opened", "engagement": eid, "application": "ios", "token": PRO[0]},
    )
    assert one.status_code == 200 and one.json() == {"recorded": 1}, one.text
    batch = [
        {"name": "opened", "engagement": eid, "application": "ios", "token": PRO[1]},
        {"name": "opened", "engagement": eid, "application": "ios", "token": PRO[2].upper()},
        {"name": "received", "engagement": eid, "application": "ios", "token": PRO[3],
         "at": "2026-12-05T10:00:00Z", "details": {"screen": "home"}},
    ]  # fmt: skip
    answer = app.post("/v1/events/batch", json={"events": batch})
    assert answer.status_code == 200 and answer.json() == {"recorded": 3}, answer.text

    kpis = api(env, "sender").get(f"/v1/campaigns/{campaign['id']}/kpis").json()
    assert len(kpis["kpis"]) == 1
    row = kpis["kpis"][0]
    assert (row["treatment"], row["application"], row["sent"]) == ("A", "ios", 6)
    assert row["successful-deliveries"] == 6 and row["opened"] == 3
    assert row["push-open-rate"] == 0.5 and row["events"] == {"received": 1}
    assert [(t["treatment"], t["opened"], t["push-open-rate"]) for t in kpis["treatments"]] == [
        ("A", 3, 0.5)
    ]
    assert admin.get("/v1/campaigns/spring").json()["progress"]["open_rate"] == 0.5

    # The dashboard's figures: open rate per application and day.
    days = [k for k in admin.get("/v1/kpis?application=ios").json()["kpis"] if k["opened"]]
    assert len(days) == 1
    assert (days[0]["campaign_delivered"], days[0]["opened"], days[0]["open_rate"]) == (6, 3, 0.5)

    events = admin.get(f"/v1/campaigns/{campaign['id']}/events").json()["events"]
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["created", "scheduled"] and "completed" in kinds
    assert events[0]["actor"] == events[1]["actor"] == f"api:{key_id} (admin)"


def test_pause_resume_cancel_with_the_actor_and_conflicts(env):
    admin = api(env, "admin")
    body = campaign_body(
        "weekly-digest",
        schedule={"frequency": "daily", "start": "2030-01-01T09:00", "timezone": "Europe/Paris"},
        quiet_hours={"start": "22:00", "end": "08:00"},
        frequency_cap={"limit": 2, "period": "week"},
        rate_per_second=50,
        schedule_now=True,
    )
    created = admin.post("/v1/campaigns", json=body)
    assert created.status_code == 201, created.text
    c = created.json()
    assert c["state"] == "scheduled" and c["schedule"]["timezone"] == "Europe/Paris"
    assert c["quiet_hours"] == {"start": "22:00", "end": "08:00", "mode": "hold"}
    url = f"/v1/campaigns/{c['id']}"
    assert admin.post(url + "/pause").json()["state"] == "paused"
    assert admin.post(url + "/resume").json()["state"] == "scheduled"
    assert admin.post(url + "/cancel").json()["state"] == "cancelled"
    before = written(env["db"])
    is_problem(admin.post(url + "/resume"), 409, "state")
    assert written(env["db"]) == before
    events = admin.get(url + "/events").json()["events"]
    assert [e["kind"] for e in events] == ["created", "scheduled", "paused", "resumed", "cancelled"]
    assert events[2]["from_state"] == "scheduled" and events[2]["to_state"] == "paused"
    is_problem(admin.post("/v1/campaigns/no-such-campaign/pause"), 404)
    is_problem(admin.get("/v1/campaigns/999999"), 404)
    for odd in ("\u00b2", "9" * 30):  # digit-like, or beyond a BIGINT: no campaign
        is_problem(admin.get(f"/v1/campaigns/{odd}"), 404)
        is_problem(admin.post(f"/v1/campaigns/{odd}/pause"), 404)


def test_list_is_paged_and_filtered(env):
    admin = api(env, "admin")
    for i in range(3):
        assert admin.post("/v1/campaigns", json=campaign_body(f"draft-{i}")).status_code == 201
    everything = admin.get("/v1/campaigns?limit=500").json()
    assert everything["next_after"] is None
    ids = [c["id"] for c in everything["campaigns"]]
    assert ids == sorted(ids) and len(ids) >= 3
    pages, after = [], None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = admin.get("/v1/campaigns", params=params)
        pages += [c["id"] for c in page.json()["campaigns"]]
        after = page.json()["next_after"]
        if after is None:
            break
    assert pages == ids
    drafts = admin.get("/v1/campaigns?state=draft").json()["campaigns"]
    assert {c["name"] for c in drafts} >= {"draft-0", "draft-1", "draft-2"}
    assert all(c["state"] == "draft" for c in drafts)
    is_problem(admin.get("/v1/campaigns?state=sleeping"), 422, "state")


# -- who may do what ----------------------------------------------------------------------------


def _an_engagement_id(env) -> str:
    """An engagement id of a campaign that exists (the first sent one)."""
    admin = api(env, "admin")
    campaigns = admin.get("/v1/campaigns").json()["campaigns"]
    return engagement_id(campaigns[0]["id"], 1, 0)


def test_scopes_of_campaign_routes(env):
    app, sender = api(env, "app"), api(env, "sender")
    before = written(env["db"])
    for who in (app, sender):
        is_problem(who.post("/v1/campaigns", json=campaign_body("not-allowed")), 403)
        for action in ("schedule", "pause", "resume", "cancel"):
            is_problem(who.post(f"/v1/campaigns/spring/{action}"), 403)
    for path in ("", "/spring", "/spring/slots", "/spring/events", "/spring/kpis"):
        is_problem(app.get(f"/v1/campaigns{path}"), 403)
        assert sender.get(f"/v1/campaigns{path}").status_code == 200
    is_problem(app.get("/v1/kpis"), 403)
    is_problem(api(env, None).post("/v1/events", json={}), 401)
    is_problem(api(env, None).get("/v1/campaigns"), 401)
    assert written(env["db"]) == before


def test_an_app_key_posts_events_for_its_own_application_only(env):
    other_app, app = api(env, "other_app"), api(env, "app")
    eid = _an_engagement_id(env)
    before = written(env["db"])
    event = {"name": "opened", "engagement": eid, "application": "ios", "token": PRO[4]}
    is_problem(other_app.post("/v1/events", json=event), 403, "application")
    batch = [{**event, "application": "other", "token": OTHER[0]}, event]
    is_problem(other_app.post("/v1/events/batch", json={"events": batch}), 403,
               "events[1].application")  # fmt: skip
    # The endpoint id would name any application's device: not for the public key.
    by_id = {"name": "opened", "engagement": eid, "endpoint_id": 1}
    is_problem(app.post("/v1/events", json=by_id), 403, "endpoint_id")
    is_problem(app.post("/v1/events", json={"name": "opened", "engagement": eid}), 422,
               "application")  # fmt: skip
    assert written(env["db"]) == before
    # A sender key may name the endpoint by id.
    sender = api(env, "sender")
    assert sender.post("/v1/events", json=by_id).json() == {"recorded": 1}
    assert written(env["db"])[0] == before[0] + 1


def test_a_revoked_key_is_refused_at_once(env):
    admin = api(env, "admin")
    made = admin.post("/v1/keys", json={"name": "short-lived", "scope": "admin"}).json()
    short = client(env["server"], made["secret"])
    assert short.get("/v1/campaigns").status_code == 200
    assert admin.delete(f"/v1/keys/{made['key']['key_id']}").status_code == 200
    before = written(env["db"])
    is_problem(short.get("/v1/campaigns"), 401)
    is_problem(short.post("/v1/campaigns", json=campaign_body("after-revocation")), 401)
    assert written(env["db"]) == before


# -- bad input: a problem naming the field, nothing written -------------------------------------


def test_bad_events_are_refused_and_nothing_is_written(env):
    app = api(env, "app")
    eid = _an_engagement_id(env)
    good = {"name": "opened", "engagement": eid, "application": "ios", "token": PRO[5]}
    before = written(env["db"])
    cases = [
        ({**good, "colour": "red"}, 400, "colour"),
        ({**good, "name": "Opened!"}, 422, "name"),
        ({**good, "name": ""}, 400, "name"),
        ({**good, "engagement": "campaign-7"}, 422, "engagement"),
        ({**good, "token": "zz"}, 422, "token"),
        ({**good, "token": apns_token(99, "dd")}, 422, "token"),  # not registered
        ({**good, "at": "yesterday"}, 400, "at"),
        ({**good, "details": ["not", "an", "object"]}, 400, "details"),
        ({**good, "name": "opened\u0000"}, 422, "name"),
        ({k: v for k, v in good.items() if k != "engagement"}, 400, "engagement"),
    ]
    for body, status, field in cases:
        is_problem(app.post("/v1/events", json=body), status, field)
    bad_row = [good, good, {**good, "token": "not-hex"}, good]
    is_problem(app.post("/v1/events/batch", json={"events": bad_row}), 422, "events[2].token")
    unknown = [good, {**good, "extra": 1}]
    is_problem(app.post("/v1/events/batch", json={"events": unknown}), 400, "events[1].extra")
    is_problem(app.post("/v1/events/batch", json={"events": []}), 400, "events")
    too_many = {"events": [good] * 10_001}
    is_problem(app.post("/v1/events/batch", json=too_many), 400, "events")
    is_problem(app.post("/v1/events", content=b'{"name": "opened",', headers={
        "Content-Type": "application/json"}), 400)  # fmt: skip
    assert written(env["db"]) == before
    # The documented limit itself is accepted, in one call.
    full = app.post("/v1/events/batch", json={"events": [good] * 10_000})
    assert full.status_code == 200 and full.json() == {"recorded": 10_000}, full.text[:300]
    assert written(env["db"])[0] == before[0] + 10_000


def test_bad_campaigns_are_refused_naming_the_field(env):
    admin = api(env, "admin")
    before = written(env["db"])
    daily = {"frequency": "daily", "start": "2030-01-01T09:00"}
    cases = [
        (campaign_body("x", colour="red"), 400, "colour"),
        (campaign_body("x", schedule={**daily, "bogus": 1}), 400, "schedule.bogus"),
        (campaign_body("x", schedule={"frequency": "cron", "cron": "0 9 31 2 *"}), 422,
         "schedule.cron"),
        (campaign_body("x", schedule={**daily, "timezone": "Mars/Olympus"}), 422,
         "schedule.timezone"),
        (campaign_body("x", schedule={"frequency": "fortnightly"}), 422, "schedule.frequency"),
        (campaign_body("x", schedule={**daily, "end": "2029-01-01T09:00"}), 422, "schedule.end"),
        ({"name": "x", "segment": "plan=pro", "treatments": [
            {"message": {"title": "A"}, "percent": 60}, {"message": {"title": "B"}, "percent": 30}
        ]}, 422, "treatments"),
        (campaign_body("x", segment="app=ios favourite=blue"), 422, "segment.attributes.favourite"),
        (campaign_body("x", segment="app=nowhere"), 404, "segment.applications"),
        (campaign_body("x", holdout_percent=100), 422, "holdout_percent"),
        (campaign_body("x", rate_per_second=-1), 422, "rate_per_second"),
        (campaign_body("x", quiet_hours={"start": "25:00", "end": "08:00"}), 422,
         "quiet_hours.start"),
        (campaign_body("x", frequency_cap={"limit": 0}), 422, "frequency_cap.limit"),
        (campaign_body("x", message={"title": "x", "data": {"pushwire_engagement": "mine"}}),
         422, "treatments[0].message.data"),
        (campaign_body("12345"), 422, "name"),
        (campaign_body("spring"), 422, "name"),  # exists already
        ({"name": "x", "segment": "plan=pro"}, 422, "message"),
        ({**campaign_body("x"), "name": 7}, 400, "name"),
    ]  # fmt: skip
    for body, status, field in cases:
        is_problem(admin.post("/v1/campaigns", json=body), status, field)
    assert written(env["db"]) == before
    assert admin.get("/v1/campaigns?limit=500").json()["campaigns"][-1]["name"] != "x"
