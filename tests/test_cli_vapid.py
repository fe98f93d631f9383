"""``pushwire vapid generate|check``: a VAPID key made, read back, never printed."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from pushwire.cli.app import app
from pushwire.vapid import VapidKey

runner = CliRunner()


def test_generate_then_check(tmp_path: Path) -> None:
    out = tmp_path / "vapid.pem"
    made = runner.invoke(app, ["vapid", "generate", "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    public = VapidKey.load(out).public_key
    assert f"public_key={public}" in made.output
    assert "PRIVATE" not in made.output
    again = runner.invoke(app, ["vapid", "generate", "--out", str(out)])
    assert again.exit_code == 2 and "exists" in again.output
    checked = runner.invoke(app, ["vapid", "check", str(out), "--subject", "mailto:a@example.com"])
    assert checked.exit_code == 0, checked.output
    assert f"public_key={public}" in checked.output


def test_check_refuses_bad_keys_and_localhost_mailto(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nsecretish\n-----END PRIVATE KEY-----\n")
    result = runner.invoke(app, ["vapid", "check", str(bad)])
    assert result.exit_code == 2 and "secretish" not in result.output
    good = tmp_path / "good.pem"
    good.write_bytes(VapidKey.generate().private_pem())
    result = runner.invoke(app, ["vapid", "check", str(good), "--subject", "mailto:me@localhost"])
    assert result.exit_code == 2 and "localhost" in result.output
