"""Options shared by several commands, and what they are turned into.

Each option is an ``Annotated`` alias, declared once with its flag, ``PUSHWIRE_*`` variable,
help text and help panel, so that a command's signature reads as a list of groups:
credentials (APNs, FCM), endpoint, sending, the provider-neutral message (``send
--to-segment``, ``send-segment``, ``enqueue``) and the store (``--db``). Beside them: the
:class:`~pushwire.store.PushMessage` the message options describe, and the store ``--db``
names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from ..store import PushMessage, Store
from ..store.backend import DATABASE_URL_VARIABLE, sqlite_path
from .config import apply_config
from .credentials import CredentialOptions
from .errors import CLIError

#: Help panels of `pushwire send --help` (and of the commands sharing its options).
APNS = "APNs credentials"
FCM = "FCM credentials"
ENDPOINT = "Endpoint"
INPUT = "Input"
PAYLOAD = "Payload"
OUTPUT = "Output"
TUNING = "Sending"
SEGMENT = "Endpoint store (--to-segment)"

#: The keys of pushwire.PUSH_TYPES (a test checks they agree).
PushType = Literal[
    "alert",
    "background",
    "location",
    "voip",
    "complication",
    "fileprovider",
    "mdm",
    "liveactivity",
    "pushtotalk",
    "widgets",
    "controls",
]

# -- configuration ----------------------------------------------------------------------------

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="PUSHWIRE_CONFIG",
        is_eager=True,
        callback=apply_config,
        dir_okay=False,
        help="TOML file of option defaults (keys are option names; a [send] table applies "
        "to send only).",
    ),
]

# -- credentials ------------------------------------------------------------------------------

P8 = Annotated[
    Path | None,
    typer.Option(
        envvar="PUSHWIRE_P8",
        dir_okay=False,
        help="APNs signing key (AuthKey_XXXXXXXXXX.p8) for token auth.",
        rich_help_panel=APNS,
    ),
]
KeyId = Annotated[
    str | None,
    typer.Option(
        envvar="PUSHWIRE_KEY_ID",
        help="Key ID of the .p8 (default: the KEYID of an AuthKey_KEYID.p8 file name).",
        rich_help_panel=APNS,
    ),
]
TeamId = Annotated[
    str | None,
    typer.Option(envvar="PUSHWIRE_TEAM_ID", help="Apple team ID.", rich_help_panel=APNS),
]
Cert = Annotated[
    Path | None,
    typer.Option(
        envvar="PUSHWIRE_CERT",
        dir_okay=False,
        help="APNs push certificate, PEM (may hold the key too).",
        rich_help_panel=APNS,
    ),
]
Key = Annotated[
    Path | None,
    typer.Option(
        envvar="PUSHWIRE_KEY",
        dir_okay=False,
        help="Private key of --cert, PEM.",
        rich_help_panel=APNS,
    ),
]
P12 = Annotated[
    Path | None,
    typer.Option(
        envvar="PUSHWIRE_P12",
        dir_okay=False,
        help="APNs push certificate and key, .p12 export.",
        rich_help_panel=APNS,
    ),
]
Password = Annotated[
    str | None,
    typer.Option(
        envvar="PUSHWIRE_P12_PASSWORD",
        help="Password of --p12 (or of an encrypted --key). Prefer the environment variable: "
        "command lines are visible to other users.",
        show_default=False,
        rich_help_panel=APNS,
    ),
]
ServiceAccount = Annotated[
    Path | None,
    typer.Option(
        envvar="PUSHWIRE_SERVICE_ACCOUNT",
        dir_okay=False,
        help="Firebase service-account key (JSON) for FCM HTTP v1.",
        rich_help_panel=FCM,
    ),
]
ProjectId = Annotated[
    str | None,
    typer.Option(
        envvar="PUSHWIRE_PROJECT_ID",
        help="Firebase project (default: the service account's).",
        rich_help_panel=FCM,
    ),
]
TokenUri = Annotated[
    str | None,
    typer.Option(
        envvar="PUSHWIRE_TOKEN_URI",
        help="OAuth2 token endpoint (default: the service account's; a mock's token_uri).",
        rich_help_panel=FCM,
    ),
]


def credential_options(
    p8: Path | None,
    key_id: str | None,
    team_id: str | None,
    cert: Path | None,
    key: Path | None,
    p12: Path | None,
    password: str | None,
    service_account: Path | None,
) -> CredentialOptions:
    """The credential group of a command's options, as one value."""
    return CredentialOptions(p8, key_id, team_id, cert, key, p12, password, service_account)


# -- endpoint and sending ---------------------------------------------------------------------

BaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="PUSHWIRE_BASE_URL",
        help="Send to this server instead of Apple's / Google's (e.g. a `pushwire mock` url).",
        rich_help_panel=ENDPOINT,
    ),
]
CaFile = Annotated[
    Path | None,
    typer.Option(
        envvar="PUSHWIRE_CA_FILE",
        dir_okay=False,
        help="Extra CA certificate (PEM) to trust, e.g. a mock's ca_file.",
        rich_help_panel=ENDPOINT,
    ),
]
Topic = Annotated[
    str | None,
    typer.Option(
        envvar="PUSHWIRE_TOPIC",
        help="APNs topic: the app's bundle id (default with a certificate: its first topic).",
        rich_help_panel=PAYLOAD,
    ),
]
RequestTimeout = Annotated[
    float,
    typer.Option(
        envvar="PUSHWIRE_REQUEST_TIMEOUT",
        min=0.1,
        help="Seconds to wait for each answer.",
        rich_help_panel=TUNING,
    ),
]

# -- the provider-neutral message (send --to-segment, send-segment, enqueue) --------------------

TitleOption = Annotated[str | None, typer.Option(help="Notification title.")]
BodyOption = Annotated[str | None, typer.Option(help="Notification text.")]
DataOption = Annotated[
    list[str] | None, typer.Option("--data", help="Custom data KEY=VALUE (repeatable).")
]
ImageUrlOption = Annotated[str | None, typer.Option(help="https:// image to show.")]
SoundOption = Annotated[str | None, typer.Option(help="Sound name ('default').")]
BadgeOption = Annotated[int | None, typer.Option(min=0, help="App icon badge.")]
SilentOption = Annotated[bool, typer.Option("--silent", help="Background (data-only) message.")]
UrlOption = Annotated[str | None, typer.Option(help="Open this web page on tap.")]
DeepLinkOption = Annotated[str | None, typer.Option(help="Open this app link on tap.")]
MessageFileOption = Annotated[
    Path | None,
    typer.Option("--message", help="The whole message as JSON (PushMessage fields)."),
]


def push_message(
    message_file: Path | None,
    title: str | None,
    body: str | None,
    data: list[str] | None,
    image_url: str | None,
    sound: str | None,
    badge: int | None,
    silent: bool,
    url: str | None,
    deep_link: str | None,
) -> PushMessage:
    """The message the options describe: ``--message FILE``, or built from the others."""
    if message_file is not None:
        try:
            loaded = json.loads(message_file.read_text(encoding="utf-8"))
        except ValueError as e:
            raise CLIError(f"{message_file} is not valid JSON: {e}") from None
        return PushMessage.from_dict(loaded)
    pairs: dict[str, str] = {}
    for item in data or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"--data {item!r} is not KEY=VALUE")
        pairs[key] = value
    if url and deep_link:
        raise CLIError("give --url or --deep-link, not both")
    action = "url" if url else "deep_link" if deep_link else "open_app"
    return PushMessage(
        title=title,
        body=body,
        data=pairs,
        image_url=image_url,
        sound=sound,
        badge=badge,
        silent=silent,
        action=action,
        url=url or deep_link,
    )


# -- the endpoint store -----------------------------------------------------------------------

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar=DATABASE_URL_VARIABLE,
        help="Store URL: sqlite:///path.db (or a path) or postgresql://user:pw@host/db "
        f"(env {DATABASE_URL_VARIABLE}).",
        show_default=False,
    ),
]


def open_store(db: str | None) -> Store:
    """The store ``--db`` names, passed to :meth:`Store.open` as given (it reads the URL)."""
    if not db:
        raise CLIError(f"give --db URL or set {DATABASE_URL_VARIABLE}")
    return Store.open(db)


def open_existing_store(db: str | None) -> Store:
    """The store to send from: a SQLite file that does not exist is a mistake (opening it
    would create an empty store and send nothing), as is a store without applications."""
    if not db:
        raise CLIError(f"give --db URL or set {DATABASE_URL_VARIABLE}")
    path = sqlite_path(db)  # the store's own reading of the URL: where the file would be
    if path is not None and path != ":memory:" and not Path(path).exists():
        raise CLIError(
            f"no store at {path}: create it with `pushwire endpoints add-app` and "
            "`pushwire endpoints import`"
        )
    store = Store.open(db)
    if not store.applications():
        display = store.database.display_url
        store.close()
        raise CLIError(
            f"the store {display} has no applications: add one with `pushwire endpoints add-app`"
        )
    return store
