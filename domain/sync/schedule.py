"""Which connections are due a sync: the fan-out the scheduler runs every minute."""

from datetime import datetime, timedelta

from sqlmodel import col, or_, select

from domain.connection.accounts import enqueue_sync
from domain.connection.models import Connection, ConnectionStatus
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest import IMPORT_ACCOUNT_ID
from domain.jobs import Jobs


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
