"""APNs JWTs: ES256 with raw R‖S, verifiable, cached and rotated on a controlled clock."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

import pushwire
from pushwire import CredentialsError, TokenCredentials


def b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_jwt_verifies_with_the_public_key(p8_key):
    creds = TokenCredentials(p8_key, key_id="ABC123DEFG", team_id="TEAM123456")
    header_value = creds.authorization()
    assert header_value.startswith("bearer ")
    header, claims, signature = header_value.removeprefix("bearer ").split(".")
    assert json.loads(b64d(header)) == {"alg": "ES256", "kid": "ABC123DEFG"}
    body = json.loads(b64d(claims))
    assert body["iss"] == "TEAM123456" and isinstance(body["iat"], int) and "exp" not in body
    raw = b64d(signature)
    assert len(raw) == 64  # R‖S, not DER
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public = serialization.load_pem_public_key(creds.public_key_pem().encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))


def test_jwt_is_cached_and_rotated_no_more_often_than_20_minutes(p8_key):
    clock = Clock()
    creds = TokenCredentials(p8_key, key_id="ABC123DEFG", team_id="TEAM123456", clock=clock)
    first = creds.authorization()
    clock.now += 49 * 60
    assert creds.authorization() is first
    clock.now += 60  # 50 minutes: rotate
    second = creds.authorization()
    assert second != first and creds.mints == 2
    # A forced refresh (after ExpiredProviderToken) within 20 minutes reuses the token.
    clock.now += 5 * 60
    assert creds.authorization(force=True) is second
    clock.now += 16 * 60
    assert creds.authorization(force=True) != second
    assert creds.mints == 3


def test_rotation_bounds_are_enforced(p8_key):
    with pytest.raises(CredentialsError, match="between"):
        TokenCredentials(p8_key, key_id="ABC123DEFG", team_id="TEAM123456", rotation=60)


def test_bad_keys_and_ids_give_clear_errors(tmp_path, p8_key):
    with pytest.raises(CredentialsError, match="10-character") as info:
        TokenCredentials(p8_key, key_id="ABC123DEF", team_id="TEAM123456")
    assert info.value.field == "key_id"
    with pytest.raises(CredentialsError, match="cannot read key file"):
        TokenCredentials(tmp_path / "missing.p8", key_id="ABC123DEFG", team_id="TEAM123456")
    garbage = tmp_path / "garbage.p8"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CredentialsError, match="not a readable PEM"):
        TokenCredentials(garbage, key_id="ABC123DEFG", team_id="TEAM123456")
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CredentialsError, match="EC P-256"):
        TokenCredentials(rsa_pem, key_id="ABC123DEFG", team_id="TEAM123456")


def test_secrets_never_in_repr(p8_key):
    creds = TokenCredentials(p8_key, key_id="ABC123DEFG", team_id="TEAM123456")
    jwt = creds.authorization().removeprefix("bearer ")
    client = pushwire.APNsClient(creds, base_url="https://localhost:1")
    for text in (repr(creds), str(creds), repr(client)):
        assert jwt not in text
        assert "PRIVATE KEY" not in text and p8_key.decode().splitlines()[1] not in text
