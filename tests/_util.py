"""Helpers shared by the test modules."""

from __future__ import annotations


def tokens(n: int, prefix: str = "", start: int = 0) -> list[str]:
    """n distinct 64-hex-char tokens starting with ``prefix``."""
    width = 64 - len(prefix)
    return [prefix + format(i, f"0{width}x") for i in range(start, start + n)]
