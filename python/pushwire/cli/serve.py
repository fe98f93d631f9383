"""``pushwire serve`` (the HTTP API and console of :mod:`pushwire.server`) and ``pushwire keys
create|list|revoke`` (its API keys). The web stack is imported when the server starts only."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from ..jobs.keys import DEFAULT_GROUP, DEFAULT_STREAM
from ..server.settings import SETTINGS_VARIABLE, ServerSettings
from ..store import Store
from ..store.backend import DATABASE_URL_VARIABLE
from .errors import CLIError, user_errors
from .options import DbOption


def _db(db: str | None) -> str:
    if not db:
        raise CLIError(f"give --db URL or set {DATABASE_URL_VARIABLE}")
    return db


def serve_command(
    db: DbOption = None,
    redis: Annotated[
        str | None,
        typer.Option(
            envvar="PUSHWIRE_REDIS_URL",
            help="Redis URL: large sends become jobs for `pushwire worker`.",
        ),
    ] = None,
    stream: Annotated[
        str, typer.Option(envvar="PUSHWIRE_STREAM", help="Job stream (with --redis).")
    ] = DEFAULT_STREAM,
    group: Annotated[
        str, typer.Option(envvar="PUSHWIRE_GROUP", help="Consumer group of the workers.")
    ] = DEFAULT_GROUP,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (>1 needs --redis).")] = 1,
    max_body: Annotated[int, typer.Option(min=1024, help="Largest request body, bytes.")] = 1 << 20,
    rate_limit: Annotated[
        int, typer.Option(min=0, help="Requests/s per key without a limit of its own (0: none).")
    ] = 1000,
    sync_send_limit: Annotated[
        int, typer.Option(min=0, help="Sends to more endpoints than this become jobs.")
    ] = 100,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="Allow browser calls from this origin (repeatable).")
    ] = None,
    shutdown_grace: Annotated[
        float, typer.Option(min=0, help="Seconds in-process jobs get to finish on SIGTERM.")
    ] = 30.0,
    apns_url: Annotated[str | None, typer.Option(help="APNs server (tests, proxies).")] = None,
    fcm_url: Annotated[str | None, typer.Option(help="FCM server (tests, proxies).")] = None,
    token_uri: Annotated[str | None, typer.Option(help="OAuth2 token URI for FCM.")] = None,
    ca_file: Annotated[str | None, typer.Option(help="Extra CA to trust (a mock's).")] = None,
    request_timeout: Annotated[float, typer.Option(min=0.1, help="Per-notification s.")] = 10.0,
    secure_cookies: Annotated[
        bool, typer.Option(help="Console cookie only over HTTPS (behind a TLS proxy).")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    access_log: Annotated[
        bool, typer.Option(help="Log every request (uvicorn's access log, at info level).")
    ] = True,
    fast_registrations: Annotated[
        bool,
        typer.Option(
            help="Answer POST /v1/devices without the framework's layers (same answers; "
            "off to compare)."
        ),
    ] = True,
) -> None:
    """Serve the HTTP API (/v1, docs at /docs) and the console (/console).

    One command on SQLite is enough: the store is created and migrated on first use. Create
    a key first with `pushwire keys create NAME --scope admin`. SIGTERM stops taking
    requests, finishes those in flight and lets in-process jobs finish (--shutdown-grace).
    """
    import uvicorn

    with user_errors():
        url = _db(db)
        if workers > 1 and not redis:
            raise CLIError("--workers above 1 needs --redis: jobs must be visible to every worker")
        settings = ServerSettings(
            db=url,
            redis=redis,
            stream=stream,
            group=group,
            max_body=max_body,
            rate_limit=rate_limit or None,
            sync_send_limit=sync_send_limit,
            cors_origins=tuple(cors_origin or ()),
            shutdown_grace=shutdown_grace,
            apns_url=apns_url,
            fcm_url=fcm_url,
            token_uri=token_uri,
            ca_file=ca_file,
            request_timeout=request_timeout,
            secure_cookies=secure_cookies,
            fast_registrations=fast_registrations,
        )
        # Migrate once here, not in every worker at once.
        Store.open(url).close()
        os.environ[SETTINGS_VARIABLE] = settings.to_env()
    uvicorn.run(
        "pushwire.server.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=int(shutdown_grace) + 5,
        server_header=False,
    )


keys_app = typer.Typer(
    no_args_is_help=True,
    help="API keys of `pushwire serve`: create (shown once), list, revoke.",
)


@keys_app.command("create")
def create_key_command(
    name: Annotated[str, typer.Argument(help="A name to recognise the key by.")],
    scope: Annotated[str, typer.Option(help="app, sender or admin.")] = "sender",
    application: Annotated[str | None, typer.Option(help="The application of an app key.")] = None,
    rate_limit: Annotated[
        int | None, typer.Option(min=1, help="Requests/s for this key (default: the server's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Create a key and print it: it is shown this once (only its hash is stored)."""
    from ..server.keys import ApiKeys

    with user_errors(), Store.open(_db(db)) as store:
        created = ApiKeys(store).create(name, scope, application=application, rate_limit=rate_limit)
    if as_json:
        typer.echo(json.dumps({"key_id": created.key.key_id, "secret": created.secret}))
    else:
        typer.echo(created.secret)
        typer.echo(
            f"key {created.key.key_id} ({created.key.scope.value}): store it now, "
            "it cannot be shown again",
            err=True,
        )


@keys_app.command("list")
def list_keys_command(
    include_revoked: Annotated[bool, typer.Option(help="Show revoked keys too.")] = False,
    db: DbOption = None,
) -> None:
    """The keys (never their secrets), one JSON object per line."""
    from ..server.keys import ApiKeys

    with user_errors(), Store.open(_db(db)) as store:
        for key in ApiKeys(store).list(include_revoked=include_revoked):
            typer.echo(
                json.dumps(
                    {
                        "key_id": key.key_id,
                        "name": key.name,
                        "scope": key.scope.value,
                        "application": key.application,
                        "rate_limit": key.rate_limit,
                        "created_at": key.created_at.isoformat(),
                        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
                    }
                )
            )


@keys_app.command("revoke")
def revoke_key_command(
    key_id: Annotated[str, typer.Argument(help="The key id (pw_<key id>_...).")],
    db: DbOption = None,
) -> None:
    """Revoke a key: every server refuses it from its next request on."""
    from ..server.keys import ApiKeys

    with user_errors(), Store.open(_db(db)) as store:
        key = ApiKeys(store).revoke(key_id)
    typer.echo(f"revoked {key.key_id} ({key.name})")
