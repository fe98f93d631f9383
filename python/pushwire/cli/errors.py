"""How the CLI reports user errors: one plain line on stderr, exit code 2, never a traceback.

Library exceptions already say what is wrong without secrets (``PushwireError``); file errors
(``OSError``) are reworded to name the file. Programming errors are not caught here: they
should stay loud.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from .._errors import PushwireError

#: Exit codes shared by every command.
EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
#: 128 + SIGINT, what shells report for a command stopped with Ctrl-C.
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE, what shells report for a command whose reader went away (`... | head`).
EXIT_BROKEN_PIPE = 141


class CLIError(Exception):
    """A mistake in the command line, the configuration or an input file (exit code 2)."""


def echo_error(message: str) -> None:
    # typer.echo, not rich: messages quote user input, which must not be read as markup.
    typer.echo(f"error: {message}", err=True)


def echo_warning(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def describe_os_error(error: OSError) -> str:
    """``cannot open results.jsonl: Permission denied`` rather than ``[Errno 13] ...``."""
    if error.filename is not None:
        return f"cannot use {error.filename}: {error.strerror or error}"
    return str(error)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one line on stderr and exit code 2."""
    try:
        yield
    except CLIError as e:
        echo_error(str(e))
        raise typer.Exit(EXIT_USAGE) from None
    except PushwireError as e:
        echo_error(str(e))
        raise typer.Exit(EXIT_USAGE) from None
    except BrokenPipeError:
        raise  # stdout's reader went away: not a user error (see commands.Group.invoke)
    except OSError as e:
        echo_error(describe_os_error(e))
        raise typer.Exit(EXIT_USAGE) from None
