"""The sections other benchmarks merge into RESULTS.md, kept verbatim when the throughput
harness regenerates the file.

Other benchmarks (bench_store.py: ``store``, soak.py: ``soak``, bench_workers.py:
``workers``) own a block between ``<!-- begin:NAME -->`` and ``<!-- end:NAME -->`` and replace
it with ``results_md.merge_section``. The harness rewrites everything else and appends every
such block of the old file, byte for byte, in the old file's order.
"""

from __future__ import annotations

import re

_SECTION = re.compile(
    r"^<!-- begin:(?P<name>[a-z0-9][a-z0-9_.-]*) -->\n.*?^<!-- end:(?P=name) -->$",
    re.MULTILINE | re.DOTALL,
)


def marked_sections(text: str) -> dict[str, str]:
    """NAME -> its whole block, markers included, in file order."""
    return {m.group("name"): m.group(0) for m in _SECTION.finditer(text)}


def preserve(new_report: str, old_text: str) -> str:
    """``new_report`` followed by the marked sections of ``old_text`` it does not contain."""
    own = marked_sections(new_report)
    kept = [block for name, block in marked_sections(old_text).items() if name not in own]
    if not kept:
        return new_report
    return new_report.rstrip("\n") + "\n\n" + "\n\n".join(kept) + "\n"
