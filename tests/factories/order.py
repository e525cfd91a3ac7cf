import uuid
from datetime import UTC, datetime

from domain.customer.models import Customer
from domain.db import AsyncSession
from domain.order.models import Order, OrderLine


async def make_order(
    session: AsyncSession,
    *,
    customer: Customer,
    connection_id: uuid.UUID,
    ordered_at: datetime | None = None,
    lines: list[tuple[str, int, int]] | None = None,
) -> Order:
    """An order with `lines` of (title, quantity, unit price in yen); aggregates updated."""
    lines = lines if lines is not None else [("化粧水 150ml", 1, 3280)]
    ordered_at = ordered_at or datetime.now(UTC)
    order = Order(
        shop_id=customer.shop_id,
        connection_id=connection_id,
        customer_id=customer.id,
        external_id=f"order-{uuid.uuid4().hex[:8]}",
        ordered_at=ordered_at,
        total_amount=sum(q * p for _, q, p in lines),
        item_quantity=sum(q for _, q, _ in lines),
    )
    session.add(order)
    await session.flush()
    for position, (title, quantity, price) in enumerate(lines, start=1):
        session.add(
            OrderLine(
                shop_id=customer.shop_id,
                order_id=order.id,
                position=position,
                title=title,
                quantity=quantity,
                unit_price=price,
                amount=quantity * price,
            )
        )
    customer.order_count += 1
    customer.total_spent += order.total_amount
    customer.first_order_at = min(filter(None, [customer.first_order_at, ordered_at]))
    customer.last_order_at = max(filter(None, [customer.last_order_at, ordered_at]))
    await session.flush()
    return order
