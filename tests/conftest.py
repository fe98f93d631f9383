"""Shared fixtures: throwaway APNs credentials and a default message."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

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


@pytest.fixture(scope="session")
def service_account() -> pushwire.ServiceAccountCredentials:
    """A throwaway Firebase service account (RSA 2048) for FCM tests."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pushwire.ServiceAccountCredentials(
        {
            "type": "service_account",
            "project_id": "demo-project",
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": "pusher@demo-project.iam.gserviceaccount.com",
        }
    )


# -- Redis (pushwire.jobs tests): a server is started on first use only -----------------------


@pytest.fixture
def redis_url() -> str:
    from support import jobs as jobs_support

    return jobs_support.redis_server_url()


@pytest.fixture
def stream() -> str:
    """A Redis stream name of one test's own."""
    from support import jobs as jobs_support

    return jobs_support.unique_stream()


@pytest.fixture
def key_prefix() -> str:
    """Shared-credential key prefix of one test's own."""
    from support import jobs as jobs_support

    return jobs_support.unique_prefix()
