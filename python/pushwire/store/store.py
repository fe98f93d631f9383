"""The :class:`Store`: one object for applications, endpoints, results, events, sends and
statistics, on SQLite or PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from .._classify import BadTokenBurstDetector, ResultLike
from .._errors import PushwireError
from . import applications as apps_module
from . import schema
from .applications import all_applications, application_named
from .apply import ApplyReport, ResultApplier
from .backend import DATABASE_URL_VARIABLE, Connection, Database
from .clock import Clock, system_clock, to_ms
from .edits import KEEP, Keep, delete_endpoint, disable_endpoint, update_endpoint
from .endpoints import (
    RegisterCounts,
    endpoint_from_state,
    endpoints_of_user,
    find_endpoint,
    register_all,
)
from .errors import StoreInputError, UnknownApplicationError, UnknownEndpointError
from .events import EventLog, Subscriber
from .factory import open_database
from .message import PushMessage
from .model import (
    Application,
    AttributeValue,
    Endpoint,
    EndpointEvent,
    EventKind,
    Provider,
    Registration,
)
from .rules import CheckedRegistration, EndpointState
from .segments import (
    DEFAULT_PAGE_SIZE,
    SegmentFilter,
    endpoint_pages,
    has_enabled_endpoints,
    selected_applications,
    token_pages,
)
from .sending import DEFAULT_APPLY_BATCH, Clients, Sender, Source
from .stats import DailyKPI, SendReport, SendRun, daily_kpis, get_run, list_runs
from .validation import (
    check_attributes,
    check_data,
    check_subscription_keys,
    check_user_id,
    normalize_token,
    subscription_fields,
)

if TYPE_CHECKING:
    from ..campaigns import Campaigns
    from ..webpush import WebPushSubscription


class Store:
    """Device endpoints of your applications, kept right by the results of your sends.

    ::

        store = Store.open("sqlite:///endpoints.db")          # or postgresql://...
        store.put_application("ios", provider="apns", topic="com.example.app",
                              credentials_ref="p8:AuthKey_ABC123DEFG.p8?key_id=ABC123DEFG&team_id=DEF123GHIJ")
        store.register("ios", token, user_id="u42", attributes={"plan": "pro"})
        async with APNsClient(creds) as client:
            report = await store.send_to_segment(
                SegmentFilter(attributes={"plan": "pro"}),
                PushMessage(title="Hi", body="there"),
                clients={"ios": client},
            )

    Every method that writes runs one transaction: it happens whole or not at all. Methods
    are synchronous (they block on the database) except the sends, which are coroutines.
    """

    def __init__(
        self,
        database: Database,
        *,
        migrate: bool = True,
        clock: Clock | None = None,
        apply_batch: int = DEFAULT_APPLY_BATCH,
    ) -> None:
        self.database = database
        self._clock: Clock = clock or system_clock
        self._events = EventLog(database)
        try:
            self._sender = Sender(database, self._events, self._clock, apply_batch=apply_batch)
            if migrate:
                schema.migrate(database, self._clock())
            else:
                schema.check_schema(database)
        except BaseException:
            database.close()
            raise

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        migrate: bool = True,
        clock: Clock | None = None,
        apply_batch: int = DEFAULT_APPLY_BATCH,
        **database_options: Any,
    ) -> Store:
        """Open the store at ``url`` (default: ``$PUSHWIRE_DB``): ``sqlite:///relative.db``,
        ``sqlite:////abs/path.db`` (SQLAlchemy's spelling) or a plain path, or
        ``postgresql://user:password@host/db``. With ``migrate`` (default) the
        schema is created or upgraded on first use; otherwise an outdated schema is refused."""
        url = url if url is not None else os.environ.get(DATABASE_URL_VARIABLE)
        return cls(
            open_database(url or "", **database_options),
            migrate=migrate,
            clock=clock,
            apply_batch=apply_batch,
        )

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.database.close()

    def __repr__(self) -> str:
        return f"Store({self.database.display_url!r})"

    @property
    def campaigns(self) -> Campaigns:
        """Campaigns and engagement on this store (:mod:`pushwire.campaigns`)."""
        from ..campaigns import Campaigns

        return Campaigns(self)

    def migrate(self) -> list[int]:
        """Apply missing schema migrations; the versions applied."""
        return schema.migrate(self.database, self._clock())

    # -- applications -------------------------------------------------------------------------

    def put_application(
        self,
        name: str,
        *,
        provider: Provider | str,
        environment: str | None = None,
        topic: str | None = None,
        project_id: str | None = None,
        credentials_ref: str | None = None,
    ) -> Application:
        """Create an application or update its settings. APNs: ``topic`` (bundle id) and
        ``environment`` (``production`` by default); FCM: ``project_id`` (optional: the
        service account's). ``credentials_ref`` says where the credentials are
        (:mod:`pushwire.store.credentials`)."""
        return apps_module.put_application(
            self.database,
            name,
            provider=provider,
            environment=environment,
            topic=topic,
            project_id=project_id,
            credentials_ref=credentials_ref,
            now=self._clock(),
        )

    def application(self, name: str) -> Application:
        return self.database.read(lambda c: application_named(c, name))

    def applications(self) -> list[Application]:
        return self.database.read(all_applications)

    def delete_application(self, name: str) -> None:
        """Delete an application without endpoints."""
        apps_module.delete_application(self.database, name)

    # -- endpoints ----------------------------------------------------------------------------

    def register(
        self,
        application: str,
        token: str,
        *,
        user_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        registered_at: datetime | None = None,
        cause: str = "register",
        p256dh: str | None = None,
        auth: str | None = None,
    ) -> Endpoint:
        """Create the endpoint, or update it and enable it again if it was disabled (the app
        registered the token again). Idempotent. ``None`` leaves a field unchanged; a
        different ``user_id`` moves the endpoint to that user (an ``updated`` event records
        it). ``registered_at`` (default now) older than the endpoint's last registration
        changes nothing. Web Push applications: ``token`` is the subscription's endpoint URL
        and ``p256dh`` and ``auth`` its keys (see :meth:`register_subscription`)."""
        app = self.application(application)
        checked = self._check_registration(
            app, token, user_id, data, attributes, registered_at, None, p256dh, auth
        )
        return self._register_checked(app, checked, cause)

    def _register_checked(
        self, app: Application, checked: CheckedRegistration, cause: str
    ) -> Endpoint:

        def work(c: Connection) -> tuple[Endpoint, list[EndpointEvent]]:
            _, finals, published = register_all(
                c, self.database, self._events, {app.id: app}, [checked], self._clock(), cause
            )
            state = finals[(app.id, checked.token)]
            return endpoint_from_state(app.name, app.provider, state), published

        endpoint, published = self.database.write(work)
        self._events.publish(published)
        return endpoint

    def register_subscription(
        self,
        application: str,
        subscription: WebPushSubscription | Mapping[str, Any] | str,
        *,
        user_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        registered_at: datetime | None = None,
        cause: str = "register",
    ) -> Endpoint:
        """Register a browser's Web Push subscription with a ``webpush`` application: a
        :class:`~pushwire.webpush.WebPushSubscription`, or ``PushSubscription.toJSON()`` (a
        dict or its JSON text: ``{"endpoint": ..., "keys": {"p256dh": ..., "auth": ...}}``).
        It is an endpoint whose token is the endpoint URL: as :meth:`register` (idempotent;
        registering again enables it again and takes new keys). A malformed one raises
        :class:`InvalidSubscriptionError` naming ``endpoint``, ``p256dh`` or ``auth``."""
        endpoint, p256dh, auth = subscription_fields(subscription)
        app = self.application(application)
        if app.provider is not Provider.WEBPUSH:
            raise StoreInputError(
                f"application {application!r} is {app.provider.value}; subscriptions are "
                "registered with a webpush application",
                field="application",
            )
        checked = self._check_registration(
            app, endpoint, user_id, data, attributes, registered_at, None, p256dh, auth
        )
        return self._register_checked(app, checked, cause)

    def unregister_subscription(
        self, application: str, endpoint: str, *, cause: str = "unsubscribe"
    ) -> None:
        """Delete a subscription (the browser unsubscribed): :meth:`delete` by endpoint URL."""
        self.delete(application, endpoint, cause=cause)

    def register_each(
        self, registrations: Sequence[Registration], *, cause: str = "register"
    ) -> list[Endpoint | PushwireError]:
        """:meth:`register` for each row, in ONE transaction (a group commit for a server
        answering many devices at once): per row its endpoint, or the error :meth:`register`
        would have raised for it (a bad row does not stop the others). Rows are applied in
        order, so a token given twice ends as the last row says; each row is answered with
        the state after it. If the transaction fails, every row gets that error."""
        apps = {a.name: a for a in self.applications()}
        out: list[Endpoint | PushwireError] = []
        checked: list[tuple[int, CheckedRegistration]] = []
        for i, row in enumerate(registrations):
            app = apps.get(row.application)
            try:
                if app is None:
                    raise self._unknown_application(row.application, None)
                checked.append(
                    (
                        i,
                        self._check_registration(
                            app, row.token, row.user_id, row.data, row.attributes,
                            row.registered_at, None, row.p256dh, row.auth,
                        ),
                    )
                )  # fmt: skip
                out.append(PushwireError("not registered"))  # replaced below
            except PushwireError as e:
                out.append(e)
        if not checked:
            return out
        by_id = {a.id: a for a in apps.values()}

        # Runs of rows with distinct tokens: the final state of a token in its run is the
        # state after its row (a token given twice starts a new run).
        runs: list[list[CheckedRegistration]] = [[]]
        seen: set[tuple[int, str]] = set()
        for _, reg in checked:
            if (reg.application_id, reg.token) in seen:
                runs.append([])
                seen.clear()
            seen.add((reg.application_id, reg.token))
            runs[-1].append(reg)

        def work(c: Connection) -> tuple[list[EndpointState], list[EndpointEvent]]:
            now = self._clock()
            states: list[EndpointState] = []
            published: list[EndpointEvent] = []
            for run in runs:
                _, finals, events = register_all(
                    c, self.database, self._events, by_id, run, now, cause
                )
                states += [finals[(reg.application_id, reg.token)] for reg in run]
                published += events
            return states, published

        try:
            states, published = self.database.write(work)
        except PushwireError as e:
            for i, _ in checked:
                out[i] = e
            return out
        self._events.publish(published)
        for (i, reg), state in zip(checked, states, strict=True):
            app = by_id[reg.application_id]
            out[i] = endpoint_from_state(app.name, app.provider, state)
        return out

    def register_many(
        self,
        registrations: Iterable[Registration | Mapping[str, Any]],
        *,
        cause: str = "import",
    ) -> RegisterCounts:
        """Register a batch (:class:`Registration` objects or mappings with the same keys)
        in ONE transaction: every row is checked first and a bad one (``index`` = its
        position) writes nothing. Keep batches to some thousands of rows."""
        apps = {a.name: a for a in self.applications()}
        checked = self._checked_rows(registrations, apps)
        if not checked:
            return RegisterCounts()
        by_id = {a.id: a for a in apps.values()}

        def work(c: Connection) -> tuple[RegisterCounts, list[EndpointEvent]]:
            counts, _, published = register_all(
                c, self.database, self._events, by_id, checked, self._clock(), cause
            )
            return counts, published

        counts, published = self.database.write(work)
        self._events.publish(published)
        return counts

    def check_registrations(self, registrations: Iterable[Registration | Mapping[str, Any]]) -> int:
        """Check rows as :meth:`register_many` would, writing nothing; the number of rows.
        Raises on the first bad row (``index`` = its position)."""
        apps = {a.name: a for a in self.applications()}
        count = 0
        for count, row in enumerate(registrations, start=1):
            self._checked_row(row, count - 1, apps)
        return count

    def _checked_rows(
        self,
        registrations: Iterable[Registration | Mapping[str, Any]],
        apps: Mapping[str, Application],
    ) -> list[CheckedRegistration]:
        return [self._checked_row(row, i, apps) for i, row in enumerate(registrations)]

    def _checked_row(
        self,
        row: Registration | Mapping[str, Any],
        index: int,
        apps: Mapping[str, Application],
    ) -> CheckedRegistration:
        if isinstance(row, Mapping):
            try:
                row = Registration(**row)
            except TypeError as e:
                raise StoreInputError(f"row {index}: {e}", index=index) from None
        if not isinstance(row, Registration):
            raise StoreInputError(f"row {index} must be a Registration or a mapping", index=index)
        app = apps.get(row.application)
        if app is None:
            raise self._unknown_application(row.application, index)
        return self._check_registration(
            app,
            row.token,
            row.user_id,
            row.data,
            row.attributes,
            row.registered_at,
            index,
            row.p256dh,
            row.auth,
        )

    @staticmethod
    def _unknown_application(name: object, index: int | None) -> Exception:
        where = f"row {index}: " if index is not None else ""
        return UnknownApplicationError(
            f"{where}no application named {name!r}: add it first (Store.put_application, "
            "`pushwire endpoints add-app`)",
            field="application",
            index=index,
        )

    def _check_registration(
        self,
        app: Application,
        token: object,
        user_id: object,
        data: object,
        attributes: object,
        registered_at: datetime | None,
        index: int | None,
        p256dh: object = None,
        auth: object = None,
    ) -> CheckedRegistration:
        keys: tuple[str, str] | tuple[None, None] = (None, None)
        if app.provider is Provider.WEBPUSH:
            keys = check_subscription_keys(p256dh, auth, index)
        elif p256dh is not None or auth is not None:
            raise StoreInputError(
                f"p256dh and auth are Web Push subscription keys; {app.name!r} is an "
                f"{app.provider.value} application",
                field="p256dh" if p256dh is not None else "auth",
                index=index,
            )
        return CheckedRegistration(
            application_id=app.id,
            application=app.name,
            token=normalize_token(app.provider, token, index),
            user_id=check_user_id(user_id, index),
            data=check_data(data, index),
            attributes=check_attributes(attributes, index),
            registered_at=(
                self._clock() if registered_at is None else to_ms(registered_at, "registered_at")
            ),
            live=registered_at is None,
            p256dh=keys[0],
            auth=keys[1],
        )

    def find(self, application: str, token: str) -> Endpoint | None:
        """The endpoint, or None."""
        app = self.application(application)
        normalized = normalize_token(app.provider, token)
        return self.database.read(lambda c: find_endpoint(c, self.database, app, normalized))

    def get(self, application: str, token: str) -> Endpoint:
        """The endpoint; :class:`UnknownEndpointError` if there is none."""
        endpoint = self.find(application, token)
        if endpoint is None:
            raise UnknownEndpointError(
                f"no endpoint for token {token[:80]!r} in application {application!r}",
                field="token",
            )
        return endpoint

    def endpoints_of_user(self, user_id: str, *, enabled_only: bool = False) -> list[Endpoint]:
        """A user's endpoints across applications and providers."""
        checked = check_user_id(user_id)
        if checked is None:
            raise StoreInputError("user_id is required", field="user_id")
        return self.database.read(
            lambda c: endpoints_of_user(c, self.database, checked, enabled_only=enabled_only)
        )

    def endpoints(
        self,
        segment: SegmentFilter | None = None,
        *,
        enabled: bool | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Endpoint]:
        """Endpoints of a segment (all by default) in id order, read a page at a time;
        ``enabled`` True/False selects enabled/disabled ones only."""
        for page in endpoint_pages(
            self.database, segment or SegmentFilter(), enabled=enabled, page_size=page_size
        ):
            yield from page

    def _edit(self, application: str, token: str, edit: Callable[..., Any], **kwargs: Any) -> Any:
        app = self.application(application)
        normalized = normalize_token(app.provider, token)
        result, published = self.database.write(
            lambda c: edit(
                c, self.database, self._events, app, normalized, now=self._clock(), **kwargs
            )
        )
        self._events.publish(published)
        return result

    def update(
        self,
        application: str,
        token: str,
        *,
        user_id: str | Keep | None = KEEP,
        data: Mapping[str, Any] | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        merge_attributes: bool = True,
        cause: str = "api",
    ) -> Endpoint:
        """Change an endpoint's user (``None`` detaches it), data (replaced) or attributes
        (merged, or replaced with ``merge_attributes=False``)."""
        endpoint: Endpoint = self._edit(
            application,
            token,
            update_endpoint,
            user_id=user_id if isinstance(user_id, Keep) else check_user_id(user_id),
            data=check_data(data),
            attributes=check_attributes(attributes),
            merge_attributes=merge_attributes,
            cause=cause,
        )
        return endpoint

    def set_attributes(
        self,
        application: str,
        token: str,
        attributes: Mapping[str, AttributeValue],
        *,
        merge: bool = True,
    ) -> Endpoint:
        return self.update(application, token, attributes=attributes, merge_attributes=merge)

    def attributes(self, application: str, token: str) -> Mapping[str, AttributeValue]:
        return self.get(application, token).attributes

    def disable(
        self, application: str, token: str, *, reason: str = "manual", cause: str = "api"
    ) -> Endpoint:
        """Disable an endpoint until the app registers its token again."""
        if not isinstance(reason, str) or not reason:
            raise StoreInputError("reason must be a non-empty string", field="reason")
        endpoint: Endpoint = self._edit(
            application, token, disable_endpoint, reason=reason, cause=cause
        )
        return endpoint

    def delete(self, application: str, token: str, *, cause: str = "api") -> None:
        """Delete an endpoint (a ``deleted`` event keeps its trace)."""
        app = self.application(application)
        normalized = normalize_token(app.provider, token)
        published = self.database.write(
            lambda c: delete_endpoint(
                c, self.database, self._events, app, normalized, now=self._clock(), cause=cause
            )
        )
        self._events.publish(published)

    # -- results ------------------------------------------------------------------------------

    def apply_results(
        self,
        application: str,
        results: Sequence[ResultLike],
        *,
        received_at: datetime | None = None,
        detector: BadTokenBurstDetector | None = None,
        cause: str = "send_result",
    ) -> ApplyReport:
        """Apply the results of a send you made yourself to ``application``'s endpoints.

        ``received_at`` (default now) is when the results came back: minus each result's
        latency it is when the notification was sent, the moment a verdict without a 410
        timestamp is compared with re-registrations. Pass ``detector`` to carry burst
        detection across calls.
        """
        app = self.application(application)
        now = self._clock()
        at = now if received_at is None else to_ms(received_at, "received_at")
        applier = ResultApplier(self.database, self._events, app, detector=detector, cause=cause)
        report, published = applier.apply(results, received_at=at, now=now)
        self._events.publish(published)
        return report

    # -- events -------------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` after every committed change made through this store
        object; returns the function that unsubscribes. Other processes: :meth:`events`."""
        return self._events.subscribe(callback)

    def events(
        self,
        *,
        application: str | None = None,
        token: str | None = None,
        user_id: str | None = None,
        kinds: Iterable[EventKind | str] | None = None,
        since: datetime | None = None,
        after_id: int | None = None,
        limit: int = 1000,
    ) -> list[EndpointEvent]:
        """Recorded events, oldest first; ``after_id`` for polling."""
        if token is not None and application is not None:
            token = normalize_token(self.application(application).provider, token)
        return self._events.query(
            application=application,
            token=token,
            user_id=user_id,
            kinds=kinds,
            since=since,
            after_id=after_id,
            limit=limit,
        )

    # -- sending ------------------------------------------------------------------------------

    async def send_to_user(
        self,
        user_id: str,
        message: PushMessage,
        *,
        clients: Clients,
        actor: str | None = None,
    ) -> SendReport:
        """Send to every enabled endpoint of a user, across applications and providers."""
        endpoints = self.endpoints_of_user(user_id, enabled_only=True)
        apps = {a.name: a for a in self.applications()}
        tokens: dict[str, list[str]] = {}
        for endpoint in endpoints:
            tokens.setdefault(endpoint.application, []).append(endpoint.token)
        sources: list[Source] = [(apps[name], [page]) for name, page in tokens.items()]
        return await self._sender.run(
            sources=sources,
            message=message,
            clients=clients,
            actor=actor,
            target_kind="user",
            target={"user_id": user_id},
        )

    async def send_to_tokens(
        self,
        application: str,
        tokens: Sequence[str],
        message: PushMessage,
        *,
        clients: Clients,
        actor: str | None = None,
    ) -> SendReport:
        """Send to the given tokens of one application (each checked first), applying the
        results to its endpoints and recording the run like the other sends."""
        app = self.application(application)
        if isinstance(tokens, str) or not isinstance(tokens, Sequence):
            raise StoreInputError("tokens must be a list of tokens", field="tokens")
        checked = [normalize_token(app.provider, t, i) for i, t in enumerate(tokens)]
        return await self._sender.run(
            sources=[(app, [checked])],
            message=message,
            clients=clients,
            actor=actor,
            target_kind="tokens",
            target={"application": app.name, "tokens": len(checked)},
        )

    async def send_to_segment(
        self,
        segment: SegmentFilter | str,
        message: PushMessage,
        *,
        clients: Clients,
        actor: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> SendReport:
        """Send to every enabled endpoint the filter selects (text is parsed with
        :meth:`SegmentFilter.parse`), streamed from the database a page at a time. Every
        application with selected endpoints needs a client in ``clients``."""
        if isinstance(segment, str):
            segment = SegmentFilter.parse(segment)
        if not isinstance(segment, SegmentFilter):
            raise StoreInputError("segment must be a SegmentFilter or text", field="segment")
        if page_size < 1:
            raise StoreInputError("page_size must be at least 1", field="page_size")
        db = self.database
        sources: list[Source] = [
            (app, token_pages(db, app, segment, page_size))
            for app in self.segment_applications(segment)
        ]
        return await self._sender.run(
            sources=sources,
            message=message,
            clients=clients,
            actor=actor,
            target_kind="segment",
            target=segment.to_dict(),
        )

    def segment_applications(self, segment: SegmentFilter | str) -> list[Application]:
        """The applications with enabled endpoints in the segment: those a send to it needs
        clients for."""
        if isinstance(segment, str):
            segment = SegmentFilter.parse(segment)
        db = self.database

        def targeted(c: Connection) -> list[Application]:
            return [
                app
                for app in selected_applications(c, segment)
                if has_enabled_endpoints(c, db, app, segment)
            ]

        return db.read(targeted)

    # -- statistics ---------------------------------------------------------------------------

    def runs(self, *, limit: int = 50) -> list[SendRun]:
        """The latest send runs, newest first."""
        return list_runs(self.database, limit=limit)

    def run(self, run_id: int) -> SendRun:
        return get_run(self.database, run_id)

    def kpis(
        self,
        *,
        application: str | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> list[DailyKPI]:
        """Delivery rate and invalid-token rate per application and UTC day."""
        return daily_kpis(self.database, application=application, since=since, until=until)


def open_store(url: str | None = None, **options: Any) -> Store:
    """:meth:`Store.open`."""
    return Store.open(url, **options)
