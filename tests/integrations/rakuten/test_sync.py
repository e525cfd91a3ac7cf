from datetime import datetime, timedelta
from itertools import pairwise

import httpx
import pytest
from sqlmodel import func, select

from domain.db import AsyncSession
from domain.ids import ConnectionId, ShopId
from domain.ingest import ingest_batch
from domain.order.models import Order, OrderStatus
from domain.platforms import (
    OrderRecord,
    PlatformAccount,
    PlatformAuthRevoked,
    PlatformUnavailable,
    SyncPage,
)
from domain.shop.models import Shop
from integrations.rakuten.client import ClientSettings
from integrations.rakuten.platform import RakutenPlatform, finished_cursor
from tests.factories.customer import make_connection
from tests.fakes.rakuten.clock import FakeClock
from tests.fakes.rakuten.store import FakeItem, LoggedRequest, RakutenStore
from tests.integrations.rakuten.conftest import NOW
from tests.integrations.rakuten.harness import Run, run_sync


def _window(search: LoggedRequest) -> tuple[datetime, datetime]:
    def parse(key: str) -> datetime:
        value = search.body[key]
        assert isinstance(value, str)
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")

    return parse("startDatetime"), parse("endDatetime")


async def _ingest(session: AsyncSession, shop: Shop, pages: list[SyncPage]) -> ConnectionId:
    connection = await make_connection(session, shop=shop, platform="rakuten")
    for page in pages:
        await ingest_batch(session, ShopId(shop.id), ConnectionId(connection.id), page.records)
    return ConnectionId(connection.id)


async def test_backfill_reads_730_days_in_windows_of_at_most_63_days(
    platform: RakutenPlatform, account: PlatformAccount, store: RakutenStore
) -> None:
    reachable = store.add_spread(300, NOW - timedelta(days=729), NOW - timedelta(hours=1))
    store.add_order(NOW - timedelta(days=745))  # beyond what Rakuten lets anyone read

    run = await run_sync(platform, account, {})

    assert run.error is None
    assert sorted(run.order_ids) == sorted(order.number for order in reachable)
    assert run.cursor == finished_cursor(NOW)
    windows = sorted({_window(search) for search in store.searches()})
    assert len(windows) == 12  # 730 days / 63
    for start, end in windows:
        assert end - start <= timedelta(days=63)
        assert start >= NOW - timedelta(days=730)
    for (_, end), (next_start, _) in pairwise(windows):
        assert next_start - end == timedelta(seconds=1)  # contiguous, no gap, no overlap
    assert windows[-1][1] == NOW
    progress = [page.progress or 0.0 for page in run.pages]
    assert progress == sorted(progress)
    assert all(page.progress is not None for page in run.pages)
    assert progress[-1] == 1.0
    assert all(page.cursor.get("backfill") == "1" for page in run.pages[:-1])
    assert all(len(page.records.orders) <= 1000 for page in run.pages)


@pytest.mark.parametrize(
    ("cap", "count", "report_true_total"),
    [(15_000, 15_500, True), (1_500, 1_550, False)],
    ids=["real-cap-true-total", "small-cap-capped-total"],
)
async def test_a_window_over_the_result_cap_is_split_and_nothing_is_lost(
    http: httpx.AsyncClient,
    clock: FakeClock,
    account: PlatformAccount,
    store: RakutenStore,
    cap: int,
    count: int,
    report_true_total: bool,
) -> None:
    store.result_cap = cap
    store.report_true_total = report_true_total
    orders = store.add_spread(count, NOW - timedelta(days=3), NOW - timedelta(days=2))
    platform = RakutenPlatform(
        http, clock=clock, sleep=clock.sleep, client_settings=ClientSettings(result_cap=cap)
    )

    run = await run_sync(platform, account, finished_cursor(NOW), since=NOW - timedelta(days=4))

    assert run.error is None
    assert len(run.order_ids) == count
    assert set(run.order_ids) == {order.number for order in orders}
    busy = {_window(search) for search in store.searches()}
    assert len(busy) > 2  # the 63-day window was halved until each part fitted
    assert all(not page.rejected for page in run.pages)


async def test_a_late_cancellation_is_caught_by_the_trailing_rescan(
    session: AsyncSession,
    shop: Shop,
    platform: RakutenPlatform,
    account: PlatformAccount,
    store: RakutenStore,
    clock: FakeClock,
) -> None:
    recent = store.add_order(NOW - timedelta(days=10))
    old = store.add_order(NOW - timedelta(days=40))
    first = await run_sync(platform, account, {})
    assert first.error is None

    clock.advance(timedelta(days=1))
    store.cancel(recent.number, by_customer=True)
    newer = store.add_order(clock() - timedelta(hours=2))
    second = await run_sync(platform, account, first.cursor)

    assert second.error is None
    assert set(second.order_ids) == {recent.number, newer.number}  # old: outside 30 days
    [cancelled] = [
        o for p in second.pages for o in p.records.orders if o.external_id == recent.number
    ]
    assert cancelled.status == OrderStatus.CANCELLED
    connection_id = await _ingest(session, shop, [*first.pages, *second.pages])
    stored = {
        order.external_id: order.status
        for order in (
            await session.exec(select(Order).where(Order.connection_id == connection_id))
        ).all()
    }
    assert stored == {
        recent.number: OrderStatus.CANCELLED,
        old.number: OrderStatus.FULFILLED,
        newer.number: OrderStatus.FULFILLED,
    }
    start, _ = _window(store.searches()[-1])
    assert start <= clock() - timedelta(days=30)


async def test_incremental_sync_reads_everything_since_the_high_water_mark(
    platform: RakutenPlatform, account: PlatformAccount, store: RakutenStore, clock: FakeClock
) -> None:
    clock.advance(timedelta(days=90))  # the shop was not synced for 90 days
    missed = store.add_order(clock() - timedelta(days=80))
    run = await run_sync(platform, account, finished_cursor(NOW))
    assert run.error is None
    assert run.order_ids == [missed.number]
    first_start, _ = _window(store.searches()[0])
    assert first_start == NOW - timedelta(hours=1)


async def test_a_paced_client_causes_no_throttling_and_completes(
    platform: RakutenPlatform, account: PlatformAccount, store: RakutenStore
) -> None:
    store.rate_limit_per_second = 1.0
    orders = store.add_spread(450, NOW - timedelta(days=100), NOW - timedelta(days=1))

    run = await run_sync(platform, account, {})

    assert run.error is None
    assert store.violations == []
    assert sorted(run.order_ids) == sorted(order.number for order in orders)
    assert sum(page.stats.throttle_waits for page in run.pages) >= run.requests - 1
    assert run.requests == len(store.requests)


@pytest.mark.parametrize("status", [503, 429])
async def test_throttle_responses_are_backed_off_and_the_sync_completes(
    platform: RakutenPlatform, account: PlatformAccount, store: RakutenStore, status: int
) -> None:
    store.rate_limit_per_second = 0.5  # stricter than the client's own pace
    store.throttle_status = status
    orders = store.add_spread(250, NOW - timedelta(days=50), NOW - timedelta(days=1))

    run = await run_sync(platform, account, {})

    assert run.error is None
    assert sorted(run.order_ids) == sorted(order.number for order in orders)
    assert store.violations  # the fake did throttle
    assert all(r.status != status for r in store.requests if r not in store.violations)
    waited = sum(page.stats.throttle_wait_seconds for page in run.pages)
    assert waited >= 2.0 * len(store.violations)


async def test_retries_are_bounded_then_the_platform_is_unavailable(
    platform: RakutenPlatform, account: PlatformAccount, store: RakutenStore
) -> None:
    store.add_order(NOW - timedelta(days=1))
    store.fail(1, 50, "503")
    run = await run_sync(platform, account, {})
    assert isinstance(run.error, PlatformUnavailable)
    assert len(store.requests) == ClientSettings().max_attempts


@pytest.mark.parametrize("kind", ["500", "503", "timeout"])
async def test_failures_mid_sync_resume_from_the_last_cursor_without_loss_or_duplicates(
    session: AsyncSession,
    shop: Shop,
    http: httpx.AsyncClient,
    clock: FakeClock,
    account: PlatformAccount,
    store: RakutenStore,
    kind: str,
) -> None:
    settings = ClientSettings(timeout=0.2, max_attempts=3)
    store.hang_seconds = 0.4
    platform = RakutenPlatform(http, clock=clock, sleep=clock.sleep, client_settings=settings)
    store.add_spread(1_200, NOW - timedelta(days=120), NOW - timedelta(hours=1), buyers=300)
    clean = await run_sync(platform, account, {})
    assert clean.error is None

    store.fail(len(store.requests) + 9, settings.max_attempts, kind)
    broken = await run_sync(platform, account, {})
    assert isinstance(broken.error, PlatformUnavailable)
    assert broken.pages  # it failed mid-sync, after some pages
    resumed = await run_sync(platform, account, broken.cursor)

    assert resumed.error is None
    assert set(broken.order_ids + resumed.order_ids) == set(clean.order_ids)
    assert len(clean.order_ids) == 1_200

    def records(*runs: Run) -> set[OrderRecord]:
        return {order for run in runs for page in run.pages for order in page.records.orders}

    assert records(broken, resumed) == records(clean)
    connection_id = await _ingest(session, shop, [*broken.pages, *resumed.pages])
    count = func.count(Order.id)  # type: ignore[arg-type]
    stored = (await session.exec(select(count).where(Order.connection_id == connection_id))).one()
    distinct = func.count(func.distinct(Order.external_id))
    unique = (
        await session.exec(select(distinct).where(Order.connection_id == connection_id))
    ).one()
    assert stored == unique == 1_200


@pytest.mark.parametrize("crash_after", [1, 2, 3, 5])
async def test_a_crash_after_any_page_resumes_without_loss(
    platform: RakutenPlatform,
    account: PlatformAccount,
    store: RakutenStore,
    crash_after: int,
) -> None:
    expected = {
        order.number
        for order in store.add_spread(2_300, NOW - timedelta(days=60), NOW - timedelta(days=59))
    }
    crashed = await run_sync(platform, account, {}, stop_after=crash_after)
    assert "position" in crashed.cursor
    resumed = await run_sync(platform, account, crashed.cursor)

    assert resumed.error is None
    assert set(crashed.order_ids) | set(resumed.order_ids) == expected
    # Only orders of the resume point's second are read twice.
    assert len(crashed.order_ids) + len(resumed.order_ids) - len(expected) <= 5
    assert resumed.cursor == finished_cursor(NOW)


async def test_an_expired_license_key_stops_the_sync_with_a_renewal_message(
    platform: RakutenPlatform, account: PlatformAccount, store: RakutenStore
) -> None:
    store.add_spread(50, NOW - timedelta(days=700), NOW - timedelta(days=1))
    store.license_expires_at = NOW + timedelta(seconds=4)  # expires during the backfill

    run = await run_sync(platform, account, {})

    assert run.pages
    assert isinstance(run.error, PlatformAuthRevoked)
    assert "license key" in run.error.message
    assert "RMS" in run.error.message
    assert [r.status for r in store.requests].count(401) == 1  # never retried


async def test_retry_after_is_honoured(
    platform: RakutenPlatform, account: PlatformAccount, store: RakutenStore, clock: FakeClock
) -> None:
    store.rate_limit_per_second = 0.5
    store.retry_after = 7
    store.add_spread(20, NOW - timedelta(days=3), NOW - timedelta(days=1))

    run = await run_sync(platform, account, finished_cursor(NOW), since=NOW - timedelta(days=4))

    assert run.error is None
    assert len(run.order_ids) == 20
    assert store.violations
    assert clock.sleeps.count(7.0) == len(store.violations)


async def test_consecutive_syncs_share_one_pace(
    platform: RakutenPlatform, account: PlatformAccount, store: RakutenStore
) -> None:
    store.rate_limit_per_second = 1.0
    store.add_order(NOW - timedelta(days=1))
    first = await run_sync(platform, account, finished_cursor(NOW), since=NOW - timedelta(days=2))
    second = await run_sync(platform, account, first.cursor)
    assert first.error is None
    assert second.error is None
    assert store.violations == []


async def test_a_late_edit_replaces_the_stored_order_and_an_older_copy_never_wins(
    session: AsyncSession,
    shop: Shop,
    platform: RakutenPlatform,
    account: PlatformAccount,
    store: RakutenStore,
    clock: FakeClock,
) -> None:
    order = store.add_order(NOW - timedelta(days=5), items=[FakeItem(price=1_000, units=3)])
    first = await run_sync(platform, account, {})
    clock.advance(timedelta(hours=6))
    store.edit(order.number, units=1, postage_price=500)
    second = await run_sync(platform, account, first.cursor)
    assert first.error is None
    assert second.error is None

    # The stale first read is replayed last: ingest keeps the newer version.
    connection_id = await _ingest(session, shop, [*first.pages, *second.pages, *first.pages])

    stored = (await session.exec(select(Order).where(Order.connection_id == connection_id))).one()
    assert (stored.total_amount, stored.item_quantity) == (1_500, 1)


async def test_a_manual_resync_never_drops_an_unfinished_backfill(
    platform: RakutenPlatform, account: PlatformAccount, store: RakutenStore
) -> None:
    old = store.add_order(NOW - timedelta(days=600))
    recent = store.add_order(NOW - timedelta(days=2))
    interrupted = await run_sync(platform, account, {}, stop_after=1)
    assert interrupted.order_ids == []  # the first window held nothing

    manual = await run_sync(platform, account, interrupted.cursor, since=NOW - timedelta(days=7))
    assert manual.error is None
    assert set(manual.order_ids) == {old.number, recent.number}
    assert all(page.cursor.get("backfill") == "1" for page in manual.pages[:-1])

    later = await run_sync(platform, account, manual.cursor, since=NOW - timedelta(days=7))
    assert later.order_ids == [recent.number]  # after a finished sweep: from `since` only
