"""Customer order aggregates, recomputed from the orders themselves for a set of customers.

A purchase is an order that is neither cancelled nor fully refunded. Spend is the net amount
(`total_amount - refunded_amount`) of purchases in the shop's currency; orders in another
currency count as purchases but add nothing, since no exchange rate is known here.
"""

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, update

from domain.customer.models import Customer
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest.statements import chunked, one_of, table_of
from domain.order.models import Order, OrderStatus

_CUSTOMER = table_of(Customer)
_ORDER = table_of(Order)

NOT_PURCHASES = (OrderStatus.CANCELLED.value, OrderStatus.REFUNDED.value)


async def recompute_customer_aggregates(
    session: AsyncSession,
    shop_id: ShopId,
    customer_ids: Collection[uuid.UUID],
    *,
    currency: str,
) -> None:
    """Set first/last order time, order count and net spend of these customers from their orders.

    A customer's `created_at` moves back to their first purchase when that came earlier.
    """
    customer, order = _CUSTOMER, _ORDER
    # Correlated subqueries keep the plan to primary-key and (customer, ordered_at) index
    # lookups, whatever the planner believes about table sizes in the middle of a bulk load.
    purchases = (
        order.c.shop_id == customer.c.shop_id,
        order.c.customer_id == customer.c.id,
        order.c.status.not_in(NOT_PURCHASES),
    )

    def aggregate(expression: ColumnElement[Any], *extra: ColumnElement[bool]) -> Any:
        return select(expression).where(*purchases, *extra).scalar_subquery()

    first_order_at = aggregate(func.min(order.c.ordered_at))
    for chunk in chunked(sorted(customer_ids)):
        await session.exec(
            update(customer)
            .where(customer.c.shop_id == shop_id, one_of(session, customer.c.id, chunk))
            .values(
                order_count=aggregate(func.count()),
                first_order_at=first_order_at,
                # Nobody became a customer after their first purchase (imports without a
                # creation time create customers "now").
                created_at=case(
                    (first_order_at < customer.c.created_at, first_order_at),
                    else_=customer.c.created_at,
                ),
                last_order_at=aggregate(func.max(order.c.ordered_at)),
                total_spent=aggregate(
                    func.coalesce(func.sum(order.c.total_amount - order.c.refunded_amount), 0),
                    order.c.currency == currency,
                ),
                currency=currency,
            )
        )
