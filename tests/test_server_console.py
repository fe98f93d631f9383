"""The console in a real browser: headless Chromium from Debian driven by Selenium (the
system chromedriver, nothing downloaded), on a live `pushwire serve` with a seeded store and
a mock APNs server. Screenshots go to $PUSHWIRE_TEST_ARTIFACTS (default tests/artifacts/)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pushwire.campaigns import engagement_id
from pushwire.store import PushMessage, SegmentFilter, Store
from pushwire.testing import MockAPNs
from support.server import apns_token, client, close_clients, create_key, running_server

pytestmark = pytest.mark.timeout(240)

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("PUSHWIRE_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))

#: The seeded send runs: day -> (live tokens, dead tokens). Dead ones are disabled.
SEEDED = {"2026-11-30": (8, 2), "2026-12-01": (12, 0), "2026-12-02": (5, 3)}
#: A campaign sent on 2026-12-01 to that day's cohort (12 live tokens); the app reports
#: opens for 3 of them: open rate 25 % that day.
CAMPAIGN_DAY, CAMPAIGN_OPENS = "2026-12-01", 3


def _ms(day: str) -> int:
    moment = datetime.fromisoformat(day).replace(hour=12, tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def seed(db: str, mock: MockAPNs, key_ref: str) -> None:
    """One send run per seeded day (the store's clock set to that day), through the mock."""
    now = {"ms": 0}
    with Store.open(db, clock=lambda: now["ms"]) as store:
        store.put_application("ios", provider="apns", topic="com.example.app",
                              credentials_ref=key_ref)  # fmt: skip
        for n, (day, (live, dead)) in enumerate(SEEDED.items()):
            now["ms"] = _ms(day)
            cohort = f"c{n}"
            for i in range(live):
                store.register("ios", apns_token(i, f"a{n}"), attributes={"cohort": cohort})
            for i in range(dead):
                store.register("ios", apns_token(i, f"dead{n}"), attributes={"cohort": cohort})

            async def send(cohort: str = cohort) -> None:
                async with mock.client() as c:
                    await store.send_to_segment(
                        SegmentFilter(attributes={"cohort": cohort}),
                        PushMessage(title="seed"),
                        clients={"ios": c},
                    )

            asyncio.run(send())
        now["ms"] = _ms(CAMPAIGN_DAY) + 3_600_000
        campaigns = store.campaigns
        campaign = campaigns.create("seeded-sale", segment="cohort=c1", message={"title": "Sale"})
        campaigns.schedule(campaign.id, actor="seed")

        async def run_slot() -> None:
            async with mock.client() as c:
                assert len(await campaigns.scheduler(clients={"ios": c}).tick()) == 1

        asyncio.run(run_slot())
        (slot,) = campaigns.slots(campaign.id)
        eid = engagement_id(campaign.id, slot.id, 0)
        opens = [
            {
                "name": "opened",
                "engagement": eid,
                "application": "ios",
                "token": apns_token(i, "a1"),
            }
            for i in range(CAMPAIGN_OPENS)
        ]
        assert campaigns.record_engagement(opens) == CAMPAIGN_OPENS


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()):
        pytest.fail(
            "chromium and chromium-driver are needed: apt-get install chromium chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_window_size(1280, 900)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def live(tmp_path_factory, p8_key):
    directory = tmp_path_factory.mktemp("console")
    db = f"sqlite:///{directory}/store.db"
    key_file = directory / "AuthKey_ABC123DEFG.p8"
    key_file.write_bytes(p8_key)
    rules = {"dead": "unregistered", "bbbb": "delay:4000"}
    with MockAPNs(rules=rules) as mock:
        seed(db, mock, f"p8:{key_file}?key_id=ABC123DEFG&team_id=TEAM123456")
        admin = create_key(db, "console", "admin")
        extra = ["--apns-url", mock.url, "--ca-file", str(mock.ca_file), "--sync-send-limit", "5"]
        with running_server(db, *extra) as server:
            yield server, admin, mock, db
    close_clients()


def wait_for(condition, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def screenshot(driver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_console_in_a_browser(browser, live):
    from selenium.webdriver.common.by import By

    server, admin, mock, db = live
    d = browser
    d.delete_all_cookies()
    d.get(server.url + "/console")
    # Without a key: only the login.
    wait_for(lambda: d.find_element(By.ID, "login-view").is_displayed(), what="login view")
    assert not d.find_element(By.ID, "app-view").is_displayed()
    screenshot(d, "console-login")

    d.find_element(By.ID, "login-key").send_keys(admin)
    d.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait_for(lambda: d.find_element(By.ID, "app-view").is_displayed(), what="dashboard")
    assert "HttpOnly" not in d.execute_script("return document.cookie") and not d.execute_script(
        "return document.cookie"
    )  # the session cookie is invisible to scripts

    # The chart: one group per seeded day, bars carrying the seeded numbers.
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#delivery-chart g.day"), what="chart")
    drawn = {}
    for group in d.find_elements(By.CSS_SELECTOR, "#delivery-chart g.day"):
        bars = {
            rect.get_attribute("class"): int(rect.get_attribute("data-value"))
            for rect in group.find_elements(By.TAG_NAME, "rect")
        }
        heights = {
            rect.get_attribute("class"): float(rect.get_attribute("height"))
            for rect in group.find_elements(By.TAG_NAME, "rect")
        }
        drawn[group.get_attribute("data-day")] = bars
        assert (heights["delivered"] > 0) == (bars["delivered"] > 0)
    campaign_sent = SEEDED[CAMPAIGN_DAY][0]  # the campaign's sends count with the day's
    assert drawn == {
        day: {"delivered": live_n + (campaign_sent if day == CAMPAIGN_DAY else 0),
              "failed": dead, "disabled": dead}
        for day, (live_n, dead) in SEEDED.items()
    }  # fmt: skip
    row = d.find_element(By.CSS_SELECTOR, '#per-app tr[data-application="ios"]')
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    sent = sum(a + b for a, b in SEEDED.values()) + campaign_sent
    delivered = sum(a for a, _ in SEEDED.values()) + campaign_sent
    assert cells[:5] == ["ios", str(sent), str(delivered), str(sent - delivered),
                         str(sent - delivered)]  # fmt: skip
    assert cells[6] == f"{100 * CAMPAIGN_OPENS / campaign_sent:.1f} %"  # 25.0 %

    # The open rate per day: a bar on the campaign's day only, drawn with its numbers.
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#open-rate-chart g.day"), what="open rate")
    bars = {
        g.get_attribute("data-day"): [
            (int(r.get_attribute("data-opened")), int(r.get_attribute("data-delivered")),
             float(r.get_attribute("height")))
            for r in g.find_elements(By.CSS_SELECTOR, "rect.opened")
        ]
        for g in d.find_elements(By.CSS_SELECTOR, "#open-rate-chart g.day")
    }  # fmt: skip
    assert set(bars) == set(SEEDED)
    assert {day: [b[:2] for b in found] for day, found in bars.items()} == {
        day: [(CAMPAIGN_OPENS, campaign_sent)] if day == CAMPAIGN_DAY else [] for day in SEEDED
    }
    full_height = 180 - 12 - 30  # the chart's plot height: 100 %
    assert abs(bars[CAMPAIGN_DAY][0][2] - full_height * CAMPAIGN_OPENS / campaign_sent) < 0.01
    screenshot(d, "console-dashboard-desktop")
    d.execute_script("document.getElementById('per-app').scrollIntoView()")
    screenshot(d, "console-open-rate")

    # The campaign and its progress: one slot done, what it sent, delivered and opened.
    d.get(server.url + "/console#campaigns")
    item = '#campaign-list li[data-campaign="seeded-sale"]'
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, item), what="campaign list")
    shown = d.execute_script(
        "const li = document.querySelector(arguments[0]); return [li.dataset.slots,"
        " li.dataset.slotsDone, li.dataset.sent, li.dataset.delivered, li.dataset.opened,"
        " li.querySelector('progress').getAttribute('value')];",
        item,
    )
    assert shown == ["1", "1", str(campaign_sent), str(campaign_sent), str(CAMPAIGN_OPENS), "1"]
    text = d.find_element(By.CSS_SELECTOR, item).text
    assert "seeded-sale" in text and "25.0 %" in text
    screenshot(d, "console-campaigns-desktop")

    # A job with live progress: 10 quick endpoints and 10 that the mock answers after 4 s.
    with Store.open(db) as store:
        for i in range(10):
            store.register("ios", apns_token(i, "aaaa"), attributes={"cohort": "job"})
            store.register("ios", apns_token(i, "bbbb"), attributes={"cohort": "job"})
    sender = client(server, admin)
    answer = sender.post("/v1/sends", json={"message": {"title": "Job"},
                                            "segment": "cohort=job"}).json()  # fmt: skip
    job_id = answer["job_id"]
    item = f'#job-list li[data-job="{job_id}"]'

    def job_state():
        # Read in one script: the list is redrawn every second, so a found element can go
        # stale before its attributes are read.
        state = d.execute_script(
            "const li = document.querySelector(arguments[0]);"
            "return li ? [li.dataset.state, Number(li.dataset.recorded)] : null;",
            item,
        )
        return tuple(state) if state else None

    partial = wait_for(lambda: (s := job_state()) and s[0] == "running" and 0 < s[1] < 20 and s,
                       what="a job part done")  # fmt: skip
    assert partial[1] <= 10  # the quick half (the slow half answers after 4 s)
    screenshot(d, "console-job-progress")
    wait_for(lambda: job_state() == ("complete", 20), what="the job complete")
    progress = d.execute_script(
        "const p = document.querySelector(arguments[0] + ' progress');"
        "return [p.getAttribute('value'), p.getAttribute('max')];",
        item,
    )
    assert progress == ["20", "20"]

    # Device search and history, then a test send to that device from the form.
    d.get(server.url + "/console#devices")
    wait_for(lambda: d.find_element(By.ID, "app-view").is_displayed(), what="app view")
    box = d.find_element(By.ID, "search-segment")
    box.clear()
    box.send_keys("cohort=c1")
    d.find_element(By.CSS_SELECTOR, "#search-form button").click()
    target = apns_token(3, "a1")
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, f'#device-list tr[data-token="{target}"]'),
             what="search result")  # fmt: skip
    d.find_element(By.CSS_SELECTOR, f'#device-list tr[data-token="{target}"]').click()
    wait_for(lambda: "created" in d.find_element(By.ID, "history").text, what="history")
    assert d.find_element(By.ID, "send-token").get_attribute("value") == target
    before = mock.received(target)
    d.find_element(By.CSS_SELECTOR, "#send-form button").click()
    result = wait_for(
        lambda: d.find_element(By.ID, "send-result").get_attribute("data-delivered"),
        what="send result",
    )
    assert result == "1" and "delivered: 1" in d.find_element(By.ID, "send-result").text
    assert mock.received(target) == before + 1
    screenshot(d, "console-test-send")

    # Phone-sized: the same page, nothing wider than the screen.
    d.set_window_size(390, 844)
    d.get(server.url + "/console")
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#delivery-chart g.day"), what="chart")
    overflow = d.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, overflow
    screenshot(d, "console-dashboard-phone")
    d.find_element(By.CSS_SELECTOR, 'nav a[href="#campaigns"]').click()
    wait_for(lambda: d.find_elements(By.CSS_SELECTOR, item), what="campaigns on a phone")
    overflow = d.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, overflow
    screenshot(d, "console-campaigns-phone")
    d.set_window_size(1280, 900)

    # Logging out shows only the login again.
    d.find_element(By.ID, "logout").click()
    wait_for(lambda: d.find_element(By.ID, "login-view").is_displayed(), what="login after logout")
    d.get(server.url + "/console")
    wait_for(lambda: d.find_element(By.ID, "login-view").is_displayed(), what="login on reload")
    assert not d.find_element(By.ID, "app-view").is_displayed()


def test_artifacts_directory_is_ignored_by_git():
    ignored = (Path(__file__).parent.parent / ".gitignore").read_text().split()
    assert "tests/artifacts/" in ignored or "/tests/artifacts/" in ignored
    assert shutil.which("git")
