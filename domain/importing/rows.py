"""One CSV row to one canonical record (or the problems that stop it)."""

from dataclasses import dataclass
from typing import Generic, TypeVar

from domain.importing.cells import Cells
from domain.order.models import OrderStatus
from domain.platforms import (
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    SubscriptionEventRecord,
    SubscriptionRecord,
)
from domain.subscription.models import SubscriptionEventKind, SubscriptionStatus

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Parsed(Generic[R]):
    """A valid row: its mall, its key within the file, and its record."""

    line: int
    mall: str
    key: str
    record: R


@dataclass(frozen=True, slots=True)
class StagedLine:
    """An order line waiting for its order: orders.csv is read after order_lines.csv."""

    order_id: str
    position: int | None
    record: OrderLineRecord


def customer(cells: Cells) -> tuple[str, str, CustomerRecord] | None:
    mall = cells.mall()
    external_id = cells.identifier("customer_id")
    name = cells.text("name") or ""
    email = cells.email()
    phone = cells.phone()
    birth_date = cells.date("birth_date")
    created_at = cells.time("created_at")
    updated_at = cells.time("updated_at")
    if cells.problems or external_id is None:
        return None
    record = CustomerRecord(
        platform=mall,
        external_id=external_id,
        display_name=name,
        email=email,
        phone=phone,
        birth_date=birth_date,
        created_at=created_at,
        source_updated_at=updated_at,
    )
    return mall, external_id, record


def order(cells: Cells) -> tuple[str, str, OrderRecord] | None:
    mall = cells.mall()
    external_id = cells.identifier("order_id")
    customer_id = cells.identifier("customer_id")
    ordered_at = cells.time("ordered_at", required=True)
    total = cells.integer("total_amount", required=True)
    currency = cells.currency()
    status = cells.choice("status", OrderStatus, OrderStatus.FULFILLED)
    quantity = cells.integer("quantity")
    refunded = cells.integer("refunded_amount") or 0
    subscription_id = cells.identifier("subscription_id", required=False)
    updated_at = cells.time("updated_at")
    if total is not None and refunded > total:
        cells.problem("refunded_amount", f'"{refunded}" is more than total_amount {total}')
    if cells.problems or not external_id or not customer_id or not ordered_at or total is None:
        return None
    record = OrderRecord(
        platform=mall,
        external_id=external_id,
        customer_external_id=customer_id,
        ordered_at=ordered_at,
        total_amount=total,
        currency=currency,
        status=status,
        refunded_amount=refunded,
        item_quantity=quantity,
        subscription_external_id=subscription_id,
        source_updated_at=updated_at,
    )
    return mall, external_id, record


def order_line(cells: Cells) -> tuple[str, str, StagedLine] | None:
    mall = cells.mall()
    order_id = cells.identifier("order_id")
    quantity = cells.integer("quantity", required=True)
    position = cells.integer("line", required="line" in cells.columns, positive=True)
    unit_price = cells.integer("unit_price")
    amount = cells.integer("amount")
    product_id = cells.identifier("product_id", required=False)
    if cells.problems or not order_id or quantity is None:
        return None
    if amount is None:
        amount = quantity * unit_price if unit_price is not None else 0
    record = OrderLineRecord(
        quantity=quantity,
        amount=amount,
        unit_price=unit_price,
        sku=cells.text("sku"),
        title=cells.text("title") or "",
        product_external_id=product_id,
    )
    # With explicit line numbers, (order, line) must be unique; without, every row is a line.
    key = f"{order_id}\x1f{position}" if position is not None else ""
    return mall, key, StagedLine(order_id, position, record)


def subscription(cells: Cells) -> tuple[str, str, SubscriptionRecord] | None:
    mall = cells.mall()
    external_id = cells.identifier("subscription_id")
    customer_id = cells.identifier("customer_id")
    started_at = cells.time("started_at", required=True)
    status = cells.choice("status", SubscriptionStatus, SubscriptionStatus.ACTIVE)
    interval = cells.integer("interval_days", positive=True)
    cancelled_at = cells.time("cancelled_at")
    next_delivery_at = cells.time("next_delivery_at")
    updated_at = cells.time("updated_at")
    if cells.problems or not external_id or not customer_id or not started_at:
        return None
    record = SubscriptionRecord(
        platform=mall,
        external_id=external_id,
        customer_external_id=customer_id,
        started_at=started_at,
        status=status,
        interval_days=interval or 30,
        product_title=cells.text("product") or "",
        cancelled_at=cancelled_at,
        next_delivery_at=next_delivery_at,
        source_updated_at=updated_at,
    )
    return mall, external_id, record


def subscription_event(cells: Cells) -> tuple[str, str, SubscriptionEventRecord] | None:
    mall = cells.mall()
    subscription_id = cells.identifier("subscription_id")
    kind = cells.text("kind")
    parsed_kind = cells.choice("kind", SubscriptionEventKind, SubscriptionEventKind.STARTED)
    if kind is None:
        cells.problem("kind", "required value is missing")
    occurred_at = cells.time("occurred_at", required=True)
    event_id = cells.identifier("event_id", required=False)
    if cells.problems or not subscription_id or not occurred_at:
        return None
    record = SubscriptionEventRecord(
        platform=mall,
        subscription_external_id=subscription_id,
        kind=parsed_kind,
        occurred_at=occurred_at,
        event_id=event_id,
        reason=cells.text("reason"),
    )
    return mall, f"{subscription_id}\x1f{record.dedup_key}", record
