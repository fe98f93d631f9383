"""APNs credentials: token auth (.p8 ES256 JWT) and certificate auth (PEM).

JWT rules (protocol.md §1.6): ES256 with a raw R‖S signature, header ``{alg, kid}``, claims
``{iss, iat}``, no ``exp``. One JWT per (team, key) is shared by every connection and rotated
between 20 and 60 minutes — never more often, so ``TooManyProviderTokenUpdates`` cannot happen.
Secrets never appear in ``repr``, logs or exceptions.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from pathlib import Path
from typing import Callable, Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ._errors import CredentialsError

#: Apple refuses a JWT older than 60 minutes and one refreshed more often than every 20.
MIN_ROTATION = 20 * 60
MAX_ROTATION = 60 * 60
DEFAULT_ROTATION = 50 * 60

KeySource = Union[str, bytes, os.PathLike[str]]


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _read_key_bytes(key: KeySource) -> bytes:
    if isinstance(key, bytes):
        return key
    text = os.fspath(key)
    if isinstance(text, str) and "-----BEGIN" in text:
        return text.encode()
    path = Path(text)
    try:
        return path.read_bytes()
    except OSError as e:
        raise CredentialsError(f"cannot read key file {path}: {e.strerror}", field="key") from None


def load_p8(key: KeySource) -> ec.EllipticCurvePrivateKey:
    """Load an APNs .p8 key (PKCS#8 PEM, EC P-256) from a path, PEM text or bytes."""
    data = _read_key_bytes(key)
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        # The parser's message is not shown: it could quote key material.
        raise CredentialsError(
            "the key is not a readable PEM private key; use the .p8 file downloaded from "
            "developer.apple.com (it starts with -----BEGIN PRIVATE KEY-----)",
            field="key",
        ) from None
    if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
        private.curve, ec.SECP256R1
    ):
        raise CredentialsError(
            "APNs token auth needs an EC P-256 key (.p8); this key is of another type",
            field="key",
        )
    return private


def _check_id(value: str, field: str) -> str:
    if not isinstance(value, str) or len(value) != 10 or not value.isalnum():
        shown = value if isinstance(value, str) else type(value).__name__
        raise CredentialsError(
            f"{field} must be the 10-character identifier from developer.apple.com, got {shown!r}",
            field=field,
        )
    return value


class TokenCredentials:
    """APNs token-based auth with a ``.p8`` signing key.

    ``clock`` returns epoch seconds; tests pass a controlled one.
    """

    def __init__(
        self,
        key: KeySource,
        *,
        key_id: str,
        team_id: str,
        rotation: float = DEFAULT_ROTATION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key_id = _check_id(key_id, "key_id")
        self.team_id = _check_id(team_id, "team_id")
        if not MIN_ROTATION <= rotation < MAX_ROTATION:
            raise CredentialsError(
                f"rotation must be between {MIN_ROTATION} and {MAX_ROTATION} seconds "
                "(Apple refuses tokens older than an hour and updates more often than 20 min)",
                field="rotation",
            )
        self._key = load_p8(key)
        self._rotation = rotation
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._header: str | None = None
        self._issued_at = 0.0
        #: JWTs minted so far (observability; rotation tests count them).
        self.mints = 0

    @classmethod
    def from_env(cls, prefix: str = "PUSHWIRE_APNS_") -> TokenCredentials:
        """Read ``{prefix}KEY`` (PEM text) or ``{prefix}KEY_FILE``, plus ``{prefix}KEY_ID`` and
        ``{prefix}TEAM_ID``."""
        key: KeySource | None = os.environ.get(prefix + "KEY") or os.environ.get(
            prefix + "KEY_FILE"
        )
        if not key:
            raise CredentialsError(f"set {prefix}KEY or {prefix}KEY_FILE", field="key")
        return cls(
            key,
            key_id=os.environ.get(prefix + "KEY_ID", ""),
            team_id=os.environ.get(prefix + "TEAM_ID", ""),
        )

    @property
    def identity(self) -> str:
        """What a connection is bound to: APNs ties a connection to the first key used on it."""
        return f"token:{self.team_id}:{self.key_id}"

    def public_key_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def _mint(self, now: float) -> str:
        header = _b64url(b'{"alg":"ES256","kid":"' + self.key_id.encode() + b'"}')
        claims = _b64url(
            b'{"iss":"' + self.team_id.encode() + b'","iat":' + str(int(now)).encode() + b"}"
        )
        signing_input = header + b"." + claims
        der = self._key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        self.mints += 1
        return (signing_input + b"." + _b64url(signature)).decode()

    def needs_refresh(self) -> bool:
        return self._token is None or self._clock() - self._issued_at >= self._rotation

    def authorization(self, *, force: bool = False) -> str:
        """The ``authorization`` header value, minting a JWT when the cached one is due.

        ``force`` (after ``ExpiredProviderToken``) mints anew, but still never within 20 minutes
        of the last mint: that would trigger ``TooManyProviderTokenUpdates``.
        """
        with self._lock:
            now = self._clock()
            age = now - self._issued_at
            due = self._token is None or age >= self._rotation or (force and age >= MIN_ROTATION)
            if due:
                self._token = self._mint(now)
                self._header = "bearer " + self._token
                self._issued_at = now
            assert self._header is not None
            return self._header

    def __repr__(self) -> str:
        return f"TokenCredentials(key_id={self.key_id!r}, team_id={self.team_id!r}, key=<hidden>)"


class CertificateCredentials:
    """APNs certificate-based auth: a PEM certificate chain and its private key."""

    def __init__(self, cert: KeySource, key: KeySource | None = None) -> None:
        cert_pem = _read_key_bytes(cert)
        key_pem = _read_key_bytes(key) if key is not None else cert_pem
        if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
            raise CredentialsError(
                "the certificate is not PEM (-----BEGIN CERTIFICATE-----)", field="cert"
            )
        if b"PRIVATE KEY-----" not in key_pem:
            raise CredentialsError("no PEM private key found for the certificate", field="key")
        self.cert_pem = cert_pem
        self._key_pem = key_pem

    @property
    def identity(self) -> str:
        import hashlib

        return "cert:" + hashlib.sha256(self.cert_pem).hexdigest()[:16]

    def client_cert(self) -> tuple[bytes, bytes]:
        return self.cert_pem, self._key_pem

    def __repr__(self) -> str:
        return f"CertificateCredentials(identity={self.identity!r}, key=<hidden>)"


Credentials = Union[TokenCredentials, CertificateCredentials]
