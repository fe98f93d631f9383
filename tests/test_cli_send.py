"""`pushwire send` against the mock APNs and FCM servers, through the real entry point."""

from __future__ import annotations

import json

import pytest

from pushwire import ServiceAccountCredentials
from pushwire.testing import MockAPNs, MockFCM
from support.cli import (
    apns_args,
    certificate_authority,
    invoke,
    mode,
    pem,
    push_certificate,
    read_jsonl,
    service_account_info,
    write_csv,
    write_jsonl,
    write_p8,
    write_p12,
)
from support.util import tokens

RULES = {"dead": "unregistered", "bad0": "bad-token"}
RESULT_FIELDS = {
    "index",
    "line",
    "token",
    "outcome",
    "status",
    "reason",
    "action",
    "apns_id",
    "timestamp_ms",
    "error",
    "maybe_delivered",
}


@pytest.fixture(scope="module")
def server(credentials):
    with MockAPNs(credentials=credentials, rules=RULES) as server:
        yield server


@pytest.fixture
def p8(tmp_path, p8_key):
    return write_p8(tmp_path / "AuthKey_ABC123DEFG.p8", p8_key)


def send(server, p8, *args, **kwargs):
    return invoke(["send", *apns_args(server, p8), "--no-progress", *args], **kwargs)


def test_jsonl_rows_are_each_sent_once_and_recorded_in_a_private_results_file(server, p8, tmp_path):
    toks = tokens(300, "a1")
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": t} for t in toks])
    results = tmp_path / "results.jsonl"
    result = send(server, p8, "-i", str(source), "--results", str(results), "--title", "Hi")
    assert result.exit_code == 0, result.output
    rows = read_jsonl(results)
    assert len(rows) == len(toks)
    assert set(rows[0]) == RESULT_FIELDS
    assert sorted(r["line"] for r in rows) == list(range(1, len(toks) + 1))
    by_line = {r["line"]: r for r in rows}
    assert [by_line[i + 1]["token"] for i in range(len(toks))] == toks
    assert all(r["outcome"] == "delivered" and r["action"] == "delivered" for r in rows)
    assert all(server.received(t) == 1 for t in toks)
    assert mode(results) == 0o600
    assert "pushwire send" in result.stdout and "outcome delivered" in result.stdout
    assert "throughput" in result.stdout and "p50" in result.stdout


def test_csv_rows_with_per_row_fields(server, p8, tmp_path):
    toks = tokens(4, "a2")
    ids = [f"123e4567-e89b-12d3-a456-42661417400{i}" for i in range(4)]
    source = write_csv(
        tmp_path / "in.csv",
        ["token", "title", "badge", "custom", "apns_id", "user_id"],
        [
            [toks[0], "Hello Ada", "1", '{"order": 1}', ids[0], "u1"],
            [toks[1], "Hello Bob", "", "", ids[1], "u2"],
            [toks[2], "", "3", "", ids[2], "u3"],
            [toks[3], "", "", "", ids[3], "u4"],
        ],
    )
    results = tmp_path / "results.jsonl"
    result = send(server, p8, "-i", str(source), "--results", str(results))
    assert result.exit_code == 0, result.output
    rows = sorted(read_jsonl(results), key=lambda r: r["line"])
    assert [r["line"] for r in rows] == [2, 3, 4, 5]  # line 1 is the header
    assert [r["apns_id"] for r in rows] == ids  # per-row apns-id, echoed by the server
    assert all(server.received(t) == 1 for t in toks)
    assert "ignoring the input field 'user_id'" in result.stderr


def test_dead_tokens_alone_exit_0_and_go_to_the_drop_tokens_file(server, p8, tmp_path):
    alive, dead = tokens(20, "a3"), tokens(3, "dead", start=300)
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": t} for t in alive + dead])
    drops = tmp_path / "drop.jsonl"
    result = send(
        server, p8, "-i", str(source), "--results", str(tmp_path / "r.jsonl"),
        "--drop-tokens", str(drops),
    )  # fmt: skip
    assert result.exit_code == 0, result.output  # as with --to-segment: dead tokens are handled
    dropped = read_jsonl(drops)
    assert [d["token"] for d in dropped] == dead or sorted(d["token"] for d in dropped) == dead
    assert all(d["reason"] == "Unregistered" and d["timestamp_ms"] > 0 for d in dropped)
    assert mode(drops) == 0o600
    assert "410 Unregistered" in result.stdout


def test_drop_tokens_as_csv(server, p8, tmp_path):
    dead = tokens(2, "dead", start=400)
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": t} for t in dead])
    drops = tmp_path / "drop.csv"
    assert send(server, p8, "-i", str(source), "--drop-tokens", str(drops)).exit_code == 0
    lines = drops.read_text().splitlines()
    assert lines[0] == "token,reason,timestamp_ms,line"
    assert sorted(line.split(",")[0] for line in lines[1:]) == dead


def test_dead_tokens_with_another_failure_exit_1(server, p8, tmp_path):
    rows = [{"token": t} for t in tokens(2, "dead", start=500)] + [{"token": "not-hex!"}]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    assert send(server, p8, "-i", str(source)).exit_code == 1


@pytest.mark.parametrize("content", ["", "\n\n", "token,title\n"], ids=["empty", "blank", "header"])
def test_an_input_without_rows_warns_and_exits_0(server, p8, tmp_path, content):
    source = tmp_path / ("in.csv" if content.startswith("token") else "in.jsonl")
    source.write_text(content)
    result = send(server, p8, "-i", str(source))
    assert result.exit_code == 0, result.output
    assert f"warning: {source} holds no rows: nothing was sent" in result.stderr.splitlines()


def test_a_connection_that_cannot_be_made_prints_its_whole_cause_once(server, p8, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": t} for t in tokens(5, "a9")])
    args = [a for a in apns_args(server, p8) if a not in ("--ca-file", str(server.ca_file))]
    # Without the mock's CA its certificate is not trusted: the TLS handshake fails.
    result = invoke(["send", *args, "--no-progress", "-i", str(source)], env={"COLUMNS": "80"})
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: 5 notifications not sent: no connection after")
    assert "UnknownIssuer" in errors[0] and errors[0].endswith(")")
    assert "not sent: not sent" not in result.output
    # The table names the kind of failure in whole words; the cause is on the error line.
    assert "not sent: no connection after" in result.stdout
    assert "TLS handshake" not in result.stdout


def test_a_burst_of_bad_device_tokens_drops_nothing_and_warns(server, p8, tmp_path):
    bad = tokens(60, "bad0")
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": t} for t in bad])
    drops = tmp_path / "drop.jsonl"
    result = send(server, p8, "-i", str(source), "--drop-tokens", str(drops))
    assert result.exit_code == 1
    assert drops.read_text() == ""
    assert "BadDeviceToken" in result.stderr and "--sandbox" in result.stderr


def test_bad_rows_name_their_line_and_the_valid_rows_are_still_sent(server, p8, tmp_path):
    good = tokens(3, "a4")
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"token": good[0]},
            '{"token": "abc", ',
            {"token": "not-hex!"},
            {"title": "no token"},
            "",
            {"token": good[1], "badge": "three"},
            {"token": good[2], "apns_id": "nope"},
        ],
    )
    results = tmp_path / "r.jsonl"
    result = send(server, p8, "-i", str(source), "--results", str(results))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "in.jsonl line 2: not valid JSON" in result.stderr
    assert "in.jsonl line 3: token is not hexadecimal" in result.stderr
    assert "in.jsonl line 4: no token" in result.stderr
    assert "in.jsonl line 6: badge must be a whole number" in result.stderr
    assert "in.jsonl line 7: apns_id 'nope' is not a UUID" in result.stderr
    rows = {r["line"]: r for r in read_jsonl(results)}
    assert sorted(rows) == [1, 2, 3, 4, 6, 7]  # one line per row; the blank line is no row
    assert rows[1]["outcome"] == "delivered"
    for line in (2, 3, 4, 6, 7):
        assert rows[line]["outcome"] == "failed" and f"line {line}" in rows[line]["error"]
    assert server.received(good[0]) == 1
    assert server.received(good[1]) == server.received(good[2]) == 0


def test_strict_stops_at_the_first_bad_row_and_sends_nothing_after_it(server, p8, tmp_path):
    before, after = tokens(5, "a5"), tokens(5, "a6")
    rows = [{"token": t} for t in before] + ["{oops"] + [{"token": t} for t in after]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    results = tmp_path / "r.jsonl"
    result = send(server, p8, "-i", str(source), "--results", str(results), "--strict")
    assert result.exit_code == 2
    assert "in.jsonl line 6: not valid JSON" in result.stderr and "--strict" in result.stderr
    assert "Traceback" not in result.output
    assert all(server.received(t) == 1 for t in before)
    assert all(server.received(t) == 0 for t in after)
    assert sorted(r["line"] for r in read_jsonl(results)) == [1, 2, 3, 4, 5]


def test_stdin_input_and_payload_file(server, p8, tmp_path):
    toks = tokens(5, "a7")
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"aps": {"alert": "Hello", "sound": "default"}, "k": 1}))
    text = "".join(json.dumps({"token": t}) + "\n" for t in toks)
    result = send(server, p8, "-i", "-", "--payload", str(payload), "--badge", "2", input=text)
    assert result.exit_code == 0, result.output
    assert all(server.received(t) == 1 for t in toks)


def test_a_missing_payload_file_is_a_usage_error(server, p8, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": tokens(1, "a8")[0]}])
    result = send(server, p8, "-i", str(source), "--payload", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "nope.json" in result.stderr and "--payload" in result.stderr
    assert "Traceback" not in result.output
    assert server.received(tokens(1, "a8")[0]) == 0


def test_a_payload_file_that_is_not_json_names_its_line(server, p8, tmp_path):
    payload = tmp_path / "payload.json"
    payload.write_text('{\n  "aps": {\n    "alert": "x",\n  }\n}\n')
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": tokens(1, "a9")[0]}])
    result = send(server, p8, "-i", str(source), "--payload", str(payload))
    assert result.exit_code == 2
    assert "payload.json line 4: not valid JSON" in result.stderr


def test_an_invalid_flag_combination_is_a_usage_error_before_sending(server, p8, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": tokens(1, "b1")[0]}])
    result = send(server, p8, "-i", str(source), "--push-type", "background", "--priority", "10")
    assert result.exit_code == 2
    assert "apns-priority 10 is not allowed for background" in result.stderr
    assert server.received(tokens(1, "b1")[0]) == 0


def test_an_existing_results_file_needs_resume_or_overwrite(server, p8, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": tokens(1, "b2")[0]}])
    results = tmp_path / "r.jsonl"
    results.write_text('{"line": 1}\n')
    result = send(server, p8, "-i", str(source), "--results", str(results))
    assert result.exit_code == 2
    assert "--resume" in result.stderr and "--overwrite" in result.stderr
    assert send(server, p8, "-i", str(source), "--resume").exit_code == 2  # needs --results
    result = send(server, p8, "-i", str(source), "--results", str(results), "--overwrite")
    assert result.exit_code == 0
    assert len(read_jsonl(results)) == 1


def test_resume_sends_only_the_rows_not_in_the_results_yet(server, p8, tmp_path):
    first, more = tokens(6, "b3"), tokens(4, "b4")
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": t} for t in first])
    results = tmp_path / "r.jsonl"
    assert send(server, p8, "-i", str(source), "--results", str(results)).exit_code == 0
    write_jsonl(source, [{"token": t} for t in first + more])
    with results.open("a") as f:
        f.write('{"index": 9, "line": 10, "tok')  # a line cut short by a killed run
    result = send(server, p8, "-i", str(source), "--results", str(results), "--resume")
    assert result.exit_code == 0, result.output
    assert "incomplete last line" in result.stderr
    lines = [r["line"] for r in read_jsonl(results)]
    assert sorted(lines) == list(range(1, 11))
    assert all(server.received(t) == 1 for t in first + more)


def test_credentials_from_environment_variables(server, p8, tmp_path):
    toks = tokens(3, "b5")
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": t} for t in toks])
    env = {
        "PUSHWIRE_P8": str(p8),  # the key id comes from the AuthKey_<KEY ID>.p8 name
        "PUSHWIRE_TEAM_ID": "TEAM123456",
        "PUSHWIRE_TOPIC": "com.example.app",
        "PUSHWIRE_BASE_URL": server.url,
        "PUSHWIRE_CA_FILE": str(server.ca_file),
    }
    result = invoke(["send", "-i", str(source), "--no-progress"], env=env)
    assert result.exit_code == 0, result.output
    assert all(server.received(t) == 1 for t in toks)


def test_no_credentials_is_a_usage_error(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": "ab" * 32}])
    result = invoke(["send", "-i", str(source), "--topic", "com.example.app"])
    assert result.exit_code == 2
    assert "--p8" in result.stderr and "--service-account" in result.stderr


def test_a_wrong_p12_password_names_the_file_and_what_to_do(tmp_path):
    p12 = write_p12(tmp_path / "push.p12", b"right")
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": "ab" * 32}])
    result = invoke(
        ["send", "-i", str(source), "--p12", str(p12)], env={"PUSHWIRE_P12_PASSWORD": "wrong"}
    )
    assert result.exit_code == 2
    assert "push.p12" in result.stderr and "wrong password" in result.stderr
    assert "--password" in result.stderr and "PUSHWIRE_P12_PASSWORD" in result.stderr
    assert "Traceback" not in result.output and "wrong\n" not in result.output


@pytest.mark.parametrize("kind", ["pem", "p12"])
def test_certificate_auth_takes_the_topic_from_the_certificate(tmp_path, kind):
    authority = certificate_authority()
    toks = tokens(5, "b6")
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": t} for t in toks])
    if kind == "pem":
        cert, key = push_certificate(issuer=authority)
        (tmp_path / "cert.pem").write_bytes(pem(cert))
        (tmp_path / "key.pem").write_bytes(pem(key))
        credentials = ["--cert", str(tmp_path / "cert.pem"), "--key", str(tmp_path / "key.pem")]
    else:
        p12 = write_p12(tmp_path / "push.p12", b"pw", issuer=authority)
        credentials = ["--p12", str(p12), "--password", "pw"]
    with MockAPNs(client_ca_pem=pem(authority[0])) as server:
        result = invoke(
            ["send", "-i", str(source), *credentials, "--base-url", server.url,
             "--ca-file", str(server.ca_file), "--no-progress"]
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert server.cert_connections >= 1
        assert all(server.received(t) == 1 for t in toks)


def test_an_unreadable_input_file_is_a_usage_error(server, p8, tmp_path):
    result = send(server, p8, "-i", str(tmp_path / "missing.jsonl"))
    assert result.exit_code == 2
    assert "missing.jsonl" in result.stderr and "Traceback" not in result.output


def test_a_csv_without_token_column_is_a_usage_error(server, p8, tmp_path):
    source = write_csv(tmp_path / "in.csv", ["device", "title"], [["ab" * 32, "x"]])
    result = send(server, p8, "-i", str(source))
    assert result.exit_code == 2
    assert "in.csv line 1" in result.stderr and "'token' column" in result.stderr


# -- FCM --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fcm(tmp_path_factory):
    info = service_account_info()
    path = tmp_path_factory.mktemp("fcm") / "service-account.json"
    path.write_text(json.dumps(info))
    rules = {"dead": "unregistered"}
    with MockFCM(credentials=ServiceAccountCredentials(info), rules=rules) as server:
        yield server, path


def fcm_send(fcm, *args):
    server, key = fcm
    return invoke(
        [
            "send",
            "--service-account", str(key),
            "--token-uri", server.token_uri,
            "--base-url", server.url,
            "--ca-file", str(server.ca_file),
            "--no-progress",
            *args,
        ]
    )  # fmt: skip


def test_fcm_rows_with_data_are_sent_and_dead_ones_dropped(fcm, tmp_path):
    server, _ = fcm
    alive = [f"fcm{i:04d}:APA91b-token" for i in range(5)]
    dead = ["dead0001:APA91b-token"]
    rows = [{"token": t, "title": "Hi", "data": {"order": str(i)}} for i, t in enumerate(alive)]
    rows += [
        {"token": dead[0]},
        {"token": "bad token with spaces"},
        {"token": "x", "data": {"n": 1}},
    ]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    results, drops = tmp_path / "r.jsonl", tmp_path / "drop.jsonl"
    result = fcm_send(
        fcm, "-i", str(source), "--results", str(results), "--drop-tokens", str(drops)
    )
    assert result.exit_code == 1, result.output
    by_line = {r["line"]: r for r in read_jsonl(results)}
    assert sorted(by_line) == list(range(1, 9))
    assert all(by_line[i]["outcome"] == "delivered" for i in range(1, 6))
    assert by_line[1]["message_id"].startswith("projects/cli-project/messages/")
    assert by_line[6]["reason"] == "UNREGISTERED"
    assert "line 7: token holds spaces" in result.stderr
    assert "line 8: data.n: value is int" in result.stderr
    assert [d["token"] for d in read_jsonl(drops)] == dead
    assert all(server.received(t) == 1 for t in alive + dead)


def test_fcm_rejects_apns_only_flags(fcm, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": "t1"}])
    result = fcm_send(fcm, "-i", str(source), "--topic", "com.example.app")
    assert result.exit_code == 2
    assert "--topic is for APNs" in result.stderr
