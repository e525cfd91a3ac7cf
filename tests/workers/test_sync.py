import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from arq import Retry
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from domain.connection.models import Connection, ConnectionStatus, SyncRun, SyncStatus
from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession, session_factory, utcnow
from domain.events import Topic
from domain.ids import ShopId
from domain.jobs import Job, JobRequest
from domain.order.models import Order
from domain.platforms import OrderRecord, RecordBatch, RejectedRecord, SyncPage
from domain.settings import Settings
from domain.shop.models import Shop
from domain.sync.lease import acquire_lease
from kizuki.events import InProcessEventBus
from tests.factories.shop import make_shop
from tests.kizuki.subscribers import listening
from tests.plugins.memory_mall import MemoryPlatform
from tests.plugins.memory_mall.testing import ACCOUNT, TOKEN, add_connection, forget_shop, history
from tests.workers.conftest import RecordingJobQueue
from workers.context import WorkerContext
from workers.inprocess import build_inprocess_job_queue
from workers.sync import prefetched, run_sync, sync_connection


def with_mall(ctx: WorkerContext, mall: MemoryPlatform) -> WorkerContext:
    ctx["platforms"] = {mall.name: mall}
    return ctx


async def prepared(session: AsyncSession) -> tuple[Shop, Connection]:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    await session.commit()
    return shop, connection


async def reload(session: AsyncSession, connection: Connection) -> Connection:
    await session.refresh(connection)
    return connection


async def runs_of(session: AsyncSession, connection: Connection) -> list[SyncRun]:
    statement = (
        select(SyncRun)
        .where(SyncRun.shop_id == connection.shop_id, SyncRun.connection_id == connection.id)
        .order_by(col(SyncRun.started_at), col(SyncRun.id))
    )
    return list((await session.exec(statement.execution_options(populate_existing=True))).all())


async def state_of(session: AsyncSession, shop: Shop) -> list[tuple[object, ...]]:
    """The shop's orders and customers as comparable values (no ids, no timestamps of ours)."""
    orders = await session.exec(
        select(
            Order.external_id, Order.total_amount, Order.ordered_at, CustomerIdentity.external_id
        )
        .join(CustomerIdentity, col(CustomerIdentity.customer_id) == col(Order.customer_id))
        .where(Order.shop_id == shop.id)
    )
    customers = await session.exec(
        select(
            Customer.display_name,
            Customer.order_count,
            Customer.total_spent,
            Customer.last_order_at,
        ).where(Customer.shop_id == shop.id)
    )
    return sorted(orders.all()) + sorted(customers.all(), key=repr)


def mall() -> MemoryPlatform:
    return MemoryPlatform(records=list(history()), tokens={TOKEN: ACCOUNT}, page_size=3)


async def test_a_sync_stores_every_page_with_its_cursor(
    session: AsyncSession, worker_context: WorkerContext, recording_queue: RecordingJobQueue
) -> None:
    shop, connection = await prepared(session)
    bus = InProcessEventBus()
    worker_context["events"] = bus
    ctx = with_mall(worker_context, mall())

    async with listening(
        bus, shop.id, Topic.SYNC_PROGRESS, lambda: _count(bus, shop.id)
    ) as listener:
        await sync_connection(ctx, shop_id=str(shop.id), connection_id=str(connection.id))
        events = [await listener.next()]
        while events[-1].data["status"] == "running":
            events.append(await listener.next())

    connection = await reload(session, connection)
    (run,) = await runs_of(session, connection)
    assert connection.cursors == {"position": "12"}
    assert connection.last_sync_at is not None
    assert connection.backfilled_at == connection.last_sync_at
    assert connection.sync_lease_until is None
    assert connection.status == ConnectionStatus.ACTIVE
    assert run.status == SyncStatus.SUCCEEDED
    assert run.kind == "backfill"
    assert run.counts["pages"] == 4
    assert run.counts["orders_seen"] == 8
    assert run.counts["orders_inserted"] == 8
    assert run.counts["customers_seen"] == 4
    assert run.counts["throttle_waits"] == 2
    assert run.counts["throttle_wait_ms"] == 1000
    assert len(await state_of(session, shop)) == 12
    # One event per stored transaction (pages already fetched are stored together): the
    # first page alone, then the mall's page count rising to the total, then the end.
    running, (last,) = events[:-1], events[-1:]
    pages = [int(str(e.data["pages"])) for e in running]
    assert pages[0] == 1
    assert pages == sorted(set(pages))
    assert pages[-1] == 4
    assert {e.data["status"] for e in running} == {"running"}
    assert (last.data["status"], last.data["pages"]) == ("succeeded", 4)
    assert {e.data["connection_id"] for e in events} == {str(connection.id)}
    rescored = [r for r in recording_queue.sent if r.job is Job.RESCORE_CUSTOMERS]
    assert len(rescored) == len(running)
    customers = await session.exec(select(Customer.id).where(Customer.shop_id == shop.id))
    requested = {i for r in rescored for i in json.loads(str(r.kwargs["customer_ids_json"]))}
    assert requested == {str(customer_id) for customer_id in customers.all()}
    assert len(requested) == 4


async def _count(bus: InProcessEventBus, shop_id: uuid.UUID) -> int:
    return bus.subscriber_count(shop_id, Topic.SYNC_PROGRESS)


async def test_an_incremental_sync_resumes_from_the_cursor(
    session: AsyncSession, worker_context: WorkerContext
) -> None:
    shop, connection = await prepared(session)
    platform = mall()
    ctx = with_mall(worker_context, platform)
    await run_sync(ctx, ShopId(shop.id), connection.id)
    platform.records.append(
        OrderRecord(
            platform="memory",
            external_id="late",
            customer_external_id="c0",
            ordered_at=utcnow(),
            total_amount=500,
        )
    )

    await run_sync(ctx, ShopId(shop.id), connection.id)

    _, second = await runs_of(session, connection)
    assert second.kind == "incremental"
    assert second.counts["pages"] == 1
    assert second.counts["orders_inserted"] == 1
    assert (await reload(session, connection)).cursors == {"position": "13"}


async def test_a_second_sync_of_a_leased_connection_exits_quietly(
    session: AsyncSession, worker_context: WorkerContext
) -> None:
    shop, connection = await prepared(session)
    held = await acquire_lease(session, ShopId(shop.id), connection.id, now=utcnow(), seconds=60)
    await session.commit()

    started = await run_sync(with_mall(worker_context, mall()), ShopId(shop.id), connection.id)

    assert held is not None
    assert started is None
    assert await runs_of(session, connection) == []


@pytest.mark.parametrize("killed", [False, True], ids=["raised", "killed"])
async def test_an_interrupted_sync_resumes_to_the_same_state(
    session: AsyncSession, worker_context: WorkerContext, killed: bool
) -> None:
    steady_shop, steady = await prepared(session)
    shop, connection = await prepared(session)
    ctx = with_mall(worker_context, mall())
    await run_sync(ctx, ShopId(steady_shop.id), steady.id)
    broken = mall()
    broken.fail_at_page = 2
    broken.failure = asyncio.CancelledError() if killed else RuntimeError("mall crashed")
    ctx = with_mall(worker_context, broken)

    with pytest.raises(asyncio.CancelledError if killed else RuntimeError):
        await run_sync(ctx, ShopId(shop.id), connection.id)
    halfway = await reload(session, connection)
    assert halfway.cursors == {"position": "6"}
    if killed:
        # The process died holding the lease: the next sync waits for it to expire.
        assert await run_sync(ctx, ShopId(shop.id), connection.id) is None
        later = utcnow() + timedelta(seconds=worker_context["settings"].sync_lease_seconds + 1)
        await run_sync(ctx, ShopId(shop.id), connection.id, clock=lambda: later)
    else:
        await run_sync(ctx, ShopId(shop.id), connection.id)

    runs = await runs_of(session, connection)
    # The killed run is closed as FAILED by the sync that found its lease expired.
    assert [run.status for run in runs] == [SyncStatus.FAILED, SyncStatus.SUCCEEDED]
    assert runs[1].counts["pages"] == 2
    assert (await reload(session, connection)).cursors == {"position": "12"}
    assert await state_of(session, shop) == await state_of(session, steady_shop)


async def test_a_refused_record_is_reported_and_the_rest_land(
    session: AsyncSession, worker_context: WorkerContext
) -> None:
    shop, connection = await prepared(session)
    platform = mall()
    stranger = OrderRecord(
        platform="shopify",
        external_id="foreign",
        customer_external_id="c0",
        ordered_at=utcnow(),
        total_amount=1,
    )
    platform.records.insert(1, stranger)
    platform.rejected_on_page[0] = (RejectedRecord("order", "x9", "no total"),)

    await run_sync(with_mall(worker_context, platform), ShopId(shop.id), connection.id)

    (run,) = await runs_of(session, connection)
    assert run.status == SyncStatus.SUCCEEDED
    assert run.counts["rejected"] == 2
    assert run.counts["orders_inserted"] == 8
    assert run.errors == [
        "order x9: no total",
        "order foreign: a shopify record cannot be stored on a memory connection",
    ]
    assert len(await state_of(session, shop)) == 12


async def test_revoked_credentials_wait_for_new_ones(
    session: AsyncSession, worker_context: WorkerContext
) -> None:
    shop, connection = await prepared(session)
    platform = mall()
    platform.tokens = {}

    await run_sync(with_mall(worker_context, platform), ShopId(shop.id), connection.id)

    connection = await reload(session, connection)
    (run,) = await runs_of(session, connection)
    assert connection.status == ConnectionStatus.NEEDS_CREDENTIALS
    assert connection.last_error == "credentials revoked: token revoked"
    assert connection.sync_lease_until is None
    assert run.status == SyncStatus.FAILED


async def test_an_unavailable_mall_is_retried_later(
    session: AsyncSession, worker_context: WorkerContext
) -> None:
    shop, connection = await prepared(session)
    platform = mall()
    platform.unavailable = True

    with pytest.raises(Retry) as retry:
        await run_sync(with_mall(worker_context, platform), ShopId(shop.id), connection.id)

    connection = await reload(session, connection)
    (run,) = await runs_of(session, connection)
    # The mall asked for 3 s, more than the first backoff (2 s).
    assert retry.value.defer_score == 3000
    assert connection.status == ConnectionStatus.ACTIVE
    assert connection.sync_lease_until is None
    assert connection.last_error == "unavailable: memory mall is down"
    assert run.status == SyncStatus.FAILED


async def test_a_disconnect_during_a_sync_stops_it(
    session: AsyncSession, worker_context: WorkerContext, sessions: object
) -> None:
    shop, connection = await prepared(session)
    platform = mall()
    platform.gate = asyncio.Event()
    ctx = with_mall(worker_context, platform)
    task = asyncio.create_task(run_sync(ctx, ShopId(shop.id), connection.id))
    while not await runs_of(session, connection):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    connection = await reload(session, connection)
    connection.status = ConnectionStatus.DISCONNECTED
    connection.sync_lease_until = None
    session.add(connection)
    await session.commit()
    platform.gate.set()

    await task

    (run,) = await runs_of(session, connection)
    assert run.status == SyncStatus.FAILED
    assert "no longer leased" in run.errors[-1]
    assert await state_of(session, shop) == []


async def test_a_sync_out_of_time_hands_on_to_the_next_job(
    session: AsyncSession, worker_context: WorkerContext, recording_queue: RecordingJobQueue
) -> None:
    shop, connection = await prepared(session)
    worker_context["settings"] = worker_context["settings"].model_copy(
        update={"sync_time_budget_seconds": 15}
    )
    ctx = with_mall(worker_context, mall())
    ticks = iter(range(0, 10_000, 10))
    start = utcnow()

    def clock() -> datetime:
        return start + timedelta(seconds=next(ticks))

    started = await run_sync(ctx, ShopId(shop.id), connection.id, clock=clock)

    assert started is not None
    (run,) = await runs_of(session, connection)
    connection = await reload(session, connection)
    assert run.status == SyncStatus.SUCCEEDED
    # Time is up after the first page: the pages fetched meanwhile are left to the next job.
    assert run.counts["pages"] == 1
    assert connection.cursors == {"position": "3"}
    assert connection.last_sync_at is None
    assert connection.backfilled_at is None
    assert connection.sync_lease_until is None
    (follow_up,) = [r for r in recording_queue.sent if r.job is Job.SYNC_CONNECTION]
    assert follow_up.job_id == f"sync_connection:{connection.id}:after:{run.id}"

    await sync_connection(ctx, **{k: str(v) for k, v in follow_up.kwargs.items() if v})

    connection = await reload(session, connection)
    assert connection.cursors == {"position": "12"}
    assert connection.backfilled_at is not None


async def test_the_embedded_runner_retries_a_sync_after_an_outage(
    engine: AsyncEngine, settings: Settings
) -> None:
    # The runner runs jobs concurrently (the sync and its rescorings): real connections.
    sessions = session_factory(engine)
    async with sessions() as session:
        shop, connection = await prepared(session)
    platform = mall()
    platform.outages = 1
    platform.retry_after = 0.1
    queue = build_inprocess_job_queue(settings, sessions, InProcessEventBus(), {"memory": platform})
    request = JobRequest(
        Job.SYNC_CONNECTION,
        {"shop_id": str(shop.id), "connection_id": str(connection.id), "since": None},
        job_id=f"sync_connection:{connection.id}",
    )
    try:
        await queue.send([request])
        await queue.drain()
        await queue.aclose()

        async with sessions() as session:
            runs = await runs_of(session, connection)
            stored = await session.get(Connection, (shop.id, connection.id))
        assert stored is not None
        cursors = stored.cursors
        assert [run.status for run in runs] == [SyncStatus.FAILED, SyncStatus.SUCCEEDED]
        assert runs[0].errors == ["unavailable: memory mall is down"]
        assert cursors == {"position": "12"}
        assert [f for f in queue.failures if f.request.job is Job.SYNC_CONNECTION] == []
    finally:
        await forget_shop(engine, shop.id)


def _page(position: int) -> SyncPage:
    orders = tuple(
        OrderRecord(
            platform="memory",
            external_id=f"o{position}-{n}",
            customer_external_id="c0",
            ordered_at=utcnow(),
            total_amount=100,
        )
        for n in range(2)
    )
    return SyncPage(records=RecordBatch(orders=orders), cursor={"position": str(position)})


async def test_pages_already_fetched_are_handed_on_together_and_in_order() -> None:
    async def pages() -> AsyncIterator[SyncPage]:
        for position in range(1, 6):
            yield _page(position)
        raise RuntimeError("mall crashed")

    handed: list[list[str]] = []

    async def consume() -> None:
        async for run in prefetched(pages(), depth=5, merge_records=3):
            handed.append([page.cursor["position"] for page in run])

    with pytest.raises(RuntimeError, match="mall crashed"):
        await consume()

    # The first page alone, then whatever waited, up to the records limit; every page
    # exactly once and in order, and the failure only after them.
    assert handed[0] == ["1"]
    assert [p for run in handed for p in run] == ["1", "2", "3", "4", "5"]
    assert any(len(run) > 1 for run in handed)
    assert all(2 * (len(run) - 1) < 3 for run in handed)
