import httpx
import pytest
from sqlmodel import select

from domain.db import AsyncSession
from domain.ids import ConnectionId, ShopId
from domain.ingest import ingest_batch
from domain.order.models import Order, OrderLine
from domain.platforms import PlatformUnavailable, SyncPage
from domain.shop.models import Shop
from integrations.amazon.platform import AmazonPlatform
from tests.factories.customer import make_connection
from tests.fakes.amazon import Fault
from tests.integrations.amazon.harness import Amazon, Run, seed, sync


async def test_documented_rates_are_honoured_without_a_single_429(amazon: Amazon) -> None:
    seed(amazon.store, 70)
    amazon.store.page_size = 5  # 14 getOrders pages: burst 20 holds; items exceed burst 30

    run = await sync(amazon.platform, amazon.account())

    assert len(run.order_ids) == 70
    assert amazon.store.throttled == {}
    waits = sum(page.stats.throttle_waits for page in run.pages)
    waited = sum(page.stats.throttle_wait_seconds for page in run.pages)
    # 70 item calls against a burst of 30 at 0.5/s: the last 40 wait about 2 s each.
    assert waits >= 39
    assert waited == pytest.approx(80, abs=3)


async def test_throttling_storm_completes_without_early_retries(amazon: Amazon) -> None:
    seed(amazon.store, 40)
    amazon.store.page_size = 10
    # Amazon applies far less than documented, and another app drains getOrders.
    amazon.store.limits["getOrderItems"] = (0.1, 3)
    amazon.store.limits["getOrders"] = (0.005, 1)
    amazon.store.drain("getOrders")

    run = await sync(amazon.platform, amazon.account())

    assert sorted(run.order_ids) == sorted(amazon.store.orders)
    assert amazon.store.throttled["getOrderItems"] >= 1
    assert amazon.store.throttled["getOrders"] >= 1
    assert amazon.store.violations == []
    # The header tells the rate, never the burst: after each long getOrders wait the client
    # may meet one 429 when its believed burst runs out, never a run of them.
    assert amazon.store.throttled["getOrderItems"] <= len(run.pages)
    assert sum(page.stats.throttle_waits for page in run.pages) > 30


async def test_token_expiring_mid_sync_is_renewed_before_it_lapses(amazon: Amazon) -> None:
    seed(amazon.store, 60)
    amazon.store.token_lifetime = 40  # the item waits alone take 60 s

    run = await sync(amazon.platform, amazon.account())

    assert len(run.order_ids) == 60
    assert amazon.clock.slept > 40
    assert amazon.store.token_exchanges >= 2
    assert all(entry.status == 200 for entry in amazon.store.log)


async def test_token_invalidated_mid_page_is_refreshed_once(amazon: Amazon) -> None:
    seed(amazon.store, 10)
    amazon.store.expire_tokens_at_request = 5

    run = await sync(amazon.platform, amazon.account())

    assert len(run.order_ids) == 10
    assert [entry.status for entry in amazon.store.log].count(403) == 1
    assert amazon.store.token_exchanges == 2


async def test_server_errors_are_retried_with_backoff(amazon: Amazon) -> None:
    seed(amazon.store, 5)
    amazon.store.faults = {2: Fault(500), 3: Fault(503), 4: Fault(500)}

    run = await sync(amazon.platform, amazon.account())

    assert len(run.order_ids) == 5
    assert amazon.clock.slept >= 1 + 2 + 4


async def test_timeouts_are_retried(amazon: Amazon) -> None:
    seed(amazon.store, 3)
    amazon.store.faults = {2: Fault(503, stall_seconds=0.6)}
    async with httpx.AsyncClient(timeout=0.3) as http:
        platform = AmazonPlatform(http, clock=amazon.clock.now, sleep=amazon.clock.sleep)
        run = await sync(platform, amazon.account())

    assert len(run.order_ids) == 3
    assert amazon.store.requests == 1 + 3 + 1  # getOrders, items x3, the retried one


async def _ingest_all(
    session: AsyncSession, shop: Shop, connection_id: ConnectionId, pages: list[SyncPage]
) -> None:
    for page in pages:
        await ingest_batch(session, ShopId(shop.id), connection_id, page.records)


async def test_outage_mid_sync_resumes_from_the_last_cursor_without_loss(
    amazon: Amazon, session: AsyncSession, shop: Shop
) -> None:
    ids = seed(amazon.store, 30)
    amazon.store.page_size = 10
    clean = await sync(amazon.fresh_platform(), amazon.account())
    amazon.store.log.clear()
    amazon.store.requests = 0

    # Second run: the 17th request onwards fails long enough to exhaust the retries.
    amazon.store.faults = {n: Fault(503) for n in range(17, 23)}
    failed: list[SyncPage] = []
    with pytest.raises(PlatformUnavailable):
        await sync(amazon.fresh_platform(), amazon.account(), pages=failed)
    resumed = await sync(amazon.fresh_platform(), amazon.account(), failed[-1].cursor)

    union = Run(failed + resumed.pages)
    assert len(failed) == 1
    assert sorted(set(union.order_ids)) == sorted(ids)
    assert sorted(union.order_ids) == sorted(clean.order_ids)  # no page read twice
    connection = await make_connection(session, shop=shop, platform="amazon")
    connection_id = ConnectionId(connection.id)
    await _ingest_all(session, shop, connection_id, union.pages)
    await _ingest_all(session, shop, connection_id, clean.pages)
    orders = (await session.exec(select(Order).where(Order.shop_id == shop.id))).all()
    lines = (await session.exec(select(OrderLine).where(OrderLine.shop_id == shop.id))).all()
    assert sorted(order.external_id for order in orders) == sorted(ids)
    assert len(lines) == 30


async def test_stale_next_token_restarts_the_same_window(amazon: Amazon) -> None:
    ids = seed(amazon.store, 6)
    amazon.store.page_size = 3
    first = await anext(amazon.platform.sync_pages(amazon.account(), {}, None))
    cursor = {**first.cursor, "next_token": "bm90IGEgdG9rZW4="}

    run = await sync(amazon.fresh_platform(), amazon.account(), cursor)

    assert sorted(run.order_ids) == sorted(ids)
    assert run.cursor == {"last_updated_after": first.cursor["window_end"]}


async def test_endless_throttling_gives_up_with_a_retry_hint(amazon: Amazon) -> None:
    seed(amazon.store, 2)
    amazon.store.limits["getOrders"] = (0.0167, 0)  # another app holds the whole quota

    with pytest.raises(PlatformUnavailable, match="throttled") as raised:
        await sync(amazon.platform, amazon.account())

    assert raised.value.retry_after is not None
    assert raised.value.retry_after > 60
    assert amazon.store.violations == []
    # Waits of 1, 2, 4 and 8 intervals (60 s each); a fifth would pass the 15-minute budget.
    assert amazon.store.throttled == {"getOrders": 5}
    assert amazon.clock.slept == pytest.approx(15 / 0.0167)
