"""Subscriptions (定期購入) keyed by (connection, external id), and their events, stored once per
(subscription, dedup key)."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from domain.db import AsyncSession
from domain.errors import InvalidInput
from domain.ids import new_id
from domain.ingest.context import Counts, IngestContext, Touched, is_older, newest_by_key
from domain.ingest.customers import Buyer
from domain.ingest.statements import (
    chunked,
    fetch_all,
    guarded_upsert,
    insert_or_ignore,
    insert_rows,
    one_of,
    returning_many,
    table_of,
)
from domain.platforms import SubscriptionEventRecord, SubscriptionRecord
from domain.subscription.models import Subscription, SubscriptionEvent

_SUBSCRIPTION = table_of(Subscription)
_EVENT = table_of(SubscriptionEvent)

# Where `started_at` sits among the compared (stored) values.
_STARTED_AT = 5
_COMPARED = (
    "customer_id",
    "identity_id",
    "status",
    "interval_days",
    "product_title",
    "started_at",
    "cancelled_at",
    "next_delivery_at",
    "source_updated_at",
)


@dataclass(frozen=True, slots=True)
class SubscriptionRef:
    subscription_id: uuid.UUID
    customer_id: uuid.UUID


async def _load(
    session: AsyncSession, context: IngestContext, external_ids: Sequence[str]
) -> dict[str, tuple[uuid.UUID, tuple[Any, ...]]]:
    stored: dict[str, tuple[uuid.UUID, tuple[Any, ...]]] = {}
    for chunk in chunked(external_ids):
        subscription = _SUBSCRIPTION.c
        statement = select(
            subscription.external_id,
            subscription.id,
            *(subscription[name] for name in _COMPARED),
        ).where(
            subscription.shop_id == context.shop_id,
            subscription.connection_id == context.connection_id,
            one_of(session, subscription.external_id, chunk),
        )
        for external_id, subscription_id, *values in await fetch_all(session, statement):
            stored[external_id] = (subscription_id, tuple(values))
    return stored


def _row(
    context: IngestContext,
    subscription_id: uuid.UUID,
    buyer: Buyer,
    record: SubscriptionRecord,
) -> dict[str, Any]:
    return {
        "shop_id": context.shop_id,
        "id": subscription_id,
        "connection_id": context.connection_id,
        "customer_id": buyer.customer_id,
        "identity_id": buyer.identity_id,
        "external_id": record.external_id,
        "status": record.status.value,
        "interval_days": record.interval_days,
        "product_title": record.product_title[:500],
        "started_at": record.started_at,
        "cancelled_at": record.cancelled_at,
        "next_delivery_at": record.next_delivery_at,
        "source_updated_at": record.source_updated_at,
        "created_at": context.now,
    }


async def upsert_subscriptions(
    session: AsyncSession,
    context: IngestContext,
    records: Sequence[SubscriptionRecord],
    buyers: Mapping[str, Buyer],
    touched: Touched,
) -> tuple[dict[str, SubscriptionRef], Counts]:
    """Insert new subscriptions, update changed ones unless older; refs of all of them.

    `started_at` only ever moves earlier: the earliest start any version carried is kept
    (Amazon emits one record per Subscribe & Save order, each "starting" at its order).
    """
    newest = newest_by_key((record.external_id, record) for record in records)
    earliest: dict[str, datetime] = {}
    for record in records:
        known = earliest.get(record.external_id)
        if known is None or record.started_at < known:
            earliest[record.external_id] = record.started_at
    stored = await _load(session, context, sorted(newest))
    refs: dict[str, SubscriptionRef] = {}
    new_rows: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    earlier_starts: list[dict[str, Any]] = []
    unchanged = 0
    for external_id, record in newest.items():
        buyer = buyers[record.customer_external_id]
        found = stored.get(external_id)
        if found is None:
            row = _row(context, new_id(), buyer, record)
            row["started_at"] = earliest[external_id]
            new_rows.append(row)
            refs[external_id] = SubscriptionRef(row["id"], buyer.customer_id)
            continue
        subscription_id, values = found
        stored_customer, *_, stored_updated_at = values
        stored_start: datetime = values[_STARTED_AT]
        refs[external_id] = SubscriptionRef(subscription_id, stored_customer)
        row = _row(context, subscription_id, buyer, record)
        row["started_at"] = min(earliest[external_id], stored_start)
        if is_older(record.source_updated_at, stored_updated_at) or values == tuple(
            row[name] for name in _COMPARED
        ):
            unchanged += 1
            if row["started_at"] < stored_start:
                # An older version that knew of an earlier start: only the start moves.
                earlier_starts.append({"key": external_id, "start": row["started_at"]})
                touched.add((stored_customer,))
        else:
            changed.append(row)

    await insert_rows(session, _SUBSCRIPTION, new_rows)
    if earlier_starts:
        subscription = _SUBSCRIPTION.c
        move_start = (
            _SUBSCRIPTION.update()
            .where(
                subscription.shop_id == context.shop_id,
                subscription.connection_id == context.connection_id,
                subscription.external_id == bindparam("key"),
                subscription.started_at > bindparam("start"),
            )
            .values(started_at=bindparam("start"))
        )
        await session.exec(move_start, params=earlier_starts)
    statement = guarded_upsert(
        session,
        _SUBSCRIPTION,
        keys=("shop_id", "connection_id", "external_id"),
        update=_COMPARED,
        guard="source_updated_at",
    ).returning(_SUBSCRIPTION.c.external_id)
    updated = set(await returning_many(session, statement, changed))
    for row in changed:
        if row["external_id"] in updated:
            refs[row["external_id"]] = SubscriptionRef(row["id"], row["customer_id"])
    touched.add(row["customer_id"] for row in new_rows)
    touched.add(refs[external_id].customer_id for external_id in updated)
    counts = Counts(len(new_rows), len(updated), unchanged + len(changed) - len(updated))
    return refs, counts


async def _resolve(
    session: AsyncSession,
    context: IngestContext,
    refs: Mapping[str, SubscriptionRef],
    external_ids: Sequence[str],
) -> dict[str, SubscriptionRef]:
    resolved = {key: refs[key] for key in external_ids if key in refs}
    missing = sorted(set(external_ids) - resolved.keys())
    for chunk in chunked(missing):
        subscription = _SUBSCRIPTION.c
        statement = select(
            subscription.external_id, subscription.id, subscription.customer_id
        ).where(
            subscription.shop_id == context.shop_id,
            subscription.connection_id == context.connection_id,
            one_of(session, subscription.external_id, chunk),
        )
        for external_id, subscription_id, customer_id in await fetch_all(session, statement):
            resolved[external_id] = SubscriptionRef(subscription_id, customer_id)
    unknown = sorted(set(missing) - resolved.keys())
    if unknown:
        shown = ", ".join(repr(key) for key in unknown[:5])
        raise InvalidInput(
            f"{len(unknown)} subscription event(s) refer to unknown subscriptions: {shown}",
            field="subscription_events",
        )
    return resolved


async def insert_subscription_events(
    session: AsyncSession,
    context: IngestContext,
    records: Sequence[SubscriptionEventRecord],
    refs: Mapping[str, SubscriptionRef],
    touched: Touched,
) -> Counts:
    """Store events not seen before; a known dedup key is a no-op, whatever it carries now."""
    events: dict[tuple[str, str], SubscriptionEventRecord] = {}
    for record in records:
        events.setdefault((record.subscription_external_id, record.dedup_key), record)
    resolved = await _resolve(session, context, refs, sorted({key for key, _ in events}))
    rows = [
        {
            "shop_id": context.shop_id,
            "id": new_id(),
            "subscription_id": resolved[subscription_key].subscription_id,
            "dedup_key": dedup_key[:200],
            "kind": record.kind.value,
            "occurred_at": record.occurred_at,
            "reason": record.reason,
        }
        for (subscription_key, dedup_key), record in events.items()
    ]
    statement = insert_or_ignore(
        session, _EVENT, ("shop_id", "subscription_id", "dedup_key")
    ).returning(_EVENT.c.subscription_id)
    inserted: list[uuid.UUID] = await returning_many(session, statement, rows)
    by_id = {ref.subscription_id: ref.customer_id for ref in resolved.values()}
    touched.add(by_id[subscription_id] for subscription_id in inserted)
    return Counts(inserted=len(inserted), unchanged=len(records) - len(inserted))
