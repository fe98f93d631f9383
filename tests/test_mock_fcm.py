"""MockFCM: the wrapper, and the protocol it speaks (OAuth2 JWT-bearer grant, FCM v1 sends)
checked by hand over HTTP/2 with httpx when it is installed."""

from __future__ import annotations

import base64
import json
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pushwire.testing import MockFCM

EMAIL = "pushwire-test@demo-project.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN = "fcm-token-0001:APA91bTEST"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion(key: rsa.RSAPrivateKey, aud: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": EMAIL, "scope": SCOPE, "aud": aud, "iat": now, "exp": now + 3600}
    claims.update(overrides)
    header = {"alg": "RS256", "typ": "JWT"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


# -- the wrapper ---------------------------------------------------------------------------------


def test_wrapper_properties_and_lifecycle(rsa_key):
    with MockFCM(
        service_account_email=EMAIL,
        service_account_public_key_pem=public_pem(rsa_key).encode(),
        project_id="my-project",
        rules={"dead": "unregistered"},
    ) as server:
        assert server.url.startswith("https://localhost:")
        assert server.token_uri == f"{server.url}/token"
        assert server.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert server.project_id == "my-project"
        assert (server.oauth_tokens_issued, server.quota_rejections, server.dry_runs) == (0, 0, 0)
        assert server.total_received == 0
        assert server.received(TOKEN) == 0
        server.expire_oauth_tokens()
        server.set_rules(["=503"])
        server.set_rules(None)
        assert "my-project" in repr(server)
        ca_file = server.ca_file
    assert "stopped" in repr(server)
    assert not ca_file.exists()
    with pytest.raises(RuntimeError, match="stopped"):
        _ = server.url
    server.stop()


def test_wrapper_refuses_bad_configuration(rsa_key):
    with pytest.raises(ValueError, match="both"):
        MockFCM(service_account_email=EMAIL)
    with pytest.raises(ValueError, match="rule"):
        MockFCM(rules={"x": "explode"})
    with pytest.raises(ValueError, match="fcm_quota_window"):
        MockFCM(quota_per_window=10, quota_window=0.0)
    with pytest.raises(OSError, match="service account"):
        MockFCM(service_account_email=EMAIL, service_account_public_key_pem="not a key")


# -- the protocol, by hand over HTTP/2 -----------------------------------------------------------


def http2_client(server: MockFCM) -> Any:
    """An httpx HTTP/2 client trusting the mock's CA (the test is skipped without httpx)."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("h2")
    context = ssl.create_default_context(cafile=str(server.ca_file))
    return httpx.Client(http2=True, verify=context, timeout=10.0)


@pytest.fixture()
def server(rsa_key) -> Iterator[MockFCM]:
    with MockFCM(
        service_account_email=EMAIL,
        service_account_public_key_pem=public_pem(rsa_key),
        rules={"dead": "unregistered", "busy": "429", "bad": "bad-token"},
    ) as server:
        yield server


@pytest.fixture()
def http(server: MockFCM) -> Iterator[Any]:
    with http2_client(server) as client:
        yield client


def grant(http: Any, server: MockFCM, jwt: str, grant_type: str = GRANT_TYPE) -> Any:
    return http.post(server.token_uri, data={"grant_type": grant_type, "assertion": jwt})


def access_token(http: Any, server: MockFCM, key: rsa.RSAPrivateKey) -> str:
    answer = grant(http, server, assertion(key, server.token_uri))
    assert answer.status_code == 200, answer.text
    assert answer.http_version == "HTTP/2"
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    token: str = body["access_token"]
    return token


def send(http: Any, server: MockFCM, bearer: str | None, message: dict[str, Any], **extra: Any):
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    url = f"{server.url}/v1/projects/{server.project_id}/messages:send"
    return http.post(url, json={"message": message, **extra}, headers=headers)


def error_code(answer: Any) -> str | None:
    for detail in answer.json()["error"].get("details", []):
        if "errorCode" in detail:
            return str(detail["errorCode"])
    return None


def test_grant_then_send_then_expire(http, server, rsa_key):
    message = {"token": TOKEN, "data": {"k": "v"}}
    unauthenticated = send(http, server, None, message)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["status"] == "UNAUTHENTICATED"

    token = access_token(http, server, rsa_key)
    ok = send(http, server, token, message)
    assert ok.status_code == 200
    assert ok.json() == {"name": f"projects/{server.project_id}/messages/0:1"}

    server.expire_oauth_tokens()
    assert send(http, server, token, message).status_code == 401
    fresh = access_token(http, server, rsa_key)
    assert send(http, server, fresh, message).status_code == 200
    assert server.oauth_tokens_issued == 2
    assert server.received(TOKEN) == 4
    assert server.total_received == 4


def test_bad_grants_are_refused(http, server, rsa_key):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    cases = [
        (assertion(other_key, server.token_uri), "invalid_grant"),
        (assertion(rsa_key, "https://example.com/token"), "invalid_grant"),
        (assertion(rsa_key, server.token_uri, iat=now - 7200, exp=now - 3600), "invalid_grant"),
        (assertion(rsa_key, server.token_uri, scope="email"), "invalid_scope"),
    ]
    for jwt, error in cases:
        answer = grant(http, server, jwt)
        assert (answer.status_code, answer.json()["error"]) == (400, error)
    valid = assertion(rsa_key, server.token_uri)
    answer = grant(http, server, valid, grant_type="client_credentials")
    assert answer.json()["error"] == "unsupported_grant_type"
    assert server.oauth_tokens_issued == 0


def test_rules_validation_dry_runs_and_fcm_error_shapes(http, server, rsa_key):
    token = access_token(http, server, rsa_key)
    gone = send(http, server, token, {"token": "dead-1"})
    assert (gone.status_code, gone.json()["error"]["status"], error_code(gone)) == (
        404,
        "NOT_FOUND",
        "UNREGISTERED",
    )
    busy = send(http, server, token, {"token": "busy-1"})
    assert (busy.status_code, error_code(busy), busy.headers["retry-after"]) == (
        429,
        "QUOTA_EXCEEDED",
        "60",
    )
    bad = send(http, server, token, {"token": "bad-1"})
    assert bad.json()["error"]["message"] == (
        "The registration token is not a valid FCM registration token"
    )

    invalid = send(http, server, token, {"token": TOKEN, "data": {"n": 1}})
    assert (invalid.status_code, error_code(invalid)) == (400, "INVALID_ARGUMENT")
    violations = [d for d in invalid.json()["error"]["details"] if "fieldViolations" in d]
    assert violations[0]["fieldViolations"][0]["field"] == "message.data[0].value"

    dry = send(http, server, token, {"token": TOKEN}, validate_only=True)
    assert dry.json()["name"].endswith("/messages/fake_message_id")
    assert server.dry_runs == 1
    assert server.received(TOKEN) == 1, "only the invalid send; the dry run is not counted"


def test_project_quota(rsa_key):
    with (
        MockFCM(
            service_account_email=EMAIL,
            service_account_public_key_pem=public_pem(rsa_key),
            quota_per_window=1,
            quota_window=1.0,
        ) as server,
        http2_client(server) as client,
    ):
        token = access_token(client, server, rsa_key)
        assert send(client, server, token, {"token": TOKEN}).status_code == 200
        over = send(client, server, token, {"token": TOKEN})
        assert (over.status_code, error_code(over), over.headers["retry-after"]) == (
            429,
            "QUOTA_EXCEEDED",
            "1",
        )
        assert server.quota_rejections == 1
        time.sleep(1.1)
        assert send(client, server, token, {"token": TOKEN}).status_code == 200
