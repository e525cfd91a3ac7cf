from datetime import UTC, datetime

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench.ingest import copy_baseline, fetch_all_pages, sync_end_to_end
from bench.ingest_rows import baseline_rows
from bench.mall import SHOP_DOMAIN, TOKEN
from domain.db import AsyncSession
from domain.ids import ShopId, new_id
from domain.order.models import OrderLine
from domain.platforms import CustomerRecord, OrderLineRecord, OrderRecord
from domain.settings import Settings
from integrations.shopify.platform import ShopifyPlatform
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.shopify import ALL_SCOPES, FakeShopify, Knobs, ShopifyStore, generate

ORDERS = 900


def _order(external_id: str, customer: str, *skus: str) -> OrderRecord:
    lines = tuple(
        OrderLineRecord(quantity=1, amount=100, sku=sku, title=sku, product_external_id=sku)
        for sku in skus
    )
    return OrderRecord(
        platform="shopify",
        external_id=external_id,
        customer_external_id=customer,
        ordered_at=datetime(2026, 1, 1, tzinfo=UTC),
        total_amount=100 * len(skus),
        lines=lines,
    )


def test_baseline_rows_are_the_rows_ingest_writes() -> None:
    known = CustomerRecord(platform="shopify", external_id="c1", email=" Hanako@Example.JP ")
    orders = [_order("o1", "c1", "A", "B"), _order("o2", "guest:x", "A")]

    rows = baseline_rows(ShopId(new_id()), new_id(), [known], orders, datetime.now(UTC))

    assert {name: len(found) for name, found in rows.items()} == {
        "customer": 2,
        "customer_identity": 2,
        "product": 2,
        "order": 2,
        "order_line": 3,
    }
    # Contact data is stored normalised, as ingest stores it.
    assert "hanako@example.jp" in rows["customer"][0] + rows["customer"][1]


async def test_the_bench_syncs_every_order_of_the_fake_mall(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], is_postgres: bool
) -> None:
    store = ShopifyStore(lambda: datetime.now(UTC), shop_domain=SHOP_DOMAIN)
    generate(store, orders=ORDERS, seed=3)
    store.warm()
    fake = FakeShopify(
        store, tokens={TOKEN: ALL_SCOPES}, knobs=Knobs(max_available=2_000, restore_rate=1e9)
    )
    lines = sum(len(order.lines) for order in store.orders.values())

    async with serve_on_loopback(fake.app) as base_url, httpx.AsyncClient() as http:
        platforms = {"shopify": ShopifyPlatform(http)}
        fetched = await fetch_all_pages(platforms["shopify"], base_url)
        synced = await sync_end_to_end(settings, sessions, platforms, base_url)

    assert len(fetched["orders"]) == ORDERS
    assert fetched["pages"] == 5  # four pages of orders, then the (empty) contracts
    assert (synced["orders"], synced["lines"]) == (ORDERS, lines)
    assert synced["orders_inserted"] == ORDERS
    assert synced["backfilled"] is True
    assert synced["run_status"] == ["succeeded"]
    assert synced["pages"] == 5
    assert synced["throttle_waits"] == 0
    assert synced["jobs"] == 1
    if is_postgres:
        copied = await copy_baseline(sessions, fetched["customers"], fetched["orders"])
        assert copied["lines"] == lines
        async with sessions() as session:
            stored = await session.scalar(
                select(func.count())
                .select_from(OrderLine)
                .where(OrderLine.shop_id == copied["shop_id"])
            )
        assert stored == lines
