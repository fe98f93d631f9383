"""Sending through the store: select endpoints, render the message per application, stream it
through that application's client, apply the results back in batches, record the run.

Memory stays bounded whatever the segment size: endpoints are read a page at a time (keyset
pagination) as the client's in-flight window frees up (``client.stream`` pulls its input
lazily), and results are held only until the next batch is applied. Applications are sent
to concurrently, each through its own client.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Union

from .._apns import APNsClient
from .._client import AnyPushClient
from .._fcm import FCMClient
from .._message import Message
from .._results import Result
from .._webpush import WebPushClient
from ..fcm import FCMMessage
from ..webpush import WebPushMessage
from .apply import ResultApplier
from .backend import Database
from .clock import Clock, to_datetime
from .errors import MissingClientError, StoreError, StoreInputError
from .events import EventLog
from .message import PushMessage
from .model import Application, Provider
from .stats import ApplicationTally, SendReport, finish_run, start_run
from .subscriptions import Sendable, sendable_pages

log = logging.getLogger("pushwire.store")

#: Results applied to the store per transaction.
DEFAULT_APPLY_BATCH = 2000

Clients = Mapping[str, AnyPushClient]
#: A message rendered for one application's provider.
Rendered = Union[Message, FCMMessage, WebPushMessage]
#: The client class each provider's applications need.
CLIENT_CLASSES: dict[Provider, type[AnyPushClient]] = {
    Provider.APNS: APNsClient,
    Provider.FCM: FCMClient,
    Provider.WEBPUSH: WebPushClient,
}
#: One application and the pages of tokens to send it.
Source = tuple[Application, Iterable[list[str]]]


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (containers)
        return "unknown"


def check_clients(applications: Iterable[Application], clients: Clients) -> None:
    """Every application needs a client of its provider, before anything is sent."""
    if not isinstance(clients, Mapping):
        raise StoreInputError(
            "clients must map application names to clients: clients={'ios': apns_client}",
            field="clients",
        )
    missing = []
    for app in applications:
        client = clients.get(app.name)
        if client is None:
            missing.append(app.name)
            continue
        expected = CLIENT_CLASSES[app.provider]
        if not isinstance(client, expected):
            raise StoreInputError(
                f"application {app.name!r} is {app.provider.value}: its client must be a "
                f"{expected.__name__}, not {type(client).__name__}",
                field="clients",
            )
    if missing:
        raise MissingClientError(
            f"no client for application(s) {', '.join(missing)}: pass clients={{name: client}} "
            "for every application the send selects",
            field="clients",
        )


class Sender:
    def __init__(
        self,
        database: Database,
        events: EventLog,
        clock: Clock,
        *,
        apply_batch: int = DEFAULT_APPLY_BATCH,
    ) -> None:
        if apply_batch < 1:
            raise StoreInputError("apply_batch must be at least 1", field="apply_batch")
        self._db = database
        self._events = events
        self._clock = clock
        self._apply_batch = apply_batch

    async def run(
        self,
        *,
        sources: list[Source],
        message: PushMessage,
        clients: Clients,
        actor: str | None,
        target_kind: str,
        target: Any,
    ) -> SendReport:
        """Send ``message`` to every source; the report of the recorded run."""
        if not isinstance(message, PushMessage):
            raise StoreInputError("message must be a pushwire.store.PushMessage", field="message")
        check_clients((app for app, _ in sources), clients)
        # Rendering checks the payload for each provider before anything is sent.
        rendered = {app.name: message.render(app) for app, _ in sources}
        started = self._clock()
        run_id = start_run(
            self._db,
            now=started,
            actor=actor or default_actor(),
            target_kind=target_kind,
            target=target,
            message=message.to_dict(),
        )
        report = SendReport(run_id=run_id, started_at=to_datetime(started))
        for app, _ in sources:
            report.applications[app.name] = ApplicationTally(app.name)
        tasks = [
            asyncio.ensure_future(
                self._send_application(
                    app, clients[app.name], rendered[app.name], pages, run_id, report
                )
            )
            for app, pages in sources
        ]
        try:
            await asyncio.gather(*tasks)
        except BaseException as e:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(StoreError):
                finish_run(self._db, report, now=self._clock(), status="failed", error=repr(e))
            raise
        finish_run(self._db, report, now=self._clock(), status="finished")
        return report

    async def _send_application(
        self,
        app: Application,
        client: AnyPushClient,
        rendered: Rendered,
        pages: Iterable[list[str]],
        run_id: int,
        report: SendReport,
    ) -> None:
        applier = ResultApplier(self._db, self._events, app, run_id=run_id)
        tally = report.applications[app.name]
        batch: list[Result] = []
        received_at = 0

        def flush() -> None:
            nonlocal batch
            if not batch:
                return
            applied, published = applier.apply(batch, received_at=received_at, now=self._clock())
            batch = []
            tally.add(applied)
            self._events.publish(published)

        def notifications() -> Iterator[tuple[Sendable, Rendered, None]]:
            for page in sendable_pages(self._db, app, pages):
                for token in page:
                    yield (token, rendered, None)  # what Notification is: a plain tuple

        try:
            async for result in client.stream(notifications()):
                if not batch:
                    received_at = self._clock()
                batch.append(result)
                if len(batch) >= self._apply_batch:
                    flush()
        except BaseException:
            # Keep what came back before the failure (unless the store is what failed).
            with contextlib.suppress(StoreError):
                flush()
            raise
        flush()
