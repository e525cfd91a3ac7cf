import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import JsonValue

from domain.order.models import OrderStatus
from domain.platforms import RejectedRecord
from domain.subscription.models import SubscriptionEventKind, SubscriptionStatus
from integrations.amazon import mapping, wire

PAYLOADS = Path(__file__).parent / "payloads"


def _raw(name: str) -> dict[str, JsonValue]:
    loaded = json.loads((PAYLOADS / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def _orders() -> list[JsonValue]:
    return list(wire.OrdersResponse.model_validate(_raw("orders_page.json")).payload.Orders)


def _items() -> list[wire.OrderItem]:
    raws = wire.OrderItemsResponse.model_validate(_raw("order_items_sns.json")).payload.OrderItems
    items = mapping.parse_items(raws)
    assert isinstance(items, list)
    return items


def _order(index: int) -> wire.Order:
    parsed = mapping.parse_order(_orders()[index])
    assert isinstance(parsed, wire.Order)
    return parsed


def test_each_order_of_a_page_is_validated_on_its_own() -> None:
    parsed = [mapping.parse_order(raw) for raw in _orders()]

    rejected = [p for p in parsed if isinstance(p, RejectedRecord)]
    assert len(rejected) == 1
    assert rejected[0].external_id == "503-4444444-0000003"
    assert rejected[0].problem.startswith("OrderTotal.Amount: ")
    assert sum(isinstance(p, wire.Order) for p in parsed) == 4


def test_shipped_order_with_subscribe_and_save_item() -> None:
    mapped = mapping.map_order(_order(0), _items())

    order = mapped.order
    assert order.external_id == "503-1234567-7654321"
    assert order.status is OrderStatus.FULFILLED
    assert (order.total_amount, order.currency) == (7960, "JPY")
    assert order.ordered_at == datetime(2026, 5, 1, 1, 15, tzinfo=UTC)
    assert order.source_updated_at == datetime(2026, 5, 2, 3, 0, tzinfo=UTC)
    tea, cup = order.lines
    assert (tea.quantity, tea.amount, tea.unit_price) == (2, 3960 - 198, 1980)
    assert (tea.sku, tea.product_external_id, tea.title) == (
        "SKU-T01",
        "B0TEA00001",
        "有機ほうじ茶 200g",
    )
    assert (cup.quantity, cup.amount) == (1, 4000)
    customer = order.customer_external_id
    assert customer.startswith("buyer:")
    assert "@" not in customer  # the relay address itself is never kept
    assert order.subscription_external_id == f"sns:{customer}:B0TEA00001"
    [subscription] = mapped.subscriptions
    assert subscription.external_id == order.subscription_external_id
    assert subscription.status is SubscriptionStatus.ACTIVE
    assert subscription.customer_external_id == customer
    [event] = mapped.subscription_events
    assert event.kind is SubscriptionEventKind.RENEWED
    assert event.dedup_key == "order:503-1234567-7654321"


def test_buyer_key_is_stable_across_spellings_and_orders_without_email_stand_alone() -> None:
    assert mapping.customer_key(_order(0)) == mapping.customer_key(_order(2))
    assert mapping.customer_key(_order(1)) == "order:503-2222222-0000001"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Unshipped", OrderStatus.OPEN),
        ("PartiallyShipped", OrderStatus.OPEN),
        ("Shipped", OrderStatus.FULFILLED),
        ("InvoiceUnconfirmed", OrderStatus.FULFILLED),
        ("Canceled", OrderStatus.CANCELLED),
        ("Unfulfillable", OrderStatus.CANCELLED),
    ],
)
def test_order_status(status: str, expected: OrderStatus) -> None:
    order = _order(0).model_copy(update={"OrderStatus": wire.AmazonOrderStatus(status)})

    assert mapping.needs_mapping(order)
    assert mapping.map_order(order, _items()).order.status is expected


@pytest.mark.parametrize("index", [1, 4])
def test_pending_and_replacement_orders_are_not_purchases_yet(index: int) -> None:
    assert not mapping.needs_mapping(_order(index))


def test_cancelled_order_without_total_sums_its_items_and_opens_no_subscription() -> None:
    mapped = mapping.map_order(_order(2), _items())

    assert mapped.order.status is OrderStatus.CANCELLED
    assert mapped.order.total_amount == 3960 - 198 + 4000
    assert mapped.order.subscription_external_id is not None
    assert mapped.subscriptions == ()
    assert mapped.subscription_events == ()


def test_malformed_item_names_its_path() -> None:
    raws = wire.OrderItemsResponse.model_validate(_raw("order_items_sns.json")).payload.OrderItems
    broken = [raws[0], {**_as_dict(raws[1]), "QuantityOrdered": "two"}]

    problem = mapping.parse_items(broken)

    assert isinstance(problem, str)
    assert problem.startswith("OrderItems[1].QuantityOrdered: ")
    assert mapping.parse_items([]) == "OrderItems: an order without items"


def test_amounts_follow_the_currency_minor_unit() -> None:
    usd = wire.Money(CurrencyCode="USD", Amount="12.34")
    jpy = wire.Money(CurrencyCode="JPY", Amount="3980.00")
    negative = wire.Money(CurrencyCode="JPY", Amount="-1")

    assert mapping.minor_units(usd, "OrderTotal") == 1234
    assert mapping.minor_units(jpy, "OrderTotal") == 3980
    with pytest.raises(mapping.Unmappable, match=r"OrderTotal\.Amount"):
        mapping.minor_units(negative, "OrderTotal")


def _as_dict(value: JsonValue) -> dict[str, JsonValue]:
    assert isinstance(value, dict)
    return value
