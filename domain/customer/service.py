"""Reads of customers and their identities, for listings and batched lookups.

Reads return frozen rows (not ORM objects): a page of customers with their orders is read
often, and Core rows cost a fraction of mapped instances. Every query is scoped by `shop_id`;
the ones every page runs are built once (see `domain.queries`).

Listings may filter by risk band and shown sign (a join with `risk_score` on (shop,
customer)) and sort by the current risk. Customers without a probability (never scored, or not
scorable) sort last in both directions; never-scored ones match no band or sign filter. A
sort that may be NULL (risk, last order) is read in two parts, customers with a value then the
others, so that a page of the first walks an index on (shop_id, value, id) — for risk
`risk_score (shop_id, probability, customer_id)` — from the cursor instead of sorting the
whole shop; the second part is read only when the first does not fill the page. A band filter
is a range of probability on that index (`band_condition`).
"""

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    tuple_,
)

from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.pagination import (
    CURSOR_ID,
    CURSOR_VALUE,
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
from domain.risk.bands import Band, band_condition, stored_thresholds
from domain.risk.models import RiskScore
from domain.risk.queries import shows_any
from domain.risk.signs import Sign

CUSTOMER_TABLE: Table = Customer.__table__  # type: ignore[attr-defined]
CUSTOMER = CUSTOMER_TABLE.c
IDENTITY_TABLE: Table = CustomerIdentity.__table__  # type: ignore[attr-defined]
IDENTITY = IDENTITY_TABLE.c
SCORE_TABLE: Table = RiskScore.__table__  # type: ignore[attr-defined]
SCORE = SCORE_TABLE.c
# Customers with their current score, if any: what risk filters read.
SCORED_CUSTOMERS: FromClause = CUSTOMER_TABLE.outerjoin(
    SCORE_TABLE, and_(SCORE.shop_id == CUSTOMER.shop_id, SCORE.customer_id == CUSTOMER.id)
)
# Scores with their customers: the risk order's first part, driven by the score index.
SCORES_WITH_CUSTOMERS: FromClause = SCORE_TABLE.join(
    CUSTOMER_TABLE, and_(CUSTOMER.shop_id == SCORE.shop_id, CUSTOMER.id == SCORE.customer_id)
)


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
class RankedCustomerRow(CustomerRow):
    """A customer listed by risk: the current P(no purchase), None when there is none."""

    risk_probability: float | None


@dataclass(frozen=True, slots=True)
class RiskFilter:
    """Customers whose current score is in one of `bands` and shows one of `signs` (see
    `domain.risk.signs.SHOWN_AT`); an empty collection does not filter."""

    bands: frozenset[Band] = field(default_factory=frozenset)
    signs: frozenset[Sign] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        return bool(self.bands or self.signs)


@dataclass(frozen=True, slots=True)
class IdentityRow:
    id: uuid.UUID
    customer_id: uuid.UUID
    connection_id: uuid.UUID
    platform: str
    external_id: str
    email: str | None
    email_masked: bool


RISK_NAME = "risk_probability"


class CustomerSort(StrEnum):
    CREATED_AT = "created_at"
    LAST_ORDER_AT = "last_order_at"
    TOTAL_SPENT = "total_spent"
    ORDER_COUNT = "order_count"
    NAME = "display_name"
    RISK = "risk_probability"


CUSTOMER_SORTS: dict[CustomerSort, SortColumn] = {
    CustomerSort.CREATED_AT: SortColumn("created_at", CUSTOMER.created_at, datetime),
    CustomerSort.LAST_ORDER_AT: SortColumn(
        "last_order_at", CUSTOMER.last_order_at, datetime, nullable=True
    ),
    CustomerSort.TOTAL_SPENT: SortColumn("total_spent", CUSTOMER.total_spent, int),
    CustomerSort.ORDER_COUNT: SortColumn("order_count", CUSTOMER.order_count, int),
    CustomerSort.NAME: SortColumn("display_name", CUSTOMER.display_name, str),
    CustomerSort.RISK: SortColumn(RISK_NAME, SCORE.probability, float, nullable=True),
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


def _risk_condition(shop_id: ShopId, risk: RiskFilter) -> ColumnElement[bool] | None:
    """The score's band and shown signs as `risk` asks; None when it asks for nothing."""
    conditions: list[ColumnElement[bool]] = []
    if risk.bands:
        scored = SCORE.customer_id.is_not(None)
        thresholds = stored_thresholds(shop_id)
        conditions.append(band_condition(SCORE.probability, scored, risk.bands, thresholds))
    if risk.signs:
        conditions.append(shows_any(SCORE.shown_signs, risk.signs))
    return and_(*conditions) if conditions else None


@cache
def _customer_page(sort: CustomerSort, shape: PageShape, scored: bool) -> Select[Any]:
    """A page's statement for a sort never NULL; `scored`: joined with the current scores."""
    column = CUSTOMER_SORTS[sort]
    statement = select(*_CUSTOMER_COLUMNS)
    if scored:
        statement = statement.select_from(SCORED_CUSTOMERS)
    return (
        statement.where(shop_of(CUSTOMER.shop_id), beyond_cursor(column, CUSTOMER.id, shape))
        .order_by(*order_by(column, CUSTOMER.id, shape))
        .limit(bindparam(FETCH))
    )


@dataclass(frozen=True, slots=True)
class _Split:
    """Where a nullable sort's two parts read: rows with a value (driven by the index on
    (shop, value, key)), rows without one; the row key and its shop column."""

    present: FromClause
    missing: FromClause
    key: ColumnElement[Any]
    shop: ColumnElement[Any]


def _split_of(sort: CustomerSort, scored: bool) -> _Split:
    if sort is CustomerSort.RISK:
        return _Split(SCORES_WITH_CUSTOMERS, SCORED_CUSTOMERS, SCORE.customer_id, SCORE.shop_id)
    source = SCORED_CUSTOMERS if scored else CUSTOMER_TABLE
    return _Split(source, source, CUSTOMER.id, CUSTOMER.shop_id)


def _selected(sort: CustomerSort) -> list[ColumnElement[Any]]:
    if sort is CustomerSort.RISK:
        return [*_CUSTOMER_COLUMNS, SCORE.probability.label(RISK_NAME)]
    return list(_CUSTOMER_COLUMNS)


@cache
def _present_part(sort: CustomerSort, shape: PageShape, scored: bool) -> Select[Any] | None:
    """Customers with a value of the (nullable) `sort` past the cursor, in fetch order; None
    when the cursor is among those without and the fetch goes on (every one with is before)."""
    if shape.null_cursor and not shape.backward:
        return None
    down = shape.descending != shape.backward
    value = CUSTOMER_SORTS[sort].column
    split = _split_of(sort, scored)
    key = split.key
    statement = (
        select(*_selected(sort))
        .select_from(split.present)
        .where(shop_of(split.shop), value.is_not(None))
    )
    if shape.null_cursor is False:
        cursor_value: ColumnElement[Any] = bindparam(CURSOR_VALUE, type_=value.type)
        cursor_id: ColumnElement[Any] = bindparam(CURSOR_ID, type_=key.type)
        # A row comparison: an index on (shop_id, value, id) starts at the cursor itself,
        # even inside a run of equal values (thousands of scores tie at the clip).
        position, cursor = tuple_(value, key), tuple_(cursor_value, cursor_id)
        statement = statement.where(position < cursor if down else position > cursor)
    order = (value.desc(), key.desc()) if down else (value.asc(), key.asc())
    return statement.order_by(*order).limit(bindparam(FETCH))


@cache
def _missing_part(sort: CustomerSort, shape: PageShape, scored: bool) -> Select[Any] | None:
    """Customers without a value of `sort` past the cursor, in fetch order (by id); None when
    the cursor is among those with one and the fetch goes back (every one without is after)."""
    if shape.null_cursor is False and shape.backward:
        return None
    down = shape.descending != shape.backward
    statement = (
        select(*_selected(sort))
        .select_from(_split_of(sort, scored).missing)
        .where(shop_of(CUSTOMER.shop_id), CUSTOMER_SORTS[sort].column.is_(None))
    )
    if shape.null_cursor:
        cursor_id: ColumnElement[Any] = bindparam(CURSOR_ID)
        statement = statement.where(CUSTOMER.id < cursor_id if down else CUSTOMER.id > cursor_id)
    return statement.order_by(CUSTOMER.id.desc() if down else CUSTOMER.id.asc()).limit(
        bindparam(FETCH)
    )


async def _split_rows(
    session: AsyncSession,
    sort: CustomerSort,
    request: PageRequest,
    parameters: dict[str, Any],
    conditions: list[ColumnElement[bool]],
    scored: bool,
) -> list[CustomerRow]:
    """The rows of a page by a nullable sort, in fetch order: the part the fetch starts in,
    then the other one only if the first did not fill it."""
    shape = request.shape
    parts = (_present_part(sort, shape, scored), _missing_part(sort, shape, scored))
    make = RankedCustomerRow if sort is CustomerSort.RISK else CustomerRow
    found: list[CustomerRow] = []
    fetch = int(parameters[FETCH])
    for statement in reversed(parts) if request.backward else parts:
        if statement is None or len(found) >= fetch:
            continue
        for condition in conditions:
            statement = statement.where(condition)
        read = await rows(session, statement, {**parameters, FETCH: fetch - len(found)})
        found += [make(*row) for row in read]
    return found


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
    risk: RiskFilter | None = None,
) -> Page[CustomerRow]:
    """One page of the shop's customers in `sort` order, narrowed by `search` and `risk`.

    By risk: P(no purchase) ascending (or descending), customers without a score last either
    way, ties by id, so cursors stay stable.
    """
    risk = risk or RiskFilter()
    parameters = {SHOP_ID: shop_id, **page_parameters(CUSTOMER_SORTS[sort], request)}
    conditions = [
        condition
        for condition in (_search(shop_id, search), _risk_condition(shop_id, risk))
        if condition is not None
    ]
    if CUSTOMER_SORTS[sort].nullable:
        split = await _split_rows(session, sort, request, parameters, conditions, bool(risk))
        return to_page(split, request)
    statement = _customer_page(sort, request.shape, bool(risk))
    for condition in conditions:
        statement = statement.where(condition)
    found = await rows(session, statement, parameters)
    return to_page([CustomerRow(*row) for row in found], request)


async def count_customers(
    session: AsyncSession,
    shop_id: ShopId,
    *,
    search: str | None = None,
    risk: RiskFilter | None = None,
) -> int:
    """How many customers `list_customers` would page through with the same filters."""
    risk = risk or RiskFilter()
    source = SCORED_CUSTOMERS if risk else CUSTOMER_TABLE
    statement = select(func.count()).select_from(source).where(CUSTOMER.shop_id == shop_id)
    for condition in (
        _search(shop_id, search),
        _risk_condition(shop_id, risk),
    ):
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
