from datetime import datetime, timedelta

import httpx
from sqlmodel import col, select

from domain.connection.models import Connection, ConnectionStatus, SyncKind, SyncRun, SyncStatus
from domain.db import AsyncSession, utcnow
from domain.ids import ShopId
from domain.ingest import get_or_create_import_connection
from domain.jobs import Job
from domain.platforms import reconcile_days
from domain.settings import Settings
from domain.sync.lease import acquire_lease, release_lease
from domain.sync.schedule import reconciliation_due
from integrations.amazon.platform import AmazonPlatform
from integrations.rakuten.platform import RakutenPlatform
from tests.factories.shop import make_shop
from tests.plugins.memory_mall import MemoryPlatform
from tests.plugins.memory_mall.testing import ACCOUNT, TOKEN, add_connection, history
from tests.workers.conftest import RecordingJobQueue
from workers.context import WorkerContext
from workers.sync import run_reconcile, run_sync, schedule_syncs


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


async def _run(
    session: AsyncSession, connection: Connection, kind: SyncKind, started_at: datetime
) -> None:
    run = SyncRun(shop_id=connection.shop_id, connection_id=connection.id, kind=kind.value)
    run.started_at = started_at
    run.finished_at = started_at + timedelta(minutes=1)
    run.status = SyncStatus.SUCCEEDED
    session.add(run)
    await session.flush()


async def test_backfilled_connections_at_rest_are_reconciled_once_a_day(
    session: AsyncSession, worker_context: WorkerContext, recording_queue: RecordingJobQueue
) -> None:
    shop = await make_shop(session)
    now = utcnow()
    synced = now - timedelta(minutes=1)
    connections: dict[str, Connection] = {}
    for account in ("due", "yesterday", "today", "unsettled", "running", "backfilling", "broken"):
        connection = await add_connection(session, shop, account=account)
        connection.backfilled_at = now - timedelta(days=3)
        connection.last_sync_at = synced
        connections[account] = connection
    connections["backfilling"].backfilled_at = None
    connections["running"].sync_lease_until = now + timedelta(minutes=5)
    connections["broken"].status = ConnectionStatus.NEEDS_CREDENTIALS
    await _run(session, connections["yesterday"], SyncKind.RECONCILE, now - timedelta(hours=25))
    await _run(session, connections["today"], SyncKind.RECONCILE, now - timedelta(hours=23))
    # Cut short by its time budget (no `last_sync_at`): its window is still being read.
    await _run(
        session, connections["unsettled"], SyncKind.INCREMENTAL, synced + timedelta(seconds=30)
    )
    imported = await get_or_create_import_connection(session, ShopId(shop.id), "memory")
    imported.backfilled_at = imported.last_sync_at = synced
    await session.commit()

    await schedule_syncs(worker_context)
    await schedule_syncs(worker_context)

    sent = [
        r
        for r in recording_queue.sent
        if r.kwargs.get("shop_id") == str(shop.id) and r.job is Job.RECONCILE_CONNECTION
    ]
    day = now.date().isoformat()
    expected = sorted([connections["due"].id, connections["yesterday"].id], key=lambda i: str(i))
    # The same job ids both times: a job still queued is not queued again.
    assert [r.job_id for r in sent] == [f"reconcile_connection:{i}:{day}" for i in expected] * 2
    assert [r.kwargs["connection_id"] for r in sent] == [str(i) for i in expected] * 2


async def test_a_reconciliation_leaves_the_connection_not_due_until_the_next_day(
    session: AsyncSession, worker_context: WorkerContext, recording_queue: RecordingJobQueue
) -> None:
    shop = await make_shop(session)
    platform = MemoryPlatform(records=list(history()), tokens={TOKEN: ACCOUNT}, page_size=3)
    worker_context["platforms"] = {platform.name: platform}
    connection = await add_connection(session, shop)
    await session.commit()
    shop_id = ShopId(shop.id)
    await run_sync(worker_context, shop_id, connection.id)

    def reconciliations() -> list[str | None]:
        jobs = [r for r in recording_queue.sent if r.job is Job.RECONCILE_CONNECTION]
        recording_queue.sent.clear()
        return [r.job_id for r in jobs if r.kwargs["shop_id"] == str(shop.id)]

    # Another sync holds the connection: the job starts nothing and writes no run.
    now = utcnow()
    held = await acquire_lease(session, shop_id, connection.id, now=now, seconds=60)
    await session.commit()
    skipped = await run_reconcile(worker_context, shop_id, connection.id)
    assert held is not None
    assert skipped is None
    assert reconciliations() == []
    await release_lease(session, held)
    await session.commit()

    # So a later fan-out sends it again, under the same job id.
    await schedule_syncs(worker_context)
    job_id = f"reconcile_connection:{connection.id}:{now.date().isoformat()}"
    assert reconciliations() == [job_id]
    started = await run_reconcile(worker_context, shop_id, connection.id)
    await schedule_syncs(worker_context)
    late = await run_reconcile(worker_context, shop_id, connection.id)

    assert started is not None
    assert started.kind is SyncKind.RECONCILE
    assert reconciliations() == []
    # A duplicate that runs after the first (two fan-outs racing) finds it not due any more.
    assert late is None
    kinds = (
        await session.exec(
            select(SyncRun.kind)
            .where(SyncRun.shop_id == shop.id, SyncRun.connection_id == connection.id)
            .order_by(col(SyncRun.started_at))
        )
    ).all()
    assert kinds == ["backfill", "reconcile"]
    assert await reconciliation_due(session, shop_id, connection.id, now=utcnow()) is None
    tomorrow = utcnow() + timedelta(hours=24, minutes=1)
    assert await reconciliation_due(session, shop_id, connection.id, now=tomorrow) == "memory"


async def test_no_reconciliation_is_scheduled_when_turned_off(
    session: AsyncSession, worker_context: WorkerContext, recording_queue: RecordingJobQueue
) -> None:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    connection.backfilled_at = connection.last_sync_at = utcnow()
    await session.commit()
    settings = worker_context["settings"]
    worker_context["settings"] = settings.model_copy(update={"sync_reconcile_days": 0})

    await schedule_syncs(worker_context)
    skipped = await run_reconcile(worker_context, ShopId(shop.id), connection.id)

    assert [r for r in recording_queue.sent if r.job is Job.RECONCILE_CONNECTION] == []
    assert skipped is None


def test_reconciliation_reads_thirty_days_by_default() -> None:
    assert Settings(_env_file=None).sync_reconcile_days == 30


async def test_each_platform_bounds_its_reconciliation() -> None:
    async with httpx.AsyncClient() as http:
        amazon, rakuten = AmazonPlatform(http), RakutenPlatform(http)
        memory = MemoryPlatform()
        # Amazon: a week at most (a getOrderItems call per order); Rakuten: only beyond the
        # 30 days every one of its syncs re-reads; others: as configured.
        assert [reconcile_days(amazon, days) for days in (30, 3, 0)] == [7, 3, 0]
        assert [reconcile_days(rakuten, days) for days in (30, 20, 60)] == [0, 0, 60]
        assert [reconcile_days(memory, days) for days in (30, 0)] == [30, 0]
        assert reconcile_days(None, 30) == 30


async def test_platforms_that_reread_nothing_are_not_scheduled_for_reconciliation(
    session: AsyncSession, worker_context: WorkerContext, recording_queue: RecordingJobQueue
) -> None:
    shop = await make_shop(session)
    now = utcnow()
    memory = await add_connection(session, shop, account="memory")
    rakuten = await add_connection(session, shop, account="rakuten")
    rakuten.platform = "rakuten"
    for connection in (memory, rakuten):
        connection.backfilled_at = now - timedelta(days=3)
        connection.last_sync_at = now - timedelta(minutes=1)
    await session.commit()

    async with httpx.AsyncClient() as http:
        worker_context["platforms"] = {"memory": MemoryPlatform(), "rakuten": RakutenPlatform(http)}
        await schedule_syncs(worker_context)
        skipped = await run_reconcile(worker_context, ShopId(shop.id), rakuten.id)

    sent = [
        r.kwargs["connection_id"]
        for r in recording_queue.sent
        if r.kwargs.get("shop_id") == str(shop.id) and r.job is Job.RECONCILE_CONNECTION
    ]
    assert sent == [str(memory.id)]
    assert skipped is None
