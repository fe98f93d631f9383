"""FastAPI: one APNsClient for the whole app, opened and closed by the lifespan.

    PUSHWIRE_APNS_KEY_FILE=AuthKey_ABC123DEFG.p8 PUSHWIRE_APNS_KEY_ID=ABC123DEFG \\
    PUSHWIRE_APNS_TEAM_ID=DEF123GHIJ APNS_TOPIC=com.example.app uvicorn fastapi_app:app

PUSHWIRE_BASE_URL and PUSHWIRE_CA_FILE point it at another server (the tests: the mock).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from pydantic import BaseModel

import pushwire
from pushwire import payload


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Created inside the server's event loop, after any fork; one per process.
    async with pushwire.APNsClient(
        pushwire.TokenCredentials.from_env(),
        base_url=os.environ.get("PUSHWIRE_BASE_URL"),  # unset: Apple's production servers
        ca_file=os.environ.get("PUSHWIRE_CA_FILE"),
    ) as client:
        app.state.apns = client
        yield


app = FastAPI(lifespan=lifespan)
TOPIC = os.environ.get("APNS_TOPIC", "com.example.app")


class Push(BaseModel):
    tokens: list[str]
    title: str
    body: str


@app.post("/push")
async def push(push: Push, request: Request) -> dict[str, object]:
    client: pushwire.APNsClient = request.app.state.apns
    message = payload.alert(TOPIC, title=push.title, body=push.body)
    results = await client.send_to_tokens(message, push.tokens)
    return {
        "delivered": sum(r.delivered for r in results),
        "drop": [t.token for t in results.tokens_to_drop()],
    }
