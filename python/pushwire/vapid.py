"""VAPID (RFC 8292): the application server's identity for Web Push.

A :class:`VapidKey` is an EC P-256 key pair; its public half is the ``applicationServerKey``
browsers subscribe with. :class:`VapidSigner` mints the ES256 JWT each push service wants
(``aud`` = the push service's origin, ``exp`` at most 24 h ahead, ``sub`` a ``mailto:`` or
``https:`` contact), cached per audience: one signature per push service and half-day, never
one per notification.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Callable, Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ._errors import ConfigurationError, CredentialsError

KeySource = Union[str, bytes, "os.PathLike[str]"]

#: Lifetime of a minted JWT (RFC 8292 allows at most 24 h), re-minted when less than
#: REMINT_MARGIN remains.
JWT_LIFETIME = 12 * 3600
REMINT_MARGIN = 3600


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class VapidKey:
    """An EC P-256 VAPID key pair. Load one with :meth:`load` (PEM file, PEM text, or the
    base64url raw private key many tools print), or make one with :meth:`generate`."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise CredentialsError("a VAPID key must be an EC P-256 key", field="vapid_key")
        self._key = private_key

    @classmethod
    def generate(cls) -> VapidKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def load(cls, source: KeySource) -> VapidKey:
        """From a PEM file path, PEM text/bytes, or a base64url raw private key (32 bytes)."""
        data: bytes
        if isinstance(source, bytes):
            data = source
        else:
            text = os.fspath(source)
            if "-----BEGIN" in text:
                data = text.encode()
            elif len(text) in (43, 44) and not Path(text).exists():
                try:
                    raw = _b64url_decode(text.strip())
                    value = int.from_bytes(raw, "big")
                    return cls(ec.derive_private_key(value, ec.SECP256R1()))
                except (ValueError, TypeError):
                    raise CredentialsError(
                        "the VAPID key is neither a PEM file nor a base64url private key",
                        field="vapid_key",
                    ) from None
            else:
                try:
                    data = Path(text).read_bytes()
                except OSError as e:
                    raise CredentialsError(
                        f"cannot read VAPID key file {text}: {e.strerror}", field="vapid_key"
                    ) from None
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            # The parser's message is not shown: it could quote key material.
            raise CredentialsError(
                "the VAPID key is not a readable PEM private key (-----BEGIN PRIVATE KEY-----); "
                "make one with `pushwire vapid generate`",
                field="vapid_key",
            ) from None
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise CredentialsError("a VAPID key must be an EC P-256 key", field="vapid_key")
        return cls(private)

    @property
    def public_key(self) -> str:
        """The uncompressed public point, base64url: the browser's ``applicationServerKey``."""
        return _b64url(
            self._key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def private_pem(self) -> bytes:
        """The private key as PKCS#8 PEM (keep it secret)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, data: bytes) -> bytes:
        """ES256: the raw 64-byte r || s signature JWTs use."""
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def __repr__(self) -> str:
        return f"VapidKey(public_key={self.public_key!r}, private=<hidden>)"


def check_subject(subject: str) -> str:
    """``mailto:`` or ``https:`` (RFC 8292 §2.1); Apple refuses ``mailto:`` at localhost."""
    parsed = urllib.parse.urlsplit(subject)
    if parsed.scheme == "mailto":
        domain = parsed.path.rpartition("@")[2].lower()
        if "@" not in parsed.path or not domain:
            raise ConfigurationError(
                f"subject {subject!r} is not a mailto: address", field="subject"
            )
        if domain == "localhost" or domain.endswith(".localhost"):
            raise ConfigurationError(
                "subject: Apple's push service refuses mailto: addresses at localhost "
                "(403 BadJwtToken); use a real contact address or an https: URL",
                field="subject",
            )
    elif parsed.scheme == "https":
        if not parsed.netloc:
            raise ConfigurationError(f"subject {subject!r} has no host", field="subject")
    else:
        raise ConfigurationError(
            "subject must be a mailto: or https: URI naming who runs this server (RFC 8292)",
            field="subject",
        )
    return subject


class VapidSigner:
    """Mints and caches ``Authorization: vapid t=<JWT>, k=<public key>`` per audience."""

    def __init__(
        self,
        key: VapidKey,
        subject: str,
        *,
        lifetime: float = JWT_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 60 <= lifetime <= 24 * 3600:
            raise ConfigurationError(
                "VAPID JWT lifetime must be between 60 s and 24 h", field="lifetime"
            )
        self.key = key
        self.subject = check_subject(subject)
        self._lifetime = lifetime
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        #: JWTs minted so far (tests and metrics count them).
        self.mints = 0

    def _mint(self, audience: str, now: float) -> tuple[str, float]:
        exp = int(now + self._lifetime)
        header = _b64url(b'{"typ":"JWT","alg":"ES256"}')
        claims = _b64url(json.dumps({"aud": audience, "exp": exp, "sub": self.subject}).encode())
        signing_input = f"{header}.{claims}"
        token = signing_input + "." + _b64url(self.key.sign(signing_input.encode()))
        self.mints += 1
        return f"vapid t={token}, k={self.key.public_key}", float(exp)

    def due(self, audience: str) -> bool:
        """True when the cached header for ``audience`` is missing or close to expiry."""
        cached = self._cache.get(audience)
        return cached is None or cached[1] - self._clock() < REMINT_MARGIN

    def authorization(self, audience: str, *, force: bool = False) -> str:
        """The header value for ``audience`` (a push service origin, ``https://host``)."""
        with self._lock:
            if force or self.due(audience):
                self._cache[audience] = self._mint(audience, self._clock())
            return self._cache[audience][0]

    def __repr__(self) -> str:
        return f"VapidSigner(subject={self.subject!r}, key={self.key!r})"
