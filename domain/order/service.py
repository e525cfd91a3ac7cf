"""Reads of orders and their lines, for listings and batched lookups.

Reads return frozen rows (not ORM objects), like `domain.customer.service`. Every query is
scoped by `shop_id`; an order's platform comes from its connection.
"""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, exists, func, or_, select

from domain.connection.models import Connection
from domain.customer.service import like_pattern
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.order.models import Order, OrderLine, OrderStatus
from domain.pagination import Page, PageRequest, SortColumn, beyond_cursor, order_by, to_page

ORDER_TABLE: Table = Order.__table__  # type: ignore[attr-defined]
ORDER = ORDER_TABLE.c
LINE_TABLE: Table = OrderLine.__table__  # type: ignore[attr-defined]
LINE = LINE_TABLE.c
CONNECTION_TABLE: Table = Connection.__table__  # type: ignore[attr-defined]
CONNECTION = CONNECTION_TABLE.c


@dataclass(frozen=True, slots=True)
class OrderRow:
    id: uuid.UUID
    customer_id: uuid.UUID
    external_id: str
    ordered_at: datetime
    status: OrderStatus
    currency: str
    total_amount: int
    item_quantity: int
    platform: str


@dataclass(frozen=True, slots=True)
class OrderLineRow:
    order_id: uuid.UUID
    position: int
    sku: str | None
    title: str
    quantity: int
    unit_price: int | None
    amount: int


class OrderSort(StrEnum):
    ORDERED_AT = "ordered_at"
    TOTAL_AMOUNT = "total_amount"


ORDER_SORTS: dict[OrderSort, SortColumn] = {
    OrderSort.ORDERED_AT: SortColumn("ordered_at", ORDER.ordered_at, datetime),
    OrderSort.TOTAL_AMOUNT: SortColumn("total_amount", ORDER.total_amount, int),
}

_ORDER_COLUMNS = [
    CONNECTION.platform if f.name == "platform" else ORDER[f.name] for f in fields(OrderRow)
]
_LINE_COLUMNS = [LINE[f.name] for f in fields(OrderLineRow)]
_STATUS = [f.name for f in fields(OrderRow)].index("status")


def _order_row(row: Sequence[Any]) -> OrderRow:
    values = list(row)
    values[_STATUS] = OrderStatus(values[_STATUS])
    return OrderRow(*values)


def _select_orders(shop_id: ShopId) -> Select[Any]:
    joined = ORDER_TABLE.join(
        CONNECTION_TABLE,
        (CONNECTION.shop_id == ORDER.shop_id) & (CONNECTION.id == ORDER.connection_id),
    )
    return select(*_ORDER_COLUMNS).select_from(joined).where(ORDER.shop_id == shop_id)


def _search(shop_id: ShopId, search: str | None) -> ColumnElement[bool] | None:
    """Orders whose external id, or one of whose lines' title or SKU, contains `search`."""
    text = (search or "").strip()
    if not text:
        return None
    pattern = like_pattern(text)
    line_match = exists().where(
        LINE.shop_id == shop_id,
        LINE.order_id == ORDER.id,
        or_(LINE.title.ilike(pattern, escape="\\"), LINE.sku.ilike(pattern, escape="\\")),
    )
    return or_(ORDER.external_id.ilike(pattern, escape="\\"), line_match)


async def _rows(session: AsyncSession, statement: Select[Any]) -> Sequence[Any]:
    # Core execution on the session's own connection and transaction: no ORM identity map.
    connection = await session.connection()
    rows: Sequence[Any] = (await connection.execute(statement)).all()
    return rows


async def list_orders(
    session: AsyncSession,
    shop_id: ShopId,
    request: PageRequest,
    *,
    sort: OrderSort = OrderSort.ORDERED_AT,
    search: str | None = None,
) -> Page[OrderRow]:
    """One page of the shop's orders in `sort` order, optionally narrowed by `search`."""
    column = ORDER_SORTS[sort]
    statement = (
        _select_orders(shop_id)
        .where(beyond_cursor(column, ORDER.id, request))
        .order_by(*order_by(column, ORDER.id, request))
        .limit(request.size + 1)
    )
    condition = _search(shop_id, search)
    if condition is not None:
        statement = statement.where(condition)
    return to_page([_order_row(row) for row in await _rows(session, statement)], request)


async def count_orders(session: AsyncSession, shop_id: ShopId, *, search: str | None = None) -> int:
    """How many orders `list_orders` would page through with the same `search`."""
    statement = select(func.count()).select_from(ORDER_TABLE).where(ORDER.shop_id == shop_id)
    condition = _search(shop_id, search)
    if condition is not None:
        statement = statement.where(condition)
    return int((await _rows(session, statement))[0][0])


async def get_orders(
    session: AsyncSession, shop_id: ShopId, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, OrderRow]:
    """The shop's orders among `ids`; IDs of other shops are simply absent."""
    if not ids:
        return {}
    statement = _select_orders(shop_id).where(ORDER.id.in_(list(ids)))
    return {row.id: row for row in map(_order_row, await _rows(session, statement))}


async def orders_by_customer(
    session: AsyncSession,
    shop_id: ShopId,
    customer_ids: Collection[uuid.UUID],
    request: PageRequest,
    *,
    sort: OrderSort = OrderSort.ORDERED_AT,
) -> dict[uuid.UUID, Page[OrderRow]]:
    """The same page of each customer's orders, in one query (a window per customer)."""
    pages: dict[uuid.UUID, list[OrderRow]] = {customer_id: [] for customer_id in customer_ids}
    if pages:
        column = ORDER_SORTS[sort]
        rank = (
            func.row_number()
            .over(
                partition_by=ORDER.customer_id,
                order_by=order_by(column, ORDER.id, request),
            )
            .label("rank")
        )
        ranked = (
            _select_orders(shop_id)
            .add_columns(rank)
            .where(
                ORDER.customer_id.in_(list(pages)),
                beyond_cursor(column, ORDER.id, request),
            )
            .subquery()
        )
        statement = (
            select(*(ranked.c[f.name] for f in fields(OrderRow)))
            .where(ranked.c.rank <= request.size + 1)
            .order_by(ranked.c.customer_id, ranked.c.rank)
        )
        for row in await _rows(session, statement):
            order = _order_row(row)
            pages[order.customer_id].append(order)
    return {customer_id: to_page(rows, request) for customer_id, rows in pages.items()}


async def count_orders_by_customer(
    session: AsyncSession, shop_id: ShopId, customer_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """How many orders each customer has (0 for none)."""
    counts = dict.fromkeys(customer_ids, 0)
    if counts:
        statement = (
            select(ORDER.customer_id, func.count())
            .where(ORDER.shop_id == shop_id, ORDER.customer_id.in_(list(counts)))
            .group_by(ORDER.customer_id)
        )
        for customer_id, count in await _rows(session, statement):
            counts[customer_id] = int(count)
    return counts


async def lines_by_order(
    session: AsyncSession, shop_id: ShopId, order_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[OrderLineRow]]:
    """Each order's lines by position; orders without lines map to `[]`."""
    found: dict[uuid.UUID, list[OrderLineRow]] = {order_id: [] for order_id in order_ids}
    if not found:
        return found
    statement = (
        select(*_LINE_COLUMNS)
        .where(LINE.shop_id == shop_id, LINE.order_id.in_(list(found)))
        .order_by(LINE.order_id, LINE.position)
    )
    for row in await _rows(session, statement):
        line = OrderLineRow(*row)
        found[line.order_id].append(line)
    return found
