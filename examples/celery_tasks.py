"""Celery: a task that sends with a SyncAPNsClient, one per worker process.

    CELERY_BROKER_URL=redis://localhost:6379/0 PUSHWIRE_APNS_KEY_FILE=... \\
    celery -A celery_tasks worker --concurrency 4

The prefork pool forks its processes after importing this module, so the client is made in
worker_process_init (in the child), never at import. PUSHWIRE_BASE_URL / PUSHWIRE_CA_FILE
point it at another server (the tests: the mock).
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

import pushwire
from pushwire import payload

broker = os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0")
app = Celery("pushes", broker=broker, backend=broker)
app.conf.task_default_queue = os.environ.get("CELERY_QUEUE", "pushes")
TOPIC = os.environ.get("APNS_TOPIC", "com.example.app")
client: pushwire.SyncAPNsClient | None = None


@worker_process_init.connect
def open_client(**_: object) -> None:
    global client
    client = pushwire.SyncAPNsClient(
        pushwire.TokenCredentials.from_env(),
        base_url=os.environ.get("PUSHWIRE_BASE_URL"),  # unset: Apple's servers
        ca_file=os.environ.get("PUSHWIRE_CA_FILE"),
    )


@worker_process_shutdown.connect
def close_client(**_: object) -> None:
    if client is not None:
        client.close()


@app.task
def send_alert(tokens: list[str], title: str, body: str) -> dict[str, object]:
    assert client is not None, "started outside a worker process"
    results = client.send_to_tokens(payload.alert(TOPIC, title=title, body=body), tokens)
    # Dead tokens: delete them from your database here.
    return {
        "delivered": sum(r.delivered for r in results),
        "drop": [t.token for t in results.tokens_to_drop()],
    }
