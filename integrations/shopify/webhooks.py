"""Shopify webhooks: HMAC verification over the raw body, and topics to `WebhookEvent`s.

Order and customer topics carry REST-shaped objects, mapped through `mapping` to the same
gids a sync produces. Contract topics carry no timestamps of the contract itself, so their
subscription record has no `source_updated_at`: it creates a missing row but never overwrites
what a sync stored, and the event asks for a resync. Topics that carry only ids or deltas
(`refunds/create`, `orders/edited`) ask for a resync too. A billing-cycle skip names only
its contract: its event (same id as a sync gives it) needs the contract stored already.
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
    PrivacyRequest,
    RecordBatch,
    SubscriptionEventRecord,
    SubscriptionRecord,
    WebhookEvent,
)
from domain.subscription.models import SubscriptionEventKind
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
_IGNORED_TOPICS = frozenset({"orders/delete", "app/uninstalled"})


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
    contract_id = payload.admin_graphql_api_id or mapping.gid("SubscriptionContract", payload.id)
    try:
        status = mapping.contract_status(payload.status)
        policy = payload.billing_policy
        interval = mapping.interval_days(policy.interval, policy.interval_count) if policy else 30
    except mapping.Unmappable as error:
        raise PlatformRejected(f"{event.topic}: {error}", platform=mapping.PLATFORM) from error
    subscription = SubscriptionRecord(
        platform=mapping.PLATFORM,
        external_id=contract_id,
        customer_external_id=payload.admin_graphql_api_customer_id
        or mapping.gid("Customer", payload.customer_id),
        started_at=at,
        status=status,
        interval_days=interval,
    )
    action = event.topic.rpartition("/")[2]
    found: SubscriptionEventRecord | None
    if action == "create":
        found = mapping.started_event(contract_id, at)
    elif action == "activate":
        found = SubscriptionEventRecord(
            platform=mapping.PLATFORM,
            subscription_external_id=contract_id,
            kind=SubscriptionEventKind.RESUMED,
            occurred_at=at,
            event_id=f"{contract_id}:resumed:{event.event_id}",
        )
    elif action in ("pause", "cancel", "expire", "fail"):
        found = mapping.status_event(contract_id, payload.status, payload.updated_at or at)
    else:
        found = None
    events = (found,) if found is not None else ()
    records = RecordBatch(subscriptions=(subscription,), subscription_events=events)
    return _with(event, records=records, resync=True)


def _billing_cycle(event: WebhookEvent, payload: wire.RestBillingCycle) -> WebhookEvent:
    contract_id = payload.admin_graphql_api_subscription_contract_id or mapping.gid(
        "SubscriptionContract", payload.subscription_contract_id
    )
    if event.topic == "subscription_billing_cycles/unskip" and not payload.skipped:
        # The skip stays in history as it happened; the unskip takes it back from the time
        # Shopify says it happened.
        at = event.occurred_at or payload.billing_attempt_expected_date or payload.cycle_start_at
        unskip = mapping.unskip_event(contract_id, payload.cycle_index, at, event.event_id)
        return _with(event, records=RecordBatch(subscription_events=(unskip,)))
    if not payload.skipped:
        return event
    at = payload.billing_attempt_expected_date or payload.cycle_start_at
    skip = mapping.skip_event(contract_id, payload.cycle_index, at)
    return _with(event, records=RecordBatch(subscription_events=(skip,)))


def _privacy(
    event: WebhookEvent, action: PrivacyAction, payload: wire.PrivacyPayload
) -> WebhookEvent:
    customer = payload.customer
    orders = payload.orders_requested or payload.orders_to_redact
    request = PrivacyRequest(
        action=action,
        customer_external_ids=(mapping.gid("Customer", customer.id),) if customer else (),
        order_external_ids=tuple(mapping.gid("Order", order) for order in orders),
        email=customer.email if customer else None,
        phone=customer.phone if customer else None,
        request_id=str(payload.data_request.id) if payload.data_request else None,
    )
    return WebhookEvent(
        event_id=event.event_id,
        topic=event.topic,
        privacy=request,
        occurred_at=event.occurred_at,
    )
