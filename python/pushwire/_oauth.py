"""Google service-account credentials for FCM: the OAuth2 JWT-bearer grant.

The assertion is an RS256 JWT ``{iss: client_email, scope, aud: token_uri, iat, exp}`` signed
with the service account's RSA key and exchanged at ``token_uri`` for an access token that
lives about an hour. The private key, assertions and access tokens never appear in repr,
logs or exceptions.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ._errors import CredentialsError

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Google accepts assertions valid for at most an hour.
ASSERTION_LIFETIME = 3600

_REQUIRED = ("type", "project_id", "private_key", "client_email")


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class ServiceAccountCredentials:
    """A Firebase / Google Cloud service account (the JSON key file from the console)."""

    def __init__(
        self,
        info: Mapping[str, Any],
        *,
        token_uri: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        missing = [k for k in _REQUIRED if not isinstance(info.get(k), str) or not info.get(k)]
        if missing:
            raise CredentialsError(
                f"the service-account file lacks {', '.join(missing)}; download a new key "
                "(Firebase console > Project settings > Service accounts)",
                field=missing[0],
            )
        if info["type"] != "service_account":
            raise CredentialsError(
                f"expected a key of type 'service_account', got {info['type']!r}", field="type"
            )
        try:
            key = serialization.load_pem_private_key(str(info["private_key"]).encode(), None)
        except (ValueError, TypeError):
            # The parser's message could quote key material: not shown.
            raise CredentialsError(
                "private_key in the service-account file is not a readable PEM key",
                field="private_key",
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CredentialsError(
                "private_key must be an RSA key (service-account keys are RSA)",
                field="private_key",
            )
        self._key = key
        self.project_id: str = info["project_id"]
        self.client_email: str = info["client_email"]
        self.private_key_id: str | None = info.get("private_key_id")
        self.token_uri: str = token_uri or info.get("token_uri") or DEFAULT_TOKEN_URI
        self._clock = clock

    @classmethod
    def from_file(
        cls, path: Union[str, os.PathLike[str]], *, token_uri: str | None = None
    ) -> ServiceAccountCredentials:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise CredentialsError(
                f"cannot read service-account file {path}: {e.strerror}", field="service_account"
            ) from None
        try:
            info = json.loads(text)
        except ValueError as e:
            raise CredentialsError(
                f"service-account file {path} is not valid JSON (line {e.lineno})",  # type: ignore[attr-defined]
                field="service_account",
            ) from None
        if not isinstance(info, dict):
            raise CredentialsError(
                f"service-account file {path} must hold a JSON object", field="service_account"
            )
        return cls(info, token_uri=token_uri)

    @classmethod
    def from_env(
        cls, variable: str = "GOOGLE_APPLICATION_CREDENTIALS"
    ) -> ServiceAccountCredentials:
        path = os.environ.get(variable)
        if not path:
            raise CredentialsError(
                f"set {variable} to the service-account JSON file", field=variable
            )
        return cls.from_file(path)

    def public_key_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def assertion(self) -> str:
        """A signed JWT-bearer assertion for ``token_uri`` (secret: never log it)."""
        now = int(self._clock())
        header: dict[str, str] = {"alg": "RS256", "typ": "JWT"}
        if self.private_key_id:
            header["kid"] = self.private_key_id
        claims = {
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + b"."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return (signing_input + b"." + _b64url(signature)).decode()

    def token_request_body(self) -> bytes:
        """The form body of the token request."""
        return urllib.parse.urlencode(
            {"grant_type": GRANT_TYPE, "assertion": self.assertion()}
        ).encode()

    def __repr__(self) -> str:
        return (
            f"ServiceAccountCredentials(project_id={self.project_id!r}, "
            f"client_email={self.client_email!r}, private_key=<hidden>)"
        )


def parse_token_response(status: int, body: bytes | None) -> tuple[str, float]:
    """(access_token, expires_in seconds) from the token endpoint's answer, or a
    CredentialsError that says what Google said (never the assertion or the token)."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if status == 200 and isinstance(data.get("access_token"), str):
        expires_in = data.get("expires_in", 3600)
        if not isinstance(expires_in, (int, float)) or expires_in <= 0:
            expires_in = 3600
        return data["access_token"], float(expires_in)
    error = data.get("error") if isinstance(data.get("error"), str) else "no error code"
    description = data.get("error_description")
    detail = f"{error}: {description}" if isinstance(description, str) else error
    raise CredentialsError(
        f"the OAuth2 token request was refused (HTTP {status}, {detail}); check the service "
        "account key is current and has the Firebase Cloud Messaging API enabled",
        field="service_account",
    )
