import uuid
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from api.context import Info
from api.fields import field
from api.relay import Node, encode_id
from domain.connection.models import ConnectionStatus, SyncStatus
from domain.connection.service import (
    ConnectionRow,
    SyncRunRow,
    count_connection_rows,
    list_sync_runs,
)
from domain.sync.counts import SyncCounts

strawberry.enum(ConnectionStatus, name="ConnectionStatus")
strawberry.enum(SyncStatus, name="SyncRunStatus")

# Sync runs listed per connection at most.
MAX_SYNC_RUNS = 50


@strawberry.type(description="Rows that came in through one connection.")
class ConnectionCounts:
    orders: int
    customers: int = strawberry.field(description="Customer identities on this connection.")
    subscriptions: int


@strawberry.type(description="One sync of a connection: what it read and stored.")
class SyncRun:
    id: strawberry.ID
    kind: str = strawberry.field(
        description="backfill (the first sync, and the runs that continue it until the "
        "history is read), incremental, manual (with since), or reconcile (the daily re-read "
        "of a backfilled connection from since, a set number of days back, for changes the "
        "other syncs missed)."
    )
    since: datetime | None
    status: SyncStatus
    started_at: datetime
    finished_at: datetime | None
    pages: int
    requests: int
    orders_seen: int
    orders_inserted: int
    orders_updated: int
    customers_seen: int
    customers_inserted: int
    customers_updated: int
    subscriptions_seen: int
    subscriptions_inserted: int
    subscriptions_updated: int
    throttle_waits: int
    throttle_wait_seconds: float
    rejected: int
    errors: list[str] = strawberry.field(
        description="Records refused (kind, external id, problem), then the run's own failure."
    )
    backfill_progress: float | None = strawberry.field(
        description="Backfill runs: the connection's backfillProgress after this run's last "
        "stored page (a run continuing a backfill starts where the previous one left it); 1 "
        "when the run completed the backfill. Null for the other kinds of run, and while "
        "the mall has not estimated it."
    )

    @classmethod
    def from_row(cls, row: SyncRunRow) -> "SyncRun":
        counts = SyncCounts.from_json(row.counts)
        return cls(
            id=strawberry.ID(str(row.id)),
            kind=row.kind,
            since=row.since,
            status=row.status,
            started_at=row.started_at,
            finished_at=row.finished_at,
            pages=counts.pages,
            requests=counts.requests,
            orders_seen=counts.orders_seen,
            orders_inserted=counts.orders_inserted,
            orders_updated=counts.orders_updated,
            customers_seen=counts.customers_seen,
            customers_inserted=counts.customers_inserted,
            customers_updated=counts.customers_updated,
            subscriptions_seen=counts.subscriptions_seen,
            subscriptions_inserted=counts.subscriptions_inserted,
            subscriptions_updated=counts.subscriptions_updated,
            throttle_waits=counts.throttle_waits,
            throttle_wait_seconds=counts.throttle_wait_ms / 1000,
            rejected=counts.rejected,
            errors=list(row.errors),
            backfill_progress=row.backfill_progress,
        )


@strawberry.type(
    description="The shop's account on one mall (a Shopify store, a Rakuten shop, an Amazon "
    "seller account). Credentials are never readable."
)
class StoreConnection(Node):
    platform: str = strawberry.field(description="shopify, rakuten, amazon, or a plugin's name.")
    name: str
    status: ConnectionStatus
    last_sync_at: datetime | None
    last_error: str | None
    created_at: datetime
    external_account_id: str = strawberry.field(
        description="The account on the mall: Shopify shop domain, Rakuten shop URL, seller id."
    )
    base_url: str | None = strawberry.field(
        description="The API endpoint used instead of the mall's own (a sandbox), if any."
    )
    cursor: JSON = strawberry.field(
        description="Where the next incremental sync starts, as the platform wrote it; "
        "{} before the first sync."
    )
    backfilled_at: datetime | None = strawberry.field(
        description="When the first sync finished reading the history the mall allows."
    )
    backfill_progress: float | None = strawberry.field(
        description="Share of the history the backfill has read, from 0 to 1, as the mall "
        "estimates it (Shopify and Rakuten by the time span read so far; Amazon only at the "
        "end). Only rises, also across the jobs that continue a backfill; 1 once backfilledAt "
        "is set; null before the mall first estimates it."
    )
    webhook_path: str = strawberry.field(
        description="Where the mall sends this account's webhooks, on this API's host."
    )
    key: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: ConnectionRow) -> "StoreConnection":
        return cls(
            id=encode_id("StoreConnection", row.id),
            platform=row.platform,
            name=row.name,
            status=row.status,
            last_sync_at=row.last_sync_at,
            last_error=row.last_error,
            created_at=row.created_at,
            external_account_id=row.external_account_id,
            base_url=row.base_url,
            cursor=JSON(dict(row.cursors)),
            backfilled_at=row.backfilled_at,
            backfill_progress=row.backfill_progress,
            webhook_path=f"/webhooks/{row.platform}/{row.id}",
            key=row.id,
        )

    @field("Orders, customers and subscriptions stored for this connection.")
    async def counts(self, info: Info) -> ConnectionCounts:
        found = await info.context.run(count_connection_rows, self.key)
        return ConnectionCounts(
            orders=found.orders, customers=found.customers, subscriptions=found.subscriptions
        )

    @field("The latest sync runs, newest first (at most 50).")
    async def sync_runs(self, info: Info, first: int = 5) -> list[SyncRun]:
        limit = max(0, min(first, MAX_SYNC_RUNS))
        found = await info.context.run(list_sync_runs, self.key, limit=limit)
        return [SyncRun.from_row(row) for row in found]
