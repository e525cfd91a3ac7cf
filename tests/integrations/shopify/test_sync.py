from datetime import datetime, timedelta
from decimal import Decimal
from importlib.metadata import entry_points

import pytest

from domain.order.models import OrderStatus
from domain.platforms import PlatformAuthRevoked
from integrations import ENTRY_POINT_GROUP
from integrations.shopify.platform import ShopifyPlatform
from tests.fakes.shopify import ALL_SCOPES, generate
from tests.integrations.shopify.conftest import Mall, collect, order_ids


async def test_backfill_reads_every_order_once_with_its_customers(mall: Mall) -> None:
    generate(mall.store, orders=600, customers=150, days=50, seed=3)

    synced = await collect(mall.platform(), mall.account())

    expected = {order.gid for order in mall.store.orders.values()}
    assert sorted(order_ids(synced.orders)) == sorted(expected)
    assert len(synced.orders) == len(expected)
    # 600 orders in pages of 250, then one page of contracts.
    assert [len(page.records.orders) for page in synced.pages] == [250, 250, 100, 0]
    customers_with_orders = {
        order.customer_external_id
        for order in synced.orders
        if not order.customer_external_id.startswith("guest:")
    }
    for page in synced.pages:
        page_customers = {customer.external_id for customer in page.records.customers}
        assert {order.customer_external_id for order in page.records.orders} <= page_customers
    assert customers_with_orders <= {customer.external_id for customer in synced.customers}
    assert synced.cursor["phase"] == "idle"
    assert synced.pages[-1].progress == 1.0
    assert sum(page.stats.requests for page in synced.pages) >= 5


async def test_order_fields_are_mapped_to_minor_units_and_current_quantities(mall: Mall) -> None:
    buyer = mall.store.add_customer(email="Hanako@Example.JP", phone="090-1234-5678")
    order = mall.store.add_order(
        buyer,
        created_at=mall.clock.now() - timedelta(days=3),
        lines=[("BEAN-1", 2, Decimal("1980")), ("MUG", 1, Decimal("3300"))],
    )
    mall.clock.advance(60)
    mall.store.edit_order(order, 0, 1)
    mall.store.refund_order(order, Decimal("500"))

    synced = await collect(mall.platform(), mall.account())

    [record] = synced.orders
    assert record.external_id == order.gid
    assert record.customer_external_id == buyer.gid
    assert record.total_amount == 1980 + 3300
    assert record.refunded_amount == 500
    assert record.status is OrderStatus.FULFILLED
    assert [(line.sku, line.quantity, line.amount) for line in record.lines] == [
        ("BEAN-1", 1, 1980),
        ("MUG", 1, 3300),
    ]
    assert record.source_updated_at == order.updated_at
    [customer] = synced.customers
    assert customer.display_name == "山田 花子"
    assert customer.email == "Hanako@Example.JP"


async def test_a_revoked_token_is_reported_by_check_account(mall: Mall) -> None:
    platform = mall.platform()
    info = await platform.check_account(mall.account().credentials, mall.base_url)
    assert info.external_account_id == mall.store.shop_domain
    assert info.name == mall.store.shop_name

    with pytest.raises(PlatformAuthRevoked):
        await platform.check_account(mall.account("shpat_revoked").credentials, mall.base_url)
    with pytest.raises(PlatformAuthRevoked):
        await collect(platform, mall.account("shpat_revoked"))


async def test_without_read_all_orders_only_sixty_days_arrive_and_the_cursor_says_so(
    mall: Mall,
) -> None:
    mall.fake.tokens["shpat_recent"] = ALL_SCOPES - {"read_all_orders"}
    generate(mall.store, orders=300, days=200, seed=5)
    horizon = mall.clock.now() - timedelta(days=60)
    recent = {order.gid for order in mall.store.orders.values() if order.created_at >= horizon}
    assert 0 < len(recent) < 300

    synced = await collect(mall.platform(), mall.account("shpat_recent"))

    assert sorted(order_ids(synced.orders)) == sorted(recent)
    assert synced.cursor["reachable_from"] == horizon.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert synced.cursor["phase"] == "idle"

    everything = await collect(mall.platform(), mall.account())
    assert len(everything.orders) == 300
    assert "reachable_from" not in everything.cursor


async def test_edits_and_cancellations_after_a_sync_arrive_with_the_next_incremental_sync(
    mall: Mall,
) -> None:
    generate(mall.store, orders=400, days=30, seed=11)
    platform = mall.platform()
    first = await collect(platform, mall.account())
    assert len(first.orders) == 400
    orders = sorted(mall.store.orders.values(), key=lambda order: order.id)
    edited, cancelled, untouched = orders[10], orders[200], orders[300]
    mall.clock.advance(3600)
    mall.store.edit_order(edited, 0, 0)
    mall.store.cancel_order(cancelled)
    fresh = mall.store.add_order(mall.store.customers[cancelled.customer_id or 0])

    second = await collect(platform, mall.account(), first.cursor)

    by_id = second.orders_by_id()
    assert {edited.gid, cancelled.gid, fresh.gid} <= set(by_id)
    assert untouched.gid not in by_id
    # Only the window since the last sync, with its overlap, is re-read.
    high_water = datetime.fromisoformat(first.cursor["updated_at"])
    recent = {
        order.gid
        for order in mall.store.orders.values()
        if order.updated_at >= high_water - timedelta(minutes=10)
    }
    assert sorted(order_ids(second.orders)) == sorted(recent)
    assert by_id[cancelled.gid].status is OrderStatus.CANCELLED
    assert by_id[cancelled.gid].source_updated_at == cancelled.updated_at
    assert [line.sku for line in by_id[edited.gid].lines] == [line.sku for line in edited.lines[1:]]


async def test_changes_the_search_index_has_not_seen_yet_are_read_by_the_overlap(
    mall: Mall,
) -> None:
    mall.store.index_lag = 90
    buyer = mall.store.add_customer(email="lag@example.jp")
    order = mall.store.add_order(buyer, created_at=mall.clock.now() - timedelta(days=1))
    platform = mall.platform()
    first = await collect(platform, mall.account())
    assert order_ids(first.orders) == [order.gid]
    mall.clock.advance(600)
    # Cancelled 30 s before the next sync starts: still invisible to the search index.
    mall.clock.advance(-30)
    mall.store.cancel_order(order)
    mall.clock.advance(30)

    second = await collect(platform, mall.account(), first.cursor)
    assert second.orders == []
    mall.clock.advance(120)

    third = await collect(platform, mall.account(), second.cursor)

    assert [(o.external_id, o.status) for o in third.orders] == [(order.gid, OrderStatus.CANCELLED)]


async def test_redacted_customer_data_maps_to_customers_without_contact_data(mall: Mall) -> None:
    buyer = mall.store.add_customer(email="secret@example.jp", phone="09011112222")
    mall.store.add_order(buyer)
    guest = mall.store.add_order(None, email="guest@example.jp")
    mall.store.set_redaction(True)

    synced = await collect(mall.platform(), mall.account())

    [order] = synced.orders
    assert order.customer_external_id == buyer.gid
    [customer] = synced.customers
    assert (customer.external_id, customer.email, customer.phone, customer.display_name) == (
        buyer.gid,
        None,
        None,
        "",
    )
    # A redacted guest order identifies nobody: it is rejected, not invented.
    [rejected] = synced.rejected
    assert rejected.external_id == guest.gid
    assert "guest order without email or phone" in rejected.problem


async def test_guest_orders_share_a_customer_keyed_by_their_email(mall: Mall) -> None:
    first = mall.store.add_order(None, email="Guest@Example.jp")
    second = mall.store.add_order(None, email=" guest@example.jp")
    other = mall.store.add_order(None, email="other@example.jp")

    synced = await collect(mall.platform(), mall.account())

    by_id = synced.orders_by_id()
    assert by_id[first.gid].customer_external_id == by_id[second.gid].customer_external_id
    assert by_id[first.gid].customer_external_id.startswith("guest:")
    assert by_id[other.gid].customer_external_id != by_id[first.gid].customer_external_id
    assert {customer.external_id for customer in synced.customers} == {
        by_id[first.gid].customer_external_id,
        by_id[other.gid].customer_external_id,
    }


async def test_test_orders_are_left_out(mall: Mall) -> None:
    buyer = mall.store.add_customer(email="a@example.jp")
    real = mall.store.add_order(buyer)
    mall.store.add_order(buyer, test=True)

    synced = await collect(mall.platform(), mall.account())

    assert order_ids(synced.orders) == [real.gid]
    assert synced.rejected == []


async def test_a_malformed_order_is_rejected_by_field_and_the_page_goes_on(mall: Mall) -> None:
    generate(mall.store, orders=30, days=10, seed=2)
    orders = sorted(mall.store.orders.values(), key=lambda order: order.id)
    mall.store.corrupt(
        orders[4], totalPriceSet={"shopMoney": {"amount": "lots", "currencyCode": "JPY"}}
    )
    mall.store.corrupt(orders[9], updatedAt=None)
    bad_line = {**mall.store.order_node(orders[12])["lineItems"]}
    bad_line["nodes"] = [{**bad_line["nodes"][0], "currentQuantity": -1}]
    mall.store.corrupt(orders[12], lineItems=bad_line)

    synced = await collect(mall.platform(), mall.account())

    problems = {record.external_id: record.problem for record in synced.rejected}
    assert set(problems) == {orders[4].gid, orders[9].gid, orders[12].gid}
    assert problems[orders[4].gid].startswith("totalPriceSet.shopMoney.amount:")
    assert problems[orders[9].gid].startswith("updatedAt:")
    assert problems[orders[12].gid].startswith("lineItems.nodes.0.currentQuantity:")
    assert len(synced.orders) == 27
    assert not set(problems) & set(order_ids(synced.orders))


async def test_orders_with_more_lines_than_a_page_arrive_whole(mall: Mall) -> None:
    buyer = mall.store.add_customer(email="bulk@example.jp")
    lines = [(f"SKU-{index}", 1, Decimal(100)) for index in range(130)]
    big = mall.store.add_order(buyer, lines=lines)
    mall.store.add_order(buyer)

    synced = await collect(mall.platform(), mall.account())

    record = synced.orders_by_id()[big.gid]
    assert [line.sku for line in record.lines] == [sku for sku, _, _ in lines]
    assert record.total_amount == 13000
    roots = [logged.root for logged in mall.fake.log]
    assert roots.count("order") == 1


async def test_backfill_progress_grows_page_by_page_and_survives_a_resume(mall: Mall) -> None:
    generate(mall.store, orders=500, days=100, seed=17)
    platform = mall.platform(page_size=100)
    pages = []
    async for page in platform.sync_pages(mall.account(), {}, None):
        pages.append(page)
        if len(pages) == 2:
            break
    resumed = await collect(platform, mall.account(), pages[-1].cursor)
    progress = [page.progress for page in pages + resumed.pages]

    assert all(value is not None for value in progress)
    assert progress == sorted(progress, key=lambda value: value or 0.0)
    assert 0.0 < (progress[0] or 0.0) < 0.5
    assert progress[-1] == 1.0
    assert pages[0].cursor["progress_from"] == pages[-1].cursor["progress_from"]
    assert "progress_from" not in resumed.cursor


async def test_a_manual_resync_starts_from_since(mall: Mall) -> None:
    generate(mall.store, orders=200, days=20, seed=6)
    platform = mall.platform()
    first = await collect(platform, mall.account())
    since = mall.clock.now() - timedelta(days=5)

    again = await collect(platform, mall.account(), first.cursor, since=since)

    expected = {o.gid for o in mall.store.orders.values() if o.updated_at >= since}
    assert sorted(order_ids(again.orders)) == sorted(expected)
    assert 0 < len(expected) < 200


async def test_credentials_without_a_token_are_revoked(mall: Mall) -> None:
    with pytest.raises(PlatformAuthRevoked):
        await mall.platform().check_account({"shop_domain": "x.myshopify.com"}, None)


async def test_without_protected_data_approval_orders_are_rejected_not_crashed(
    mall: Mall,
) -> None:
    buyer = mall.store.add_customer(email="hidden@example.jp")
    orders = [mall.store.add_order(buyer) for _ in range(3)]
    mall.store.add_order(buyer, test=True)
    mall.fake.customer_access = False

    synced = await collect(mall.platform(), mall.account())

    assert synced.orders == []
    assert [record.external_id for record in synced.rejected] == [order.gid for order in orders]
    assert synced.cursor["denied_fields"] == "customer"
    assert synced.cursor["phase"] == "idle"

    mall.fake.customer_access = True
    mall.clock.advance(60)
    for order in orders:
        mall.store.touch(order)
    again = await collect(mall.platform(), mall.account(), synced.cursor)
    assert sorted(order_ids(again.orders)) == sorted(order.gid for order in orders)
    assert "denied_fields" not in again.cursor


async def test_the_entry_point_builds_the_shopify_platform(mall: Mall) -> None:
    [entry] = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == "shopify"]
    platform = entry.load()(mall.http)

    assert isinstance(platform, ShopifyPlatform)
    assert platform.name == "shopify"
    info = await platform.check_account(mall.account().credentials, mall.base_url)
    assert info.external_account_id == mall.store.shop_domain
