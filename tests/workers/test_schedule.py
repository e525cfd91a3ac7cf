from datetime import timedelta

from sqlmodel import select

from domain.connection.models import Connection, ConnectionStatus
from domain.db import AsyncSession, utcnow
from domain.ids import ShopId
from domain.ingest import get_or_create_import_connection
from domain.jobs import Job
from domain.settings import Settings
from tests.factories.shop import make_shop
from tests.plugins.memory_mall.testing import add_connection
from tests.workers.conftest import RecordingJobQueue
from workers.context import WorkerContext
from workers.sync import schedule_syncs


async def test_due_mall_connections_are_synced_once(
    session: AsyncSession, worker_context: WorkerContext, recording_queue: RecordingJobQueue
) -> None:
    shop = await make_shop(session)
    now = utcnow()
    interval = worker_context["settings"].sync_interval_minutes
    never = await add_connection(session, shop, account="never")
    stale = await add_connection(session, shop, account="stale")
    stale.last_sync_at = now - timedelta(minutes=interval + 1)
    fresh = await add_connection(session, shop, account="fresh")
    fresh.last_sync_at = now - timedelta(minutes=interval - 1)
    running = await add_connection(session, shop, account="running")
    running.sync_lease_until = now + timedelta(minutes=5)
    broken = await add_connection(session, shop, account="broken")
    broken.status = ConnectionStatus.NEEDS_CREDENTIALS
    gone = await add_connection(session, shop, account="gone")
    gone.status = ConnectionStatus.DISCONNECTED
    await get_or_create_import_connection(session, ShopId(shop.id), "memory")
    await session.commit()
    ours = {c.id for c in (await session.exec(select(Connection))).all() if c.shop_id == shop.id}

    await schedule_syncs(worker_context)
    await schedule_syncs(worker_context)

    sent = [r for r in recording_queue.sent if r.kwargs.get("shop_id") == str(shop.id)]
    assert {r.job for r in sent} == {Job.SYNC_CONNECTION}
    assert [r.job_id for r in sent] == [
        f"sync_connection:{never.id}",
        f"sync_connection:{stale.id}",
    ] * 2
    assert {r.kwargs["connection_id"] for r in sent} < {str(i) for i in ours}


def test_the_sync_interval_defaults_to_five_minutes() -> None:
    assert Settings(_env_file=None).sync_interval_minutes == 5
