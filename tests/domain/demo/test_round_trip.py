from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.customer.models import Customer
from domain.db import AsyncSession
from domain.demo import load_demo_shop, write_import_files
from domain.ids import ShopId
from domain.importing import import_directory
from domain.ingest import Counts
from domain.ingest.statements import fetch_all, table_of
from domain.shop.models import Shop
from domain.shop.service import create_shop
from tests.domain.importing.files import row_counts

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
SEED = 5


async def customer_totals(session: AsyncSession, shop: Shop) -> tuple[int, int, int]:
    table = table_of(Customer)
    statement = select(
        func.count(), func.sum(table.c.order_count), func.sum(table.c.total_spent)
    ).where(table.c.shop_id == shop.id)
    count, orders, spent = (await fetch_all(session, statement))[0]
    return int(count), int(orders), int(spent)


async def test_generated_files_import_completely_and_match_a_direct_load(
    sessions: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    tmp_path: Path,
    unique: str,
) -> None:
    written = write_import_files(tmp_path, SEED, customers=400, as_of=AS_OF)
    imported = await create_shop(session, f"imported-{unique}")

    report = await import_directory(sessions, ShopId(imported.id), tmp_path)

    assert report.customers == Counts(inserted=written.customers)
    assert report.orders == Counts(inserted=written.orders)
    assert report.order_lines == written.order_lines
    assert report.subscriptions == Counts(inserted=written.subscriptions)
    assert report.subscription_events == Counts(inserted=written.subscription_events)
    assert report.rows_rejected == 0
    counts = await row_counts(session, imported)
    assert counts["Customer"] == written.customers
    assert counts["Order"] == written.orders
    assert counts["OrderLine"] == written.order_lines
    assert counts["Subscription"] == written.subscriptions
    assert counts["SubscriptionEvent"] == written.subscription_events
    assert counts["Connection"] == 3

    again = await import_directory(sessions, ShopId(imported.id), tmp_path)
    assert (again.orders.inserted, again.orders.updated) == (0, 0)
    assert (again.customers.inserted, again.customers.updated) == (0, 0)
    assert again.subscription_events.inserted == 0

    loaded = await load_demo_shop(
        sessions, name=f"loaded-{unique}", customers=400, seed=SEED, as_of=AS_OF
    )
    assert await row_counts(session, loaded) == counts
    assert await customer_totals(session, loaded) == await customer_totals(session, imported)
