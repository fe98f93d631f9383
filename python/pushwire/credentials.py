"""APNs credentials: token auth (.p8 ES256 JWT) and certificate auth (PEM).

JWT rules (protocol.md §1.6): ES256 with a raw R‖S signature, header ``{alg, kid}``, claims
``{iss, iat}``, no ``exp``. One JWT per (team, key) is shared by every connection and rotated
between 20 and 60 minutes — never more often, so ``TooManyProviderTokenUpdates`` cannot happen.
Secrets never appear in ``repr``, logs or exceptions.
"""

from __future__ import annotations

import base64
import datetime as _dt
import os
import threading
import time
from pathlib import Path
from typing import Callable, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

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

    @property
    def issued_at(self) -> float:
        """Epoch seconds the current JWT was issued at (0 before the first one)."""
        return self._issued_at

    def adopt(self, token: str, issued_at: float) -> None:
        """Use a JWT of this key minted elsewhere (another worker, shared through Redis:
        :mod:`pushwire.jobs.shared_auth`) instead of minting one; an older one than the
        current is ignored. It is rotated like our own, ``rotation`` after ``issued_at``."""
        with self._lock:
            if issued_at >= self._issued_at:
                self._token = token
                self._header = "bearer " + token
                self._issued_at = issued_at

    def __repr__(self) -> str:
        return f"TokenCredentials(key_id={self.key_id!r}, team_id={self.team_id!r}, key=<hidden>)"


#: Apple's certificate extension listing the topics a push certificate may use.
_APPLE_TOPICS_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.3.6")


class CertificateCredentials:
    """APNs certificate-based auth: the certificate is the TLS client certificate.

    Build it from PEM (``CertificateCredentials(cert, key)``) or from a ``.p12`` export
    (``CertificateCredentials.from_p12(path, password)``). An expired or not-yet-valid
    certificate is refused here, before any connection is made.
    """

    def __init__(
        self,
        cert: KeySource,
        key: KeySource | None = None,
        *,
        password: str | bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        cert_pem = _read_key_bytes(cert)
        key_pem = _read_key_bytes(key) if key is not None else cert_pem
        try:
            certificate = x509.load_pem_x509_certificate(cert_pem)
        except ValueError:
            raise CredentialsError(
                "the certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
                field="cert",
            ) from None
        private = _load_private_key(key_pem, password)
        _check_pair(certificate, private)
        self._init(certificate, private, cert_pem, clock)

    def _init(
        self,
        certificate: x509.Certificate,
        private: PrivateKeyTypes,
        chain_pem: bytes,
        clock: Callable[[], float],
    ) -> None:
        _check_validity(certificate, clock())
        self.certificate = certificate
        self.cert_pem = chain_pem
        # rustls wants an unencrypted PKCS#8 key; it lives only in this object and the engine.
        self._key_pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.topics = certificate_topics(certificate)
        self.not_after = certificate.not_valid_after_utc

    @classmethod
    def from_p12(
        cls,
        p12: KeySource,
        password: str | bytes | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> CertificateCredentials:
        """Load a ``.p12`` / ``.pfx`` export (path or bytes) protected by ``password``."""
        data = p12 if isinstance(p12, bytes) else _read_path(p12, "p12")
        secret = password.encode() if isinstance(password, str) else password
        try:
            private, certificate, extra = pkcs12.load_key_and_certificates(data, secret)
        except ValueError:
            # Wrong password and corrupt files look alike to OpenSSL; the message covers both
            # and never echoes the password.
            raise CredentialsError(
                "cannot open the .p12 file: wrong password, or not a PKCS#12 file",
                field="password",
            ) from None
        if certificate is None or private is None:
            raise CredentialsError(
                "the .p12 file must hold the push certificate and its private key",
                field="p12",
            )
        _check_pair(certificate, private)
        chain = [certificate, *extra]
        chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
        self = cls.__new__(cls)
        self._init(certificate, private, chain_pem, clock)
        return self

    @classmethod
    def from_env(cls, prefix: str = "PUSHWIRE_APNS_") -> CertificateCredentials:
        """Read ``{prefix}P12_FILE`` + ``{prefix}P12_PASSWORD``, or ``{prefix}CERT_FILE`` +
        ``{prefix}KEY_FILE`` (PEM)."""
        p12 = os.environ.get(prefix + "P12_FILE")
        if p12:
            return cls.from_p12(p12, os.environ.get(prefix + "P12_PASSWORD"))
        cert = os.environ.get(prefix + "CERT_FILE")
        if not cert:
            raise CredentialsError(f"set {prefix}P12_FILE or {prefix}CERT_FILE", field="cert")
        return cls(cert, os.environ.get(prefix + "KEY_FILE"))

    @property
    def identity(self) -> str:
        fingerprint = self.certificate.fingerprint(hashes.SHA256()).hex()
        return "cert:" + fingerprint[:16]

    def client_cert(self) -> tuple[bytes, bytes]:
        return self.cert_pem, self._key_pem

    def __repr__(self) -> str:
        subject = self.certificate.subject.rfc4514_string()
        return f"CertificateCredentials(subject={subject!r}, topics={self.topics!r}, key=<hidden>)"


def _read_path(source: KeySource, field: str) -> bytes:
    path = Path(os.fsdecode(source))
    try:
        return path.read_bytes()
    except OSError as e:
        raise CredentialsError(
            f"cannot read {field} file {path}: {e.strerror}", field=field
        ) from None


def _load_private_key(key_pem: bytes, password: str | bytes | None) -> PrivateKeyTypes:
    secret = password.encode() if isinstance(password, str) else password
    try:
        return serialization.load_pem_private_key(key_pem, password=secret)
    except TypeError:
        raise CredentialsError(
            "the private key is encrypted: pass password=...", field="password"
        ) from None
    except ValueError:
        raise CredentialsError(
            "cannot read the certificate's private key: not PEM, or wrong password",
            field="key",
        ) from None


def _check_pair(certificate: x509.Certificate, private: PrivateKeyTypes) -> None:
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    mine = private.public_key().public_bytes(serialization.Encoding.DER, public)
    theirs = certificate.public_key().public_bytes(serialization.Encoding.DER, public)
    if mine != theirs:
        raise CredentialsError("the private key does not belong to the certificate", field="key")


def _check_validity(certificate: x509.Certificate, now: float) -> None:
    when = _dt.datetime.fromtimestamp(now, tz=_dt.timezone.utc)
    if when > certificate.not_valid_after_utc:
        raise CredentialsError(
            f"the push certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}; "
            "renew it on developer.apple.com (certificates are valid one year)",
            field="cert",
        )
    if when < certificate.not_valid_before_utc:
        raise CredentialsError(
            f"the push certificate is not valid before {certificate.not_valid_before_utc:%Y-%m-%d}",
            field="cert",
        )


def certificate_topics(certificate: x509.Certificate) -> list[str]:
    """Topics a push certificate covers: its bundle id (subject UID) plus the topics listed in
    Apple's extension 1.2.840.113635.100.6.3.6 (VoIP, complication...), in order, deduplicated."""
    topics: list[str] = []
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.USER_ID):
        if isinstance(attribute.value, str):
            topics.append(attribute.value)
    try:
        extension = certificate.extensions.get_extension_for_oid(_APPLE_TOPICS_OID)
    except x509.ExtensionNotFound:
        return topics
    value = extension.value
    if isinstance(value, x509.UnrecognizedExtension):
        for topic in _der_topics(value.value):
            if topic not in topics:
                topics.append(topic)
    return topics


def _der_topics(der: bytes) -> list[str]:
    """Read Apple's topics extension:
    SEQUENCE { UTF8String topic, SEQUENCE { UTF8String kind... }, ... }.

    Only the top-level strings are topics; the nested sequences name their push kinds. Malformed
    input yields what could be read, never an exception.
    """
    topics: list[str] = []
    try:
        tag, body, _ = _der_item(der, 0)
        if tag != 0x30:
            return topics
        pos = 0
        while pos < len(body):
            tag, value, pos = _der_item(body, pos)
            if tag == 0x0C:
                topics.append(value.decode("utf-8", "replace"))
    except (IndexError, ValueError):
        pass
    return topics


def _der_item(data: bytes, pos: int) -> tuple[int, bytes, int]:
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    end = pos + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, data[pos:end], end


Credentials = Union[TokenCredentials, CertificateCredentials]
