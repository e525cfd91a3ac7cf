"""Amazon orders and their items to canonical records; the only place Amazon data is translated.

Rules (malls.md sections 3 and 4):
- External id: `AmazonOrderId`. `LastUpdateDate` is the version (`source_updated_at`).
- Status: Unshipped, PartiallyShipped -> open; Shipped, InvoiceUnconfirmed -> fulfilled;
  Canceled, Unfulfillable -> cancelled (an unfulfillable order never reaches the buyer).
- Not yet purchases: Pending and PendingAvailability orders (payment not authorised, and Amazon
  gives them no amounts yet) are not mapped at all; nor are replacement orders (a free re-ship,
  not a purchase). Leaving Pending bumps `LastUpdateDate`, so the next incremental sync brings
  the order with its amounts. A Pending order that is never paid arrives as Canceled.
- Money: `{CurrencyCode, Amount}` decimal strings, in the currency's minor units. The total is
  `OrderTotal`; a non-pending order without one (Amazon omits it on some cancellations) totals
  its items. A line's amount is `ItemPrice` (unit price x quantity) less `PromotionDiscount`.
- Customer: Amazon gives no stable buyer id, and buyer data is restricted. `BuyerEmail` is an
  anonymised relay address, stable per buyer and seller, present only with the right roles:
  when present the customer is `buyer:` + a SHA-256 of it (the address itself is never
  stored: it is Amazon PII under a 30-day retention rule), else `order:<AmazonOrderId>`, one
  anonymous customer per order, who can show no rhythm of their own. Ingest marks every
  Amazon customer marketing-restricted (Amazon's terms forbid marketing use).
- Subscribe & Save: Amazon shows only a per-item program flag, `AmazonPrograms.Programs`
  containing `SUBSCRIBE_AND_SAVE`. Each such item stands for a subscription with the synthetic
  id `sns:<customer key>:<ASIN>`, marked on the order as `subscription_external_id` (the first
  such item by ASIN). A purchase emits a `SubscriptionRecord` (active; the cadence is unknown,
  so the default interval; `started_at` is the purchase date of the newest S&S order seen) and
  a `renewed` event keyed by the order, so the subscription sign counts the buyer as a live
  subscriber. Skips, pauses, cadence changes and cancellations of S&S are invisible in the API:
  a lapsed subscriber shows only as a growing purchase interval.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import JsonValue, ValidationError

from domain.order.models import OrderStatus
from domain.platforms import (
    OrderLineRecord,
    OrderRecord,
    Platform,
    RejectedRecord,
    SubscriptionEventRecord,
    SubscriptionRecord,
)
from domain.subscription.models import SubscriptionEventKind, SubscriptionStatus
from integrations.amazon import wire
from integrations.amazon.wire import AmazonOrderStatus

PLATFORM = Platform.AMAZON.value
SUBSCRIBE_AND_SAVE = "SUBSCRIBE_AND_SAVE"

STATUS: dict[AmazonOrderStatus, OrderStatus] = {
    AmazonOrderStatus.UNSHIPPED: OrderStatus.OPEN,
    AmazonOrderStatus.PARTIALLY_SHIPPED: OrderStatus.OPEN,
    AmazonOrderStatus.SHIPPED: OrderStatus.FULFILLED,
    AmazonOrderStatus.INVOICE_UNCONFIRMED: OrderStatus.FULFILLED,
    AmazonOrderStatus.CANCELED: OrderStatus.CANCELLED,
    AmazonOrderStatus.UNFULFILLABLE: OrderStatus.CANCELLED,
}
NOT_YET_PURCHASES = frozenset({AmazonOrderStatus.PENDING, AmazonOrderStatus.PENDING_AVAILABILITY})

# ISO 4217 minor-unit exponents that are not 2 (the common case).
_EXPONENTS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3}


class Unmappable(ValueError):
    """A field of a validated order that still cannot become a canonical record."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True, slots=True)
class MappedOrder:
    order: OrderRecord
    subscriptions: tuple[SubscriptionRecord, ...] = ()
    subscription_events: tuple[SubscriptionEventRecord, ...] = ()


def _raw_order_id(raw: JsonValue) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("AmazonOrderId")
        if isinstance(value, str) and value:
            return value[:200]
    return None


def parse_order(raw: JsonValue) -> wire.Order | RejectedRecord:
    """One order of a getOrders page, validated on its own."""
    try:
        return wire.Order.model_validate(raw)
    except ValidationError as exc:
        return RejectedRecord("order", _raw_order_id(raw), wire.field_problem(exc))


def needs_mapping(order: wire.Order) -> bool:
    """Whether the order is a purchase yet (see the module rules); others are skipped."""
    return order.OrderStatus not in NOT_YET_PURCHASES and not order.IsReplacementOrder


def customer_key(order: wire.Order) -> str:
    """The customer's external id: the relay email's digest, else one per order."""
    email = order.BuyerInfo.BuyerEmail if order.BuyerInfo else None
    if email and email.strip():
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return f"buyer:{digest[:40]}"
    return f"order:{order.AmazonOrderId}"


def subscription_id(customer: str, asin: str) -> str:
    return f"sns:{customer}:{asin}"


def _scaled(amount: Decimal, currency: str) -> int:
    exponent = _EXPONENTS.get(currency.upper(), 2)
    return int((amount * (Decimal(10) ** exponent)).quantize(Decimal(1), ROUND_HALF_EVEN))


def minor_units(money: wire.Money, path: str) -> int:
    """An Amazon amount in the currency's minor units (half-even below the minor unit)."""
    scaled = _scaled(money.Amount, money.CurrencyCode)
    if scaled < 0:
        raise Unmappable(f"{path}.Amount", f"negative amount {money.Amount}")
    return scaled


def _line(item: wire.OrderItem, index: int, currency: str) -> OrderLineRecord:
    path = f"OrderItems[{index}]"
    amount = 0
    if item.ItemPrice is not None:
        if item.ItemPrice.CurrencyCode.upper() != currency:
            raise Unmappable(f"{path}.ItemPrice.CurrencyCode", "differs from the order's")
        amount = minor_units(item.ItemPrice, f"{path}.ItemPrice")
    if item.PromotionDiscount is not None and item.PromotionDiscount.Amount:
        if item.PromotionDiscount.CurrencyCode.upper() != currency:
            raise Unmappable(f"{path}.PromotionDiscount.CurrencyCode", "differs from the order's")
        amount = max(0, amount - _scaled(abs(item.PromotionDiscount.Amount), currency))
    unit_price = None
    if item.ItemPrice is not None and item.QuantityOrdered > 0:
        gross = minor_units(item.ItemPrice, f"{path}.ItemPrice")
        if gross % item.QuantityOrdered == 0:
            unit_price = gross // item.QuantityOrdered
    return OrderLineRecord(
        quantity=item.QuantityOrdered,
        amount=amount,
        unit_price=unit_price,
        sku=item.SellerSKU or None,
        title=(item.Title or "")[:500],
        product_external_id=item.ASIN,
    )


def parse_items(raws: Sequence[JsonValue]) -> list[wire.OrderItem] | str:
    """An order's items, validated; the first problem as a field path when one is malformed."""
    items: list[wire.OrderItem] = []
    for index, raw in enumerate(raws):
        try:
            items.append(wire.OrderItem.model_validate(raw))
        except ValidationError as exc:
            return wire.field_problem(exc, f"OrderItems[{index}]")
    if not items:
        return "OrderItems: an order without items"
    return items


def map_order(order: wire.Order, items: Sequence[wire.OrderItem]) -> MappedOrder:
    """The canonical order with its lines, and S&S subscriptions; raises `Unmappable`."""
    status = STATUS.get(order.OrderStatus)
    if status is None:
        raise Unmappable("OrderStatus", f"{order.OrderStatus} is not a purchase yet")
    currency = (
        order.OrderTotal.CurrencyCode.upper()
        if order.OrderTotal
        else next((i.ItemPrice.CurrencyCode.upper() for i in items if i.ItemPrice), "JPY")
    )
    lines = tuple(_line(item, index, currency) for index, item in enumerate(items))
    if order.OrderTotal is not None:
        total = minor_units(order.OrderTotal, "OrderTotal")
    else:
        total = sum(line.amount for line in lines)
    customer = customer_key(order)
    sns = sorted(
        {
            item.ASIN: item
            for item in items
            if item.AmazonPrograms and SUBSCRIBE_AND_SAVE in item.AmazonPrograms.Programs
        }.items()
    )
    try:
        record = OrderRecord(
            platform=PLATFORM,
            external_id=order.AmazonOrderId,
            customer_external_id=customer,
            ordered_at=order.PurchaseDate,
            total_amount=total,
            currency=currency,
            status=status,
            lines=lines,
            subscription_external_id=subscription_id(customer, sns[0][0]) if sns else None,
            source_updated_at=order.LastUpdateDate,
        )
    except ValueError as exc:
        raise Unmappable("Order", str(exc)) from exc
    if not sns or status is OrderStatus.CANCELLED:
        return MappedOrder(record)
    subscriptions = tuple(
        SubscriptionRecord(
            platform=PLATFORM,
            external_id=subscription_id(customer, asin),
            customer_external_id=customer,
            started_at=order.PurchaseDate,
            status=SubscriptionStatus.ACTIVE,
            product_title=(item.Title or asin)[:500],
            source_updated_at=order.PurchaseDate,
        )
        for asin, item in sns
    )
    events = tuple(
        SubscriptionEventRecord(
            platform=PLATFORM,
            subscription_external_id=subscription_id(customer, asin),
            kind=SubscriptionEventKind.RENEWED,
            occurred_at=order.PurchaseDate,
            event_id=f"order:{order.AmazonOrderId}",
        )
        for asin, _ in sns
    )
    return MappedOrder(record, subscriptions, events)
