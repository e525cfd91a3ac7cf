"""Reads of customers and their identities, for listings and batched lookups.

Reads return frozen rows (not ORM objects): a page of customers with their orders is read
often, and Core rows cost a fraction of mapped instances. Every query is scoped by `shop_id`;
the ones every page runs are built once (see `domain.queries`).
"""

import uuid
from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, bindparam, exists, func, or_, select

from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from domain.ids import ShopId
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

CUSTOMER_TABLE: Table = Customer.__table__  # type: ignore[attr-defined]
CUSTOMER = CUSTOMER_TABLE.c
IDENTITY_TABLE: Table = CustomerIdentity.__table__  # type: ignore[attr-defined]
IDENTITY = IDENTITY_TABLE.c


@dataclass(frozen=True, slots=True)
class CustomerRow:
    id: uuid.UUID
    display_name: str
    email: str | None
    phone: str | None
    birth_date: date | None
    marketing_restricted: bool
    first_order_at: datetime | None
    last_order_at: datetime | None
    order_count: int
    total_spent: int
    currency: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IdentityRow:
    id: uuid.UUID
    customer_id: uuid.UUID
    connection_id: uuid.UUID
    platform: str
    external_id: str
    email: str | None
    email_masked: bool


class CustomerSort(StrEnum):
    CREATED_AT = "created_at"
    LAST_ORDER_AT = "last_order_at"
    TOTAL_SPENT = "total_spent"
    ORDER_COUNT = "order_count"
    NAME = "display_name"


CUSTOMER_SORTS: dict[CustomerSort, SortColumn] = {
    CustomerSort.CREATED_AT: SortColumn("created_at", CUSTOMER.created_at, datetime),
    CustomerSort.LAST_ORDER_AT: SortColumn(
        "last_order_at", CUSTOMER.last_order_at, datetime, nullable=True
    ),
    CustomerSort.TOTAL_SPENT: SortColumn("total_spent", CUSTOMER.total_spent, int),
    CustomerSort.ORDER_COUNT: SortColumn("order_count", CUSTOMER.order_count, int),
    CustomerSort.NAME: SortColumn("display_name", CUSTOMER.display_name, str),
}

_CUSTOMER_COLUMNS = [CUSTOMER[f.name] for f in fields(CustomerRow)]
_IDENTITY_COLUMNS = [IDENTITY[f.name] for f in fields(IdentityRow)]


def like_pattern(text: str) -> str:
    """A `LIKE … ESCAPE '\\'` pattern matching `text` anywhere, wildcards in it taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search(shop_id: ShopId, search: str | None) -> ColumnElement[bool] | None:
    """Name or email containing `search` (any case), or an identity with exactly that id."""
    text = (search or "").strip()
    if not text:
        return None
    pattern = like_pattern(text)
    identity_match = exists().where(
        IDENTITY.shop_id == shop_id,
        IDENTITY.customer_id == CUSTOMER.id,
        IDENTITY.external_id == text,
    )
    return or_(
        CUSTOMER.display_name.ilike(pattern, escape="\\"),
        CUSTOMER.email.ilike(pattern, escape="\\"),
        identity_match,
    )


@cache
def _customer_page(sort: CustomerSort, shape: PageShape) -> Select[Any]:
    column = CUSTOMER_SORTS[sort]
    return (
        select(*_CUSTOMER_COLUMNS)
        .where(shop_of(CUSTOMER.shop_id), beyond_cursor(column, CUSTOMER.id, shape))
        .order_by(*order_by(column, CUSTOMER.id, shape))
        .limit(bindparam(FETCH))
    )


@cache
def _customers_among(dialect: str) -> Select[Any]:
    return select(*_CUSTOMER_COLUMNS).where(
        shop_of(CUSTOMER.shop_id), among(CUSTOMER.id, "ids", dialect)
    )


@cache
def _identities_of_customers(dialect: str) -> Select[Any]:
    return (
        select(*_IDENTITY_COLUMNS)
        .where(shop_of(IDENTITY.shop_id), among(IDENTITY.customer_id, "ids", dialect))
        .order_by(IDENTITY.customer_id, IDENTITY.created_at, IDENTITY.id)
    )


@cache
def _identities_among(dialect: str) -> Select[Any]:
    return select(*_IDENTITY_COLUMNS).where(
        shop_of(IDENTITY.shop_id), among(IDENTITY.id, "ids", dialect)
    )


async def list_customers(
    session: AsyncSession,
    shop_id: ShopId,
    request: PageRequest,
    *,
    sort: CustomerSort = CustomerSort.CREATED_AT,
    search: str | None = None,
) -> Page[CustomerRow]:
    """One page of the shop's customers in `sort` order, optionally narrowed by `search`."""
    parameters = {SHOP_ID: shop_id, **page_parameters(CUSTOMER_SORTS[sort], request)}
    statement = _customer_page(sort, request.shape)
    condition = _search(shop_id, search)
    if condition is not None:
        statement = statement.where(condition)
    found = await rows(session, statement, parameters)
    return to_page([CustomerRow(*row) for row in found], request)


async def count_customers(
    session: AsyncSession, shop_id: ShopId, *, search: str | None = None
) -> int:
    """How many customers `list_customers` would page through with the same `search`."""
    statement = select(func.count()).select_from(CUSTOMER_TABLE).where(CUSTOMER.shop_id == shop_id)
    condition = _search(shop_id, search)
    if condition is not None:
        statement = statement.where(condition)
    return int((await rows(session, statement))[0][0])


async def get_customers(
    session: AsyncSession, shop_id: ShopId, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, CustomerRow]:
    """The shop's customers among `ids`; IDs of other shops are simply absent."""
    if not ids:
        return {}
    statement = _customers_among(dialect_of(session))
    found = await rows(session, statement, {SHOP_ID: shop_id, "ids": list(ids)})
    return {row.id: row for row in (CustomerRow(*r) for r in found)}


async def identities_by_customer(
    session: AsyncSession, shop_id: ShopId, customer_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[IdentityRow]]:
    """Each customer's identities, oldest first; customers without any map to `[]`."""
    found: dict[uuid.UUID, list[IdentityRow]] = {customer_id: [] for customer_id in customer_ids}
    if not found:
        return found
    statement = _identities_of_customers(dialect_of(session))
    for row in await rows(session, statement, {SHOP_ID: shop_id, "ids": list(found)}):
        identity = IdentityRow(*row)
        found[identity.customer_id].append(identity)
    return found


async def get_identities(
    session: AsyncSession, shop_id: ShopId, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, IdentityRow]:
    """The shop's identities among `ids`; IDs of other shops are simply absent."""
    if not ids:
        return {}
    statement = _identities_among(dialect_of(session))
    found = await rows(session, statement, {SHOP_ID: shop_id, "ids": list(ids)})
    return {row.id: row for row in (IdentityRow(*r) for r in found)}
