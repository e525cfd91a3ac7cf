import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from domain.order.models import OrderStatus
from domain.platforms import PrivacyAction, PrivacyRequest, RejectedRecord
from domain.subscription.models import SubscriptionEventKind
from integrations.shopify import mapping, wire
from integrations.shopify.mapping import MappedOrder
from tests.integrations.shopify.conftest import PAYLOADS


def _money(amount: str, currency: str = "USD") -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": currency}}


def _node(**changes: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": "gid://shopify/Order/1",
        "createdAt": "2026-11-01T00:00:00Z",
        "processedAt": "2026-10-31T23:00:00Z",
        "updatedAt": "2026-11-02T00:00:00Z",
        "cancelledAt": None,
        "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": "UNFULFILLED",
        "email": None,
        "test": False,
        "currencyCode": "USD",
        "customer": {"id": "gid://shopify/Customer/9", "email": "x@example.com"},
        "totalPriceSet": _money("45.50"),
        "totalRefundedSet": _money("0.00"),
        "lineItems": {
            "nodes": [
                {
                    "id": "gid://shopify/LineItem/1",
                    "sku": "TEA",
                    "name": "Tea",
                    "quantity": 3,
                    "currentQuantity": 2,
                    "originalUnitPriceSet": _money("20.00"),
                    "discountedUnitPriceSet": _money("17.75"),
                    "product": {"id": "gid://shopify/Product/5"},
                },
                {
                    "id": "gid://shopify/LineItem/2",
                    "sku": "",
                    "name": "Removed",
                    "quantity": 1,
                    "currentQuantity": 0,
                    "originalUnitPriceSet": _money("9.00"),
                },
            ]
        },
    }
    node.update(changes)
    return node


def _order(**changes: Any) -> MappedOrder:
    mapped = mapping.order_from_node(_node(**changes))
    assert isinstance(mapped, MappedOrder)
    return mapped


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("1980.0", "JPY", 1980),
        ("1980", "JPY", 1980),
        ("12.34", "USD", 1234),
        ("0.005", "USD", 1),
        ("1.234", "KWD", 1234),
        ("5000", "KRW", 5000),
        ("7.5", "EUR", 750),
    ],
)
def test_amounts_become_minor_units_of_their_currency(
    amount: str, currency: str, minor: int
) -> None:
    assert mapping.minor_units(Decimal(amount), currency) == minor


def test_a_usd_order_keeps_cents_current_quantities_and_the_processed_time() -> None:
    mapped = _order()
    order = mapped.order
    assert (order.total_amount, order.currency, order.status) == (4550, "USD", OrderStatus.OPEN)
    assert order.ordered_at == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    [line] = order.lines
    assert (line.sku, line.quantity, line.unit_price, line.amount) == ("TEA", 2, 1775, 3550)
    assert line.product_external_id == "gid://shopify/Product/5"
    assert mapped.customer is not None
    assert mapped.customer.external_id == "gid://shopify/Customer/9"


@pytest.mark.parametrize(
    ("changes", "status", "refunded"),
    [
        ({"cancelledAt": "2026-11-02T00:00:00Z"}, OrderStatus.CANCELLED, 0),
        (
            {"displayFinancialStatus": "REFUNDED", "totalRefundedSet": _money("45.50")},
            OrderStatus.REFUNDED,
            4550,
        ),
        (
            {"displayFinancialStatus": "PARTIALLY_REFUNDED", "totalRefundedSet": _money("5")},
            OrderStatus.OPEN,
            500,
        ),
        ({"displayFinancialStatus": "VOIDED"}, OrderStatus.CANCELLED, 0),
        ({"displayFulfillmentStatus": "FULFILLED"}, OrderStatus.FULFILLED, 0),
        ({"totalRefundedSet": _money("99.00")}, OrderStatus.OPEN, 4550),
    ],
)
def test_statuses_and_refunds(changes: dict[str, Any], status: OrderStatus, refunded: int) -> None:
    order = _order(**changes).order
    assert order.status is status
    assert order.refunded_amount == refunded


def test_guest_orders_are_keyed_by_email_then_phone_else_rejected() -> None:
    by_email = _order(customer=None, email=" Buyer@Example.com ").order
    assert by_email.customer_external_id == (
        "guest:" + hashlib.sha256(b"buyer@example.com").hexdigest()
    )
    by_phone = _order(customer=None, phone="090-1234-5678").order
    assert by_phone.customer_external_id == (
        "guest-phone:" + hashlib.sha256(b"+819012345678").hexdigest()
    )
    nobody = mapping.order_from_node(_node(customer=None))
    assert isinstance(nobody, RejectedRecord)
    assert nobody.external_id == "gid://shopify/Order/1"


def test_a_test_order_maps_to_nothing() -> None:
    assert mapping.order_from_node(_node(test=True)) is None


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"totalPriceSet": {"shopMoney": {"amount": "1,980"}}}, "totalPriceSet.shopMoney.amount"),
        ({"createdAt": "yesterday"}, "createdAt: Invalid RFC3339 encoded datetime"),
        ({"id": ""}, "id: Expected `str` of length >= 1"),
        ({"lineItems": None}, "lineItems: Expected `object`, got `null`"),
        ({"lineItems": {"nodes": [{}]}}, "lineItems.nodes.0: Object missing required field"),
        ({"updatedAt": "2026-11-02T00:00:00"}, "updated_at must be timezone-aware"),
        ({"totalPriceSet": _money("10", "yen")}, "currency must be an ISO 4217 code"),
        ({"totalPriceSet": _money("-1")}, "order amounts must not be negative"),
    ],
)
def test_malformed_orders_are_rejected_with_the_path_of_the_bad_field(
    changes: dict[str, Any], problem: str
) -> None:
    rejected = mapping.order_from_node(_node(**changes))
    assert isinstance(rejected, RejectedRecord)
    assert rejected.kind == "order"
    assert problem in rejected.problem


def test_a_rest_line_discount_gives_the_unit_price_graphql_reports() -> None:
    payload = orjson.loads((PAYLOADS / "orders_create.json").read_bytes())
    payload["line_items"][0]["quantity"] = 2
    payload["line_items"][0]["current_quantity"] = 2
    payload["line_items"][0]["discount_allocations"] = [{"amount": "400.0"}]
    mapped = mapping.order_from_rest(wire.RestOrder.model_validate(payload))
    assert mapped is not None
    line = mapped.order.lines[0]
    assert (line.unit_price, line.amount) == (1780, 3560)


@pytest.mark.parametrize(
    ("status", "interval", "count", "problem"),
    [
        ("ARCHIVED", "MONTH", 1, "status: unknown subscription contract status"),
        ("ACTIVE", "FORTNIGHT", 1, "billingPolicy.interval: unknown interval"),
        ("ACTIVE", "MONTH", 0, "billingPolicy.intervalCount"),
    ],
)
def test_unusable_contracts_are_rejected(
    status: str, interval: str, count: int, problem: str
) -> None:
    node = {
        "id": "gid://shopify/SubscriptionContract/1",
        "status": status,
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-02-01T00:00:00Z",
        "customer": {"id": "gid://shopify/Customer/1"},
        "billingPolicy": {"interval": interval, "intervalCount": count},
        "lines": {"nodes": []},
        "billingCycles": {"nodes": []},
    }
    rejected = mapping.contract_from_node(node)
    assert isinstance(rejected, RejectedRecord)
    assert rejected.kind == "subscription"
    assert problem in rejected.problem


AT = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
CONTRACT = "gid://shopify/SubscriptionContract/4401"


def _payload(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


@pytest.mark.parametrize(
    ("topic", "kind", "event_id"),
    [
        ("subscription_contracts/create", SubscriptionEventKind.STARTED, f"{CONTRACT}:started"),
        (
            "subscription_contracts/activate",
            SubscriptionEventKind.RESUMED,
            f"{CONTRACT}:resumed:d1",
        ),
        (
            "subscription_contracts/pause",
            SubscriptionEventKind.PAUSED,
            f"{CONTRACT}:paused@2026-11-24T01:00:00+00:00",
        ),
        ("subscription_contracts/cancel", SubscriptionEventKind.CANCELLED, f"{CONTRACT}:cancelled"),
        ("subscription_contracts/update", None, None),
    ],
)
def test_a_contract_webhook_topic_says_which_event_happened(
    topic: str, kind: SubscriptionEventKind | None, event_id: str | None
) -> None:
    payload = wire.RestContract.model_validate_json(_payload(topic.replace("/", "_")))
    batch = mapping.contract_from_rest(topic, payload, AT, "d1")
    (subscription,) = batch.subscriptions
    assert subscription.external_id == CONTRACT
    assert subscription.customer_external_id == "gid://shopify/Customer/7001"
    assert subscription.started_at == AT
    assert subscription.source_updated_at is None
    assert [(event.kind, event.event_id) for event in batch.subscription_events] == (
        [(kind, event_id)] if kind else []
    )


def test_a_contract_webhook_with_an_unknown_status_is_unmappable() -> None:
    payload = orjson.loads(_payload("subscription_contracts_create"))
    payload["status"] = "archived"
    with pytest.raises(mapping.Unmappable, match="unknown subscription contract status"):
        mapping.contract_from_rest(
            "subscription_contracts/create", wire.RestContract.model_validate(payload), AT, "d1"
        )


def test_billing_cycle_webhooks_become_skips_and_unskips() -> None:
    skip = wire.RestBillingCycle.model_validate_json(_payload("subscription_billing_cycles_skip"))
    unskip = wire.RestBillingCycle.model_validate_json(
        _payload("subscription_billing_cycles_unskip")
    )
    skipped = mapping.billing_cycle_event("subscription_billing_cycles/skip", skip, AT, "d1")
    unskipped = mapping.billing_cycle_event("subscription_billing_cycles/unskip", unskip, AT, "d2")
    assert skipped is not None
    assert unskipped is not None
    assert (skipped.kind, skipped.event_id) == (SubscriptionEventKind.SKIPPED, f"{CONTRACT}:skip:3")
    assert (unskipped.kind, unskipped.event_id, unskipped.occurred_at) == (
        SubscriptionEventKind.UNSKIPPED,
        f"{CONTRACT}:unskip:3:d2",
        AT,
    )
    assert mapping.billing_cycle_event("subscription_billing_cycles/skip", unskip, AT, "d3") is None


def test_a_privacy_webhook_names_customers_and_orders_by_gid() -> None:
    payload = wire.PrivacyPayload.model_validate_json(_payload("customers_redact"))
    request = mapping.privacy_request(PrivacyAction.REDACT_CUSTOMER, payload)
    assert request.action is PrivacyAction.REDACT_CUSTOMER
    assert request == PrivacyRequest(
        action=PrivacyAction.REDACT_CUSTOMER,
        customer_external_ids=("gid://shopify/Customer/7001",),
        order_external_ids=("gid://shopify/Order/5001",),
        email="hanako@example.jp",
        phone="+819012345678",
    )
