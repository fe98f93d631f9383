"""APNs certificate credentials: PEM and .p12 loading, topics, expiry, clear errors."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from pushwire import CertificateCredentials, CredentialsError

BUNDLE = "com.example.app"


def der(tag: int, body: bytes) -> bytes:
    return bytes([tag, len(body)]) + body


# Apple's topics extension: SEQUENCE { UTF8String topic, SEQUENCE { UTF8String kind } ... }
TOPICS_DER = der(
    0x30,
    der(0x0C, b"com.example.app")
    + der(0x30, der(0x0C, b"app"))
    + der(0x0C, b"com.example.app.voip")
    + der(0x30, der(0x0C, b"voip")),
)


def make_cert(
    *, days_valid: int = 365, not_before_days: int = -1, topics_ext: bool = True
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, BUNDLE),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Apple Push Services: {BUNDLE}"),
        ]
    )
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=not_before_days))
        .not_valid_after(now + dt.timedelta(days=days_valid))
    )
    if topics_ext:
        oid = x509.ObjectIdentifier("1.2.840.113635.100.6.3.6")
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, TOPICS_DER), critical=False)
    return builder.sign(key, hashes.SHA256()), key


def pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    return cert.public_bytes(serialization.Encoding.PEM), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_pem_certificate_and_topics():
    cert, key = make_cert()
    creds = CertificateCredentials(*pem(cert, key))
    assert creds.topics == [BUNDLE, "com.example.app.voip"]
    chain, key_pem = creds.client_cert()
    assert b"BEGIN CERTIFICATE" in chain and b"PRIVATE KEY" in key_pem
    assert creds.identity.startswith("cert:")


def test_p12_with_password(tmp_path):
    cert, key = make_cert()
    blob = pkcs12.serialize_key_and_certificates(
        b"push", key, cert, None, serialization.BestAvailableEncryption(b"s3cret!")
    )
    path = tmp_path / "push.p12"
    path.write_bytes(blob)
    creds = CertificateCredentials.from_p12(path, "s3cret!")
    assert creds.topics[0] == BUNDLE
    with pytest.raises(CredentialsError, match="wrong password") as info:
        CertificateCredentials.from_p12(path, "nope")
    assert info.value.field == "password"
    assert "nope" not in str(info.value) and "s3cret" not in str(info.value)
    assert "s3cret" not in repr(creds)


def test_expired_and_future_certificates_are_refused_before_connecting():
    cert, key = make_cert(days_valid=-1, not_before_days=-400)
    with pytest.raises(CredentialsError, match="expired") as info:
        CertificateCredentials(*pem(cert, key))
    assert info.value.field == "cert"
    cert, key = make_cert(not_before_days=2)
    with pytest.raises(CredentialsError, match="not valid before"):
        CertificateCredentials(*pem(cert, key))


def test_key_must_match_certificate_and_be_readable():
    cert, _ = make_cert()
    _, other_key = make_cert()
    cert_pem, other_pem = pem(cert, other_key)
    with pytest.raises(CredentialsError, match="does not belong"):
        CertificateCredentials(cert_pem, other_pem)
    with pytest.raises(CredentialsError, match="not a PEM certificate"):
        CertificateCredentials(b"garbage", other_pem)
    encrypted = other_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(CredentialsError, match="encrypted"):
        CertificateCredentials(cert_pem, encrypted)


def test_malformed_topics_extension_never_raises():
    from pushwire.credentials import _der_topics

    for blob in (b"", b"\x30", b"\x30\x05\x0c\x10abc", b"\x04\x00", b"\x30\x84\xff\xff\xff\xff"):
        assert isinstance(_der_topics(blob), list)
    cert, key = make_cert(topics_ext=False)
    assert CertificateCredentials(*pem(cert, key)).topics == [BUNDLE]
