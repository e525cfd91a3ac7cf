"""A shop's history as the risk model's columns, read with a few set-based statements.

A whole shop: customers are numbered once, in one statement, into a temporary table
(`risk_customer`: UUID, index in UUID order, whether the customer was known by the cut-off,
their first product if their first purchase came before it); orders and subscription events
are then read joined to it, so each row arrives with its customer's index and the numbering
cannot drift between statements.
On PostgreSQL the rows stream as binary COPY into numpy (fixed-width records, parsed in bulk).

A few customers (a rescoring job): three indexed queries by customer id, no temporary table,
so one customer's history costs a few milliseconds.

A customer belongs to the history as of a cut-off when they were created before it or have an
order before it: a backfill at a past date sees neither later orders nor later customers.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Integer,
    MetaData,
    Select,
    SmallInteger,
    Table,
    Uuid,
    and_,
    case,
    cast,
    func,
    insert,
    select,
    text,
)

from domain.customer.models import Customer
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest.statements import chunked, dialect_name, fetch_all, table_of
from domain.order.models import Order
from domain.risk.copy import Columns, Kind, execute, read_columns
from domain.risk.days import local_days
from domain.risk.history import (
    ORDER_STATE,
    SUBSCRIPTION_SIGN,
    OrderColumns,
    OrderState,
    SubscriptionColumns,
    order_columns,
    subscription_columns,
)
from domain.risk.segments import FirstProducts, first_products
from domain.subscription.models import Subscription, SubscriptionEvent

UuidArray = NDArray[np.void]

_CUSTOMER = table_of(Customer)
_ORDER = table_of(Order)
_SUBSCRIPTION = table_of(Subscription)
_EVENT = table_of(SubscriptionEvent)

NUMBERED = Table(
    "risk_customer",
    MetaData(),
    Column("id", Uuid, primary_key=True),
    Column("ix", Integer, nullable=False),
    Column("known", Boolean, nullable=False),
    Column("first_product", Uuid),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True, slots=True)
class ShopHistory:
    """Customers (sorted 16-byte UUIDs; row i is customer index i) and their columns."""

    customer_ids: UuidArray
    orders: OrderColumns
    subscriptions: SubscriptionColumns
    first_products: FirstProducts

    @property
    def size(self) -> int:
        return int(self.customer_ids.shape[0])

    def customer_id(self, index: int) -> uuid.UUID:
        return uuid.UUID(bytes=self.customer_ids[index].tobytes())


async def load_history(
    session: AsyncSession,
    shop_id: ShopId,
    zone: ZoneInfo,
    *,
    before: datetime,
    customer_ids: Sequence[uuid.UUID] | None = None,
) -> ShopHistory:
    """Orders and subscription events before `before` of the shop's customers known by then.

    With `customer_ids`, only those customers (unknown ones are left out). Days are local days
    in `zone`; order amounts are net of refunds; first products as of `before` too.
    """
    if customer_ids is None:
        raw = await _read_shop(session, shop_id, before)
    else:
        raw = await _read_customers(session, shop_id, before, sorted(set(customer_ids)))
    has_orders = np.bincount(raw.orders["ix"], minlength=raw.ids.shape[0]) > 0
    keep = raw.known | has_orders
    index = np.cumsum(keep) - 1
    events_kept = keep[raw.events["ix"]]
    size = int(keep.sum())
    orders = order_columns(
        size,
        index[raw.orders["ix"]],
        local_days(raw.orders["at"], zone),
        raw.orders["amount"],
        raw.orders["quantity"],
        raw.orders["state"],
    )
    subscriptions = subscription_columns(
        index[raw.events["ix"][events_kept]],
        local_days(raw.events["at"][events_kept], zone),
        raw.events["kind"][events_kept],
        size,
    )
    # A customer with a first product has orders, so is kept.
    first = await first_products(
        session, shop_id, index[raw.firsts["ix"]], raw.firsts["product"], size
    )
    return ShopHistory(raw.ids[keep], orders, _sorted_events(subscriptions), first)


@dataclass(frozen=True, slots=True)
class _Raw:
    ids: UuidArray  # sorted
    known: NDArray[np.bool_]  # created before the cut-off
    orders: Columns  # ix, at, amount, quantity, state
    events: Columns  # ix, at, kind
    firsts: Columns  # ix, product: each customer's first product, where known


async def _read_shop(session: AsyncSession, shop_id: ShopId, before: datetime) -> _Raw:
    await execute(session, text(f"DROP TABLE IF EXISTS {NUMBERED.name}"))
    await (await session.connection()).run_sync(NUMBERED.create)
    customer = _CUSTOMER
    # Numbered in UUID order, so the index of a customer is the same on both backends.
    query = select(
        customer.c.id,
        func.row_number().over(order_by=customer.c.id) - 1,
        customer.c.created_at < before,
        _first_product_before(before),
    ).where(customer.c.shop_id == shop_id)
    await session.exec(insert(NUMBERED).from_select(["id", "ix", "known", "first_product"], query))
    if dialect_name(session) == "postgresql":
        # A temporary table has no statistics until analysed: without them the planner guesses
        # a handful of rows and may join ten million orders to it by nested loops.
        await execute(session, text(f"ANALYZE {NUMBERED.name}"))
        # The join hashes every customer: in the default 4 MB it spills to disk in batches.
        await execute(session, text("SET LOCAL work_mem = '256MB'"))
    numbered = NUMBERED
    customers = await read_columns(
        session,
        select(numbered.c.id, numbered.c.known).order_by(numbered.c.ix),
        (("id", Kind.UUID), ("known", Kind.BOOL)),
    )
    orders = await read_columns(
        session,
        _orders_query(shop_id, before, numbered.c.ix).join(
            numbered, numbered.c.id == _ORDER.c.customer_id
        ),
        _ORDER_RECORD,
    )
    events = await read_columns(
        session,
        _events_query(shop_id, before, numbered.c.ix).join(
            numbered, numbered.c.id == _SUBSCRIPTION.c.customer_id
        ),
        _EVENT_RECORD,
    )
    firsts = await read_columns(
        session,
        select(numbered.c.ix, numbered.c.first_product).where(
            numbered.c.first_product.is_not(None)
        ),
        _FIRST_RECORD,
    )
    # Only on success: after an error the transaction is rolled back, the table with it.
    await execute(session, text(f"DROP TABLE IF EXISTS {NUMBERED.name}"))
    return _Raw(customers["id"], customers["known"], orders, events, firsts)


async def _read_customers(
    session: AsyncSession, shop_id: ShopId, before: datetime, customer_ids: list[uuid.UUID]
) -> _Raw:
    customer, order, subscription = _CUSTOMER, _ORDER, _SUBSCRIPTION
    found: list[tuple[uuid.UUID, bool, uuid.UUID | None]] = []
    orders: list[Columns] = []
    events: list[Columns] = []
    # At least one (maybe empty) chunk, so the columns exist with their types.
    for chunk in list(chunked(customer_ids)) or [[]]:
        query = select(
            customer.c.id, customer.c.created_at < before, _first_product_before(before)
        ).where(customer.c.shop_id == shop_id, customer.c.id.in_(chunk))
        found += [(row[0], bool(row[1]), row[2]) for row in await fetch_all(session, query)]
        orders.append(
            await read_columns(
                session,
                _orders_query(shop_id, before, order.c.customer_id).where(
                    order.c.customer_id.in_(chunk)
                ),
                (("customer", Kind.UUID), *_ORDER_RECORD[1:]),
                bulk=False,
            )
        )
        events.append(
            await read_columns(
                session,
                _events_query(shop_id, before, subscription.c.customer_id).where(
                    subscription.c.customer_id.in_(chunk)
                ),
                (("customer", Kind.UUID), *_EVENT_RECORD[1:]),
                bulk=False,
            )
        )
    found.sort()
    ids = np.array([customer_id.bytes for customer_id, _, _ in found], dtype="S16")
    known = np.array([flag for _, flag, _ in found], dtype=np.bool_)
    with_product = [(ix, product) for ix, (_, _, product) in enumerate(found) if product]
    firsts: Columns = {
        "ix": np.array([ix for ix, _ in with_product], dtype=np.int64),
        "product": np.array([p.bytes for _, p in with_product], dtype="S16").view("V16"),
    }
    return _Raw(ids.view("V16"), known, _indexed(orders, ids), _indexed(events, ids), firsts)


def _indexed(parts: list[Columns], ids: NDArray[np.bytes_]) -> Columns:
    """Chunks of rows keyed by customer UUID, as one set keyed by index into sorted `ids`."""
    names = list(parts[0])
    joined = {name: np.concatenate([part[name] for part in parts]) for name in names}
    keys = joined.pop("customer").view("S16")
    # Every row's customer is among `ids`: the queries asked for those customers only.
    joined["ix"] = np.searchsorted(ids, keys).astype(np.int64)
    return joined


def _first_product_before(before: datetime) -> ColumnElement[Any]:
    """The customer's first product, if their first purchase came before `before`."""
    customer = _CUSTOMER.c
    return case((customer.first_order_at < before, customer.first_product_id), else_=None)


def _orders_query(shop_id: ShopId, before: datetime, key: ColumnElement[Any]) -> Select[Any]:
    """The shop's orders before `before`: `key` columns, then time, net amount, items, state."""
    order = _ORDER
    state = case(
        {status.value: int(code) for status, code in ORDER_STATE.items()},
        value=order.c.status,
        # A status this code does not know is no purchase: never count what may be void.
        else_=int(OrderState.CANCELLED),
    )
    return select(
        key,
        order.c.ordered_at,
        order.c.total_amount - order.c.refunded_amount,
        order.c.item_quantity,
        cast(state, SmallInteger),
    ).where(order.c.shop_id == shop_id, order.c.ordered_at < before)


def _events_query(shop_id: ShopId, before: datetime, key: ColumnElement[Any]) -> Select[Any]:
    """The shop's subscription events before `before`: `key`, then time and sign code."""
    event, subscription = _EVENT, _SUBSCRIPTION
    kind = case(
        {kind.value: int(code) for kind, code in SUBSCRIPTION_SIGN.items()},
        value=event.c.kind,
        else_=-1,
    )
    return (
        select(key, event.c.occurred_at, cast(kind, SmallInteger))
        .select_from(event)
        .join(
            subscription,
            and_(
                subscription.c.shop_id == event.c.shop_id,
                subscription.c.id == event.c.subscription_id,
            ),
        )
        .where(event.c.shop_id == shop_id, event.c.occurred_at < before, kind >= 0)
    )


_ORDER_RECORD = (
    ("ix", Kind.INT4),
    ("at", Kind.TIMESTAMP),
    ("amount", Kind.INT8),
    ("quantity", Kind.INT4),
    ("state", Kind.INT2),
)
_EVENT_RECORD = (("ix", Kind.INT4), ("at", Kind.TIMESTAMP), ("kind", Kind.INT2))
_FIRST_RECORD = (("ix", Kind.INT4), ("product", Kind.UUID))


def _sorted_events(events: SubscriptionColumns) -> SubscriptionColumns:
    """Events in (customer, day, kind) order: sums over them then never depend on row order."""
    order = np.lexsort((events.kind, events.day, events.customer))
    return SubscriptionColumns(events.customer[order], events.day[order], events.kind[order])
