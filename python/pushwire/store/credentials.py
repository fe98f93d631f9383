"""Credential references: an application row says *where* its credentials are, never what
they are, and :func:`client_for` turns that into a client at send time.

========================================== =====================================================
``p8:PATH?key_id=KEY_ID&team_id=TEAM_ID``  APNs token key (``.p8``)
``p12:PATH?password_env=VARIABLE``         APNs certificate (``.p12``), password from VARIABLE
``cert:CERT.pem?key=KEY.pem``              APNs certificate and key (PEM files)
``env:PREFIX``                             APNs: ``TokenCredentials.from_env(PREFIX)``
                                           (``PUSHWIRE_APNS_`` if empty); FCM: the service-
                                           account file named by variable PREFIX
                                           (``GOOGLE_APPLICATION_CREDENTIALS`` if empty)
``service-account:PATH``                   FCM service-account JSON key
``vapid:PATH?subject=CONTACT``             Web Push VAPID key (PEM), ``subject`` a ``mailto:``
                                           or ``https:`` contact (RFC 8292)
========================================== =====================================================

Relative paths are relative to the working directory of the sending process.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any, NamedTuple, Union

from .._apns import APNsClient
from .._errors import CredentialsError
from .._fcm import FCMClient
from .._oauth import ServiceAccountCredentials
from .._webpush import WebPushClient
from ..credentials import CertificateCredentials, TokenCredentials
from ..vapid import VapidKey
from .errors import StoreInputError
from .model import Application, Provider

SCHEMES = ("p8", "p12", "cert", "env", "service-account", "vapid")
_APNS_ONLY = ("p8", "p12", "cert")


class VapidCredentials(NamedTuple):
    """A Web Push application's VAPID key and the contact the push services see."""

    key: VapidKey
    subject: str


Credentials = Union[
    TokenCredentials, CertificateCredentials, ServiceAccountCredentials, VapidCredentials
]


def check_credentials_ref(ref: object) -> str | None:
    """A syntactically valid reference (the files need not exist on this machine)."""
    if ref is None:
        return None
    if isinstance(ref, str) and "BEGIN" in ref and "KEY" in ref:
        raise StoreInputError(
            "credentials_ref looks like a key itself: store where the key is, not the key",
            field="credentials_ref",
        )
    if not isinstance(ref, str) or not ref or len(ref) > 1024 or "\n" in ref:
        raise StoreInputError(
            "credentials_ref must be a one-line reference such as p8:/keys/AuthKey.p8?"
            "key_id=...&team_id=...",
            field="credentials_ref",
        )
    scheme, _, rest = ref.partition(":")
    if scheme not in SCHEMES or (not rest and scheme != "env"):
        raise StoreInputError(
            f"credentials_ref {ref!r} must start with one of {', '.join(s + ':' for s in SCHEMES)}",
            field="credentials_ref",
        )
    return ref


def _split(rest: str) -> tuple[str, dict[str, str]]:
    path, _, query = rest.partition("?")
    return path, dict(urllib.parse.parse_qsl(query, keep_blank_values=True))


def load_credentials(application: Application) -> Credentials:
    """The credentials ``application.credentials_ref`` points at."""
    ref = application.credentials_ref
    if ref is None:
        raise CredentialsError(
            f"application {application.name!r} has no credentials_ref: set one, or pass "
            "clients={name: client} yourself",
            field="credentials_ref",
        )
    scheme, _, rest = ref.partition(":")
    path, params = _split(rest)
    webpush = application.provider is Provider.WEBPUSH
    if webpush != (scheme == "vapid"):
        raise CredentialsError(
            f"application {application.name!r} is {application.provider.value}: "
            + (
                "its credentials_ref must be vapid:KEY.pem?subject=mailto:..."
                if webpush
                else "vapid: credentials are for Web Push applications"
            ),
            field="credentials_ref",
        )
    if webpush:
        subject = params.get("subject")
        if not subject:
            raise CredentialsError(
                "vapid: credentials need ?subject=mailto:you@example.com (or an https: URL): "
                "the contact push services see",
                field="credentials_ref",
            )
        return VapidCredentials(VapidKey.load(path), subject)
    apns = application.provider is Provider.APNS
    if scheme in _APNS_ONLY and not apns:
        raise CredentialsError(
            f"{scheme}: credentials are for APNs, but {application.name!r} is an FCM application",
            field="credentials_ref",
        )
    if scheme == "service-account" and apns:
        raise CredentialsError(
            f"service-account: credentials are for FCM, but {application.name!r} is an APNs "
            "application",
            field="credentials_ref",
        )
    if scheme == "p8":
        return TokenCredentials(
            Path(path), key_id=params.get("key_id", ""), team_id=params.get("team_id", "")
        )
    if scheme == "p12":
        variable = params.get("password_env")
        return CertificateCredentials.from_p12(
            Path(path), os.environ.get(variable) if variable else None
        )
    if scheme == "cert":
        key = params.get("key")
        return CertificateCredentials(Path(path), Path(key) if key else None)
    if scheme == "service-account":
        return ServiceAccountCredentials.from_file(path)
    if apns:
        return TokenCredentials.from_env(path or "PUSHWIRE_APNS_")
    return ServiceAccountCredentials.from_env(path or "GOOGLE_APPLICATION_CREDENTIALS")


def client_for(application: Application, **options: Any) -> APNsClient | FCMClient | WebPushClient:
    """A client for ``application`` from its credential reference. ``options`` go to the
    client (``base_url``, ``ca_file``, ``request_timeout``...; ``token_uri`` for FCM)."""
    credentials = load_credentials(application)
    if isinstance(credentials, VapidCredentials):
        # Each subscription names its push service: there is no base URL or token URI.
        options.pop("base_url", None)
        options.pop("token_uri", None)
        return WebPushClient(credentials.key, subject=credentials.subject, **options)
    if isinstance(credentials, ServiceAccountCredentials):
        if application.project_id is not None:
            options.setdefault("project_id", application.project_id)
        return FCMClient(credentials, **options)
    options.pop("token_uri", None)
    return APNsClient(credentials, environment=application.environment or "production", **options)
