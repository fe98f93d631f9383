"""Web Push subscriptions in the store: an endpoint of a ``webpush`` application whose token
is the subscription's endpoint URL, with its ``p256dh`` and ``auth`` keys beside it.

Every fan-out (segment, user and token sends, campaigns, job workers) reads tokens a page at
a time; :func:`sendable` turns a page of a Web Push application's tokens into the
subscriptions the :class:`pushwire.WebPushClient` sends to (one indexed query per page), and
leaves other providers' tokens as they are. So segments, users, the change log and the 410
rule treat subscriptions exactly as device tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Union

from ..webpush import WebPushSubscription
from .backend import Connection, Database
from .endpoints import batched
from .model import Application, Provider

#: What one notification of a store send goes to: a device token, or a subscription.
Sendable = Union[str, WebPushSubscription]


def _keys(
    connection: Connection, database: Database, application_id: int, tokens: Sequence[str]
) -> dict[str, tuple[str, str]]:
    condition, params = database.in_condition("token", tokens)
    rows = connection.query(
        f"SELECT token, web_p256dh, web_auth FROM endpoints WHERE application_id = ? "
        f"AND {condition}",
        (application_id, *params),
    )
    return {row[0]: (row[1], row[2]) for row in rows if row[1] is not None}


def sendable(database: Database, application: Application, tokens: list[str]) -> list[Sendable]:
    """``tokens`` as the application's client takes them: subscriptions for Web Push.

    A subscription deleted since its page was read keeps its place with empty keys: the
    client refuses it locally (a ``failed`` result), so every token still gets one outcome.
    """
    if application.provider is not Provider.WEBPUSH or not tokens:
        return list(tokens)

    def read(c: Connection) -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        for chunk in batched(tokens):
            found.update(_keys(c, database, application.id, chunk))
        return found

    keys = database.read(read)
    return [WebPushSubscription(token, *keys.get(token, ("", ""))) for token in tokens]


def sendable_pages(
    database: Database, application: Application, pages: Iterable[list[str]]
) -> Iterator[list[Sendable]]:
    """:func:`sendable` for each page, lazily (pages are read as the client pulls them)."""
    for page in pages:
        yield sendable(database, application, page)
