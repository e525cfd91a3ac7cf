"""Reads of orders and their lines, for listings and batched lookups.

Reads return frozen rows (not ORM objects), like `domain.customer.service`. Every query is
scoped by `shop_id`; the ones every page runs are built once (see `domain.queries`). An order's
platform comes from its connection.
"""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, bindparam, exists, func, or_, select

from domain.connection.models import Connection
from domain.customer.service import like_pattern
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.order.models import Order, OrderLine, OrderStatus
from domain.pagination import (
    FETCH,
    Page,
    PageRequest,
    PageShape,
    SortColumn,
    beyond_cursor,
    order_by,
    page_parameters,
    to_page,
)
from domain.queries import SHOP_ID, among, dialect_of, rows, shop_of

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


def _select_orders() -> Select[Any]:
    joined = ORDER_TABLE.join(
        CONNECTION_TABLE,
        (CONNECTION.shop_id == ORDER.shop_id) & (CONNECTION.id == ORDER.connection_id),
    )
    return select(*_ORDER_COLUMNS).select_from(joined).where(shop_of(ORDER.shop_id))


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


@cache
def _order_page(sort: OrderSort, shape: PageShape) -> Select[Any]:
    column = ORDER_SORTS[sort]
    return (
        _select_orders()
        .where(beyond_cursor(column, ORDER.id, shape))
        .order_by(*order_by(column, ORDER.id, shape))
        .limit(bindparam(FETCH))
    )


@cache
def _orders_among(dialect: str) -> Select[Any]:
    return _select_orders().where(among(ORDER.id, "ids", dialect))


@cache
def _orders_of_customers(sort: OrderSort, shape: PageShape, dialect: str) -> Select[Any]:
    """The same page of each customer's orders: a window per customer, numbered in page order."""
    column = ORDER_SORTS[sort]
    rank = (
        func.row_number()
        .over(partition_by=ORDER.customer_id, order_by=order_by(column, ORDER.id, shape))
        .label("rank")
    )
    ranked = (
        _select_orders()
        .add_columns(rank)
        .where(among(ORDER.customer_id, "ids", dialect), beyond_cursor(column, ORDER.id, shape))
        .subquery()
    )
    return (
        select(*(ranked.c[f.name] for f in fields(OrderRow)))
        .where(ranked.c.rank <= bindparam(FETCH))
        .order_by(ranked.c.customer_id, ranked.c.rank)
    )


@cache
def _order_counts(dialect: str) -> Select[Any]:
    return (
        select(ORDER.customer_id, func.count())
        .where(shop_of(ORDER.shop_id), among(ORDER.customer_id, "ids", dialect))
        .group_by(ORDER.customer_id)
    )


@cache
def _lines_of_orders(dialect: str) -> Select[Any]:
    return (
        select(*_LINE_COLUMNS)
        .where(shop_of(LINE.shop_id), among(LINE.order_id, "ids", dialect))
        .order_by(LINE.order_id, LINE.position)
    )


async def list_orders(
    session: AsyncSession,
    shop_id: ShopId,
    request: PageRequest,
    *,
    sort: OrderSort = OrderSort.ORDERED_AT,
    search: str | None = None,
) -> Page[OrderRow]:
    """One page of the shop's orders in `sort` order, optionally narrowed by `search`."""
    parameters = {SHOP_ID: shop_id, **page_parameters(ORDER_SORTS[sort], request)}
    statement = _order_page(sort, request.shape)
    condition = _search(shop_id, search)
    if condition is not None:
        statement = statement.where(condition)
    found = await rows(session, statement, parameters)
    return to_page([_order_row(row) for row in found], request)


async def count_orders(session: AsyncSession, shop_id: ShopId, *, search: str | None = None) -> int:
    """How many orders `list_orders` would page through with the same `search`."""
    statement = select(func.count()).select_from(ORDER_TABLE).where(ORDER.shop_id == shop_id)
    condition = _search(shop_id, search)
    if condition is not None:
        statement = statement.where(condition)
    return int((await rows(session, statement))[0][0])


async def get_orders(
    session: AsyncSession, shop_id: ShopId, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, OrderRow]:
    """The shop's orders among `ids`; IDs of other shops are simply absent."""
    if not ids:
        return {}
    statement = _orders_among(dialect_of(session))
    found = await rows(session, statement, {SHOP_ID: shop_id, "ids": list(ids)})
    return {row.id: row for row in map(_order_row, found)}


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
        statement = _orders_of_customers(sort, request.shape, dialect_of(session))
        parameters = {
            SHOP_ID: shop_id,
            "ids": list(pages),
            **page_parameters(ORDER_SORTS[sort], request),
        }
        for row in await rows(session, statement, parameters):
            order = _order_row(row)
            pages[order.customer_id].append(order)
    return {customer_id: to_page(found, request) for customer_id, found in pages.items()}


async def count_orders_by_customer(
    session: AsyncSession, shop_id: ShopId, customer_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """How many orders each customer has (0 for none)."""
    counts = dict.fromkeys(customer_ids, 0)
    if counts:
        statement = _order_counts(dialect_of(session))
        for customer_id, count in await rows(
            session, statement, {SHOP_ID: shop_id, "ids": list(counts)}
        ):
            counts[customer_id] = int(count)
    return counts


async def lines_by_order(
    session: AsyncSession, shop_id: ShopId, order_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[OrderLineRow]]:
    """Each order's lines by position; orders without lines map to `[]`."""
    found: dict[uuid.UUID, list[OrderLineRow]] = {order_id: [] for order_id in order_ids}
    if not found:
        return found
    statement = _lines_of_orders(dialect_of(session))
    for row in await rows(session, statement, {SHOP_ID: shop_id, "ids": list(found)}):
        line = OrderLineRow(*row)
        found[line.order_id].append(line)
    return found
