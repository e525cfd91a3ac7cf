"""The daily reconciliation through the real job against the loopback Shopify fake: it catches
what the incremental sync cannot see, and the incremental syncs go on after it."""

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, select

from domain.connection.models import Connection, SyncKind, SyncRun, SyncStatus
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.order.models import Order, OrderStatus
from domain.shop.models import Shop
from integrations.shopify.platform import ShopifyPlatform
from tests.factories.customer import make_encrypted_connection
from tests.factories.shop import make_shop
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.shopify import FakeShopify, ShopifyStore, VirtualClock, generate
from tests.fakes.shopify.store import FakeOrder
from workers.context import WorkerContext
from workers.sync import run_reconcile, run_sync

TOKEN = "shpat_test"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def store(clock: VirtualClock) -> ShopifyStore:
    store = ShopifyStore(clock.now)
    generate(store, orders=120, days=20, seed=23)
    return store


@pytest.fixture
async def shopify(
    worker_context: WorkerContext, store: ShopifyStore, clock: VirtualClock
) -> AsyncIterator[tuple[WorkerContext, str]]:
    async with (
        httpx.AsyncClient(timeout=5.0) as http,
        serve_on_loopback(FakeShopify(store).app) as base_url,
    ):
        platform = ShopifyPlatform(http, clock=clock.now, sleep=clock.sleep, page_size=50)
        worker_context["platforms"] = {"shopify": platform}
        yield worker_context, base_url


async def _connected(
    session: AsyncSession, ctx: WorkerContext, store: ShopifyStore, base_url: str
) -> tuple[Shop, Connection]:
    shop = await make_shop(session)
    connection = await make_encrypted_connection(
        session,
        shop=shop,
        settings=ctx["settings"],
        platform="shopify",
        account=store.shop_domain,
        credentials={"shop_domain": store.shop_domain, "access_token": TOKEN, "client_secret": "s"},
        base_url=base_url,
    )
    await session.commit()
    return shop, connection


async def _status(session: AsyncSession, shop: Shop, order: FakeOrder) -> OrderStatus:
    statement = select(Order.status).where(Order.shop_id == shop.id, Order.external_id == order.gid)
    return OrderStatus(
        (await session.exec(statement.execution_options(populate_existing=True))).one()
    )


async def _runs(session: AsyncSession, connection: Connection) -> list[SyncRun]:
    statement = (
        select(SyncRun)
        .where(SyncRun.shop_id == connection.shop_id, SyncRun.connection_id == connection.id)
        .order_by(col(SyncRun.started_at), col(SyncRun.id))
    )
    return list((await session.exec(statement.execution_options(populate_existing=True))).all())


async def test_a_change_the_incremental_sync_cannot_see_is_caught_by_the_reconciliation(
    session: AsyncSession,
    shopify: tuple[WorkerContext, str],
    store: ShopifyStore,
    clock: VirtualClock,
) -> None:
    ctx, base_url = shopify
    shop, connection = await _connected(session, ctx, store, base_url)
    shop_id = ShopId(shop.id)
    await run_sync(ctx, shop_id, connection.id, clock=clock.now)
    order = sorted(store.orders.values(), key=lambda o: o.id)[40]
    # Cancelled after the backfill, but Shopify dates the change two hours before it (as a
    # late search index or a missed listing leaves it): before the cursor and its overlap.
    clock.advance(-7200)
    store.cancel_order(order)
    clock.advance(7200 + 3600)

    await run_sync(ctx, shop_id, connection.id, clock=clock.now)
    missed = await _status(session, shop, order)
    clock.advance(60)
    reconciled = await run_reconcile(ctx, shop_id, connection.id, clock=clock.now)

    assert missed is OrderStatus.FULFILLED
    assert reconciled is not None
    assert await _status(session, shop, order) is OrderStatus.CANCELLED
    backfill, incremental, reconcile = await _runs(session, connection)
    assert (backfill.kind, incremental.kind) == (SyncKind.BACKFILL, SyncKind.INCREMENTAL)
    assert incremental.counts.get("orders_updated", 0) == 0
    assert (reconcile.kind, reconcile.status) == (SyncKind.RECONCILE, SyncStatus.SUCCEEDED)
    assert reconcile.since == clock.now() - timedelta(days=30)
    assert reconcile.backfill_progress is None
    assert reconcile.counts["orders_seen"] == len(store.orders)
    assert reconcile.counts["orders_updated"] >= 1


async def test_the_incremental_sync_goes_on_from_where_the_reconciliation_ended(
    session: AsyncSession,
    shopify: tuple[WorkerContext, str],
    store: ShopifyStore,
    clock: VirtualClock,
) -> None:
    ctx, base_url = shopify
    shop, connection = await _connected(session, ctx, store, base_url)
    shop_id = ShopId(shop.id)
    await run_sync(ctx, shop_id, connection.id, clock=clock.now)
    await session.refresh(connection)
    backfilled_at = connection.backfilled_at
    clock.advance(3600)
    await run_reconcile(ctx, shop_id, connection.id, clock=clock.now)
    await session.refresh(connection)
    after_reconcile = dict(connection.cursors)
    clock.advance(3600)
    buyer = store.customers[min(store.customers)]
    fresh = store.add_order(buyer)
    clock.advance(60)

    await run_sync(ctx, shop_id, connection.id, clock=clock.now)

    await session.refresh(connection)
    # The reconciliation ended the way an incremental sync does: at rest, its window's end the
    # next one's high-water mark; the backfill's state is untouched.
    assert after_reconcile["phase"] == "idle"
    assert after_reconcile["updated_at"] == (clock.now() - timedelta(seconds=3660)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert connection.backfilled_at == backfilled_at
    assert connection.backfill_progress == 1.0
    *_, reconcile, incremental = await _runs(session, connection)
    assert reconcile.kind == SyncKind.RECONCILE
    assert incremental.kind == SyncKind.INCREMENTAL
    # Only the new order: the window starts at the reconciliation's end (less the overlap).
    assert (incremental.counts["orders_seen"], incremental.counts["orders_inserted"]) == (1, 1)
    assert await _status(session, shop, fresh) is OrderStatus.FULFILLED
    assert connection.cursors["phase"] == "idle"
    assert connection.cursors["updated_at"] == clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
