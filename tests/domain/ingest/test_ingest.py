from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlmodel import select as sm_select

from domain.db import AsyncSession
from domain.errors import InvalidInput, NotFound
from domain.ids import ConnectionId, ShopId, new_id
from domain.ingest import Counts, get_or_create_import_connection, ingest_batch
from domain.order.models import Order, OrderLine, OrderStatus
from domain.platforms import (
    CustomerRecord,
    OrderLineRecord,
    RecordBatch,
    SubscriptionEventRecord,
    SubscriptionRecord,
)
from domain.shop.models import Shop
from domain.subscription.models import (
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
)
from tests.domain.ingest.records import T0, customer_of, full_batch, ingest, order, snapshot
from tests.factories.customer import make_connection

JST = timezone(timedelta(hours=9))


async def test_ingesting_twice_changes_nothing(session: AsyncSession, shop: Shop) -> None:
    connection = await make_connection(session, shop=shop)
    first = await ingest(session, connection, full_batch())
    assert first.customers == Counts(inserted=3)
    assert first.orders == Counts(inserted=3)
    assert first.subscriptions == Counts(inserted=1)
    assert first.subscription_events == Counts(inserted=2)
    assert len(first.touched_customer_ids) == 3
    before = await snapshot(session, shop)

    second = await ingest(session, connection, full_batch())

    assert second.customers == Counts(unchanged=2)
    assert second.orders == Counts(unchanged=3)
    assert second.subscriptions == Counts(unchanged=1)
    assert second.subscription_events == Counts(unchanged=2)
    assert second.touched_customer_ids == frozenset()
    assert await snapshot(session, shop) == before
    assert len(before["OrderLine"]) == 4
    assert len(before["Product"]) == 1


async def test_an_older_version_never_overwrites_a_newer_one(
    session: AsyncSession, shop: Shop
) -> None:
    connection = await make_connection(session, shop=shop)
    later = T0 + timedelta(days=2)
    newest = order("o1", status=OrderStatus.REFUNDED, updated=later)
    stale = order("o1", status=OrderStatus.OPEN, updated=T0, total=9999)
    customer_new = CustomerRecord(
        "shopify", "c1", display_name="新しい名前", source_updated_at=later
    )
    customer_old = CustomerRecord("shopify", "c1", display_name="古い名前", source_updated_at=T0)
    subscription = SubscriptionRecord(
        "shopify",
        "s1",
        "c1",
        started_at=T0,
        status=SubscriptionStatus.CANCELLED,
        cancelled_at=later,
        source_updated_at=later,
    )
    await ingest(
        session,
        connection,
        RecordBatch(customers=(customer_new,), orders=(newest,), subscriptions=(subscription,)),
    )
    before = await snapshot(session, shop)

    stale_subscription = replace(
        subscription, status=SubscriptionStatus.ACTIVE, cancelled_at=None, source_updated_at=T0
    )
    result = await ingest(
        session,
        connection,
        RecordBatch(
            customers=(customer_old,), orders=(stale,), subscriptions=(stale_subscription,)
        ),
    )
    assert (result.customers, result.orders, result.subscriptions) == (
        Counts(unchanged=1),
        Counts(unchanged=1),
        Counts(unchanged=1),
    )
    assert await snapshot(session, shop) == before
    # Within one batch the newest version wins too, whatever the order of arrival.
    mixed = await ingest(
        session, connection, RecordBatch(orders=(order("o2", updated=later), order("o2")))
    )
    assert mixed.orders == Counts(inserted=1)
    stored = (await session.exec(sm_select(Order).where(Order.external_id == "o2"))).one()
    assert stored.source_updated_at == later


async def test_a_newer_version_replaces_the_order_and_its_lines(
    session: AsyncSession, shop: Shop
) -> None:
    connection = await make_connection(session, shop=shop)
    await ingest(session, connection, full_batch())
    changed = order(
        "o2",
        "c1",
        at=T0 + timedelta(days=30),
        total=3280,
        updated=T0 + timedelta(days=40),
        lines=(OrderLineRecord(1, 3280, 3280, sku="TONER", product_external_id="p1"),),
    )
    result = await ingest(session, connection, RecordBatch(orders=(changed,)))
    assert result.orders == Counts(updated=1)
    stored = (await session.exec(sm_select(Order).where(Order.external_id == "o2"))).one()
    lines = (await session.exec(sm_select(OrderLine).where(OrderLine.order_id == stored.id))).all()
    assert [(line.position, line.quantity, line.amount) for line in lines] == [(1, 1, 3280)]
    assert stored.item_quantity == 1
    assert (await customer_of(session, connection, "c1")).total_spent == 3280 + 3280


async def test_orders_without_line_data_keep_their_lines(session: AsyncSession, shop: Shop) -> None:
    connection = await make_connection(session, shop=shop)
    await ingest(session, connection, full_batch())
    status_only = order(
        "o2",
        "c1",
        at=T0 + timedelta(days=30),
        total=6560,
        status=OrderStatus.CANCELLED,
        updated=T0 + timedelta(days=31),
        lines=(),
        item_quantity=3,
    )
    result = await ingest(session, connection, RecordBatch(orders=(status_only,)), with_lines=False)
    assert result.orders == Counts(updated=1)
    stored = (await session.exec(sm_select(Order).where(Order.external_id == "o2"))).one()
    lines = (await session.exec(sm_select(OrderLine).where(OrderLine.order_id == stored.id))).all()
    assert len(lines) == 2
    assert stored.status == OrderStatus.CANCELLED


async def test_subscription_events_are_stored_once(session: AsyncSession, shop: Shop) -> None:
    connection = await make_connection(session, shop=shop)
    await ingest(session, connection, full_batch())
    again = SubscriptionEventRecord(
        "shopify", "s1", SubscriptionEventKind.SKIPPED, T0, event_id="evt-9", reason="changed"
    )
    paused = SubscriptionEventRecord("shopify", "s1", SubscriptionEventKind.PAUSED, T0)
    result = await ingest(
        session, connection, RecordBatch(subscription_events=(again, paused, paused))
    )
    assert result.subscription_events == Counts(inserted=1, unchanged=2)
    events = (await session.exec(sm_select(SubscriptionEvent))).all()
    assert sorted(event.dedup_key for event in events) == sorted(
        ["started@2024-03-01T01:00:00+00:00", "evt-9", "paused@2024-03-01T01:00:00+00:00"]
    )


async def test_events_of_unknown_subscriptions_are_refused(
    session: AsyncSession, shop: Shop
) -> None:
    connection = await make_connection(session, shop=shop)
    event = SubscriptionEventRecord("shopify", "nope", SubscriptionEventKind.CANCELLED, T0)
    with pytest.raises(InvalidInput, match="unknown subscriptions: 'nope'"):
        await ingest(session, connection, RecordBatch(subscription_events=(event,)))


async def test_records_must_match_the_connection(session: AsyncSession, shop: Shop) -> None:
    connection = await make_connection(session, shop=shop, platform="rakuten")
    with pytest.raises(InvalidInput, match="a shopify record cannot be stored on a rakuten"):
        await ingest(session, connection, RecordBatch(orders=(order("o1"),)))
    with pytest.raises(NotFound):
        await ingest_batch(
            session, ShopId(shop.id), ConnectionId(new_id()), RecordBatch(orders=(order("o1"),))
        )


def test_records_refuse_naive_times_and_store_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        order("o1", at=datetime(2024, 3, 1))  # noqa: DTZ001
    local = order("o1", at=datetime(2024, 3, 1, 10, 0, tzinfo=JST))
    assert local.ordered_at == T0
    assert local.ordered_at.tzinfo is UTC


async def test_large_batches_are_chunked(session: AsyncSession, shop: Shop) -> None:
    connection = await make_connection(session, shop=shop)
    orders = tuple(
        order(
            f"o{n}",
            f"c{n % 4000}",
            at=T0 + timedelta(minutes=n),
            lines=(OrderLineRecord(1, 1000, 1000), OrderLineRecord(2, 2000, 1000)),
            total=3000,
        )
        for n in range(12_000)
    )
    result = await ingest(session, connection, RecordBatch(orders=orders))
    assert result.orders == Counts(inserted=12_000)
    assert result.customers == Counts(inserted=4000)
    again = await ingest(session, connection, RecordBatch(orders=orders))
    assert again.orders == Counts(unchanged=12_000)
    customer = await customer_of(session, connection, "c7")
    assert (customer.order_count, customer.total_spent) == (3, 9000)


async def test_import_connection_is_created_once(session: AsyncSession, shop: Shop) -> None:
    first = await get_or_create_import_connection(session, ShopId(shop.id), "rakuten")
    second = await get_or_create_import_connection(session, ShopId(shop.id), "rakuten")
    assert first.id == second.id
    assert (first.name, first.external_account_id) == ("CSV import (Rakuten)", "csv-import")
