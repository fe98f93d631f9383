"""``/v1/webpush``: a browser registers its Web Push subscription with an app key.

The page posts what ``PushSubscription.toJSON()`` gives; the subscription becomes an endpoint
of the ``webpush`` application (:meth:`pushwire.store.Store.register_subscription`), written
with the registrations that arrive with it in one transaction (the devices' group commit).
A malformed one is a 422 problem document naming its field as a path of the request
(``subscription.endpoint``, ``subscription.keys.p256dh``, ``subscription.keys.auth``).
The page reads the VAPID public key it subscribes with from ``GET .../vapid-public-key``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, delete, get, post

from .._webpush import WebPushClient
from ..store import Registration
from ..store.errors import InvalidSubscriptionError
from ..store.model import Application, Provider
from .auth import APP
from .errors import ApiProblem
from .schemas import Attributes, DeviceOut, Strict
from .services import Services, refuse_nul, services_of

Req = Request[Any, Any, Any]

#: Where each field of a subscription is in the request body.
_FIELD_PATHS = {
    "endpoint": "subscription.endpoint",
    "keys": "subscription.keys",
    "p256dh": "subscription.keys.p256dh",
    "auth": "subscription.keys.auth",
    "subscription": "subscription",
}


class SubscriptionKeys(Strict):
    p256dh: str
    auth: str


class BrowserSubscription(msgspec.Struct, kw_only=True):
    """``PushSubscription.toJSON()``: browsers may add members (``expirationTime``...)."""

    endpoint: str
    keys: SubscriptionKeys
    expirationTime: int | float | None = None  # the browser's name for it


class RegisterSubscription(Strict):
    """Register a browser's subscription, or refresh it (idempotent; a disabled one is
    enabled again, new keys replace the old). Absent fields leave an existing endpoint's
    values unchanged."""

    application: str
    subscription: BrowserSubscription
    user_id: str | None = None
    data: dict[str, Any] | None = None
    attributes: Attributes | None = None


class VapidPublicKey(msgspec.Struct):
    application: str
    #: The ``applicationServerKey`` for ``pushManager.subscribe()`` (base64url).
    public_key: str


async def _webpush_application(services: Services, name: str) -> Application:
    app: Application = await services.db(services.store.application, name)
    if app.provider is not Provider.WEBPUSH:
        raise ApiProblem(
            422,
            "Invalid value",
            f"application {name!r} is {app.provider.value}: browser subscriptions go to a "
            "webpush application",
            field="application",
        )
    return app


@post("/webpush/subscriptions", status_code=200, opt={"action": APP}, tags=["webpush"])
async def register_subscription(request: Req, data: RegisterSubscription) -> DeviceOut:
    """Register a browser's push subscription (an app key for its own application only)."""
    services = services_of(request)
    principal = await services.principal(request)
    principal.require_application(data.application)
    refuse_nul(data)
    await _webpush_application(services, data.application)
    sub = data.subscription
    try:
        endpoint = await services.registrations.register(
            Registration(
                data.application,
                sub.endpoint,
                user_id=data.user_id,
                data=data.data,
                attributes=data.attributes,
                p256dh=sub.keys.p256dh,
                auth=sub.keys.auth,
            )
        )
    except InvalidSubscriptionError as e:
        raise ApiProblem(
            422, "Invalid value", str(e), field=_FIELD_PATHS.get(e.field or "", e.field)
        ) from None
    return DeviceOut.of(endpoint)


@delete("/webpush/subscriptions", status_code=204, opt={"action": APP}, tags=["webpush"])
async def unregister_subscription(request: Req, application: str, endpoint: str) -> None:
    """Unregister a subscription (the user turned notifications off): ``?application=`` and
    ``?endpoint=`` (URL-encoded). A ``deleted`` event keeps its trace."""
    services = services_of(request)
    principal = await services.principal(request)
    principal.require_application(application)
    await _webpush_application(services, application)
    await services.db(services.store.get, application, endpoint)  # 404 when unknown
    await services.db(services.store.unregister_subscription, application, endpoint, cause="api")


@get(
    "/webpush/{application:str}/vapid-public-key",
    opt={"action": APP},
    tags=["webpush"],
)
async def vapid_public_key(request: Req, application: str) -> VapidPublicKey:
    """The VAPID public key browsers of ``application`` subscribe with (never the private
    one); from the application's ``credentials_ref``."""
    services = services_of(request)
    principal = await services.principal(request)
    principal.require_application(application)
    app = await _webpush_application(services, application)
    client = await services.pool.get(app)
    assert isinstance(client, WebPushClient)  # a webpush application's client_for()
    return VapidPublicKey(application, client.vapid_public_key)


ROUTES = [register_subscription, unregister_subscription, vapid_public_key]
