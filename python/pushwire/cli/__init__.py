"""The ``pushwire`` command line (install it with ``pip install 'pushwire[cli]'``).

Commands: ``send`` (a file of tokens, or ``--to-segment`` of the endpoint store),
``check-credentials``, ``mock``, ``demo``, ``endpoints ...`` (the endpoint store),
``send-segment``, ``campaigns ...`` and ``kpis`` (campaigns), ``enqueue``, ``worker`` and
``jobs ...`` (scale-out on Redis Streams), ``bench`` (the throughput harness of a source
checkout), ``serve`` and ``keys ...`` (the HTTP API and console,
``pip install 'pushwire[serve]'``).

Options come from flags, then ``PUSHWIRE_*`` environment variables, then ``--config
FILE.toml``, then defaults. Exit codes: 0 all delivered / all fine, 1 some notifications were
not delivered, 2 usage or configuration error, 130 interrupted. User errors are one line on
stderr, never a traceback; secrets are never printed.

Modules: :mod:`.app` registers the commands; each command lives in its own module
(:mod:`.send`, :mod:`.check`, :mod:`.mock`, :mod:`.demo`, :mod:`.endpoints`, :mod:`.segment`,
:mod:`.campaigns`, :mod:`.jobs`, :mod:`.bench`, :mod:`.serve`); :mod:`.options` holds the
options several commands share, and :mod:`.errors` the one way user errors are reported.
``import pushwire`` does not import this package: the library does not need typer or rich.
"""

from __future__ import annotations

import sys

#: What to do when the command line's dependencies are not installed.
MISSING_EXTRA = (
    "error: the pushwire command needs its extra dependencies (typer, rich): "
    "pip install 'pushwire[cli]'"
)


def main() -> None:
    """The ``pushwire`` entry point."""
    try:
        from .app import run
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] not in ("typer", "rich", "click"):
            raise
        print(MISSING_EXTRA, file=sys.stderr)
        raise SystemExit(2) from None
    run()
