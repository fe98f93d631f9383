"""`pushwire endpoints ...` and `pushwire send --to-segment` (and its older spelling
`pushwire send-segment`), through typer's CliRunner, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

import pushwire
from pushwire.cli.app import app as cli_app
from pushwire.cli.endpoints import endpoints_app
from pushwire.store import Store, StoreInputError
from pushwire.testing import MockAPNs, MockFCM
from support.store import BACKENDS, apns_token, database_url, fcm_token

runner = CliRunner()


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path):
    with database_url(request.param, tmp_path) as url:
        yield url


def run(*args: str, db: str | None = None, app: typer.Typer = endpoints_app, **kwargs):
    arguments = [*args, "--db", db] if db is not None else list(args)
    return runner.invoke(app, arguments, **kwargs)


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def listed(db: str, *args: str) -> list[dict]:
    out = ok(run("list", "--json", *args, db=db))
    return [json.loads(line) for line in out.splitlines()]


def add_apps(db: str, credentials_ref: str | None = None) -> None:
    extra = ["--credentials-ref", credentials_ref] if credentials_ref else []
    ok(run("add-app", "ios", "--provider", "apns", "--topic", "com.example.app", *extra, db=db))
    ok(run("add-app", "android", "--provider", "fcm", "--project-id", "demo", db=db))


def test_import_list_export_and_import_again(db, tmp_path):
    add_apps(db)
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(
        "app,token,user_id,attr.plan,attr.langs,data\n"
        f'ios,{apns_token(1)},u1,pro,en|fr,"{{""v"": ""5.2""}}"\n'
        f"ios,{apns_token(2)},u2,free,,\n"
        f"android,{fcm_token(1)},u1,pro,,\n"
    )
    jsonl_file = tmp_path / "more.jsonl"
    jsonl_file.write_text(
        json.dumps({"token": fcm_token(2), "user_id": "u3", "attributes": {"plan": "team"}})
        + "\n\n"
        + json.dumps({"token": fcm_token(3), "registered_at": "2026-05-01T12:00:00Z"})
        + "\n"
    )
    assert "imported 3 rows: 3 created" in ok(run("import", str(csv_file), db=db))
    assert "imported 2 rows: 2 created" in ok(
        run("import", str(jsonl_file), "--app", "android", db=db)
    )
    # Importing again is harmless.
    assert "0 created, 0 updated, 0 re-enabled, 3 unchanged" in ok(
        run("import", str(csv_file), db=db)
    )

    everything = listed(db)
    assert len(everything) == 5
    first = everything[0]
    assert first["attributes"] == {"plan": "pro", "langs": ["en", "fr"]}
    assert first["data"] == {"v": "5.2"} and first["user_id"] == "u1"
    assert [e["token"] for e in listed(db, "--app", "ios")] == [apns_token(1), apns_token(2)]
    assert {e["token"] for e in listed(db, "--filter", "plan=pro,team")} == {
        apns_token(1),
        fcm_token(1),
        fcm_token(2),
    }
    assert [e["token"] for e in listed(db, "--user", "u1", "--filter", "app=android")] == [
        fcm_token(1)
    ]
    assert len(listed(db, "--limit", "2")) == 2
    table = ok(run("list", db=db))
    assert "5 endpoint(s)" in table

    exported = tmp_path / "export.jsonl"
    ok(run("export", str(exported), db=db))
    other = f"sqlite:///{tmp_path}/other.db"
    add_apps(other)
    ok(run("import", str(exported), db=other))
    assert listed(other) == everything
    csv_export = ok(run("export", "--format", "csv", "--filter", "app=ios", db=db))
    assert csv_export.splitlines()[0].startswith("app,token,user_id,enabled")
    (tmp_path / "back.csv").write_text(csv_export)
    assert "2 unchanged" in ok(run("import", str(tmp_path / "back.csv"), db=db))


def test_a_bad_row_imports_nothing_and_names_its_line(db, tmp_path):
    add_apps(db)
    bad = tmp_path / "bad.csv"
    rows = [f"ios,{apns_token(i)},u{i}" for i in range(6)]
    rows[3] = "ios,not-a-hex-token,u3"
    bad.write_text("app,token,user_id\n" + "\n".join(rows) + "\n")
    result = run("import", str(bad), db=db)
    assert result.exit_code == 2
    assert "line 5" in result.stderr and "hexadecimal" in result.stderr
    assert "Traceback" not in result.output
    assert listed(db) == []
    for content, words in [
        ("app,token,colour\nios,ab,red\n", "unknown column"),
        ('{"app": "ios", "token": "ab"\n', "not valid JSON"),
        ('{"app": "watch", "token": "ab"}\n', "no application named 'watch'"),
        ('{"app": "ios", "token": "ab", "registered_at": "yesterday"}\n', "registered_at"),
    ]:
        path = tmp_path / ("f.csv" if content.startswith("app,") else "f.jsonl")
        path.write_text(content)
        result = run("import", str(path), db=db)
        assert result.exit_code == 2 and words in result.stderr, result.output
    assert listed(db) == []


def test_disable_by_token(db):
    add_apps(db)
    with Store.open(db) as store:
        shared = apns_token(7)  # hex is a valid FCM token too
        store.register("ios", shared)
        store.register("android", shared)
        store.register("ios", apns_token(8))
    result = run("disable", shared, db=db)
    assert result.exit_code == 2 and "add --app" in result.stderr
    assert "disabled ios" in ok(run("disable", apns_token(8), "--reason", "support ticket", db=db))
    ok(run("disable", shared, "--app", "android", db=db))
    disabled = listed(db, "--status", "disabled")
    assert {(e["app"], e["disabled_reason"]) for e in disabled} == {
        ("ios", "support ticket"),
        ("android", "manual"),
    }
    events = [
        json.loads(line) for line in ok(run("events", "--kind", "disabled", db=db)).splitlines()
    ]
    assert [e["cause"] for e in events] == ["cli", "cli"]
    result = run("disable", apns_token(99), db=db)
    assert result.exit_code == 2 and "no endpoint" in result.stderr


def test_usage_errors_are_one_line(tmp_path):
    result = run("list")
    assert result.exit_code == 2 and "give --db" in result.stderr
    result = run("list", db="postgresql://nobody:secret@127.0.0.1:9/none")
    assert result.exit_code == 2 and "cannot connect" in result.stderr
    assert "secret" not in result.output
    result = run("list", db="mysql://x/y")
    assert result.exit_code == 2 and "unsupported" in result.stderr
    url = f"sqlite:///{tmp_path}/env.db"
    result = runner.invoke(endpoints_app, ["migrate"], env={"PUSHWIRE_DB": url})
    assert result.exit_code == 0 and "schema up to date" in result.stdout
    result = runner.invoke(
        endpoints_app, ["add-app", "x", "--provider", "apns"], env={"PUSHWIRE_DB": url}
    )
    assert result.exit_code == 2 and "topic" in result.stderr


def test_send_to_a_segment_from_the_command_line(db, tmp_path, credentials, p8_key):
    key_file = tmp_path / "AuthKey_ABC123DEFG.p8"
    key_file.write_bytes(p8_key)
    add_apps(db, credentials_ref=f"p8:{key_file}?key_id=ABC123DEFG&team_id=TEAM123456")
    with Store.open(db) as store:
        for i in range(20):
            store.register("ios", apns_token(i), attributes={"plan": "pro"})
        for i in range(3):
            store.register("ios", apns_token(i, "dead"), attributes={"plan": "pro"})
        store.register("ios", apns_token(1, "5030"), attributes={"plan": "free"})
        store.register("android", fcm_token(1), attributes={"plan": "free"})

    with MockAPNs(credentials=credentials, rules={"dead": "unregistered", "5030": "503"}) as apns:

        def send(*args: str):
            return run(
                "send",
                *args,
                "--apns-url",
                apns.url,
                "--ca-file",
                str(apns.ca_file),
                "--request-timeout",
                "5",
                db=db,
                app=cli_app,
            )

        result = send("--to-segment", "plan=pro", "--title", "Hi", "--body", "there", "--json")
        report = json.loads(ok(result))
        assert report["total"] == 23 and report["delivered"] == 20
        assert report["tokens_disabled"] == 3 and report["by_reason"] == {"Unregistered": 3}
        assert apns.received(apns_token(1, "5030")) == 0

        text = send("--to-segment", "app=ios", "--body", "again", "--data", "k=v")
        # The 503 needs a retry: exit 1; the dead tokens were skipped this time.
        assert text.exit_code == 1, text.output
        assert "21 notifications, 20 delivered" in text.stdout
        assert "ServiceUnavailable 1" in text.stdout

        # The android app has no credentials: a clear error before anything is sent.
        before = apns.total_received
        result = send("--to-segment", "all", "--body", "x")
        assert result.exit_code == 2 and "credentials_ref" in result.stderr
        assert apns.total_received == before
        result = send("--to-segment", "plan=pro", "--url", "a", "--deep-link", "b", "--body", "x")
        assert result.exit_code == 2 and "not both" in result.stderr
        result = send("--to-segment", "plan=pro")
        assert result.exit_code == 2 and "body" in result.stderr

        # The older spelling is kept: `pushwire send-segment` is the same command.
        result = run(
            "send-segment",
            "--to-segment",
            "app=ios",
            "--body",
            "alias",
            "--apns-url",
            apns.url,
            "--ca-file",
            str(apns.ca_file),
            db=db,
            app=cli_app,
        )
        assert result.exit_code == 1 and "21 notifications, 20 delivered" in result.stdout

    assert {e["token"] for e in listed(db, "--status", "disabled")} == {
        apns_token(i, "dead") for i in range(3)
    }
    kpis = ok(run("kpis", db=db))
    assert "ios" in kpis and "65" in kpis  # three runs: 23 + 21 + 21 sent


def write_service_account(path) -> pushwire.ServiceAccountCredentials:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "pusher@demo-project.iam.gserviceaccount.com",
    }
    path.write_text(json.dumps(info))
    return pushwire.ServiceAccountCredentials(info)


def test_send_to_segment_reaches_apns_and_fcm_endpoints_of_the_store(db, tmp_path, p8_key):
    """`pushwire send --to-segment` with an attribute filter, to an APNs and an FCM app of the
    store. One mock serves both protocols (routed by path; it checks the FCM OAuth2 grant), so
    --base-url is the server of every application of the segment."""
    key_file = tmp_path / "AuthKey_ABC123DEFG.p8"
    key_file.write_bytes(p8_key)
    account_file = tmp_path / "service-account.json"
    account = write_service_account(account_file)
    ok(
        run(
            "add-app",
            "ios",
            "--provider",
            "apns",
            "--topic",
            "com.example.app",
            "--credentials-ref",
            f"p8:{key_file}?key_id=ABC123DEFG&team_id=TEAM123456",
            db=db,
        )
    )
    ok(run("add-app", "android", "--provider", "fcm", "--project-id", "demo-project",
           "--credentials-ref", f"service-account:{account_file}", db=db))  # fmt: skip
    with Store.open(db) as store:
        for i in range(5):
            store.register("ios", apns_token(i), attributes={"plan": "pro"})
            store.register("android", fcm_token(i), attributes={"plan": "pro"})
        store.register("ios", apns_token(9, "dead"), attributes={"plan": "pro"})
        store.register("android", fcm_token(1, "dead"), attributes={"plan": "pro"})
        store.register("ios", apns_token(7), attributes={"plan": "free"})
        store.register("android", fcm_token(7), attributes={"plan": "free"})

    with MockFCM(credentials=account, rules={"dead": "unregistered"}) as server:
        result = run(
            "send",
            "--to-segment",
            "attr:plan=pro",
            "--title",
            "Hi",
            "--body",
            "there",
            "--data",
            "order=42",
            "--base-url",
            server.url,
            "--token-uri",
            server.token_uri,
            "--ca-file",
            str(server.ca_file),
            "--actor",
            "cli-test",
            "--json",
            db=db,
            app=cli_app,
        )
        report = json.loads(ok(result))
        assert report["total"] == 12 and report["delivered"] == 10
        assert report["tokens_disabled"] == 2
        assert report["applications"]["ios"]["delivered"] == 5
        assert report["applications"]["android"]["delivered"] == 5
        assert all(server.received(apns_token(i)) == 1 for i in range(5))
        assert all(server.received(fcm_token(i)) == 1 for i in range(5))
        # Not in the segment: nothing sent.
        assert server.received(apns_token(7)) == 0 and server.received(fcm_token(7)) == 0
        assert server.oauth_tokens_issued == 1
    assert {e["token"] for e in listed(db, "--status", "disabled")} == {
        apns_token(9, "dead"),
        fcm_token(1, "dead"),
    }
    with Store.open(db) as store:
        (latest,) = store.runs(limit=1)
        assert latest.actor == "cli-test"


def test_send_takes_input_or_segment_and_says_which_options_belong_where(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"token": apns_token(1)}) + "\n")
    url = f"sqlite:///{tmp_path}/store.db"

    def send(*args: str, env: dict[str, str] | None = None):
        result = runner.invoke(cli_app, ["send", *args], env=env)
        assert "Traceback" not in result.output
        return result

    def refused(result, words: str) -> None:
        assert result.exit_code == 2, result.output
        assert words in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr

    refused(send("-i", str(rows), "--to-segment", "all", "--body", "x"), "not both")
    refused(send("--body", "x"), "give --input FILE")
    refused(send("-i", str(rows), "--db", url, "--body", "x"), "--db: only with --to-segment")
    refused(send("-i", str(rows), "--json", "--actor", "me"), "--actor, --json: only with")
    refused(send("--to-segment", "all", "--body", "x", env={"PUSHWIRE_DB": ""}), "give --db")
    for extra, words in [
        (["--p8", "key.p8"], "credentials_ref"),
        (["--topic", "com.x"], "the application's"),
        (["--results", "out.jsonl"], "--results applies to --input sends only"),
        (["--sandbox"], "--sandbox"),
    ]:
        refused(send("--to-segment", "all", "--db", url, "--body", "x", *extra), words)
    # A store that does not exist is not created (it would send to nobody).
    refused(send("--to-segment", "all", "--db", url, "--body", "x"), "no store at")
    assert not (tmp_path / "store.db").exists()
    # Credentials in the environment belong to --input sends: ignored with --to-segment.
    env = {"PUSHWIRE_P8": str(tmp_path / "AuthKey_ABC123DEFG.p8"), "PUSHWIRE_TEAM_ID": "T"}
    refused(send("--to-segment", "all", "--db", url, "--body", "x", env=env), "no store at")
    # A store without applications.
    with Store.open(url):
        pass
    refused(send("--to-segment", "all", "--db", url, "--body", "x"), "has no applications")
    # A bad filter.
    with Store.open(url) as store:
        store.put_application("ios", provider="apns", topic="com.example.app")
    refused(send("--to-segment", "plan", "--db", url, "--body", "x"), "not key=value")


@pytest.mark.parametrize(
    "url", ["sqlite:///relative.db", "sqlite:////absolute/store.db", "plain/path.db"]
)
def test_db_is_passed_to_store_open_as_given(monkeypatch, tmp_path, url):
    # The CLI reads no URL itself: Store.open decides what sqlite:///x.db means.
    seen: list[str | None] = []

    def refuse(cls, given=None, **options):
        seen.append(given)
        raise StoreInputError("stopped by the test")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Store, "open", classmethod(refuse))
    for args, env in (
        (["endpoints", "migrate", "--db", url], {}),
        (["endpoints", "list"], {"PUSHWIRE_DB": url}),
        (["enqueue", "--to-segment", "all", "--body", "x", "--db", url], {}),
    ):
        result = runner.invoke(cli_app, args, env=env)
        assert result.exit_code == 2 and "stopped by the test" in result.stderr, args
    assert seen == [url, url, url]
    assert list(tmp_path.iterdir()) == []
