"""Which connections are due a sync: the fan-out the scheduler runs every minute.

Besides the incremental syncs, every backfilled connection is due a reconciliation once a day:
a re-read of the last `Settings.sync_reconcile_days` days, because webhooks can be lost and
the malls' incremental lists miss changes (Shopify's lagging search index, Amazon's getOrders
leaving orders out). It waits until the connection's syncs are at rest:
a reconciliation starts its own window, so it must not overtake a window still being read.
"""

import uuid
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists
from sqlmodel import col, or_, select

from domain.connection.accounts import enqueue_sync
from domain.connection.models import Connection, ConnectionStatus, SyncKind, SyncRun
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest import IMPORT_ACCOUNT_ID
from domain.jobs import Job, Jobs

# A connection is reconciled again once its last reconciliation started this long ago.
RECONCILE_EVERY = timedelta(hours=24)
# Reconciliations enqueued per fan-out, so that a day's (or a deployment's) worth of them
# spreads over the minutes instead of queueing up ahead of every incremental sync.
RECONCILES_PER_RUN = 10


async def schedule_syncs(
    session: AsyncSession, jobs: Jobs, *, now: datetime, interval_minutes: int
) -> int:
    """Enqueue a sync of every ACTIVE mall connection (of every shop) last synced at least
    `interval_minutes` ago and not being synced; CSV-import connections never are.

    The job id names the connection, so a sync still queued or running is not enqueued twice,
    whoever runs this and however often. Returns how many were enqueued.
    """
    due = now - timedelta(minutes=interval_minutes)
    statement = (
        select(Connection.shop_id, Connection.id)
        .where(
            Connection.status == ConnectionStatus.ACTIVE,
            Connection.external_account_id != IMPORT_ACCOUNT_ID,
            or_(col(Connection.last_sync_at).is_(None), col(Connection.last_sync_at) <= due),
            or_(col(Connection.sync_lease_until).is_(None), col(Connection.sync_lease_until) < now),
        )
        .order_by(col(Connection.last_sync_at).is_not(None), col(Connection.last_sync_at))
    )
    found = (await session.exec(statement)).all()
    for shop_id, connection_id in found:
        enqueue_sync(jobs, ShopId(shop_id), connection_id)
    return len(found)


def _reconciliation_due(now: datetime) -> list[ColumnElement[bool]]:
    runs = (
        col(SyncRun.shop_id) == col(Connection.shop_id),
        col(SyncRun.connection_id) == col(Connection.id),
    )
    recently_reconciled = exists().where(
        *runs,
        col(SyncRun.kind) == SyncKind.RECONCILE.value,
        col(SyncRun.started_at) > now - RECONCILE_EVERY,
    )
    # A run started after the last complete sync is running, failed or was cut short: its
    # cursor may stand mid-window, and the next sync must finish that window first.
    unsettled = exists().where(*runs, col(SyncRun.started_at) > col(Connection.last_sync_at))
    return [
        col(Connection.status) == ConnectionStatus.ACTIVE,
        col(Connection.external_account_id) != IMPORT_ACCOUNT_ID,
        col(Connection.backfilled_at).is_not(None),
        col(Connection.last_sync_at).is_not(None),
        or_(col(Connection.sync_lease_until).is_(None), col(Connection.sync_lease_until) < now),
        ~recently_reconciled,
        ~unsettled,
    ]


def reconcile_job_id(connection_id: uuid.UUID, now: datetime) -> str:
    """One reconciliation job per connection and UTC day."""
    return f"reconcile_connection:{connection_id}:{now.date().isoformat()}"


async def schedule_reconciliations(
    session: AsyncSession,
    jobs: Jobs,
    *,
    now: datetime,
    limit: int = RECONCILES_PER_RUN,
    skip_platforms: Collection[str] = (),
) -> int:
    """Enqueue a reconciliation of up to `limit` connections that are due one: ACTIVE mall
    connections whose backfill is complete, whose last sync completed (no run started since),
    not being synced and not reconciled in the last 24 hours, and not of `skip_platforms`
    (those that re-read nothing, see `domain.platforms.reconcile_days`). Returns how many
    were enqueued.

    Nothing is written: the run the job opens is what makes the connection not due. A job
    still queued is not enqueued twice (one job id per connection and UTC day); one skipped
    because another sync held the connection leaves no run, so a later fan-out sends it again.
    """
    statement = (
        select(Connection.shop_id, Connection.id)
        .where(*_reconciliation_due(now), col(Connection.platform).not_in(list(skip_platforms)))
        .order_by(col(Connection.id))
        .limit(limit)
    )
    found = (await session.exec(statement)).all()
    for shop_id, connection_id in found:
        jobs.enqueue(
            Job.RECONCILE_CONNECTION,
            _job_id=reconcile_job_id(connection_id, now),
            shop_id=str(shop_id),
            connection_id=str(connection_id),
        )
    return len(found)


async def reconciliation_due(
    session: AsyncSession, shop_id: ShopId, connection_id: uuid.UUID, *, now: datetime
) -> str | None:
    """The connection's platform when it is (still) due a reconciliation, as
    `schedule_reconciliations` decides, else None; a job checks again before it starts, as a
    duplicate may run after the first."""
    statement = select(Connection.platform).where(
        Connection.shop_id == shop_id, Connection.id == connection_id, *_reconciliation_due(now)
    )
    platform: str | None = (await session.exec(statement)).first()
    return platform
