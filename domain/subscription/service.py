"""Reads of subscriptions (定期購入) and their events, for batched lookups.

Reads return frozen rows (not ORM objects), like `domain.customer.service`. Every query is
scoped by `shop_id` and built once (see `domain.queries`).
"""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, Table, select

from domain.db import AsyncSession
from domain.ids import ShopId
from domain.queries import SHOP_ID, among, dialect_of, rows, shop_of
from domain.subscription.models import (
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
)

SUBSCRIPTION_TABLE: Table = Subscription.__table__  # type: ignore[attr-defined]
SUBSCRIPTION = SUBSCRIPTION_TABLE.c
EVENT_TABLE: Table = SubscriptionEvent.__table__  # type: ignore[attr-defined]
EVENT = EVENT_TABLE.c


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    id: uuid.UUID
    customer_id: uuid.UUID
    external_id: str
    status: SubscriptionStatus
    interval_days: int
    product_title: str
    started_at: datetime
    cancelled_at: datetime | None
    next_delivery_at: datetime | None


@dataclass(frozen=True, slots=True)
class SubscriptionEventRow:
    subscription_id: uuid.UUID
    kind: SubscriptionEventKind
    occurred_at: datetime
    reason: str | None


_SUBSCRIPTION_COLUMNS = [SUBSCRIPTION[f.name] for f in fields(SubscriptionRow)]
_EVENT_COLUMNS = [EVENT[f.name] for f in fields(SubscriptionEventRow)]


def _subscription(row: Sequence[Any]) -> SubscriptionRow:
    values = list(row)
    values[3] = SubscriptionStatus(values[3])
    return SubscriptionRow(*values)


@cache
def _subscriptions_of_customers(dialect: str) -> Select[Any]:
    return (
        select(*_SUBSCRIPTION_COLUMNS)
        .where(shop_of(SUBSCRIPTION.shop_id), among(SUBSCRIPTION.customer_id, "ids", dialect))
        .order_by(SUBSCRIPTION.customer_id, SUBSCRIPTION.started_at, SUBSCRIPTION.id)
    )


@cache
def _subscriptions_among(dialect: str) -> Select[Any]:
    return select(*_SUBSCRIPTION_COLUMNS).where(
        shop_of(SUBSCRIPTION.shop_id), among(SUBSCRIPTION.id, "ids", dialect)
    )


@cache
def _events_of_subscriptions(dialect: str) -> Select[Any]:
    return (
        select(*_EVENT_COLUMNS)
        .where(shop_of(EVENT.shop_id), among(EVENT.subscription_id, "ids", dialect))
        .order_by(EVENT.subscription_id, EVENT.occurred_at, EVENT.id)
    )


async def subscriptions_by_customer(
    session: AsyncSession, shop_id: ShopId, customer_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[SubscriptionRow]]:
    """Each customer's subscriptions, oldest first; customers without any map to `[]`."""
    found: dict[uuid.UUID, list[SubscriptionRow]] = {key: [] for key in customer_ids}
    if not found:
        return found
    statement = _subscriptions_of_customers(dialect_of(session))
    for row in await rows(session, statement, {SHOP_ID: shop_id, "ids": list(found)}):
        subscription = _subscription(row)
        found[subscription.customer_id].append(subscription)
    return found


async def get_subscriptions(
    session: AsyncSession, shop_id: ShopId, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, SubscriptionRow]:
    """The shop's subscriptions among `ids`; IDs of other shops are simply absent."""
    if not ids:
        return {}
    statement = _subscriptions_among(dialect_of(session))
    found = await rows(session, statement, {SHOP_ID: shop_id, "ids": list(ids)})
    return {row.id: row for row in map(_subscription, found)}


async def events_by_subscription(
    session: AsyncSession, shop_id: ShopId, subscription_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[SubscriptionEventRow]]:
    """Each subscription's events in the order they happened; none maps to `[]`."""
    found: dict[uuid.UUID, list[SubscriptionEventRow]] = {key: [] for key in subscription_ids}
    if not found:
        return found
    statement = _events_of_subscriptions(dialect_of(session))
    parameters = {SHOP_ID: shop_id, "ids": list(found)}
    for subscription_id, kind, occurred_at, reason in await rows(session, statement, parameters):
        event = SubscriptionEventRow(
            subscription_id, SubscriptionEventKind(kind), occurred_at, reason
        )
        found[subscription_id].append(event)
    return found
