"""`pushwire demo` end to end, APNs and FCM: every notification gets exactly one result."""

from __future__ import annotations

import pytest

from support.cli import invoke, mode, read_jsonl


@pytest.mark.parametrize("provider", [[], ["--fcm"]], ids=["apns", "fcm"])
def test_demo_finishes_and_summarises(tmp_path, provider):
    results = tmp_path / "demo.jsonl"
    result = invoke(
        ["demo", *provider, "--count", "5000", "--no-progress", "--results", str(results)]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "5,000 results for 5,000 inputs" in out
    for row in ("throughput", "latency p50 / p99", "outcome delivered", "tokens to drop"):
        assert row in out
    assert ("404 UNREGISTERED" if provider else "410 Unregistered") in out
    assert "no answer (timeout)" in out
    assert f"full results: {results}\n" in out
    rows = read_jsonl(results)
    assert sorted(r["index"] for r in rows) == list(range(5000))
    assert mode(results) == 0o600
    assert "━" not in out  # no progress bar when not on a terminal


def test_demo_writes_no_results_file_unless_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(["demo", "--count", "500", "--no-progress", "--hang-percent", "0"])
    assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == []
    assert "full results: not kept (add --results FILE)" in result.stdout
