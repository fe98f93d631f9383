"""Security properties: TLS verification cannot be switched off, secrets never leak, files
pushwire writes are private.

- No ``ca_file`` means the mock's CA is not trusted and nothing is sent; there is no option,
  keyword, CLI flag or code path that skips certificate verification (the package source is
  searched for one), and the mock never needs one: clients trust it through ``ca_file``.
- A realistic APNs and FCM run, failures included (bad keys, refused grants, expired tokens,
  wrong passwords), under DEBUG logging: no private key line, JWT, password or OAuth access
  token appears in any repr, str, exception, log record, result, results file or output.
- ``pushwire demo --results`` writes its file with mode 0600.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import inspect
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

import pushwire
from pushwire import FCMMessage, FCMNotification, Notification, Outcome
from pushwire.testing import MockAPNs, MockFCM
from support.util import tokens

# The source tree, wherever pushwire was installed from (CI also runs this suite against a
# wheel installed in a fresh virtualenv).
REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "python" / "pushwire"

# --- TLS verification is always on ------------------------------------------------------------

#: Ways Python code turns certificate checks off, or names an option that would.
PYTHON_BYPASS = re.compile(
    r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|_create_unverified_context"
    r"|\b\w*(?:insecure|dangerous|danger|no_verify|skip_verify|verify_ssl|verify_tls|tls_verify"
    r"|ssl_verify|disable_verification|accept_invalid)\w*\b|--no-verify|--insecure",
    re.IGNORECASE,
)
#: Ways rustls client code would skip server verification.
RUST_CLIENT_BYPASS = re.compile(
    r"\.dangerous\(\)|danger::|ServerCertVerifier|NoCertificateVerification"
    r"|with_custom_certificate_verifier|set_certificate_verifier|danger_accept_invalid",
)


def test_no_ca_file_means_the_mock_is_not_trusted_and_nothing_is_sent(credentials, message):
    with MockAPNs(credentials=credentials) as server:

        async def main() -> pushwire.Results:
            async with pushwire.APNsClient(
                credentials, base_url=server.url, max_connect_attempts=1, backoff_base=0.01
            ) as client:
                return await client.send_many([Notification(t, message) for t in tokens(50)])

        results = asyncio.run(main())
        assert server.total_received == 0 and server.connections_accepted == 0
    assert {(r.outcome, r.maybe_delivered) for r in results} == {(Outcome.FAILED, False)}
    assert "invalid peer certificate" in (results[0].error or "")


def test_the_package_has_no_way_to_skip_certificate_verification():
    python_files = sorted(PACKAGE.rglob("*.py")) + sorted(PACKAGE.rglob("*.pyi"))
    assert len(python_files) > 10
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in python_files
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PYTHON_BYPASS.search(line)
    ]
    assert found == [], "\n".join(found)
    # The client side of the engine (core) and the bindings. (The mock is a server: its
    # `danger::ClientCertVerifier` import is the verifier that checks client certificates.)
    rust_files = sorted((REPO / "rust" / "core" / "src").rglob("*.rs")) + sorted(
        (REPO / "rust" / "py" / "src").rglob("*.rs")
    )
    assert len(rust_files) > 5
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in rust_files
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if RUST_CLIENT_BYPASS.search(line)
    ]
    assert found == [], "\n".join(found)
    tls = (REPO / "rust" / "core" / "src" / "tls.rs").read_text(encoding="utf-8")
    assert "with_root_certificates(roots)" in tls and "Verification is always on" in tls


def _option_names() -> set[str]:
    names: set[str] = set()
    for target in (
        pushwire.APNsClient.__init__,
        pushwire.FCMClient.__init__,
        pushwire.testing.MockAPNs.__init__,
        pushwire.testing.MockFCM.__init__,
    ):
        names |= set(inspect.signature(target).parameters)
    text_signature = pushwire._core.Engine.add_pool.__text_signature__ or ""
    names |= set(re.findall(r"(\w+)\s*=", text_signature))
    names |= {option.name for option in dataclasses.fields(pushwire.PoolOptions)}
    return names


@pytest.mark.parametrize(
    "option", ["verify", "insecure", "verify_ssl", "danger_accept_invalid_certs", "ssl"]
)
def test_no_client_option_turns_verification_off(option):
    names = _option_names()
    assert "ca_file" in names and "request_timeout" in names  # the introspection works
    assert not [n for n in names if PYTHON_BYPASS.search(n) or n in ("verify", "ssl")]
    # Unknown options are refused, not ignored.
    with pytest.raises(pushwire.ConfigurationError, match="unknown pool option"):
        pushwire.APNsClient(base_url="https://localhost:1", **{option: False})


def test_the_mock_is_trusted_through_its_ca_file_only(credentials, message):
    source = inspect.getsource(pushwire.testing)
    assert not PYTHON_BYPASS.search(source)
    with MockAPNs(credentials=credentials) as server:
        client = server.client()
        assert client._ca_file == str(server.ca_file)
        ca = x509.load_pem_x509_certificate(server.ca_file.read_bytes())
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

        async def main() -> pushwire.Result:
            async with client:
                return await client.send(Notification(tokens(1)[0], message))

        assert asyncio.run(main()).delivered


# --- secrets never leak --------------------------------------------------------------------------

P12_PASSWORD = "p12-Pa55w0rd-never-shown"
JWT_LIKE = re.compile(r"eyJ[\w-]{6,}\.eyJ[\w-]{6,}\.[\w-]{10,}")


def pem_secret_lines(pem: bytes | str) -> list[str]:
    """The base64 body lines of a PEM private key (each is a secret on its own)."""
    text = pem.decode() if isinstance(pem, bytes) else pem
    return [line for line in text.splitlines() if line and not line.startswith("-----")]


def rsa_service_account(email: str) -> tuple[pushwire.ServiceAccountCredentials, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": email,
    }
    return pushwire.ServiceAccountCredentials(info), pem


def p12_certificate(path: Path) -> bytes:
    """A push certificate exported as .p12 with P12_PASSWORD; returns its key's PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, "com.example.app"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Apple Push Services: com.example.app"),
        ]
    )
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"push",
            key,
            cert,
            None,
            serialization.BestAvailableEncryption(P12_PASSWORD.encode()),
        )
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class Evidence:
    """Everything a user could see: reprs, strs, exceptions, results, files."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *objects: Any) -> None:
        for o in objects:
            if isinstance(o, BaseException):
                self.texts.append("".join(traceback.format_exception(o)))
                self.texts.append(repr(o.__dict__))
            if isinstance(o, list):
                self.add(*o)
            self.texts.append(repr(o))
            self.texts.append(str(o))

    def add_results(self, results: list[pushwire.Result], path: Path) -> None:
        """Results as objects, as a results file, with their classification and summary."""
        self.add(results)
        encode = msgspec.json.Encoder().encode
        with path.open("ab") as f:
            for r in results:
                f.write(encode(r) + b"\n")
                self.add(r.action, pushwire.classify(r))
        summary = pushwire.summarize(results)
        self.add(summary, summary.tokens_to_drop)


def test_secrets_never_appear_in_reprs_logs_errors_results_or_output(
    tmp_path, caplog, capfd, p8_key, credentials, message
):
    caplog.set_level(logging.DEBUG)
    evidence = Evidence()
    results_file = tmp_path / "results.jsonl"
    secrets: dict[str, str] = {"p12 password": P12_PASSWORD}
    for n, line in enumerate(pem_secret_lines(p8_key)):
        secrets[f"p8 key line {n}"] = line

    # -- APNs token auth: deliveries, rejections, hangs, bad key, expired JWT -----------------
    jwt = credentials.authorization().split(" ", 1)[1]
    secrets["APNs JWT"] = jwt
    secrets["APNs JWT signature"] = jwt.rsplit(".", 1)[1]
    rules = {"dead": "unregistered", "bad0": "bad-token", "eeee": "hang", "5e70": "reset"}
    toks = tokens(20) + tokens(3, "dead") + tokens(3, "bad0") + tokens(2, "eeee")
    toks += tokens(2, "5e70")
    other_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for n, line in enumerate(pem_secret_lines(other_key)):
        secrets[f"wrong p8 key line {n}"] = line
    wrong = pushwire.TokenCredentials(other_key, key_id="ABC123DEFG", team_id="TEAM123456")
    stale = pushwire.TokenCredentials(
        p8_key, key_id="ABC123DEFG", team_id="TEAM123456", clock=lambda: time.time() - 7200
    )
    secrets["wrong JWT"] = wrong.authorization().split(" ", 1)[1]
    secrets["stale JWT"] = stale.authorization().split(" ", 1)[1]
    with MockAPNs(credentials=credentials, rules=rules, trusted_keys=[stale]) as server:

        async def apns() -> None:
            for creds in (credentials, wrong, stale):
                async with server.client(credentials=creds, request_timeout=1.0) as client:
                    evidence.add(client, creds, message)
                    results = await client.send_many([Notification(t, message) for t in toks])
                    evidence.add_results(results, results_file)
                    evidence.add(client.stats())
            bad = {r.reason for r in results}
            assert "ExpiredProviderToken" in bad  # the stale JWT was refused, even after a retry

        asyncio.run(apns())

    # -- APNs certificate auth from a password-protected .p12 ----------------------------------
    p12 = tmp_path / "push.p12"
    cert_key = p12_certificate(p12)
    for n, line in enumerate(pem_secret_lines(cert_key)):
        secrets[f"certificate key line {n}"] = line
    cert_creds = pushwire.CertificateCredentials.from_p12(p12, P12_PASSWORD)
    evidence.add(cert_creds, cert_creds.topics)
    for attempt in ("wrong-" + P12_PASSWORD, P12_PASSWORD[:-1]):
        with pytest.raises(pushwire.CredentialsError) as info:
            pushwire.CertificateCredentials.from_p12(p12, attempt)
        evidence.add(info.value)
        secrets[f"wrong password {attempt[:6]}"] = attempt
    with MockAPNs() as server:

        async def certificate() -> None:
            async with server.client(credentials=cert_creds) as client:
                evidence.add(client)
                results = await client.send_many([Notification(t, message) for t in tokens(5)])
                assert all(r.delivered for r in results)
                evidence.add_results(results, results_file)

        asyncio.run(certificate())

    # -- FCM: grants, deliveries, rejections, expired access tokens, a refused grant -----------
    sa, sa_pem = rsa_service_account("pusher@demo-project.iam.gserviceaccount.com")
    impostor, impostor_pem = rsa_service_account("pusher@demo-project.iam.gserviceaccount.com")
    for label, pem in (("service account", sa_pem), ("impostor", impostor_pem)):
        for n, line in enumerate(pem_secret_lines(pem)):
            secrets[f"{label} key line {n}"] = line
    fcm_rules = {"dead": "unregistered", "bad0": "invalid-argument", "503x": "503"}
    fcm_tokens = [
        f"{p}{i:04d}:APA91b" + "x" * 120 for p in ("ok", "dead", "bad0", "503x") for i in range(5)
    ]
    fcm_message = FCMMessage(notification=FCMNotification(title="Hi"), data={"k": "v"})
    with MockFCM(credentials=sa, rules=fcm_rules) as server:

        async def fcm() -> None:
            async with server.client(
                retry=pushwire.RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)
            ) as client:
                evidence.add(client, sa, fcm_message)
                results = await client.send_to_tokens(fcm_message, fcm_tokens)
                server.expire_oauth_tokens()  # the next sends get 401 and a new token
                results += await client.send_to_tokens(fcm_message, fcm_tokens)
                results.append(await client.send(FCMMessage(topic="news", data={"k": "v"})))
                evidence.add_results(results, results_file)
                assert client.token_refreshes >= 2
            async with pushwire.FCMClient(
                impostor,
                base_url=server.url,
                token_uri=server.token_uri,
                ca_file=server.ca_file,
            ) as client:
                with pytest.raises(pushwire.CredentialsError) as info:
                    await client.send_to_tokens(fcm_message, fcm_tokens[:3])
                evidence.add(info.value, client, impostor)

        asyncio.run(fcm())
        assert server.oauth_tokens_issued >= 2

    # -- collect what a user could have seen, and search it ---------------------------------------
    out = capfd.readouterr()
    evidence.texts += [out.out, out.err, caplog.text, results_file.read_text()]
    evidence.texts += [
        f"{r.name} {r.levelname} {r.getMessage()} {r.args!r}" for r in caplog.records
    ]
    blob = "\n".join(evidence.texts)
    assert len(blob) > 10_000 and results_file.stat().st_size > 1_000
    leaked = [name for name, secret in secrets.items() if secret in blob]
    assert leaked == [], leaked
    assert not JWT_LIKE.search(blob), JWT_LIKE.search(blob)
    assert "ya29." not in blob  # the mock's access tokens look like Google's
    assert "PRIVATE KEY" not in blob
    assert "Bearer " not in blob and "bearer " not in blob


def test_credential_errors_do_not_echo_key_material(tmp_path):
    body = "U2VjcmV0S2V5TWF0ZXJpYWwxMjM0NTY3ODkw"
    garbage_key = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    errors: list[pushwire.CredentialsError] = []
    for build in (
        lambda: pushwire.TokenCredentials(garbage_key, key_id="ABC123DEFG", team_id="TEAM123456"),
        lambda: pushwire.ServiceAccountCredentials(
            {
                "type": "service_account",
                "project_id": "p",
                "private_key": garbage_key,
                "client_email": "a@b.c",
            }
        ),
        lambda: pushwire.CertificateCredentials(garbage_key.encode(), garbage_key.encode()),
    ):
        with pytest.raises(pushwire.CredentialsError) as info:
            build()
        errors.append(info.value)
    for error in errors:
        text = "".join(traceback.format_exception(error))
        assert body not in text, text
        assert error.__cause__ is None


# --- files pushwire writes -----------------------------------------------------------------------


def _pushwire_command() -> list[str]:
    script = shutil.which("pushwire")
    if script:
        return [script]
    return [sys.executable, "-c", "from pushwire.cli import main; main()"]


def run_demo(results: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *_pushwire_command(),
            "demo",
            "--count",
            "200",
            "--no-progress",
            "--results",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        # Even with a permissive umask the file must come out private.
        preexec_fn=lambda: os.umask(0),
    )


def test_demo_results_file_is_private(tmp_path):
    results = tmp_path / "r.jsonl"
    done = run_demo(results)
    assert done.returncode == 0, done.stderr
    assert results.stat().st_mode & 0o777 == 0o600
    lines = results.read_text().splitlines()
    assert len(lines) == 200
    assert "PRIVATE KEY" not in done.stdout + done.stderr + results.read_text()
    assert not JWT_LIKE.search(done.stdout + done.stderr + results.read_text())


def test_demo_results_written_into_an_existing_file_are_private_too(tmp_path):
    results = tmp_path / "r.jsonl"
    results.write_text("old\n")
    results.chmod(0o644)
    done = run_demo(results)
    assert done.returncode == 0, done.stderr
    assert results.stat().st_mode & 0o777 == 0o600
