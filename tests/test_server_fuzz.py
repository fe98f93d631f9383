"""Fuzzing `pushwire serve` from its own OpenAPI document (schemathesis): thousands of
generated requests, valid and not, against the live server over HTTP with an admin key;
not one may be answered with a 5xx, and the server must log no unexpected error."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from pushwire.store import Store
from pushwire.testing import MockAPNs
from support.server import apns_token, create_key, running_server
from support.store import database_url

#: Examples per operation (about 34 operations): ~3,400 requests on SQLite, ~850 more on
#: PostgreSQL (which refuses more kinds of text, NUL characters for one).
EXAMPLES = {"sqlite": 100, "postgresql": 25}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request, tmp_path_factory, p8_key):
    directory = tmp_path_factory.mktemp("fuzz")
    with database_url(request.param, directory) as db:
        yield from _serve(db, directory, p8_key, request.param)


def _serve(db: str, directory, p8_key: bytes, backend: str):
    key_file = directory / "AuthKey_ABC123DEFG.p8"
    key_file.write_bytes(p8_key)
    with Store.open(db) as store:
        store.put_application(
            "ios",
            provider="apns",
            topic="com.example.app",
            credentials_ref=f"p8:{key_file}?key_id=ABC123DEFG&team_id=TEAM123456",
        )
        for i in range(3):
            store.register("ios", apns_token(i), user_id="u1", attributes={"plan": "pro"})
        # A campaign for the campaign routes to find (half their generated keys name it).
        store.campaigns.create("seeded", segment="plan=pro", message={"title": "hi"})
    admin = create_key(db, "fuzz", "admin", rate_limit=1_000_000)
    log = directory / "server.log"
    with MockAPNs() as mock:
        extra = ["--apns-url", mock.url, "--ca-file", str(mock.ca_file)]
        with running_server(db, *extra, log=log) as server:
            yield server, admin, log, backend
    text = log.read_text(errors="replace")
    assert "unexpected error" not in text and "database error" not in text


@pytest.mark.timeout(300)
def test_no_generated_request_gets_a_server_error(live):
    server, admin, _, backend = live
    auth = {"Authorization": f"Bearer {admin}"}
    schema = schemathesis.openapi.from_url(f"{server.url}/docs/openapi.json", headers=auth)
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES[backend],
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def call(case) -> None:
            if "key" in (case.path_parameters or {}) and sum(statuses.values()) % 2:
                case.path_parameters["key"] = "seeded"
            response = case.call(headers=auth, timeout=30)
            statuses[response.status_code] += 1
            assert response.status_code < 500, (case.method, case.formatted_path, response.text)
            if response.status_code >= 400 and response.content:
                kind = response.headers.get("content-type", [""])[0]
                assert kind.startswith("application/problem+json"), (case.formatted_path, kind)

        call()
    total = sum(statuses.values())
    print(f"fuzz: {total} requests, statuses {dict(sorted(statuses.items()))}")
    assert total >= 20 * EXAMPLES[backend], statuses
