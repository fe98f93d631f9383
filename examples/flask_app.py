"""Flask (threaded): one SyncAPNsClient per process, shared by every request thread.

    PUSHWIRE_APNS_KEY_FILE=... PUSHWIRE_APNS_KEY_ID=... PUSHWIRE_APNS_TEAM_ID=... \\
    flask --app flask_app run --with-threads

The client is made on first use, not at import: under `gunicorn --preload` the module is
imported before the workers fork, and a client must be created in the process that uses it
(gunicorn.conf.py creates it in post_fork instead). PUSHWIRE_BASE_URL / PUSHWIRE_CA_FILE point
it at another server (the tests: the mock).
"""

from __future__ import annotations

import os
import threading

from flask import Flask, jsonify, request

import pushwire
from pushwire import payload

app = Flask(__name__)
TOPIC = os.environ.get("APNS_TOPIC", "com.example.app")
_client: pushwire.SyncAPNsClient | None = None
_lock = threading.Lock()


def start_client() -> pushwire.SyncAPNsClient:
    """This process's client, created once (thread-safe)."""
    global _client
    with _lock:
        if _client is None:
            _client = pushwire.SyncAPNsClient(
                pushwire.TokenCredentials.from_env(),
                base_url=os.environ.get("PUSHWIRE_BASE_URL"),  # unset: Apple's servers
                ca_file=os.environ.get("PUSHWIRE_CA_FILE"),
            )
        return _client


def stop_client() -> None:
    global _client
    with _lock:
        if _client is not None:
            _client.close()
            _client = None


@app.post("/push/<token>")
def push(token: str):  # type: ignore[no-untyped-def]
    message = payload.alert(TOPIC, title=request.json["title"], body=request.json["body"])
    result = start_client().send(pushwire.Notification(token, message))
    return jsonify(outcome=result.outcome, action=result.action, pid=os.getpid())
