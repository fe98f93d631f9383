"""Compare this interpreter's installed releases with constraints.txt (scripts/test.sh).

Prints the differences; exits 0 when every pinned package is installed at its pinned version
and nothing else is installed (pip, setuptools and pushwire aside), 1 otherwise.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys

IGNORED = {"pip", "setuptools", "wheel", "pushwire"}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(path: str) -> int:
    pinned: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pinned[norm(name)] = version.strip()
    installed = {
        norm(d.metadata["Name"]): d.version
        for d in importlib.metadata.distributions()
        if norm(d.metadata["Name"]) not in IGNORED
    }
    changes = [
        f"{name} {pinned.get(name, '-')} -> {installed.get(name, '-')}"
        for name in sorted(pinned.keys() | installed.keys())
        if pinned.get(name) != installed.get(name)
    ]
    if changes:
        print(f"today's releases differ from {path}: {', '.join(changes)}")
        return 1
    print(f"today's releases are exactly {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
