"""Helpers shared by the CLI tests: input files, throwaway credentials, running the CLI.

No tests here; the test_cli_* modules import these.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from pushwire.cli.app import app

KEY_ID, TEAM_ID, TOPIC = "ABC123DEFG", "TEAM123456", "com.example.app"
#: Run the CLI the way a user does, for what needs real signals or a terminal.
CLI = [sys.executable, "-m", "pushwire.cli"]


#: Variables that make rich treat any output as a terminal: unset for the tests.
TERMINAL_OVERRIDES = ("FORCE_TERMINAL", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def invoke(args: list[str], *, input: str | bytes | None = None, env: dict[str, str] | None = None):
    """Run ``pushwire ARGS`` in-process; the result has exit_code, stdout, stderr, output."""
    environment: dict[str, str | None] = dict.fromkeys(TERMINAL_OVERRIDES)
    environment.update(env or {})
    return CliRunner().invoke(app, args, input=input, env=environment, catch_exceptions=False)


def plain_environment(**extra: str) -> dict[str, str]:
    """os.environ for a subprocess, without what would force rich's terminal detection."""
    env = {k: v for k, v in os.environ.items() if k not in TERMINAL_OVERRIDES}
    env.update(extra)
    return env


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    with path.open("w") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


def write_p8(path: Path, key: bytes) -> Path:
    path.write_bytes(key)
    return path


def apns_args(server: Any, p8: Path) -> list[str]:
    """Options that point `pushwire send` at a MockAPNs with the conftest credentials."""
    return [
        "--p8",
        str(p8),
        "--key-id",
        KEY_ID,
        "--team-id",
        TEAM_ID,
        "--topic",
        TOPIC,
        "--base-url",
        server.url,
        "--ca-file",
        str(server.ca_file),
        "--request-timeout",
        "5",
    ]


def service_account_info(project: str = "cli-project") -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": f"pusher@{project}.iam.gserviceaccount.com",
    }


def push_certificate(
    days_valid: int = 365, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate shaped like an Apple push certificate for TOPIC, self-signed or issued
    by ``issuer`` (a CA certificate and its key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, TOPIC),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Apple Push Services: {TOPIC}"),
        ]
    )
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days_valid))
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), False
        )
    return builder.sign(signing_key, hashes.SHA256()), key


def certificate_authority() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA for client certificates, as the mock's ``client_ca_pem``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Push CA")])
    now = dt.datetime.now(dt.timezone.utc)
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def pem(item: x509.Certificate | ec.EllipticCurvePrivateKey) -> bytes:
    if isinstance(item, x509.Certificate):
        return item.public_bytes(serialization.Encoding.PEM)
    return item.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_p12(
    path: Path,
    password: bytes,
    days_valid: int = 365,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
) -> Path:
    cert, key = push_certificate(days_valid, issuer)
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"push", key, cert, None, serialization.BestAvailableEncryption(password)
        )
    )
    return path
