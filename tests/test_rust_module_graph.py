"""The Rust crates' modules import one another without a cycle (issue 15 §3)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "rust_module_cycles.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )


def test_core_and_mock_have_no_module_cycle() -> None:
    result = run("--graph", str(ROOT / "rust/core/src"), str(ROOT / "rust/mock/src"))
    assert result.returncode == 0, result.stdout
    # The graph is really read: the driver's edge to the pool's shared state is listed.
    assert "crate::pool::connection -> " in result.stdout
    assert "crate::pool::shared" in result.stdout.split("crate::pool::connection -> ")[1]


def test_a_cycle_is_reported(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pool").mkdir(parents=True)
    (src / "lib.rs").write_text("mod engine;\nmod pool;\n")
    (src / "engine.rs").write_text("use crate::pool::Shared; // not an edge: crate::x\n")
    (src / "pool" / "mod.rs").write_text("mod shared;\npub use shared::Shared;\n")
    (src / "pool" / "shared.rs").write_text(
        'pub struct Shared;\nfn f() { let _ = "crate::nothing"; crate::engine::run(); }\n'
        "#[cfg(test)]\nmod tests {\n    use super::*;\n}\n"
    )
    result = run(str(src))
    assert result.returncode == 1
    assert "CYCLE: crate::engine <-> crate::pool <-> crate::pool::shared" in result.stdout
