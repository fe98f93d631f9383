"""Shared fixtures: throwaway APNs credentials and a default message."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import pushwire


def make_p8() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="session")
def p8_key() -> bytes:
    return make_p8()


@pytest.fixture(scope="session")
def credentials(p8_key: bytes) -> pushwire.TokenCredentials:
    return pushwire.TokenCredentials(p8_key, key_id="ABC123DEFG", team_id="TEAM123456")


@pytest.fixture(scope="session")
def message() -> pushwire.Message:
    return pushwire.Message(
        {"aps": {"alert": {"title": "Hi", "body": "there"}}}, topic="com.example.app"
    )
