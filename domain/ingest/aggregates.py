"""Customer order aggregates, recomputed from the orders themselves for a set of customers.

A purchase is an order that is neither cancelled nor fully refunded. Spend is the net amount
(`total_amount - refunded_amount`) of purchases in the shop's currency; orders in another
currency count as purchases but add nothing, since no exchange rate is known here. The first
product is the product of the first line naming one (lowest position) on the first purchase
(earliest `ordered_at`, then lowest order id): none when that order's lines name none.
"""

import uuid
from collections.abc import Collection, Iterable, Mapping, MutableMapping
from typing import Any

from sqlalchemy import ColumnElement, Update, case, func, select, tuple_, update

from domain.customer.models import Customer
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest.statements import chunked, dialect_name, one_of, table_of
from domain.order.models import Order, OrderLine, OrderStatus

_CUSTOMER = table_of(Customer)
_ORDER = table_of(Order)
_LINE = table_of(OrderLine)

NOT_PURCHASES = (OrderStatus.CANCELLED.value, OrderStatus.REFUNDED.value)

# Correlated subqueries keep the plan to (customer, ordered_at) index lookups, whatever the
# planner believes about table sizes in the middle of a bulk load: a join to the orders (or
# to the list of ids) would be planned from those beliefs, and a table last analyzed nearly
# empty makes it hash or loop over every customer of the shop for each batch.
_PURCHASES = (
    _ORDER.c.shop_id == _CUSTOMER.c.shop_id,
    _ORDER.c.customer_id == _CUSTOMER.c.id,
    _ORDER.c.status.not_in(NOT_PURCHASES),
)


def set_new_customers_aggregates(
    customers: Iterable[MutableMapping[str, Any]],
    orders: Iterable[Mapping[str, Any]],
    first_products: Mapping[uuid.UUID, uuid.UUID],
    *,
    currency: str,
) -> set[uuid.UUID]:
    """Give rows of customers not yet written the aggregates of `orders` (rows of the order
    table), by the same rules as `recompute_customer_aggregates`; the ids of those customers.

    `first_products` maps an order's id to the product of its first line naming one (orders
    whose lines name none are absent). Only for customers whose every order is among
    `orders`: customers created in the same batch, to which no stored order moves. Their rows
    are then written once, complete, instead of being written bare and updated after their
    orders.
    """
    rows = {row["id"]: row for row in customers}
    first_orders: dict[uuid.UUID, tuple[Any, uuid.UUID]] = {}
    for order in orders:
        customer_id = order["customer_id"]
        row = rows.get(customer_id)
        if row is None or order["status"] in NOT_PURCHASES:
            continue
        at = order["ordered_at"]
        row["order_count"] += 1
        first = first_orders.get(customer_id)
        if first is None or (at, order["id"]) < first:
            first_orders[customer_id] = (at, order["id"])
        if row["last_order_at"] is None or at > row["last_order_at"]:
            row["last_order_at"] = at
        if order["currency"] == currency:
            row["total_spent"] += order["total_amount"] - order["refunded_amount"]
    for customer_id, (at, order_id) in first_orders.items():
        row = rows[customer_id]
        row["first_order_at"] = at
        row["first_product_id"] = first_products.get(order_id)
    for row in rows.values():
        row["currency"] = currency
        first_at = row["first_order_at"]
        if first_at is not None and first_at < row["created_at"]:
            row["created_at"] = first_at
    return set(rows)


async def recompute_customer_aggregates(
    session: AsyncSession,
    shop_id: ShopId,
    customer_ids: Collection[uuid.UUID],
    *,
    currency: str,
) -> None:
    """Set first/last order time, order count, net spend and first product of these customers
    from their orders.

    A customer without purchases has count 0, no first/last order time and spend 0. A
    customer's `created_at` moves back to their first purchase when that came earlier.
    """
    postgresql = dialect_name(session) == "postgresql"
    for chunk in chunked(sorted(customer_ids)):
        chosen = update(_CUSTOMER).where(
            _CUSTOMER.c.shop_id == shop_id, one_of(session, _CUSTOMER.c.id, chunk)
        )
        await session.exec(
            _one_pass(chosen, currency) if postgresql else _per_column(chosen, currency)
        )


def _one_pass(statement: Update, currency: str) -> Update:
    """PostgreSQL: one aggregate subquery per customer assigns every column at once."""
    customer, order = _CUSTOMER, _ORDER
    first_order_at = func.min(order.c.ordered_at)
    aggregates = select(
        func.count(),
        first_order_at,
        func.max(order.c.ordered_at),
        func.coalesce(
            func.sum(order.c.total_amount - order.c.refunded_amount).filter(
                order.c.currency == currency
            ),
            0,
        ),
        # Nobody became a customer after their first purchase (imports without a creation
        # time create customers "now"). `least` ignores NULL: no purchase, no change.
        func.least(customer.c.created_at, first_order_at),
    ).where(*_PURCHASES)
    targets = tuple_(
        customer.c.order_count,
        customer.c.first_order_at,
        customer.c.last_order_at,
        customer.c.total_spent,
        customer.c.created_at,
    )
    return statement.values(
        {
            targets: aggregates.scalar_subquery(),
            customer.c.first_product_id: _first_product(),
            customer.c.currency: currency,
        }
    )


def _per_column(statement: Update, currency: str) -> Update:
    """SQLite, which has no multi-column assignment from one subquery: one per column."""
    customer, order = _CUSTOMER, _ORDER

    def aggregate(expression: ColumnElement[Any], *extra: ColumnElement[bool]) -> Any:
        return select(expression).where(*_PURCHASES, *extra).scalar_subquery()

    first_order_at = aggregate(func.min(order.c.ordered_at))
    return statement.values(
        order_count=aggregate(func.count()),
        first_order_at=first_order_at,
        # Nobody became a customer after their first purchase (imports without a creation
        # time create customers "now").
        created_at=case(
            (first_order_at < customer.c.created_at, first_order_at),
            else_=customer.c.created_at,
        ),
        last_order_at=aggregate(func.max(order.c.ordered_at)),
        total_spent=aggregate(
            func.coalesce(func.sum(order.c.total_amount - order.c.refunded_amount), 0),
            order.c.currency == currency,
        ),
        first_product_id=_first_product(),
        currency=currency,
    )


def _first_product() -> Any:
    """The customer's first product: two index lookups, the first purchase then its lines."""
    order, line = _ORDER, _LINE
    first_purchase = (
        select(order.c.id)
        .where(*_PURCHASES)
        .order_by(order.c.ordered_at, order.c.id)
        .limit(1)
        # Two levels down from the UPDATE: named, or the customer table joins in here.
        .correlate(_CUSTOMER)
        .scalar_subquery()
    )
    return (
        select(line.c.product_id)
        .where(
            line.c.shop_id == _CUSTOMER.c.shop_id,
            line.c.order_id == first_purchase,
            line.c.product_id.is_not(None),
        )
        .order_by(line.c.position)
        .limit(1)
        .scalar_subquery()
    )
