"""Pages of a Shopify sync stored through the one ingest path, crash or no crash."""

from collections.abc import Sequence

import pytest
from sqlmodel import col, func, select

from domain.connection.models import Connection
from domain.db import AsyncSession
from domain.ids import ConnectionId, ShopId
from domain.ingest import Counts, ingest_batch
from domain.order.models import Order, OrderStatus
from domain.platforms import PlatformUnavailable, SyncPage
from domain.shop.models import Shop
from domain.subscription.models import Subscription, SubscriptionEvent
from tests.factories.customer import make_connection
from tests.fakes.shopify import generate
from tests.integrations.shopify.conftest import Collected, Mall, collect


async def _store(
    session: AsyncSession, connection: Connection, pages: Sequence[SyncPage]
) -> Counts:
    total = Counts()
    for page in pages:
        result = await ingest_batch(
            session, ShopId(connection.shop_id), ConnectionId(connection.id), page.records
        )
        total = total + result.orders
    return total


async def _orders(session: AsyncSession, connection: Connection) -> set[tuple[str, int, int, str]]:
    rows = await session.exec(
        select(Order.external_id, Order.total_amount, Order.refunded_amount, Order.status).where(
            Order.shop_id == connection.shop_id, Order.connection_id == connection.id
        )
    )
    return {
        (external_id, total, refunded, str(status)) for external_id, total, refunded, status in rows
    }


async def _count(
    session: AsyncSession, model: type[Subscription] | type[SubscriptionEvent], shop: Shop
) -> int:
    statement = select(func.count()).select_from(model).where(col(model.shop_id) == shop.id)
    return (await session.exec(statement)).one()


async def test_a_crashed_and_resumed_sync_stores_what_a_clean_one_does(
    session: AsyncSession, shop: Shop, mall: Mall
) -> None:
    generate(mall.store, orders=450, customers=120, days=40, seed=21)
    people = list(mall.store.customers.values())[:3]
    contracts = [mall.store.add_contract(person) for person in people]
    mall.store.skip_cycle(contracts[0], 2)
    mall.store.set_contract_status(contracts[1], "PAUSED")
    clean_connection = await make_connection(session, shop=shop)
    resumed_connection = await make_connection(session, shop=shop)

    clean = await collect(mall.platform(page_size=100), mall.account())
    assert await _store(session, clean_connection, clean.pages) == Counts(inserted=450)

    start = mall.fake.requests
    mall.fake.knobs.fail_on = dict.fromkeys(range(start + 4, start + 9), 500)
    crashed = Collected()
    with pytest.raises(PlatformUnavailable):
        await collect(mall.platform(page_size=100, max_retries=2), mall.account(), into=crashed)
    await _store(session, resumed_connection, crashed.pages)
    resumed = await collect(mall.platform(page_size=100), mall.account(), crashed.cursor)
    await _store(session, resumed_connection, resumed.pages)

    stored = await _orders(session, clean_connection)
    assert len(stored) == 450
    assert await _orders(session, resumed_connection) == stored
    # Both connections hold the three contracts and their five events, each stored once.
    assert await _count(session, Subscription, shop) == 6
    assert await _count(session, SubscriptionEvent, shop) == 2 * (3 + 1 + 1)

    # Replaying every page, as a sync restarted from an older cursor would, changes nothing.
    assert await _store(session, clean_connection, clean.pages) == Counts(unchanged=450)
    assert await _count(session, SubscriptionEvent, shop) == 10


async def test_the_next_sync_stores_cancellations_and_edits(
    session: AsyncSession, shop: Shop, mall: Mall
) -> None:
    generate(mall.store, orders=120, days=20, seed=22)
    connection = await make_connection(session, shop=shop)
    platform = mall.platform()
    first = await collect(platform, mall.account())
    await _store(session, connection, first.pages)
    target = next(iter(mall.store.orders.values()))
    mall.clock.advance(7200)
    mall.store.cancel_order(target)

    second = await collect(platform, mall.account(), first.cursor)
    counts = await _store(session, connection, second.pages)

    assert counts.updated == 1
    stored = {row[0]: row for row in await _orders(session, connection)}
    assert stored[target.gid][3] == OrderStatus.CANCELLED.value
    assert stored[target.gid][2] == stored[target.gid][1]
    # The stale first page, replayed late, does not undo the cancellation.
    await _store(session, connection, first.pages)
    stored = {row[0]: row for row in await _orders(session, connection)}
    assert stored[target.gid][3] == OrderStatus.CANCELLED.value
