"""Backfill progress through the real sync job against the fake malls: published with every
stored batch, kept on the run and the connection, carried on by the job that continues."""

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import httpx
import pytest
from sqlmodel import col, select

from domain.connection.models import Connection, SyncRun, SyncStatus
from domain.db import AsyncSession, utcnow
from domain.events import Event, Topic
from domain.ids import ShopId
from domain.shop.models import Shop
from integrations.rakuten.platform import RakutenPlatform
from integrations.shopify.platform import ShopifyPlatform
from kizuki.events import InProcessEventBus
from tests.factories.customer import make_encrypted_connection
from tests.factories.shop import make_shop
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.rakuten.clock import FakeClock
from tests.fakes.rakuten.server import create_app as rakuten_app
from tests.fakes.rakuten.store import RakutenStore
from tests.fakes.shopify import FakeShopify, ShopifyStore, VirtualClock, generate
from tests.kizuki.subscribers import listening
from workers.context import WorkerContext
from workers.sync import run_sync

SHOPIFY_TOKEN = "shpat_test"
RAKUTEN_NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
def shopify_clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def shopify_store(shopify_clock: VirtualClock) -> ShopifyStore:
    store = ShopifyStore(shopify_clock.now)
    generate(store, orders=500, days=100, seed=17)
    return store


@pytest.fixture
async def shopify_url(shopify_store: ShopifyStore) -> AsyncIterator[str]:
    async with serve_on_loopback(FakeShopify(shopify_store).app) as base_url:
        yield base_url


async def _connection(
    session: AsyncSession,
    ctx: WorkerContext,
    *,
    platform: str,
    credentials: Mapping[str, str],
    base_url: str,
) -> tuple[Shop, Connection]:
    shop = await make_shop(session)
    connection = await make_encrypted_connection(
        session,
        shop=shop,
        settings=ctx["settings"],
        platform=platform,
        account=f"{platform}-account",
        credentials=credentials,
        base_url=base_url,
    )
    await session.commit()
    return shop, connection


@pytest.fixture
def shopify(
    worker_context: WorkerContext, http: httpx.AsyncClient, shopify_clock: VirtualClock
) -> WorkerContext:
    platform = ShopifyPlatform(
        http, clock=shopify_clock.now, sleep=shopify_clock.sleep, page_size=100
    )
    worker_context["platforms"] = {"shopify": platform}
    return worker_context


async def _shopify(
    session: AsyncSession, ctx: WorkerContext, store: ShopifyStore, url: str
) -> tuple[Shop, Connection]:
    credentials = {
        "shop_domain": store.shop_domain,
        "access_token": SHOPIFY_TOKEN,
        "client_secret": "whsec",
    }
    return await _connection(
        session, ctx, platform="shopify", credentials=credentials, base_url=url
    )


async def _synced(
    ctx: WorkerContext,
    shop: Shop,
    connection: Connection,
    clock: Callable[[], datetime] = utcnow,
) -> list[Event]:
    """The SYNC_PROGRESS events of one job, up to its end."""
    bus = InProcessEventBus()
    ctx["events"] = bus

    async def subscribers() -> int:
        return bus.subscriber_count(shop.id, Topic.SYNC_PROGRESS)

    async with listening(bus, shop.id, Topic.SYNC_PROGRESS, subscribers) as listener:
        await run_sync(ctx, ShopId(shop.id), connection.id, clock=clock)
        events = [await listener.next()]
        while events[-1].data["status"] == "running":
            events.append(await listener.next())
    return events


def _progress(events: Sequence[Event]) -> list[float | None]:
    values = [event.data["backfill_progress"] for event in events]
    return [value if isinstance(value, float) else None for value in values]


def assert_rises_to_complete(values: Sequence[float | None]) -> None:
    known = [value for value in values if value is not None]
    assert known == values, "every stored batch of a backfill carries its progress"
    assert 0.0 < known[0] < 1.0
    # Strictly rising until complete; several batches may bring the last pages (at 1).
    assert all(a < b or a == b == 1.0 for a, b in pairwise(known)), known
    assert known[-1] == 1.0


async def _runs(session: AsyncSession, connection: Connection) -> list[SyncRun]:
    statement = (
        select(SyncRun)
        .where(SyncRun.shop_id == connection.shop_id, SyncRun.connection_id == connection.id)
        .order_by(col(SyncRun.started_at), col(SyncRun.id))
    )
    return list((await session.exec(statement.execution_options(populate_existing=True))).all())


async def test_a_shopify_backfill_publishes_rising_progress_and_keeps_it(
    session: AsyncSession, shopify: WorkerContext, shopify_store: ShopifyStore, shopify_url: str
) -> None:
    shop, connection = await _shopify(session, shopify, shopify_store, shopify_url)

    events = await _synced(shopify, shop, connection)
    again = await _synced(shopify, shop, connection)

    running, (end,) = events[:-1], events[-1:]
    assert {event.data["status"] for event in running} == {"running"}
    assert len(running) >= 2
    assert_rises_to_complete(_progress(running))
    assert (end.data["status"], end.data["backfill_progress"]) == ("succeeded", 1.0)
    backfill, incremental = await _runs(session, connection)
    assert (backfill.kind, backfill.status, backfill.backfill_progress) == (
        "backfill",
        SyncStatus.SUCCEEDED,
        1.0,
    )
    # After the backfill, syncs have no progress of their own; the connection stays complete.
    assert (incremental.kind, incremental.backfill_progress) == ("incremental", None)
    assert set(_progress(again)) == {None}
    await session.refresh(connection)
    assert connection.backfilled_at is not None
    assert connection.backfill_progress == 1.0


async def test_a_backfill_continued_by_the_next_job_goes_on_from_its_progress(
    session: AsyncSession, shopify: WorkerContext, shopify_store: ShopifyStore, shopify_url: str
) -> None:
    shop, connection = await _shopify(session, shopify, shopify_store, shopify_url)
    settings = shopify["settings"]
    shopify["settings"] = settings.model_copy(update={"sync_time_budget_seconds": 15})
    ticks = iter(range(0, 10_000, 10))
    start = utcnow()

    # Time is up after the first page: the next job continues the backfill from its cursor.
    def clock() -> datetime:
        return start + timedelta(seconds=next(ticks))

    first = await _synced(shopify, shop, connection, clock)
    await session.refresh(connection)
    reached = connection.backfill_progress
    shopify["settings"] = settings
    second = await _synced(shopify, shop, connection)

    assert reached is not None
    assert 0.0 < reached < 1.0
    assert connection.backfilled_at is None
    assert _progress(first) == [reached, reached]
    assert_rises_to_complete([reached, *_progress(second)])
    cut_short, continued = await _runs(session, connection)
    assert (cut_short.kind, cut_short.backfill_progress) == ("backfill", reached)
    assert (continued.kind, continued.backfill_progress) == ("backfill", 1.0)
    await session.refresh(connection)
    assert (connection.backfilled_at is not None, connection.backfill_progress) == (True, 1.0)


async def test_a_rakuten_backfill_publishes_rising_progress(
    session: AsyncSession, worker_context: WorkerContext, http: httpx.AsyncClient
) -> None:
    clock = FakeClock(RAKUTEN_NOW)
    store = RakutenStore(clock=clock)
    store.add_spread(120, RAKUTEN_NOW - timedelta(days=700), RAKUTEN_NOW - timedelta(hours=1))
    worker_context["platforms"] = {"rakuten": RakutenPlatform(http, clock=clock, sleep=clock.sleep)}
    async with serve_on_loopback(rakuten_app(store)) as base_url:
        shop, connection = await _connection(
            session,
            worker_context,
            platform="rakuten",
            credentials=store.credentials(),
            base_url=base_url,
        )
        events = await _synced(worker_context, shop, connection)

    assert_rises_to_complete(_progress(events[:-1]))
    assert (events[-1].data["status"], events[-1].data["backfill_progress"]) == ("succeeded", 1.0)
    (run,) = await _runs(session, connection)
    assert (run.kind, run.backfill_progress) == ("backfill", 1.0)
    await session.refresh(connection)
    assert connection.backfill_progress == 1.0
