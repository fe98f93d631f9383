"""Settings of the extension's allocator, applied before ``_core`` is loaded.

The Rust engine allocates with mimalloc (about a fifth less CPU per notification than glibc
malloc). By default mimalloc commits whole arenas up front, which shows as tens of megabytes of
resident memory that a bounded-memory send never uses; committing on demand costs nothing
measurable here. A value the user set in the environment wins.
"""

from __future__ import annotations

import os

os.environ.setdefault("MIMALLOC_ARENA_EAGER_COMMIT", "0")
