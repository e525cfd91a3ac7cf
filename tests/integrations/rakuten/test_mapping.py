from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.db import AsyncSession
from domain.ids import ConnectionId, ShopId
from domain.ingest import ingest_batch
from domain.ingest.contact import normalise_email
from domain.order.models import OrderStatus
from domain.platforms import OrderRecord, PlatformAccount, RecordBatch, RejectedRecord
from domain.shop.models import Shop
from domain.subscription.models import SubscriptionEventKind, SubscriptionStatus
from integrations.rakuten.mapping import map_order, map_page
from integrations.rakuten.platform import RakutenPlatform, finished_cursor
from integrations.rakuten.wire import OrderModel, parse_get_order
from tests.factories.customer import make_connection
from tests.fakes.rakuten.store import FakeBuyer, FakeItem, FakeOrder, RakutenStore
from tests.integrations.rakuten.conftest import NOW
from tests.integrations.rakuten.harness import run_sync

PAYLOADS = Path(__file__).parent / "payloads"


def _map(name: str) -> tuple[RecordBatch, tuple[RejectedRecord, ...]]:
    result = parse_get_order((PAYLOADS / name).read_bytes())
    return map_page(result.orders, result.invalid)


def _orders(batch: RecordBatch) -> dict[str, OrderRecord]:
    return {order.external_id: order for order in batch.orders}


def test_unknown_amounts_count_as_zero_and_an_unknown_goods_price_is_rejected() -> None:
    batch, rejected = _map("get_order_unknown_amounts.json")
    orders = _orders(batch)
    # postage and COD fee -9999: goods 5000 - coupon 500, never -9999 in the sum
    assert orders["402321-20260520-0000003001"].total_amount == 4_500
    assert orders["402321-20260520-0000003001"].status == OrderStatus.OPEN
    # all known: goods 5000 + postage 800 + COD 330 - coupon 500
    assert orders["402321-20260520-0000003002"].total_amount == 5_630
    assert rejected == (
        RejectedRecord(
            "order",
            "402321-20260520-0000003003",
            "goodsPrice: unknown (-9999): the order has no usable total",
        ),
    )
    assert all(order.total_amount >= 0 for order in batch.orders)


def test_malformed_orders_are_rejected_by_field_and_the_others_arrive() -> None:
    batch, rejected = _map("get_order_malformed.json")
    assert [order.external_id for order in batch.orders] == ["402321-20260521-0000004001"]
    problems = {record.external_id: record.problem for record in rejected}
    assert set(problems) == {
        "402321-20260521-0000004002",
        "402321-20260521-0000004003",
        "402321-20260521-0000004004",
        "402321-20260521-0000004005",
        None,
    }
    assert problems["402321-20260521-0000004002"].startswith("orderDatetime:")
    assert problems["402321-20260521-0000004003"].startswith(
        "PackageModelList.0.ItemModelList.0.units:"
    )
    assert problems["402321-20260521-0000004004"].startswith("OrdererModel:")
    assert "unknown orderProgress 550" in problems["402321-20260521-0000004005"]
    assert all(record.kind == "order" for record in rejected)


def test_orders_map_times_to_utc_and_keep_the_masked_email() -> None:
    batch, _ = _map("get_order_subscriptions.json")
    first = _orders(batch)["402321-20260105-0000001001"]
    assert first.ordered_at == datetime(2026, 1, 5, 0, 30, tzinfo=UTC)
    assert first.ordered_at.tzinfo is UTC
    assert first.lines[0].sku == "SKU-T01"
    assert first.lines[0].product_external_id == "teiki-01"
    customer = next(c for c in batch.customers if c.external_id == first.customer_external_id)
    assert customer.email == "815db2ab3s1@pc.fw.rakuten.ne.jp"
    email = normalise_email(customer.email)
    assert email is not None
    assert email.masked
    assert email.hash is None  # ingest never matches on it
    assert customer.phone == "090-1234-5678"
    assert customer.display_name == "山田 花子"
    assert customer.external_id.startswith("tel:")
    assert "1234" not in customer.external_id  # no contact data in the key


def test_subscription_orders_of_both_types_map_to_subscriptions_and_events() -> None:
    batch, rejected = _map("get_order_subscriptions.json")
    assert rejected == ()
    orders = _orders(batch)
    teiki, hanpu = "402321-20260105-00000123-r", "402321-20260201-00000456-r"
    assert orders["402321-20260105-0000001001"].subscription_external_id == teiki
    assert orders["402321-20260505-0000001002"].subscription_external_id == teiki
    assert orders["402321-20260505-0000001002"].status == OrderStatus.CANCELLED
    assert orders["402321-20260301-0000002001"].subscription_external_id == hanpu
    subscriptions = {record.external_id: record for record in batch.subscriptions}
    assert {record.external_id for record in batch.subscriptions} == {teiki, hanpu}
    assert subscriptions[teiki].interval_days == 60  # お届けサイクル:2ヶ月ごと
    assert subscriptions[teiki].started_at == datetime(2026, 1, 4, 15, 0, tzinfo=UTC)
    assert subscriptions[hanpu].interval_days == 30  # not given: the default
    assert all(s.status == SubscriptionStatus.ACTIVE for s in batch.subscriptions)
    events = {(e.subscription_external_id, e.kind, e.event_id) for e in batch.subscription_events}
    assert events == {
        (teiki, SubscriptionEventKind.STARTED, f"{teiki}:started"),
        # delivery 3 cancelled by the customer; the shop's own cancellation (欠品) is no sign
        (teiki, SubscriptionEventKind.SKIPPED, "402321-20260505-0000001002:cancelled"),
    }
    skipped = next(e for e in batch.subscription_events if e.kind == SubscriptionEventKind.SKIPPED)
    assert skipped.occurred_at == datetime(2026, 5, 6, 3, 0, tzinfo=UTC)


async def test_subscription_records_ingest_with_their_events(
    session: AsyncSession, shop: Shop
) -> None:
    batch, _ = _map("get_order_subscriptions.json")
    connection = await make_connection(session, shop=shop, platform="rakuten")
    result = await ingest_batch(session, ShopId(shop.id), ConnectionId(connection.id), batch)
    assert result.orders.inserted == 4
    assert result.subscriptions.inserted == 2
    assert result.subscription_events.inserted == 2
    assert result.customers.inserted == 2  # one buyer per subscription, across deliveries
    again = await ingest_batch(session, ShopId(shop.id), ConnectionId(connection.id), batch)
    assert again.orders.inserted == again.orders.updated == 0
    assert again.subscription_events.inserted == 0


@pytest.mark.parametrize("order_type", [4, 5])
async def test_the_fake_serves_subscription_orders_that_map(
    platform: RakutenPlatform, account: PlatformAccount, store: RakutenStore, order_type: int
) -> None:
    reserve = f"{store.shop_id}-20260401-00000077-r"
    buyer = FakeBuyer(family_name="鈴木", first_name="次郎", phone="080-1111-2222")
    teiki = FakeItem(name="定期便", manage_number="teiki-02", selected_choice="隔週")
    for delivery in (1, 2, 3):
        store.add_order(
            NOW - timedelta(days=42 - 14 * delivery),
            order_type=order_type,
            reserve_number=reserve,
            reserve_delivery_count=delivery,
            buyer=buyer,
            items=[teiki],
        )
    third = max(store.orders.values(), key=lambda order: order.ordered_at)
    store.cancel(third.number, by_customer=True)

    run = await run_sync(platform, account, finished_cursor(NOW), since=NOW - timedelta(days=60))

    assert run.error is None
    batch = run.pages[-1].records
    assert {order.subscription_external_id for order in batch.orders} == {reserve}
    assert {record.interval_days for record in batch.subscriptions} == {14}
    kinds = sorted(event.kind.value for event in batch.subscription_events)
    assert kinds == ["skipped", "started"]


async def test_unknown_fees_from_the_fake_never_become_money(
    platform: RakutenPlatform, account: PlatformAccount, store: RakutenStore
) -> None:
    store.add_order(NOW - timedelta(hours=5), progress=100, postage_price=-9999)
    store.add_order(NOW - timedelta(hours=4), progress=100, delivery_price=-9999)

    run = await run_sync(platform, account, finished_cursor(NOW), since=NOW - timedelta(days=1))

    assert run.error is None
    assert [order.total_amount for order in run.pages[-1].records.orders] == [1_980, 1_980]


async def test_a_malformed_order_from_the_fake_is_rejected_and_the_rest_arrive(
    platform: RakutenPlatform, account: PlatformAccount, store: RakutenStore
) -> None:
    orders = store.add_spread(150, NOW - timedelta(days=2), NOW - timedelta(days=1))
    orders[40].overrides["orderDatetime"] = "2026-05-30T10:00:00+09:00Z"
    orders[120].overrides["OrdererModel"] = "none"

    run = await run_sync(platform, account, finished_cursor(NOW), since=NOW - timedelta(days=3))

    assert run.error is None
    arrived = set(run.order_ids)
    assert arrived == {order.number for order in orders} - {orders[40].number, orders[120].number}
    rejected = {
        record.external_id: record.problem for page in run.pages for record in page.rejected
    }
    assert rejected.keys() == {orders[40].number, orders[120].number}
    assert rejected[orders[40].number].startswith("orderDatetime:")
    assert rejected[orders[120].number].startswith("OrdererModel:")


def _model(order: FakeOrder) -> OrderModel:
    return OrderModel.model_validate(order.render())


@pytest.mark.parametrize(
    ("progress", "status"),
    [
        (100, OrderStatus.OPEN),
        (300, OrderStatus.OPEN),
        (400, OrderStatus.OPEN),
        (500, OrderStatus.FULFILLED),
        (700, OrderStatus.FULFILLED),
        (800, OrderStatus.OPEN),  # a cancellation awaiting confirmation can be withdrawn
        (900, OrderStatus.CANCELLED),
    ],
)
def test_order_progress_maps_to_a_status(
    store: RakutenStore, progress: int, status: OrderStatus
) -> None:
    order = store.add_order(NOW, progress=progress)
    assert map_order(_model(order)).order.status == status


def test_a_cancellation_for_a_return_is_a_refund(store: RakutenStore) -> None:
    order = store.add_order(NOW - timedelta(days=9))
    store.cancel(order.number, detail=15)  # 返品(破損・品間違い)
    mapped = map_order(_model(order))
    assert mapped.order.status == OrderStatus.REFUNDED
    assert mapped.order.source_updated_at == NOW  # the change is the newest time it carries


def test_the_customer_key_falls_back_from_phone_to_masked_email_to_the_order(
    store: RakutenStore,
) -> None:
    with_phone = store.add_order(NOW, buyer=FakeBuyer(phone="03-1234-5678"))
    same_person = store.add_order(NOW, buyer=FakeBuyer(phone="03 1234 5678", email="x@y.jp"))
    no_phone = store.add_order(NOW, buyer=FakeBuyer(phone="unknown"))
    nothing = store.add_order(NOW, buyer=FakeBuyer(phone="", email=""))
    keys = [map_order(_model(o)).customer.external_id for o in (with_phone, same_person)]
    assert keys[0] == keys[1]  # the phone is normalised; the masked address does not matter
    assert map_order(_model(no_phone)).customer.external_id.startswith("mail:")
    assert map_order(_model(nothing)).customer.external_id == f"order:{nothing.number}"
