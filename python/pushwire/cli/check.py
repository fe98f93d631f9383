"""`pushwire check-credentials`: is this key, certificate or service account usable?

Locally: the file is read, the key type checked, a provider token (APNs) or an OAuth2
assertion (FCM) signed, a certificate's topics and expiry shown. With ``--online``: one
harmless request: an APNs background push to a made-up device token, or an FCM
``validate_only`` message, and what the answer means for the credentials. Nothing secret is
printed: not the key, not the token, not the password.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from .._apns import ENVIRONMENTS, APNsClient
from .._classify import classify
from .._errors import PushwireError
from .._fcm import DEFAULT_BASE_URL, FCMClient
from .._message import Message, Notification
from .._oauth import ServiceAccountCredentials
from .._results import Outcome, Result
from ..credentials import CertificateCredentials, Credentials, TokenCredentials, load_p8
from ..fcm import FCMMessage
from ..vapid import VapidKey, VapidSigner
from .credentials import CredentialOptions, key_id_from_file_name
from .errors import EXIT_OK, EXIT_USAGE, user_errors
from .options import (
    ENDPOINT,
    P8,
    P12,
    BaseUrl,
    CaFile,
    Cert,
    ConfigOption,
    Key,
    KeyId,
    Password,
    ProjectId,
    RequestTimeout,
    ServiceAccount,
    TeamId,
    TokenUri,
    Topic,
    credential_options,
)
from .report import failure_cause

#: A certificate expiring sooner than this is worth a warning.
EXPIRY_WARNING_DAYS = 30
#: Made-up device tokens for ``--online``: never a real device.
DUMMY_APNS_TOKEN = "0" * 64
DUMMY_FCM_TOKEN = "pushwire-check-credentials-dummy-token"
#: Answers that prove the credentials were accepted (only the made-up token was refused).
_TOKEN_REFUSALS = frozenset(
    {"BadDeviceToken", "Unregistered", "INVALID_ARGUMENT", "UNREGISTERED", "SENDER_ID_MISMATCH"}
)


@dataclass(frozen=True)
class CheckOptions:
    credentials: CredentialOptions
    online: bool = False
    sandbox: bool = True
    topic: str | None = None
    base_url: str | None = None
    ca_file: Path | None = None
    token_uri: str | None = None
    project_id: str | None = None
    request_timeout: float = 10.0
    vapid_key: str | None = None
    subject: str | None = None


class Report:
    """Findings, printed as they are made: ``ok:``, ``warning:`` or ``problem:`` lines."""

    def __init__(self) -> None:
        self.problems = 0

    def ok(self, text: str) -> None:
        typer.echo(f"ok: {text}")

    def warn(self, text: str) -> None:
        typer.echo(f"warning: {text}")

    def problem(self, text: str) -> None:
        self.problems += 1
        typer.echo(f"problem: {text}")

    @contextmanager
    def catching(self, subject: str, advice: Mapping[str, str] | None = None) -> Iterator[None]:
        """A library or file error becomes a ``problem:`` line about ``subject``, with the
        advice for the field it is about (``advice``: field -> what to do), unless the
        library's message already gives it: each hint once, and only where it applies."""
        try:
            yield
        except PushwireError as e:
            text = f"{subject}: {e}"
            hint = (advice or {}).get(getattr(e, "field", None) or "", "")
            self.problem(f"{text}; {hint}" if hint and hint not in text else text)
        except OSError as e:
            self.problem(f"{subject}: cannot read it ({e.strerror or e})")


def run_check(opts: CheckOptions) -> int:
    """Check every credential given; exit code 0 when all are usable, 2 otherwise."""
    creds = opts.credentials
    report = Report()
    if not any((creds.p8, creds.p12, creds.cert, creds.service_account, opts.vapid_key)):
        report.problem(
            "nothing to check: give --p8 KEY.p8 [--key-id --team-id], --p12 FILE --password, "
            "--cert PEM [--key PEM], --service-account KEY.json or --vapid-key KEY.pem "
            "[--subject mailto:...]"
        )
        return EXIT_USAGE
    if opts.vapid_key is not None:
        _check_vapid(opts.vapid_key, opts.subject, report)
    elif opts.subject is not None:
        report.problem("--subject is the VAPID contact: give it with --vapid-key")
    if creds.p8 is not None:
        _check_p8(creds.p8, creds, opts, report)
    if creds.p12 is not None or creds.cert is not None:
        _check_certificate(creds, opts, report)
    if creds.service_account is not None:
        _check_service_account(creds.service_account, opts, report)
    if report.problems:
        typer.echo(f"{report.problems} problem(s) found: these credentials cannot be used as is")
        return EXIT_USAGE
    typer.echo("credentials look usable" + ("" if opts.online else " (checked locally)"))
    return EXIT_OK


def _check_vapid(source: str, subject: str | None, report: Report) -> None:
    """A Web Push VAPID key: readable, EC P-256; its public key (what browsers subscribe
    with) is shown, the private key never; with ``--subject``, a JWT is signed with it."""
    with report.catching(
        "VAPID key", {"vapid_key": "make one with `pushwire vapid generate --out vapid.pem`"}
    ):
        key = VapidKey.load(source)
        report.ok("VAPID key: an EC P-256 private key (Web Push, RFC 8292)")
        report.ok(f"VAPID public key (the browsers' applicationServerKey): {key.public_key}")
        if subject is None:
            report.warn("no --subject: push services need a mailto: or https: contact with the key")
            return
        VapidSigner(key, subject).authorization("https://push.example")
        report.ok(f"signed a VAPID JWT with subject {subject}")


def _check_p8(path: Path, creds: CredentialOptions, opts: CheckOptions, report: Report) -> None:
    problems_before = report.problems
    with report.catching(
        str(path), {"key": "use the .p8 file downloaded from developer.apple.com"}
    ):
        load_p8(path)
        report.ok(f"{path}: an EC P-256 private key (APNs token auth)")
    if report.problems > problems_before:
        return
    named = key_id_from_file_name(path)
    key_id = creds.key_id or named
    if creds.key_id and named and named != creds.key_id.upper():
        report.warn(
            f"the file name says key id {named} but --key-id is {creds.key_id}: "
            "APNs refuses tokens signed with another key's id (InvalidProviderToken)"
        )
    if not key_id or not creds.team_id:
        skipped = " (--online skipped)" if opts.online else ""
        report.warn(
            f"add --key-id and --team-id to check that a provider token can be signed{skipped}"
        )
        return
    with report.catching("provider token"):
        token_creds = TokenCredentials(path, key_id=key_id, team_id=creds.team_id)
        token_creds.authorization()  # signs an ES256 JWT; never printed
        report.ok(f"signed an ES256 provider token (key id {key_id}, team id {creds.team_id})")
        if opts.online:
            _check_apns_online(token_creds, opts.topic, opts, report)


def _check_certificate(creds: CredentialOptions, opts: CheckOptions, report: Report) -> None:
    # An expired certificate (field "cert") needs renewing, which the library says: no
    # password advice for it.
    advice: dict[str, str]
    if creds.p12 is not None:
        subject_file = str(creds.p12)
        again = "check --password (or PUSHWIRE_P12_PASSWORD), or export the .p12 again"
        advice = {"password": again, "p12": again}
    else:
        subject_file = str(creds.cert)
        advice = {
            "key": "give the certificate's private key with --key (and --password if encrypted)",
            "password": "give the key's password with --password (or PUSHWIRE_P12_PASSWORD)",
        }
    with report.catching(subject_file, advice):
        if creds.p12 is not None:
            cert = CertificateCredentials.from_p12(creds.p12, creds.password)
        else:
            assert creds.cert is not None
            cert = CertificateCredentials(creds.cert, creds.key, password=creds.password)
        subject = cert.certificate.subject.rfc4514_string()
        report.ok(f"{subject_file}: certificate {subject} with its private key")
        topics = ", ".join(cert.topics) if cert.topics else "none listed"
        report.ok(f"topics: {topics}")
        days_left = (cert.not_after - dt.datetime.now(dt.timezone.utc)).days
        expiry = f"expires {cert.not_after:%Y-%m-%d} ({days_left} days from now)"
        if days_left < EXPIRY_WARNING_DAYS:
            report.warn(f"{expiry}: renew it on developer.apple.com soon")
        else:
            report.ok(expiry)
        if opts.online:
            _check_apns_online(cert, opts.topic or next(iter(cert.topics), None), opts, report)


def _check_service_account(path: Path, opts: CheckOptions, report: Report) -> None:
    fresh_key = "download a new key from the Firebase console"
    with report.catching(str(path), {"private_key": fresh_key, "type": fresh_key}):
        account = ServiceAccountCredentials.from_file(path, token_uri=opts.token_uri)
        report.ok(
            f"{path}: service account {account.client_email}, project {account.project_id}, "
            "RSA private key"
        )
        account.assertion()  # signs an RS256 JWT; never printed
        report.ok(f"signed an OAuth2 assertion (RS256) for {account.token_uri}")
        if opts.online:
            _check_fcm_online(account, opts, report)


def _apns_answer(result: Result, url: str, report: Report) -> None:
    reason = result.reason or ""
    if result.outcome is Outcome.DELIVERED:
        report.ok(f"{url} accepted the credentials and the topic (HTTP 200)")
    elif reason in _TOKEN_REFUSALS:
        report.ok(
            f"{url} accepted the credentials and the topic; it refused the made-up device "
            f"token ({reason}), as expected"
        )
    elif reason in ("InvalidProviderToken", "MissingProviderToken"):
        report.problem(
            f"{url} refused the provider token ({reason}): the key, key id and team id don't "
            "belong together, or the key was revoked"
        )
    elif reason in ("BadCertificateEnvironment", "BadEnvironmentKeyIdInToken"):
        report.problem(
            f"{url} says these credentials are for the other environment ({reason}): "
            "try --production (or --sandbox)"
        )
    elif reason in ("BadTopic", "TopicDisallowed", "DeviceTokenNotForTopic", "MissingTopic"):
        report.problem(f"{url} refused the topic ({reason}): check --topic (the bundle id)")
    elif result.status == 0:
        report.problem(f"could not reach {url}: {failure_cause(result)}")
    else:
        description = classify(result).description
        report.problem(f"{url} answered {result.status} {reason}: {description}")


def _check_apns_online(
    credentials: Credentials, topic: str | None, opts: CheckOptions, report: Report
) -> None:
    if topic is None:
        report.problem("--online needs --topic (the app's bundle id) to build a request")
        return
    url = opts.base_url or ENVIRONMENTS["sandbox" if opts.sandbox else "production"]
    message = Message({"aps": {"content-available": 1}}, topic=topic, push_type="background")

    async def ask() -> Result:
        async with APNsClient(
            credentials,
            environment="sandbox" if opts.sandbox else "production",
            base_url=opts.base_url,
            ca_file=opts.ca_file,
            request_timeout=opts.request_timeout,
            max_connections=1,
        ) as client:
            result: Result = await client.send(Notification(DUMMY_APNS_TOKEN, message))
            return result

    _apns_answer(asyncio.run(ask()), url, report)


def _fcm_answer(result: Result, project: str, report: Report) -> None:
    reason = result.reason or ""
    if result.outcome is Outcome.DELIVERED:
        report.ok(f"FCM accepted a validate-only message for project {project} (none was sent)")
    elif reason in _TOKEN_REFUSALS:
        report.ok(
            f"FCM accepted the access token for project {project}; it refused the made-up "
            f"device token ({reason}), as expected"
        )
    elif reason == "PERMISSION_DENIED" or result.status == 403:
        report.problem(
            f"FCM refused to send for project {project} ({reason or result.status}): give the "
            "service account the Firebase Cloud Messaging role and enable the FCM API"
        )
    elif reason == "NOT_FOUND" or result.status == 404:
        report.problem(f"FCM does not know project {project!r}: check --project-id")
    elif result.status == 0:
        report.problem(f"could not reach FCM: {failure_cause(result)}")
    else:
        description = classify(result).description
        report.problem(f"FCM answered {result.status} {reason}: {description}")


def _check_fcm_online(
    account: ServiceAccountCredentials, opts: CheckOptions, report: Report
) -> None:
    async def ask() -> tuple[Result, str]:
        async with FCMClient(
            account,
            project_id=opts.project_id,
            base_url=opts.base_url or DEFAULT_BASE_URL,
            ca_file=opts.ca_file,
            request_timeout=opts.request_timeout,
            max_connections=1,
        ) as client:
            probe = FCMMessage(token=DUMMY_FCM_TOKEN, data={"check": "1"}, validate_only=True)
            result = await client.send(probe)
            return result, client.project_id

    result, project = asyncio.run(ask())
    report.ok(f"obtained an OAuth2 access token from {account.token_uri}")
    _fcm_answer(result, project, report)


# -- the command ------------------------------------------------------------------------------


def check_credentials_command(
    p8: P8 = None,
    key_id: KeyId = None,
    team_id: TeamId = None,
    cert: Cert = None,
    key: Key = None,
    p12: P12 = None,
    password: Password = None,
    service_account: ServiceAccount = None,
    project_id: ProjectId = None,
    token_uri: TokenUri = None,
    online: Annotated[
        bool,
        typer.Option(
            help="Also make one harmless request: an APNs push to a made-up token, or an FCM "
            "validate-only message.",
            rich_help_panel=ENDPOINT,
        ),
    ] = False,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox/--production",
            envvar="PUSHWIRE_SANDBOX",
            help="APNs environment for --online.",
            rich_help_panel=ENDPOINT,
        ),
    ] = True,
    topic: Topic = None,
    base_url: BaseUrl = None,
    ca_file: CaFile = None,
    request_timeout: RequestTimeout = 10.0,
    vapid_key: Annotated[
        str | None,
        typer.Option(
            "--vapid-key",
            envvar="PUSHWIRE_VAPID_KEY",
            help="A Web Push VAPID private key (PEM file): its public key is shown, never the "
            "private one.",
        ),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(
            "--subject",
            envvar="PUSHWIRE_VAPID_SUBJECT",
            help="The VAPID contact (mailto: or https:) to check with --vapid-key.",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Check a .p8 key, a .p12 / PEM push certificate, a service-account key or a Web Push
    VAPID key, locally (and with --online against APNs or FCM). Exit code 0 when usable, 2
    otherwise."""
    with user_errors():
        code = run_check(
            CheckOptions(
                credentials=credential_options(
                    p8, key_id, team_id, cert, key, p12, password, service_account
                ),
                online=online,
                sandbox=sandbox,
                topic=topic,
                base_url=base_url,
                ca_file=ca_file,
                token_uri=token_uri,
                project_id=project_id,
                request_timeout=request_timeout,
                vapid_key=vapid_key,
                subject=subject,
            )
        )
    raise typer.Exit(code)
