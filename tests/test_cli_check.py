"""`pushwire check-credentials`: good and bad .p8 keys, .p12 / PEM certificates and service
accounts, locally and --online against the mock servers. Secrets are never printed."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conftest import make_p8
from pushwire import ServiceAccountCredentials
from pushwire.testing import MockAPNs, MockFCM
from support.cli import (
    KEY_ID,
    TEAM_ID,
    TOPIC,
    invoke,
    push_certificate,
    service_account_info,
    write_p8,
    write_p12,
)


def check(*args: str, env: dict[str, str] | None = None):
    return invoke(["check-credentials", *args], env=env)


def assert_no_secrets(output: str, *secrets: str) -> None:
    assert "MII" not in output and "MIG" not in output  # base64 of a DER key
    assert "eyJ" not in output  # the start of every JWT
    assert "Traceback" not in output
    for secret in secrets:
        assert secret not in output


@pytest.fixture
def p8(tmp_path, p8_key):
    return write_p8(tmp_path / f"AuthKey_{KEY_ID}.p8", p8_key)


def test_a_good_p8_signs_a_provider_token(p8):
    result = check("--p8", str(p8), "--team-id", TEAM_ID)  # key id from the file name
    assert result.exit_code == 0, result.output
    assert "EC P-256 private key" in result.stdout
    assert f"signed an ES256 provider token (key id {KEY_ID}, team id {TEAM_ID})" in result.stdout
    assert_no_secrets(result.output)


def test_a_p8_without_ids_is_checked_and_the_ids_asked_for(tmp_path, p8_key):
    result = check("--p8", str(write_p8(tmp_path / "key.p8", p8_key)))
    assert result.exit_code == 0
    assert "add --key-id and --team-id" in result.stdout


def test_a_key_id_that_contradicts_the_file_name_is_a_warning(p8):
    result = check("--p8", str(p8), "--key-id", "ZZZ123DEFG", "--team-id", TEAM_ID)
    assert result.exit_code == 0
    assert f"the file name says key id {KEY_ID} but --key-id is ZZZ123DEFG" in result.stdout


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"not a key", "not a readable PEM private key"),
        (
            rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "needs an EC P-256 key",
        ),
    ],
    ids=["garbage", "rsa-key"],
)
def test_a_bad_p8_is_explained(tmp_path, content, words):
    path = tmp_path / "AuthKey_ABC123DEFG.p8"
    path.write_bytes(content)
    result = check("--p8", str(path), "--team-id", TEAM_ID)
    assert result.exit_code == 2
    assert words in result.stdout and str(path) in result.stdout
    assert_no_secrets(result.output)


def test_a_missing_p8_file_is_named(tmp_path):
    result = check("--p8", str(tmp_path / "AuthKey_ABC123DEFG.p8"), "--team-id", TEAM_ID)
    assert result.exit_code == 2
    assert "AuthKey_ABC123DEFG.p8" in result.stdout and "cannot read" in result.stdout


def test_a_malformed_team_id_is_explained(p8):
    result = check("--p8", str(p8), "--team-id", "short")
    assert result.exit_code == 2
    assert "team_id must be the 10-character identifier" in result.stdout


def test_a_good_p12_shows_subject_topics_and_expiry(tmp_path):
    p12 = write_p12(tmp_path / "push.p12", b"s3cret-pass")
    result = check("--p12", str(p12), env={"PUSHWIRE_P12_PASSWORD": "s3cret-pass"})
    assert result.exit_code == 0, result.output
    assert f"Apple Push Services: {TOPIC}" in result.stdout
    assert f"topics: {TOPIC}" in result.stdout
    assert "expires " in result.stdout and "days from now" in result.stdout
    assert_no_secrets(result.output, "s3cret-pass")


def test_a_p12_expiring_soon_is_a_warning(tmp_path):
    p12 = write_p12(tmp_path / "push.p12", b"pw", days_valid=10)
    result = check("--p12", str(p12), "--password", "pw")
    assert result.exit_code == 0
    assert "warning: expires" in result.stdout and "renew" in result.stdout


def test_a_wrong_p12_password_says_what_to_do(tmp_path):
    p12 = write_p12(tmp_path / "push.p12", b"right-password")
    result = check("--p12", str(p12), "--password", "wrong-password")
    assert result.exit_code == 2
    assert "push.p12" in result.stdout and "wrong password" in result.stdout
    assert "PUSHWIRE_P12_PASSWORD" in result.stdout
    assert_no_secrets(result.output, "wrong-password", "right-password")


@pytest.mark.parametrize(
    ("kind", "content", "hint"),
    [
        ("--p8", "not a key", "developer.apple.com"),
        ("--service-account", '{"type": "service_account"}', "Firebase console"),
        ("--cert", "not a certificate", "--key"),
    ],
)
def test_each_hint_is_given_once_and_only_where_it_applies(tmp_path, kind, content, hint):
    path = tmp_path / "credential"
    path.write_text(content)
    result = check(kind, str(path))
    assert result.exit_code == 2
    (problem,) = [line for line in result.stdout.splitlines() if line.startswith("problem:")]
    # a PEM certificate that is not one needs no advice about its key
    assert problem.count(hint) == (0 if kind == "--cert" else 1), problem


def test_an_expired_certificate_is_a_problem_with_the_renewal_hint_not_a_password_one(tmp_path):
    p12 = write_p12(tmp_path / "old.p12", b"pw", days_valid=-1)
    result = check("--p12", str(p12), "--password", "pw")
    assert result.exit_code == 2
    (problem,) = [line for line in result.stdout.splitlines() if line.startswith("problem:")]
    assert "expired" in problem and "renew" in problem
    assert "password" not in problem.lower()


def test_a_pem_certificate_with_its_key(tmp_path):
    cert, key = push_certificate()
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert check("--cert", str(cert_path), "--key", str(key_path)).exit_code == 0
    other = tmp_path / "other.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    result = check("--cert", str(cert_path), "--key", str(other))
    assert result.exit_code == 2
    assert "does not belong to the certificate" in result.stdout


@pytest.fixture(scope="module")
def account_info():
    return service_account_info("check-project")


def test_a_good_service_account_signs_an_assertion(tmp_path, account_info):
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(account_info))
    result = check("--service-account", str(path))
    assert result.exit_code == 0, result.output
    assert "pusher@check-project.iam.gserviceaccount.com" in result.stdout
    assert "signed an OAuth2 assertion (RS256)" in result.stdout
    assert_no_secrets(result.output)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda info: info.pop("client_email"), "lacks client_email"),
        (lambda info: info.update(type="authorized_user"), "of type 'service_account'"),
        (lambda info: info.update(private_key=make_p8().decode()), "must be an RSA key"),
        (lambda info: info.update(private_key="nope"), "not a readable PEM key"),
    ],
    ids=["no-email", "wrong-type", "ec-key", "garbage-key"],
)
def test_a_bad_service_account_is_explained(tmp_path, account_info, change, words):
    info = dict(account_info)
    change(info)
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    result = check("--service-account", str(path))
    assert result.exit_code == 2
    assert words in result.stdout and "sa.json" in result.stdout
    assert_no_secrets(result.output)


def test_a_service_account_file_that_is_not_json(tmp_path):
    path = tmp_path / "sa.json"
    path.write_text("{\n  'single': 'quotes'\n}")
    result = check("--service-account", str(path))
    assert result.exit_code == 2
    assert "not valid JSON (line 2)" in result.stdout


def test_nothing_to_check_is_a_usage_error():
    result = check()
    assert result.exit_code == 2
    assert "nothing to check" in result.stdout


# -- --online, against the mock servers ---------------------------------------------------------


def test_online_apns_check_accepted(credentials, p8):
    with MockAPNs(credentials=credentials) as server:
        result = check(
            "--p8", str(p8), "--team-id", TEAM_ID, "--topic", TOPIC, "--online",
            "--base-url", server.url, "--ca-file", str(server.ca_file),
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "accepted the credentials and the topic" in result.stdout
    assert_no_secrets(result.output)


def test_online_apns_check_with_a_key_the_server_does_not_know(credentials, tmp_path):
    stranger = write_p8(tmp_path / "AuthKey_ABC123DEFG.p8", make_p8())
    with MockAPNs(credentials=credentials) as server:
        result = check(
            "--p8", str(stranger), "--team-id", TEAM_ID, "--topic", TOPIC, "--online",
            "--base-url", server.url, "--ca-file", str(server.ca_file),
        )  # fmt: skip
    assert result.exit_code == 2
    assert "refused the provider token (InvalidProviderToken)" in result.stdout


def test_online_apns_check_needs_a_topic(credentials, p8):
    with MockAPNs(credentials=credentials) as server:
        result = check(
            "--p8", str(p8), "--team-id", TEAM_ID, "--online",
            "--base-url", server.url, "--ca-file", str(server.ca_file),
        )  # fmt: skip
    assert result.exit_code == 2
    assert "--online needs --topic" in result.stdout


def test_online_fcm_check_sends_a_validate_only_message(tmp_path, account_info):
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(account_info))
    with MockFCM(credentials=ServiceAccountCredentials(account_info)) as server:
        result = check(
            "--service-account", str(path), "--online", "--token-uri", server.token_uri,
            "--base-url", server.url, "--ca-file", str(server.ca_file),
        )  # fmt: skip
        assert server.dry_runs == 1 and server.total_received == 0
    assert result.exit_code == 0, result.output
    assert "obtained an OAuth2 access token" in result.stdout
    assert "validate-only message for project check-project" in result.stdout
    assert_no_secrets(result.output)


def test_online_fcm_check_with_an_account_the_server_refuses(tmp_path, account_info):
    stranger = service_account_info("check-project")
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(stranger))
    with MockFCM(credentials=ServiceAccountCredentials(account_info)) as server:
        result = check(
            "--service-account", str(path), "--online", "--token-uri", server.token_uri,
            "--base-url", server.url, "--ca-file", str(server.ca_file),
        )  # fmt: skip
    assert result.exit_code == 2
    assert "OAuth2 token request was refused" in result.stdout
    assert_no_secrets(result.output)
