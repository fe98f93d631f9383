"""The CLI as a real process: Ctrl-C in the middle of a send then --resume, the mock server
in the foreground, and the progress bar shown only on a terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

import pushwire
from pushwire.cli.mock import collect_rules
from pushwire.testing import MockAPNs
from support.cli import (
    CLI,
    apns_args,
    invoke,
    plain_environment,
    read_jsonl,
    service_account_info,
    write_jsonl,
    write_p8,
)
from support.util import tokens

ROWS = 20_000


def wait_for_lines(path: Path, at_least: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the send finished before it could be interrupted"
        if path.exists() and path.read_bytes().count(b"\n") >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"no results in {path} after {timeout} s")


def test_ctrl_c_mid_send_then_resume_covers_every_row_exactly_once(credentials, p8_key, tmp_path):
    toks = tokens(ROWS, "c1")
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": t} for t in toks])
    p8 = write_p8(tmp_path / "AuthKey_ABC123DEFG.p8", p8_key)
    results = tmp_path / "results.jsonl"
    # Slow answers and a rate limit: the send takes seconds, with notifications in flight.
    with MockAPNs(credentials=credentials, response_delay=0.3) as server:
        args = ["send", *apns_args(server, p8), "-i", str(source), "--results", str(results)]
        proc = subprocess.Popen(
            [*CLI, *args, "--rate-limit", "240000"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for_lines(results, 1000, proc, timeout=30)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, stderr
        assert "interrupted" in stderr and "--resume" in stderr
        assert "Traceback" not in stdout + stderr
        assert "not sent (interrupted)" in stdout
        first = read_jsonl(results)
        assert 0 < len(first) < ROWS
        assert all(r["outcome"] == "delivered" for r in first)  # in-flight ones finished

        second = invoke([*args, "--resume", "--no-progress"])
        assert second.exit_code == 0, second.output

        lines = [r["line"] for r in read_jsonl(results)]
        assert len(lines) == ROWS
        assert sorted(lines) == list(range(1, ROWS + 1))  # every row once, none twice
        assert server.total_received == ROWS
        assert all(server.received(t) == 1 for t in toks)  # nothing delivered was resent


def test_second_ctrl_c_gives_up_the_queue_and_resume_sends_it(credentials, p8_key, tmp_path):
    toks = tokens(2000, "eeee")
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": t} for t in toks])
    p8 = write_p8(tmp_path / "AuthKey_ABC123DEFG.p8", p8_key)
    results = tmp_path / "results.jsonl"
    # The server never answers and takes 50 streams at a time: the rest wait in the queue.
    with MockAPNs(
        credentials=credentials, rules={"eeee": "hang"}, max_concurrent_streams=50
    ) as server:
        args = [
            "send", *apns_args(server, p8), "-i", str(source), "--results", str(results),
            "--max-connections", "1", "--request-timeout", "2", "--no-progress",
        ]  # fmt: skip
        proc = subprocess.Popen([*CLI, *args], stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while server.total_received < 50 and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, stderr
        assert "closing now" in stderr and "Traceback" not in stderr
        first = read_jsonl(results)
        # Those on the wire when the client closed got their own outcome (the stream's
        # deadline, or the engine stopping): they may have been delivered, recorded as such.
        # Those still queued were never sent: left for --resume.
        assert 0 < len(first) < len(toks)
        assert all(r["outcome"] in ("timeout", "failed") and r["maybe_delivered"] for r in first)

        server.set_rules({})  # the server answers again
        second = invoke([*args, "--resume"])
        assert second.exit_code == 0, second.output

        lines = [r["line"] for r in read_jsonl(results)]
        assert sorted(lines) == list(range(1, len(toks) + 1))
        assert all(server.received(t) == 1 for t in toks)  # nothing was sent twice


def read_key_values(proc: subprocess.Popen, keys: set[str], timeout: float) -> dict[str, str]:
    found: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while not keys <= set(found) and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        key, _, value = line.strip().partition("=")
        found[key] = value
    assert keys <= set(found), found
    return found


def stop(proc: subprocess.Popen, sig: int) -> tuple[str, str]:
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_mock_command_serves_until_ctrl_c(message):
    proc = subprocess.Popen(
        [*CLI, "mock", "--rule", "dead=unregistered"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        found = read_key_values(proc, {"url", "ca_file"}, timeout=30)
        assert Path(found["ca_file"]).exists()
        client = pushwire.SyncAPNsClient(None, base_url=found["url"], ca_file=found["ca_file"])
        with client:
            ok = client.send(pushwire.Notification(tokens(1, "c2")[0], message))
            dead = client.send(pushwire.Notification(tokens(1, "dead")[0], message))
        assert ok.delivered
        assert dead.status == 410
    finally:
        _, stderr = stop(proc, signal.SIGINT)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_fcm_mock_command_checks_the_service_account_and_stops_on_sigterm(tmp_path):
    info = service_account_info("mock-project")
    account = pushwire.ServiceAccountCredentials(info)
    public_key = tmp_path / "public.pem"
    public_key.write_text(account.public_key_pem())
    proc = subprocess.Popen(
        [
            *CLI, "mock", "--fcm",
            "--service-account-public-key", str(public_key),
            "--service-account-email", account.client_email,
            "--project-id", "mock-project",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        found = read_key_values(proc, {"url", "ca_file", "token_uri", "project_id"}, timeout=30)
        assert found["project_id"] == "mock-project"
        key_file = tmp_path / "sa.json"
        key_file.write_text(json.dumps(info))
        result = invoke(
            [
                "send", "-i", "-", "--service-account", str(key_file),
                "--token-uri", found["token_uri"], "--base-url", found["url"],
                "--ca-file", found["ca_file"], "--title", "Hi",
            ],
            input='{"token": "fcm-token-1"}\n',
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    finally:
        _, stderr = stop(proc, signal.SIGTERM)
    assert proc.returncode == 0, stderr


def test_mock_command_refuses_a_malformed_rule():
    result = invoke(["mock", "--rule", "no-equals-sign"])
    assert result.exit_code == 2
    assert "PREFIX=BEHAVIOR" in result.stderr


def test_mock_rules_file_must_map_prefixes_to_behaviours(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text('{"dead": 410}')
    result = invoke(["mock", "--rules-file", str(rules)])
    assert result.exit_code == 2
    assert "rules.json" in result.stderr and "'dead'" in result.stderr


def test_mock_rules_come_from_a_json_or_toml_file_then_from_flags(tmp_path):
    toml = tmp_path / "rules.toml"
    toml.write_text('dead = "unregistered"\n"eeee" = "delay:200"\n')
    json_file = tmp_path / "rules.json"
    json_file.write_text('{"bad0": "bad-token"}')
    assert collect_rules(("ab=hang",), toml) == ["dead=unregistered", "eeee=delay:200", "ab=hang"]
    assert collect_rules((), json_file) == ["bad0=bad-token"]


# -- the progress bar: on a terminal only ------------------------------------------------------

PROGRESS_MARKERS = ("━", "in flight")


def run_in_terminal(args: list[str], timeout: float = 60) -> tuple[int, str]:
    """Run with stdin/stdout/stderr on a pseudo-terminal 160 columns wide; all it printed."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = plain_environment(TERM="xterm-256color")
    env.pop("COLUMNS", None)  # the terminal's own size applies
    proc = subprocess.Popen(args, stdin=secondary, stdout=secondary, stderr=secondary, env=env)
    os.close(secondary)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


def test_demo_shows_the_progress_bar_on_a_terminal(tmp_path):
    results = str(tmp_path / "r.jsonl")
    code, out = run_in_terminal([*CLI, "demo", "--count", "3000", "--hang-percent", "0",
                                 "--results", results])  # fmt: skip
    assert code == 0, out
    assert all(marker in out for marker in PROGRESS_MARKERS), out
    assert "/s" in out and "pushwire demo" in out


def test_no_progress_bar_with_no_progress_even_on_a_terminal(tmp_path):
    results = str(tmp_path / "r.jsonl")
    code, out = run_in_terminal([*CLI, "demo", "--count", "3000", "--hang-percent", "0",
                                 "--results", results, "--no-progress"])  # fmt: skip
    assert code == 0, out
    assert not any(marker in out for marker in PROGRESS_MARKERS), out
    assert "pushwire demo" in out


def test_no_progress_bar_when_stdout_is_not_a_terminal(tmp_path):
    results = str(tmp_path / "r.jsonl")
    proc = subprocess.run(
        [*CLI, "demo", "--count", "3000", "--hang-percent", "0", "--results", results],
        capture_output=True,
        text=True,
        timeout=60,
        env=plain_environment(),
    )
    assert proc.returncode == 0, proc.stderr
    assert not any(marker in proc.stdout + proc.stderr for marker in PROGRESS_MARKERS)
    assert "pushwire demo" in proc.stdout and "throughput" in proc.stdout


@pytest.mark.parametrize("progress", [True, False], ids=["progress", "no-progress"])
def test_send_progress_bar_follows_the_terminal_and_the_flag(
    credentials, p8_key, tmp_path, progress
):
    toks = tokens(2000, "c3" if progress else "c4")
    source = write_jsonl(tmp_path / "in.jsonl", [{"token": t} for t in toks])
    p8 = write_p8(tmp_path / "AuthKey_ABC123DEFG.p8", p8_key)
    with MockAPNs(credentials=credentials) as server:
        args = [*CLI, "send", *apns_args(server, p8), "-i", str(source)]
        code, out = run_in_terminal(args if progress else [*args, "--no-progress"])
        assert code == 0, out
        assert all(server.received(t) == 1 for t in toks)
    shown = all(marker in out for marker in PROGRESS_MARKERS)
    assert shown is progress, out
    assert "pushwire send" in out and "Traceback" not in out


@pytest.mark.parametrize("listing", [["--json"], []], ids=["json", "table"])
def test_a_closed_pipe_ends_a_listing_quietly(tmp_path, listing):
    # `pushwire endpoints list | head -3`: more output than a pipe holds, a reader that goes.
    from pushwire.store import Registration, Store

    url = f"sqlite:///{tmp_path}/store.db"
    with Store.open(url) as store:
        store.put_application("ios", provider="apns", topic="com.example.app")
        store.register_many(
            [Registration("ios", format(i, "064x"), user_id=f"u{i}") for i in range(2000)]
        )
    command = " ".join([*CLI, "endpoints", "list", "--db", url, *listing])
    script = f'{command} 2>"$1" | head -3 >/dev/null; echo "${{PIPESTATUS[0]}}"'
    done = subprocess.run(
        ["bash", "-c", script, "-", str(tmp_path / "stderr")],
        capture_output=True,
        text=True,
        env=plain_environment(),
        timeout=60,
    )
    assert done.stdout.strip() == "141"  # 128 + SIGPIPE, as any Unix tool
    assert (tmp_path / "stderr").read_text() == ""
