"""A shop's history as the risk model's columns, read with a few set-based statements.

Customers are numbered once, in one statement, into a temporary table (`risk_customer`:
UUID, index in UUID order, whether the customer was known by the cut-off); orders and
subscription events are then read joined to it, so each row arrives with its customer's index
and the numbering cannot drift between statements. On PostgreSQL the rows stream as binary
COPY into numpy (fixed-width records, parsed in bulk); on SQLite they are fetched as rows.

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
from domain.risk.copy import Kind, execute, read_columns
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
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True, slots=True)
class ShopHistory:
    """Customers (sorted 16-byte UUIDs; row i is customer index i) and their columns."""

    customer_ids: UuidArray
    orders: OrderColumns
    subscriptions: SubscriptionColumns

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
    in `zone`; order amounts are net of refunds.
    """
    await _number_customers(session, shop_id, before, customer_ids)
    ids, known = await _customers(session)
    order_rows = await read_columns(session, _orders_query(shop_id, before), _ORDER_RECORD)
    event_rows = await read_columns(session, _events_query(shop_id, before), _EVENT_RECORD)
    # Only on success: after an error the transaction is rolled back, the table with it.
    await execute(session, text(f"DROP TABLE IF EXISTS {NUMBERED.name}"))
    has_orders = np.bincount(order_rows["ix"], minlength=ids.shape[0]) > 0
    keep = known | has_orders
    index = np.cumsum(keep) - 1
    events_kept = keep[event_rows["ix"]]
    size = int(keep.sum())
    orders = order_columns(
        size,
        index[order_rows["ix"]],
        local_days(order_rows["at"], zone),
        order_rows["amount"],
        order_rows["quantity"],
        order_rows["state"],
    )
    subscriptions = subscription_columns(
        index[event_rows["ix"][events_kept]],
        local_days(event_rows["at"][events_kept], zone),
        event_rows["kind"][events_kept],
        size,
    )
    return ShopHistory(ids[keep], orders, _sorted_events(subscriptions))


async def _number_customers(
    session: AsyncSession,
    shop_id: ShopId,
    before: datetime,
    customer_ids: Sequence[uuid.UUID] | None,
) -> None:
    connection = await session.connection()
    await execute(session, text(f"DROP TABLE IF EXISTS {NUMBERED.name}"))
    await connection.run_sync(NUMBERED.create)
    customer = _CUSTOMER
    # Numbered in UUID order, so the index of a customer is the same on both backends.
    columns = (
        customer.c.id,
        func.row_number().over(order_by=customer.c.id) - 1,
        customer.c.created_at < before,
    )
    if customer_ids is None:
        query = select(*columns).where(customer.c.shop_id == shop_id)
        await session.exec(insert(NUMBERED).from_select(["id", "ix", "known"], query))
    else:
        # A few customers (one rescoring job): read, numbered here, written back in one go.
        found: list[tuple[uuid.UUID, bool]] = []
        for chunk in chunked(sorted(set(customer_ids))):
            query = select(customer.c.id, customer.c.created_at < before).where(
                customer.c.shop_id == shop_id, customer.c.id.in_(chunk)
            )
            found += [(row[0], bool(row[1])) for row in await fetch_all(session, query)]
        rows = [
            {"id": customer_id, "ix": ix, "known": known}
            for ix, (customer_id, known) in enumerate(sorted(found))
        ]
        if rows:
            await session.exec(insert(NUMBERED), params=rows)
    if dialect_name(session) == "postgresql":
        # A temporary table has no statistics until analysed: without them the planner guesses
        # a handful of rows and may join ten million orders to it by nested loops.
        await execute(session, text(f"ANALYZE {NUMBERED.name}"))
        # The join hashes every customer: in the default 4 MB it spills to disk in batches.
        await execute(session, text("SET LOCAL work_mem = '256MB'"))


def _orders_query(shop_id: ShopId, before: datetime) -> Select[Any]:
    order, numbered = _ORDER, NUMBERED
    state = case(
        {status.value: int(code) for status, code in ORDER_STATE.items()},
        value=order.c.status,
        # A status this code does not know is no purchase: never count what may be void.
        else_=int(OrderState.CANCELLED),
    )
    return (
        select(
            numbered.c.ix,
            order.c.ordered_at,
            order.c.total_amount - order.c.refunded_amount,
            order.c.item_quantity,
            cast(state, SmallInteger),
        )
        .join(numbered, numbered.c.id == order.c.customer_id)
        .where(order.c.shop_id == shop_id, order.c.ordered_at < before)
    )


def _events_query(shop_id: ShopId, before: datetime) -> Select[Any]:
    event, subscription, numbered = _EVENT, _SUBSCRIPTION, NUMBERED
    kind = case(
        {kind.value: int(code) for kind, code in SUBSCRIPTION_SIGN.items()},
        value=event.c.kind,
        else_=-1,
    )
    return (
        select(numbered.c.ix, event.c.occurred_at, cast(kind, SmallInteger))
        .select_from(event)
        .join(
            subscription,
            and_(
                subscription.c.shop_id == event.c.shop_id,
                subscription.c.id == event.c.subscription_id,
            ),
        )
        .join(numbered, numbered.c.id == subscription.c.customer_id)
        .where(event.c.shop_id == shop_id, event.c.occurred_at < before, kind >= 0)
    )


_CUSTOMER_RECORD = (("id", Kind.UUID), ("known", Kind.BOOL))
_ORDER_RECORD = (
    ("ix", Kind.INT4),
    ("at", Kind.TIMESTAMP),
    ("amount", Kind.INT8),
    ("quantity", Kind.INT4),
    ("state", Kind.INT2),
)
_EVENT_RECORD = (("ix", Kind.INT4), ("at", Kind.TIMESTAMP), ("kind", Kind.INT2))


async def _customers(session: AsyncSession) -> tuple[UuidArray, NDArray[np.bool_]]:
    query = select(NUMBERED.c.id, NUMBERED.c.known).order_by(NUMBERED.c.ix)
    records = await read_columns(session, query, _CUSTOMER_RECORD)
    return records["id"].copy(), records["known"].copy()


def _sorted_events(events: SubscriptionColumns) -> SubscriptionColumns:
    """Events in (customer, day, kind) order: sums over them then never depend on row order."""
    order = np.lexsort((events.kind, events.day, events.customer))
    return SubscriptionColumns(events.customer[order], events.day[order], events.kind[order])
