"""`syncProgress(connectionId)`: a connection's sync, page by page, then its end."""

import uuid
from collections.abc import AsyncIterator

import strawberry

from api.context import Info
from api.errors import Forbidden
from api.fields import subscription
from api.permissions import allowed_topics
from api.relay import decode_id_of, encode_id
from domain.connection.accounts import ConnectionNotFound
from domain.connection.service import get_connections
from domain.events import Event, Topic
from domain.sync.counts import SyncCounts


@strawberry.type(description="Totals of a running sync after each stored page, and at its end.")
class SyncProgress:
    connection_id: strawberry.ID
    run_id: strawberry.ID
    status: str = strawberry.field(description="running, then succeeded or failed.")
    pages: int
    orders_seen: int
    inserted: int = strawberry.field(description="Orders inserted.")
    updated: int = strawberry.field(description="Orders updated.")
    customers_seen: int
    subscriptions_seen: int
    throttle_waits: int
    rejected: int
    backfill_progress: float | None = strawberry.field(
        description="The backfill's progress after this page, or at the end (see "
        "StoreConnection.backfillProgress: only rises, 1 once the backfill is complete); null "
        "when the sync is not a backfill or the mall has not estimated it yet."
    )

    @classmethod
    def from_event(cls, event: Event) -> "SyncProgress":
        data = event.data
        counts = SyncCounts.from_json({k: v for k, v in data.items() if isinstance(v, int)})
        connection = decode_connection_key(str(data["connection_id"]))
        return cls(
            connection_id=encode_id("StoreConnection", connection),
            run_id=strawberry.ID(str(data["run_id"])),
            status=str(data["status"]),
            pages=counts.pages,
            orders_seen=counts.orders_seen,
            inserted=counts.orders_inserted,
            updated=counts.orders_updated,
            customers_seen=counts.customers_seen,
            subscriptions_seen=counts.subscriptions_seen,
            throttle_waits=counts.throttle_waits,
            rejected=counts.rejected,
            backfill_progress=_fraction(data.get("backfill_progress")),
        )


def _fraction(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def decode_connection_key(value: str) -> uuid.UUID:
    return uuid.UUID(value)


async def _progress(stream: AsyncIterator[Event], key: str) -> AsyncIterator[SyncProgress]:
    try:
        async for event in stream:
            if event.data.get("connection_id") == key:
                yield SyncProgress.from_event(event)
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


@strawberry.type
class ConnectionSubscription:
    @subscription("Progress of the connection's syncs, per stored page and at each end.")
    async def sync_progress(
        self, info: Info, connection_id: strawberry.ID
    ) -> AsyncIterator[SyncProgress]:
        context = info.context
        if Topic.SYNC_PROGRESS not in allowed_topics(context.role):
            raise Forbidden("this API key may not follow syncs")
        key = decode_id_of(connection_id, "StoreConnection", field="connectionId")
        async with context.sessions() as session:
            found = await get_connections(session, context.shop_id, [key])
        if key not in found:
            raise ConnectionNotFound("no such connection", field="connectionId")
        stream = context.events.subscribe(context.shop_id, Topic.SYNC_PROGRESS)
        return _progress(stream, str(key))
