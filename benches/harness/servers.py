"""The servers: the pushwire mock (Rust binary, or the same server hosted in a Python
process) and nginx serving APNs-shaped answers over TLS HTTP/2. Both are started by the
harness, once for the whole run, and stopped at its end."""

from __future__ import annotations

import grp
import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .common import (
    BAD_TOKEN_PREFIX,
    FCM_EMAIL,
    KEY_ID,
    MOCK_BIN,
    MOCK_RULES,
    REPO,
    SERVER_MAX_STREAMS,
    TEAM_ID,
    UNREGISTERED_PREFIX,
)
from .keys import write_server_certificate

START_TIMEOUT = 30.0
BUILD_TIMEOUT = 1800.0
#: Core the servers are pinned to with ``--pin split`` (clients get the other one).
SERVER_CORE = "0"
CLIENT_CORE = "1"


@dataclass
class Server:
    name: str  # "mock" or "nginx"
    proc: subprocess.Popen[bytes]
    url: str  # what the clients connect to (certificate name: localhost)
    ca_file: str
    kind: str  # one line for the report
    token_uri: str = ""
    pinned: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None, self.url
        return port

    @property
    def h2load_url(self) -> str:
        """The same server by address (h2load does not verify the name anyway)."""
        parts = urlsplit(self.url)
        return f"https://127.0.0.1:{parts.port}"

    def cpu_seconds(self) -> float | None:
        """User+system CPU of the server process and its children (nginx's worker)."""
        try:
            import psutil
        except ImportError:
            return None
        try:
            process = psutil.Process(self.proc.pid)
            total = 0.0
            for p in [process, *process.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            return None
        return total

    def alive(self) -> bool:
        return self.proc.poll() is None


def pin_prefix(core: str, pin: bool) -> list[str]:
    if pin and shutil.which("taskset"):
        return ["taskset", "-c", core]
    return []


def stop(server: Server | None) -> None:
    if server is None or server.proc.poll() is not None:
        return
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


# -- the pushwire mock ------------------------------------------------------------------------


def mock_binary_fresh() -> bool:
    """The binary is newer than every input of the mock crate (its sources, its manifest,
    the workspace manifest and Cargo.lock): cargo would do nothing. Checked first because
    on a shared machine ``cargo build`` can wait minutes for another build's lock."""
    if not MOCK_BIN.exists():
        return False
    inputs = [REPO / "Cargo.toml", REPO / "Cargo.lock"]
    inputs += [p for p in (REPO / "rust" / "mock").rglob("*") if p.is_file()]
    built = MOCK_BIN.stat().st_mtime
    return all(not p.exists() or p.stat().st_mtime <= built for p in inputs)


def ensure_mock_binary(notes: list[str]) -> bool:
    """Build the mock unless it is up to date (a stale binary may lack a feature)."""
    if mock_binary_fresh():
        return True
    print("cargo build --release -p pushwire-mock ...", file=sys.stderr)
    try:
        build = subprocess.run(
            ["cargo", "build", "--release", "-p", "pushwire-mock"],
            cwd=REPO,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        failure = f"could not build pushwire-mock ({e})"
    else:
        if build.returncode == 0 and MOCK_BIN.exists():
            return True
        failure = "cargo build of pushwire-mock failed"
    if MOCK_BIN.exists():
        notes.append(f"{failure}; used the existing (possibly stale) {MOCK_BIN.name} binary")
        return True
    notes.append(f"{failure}; used the Python-hosted mock server instead")
    return False


# The same Rust server, hosted in a Python process (pushwire's extension module).
PYTHON_MOCK = """
import json, sys
from pushwire import _core
options = json.loads(sys.argv[1])
server = _core.MockServer(
    jwt_keys=[tuple(k) for k in options["jwt_keys"]],
    fcm_service_accounts=[tuple(a) for a in options["fcm_service_accounts"]],
    rules=options["rules"],
)
print(f"url={server.url}", flush=True)
print(f"ca_file={server.ca_file}", flush=True)
print(f"token_uri={server.token_uri}", flush=True)
sys.stdin.read()
server.stop()
"""
ANNOUNCED = ("url", "ca_file", "token_uri")


def read_announcement(proc: subprocess.Popen[bytes]) -> dict[str, str]:
    """The mock's ``url=``, ``ca_file=`` and ``token_uri=`` lines, within START_TIMEOUT.

    Raw ``os.read`` on the pipe: a buffered readline could swallow the second line where
    ``select`` no longer sees it.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + START_TIMEOUT
    text = ""
    found: dict[str, str] = {}
    while not all(key in found for key in ANNOUNCED):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise RuntimeError(f"the mock did not announce {'=, '.join(ANNOUNCED)}= in time")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RuntimeError(f"the mock exited early (code {proc.wait()})")
        text += chunk.decode()
        for line in text.splitlines()[: text.count("\n")]:
            key, _, value = line.strip().partition("=")
            found[key] = value
    return found


def start_mock(pub_file: Path, sa_pub_file: Path, use_binary: bool, pin: bool) -> Server:
    """One server for every scenario: APNs (ES256 JWTs), FCM v1 and its OAuth2 endpoint
    (RS256 assertions of the bench service account), and the token-prefix rules of
    MOCK_RULES (hang, 40 ms delay, 410, 400; no bulk token has those prefixes)."""
    if use_binary:
        argv = [
            str(MOCK_BIN),
            "--max-streams",
            str(SERVER_MAX_STREAMS),
            "--jwt-key",
            f"{KEY_ID}:{TEAM_ID}:{pub_file}",
            "--fcm-service-account",
            f"{FCM_EMAIL}:{sa_pub_file}",
        ]
        for rule in MOCK_RULES:
            argv += ["--rule", rule]
        kind = "Rust binary target/release/pushwire-mock"
    else:
        options = {
            "jwt_keys": [[KEY_ID, TEAM_ID, pub_file.read_text()]],
            "fcm_service_accounts": [[FCM_EMAIL, sa_pub_file.read_text()]],
            "rules": MOCK_RULES,
        }
        argv = [sys.executable, "-c", PYTHON_MOCK, json.dumps(options)]
        kind = "pushwire._core.MockServer in a separate Python process"
    prefix = pin_prefix(SERVER_CORE, pin)
    proc = subprocess.Popen(prefix + argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    server = Server("mock", proc, "", "", kind, pinned=bool(prefix))
    try:
        found = read_announcement(proc)
    except BaseException:
        stop(server)
        raise
    server.url, server.ca_file, server.token_uri = (
        found["url"],
        found["ca_file"],
        found["token_uri"],
    )
    return server


# -- nginx ------------------------------------------------------------------------------------

NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return next((c for c in NGINX_CANDIDATES if os.access(c, os.X_OK)), None)


def worker_user() -> str:
    """Run as root, nginx switches its worker to an unprivileged user; name one that exists
    (Debian has www-data, and nobody's group is nogroup there)."""
    if os.geteuid() != 0:
        return ""  # the directive is ignored (with a warning) unless the master is root
    for name in ("www-data", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return f"user {name} {grp.getgrgid(entry.pw_gid).gr_name};\n"
    return ""


def render_nginx_config(
    directory: Path, port: int, cert_file: Path, key_file: Path, user_line: str = ""
) -> str:
    """An APNs-shaped HTTP/2 server: 200 with an ``apns-id`` (the request's, else a UUID
    made from ``$request_id``) for every ``POST /3/device/<token>``; tokens starting with
    UNREGISTERED_PREFIX get 410 ``{"reason":"Unregistered","timestamp":<ms>}`` and tokens
    starting with BAD_TOKEN_PREFIX get 400 ``{"reason":"BadDeviceToken"}``.

    ``return`` makes nginx discard the request body: the DATA frames are still received
    (and their flow-control window released), not buffered. nginx 1.22 (Debian 12) predates
    the ``http2 on`` directive (1.25.1), hence ``listen ... ssl http2``. keepalive_requests
    also bounds HTTP/2 requests per connection since 1.19.7 (default 1,000, then GOAWAY):
    it is raised so no run depends on reconnecting.
    """
    d = directory
    return f"""\
# Generated by benches/harness/servers.py for one benchmark run.
{user_line}worker_processes 1;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {d}/client-body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    # apns-id: the request's own (as APNs echoes it), else a UUID made of the 32 hex digits
    # of $request_id.
    map $request_id $generated_apns_id {{
        "~^(?<a>.{{8}})(?<b>.{{4}})(?<c>.{{4}})(?<d>.{{4}})(?<e>.{{12}})$" "$a-$b-$c-$d-$e";
    }}
    map $http_apns_id $apns_id {{
        "" $generated_apns_id;
        default $http_apns_id;
    }}
    # APNs timestamps are milliseconds since the epoch; $msec is "seconds.millis".
    map $msec $apns_timestamp {{
        "~^(?<s>[0-9]+)\\.(?<ms>[0-9]+)$" "$s$ms";
    }}
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert_file};
        ssl_certificate_key {key_file};
        http2_max_concurrent_streams {SERVER_MAX_STREAMS};
        keepalive_requests 1000000000;
        keepalive_timeout 600s;
        client_body_buffer_size 16k;
        client_max_body_size 16k;
        default_type application/json;
        location ~ ^/3/device/{UNREGISTERED_PREFIX} {{
            add_header apns-id $apns_id always;
            return 410 '{{"reason":"Unregistered","timestamp":$apns_timestamp}}';
        }}
        location ~ ^/3/device/{BAD_TOKEN_PREFIX} {{
            add_header apns-id $apns_id always;
            return 400 '{{"reason":"BadDeviceToken"}}';
        }}
        location /3/device/ {{
            add_header apns-id $apns_id always;
            return 200;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nginx_version(binary: str) -> str:
    try:
        done = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (done.stderr or done.stdout).strip().split("/", 1)[-1] or "unknown"


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def start_nginx(directory: Path, pin: bool, notes: list[str]) -> Server | None:
    """nginx on an unprivileged port with a generated configuration; None (and a note for
    the report) when nginx is not installed or does not start."""
    binary = find_nginx()
    if binary is None:
        notes.append(
            "nginx is not installed (`apt-get install -y nginx-light`): no nginx rows in this run"
        )
        return None
    directory.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = write_server_certificate(directory)
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(render_nginx_config(directory, port, cert_file, key_file, worker_user()))
    prefix = pin_prefix(SERVER_CORE, pin)
    argv = [*prefix, binary, "-p", str(directory), "-c", str(conf)]
    with (directory / "nginx-stderr.log").open("wb") as stderr_file:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr_file
        )
    kind = (
        f"nginx {nginx_version(binary)} ({binary}), 1 worker process, TLS HTTP/2, "
        f"http2_max_concurrent_streams {SERVER_MAX_STREAMS}, generated config"
    )
    server = Server(
        "nginx", proc, f"https://localhost:{port}", str(ca_file), kind, pinned=bool(prefix)
    )
    if not wait_for_port(port, proc, START_TIMEOUT):
        stop(server)
        detail = []
        for log in (directory / "nginx-error.log", directory / "nginx-stderr.log"):
            if log.exists():
                detail += log.read_text(errors="replace").strip().splitlines()[-1:]
        notes.append(f"nginx did not start: {' '.join(detail) or 'no message'}")
        return None
    return server
