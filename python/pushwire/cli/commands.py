"""The click classes of every ``pushwire`` command and group: how help and usage errors look.

- Help is click's plain layout, one section per help panel ("APNs credentials", "Output"...):
  it wraps to any terminal width and never cuts an option name, where typer's rich boxes
  squeeze them (``--service-accou…`` at 80 columns) and show flags with a ``<bool>`` value.
- A usage error of any kind (unknown option, bad value, a ``--config`` file that is not
  TOML...) is one ``error: ...`` line on stderr and exit code 2, in a terminal or not, as the
  errors of :func:`.errors.user_errors`; never a box.
- A closed stdout (``pushwire endpoints list | head``) ends the command quietly, as it would
  end any Unix tool, with exit code 141 (128 + SIGPIPE).

Typer ships its own copy of click from 0.29 on: the exception classes are taken from the
click typer uses (``typer.BadParameter``'s module), not imported from ``click``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from .errors import EXIT_BROKEN_PIPE, EXIT_USAGE, echo_error

_click_exceptions: Any = sys.modules[typer.BadParameter.__module__]


def _format_sections(command: Any, ctx: Any, formatter: Any) -> None:
    """Arguments, then the options by help panel, in the order they are declared."""
    sections: dict[str, list[tuple[str, str]]] = {}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if param.param_type_name == "argument":
            title = "Arguments"
        else:
            title = getattr(param, "rich_help_panel", None) or "Options"
        sections.setdefault(title, []).append(record)
    for title, records in sections.items():
        with formatter.section(title):
            formatter.write_dl(records)


class Command(TyperCommand):
    """A ``pushwire`` command: plain help in sections."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # click's layout, not typer's rich one (which is chosen in TyperCommand.format_help)
        super(TyperCommand, self).format_help(ctx, formatter)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _format_sections(self, ctx, formatter)


class Group(TyperGroup):
    """A ``pushwire`` group: plain help; at the root, one-line usage errors and a quiet
    broken pipe."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        super(TyperGroup, self).format_help(ctx, formatter)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _format_sections(self, ctx, formatter)
        self.format_commands(ctx, formatter)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(EXIT_BROKEN_PIPE) from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        # Run click without its own error display (standalone_mode=False), then show errors.
        run = (args, prog_name, complete_var, False, windows_expand_args)
        if not standalone_mode:
            return super().main(*run, **extra)
        try:
            code = super().main(*run, **extra)
        except _click_exceptions.ClickException as e:
            _echo_usage_error(e)
            sys.exit(e.exit_code)
        except typer.Abort:  # typer's own class from 0.29 on, click's before: both are here
            echo_error("aborted")
            sys.exit(1)
        except BrokenPipeError:
            # The reader left while output was still buffered (flushed after the command).
            _silence_stdout()
            sys.exit(EXIT_BROKEN_PIPE)
        sys.exit(code if isinstance(code, int) else 0)


def _echo_usage_error(error: Any) -> None:
    message = error.format_message()
    if type(error).__name__ == "NoArgsIsHelpError":
        # `pushwire` alone: the help, which rich-less click puts in the message
        if message.strip():
            typer.echo(message, err=True)
        return
    line = " ".join(message.split())
    ctx = getattr(error, "ctx", None)
    if ctx is not None and error.exit_code == EXIT_USAGE:
        line += f" (see: {ctx.command_path} --help)"
    echo_error(line)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises nothing more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a real file (tests), or already closed
        pass


def use_pushwire_classes(app: typer.Typer) -> None:
    """Give every command of ``app`` and of its sub-apps the :class:`Command` class (unless
    it asks for another), whoever registered it."""
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand):  # typer's default (None before 0.29)
            command.cls = Command
    for group in app.registered_groups:
        if not isinstance(group.cls, type) or group.cls is TyperGroup:  # typer's default
            group.cls = Group
        if group.typer_instance is not None:
            use_pushwire_classes(group.typer_instance)
