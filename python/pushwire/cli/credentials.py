"""Which credential the command line names, loaded with errors that say what to pass.

APNs: ``--p8 --key-id --team-id`` (token auth), ``--cert [--key]`` (PEM) or ``--p12
--password`` (certificate auth). FCM: ``--service-account``. Exactly one kind may be given.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .._errors import CredentialsError
from .._oauth import ServiceAccountCredentials
from ..credentials import CertificateCredentials, Credentials, TokenCredentials
from .errors import CLIError

#: Apple names key files AuthKey_<KEY ID>.p8.
_KEY_FILE_NAME = re.compile(r"AuthKey_([A-Z0-9]{10})\.p8", re.IGNORECASE)


@dataclass(frozen=True)
class CredentialOptions:
    p8: Path | None = None
    key_id: str | None = None
    team_id: str | None = None
    cert: Path | None = None
    key: Path | None = None
    p12: Path | None = None
    password: str | None = None
    service_account: Path | None = None


def key_id_from_file_name(path: Path) -> str | None:
    """The key id in ``AuthKey_ABC123DEFG.p8``, the name Apple gives the download."""
    match = _KEY_FILE_NAME.fullmatch(path.name)
    return match.group(1).upper() if match else None


def provider(opts: CredentialOptions) -> str:
    """``apns`` or ``fcm``, from the one kind of credential given."""
    given = [
        name
        for name, value in (
            ("--p8", opts.p8),
            ("--cert", opts.cert),
            ("--p12", opts.p12),
            ("--service-account", opts.service_account),
        )
        if value is not None
    ]
    if not given:
        raise CLIError(
            "no credentials: give --p8 KEY.p8 --key-id --team-id (APNs token auth), "
            "--cert / --p12 (APNs certificate) or --service-account KEY.json (FCM)"
        )
    if len(given) > 1:
        raise CLIError(f"give one kind of credentials, not {' and '.join(given)}")
    if opts.key is not None and opts.cert is None:
        raise CLIError("--key goes with --cert (the certificate's private key)")
    return "fcm" if opts.service_account is not None else "apns"


def apns_credentials(opts: CredentialOptions) -> Credentials:
    if opts.p8 is not None:
        key_id = opts.key_id or key_id_from_file_name(opts.p8)
        if not key_id or not opts.team_id:
            missing = " and ".join(
                name for name, v in (("--key-id", key_id), ("--team-id", opts.team_id)) if not v
            )
            raise CLIError(
                f"--p8 needs {missing}: the 10-character ids shown with the key on "
                "developer.apple.com (Certificates, Identifiers & Profiles > Keys)"
            )
        with _naming(opts.p8):
            return TokenCredentials(opts.p8, key_id=key_id, team_id=opts.team_id)
    if opts.p12 is not None:
        with _naming(opts.p12, "check --password (or PUSHWIRE_P12_PASSWORD)"):
            return CertificateCredentials.from_p12(opts.p12, opts.password)
    if opts.cert is not None:
        with _naming(opts.cert):
            return CertificateCredentials(opts.cert, opts.key, password=opts.password)
    raise CLIError("no APNs credentials: give --p8, --cert or --p12")


def service_account(opts: CredentialOptions, token_uri: str | None) -> ServiceAccountCredentials:
    if opts.service_account is None:
        raise CLIError("FCM needs --service-account KEY.json")
    with _naming(opts.service_account):
        return ServiceAccountCredentials.from_file(opts.service_account, token_uri=token_uri)


@contextmanager
def _naming(path: Path, advice: str = "") -> Iterator[None]:
    """Credential errors name the file they are about (and, for a password, what to do)."""
    try:
        yield
    except CredentialsError as e:
        text = str(e)
        if str(path) not in text:
            text = f"{path}: {text}"
        if advice and e.field == "password":
            text += f"; {advice}"
        raise CLIError(text) from None
