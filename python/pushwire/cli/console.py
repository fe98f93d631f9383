"""The rich console every command prints with.

rich answers a closed stdout (``pushwire endpoints list | head``) with its own
``SystemExit(1)``; this console raises :class:`BrokenPipeError` instead, so the one rule in
:mod:`.commands` applies to tables as to plain text: a quiet exit with code 141.
"""

from __future__ import annotations

from rich.console import Console as _RichConsole


class Console(_RichConsole):
    def on_broken_pipe(self) -> None:
        raise BrokenPipeError
