from datetime import timedelta

import pytest
from sqlmodel import select

from domain.customer.models import Customer
from domain.db import AsyncSession
from domain.ids import ConnectionId, ShopId
from domain.ingest import ingest_batch
from domain.order.models import Order, OrderLine
from domain.platforms import PlatformUnavailable, SyncPage
from domain.shop.models import Shop
from domain.subscription.models import Subscription, SubscriptionEvent, SubscriptionEventKind
from tests.factories.customer import make_connection
from tests.fakes.amazon import Fault, order_item
from tests.integrations.amazon.harness import Amazon, Run, sync


async def _ingest(session: AsyncSession, shop: Shop, run: Run) -> None:
    connection = await make_connection(session, shop=shop, platform="amazon")
    for page in run.pages:
        await ingest_batch(session, ShopId(shop.id), ConnectionId(connection.id), page.records)


async def test_subscribe_and_save_buyers_become_live_subscribers(
    amazon: Amazon, session: AsyncSession, shop: Shop
) -> None:
    now = amazon.clock.now()
    for days_ago in (65, 35, 5):
        at = now - timedelta(days=days_ago)
        amazon.store.add_order(
            items=[order_item("B0TEA00001", price="1800.00", sns=True), order_item("B0CUP00002")],
            total="3780.00",
            buyer_email="relay-7f3a@marketplace.amazon.co.jp",
            purchased_at=at,
            updated_at=at + timedelta(days=1),
        )

    run = await sync(amazon.platform, amazon.account())
    await _ingest(session, shop, run)

    [subscription] = (await session.exec(select(Subscription))).all()
    assert subscription.external_id.startswith("sns:buyer:")
    assert subscription.external_id.endswith(":B0TEA00001")
    events = (await session.exec(select(SubscriptionEvent))).all()
    assert [event.kind for event in events] == [SubscriptionEventKind.RENEWED] * 3
    orders = (await session.exec(select(Order))).all()
    assert {order.subscription_external_id for order in orders} == {subscription.external_id}
    assert len({order.customer_id for order in orders}) == 1
    assert subscription.customer_id == orders[0].customer_id


async def test_amazon_customers_are_marketing_restricted(
    amazon: Amazon, session: AsyncSession, shop: Shop
) -> None:
    at = amazon.clock.now() - timedelta(days=3)
    amazon.store.add_order(
        items=[order_item("B0A")], buyer_email="x1@marketplace.amazon.co.jp", updated_at=at
    )
    amazon.store.add_order(items=[order_item("B0B")], buyer_email=None, updated_at=at)

    await _ingest(session, shop, await sync(amazon.platform, amazon.account()))

    customers = (await session.exec(select(Customer).where(Customer.shop_id == shop.id))).all()
    assert len(customers) == 2
    assert all(customer.marketing_restricted for customer in customers)
    assert all(customer.email is None for customer in customers)


async def test_malformed_order_is_rejected_while_the_others_arrive(
    amazon: Amazon, session: AsyncSession, shop: Shop
) -> None:
    at = amazon.clock.now() - timedelta(days=1)
    good = [amazon.store.add_order(items=[order_item(f"B0{i}")], updated_at=at) for i in range(3)]
    bad = amazon.store.add_order(
        items=[order_item("B0X")], updated_at=at, extra={"PurchaseDate": "2026-05-01 10:00"}
    )

    run = await sync(amazon.platform, amazon.account())
    await _ingest(session, shop, run)

    [rejected] = run.rejected
    assert (rejected.kind, rejected.external_id) == ("order", bad.order_id)
    assert rejected.problem.startswith("PurchaseDate: ")
    stored = (await session.exec(select(Order.external_id))).all()
    assert sorted(stored) == sorted(order.order_id for order in good)


@pytest.mark.parametrize("status", [400, 404])
async def test_order_whose_items_are_refused_is_rejected_not_stored_without_lines(
    amazon: Amazon, session: AsyncSession, shop: Shop, status: int
) -> None:
    at = amazon.clock.now() - timedelta(days=1)
    kept = amazon.store.add_order(items=[order_item("B0K")], updated_at=at)
    refused = amazon.store.add_order(items=[order_item("B0R")], updated_at=at)
    amazon.store.item_errors[refused.order_id] = status

    run = await sync(amazon.platform, amazon.account())
    await _ingest(session, shop, run)

    [rejected] = run.rejected
    assert rejected.external_id == refused.order_id
    assert rejected.problem.startswith("getOrderItems: ")
    assert run.order_ids == [kept.order_id]
    assert len((await session.exec(select(OrderLine))).all()) == 1


async def test_items_outage_fails_the_page_instead_of_yielding_half_of_it(amazon: Amazon) -> None:
    at = amazon.clock.now() - timedelta(days=1)
    for index in range(3):
        amazon.store.add_order(items=[order_item(f"B0{index}")], updated_at=at)
    # getOrders is request 1; the second order's items fail on every attempt.
    amazon.store.faults = {n: Fault(503) for n in range(3, 7)}
    pages: list[SyncPage] = []

    with pytest.raises(PlatformUnavailable, match="getOrderItems"):
        await sync(amazon.platform, amazon.account(), pages=pages)
    assert pages == []


async def test_cancellation_after_ingest_turns_the_stored_order_cancelled(
    amazon: Amazon, session: AsyncSession, shop: Shop
) -> None:
    at = amazon.clock.now() - timedelta(days=10)
    email = "c1@marketplace.amazon.co.jp"
    kept = amazon.store.add_order(items=[order_item("B0A")], buyer_email=email, updated_at=at)
    lost = amazon.store.add_order(items=[order_item("B0B")], buyer_email=email, updated_at=at)
    connection = await make_connection(session, shop=shop, platform="amazon")

    async def sync_and_ingest(cursor: dict[str, str]) -> dict[str, str]:
        run = await sync(amazon.platform, amazon.account(), cursor)
        for page in run.pages:
            await ingest_batch(session, ShopId(shop.id), ConnectionId(connection.id), page.records)
        return dict(run.cursor)

    cursor = await sync_and_ingest({})
    amazon.clock.advance(86400)
    amazon.store.change_order(lost.order_id, status="Canceled")
    amazon.clock.advance(300)
    await sync_and_ingest(cursor)

    orders = {o.external_id: o for o in (await session.exec(select(Order))).all()}
    assert orders[lost.order_id].status == "cancelled"
    assert orders[kept.order_id].status == "fulfilled"
    [customer] = (await session.exec(select(Customer).where(Customer.shop_id == shop.id))).all()
    await session.refresh(customer)
    assert customer.order_count == 1
