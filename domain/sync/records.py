"""Storing a batch of a connection's records so that one bad record never blocks the rest.

The batch goes in whole, in a savepoint. When the domain refuses it (`InvalidInput`), it goes
in again record by record, each in its own savepoint: the refused ones are reported, the rest
land, and no record is ever half stored.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from domain.db import AsyncSession
from domain.errors import InvalidInput
from domain.ids import ConnectionId, CustomerId, ShopId
from domain.ingest import IngestResult, ingest_batch
from domain.platforms import RecordBatch
from domain.sync.counts import SyncCounts, stored


@dataclass(frozen=True, slots=True)
class StoredRecords:
    counts: SyncCounts
    # `kind external_id: problem` for each record the domain refused.
    errors: tuple[str, ...]
    touched_customer_ids: frozenset[CustomerId]


def _one_by_one(batch: RecordBatch) -> Iterator[tuple[str, str, RecordBatch]]:
    # Customers first: orders and subscriptions find them already stored.
    for customer in batch.customers:
        yield "customer", customer.external_id, RecordBatch(customers=(customer,))
    for subscription in batch.subscriptions:
        yield "subscription", subscription.external_id, RecordBatch(subscriptions=(subscription,))
    for order in batch.orders:
        yield "order", order.external_id, RecordBatch(orders=(order,))
    for event in batch.subscription_events:
        key = f"{event.subscription_external_id}/{event.dedup_key}"
        yield "subscription_event", key, RecordBatch(subscription_events=(event,))


async def store_records(
    session: AsyncSession, shop_id: ShopId, connection_id: ConnectionId, batch: RecordBatch
) -> StoredRecords:
    """Ingest `batch`; records the domain refuses are reported in `errors`, never raised."""
    if not len(batch):
        return StoredRecords(SyncCounts(), (), frozenset())
    try:
        async with session.begin_nested():
            result = await ingest_batch(session, shop_id, connection_id, batch)
        return StoredRecords(stored(result), (), result.touched_customer_ids)
    except InvalidInput:
        pass
    counts = SyncCounts()
    errors: list[str] = []
    touched: set[CustomerId] = set()
    for kind, external_id, single in _one_by_one(batch):
        try:
            async with session.begin_nested():
                one: IngestResult = await ingest_batch(session, shop_id, connection_id, single)
        except InvalidInput as refusal:
            errors.append(f"{kind} {external_id}: {refusal.message}")
            continue
        counts += stored(one)
        touched |= one.touched_customer_ids
    return StoredRecords(
        counts + SyncCounts(rejected=len(errors)), tuple(errors), frozenset(touched)
    )
