"""Shopify webhooks: HMAC verification over the raw body, and topics to `WebhookEvent`s.

Order, customer, contract, billing-cycle and privacy topics carry REST-shaped objects,
translated by `mapping` to the same gids a sync produces; this module only verifies, reads
the envelope and routes topics. A contract webhook's record cannot overwrite a sync's, so its
event asks for a resync. Topics that carry only ids or deltas (`refunds/create`,
`orders/edited`) ask for a resync too. A billing-cycle skip names only its contract: its event
(same id as a sync gives it) needs the contract stored already. `app/uninstalled`
disconnects the connection; the privacy topics still verify and act after that.
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from domain.platforms import (
    PlatformRejected,
    PrivacyAction,
    RecordBatch,
    WebhookEvent,
)
from integrations.shopify import mapping, wire

_ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/cancelled",
        "orders/paid",
        "orders/edited",
        "orders/fulfilled",
        "orders/partially_fulfilled",
    }
)
_CONTRACT_TOPICS = frozenset(
    {
        "subscription_contracts/create",
        "subscription_contracts/update",
        "subscription_contracts/activate",
        "subscription_contracts/pause",
        "subscription_contracts/cancel",
        "subscription_contracts/expire",
        "subscription_contracts/fail",
    }
)
_PRIVACY_TOPICS = {
    "customers/data_request": PrivacyAction.DATA_REQUEST,
    "customers/redact": PrivacyAction.REDACT_CUSTOMER,
    "shop/redact": PrivacyAction.REDACT_SHOP,
}
M = TypeVar("M", bound=BaseModel)

# Known topics that change nothing Kizuki keeps.
_IGNORED_TOPICS = frozenset({"orders/delete"})
# The shop removed the app: its token no longer works, but privacy topics still come.
UNINSTALLED_TOPIC = "app/uninstalled"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name (callers may pass a plain dict)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def sign(secret: str, body: bytes) -> str:
    """Shopify's signature of a body: base64 of HMAC-SHA256 keyed by the app's client secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether `X-Shopify-Hmac-Sha256` signs the raw body with `secret`, in constant time."""
    given = header(headers, "X-Shopify-Hmac-Sha256")
    if not secret or not given:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), given.strip().encode())


def _model(model: type[M], payload: wire.JSONObject, topic: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise PlatformRejected(
            f"{topic}: {mapping.validation_problem(error)}", platform=mapping.PLATFORM
        ) from error


def parse(headers: Mapping[str, str], body: bytes, *, received_at: datetime) -> WebhookEvent:
    """The event a verified webhook carries; `PlatformRejected` when it cannot be used."""
    topic = header(headers, "X-Shopify-Topic")
    event_id = header(headers, "X-Shopify-Event-Id") or header(headers, "X-Shopify-Webhook-Id")
    if not topic or not event_id:
        raise PlatformRejected(
            "webhook lacks X-Shopify-Topic or an event id", platform=mapping.PLATFORM
        )
    triggered = header(headers, "X-Shopify-Triggered-At")
    try:
        occurred_at = (
            datetime.fromisoformat(triggered.replace("Z", "+00:00")) if triggered else None
        )
        payload = orjson.loads(body)
    except (ValueError, orjson.JSONDecodeError) as error:
        raise PlatformRejected(
            f"{topic}: unreadable webhook: {error}", platform=mapping.PLATFORM
        ) from error
    if occurred_at is not None and occurred_at.tzinfo is None:
        occurred_at = None
    if not isinstance(payload, dict):
        raise PlatformRejected(f"{topic}: body is not a JSON object", platform=mapping.PLATFORM)
    event = WebhookEvent(event_id=event_id, topic=topic, occurred_at=occurred_at)
    at = occurred_at or received_at
    if topic in _PRIVACY_TOPICS:
        return _privacy(event, _PRIVACY_TOPICS[topic], _model(wire.PrivacyPayload, payload, topic))
    if topic in _ORDER_TOPICS:
        if "order_edit" in payload:
            return _with(event, resync=True)
        return _order(event, _model(wire.RestOrder, payload, topic))
    if topic == "refunds/create":
        return _with(event, resync=True)
    if topic in ("customers/create", "customers/update"):
        customer = mapping.customer_from_rest(_model(wire.RestCustomer, payload, topic))
        return _with(event, records=RecordBatch(customers=(customer,)))
    if topic in _CONTRACT_TOPICS:
        return _contract(event, _model(wire.RestContract, payload, topic), at)
    if topic in ("subscription_billing_cycles/skip", "subscription_billing_cycles/unskip"):
        return _billing_cycle(event, _model(wire.RestBillingCycle, payload, topic))
    if topic == UNINSTALLED_TOPIC:
        return WebhookEvent(event_id, topic, occurred_at=occurred_at, uninstalled=True)
    if topic in _IGNORED_TOPICS:
        return event
    raise PlatformRejected(f"unsupported webhook topic {topic!r}", platform=mapping.PLATFORM)


def _with(
    event: WebhookEvent, *, records: RecordBatch | None = None, resync: bool = False
) -> WebhookEvent:
    return WebhookEvent(
        event_id=event.event_id,
        topic=event.topic,
        records=records or RecordBatch(),
        resync=resync,
        occurred_at=event.occurred_at,
    )


def _order(event: WebhookEvent, payload: wire.RestOrder) -> WebhookEvent:
    try:
        mapped = mapping.order_from_rest(payload)
    except mapping.Unmappable as error:
        raise PlatformRejected(f"{event.topic}: {error}", platform=mapping.PLATFORM) from error
    if mapped is None:
        return event
    customers = (mapped.customer,) if mapped.customer else ()
    return _with(event, records=RecordBatch(customers=customers, orders=(mapped.order,)))


def _contract(event: WebhookEvent, payload: wire.RestContract, at: datetime) -> WebhookEvent:
    try:
        records = mapping.contract_from_rest(event.topic, payload, at, event.event_id)
    except mapping.Unmappable as error:
        raise PlatformRejected(f"{event.topic}: {error}", platform=mapping.PLATFORM) from error
    return _with(event, records=records, resync=True)


def _billing_cycle(event: WebhookEvent, payload: wire.RestBillingCycle) -> WebhookEvent:
    found = mapping.billing_cycle_event(event.topic, payload, event.occurred_at, event.event_id)
    if found is None:
        return event
    return _with(event, records=RecordBatch(subscription_events=(found,)))


def _privacy(
    event: WebhookEvent, action: PrivacyAction, payload: wire.PrivacyPayload
) -> WebhookEvent:
    return WebhookEvent(
        event_id=event.event_id,
        topic=event.topic,
        privacy=mapping.privacy_request(action, payload),
        occurred_at=event.occurred_at,
    )
