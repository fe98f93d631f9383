"""``pushwire vapid ...``: make and check the VAPID key Web Push needs (RFC 8292).

``generate`` writes a new EC P-256 private key (PKCS#8 PEM, owner-only) and prints the public
key browsers subscribe with (``applicationServerKey``). ``check`` reads a key (PEM file or
base64url private key) and, with ``--subject``, the contact the JWTs carry; it prints the
public key, never the private one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ..vapid import VapidKey, VapidSigner
from .errors import CLIError, user_errors

vapid_app = typer.Typer(
    help="Web Push VAPID keys: generate one, check one.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@vapid_app.command("generate")
def generate_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the private key.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a new VAPID private key (PEM, mode 0600); print its public key."""
    with user_errors():
        if out.exists() and not force:
            raise CLIError(f"{out} exists; pass --force to replace it")
        key = VapidKey.generate()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        fd = os.open(out, flags, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_pem())
        os.chmod(out, 0o600)
        typer.echo(f"private_key={out}")
        typer.echo(f"public_key={key.public_key}")


@vapid_app.command("check")
def check_command(
    key: Annotated[str, typer.Argument(help="PEM file, or a base64url private key.")],
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="The mailto: or https: contact the JWTs will carry."),
    ] = None,
) -> None:
    """Read a VAPID key (and subject); print the public key browsers must subscribe with."""
    with user_errors():
        vapid = VapidKey.load(key)
        if subject is not None:
            VapidSigner(vapid, subject).authorization("https://push.example")
        typer.echo("ok: EC P-256 VAPID key" + (f", subject {subject}" if subject else ""))
        typer.echo(f"public_key={vapid.public_key}")
