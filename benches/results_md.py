"""Sections of benches/RESULTS.md owned by one benchmark each.

A benchmark that reports into RESULTS.md wraps its section in markers::

    <!-- begin:NAME -->
    ## ...
    <!-- end:NAME -->

and :func:`merge_section` replaces the text between its own markers, leaving everything else
(the throughput report, other benchmarks' sections) byte for byte as it was. A section seen
for the first time is appended at the end of the file. Whoever rewrites the whole file (the
throughput harness) keeps every ``begin:NAME`` … ``end:NAME`` block it did not write.
"""

from __future__ import annotations

import re
from pathlib import Path

NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def begin_marker(name: str) -> str:
    return f"<!-- begin:{name} -->"


def end_marker(name: str) -> str:
    return f"<!-- end:{name} -->"


def wrap(name: str, body: str) -> str:
    """``body`` between NAME's markers (no trailing newline after the end marker)."""
    if not NAME.fullmatch(name):
        raise ValueError(f"section name {name!r}: lowercase letters, digits, '_', '.', '-'")
    return f"{begin_marker(name)}\n{body.strip()}\n{end_marker(name)}"


def merge_text(document: str, name: str, body: str) -> str:
    """``document`` with NAME's section replaced by ``body`` (or appended)."""
    block = wrap(name, body)
    begin, end = begin_marker(name), end_marker(name)
    start = document.find(begin)
    if start >= 0:
        stop = document.find(end, start)
        if stop < 0:
            raise ValueError(f"{begin} has no {end}")
        if document.find(begin, start + len(begin)) >= 0:
            raise ValueError(f"{begin} appears twice")
        return document[:start] + block + document[stop + len(end) :]
    if not document.strip():
        return block + "\n"
    return document.rstrip("\n") + "\n\n" + block + "\n"


def merge_section(path: Path, name: str, body: str) -> None:
    """Replace (or append) NAME's section of the Markdown file at ``path``."""
    document = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(merge_text(document, name, body), encoding="utf-8")
