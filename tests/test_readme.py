"""Every ```python block of README.md runs, against the mock servers.

The rules, for whoever adds a README section:

1. Each ```python block runs on its own, as a script pasted into a fresh interpreter would:
   it imports what it uses and defines every name (no top-level ``await``: use
   ``asyncio.run``). Blocks do not see each other's names.
2. It runs in a child process whose current directory holds ``AuthKey_ABC123DEFG.p8`` (key id
   ``ABC123DEFG``, team ``DEF123GHIJ``) and ``service-account.json``, with
   ``PUSHWIRE_APNS_KEY_FILE`` / ``_KEY_ID`` / ``_TEAM_ID`` set for ``TokenCredentials.from_env()``.
   Every ``APNsClient`` / ``FCMClient`` (and their Sync versions) created without a
   ``base_url`` talks to a ``MockAPNs`` / ``MockFCM`` that accepts those credentials, whatever
   ``environment`` says; ``prometheus_client.start_http_server`` binds a free port instead of
   the one written. Nothing else is substituted.
3. Top-level functions named ``test_*`` are then called, with the arguments they name out of
   ``credentials`` (the APNs TokenCredentials above) and ``service_account``.
4. A block that creates a client and mentions ``send`` must get at least one notification to
   a mock, its own ``MockAPNs``/``MockFCM`` included (a send that silently sends nothing is
   a broken example).
5. A block that cannot run alone starts with the line ``# fragment``: it is only compiled.
   Keep these few.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
FRAGMENT = "# fragment"
KEY_ID, TEAM_ID = "ABC123DEFG", "DEF123GHIJ"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, source) of each ```python block."""
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        blocks.append((text.count("\n", 0, match.start()) + 2, match.group(1)))
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks_and_few_fragments():
    assert len(BLOCKS) >= 6
    fragments = [line for line, source in BLOCKS if source.startswith(FRAGMENT)]
    assert len(fragments) <= 2, f"fragments at README.md lines {fragments}: make them run"


@pytest.mark.parametrize(
    ("line", "source"), BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS]
)
def test_readme_block_runs(line: int, source: str, tmp_path: Path) -> None:
    if source.startswith(FRAGMENT):
        compile(source, f"README.md:{line}", "exec")
        return
    block = tmp_path / "block.py"
    block.write_text(source, encoding="utf-8")
    work = tmp_path / "cwd"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, __file__, str(block), str(line)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, f"README.md block at line {line} failed:\n{done.stderr}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["clients"] and "send" in source:
        assert report["received"] > 0, f"README.md:{line} created a client but sent nothing"


# -- the child: set up the directory and the mocks, then run one block -----------------------


def _run_block(path: str, line: str) -> None:
    import inspect

    import prometheus_client
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    import pushwire
    from pushwire.testing import MockAPNs, MockFCM

    p8 = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    Path(f"AuthKey_{KEY_ID}.p8").write_bytes(p8)
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    account = {
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "k1",
        "private_key": rsa_pem,
        "client_email": "pusher@demo-project.iam.gserviceaccount.com",
    }
    Path("service-account.json").write_text(json.dumps(account), encoding="utf-8")
    os.environ.update(
        PUSHWIRE_APNS_KEY_FILE=f"AuthKey_{KEY_ID}.p8",
        PUSHWIRE_APNS_KEY_ID=KEY_ID,
        PUSHWIRE_APNS_TEAM_ID=TEAM_ID,
    )
    credentials = pushwire.TokenCredentials(p8, key_id=KEY_ID, team_id=TEAM_ID)
    service_account = pushwire.ServiceAccountCredentials(account)
    # Count what every mock received, the block's own ones included (read before it stops).
    received = 0
    stop = MockAPNs.stop

    def counted_stop(self: Any) -> None:
        nonlocal received
        if self._server is not None:
            received += self.total_received
        stop(self)

    MockAPNs.stop = MockFCM.stop = counted_stop  # type: ignore[method-assign]
    apns = MockAPNs(credentials=credentials)
    fcm = MockFCM(credentials=service_account)
    clients = 0

    def pointed(cls: Any, defaults: dict[str, Any]) -> None:
        original = cls.__init__

        def __init__(self: Any, *args: Any, **options: Any) -> None:
            nonlocal clients
            clients += 1
            if options.get("base_url") is None:
                options.pop("environment", None)
                options.update(defaults)
            original(self, *args, **options)

        cls.__init__ = __init__

    pointed(pushwire.APNsClient, {"base_url": apns.url, "ca_file": apns.ca_file})
    pointed(
        pushwire.FCMClient,
        {"base_url": fcm.url, "ca_file": fcm.ca_file, "token_uri": fcm.token_uri},
    )
    serve = prometheus_client.start_http_server
    prometheus_client.start_http_server = lambda port, *a, **k: serve(0, *a, **k)

    source = Path(path).read_text(encoding="utf-8")
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, f"README.md:{line}", "exec"), namespace)
    fixtures = {"credentials": credentials, "service_account": service_account}
    for name, value in list(namespace.items()):
        if name.startswith("test_") and inspect.isfunction(value):
            value(**{p: fixtures[p] for p in inspect.signature(value).parameters})
    apns.stop()
    fcm.stop()
    print(json.dumps({"clients": clients, "received": received}))


if __name__ == "__main__":
    _run_block(sys.argv[1], sys.argv[2])
